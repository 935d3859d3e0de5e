#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_metrics_doc.sh - docs/METRICS.md, a live /metrics and the Grafana
# dashboard (deploy/grafana/pullcache.json) agree (tests/tools/metrics_doc.py):
# serve with an upstream (the fake Docker Hub), client pull limits on, pulls
# that miss, hit and run into the exhausted budget (so the error, budget and
# limit series exist); then every scraped family and label is documented, and
# every metric the dashboard queries is documented and scraped.
. "$(dirname "$0")/lib.sh"

clients_init
FP=5002
P=http://127.0.0.1:$PC_PORT
mkimages "$WORK/img" metrics-doc 1
fake_start ratelimited_hub "$FP" - - --repo "library/a=$WORK/img" --repo "library/b=$WORK/img"
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: hub
    url: http://127.0.0.1:$FP
    reserve: 2
YML
pc_start "$WORK/data" --config "$WORK/pullcache.yml" --limit-anonymous 1000/21600

"$PULLCACHE" loadgen --plain-http --json -n 1 -m 3 "127.0.0.1:$PC_PORT/hub/library/a:oci-single" \
    >"$WORK/lg1.json" 2>"$WORK/lg1.err" </dev/null || fail "loadgen: $(cat "$WORK/lg1.err")"
fake_ratelimit "$FP" 0
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $MANIFEST_ACCEPT" "$P/v2/hub/library/b/manifests/oci-single")
expect_eq 429 "$code" "a miss into the exhausted budget"
curl -sS -f "$P/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
python3 "$PC_SRC/tests/tools/metrics_doc.py" "$PC_SRC/docs/METRICS.md" "$WORK/metrics.txt" \
    "$PC_SRC/deploy/grafana/pullcache.json" || fail "docs/METRICS.md, /metrics and the dashboard disagree"
echo "ok: every scraped metric and label is documented; the dashboard's metrics are documented and scraped"
