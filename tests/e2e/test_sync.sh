# SPDX-License-Identifier: Apache-2.0
# test_sync.sh - `pullcache sync FILE` from Debian's docker-registry into
# pullcache: exact tags, a regex, a semver range with newest N; only the
# selected tags arrive, digests unchanged; a second run copies nothing, says
# so, sends 0 bytes and GETs no manifest or blob at the source; a bad file is
# refused with its key named; a source whose ratelimit headers report fewer
# pulls than min_remaining makes sync pause (no manifest GET) until the budget
# is back, and --once --no-wait stops with exit 6 instead; mappings with
# platforms (one child, several) and referrers: the first run copies, the
# state file records it, a second run sends only HEADs (and a referrers
# listing) to the source, no manifest GET; a new referrer at the source and a
# destination tag changed behind sync's back are each copied again.
. "$(dirname "$0")/lib.sh"
clients_init

P=$PULLCACHE
PC=127.0.0.1:$PC_PORT
DIST=127.0.0.1:$DIST_PORT
FAKE_PORT=5002

mkimages "$WORK/img" seedS 2
dist_start "$WORK/dist"
pc_start "$WORK/pc"
for t in oci-index docker-list oci-single; do dist_push "$WORK/img" "$t" "test/img:$t"; done
# version tags: the same image under several names (a registry-side copy)
for t in 1.24 1.25 1.26.1 1.27 1.27-alpine 2.0; do
    sk copy -q --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        "docker://$DIST/test/img:oci-single" "docker://$DIST/test/img:$t" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo tag $t"
done

digest_at() {
    local h=$WORK/dg.h code
    code=$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" -D "$h" -o /dev/null -w '%{http_code}' \
        "http://$1/v2/$2/manifests/$3") || true
    [ "$code" = 200 ] && reg_header "$h" Docker-Content-Digest || true
}
tags_at() { curl -sS "http://$PC/v2/$1/tags/list" | jq -r '(.tags // []) | sort | join(" ")'; }

cat >"$WORK/sync.yml" <<YML
interval: 3600
mappings:
  - source: $DIST/test/img
    destination: $PC/mirror/img
    tags: [oci-index, docker-list]
  - source: $DIST/test/img
    destination: $PC/semver/img
    semver: ">=1.25 <2"
    newest: 2
  - source: $DIST/test/img
    destination: $PC/re/img
    regex: '^(2\.|1\.24)'
YML

echo "--- first run: the selected tags only"
"$P" sync --plain-http --once --json "$WORK/sync.yml" >"$WORK/run1.json" 2>"$WORK/run1.err" ||
    fail "first sync: $(cat "$WORK/run1.err")"
expect_eq "6 0 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed)"' "$WORK/run1.json")" "run 1 copied/up to date/failed"
expect_eq "docker-list oci-index" "$(tags_at mirror/img)" "exact tags"
expect_eq "1.26.1 1.27" "$(tags_at semver/img)" "semver >=1.25 <2, newest 2"
expect_eq "1.24 2.0" "$(tags_at re/img)" "regex"
for t in oci-index docker-list; do
    expect_eq "$(img_digest "$WORK/img" "$t")" "$(digest_at "$PC" mirror/img "$t")" "$t digest"
done
expect_eq "$(img_digest "$WORK/img" oci-single)" "$(digest_at "$PC" semver/img 1.27)" "1.27 digest"
[ "$(jq .bytes "$WORK/run1.json")" -gt 0 ] || fail "run 1 sent no bytes"

echo "--- second run: nothing to copy, 0 bytes, no GET at the source"
[ "$(grep -c '"GET /v2/test/img/manifests/' "$WORK/dist.log")" -gt 0 ] ||
    fail "docker-registry's access log shows no manifest GET of run 1: cannot count"
before=$(wc -l <"$WORK/dist.log")
"$P" sync --plain-http --once "$WORK/sync.yml" >"$WORK/run2.txt" 2>"$WORK/run2.err" ||
    fail "second sync: $(cat "$WORK/run2.err")"
grep -q "^sync: nothing to copy: 6 tags up to date (0 B sent)" "$WORK/run2.txt" ||
    fail "second run does not say nothing to copy: $(cat "$WORK/run2.txt")"
"$P" sync --plain-http --once --json "$WORK/sync.yml" >"$WORK/run3.json" 2>"$WORK/run3.err" ||
    fail "third sync"
expect_eq "0 6 0 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed) \(.bytes)"' "$WORK/run3.json")" \
    "run 3 copied/up to date/failed/bytes"
gets=$(tail -n +"$((before + 1))" "$WORK/dist.log" | grep -c '"GET /v2/test/img/\(manifests\|blobs\)/' || true)
expect_eq 0 "$gets" "manifest and blob GETs at the source during runs 2 and 3"

echo "--- a new tag at the source is picked up, only it is copied"
sk copy -q --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
    "docker://$DIST/test/img:oci-index" "docker://$DIST/test/img:1.28" >>"$WORK/clients.log" 2>&1
"$P" sync --plain-http --once --json "$WORK/sync.yml" >"$WORK/run4.json" 2>"$WORK/run4.err" || fail "run 4"
expect_eq "1 5 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed)"' "$WORK/run4.json")" "run 4"
expect_eq "1.27 1.28" "$(jq -r '[.tags[] | select(.destination | endswith("semver/img")) | .tag] | sort | join(" ")' "$WORK/run4.json")" "semver tags considered"

echo "--- a bad file is refused, the key named"
printf 'mappings:\n  - source: %s/test/img\n    destination: %s/x/img\n    tag: [a]\n' "$DIST" "$PC" >"$WORK/bad.yml"
rc=0
"$P" sync --plain-http --once "$WORK/bad.yml" 2>"$WORK/bad.err" || rc=$?
expect_eq 1 "$rc" "bad file exit"
grep -q "bad.yml" "$WORK/bad.err" && grep -q "tag" "$WORK/bad.err" || fail "bad file message: $(cat "$WORK/bad.err")"

echo "--- a failing mapping: named, exit 3, the others still run"
cat >"$WORK/missing.yml" <<YML
mappings:
  - source: $DIST/test/nope
    destination: $PC/nope/img
    tags: ["1"]
  - source: $DIST/test/img
    destination: $PC/after/img
    tags: [oci-single]
YML
rc=0
"$P" sync --plain-http --once "$WORK/missing.yml" >"$WORK/missing.txt" 2>&1 || rc=$?
expect_eq 3 "$rc" "failing mapping exit"
grep -q "test/nope:1 .*failed: .*404" "$WORK/missing.txt" || fail "failure not named: $(cat "$WORK/missing.txt")"
expect_eq "$(img_digest "$WORK/img" oci-single)" "$(digest_at "$PC" after/img oci-single)" "the next mapping ran"

echo "--- platforms and referrers: the second run sends the source HEADs only"
# a referrer at the source: made at pullcache, copied into docker-registry
# (which keeps it under the sha256-<hex> tag schema)
"$P" copy --plain-http "$DIST/test/img:oci-single" "$PC/refsrc/img" >>"$WORK/clients.log" 2>&1 ||
    fail "copy oci-single into pullcache"
subject=$(img_digest "$WORK/img" oci-single)
subject_size=$(jq ".[\"oci-single\"].size" "$WORK/img/images.json")
printf '{}' >"$WORK/empty.json"
empty=$(REG=$PC reg_push_blob refsrc/img "$WORK/empty.json")
# push_referrer N: an SBOM number N for oci-single at pullcache, then copied to docker-registry
push_referrer() {
    local b
    printf 'sbom %s of %s\n' "$1" "$subject" >"$WORK/sbom$1.txt"
    b=$(REG=$PC reg_push_blob refsrc/img "$WORK/sbom$1.txt")
    jq -nc --arg s "$subject" --argjson ss "$subject_size" --arg e "$empty" --arg b "$b" \
        --argjson bs "$(stat -c %s "$WORK/sbom$1.txt")" --arg n "$1" '
        {schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
         artifactType: "application/vnd.example.sbom.v1",
         config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2},
         layers: [{mediaType: "text/plain", digest: $b, size: $bs}],
         subject: {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $s, size: $ss},
         annotations: {"org.example.n": $n}}' | tr -d '\n' >"$WORK/sbom$1.manifest"
    expect_eq 201 "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT \
        -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary "@$WORK/sbom$1.manifest" \
        "http://$PC/v2/refsrc/img/manifests/$(sha "$WORK/sbom$1.manifest")")" "push referrer $1"
    "$P" copy --plain-http --referrers "$PC/refsrc/img:oci-single" "$DIST/refd/img" >>"$WORK/clients.log" 2>&1 ||
        fail "copy the referrers to docker-registry"
}
push_referrer 1
start1=$(wc -l <"$WORK/dist.log")
arm=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' \
    "$WORK/img/blobs/sha256/$(img_digest "$WORK/img" oci-index | cut -d: -f2)")
cat >"$WORK/plat.yml" <<YML
mappings:
  - source: $DIST/test/img
    destination: $PC/plat1/img
    tags: [oci-index]
    platforms: [linux/arm64]
  - source: $DIST/test/img
    destination: $PC/plat2/img
    tags: [oci-index, docker-list]
    platforms: [linux/amd64, linux/arm64]
  - source: $DIST/refd/img
    destination: $PC/refs/img
    tags: [oci-single]
    referrers: true
YML
"$P" sync --plain-http --once --json "$WORK/plat.yml" >"$WORK/plat1.json" 2>"$WORK/plat1.err" ||
    fail "platforms run 1: $(cat "$WORK/plat1.err")"
expect_eq "4 0 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed)"' "$WORK/plat1.json")" "platforms run 1"
expect_eq "$arm" "$(digest_at "$PC" plat1/img oci-index)" "the arm64 image under the tag"
expect_eq "$(img_digest "$WORK/img" docker-list)" "$(digest_at "$PC" plat2/img docker-list)" "both platforms: the list itself"
referrers_at() { curl -sS "http://$PC/v2/refs/img/referrers/$subject" | jq '.manifests | length'; }
expect_eq 1 "$(referrers_at)" "referrers copied"
jq -e '.version == 1 and (.tags | length) == 4' "$WORK/plat.yml.state" >/dev/null ||
    fail "state file: $(cat "$WORK/plat.yml.state" 2>&1)"
before=$(wc -l <"$WORK/dist.log")
[ "$(tail -n +"$((start1 + 1))" "$WORK/dist.log" | head -n "$((before - start1))" |
    grep -c '"GET /v2/[^ ]*/manifests/' || true)" -ge 4 ] || fail "run 1's manifest GETs are not in the log: cannot count"
"$P" sync --plain-http --once --json "$WORK/plat.yml" >"$WORK/plat2.json" 2>"$WORK/plat2.err" ||
    fail "platforms run 2: $(cat "$WORK/plat2.err")"
expect_eq "0 4 0 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed) \(.bytes)"' "$WORK/plat2.json")" "platforms run 2"
new_lines() { tail -n +"$((before + 1))" "$WORK/dist.log"; }
expect_eq 0 "$(new_lines | grep -c '"GET /v2/[^ ]*/manifests/' || true)" "manifest GETs at the source in run 2"
expect_eq 4 "$(new_lines | grep -c '"HEAD /v2/[^ ]*/manifests/\(oci-index\|docker-list\|oci-single\) ' || true)" \
    "tag HEADs at the source in run 2"
[ "$(new_lines | grep -c '"HEAD /v2/refd/img/manifests/sha256-' || true)" -ge 1 ] ||
    fail "run 2 did not look at the referrers: $(new_lines)"

echo "--- a new referrer at the source, a destination tag changed: copied again"
push_referrer 2
"$P" copy --plain-http "$DIST/test/img:oci-single" "$PC/plat1/img:oci-index" >>"$WORK/clients.log" 2>&1 ||
    fail "overwrite plat1/img:oci-index"
before=$(wc -l <"$WORK/dist.log")
"$P" sync --plain-http --once --json "$WORK/plat.yml" >"$WORK/plat3.json" 2>"$WORK/plat3.err" ||
    fail "platforms run 3: $(cat "$WORK/plat3.err")"
expect_eq "2 2 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed)"' "$WORK/plat3.json")" "platforms run 3"
expect_eq "plat1/img:oci-index refs/img:oci-single" \
    "$(jq -r '[.tags[] | select(.status == "copied") | "\(.destination | sub(".*:[0-9]+/"; "")):\(.tag)"] | sort | join(" ")' "$WORK/plat3.json")" \
    "what run 3 copied"
expect_eq "$arm" "$(digest_at "$PC" plat1/img oci-index)" "the arm64 image is back under the tag"
expect_eq 2 "$(referrers_at)" "the new referrer copied"
"$P" sync --plain-http --once --json --state "$WORK/other.state" "$WORK/plat.yml" >"$WORK/plat4.json" 2>"$WORK/plat4.err" ||
    fail "platforms run 4: $(cat "$WORK/plat4.err")"
expect_eq "4 0" "$(jq -r '"\(.copied) \(.up_to_date)"' "$WORK/plat4.json")" "--state elsewhere: nothing recorded there yet"
jq -e '(.tags | length) == 4' "$WORK/other.state" >/dev/null || fail "--state file: $(cat "$WORK/other.state" 2>&1)"

echo "--- budget: fewer pulls left than min_remaining pauses sync (no manifest GET)"
cat >"$WORK/low.json" <<'JSON'
{"description": "2 pulls left, a 2 s window", "ratelimit": {"limit": 100, "remaining": 2, "window": 2, "decrement": true}}
JSON
fake_start "$WORK/low.json" "$FAKE_PORT" - - --repo test/img="$WORK/img"
cat >"$WORK/budget.yml" <<YML
min_remaining: 5
mappings:
  - source: 127.0.0.1:$FAKE_PORT/test/img
    destination: $PC/budget/img
    tags: [oci-index]
YML
rc=0
"$P" sync --plain-http --once --no-wait "$WORK/budget.yml" >"$WORK/nowait.txt" 2>"$WORK/nowait.err" || rc=$?
expect_eq 6 "$rc" "--no-wait exit"
grep -q "2 pulls left, fewer than min_remaining 5; stopping" "$WORK/nowait.err" ||
    fail "--no-wait message: $(cat "$WORK/nowait.err")"
expect_eq 0 "$(fake_count "$FAKE_PORT" GET manifest)" "manifest GETs with --no-wait"

"$P" sync --plain-http --once --json "$WORK/budget.yml" >"$WORK/paused.json" 2>"$WORK/paused.err" &
sync_pid=$!
PIDS+=("$sync_pid")
for _ in $(seq 300); do
    grep -q "pausing until" "$WORK/paused.err" && break
    kill -0 "$sync_pid" 2>/dev/null || fail "sync ended instead of pausing: $(cat "$WORK/paused.err")"
    sleep 0.05
done
grep -q "2 pulls left, fewer than min_remaining 5; pausing until .* (2 s)" "$WORK/paused.err" ||
    fail "no pause message: $(cat "$WORK/paused.err")"
expect_eq 0 "$(fake_count "$FAKE_PORT" GET manifest)" "manifest GETs while paused"
expect_eq "" "$(digest_at "$PC" budget/img oci-index)" "nothing copied while paused"
# the budget comes back; sync resumes after its window and copies
fake_ratelimit "$FAKE_PORT" 100
rc=0
wait "$sync_pid" || rc=$?
expect_eq 0 "$rc" "paused sync exit (err: $(cat "$WORK/paused.err"))"
grep -q "checking the budget again" "$WORK/paused.err" || fail "no resume message"
expect_eq 1 "$(jq .copied "$WORK/paused.json")" "copied after the pause"
[ "$(jq '.paused >= 1' "$WORK/paused.json")" = true ] || fail "pause not counted: $(cat "$WORK/paused.json")"
expect_eq "$(img_digest "$WORK/img" oci-index)" "$(digest_at "$PC" budget/img oci-index)" "digest after the pause"
[ "$(fake_count "$FAKE_PORT" GET manifest)" -ge 1 ] || fail "no manifest GET after the pause"

echo "--- a source that wants credentials: the failure names the ones tried"
fake_stop "$FAKE_PORT"
fake_start token_auth "$FAKE_PORT" 5003 - --repo test/img="$WORK/img"
cat >"$WORK/auth.yml" <<YML
mappings:
  - source: 127.0.0.1:$FAKE_PORT/test/img
    destination: $PC/authsrc/img
    tags: [oci-index]
  - source: 127.0.0.1:$FAKE_PORT/test/img
    destination: $PC/authsrc/re
    regex: '^oci-'
YML
rc=0
"$P" sync --plain-http --once --json "$WORK/auth.yml" >"$WORK/syncauth.json" 2>"$WORK/syncauth.err" || rc=$?
expect_eq 3 "$rc" "sync from a source that refuses anonymous pulls"
expect_eq 2 "$(jq .failed "$WORK/syncauth.json")" "failed mappings (the tag list, the copy)"
expect_eq 2 "$(grep -o 'credentials tried at the source: anonymous' "$WORK/syncauth.json" | wc -l)" "failures naming the credentials" ||
    fail "both failures (tag list and copy) should name the credentials tried: $(cat "$WORK/syncauth.json" "$WORK/syncauth.err")"
rc=0
PULLCACHE_USERNAME=fakeuser PULLCACHE_PASSWORD=wrong \
    "$P" sync --plain-http --once --json "$WORK/auth.yml" >"$WORK/syncauth2.json" 2>"$WORK/syncauth2.err" || rc=$?
expect_eq 3 "$rc" "sync with a wrong password"
grep -q 'credentials tried at the source: environment' "$WORK/syncauth2.json" "$WORK/syncauth2.err" ||
    fail "a wrong password from the environment is not named: $(cat "$WORK/syncauth2.json" "$WORK/syncauth2.err")"
expect_eq "" "$(digest_at "$PC" authsrc/img oci-index)" "nothing copied without credentials"
echo "PASS"
