#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_podman_pull.sh - podman pulls pushed images from the registry under test:
# an OCI manifest, a Docker v2s2 manifest and both platforms of an OCI index.
# The image ID must be the pushed config's digest, the recorded digest the
# pushed manifest's, and the unpacked rootfs the image's files (whiteout applied).
# podman's storage, state and configuration all live in $WORK.
. "$(dirname "$0")/lib.sh"

clients_init
img=$WORK/img
mkimages "$img" podman-1
reg_start "$WORK/data"

# config_of MANIFEST_DIGEST: the config digest in one of the test image's manifests.
config_of() { jq -er .config.digest "$img/blobs/sha256/${1#sha256:}"; }

# child_of INDEX_DIGEST ARCH: the digest of the index's manifest for linux/ARCH.
child_of() {
    jq -er --arg a "$2" '.manifests[] | select(.platform.architecture == $a) | .digest' \
        "$img/blobs/sha256/${1#sha256:}"
}

# check_pull TAG REPO PLATFORM WANT_MANIFEST WANT_CONFIG WANT_PLATFORM_LINE
check_pull() {
    local tag=$1 repo=$2 platform=$3 want_top=$4 want_cfg=$5 want_line=$6 id dig mnt
    echo "+ podman pull --platform $platform $REG/$repo:v1" >>"$WORK/clients.log"
    id=$(pod pull -q --tls-verify=false --signature-policy "$WORK/policy.json" \
        --platform "$platform" "$REG/$repo:v1" 2>>"$WORK/clients.log") ||
        fail "podman pull $REG/$repo:v1 (see clients.log)"
    expect_eq "${want_cfg#sha256:}" "$id" "image ID printed by podman pull $REG/$repo:v1 ($platform)"
    expect_eq "${want_cfg#sha256:}" "$(pod image inspect --format '{{.Id}}' "$REG/$repo:v1")" \
        "podman image inspect .Id of $REG/$repo:v1"
    dig=$(pod image inspect --format '{{.Digest}}' "$REG/$repo:v1")
    expect_eq "$want_top" "$dig" "podman image inspect .Digest of $REG/$repo:v1"
    pod image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$REG/$repo:v1" |
        grep -xF "$REG/$repo@$want_top" >/dev/null ||
        fail "RepoDigests of $REG/$repo:v1 lack $REG/$repo@$want_top"

    # The layers were unpacked in order: the files are there, the whiteout applied.
    mnt=$(pod image mount "$REG/$repo:v1") || fail "podman image mount $REG/$repo:v1"
    grep -qxF "$want_line" "$mnt/etc/pc-image" || fail "$tag ($platform): /etc/pc-image lacks '$want_line'"
    expect_eq podman-1 "$(cat "$mnt/etc/pc-seed")" "$tag ($platform): /etc/pc-seed"
    expect_eq $((4 * 1048576)) "$(stat -c %s "$mnt/data/random.bin")" "$tag ($platform): size of /data/random.bin"
    [ ! -e "$mnt/etc/remove-me" ] || fail "$tag ($platform): whiteout not applied (/etc/remove-me exists)"
    pod image unmount "$REG/$repo:v1" >/dev/null
    echo "ok: $tag $platform (id ${id:0:12}, digest $dig)"
}

for tag in oci-single docker-single; do
    top=$(img_digest "$img" "$tag")
    push_image "$img" "$tag" "e2e/podman/$tag:v1"
    check_pull "$tag" "e2e/podman/$tag" linux/amd64 "$top" "$(config_of "$top")" "variant=$tag"
done

# Both platforms of an index. The second pull replaces the tag's image.
tag=oci-index
top=$(img_digest "$img" "$tag")
push_image "$img" "$tag" "e2e/podman/$tag:v1"
for arch in amd64 arm64; do
    child=$(child_of "$top" "$arch")
    plat=linux/$arch
    [ "$arch" = arm64 ] && plat=linux/arm64/v8
    check_pull "$tag" "e2e/podman/$tag" "$plat" "$top" "$(config_of "$child")" "platform=$plat"
    [ "$arch" = amd64 ] && pod rmi -f "$REG/e2e/podman/$tag:v1" >/dev/null
done

# Pull by digest, after removing every image.
pod rmi -a -f >/dev/null
top=$(img_digest "$img" docker-single)
id=$(pod pull -q --tls-verify=false --signature-policy "$WORK/policy.json" \
    "$REG/e2e/podman/docker-single@$top" 2>>"$WORK/clients.log") ||
    fail "podman pull $REG/e2e/podman/docker-single@$top (see clients.log)"
expect_eq "$(config_of "$top" | sed 's/^sha256://')" "$id" "image ID from podman pull by digest"
echo "PASS: $TEST_NAME ($REGISTRY)"
