# SPDX-License-Identifier: Apache-2.0
# test_copy.sh - `pullcache copy` between Debian's docker-registry, pullcache
# and OCI layouts: two-platform OCI and Docker images copied both ways with
# identical digests, a second copy that sends nothing, layouts as source and
# destination, a cross-repository mount, --platform, referrers (the API on
# pullcache, the sha256-<hex> tag schema on docker-registry), a destination
# killed mid-copy (ridden through with a resumed upload; and restarted after
# a failed copy without re-sending completed blobs), and bad input (unknown
# image, missing tag, wrong credentials at a token-auth source and a basic-auth
# destination, a refused media type): one line,
# non-zero exit, no tag at the destination.
. "$(dirname "$0")/lib.sh"
clients_init

P=$PULLCACHE
PC=127.0.0.1:$PC_PORT
DIST=127.0.0.1:$DIST_PORT
FAKE_PORT=5002
TOKEN_PORT=5003

mkimages "$WORK/img" seedA 4
dist_start "$WORK/dist"
pc_start "$WORK/pc"
TAGS="oci-index docker-list oci-single docker-single"
for t in $TAGS; do dist_push "$WORK/img" "$t" "test/img:$t"; done

# digest_at HOST REPO REF: Docker-Content-Digest of a manifest HEAD ("" unless 200).
digest_at() {
    local h=$WORK/dg.h code
    code=$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" -D "$h" -o /dev/null -w '%{http_code}' \
        "http://$1/v2/$2/manifests/$3") || true
    [ "$code" = 200 ] && reg_header "$h" Docker-Content-Digest || true
}

# children_present HOST REPO DIGEST: every child of an index is at HOST by digest.
children_present() {
    local f=$WORK/idx.json
    curl -sSf -H "Accept: $MANIFEST_ACCEPT" -o "$f" "http://$1/v2/$2/manifests/$3" ||
        fail "GET $1/$2@$3"
    for c in $(jq -r '.manifests[]?.digest' "$f"); do
        expect_eq "$c" "$(digest_at "$1" "$2" "$c")" "child $c of $3 at $1/$2"
    done
}

# copyj NAME ARGS...: run pullcache copy --json, keep stdout in $WORK/NAME.json and
# stderr in $WORK/NAME.err; the exit code in $RC.
copyj() {
    local name=$1
    shift
    RC=0
    "$P" copy --plain-http --json "$@" >"$WORK/$name.json" 2>"$WORK/$name.err" || RC=$?
}
jf() { jq -r "$2" "$WORK/$1.json"; }

echo "--- docker-registry -> pullcache -> docker-registry, digests unchanged"
for t in $TAGS; do
    want=$(img_digest "$WORK/img" "$t")
    copyj "d2p-$t" "$DIST/test/img:$t" "$PC/mirror/img"
    expect_eq 0 "$RC" "copy $t docker-registry -> pullcache (err: $(cat "$WORK/d2p-$t.err"))"
    expect_eq "$want" "$(digest_at "$PC" mirror/img "$t")" "$t digest at pullcache"
    expect_eq "$want" "$(jf "d2p-$t" .digest)" "$t digest in the JSON"
    children_present "$PC" mirror/img "$want"
    copyj "p2d-$t" "$PC/mirror/img:$t" "$DIST/back/img:$t"
    expect_eq 0 "$RC" "copy $t pullcache -> docker-registry (err: $(cat "$WORK/p2d-$t.err"))"
    expect_eq "$want" "$(digest_at "$DIST" back/img "$t")" "$t digest back at docker-registry"
    children_present "$DIST" back/img "$want"
done
expect_eq '["linux/amd64","linux/arm64/v8"]' "$(jq -c .platforms "$WORK/d2p-oci-index.json")" "platforms"
expect_eq 7 "$(jf d2p-oci-index .blobs)" "blobs of oci-index"

echo "--- a second copy sends nothing and says so"
copyj again "$DIST/test/img:oci-index" "$PC/mirror/img"
expect_eq 0 "$RC" "second copy"
expect_eq "0 0 7 false" "$(jf again '"\(.bytes) \(.blobs) \(.blobs_skipped) \(.copied)"')" \
    "second copy: bytes blobs skipped copied"
"$P" copy --plain-http "$DIST/test/img:oci-index" "$PC/mirror/img" >"$WORK/again.txt"
grep -q "nothing to copy" "$WORK/again.txt" || fail "second copy does not say so: $(cat "$WORK/again.txt")"

echo "--- OCI layouts as destination and source"
copyj tolay "$PC/mirror/img:docker-list" "oci:$WORK/lay"
expect_eq 0 "$RC" "copy into a layout (err: $(cat "$WORK/tolay.err"))"
want=$(img_digest "$WORK/img" docker-list)
expect_eq "$want" "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "docker-list") | .digest' "$WORK/lay/index.json")" "layout index.json names docker-list"
for h in $(find "$WORK/lay/blobs/sha256" -type f -printf '%f\n'); do
    expect_eq "$h" "$(sha256sum "$WORK/lay/blobs/sha256/$h" | cut -d' ' -f1)" "layout blob $h"
done
copyj fromlay "oci:$WORK/lay:docker-list" "$DIST/fromlay/img"
expect_eq 0 "$RC" "copy from a layout (err: $(cat "$WORK/fromlay.err"))"
expect_eq "$want" "$(digest_at "$DIST" fromlay/img docker-list)" "digest after layout -> docker-registry"
copyj fromimg "oci:$WORK/img:oci-index" "$PC/fromimg/img:v1"
expect_eq 0 "$RC" "copy from mkimage's layout"
expect_eq "$(img_digest "$WORK/img" oci-index)" "$(digest_at "$PC" fromimg/img v1)" "digest of mkimage's oci-index"

echo "--- cross-repository mount within one registry"
copyj mount "$PC/mirror/img:docker-list" "$PC/other/img:x"
expect_eq 0 "$RC" "copy within pullcache"
expect_eq "7 0 0" "$(jf mount '"\(.blobs_mounted) \(.blobs) \(.bytes)"')" "mounted blobs, uploads, bytes"
grep -q "POST /v2/other/img/blobs/uploads/?mount=sha256:" "$WORK/pullcache.log" ||
    grep -q "POST /v2/other/img/blobs/uploads/" "$WORK/pullcache.log" || fail "no mount request in the pullcache log"
expect_eq "$(img_digest "$WORK/img" docker-list)" "$(digest_at "$PC" other/img x)" "digest after the mount"
copyj dmount "$DIST/test/img:oci-single" "$DIST/dmount/img"
expect_eq 0 "$RC" "copy within docker-registry"
expect_eq "5 0" "$(jf dmount '"\(.blobs_mounted) \(.bytes)"')" "docker-registry mounted blobs, bytes"

echo "--- --platform"
copyj arm --platform linux/arm64 "$DIST/test/img:oci-index" "$PC/arm/img"
expect_eq 0 "$RC" "copy --platform linux/arm64"
child=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' \
    "$WORK/img/blobs/sha256/$(img_digest "$WORK/img" oci-index | cut -d: -f2)")
expect_eq "$child" "$(digest_at "$PC" arm/img oci-index)" "the arm64 image under the tag"
copyj s390 --platform linux/s390x "$DIST/test/img:oci-index" "$PC/s390/img"
expect_eq 5 "$RC" "copy --platform linux/s390x exit"

echo "--- referrers: the API at pullcache, the tag schema at docker-registry"
subject=$(img_digest "$WORK/img" oci-single)
printf '{}' >"$WORK/empty.json"
printf 'an sbom for %s\n' "$subject" >"$WORK/sbom.txt"
empty=$(REG=$PC reg_push_blob mirror/img "$WORK/empty.json")
sbom=$(REG=$PC reg_push_blob mirror/img "$WORK/sbom.txt")
jq -nc --arg s "$subject" --argjson ss "$(jq ".[\"oci-single\"].size" "$WORK/img/images.json")" \
    --arg e "$empty" --arg b "$sbom" --argjson bs "$(stat -c %s "$WORK/sbom.txt")" '
    {schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
     artifactType: "application/vnd.example.sbom.v1",
     config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2},
     layers: [{mediaType: "text/plain", digest: $b, size: $bs}],
     subject: {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $s, size: $ss},
     annotations: {"org.example.kind": "sbom"}}' | tr -d '\n' >"$WORK/sbom.manifest"
ref=sha256:$(sha256sum "$WORK/sbom.manifest" | cut -d' ' -f1)
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
    --data-binary "@$WORK/sbom.manifest" "http://$PC/v2/mirror/img/manifests/$ref")
expect_eq 201 "$code" "push the sbom referrer to pullcache"
copyj refs --referrers "$PC/mirror/img:oci-single" "$DIST/refs/img"
expect_eq 0 "$RC" "copy --referrers pullcache -> docker-registry (err: $(cat "$WORK/refs.err"))"
expect_eq 1 "$(jf refs .referrers)" "referrers copied"
expect_eq "$ref" "$(digest_at "$DIST" refs/img "$ref")" "the referrer at docker-registry"
curl -sSf -H "Accept: $MANIFEST_ACCEPT" -o "$WORK/reftag.json" \
    "http://$DIST/v2/refs/img/manifests/sha256-${subject#sha256:}" || fail "no referrers tag at docker-registry"
expect_eq "$ref application/vnd.example.sbom.v1" \
    "$(jq -r '.manifests[0] | "\(.digest) \(.artifactType)"' "$WORK/reftag.json")" "referrers tag index"
copyj refs2 --referrers "$DIST/refs/img:oci-single" "$PC/refs2/img"
expect_eq 0 "$RC" "copy --referrers docker-registry -> pullcache (err: $(cat "$WORK/refs2.err"))"
expect_eq 1 "$(jf refs2 .referrers)" "referrers found through the tag schema"
expect_eq "$ref" "$(curl -sSf "http://$PC/v2/refs2/img/referrers/$subject" | jq -r '.manifests[0].digest')" \
    "pullcache's referrers API lists the copy"

echo "--- a destination killed mid-copy, ridden through: the upload resumes"
mkimages "$WORK/big" seedB 64
cat >"$WORK/slow.json" <<'JSON'
{"description": "big blobs at 8 MiB/s", "rules": [
  {"id": "slow", "method": "GET", "kind": "blob", "min_size": 1048576, "reply": {"rate": 8388608}}]}
JSON
fake_start "$WORK/slow.json" "$FAKE_PORT" - - --repo test/big="$WORK/big"
big=$(img_digest "$WORK/big" oci-single)
bigsize=$(jq -r '.layers | map(.size) | max' "$WORK/big/blobs/sha256/${big#sha256:}")
# (a pullcache restarted on its data directory, whose upload files show the
# copy is under way: not with in-memory or S3 + PostgreSQL storage)
if pc_on_disk; then
    "$P" copy --plain-http --json --chunk-size 16 --concurrency 1 \
        "127.0.0.1:$FAKE_PORT/test/big:oci-single" "$PC/big/img" >"$WORK/ride.json" 2>"$WORK/ride.err" &
    copy_pid=$!
    PIDS+=("$copy_pid")
    # wait until pullcache holds more than one chunk of the big upload
    for _ in $(seq 600); do
        n=$(find "$WORK/pc/uploads" -type f -size +20M 2>/dev/null | wc -l || true)
        [ "$n" -gt 0 ] && break
        kill -0 "$copy_pid" 2>/dev/null || fail "the copy ended before the kill: $(cat "$WORK/ride.err")"
        sleep 0.05
    done
    [ "$n" -gt 0 ] || fail "no upload in progress at pullcache"
    pc_kill
    pc_start "$WORK/pc"
    rc=0
    wait "$copy_pid" || rc=$?
    expect_eq 0 "$rc" "ridden-through copy exit (err: $(cat "$WORK/ride.err"))"
    expect_eq "$big" "$(digest_at "$PC" big/img oci-single)" "digest after the ride-through"
    [ "$(jq .retries "$WORK/ride.json")" -ge 1 ] || fail "no retry counted: $(cat "$WORK/ride.json")"
    [ "$(jq .resumed "$WORK/ride.json")" -ge 1 ] || fail "the upload did not resume: $(cat "$WORK/ride.json")"
    total=$(jq .bytes_total "$WORK/ride.json")
    sent=$(jq .bytes "$WORK/ride.json")
    [ "$sent" -lt $((total + bigsize / 2)) ] || fail "resumed copy sent $sent bytes of $total"
else
    echo "skip: the ride-through of a pullcache restart (no upload files on disk under $PC_STORAGE storage)"
fi

echo "--- a destination killed mid-copy, copy restarted: completed blobs are not re-sent"
copyj killed --retries 1 --concurrency 1 --chunk-size 16 "127.0.0.1:$FAKE_PORT/test/big:oci-index" "$DIST/big/img" &
copy_pid=$!
PIDS+=("$copy_pid")
for _ in $(seq 600); do
    n=$(find "$WORK/dist/docker/registry/v2/repositories/big/img/_uploads" -name data -size +20M 2>/dev/null | wc -l || true)
    [ "$n" -gt 0 ] && break
    kill -0 "$copy_pid" 2>/dev/null || fail "the copy ended before the kill"
    sleep 0.05
done
[ "$n" -gt 0 ] || fail "no upload in progress at docker-registry"
dist_kill
wait "$copy_pid" || true
RC=$(jq -r 'if .error then 3 else 0 end' "$WORK/killed.json")
expect_eq 3 "$RC" "the copy fails when the destination stays dead"
expect_eq "null" "$(jf killed .digest)" "no digest reported for a failed copy"
done1=$(jf killed .blobs)
dist_start "$WORK/dist"
expect_eq "" "$(digest_at "$DIST" big/img oci-index)" "no tag after the failed copy"
copyj restarted "127.0.0.1:$FAKE_PORT/test/big:oci-index" "$DIST/big/img"
expect_eq 0 "$RC" "restarted copy (err: $(cat "$WORK/restarted.err"))"
expect_eq "$(img_digest "$WORK/big" oci-index)" "$(digest_at "$DIST" big/img oci-index)" "digest after the restart"
[ "$(jf restarted .blobs_skipped)" -ge "$done1" ] || fail "restart re-sent completed blobs: $(cat "$WORK/restarted.json")"
[ "$(jf restarted .bytes)" -lt "$(jf restarted .bytes_total)" ] || fail "restart sent everything again"
fake_stop "$FAKE_PORT"

echo "--- bad input: one line, non-zero exit, nothing tagged"
# one_line NAME WANT_RC PATTERN DEST_HOST DEST_REPO DEST_TAG
one_line() {
    expect_eq "$2" "$RC" "$1 exit"
    expect_eq 1 "$(wc -l <"$WORK/$1.err")" "$1: stderr lines ($(cat "$WORK/$1.err"))"
    grep -q "$3" "$WORK/$1.err" || fail "$1: '$3' not in: $(cat "$WORK/$1.err")"
    expect_eq "" "$(digest_at "$4" "$5" "$6")" "$1: destination tag"
}
copyj noimage "$DIST/test/nope:1" "$PC/bad/img"
one_line noimage 3 "test/nope:1 -> .*404" "$PC" bad/img 1
copyj notag "$DIST/test/img:nope" "$PC/bad/img"
one_line notag 3 "test/img:nope -> .*MANIFEST_UNKNOWN" "$PC" bad/img nope
# a layout is a local directory: what it lacks is a local failure (exit 1), like a missing one
copyj laynotag "oci:$WORK/lay:nope" "$PC/bad/img"
one_line laynotag 1 "has no image named 'nope'" "$PC" bad/img 1
copyj laymany "oci:$WORK/img" "$PC/bad/img"
one_line laymany 1 "holds [0-9]* images; name one" "$PC" bad/img 1
copyj laynone "oci:$WORK/no-such-layout:1" "$PC/bad/img"
one_line laynone 1 "no-such-layout" "$PC" bad/img 1
fake_start token_auth "$FAKE_PORT" "$TOKEN_PORT" - --repo test/img="$WORK/img"
RC=0
echo wrongpass | "$P" copy --plain-http --json --username fakeuser --password-stdin \
    "127.0.0.1:$FAKE_PORT/test/img:oci-index" "$PC/bad/img" >"$WORK/badcred.json" 2>"$WORK/badcred.err" || RC=$?
one_line badcred 3 "test/img:oci-index -> .*401" "$PC" bad/img oci-index
RC=0
echo fakepass | "$P" copy --plain-http --json --username fakeuser --password-stdin \
    "127.0.0.1:$FAKE_PORT/test/img:oci-index" "$DIST/goodcred/img" >"$WORK/goodcred.json" 2>"$WORK/goodcred.err" || RC=$?
expect_eq 0 "$RC" "copy with the right credentials (err: $(cat "$WORK/goodcred.err"))"
fake_stop "$FAKE_PORT"
# a destination with basic auth: docker-registry with an htpasswd file
AUTH_PORT=5004
htpasswd -Bbc "$WORK/htpasswd" pushuser pushpass 2>/dev/null
mkdir -p "$WORK/dist-auth"
cat >"$WORK/dist-auth.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/dist-auth
http:
  addr: 127.0.0.1:$AUTH_PORT
  secret: pullcache-e2e
auth:
  htpasswd:
    realm: pullcache-e2e
    path: $WORK/htpasswd
YML
env -u REGISTRY_AUTH_FILE docker-registry serve "$WORK/dist-auth.yml" >>"$WORK/dist-auth.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$AUTH_PORT/v2/" "$!"
RC=0
echo wrong | "$P" copy --plain-http --json --username pushuser --password-stdin \
    "$PC/mirror/img:oci-index" "127.0.0.1:$AUTH_PORT/auth/img" >"$WORK/badpush.json" 2>"$WORK/badpush.err" || RC=$?
expect_eq 3 "$RC" "push with a wrong password"
expect_eq 1 "$(wc -l <"$WORK/badpush.err")" "badpush: stderr lines ($(cat "$WORK/badpush.err"))"
grep -q "mirror/img:oci-index -> .*destination: 401.*credentials" "$WORK/badpush.err" ||
    fail "badpush message: $(cat "$WORK/badpush.err")"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}' "$AUTH_PORT" "$(printf pushuser:pushpass | base64)" >"$WORK/auth.json"
copyj goodpush "$PC/mirror/img:oci-index" "127.0.0.1:$AUTH_PORT/auth/img"
expect_eq 0 "$RC" "push with the auth file's credentials (err: $(cat "$WORK/goodpush.err"))"
expect_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$AUTH_PORT/v2/auth/img/manifests/oci-index")" \
    "the destination wants credentials"
expect_eq "$(img_digest "$WORK/img" oci-index)" \
    "$(curl -sS -I -u pushuser:pushpass -H "Accept: $MANIFEST_ACCEPT" "http://127.0.0.1:$AUTH_PORT/v2/auth/img/manifests/oci-index" |
        tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }')" "digest behind basic auth"
echo '{"auths":{}}' >"$WORK/auth.json"
cat >"$WORK/artifact.json" <<'JSON'
{"description": "an old OCI artifact manifest", "strict_accept": "off",
 "content": {"test/art": {"manifests": {"v1": {"mediaType": "application/vnd.oci.artifact.manifest.v1+json",
   "body": {"mediaType": "application/vnd.oci.artifact.manifest.v1+json",
            "artifactType": "application/vnd.example.thing", "blobs": []}}}}}}
JSON
fake_start "$WORK/artifact.json" "$FAKE_PORT"
for dst in "$PC" "$DIST"; do
    copyj refused "127.0.0.1:$FAKE_PORT/test/art:v1" "$dst/bad/art"
    one_line refused 3 "test/art:v1 -> .*application/vnd.oci.artifact.manifest.v1+json.*destination: 4" \
        "$dst" bad/art v1
done
expect_eq destination "$(jf refused .error.side)" "refused: error side"
echo "PASS"
