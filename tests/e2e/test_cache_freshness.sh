#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_freshness.sh - per-upstream freshness rules (issue 11):
#   immutable_tags: a tag matching a pattern (semver here) is never
#     revalidated: re-pushed upstream, the cache keeps serving what it has,
#     while an ordinary tag past tag_ttl is revalidated and follows;
#   offline: true: only what is cached is served (any age), a miss is 404
#     naming the offline upstream, and nothing at all is sent upstream.
# The upstream is a second pullcache ("hub", defaults) where the test pushes.
. "$(dirname "$0")/lib.sh"

clients_init
HUB=127.0.0.1:5003
PCR=127.0.0.1:$PC_PORT
for s in a b; do mkimages "$WORK/img-$s" "fresh-$s" 1; done
pc2_start "$HUB" "$WORK/hub"
HUB_PID=$PC2_PID
REG=$HUB push_image "$WORK/img-a" oci-single team/app:1.2.3
REG=$HUB push_image "$WORK/img-a" oci-single team/app:latest
REG=$HUB push_image "$WORK/img-a" docker-single team/app:uncached
A=$(img_digest "$WORK/img-a" oci-single)
B=$(img_digest "$WORK/img-b" oci-single)

# The upstream and its rules are what the test is about.
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: hub
    url: http://$HUB
    tag_ttl: 1
    immutable_tags: ['^v?[0-9]+\.[0-9]+\.[0-9]+$']
YML
pc_start "$WORK/data" --config "$WORK/pullcache.yml"
heads() { pc_metric pullcache_upstream_requests_total 'upstream="hub"' 'kind="manifest"' 'method="HEAD"'; }
expect_eq "$A" "$(reg_digest hub/team/app 1.2.3)" "1.2.3 first pull"
expect_eq "$A" "$(reg_digest hub/team/app latest)" "latest first pull"
sk copy -q --src-tls-verify=false "docker://$PCR/hub/team/app:latest" "dir:$WORK/pulled" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo copy through the mirror (blobs into the cache)"

# Both tags re-pushed upstream; past tag_ttl only latest follows.
REG=$HUB push_image "$WORK/img-b" oci-single team/app:1.2.3
REG=$HUB push_image "$WORK/img-b" oci-single team/app:latest
sleep 1.5
h0=$(heads)
expect_eq "$A" "$(reg_digest hub/team/app 1.2.3)" "1.2.3 after the upstream re-push (immutable)"
expect_eq "$h0" "$(heads)" "no revalidation HEAD for an immutable tag"
expect_eq "$B" "$(reg_digest hub/team/app latest)" "latest after the upstream re-push (revalidated)"
expect_eq $((h0 + 1)) "$(heads)" "one revalidation HEAD for latest"

# Bad patterns are refused by --check-config.
printf 'upstreams:\n  - name: hub\n    url: http://%s\n    immutable_tags: ["(unclosed"]\n' "$HUB" >"$WORK/bad.yml"
rc=0
"$PULLCACHE" serve --check-config --config "$WORK/bad.yml" >"$WORK/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "--check-config accepted a bad immutable_tags pattern"
grep -q "immutable_tags" "$WORK/bad.out" || fail "--check-config does not name immutable_tags: $(cat "$WORK/bad.out")"

# Offline: the hub still answers, but must not be asked.
pc_needs_persistent "the cache to survive a restart"
pc_stop
printf '    offline: true\n' >>"$WORK/pullcache.yml"
pc_start "$WORK/data" --config "$WORK/pullcache.yml"
hub_lines=$(grep -c ' /v2/' "$WORK/hub.log")
sleep 1.5 # every cached tag past tag_ttl: served anyway
expect_eq "$A" "$(reg_digest hub/team/app 1.2.3)" "offline: cached 1.2.3"
expect_eq "$B" "$(reg_digest hub/team/app latest)" "offline: cached latest (past tag_ttl)"
r=$(http_get "http://$PCR/v2/hub/team/app/manifests/uncached" "$WORK/e" -H "Accept: $MANIFEST_ACCEPT")
expect_eq 404 "${r%% *}" "offline: an uncached tag"
expect_eq MANIFEST_UNKNOWN "$(err_code "$WORK/e")" "offline: code"
grep -q offline "$WORK/e" || fail "offline: the message does not say the upstream is offline: $(cat "$WORK/e")"
cfg_b=$(jq -r .config.digest "$WORK/img-b/blobs/sha256/${B#sha256:}")
r=$(http_get "http://$PCR/v2/hub/team/app/blobs/$cfg_b" "$WORK/e")
expect_eq 404 "${r%% *}" "offline: an uncached blob"
expect_eq BLOB_UNKNOWN "$(err_code "$WORK/e")" "offline: blob code"
expect_eq 404 "$(reg_status HEAD "/v2/hub/team/app/blobs/$cfg_b")" "offline: HEAD of an uncached blob"
r=$(http_get "http://$PCR/v2/hub/team/app/tags/list" "$WORK/t")
expect_eq '["1.2.3","latest"]' "$(jq -c .tags "$WORK/t")" "offline: the cached tags"
sk copy -q --src-tls-verify=false "docker://$PCR/hub/team/app:1.2.3" "dir:$WORK/offline-pull" \
    >>"$WORK/clients.log" 2>&1 || fail "offline: skopeo copy of the cached 1.2.3"
expect_eq 0 "$(pc_metric pullcache_upstream_requests_total 'upstream="hub"')" "offline: upstream requests"
expect_eq "$hub_lines" "$(grep -c ' /v2/' "$WORK/hub.log")" "offline: requests the hub saw"
echo "PASS: $TEST_NAME"
