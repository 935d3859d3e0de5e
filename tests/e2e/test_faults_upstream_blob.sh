#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_faults_upstream_blob.sh - the upstream fault matrix, blob half (the
# faults that end quickly; stalls, endless bodies and redirect loops are in
# test_faults_upstream_slow.sh): every fault the fake upstream plays on blob
# GETs x {cold miss, cached and stale, 20 concurrent clients}, each followed
# by recovery (lib_faults.sh runs the table and says what each phase
# asserts). "overlong" sends more bytes than each Content-Length: every pull
# must still work, since no connection is reused after it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

# inline faults: every GET of a big layer (>= 64 KiB)
rule() { jq -n --argjson r "$1" '{rules: [{id: "big blob GETs", method: "GET", kind: "blob", min_size: 65536, reply: $r}]}'; }
rule '{"status": 429}' >"$WORK/b429.json" # Docker Hub's body
rule '{"status": 429, "body": "empty", "headers": {"Retry-After": "7"}}' >"$WORK/b429bare.json"
rule '{"status": 500, "body": "html_503"}' >"$WORK/b500.json"
rule '{"close_after_bytes": 5000}' >"$WORK/btrunc.json"

# NAME|SCENARIO|TARGET|COLD|STALE|COUNT|N|STALE_GETS (lib_faults.sh, fault_run)
TABLE=(
    "b429|$WORK/b429.json|blob|429:TOOMANYREQUESTS|ok|blob|1|0"
    "b429bare|$WORK/b429bare.json|blob|429:TOOMANYREQUESTS|ok|blob|1|0"
    "b500|$WORK/b500.json|blob|502:UNAVAILABLE|ok|blob|1|0"
    "breset|reset_mid_blob|blob|cut/502:UNAVAILABLE|ok|blob|1|0"
    "btrunc|$WORK/btrunc.json|blob|cut/502:UNAVAILABLE|ok|blob|1|0"
    "bwrong|wrong_bytes_blob|blob|cut/502:UNAVAILABLE|ok|blob|1|0"
    "blength|length_mismatch_blob|blob|502:UNAVAILABLE|ok|blob|1|0"
    "overlong|overlong_body|blob|ok|ok|blob|1|0"
)
names=()
for line in "${TABLE[@]}"; do names+=("${line%%|*}"); done
names+=(desync)
faults_init "${names[@]}"
for line in "${TABLE[@]}"; do fault_run "$line"; done

# Desync: the overlong bytes of one response arrive (300 ms late) while the
# next request is already on that kept-alive connection: a whole pull done
# back to back (manifest, config, both layers) must still get every answer
# right; no request may read the previous response's leftovers.
curl -sS -f "$F/_fake/content" >"$WORK/fake-content.json"
scenario overlong_body
fake_reset_log "$FP"
expect_eq ok "$(man_outcome desync-a "$WORK/m")" "overlong bodies: the manifest"
for d in $(jq -r '.config.digest, .layers[].digest' "$WORK/m"); do
    expect_eq ok "$(blob_outcome desync-a "$d" "$WORK/b")" "overlong bodies, right after the previous request: blob $d"
done
expect_eq 0 "$(jq -s '[.[] | select(.outcome != "overlong")] | length' "$(fake_reqlog "$FP")")" \
    "overlong bodies: requests the fake did not answer with its overlong reply"
healthy
echo "ok: a pull whose every response runs past its Content-Length works; no connection reused after one"

# The Content-Length that disagreed with the manifest was refused before the
# body, with a message that says so.
grep -q 'sent Content-Length [0-9]* for blob .*, which its manifest declares as [0-9]* bytes' "$WORK/pullcache.log" ||
    fail "the log does not say why the blob with the wrong Content-Length was refused"
echo "PASS: $TEST_NAME"
