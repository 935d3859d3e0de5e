#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# store_blob_s3.sh - ctest unit.store_blob_s3: the blob backend suite
# (test_store_blob) on its s3 kinds only (path-style and virtual-host
# addressing), against a radosgw started here in a temp dir on a free
# loopback port (tests/tools/rgw.sh) and stopped on every exit. Exit 77
# (skipped) only when radosgw is not installed.
#   store_blob_s3.sh TEST_BINARY SOURCE_DIR
set -u
bin=$1
src=$2
for c in radosgw ceph-mon ceph-osd; do
    if ! command -v "$c" >/dev/null; then
        echo "$c is not installed (scripts/deps.sh --test): skipped"
        exit 77
    fi
done
dir=$(mktemp -d /tmp/pc-rgw-XXXXXX)
cleanup() {
    bash "$src/tests/tools/rgw.sh" stop "$dir/rgw" || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if ! bash "$src/tests/tools/rgw.sh" start "$dir/rgw" "$port"; then
    echo "radosgw did not start; its logs:" >&2
    tail -n 20 "$dir"/rgw/log/*.log >&2 2>/dev/null || true
    exit 1
fi
PULLCACHE_TEST_S3_ENV=$dir/rgw/env PULLCACHE_TEST_BLOB_KINDS=s3,s3-vhost "$bin"
