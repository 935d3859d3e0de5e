#!/usr/bin/env bash
# test_fsck.sh - `pullcache fsck` on a real data directory: clean after
# pushes while serve runs (exit 0, every JSON count 0); then each kind of
# damage is found exactly, with serve running (exit 1, JSON kinds): a flipped byte in a layer
# (with the link and the manifest it breaks), a deleted layer, a deleted
# child manifest of an index, an old staging file without a session, a
# stray temp file, while young ones are left alone; --repair fixes each
# (exit 0) and a second fsck is clean; the damaged images then fail cleanly
# (404 MANIFEST_UNKNOWN / BLOB_UNKNOWN, never corrupt bytes) and can be
# pushed again; a corrupt mirrored layer is repaired with serve running and
# fetched again from the upstream; a push in progress survives fsck
# --repair; a missing data directory is exit 3 and nothing is created.
#
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"
pc_needs_disk "pullcache fsck on the data directory"

clients_init
DATA=$WORK/data
FP=5002

fsck() { "$PULLCACHE" fsck --data "$DATA" "$@"; }

# check OUT [fsck args...]: fsck --json into OUT; prints its exit status.
check() {
    local out=$1 rc=0
    shift
    fsck --json "$@" >"$out" 2>>"$WORK/fsck.err" || rc=$?
    cat "$out" >>"$WORK/fsck.log"
    echo "$rc"
}

# kinds FILE: one "kind repo what" line per problem (what: digest, upload
# id or temp file name), sorted.
kinds() {
    jq -r '.problems[] | [.kind, (.repo // "-"), (.digest // .upload // .name // "-")] | join(" ")' \
        "$1" | sort
}

# expect_kinds FILE LINE...: the problems are exactly these.
expect_kinds() {
    local file=$1 want got
    shift
    want=$(printf '%s\n' "$@" | sort)
    got=$(kinds "$file")
    [ "$want" = "$got" ] || fail "fsck problems: want
$want
got
$got"
}

# expect_clean WHAT: fsck exits 0 with no problem, every count 0.
expect_clean() {
    local rc
    rc=$(check "$WORK/clean.json")
    expect_eq 0 "$rc" "fsck exit status ($1)"
    expect_eq true "$(jq -r .clean "$WORK/clean.json")" "clean ($1)"
    expect_eq 0 "$(jq -r '.problems_found + ([.counts[]] | add)' "$WORK/clean.json")" "problems ($1)"
}

# repair WHAT N: fsck --repair exits 0 having repaired N problems, then fsck is clean.
repair() {
    local rc=0
    fsck --repair >"$WORK/repair.txt" 2>&1 || rc=$?
    cat "$WORK/repair.txt" >>"$WORK/fsck.log"
    expect_eq 0 "$rc" "fsck --repair exit status ($1)"
    grep -q "repaired $2 of $2 problem" "$WORK/repair.txt" || fail "fsck --repair ($1): $(cat "$WORK/repair.txt")"
    expect_clean "after repairing $1"
}

# flip FILE: invert the byte in the middle of FILE.
flip() {
    python3 -c 'import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(b)' "$1"
}

# ---- usage and a missing data directory ----------------------------------------
"$PULLCACHE" fsck --help >"$WORK/help.txt"
for want in '--repair' '--json' 'Exit status:' 'Example:' '3  the data directory'; do
    grep -q -- "$want" "$WORK/help.txt" || fail "fsck --help lacks '$want'"
done
"$PULLCACHE" --help | grep -q '^  fsck ' || fail "fsck not in the verb list"
for args in "--bogus" "--grace soon" "extra"; do
    rc=0
    # shellcheck disable=SC2086 # split on purpose
    fsck $args >/dev/null 2>&1 || rc=$?
    expect_eq 2 "$rc" "fsck $args"
done
rc=0
"$PULLCACHE" fsck --data "$WORK/missing/data" 2>"$WORK/missing.err" || rc=$?
expect_eq 3 "$rc" "fsck of a missing data directory"
[ ! -e "$WORK/missing" ] || fail "fsck created $WORK/missing"
grep -q 'cannot open the data directory' "$WORK/missing.err" || fail "message: $(cat "$WORK/missing.err")"
if [ ! -e /nonexistent ]; then
    rc=0
    "$PULLCACHE" fsck --data /nonexistent --repair 2>/dev/null || rc=$?
    expect_eq 3 "$rc" "fsck --data /nonexistent"
    [ ! -e /nonexistent ] || fail "fsck created /nonexistent"
fi
mkdir "$WORK/empty"
rc=0
"$PULLCACHE" fsck --data "$WORK/empty" --repair 2>/dev/null || rc=$?
expect_eq 3 "$rc" "fsck of a directory that is no data directory"
[ -z "$(ls -A "$WORK/empty")" ] || fail "fsck wrote into an empty directory: $(ls -A "$WORK/empty")"

# ---- clean after pushes, while serve runs ------------------------------------
for s in a b c; do mkimages "$WORK/img$s" "fsck-$s" 1; done
pc_start "$DATA"
push_image "$WORK/imga" oci-single team/a:1
push_image "$WORK/imgb" oci-single team/b:1
push_image "$WORK/imgc" oci-index team/c:1
expect_clean "after pushes, serve running"
[ "$(jq -r .checked.blobs "$WORK/clean.json")" -ge 15 ] || fail "fsck hashed too few blobs"
expect_eq false "$(jq -r .repair "$WORK/clean.json")" "repair in JSON"
fsck >"$WORK/clean.txt" || fail "fsck (text) of a clean data directory"
grep -q "is consistent" "$WORK/clean.txt" || fail "text: $(cat "$WORK/clean.txt")"

# digests: the manifests, and each image's own layer (layer 3 is unique per image)
ma=$(img_digest "$WORK/imga" oci-single)
mb=$(img_digest "$WORK/imgb" oci-single)
mc=$(img_digest "$WORK/imgc" oci-index)
reg_get_manifest team/a 1 "$WORK/a.json" >/dev/null
reg_get_manifest team/b 1 "$WORK/b.json" >/dev/null
reg_get_manifest team/c 1 "$WORK/c.json" >/dev/null
la=$(jq -r '.layers[2].digest' "$WORK/a.json")
lb=$(jq -r '.layers[2].digest' "$WORK/b.json")
child=$(jq -r '.manifests[0].digest' "$WORK/c.json")
for d in "$la" "$lb" "$child"; do [ -f "$(pc_blob_file "$DATA" "$d")" ] || fail "no file for $d"; done

# Damage to blobs and manifests is found and repaired with serve running
# (fsck is safe beside it: the meta store is shared in WAL mode).
# ---- a flipped byte in a layer -----------------------------------------------------
echo "== corrupt layer"
flip "$(pc_blob_file "$DATA" "$la")"
expect_eq 1 "$(check "$WORK/f.json")" "fsck exit status with a corrupt layer"
expect_kinds "$WORK/f.json" "corrupt_blob - $la" "dangling_link team/a $la" "incomplete_manifest team/a $ma"
expect_eq 1 "$(jq -r .counts.corrupt_blob "$WORK/f.json")" "corrupt_blob count"
expect_eq false "$(jq -r .clean "$WORK/f.json")" "clean with a corrupt layer"
jq -e --arg d "$la" '.problems[] | select(.kind == "corrupt_blob" and .digest == $d)
    | .action | test("remove the blob file")' "$WORK/f.json" >/dev/null || fail "corrupt_blob action"
jq -e --arg p "$(pc_blob_file "$DATA" "$la")" '.problems[] | select(.kind == "corrupt_blob") | .path == $p' \
    "$WORK/f.json" >/dev/null || fail "corrupt_blob path"
rc=0
fsck >"$WORK/f.txt" || rc=$?
expect_eq 1 "$rc" "fsck (text) exit status"
grep -q "^corrupt_blob $la .*--repair would remove the blob file" "$WORK/f.txt" || fail "text: $(cat "$WORK/f.txt")"
grep -q "^  incomplete_manifest  *1 " "$WORK/f.txt" || fail "text counts: $(cat "$WORK/f.txt")"
[ -f "$(pc_blob_file "$DATA" "$la")" ] || fail "fsck without --repair removed the corrupt layer"
repair "a corrupt layer" 3
[ ! -f "$(pc_blob_file "$DATA" "$la")" ] || fail "the corrupt layer is still stored"

# ---- a deleted layer ---------------------------------------------------------------------
echo "== deleted layer"
rm "$(pc_blob_file "$DATA" "$lb")"
expect_eq 1 "$(check "$WORK/f.json")" "fsck exit status with a deleted layer"
expect_kinds "$WORK/f.json" "dangling_link team/b $lb" "incomplete_manifest team/b $mb"
repair "a deleted layer" 2

# ---- a deleted child manifest of an index ---------------------------------------------
echo "== deleted child manifest"
rm "$(pc_blob_file "$DATA" "$child")"
expect_eq 1 "$(check "$WORK/f.json")" "fsck exit status with a deleted child manifest"
expect_kinds "$WORK/f.json" "manifest_blob_missing team/c $child" "incomplete_manifest team/c $mc"
repair "a deleted child manifest" 2

# The staging and temp files are planted with serve stopped: its own sweeps
# remove session-less staging files, which would race the planted ones.
pc_stop

# ---- staging files: an old one without a session, a young one (a fetch) ----------
echo "== orphan upload"
old_id=6d1e2c1a-0000-4000-8000-00000000f5c1
printf 'half an upload' >"$DATA/uploads/$old_id"
touch -d '2 hours ago' "$DATA/uploads/$old_id"
printf 'a fetch in flight' >"$DATA/uploads/fetch-0123456789abcdef"
expect_eq 1 "$(check "$WORK/f.json")" "fsck exit status with an orphan upload"
expect_kinds "$WORK/f.json" "orphan_upload - $old_id"
[ "$(jq -r .young "$WORK/f.json")" -ge 1 ] || fail "the young staging file is not counted as young"
repair "an orphan upload" 1
[ ! -e "$DATA/uploads/$old_id" ] || fail "the orphan upload is still there"
[ -e "$DATA/uploads/fetch-0123456789abcdef" ] || fail "fsck --repair removed a young staging file"
rm "$DATA/uploads/fetch-0123456789abcdef"

# ---- temp files: one a crash left, one being written -----------------------------------
echo "== stray temp file"
printf 'a crash' >"$DATA/tmp/put-Xy12Zq"
touch -d '2 hours ago' "$DATA/tmp/put-Xy12Zq"
printf 'a put' >"$DATA/tmp/put-young1"
expect_eq 1 "$(check "$WORK/f.json")" "fsck exit status with a stray temp file"
expect_kinds "$WORK/f.json" "stale_temp - put-Xy12Zq"
repair "a stray temp file" 1
[ ! -e "$DATA/tmp/put-Xy12Zq" ] || fail "the stray temp file is still there"
[ -e "$DATA/tmp/put-young1" ] || fail "fsck --repair removed a young temp file"
rm "$DATA/tmp/put-young1"

# ---- the damaged images fail cleanly, and can be pushed again --------------------------
echo "== pulls after the repair"
pc_start "$DATA"
for r in "team/a/manifests/1" "team/b/manifests/1" "team/c/manifests/1" "team/c/manifests/$child"; do
    read -r code _ _ <<<"$(http_get "http://$REG/v2/$r" "$WORK/get" -H "Accept: $MANIFEST_ACCEPT")"
    expect_eq 404 "$code" "GET /v2/$r after the repair"
    expect_eq MANIFEST_UNKNOWN "$(err_code "$WORK/get")" "GET /v2/$r error code"
done
read -r code _ _ <<<"$(http_get "http://$REG/v2/team/a/blobs/$la" "$WORK/get")"
expect_eq 404 "$code" "GET the removed corrupt layer"
expect_eq BLOB_UNKNOWN "$(err_code "$WORK/get")" "GET the removed corrupt layer: error code"
if sk copy -q --src-tls-verify=false "docker://$REG/team/a:1" "dir:$WORK/pull-a" >>"$WORK/clients.log" 2>&1; then
    fail "pulling the damaged image team/a:1 succeeded"
fi
push_image "$WORK/imga" oci-single team/a:1
rm -rf "$WORK/pull-a"
sk copy -q --src-tls-verify=false "docker://$REG/team/a:1" "dir:$WORK/pull-a" >>"$WORK/clients.log" 2>&1 ||
    fail "pull of team/a:1 pushed again (see clients.log)"
expect_eq "$la" "sha256:$(sha256sum "$WORK/pull-a/${la#sha256:}" | cut -d' ' -f1)" "layer pulled after the re-push"
expect_clean "after pushing team/a again"
pc_stop

# ---- a mirrored image: repaired with serve running, fetched again -------------------
# (an upstream needs a config: the fake upstream's inline_image, as e2e.gc)
echo "== corrupt mirrored layer"
CFG=$WORK/config.yml
cat >"$CFG" <<YML
upstreams:
  - name: fake
    url: http://127.0.0.1:$FP
YML
fake_start inline_image "$FP"
pc_start "$DATA" --config "$CFG"
IMG=$REG/fake/library/inline:v1
sk copy -q --src-tls-verify=false "docker://$IMG" "dir:$WORK/m1" >>"$WORK/clients.log" 2>&1 ||
    fail "pull $IMG (see clients.log)"
ml=$(jq -r '.layers[-1].digest' "$WORK/m1/manifest.json")
[ -f "$(pc_blob_file "$DATA" "$ml")" ] || fail "mirrored layer $ml not cached"
expect_eq 1 "$(fake_count "$FP" GET blob ".ref == \"$ml\"")" "upstream GETs of the layer"
flip "$(pc_blob_file "$DATA" "$ml")"
expect_eq 1 "$(check "$WORK/f.json" --config "$CFG")" "fsck exit status with a corrupt mirrored layer"
expect_kinds "$WORK/f.json" "corrupt_blob - $ml" "dangling_link fake/library/inline $ml"
rc=0
fsck --config "$CFG" --repair --json >"$WORK/r.json" || rc=$?
expect_eq 0 "$rc" "fsck --repair with serve running"
expect_eq 2 "$(jq -r .repaired "$WORK/r.json")" "repaired mirrored problems"
expect_eq '["repaired"]' "$(jq -c '[.problems[].status] | unique' "$WORK/r.json")" "statuses after the repair"
sk copy -q --src-tls-verify=false "docker://$IMG" "dir:$WORK/m2" >>"$WORK/clients.log" 2>&1 ||
    fail "pull $IMG after the repair (see clients.log)"
cmp -s "$WORK/m1/${ml#sha256:}" "$WORK/m2/${ml#sha256:}" || fail "the re-fetched layer differs"
expect_eq 2 "$(fake_count "$FP" GET blob ".ref == \"$ml\"")" "upstream GETs of the layer after the repair"
expect_clean "after the mirrored layer came back"

# ---- a push in progress survives fsck --repair --------------------------------------
echo "== push in progress"
head -c 200000 /dev/urandom >"$WORK/wip"
head -c 100000 "$WORK/wip" >"$WORK/wip.1"
tail -c 100000 "$WORK/wip" >"$WORK/wip.2"
url=$(reg_upload_url team/wip)
curl -sS -X PATCH -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-99999' \
    --data-binary "@$WORK/wip.1" -D "$WORK/patch.h" -o /dev/null "$url" || fail "PATCH the first half"
id=$(reg_header "$WORK/patch.h" Docker-Upload-UUID)
[ -f "$DATA/uploads/$id" ] || fail "no staging file for upload $id"
loc=$(reg_header "$WORK/patch.h" Location)
case $loc in /*) loc=http://$REG$loc ;; esac
rc=0
fsck --config "$CFG" --repair --json >"$WORK/r.json" || rc=$?
expect_eq 0 "$rc" "fsck --repair during a push"
expect_eq 0 "$(jq -r .problems_found "$WORK/r.json")" "problems during a push"
expect_eq 1 "$(jq -r .checked.upload_sessions "$WORK/r.json")" "upload sessions seen"
[ -f "$DATA/uploads/$id" ] || fail "fsck --repair removed the upload in progress"
# the same upload idle for two days is stale: fsck sees it (and only reports it)
touch -d '2 days ago' "$DATA/uploads/$id"
expect_eq 1 "$(check "$WORK/f.json" --config "$CFG")" "fsck exit status with a stale upload"
expect_kinds "$WORK/f.json" "stale_upload team/wip $id"
touch "$DATA/uploads/$id"
expect_eq 204 "$(reg_status GET "${loc#http://$REG}")" "upload status after fsck"
code=$(curl -sS -X PUT -H 'Content-Type: application/octet-stream' -H 'Content-Range: 100000-199999' \
    --data-binary "@$WORK/wip.2" -o /dev/null -w '%{http_code}' "$(url_with_param "$loc" "digest=$(sha "$WORK/wip")")")
expect_eq 201 "$code" "finishing the upload fsck left alone"
expect_eq 200 "$(reg_status HEAD "/v2/team/wip/blobs/$(sha "$WORK/wip")")" "HEAD the finished blob"
expect_clean "after the push finished"
echo "ok"
