#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_stop.sh - SIGTERM (issue 11): serve stops accepting at once (a new
# connection is refused, not left waiting in the backlog) while a download in
# flight finishes whole (the drain), then exits 0. The download is a mirrored
# layer that the fake upstream stalls for 4 s after its first 300000 bytes, so
# it is certainly still in flight when the signal comes.
. "$(dirname "$0")/lib.sh"

FP=5002
PCR=127.0.0.1:$PC_PORT
mkimages "$WORK/img" stop 2
cat >"$WORK/stall.json" <<JSON
{"description": "big blobs: 300000 bytes, a 4 s stall, then the rest",
 "rules": [{"id": "stall", "method": "GET", "kind": "blob", "min_size": 1000000,
            "reply": {"stall_after_bytes": 300000, "stall_seconds": 4, "stall_then": "finish"}}]}
JSON
fake_start "$WORK/stall.json" "$FP" "" "" --repo library/s="$WORK/img"
# The upstream is the fake (the test is about a transfer it holds up).
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$FP"
m=$WORK/img/blobs/sha256/$(img_digest "$WORK/img" oci-single | sed 's/^sha256://')
read -r BIG SIZE < <(jq -r '.layers | max_by(.size) | "\(.digest) \(.size)"' "$m")

curl -sS -o "$WORK/big" "http://$PCR/v2/docker.io/library/s/blobs/$BIG" 2>>"$WORK/curl.log" &
DL=$!
for _ in $(seq 200); do [ "$(stat -c %s "$WORK/big" 2>/dev/null || echo 0)" -gt 0 ] && break; sleep 0.02; done
[ "$(stat -c %s "$WORK/big")" -lt "$SIZE" ] || fail "the download was not held up"
kill -TERM "$PC_PID"
for _ in $(seq 200); do grep -q 'signal 15: shutting down' "$WORK/pullcache.log" && break; sleep 0.02; done
grep -q 'signal 15: shutting down' "$WORK/pullcache.log" || fail "serve did not log the signal"
# The listening socket closes right after that line: a new connection is refused.
for _ in $(seq 20); do
    rc=0
    curl -sS -o /dev/null --connect-timeout 1 --max-time 2 "http://$PCR/v2/" 2>"$WORK/refused.err" || rc=$?
    [ "$rc" -eq 7 ] && break
done
expect_eq 7 "$rc" "a new connection after SIGTERM (curl exit 7: refused) [$(cat "$WORK/refused.err")]"
kill -0 "$DL" 2>/dev/null || fail "the download ended before the new connection was tried"
wait "$DL" || fail "the download in flight failed during the stop ($(cat "$WORK/curl.log"))"
expect_eq "$SIZE" "$(stat -c %s "$WORK/big")" "bytes of the download in flight"
expect_eq "$BIG" "$(sha "$WORK/big")" "digest of the download in flight"
rc=0
wait "$PC_PID" || rc=$?
expect_eq 0 "$rc" "serve's exit status"
PC_PID=""
echo "PASS: $TEST_NAME"
