#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_faults_gc.sh - local fault matrix, gc: kill -9 of `pullcache gc`
# mid-run loses nothing referenced and the next gc completes; and
# `gc --grace 0` in a loop during concurrent pushes: every blob that got a
# 201 is then served (publish + link are atomic with respect to gc, through
# the blob store's publish lock).
. "$(dirname "$0")/lib.sh"
pc_needs_disk "pullcache gc on the data directory"

DATA=$WORK/data
B=http://127.0.0.1:$PC_PORT
start() { pc_start "$DATA"; }
push_blob() {
    curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
        --data-binary "@$2" "$B/v2/$1/blobs/uploads/?digest=$(sha "$2")" || echo 000
}
check_blob() {
    local code
    code=$(curl -sS -o "$WORK/got" -w '%{http_code}' "$B/v2/$1/blobs/$(sha "$2")") || code=000
    expect_eq 200 "$code" "GET blob $(sha "$2") of $1"
    cmp -s "$WORK/got" "$2" || fail "GET blob $(sha "$2") of $1: wrong bytes"
}
status() { curl -sS -o /dev/null -w '%{http_code}' "$@" || true; }

start
head -c 300000 /dev/urandom >"$WORK/keep1"
head -c 1000 /dev/urandom >"$WORK/keep2"
expect_eq 201 "$(push_blob app "$WORK/keep1")" "push keep1"
expect_eq 201 "$(push_blob app "$WORK/keep2")" "push keep2"

# ---- kill -9 of gc ----------------------------------------------------------------------------------------------
echo "== kill -9 of gc"
for i in $(seq 30); do
    head -c 2000 /dev/urandom >"$WORK/junk"
    expect_eq 201 "$(push_blob junk "$WORK/junk")" "push junk $i"
    expect_eq 202 "$(status -X DELETE "$B/v2/junk/blobs/$(sha "$WORK/junk")")" "unlink junk $i"
done
"$PULLCACHE" gc --data "$DATA" --grace 0 >/dev/null 2>&1 &
gpid=$!
sleep 0.05
kill -KILL "$gpid" 2>/dev/null || true
wait "$gpid" 2>/dev/null || true
check_blob app "$WORK/keep1"
check_blob app "$WORK/keep2"
"$PULLCACHE" gc --data "$DATA" --grace 0 >"$WORK/gc.out" 2>&1 || fail "gc after a killed gc: $(cat "$WORK/gc.out")"
"$PULLCACHE" fsck --data "$DATA" >"$WORK/fsck.out" 2>&1 || fail "fsck after a killed gc: $(cat "$WORK/fsck.out")"

# ---- gc --grace 0 during pushes: nothing that got a 201 is lost ------------------------------------------
echo "== gc --grace 0 during pushes"
# Widen the window between publishing an upload and linking it (a test-only
# knob, registry.c), where gc once removed blobs that had got their 201.
pc_stop
PC_TEST_PUBLISH_DELAY_MS=50 start
(while :; do "$PULLCACHE" gc --data "$DATA" --grace 0 >/dev/null 2>&1 || true; done) &
gcl=$!
mkdir -p "$WORK/race"
pusher() {
    local n
    for n in $(seq 25); do
        head -c 4096 /dev/urandom >"$WORK/race/$1-$n"
        [ "$(push_blob race "$WORK/race/$1-$n")" = 201 ] || rm -f "$WORK/race/$1-$n"
    done
}
pusher a &
p1=$!
pusher b &
p2=$!
wait "$p1" "$p2"
kill "$gcl" 2>/dev/null || true
wait "$gcl" 2>/dev/null || true
n=0
for f in "$WORK"/race/*; do
    check_blob race "$f"
    n=$((n + 1))
done
[ "$n" -ge 25 ] || fail "only $n of 50 pushes got a 201"
echo "OK ($n blobs pushed under gc --grace 0, all served)"
