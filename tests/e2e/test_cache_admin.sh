#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_admin.sh - `pullcache cache ls|refresh|forget` against a running
# serve (issue 11): a tag re-pushed upstream is served from the cache until
# `cache refresh` revalidates it (one HEAD, one GET for the new digest), at once
# instead of after tag_ttl; `cache forget` drops tags so the next pull asks the
# upstream; ls shows repositories and tags with their age; bad names and
# subcommands exit 2; with users only an admin may (401/403 otherwise); an
# unreachable server exits 3. The upstream is a second pullcache ("hub").
. "$(dirname "$0")/lib.sh"

clients_init
HUB=127.0.0.1:5003
PCR=127.0.0.1:$PC_PORT
for s in a b; do mkimages "$WORK/img-$s" "admin-$s" 1; done
pc2_start "$HUB" "$WORK/hub"
HUB_PID=$PC2_PID
REG=$HUB push_image "$WORK/img-a" oci-single team/app:1
REG=$HUB push_image "$WORK/img-a" docker-single team/app:2
A=$(img_digest "$WORK/img-a" oci-single)
B=$(img_digest "$WORK/img-b" oci-single)
# The upstream is the test's subject; a long tag_ttl so only `cache` moves tags.
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - {name: hub, url: "http://$HUB", tag_ttl: 3600}
YML
pc_start "$WORK/data" --config "$WORK/pullcache.yml"
cache() { "$PULLCACHE" cache --server "http://$PCR" "$@"; }
req_count() { pc_metric pullcache_upstream_requests_total 'upstream="hub"' 'kind="manifest"' "method=\"$1\""; }

expect_eq "$A" "$(reg_digest hub/team/app 1)" "first pull of 1"
expect_eq "$(img_digest "$WORK/img-a" docker-single)" "$(reg_digest hub/team/app 2)" "first pull of 2"
expect_eq '["hub/team/app"]' "$(cache --json ls | jq -c .repositories)" "cache ls"
cache ls hub/team/app >"$WORK/ls.txt" || fail "cache ls NAME"
grep -q "^  1  *$A  [0-9]*s ago  fresh$" "$WORK/ls.txt" || fail "cache ls NAME: $(cat "$WORK/ls.txt")"
expect_eq '["1","2"]' "$(cache --json ls hub/team/app | jq -c '[.tags[].tag]')" "cache ls --json tags"

# Re-pushed upstream: the cache keeps serving A (within tag_ttl) until refresh.
REG=$HUB push_image "$WORK/img-b" oci-single team/app:1
expect_eq "$A" "$(reg_digest hub/team/app 1)" "1 within tag_ttl after the upstream re-push"
h=$(req_count HEAD) g=$(req_count GET)
cache refresh hub/team/app:1 >"$WORK/refresh.txt" || fail "cache refresh"
expect_eq "hub/team/app:1 -> $B (changed)" "$(cat "$WORK/refresh.txt")" "cache refresh output"
expect_eq $((h + 1)) "$(req_count HEAD)" "one HEAD for the refresh"
expect_eq $((g + 1)) "$(req_count GET)" "one GET for the new digest"
expect_eq "$B" "$(reg_digest hub/team/app 1)" "1 after the refresh"
expect_eq false "$(cache --json refresh hub/team/app:1 | jq .changed)" "a second refresh: unchanged"

# forget: the next pull asks the upstream.
expect_eq 1 "$(cache --json forget hub/team/app:2 | jq .forgotten)" "forget one tag"
expect_eq '["1"]' "$(cache --json ls hub/team/app | jq -c '[.tags[].tag]')" "tags after forget"
h=$(req_count HEAD) g=$(req_count GET)
expect_eq "$(img_digest "$WORK/img-a" docker-single)" "$(reg_digest hub/team/app 2)" "2 after forget"
[ $(($(req_count HEAD) + $(req_count GET))) -gt $((h + g)) ] || fail "the pull after forget did not ask the upstream"
expect_eq "forgot 2 tags of hub/team/app" "$(cache forget hub/team/app)" "forget every tag"

# Bad input: exit 2; names that are not mirrored: 1 with the server's reason.
for args in "" "bogus x" "ls Bad/Name" "refresh hub/team/app" "forget" "ls hub/team/app:1"; do
    rc=0
    # shellcheck disable=SC2086
    cache $args >/dev/null 2>&1 || rc=$?
    expect_eq 2 "$rc" "cache $args"
done
rc=0
cache ls team/app 2>"$WORK/e" || rc=$?
expect_eq 3 "$rc" "cache ls of a name that is not mirrored (the server refused)"
grep -q "not a mirrored repository" "$WORK/e" || fail "cache ls team/app: $(cat "$WORK/e")"
rc=0
"$PULLCACHE" cache --server http://127.0.0.1:5999 ls >/dev/null 2>&1 || rc=$?
expect_eq 3 "$rc" "cache against a server that is not there"

# With users: only admins.
pc_needs_persistent "the cache to survive a restart"
pc_stop
htpasswd -cbB "$WORK/htpasswd" root rootpw 2>/dev/null
htpasswd -bB "$WORK/htpasswd" bob bobpw 2>/dev/null
pc_start "$WORK/data" --config "$WORK/pullcache.yml" --htpasswd "$WORK/htpasswd" --admin root
rc=0
cache ls 2>"$WORK/e" || rc=$?
expect_eq 3 "$rc" "cache ls anonymous with users (refused)"
grep -q "answered 401" "$WORK/e" || fail "anonymous: $(cat "$WORK/e")"
rc=0
echo bobpw | cache --username bob --password-stdin ls 2>"$WORK/e" || rc=$?
expect_eq 3 "$rc" "cache ls as a non-admin (refused)"
grep -q "answered 403" "$WORK/e" || fail "bob: $(cat "$WORK/e")"
echo rootpw | cache --username root --password-stdin --json ls >"$WORK/ls.json" || fail "cache ls as admin"
expect_eq '["hub/team/app"]' "$(jq -c .repositories "$WORK/ls.json")" "cache ls as admin"
echo "PASS: $TEST_NAME"
