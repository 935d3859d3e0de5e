#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cache.sh - pull-through cache benchmark: pullcache vs distribution 2.8 in
# proxy mode (Debian's docker-registry with proxy.remoteurl), both in front of
# the same upstream, in one run.
#
#   bash bench/cache.sh [--quick]
#
# The upstream is a plain docker-registry (distribution 2.8, filesystem
# storage, access log on). The script generates a multi-layer image at run
# time in a temp dir (random layers: about 200 MiB, --quick about 50 MiB; a
# JSON config; an OCI image manifest), pushes it with curl (POST + monolithic
# PUT ?digest=, then the manifest) as bench:v1, and pulls it once directly from
# the upstream to check it. Upstream requests and bytes are counted from the
# upstream's own access log (combined log format: method, path, status, body
# bytes sent), read before and after each phase.
#
# Contenders, one at a time, each started fresh with an empty data dir:
#   pullcache       serve --upstream up=http://127.0.0.1:UPSTREAM  (pulls: /v2/up/bench/...)
#   distribution    docker-registry with proxy: {remoteurl: http://127.0.0.1:UPSTREAM}
#                   (pulls: /v2/bench/...), its own storage dir
# Phases per contender:
#   1. single cold pull (fresh server): wall time, upstream requests and bytes
#   2. (restarted fresh) 50 concurrent cold pulls: wall time, upstream requests
#      and bytes, how many pulls got verified content
#   3. (same process) 50 concurrent warm pulls of the same image: wall time
#      (the client-side floor for phase 2 on this machine), upstream requests;
#      CACHE_WARM_CONC=pullcache limits it to pullcache (saves ~40 s)
#   4. 1000 warm pulls by tag: manifest GET by tag, one curl, one keep-alive
#      connection; upstream requests (and GETs) during the phase
#   5. warm manifest GET by tag, wrk -t2 -c32 -d8s (quick 3s): req/s, and the
#      upstream requests it caused
# A pull = manifest GET by tag (OCI Accept header), then every blob the
# manifest names, one after the other, each piped through sha256sum and
# compared with its digest (the manifest's too).
#
# WAN upstream link (CACHE_UPSTREAM_MBIT=N): on loopback a cold pull is bound
# by the clients' CPU, not by the link to the upstream as in production. With
# the knob set, right after the image is pushed (so the direct pull and every
# later phase see it) the script puts an htb qdisc on lo inside its private
# network namespace that limits only packets sent FROM the upstream's port
# (upstream -> cache/client bodies; u32 filter "ip sport UPSTREAM") to N Mbit/s;
# everything else on lo goes through an unshaped 100gbit default class. Only
# bandwidth is modelled, not latency (this kernel has no netem). The report
# then adds the link class's byte counter per phase (wire bytes, headers
# included) and the link time of one image. Refused outside the private
# namespace (it would change the host's lo).
# Concurrent phases can be capped (CACHE_CONC_TIMEOUT seconds; with the
# throttle the default is 4x the direct pull, at least 60 s, since a proxy that
# fetches the image once per client needs N x the link time): at the cap the
# remaining clients are killed (each client's process tree, by PID), and the
# report says "not finished in N s (k/50 done)" with the upstream requests and
# bytes until the upstream went quiet. After a capped cold phase the
# contender's concurrent warm phase (3) is skipped: nothing is warm.
#
# Output: a markdown table with absolute numbers and ratios on stdout and in
# bench/results/cache-<date>.md (cache-<date>-quick.md for --quick;
# -wan<N>mbit before .md with the throttle); progress on stderr. Nothing is
# asserted: exit status 0 when the run completed.
#
# Like bench/run.sh it re-executes itself in a private network + PID namespace
# (only loopback up; BENCH_NETNS=0 to use the host's loopback); every server is
# a child of the script, stopped by PID from an EXIT trap.
#
# Environment (defaults in brackets):
#   PULLCACHE          pullcache binary [<repo>/build-cbench/pullcache, else build/pullcache];
#                      a BENCH_REV file next to it (as bench/build.sh writes) names its commit
#   CACHE_LAYERS_MIB   layer sizes in MiB [64 48 32 24 16 8 4 1; quick 16 12 8 6 4 2 1 1]
#   CACHE_CLIENTS      concurrent cold pulls [50]
#   CACHE_WARM         warm pulls by tag [1000]
#   CACHE_WARM_CONC    contenders that get phase 3, or "all" [all]
#   CACHE_UPSTREAM_MBIT  throttle the upstream's sending to N Mbit/s (integer) [unset: no throttle]
#   CACHE_CONC_TIMEOUT seconds before the clients of a concurrent phase are killed; 0 = no cap
#                      [throttled: max(60, 4 x direct pull); else 0]
#   BENCH_DURATION     wrk seconds [8; quick 3]
#   BENCH_PORT_BASE    upstream, distribution proxy, pullcache on BASE, +1, +2 [18090]
#   BENCH_OUT          results file; "-" = none
#   BENCH_KEEP=1       keep the temp dir
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh" # umask, LC_ALL, REPO
BENCH_NAME=cache-bench

bench_reexec "$@"

bench_quick_args "$@"

bench_pullcache build-cbench
if [ "$QUICK" = 1 ]; then
    LAYERS=${CACHE_LAYERS_MIB:-16 12 8 6 4 2 1 1} DURATION=${BENCH_DURATION:-3}
else
    LAYERS=${CACHE_LAYERS_MIB:-64 48 32 24 16 8 4 1} DURATION=${BENCH_DURATION:-8}
fi
CLIENTS=${CACHE_CLIENTS:-50}
UP_MBIT=${CACHE_UPSTREAM_MBIT:-}
CONC_TIMEOUT=${CACHE_CONC_TIMEOUT:-}
[[ $UP_MBIT =~ ^([1-9][0-9]*)?$ ]] || { echo "bench: CACHE_UPSTREAM_MBIT must be a positive integer (Mbit/s)" >&2; exit 2; }
[[ $CONC_TIMEOUT =~ ^[0-9]*$ ]] || { echo "bench: CACHE_CONC_TIMEOUT must be whole seconds" >&2; exit 2; }
if [ -n "$UP_MBIT" ]; then
    # tc on lo is only acceptable in the namespace this script made (a fresh
    # netns has exactly one link, lo).
    if [ "${PC_BENCH_IN_NETNS:-}" != 1 ] || [ "$(ip -o link show 2>/dev/null | wc -l)" != 1 ]; then
        echo "bench: CACHE_UPSTREAM_MBIT needs the private network namespace (not with BENCH_NETNS=0); refusing to touch this lo" >&2
        exit 2
    fi
    command -v tc >/dev/null || { echo "bench: tc (iproute2) is not installed" >&2; exit 2; }
fi
WARM=${CACHE_WARM:-1000}
PORT_BASE=${BENCH_PORT_BASE:-18090}
UP_PORT=$PORT_BASE
declare -A PORT=([upstream]=$UP_PORT [distribution]=$((PORT_BASE + 1)) [pullcache]=$((PORT_BASE + 2)))
declare -A PREFIX=([upstream]=bench [distribution]=bench [pullcache]=up/bench)
declare -A LABEL=([distribution]="distribution 2.8 proxy" [pullcache]="pullcache")
CONTENDERS=(distribution pullcache)
RUN_DATE=$(date -u +%F)
RUN_TIME=$(date -u '+%F %T UTC')
bench_out cache- "${UP_MBIT:+-wan${UP_MBIT}mbit}"

bench_need wrk curl jq docker-registry sha256sum

CLIENT_PIDS=() # clients of a running concurrent phase, and its watchdog
declare -A R=() # results: R[contender.metric]

# kill_tree PID: SIGKILL PID and all its descendants, each stopped first so it
# cannot fork while its children are listed.
kill_tree() {
    local p=$1 c
    kill -STOP "$p" 2>/dev/null || return 0
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do kill_tree "$c"; done
    kill -KILL "$p" 2>/dev/null || true
}

# Run by cleanup (bench/lib.sh) before it stops the servers.
bench_cleanup_hook() {
    local p
    for p in "${CLIENT_PIDS[@]}"; do kill_tree "$p"; done
    for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -z "$UP_MBIT" ] || tc qdisc del dev lo root 2>/dev/null || true
}

bench_workdir pc-cbench res

# ---- the image ----------------------------------------------------------------

ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
TAG=v1

IMG=$WORK/img
mkdir -p "$IMG"
log "generating layers of $LAYERS MiB in $IMG"
bench_gen_image
MANIFEST_HEX=$(sha "$IMG/manifest")
NBLOBS=$((${#LAYER_FILES[@]} + 1))
IMAGE_BYTES=$(($(fsize "$IMG/manifest") + $(fsize "$IMG/config")))
for f in "${LAYER_FILES[@]}"; do IMAGE_BYTES=$((IMAGE_BYTES + $(fsize "$f"))); done
log "image: manifest sha256:$MANIFEST_HEX, $NBLOBS blobs, $IMAGE_BYTES bytes in all"

# ---- servers ------------------------------------------------------------------

dist_config() { # dist_config FILE PORT DATA LEVEL ACCESSLOG_DISABLED [PROXY_URL]
    cat >"$1" <<YML
version: 0.1
log:
  level: $4
  accesslog: {disabled: $5}
storage:
  filesystem: {rootdirectory: $3}
  cache: {blobdescriptor: inmemory}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: 127.0.0.1:$2
  secret: pullcache-cache-bench
YML
    [ -z "${6:-}" ] || printf 'proxy:\n  remoteurl: %s\n' "$6" >>"$1"
}

# start_server NAME: fresh data dir, start as a child of this script.
start_server() {
    local s=$1 d=$WORK/data-$1
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${PORT[$s]}/"; then
        log "$s: something already listens on 127.0.0.1:${PORT[$s]} (set BENCH_PORT_BASE)"
        return 1
    fi
    rm -rf "$d"
    mkdir -p "$d"
    case $s in
    upstream)
        # access log (combined format) on stdout -> upstream-access.log
        dist_config "$WORK/upstream.yml" "${PORT[$s]}" "$d" info false
        docker-registry serve "$WORK/upstream.yml" >>"$WORK/logs/upstream-access.log" 2>>"$WORK/logs/upstream.log" &
        ;;
    distribution)
        dist_config "$WORK/dist-proxy.yml" "${PORT[$s]}" "$d" warn true "http://127.0.0.1:$UP_PORT"
        docker-registry serve "$WORK/dist-proxy.yml" >>"$WORK/logs/distribution.log" 2>&1 &
        ;;
    pullcache)
        "$PULLCACHE" serve --listen "127.0.0.1:${PORT[$s]}" --data "$d" \
            --upstream "up=http://127.0.0.1:$UP_PORT" >>"$WORK/logs/pullcache.log" 2>&1 &
        ;;
    esac
    PID[$s]=$!
    if ! wait_up "$s"; then
        log "$s did not answer on 127.0.0.1:${PORT[$s]}"
        stop_server "$s"
        return 1
    fi
}

push_blob() { # push_blob FILE (to the upstream)
    local f=$1 base="http://127.0.0.1:$UP_PORT" h=$WORK/push.h code loc dig
    dig=sha256:$(sha "$f")
    code=$(curl -sS -X POST -D "$h" -o /dev/null -w '%{http_code}' --max-time 30 \
        "$base/v2/bench/blobs/uploads/") || code=000
    [ "$code" = 202 ] || { log "upstream: POST upload answered $code"; return 1; }
    loc=$(header "$h" Location)
    case $loc in http://*) ;; /*) loc=$base$loc ;; *) log "upstream: bad Location '$loc'"; return 1 ;; esac
    case $loc in *\?*) loc="$loc&digest=$dig" ;; *) loc="$loc?digest=$dig" ;; esac
    code=$(curl -sS -X PUT -T "$f" -H 'Content-Type: application/octet-stream' -H 'Expect:' \
        -o "$WORK/push.body" -w '%{http_code}' --max-time 120 "$loc") || code=000
    [ "$code" = 201 ] || { log "upstream: PUT $dig answered $code: $(head -c 300 "$WORK/push.body")"; return 1; }
}

push_image() {
    local f code
    for f in "$IMG/config" "${LAYER_FILES[@]}"; do push_blob "$f" || return 1; done
    code=$(curl -sS -X PUT -H "Content-Type: $MT_MANIFEST" --data-binary "@$IMG/manifest" \
        -o "$WORK/push.body" -w '%{http_code}' --max-time 30 \
        "http://127.0.0.1:$UP_PORT/v2/bench/manifests/$TAG") || code=000
    [ "$code" = 201 ] || { log "upstream: PUT manifest answered $code: $(head -c 300 "$WORK/push.body")"; return 1; }
}

# ---- pulls --------------------------------------------------------------------

# pull NAME ID: manifest by tag, then each blob, each checked against its
# digest. Writes "ok" or the first failure to $WORK/res/NAME.ID.
pull() {
    local s=$1 id=$2 base="http://127.0.0.1:${PORT[$1]}/v2/${PREFIX[$1]}" m=$WORK/res/$1.$2.manifest
    local out=$WORK/res/$1.$2 code got d
    code=$(curl -s -H "$ACCEPT" -o "$m" -w '%{http_code}' --max-time 120 "$base/manifests/$TAG") || code=000
    if [ "$code" != 200 ] || [ "$(sha "$m")" != "$MANIFEST_HEX" ]; then
        echo "GET $base/manifests/$TAG: status $code, sha256 $(sha "$m" 2>/dev/null)" >"$out"
        return 0
    fi
    for d in $(jq -r '.config.digest, .layers[].digest' "$m"); do
        got=$(set -o pipefail; curl -sS --fail --max-time 300 "$base/blobs/$d" 2>"$out.err" | sha256sum | cut -d' ' -f1) || got="curl failed: $(head -c 200 "$out.err")"
        if [ "sha256:$got" != "$d" ]; then
            echo "GET $base/blobs/$d: $got" >"$out"
            return 0
        fi
    done
    rm -f "$m" "$out.err"
    echo ok >"$out"
}

# ---- upstream accounting ------------------------------------------------------

ACCESS=$WORK/logs/upstream-access.log
# up_wire: bytes the upstream's port has sent through the link class since the
# throttle went on (tc's counter: IP packets, headers included); "-" without it.
up_wire() {
    if [ "$THROTTLED" = 1 ]; then
        tc -s class show dev lo classid 1:20 | awk '$1 == "Sent" { print $2; exit }'
    else
        echo -
    fi
}
# up_mark: "LINES WIRE": access log lines and link class bytes so far.
up_mark() { echo "$(wc -l <"$ACCESS") $(up_wire)"; }
# up_count MARK: "requests gets heads get_bytes get_blobs get_manifests" in the
# access log lines after MARK (waits until the log stops growing, ≤ 3 s).
up_count() {
    local mark=$1 n prev=-1
    for _ in $(seq 30); do
        n=$(wc -l <"$ACCESS")
        [ "$n" = "$prev" ] && break
        prev=$n
        sleep 0.3
    done
    tail -n +"$((mark + 1))" "$ACCESS" | awk '
        match($0, /"(GET|HEAD|POST|PUT|PATCH|DELETE) [^ ]+ HTTP\/[0-9.]+" [0-9]+ [0-9-]+/) {
            split(substr($0, RSTART + 1, RLENGTH - 1), f, /[" ]+/)
            n++
            # HEAD lines carry the Content-Length the handler wrote (Go drops
            # the body), so only GET bodies count as bytes.
            if (f[1] == "GET") { g++; b += (f[5] == "-" ? 0 : f[5]); if (f[2] ~ /\/blobs\//) gb++; if (f[2] ~ /\/manifests\//) gm++ }
            if (f[1] == "HEAD") h++
        }
        END { printf "%d %d %d %.0f %d %d\n", n, g, h, b, gb, gm }'
}

# phase_counts NAME KEY MARK: read counters since MARK (from up_mark) into R[NAME.KEY_*]
phase_counts() {
    local s=$1 k=$2 lines=${3% *} wire0=${3#* } n g h b gb gm wire
    read -r n g h b gb gm <<<"$(up_count "$lines")"
    R[$s.${k}_req]=$n R[$s.${k}_get]=$g R[$s.${k}_head]=$h R[$s.${k}_bytes]=$b
    R[$s.${k}_getblob]=$gb R[$s.${k}_getman]=$gm
    if [ "$THROTTLED" = 1 ]; then
        wire=$(up_wire)
        R[$s.${k}_wire]=$((wire - wire0))
        log "$s: $k: upstream $n requests ($g GET: $gm manifest, $gb blob; $h HEAD), $b bytes; ${R[$s.${k}_wire]} bytes on the link"
    else
        log "$s: $k: upstream $n requests ($g GET: $gm manifest, $gb blob; $h HEAD), $b bytes"
    fi
}

# up_quiet: after clients were killed, wait until the upstream stops sending
# (link class counter unchanged for 2 s; at most 60 s), so the phase's counts
# include the transfers the kill aborted and the next phase starts clean.
up_quiet() {
    local prev=-1 cur same=0 t
    [ "$THROTTLED" = 1 ] || { sleep 3; return 0; }
    for t in $(seq 60); do
        cur=$(up_wire)
        if [ "$cur" = "$prev" ]; then
            same=$((same + 1))
            [ "$same" -lt 2 ] || { log "upstream quiet after ${t} s"; return 0; }
        else
            same=0
        fi
        prev=$cur
        sleep 1
    done
    log "upstream still sending 60 s after the cap; its later bytes land in the next phase"
    R[upstream.still_sending]=1
}

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

single_pull() { # single_pull NAME KEY
    local s=$1 k=$2 mark t0 t1
    mark=$(up_mark)
    t0=$(now_ns)
    pull "$s" "$k"
    t1=$(now_ns)
    R[$s.${k}_wall]=$(secs "$t0" "$t1")
    R[$s.${k}_ok]=$(grep -c '^ok$' "$WORK/res/$s.$k" || true)
    [ "${R[$s.${k}_ok]}" = 1 ] || log "$s: $k pull failed: $(cat "$WORK/res/$s.$k")"
    log "$s: $k pull: ${R[$s.${k}_wall]} s"
    phase_counts "$s" "$k" "$mark"
}

# concurrent_pulls NAME KEY (conc: cold, wconc: warm). With CONC_TIMEOUT > 0 a
# watchdog kills the clients still running at the cap (R[NAME.KEY_capped]=1).
concurrent_pulls() {
    local s=$1 k=$2 mark t0 t1 i pids=() f wd="" ended
    mark=$(up_mark)
    rm -f "$WORK/cap.$s.$k"
    t0=$(now_ns)
    for i in $(seq "$CLIENTS"); do
        pull "$s" "$k$i" &
        pids+=($!)
        CLIENT_PIDS+=($!)
    done
    if [ "$CONC_TIMEOUT" -gt 0 ]; then
        (
            sleep "$CONC_TIMEOUT"
            : >"$WORK/cap.$s.$k"
            for i in "${pids[@]}"; do kill_tree "$i"; done
        ) &
        wd=$!
        CLIENT_PIDS+=("$wd")
    fi
    # (stderr: no "Killed" notice per client killed at the cap)
    for i in "${pids[@]}"; do { wait "$i" || true; } 2>/dev/null; done
    t1=$(now_ns)
    if [ -n "$wd" ]; then
        kill_tree "$wd"
        wait "$wd" 2>/dev/null || true
    fi
    CLIENT_PIDS=()
    R[$s.${k}_wall]=$(secs "$t0" "$t1")
    R[$s.${k}_ok]=$(for i in $(seq "$CLIENTS"); do cat "$WORK/res/$s.$k$i" 2>/dev/null; done | grep -c '^ok$' || true)
    # a client writes its result file when it ends; killed ones never do
    ended=$(for i in $(seq "$CLIENTS"); do [ ! -e "$WORK/res/$s.$k$i" ] || echo; done | wc -l)
    if [ -e "$WORK/cap.$s.$k" ] && [ "$ended" -lt "$CLIENTS" ]; then
        R[$s.${k}_capped]=1 R[$s.${k}_wall]=$CONC_TIMEOUT
        log "$s: $CLIENTS concurrent $k pulls: not finished in $CONC_TIMEOUT s: ${R[$s.${k}_ok]} verified, $((CLIENTS - ended)) killed"
        for i in $(seq "$CLIENTS"); do
            f=$WORK/res/$s.$k$i
            [ ! -e "$f" ] || [ "$(cat "$f")" = ok ] || log "$s: $k pull $i: $(cat "$f")"
        done
        up_quiet
    else
        for i in $(seq "$CLIENTS"); do
            f=$WORK/res/$s.$k$i
            [ "$(cat "$f" 2>/dev/null)" = ok ] || log "$s: $k pull $i: $(cat "$f" 2>/dev/null)"
        done
        log "$s: $CLIENTS concurrent $k pulls: ${R[$s.${k}_wall]} s, ${R[$s.${k}_ok]} verified"
    fi
    phase_counts "$s" "$k" "$mark"
}

warm_pulls() { # warm_pulls NAME: WARM manifest GETs by tag, one curl, keep-alive
    local s=$1 mark t0 t1 url="http://127.0.0.1:${PORT[$1]}/v2/${PREFIX[$1]}/manifests/$TAG"
    for _ in $(seq "$WARM"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url"; done >"$WORK/warm.curl"
    mark=$(up_mark)
    t0=$(now_ns)
    curl -s -H "$ACCEPT" -w '%{http_code}\n' -K "$WORK/warm.curl" >"$WORK/warm.codes" || true
    t1=$(now_ns)
    R[$s.warm_wall]=$(secs "$t0" "$t1")
    R[$s.warm_200]=$(grep -c '^200$' "$WORK/warm.codes" || true)
    log "$s: $WARM warm pulls by tag: ${R[$s.warm_200]} x 200 in ${R[$s.warm_wall]} s"
    phase_counts "$s" warm "$mark"
}

wrk_tag() { # wrk_tag NAME
    local s=$1 mark out line kv
    mark=$(up_mark)
    out=$(wrk -t2 -c32 -d"${DURATION}s" --latency -H "$ACCEPT" -s "$BENCH_DIR/wrk_report.lua" \
        "http://127.0.0.1:${PORT[$s]}/v2/${PREFIX[$s]}/manifests/$TAG" 2>&1) || true
    printf '### %s\n%s\n' "$s" "$out" >>"$WORK/logs/wrk.log"
    line=$(grep '^WRK ' <<<"$out" | tail -n1)
    if [ -n "$line" ]; then
        local -A W=()
        for kv in ${line#WRK }; do W[${kv%%=*}]=${kv#*=}; done
        R[$s.wrk_rps]=$(awk -v r="${W[requests]}" -v d="${W[duration_us]}" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
        R[$s.wrk_p99]=$(awk -v x="${W[p99_us]}" 'BEGIN { printf "%.2f", x / 1000 }')
        R[$s.wrk_err]=$((W[connect] + W[read] + W[write] + W[status] + W[timeout]))
        log "$s: wrk manifest by tag: ${R[$s.wrk_rps]} req/s, p99 ${R[$s.wrk_p99]} ms, ${R[$s.wrk_err]} errors"
    else
        log "$s: wrk gave no summary: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
    fi
    phase_counts "$s" wrk "$mark"
}

# ---- WAN link model -------------------------------------------------------------

THROTTLED=0
# throttle_on: htb on lo; packets from the upstream's port -> class 1:20 at
# UP_MBIT, everything else -> class 1:10 at 100gbit. Explicit burst and quantum:
# with tc's defaults (burst = rate/HZ + 1600 B with HZ 10^9 here, i.e. ~1.6 kB)
# every 64 KiB loopback packet overran the 100gbit class, and quantum from r2q
# is "big" for 100gbit. bench/lo-qdisc.sh measures what the qdisc costs the
# unthrottled loopback traffic.
throttle_on() {
    tc qdisc add dev lo root handle 1: htb default 10 &&
        tc class add dev lo parent 1: classid 1:10 htb rate 100gbit burst 4mb cburst 4mb quantum 200000 &&
        tc class add dev lo parent 1: classid 1:20 htb rate "${UP_MBIT}mbit" burst 256kb cburst 256kb quantum 200000 &&
        tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport "$UP_PORT" 0xffff flowid 1:20 ||
        return 1
    THROTTLED=1
}

# ---- run ----------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$ACCESS"
start_server upstream || exit 1
log "pushing the image to the upstream"
push_image || exit 1
if [ -n "$UP_MBIT" ]; then
    throttle_on || { log "tc failed"; exit 1; }
    log "upstream link: packets from port $UP_PORT limited to $UP_MBIT Mbit/s (htb on lo); one image takes $(awk -v b="$IMAGE_BYTES" -v m="$UP_MBIT" 'BEGIN { printf "%.1f", b * 8 / (m * 1e6) }') s on it"
fi
log "checking the image with a direct pull from the upstream"
single_pull upstream direct
[ "${R[upstream.direct_ok]}" = 1 ] || { log "upstream pull failed; giving up"; exit 1; }
if [ -z "$CONC_TIMEOUT" ]; then
    CONC_TIMEOUT=0
    [ "$THROTTLED" = 0 ] || CONC_TIMEOUT=$(awk -v d="${R[upstream.direct_wall]}" 'BEGIN { c = int(4 * d + 0.999); print (c < 60 ? 60 : c) }')
fi
[ "$CONC_TIMEOUT" = 0 ] || log "concurrent phases capped at $CONC_TIMEOUT s"

declare -A STATUS=()
for s in "${CONTENDERS[@]}"; do
    if [ "$s" = pullcache ] && [ ! -x "$PULLCACHE" ]; then STATUS[$s]="binary $PULLCACHE missing"; continue; fi
    log "== $s: fresh start, single cold pull"
    start_server "$s" || { STATUS[$s]="did not start"; continue; }
    single_pull "$s" single
    stop_server "$s"
    log "== $s: fresh start, $CLIENTS concurrent cold pulls, then warm phases"
    start_server "$s" || { STATUS[$s]="did not start (2nd time)"; continue; }
    concurrent_pulls "$s" conc
    if [ "${R[$s.conc_capped]:-0}" = 1 ]; then
        log "$s: cold pulls capped, skipping the concurrent warm pulls"
    else
        case " ${CACHE_WARM_CONC:-all} " in *" $s "* | " all ") concurrent_pulls "$s" wconc ;; esac
    fi
    warm_pulls "$s"
    wrk_tag "$s"
    if [ "$s" = pullcache ]; then
        curl -s "http://127.0.0.1:${PORT[$s]}/metrics" >"$WORK/logs/pullcache-metrics.txt" || true
    fi
    stop_server "$s"
    STATUS[$s]=ok
done
stop_server upstream
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
LINK_S=n/a
[ "$THROTTLED" = 0 ] || LINK_S=$(awk -v b="$IMAGE_BYTES" -v m="$UP_MBIT" 'BEGIN { printf "%.2f", b * 8 / (m * 1e6) }')

# ---- report -------------------------------------------------------------------

v() { printf '%s' "${R[$1]:-n/a}"; }
ratio() {
    if [ -n "${1:-}" ] && [ -n "${2:-}" ] && [ "$1" != n/a ] && [ "$2" != n/a ] &&
        awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        printf 'n/a'
    fi
}
mb() { [ -n "${1:-}" ] && [ "$1" != n/a ] && awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }' || printf 'n/a'; }
img_x() { # bytes as "N B (R× image, +D B)"
    [ -n "${1:-}" ] && [ "$1" != n/a ] || { printf 'n/a'; return; }
    awk -v b="$1" -v i="$IMAGE_BYTES" 'BEGIN { printf "%.0f B (%.2f× image", b, b / i; if (b != i) printf ", %+.0f B", b - i; printf ")" }'
}
# row LABEL UNIT DIST PC GOAL
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3")" "$5"; }
reqs() { # reqs NAME KEY: "N (G GET, H HEAD)"
    [ -n "${R[$1.$2_req]:-}" ] || { printf 'n/a'; return; }
    printf '%s: GET %s manifest + %s blob + %s other (/v2/), HEAD %s' "${R[$1.$2_req]}" "${R[$1.$2_getman]}" "${R[$1.$2_getblob]}" \
        "$((R[$1.$2_get] - R[$1.$2_getman] - R[$1.$2_getblob]))" "${R[$1.$2_head]}"
}
capped() { printf '%s' "${R[$1.conc_capped]:-0}"; }
conc_wall() { # "S" or "not finished in N s (k/CLIENTS done)"
    if [ "$(capped "$1")" = 1 ]; then
        printf 'not finished in %s s (%s/%s done)' "$CONC_TIMEOUT" "$(v "$1.conc_ok")" "$CLIENTS"
    else
        v "$1.conc_wall"
    fi
}
cratio() { # cratio METRIC: pullcache/distribution for a cold-phase count ("< r" when only distribution was capped, "-" when pullcache was)
    local r
    r=$(ratio "$(v pullcache.$1)" "$(v distribution.$1)")
    if [ "$(capped pullcache)" = 1 ]; then printf -- '-'
    elif [ "$(capped distribution)" = 1 ] && [ "$r" != n/a ]; then printf '< %s' "$r"
    else printf '%s' "$r"; fi
}
so_far() { [ "$(capped "$1")" = 0 ] || printf ' — so far'; }
killed() { [ "$(capped "$1")" = 0 ] || printf ' (rest killed at %s s)' "$CONC_TIMEOUT"; }
wconc_v() { if [ "$(capped "$1")" = 1 ]; then printf 'skipped (cold phase capped)'; else v "$1.wconc_$2"; fi; }
wconc_rv() {
    if [ "$(capped "$1")" = 1 ]; then printf 'skipped'
    elif [ -z "${R[$1.wconc_req]:-}" ]; then printf 'n/a'
    else printf '%s; %s/%s' "$(reqs "$1" wconc)" "$(v "$1.wconc_ok")" "$CLIENTS"; fi
}
goal_le() { [ "$1" = n/a ] && printf 'n/a' || awk -v r="$1" -v g="$2" 'BEGIN { printf (r <= g ? "met" : "**not met**") }'; }
goal_ge() { [ "$1" = n/a ] && printf 'n/a' || awk -v r="$1" -v g="$2" 'BEGIN { printf (r >= g ? "met" : "**not met**") }'; }

pc_from() {
    local rev_file
    rev_file=$(dirname "$PULLCACHE")/BENCH_REV
    if [ -f "$rev_file" ] && ! [ "$PULLCACHE" -nt "$rev_file" ]; then
        echo "built from a clean git archive of commit $(cut -c1-12 "$rev_file") (BENCH_REV)"
        return
    fi
    printf 'built from the work tree; last commit touching src/ %s' \
        "$(git -C "$REPO" log -1 --format=%h -- src CMakeLists.txt 2>/dev/null)"
    [ -z "$(git -C "$REPO" status --porcelain -- src CMakeLists.txt 2>/dev/null)" ] ||
        printf ', with uncommitted changes in src/ now'
}

report() {
    local D=distribution P=pullcache pc_c dc_c
    echo "## Pull-through cache benchmark, $RUN_TIME$([ "$QUICK" = 1 ] && echo ' (--quick)' || true)"
    echo
    echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r); load average $LOAD_BEFORE before, $LOAD_AFTER after (shared machine)."
    echo "Image: OCI manifest ($(fsize "$IMG/manifest") B), config ($(fsize "$IMG/config") B), ${#LAYER_FILES[@]} random layers of $LAYERS MiB; $IMAGE_BYTES bytes ($(mb "$IMAGE_BYTES") MB) in all."
    echo "Upstream: docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $3 }') (filesystem storage), requests and body bytes counted from its access log."
    echo "A pull = manifest GET by tag, then each blob in turn, every body checked with sha256sum. Direct pull from the upstream (reference): $(v upstream.direct_wall) s."
    if [ "$THROTTLED" = 1 ]; then
        echo "**Upstream link: $UP_MBIT Mbit/s** (CACHE_UPSTREAM_MBIT): htb on lo in the benchmark's private network namespace limits the packets sent from the upstream's port $UP_PORT (u32 filter on the source port) to $UP_MBIT Mbit/s; all other loopback traffic (cache <-> clients, requests to the upstream) goes through an unshaped 100gbit class. Bandwidth only, no added latency. One image takes $LINK_S s on this link. \"on the link\" = the link class's byte counter (IP packets, headers included)."
    fi
    [ "$CONC_TIMEOUT" = 0 ] || echo "Concurrent phases capped at $CONC_TIMEOUT s (CACHE_CONC_TIMEOUT$([ -n "${CACHE_CONC_TIMEOUT:-}" ] || echo '; default: 4× the direct pull, at least 60 s')): clients still running then are killed; their upstream requests and bytes up to then (until the upstream went quiet) are counted."
    echo
    pc_c=$(ratio "$(v $P.conc_wall)" "$(v $P.single_wall)")
    dc_c=$(ratio "$(v $D.conc_wall)" "$(v $D.single_wall)")
    echo "| scenario | unit | ${LABEL[$D]} | ${LABEL[$P]} | pullcache/distribution | goal (pullcache) |"
    echo "|---|---|---:|---:|---:|---|"
    row "single cold pull" "s" "$(v $D.single_wall)" "$(v $P.single_wall)" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "single cold pull: upstream GET bytes" "bytes" "$(img_x "$(v $D.single_bytes)")" "$(img_x "$(v $P.single_bytes)")" "$(ratio "$(v $P.single_bytes)" "$(v $D.single_bytes)")" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "single cold pull: upstream requests" "count" "$(reqs $D single)" "$(reqs $P single)" "$(ratio "$(v $P.single_req)" "$(v $D.single_req)")" "-"
    [ "$THROTTLED" = 0 ] || printf '| %s | %s | %s | %s | %s | %s |\n' "single cold pull: upstream bytes on the link" "bytes" "$(img_x "$(v $D.single_wire)")" "$(img_x "$(v $P.single_wire)")" "$(ratio "$(v $P.single_wire)" "$(v $D.single_wire)")" "-"
    local cw_ratio=$(ratio "$(v $P.conc_wall)" "$(v $D.conc_wall)")
    if [ "$(capped $D)" = 1 ] && [ "$(capped $P)" = 0 ]; then cw_ratio="< $cw_ratio"; elif [ "$(capped $P)" = 1 ]; then cw_ratio=-; fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold pulls" "s (wall)" "$(conc_wall $D)" "$(conc_wall $P)" "$cw_ratio" "-"
    if [ "$(capped $D)" = 1 ] && [ "$dc_c" != n/a ]; then dc_c="> $dc_c"; fi
    if [ "$(capped $P)" = 1 ] && [ "$pc_c" != n/a ]; then pc_c="> $pc_c"; fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold pulls ÷ single cold pull" "×" "$dc_c" "$pc_c" "-" "≤ 1.3: $([ "$(capped $P)" = 1 ] && echo '**not met**' || goal_le "$pc_c" 1.3)"
    if [ "$THROTTLED" = 1 ]; then
        local dl pl
        dl=$(ratio "$(v $D.conc_wall)" "$LINK_S") pl=$(ratio "$(v $P.conc_wall)" "$LINK_S")
        [ "$(capped $D)" = 0 ] || dl="> $dl"
        [ "$(capped $P)" = 0 ] || pl="> $pl"
        printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold pulls ÷ link time of one image ($LINK_S s)" "×" "$dl" "$pl" "-" "-"
    fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold pulls: upstream GET bytes" "bytes" "$(img_x "$(v $D.conc_bytes)")$(so_far $D)" "$(img_x "$(v $P.conc_bytes)")$(so_far $P)" "$(cratio conc_bytes)" "exactly 1× image: $(if [ "$(capped $P)" = 1 ]; then echo 'n/a (capped)'; elif [ "$(v $P.conc_bytes)" = "$IMAGE_BYTES" ]; then echo met; else echo "**not met**"; fi)"
    [ "$THROTTLED" = 0 ] || printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold pulls: upstream bytes on the link" "bytes" "$(img_x "$(v $D.conc_wire)")$(so_far $D)" "$(img_x "$(v $P.conc_wire)")$(so_far $P)" "$(cratio conc_wire)" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold pulls: upstream requests" "count" "$(reqs $D conc)$(so_far $D)" "$(reqs $P conc)$(so_far $P)" "$(cratio conc_req)" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold pulls: verified" "pulls" "$(v $D.conc_ok)/$CLIENTS$(killed $D)" "$(v $P.conc_ok)/$CLIENTS$(killed $P)" "-" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent warm pulls (same image, right after)" "s (wall)" "$(wconc_v $D wall)" "$(wconc_v $P wall)" "$(ratio "$(v $P.wconc_wall)" "$(v $D.wconc_wall)")" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent cold ÷ warm pulls" "×" "$(ratio "$(v $D.conc_wall)" "$(v $D.wconc_wall)")" "$(ratio "$(v $P.conc_wall)" "$(v $P.wconc_wall)")" "-" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$CLIENTS concurrent warm pulls: upstream requests; verified" "count; pulls" "$(wconc_rv $D)" "$(wconc_rv $P)" "-" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$WARM warm pulls by tag: upstream manifest/blob GETs" "count" "$(( ${R[$D.warm_getman]:-0} + ${R[$D.warm_getblob]:-0} ))" "$(( ${R[$P.warm_getman]:-0} + ${R[$P.warm_getblob]:-0} ))" "-" "0: $([ "$(( ${R[$P.warm_getman]:-1} + ${R[$P.warm_getblob]:-1} ))" = 0 ] && echo met || echo '**not met**')"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$WARM warm pulls by tag: upstream requests" "count" "$(reqs $D warm)" "$(reqs $P warm)" "-" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$WARM warm pulls by tag: answered 200, time (1 connection)" "count, s" "$(v $D.warm_200), $(v $D.warm_wall)" "$(v $P.warm_200), $(v $P.warm_wall)" "$(ratio "$(v $D.warm_wall)" "$(v $P.warm_wall)") (speed)" "-"
    local wr
    wr=$(ratio "$(v $P.wrk_rps)" "$(v $D.wrk_rps)")
    row "warm manifest GET by tag, wrk -t2 -c32 -d${DURATION}s" "req/s" "$(v $D.wrk_rps)$([ "${R[$D.wrk_err]:-0}" = 0 ] || echo " (!${R[$D.wrk_err]} err)")" "$(v $P.wrk_rps)$([ "${R[$P.wrk_err]:-0}" = 0 ] || echo " (!${R[$P.wrk_err]} err)")" "≥ 10: $(goal_ge "$wr" 10)"
    row "warm manifest GET by tag, p99 latency" "ms" "$(v $D.wrk_p99)" "$(v $P.wrk_p99)" "-"
    printf '| %s | %s | %s | %s | %s | %s |\n' "during wrk: upstream requests" "count" "$(reqs $D wrk)" "$(reqs $P wrk)" "-" "-"
    echo
    echo "Servers (each started with an empty data dir for the single pull, and again for the concurrent pulls; the warm phases follow the concurrent pulls on the same process):"
    echo "- ${LABEL[distribution]}: docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $3 }'), \`proxy: {remoteurl: http://127.0.0.1:$UP_PORT}\`, filesystem storage, inmemory blob descriptor cache, log level warn, access log off — ${STATUS[distribution]:-n/a}"
    echo "- pullcache: $("$PULLCACHE" --version 2>/dev/null | head -n1) ($PULLCACHE, $(pc_from), built $(date -u -r "$PULLCACHE" '+%F %T UTC' 2>/dev/null)), \`serve --upstream up=http://127.0.0.1:$UP_PORT\` (defaults: tag_ttl 300 s, access log at info) — ${STATUS[pullcache]:-n/a}"
    echo "- clients: $(curl --version | head -n1 | awk '{ print $1, $2 }'), $(wrk --version 2>&1 | head -n1 | awk '{ print $1, $2 }')"
    if [ -s "$WORK/logs/pullcache-metrics.txt" ]; then
        echo
        echo "<details><summary>pullcache /metrics after the run (upstream series)</summary>"
        echo
        echo '```'
        grep -E '^pullcache_(upstream|cache|coalesc|inflight|fetch)' "$WORK/logs/pullcache-metrics.txt" | head -n 40 || true
        echo '```'
        echo
        echo "</details>"
    fi
}

bench_publish
