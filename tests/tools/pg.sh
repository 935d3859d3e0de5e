#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pg.sh - a throwaway PostgreSQL 15 server for tests, on 127.0.0.1 only.
#   pg.sh start DIR PORT   initdb DIR/data, start it on PORT; writes DIR/env
#   pg.sh stop DIR         stop the server started in DIR (fast, then by PID)
#   pg.sh bindir           print the binaries' directory, exit 1 when missing
# DIR/env is shell (source it): PC_PG_CONNINFO (host=127.0.0.1 port=PORT
# dbname=postgres user=postgres, trust auth), PC_PG_PID (the postmaster).
# Members of the role pc_pw must log in with a password (scram-sha-256):
# tests of password handling create such roles.
# As root the server runs as the postgres user (initdb refuses root); DIR
# is handed to it. Settings for tests: fsync off, no Unix socket outside
# DIR, client_connection_check_interval 500 ms (a killed client's queries,
# and the advisory locks they wait for or hold, end at once).
set -euo pipefail

bindir() {
    local d
    for d in "${PC_PG_BINDIR:-}" /usr/lib/postgresql/15/bin; do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 port=$2 bin
    bin=$(bindir) || { echo "pg.sh: PostgreSQL binaries not found" >&2; return 77; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_pg "$bin/initdb" -D "$dir/data" --no-sync -A trust -U postgres -E UTF8 --locale=C \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    cat >"$dir/data/pg_hba.conf" <<HBA
host all +pc_pw 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
local all all trust
HBA
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/data/pg_hba.conf"
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -c listen_addresses=127.0.0.1 -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c client_connection_check_interval=500 -c max_connections=200" \
        start >"$dir/pg_ctl.log" 2>&1; then
        cat "$dir/pg_ctl.log" "$dir/server.log" >&2 || true
        return 1
    fi
    local pid
    pid=$(head -1 "$dir/data/postmaster.pid")
    cat >"$dir/env" <<ENV
PC_PG_CONNINFO='host=127.0.0.1 port=$port dbname=postgres user=postgres'
PC_PG_PID=$pid
ENV
}

stop() {
    local dir=$1 bin pid=""
    [ -f "$dir/data/postmaster.pid" ] || return 0
    pid=$(head -1 "$dir/data/postmaster.pid")
    if bin=$(bindir); then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
    fi
    # still there (pg_ctl missing or stuck): that PID, which is ours
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -QUIT "$pid" 2>/dev/null || true
    fi
}

case "${1:-}" in
start) [ $# -eq 3 ] || { echo "usage: pg.sh start DIR PORT" >&2; exit 2; }; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || { echo "usage: pg.sh stop DIR" >&2; exit 2; }; stop "$2" ;;
bindir) bindir ;;
*) echo "usage: pg.sh start DIR PORT | stop DIR | bindir" >&2; exit 2 ;;
esac
