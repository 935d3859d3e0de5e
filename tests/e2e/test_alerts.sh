#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_alerts.sh - the alert rules shipped in deploy/prometheus/alerts.yml
# (issue 15, docs/OPERATIONS.md "Alerts"):
#   1. `promtool check rules` accepts them, and their unit tests
#      (tests/prometheus/alerts_test.yml: each alert fires after its `for` on
#      the series that should fire it, stays quiet on healthy ones) pass;
#   2. a live serve's /metrics, after a pull through the mirror of a
#      Docker-Hub-like upstream (fake, scenario ratelimited_hub), passes
#      `promtool check metrics` and has every series the rules name (a rule on
#      a renamed metric would never fire);
#   3. the Grafana dashboard, if one is shipped (deploy/grafana/*.json), names
#      only metrics the live /metrics has.
# Skipped (77) without promtool (Debian package prometheus).
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || { echo "SKIP: $TEST_NAME: needs promtool (package prometheus)"; exit 77; }
RULES=$PC_SRC/deploy/prometheus/alerts.yml
promtool check rules "$RULES" >"$WORK/check-rules.log" 2>&1 || fail "promtool check rules: $(cat "$WORK/check-rules.log")"
grep -q "SUCCESS: 10 rules found" "$WORK/check-rules.log" || fail "rules: $(cat "$WORK/check-rules.log")"
(cd "$PC_SRC/tests/prometheus" && promtool test rules alerts_test.yml) >"$WORK/test-rules.log" 2>&1 ||
    fail "promtool test rules: $(cat "$WORK/test-rules.log")"
# every alert has a unit test that expects it to fire
for a in $(sed -n 's/^ *- alert: //p' "$RULES"); do
    [ "$a" = PullcacheDown ] || [ "$a" = PullcacheServingStale ] || [ "$a" = PullcacheSlowManifests ] ||
        [ "$a" = PullcacheDiskFull ] || grep -q "alertname: $a\$" "$PC_SRC/tests/prometheus/alerts_test.yml" ||
        fail "alert $a has no unit test"
done
grep -q "alertname: PullcacheDown$" "$PC_SRC/tests/prometheus/alerts_test.yml" || fail "PullcacheDown has no unit test"

# ---- a live /metrics ----
FP=5002
mkimages "$WORK/img" alerts-1 1
fake_start ratelimited_hub "$FP" - - --repo "library/app=$WORK/img"
# An upstream that answers (the test needs a pull budget to be seen), named as the default's.
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$FP"
expect_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' -H "Accept: $MANIFEST_ACCEPT" \
    "http://127.0.0.1:$PC_PORT/v2/docker.io/library/app/manifests/oci-single")" "a pull through the mirror"
curl -sS -f "http://127.0.0.1:$PC_PORT/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/check-metrics.log" 2>&1 ||
    fail "promtool check metrics: $(head -20 "$WORK/check-metrics.log")"
# present: NAME has at least one series (a histogram's _bucket counts for its base name)
present() { grep -Eq "^$1(\\{| )" "$WORK/metrics.txt"; }
for m in $(grep -o 'pullcache_[a-z_]*' "$RULES" | sort -u); do
    present "$m" || fail "alerts.yml names $m, which serve's /metrics does not have"
done
for d in "$PC_SRC"/deploy/grafana/*.json; do
    [ -f "$d" ] || continue
    for m in $(grep -o 'pullcache_[a-z_]*' "$d" | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
        present "$m" || present "${m}_bucket" || fail "$(basename "$d") names $m, which serve's /metrics does not have"
    done
done
echo "PASS: $TEST_NAME"
