#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_fsck_remote.sh - `pullcache fsck` on S3 (radosgw) + PostgreSQL, the
# stores a fleet shares, with serve running on them: clean after pushes
# (exit 0); then damage made straight in the bucket with signed S3 requests
# (curl --aws-sigv4): a layer object overwritten with other bytes, a layer
# object deleted, an unreferenced blob object and a temp object a crash
# left. fsck finds each (exit 1, the JSON kinds); --repair with --grace 0 is
# raised to 60 s (no publish lock on S3: blobs being published are safe),
# repairs the damage, and once the planted objects are older than that
# removes them too; a last fsck is clean and the damaged images answer 404,
# never wrong bytes, while the others pull byte-identical.
# Runs on the run's radosgw and PostgreSQL under PULLCACHE_TEST_STORAGE=s3pg,
# else on its own (tests/tools/s3pg.sh); skipped (77) without them.
. "$(dirname "$0")/lib.sh"

s3pg_needed
clients_init

# s3 METHOD KEY [curl args...]: a signed request for KEY of the test's bucket
s3() {
    local m=$1 k=$2
    shift 2
    curl -sS -o "$WORK/s3.out" -w '%{http_code}' -X "$m" --aws-sigv4 "aws:amz:$S3_REGION:s3" \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "http://127.0.0.1:$S3PG_PORT/$S3PG_BUCKET/$k" "$@"
}
obj() { echo "blobs/sha256/${1#sha256:}"; }

# planted first, so they are old enough for --repair's 60 s by the end
head -c 3000 /dev/urandom >"$WORK/orphan"
orphan=$(sha "$WORK/orphan")
expect_eq 200 "$(s3 PUT "$(obj "$orphan")" --data-binary "@$WORK/orphan")" "PUT an unreferenced blob object"
expect_eq 200 "$(s3 PUT tmp/t-0123456789abcdef0123456789abcdef --data-binary 'a crash')" "PUT a stray temp object"
planted=$SECONDS

for s in a b c; do mkimages "$WORK/img$s" "fsckr-$s" 1; done
pc_start "$WORK/data"
CFG=$(sed -n 2p "$WORK/serve.args") # pc_storage_args: --config FILE first
[ -f "$CFG" ] || fail "no storage configuration in serve's arguments: $(cat "$WORK/serve.args")"
fsck() { "$PULLCACHE" fsck --config "$CFG" "$@"; }
push_image "$WORK/imga" oci-single team/a:1
push_image "$WORK/imgb" oci-single team/b:1
push_image "$WORK/imgc" oci-single team/c:1
ma=$(img_digest "$WORK/imga" oci-single)
mb=$(img_digest "$WORK/imgb" oci-single)
reg_get_manifest team/a 1 "$WORK/a.json" >/dev/null
reg_get_manifest team/b 1 "$WORK/b.json" >/dev/null
la=$(jq -r '.layers[2].digest' "$WORK/a.json")
lb=$(jq -r '.layers[2].digest' "$WORK/b.json")
expect_eq 200 "$(s3 HEAD "$(obj "$la")" --head)" "the layer's object is in the bucket"

kinds() { jq -r '.problems[] | [.kind, (.repo // "-"), (.digest // .upload // .name // "-")] | join(" ")' "$1" | sort; }

rc=0
fsck --json --grace 3600 >"$WORK/clean.json" 2>"$WORK/fsck.err" || rc=$?
expect_eq 0 "$rc" "fsck after pushes, serve running: $(cat "$WORK/fsck.err") $(kinds "$WORK/clean.json")"
[ "$(jq -r .checked.blobs "$WORK/clean.json")" -ge 12 ] || fail "fsck hashed too few blobs: $(jq -c .checked "$WORK/clean.json")"

echo "== damage in the bucket"
head -c "$(jq -r '.layers[2].size' "$WORK/a.json")" /dev/urandom >"$WORK/wrong"
expect_eq 200 "$(s3 PUT "$(obj "$la")" --data-binary "@$WORK/wrong")" "overwrite a layer object"
expect_eq 204 "$(s3 DELETE "$(obj "$lb")")" "delete a layer object"
rc=0
fsck --json --grace 0 >"$WORK/f.json" 2>>"$WORK/fsck.err" || rc=$?
expect_eq 1 "$rc" "fsck with damage"
kinds "$WORK/f.json" >"$WORK/kinds.txt"
for want in "corrupt_blob - $la" "dangling_link team/a $la" "incomplete_manifest team/a $ma" \
    "dangling_link team/b $lb" "incomplete_manifest team/b $mb" "orphan_blob - $orphan"; do
    grep -qx -- "$want" "$WORK/kinds.txt" || fail "fsck did not report '$want': $(cat "$WORK/kinds.txt")"
done
grep -q "^stale_temp - .*t-0123456789abcdef0123456789abcdef" "$WORK/kinds.txt" || fail "no stale temp object: $(cat "$WORK/kinds.txt")"

echo "== --repair"
fsck --repair --grace 0 >"$WORK/r1.txt" 2>"$WORK/r1.err" || true
grep -q "no publish lock: --grace raised from 0 to 60 s" "$WORK/r1.err" || fail "no word of the raised grace: $(cat "$WORK/r1.err")"
expect_eq 404 "$(s3 HEAD "$(obj "$la")" --head)" "the corrupt layer's object after --repair"
while [ $((SECONDS - planted)) -le 62 ]; do sleep 1; done # the planted objects pass the 60 s grace
fsck --repair --grace 0 >"$WORK/r2.txt" 2>>"$WORK/fsck.err" || fail "second --repair: $(cat "$WORK/r2.txt")"
expect_eq 404 "$(s3 HEAD "$(obj "$orphan")" --head)" "the unreferenced blob object after --repair"
expect_eq 404 "$(s3 HEAD tmp/t-0123456789abcdef0123456789abcdef --head)" "the stray temp object after --repair"
rc=0
# (the default grace: the removed images' other blobs are unreferenced now, and young; gc's work)
fsck --json >"$WORK/last.json" 2>>"$WORK/fsck.err" || rc=$?
expect_eq 0 "$rc" "fsck after the repairs: $(kinds "$WORK/last.json")"

echo "== pulls"
expect_eq 404 "$(reg_status GET /v2/team/a/manifests/1 -H "Accept: $MANIFEST_ACCEPT")" "the image with the corrupt layer"
expect_eq 404 "$(reg_status GET /v2/team/b/manifests/1 -H "Accept: $MANIFEST_ACCEPT")" "the image with the deleted layer"
sk copy -q --src-tls-verify=false "docker://$REG/team/c:1" "dir:$WORK/out-c" >>"$WORK/clients.log" 2>&1 || fail "pull team/c"
for f in "$WORK/out-c"/*; do
    n=$(basename "$f")
    case $n in manifest.json | version) continue ;; esac
    expect_eq "$n" "$(sha256sum "$f" | cut -d' ' -f1)" "team/c: bytes of $n"
done
echo "PASS: $TEST_NAME"
