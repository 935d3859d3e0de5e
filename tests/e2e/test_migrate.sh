#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_migrate.sh - `pullcache migrate` (issue 14): a data directory filled by
# a real serve (pushed images, one with a 64 MiB layer, a pull through the
# mirror of a fake upstream so cache access records exist, limiter counts, an
# upload session left open) is moved
#   1. to a second fs + SQLite data directory: refused while the serve holds
#      the source, --dry-run writes nothing, a run killed (-9) in the middle
#      of a blob is resumed by the next run to a verified end, a third run has
#      nothing to do; a serve on the destination (with the upstream gone)
#      serves every image byte-identical, the same tags, the same blob files;
#      while a serve runs on the destination migrate is refused (exit 4), after
#      it stopped (it gave up its upkeep lease) migrate has nothing to do;
#   2. when radosgw and PostgreSQL are installed (tests/tools/rgw.sh, pg.sh),
#      to S3 + PostgreSQL (a run killed mid-blob there too), with the same
#      checks through a serve on them.
. "$(dirname "$0")/lib.sh"

pc_needs_disk "a data directory to migrate"
clients_init
FP=5002
SRC=$WORK/src
RGW_DIR="" PG_DIR=""
_migrate_cleanup() {
    local rc=$?
    [ -z "$RGW_DIR" ] || bash "$PC_SRC/tests/tools/rgw.sh" stop "$RGW_DIR" >/dev/null 2>&1 || true
    [ -z "$PG_DIR" ] || bash "$PC_SRC/tests/tools/pg.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
    [ -z "$PG_DIR" ] || rm -rf "$PG_DIR"
    (exit "$rc")
    _pc_cleanup
}
trap _migrate_cleanup EXIT

# The source's records, row by row, as the destination must have them: tags
# with their updated times, access records, limiter counts, links, manifests
# and their references (read with sqlite3 / psql, the stores' own tables).
QUERIES=(
    "SELECT repo, tag, digest, updated FROM tags ORDER BY repo, tag"
    "SELECT digest, size, last_access FROM cache_access ORDER BY digest"
    "SELECT key, bucket, count, expires FROM limiter_counts ORDER BY key, bucket"
    "SELECT repo, digest, size FROM blob_links ORDER BY repo, digest"
    "SELECT repo, digest, media_type, size, artifact_type, coalesce(subject, '') FROM manifests ORDER BY repo, digest"
    "SELECT repo, manifest, ref, is_manifest FROM manifest_refs ORDER BY repo, manifest, ref"
)
rows_sqlite() { sqlite3 -readonly "$1" "$2"; } # DB QUERY
rows_pg() { psql "$PC_PG_CONNINFO" -X -A -t -c "$1"; } # QUERY
same_rows() { # LABEL ROWS-FUNCTION [ARG]
    local q want got
    for q in "${QUERIES[@]}"; do
        want=$(rows_sqlite "$SRC/meta.db" "$q")
        [ -n "$want" ] || fail "the source has no rows for: $q"
        got=$("${@:2}" "$q")
        [ "$want" = "$got" ] || fail "$1: rows differ for '$q':
$(diff <(echo "$want") <(echo "$got") | awk "NR <= 10")"
    done
}

mkimages "$WORK/img" migrate
mkimages "$WORK/big" migratebig 64
mkimages "$WORK/up" migrateup
fake_start pass "$FP" - - --repo library/up="$WORK/up"

# ---- fill the source through a real serve ------------------------------------------------------
pc_start "$SRC" --upstream "up=http://127.0.0.1:$FP" --limit-anonymous 1000/3600
TAGS=(oci-single oci-index docker-single docker-list)
for t in "${TAGS[@]}"; do push_image "$WORK/img" "$t" "local/app:$t"; done
push_image "$WORK/big" oci-single local/big:v1
# through the mirror, by tag (access records, tag freshness rows)
sk copy -q --all --src-tls-verify=false "docker://$REG/up/library/up:oci-index" \
    "oci:$WORK/mirrored:x" >>"$WORK/clients.log" 2>&1 || fail "pull through the mirror"
UP_TOP=$(img_digest "$WORK/up" oci-index)
# an upload left open: a session migrate does not copy
reg_upload_url local/app >/dev/null
declare -A DIG
for t in "${TAGS[@]}"; do DIG[$t]=$(reg_digest local/app "$t"); done
DIG[big]=$(reg_digest local/big v1)
expect_eq "$(img_digest "$WORK/big" oci-single)" "${DIG[big]}" "pushed big image digest"
TAGLIST=$(curl -sS -f "http://$REG/v2/local/app/tags/list" | jq -c '.tags | sort')

echo "== a serve holds the source: refused"
cat >"$WORK/dst.yaml" <<YML
storage:
  data: $WORK/dst
YML
rc=0
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/dst.yaml" >"$WORK/m0.out" 2>"$WORK/m0.err" || rc=$?
expect_eq 4 "$rc" "migrate while serve holds the source"
grep -q "serve.lock" "$WORK/m0.err" || fail "no word of serve.lock: $(cat "$WORK/m0.err")"
[ ! -e "$WORK/dst" ] || fail "a refused migrate made the destination"
# --force: copies with a warning (to a destination of its own)
printf 'storage:\n  data: %s\n' "$WORK/forced" >"$WORK/forced.yaml"
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/forced.yaml" --force >"$WORK/mf.out" 2>"$WORK/mf.err" ||
    fail "migrate --force: $(cat "$WORK/mf.out" "$WORK/mf.err")"
grep -q "warning: a serve holds" "$WORK/mf.err" || fail "--force without a warning: $(cat "$WORK/mf.err")"
grep -q "^verified" "$WORK/mf.out" || fail "--force: $(cat "$WORK/mf.out")"
pc_stop

echo "== usage errors"
rc=0
"$PULLCACHE" migrate --from "$SRC" >/dev/null 2>&1 || rc=$?
expect_eq 2 "$rc" "migrate without --to"
printf 'storage:\n  data: %s\n' "$SRC" >"$WORK/self.yaml"
rc=0
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/self.yaml" >/dev/null 2>&1 || rc=$?
expect_eq 2 "$rc" "migrate onto the source itself"
rc=0
"$PULLCACHE" migrate --from "$WORK/nothing" --to "$WORK/dst.yaml" >/dev/null 2>&1 || rc=$?
expect_eq 3 "$rc" "migrate from a missing directory"

NSRC=$(find "$SRC/blobs" -type f | wc -l)
[ "$NSRC" -gt 10 ] || fail "only $NSRC blob files at the source"

echo "== dry run: counts, writes nothing"
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/dst.yaml" --dry-run --json >"$WORK/dry.json" ||
    fail "dry run: $(cat "$WORK/dry.json")"
expect_eq "$NSRC" "$(jq -r .blobs.copied "$WORK/dry.json")" "dry run: blobs it would copy"
expect_eq 0 "$(find "$WORK/dst/blobs" -type f 2>/dev/null | wc -l)" "blob files after a dry run"

# kill_midway CONFIG LABEL: run migrate one blob at a time and kill -9 it once
# it has read 16 MiB (/proc/PID/io), which is inside the 64 MiB layer (the
# source's other blobs are small); $NMID: the blobs the destination has
# then, fewer than the source's (a dry run counts them)
kill_midway() {
    local mpid r rc=0
    "$PULLCACHE" migrate --from "$SRC" --to "$1" --jobs 1 >"$WORK/$2-killed.out" 2>&1 &
    mpid=$!
    for _ in $(seq 4000); do
        r=$(awk '/^rchar:/ { print $2 }' "/proc/$mpid/io" 2>/dev/null) || break
        [ "${r:-0}" -gt $((16 << 20)) ] && break
        sleep 0.005
    done
    kill -KILL "$mpid" 2>/dev/null || true
    wait "$mpid" 2>/dev/null || rc=$?
    expect_eq 137 "$rc" "$2: the first migrate was killed (it ended before: $(cat "$WORK/$2-killed.out"))"
    "$PULLCACHE" migrate --from "$SRC" --to "$1" --dry-run --json >"$WORK/$2-killed.json" ||
        fail "$2: dry run after the kill: $(cat "$WORK/$2-killed.json")"
    NMID=$(jq -r .blobs.present "$WORK/$2-killed.json")
    [ "$NMID" -lt "$NSRC" ] || fail "$2: the kill came after every blob was copied ($NMID of $NSRC)"
    echo "$2: killed with $NMID of $NSRC blobs copied"
}

echo "== kill -9 in the middle of a blob, then resume"
kill_midway "$WORK/dst.yaml" fs
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/dst.yaml" --json >"$WORK/m2.json" ||
    fail "resumed migrate: $(cat "$WORK/m2.json")"
echo "resumed: $(cat "$WORK/m2.json")"
jq -e --argjson n "$NSRC" --argjson m "$NMID" \
    '.verified and (.problems | length) == 0 and .blobs.source == $n and .blobs.present >= $m
     and .blobs.copied == ($n - .blobs.present) and .blobs.copied > 0' "$WORK/m2.json" >/dev/null ||
    fail "resumed run: $(cat "$WORK/m2.json")"
jq -e '.uploads_skipped == 1 and .access.source > 0 and .access.set == .access.source
       and .limits.source > 0 and .tags.source == 6 and .manifests.source > 8' "$WORK/m2.json" >/dev/null ||
    fail "records of the resumed run: $(cat "$WORK/m2.json")"

echo "== a third run has nothing to do"
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/dst.yaml" >"$WORK/m3.out" || fail "third run: $(cat "$WORK/m3.out")"
grep -q "^nothing to do" "$WORK/m3.out" || fail "third run: $(cat "$WORK/m3.out")"
cat "$WORK/m3.out"
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/dst.yaml" --json >"$WORK/m3.json"
jq -e '.nothing_to_do and .verified and .blobs.copied == 0' "$WORK/m3.json" >/dev/null ||
    fail "third run's JSON: $(cat "$WORK/m3.json")"

same_rows fs rows_sqlite "$WORK/dst/meta.db"

# the same blob files, byte for byte
(cd "$SRC/blobs" && find . -type f | sort | xargs sha256sum) >"$WORK/src.sums"
(cd "$WORK/dst/blobs" && find . -type f | sort | xargs sha256sum) >"$WORK/dst.sums"
cmp -s "$WORK/src.sums" "$WORK/dst.sums" || fail "the blob files differ: $(diff "$WORK/src.sums" "$WORK/dst.sums" | awk "NR <= 10")"

# check_dir DIR WHAT: every file of a skopeo dir: copy is named by its digest
check_dir() {
    local f n
    for f in "$1"/*; do
        n=$(basename "$f")
        case $n in manifest.json | version | signature-*) continue ;; esac
        expect_eq "${n%.manifest.json}" "$(sha256sum "$f" | cut -d' ' -f1)" "$2: bytes of $n"
    done
}

# check_served LABEL [serve args...]: serve the destination (the upstream is
# stopped by now) and pull every image by digest, byte-identical to what was pushed
check_served() {
    local label=$1 t out
    shift
    "$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --upstream "up=http://127.0.0.1:$FP" "$@" \
        >>"$WORK/pullcache-$label.log" 2>&1 &
    PC_PID=$!
    PIDS+=("$PC_PID")
    wait_http "http://$REG/v2/" "$PC_PID"
    for t in "${TAGS[@]}"; do
        expect_eq "${DIG[$t]}" "$(reg_digest local/app "$t")" "$label: local/app:$t"
        out=$WORK/out-$label-$t
        sk copy -q --all --preserve-digests --src-tls-verify=false \
            "docker://$REG/local/app@${DIG[$t]}" "dir:$out" >>"$WORK/clients.log" 2>&1 ||
            fail "$label: pull local/app@${DIG[$t]}"
        check_dir "$out" "$label: $t"
    done
    out=$WORK/out-$label-big
    sk copy -q --src-tls-verify=false "docker://$REG/local/big@${DIG[big]}" "dir:$out" \
        >>"$WORK/clients.log" 2>&1 || fail "$label: pull local/big"
    check_dir "$out" "$label: big"
    expect_eq "$TAGLIST" "$(curl -sS -f "http://$REG/v2/local/app/tags/list" | jq -c '.tags | sort')" \
        "$label: tags"
    # the mirrored image, with no upstream to fetch from: from the migrated cache
    sk copy -q --all --src-tls-verify=false "docker://$REG/up/library/up@$UP_TOP" \
        "oci:$WORK/mirrored-$label:x" >>"$WORK/clients.log" 2>&1 || fail "$label: mirrored image"
    pc_stop
}
echo "== a corrupt blob at the source is reported, not copied"
cp -a "$SRC" "$WORK/src-bad"
victim=$(find "$WORK/src-bad/blobs" -type f -size -2k | sort | awk "NR == 1") # not head: SIGPIPE under pipefail
printf 'damaged' >>"$victim"
printf 'storage:\n  data: %s\n' "$WORK/dst-bad" >"$WORK/bad.yaml"
rc=0
"$PULLCACHE" migrate --from "$WORK/src-bad" --to "$WORK/bad.yaml" --json >"$WORK/bad.json" 2>"$WORK/bad.err" || rc=$?
expect_eq 1 "$rc" "migrate with a corrupt source blob"
jq -e --arg d "sha256:$(basename "$victim")" '[.problems[] | select(.kind == "corrupt" and .digest == $d)]
    | length == 1' "$WORK/bad.json" >/dev/null || fail "the corrupt blob not reported: $(cat "$WORK/bad.json")"
[ ! -e "$WORK/dst-bad/blobs/sha256/$(basename "$victim" | cut -c1-2)/$(basename "$victim")" ] ||
    fail "the corrupt blob was copied"

fake_stop "$FP"
echo "== serve on the migrated data directory"
check_served fs --data "$WORK/dst"

echo "== a serve on the destination: refused; once it stopped, migrate goes on"
"$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$WORK/dst" >>"$WORK/pullcache-dstlive.log" 2>&1 &
PC_PID=$!
PIDS+=("$PC_PID")
wait_http "http://$REG/v2/" "$PC_PID"
rc=0
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/dst.yaml" >"$WORK/mlive.out" 2>"$WORK/mlive.err" || rc=$?
expect_eq 4 "$rc" "migrate into a destination a serve uses"
grep -q "a serve (claimed:$WORK/dst) uses the destination" "$WORK/mlive.err" ||
    fail "no word of the serve on the destination: $(cat "$WORK/mlive.err")"
pc_stop # graceful: it gives up its upkeep lease
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/dst.yaml" >"$WORK/mlive2.out" 2>&1 ||
    fail "migrate after the destination's serve stopped: $(cat "$WORK/mlive2.out")"
grep -q "^nothing to do" "$WORK/mlive2.out" || fail "after the stop: $(cat "$WORK/mlive2.out")"

# ---- S3 + PostgreSQL ---------------------------------------------------------------------------
if ! command -v radosgw >/dev/null || ! bash "$PC_SRC/tests/tools/pg.sh" bindir >/dev/null; then
    echo "PASS: test_migrate (fs + SQLite; S3 + PostgreSQL skipped: radosgw or PostgreSQL not installed)"
    exit 0
fi
echo "== to S3 + PostgreSQL"
RGW_DIR=$WORK/rgw
bash "$PC_SRC/tests/tools/rgw.sh" start "$RGW_DIR" 5020 >"$WORK/rgw-start.log" 2>&1 ||
    fail "radosgw did not start: $(tail -5 "$WORK/rgw-start.log")"
PG_DIR=$(mktemp -d /tmp/pc-e2e-migrate-pg.XXXXXX)
chmod 755 "$PG_DIR"
bash "$PC_SRC/tests/tools/pg.sh" start "$PG_DIR" 5021 >"$WORK/pg-start.log" 2>&1 ||
    fail "PostgreSQL did not start: $(tail -5 "$WORK/pg-start.log")"
. "$RGW_DIR/env"
. "$PG_DIR/env"
export MIGRATE_PG="$PC_PG_CONNINFO"
printf 'aws_access_key_id = %s\naws_secret_access_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" \
    >"$WORK/s3.credentials"
chmod 600 "$WORK/s3.credentials"
cat >"$WORK/fleet.yaml" <<YML
storage:
  data: $WORK/fleet
  blobs:
    driver: s3
    endpoint: $S3_ENDPOINT
    region: $S3_REGION
    bucket: $S3_BUCKET
    path_style: true
    credentials_file: $WORK/s3.credentials
  meta:
    driver: postgres
    conninfo_env: MIGRATE_PG
YML
kill_midway "$WORK/fleet.yaml" s3pg
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/fleet.yaml" --json >"$WORK/s1.json" ||
    fail "migrate to S3 + PostgreSQL: $(cat "$WORK/s1.json")"
echo "to S3 + PostgreSQL: $(cat "$WORK/s1.json")"
jq -e --argjson n "$NSRC" --argjson m "$NMID" '.verified and (.problems | length) == 0
       and .blobs.present == $m and .blobs.copied == $n - $m
       and .tags.source == 6 and .access.set > 0 and .limits.set > 0' "$WORK/s1.json" >/dev/null ||
    fail "S3 + PostgreSQL run: $(cat "$WORK/s1.json")"
"$PULLCACHE" migrate --from "$SRC" --to "$WORK/fleet.yaml" --json >"$WORK/s2.json" ||
    fail "second run to S3 + PostgreSQL: $(cat "$WORK/s2.json")"
jq -e '.nothing_to_do and .verified' "$WORK/s2.json" >/dev/null ||
    fail "second run to S3 + PostgreSQL did something: $(cat "$WORK/s2.json")"
grep -q "$S3_SECRET_KEY" "$WORK"/s*.json && fail "the S3 secret in migrate's output"
same_rows s3pg rows_pg
check_served s3pg --config "$WORK/fleet.yaml"
echo "PASS: test_migrate (fs + SQLite, S3 + PostgreSQL)"
