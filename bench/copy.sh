#!/usr/bin/env bash
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
umask 022
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

if [ -z "${PC_BENCH_IN_NETNS:-}" ] && [ "${BENCH_NETNS:-1}" = 1 ]; then
    if unshare --net --mount --mount-proc --fork --pid true 2>/dev/null; then
        export PC_BENCH_IN_NETNS=1
        unshare --net --mount --mount-proc --fork --pid --kill-child=TERM \
            bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@" &
        upid=$!
        trap 'kill -TERM $(cat "/proc/$upid/task/$upid/children" 2>/dev/null) 2>/dev/null || true' INT TERM
        while :; do
            rc=0
            wait "$upid" || rc=$?
            kill -0 "$upid" 2>/dev/null || exit "$rc"
        done
    fi
    echo "bench: cannot create a network namespace; using the host's loopback" >&2
fi

QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
    esac
    shift
done

if [ -z "${PULLCACHE:-}" ]; then
    PULLCACHE=$REPO/build-bench/pullcache
    [ -x "$PULLCACHE" ] || PULLCACHE=$REPO/build/pullcache
fi
case $PULLCACHE in /*) ;; *) PULLCACHE=$PWD/$PULLCACHE ;; esac
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
if [ -z "${BENCH_OUT:-}" ]; then
    BENCH_OUT=$BENCH_DIR/results/copy-$RUN_DATE.md
    [ "$QUICK" = 0 ] || BENCH_OUT=$BENCH_DIR/results/copy-$RUN_DATE-quick.md
fi
case $BENCH_OUT in /* | -) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac

for tool in skopeo curl jq docker-registry sha256sum; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 2; }
done
[ -x "$PULLCACHE" ] || { echo "bench: no pullcache binary at $PULLCACHE (bash bench/build.sh)" >&2; exit 2; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

WORK=$(mktemp -d /tmp/pc-copybench.XXXXXX)
mkdir -p "$WORK/logs" "$WORK/home"
cd "$WORK"
declare -A PID=()

log() { printf '[copy-bench %s] %s\n' "$(date +%T)" "$*" >&2; }

stop_server() {
    local pid=${PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    PID[$1]=""
}

cleanup() {
    local rc=$? s
    trap - EXIT
    for s in "${!PID[@]}"; do stop_server "$s"; done
    if [ "$rc" -ne 0 ]; then
        echo "bench: failed (rc=$rc); logs:" >&2
        for f in "$WORK"/logs/*.log; do
            [ -s "$f" ] || continue
            echo "--- $f (last 20 lines)" >&2
            tail -n 20 "$f" >&2
        done
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_CONFIG=application/vnd.oci.image.config.v1+json
MT_LAYER=application/vnd.oci.image.layer.v1.tar
ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
sha() { sha256sum "$1" | cut -d' ' -f1; }
fsize() { stat -c %s "$1"; }

IMG=$WORK/img
mkdir -p "$IMG"
log "generating layers of $LAYERS MiB"
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
DIGEST=sha256:$(sha "$IMG/manifest")
NBLOBS=$((${#LAYER_FILES[@]} + 1))
IMAGE_BYTES=$(($(fsize "$IMG/manifest") + $(fsize "$IMG/config")))
for f in "${LAYER_FILES[@]}"; do IMAGE_BYTES=$((IMAGE_BYTES + $(fsize "$f"))); done
log "image: $DIGEST, $NBLOBS blobs, $IMAGE_BYTES bytes"

# ---- servers --------------------------------------------------------------------

wait_up() {
    for _ in $(seq 150); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${PORT[$1]}/v2/" && return 0
        kill -0 "${PID[$1]}" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

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
        "$PULLCACHE" serve --listen "127.0.0.1:${PORT[$s]}" --data "$d" --default-upstream none \
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
