#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_systemd.sh - deploy/systemd/pullcache.service, checked without a
# running systemd (there is none as PID 1 here, so nothing is started by
# systemd and systemd-run cannot be used):
#   - `systemd-analyze verify` passes with no message at all, with the binary
#     under test at /usr/bin/pullcache and its man page on MANPATH (an
#     overlay on /usr/bin in this test's own mount namespace: the machine's
#     /usr/bin is never touched); a misspelt copy of the unit does not pass
#     (so the silence means something);
#   - the settings the unit promises are there (DynamicUser, StateDirectory,
#     ProtectSystem=strict, NoNewPrivileges, an empty CapabilityBoundingSet,
#     SystemCallFilter=@system-service, ExecReload sends SIGHUP), as
#     `systemd-analyze security --offline=yes` reads them;
#   - its exposure score (printed, with what is still exposed) is at most
#     MAX_EXPOSURE, 1.1. What makes up the 1.1 is what serve cannot give up:
#     it is a network server that fetches from upstreams (PrivateNetwork=,
#     IPAddressDeny=, AF_INET/AF_INET6), talks to PostgreSQL over its Unix
#     socket (AF_UNIX), runs in the host's root (RootDirectory=) and
#     ProtectClock= allows reading the RTC device (DeviceAllow=). Anything new
#     the unit exposes raises the score and fails the test;
#   - the config it runs serve with (deploy/etc/pullcache/config.yaml)
#     passes `serve --check-config`, its data directory is the unit's
#     StateDirectory, its upstream Docker Hub as serve's embedded default;
#   - what can be run without systemd: serve with that config as the unit
#     would start it as far as plain tools can do it (setpriv: a non-root
#     uid as DynamicUser gives, no capabilities in any set, no_new_privs;
#     umask 0077; working directory the data directory) answers on its port,
#     takes a push, serves it, fetches a blob from its upstream (a second
#     pullcache standing in for Docker Hub), keeps running across the unit's
#     ExecReload (SIGHUP) and stops on SIGTERM with exit 0; under strace,
#     every system call it made is one the unit's SystemCallFilter allows.
#     The namespace, seccomp and ProtectSystem sandboxing itself is
#     systemd's and is not exercised here.
. "$(dirname "$0")/lib.sh"

UNIT=$PC_SRC/deploy/systemd/pullcache.service
CONF=$PC_SRC/deploy/etc/pullcache/config.yaml
MAN=${PC_BUILD:-$(dirname "$PULLCACHE")}/pullcache.1
MAX_EXPOSURE=1.1
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
[ -f "$MAN" ] || fail "$MAN missing (the build generates it)"

# ---- systemd-analyze verify -----------------------------------------------------
# lib.sh runs this test in a mount namespace of its own: /usr/bin gets an
# overlay holding the binary under test, seen by nothing outside.
mkdir -p "$WORK/ov/upper" "$WORK/ov/work" "$WORK/man/man1"
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$WORK/ov/upper,workdir=$WORK/ov/work" /usr/bin ||
    fail "overlay on /usr/bin"
install -m 0755 "$PULLCACHE" /usr/bin/pullcache
cp "$MAN" "$WORK/man/man1/pullcache.1"
export MANPATH=$WORK/man

rc=0
(cd "$WORK" && systemd-analyze verify "$UNIT") >"$WORK/verify.log" 2>&1 || rc=$?
[ "$rc" = 0 ] && [ ! -s "$WORK/verify.log" ] ||
    fail "systemd-analyze verify $UNIT: exit $rc: $(cat "$WORK/verify.log")"
echo "ok: systemd-analyze verify: no message (Documentation=man:pullcache(1) found)"
sed 's/^ProtectSystem=/ProtectSystme=/' "$UNIT" >"$WORK/misspelt.service"
(cd "$WORK" && systemd-analyze verify misspelt.service) >"$WORK/verify-bad.log" 2>&1 || true
grep -q "ProtectSystme" "$WORK/verify-bad.log" ||
    fail "systemd-analyze verify says nothing about a misspelt key: $(cat "$WORK/verify-bad.log")"

# ---- the promised settings ----------------------------------------------------------
systemd-analyze security --offline=yes --json=short "$UNIT" >"$WORK/security.json" ||
    fail "systemd-analyze security --offline=yes --json=short failed"
for item in "User=/DynamicUser=" "ProtectSystem=" "NoNewPrivileges=" "CapabilityBoundingSet=~CAP_SYS_ADMIN" \
    "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)" "AmbientCapabilities=" \
    "SystemCallFilter=~@mount" "SystemCallFilter=~@privileged" "PrivateTmp=" "ProtectHome=" \
    "ProtectKernelTunables=" "ProtectKernelModules=" "MemoryDenyWriteExecute=" "LockPersonality=" \
    "RestrictNamespaces=~user" "RestrictAddressFamilies=~AF_PACKET" "RestrictAddressFamilies=~…"; do
    jq -e --arg n "$item" 'any(.[]; .name == $n and .set == true)' "$WORK/security.json" >/dev/null ||
        fail "systemd-analyze security: $item is not set: $(jq -c --arg n "$item" '.[] | select(.name == $n)' "$WORK/security.json")"
done
jq -e 'any(.[]; .name == "ProtectSystem=" and (.description | test("strict")))' "$WORK/security.json" >/dev/null ||
    fail "ProtectSystem is not strict"
# the unit file's own lines for what the analysis does not name
for l in "DynamicUser=yes" "StateDirectory=pullcache" "CapabilityBoundingSet=" "SystemCallFilter=@system-service" \
    'ExecReload=/bin/kill -HUP $MAINPID' "ExecStart=/usr/bin/pullcache serve --config /etc/pullcache/config.yaml"; do
    grep -qxF -- "$l" "$UNIT" || fail "$UNIT lacks the line: $l"
done
echo "ok: DynamicUser, StateDirectory, ProtectSystem=strict, NoNewPrivileges, no capabilities, @system-service, ExecReload SIGHUP"

# ---- exposure score ---------------------------------------------------------------
systemd-analyze security --offline=yes "$UNIT" >"$WORK/security.txt" 2>&1 ||
    fail "systemd-analyze security --offline=yes: $(cat "$WORK/security.txt")"
score=$(sed -n 's/.*Overall exposure level for pullcache.service: \([0-9.]*\) .*/\1/p' "$WORK/security.txt")
[ -n "$score" ] || fail "no exposure level in: $(tail -3 "$WORK/security.txt")"
echo "still exposed:"
grep '✗' "$WORK/security.txt" | sed 's/^/  /'
echo "exposure score (systemd-analyze security --offline=yes, systemd $(systemd-analyze --version | awk 'NR == 1 { print $2 }')): $score (at most $MAX_EXPOSURE)"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s + 0 <= m + 0) }' ||
    fail "exposure score $score is above $MAX_EXPOSURE"
# and systemd's own threshold (tenths) agrees
systemd-analyze security --offline=yes --threshold="$(awk -v m="$MAX_EXPOSURE" 'BEGIN { print m * 10 }')" "$UNIT" \
    >/dev/null 2>&1 || fail "systemd-analyze security --threshold refuses the unit"

# ---- the shipped config ---------------------------------------------------------------
out=$("$PULLCACHE" serve --check-config --config "$CONF" 2>&1) || fail "serve --check-config $CONF: $out"
python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$CONF" >"$WORK/conf.json"
expect_eq "/var/lib/$(sed -n 's/^StateDirectory=//p' "$UNIT")" "$(jq -r .storage.data "$WORK/conf.json")" \
    "the config's data directory (the unit's StateDirectory)"
expect_eq '[{"name":"docker.io","url":"https://registry-1.docker.io"}]' "$(jq -c .upstreams "$WORK/conf.json")" \
    "the config's upstreams (serve's default: Docker Hub)"
echo "ok: $CONF passes serve --check-config; data in the StateDirectory; Docker Hub upstream"

# ---- serve as the unit starts it, without systemd ------------------------------------------
# The unit's ExecStart with the config's listen address and data directory
# moved into $WORK (the overlay's /usr/bin/pullcache is the binary under test).
# A uid from systemd's DynamicUser range (61184-65519), unknown to the system.
DUID=61999
mkdir -p "$WORK/state/pullcache"
chmod 0711 "$WORK" "$WORK/state"
chown "$DUID:$DUID" "$WORK/state/pullcache"
chmod 0750 "$WORK/state/pullcache"
sed -e "s|^  listen: .*|  listen: 127.0.0.1:$PC_PORT|" -e "s|^  data: /var/lib/pullcache|  data: $WORK/state/pullcache|" \
    "$CONF" >"$WORK/config.yaml"
chmod 0644 "$WORK/config.yaml"
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
read -ra cmd <<<"${exec_start/\/etc\/pullcache\/config.yaml/$WORK/config.yaml}"
# Its one upstream (docker.io) is a second pullcache on 127.0.0.1:$UP_PORT here
# instead of Docker Hub (the one other rewrite), holding a blob.
UP_PORT=$((PC_PORT + 1))
sed -i "s|^    url: https://registry-1.docker.io\$|    url: http://127.0.0.1:$UP_PORT|" "$WORK/config.yaml"
grep -q "url: http://127.0.0.1:$UP_PORT" "$WORK/config.yaml" || fail "rewriting the upstream URL of $CONF"
pc2_start "127.0.0.1:$UP_PORT" "$WORK/up"
head -c 100000 /dev/urandom >"$WORK/blob"
BLOB=$(REG=127.0.0.1:$UP_PORT reg_push_blob library/app "$WORK/blob")
# Under strace when there is one: every system call serve makes is then
# checked against the unit's filter below.
# Not for a sanitizer build: its runtime makes calls of its own, and
# LeakSanitizer does not work under ptrace.
STRACE=() no_strace=""
if ! command -v strace >/dev/null; then
    no_strace="strace not installed"
elif grep -qE '__(asan|tsan)_init' < <(readelf -s "$PULLCACHE"); then
    no_strace="a sanitizer build (its runtime's calls are not serve's)"
else
    STRACE=(strace -f -qq -o "$WORK/strace.out")
fi
# A sanitizer report of serve, which runs as $DUID, goes where that uid may
# write; moved into $WORK at the end, where lib.sh finds it.
mkdir -m 1777 "$WORK/san"
# systemd's default open-files limit (DefaultLimitNOFILE=1024:524288): serve
# raises the soft one for http.max_connections.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge 2048 ] || fail "open-files hard limit $hard: too low to see serve raise it"
(cd "$WORK/state/pullcache" && umask 0077 && ulimit -Sn 1024 &&
    export ASAN_OPTIONS=${ASAN_OPTIONS//$WORK\/sanitizer/$WORK/san/sanitizer} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS//$WORK\/sanitizer/$WORK/san/sanitizer} &&
    exec "${STRACE[@]}" setpriv --reuid="$DUID" --regid="$DUID" --clear-groups --no-new-privs \
        --inh-caps=-all --ambient-caps=-all --bounding-set=-all "${cmd[@]}") >>"$WORK/pullcache.log" 2>&1 &
TOP_PID=$!
PIDS+=("$TOP_PID")
wait_http "http://127.0.0.1:$PC_PORT/v2/" "$TOP_PID"
PC_PID=$TOP_PID
[ ${#STRACE[@]} = 0 ] || PC_PID=$(pgrep -P "$TOP_PID") || fail "no serve under strace"
# a push, a pull, and a mirrored blob fetched from the upstream
REG=127.0.0.1:$PC_PORT reg_push_blob team/app "$WORK/blob" >/dev/null
expect_eq 200 "$(curl -s -o "$WORK/got" -w '%{http_code}' "http://127.0.0.1:$PC_PORT/v2/team/app/blobs/$BLOB")" "GET of the pushed blob"
cmp -s "$WORK/blob" "$WORK/got" || fail "the pushed blob came back different"
expect_eq 200 "$(curl -s -o "$WORK/got" -w '%{http_code}' "http://127.0.0.1:$PC_PORT/v2/docker.io/library/app/blobs/$BLOB")" \
    "GET of a blob through the mirror (fetched from the upstream)"
cmp -s "$WORK/blob" "$WORK/got" || fail "the mirrored blob came back different"
expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PC_PORT/v2/")" "GET /v2/ of the sandboxed serve"
grep -q '^CapEff:[[:space:]]*0*$' "/proc/$PC_PID/status" || fail "serve has capabilities: $(grep ^Cap "/proc/$PC_PID/status")"
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$PC_PID/status" || fail "serve runs without no_new_privs"
expect_eq "$DUID" "$(awk '/^Uid:/ { print $2 }' "/proc/$PC_PID/status")" "serve's uid"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$PC_PID/limits")
[ "$soft" -gt 1024 ] || fail "serve did not raise its open-files limit from 1024 (now $soft)"
[ -f "$WORK/state/pullcache/meta.db" ] || fail "no meta.db in the data directory"
expect_eq "600 $DUID" "$(stat -c '%a %u' "$WORK/state/pullcache/meta.db")" "meta.db's mode and owner (UMask=0077)"
# ExecReload: kill -HUP $MAINPID
kill -HUP "$PC_PID"
for _ in $(seq 100); do grep -q 'SIGHUP' "$WORK/pullcache.log" && break; sleep 0.1; done
grep -q 'SIGHUP' "$WORK/pullcache.log" || fail "serve logged nothing for SIGHUP"
kill -0 "$PC_PID" 2>/dev/null || fail "serve exited on SIGHUP (ExecReload)"
expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PC_PORT/v2/")" "GET /v2/ after SIGHUP"
kill -TERM "$PC_PID"
rc=0
wait "$TOP_PID" || rc=$? # strace exits with serve's status
PC_PID=""
for f in "$WORK"/san/sanitizer.*; do [ ! -e "$f" ] || mv "$f" "$WORK/"; done
expect_eq 0 "$rc" "serve's exit status on SIGTERM (systemctl stop)"

# SystemCallFilter=@system-service then ~@privileged: what serve called,
# from its exec on (setpriv's own calls before it are not serve's), must
# all be allowed, or under systemd they would fail with EPERM.
if [ ${#STRACE[@]} != 0 ]; then
    expand() { # GROUP...: its system calls, nested groups expanded
        local g
        for g in "$@"; do
            systemd-analyze syscall-filter "$g" | awk 'NR > 1 && $1 !~ /^#/ && NF { print $1 }' |
                while read -r w; do
                    if [[ $w == @* ]]; then expand "$w"; else echo "$w"; fi
                done
        done
    }
    allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$UNIT")
    deny=$(sed -n 's/^SystemCallFilter=~//p' "$UNIT")
    [ -n "$allow" ] && [ -n "$deny" ] || fail "the unit's SystemCallFilter lines: $(grep SystemCallFilter "$UNIT")"
    # shellcheck disable=SC2086 # the groups are words
    expand $allow | sort -u >"$WORK/sc.allow"
    # shellcheck disable=SC2086
    expand $deny | sort -u >"$WORK/sc.deny"
    comm -23 "$WORK/sc.allow" "$WORK/sc.deny" >"$WORK/sc.allowed"
    awk 'f { if (match($0, /^[0-9]+ +[a-z0-9_]+\(/)) { s = substr($0, RSTART, RLENGTH - 1); sub(/^[0-9]+ +/, "", s); print s } }
        /execve\("[^"]*\/pullcache", / && / = 0$/ { f = 1 }' "$WORK/strace.out" | sort -u >"$WORK/sc.used"
    [ "$(wc -l <"$WORK/sc.used")" -gt 20 ] || fail "strace saw only $(wc -l <"$WORK/sc.used") system calls of serve"
    denied=$(comm -23 "$WORK/sc.used" "$WORK/sc.allowed" | tr '\n' ' ')
    [ -z "$denied" ] || fail "serve calls what the unit's SystemCallFilter denies: $denied"
    echo "ok: serve's $(wc -l <"$WORK/sc.used") distinct system calls (start, push, pull, upstream fetch, SIGHUP, SIGTERM) are all in SystemCallFilter=$allow ~$deny"
else
    echo "serve's system calls not checked against the filter: $no_strace"
fi
echo "ok: serve as ExecStart runs it (uid $DUID, no capabilities, no_new_privs, umask 0077, open files 1024 raised to $soft): answers, reloads on SIGHUP, stops with 0"
echo "PASS: test_systemd (exposure $score)"
