#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cluster_limits.sh - the Docker-Hub-style pull limit for our own
# clients holds across replicas (issue 14): two serve processes on one store
# (one data directory; under PULLCACHE_TEST_STORAGE=s3pg one bucket and one
# PostgreSQL database), each with --advertise (so they count together in the meta
# store) and --limit-anonymous 5/3600: five manifest GETs alternating between
# the replicas are allowed, the sixth is refused with 429 TOOMANYREQUESTS on
# either replica, HEADs stay free, and each replica's remaining budget
# (RateLimit-Remaining) counts the other's pulls.
. "$(dirname "$0")/lib.sh"

# on disk the replicas share one data directory, under s3pg one bucket and
# one database; memory cannot be shared
pc_needs_persistent "replicas sharing one store"
clients_init
PA=$PC_PORT
PB=5010
DATA=$WORK/data
mkimages "$WORK/img" cllimits 1
# --advertise: replicas (the subject); --limit-anonymous: the limit under test
pc_start "$DATA" --advertise "http://127.0.0.1:$PA" --limit-anonymous 5/3600
mapfile -t bargs < <(pc_storage_args --advertise "http://127.0.0.1:$PB" --limit-anonymous 5/3600)
"$PULLCACHE" serve --listen "127.0.0.1:$PB" --data "$DATA" "${bargs[@]}" >>"$WORK/replica-b.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PB/v2/" "$!"
push_image "$WORK/img" oci-single team/app:v1
grep -q "counted in the .* meta store" "$WORK/pullcache.log" || fail "serve did not say the limit is shared"

get() { # PORT METHOD: status and RateLimit-Remaining of a manifest request
    local m=(-X GET)
    [ "$2" = HEAD ] && m=(--head)
    curl -sS -o /dev/null -D "$WORK/h" -w '%{http_code}' "${m[@]}" -H "Accept: $MANIFEST_ACCEPT" \
        "http://127.0.0.1:$1/v2/team/app/manifests/v1" >"$WORK/code" || true
    echo "$(cat "$WORK/code") $(tr -d '\r' <"$WORK/h" | awk -F': ' 'tolower($1) == "ratelimit-remaining" { split($2, a, ";"); print a[1] }')"
}
expect_eq "200 5" "$(get "$PA" HEAD)" "HEAD on A before any pull (free, full budget)"
for i in 1 2 3 4 5; do
    p=$([ $((i % 2)) = 1 ] && echo "$PA" || echo "$PB")
    expect_eq "200 $((5 - i))" "$(get "$p" GET)" "GET $i via $([ "$p" = "$PA" ] && echo A || echo B)"
done
expect_eq 429 "$(get "$PA" GET | cut -d' ' -f1)" "the sixth GET via A"
expect_eq 429 "$(get "$PB" GET | cut -d' ' -f1)" "the sixth GET via B"
expect_eq "200 0" "$(get "$PB" HEAD)" "HEAD via B once the budget is spent"
echo "ok: five pulls over two replicas, the sixth refused on both"
