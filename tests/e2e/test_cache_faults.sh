#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_faults.sh - the pull-through cache against the fault-injecting
# fake upstream (tests/tools/fakeupstream.py). For every fault: what the
# client sees (status, registry error code, Warning/Retry-After headers, a
# transfer cut short instead of wrong bytes) and what was or was not stored
# (the data directory, and whether the next request has to go upstream again,
# read from the fake's request log).
#   tag_ttl     within the TTL no upstream contact; after it exactly one HEAD,
#               a GET only when the digest changed; by digest: immutable
#   429         miss: 429 TOOMANYREQUESTS (Docker Hub's message, Retry-After);
#               cached tag: 200 + Warning, never a GET
#   503 / timeout / reset / refused: miss 502 / 504 / 502 / 503 UNAVAILABLE;
#               cached: 200 + Warning
#   blobs       HEAD of an uncached blob is a HEAD upstream; Range 206; stalled
#               and wrong-bytes transfers fail for the client, publish nothing,
#               and the next request fetches again
#   auth        token realm on its own port, credentials from password_env
#               (upstream "auth"; the others are anonymous);
#               redirects followed without Authorization
. "$(dirname "$0")/lib.sh"

clients_init
FP=5002 TP=5003 RP=5004 DEADP=5009
F=http://127.0.0.1:$FP
P=http://127.0.0.1:$PC_PORT
DATA=$WORK/data
SEEDS=(man stall reset wrong tok red hub)
pids=()
for s in "${SEEDS[@]}"; do
    bash "$PC_SRC/tests/tools/mkimage.sh" -b 1 "$WORK/img-$s" "faults-$s" >/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "mkimage.sh"; done
repo_args=()
for s in "${SEEDS[@]}"; do repo_args+=(--repo "library/$s=$WORK/img-$s"); done
fake_start pass "$FP" "$TP" "$RP" "${repo_args[@]}"

export PC_E2E_FAKE_PASSWORD=fakepass PC_E2E_BAD_PASSWORD=not-the-password
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: up
    url: http://127.0.0.1:$FP
    tag_ttl: 1
    connect_timeout: 2
    read_timeout: 2
  - name: auth
    url: http://127.0.0.1:$FP
    username: fakeuser
    password_env: PC_E2E_FAKE_PASSWORD
    read_timeout: 2
  - name: long
    url: http://127.0.0.1:$FP
    tag_ttl: 300
    read_timeout: 2
  - name: badauth
    url: http://127.0.0.1:$FP
    username: fakeuser
    password_env: PC_E2E_BAD_PASSWORD
    read_timeout: 2
  - name: dead
    url: http://127.0.0.1:$DEADP
    connect_timeout: 2
    read_timeout: 2
YML
pc_start "$DATA" --config "$WORK/pullcache.yml"

hdr() { reg_header "$1" "$2"; }
man_file() { echo "$WORK/img-$1/blobs/sha256/${2#sha256:}"; } # SEED DIGEST
big_of() { jq -r '.layers[1].digest' "$(man_file "$1" "$(img_digest "$WORK/img-$1" oci-single)")"; }
big_size_of() { jq -r '.layers[1].size' "$(man_file "$1" "$(img_digest "$WORK/img-$1" oci-single)")"; }
# mget PATH OUT: manifest GET through pullcache (guarded against hangs).
mget() { http_get "$P$1" "$2" -H "Accept: $MANIFEST_ACCEPT" --max-time 30; }
# expect_manifest PATH SEED TAG [stale]: 200 with the upstream's exact bytes,
# digest and media type; with "stale" a Warning: 299 header, without none.
expect_manifest() {
    local r want mt w
    want=$(img_digest "$WORK/img-$2" "$3")
    mt=$(img_mediatype "$WORK/img-$2" "$3")
    r=$(mget "$1" "$WORK/m")
    expect_eq "200 0" "${r% *}" "GET $1 (status, curl rc)"
    expect_eq "$want" "$(sha "$WORK/m")" "GET $1: body digest"
    expect_eq "$want" "$(hdr "$WORK/m.h" Docker-Content-Digest)" "GET $1: Docker-Content-Digest"
    expect_eq "$mt" "$(hdr "$WORK/m.h" Content-Type)" "GET $1: Content-Type"
    w=$(hdr "$WORK/m.h" Warning)
    if [ "${4:-}" = stale ]; then
        case $w in 299\ *) ;; *) fail "GET $1 (cached, upstream failing): want a 'Warning: 299 ...' header, got '$w'" ;; esac
    else
        [ -z "$w" ] || fail "GET $1 (upstream healthy): unexpected Warning header '$w'"
    fi
}
# expect_error METHOD PATH STATUS CODE: the registry error for a miss, quickly
# (curl gives up at 30 s: a hang is a failure, not a slow pass).
expect_error() {
    local r
    r=$(http_get "$P$2" "$WORK/e" -X "$1" -H "Accept: $MANIFEST_ACCEPT" --max-time 30)
    expect_eq "$3 0" "${r% *}" "$1 $2 (status, curl rc)"
    expect_eq "$4" "$(err_code "$WORK/e")" "$1 $2: registry error code (body: $(head -c 300 "$WORK/e"))"
}
# expect_cut URL OUT WHAT: a blob transfer that must not complete: the client
# gets a 200 cut short of Content-Length (curl 18/56) or an error status
# (5xx) - never a complete 200.
expect_cut() {
    local code rc n
    read -r code rc n <<<"$(http_get "$1" "$2" --max-time 20)"
    case "$code:$rc" in
    200:18 | 200:56) echo "  $3: 200, cut short after $n bytes (curl rc $rc)" ;;
    5??:0) echo "  $3: status $code before any body" ;;
    *) fail "$3: want a transfer cut short (200 + curl rc 18/56) or a 5xx; got status $code, curl rc $rc, $n bytes" ;;
    esac
}
# not_stored DIGEST WHAT / stored DIGEST WHAT: the blob store's file.
# (in-memory storage has no blob files to look at: the HTTP checks stay)
not_stored() { local rc=0; pc_blob_present "$DATA" "$1" || rc=$?; [ "$rc" != 0 ] || fail "$2: blob $1 was stored"; }
stored() { local rc=0; pc_blob_present "$DATA" "$1" || rc=$?; [ "$rc" != 1 ] || fail "$2: blob $1 is not in the blob store"; }
# expect_blob PATH DIGEST SIZE: a complete GET with the right bytes.
expect_blob() {
    expect_eq "200 0 $3" "$(http_get "$P$1" "$WORK/b" --max-time 30)" "GET $1 (status, curl rc, bytes)"
    expect_eq "$2" "$(sha "$WORK/b")" "GET $1: body digest"
}
ttl_pass() { sleep 1.5; } # tag_ttl of "up" is 1 s

# ---- tags within tag_ttl, digests, blobs: upstream "long" (tag_ttl 300) ----------------
echo "== tag_ttl 300, by digest, HEAD and Range of blobs"
M=/v2/long/library/man/manifests
fake_reset_log "$FP"
expect_manifest "$M/oci-single" man oci-single
expect_eq 1 "$(fake_count "$FP" GET manifest)" "first GET of a tag: upstream manifest GETs"
fake_reset_log "$FP"
expect_manifest "$M/oci-single" man oci-single
expect_manifest "$M/oci-single" man oci-single
expect_eq 200 "$(reg_status HEAD "$M/oci-single" -H "Accept: $MANIFEST_ACCEPT")" "HEAD of a cached tag"
expect_manifest "$M/$(img_digest "$WORK/img-man" oci-single)" man oci-single
expect_eq 0 "$(fake_count "$FP" "" "")" "upstream requests for a tag within tag_ttl and its digest"
# A digest not seen before: one GET, then never again.
idx=$(img_digest "$WORK/img-man" oci-index)
child=$(jq -r '.manifests[0].digest' "$(man_file man "$idx")")
r=$(mget "$M/$child" "$WORK/m")
expect_eq "200 0" "${r% *}" "GET of a child manifest by digest"
expect_eq "$child" "$(sha "$WORK/m")" "child manifest by digest: body digest"
r=$(mget "$M/$child" "$WORK/m")
expect_eq "200 0" "${r% *}" "second GET of a child manifest by digest"
expect_eq 1 "$(fake_count "$FP" GET manifest)" "upstream GETs for a digest asked twice"
expect_eq 0 "$(fake_count "$FP" HEAD manifest)" "upstream HEADs for a digest"
echo "ok: tag within tag_ttl and digests served without upstream contact"

big=$(big_of man)
bsize=$(big_size_of man)
B=/v2/long/library/man/blobs/$big
fake_reset_log "$FP"
curl -sS -I -D "$WORK/h" -o /dev/null --max-time 30 "$P$B" || fail "HEAD $B: no answer"
expect_eq 200 "$(head -1 "$WORK/h" | cut -d' ' -f2)" "HEAD of an uncached blob"
expect_eq "$bsize" "$(hdr "$WORK/h" Content-Length)" "HEAD of an uncached blob: Content-Length"
expect_eq "$big" "$(hdr "$WORK/h" Docker-Content-Digest)" "HEAD of an uncached blob: Docker-Content-Digest"
expect_eq 1 "$(fake_count "$FP" HEAD blob)" "HEAD of an uncached blob: upstream HEADs"
expect_eq 0 "$(fake_count "$FP" GET blob)" "HEAD of an uncached blob: upstream GETs"
not_stored "$big" "after a HEAD"
expect_blob "$B" "$big" "$bsize"
stored "$big" "after a GET"
expect_blob "$B" "$big" "$bsize"
expect_eq 1 "$(fake_count "$FP" GET blob)" "two GETs of a blob: upstream GETs"
r=$(http_get "$P$B" "$WORK/r" -H 'Range: bytes=100-199')
expect_eq "206 0 100" "$r" "Range GET of a cached blob"
cmp -s "$WORK/r" <(tail -c +101 "$WORK/b" | head -c 100) || fail "Range GET of a cached blob: wrong bytes"
expect_eq 1 "$(fake_count "$FP" GET blob)" "upstream GETs after a Range GET of a cached blob"
expect_error GET "/v2/long/library/man/manifests/no-such-tag" 404 MANIFEST_UNKNOWN
expect_error GET "/v2/long/library/man/blobs/sha256:$(printf '0%.0s' $(seq 64))" 404 BLOB_UNKNOWN
[ "$(pc_metric pullcache_cache_hits_total 'upstream="long"')" -gt 0 ] || fail "/metrics: no cache hits for long"
[ "$(pc_metric pullcache_cache_misses_total 'upstream="long"')" -gt 0 ] || fail "/metrics: no cache misses for long"
echo "ok: blob HEAD upstream is a HEAD, one GET per blob, Range 206, 404s"

# ---- tag_ttl 1: revalidation with HEAD, GET only for a new digest ---------------------------
echo "== tag_ttl 1: revalidation"
M=/v2/up/library/man/manifests
expect_manifest "$M/docker-single" man docker-single
ttl_pass
fake_reset_log "$FP"
expect_manifest "$M/docker-single" man docker-single
expect_eq 1 "$(fake_count "$FP" HEAD manifest)" "after tag_ttl, unchanged: upstream HEADs"
expect_eq 0 "$(fake_count "$FP" GET manifest)" "after tag_ttl, unchanged: upstream GETs"

# A tag that moves: inline manifests (real blobs, different annotations).
base=$(man_file man "$(img_digest "$WORK/img-man" oci-single)")
mut_scenario() { # FILE VALUE
    jq -c --arg v "$2" '{rules: [], content: {"library/mut": {manifests: {v: {mediaType: .mediaType, body: (. + {annotations: {v: $v}})}}}}}' \
        "$base" >"$1"
}
mut_scenario "$WORK/mutA.json" A
mut_scenario "$WORK/mutB.json" B
fake_scenario "$FP" "$WORK/mutA.json"
digA=$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" "$F/v2/library/mut/manifests/v" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
r=$(mget /v2/up/library/mut/manifests/v "$WORK/m")
expect_eq "200 0" "${r% *}" "GET of the moving tag (A)"
expect_eq "$digA" "$(sha "$WORK/m")" "moving tag, first version"
fake_scenario "$FP" "$WORK/mutB.json"
digB=$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" "$F/v2/library/mut/manifests/v" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
[ "$digA" != "$digB" ] || fail "test setup: the moving tag did not move"
ttl_pass
fake_reset_log "$FP"
r=$(mget /v2/up/library/mut/manifests/v "$WORK/m")
expect_eq "200 0" "${r% *}" "GET of the moving tag (B)"
expect_eq "$digB" "$(sha "$WORK/m")" "moving tag after tag_ttl: the new version"
expect_eq "$digB" "$(hdr "$WORK/m.h" Docker-Content-Digest)" "moving tag after tag_ttl: Docker-Content-Digest"
expect_eq 1 "$(fake_count "$FP" HEAD manifest)" "moved tag after tag_ttl: upstream HEADs"
expect_eq 1 "$(fake_count "$FP" GET manifest)" "moved tag after tag_ttl: upstream GETs"
# The old version stays addressable by digest (immutable), without upstream contact.
fake_reset_log "$FP"
r=$(mget "/v2/up/library/mut/manifests/$digA" "$WORK/m")
expect_eq "200 0 $digA" "${r% *} $(sha "$WORK/m")" "the tag's previous version by digest"
expect_eq 0 "$(fake_count "$FP" "" "")" "upstream requests for a cached digest"
fake_scenario "$FP" pass
echo "ok: one HEAD per expired tag, GET only when it moved"

# ---- 429 -----------------------------------------------------------------------------------
echo "== dockerhub_429"
HUBMSG="You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"
fake_scenario "$FP" dockerhub_429
fake_reset_log "$FP"
expect_error GET "$M/oci-index" 429 TOOMANYREQUESTS
expect_eq "$HUBMSG" "$(jq -r '.errors[0].message' "$WORK/e")" "429 on a miss: the upstream's message"
# Cached tag past its TTL: the HEAD (not counted by Docker Hub) says unchanged.
ttl_pass
fake_reset_log "$FP"
expect_manifest "$M/docker-single" man docker-single
expect_eq 0 "$(fake_count "$FP" GET manifest)" "dockerhub_429, cached tag: upstream GETs"
expect_eq 1 "$(fake_count "$FP" HEAD manifest)" "dockerhub_429, cached tag: upstream HEADs"

# Everything 429 (HEADs too), a bare 429 (no JSON body) with Retry-After.
cat >"$WORK/all429.json" <<'J'
{"ratelimit": {"limit": 100, "remaining": 0, "window": 21600, "decrement": false},
 "rules": [{"id": "manifests 429", "kind": "manifest", "method": ["GET", "HEAD"],
            "reply": {"status": 429, "body": "empty", "headers": {"Retry-After": "17"}}}]}
J
fake_scenario "$FP" "$WORK/all429.json"
ttl_pass
fake_reset_log "$FP"
expect_manifest "$M/docker-single" man docker-single stale
expect_eq 0 "$(fake_count "$FP" GET manifest)" "all 429, cached tag: upstream GETs (never a GET to revalidate)"
expect_error GET "$M/oci-index" 429 TOOMANYREQUESTS
expect_eq 17 "$(hdr "$WORK/e.h" Retry-After)" "bare 429 on a miss: Retry-After"
# Nothing of the 429s was kept: with the upstream healthy again the missed tag is fetched.
fake_scenario "$FP" pass
fake_reset_log "$FP"
expect_manifest "$M/oci-index" man oci-index
expect_eq 1 "$(fake_count "$FP" GET manifest)" "after the 429s: the missed tag is fetched"
echo "ok: 429 miss -> 429 TOOMANYREQUESTS, cached -> 200 + Warning"

# ---- 503 -----------------------------------------------------------------------------------
echo "== upstream_503"
cfg=$(jq -r .config.digest "$(man_file man "$(img_digest "$WORK/img-man" oci-single)")")
fake_scenario "$FP" upstream_503
ttl_pass
fake_reset_log "$FP"
expect_manifest "$M/docker-single" man docker-single stale
expect_eq 0 "$(fake_count "$FP" GET manifest)" "503, cached tag: upstream GETs"
expect_error GET "$M/oci-single" 502 UNAVAILABLE
expect_error GET "/v2/up/library/man/blobs/$cfg" 502 UNAVAILABLE
not_stored "$cfg" "blob miss while the upstream answers 503"
expect_blob "/v2/up/library/man/blobs/$big" "$big" "$bsize" # cached: no upstream needed
fake_scenario "$FP" pass
expect_manifest "$M/oci-single" man oci-single
expect_blob "/v2/up/library/man/blobs/$cfg" "$cfg" "$(stat -c %s "$(man_file man "$cfg")")"
echo "ok: 503 miss -> 502 UNAVAILABLE, cached -> 200 + Warning"

# ---- timeout (read_timeout 2) and reset on manifests -----------------------------------------------
echo "== upstream timeout, connection reset"
cat >"$WORK/slowman.json" <<'J'
{"rules": [{"id": "manifests hang", "kind": "manifest", "method": ["GET", "HEAD"], "reply": {"delay_ms": 8000}}]}
J
cat >"$WORK/dropman.json" <<'J'
{"rules": [{"id": "manifests dropped", "kind": "manifest", "method": ["GET", "HEAD"], "reply": {"drop": true}}]}
J
fake_scenario "$FP" "$WORK/slowman.json"
ttl_pass
expect_manifest "$M/docker-single" man docker-single stale
expect_error GET /v2/up/library/stall/manifests/oci-single 504 UNAVAILABLE
fake_scenario "$FP" "$WORK/dropman.json"
ttl_pass
expect_manifest "$M/docker-single" man docker-single stale
expect_error GET /v2/up/library/reset/manifests/oci-single 502 UNAVAILABLE
fake_scenario "$FP" pass
fake_settle "$FP"
echo "ok: timeout miss -> 504, reset miss -> 502, cached -> 200 + Warning"

# ---- broken blob transfers ------------------------------------------------------------------------
# blob_fault SCENARIO SEED: the first GET of the seed's big blob breaks
# at the upstream; the client's transfer fails; nothing is stored; the next
# GET fetches again and gets the right bytes.
blob_fault() {
    local scen=$1 seed=$2 d s path
    d=$(big_of "$seed")
    s=$(big_size_of "$seed")
    path=/v2/up/library/$seed/blobs/$d
    fake_scenario "$FP" "$scen"
    fake_reset_log "$FP"
    expect_cut "$P$path" "$WORK/cut" "$scen: first GET"
    if [ -s "$WORK/cut" ] && [ "$(stat -c %s "$WORK/cut")" = "$s" ] && [ "$(sha "$WORK/cut")" != "$d" ]; then
        fail "$scen: the client received all $s bytes with the wrong digest"
    fi
    fake_settle "$FP"
    not_stored "$d" "$scen: after the broken transfer"
    expect_eq 1 "$(fake_count "$FP" GET blob '.rule != null')" "$scen: upstream GETs the fault applied to"
    expect_blob "$path" "$d" "$s"
    expect_eq 2 "$(fake_count "$FP" GET blob)" "$scen: upstream GETs (broken + the retry)"
    stored "$d" "$scen: after the good transfer"
    fake_scenario "$FP" pass
    echo "ok: $scen"
}
echo "== broken blob transfers"
blob_fault stalled_blob stall
# (reset_mid_blob: tests/e2e/pending/test_cache_reset_mid_blob.sh - a reset that
# races with the client joining the fetch can leave the client hanging)
blob_fault wrong_bytes_blob wrong
[ "$(pc_metric pullcache_upstream_errors_total 'upstream="up"')" -gt 0 ] || fail "/metrics: no upstream errors counted for up"
[ "$(pc_metric pullcache_cache_stale_total 'upstream="up"')" -gt 0 ] || fail "/metrics: no stale serves counted for up"

# ---- token realm, credentials from password_env ---------------------------------------------------
echo "== token_auth"
fake_scenario "$FP" token_auth
fake_reset_log "$FP"
expect_manifest /v2/auth/library/tok/manifests/oci-single tok oci-single
tm=$(man_file tok "$(img_digest "$WORK/img-tok" oci-single)")
while read -r d s; do expect_blob "/v2/auth/library/tok/blobs/$d" "$d" "$s"; done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$tm")
expect_eq 0 "$(fake_count "$FP" GET token '.listener == "token" and .status != 200')" "token requests refused"
[ "$(fake_count "$FP" GET token '.listener == "token" and .status == 200 and .auth')" -gt 0 ] ||
    fail "token_auth: no token fetched with credentials at the realm"
[ "$(fake_count "$FP" "" manifest '.status == 200 and .auth_scheme == "Bearer"')" -gt 0 ] ||
    fail "token_auth: no manifest request with a Bearer token succeeded"
! grep -qF "$PC_E2E_FAKE_PASSWORD" "$WORK/pullcache.log" || fail "the upstream password appears in pullcache's log"
# Wrong credentials: an error for the client, not a hang or a 500.
r=$(mget /v2/badauth/library/tok/manifests/docker-single "$WORK/e")
case ${r%% *} in 200 | 500 | 000) fail "wrong upstream credentials: status ${r%% *} ($(head -c 300 "$WORK/e"))" ;; esac
echo "  wrong credentials: ${r%% *} $(err_code "$WORK/e")"
fake_scenario "$FP" pass
echo "ok: token_auth"

# ---- redirected blobs -----------------------------------------------------------------------------
echo "== redirect_blobs, dockerhub_like"
# (dockerhub_like through "auth": credentials, a token, and tokens reset by the
# scenario switch, so the cached token is refused once and must be renewed)
for triple in redirect_blobs:red:up dockerhub_like:hub:auth; do
    IFS=: read -r scen seed upn <<<"$triple"
    fake_scenario "$FP" "$scen"
    fake_reset_log "$FP"
    expect_manifest "/v2/$upn/library/$seed/manifests/docker-single" "$seed" docker-single
    m=$(man_file "$seed" "$(img_digest "$WORK/img-$seed" docker-single)")
    while read -r d s; do expect_blob "/v2/$upn/library/$seed/blobs/$d" "$d" "$s"; done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$m")
    n=$(jq -r '.layers | length + 1' "$m")
    # (the whiteout layer is the same blob in every seed: it may already be cached)
    got=$(fake_count "$FP" GET blob '.listener == "redirect" and .status == 200 and .auth == false')
    { [ "$got" -ge $((n - 1)) ] && [ "$got" -le "$n" ]; } || fail "$scen: want $((n - 1))..$n blob GETs at the redirect host, got $got"
    expect_eq 0 "$(fake_count "$FP" "" "" '.listener == "redirect" and .auth == true')" "$scen: requests with Authorization at the redirect host"
    echo "ok: $scen"
done
fake_scenario "$FP" pass

# ---- refused connections ----------------------------------------------------------------------
echo "== connection refused"
expect_error GET /v2/dead/library/man/manifests/oci-single 503 UNAVAILABLE
expect_error GET "/v2/dead/library/man/blobs/sha256:$(printf '1%.0s' $(seq 64))" 503 UNAVAILABLE
fake_stop "$FP"
ttl_pass
expect_manifest "$M/docker-single" man docker-single stale
r=$(mget "/v2/up/library/mut/manifests/$digA" "$WORK/m")
expect_eq "200 0 $digA" "${r% *} $(sha "$WORK/m")" "upstream stopped: a cached digest"
expect_error GET /v2/up/library/hub/manifests/oci-index 503 UNAVAILABLE
expect_error GET /v2/auth/library/hub/manifests/oci-index 503 UNAVAILABLE
expect_blob "/v2/up/library/man/blobs/$big" "$big" "$bsize"
echo "ok: refused miss -> 503, cached -> 200 (+ Warning for tags)"
echo "PASS: $TEST_NAME"
