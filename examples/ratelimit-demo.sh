#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ratelimit-demo.sh - the course chapter's rate limit experiment, offline on
# loopback, and its fix.
#
#   bash examples/ratelimit-demo.sh            (after `make`)
#
# One pullcache plays Docker Hub ("the hub"): it holds a test image and grants
# anonymous clients 100 pulls per 6 hours per address, counted and refused the
# way Docker Hub does (manifest GETs count, HEADs are free, 429
# TOOMANYREQUESTS past the limit, ratelimit-* headers on every manifest).
#
#   (a) A node pulls the image straight from the hub in a loop, like the
#       chapter's pull-and-delete script. `pullcache ratelimit` (a manifest
#       HEAD, so checking costs nothing) shows the budget falling; pull 101
#       fails with the hub's 429 body.
#   (b) A second pullcache is the cluster's pull-through cache in front of the
#       hub. 1000 pulls (10 nodes x 100) go through it; all succeed, and the
#       hub's budget for the cache drops by exactly 1: one manifest GET, after
#       which the cache serves the tag itself.
#
# The hub counts per client address, like Docker Hub. The node's direct pulls
# come from 127.0.0.1; the cache reaches the hub over IPv6 ([::1]), so the hub
# sees it as another client, as it would see a cache on its own host.
#
# The script checks both outcomes and exits non-zero if either differs, so it
# doubles as a test (tests/e2e/test_ratelimit_demo.sh runs it). It runs in a
# private network + PID namespace (only loopback up), starts every server
# itself, stops them by PID on exit, and keeps nothing (DEMO_KEEP=1 keeps the
# work dir).
#
# Environment: PULLCACHE (default build/pullcache), DEMO_PORT_HUB [18401],
# DEMO_PORT_CACHE [18402], DEMO_LIMIT [100], DEMO_CACHE_NODES [10],
# DEMO_CACHE_PULLS_PER_NODE [100]. Needs: skopeo (to push the test image),
# jq, bash, and what tests/tools/mkimage.sh needs.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

if [ -z "${PC_DEMO_IN_NETNS:-}" ] && [ "${DEMO_NETNS:-1}" = 1 ]; then
    if unshare --net --mount-proc --fork --pid true 2>/dev/null; then
        export PC_DEMO_IN_NETNS=1
        exec unshare --net --mount-proc --fork --pid --kill-child=TERM \
            bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
    fi
    echo "demo: cannot create a network namespace (needs root); using the host's loopback" >&2
fi

PULLCACHE=${PULLCACHE:-$REPO/build/pullcache}
HUB_PORT=${DEMO_PORT_HUB:-18401}
CACHE_PORT=${DEMO_PORT_CACHE:-18402}
LIMIT=${DEMO_LIMIT:-100}
WINDOW=21600
NODES=${DEMO_CACHE_NODES:-10}
PER_NODE=${DEMO_CACHE_PULLS_PER_NODE:-100}
CACHE_PULLS=$((NODES * PER_NODE))

for tool in skopeo jq; do
    command -v "$tool" >/dev/null || { echo "demo: needs $tool (scripts/deps.sh --test installs it)" >&2; exit 2; }
done
[ -x "$PULLCACHE" ] || { echo "demo: no pullcache binary at $PULLCACHE; run make first" >&2; exit 2; }

WORK=$(mktemp -d /tmp/pc-demo.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
    done
    if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "demo: work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

say() { printf '\n%s\n' "$*"; }
die() { echo "demo: FAILED: $*" >&2; exit 1; }
pc() { "$PULLCACHE" "$@"; }

wait_up() { # wait_up URL PID
    for _ in $(seq 100); do
        curl -s -o /dev/null "$1" && return 0
        kill -0 "$2" 2>/dev/null || die "server for $1 exited; see $WORK/*.log"
        sleep 0.1
    done
    die "no answer from $1"
}

# remaining REF: the budget the hub reports for this client (manifest HEAD).
remaining() { pc ratelimit --plain-http --json "$1" | jq -r '.remaining'; }

say "== Setting up: the hub (a pullcache with Docker Hub's anonymous limit: $LIMIT pulls / 6 h per address)"
pc serve --listen "[::]:$HUB_PORT" --data "$WORK/hub" \
    --limit-anonymous "$LIMIT/$WINDOW" >"$WORK/hub.log" 2>&1 &
HUB_PID=$!
PIDS+=("$HUB_PID")
wait_up "http://127.0.0.1:$HUB_PORT/v2/" "$HUB_PID"
bash "$REPO/tests/tools/mkimage.sh" -b 1 "$WORK/img" demo >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$WORK/img:oci-single" \
    "docker://127.0.0.1:$HUB_PORT/library/demo:latest" >/dev/null
DIRECT=127.0.0.1:$HUB_PORT/library/demo:latest
echo "hub at 127.0.0.1:$HUB_PORT and [::1]:$HUB_PORT holds library/demo:latest"
echo "\$ pullcache ratelimit --plain-http $DIRECT"
pc ratelimit --plain-http "$DIRECT"

say "== (a) Pulling straight from the hub in a loop (the chapter's pull-and-delete loop)"
first_fail=0
for i in $(seq 1 $((LIMIT + 1))); do
    if pc pull --plain-http --discard --json "$DIRECT" >"$WORK/pull.json" 2>"$WORK/pull.err"; then
        if [ $((i % 10)) -eq 0 ]; then
            printf 'pull %3d ok    ratelimit: %s left\n' "$i" "$(remaining "$DIRECT")"
        fi
    else
        first_fail=$i
        printf 'pull %3d FAILED: %s\n' "$i" "$(head -1 "$WORK/pull.err")"
        break
    fi
done
code=$(jq -r '.error.code // empty' "$WORK/pull.json")
status=$(jq -r '.error.status // empty' "$WORK/pull.json")
echo "\$ pullcache ratelimit --plain-http $DIRECT"
pc ratelimit --plain-http "$DIRECT"
left=$(remaining "$DIRECT")
[ "$first_fail" = $((LIMIT + 1)) ] || die "expected the first failure at pull $((LIMIT + 1)), got ${first_fail:-none}"
[ "$status" = 429 ] && [ "$code" = TOOMANYREQUESTS ] || die "pull $first_fail failed with $status $code, not 429 TOOMANYREQUESTS"
[ "$left" = 0 ] || die "the hub reports $left pulls left, not 0"
echo "=> pulls 1-$LIMIT succeeded, pull $first_fail got 429 TOOMANYREQUESTS, the budget is 0."

say "== (b) The same image through a pull-through cache (a second pullcache in front of the hub)"
pc serve --listen "127.0.0.1:$CACHE_PORT" --data "$WORK/cache" \
    --upstream "hub=http://[::1]:$HUB_PORT" --default-upstream hub >"$WORK/cache.log" 2>&1 &
CACHE_PID=$!
PIDS+=("$CACHE_PID")
wait_up "http://127.0.0.1:$CACHE_PORT/v2/" "$CACHE_PID"
AS_CACHE="[::1]:$HUB_PORT/library/demo:latest"
before=$(remaining "$AS_CACHE")
echo "hub budget for the cache's address before: $before"
echo "\$ pullcache loadgen --plain-http -n $NODES -m $PER_NODE 127.0.0.1:$CACHE_PORT/library/demo:latest"
pc loadgen --plain-http --json -n "$NODES" -m "$PER_NODE" \
    "127.0.0.1:$CACHE_PORT/library/demo:latest" >"$WORK/loadgen.json" || true
jq -r '"pulls: \(.pulls.ok) ok, \(.pulls.failed) failed of \(.pulls.planned); " +
       "latency p50 \(.latency_ms.p50 * 10 | round / 10) ms, p99 \(.latency_ms.p99 * 10 | round / 10) ms; \(.bytes) bytes"' "$WORK/loadgen.json"
after=$(remaining "$AS_CACHE")
echo "hub budget for the cache's address after:  $after"
echo "\$ curl -s http://127.0.0.1:$CACHE_PORT/_pullcache/status | jq '.upstreams[0].ratelimit'"
curl -s "http://127.0.0.1:$CACHE_PORT/_pullcache/status" | jq -c '.upstreams[0].ratelimit // empty' 2>/dev/null || true
ok=$(jq -r '.pulls.ok' "$WORK/loadgen.json")
[ "$ok" = "$CACHE_PULLS" ] || die "$ok of $CACHE_PULLS pulls through the cache succeeded"
[ "$before" = "$LIMIT" ] || die "the hub's budget for the cache started at $before, not $LIMIT"
[ "$after" = $((LIMIT - 1)) ] || die "the hub's budget for the cache went $before -> $after, not down by exactly 1"
echo "=> $CACHE_PULLS of $CACHE_PULLS pulls succeeded; the hub's budget went $before -> $after (one pull)."

say "== Result: direct pulls hit the limit at pull $first_fail; through the cache $CACHE_PULLS pulls cost the hub 1."
