#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_deb.sh - `make deb`'s package (scripts/mkdeb.sh, built here from the
# build under test into this test's directory) installs, works and purges
# without a trace. It installs into the real machine, so:
#   - it runs only as root, and skips (77) when any of the package's paths
#     (or its data directory) already exists or a pullcache package is known
#     to dpkg: that state is someone else's and is left alone;
#   - from the moment it installs, an EXIT trap purges the package and
#     removes what the test itself created, whatever way the test ends.
# Checked: lintian (if installed) finds no error (warnings are printed); the
# package holds exactly the expected files, /etc/pullcache/config.yaml as
# its conffile; Depends names the package of every shared library the binary
# links (each NEEDED soname looked up with dpkg -S); after `dpkg -i`:
# `/usr/bin/pullcache --version` is the build's, `pullcache serve
# --check-config --config /etc/pullcache/config.yaml` passes, `man
# pullcache` renders the installed page without warnings, the installed
# completion registers for pullcache, `systemd-analyze verify` passes on the
# installed unit; a changed conffile survives a reinstall; `systemctl
# enable` works; `dpkg -r` keeps the conffile and masks the unit, `dpkg
# --purge` removes the conffile, the data directory (made here as the unit's
# DynamicUser StateDirectory would be), the enable links and the mask, and
# deb-systemd-helper's state: dpkg -L lists nothing and none of those paths
# exists.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/lib_deb.sh"

BUILD=${PC_BUILD:-$(dirname "$PULLCACHE")}
deb_preflight test_deb

# ---- the package ----------------------------------------------------------------
mkdir -p "$WORK/out"
DEB=$(bash "$PC_SRC/scripts/mkdeb.sh" "$BUILD" "$WORK/out") || fail "scripts/mkdeb.sh failed"
[ -f "$DEB" ] || fail "mkdeb printed '$DEB', no such file"
VERSION=$("$PULLCACHE" --version | awk '{ print $2 }')
expect_eq "pullcache_${VERSION}_$(dpkg --print-architecture).deb" "$(basename "$DEB")" "the package's file name"
echo "package: $(basename "$DEB"), $(stat -c %s "$DEB") bytes"

if command -v lintian >/dev/null; then
    lintian --pedantic --display-info "$DEB" >"$WORK/lintian.log" 2>&1 || true
    grep -v '^running with root privileges' "$WORK/lintian.log" | sed 's/^/lintian: /' || true
    ! grep -q '^E: ' "$WORK/lintian.log" || fail "lintian reports errors"
    grep -q '^[EW]: ' "$WORK/lintian.log" || echo "lintian: no error, no warning"
    # "I:" lines are information only (e.g. no init.d script next to the unit)
else
    echo "lintian not installed: not run (scripts/deps.sh --test installs it)"
fi

dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$WORK/files"
expect_eq "$(printf '%s\n' /etc/pullcache/config.yaml /lib/systemd/system/pullcache.service /usr/bin/pullcache \
    /usr/share/bash-completion/completions/pullcache /usr/share/doc/pullcache/changelog.gz \
    /usr/share/doc/pullcache/copyright /usr/share/man/man1/pullcache.1.gz | sort)" "$(cat "$WORK/files")" \
    "the package's files"
expect_eq /etc/pullcache/config.yaml "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)" "conffiles"
depends=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $depends"
# owner PATH...: the package dpkg -S names for the first PATH it knows
# (merged /usr: dpkg may have recorded /lib/... or /usr/lib/...)
owner() {
    local c p
    for c in "$@"; do
        p=$(dpkg -S "$c" 2>/dev/null | head -n 1 | cut -d: -f1) || true
        [ -z "$p" ] || { echo "$p"; return 0; }
    done
}
# every shared library the binary needs comes from a package Depends names
n=0
ldconfig -p >"$WORK/ldconfig.txt"
for so in $(readelf -d "$PULLCACHE" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(awk -v so="$so" '$1 == so && /x86-64|64bit|AArch64/ { print $NF; exit }' "$WORK/ldconfig.txt")
    [ -n "$path" ] || path=$(awk -v so="$so" '$1 == so { print $NF; exit }' "$WORK/ldconfig.txt")
    [ -n "$path" ] || fail "no $so in ldconfig's cache"
    real=$(realpath "$path")
    pkg=$(owner "$path" "/usr$path" "$real" "${real#/usr}")
    [ -n "$pkg" ] || fail "no package owns $path ($so)"
    [[ ", $depends," == *", $pkg "* || ", $depends," == *", $pkg,"* ]] ||
        fail "the binary needs $so (package $pkg), Depends lacks it: $depends"
    n=$((n + 1))
done
[ "$n" -gt 5 ] || fail "only $n NEEDED libraries found in $PULLCACHE"
echo "ok: lintian, the file list, the conffile, Depends covers the $n libraries the binary links"

# ---- install ---------------------------------------------------------------------
dpkg_locked -i "$DEB" >>"$WORK/dpkg.log" 2>&1 || fail "dpkg -i: $(tail -5 "$WORK/dpkg.log")"
expect_eq installed "$(dpkg-query -W -f='${db:Status-Status}' pullcache)" "dpkg status after dpkg -i"
expect_eq "pullcache $VERSION" "$(/usr/bin/pullcache --version)" "/usr/bin/pullcache --version"
out=$(/usr/bin/pullcache serve --check-config --config /etc/pullcache/config.yaml 2>&1) ||
    fail "pullcache serve --check-config --config /etc/pullcache/config.yaml: $out"
echo "\$ /usr/bin/pullcache --version: $(/usr/bin/pullcache --version); serve --check-config: $out"
expect_eq /usr/share/man/man1/pullcache.1.gz "$(MANPATH=/usr/share/man man -w pullcache)" "man -w pullcache"
MANPATH=/usr/share/man MANWIDTH=80 man --warnings pullcache >"$WORK/man.txt" 2>"$WORK/man.err" || fail "man pullcache failed"
grep -q 'pullcache serve' "$WORK/man.txt" || fail "man pullcache does not show the serve verb"
[ ! -s "$WORK/man.err" ] || fail "man --warnings pullcache: $(head -5 "$WORK/man.err")"
reg=$(bash --norc --noprofile -c '. /usr/share/bash-completion/completions/pullcache; complete -p pullcache')
[[ $reg == *"-F _pullcache"* ]] || fail "the installed completion registers: $reg"
if command -v systemd-analyze >/dev/null; then
    (cd "$WORK" && systemd-analyze verify /lib/systemd/system/pullcache.service) >"$WORK/verify.log" 2>&1 ||
        fail "systemd-analyze verify of the installed unit: $(cat "$WORK/verify.log")"
    [ ! -s "$WORK/verify.log" ] || fail "systemd-analyze verify of the installed unit says: $(cat "$WORK/verify.log")"
fi
echo "ok: installed: --version, serve --check-config, man pullcache, completion, systemd-analyze verify"

# a local change of the conffile survives a reinstall
echo "# local change" >>/etc/pullcache/config.yaml
dpkg_locked -i "$DEB" >>"$WORK/dpkg.log" 2>&1 </dev/null || fail "dpkg -i again: $(tail -5 "$WORK/dpkg.log")"
[ "$(tail -n 1 /etc/pullcache/config.yaml)" = "# local change" ] || fail "reinstalling replaced the changed conffile"

# `systemctl enable pullcache` (the README's; without a running systemd it
# only makes the [Install] links), so that purge must remove them
if command -v systemctl >/dev/null; then
    systemctl enable pullcache.service >>"$WORK/systemctl.log" 2>&1 || fail "systemctl enable: $(cat "$WORK/systemctl.log")"
    [ -L /etc/systemd/system/multi-user.target.wants/pullcache.service ] || fail "systemctl enable made no link"
fi

# the data directory as the unit's DynamicUser=yes + StateDirectory=pullcache makes it
[ -d /var/lib/private ] || mkdir -m 0700 /var/lib/private
mkdir -p /var/lib/private/pullcache/blobs
echo x >/var/lib/private/pullcache/meta.db
ln -s private/pullcache /var/lib/pullcache

# ---- remove, purge ------------------------------------------------------------------------
dpkg_locked -r pullcache >>"$WORK/dpkg.log" 2>&1 || fail "dpkg -r: $(tail -5 "$WORK/dpkg.log")"
expect_eq config-files "$(dpkg-query -W -f='${db:Status-Status}' pullcache)" "dpkg status after dpkg -r"
[ ! -e /usr/bin/pullcache ] || fail "dpkg -r left /usr/bin/pullcache"
[ -f /etc/pullcache/config.yaml ] || fail "dpkg -r removed the conffile (only purge should)"
if command -v deb-systemd-helper >/dev/null; then
    expect_eq /dev/null "$(readlink /etc/systemd/system/pullcache.service)" "the unit after dpkg -r (masked)"
fi
dpkg_locked --purge pullcache >>"$WORK/dpkg.log" 2>&1 || fail "dpkg --purge: $(tail -5 "$WORK/dpkg.log")"
deb_gone $(cat "$WORK/files")
echo "ok: dpkg -r kept the conffile; dpkg --purge left nothing (dpkg -L empty, no file, no data directory, no systemd link or state)"
echo "PASS: test_deb"
