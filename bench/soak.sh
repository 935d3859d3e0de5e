#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# soak.sh - a long run against one pullcache: loadgen pulling through the
# cache from a flaky fake upstream while wrk holds 500 connections on cached
# manifests; records RSS and open fds of serve from start to end.
#
#   bash bench/soak.sh [--quick] [--seconds N]
#
# Default 1800 s (--quick 120 s). The upstream is tests/tools/fakeupstream.py
# with a flaky scenario: every 7th manifest request answers 503, the first
# GET of every big blob is reset after 5000 bytes, every 11th blob GET stalls
# 2 s. serve mirrors it as "flaky" with tag_ttl 1 s (every pull revalidates
# its tag) and cache.max_size 1 byte (every 5 minutes eviction drops the
# mirrored layers, so they are fetched again through the faults). Load:
#   loadgen -n 40 -c 16 over 4 images (full pulls, every digest verified)
#   wrk -t2 -c500 on GET /v2/flaky/library/test/manifests/<digest>
# Reported: loadgen pulls ok/failed by error, wrk requests and non-2xx, serve's
# RSS and fd count at start, max and end (sampled every 5 s), its log's 5xx
# answers. The goal (issue 12): no error that is not the upstream's, RSS and
# fds flat. Nothing is asserted; output on stdout and in
# bench/results/soak-<date>[-quick].md.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/lib.sh"
SECONDS_RUN=""
orig=("$@")
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_RUN=$2; shift ;;
    *) args+=("$1") ;;
    esac
    shift
done
bench_quick_args "${args[@]+"${args[@]}"}"
bench_reexec "${orig[@]+"${orig[@]}"}"

BENCH_NAME=soak
RUN_DATE=$(date +%Y-%m-%d)
bench_pullcache build
bench_out soak-
bench_need curl jq wrk python3
[ -n "$SECONDS_RUN" ] || { [ "$QUICK" = 1 ] && SECONDS_RUN=120 || SECONDS_RUN=1800; }
BASE=${BENCH_PORT_BASE:-5700}
declare -A PORT=([pullcache]=$BASE [fake]=$((BASE + 1)))
bench_workdir pc-bench-soak img pc-data

log "making 4 test images"
bash "$REPO/tests/tools/mkimage.sh" -b 8 "$WORK/img" soak >"$WORK/logs/mkimage.log" 2>&1
cat >"$WORK/flaky.json" <<'JSON'
{"description": "soak: 503 on every 7th manifest request, the first GET of a big blob reset, every 11th blob GET stalled 2 s",
 "rules": [
  {"id": "manifest 503", "kind": "manifest", "per": "rule", "after": "cycle",
   "replies": ["pass", "pass", "pass", "pass", "pass", "pass", {"status": 503, "body": "unavailable"}]},
  {"id": "reset big blob", "method": "GET", "kind": "blob", "min_size": 65536,
   "replies": [{"reset_after_bytes": 5000}], "after": "pass"},
  {"id": "stall", "method": "GET", "kind": "blob", "per": "rule", "after": "cycle",
   "replies": ["pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", {"delay_ms": 2000}]}
 ]}
JSON
python3 "$REPO/tests/tools/fakeupstream.py" --port "${PORT[fake]}" --scenario "$WORK/flaky.json" \
    --repo "library/test=$WORK/img" --ready-file "$WORK/fake.ready" >"$WORK/logs/fake.log" 2>&1 &
PID[fake]=$!
for _ in $(seq 100); do [ -f "$WORK/fake.ready" ] && break; sleep 0.1; done
[ -f "$WORK/fake.ready" ] || { log "the fake upstream did not start"; exit 1; }
cat >"$WORK/pc.yml" <<YML
upstreams:
  - name: flaky
    url: http://127.0.0.1:${PORT[fake]}
    tag_ttl: 1
cache:
  max_size: 1
http:
  max_connections_per_ip: 2048
YML
# the options are the point of the soak: a flaky upstream, revalidation,
# eviction; and wrk's 500 connections come from one address (over the
# default per-address cap of 256, which would refuse them: that is not the
# soak's subject)
"$PULLCACHE" serve --config "$WORK/pc.yml" --listen "127.0.0.1:${PORT[pullcache]}" \
    --data "$WORK/pc-data" >"$WORK/logs/pullcache.log" 2>&1 &
PID[pullcache]=$!
wait_up pullcache || { log "serve did not start"; exit 1; }
PC=127.0.0.1:${PORT[pullcache]}

sample() { echo "$(date +%s) $(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status") $(ls "/proc/$1/fd" | wc -l)"; }
IMAGES=()
for t in oci-index docker-list oci-single docker-single; do IMAGES+=("$PC/flaky/library/test:$t"); done
# warm one manifest for wrk
"$PULLCACHE" pull --plain-http --discard "${IMAGES[2]}" >/dev/null 2>&1 || true
dig=$(curl -sS -I -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$PC/v2/flaky/library/test/manifests/oci-single" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
[ -n "$dig" ] || { log "no digest for the wrk target"; exit 1; }
START=$(sample "${PID[pullcache]}")
log "soak for $SECONDS_RUN s: serve at start (epoch rss_kib fds) $START"
(while :; do sample "${PID[pullcache]}" >>"$WORK/samples"; sleep 5; done) &
PID[sampler]=$!
"$PULLCACHE" loadgen --plain-http --json -n 40 -m 1000000 -c 16 -d "$SECONDS_RUN" "${IMAGES[@]}" \
    >"$WORK/loadgen.json" 2>"$WORK/logs/loadgen.log" &
lg=$!
wrk -t2 -c500 -d "${SECONDS_RUN}s" -H "Accept: application/vnd.oci.image.manifest.v1+json" \
    "http://$PC/v2/flaky/library/test/manifests/$dig" >"$WORK/wrk.txt" 2>&1 || true
wait "$lg" || true
END=$(sample "${PID[pullcache]}")
stop_server sampler

report() {
    local j=$WORK/loadgen.json
    echo "# Soak: $SECONDS_RUN s, flaky upstream ($RUN_DATE$([ "$QUICK" = 1 ] && echo ", quick"))"
    echo
    echo "| | value |"
    echo "|---|---|"
    echo "| loadgen pulls ok / failed | $(jq -r '"\(.pulls.ok) / \(.pulls.failed)"' "$j") |"
    echo "| loadgen failures by error | $(jq -r '[.failures[] | "\(.count) x \(.key)"] | join("; ") | if . == "" then "none" else . end' "$j") |"
    echo "| loadgen p50 / p99 ms | $(jq -r '"\(.latency_ms.p50) / \(.latency_ms.p99)"' "$j") |"
    echo "| wrk requests | $(awk '/requests in/ { print $1 }' "$WORK/wrk.txt") ($(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.txt") req/s) |"
    local wrkerr
    wrkerr=$(grep -E 'Non-2xx|Socket errors' "$WORK/wrk.txt" | tr -s ' ' | paste -sd';' - || true)
    echo "| wrk non-2xx, socket errors | ${wrkerr:-none} |"
    echo "| serve 5xx answers (its log) | $(awk '$5 ~ /^5[0-9][0-9]$/' "$WORK/logs/pullcache.log" | wc -l) |"
    echo "| RSS KiB start / max / end | $(echo "$START" | cut -d' ' -f2) / $(sort -k2 -n "$WORK/samples" | tail -1 | cut -d' ' -f2) / $(echo "$END" | cut -d' ' -f2) |"
    echo "| open fds start / max / end | $(echo "$START" | cut -d' ' -f3) / $(sort -k3 -n "$WORK/samples" | tail -1 | cut -d' ' -f3) / $(echo "$END" | cut -d' ' -f3) |"
    # flat or growing: the samples at each quarter of the run
    local n q line
    n=$(wc -l <"$WORK/samples")
    for q in 1 2 3; do
        line=$(sed -n "$((n * q / 4 + 1))p" "$WORK/samples")
        echo "| RSS KiB / fds at $((q * 25))% | $(echo "$line" | cut -d' ' -f2) / $(echo "$line" | cut -d' ' -f3) |"
    done
    echo
    echo "- pullcache $("$PULLCACHE" --version | awk '{print $2}'), $(nproc) cores; upstream: fakeupstream.py with the flaky rules above; loadgen -n 40 -c 16, wrk -t2 -c500."
    echo "- 5xx answers by path in serve's log: $(awk '$5 ~ /^5[0-9][0-9]$/ { print $5, $4 }' "$WORK/logs/pullcache.log" | sed 's#/sha256:[0-9a-f]*#/<digest>#' | sort | uniq -c | sort -rn | head -5 | awk '{ printf "%s%s x %s %s", (NR > 1 ? "; " : ""), $1, $2, $3 }')"
}
# serve's answers >= 500 and its warnings/errors, with their time (the request
# log itself is millions of lines): what a failure was, for the record
ERRLOG=${BENCH_OUT%.md}-errors.log
# (the expected "serving ... from cache" warnings counted, not listed; awk
# stops at 400 lines itself: a head(1) would SIGPIPE the pipeline)
if [ "$BENCH_OUT" != - ]; then
    awk '$2 == "warn" && /serving .* from cache/ { stale++; next }
         ($5 ~ /^5[0-9][0-9]$/ || $2 == "warn" || $2 == "error") && n++ < 400
         END { print stale + 0, "warnings \"upstream ... failed; serving ... from cache\" (stale answers)" }' \
        "$WORK/logs/pullcache.log" >"$ERRLOG"
    log "serve's 5xx answers and warnings: $ERRLOG"
fi
bench_publish
