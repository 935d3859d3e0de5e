# SPDX-License-Identifier: Apache-2.0
# Convenience wrapper around CMake: `make` builds build/pullcache,
# `make test` runs every test, `make asan` runs every test (unit and e2e)
# against an AddressSanitizer + UndefinedBehaviorSanitizer build (clang),
# `make test-mem` runs the unit tests and the e2e tests on the in-memory
# storage backends (serve --ephemeral), `make test-s3pg` the e2e tests on
# S3 (radosgw) + PostgreSQL,
# `make tsan` runs the unit tests and the concurrency e2e tests (coalescing,
# replicas) against a
# ThreadSanitizer build, `make clang` builds everything with clang and runs
# the unit tests, `make fuzz` runs the libFuzzer targets for FUZZ_SECONDS
# (20) each, `make deb` builds the Debian package (scripts/mkdeb.sh). A
# sanitizer report anywhere (a unit test, serve, a client verb an e2e test
# runs) fails the test (tests/e2e/lib.sh).
BUILD ?= build
JOBS ?= $(shell nproc)
# Tests mostly wait on servers, timeouts and clients: run twice as many as
# there are cores (each e2e test has its own network namespace).
TEST_JOBS ?= $(shell echo $$(( $$(nproc) * 2 )))

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS)

# ASAN_TESTS / TSAN_TESTS: ctest arguments choosing the tests
# (e.g. make asan ASAN_TESTS="-L unit").
ASAN_TESTS ?=
TSAN_TESTS ?= -R '^(unit\..*|e2e\.cache_coalesce|e2e\.cluster)$$'

# The sanitizer build uses clang (ASAN_CC): its warnings are errors too, so
# one build checks both what clang warns about and what ASan/UBSan find.
ASAN_CC ?= clang

asan:
	CC=$(ASAN_CC) cmake -S . -B build-asan -DPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(TEST_JOBS) $(ASAN_TESTS)

tsan:
	cmake -S . -B build-tsan -DPC_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) $(TSAN_TESTS)

# The unit tests, then the e2e tests with every test serve on the in-memory
# backends (PULLCACHE_TEST_STORAGE=mem: tests/e2e/lib.sh adds --ephemeral);
# what needs a data directory on disk is skipped (ctest shows it).
# MEM_TESTS: ctest arguments choosing the e2e tests (default: all of them).
MEM_TESTS ?= -L e2e

test-mem: all
	cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS) -L unit
	cd $(BUILD) && PULLCACHE_TEST_STORAGE=mem ctest --output-on-failure -j $(TEST_JOBS) $(MEM_TESTS)

# The e2e tests with pc_start's serve on S3 + PostgreSQL
# (PULLCACHE_TEST_STORAGE=s3pg): tests/tools/s3pg.sh starts one radosgw and
# one PostgreSQL in $(BUILD)/s3pg for the whole run (each test makes a bucket
# and a database of its own) and stops them on every exit path; what needs a
# data directory on disk is skipped. S3PG_TESTS: ctest arguments choosing
# the e2e tests (default: all of them).
S3PG_TESTS ?= -L e2e

test-s3pg: all
	bash tests/tools/s3pg.sh run $(BUILD)/s3pg sh -c "cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS) $(S3PG_TESTS)"

# The container image, offline, as an OCI layout in $(BUILD)/image
# (scripts/mkimage-oci.sh: FROM scratch, reproducible); push it with
# `pullcache copy oci:$(BUILD)/image:VERSION REGISTRY/pullcache:VERSION`.
image: all
	bash scripts/mkimage-oci.sh $(BUILD)/pullcache $(BUILD)/image

# The Debian package of the build: $(BUILD)/pullcache_VERSION_ARCH.deb
# (scripts/mkdeb.sh: binary, systemd unit, /etc/pullcache/config.yaml,
# man page, bash completion).
deb: all
	bash scripts/mkdeb.sh $(BUILD)

clang:
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-clang -j $(JOBS)
	cd build-clang && ctest --output-on-failure -L unit

fuzz:
	bash scripts/fuzz.sh

format:
	clang-format -i src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c

clean:
	rm -rf $(BUILD) build-asan build-tsan build-clang build-fuzz

.PHONY: all test test-mem test-s3pg asan tsan clang deb fuzz format clean image
