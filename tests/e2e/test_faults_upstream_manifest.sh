#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_faults_upstream_manifest.sh - the upstream fault matrix, manifest
# half (the faults that end quickly; stalls, a hanging token realm and
# redirect loops are in test_faults_upstream_slow.sh): every fault the fake
# upstream plays on manifest requests x {cold miss, cached and stale, 20
# concurrent clients}, each followed by recovery (lib_faults.sh runs the
# table and says what each phase asserts). A miss surfaces the fault as a
# registry error (never a 500, never bytes that are no manifest); a cached
# tag past its tag_ttl is served from the cache with a Warning; 20 clients
# share one upstream exchange.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

# inline faults: every manifest HEAD and GET
rule() { jq -n --argjson r "$1" '{rules: [{id: "manifest requests", method: ["GET", "HEAD"], kind: "manifest", reply: $r}]}'; }
rule '{"status": 429, "body": "empty", "headers": {"Retry-After": "7"}}' >"$WORK/m429bare.json"
rule '{"drop": true}' >"$WORK/mdrop.json"

# NAME|SCENARIO|TARGET|COLD|STALE|COUNT|N|STALE_GETS (lib_faults.sh, fault_run)
# (dockerhub_429 limits GETs only: the HEAD that revalidates a cached tag
# still answers, so the stale tag is confirmed, not served stale; a dropped
# request on a reused connection may be sent again once, by libcurl itself)
TABLE=(
    "m429|dockerhub_429|manifest|429:TOOMANYREQUESTS|ok|manifest|1|0"
    "m429bare|$WORK/m429bare.json|manifest|429:TOOMANYREQUESTS|stale|manifest|1|0"
    "m503|upstream_503|manifest|502:UNAVAILABLE|stale|manifest|1|0"
    "mdrop|$WORK/mdrop.json|manifest|502:UNAVAILABLE|stale|manifest|1/2|0"
    "mnotjson|notjson_manifest|manifest|502:UNAVAILABLE|stale|manifest|1|1"
)
names=()
for line in "${TABLE[@]}"; do names+=("${line%%|*}"); done
faults_init "${names[@]}"
for line in "${TABLE[@]}"; do fault_run "$line"; done

# The not-JSON answers were refused with a clear message, counted as the
# upstream's protocol errors, and the bytes were never stored.
junk=$(printf '%s' "this is not a manifest" | sha256sum | cut -d' ' -f1)
not_stored "sha256:$junk" "the not-JSON manifest"
grep -q 'manifest .* refused: manifest is not valid JSON' "$WORK/pullcache.log" ||
    fail "the log does not say why the not-JSON manifest was refused"
[ "$(pc_metric pullcache_upstream_errors_total 'upstream="up"' 'class="protocol"')" -gt 0 ] ||
    fail "/metrics: no upstream protocol errors counted for the refused manifests"
echo "PASS: $TEST_NAME"
