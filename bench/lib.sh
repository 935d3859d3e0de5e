# SPDX-License-Identifier: Apache-2.0
# lib.sh - what the benchmarks (bench/run.sh, bench/cache.sh, bench/copy.sh)
# share: re-executing the script in a private network + PID namespace, the
# --help text from the script's header, locating the pullcache binary and the
# results file, checking the tools, the temp dir with its EXIT trap that stops
# every server by PID, and the small helpers (log, sha, fsize, wait_up,
# stop_server, header, the OCI media types), generating an image from layer
# sizes and publishing the report.
#
# Sourced by each script right after `set -euo pipefail` (the line that ends
# the header bench_help prints) and BENCH_DIR (this directory); sets umask
# 022, LC_ALL=C and REPO. The script sets BENCH_NAME (the log prefix) and the
# associative array PORT (server name -> port) before starting servers. Not a
# script of its own.

umask 022
export LC_ALL=C
REPO=$(cd "$BENCH_DIR/.." && pwd)

# bench_reexec [--mount] ARGS...: unless BENCH_NETNS=0 or already inside,
# re-execute the calling script ($0 ARGS) in a private network (with --mount
# also mount) and PID namespace with only loopback up, pass INT/TERM on to it
# and exit with its status. Returns when no namespace can be made.
bench_reexec() {
    local ns=(--net)
    if [ "${1:-}" = --mount ]; then
        ns+=(--mount)
        shift
    fi
    if [ -z "${PC_BENCH_IN_NETNS:-}" ] && [ "${BENCH_NETNS:-1}" = 1 ]; then
        if unshare "${ns[@]}" --mount-proc --fork --pid true 2>/dev/null; then
            export PC_BENCH_IN_NETNS=1
            # unshare ignores SIGINT/SIGTERM while it waits, so pass them on to the
            # script inside (its only child), whose trap stops the servers.
            unshare "${ns[@]}" --mount-proc --fork --pid --kill-child=TERM \
                bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@" &
            bench_upid=$!
            trap 'kill -TERM $(cat "/proc/$bench_upid/task/$bench_upid/children" 2>/dev/null) 2>/dev/null || true' INT TERM
            while :; do
                rc=0
                wait "$bench_upid" || rc=$?
                kill -0 "$bench_upid" 2>/dev/null || exit "$rc" # else wait was cut short by a signal
            done
        fi
        echo "bench: cannot create a network namespace; using the host's loopback" >&2
    fi
}

# bench_help: print the script's header comment (line 2 up to `set -euo`).
bench_help() { sed -n '2,/^set -euo/p' "$0" | grep -v '^# SPDX-License-Identifier' | sed '$d; s/^# \{0,1\}//'; }

# bench_quick_args ARGS...: the arguments of a script whose only option is
# --quick: sets QUICK (0 or 1); --help prints the header and exits; anything
# else is a usage error (exit 2).
bench_quick_args() {
    QUICK=0
    while [ $# -gt 0 ]; do
        case $1 in
        --quick) QUICK=1 ;;
        -h | --help) bench_help; exit 0 ;;
        *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
        esac
        shift
    done
}

# bench_pullcache BUILD_DIR: PULLCACHE defaults to <repo>/BUILD_DIR/pullcache,
# else <repo>/build/pullcache; made absolute.
bench_pullcache() {
    if [ -z "${PULLCACHE:-}" ]; then
        PULLCACHE=$REPO/$1/pullcache
        [ -x "$PULLCACHE" ] || PULLCACHE=$REPO/build/pullcache
    fi
    case $PULLCACHE in /*) ;; *) PULLCACHE=$PWD/$PULLCACHE ;; esac
}

# bench_out PREFIX [SUFFIX]: BENCH_OUT defaults to
# bench/results/PREFIX<RUN_DATE>[-quick]SUFFIX.md (QUICK=1: -quick); made
# absolute unless "-".
bench_out() {
    if [ -z "${BENCH_OUT:-}" ]; then
        BENCH_OUT=$BENCH_DIR/results/${1:-}$RUN_DATE
        [ "$QUICK" = 0 ] || BENCH_OUT=$BENCH_OUT-quick
        BENCH_OUT=$BENCH_OUT${2:-}.md
    fi
    case $BENCH_OUT in /* | -) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac
}

# bench_need TOOL...: exit 2 unless every TOOL is installed; then drop the
# proxy variables (everything runs on loopback).
bench_need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 2; }
    done
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
}

log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%T)" "$*" >&2; }

# bench_workdir NAME [SUBDIR...]: WORK=/tmp/NAME.XXXXXX with logs/ and the
# SUBDIRs, made the current directory (nothing the script or its children
# write lands in the repo by accident); PID (server name -> PID) emptied; the
# EXIT trap (cleanup) and INT/TERM -> exit 130 set.
bench_workdir() {
    local d
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    shift
    mkdir -p "$WORK/logs"
    for d in "$@"; do mkdir -p "$WORK/$d"; done
    cd "$WORK"
    declare -gA PID=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# stop_server NAME: SIGTERM its PID, wait up to 10 s, then SIGKILL.
stop_server() {
    local pid=${PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    PID[$1]=""
}

# cleanup: the EXIT trap. Runs bench_cleanup_hook first when the script
# defines one, stops every server, shows the tail of each log in
# $WORK/logs on failure (headed "bench: failed (rc=N); $BENCH_LOGS_WHAT:",
# default "server logs"), removes WORK unless BENCH_KEEP=1, and exits with
# the script's status.
cleanup() {
    local rc=$? s
    trap - EXIT
    if declare -F bench_cleanup_hook >/dev/null; then bench_cleanup_hook; fi
    for s in "${!PID[@]}"; do stop_server "$s"; done
    if [ "$rc" -ne 0 ]; then
        echo "bench: failed (rc=$rc); ${BENCH_LOGS_WHAT:-server logs}:" >&2
        for f in "$WORK"/logs/*.log; do
            [ -s "$f" ] || continue
            echo "--- $f (last 20 lines)" >&2
            tail -n 20 "$f" >&2
        done
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}

# wait_up NAME: until http://127.0.0.1:PORT[NAME]/v2/ answers (15 s at the
# most); 1 when the server died or never answered.
wait_up() {
    local s=$1
    for _ in $(seq 150); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${PORT[$s]}/v2/" && return 0
        kill -0 "${PID[$s]}" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# bench_gen_image: an image in $IMG from the layer sizes in $LAYERS (MiB,
# random bytes): layer1..N (LAYER_FILES), config (diff_ids of the layers),
# manifest (OCI image manifest).
bench_gen_image() {
    local i mib f diff_ids layers_json
    i=0
    LAYER_FILES=()
    for mib in $LAYERS; do
        i=$((i + 1))
        head -c $((mib * 1048576)) /dev/urandom >"$IMG/layer$i"
        LAYER_FILES+=("$IMG/layer$i")
    done
    diff_ids=$(for f in "${LAYER_FILES[@]}"; do echo "sha256:$(sha "$f")"; done | jq -R . | jq -cs .)
    jq -jcn --argjson d "$diff_ids" '{architecture: "amd64", os: "linux", created: "2024-01-01T00:00:00Z",
        config: {Cmd: ["/bin/true"]}, rootfs: {type: "layers", diff_ids: $d}}' >"$IMG/config"
    layers_json=$(for f in "${LAYER_FILES[@]}"; do
        jq -cn --arg mt "$MT_LAYER" --arg d "sha256:$(sha "$f")" --argjson s "$(fsize "$f")" \
            '{mediaType: $mt, digest: $d, size: $s}'
    done | jq -cs .)
    jq -jcn --arg mt "$MT_MANIFEST" --arg mtc "$MT_CONFIG" --arg c "sha256:$(sha "$IMG/config")" \
        --argjson cs "$(fsize "$IMG/config")" --argjson l "$layers_json" \
        '{schemaVersion: 2, mediaType: $mt, config: {mediaType: $mtc, digest: $c, size: $cs}, layers: $l}' \
        >"$IMG/manifest"
}

# bench_dist_config FILE DATA_DIR PORT: a docker-registry (distribution 2.8)
# configuration in FILE: filesystem storage in DATA_DIR (made), the in-memory
# blob descriptor cache, no access log, no upload purging, 127.0.0.1:PORT.
bench_dist_config() {
    mkdir -p "$2"
    cat >"$1" <<YML
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $2}
  cache: {blobdescriptor: inmemory}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: 127.0.0.1:$3
  secret: pullcache-bench
YML
}

# bench_publish: the script's report() into $WORK/report.md, on stdout, and
# copied to BENCH_OUT unless that is "-".
bench_publish() {
    report >"$WORK/report.md"
    cat "$WORK/report.md"
    if [ "$BENCH_OUT" != - ]; then
        mkdir -p "$(dirname "$BENCH_OUT")"
        cp "$WORK/report.md" "$BENCH_OUT"
        log "results written to $BENCH_OUT"
    fi
}

# header FILE NAME: value of header NAME in a curl -D dump.
header() {
    tr -d '\r' <"$1" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$2")" '
        { i = index($0, ":") }
        i > 0 && tolower(substr($0, 1, i - 1)) == n { v = substr($0, i + 1); sub(/^[ \t]*/, "", v) }
        END { print v }'
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
fsize() { stat -c %s "$1"; }

MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_CONFIG=application/vnd.oci.image.config.v1+json
MT_LAYER=application/vnd.oci.image.layer.v1.tar
