#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_faults_crash.sh - local fault matrix, crashes and gc races: kill -9
# of serve during a monolithic push (its session and file are gone at the
# next start: no client holds their Location), during a chunked upload (the
# session survives and the client finishes it), during a pull-through
# ingest (the fetch spool is gone at the next start, the next pull gets the
# right bytes) and during tag moves (the tag names one of the manifests,
# complete). Nothing here needs a manual step after a crash; fsck finds
# nothing wrong afterwards. (gc faults: test_faults_gc.sh)
. "$(dirname "$0")/lib.sh"
pc_needs_disk "restarts after kill -9 on the same data directory"

clients_init
DATA=$WORK/data
FP=5002
B=http://127.0.0.1:$PC_PORT
# the upstream is the fake (a kill mid pull-through needs one it controls)
start() { pc_start "$DATA" --upstream "up=http://127.0.0.1:$FP"; }

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
upload_range() { curl -sS -o /dev/null -D - "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}'; }
sessions() { sqlite3 "file:$DATA/meta.db?mode=ro" 'SELECT count(*) FROM uploads' 2>/dev/null || echo "?"; }
# wait_for GLOB: until a file matching it exists (10 s)
wait_for() {
    for _ in $(seq 100); do
        compgen -G "$1" >/dev/null && return 0
        sleep 0.1
    done
    fail "nothing matched $1"
}

mkimages "$WORK/img" crash-1 1
fake_start stalled_blob "$FP" - - --repo library/r="$WORK/img"
start

# ---- kill -9 during a monolithic push ----------------------------------------------------------
echo "== kill -9 during a monolithic push"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/mono"
for i in 1 2 3; do
    curl -sS -o /dev/null -X POST -H 'Content-Type: application/octet-stream' --limit-rate 1M \
        --data-binary "@$WORK/mono" "$B/v2/app/blobs/uploads/?digest=$(sha "$WORK/mono")" 2>/dev/null &
    cpid=$!
    wait_for "$DATA/uploads/m-*"
    sleep 0.5
    pc_kill
    wait "$cpid" 2>/dev/null || true
    [ -n "$(ls "$DATA/uploads/")" ] || fail "kill $i: the push left no staging file (test did not hit mid-push)"
    start
    expect_eq "" "$(ls "$DATA/uploads/")" "staging files after restart $i"
    expect_eq 0 "$(sessions)" "upload sessions after restart $i"
done
expect_eq 201 "$(push_blob app "$WORK/mono")" "the push again"
check_blob app "$WORK/mono"

# ---- kill -9 during a chunked upload -------------------------------------------------------------
echo "== kill -9 during a chunked upload"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/chunked"
url=$(reg_upload_url app)
head -c 1048576 "$WORK/chunked" >"$WORK/c1"
expect_eq 202 "$(status -X PATCH -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/c1" "$url")" "chunk 1"
tail -c +1048577 "$WORK/chunked" >"$WORK/c2"
curl -sS -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' --limit-rate 500k \
    --data-binary "@$WORK/c2" "$url" 2>/dev/null &
cpid=$!
sleep 1.5
pc_kill
wait "$cpid" 2>/dev/null || true
start
# the session survives (the client holds its Location): resume where it is
range=$(upload_range "$url")
[ -n "$range" ] || fail "the chunked session did not survive the crash"
have=$((${range#0-} + 1))
[ "$have" -ge 1048576 ] || fail "the chunked session lost its first chunk (Range $range)"
tail -c +$((have + 1)) "$WORK/chunked" >"$WORK/rest"
expect_eq 202 "$(status -X PATCH -H "Content-Range: $have-$(($(stat -c %s "$WORK/chunked") - 1))" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/rest" "$url")" "resume after the crash"
expect_eq 201 "$(status -X PUT "$(url_with_param "$url" "digest=$(sha "$WORK/chunked")")")" "finish after the crash"
check_blob app "$WORK/chunked"

# ---- kill -9 during a pull-through ingest ------------------------------------------------------------
echo "== kill -9 during a pull-through ingest"
m=$WORK/img/blobs/sha256/$(img_digest "$WORK/img" oci-single | cut -d: -f2)
big=$(jq -r '[.layers[] | select(.size >= 65536)][0].digest' "$m")
[ "$big" != null ] || fail "the test image has no layer of 64 KiB"
curl -sSN -o "$WORK/partial" --max-time 20 "$B/v2/up/library/r/blobs/$big" 2>/dev/null & # stalls upstream
cpid=$!
# the fetch is under way once the client got the first bytes (-N: unbuffered): the upstream
# sent its 1000 and stalls (the fetch gauge alone rises before the upstream
# request is sent, and a kill then leaves the upstream's first GET for the
# restarted serve). Its spool has no name: a crash can leave nothing behind.
for _ in $(seq 100); do
    [ -s "$WORK/partial" ] && break
    sleep 0.1
done
[ -s "$WORK/partial" ] || fail "the fetch did not start streaming"
expect_eq 1 "$(pc_metric pullcache_fetches_in_flight 'upstream="up"')" "fetches in flight during the stall"
pc_kill
wait "$cpid" 2>/dev/null || true
start
expect_eq "" "$(ls "$DATA/uploads/")" "fetch spools after the restart"
expect_eq "" "$(ls "$DATA/tmp/")" "fetch spools after the restart (tmp/)"
read -r code rc _ <<<"$(http_get "$B/v2/up/library/r/blobs/$big" "$WORK/pulled" --max-time 20)"
expect_eq "200 0" "$code $rc" "pull after the crash"
expect_eq "$big" "$(sha "$WORK/pulled")" "pull after the crash: digest"

# ---- kill -9 during tag moves ----------------------------------------------------------------------------
echo "== kill -9 during tag moves"
echo '{"architecture":"amd64","os":"linux"}' >"$WORK/config"
expect_eq 201 "$(push_blob app "$WORK/config")" "push config"
mkman() {
    jq -cn --arg c "$(sha "$WORK/config")" --argjson cs "$(stat -c %s "$WORK/config")" \
        --arg l "$(sha "$2")" --argjson ls "$(stat -c %s "$2")" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
          layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar", digest:$l, size:$ls}]}' >"$1"
}
mkman "$WORK/m1" "$WORK/mono"
mkman "$WORK/m2" "$WORK/chunked"
putm() { curl -sS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$1" "$B/v2/app/manifests/latest" 2>/dev/null || true; }
putm "$WORK/m1"
(while :; do putm "$WORK/m1"; putm "$WORK/m2"; done) &
mover=$!
sleep 1
pc_kill
kill "$mover" 2>/dev/null || true
wait "$mover" 2>/dev/null || true
start
code=$(curl -sS -o "$WORK/latest" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$B/v2/app/manifests/latest") || code=000
expect_eq 200 "$code" "the moved tag after the crash"
if cmp -s "$WORK/latest" "$WORK/m1"; then check_blob app "$WORK/mono"
elif cmp -s "$WORK/latest" "$WORK/m2"; then check_blob app "$WORK/chunked"
else fail "the moved tag names neither manifest"; fi
check_blob app "$WORK/config"

"$PULLCACHE" fsck --data "$DATA" >"$WORK/fsck.out" 2>&1 || fail "fsck after the crashes: $(cat "$WORK/fsck.out")"
echo "OK"
