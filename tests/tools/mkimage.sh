#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# mkimage.sh - build deterministic test images offline as an OCI image layout.
#
#   mkimage.sh [-b BIG_MIB] OUTDIR SEED
#
# Writes OUTDIR/{oci-layout,index.json,blobs/sha256/...} holding four tagged
# images (tag = org.opencontainers.image.ref.name in index.json):
#
#   oci-single     OCI image manifest, linux/amd64, 4 gzip layers
#   oci-index      OCI image index: linux/amd64 + linux/arm64/v8 (OCI manifests)
#   docker-single  Docker v2 schema 2 manifest, linux/amd64, same layer layout
#   docker-list    Docker manifest list: linux/amd64 + linux/arm64/v8 (v2s2 manifests)
#
# Every image has the layers
#   1 base  - /etc/pc-seed, /pc-hello (the Cmd), /etc/remove-me, a few dirs
#   2 data  - /data/random.bin, BIG_MIB MiB (default 4) of seeded random bytes
#   3 meta  - /etc/pc-image naming seed, variant and platform (unique per image)
#   4 wh    - a whiteout deleting /etc/remove-me (exercises unpacking)
# Layers 1, 2 and 4 are shared by all images of one seed; layer 3 and the config
# are not, so every manifest in the layout is distinct. Different seeds share
# no blob at all. The same seed and size give byte-identical output (fixed
# mtimes, owners and order in the tars, gzip -n).
#
# Also writes OUTDIR/images.json: {tag: {digest, mediaType, size}} for tests,
# and OUTDIR/dir/TAG/, each image as a skopeo dir: layout. skopeo 1.9's oci:
# transport cannot see the Docker-typed entries of index.json, so copy those
# with `skopeo copy --all dir:OUTDIR/dir/TAG docker://...` (byte-exact); the
# OCI ones work either way: `skopeo copy --all oci:OUTDIR:TAG docker://...`.
# Needs bash, GNU tar, gzip, sha256sum, jq, python3 (random bytes only).
set -euo pipefail
shopt -s inherit_errexit
umask 022
export LC_ALL=C TZ=UTC

big_mib=4
if [ "${1:-}" = "-b" ]; then
    big_mib=$2
    shift 2
fi
[ $# -eq 2 ] || { echo "usage: $0 [-b BIG_MIB] OUTDIR SEED" >&2; exit 2; }
out=$1
seed=$2
case $big_mib in '' | *[!0-9]*) echo "$0: BIG_MIB must be an integer" >&2; exit 2 ;; esac

readonly CREATED="2024-01-01T00:00:00Z"
readonly MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
readonly MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
readonly MT_OCI_CONFIG=application/vnd.oci.image.config.v1+json
readonly MT_OCI_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
readonly MT_D_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
readonly MT_D_LIST=application/vnd.docker.distribution.manifest.list.v2+json
readonly MT_D_CONFIG=application/vnd.docker.container.image.v1+json
readonly MT_D_LAYER=application/vnd.docker.image.rootfs.diff.tar.gzip

rm -rf "$out"
mkdir -p "$out/blobs/sha256"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# put_blob FILE: move FILE into the blob store, print "sha256:HEX SIZE".
put_blob() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv -f "$1" "$out/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

# put_json JSON: store the compact form of JSON (no trailing newline) as a blob.
put_json() {
    jq -jc . <<<"$1" >"$tmp/json"
    put_blob "$tmp/json"
}

# mk_layer DIR: tar DIR deterministically; store the gzip; print
# "DIFF_ID DIGEST SIZE" (diff id = sha256 of the uncompressed tar).
mk_layer() {
    local diff
    tar -C "$1" --sort=name --format=gnu --owner=0 --group=0 --numeric-owner \
        --mtime=@1704067200 -cf "$tmp/layer.tar" .
    diff=sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
    gzip -n -6 -c "$tmp/layer.tar" >"$tmp/layer.tgz"
    rm -f "$tmp/layer.tar"
    echo "$diff $(put_blob "$tmp/layer.tgz")"
}

# Shared layers.
d=$tmp/base
mkdir -p "$d/etc" "$d/bin" "$d/tmp" "$d/data"
chmod 1777 "$d/tmp"
printf '%s\n' "$seed" >"$d/etc/pc-seed"
printf 'this file is deleted by the whiteout layer\n' >"$d/etc/remove-me"
printf '#!/bin/sh\necho "hello from pullcache test image %s"\n' "$seed" >"$d/pc-hello"
chmod 755 "$d/pc-hello"
r=$(mk_layer "$d")
read -r base_diff base_dig base_size <<<"$r"

d=$tmp/data
mkdir -p "$d/data"
python3 - "$seed" "$((big_mib * 1048576))" "$d/data/random.bin" <<'PY'
import random, sys
r = random.Random("pullcache-mkimage:" + sys.argv[1])
n = int(sys.argv[2])
with open(sys.argv[3], "wb") as f:
    while n > 0:
        k = min(n, 1 << 20)
        f.write(r.randbytes(k))
        n -= k
PY
r=$(mk_layer "$d")
read -r data_diff data_dig data_size <<<"$r"

d=$tmp/wh
mkdir -p "$d/etc"
: >"$d/etc/.wh.remove-me"
r=$(mk_layer "$d")
read -r wh_diff wh_dig wh_size <<<"$r"

# mk_image FORMAT(oci|docker) VARIANT ARCH [ARM_VARIANT]: build the meta layer,
# config and manifest of one image; print "DIGEST SIZE" of the manifest.
mk_image() {
    local fmt=$1 variant=$2 arch=$3 archvar=${4:-}
    local r mt_man mt_cfg mt_layer platform d meta_diff meta_dig meta_size cfg cfg_dig cfg_size
    if [ "$fmt" = oci ]; then
        mt_man=$MT_OCI_MANIFEST mt_cfg=$MT_OCI_CONFIG mt_layer=$MT_OCI_LAYER
    else
        mt_man=$MT_D_MANIFEST mt_cfg=$MT_D_CONFIG mt_layer=$MT_D_LAYER
    fi
    platform=linux/$arch${archvar:+/$archvar}
    d=$tmp/meta-$variant-$arch
    mkdir -p "$d/etc"
    printf 'seed=%s\nvariant=%s\nplatform=%s\n' "$seed" "$variant" "$platform" >"$d/etc/pc-image"
    r=$(mk_layer "$d")
    read -r meta_diff meta_dig meta_size <<<"$r"

    cfg=$(jq -n --arg created "$CREATED" --arg arch "$arch" --arg archvar "$archvar" \
        --arg seed "$seed" --arg variant "$variant" \
        --arg d1 "$base_diff" --arg d2 "$data_diff" --arg d3 "$meta_diff" --arg d4 "$wh_diff" '
        {created: $created, architecture: $arch}
        + (if $archvar != "" then {variant: $archvar} else {} end)
        + {os: "linux",
           config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    Cmd: ["/pc-hello"], WorkingDir: "/",
                    Labels: {"org.pullcache.test.seed": $seed,
                             "org.pullcache.test.variant": $variant}},
           rootfs: {type: "layers", diff_ids: [$d1, $d2, $d3, $d4]},
           history: [{created: $created, created_by: "mkimage.sh: base"},
                     {created: $created, created_by: "mkimage.sh: data"},
                     {created: $created, created_by: "mkimage.sh: meta"},
                     {created: $created, created_by: "mkimage.sh: whiteout"}]}')
    r=$(put_json "$cfg")
    read -r cfg_dig cfg_size <<<"$r"

    put_json "$(jq -n --arg mt "$mt_man" --arg mtc "$mt_cfg" --arg mtl "$mt_layer" \
        --arg cd "$cfg_dig" --argjson cs "$cfg_size" \
        --arg l1 "$base_dig" --argjson s1 "$base_size" \
        --arg l2 "$data_dig" --argjson s2 "$data_size" \
        --arg l3 "$meta_dig" --argjson s3 "$meta_size" \
        --arg l4 "$wh_dig" --argjson s4 "$wh_size" '
        {schemaVersion: 2, mediaType: $mt,
         config: {mediaType: $mtc, digest: $cd, size: $cs},
         layers: [{mediaType: $mtl, digest: $l1, size: $s1},
                  {mediaType: $mtl, digest: $l2, size: $s2},
                  {mediaType: $mtl, digest: $l3, size: $s3},
                  {mediaType: $mtl, digest: $l4, size: $s4}]}')"
}

# mk_index FORMAT VARIANT: a two-platform index / manifest list; print "DIGEST SIZE".
mk_index() {
    local r fmt=$1 variant=$2 mt_idx mt_man a_dig a_size b_dig b_size
    if [ "$fmt" = oci ]; then
        mt_idx=$MT_OCI_INDEX mt_man=$MT_OCI_MANIFEST
    else
        mt_idx=$MT_D_LIST mt_man=$MT_D_MANIFEST
    fi
    r=$(mk_image "$fmt" "$variant" amd64)
    read -r a_dig a_size <<<"$r"
    r=$(mk_image "$fmt" "$variant" arm64 v8)
    read -r b_dig b_size <<<"$r"
    put_json "$(jq -n --arg mt "$mt_idx" --arg mtm "$mt_man" \
        --arg a "$a_dig" --argjson asz "$a_size" --arg b "$b_dig" --argjson bsz "$b_size" '
        {schemaVersion: 2, mediaType: $mt,
         manifests: [{mediaType: $mtm, digest: $a, size: $asz,
                      platform: {architecture: "amd64", os: "linux"}},
                     {mediaType: $mtm, digest: $b, size: $bsz,
                      platform: {architecture: "arm64", os: "linux", variant: "v8"}}]}')"
}

declare -A dig size mtype
r=$(mk_image oci oci-single amd64)
read -r 'dig[oci-single]' 'size[oci-single]' <<<"$r"
mtype[oci-single]=$MT_OCI_MANIFEST
r=$(mk_index oci oci-index)
read -r 'dig[oci-index]' 'size[oci-index]' <<<"$r"
mtype[oci-index]=$MT_OCI_INDEX
r=$(mk_image docker docker-single amd64)
read -r 'dig[docker-single]' 'size[docker-single]' <<<"$r"
mtype[docker-single]=$MT_D_MANIFEST
r=$(mk_index docker docker-list)
read -r 'dig[docker-list]' 'size[docker-list]' <<<"$r"
mtype[docker-list]=$MT_D_LIST

images='{}'
for tag in oci-single oci-index docker-single docker-list; do
    images=$(jq -c --arg t "$tag" --arg d "${dig[$tag]}" --arg m "${mtype[$tag]}" \
        --argjson s "${size[$tag]}" '. + {($t): {mediaType: $m, digest: $d, size: $s}}' <<<"$images")
done
printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
jq -c '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [to_entries[] | .value + {annotations:
                    {"org.opencontainers.image.ref.name": .key}}]}' <<<"$images" >"$out/index.json"
jq . <<<"$images" >"$out/images.json"

# The same images as skopeo dir: layouts (OUTDIR/dir/TAG). skopeo 1.9's oci:
# transport ignores index.json entries with Docker media types, so the Docker
# variants can only be copied byte-exact from here: skopeo copy dir:OUTDIR/dir/TAG.
# Blobs are hard links into OUTDIR/blobs.
link_image_blobs() { # MANIFEST_BLOB_PATH DEST_DIR
    local h
    for h in $(jq -r '.config.digest, .layers[].digest' "$1" | sed 's/^sha256://'); do
        ln -f "$out/blobs/sha256/$h" "$2/$h"
    done
}
for tag in oci-single oci-index docker-single docker-list; do
    d=$out/dir/$tag
    mkdir -p "$d"
    printf 'Directory Transport Version: 1.1\n' >"$d/version"
    top=$out/blobs/sha256/${dig[$tag]#sha256:}
    cp "$top" "$d/manifest.json"
    case ${mtype[$tag]} in
    "$MT_OCI_INDEX" | "$MT_D_LIST")
        for child in $(jq -r '.manifests[].digest' "$top" | sed 's/^sha256://'); do
            cp "$out/blobs/sha256/$child" "$d/$child.manifest.json"
            link_image_blobs "$out/blobs/sha256/$child" "$d"
        done
        ;;
    *) link_image_blobs "$top" "$d" ;;
    esac
done
