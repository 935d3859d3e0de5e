#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_listen.sh - listen addresses: "[::]:PORT" serves IPv4 and IPv6 clients
# (dual stack; IPv4 clients are logged as ::ffff:a.b.c.d), "[::1]:PORT" only
# IPv6, "127.0.0.1:PORT" only IPv4; a malformed address is refused at start.
. "$(dirname "$0")/lib.sh"

if [ "${REGISTRY:-pullcache}" = distribution ]; then
    echo "test_listen: pullcache only"
    exit 0
fi

# serve_on LISTEN: start pullcache on LISTEN; sets SRV_PID.
serve_on() {
    "$PULLCACHE" serve --listen "$1" --data "$WORK/data-$RANDOM" \
        >>"$WORK/pullcache.log" 2>&1 &
    SRV_PID=$!
    PIDS+=("$SRV_PID")
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }
stop_srv() {
    kill "$SRV_PID" 2>/dev/null || true
    while kill -0 "$SRV_PID" 2>/dev/null; do sleep 0.05; done
}

serve_on "[::]:$PC_PORT"
wait_http "http://127.0.0.1:$PC_PORT/v2/" "$SRV_PID"
expect_eq "$(code "http://127.0.0.1:$PC_PORT/v2/")" 200 "[::] answers IPv4"
expect_eq "$(code "http://[::1]:$PC_PORT/v2/")" 200 "[::] answers IPv6"
grep -q '::ffff:127.0.0.1 GET /v2/ 200' "$WORK/pullcache.log" || fail "IPv4 client not logged as ::ffff:127.0.0.1"
stop_srv

serve_on "[::1]:$PC_PORT"
wait_http "http://[::1]:$PC_PORT/v2/" "$SRV_PID"
expect_eq "$(code "http://127.0.0.1:$PC_PORT/v2/")" 000 "[::1] does not answer IPv4"
stop_srv

serve_on "127.0.0.1:$PC_PORT"
wait_http "http://127.0.0.1:$PC_PORT/v2/" "$SRV_PID"
expect_eq "$(code "http://[::1]:$PC_PORT/v2/")" 000 "127.0.0.1 does not answer IPv6"
stop_srv

rc=0
"$PULLCACHE" serve --listen "[::1:$PC_PORT" --data "$WORK/bad" \
    >"$WORK/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "malformed listen address accepted"
grep -q "invalid listen address" "$WORK/bad.out" || fail "no clear message: $(cat "$WORK/bad.out")"
echo "test_listen: ok"
