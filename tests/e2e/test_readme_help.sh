#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_readme_help.sh - the README's "Command line" section lists every verb
# that `pullcache --help` lists and every flag each verb's --help names (a
# --src-X/--dest-X flag is covered by the section's shared flag --X), so the
# README cannot drift from the binary; every verb's --help says what its exit
# codes mean, and `pullcache help` has the one table the client verbs share.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PULLCACHE=${PULLCACHE:-$SRC/build/pullcache}
sec=$(awk '/^## Command line/ { f = 1; next } /^## / { f = 0 } f' "$SRC/README.md")
[ -n "$sec" ] || { echo "FAIL: README.md has no '## Command line' section" >&2; exit 1; }
bad=0 n=0
for v in $("$PULLCACHE" --help | awk '/^verbs:/ { f = 1; next } f && /^  [a-z]/ { print $1 }'); do
    case $v in help | version) continue ;; esac
    vhelp=$("$PULLCACHE" "$v" --help) # not piped into grep -q: an early exit would SIGPIPE it
    grep -qiE '^ *exit (codes|status)' <<<"$vhelp" ||
        { echo "FAIL: pullcache $v --help has no exit code section" >&2; bad=1; }
    grep -q "^pullcache $v" <<<"$sec" || { echo "FAIL: README command list lacks 'pullcache $v'" >&2; bad=1; }
    for fl in $("$PULLCACHE" "$v" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
        case $fl in --help | --version) continue ;; esac
        n=$((n + 1))
        grep -q -- "$fl\b" <<<"$sec" && continue
        base=${fl#--src-}
        base=${base#--dest-}
        if [ "$base" != "${fl#--}" ] && grep -q -- "--$base\b" <<<"$sec"; then continue; fi
        echo "FAIL: pullcache $v --help names $fl, the README's Command line section does not" >&2
        bad=1
    done
done
grep -q '^exit codes (every client verb' <<<"$("$PULLCACHE" help)" ||
    { echo "FAIL: pullcache help has no exit code table" >&2; bad=1; }
[ "$n" -gt 50 ] || { echo "FAIL: only $n flags seen" >&2; exit 1; }
[ "$bad" -eq 0 ] || exit 1
echo "PASS: test_readme_help ($n flags)"
