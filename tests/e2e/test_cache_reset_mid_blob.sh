#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_reset_mid_blob.sh - an upstream connection reset in the middle of
# a blob never leaves the client hanging. reset_mid_blob: the first upstream
# GET of the blob sends 5000 bytes, then a TCP RST. The client must see its
# transfer fail at once (200 cut short: curl 18/56, or a 502), nothing is
# stored, the next GET fetches again. Then the same with every upstream GET
# reset, 30 times in a row (the failure can race with the client joining the
# fetch): every client transfer must end, none may hang until curl gives up.
. "$(dirname "$0")/lib.sh"

clients_init
FP=5002
P=http://127.0.0.1:$PC_PORT
DATA=$WORK/data
mkimages "$WORK/img" reset-1 1
fake_start reset_mid_blob "$FP" - - --repo library/r="$WORK/img"
pc_start "$DATA" --upstream "up=http://127.0.0.1:$FP"
m=$WORK/img/blobs/sha256/$(img_digest "$WORK/img" oci-single | cut -d: -f2)
big=$(jq -r '.layers[1].digest' "$m")
size=$(jq -r '.layers[1].size' "$m")
B=$P/v2/up/library/r/blobs/$big

# cut_short WHAT: one GET of the blob must fail promptly (curl gives up after
# 15 s: rc 28 means pullcache left the client hanging).
cut_short() {
    local code rc n
    read -r code rc n <<<"$(http_get "$B" "$WORK/cut" --max-time 15)"
    case "$code:$rc" in
    200:18 | 200:56 | 502:0) ;;
    *) fail "$1: want 200 cut short (curl 18/56) or 502; got status $code, curl rc $rc after $n bytes (headers: $(tr -d '\r' <"$WORK/cut.h" | tr '\n' '|'))" ;;
    esac
    rc=0
    pc_blob_present "$DATA" "$big" || rc=$?
    [ "$rc" != 0 ] || fail "$1: the blob was stored"
}

cut_short "reset_mid_blob, first GET"
expect_eq "200 0 $size" "$(http_get "$B" "$WORK/b" --max-time 15)" "GET after the reset"
expect_eq "$big" "$(sha "$WORK/b")" "GET after the reset: digest"
expect_eq 2 "$(fake_count "$FP" GET blob)" "upstream GETs (reset + retry)"
echo "ok: reset_mid_blob"

# A second pullcache (empty data dir) against an upstream that resets every GET.
pc_stop
DATA=$WORK/data2
pc_new_store
pc_start "$DATA" --upstream "up=http://127.0.0.1:$FP"
cat >"$WORK/reset_always.json" <<'J'
{"rules": [{"id": "reset every big blob GET", "method": "GET", "kind": "blob", "min_size": 65536,
            "replies": [{"reset_after_bytes": 5000}], "after": "repeat"}]}
J
fake_scenario "$FP" "$WORK/reset_always.json"
for i in $(seq 30); do cut_short "reset every time, GET $i"; done
fake_scenario "$FP" pass
expect_eq "200 0 $size" "$(http_get "$B" "$WORK/b" --max-time 15)" "GET once the upstream is healthy"
expect_eq "$big" "$(sha "$WORK/b")" "GET once the upstream is healthy: digest"
echo "ok: 30 reset transfers, none left hanging"
echo "PASS: $TEST_NAME"
