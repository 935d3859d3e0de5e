#!/usr/bin/env bash
# test_cache_push_local.sh - pushing private images next to a default upstream.
# With a default upstream, a blob HEAD on a repository that does not exist
# locally yet is a read on a bare path, so it is answered by the mirror: 200
# when the blob is cached, or when the upstream has it. Clients (skopeo,
# docker, podman push) then skip uploading that blob - so the manifest PUT
# into the new local repository must accept it:
#   1. an image whose blobs are all in the cache (pulled earlier through
#      the mirror) - e.g. copying a Docker Hub image into a private repo;
#   2. an image whose blobs the upstream has but the cache does not - e.g.
#      an image built FROM a Docker Hub base image;
#   3. an image with new blobs only (the ordinary push).
# Every push must succeed, and the pushed image must be served byte-exact by
# tag and by digest, with every blob, also once the upstream is gone.
. "$(dirname "$0")/lib.sh"

clients_init
PCR=127.0.0.1:$PC_PORT
for s in cached upstream fresh; do mkimages "$WORK/img-$s" "push-$s" 1; done
dist_start "$WORK/dist"
dist_push "$WORK/img-cached" docker-single library/base:cached
dist_push "$WORK/img-upstream" docker-single library/base:upstream
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$DIST_PORT" --default-upstream docker.io

# Case 1's blobs into the cache, through the mirror.
sk copy -q --src-tls-verify=false "docker://$PCR/docker.io/library/base:cached" "dir:$WORK/pulled" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo copy through the mirror (see clients.log)"

# check_pushed REPO SEED: the pushed image, served by tag and by digest, every blob.
check_pushed() {
    local repo=$1 img=$WORK/img-$2 want m f=$WORK/m.$RANDOM d s
    want=$(img_digest "$img" docker-single)
    expect_eq "$want" "$(reg_get_manifest "$repo" v1 "$f")" "GET /v2/$repo/manifests/v1"
    expect_eq "$want" "$(reg_get_manifest "$repo" "$want" "$f")" "GET /v2/$repo/manifests/$want"
    m=$img/blobs/sha256/${want#sha256:}
    while read -r d s; do
        expect_eq "200 0 $s" "$(http_get "http://$PCR/v2/$repo/blobs/$d" "$WORK/b")" "GET /v2/$repo/blobs/$d"
        expect_eq "$d" "sha256:$(sha256sum "$WORK/b" | cut -d' ' -f1)" "GET /v2/$repo/blobs/$d: digest"
    done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$m")
}

for s in cached upstream fresh; do
    push_image "$WORK/img-$s" docker-single "e2e/push-$s:v1"
    check_pushed "e2e/push-$s" "$s"
    echo "ok: push to a new local repository, blobs $s"
done
dist_stop
for s in cached upstream fresh; do check_pushed "e2e/push-$s" "$s"; done
echo "ok: the pushed images without the upstream"
echo "PASS: $TEST_NAME"
