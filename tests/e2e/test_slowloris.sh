#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_slowloris.sh - a slowloris flood cannot lock normal clients out.
#
# With serve's defaults (http.max_connections 1024, http.header_timeout 10,
# http.max_connections_per_ip 256), tests/tools/slowloris.py opens 1,100
# connections from 275 source addresses (127.1.x.y, 4 each) plus 300 from
# 127.0.0.2; each sends a request line and then one header byte a second,
# never finishing its head. While they trickle:
#   - a normal client's GET /v2/ and manifest GET (a fresh connection each
#     time) are answered 200 with the right bytes: at the connection cap a
#     new connection displaces the one waiting longest for its head
#     (before: every slot was held, curl got no answer);
#   - 127.0.0.2 holds at most 256 connections (before: all 300);
#   - every flood connection is closed by the server (the header deadline;
#     before: the idle timeout restarts with every byte, so none ever was),
#     and pullcache_http_connections_shed_total counts displaced and
#     header_timeout closes.
# No timing assertion: curl's --max-time 5 and the flood's --duration are
# liveness bounds (an answer at all), not a latency goal; bench/slowloris.sh
# measures latency.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_api.sh"

FLOOD=$PC_SRC/tests/tools/slowloris.py
[ "$(ulimit -Hn)" -ge 4096 ] || fail "needs a hard open-files limit of 4096 or more (ulimit -Hn)"

DATA=$WORK/data
api_start "$DATA"

# a small image to GET during the flood
printf '{"architecture":"amd64","os":"linux"}' >"$WORK/cfg"
rand_file "$WORK/layer" 4096
put_blob flood/app "$WORK/cfg"
put_blob flood/app "$WORK/layer"
jq -cn --arg c "$(dgst "$WORK/cfg")" --argjson cs "$(stat -c %s "$WORK/cfg")" \
    --arg l "$(dgst "$WORK/layer")" --argjson ls "$(stat -c %s "$WORK/layer")" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}' \
    >"$WORK/man"
put_manifest flood/app v1 "$WORK/man" application/vnd.oci.image.manifest.v1+json
WANT=$(dgst "$WORK/man")

# ---- the flood ---------------------------------------------------------------------------------
# --until-closed: it ends once the server has closed every connection;
# --duration 60 bounds it when the server never does (the failure).
/usr/bin/python3 "$FLOOD" "$REG" --many 1100 --per-addr 4 --one 300 --one-addr 127.0.0.2 \
    --duration 60 --until-closed --stats "$WORK/flood.json" --ready-file "$WORK/flood.ready" \
    >"$WORK/flood.out" 2>"$WORK/flood.log" &
FLOOD_PID=$!
PIDS+=("$FLOOD_PID")
for _ in $(seq 100); do [ -e "$WORK/flood.ready" ] && break; sleep 0.1; done
[ -e "$WORK/flood.ready" ] || fail "the flood did not start: $(cat "$WORK/flood.log")"
tried=$(jq -r .tried "$WORK/flood.json")
expect_eq 1400 "$tried" "flood connections tried"
echo "flood: $(cat "$WORK/flood.json")"

# ---- normal clients during the flood ---------------------------------------------------------
for i in 1 2 3 4 5; do
    # --max-time 5: liveness only (an answer at all), not a latency goal
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$R/v2/" 2>>"$WORK/curl.log") || true
    expect_eq 200 "$code" "GET /v2/ during the flood (try $i)"
    code=$(curl -s -o "$WORK/got" -w '%{http_code}' --max-time 5 \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$R/v2/flood/app/manifests/v1" \
        2>>"$WORK/curl.log") || true
    expect_eq 200 "$code" "manifest GET during the flood (try $i)"
    expect_eq "$WANT" "$(dgst "$WORK/got")" "manifest bytes during the flood (try $i)"
done
echo "ok: GET /v2/ and a manifest GET answered during a flood of 1,400 trickling connections"

# ---- per-address cap ---------------------------------------------------------------------------
# the flood's view: connections from 127.0.0.2 the server has not closed
one=""
for _ in $(seq 50); do
    one=$(jq -r .open_one "$WORK/flood.json")
    [ "$one" -le 256 ] && break
    sleep 0.2
done
[ "$one" -le 256 ] || fail "127.0.0.2 holds $one connections, want at most 256 (http.max_connections_per_ip)"
echo "ok: one address holds at most 256 connections ($one open)"

# ---- every flood connection is closed ----------------------------------------------------------
wait "$FLOOD_PID" || fail "the flood failed: $(cat "$WORK/flood.log")"
res=$(tail -n 1 "$WORK/flood.out")
echo "flood: $res"
expect_eq 0 "$(jq -r .open <<<"$res")" "flood connections still open when the flood ended"
expect_eq "$(jq -r .connected <<<"$res")" "$(jq -r .closed <<<"$res")" \
    "flood connections closed by the server"
disp=$(pc_metric pullcache_http_connections_shed_total 'reason="displaced"')
late=$(pc_metric pullcache_http_connections_shed_total 'reason="header_timeout"')
[ "$disp" -gt 0 ] || fail "no connection was displaced at the cap"
[ "$late" -gt 0 ] || fail "no connection was closed for its header deadline"
echo "ok: the server closed every trickling connection ($disp displaced, $late past the header deadline)"

expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$R/v2/")" "GET /v2/ after the flood"
grep -q 'pullcache_http_connections_shed_total' "$PC_SRC/docs/METRICS.md" ||
    fail "docs/METRICS.md does not list pullcache_http_connections_shed_total"
echo "ok: test_slowloris"
