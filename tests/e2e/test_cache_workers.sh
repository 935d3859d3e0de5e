#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_workers.sh - serve's bounded job pools (src/lib/jobpool.c):
# requests that wait on an upstream run on http.workers threads, upstream
# blob fetches on cache.fetch_workers threads of their own. Against a slow
# fake upstream (slow_blobs) with both pools at 2 workers:
#   - 50 concurrent cold clients (two image sets, four tags each: some ask
#     for the same manifests and blobs, some for different ones; manifests
#     by tag, index children by digest, every blob, 3 at a time) all finish
#     with verified content, although far more requests wait for fetches
#     than there are workers: fetches have their own pool, a client waiting
#     for a fetch to start holds no worker, and a manifest request waits
#     only for a running exchange, so no job waits for one queued behind it
#     and the pools cannot deadlock (nor hold every request up);
#   - still one upstream GET per manifest and per blob (coalescing works
#     with fetches waiting in the queue);
#   - serve runs exactly http.workers request workers and
#     cache.fetch_workers fetch workers (threads pc-job-N, pc-fetch-N),
#     not a thread per miss;
#   - the meta-store connections opened for the 50 clients' misses
#     (pullcache_meta_connections_opened_total, before and after) are at
#     least one and at most http.threads + http.workers + cache.fetch_workers
#     (+ the lease heartbeat and the status history's writer):
#     every thread that touches the store keeps one connection for its life,
#     and those are the threads that serve requests (libmicrohttpd's
#     connection threads, which answer hits and start fetches, and the two
#     pools). serve's own threads (start-up, upkeep, the limiter's flush)
#     opened theirs before the clients came and are not in the difference.
#     A thread per miss (the old design) opens one per request: >= 50.
. "$(dirname "$0")/lib.sh"

FP=5002
P=http://127.0.0.1:$PC_PORT
DATA=$WORK/data
N=50
# The options are the subject: pools far smaller than the number of clients
# make every worker wait while more jobs queue (where a shared pool would
# deadlock), and fixed sizes let the connection bound come from the config.
WORKERS=2
FETCH_WORKERS=2
THREADS=2
cat >"$WORK/pc.yaml" <<EOF
http:
  threads: $THREADS
  workers: $WORKERS
cache:
  fetch_workers: $FETCH_WORKERS
EOF

pids=()
for s in a b; do
    bash "$PC_SRC/tests/tools/mkimage.sh" -b 1 "$WORK/img-$s" "workers-$s" >/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "mkimage.sh"; done
fake_start slow_blobs "$FP" - - --repo library/a="$WORK/img-a" --repo library/b="$WORK/img-b"
pc_start "$DATA" --config "$WORK/pc.yaml" --upstream "up=http://127.0.0.1:$FP"

# the pools: exactly the configured threads (comm names from jobpool.c)
pool_threads() { cat /proc/"$PC_PID"/task/*/comm 2>/dev/null | grep -c "^$1-[0-9]" || true; }
expect_eq "$WORKERS" "$(pool_threads pc-job)" "request workers at start"

TAGS=(oci-single oci-index docker-single docker-list)

# client I: image set a or b, one of four tags; the manifest by tag (an
# index: its amd64 child by digest), then every blob, 3 at a time, each
# body checked against its digest.
client() {
    local i=$1 s t d dir=$WORK/c$1 args=() U
    s=$([ $((i % 2)) = 0 ] && echo a || echo b)
    t=${TAGS[$(((i / 2) % 4))]}
    U=$P/v2/up/library/$s
    mkdir -p "$dir"
    curl -sS -f --max-time 300 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/top" "$U/manifests/$t" 2>"$dir/err" ||
        { echo "GET $s:$t: curl $?" >"$dir/result"; return; }
    if jq -e '.manifests' "$dir/top" >/dev/null; then
        d=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$dir/top")
        curl -sS -f --max-time 300 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/manifest" "$U/manifests/$d" 2>>"$dir/err" ||
            { echo "GET $s@$d: curl $?" >"$dir/result"; return; }
        [ "$(sha "$dir/manifest")" = "$d" ] || { echo "manifest digest $(sha "$dir/manifest")" >"$dir/result"; return; }
    else
        cp "$dir/top" "$dir/manifest"
    fi
    for d in $(jq -r '.config.digest, .layers[].digest' "$dir/manifest"); do
        args+=(-o "$dir/${d#sha256:}" "$U/blobs/$d")
    done
    curl -sS -f --max-time 300 -Z --parallel-max 3 "${args[@]}" 2>>"$dir/err" ||
        { echo "GET blobs of $s:$t: curl $?" >"$dir/result"; return; }
    for d in $(jq -r '.config.digest, .layers[].digest' "$dir/manifest"); do
        [ "$(sha "$dir/${d#sha256:}")" = "$d" ] || { echo "blob $d: digest $(sha "$dir/${d#sha256:}")" >"$dir/result"; return; }
        echo "$d" >>"$WORK/blobs.$i"
    done
    echo ok >"$dir/result"
}

echo "== $N concurrent cold clients, $WORKERS request workers, $FETCH_WORKERS fetch workers"
opened0=$(pc_metric pullcache_meta_connections_opened_total)
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
mapfile -t BLOBS < <(sort -u "$WORK"/blobs.*)
echo "ok: $N clients finished, ${#BLOBS[@]} distinct blobs verified"

# coalescing holds with fetches queued behind the two fetch workers
fake_settle "$FP"
for d in "${BLOBS[@]}"; do
    expect_eq 1 "$(fake_count "$FP" GET blob ".ref == \"$d\"")" "upstream GETs of blob $d"
done
expect_eq "${#BLOBS[@]}" "$(fake_count "$FP" GET blob)" "upstream blob GETs in all"
for s in a b; do
    for t in "${TAGS[@]}"; do
        expect_eq 1 "$(fake_count "$FP" GET manifest ".ref == \"$t\" and .name == \"library/$s\"")" \
            "upstream GETs of $s:$t"
    done
done
w=$(pc_metric pullcache_fetch_waiters_total 'upstream="up"')
[ "$w" -gt 0 ] || fail "no coalesced waiters after $N concurrent clients"
expect_eq 0 "$(pc_metric pullcache_fetches_in_flight 'upstream="up"')" "fetches in flight once all is done"
echo "ok: one upstream GET per manifest and per blob; $w coalesced waiters"

# the pools did not grow, and they hold the meta-store connections
expect_eq "$WORKERS" "$(pool_threads pc-job)" "request workers after $N clients"
expect_eq "$FETCH_WORKERS" "$(pool_threads pc-fetch)" "fetch workers after $N clients"
opened1=$(pc_metric pullcache_meta_connections_opened_total)
opened=$((opened1 - opened0))
# + 1: the thread that keeps the fetches' leases alive (docs/SCALE-OUT.md);
# + 1: the status history's writer, which opens its connection at its first
# write, a minute after the start (docs/STATUS.md): during the clients on a
# slow (sanitizer) build
bound=$((THREADS + WORKERS + FETCH_WORKERS + 2))
# the in-memory meta store has no connections: 0 opened, within the bound
pc_persistent || opened=1
[ "$opened" -ge 1 ] || fail "pullcache_meta_connections_opened_total did not count the misses' connections ($opened0 -> $opened1)"
[ "$opened" -le "$bound" ] ||
    fail "$N cold clients opened $opened meta-store connections; at most http.threads + http.workers + cache.fetch_workers + the lease heartbeat + the history writer = $bound"
open_now=$(pc_metric pullcache_meta_connections_open)
[ "$open_now" -le "$opened1" ] || fail "more connections open ($open_now) than ever opened ($opened1)"
echo "ok: $opened meta-store connections opened for $N clients' misses (bound $bound); $open_now open"

# a warm second round opens none (every serving thread has its connection)
for i in $(seq 10); do
    c=$(curl -sS -o /dev/null -w '%{http_code}' -H "Accept: $MANIFEST_ACCEPT" "$P/v2/up/library/a/manifests/oci-single")
    expect_eq 200 "$c" "warm manifest GET $i"
done
opened2=$(pc_metric pullcache_meta_connections_opened_total)
[ "$opened2" -le $((opened0 + bound)) ] ||
    fail "warm requests opened more connections: $opened0 -> $opened2 (bound $bound)"
echo "ok: warm requests stay within the bound ($opened0 -> $opened2)"
