#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_tags.sh - tag lists of mirrored repositories are the upstream's
# (issue 11): all of its tags, not the cached ones; every page of an upstream
# that pages (the fake upstream with --tags-page 1) merged; the spec's n/last
# paging with Link (ns= kept in it); 404 NAME_UNKNOWN for a repository the
# upstream lacks; kept for tag_ttl (no second upstream request); served stale
# with a Warning when the upstream is gone - the last list fetched, and after a
# restart the tags cached here; skopeo list-tags through the mirror.
. "$(dirname "$0")/lib.sh"

clients_init
FP=5002
PCR=127.0.0.1:$PC_PORT
mkimages "$WORK/img" tags 1
fake_start pass "$FP" "" "" --repo library/test="$WORK/img" --tags-page 1
ALL='["docker-list","docker-single","oci-index","oci-single"]'
# The upstream is the fake (the test is about it), with a short tag_ttl (8 s:
# the checks before the stale part fit in it on a loaded machine).
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: docker.io
    url: http://127.0.0.1:$FP
    tag_ttl: 8
    connect_timeout: 1
    read_timeout: 2
YML
pc_start "$WORK/data" --config "$WORK/pullcache.yml"

tags_of() { # PATH: the tags array of a tags/list GET (status 200 required)
    local r
    r=$(http_get "http://$PCR$1" "$WORK/t")
    expect_eq "200 0" "${r% *}" "GET $1"
    jq -c .tags "$WORK/t"
}

# Only one tag is cached; the list is the upstream's four.
sk copy -q --src-tls-verify=false "docker://$PCR/docker.io/library/test:oci-single" "dir:$WORK/one" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo copy of one tag through the mirror"
fake_reset_log "$FP"
expect_eq "$ALL" "$(tags_of /v2/docker.io/library/test/tags/list)" "tags through the mirror"
expect_eq 4 "$(fake_count "$FP" GET tags)" "upstream tag requests: one per page (4 pages of 1)"
expect_eq docker.io/library/test "$(jq -r .name "$WORK/t")" "name in the document"
expect_eq "$ALL" "$(tags_of /v2/library/test/tags/list?ns=docker.io)" "tags with ns=docker.io"
expect_eq library/test "$(jq -r .name "$WORK/t")" "name in the document (ns=)"
expect_eq 4 "$(fake_count "$FP" GET tags)" "upstream tag requests within tag_ttl"

# n/last paging with Link, ns= kept.
expect_eq '["docker-list","docker-single"]' "$(tags_of '/v2/library/test/tags/list?ns=docker.io&n=2')" "n=2"
expect_eq '</v2/library/test/tags/list?n=2&last=docker-single&ns=docker.io>; rel="next"' \
    "$(reg_header "$WORK/t.h" Link)" "Link of the first page"
expect_eq '["oci-index","oci-single"]' "$(tags_of '/v2/library/test/tags/list?ns=docker.io&n=2&last=docker-single')" "page 2"
expect_eq "" "$(reg_header "$WORK/t.h" Link)" "the last page has no Link"
expect_eq '[]' "$(tags_of '/v2/docker.io/library/test/tags/list?n=0')" "n=0"
expect_eq '["oci-single"]' "$(tags_of '/v2/docker.io/library/test/tags/list?last=oci-index')" "last= alone"

# skopeo list-tags through the mirror.
sk list-tags --tls-verify=false "docker://$PCR/docker.io/library/test" >"$WORK/lt.json" 2>>"$WORK/clients.log" ||
    fail "skopeo list-tags through the mirror"
expect_eq "$ALL" "$(jq -c '.Tags | sort' "$WORK/lt.json")" "skopeo list-tags"

# A repository the upstream lacks.
r=$(http_get "http://$PCR/v2/docker.io/library/nothere/tags/list" "$WORK/e")
expect_eq 404 "${r%% *}" "tags of a repository the upstream lacks"
expect_eq NAME_UNKNOWN "$(err_code "$WORK/e")" "its code"

# The upstream gone: past tag_ttl the last list is served with a Warning.
fake_stop "$FP"
sleep 8.5 # past tag_ttl (8 s), so the next read asks the upstream
expect_eq "$ALL" "$(tags_of /v2/docker.io/library/test/tags/list)" "tags with the upstream gone"
case $(reg_header "$WORK/t.h" Warning) in 299\ *) ;; *) fail "no Warning: 299 on a stale tag list" ;; esac
# After a restart nothing is in memory: the tags cached here, with a Warning.
pc_needs_persistent "the cached tags to survive a restart"
pc_stop
pc_start "$WORK/data" --config "$WORK/pullcache.yml"
expect_eq '["oci-single"]' "$(tags_of /v2/docker.io/library/test/tags/list)" "cached tags after a restart, upstream gone"
case $(reg_header "$WORK/t.h" Warning) in 299\ *) ;; *) fail "no Warning: 299 on the cached tags" ;; esac
r=$(http_get "http://$PCR/v2/docker.io/library/nothere/tags/list" "$WORK/e")
expect_eq 503 "${r%% *}" "tags of an uncached repository with the upstream gone"
[ "$(pc_metric pullcache_cache_stale_total 'kind="tags"')" -ge 1 ] || fail "no stale tag list counted"
echo "PASS: $TEST_NAME"
