#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_readme_deb.sh - the README's "## Install" / "### Debian package
# and systemd" commands work as written. They are extracted from README.md,
# never copied here (a block that is not found fails the test):
#   - the first ```sh block (build the package, install it, --version,
#     serve --check-config): run line by line in a working directory, each
#     as written but for one rewrite: `make deb` becomes what the Makefile's
#     deb rule runs (`bash scripts/mkdeb.sh $(BUILD)`, checked here) for the
#     build under test, with the package written to the working directory's
#     build/, so the next line's `build/pullcache_*.deb` finds it unchanged;
#     `pullcache` must then be the installed /usr/bin/pullcache;
#   - the second ```sh block (systemctl, journalctl): run when systemd is
#     PID 1 (/run/systemd/system), the service then checked active after
#     enable --now and after reload; otherwise listed as not run (this
#     machine has no systemd as PID 1: nothing can start a unit);
#   - the prose's `dpkg --purge pullcache`: run last; nothing is left.
# It installs into the real machine: lib_deb.sh's preflight (skip when
# pullcache is already there) and EXIT trap (purge, whatever happens).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_deb.sh"

README=$PC_SRC/README.md
BUILD=${PC_BUILD:-$(dirname "$PULLCACHE")}

# install_block N: the body of the Nth ```sh block of "### Debian package and
# systemd" (inside "## Install").
install_block() {
    awk -v want="$1" '
        /^## / { inst = index($0, "## Install") == 1; sub_ = 0; next }
        /^### / { sub_ = inst && index($0, "### Debian package and systemd") == 1; next }
        /^```/ && !fence { fence = 1; cur = (substr($0, 4) == "sh") && sub_; if (cur) n++; next }
        /^```/ && fence { fence = 0; if (cur && n == want) done = 1; cur = 0; next }
        fence && cur && n == want { print }
        END { exit done ? 0 : 1 }' "$README" ||
        fail "README.md: no ${1}. \`\`\`sh block in '## Install' / '### Debian package and systemd'"
}
# the section's prose (no fenced blocks)
install_prose() {
    awk '/^## / { inst = index($0, "## Install") == 1; sub_ = 0; next }
        /^### / { sub_ = inst && index($0, "### Debian package and systemd") == 1; next }
        /^```/ { fence = !fence; next }
        sub_ && !fence' "$README"
}

mapfile -t PKG < <(install_block 1 | grep -v '^[[:space:]]*\(#\|$\)')
mapfile -t SVC < <(install_block 2 | grep -v '^[[:space:]]*\(#\|$\)')
[ "${#PKG[@]}" -ge 3 ] || fail "README Install: the package block has ${#PKG[@]} lines"
[ "${#SVC[@]}" -ge 1 ] || fail "README Install: the systemd block is empty"
[ "${PKG[0]}" = "make deb" ] || fail "README Install: the package block should start with 'make deb', not '${PKG[0]}'"
grep -qF -- '`dpkg --purge pullcache`' <(install_prose) || fail "README Install: no \`dpkg --purge pullcache\` in the prose"
# the rewrite of `make deb` is what the Makefile's rule runs
grep -qxF $'\tbash scripts/mkdeb.sh $(BUILD)' < <(grep -A2 '^deb: all$' "$PC_SRC/Makefile") ||
    fail "the Makefile's deb rule is no longer 'bash scripts/mkdeb.sh \$(BUILD)': this test's rewrite must follow it"
printf 'README: package: %s\n' "${PKG[@]}"
printf 'README: systemd: %s\n' "${SVC[@]}"

deb_preflight test_readme_deb

CWD=$WORK/readme
mkdir -p "$CWD/build"
VERSION=$("$PULLCACHE" --version | awk '{ print $2 }')
run_line() { # LINE: run it in $CWD, output in $WORK/line.out; its exit status
    local rc=0
    echo "\$ $1"
    (cd "$CWD" && bash -c "$1") >"$WORK/line.out" 2>&1 || rc=$?
    sed 's/^/  /' "$WORK/line.out"
    return "$rc"
}
for l in "${PKG[@]}"; do
    case $l in
    "make deb")
        printf -v cmd 'bash %q %q %q' "$PC_SRC/scripts/mkdeb.sh" "$BUILD" "$CWD/build"
        run_line "$cmd" || fail "README: $l (as $cmd) failed: $(cat "$WORK/line.out")"
        ;;
    "dpkg "*)
        # dpkg's lock may be held by another job installing packages: wait
        for _ in $(seq 300); do
            rc=0
            run_line "$l" || rc=$?
            [ "$rc" != 0 ] && grep -q lock "$WORK/line.out" || break
            sleep 1
        done
        [ "$rc" = 0 ] || fail "README: $l failed (exit $rc)"
        ;;
    *)
        run_line "$l" || fail "README: $l failed: $(cat "$WORK/line.out")"
        ;;
    esac
    case $l in
    "pullcache --version") expect_eq "pullcache $VERSION" "$(cat "$WORK/line.out")" "README: $l" ;;
    "pullcache serve --check-config"*) grep -q "configuration is valid" "$WORK/line.out" || fail "README: $l: $(cat "$WORK/line.out")" ;;
    esac
done
expect_eq installed "$(deb_status)" "dpkg status after the README's package block"
expect_eq /usr/bin/pullcache "$(cd "$CWD" && command -v pullcache)" "the pullcache the README's lines ran"
echo "ok: README package block: built, installed, --version $VERSION, the shipped config valid"

if [ -d /run/systemd/system ]; then
    for l in "${SVC[@]}"; do
        run_line "$l" || fail "README: $l failed: $(cat "$WORK/line.out")"
        case $l in
        "systemctl enable --now pullcache" | "systemctl reload pullcache")
            expect_eq active "$(systemctl is-active pullcache)" "pullcache.service after '$l'"
            ;;
        esac
    done
    echo "ok: README systemd block: started, logged, reloaded"
else
    for l in "${SVC[@]}"; do echo "README: not run (no systemd as PID 1 here, nothing can start a unit): $l"; done
fi

run_line "dpkg --purge pullcache" || fail "README: dpkg --purge pullcache failed: $(cat "$WORK/line.out")"
deb_gone
echo "ok: README: dpkg --purge pullcache left nothing"
echo "PASS: test_readme_deb"
