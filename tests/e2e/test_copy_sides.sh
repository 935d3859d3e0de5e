# SPDX-License-Identifier: Apache-2.0
# test_copy_sides.sh - each side of `pullcache copy` and `pullcache sync` on
# its own terms: a source over HTTPS (docker-registry with a test CA made
# here by openssl, and basic auth) copied to a plain-HTTP pullcache with
# per-side flags (--src-ca-file, --src-username + --src-password-env,
# --src-password-file or --password-stdin, --dest-plain-http; a missing or
# stray password refused) and with the shared flags meaning
# both sides; http:// and https:// prefixes choosing the scheme over the
# flags; the loopback rule (no flags: the README's `copy SRC
# 127.0.0.1:5000/...` form works, https source unverified, plain-HTTP
# destination found); a registry on a non-loopback address (192.0.2.10 on
# lo) gets no such fallback, and TLS spoken to it fails with a message that
# says it speaks plain HTTP and names the flag, for copy (--dest-plain-http),
# pull, ratelimit and loadgen (--plain-http) and sync (plain_http under
# destination_options); a certificate the client does not trust names
# --src-ca-file; sync with per-mapping source_options and
# destination_options, and an unknown key in them refused.
. "$(dirname "$0")/lib.sh"
clients_init

P=$PULLCACHE
PC=127.0.0.1:$PC_PORT
TLS_PORT=5443
SRC=127.0.0.1:$TLS_PORT
FAR_IP=192.0.2.10 # TEST-NET-1 on lo: a registry that is not loopback
FAR=$FAR_IP:5002
USER_NAME=robot
export SRC_PASSWORD=s3cret-src

ip addr add "$FAR_IP/32" dev lo || fail "cannot add $FAR_IP to lo"

# ---- a test CA and docker-registry over HTTPS with basic auth --------------------
pki=$WORK/pki
mkdir -p "$pki" "$WORK/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=pullcache e2e sides CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>>"$WORK/openssl.log" || fail "openssl: CA"
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/srv.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$pki/srv.key" -out "$pki/srv.csr" -subj "/CN=localhost" 2>>"$WORK/openssl.log" &&
    openssl x509 -req -in "$pki/srv.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial 0x51 \
        -days 2 -extfile "$pki/srv.ext" -out "$pki/srv.crt" 2>>"$WORK/openssl.log" ||
    fail "openssl: server certificate"
cp "$pki/ca.crt" "$WORK/certs/ca.crt"
htpasswd -Bbc "$WORK/htpasswd" "$USER_NAME" "$SRC_PASSWORD" 2>/dev/null
mkdir -p "$WORK/dist-tls"
cat >"$WORK/dist-tls.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/dist-tls
http:
  addr: $SRC
  secret: pullcache-e2e
  tls:
    certificate: $pki/srv.crt
    key: $pki/srv.key
auth:
  htpasswd:
    realm: pullcache-e2e
    path: $WORK/htpasswd
YML
# shellcheck disable=SC2046
env $(compgen -e | awk '/^REGISTRY_/ { print "-u", $0 }') \
    docker-registry serve "$WORK/dist-tls.yml" >>"$WORK/dist-tls.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$pki/ca.crt" "https://$SRC/v2/" && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || fail "docker-registry (TLS) exited at start"
    sleep 0.1
done

pc_start "$WORK/pc"
# a second pullcache, plain HTTP on a non-loopback address
"$P" serve --listen "$FAR" --data "$WORK/far" >>"$WORK/far.log" 2>&1 &
PIDS+=("$!")
wait_http "http://$FAR/v2/" "${PIDS[-1]}"

mkimages "$WORK/img" seedSides 1
for t in oci-index docker-list oci-single; do
    sk copy -q --all --preserve-digests --dest-cert-dir "$WORK/certs" \
        --dest-creds "$USER_NAME:$SRC_PASSWORD" "$(img_src "$WORK/img" "$t")" \
        "docker://$SRC/test/img:$t" >>"$WORK/clients.log" 2>&1 || fail "skopeo push $t over TLS"
done

digest_at() { # HOST REPO REF: Docker-Content-Digest of a plain-HTTP manifest HEAD ("" unless 200)
    local h=$WORK/dg.h code
    code=$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" -D "$h" -o /dev/null -w '%{http_code}' \
        "http://$1/v2/$2/manifests/$3") || true
    [ "$code" = 200 ] && reg_header "$h" Docker-Content-Digest || true
}
# run NAME CMD...: stdout in $WORK/NAME.out, stderr in $WORK/NAME.err, exit code in $RC
run() {
    local name=$1
    shift
    RC=0
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null || RC=$?
}
has() { grep -qF -- "$2" "$WORK/$1.err" || fail "$1: '$2' not in: $(cat "$WORK/$1.err")"; }
lines() { wc -l <"$WORK/$1.err"; }
want_index=$(img_digest "$WORK/img" oci-index)
want_list=$(img_digest "$WORK/img" docker-list)
want_single=$(img_digest "$WORK/img" oci-single)
SRC_AUTH=(--src-username "$USER_NAME" --src-password-env SRC_PASSWORD)

echo "--- per-side flags: verified HTTPS source with its CA and a login, plain-HTTP destination"
run sides "$P" copy --src-ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" --dest-plain-http \
    "$SRC/test/img:oci-index" "$FAR/sides/img"
expect_eq 0 "$RC" "copy with per-side flags (err: $(cat "$WORK/sides.err"))"
expect_eq "$want_index" "$(digest_at "$FAR" sides/img oci-index)" "digest after per-side copy"
# the source really is verified: the CA is what makes it work
run noca "$P" copy "${SRC_AUTH[@]}" --dest-plain-http "https://$SRC/test/img:oci-index" "$FAR/noca/img"
expect_eq 3 "$RC" "https:// source without its CA"
expect_eq 1 "$(lines noca)" "untrusted certificate: stderr lines"
has noca "the source registry's certificate or TLS setup was refused: --src-ca-file FILE trusts its CA"
# the login is the source's: without it the source refuses, and the password file works too
run nologin "$P" copy --src-ca-file "$pki/ca.crt" --dest-plain-http \
    "$SRC/test/img:oci-index" "$FAR/nologin/img"
expect_eq 3 "$RC" "copy without the source's login"
has nologin "source: 401"
printf '%s\n' "$SRC_PASSWORD" >"$WORK/src.pass"
run pwfile "$P" copy --src-ca-file "$pki/ca.crt" --src-username "$USER_NAME" \
    --src-password-file "$WORK/src.pass" --dest-plain-http "$SRC/test/img:docker-list" "$FAR/pwfile/img"
expect_eq 0 "$RC" "copy with --src-password-file (err: $(cat "$WORK/pwfile.err"))"
expect_eq "$want_list" "$(digest_at "$FAR" pwfile/img docker-list)" "digest with --src-password-file"
run nopass "$P" copy --src-ca-file "$pki/ca.crt" --src-username "$USER_NAME" --dest-plain-http \
    "$SRC/test/img:oci-index" "$FAR/nopass/img"
[ "$RC" -ne 0 ] || fail "--src-username without a password was accepted"
has nopass "--src-username wants a password: --src-password-env VAR, --src-password-file FILE or --password-stdin"
# --password-stdin serves the side with a username (here only the source)
RC=0
printf '%s\n' "$SRC_PASSWORD" | "$P" copy --src-ca-file "$pki/ca.crt" --src-username "$USER_NAME" \
    --password-stdin --dest-plain-http "$SRC/test/img:oci-single" "$FAR/stdin/img" \
    >"$WORK/stdin.out" 2>"$WORK/stdin.err" || RC=$?
expect_eq 0 "$RC" "copy with --src-username and --password-stdin (err: $(cat "$WORK/stdin.err"))"
expect_eq "$want_single" "$(digest_at "$FAR" stdin/img oci-single)" "digest with --password-stdin"
run stdin_alone "$P" copy --password-stdin --dest-plain-http "$SRC/test/img:oci-single" "$FAR/stdin/img"
expect_eq 2 "$RC" "--password-stdin without a username"
has stdin_alone "--password-stdin goes with --username (or --src-username, --dest-username)"
unset_env_run() { SRC_PASSWORD='' "$@"; }
run noenv unset_env_run "$P" copy --src-ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" --dest-plain-http \
    "$SRC/test/img:oci-index" "$FAR/noenv/img"
[ "$RC" -ne 0 ] || fail "an empty \$SRC_PASSWORD was accepted"
has noenv "--src-password-env: \$SRC_PASSWORD is empty or not set"

echo "--- the shared flags mean both sides; a side's own flag wins"
# --ca-file for both (the destination is plain HTTP by its own flag)
run shared "$P" copy --ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" --dest-plain-http \
    "$SRC/test/img:oci-single" "$FAR/shared/img"
expect_eq 0 "$RC" "copy with a shared --ca-file (err: $(cat "$WORK/shared.err"))"
expect_eq "$want_single" "$(digest_at "$FAR" shared/img oci-single)" "digest with a shared --ca-file"
# --plain-http for both would break the HTTPS source; an https:// prefix wins over it
run prefix_wins "$P" copy --plain-http --src-ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" \
    "https://$SRC/test/img:oci-single" "$FAR/prefixwins/img"
expect_eq 0 "$RC" "https:// prefix over --plain-http (err: $(cat "$WORK/prefix_wins.err"))"
expect_eq "$want_single" "$(digest_at "$FAR" prefixwins/img oci-single)" "digest after prefix over flag"
run plain_both "$P" copy --plain-http --src-ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" \
    "$SRC/test/img:oci-single" "$FAR/plainboth/img"
expect_eq 3 "$RC" "--plain-http applies to the source as well"

echo "--- http:// prefixes choose the scheme"
run prefix "$P" copy --src-ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" \
    "https://$SRC/test/img:docker-list" "http://$FAR/prefix/img"
expect_eq 0 "$RC" "copy with scheme prefixes (err: $(cat "$WORK/prefix.err"))"
expect_eq "$want_list" "$(digest_at "$FAR" prefix/img docker-list)" "digest with http:// destination"
grep -q "$SRC/test/img:docker-list -> $FAR/prefix/img:docker-list" "$WORK/prefix.out" ||
    fail "summary names the sides without the prefix: $(cat "$WORK/prefix.out")"

echo "--- loopback registries: Docker's insecure-registry rule, no flags needed"
# the README's form: an HTTPS source (certificate not verified on loopback)
# and a plain-HTTP pullcache on 127.0.0.1, neither named with a scheme
run loop "$P" copy "${SRC_AUTH[@]}" "$SRC/test/img:oci-index" "$PC/mirror/img"
expect_eq 0 "$RC" "copy between loopback registries without scheme flags (err: $(cat "$WORK/loop.err"))"
expect_eq "$want_index" "$(digest_at "$PC" mirror/img oci-index)" "digest at the loopback pullcache"
run loop_localhost "$P" copy "$PC/mirror/img:oci-index" "localhost:$PC_PORT/again/img"
expect_eq 0 "$RC" "localhost destination (err: $(cat "$WORK/loop_localhost.err"))"
expect_eq "$want_index" "$(digest_at "$PC" again/img oci-index)" "digest at localhost"
run loop_pull "$P" pull --discard "$PC/mirror/img:oci-index"
expect_eq 0 "$RC" "pull from a loopback plain-HTTP registry without --plain-http (err: $(cat "$WORK/loop_pull.err"))"
# an explicit https:// on loopback is taken at its word: no fallback, and the advice
run loop_https "$P" pull --discard "https://$PC/mirror/img:oci-index"
expect_eq 3 "$RC" "pull https:// from a plain-HTTP loopback registry"
has loop_https "the registry speaks plain HTTP, not TLS: use --plain-http or an http:// reference"

echo "--- not loopback: no fallback, and the TLS error says plain HTTP and names the flag"
run far_copy "$P" copy --src-ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" "$SRC/test/img:oci-index" "$FAR/nofallback/img"
expect_eq 3 "$RC" "copy to a plain-HTTP registry over TLS"
expect_eq 1 "$(lines far_copy)" "copy: stderr lines"
has far_copy "destination: tls: "
has far_copy "the destination registry speaks plain HTTP, not TLS: use --dest-plain-http or an http:// reference"
expect_eq "" "$(digest_at "$FAR" nofallback/img oci-index)" "nothing tagged after the TLS failure"
run far_copy_json "$P" copy --json --src-ca-file "$pki/ca.crt" "${SRC_AUTH[@]}" "$SRC/test/img:oci-index" "$FAR/nofallback/img"
jq -e '.error.side == "destination" and (.error.advice | test("--dest-plain-http"))' "$WORK/far_copy_json.out" >/dev/null ||
    fail "copy --json: no advice: $(cat "$WORK/far_copy_json.out")"
run far_src "$P" copy "$FAR/shared/img:oci-single" "$PC/fromfar/img"
expect_eq 3 "$RC" "copy from a plain-HTTP registry over TLS"
has far_src "the source registry speaks plain HTTP, not TLS: use --src-plain-http or an http:// reference"
run far_pull "$P" pull --discard "$FAR/shared/img:oci-single"
expect_eq 3 "$RC" "pull over TLS from a plain-HTTP registry"
has far_pull "the registry speaks plain HTTP, not TLS: use --plain-http or an http:// reference"
run far_pull_ok "$P" pull --discard "http://$FAR/shared/img:oci-single"
expect_eq 0 "$RC" "pull http:// (err: $(cat "$WORK/far_pull_ok.err"))"
run far_rl "$P" ratelimit "$FAR/shared/img:oci-single"
expect_eq 3 "$RC" "ratelimit over TLS from a plain-HTTP registry"
expect_eq 1 "$(lines far_rl)" "ratelimit: stderr lines"
has far_rl "TLS failure with https://$FAR: "
has far_rl "the registry speaks plain HTTP, not TLS: use --plain-http or an http:// reference"
run far_rl_ok "$P" ratelimit --plain-http "$FAR/shared/img:oci-single"
expect_eq 0 "$RC" "ratelimit --plain-http (err: $(cat "$WORK/far_rl_ok.err"))"
run far_lg "$P" loadgen --manifest-only "$FAR/shared/img:oci-single"
expect_eq 3 "$RC" "loadgen over TLS from a plain-HTTP registry"
grep -qF "the registry speaks plain HTTP, not TLS: use --plain-http or an http:// reference" "$WORK/far_lg.out" ||
    fail "loadgen report lacks the advice: $(cat "$WORK/far_lg.out")"

echo "--- sync: per-mapping source_options and destination_options"
cat >"$WORK/sync.yml" <<YML
mappings:
  - source: https://$SRC/test/img
    destination: $FAR/synced/img
    tags: [oci-index, docker-list]
    source_options:
      ca_file: $pki/ca.crt
      username: $USER_NAME
      password_env: SRC_PASSWORD
    destination_options: {plain_http: true}
  - source: $SRC/test/img
    destination: http://$FAR/synced2/img
    tags: [oci-single]
    source_options: {plain_http: false, ca_file: $pki/ca.crt, username: $USER_NAME, password_file: $WORK/src.pass}
YML
run sync1 "$P" sync --once --json "$WORK/sync.yml"
expect_eq 0 "$RC" "sync with per-mapping options (err: $(cat "$WORK/sync1.err"))"
expect_eq "3 0 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed)"' "$WORK/sync1.out")" "sync copied/up to date/failed"
expect_eq "$want_index" "$(digest_at "$FAR" synced/img oci-index)" "synced oci-index"
expect_eq "$want_list" "$(digest_at "$FAR" synced/img docker-list)" "synced docker-list"
expect_eq "$want_single" "$(digest_at "$FAR" synced2/img oci-single)" "synced oci-single"
# the mapping's options (and prefixes) win over the command line's flags for that side:
# --src-plain-http is undone by https:// and plain_http: false, --dest-ca-file goes unused
run sync2 "$P" sync --once --json --src-plain-http --dest-ca-file /nonexistent "$WORK/sync.yml"
expect_eq 0 "$RC" "sync: options over flags (err: $(cat "$WORK/sync2.err"))"
expect_eq "0 3 0" "$(jq -r '"\(.copied) \(.up_to_date) \(.failed)"' "$WORK/sync2.out")" "second sync"
# a plain-HTTP destination that is not loopback, without its option: the advice names the key
cat >"$WORK/sync-far.yml" <<YML
mappings:
  - source: $SRC/test/img
    destination: $FAR/nooption/img
    tags: [oci-single]
    source_options: {ca_file: $pki/ca.crt, username: $USER_NAME, password_env: SRC_PASSWORD}
YML
run syncfar "$P" sync --once "$WORK/sync-far.yml"
expect_eq 3 "$RC" "sync to a plain-HTTP registry over TLS"
grep -qF "the destination registry speaks plain HTTP, not TLS: use --dest-plain-http or an http:// reference, or plain_http: true under destination_options" "$WORK/syncfar.out" ||
    fail "sync: no advice: $(cat "$WORK/syncfar.out")"
# unknown keys in the options are refused, with the key named
cat >"$WORK/sync-bad.yml" <<YML
mappings:
  - source: $SRC/test/img
    destination: $PC/bad/img
    tags: [oci-single]
    source_options: {tls_verify: false}
YML
run syncbad "$P" sync --check "$WORK/sync-bad.yml"
expect_eq 1 "$RC" "sync --check with an unknown option"
has syncbad "tls_verify"
cat >"$WORK/sync-bad2.yml" <<YML
mappings:
  - source: http://$SRC/test/img
    destination: $PC/bad/img
    tags: [oci-single]
    source_options: {plain_http: false}
YML
run syncbad2 "$P" sync --check "$WORK/sync-bad2.yml"
expect_eq 1 "$RC" "sync --check with plain_http against the prefix"
has syncbad2 "mappings[0].source_options: plain_http disagrees with the reference's http:// or https:// prefix"

echo "--- help"
grep -qF -- "--dest-plain-http" <<<"$("$P" copy --help)" || fail "copy --help lacks the per-side flags"
grep -qF -- "destination_options" <<<"$("$P" sync --help)" || fail "sync --help lacks the per-mapping options"
grep -qF -- "loopback registry" <<<"$("$P" pull --help)" || fail "pull --help lacks the loopback rule"
echo "PASS"
