#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# s3.sh - blobs on an object store (issue 14), side by side in one run: a
# one-node Ceph RGW on loopback (tests/tools/rgw.sh) and a PostgreSQL
# (tests/tools/pg.sh) started here, then
#   rgw      RGW itself: plain object GETs of the same objects (presigned
#            URLs), the reference for blob throughput
#   pcs3     pullcache, blobs on S3 + meta on PostgreSQL, proxying the bytes
#   pcs3r    the same stores, storage.blobs.redirect: true (307 to RGW)
#   pcfs     pullcache on fs + SQLite (the default)
#   dist     distribution 2.8 (Debian's docker-registry), its s3 driver on
#            the same bucket, redirect disabled (it proxies)
#   distr    the same with its default: 307 to a presigned URL
#   pc3      three pcs3-like replicas (proxying) behind nginx (round robin,
#            keep-alive upstream connections, no buffering)
#
#   bash bench/s3.sh [--quick]
#
# One image (a config, a 1 MiB and a 256 MiB random blob, an OCI manifest)
# is pushed with curl into pcs3 (pcs3r shares its stores), pcfs and dist
# (distr shares its root directory). Every URL is checked first (a whole GET
# into a file, sha256 compared; its speed is reported as the "first GET":
# pullcache hashes the first whole GET of a stored version, later ones go
# out unhashed). Then, one target at a time:
#   manifest by digest   wrk -t2 -c32, req/s (not on rgw)
#   blob 1 MiB           wrk -t2 -c32, req/s and MB/s (redirect targets: the
#                        307 answers, wrk does not follow them)
#   blob 256 MiB         curl -L -o /dev/null, sequential (3; --quick 2):
#                        median MB/s, and the CPU time the serving process
#                        (radosgw for rgw) spent per GET
# Then the RSS of pcs3 while 100 clients (curl | sha256sum, every one
# verified) stream the 256 MiB blob from S3 at once, sampled every 0.2 s
# (full run: also dist). Goals (issue 14): pcs3 manifests >= 10x dist, pcs3
# 256 MiB >= 0.8x rgw, pcs3r CPU per blob near zero, pcs3 peak RSS <= 64 MiB;
# the report says which were met. Nothing is asserted: exit 0 when the run
# completed. Output: markdown on stdout and in bench/results/s3-<date>[-quick].md;
# progress on stderr. Runs in a private network namespace (bench/lib.sh).
#
# Environment: PULLCACHE (binary; default build/pullcache), BENCH_OUT (report
# path or -), BENCH_PORT_BASE (default 18280), BENCH_DURATION (wrk seconds;
# 8, --quick 3), BENCH_CLIENTS (RSS clients; 100), BENCH_KEEP=1 keeps the
# temp dir, BENCH_TARGETS (the targets measured, e.g. "rgw pcs3 pcs3r"; rgw
# always), BENCH_PIN=1: RGW, PostgreSQL and the clients (curl, wrk) on CPU 0,
# the registries (and nginx) on CPU 1 - a registry on cores of its own, as
# in a deployment, instead of sharing RGW's (taskset).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/lib.sh"
bench_quick_args "$@"
bench_reexec "$@"

BENCH_NAME=s3
RUN_DATE=$(date -u +%F)
bench_pullcache build
bench_out s3-
bench_need wrk curl jq nginx docker-registry sha256sum radosgw ceph-mon ceph-osd
BASE=${BENCH_PORT_BASE:-18280}
declare -A PORT=([rgw]=$BASE [pcs3]=$((BASE + 1)) [pcs3r]=$((BASE + 2)) [pcfs]=$((BASE + 3))
    [dist]=$((BASE + 4)) [distr]=$((BASE + 5)) [pc3]=$((BASE + 6)) [rep1]=$((BASE + 10))
    [rep2]=$((BASE + 11)) [rep3]=$((BASE + 12)))
declare -A LABEL=([rgw]="RGW direct (plain GET)" [pcs3]="pullcache S3+PostgreSQL, proxy"
    [pcs3r]="pullcache S3+PostgreSQL, redirect" [pcfs]="pullcache fs+SQLite"
    [dist]="distribution 2.8 s3, proxy" [distr]="distribution 2.8 s3, redirect"
    [pc3]="3 pullcache S3+PostgreSQL replicas (proxy) behind nginx")
TARGETS=(rgw pcs3 pcs3r pcfs dist distr pc3)
if [ -n "${BENCH_TARGETS:-}" ]; then
    read -r -a TARGETS <<<"rgw ${BENCH_TARGETS//rgw/}"
fi
PIN=${BENCH_PIN:-0}
CL=() # the clients' prefix
if [ "$PIN" = 1 ]; then
    bench_need taskset
    [ "$(nproc)" -ge 2 ] || { log "BENCH_PIN=1 needs 2 CPUs"; exit 2; }
    CL=(taskset -c 0)
fi
# pin CPU PID...: every thread of each PID (and what they start later) on CPU
pin() {
    local c=$1 p
    shift
    [ "$PIN" = 1 ] || return 0
    for p in "$@"; do taskset -a -p -c "$c" "$p" >/dev/null; done
}
if [ "$QUICK" = 1 ]; then DURATION=${BENCH_DURATION:-3} SEQ=2; else DURATION=${BENCH_DURATION:-8} SEQ=3; fi
CLIENTS=${BENCH_CLIENTS:-100}
BIG_MIB=256
ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json"
TCK=$(getconf CLK_TCK)
bench_workdir pc-bench-s3 img samples out pcfs-data pcs3-data pcs3r-data rep1-data rep2-data rep3-data nginx/tmp
chmod 755 "$WORK" # PostgreSQL runs as postgres
bench_cleanup_hook() {
    for s in pc3 rep1 rep2 rep3 pcs3 pcs3r pcfs dist distr; do stop_server "$s"; done
    bash "$REPO/tests/tools/rgw.sh" stop "$WORK/rgw" >/dev/null 2>&1 || true
    bash "$REPO/tests/tools/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
}

# ---- stores -------------------------------------------------------------------

log "starting radosgw and PostgreSQL"
bash "$REPO/tests/tools/rgw.sh" start "$WORK/rgw" "${PORT[rgw]}" >"$WORK/logs/rgw-start.log" 2>&1 ||
    { log "radosgw did not start"; exit 1; }
. "$WORK/rgw/env"
bash "$REPO/tests/tools/pg.sh" start "$WORK/pg" $((BASE + 9)) >"$WORK/logs/pg-start.log" 2>&1 ||
    { log "PostgreSQL did not start"; exit 1; }
. "$WORK/pg/env"
export PC_PG_CONNINFO
pin 0 $(awk '{ print $2 }' "$WORK/rgw/pids") "$PC_PG_PID" # PostgreSQL's backends fork from it
printf 'aws_access_key_id = %s\naws_secret_access_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/s3.cred"
chmod 600 "$WORK/s3.cred"

# ---- the image ----------------------------------------------------------------

log "generating the image (1 MiB and $BIG_MIB MiB random blobs)"
IMG=$WORK/img
LAYERS="1 $BIG_MIB"
bench_gen_image
SMALL=sha256:$(sha "$IMG/layer1") BIG=sha256:$(sha "$IMG/layer2")
CONFIG=sha256:$(sha "$IMG/config") MANIFEST=sha256:$(sha "$IMG/manifest")

# ---- servers ------------------------------------------------------------------

pc_config() { # FILE DATA REDIRECT(true|false|fs)
    if [ "$3" = fs ]; then
        printf 'storage:\n  data: %s\n' "$2" >"$1"
        return
    fi
    cat >"$1" <<YML
storage:
  data: $2
  blobs:
    driver: s3
    endpoint: $S3_ENDPOINT
    bucket: $S3_BUCKET
    region: $S3_REGION
    path_style: true
    credentials_file: $WORK/s3.cred
    redirect: $3
    redirect_ttl: 600
  meta:
    driver: postgres
    conninfo_env: PC_PG_CONNINFO
YML
}

dist_config() { # FILE PORT REDIRECT_DISABLE
    cat >"$1" <<YML
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  s3:
    accesskey: $S3_ACCESS_KEY
    secretkey: $S3_SECRET_KEY
    region: us-east-1
    regionendpoint: $S3_ENDPOINT
    bucket: $S3_BUCKET
    secure: false
    v4auth: true
    rootdirectory: /distribution
  cache: {blobdescriptor: inmemory}
  maintenance: {uploadpurging: {enabled: false}}
  redirect: {disable: $3}
http:
  addr: 127.0.0.1:$2
  secret: pullcache-bench
YML
}

start() {
    local s=$1 lf=$WORK/logs/$1.log
    case $s in
    pcs3 | pcs3r | pcfs | rep[123])
        local r=false
        [ "$s" != pcs3r ] || r=true
        [ "$s" != pcfs ] || r=fs
        pc_config "$WORK/$s.yml" "$WORK/$s-data" "$r"
        "$PULLCACHE" serve --config "$WORK/$s.yml" --listen "127.0.0.1:${PORT[$s]}" >>"$lf" 2>&1 &
        ;;
    dist | distr)
        local dis=true
        [ "$s" = dist ] || dis=false
        dist_config "$WORK/$s.yml" "${PORT[$s]}" "$dis"
        # AWS_CA_BUNDLE (set on some hosts) makes its AWS SDK panic with a
        # plain-HTTP endpoint: "unable to load custom CA bundle"
        env -u AWS_CA_BUNDLE docker-registry serve "$WORK/$s.yml" >>"$lf" 2>&1 &
        ;;
    pc3)
        nginx_config "$WORK/nginx"
        nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >>"$lf" 2>&1 &
        ;;
    esac
    PID[$s]=$!
    pin 1 "${PID[$s]}"
    wait_up "$s" || { log "$s did not start"; exit 1; }
}

nginx_config() { # DIR
    cat >"$1/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes auto;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    upstream replicas {
        server 127.0.0.1:${PORT[rep1]};
        server 127.0.0.1:${PORT[rep2]};
        server 127.0.0.1:${PORT[rep3]};
        keepalive 64;
    }
    server {
        listen 127.0.0.1:${PORT[pc3]};
        location / {
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
CONF
}

push_blob() { # TARGET FILE DIGEST
    local base="http://127.0.0.1:${PORT[$1]}" loc
    loc=$(curl -sS -X POST -D - -o /dev/null "$base/v2/bench/s3/blobs/uploads/" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
    case $loc in http*) ;; *) loc=$base$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=$3" ;; *) loc="$loc?digest=$3" ;; esac
    [ "$(curl -sS -X PUT -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
        --data-binary "@$2" "$loc")" = 201 ] || { log "$1: push of $3 failed"; exit 1; }
}

push_image() { # TARGET
    push_blob "$1" "$IMG/config" "$CONFIG"
    push_blob "$1" "$IMG/layer1" "$SMALL"
    push_blob "$1" "$IMG/layer2" "$BIG"
    [ "$(curl -sS -X PUT -o /dev/null -w '%{http_code}' -H "Content-Type: $MT_MANIFEST" \
        --data-binary "@$IMG/manifest" "http://127.0.0.1:${PORT[$1]}/v2/bench/s3/manifests/bench")" = 201 ] ||
        { log "$1: manifest push failed"; exit 1; }
}

for s in pcs3 pcs3r pcfs dist distr rep1 rep2 rep3 pc3; do start "$s"; done
log "pushing into pcs3, pcfs and dist"
for s in pcs3 pcfs dist; do push_image "$s"; done

# URLs per target: the manifest, the 1 MiB and the 256 MiB blob.
declare -A U_MAN U_SMALL U_BIG
for s in pcs3 pcs3r pcfs dist distr pc3; do
    b=http://127.0.0.1:${PORT[$s]}/v2/bench/s3
    U_MAN[$s]=$b/manifests/$MANIFEST U_SMALL[$s]=$b/blobs/$SMALL U_BIG[$s]=$b/blobs/$BIG
done
# rgw: the objects pullcache stored, by the presigned URLs pcs3r hands out
presigned() { curl -sS -o /dev/null -w '%{redirect_url}' "$1"; }
U_SMALL[rgw]=$(presigned "${U_SMALL[pcs3r]}") U_BIG[rgw]=$(presigned "${U_BIG[pcs3r]}")
case ${U_BIG[rgw]} in "$S3_ENDPOINT"/*) ;; *) log "pcs3r gave no presigned URL"; exit 1 ;; esac

pid_of() {
    case $1 in
    rgw) awk '$1 == "rgw" { print $2 }' "$WORK/rgw/pids" ;;
    pc3) echo "${PID[rep1]} ${PID[rep2]} ${PID[rep3]}" ;; # the replicas' CPU, not nginx's
    *) echo "${PID[$1]}" ;;
    esac
}
cpu_ticks() { local p t=0; for p in $1; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }
sample() { echo "$3" >>"$WORK/samples/$1.$2"; }
med() { [ -s "$WORK/samples/$1.$2" ] && sort -n "$WORK/samples/$1.$2" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- checks (and the first GET of each) ---------------------------------------

declare -A OK
for s in "${TARGETS[@]}"; do
    OK[$s]=1
    for what in small big; do
        var=U_${what^^}[$s]
        f=$IMG/layer1 && [ "$what" = small ] || f=$IMG/layer2
        out=$(curl -sSL -o "$WORK/out/check" -w '%{http_code} %{speed_download}' --max-time 300 "${!var}") || out="000 0"
        read -r code speed <<<"$out"
        if [ "$code" != 200 ] || ! cmp -s "$WORK/out/check" "$f"; then
            log "$s: $what blob check failed (status $code)"
            OK[$s]=0
        fi
        [ "$what" != big ] || sample "$s" big_first "$(awk -v v="$speed" 'BEGIN { printf "%.0f", v / 1e6 }')"
    done
    if [ "$s" != rgw ]; then
        got=$(curl -sS -H "$ACCEPT" "${U_MAN[$s]}" | sha256sum | cut -d' ' -f1)
        [ "sha256:$got" = "$MANIFEST" ] || { log "$s: manifest check failed"; OK[$s]=0; }
    fi
    rm -f "$WORK/out/check"
done

# ---- measurements -------------------------------------------------------------

wrk_run() { # TARGET METRIC URL BYTES
    local out line
    out=$("${CL[@]}" wrk -t2 -c32 -d"${DURATION}s" -H "$ACCEPT" -s "$BENCH_DIR/wrk_report.lua" "$3" 2>&1) || true
    printf '### %s %s\n%s\n' "$1" "$2" "$out" >>"$WORK/logs/wrk.log"
    line=$(grep '^WRK ' <<<"$out" | tail -n1)
    [ -n "$line" ] || { log "$1: wrk $2 gave no summary"; return 0; }
    local -A W=()
    for kv in ${line#WRK }; do W[${kv%%=*}]=${kv#*=}; done
    local rps
    rps=$(awk -v r="${W[requests]}" -v d="${W[duration_us]}" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    sample "$1" "${2}_rps" "$rps"
    [ "$4" = 0 ] || sample "$1" "${2}_mbps" "$(awk -v r="$rps" -v b="$4" 'BEGIN { printf "%.0f", r * b / 1e6 }')"
    local errs=$((W[connect] + W[read] + W[write] + W[status] + W[timeout]))
    [ "$errs" = 0 ] || { sample "$1" "${2}_errors" "$errs"; log "$1: wrk $2: $errs errors"; }
    log "$1: $2 $rps req/s"
}

for s in "${TARGETS[@]}"; do
    [ "${OK[$s]}" = 1 ] || continue
    [ "$s" = rgw ] || wrk_run "$s" man "${U_MAN[$s]}" 0
    bytes=$(fsize "$IMG/layer1")
    case $s in pcs3r | distr) bytes=0 ;; esac # 307s: no body
    wrk_run "$s" small "${U_SMALL[$s]}" "$bytes"
    pid=$(pid_of "$s")
    c0=$(cpu_ticks "$pid")
    for i in $(seq "$SEQ"); do
        out=$("${CL[@]}" curl -sSL -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' --max-time 300 "${U_BIG[$s]}") || out="000 0 0"
        read -r code size speed <<<"$out"
        if [ "$code" != 200 ] || [ "$size" != "$(fsize "$IMG/layer2")" ]; then
            log "$s: big run $i: status $code, $size bytes"
            continue
        fi
        sample "$s" big "$(awk -v v="$speed" 'BEGIN { printf "%.0f", v / 1e6 }')"
    done
    c1=$(cpu_ticks "$pid")
    sample "$s" big_cpu_ms "$(awk -v a="$c0" -v b="$c1" -v t="$TCK" -v n="$SEQ" 'BEGIN { printf "%.0f", (b - a) * 1000 / t / n }')"
    log "$s: 256 MiB median $(med "$s" big) MB/s, $(med "$s" big_cpu_ms) ms CPU per GET"
done

# ---- RSS while CLIENTS stream the big blob ------------------------------------

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
RSS_ROWS=()
rss_run() { # TARGET
    local s=$1 pid=${PID[$1]} sampler t0 t1 ok=0 before
    before=$(rss_kib "$pid")
    rm -f "$WORK/out/"*
    (while :; do rss_kib "$pid" >>"$WORK/out/rss"; sleep 0.2; done) &
    sampler=$!
    t0=$(date +%s.%N)
    local pids=()
    for i in $(seq "$CLIENTS"); do
        (curl -sS --max-time 900 "${U_BIG[$s]}" | sha256sum | cut -d' ' -f1 >"$WORK/out/c$i") &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    t1=$(date +%s.%N)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    for i in $(seq "$CLIENTS"); do [ "$(cat "$WORK/out/c$i" 2>/dev/null)" = "${BIG#sha256:}" ] && ok=$((ok + 1)); done
    local peak
    peak=$(sort -n "$WORK/out/rss" | tail -1)
    sample "$s" rss_peak_mib "$(awk -v p="$peak" 'BEGIN { printf "%.1f", p / 1024 }')"
    RSS_ROWS+=("$(awk -v s="${LABEL[$s]}" -v b="$before" -v p="$peak" -v t0="$t0" -v t1="$t1" -v n="$CLIENTS" \
        -v mib="$BIG_MIB" -v ok="$ok" 'BEGIN { t = t1 - t0; printf "| %s | %.0f | **%.1f** | %.1f | %.0f | %d/%d |", s, b / 1024, p / 1024, t, n * mib * 1.048576 / t, ok, n }')")
    log "$s: $CLIENTS clients: peak RSS $(awk -v p="$peak" 'BEGIN { printf "%.1f", p / 1024 }') MiB, $ok/$CLIENTS verified"
}
if [ "$CLIENTS" -gt 0 ]; then # BENCH_CLIENTS=0: no RSS run
    [ "${OK[pcs3]}" = 1 ] && rss_run pcs3
    [ "$QUICK" = 1 ] || { [ "${OK[dist]}" = 1 ] && rss_run dist; }
fi

# ---- report -------------------------------------------------------------------

v() { local x; x=$(med "$1" "$2") && echo "$x" || echo n/a; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
goal() { awk -v r="$1" -v g="$2" -v le="${3:-}" 'BEGIN { if (r == "n/a") print "n/a"; else if (le ? r + 0 <= g : r + 0 >= g) print "met"; else print "**missed**" }'; }
report() {
    echo "# Blobs on S3: pullcache vs distribution 2.8 vs RGW ($RUN_DATE$([ "$QUICK" = 1 ] && echo ", quick"))"
    echo
    echo "One-node Ceph RGW (memstore OSD) and PostgreSQL 15 on loopback, $(nproc) cores shared with other work$([ "$PIN" != 1 ] || echo "; pinned: RGW, PostgreSQL and the clients on CPU 0, the registries on CPU 1") (load average $(cut -d' ' -f1-3 /proc/loadavg) at the end). wrk -t2 -c32 -d${DURATION}s; 256 MiB: $SEQ sequential curl -L runs, median; CPU: the serving process's user+system time per 256 MiB GET (radosgw's for RGW direct; for redirect targets only the 307, RGW serves the bytes). MB = 10^6 bytes."
    echo
    echo "| target | manifest by digest req/s | 1 MiB blob req/s | 1 MiB MB/s | 256 MiB first GET MB/s | 256 MiB MB/s | CPU ms per 256 MiB GET |"
    echo "|---|---|---|---|---|---|---|"
    for s in "${TARGETS[@]}"; do
        if [ "${OK[$s]}" != 1 ]; then echo "| ${LABEL[$s]} | checks failed | | | | | |"; continue; fi
        local man small smb
        man=$(v "$s" man_rps) small=$(v "$s" small_rps) smb=$(v "$s" small_mbps)
        [ "$s" != rgw ] || man="-"
        case $s in pcs3r | distr) small="$small (307s)" smb="-" ;; esac
        echo "| ${LABEL[$s]} | $man | $small | $smb | $(v "$s" big_first) | $(v "$s" big) | $(v "$s" big_cpu_ms) |"
    done
    echo
    local r1 r2 r3
    r1=$(ratio "$(v pcs3 man_rps)" "$(v dist man_rps)")
    r2=$(ratio "$(v pcs3 big)" "$(v rgw big)")
    r3=$(ratio "$(v pcs3 small_mbps)" "$(v rgw small_mbps)")
    echo "| goal (issue 14) | value | |"
    echo "|---|---|---|"
    echo "| manifests: pcs3 / dist >= 10 | $r1 | $(goal "$r1" 10) |"
    local r4
    r4=$(ratio "$(v pc3 man_rps)" "$(v dist man_rps)")
    echo "| manifests: pc3 (3 replicas + nginx) / dist | $r4 | |"
    echo "| 256 MiB: pcs3 / RGW direct >= 0.8 | $r2 | $(goal "$r2" 0.8) |"
    echo "| 1 MiB MB/s: pcs3 / RGW direct (>= 0.8) | $r3 | $(goal "$r3" 0.8) |"
    echo "| redirect: pcs3r CPU ms per 256 MiB GET (near 0; pcs3: $(v pcs3 big_cpu_ms)) | $(v pcs3r big_cpu_ms) | |"
    echo "| RSS: pcs3 peak with $CLIENTS clients <= 64 MiB | $(v pcs3 rss_peak_mib) MiB | $(goal "$(v pcs3 rss_peak_mib)" 64 le) |"
    echo
    echo "RSS while $CLIENTS clients stream the $BIG_MIB MiB blob at once (MiB, VmRSS every 0.2 s):"
    echo
    echo "| target | RSS before | peak RSS | seconds | MB/s (all clients) | verified |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${RSS_ROWS[@]}"
    echo
    echo "- pullcache $("$PULLCACHE" --version | awk '{print $2}'), docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}'), $(radosgw --version | awk '{print $1, $2, $3}'), $(wrk --version 2>&1 | head -n1 | awk '{print $1, $2}'), $(curl --version | head -n1 | awk '{print $1, $2}')."
    echo "- first GET: the check download, after the push (pullcache: hashed while it streams; later GETs of that version go out unhashed)."
}
bench_publish
