#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_faults_upstream_slow.sh - the upstream fault matrix, the faults that
# take time to play: stalled manifests, a token realm that hangs, stalled
# blobs, redirect loops and endless blob bodies, x {cold miss, cached and
# stale, 20 concurrent clients}, each followed by recovery (lib_faults.sh
# runs the table and says what each phase asserts). Then what the endless
# bodies cost, and a blob fetched by digest alone (no cached manifest
# declares its size): cut at cache.max_fetch_size.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

jq -n '{rules: [{id: "manifests hang", method: ["GET", "HEAD"], kind: "manifest", reply: {delay_ms: 12000}}]}' \
    >"$WORK/mstall.json" # read_timeout 8
jq -n '{rules: [{id: "big blob stalls", method: "GET", kind: "blob", min_size: 65536,
    reply: {stall_after_bytes: 1000, stall_seconds: 20}}]}' >"$WORK/bstall.json"
# endless: bounded at 256 MiB for safety (a build without the bound would take
# all of it); the bound under test is the manifest's 256 KiB
jq '.rules[0].reply.endless = 268435456' "$PC_SRC/tests/tools/scenarios/endless_blob.json" >"$WORK/bendless.json"

# NAME|SCENARIO|TARGET|COLD|STALE|COUNT|N|STALE_GETS (lib_faults.sh, fault_run)
# (redirect_loop loops manifest HEADs too: the stale tag is served stale;
# 11 requests = the first and 10 redirects followed)
TABLE=(
    "mstall|$WORK/mstall.json|manifest|504:UNAVAILABLE|stale|manifest|1|0"
    "mtoken|token_hang|manifest|504:UNAVAILABLE|stale|token|1|0"
    "mloop|redirect_loop|manifest|502:UNAVAILABLE|stale|manifest|11|0"
    "bstall|$WORK/bstall.json|blob|cut/502:UNAVAILABLE|ok|blob|1|0"
    "bloop|redirect_loop|blob|502:UNAVAILABLE|stale|blob|11|0"
    "bendless|$WORK/bendless.json|blob|cut/502:UNAVAILABLE|ok|blob|1|0"
)
names=()
for line in "${TABLE[@]}"; do names+=("${line%%|*}"); done
names+=(unsized)
faults_init "${names[@]}"
for line in "${TABLE[@]}"; do fault_run "$line"; done

# What the endless bodies cost: the fake logs the body bytes it got out; a
# fetch stopped one byte past the manifest's 256 KiB took that plus what the
# socket buffers held, never the 256 MiB offered.
log=$(fake_reqlog "$FP")
big=$(jq -s '[.[] | select(.outcome == "endless" or .outcome == "client_gone") | select(.bytes > 67108864)] | length' "$log")
expect_eq 0 "$big" "endless bodies of which serve took more than 64 MiB"
grep -q 'sent more than the [0-9]* bytes of blob' "$WORK/pullcache.log" ||
    fail "the log does not say the endless body went past the blob's size"
[ "$(pc_metric pullcache_upstream_errors_total 'upstream="up"' 'class="protocol"')" -gt 0 ] ||
    fail "/metrics: no upstream protocol errors counted for the bounded fetches"

# A blob asked by digest alone: no cached manifest declares its size, so
# cache.max_fetch_size (1 MiB here) bounds the endless body.
curl -sS -f "$F/_fake/content" >"$WORK/fake-content.json"
PH_REPO=unsized-a PH_BIG=$(big_digest unsized-a)
scenario "$WORK/bendless.json"
fake_reset_log "$FP"
o=$(blob_outcome "$PH_REPO" "$PH_BIG" "$WORK/b")
want_outcome "endless body, blob of unknown size" "cut/502:UNAVAILABLE" "$o"
n=$(jq -s --arg d "$PH_BIG" '[.[] | select(.ref == $d) | .bytes] | add' "$(fake_reqlog "$FP")")
[ "$n" -lt 67108864 ] || fail "endless body, blob of unknown size: serve took $n bytes (cache.max_fetch_size is 1 MiB)"
grep -q 'more than cache.max_fetch_size' "$WORK/pullcache.log" || fail "the log does not say the fetch hit cache.max_fetch_size"
no_spool "endless body, blob of unknown size"
not_stored "$PH_BIG" "endless body, blob of unknown size"
healthy
expect_eq ok "$(blob_outcome "$PH_REPO" "$PH_BIG" "$WORK/b")" "blob of unknown size, upstream healthy"
echo "ok: a blob of unknown size is cut at cache.max_fetch_size ($n bytes sent by the fake before serve hung up)"
echo "PASS: $TEST_NAME"
