#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_health.sh - /healthz and /readyz (issue 11): answered without
# authentication even when /v2/ needs it; /readyz is 503 naming the storage
# while the data directory cannot take a write (full), 200 again once it can; an
# upstream that cannot be reached is reported, and the replica stays ready;
# serve --admin opens /metrics and the status to that user; the token key is
# kept in the data directory, so a token outlives a restart.
. "$(dirname "$0")/lib.sh"

DATA=$WORK/data
PCR=127.0.0.1:$PC_PORT
# The data directory on a small tmpfs of this test's mount namespace, so it can be filled.
mkdir -p "$DATA" && mount -t tmpfs -o size=4m pc-e2e-health "$DATA" || fail "cannot mount a tmpfs on $DATA"
# The upstream is a port nobody listens on (the test is about its failure).
pc_start "$DATA" --upstream "docker.io=http://127.0.0.1:5999"

# The data directory existed (the tmpfs) without a meta store: serve says so, by its real path.
if pc_on_disk; then
    grep -q "warn data directory $DATA had no meta.db: starting empty" "$WORK/pullcache.log" ||
        fail "no warning about an existing data directory without meta.db"
else
    echo "skip: the meta.db warning (no meta.db under in-memory or S3 + PostgreSQL storage)"
fi
r=$(http_get "http://$PCR/healthz" "$WORK/h")
expect_eq "200 0" "${r% *}" "GET /healthz"
expect_eq alive "$(jq -r .status "$WORK/h")" "/healthz status"
expect_eq 200 "$(reg_status HEAD /healthz)" "HEAD /healthz"
r=$(http_get "http://$PCR/readyz" "$WORK/r")
expect_eq "200 0" "${r% *}" "GET /readyz"
expect_eq 'true ok ok unknown' "$(jq -r '[.ready, .checks.storage.status, .checks.metastore.status, .upstreams[0].state] | join(" ")' "$WORK/r")" "/readyz before any upstream contact"
if pc_on_disk; then
    expect_eq "" "$(find "$DATA/uploads" -type f)" "/readyz leaves nothing in the upload staging area"
fi

# Every cache series exists from the start, at zero (alerts see a value).
curl -sS "http://$PCR/metrics" >"$WORK/m0.txt"
for k in manifest blob tags referrers; do
    grep -qx "pullcache_cache_stale_total{upstream=\"docker.io\",kind=\"$k\"} 0" "$WORK/m0.txt" ||
        fail "/metrics at start lacks pullcache_cache_stale_total{kind=\"$k\"} 0"
done
grep -qx 'pullcache_fetches_in_flight{upstream="docker.io"} 0' "$WORK/m0.txt" || fail "/metrics at start lacks fetches_in_flight 0"
grep -qx "pullcache_build_info{version=\"$("$PULLCACHE" --version | awk '{print $2}')\"} 1" "$WORK/m0.txt" ||
    fail "/metrics lacks pullcache_build_info with the version: $(grep build_info "$WORK/m0.txt")"
# answer times: a histogram per kind, there from the start; gauges of the store at 0
for k in manifest blob upload tags referrers token; do
    grep -qx "pullcache_http_request_duration_seconds_count{kind=\"$k\"} 0" "$WORK/m0.txt" ||
        fail "/metrics at start lacks the $k latency histogram at 0"
done
grep -q '^# TYPE pullcache_http_request_duration_seconds histogram$' "$WORK/m0.txt" || fail "no histogram TYPE line"
for g in pullcache_store_blobs pullcache_cache_mirrored_bytes pullcache_cache_max_size_bytes pullcache_cache_evictions_total; do
    grep -qx "$g 0" "$WORK/m0.txt" || fail "/metrics at start lacks $g 0"
done
# requests are counted by kind as well as method and status
[ "$(pc_metric pullcache_http_requests_total 'kind="probe"' 'method="GET"' 'status="200"')" -ge 2 ] ||
    fail "/metrics: no probe requests counted by kind"
curl -sS -o /dev/null "http://$PCR/v2/"
curl -sS "http://$PCR/metrics" >"$WORK/m1.txt"
[ "$(sed -n 's/^pullcache_http_request_duration_seconds_count{kind="base"} //p' "$WORK/m1.txt")" -ge 1 ] ||
    fail "GET /v2/ not in the base latency histogram"
# buckets are cumulative and +Inf equals _count
awk '/^pullcache_http_request_duration_seconds_bucket\{kind="base"/ { v = $2 + 0; if (v < last) bad = 1; last = v; inf = v }
     /^pullcache_http_request_duration_seconds_count\{kind="base"/ { c = $2 + 0 }
     END { exit !(bad == 0 && inf == c && c >= 1) }' "$WORK/m1.txt" ||
    fail "the base latency histogram is not cumulative or its +Inf bucket is not its count: $(grep 'duration_seconds.*base' "$WORK/m1.txt")"
# An unreachable upstream: a miss fails, the replica stays ready and says why.
r=$(http_get "http://$PCR/v2/docker.io/library/x/manifests/1" "$WORK/e")
case ${r%% *} in 502 | 503 | 504) ;; *) fail "a miss with the upstream down: want 502/503/504, got ${r%% *}" ;; esac
r=$(http_get "http://$PCR/readyz" "$WORK/r")
expect_eq "200 0" "${r% *}" "GET /readyz with the upstream down"
expect_eq 'failing refused' "$(jq -r '.upstreams[0] | [.state, .last_error] | join(" ")' "$WORK/r")" "/readyz: the upstream's trouble"
[ "$(jq -r '.upstreams[0].failures' "$WORK/r")" -ge 1 ] || fail "/readyz: no failure counted"

# The data directory full (in-memory or S3 + PostgreSQL storage does not live there).
if pc_on_disk; then
    # the data directory's file system in /metrics (what a disk alert watches)
    dsize=$(pc_metric pullcache_data_filesystem_size_bytes)
    dfree=$(pc_metric pullcache_data_filesystem_free_bytes)
    expect_eq 4194304 "$dsize" "pullcache_data_filesystem_size_bytes of the 4 MiB tmpfs"
    [ "$dfree" -gt 0 ] && [ "$dfree" -le "$dsize" ] || fail "pullcache_data_filesystem_free_bytes $dfree of $dsize"
    dd if=/dev/zero of="$DATA/fill" bs=64k 2>/dev/null || true
    expect_eq 0 "$(pc_metric pullcache_data_filesystem_free_bytes)" "free bytes with the data directory full"
    r=$(http_get "http://$PCR/readyz" "$WORK/r")
    expect_eq 503 "${r%% *}" "GET /readyz with full storage"
    expect_eq 'false failed' "$(jq -r '[.ready, .checks.storage.status] | join(" ")' "$WORK/r")" "/readyz: storage failed"
    [ -n "$(jq -r .checks.storage.error "$WORK/r")" ] || fail "/readyz: the storage failure has no error text"
    expect_eq 200 "$(reg_status GET /healthz)" "/healthz while not ready"
    grep -q 'warn not ready: storage' "$WORK/pullcache.log" || fail "no log line for not ready"
    rm -f "$DATA/fill"
    expect_eq 200 "$(reg_status GET /readyz)" "GET /readyz once storage is writable again"
else
    echo "skip: /readyz with the data directory full (in-memory or S3 + PostgreSQL storage does not live there)"
fi

# With users: /v2/ needs credentials, the probes do not.
pc_stop
htpasswd -cbB "$WORK/htpasswd" alice secret 2>/dev/null
pc_start "$DATA" --upstream "docker.io=http://127.0.0.1:5999" --htpasswd "$WORK/htpasswd"
expect_eq 401 "$(reg_status GET /v2/)" "GET /v2/ anonymous with users"
expect_eq 200 "$(reg_status GET /healthz)" "GET /healthz anonymous with users"
expect_eq 200 "$(reg_status GET /readyz)" "GET /readyz anonymous with users"
expect_eq 200 "$(reg_status GET /readyz -u alice:wrong)" "GET /readyz with wrong credentials (ignored)"
expect_eq 405 "$(reg_status POST /readyz)" "POST /readyz"
# Without admins nobody reads /metrics; serve --admin names them without a config file.
expect_eq 403 "$(reg_status GET /metrics -u alice:secret)" "/metrics for alice, no admins"
pc_stop
pc_start "$DATA" --upstream "docker.io=http://127.0.0.1:5999" --htpasswd "$WORK/htpasswd" --admin alice
expect_eq 200 "$(reg_status GET /metrics -u alice:secret)" "/metrics for alice with --admin alice"
expect_eq 200 "$(reg_status GET /_pullcache/status -u alice:secret)" "status for alice with --admin alice"
expect_eq 401 "$(reg_status GET /metrics)" "/metrics anonymous with --admin alice"
# The token signing key is kept in the data directory: a token outlives a restart.
tok=$(curl -sS -u alice:secret "http://$PCR/token?service=pullcache&scope=repository:team/x:pull" | jq -r .token)
[ -n "$tok" ] && [ "$tok" != null ] || fail "no token for alice"
expect_eq 200 "$(reg_status GET /v2/ -H "Authorization: Bearer $tok")" "the token before a restart"
expect_eq 600 "$(stat -c %a "$DATA/token.key")" "mode of the kept token key"
pc_stop
pc_start "$DATA" --upstream "docker.io=http://127.0.0.1:5999" --htpasswd "$WORK/htpasswd" --admin alice
expect_eq 200 "$(reg_status GET /v2/ -H "Authorization: Bearer $tok")" "the same token after a restart"
pc_stop
umount "$DATA"
echo "PASS: $TEST_NAME"
