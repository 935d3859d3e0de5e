#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_fleet_gc.sh - gc on a fleet's stores while the fleet serves (issue 14):
# three serve replicas on ONE S3 bucket (radosgw) and ONE PostgreSQL database
# behind nginx (lib.sh fleet_start), mirroring a fake upstream, and
# `pullcache gc` run over and over as an operator runs it, with the replicas'
# configuration (their bucket and database; --grace 0 asked, which gc raises
# to 60 s on a blob store without a publish lock), while clients push and
# pull through nginx:
#   1. garbage first: an image pushed, then its manifest and blob links
#      deleted (nothing references its blobs any more), a raw blob pushed and
#      its link deleted; and a chunked upload left half done;
#   2. rounds of traffic through nginx - skopeo pushes of four test images
#      into a new repository each round, a new small image of random content
#      pushed with raw requests, pulls of the mirrored image (verified
#      digests) - with gc in a loop beside them, until the garbage is older
#      than gc's grace (a sleep of the clock, not a check);
#   3. a last gc beside a last round: afterwards the garbage is gone from
#      the bucket (so gc really removed what nothing referenced once it was
#      old enough), a blob unreferenced just before it is still there
#      (younger than the grace), the half-done upload finishes with the
#      right digest, and every image pushed in any round pulls back through
#      nginx byte-identical (skopeo, digests checked) - nothing referenced
#      was lost - and every blob a pushed manifest names is in the bucket;
#   4. pushes racing gc (a test hook makes it wait between its last look at a
#      blob's holders and the removal): a blob and a manifest pushed again
#      while gc removes their old unreferenced bytes are there afterwards.
# Runs on the run's radosgw and PostgreSQL under PULLCACHE_TEST_STORAGE=s3pg,
# else on its own (tests/tools/s3pg.sh); skipped (77) without radosgw,
# PostgreSQL or nginx.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

fleet_needed
clients_init

FP=5002
GRACE=60 # gc's floor on a blob store without a publish lock (src/cli/gc.c)
bash "$PC_SRC/tests/tools/mkimage.sh" "$WORK/img" fleetgc-mirror >/dev/null || fail "mkimage.sh"
mkimages "$WORK/push" fleetgc-push
mkimages "$WORK/old" fleetgc-garbage
fake_start pass "$FP" - - --repo library/co="$WORK/img"
fleet_start 3 "$WORK/data" --upstream "up=http://127.0.0.1:$FP"
R=http://$REG
CFG=$(awk 'prev == "--config" { print; exit } { prev = $0 }' "$WORK/replica-${FLEET_PORTS[0]}.args")
[ -f "$CFG" ] || fail "no configuration file among the replicas' arguments"
OCT=(-H 'Content-Type: application/octet-stream')
MT_MAN=application/vnd.oci.image.manifest.v1+json
blob_path() { echo "$1/blobs/sha256/${2#sha256:}"; } # LAYOUT DIGEST

# in_bucket DIGEST: 0 when the test's bucket has the blob, 1 when not
in_bucket() { pc_blob_present "" "$1"; }

# gc_run: one `pullcache gc` as an operator runs it against the fleet's stores
gc_run() {
    "$PULLCACHE" gc --config "$CFG" --data "$WORK/gc-scratch" --upstream "up=http://127.0.0.1:$FP" \
        --grace 0 --json >>"$WORK/gc.jsonl" 2>>"$WORK/gc.log"
}

# ---- 1. garbage ------------------------------------------------------------------------------
echo "== garbage: an image whose manifest and links are deleted, an unlinked blob, a half upload"
top=$(img_digest "$WORK/old" oci-single)
push_image "$WORK/old" oci-single gc/old:v1
mapfile -t OLD_BLOBS < <(jq -r '.config.digest, .layers[].digest' "$(blob_path "$WORK/old" "$top")")
req DELETE "/v2/gc/old/manifests/$top"
check_status 202 "DELETE the garbage image's manifest"
for d in "${OLD_BLOBS[@]}"; do
    req DELETE "/v2/gc/old/blobs/$d"
    check_status 202 "DELETE the garbage image's blob link $d"
done
rand_file "$WORK/junk" 5000
put_blob gc/raw "$WORK/junk"
req DELETE "/v2/gc/raw/blobs/$(dgst "$WORK/junk")"
check_status 202 "DELETE the raw blob's link"
# a half-done chunked upload, finished at the end
rand_file "$WORK/half" 3000
head -c 1500 "$WORK/half" >"$WORK/half.1"
tail -c +1501 "$WORK/half" >"$WORK/half.2"
upload_start gc/half
req PATCH "$UP" --data-binary "@$WORK/half.1" "${OCT[@]}" -H 'Content-Range: 0-1499'
check_status 202 "PATCH the first half of an upload left open during gc"
HALF=$(loc_url "$(hdr Location)")
# for part 4, referenced until then: a blob, and an image's manifest
rand_file "$WORK/race" 6000
put_blob gc/race "$WORK/race"
RACE=$(dgst "$WORK/race")
printf '{"architecture":"amd64","os":"linux","r":"%s"}' "$(openssl rand -hex 8)" >"$WORK/rcfg"
rand_file "$WORK/rlayer" 2500
put_blob gc/race "$WORK/rcfg"
put_blob gc/race "$WORK/rlayer"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$MT_MAN" "$(dgst "$WORK/rcfg")" "$(stat -c %s "$WORK/rcfg")" "$(dgst "$WORK/rlayer")" "$(stat -c %s "$WORK/rlayer")" >"$WORK/rman"
put_manifest gc/race m "$WORK/rman" "$MT_MAN"
RMAN=$(dgst "$WORK/rman")
T0=$(date +%s)
# what must go: the garbage's blobs and manifest, unless something else
# still references the same bytes (the mirrored and pushed images)
mapfile -t KEEP < <(for dir in "$WORK/img" "$WORK/push"; do
    find "$dir/blobs/sha256" -type f -printf 'sha256:%f\n'
    find "$dir/dir" -type f ! -name version -printf 'sha256:%f\n' 2>/dev/null | grep -E '^sha256:[0-9a-f]{64}$'
done | sort -u)
GARBAGE=()
for d in "$top" "${OLD_BLOBS[@]}" "$(dgst "$WORK/junk")"; do
    printf '%s\n' "${KEEP[@]}" | grep -qxF "$d" || GARBAGE+=("$d")
done
[ "${#GARBAGE[@]}" -ge 2 ] || fail "the garbage shares its blobs with the kept images (${#GARBAGE[@]} left)"
for d in "${GARBAGE[@]}"; do in_bucket "$d" || fail "garbage blob $d not in the bucket after its push"; done
echo "ok: ${#GARBAGE[@]} unreferenced blobs in the bucket; an upload half done"

# ---- 2. traffic through nginx with gc in a loop ---------------------------------------------------
mtop=$(img_digest "$WORK/img" oci-index)
mamd=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$(blob_path "$WORK/img" "$mtop")")
mapfile -t MBLOBS < <(jq -r '.config.digest, .layers[].digest' "$(blob_path "$WORK/img" "$mamd")")
# what the rounds pushed (a round may run in the background: files, not arrays):
#   pushed.list REPO:TAG=IMAGE (a tag of $WORK/push), raw.list REPO:TAG=DIGEST of a
#   manifest pushed with raw requests, rawblobs.list the blobs those name
: >"$WORK/pushed.list"
: >"$WORK/raw.list"
: >"$WORK/rawblobs.list"
pull_mirror() { # ROUND: the mirrored image through nginx, digests verified
    local dir=$WORK/mirror-$1 U=$R/v2/up/library/co d
    mkdir -p "$dir"
    curl -sS -f -H "Accept: $MANIFEST_ACCEPT" -o "$dir/index" "$U/manifests/oci-index" || return 1
    [ "$(sha "$dir/index")" = "$mtop" ] || return 1
    curl -sS -f -H "Accept: $MANIFEST_ACCEPT" -o "$dir/m" "$U/manifests/$mamd" || return 1
    [ "$(sha "$dir/m")" = "$mamd" ] || return 1
    for d in "${MBLOBS[@]}"; do
        curl -sS -f -o "$dir/b" "$U/blobs/$d" || return 1
        [ "$(sha "$dir/b")" = "$d" ] || return 1
    done
}
round() { # N: one round of pushes and pulls through nginx (fails hard: may run in the background)
    local n=$1 t repo=gc/app$1 cfg layer m
    for t in oci-single oci-index docker-single docker-list; do
        push_image "$WORK/push" "$t" "$repo:$t"
        echo "$repo:$t=$t" >>"$WORK/pushed.list"
    done
    # a new small image of random bytes, with raw requests
    printf '{"architecture":"amd64","os":"linux","round":%s,"r":"%s"}' "$n" "$(openssl rand -hex 8)" >"$WORK/cfg$n"
    rand_file "$WORK/layer$n" $((2000 + n))
    put_blob "gc/raw$n" "$WORK/cfg$n"
    put_blob "gc/raw$n" "$WORK/layer$n"
    cfg=$(dgst "$WORK/cfg$n")
    layer=$(dgst "$WORK/layer$n")
    printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
        "$MT_MAN" "$cfg" "$(stat -c %s "$WORK/cfg$n")" "$layer" "$(stat -c %s "$WORK/layer$n")" >"$WORK/man$n"
    put_manifest "gc/raw$n" v1 "$WORK/man$n" "$MT_MAN"
    m=$(dgst "$WORK/man$n")
    echo "gc/raw$n:v1=$m" >>"$WORK/raw.list"
    printf '%s\n' "$cfg" "$layer" >>"$WORK/rawblobs.list"
    pull_mirror "$n" || fail "round $n: the mirrored image through nginx: no verified bytes"
    # what the round before pushed reads back while gc runs
    if [ "$n" -gt 1 ]; then
        req GET "/v2/gc/raw$((n - 1))/manifests/v1" -H "Accept: $MT_MAN"
        [ "$ST" = 200 ] && cmp -s "$WORK/man$((n - 1))" "$RB" ||
            fail "round $n: GET the manifest of round $((n - 1)): $(_resp)"
    fi
}

echo "== rounds of pushes and pulls through nginx, gc in a loop beside them"
: >"$WORK/gc.jsonl"
(
    while [ ! -f "$WORK/gc.stop" ]; do
        gc_run || echo "gc failed (rc $?)" >>"$WORK/gc.log"
        sleep 0.5
    done
) &
GCLOOP=$!
PIDS+=("$GCLOOP")
n=0
# until the garbage is older than gc's grace (the clock decides how many rounds)
while [ "$(date +%s)" -le $((T0 + GRACE + 2)) ] || [ "$n" -lt 2 ]; do
    n=$((n + 1))
    round "$n"
    sleep 1 # fewer rounds (each is pulled back at the end), gc as often
done
touch "$WORK/gc.stop"
wait "$GCLOOP" || true
loops=$(wc -l <"$WORK/gc.jsonl")
echo "ok: $n rounds through nginx beside $loops gc runs"

# ---- 3. a last gc beside a last round ------------------------------------------------------------------
echo "== a last gc beside a last round, now that the garbage is older than ${GRACE}s"
# a blob unreferenced just now: younger than the grace, gc must keep it
rand_file "$WORK/young" 4000
put_blob gc/young "$WORK/young"
req DELETE "/v2/gc/young/blobs/$(dgst "$WORK/young")"
check_status 202 "DELETE the young blob's link"
TY=$(date +%s)
n=$((n + 1))
round "$n" &
last=$!
TG=$(date +%s)
gc_run || fail "the last gc failed: $(tail -3 "$WORK/gc.log")"
wait "$last" || fail "the last round failed"
! grep -q "gc failed" "$WORK/gc.log" || fail "gc failed while the fleet served: $(grep -m3 'gc failed' "$WORK/gc.log")"
grep -q "grace raised from 0 to $GRACE s" "$WORK/gc.log" ||
    fail "gc did not raise --grace 0 to ${GRACE}s on S3: $(tail -3 "$WORK/gc.log")"
removed=$(jq -s 'map(.sweep.removed) | add' "$WORK/gc.jsonl")
for d in "${GARBAGE[@]}"; do
    ! in_bucket "$d" || fail "garbage blob $d (unreferenced for more than ${GRACE}s) is still in the bucket after gc"
done
[ "$removed" -ge "${#GARBAGE[@]}" ] || fail "gc says it removed $removed blobs, fewer than the ${#GARBAGE[@]} garbage ones"
echo "ok: the ${#GARBAGE[@]} garbage blobs are gone ($removed removed in all)"
if [ $((TG - TY)) -lt $((GRACE - 10)) ]; then
    in_bucket "$(dgst "$WORK/young")" || fail "a blob unreferenced $((TG - TY))s before gc (grace ${GRACE}s) was removed"
    echo "ok: a blob unreferenced $((TG - TY))s before gc is kept"
else
    echo "note: the machine took $((TG - TY))s from the young blob to gc; its check is left out"
fi

# ---- 4. a publish racing gc's removal ---------------------------------------------------------
# S3 has no publish lock: gc and a publisher meet on the blob's "gc:<digest>"
# lease in PostgreSQL. A gc (PC_TEST_GC_REMOVE_DELAY_MS: it waits between its
# last look at a blob's holders and the removal) is about to remove a blob
# unreferenced for longer than the grace when a client pushes the same bytes
# again through nginx (the replica finds them stored, or writes them, and
# links them - after gc looked). The push must not get a 201 for a blob that
# gc then removes: it waits for gc and then finds the blob gone (an upload:
# an error the client retries; a manifest: its bytes put there again).
race_gc() { # DIGEST LOG: start a gc that holds the removal of DIGEST; wait until it does
    PC_TEST_GC_REMOVE_DELAY_MS=3000 "$PULLCACHE" gc --config "$CFG" --data "$WORK/gc-scratch" \
        --upstream "up=http://127.0.0.1:$FP" --grace 0 --json >>"$WORK/gc.jsonl" 2>"$2" &
    RACE_GC=$!
    PIDS+=("$RACE_GC")
    for _ in $(seq 600); do
        grep -q "holds the removal of $1" "$2" && return 0
        kill -0 "$RACE_GC" 2>/dev/null || fail "gc ended without removing $1: $(tail -3 "$2")"
        sleep 0.05
    done
    fail "gc did not reach the removal of $1 in 30 s: $(tail -3 "$2")"
}
echo "== pushes racing gc's removal of the same bytes"
fails=$API_FAIL
req DELETE "/v2/gc/race/blobs/$RACE"
check_status 202 "DELETE the link of the blob of the race"
race_gc "$RACE" "$WORK/gc-race1.log"
codes=""
for _ in 1 2 3; do # a client's retries
    req POST "/v2/gc/race/blobs/uploads/" -d '' -H 'Content-Type:'
    [ "$ST" = 202 ] || fail "POST an upload of the blob gc is removing: $(_resp)"
    req PUT "$(addq "$(loc_url "$(hdr Location)")" "digest=$RACE")" --data-binary "@$WORK/race" "${OCT[@]}"
    codes+=" $ST"
    [ "$ST" = 201 ] && break
done
wait "$RACE_GC" || fail "the gc of the race failed: $(tail -3 "$WORK/gc-race1.log")"
check_eq 201 "$ST" "push of a blob while gc removed the same bytes (answers:$codes)"
req GET "/v2/gc/race/blobs/$RACE"
check_status 200 "GET the blob pushed while gc removed the same bytes (answers:$codes)"
check_body_file "$WORK/race" "GET the blob pushed while gc removed the same bytes"
in_bucket "$RACE" || _fail "the blob pushed while gc removed the same bytes (answers:$codes) is not in the bucket"
req DELETE "/v2/gc/race/manifests/$RMAN"
check_status 202 "DELETE the manifest of the race"
race_gc "$RMAN" "$WORK/gc-race2.log"
req PUT "/v2/gc/race/manifests/m2" --data-binary "@$WORK/rman" -H "Content-Type: $MT_MAN"
mcode=$ST
wait "$RACE_GC" || fail "the gc of the race failed: $(tail -3 "$WORK/gc-race2.log")"
check_eq 201 "$mcode" "PUT of a manifest while gc removed the same bytes"
req GET "/v2/gc/race/manifests/m2" -H "Accept: $MT_MAN"
check_status 200 "GET the manifest pushed while gc removed the same bytes"
check_body_file "$WORK/rman" "GET the manifest pushed while gc removed the same bytes"
in_bucket "$RMAN" || _fail "the manifest pushed while gc removed the same bytes is not in the bucket"
[ "$API_FAIL" != "$fails" ] ||
    echo "ok: a blob (answers:$codes) and a manifest pushed while gc removed their bytes are there"

echo "== everything pushed pulls back through nginx"
req PUT "$(addq "$HALF" "digest=$(dgst "$WORK/half")")" --data-binary "@$WORK/half.2" "${OCT[@]}" \
    -H 'Content-Range: 1500-2999'
check_status 201 "finish the upload left half done during $((loops + 1)) gc runs"
req GET "/v2/gc/half/blobs/$(dgst "$WORK/half")"
check_status 200 "GET the blob of the upload finished after gc"
check_body_file "$WORK/half" "GET the blob of the upload finished after gc"
mapfile -t PUSHED <"$WORK/pushed.list"
mapfile -t RAW <"$WORK/raw.list"
mapfile -t RAWBLOBS <"$WORK/rawblobs.list"
for e in "${PUSHED[@]}"; do
    ref=${e%%=*}
    t=${e#*=}
    out=$WORK/back/${ref//[:\/]/_}
    mkdir -p "$WORK/back"
    sk copy -q --all --preserve-digests --src-tls-verify=false "docker://$REG/$ref" "dir:$out" \
        >>"$WORK/clients.log" 2>&1 || fail "skopeo copy --all docker://$REG/$ref after gc (see clients.log)"
    diff -r "$WORK/push/dir/$t" "$out" >&2 || fail "$ref pulled back after gc differs from the pushed $t"
    rm -rf "$out"
done
for e in "${RAW[@]}"; do
    ref=${e%%=*}
    m=${e#*=}
    req GET "/v2/${ref%%:*}/manifests/${ref#*:}" -H "Accept: $MT_MAN"
    check_status 200 "GET $ref after gc"
    check_eq "$m" "$(dgst "$RB")" "digest of $ref after gc"
done
for d in "${RAWBLOBS[@]}"; do
    in_bucket "$d" || _fail "blob $d of a pushed image is missing from the bucket after gc"
done
# every blob the pushed images name is in the bucket
for d in $(find "$WORK/push/blobs/sha256" -type f -printf 'sha256:%f\n'); do
    in_bucket "$d" || _fail "blob $d of the pushed images is missing from the bucket after gc"
done
pull_mirror final || fail "the mirrored image after gc: no verified bytes"
echo "ok: ${#PUSHED[@]} skopeo-pushed and ${#RAW[@]} raw-pushed images byte-identical after gc"
api_done
