# SPDX-License-Identifier: Apache-2.0
# lib_api.sh - raw HTTP helpers for the protocol tests (test_api_*.sh,
# test_bad_input.sh, test_idle_timeout.sh). Source it after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib_api.sh"
#
# Registry under test: REGISTRY=pullcache (default), REGISTRY=distribution
# (Debian's docker-registry 2.8, to sanity-check a test itself; it lacks the
# referrers API and answers a few cases differently, see is_dist uses) or
# REGISTRY=fleet (three replicas on one S3 bucket + PostgreSQL behind nginx,
# lib.sh fleet_start: every check through the balancer, and api_done checks
# that each replica answered some of them).
#
#   api_start DIR [serve args]   reg_start (lib.sh), and set $R, the base URL
#   is_dist                      true when testing distribution
#   req METHOD PATH|URL [curl args]  one request (never follows redirects, sends
#                                paths as-is, no "Expect: 100-continue"); sets
#                                $ST (status, 000 when no answer), $RH (headers
#                                file), $RB (body file), $LAST_REQ, $CURL_RC
#   hdr NAME                     a response header's value (last one, CR stripped)
#   err_codes                    the "code"s of an {"errors":[...]} body
#   check_status WANT WHAT       soft checks: each prints FAIL with the request,
#   check_err STATUS CODE WHAT   the expectation and what came back, counts it,
#   check_hdr NAME WANT WHAT     and the test goes on; api_done exits 1 when any
#   check_eq WANT GOT WHAT       failed. Use `fail` (lib.sh) when later steps
#   check_true WHAT CMD...       cannot go on without the result.
#   check_body_file FILE WHAT    response body is byte-identical to FILE
#   api_done                     print "N passed, M failed" and exit (fleet: after
#                                checking that every replica answered requests)
#   loc_url LOCATION             absolute URL of a Location header value
#   loc_path LOCATION            its path (and query), without scheme and host
#   addq URL K=V                 append a query parameter
#   dgst FILE [sha256|sha512]    "alg:hex" of a file
#   rand_file FILE SIZE          SIZE random bytes
#   put_blob REPO FILE           upload (POST then PUT), hard-fails unless 201
#   put_manifest REPO REF FILE TYPE  PUT a manifest, hard-fails unless 201
#   upload_start REPO            POST an upload session; sets $UP (absolute URL)

R=""
RH=$WORK/resp.headers
RB=$WORK/resp.body
ST=""
LAST_REQ=""
API_PASS=0
API_FAIL=0

is_dist() { [ "${REGISTRY:-pullcache}" = distribution ]; }

api_start() {
    reg_start "$@"
    R=http://$REG
}

req() {
    local m=$1 p=$2 url
    shift 2
    case $p in
    http://* | https://*) url=$p ;;
    *) url=$R$p ;;
    esac
    : >"$RH"
    : >"$RB"
    local args=(-sS --path-as-is -o "$RB" -D "$RH" -w '%{http_code}' -H 'Expect:')
    if [ "$m" = HEAD ]; then args+=(--head); else args+=(-X "$m"); fi
    CURL_RC=0
    ST=$(curl "${args[@]}" "$@" "$url" 2>"$WORK/curl.err") || CURL_RC=$?
    [ -n "$ST" ] || ST=000
    LAST_REQ="$m ${url#"$R"}"
    # A response that breaks HTTP framing (body shorter than its
    # Content-Length, connection reset) is a failure even when the status
    # line was right. distribution 2.8 sends a short body with its 416s, so
    # there only the status counts.
    if [ "$CURL_RC" -ne 0 ] && [ "$ST" != 000 ] && ! is_dist; then
        _fail "$LAST_REQ: status $ST but the transfer failed: $(head -c 200 "$WORK/curl.err")"
    fi
}

hdr() {
    local want=${1,,} line v=""
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        case ${line,,} in
        "$want":*)
            v=${line#*:}
            v=${v#"${v%%[! ]*}"}
            v=${v%"${v##*[! ]}"}
            ;;
        esac
    done <"$RH"
    printf '%s' "$v"
}

err_codes() {
    { jq -r '.errors[].code' "$RB" 2>/dev/null || true; } | tr '\n' ' ' | sed 's/ $//'
}

# A short description of the last response for failure messages.
_resp() {
    local b
    b=$(head -c 300 "$RB" | tr -d '\r' | tr '\n' ' ')
    printf 'got %s body=%s' "$ST" "$b"
}

_pass() { API_PASS=$((API_PASS + 1)); }
_fail() {
    API_FAIL=$((API_FAIL + 1))
    echo "FAIL: $*" >&2
}

check_status() {
    if [ "$ST" = "$1" ]; then _pass; else _fail "$2: $LAST_REQ: want $1, $(_resp)"; fi
}

# check_err STATUS CODE WHAT: status and a spec error body containing CODE.
check_err() {
    local codes
    codes=$(err_codes)
    if [ "$ST" = "$1" ] && [[ " $codes " == *" $2 "* ]]; then
        _pass
    else
        _fail "$3: $LAST_REQ: want $1 $2, $(_resp)"
    fi
}

check_hdr() {
    local got
    got=$(hdr "$1")
    if [ "$got" = "$2" ]; then _pass; else _fail "$3: $LAST_REQ: header $1: want '$2', got '$got' (status $ST)"; fi
}

check_eq() {
    if [ "$1" = "$2" ]; then _pass; else _fail "$3: want '$1', got '$2'"; fi
}

check_true() {
    local what=$1
    shift
    if "$@"; then _pass; else _fail "$what: $LAST_REQ: $(_resp)"; fi
}

check_body_file() {
    if cmp -s "$1" "$RB"; then
        _pass
    else
        _fail "$2: $LAST_REQ: body differs from $(basename "$1") ($(stat -c %s "$1") bytes; got $(stat -c %s "$RB") bytes, status $ST)"
    fi
}

api_done() {
    local p n counts=""
    # REGISTRY=fleet: the requests went through nginx to every replica
    if [ "${REGISTRY:-pullcache}" = fleet ]; then
        for p in "${FLEET_PORTS[@]}"; do
            n=$(fleet_requests "$p")
            counts+=" $p:$n"
            check_true "replica $p answered requests through nginx" test "$n" -gt 0
        done
        echo "registry requests per replica:$counts"
    fi
    echo "$API_PASS passed, $API_FAIL failed"
    [ "$API_FAIL" -eq 0 ] || exit 1
    exit 0
}

loc_url() {
    case $1 in
    http://* | https://*) printf '%s' "$1" ;;
    /*) printf '%s%s' "$R" "$1" ;;
    *) printf '%s/%s' "$R" "$1" ;;
    esac
}

loc_path() {
    local u=$1
    case $u in
    http://* | https://*)
        u=${u#*://}
        u=/${u#*/}
        ;;
    esac
    printf '%s' "$u"
}

addq() {
    case $1 in
    *\?*) printf '%s&%s' "$1" "$2" ;;
    *) printf '%s?%s' "$1" "$2" ;;
    esac
}

dgst() {
    local alg=${2:-sha256}
    printf '%s:%s' "$alg" "$("${alg}sum" "$1" | cut -d' ' -f1)"
}

rand_file() {
    head -c "$2" /dev/urandom >"$1"
}

upload_start() {
    req POST "/v2/$1/blobs/uploads/" -d '' -H 'Content-Type:'
    [ "$ST" = 202 ] || fail "upload_start $1: $LAST_REQ: want 202, $(_resp)"
    local l
    l=$(hdr Location)
    [ -n "$l" ] || fail "upload_start $1: no Location header"
    UP=$(loc_url "$l")
}

put_blob() {
    local d
    d=$(dgst "$2")
    upload_start "$1"
    req PUT "$(addq "$UP" "digest=$d")" --data-binary "@$2" -H 'Content-Type: application/octet-stream'
    [ "$ST" = 201 ] || fail "put_blob $1 $2: $LAST_REQ: want 201, $(_resp)"
}

put_manifest() {
    req PUT "/v2/$1/manifests/$2" --data-binary "@$3" -H "Content-Type: $4"
    [ "$ST" = 201 ] || fail "put_manifest $1:$2: $LAST_REQ: want 201, $(_resp)"
}
