# SPDX-License-Identifier: Apache-2.0
# lib_faults.sh - the upstream fault matrix's table runner, sourced by
# tests/e2e/test_faults_upstream_*.sh after lib.sh.
#
# Every fault of the table is played by the fake upstream
# (tests/tools/fakeupstream.py) in three phases, each followed by recovery:
#   cold   the target (a tag's manifest, or an image's big layer once its
#          manifest is cached) is not cached: one client asks
#   stale  the image is cached and its tag is past tag_ttl (1 s): the tag
#          is revalidated through the fault, the layer comes from the cache
#   c20    20 clients ask for an uncached target at once; the fake holds the
#          faulty reply until serve counted 19 of them as joining the first
#          one's exchange (pullcache_fetch_waiters_total; at most 6 s), then sends it: the
#          fault reaches them all through ONE upstream exchange (coalescing)
# and after each phase the fake is switched back to healthy content
# (recovery) and the same pull must work without restarting serve.
# Each phase asserts the client's outcome, that nothing wrong was served
# (every 200 body is re-hashed here), that no fetch spool is left in the
# data directory, what was (not) stored, and how many upstream requests the
# fake logged.
#
# Content: for fault F, repositories library/F-a (cold, then stale) and
# library/F-c (c20) of inline images (tag v1: a small layer and a 256 KiB
# random layer, seeded by the repository name), the same in every scenario
# document, so a scenario switch never changes what an image is.
#
#   faults_init NAME...        content for these faults; start the fake and serve
#   fault_run LINE             run one table line (see the test files)
#
# Outcomes (what a client saw), as compared with the table:
#   ok         200 with the expected bytes, no Warning header
#   stale      200 with the expected (cached) bytes and a Warning: 299
#   cut        a blob transfer that did not complete: 200 cut short (curl
#              18/56) - never a complete 200 (a fault found before the first
#              body byte is an error status instead: 502:UNAVAILABLE)
#   S:CODE     status S with registry error code CODE (502:UNAVAILABLE)
#   wrong      200 complete with bytes that do not match: always a failure

FP=5002 TP=5003
F=http://127.0.0.1:$FP
P=http://127.0.0.1:$PC_PORT
DATA=$WORK/data
BIGSIZE=262144
CONTENT=$WORK/content.json

faults_init() {
    local names=() n
    for n in "$@"; do names+=("$n-a" "$n-c"); done
    printf '%s\n' "${names[@]}" | jq -R . | jq -s --argjson big "$BIGSIZE" '
        map({key: ("library/" + .), value: {images: {v1: {format: "oci", layers: [
            {path: "etc/name", text: .},
            {path: "data/big.bin", random: $big, seed: .}]}}}}) | from_entries' >"$CONTENT"
    jq -n --slurpfile c "$CONTENT" '{description: "healthy, with the matrix content", content: $c[0]}' \
        >"$WORK/healthy.json"
    fake_start "$WORK/healthy.json" "$FP" "$TP"
    # read_timeout 8: above the time the c20 phase holds a faulty reply while
    # 20 clients join, short enough for stalls; tag_ttl 1: the stale phase; max_fetch_size:
    # the bound of a blob fetched without a cached manifest (256 KiB layers
    # fit, an endless body does not).
    cat >"$WORK/pullcache.yml" <<YML
upstreams:
  - name: up
    url: http://127.0.0.1:$FP
    tag_ttl: 1
    connect_timeout: 2
    read_timeout: 8
cache:
  max_fetch_size: 1048576
YML
    pc_start "$DATA" --config "$WORK/pullcache.yml"
}

# scenario FILE [hold]: post the fault's scenario (a shipped name or a
# file) with the matrix content; with "hold" the first reply of each rule
# waits for POST /_fake/release, at most 6 s (below read_timeout: the hold
# never times serve out), a rule with "reply" becoming replies [held,
# plain], repeated.
scenario() {
    local src=$1 d=0
    [ "${2:-}" = hold ] && d=1
    [ -f "$src" ] || src=$PC_SRC/tests/tools/scenarios/$src.json
    [ -f "$src" ] || fail "no scenario $1"
    jq --slurpfile c "$CONTENT" --argjson d "$d" '
        def held: if . == "pass" then {hold: 6} else . + {hold: 6} end;
        .content = $c[0] |
        .rules = [(.rules // [])[] |
            if $d > 0 then
                (if has("replies") then .replies[0] |= held
                 else .replies = [(.reply // "pass" | held), (.reply // "pass")] | .after = "repeat"
                      | del(.reply) | del(.nth) end)
            else . end]' "$src" >"$WORK/scenario.json"
    fake_scenario "$FP" "$WORK/scenario.json"
}
healthy() { fake_scenario "$FP" "$WORK/healthy.json"; }

tag_digest() { jq -r --arg r "library/$1" '.[$r].tags.v1' "$WORK/fake-content.json"; }
# The big layer of repository R (from the fake's content, read when healthy).
big_digest() {
    jq -r --arg r "library/$1" --argjson b "$BIGSIZE" '.[$r].blobs | to_entries[] | select(.value > 65536) | .key' \
        "$WORK/fake-content.json"
}
big_size() { jq -r --arg r "library/$1" --arg d "$2" '.[$r].blobs[$d]' "$WORK/fake-content.json"; }

# man_outcome REPO OUT [DIGEST]: GET library/REPO:v1 through serve; the
# outcome (DIGEST: the tag's, when the caller looked it up already).
man_outcome() {
    local code rc n want=${3:-}
    read -r code rc n <<<"$(http_get "$P/v2/up/library/$1/manifests/v1" "$2" -H "Accept: $MANIFEST_ACCEPT" --max-time 30)"
    [ -n "$want" ] || want=$(tag_digest "$1")
    if [ "$code:$rc" = 200:0 ]; then
        if [ "$(sha "$2")" != "$want" ]; then echo wrong
        elif grep -qi '^warning: 299' "$2.h"; then echo stale
        else echo ok; fi
    else
        echo "$code:$(err_code "$2")"
    fi
}

# blob_outcome REPO DIGEST OUT: GET the blob through serve; the outcome.
blob_outcome() {
    local code rc n
    read -r code rc n <<<"$(http_get "$P/v2/up/library/$1/blobs/$2" "$3" --max-time 30)"
    case "$code:$rc" in
    200:0) if [ "$(sha "$3")" = "$2" ]; then echo ok; else echo wrong; fi ;;
    200:18 | 200:56) echo cut ;;
    *) echo "$code:$(err_code "$3")" ;;
    esac
}

# want_outcome WHAT WANT GOT: GOT matches WANT (alternatives with /).
want_outcome() {
    case "/$2/" in */"$3"/*) return 0 ;; esac
    fail "$1: want outcome '$2', got '$3'"
}

no_spool() {
    local left
    [ -d "$DATA/uploads" ] || return 0 # in-memory storage: no upload files at all
    left=$(find "$DATA/uploads" -name 'fetch-*' 2>/dev/null | wc -l)
    expect_eq 0 "$left" "$1: fetch spool files left in $DATA/uploads"
}
# store_files: the files in the blob store; in-memory storage has none to
# count (there the HTTP answers are what the fault cases check).
store_files() {
    if pc_on_disk; then find "$DATA/blobs" -type f | wc -l; else echo "(not on disk)"; fi
}
# stored / not_stored DIGEST WHAT: the blob is (not) in the blob store
# (pc_blob_present); under in-memory storage there is nothing to look at and
# the cases rest on the HTTP answers and upstream counts alone.
stored() {
    local rc=0
    pc_blob_present "$DATA" "$1" || rc=$?
    [ "$rc" != 1 ] || fail "$2: blob $1 is not in the blob store"
}
not_stored() {
    local rc=0
    pc_blob_present "$DATA" "$1" || rc=$?
    [ "$rc" != 0 ] || fail "$2: $1 was stored"
}

# upstream COUNT_SPEC: requests in the fake's log since the last reset.
# COUNT_SPEC: "blob" (GETs of the phase's big layer), "manifest" (GETs of
# the phase's repository's manifests), "token" (token requests).
upstream() {
    case $1 in
    blob) fake_count "$FP" GET blob ".ref == \"$PH_BIG\"" ;;
    manifest) fake_count "$FP" GET manifest ".name == \"library/$PH_REPO\"" ;;
    token) fake_count "$FP" GET token '.listener == "token"' ;;
    *) fail "upstream: unknown count '$1'" ;;
    esac
}

# pull_ok WHAT REPO: with the upstream healthy, the manifest and the big
# layer come through with the right bytes (recovery without a restart).
pull_ok() {
    local o
    o=$(man_outcome "$2" "$WORK/rm")
    [ "$o" = ok ] || [ "$o" = stale ] || fail "$1: manifest of $2 after recovery: outcome '$o' ($(head -c 300 "$WORK/rm"))"
    o=$(blob_outcome "$2" "$(big_digest "$2")" "$WORK/rb")
    expect_eq ok "$o" "$1: big layer of $2 after recovery"
    stored "$(big_digest "$2")" "$1: after recovery"
    no_spool "$1: after recovery"
}

# fault_run "NAME|SCENARIO|TARGET|COLD|STALE|COUNT|N|STALE_GETS"
#   TARGET      manifest or blob: what the fault hits
#   COLD        the outcome of a cold miss (and of each of the 20 clients);
#               alternatives separated by /
#   STALE       the outcome of the tag's manifest in the stale phase
#   COUNT, N    the fake must log N requests of COUNT (see upstream) for one
#               cold miss, and as many for 20 concurrent clients (N: one
#               number, or alternatives separated by /)
#   STALE_GETS  manifest GETs upstream in the stale phase (HEADs revalidate)
fault_run() {
    local name scen target cold stale count n sgets o i bad pids files w0 want
    IFS='|' read -r name scen target cold stale count n sgets <<<"$1"
    echo "== $name ($scen): $target fault, cold $cold, stale $stale, $n upstream $count request(s)"
    curl -sS -f "$F/_fake/content" >"$WORK/fake-content.json" || fail "GET /_fake/content"

    # -- cold miss
    PH_REPO=$name-a PH_BIG=$(big_digest "$name-a")
    if [ "$target" = blob ]; then
        expect_eq ok "$(man_outcome "$PH_REPO" "$WORK/m")" "$name cold: manifest (the fault is on blobs)"
    fi
    scenario "$scen"
    fake_reset_log "$FP"
    files=$(store_files)
    if [ "$target" = blob ]; then
        o=$(blob_outcome "$PH_REPO" "$PH_BIG" "$WORK/b")
    else
        o=$(man_outcome "$PH_REPO" "$WORK/m")
    fi
    want_outcome "$name cold miss ($(head -c 200 "$WORK/${target:0:1}" 2>/dev/null | tr -cd '[:print:]'))" "$cold" "$o"
    want_outcome "$name cold miss: upstream $count requests" "$n" "$(upstream "$count")"
    no_spool "$name cold miss"
    if [ "$target" = blob ] && [ "$cold" != ok ]; then not_stored "$PH_BIG" "$name cold miss"; fi
    if [ "$cold" != ok ]; then
        expect_eq "$files" "$(store_files)" "$name cold miss: files in the blob store (nothing may be stored)"
    fi
    healthy
    pull_ok "$name cold, recovery" "$PH_REPO"
    echo "ok: $name cold miss -> $o, then recovered"

    # -- cached and stale: the image of the cold phase, tag past its tag_ttl
    sleep 1.5
    scenario "$scen"
    fake_reset_log "$FP"
    o=$(man_outcome "$PH_REPO" "$WORK/m")
    want_outcome "$name stale tag" "$stale" "$o"
    local so=$o
    expect_eq "$sgets" "$(upstream manifest)" "$name stale tag: upstream manifest GETs"
    o=$(blob_outcome "$PH_REPO" "$PH_BIG" "$WORK/b")
    expect_eq ok "$o" "$name stale: the cached big layer"
    expect_eq 0 "$(upstream blob)" "$name stale: upstream GETs of the cached big layer"
    no_spool "$name stale"
    healthy
    pull_ok "$name stale, recovery" "$PH_REPO"
    echo "ok: $name cached and stale: tag $so, cached layer ok, then recovered"

    # -- 20 concurrent clients, one upstream exchange
    PH_REPO=$name-c PH_BIG=$(big_digest "$name-c")
    if [ "$target" = blob ]; then
        expect_eq ok "$(man_outcome "$PH_REPO" "$WORK/m")" "$name c20: manifest (the fault is on blobs)"
    fi
    scenario "$scen" hold
    fake_reset_log "$FP"
    files=$(store_files)
    w0=$(pc_metric pullcache_fetch_waiters_total 'upstream="up"')
    want=$(tag_digest "$PH_REPO")
    pids=()
    for i in $(seq 20); do
        if [ "$target" = blob ]; then
            blob_outcome "$PH_REPO" "$PH_BIG" "$WORK/c$i" >"$WORK/c$i.outcome" &
        else
            man_outcome "$PH_REPO" "$WORK/c$i" "$want" >"$WORK/c$i.outcome" &
        fi
        pids+=($!)
    done
    # release the held reply once the upstream exchange is held and all 20
    # are in: one started it, 19 joined (or when the hold ends by itself)
    for _ in $(seq 100); do
        if [ "$(curl -sS "$F/_fake/stats" | jq .held)" -ge 1 ] &&
            [ "$(pc_metric pullcache_fetch_waiters_total 'upstream="up"')" -ge $((w0 + 19)) ]; then
            break
        fi
        sleep 0.05
    done
    curl -sS -f -o /dev/null -X POST "$F/_fake/release" || fail "POST /_fake/release"
    for i in "${pids[@]}"; do wait "$i"; done
    bad=""
    for i in $(seq 20); do
        o=$(cat "$WORK/c$i.outcome")
        case "/$cold/" in */"$o"/*) ;; *) bad+=" client $i: $o;" ;; esac
    done
    [ -z "$bad" ] || fail "$name, 20 concurrent clients: want '$cold' for each, got:$bad"
    want_outcome "$name, 20 concurrent clients: upstream $count requests (coalesced)" "$n" "$(upstream "$count")"
    no_spool "$name c20"
    if [ "$cold" != ok ]; then
        expect_eq "$files" "$(store_files)" "$name c20: files in the blob store (nothing may be stored)"
    fi
    healthy
    pull_ok "$name c20, recovery" "$PH_REPO"
    echo "ok: $name 20 concurrent clients -> $cold through $n upstream $count request(s), then recovered"
}
