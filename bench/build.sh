#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build.sh [REV] - build pullcache for benchmarking: Release, from a clean
# export of a commit (default HEAD), so a benchmark never compiles whatever
# half-edited or untracked files the shared work tree holds at that moment.
#
#   source  <repo>/build-bench-src   (git archive REV; replaced every time)
#   build   <repo>/build-bench       (binary build-bench/pullcache)
#   build-bench/BENCH_REV            the commit it was built from (run.sh reports it)
#
# Both directories match .gitignore's /build-*/. Prints the binary's path.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REV=$(git -C "$REPO" rev-parse --verify "${1:-HEAD}^{commit}")
SRC=$REPO/build-bench-src
OUT=$REPO/build-bench

rm -rf "$SRC"
mkdir -p "$SRC"
git -C "$REPO" archive "$REV" | tar -x -C "$SRC"
# A build dir configured for another source tree (e.g. -S <repo>) cannot be reused.
if [ -f "$OUT/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$SRC" "$OUT/CMakeCache.txt"; then
    rm -rf "$OUT"
fi
cmake -S "$SRC" -B "$OUT" -DCMAKE_BUILD_TYPE=Release -DPC_TESTS=OFF >&2
cmake --build "$OUT" -j "$(nproc)" >&2
echo "$REV" >"$OUT/BENCH_REV"
echo "$OUT/pullcache"
