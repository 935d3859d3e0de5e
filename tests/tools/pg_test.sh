#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pg_test.sh - run the PostgreSQL meta store tests (ctest unit.store_meta_pg):
# start a throwaway PostgreSQL (pg.sh) in a temporary directory on a free
# port, run the shared meta store suite with only its postgres backend,
# then each further program given, with PC_TEST_PG_CONNINFO set; stop the
# server and remove the directory on every exit path.
#   pg_test.sh SUITE [PROGRAM...]
# Exit 77 (skipped) only when the PostgreSQL binaries are missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
pg="$here/pg.sh"
[ $# -ge 1 ] || { echo "usage: pg_test.sh SUITE [PROGRAM...]" >&2; exit 2; }
if ! bash "$pg" bindir >/dev/null; then
    echo "SKIP: PostgreSQL server binaries not installed (postgresql-15)"
    exit 77
fi

dir=$(mktemp -d /tmp/pullcache-pg.XXXXXX)
cleanup() {
    bash "$pg" stop "$dir"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

started=0
for _ in 1 2 3 4 5; do # another test may take the port between the look and the start
    rm -rf "$dir/data"
    if bash "$pg" start "$dir" "$(free_port)" 2>"$dir/start.err"; then
        started=1
        break
    fi
done
if [ "$started" -ne 1 ]; then
    echo "pg_test.sh: PostgreSQL did not start:" >&2
    cat "$dir/start.err" >&2
    exit 1
fi
# shellcheck disable=SC1091
. "$dir/env"
export PC_TEST_PG_CONNINFO="$PC_PG_CONNINFO"

rc=0
PC_TEST_META_BACKENDS=postgres "$1" || rc=1
shift
for prog in "$@"; do
    "$prog" || rc=1
done
exit "$rc"
