#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# copy.sh - image copy benchmark: `pullcache copy` against `skopeo copy`,
# both copying the same ~500 MB multi-layer image from distribution 2.8
# (Debian's docker-registry) into an empty pullcache, in one run.
#
#   bash bench/copy.sh [--quick]
#
# The source is a docker-registry (filesystem storage). The script generates
# an image at run time in a temp dir (random, incompressible layers of
# 128 96 80 64 48 32 24 16 8 4 MiB = 500 MiB; --quick 32 24 16 8 4 2 1 1; a
# JSON config; an OCI image manifest) and pushes it with curl (POST +
# monolithic PUT ?digest=, then the manifest) as bench/img:v1.
#
# Each round starts two fresh pullcache servers with empty data dirs (so no
# contender finds a blob already there, and neither mounts), then times
#   pullcache   pullcache copy --plain-http SRC DST           (defaults: 4 blobs at once)
#   skopeo      skopeo copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false
#                 docker://SRC docker://DST                    (its defaults)
# one after the other, alternating which goes first, and checks that the
# destination's manifest digest equals the source's. skopeo's blob-info cache
# (/var/lib/containers/cache as root) is hidden behind a tmpfs in the
# script's own mount namespace, so no run learns from an earlier one.
# Rounds: 3 (COPY_ROUNDS). The report gives every time, the median per
# contender and the ratio skopeo / pullcache (> 1: pullcache is faster).
#
# Output: a markdown table on stdout and in bench/results/copy-<date>.md
# (copy-<date>-quick.md for --quick); progress on stderr. Nothing is asserted:
# exit status 0 when the run completed.
#
# Like bench/cache.sh it re-executes itself in a private network, mount and
# PID namespace (only loopback up; BENCH_NETNS=0 to use the host's loopback);
# every server is a child of the script, stopped by PID from an EXIT trap.
#
# Environment (defaults in brackets):
#   PULLCACHE        pullcache binary [<repo>/build-bench/pullcache, else build/pullcache];
#                    a BENCH_REV file next to it (as bench/build.sh writes) names its commit
#   COPY_LAYERS_MIB  layer sizes in MiB [128 96 80 64 48 32 24 16 8 4]
#   COPY_ROUNDS      rounds [3]
#   BENCH_PORT_BASE  source, pullcache destination A and B on BASE, +1, +2 [18190]
#   BENCH_OUT        results file; "-" = none
#   BENCH_KEEP=1     keep the temp dir
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh" # umask, LC_ALL, REPO
BENCH_NAME=copy-bench

bench_reexec --mount "$@"

bench_quick_args "$@"

bench_pullcache build-bench
if [ "$QUICK" = 1 ]; then
    LAYERS=${COPY_LAYERS_MIB:-32 24 16 8 4 2 1 1}
else
    LAYERS=${COPY_LAYERS_MIB:-128 96 80 64 48 32 24 16 8 4}
fi
ROUNDS=${COPY_ROUNDS:-3}
PORT_BASE=${BENCH_PORT_BASE:-18190}
SRC_PORT=$PORT_BASE
declare -A PORT=([source]=$PORT_BASE [dst-pullcache]=$((PORT_BASE + 1)) [dst-skopeo]=$((PORT_BASE + 2)))
RUN_DATE=$(date -u +%F)
RUN_TIME=$(date -u '+%F %T UTC')
bench_out copy-

bench_need skopeo curl jq docker-registry sha256sum
[ -x "$PULLCACHE" ] || { echo "bench: no pullcache binary at $PULLCACHE (bash bench/build.sh)" >&2; exit 2; }

BENCH_LOGS_WHAT=logs
bench_workdir pc-copybench home

# skopeo: a policy and auth file of our own, and no blob-info cache from
# earlier runs (root's lives in /var/lib/containers/cache).
if [ "${PC_BENCH_IN_NETNS:-}" = 1 ]; then
    mkdir -p /var/lib/containers
    mount -t tmpfs -o size=16m,mode=0700 pc-copybench /var/lib/containers
fi
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
echo '{"auths":{}}' >"$WORK/auth.json"
export HOME=$WORK/home REGISTRY_AUTH_FILE=$WORK/auth.json TMPDIR=$WORK

# ---- the image ----------------------------------------------------------------

ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

IMG=$WORK/img
mkdir -p "$IMG"
log "generating layers of $LAYERS MiB"
bench_gen_image
DIGEST=sha256:$(sha "$IMG/manifest")
NBLOBS=$((${#LAYER_FILES[@]} + 1))
IMAGE_BYTES=$(($(fsize "$IMG/manifest") + $(fsize "$IMG/config")))
for f in "${LAYER_FILES[@]}"; do IMAGE_BYTES=$((IMAGE_BYTES + $(fsize "$f"))); done
log "image: $DIGEST, $NBLOBS blobs, $IMAGE_BYTES bytes"

# ---- servers --------------------------------------------------------------------

start_server() {
    local s=$1 d=$WORK/data-$1
    rm -rf "$d"
    mkdir -p "$d"
    case $s in
    source)
        cat >"$WORK/source.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $d}
  cache: {blobdescriptor: inmemory}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: 127.0.0.1:${PORT[$s]}
  secret: pullcache-copy-bench
YML
        # docker-registry reads REGISTRY_* variables as configuration overrides
        env -u REGISTRY_AUTH_FILE docker-registry serve "$WORK/source.yml" >>"$WORK/logs/source.log" 2>&1 &
        ;;
    *)
        "$PULLCACHE" serve --listen "127.0.0.1:${PORT[$s]}" --data "$d" \
            >>"$WORK/logs/$s.log" 2>&1 &
        ;;
    esac
    PID[$s]=$!
    wait_up "$s" || { log "$s did not start"; return 1; }
}

push_blob() { # push_blob FILE
    local h=$WORK/post.h loc dig
    dig=sha256:$(sha "$1")
    curl -sS -f -X POST -D "$h" -o /dev/null "http://127.0.0.1:$SRC_PORT/v2/bench/img/blobs/uploads/"
    loc=$(tr -d '\r' <"$h" | awk 'tolower($1) == "location:" { print $2 }')
    case $loc in /*) loc=http://127.0.0.1:$SRC_PORT$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=$dig" ;; *) loc="$loc?digest=$dig" ;; esac
    curl -sS -f -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" -o /dev/null "$loc"
}

start_server source
log "pushing the image to the source"
for f in "$IMG/config" "${LAYER_FILES[@]}"; do push_blob "$f"; done
curl -sS -f -X PUT -H "Content-Type: $MT_MANIFEST" --data-binary "@$IMG/manifest" -o /dev/null \
    "http://127.0.0.1:$SRC_PORT/v2/bench/img/manifests/v1"

digest_at() {
    curl -sS -I -H "$ACCEPT" "http://127.0.0.1:$1/v2/$2/manifests/v1" | tr -d '\r' |
        awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}
[ "$(digest_at "$SRC_PORT" bench/img)" = "$DIGEST" ] || { log "the source does not serve the image"; exit 1; }

now() { date +%s.%N; }

run_one() { # run_one CONTENDER ROUND: prints seconds
    local c=$1 port=${PORT[dst-$1]} t0 t1
    local src=127.0.0.1:$SRC_PORT/bench/img:v1 dst=127.0.0.1:$port/bench/img:v1
    t0=$(now)
    case $c in
    pullcache) "$PULLCACHE" copy --plain-http "$src" "$dst" >>"$WORK/logs/copy-pullcache.out" 2>&1 ;;
    skopeo)
        skopeo --policy "$WORK/policy.json" copy -q --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
            "docker://$src" "docker://$dst" >>"$WORK/logs/copy-skopeo.out" 2>&1
        ;;
    esac
    t1=$(now)
    local got
    got=$(digest_at "$port" bench/img)
    [ "$got" = "$DIGEST" ] || { log "$c round $2: destination digest '$got', want $DIGEST"; exit 1; }
    echo "$t1 - $t0" | bc -l
}

declare -A T=()
for r in $(seq "$ROUNDS"); do
    start_server dst-pullcache
    start_server dst-skopeo
    if [ $((r % 2)) = 1 ]; then order="pullcache skopeo"; else order="skopeo pullcache"; fi
    for c in $order; do
        s=$(run_one "$c" "$r")
        T[$c.$r]=$(printf '%.2f' "$s")
        log "round $r: $c ${T[$c.$r]} s"
    done
    stop_server dst-pullcache
    stop_server dst-skopeo
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
times_of() { local c=$1 r out=(); for r in $(seq "$ROUNDS"); do out+=("${T[$c.$r]}"); done; echo "${out[@]}"; }
# shellcheck disable=SC2046
MED_PC=$(median $(times_of pullcache))
# shellcheck disable=SC2046
MED_SK=$(median $(times_of skopeo))
RATIO=$(echo "$MED_SK / $MED_PC" | bc -l)
MB=$(echo "$IMAGE_BYTES / 1000000" | bc -l)
REV=""
[ -f "$(dirname "$PULLCACHE")/BENCH_REV" ] && REV=$(cut -c1-10 "$(dirname "$PULLCACHE")/BENCH_REV")
[ -n "$REV" ] || REV=$(git -C "$REPO" rev-parse --short=10 HEAD 2>/dev/null || echo unknown)

report() {
    echo "# Copy benchmark: pullcache copy vs skopeo copy"
    echo
    echo "$RUN_TIME, pullcache $REV, $(skopeo --version), $(nproc) CPUs."
    printf 'Image: %d blobs (layers %s MiB, random), %.0f MB, OCI manifest; ' "$NBLOBS" "$(echo $LAYERS | tr ' ' '/')" "$MB"
    echo "from docker-registry (distribution 2.8) into an empty pullcache, on loopback in a private network namespace."
    echo "$ROUNDS rounds, alternating which contender goes first; fresh destinations every round; digests checked."
    echo
    printf '| contender | %smedian | MB/s |\n' "$(for r in $(seq "$ROUNDS"); do printf 'round %d | ' "$r"; done)"
    printf '|---|%s---:|---:|\n' "$(for _ in $(seq "$ROUNDS"); do printf -- '---:|'; done)"
    for c in pullcache skopeo; do
        med=$MED_PC
        [ "$c" = skopeo ] && med=$MED_SK
        printf '| %s | %s%s s | %.0f |\n' "$c" "$(for r in $(seq "$ROUNDS"); do printf '%s s | ' "${T[$c.$r]}"; done)" \
            "$med" "$(echo "$MB / $med" | bc -l)"
    done
    echo
    printf 'skopeo / pullcache (median time): **%.2fx** (above 1: pullcache is faster).\n' "$RATIO"
}
report
if [ "$BENCH_OUT" != - ]; then
    mkdir -p "$(dirname "$BENCH_OUT")"
    report >"$BENCH_OUT"
    log "wrote $BENCH_OUT"
fi
