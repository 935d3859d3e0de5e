# SPDX-License-Identifier: Apache-2.0
# Convenience wrapper around CMake: `make` builds build/pullcache,
# `make test` runs every test, `make asan` builds and tests with sanitizers,
# `make clang` builds everything with clang and runs the unit tests,
# `make fuzz` runs the libFuzzer targets for FUZZ_SECONDS (20) each.
BUILD ?= build
JOBS ?= $(shell nproc)

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan:
	cmake -S . -B build-asan -DPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -L unit

clang:
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-clang -j $(JOBS)
	cd build-clang && ctest --output-on-failure -L unit

fuzz:
	bash scripts/fuzz.sh

format:
	clang-format -i src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c

clean:
	rm -rf $(BUILD) build-asan build-clang build-fuzz

.PHONY: all test asan clang fuzz format clean
