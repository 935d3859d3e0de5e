#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_regverbs.sh - `pullcache ls`, `tags`, `inspect` and `rm` against pullcache
# (defaults) and docker-registry 2.8: every tag, the platforms of an index with
# their digests, an image's config and layers with the total, --json, a
# digest reference, bad input exit 2, a missing image exit 3.
. "$(dirname "$0")/lib.sh"

clients_init
mkimages "$WORK/img" regverbs 1
pc_start "$WORK/data"
dist_start "$WORK/dist"
for r in "127.0.0.1:$PC_PORT" "127.0.0.1:$DIST_PORT"; do
    REG=$r push_image "$WORK/img" oci-index team/app:1
    REG=$r push_image "$WORK/img" docker-single team/app:2
    REG=$r push_image "$WORK/img" oci-single other/x:1
    expect_eq "other/x team/app" "$("$PULLCACHE" ls "$r" | tr '\n' ' ' | sed 's/ $//')" "ls $r"
    expect_eq '{"repositories":["other/x","team/app"]}' "$("$PULLCACHE" ls --json "http://$r")" "ls --json http://$r"
    expect_eq "other/x team/app" "$("$PULLCACHE" ls --page-size 1 "$r" | tr '\n' ' ' | sed 's/ $//')" "ls --page-size 1 $r (Link pages)"
    expect_eq "1 2" "$("$PULLCACHE" tags "$r/team/app" | tr '\n' ' ' | sed 's/ $//')" "tags at $r"
    expect_eq '{"name":"team/app","tags":["1","2"]}' "$("$PULLCACHE" tags --json "$r/team/app")" "tags --json at $r"
    idx=$(img_digest "$WORK/img" oci-index)
    "$PULLCACHE" inspect --json "$r/team/app:1" >"$WORK/i1.json" || fail "inspect $r/team/app:1"
    expect_eq "$idx" "$(jq -r .digest "$WORK/i1.json")" "inspect: index digest at $r"
    want=$(jq -c '[.manifests[] | "\(.platform.os)/\(.platform.architecture)\(if .platform.variant then "/" + .platform.variant else "" end) \(.digest)"]' "$WORK/img/blobs/sha256/${idx#sha256:}")
    expect_eq "$want" "$(jq -c '[.manifests[] | "\(.platform) \(.digest)"]' "$WORK/i1.json")" "inspect: platforms at $r"
    one=$(img_digest "$WORK/img" docker-single)
    m=$WORK/img/blobs/sha256/${one#sha256:}
    "$PULLCACHE" inspect --json "$r/team/app@$one" >"$WORK/i2.json" || fail "inspect $r/team/app@$one"
    expect_eq "$(jq -r .config.digest "$m")" "$(jq -r .config.digest "$WORK/i2.json")" "inspect: config at $r"
    expect_eq "$(jq '[.layers[].size] | add' "$m")" "$(jq .total_size "$WORK/i2.json")" "inspect: total at $r"
    "$PULLCACHE" inspect "$r/team/app:2" | grep -q "^  total  " || fail "inspect (text) at $r"
    rc=0
    "$PULLCACHE" inspect "$r/team/app:nope" >/dev/null 2>&1 || rc=$?
    expect_eq 3 "$rc" "inspect of a missing tag at $r"
    rc=0
    "$PULLCACHE" tags "$r/team/nothere" >/dev/null 2>&1 || rc=$?
    expect_eq 3 "$rc" "tags of a missing repository at $r"    # rm by tag deletes the manifest the tag names (and so the tag)
    expect_eq "deleted team/app@$one" "$("$PULLCACHE" rm "$r/team/app:2")" "rm $r/team/app:2"
    expect_eq "1" "$("$PULLCACHE" tags "$r/team/app" | tr '\n' ' ' | sed 's/ $//')" "tags after rm at $r"
    rc=0
    "$PULLCACHE" inspect "$r/team/app@$one" >/dev/null 2>&1 || rc=$?
    expect_eq 3 "$rc" "inspect of the deleted manifest at $r"
    rc=0
    "$PULLCACHE" rm "$r/team/app@$one" >/dev/null 2>&1 || rc=$?
    expect_eq 3 "$rc" "rm of a manifest already deleted at $r"
    expect_eq true "$("$PULLCACHE" rm --json "$r/team/app@$idx" | jq .deleted)" "rm --json by digest at $r"
done
for args in "" "127.0.0.1:5000/repo" "a b"; do
    rc=0
    # shellcheck disable=SC2086
    "$PULLCACHE" ls $args >/dev/null 2>&1 || rc=$?
    expect_eq 2 "$rc" "ls $args"
done
rc=0
"$PULLCACHE" ls 127.0.0.1:5999 >/dev/null 2>&1 || rc=$?
expect_eq 3 "$rc" "ls of a registry that is not there"
for args in "" "a b" "--bogus x" "Bad/Name"; do
    rc=0
    # shellcheck disable=SC2086
    "$PULLCACHE" inspect $args >/dev/null 2>&1 || rc=$?
    expect_eq 2 "$rc" "inspect $args"
done
echo "PASS: $TEST_NAME"
