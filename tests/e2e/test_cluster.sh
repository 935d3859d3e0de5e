#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cluster.sh - replicas on one set of stores (issue 14): three serve
# processes on one data directory (fs + SQLite, shared as S3 + PostgreSQL
# would be), each started with --advertise so the others can stream from it,
# in front of a slow fake upstream (slow_blobs: blobs wait 1 s, then 4 MiB/s):
#   - 30 concurrent clients spread over the three replicas pull one uncached
#     image (index, manifest, every blob): each gets verified bytes, and the
#     upstream's log shows exactly one GET per blob and per manifest (the
#     fetch and manifest leases: the replicas that did not win a blob's
#     streamed it from the one that did, a manifest's found it stored);
#   - kill -9 of the replica that is fetching a large blob while clients of
#     the other two follow it: both of those finish with verified bytes (one
#     takes the fetch over once the lease runs out, the other follows it), the
#     dead replica's client succeeds on its retry elsewhere, and the blob was
#     fetched upstream at most twice;
#   - a chunked upload whose chunks go to different replicas completes with
#     the right digest;
#   - one replica leads the upkeep (sweeps, eviction), the others say so;
#   - gc --grace 0 run six times while two replicas take 30 pushes: every
#     blob that got 201 is there afterwards, and every mirrored blob.
. "$(dirname "$0")/lib.sh"

pc_needs_disk "the replicas share one data directory"
FP=5002
P1=$PC_PORT
P2=5010
P3=5011
DATA=$WORK/data
bash "$PC_SRC/tests/tools/mkimage.sh" "$WORK/img" cluster >/dev/null || fail "mkimage.sh"
bash "$PC_SRC/tests/tools/mkimage.sh" -b 24 "$WORK/big" clusterbig >/dev/null || fail "mkimage.sh"
fake_start slow_blobs "$FP" - - --repo library/co="$WORK/img" --repo library/big="$WORK/big"

# --upstream: the mirror under test; --advertise: how the other replicas
# reach this one (the subject of the test)
pc_start "$DATA" --upstream "up=http://127.0.0.1:$FP" --advertise "http://127.0.0.1:$P1"
replica() { # PORT: another replica on the same data directory
    "$PULLCACHE" serve --listen "127.0.0.1:$1" --data "$DATA" --upstream "up=http://127.0.0.1:$FP" \
        --advertise "http://127.0.0.1:$1" >>"$WORK/replica-$1.log" 2>&1 &
    PIDS+=("$!")
    RPID[$1]=$!
    wait_http "http://127.0.0.1:$1/v2/" "$!"
}
declare -A RPID
RPID[$P1]=$PC_PID
replica "$P2"
replica "$P3"
PORTS=("$P1" "$P2" "$P3")
# one replica leads the upkeep (upload sweeps, eviction); the others leave
# it (each says so once its first round ran, just after it started serving)
upkeep_says() { cat "$WORK/pullcache.log" "$WORK"/replica-*.log | grep -c "upkeep: $1" || true; }
for _ in $(seq 100); do
    [ $(($(upkeep_says "this replica is the leader") + $(upkeep_says "left to the leader"))) -ge 3 ] && break
    sleep 0.1
done
expect_eq 1 "$(upkeep_says "this replica is the leader")" "replicas leading the upkeep"
expect_eq 2 "$(upkeep_says "left to the leader")" "replicas leaving the upkeep to the leader"

blob_path() { echo "$1/blobs/sha256/${2#sha256:}"; } # LAYOUT DIGEST

# ---- 30 clients over three replicas, one image ------------------------------------------------
N=30
top=$(img_digest "$WORK/img" oci-index)
amd=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$(blob_path "$WORK/img" "$top")")
mapfile -t BLOBS < <(jq -r '.config.digest, .layers[].digest' "$(blob_path "$WORK/img" "$amd")")
client() { # I PORT
    local dir=$WORK/c$1 U=http://127.0.0.1:$2/v2/up/library/co args=() d
    mkdir -p "$dir"
    curl -sS -f --max-time 120 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/index" "$U/manifests/oci-index" 2>"$dir/err" ||
        { echo "GET index: curl $?" >"$dir/result"; return; }
    [ "$(sha "$dir/index")" = "$top" ] || { echo "index digest $(sha "$dir/index")" >"$dir/result"; return; }
    curl -sS -f --max-time 120 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/manifest" "$U/manifests/$amd" 2>>"$dir/err" ||
        { echo "GET manifest: curl $?" >"$dir/result"; return; }
    [ "$(sha "$dir/manifest")" = "$amd" ] || { echo "manifest digest" >"$dir/result"; return; }
    for d in "${BLOBS[@]}"; do args+=(-o "$dir/${d#sha256:}" "$U/blobs/$d"); done
    curl -sS -f --max-time 120 -Z --parallel-max 3 "${args[@]}" 2>>"$dir/err" ||
        { echo "GET blobs: curl $?" >"$dir/result"; return; }
    for d in "${BLOBS[@]}"; do
        [ "$(sha "$dir/${d#sha256:}")" = "$d" ] || { echo "blob $d: wrong digest" >"$dir/result"; return; }
    done
    echo ok >"$dir/result"
}
echo "== $N clients over 3 replicas"
fake_reset_log "$FP"
cpids=()
for i in $(seq "$N"); do
    client "$i" "${PORTS[$((i % 3))]}" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
bad=0
for i in $(seq "$N"); do
    r=$(cat "$WORK/c$i/result" 2>/dev/null || echo "no result")
    [ "$r" = ok ] || { echo "client $i: $r ($(head -c 300 "$WORK/c$i/err" | tr '\n' ' '))" >&2; bad=$((bad + 1)); }
done
[ "$bad" = 0 ] || fail "$bad of $N clients did not get verified content"
for d in "${BLOBS[@]}"; do
    n=$(fake_count "$FP" GET blob ".ref == \"$d\"")
    expect_eq 1 "$n" "upstream GETs of blob $d over 3 replicas"
done
for ref in oci-index "$amd"; do
    n=$(fake_count "$FP" GET manifest ".ref == \"$ref\"")
    expect_eq 1 "$n" "upstream GETs of manifest $ref over 3 replicas"
done
expect_eq 0 "$(fake_count "$FP" HEAD manifest)" "upstream manifest HEADs (the tag was fresh on every replica)"
follows=0
for p in "${PORTS[@]}"; do
    v=$(curl -sS "http://127.0.0.1:$p/metrics" | awk '/^pullcache_fetch_follows_total/ { s += $2 } END { print s + 0 }')
    follows=$((follows + v))
done
[ "$follows" -ge 1 ] || fail "no replica followed another's fetch (pullcache_fetch_follows_total $follows)"
echo "ok: one upstream GET per blob and manifest; $follows fetches followed another replica"

# ---- kill -9 of the fetching replica -----------------------------------------------------------
echo "== kill -9 of the replica fetching a large blob"
bt=$(img_digest "$WORK/big" oci-single)
big=$(jq -r '.layers[1].digest' "$(blob_path "$WORK/big" "$bt")")
size=$(stat -c %s "$(blob_path "$WORK/big" "$big")")
# the manifest first on every replica, so each knows the blob's size
for p in "${PORTS[@]}"; do
    curl -sS -f -o /dev/null -H "Accept: $MANIFEST_ACCEPT" "http://127.0.0.1:$p/v2/up/library/big/manifests/oci-single" ||
        fail "manifest of the big image via $p"
done
fake_reset_log "$FP"
B=/v2/up/library/big/blobs/$big
curl -sS -N -o "$WORK/k1" --max-time 120 "http://127.0.0.1:$P1$B" 2>"$WORK/k1.err" &
k1=$!
# until replica 1 streams it (the upstream has sent bytes and holds the lease)
for _ in $(seq 200); do
    [ "$(stat -c %s "$WORK/k1" 2>/dev/null || echo 0)" -gt 0 ] && break
    sleep 0.05
done
[ "$(stat -c %s "$WORK/k1" 2>/dev/null || echo 0)" -gt 0 ] || fail "replica 1 streamed nothing of the big blob"
kpids=()
for p in "$P2" "$P3"; do
    curl -sS -f -o "$WORK/k$p" --max-time 120 "http://127.0.0.1:$p$B" 2>"$WORK/k$p.err" &
    kpids+=($!)
done
# both follow replica 1 (they received bytes of it) before it dies
for p in "$P2" "$P3"; do
    for _ in $(seq 200); do
        [ "$(stat -c %s "$WORK/k$p" 2>/dev/null || echo 0)" -gt 0 ] && break
        sleep 0.05
    done
done
kill -KILL "$PC_PID"
wait "$PC_PID" 2>/dev/null || true
PC_PID=""
wait "$k1" || true
for i in 0 1; do
    p=$(( i == 0 ? P2 : P3 ))
    wait "${kpids[$i]}" || fail "the client of replica $p failed after the kill: $(cat "$WORK/k$p.err")"
    expect_eq "$big" "$(sha "$WORK/k$p")" "blob via replica $p after the fetching replica died"
done
# the dead replica's client retries elsewhere
curl -sS -f -o "$WORK/k1" --max-time 120 "http://127.0.0.1:$P2$B" || fail "retry of replica 1's client"
expect_eq "$big" "$(sha "$WORK/k1")" "retried blob"
n=$(fake_count "$FP" GET blob ".ref == \"$big\"")
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail "the big blob was fetched $n times upstream (want 1 or 2)"
echo "ok: every client verified $size bytes; $n upstream GETs"

# ---- a chunked upload over replicas ------------------------------------------------------------
echo "== chunked upload, chunks to different replicas"
head -c 300000 /dev/urandom >"$WORK/up.bin"
want=$(sha "$WORK/up.bin")
loc=$(curl -sS -f -X POST -D - -o /dev/null "http://127.0.0.1:$P2/v2/team/app/blobs/uploads/" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
[ -n "$loc" ] || fail "no upload location"
off=0
i=0
while [ "$off" -lt 300000 ]; do
    n=$((300000 - off < 100000 ? 300000 - off : 100000))
    p=$([ $((i % 2)) = 0 ] && echo "$P2" || echo "$P3")
    dd if="$WORK/up.bin" of="$WORK/chunk" bs=100000 skip="$i" count=1 status=none
    loc=$(curl -sS -f -X PATCH -D - -o /dev/null -H "Content-Type: application/octet-stream" \
        -H "Content-Range: $off-$((off + n - 1))" --data-binary "@$WORK/chunk" "http://127.0.0.1:$p$loc" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
    [ -n "$loc" ] || fail "PATCH $i via $p"
    off=$((off + n))
    i=$((i + 1))
done
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$P3$(url_with_param "$loc" "digest=$want")")
expect_eq 201 "$code" "PUT finishing the upload on another replica"
curl -sS -f -o "$WORK/up.out" "http://127.0.0.1:$P2/v2/team/app/blobs/$want" || fail "GET the uploaded blob"
expect_eq "$want" "$(sha "$WORK/up.out")" "uploaded blob"
echo "ok: 3 chunks over two replicas, digest $want"

# ---- gc while the replicas serve -------------------------------------------------------------
echo "== gc --grace 0 while two replicas take pushes"
# --grace 0: the narrowest window there is (the subject)
(for _ in 1 2 3 4 5 6; do "$PULLCACHE" gc --data "$DATA" --upstream "up=http://127.0.0.1:$FP" --grace 0 \
    >>"$WORK/gc.log" 2>&1 || echo "gc failed" >>"$WORK/gc.log"; done) &
gcpid=$!
pushed=()
for i in $(seq 30); do
    p=$([ $((i % 2)) = 0 ] && echo "$P2" || echo "$P3")
    head -c $((1000 + i)) /dev/urandom >"$WORK/g$i"
    d=$(sha "$WORK/g$i")
    l=$(curl -sS -f -X POST -D - -o /dev/null "http://127.0.0.1:$p/v2/team/gc/blobs/uploads/" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$WORK/g$i" \
        -H "Content-Type: application/octet-stream" "http://127.0.0.1:$p$(url_with_param "$l" "digest=$d")")
    [ "$code" = 201 ] && pushed+=("$d")
done
wait "$gcpid"
! grep -q "gc failed" "$WORK/gc.log" || fail "gc failed while the replicas served: $(tail -5 "$WORK/gc.log")"
[ "${#pushed[@]}" = 30 ] || fail "only ${#pushed[@]} of 30 pushes got 201 during gc"
for d in "${pushed[@]}"; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/v2/team/gc/blobs/$d")
    expect_eq 200 "$code" "GET of blob $d that got 201 during gc"
done
# and every mirrored blob is still there (manifests hold them)
for d in "${BLOBS[@]}"; do
    expect_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/v2/up/library/co/blobs/$d")" \
        "mirrored blob $d after gc"
done
echo "ok: 30 blobs pushed during 6 gc runs all there; mirrored blobs kept"
