#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cache_referrers.sh - the referrers of mirrored images come from the
# upstream (issue 11), so `cosign verify` / `notation verify` through the cache
# see signatures and SBOMs:
#   - a second pullcache as upstream "hub" (has the referrers API);
#   - Debian's docker-registry 2.8 as upstream "dist" (no API: the referrers
#     tag schema's index, sha256-<hex>, written there by pullcache copy);
# the artifactType filter, the referrer manifest itself by digest through the
# mirror, an image without referrers (empty index), the answer kept for
# tag_ttl (no second upstream request), and with both upstreams gone the last
# answer served with a Warning.
. "$(dirname "$0")/lib.sh"

clients_init
HUB_PORT=5003
HUB=127.0.0.1:$HUB_PORT
DIST=127.0.0.1:$DIST_PORT
PCR=127.0.0.1:$PC_PORT
mkimages "$WORK/img" refs 1

# The hub: a pullcache with its defaults (private registry on bare names).
pc2_start "$HUB" "$WORK/hub"
HUB_PID=$PC2_PID
REG=$HUB push_image "$WORK/img" oci-single team/app:1
subject=$(img_digest "$WORK/img" oci-single)
printf '{}' >"$WORK/empty.json"
printf 'an sbom for %s\n' "$subject" >"$WORK/sbom.txt"
empty=$(REG=$HUB reg_push_blob team/app "$WORK/empty.json")
sbom=$(REG=$HUB reg_push_blob team/app "$WORK/sbom.txt")
jq -nc --arg s "$subject" --argjson ss "$(jq '.["oci-single"].size' "$WORK/img/images.json")" \
    --arg e "$empty" --arg b "$sbom" --argjson bs "$(stat -c %s "$WORK/sbom.txt")" '
    {schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
     artifactType: "application/vnd.example.sbom.v1",
     config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2},
     layers: [{mediaType: "text/plain", digest: $b, size: $bs}],
     subject: {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $s, size: $ss}}' |
    tr -d '\n' >"$WORK/sbom.manifest"
ref=sha256:$(sha256sum "$WORK/sbom.manifest" | cut -d' ' -f1)
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
    --data-binary "@$WORK/sbom.manifest" "http://$HUB/v2/team/app/manifests/$ref")
expect_eq 201 "$code" "push the sbom referrer to the hub"

# docker-registry with the same image and its referrer under the tag schema.
dist_start "$WORK/dist"
"$PULLCACHE" copy --plain-http --referrers "$HUB/team/app:1" "$DIST/team/app" >>"$WORK/clients.log" 2>&1 ||
    fail "pullcache copy --referrers hub -> docker-registry"
curl -sSf -H 'Accept: application/vnd.oci.image.index.v1+json' -o /dev/null \
    "http://$DIST/v2/team/app/manifests/sha256-${subject#sha256:}" || fail "no referrers tag at docker-registry"

# The cache under test: both as upstreams (the test is about them), short tag_ttl
# (8 s: long enough that the checks before the stale part fit in it on a loaded machine).
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - {name: hub, url: "http://$HUB", tag_ttl: 8, connect_timeout: 1, read_timeout: 2}
  - {name: dist, url: "http://$DIST", tag_ttl: 8, connect_timeout: 1, read_timeout: 2}
YML
pc_start "$WORK/data" --config "$WORK/pullcache.yml"
upstream_referrer_requests() { pc_metric pullcache_upstream_requests_total "upstream=\"$1\"" 'kind="referrers"'; }

referrers() { # PATH: "digest artifactType" of each entry (status 200 and the index type required)
    local r
    r=$(http_get "http://$PCR$1" "$WORK/ri")
    expect_eq "200 0" "${r% *}" "GET $1"
    expect_eq application/vnd.oci.image.index.v1+json "$(reg_header "$WORK/ri.h" Content-Type)" "GET $1: Content-Type"
    jq -r '.manifests | map("\(.digest) \(.artifactType)") | join(",")' "$WORK/ri"
}
for up in hub dist; do
    expect_eq "$ref application/vnd.example.sbom.v1" "$(referrers "/v2/$up/team/app/referrers/$subject")" "referrers through the mirror of $up"
    expect_eq "$ref application/vnd.example.sbom.v1" \
        "$(referrers "/v2/$up/team/app/referrers/$subject?artifactType=application/vnd.example.sbom.v1")" "$up: artifactType filter"
    expect_eq artifactType "$(reg_header "$WORK/ri.h" OCI-Filters-Applied)" "$up: OCI-Filters-Applied"
    expect_eq "" "$(referrers "/v2/$up/team/app/referrers/$subject?artifactType=application/x-other")" "$up: filter matching nothing"
    expect_eq "$ref" "$(reg_digest "$up/team/app" "$ref")" "$up: the referrer manifest by digest through the mirror"
    # an image without referrers: an empty index
    expect_eq "" "$(referrers "/v2/$up/team/app/referrers/sha256:$(printf x | sha256sum | cut -d' ' -f1)")" "$up: no referrers"
done
# one request per digest at hub (the filters are answered from the kept list); at
# dist two (the API's 404, then the tag schema)
expect_eq 2 "$(upstream_referrer_requests hub)" "referrers requests to hub"
expect_eq 4 "$(upstream_referrer_requests dist)" "referrers requests to dist"
before=$(upstream_referrer_requests dist)
referrers "/v2/dist/team/app/referrers/$subject" >/dev/null
expect_eq "$before" "$(upstream_referrer_requests dist)" "no upstream request within tag_ttl"

# Both upstreams gone, past tag_ttl: the last answers, with a Warning.
kill -TERM "$HUB_PID"
wait "$HUB_PID" 2>/dev/null || true
dist_stop
sleep 8.5 # past tag_ttl
for up in hub dist; do
    expect_eq "$ref application/vnd.example.sbom.v1" "$(referrers "/v2/$up/team/app/referrers/$subject")" "$up gone: the last answer"
    case $(reg_header "$WORK/ri.h" Warning) in 299\ *) ;; *) fail "$up gone: no Warning: 299 on the referrers" ;; esac
done
echo "PASS: $TEST_NAME"
