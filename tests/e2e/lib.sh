# SPDX-License-Identifier: Apache-2.0
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
#   pc2_start ADDR DIR                # a second pullcache (defaults) at ADDR, $PC2_PID
#   dist_start DIR                    # start Debian's docker-registry on $DIST_PORT
#   dist_stop / dist_kill             # stop it gracefully / with SIGKILL
#   fail "message"                    # print and exit 1
#   pc_persistent                     # true unless serve's storage is in memory
#   pc_on_disk                        # true when its blobs and meta.db are in the data dir
#   pc_needs_disk "why"               # skip the rest of the test (exit 77) unless pc_on_disk
#   pc_needs_persistent "why"         # skip the rest (exit 77) unless pc_persistent
#   pc_new_store                      # s3pg: a new bucket + database for the next pc_start
#   pc_blob_present DATA DIGEST       # 0 stored, 1 not, 2 cannot tell (in memory)
#   s3pg_needed                       # this test needs S3 + PostgreSQL (or exit 77)
#   s3req METHOD PATH [curl args]     # a signed request to the s3pg radosgw
#   expect_eq WANT GOT "what"
#
# Registry under test (REGISTRY=pullcache, the default, REGISTRY=distribution
# to check a test itself against docker-registry, or REGISTRY=fleet: three
# serve replicas on one S3 bucket + PostgreSQL database behind nginx):
#   reg_start DIR / reg_stop / reg_kill   # start/stop/crash it; $REG is host:port
#   $REG_LOG                          # its log file (fleet: nginx's access log)
# A fleet (docs/SCALE-OUT.md; needs S3 + PostgreSQL and nginx, else exit 77):
#   fleet_needed                      # nginx and S3 + PostgreSQL there (else exit 77)
#   fleet_start N DIR [serve args...] # N replicas (data dirs DIR/replica-PORT) and nginx
#                                     # with deploy/nginx/pullcache.conf on $PC_PORT;
#                                     # $FLEET_PORTS, $FLEET_PID[PORT], $FLEET_NGINX_PID
#   fleet_stop / fleet_kill           # stop every replica and nginx (SIGTERM / SIGKILL)
#   fleet_requests PORT               # registry requests replica PORT has logged
# Clients, isolated from the host's configuration and storage:
#   clients_init                      # policy.json, registries.conf, HOME, TMPDIR... in $WORK
#   sk ARGS                           # skopeo with that policy and registries.d
#   pod ARGS                          # podman with storage (vfs) and state in $WORK
#   mkimages DIR SEED [BIG_MIB]       # tests/tools/mkimage.sh: 4 tagged test images
#   img_src DIR TAG / img_digest DIR TAG  # skopeo source ref / manifest digest of one
#   push_image DIR TAG REPO:TAG       # skopeo copy --all into $REG
#   reg_digest REPO REF               # Docker-Content-Digest of a manifest HEAD
#   reg_get_manifest REPO REF FILE    # GET a manifest into FILE, print its sha256
#   reg_status METHOD PATH            # HTTP status code of a request to $REG
#   reg_upload_url REPO / reg_push_blob REPO FILE  # raw blob upload with curl
# Docker Hub stand-in, for code that names docker.io itself (see below):
#   hub_standin_start DIR             # docker-registry as registry-1.docker.io:443 (TLS)
#   hub_push DIR TAG REPO:TAG         # copy a test image into it; $HUB_LOG its access log

set -euo pipefail
shopt -s inherit_errexit

PC_SRC=${PC_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PULLCACHE=${PULLCACHE:-$PC_SRC/build/pullcache}

if [ -z "${PC_IN_NETNS:-}" ]; then
    export PC_IN_NETNS=1 PC_SRC PULLCACHE
    # --kill-child: if unshare is killed (ctest timeout), the test gets SIGTERM
    # and its EXIT trap stops what it started; its PID namespace dies with it.
    exec unshare --net --mount-proc --fork --pid --kill-child=TERM bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi

PC_PORT=${PC_PORT:-5000}
DIST_PORT=${DIST_PORT:-5001}
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/pc-e2e.${TEST_NAME}.XXXXXX")
PC_PID=""
DIST_PID=""
PIDS=()
REGISTRY=${REGISTRY:-pullcache}
case $REGISTRY in
pullcache) REG=127.0.0.1:$PC_PORT REG_LOG=$WORK/pullcache.log ;;
distribution) REG=127.0.0.1:$DIST_PORT REG_LOG=$WORK/dist.log ;;
fleet) REG=127.0.0.1:$PC_PORT REG_LOG=$WORK/nginx-access.log ;;
*) echo "REGISTRY must be pullcache, distribution or fleet, not '$REGISTRY'" >&2; rmdir "$WORK"; exit 2 ;;
esac

# The storage of every serve pc_start and pc2_start run: PULLCACHE_TEST_STORAGE=mem
# adds --ephemeral (blobs and metadata in memory: `make test-mem`); s3pg (`make
# test-s3pg`, tests/tools/s3pg.sh run) gives pc_start's serve an S3 bucket and a
# PostgreSQL database of this test's own on the run's shared radosgw and
# PostgreSQL (PULLCACHE_TEST_S3PG: their directory), kept across restarts within
# the test and removed at its end (pc2_start's serve, an upstream, keeps the
# defaults); unset or "disk", the defaults (fs blobs + meta.db in the data
# directory). Serves a test starts itself, with "$PULLCACHE" serve, keep the defaults.
PC_STORAGE=${PULLCACHE_TEST_STORAGE:-disk}
case $PC_STORAGE in
disk | s3pg) PC_STORAGE_ARGS=() ;;
mem) PC_STORAGE_ARGS=(--ephemeral) ;;
*) echo "PULLCACHE_TEST_STORAGE must be mem, s3pg or disk (or unset), not '$PC_STORAGE'" >&2; rmdir "$WORK"; exit 2 ;;
esac

# Sanitizer builds (make asan, make tsan): every report of a program this test
# runs (serve, client verbs) goes to $WORK/sanitizer.<pid>, and a report fails
# the test at exit, whatever its own checks said.
for _v in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS; do
    export "$_v=${!_v:+${!_v}:}log_path=$WORK/sanitizer"
done

_pc_cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    [ "$PC_STORAGE" != s3pg ] || _s3pg_cleanup
    if compgen -G "$WORK/sanitizer.*" >/dev/null; then
        echo "--- $TEST_NAME: sanitizer reports:" >&2
        head -n 60 "$WORK"/sanitizer.* >&2
        [ "$rc" -ne 0 ] || rc=1
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then # 77: skipped (pc_needs_disk)
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

# pc_persistent: whether the registry under test keeps its data across a
# restart (not so under PULLCACHE_TEST_STORAGE=mem; so under s3pg, in the
# test's bucket and database).
pc_persistent() {
    [ "$REGISTRY" != pullcache ] || [ "$PC_STORAGE" != mem ]
}
# (a fleet keeps everything in its bucket and database: persistent, not on disk)

# pc_on_disk: whether the registry under test keeps its blobs and metadata in
# its data directory, for gc, fsck or a look at the files (not so under
# PULLCACHE_TEST_STORAGE=mem or s3pg).
pc_on_disk() {
    case $REGISTRY in
    distribution) return 0 ;;
    fleet) return 1 ;;
    esac
    [ "$PC_STORAGE" = disk ]
}

# pc_needs_disk WHY: unless the registry's data is in its data directory
# (pc_on_disk), end the test here as skipped (exit 77, ctest's
# SKIP_RETURN_CODE): what follows needs WHY. Parts before it have run and passed.
pc_needs_disk() {
    pc_on_disk && return 0
    if [ "$REGISTRY" = fleet ]; then
        echo "SKIP: $TEST_NAME: the rest needs $* (REGISTRY=fleet: the replicas keep no blobs or meta.db on disk)"
    else
        echo "SKIP: $TEST_NAME: the rest needs $* (PULLCACHE_TEST_STORAGE=$PC_STORAGE keeps no blobs or meta.db on disk)"
    fi
    exit 77
}

# pc_needs_persistent WHY: like pc_needs_disk, but what follows only needs the
# data to survive a restart (skipped under mem only).
pc_needs_persistent() {
    pc_persistent && return 0
    echo "SKIP: $TEST_NAME: the rest needs $* (PULLCACHE_TEST_STORAGE=mem keeps nothing across a restart)"
    exit 77
}

# wait_http URL [PID]: wait until URL answers (any HTTP status) or 10 s pass;
# give up at once if process PID has exited.
wait_http() {
    for _ in $(seq 100); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
            fail "process $2 exited before $1 answered"
        fi
        sleep 0.1
    done
    fail "no answer from $1"
}

# ---- PULLCACHE_TEST_STORAGE=s3pg ----------------------------------------------
# The run's radosgw and PostgreSQL (tests/tools/s3pg.sh) are reached through
# the file system: a relay (tests/tools/sockfwd.py) listens on
# 127.0.0.1:$S3PG_PORT in this namespace; PostgreSQL by its socket directory.
# This test's bucket and database: $S3PG_BUCKET, $S3PG_DB.
S3PG_PORT=7480
S3PG_FWD_PID=""
S3PG_BUCKET=""
S3PG_DB=""
S3PG_CONNINFO=""
S3PG_OWN=""
S3PG_CONFIGS=0

# s3req METHOD PATH [curl args...]: a SigV4-signed request to the run's radosgw
# (HEAD as curl --head: with -X HEAD curl would wait for the body).
s3req() {
    local m=(-X "$1") path=$2
    [ "$1" != HEAD ] || m=(--head)
    shift 2
    curl -sS --max-time 60 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "${m[@]}" "$@" "http://127.0.0.1:$S3PG_PORT$path"
}

# s3pg_psql SQL: run SQL on the run's PostgreSQL (database postgres).
s3pg_psql() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$S3PG_PG_HOST" -p "$S3PG_PG_PORT" -U postgres -d postgres -c "$1" >/dev/null
}

_s3pg_init() {
    [ -n "${PULLCACHE_TEST_S3PG:-}" ] && [ -f "$PULLCACHE_TEST_S3PG/env" ] ||
        fail "PULLCACHE_TEST_STORAGE=s3pg needs PULLCACHE_TEST_S3PG, the directory of a running tests/tools/s3pg.sh (make test-s3pg)"
    # shellcheck disable=SC1091
    . "$PULLCACHE_TEST_S3PG/env"
    python3 "$PC_SRC/tests/tools/sockfwd.py" "tcp:127.0.0.1:$S3PG_PORT" "unix:$S3PG_S3_SOCK" \
        >>"$WORK/sockfwd.log" 2>&1 &
    S3PG_FWD_PID=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$S3PG_PORT/" && break
        sleep 0.05
    done
    (
        umask 077
        printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
            "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/s3pg.credentials"
    )
    pc_new_store
}

# pc_new_store: from now on pc_start's serve starts on an empty store: under
# s3pg a new bucket and database ($S3PG_BUCKET, $S3PG_DB; the earlier ones
# are removed at exit too); elsewhere nothing to do (a test gives serve
# another data directory).
S3PG_BUCKETS=()
S3PG_DBS=()
pc_new_store() {
    [ "$PC_STORAGE" = s3pg ] || return 0
    local id code
    id=$(printf '%s' "${TEST_NAME#test_}" | tr -c 'a-z0-9' '-' | cut -c1-40)-$(openssl rand -hex 4)
    S3PG_BUCKET=pc-$id
    code=$(s3req PUT "/$S3PG_BUCKET" -o "$WORK/s3pg-bucket.out" -w '%{http_code}') || true
    [ "$code" = 200 ] || fail "s3pg: creating bucket $S3PG_BUCKET answered '$code' ($(cat "$WORK/s3pg-bucket.out" 2>/dev/null))"
    S3PG_BUCKETS+=("$S3PG_BUCKET")
    S3PG_DB=pc_${id//-/_}
    s3pg_psql "CREATE DATABASE $S3PG_DB" || fail "s3pg: CREATE DATABASE $S3PG_DB"
    S3PG_DBS+=("$S3PG_DB")
    S3PG_CONNINFO=$WORK/s3pg-${#S3PG_DBS[@]}.conninfo
    (
        umask 077
        printf 'host=%s port=%s dbname=%s user=postgres\n' "$S3PG_PG_HOST" "$S3PG_PG_PORT" "$S3PG_DB" >"$S3PG_CONNINFO"
    )
}

# _s3pg_cleanup: remove the test's buckets (their objects and multipart
# uploads first) and databases, then stop the relay (at exit, after the servers).
_s3pg_cleanup() {
    local b keys k u urls
    for b in "${S3PG_BUCKETS[@]}"; do
        for _ in $(seq 100); do
            keys=$(s3req GET "/$b?list-type=2&max-keys=1000" 2>/dev/null |
                grep -o '<Key>[^<]*</Key>' | sed -e 's/^<Key>//' -e 's/<\/Key>$//') || true
            [ -n "$keys" ] || break
            urls=()
            while read -r k; do urls+=("http://127.0.0.1:$S3PG_PORT/$b/$k"); done <<<"$keys"
            curl -sS -o /dev/null --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
                -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X DELETE "${urls[@]}" || true
        done
        s3req GET "/$b?uploads" 2>/dev/null | tr '<' '\n' |
            awk -F'>' '$1 == "Key" { k = $2 } $1 == "UploadId" { print k " " $2 }' |
            while read -r k u; do s3req DELETE "/$b/$k?uploadId=$u" -o /dev/null || true; done
        s3req DELETE "/$b" -o /dev/null || true
    done
    for b in "${S3PG_DBS[@]}"; do
        s3pg_psql "DROP DATABASE IF EXISTS $b WITH (FORCE)" || true
    done
    if [ -n "$S3PG_FWD_PID" ]; then
        kill -TERM "$S3PG_FWD_PID" 2>/dev/null || true
        wait "$S3PG_FWD_PID" 2>/dev/null || true
    fi
    if [ -n "$S3PG_OWN" ]; then
        bash "$PC_SRC/tests/tools/s3pg.sh" stop "$S3PG_OWN" >>"$WORK/s3pg.log" 2>&1 || true
    fi
}

# s3pg_needed: this test needs S3 + PostgreSQL (every serve it starts with
# pc_start or pc_storage_args uses them). Under PULLCACHE_TEST_STORAGE=s3pg the
# run's; otherwise a radosgw and a PostgreSQL of the test's own (s3pg.sh start
# in $WORK/s3pg, ~4 s; stopped at exit), or skip (exit 77) without them.
s3pg_needed() {
    [ "$PC_STORAGE" != s3pg ] || return 0
    if ! command -v radosgw >/dev/null || ! bash "$PC_SRC/tests/tools/pg.sh" bindir >/dev/null; then
        echo "SKIP: $TEST_NAME: needs radosgw and PostgreSQL (scripts/deps.sh --test)"
        exit 77
    fi
    S3PG_OWN=$WORK/s3pg
    PC_STORAGE=s3pg
    # as root PostgreSQL runs as postgres (pg.sh), which must reach its directory
    chmod o+x "$WORK"
    bash "$PC_SRC/tests/tools/s3pg.sh" start "$S3PG_OWN" >>"$WORK/s3pg.log" 2>&1 ||
        fail "tests/tools/s3pg.sh start (see s3pg.log)"
    PULLCACHE_TEST_S3PG=$S3PG_OWN
    _s3pg_init
}

# pc_storage_args [serve args...]: print serve's arguments, one a line, with the
# storage of PULLCACHE_TEST_STORAGE: --ephemeral added under mem; under s3pg
# the --config file (or none) replaced by a copy on the test's bucket and
# database (tests/tools/s3pg_config.py).
pc_storage_args() {
    local cfg="" out=()
    if [ "$PC_STORAGE" != s3pg ]; then
        [ $# -eq 0 ] && [ ${#PC_STORAGE_ARGS[@]} -eq 0 ] && return 0
        printf '%s\n' "${PC_STORAGE_ARGS[@]}" "$@"
        return 0
    fi
    while [ $# -gt 0 ]; do
        case $1 in
        --config) cfg=$2; shift 2 ;;
        --config=*) cfg=${1#--config=}; shift ;;
        *) out+=("$1"); shift ;;
        esac
    done
    S3PG_CONFIGS=$((S3PG_CONFIGS + 1))
    local file=$WORK/s3pg-$S3PG_CONFIGS.yml
    python3 "$PC_SRC/tests/tools/s3pg_config.py" "$cfg" "$file" "http://127.0.0.1:$S3PG_PORT" \
        "$S3PG_BUCKET" "$S3_REGION" "$WORK/s3pg.credentials" "$S3PG_CONNINFO" ||
        fail "s3pg: cannot put the storage into ${cfg:-a configuration}"
    printf '%s\n' --config "$file" "${out[@]}"
}

[ "$PC_STORAGE" != s3pg ] || _s3pg_init

# pc_start DATA_DIR [extra serve args...]: start pullcache on 127.0.0.1:$PC_PORT
# with the defaults a user gets (only where to listen and store, and the
# storage of PULLCACHE_TEST_STORAGE: pc_storage_args); a test about an option
# passes it and says why.
pc_start() {
    local data=$1 args=()
    shift
    pc_storage_args "$@" >"$WORK/serve.args"
    mapfile -t args <"$WORK/serve.args"
    "$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$data" "${args[@]}" \
        >>"$WORK/pullcache.log" 2>&1 &
    PC_PID=$!
    PIDS+=("$PC_PID")
    wait_http "http://127.0.0.1:$PC_PORT/v2/" "$PC_PID"
}

# pc2_start ADDR DIR: a second pullcache with its defaults at ADDR (an upstream
# for the one under test); its log is $WORK/hub.log, its PID $PC2_PID (stopped
# with the test's other servers).
pc2_start() {
    "$PULLCACHE" serve --listen "$1" --data "$2" "${PC_STORAGE_ARGS[@]}" >>"$WORK/hub.log" 2>&1 &
    PC2_PID=$!
    PIDS+=("$PC2_PID")
    wait_http "http://$1/v2/" "$PC2_PID"
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
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$DIST_PORT
  secret: pullcache-e2e
YML
    # docker-registry reads REGISTRY_* variables as configuration overrides
    # (REGISTRY_AUTH_FILE, which clients_init sets for skopeo, would be auth.file).
    # shellcheck disable=SC2046
    env $(compgen -e | awk '/^REGISTRY_/ { print "-u", $0 }') \
        docker-registry serve "$WORK/dist.yml" >>"$WORK/dist.log" 2>&1 &
    DIST_PID=$!
    PIDS+=("$DIST_PID")
    wait_http "http://127.0.0.1:$DIST_PORT/v2/" "$DIST_PID"
}

# dist_stop: stop the docker-registry started by dist_start (graceful, then forced).
dist_stop() {
    [ -n "$DIST_PID" ] || return 0
    kill -TERM "$DIST_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DIST_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DIST_PID" 2>/dev/null || true
    wait "$DIST_PID" 2>/dev/null || true
    DIST_PID=""
}

# dist_kill: kill -9 the docker-registry started by dist_start.
dist_kill() {
    [ -n "$DIST_PID" ] || return 0
    kill -KILL "$DIST_PID" 2>/dev/null || true
    wait "$DIST_PID" 2>/dev/null || true
    DIST_PID=""
}

# ---- the registry under test ($REGISTRY) ------------------------------------

# reg_start DATA_DIR [pullcache serve args...]: start the registry under test
# on $REG, storing in DATA_DIR (fleet: three replicas, fleet_start 3).
reg_start() {
    case $REGISTRY in
    pullcache) pc_start "$@" ;;
    distribution) dist_start "$1" ;;
    fleet) fleet_start 3 "$@" ;;
    esac
}

# reg_stop: stop the registry under test gracefully (fleet: every replica and nginx).
reg_stop() {
    case $REGISTRY in
    pullcache) pc_stop ;;
    distribution) dist_stop ;;
    fleet) fleet_stop ;;
    esac
}

# reg_kill: SIGKILL the registry under test (crash simulation; fleet: the
# whole deployment at once, replicas and nginx).
reg_kill() {
    case $REGISTRY in
    pullcache) pc_kill ;;
    distribution) dist_kill ;;
    fleet) fleet_kill ;;
    esac
}

# reg_pid: PID of the running registry under test (empty if none; fleet:
# nginx's, the process clients talk to).
reg_pid() {
    case $REGISTRY in
    pullcache) echo "$PC_PID" ;;
    distribution) echo "$DIST_PID" ;;
    fleet) echo "$FLEET_NGINX_PID" ;;
    esac
}

# ---- a fleet: N replicas on one bucket and database behind nginx -------------
# fleet_start N DIR [serve args...]: N serve replicas, each on 127.0.0.1:PORT
# (PORT from FLEET_PORT_BASE+1, default 5011) with --advertise its own URL,
# --data DIR/replica-PORT and the test's S3 bucket and PostgreSQL database
# (pc_storage_args: the serve args, a --config included, are the same for
# all), logging to $WORK/replica-PORT.log; then nginx on 127.0.0.1:$PC_PORT
# with deploy/nginx/pullcache.conf as docs/SCALE-OUT.md renders it (its files
# under $WORK/nginx, error log $WORK/nginx.log, access log
# $WORK/nginx-access.log). Needs S3 + PostgreSQL (s3pg_needed: the run's, or
# its own) and nginx, else the test is skipped (exit 77). Sets FLEET_PORTS
# (the replicas' ports), FLEET_PID[PORT] and FLEET_NGINX_PID; every process is
# in PIDS too, so it is stopped when the test exits, whichever way.
FLEET_PORT_BASE=${FLEET_PORT_BASE:-5010}
FLEET_PORTS=()
FLEET_NGINX_PID=""
declare -A FLEET_PID=()

# fleet_needed: this test starts a fleet: skip (exit 77) without nginx, then
# s3pg_needed (before anything else is started, so a skip costs nothing).
fleet_needed() {
    command -v nginx >/dev/null || { echo "SKIP: $TEST_NAME: a fleet needs nginx (nginx-light)"; exit 77; }
    s3pg_needed
}

fleet_start() {
    local n=$1 dir=$2 p i args ng=$WORK/nginx servers=""
    shift 2
    fleet_needed
    FLEET_PORTS=()
    for i in $(seq "$n"); do FLEET_PORTS+=($((FLEET_PORT_BASE + i))); done
    for p in "${FLEET_PORTS[@]}"; do
        mkdir -p "$dir"
        pc_storage_args "$@" --advertise "http://127.0.0.1:$p" >"$WORK/replica-$p.args"
        mapfile -t args <"$WORK/replica-$p.args"
        "$PULLCACHE" serve --listen "127.0.0.1:$p" --data "$dir/replica-$p" "${args[@]}" \
            >>"$WORK/replica-$p.log" 2>&1 &
        FLEET_PID[$p]=$!
        PIDS+=("$!")
    done
    for p in "${FLEET_PORTS[@]}"; do wait_http "http://127.0.0.1:$p/v2/" "${FLEET_PID[$p]}"; done
    mkdir -p "$ng/tmp"
    for p in "${FLEET_PORTS[@]}"; do
        servers+="    server 127.0.0.1:$p max_fails=1 fail_timeout=10s;"$'\n'
    done
    FLEET_SERVERS=${servers%$'\n'} awk -v listen="127.0.0.1:$PC_PORT" '
        /^ *@SERVERS@ *$/ { print ENVIRON["FLEET_SERVERS"]; next }
        { gsub(/@LISTEN@/, listen); print }' "$PC_SRC/deploy/nginx/pullcache.conf" >"$ng/pullcache.conf"
    ! grep -v '^ *#' "$ng/pullcache.conf" | grep -q '@' ||
        fail "a placeholder of deploy/nginx/pullcache.conf is left"
    cat >"$ng/nginx.conf" <<CONF
# the test's nginx: its files under $ng, the site deploy/nginx/pullcache.conf
worker_processes 2;
pid $ng/nginx.pid;
error_log $WORK/nginx.log info;
$([ "$(id -u)" = 0 ] && echo "user root root;")
events { worker_connections 1024; }
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    include $ng/pullcache.conf;
}
CONF
    nginx -t -q -p "$ng" -e "$WORK/nginx.log" -c "$ng/nginx.conf" 2>>"$WORK/nginx.log" ||
        fail "nginx -t refuses the configuration (see nginx.log)"
    nginx -p "$ng" -e "$WORK/nginx.log" -c "$ng/nginx.conf" -g 'daemon off;' >>"$WORK/nginx.log" 2>&1 &
    FLEET_NGINX_PID=$!
    PIDS+=("$FLEET_NGINX_PID")
    wait_http "http://127.0.0.1:$PC_PORT/v2/" "$FLEET_NGINX_PID"
}

# _fleet_end SIGNAL: send SIGNAL to nginx and every replica, wait for them
# (SIGKILL after 10 s), forget them.
_fleet_end() {
    local p pid pids=()
    [ -z "$FLEET_NGINX_PID" ] || pids+=("$FLEET_NGINX_PID")
    for p in "${FLEET_PORTS[@]}"; do [ -z "${FLEET_PID[$p]:-}" ] || pids+=("${FLEET_PID[$p]}"); done
    for pid in "${pids[@]}"; do kill "-$1" "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    FLEET_NGINX_PID=""
    FLEET_PID=()
}

# fleet_requests PORT: how many registry requests replica PORT logged (its
# access-log lines for a path under /v2/, the bare /v2/ of wait_http not counted).
fleet_requests() {
    awk '$3 ~ /^[A-Z]+$/ && $4 ~ /^\/v2\/./ { n++ } END { print n + 0 }' "$WORK/replica-$1.log"
}

fleet_stop() { _fleet_end TERM; }
fleet_kill() { _fleet_end KILL; }

# ---- clients ------------------------------------------------------------------

# clients_init: configuration for skopeo/podman/curl that lives in $WORK only:
# no host registries.conf, policy, auth file, containers.conf, storage or
# proxies; both test registries insecure (plain HTTP); no unqualified-name
# search, so nothing can resolve to docker.io.
clients_init() {
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
    # skopeo run as root keeps a blob-location cache in /var/lib/containers/cache
    # (no flag or variable moves it); it would carry "registry X has blob Y"
    # from one test run to the next. Hide it behind a tmpfs that exists only
    # in this test's private mount namespace.
    mkdir -p /var/lib/containers
    mount -t tmpfs -o size=16m,mode=0700 pc-e2e /var/lib/containers ||
        fail "cannot mount a tmpfs on /var/lib/containers"
    mkdir -p "$WORK/home/.config" "$WORK/tmp" "$WORK/run" "$WORK/registries.d" \
        "$WORK/podtmp" "$WORK/podnet"
    chmod 700 "$WORK/run"
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
    echo '{"auths":{}}' >"$WORK/auth.json"
    cat >"$WORK/registries.conf" <<CONF
unqualified-search-registries = []
short-name-mode = "disabled"
[[registry]]
location = "127.0.0.1:$PC_PORT"
insecure = true
[[registry]]
location = "127.0.0.1:$DIST_PORT"
insecure = true
CONF
    cat >"$WORK/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$WORK/podroot"
runroot = "$WORK/podrun"
CONF
    cat >"$WORK/containers.conf" <<CONF
[engine]
events_logger = "none"
cgroup_manager = "cgroupfs"
tmp_dir = "$WORK/podtmp"
image_copy_tmp_dir = "$WORK/tmp"
[network]
network_backend = "cni"
network_config_dir = "$WORK/podnet"
CONF
    # skopeo and podman run without --policy / --registries.d (a README line
    # as written) take these per-user files before /etc/containers'.
    mkdir -p "$WORK/home/.config/containers/registries.d"
    cp "$WORK/policy.json" "$WORK/home/.config/containers/policy.json"
    export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_RUNTIME_DIR=$WORK/run \
        TMPDIR=$WORK/tmp REGISTRY_AUTH_FILE=$WORK/auth.json \
        CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf \
        CONTAINERS_STORAGE_CONF=$WORK/storage.conf CONTAINERS_CONF=$WORK/containers.conf
}

# ctd_start: start a containerd of the test's own (config, root, state, temp
# and socket $CTD_SOCK under $WORK/ctd; no CRI, no /opt plugin, only the
# native snapshotter, no background GC) and wait until it answers. Stopped by
# PID on exit like the registries.
CTD_PID=""
CTD_SOCK=""
ctd_start() {
    local d=$WORK/ctd
    mkdir -p "$d/root" "$d/state" "$d/tmp"
    CTD_SOCK=$d/containerd.sock
    cat >"$d/config.toml" <<CONF
version = 2
root = "$d/root"
state = "$d/state"
temp = "$d/tmp"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.zfs",
]
# No background garbage collection: a test's views and removed content stay
# put until the test itself removes them (ctr snapshots view takes no lease).
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 0
  mutation_threshold = 1000000000
  startup_delay = "24h"
[grpc]
  address = "$CTD_SOCK"
[ttrpc]
  address = "$CTD_SOCK.ttrpc"
[debug]
  address = "$d/debug.sock"
  level = "info"
CONF
    TMPDIR=$d/tmp containerd --config "$d/config.toml" >>"$WORK/containerd.log" 2>&1 &
    CTD_PID=$!
    PIDS+=("$CTD_PID")
    for _ in $(seq 100); do
        if ctr --address "$CTD_SOCK" version >/dev/null 2>&1; then
            # Namespace e2e, whose default snapshotter is native (works on any
            # filesystem; `ctr images mount` ignores --snapshotter in 1.6).
            ctr --address "$CTD_SOCK" namespaces create e2e \
                containerd.io/defaults/snapshotter=native ||
                fail "ctr namespaces create e2e"
            return 0
        fi
        kill -0 "$CTD_PID" 2>/dev/null || fail "containerd exited at start (see containerd.log)"
        sleep 0.1
    done
    fail "containerd does not answer on $CTD_SOCK"
}

# c ARGS...: ctr talking to the test's containerd, namespace e2e.
c() {
    CONTAINERD_SNAPSHOTTER=native ctr --address "$CTD_SOCK" --namespace e2e "$@"
}

# sk ARGS...: skopeo with the test's policy and an empty registries.d.
sk() {
    skopeo --policy "$WORK/policy.json" --registries.d "$WORK/registries.d" "$@"
}

# pod ARGS...: podman with its storage (vfs) and state under $WORK.
pod() {
    podman --root "$WORK/podroot" --runroot "$WORK/podrun" --storage-driver vfs \
        --tmpdir "$WORK/podtmp" --events-backend none --cgroup-manager cgroupfs "$@"
}

# mkimages DIR SEED [BIG_MIB]: build the four test images (tests/tools/mkimage.sh):
# tags oci-single, oci-index, docker-single, docker-list.
mkimages() {
    bash "$PC_SRC/tests/tools/mkimage.sh" ${3:+-b "$3"} "$1" "$2" >/dev/null ||
        fail "mkimage.sh $1 $2"
}

# img_src DIR TAG: skopeo source reference of a test image. The Docker-typed
# images come from the dir: copy (skopeo 1.9's oci: transport cannot see them).
img_src() {
    case $2 in
    docker-*) echo "dir:$1/dir/$2" ;;
    *) echo "oci:$1:$2" ;;
    esac
}

# img_digest DIR TAG / img_mediatype DIR TAG: of the top manifest of a test image.
img_digest() { jq -er --arg t "$2" '.[$t].digest' "$1/images.json"; }
img_mediatype() { jq -er --arg t "$2" '.[$t].mediaType' "$1/images.json"; }

# push_image DIR TAG REPO[:TAG]: copy a test image (all platforms, byte-exact)
# into the registry under test; the client's output goes to $WORK/clients.log.
push_image() {
    local src
    src=$(img_src "$1" "$2")
    echo "+ skopeo copy --all $src docker://$REG/$3" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests --dest-tls-verify=false \
        "$src" "docker://$REG/$3" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all $src docker://$REG/$3 (see clients.log)"
}

MANIFEST_ACCEPT="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

# sha FILE: "sha256:<hex>", the digest of FILE.
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# reg_header FILE NAME: value of header NAME in a curl -D dump (last occurrence).
reg_header() {
    tr -d '\r' <"$1" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$2")" '
        { i = index($0, ":") }
        i > 0 && tolower(substr($0, 1, i - 1)) == n { v = substr($0, i + 1); sub(/^[ \t]*/, "", v) }
        END { print v }'
}

# reg_digest REPO REF: the Docker-Content-Digest header of HEAD /v2/REPO/manifests/REF
# (fails the test unless the answer is 200).
reg_digest() {
    local h=$WORK/head.headers code
    code=$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" -D "$h" -o /dev/null -w '%{http_code}' \
        "http://$REG/v2/$1/manifests/$2") || fail "HEAD /v2/$1/manifests/$2: no answer"
    expect_eq 200 "$code" "HEAD /v2/$1/manifests/$2 status"
    reg_header "$h" Docker-Content-Digest
}

# reg_get_manifest REPO REF FILE: GET the manifest into FILE (headers in
# FILE.headers); print "sha256:<hex of the body>".
reg_get_manifest() {
    local code
    code=$(curl -sS -H "Accept: $MANIFEST_ACCEPT" -D "$3.headers" -o "$3" -w '%{http_code}' \
        "http://$REG/v2/$1/manifests/$2") || fail "GET /v2/$1/manifests/$2: no answer"
    expect_eq 200 "$code" "GET /v2/$1/manifests/$2 status"
    sha "$3"
}

# reg_status METHOD PATH [curl args...]: print the HTTP status of one request.
reg_status() {
    local m=$1 p=$2
    shift 2
    if [ "$m" = HEAD ]; then
        curl -s -o /dev/null -w '%{http_code}' -I "$@" "http://$REG$p" || true
    else
        curl -s -o /dev/null -w '%{http_code}' -X "$m" "$@" "http://$REG$p" || true
    fi
}

# url_with_param URL PARAM=VALUE: append a query parameter.
url_with_param() {
    case $1 in
    *\?*) echo "$1&$2" ;;
    *) echo "$1?$2" ;;
    esac
}

# reg_upload_url REPO: start an upload session (POST); print its absolute URL.
reg_upload_url() {
    local h=$WORK/upload.headers code loc
    code=$(curl -sS -X POST -D "$h" -o /dev/null -w '%{http_code}' \
        "http://$REG/v2/$1/blobs/uploads/") || fail "POST /v2/$1/blobs/uploads/: no answer"
    expect_eq 202 "$code" "POST /v2/$1/blobs/uploads/ status"
    loc=$(reg_header "$h" Location)
    case $loc in
    http://* | https://*) echo "$loc" ;;
    /*) echo "http://$REG$loc" ;;
    *) fail "POST /v2/$1/blobs/uploads/: bad Location '$loc'" ;;
    esac
}

# reg_push_blob REPO FILE: monolithic upload (POST, then PUT ?digest= with the
# whole body); print the digest.
reg_push_blob() {
    local dig url code
    dig=sha256:$(sha256sum "$2" | cut -d' ' -f1)
    url=$(reg_upload_url "$1")
    code=$(curl -sS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
        -o /dev/null -w '%{http_code}' "$(url_with_param "$url" "digest=$dig")") ||
        fail "PUT blob $dig into $1: no answer"
    expect_eq 201 "$code" "PUT (monolithic upload of $dig into $1) status"
    echo "$dig"
}

# ---- fake upstream registry (tests/tools/fakeupstream.py) ---------------------
# A fault-injecting upstream driven by tests/tools/scenarios/*.json (format in
# tests/tools/README.md). Several may run at once, one per PORT.
#   fake_start SCENARIO PORT [TOKEN_PORT] [REDIRECT_PORT] [fakeupstream args...]
#       SCENARIO: a name in tests/tools/scenarios or a file; TOKEN_PORT and
#       REDIRECT_PORT: "" or "-" for none. Content comes from the extra args,
#       e.g. --repo library/test=DIR (a mkimages DIR). Sets FAKE_PID. Request
#       log (JSON lines): $WORK/fake-PORT.requests.log; output: $WORK/fake-PORT.log.
#   fake_stop [PORT] / fake_kill [PORT]   SIGTERM (exit status in FAKE_EXIT) / SIGKILL
#   fake_scenario PORT SCENARIO          switch scenario at runtime (counters, budgets, tokens reset)
#   fake_reset_log PORT                  empty the request log
#   fake_settle PORT                     wait until no request is in flight at the fake
#   fake_count PORT METHOD KIND [JQ_COND]  settle, then count logged requests
#                                        (KIND: base manifest blob tags token other; "" = any)
#   fake_reqlog PORT                     path of the request log
#   fake_ratelimit PORT REMAINING        set the ratelimit budget of the default source
FAKEUPSTREAM=${FAKEUPSTREAM:-$PC_SRC/tests/tools/fakeupstream.py}
FAKE_PID=""
FAKE_EXIT=""
FAKE_LAST_PORT=""
declare -A FAKE_PIDS=()

fake_start() {
    local scen=$1 port=$2 tport=${3:-} rport=${4:-} pid
    shift $(($# < 4 ? $# : 4))
    local args=(--port "$port" --scenario "$scen" --log "$WORK/fake-$port.requests.log"
        --ready-file "$WORK/fake-$port.ready")
    if [ -n "$tport" ] && [ "$tport" != - ]; then args+=(--token-port "$tport"); fi
    if [ -n "$rport" ] && [ "$rport" != - ]; then args+=(--redirect-port "$rport"); fi
    rm -f "$WORK/fake-$port.ready"
    /usr/bin/python3 "$FAKEUPSTREAM" "${args[@]}" "$@" >>"$WORK/fake-$port.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    FAKE_PIDS[$port]=$pid
    FAKE_PID=$pid
    FAKE_LAST_PORT=$port
    for _ in $(seq 100); do
        [ -f "$WORK/fake-$port.ready" ] && return 0
        kill -0 "$pid" 2>/dev/null || fail "fakeupstream ($scen on port $port) exited at start (see fake-$port.log)"
        sleep 0.1
    done
    fail "fakeupstream on port $port not ready after 10 s"
}

fake_stop() {
    local port=${1:-$FAKE_LAST_PORT} pid
    pid=${FAKE_PIDS[$port]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    FAKE_EXIT=0
    wait "$pid" 2>/dev/null || FAKE_EXIT=$?
    FAKE_PIDS[$port]=""
}

fake_kill() {
    local port=${1:-$FAKE_LAST_PORT} pid
    pid=${FAKE_PIDS[$port]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    FAKE_PIDS[$port]=""
}

fake_scenario() {
    local out
    if [ -f "$2" ]; then
        out=$(curl -sS -f -X POST --data-binary "@$2" "http://127.0.0.1:$1/_fake/scenario") ||
            fail "fake_scenario $1 $2: $out"
    else
        out=$(curl -sS -f -X POST "http://127.0.0.1:$1/_fake/scenario?name=$2") ||
            fail "fake_scenario $1 $2: $out"
    fi
}

fake_reset_log() {
    curl -sS -f -o /dev/null -X POST "http://127.0.0.1:$1/_fake/reset-log" || fail "fake_reset_log $1"
}

fake_settle() {
    local n
    for _ in $(seq 100); do
        n=$(curl -sS -f "http://127.0.0.1:$1/_fake/stats" | jq -r .in_flight) || fail "fake_settle $1"
        [ "$n" = 0 ] && return 0
        sleep 0.1
    done
    fail "fakeupstream on $1: $n request(s) still in flight after 10 s"
}

fake_reqlog() { echo "$WORK/fake-$1.requests.log"; }

fake_count() {
    fake_settle "$1"
    jq -s --arg m "$2" --arg k "$3" \
        "[.[] | select((\$m == \"\" or .method == \$m) and (\$k == \"\" or .kind == \$k)) | select(${4:-true})] | length" \
        "$WORK/fake-$1.requests.log"
}

fake_ratelimit() {
    curl -sS -f -o /dev/null -X POST --data "{\"remaining\": $2}" "http://127.0.0.1:$1/_fake/ratelimit" ||
        fail "fake_ratelimit $1 $2"
}

# ---- pull-through cache --------------------------------------------------------
#   dist_push DIR TAG REPO[:TAG]        copy a test image (all platforms, byte-exact)
#                                       into the docker-registry of dist_start
#   pc_metric NAME [LABEL="V"...]       sum of NAME's series at pullcache's /metrics
#                                       whose labels include every given pair (0: none)
#   pc_blob_file DATA DIGEST            where the filesystem blob store keeps DIGEST
#   http_get URL OUT [curl args...]     GET into OUT (headers in OUT.h); prints
#                                       "STATUS CURL_RC BYTES" (curl errors in curl.log)
#   err_code FILE                       first registry error code in a JSON body
dist_push() {
    local src
    src=$(img_src "$1" "$2")
    echo "+ skopeo copy --all $src docker://127.0.0.1:$DIST_PORT/$3" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests --dest-tls-verify=false \
        "$src" "docker://127.0.0.1:$DIST_PORT/$3" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all $src docker://127.0.0.1:$DIST_PORT/$3 (see clients.log)"
}

pc_metric() {
    local name=$1
    shift
    curl -sS -f "http://127.0.0.1:$PC_PORT/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
    awk -v n="$name" -v want="$(printf '%s\n' "$@")" '
        BEGIN { k = split(want, w, "\n") }
        /^#/ || NF < 2 { next }
        {
            s = $1; i = index(s, "{"); base = i ? substr(s, 1, i - 1) : s
            if (base != n) next
            for (j = 1; j <= k; j++) if (w[j] != "" && index(s, w[j]) == 0) next
            sum += $2
        }
        END { printf "%d\n", sum }' "$WORK/metrics.txt"
}

pc_blob_file() {
    local h=${2#sha256:}
    echo "$1/blobs/sha256/${h:0:2}/$h"
}

# pc_blob_present DATA DIGEST: whether the blob store of the pullcache on DATA
# holds the blob: 0 yes, 1 no, 2 cannot tell (in-memory storage). On disk its
# file (non-empty); under s3pg its object blobs/<alg>/<hex> in the test's bucket.
pc_blob_present() {
    case $PC_STORAGE in
    mem) return 2 ;;
    s3pg)
        local code
        code=$(s3req HEAD "/$S3PG_BUCKET/blobs/sha256/${2#sha256:}" -o /dev/null -w '%{http_code}') || true
        case $code in
        200) return 0 ;;
        404) return 1 ;;
        *) fail "HEAD of blob $2 in bucket $S3PG_BUCKET answered '$code'" ;;
        esac
        ;;
    *) [ -s "$(pc_blob_file "$1" "$2")" ] ;;
    esac
}

http_get() {
    local url=$1 out=$2 rc=0 w code n
    shift 2
    w=$(curl -sS -o "$out" -D "$out.h" -w '%{http_code} %{size_download}' "$@" "$url" 2>>"$WORK/curl.log") || rc=$?
    read -r code n <<<"$w"
    echo "${code:-000} $rc ${n:-0}"
}

err_code() { jq -r '.errors[0].code // empty' "$1" 2>/dev/null || true; }

# ---- Docker Hub stand-in --------------------------------------------------------
# hub_standin_start DATA_DIR: Debian's docker-registry playing Docker Hub for
# code that names docker.io itself (serve's built-in docker.io upstream,
# `pullcache copy docker.io/...`, sync files), with no flag pointing it
# elsewhere. Only inside this test's namespaces (lib.sh's unshare: a private
# mount namespace, only loopback), it bind-mounts
#   - over /etc/hosts: the host's lines plus $HUB_NAMES -> 127.0.0.1;
#   - over /etc/ssl/certs/ca-certificates.crt (the default CA bundle of
#     libcurl and Go on Debian: pullcache, curl, skopeo, podman): a bundle
#     holding only a throwaway test CA ($HUB_CA, made here with openssl);
# and serves TLS on 127.0.0.1:443 with a certificate for $HUB_NAMES signed by
# that CA. The mounts end with the namespace. Sets HUB_PID and HUB_LOG (the
# registry's output, with one access-log line per request:
# "... \"GET /v2/library/nginx/manifests/1.27 HTTP/1.1\" 200 ..."). After it,
# the test is online as far as docker.io is concerned.
# hub_push DIR TAG REPO:TAG: copy a test image (all platforms, byte-exact)
# into the stand-in as docker.io/REPO:TAG, TLS verified.
HUB_NAMES="registry-1.docker.io index.docker.io docker.io auth.docker.io"
HUB_PID=""
HUB_CA=""
HUB_LOG=$WORK/hub.log

hub_standin_start() {
    local data=$1 d=$WORK/hub f prop san="" n
    [ "${PC_IN_NETNS:-}" = 1 ] || fail "hub_standin_start: not inside lib.sh's namespaces"
    [ "$(ip -o link show | wc -l)" = 1 ] ||
        fail "hub_standin_start: more than loopback in this network namespace: $(ip -o link show | cut -d: -f2 | tr -d '\n')"
    for f in /etc/hosts /etc/ssl/certs/ca-certificates.crt; do
        [ -f "$f" ] || fail "hub_standin_start: no $f to mount over"
        # A shared mount would carry the bind mount out of this namespace.
        prop=$(findmnt -n -o PROPAGATION -T "$f") || fail "hub_standin_start: findmnt $f"
        case $prop in
        *shared*) fail "hub_standin_start: the mount holding $f propagates ($prop)" ;;
        esac
    done
    mkdir -p "$d" "$data"
    for n in $HUB_NAMES; do san+=${san:+,}DNS:$n; done
    printf '%s\n' basicConstraints=CA:FALSE extendedKeyUsage=serverAuth "subjectAltName=$san" >"$d/hub.ext"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=pullcache e2e Docker Hub stand-in CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>>"$WORK/openssl.log" &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$d/hub.key" -out "$d/hub.csr" -subj "/CN=registry-1.docker.io" 2>>"$WORK/openssl.log" &&
        openssl x509 -req -in "$d/hub.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial 0x4d1 \
            -days 2 -extfile "$d/hub.ext" -out "$d/hub.crt" 2>>"$WORK/openssl.log" ||
        fail "hub_standin_start: openssl (see openssl.log)"
    HUB_CA=$d/ca.crt
    { cat /etc/hosts; echo "127.0.0.1 $HUB_NAMES"; } >"$d/hosts"
    cp "$HUB_CA" "$d/ca-certificates.crt"
    mount --bind "$d/hosts" /etc/hosts || fail "hub_standin_start: bind mount over /etc/hosts"
    mount --bind "$d/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt ||
        fail "hub_standin_start: bind mount over /etc/ssl/certs/ca-certificates.crt"
    cat >"$d/config.yml" <<YML
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:443
  secret: pullcache-e2e-hub
  tls:
    certificate: $d/hub.crt
    key: $d/hub.key
YML
    # shellcheck disable=SC2046  # as in dist_start: no REGISTRY_* overrides
    env $(compgen -e | awk '/^REGISTRY_/ { print "-u", $0 }') \
        docker-registry serve "$d/config.yml" >>"$HUB_LOG" 2>&1 &
    HUB_PID=$!
    PIDS+=("$HUB_PID")
    for n in $(seq 100); do
        curl -sk -o /dev/null https://registry-1.docker.io/v2/ && break
        kill -0 "$HUB_PID" 2>/dev/null || fail "hub_standin_start: docker-registry exited (see hub.log)"
        [ "$n" -lt 100 ] || fail "hub_standin_start: no answer on https://registry-1.docker.io/v2/"
        sleep 0.1
    done
    # by name, verified with the default CA bundle (no --cacert)
    curl -sS -f -o /dev/null https://registry-1.docker.io/v2/ 2>>"$WORK/curl.log" ||
        fail "hub_standin_start: https://registry-1.docker.io/v2/ not trusted (see curl.log)"
}

hub_push() {
    local src
    src=$(img_src "$1" "$2")
    echo "+ skopeo copy --all $src docker://docker.io/$3" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests "$src" "docker://docker.io/$3" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all $src docker://docker.io/$3 (see clients.log)"
}
