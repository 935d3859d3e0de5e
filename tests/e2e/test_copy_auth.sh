#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_copy_auth.sh - `pullcache copy` against a registry that wants a token
# (issue #6: "works with basic and token auth registries"): a pullcache with
# users (--htpasswd; Bearer challenge, its own /token service) as the
# destination and then as the source. Without credentials the copy is refused
# with one line and tags nothing; with --username/--password-stdin the token
# flow asks for repository:NAME:pull,push and the two-platform image arrives
# with identical digests; a second copy sends nothing; copying back out needs
# only pull; a wrong password is one line and exit 3.
. "$(dirname "$0")/lib.sh"

if [ "${REGISTRY:-pullcache}" = distribution ]; then
    echo "test_copy_auth: pullcache only"
    exit 0
fi

clients_init
PC=127.0.0.1:$PC_PORT
DIST=127.0.0.1:$DIST_PORT

PW='copy-Pw-81c2e'

mkimages "$WORK/img" copyauth 2
dist_start "$WORK/dist"
dist_push "$WORK/img" oci-index test/app:v1
dist_push "$WORK/img" docker-list test/app:v2
htpasswd -nbB -C 5 alice "$PW" >"$WORK/htpasswd"
pc_start "$WORK/pc" --htpasswd "$WORK/htpasswd"

# digest_at HOST REPO REF [CURL_ARGS...]: Docker-Content-Digest of a manifest HEAD, "" unless 200.
digest_at() {
    local host=$1 repo=$2 ref=$3 h=$WORK/dg.h code
    shift 3
    code=$(curl -sS -I "$@" -H "Accept: $MANIFEST_ACCEPT" -D "$h" -o /dev/null -w '%{http_code}' \
        "http://$host/v2/$repo/manifests/$ref") || true
    [ "$code" = 200 ] && reg_header "$h" Docker-Content-Digest || true
}
# copy_as NAME PASSWORD|- SRC DST: pullcache copy --json (as alice unless PASSWORD is -).
copy_as() {
    local name=$1 pw=$2
    shift 2
    RC=0
    if [ "$pw" = - ]; then
        "$PULLCACHE" copy --plain-http --json "$@" >"$WORK/$name.json" 2>"$WORK/$name.err" </dev/null || RC=$?
    else
        printf '%s\n' "$pw" | "$PULLCACHE" copy --plain-http --json --username alice --password-stdin \
            "$@" >"$WORK/$name.json" 2>"$WORK/$name.err" || RC=$?
    fi
}

# The destination challenges for a token.
hdr=$(curl -sS -o /dev/null -D - "http://$PC/v2/")
grep -qi '^www-authenticate: Bearer realm=' <<<"$hdr" || fail "no Bearer challenge on /v2/: $hdr"

echo "--- no credentials: refused, one line, nothing tagged"
copy_as anon - "$DIST/test/app:v1" "$PC/team/app:v1"
expect_eq 3 "$RC" "copy without credentials exit"
expect_eq 1 "$(grep -c . "$WORK/anon.err")" "lines of the refusal ($(cat "$WORK/anon.err"))"
grep -q "credentials tried at the destination: anonymous" "$WORK/anon.err" ||
    fail "the refusal does not say which credentials were tried: $(cat "$WORK/anon.err")"
expect_eq "" "$(digest_at "$PC" team/app v1 -u "alice:$PW")" "tag after a refused copy"

echo "--- wrong password: one line, exit 3, nothing tagged, the password not printed"
copy_as wrong not-the-password "$DIST/test/app:v1" "$PC/team/app:v1"
expect_eq 3 "$RC" "copy with a wrong password exit"
expect_eq 1 "$(grep -c . "$WORK/wrong.err")" "lines of the wrong-password error ($(cat "$WORK/wrong.err"))"
! grep -q not-the-password "$WORK/wrong.err" "$WORK/wrong.json" || fail "the password was printed"
expect_eq "" "$(digest_at "$PC" team/app v1 -u "alice:$PW")" "tag after a wrong password"

echo "--- with credentials: token flow, identical digests"
for t in v1 v2; do
    want=$(digest_at "$DIST" test/app "$t")
    [ -n "$want" ] || fail "no $t at docker-registry"
    copy_as "in-$t" "$PW" "$DIST/test/app:$t" "$PC/team/app:$t"
    expect_eq 0 "$RC" "copy $t into the token registry (err: $(cat "$WORK/in-$t.err"))"
    expect_eq "$want" "$(digest_at "$PC" team/app "$t" -u "alice:$PW")" "$t digest at pullcache"
    expect_eq "$want" "$(jq -r .digest "$WORK/in-$t.json")" "$t digest in the JSON"
done
grep -q 'GET /token' "$WORK/pullcache.log" || fail "no /token request in the destination's log"

echo "--- a second copy sends nothing"
copy_as again "$PW" "$DIST/test/app:v1" "$PC/team/app:v1"
expect_eq 0 "$RC" "second copy exit (err: $(cat "$WORK/again.err"))"
expect_eq 0 "$(jq -r '.bytes' "$WORK/again.json")" "bytes sent by the second copy"

echo "--- the token registry as the source"
copy_as out "$PW" "$PC/team/app:v2" "$DIST/back/app:v2"
expect_eq 0 "$RC" "copy out of the token registry (err: $(cat "$WORK/out.err"))"
expect_eq "$(digest_at "$DIST" test/app v2)" "$(digest_at "$DIST" back/app v2)" "digest after the round trip"

! grep -q "$PW" "$WORK/pullcache.log" || fail "the password is in pullcache's log"
echo "test_copy_auth: ok"
