#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_client_limits.sh - Docker-Hub-style pull limits for our own clients
# (limits: in the config, --limit-anonymous): 5 pulls per 3600 s per client
# address, local and mirrored repositories drawing from the same budget.
#
#  1. limits off (the default): manifest answers carry no ratelimit headers.
#  2. limits on: every manifest GET and HEAD answer (local, mirrored, 200 and
#     404) carries ratelimit-limit: 5;w=3600, ratelimit-remaining: R;w=3600
#     and docker-ratelimit-source: 127.0.0.1; HEADs never spend, every GET
#     spends one; the sixth GET gets 429 with Docker Hub's TOOMANYREQUESTS
#     body and a Retry-After, and spends nothing; HEADs still answer 200;
#     blobs are not limited; the metrics count 5 pulls and the refusals;
#     `pullcache ratelimit` reads the budget (and spends nothing).
#  3. after a graceful restart (SIGTERM) the budget is still spent.
#  4. a bigger budget by flag (8/3600) keeps the 5 pulls counted.
#  5. listening dual stack ([::]): an IPv4 client keeps its budget (its
#     IPv4-mapped address counts as IPv4), an IPv6 client has its own (/64).
#  6. limits off again: no headers, GETs served; `pullcache ratelimit` says
#     the registry does not limit.
. "$(dirname "$0")/lib.sh"

clients_init
img=$WORK/img
data=$WORK/data
mkimages "$img" limits
dist_start "$WORK/dist"
dist_push "$img" docker-single library/base:v1
UP=(--upstream "docker.io=http://127.0.0.1:$DIST_PORT")
LOCAL=/v2/e2e/app/manifests
MIRROR=/v2/docker.io/library/base/manifests

BASE=http://$REG   # where mreq sends requests
SOURCE=127.0.0.1   # the docker-ratelimit-source the client is counted as

# mreq METHOD PATH OUT: a manifest request to $BASE; prints its status.
# Headers in OUT.h, body (GET) in OUT.
mreq() {
    local head=()
    [ "$1" = HEAD ] && head=(-I)
    rm -f "$3" "$3.h"
    curl -sS -g "${head[@]}" -H "Accept: $MANIFEST_ACCEPT" -D "$3.h" -o "$3" -w '%{http_code}' \
        "$BASE$2" 2>>"$WORK/curl.log" || echo 000
}

# expect_budget OUT WHAT LIMIT REMAINING: the ratelimit headers of a response.
expect_budget() {
    expect_eq "$3;w=3600" "$(reg_header "$1.h" ratelimit-limit)" "$2: ratelimit-limit"
    expect_eq "$4;w=3600" "$(reg_header "$1.h" ratelimit-remaining)" "$2: ratelimit-remaining"
    expect_eq "$SOURCE" "$(reg_header "$1.h" docker-ratelimit-source)" "$2: docker-ratelimit-source"
}

# ratelimit_json OUT: `pullcache ratelimit --json` of e2e/app:v1 into OUT.
ratelimit_json() {
    "$PULLCACHE" ratelimit --plain-http --json "$REG/e2e/app:v1" >"$1" 2>"$1.err" </dev/null ||
        fail "pullcache ratelimit: $(cat "$1" "$1.err")"
}

# expect_no_budget OUT WHAT: none of the ratelimit headers.
expect_no_budget() {
    if grep -qi '^\(ratelimit-\|docker-ratelimit-\)' "$1.h"; then
        fail "$2: ratelimit headers while limits are off: $(grep -i ratelimit "$1.h" | tr -d '\r')"
    fi
}

# step METHOD PATH STATUS LIMIT REMAINING WHAT: one manifest request and its budget.
step() {
    expect_eq "$3" "$(mreq "$1" "$2" "$WORK/r")" "$6: status"
    expect_budget "$WORK/r" "$6" "$4" "$5"
}

# ---- 1. limits off --------------------------------------------------------------
pc_start "$data" "${UP[@]}"
push_image "$img" oci-single e2e/app:v1
dig=$(img_digest "$img" oci-single)
for m in HEAD GET; do
    for p in "$LOCAL/v1" "$MIRROR/v1" "$LOCAL/nope"; do
        code=$(mreq "$m" "$p" "$WORK/r")
        case $p in */nope) expect_eq 404 "$code" "$m $p (limits off)" ;; *) expect_eq 200 "$code" "$m $p (limits off)" ;; esac
        expect_no_budget "$WORK/r" "$m $p (limits off)"
    done
done
expect_eq 0 "$(pc_metric pullcache_limit_pulls_total)" "pulls counted with limits off"
pc_stop
echo "ok: no ratelimit headers while limits are off"

# ---- 2. limits on ---------------------------------------------------------------
pc_needs_persistent "the image pushed in section 1 to survive the restart"
cat >"$WORK/limits.yaml" <<YML
limits:
  enabled: true
  anonymous: {pulls: 5, window: 3600}
YML
pc_start "$data" --config "$WORK/limits.yaml" "${UP[@]}"
step HEAD "$LOCAL/v1" 200 5 5 "HEAD local (1)"
step HEAD "$LOCAL/v1" 200 5 5 "HEAD local (2): HEADs are free"
step GET "$LOCAL/v1" 200 5 4 "GET local (pull 1)"
step GET "$LOCAL/v1" 200 5 3 "GET local (pull 2)"
# the project's own checker reads the budget, and checking costs nothing
for _ in 1 2; do
    ratelimit_json "$WORK/rl"
    jq -e '.limited == true and .limit == 5 and .remaining == 3 and .window == 3600 and
        .source == "127.0.0.1"' "$WORK/rl" >/dev/null || fail "pullcache ratelimit --json: $(cat "$WORK/rl")"
done
# through the mirror: the manifest comes from the upstream
step GET "$MIRROR/v1" 200 5 2 "GET mirrored (pull 3)"
expect_eq "$(img_digest "$img" docker-single)" "sha256:$(sha256sum "$WORK/r" | cut -d' ' -f1)" \
    "GET mirrored: the upstream's manifest"
step HEAD "$MIRROR/v1" 200 5 2 "HEAD mirrored"
step GET "$LOCAL/nope" 404 5 1 "GET of an unknown tag (pull 4: a 404 counts)"
expect_eq MANIFEST_UNKNOWN "$(err_code "$WORK/r")" "GET of an unknown tag: code"
step GET "$LOCAL/$dig" 200 5 0 "GET local by digest (pull 5)"
expect_eq "$dig" "sha256:$(sha256sum "$WORK/r" | cut -d' ' -f1)" "GET local by digest: body"

# the sixth pull: refused, with Docker Hub's body, and it spends nothing
want='{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit","detail":null}]}'
for p in "$LOCAL/v1" "$MIRROR/v1" "$LOCAL/v1"; do
    step GET "$p" 429 5 0 "GET $p past the limit"
    expect_eq "$want" "$(cat "$WORK/r")" "GET $p past the limit: body"
    retry=$(reg_header "$WORK/r.h" Retry-After)
    [[ $retry =~ ^[0-9]+$ ]] && [ "$retry" -ge 1 ] && [ "$retry" -le 3600 ] ||
        fail "GET $p past the limit: Retry-After '$retry' is not 1..3600 seconds"
done
step HEAD "$LOCAL/v1" 200 5 0 "HEAD past the limit: still served"
expect_eq "$dig" "$(reg_header "$WORK/r.h" Docker-Content-Digest)" "HEAD past the limit: digest"
step HEAD "$MIRROR/v1" 200 5 0 "HEAD mirrored past the limit"
# blobs are not limited
cfg=$(jq -r .config.digest "$img/blobs/sha256/${dig#sha256:}")
read -r code _ _ <<<"$(http_get "http://$REG/v2/e2e/app/blobs/$cfg" "$WORK/blob")"
expect_eq 200 "$code" "GET a blob past the limit"
expect_no_budget "$WORK/blob" "GET a blob"
expect_eq 5 "$(pc_metric pullcache_limit_pulls_total 'budget="anonymous"')" "metric: pulls counted"
expect_eq 3 "$(pc_metric pullcache_limit_refused_total 'budget="anonymous"')" "metric: pulls refused"
echo "ok: HEADs free, each GET spends one, the sixth gets 429 TOOMANYREQUESTS"

# ---- 3. restart -----------------------------------------------------------------
pc_needs_persistent "the counts and images to survive a restart"
pc_stop
pc_start "$data" --config "$WORK/limits.yaml" "${UP[@]}"
step HEAD "$LOCAL/v1" 200 5 0 "HEAD after a restart"
step GET "$LOCAL/v1" 429 5 0 "GET after a restart"
expect_eq TOOMANYREQUESTS "$(err_code "$WORK/r")" "GET after a restart: code"
echo "ok: the spent budget survives a restart"

# ---- 4. a bigger budget by flag -------------------------------------------------
pc_stop
pc_start "$data" --limit-anonymous 8/3600 "${UP[@]}"
step HEAD "$LOCAL/v1" 200 8 3 "HEAD with 8 pulls per window"
step GET "$MIRROR/v1" 200 8 2 "GET mirrored with 8 pulls per window"
# without users the start line names only the per-address limit
grep -q 'pull limits: 8 per 3600s per client address$' "$WORK/pullcache.log" ||
    fail "the pull limits start line (no users) is not 'N per Ws per client address'"
echo "ok: --limit-anonymous 8/3600 keeps the pulls counted so far"

# ---- 5. dual stack: IPv4 and IPv6 clients ---------------------------------------
pc_stop
pc_start "$data" --listen "[::]:$PC_PORT" --limit-anonymous 8/3600 "${UP[@]}"
step HEAD "$LOCAL/v1" 200 8 2 "HEAD over IPv4 to [::] (an IPv4-mapped client)"
BASE="http://[::1]:$PC_PORT" SOURCE="::/64"
step HEAD "$LOCAL/v1" 200 8 8 "HEAD over IPv6"
step GET "$LOCAL/v1" 200 8 7 "GET over IPv6"
BASE=http://$REG SOURCE=127.0.0.1
step HEAD "$LOCAL/v1" 200 8 2 "HEAD over IPv4 after the IPv6 pull"
echo "ok: IPv4 clients of a dual-stack listener count as IPv4; IPv6 per /64"

# ---- 6. limits off again --------------------------------------------------------
pc_stop
pc_start "$data" "${UP[@]}"
for m in HEAD GET; do
    expect_eq 200 "$(mreq "$m" "$LOCAL/v1" "$WORK/r")" "$m local (limits off again)"
    expect_no_budget "$WORK/r" "$m local (limits off again)"
done
ratelimit_json "$WORK/rl"
jq -e '.limited == false' "$WORK/rl" >/dev/null || fail "pullcache ratelimit, limits off: $(cat "$WORK/rl")"
echo "ok: limits off again: no headers, pulls served"
echo "PASS: $TEST_NAME"
