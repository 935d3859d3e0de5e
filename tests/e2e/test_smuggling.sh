#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_smuggling.sh - request heads that could smuggle a request past a
# front proxy (RFC 9112) are refused on the spot, and a percent-encoded
# repository name never reaches a repository.
#
# Raw requests over one connection each (tests/tools/rawhttp.py prints every
# status line and whether the server closed the connection). For each shape:
# the first status line is the expected refusal, it is the only response
# (nothing hidden in the body ran), and the server closed the connection.
# Shapes (before: all accepted):
#   - "Transfer-Encoding : chunked" (space before the colon) with
#     Content-Length: 4: before, the header was ignored for framing and the
#     monolithic blob POST hidden after the 4 body bytes ran, storing a blob;
#     now 400 and the blob is absent, the request log shows no hidden POST;
#   - "Transfer-Encoding: gzip, chunked": 501 (before: 202, then read to the
#     end of the connection);
#   - Content-Length 9223372036854775808, and one byte over the default
#     http.max_body_size (10 GiB): 413 SIZE_INVALID at once (before: waited
#     for the body; rawhttp.py's 10 s read timeout is a liveness bound);
#   - a bare LF inside the headers (hiding a Transfer-Encoding line from a
#     proxy that only splits at CRLF), a bare CR in a value, a bare LF after
#     the request line, a folded (obs-fold) line: 400.
# Then: /v2/team%2fapp/... (and %2F) is 400 NAME_INVALID although team/app
# exists (before: decoded to team/app and served), a push to
# /v2/team%2fnew/... creates nothing, and a digest's %3a still decodes (an
# encoded byte in the last path component is allowed). A normal keep-alive
# connection with two requests still gets both answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

RAW=$PC_SRC/tests/tools/rawhttp.py
DATA=$WORK/data
api_start "$DATA"
MT_MAN=application/vnd.oci.image.manifest.v1+json

# raw NAME: send $WORK/NAME.req, set OUT to rawhttp.py's answer (lines)
raw() {
    OUT=$(/usr/bin/python3 "$RAW" "$REG" "$WORK/$1.req" --timeout 10)
    printf '%s\n' "$OUT" >"$WORK/$1.out"
}
# refused NAME WANT_STATUS(ES, a|b) WHAT: the one answer is WANT, the connection closed
refused() {
    local name=$1 want=$2 what=$3 first n state
    raw "$name"
    first=$(head -n 1 <<<"$OUT")
    n=$(grep -c '^[0-9][0-9][0-9]$' <<<"$OUT" || true)
    state=$(tail -n 1 <<<"$OUT")
    [[ "|$want|" == *"|$first|"* ]] || fail "$what: first answer '$first', want $want (got: $(tr '\n' ' ' <<<"$OUT"))"
    expect_eq 1 "$n" "$what: number of responses on the connection"
    expect_eq closed "$state" "$what: connection closed after the refusal"
    echo "ok: $what -> $first, one response, connection closed"
}

# the blob a hidden request would store, and its monolithic upload
printf 'smuggled bytes' >"$WORK/hidden"
HD=$(dgst "$WORK/hidden")
HIDDEN="POST /v2/smug/hidden/blobs/uploads/?digest=$HD HTTP/1.1"

# ---- Transfer-Encoding with whitespace before the colon (TE.CL) -------------------------------
# A proxy that reads "Transfer-Encoding : chunked" as chunked forwards all of
# this as one request; a server that ignores the header reads 4 body bytes
# and then runs the hidden monolithic blob POST (before: it did, 201).
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: %s\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n' "$REG"
    printf '5c\r\n%s\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 14\r\n\r\n' \
        "$HIDDEN" "$REG"
    cat "$WORK/hidden"
    printf '\r\n0\r\n\r\n'
} >"$WORK/te-space.req"
refused te-space 400 "Transfer-Encoding with a space before the colon"
req HEAD "/v2/smug/hidden/blobs/$HD"
check_status 404 "the blob of the hidden request was not stored"
grep -q 'POST /v2/smug/hidden' "$REG_LOG" && fail "the hidden request ran: $(grep 'POST /v2/smug/hidden' "$REG_LOG")"
grep -q 'GET /v2/ 400' "$REG_LOG" || fail "the request log does not show the refused request"
# the same with a tab, on an upload POST
{
    printf 'POST /v2/smug/front/blobs/uploads/ HTTP/1.1\r\nHost: %s\r\nContent-Length: 4\r\nTransfer-Encoding\t: chunked\r\n\r\n' "$REG"
    printf '5c\r\n%s\r\nHost: %s\r\nContent-Length: 14\r\n\r\n' "$HIDDEN" "$REG"
    cat "$WORK/hidden"
} >"$WORK/te-tab.req"
refused te-tab 400 "Transfer-Encoding with a tab before the colon (upload POST)"
req HEAD "/v2/smug/hidden/blobs/$HD"
check_status 404 "the blob of the hidden request was not stored (POST)"

# ---- a Transfer-Encoding other than chunked -------------------------------------------------------
printf 'POST /v2/smug/te/blobs/uploads/ HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' \
    "$REG" >"$WORK/te-gzip.req"
refused te-gzip "501|400" "Transfer-Encoding: gzip, chunked"
printf 'PUT /v2/smug/te/manifests/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nTransfer-Encoding: identity\r\n\r\n{}' \
    "$REG" "$MT_MAN" >"$WORK/te-identity.req"
refused te-identity "501|400" "Transfer-Encoding: identity"

# ---- Content-Length over the maximum body size -----------------------------------------------------
printf 'POST /v2/smug/big/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 9223372036854775808\r\n\r\nsome' \
    "$HD" "$REG" >"$WORK/cl-huge.req"
refused cl-huge "413|400" "Content-Length: 9223372036854775808"
printf 'PUT /v2/smug/big/manifests/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 10737418241\r\n\r\n{}' \
    "$REG" "$MT_MAN" >"$WORK/cl-over.req"
refused cl-over "413|400" "Content-Length one byte over http.max_body_size (10 GiB)"
# the 413 is an OCI error document
printf 'POST /v2/smug/big/blobs/uploads/ HTTP/1.1\r\nHost: %s\r\nContent-Length: 10737418241\r\n\r\n' "$REG" \
    >"$WORK/cl-body.req"
/usr/bin/python3 - "$REG" "$WORK/cl-body.req" >"$WORK/cl-body.resp" <<'EOF'
import socket, sys
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=10)
s.sendall(open(sys.argv[2], "rb").read())
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.split(b"\r\n\r\n", 1)[-1].decode())
EOF
expect_eq SIZE_INVALID "$(err_code "$WORK/cl-body.resp")" "the 413's error code"

# ---- bare LF, bare CR, folded lines -------------------------------------------------------------------
{
    printf 'POST /v2/smug/lf/blobs/uploads/ HTTP/1.1\r\nHost: %s\r\nContent-Length: 4\r\n' "$REG"
    printf 'X-Note: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
} >"$WORK/bare-lf.req"
refused bare-lf 400 "a bare LF inside the headers"
printf 'GET /v2/ HTTP/1.1\r\nHost: %s\r\nX-Note: a\rb\r\n\r\n' "$REG" >"$WORK/bare-cr.req"
refused bare-cr 400 "a bare CR in a header value"
printf 'GET /v2/ HTTP/1.1\nHost: %s\r\n\r\n' "$REG" >"$WORK/line-lf.req"
refused line-lf 400 "a bare LF after the request line"
printf 'GET /v2/ HTTP/1.1\r\nHost: %s\r\nX-Note: a\r\n b\r\n\r\n' "$REG" >"$WORK/fold.req"
refused fold 400 "a folded header line"

# ---- what is fine stays fine -------------------------------------------------------------------------
printf 'GET /v2/ HTTP/1.1\r\nHost: %s\r\nX-Empty:\r\nX-Sp: \r\nCookie: a=b; c=d\r\nTE: trailers\r\n\r\n' "$REG" >"$WORK/ok2.req"
printf 'GET /v2/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$REG" >>"$WORK/ok2.req"
raw ok2
expect_eq "200 200 closed" "$(tr '\n' ' ' <<<"$OUT" | sed 's/ $//')" "two keep-alive requests with empty values"
printf 'hello' >"$WORK/chunked"
req POST "/v2/smug/ok/blobs/uploads/?digest=$(dgst "$WORK/chunked")" -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/chunked"
check_status 201 "a chunked monolithic upload"
echo "ok: well-formed requests, keep-alive and chunked bodies still work"

# ---- percent-encoded names -------------------------------------------------------------------------
printf '{"architecture":"amd64","os":"linux"}' >"$WORK/cfg"
put_blob team/app "$WORK/cfg"
jq -cn --arg c "$(dgst "$WORK/cfg")" --argjson cs "$(stat -c %s "$WORK/cfg")" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: []}' >"$WORK/man"
put_manifest team/app v1 "$WORK/man" "$MT_MAN"
req GET /v2/team/app/manifests/v1 -H "Accept: $MT_MAN"
check_status 200 "team/app:v1 is there"
for p in /v2/team%2fapp/manifests/v1 /v2/team%2Fapp/manifests/v1 /v2/team%2fapp/tags/list \
    "/v2/team%2fapp/blobs/$(dgst "$WORK/cfg")" /v2/t%65am/app/manifests/v1; do
    req GET "$p" -H "Accept: $MT_MAN"
    check_err 400 NAME_INVALID "GET $p"
done
req PUT /v2/team%2fnew/manifests/v1 --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
check_err 400 NAME_INVALID "PUT /v2/team%2fnew/manifests/v1"
req GET /v2/team/new/manifests/v1 -H "Accept: $MT_MAN"
check_status 404 "nothing was pushed to team/new"
req POST /v2/team%2fnew/blobs/uploads/ -d '' -H 'Content-Type:'
check_err 400 NAME_INVALID "POST /v2/team%2fnew/blobs/uploads/"
# an encoded byte in the last component (the reference) still decodes
req HEAD "/v2/team/app/blobs/sha256%3a$(dgst "$WORK/cfg" | cut -d: -f2)"
check_status 200 "a digest with %3a"
grep -q 'percent-encoded' "$PC_SRC/docs/CONFIG.md" || fail "docs/CONFIG.md does not say how percent-encoded names are answered"
api_done
