#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deps.sh - install what pullcache needs from Debian 12's packages.
#   bash scripts/deps.sh          build and run dependencies
#   bash scripts/deps.sh --test   also the real peers and clients the tests drive,
#                                 and tests/browser's npm packages (npm ci: playwright-core,
#                                 which drives Debian's chromium; it downloads no browser)
set -euo pipefail

BUILD=(build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
       libjansson-dev libsqlite3-dev libcyaml-dev libcrypt-dev libpq-dev libgnutls28-dev libxml2-dev
       ca-certificates dpkg-dev)
TEST=(libcmocka-dev curl jq docker-registry skopeo podman containerd umoci wrk nginx-light
      hyperfine apache2-utils sqlite3 iproute2 util-linux netcat-openbsd python3 python3-yaml uidmap logrotate prometheus rsync
      clang libclang-rt-14-dev postgresql radosgw ceph-mon ceph-osd kubernetes-client chromium nodejs)
# the packaging tests: systemd-analyze, man, col, lintian (e2e.systemd, e2e.help_docs, e2e.deb)
TEST+=(systemd man-db groff-base bsdextrautils lintian strace)

pkgs=("${BUILD[@]}")
if [ "${1:-}" = "--test" ]; then
    pkgs+=("${TEST[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
    # kubectl from another package (a cloud SDK's) conflicts with Debian's on
    # /usr/bin/kubectl; any kubectl renders the manifests (e2e.kubernetes)
    if [ "$p" = kubernetes-client ] && command -v kubectl >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: Debian's package, unless the nodejs installed brings its own
if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null; then
    missing+=(npm)
fi

# tests/browser's packages, exactly as its package-lock.json says
browser_packages() {
    [ "${1:-}" = "--test" ] || return 0
    (cd "$(dirname "$0")/../tests/browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

if [ ${#missing[@]} -eq 0 ]; then
    browser_packages "$@"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/pullcache-apt.log 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
browser_packages "$@"
