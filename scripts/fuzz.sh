#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fuzz.sh - build the libFuzzer targets (tests/fuzz) with clang in
# build-fuzz and run each for a bounded time, starting from the seed
# corpus in tests/fuzz/corpus/<target>. Fails on the first crash, leak,
# sanitizer report or broken invariant; the input that did it is kept in
# build-fuzz/artifacts/<target>/ and the log in build-fuzz/fuzz_<target>.log.
#   bash scripts/fuzz.sh                 every target, FUZZ_SECONDS (20) each
#                                        (tests/fuzz/fuzz_<target>.c)
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh jwt
# Inputs the fuzzer finds interesting accumulate in build-fuzz/corpus/,
# never in the seed directories.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-20}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then # every tests/fuzz/fuzz_<target>.c
    for f in tests/fuzz/fuzz_*.c; do
        t=${f#tests/fuzz/fuzz_}
        TARGETS+=("${t%.c}")
    done
fi

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (bash scripts/deps.sh --test)" >&2; exit 1; }
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DPC_FUZZ=ON -DPC_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]/#/fuzz_}" >/dev/null

for t in "${TARGETS[@]}"; do
    mkdir -p "$BUILD/corpus/$t" "$BUILD/artifacts/$t"
    log="$BUILD/fuzz_$t.log"
    if ! "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
            -max_len=8192 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t/" \
            "$BUILD/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        echo "fuzz_$t: FAILED (log: $log, input: $BUILD/artifacts/$t/)" >&2
        grep -E "ERROR|SUMMARY|==[0-9]+==|Test unit written" "$log" | head -20 >&2 || tail -30 "$log" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz_$t: ok, ${runs:-?} runs in ${SECS}s, $cov, corpus $(ls "$BUILD/corpus/$t" | wc -l) inputs"
done
