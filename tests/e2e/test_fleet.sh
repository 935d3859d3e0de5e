#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_fleet.sh - a deployment as docs/SCALE-OUT.md describes it (issue 14):
# three serve replicas on ONE S3 bucket (radosgw) and ONE PostgreSQL database,
# each with --advertise its own URL, behind nginx with deploy/nginx/pullcache.conf
# (hash $request_uri consistent, no buffering), mirroring a slow fake upstream
# (slow_blobs: blobs wait 1 s, then 4 MiB/s):
#   1. 50 concurrent cold pulls through nginx (half of them with a query
#      string on the blob URIs, so that the hash spreads one blob's clients
#      over the replicas): verified bytes, and every blob fetched exactly
#      once from the upstream (its request log), and every manifest too;
#   2. push and pull through the balancer: skopeo copies test images in and
#      out, byte-identical; the tag list and a manifest HEAD on every replica
#      agree (after the cold pulls: the test images share blobs with the
#      mirrored one, which a pull would then find stored);
#   3. a chunked upload whose PATCHes go straight to different replicas,
#      finished through nginx, has the right digest;
#   4. kill -9 of the replica fetching a large blob for clients of nginx:
#      each client finishes (after a retry through nginx, which then passes
#      it to another replica) with verified bytes; the blob was fetched
#      upstream at most twice;
#   5. the S3 secret is in no replica's log, /metrics or /_pullcache/status.
# Runs on the run's radosgw and PostgreSQL under PULLCACHE_TEST_STORAGE=s3pg,
# else on its own (tests/tools/s3pg.sh); skipped (77) without radosgw,
# PostgreSQL or nginx.
. "$(dirname "$0")/lib.sh"

fleet_needed
clients_init

FP=5002
bash "$PC_SRC/tests/tools/mkimage.sh" "$WORK/img" fleet >/dev/null || fail "mkimage.sh"
bash "$PC_SRC/tests/tools/mkimage.sh" -b 24 "$WORK/big" fleetbig >/dev/null || fail "mkimage.sh"
mkimages "$WORK/push" fleet-push
fake_start slow_blobs "$FP" - - --repo library/co="$WORK/img" --repo library/big="$WORK/big"

# ---- three replicas, one bucket, one database, behind nginx (lib.sh fleet_start) -------------
fleet_start 3 "$WORK/data" --upstream "up=http://127.0.0.1:$FP"
RPORTS=("${FLEET_PORTS[@]}")

blob_path() { echo "$1/blobs/sha256/${2#sha256:}"; } # LAYOUT DIGEST
metric_sum() { # PORT NAME: the sum of a metric's series on one replica
    curl -sS "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}

# ---- 1. 50 cold pulls through nginx ---------------------------------------------------------
N=50
top=$(img_digest "$WORK/img" oci-index)
amd=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$(blob_path "$WORK/img" "$top")")
mapfile -t BLOBS < <(jq -r '.config.digest, .layers[].digest' "$(blob_path "$WORK/img" "$amd")")
client() { # I
    local dir=$WORK/c$1 U=http://$REG/v2/up/library/co args=() d q=""
    # odd clients: a query string the registry ignores, a URI nginx hashes elsewhere
    [ $(($1 % 2)) = 0 ] || q="?client=$1"
    mkdir -p "$dir"
    curl -sS -f --max-time 120 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/index" "$U/manifests/oci-index" 2>"$dir/err" ||
        { echo "GET index: curl $?" >"$dir/result"; return; }
    [ "$(sha "$dir/index")" = "$top" ] || { echo "index digest $(sha "$dir/index")" >"$dir/result"; return; }
    curl -sS -f --max-time 120 -H "Accept: $MANIFEST_ACCEPT" -o "$dir/manifest" "$U/manifests/$amd" 2>>"$dir/err" ||
        { echo "GET manifest: curl $?" >"$dir/result"; return; }
    [ "$(sha "$dir/manifest")" = "$amd" ] || { echo "manifest digest" >"$dir/result"; return; }
    for d in "${BLOBS[@]}"; do args+=(-o "$dir/${d#sha256:}" "$U/blobs/$d$q"); done
    curl -sS -f --max-time 120 -Z --parallel-max 3 "${args[@]}" 2>>"$dir/err" ||
        { echo "GET blobs: curl $?" >"$dir/result"; return; }
    for d in "${BLOBS[@]}"; do
        [ "$(sha "$dir/${d#sha256:}")" = "$d" ] || { echo "blob $d: wrong digest" >"$dir/result"; return; }
    done
    echo ok >"$dir/result"
}
echo "== $N cold pulls through nginx"
fake_reset_log "$FP"
cpids=()
for i in $(seq "$N"); do
    client "$i" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
bad=0
for i in $(seq "$N"); do
    r=$(cat "$WORK/c$i/result" 2>/dev/null || echo "no result")
    [ "$r" = ok ] || { echo "client $i: $r ($(head -c 300 "$WORK/c$i/err" | tr '\n' ' '))" >&2; bad=$((bad + 1)); }
done
[ "$bad" = 0 ] || fail "$bad of $N clients did not get verified content"
for d in "${BLOBS[@]}"; do
    n=$(fake_count "$FP" GET blob ".ref == \"$d\"")
    expect_eq 1 "$n" "upstream GETs of blob $d for $N clients over nginx and 3 replicas"
done
follows=0
served=""
for p in "${RPORTS[@]}"; do
    follows=$((follows + $(metric_sum "$p" pullcache_fetch_follows_total)))
    served="$served $p:$(grep -c '/v2/up/library/co/blobs/' "$WORK/replica-$p.log" || true)"
done
for ref in oci-index "$amd"; do
    expect_eq 1 "$(fake_count "$FP" GET manifest ".ref == \"$ref\"")" \
        "upstream GETs of manifest $ref for $N clients over nginx and 3 replicas"
done
echo "ok: one upstream GET per blob and manifest; $follows fetches followed another replica; blob requests per replica:$served"

# ---- 2. push and pull through the balancer --------------------------------------------------
echo "== push and pull through nginx"
repo=fleet/app
push_image "$WORK/push" oci-index "$repo:v1"
push_image "$WORK/push" docker-single "$repo:d1"
expect_eq "$(img_digest "$WORK/push" oci-index)" "$(reg_digest "$repo" v1)" "HEAD $repo:v1 through nginx"
tags=$(curl -sS -f "http://$REG/v2/$repo/tags/list" | jq -r '.tags | sort | join(",")') || fail "tags/list"
expect_eq "d1,v1" "$tags" "tags of $repo through nginx"
for t in oci-index:v1 docker-single:d1; do
    out=$WORK/back-${t%%:*}
    sk copy -q --all --preserve-digests --src-tls-verify=false \
        "docker://$REG/$repo:${t#*:}" "dir:$out" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all docker://$REG/$repo:${t#*:} (see clients.log)"
    diff -r "$WORK/push/dir/${t%%:*}" "$out" >&2 || fail "$repo:${t#*:} pulled back differs from the pushed ${t%%:*}"
done
# what was pushed through nginx is there on every replica
for p in "${RPORTS[@]}"; do
    expect_eq "$(img_digest "$WORK/push" oci-index)" \
        "$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" "http://127.0.0.1:$p/v2/$repo/manifests/v1" |
            tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')" "HEAD $repo:v1 on replica $p"
done
echo "ok: two images pushed and pulled back byte-identical through nginx"

# ---- 3. a chunked upload over replicas ------------------------------------------------------
echo "== chunked upload, PATCHes to different replicas"
head -c 300000 /dev/urandom >"$WORK/up.bin"
want=$(sha "$WORK/up.bin")
loc=$(curl -sS -f -X POST -D - -o /dev/null "http://$REG/v2/team/app/blobs/uploads/" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
[ -n "$loc" ] || fail "no upload location from POST through nginx"
loc=${loc#http://"$REG"}
off=0
i=0
while [ "$off" -lt 300000 ]; do
    n=$((300000 - off < 100000 ? 300000 - off : 100000))
    p=${RPORTS[$((i % 3))]}
    dd if="$WORK/up.bin" of="$WORK/chunk" bs=100000 skip="$i" count=1 status=none
    loc=$(curl -sS -f -X PATCH -D - -o /dev/null -H "Content-Type: application/octet-stream" \
        -H "Content-Range: $off-$((off + n - 1))" --data-binary "@$WORK/chunk" "http://127.0.0.1:$p$loc" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
    [ -n "$loc" ] || fail "PATCH $i via replica $p"
    loc=${loc#http://127.0.0.1:"$p"}
    off=$((off + n))
    i=$((i + 1))
done
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "http://$REG$(url_with_param "$loc" "digest=$want")")
expect_eq 201 "$code" "PUT finishing the upload through nginx"
for p in "${RPORTS[@]}"; do
    curl -sS -f -o "$WORK/up.out" "http://127.0.0.1:$p/v2/team/app/blobs/$want" || fail "GET the uploaded blob on $p"
    expect_eq "$want" "$(sha "$WORK/up.out")" "uploaded blob read from replica $p"
done
echo "ok: 3 chunks over three replicas, digest $want"

# ---- 4. kill -9 of the fetching replica -----------------------------------------------------
echo "== kill -9 of the replica fetching a large blob"
bt=$(img_digest "$WORK/big" oci-single)
big=$(jq -r '.layers[1].digest' "$(blob_path "$WORK/big" "$bt")")
size=$(stat -c %s "$(blob_path "$WORK/big" "$big")")
curl -sS -f -o /dev/null -H "Accept: $MANIFEST_ACCEPT" "http://$REG/v2/up/library/big/manifests/oci-single" ||
    fail "manifest of the big image through nginx"
fake_reset_log "$FP"
B=http://$REG/v2/up/library/big/blobs/$big
K=3
kpids=()
for k in $(seq "$K"); do
    curl -sS -N -o "$WORK/k$k" --max-time 120 "$B" 2>"$WORK/k$k.err" &
    kpids+=($!)
done
# the replica nginx hashed the blob to is fetching it, and the clients have bytes
victim=""
for _ in $(seq 200); do
    for p in "${RPORTS[@]}"; do
        [ "$(metric_sum "$p" pullcache_fetches_in_flight)" -gt 0 ] && victim=$p
    done
    [ -n "$victim" ] && [ "$(stat -c %s "$WORK/k1" 2>/dev/null || echo 0)" -gt 0 ] && break
    sleep 0.05
done
[ -n "$victim" ] || fail "no replica is fetching the big blob"
[ "$(stat -c %s "$WORK/k1" 2>/dev/null || echo 0)" -gt 0 ] || fail "the first client received nothing of the big blob"
kill -KILL "${FLEET_PID[$victim]}"
wait "${FLEET_PID[$victim]}" 2>/dev/null || true
echo "killed replica $victim (pid ${FLEET_PID[$victim]}) while it fetched $big ($size bytes)"
retries=0
for k in $(seq "$K"); do
    wait "${kpids[$((k - 1))]}" || true
    ok=""
    for _ in 1 2 3; do
        [ "$(sha "$WORK/k$k")" = "$big" ] && { ok=1; break; }
        retries=$((retries + 1))
        curl -sS -f -o "$WORK/k$k" --max-time 120 "$B" 2>>"$WORK/k$k.err" || true
    done
    [ -n "$ok" ] || fail "client $k of the big blob has no verified bytes after 3 retries: $(tail -3 "$WORK/k$k.err")"
done
n=$(fake_count "$FP" GET blob ".ref == \"$big\"")
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail "the big blob was fetched $n times upstream (want 1 or 2)"
echo "ok: $K clients verified $size bytes ($retries retries through nginx); $n upstream GETs"

# ---- 5. no credential in any log, metric or status page ---------------------------------------
[ -n "${S3_SECRET_KEY:-}" ] || fail "no S3 secret known to look for"
for p in "${RPORTS[@]}"; do
    ! grep -qF "$S3_SECRET_KEY" "$WORK/replica-$p.log" || fail "replica $p's log has the S3 secret"
    [ "$p" = "$victim" ] && continue
    curl -sS "http://127.0.0.1:$p/metrics" >"$WORK/m$p.txt"
    curl -sS "http://127.0.0.1:$p/_pullcache/status" >"$WORK/s$p.json"
    ! grep -qF "$S3_SECRET_KEY" "$WORK/m$p.txt" "$WORK/s$p.json" || fail "replica $p's /metrics or status has the S3 secret"
done
echo "ok: the S3 secret is in no replica's log, /metrics or /_pullcache/status"
