# lib.sh - shared helpers for the end-to-end tests (sourced, not run).
#
# Every test runs inside its own network namespace (only loopback is up), so
# a client that falls back to docker.io cannot leave the machine and tests
# running in parallel never collide on ports. Servers a test starts are
# recorded and stopped by PID when the test exits, pass or fail.
#
#   . "$(dirname "$0")/lib.sh"        # re-execs the script inside a netns
#   pc_start DIR [args...]            # start pullcache serve on $PC_PORT
#   pc_stop                           # stop it (SIGTERM, then SIGKILL)
#   dist_start DIR                    # start Debian's docker-registry on $DIST_PORT
#   fail "message"                    # print and exit 1
#   expect_eq WANT GOT "what"

set -euo pipefail

PC_SRC=${PC_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PULLCACHE=${PULLCACHE:-$PC_SRC/build/pullcache}

if [ -z "${PC_IN_NETNS:-}" ]; then
    export PC_IN_NETNS=1 PC_SRC PULLCACHE
    exec unshare --net --mount-proc --fork --pid bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi

PC_PORT=${PC_PORT:-5000}
DIST_PORT=${DIST_PORT:-5001}
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/pc-e2e.${TEST_NAME}.XXXXXX")
PC_PID=""
PIDS=()

_pc_cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        echo "--- $TEST_NAME failed (rc=$rc); logs in $WORK:" >&2
        for f in "$WORK"/*.log; do
            [ -f "$f" ] || continue
            echo "--- $f (last 30 lines)" >&2
            tail -n 30 "$f" >&2
        done
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap _pc_cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

expect_eq() {
    [ "$1" = "$2" ] || fail "$3: want '$1', got '$2'"
}

# wait_http URL: wait until URL answers (any HTTP status) or 10 s pass.
wait_http() {
    for _ in $(seq 100); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        sleep 0.1
    done
    fail "no answer from $1"
}

# pc_start DATA_DIR [extra serve args...]: start pullcache on 127.0.0.1:$PC_PORT.
pc_start() {
    local data=$1
    shift
    "$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$data" "$@" \
        >>"$WORK/pullcache.log" 2>&1 &
    PC_PID=$!
    PIDS+=("$PC_PID")
    wait_http "http://127.0.0.1:$PC_PORT/v2/"
}

# pc_stop: stop the pullcache started by pc_start (graceful, then forced).
pc_stop() {
    [ -n "$PC_PID" ] || return 0
    kill -TERM "$PC_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$PC_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PC_PID" 2>/dev/null || true
    wait "$PC_PID" 2>/dev/null || true
    PC_PID=""
}

# pc_kill: kill -9 the pullcache started by pc_start (crash simulation).
pc_kill() {
    [ -n "$PC_PID" ] || return 0
    kill -KILL "$PC_PID" 2>/dev/null || true
    wait "$PC_PID" 2>/dev/null || true
    PC_PID=""
}

# dist_start DATA_DIR: start Debian's docker-registry (distribution 2.8) on $DIST_PORT.
dist_start() {
    local data=$1
    mkdir -p "$data"
    cat >"$WORK/dist.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$DIST_PORT
YML
    docker-registry serve "$WORK/dist.yml" >>"$WORK/dist.log" 2>&1 &
    PIDS+=("$!")
    wait_http "http://127.0.0.1:$DIST_PORT/v2/"
}
