#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_s3_redirect.sh - blobs on S3 (a radosgw started here, tests/tools/rgw.sh)
# served two ways (issue 14):
#   - storage.blobs.redirect: true: skopeo pulls a pushed image (and a
#     mirrored one, fetched and stored first) and curl -L fetches blobs
#     whole and by Range: every byte verified, while serve answered each
#     blob GET with 307 to a presigned URL on the S3 endpoint (with
#     Docker-Content-Digest), HEAD locally, a blob not linked in the
#     repository 404 without a redirect, and its metrics show it sent no
#     blob byte itself (pullcache_blob_bytes_sent_total) but redirected;
#   - redirect off (proxying): the same pull is verified, the bytes sent are
#     counted, and an object replaced under its key by other bytes (a new
#     ETag) after its version was verified is hashed again and never served
#     whole: the client's body is cut and the blob is taken out of service.
# Skipped (77) when radosgw is not installed.
. "$(dirname "$0")/lib.sh"

for c in radosgw ceph-mon ceph-osd; do
    if ! command -v "$c" >/dev/null; then
        echo "SKIP: $TEST_NAME: $c is not installed (scripts/deps.sh --test)"
        exit 77
    fi
done

RGW=$WORK/rgw
_s3_cleanup() {
    local rc=$?
    pc_stop
    bash "$PC_SRC/tests/tools/rgw.sh" stop "$RGW" >/dev/null 2>&1 || true
    (exit "$rc")
    _pc_cleanup
}
trap _s3_cleanup EXIT

RGW_PORT=5080
FP=5002
if [ "$PC_STORAGE" = s3pg ]; then
    # the run's radosgw and this test's bucket there (lib.sh; serve's
    # storage.blobs is pointed at them, this test's redirect keys kept)
    S3_ENDPOINT=http://127.0.0.1:$S3PG_PORT S3_BUCKET=$S3PG_BUCKET
else
    bash "$PC_SRC/tests/tools/rgw.sh" start "$RGW" "$RGW_PORT" >"$WORK/rgw-start.log" 2>&1 ||
        fail "radosgw did not start (see $WORK/rgw-start.log, $RGW/log)"
    # shellcheck disable=SC1091
    . "$RGW/env"
fi
printf 'aws_access_key_id = %s\naws_secret_access_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" \
    >"$WORK/s3.credentials"
chmod 600 "$WORK/s3.credentials"

# serve_s3 REDIRECT: serve on the bucket (meta in $WORK/data/meta.db)
serve_s3() {
    cat >"$WORK/pc.yml" <<YML
storage:
  blobs:
    driver: s3
    endpoint: $S3_ENDPOINT
    bucket: $S3_BUCKET
    region: $S3_REGION
    path_style: true
    credentials_file: $WORK/s3.credentials
    redirect: $1
    redirect_ttl: 120
YML
    PC_STORAGE_ARGS=()
    pc_start "$WORK/data" --config "$WORK/pc.yml" --upstream "up=http://127.0.0.1:$FP"
}

metric() { # NAME: its value in /metrics (0 when absent)
    curl -sS "http://$REG/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}

clients_init
mkimages "$WORK/img" s3redirect
mkimages "$WORK/up" s3upstream
fake_start pass "$FP" - - --repo library/up="$WORK/up"

serve_s3 true
push_image "$WORK/img" oci-single app:1
push_image "$WORK/img" docker-single app:2
expect_eq 0 "$(metric pullcache_blob_redirects_total)" "redirects before any pull"

# skopeo follows the 307s to radosgw and checks every digest itself
sk copy -q --src-tls-verify=false "docker://$REG/app:1" "oci:$WORK/pull1:x" >>"$WORK/clients.log" 2>&1 ||
    fail "skopeo pull of app:1 through redirects (see clients.log)"
sk copy -q --src-tls-verify=false "docker://$REG/app:2" "dir:$WORK/pull2" >>"$WORK/clients.log" 2>&1 ||
    fail "skopeo pull of app:2 through redirects (see clients.log)"
# the mirrored image: the first pull streams it from upstream (and stores it),
# the second is served from the store: redirected
sk copy -q --src-tls-verify=false "docker://$REG/up/library/up:oci-single" "oci:$WORK/pull3:x" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo pull of the mirrored image (see clients.log)"
red_before=$(metric pullcache_blob_redirects_total)
[ "$red_before" -gt 0 ] || fail "no blob GET was redirected"

# every layer of app:1 by hand: 307 to the endpoint, then the bytes
man=$(jq -r '.manifests[0].digest' "$WORK/pull1/index.json")
mapfile -t blobs < <(jq -r '.config.digest, .layers[].digest' "$WORK/pull1/blobs/sha256/${man#sha256:}")
[ "${#blobs[@]}" -ge 5 ] || fail "app:1 has ${#blobs[@]} blobs"
for b in "${blobs[@]}"; do
    code=$(curl -sS -o /dev/null -D "$WORK/h" -w '%{http_code}' "http://$REG/v2/app/blobs/$b")
    expect_eq 307 "$code" "GET of $b"
    loc=$(reg_header "$WORK/h" Location)
    case $loc in "$S3_ENDPOINT/"*X-Amz-Signature=*) ;; *) fail "Location of $b: $loc" ;; esac
    expect_eq "$b" "$(reg_header "$WORK/h" Docker-Content-Digest)" "Docker-Content-Digest of the 307"
    curl -sSfL -o "$WORK/b" "http://$REG/v2/app/blobs/$b" || fail "curl -L of $b"
    expect_eq "$b" "$(sha "$WORK/b")" "bytes of $b through the redirect"
done
big=${blobs[2]} # the data layer (4 MiB of random bytes)
curl -sSfL -o "$WORK/big" "http://$REG/v2/app/blobs/$big"
size=$(stat -c %s "$WORK/big")
# a Range request is redirected too, and the store honours the Range
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Range: bytes=1000-1999' "http://$REG/v2/app/blobs/$big")
expect_eq 307 "$code" "ranged GET"
code=$(curl -sSL -o "$WORK/part" -w '%{http_code}' -H 'Range: bytes=1000-1999' "http://$REG/v2/app/blobs/$big")
expect_eq 206 "$code" "ranged GET after the redirect"
cmp -s "$WORK/part" <(tail -c +1001 "$WORK/big" | head -c 1000) || fail "the range's bytes"
# HEAD is answered here, with the size
curl -sS -I -o "$WORK/h" "http://$REG/v2/app/blobs/$big"
expect_eq 200 "$(awk 'NR == 1 { print $2 }' "$WORK/h")" "HEAD status"
expect_eq "$size" "$(reg_header "$WORK/h" Content-Length)" "HEAD Content-Length"
# a blob that is stored but not linked in the repository: no redirect
code=$(curl -sS -o /dev/null -D "$WORK/h" -w '%{http_code}' "http://$REG/v2/other/blobs/$big")
expect_eq 404 "$code" "GET of a blob another repository holds"
expect_eq "" "$(reg_header "$WORK/h" Location)" "Location of the 404"
# the mirrored image's layer: stored now, so redirected
upman=$(jq -r '.manifests[0].digest' "$WORK/pull3/index.json")
uplayer=$(jq -r '.layers[1].digest' "$WORK/pull3/blobs/sha256/${upman#sha256:}")
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://$REG/v2/up/library/up/blobs/$uplayer")
expect_eq 307 "$code" "GET of a stored mirrored blob"
curl -sSfL -o "$WORK/b" "http://$REG/v2/up/library/up/blobs/$uplayer"
expect_eq "$uplayer" "$(sha "$WORK/b")" "mirrored blob through the redirect"

# what serve itself sent: only the mirrored image's first pull (streamed
# from upstream while stored); nothing of the pulls from the store
sent_redirect=$(metric pullcache_blob_bytes_sent_total)
upbytes=0
for b in $(jq -r '.config.digest, .layers[].digest' "$WORK/pull3/blobs/sha256/${upman#sha256:}"); do
    upbytes=$((upbytes + $(stat -c %s "$WORK/pull3/blobs/sha256/${b#sha256:}")))
done
[ "$sent_redirect" -le "$upbytes" ] || fail "serve sent $sent_redirect blob bytes with redirect on (the mirrored pull streamed $upbytes)"
grep -q " GET /v2/app/blobs/$big 307 0 " "$WORK/pullcache.log" || fail "no 307 in the request log"
if grep -E " GET /v2/app/blobs/sha256:[0-9a-f]+ 20[06] " "$WORK/pullcache.log"; then
    fail "serve streamed a blob of app with redirect on"
fi
pc_stop

# ---- redirect off: serve proxies the bytes ----
serve_s3 false
sk copy -q --src-tls-verify=false "docker://$REG/app:1" "oci:$WORK/pull4:x" >>"$WORK/clients.log" 2>&1 ||
    fail "skopeo pull of app:1 proxied (see clients.log)"
expect_eq 0 "$(metric pullcache_blob_redirects_total)" "redirects with redirect off"
sent=$(metric pullcache_blob_bytes_sent_total)
[ "$sent" -gt "$size" ] || fail "serve sent $sent blob bytes proxying (the data layer alone has $size)"
# twice more: the second whole GET goes out unhashed (the ETag hashed right)
for i in 1 2; do
    curl -sSf -o "$WORK/b" "http://$REG/v2/app/blobs/$big" || fail "proxied GET $i"
    expect_eq "$big" "$(sha "$WORK/b")" "proxied GET $i"
done
# replace the object under the blob's key by other bytes of the same size: a
# new ETag, so the next whole GET is hashed again and cut before its end
head -c "$size" /dev/urandom >"$WORK/evil"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    --data-binary "@$WORK/evil" "$S3_ENDPOINT/$S3_BUCKET/blobs/sha256/${big#sha256:}")
expect_eq 200 "$code" "overwriting the object in S3"
rm -f "$WORK/b"
if curl -sSf -o "$WORK/b" "http://$REG/v2/app/blobs/$big" 2>"$WORK/cut.err"; then
    fail "a replaced object was served whole ($(sha "$WORK/b"))"
fi
[ ! -f "$WORK/b" ] || [ "$(stat -c %s "$WORK/b")" -lt "$size" ] || fail "the cut body is whole"
grep -q "hash to" "$WORK/pullcache.log" || fail "serve did not report the damaged blob"
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://$REG/v2/app/blobs/$big")
expect_eq 404 "$code" "GET of the damaged blob after it was taken out of service"
echo "PASS: $TEST_NAME"
