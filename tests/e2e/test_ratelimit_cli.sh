#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_ratelimit_cli.sh - `pullcache ratelimit IMAGE` against the fake upstream
# (tests/tools/fakeupstream.py), docker-registry and pullcache itself:
#   token flow  dockerhub_like: challenge on the registry port, token realm on
#               a separate port; anonymous, --username/--password-stdin and an
#               auth file ($DOCKER_CONFIG/config.json); only manifest HEADs
#               reach the registry, so the budget never moves; a wrong
#               password is one clear line and exit 3
#   no headers  docker-registry: "does not limit this client", limited=false,
#               --min passes
#   --min       remaining 3: --min 5 exits 1, --min 3 and --min 2 exit 0
#   garbage     ratelimit_garbage: unreadable headers reported, no crash
#   --watch     on a pseudo-terminal (util-linux script): redrawn in place (\r,
#               ESC[K, cursor up for several lines) while the fake's budget
#               changes between checks; appended lines (or JSON lines) when
#               not a terminal; SIGINT/SIGTERM end it with exit 0
#   errors      unknown image, refused connection, TLS against plain HTTP
#               (https://: exit 3, one line naming --plain-http; without a
#               scheme the loopback registry is found over plain http);
#               malformed reference and bad flags: exit 2;
#               Docker Hub is the default registry (its name resolves to
#               loopback here, so nothing leaves the namespace)
#   pullcache   pullcache_status (a fake answering /_pullcache/status) adds
#               the upstream budgets; a real pullcache is checked the same way
#               when it serves /_pullcache/status, and must degrade cleanly
#               when it does not
. "$(dirname "$0")/lib.sh"

command -v script >/dev/null || fail "script (util-linux, package bsdutils) is not installed"

FP=5101 TP=5102 RP=5103 SP=5104
IMG=127.0.0.1:$FP/library/test:oci-single

# rl OUT [args...]: run `pullcache ratelimit args` with stdout in OUT and
# stderr in OUT.err; print the exit status.
rl() {
    local out=$1 rc=0
    shift
    "$PULLCACHE" ratelimit "$@" >"$out" 2>"$out.err" </dev/null || rc=$?
    echo "$rc"
}

# rl_in INPUT OUT [args...]: the same with INPUT on stdin.
rl_in() {
    local in=$1 out=$2 rc=0
    shift 2
    printf '%s\n' "$in" | "$PULLCACHE" ratelimit "$@" >"$out" 2>"$out.err" || rc=$?
    echo "$rc"
}

has() { grep -F -- "$2" "$1" >/dev/null || fail "$(basename "$1") lacks '$2': $(cat "$1" "$1.err" 2>/dev/null)"; }
lines() { grep -c '' "$1" || true; }

# heads_ok PORT: manifest HEADs the fake answered 200 so far.
heads_ok() { fake_count "$1" HEAD manifest '.status == 200'; }

# wait_heads PORT N PID: wait until N manifest HEADs were answered 200 (or
# process PID ended).
wait_heads() {
    for _ in $(seq 200); do
        [ "$(heads_ok "$1")" -ge "$2" ] && return 0
        kill -0 "$3" 2>/dev/null || return 0
        sleep 0.05
    done
    fail "no $2 manifest HEADs at port $1"
}

mkimages "$WORK/img" rlcli 1
fake_start dockerhub_like "$FP" "$TP" "$RP" --repo "library/test=$WORK/img"
LOG=$(fake_reqlog "$FP")

# ---- (1) anonymous token flow: HEAD only, the budget never moves ------------
expect_eq 0 "$(rl "$WORK/a1" --plain-http "$IMG")" "anonymous check exit"
has "$WORK/a1" "$IMG  limit 100 per 6h  remaining 100  source 127.0.0.1"
has "$WORK/a1" "(anonymous token from http://127.0.0.1:$TP/token)"
expect_eq 1 "$(lines "$WORK/a1")" "anonymous check output lines"
expect_eq 0 "$(rl "$WORK/a2" --plain-http --json "$IMG")" "anonymous --json exit"
jq -e --arg img "$IMG" --arg realm "http://127.0.0.1:$TP/token" '
    .image == $img and .registry == "http://127.0.0.1:'"$FP"'" and .limited == true and
    .limit == 100 and .remaining == 100 and .window == 21600 and .source == "127.0.0.1" and
    .auth == "anonymous" and .credentials == "anonymous" and .username == null and
    .token_realm == $realm and .token_service == "fake" and .status == 200 and
    .headers["ratelimit-limit"] == "100;w=21600" and (.checked_at | test("Z$"))' \
    "$WORK/a2" >/dev/null || fail "anonymous --json: $(cat "$WORK/a2")"
expect_eq 0 "$(fake_count "$FP" GET manifest)" "manifest GETs by the checks"
expect_eq 0 "$(fake_count "$FP" "" blob)" "blob requests by the checks"
[ "$(heads_ok "$FP")" -ge 2 ] || fail "no manifest HEADs logged"
expect_eq 2 "$(jq -s '[.[] | select(.kind == "token" and .listener == "token" and .auth == false)] | length' "$LOG")" \
    "anonymous token requests on the token port (one per run)"
expect_eq 0 "$(jq -s '[.[] | select(.listener == "main" and .kind == "token")] | length' "$LOG")" \
    "token requests on the registry port"
expect_eq 100 "$(curl -sS -f "http://127.0.0.1:$FP/_fake/ratelimit" | jq '.budgets["127.0.0.1"]')" \
    "fake budget after the checks"
# A real pull (a manifest GET with a token) spends one, and the next check sees it.
tok=$(curl -sS -f "http://127.0.0.1:$TP/token?service=fake&scope=repository:library/test:pull" | jq -r .token)
curl -sS -f -o /dev/null -H "Authorization: Bearer $tok" -H "Accept: $MANIFEST_ACCEPT" \
    "http://127.0.0.1:$FP/v2/library/test/manifests/oci-single" || fail "manifest GET with a token"
expect_eq 0 "$(rl "$WORK/a3" --plain-http --json "$IMG")" "check after a pull"
expect_eq 99 "$(jq .remaining "$WORK/a3")" "remaining after one real pull"
expect_eq 1 "$(fake_count "$FP" GET manifest)" "manifest GETs (only the test's own pull)"

# ---- (2) credentials: flags, auth file, wrong password ---------------------
fake_reset_log "$FP"
expect_eq 0 "$(rl_in fakepass "$WORK/c1" --plain-http --username fakeuser --password-stdin "$IMG")" \
    "--username/--password-stdin exit"
has "$WORK/c1" "remaining 100  source fakeuser  (token for fakeuser from http://127.0.0.1:$TP/token, credentials from flags)"
expect_eq 1 "$(jq -s '[.[] | select(.kind == "token" and .listener == "token" and .auth == true and .status == 200)] | length' "$LOG")" \
    "authenticated token requests (flags)"
mkdir -p "$WORK/dockercfg"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$FP" "$(printf fakeuser:fakepass | base64)" \
    >"$WORK/dockercfg/config.json"
fake_reset_log "$FP"
rc=0
env -u REGISTRY_AUTH_FILE -u PULLCACHE_USERNAME -u PULLCACHE_PASSWORD DOCKER_CONFIG="$WORK/dockercfg" \
    "$PULLCACHE" ratelimit --plain-http --json "$IMG" >"$WORK/c2" 2>"$WORK/c2.err" </dev/null || rc=$?
expect_eq 0 "$rc" "auth file check exit"
jq -e --arg f "$WORK/dockercfg/config.json" '.auth == "bearer" and .credentials == $f and
    .username == "fakeuser" and .source == "fakeuser" and .remaining == 100' "$WORK/c2" >/dev/null ||
    fail "auth file --json: $(cat "$WORK/c2" "$WORK/c2.err")"
expect_eq 1 "$(jq -s '[.[] | select(.kind == "token" and .listener == "token" and .auth == true and .status == 200)] | length' "$LOG")" \
    "authenticated token requests (auth file)"
expect_eq 3 "$(rl_in not-the-password "$WORK/c3" --plain-http --username fakeuser --password-stdin "$IMG")" \
    "wrong password exit"
expect_eq 1 "$(lines "$WORK/c3.err")" "wrong password message lines"
has "$WORK/c3.err" "the token server http://127.0.0.1:$TP/token refused the credentials of fakeuser (from flags)"
expect_eq 0 "$(lines "$WORK/c3")" "wrong password stdout lines"
! grep -F not-the-password "$WORK/c3" "$WORK/c3.err" >/dev/null || fail "the password was printed"
expect_eq 2 "$(rl "$WORK/c4" --plain-http --username fakeuser "$IMG")" "--username without --password-stdin"
expect_eq 0 "$(fake_count "$FP" GET manifest)" "manifest GETs by the credential checks"

# ---- (4) --min ---------------------------------------------------------------
fake_ratelimit "$FP" 3
expect_eq 1 "$(rl "$WORK/m1" --plain-http --min 5 "$IMG")" "--min 5 with 3 remaining"
has "$WORK/m1" "remaining 3"
has "$WORK/m1" "below --min 5: 3 pull(s) remain"
expect_eq 0 "$(rl "$WORK/m2" --plain-http --min 2 "$IMG")" "--min 2 with 3 remaining"
expect_eq 0 "$(rl "$WORK/m3" --plain-http --min 3 --json "$IMG")" "--min 3 with 3 remaining"
jq -e '.min == 3 and .below_min == false and .remaining == 3' "$WORK/m3" >/dev/null || fail "--min --json: $(cat "$WORK/m3")"
expect_eq 1 "$(rl "$WORK/m4" --plain-http --min 4 --json "$IMG")" "--min 4 --json with 3 remaining"
jq -e '.below_min == true' "$WORK/m4" >/dev/null || fail "--min 4 --json: $(cat "$WORK/m4")"

# ---- (6) --watch: a pseudo-terminal, a pipe, JSON lines, signals --------------
fake_ratelimit "$FP" 100
fake_reset_log "$FP"
script -qfec "$PULLCACHE ratelimit --plain-http --watch 1 --count 3 $IMG" /dev/null \
    </dev/null >"$WORK/pty.out" 2>&1 &
spid=$!
wait_heads "$FP" 1 "$spid"
fake_ratelimit "$FP" 50
wait_heads "$FP" 2 "$spid"
fake_ratelimit "$FP" 40
rc=0
wait "$spid" || rc=$?
expect_eq 0 "$rc" "--watch --count 3 on a terminal exit"
expect_eq 3 "$(heads_ok "$FP")" "manifest HEADs of three checks"
expect_eq 0 "$(fake_count "$FP" GET manifest)" "manifest GETs by the watch"
grep -F $'\r\e[K[' "$WORK/pty.out" >/dev/null || fail "no carriage return + erase line in: $(od -c "$WORK/pty.out" | head)"
expect_eq 3 "$(grep -o -F $'\e[K[' "$WORK/pty.out" | wc -l)" "redraws on the terminal"
expect_eq 1 "$(lines "$WORK/pty.out")" "lines on the terminal (redrawn in place, one final newline)"
seen=$(grep -a -o -E 'remaining [0-9]+' "$WORK/pty.out" | awk '{print $2}' | tr '\n' ' ')
[[ $seen =~ ^100\  ]] || fail "first check: want remaining 100, got: $seen"
[ "$(tr ' ' '\n' <<<"$seen" | sed '/^$/d' | sort -u | wc -l)" -ge 2 ] ||
    fail "the watch did not show the budget change: $seen"
sort -rn -c <<<"$(tr ' ' '\n' <<<"$seen" | sed '/^$/d')" 2>/dev/null || fail "remaining went up: $seen"

expect_eq 0 "$(rl "$WORK/w2" --plain-http --watch 1 --count 2 "$IMG")" "--watch into a file"
expect_eq 2 "$(lines "$WORK/w2")" "appended lines when not a terminal"
! grep -q $'\e' "$WORK/w2" || fail "escape sequences in a file: $(od -c "$WORK/w2" | head)"
! grep -q $'\r' "$WORK/w2" || fail "carriage returns in a file"
grep -E -c "^\[[0-9]{2}:[0-9]{2}:[0-9]{2}\] $IMG  limit 100 per 6h  remaining 40 " "$WORK/w2" | grep -qx 2 ||
    fail "watch lines: $(cat "$WORK/w2")"
expect_eq 0 "$(rl "$WORK/w3" --plain-http --json --watch 1 --count 2 "$IMG")" "--json --watch"
expect_eq 2 "$(jq -s 'map(select(.remaining == 40)) | length' "$WORK/w3")" "JSON lines of the watch"

for sig in INT TERM; do
    "$PULLCACHE" ratelimit --plain-http --watch 1 "$IMG" >"$WORK/sig-$sig" 2>&1 </dev/null &
    wpid=$!
    for _ in $(seq 200); do
        [ -s "$WORK/sig-$sig" ] && break
        kill -0 "$wpid" 2>/dev/null || break
        sleep 0.05
    done
    [ -s "$WORK/sig-$sig" ] || fail "watch printed nothing before SIG$sig"
    kill -"$sig" "$wpid"
    rc=0
    wait "$wpid" || rc=$?
    expect_eq 0 "$rc" "watch stopped by SIG$sig"
    grep -q "remaining 40" "$WORK/sig-$sig" || fail "watch output before SIG$sig: $(cat "$WORK/sig-$sig")"
done

# ---- (7) errors ---------------------------------------------------------------
expect_eq 3 "$(rl "$WORK/e1" --plain-http "127.0.0.1:$FP/library/nosuch")" "unknown image exit"
expect_eq 1 "$(lines "$WORK/e1.err")" "unknown image message lines"
has "$WORK/e1.err" "127.0.0.1:$FP/library/nosuch:latest: no such image at http://127.0.0.1:$FP"
expect_eq 0 "$(lines "$WORK/e1")" "unknown image stdout"
expect_eq 3 "$(rl "$WORK/e2" --plain-http --json "127.0.0.1:$FP/library/nosuch")" "unknown image --json exit"
jq -e '.error | test("no such image")' "$WORK/e2" >/dev/null || fail "unknown image --json: $(cat "$WORK/e2")"
expect_eq 3 "$(rl "$WORK/e3" --plain-http 127.0.0.1:5199/library/test)" "refused connection exit"
expect_eq 1 "$(lines "$WORK/e3.err")" "refused connection message lines"
has "$WORK/e3.err" "cannot connect to http://127.0.0.1:5199"
# https:// asks for TLS (no loopback fallback): the message says plain HTTP and names the flag
expect_eq 3 "$(rl "$WORK/e4" "https://$IMG")" "https to a plain HTTP registry exit"
expect_eq 1 "$(lines "$WORK/e4.err")" "TLS message lines"
has "$WORK/e4.err" "TLS failure with https://127.0.0.1:$FP"
has "$WORK/e4.err" "the registry speaks plain HTTP, not TLS: use --plain-http or an http:// reference"
# without a scheme a loopback registry is tried over https, then plain http (Docker's rule)
expect_eq 0 "$(rl "$WORK/e4b" "$IMG")" "loopback registry without --plain-http exit"
has "$WORK/e4b" "limit 100"
expect_eq 0 "$(rl "$WORK/e4c" "http://$IMG")" "http:// prefix exit"
for bad in 'Bad//Ref' 'library/test:' 'a@sha256:xyz'; do
    expect_eq 2 "$(rl "$WORK/e5" --plain-http "$bad")" "malformed reference '$bad' exit"
    has "$WORK/e5.err" "is not an image reference"
done
expect_eq 2 "$(rl "$WORK/e6" --plain-http)" "no image exit"
expect_eq 2 "$(rl "$WORK/e6" --plain-http --count 2 "$IMG")" "--count without --watch exit"
expect_eq 2 "$(rl "$WORK/e6" --plain-http --min -1 "$IMG")" "negative --min exit"
expect_eq 2 "$(rl "$WORK/e6" --plain-http --watch 0 "$IMG")" "--watch 0 exit"
expect_eq 2 "$(rl "$WORK/e6" --bogus "$IMG")" "unknown flag exit"
"$PULLCACHE" ratelimit --help | grep -F -- "--password-stdin" >/dev/null || fail "help lacks the connection flags"
"$PULLCACHE" help ratelimit | grep -F "3  the registry or the network failed" >/dev/null || fail "help lacks the exit codes"
# Docker Hub by default: registry-1.docker.io resolves to loopback in this
# test's mount namespace, where nothing listens on 443.
printf '127.0.0.1 localhost registry-1.docker.io auth.docker.io\n' >"$WORK/hosts"
mount --bind "$WORK/hosts" /etc/hosts || fail "cannot bind-mount a hosts file"
expect_eq 3 "$(rl "$WORK/e7" --json --connect-timeout 2 nginx)" "nginx against the unreachable Docker Hub"
jq -e '.image == "docker.io/library/nginx:latest" and .registry == "https://registry-1.docker.io" and
    (.error | test("cannot connect to https://registry-1.docker.io"))' "$WORK/e7" >/dev/null ||
    fail "nginx --json: $(cat "$WORK/e7" "$WORK/e7.err")"
umount /etc/hosts

# ---- (5) garbage headers, and a pullcache's status (faked) ---------------------
fake_start pullcache_status "$SP" - - --repo "library/test=$WORK/img"
PIMG=127.0.0.1:$SP/library/test:oci-single
expect_eq 0 "$(rl "$WORK/p1" --plain-http "$PIMG")" "check of a (fake) pullcache"
has "$WORK/p1" "$PIMG  http://127.0.0.1:$SP sent no rate limit headers, so it does not limit this client  (no authentication)"
has "$WORK/p1" "pullcache 0.1.0 at this registry (up 1h30m); library/test is its own (private) repository: pulling it spends no upstream budget; budgets it has seen upstream:"
has "$WORK/p1" "  docker.io (https://registry-1.docker.io, credential anonymous, reserve 10): limit 100 per 6h  remaining 42  source 203.0.113.7  state ok  seen "
has "$WORK/p1" "  ghcr.io (https://ghcr.io, reserve 0): no budget seen yet"
expect_eq 0 "$(rl "$WORK/p2" --plain-http --json --min 1000 "$PIMG")" "--json of a (fake) pullcache"
jq -e '.limited == false and .limit == null and .below_min == false and .pullcache_version == "0.1.0" and
    (.upstreams | length) == 2 and .upstreams[0].ratelimit.remaining == 42 and .upstreams[1].ratelimit == null' \
    "$WORK/p2" >/dev/null || fail "pullcache --json: $(cat "$WORK/p2")"
script -qfec "$PULLCACHE ratelimit --plain-http --watch 1 --count 2 $PIMG" /dev/null \
    </dev/null >"$WORK/pty2.out" 2>&1 || fail "multi-line watch on a terminal failed"
grep -a -q -E $'\e\\[[0-9]+A' "$WORK/pty2.out" || fail "no cursor up in a multi-line redraw: $(od -c "$WORK/pty2.out" | head)"
grep -F -q $'\e[J' "$WORK/pty2.out" || fail "no erase below in a multi-line redraw"
# The plain fake is not a pullcache: nothing extra, and it is asked once per run.
expect_eq 0 "$(rl "$WORK/p3" --plain-http --json "$IMG")" "non-pullcache --json"
jq -e 'has("upstreams") | not' "$WORK/p3" >/dev/null || fail "upstreams from a non-pullcache: $(cat "$WORK/p3")"

fake_scenario "$SP" ratelimit_garbage
expect_eq 0 "$(rl "$WORK/g1" --plain-http "$PIMG")" "unreadable headers exit"
has "$WORK/g1" 'rate limit headers not understood: ratelimit-limit "lots" ratelimit-remaining "many;w=soon"  source garbage-test'
expect_eq 1 "$(rl "$WORK/g2" --plain-http --json --min 1 "$PIMG")" "unreadable headers with --min"
jq -e '.limited == true and .limit == null and .remaining == null and .window == null and
    .source == "garbage-test" and .headers["ratelimit-limit"] == "lots" and .below_min == true' \
    "$WORK/g2" >/dev/null || fail "unreadable headers --json: $(cat "$WORK/g2")"

# ---- (3) a registry without limits: docker-registry ------------------------------
clients_init
dist_start "$WORK/dist"
dist_push "$WORK/img" oci-single library/test:oci-single
DIMG=127.0.0.1:$DIST_PORT/library/test:oci-single
expect_eq 0 "$(rl "$WORK/d1" --plain-http "$DIMG")" "docker-registry check"
has "$WORK/d1" "$DIMG  http://127.0.0.1:$DIST_PORT sent no rate limit headers, so it does not limit this client  (no authentication)"
expect_eq 1 "$(lines "$WORK/d1")" "docker-registry output lines"
expect_eq 0 "$(rl "$WORK/d2" --plain-http --json --min 1000000 "$DIMG")" "docker-registry with a huge --min"
jq -e '.limited == false and .limit == null and .remaining == null and .source == null and
    .below_min == false and .auth == "anonymous" and .token_realm == null' "$WORK/d2" >/dev/null ||
    fail "docker-registry --json: $(cat "$WORK/d2")"

# ---- (8) pullcache itself ----------------------------------------------------------
fake_ratelimit "$FP" 100
pc_start "$WORK/pcdata" --upstream "hub=http://127.0.0.1:$FP"
CIMG=127.0.0.1:$PC_PORT/hub/library/test:oci-single
expect_eq 0 "$(rl "$WORK/pc1" --plain-http --json "$CIMG")" "check through pullcache"
jq -e '(.limited | type) == "boolean" and .status == 200' "$WORK/pc1" >/dev/null ||
    fail "pullcache --json: $(cat "$WORK/pc1" "$WORK/pc1.err")"
jq -e '(.upstreams | map(.name) | index("hub")) != null and .via_upstream == "hub"' "$WORK/pc1" >/dev/null ||
    fail "the check through pullcache shows no upstream 'hub' it comes through: $(cat "$WORK/pc1")"
expect_eq 0 "$(rl "$WORK/pc2" --plain-http "$CIMG")" "human check through pullcache"
has "$WORK/pc2" "; hub/library/test comes through its mirror of hub; budgets it has seen upstream:"
has "$WORK/pc2" "  hub (http://127.0.0.1:$FP"
# A private image of that pullcache: no upstream budget is involved, and the check says so.
push_image "$WORK/img" oci-single team/app:1 # $REG is this pullcache
expect_eq 0 "$(rl "$WORK/pc3" --plain-http --json "127.0.0.1:$PC_PORT/team/app:1")" "check of a private image"
expect_eq null "$(jq -r .via_upstream "$WORK/pc3")" "a private image comes through no upstream"
expect_eq 0 "$(rl "$WORK/pc4" --plain-http "127.0.0.1:$PC_PORT/team/app:1")" "human check of a private image"
has "$WORK/pc4" "; team/app is its own (private) repository: pulling it spends no upstream budget;"
echo "ratelimit_cli: ok"
