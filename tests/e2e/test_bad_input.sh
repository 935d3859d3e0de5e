#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_bad_input.sh - a sweep of malformed, hostile and nonsensical requests.
#
# For every request: the answer is a 4xx, never a 5xx, and (for API-level
# errors) a spec error document {"errors":[{"code":...}]} whose code is the
# one the spec gives for the case (NAME_INVALID, DIGEST_INVALID, ...).
# Afterwards: the daemon still answers, nothing was written outside the data
# directory, and the data directory is unchanged except for what is listed
# at snapshot() below.
#
# HTTP-framing errors (malformed Content-Length, oversized request line or
# headers) are answered by libmicrohttpd before pullcache sees the request,
# with its own fixed body; for those only "4xx, never 5xx" is asserted (the
# spec allows a 4xx body in any format; only a JSON one must be an error
# document).
#
# REGISTRY=distribution runs the sweep in a relaxed mode, to check the test
# itself: every request must be answered without a 5xx, and nothing else is
# asserted (docker-registry 2.8 redirects non-canonical paths with 301,
# answers bad names with a plain-text 404, accepts uppercase names for
# uploads, and keeps its files in a different layout). It does fail there:
# docker-registry 2.8 answers 500 to a 256-character name, to manifest
# references containing ':' that are not digests, to a "null" manifest...
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

command -v sqlite3 >/dev/null || fail "needs the sqlite3 command (apt-get install sqlite3)"

DATA=$WORK/data
api_start "$DATA"
PORT=${R##*:}
GOOD=good/repo
OCT=(-H 'Content-Type: application/octet-stream')
MT_MAN=application/vnd.oci.image.manifest.v1+json
MT_IDX=application/vnd.oci.image.index.v1+json
# A unique marker for every path-traversal payload: any file whose name
# contains it, anywhere we look, was written through a traversal.
EVIL=pc-evil.$$.$RANDOM
H64=$(printf 'x' | sha256sum | cut -d' ' -f1) # some valid sha256 hex

# ---------------------------------------------------------------------------
# bad WANT_STATUS WANT_CODE WHAT METHOD PATH [curl args...]
#   WANT_STATUS: "400" or alternatives "400|404"
#   WANT_CODE:   a spec code or alternatives "TAG_INVALID|MANIFEST_INVALID";
#                "*" (alone or as an alternative) any code, as long as the
#                body is an error document; "-" no JSON required
#                (HEAD, or an answer from the HTTP layer)
# Always: the status is 4xx (000 = no answer, 5xx: failures).
bad() {
    local want=$1 codes=$2 what=$3
    shift 3
    req "$@"
    _judge "$want" "$codes" "$what" "$1"
}

_judge() {
    local want=$1 codes=$2 what=$3 method=$4 got_codes c ok
    if is_dist; then # relaxed: an answer, and no 5xx
        if [[ $ST == [1234][0-9][0-9] ]]; then _pass; else _fail "$what: $LAST_REQ: $(_resp)"; fi
        return 0
    fi
    if [[ $ST != 4[0-9][0-9] ]]; then
        _fail "$what: $LAST_REQ: want a 4xx ($want), $(_resp)"
        return 0
    fi
    if [[ "|$want|" != *"|$ST|"* ]]; then
        _fail "$what: $LAST_REQ: want $want, $(_resp)"
        return 0
    fi
    if [ "$codes" = - ] || [ "$method" = HEAD ]; then
        _pass
        return 0
    fi
    if ! jq -e '(.errors | type == "array" and length > 0)
                and all(.errors[]; (.code | type == "string" and test("^[A-Z_]+$")))' \
        "$RB" >/dev/null 2>&1; then
        _fail "$what: $LAST_REQ: status $ST but not a spec error document: $(head -c 200 "$RB")"
        return 0
    fi
    if [[ "|$codes|" == *"|*|"* ]]; then
        _pass
        return 0
    fi
    got_codes=$(err_codes)
    ok=false
    for c in $got_codes; do
        [[ "|$codes|" == *"|$c|"* ]] && ok=true
    done
    if $ok; then _pass; else _fail "$what: $LAST_REQ: $ST with code(s) '$got_codes', want $codes"; fi
}

# raw NAME: send the bytes of $WORK/NAME on a fresh connection and read the
# answer until the server closes it (at most 10 s: a hang guard, not a
# timing assertion). Sets RAW_OUT (file) and RAW_STATUSES ("400 400").
raw() {
    local fd rc=0
    RAW_OUT=$WORK/$1.out
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
    cat "$WORK/$1" >&"$fd" 2>/dev/null || true
    timeout 10 cat <&"$fd" >"$RAW_OUT" 2>/dev/null || rc=$?
    exec {fd}>&-
    RAW_STATUSES=$({ grep -a -o '^HTTP/1\.[01] [0-9][0-9][0-9]' "$RAW_OUT" || true; } |
        cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')
    RAW_TIMEDOUT=false
    [ "$rc" -ne 124 ] || RAW_TIMEDOUT=true
}

# raw_bad NAME WANT_STATUS WHAT [CODE]: every response on the connection is
# a 4xx (or one of WANT_STATUS), the first one is WANT_STATUS (alternatives
# "400|413"; "none" allows closing without an answer) and carries CODE when
# given; the server closed the connection.
raw_bad() {
    local name=$1 want=$2 what=$3 code=${4:-} s first
    raw "$name"
    local line
    IFS= read -r line <"$WORK/$name" || true
    line=${line%$'\r'}
    LAST_REQ="raw ${line:0:120}"
    if $RAW_TIMEDOUT; then
        _fail "$what: $LAST_REQ: connection still open after 10 s (statuses so far: '$RAW_STATUSES')"
        return 0
    fi
    if [ -z "$RAW_STATUSES" ]; then
        if [[ "|$want|" == *"|none|"* ]]; then _pass; else _fail "$what: $LAST_REQ: closed without any answer"; fi
        return 0
    fi
    for s in $RAW_STATUSES; do
        if is_dist && [[ $s == [1234][0-9][0-9] ]]; then continue; fi
        if [[ $s != 4[0-9][0-9] && "|$want|" != *"|$s|"* ]]; then
            _fail "$what: $LAST_REQ: a $s among the answers ($RAW_STATUSES)"
            return 0
        fi
    done
    first=${RAW_STATUSES%% *}
    if ! is_dist && [[ "|$want|" != *"|$first|"* ]]; then
        _fail "$what: $LAST_REQ: want $want, got $RAW_STATUSES: $(head -c 300 "$RAW_OUT" | tr -d '\r' | tr '\n' ' ')"
        return 0
    fi
    if [ -n "$code" ] && ! is_dist && ! grep -aq "\"code\":\"$code\"" "$RAW_OUT"; then
        _fail "$what: $LAST_REQ: no $code in: $(head -c 300 "$RAW_OUT" | tr -d '\r' | tr '\n' ' ')"
        return 0
    fi
    _pass
}

# snapshot OUT: the state of the data directory, one line per entry.
#   d PATH                      a directory
#   f PATH SIZE SHA256          a regular file
#   sqlite PATH: SQL            a SQLite database, compared by content
#                               (sqlite3 .dump), not by bytes: checkpoints
#                               move pages from the WAL into the main file
#                               whenever SQLite likes, so its bytes change
#                               without any data changing
#   ? PATH                      anything else
# Not recorded at all: SQLite's housekeeping files *-wal, *-shm, *-journal
# (written by every checkpoint and by readers, including this script).
# Not compared either: the upkeep lease and the status history's notes
# (serve renews and writes them on a clock). Lines mentioning an id in
# $SCRATCH_IDS are dropped: those are upload
# sessions this test started on purpose and then fed partial or refused
# data (their staging file and their row in the uploads table may change
# or vanish). Everything else must be byte-for-byte the same: published
# blobs, the staging file of the untouched session S1 (every PATCH aimed at
# it was refused), tmp/ (no leftovers of refused or aborted uploads), and
# the tables (no repository, tag, manifest, link or session created by a
# refused request).
SCRATCH_IDS=()
snapshot() {
    local out=$1 type path
    : >"$out.raw"
    while IFS=' ' read -r type path; do
        case $type in
        d) echo "d $path" ;;
        f)
            if [ "$(head -c 15 "$DATA/$path")" = "SQLite format 3" ]; then
                sqlite3 -readonly "$DATA/$path" .dump | sed "s|^|sqlite $path: |"
            else
                echo "f $path $(stat -c %s "$DATA/$path") $(sha256sum <"$DATA/$path" | cut -d' ' -f1)"
            fi
            ;;
        *) echo "? $path" ;;
        esac
    done < <(cd "$DATA" && find . -mindepth 1 \
        \( -name '*-wal' -o -name '*-shm' -o -name '*-journal' \) -prune -o -printf '%y %P\n' | sort) \
        >"$out.raw"
    local id
    # serve's own bookkeeping, written on a clock whatever clients send: the
    # upkeep lease (renewed every 5 minutes) and the status page's history
    grep -v -e "^sqlite meta.db: INSERT INTO leases VALUES('leader:upkeep'," \
        -e "^sqlite meta.db: INSERT INTO notes VALUES('history:" "$out.raw" >"$out" || true
    for id in "${SCRATCH_IDS[@]}"; do
        grep -v -F -- "$id" "$out" >"$out.tmp" || true
        mv "$out.tmp" "$out"
    done
}

# Files named after $EVIL anywhere a traversal could reach, and any
# /tmp/pc-evil* (compared before and after, so leftovers of other runs do
# not count).
# (find's status is ignored: other tests' temp directories come and go
# under /tmp while it walks, and a vanished one makes find exit 1; what it
# printed is what counts.)
evil_files() {
    find / -xdev -maxdepth 2 -name "*$EVIL*" 2>/dev/null || true
    find /tmp "$WORK" -maxdepth 5 -name "*$EVIL*" 2>/dev/null || true
    find /tmp -maxdepth 1 -name 'pc-evil*' 2>/dev/null || true
}

upload_id() { local p; p=$(loc_path "$1"); p=${p%%\?*}; printf '%s' "${p##*/}"; }

# ---------------------------------------------------------------------------
# Setup: a repository with a blob and a tagged manifest, and two upload
# sessions: S1 holds 4 bytes and must stay exactly so; S2 gets a chunk on a
# connection that drops.
printf '{"architecture":"amd64","os":"linux"}' >"$WORK/cfg"
printf 'layer bytes' >"$WORK/layer"
put_blob "$GOOD" "$WORK/cfg"
put_blob "$GOOD" "$WORK/layer"
DCFG=$(dgst "$WORK/cfg")
DLAYER=$(dgst "$WORK/layer")
jq -cn --arg mt "$MT_MAN" --arg c "$DCFG" --arg l "$DLAYER" \
    '{schemaVersion: 2, mediaType: $mt,
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: 37},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: 11}]}' >"$WORK/man"
put_manifest "$GOOD" latest "$WORK/man" "$MT_MAN"
DMAN=$(dgst "$WORK/man")

upload_start "$GOOD"
req PATCH "$UP" --data-binary abcd "${OCT[@]}" -H 'Content-Range: 0-3'
[ "$ST" = 202 ] || fail "setup: PATCH S1: $(_resp)"
S1=$(loc_url "$(hdr Location)")
S1_ID=$(upload_id "$S1")
# The victim of the NUL-byte requests: the same content in its own
# repository, and its own 4-byte session SV.
VICTIM=nul/victim
put_blob "$VICTIM" "$WORK/cfg"
put_blob "$VICTIM" "$WORK/layer"
put_manifest "$VICTIM" latest "$WORK/man" "$MT_MAN"
upload_start "$VICTIM"
req PATCH "$UP" --data-binary abcd "${OCT[@]}" -H 'Content-Range: 0-3'
[ "$ST" = 202 ] || fail "setup: PATCH SV: $(_resp)"
SV=$(loc_url "$(hdr Location)")
printf 'published through a NUL' >"$WORK/nulblob"
DNUL=$(dgst "$WORK/nulblob")
upload_start "$GOOD"
S2=$UP
S2_ID=$(upload_id "$S2")
SCRATCH_IDS+=("$S2_ID")

evil_files | sort >"$WORK/evil.before"
snapshot "$WORK/before"

# ---------------------------------------------------------------------------
# Dropped connections first (so the daemon has long noticed them when the
# data directory is compared at the end).
# (a) A monolithic POST whose client vanishes after 5000 of 100000 bytes:
#     the session the request created must not survive it.
rand_file "$WORK/big" 100000
DBIG=$(dgst "$WORK/big")
{
    printf 'POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\n' "$GOOD" "$DBIG"
    printf 'Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n'
    head -c 5000 "$WORK/big"
} >"$WORK/drop1"
exec {DROPFD}<>"/dev/tcp/127.0.0.1/$PORT"
cat "$WORK/drop1" >&"$DROPFD" || true # a server that already closed: the check is what it kept
exec {DROPFD}>&-
# (b) The same with curl killed mid-body (streaming from a FIFO, so bytes
#     are on the wire when it dies).
rand_file "$WORK/big2" 1048576
DBIG2=$(dgst "$WORK/big2")
mkfifo "$WORK/fifo"
curl -sS -o /dev/null -X POST -T - -H 'Expect:' -H 'Content-Length: 1048576' "${OCT[@]}" \
    "$R/v2/$GOOD/blobs/uploads/?digest=$DBIG2" <"$WORK/fifo" 2>/dev/null &
CURL_PID=$!
exec {FIFOFD}>"$WORK/fifo"
head -c 300000 "$WORK/big2" >&"$FIFOFD" 2>/dev/null || true
kill -KILL "$CURL_PID" 2>/dev/null || true
wait "$CURL_PID" 2>/dev/null || true
exec {FIFOFD}>&-
# (c) A PATCH to S2 that drops after 5000 of 100000 bytes.
{
    printf 'PATCH %s HTTP/1.1\r\nHost: x\r\n' "$(loc_path "$S2")"
    printf 'Content-Type: application/octet-stream\r\nContent-Length: 100000\r\nContent-Range: 0-99999\r\n\r\n'
    head -c 5000 "$WORK/big"
} >"$WORK/drop2"
exec {DROPFD}<>"/dev/tcp/127.0.0.1/$PORT"
cat "$WORK/drop2" >&"$DROPFD" || true # a server that already closed: the check is what it kept
exec {DROPFD}>&-

# ---------------------------------------------------------------------------
# Invalid repository names: 400 NAME_INVALID on every endpoint kind.
LONG256=$(head -c 256 /dev/zero | tr '\0' a)
for name in Upper/case "$LONG256" a/../b a/./b %2e%2e a/%2e%2e/b %252e%252e a//b a/ /a \
    -a a- a..b a___b a/.b "a%20b" 'a\b' "a%3Fb" "../../../../../../../../../../../../tmp/$EVIL"; do
    bad 400 NAME_INVALID "invalid name '$name': tags list" GET "/v2/$name/tags/list"
    bad 400 NAME_INVALID "invalid name '$name': manifest GET" GET "/v2/$name/manifests/latest"
    bad 400 - "invalid name '$name': manifest HEAD" HEAD "/v2/$name/manifests/latest"
    bad 400 NAME_INVALID "invalid name '$name': manifest PUT" PUT "/v2/$name/manifests/latest" \
        --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
    bad 400 NAME_INVALID "invalid name '$name': blob GET" GET "/v2/$name/blobs/$DLAYER"
    bad 400 NAME_INVALID "invalid name '$name': upload POST" POST "/v2/$name/blobs/uploads/" -d '' -H 'Content-Type:'
    bad 400 NAME_INVALID "invalid name '$name': monolithic POST" POST "/v2/$name/blobs/uploads/?digest=$DLAYER" \
        --data-binary "@$WORK/layer" "${OCT[@]}"
    bad 400 NAME_INVALID "invalid name '$name': referrers" GET "/v2/$name/referrers/$DMAN"
done
# Empty name.
bad 400 NAME_INVALID "empty name: manifest GET" GET "/v2//manifests/latest"
bad 400 NAME_INVALID "empty name: upload POST" POST "/v2//blobs/uploads/" -d '' -H 'Content-Type:'
# Mount from an invalid repository.
bad 400 NAME_INVALID "mount from an invalid name" POST "/v2/$GOOD/blobs/uploads/?mount=$DLAYER&from=../../$EVIL" \
    -d '' -H 'Content-Type:'
bad 400 NAME_INVALID "mount from an uppercase name" POST "/v2/$GOOD/blobs/uploads/?mount=$DLAYER&from=Good/Repo" \
    -d '' -H 'Content-Type:'

# ---------------------------------------------------------------------------
# Invalid tags: 400 TAG_INVALID (or MANIFEST_INVALID; DIGEST_INVALID for one
# with a ':', which reads as a digest) on PUT; a GET may also answer 404
# MANIFEST_UNKNOWN.
LONG129=$(head -c 129 /dev/zero | tr '\0' t)
LONG1000=$(head -c 1000 /dev/zero | tr '\0' t)
for tag in "$LONG129" "$LONG1000" .hidden -dash "a%3Ab" "a+b" "a%20b" ".." "%2e%2e"; do
    bad 400 "TAG_INVALID|MANIFEST_INVALID|DIGEST_INVALID" "invalid tag '$tag': PUT" PUT "/v2/$GOOD/manifests/$tag" \
        --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
    bad "400|404" "TAG_INVALID|MANIFEST_INVALID|DIGEST_INVALID|MANIFEST_UNKNOWN" "invalid tag '$tag': GET" \
        GET "/v2/$GOOD/manifests/$tag"
    bad "400|404" "TAG_INVALID|MANIFEST_INVALID|DIGEST_INVALID|MANIFEST_UNKNOWN" "invalid tag '$tag': DELETE" \
        DELETE "/v2/$GOOD/manifests/$tag"
done

# ---------------------------------------------------------------------------
# Invalid digests: 400 DIGEST_INVALID wherever a digest is expected.
UPPER=sha256:$(printf '%s' "$H64" | tr a-f A-F)
for d in "$UPPER" sha256:abc "sha256:${H64}0" "sha256:${H64:1}" "md5:${H64:0:32}" "sha512:$H64" \
    "sha256:" ":$H64" "sha256$H64" "SHA256:$H64" "sha256+b64:$H64"; do
    bad 400 "DIGEST_INVALID|UNSUPPORTED" "invalid digest '$d': blob GET" GET "/v2/$GOOD/blobs/$d"
    bad 400 - "invalid digest '$d': blob HEAD" HEAD "/v2/$GOOD/blobs/$d"
    bad 400 "DIGEST_INVALID|UNSUPPORTED" "invalid digest '$d': blob DELETE" DELETE "/v2/$GOOD/blobs/$d"
    bad 400 "DIGEST_INVALID|UNSUPPORTED" "invalid digest '$d': referrers" GET "/v2/$GOOD/referrers/$d"
    bad 400 "DIGEST_INVALID|UNSUPPORTED" "invalid digest '$d': monolithic POST" \
        POST "/v2/$GOOD/blobs/uploads/?digest=$d" --data-binary "@$WORK/layer" "${OCT[@]}"
    bad 400 "DIGEST_INVALID|UNSUPPORTED" "invalid digest '$d': mount" \
        POST "/v2/$GOOD/blobs/uploads/?mount=$d&from=$GOOD" -d '' -H 'Content-Type:'
    # As a manifest reference it is neither a digest nor a tag.
    bad "400|404" "DIGEST_INVALID|TAG_INVALID|MANIFEST_INVALID|MANIFEST_UNKNOWN|UNSUPPORTED" \
        "invalid digest '$d': manifest GET" GET "/v2/$GOOD/manifests/$d"
done
# A traversal as the digest of a query parameter.
for q in "digest=sha256:..%2f..%2f..%2f..%2f$EVIL" "digest=sha256:../../../../../../../../tmp/$EVIL"; do
    bad 400 DIGEST_INVALID "traversal digest in a monolithic POST ($q)" \
        POST "/v2/$GOOD/blobs/uploads/?$q" --data-binary "@$WORK/layer" "${OCT[@]}"
done
bad 400 DIGEST_INVALID "traversal digest in a mount" \
    POST "/v2/$GOOD/blobs/uploads/?mount=sha256:..%2f..%2f$EVIL&from=$GOOD" -d '' -H 'Content-Type:'

# A NUL byte (%00) in a name, tag, digest or upload id. libmicrohttpd
# decodes it, and a server that takes the decoded path as a C string sees a
# shorter, different, valid path. The answer must be a 4xx error and must not
# act on the shortened name: aimed at the $VICTIM fixtures, so that such a
# bug shows here and in the data directory comparison, not as noise in the
# rest of the sweep.
bad "400|404" "*" "NUL in a name" GET "/v2/a%00b/tags/list"
bad "400|404" "*" "NUL in a name (PUT)" PUT "/v2/$VICTIM%00x/manifests/latest" \
    --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
bad "400|404" "*" "NUL in a tag (PUT; must not tag 'a')" PUT "/v2/$VICTIM/manifests/a%00b" \
    --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
bad "400|404" "*" "NUL after a digest (GET)" GET "/v2/$VICTIM/blobs/sha256:$H64%00"
bad "400|404" "*" "NUL after a blob digest (DELETE; must not delete the blob)" \
    DELETE "/v2/$VICTIM/blobs/$DLAYER%00x"
bad "400|404" "*" "NUL after a manifest digest (DELETE; must not delete the manifest)" \
    DELETE "/v2/$VICTIM/manifests/$DMAN%00x"
bad "400|404" "*" "NUL after a tag (DELETE; must not delete tag 'latest')" \
    DELETE "/v2/$VICTIM/manifests/latest%00x"
bad "400|404" "*" "NUL in a digest parameter (must not publish)" \
    POST "/v2/$VICTIM/blobs/uploads/?digest=$DNUL%00x" --data-binary "@$WORK/nulblob" "${OCT[@]}"
bad "400|404" "*" "NUL in an upload id (must not append to the session)" \
    PATCH "$(loc_path "$SV")%00x" --data-binary evil "${OCT[@]}" -H 'Content-Range: 4-7'

# Path tricks in the digest position that no route matches.
bad 404 "*" "digest with slashes" GET "/v2/$GOOD/blobs/sha256:../../etc/passwd"
bad 404 "*" "digest with encoded slashes" GET "/v2/$GOOD/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd"
# An encoded colon decodes to a valid digest of a blob that is not there.
bad 404 BLOB_UNKNOWN "digest with %3a" GET "/v2/$GOOD/blobs/sha256%3a$H64"

# ---------------------------------------------------------------------------
# Upload ids that are not sessions, or sessions of another repository.
for id in .. . %2e%2e "..%2f..%2f$EVIL" "$(head -c 300 /dev/zero | tr '\0' a)" \
    "$S1_ID%2f..%2f..%2fmeta.db" "${S1_ID^^}"; do
    bad "400|404" "BLOB_UPLOAD_UNKNOWN|BLOB_UPLOAD_INVALID|*" "bogus upload id '$id': GET" \
        GET "/v2/$GOOD/blobs/uploads/$id"
    bad "400|404" "BLOB_UPLOAD_UNKNOWN|BLOB_UPLOAD_INVALID|*" "bogus upload id '$id': PATCH" \
        PATCH "/v2/$GOOD/blobs/uploads/$id" --data-binary "evil" "${OCT[@]}"
    bad "400|404" "BLOB_UPLOAD_UNKNOWN|BLOB_UPLOAD_INVALID|DIGEST_INVALID|*" "bogus upload id '$id': PUT" \
        PUT "/v2/$GOOD/blobs/uploads/$id?digest=$(dgst "$WORK/layer")" --data-binary "@$WORK/layer" "${OCT[@]}"
    bad "400|404" "BLOB_UPLOAD_UNKNOWN|BLOB_UPLOAD_INVALID|*" "bogus upload id '$id': DELETE" \
        DELETE "/v2/$GOOD/blobs/uploads/$id"
done
printf 'abcd' >"$WORK/abcd"
for other in other/repo good; do
    bad 404 BLOB_UPLOAD_UNKNOWN "S1 through repository $other: GET" GET "/v2/$other/blobs/uploads/$S1_ID"
    bad 404 BLOB_UPLOAD_UNKNOWN "S1 through repository $other: PATCH" \
        PATCH "/v2/$other/blobs/uploads/$S1_ID" --data-binary evil "${OCT[@]}" -H 'Content-Range: 4-7'
    bad 404 BLOB_UPLOAD_UNKNOWN "S1 through repository $other: PUT" \
        PUT "/v2/$other/blobs/uploads/$S1_ID?digest=$(dgst "$WORK/abcd")" -H 'Content-Length: 0'
    bad 404 BLOB_UPLOAD_UNKNOWN "S1 through repository $other: DELETE" DELETE "/v2/$other/blobs/uploads/$S1_ID"
done

# ---------------------------------------------------------------------------
# Bad Content-Range on S1 (holds 4 bytes): refused, S1 unchanged.
for cr in abc 4-2 4- -4 "-4-7" 4-7-9 "0-3" "5-8" "4-99999999999999999999999" "+4-7" "0x4-0x7" "4 - 7"; do
    bad "400|416" "BLOB_UPLOAD_INVALID|SIZE_INVALID" "PATCH S1 with Content-Range '$cr'" \
        PATCH "$S1" --data-binary evil "${OCT[@]}" -H "Content-Range: $cr"
done
# A range that does not match the body's length.
bad "400|416" "BLOB_UPLOAD_INVALID|SIZE_INVALID" "PATCH S1 with range 4-7 and 10 bytes" \
    PATCH "$S1" --data-binary 0123456789 "${OCT[@]}" -H "Content-Range: 4-7"
bad "400|416" "BLOB_UPLOAD_INVALID|SIZE_INVALID" "PATCH S1 with range 4-13 and 4 bytes" \
    PATCH "$S1" --data-binary evil "${OCT[@]}" -H "Content-Range: 4-13"
# Closing PUT of S1 with a bad range for its last chunk.
bad "400|416" "BLOB_UPLOAD_INVALID|SIZE_INVALID" "PUT S1 with Content-Range '0-3' for a new chunk" \
    PUT "$(addq "$S1" "digest=$(dgst "$WORK/abcd")")" --data-binary evil "${OCT[@]}" -H "Content-Range: 0-3"

# PUT without a digest, and with a wrong one, on a scratch session S3.
upload_start "$GOOD"
S3=$UP
SCRATCH_IDS+=("$(upload_id "$S3")")
bad 400 "DIGEST_INVALID|BLOB_UPLOAD_INVALID" "closing PUT without ?digest" \
    PUT "$S3" --data-binary "@$WORK/layer" "${OCT[@]}"
bad "400|404" "DIGEST_INVALID|BLOB_UPLOAD_UNKNOWN" "closing PUT with an empty ?digest" \
    PUT "$(addq "$S3" "digest=")" --data-binary "@$WORK/layer" "${OCT[@]}"
bad "400|404" "DIGEST_INVALID|BLOB_UPLOAD_UNKNOWN" "closing PUT with a digest that does not match" \
    PUT "$(addq "$S3" "digest=sha256:$H64")" --data-binary "@$WORK/layer" "${OCT[@]}"
bad "400|404" "DIGEST_INVALID|BLOB_UPLOAD_UNKNOWN" "closing PUT with a traversal digest" \
    PUT "$(addq "$S3" "digest=sha256:../../../../../../../../../tmp/$EVIL")" --data-binary "@$WORK/layer" "${OCT[@]}"
bad 400 "DIGEST_INVALID|UNSUPPORTED" "monolithic POST with an empty ?digest" \
    POST "/v2/$GOOD/blobs/uploads/?digest=" --data-binary "@$WORK/layer" "${OCT[@]}"
bad 400 "DIGEST_INVALID|SIZE_INVALID" "monolithic POST of a body that does not match its digest" \
    POST "/v2/$GOOD/blobs/uploads/?digest=sha256:$H64" --data-binary "@$WORK/layer" "${OCT[@]}"

# ---------------------------------------------------------------------------
# Pagination parameters.
for q in n=abc n=-1 n=1.5 "n=0x10" "n=1e3" "n=%20" "n=+1"; do
    bad 400 "*" "tags list ?$q" GET "/v2/$GOOD/tags/list?$q"
    bad 400 "*" "catalog ?$q" GET "/v2/_catalog?$q"
done
# Huge n may be clamped (200) or refused (400), never a 5xx; so may an empty n.
req GET "/v2/$GOOD/tags/list?n="
check_true "tags list with an empty n: 200 or 400" eval '[[ $ST == 200 || $ST == 400 ]]'
req GET "/v2/$GOOD/tags/list?n=99999999999999999999999"
check_true "tags list with a huge n: 200 or 400" eval '[[ $ST == 200 || $ST == 400 ]]'
req GET "/v2/_catalog?n=99999999999999999999999"
check_true "catalog with a huge n: 200 or 400" eval '[[ $ST == 200 || $ST == 400 ]]'

# ---------------------------------------------------------------------------
# Invalid manifests: 400 MANIFEST_INVALID, nothing stored.
mput() { # mput WHAT CONTENT_TYPE FILE [WANT_STATUS] [WANT_CODE]
    bad "${4:-400}" "${5:-MANIFEST_INVALID}" "$1" PUT "/v2/$GOOD/manifests/sweep" \
        --data-binary "@$3" -H "Content-Type: $2"
}
mk() { printf '%s' "$2" >"$WORK/$1"; }
mk j1 '{'
mk j2 '[]'
mk j3 'null'
mk j4 '""'
mk j5 '{"schemaVersion":2}'
mk j6 "{\"schemaVersion\":1,\"mediaType\":\"$MT_MAN\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$DCFG\",\"size\":37},\"layers\":[]}"
mk j7 "{\"schemaVersion\":2,\"mediaType\":\"$MT_MAN\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$DCFG\",\"size\":37},\"layers\":\"x\"}"
mk j8 "{\"schemaVersion\":2,\"mediaType\":\"$MT_MAN\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:bad\",\"size\":37},\"layers\":[]}"
mk j9 "{\"schemaVersion\":2,\"mediaType\":\"$MT_MAN\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$DCFG\",\"size\":-1},\"layers\":[]}"
mk j10 "{\"schemaVersion\":2,\"mediaType\":\"$MT_MAN\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$DCFG\",\"size\":\"37\"},\"layers\":[]}"
mk j11 "{\"schemaVersion\":2,\"mediaType\":\"$MT_MAN\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"../../../tmp/$EVIL\",\"size\":37},\"layers\":[]}"
mk j12 "{\"schemaVersion\":2,\"mediaType\":\"$MT_MAN\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$DCFG\",\"size\":37},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$DLAYER\"}]}"
mk j13 "{\"schemaVersion\":2,\"mediaType\":\"$MT_MAN\",\"manifests\":[]}"
for i in 1 2 3 4 5 6 7 9 10 12 13; do
    mput "invalid manifest j$i ($(head -c 60 "$WORK/j$i"))" "$MT_MAN" "$WORK/j$i"
done
for i in 8 11; do # an invalid digest inside a descriptor
    mput "invalid manifest j$i (bad descriptor digest)" "$MT_MAN" "$WORK/j$i" 400 "MANIFEST_INVALID|DIGEST_INVALID"
done
mput "empty manifest body" "$MT_MAN" /dev/null
# The body's mediaType contradicts Content-Type.
mput "manifest whose mediaType is not its Content-Type" "$MT_IDX" "$WORK/man"
mput "OCI manifest sent as a Docker v2s2 manifest" application/vnd.docker.distribution.manifest.v2+json "$WORK/man"
# Unknown media type.
jq -c 'del(.mediaType)' "$WORK/man" >"$WORK/nomt"
mput "manifest of an unknown media type" application/x-pc-unknown "$WORK/nomt" "400|415" "MANIFEST_INVALID|UNSUPPORTED"
mput "manifest of media type text/plain" text/plain "$WORK/nomt" "400|415" "MANIFEST_INVALID|UNSUPPORTED"
# Deep nesting, invalid UTF-8, a NUL byte.
head -c 100000 /dev/zero | tr '\0' '[' >"$WORK/deep"
mput "100000 nested arrays" "$MT_MAN" "$WORK/deep"
printf '{"schemaVersion":2,"mediaType":"%s","annotations":{"a":"\xff\xfe"}}' "$MT_MAN" >"$WORK/utf8"
mput "invalid UTF-8" "$MT_MAN" "$WORK/utf8"
printf '{"schemaVersion":2,"mediaType":"%s"\0}' "$MT_MAN" >"$WORK/nul"
mput "NUL byte in a manifest" "$MT_MAN" "$WORK/nul"
# A manifest PUT by a digest of other bytes.
bad 400 "DIGEST_INVALID|MANIFEST_INVALID" "manifest PUT under a digest of other bytes" \
    PUT "/v2/$GOOD/manifests/sha256:$H64" --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
req HEAD "/v2/$GOOD/manifests/sweep"
check_status 404 "no refused manifest was stored under the tag"

# ---------------------------------------------------------------------------
# Percent-encoded and dot-segment paths.
bad "400|404" "NAME_INVALID|NAME_UNKNOWN|*" "encoded dot segments as the name" \
    GET "/v2/%2e%2e/%2e%2e/blobs/$DLAYER"
bad "400|404" "NAME_INVALID|NAME_UNKNOWN|MANIFEST_UNKNOWN" "dot segments inside the name" \
    GET "/v2/a/b/../../c/manifests/x"
bad "400|404" "NAME_INVALID|NAME_UNKNOWN|MANIFEST_UNKNOWN" "dot segments out of a good name" \
    GET "/v2/$GOOD/../../$GOOD/manifests/latest"
bad "400|404" "NAME_INVALID|*" "traversal to /tmp in a manifest PUT" \
    PUT "/v2/$GOOD/../../../../../../../../../../../../tmp/$EVIL/manifests/x" \
    --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
bad "400|404" "NAME_INVALID|*" "encoded traversal to /tmp in a monolithic POST" \
    POST "/v2/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2ftmp%2f$EVIL/blobs/uploads/?digest=$DLAYER" \
    --data-binary "@$WORK/layer" "${OCT[@]}"
bad "400|404" "*" "traversal after blobs/uploads" \
    PATCH "/v2/$GOOD/blobs/uploads/../../../../../../../../../../tmp/$EVIL" --data-binary evil "${OCT[@]}"
bad 404 "*" "not an API path" GET "/v2/$GOOD/whatever"
bad 404 "*" "not an API path (v3)" GET "/v3/"
bad 404 "*" "not an API path (root)" GET "/"
bad 404 "*" "not an API path (/v2/../etc/passwd)" GET "/v2/../etc/passwd"

# ---------------------------------------------------------------------------
# Methods an endpoint does not have: 405 (with Allow, RFC 9110 15.5.6) or
# 404, with a spec error document.
notallowed() { # notallowed WHAT METHOD PATH [curl args]
    local what=$1
    shift
    bad "405|404" "UNSUPPORTED|NAME_UNKNOWN|MANIFEST_UNKNOWN|BLOB_UNKNOWN|BLOB_UPLOAD_UNKNOWN" "$what" "$@"
    if [ "$ST" = 405 ] && [ -z "$(hdr Allow)" ]; then
        NO_ALLOW+=("$LAST_REQ")
    fi
}
NO_ALLOW=()
notallowed "POST a manifest" POST "/v2/$GOOD/manifests/latest" --data-binary "@$WORK/man" -H "Content-Type: $MT_MAN"
notallowed "PATCH a manifest" PATCH "/v2/$GOOD/manifests/latest" --data-binary "@$WORK/man"
notallowed "PATCH a blob" PATCH "/v2/$GOOD/blobs/$DLAYER" --data-binary evil
notallowed "PUT a blob" PUT "/v2/$GOOD/blobs/$DLAYER" --data-binary "@$WORK/layer"
notallowed "POST a blob" POST "/v2/$GOOD/blobs/$DLAYER" --data-binary "@$WORK/layer"
notallowed "PUT the catalog" PUT "/v2/_catalog" --data-binary '{}'
notallowed "DELETE the catalog" DELETE "/v2/_catalog"
notallowed "DELETE /v2/" DELETE "/v2/"
notallowed "POST /v2/" POST "/v2/" --data-binary x
notallowed "POST tags list" POST "/v2/$GOOD/tags/list" --data-binary x
notallowed "DELETE tags list" DELETE "/v2/$GOOD/tags/list"
notallowed "PUT referrers" PUT "/v2/$GOOD/referrers/$DMAN" --data-binary x
notallowed "DELETE referrers" DELETE "/v2/$GOOD/referrers/$DMAN"
notallowed "GET upload start" GET "/v2/$GOOD/blobs/uploads/"
notallowed "DELETE upload start" DELETE "/v2/$GOOD/blobs/uploads/"
notallowed "PUT upload start" PUT "/v2/$GOOD/blobs/uploads/" --data-binary x
notallowed "POST an upload session" POST "$(loc_path "$S1")" --data-binary x
notallowed "TRACE /v2/" TRACE "/v2/"
notallowed "made-up method" FROB "/v2/$GOOD/manifests/latest"
if ! is_dist; then
    check_eq "" "$(printf '%s; ' "${NO_ALLOW[@]}" | sed 's/; $//')" "405 answers without an Allow header"
fi

# ---------------------------------------------------------------------------
# HTTP framing, on raw connections ("Connection: close" so the server ends
# each exchange). libmicrohttpd answers most of these itself.
{
    printf 'PATCH %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' "$(loc_path "$S1")"
    printf 'Content-Range: 4-7\r\nContent-Length: abc\r\n\r\nevil'
} >"$WORK/cl1"
raw_bad cl1 400 "non-numeric Content-Length"
{
    printf 'PATCH %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' "$(loc_path "$S1")"
    printf 'Content-Range: 4-7\r\nContent-Length: -4\r\n\r\nevil'
} >"$WORK/cl2"
raw_bad cl2 400 "negative Content-Length"
{
    printf 'PATCH %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' "$(loc_path "$S1")"
    printf 'Content-Range: 4-7\r\nContent-Length: 99999999999999999999999999\r\n\r\nevil'
} >"$WORK/cl3"
raw_bad cl3 "400|413" "Content-Length beyond 64 bits"
{
    printf 'PATCH %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' "$(loc_path "$S1")"
    printf 'Content-Range: 4-7\r\nContent-Length: 4\r\nContent-Length: 8\r\n\r\nevilevil'
} >"$WORK/cl4"
raw_bad cl4 400 "two different Content-Lengths"
# A manifest declared at 1 TiB is refused from its headers: 413.
{
    printf 'PUT /v2/%s/manifests/sweep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' "$GOOD"
    printf 'Content-Type: %s\r\nContent-Length: 1099511627776\r\n\r\n{' "$MT_MAN"
} >"$WORK/cl5"
raw_bad cl5 413 "manifest with Content-Length 1 TiB"
# A body longer than declared: the extra bytes are the next "request" on the
# connection (here garbage). The declared part alone is judged: a digest of
# the whole body does not match it, and nothing gets published.
printf 'abcdEXTRA' >"$WORK/long"
{
    printf 'POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\n' "$GOOD" "$(dgst "$WORK/long")"
    printf 'Content-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\nabcdEXTRA\r\n\r\n'
} >"$WORK/over1"
raw_bad over1 400 "blob body longer than its Content-Length" DIGEST_INVALID
cp "$WORK/man" "$WORK/man.long"
printf 'TRAILING GARBAGE\r\n\r\n' >>"$WORK/man.long"
{
    printf 'PUT /v2/%s/manifests/sweep HTTP/1.1\r\nHost: x\r\n' "$GOOD"
    printf 'Content-Type: %s\r\nContent-Length: %s\r\n\r\n' "$MT_MAN" "$(($(stat -c %s "$WORK/man") - 5))"
    cat "$WORK/man.long"
} >"$WORK/over2"
raw_bad over2 400 "manifest body longer than its Content-Length" MANIFEST_INVALID
# Oversized request line and headers (1 MiB each: no server needs to hold
# that much per connection).
{
    printf 'GET /v2/%s/manifests/' "$GOOD"
    head -c 1048576 /dev/zero | tr '\0' a
    printf ' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
} >"$WORK/longline"
raw_bad longline "400|414|431" "1 MiB request target"
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: '
    head -c 1048576 /dev/zero | tr '\0' a
    printf '\r\n\r\n'
} >"$WORK/bighdr"
raw_bad bighdr "400|413|431" "1 MiB header"
# Not HTTP at all: an answer of 400, or just closing, will do.
printf 'HELLO\r\n\r\n' >"$WORK/nothttp"
raw_bad nothttp "400|405|501|none" "not an HTTP request line"
printf 'GET /v2/ HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n' >"$WORK/badver"
raw_bad badver "400|505" "HTTP/9.9" # 505 is the right answer here

# ---------------------------------------------------------------------------
if is_dist; then
    req GET /v2/
    check_status 200 "GET /v2/ after the sweep"
    api_done
fi

# After the sweep: S2 (fed 5000 bytes on a dropped connection) is still a
# usable session: its status says how much it kept, and the next chunk
# continues from there.
req GET "$S2"
check_status 204 "S2 after a dropped PATCH"
R2=$(hdr Range)
KEPT=0
[[ $R2 =~ ^0-([0-9]+)$ ]] && KEPT=$((BASH_REMATCH[1] + 1))
# an empty session's Range is 0-0 too (as distribution says it): the drop may
# come before any byte was written (seen under ASan); a kept single byte
# would make the PATCH below fail with 416, never pass unnoticed
[ "$R2" != 0-0 ] || KEPT=0
[ "$KEPT" -le 5000 ] || _fail "S2 claims $KEPT bytes after a PATCH that delivered 5000"
head -c $((KEPT + 1000)) "$WORK/big" | tail -c 1000 >"$WORK/s2next"
req PATCH "$S2" --data-binary "@$WORK/s2next" "${OCT[@]}" -H "Content-Range: $KEPT-$((KEPT + 999))"
check_status 202 "S2 continues after a dropped PATCH (from byte $KEPT)"
# Nothing of the dropped monolithic uploads was published.
req HEAD "/v2/$GOOD/blobs/$DBIG"
check_status 404 "dropped monolithic POST published nothing"
req HEAD "/v2/$GOOD/blobs/$DBIG2"
check_status 404 "killed curl's monolithic POST published nothing"

# S1 and SV were only sent refused PATCHes: still there, still 4 bytes.
req GET "$S1"
check_status 204 "S1 still there after the sweep"
check_hdr Range 0-3 "S1 still holds 4 bytes after the sweep"
req GET "$SV"
check_status 204 "SV still there after the sweep"
check_hdr Range 0-3 "SV still holds 4 bytes after the sweep"
for ref in latest "$DMAN"; do
    req HEAD "/v2/$VICTIM/manifests/$ref"
    check_status 200 "victim manifest $ref still there"
done
req HEAD "/v2/$VICTIM/manifests/a"
check_status 404 "no tag 'a' from 'a%00b'"
req HEAD "/v2/$VICTIM/blobs/$DLAYER"
check_status 200 "victim blob still there"
req HEAD "/v2/$VICTIM/blobs/$DNUL"
check_status 404 "nothing published through a NUL digest"

# The daemon is alive and still serves the good content.
req GET /v2/
check_status 200 "GET /v2/ after the sweep"
req GET "/v2/$GOOD/manifests/latest" -H "Accept: $MT_MAN"
check_status 200 "GET the good manifest after the sweep"
check_body_file "$WORK/man" "the good manifest after the sweep"
req GET "/v2/$GOOD/blobs/$DLAYER"
check_body_file "$WORK/layer" "the good layer after the sweep"
req GET "/v2/_catalog"
check_eq "[\"$GOOD\",\"$VICTIM\"]" "$(jq -c .repositories "$RB" 2>/dev/null || true)" "catalog after the sweep: no new repository"

# Nothing written outside the data directory.
evil_files | sort >"$WORK/evil.after"
check_eq "" "$(comm -13 "$WORK/evil.before" "$WORK/evil.after")" "files written through path traversal"

# The data directory: unchanged but for what snapshot() lets differ.
snapshot "$WORK/after"
if diff -u "$WORK/before" "$WORK/after" >"$WORK/data.diff"; then
    _pass
else
    _fail "data directory changed by the sweep:"
    cat "$WORK/data.diff" >&2
fi

# No request of the sweep got a 5xx (the daemon logs one line per request:
# "TIME ADDR METHOD PATH STATUS BYTES DURATION").
if ! is_dist; then
    FIVES=$(awk '$5 ~ /^5[0-9][0-9]$/' "$WORK/pullcache.log" | head -20)
    check_eq "" "$FIVES" "5xx answers in the daemon's log"
fi

api_done
