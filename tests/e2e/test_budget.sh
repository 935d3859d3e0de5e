#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_budget.sh - budget tracking in `serve` against the fake upstream's
# Docker-Hub-like ratelimit (scenario ratelimited_hub: every manifest GET
# takes one pull; POST /_fake/ratelimit sets what is left):
#   status      GET/HEAD /_pullcache/status: version, upstreams with their
#               credential identity, tag_ttl, reserve and the budget last seen;
#               the same numbers as gauges in /metrics; per upstream/credential
#   reserve     below `reserve: 5` an expired cached tag is served as it is
#               (no Warning) with no manifest HEAD or GET upstream, while a
#               miss is still fetched; when a fetch reports more than the
#               reserve again, revalidation (one HEAD) resumes
#   exhausted   after a 429, cached tags are served without upstream contact;
#               misses still ask unless the 429 carried a Retry-After: then
#               they get 429 TOOMANYREQUESTS at once, upstream untouched;
#               an upstream without a reserve (0: never hold back) still
#               revalidates with a HEAD
#   log         one line on entering reserve, on exhaustion, on recovery
#   secrets     neither the password nor the token appears in the status
#               document, /metrics or the log; a URL with user information
#               is refused at start-up without being repeated
. "$(dirname "$0")/lib.sh"

clients_init
FP=5002
P=http://127.0.0.1:$PC_PORT
DATA=$WORK/data
mkimages "$WORK/img" budget-1 1
repos=()
for r in a b c d e f g; do repos+=(--repo "library/$r=$WORK/img"); done
fake_start ratelimited_hub "$FP" - - "${repos[@]}"

export PC_E2E_BUDGET_PASSWORD=budget-password-5f1c0e PC_E2E_BUDGET_TOKEN=budget-token-a93d27
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: hub
    url: http://127.0.0.1:$FP
    tag_ttl: 1
    reserve: 5
  - name: auth
    url: http://127.0.0.1:$FP
    username: fakeuser
    password_env: PC_E2E_BUDGET_PASSWORD
    tag_ttl: 1
  - name: tok
    url: http://127.0.0.1:$FP
    token_env: PC_E2E_BUDGET_TOKEN
YML
pc_start "$DATA" --config "$WORK/pullcache.yml"

hdr() { reg_header "$1" "$2"; }
mget() { http_get "$P$1" "$2" -H "Accept: $MANIFEST_ACCEPT" --max-time 30; }
ttl_pass() { sleep 1.5; } # tag_ttl of "hub" is 1 s
# expect_manifest PATH TAG: 200 with the upstream's bytes and no Warning header.
expect_manifest() {
    local r want w
    want=$(img_digest "$WORK/img" "$2")
    r=$(mget "$1" "$WORK/m")
    expect_eq "200 0" "${r% *}" "GET $1 (status, curl rc)"
    expect_eq "$want" "$(sha "$WORK/m")" "GET $1: body digest"
    w=$(hdr "$WORK/m.h" Warning)
    [ -z "$w" ] || fail "GET $1: unexpected Warning header '$w'"
}
# expect_429 PATH: the client gets 429 TOOMANYREQUESTS; prints Retry-After.
expect_429() {
    local r
    r=$(mget "$1" "$WORK/e")
    expect_eq "429 0" "${r% *}" "GET $1 (status, curl rc)"
    expect_eq TOOMANYREQUESTS "$(err_code "$WORK/e")" "GET $1: error code"
    hdr "$WORK/e.h" Retry-After
}
# status: fetch the status document into $WORK/status.json.
status() { curl -sS -f "$P/_pullcache/status" >"$WORK/status.json" || fail "GET /_pullcache/status"; }
# sj JQ: a value of the status document just fetched.
sj() { jq -c "$1" "$WORK/status.json"; }
# budget UPSTREAM FIELD: a field of an upstream's ratelimit object.
budget() { jq -c --arg n "$1" ".upstreams[] | select(.name == \$n) | .ratelimit.$2" "$WORK/status.json"; }
LOG=$WORK/pullcache.log
log_has() { grep -qF "$1" "$LOG" || fail "pullcache's log has no line with '$1'"; }
log_count() { grep -cF "$1" "$LOG" || true; }
HUB='upstream="hub",credential="anonymous"'

# ---- the status document before any pull ------------------------------------------
echo "== status before any pull"
code=$(curl -sS -I -o /dev/null -D "$WORK/h" -w '%{http_code}' "$P/_pullcache/status")
expect_eq 200 "$code" "HEAD /_pullcache/status"
expect_eq application/json "$(hdr "$WORK/h" Content-Type)" "status Content-Type"
expect_eq 405 "$(reg_status POST /_pullcache/status)" "POST /_pullcache/status"
expect_eq 404 "$(reg_status GET /_pullcache/status/x)" "GET /_pullcache/status/x"
status
expect_eq "\"$("$PULLCACHE" --version | cut -d' ' -f2)\"" "$(sj .version)" "status: version"
sj '.uptime_seconds >= 0 and (.now | type) == "number"' | grep -qx true || fail "status: uptime_seconds/now"
expect_eq '["hub","auth","tok"]' "$(sj '[.upstreams[].name]')" "status: upstream names"
expect_eq '["anonymous","fakeuser","token"]' "$(sj '[.upstreams[].credential]')" "status: credentials"
expect_eq "{\"name\":\"hub\",\"url\":\"http://127.0.0.1:$FP\",\"credential\":\"anonymous\",\"tag_ttl\":1,\"reserve\":5,\"ratelimit\":null}" \
    "$(sj '.upstreams[0]')" "status: hub before any pull"
expect_eq '{"default_upstream":"none","local_prefixes":[],"max_size":0}' "$(sj .cache)" "status: cache"
expect_eq 5 "$(pc_metric pullcache_upstream_ratelimit_reserve "$HUB")" "/metrics: reserve"
expect_eq 1 "$(pc_metric pullcache_upstream_ratelimit_state "$HUB" 'state="unknown"')" "/metrics: state unknown"
expect_eq 0 "$(pc_metric pullcache_upstream_ratelimit_limit "$HUB")" "/metrics: no limit series yet"
echo "ok: status document before any pull"

# ---- what the upstream sent, per upstream and credential ---------------------------------
echo "== budget seen after pulls"
expect_manifest /v2/hub/library/a/manifests/oci-single oci-single
status
expect_eq 100 "$(budget hub limit)" "status: hub limit"
expect_eq 99 "$(budget hub remaining)" "status: hub remaining"
expect_eq 21600 "$(budget hub window)" "status: hub window"
expect_eq '"127.0.0.1"' "$(budget hub source)" "status: hub source"
expect_eq '"ok"' "$(budget hub state)" "status: hub state"
expect_eq null "$(budget hub retry_at)" "status: hub retry_at"
sj '.upstreams[0].ratelimit.seen_at as $s | $s > 0 and $s <= .now' | grep -qx true || fail "status: hub seen_at"
expect_eq 100 "$(pc_metric pullcache_upstream_ratelimit_limit "$HUB")" "/metrics: hub limit"
expect_eq 99 "$(pc_metric pullcache_upstream_ratelimit_remaining "$HUB")" "/metrics: hub remaining"
expect_eq 21600 "$(pc_metric pullcache_upstream_ratelimit_window_seconds "$HUB")" "/metrics: hub window"
expect_eq 1 "$(pc_metric pullcache_upstream_ratelimit_state "$HUB" 'state="ok"')" "/metrics: hub state ok"
expect_eq 0 "$(pc_metric pullcache_upstream_ratelimit_state "$HUB" 'state="unknown"')" "/metrics: hub not unknown"
# The credentialed upstream has a budget of its own (the fake counts both against one IP).
expect_manifest /v2/auth/library/a/manifests/oci-single oci-single
status
expect_eq 98 "$(budget auth remaining)" "status: auth remaining"
expect_eq 99 "$(budget hub remaining)" "status: hub remaining after a pull through auth"
expect_eq null "$(budget tok remaining)" "status: tok (no pull yet)"
expect_eq 98 "$(pc_metric pullcache_upstream_ratelimit_remaining 'upstream="auth",credential="fakeuser"')" "/metrics: auth remaining"
echo "ok: limit, remaining, window and source as the upstream sent them"

# ---- below the reserve --------------------------------------------------------------------
echo "== reserve"
fake_ratelimit "$FP" 3
expect_manifest /v2/hub/library/b/manifests/oci-single oci-single # a miss: fetched, 2 left
status
expect_eq 2 "$(budget hub remaining)" "status: remaining after the fetch"
expect_eq '"reserve"' "$(budget hub state)" "status: state below the reserve"
expect_eq 1 "$(pc_metric pullcache_upstream_ratelimit_state "$HUB" 'state="reserve"')" "/metrics: state reserve"
log_has "pull budget of upstream hub (credential anonymous) is below its reserve of 5: remaining 2, limit 100, window 21600s"
ttl_pass
fake_reset_log "$FP"
expect_manifest /v2/hub/library/a/manifests/oci-single oci-single
expect_eq 200 "$(reg_status HEAD /v2/hub/library/a/manifests/oci-single -H "Accept: $MANIFEST_ACCEPT")" "HEAD of the expired tag"
expect_eq 0 "$(fake_count "$FP" "" manifest)" "below the reserve, expired tag: upstream manifest requests"
[ "$(pc_metric pullcache_budget_skipped_revalidations_total 'upstream="hub"')" -ge 2 ] ||
    fail "/metrics: skipped revalidations not counted"
# Images nobody has yet still go upstream.
expect_manifest /v2/hub/library/c/manifests/oci-single oci-single
expect_eq 1 "$(fake_count "$FP" GET manifest '.name == "library/c"')" "below the reserve, a miss: upstream GETs"
status
expect_eq 1 "$(budget hub remaining)" "status: remaining after the second fetch"
expect_eq '"reserve"' "$(budget hub state)" "status: still below the reserve"
# A fetch that reports more than the reserve again: revalidation resumes.
fake_ratelimit "$FP" 50
expect_manifest /v2/hub/library/d/manifests/oci-single oci-single
status
expect_eq 49 "$(budget hub remaining)" "status: remaining after the refill"
expect_eq '"ok"' "$(budget hub state)" "status: state after the refill"
log_has "pull budget of upstream hub (credential anonymous) is ok again: remaining 49, limit 100, window 21600s"
ttl_pass
fake_reset_log "$FP"
expect_manifest /v2/hub/library/a/manifests/oci-single oci-single
expect_eq 1 "$(fake_count "$FP" HEAD manifest)" "budget ok again, expired tag: upstream HEADs"
expect_eq 0 "$(fake_count "$FP" GET manifest)" "budget ok again, expired tag: upstream GETs"
echo "ok: below the reserve cached tags are served as they are, misses fetched; then revalidated again"

# ---- exhausted -------------------------------------------------------------------------------
echo "== exhausted"
fake_ratelimit "$FP" 0
ra=$(expect_429 /v2/hub/library/e/manifests/oci-single)
expect_eq "" "$ra" "the fake's 429 carries no Retry-After"
status
expect_eq '"exhausted"' "$(budget hub state)" "status: state after a 429"
expect_eq 0 "$(budget hub remaining)" "status: remaining after a 429"
sj '.upstreams[0].ratelimit.last_429_at | type == "number"' | grep -qx true || fail "status: last_429_at"
expect_eq 1 "$(pc_metric pullcache_upstream_ratelimit_state "$HUB" 'state="exhausted"')" "/metrics: state exhausted"
log_has "pull budget of upstream hub (credential anonymous) is exhausted: remaining 0, limit 100, window 21600s (429 from upstream)"
ttl_pass
fake_reset_log "$FP"
expect_manifest /v2/hub/library/a/manifests/oci-single oci-single
expect_eq 0 "$(fake_count "$FP" "" manifest)" "exhausted, expired tag: upstream manifest requests"
# Without a Retry-After a miss still asks (and may find the budget back).
expect_429 /v2/hub/library/e/manifests/oci-single >/dev/null
expect_eq 1 "$(fake_count "$FP" GET manifest)" "exhausted without Retry-After, a miss: upstream GETs"
# Without a reserve nothing is held back: the expired tag is revalidated (a HEAD is free).
expect_429 /v2/auth/library/e/manifests/oci-single >/dev/null
status
expect_eq '"exhausted"' "$(budget auth state)" "status: auth state after a 429"
fake_reset_log "$FP"
expect_manifest /v2/auth/library/a/manifests/oci-single oci-single
expect_eq 1 "$(fake_count "$FP" HEAD manifest)" "reserve 0, exhausted, expired tag: upstream HEADs"
expect_eq 0 "$(fake_count "$FP" GET manifest)" "reserve 0, exhausted, expired tag: upstream GETs"
log_has "pull budget of upstream auth (credential fakeuser) is exhausted: remaining 0, limit 100, window 21600s (429 from upstream)"

# A 429 with a Retry-After: misses are refused here until it passes.
cat >"$WORK/retry429.json" <<'J'
{"ratelimit": {"limit": 100, "remaining": 0, "window": 21600, "decrement": false},
 "rules": [{"id": "manifest GET 429 + Retry-After", "kind": "manifest", "method": "GET",
            "reply": {"status": 429, "body": "dockerhub_429", "headers": {"Retry-After": "3600"}}}]}
J
fake_scenario "$FP" "$WORK/retry429.json"
expect_eq 3600 "$(expect_429 /v2/hub/library/f/manifests/oci-single)" "the upstream's Retry-After, passed on"
fake_reset_log "$FP"
ra=$(expect_429 /v2/hub/library/g/manifests/oci-single)
{ [ "$ra" -ge 1 ] && [ "$ra" -le 3600 ]; } || fail "refused miss: Retry-After '$ra'"
expect_eq 0 "$(fake_count "$FP" "" "")" "while the Retry-After runs, a miss: upstream requests"
expect_eq 1 "$(pc_metric pullcache_budget_refused_total 'upstream="hub"')" "/metrics: refused misses"
status
sj '.upstreams[0].ratelimit | .retry_at > .last_429_at' | grep -qx true || fail "status: retry_at"
sj '.upstreams[0].ratelimit.retry_at - .now | . > 3500 and . <= 3600' | grep -qx true || fail "status: retry_at - now"
expect_manifest /v2/hub/library/a/manifests/oci-single oci-single
expect_eq 0 "$(fake_count "$FP" "" "")" "while the Retry-After runs, a cached tag: upstream requests"
# One line per transition, not one per response.
expect_eq 1 "$(log_count 'upstream hub (credential anonymous) is exhausted')" "exhaustion log lines"
expect_eq 1 "$(log_count 'upstream hub (credential anonymous) is below its reserve')" "reserve log lines"
expect_eq 1 "$(log_count 'upstream hub (credential anonymous) is ok again')" "recovery log lines"
echo "ok: exhausted: cached tags served as they are; misses refused while a Retry-After runs"

# ---- no secrets -------------------------------------------------------------------------------
echo "== secrets"
fake_scenario "$FP" ratelimited_hub
expect_manifest /v2/tok/library/a/manifests/oci-single oci-single
status
expect_eq '"token"' "$(jq -c '.upstreams[] | select(.name == "tok") | .credential' "$WORK/status.json")" "status: tok credential"
expect_eq 99 "$(budget tok remaining)" "status: tok remaining"
curl -sS -f "$P/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
for s in "$PC_E2E_BUDGET_PASSWORD" "$PC_E2E_BUDGET_TOKEN"; do
    ! grep -qF "$s" "$WORK/status.json" || fail "a secret ($s) appears in the status document"
    ! grep -qF "$s" "$WORK/metrics.txt" || fail "a secret ($s) appears in /metrics"
    ! grep -qF "$s" "$LOG" || fail "a secret ($s) appears in pullcache's log"
done
URLSECRET=budget-urlsecret-77b2
printf 'upstreams:\n  - name: u\n    url: http://someone:%s@127.0.0.1:%s/\n' "$URLSECRET" "$FP" >"$WORK/urlcred.yml"
rc=0
"$PULLCACHE" serve --check-config --config "$WORK/urlcred.yml" >"$WORK/check.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a URL with user information passed --check-config"
grep -qF "user information" "$WORK/check.out" || fail "check-config: $(cat "$WORK/check.out")"
! grep -qF "$URLSECRET" "$WORK/check.out" || fail "check-config repeats the URL's password"
echo "ok: no password or token in status, metrics or log; no credentials in upstream URLs"
echo "PASS: $TEST_NAME"
