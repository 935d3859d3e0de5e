#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cluster_auth.sh - replicas stream from each other with access control
# on (issue 14): two serve processes on one data directory, htpasswd users,
# and cluster.secret_file (the secret the replicas present to each other).
#   - a user pulls one big uncached blob through both replicas at once: both
#     get verified bytes, the upstream sends it once, and the fetching
#     replica's log shows the other's request as user "replica" (it streamed
#     from it: no wait for publication);
#   - a replica without the secret is refused by the fetching one and waits
#     for the blob to be published instead (still one upstream GET);
#   - a wrong secret, or the right one on anything but a blob read, is
#     refused like any unknown credential.
. "$(dirname "$0")/lib.sh"

pc_needs_disk "the replicas share one data directory"
FP=5002
PA=$PC_PORT
PB=5010
DATA=$WORK/data
bash "$PC_SRC/tests/tools/mkimage.sh" -b 12 "$WORK/img" clauth >/dev/null || fail "mkimage.sh"
fake_start slow_blobs "$FP" - - --repo library/x="$WORK/img"
htpasswd -nbB -C 5 ann ann-password-1 >"$WORK/htpasswd"
openssl rand -hex 32 >"$WORK/cluster.secret"
conf() { # PORT: the replica's config (users, access, cluster: the subject)
    cat <<YML
upstreams:
  - name: up
    url: http://127.0.0.1:$FP
auth:
  htpasswd: $WORK/htpasswd
  challenge: basic
  access:
    - prefix: up
      pull: [authenticated]
cluster:
  advertise: http://127.0.0.1:$1
  secret_file: $WORK/cluster.secret
YML
}
conf "$PA" >"$WORK/a.yml"
conf "$PB" >"$WORK/b.yml"
pc_start "$DATA" --config "$WORK/a.yml"
"$PULLCACHE" serve --config "$WORK/b.yml" --listen "127.0.0.1:$PB" --data "$DATA" \
    >>"$WORK/replica-b.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PB/v2/" "$!"

m=$(img_digest "$WORK/img" oci-single)
big=$(jq -r '.layers[1].digest' "$WORK/img/blobs/sha256/${m#sha256:}")
U=/v2/up/library/x
for p in "$PA" "$PB"; do
    curl -sS -f -u ann:ann-password-1 -o /dev/null -H "Accept: $MANIFEST_ACCEPT" \
        "http://127.0.0.1:$p$U/manifests/oci-single" || fail "manifest via $p"
done
fake_reset_log "$FP"
curl -sS -f -u ann:ann-password-1 -o "$WORK/a.bin" "http://127.0.0.1:$PA$U/blobs/$big" &
ca=$!
for _ in $(seq 100); do [ -s "$WORK/a.bin" ] && break; sleep 0.05; done
curl -sS -f -u ann:ann-password-1 -o "$WORK/b.bin" "http://127.0.0.1:$PB$U/blobs/$big" || fail "blob via B"
wait "$ca" || fail "blob via A"
expect_eq "$big" "$(sha "$WORK/a.bin")" "blob via A"
expect_eq "$big" "$(sha "$WORK/b.bin")" "blob via B"
expect_eq 1 "$(fake_count "$FP" GET blob ".ref == \"$big\"")" "upstream GETs of the blob over two replicas"
grep -q "GET $U/blobs/$big 200 .* user=replica" "$WORK/pullcache.log" ||
    fail "replica A's log has no blob read by user=replica (B did not stream from A)"
echo "ok: B streamed the blob from A as 'replica'; one upstream GET"

echo "== a replica without the secret"
PC3=5011
conf "$PC3" | grep -v secret_file >"$WORK/c.yml"
"$PULLCACHE" serve --config "$WORK/c.yml" --listen "127.0.0.1:$PC3" --data "$DATA" \
    >>"$WORK/replica-c.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PC3/v2/" "$!"
curl -sS -f -u ann:ann-password-1 -o /dev/null -H "Accept: $MANIFEST_ACCEPT" \
    "http://127.0.0.1:$PC3$U/manifests/oci-single" || fail "manifest via C"
l0=$(jq -r '.layers[0].digest' "$WORK/img/blobs/sha256/${m#sha256:}")
fake_reset_log "$FP"
curl -sS -f -u ann:ann-password-1 -o "$WORK/a0.bin" "http://127.0.0.1:$PA$U/blobs/$l0" &
ca=$!
sleep 0.3 # A holds the lease (the upstream waits 1 s before its first byte)
curl -sS -f -u ann:ann-password-1 -o "$WORK/c0.bin" "http://127.0.0.1:$PC3$U/blobs/$l0" || fail "blob via C"
wait "$ca" || fail "blob via A"
expect_eq "$l0" "$(sha "$WORK/c0.bin")" "blob via C (no secret)"
expect_eq 1 "$(fake_count "$FP" GET blob ".ref == \"$l0\"")" "upstream GETs of the blob over A and C"
grep -q "refused to stream it (401)" "$WORK/replica-c.log" || fail "C did not say why it could not stream from A"
echo "ok: without the secret C waited for A's copy"

code() { curl -sS -o /dev/null -w '%{http_code}' "$@"; }
expect_eq 401 "$(code -H "Authorization: Bearer not-the-cluster-secret-0000" "http://127.0.0.1:$PA$U/blobs/$big")" \
    "a blob read with a wrong secret"
expect_eq 401 "$(code -H "Authorization: Bearer $(cat "$WORK/cluster.secret")" -H "Accept: $MANIFEST_ACCEPT" \
    "http://127.0.0.1:$PA$U/manifests/oci-single")" "a manifest read with the cluster secret"
expect_eq 200 "$(code -H "Authorization: Bearer $(cat "$WORK/cluster.secret")" "http://127.0.0.1:$PA$U/blobs/$big")" \
    "a blob read with the cluster secret"
! grep -q "$(cat "$WORK/cluster.secret")" "$WORK/pullcache.log" "$WORK/replica-b.log" || fail "the secret is in a log"
echo "ok: the secret reads blobs only, a wrong one is refused, no log has it"
