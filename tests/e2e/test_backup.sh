#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_backup.sh - the backup and restore of docs/OPERATIONS.md, run as
# written there (the blocks after "<!-- test: backup" and "<!-- test:
# restore", with this test's paths for /var/lib/pullcache and
# /backup/pullcache): while serve runs and between the meta store's snapshot
# and the copy of the blobs another image is pushed (so the copy has blobs the
# snapshot does not name); the restored directory's fsck --repair removes
# exactly those, a second fsck is clean, and a serve on it gives back every
# image of the snapshot byte-identical, while the later image's tag is unknown.
. "$(dirname "$0")/lib.sh"

pc_needs_disk "a data directory to back up"
command -v rsync >/dev/null || { echo "SKIP: $TEST_NAME: needs rsync"; exit 77; }
clients_init
DATA=$WORK/data
BK=$WORK/backup
RESTORED=$WORK/restored
PATH=$(dirname "$PULLCACHE"):$PATH

# block NAME: the shell block after <!-- test: NAME in docs/OPERATIONS.md, paths replaced
block() {
    awk -v n="<!-- test: $1" 'index($0, n) == 1 { f = 1; next }
        f && /^```sh$/ { in_b = 1; next } in_b && /^```$/ { exit } in_b { print }' "$PC_SRC/docs/OPERATIONS.md" |
        sed -e "s#/var/lib/pullcache.restored#$RESTORED#g" -e "s#/var/lib/pullcache#$DATA#g" \
            -e "s#/backup/pullcache#$BK#g"
}
block backup >"$WORK/backup.sh"
block restore >"$WORK/restore.sh"
[ "$(wc -l <"$WORK/backup.sh")" -ge 2 ] || fail "no backup block in docs/OPERATIONS.md"
[ "$(wc -l <"$WORK/restore.sh")" -ge 2 ] || fail "no restore block in docs/OPERATIONS.md"
grep -q "^sqlite3 $DATA/meta.db \".backup $BK/meta.db\"$" "$WORK/backup.sh" || fail "the backup block lost its snapshot line: $(cat "$WORK/backup.sh")"

mkimages "$WORK/img" backup
mkimages "$WORK/late" backup-late
pc_start "$DATA"
push_image "$WORK/img" oci-index app:v1
push_image "$WORK/img" oci-single app:v2
push_image "$WORK/img" docker-single other:d1
declare -A DIG=([app:v1]=$(reg_digest app v1) [app:v2]=$(reg_digest app v2) [other:d1]=$(reg_digest other d1))

# the backup block, line by line; after the snapshot of meta.db, a push
late_pushed=0
while IFS= read -r line; do
    echo "+ $line" >>"$WORK/backup.log"
    bash -c "$line" >>"$WORK/backup.log" 2>&1 || fail "backup step failed: $line (see backup.log)"
    case $line in sqlite3*) push_image "$WORK/late" oci-single late:v1; late_pushed=1 ;; esac
done <"$WORK/backup.sh"
expect_eq 1 "$late_pushed" "a push between the snapshot and the blob copy"
late=$(reg_digest late v1)
pc_stop

# the restore block
bash -e "$WORK/restore.sh" >"$WORK/restore.log" 2>&1 || fail "restore: $(tail -20 "$WORK/restore.log")"
"$PULLCACHE" fsck --data "$RESTORED" --json >"$WORK/fsck2.json" || fail "fsck after the restore's repair: $(cat "$WORK/fsck2.json")"
expect_eq 0 "$(jq '.problems | length' "$WORK/fsck2.json")" "problems after the restore"
# what the repair removed: the late image's blobs, nothing else
grep -q "^orphan_blob sha256:.* -> repaired: removed the blob file$" "$WORK/restore.log" || fail "the restore's fsck found no blob of the later push: $(cat "$WORK/restore.log")"
for f in $(find "$DATA/blobs" -type f); do
    d=sha256:$(basename "$f")
    if [ -f "$RESTORED/blobs/sha256/$(basename "$f" | cut -c1-2)/$(basename "$f")" ]; then continue; fi
    # gone from the restore: must be the late image's own blob (not in the snapshot's images)
    grep -rq "${d#sha256:}" "$WORK/img" && fail "restore lost $d, a blob of the backed-up images"
done

pc_start "$RESTORED"
for ref in "${!DIG[@]}"; do
    repo=${ref%%:*} tag=${ref#*:}
    expect_eq "${DIG[$ref]}" "$(reg_digest "$repo" "$tag")" "restored $ref"
    out=$WORK/out-${repo}-$tag
    sk copy -q --all --src-tls-verify=false "docker://$REG/$repo@${DIG[$ref]}" "dir:$out" >>"$WORK/clients.log" 2>&1 ||
        fail "pull restored $repo@${DIG[$ref]}"
    for f in "$out"/*; do
        n=$(basename "$f")
        case $n in manifest.json | version | signature-*) continue ;; esac
        expect_eq "${n%.manifest.json}" "$(sha256sum "$f" | cut -d' ' -f1)" "restored $ref: bytes of $n"
    done
done
expect_eq 404 "$(reg_status GET /v2/late/manifests/v1 -H "Accept: $MANIFEST_ACCEPT")" "the tag pushed after the snapshot"
expect_eq 404 "$(reg_status HEAD "/v2/late/manifests/$late" -H "Accept: $MANIFEST_ACCEPT")" "the manifest pushed after the snapshot"
echo "PASS: $TEST_NAME"
