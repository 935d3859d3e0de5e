#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_idle_timeout.sh - connections that stall are closed by the server
# after its idle timeout (--timeout SECONDS, config http.timeout), whatever
# point of the request they stall at; stalled connections do not hold up
# other clients, and a stalled upload leaves nothing behind.
#
# The assertions are "the server closed the connection", never a duration:
# each wait has a generous bound (30 s against a 2 s timeout) that only
# stops the test from hanging when the server never closes.
#
# pullcache only (docker-registry 2.8 has no idle timeout to configure).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

if is_dist; then
    echo "test_idle_timeout: pullcache only, nothing to check against distribution"
    exit 0
fi

DATA=$WORK/data
MT_MAN=application/vnd.oci.image.manifest.v1+json

# stall NAME BYTES...: open a connection, send the bytes (printf format) and
# leave it open; its fd is in STALL_FD[NAME].
declare -A STALL_FD
stall() {
    local name=$1 fd
    shift
    exec {fd}<>"/dev/tcp/127.0.0.1/$PC_PORT"
    # shellcheck disable=SC2059
    printf "$@" >&"$fd"
    STALL_FD[$name]=$fd
}

# closed NAME WHAT: read the connection until the server closes it; fail if
# it is still open after 30 s. The bytes it sent are in $WORK/NAME.out.
closed() {
    local name=$1 what=$2 fd=${STALL_FD[$1]} rc=0
    timeout 30 cat <&"$fd" >"$WORK/$name.out" 2>/dev/null || rc=$?
    exec {fd}>&-
    LAST_REQ="stalled connection '$name'"
    if [ "$rc" -eq 124 ]; then
        _fail "$what: connection still open after 30 s (server timeout 2 s)"
        return 1
    fi
    _pass
}

# The answer on a stalled connection, if any, is an error (408 or 400),
# never a success or a 5xx.
no_answer_or_4xx() {
    local first
    first=$(head -c 12 "$WORK/$1.out")
    if [ -z "$first" ] || [[ $first == "HTTP/1."[01]" 4" ]]; then
        _pass
    else
        _fail "$2: stalled connection answered: $(head -c 200 "$WORK/$1.out" | tr -d '\r' | tr '\n' ' ')"
    fi
}

pc_start "$DATA" --timeout 2
R=http://127.0.0.1:$PC_PORT

rand_file "$WORK/blob" 1000
DBLOB=$(dgst "$WORK/blob")

# 1. Half a request line.
stall halfline 'GET /v2/ HT'
# 2. Connected, nothing sent.
stall silent ''
# 3. Headers incomplete.
stall halfheaders 'GET /v2/ HTTP/1.1\r\nHost: x\r\nAccept: app'
# 4. A manifest PUT whose body stops after 10 of 100 bytes.
stall halfmanifest 'PUT /v2/idle/repo/manifests/stalled HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 100\r\n\r\n{"schemaV' "$MT_MAN"
# 5. A monolithic blob POST whose body stops after 100 of 1000 bytes.
stall halfblob 'POST /v2/idle/repo/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n' "$DBLOB"
head -c 100 "$WORK/blob" >&"${STALL_FD[halfblob]}"
# 6. A complete request, then an idle keep-alive connection.
stall keepalive 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'

# While all of these hang, other clients are served.
req GET /v2/
check_status 200 "GET /v2/ while six connections stall"
put_blob idle/other "$WORK/blob"
req GET "/v2/idle/other/blobs/$DBLOB"
check_body_file "$WORK/blob" "blob round trip while six connections stall"

closed halfline "half a request line" && no_answer_or_4xx halfline "half a request line"
closed silent "a connection that sends nothing" && no_answer_or_4xx silent "a connection that sends nothing"
closed halfheaders "incomplete headers" && no_answer_or_4xx halfheaders "incomplete headers"
closed halfmanifest "a manifest body that stops" && no_answer_or_4xx halfmanifest "a manifest body that stops"
closed halfblob "a blob body that stops" && no_answer_or_4xx halfblob "a blob body that stops"
if closed keepalive "an idle keep-alive connection"; then
    check_eq "HTTP/1.1 200" "$(head -c 12 "$WORK/keepalive.out")" "the keep-alive connection's one answer"
    check_eq 1 "$(grep -a -c '^HTTP/1' "$WORK/keepalive.out")" "answers on the keep-alive connection"
fi

# Nothing of the stalled uploads was kept: no manifest, no blob in that
# repository, no upload session in staging.
req HEAD /v2/idle/repo/manifests/stalled
check_status 404 "the stalled manifest PUT stored nothing"
req HEAD "/v2/idle/repo/blobs/$DBLOB"
check_status 404 "the stalled blob POST published nothing"
check_eq "" "$(find "$DATA/uploads" "$DATA/tmp" -type f 2>/dev/null)" "staging files left by stalled uploads"
req GET /v2/_catalog
check_eq '[]' "$(jq -c .repositories "$RB" 2>/dev/null || true)" "catalog: stalled requests (and idle/other's lone blob) created no repository"

# The same timeout from the configuration file (http.timeout).
pc_stop
cat >"$WORK/config.yml" <<YML
http:
  timeout: 2
YML
pc_start "$DATA" --config "$WORK/config.yml"
stall cfghalfline 'GET /v2/ HT'
req GET /v2/
check_status 200 "GET /v2/ with http.timeout from the config file"
closed cfghalfline "half a request line, timeout from the config file" &&
    no_answer_or_4xx cfghalfline "half a request line, timeout from the config file"

req GET /v2/
check_status 200 "GET /v2/ at the end"
api_done
