#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_ratelimit_demo.sh - runs examples/ratelimit-demo.sh (issue #4 item 6),
# which asserts its own two outcomes: (a) direct pulls fail at pull 101 with
# 429 TOOMANYREQUESTS while `pullcache ratelimit` shows the budget reach 0;
# (b) 1000 pulls through a pull-through cache all succeed and cost the hub
# exactly one pull. Here we also check the printed lines that say so, so a
# demo that silently stopped asserting would still be caught.
. "$(dirname "$0")/lib.sh"

if [ "${REGISTRY:-pullcache}" = distribution ]; then
    echo "test_ratelimit_demo: pullcache only"
    exit 0
fi

out=$WORK/demo.out
rc=0
PULLCACHE=$PULLCACHE DEMO_NETNS=0 bash "$PC_SRC/examples/ratelimit-demo.sh" >"$out" 2>&1 || rc=$?
cat "$out"
[ "$rc" = 0 ] || fail "the demo exited $rc"
grep -q '^pull 100 ok    ratelimit: 0 left$' "$out" || fail "no 'pull 100 ok, 0 left' line"
grep -q '^pull 101 FAILED: .*429 TOOMANYREQUESTS: You have reached your pull rate limit' "$out" ||
    fail "pull 101 did not fail with the 429 body"
grep -q '^pulls: 1000 ok, 0 failed of 1000;' "$out" || fail "not 1000 of 1000 through the cache"
grep -q "budget went 100 -> 99 (one pull)" "$out" || fail "the hub's budget did not drop by exactly one"
echo "test_ratelimit_demo: ok"
