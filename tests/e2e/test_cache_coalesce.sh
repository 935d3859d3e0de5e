#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_coalesce.sh - one upstream fetch per digest, however many clients
# ask at once. Against a slow fake upstream (slow_blobs: manifests wait 0.5 s,
# blobs 1 s then stream at 4 MiB/s):
#   - 50 curl clients pull the same uncached image at once (index by tag, the
#     amd64 manifest by digest, then every blob, 3 at a time): the upstream's
#     request log shows exactly one GET per manifest and per blob, every client
#     got verified content, and /metrics counted coalesced waiters;
#   - 10 concurrent `skopeo copy --all` of another uncached image: one GET per
#     manifest and blob upstream, every copy byte-identical;
#   - clients that joined a fetch receive bytes while the upstream transfer is
#     still stalled (streamed, not stored and forwarded);
#   - a coalesced fetch that turns out to have the wrong bytes fails for every
#     client that joined it, publishes nothing, and the next GET fetches again.
. "$(dirname "$0")/lib.sh"

clients_init
FP=5002
P=http://127.0.0.1:$PC_PORT
DATA=$WORK/data
N=50
pids=()
for s in co:4 sk:1 st:1 wr:1; do
    bash "$PC_SRC/tests/tools/mkimage.sh" -b "${s#*:}" "$WORK/img-${s%%:*}" "coalesce-${s%%:*}" >/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "mkimage.sh"; done
fake_start slow_blobs "$FP" - - --repo library/co="$WORK/img-co" --repo library/sk="$WORK/img-sk" \
    --repo library/st="$WORK/img-st" --repo library/wr="$WORK/img-wr"
pc_start "$DATA" --upstream "up=http://127.0.0.1:$FP"

blob_path() { echo "$WORK/img-$1/blobs/sha256/${2#sha256:}"; } # SEED DIGEST

# ---- 50 curl clients, one image --------------------------------------------------------------
echo "== $N concurrent curl clients"
img=$WORK/img-co
top=$(img_digest "$img" oci-index)
amd=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$(blob_path co "$top")")
mapfile -t BLOBS < <(jq -r '.config.digest, .layers[].digest' "$(blob_path co "$amd")")
U=$P/v2/up/library/co

# client I: like a runtime: the index by tag, the platform's manifest by
# digest, then the blobs (3 transfers at a time); every body checked.
client() {
    local i=$1 d dir=$WORK/c$1 args=()
    mkdir -p "$dir"
    curl -sS -f --max-time 60 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/index" "$U/manifests/oci-index" 2>"$dir/err" ||
        { echo "GET index: curl $?" >"$dir/result"; return; }
    [ "$(sha "$dir/index")" = "$top" ] || { echo "index digest $(sha "$dir/index")" >"$dir/result"; return; }
    d=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$dir/index")
    curl -sS -f --max-time 60 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/manifest" "$U/manifests/$d" 2>>"$dir/err" ||
        { echo "GET manifest: curl $?" >"$dir/result"; return; }
    [ "$(sha "$dir/manifest")" = "$d" ] || { echo "manifest digest $(sha "$dir/manifest")" >"$dir/result"; return; }
    for d in $(jq -r '.config.digest, .layers[].digest' "$dir/manifest"); do
        args+=(-o "$dir/${d#sha256:}" "$U/blobs/$d")
    done
    curl -sS -f --max-time 60 -Z --parallel-max 3 "${args[@]}" 2>>"$dir/err" ||
        { echo "GET blobs: curl $?" >"$dir/result"; return; }
    for d in $(jq -r '.config.digest, .layers[].digest' "$dir/manifest"); do
        [ "$(sha "$dir/${d#sha256:}")" = "$d" ] || { echo "blob $d: digest $(sha "$dir/${d#sha256:}")" >"$dir/result"; return; }
    done
    echo ok >"$dir/result"
}
fake_reset_log "$FP"
cpids=()
for i in $(seq "$N"); do
    client "$i" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
bad=0
for i in $(seq "$N"); do
    r=$(cat "$WORK/c$i/result" 2>/dev/null || echo "no result")
    if [ "$r" != ok ]; then
        echo "client $i: $r ($(head -c 300 "$WORK/c$i/err" | tr '\n' ' '))" >&2
        bad=$((bad + 1))
    fi
done
[ "$bad" = 0 ] || fail "$bad of $N clients did not get verified content"
echo "ok: $N clients, each with the index, the manifest and ${#BLOBS[@]} blobs verified"

reqlog=$(fake_reqlog "$FP")
fake_settle "$FP"
jq -r 'select(.method == "GET" and (.kind == "blob" or .kind == "manifest")) | "\(.kind) \(.ref) \(.status) \(.bytes == .length)"' \
    "$reqlog" | sort | uniq -c >"$WORK/gets.txt"
cat "$WORK/gets.txt"
for d in "${BLOBS[@]}"; do
    expect_eq 1 "$(fake_count "$FP" GET blob ".ref == \"$d\"")" "upstream GETs of blob $d"
    expect_eq 1 "$(fake_count "$FP" GET blob ".ref == \"$d\" and .status == 200 and .bytes == .length")" \
        "complete upstream GETs of blob $d"
done
expect_eq "${#BLOBS[@]}" "$(fake_count "$FP" GET blob)" "upstream blob GETs in all"
expect_eq 1 "$(fake_count "$FP" GET manifest '.ref == "oci-index"')" "upstream GETs of the index (by tag)"
expect_eq 1 "$(fake_count "$FP" GET manifest ".ref == \"$amd\"")" "upstream GETs of the amd64 manifest"
expect_eq 2 "$(fake_count "$FP" GET manifest)" "upstream manifest GETs in all"
w=$(pc_metric pullcache_fetch_waiters_total 'upstream="up"')
[ "$w" -gt 0 ] || fail "/metrics: pullcache_fetch_waiters_total{upstream=\"up\"} is $w after $N concurrent clients"
expect_eq 0 "$(pc_metric pullcache_fetches_in_flight 'upstream="up"')" "/metrics: fetches in flight once all is done"
echo "ok: one upstream GET per manifest and per blob; $w coalesced waiters"

# ---- 10 concurrent skopeo copies -----------------------------------------------------------------
echo "== 10 concurrent skopeo copy --all"
fake_reset_log "$FP"
cpids=()
for i in $(seq 10); do
    sk copy -q --all --src-tls-verify=false "docker://127.0.0.1:$PC_PORT/up/library/sk:docker-list" \
        "dir:$WORK/sk$i" >"$WORK/sk$i.log" 2>&1 &
    cpids+=($!)
done
bad=0
for i in $(seq 10); do
    wait "${cpids[$((i - 1))]}" || { echo "skopeo copy $i failed: $(tail -3 "$WORK/sk$i.log")" >&2; bad=$((bad + 1)); }
done
[ "$bad" = 0 ] || fail "$bad of 10 concurrent skopeo copies failed"
for i in $(seq 10); do
    diff -r "$WORK/img-sk/dir/docker-list" "$WORK/sk$i" >&2 || fail "skopeo copy $i differs from the upstream's image"
done
fake_settle "$FP"
nb=$(find "$WORK/img-sk/dir/docker-list" -type f ! -name '*manifest.json' ! -name version | wc -l)
# (the whiteout layer is the same blob in every seed: already cached by the curl clients)
expect_eq $((nb - 1)) "$(fake_count "$FP" GET blob)" "upstream blob GETs for 10 skopeo copies ($nb blobs, one cached)"
expect_eq $((nb - 1)) "$(jq -rs '[.[] | select(.method == "GET" and .kind == "blob") | .ref] | unique | length' "$reqlog")" \
    "distinct blobs fetched upstream"
expect_eq 3 "$(fake_count "$FP" GET manifest)" "upstream manifest GETs (list + 2 children) for 10 skopeo copies"
echo "ok: 10 skopeo copies byte-identical, one upstream GET per manifest and blob"

# ---- bytes flow before the upstream transfer ends ------------------------------------------------
echo "== streaming while the upstream stalls"
d=$(jq -r '.layers[1].digest' "$(blob_path st "$(img_digest "$WORK/img-st" oci-single)")")
size=$(jq -r '.layers[1].size' "$(blob_path st "$(img_digest "$WORK/img-st" oci-single)")")
cat >"$WORK/stall_finish.json" <<'J'
{"rules": [{"id": "big blob: 200000 bytes, 6 s pause, then the rest", "method": "GET", "kind": "blob",
            "min_size": 65536, "replies": [{"stall_after_bytes": 200000, "stall_seconds": 6, "stall_then": "finish"}],
            "after": "pass"}]}
J
fake_scenario "$FP" "$WORK/stall_finish.json"
fake_reset_log "$FP"
cpids=()
for i in 1 2 3 4 5; do
    curl -sS -f --max-time 60 -o "$WORK/st$i" "$P/v2/up/library/st/blobs/$d" 2>>"$WORK/curl.log" &
    cpids+=($!)
done
# Once the upstream transfer has started (the clients were just launched)...
for _ in $(seq 100); do
    [ "$(curl -sS "http://127.0.0.1:$FP/_fake/stats" | jq .in_flight)" -ge 1 ] && break
    sleep 0.1
done
# ...and while it is paused, every client has bytes.
streamed=""
for _ in $(seq 100); do
    inflight=$(curl -sS "http://127.0.0.1:$FP/_fake/stats" | jq .in_flight)
    [ "$inflight" -ge 1 ] || break
    min=$size
    for i in 1 2 3 4 5; do
        n=$(stat -c %s "$WORK/st$i" 2>/dev/null || echo 0)
        [ "$n" -lt "$min" ] && min=$n
    done
    if [ "$min" -ge 65536 ]; then streamed=$min; break; fi
    sleep 0.1
done
[ -n "$streamed" ] || fail "no client had 64 KiB of the blob while the upstream (200000 bytes sent, then paused) was stalled; sizes: $(stat -c %s "$WORK"/st? 2>/dev/null | xargs)"
for p in "${cpids[@]}"; do wait "$p" || fail "a streaming client failed (curl.log)"; done
for i in 1 2 3 4 5; do expect_eq "$d" "$(sha "$WORK/st$i")" "streaming client $i: digest"; done
expect_eq 1 "$(fake_count "$FP" GET blob)" "upstream GETs for 5 streaming clients"
echo "ok: 5 clients had >= $streamed bytes while the upstream was paused, then the whole verified blob"

# ---- a coalesced fetch with the wrong bytes ----------------------------------------------------------
echo "== coalesced fetch, wrong bytes"
d=$(jq -r '.layers[1].digest' "$(blob_path wr "$(img_digest "$WORK/img-wr" oci-single)")")
size=$(jq -r '.layers[1].size' "$(blob_path wr "$(img_digest "$WORK/img-wr" oci-single)")")
cat >"$WORK/slow_wrong.json" <<'J'
{"rules": [{"id": "big blob: 1.5 s wait, then inverted bytes at 1 MiB/s", "method": "GET", "kind": "blob",
            "min_size": 65536, "replies": [{"delay_ms": 1500, "rate": 1048576, "wrong_bytes": true}], "after": "pass"}]}
J
fake_scenario "$FP" "$WORK/slow_wrong.json"
fake_reset_log "$FP"
cpids=()
for i in $(seq 10); do
    (
        rc=0
        code=$(curl -sS --max-time 60 -o "$WORK/wr$i" -w '%{http_code}' "$P/v2/up/library/wr/blobs/$d" 2>>"$WORK/curl.log") || rc=$?
        echo "$code $rc" >"$WORK/wr$i.result"
    ) &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
fake_settle "$FP"
for i in $(seq 10); do
    read -r code rc <"$WORK/wr$i.result"
    case "$code:$rc" in
    200:18 | 200:56 | 5??:0) ;;
    *) fail "wrong-bytes fetch, client $i: want a transfer cut short (200 + curl 18/56) or a 5xx, got status $code, curl rc $rc, $(stat -c %s "$WORK/wr$i" 2>/dev/null || echo 0) bytes" ;;
    esac
done
expect_eq 1 "$(fake_count "$FP" GET blob)" "upstream GETs for 10 clients of a wrong-bytes blob"
rc=0
pc_blob_present "$DATA" "$d" || rc=$?
[ "$rc" != 0 ] || fail "the wrong-bytes blob was stored"
fake_scenario "$FP" pass
expect_eq "200 0 $size" "$(http_get "$P/v2/up/library/wr/blobs/$d" "$WORK/wr-ok" --max-time 60)" "GET after the failed fetch"
expect_eq "$d" "$(sha "$WORK/wr-ok")" "GET after the failed fetch: digest"
expect_eq 2 "$(fake_count "$FP" GET blob)" "upstream GETs: the failed fetch and the new one"
echo "ok: 10 clients of a wrong-bytes fetch all failed, nothing stored, the next GET fetched again"
echo "PASS: $TEST_NAME"
