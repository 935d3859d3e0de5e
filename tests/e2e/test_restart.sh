#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_restart.sh - what was pushed survives a restart and a crash, and a crash
# in the middle of an upload publishes nothing.
#
#  1. push two images, stop the registry, start it on the same data directory,
#     pull both back with skopeo: byte-identical.
#  2. push a third image; start two large uploads - a chunked PATCH (with
#     Content-Range) and a monolithic PUT ?digest= - whose bodies the test
#     feeds through FIFOs; once more than half of each body has been handed to
#     curl, SIGKILL the registry. Restart it: neither digest exists (HEAD 404,
#     GET 404), the dead session cannot be completed with the partial data,
#     the same blob uploads cleanly afterwards, and the three images are intact.
. "$(dirname "$0")/lib.sh"
pc_needs_persistent "what was pushed to survive a restart"

clients_init
data=$WORK/data
repo=e2e/restart/app
img=$WORK/img
img2=$WORK/img2
mkimages "$img" restart-1
mkimages "$img2" restart-2
mkdir -p "$WORK/back"

# pull_check DIR TAG REF: pull REF back with skopeo; byte-identical to image TAG.
pull_check() {
    local out=$WORK/back/$RANDOM
    expect_eq "$(img_digest "$1" "$2")" "$(reg_digest "$repo" "$3")" "HEAD /v2/$repo/manifests/$3 Docker-Content-Digest"
    echo "+ skopeo copy --all docker://$REG/$repo:$3 dir:$out" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests --src-tls-verify=false \
        "docker://$REG/$repo:$3" "dir:$out" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo copy --all docker://$REG/$repo:$3 (see clients.log)"
    diff -r "$1/dir/$2" "$out" >&2 || fail "$repo:$3 pulled back differs from the pushed $2"
    rm -rf "$out"
}

# ---- 1. graceful restart ------------------------------------------------------
reg_start "$data"
push_image "$img" oci-index "$repo:v1"
push_image "$img" docker-single "$repo:d1"
reg_stop
reg_start "$data"
pull_check "$img" oci-index v1
pull_check "$img" docker-single d1
echo "ok: images survive a restart"

# ---- 2. crash during uploads --------------------------------------------------
pc_needs_disk "the upload staging files in the data directory (to kill serve mid-push)"
push_image "$img2" oci-single "$repo:v2"

size=$((64 * 1048576))
half=$((40 * 1048576))
head -c "$size" /dev/urandom >"$WORK/big-a.bin"
head -c "$size" /dev/urandom >"$WORK/big-b.bin"
dig_a=sha256:$(sha256sum "$WORK/big-a.bin" | cut -d' ' -f1)
dig_b=sha256:$(sha256sum "$WORK/big-b.bin" | cut -d' ' -f1)
expect_eq 404 "$(reg_status HEAD "/v2/$repo/blobs/$dig_a")" "HEAD of blob A before its upload"

# A: POST, then one PATCH with Content-Range/Content-Length of the whole blob.
url_a=$(reg_upload_url "$repo")
mkfifo "$WORK/a.fifo"
exec 7<>"$WORK/a.fifo"
curl -sS -o "$WORK/patch.out" -w '%{http_code}\n' -X PATCH -T "$WORK/a.fifo" \
    -H 'Transfer-Encoding:' -H "Content-Length: $size" -H "Content-Range: 0-$((size - 1))" \
    -H 'Content-Type: application/octet-stream' "$url_a" >"$WORK/patch.code" 2>"$WORK/patch.err" 7>&- &
curl_a=$!
PIDS+=("$curl_a")

# B: POST, then a monolithic PUT ?digest= carrying the whole blob.
url_b=$(reg_upload_url "$repo")
mkfifo "$WORK/b.fifo"
exec 8<>"$WORK/b.fifo"
curl -sS -o "$WORK/put.out" -w '%{http_code}\n' -X PUT -T "$WORK/b.fifo" \
    -H 'Transfer-Encoding:' -H "Content-Length: $size" -H 'Content-Type: application/octet-stream' \
    "$(url_with_param "$url_b" "digest=$dig_b")" >"$WORK/put.code" 2>"$WORK/put.err" 7>&- 8>&- &
curl_b=$!
PIDS+=("$curl_b")

# Hand curl 40 of the 64 MiB. A pipe holds 64 KiB and loopback socket buffers
# a few MiB, so once head returns the registry has read most of it; the rest
# of each body never comes, so both requests are still open at the kill.
# (timeout only turns a registry that stops reading into a failure, not a hang.)
timeout 60 head -c "$half" "$WORK/big-a.bin" >&7 || fail "PATCH: the registry stopped reading the body"
timeout 60 head -c "$half" "$WORK/big-b.bin" >&8 || fail "PUT: the registry stopped reading the body"
kill -0 "$curl_a" 2>/dev/null || fail "PATCH ended before the crash: $(cat "$WORK/patch.code" "$WORK/patch.err")"
kill -0 "$curl_b" 2>/dev/null || fail "PUT ended before the crash: $(cat "$WORK/put.code" "$WORK/put.err")"
reg_kill
# Close the FIFOs first: curl blocks reading its body until it sees EOF (which
# is why neither curl inherits the test's ends of the FIFOs).
exec 7>&- 8>&-
wait "$curl_a" || true
wait "$curl_b" || true
echo "crash: last status curl saw: PATCH $(cat "$WORK/patch.code"), PUT $(cat "$WORK/put.code") (100 = Continue)"

reg_start "$data"
for d in "$dig_a" "$dig_b"; do
    expect_eq 404 "$(reg_status HEAD "/v2/$repo/blobs/$d")" "HEAD /v2/$repo/blobs/$d (interrupted upload) after the crash"
    expect_eq 404 "$(reg_status GET "/v2/$repo/blobs/$d")" "GET /v2/$repo/blobs/$d (interrupted upload) after the crash"
done

# The dead sessions cannot be finished with what they received.
code=$(reg_status PUT "$(url_with_param "${url_a#http://"$REG"}" "digest=$dig_a")" \
    -H 'Content-Length: 0' -H 'Content-Type: application/octet-stream')
case $code in 4??) ;; *) fail "PUT ?digest= closing the interrupted PATCH session: want 4xx, got $code" ;; esac
code=$(reg_status PUT "$(url_with_param "${url_b#http://"$REG"}" "digest=$dig_b")" \
    -H 'Content-Length: 0' -H 'Content-Type: application/octet-stream')
case $code in 4??) ;; *) fail "PUT ?digest= on the interrupted PUT session: want 4xx, got $code" ;; esac
for d in "$dig_a" "$dig_b"; do
    expect_eq 404 "$(reg_status HEAD "/v2/$repo/blobs/$d")" "HEAD /v2/$repo/blobs/$d after trying to close the dead session"
done

# The same blob uploads cleanly now, and reads back whole.
expect_eq "$dig_a" "$(reg_push_blob "$repo" "$WORK/big-a.bin")" "digest of blob A uploaded again"
h=$WORK/big.headers
code=$(curl -sS -I -D "$h" -o /dev/null -w '%{http_code}' "http://$REG/v2/$repo/blobs/$dig_a")
expect_eq 200 "$code" "HEAD /v2/$repo/blobs/$dig_a after a clean upload"
expect_eq "$size" "$(reg_header "$h" Content-Length)" "HEAD /v2/$repo/blobs/$dig_a Content-Length"
got=sha256:$(curl -sS -f -L "http://$REG/v2/$repo/blobs/$dig_a" | sha256sum | cut -d' ' -f1)
expect_eq "$dig_a" "$got" "sha256 of GET /v2/$repo/blobs/$dig_a"

# Everything pushed before the crash is intact.
pull_check "$img" oci-index v1
pull_check "$img" docker-single d1
pull_check "$img2" oci-single v2
echo "ok: a crash mid-upload publishes nothing and loses nothing"

# And once more after a graceful restart.
reg_stop
reg_start "$data"
pull_check "$img2" oci-single v2
expect_eq 200 "$(reg_status HEAD "/v2/$repo/blobs/$dig_a")" "HEAD of blob A after another restart"
expect_eq 404 "$(reg_status HEAD "/v2/$repo/blobs/$dig_b")" "HEAD of blob B after another restart"
echo "PASS: $TEST_NAME ($REGISTRY)"
