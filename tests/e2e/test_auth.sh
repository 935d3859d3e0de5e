#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_auth.sh - authentication and access control (issue #5) over plain
# HTTP: htpasswd users (bcrypt; MD5 refused at start), our /token service
# and its challenge, podman login + push + pull, skopeo --creds, wrong
# passwords, an expired token, a token for one repository used on another,
# anonymous push, a pull-only user's delete, policy bypass attempts
# (percent-encoding, //, .., case, long names, ?ns=), admin endpoints, the
# filtered catalog, SIGHUP adding a user, the failed-login throttle, and
# finally a grep of the log, /metrics and the status document for every
# password and token used.
. "$(dirname "$0")/lib.sh"

clients_init
PCR=127.0.0.1:$PC_PORT
mkimages "$WORK/img" auth 1
dist_start "$WORK/dist"
dist_push "$WORK/img" docker-single library/base:cached

PW_ALICE='alice-Pw-7f3a9'
PW_BOB='bob-Pw-c41d2'
PW_CAROL='carol-Pw-99e0b'
PW_DAVE='dave-Pw-5e1aa'
SECRETS=("$PW_ALICE" "$PW_BOB" "$PW_CAROL" "$PW_DAVE")
htpasswd -nbB -C 5 alice "$PW_ALICE" >"$WORK/htpasswd"
htpasswd -nbB -C 5 bob "$PW_BOB" >>"$WORK/htpasswd"
htpasswd -nbB -C 5 dave "$PW_DAVE" >>"$WORK/htpasswd"

# ---- a weak hash is refused at start, with the reason ------------------------------------
htpasswd -nbm weak weakpass >"$WORK/weak.htpasswd"
if out=$("$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$WORK/weak-data" \
    --htpasswd "$WORK/weak.htpasswd" 2>&1); then
    fail "serve started with an MD5 htpasswd"
fi
grep -q 'only bcrypt' <<<"$out" || fail "MD5 htpasswd: message without 'only bcrypt': $out"
grep -q 'htpasswd -B' <<<"$out" || fail "MD5 htpasswd: message does not say how to fix: $out"
echo "ok: an MD5 htpasswd is refused at start: $out"

# ---- without users: loopback says so, any other address warns ----------------------------
OPEN_PORT=$((PC_PORT + 18))
"$PULLCACHE" serve --listen "0.0.0.0:$OPEN_PORT" --data "$WORK/open-data" \
    >"$WORK/open.log" 2>&1 &
OPEN_PID=$!
PIDS+=("$OPEN_PID")
wait_http "http://127.0.0.1:$OPEN_PORT/v2/" "$OPEN_PID"
grep -q 'warn no users configured .*ANYONE who can reach this address can push' "$WORK/open.log" ||
    fail "no warning when serving without users beyond loopback: $(cat "$WORK/open.log")"
kill -TERM "$OPEN_PID"
wait "$OPEN_PID" 2>/dev/null || true
"$PULLCACHE" serve --listen "127.0.0.1:$OPEN_PORT" --data "$WORK/open-data" \
    >"$WORK/open.log" 2>&1 &
OPEN_PID=$!
PIDS+=("$OPEN_PID")
wait_http "http://127.0.0.1:$OPEN_PORT/v2/" "$OPEN_PID"
grep -q 'info no users configured .*listening on loopback only' "$WORK/open.log" ||
    fail "no start-up line about serving without users on loopback: $(cat "$WORK/open.log")"
kill -TERM "$OPEN_PID"
wait "$OPEN_PID" 2>/dev/null || true
echo "ok: without users, loopback is said and any other address warns that anyone can push"

cat >"$WORK/auth.yml" <<YML
auth:
  htpasswd: $WORK/htpasswd
  admins: [alice]
  access:
    - prefix: team
      pull: [alice, bob, carol]
      push: [alice]
      delete: [alice]
    - prefix: public
      pull: [anonymous]
      push: [alice, dave]
    - prefix: secret
      pull: [alice]
      push: [alice]
YML
"$PULLCACHE" serve --check-config --config "$WORK/auth.yml" >/dev/null ||
    fail "--check-config refused a good auth section"
printf 'auth:\n  htpasswd: %s\n  colour: blue\n' "$WORK/htpasswd" >"$WORK/bad.yml"
if "$PULLCACHE" serve --check-config --config "$WORK/bad.yml" >/dev/null 2>&1; then
    fail "--check-config accepted an unknown auth key"
fi
printf 'auth:\n  htpasswd: %s\n  access:\n    - {prefix: x, push: ["@nogroup"]}\n' \
    "$WORK/htpasswd" >"$WORK/bad2.yml"
if "$PULLCACHE" serve --check-config --config "$WORK/bad2.yml" >/dev/null 2>&1; then
    fail "--check-config accepted an unknown group"
fi
echo "ok: --check-config checks the auth section"

pc_start "$WORK/data" --config "$WORK/auth.yml" \
    --upstream "docker.io=http://127.0.0.1:$DIST_PORT" --upstream "other=http://127.0.0.1:$DIST_PORT"
grep -q 'authentication is on' "$WORK/pullcache.log" || fail "no start-up line about authentication"

# st METHOD PATH [curl args]: the status code
st() {
    local m=$1 p=$2
    shift 2
    if [ "$m" = HEAD ]; then
        curl -s --path-as-is -o /dev/null -w '%{http_code}' -I "$@" "http://$PCR$p" || true
    else
        curl -s --path-as-is -o /dev/null -w '%{http_code}' -X "$m" "$@" "http://$PCR$p" || true
    fi
}
# token USER:PASS|"" SCOPE...: a token from /token
token() {
    local cred=$1 q="" s
    shift
    for s in "$@"; do q+="${q:+&}scope=$s"; done
    curl -sS -f ${cred:+-u "$cred"} "http://$PCR/token?service=pullcache&$q" | jq -er .token
}
# unthrottle: wait until a good login goes through again (it resets the
# failed-login count of this address)
unthrottle() {
    for _ in $(seq 100); do
        [ "$(st GET /v2/ -u "alice:$PW_ALICE")" = 200 ] && return 0
        sleep 0.2
    done
    fail "alice cannot log in after failed logins (throttled for 20 s)"
}
not_granted() { # status WHAT: anything but 2xx/3xx
    case $1 in 2* | 3*) fail "$2: $1 (granted)" ;; esac
}

# ---- the challenge --------------------------------------------------------------------------
curl -s -D "$WORK/h" -o /dev/null "http://$PCR/v2/"
grep -qi '^HTTP/1.1 401' "$WORK/h" || fail "anonymous GET /v2/ is not 401"
grep -qi "^WWW-Authenticate: Bearer realm=\"http://$PCR/token\",service=\"pullcache\"" "$WORK/h" ||
    fail "GET /v2/ challenge: $(grep -i www-auth "$WORK/h")"
curl -s -D "$WORK/h" -o "$WORK/b" -X POST "http://$PCR/v2/team/app/blobs/uploads/"
grep -qi 'scope="repository:team/app:pull,push"' "$WORK/h" || fail "push challenge has no scope"
expect_eq UNAUTHORIZED "$(err_code "$WORK/b")" "anonymous push: error code"
expect_eq 200 "$(st GET /v2/ -u "alice:$PW_ALICE")" "GET /v2/ with Basic"
expect_eq 401 "$(st GET /v2/ -u "alice:wrong")" "GET /v2/ with a wrong password"
expect_eq 401 "$(st GET /token -u "alice:wrong")" "GET /token with a wrong password"
unthrottle
echo "ok: 401 with the Bearer challenge (realm, service, scope); Basic works; wrong passwords refused"

# ---- podman login + push + pull, skopeo --creds ------------------------------------------------
if pod login --tls-verify=false -u alice -p wrong-password "$PCR" >>"$WORK/clients.log" 2>&1; then
    fail "podman login with a wrong password succeeded"
fi
unthrottle
pod login --tls-verify=false -u alice -p "$PW_ALICE" "$PCR" >>"$WORK/clients.log" 2>&1 ||
    fail "podman login (see clients.log)"
sk copy -q --preserve-digests --dest-creds "alice:$PW_ALICE" --dest-tls-verify=false \
    "$(img_src "$WORK/img" docker-single)" "docker://$PCR/team/app:v1" >>"$WORK/clients.log" 2>&1 ||
    fail "skopeo copy --dest-creds to team/app (see clients.log)"
want=$(img_digest "$WORK/img" docker-single)
cfgd0=$(sk inspect --raw --creds "alice:$PW_ALICE" --tls-verify=false "docker://$PCR/team/app:v1" |
    jq -r .config.digest)
pod pull -q --tls-verify=false --signature-policy "$WORK/policy.json" "$PCR/team/app:v1" \
    >>"$WORK/clients.log" 2>&1 || fail "podman pull after login (see clients.log)"
pod push -q --tls-verify=false "$PCR/team/app:v1" "$PCR/team/pod:v1" >>"$WORK/clients.log" 2>&1 ||
    fail "podman push after login (see clients.log)"
pod logout "$PCR" >>"$WORK/clients.log" 2>&1 || true
# podman login's default file ($XDG_RUNTIME_DIR/containers/auth.json, no
# REGISTRY_AUTH_FILE): pullcache pull finds the credentials there.
(
    unset REGISTRY_AUTH_FILE
    pod login --tls-verify=false -u alice -p "$PW_ALICE" "$PCR" >>"$WORK/clients.log" 2>&1 ||
        fail "podman login to its default auth file"
    [ -f "$XDG_RUNTIME_DIR/containers/auth.json" ] || fail "podman login wrote no $XDG_RUNTIME_DIR/containers/auth.json"
    "$PULLCACHE" pull --plain-http --discard "$PCR/team/app:v1" >>"$WORK/clients.log" 2>&1 ||
        fail "pullcache pull with podman login's default auth file (see clients.log)"
    pod logout "$PCR" >>"$WORK/clients.log" 2>&1 || true
)
# Without credentials the pull is refused and says which credentials it tried.
rc=0
"$PULLCACHE" pull --plain-http --discard "$PCR/team/app:v1" >/dev/null 2>"$WORK/pull-anon.err" || rc=$?
[ "$rc" -ne 0 ] || fail "an anonymous pullcache pull of team/app succeeded"
grep -q "credentials tried: anonymous" "$WORK/pull-anon.err" || fail "no 'credentials tried' hint: $(cat "$WORK/pull-anon.err")"
got=$(sk inspect --raw --creds "bob:$PW_BOB" --tls-verify=false "docker://$PCR/team/pod:v1" |
    sha256sum | sed 's/^/sha256:/; s/ .*//')
[ -n "$got" ] || fail "skopeo inspect --creds bob"
expect_eq "$want" "$(sk inspect --raw --creds "bob:$PW_BOB" --tls-verify=false \
    "docker://$PCR/team/app:v1" | sha256sum | sed 's/^/sha256:/; s/ .*//')" "bob pulls team/app"
echo "ok: podman login + push + pull; skopeo --creds push (alice) and pull (bob)"

# ---- anonymous: no push, mirrored pull only ----------------------------------------------------
if sk copy -q --dest-no-creds --dest-tls-verify=false "$(img_src "$WORK/img" docker-single)" \
    "docker://$PCR/team/anon:v1" >>"$WORK/clients.log" 2>&1; then
    fail "anonymous skopeo push succeeded"
fi
expect_eq 401 "$(st POST /v2/newrepo/blobs/uploads/)" "anonymous POST upload to a new repository"
expect_eq 401 "$(st GET /v2/team/app/manifests/v1)" "anonymous GET of a private manifest"
sk copy -q --src-no-creds --src-tls-verify=false "docker://$PCR/docker.io/library/base:cached" \
    "dir:$WORK/anon-pulled" >>"$WORK/clients.log" 2>&1 ||
    fail "anonymous skopeo pull of mirrored content (see clients.log)"
expect_eq 403 "$(st POST /v2/docker.io/library/base/blobs/uploads/ -u "alice:$PW_ALICE")" \
    "alice pushing into a mirror"
echo "ok: anonymous push refused, anonymous pull of mirrored content works, mirrors are read-only"

# a private blob is not served under a mirrored name (the store is shared by digest)
printf 'private blob %s\n' "$RANDOM$RANDOM$RANDOM" >"$WORK/private.blob"
pd=sha256:$(sha256sum "$WORK/private.blob" | cut -d' ' -f1)
expect_eq 201 "$(st POST "/v2/team/app/blobs/uploads/?digest=$pd" -u "alice:$PW_ALICE" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/private.blob")" "alice pushes a private blob"
for p in "/v2/docker.io/library/base/blobs/$pd" "/v2/docker.io/x/blobs/$pd" "/v2/library/base/blobs/$pd?ns=docker.io"; do
    not_granted "$(st GET "$p")" "anonymous GET $p (a private blob under a mirrored name)"
    not_granted "$(st HEAD "$p")" "anonymous HEAD $p"
    not_granted "$(st GET "$p" -u "dave:$PW_DAVE")" "dave GET $p"
done
expect_eq 200 "$(st GET "/v2/docker.io/library/base/blobs/$cfgd0")" "anonymous GET of a blob the upstream has"
echo "ok: private blobs are not served under mirrored names"

# ---- pull-only user cannot delete; tokens are scoped -------------------------------------------
expect_eq 403 "$(st DELETE "/v2/team/app/manifests/$want" -u "bob:$PW_BOB")" "bob DELETE (Basic)"
tb=$(token "bob:$PW_BOB" "repository:team/app:pull,push,delete")
SECRETS+=("$tb")
acts=$(echo "$tb" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null | jq -c '.access[0].actions' || true)
expect_eq '["pull"]' "$acts" "bob's token: granted actions"
not_granted "$(st DELETE "/v2/team/app/manifests/$want" -H "Authorization: Bearer $tb")" "bob DELETE (token)"
expect_eq 200 "$(st HEAD "/v2/team/app/manifests/v1" -H "Authorization: Bearer $tb")" "bob HEAD (token)"
ta=$(token "alice:$PW_ALICE" "repository:team/a:pull,push")
SECRETS+=("$ta")
expect_eq 202 "$(st POST /v2/team/a/blobs/uploads/ -H "Authorization: Bearer $ta")" \
    "alice's token for team/a pushing to team/a"
not_granted "$(st POST /v2/team/b/blobs/uploads/ -H "Authorization: Bearer $ta")" \
    "alice's token for team/a pushing to team/b"
not_granted "$(st POST "/v2/team/b/blobs/uploads/?mount=$want&from=team/app" -H "Authorization: Bearer $ta")" \
    "token for team/a mounting into team/b"
# a mount from a repository the pusher may not pull starts a plain upload instead (202, not 201)
cfgd=$(jq -r .config.digest "$WORK/img/dir/docker-single/manifest.json" 2>/dev/null ||
    sk inspect --raw --creds "alice:$PW_ALICE" --tls-verify=false "docker://$PCR/team/app:v1" | jq -r .config.digest)
expect_eq 202 "$(st POST "/v2/team/a/blobs/uploads/?mount=$cfgd&from=team/app" -H "Authorization: Bearer $ta")" \
    "a token without pull on team/app mounting from it"
expect_eq 201 "$(st POST "/v2/team/a/blobs/uploads/?mount=$cfgd&from=team/app" -u "alice:$PW_ALICE")" \
    "alice mounting from team/app (pull allowed)"
expect_eq 202 "$(st POST "/v2/public/x/blobs/uploads/?mount=$cfgd" -u "alice:$PW_ALICE")" \
    "a mount without from= (any repository)"
expect_eq 202 "$(st POST "/v2/public/x/blobs/uploads/?mount=$cfgd&from=team/app" -u "dave:$PW_DAVE")" \
    "dave (push on public, no pull on team) mounting from team/app"
expect_eq 404 "$(st HEAD "/v2/public/x/blobs/$cfgd" -u "dave:$PW_DAVE")" "the blob after refused mounts"
# the OAuth2 password grant (POST /token) grants as GET does
tp=$(curl -sS -f -X POST --data-urlencode grant_type=password --data-urlencode username=bob \
    --data-urlencode "password=$PW_BOB" --data-urlencode 'scope=repository:team/app:pull,push' \
    --data-urlencode service=pullcache "http://$PCR/token" | jq -er .access_token) ||
    fail "POST /token (password grant)"
SECRETS+=("$tp")
expect_eq 200 "$(st HEAD /v2/team/app/manifests/v1 -H "Authorization: Bearer $tp")" "bob HEAD (POST token)"
not_granted "$(st POST /v2/team/app/blobs/uploads/ -H "Authorization: Bearer $tp")" "bob push (POST token)"
expect_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 'grant_type=password&username=bob&password=nope' \
    "http://$PCR/token")" "POST /token with a wrong password"
unthrottle
tn=$(token "" "repository:team/app:pull,push")
SECRETS+=("$tn")
not_granted "$(st GET /v2/team/app/manifests/v1 -H "Authorization: Bearer $tn")" "anonymous token on team/app"
not_granted "$(st GET /v2/team/app/manifests/v1 -H "Authorization: Bearer ${ta%?}x")" "a forged token"
echo "ok: pull-only user cannot delete; a token for team/a cannot push to team/b; anonymous tokens grant nothing private"

# ---- bypass attempts ---------------------------------------------------------------------------
long=$(printf 'a%.0s' $(seq 300))
for p in "/v2/team%2Fapp/manifests/v1" "/v2/team%252Fapp/manifests/v1" "/v2/team//app/manifests/v1" \
    "/v2//team/app/manifests/v1" "/v2/public/../team/app/manifests/v1" \
    "/v2/public/%2E%2E/team/app/manifests/v1" "/v2/./team/app/manifests/v1" \
    "/v2/Team/app/manifests/v1" "/v2/TEAM/APP/manifests/v1" "/v2/team/app/../app/manifests/v1" \
    "/v2/public/$long/manifests/v1" "/v2/team/$long/manifests/v1" \
    "/v2/team/app/manifests/v1?ns=docker.io" "/v2/team/app/manifests/v1?ns=other" \
    "/v2/team/app/manifests/v1?ns=team" "/v2/team/app/manifests/v1?ns=public" \
    "/v2/docker.io/../team/app/manifests/v1" "/v2/team/app%00/manifests/v1"; do
    not_granted "$(st GET "$p")" "anonymous GET $p"
    not_granted "$(st POST "${p%%/manifests/*}/blobs/uploads/?ns=docker.io")" "anonymous POST upload $p"
    not_granted "$(st DELETE "${p%%\?*}" -u "bob:$PW_BOB")" "bob DELETE $p"
    not_granted "$(st PUT "${p%%\?*}" -u "bob:$PW_BOB" -H 'Content-Type: application/json' -d '{}')" \
        "bob PUT $p"
done
# ns= on a write cannot make a local repository look mirrored (or the other way)
not_granted "$(st POST "/v2/team/app/blobs/uploads/?ns=docker.io" -u "bob:$PW_BOB")" "bob POST ?ns=docker.io"
# a token naming an odd scope is refused or grants nothing
expect_eq 400 "$(st GET "/token?scope=repository:team/../team/app:pull" -u "bob:$PW_BOB")" "/token with .."
expect_eq 400 "$(st GET "/token?scope=repository:TEAM/app:pull" -u "bob:$PW_BOB")" "/token with upper case"
echo "ok: percent-encoding, //, .., case, 300-character names and ?ns= grant nothing"

# ---- admin endpoints and the catalog -----------------------------------------------------------
expect_eq 401 "$(st GET /_pullcache/status)" "anonymous status"
expect_eq 403 "$(st GET /_pullcache/status -u "bob:$PW_BOB")" "bob status"
expect_eq 200 "$(st GET /_pullcache/status -u "alice:$PW_ALICE")" "alice status"
expect_eq 401 "$(st GET /metrics)" "anonymous metrics"
expect_eq 403 "$(st GET /metrics -u "bob:$PW_BOB")" "bob metrics"
expect_eq 401 "$(st GET /v2/_catalog)" "anonymous catalog"
# the catalog lists only what the user may pull: secret/app (pull: alice) is
# in alice's and not in bob's, team/app (pull: alice, bob) in both
sk copy -q --dest-creds "alice:$PW_ALICE" --dest-tls-verify=false \
    "$(img_src "$WORK/img" docker-single)" "docker://$PCR/secret/app:v1" >>"$WORK/clients.log" 2>&1 ||
    fail "skopeo copy --dest-creds to secret/app (see clients.log)"
expect_eq 403 "$(st GET /v2/secret/app/manifests/v1 -u "bob:$PW_BOB")" "bob GET of secret/app"
listed() { # FILE NAME: whether the catalog document FILE lists NAME
    jq -e --arg n "$2" '.repositories | any(. == $n)' "$1" >/dev/null
}
curl -sS -f -u "alice:$PW_ALICE" "http://$PCR/v2/_catalog" >"$WORK/cat-alice.json" || fail "alice catalog"
listed "$WORK/cat-alice.json" secret/app || fail "alice's catalog lacks secret/app: $(cat "$WORK/cat-alice.json")"
listed "$WORK/cat-alice.json" team/app || fail "alice's catalog lacks team/app: $(cat "$WORK/cat-alice.json")"
curl -sS -f -u "bob:$PW_BOB" "http://$PCR/v2/_catalog" >"$WORK/cat.json" || fail "bob catalog"
listed "$WORK/cat.json" team/app || fail "bob's catalog lacks team/app: $(cat "$WORK/cat.json")"
if listed "$WORK/cat.json" secret/app; then
    fail "bob's catalog lists secret/app, which he may not pull: $(cat "$WORK/cat.json")"
fi
# Pages stay full after the filter: with secret/app and secret/p1..p4 (bob
# may pull none of them) in a row, bob's pages of n=2 still hold 2 names each
# until the last, and every Link names the page's last name (never one he
# may not see), so following them lists exactly his whole catalog.
for r in p1 p2 p3 p4; do
    sk copy -q --dest-creds "alice:$PW_ALICE" --dest-tls-verify=false \
        "$(img_src "$WORK/img" docker-single)" "docker://$PCR/secret/$r:v1" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --dest-creds to secret/$r (see clients.log)"
done
curl -sS -f -u "bob:$PW_BOB" "http://$PCR/v2/_catalog" >"$WORK/cat.json" || fail "bob catalog"
want=$(jq -r '.repositories | join(" ")' "$WORK/cat.json")
[ "$(jq '.repositories | length' "$WORK/cat.json")" -ge 3 ] || fail "bob's catalog is too short to page: $want"
url="/v2/_catalog?n=2" got="" pages=0
while [ -n "$url" ]; do
    pages=$((pages + 1))
    [ "$pages" -le 20 ] || fail "bob's catalog pages do not end (at $url)"
    curl -sS -f -D "$WORK/page.h" -u "bob:$PW_BOB" "http://$PCR$url" >"$WORK/page.json" ||
        fail "bob catalog page $url"
    names=$(jq -r '.repositories | join(" ")' "$WORK/page.json")
    got+="${got:+ }$names"
    url=$(tr -d '\r' <"$WORK/page.h" | sed -n 's/^link: *<\([^>]*\)>; rel="next"$/\1/Ip')
    if [ -n "$url" ]; then
        expect_eq 2 "$(jq '.repositories | length' "$WORK/page.json")" "names on bob's page before $url"
        expect_eq "/v2/_catalog?n=2&last=$(jq -r '.repositories[-1]' "$WORK/page.json")" "$url" \
            "Link after bob's page [$names]"
    fi
done
expect_eq "$want" "$got" "bob's catalog followed page by page (n=2)"
echo "ok: status and metrics for admins only; catalog for users, filtered by pull access, in full pages"

# ---- SIGHUP adds a user ------------------------------------------------------------------------
expect_eq 401 "$(st GET /v2/ -u "carol:$PW_CAROL")" "carol before SIGHUP"
htpasswd -bB -C 5 "$WORK/htpasswd" carol "$PW_CAROL" 2>>"$WORK/clients.log"
kill -HUP "$PC_PID"
ok=""
for _ in $(seq 50); do
    [ "$(st GET /v2/ -u "carol:$PW_CAROL")" = 200 ] && ok=1 && break
    sleep 0.1
done
[ -n "$ok" ] || fail "carol cannot log in after SIGHUP"
expect_eq 200 "$(st HEAD /v2/team/app/manifests/v1 -u "carol:$PW_CAROL")" "carol pulls after SIGHUP"
cp "$WORK/htpasswd" "$WORK/htpasswd.good"
htpasswd -nbm mallory weakpass >>"$WORK/htpasswd"
kill -HUP "$PC_PID"
for _ in $(seq 50); do
    grep -q 'users and access rules not reloaded, the old ones stay' "$WORK/pullcache.log" && break
    sleep 0.1
done
grep -q 'users and access rules not reloaded, the old ones stay.*only bcrypt' "$WORK/pullcache.log" ||
    fail "a weak htpasswd on SIGHUP was not logged as refused"
expect_eq 200 "$(st GET /v2/ -u "carol:$PW_CAROL")" "carol after a refused reload"
cp "$WORK/htpasswd.good" "$WORK/htpasswd"
echo "ok: SIGHUP reloads the users; a weak file on SIGHUP keeps the old users"

# ---- the failed-login throttle -----------------------------------------------------------------
codes=""
for _ in $(seq 20); do # each failure while not held back doubles the delay: a 429 must come
    c=$(st GET /v2/ -u "bob:wrong")
    codes+=" $c"
    [ "$c" = 429 ] && break
done
grep -q 429 <<<"$codes" || fail "repeated wrong passwords were never slowed down: $codes"
expect_eq 200 "$(st GET /v2/ -u "carol:$PW_CAROL")" "carol, logged in a moment ago, goes on"
echo "ok: repeated failed logins get 429 ($codes)"

# ---- secrets never show up ---------------------------------------------------------------------
sleep 2
curl -sS -f -u "alice:$PW_ALICE" "http://$PCR/metrics" >"$WORK/metrics.out" || true
curl -sS -f -u "alice:$PW_ALICE" "http://$PCR/_pullcache/status" >"$WORK/status.out" || true
pc_stop

# ---- tokens of an external issuer ------------------------------------------------------------
# The issuer is a second pullcache with a fixed key, issuer "ext-auth" and service "reg"; the
# registry under test trusts its public key. A token of the issuer's own (generated) key - or
# ours - is not accepted for the other.
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/ext.key" 2>>"$WORK/clients.log"
openssl ec -in "$WORK/ext.key" -pubout -out "$WORK/ext.pub" 2>>"$WORK/clients.log"
cat >"$WORK/issuer.yml" <<YML
auth:
  htpasswd: $WORK/htpasswd
  access:
    - {prefix: team, pull: [alice, bob], push: [alice]}
  token: {issuer: ext-auth, service: reg, key: $WORK/ext.key}
YML
EXT_PORT=$((PC_PORT + 17))
"$PULLCACHE" serve --listen "127.0.0.1:$EXT_PORT" --data "$WORK/ext-data" \
    --config "$WORK/issuer.yml" >>"$WORK/pullcache.log" 2>&1 &
EXT_PID=$!
PIDS+=("$EXT_PID")
wait_http "http://127.0.0.1:$EXT_PORT/v2/" "$EXT_PID"
te=$(curl -sS -f -u "bob:$PW_BOB" "http://127.0.0.1:$EXT_PORT/token?service=reg&scope=repository:team/app:pull,push" |
    jq -er .token)
SECRETS+=("$te")
cat >"$WORK/trust.yml" <<YML
auth:
  htpasswd: $WORK/htpasswd
  trust: {issuer: ext-auth, audience: reg, key: $WORK/ext.pub}
YML
pc_needs_persistent "the images pushed above to survive the restart with trust.yml"
pc_start "$WORK/data" --config "$WORK/trust.yml"
expect_eq 200 "$(st HEAD /v2/team/app/manifests/v1 -H "Authorization: Bearer $te")" "external token: pull"
not_granted "$(st POST /v2/team/app/blobs/uploads/ -H "Authorization: Bearer $te")" \
    "external token granting pull only: push"
not_granted "$(st HEAD /v2/team/pod/manifests/v1 -H "Authorization: Bearer $te")" \
    "external token for team/app on team/pod"
tw=$(token "alice:$PW_ALICE" "repository:team/app:pull")
SECRETS+=("$tw")
expect_eq 200 "$(st HEAD /v2/team/app/manifests/v1 -H "Authorization: Bearer $tw")" "our own token next to trust"
pc_stop
kill -TERM "$EXT_PID"
wait "$EXT_PID" 2>/dev/null || true
echo "ok: tokens of a trusted external issuer grant what they say, no more"

# ---- an expired token; the limiter counts by account ----------------------------------------------------------------------------------------------------------
printf 'auth:\n  htpasswd: %s\n  token:\n    lifetime: 1\n' "$WORK/htpasswd" >"$WORK/short.yml"
pc_start "$WORK/data" --config "$WORK/short.yml" --limit-authenticated 50/3600
curl -s -o /dev/null -D "$WORK/h" -I -u "alice:$PW_ALICE" "http://$PCR/v2/team/app/manifests/v1"
grep -qi '^docker-ratelimit-source: .*alice' "$WORK/h" ||
    fail "an authenticated pull is not counted for the account: $(grep -i ratelimit-source "$WORK/h")"
tt=$(token "alice:$PW_ALICE" "repository:team/app:pull")
SECRETS+=("$tt")
now=$(st HEAD /v2/team/app/manifests/v1 -H "Authorization: Bearer $tt")
ok=""
for _ in $(seq 100); do
    [ "$(st HEAD /v2/team/app/manifests/v1 -H "Authorization: Bearer $tt")" = 401 ] && ok=1 && break
    sleep 0.1
done
[ -n "$ok" ] || fail "a token of lifetime 1 s still works after 10 s"
curl -s -o /dev/null -D "$WORK/h" -I -H "Authorization: Bearer $tt" "http://$PCR/v2/team/app/manifests/v1"
grep -qi '^WWW-Authenticate: Bearer .*error="invalid_token"' "$WORK/h" ||
    fail "expired token: challenge without error=\"invalid_token\": $(grep -i www-auth "$WORK/h")"
[ "$now" = 200 ] || echo "note: the 1-second token had expired before its first use ($now)"
echo "ok: an expired token is refused with 401"
curl -sS -f -u "alice:$PW_ALICE" "http://$PCR/metrics" >>"$WORK/metrics.out" || true
pc_stop

for s in "${SECRETS[@]}"; do
    for f in "$WORK/pullcache.log" "$WORK/metrics.out" "$WORK/status.out"; do
        if grep -qF -- "$s" "$f"; then fail "a secret (${s:0:6}...) is in $(basename "$f")"; fi
    done
done
grep -qi 'authorization' "$WORK/pullcache.log" && fail "an Authorization header is in the log"
grep -q ' POST /v2/team/a/blobs/uploads/ 202 .* user=alice$' "$WORK/pullcache.log" ||
    fail "the request log does not name the user"
[ -s "$WORK/metrics.out" ] || fail "no /metrics output to check"
grep -Eq '^pullcache_auth_failed_logins_total [1-9]' "$WORK/metrics.out" ||
    fail "/metrics: no failed logins counted"
grep -Eq '^pullcache_auth_tokens_issued_total [1-9]' "$WORK/metrics.out" ||
    fail "/metrics: no tokens counted"
echo "ok: no password or token in the log, /metrics or the status document"
echo "PASS: $TEST_NAME"
