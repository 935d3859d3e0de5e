#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lo-qdisc.sh - does the htb qdisc that bench/cache.sh puts on loopback to
# model a WAN upstream link (CACHE_UPSTREAM_MBIT) slow down the rest of the
# loopback traffic (cache <-> clients)? Measures warm pulls from a pullcache
# registry with no qdisc on lo and with each htb variant, in one run.
#
#   bash bench/lo-qdisc.sh
#
# In a private network + PID namespace (like cache.sh; refuses to run
# without one, since it changes lo's qdisc): pullcache serve (no upstream,
# empty data dir), a generated image pushed to it with curl (layers of 64 48
# 32 24 16 8 4 1 MiB, config, OCI manifest), then ROUNDS rounds; in each round
# every variant in turn (order rotated per round):
#   none     lo's default (noqueue)
#   recipe   htb default 10; class 1:10 rate 100gbit and class 1:20 rate
#            400mbit with tc's defaults for burst/quantum; u32 filter
#            "ip sport 18189" -> 1:20 (a port nothing here uses, so the filter
#            is evaluated but every packet goes to the default class)
#   tuned    what cache.sh installs: the same with explicit burst/cburst and
#            quantum (see throttle_on in cache.sh)
#   direct   htb with no default class (unclassified packets take htb's
#            unshaped direct queue), class 1:20 and filter as in tuned
# and measures, on the cache <-> client traffic (which the filter does not
# match):
#   pull     one warm pull as cache.sh does it: manifest, then each blob
#            through curl | sha256sum (s)
#   fetch    the same blobs with curl -o /dev/null, one after the other (s)
#   par8     8 of those fetches at once (s, wall)
#   wrk      manifest GET by tag, wrk -t2 -c32 -d3s (req/s)
# Prints medians and all samples (markdown) on stdout; progress on stderr.
#
# Environment: PULLCACHE [<repo>/build-cbench/pullcache, else build/pullcache],
# ROUNDS [5], BENCH_PORT_BASE [18190], VARIANTS ["none recipe tuned direct"].
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

if [ -z "${PC_BENCH_IN_NETNS:-}" ]; then
    export PC_BENCH_IN_NETNS=1
    exec unshare --net --mount-proc --fork --pid --kill-child=TERM \
        bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
[ "$(ip -o link show | wc -l)" = 1 ] || { echo "lo-qdisc: not in a private network namespace; refusing to touch lo" >&2; exit 2; }

PULLCACHE=${PULLCACHE:-$REPO/build-cbench/pullcache}
[ -x "$PULLCACHE" ] || PULLCACHE=$REPO/build/pullcache
ROUNDS=${ROUNDS:-5}
PORT=${BENCH_PORT_BASE:-18190}
read -ra VARIANTS <<<"${VARIANTS:-none recipe tuned direct}"
BASE=http://127.0.0.1:$PORT/v2/bench
ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json"
WORK=$(mktemp -d /tmp/pc-loq.XXXXXX)
PCPID=""
cleanup() {
    [ -z "$PCPID" ] || { kill -TERM "$PCPID" 2>/dev/null; wait "$PCPID" 2>/dev/null || true; }
    tc qdisc del dev lo root 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[lo-qdisc %s] %s\n' "$(date +%T)" "$*" >&2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# The variants. "tuned" must stay what throttle_on in cache.sh installs.
qdisc() {
    tc qdisc del dev lo root 2>/dev/null || true
    case $1 in
    none) ;;
    recipe)
        tc qdisc add dev lo root handle 1: htb default 10
        tc class add dev lo parent 1: classid 1:10 htb rate 100gbit 2>/dev/null
        tc class add dev lo parent 1: classid 1:20 htb rate 400mbit 2>/dev/null
        tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport 18189 0xffff flowid 1:20
        ;;
    tuned)
        tc qdisc add dev lo root handle 1: htb default 10
        tc class add dev lo parent 1: classid 1:10 htb rate 100gbit burst 4mb cburst 4mb quantum 200000
        tc class add dev lo parent 1: classid 1:20 htb rate 400mbit burst 256kb cburst 256kb quantum 200000
        tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport 18189 0xffff flowid 1:20
        ;;
    direct)
        tc qdisc add dev lo root handle 1: htb
        tc class add dev lo parent 1: classid 1:20 htb rate 400mbit burst 256kb cburst 256kb quantum 200000
        tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport 18189 0xffff flowid 1:20
        ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}

# ---- image, server, push ------------------------------------------------------
mkdir -p "$WORK/img" "$WORK/data"
files=()
i=0
for mib in 64 48 32 24 16 8 4 1; do
    i=$((i + 1))
    head -c $((mib * 1048576)) /dev/urandom >"$WORK/img/l$i"
    files+=("$WORK/img/l$i")
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/img/config"
layers=$(for f in "${files[@]}"; do
    jq -cn --arg d "sha256:$(sha "$f")" --argjson s "$(stat -c %s "$f")" \
        '{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $d, size: $s}'
done | jq -cs .)
jq -jcn --arg c "sha256:$(sha "$WORK/img/config")" --argjson cs "$(stat -c %s "$WORK/img/config")" --argjson l "$layers" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs}, layers: $l}' >"$WORK/img/manifest"
MHEX=$(sha "$WORK/img/manifest")

"$PULLCACHE" serve --listen "127.0.0.1:$PORT" --data "$WORK/data" >"$WORK/pullcache.log" 2>&1 &
PCPID=$!
for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/v2/" && break; sleep 0.1; done
for f in "$WORK/img/config" "${files[@]}"; do
    loc=$(curl -sS -X POST -D - -o /dev/null "$BASE/blobs/uploads/" | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
    case $loc in /*) loc=http://127.0.0.1:$PORT$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=sha256:$(sha "$f")" ;; *) loc="$loc?digest=sha256:$(sha "$f")" ;; esac
    code=$(curl -sS -X PUT -T "$f" -H 'Expect:' -H 'Content-Type: application/octet-stream' -o /dev/null -w '%{http_code}' "$loc")
    [ "$code" = 201 ] || { log "push of $f answered $code"; exit 1; }
done
code=$(curl -sS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$WORK/img/manifest" -o /dev/null -w '%{http_code}' "$BASE/manifests/v1")
[ "$code" = 201 ] || { log "manifest push answered $code"; exit 1; }
DIGESTS=$(jq -r '.config.digest, .layers[].digest' "$WORK/img/manifest")
log "image pushed to pullcache ($("$PULLCACHE" --version | head -n1)) on 127.0.0.1:$PORT"

# ---- measurements -------------------------------------------------------------
pull() {
    local d got
    [ "$(curl -s -H "$ACCEPT" "$BASE/manifests/v1" | sha256sum | cut -d' ' -f1)" = "$MHEX" ] || return 1
    for d in $DIGESTS; do
        got=$(curl -s "$BASE/blobs/$d" | sha256sum | cut -d' ' -f1)
        [ "sha256:$got" = "$d" ] || return 1
    done
}
fetch() { local d; for d in $DIGESTS; do curl -s -o /dev/null "$BASE/blobs/$d" || return 1; done; }
timed() { local t0 t1; t0=$(now_ns); "$@" || echo "FAILED: $*" >&2; t1=$(now_ns); secs "$t0" "$t1"; }
par8() { local p=() i; for i in 1 2 3 4 5 6 7 8; do fetch & p+=($!); done; for i in "${p[@]}"; do wait "$i"; done; }
wrk_rps() {
    wrk -t2 -c32 -d3s -H "$ACCEPT" "$BASE/manifests/v1" 2>&1 | awk '/^Requests\/sec/ { printf "%.0f", $2 }'
}

declare -A S=()
for r in $(seq "$ROUNDS"); do
    n=${#VARIANTS[@]}
    for j in $(seq 0 $((n - 1))); do
        v=${VARIANTS[$(((j + r) % n))]}
        qdisc "$v"
        S[$v.pull]+=" $(timed pull)"
        S[$v.fetch]+=" $(timed fetch)"
        S[$v.par8]+=" $(timed par8)"
        S[$v.wrk]+=" $(wrk_rps)"
        log "round $r $v: pull${S[$v.pull]##* } fetch${S[$v.fetch]##* } par8${S[$v.par8]##* } wrk${S[$v.wrk]##* }"
    done
done
qdisc recipe
RECIPE_CLASSES=$(tc -d class show dev lo)
qdisc tuned
TUNED_CLASSES=$(tc -d class show dev lo)
qdisc none

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); printf (m >= 100 ? "%.0f" : "%.2f"), m }'; }
echo "## lo qdisc overhead, $(date -u '+%F %T UTC')"
echo
echo "$(nproc) cores, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $ROUNDS rounds, variants rotated; $("$PULLCACHE" --version | head -n1) serving a 206 MB image (9 blobs) from its data dir."
echo
echo "| variant | warm pull, sha256 (s) | fetch to /dev/null (s) | 8 fetches at once (s) | wrk manifest by tag (req/s) |"
echo "|---|---:|---:|---:|---:|"
for v in "${VARIANTS[@]}"; do
    echo "| $v | $(median <<<"${S[$v.pull]}") | $(median <<<"${S[$v.fetch]}") | $(median <<<"${S[$v.par8]}") | $(median <<<"${S[$v.wrk]}") |"
done
echo
echo "Medians; all samples:"
echo
for v in "${VARIANTS[@]}"; do
    echo "- $v: pull${S[$v.pull]}; fetch${S[$v.fetch]}; par8${S[$v.par8]}; wrk${S[$v.wrk]}"
done
echo
echo "tc -d class show dev lo, recipe:"
echo '```'
echo "$RECIPE_CLASSES"
echo '```'
echo "tuned:"
echo '```'
echo "$TUNED_CLASSES"
echo '```'
