#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_gc.sh - `pullcache gc` against the data directory of a running daemon:
# an image pulled through the cache (fake upstream, inline_image scenario) is
# evicted by --max-size 0 (its blobs go, its manifest stays), pushed blobs and
# a pushed blob that a mirror repository shares stay, --dry-run removes
# nothing, the sweep removes an unreferenced blob only past the grace period,
# and pulling the evicted image again works (its layers re-fetched upstream).
. "$(dirname "$0")/lib.sh"
pc_needs_disk "pullcache gc on the data directory"

clients_init
FP=5002
DATA=$WORK/data
CFG=$WORK/config.yml
IMG=127.0.0.1:$PC_PORT/fake/library/inline:v1
cat >"$CFG" <<YML
upstreams:
  - name: fake
    url: http://127.0.0.1:$FP
YML

gc() { "$PULLCACHE" gc --config "$CFG" --data "$DATA" "$@"; }

# ---- usage -------------------------------------------------------------------
"$PULLCACHE" gc --help | grep -q -- '--max-size BYTES' || fail "gc --help lacks --max-size"
"$PULLCACHE" --help | grep -q '^  gc ' || fail "gc not in the verb list"
rc=0
"$PULLCACHE" gc --data "$DATA" --max-size lots 2>/dev/null || rc=$?
expect_eq 2 "$rc" "gc with a bad --max-size"
rc=0
"$PULLCACHE" gc --dry-run --data "$WORK/nonexistent" 2>"$WORK/gc-missing.err" || rc=$?
expect_eq 1 "$rc" "gc --data of a missing directory"
[ ! -e "$WORK/nonexistent" ] || fail "gc created the missing data directory"
grep -q "not a pullcache data directory" "$WORK/gc-missing.err" || fail "gc on a missing data directory: $(cat "$WORK/gc-missing.err")"

fake_start inline_image "$FP"
pc_start "$DATA" --config "$CFG"

# ---- pull through the cache ------------------------------------------------------
echo "== pull $IMG"
sk copy -q --src-tls-verify=false "docker://$IMG" "dir:$WORK/pull1" >>"$WORK/clients.log" 2>&1 ||
    fail "skopeo copy $IMG (see clients.log)"
man=$WORK/pull1/manifest.json
mapfile -t mirrored < <(jq -r '.config.digest, .layers[].digest' "$man")
[ "${#mirrored[@]}" -ge 3 ] || fail "expected a config and two layers, got ${#mirrored[@]} blobs"
man_digest=$(reg_digest fake/library/inline v1)
for d in "${mirrored[@]}" "$man_digest"; do
    [ -f "$(pc_blob_file "$DATA" "$d")" ] || fail "blob $d not cached after the pull"
done
gets_before=$(fake_count "$FP" GET blob)
expect_eq "${#mirrored[@]}" "$gets_before" "upstream blob GETs for the first pull"

# ---- local content ------------------------------------------------------------------
echo "== push local blobs"
head -c 3000 /dev/urandom >"$WORK/local1"
head -c 5000 /dev/urandom >"$WORK/local2"
pushed1=$(reg_push_blob team/app "$WORK/local1")
pushed2=$(reg_push_blob team/app "$WORK/local2")
# the first mirrored layer is also pushed into a local repository: shared
shared=${mirrored[1]}
cp "$(pc_blob_file "$DATA" "$shared")" "$WORK/shared"
expect_eq "$shared" "$(reg_push_blob team/shared "$WORK/shared")" "pushed shared layer digest"

# an unreferenced blob (a crash leftover): only the sweep removes it
orphan_src=$WORK/orphan
head -c 777 /dev/urandom >"$orphan_src"
orphan=sha256:$(sha256sum "$orphan_src" | cut -d' ' -f1)
orphan_file=$(pc_blob_file "$DATA" "$orphan")
mkdir -p "$(dirname "$orphan_file")"
cp "$orphan_src" "$orphan_file"

# ---- dry run --------------------------------------------------------------------------
echo "== gc --dry-run"
gc --max-size 0 --dry-run --json >"$WORK/dry.json" || fail "gc --dry-run"
expect_eq true "$(jq -r .dry_run "$WORK/dry.json")" "dry_run in JSON"
expect_eq $((${#mirrored[@]} - 1)) "$(jq -r .evict.freed "$WORK/dry.json")" "blobs a dry run would evict"
for d in "${mirrored[@]}"; do
    [ -f "$(pc_blob_file "$DATA" "$d")" ] || fail "dry run removed $d"
done

# ---- eviction (daemon running) -------------------------------------------------------
echo "== gc --max-size 0"
gc --max-size 0 --json >"$WORK/gc.json" || fail "gc --max-size 0"
cat "$WORK/gc.json" >>"$WORK/clients.log"
expect_eq $((${#mirrored[@]} - 1)) "$(jq -r .evict.freed "$WORK/gc.json")" "blobs evicted"
expect_eq 0 "$(jq -r .sweep.removed "$WORK/gc.json")" "blobs swept within the grace period"
[ "$(jq -r .sweep.young "$WORK/gc.json")" -ge 1 ] || fail "the orphan should count as young"
for d in "${mirrored[@]}"; do
    f=$(pc_blob_file "$DATA" "$d")
    if [ "$d" = "$shared" ]; then
        [ -f "$f" ] || fail "the layer shared with team/shared was evicted"
    else
        [ ! -f "$f" ] || fail "mirrored blob $d still stored after gc --max-size 0"
    fi
done
for d in "$pushed1" "$pushed2"; do
    [ -f "$(pc_blob_file "$DATA" "$d")" ] || fail "pushed blob $d was removed"
    expect_eq 200 "$(reg_status HEAD "/v2/team/app/blobs/$d")" "HEAD pushed blob $d"
done
[ -f "$(pc_blob_file "$DATA" "$man_digest")" ] || fail "the mirrored manifest was removed"
[ -f "$orphan_file" ] || fail "the young orphan was swept"

# text summary; a second run has nothing left to evict
gc --max-size 0 >"$WORK/gc.txt" || fail "gc (text)"
grep -q '^evicted 0 mirrored blob' "$WORK/gc.txt" || fail "text summary: $(cat "$WORK/gc.txt")"

# ---- sweep past the grace period --------------------------------------------------
echo "== gc --grace 0"
gc --grace 0 --json >"$WORK/sweep.json" || fail "gc --grace 0"
expect_eq 1 "$(jq -r .sweep.removed "$WORK/sweep.json")" "blobs swept with --grace 0"
expect_eq null "$(jq -r .max_size "$WORK/sweep.json")" "no cap configured: max_size null"
[ ! -f "$orphan_file" ] || fail "the orphan survived the sweep"
[ -f "$(pc_blob_file "$DATA" "$pushed1")" ] || fail "sweep removed a pushed blob"

# ---- pull again: evicted layers come back from upstream ---------------------------
echo "== pull again"
fake_reset_log "$FP"
sk copy -q --src-tls-verify=false "docker://$IMG" "dir:$WORK/pull2" >>"$WORK/clients.log" 2>&1 ||
    fail "skopeo copy $IMG after gc (see clients.log)"
for d in "${mirrored[@]}"; do
    cmp -s "$WORK/pull1/${d#sha256:}" "$WORK/pull2/${d#sha256:}" || fail "blob $d differs after re-fetch"
    [ -f "$(pc_blob_file "$DATA" "$d")" ] || fail "blob $d not cached again"
done
expect_eq $((${#mirrored[@]} - 1)) "$(fake_count "$FP" GET blob)" "upstream blob GETs after eviction"

# ---- the daemon keeps cache.max_size itself (its periodic run starts at once) -----
echo "== serve with cache.max_size"
pc_stop
cat >>"$CFG" <<YML
cache:
  max_size: 1
YML
pc_start "$DATA" --config "$CFG"
left=""
for _ in $(seq 50); do
    left=""
    for d in "${mirrored[@]}"; do
        [ "$d" = "$shared" ] || [ ! -f "$(pc_blob_file "$DATA" "$d")" ] || left="$left $d"
    done
    [ -z "$left" ] && break
    sleep 0.1
done
[ -z "$left" ] || fail "serve with cache.max_size 1 kept mirrored blobs:$left"
[ -f "$(pc_blob_file "$DATA" "$shared")" ] || fail "serve evicted the shared layer"
[ -f "$(pc_blob_file "$DATA" "$pushed2")" ] || fail "serve evicted a pushed blob"
grep -q 'evicted [0-9]* mirrored blob' "$WORK/pullcache.log" || fail "no eviction logged by serve"
# ... and says so in /metrics: evictions counted, what stays under the cap, the store's blobs
n_evicted=$(sed -n 's/.*evicted \([0-9]*\) mirrored blob.*/\1/p' "$WORK/pullcache.log" | tail -1)
[ "$n_evicted" -ge 1 ] || fail "serve's eviction line names no blob count"
for _ in $(seq 50); do
    [ "$(pc_metric pullcache_cache_evictions_total)" = "$n_evicted" ] && break
    sleep 0.1
done
expect_eq "$n_evicted" "$(pc_metric pullcache_cache_evictions_total)" "pullcache_cache_evictions_total"
[ "$(pc_metric pullcache_cache_evicted_bytes_total)" -gt 0 ] || fail "pullcache_cache_evicted_bytes_total is 0"
expect_eq 1 "$(pc_metric pullcache_cache_max_size_bytes)" "pullcache_cache_max_size_bytes (cache.max_size)"
[ "$(pc_metric pullcache_cache_mirrored_bytes)" -le 1 ] ||
    fail "pullcache_cache_mirrored_bytes $(pc_metric pullcache_cache_mirrored_bytes) is over the cap of 1"
n_files=$(find "$DATA/blobs" -type f | wc -l)
expect_eq "$n_files" "$(pc_metric pullcache_store_blobs)" "pullcache_store_blobs against the files in the store"
expect_eq "$(find "$DATA/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')" \
    "$(pc_metric pullcache_store_bytes)" "pullcache_store_bytes against the files in the store"
echo "ok"
