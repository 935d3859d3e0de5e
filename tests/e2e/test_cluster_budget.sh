#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cluster_budget.sh - replicas on one set of stores judge an upstream's
# pull budget by what any of them saw (issue 14): two serve processes on one
# store (a data directory; under s3pg a bucket and a database) mirror a Docker-Hub-like fake (ratelimited_hub: every
# manifest GET takes one pull, its answers carry ratelimit headers) with
# `reserve: 5`:
#   - replica A pulls; replica B, which has not talked to the upstream,
#     reports the same remaining budget (read from the shared note);
#   - the budget drops below the reserve through A; B then serves an
#     expired cached tag as it is, without a revalidation HEAD of its own
#     (it holds back for the fleet, not for its own count).
. "$(dirname "$0")/lib.sh"

# on disk the replicas share one data directory, under s3pg one bucket and
# one database; memory cannot be shared
pc_needs_persistent "replicas sharing one store"
FP=5002
PA=$PC_PORT
PB=5010
DATA=$WORK/data
mkimages "$WORK/img" clbudget 1
fake_start ratelimited_hub "$FP" - - --repo library/a="$WORK/img" --repo library/b="$WORK/img"
# reserve and tag_ttl are the subject: hold back below 5, revalidate after 1 s
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: hub
    url: http://127.0.0.1:$FP
    tag_ttl: 1
    reserve: 5
YML
pc_start "$DATA" --config "$WORK/pullcache.yml"
mapfile -t bargs < <(pc_storage_args --config "$WORK/pullcache.yml")
"$PULLCACHE" serve --listen "127.0.0.1:$PB" --data "$DATA" "${bargs[@]}" >>"$WORK/replica-b.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PB/v2/" "$!"
HUB='upstream="hub"'
metric() { # PORT NAME LABELS...: the sum of NAME's series at replica PORT
    local port=$1 name=$2
    shift 2
    curl -sS -f "http://127.0.0.1:$port/metrics" | awk -v n="$name" -v want="$*" '
        { split($1, a, "{") } a[1] == n {
            ok = 1; k = split(want, w, " ")
            for (i = 1; i <= k; i++) if (index($1, w[i]) == 0) ok = 0
            if (ok) s += $2 }
        END { print s + 0 }'
}
mget() { curl -sS -f -o /dev/null -H "Accept: $MANIFEST_ACCEPT" "http://127.0.0.1:$1/v2/hub/library/$2/manifests/$3"; }

echo "== what A saw, B knows"
mget "$PA" a oci-single || fail "GET via A"
expect_eq 99 "$(metric "$PA" pullcache_upstream_ratelimit_remaining "$HUB")" "A: remaining"
before=$(fake_count "$FP" "" "")
# B's budget is read from the note at most once a second
sleep 1.2
expect_eq 99 "$(metric "$PB" pullcache_upstream_ratelimit_remaining "$HUB")" "B: remaining (A's observation)"
expect_eq 100 "$(metric "$PB" pullcache_upstream_ratelimit_limit "$HUB")" "B: limit"
expect_eq "$before" "$(fake_count "$FP" "" "")" "upstream requests while B reported the budget"

echo "== below the reserve through A: B holds back"
# B caches b:oci-single itself now, while the budget is fine
mget "$PB" b oci-single || fail "GET b via B"
curl -sS -f -o /dev/null -X POST --data '{"remaining": 3}' "http://127.0.0.1:$FP/_fake/ratelimit" || fail "set remaining"
mget "$PA" a docker-single || fail "GET a:docker-single via A"
expect_eq 1 "$(metric "$PA" pullcache_upstream_ratelimit_state "$HUB" 'state="reserve"')" "A: state reserve"
sleep 1.5 # past tag_ttl of b:oci-single, and B's next look at the note
fake_reset_log "$FP"
mget "$PB" b oci-single || fail "GET b:oci-single via B in reserve"
expect_eq 0 "$(fake_count "$FP" "" "")" "upstream requests for B's expired tag while the fleet is in reserve"
expect_eq 1 "$(metric "$PB" pullcache_upstream_ratelimit_state "$HUB" 'state="reserve"')" "B: state reserve"
[ "$(metric "$PB" pullcache_budget_skipped_revalidations_total "$HUB")" -ge 1 ] ||
    fail "B did not count a skipped revalidation"
echo "ok: the budget A saw held B back"
