#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_api_manifests.sh - the manifest half of the OCI Distribution Spec v1.1
# with raw curl: push by tag and by digest, pull and HEAD with exact bytes and
# Content-Type, refused manifests (missing blobs or children, invalid JSON,
# too large), tags list and catalog pagination (n, last, Link), deletes of
# manifests and tags, the referrers API, /v2/, Docker v2s2 types and
# artifacts with custom config media types.
#
# REGISTRY=distribution runs it against docker-registry 2.8, which has no
# referrers API, no manifest size limit and no automatic mount; those parts
# are skipped there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

api_start "$WORK/data"

MT_MAN=application/vnd.oci.image.manifest.v1+json
MT_IDX=application/vnd.oci.image.index.v1+json
MT_CFG=application/vnd.oci.image.config.v1+json
MT_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
MT_EMPTY=application/vnd.oci.empty.v1+json
MT_D_MAN=application/vnd.docker.distribution.manifest.v2+json
MT_D_LIST=application/vnd.docker.distribution.manifest.list.v2+json
MT_D_CFG=application/vnd.docker.container.image.v1+json
MT_D_LAYER=application/vnd.docker.image.rootfs.diff.tar.gzip
APP=mf/app

# desc MEDIATYPE FILE: an OCI descriptor of FILE as compact JSON.
desc() {
    jq -cn --arg mt "$1" --arg d "$(dgst "$2")" --argjson s "$(stat -c %s "$2")" \
        '{mediaType: $mt, digest: $d, size: $s}'
}

# image_manifest OUT CONFIG_MT CONFIG_FILE LAYER_MT LAYER_FILE... : an image
# manifest (OCI unless MT=... says otherwise) written to OUT. Extra JSON
# members may be given in $EXTRA (a jq object merged in).
image_manifest() {
    local out=$1 cmt=$2 cfg=$3 lmt=$4
    shift 4
    local layers="[]" f
    for f in "$@"; do
        layers=$(jq -c --argjson d "$(desc "$lmt" "$f")" '. + [$d]' <<<"$layers")
    done
    jq -cn --arg mt "${MT:-$MT_MAN}" --argjson c "$(desc "$cmt" "$cfg")" \
        --argjson l "$layers" --argjson x "${EXTRA:-{\}}" \
        '{schemaVersion: 2, mediaType: $mt, config: $c, layers: $l} + $x' >"$out"
}

# index_of OUT MEDIATYPE CHILD_MT CHILD_FILE...: an index of the children.
index_of() {
    local out=$1 mt=$2 cmt=$3
    shift 3
    local m="[]" f
    for f in "$@"; do
        m=$(jq -c --argjson d "$(desc "$cmt" "$f")" \
            '. + [$d + {platform: {architecture: "amd64", os: "linux"}}]' <<<"$m")
    done
    jq -cn --arg mt "$mt" --argjson m "$m" '{schemaVersion: 2, mediaType: $mt, manifests: $m}' >"$out"
}

# link_next: the URL of the Link rel="next" header, or "" when absent.
link_next() {
    local l
    l=$(hdr Link)
    [[ $l =~ ^\<([^>]*)\>\;\ *rel=\"?next\"?$ ]] && printf '%s' "${BASH_REMATCH[1]}"
    return 0
}
# qparam URL NAME: a query parameter's value.
qparam() {
    local q=${1#*\?} kv
    local IFS='&'
    for kv in $q; do
        [ "${kv%%=*}" = "$2" ] && printf '%s' "${kv#*=}"
    done
    return 0
}

# Blobs for the images.
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/cfg"
rand_file "$WORK/l1" 2048
rand_file "$WORK/l2" 1024
printf '{}' >"$WORK/empty"
for f in cfg l1 l2 empty; do put_blob "$APP" "$WORK/$f"; done

# ---------------------------------------------------------------------------
# /v2/: 200 + Docker-Distribution-API-Version: registry/2.0.
req GET /v2/
check_status 200 "GET /v2/"
check_hdr Docker-Distribution-API-Version "registry/2.0" "GET /v2/"

# ---------------------------------------------------------------------------
# PUT by tag: 201 + Location (pullable) + Docker-Content-Digest.
image_manifest "$WORK/m1" "$MT_CFG" "$WORK/cfg" "$MT_LAYER" "$WORK/l1" "$WORK/l2"
DM1=$(dgst "$WORK/m1")
SM1=$(stat -c %s "$WORK/m1")
req PUT "/v2/$APP/manifests/v1" --data-binary "@$WORK/m1" -H "Content-Type: $MT_MAN"
check_status 201 "PUT manifest by tag"
check_hdr Docker-Content-Digest "$DM1" "PUT manifest by tag"
L=$(hdr Location)
check_true "PUT manifest by tag has a Location" test -n "$L"
if [ -n "$L" ]; then
    req GET "$(loc_url "$L")" -H "Accept: $MT_MAN"
    check_status 200 "GET the Location of a manifest PUT"
    check_body_file "$WORK/m1" "GET the Location of a manifest PUT"
fi

# PUT by digest.
EXTRA='{"annotations":{"org.example.which":"m2"}}' \
    image_manifest "$WORK/m2" "$MT_CFG" "$WORK/cfg" "$MT_LAYER" "$WORK/l1"
DM2=$(dgst "$WORK/m2")
req PUT "/v2/$APP/manifests/$DM2" --data-binary "@$WORK/m2" -H "Content-Type: $MT_MAN"
check_status 201 "PUT manifest by digest"
check_hdr Docker-Content-Digest "$DM2" "PUT manifest by digest"
check_true "PUT manifest by digest has a Location" test -n "$(hdr Location)"
# By a digest that is not the content's.
EXTRA='{"annotations":{"org.example.which":"m2b"}}' \
    image_manifest "$WORK/m2b" "$MT_CFG" "$WORK/cfg" "$MT_LAYER" "$WORK/l1"
req PUT "/v2/$APP/manifests/$DM2" --data-binary "@$WORK/m2b" -H "Content-Type: $MT_MAN"
check_err 400 DIGEST_INVALID "PUT manifest under a digest that is not its own"
req GET "/v2/$APP/manifests/$DM2" -H "Accept: $MT_MAN"
check_body_file "$WORK/m2" "manifest unchanged after a refused PUT under its digest"

# ---------------------------------------------------------------------------
# GET/HEAD by tag and by digest: exact bytes, Content-Type, digest, length.
for ref in v1 "$DM1"; do
    req GET "/v2/$APP/manifests/$ref" -H "Accept: $MT_MAN"
    check_status 200 "GET manifest $ref"
    check_body_file "$WORK/m1" "GET manifest $ref"
    check_hdr Content-Type "$MT_MAN" "GET manifest $ref"
    check_hdr Docker-Content-Digest "$DM1" "GET manifest $ref"
    check_hdr Content-Length "$SM1" "GET manifest $ref"
    req HEAD "/v2/$APP/manifests/$ref" -H "Accept: $MT_MAN"
    check_status 200 "HEAD manifest $ref"
    check_hdr Content-Type "$MT_MAN" "HEAD manifest $ref"
    check_hdr Docker-Content-Digest "$DM1" "HEAD manifest $ref"
    check_hdr Content-Length "$SM1" "HEAD manifest $ref"
done
req GET "/v2/$APP/manifests/nosuchtag" -H "Accept: $MT_MAN"
check_err 404 MANIFEST_UNKNOWN "GET unknown tag"
req HEAD "/v2/$APP/manifests/nosuchtag"
check_status 404 "HEAD unknown tag"
if ! is_dist; then # distribution 2.8 answers 500 here
    req GET "/v2/$APP/manifests/$(dgst "$WORK/l1")" -H "Accept: $MT_MAN"
    check_err 404 MANIFEST_UNKNOWN "GET a blob's digest as a manifest"
fi
req GET "/v2/mf/nosuchrepo/manifests/v1" -H "Accept: $MT_MAN"
check_status 404 "GET manifest of an unknown repository"
# A reference that is no valid tag (the OCI conformance suite's
# ".INVALID_MANIFEST_NAME", a leading '.' or '-', over 128 characters) names
# no manifest: reads and DELETE answer 404 MANIFEST_UNKNOWN, only a PUT
# answers 400 TAG_INVALID.
LONGTAG=$(head -c 129 /dev/zero | tr '\0' t)
for ref in .INVALID_MANIFEST_NAME -dash "$LONGTAG"; do
    req GET "/v2/$APP/manifests/$ref" -H "Accept: $MT_MAN"
    if is_dist; then # distribution 2.8's router answers a bare 404 here
        check_status 404 "GET invalid tag ${ref:0:24}"
    else
        check_err 404 MANIFEST_UNKNOWN "GET invalid tag ${ref:0:24}"
    fi
    req HEAD "/v2/$APP/manifests/$ref" -H "Accept: $MT_MAN"
    check_status 404 "HEAD invalid tag ${ref:0:24}"
    req DELETE "/v2/$APP/manifests/$ref"
    check_status 404 "DELETE invalid tag ${ref:0:24}"
    if ! is_dist; then
        check_err 404 MANIFEST_UNKNOWN "DELETE invalid tag ${ref:0:24}"
        req PUT "/v2/$APP/manifests/$ref" --data-binary "@$WORK/m1" -H "Content-Type: $MT_MAN"
        check_err 400 TAG_INVALID "PUT invalid tag ${ref:0:24}"
    fi
done
req GET "/v2/$APP/manifests/v1" -H "Accept: $MT_MAN"
check_status 200 "v1 still there after the invalid-tag requests"

# ---------------------------------------------------------------------------
# Refused manifests.
rand_file "$WORK/lmissing" 300
image_manifest "$WORK/mbad1" "$MT_CFG" "$WORK/cfg" "$MT_LAYER" "$WORK/l1" "$WORK/lmissing"
req PUT "/v2/$APP/manifests/missing-layer" --data-binary "@$WORK/mbad1" -H "Content-Type: $MT_MAN"
check_err 400 MANIFEST_BLOB_UNKNOWN "manifest referencing a missing layer"
req HEAD "/v2/$APP/manifests/missing-layer"
check_status 404 "refused manifest's tag does not exist"
printf '{"architecture":"arm64","os":"linux"}' >"$WORK/cfgmissing"
image_manifest "$WORK/mbad2" "$MT_CFG" "$WORK/cfgmissing" "$MT_LAYER" "$WORK/l1"
req PUT "/v2/$APP/manifests/missing-config" --data-binary "@$WORK/mbad2" -H "Content-Type: $MT_MAN"
check_err 400 MANIFEST_BLOB_UNKNOWN "manifest referencing a missing config"
# A blob that exists only in another repository is missing here.
put_blob mf/other "$WORK/lmissing"
req PUT "/v2/$APP/manifests/other-repo-layer" --data-binary "@$WORK/mbad1" -H "Content-Type: $MT_MAN"
check_err 400 MANIFEST_BLOB_UNKNOWN "manifest referencing a layer of another repository"

# Index with a missing child.
EXTRA='{"annotations":{"org.example.which":"never pushed"}}' \
    image_manifest "$WORK/mnever" "$MT_CFG" "$WORK/cfg" "$MT_LAYER" "$WORK/l2"
index_of "$WORK/ibad" "$MT_IDX" "$MT_MAN" "$WORK/m1" "$WORK/mnever"
req PUT "/v2/$APP/manifests/missing-child" --data-binary "@$WORK/ibad" -H "Content-Type: $MT_IDX"
check_err 400 MANIFEST_BLOB_UNKNOWN "index referencing a missing child"
# An index of present children is fine.
index_of "$WORK/i1" "$MT_IDX" "$MT_MAN" "$WORK/m1" "$WORK/m2"
DI1=$(dgst "$WORK/i1")
req PUT "/v2/$APP/manifests/multi" --data-binary "@$WORK/i1" -H "Content-Type: $MT_IDX"
check_status 201 "PUT index of present children"
check_hdr Docker-Content-Digest "$DI1" "PUT index"
req GET "/v2/$APP/manifests/multi" -H "Accept: $MT_IDX"
check_status 200 "GET index"
check_hdr Content-Type "$MT_IDX" "GET index"
check_body_file "$WORK/i1" "GET index"

# Invalid JSON.
printf '{"schemaVersion": 2, "mediaType": "%s", "config": ' "$MT_MAN" >"$WORK/mjunk"
req PUT "/v2/$APP/manifests/junk" --data-binary "@$WORK/mjunk" -H "Content-Type: $MT_MAN"
check_err 400 MANIFEST_INVALID "truncated JSON manifest"
printf 'not json at all' >"$WORK/mjunk2"
req PUT "/v2/$APP/manifests/junk" --data-binary "@$WORK/mjunk2" -H "Content-Type: $MT_MAN"
check_err 400 MANIFEST_INVALID "non-JSON manifest"
req HEAD "/v2/$APP/manifests/junk"
check_status 404 "invalid manifests create no tag"

# Size: at most 4 MiB is accepted, one byte more is 413 (distribution 2.8
# has no limit; only the accepting half runs there).
# big_manifest OUT SIZE: a valid image manifest of exactly SIZE bytes.
big_manifest() {
    local out=$1 size=$2 head tail pad
    head=$(jq -cn --argjson c "$(desc "$MT_CFG" "$WORK/cfg")" --argjson l "$(desc "$MT_LAYER" "$WORK/l1")" \
        --arg mt "$MT_MAN" '{schemaVersion: 2, mediaType: $mt, config: $c, layers: [$l]}')
    head=${head%\}}',"annotations":{"org.example.pad":"'
    tail='"}}'
    pad=$((size - ${#head} - ${#tail}))
    { printf '%s' "$head"; head -c "$pad" /dev/zero | tr '\0' a; printf '%s' "$tail"; } >"$out"
    [ "$(stat -c %s "$out")" = "$size" ] || fail "big_manifest: wrong size"
    jq -e . "$out" >/dev/null || fail "big_manifest: invalid JSON"
}
big_manifest "$WORK/m4m" 4194304
req PUT "/v2/$APP/manifests/big" --data-binary "@$WORK/m4m" -H "Content-Type: $MT_MAN"
check_status 201 "PUT a manifest of exactly 4 MiB"
req GET "/v2/$APP/manifests/big" -H "Accept: $MT_MAN"
check_body_file "$WORK/m4m" "GET the 4 MiB manifest"
if ! is_dist; then
    big_manifest "$WORK/m4m1" 4194305
    req PUT "/v2/$APP/manifests/toobig" --data-binary "@$WORK/m4m1" -H "Content-Type: $MT_MAN"
    check_status 413 "PUT a manifest of 4 MiB + 1 byte"
    req HEAD "/v2/$APP/manifests/toobig"
    check_status 404 "a refused big manifest creates no tag"
    req HEAD "/v2/$APP/manifests/$(dgst "$WORK/m4m1")"
    check_status 404 "a refused big manifest is not stored"
fi

# ---------------------------------------------------------------------------
# Tags list: lexical order, n, last, Link: <...>; rel="next". distribution
# 2.8 neither sorts nor paginates tags; only the unknown-repository case
# runs there.
T=mf/tags
for f in cfg l1 l2; do put_blob "$T" "$WORK/$f"; done
for tag in d b a1 c a; do
    put_manifest "$T" "$tag" "$WORK/m1" "$MT_MAN"
done
tags() { jq -c '[.tags[]]' "$RB" 2>/dev/null || true; }
if ! is_dist; then
    req GET "/v2/$T/tags/list"
    check_status 200 "tags list"
    check_eq '["a","a1","b","c","d"]' "$(tags)" "tags list, lexical order"
    check_eq "$T" "$(jq -r .name "$RB" 2>/dev/null)" "tags list name"
    check_hdr Link "" "tags list without n has no Link"

    req GET "/v2/$T/tags/list?n=2"
    check_status 200 "tags list n=2"
    check_eq '["a","a1"]' "$(tags)" "tags list n=2"
    NEXT=$(link_next)
    check_true "tags list n=2 has Link rel=next (got '$(hdr Link)')" test -n "$NEXT"
    check_eq "/v2/$T/tags/list" "${NEXT%%\?*}" "tags Link path"
    check_eq 2 "$(qparam "$NEXT" n)" "tags Link n"
    check_eq a1 "$(qparam "$NEXT" last)" "tags Link last"
    # The form pullcache promises: n first, then last.
    check_hdr Link "</v2/$T/tags/list?n=2&last=a1>; rel=\"next\"" "tags Link exact form"
    if [ -n "$NEXT" ]; then
        req GET "$(loc_url "$NEXT")"
        check_eq '["b","c"]' "$(tags)" "tags page 2 via Link"
        NEXT=$(link_next)
        check_eq c "$(qparam "$NEXT" last)" "tags page 2 Link last"
        if [ -n "$NEXT" ]; then
            req GET "$(loc_url "$NEXT")"
            check_eq '["d"]' "$(tags)" "tags page 3 via Link"
            check_hdr Link "" "last tags page has no Link"
        fi
    fi
    req GET "/v2/$T/tags/list?n=2&last=b"
    check_eq '["c","d"]' "$(tags)" "tags n=2&last=b"
    check_hdr Link "" "tags n=2&last=b ends the list: no Link"
    req GET "/v2/$T/tags/list?last=a1"
    check_eq '["b","c","d"]' "$(tags)" "tags last=a1 without n"
    req GET "/v2/$T/tags/list?n=0"
    check_status 200 "tags n=0"
    check_eq '[]' "$(jq -c '.tags // []' "$RB" 2>/dev/null)" "tags n=0 is an empty list"
    check_hdr Link "" "tags n=0 has no Link (spec: MUST NOT)"
    req GET "/v2/$T/tags/list?n=100"
    check_eq '["a","a1","b","c","d"]' "$(tags)" "tags n larger than the list"
    check_hdr Link "" "tags n larger than the list has no Link"
    req GET "/v2/$T/tags/list?last=d"
    check_eq '[]' "$(jq -c '.tags // []' "$RB" 2>/dev/null)" "tags after the last tag"
fi

req GET "/v2/mf/nosuchrepo/tags/list"
check_err 404 NAME_UNKNOWN "tags list of an unknown repository"

# ---------------------------------------------------------------------------
# DELETE by digest: 202, then 404 MANIFEST_UNKNOWN for the digest and every
# tag that pointed at it.
EXTRA='{"annotations":{"org.example.which":"m3"}}' \
    image_manifest "$WORK/m3" "$MT_CFG" "$WORK/cfg" "$MT_LAYER" "$WORK/l2"
DM3=$(dgst "$WORK/m3")
put_manifest "$APP" del "$WORK/m3" "$MT_MAN"
put_manifest "$APP" del2 "$WORK/m3" "$MT_MAN"
req DELETE "/v2/$APP/manifests/$DM3"
check_status 202 "DELETE manifest by digest"
req GET "/v2/$APP/manifests/$DM3" -H "Accept: $MT_MAN"
check_err 404 MANIFEST_UNKNOWN "GET deleted manifest by digest"
req GET "/v2/$APP/manifests/del" -H "Accept: $MT_MAN"
check_err 404 MANIFEST_UNKNOWN "GET a tag of a deleted manifest"
req HEAD "/v2/$APP/manifests/del2"
check_status 404 "HEAD another tag of a deleted manifest"
req DELETE "/v2/$APP/manifests/$DM3"
check_err 404 MANIFEST_UNKNOWN "DELETE a deleted manifest again"
req GET "/v2/$APP/tags/list"
check_true "deleted manifest's tags are gone from the tags list" \
    eval '! jq -e ".tags | index(\"del\") or index(\"del2\")" "$RB" >/dev/null'

# DELETE by tag: 202; the tag is gone, the manifest and its other tags stay.
# (distribution 2.8 refuses tag deletes with 400, which the spec allows.)
if ! is_dist; then
    EXTRA='{"annotations":{"org.example.which":"m4"}}' \
        image_manifest "$WORK/m4" "$MT_CFG" "$WORK/cfg" "$MT_LAYER" "$WORK/l1"
    DM4=$(dgst "$WORK/m4")
    put_manifest "$APP" t1 "$WORK/m4" "$MT_MAN"
    put_manifest "$APP" t2 "$WORK/m4" "$MT_MAN"
    req DELETE "/v2/$APP/manifests/t1"
    check_status 202 "DELETE tag"
    req GET "/v2/$APP/manifests/t1" -H "Accept: $MT_MAN"
    check_err 404 MANIFEST_UNKNOWN "GET deleted tag"
    req GET "/v2/$APP/manifests/t2" -H "Accept: $MT_MAN"
    check_status 200 "GET another tag of the same manifest after a tag delete"
    req GET "/v2/$APP/manifests/$DM4" -H "Accept: $MT_MAN"
    check_status 200 "GET the manifest by digest after a tag delete"
    req DELETE "/v2/$APP/manifests/t1"
    check_err 404 MANIFEST_UNKNOWN "DELETE a deleted tag again"
fi

# ---------------------------------------------------------------------------
# Referrers API (spec 1.1; not in distribution 2.8).
if ! is_dist; then
    printf '{"sbom":"pretend"}' >"$WORK/sbom"
    printf '{"sig":"pretend"}' >"$WORK/sig"
    printf '{"signer":"pretend"}' >"$WORK/sigcfg"
    for f in sbom sig sigcfg; do put_blob "$APP" "$WORK/$f"; done
    SUBJ=$(desc "$MT_MAN" "$WORK/m1")
    # A1: artifactType set, empty config.
    EXTRA=$(jq -cn --argjson s "$SUBJ" \
        '{artifactType: "application/vnd.example.sbom.v1", subject: $s,
          annotations: {"org.example.kind": "sbom"}}') \
        image_manifest "$WORK/a1" "$MT_EMPTY" "$WORK/empty" application/vnd.example.sbom.layer.v1 "$WORK/sbom"
    DA1=$(dgst "$WORK/a1")
    req PUT "/v2/$APP/manifests/$DA1" --data-binary "@$WORK/a1" -H "Content-Type: $MT_MAN"
    check_status 201 "PUT artifact with subject"
    check_hdr OCI-Subject "$DM1" "PUT artifact with subject"
    # A2: no artifactType, custom config media type (the referrers list then
    # takes the config's media type as artifactType).
    EXTRA=$(jq -cn --argjson s "$SUBJ" '{subject: $s, annotations: {"org.example.kind": "sig"}}') \
        image_manifest "$WORK/a2" application/vnd.example.sig.config.v1+json "$WORK/sigcfg" \
        application/vnd.example.sig.v1 "$WORK/sig"
    DA2=$(dgst "$WORK/a2")
    req PUT "/v2/$APP/manifests/$DA2" --data-binary "@$WORK/a2" -H "Content-Type: $MT_MAN"
    check_status 201 "PUT second artifact with subject"
    check_hdr OCI-Subject "$DM1" "PUT second artifact with subject"

    req GET "/v2/$APP/referrers/$DM1"
    check_status 200 "GET referrers"
    check_hdr Content-Type "$MT_IDX" "GET referrers"
    check_eq "2 $MT_IDX" "$(jq -r '"\(.schemaVersion) \(.mediaType)"' "$RB" 2>/dev/null)" "referrers is an image index"
    WANT=$(jq -cn --arg mt "$MT_MAN" --arg d1 "$DA1" --argjson s1 "$(stat -c %s "$WORK/a1")" \
        --arg d2 "$DA2" --argjson s2 "$(stat -c %s "$WORK/a2")" \
        '[{mediaType: $mt, digest: $d1, size: $s1, artifactType: "application/vnd.example.sbom.v1",
           annotations: {"org.example.kind": "sbom"}},
          {mediaType: $mt, digest: $d2, size: $s2, artifactType: "application/vnd.example.sig.config.v1+json",
           annotations: {"org.example.kind": "sig"}}] | sort_by(.digest)')
    check_eq "$WANT" "$(jq -c '.manifests | sort_by(.digest)' "$RB" 2>/dev/null)" "referrers descriptors"

    req GET "/v2/$APP/referrers/$DM1?artifactType=application/vnd.example.sbom.v1"
    check_status 200 "GET referrers filtered by artifactType"
    check_hdr OCI-Filters-Applied artifactType "GET referrers filtered by artifactType"
    check_eq "[\"$DA1\"]" "$(jq -c '[.manifests[].digest]' "$RB" 2>/dev/null)" "filtered referrers"
    req GET "/v2/$APP/referrers/$DM1?artifactType=application/vnd.example.none"
    check_status 200 "GET referrers filtered to nothing"
    check_eq "[]" "$(jq -c '.manifests' "$RB" 2>/dev/null)" "referrers filtered to nothing"

    # Unknown subject: 200 with an empty index (MUST NOT be 404).
    req GET "/v2/$APP/referrers/$(dgst "$WORK/lmissing")"
    check_status 200 "referrers of an unknown digest"
    check_hdr Content-Type "$MT_IDX" "referrers of an unknown digest"
    check_eq "[]" "$(jq -c '.manifests' "$RB" 2>/dev/null)" "referrers of an unknown digest"
    req GET "/v2/$APP/referrers/sha256:nothex"
    check_status 400 "referrers with an invalid digest"

    # A subject that does not exist (yet) MUST be accepted.
    rand_file "$WORK/ghost" 32
    GHOST=$(desc "$MT_MAN" "$WORK/ghost")
    EXTRA=$(jq -cn --argjson s "$GHOST" '{artifactType: "application/vnd.example.sbom.v1", subject: $s}') \
        image_manifest "$WORK/a3" "$MT_EMPTY" "$WORK/empty" application/vnd.example.sbom.layer.v1 "$WORK/sbom"
    DA3=$(dgst "$WORK/a3")
    req PUT "/v2/$APP/manifests/$DA3" --data-binary "@$WORK/a3" -H "Content-Type: $MT_MAN"
    check_status 201 "PUT artifact whose subject does not exist"
    check_hdr OCI-Subject "$(dgst "$WORK/ghost")" "PUT artifact whose subject does not exist"
    req GET "/v2/$APP/referrers/$(dgst "$WORK/ghost")"
    check_eq "[\"$DA3\"]" "$(jq -c '[.manifests[].digest]' "$RB" 2>/dev/null)" "referrers of a missing subject"

    # A deleted referrer leaves the list.
    req DELETE "/v2/$APP/manifests/$DA2"
    check_status 202 "DELETE a referrer"
    req GET "/v2/$APP/referrers/$DM1"
    check_eq "[\"$DA1\"]" "$(jq -c '[.manifests[].digest]' "$RB" 2>/dev/null)" "referrers after deleting one"
fi

# ---------------------------------------------------------------------------
# Docker v2 schema 2 manifest and manifest list, with their media types.
D=mf/docker
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/dcfg"
for f in dcfg l1; do put_blob "$D" "$WORK/$f"; done
MT=$MT_D_MAN image_manifest "$WORK/dm" "$MT_D_CFG" "$WORK/dcfg" "$MT_D_LAYER" "$WORK/l1"
DDM=$(dgst "$WORK/dm")
req PUT "/v2/$D/manifests/single" --data-binary "@$WORK/dm" -H "Content-Type: $MT_D_MAN"
check_status 201 "PUT Docker v2s2 manifest"
check_hdr Docker-Content-Digest "$DDM" "PUT Docker v2s2 manifest"
req GET "/v2/$D/manifests/single" -H "Accept: $MT_D_MAN"
check_status 200 "GET Docker v2s2 manifest"
check_hdr Content-Type "$MT_D_MAN" "GET Docker v2s2 manifest"
check_body_file "$WORK/dm" "GET Docker v2s2 manifest"
index_of "$WORK/dl" "$MT_D_LIST" "$MT_D_MAN" "$WORK/dm"
req PUT "/v2/$D/manifests/list" --data-binary "@$WORK/dl" -H "Content-Type: $MT_D_LIST"
check_status 201 "PUT Docker manifest list"
check_hdr Docker-Content-Digest "$(dgst "$WORK/dl")" "PUT Docker manifest list"
req GET "/v2/$D/manifests/list" -H "Accept: $MT_D_LIST"
check_status 200 "GET Docker manifest list"
check_hdr Content-Type "$MT_D_LIST" "GET Docker manifest list"
check_body_file "$WORK/dl" "GET Docker manifest list"
req HEAD "/v2/$D/manifests/list" -H "Accept: $MT_D_LIST"
check_hdr Content-Type "$MT_D_LIST" "HEAD Docker manifest list"

# An artifact with a custom config media type and custom layer type.
X=mf/artifact
printf '{"anything":"goes"}' >"$WORK/xcfg"
printf 'artifact payload' >"$WORK/xdata"
for f in xcfg xdata; do put_blob "$X" "$WORK/$f"; done
image_manifest "$WORK/xm" application/vnd.example.config.v1+json "$WORK/xcfg" \
    application/vnd.example.data.v1.tar "$WORK/xdata"
req PUT "/v2/$X/manifests/v1" --data-binary "@$WORK/xm" -H "Content-Type: $MT_MAN"
check_status 201 "PUT artifact with a custom config media type"
req GET "/v2/$X/manifests/v1" -H "Accept: $MT_MAN"
check_status 200 "GET artifact with a custom config media type"
check_hdr Content-Type "$MT_MAN" "GET artifact with a custom config media type"
check_body_file "$WORK/xm" "GET artifact with a custom config media type"

# ---------------------------------------------------------------------------
# Catalog: sorted, n/last, Link rel="next". Repositories known now: mf/app,
# mf/tags, mf/docker, mf/artifact; mf/other holds blobs but no manifest (its
# manifest push failed), so it is no repository (distribution lists it).
OTHER=""
is_dist && OTHER='"mf/other",'
req GET /v2/_catalog
check_status 200 "GET /v2/_catalog"
ALL=$(jq -c '.repositories' "$RB" 2>/dev/null || true)
check_eq "[\"mf/app\",\"mf/artifact\",\"mf/docker\",$OTHER\"mf/tags\"]" "$ALL" "catalog"
req GET "/v2/_catalog?n=2"
check_status 200 "catalog n=2"
check_eq '["mf/app","mf/artifact"]' "$(jq -c .repositories "$RB" 2>/dev/null)" "catalog n=2"
NEXT=$(link_next)
check_true "catalog n=2 has Link rel=next (got '$(hdr Link)')" test -n "$NEXT"
check_eq /v2/_catalog "${NEXT%%\?*}" "catalog Link path"
check_eq 2 "$(qparam "$NEXT" n)" "catalog Link n"
check_eq mf/artifact "$(qparam "$NEXT" last | sed 's/%2[Ff]/\//g')" "catalog Link last"
if [ -n "$NEXT" ]; then
    req GET "$(loc_url "$NEXT")"
    if is_dist; then
        check_eq '["mf/docker","mf/other"]' "$(jq -c .repositories "$RB" 2>/dev/null)" "catalog page 2 via Link"
        NEXT=$(link_next)
        req GET "$(loc_url "$NEXT")"
        check_eq '["mf/tags"]' "$(jq -c .repositories "$RB" 2>/dev/null)" "catalog page 3 via Link"
    else
        check_eq '["mf/docker","mf/tags"]' "$(jq -c .repositories "$RB" 2>/dev/null)" "catalog page 2 via Link"
    fi
    check_hdr Link "" "last catalog page has no Link"
fi
req GET "/v2/_catalog?n=10&last=mf/docker"
check_eq "[$OTHER\"mf/tags\"]" "$(jq -c .repositories "$RB" 2>/dev/null)" "catalog n=10&last=mf/docker"
check_hdr Link "" "catalog page reaching the end has no Link"
req GET /v2/mf/other/tags/list
if ! is_dist; then
    check_status 404 "tags of mf/other (blobs, no manifest)"
    check_eq NAME_UNKNOWN "$(err_codes)" "tags of mf/other: code"
fi

api_done
