#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_ranges.sh - Range requests on a blob that is not cached yet (issue
# 11; lazy-pulling snapshotters read layers by range). The fake upstream sends
# the first 300000 bytes of the big layer, then stalls for 6 s before the rest:
#   - a Range inside the bytes already arrived is answered 206 with exactly
#     those bytes while the fetch is still stalled (a whole-blob client started
#     first is still waiting);
#   - a Range that ends at the last byte waits for the verified end, then 206;
#   - a Range past the end is 416 with Content-Range: bytes */SIZE;
#   - a Range as the very first request starts the one fetch and gets 206;
#   - however many range requests and 20 more whole-blob clients joining the
#     stalled fetch, one upstream GET per blob, every client gets the verified
#     blob, and it is published (a later plain GET is 200 from the store).
. "$(dirname "$0")/lib.sh"

FP=5002
PCR=127.0.0.1:$PC_PORT
mkimages "$WORK/img" ranges 2
cat >"$WORK/stall.json" <<JSON
{"description": "big blobs: 300000 bytes, a 6 s stall, then the rest",
 "rules": [{"id": "stall", "method": "GET", "kind": "blob", "min_size": 1000000,
            "reply": {"stall_after_bytes": 300000, "stall_seconds": 6, "stall_then": "finish"}}]}
JSON
fake_start "$WORK/stall.json" "$FP" "" "" --repo library/r="$WORK/img"
# The upstream is the fake (the test is about its timing of bytes).
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$FP"

m=$WORK/img/blobs/sha256/$(img_digest "$WORK/img" oci-single | sed 's/^sha256://')
read -r BIG SIZE < <(jq -r '.layers | max_by(.size) | "\(.digest) \(.size)"' "$m")
[ "$SIZE" -gt 1000000 ] || fail "the big layer is only $SIZE bytes"
FILE=$WORK/img/blobs/sha256/${BIG#sha256:}
URL=http://$PCR/v2/docker.io/library/r/blobs/$BIG
want_bytes() { tail -c +$(($1 + 1)) "$FILE" | head -c $(($2 - $1 + 1)) | sha256sum | cut -d' ' -f1; }

# A whole-blob client starts the fetch; it stalls after 300000 bytes.
curl -sS -o "$WORK/whole" "$URL" 2>>"$WORK/curl.log" &
WHOLE=$!
PIDS+=("$WHOLE")
# (the fake logs a request when its reply ends: wait for the client's bytes instead)
for _ in $(seq 100); do [ "$(stat -c %s "$WORK/whole" 2>/dev/null || echo 0)" -ge 200 ] && break; sleep 0.05; done
r=$(http_get "$URL" "$WORK/r1" -H 'Range: bytes=100-199')
expect_eq "206 0 100" "$r" "Range bytes=100-199 during the stalled fetch"
expect_eq "$(want_bytes 100 199)" "$(sha256sum "$WORK/r1" | cut -d' ' -f1)" "the 100 bytes"
expect_eq "bytes 100-199/$SIZE" "$(reg_header "$WORK/r1.h" Content-Range)" "Content-Range"
kill -0 "$WHOLE" 2>/dev/null || fail "the whole-blob client finished before the stall ended: the range did not come early"
# 20 more whole pulls of the blob join the one fetch while it stalls.
MORE=()
for i in $(seq 20); do
    curl -sS -f -o "$WORK/more$i" "$URL" 2>>"$WORK/curl.log" &
    MORE+=($!)
    PIDS+=($!)
done
r=$(http_get "$URL" "$WORK/r2" -H "Range: bytes=$SIZE-")
expect_eq 416 "${r%% *}" "Range past the end"
expect_eq "bytes */$SIZE" "$(reg_header "$WORK/r2.h" Content-Range)" "416 Content-Range"
# The tail: answered once the blob is complete and verified.
r=$(http_get "$URL" "$WORK/r3" -H 'Range: bytes=-10')
expect_eq "206 0 10" "$r" "Range bytes=-10 (the last bytes)"
expect_eq "$(want_bytes $((SIZE - 10)) $((SIZE - 1)))" "$(sha256sum "$WORK/r3" | cut -d' ' -f1)" "the last 10 bytes"
wait "$WHOLE" || fail "the whole-blob client failed"
expect_eq "$BIG" "$(sha "$WORK/whole")" "the whole blob"
for i in $(seq 20); do
    wait "${MORE[$((i - 1))]}" || fail "whole-blob client $i of 20 failed"
    expect_eq "$BIG" "$(sha "$WORK/more$i")" "whole-blob client $i of 20"
done
expect_eq 1 "$(fake_count "$FP" GET blob "(.ref == \"$BIG\")")" "upstream GETs of the big blob"
r=$(http_get "$URL" "$WORK/w2")
expect_eq "200 0 $SIZE" "$r" "plain GET after the fetch (from the store)"

# A range as the first request of another cold blob starts its fetch.
read -r OTHER OSIZE < <(jq -r '.config | "\(.digest) \(.size)"' "$m")
r=$(http_get "http://$PCR/v2/docker.io/library/r/blobs/$OTHER" "$WORK/o1" -H 'Range: bytes=1-3')
expect_eq "206 0 3" "$r" "first request is a Range (bytes=1-3 of $OSIZE)"
expect_eq 1 "$(fake_count "$FP" GET blob "(.ref == \"$OTHER\")")" "upstream GETs of the config blob"
echo "PASS: $TEST_NAME"
