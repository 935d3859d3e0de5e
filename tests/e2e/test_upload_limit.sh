#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_upload_limit.sh - http.max_body_size bounds a blob, not only one
# request: an upload sent in many PATCH chunks stops at the limit with
# 413 SIZE_INVALID, the refused chunk appends nothing, and the session
# goes on (a smaller chunk, then the PUT) as if the refused one never came.
#
# Before: each chunk was checked alone, so a client could push a blob of any
# size in chunks under the limit. serve runs with http.max_body_size 1 MiB
# (the option this test is about; the default is 10 GiB).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

cat >"$WORK/config.yaml" <<YAML
http:
  max_body_size: 1048576
YAML
api_start "$WORK/data" --config "$WORK/config.yaml"

rand_file "$WORK/a" 700000
rand_file "$WORK/b" 400000
rand_file "$WORK/c" 300000
cat "$WORK/a" "$WORK/c" >"$WORK/ac"

upload_start lim/app
req PATCH "$UP" --data-binary "@$WORK/a" -H 'Content-Type: application/octet-stream' \
    -H 'Content-Range: 0-699999'
check_status 202 "a first chunk of 700000 bytes"
UP=$(loc_url "$(hdr Location)")

# declared: refused before its body is read
req PATCH "$UP" --data-binary "@$WORK/b" -H 'Content-Type: application/octet-stream' \
    -H 'Content-Range: 700000-1099999'
check_err 413 SIZE_INVALID "a declared chunk taking the upload to 1100000 bytes"
req GET "$UP"
check_status 204 "the session is still there"
expect_eq "0-699999" "$(hdr Range)" "Range after the refused declared chunk"

# undeclared (chunked transfer): cut at the limit, rewound
req PATCH "$UP" --data-binary "@$WORK/b" -H 'Content-Type: application/octet-stream' \
    -H 'Transfer-Encoding: chunked'
check_err 413 SIZE_INVALID "a chunked PATCH taking the upload past 1 MiB"
req GET "$UP"
check_status 204 "the session is still there after the chunked refusal"
expect_eq "0-699999" "$(hdr Range)" "Range after the refused chunked PATCH"

# the PUT with the last bytes (under the limit in total) completes the blob
req PUT "$(addq "$UP" "digest=$(dgst "$WORK/ac")")" --data-binary "@$WORK/c" \
    -H 'Content-Type: application/octet-stream' -H 'Content-Range: 700000-999999'
check_status 201 "the final PUT within the limit"
req GET "/v2/lim/app/blobs/$(dgst "$WORK/ac")"
check_status 200 "the blob"
cmp -s "$WORK/ac" "$RB" || fail "the stored blob is not the two accepted chunks"
echo "ok: the blob holds exactly the accepted chunks"

# a PUT whose body would pass the limit ends the upload with 413, nothing stored
upload_start lim/app
req PATCH "$UP" --data-binary "@$WORK/a" -H 'Content-Type: application/octet-stream'
check_status 202 "chunk one of a second upload"
UP=$(loc_url "$(hdr Location)")
cat "$WORK/a" "$WORK/b" >"$WORK/ab"
req PUT "$(addq "$UP" "digest=$(dgst "$WORK/ab")")" --data-binary "@$WORK/b" \
    -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked'
check_err 413 SIZE_INVALID "a chunked final PUT past the limit"
req HEAD "/v2/lim/app/blobs/$(dgst "$WORK/ab")"
check_status 404 "nothing was stored for the refused PUT"
api_done
