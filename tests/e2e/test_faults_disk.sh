#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_faults_disk.sh - local fault matrix, storage that refuses writes: the
# data directory on an 8 MiB tmpfs (mounted in the test's private mount
# namespace) filled up, then a read-only bind mount of it. Every write is
# refused with 507 (full) or 503 (read-only) and a registry error body, never
# 500; reads keep working and serve the right bytes; blob DELETE and gc still
# work on the full disk; once space is back, pushes work again without a
# restart; nothing that got a 2xx is lost. (docs/CONFIG.md "Storage faults")
. "$(dirname "$0")/lib.sh"
pc_needs_disk "a data directory whose disk fills up or turns read-only"

DATA=$WORK/data
mkdir -p "$DATA"
mount -t tmpfs -o size=8m tmpfs "$DATA" || fail "cannot mount a tmpfs (needs the mount namespace lib.sh makes)"
B=http://127.0.0.1:$PC_PORT

# status_of METHOD URL [curl args]: the status; the body lands in $WORK/body.
status_of() {
    local m=$1 u=$2
    shift 2
    curl -sS -o "$WORK/body" -w '%{http_code}' -X "$m" "$@" "$u" || echo 000
}

# refused WANT WHAT: the last answer was WANT with a registry error body that
# is not UNKNOWN (a 500 would say UNKNOWN).
refused() {
    local got=$1 want=$2 what=$3
    expect_eq "$want" "$got" "$what"
    local code
    code=$(err_code "$WORK/body")
    [ -n "$code" ] && [ "$code" != UNKNOWN ] || fail "$what: error body $(cat "$WORK/body")"
}

# push_blob REPO FILE: monolithic POST ?digest=; prints the status.
push_blob() {
    status_of POST "$B/v2/$1/blobs/uploads/?digest=$(sha "$2")" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$2"
}

# check_blob REPO FILE: GET gives exactly FILE's bytes.
check_blob() {
    local code
    code=$(curl -sS -o "$WORK/got" -w '%{http_code}' "$B/v2/$1/blobs/$(sha "$2")") || code=000
    expect_eq 200 "$code" "GET blob $(sha "$2") of $1"
    cmp -s "$WORK/got" "$2" || fail "GET blob $(sha "$2") of $1: wrong bytes"
}

# manifest CONFIG LAYER: an OCI image manifest over two blobs, into $WORK/m.json.
manifest() {
    jq -cn --arg c "$(sha "$1")" --argjson cs "$(stat -c %s "$1")" \
        --arg l "$(sha "$2")" --argjson ls "$(stat -c %s "$2")" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
          layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar", digest:$l, size:$ls}]}' \
        >"$WORK/m.json"
}
put_manifest() {
    status_of PUT "$B/v2/$1/manifests/$2" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$WORK/m.json"
}

pc_start "$DATA"

# ---- content that got a 2xx before the disk fills -------------------------------
echo '{"architecture":"amd64","os":"linux"}' >"$WORK/config"
head -c 200000 /dev/urandom >"$WORK/layer"
head -c 100000 /dev/urandom >"$WORK/doomed"
expect_eq 201 "$(push_blob app "$WORK/config")" "push config"
expect_eq 201 "$(push_blob app "$WORK/layer")" "push layer"
expect_eq 201 "$(push_blob app "$WORK/doomed")" "push a blob deleted later"
manifest "$WORK/config" "$WORK/layer"
expect_eq 201 "$(put_manifest app v1)" "PUT manifest v1"
# a chunked session started before the disk fills
url=$(reg_upload_url app)
[ -f "$DATA/space.reserve" ] || fail "serve keeps no space reserve in $DATA"

# ---- fill the disk ----------------------------------------------------------------
echo "== disk full"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$WORK/big"
refused "$(push_blob app "$WORK/big")" 507 "monolithic push larger than the disk"
grep -q "storage full" "$WORK/body" || grep -q "storage is full" "$WORK/body" ||
    fail "507 without a clear message: $(cat "$WORK/body")"
# what is left goes to a filler file, to the last byte
dd if=/dev/zero of="$DATA/filler" bs=64k 2>/dev/null || true
dd if=/dev/zero of="$DATA/filler2" bs=512 2>/dev/null || true
[ "$(df --output=avail -B1 "$DATA" | tail -1 | tr -d ' ')" -lt 4096 ] || fail "the tmpfs did not fill"

head -c 300000 /dev/urandom >"$WORK/late"
refused "$(push_blob app "$WORK/late")" 507 "monolithic push on a full disk"
refused "$(status_of PATCH "$url" -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/late")" \
    507 "PATCH on a full disk"
# a refused chunk leaves nothing in the session
range=$(curl -sS -o /dev/null -D - "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')
expect_eq "0-0" "$range" "upload session after a refused PATCH"
# upload start, mount and manifest PUT: 2xx (room in the database) or 507
for what in start mount manifest; do
    case $what in
    start) code=$(status_of POST "$B/v2/other/blobs/uploads/") ;;
    mount) code=$(status_of POST "$B/v2/other/blobs/uploads/?mount=$(sha "$WORK/layer")&from=app") ;;
    manifest) code=$(put_manifest app v2) ;;
    esac
    case $code in
    201 | 202) ;;
    507) refused "$code" 507 "$what on a full disk" ;;
    *) fail "$what on a full disk: status $code, body $(cat "$WORK/body")" ;;
    esac
done
# reads keep working, with the right bytes
check_blob app "$WORK/config"
check_blob app "$WORK/layer"
expect_eq 200 "$(status_of GET "$B/v2/app/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json')" \
    "GET manifest on a full disk"
cmp -s "$WORK/body" "$WORK/m.json" || fail "manifest bytes differ on a full disk"
expect_eq 200 "$(status_of GET "$B/v2/app/tags/list")" "tags list on a full disk"
# deletes free space: they must work on a full disk
expect_eq 202 "$(status_of DELETE "$B/v2/app/blobs/$(sha "$WORK/doomed")")" "blob DELETE on a full disk"
expect_eq 404 "$(status_of GET "$B/v2/app/blobs/$(sha "$WORK/doomed")")" "deleted blob"
# gc on the full disk removes the unreferenced blob
"$PULLCACHE" gc --data "$DATA" --grace 0 >"$WORK/gc.out" 2>&1 || fail "gc on a full disk: $(cat "$WORK/gc.out")"
[ ! -e "$(pc_blob_file "$DATA" "$(sha "$WORK/doomed")")" ] || fail "gc on a full disk left the unreferenced blob"
no_500() { ! awk '$5 == 500 { bad = 1 } END { exit !bad }' "$WORK/pullcache.log" || fail "a 500 $1 (see the log)"; }
no_500 "on the full disk"

# ---- space is back: no restart needed ------------------------------------------------
echo "== space back"
rm -f "$DATA/filler" "$DATA/filler2"
expect_eq 201 "$(push_blob app "$WORK/late")" "push once space is back"
check_blob app "$WORK/late"
expect_eq 202 "$(status_of PATCH "$url" -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/late")" \
    "PATCH once space is back"
expect_eq 201 "$(status_of PUT "$(url_with_param "$url" "digest=$(sha "$WORK/late")")")" \
    "finish the chunked upload"
manifest "$WORK/config" "$WORK/late"
expect_eq 201 "$(put_manifest app v3)" "PUT manifest once space is back"
check_blob app "$WORK/config"
check_blob app "$WORK/layer"
kill -0 "$PC_PID" || fail "serve died"

# ---- read-only data directory ---------------------------------------------------------
echo "== read-only data directory"
pc_stop
mount --bind "$DATA" "$DATA" && mount -o remount,bind,ro "$DATA" || fail "cannot make a read-only bind mount"
touch "$DATA/probe" 2>/dev/null && fail "the bind mount is writable"
pc_start "$DATA"
check_blob app "$WORK/config"
check_blob app "$WORK/late"
expect_eq 200 "$(status_of GET "$B/v2/app/manifests/v3" -H 'Accept: application/vnd.oci.image.manifest.v1+json')" \
    "GET manifest from a read-only directory"
head -c 1000 /dev/urandom >"$WORK/ro"
refused "$(push_blob app "$WORK/ro")" 503 "push into a read-only directory"
refused "$(status_of POST "$B/v2/app/blobs/uploads/")" 503 "upload start in a read-only directory"
manifest "$WORK/config" "$WORK/layer"
refused "$(put_manifest app v4)" 503 "manifest PUT in a read-only directory"
refused "$(status_of DELETE "$B/v2/app/manifests/v1")" 503 "tag DELETE in a read-only directory"
no_500 "on the read-only directory"
pc_stop
umount "$DATA"
pc_start "$DATA"
expect_eq 201 "$(push_blob app "$WORK/ro")" "push once the directory is writable again"
check_blob app "$WORK/layer"
pc_stop
umount "$DATA" # lib.sh removes $WORK
echo "OK"
