#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_image.sh - the container image (make image: scripts/mkimage-oci.sh),
# built offline from the binary under test as an OCI layout, end to end:
#   - reproducible: two builds give byte-identical index.json, manifest,
#     config and layer (the same digests);
#   - the layer: the binary, every library ldd names and the loader, the CA
#     bundle, passwd/group with uid 65532, /data owned by 65532, the config
#     at /etc/pullcache/config.yaml; every entry root's but /data, one mtime;
#   - pushed into a running pullcache with `pullcache copy oci:LAYOUT:TAG`,
#     then `skopeo inspect` of the pushed image: user 65532:65532, the
#     entrypoint, 5000/tcp exposed, the /data volume, this host's
#     architecture, linux, the OCI labels (version = `pullcache --version`);
#   - run without a container runtime: the layer extracted, mounted
#     read-only (as readOnlyRootFilesystem) with a writable volume on /data,
#     `unshare --root` into it as 65532:65532; /readyz answers ready, a blob
#     pushed into it lands in the volume, owned by 65532;
#   - run by podman (runc; crun refuses this host's hybrid cgroups) pulling
#     the image from the pullcache it was pushed to, --read-only,
#     --cap-drop ALL, no-new-privileges: /readyz answers, as 65532:65532;
#   - the Containerfile: its runtime stage (everything after the second
#     FROM, as written) built by podman offline on the tree `mkimage-oci.sh
#     --rootfs` writes, in place of the Debian build stage (which needs
#     debian:12 and the internet): the same files as the layer, the same
#     user, entrypoint, port, volume and working directory as the layout's
#     config; run read-only, its serve is ready (writes /data) as 65532.
# The image's serve listens on 0.0.0.0:5000 (its config), so the registry
# under test listens on $PC_PORT = 5100.
PC_PORT=5100
. "$(dirname "$0")/lib.sh"

clients_init
MK=$PC_SRC/scripts/mkimage-oci.sh
VERSION=$("$PULLCACHE" --version | awk '{ print $2 }')
PC=127.0.0.1:$PC_PORT

# ---- build, twice ----------------------------------------------------------------
bash "$MK" "$PULLCACHE" "$WORK/image" >"$WORK/mkimage.log" 2>&1 || fail "mkimage-oci.sh (see mkimage.log)"
bash "$MK" "$PULLCACHE" "$WORK/image2" >>"$WORK/mkimage.log" 2>&1 || fail "mkimage-oci.sh, second build"
cmp "$WORK/image/index.json" "$WORK/image2/index.json" || fail "two builds: index.json differs"
expect_eq "$(cd "$WORK/image" && find . -type f | sort | xargs sha256sum)" \
    "$(cd "$WORK/image2" && find . -type f | sort | xargs sha256sum)" "two builds: the layouts' files"
# every blob is stored under its own digest
for b in "$WORK"/image/blobs/sha256/*; do
    expect_eq "$(basename "$b")" "$(sha256sum "$b" | cut -d' ' -f1)" "digest of blob $b"
done
echo "ok: two builds, same digests"

blob() { echo "$WORK/image/blobs/sha256/${1#sha256:}"; }
expect_eq "$VERSION" "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$WORK/image/index.json")" \
    "the layout's tag"
MANIFEST=$(jq -r '.manifests[0].digest' "$WORK/image/index.json")
LAYER=$(jq -r '.layers[0].digest' "$(blob "$MANIFEST")")
CONFIG=$(jq -r '.config.digest' "$(blob "$MANIFEST")")
expect_eq 1 "$(jq '.layers | length' "$(blob "$MANIFEST")")" "layers"
expect_eq "sha256:$(gzip -dc "$(blob "$LAYER")" | sha256sum | cut -d' ' -f1)" \
    "$(jq -r '.rootfs.diff_ids[0]' "$(blob "$CONFIG")")" "the layer's diff_id"

# ---- the layer -------------------------------------------------------------------
tar -tvzf "$(blob "$LAYER")" --numeric-owner >"$WORK/layer.list"
# owner of PATH in the layer ("" when absent)
owner() { awk -v p="$1" '$6 == p || $6 == p "/" { print $2 }' "$WORK/layer.list"; }
for p in usr/bin/pullcache etc/ssl/certs/ca-certificates.crt etc/passwd etc/group \
    etc/pullcache/config.yaml; do
    expect_eq 0/0 "$(owner "$p")" "owner of $p in the layer"
done
expect_eq 65532/65532 "$(owner data)" "owner of /data in the layer"
expect_eq drwxrwxrwt "$(awk '$6 == "tmp/" { print $1 }' "$WORK/layer.list")" "mode of /tmp"
n=$(awk '$2 != "0/0" && $6 !~ /^data\/?$/' "$WORK/layer.list" | wc -l)
expect_eq 0 "$n" "entries not root's besides /data"
expect_eq 1 "$(awk '{ print $4, $5 }' "$WORK/layer.list" | sort -u | wc -l)" "distinct mtimes in the layer"
awk '{ print $6 }' "$WORK/layer.list" >"$WORK/layer.names"
sort -c "$WORK/layer.names" 2>/dev/null || fail "the layer's entries are not sorted"
# every library the binary links, and the loader, at the path ldd resolves
ldd "$PULLCACHE" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u >"$WORK/libs"
[ -s "$WORK/libs" ] || fail "ldd names no library"
while read -r l; do
    grep -qxF "${l#/}" "$WORK/layer.names" || fail "the layer lacks $l (ldd $PULLCACHE)"
done <"$WORK/libs"
echo "ok: layer: $(wc -l <"$WORK/libs") libraries, owners, modes, one mtime"

# ---- pushed with pullcache copy, inspected with skopeo ---------------------------
pc_start "$WORK/data"
"$PULLCACHE" copy --plain-http "oci:$WORK/image:$VERSION" "$PC/pullcache:$VERSION" \
    >"$WORK/copy.out" 2>&1 || fail "pullcache copy oci:... (see copy.out: $(cat "$WORK/copy.out"))"
expect_eq "$MANIFEST" "$(reg_digest pullcache "$VERSION")" "digest of the pushed image"
sk inspect --tls-verify=false --config "docker://$PC/pullcache:$VERSION" >"$WORK/config.json" ||
    fail "skopeo inspect --config"
sk inspect --tls-verify=false "docker://$PC/pullcache:$VERSION" >"$WORK/inspect.json" ||
    fail "skopeo inspect"
cfg=$WORK/config.json
expect_eq "65532:65532" "$(jq -r .config.User "$cfg")" "User"
expect_eq '["/usr/bin/pullcache","serve","--config","/etc/pullcache/config.yaml"]' \
    "$(jq -c .config.Entrypoint "$cfg")" "Entrypoint"
expect_eq null "$(jq -c .config.Cmd "$cfg")" "Cmd"
expect_eq '["5000/tcp"]' "$(jq -c '.config.ExposedPorts | keys' "$cfg")" "ExposedPorts"
expect_eq '["/data"]' "$(jq -c '.config.Volumes | keys' "$cfg")" "Volumes"
arch=$(dpkg --print-architecture)
[ "$arch" != armhf ] || arch=arm
[ "$arch" != i386 ] || arch=386
[ "$arch" != ppc64el ] || arch=ppc64le
expect_eq "$arch" "$(jq -r .Architecture "$WORK/inspect.json")" "Architecture"
expect_eq linux "$(jq -r .Os "$WORK/inspect.json")" "Os"
expect_eq "$VERSION" "$(jq -r '.Labels["org.opencontainers.image.version"]' "$WORK/inspect.json")" "version label"
for l in title description revision created licenses; do
    v=$(jq -r --arg l "org.opencontainers.image.$l" '.Labels[$l] // ""' "$WORK/inspect.json")
    [ -n "$v" ] || fail "no label org.opencontainers.image.$l"
done
echo "ok: pushed with pullcache copy; skopeo inspect: user, entrypoint, port, volume, $arch, labels"

# ---- run without a container runtime ---------------------------------------------
root=$WORK/rootfs
mkdir -p "$root" "$WORK/vol"
tar -xzf "$(blob "$LAYER")" -C "$root" --numeric-owner
chown 65532:65532 "$WORK/vol"
mkdir "$root/proc" # a runtime's mount point (the sanitizers read /proc/self/maps)
# this test's mount namespace (lib.sh): the tree read-only, the volume on
# /data, this PID namespace's /proc; unmounted at exit (and the podman
# container below removed) before lib.sh removes $WORK
PODMAN_RUN=""
trap '_rc=$?; [ -z "$PODMAN_RUN" ] || pod rm -f pc-image >/dev/null 2>&1; umount -R -l "$root" 2>/dev/null; (exit $_rc); _pc_cleanup' EXIT
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind "$WORK/vol" "$root/data"
mount -t proc proc "$root/proc"
# serve_image: start the image's entrypoint inside the tree as 65532:65532.
serve_image() {
    local ep=()
    mapfile -t ep < <(jq -r '.config.Entrypoint[]' "$cfg")
    unshare --root="$root" --wd=/data --setgid 65532 --setuid 65532 "${ep[@]}" \
        >>"$WORK/image-serve.log" 2>&1 &
    IMG_PID=$!
    PIDS+=("$IMG_PID")
    wait_http "http://127.0.0.1:5000/readyz" "$IMG_PID"
}
serve_image
curl -sS -f http://127.0.0.1:5000/readyz >"$WORK/readyz.json" || fail "/readyz of the image's serve: $(cat "$WORK/readyz.json")"
expect_eq true "$(jq -r .ready "$WORK/readyz.json")" "the image's serve is ready"
expect_eq 65532 "$(awk '/^Uid:/ { print $2 }' "/proc/$IMG_PID/status")" "uid of the image's serve"
expect_eq 65532 "$(awk '/^Gid:/ { print $2 }' "/proc/$IMG_PID/status")" "gid of the image's serve"
head -c 4096 /dev/urandom >"$WORK/blob.bin"
REG=127.0.0.1:5000 reg_push_blob e2e/img "$WORK/blob.bin" >/dev/null
[ -f "$WORK/vol/meta.db" ] || fail "the image's serve keeps no meta.db in the /data volume"
expect_eq 65532 "$(stat -c %u "$WORK/vol/meta.db")" "owner of /data/meta.db"
[ -s "$(pc_blob_file "$WORK/vol" "$(sha "$WORK/blob.bin")")" ] || fail "the pushed blob is not in the /data volume"
kill -TERM "$IMG_PID"
wait "$IMG_PID" || fail "the image's serve exited $? on SIGTERM (see image-serve.log)"
echo "ok: extracted, read-only root, unshare --root as 65532: ready, writes to /data"

# ---- run by podman, pulled from the registry --------------------------------------
echo "+ podman run $PC/pullcache:$VERSION" >>"$WORK/clients.log"
PODMAN_RUN=1
pod --runtime runc run -d --name pc-image --network host --read-only --cap-drop ALL \
    --security-opt no-new-privileges "$PC/pullcache:$VERSION" >>"$WORK/clients.log" 2>&1 ||
    fail "podman run (see clients.log)"
for i in $(seq 100); do
    curl -s -o /dev/null http://127.0.0.1:5000/readyz && break
    [ "$(pod inspect pc-image --format '{{.State.Status}}')" = running ] ||
        fail "the podman container stopped: $(pod logs pc-image 2>&1 | tail -5)"
    [ "$i" -lt 100 ] || fail "no answer from the podman container"
    sleep 0.1
done
expect_eq true "$(curl -sS http://127.0.0.1:5000/readyz | jq -r .ready)" "podman: ready"
expect_eq "65532:65532" "$(pod inspect pc-image --format '{{.Config.User}}')" "podman: user"
cpid=$(pod inspect pc-image --format '{{.State.Pid}}')
expect_eq 65532 "$(awk '/^Uid:/ { print $2 }' "/proc/$cpid/status")" "podman: uid of serve"
pod stop -t 10 pc-image >>"$WORK/clients.log" 2>&1 || fail "podman stop"
pod rm pc-image >>"$WORK/clients.log" 2>&1 || fail "podman rm"
PODMAN_RUN=""
echo "ok: podman run from the registry: ready as 65532"

# ---- the Containerfile's runtime stage, built offline ------------------------------
# Its build stage needs debian:12 and the internet; everything after the
# second FROM is built here as written, on a stage holding the tree
# `mkimage-oci.sh --rootfs` writes (what the build stage's last command makes).
cf=$PC_SRC/Containerfile
[ -f "$cf" ] || fail "no Containerfile"
head -n 1 "$cf" | grep -q '^# SPDX-License-Identifier' || fail "Containerfile: no SPDX line"
expect_eq 2 "$(grep -c '^FROM ' "$cf")" "Containerfile: stages"
grep -qx 'FROM debian:12 AS build' "$cf" || fail "Containerfile: no debian:12 build stage"
grep -qx 'FROM scratch' "$cf" || fail "Containerfile: the runtime stage is not FROM scratch"
grep -q 'bash scripts/deps.sh' "$cf" || fail "Containerfile: the build stage does not use scripts/deps.sh"
grep -qF 'bash scripts/mkimage-oci.sh --rootfs build/pullcache /image' "$cf" ||
    fail "Containerfile: the runtime tree is not mkimage-oci.sh --rootfs's"
ctx=$WORK/ctx
mkdir -p "$ctx"
bash "$MK" --rootfs "$PULLCACHE" "$ctx/image" >>"$WORK/mkimage.log" 2>&1 || fail "mkimage-oci.sh --rootfs"
expect_eq "$(sed 's|/$||' "$WORK/layer.names" | sort)" \
    "$({ (cd "$ctx/image/root" && find . -mindepth 1) && (cd "$ctx/image/volume" && find . -mindepth 1); } |
        sed 's|^\./||' | sort)" \
    "--rootfs's files = the layer's"
expect_eq 65532 "$(stat -c %u "$ctx/image/volume/data")" "owner of --rootfs's /data"
{
    echo "FROM scratch AS build"
    echo "COPY image/ /image/"
    awk '/^FROM / { n++ } n >= 2' "$cf"
} >"$ctx/Containerfile"
pod build --pull=never -t localhost/pullcache-cf:test -f "$ctx/Containerfile" "$ctx" >"$WORK/build.log" 2>&1 ||
    fail "podman build of the Containerfile's runtime stage (see build.log)"
pod image inspect localhost/pullcache-cf:test >"$WORK/cf.json" || fail "podman image inspect"
for f in User Entrypoint WorkingDir; do
    expect_eq "$(jq -c ".config.$f" "$cfg")" "$(jq -c ".[0].Config.$f" "$WORK/cf.json")" "Containerfile image: $f"
done
for f in ExposedPorts Volumes; do
    expect_eq "$(jq -c ".config.$f | keys" "$cfg")" "$(jq -c ".[0].Config.$f | keys" "$WORK/cf.json")" "Containerfile image: $f"
done
jq -e '.[0].Config.Env | index("PATH=/usr/bin")' "$WORK/cf.json" >/dev/null || fail "Containerfile image: PATH"
PODMAN_RUN=1
pod --runtime runc run -d --name pc-image --network host --read-only --cap-drop ALL \
    --security-opt no-new-privileges localhost/pullcache-cf:test >>"$WORK/clients.log" 2>&1 ||
    fail "podman run of the Containerfile's image (see clients.log)"
for i in $(seq 100); do
    curl -s -o /dev/null http://127.0.0.1:5000/readyz && break
    [ "$i" -lt 100 ] || fail "no answer from the Containerfile's image: $(pod logs pc-image 2>&1 | tail -5)"
    sleep 0.1
done
expect_eq true "$(curl -sS http://127.0.0.1:5000/readyz | jq -r .ready)" "Containerfile image: ready (writes to /data)"
cpid=$(pod inspect pc-image --format '{{.State.Pid}}')
expect_eq 65532 "$(awk '/^Uid:/ { print $2 }' "/proc/$cpid/status")" "Containerfile image: uid of serve"
pod rm -f pc-image >>"$WORK/clients.log" 2>&1 || fail "podman rm"
PODMAN_RUN=""
echo "ok: the Containerfile's runtime stage builds offline on --rootfs's tree, same config, runs as 65532"
echo "PASS: $TEST_NAME"
