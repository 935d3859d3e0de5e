#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_ctr_pull.sh - containerd (its own instance: config, root, state and
# socket in $WORK) pulls pushed images from the registry under test with
# `ctr images pull --plain-http`: OCI and Docker single-platform manifests, one
# platform of an OCI index, all platforms of a Docker manifest list, and an
# image by digest. containerd verifies every blob against its descriptor and
# every layer against the config's diff_ids while unpacking; the test checks
# the image's digest, its content and the unpacked files.
. "$(dirname "$0")/lib.sh"

clients_init
img=$WORK/img
mkimages "$img" ctr-1
reg_start "$WORK/data"
ctd_start
mkdir -p "$WORK/ctd/hosts"

# ctr_pull REF ARGS...: pull into containerd with the native snapshotter.
ctr_pull() {
    local ref=$1
    shift
    echo "+ ctr images pull $* $ref" >>"$WORK/clients.log"
    c images pull --plain-http --hosts-dir "$WORK/ctd/hosts" --snapshotter native "$@" "$ref" \
        >>"$WORK/clients.log" 2>&1 || fail "ctr images pull $* $ref (see clients.log)"
}

# image_field REF N: column N of `ctr images ls` for image REF (3 = digest, 2 = type).
image_field() {
    c images ls "name==$1" 2>/dev/null | awk -v r="$1" -v n="$2" '$1 == r { print $n }'
}

# has_content DIGEST: the content store holds DIGEST.
has_content() { c content ls -q | grep -xF "$1" >/dev/null; }

# chain_id CONFIG_DIGEST: the snapshot chain ID of the image's diff_ids.
chain_id() {
    local id="" d
    for d in $(jq -r '.rootfs.diff_ids[]' "$img/blobs/sha256/${1#sha256:}"); do
        if [ -z "$id" ]; then id=$d; else id=sha256:$(printf '%s %s' "$id" "$d" | sha256sum | cut -d' ' -f1); fi
    done
    echo "$id"
}

# check_rootfs MANIFEST_DIGEST PLATFORM VARIANT: containerd unpacked the
# image's layers (each one checked against its diff_id) into a committed
# native snapshot whose files are the image's, the whiteout applied.
n_views=0
check_rootfs() {
    local cfg chain view src
    cfg=$(jq -r .config.digest "$(manifest_of "$1")")
    chain=$(chain_id "$cfg")
    c snapshots --snapshotter native info "$chain" >"$WORK/snap.json" 2>&1 ||
        fail "$2 $3: no unpacked snapshot $chain (see $WORK/snap.json)"
    expect_eq Committed "$(jq -r .Kind "$WORK/snap.json")" "$2 $3: kind of snapshot $chain"
    n_views=$((n_views + 1))
    view=e2e-view-$n_views
    src=$(c snapshots --snapshotter native view --mounts "$view" "$chain" | jq -r '.[0].Source')
    [ -d "$src/etc" ] || fail "$2 $3: view of $chain has no /etc ($src)"
    grep -qxF "platform=$2" "$src/etc/pc-image" || fail "$2 $3: /etc/pc-image lacks platform=$2"
    grep -qxF "variant=$3" "$src/etc/pc-image" || fail "$2 $3: /etc/pc-image lacks variant=$3"
    expect_eq $((4 * 1048576)) "$(stat -c %s "$src/data/random.bin")" "$2 $3: size of /data/random.bin"
    [ ! -e "$src/etc/remove-me" ] || fail "$2 $3: whiteout not applied (/etc/remove-me exists)"
    c snapshots --snapshotter native rm "$view"
}

# check_image REF WANT_DIGEST WANT_MEDIATYPE: the image record containerd made.
check_image() {
    expect_eq "$2" "$(image_field "$1" 3)" "digest of containerd image $1"
    expect_eq "$3" "$(image_field "$1" 2)" "media type of containerd image $1"
}

manifest_of() { echo "$img/blobs/sha256/${1#sha256:}"; }
child_of() { # INDEX_DIGEST ARCH
    jq -er --arg a "$2" '.manifests[] | select(.platform.architecture == $a) | .digest' "$(manifest_of "$1")"
}

# Single-platform images, OCI and Docker.
for tag in oci-single docker-single; do
    want=$(img_digest "$img" "$tag")
    push_image "$img" "$tag" "e2e/ctr/$tag:v1"
    ref=$REG/e2e/ctr/$tag:v1
    ctr_pull "$ref" --platform linux/amd64
    check_image "$ref" "$want" "$(img_mediatype "$img" "$tag")"
    for d in $(jq -r '.config.digest, .layers[].digest' "$(manifest_of "$want")"); do
        has_content "$d" || fail "$ref: content store lacks $d after the pull"
    done
    check_rootfs "$want" linux/amd64 "$tag"
    echo "ok: $tag ($want)"
done

# One platform of an OCI index: the image is the index, amd64's content is there.
tag=oci-index
want=$(img_digest "$img" "$tag")
push_image "$img" "$tag" "e2e/ctr/$tag:v1"
ref=$REG/e2e/ctr/$tag:v1
ctr_pull "$ref" --platform linux/amd64
check_image "$ref" "$want" "$(img_mediatype "$img" "$tag")"
amd=$(child_of "$want" amd64)
has_content "$amd" || fail "$ref: content store lacks the linux/amd64 manifest $amd"
has_content "$(jq -r .config.digest "$(manifest_of "$amd")")" || fail "$ref: content store lacks the amd64 config"
check_rootfs "$amd" linux/amd64 "$tag"
echo "ok: $tag linux/amd64 ($want)"

# All platforms of a Docker manifest list: both children, configs and layers.
tag=docker-list
want=$(img_digest "$img" "$tag")
push_image "$img" "$tag" "e2e/ctr/$tag:v1"
ref=$REG/e2e/ctr/$tag:v1
ctr_pull "$ref" --all-platforms
check_image "$ref" "$want" "$(img_mediatype "$img" "$tag")"
for arch in amd64 arm64; do
    child=$(child_of "$want" "$arch")
    for d in "$child" $(jq -r '.config.digest, .layers[].digest' "$(manifest_of "$child")"); do
        has_content "$d" || fail "$ref: content store lacks $d ($arch) after --all-platforms"
    done
done
check_rootfs "$(child_of "$want" amd64)" linux/amd64 "$tag"
check_rootfs "$(child_of "$want" arm64)" linux/arm64/v8 "$tag"
echo "ok: $tag all platforms ($want)"

# By digest, into an empty content store.
c images rm "$REG/e2e/ctr/oci-single:v1" "$REG/e2e/ctr/docker-single:v1" \
    "$REG/e2e/ctr/oci-index:v1" "$REG/e2e/ctr/docker-list:v1" >/dev/null
c content ls -q | xargs -r ctr --address "$CTD_SOCK" --namespace e2e content rm >/dev/null
expect_eq "" "$(c content ls -q)" "content store after removing everything"
want=$(img_digest "$img" oci-index)
ref=$REG/e2e/ctr/oci-index@$want
ctr_pull "$ref" --platform linux/arm64/v8
check_image "$ref" "$want" "$(img_mediatype "$img" oci-index)"
arm=$(child_of "$want" arm64)
for d in "$arm" $(jq -r '.config.digest, .layers[].digest' "$(manifest_of "$arm")"); do
    has_content "$d" || fail "$ref: content store lacks $d after the pull by digest"
done
check_rootfs "$arm" linux/arm64/v8 oci-index
echo "ok: oci-index by digest, linux/arm64/v8"
echo "PASS: $TEST_NAME ($REGISTRY)"
