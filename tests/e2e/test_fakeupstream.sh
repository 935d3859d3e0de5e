#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_fakeupstream.sh - the fault-injecting fake upstream (tests/tools/fakeupstream.py)
# does what its scenarios promise, checked with curl and skopeo: in pass mode it is
# a faithful registry (skopeo inspect and copy work, byte-exact), and every shipped
# scenario answers with the statuses, headers, bodies, broken transfers and log
# lines the pullcache tests rely on. Needs no pullcache binary.
. "$(dirname "$0")/lib.sh"

clients_init
FP=5002 TP=5003 RP=5004
F=http://127.0.0.1:$FP
img=$WORK/img
mkimages "$img" fake-1 1
SCEN=$PC_SRC/tests/tools/scenarios

man_single=$(img_digest "$img" oci-single)
m=$img/blobs/sha256/${man_single#sha256:}
big=$(jq -r '.layers[1].digest' "$m")     # the 1 MiB data layer
big_size=$(jq -r '.layers[1].size' "$m")
cfg=$(jq -r '.config.digest' "$m")
BLOB=$F/v2/library/test/blobs/$big
MAN=$F/v2/library/test/manifests/oci-single

# hdr FILE NAME: a header of a curl -D dump.
hdr() { reg_header "$1" "$2"; }
# sha FILE: sha256:<hex> of FILE.
# get URL OUT [curl args...]: GET into OUT (headers in OUT.h); print "status curl_rc bytes".
get() {
    local url=$1 out=$2 rc=0 w
    shift 2
    w=$(curl -sS -o "$out" -D "$out.h" -w '%{http_code} %{size_download}' "$@" "$url" 2>>"$WORK/curl.log") || rc=$?
    read -r code n <<<"$w"
    echo "$code $rc $n"
}
# st METHOD URL [curl args...]: HTTP status only.
st() {
    local m=$1 u=$2
    shift 2
    if [ "$m" = HEAD ]; then curl -s -o /dev/null -w '%{http_code}' -I "$@" "$u" || true
    else curl -s -o /dev/null -w '%{http_code}' -X "$m" "$@" "$u" || true; fi
}

fake_start pass "$FP" "$TP" "$RP" --repo library/test="$img" --repo other/repo="$img"
head -c 200 "$WORK/fake-$FP.log" | grep -q '^ready' || fail "no 'ready' line on stdout"

# ---- pass: a faithful read-only registry --------------------------------------------
echo "== pass"
expect_eq 200 "$(get "$F/v2/" "$WORK/b" | cut -d' ' -f1)" "GET /v2/"
expect_eq registry/2.0 "$(hdr "$WORK/b.h" Docker-Distribution-API-Version)" "/v2/ API version header"
for tag in oci-single oci-index docker-single docker-list; do
    want=$(img_digest "$img" "$tag")
    mt=$(img_mediatype "$img" "$tag")
    size=$(jq -r --arg t "$tag" '.[$t].size' "$img/images.json")
    curl -sS -f -I -H "Accept: $MANIFEST_ACCEPT" -D "$WORK/h" -o /dev/null "$F/v2/library/test/manifests/$tag"
    expect_eq "$want" "$(hdr "$WORK/h" Docker-Content-Digest)" "HEAD $tag digest"
    expect_eq "$mt" "$(hdr "$WORK/h" Content-Type)" "HEAD $tag Content-Type"
    expect_eq "$size" "$(hdr "$WORK/h" Content-Length)" "HEAD $tag Content-Length"
    for ref in "$tag" "$want"; do
        expect_eq "200 0 $size" "$(get "$F/v2/library/test/manifests/$ref" "$WORK/m" -H "Accept: $MANIFEST_ACCEPT")" "GET manifest $ref"
        expect_eq "$want" "$(sha "$WORK/m")" "GET manifest $ref body digest"
        expect_eq "$mt" "$(hdr "$WORK/m.h" Content-Type)" "GET manifest $ref Content-Type"
    done
done
# An Accept header that leaves out the manifest's type: 404, as distribution does.
expect_eq 404 "$(st GET "$MAN" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json')" "GET with a non-matching Accept"
expect_eq "200 0 $big_size" "$(get "$BLOB" "$WORK/b")" "GET big blob"
expect_eq "$big" "$(sha "$WORK/b")" "big blob body digest"
expect_eq "$big" "$(hdr "$WORK/b.h" Docker-Content-Digest)" "blob Docker-Content-Digest"
expect_eq 200 "$(st HEAD "$BLOB")" "HEAD blob"
expect_eq "206 0 100" "$(get "$BLOB" "$WORK/r" -H 'Range: bytes=100-199')" "Range GET"
cmp -s "$WORK/r" <(tail -c +101 "$WORK/b" | head -c 100) || fail "Range GET: wrong bytes"
expect_eq 404 "$(st GET "$F/v2/library/test/blobs/sha256:$(printf '0%.0s' $(seq 64))")" "unknown blob"
expect_eq 404 "$(st GET "$F/v2/library/test/manifests/nope" -H "Accept: $MANIFEST_ACCEPT")" "unknown tag"
expect_eq 404 "$(st GET "$F/v2/no/such/manifests/oci-single" -H "Accept: $MANIFEST_ACCEPT")" "unknown repository"
expect_eq 405 "$(st POST "$F/v2/library/test/blobs/uploads/")" "uploads refused"
expect_eq '["docker-list","docker-single","oci-index","oci-single"]' \
    "$(curl -sS -f "$F/v2/library/test/tags/list" | jq -c .tags)" "tags/list"
# Keep-alive: two requests, one connection.
expect_eq "1 0" "$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects} ' "$F/v2/" "$BLOB" | xargs)" "keep-alive connects"

# skopeo: inspect and copy (all platforms), byte-exact.
sk inspect --tls-verify=false "docker://127.0.0.1:$FP/library/test:oci-single" >"$WORK/inspect.json" 2>>"$WORK/clients.log" ||
    fail "skopeo inspect (see clients.log)"
expect_eq "$man_single" "$(jq -r .Digest "$WORK/inspect.json")" "skopeo inspect digest"
expect_eq 5 "$(jq '.Layers | length + 1' "$WORK/inspect.json")" "skopeo inspect layers + config"
# Each copy GETs every blob exactly once: 7 per two-platform image (base, data
# and whiteout layers shared, meta layer and config per platform).
for tag in oci-index docker-list; do
    fake_reset_log "$FP"
    sk copy -q --all --src-tls-verify=false "docker://127.0.0.1:$FP/other/repo:$tag" "dir:$WORK/copy-$tag" \
        >>"$WORK/clients.log" 2>&1 || fail "skopeo copy $tag (see clients.log)"
    expect_eq "$(img_digest "$img" "$tag")" "$(sha "$WORK/copy-$tag/manifest.json")" "skopeo copy $tag: top manifest"
    for f in "$WORK/copy-$tag"/*; do
        case $f in */manifest.json | */version) continue ;; esac
        h=$(basename "$f" .manifest.json)
        expect_eq "sha256:$h" "$(sha "$f")" "skopeo copy $tag: $h"
    done
    expect_eq 7 "$(fake_count "$FP" GET blob)" "skopeo copy $tag: blob GETs"
    expect_eq 7 "$(jq -rs '[.[] | select(.method == "GET" and .kind == "blob") | .path] | unique | length' \
        "$(fake_reqlog "$FP")")" "skopeo copy $tag: distinct blobs"
    expect_eq 3 "$(fake_count "$FP" GET manifest)" "skopeo copy $tag: manifest GETs (index + 2 children)"
done
expect_eq "$(wc -l <"$(fake_reqlog "$FP")")" "$(curl -sS "$F/_fake/log" | wc -l)" "/_fake/log = log file"
expect_eq 7 "$(curl -sS "$F/_fake/stats" | jq '.by_kind["GET blob"]')" "/_fake/stats GET blob"

# 50 concurrent clients of one blob.
fake_reset_log "$FP"
cpids=()
for i in $(seq 50); do
    curl -sS -f -o "$WORK/c$i" "$BLOB" 2>>"$WORK/curl.log" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || fail "a concurrent client failed (curl.log)"; done
for i in $(seq 50); do expect_eq "$big" "$(sha "$WORK/c$i")" "concurrent client $i"; done
expect_eq 50 "$(fake_count "$FP" GET blob '.status == 200 and .bytes == .length')" "50 complete blob GETs logged"

# ---- dockerhub_429 -------------------------------------------------------------------
echo "== dockerhub_429"
fake_scenario "$FP" dockerhub_429
expect_eq "429 0 " "$(get "$MAN" "$WORK/b" -H "Accept: $MANIFEST_ACCEPT" | cut -d' ' -f1-2) " "GET manifest"
expect_eq '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}' \
    "$(cat "$WORK/b")" "Docker Hub's 429 body"
expect_eq "100;w=21600" "$(hdr "$WORK/b.h" ratelimit-limit)" "429 ratelimit-limit"
expect_eq "0;w=21600" "$(hdr "$WORK/b.h" ratelimit-remaining)" "429 ratelimit-remaining"
expect_eq 127.0.0.1 "$(hdr "$WORK/b.h" docker-ratelimit-source)" "429 docker-ratelimit-source"
curl -sS -I -H "Accept: $MANIFEST_ACCEPT" -D "$WORK/h" -o /dev/null "$MAN"
expect_eq "200 0;w=21600" "$(head -1 "$WORK/h" | cut -d' ' -f2) $(hdr "$WORK/h" ratelimit-remaining)" "HEAD manifest (not limited)"
expect_eq 200 "$(st GET "$BLOB")" "GET blob (not limited)"

# ---- ratelimited_hub -------------------------------------------------------------------
echo "== ratelimited_hub"
fake_scenario "$FP" ratelimited_hub
for _ in 1 2 3; do curl -sS -f -I -H "Accept: $MANIFEST_ACCEPT" -o /dev/null "$MAN"; done
curl -sS -I -H "Accept: $MANIFEST_ACCEPT" -D "$WORK/h" -o /dev/null "$MAN"
expect_eq "100;w=21600" "$(hdr "$WORK/h" ratelimit-remaining)" "HEADs do not count"
args=()
for _ in $(seq 101); do args+=(-o /dev/null "$MAN"); done
curl -sS -H "Accept: $MANIFEST_ACCEPT" -w '%{http_code} %header{ratelimit-remaining}\n' "${args[@]}" >"$WORK/rl.txt"
expect_eq "200 99;w=21600" "$(sed -n 1p "$WORK/rl.txt")" "1st GET"
expect_eq "200 0;w=21600" "$(sed -n 100p "$WORK/rl.txt")" "100th GET"
expect_eq "429 0;w=21600" "$(sed -n 101p "$WORK/rl.txt")" "101st GET"
expect_eq 100 "$(grep -c '^200 ' "$WORK/rl.txt")" "GETs allowed"
curl -sS -H "Accept: $MANIFEST_ACCEPT" "$MAN" | grep -q TOOMANYREQUESTS || fail "429 body"
expect_eq 200 "$(st HEAD "$MAN" -H "Accept: $MANIFEST_ACCEPT")" "HEAD at 0"
fake_ratelimit "$FP" 5
curl -sS -f -H "Accept: $MANIFEST_ACCEPT" -D "$WORK/h" -o /dev/null "$MAN"
expect_eq "4;w=21600" "$(hdr "$WORK/h" ratelimit-remaining)" "after /_fake/ratelimit 5"

# ---- upstream_503 ------------------------------------------------------------------------
echo "== upstream_503"
fake_scenario "$FP" upstream_503
for u in "$F/v2/" "$MAN" "$BLOB"; do
    expect_eq 503 "$(get "$u" "$WORK/b" -H "Accept: $MANIFEST_ACCEPT" | cut -d' ' -f1)" "GET $u"
    expect_eq 30 "$(hdr "$WORK/b.h" Retry-After)" "Retry-After of $u"
done

# ---- stalled_blob ------------------------------------------------------------------------
echo "== stalled_blob"
fake_scenario "$FP" stalled_blob
fake_reset_log "$FP"
read -r code rc n <<<"$(get "$BLOB" "$WORK/b" --max-time 2)"
expect_eq "200 28" "$code $rc" "stalled GET: status and curl timeout"
if [ "$n" -eq 0 ] || [ "$n" -ge "$big_size" ]; then fail "stalled GET: got $n of $big_size bytes, want partial"; fi
expect_eq "200 0 $big_size" "$(get "$BLOB" "$WORK/b")" "second GET"
expect_eq "$big" "$(sha "$WORK/b")" "second GET digest"
expect_eq 200 "$(st GET "$F/v2/library/test/blobs/$cfg")" "small blob not stalled"
expect_eq 1 "$(fake_count "$FP" GET blob '.outcome == "stalled" and .bytes == 1000')" "one stalled GET logged"

# ---- reset_mid_blob ------------------------------------------------------------------------
echo "== reset_mid_blob"
fake_scenario "$FP" reset_mid_blob
read -r code rc n <<<"$(get "$BLOB" "$WORK/b")"
case $rc in 18 | 56) ;; *) fail "reset GET: curl rc $rc, want 18 or 56" ;; esac
[ "$n" -le 5000 ] || fail "reset GET: got $n bytes, want <= 5000"
expect_eq "200 0 $big_size" "$(get "$BLOB" "$WORK/b")" "second GET"
expect_eq "$big" "$(sha "$WORK/b")" "second GET digest"
expect_eq 1 "$(fake_count "$FP" GET blob '.outcome == "reset" and .bytes == 5000')" "one reset GET logged"

# ---- wrong_bytes_blob --------------------------------------------------------------------
echo "== wrong_bytes_blob"
fake_scenario "$FP" wrong_bytes_blob
expect_eq "200 0 $big_size" "$(get "$BLOB" "$WORK/b")" "wrong-bytes GET"
expect_eq "$big" "$(hdr "$WORK/b.h" Docker-Content-Digest)" "wrong-bytes Docker-Content-Digest"
[ "$(sha "$WORK/b")" != "$big" ] || fail "wrong-bytes GET: the body has the right digest"
expect_eq "200 0 $big_size" "$(get "$BLOB" "$WORK/b")" "second GET"
expect_eq "$big" "$(sha "$WORK/b")" "second GET digest"

# ---- slow_blobs ----------------------------------------------------------------------------
echo "== slow_blobs"
fake_scenario "$FP" slow_blobs
fake_reset_log "$FP"
expect_eq "200 0 $big_size" "$(get "$BLOB" "$WORK/b")" "slow GET"
expect_eq "$big" "$(sha "$WORK/b")" "slow GET digest"
expect_eq 1 "$(fake_count "$FP" GET blob '.ms >= 1000 and (.rule | test("delay_ms=1000"))')" "slow GET delayed (server side)"
expect_eq 200 "$(st GET "$MAN" -H "Accept: $MANIFEST_ACCEPT")" "slow manifest GET"
expect_eq 1 "$(fake_count "$FP" GET manifest '.ms >= 500')" "slow manifest delayed (server side)"

# ---- token_auth ----------------------------------------------------------------------------
echo "== token_auth"
fake_scenario "$FP" token_auth
fake_reset_log "$FP"
expect_eq 401 "$(get "$F/v2/" "$WORK/b" | cut -d' ' -f1)" "GET /v2/ without token"
expect_eq "Bearer realm=\"http://127.0.0.1:$TP/token\",service=\"fake\"" "$(hdr "$WORK/b.h" WWW-Authenticate)" "/v2/ challenge"
expect_eq 401 "$(get "$MAN" "$WORK/b" -H "Accept: $MANIFEST_ACCEPT" | cut -d' ' -f1)" "GET manifest without token"
expect_eq "Bearer realm=\"http://127.0.0.1:$TP/token\",service=\"fake\",scope=\"repository:library/test:pull\"" \
    "$(hdr "$WORK/b.h" WWW-Authenticate)" "manifest challenge"
T="http://127.0.0.1:$TP/token?service=fake&scope=repository:library/test:pull"
expect_eq 401 "$(st GET "$F/token" -u fakeuser:fakepass)" "no realm on the registry port"
expect_eq 401 "$(st GET "$T")" "token without credentials"
expect_eq 401 "$(st GET "$T" -u fakeuser:wrong)" "token with a wrong password"
curl -sS -f -u fakeuser:fakepass "$T" >"$WORK/tok.json" || fail "token with credentials"
tok=$(jq -er .token "$WORK/tok.json")
expect_eq 300 "$(jq -r .expires_in "$WORK/tok.json")" "expires_in"
expect_eq 200 "$(st GET "$MAN" -H "Accept: $MANIFEST_ACCEPT" -H "Authorization: Bearer $tok")" "manifest with token"
expect_eq 200 "$(st GET "$BLOB" -H "Authorization: Bearer $tok")" "blob with token"
expect_eq 401 "$(st GET "$MAN" -H "Accept: $MANIFEST_ACCEPT" -H "Authorization: Bearer nonsense")" "manifest with a bad token"
otok=$(curl -sS -f -u fakeuser:fakepass "http://127.0.0.1:$TP/token?service=fake&scope=repository:other/repo:pull" | jq -r .token)
expect_eq 401 "$(st GET "$MAN" -H "Accept: $MANIFEST_ACCEPT" -H "Authorization: Bearer $otok")" "token of another repository"
expect_eq 4 "$(fake_count "$FP" GET token '.listener == "token"')" "token requests on the token listener"
if sk inspect --tls-verify=false "docker://127.0.0.1:$FP/library/test:oci-single" >/dev/null 2>>"$WORK/clients.log"; then
    fail "skopeo inspect without credentials succeeded"
fi
sk inspect --tls-verify=false --creds fakeuser:fakepass "docker://127.0.0.1:$FP/library/test:oci-single" \
    >"$WORK/inspect.json" 2>>"$WORK/clients.log" || fail "skopeo inspect with credentials (see clients.log)"
expect_eq "$man_single" "$(jq -r .Digest "$WORK/inspect.json")" "skopeo inspect through token auth"

# ---- redirect_blobs ------------------------------------------------------------------------
echo "== redirect_blobs"
fake_scenario "$FP" redirect_blobs
fake_reset_log "$FP"
expect_eq 307 "$(get "$BLOB" "$WORK/b" | cut -d' ' -f1)" "GET blob on the registry port"
loc=$(hdr "$WORK/b.h" Location)
case $loc in "http://127.0.0.1:$RP/blob/$big?"*sig=*) ;; *) fail "redirect Location '$loc'" ;; esac
expect_eq 200 "$(st HEAD "$BLOB")" "HEAD blob not redirected"
expect_eq "200 0 $big_size" "$(get "$BLOB" "$WORK/b" -L)" "GET blob following the redirect"
expect_eq "$big" "$(sha "$WORK/b")" "redirected blob digest"
expect_eq 400 "$(st GET "$loc" -H 'Authorization: Bearer leaked')" "redirect host refuses Authorization"
expect_eq 403 "$(st GET "${loc%%sig=*}sig=forged")" "redirect host refuses a bad signature"
expect_eq 1 "$(fake_count "$FP" GET blob '.listener == "redirect" and .auth == false and .status == 200')" "redirected GET without Authorization logged"
expect_eq 1 "$(fake_count "$FP" GET blob '.listener == "redirect" and .auth == true')" "redirected GET with Authorization logged"
fake_reset_log "$FP"
sk copy -q --src-tls-verify=false "docker://127.0.0.1:$FP/library/test:docker-single" "dir:$WORK/copy-red" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo copy through redirects (see clients.log)"
expect_eq "$(img_digest "$img" docker-single)" "$(sha "$WORK/copy-red/manifest.json")" "skopeo copy through redirects"
expect_eq 5 "$(fake_count "$FP" GET blob '.listener == "redirect" and .status == 200 and .auth == false')" "skopeo's redirected blob GETs"

# ---- inline content ----------------------------------------------------------------------
echo "== inline_image"
fake_scenario "$FP" inline_image
sk copy -q --src-tls-verify=false "docker://127.0.0.1:$FP/library/inline:v1" "dir:$WORK/copy-inline" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo copy of the inline image (see clients.log)"
for f in "$WORK/copy-inline"/*; do
    case $f in */manifest.json | */version) continue ;; esac
    expect_eq "sha256:$(basename "$f")" "$(sha "$f")" "inline blob $(basename "$f")"
done
expect_eq 2 "$(jq '.layers | length' "$WORK/copy-inline/manifest.json")" "inline image layers"
d=$(jq -r '.layers[0].digest' "$WORK/copy-inline/manifest.json")
tar -xzOf "$WORK/copy-inline/${d#sha256:}" etc/hello.txt | grep -q 'hello from the fake upstream' ||
    fail "inline layer is not a gzip tar with etc/hello.txt"
expect_eq 200 "$(st GET "$F/v2/library/test/manifests/oci-single" -H "Accept: $MANIFEST_ACCEPT")" "layout repos kept"

# ---- dockerhub_like: token realm + ratelimit + redirects together -------------------------
echo "== dockerhub_like"
fake_scenario "$FP" dockerhub_like
fake_reset_log "$FP"
sk copy -q --src-tls-verify=false "docker://127.0.0.1:$FP/library/test:oci-single" "dir:$WORK/copy-hub1" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo copy, anonymous token (see clients.log)"
sk copy -q --src-tls-verify=false --src-creds fakeuser:fakepass "docker://127.0.0.1:$FP/library/test:oci-single" \
    "dir:$WORK/copy-hub2" >>"$WORK/clients.log" 2>&1 || fail "skopeo copy, credentials (see clients.log)"
expect_eq '{"127.0.0.1":99,"fakeuser":99}' "$(curl -sS "$F/_fake/ratelimit" | jq -cS .budgets)" "budget per IP and per user"
expect_eq 10 "$(fake_count "$FP" GET blob '.listener == "redirect" and .status == 200 and .auth == false')" "redirected blob GETs"
expect_eq 0 "$(fake_count "$FP" "" "" '.listener == "redirect" and .auth == true')" "Authorization never reached the blob host"

# ---- a second fake started on a scenario directly; clean exit on SIGTERM ----------------------
echo "== fake_start with a scenario, SIGTERM"
fake_start "$SCEN/reset_mid_blob.json" 5012 - - --layout "$img"
read -r code rc n <<<"$(get "http://127.0.0.1:5012/v2/library/test/blobs/$big" "$WORK/b")"
case $rc in 18 | 56) ;; *) fail "second fake: reset GET rc $rc" ;; esac
fake_scenario 5012 stalled_blob
curl -sS -o /dev/null --max-time 30 "http://127.0.0.1:5012/v2/library/test/blobs/$big" 2>>"$WORK/curl.log" &
cpid=$!
for _ in $(seq 100); do
    [ "$(curl -sS "http://127.0.0.1:5012/_fake/stats" | jq .in_flight)" = 1 ] && break
    sleep 0.1
done
expect_eq 1 "$(curl -sS "http://127.0.0.1:5012/_fake/stats" | jq .in_flight)" "stalled request in flight"
fake_stop 5012
expect_eq 0 "$FAKE_EXIT" "SIGTERM during a stall: exit status"
rc=0
wait "$cpid" || rc=$?
case $rc in 18 | 52 | 56) ;; *) fail "stalled GET while stopping: curl rc $rc" ;; esac
grep -q '^stopped' "$WORK/fake-5012.log" || fail "second fake did not say stopped"
fake_stop "$FP"
expect_eq 0 "$FAKE_EXIT" "SIGTERM: exit status"
echo "PASS"
