#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_logs.sh - the log for operators (issue 15, item 6):
#   1. --log-file FILE: event and request lines go to FILE, not stderr;
#   2. SIGUSR1 opens it again under its name after it was moved: lines written
#      before the signal are in the moved file, later ones in the new file, and
#      none of 300 requests answered during the rotation is lost or split;
#   3. logrotate(8) with deploy/logrotate/pullcache (its paths and postrotate
#      pointed at this test's serve) rotates it, and serve goes on logging;
#   4. log.access: errors writes only request lines of 400 and above; off
#      none; log.access_sample: 10 writes one in ten below 400 (exactly 10 of
#      100 consecutive requests) and every error;
#   5. on a journald stream (JOURNAL_STREAM naming stderr), text lines carry a
#      "<N>" priority and no timestamp; an inherited JOURNAL_STREAM naming
#      another stream changes nothing;
#   6. bad settings are refused with a message: log.access, a log file that
#      cannot be opened.
. "$(dirname "$0")/lib.sh"

PCR=127.0.0.1:$PC_PORT
LOG=$WORK/logs/pc.log
mkdir -p "$WORK/logs"

get() { curl -sS -o /dev/null -w '%{http_code}' "http://$PCR$1"; }
# lines NEEDLE FILE: how many request lines for path NEEDLE FILE has
lines() { grep -c -- " GET $1 " "$2" 2>/dev/null || true; }
# settled WANT CMD...: CMD's output once it is WANT (a request line is written
# when the request completes, which may be just after the client got its
# answer), or what it is after 10 s
settled() {
    local want=$1 got
    shift
    for _ in $(seq 200); do
        got=$("$@")
        [ "$got" = "$want" ] && break
        sleep 0.05
    done
    echo "$got"
}

# ---- 1. --log-file (the option under test) ----
pc_start "$WORK/data" --log-file "$LOG"
get /v2/ >/dev/null
get /healthz?t=one >/dev/null
grep -q "serving on $PCR" "$LOG" || fail "the start line is not in the log file"
[ "$(settled 1 lines '/healthz?t=one' "$LOG")" = 1 ] || fail "the request line is not in the log file: $(cat "$LOG")"
! grep -q "GET /healthz?t=one" "$WORK/pullcache.log" || fail "a request line went to stderr too"

# ---- 2. move + SIGUSR1 ----
mv "$LOG" "$LOG.1"
get /healthz?t=before >/dev/null
expect_eq 1 "$(settled 1 lines '/healthz?t=before' "$LOG.1")" "the line before SIGUSR1, in the moved file"
kill -USR1 "$PC_PID"
for _ in $(seq 100); do [ -s "$LOG" ] && grep -q "SIGUSR1: reopened the log file" "$LOG" && break; sleep 0.1; done
grep -q "SIGUSR1: reopened the log file $LOG" "$LOG" || fail "no new log file after SIGUSR1"
get /healthz?t=after >/dev/null
expect_eq "1 0" "$(lines '/healthz?t=before' "$LOG.1") $(lines '/healthz?t=before' "$LOG")" "a line written before SIGUSR1"
expect_eq 1 "$(settled 1 lines '/healthz?t=after' "$LOG")" "a line written after SIGUSR1"
expect_eq "0 1" "$(lines '/healthz?t=after' "$LOG.1") $(lines '/healthz?t=after' "$LOG")" "a line written after SIGUSR1"

# 300 requests from 3 clients while the file is moved and reopened 5 times
for c in 1 2 3; do
    (for i in $(seq 100); do get "/healthz?t=burst-$c-$i" >/dev/null; done) &
    BURST[$c]=$!
done
for r in 1 2 3 4 5; do
    sleep 0.2
    mv "$LOG" "$LOG.b$r"
    kill -USR1 "$PC_PID"
    # the next move once serve has made the new file (a loaded machine may take a while)
    for _ in $(seq 200); do [ -e "$LOG" ] && break; sleep 0.05; done
    [ -e "$LOG" ] || fail "no new log file 10 s after SIGUSR1 $r"
done
for c in 1 2 3; do wait "${BURST[$c]}"; done
burst_lines() { cat "$LOG" "$LOG".b* | grep -c " GET /healthz?t=burst-" || true; }
all=$(settled 300 burst_lines)
expect_eq 300 "$all" "request lines of the burst across the rotated files"
# every line whole: timestamp, client, method, path, status, bytes, duration
bad=$(cat "$LOG" "$LOG".b* | grep " GET /healthz?t=burst-" |
    grep -Evc '^[0-9T:.-]+Z 127\.0\.0\.1 GET /healthz\?t=burst-[0-9]+-[0-9]+ 200 [0-9]+ [0-9.]+ms$' || true)
expect_eq 0 "$bad" "split or garbled request lines"

# ---- 3. logrotate with the shipped config ----
if command -v logrotate >/dev/null; then
    ROT=$WORK/logrotate.conf
    sed -e "s#/var/log/pullcache/pullcache.log#$LOG#" \
        -e "s#systemctl kill --kill-whom=main --signal=USR1 pullcache.service#kill -USR1 $PC_PID#" \
        "$PC_SRC/deploy/logrotate/pullcache" >"$ROT"
    grep -q "kill -USR1 $PC_PID" "$ROT" || fail "deploy/logrotate/pullcache has no postrotate to point at this serve"
    get /healthz?t=prerotate >/dev/null
    expect_eq 1 "$(settled 1 lines '/healthz?t=prerotate' "$LOG")" "the line before logrotate"
    logrotate -f -s "$WORK/logrotate.state" "$ROT" >"$WORK/logrotate.out" 2>&1 || fail "logrotate: $(cat "$WORK/logrotate.out")"
    [ -f "$LOG.1" ] || fail "logrotate made no $LOG.1"
    for _ in $(seq 100); do grep -qs "SIGUSR1: reopened" "$LOG" && break; sleep 0.1; done
    get /healthz?t=postrotate >/dev/null
    expect_eq 1 "$(settled 1 lines '/healthz?t=postrotate' "$LOG")" "serve logs to the new file after logrotate"
    expect_eq 1 "$(lines '/healthz?t=prerotate' "$LOG.1")" "the line before logrotate is in the rotated file"
else
    echo "skip: logrotate not installed"
fi
pc_stop

# ---- 4. log.access and log.access_sample (the settings under test) ----
cat >"$WORK/errors.yml" <<YML
log:
  access: errors
YML
pc_start "$WORK/data" --config "$WORK/errors.yml"
get /healthz?t=ok >/dev/null
expect_eq 404 "$(get /v2/nosuch/manifests/latest)" "a manifest that is not there"
expect_eq 1 "$(settled 1 lines /v2/nosuch/manifests/latest "$WORK/pullcache.log")" "access: errors logs the 404"
expect_eq 0 "$(lines '/healthz?t=ok' "$WORK/pullcache.log")" "access: errors logs a 200"
pc_stop

cat >"$WORK/off.yml" <<YML
log:
  access: "off"
YML
: >"$WORK/pullcache.log"
pc_start "$WORK/data" --config "$WORK/off.yml"
get /v2/nosuch/manifests/off >/dev/null
expect_eq 0 "$(grep -c ' GET /' "$WORK/pullcache.log" || true)" "access: off logs request lines"
grep -q "serving on" "$WORK/pullcache.log" || fail "access: off dropped the event lines too"
pc_stop

cat >"$WORK/sample.yml" <<YML
log:
  access_sample: 10
YML
: >"$WORK/pullcache.log"
pc_start "$WORK/data" --config "$WORK/sample.yml"
for i in $(seq 100); do get "/healthz?t=s$i" >/dev/null; done
sampled() { grep -c ' GET /healthz?t=s[0-9]* 200 ' "$WORK/pullcache.log" || true; }
expect_eq 10 "$(settled 10 sampled)" "access_sample: 10 of 100 requests"
for i in 1 2 3; do get "/v2/nosuch/manifests/s$i" >/dev/null; done
errs() { grep -c ' GET /v2/nosuch/manifests/s[0-9] 404 ' "$WORK/pullcache.log" || true; }
expect_eq 3 "$(settled 3 errs)" "access_sample leaves out errors"
pc_stop

# ---- 5. journald stream (the environment systemd gives a service) ----
J=$WORK/journal.log
: >"$J"
pc_storage_args >"$WORK/j.args"
mapfile -t jargs <"$WORK/j.args"
JOURNAL_STREAM=$(stat -c '%d:%i' "$J") \
    "$PULLCACHE" serve --listen "$PCR" --data "$WORK/data" "${jargs[@]}" 2>>"$J" >/dev/null &
JPID=$!
PIDS+=("$JPID")
wait_http "http://$PCR/v2/" "$JPID"
get /healthz?t=journal >/dev/null
jline() { grep -cx "<6>127\.0\.0\.1 GET /healthz?t=journal 200 [0-9]* [0-9.]*ms" "$J" || true; }
expect_eq 1 "$(settled 1 jline)" "journald: the request line"
grep -qx "<6>pullcache .* serving on $PCR .*" "$J" || fail "journald: no <6> start line: $(head -3 "$J")"
grep -qx "<6>127\.0\.0\.1 GET /healthz?t=journal 200 [0-9]* [0-9.]*ms" "$J" || fail "journald: request line: $(grep journal "$J")"
! grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$J" || fail "journald: lines still carry timestamps"
kill -TERM "$JPID"; wait "$JPID" || true
: >"$WORK/pullcache.log"
JOURNAL_STREAM=1:2 pc_start "$WORK/data"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info pullcache .* serving on' "$WORK/pullcache.log" ||
    fail "an inherited JOURNAL_STREAM naming another stream changed the format: $(head -2 "$WORK/pullcache.log")"
pc_stop

# ---- 6. bad settings ----
printf 'log:\n  access: sometimes\n' >"$WORK/bad.yml"
if "$PULLCACHE" serve --check-config --config "$WORK/bad.yml" >"$WORK/bad.out" 2>&1; then fail "log.access: sometimes accepted"; fi
grep -q "log.access must be all, errors or off, not 'sometimes'" "$WORK/bad.out" || fail "log.access message: $(cat "$WORK/bad.out")"
printf 'log:\n  access_sample: 0\n' >"$WORK/zero.yml"
"$PULLCACHE" serve --check-config --config "$WORK/zero.yml" >/dev/null || fail "access_sample: 0 (every line) refused"
rc=0
"$PULLCACHE" serve --listen "$PCR" --data "$WORK/data" --log-file "$WORK/no/such/dir/pc.log" >"$WORK/nofile.out" 2>&1 || rc=$?
expect_eq 1 "$rc" "serve with a log file it cannot open"
grep -q "cannot open log file $WORK/no/such/dir/pc.log: No such file or directory (log.file, --log-file)" "$WORK/nofile.out" ||
    fail "log file message: $(cat "$WORK/nofile.out")"
echo "PASS: $TEST_NAME"
