#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_status_page.sh - the status page (/_pullcache/) in headless chromium
# (Debian's, driven by playwright-core from tests/browser; skipped, 77, when
# chromium, node or `npm ci` there is missing), and the history behind it:
#   history     serve with its defaults and one upstream, the fake Docker Hub
#               (ratelimited_hub: every manifest GET spends a pull): three
#               rounds of `pullcache loadgen` through the cache, each on new
#               images (misses), a sample of /_pullcache/history between
#               them: remaining falls from sample to sample; hits, misses,
#               upstream pulls and avoided bytes are counted; a round run
#               into the exhausted budget leaves 429s in a sample
#   fetches     a blob the fake holds half-way is listed in the status
#               document while in flight (received < total) and drawn by the
#               page with its progress; released, its bytes arrive whole
#   page        loads with no failed request (requestfailed, or an answer
#               >= 400) and no script error; the budget plot draws the
#               history's numbers (remaining falling), the 429 marks, the
#               most pulled images, the cache size; a screenshot is saved in
#               the build's test-artifacts/status_page/ (its path printed)
#   restart     after a restart the history is still there (meta store notes)
#   auth        with users, the page, its files and JSON are for admins only:
#               401 without credentials, 403 for another user, 200 and a
#               clean load in chromium for an admin
. "$(dirname "$0")/lib.sh"

BROWSER_DIR=$PC_SRC/tests/browser
if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null; then
    echo "SKIP: $TEST_NAME: needs /usr/bin/chromium and node (scripts/deps.sh --test)"
    exit 77
fi
if [ ! -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ]; then
    echo "SKIP: $TEST_NAME: playwright-core is not installed (scripts/deps.sh --test runs npm ci in tests/browser)"
    exit 77
fi

clients_init
FP=5002
P=http://127.0.0.1:$PC_PORT
DATA=$WORK/data
ART=${PC_BUILD:-$PC_SRC/build}/test-artifacts/status_page
mkdir -p "$ART"
mkimages "$WORK/img" status-1 1
mkimages "$WORK/img2" status-2 1 # other blobs: a fetch to watch in flight
repos=(--repo "library/z=$WORK/img2")
for r in a b c d e f g h; do repos+=(--repo "library/$r=$WORK/img"); done
fake_start ratelimited_hub "$FP" - - "${repos[@]}"
cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: hub
    url: http://127.0.0.1:$FP
    reserve: 3
YML
pc_start "$DATA" --config "$WORK/pullcache.yml"

# history [ARGS]: /_pullcache/history into $WORK/h.json.
history() { curl -sS -f "$@" "$P/_pullcache/history" >"$WORK/h.json" || fail "GET /_pullcache/history"; }
nsamples() { jq '.upstreams[] | select(.name == "hub") | .samples | length' "$WORK/h.json"; }
# wait_sample: until the history has a sample newer than now (samples fall
# on the multiples of the interval: at most one interval and a bit).
wait_sample() {
    local since
    since=$(date +%s)
    for _ in $(seq 300); do
        history
        jq -e --argjson s "$since" '[.upstreams[] | select(.name == "hub") | .samples[] | select(.[0] > $s)] | length > 0' \
            "$WORK/h.json" >/dev/null && return 0
        sleep 0.1
    done
    fail "no new history sample within 30 s: $(cat "$WORK/h.json")"
}
# lg NAME IMAGES...: loadgen through the cache (2 nodes x 2 pulls of each image).
lg() {
    local out=$WORK/lg-$1.json rc=0 refs=()
    shift
    for i in "$@"; do refs+=("127.0.0.1:$PC_PORT/hub/library/$i:oci-single"); done
    "$PULLCACHE" loadgen --plain-http --json -n 2 -m 2 "${refs[@]}" >"$out" 2>"$out.err" </dev/null || rc=$?
    echo "$rc"
}
# rem_series: the hub's remaining values in the history, nulls left out.
rem_series() { jq -c '[.upstreams[] | select(.name == "hub") | .samples[] | .[1] | select(. != null)]' "$WORK/h.json"; }

# ---- the history: the budget falls round by round -----------------------------------
echo "== history"
history
expect_eq '["t","remaining","limit","reserve","n429","hits","misses","pulls","bytes","avoided"]' \
    "$(jq -c .fields "$WORK/h.json")" "history fields"
jq -e '.interval > 0 and .capacity > 0 and (.now | type) == "number"' "$WORK/h.json" >/dev/null ||
    fail "history header: $(jq -c 'del(.upstreams)' "$WORK/h.json")"
expect_eq 400 "$(reg_status GET '/_pullcache/history?since=x')" "history?since=x"
wait_sample
expect_eq 0 "$(lg r1 a b)" "round 1 loadgen ($(cat "$WORK/lg-r1.json.err"))"
wait_sample
expect_eq 0 "$(lg r2 c d)" "round 2 loadgen ($(cat "$WORK/lg-r2.json.err"))"
wait_sample
expect_eq 0 "$(lg r3 e f)" "round 3 loadgen ($(cat "$WORK/lg-r3.json.err"))"
wait_sample
rem=$(rem_series)
echo "remaining per sample: $rem"
# each round spent two pulls (two new images; their repeats were hits)
jq -e 'length >= 3 and (. as $r | [range(1; length) | $r[.] <= $r[. - 1]] | all) and .[-1] < .[0]' \
    <<<"$rem" >/dev/null || fail "remaining does not fall from sample to sample: $rem"
expect_eq 94 "$(jq '.[-1]' <<<"$rem")" "remaining after 6 images (100 - 6 manifest GETs)"
sums=$(jq -c '[.upstreams[] | select(.name == "hub") | .samples] | .[0] |
    {hits: (map(.[5]) | add), misses: (map(.[6]) | add), pulls: (map(.[7]) | add),
     bytes: (map(.[8]) | add), avoided: (map(.[9]) | add), reserve: (map(.[3]) | unique)}' "$WORK/h.json")
echo "history sums: $sums"
jq -e '.pulls == 6 and .misses >= 6 and .hits > 0 and .bytes > 0 and .avoided > 0 and .reserve == [3]' \
    <<<"$sums" >/dev/null || fail "history counts: $sums"
echo "ok: the history has the budget falling round by round, hits, misses, pulls and bytes avoided"

# into the exhausted budget: 429s are counted in a sample
fake_ratelimit "$FP" 0
rc=$(lg r4 g h)
[ "$rc" != 0 ] || fail "round 4 against an exhausted budget succeeded: $(cat "$WORK/lg-r4.json")"
wait_sample
n429=$(jq '[.upstreams[] | select(.name == "hub") | .samples[] | .[4]] | add' "$WORK/h.json")
[ "$n429" -ge 1 ] || fail "no 429 in the history after pulls into an exhausted budget: $(cat "$WORK/h.json")"
echo "ok: $n429 429(s) in the history"

# ---- the status document's page parts ------------------------------------------------
curl -sS -f "$P/_pullcache/status" >"$WORK/status.json" || fail "GET /_pullcache/status"
jq -e '.traffic[0].upstream == "hub" and .traffic[0].pulls_avoided > 0 and .traffic[0].bytes_avoided > 0
       and .traffic[0].errors_429 >= 1 and (.fetches | type) == "array"
       and (.store | has("mirrored_bytes") and has("max_size"))' "$WORK/status.json" >/dev/null ||
    fail "status: page parts: $(jq -c '{traffic, fetches, store}' "$WORK/status.json")"
expect_eq '{"upstream":"hub","repository":"library/a","tag":"oci-single","pulls":4}' \
    "$(jq -c '.images[] | select(.repository == "library/a") | del(.last)' "$WORK/status.json")" "status: images"
jq -e '.errors[0] | .upstream == "hub" and .class == "too_many" and .status == 429' "$WORK/status.json" >/dev/null ||
    fail "status: recent errors: $(jq -c .errors "$WORK/status.json")"
expect_eq "$(jq '.traffic[0].bytes_avoided' "$WORK/status.json")" \
    "$(pc_metric pullcache_cache_hit_bytes_total 'upstream="hub"')" "bytes avoided = /metrics"
echo "ok: the status document has traffic, images, errors, fetches, store"

# ---- a fetch in flight, with its progress ----------------------------------------------------
# the fake sends 256 KiB of a blob, then holds the rest until POST /_fake/release:
# the 1 MiB layer of library/z stays in flight until the page has drawn it
cat >"$WORK/slow.json" <<'JSON'
{"description": "a blob held half-way for the status page", "rules": [
  {"id": "held blob", "method": "GET", "kind": "blob",
   "reply": {"stall_after_bytes": 262144, "stall_seconds": "release", "stall_then": "finish"}}]}
JSON
fake_scenario "$FP" "$WORK/slow.json"
big=$(jq -r '.layers | max_by(.size) | .digest' "$WORK/img2/blobs/sha256/$(img_digest "$WORK/img2" oci-single | cut -d: -f2)")
curl -sS -o "$WORK/big.blob" --max-time 120 "$P/v2/hub/library/z/blobs/$big" 2>"$WORK/big.err" &
BIG_PID=$!
PIDS+=("$BIG_PID")
for _ in $(seq 300); do
    curl -sS -f "$P/_pullcache/status" >"$WORK/status.json" || fail "GET /_pullcache/status"
    jq -e --arg d "$big" '.fetches[] | select(.digest == $d and .received == 262144)' \
        "$WORK/status.json" >/dev/null && break
    sleep 0.1
done
jq -e --arg d "$big" '.fetches[] | select(.digest == $d) | .upstream == "hub" and .repository == "library/z"
    and .received < .total and .started > 0' "$WORK/status.json" >/dev/null ||
    fail "status: the fetch in flight: $(jq -c .fetches "$WORK/status.json")"
echo "ok: the fetch in flight is listed with its progress: $(jq -c '.fetches[0] | {received, total}' "$WORK/status.json")"

# ---- the page in chromium ------------------------------------------------------------------
# page URL PNG [USER:PASSWORD]: drive chromium; its report in $WORK/page.json.
page() {
    rm -rf "$WORK/profile"
    mkdir -p "$WORK/profile"
    (cd "$BROWSER_DIR" && HOME=$WORK/home node status_page.mjs "$1" "$2" "$WORK/profile" ${3:+"$3"}) \
        >"$WORK/page.json" 2>"$WORK/page.log" || fail "chromium could not load $1: $(tail -20 "$WORK/page.log")"
}
echo "== page"
page "$P/_pullcache/" "$ART/status_page.png"
echo "screenshot: $ART/status_page.png"
R=$WORK/page.json
expect_eq 200 "$(jq .status "$R")" "page status"
expect_eq '[]' "$(jq -c .failed "$R")" "failed requests"
expect_eq '[]' "$(jq -c .console_errors "$R")" "script errors"
expect_eq null "$(jq -c .problem "$R")" "the page's problem line"
jq -e '.requests | map(select(test("/_pullcache/(history|status)"))) | length >= 4' "$R" >/dev/null ||
    fail "the page did not refresh from its JSON: $(jq -c .requests "$R")"
drawn=$(jq -c '.plots.hub.remaining | map(select(. != null))' "$R")
echo "plot drew remaining: $drawn"
jq -e 'length >= 3 and .[-1] < .[0]' <<<"$drawn" >/dev/null || fail "the plot does not show the budget falling: $drawn"
# what it drew is the history's (samples taken since are not on the page yet)
history
drew=$(jq -c '.plots.hub as $p | [$p.t, $p.remaining] | transpose' "$R")
kept=$(jq -c --argjson d "$drew" '.upstreams[] | select(.name == "hub") | .samples |
    map(select(.[0] >= $d[0][0] and .[0] <= $d[-1][0]) | [.[0], .[1]])' "$WORK/h.json")
expect_eq "$kept" "$drew" "the plot's (time, remaining) points are the history's"
jq -e '.plots.hub.paths == 1 and .plots.hub.reserve == 3 and (.plots.hub.n429 | add) >= 1' "$R" >/dev/null ||
    fail "plot: $(jq -c .plots "$R")"
jq -e '[.images[][0]] | index("hub/library/a:oci-single") != null' "$R" >/dev/null ||
    fail "most pulled images: $(jq -c .images "$R")"
jq -e '.errors | length >= 1' "$R" >/dev/null || fail "recent errors table: $(jq -c .errors "$R")"
jq -e '.cache | test("mirrored")' "$R" >/dev/null || fail "cache size: $(jq -c .cache "$R")"
jq -e '[.figures[] | select(test("hit ratio|bytes avoided|upstream pulls"))] | length == 3' "$R" >/dev/null ||
    fail "figures: $(jq -c .figures "$R")"
[ -s "$ART/status_page.png" ] || fail "no screenshot"
# the held fetch on the page, with its byte count; then let it finish
jq -e '.fetches | length == 1 and (.[0][1] == "library/z") and (.[0][3] == "256.0 KiB / 1.0 MiB")' "$R" >/dev/null ||
    fail "fetches in flight on the page: $(jq -c .fetches "$R")"
curl -sS -f -o /dev/null -X POST "http://127.0.0.1:$FP/_fake/release" || fail "release the held blob"
wait "$BIG_PID" || fail "the slow blob GET failed: $(cat "$WORK/big.err")"
expect_eq "${big#sha256:}" "$(sha256sum "$WORK/big.blob" | cut -d' ' -f1)" "the slow blob's bytes"
echo "ok: the page loads clean and plots the budget falling"

# ---- restart: the history is kept --------------------------------------------------------
# (not under PULLCACHE_TEST_STORAGE=mem: its meta store goes with the process)
if pc_persistent; then
    echo "== restart"
    history
    before=$(jq -c '.upstreams[] | select(.name == "hub") | .samples' "$WORK/h.json")
    pc_stop
    pc_start "$DATA" --config "$WORK/pullcache.yml"
    history
    after=$(jq -c --argjson b "$before" '.upstreams[] | select(.name == "hub") | .samples | map(select(.[0] <= ($b[-1][0])))' "$WORK/h.json")
    expect_eq "$before" "$after" "the history after a restart"
    grep -q "status history of upstream hub: .* sample(s) restored" "$WORK/pullcache.log" ||
        fail "no restore line in the log"
    echo "ok: $(jq length <<<"$before") samples survived the restart"
else
    echo "skipped: the history across a restart (PULLCACHE_TEST_STORAGE=$PC_STORAGE keeps nothing)"
fi

# ---- with users: admins only -------------------------------------------------------------
echo "== auth"
PW_ADMIN='admin-Pw-3c9e1'
PW_USER='user-Pw-81b7d'
htpasswd -nbB -C 5 admin "$PW_ADMIN" >"$WORK/htpasswd"
htpasswd -nbB -C 5 user "$PW_USER" >>"$WORK/htpasswd"
cat >>"$WORK/pullcache.yml" <<YML
auth:
  htpasswd: $WORK/htpasswd
  admins: [admin]
YML
pc_stop
pc_start "$DATA" --config "$WORK/pullcache.yml"
for path in /_pullcache/ /_pullcache /_pullcache/ui/status.js /_pullcache/ui/status.css \
    /_pullcache/history /_pullcache/status; do
    expect_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' "$P$path")" "$path without credentials"
    expect_eq 403 "$(curl -s -o /dev/null -w '%{http_code}' -u "user:$PW_USER" "$P$path")" "$path for a user"
    expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$PW_ADMIN" "$P$path")" "$path for an admin"
done
expect_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$PW_ADMIN" "$P/_pullcache/ui/nope.js")" "an unknown file"
curl -sS -D "$WORK/ui.h" -o "$WORK/index.html" -u "admin:$PW_ADMIN" "$P/_pullcache/"
grep -qi '^content-type: text/html' "$WORK/ui.h" || fail "page Content-Type: $(cat "$WORK/ui.h")"
grep -qi "^content-security-policy: default-src 'none'" "$WORK/ui.h" || fail "page CSP: $(cat "$WORK/ui.h")"
if grep -Eo '(src|href)="[^"]*"' "$WORK/index.html" | grep -Ev '"(/_pullcache/|/metrics|data:)' ; then
    fail "the page links something outside this server"
fi
page "$P/_pullcache/" "$ART/status_page_admin.png" "admin:$PW_ADMIN"
expect_eq '[]' "$(jq -c .failed "$WORK/page.json")" "failed requests as an admin"
expect_eq null "$(jq -c .problem "$WORK/page.json")" "the page's problem line as an admin"
echo "ok: admins only: 401 without credentials, 403 for a user, a clean load for an admin"
echo "screenshots: $ART/status_page.png $ART/status_page_admin.png"
