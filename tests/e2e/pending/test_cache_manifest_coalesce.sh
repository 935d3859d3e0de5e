#!/usr/bin/env bash
# test_cache_manifest_coalesce.sh - one upstream GET per manifest, however many
# clients ask at once (issue 3: "the upstream's request log shows exactly one
# GET per blob and one per manifest"). Against slow_blobs (manifest GETs wait
# 0.5 s upstream): 50 concurrent GETs of one uncached tag, then 50 of one
# uncached child manifest by digest, then 10 concurrent `skopeo copy --all` of
# another uncached image: every client gets the exact bytes, and upstream sees
# one GET per manifest.
. "$(dirname "$0")/../lib.sh"

clients_init
FP=5002
P=http://127.0.0.1:$PC_PORT
N=50
mkimages "$WORK/img" coalesce-manifest 1
fake_start slow_blobs "$FP" - - --repo library/m="$WORK/img" --repo library/sk="$WORK/img"
pc_start "$WORK/data" --upstream "up=http://127.0.0.1:$FP"
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# concurrent_gets PATH WANT_DIGEST: N clients at once, each must get WANT.
concurrent_gets() {
    local i p bad=0 cpids=()
    for i in $(seq "$N"); do
        curl -sS -f --max-time 60 -H "Accept: $MANIFEST_ACCEPT" -o "$WORK/g$i" "$P$1" 2>>"$WORK/curl.log" &
        cpids+=($!)
    done
    for p in "${cpids[@]}"; do wait "$p" || bad=$((bad + 1)); done
    [ "$bad" = 0 ] || fail "$bad of $N concurrent GETs of $1 failed (curl.log)"
    for i in $(seq "$N"); do expect_eq "$2" "$(sha "$WORK/g$i")" "client $i of $1: body digest"; done
}

top=$(img_digest "$WORK/img" oci-index)
child=$(jq -r '.manifests[0].digest' "$WORK/img/blobs/sha256/${top#sha256:}")
fake_reset_log "$FP"
concurrent_gets /v2/up/library/m/manifests/oci-index "$top"
expect_eq 1 "$(fake_count "$FP" GET manifest)" "upstream GETs for $N concurrent clients of one uncached tag"
fake_reset_log "$FP"
concurrent_gets "/v2/up/library/m/manifests/$child" "$child"
expect_eq 1 "$(fake_count "$FP" GET manifest)" "upstream GETs for $N concurrent clients of one uncached digest"
echo "ok: $N clients of a tag, $N of a digest: one upstream GET each"

fake_reset_log "$FP"
cpids=()
for i in $(seq 10); do
    sk copy -q --all --src-tls-verify=false "docker://127.0.0.1:$PC_PORT/up/library/sk:docker-list" \
        "dir:$WORK/sk$i" >"$WORK/sk$i.log" 2>&1 &
    cpids+=($!)
done
for i in $(seq 10); do wait "${cpids[$((i - 1))]}" || fail "skopeo copy $i: $(tail -3 "$WORK/sk$i.log")"; done
for i in $(seq 10); do diff -r "$WORK/img/dir/docker-list" "$WORK/sk$i" >&2 || fail "skopeo copy $i differs"; done
expect_eq 3 "$(fake_count "$FP" GET manifest)" "upstream manifest GETs (list + 2 children) for 10 concurrent skopeo copies"
echo "ok: 10 skopeo copies, one upstream GET per manifest"
echo "PASS: $TEST_NAME"
