#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_skopeo_roundtrip.sh - push the four test images (OCI manifest, OCI index,
# Docker v2s2 manifest, Docker manifest list) with `skopeo copy --all`, then
# read them back by tag and by digest. Every manifest (top and children) must
# come back byte-identical: same digest in Docker-Content-Digest, in the body
# the registry serves, in `skopeo inspect --raw`, and in the copy skopeo writes
# out; every blob too.
. "$(dirname "$0")/lib.sh"

clients_init
img=$WORK/img
mkimages "$img" roundtrip-1
reg_start "$WORK/data"
mkdir -p "$WORK/back" "$WORK/bydigest"

# check_manifest REPO REF WANT_DIGEST WANT_MEDIATYPE: HEAD and GET agree with WANT.
check_manifest() {
    local repo=$1 ref=$2 want=$3 mt=$4 f got
    f=$WORK/m.$RANDOM
    expect_eq "$want" "$(reg_digest "$repo" "$ref")" "HEAD /v2/$repo/manifests/$ref Docker-Content-Digest"
    got=$(reg_get_manifest "$repo" "$ref" "$f")
    expect_eq "$want" "$got" "sha256 of GET /v2/$repo/manifests/$ref body"
    expect_eq "$want" "$(reg_header "$f.headers" Docker-Content-Digest)" \
        "GET /v2/$repo/manifests/$ref Docker-Content-Digest"
    expect_eq "$mt" "$(reg_header "$f.headers" Content-Type)" "GET /v2/$repo/manifests/$ref Content-Type"
    cmp -s "$f" "$img/blobs/sha256/${want#sha256:}" ||
        fail "GET /v2/$repo/manifests/$ref: body differs from the pushed manifest"
}

# check_blobs REPO MANIFEST_FILE: HEAD of the config and every layer is 200
# with the right Content-Length; GET of the config returns its exact bytes.
check_blobs() {
    local repo=$1 m=$2 d s code h=$WORK/blob.headers cfg
    while read -r d s; do
        code=$(curl -sS -I -D "$h" -o /dev/null -w '%{http_code}' "http://$REG/v2/$repo/blobs/$d")
        expect_eq 200 "$code" "HEAD /v2/$repo/blobs/$d status"
        expect_eq "$s" "$(reg_header "$h" Content-Length)" "HEAD /v2/$repo/blobs/$d Content-Length"
    done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$m")
    cfg=$(jq -r .config.digest "$m")
    curl -sS -f -L -o "$WORK/config.blob" "http://$REG/v2/$repo/blobs/$cfg" ||
        fail "GET /v2/$repo/blobs/$cfg"
    cmp -s "$WORK/config.blob" "$img/blobs/sha256/${cfg#sha256:}" ||
        fail "GET /v2/$repo/blobs/$cfg: body differs from the pushed config"
}

for tag in oci-single oci-index docker-single docker-list; do
    repo=e2e/roundtrip/$tag
    want=$(img_digest "$img" "$tag")
    mt=$(img_mediatype "$img" "$tag")
    push_image "$img" "$tag" "$repo:v1"

    # The registry's view, by tag and by digest.
    check_manifest "$repo" v1 "$want" "$mt"
    check_manifest "$repo" "$want" "$want" "$mt"
    top=$img/blobs/sha256/${want#sha256:}
    case $tag in
    *-index | *-list)
        children=$(jq -r '.manifests[].digest' "$top")
        expect_eq 2 "$(wc -w <<<"$children")" "children of $tag"
        for c in $children; do
            check_manifest "$repo" "$c" "$c" "$(jq -r --arg c "$c" '.manifests[] | select(.digest == $c) | .mediaType' "$top")"
            check_blobs "$repo" "$img/blobs/sha256/${c#sha256:}"
        done
        ;;
    *) check_blobs "$repo" "$top" ;;
    esac

    # skopeo's view of the registry.
    got=sha256:$(sk inspect --raw --tls-verify=false "docker://$REG/$repo:v1" | sha256sum | cut -d' ' -f1)
    expect_eq "$want" "$got" "sha256 of skopeo inspect --raw docker://$REG/$repo:v1"

    # Back out by tag into a fresh dir: layout: identical to what was pushed,
    # file for file (manifest.json, child manifests, every blob).
    echo "+ skopeo copy --all docker://$REG/$repo:v1 dir:$WORK/back/$tag" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests --src-tls-verify=false \
        "docker://$REG/$repo:v1" "dir:$WORK/back/$tag" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all docker://$REG/$repo:v1 dir:$WORK/back/$tag (see clients.log)"
    got=sha256:$(sk inspect --raw "dir:$WORK/back/$tag" | sha256sum | cut -d' ' -f1)
    expect_eq "$want" "$got" "sha256 of skopeo inspect --raw of the copy pulled back by tag"
    diff -r "$img/dir/$tag" "$WORK/back/$tag" >&2 ||
        fail "$tag pulled back by tag differs from the pushed image"

    # Back out by digest.
    echo "+ skopeo copy --all docker://$REG/$repo@$want dir:$WORK/bydigest/$tag" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests --src-tls-verify=false \
        "docker://$REG/$repo@$want" "dir:$WORK/bydigest/$tag" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all docker://$REG/$repo@$want (see clients.log)"
    diff -r "$img/dir/$tag" "$WORK/bydigest/$tag" >&2 ||
        fail "$tag pulled back by digest differs from the pushed image"

    # OCI images also round-trip into an OCI layout.
    case $tag in
    oci-*)
        sk copy -q --all --preserve-digests --src-tls-verify=false \
            "docker://$REG/$repo:v1" "oci:$WORK/back-oci:$tag" >>"$WORK/clients.log" 2>&1 ||
            fail "skopeo copy --all docker://$REG/$repo:v1 oci:$WORK/back-oci:$tag (see clients.log)"
        got=sha256:$(sk inspect --raw "oci:$WORK/back-oci:$tag" | sha256sum | cut -d' ' -f1)
        expect_eq "$want" "$got" "sha256 of skopeo inspect --raw oci:$WORK/back-oci:$tag"
        ;;
    esac

    # The tag is listed.
    curl -sS -f "http://$REG/v2/$repo/tags/list" -o "$WORK/tags.json" || fail "GET /v2/$repo/tags/list"
    expect_eq '["v1"]' "$(jq -c .tags "$WORK/tags.json")" "GET /v2/$repo/tags/list tags"
    echo "ok: $tag ($want)"
done

# Every blob skopeo wrote into the OCI layout is named by its content.
(cd "$WORK/back-oci/blobs/sha256" && for f in *; do echo "$f  $f"; done | sha256sum -c --quiet) ||
    fail "a blob in the OCI layout pulled back does not match its digest"
echo "PASS: $TEST_NAME ($REGISTRY)"
