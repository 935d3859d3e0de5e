#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# slowloris.sh - a normal client's manifest GET latency during a slowloris
# flood: pullcache vs distribution 2.8 (Debian's docker-registry), one run.
#
#   bash bench/slowloris.sh [--quick]
#
# Each contender is started fresh with its defaults (pullcache: serve
# --listen --data only; distribution: filesystem storage, access log off)
# and gets a small image pushed with curl (config, one 4 KiB layer, an OCI
# manifest as bench:v1). Then, per contender:
#   1. idle: SLOW_REQS sequential manifest GETs by tag, each on a fresh
#      connection (curl, OCI Accept header): p50 / p99 / max of curl's
#      time_total, failures (no 200 within 5 s, or wrong bytes);
#   2. flood: tests/tools/slowloris.py opens SLOW_CONNS connections from
#      many source addresses (127.1.x.y, SLOW_PER_ADDR each), each sending a
#      request line and then one header byte a second, never finishing;
#      every connection the server closes is replaced at once
#      (--reconnect), so the flood never shrinks. After SLOW_SETTLE seconds
#      the same SLOW_REQS GETs run again while the flood goes on; the flood's
#      counters (connections tried, closed by the server) are reported too.
# A failure counts in the percentiles as 5000 ms (curl's --max-time).
#
# Output: a markdown table on stdout and in bench/results/slowloris-<date>.md
# (-quick for --quick); progress on stderr. Nothing is asserted: exit 0
# when the run completed. Re-executes itself in a private network + PID
# namespace (BENCH_NETNS=0: the host's loopback); servers and the flood are
# children of the script, stopped by PID from an EXIT trap.
#
# Environment (defaults in brackets):
#   PULLCACHE        pullcache binary [<repo>/build/pullcache]; a BENCH_REV file next
#                    to it names its commit
#   SLOW_CONNS       flood connections [2000]
#   SLOW_PER_ADDR    flood connections per source address [4]
#   SLOW_REQS        manifest GETs per phase [300; quick 60]
#   SLOW_SETTLE      seconds between the flood's start and the GETs [5; quick 3]
#   BENCH_PORT_BASE  distribution, pullcache on BASE, BASE+1 [18290]
#   BENCH_OUT        results file; "-" = none
#   BENCH_KEEP=1     keep the temp dir
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh" # umask, LC_ALL, REPO
BENCH_NAME=slowloris-bench

bench_reexec "$@"
bench_quick_args "$@"
bench_pullcache build
CONNS=${SLOW_CONNS:-2000}
PER_ADDR=${SLOW_PER_ADDR:-4}
if [ "$QUICK" = 1 ]; then
    REQS=${SLOW_REQS:-60} SETTLE=${SLOW_SETTLE:-3}
else
    REQS=${SLOW_REQS:-300} SETTLE=${SLOW_SETTLE:-5}
fi
PORT_BASE=${BENCH_PORT_BASE:-18290}
declare -A PORT=([distribution]=$PORT_BASE [pullcache]=$((PORT_BASE + 1)))
declare -A LABEL=([distribution]="distribution 2.8" [pullcache]="pullcache")
CONTENDERS=(pullcache distribution)
RUN_DATE=$(date -u +%F)
RUN_TIME=$(date -u '+%F %T UTC')
bench_out slowloris-
bench_need curl jq docker-registry sha256sum python3
FLOOD=$REPO/tests/tools/slowloris.py
MT_MAN=application/vnd.oci.image.manifest.v1+json
declare -A R=()

bench_workdir pc-slowloris img
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# the image: config, one layer, manifest
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >img/config
head -c 4096 /dev/urandom >img/layer
jq -jcn --arg c "sha256:$(sha img/config)" --argjson cs "$(fsize img/config)" \
    --arg l "sha256:$(sha img/layer)" --argjson ls "$(fsize img/layer)" --arg mt "$MT_MAN" \
    '{schemaVersion: 2, mediaType: $mt,
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}' \
    >img/manifest
WANT=sha256:$(sha img/manifest)

start() {
    local s=$1 lf=$WORK/logs/$1.log
    case $s in
    distribution)
        bench_dist_config "$WORK/dist.yml" "$WORK/dist-data" "${PORT[distribution]}"
        docker-registry serve "$WORK/dist.yml" >>"$lf" 2>&1 &
        ;;
    pullcache)
        "$PULLCACHE" serve --listen "127.0.0.1:${PORT[pullcache]}" --data "$WORK/pc-data" >>"$lf" 2>&1 &
        ;;
    esac
    PID[$s]=$!
    wait_up "$s" || { log "$s did not start"; return 1; }
}

push() {
    local base=http://127.0.0.1:${PORT[$1]} f loc code
    for f in img/config img/layer; do
        loc=$(curl -sS -X POST -D - -o /dev/null "$base/v2/bench/blobs/uploads/" | tr -d '\r' |
            sed -n 's/^[Ll]ocation: //p')
        case $loc in /*) loc=$base$loc ;; esac
        case $loc in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
        code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -T "$f" -H 'Expect:' \
            -H 'Content-Type: application/octet-stream' "${loc}digest=sha256:$(sha "$f")")
        [ "$code" = 201 ] || { log "$1: blob PUT answered $code"; return 1; }
    done
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -T img/manifest -H "Content-Type: $MT_MAN" \
        "$base/v2/bench/manifests/v1")
    [ "$code" = 201 ] || { log "$1: manifest PUT answered $code"; return 1; }
}

# gets NAME PHASE: REQS manifest GETs; R[NAME.PHASE.p50|p99|max|fail]
gets() {
    local s=$1 ph=$2 url=http://127.0.0.1:${PORT[$1]}/v2/bench/manifests/v1 i out code t fail=0
    : >"$WORK/times"
    for i in $(seq "$REQS"); do
        out=$(curl -s -o "$WORK/got" -w '%{http_code} %{time_total}' --max-time 5 \
            -H "Accept: $MT_MAN" "$url" 2>/dev/null) || out="000 5"
        read -r code t <<<"$out"
        if [ "$code" != 200 ] || [ "sha256:$(sha "$WORK/got")" != "$WANT" ]; then
            fail=$((fail + 1))
            t=5
        fi
        echo "$t" >>"$WORK/times"
    done
    sort -g "$WORK/times" >"$WORK/times.s"
    R[$s.$ph.p50]=$(awk '{ a[NR] = $1 } END { printf "%.1f", a[int(NR * 0.50 + 0.5)] * 1000 }' "$WORK/times.s")
    R[$s.$ph.p99]=$(awk '{ a[NR] = $1 } END { i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; printf "%.1f", a[i] * 1000 }' "$WORK/times.s")
    R[$s.$ph.max]=$(awk 'END { printf "%.1f", $1 * 1000 }' "$WORK/times.s")
    R[$s.$ph.fail]=$fail
    log "$s $ph: p50 ${R[$s.$ph.p50]} ms, p99 ${R[$s.$ph.p99]} ms, max ${R[$s.$ph.max]} ms, $fail failed"
}

for s in "${CONTENDERS[@]}"; do
    log "$s: start, push"
    start "$s"
    push "$s"
    gets "$s" idle
    log "$s: flood of $CONNS connections"
    python3 "$FLOOD" "127.0.0.1:${PORT[$s]}" --many "$CONNS" --per-addr "$PER_ADDR" --reconnect \
        --duration 3600 --stats "$WORK/flood.json" --ready-file "$WORK/flood.ready" \
        >"$WORK/logs/flood.log" 2>&1 &
    PID[flood]=$!
    for _ in $(seq 300); do [ -e "$WORK/flood.ready" ] && break; sleep 0.1; done
    sleep "$SETTLE"
    gets "$s" flood
    R[$s.flood.stats]=$(cat "$WORK/flood.json")
    stop_server flood
    rm -f "$WORK/flood.ready"
    stop_server "$s"
done

rev() {
    local f
    f=$(dirname "$PULLCACHE")/BENCH_REV
    if [ -f "$f" ]; then cat "$f"; else git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown; fi
}

report() {
    local s
    echo "## Slowloris flood: a normal client's manifest GET ($RUN_TIME)"
    echo
    echo "$CONNS trickling connections from $((CONNS / PER_ADDR)) addresses ($PER_ADDR each, replaced when closed); $REQS sequential manifest GETs by tag per phase, a fresh connection each; ms of curl time_total; a failure counts as 5000 ms."
    echo
    echo "| server | idle p50 | idle p99 | flood p50 | flood p99 | flood max | failed (idle / flood) | flood connections tried / closed by the server |"
    echo "|---|---|---|---|---|---|---|---|"
    for s in "${CONTENDERS[@]}"; do
        printf '| %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n' "${LABEL[$s]}" \
            "${R[$s.idle.p50]}" "${R[$s.idle.p99]}" "${R[$s.flood.p50]}" "${R[$s.flood.p99]}" \
            "${R[$s.flood.max]}" "${R[$s.idle.fail]}" "${R[$s.flood.fail]}" \
            "$(jq -r .tried <<<"${R[$s.flood.stats]}")" "$(jq -r .closed <<<"${R[$s.flood.stats]}")"
    done
    echo
    echo "- pullcache $(rev) with its defaults (http.max_connections 1024, http.header_timeout 10, http.max_connections_per_ip 256); $(docker-registry --version 2>/dev/null | awk '{ print "docker-registry", $3 }') with its defaults"
    echo "- $(nproc) CPUs, $(uname -sr); goal for pullcache: flood p99 < 100 ms"
}

bench_publish
