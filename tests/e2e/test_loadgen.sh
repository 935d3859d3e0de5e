#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_loadgen.sh - `pullcache loadgen` against a real docker-registry and the
# fake upstream's Docker Hub budget:
#   count       3 nodes x 5 pulls: 15 ok, bytes = 15 x (config + layers),
#               one manifest GET and five blob GETs per pull; two images x
#               2 nodes x 2 pulls = 8; no ratelimit headers at docker-registry
#   429         ratelimited_hub (100 manifest GETs, then 429): 120 pulls are
#               exactly 100 ok and 20 failed as 429 TOOMANYREQUESTS, blobs only
#               for the 100, ratelimit 100 before and 0 after (HEADs are free);
#               the same with --manifest-only and the human report, where
#               "429 TOOMANYREQUESTS: 20" is a line of its own
#   stopping    --duration ends a long run against slow blobs (stopped_by
#               duration, fewer pulls started than planned); SIGINT ends one
#               with the report and exit 130
#   terminal    the progress line is redrawn in place under a pseudo-terminal
#   usage       bad flags: exit 2
. "$(dirname "$0")/lib.sh"

command -v script >/dev/null || fail "script (util-linux) is not installed"

clients_init
IMG=$WORK/img
mkimages "$IMG" loadgen 1
dist_start "$WORK/dist"
dist_push "$IMG" oci-single test/app:oci-single
dist_push "$IMG" docker-list test/app:docker-list
R=127.0.0.1:$DIST_PORT/test/app

# lg OUT [args...]: run `pullcache loadgen`, stdout in OUT, stderr in OUT.err;
# print the exit status.
lg() {
    local out=$1 rc=0
    shift
    "$PULLCACHE" loadgen "$@" >"$out" 2>"$out.err" </dev/null || rc=$?
    echo "$rc"
}
has() { grep -F -- "$2" "$1" >/dev/null || fail "$(basename "$1") lacks '$2': $(cat "$1" "$1.err")"; }
blob() { echo "$IMG/blobs/sha256/${1#sha256:}"; }
single=$(img_digest "$IMG" oci-single)
SIZE=$(jq '[.config.size, .layers[].size] | add' "$(blob "$single")")

# ---- docker-registry: the count ---------------------------------------------------
rc=$(lg "$WORK/count.json" --plain-http --json --nodes 3 --pulls-per-node 5 "$R:oci-single")
expect_eq 0 "$rc" "3 x 5 exit status ($(cat "$WORK/count.json.err"))"
j=$WORK/count.json
expect_eq 15 "$(jq .pulls.planned "$j")" "planned pulls"
expect_eq 15 "$(jq .pulls.started "$j")" "started pulls"
expect_eq 15 "$(jq .pulls.ok "$j")" "ok pulls"
expect_eq 0 "$(jq .pulls.failed "$j")" "failed pulls"
expect_eq 0 "$(jq .toomanyrequests "$j")" "429s"
expect_eq "$((15 * SIZE))" "$(jq .bytes "$j")" "bytes = 15 x image size"
expect_eq 15 "$(jq .manifests "$j")" "manifest GETs"
expect_eq count "$(jq -r .stopped_by "$j")" "stopped_by"
expect_eq 3 "$(jq .concurrency "$j")" "default concurrency = nodes"
expect_eq null "$(jq -c .ratelimit.before "$j")" "no ratelimit headers at docker-registry"
jq -e '.latency_ms.p50 > 0 and .latency_ms.p50 <= .latency_ms.p95 and
       .latency_ms.p95 <= .latency_ms.p99 and .latency_ms.p99 <= .latency_ms.max' "$j" >/dev/null ||
    fail "latency percentiles out of order: $(jq -c .latency_ms "$j")"
[ ! -s "$WORK/count.json.err" ] || fail "stderr without a terminal: $(cat "$WORK/count.json.err")"

# two images (one an index: a manifest GET for it and one for the platform's image)
rc=$(lg "$WORK/two.json" --plain-http --json -n 2 -m 2 -c 8 --platform linux/amd64 \
    "$R:oci-single" "$R:docker-list")
expect_eq 0 "$rc" "two images exit status ($(cat "$WORK/two.json.err"))"
expect_eq 8 "$(jq .pulls.ok "$WORK/two.json")" "two images: ok pulls"
expect_eq 12 "$(jq .manifests "$WORK/two.json")" "two images: manifest GETs"
expect_eq 2 "$(jq .concurrency "$WORK/two.json")" "concurrency is capped by nodes"
# arm64 nodes: the index gives them its arm64 child; the amd64-only image fails for
# them (as it would on such a node), it is not pulled as amd64
rc=$(lg "$WORK/arm.json" --plain-http --json -n 2 -m 2 -c 8 --platform linux/arm64 \
    "$R:oci-single" "$R:docker-list")
expect_eq 4 "$(jq .pulls.ok "$WORK/arm.json")" "arm64 nodes: ok pulls (the index)"
expect_eq 4 "$(jq .pulls.failed "$WORK/arm.json")" "arm64 nodes: failed pulls (the amd64-only image)"

rc=$(lg "$WORK/count.txt" --plain-http -n 2 -m 2 "$R:oci-single")
expect_eq 0 "$rc" "human report exit status"
grep -x "429 TOOMANYREQUESTS: 0" "$WORK/count.txt" >/dev/null || fail "no 429 line: $(cat "$WORK/count.txt")"
has "$WORK/count.txt" "pulls:     4 started, 4 ok, 0 failed"
has "$WORK/count.txt" "the registry sends no ratelimit headers"

# ---- the fake Docker Hub budget ------------------------------------------------------
FP=5002
F=127.0.0.1:$FP/library/test
fake_start ratelimited_hub "$FP" "" "" --repo "library/test=$IMG"
rc=$(lg "$WORK/hub.json" --plain-http --json --nodes 4 --pulls-per-node 30 --concurrency 4 "$F:oci-single")
expect_eq 3 "$rc" "ratelimited_hub exit status ($(cat "$WORK/hub.json.err"))"
j=$WORK/hub.json
expect_eq 120 "$(jq .pulls.started "$j")" "hub: pulls started"
expect_eq 100 "$(jq .pulls.ok "$j")" "hub: ok pulls"
expect_eq 20 "$(jq .pulls.failed "$j")" "hub: failed pulls"
expect_eq 20 "$(jq .toomanyrequests "$j")" "hub: 429s"
expect_eq '[{"key":"429 TOOMANYREQUESTS","status":429,"code":"TOOMANYREQUESTS","count":20}]' \
    "$(jq -c '[.failures[] | del(.example)]' "$j")" "hub: failures by code"
jq -e '.failures[0].example | test("You have reached your pull rate limit")' "$j" >/dev/null ||
    fail "hub: the 429 example lacks Docker Hub's message: $(jq -c .failures "$j")"
expect_eq 100 "$(jq .ratelimit.before.remaining "$j")" "hub: remaining before"
expect_eq 100 "$(jq .ratelimit.before.limit "$j")" "hub: limit before"
expect_eq 21600 "$(jq .ratelimit.before.window "$j")" "hub: window"
expect_eq 0 "$(jq .ratelimit.after.remaining "$j")" "hub: remaining after"

# ---- a registry that wants credentials: the refusal names the ones tried -------------
fake_start token_auth 5004 5005 - --repo "library/test=$IMG"
rc=$(lg "$WORK/lgauth.txt" --plain-http --nodes 1 --pulls-per-node 1 "127.0.0.1:5004/library/test:oci-single")
expect_eq 3 "$rc" "loadgen against a registry refusing anonymous pulls"
grep -q "credentials tried: anonymous" "$WORK/lgauth.txt" || fail "the 401 does not name the credentials tried: $(cat "$WORK/lgauth.txt")"
rc=$(PULLCACHE_USERNAME=fakeuser PULLCACHE_PASSWORD=wrong lg "$WORK/lgauth.json" --plain-http --json --nodes 1 --pulls-per-node 1 "127.0.0.1:5004/library/test:oci-single")
expect_eq 3 "$rc" "loadgen with a wrong password"
expect_eq environment "$(jq -r '.failures[0].credentials_tried' "$WORK/lgauth.json")" "JSON: the credentials tried"
expect_eq "$((100 * SIZE))" "$(jq .bytes "$j")" "hub: bytes of the 100 ok pulls"
expect_eq 120 "$(fake_count "$FP" GET manifest)" "hub: manifest GETs at the fake"
expect_eq 2 "$(fake_count "$FP" HEAD manifest)" "hub: manifest HEADs (before and after)"
expect_eq 500 "$(fake_count "$FP" GET blob)" "hub: blob GETs (5 per ok pull)"

# again, manifests only, human report (the scenario switch resets the budget)
fake_scenario "$FP" ratelimited_hub
fake_reset_log "$FP"
rc=$(lg "$WORK/hub.txt" --plain-http --manifest-only -n 4 -m 30 -c 4 "$F:oci-single")
expect_eq 3 "$rc" "--manifest-only exit status"
grep -x "429 TOOMANYREQUESTS: 20" "$WORK/hub.txt" >/dev/null || fail "no '429 TOOMANYREQUESTS: 20' line: $(cat "$WORK/hub.txt")"
has "$WORK/hub.txt" "pulls:     120 started, 100 ok, 20 failed"
has "$WORK/hub.txt" "ratelimit: remaining 100 -> 0 (limit 100 per 21600 s, source 127.0.0.1)"
has "$WORK/hub.txt" "manifests only"
expect_eq 0 "$(fake_count "$FP" GET blob)" "--manifest-only: no blob GETs"

# ---- stopping: --duration and SIGINT ----------------------------------------------
fake_scenario "$FP" slow_blobs
rc=$(lg "$WORK/dur.json" --plain-http --json -n 2 -m 100000 --duration 2 "$F:oci-single")
expect_eq 0 "$rc" "--duration exit status ($(cat "$WORK/dur.json.err"))"
expect_eq duration "$(jq -r .stopped_by "$WORK/dur.json")" "--duration: stopped_by"
expect_eq 2 "$(jq .duration "$WORK/dur.json")" "--duration in the report"
jq -e '.pulls.started < .pulls.planned and .pulls.failed == 0 and
       .pulls.ok + .pulls.canceled == .pulls.started' "$WORK/dur.json" >/dev/null ||
    fail "--duration: counts $(jq -c .pulls "$WORK/dur.json")"

fake_reset_log "$FP"
"$PULLCACHE" loadgen --plain-http --json -n 2 -m 100000 "$F:oci-single" \
    >"$WORK/int.json" 2>"$WORK/int.json.err" </dev/null &
lpid=$!
for _ in $(seq 200); do # until the first blob GETs are under way
    [ "$(curl -sS "http://127.0.0.1:$FP/_fake/stats" | jq '.by_kind["GET blob"] // 0')" -gt 0 ] && break
    kill -0 "$lpid" 2>/dev/null || break
    sleep 0.1
done
kill -INT "$lpid"
rc=0
wait "$lpid" || rc=$?
expect_eq 130 "$rc" "SIGINT exit status ($(cat "$WORK/int.json.err"))"
expect_eq signal "$(jq -r .stopped_by "$WORK/int.json")" "SIGINT: stopped_by"
jq -e '.pulls.started < .pulls.planned' "$WORK/int.json" >/dev/null || fail "SIGINT: $(jq -c .pulls "$WORK/int.json")"

# ---- the progress line on a terminal ------------------------------------------------
TERM=xterm script -qfec "$PULLCACHE loadgen --plain-http -n 2 -m 100000 --duration 1 $F:oci-single" \
    /dev/null >"$WORK/tty.out" 2>&1 </dev/null || true
grep -F $'\r\033[Kloadgen ' "$WORK/tty.out" >/dev/null || fail "no progress line: $(cat -v "$WORK/tty.out")"
[ "$(grep -o $'\033\\[Kloadgen ' "$WORK/tty.out" | wc -l)" -ge 2 ] ||
    fail "progress line not redrawn: $(cat -v "$WORK/tty.out")"
grep -F "429 TOOMANYREQUESTS: 0" "$WORK/tty.out" >/dev/null || fail "no report under the terminal"

# ---- usage ------------------------------------------------------------------------------
usage() { # MESSAGE-PART ARGS...
    local want=$1
    shift
    rc=$(lg "$WORK/usage.out" "$@")
    expect_eq 2 "$rc" "exit status of loadgen $*"
    has "$WORK/usage.out.err" "$want"
}
usage "which IMAGE" --nodes 2
usage "--nodes wants a whole number" --nodes 0 "$R:oci-single"
usage "--nodes wants a whole number" --nodes x "$R:oci-single"
usage "--pulls-per-node wants a whole number" --pulls-per-node 0 "$R:oci-single"
usage "--concurrency wants a whole number" --concurrency 1000 "$R:oci-single"
usage "--duration wants a whole number" --duration -1 "$R:oci-single"
usage "--duration wants a whole number" --duration 1.5 "$R:oci-single"
usage "is not a platform" --platform amd64 "$R:oci-single"
usage "not an image reference" "Bad/Ref"
usage "--help" --bogus "$R:oci-single"
usage "--timeout wants whole seconds" --timeout 0 "$R:oci-single"
"$PULLCACHE" loadgen --help | grep -F -- "--pulls-per-node" >/dev/null || fail "loadgen --help"
"$PULLCACHE" help | grep -E "^  loadgen " >/dev/null || fail "help does not list loadgen"
echo "ok"
