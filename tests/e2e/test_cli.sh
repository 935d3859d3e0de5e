#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cli.sh - the command-line contract: --version, help, --check-config,
# clear errors and exit codes for bad flags and files, JSON request logs.
. "$(dirname "$0")/lib.sh"

out=$("$PULLCACHE" --version)
[[ $out =~ ^pullcache\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version printed '$out'"
"$PULLCACHE" help serve | grep -- "--check-config" >/dev/null || fail "help serve lacks --check-config"
"$PULLCACHE" serve --help | grep -- "--listen ADDR:PORT" >/dev/null || fail "serve --help lacks --listen"
"$PULLCACHE" help | grep -E "^  serve " >/dev/null || fail "help does not list serve"

set +e
"$PULLCACHE" nosuchverb 2>"$WORK/err"; rc=$?
set -e
expect_eq 2 "$rc" "unknown verb exit code"
grep "unknown verb 'nosuchverb'" "$WORK/err" >/dev/null || fail "unknown verb message: $(cat "$WORK/err")"

cat >"$WORK/good.yaml" <<YML
http:
  listen: 127.0.0.1:$PC_PORT
  timeout: 5
storage:
  data: $WORK/data-from-config
log:
  format: json
YML
"$PULLCACHE" serve --check-config --config "$WORK/good.yaml" | grep "configuration is valid" >/dev/null ||
    fail "good config not accepted"
[ ! -e "$WORK/data-from-config" ] || fail "--check-config created the data directory"
# Without --config: the embedded defaults (and flags) are checked.
"$PULLCACHE" serve --check-config | grep -q "the embedded defaults and flags: configuration is valid" ||
    fail "--check-config without --config"
rc=0
"$PULLCACHE" serve --check-config --default-upstream nope >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" -ne 0 ] || fail "--check-config accepted --default-upstream nope"
grep -q "nope" "$WORK/err" || fail "--check-config --default-upstream nope: $(cat "$WORK/err")"

check_bad() { # FILE-CONTENT EXPECTED-MESSAGE-PART
    printf '%s\n' "$1" >"$WORK/bad.yaml"
    set +e
    "$PULLCACHE" serve --check-config --config "$WORK/bad.yaml" 2>"$WORK/err" >/dev/null
    local rc=$?
    set -e
    [ "$rc" -ne 0 ] || fail "bad config accepted: $1"
    grep -F -- "$2" "$WORK/err" >/dev/null || fail "message for '$1' lacks '$2': $(cat "$WORK/err")"
}
check_bad $'http:\n  lisen: 1.2.3.4:5' "bad.yaml"
check_bad $'log:\n  format: xml' "log.format"
check_bad $'storage:\n  blobs: {driver: nosuch}' "storage.blobs.driver 'nosuch' is not a known driver (known: fs, mem, s3)"
check_bad $'storage:\n  meta: {driver: nosuch}' "storage.meta.driver 'nosuch' is not a known driver (known: sqlite, mem, postgres)"
# gc and fsck work on a data directory: in-memory storage leaves nothing there
printf 'storage:\n  data: %s\n  blobs: {driver: mem}\n' "$WORK/mem-data" >"$WORK/mem.yaml"
for verb in gc fsck; do
    rc=0
    "$PULLCACHE" "$verb" --config "$WORK/mem.yaml" >/dev/null 2>"$WORK/err" || rc=$?
    [ "$rc" -ne 0 ] || fail "$verb accepted storage.blobs.driver mem"
    grep -q "storage.blobs.driver mem" "$WORK/err" || fail "$verb on mem storage: $(cat "$WORK/err")"
done
[ ! -e "$WORK/mem-data" ] || fail "gc or fsck on mem storage made a data directory"
check_bad $'http:\n  listen: nope' "invalid listen address"
check_bad $'http: [' "bad.yaml"
set +e
"$PULLCACHE" serve --check-config --config "$WORK/missing.yaml" 2>"$WORK/err"; rc=$?
"$PULLCACHE" serve --timeout abc 2>/dev/null; rc2=$?
"$PULLCACHE" serve --bogus 2>/dev/null; rc3=$?
set -e
[ "$rc" -ne 0 ] && grep "missing.yaml" "$WORK/err" >/dev/null || fail "missing config file not reported"
expect_eq 2 "$rc2" "bad --timeout exit code"
expect_eq 2 "$rc3" "unknown flag exit code"

# Flags override the file; JSON request lines.
"$PULLCACHE" serve --config "$WORK/good.yaml" --data "$WORK/data-flag" >"$WORK/pullcache.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PC_PORT/v2/"
curl -s -o /dev/null "http://127.0.0.1:$PC_PORT/v2/nope/manifests/latest"
[ -f "$WORK/data-flag/meta.db" ] || fail "--data did not override storage.data"
[ ! -e "$WORK/data-from-config" ] || fail "storage.data used despite --data"
line=$(grep '"path":"/v2/nope/manifests/latest"' "$WORK/pullcache.log" | head -1)
[ -n "$line" ] || fail "no JSON request line: $(cat "$WORK/pullcache.log")"
expect_eq 404 "$(jq -r .status <<<"$line")" "logged status"
expect_eq GET "$(jq -r .method <<<"$line")" "logged method"
expect_eq 127.0.0.1 "$(jq -r .client <<<"$line")" "logged client"

# A second daemon on the same port fails with a clear message.
set +e
"$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$WORK/d2" 2>"$WORK/err"; rc=$?
set -e
[ "$rc" -ne 0 ] || fail "second daemon on a used port did not fail"
grep "cannot listen" "$WORK/err" >/dev/null || fail "port-in-use message: $(cat "$WORK/err")"
echo "cli: ok"
