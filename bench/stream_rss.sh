#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# stream_rss.sh - memory while many clients stream big blobs: pullcache vs
# distribution 2.8 (Debian's docker-registry), side by side in one run.
#
#   bash bench/stream_rss.sh [--quick]
#
# One blob of random bytes (256 MiB; --quick 64 MiB) is pushed into each
# server (POST + monolithic PUT ?digest=). Then N clients (100; --quick 20)
# GET it at once with curl, each piping the body through sha256sum and
# comparing it with the digest. While they run, the server's VmRSS
# (/proc/PID/status) is sampled every 0.2 s. Phases:
#   stored     the blob is in the server's own storage (a private push)
#   cold       pullcache only: the blob is NOT cached yet; pullcache serves it
#              through its mirror of the distribution server (serve
#              --upstream up=...), the N clients join the one upstream fetch
#              and read the growing file, then the fetch is published
# Reported per server and phase: RSS before, peak RSS during, RSS after,
# wall time, aggregate MB/s, clients that got verified bytes. The issue's goal
# is a peak of at most 64 MiB for pullcache. Nothing is asserted: exit status
# 0 when the run completed. Output: a markdown table on stdout and in
# bench/results/stream-rss-<date>[-quick].md; progress on stderr.
#
# Environment: PULLCACHE (binary; default build/pullcache), BENCH_OUT (report
# path or -), BENCH_PORT_BASE (default 5600), BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/lib.sh"
bench_quick_args "$@"
bench_reexec "$@"

BENCH_NAME=stream-rss
RUN_DATE=$(date +%Y-%m-%d)
bench_pullcache build
bench_out stream-rss-
bench_need curl jq docker-registry sha256sum
BASE=${BENCH_PORT_BASE:-5600}
declare -A PORT=([pullcache]=$BASE [distribution]=$((BASE + 1)) [cache]=$((BASE + 2)))
if [ "$QUICK" = 1 ]; then MIB=64 CLIENTS=20; else MIB=256 CLIENTS=100; fi
bench_workdir pc-bench-rss blob dist-data pc-data cache-data out

log "generating a $MIB MiB blob"
head -c $((MIB * 1048576)) /dev/urandom >"$WORK/blob/data"
DIGEST=sha256:$(sha "$WORK/blob/data")

bench_dist_config "$WORK/dist.yml" "$WORK/dist-data" "${PORT[distribution]}"

start() {
    local s=$1 lf=$WORK/logs/$1.log
    case $s in
    distribution) docker-registry serve "$WORK/dist.yml" >>"$lf" 2>&1 & ;;
    pullcache) "$PULLCACHE" serve --listen "127.0.0.1:${PORT[pullcache]}" --data "$WORK/pc-data" >>"$lf" 2>&1 & ;;
    cache)
        # a mirror of the distribution server: the option is the point of the phase
        "$PULLCACHE" serve --listen "127.0.0.1:${PORT[cache]}" --data "$WORK/cache-data" \
            --upstream "up=http://127.0.0.1:${PORT[distribution]}" >>"$lf" 2>&1 &
        ;;
    esac
    PID[$s]=$!
    wait_up "$s" || { log "$s did not start"; exit 1; }
}

push() {
    local s=$1 base="http://127.0.0.1:${PORT[$1]}" loc
    loc=$(curl -sS -X POST -D - -o /dev/null "$base/v2/bench/rss/blobs/uploads/" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
    case $loc in http*) ;; *) loc=$base$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=$DIGEST" ;; *) loc="$loc?digest=$DIGEST" ;; esac
    [ "$(curl -sS -X PUT -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
        --data-binary "@$WORK/blob/data" "$loc")" = 201 ] || { log "$s: push failed"; exit 1; }
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# run SERVER LABEL URL: N clients at once; adds a row to the report.
run() {
    local pid=${PID[$1]} s=$2 url=$3 t0 t1 peak before sampler ok=0
    before=$(rss_kib "$pid")
    rm -f "$WORK/out/"*
    (while :; do rss_kib "$pid" >>"$WORK/out/rss"; sleep 0.2; done) &
    sampler=$!
    t0=$(date +%s.%N)
    local pids=()
    for i in $(seq "$CLIENTS"); do
        (curl -sS --max-time 600 "$url" | sha256sum | cut -d' ' -f1 >"$WORK/out/c$i") &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    t1=$(date +%s.%N)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    for i in $(seq "$CLIENTS"); do [ "$(cat "$WORK/out/c$i" 2>/dev/null)" = "${DIGEST#sha256:}" ] && ok=$((ok + 1)); done
    peak=$(sort -n "$WORK/out/rss" | tail -1)
    ROWS+=("$(awk -v s="$s" -v b="$before" -v p="$peak" -v a="$(rss_kib "$pid")" -v t0="$t0" -v t1="$t1" \
        -v n="$CLIENTS" -v mib="$MIB" -v ok="$ok" 'BEGIN {
            t = t1 - t0; printf "| %s | %.1f | **%.1f** | %.1f | %.2f | %.0f | %d/%d |", s, b / 1024, p / 1024, a / 1024, t, n * mib * 1.048576 / t, ok, n }')")
    log "$s: peak RSS $((peak / 1024)) MiB, $ok/$CLIENTS verified"
}

ROWS=()
start distribution
push distribution
start pullcache
push pullcache
run pullcache "pullcache, stored" "http://127.0.0.1:${PORT[pullcache]}/v2/bench/rss/blobs/$DIGEST"
run distribution "distribution, stored" "http://127.0.0.1:${PORT[distribution]}/v2/bench/rss/blobs/$DIGEST"
stop_server pullcache
start cache
run cache "pullcache, cold (mirror of distribution)" "http://127.0.0.1:${PORT[cache]}/v2/up/bench/rss/blobs/$DIGEST"

report() {
    echo "# Memory while $CLIENTS clients stream a $MIB MiB blob ($RUN_DATE$([ "$QUICK" = 1 ] && echo ", quick"))"
    echo
    echo "Server RSS in MiB (VmRSS sampled every 0.2 s); goal for pullcache: peak <= 64 MiB."
    echo
    echo "| server, phase | RSS before | peak RSS | RSS after | seconds | MB/s (all clients) | verified |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "- pullcache $("$PULLCACHE" --version | awk '{print $2}'), docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}'), $(nproc) cores, loopback."
    echo "- cold: the blob is not cached; one upstream fetch from the distribution server, every client reads it as it arrives."
}
bench_publish
