#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_clients.sh - the pull-through cache with real clients. Debian's
# docker-registry is the upstream, holding the mkimage.sh test images, and
# pullcache mirrors it as "docker.io", also serving bare paths (the option
# Docker daemons' registry-mirrors need, so this test passes it, with e2e/local
# kept private by --local-prefix). Cold pulls
# through each way a client reaches a mirror:
#   skopeo   host-prefix path   127.0.0.1:PC/docker.io/<repo>:tag (and library/ added)
#   ctr      hosts.toml mirror  docker.io/library/<repo> -> ?ns=docker.io, and
#                               127.0.0.1:DIST/<repo> -> ?ns=<upstream host:port>
#   podman   registries.conf    mirror 127.0.0.1:PC/docker.io for docker.io/<repo>
#   curl     bare paths         /v2/library/<repo>/... (the default upstream)
# all byte-exact (digests, media types, every blob verified by the client).
# Mirrored names are read-only (403 DENIED); local pushes still work.
# Then the upstream is stopped and every cached image is pulled again with ctr
# and podman into fresh storage: within tag_ttl, and after tag_ttl has passed
# (pullcache restarted with tag_ttl: 1), when revalidation fails and the
# cached copy is served with a Warning.
. "$(dirname "$0")/lib.sh"

clients_init
PCR=127.0.0.1:$PC_PORT
DISTR=127.0.0.1:$DIST_PORT
SEEDS=(sk ctr pod bare local)
for s in "${SEEDS[@]}"; do mkimages "$WORK/img-$s" "cache-$s" 1; done

# The upstream and its content: repository -> image dir and tags.
dist_start "$WORK/dist"
declare -A IMG=([library/skimg]=sk [library/ctrimg]=ctr [e2e/app]=ctr [library/podimg]=pod [library/bareimg]=bare)
declare -A TAGS=(
    [library/skimg]="oci-single oci-index docker-single docker-list"
    [library/ctrimg]="oci-single oci-index docker-list"
    [e2e/app]="docker-single"
    [library/podimg]="oci-single docker-single oci-index"
    [library/bareimg]="docker-single"
)
for repo in "${!TAGS[@]}"; do
    for tag in ${TAGS[$repo]}; do dist_push "$WORK/img-${IMG[$repo]}" "$tag" "$repo:$tag"; done
done

pc_start "$WORK/data" --upstream "docker.io=http://$DISTR" --default-upstream docker.io --local-prefix e2e/local

img_of() { echo "$WORK/img-${IMG[$1]}"; }
blob_of() { echo "$(img_of "$1")/blobs/sha256/${2#sha256:}"; } # REPO DIGEST
child_of() { # REPO INDEX_DIGEST ARCH
    jq -er --arg a "$3" '.manifests[] | select(.platform.architecture == $a) | .digest' "$(blob_of "$1" "$2")"
}
config_of() { jq -er .config.digest "$(blob_of "$1" "$2")"; } # REPO MANIFEST_DIGEST

# check_manifest_via PATH_REPO REF WANT_DIGEST WANT_MEDIATYPE: what pullcache
# serves at /v2/PATH_REPO/manifests/REF is byte-identical to the upstream's.
check_manifest_via() {
    local f=$WORK/m.$RANDOM
    expect_eq "$3" "$(reg_digest "$1" "$2")" "HEAD /v2/$1/manifests/$2 Docker-Content-Digest"
    expect_eq "$3" "$(reg_get_manifest "$1" "$2" "$f")" "sha256 of GET /v2/$1/manifests/$2"
    expect_eq "$3" "$(reg_header "$f.headers" Docker-Content-Digest)" "GET /v2/$1/manifests/$2 Docker-Content-Digest"
    expect_eq "$4" "$(reg_header "$f.headers" Content-Type)" "GET /v2/$1/manifests/$2 Content-Type"
}

# ---- skopeo, host-prefix path -----------------------------------------------------
echo "== skopeo: $PCR/docker.io/skimg:TAG"
for tag in ${TAGS[library/skimg]}; do
    want=$(img_digest "$(img_of library/skimg)" "$tag")
    out=$WORK/sk-$tag
    echo "+ skopeo copy --all docker://$PCR/docker.io/skimg:$tag dir:$out" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests --src-tls-verify=false \
        "docker://$PCR/docker.io/skimg:$tag" "dir:$out" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all docker://$PCR/docker.io/skimg:$tag (see clients.log)"
    expect_eq "$want" "$(sha "$out/manifest.json")" "skopeo copy $tag through the cache: top manifest digest"
    diff -r "$(img_of library/skimg)/dir/$tag" "$out" >&2 ||
        fail "skopeo copy $tag through the cache: differs from the upstream's image"
    mt=$(img_mediatype "$(img_of library/skimg)" "$tag")
    # The same image under every spelling of its name (library/ added, aliases).
    for p in docker.io/skimg docker.io/library/skimg index.docker.io/library/skimg registry-1.docker.io/skimg; do
        check_manifest_via "$p" "$tag" "$want" "$mt"
        check_manifest_via "$p" "$want" "$want" "$mt"
    done
    echo "ok: skopeo $tag ($want)"
done

# ---- containerd / ctr, hosts.toml mirror (?ns=) ----------------------------------------
echo "== ctr: hosts.toml mirror for docker.io and $DISTR"
ctd_start
HOSTS=$WORK/ctd-hosts
mkdir -p "$HOSTS/docker.io" "$HOSTS/$DISTR"
# docker.io: the real server stays (unreachable here: nothing can leak out);
# the upstream's own host: every request goes to pullcache, so a failure at
# the mirror cannot be hidden by a fallback to the upstream itself.
cat >"$HOSTS/docker.io/hosts.toml" <<TOML
server = "https://registry-1.docker.io"
[host."http://$PCR"]
  capabilities = ["pull", "resolve"]
TOML
cat >"$HOSTS/$DISTR/hosts.toml" <<TOML
server = "http://$PCR"
[host."http://$PCR"]
  capabilities = ["pull", "resolve"]
TOML

ctr_pull() { # REF ARGS...
    local ref=$1
    shift
    echo "+ ctr images pull --hosts-dir $HOSTS $* $ref" >>"$WORK/clients.log"
    c images pull --hosts-dir "$HOSTS" --snapshotter native "$@" "$ref" >>"$WORK/clients.log" 2>&1 ||
        fail "ctr images pull $* $ref (see clients.log)"
}
ctr_image_field() { c images ls "name==$1" 2>/dev/null | awk -v r="$1" -v n="$2" '$1 == r { print $n }'; }
ctr_has() { c content ls -q | grep -xF "$1" >/dev/null; }
# ctr_check REF REPO TAG PLATFORMS: ctr's image record and content store.
ctr_check() {
    local ref=$1 repo=$2 tag=$3 top m mm d
    top=$(img_digest "$(img_of "$repo")" "$tag")
    expect_eq "$top" "$(ctr_image_field "$ref" 3)" "digest of containerd image $ref"
    expect_eq "$(img_mediatype "$(img_of "$repo")" "$tag")" "$(ctr_image_field "$ref" 2)" "media type of containerd image $ref"
    case $tag in
    *-index | *-list) m=""; for a in $4; do m="$m $(child_of "$repo" "$top" "$a")"; done ;;
    *) m=$top ;;
    esac
    for mm in $m; do
        for d in "$mm" $(jq -r '.config.digest, .layers[].digest' "$(blob_of "$repo" "$mm")"); do
            ctr_has "$d" || fail "$ref: containerd's content store lacks $d"
        done
    done
}
# ctr_pull_check REF REPO TAG: pull (amd64 only, except lists and skopeo's
# indexes: all platforms, since those are cached in full) and check.
ctr_pull_check() {
    local plats="amd64"
    case "$2:$3" in
    library/skimg:oci-index | *:docker-list) plats="amd64 arm64"; ctr_pull "$1" --all-platforms ;;
    *) ctr_pull "$1" --platform linux/amd64 ;;
    esac
    ctr_check "$1" "$2" "$3" "$plats"
}
for tag in ${TAGS[library/ctrimg]}; do
    ctr_pull_check "docker.io/library/ctrimg:$tag" library/ctrimg "$tag"
    echo "ok: ctr docker.io/library/ctrimg:$tag"
done
ctr_pull_check "$DISTR/e2e/app:docker-single" e2e/app docker-single
echo "ok: ctr $DISTR/e2e/app:docker-single (ns=$DISTR)"
# What ctr asked for is in the cache, under the upstream's name.
check_manifest_via docker.io/library/ctrimg oci-index "$(img_digest "$WORK/img-ctr" oci-index)" \
    "$(img_mediatype "$WORK/img-ctr" oci-index)"
check_manifest_via docker.io/e2e/app docker-single "$(img_digest "$WORK/img-ctr" docker-single)" \
    "$(img_mediatype "$WORK/img-ctr" docker-single)"

# ---- podman, registries.conf mirror --------------------------------------------------------
echo "== podman: registries.conf mirror $PCR/docker.io"
cat >>"$WORK/registries.conf" <<CONF
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "$PCR/docker.io"
insecure = true
CONF
# pod_pull_check NAME REPO TAG: podman pull NAME (no --tls-verify: the mirror
# entry's insecure = true is what allows plain HTTP), then its image record.
pod_pull_check() {
    local name=$1 repo=$2 tag=$3 top m id
    top=$(img_digest "$(img_of "$repo")" "$tag")
    m=$top
    case $tag in *-index | *-list) m=$(child_of "$repo" "$top" amd64) ;; esac
    echo "+ podman pull --platform linux/amd64 $name" >>"$WORK/clients.log"
    id=$(pod pull -q --signature-policy "$WORK/policy.json" --platform linux/amd64 "$name" 2>>"$WORK/clients.log") ||
        fail "podman pull $name (see clients.log)"
    expect_eq "$(config_of "$repo" "$m" | sed 's/^sha256://')" "$id" "image ID from podman pull $name"
    expect_eq "$top" "$(pod image inspect --format '{{.Digest}}' "$name")" "podman image inspect .Digest of $name"
}
for tag in ${TAGS[library/podimg]}; do
    pod_pull_check "docker.io/podimg:$tag" library/podimg "$tag"
    echo "ok: podman docker.io/podimg:$tag"
done
check_manifest_via docker.io/library/podimg docker-single "$(img_digest "$WORK/img-pod" docker-single)" \
    "$(img_mediatype "$WORK/img-pod" docker-single)"

# ---- curl, bare paths (default upstream) -------------------------------------------------------
echo "== curl: bare /v2/library/bareimg/..."
want=$(img_digest "$WORK/img-bare" docker-single)
check_manifest_via library/bareimg docker-single "$want" "$(img_mediatype "$WORK/img-bare" docker-single)"
while read -r d s; do
    r=$(http_get "http://$PCR/v2/library/bareimg/blobs/$d" "$WORK/blob")
    expect_eq "200 0 $s" "$r" "GET /v2/library/bareimg/blobs/$d (status, curl rc, bytes)"
    expect_eq "$d" "$(sha "$WORK/blob")" "sha256 of GET /v2/library/bareimg/blobs/$d"
    expect_eq 200 "$(reg_status HEAD "/v2/library/bareimg/blobs/$d")" "HEAD /v2/library/bareimg/blobs/$d"
done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$(blob_of library/bareimg "$want")")
# The bare path and the host-prefix path are one cache entry.
check_manifest_via docker.io/library/bareimg docker-single "$want" "$(img_mediatype "$WORK/img-bare" docker-single)"
# Not at the upstream: 404 with the registry's error code.
r=$(http_get "http://$PCR/v2/library/bareimg/manifests/no-such-tag" "$WORK/e" -H "Accept: $MANIFEST_ACCEPT")
expect_eq 404 "${r%% *}" "GET of a tag the upstream lacks"
expect_eq MANIFEST_UNKNOWN "$(err_code "$WORK/e")" "error code of a tag the upstream lacks"
echo "ok: curl bare paths ($want)"

# ---- mirrored names are read-only; local repositories are writable -----------------------------
echo "== read-only mirror names, local pushes"
skimg_top=$(img_digest "$WORK/img-sk" oci-single)
for req in "POST /v2/docker.io/library/skimg/blobs/uploads/" \
    "POST /v2/index.docker.io/library/skimg/blobs/uploads/" \
    "PUT /v2/docker.io/library/skimg/manifests/pushed" \
    "DELETE /v2/docker.io/library/skimg/manifests/$skimg_top" \
    "PATCH /v2/docker.io/library/skimg/blobs/uploads/00000000-0000-0000-0000-000000000000"; do
    read -r m p <<<"$req"
    r=$(http_get "http://$PCR$p" "$WORK/e" -X "$m" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$(blob_of library/skimg "$skimg_top")")
    expect_eq 403 "${r%% *}" "$req: status"
    expect_eq DENIED "$(err_code "$WORK/e")" "$req: error code"
done
check_manifest_via docker.io/library/skimg oci-single "$skimg_top" "$(img_mediatype "$WORK/img-sk" oci-single)"
# A local repository under the local prefix: pushed and served, although bare
# names are otherwise the default upstream's. Outside the prefix a bare push is
# refused, never stored where it would shadow the mirror.
push_image "$WORK/img-local" oci-single e2e/local:v1
local_top=$(img_digest "$WORK/img-local" oci-single)
check_manifest_via e2e/local v1 "$local_top" "$(img_mediatype "$WORK/img-local" oci-single)"
r=$(http_get "http://$PCR/v2/e2e/other/blobs/uploads/" "$WORK/e" -X POST)
expect_eq 403 "${r%% *}" "POST /v2/e2e/other/blobs/uploads/ (bare, outside the local prefix): status"
expect_eq DENIED "$(err_code "$WORK/e")" "POST /v2/e2e/other/blobs/uploads/: error code"
echo "ok: 403 DENIED for writes under docker.io/ and bare mirrored names, e2e/local pushed and served"

# Metrics: the cold pulls were misses, the repeated reads hits.
for k in pullcache_cache_misses_total pullcache_cache_hits_total pullcache_upstream_requests_total pullcache_upstream_bytes_total; do
    [ "$(pc_metric "$k" 'upstream="docker.io"')" -gt 0 ] || fail "/metrics: $k{upstream=\"docker.io\"} is 0 after cold and warm pulls"
done

# ---- the upstream is gone: everything cached still pulls --------------------------------------
# ALL: name for ctr, name for podman, repo, tag.
ALL=()
for tag in ${TAGS[library/skimg]}; do ALL+=("docker.io/library/skimg:$tag docker.io/skimg:$tag library/skimg $tag"); done
for tag in ${TAGS[library/ctrimg]}; do ALL+=("docker.io/library/ctrimg:$tag docker.io/ctrimg:$tag library/ctrimg $tag"); done
for tag in ${TAGS[library/podimg]}; do ALL+=("docker.io/library/podimg:$tag docker.io/podimg:$tag library/podimg $tag"); done
ALL+=("docker.io/library/bareimg:docker-single docker.io/library/bareimg:docker-single library/bareimg docker-single")
ALL+=("$DISTR/e2e/app:docker-single docker.io/e2e/app:docker-single e2e/app docker-single")

# pull_everything WHAT: fresh containerd and podman storage, then every cached
# image with both, and the local one.
pull_everything() {
    local cref pref repo tag
    kill -TERM "$CTD_PID"
    wait "$CTD_PID" 2>/dev/null || true
    rm -rf "$WORK/ctd/root" "$WORK/ctd/state"
    ctd_start
    pod rmi -a -f >/dev/null 2>>"$WORK/clients.log" || true
    expect_eq "" "$(pod images -q)" "podman storage emptied"
    for e in "${ALL[@]}"; do
        read -r cref pref repo tag <<<"$e"
        ctr_pull_check "$cref" "$repo" "$tag"
        pod_pull_check "$pref" "$repo" "$tag"
    done
    ctr_pull "$PCR/e2e/local:v1" --platform linux/amd64
    expect_eq "$local_top" "$(ctr_image_field "$PCR/e2e/local:v1" 3)" "digest of $PCR/e2e/local:v1 ($1)"
    echo "ok: ${#ALL[@]} cached images + 1 local pulled with ctr and podman ($1)"
}

echo "== upstream stopped, within tag_ttl"
dist_stop
r=$(http_get "http://$DISTR/v2/" "$WORK/e") || true
expect_eq 000 "${r%% *}" "the upstream answers after dist_stop"
pull_everything "upstream stopped, tags within tag_ttl"

echo "== upstream stopped, tag_ttl passed (restart with tag_ttl: 1)"
pc_needs_persistent "the cache to survive a restart"
pc_stop
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: docker.io
    url: http://$DISTR
    tag_ttl: 1
    connect_timeout: 2
    read_timeout: 2
cache:
  default_upstream: docker.io
  local_prefixes: [e2e/local]
YML
pc_start "$WORK/data" --config "$WORK/pullcache.yml"
sleep 1.5 # let every tag's TTL (1 s) pass: each tag read below must revalidate, and fail
want=$(img_digest "$WORK/img-sk" docker-list)
r=$(http_get "http://$PCR/v2/docker.io/library/skimg/manifests/docker-list" "$WORK/m" -H "Accept: $MANIFEST_ACCEPT")
expect_eq "200 0" "${r% *}" "GET of a stale tag with the upstream stopped (status, curl rc)"
expect_eq "$want" "$(sha "$WORK/m")" "GET of a stale tag with the upstream stopped: body digest"
case $(reg_header "$WORK/m.h" Warning) in
299\ *) ;;
*) fail "GET of a stale tag with the upstream stopped: want a 'Warning: 299 ...' header, got '$(reg_header "$WORK/m.h" Warning)'" ;;
esac
pull_everything "upstream stopped, tag_ttl passed"
[ "$(pc_metric pullcache_cache_stale_total 'upstream="docker.io"')" -gt 0 ] ||
    fail "/metrics: pullcache_cache_stale_total{upstream=\"docker.io\"} is 0 after stale serves"
echo "PASS: $TEST_NAME"
