#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_faults_corrupt.sh - local fault matrix, damaged storage: a blob file
# with a flipped byte is never served whole (the stream is hashed, the
# connection cut before the last block) and is out of service afterwards; a
# truncated blob file is not served with the file's length (HEAD and GET
# say 404, the file is quarantined); both heal by pushing the blob again, no
# manual step; the log names `pullcache fsck --repair`. A meta.db with
# random bytes over its pages makes serve refuse to start, naming the file
# and what to do. A chunk refused with 416 appends nothing to its upload.
# And a truncated blob file of a mirrored repository is not served short
# either: it is taken out of service and fetched from the upstream again.
. "$(dirname "$0")/lib.sh"
pc_needs_disk "blob files and meta.db to damage in the data directory"

DATA=$WORK/data
B=http://127.0.0.1:$PC_PORT

push_blob() {
    curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
        --data-binary "@$2" "$B/v2/$1/blobs/uploads/?digest=$(sha "$2")" || echo 000
}
check_blob() {
    local code
    code=$(curl -sS -o "$WORK/got" -w '%{http_code}' "$B/v2/$1/blobs/$(sha "$2")") || code=000
    expect_eq 200 "$code" "GET blob $(sha "$2") of $1"
    cmp -s "$WORK/got" "$2" || fail "GET blob $(sha "$2") of $1: wrong bytes"
}
status() { curl -sS -o /dev/null -w '%{http_code}' "$@" || true; }
# upload_range URL: the Range of an upload session's status
upload_range() { curl -sS -o /dev/null -D - "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}'; }

pc_start "$DATA"
head -c 3000000 /dev/urandom >"$WORK/flip"
head -c 500000 /dev/urandom >"$WORK/short"
expect_eq 201 "$(push_blob app "$WORK/flip")" "push the blob to flip"
expect_eq 201 "$(push_blob app "$WORK/short")" "push the blob to truncate"
expect_eq 201 "$(push_blob other "$WORK/flip")" "push it into a second repository"
check_blob app "$WORK/flip"

# ---- a flipped byte --------------------------------------------------------------------
echo "== flipped byte"
f=$(pc_blob_file "$DATA" "$(sha "$WORK/flip")")
printf '\x5a' | dd of="$f" bs=1 seek=1234567 conv=notrunc 2>/dev/null
cmp -s "$f" "$WORK/flip" && fail "the byte did not flip"
rc=0
code=$(curl -sS -o "$WORK/got" -w '%{http_code}' "$B/v2/app/blobs/$(sha "$WORK/flip")" 2>>"$WORK/curl.log") || rc=$?
if [ "$(sha "$WORK/got")" != "$(sha "$WORK/flip")" ]; then
    # the client must see a failure: a cut body, never a complete wrong one
    [ "$rc" -ne 0 ] || fail "a flipped blob was served whole (status $code, curl ok)"
    [ "$(stat -c %s "$WORK/got")" -lt "$(stat -c %s "$WORK/flip")" ] ||
        fail "a flipped blob was served to its full length"
fi
grep -q "fsck --repair" "$WORK/pullcache.log" || fail "the log does not name fsck --repair for the damaged blob"
# out of service now: for every repository holding it, HEAD and GET
for repo in app other; do
    expect_eq 404 "$(status -I "$B/v2/$repo/blobs/$(sha "$WORK/flip")")" "HEAD of the damaged blob in $repo"
    expect_eq 404 "$(status "$B/v2/$repo/blobs/$(sha "$WORK/flip")")" "GET of the damaged blob in $repo"
done
ls "$DATA/quarantine/" | grep -q "$(sha "$WORK/flip" | cut -d: -f2)" || fail "no quarantined copy"
# a client pushing again (its HEAD said 404) heals it
expect_eq 201 "$(push_blob app "$WORK/flip")" "push the damaged blob again"
check_blob app "$WORK/flip"
check_blob other "$WORK/flip"

# ---- a truncated file ----------------------------------------------------------------------
echo "== truncated blob"
f=$(pc_blob_file "$DATA" "$(sha "$WORK/short")")
truncate -s 100000 "$f"
expect_eq 404 "$(status -I "$B/v2/app/blobs/$(sha "$WORK/short")")" "HEAD of a truncated blob"
expect_eq 404 "$(status "$B/v2/app/blobs/$(sha "$WORK/short")")" "GET of a truncated blob"
expect_eq 201 "$(push_blob app "$WORK/short")" "push the truncated blob again"
check_blob app "$WORK/short"
"$PULLCACHE" fsck --data "$DATA" >"$WORK/fsck.out" 2>&1 || fail "fsck after healing: $(cat "$WORK/fsck.out")"

# ---- 9a: a chunk refused with 416 appends nothing ---------------------------------------------
echo "== refused chunk"
printf 'abcdefghijklmnopqrst' >"$WORK/twenty"
url=$(reg_upload_url app)
expect_eq 202 "$(status -X PATCH -H 'Content-Range: 0-9' -H 'Content-Type: application/octet-stream' \
    --data-binary abcdefghij "$url")" "first chunk"
expect_eq 0-9 "$(upload_range "$url")" "upload after the first chunk"
# Content-Range promises 100 bytes, the (chunked, no Content-Length) body has 50
head -c 50 /dev/zero >"$WORK/fifty"
expect_eq 416 "$(status -X PATCH -H 'Content-Range: 10-109' -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/fifty" "$url")" "chunk shorter than its Content-Range"
expect_eq 0-9 "$(upload_range "$url")" "upload after a refused chunk"
expect_eq 202 "$(status -X PATCH -H 'Content-Range: 10-19' -H 'Content-Type: application/octet-stream' \
    --data-binary klmnopqrst "$url")" "second chunk after the refused one"
expect_eq 201 "$(status -X PUT "$(url_with_param "$url" "digest=$(sha "$WORK/twenty")")")" "finish"
check_blob app "$WORK/twenty"

# ---- a damaged meta.db -------------------------------------------------------------------------------
echo "== damaged meta.db"
pc_stop
pages=$(($(stat -c %s "$DATA/meta.db") / 4096))
[ "$pages" -ge 3 ] || fail "meta.db has only $pages pages"
cp "$DATA/meta.db" "$WORK/meta.db.good"
for p in $(seq 1 $((pages - 1))); do
    head -c 4000 /dev/urandom | dd of="$DATA/meta.db" bs=1 seek=$((p * 4096 + 96)) conv=notrunc 2>/dev/null
done
rc=0
timeout 20 "$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$DATA" >"$WORK/serve-bad.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "serve started on a damaged meta.db (rc $rc)"
grep -q "meta.db" "$WORK/serve-bad.log" || fail "the refusal does not name meta.db: $(cat "$WORK/serve-bad.log")"
grep -qi "damaged\|malformed" "$WORK/serve-bad.log" || fail "the refusal does not say it is damaged: $(cat "$WORK/serve-bad.log")"
grep -q "restore\|recover" "$WORK/serve-bad.log" || fail "the refusal says not what to do: $(cat "$WORK/serve-bad.log")"
# the good file back: serve starts and has everything that got a 201
cp "$WORK/meta.db.good" "$DATA/meta.db"
pc_start "$DATA"
check_blob app "$WORK/flip"
check_blob app "$WORK/short"
check_blob app "$WORK/twenty"

# ---- a truncated MIRRORED blob ------------------------------------------------------------------
# A mirrored repository's cached blob is read with the same size check as a
# local one: a file cut short is never served with its own length; the
# blob is taken out of service and fetched from the upstream again.
echo "== truncated mirrored blob"
pc_stop
UP=127.0.0.1:5002
pc2_start "$UP" "$WORK/up-data"
head -c 400000 /dev/urandom >"$WORK/mirrored"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "@$WORK/mirrored" "http://$UP/v2/lib/m/blobs/uploads/?digest=$(sha "$WORK/mirrored")") || code=000
expect_eq 201 "$code" "push the blob to mirror into the upstream"
# --upstream: this part is about a mirrored repository, which needs one
pc_start "$DATA" --upstream "up=http://$UP"
check_blob up/lib/m "$WORK/mirrored"
f=$(pc_blob_file "$DATA" "$(sha "$WORK/mirrored")")
[ -f "$f" ] || fail "the mirrored blob is not cached at $f"
truncate -s 100000 "$f"
len=$(curl -sS -I "$B/v2/up/lib/m/blobs/$(sha "$WORK/mirrored")" | tr -d '\r' |
    awk -F': ' 'tolower($1)=="content-length"{print $2}')
expect_eq 400000 "$len" "Content-Length of a HEAD of a truncated mirrored blob"
rc=0
code=$(curl -sS -o "$WORK/got" -w '%{http_code}' "$B/v2/up/lib/m/blobs/$(sha "$WORK/mirrored")" 2>>"$WORK/curl.log") || rc=$?
expect_eq "200 0" "$code $rc" "GET of a truncated mirrored blob (fetched again)"
cmp -s "$WORK/got" "$WORK/mirrored" ||
    fail "a truncated mirrored blob was served with $(stat -c %s "$WORK/got") wrong bytes"
expect_eq 400000 "$(stat -c %s "$f")" "size of the mirrored blob's file after the fetch"
grep -q "blob $(sha "$WORK/mirrored") is damaged" "$WORK/pullcache.log" ||
    fail "the log does not say the truncated mirrored blob is damaged"
echo "OK"
