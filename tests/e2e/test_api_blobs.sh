#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_api_blobs.sh - the blob half of the OCI Distribution Spec v1.1 with
# raw curl: monolithic, POST-then-PUT and chunked uploads, upload status and
# cancel, digest checks, HEAD/GET/Range, cross-repository mounts, blob delete
# and sha512 digests. Status codes, headers and error codes are the spec's
# (spec.md, "Push", "Pull", "Content Management", "Error Codes").
#
# REGISTRY=distribution runs the same requests against docker-registry 2.8;
# the few checks it fails for spec-permitted reasons are skipped there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

api_start "$WORK/data"
OCT=(-H 'Content-Type: application/octet-stream')
A=blobs/one
B=blobs/two

# ---------------------------------------------------------------------------
# distribution 2.8 does not do the single-POST upload (it answers 202 and
# starts a session, which the spec allows); pullcache does.
rand_file "$WORK/b1" 3000
D1=$(dgst "$WORK/b1")
rand_file "$WORK/bx" 100
rand_file "$WORK/by" 100
DX=$(dgst "$WORK/bx")
DY=$(dgst "$WORK/by")
if ! is_dist; then
# Monolithic single POST: /v2/<name>/blobs/uploads/?digest=<digest> -> 201 +
# Location (a pullable blob URL) + Docker-Content-Digest.
req POST "/v2/$A/blobs/uploads/?digest=$D1" --data-binary "@$WORK/b1" "${OCT[@]}"
check_status 201 "monolithic POST ?digest="
check_hdr Docker-Content-Digest "$D1" "monolithic POST ?digest="
L=$(hdr Location)
check_true "monolithic POST ?digest= has a Location" test -n "$L"
if [ -n "$L" ]; then
    req GET "$(loc_url "$L")"
    check_status 200 "GET the Location of a monolithic POST"
    check_body_file "$WORK/b1" "GET the Location of a monolithic POST"
fi

# Monolithic POST with a digest that does not match the body: 400
# DIGEST_INVALID, and nothing is published under either digest.
req POST "/v2/$A/blobs/uploads/?digest=$DY" --data-binary "@$WORK/bx" "${OCT[@]}"
check_err 400 DIGEST_INVALID "monolithic POST with the wrong digest"
req HEAD "/v2/$A/blobs/$DY"
check_status 404 "claimed digest not published after a failed monolithic POST"
req HEAD "/v2/$A/blobs/$DX"
check_status 404 "real digest not published after a failed monolithic POST"
else
    put_blob "$A" "$WORK/b1"
fi

# ---------------------------------------------------------------------------
# POST then PUT: POST -> 202 + Location; PUT <location>?digest= with the body
# -> 201 + Location + Docker-Content-Digest.
rand_file "$WORK/b2" 5000
D2=$(dgst "$WORK/b2")
req POST "/v2/$A/blobs/uploads/" -d '' -H 'Content-Type:'
check_status 202 "POST upload session"
L=$(hdr Location)
[ -n "$L" ] || fail "POST upload session: no Location ($(_resp))"
check_true "upload Location is under /v2/$A/blobs/uploads/" \
    eval '[[ $(loc_path "$L") == /v2/$A/blobs/uploads/?* ]]'
req PUT "$(addq "$(loc_url "$L")" "digest=$D2")" --data-binary "@$WORK/b2" "${OCT[@]}"
check_status 201 "PUT ?digest= closing a POST-then-PUT upload"
check_hdr Docker-Content-Digest "$D2" "PUT ?digest= closing a POST-then-PUT upload"
L=$(hdr Location)
check_true "PUT ?digest= has a Location" test -n "$L"
if [ -n "$L" ]; then
    req GET "$(loc_url "$L")"
    check_status 200 "GET the Location of a POST-then-PUT upload"
    check_body_file "$WORK/b2" "GET the Location of a POST-then-PUT upload"
fi

# ---------------------------------------------------------------------------
# Chunked: PATCH with Content-Range + Content-Length -> 202 + Location +
# Range: 0-<end> (+ Docker-Upload-UUID); out-of-order -> 416; GET <location>
# -> 204 + Location + Range; the closing PUT may carry the last chunk.
rand_file "$WORK/b3" 2500
D3=$(dgst "$WORK/b3")
head -c 1000 "$WORK/b3" >"$WORK/b3.1"
head -c 2000 "$WORK/b3" | tail -c 1000 >"$WORK/b3.2"
tail -c +2001 "$WORK/b3" >"$WORK/b3.3"

upload_start "$A"
# First chunk of a fresh session not starting at 0: 416 (conformance
# "PATCH request with first chunk out of order"; distribution 2.8 ignores
# Content-Range and appends).
if ! is_dist; then
    req PATCH "$UP" --data-binary "@$WORK/b3.2" "${OCT[@]}" -H 'Content-Range: 1000-1999'
    check_status 416 "first PATCH not starting at 0"
fi
req PATCH "$UP" --data-binary "@$WORK/b3.1" "${OCT[@]}" -H 'Content-Range: 0-999'
check_status 202 "PATCH chunk 1 (0-999)"
check_hdr Range "0-999" "PATCH chunk 1 (0-999)"
check_true "PATCH chunk 1 has Docker-Upload-UUID" test -n "$(hdr Docker-Upload-UUID)"
L=$(hdr Location)
[ -n "$L" ] || fail "PATCH chunk 1: no Location ($(_resp))"
UP=$(loc_url "$L")
req PATCH "$UP" --data-binary "@$WORK/b3.2" "${OCT[@]}" -H 'Content-Range: 1000-1999'
check_status 202 "PATCH chunk 2 (1000-1999)"
check_hdr Range "0-1999" "PATCH chunk 2 (1000-1999)"
check_true "PATCH chunk 2 has Docker-Upload-UUID" test -n "$(hdr Docker-Upload-UUID)"
L=$(hdr Location)
[ -n "$L" ] || fail "PATCH chunk 2: no Location ($(_resp))"
UP=$(loc_url "$L")
# A gap (chunk 3 claimed at 2100) and a repeat of chunk 2: both 416
# (distribution 2.8 does not look at Content-Range).
if ! is_dist; then
    req PATCH "$UP" --data-binary "@$WORK/b3.3" "${OCT[@]}" -H 'Content-Range: 2100-2599'
    check_status 416 "PATCH with a gap in Content-Range"
    req PATCH "$UP" --data-binary "@$WORK/b3.2" "${OCT[@]}" -H 'Content-Range: 1000-1999'
    check_status 416 "PATCH repeating an already uploaded range"
fi
# Upload status: 204 + Location + Range, unchanged by the refused PATCHes.
req GET "$UP"
check_status 204 "GET upload status"
check_hdr Range "0-1999" "GET upload status after refused PATCHes"
check_true "GET upload status has a Location" test -n "$(hdr Location)"
[ -n "$(hdr Location)" ] && UP=$(loc_url "$(hdr Location)")
# Close with the final chunk in the PUT.
req PUT "$(addq "$UP" "digest=$D3")" --data-binary "@$WORK/b3.3" "${OCT[@]}" \
    -H 'Content-Range: 2000-2499'
check_status 201 "closing PUT with the last chunk"
check_hdr Docker-Content-Digest "$D3" "closing PUT with the last chunk"
req GET "/v2/$A/blobs/$D3"
check_status 200 "GET chunked blob"
check_body_file "$WORK/b3" "GET chunked blob"
# The closed session is gone.
req GET "$UP"
check_err 404 BLOB_UPLOAD_UNKNOWN "GET status of a closed upload"

# Streamed PATCH without Content-Range (what docker and containerd send),
# then a closing PUT with no body.
rand_file "$WORK/b4" 4096
D4=$(dgst "$WORK/b4")
upload_start "$A"
req PATCH "$UP" --data-binary "@$WORK/b4" "${OCT[@]}"
check_status 202 "streamed PATCH without Content-Range"
check_hdr Range "0-4095" "streamed PATCH without Content-Range"
[ -n "$(hdr Location)" ] && UP=$(loc_url "$(hdr Location)")
req PUT "$(addq "$UP" "digest=$D4")" -H 'Content-Length: 0'
check_status 201 "closing PUT without a body"
req HEAD "/v2/$A/blobs/$D4"
check_status 200 "HEAD blob uploaded by a streamed PATCH"

# ---------------------------------------------------------------------------
# Cancel: DELETE <location> -> 204; afterwards 404 BLOB_UPLOAD_UNKNOWN.
upload_start "$A"
req PATCH "$UP" --data-binary "@$WORK/b3.1" "${OCT[@]}" -H 'Content-Range: 0-999'
check_status 202 "PATCH before cancel"
[ -n "$(hdr Location)" ] && UP=$(loc_url "$(hdr Location)")
req DELETE "$UP"
check_status 204 "DELETE upload session"
req GET "$UP"
check_err 404 BLOB_UPLOAD_UNKNOWN "GET status of a cancelled upload"
req PATCH "$UP" --data-binary "@$WORK/b3.2" "${OCT[@]}" -H 'Content-Range: 1000-1999'
check_err 404 BLOB_UPLOAD_UNKNOWN "PATCH a cancelled upload"
req PUT "$(addq "$UP" "digest=$D3")" -H 'Content-Length: 0'
check_err 404 BLOB_UPLOAD_UNKNOWN "PUT a cancelled upload"
req DELETE "$UP"
check_err 404 BLOB_UPLOAD_UNKNOWN "DELETE a cancelled upload again"

# ---------------------------------------------------------------------------
# PUT with the wrong digest: 400 DIGEST_INVALID, nothing published.
rand_file "$WORK/b5" 777
D5=$(dgst "$WORK/b5")
upload_start "$A"
req PUT "$(addq "$UP" "digest=$DY")" --data-binary "@$WORK/b5" "${OCT[@]}"
check_err 400 DIGEST_INVALID "closing PUT with the wrong digest"
req HEAD "/v2/$A/blobs/$DY"
check_status 404 "claimed digest not published after a wrong-digest PUT"
req HEAD "/v2/$A/blobs/$D5"
check_status 404 "real digest not published after a wrong-digest PUT"
req GET "/v2/$A/blobs/$D5"
check_err 404 BLOB_UNKNOWN "GET of the unpublished real digest"

# ---------------------------------------------------------------------------
# HEAD/GET: 200 + Docker-Content-Digest + Content-Length; HEAD has no body.
req HEAD "/v2/$A/blobs/$D2"
check_status 200 "HEAD blob"
check_hdr Docker-Content-Digest "$D2" "HEAD blob"
check_hdr Content-Length 5000 "HEAD blob"
req GET "/v2/$A/blobs/$D2"
check_status 200 "GET blob"
check_hdr Docker-Content-Digest "$D2" "GET blob"
check_hdr Content-Length 5000 "GET blob"
check_body_file "$WORK/b2" "GET blob"
req HEAD "/v2/$A/blobs/$DY"
check_status 404 "HEAD unknown blob"
req GET "/v2/$A/blobs/$DY"
check_err 404 BLOB_UNKNOWN "GET unknown blob"
# A blob of one repository is not visible through another.
req HEAD "/v2/blobs/elsewhere/blobs/$D2"
check_status 404 "HEAD blob through a repository that does not hold it"

# Range GET (RFC 9110): 206 + Content-Range; unsatisfiable -> 416.
head -c 20 "$WORK/b2" | tail -c 10 >"$WORK/b2.r"
req GET "/v2/$A/blobs/$D2" -H 'Range: bytes=10-19'
check_status 206 "Range bytes=10-19"
check_hdr Content-Range "bytes 10-19/5000" "Range bytes=10-19"
check_hdr Content-Length 10 "Range bytes=10-19"
check_body_file "$WORK/b2.r" "Range bytes=10-19"
tail -c 5 "$WORK/b2" >"$WORK/b2.s"
req GET "/v2/$A/blobs/$D2" -H 'Range: bytes=-5'
check_status 206 "Range bytes=-5 (suffix)"
check_hdr Content-Range "bytes 4995-4999/5000" "Range bytes=-5"
check_body_file "$WORK/b2.s" "Range bytes=-5"
tail -c +4991 "$WORK/b2" >"$WORK/b2.t"
req GET "/v2/$A/blobs/$D2" -H 'Range: bytes=4990-'
check_status 206 "Range bytes=4990- (open end)"
check_hdr Content-Range "bytes 4990-4999/5000" "Range bytes=4990-"
check_body_file "$WORK/b2.t" "Range bytes=4990-"
req GET "/v2/$A/blobs/$D2" -H 'Range: bytes=4990-99999'
check_status 206 "Range end past the blob is clamped"
check_hdr Content-Range "bytes 4990-4999/5000" "Range end past the blob is clamped"
req GET "/v2/$A/blobs/$D2" -H 'Range: bytes=5000-'
check_status 416 "Range starting at the blob size"
check_hdr Content-Range "bytes */5000" "416 carries the blob size (RFC 9110 14.4)"
req GET "/v2/$A/blobs/$D2" -H 'Range: bytes=9000-9999'
check_status 416 "Range past the end"

# ---------------------------------------------------------------------------
# Cross-repository mount: ?mount=<digest>&from=<repo> -> 201 + Location
# /v2/<name>/blobs/<digest> (conformance) + Docker-Content-Digest.
req POST "/v2/$B/blobs/uploads/?mount=$D1&from=$A" -d '' -H 'Content-Type:'
check_status 201 "mount from another repository"
check_eq "/v2/$B/blobs/$D1" "$(loc_path "$(hdr Location)")" "mount Location"
check_hdr Docker-Content-Digest "$D1" "mount"
req GET "/v2/$B/blobs/$D1"
check_status 200 "GET mounted blob"
check_body_file "$WORK/b1" "GET mounted blob"

# Mounting an unknown blob starts an ordinary upload session: 202 + Location.
rand_file "$WORK/b6" 64
D6=$(dgst "$WORK/b6")
req POST "/v2/$B/blobs/uploads/?mount=$D6&from=$A" -d '' -H 'Content-Type:'
check_status 202 "mount of an unknown blob"
L=$(hdr Location)
check_true "mount of an unknown blob: Location of an upload session" \
    eval '[[ $(loc_path "$L") == /v2/$B/blobs/uploads/?* ]]'
if [ -n "$L" ]; then
    UP=$(loc_url "$L")
    req GET "$UP"
    check_status 204 "status of the session a failed mount started"
    req PUT "$(addq "$UP" "digest=$D6")" --data-binary "@$WORK/b6" "${OCT[@]}"
    check_status 201 "finish the session a failed mount started"
fi

# Mount without from: pullcache finds the blob itself (spec: "MAY treat the
# from parameter as optional") -> 201. distribution 2.8 starts an upload.
if ! is_dist; then
    req POST "/v2/blobs/three/blobs/uploads/?mount=$D2" -d '' -H 'Content-Type:'
    check_status 201 "mount without from of a stored blob"
    check_eq "/v2/blobs/three/blobs/$D2" "$(loc_path "$(hdr Location)")" "mount without from: Location"
    req HEAD "/v2/blobs/three/blobs/$D2"
    check_status 200 "HEAD blob mounted without from"
fi

# ---------------------------------------------------------------------------
# Blob DELETE: 202, then 404; the same blob in another repository stays.
req DELETE "/v2/$B/blobs/$D1"
check_status 202 "DELETE blob"
req HEAD "/v2/$B/blobs/$D1"
check_status 404 "HEAD deleted blob"
req GET "/v2/$B/blobs/$D1"
check_err 404 BLOB_UNKNOWN "GET deleted blob"
req DELETE "/v2/$B/blobs/$D1"
check_err 404 BLOB_UNKNOWN "DELETE deleted blob again"
req GET "/v2/$A/blobs/$D1"
check_status 200 "GET the same blob in the repository it was mounted from"
check_body_file "$WORK/b1" "GET the same blob in the repository it was mounted from"
req DELETE "/v2/$B/blobs/$DY"
check_err 404 BLOB_UNKNOWN "DELETE unknown blob"

# ---------------------------------------------------------------------------
# sha512 digests: monolithic POST, POST-then-PUT, HEAD/GET.
rand_file "$WORK/b7" 1234
D7=$(dgst "$WORK/b7" sha512)
if ! is_dist; then
req POST "/v2/$A/blobs/uploads/?digest=$D7" --data-binary "@$WORK/b7" "${OCT[@]}"
check_status 201 "monolithic POST with a sha512 digest"
check_hdr Docker-Content-Digest "$D7" "monolithic POST with a sha512 digest"
req HEAD "/v2/$A/blobs/$D7"
check_status 200 "HEAD sha512 blob"
check_hdr Content-Length 1234 "HEAD sha512 blob"
check_hdr Docker-Content-Digest "$D7" "HEAD sha512 blob"
req GET "/v2/$A/blobs/$D7"
check_status 200 "GET sha512 blob"
check_body_file "$WORK/b7" "GET sha512 blob"
fi
rand_file "$WORK/b8" 999
D8=$(dgst "$WORK/b8" sha512)
upload_start "$A"
req PUT "$(addq "$UP" "digest=$D8")" --data-binary "@$WORK/b8" "${OCT[@]}"
check_status 201 "POST-then-PUT with a sha512 digest"
req GET "/v2/$A/blobs/$D8"
check_body_file "$WORK/b8" "GET sha512 blob (POST then PUT)"
req HEAD "/v2/$A/blobs/$D8"
check_status 200 "HEAD sha512 blob (POST then PUT)"
check_hdr Content-Length 999 "HEAD sha512 blob (POST then PUT)"
# Wrong sha512 digest.
upload_start "$A"
req PUT "$(addq "$UP" "digest=$(dgst "$WORK/bx" sha512)")" --data-binary "@$WORK/b8" "${OCT[@]}"
check_err 400 DIGEST_INVALID "closing PUT with the wrong sha512 digest"

# The daemon is still serving.
req GET /v2/
check_status 200 "GET /v2/ at the end"
api_done
