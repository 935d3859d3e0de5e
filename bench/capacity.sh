#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# capacity.sh - what an image costs in storage besides its blob bytes, for
# capacity planning (docs/OPERATIONS.md): pullcache (fs + SQLite, its
# defaults) and distribution 2.8 (Debian's docker-registry, filesystem
# driver) side by side in one run.
#
#   bash bench/capacity.sh [--quick]
#
# N distinct images (2000; --quick 200), each a config, 3 random 4 KiB layers
# and an OCI manifest with one tag, spread over 10 repositories, are pushed
# into each server (bench/tools/push_many.py: monolithic uploads). Then:
# bytes on disk (du --apparent-size and du's allocated blocks) of everything
# but the blob contents, per image; for pullcache, meta.db's size after a WAL
# checkpoint and the rows per image of each table (sqlite3). Nothing is
# asserted: exit 0 when the run completed. Output: a markdown table on stdout
# and in bench/results/capacity-<date>[-quick].md; progress on stderr.
#
# Environment: PULLCACHE (binary; default build/pullcache), BENCH_OUT (report
# path or -), BENCH_PORT_BASE (default 5700), BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/lib.sh"
bench_quick_args "$@"
bench_reexec "$@"
BENCH_NAME=capacity
bench_need curl jq sqlite3 python3 docker-registry du
bench_pullcache build
RUN_DATE=$(date -u +%F)
bench_out capacity-
N=2000
[ "$QUICK" = 0 ] || N=200
base=${BENCH_PORT_BASE:-5700}
declare -A PORT=([pullcache]=$base [distribution]=$((base + 1)))
bench_workdir pc-bench-capacity pc dist

log "pullcache: $N images"
"$PULLCACHE" serve --listen "127.0.0.1:${PORT[pullcache]}" --data "$WORK/pc" >"$WORK/logs/pullcache.log" 2>&1 &
PID[pullcache]=$!
wait_up pullcache
# request lines would be the larger part of the log: not what is measured
python3 "$BENCH_DIR/tools/push_many.py" "http://127.0.0.1:${PORT[pullcache]}" img "$N" >"$WORK/pc.json"
stop_server pullcache
sqlite3 "$WORK/pc/meta.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null

log "distribution: $N images"
bench_dist_config "$WORK/dist.yml" "$WORK/dist" "${PORT[distribution]}"
docker-registry serve "$WORK/dist.yml" >"$WORK/logs/distribution.log" 2>&1 &
PID[distribution]=$!
wait_up distribution
python3 "$BENCH_DIR/tools/push_many.py" "http://127.0.0.1:${PORT[distribution]}" img "$N" >"$WORK/dist.json"
stop_server distribution

blob_bytes=$(jq .blob_bytes "$WORK/pc.json")
# overhead DIR BLOBFILES_FIND_ARGS...: apparent bytes, allocated bytes and the
# number of the regular files of DIR other than blob contents (and
# pullcache's fixed 1 MiB space.reserve), then the directories and their
# allocated bytes
overhead() {
    local dir=$1
    shift
    find "$dir" -type f ! \( "$@" \) ! -name space.reserve -printf '%s %k\n' |
        awk '{ a += $1; k += $2 * 1024; n++ } END { printf "%d %d %d ", a, k, n }'
    find "$dir" -type d -printf '%k\n' | awk '{ k += $1 * 1024; n++ } END { printf "%d %d\n", n, k }'
}
read -r pc_a pc_k pc_n pc_d pc_dk < <(overhead "$WORK/pc" -path '*/blobs/sha256/*')
read -r di_a di_k di_n di_d di_dk < <(overhead "$WORK/dist" -name data -path '*/blobs/sha256/*')
metadb=$(stat -c %s "$WORK/pc/meta.db")
rows=$(for t in blob_links manifests manifest_refs tags repos cache_access; do
    printf '%s %s\n' "$t" "$(sqlite3 "$WORK/pc/meta.db" "SELECT count(*) FROM $t")"
done)

report() {
    echo "# capacity: storage per image besides blob bytes ($(date -u +%F), N=$N)"
    echo
    echo "Each image: a config, 3 random 4 KiB layers, an OCI manifest, one tag; 10 repositories."
    echo "Blob content pushed: $blob_bytes bytes ($(jq .blobs "$WORK/pc.json") blobs)."
    echo
    echo "| server | metadata bytes/image (apparent) | allocated bytes/image | files | directories (allocated bytes/image) |"
    echo "|---|---|---|---|---|"
    echo "| pullcache (fs + SQLite) | $((pc_a / N)) | $((pc_k / N)) | $pc_n | $pc_d ($((pc_dk / N))) |"
    echo "| distribution 2.8 (filesystem) | $((di_a / N)) | $((di_k / N)) | $di_n | $di_d ($((di_dk / N))) |"
    echo
    echo "Metadata: every regular file but blob contents (pullcache: meta.db after a checkpoint, the"
    echo "token key, lock files; not its fixed 1 MiB space.reserve; distribution: link, tag and"
    echo "revision files). Blob files sit in directories both ways (pullcache 256 at most, one per"
    echo "two hex digits; distribution a directory per blob and per link)."
    echo
    echo "pullcache meta.db: $metadb bytes, $((metadb / N)) bytes/image. Rows per image:"
    echo
    echo "| table | rows | per image |"
    echo "|---|---|---|"
    while read -r t c; do
        printf '| %s | %s | %s |\n' "$t" "$c" "$(awk -v c="$c" -v n="$N" 'BEGIN { printf "%.2f", c / n }')"
    done <<<"$rows"
    echo
    echo "Allocated bytes count file system blocks: distribution keeps every link, tag and"
    echo "revision as a file of its own (a 4 KiB block each on ext4/tmpfs); pullcache keeps them as"
    echo "rows of meta.db."
}
bench_publish
