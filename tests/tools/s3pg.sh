#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# s3pg.sh - one radosgw (tests/tools/rgw.sh) and one PostgreSQL (pg.sh) for a
# whole run of e2e tests on PULLCACHE_TEST_STORAGE=s3pg (`make test-s3pg`):
# starting radosgw for each test would cost ~3.5 s, stopping it ~5 s.
#
#   s3pg.sh start DIR         start both under DIR (created; must be empty or absent)
#   s3pg.sh stop DIR          stop what `start DIR` started, by PID
#   s3pg.sh run DIR CMD...    start, run CMD with PULLCACHE_TEST_STORAGE=s3pg and
#                             PULLCACHE_TEST_S3PG=DIR, stop (on every exit path);
#                             exits with CMD's status
#
# The tests run in network namespaces of their own (tests/e2e/lib.sh), where
# the host's 127.0.0.1 is out of reach; both servers are reached through the
# file system instead: PostgreSQL by its Unix socket in DIR/pg, radosgw by
# DIR/s3.sock, relayed to its port by tests/tools/sockfwd.py (lib.sh relays
# 127.0.0.1:7480 in the test's namespace to that socket). Each test creates a
# bucket and a database of its own and removes them when it ends.
#
# DIR/env (shell): S3PG_S3_SOCK, S3PG_PG_HOST (the socket directory), S3PG_PG_PORT,
# S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY (radosgw's test user).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)

die() {
    echo "s3pg.sh: $*" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd_stop() {
    local d=$1 pid
    if [ -f "$d/fwd.pid" ]; then
        pid=$(cat "$d/fwd.pid")
        kill -TERM "$pid" 2>/dev/null || true
        rm -f "$d/fwd.pid"
    fi
    [ -d "$d/rgw" ] && bash "$HERE/rgw.sh" stop "$d/rgw"
    [ -d "$d/pg" ] && bash "$HERE/pg.sh" stop "$d/pg"
    return 0
}

cmd_start() {
    local d=$1
    mkdir -p "$d"
    [ -z "$(ls -A "$d")" ] || die "$d is not empty"
    d=$(cd "$d" && pwd)
    local pgport
    pgport=$(free_port)
    bash "$HERE/rgw.sh" start "$d/rgw" "$(free_port)" || die "radosgw did not start"
    bash "$HERE/pg.sh" start "$d/pg" "$pgport" || die "PostgreSQL did not start"
    # shellcheck disable=SC1091
    . "$d/rgw/env"
    python3 "$HERE/sockfwd.py" "unix:$d/s3.sock" "tcp:${S3_ENDPOINT#http://}" \
        >"$d/fwd.log" 2>&1 &
    echo $! >"$d/fwd.pid"
    for _ in $(seq 100); do
        [ -S "$d/s3.sock" ] && break
        sleep 0.05
    done
    [ -S "$d/s3.sock" ] || die "sockfwd.py did not listen on $d/s3.sock"
    umask 077
    cat >"$d/env" <<EOF
S3PG_S3_SOCK=$d/s3.sock
S3PG_PG_HOST=$d/pg
S3PG_PG_PORT=$pgport
S3_REGION=$S3_REGION
S3_ACCESS_KEY=$S3_ACCESS_KEY
S3_SECRET_KEY=$S3_SECRET_KEY
EOF
}

case "${1:-}" in
start)
    [ $# -eq 2 ] || die "usage: s3pg.sh start DIR"
    dir=$2
    # (the trap may run inside die: the directory by a variable, not $2)
    trap 'rc=$?; [ "$rc" -eq 0 ] || cmd_stop "$dir"' EXIT
    cmd_start "$dir"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: s3pg.sh stop DIR"
    cmd_stop "$2"
    ;;
run)
    [ $# -ge 3 ] || die "usage: s3pg.sh run DIR CMD..."
    dir=$2
    shift 2
    rm -rf "$dir"
    trap 'cmd_stop "$dir"' EXIT
    trap 'exit 130' INT TERM
    cmd_start "$dir"
    rc=0
    PULLCACHE_TEST_STORAGE=s3pg PULLCACHE_TEST_S3PG=$(cd "$dir" && pwd) "$@" || rc=$?
    exit "$rc"
    ;;
*)
    die "usage: s3pg.sh start DIR | stop DIR | run DIR CMD..."
    ;;
esac
