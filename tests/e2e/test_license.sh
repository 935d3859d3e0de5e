#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_license.sh - the project is Apache-2.0: LICENSE holds the license text,
# and every source, test, script and build file names it with an SPDX line
# in its first comment (new files included: a file without it fails here).
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -q 'Apache License' LICENSE && grep -q 'Version 2.0, January 2004' LICENSE ||
    { echo "FAIL: LICENSE is not the Apache-2.0 text" >&2; exit 1; }
if git rev-parse --git-dir >/dev/null 2>&1; then
    files=$(git ls-files --cached --others --exclude-standard 'src/*.[ch]' 'tests/*.[ch]' 'tests/*.sh' \
        'tests/*.py' 'scripts/*.sh' 'bench/*.sh' 'bench/*.lua' 'examples/*.sh' .ci/run 'CMakeLists.txt' \
        'tests/fuzz/CMakeLists.txt' Makefile)
else
    files=$(find src tests scripts bench examples -type f \( -name '*.[ch]' -o -name '*.sh' -o -name '*.py' -o -name '*.lua' \) | sort)
fi
n=0 missing=0
for f in $files; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    # within the first comment: C up to the first "*/", others the leading # lines
    case $f in
    *.c | *.h) first=$(awk '{ print } /\*\// { exit }' "$f") ;;
    *) first=$(awk 'NR == 1 && /^#!/ { next } /^(#|--)/ { print; next } { exit }' "$f") ;;
    esac
    if ! grep -q 'SPDX-License-Identifier: Apache-2.0' <<<"$first"; then
        echo "FAIL: $f has no SPDX-License-Identifier: Apache-2.0 in its first comment" >&2
        missing=$((missing + 1))
    fi
done
[ "$n" -gt 100 ] || { echo "FAIL: only $n files checked" >&2; exit 1; }
[ "$missing" -eq 0 ] || exit 1
echo "PASS: test_license ($n files)"
