#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh - side-by-side benchmark: pullcache vs distribution 2.8 (Debian's
# docker-registry) vs nginx serving the same bytes as static files (sendfile;
# the machine's ceiling).
#
#   bash bench/run.sh [--quick] [--build] [--reps N] [--duration SECONDS]
#
# --build first builds the committed HEAD (Release, clean export: bench/build.sh)
# into build-bench/ and benchmarks that binary.
#
# One image is generated at run time in a temp dir (a config blob, a 1 MiB and
# a 256 MiB random blob, an OCI image manifest naming them), pushed with curl
# (POST + monolithic PUT ?digest=) into pullcache and distribution as
# bench:bench, and laid out as files under nginx's root so the same URL paths
# answer there. Then, per round, each server is started alone, every URL is
# checked (200, right byte count), and measured:
#   manifest GET by digest / by tag   wrk -t2 -c32 (keep-alive), req/s
#   blob GET 1 MiB                    wrk -t2 -c32, req/s and MB/s
#   blob GET 256 MiB                  curl -o /dev/null: sequential runs (MB/s
#                                     each, median) and 4 in parallel (aggregate)
# The median over rounds is reported, with ratios pullcache/distribution and
# pullcache/nginx, as a markdown table on stdout and in
# bench/results/<date>.md (<date>-quick.md for --quick). Progress goes to
# stderr. Nothing is asserted: the exit status is 0 when the run completed,
# whatever the numbers (a server that fails its checks gets "n/a").
#
# Everything runs inside a private network namespace (only loopback is up) so
# no traffic can leave the machine and ports never collide with other work;
# BENCH_NETNS=0 runs on the host's loopback instead. Every server is a child
# of this script and is stopped by PID when it exits, pass or fail.
#
# Environment (defaults in brackets):
#   PULLCACHE        pullcache binary [<repo>/build/pullcache]; the pullcache
#                    column is skipped when it is missing or `serve` never answers
#   PULLCACHE_ARGS   extra arguments for `pullcache serve` []
#   BENCH_SERVERS    which servers, in order [nginx distribution pullcache]
#   BENCH_REPS       rounds; each server is measured once per round [3; quick 1]
#   BENCH_DURATION   wrk duration per measurement, seconds [8; quick 2]
#   BENCH_THREADS / BENCH_CONNS   wrk -t / -c [2 / 32]
#   BENCH_SEQ_RUNS   sequential 256 MiB downloads per round [3; quick 2]
#   BENCH_PAR        parallel 256 MiB downloads [4]
#   BENCH_BIG_MIB    size of the big blob in MiB [256]
#   BENCH_PORT_BASE  nginx, distribution, pullcache listen on BASE, +1, +2 [18080]
#   BENCH_OUT        results file [bench/results/<date>[-quick].md]; "-" = none
#   BENCH_KEEP=1     keep the temp dir (blobs, data dirs, logs)
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh" # umask, LC_ALL, REPO
BENCH_NAME=bench

bench_reexec "$@"

QUICK=0 BUILD=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --build) BUILD=1 ;;
    --reps) BENCH_REPS=${2:?--reps N}; shift ;;
    --duration) BENCH_DURATION=${2:?--duration SECONDS}; shift ;;
    -h | --help) bench_help; exit 0 ;;
    *) echo "usage: $0 [--quick] [--build] [--reps N] [--duration SECONDS]" >&2; exit 2 ;;
    esac
    shift
done

if [ "$BUILD" = 1 ]; then
    PULLCACHE=$(bash "$BENCH_DIR/build.sh") || { echo "bench: bench/build.sh failed" >&2; exit 2; }
fi
bench_pullcache build
PULLCACHE_ARGS=${PULLCACHE_ARGS:-}
read -r -a SERVERS <<<"${BENCH_SERVERS:-nginx distribution pullcache}"
if [ "$QUICK" = 1 ]; then
    REPS=${BENCH_REPS:-1} DURATION=${BENCH_DURATION:-2} SEQ_RUNS=${BENCH_SEQ_RUNS:-2}
else
    REPS=${BENCH_REPS:-3} DURATION=${BENCH_DURATION:-8} SEQ_RUNS=${BENCH_SEQ_RUNS:-3}
fi
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}
PAR=${BENCH_PAR:-4}
BIG_MIB=${BENCH_BIG_MIB:-256}
PORT_BASE=${BENCH_PORT_BASE:-18080}
declare -A PORT=([nginx]=$PORT_BASE [distribution]=$((PORT_BASE + 1)) [pullcache]=$((PORT_BASE + 2)))
declare -A LABEL=([nginx]="nginx (sendfile)" [distribution]="distribution 2.8" [pullcache]="pullcache")
RUN_DATE=$(date -u +%F)
RUN_TIME=$(date -u '+%F %T UTC')
bench_out ""

bench_need wrk curl jq nginx docker-registry sha256sum

bench_workdir pc-bench samples # nothing this script or its children write lands in the repo by accident
chmod 755 "$WORK"               # nginx's workers run as nobody
declare -A STATUS=()            # per server: ok, or why it has no numbers

# ---- the image ----------------------------------------------------------------

ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
REPO_NAME=bench
TAG=bench

log "generating blobs in $WORK/img (1 MiB and $BIG_MIB MiB random)"
IMG=$WORK/img
mkdir -p "$IMG"
head -c 1048576 /dev/urandom >"$IMG/small"
head -c $((BIG_MIB * 1048576)) /dev/urandom >"$IMG/big"
SMALL_HEX=$(sha "$IMG/small") BIG_HEX=$(sha "$IMG/big")
jq -jcn --arg a "sha256:$SMALL_HEX" --arg b "sha256:$BIG_HEX" '
    {architecture: "amd64", os: "linux", created: "2024-01-01T00:00:00Z",
     config: {Cmd: ["/bin/true"]},
     rootfs: {type: "layers", diff_ids: [$a, $b]}}' >"$IMG/config"
CONFIG_HEX=$(sha "$IMG/config")
jq -jcn --arg mt "$MT_MANIFEST" --arg mtc "$MT_CONFIG" --arg mtl "$MT_LAYER" \
    --arg c "sha256:$CONFIG_HEX" --argjson cs "$(fsize "$IMG/config")" \
    --arg a "sha256:$SMALL_HEX" --argjson asz "$(fsize "$IMG/small")" \
    --arg b "sha256:$BIG_HEX" --argjson bsz "$(fsize "$IMG/big")" '
    {schemaVersion: 2, mediaType: $mt,
     config: {mediaType: $mtc, digest: $c, size: $cs},
     layers: [{mediaType: $mtl, digest: $a, size: $asz},
              {mediaType: $mtl, digest: $b, size: $bsz}]}' >"$IMG/manifest"
MANIFEST_HEX=$(sha "$IMG/manifest")

# URL path -> local file holding the expected body; the same paths on every server.
P_MAN_DIGEST=/v2/$REPO_NAME/manifests/sha256:$MANIFEST_HEX
P_MAN_TAG=/v2/$REPO_NAME/manifests/$TAG
P_CONFIG=/v2/$REPO_NAME/blobs/sha256:$CONFIG_HEX
P_SMALL=/v2/$REPO_NAME/blobs/sha256:$SMALL_HEX
P_BIG=/v2/$REPO_NAME/blobs/sha256:$BIG_HEX
declare -A BODY=([$P_MAN_DIGEST]=$IMG/manifest [$P_MAN_TAG]=$IMG/manifest
    [$P_CONFIG]=$IMG/config [$P_SMALL]=$IMG/small [$P_BIG]=$IMG/big)
declare -A BODY_HEX=([$P_MAN_DIGEST]=$MANIFEST_HEX [$P_MAN_TAG]=$MANIFEST_HEX
    [$P_CONFIG]=$CONFIG_HEX [$P_SMALL]=$SMALL_HEX [$P_BIG]=$BIG_HEX)
URL_PATHS=("$P_MAN_DIGEST" "$P_MAN_TAG" "$P_CONFIG" "$P_SMALL" "$P_BIG")

# ---- servers ------------------------------------------------------------------

# wait_up NAME: wait until /v2/ answers (any status), at most 15 s, while the
# process lives.
setup_nginx() {
    local d=$WORK/nginx root=$WORK/nginx/root
    mkdir -p "$d/tmp" "$root/v2/$REPO_NAME/blobs" "$root/v2/$REPO_NAME/manifests"
    ln "$IMG/config" "$root$P_CONFIG"
    ln "$IMG/small" "$root$P_SMALL"
    ln "$IMG/big" "$root$P_BIG"
    ln "$IMG/manifest" "$root$P_MAN_DIGEST"
    ln "$IMG/manifest" "$root$P_MAN_TAG"
    cat >"$d/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    server_tokens off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    types { }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:${PORT[nginx]};
        root $root;
        location = /v2/ {
            default_type application/json;
            return 200 '{}';
        }
        location /v2/$REPO_NAME/manifests/ {
            default_type $MT_MANIFEST;
            add_header Docker-Content-Digest sha256:$MANIFEST_HEX;
        }
        location ~ "^/v2/$REPO_NAME/blobs/(sha256:[0-9a-f]{64})\$" {
            default_type application/octet-stream;
            add_header Docker-Content-Digest \$1;
        }
    }
}
CONF
}

setup_distribution() { bench_dist_config "$WORK/dist.yml" "$WORK/dist-data" "${PORT[distribution]}"; }

setup_pullcache() { mkdir -p "$WORK/pc-data"; }

# start_server NAME: start it as a child of this script; 0 once /v2/ answers.
start_server() {
    local s=$1 lf=$WORK/logs/$1.log
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${PORT[$s]}/"; then
        log "$s: something already listens on 127.0.0.1:${PORT[$s]} (set BENCH_PORT_BASE)"
        return 1
    fi
    case $s in
    nginx) nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >>"$lf" 2>&1 & ;;
    distribution) docker-registry serve "$WORK/dist.yml" >>"$lf" 2>&1 & ;;
    pullcache)
        # shellcheck disable=SC2086 # PULLCACHE_ARGS is a list of words
        "$PULLCACHE" serve --listen "127.0.0.1:${PORT[pullcache]}" --data "$WORK/pc-data" \
            $PULLCACHE_ARGS >>"$lf" 2>&1 &
        ;;
    esac
    PID[$s]=$!
    if ! wait_up "$s"; then
        log "$s did not answer on 127.0.0.1:${PORT[$s]} (log: last lines below)"
        tail -n 5 "$lf" >&2 || true
        stop_server "$s"
        return 1
    fi
}

# push_blob NAME FILE: POST an upload, PUT the whole body with ?digest=.
# Prints the PUT's MB/s.
push_blob() {
    local s=$1 f=$2 base="http://127.0.0.1:${PORT[$1]}" h=$WORK/push.h code loc out dig
    dig=sha256:$(sha "$f")
    code=$(curl -sS -X POST -D "$h" -o /dev/null -w '%{http_code}' --max-time 30 \
        "$base/v2/$REPO_NAME/blobs/uploads/") || code=000
    if [ "$code" != 202 ]; then
        log "$s: POST /v2/$REPO_NAME/blobs/uploads/ answered $code, want 202"
        return 1
    fi
    loc=$(header "$h" Location)
    case $loc in
    http://*) ;;
    /*) loc=$base$loc ;;
    *) log "$s: POST /v2/$REPO_NAME/blobs/uploads/: bad Location '$loc'"; return 1 ;;
    esac
    case $loc in *\?*) loc="$loc&digest=$dig" ;; *) loc="$loc?digest=$dig" ;; esac
    out=$(curl -sS -X PUT -T "$f" -H 'Content-Type: application/octet-stream' -H 'Expect:' \
        -D "$h" -o "$WORK/push.body" -w '%{http_code} %{time_total}' --max-time 120 "$loc") ||
        out="000 0"
    read -r code t <<<"$out"
    if [ "$code" != 201 ]; then
        log "$s: PUT $loc ($(fsize "$f") bytes) answered $code, want 201: $(head -c 300 "$WORK/push.body")"
        return 1
    fi
    if [ "$(header "$h" Docker-Content-Digest)" != "$dig" ]; then
        log "$s: PUT of $dig: Docker-Content-Digest is '$(header "$h" Docker-Content-Digest)'"
    fi
    awk -v b="$(fsize "$f")" -v t="$t" 'BEGIN { printf "%.0f\n", (t > 0 ? b / t / 1e6 : 0) }'
}

# push_image NAME: the three blobs, then the manifest as :bench.
push_image() {
    local s=$1 base="http://127.0.0.1:${PORT[$1]}" h=$WORK/push.h code mbps
    push_blob "$s" "$IMG/config" >/dev/null || return 1
    push_blob "$s" "$IMG/small" >/dev/null || return 1
    mbps=$(push_blob "$s" "$IMG/big") || return 1
    echo "$mbps" >>"$WORK/samples/$s.push_big_mbps"
    code=$(curl -sS -X PUT -H "Content-Type: $MT_MANIFEST" --data-binary "@$IMG/manifest" \
        -D "$h" -o "$WORK/push.body" -w '%{http_code}' --max-time 30 \
        "$base/v2/$REPO_NAME/manifests/$TAG") || code=000
    if [ "$code" != 201 ]; then
        log "$s: PUT /v2/$REPO_NAME/manifests/$TAG answered $code, want 201: $(head -c 300 "$WORK/push.body")"
        return 1
    fi
    if [ "$(header "$h" Docker-Content-Digest)" != "sha256:$MANIFEST_HEX" ]; then
        log "$s: manifest PUT: Docker-Content-Digest '$(header "$h" Docker-Content-Digest)', want sha256:$MANIFEST_HEX"
        return 1
    fi
}

# verify NAME FULL: every URL answers 200 with the right byte count (FULL=1:
# and the right bytes, and a manifest Content-Type / digest header).
verify() {
    local s=$1 full=$2 p out code size ct h=$WORK/verify.h body=$WORK/verify.body ok=0
    for p in "${URL_PATHS[@]}"; do
        if [ "$full" = 1 ]; then
            out=$(curl -s -H "$ACCEPT" -D "$h" -o "$body" -w '%{http_code} %{size_download}' \
                --max-time 60 "http://127.0.0.1:${PORT[$s]}$p") || out="000 0"
        else
            out=$(curl -s -H "$ACCEPT" -D "$h" -o /dev/null -w '%{http_code} %{size_download}' \
                --max-time 60 "http://127.0.0.1:${PORT[$s]}$p") || out="000 0"
        fi
        read -r code size <<<"$out"
        if [ "$code" != 200 ] || [ "$size" != "$(fsize "${BODY[$p]}")" ]; then
            log "$s: GET $p: status $code, $size bytes; want 200, $(fsize "${BODY[$p]}") bytes"
            ok=1
            continue
        fi
        [ "$full" = 1 ] || continue
        if [ "$(sha "$body")" != "${BODY_HEX[$p]}" ]; then
            log "$s: GET $p: body is not the pushed bytes"
            ok=1
        fi
        if [ "$(header "$h" Docker-Content-Digest)" != "sha256:${BODY_HEX[$p]}" ]; then
            log "$s: GET $p: Docker-Content-Digest '$(header "$h" Docker-Content-Digest)' (want sha256:${BODY_HEX[$p]}) - noted, not fatal"
        fi
        case $p in */manifests/*)
            ct=$(header "$h" Content-Type)
            [ "$ct" = "$MT_MANIFEST" ] ||
                log "$s: GET $p: Content-Type '$ct', want $MT_MANIFEST - noted, not fatal"
            ;;
        esac
    done
    rm -f "$body"
    return $ok
}

# ---- measurements -------------------------------------------------------------

# sample NAME METRIC VALUE: record one measurement.
sample() { echo "$3" >>"$WORK/samples/$1.$2"; }

# wrk_run NAME METRIC PATH BODY_BYTES: wrk with the shared settings; records
# req/s (METRIC_rps), and for blobs payload MB/s (METRIC_mbps), p50/p99 latency.
wrk_run() {
    local s=$1 m=$2 p=$3 bytes=$4 out line
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "$ACCEPT" \
        -s "$BENCH_DIR/wrk_report.lua" "http://127.0.0.1:${PORT[$s]}$p" 2>&1) || true
    printf '### %s %s %s\n%s\n' "$s" "$m" "$p" "$out" >>"$WORK/logs/wrk.log"
    line=$(grep '^WRK ' <<<"$out" | tail -n1)
    if [ -z "$line" ]; then
        log "$s: wrk $p gave no summary: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
        return 0
    fi
    local -A W=()
    local kv
    for kv in ${line#WRK }; do W[${kv%%=*}]=${kv#*=}; done
    local requests=${W[requests]} duration_us=${W[duration_us]} p50_us=${W[p50_us]} p99_us=${W[p99_us]}
    local connect=${W[connect]} read=${W[read]} write=${W[write]} status=${W[status]} timeout=${W[timeout]}
    local errs=$((connect + read + write + status + timeout))
    local rps
    rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.1f\n", r / (d / 1e6) }')
    sample "$s" "${m}_rps" "$rps"
    sample "$s" "${m}_p50ms" "$(awk -v x="$p50_us" 'BEGIN { printf "%.2f\n", x / 1000 }')"
    sample "$s" "${m}_p99ms" "$(awk -v x="$p99_us" 'BEGIN { printf "%.2f\n", x / 1000 }')"
    [ "$bytes" = 0 ] || sample "$s" "${m}_mbps" "$(awk -v r="$rps" -v b="$bytes" 'BEGIN { printf "%.1f\n", r * b / 1e6 }')"
    if [ "$errs" -ne 0 ]; then
        sample "$s" "${m}_errors" "$errs"
        log "$s: wrk $p: $errs errors (connect $connect, read $read, write $write, non-2xx/3xx $status, timeout $timeout)"
    fi
    log "$s: $m $(printf '%.0f' "$rps") req/s (p99 $(awk -v x="$p99_us" 'BEGIN { printf "%.2f", x / 1000 }') ms)"
}

# big_seq NAME: SEQ_RUNS sequential downloads of the big blob, MB/s each.
big_seq() {
    local s=$1 i out code size t want v got=""
    want=$(fsize "$IMG/big")
    for i in $(seq "$SEQ_RUNS"); do
        out=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' --max-time 120 \
            "http://127.0.0.1:${PORT[$s]}$P_BIG") || out="000 0 0"
        read -r code size t <<<"$out"
        if [ "$code" != 200 ] || [ "$size" != "$want" ]; then
            log "$s: big blob run $i: status $code, $size bytes (want 200, $want)"
            sample "$s" big_seq_errors 1
            continue
        fi
        v=$(awk -v b="$size" -v t="$t" 'BEGIN { printf "%.1f\n", b / t / 1e6 }')
        sample "$s" big_seq_mbps "$v"
        got="$got $v"
    done
    log "$s: big blob sequential:$got MB/s"
}

# big_par NAME: PAR parallel downloads of the big blob; aggregate MB/s over
# the wall time of the whole batch.
big_par() {
    local s=$1 i t0 t1 pids=() bad=0 want code size
    want=$(fsize "$IMG/big")
    t0=$(date +%s%N)
    for i in $(seq "$PAR"); do
        curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 120 \
            "http://127.0.0.1:${PORT[$s]}$P_BIG" >"$WORK/par.$i" 2>/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    t1=$(date +%s%N)
    for i in $(seq "$PAR"); do
        read -r code size <"$WORK/par.$i" || true
        if [ "${code:-000}" != 200 ] || [ "${size:-0}" != "$want" ]; then
            log "$s: parallel big blob $i: status ${code:-none}, ${size:-0} bytes"
            bad=1
        fi
    done
    if [ "$bad" = 1 ]; then
        sample "$s" big_par_errors 1
        return 0
    fi
    sample "$s" big_par_mbps "$(awk -v b="$((want * PAR))" -v ns="$((t1 - t0))" 'BEGIN { printf "%.1f\n", b / (ns / 1e9) / 1e6 }')"
    log "$s: big blob ${PAR} parallel: $(tail -n1 "$WORK/samples/$s.big_par_mbps") MB/s aggregate"
}

measure() {
    local s=$1
    wrk_run "$s" man_digest "$P_MAN_DIGEST" 0
    wrk_run "$s" man_tag "$P_MAN_TAG" 0
    wrk_run "$s" blob1m "$P_SMALL" "$(fsize "$IMG/small")"
    big_seq "$s"
    big_par "$s"
}

# ---- setup: push into the registries, lay out nginx ---------------------------

active=()
for s in "${SERVERS[@]}"; do
    case $s in
    nginx | distribution) ;;
    pullcache)
        if [ ! -x "$PULLCACHE" ]; then
            STATUS[$s]="skipped: no binary at $PULLCACHE"
            log "pullcache: ${STATUS[$s]}"
            continue
        fi
        ;;
    *) echo "bench: unknown server '$s' in BENCH_SERVERS" >&2; exit 2 ;;
    esac
    "setup_$s"
    if ! start_server "$s"; then
        STATUS[$s]="did not start (no answer on /v2/)"
        continue
    fi
    if [ "$s" != nginx ]; then
        log "$s: pushing $REPO_NAME:$TAG (config, 1 MiB, $BIG_MIB MiB, manifest)"
        if ! push_image "$s"; then
            STATUS[$s]="push failed"
            stop_server "$s"
            continue
        fi
    fi
    if ! verify "$s" 1; then
        STATUS[$s]="failed the checks (status, byte count or bytes)"
        stop_server "$s"
        continue
    fi
    stop_server "$s"
    STATUS[$s]=ok
    active+=("$s")
done
# Push writes must not be flushing while we measure.
sync

# ---- rounds -------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
n=${#active[@]}
for r in $(seq "$REPS"); do
    for k in $(seq 0 $((n - 1))); do
        s=${active[$(((k + r - 1) % n))]} # rotate the order each round
        [ "${STATUS[$s]}" = ok ] || continue
        log "round $r/$REPS: $s"
        if ! start_server "$s"; then
            STATUS[$s]="did not restart in round $r"
            continue
        fi
        if ! verify "$s" 0; then
            STATUS[$s]="failed the checks in round $r"
            stop_server "$s"
            continue
        fi
        measure "$s"
        stop_server "$s"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report -------------------------------------------------------------------

median() {
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) exit
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# med NAME METRIC: median of the samples, empty when none (or the server is not ok).
med() {
    [ "${STATUS[$1]:-}" = ok ] || return 0
    [ -s "$WORK/samples/$1.$2" ] || return 0
    median <"$WORK/samples/$1.$2"
}
errs() { [ -s "$WORK/samples/$1.$2_errors" ] && awk '{ s += $1 } END { print s }' "$WORK/samples/$1.$2_errors" || true; }
fmt() { # fmt VALUE DECIMALS
    [ -n "$1" ] && printf "%.${2}f" "$1" || printf 'n/a'
}
ratio() {
    if [ -n "$1" ] && [ -n "$2" ] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        printf 'n/a'
    fi
}

git_rev() { git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown; }
pc_version() {
    [ -x "$PULLCACHE" ] || { echo "n/a"; return; }
    local v from rev_file
    v=$("$PULLCACHE" --version 2>/dev/null | head -n1) || true
    rev_file=$(dirname "$PULLCACHE")/BENCH_REV
    if [ -f "$rev_file" ] && ! [ "$PULLCACHE" -nt "$rev_file" ]; then
        from="built by bench/build.sh from commit $(cut -c1-12 "$rev_file")"
    else
        from="built from the work tree; repo HEAD $(git_rev)"
        [ -z "$(git -C "$REPO" status --porcelain -- src CMakeLists.txt 2>/dev/null)" ] ||
            from="$from, with uncommitted changes in src/"
    fi
    echo "${v:-unknown} ($PULLCACHE, $from, built $(date -u -r "$PULLCACHE" '+%F %T UTC'))"
}

# row LABEL UNIT METRIC DECIMALS GOAL(0.5|0.8|-) ERRKEY
row() {
    local label=$1 unit=$2 metric=$3 dec=$4 goal=$5 ek=$6 ng di pc r_pd r_pn g flag s e
    ng=$(med nginx "$metric") di=$(med distribution "$metric") pc=$(med pullcache "$metric")
    r_pd=$(ratio "$pc" "$di") r_pn=$(ratio "$pc" "$ng")
    if [ "$goal" = - ]; then
        g="-"
    elif [ "$r_pn" = n/a ]; then
        g="≥ $goal: n/a"
    elif awk -v r="$r_pn" -v g="$goal" 'BEGIN { exit !(r >= g) }'; then
        g="≥ $goal: met"
    else
        g="≥ $goal: **not met**"
    fi
    local cells=()
    for s in nginx distribution pullcache; do
        local v
        case $s in nginx) v=$ng ;; distribution) v=$di ;; pullcache) v=$pc ;; esac
        flag=""
        e=$(errs "$s" "$ek")
        [ -z "$e" ] || flag=" (!$e err)"
        cells+=("$(fmt "$v" "$dec")$flag")
    done
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$unit" "${cells[@]}" "$r_pd" "$r_pn" "$g"
}

detail_row() { # detail_row NAME METRIC LABEL
    local f=$WORK/samples/$1.$2
    [ -s "$f" ] || return 0
    printf '| %s | %s | %s | %s |\n' "${LABEL[$1]}" "$3" "$(median <"$f")" "$(tr '\n' ' ' <"$f" | sed 's/ $//')"
}

report() {
    echo "## pullcache benchmark, $RUN_TIME$([ "$QUICK" = 1 ] && echo ' (--quick)' || true)"
    echo
    echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r); load average $LOAD_BEFORE before, $LOAD_AFTER after (shared machine)."
    echo "Settings: wrk -t$THREADS -c$CONNS -d${DURATION}s (keep-alive, OCI Accept header); $SEQ_RUNS sequential + $PAR parallel curl downloads of the $BIG_MIB MiB blob per round; $REPS round(s), servers one at a time, order rotated each round; median over rounds. MB = 10^6 bytes; blob MB/s counts body bytes only."
    echo
    echo "| scenario | unit | ${LABEL[nginx]} | ${LABEL[distribution]} | ${LABEL[pullcache]} | pullcache/distribution | pullcache/nginx | goal (pullcache/nginx) |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    row "manifest GET by digest" "req/s" man_digest_rps 0 0.5 man_digest
    row "manifest GET by tag" "req/s" man_tag_rps 0 0.5 man_tag
    row "blob GET 1 MiB" "req/s" blob1m_rps 0 - blob1m
    row "blob GET 1 MiB" "MB/s" blob1m_mbps 0 0.8 blob1m
    row "blob GET $BIG_MIB MiB, 1 client" "MB/s" big_seq_mbps 0 0.8 big_seq
    row "blob GET $BIG_MIB MiB, $PAR clients" "MB/s (sum)" big_par_mbps 0 0.8 big_par
    row "manifest GET by digest, p99 latency" "ms" man_digest_p99ms 2 - man_digest
    row "blob push $BIG_MIB MiB (PUT, once)" "MB/s" push_big_mbps 0 - push_big
    echo
    echo "Servers:"
    for s in nginx distribution pullcache; do
        local why=${STATUS[$s]:-not in BENCH_SERVERS}
        case $s in
        nginx) echo "- ${LABEL[$s]}: $(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes auto, sendfile, access_log off — $why" ;;
        distribution) echo "- ${LABEL[$s]}: docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $3 }'), filesystem storage, inmemory blob descriptor cache, access log off — $why" ;;
        pullcache) echo "- ${LABEL[$s]}: $(pc_version) serve --listen --data${PULLCACHE_ARGS:+ $PULLCACHE_ARGS} — $why" ;;
        esac
    done
    echo "- clients: $(wrk --version 2>&1 | head -n1 | awk '{ print $1, $2 }'), $(curl --version | head -n1 | awk '{ print $1, $2 }')"
    echo
    echo "<details><summary>All samples</summary>"
    echo
    echo "| server | metric | median | samples |"
    echo "|---|---|---:|---|"
    for s in nginx distribution pullcache; do
        for m in man_digest_rps man_tag_rps blob1m_rps blob1m_mbps big_seq_mbps big_par_mbps \
            man_digest_p50ms man_digest_p99ms man_tag_p50ms man_tag_p99ms blob1m_p50ms blob1m_p99ms push_big_mbps; do
            detail_row "$s" "$m" "$m"
        done
    done
    echo
    echo "</details>"
}

bench_publish
