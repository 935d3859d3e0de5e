#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# mkimage-oci.sh - build pullcache's container image offline, FROM scratch,
# as an OCI image layout (make image), or only its file tree (the
# Containerfile's build stage). No container runtime, no registry, no network.
#
#   scripts/mkimage-oci.sh [--tag TAG] BINARY OUT     OCI layout in OUT (replaced)
#   scripts/mkimage-oci.sh --rootfs BINARY OUT        the image's files in OUT:
#       OUT/root (all but /data) and OUT/volume/data (owned by 65532 when
#       run as root), for the Containerfile's two COPYs: COPY sets the
#       owner of what it copies only, never of a directory already there
#
# One layer holds:
#   /usr/bin/pullcache               BINARY, stripped of debug information
#   the shared libraries BINARY links (ldd), at the paths ldd resolves them
#   to, and the dynamic loader at the path the ELF header names
#   /etc/ssl/certs/ca-certificates.crt   the build host's CA bundle
#   /etc/passwd, /etc/group          root and pullcache (uid/gid 65532)
#   /etc/nsswitch.conf               hosts from /etc/hosts, then DNS
#   /etc/pullcache/config.yaml       deploy/image/config.yaml (listen
#                                    0.0.0.0:5000, data in /data)
#   /data                            the volume, owned by 65532:65532
#   /tmp                             1777
# The config runs `pullcache serve --config /etc/pullcache/config.yaml` as
# 65532:65532 with port 5000/tcp exposed, /data a volume, and the
# org.opencontainers.image.* labels. The layout's index.json names the
# manifest by org.opencontainers.image.ref.name = TAG (default: the version
# `BINARY --version` prints), so `pullcache copy oci:OUT:TAG DEST` and
# `skopeo copy oci:OUT:TAG ...` find it.
#
# Reproducible: every entry has the mtime SOURCE_DATE_EPOCH (default: the
# last commit's time, else 0), numeric owners, no user or group names, fixed
# modes, and the entries are sorted; gzip stores no name or time. The same
# BINARY and host files give the same digests (tests/e2e/test_image.sh).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
UID_PC=65532
die() {
    echo "mkimage-oci.sh: $*" >&2
    exit 1
}

tag="" rootfs=0
while [ $# -gt 0 ]; do
    case $1 in
    --tag) tag=${2:?--tag wants a value}; shift 2 ;;
    --rootfs) rootfs=1; shift ;;
    -h | --help) sed -n '3,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || die "usage: mkimage-oci.sh [--tag TAG | --rootfs] BINARY OUT"
bin=$1 out=$2
[ -x "$bin" ] || die "$bin is not an executable"
tools="ldd"
[ "$rootfs" = 1 ] || tools="ldd python3 jq sha256sum gzip"
for t in $tools; do
    command -v "$t" >/dev/null || die "needs $t"
done

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
version=$("$bin" --version | awk '{ print $2; exit }')
[ -n "$version" ] || die "$bin --version printed no version"
[ -n "$tag" ] || tag=$version
revision=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
case $(dpkg --print-architecture 2>/dev/null || uname -m) in
amd64 | x86_64) arch=amd64 variant="" ;;
arm64 | aarch64) arch=arm64 variant=v8 ;;
armhf) arch=arm variant=v7 ;;
i386) arch=386 variant="" ;;
ppc64el) arch=ppc64le variant="" ;;
s390x) arch=s390x variant="" ;;
riscv64) arch=riscv64 variant="" ;;
*) die "unknown architecture $(dpkg --print-architecture)" ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkimage-oci.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs

# put SRC DEST MODE: copy SRC (symlinks followed) to DEST in the tree.
put() {
    mkdir -p "$root$(dirname "$2")"
    cp -L "$1" "$root$2"
    chmod "$3" "$root$2"
}

# ---- the file tree ---------------------------------------------------------------

mkdir -p "$root/usr/bin"
if command -v strip >/dev/null; then
    strip --strip-debug -o "$root/usr/bin/pullcache" "$bin"
    chmod 0755 "$root/usr/bin/pullcache"
else
    put "$bin" /usr/bin/pullcache 0755
fi

# ldd's lines: "libx.so.1 => /path/libx.so.1 (0x...)", the loader as
# "/lib64/ld-linux-x86-64.so.2 (0x...)", the vDSO without a path.
ldd "$bin" >"$tmp/ldd" || die "ldd $bin failed (a static or foreign binary?)"
if grep -q 'not found' "$tmp/ldd"; then
    die "ldd: $(grep 'not found' "$tmp/ldd" | tr -s ' \t' ' ')"
fi
nlibs=0
while read -r path; do
    put "$path" "$path" 0755
    nlibs=$((nlibs + 1))
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$tmp/ldd" | sort -u)
[ "$nlibs" -gt 0 ] || die "ldd named no libraries for $bin"

ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || die "no CA bundle at $ca (apt-get install ca-certificates)"
put "$ca" "$ca" 0644
put "$SRC/deploy/image/config.yaml" /etc/pullcache/config.yaml 0644
printf 'root:x:0:0:root:/root:/sbin/nologin\npullcache:x:%d:%d:pullcache:/data:/sbin/nologin\n' \
    "$UID_PC" "$UID_PC" >"$root/etc/passwd"
printf 'root:x:0:\npullcache:x:%d:\n' "$UID_PC" >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
mkdir -p "$root/data" "$root/tmp"
chmod 0755 "$root/data"
chmod 1777 "$root/tmp"

if [ "$rootfs" = 1 ]; then
    rm -rf "$out/root" "$out/volume"
    mkdir -p "$out/root" "$out/volume"
    cp -a "$root/." "$out/root/"
    mv "$out/root/data" "$out/volume/data"
    [ "$(id -u)" != 0 ] || chown "$UID_PC:$UID_PC" "$out/volume/data"
    echo "mkimage-oci.sh: the image's files are in $out/root and $out/volume ($nlibs libraries)"
    exit 0
fi

# ---- the layer -------------------------------------------------------------------

# A tar of the tree with fixed owners, times and order: every entry root's
# but /data, mtime SOURCE_DATE_EPOCH, directories 0755 unless set otherwise.
python3 - "$root" "$SOURCE_DATE_EPOCH" "$UID_PC" >"$tmp/layer.tar" <<'PY'
import os, stat, sys, tarfile
root, mtime, uid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
entries = []
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        entries.append(os.path.relpath(os.path.join(d, n), root))
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as t:
    for rel in sorted(entries):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        ti = tarfile.TarInfo(rel + ("/" if stat.S_ISDIR(st.st_mode) else ""))
        ti.mtime = mtime
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid = ti.gid = uid if rel == "data" or rel.startswith("data/") else 0
        ti.uname = ti.gname = ""
        if stat.S_ISDIR(st.st_mode):
            ti.type = tarfile.DIRTYPE
            t.addfile(ti)
        elif stat.S_ISREG(st.st_mode):
            ti.size = st.st_size
            with open(p, "rb") as f:
                t.addfile(ti, f)
        else:
            sys.exit("mkimage-oci.sh: unexpected file type: " + rel)
PY
gzip -n <"$tmp/layer.tar" >"$tmp/layer.tar.gz"

lay=$out.tmp.$$
rm -rf "$lay"
mkdir -p "$lay/blobs/sha256"
# blob FILE: store FILE as a blob; print its hex digest.
blob() {
    local h
    h=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$lay/blobs/sha256/$h"
    echo "$h"
}
size() { stat -c %s "$1"; }

diff_id=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
layer=$(blob "$tmp/layer.tar.gz")
layer_size=$(size "$tmp/layer.tar.gz")

jq -n --arg created "$created" --arg arch "$arch" --arg variant "$variant" \
    --arg diff "sha256:$diff_id" --arg version "$version" --arg revision "$revision" \
    --arg user "$UID_PC:$UID_PC" '
    ({
        "org.opencontainers.image.title": "pullcache",
        "org.opencontainers.image.description": "OCI registry and pull-through cache",
        "org.opencontainers.image.version": $version,
        "org.opencontainers.image.revision": $revision,
        "org.opencontainers.image.created": $created,
        "org.opencontainers.image.licenses": "Apache-2.0"
    }) as $labels |
    {
        created: $created,
        architecture: $arch,
        os: "linux",
        config: {
            User: $user,
            ExposedPorts: {"5000/tcp": {}},
            Env: ["PATH=/usr/bin"],
            Entrypoint: ["/usr/bin/pullcache", "serve", "--config", "/etc/pullcache/config.yaml"],
            WorkingDir: "/data",
            Volumes: {"/data": {}},
            Labels: $labels,
            StopSignal: "SIGTERM"
        },
        rootfs: {type: "layers", diff_ids: [$diff]},
        history: [{created: $created, created_by: "scripts/mkimage-oci.sh"}]
    } + (if $variant == "" then {} else {variant: $variant} end)' >"$tmp/config.json"
config=$(blob "$tmp/config.json")

jq -n --arg config "sha256:$config" --argjson csize "$(size "$tmp/config.json")" \
    --arg layer "sha256:$layer" --argjson lsize "$layer_size" --arg created "$created" \
    --arg version "$version" --arg revision "$revision" '{
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $config, size: $csize},
        layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $layer, size: $lsize}],
        annotations: {
            "org.opencontainers.image.created": $created,
            "org.opencontainers.image.version": $version,
            "org.opencontainers.image.revision": $revision
        }
    }' >"$tmp/manifest.json"
manifest=$(blob "$tmp/manifest.json")

jq -n --arg m "sha256:$manifest" --argjson size "$(size "$tmp/manifest.json")" --arg tag "$tag" \
    --arg arch "$arch" --arg variant "$variant" '{
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: $m,
            size: $size,
            platform: ({architecture: $arch, os: "linux"} + (if $variant == "" then {} else {variant: $variant} end)),
            annotations: {"org.opencontainers.image.ref.name": $tag}
        }]
    }' >"$lay/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"

rm -rf "$out"
mv "$lay" "$out"
echo "mkimage-oci.sh: $out: oci:$out:$tag manifest sha256:$manifest ($nlibs libraries, layer $layer_size bytes)"
