# SPDX-License-Identifier: Apache-2.0
# lib_deb.sh - for the tests that install the Debian package into the real
# machine (test_deb.sh, test_readme_deb.sh); sourced after lib.sh.
#   deb_preflight NAME    skip (77) unless root with dpkg, and unless the
#                         machine has no pullcache package and none of its
#                         paths (someone else's state is left alone); then
#                         take the package lock (one such test at a time on
#                         this machine) and set the EXIT trap that purges
#                         the package and removes what the test made
#   dpkg_locked ARGS      dpkg ARGS, waiting while another dpkg or apt holds
#                         dpkg's lock
#   deb_gone              fail unless dpkg knows no pullcache package and
#                         none of DEB_PATHS exists
#   DEB_PATHS             every path the package, its service or its purge
#                         concern
DEB_PATHS=(/usr/bin/pullcache /lib/systemd/system/pullcache.service /etc/pullcache
    /etc/pullcache/config.yaml /usr/share/man/man1/pullcache.1.gz
    /usr/share/bash-completion/completions/pullcache /usr/share/doc/pullcache
    /usr/share/doc/pullcache/copyright /usr/share/doc/pullcache/changelog.gz
    /var/lib/pullcache /var/lib/private/pullcache
    /etc/systemd/system/pullcache.service /etc/systemd/system/multi-user.target.wants/pullcache.service
    /var/lib/systemd/deb-systemd-helper-enabled/pullcache.service.dsh-also
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/pullcache.service
    /var/lib/systemd/deb-systemd-helper-masked/pullcache.service)
DEB_CREATED_PRIVATE=""

deb_status() { dpkg-query -W -f='${db:Status-Status}' pullcache 2>/dev/null || true; }

deb_preflight() {
    local p s
    [ "$(id -u)" = 0 ] || { echo "SKIP: $1 installs a package: needs root"; exit 77; }
    for p in dpkg dpkg-deb dpkg-shlibdeps; do
        command -v "$p" >/dev/null || { echo "SKIP: no $p"; exit 77; }
    done
    # one package test at a time on this machine (ctest -j, or two checkouts)
    mkdir -p /run/lock
    exec 9>/run/lock/pullcache-e2e-package.lock
    flock 9
    s=$(deb_status)
    if [ -n "$s" ] && [ "$s" != not-installed ]; then
        echo "SKIP: a pullcache package is already known to dpkg ($s): not touching it"
        exit 77
    fi
    for p in "${DEB_PATHS[@]}"; do
        if [ -e "$p" ] || [ -L "$p" ]; then
            echo "SKIP: $p exists and is not from a pullcache package this test installed: not touching it"
            exit 77
        fi
    done
    [ -d /var/lib/private ] || DEB_CREATED_PRIVATE=1
    trap 'rc=$?; _deb_cleanup; (exit $rc); _pc_cleanup' EXIT
}

# The EXIT trap's part: whatever state the test left, purge the package and
# remove the paths (none of them existed before: deb_preflight).
_deb_cleanup() {
    local s p
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now pullcache.service >/dev/null 2>&1 || true
    fi
    s=$(deb_status)
    if [ -n "$s" ] && [ "$s" != not-installed ]; then
        echo "cleanup: dpkg --purge pullcache (it was $s)" >&2
        dpkg_locked --purge pullcache >>"$WORK/dpkg.log" 2>&1 || echo "cleanup: dpkg --purge failed" >&2
    fi
    for p in "${DEB_PATHS[@]}"; do
        rm -rf "$p"
    done
    [ -z "$DEB_CREATED_PRIVATE" ] || rmdir /var/lib/private 2>/dev/null || true
}

dpkg_locked() {
    local rc
    for _ in $(seq 300); do
        rc=0
        dpkg "$@" >"$WORK/dpkg.out" 2>&1 || rc=$?
        cat "$WORK/dpkg.out"
        [ "$rc" != 0 ] && grep -q 'lock' "$WORK/dpkg.out" || return "$rc"
        sleep 1
    done
    return 1
}

deb_gone() {
    local s listed p
    s=$(deb_status)
    [ -z "$s" ] || [ "$s" = not-installed ] || fail "dpkg status after purge: $s"
    listed=$(dpkg -L pullcache 2>/dev/null || true)
    [ -z "$listed" ] || fail "dpkg -L pullcache after purge lists: $listed"
    for p in "${DEB_PATHS[@]}" "$@"; do
        [ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p is left after dpkg --purge"
    done
}
