#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_tls.sh - pullcache serving HTTPS with a test CA made here (openssl):
# curl trusting the CA works and without it fails verification; TLS 1.1 is
# refused; skopeo pushes and pulls back byte-exact and podman pulls with the
# CA in a cert dir (TLS verification on); SIGHUP swaps in a new certificate
# (new serial) while a keep-alive connection opened before the reload goes
# on working, and a bad pair on reload keeps the old one; mTLS (client_auth
# require from a config file) refuses the handshake without a client
# certificate or with one from another CA, and works with a valid one (curl,
# skopeo push, podman pulling a mirrored image through the cache, fetched from
# a docker-registry upstream while the TLS connection is suspended);
# verify_if_given; unreadable and mismatched files refused at
# start. With `serve --htpasswd` available: podman login and skopeo --creds
# over TLS too.
. "$(dirname "$0")/lib.sh"

clients_init
img=$WORK/img
mkimages "$img" tls-1
pki=$WORK/pki
mkdir -p "$pki"

# ---- the test PKI ---------------------------------------------------------------

# mkca NAME: a self-signed P-256 CA in $pki/NAME.crt / NAME.key.
mkca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$pki/$1.key" -out "$pki/$1.crt" -subj "/CN=pullcache e2e $1" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>>"$WORK/openssl.log" || fail "openssl: CA $1"
}

# mkcert CA NAME SERIAL USAGE CN: a P-256 leaf signed by CA, serial SERIAL
# (hex), extendedKeyUsage USAGE (serverAuth gets SAN IP:127.0.0.1,DNS:localhost).
mkcert() {
    local ca=$1 name=$2 serial=$3 usage=$4 cn=$5
    {
        echo "basicConstraints=CA:FALSE"
        echo "extendedKeyUsage=$usage"
        [ "$usage" = serverAuth ] && echo "subjectAltName=IP:127.0.0.1,DNS:localhost"
    } >"$pki/$name.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "/CN=$cn" 2>>"$WORK/openssl.log" &&
        openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
            -set_serial "0x$serial" -days 2 -extfile "$pki/$name.ext" -out "$pki/$name.crt" \
            2>>"$WORK/openssl.log" || fail "openssl: certificate $name"
}

mkca ca
mkca otherca
mkcert ca srv1 1001 serverAuth localhost
mkcert ca srv2 1002 serverAuth localhost
mkcert ca node1 2001 clientAuth node1
mkcert otherca intruder 3001 clientAuth intruder
# what the server reads; replaced in place for the reload
cp "$pki/srv1.crt" "$pki/tls.crt"
cp "$pki/srv1.key" "$pki/tls.key"

# Clients trust the test CA through cert dirs (containers-certs.d(5): *.crt
# are CAs, NAME.cert + NAME.key a client pair), never through "insecure".
certs=$WORK/certs
mkdir -p "$certs"
cp "$pki/ca.crt" "$certs/ca.crt"
mcerts=$WORK/mcerts # the same, plus the node's client certificate
mkdir -p "$mcerts"
cp "$pki/ca.crt" "$mcerts/ca.crt"
cp "$pki/node1.crt" "$mcerts/node1.cert"
cp "$pki/node1.key" "$mcerts/node1.key"
cat >"$WORK/registries.conf" <<CONF
unqualified-search-registries = []
short-name-mode = "disabled"
[[registry]]
location = "127.0.0.1:$PC_PORT"
insecure = false
CONF

# tls_start DATA_DIR [serve args...]: pc_start for HTTPS (waits on https://).
tls_start() {
    local data=$1
    shift
    "$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$data" \
        "$@" >>"$WORK/pullcache.log" 2>&1 &
    PC_PID=$!
    PIDS+=("$PC_PID")
    for _ in $(seq 100); do
        # any TLS answer will do: a handshake refused for want of a client
        # certificate still shows the server is up (openssl does not always
        # print the certificate before such an alert, so a TLS-level failure
        # from curl counts too; only "refused" means not listening yet)
        openssl s_client -connect "127.0.0.1:$PC_PORT" </dev/null 2>/dev/null |
            grep -q 'BEGIN CERTIFICATE' && return 0
        local crc=0
        curl -sk -o /dev/null --max-time 2 "https://127.0.0.1:$PC_PORT/v2/" 2>/dev/null || crc=$?
        case $crc in 0 | 35 | 56 | 58 | 60) return 0 ;; esac
        kill -0 "$PC_PID" 2>/dev/null || fail "pullcache exited at start (see pullcache.log)"
        sleep 0.1
    done
    fail "pullcache does not answer TLS on $PC_PORT"
}

# serial_now: the serial of the certificate a new connection is shown.
serial_now() {
    openssl s_client -connect "127.0.0.1:$PC_PORT" -servername localhost </dev/null 2>/dev/null |
        openssl x509 -noout -serial | sed 's/^serial=//'
}

# wait_log N PATTERN: until pullcache.log holds N lines matching PATTERN.
wait_log() {
    for _ in $(seq 100); do
        [ "$(grep -c -- "$2" "$WORK/pullcache.log" || true)" -ge "$1" ] && return 0
        sleep 0.1
    done
    fail "pullcache.log never got $1 line(s) matching '$2'"
}

# curl_code ARGS...: the HTTP status, or "fail:EXIT" when curl itself failed.
curl_code() {
    local out
    if out=$(curl -sS -o /dev/null -w '%{http_code}' "$@" 2>>"$WORK/clients.log"); then
        echo "$out"
    else
        echo "fail:$?"
    fi
}

URL=https://127.0.0.1:$PC_PORT

# ---- start-up refusals ------------------------------------------------------------

# expect_refused WANT_MESSAGE serve args...: serve exits non-zero saying WANT_MESSAGE.
expect_refused() {
    local want=$1 out rc=0
    shift
    out=$("$PULLCACHE" serve --listen "127.0.0.1:$PC_PORT" --data "$WORK/refused" \
        "$@" 2>&1) && rc=0 || rc=$?
    [ "$rc" -ne 0 ] || fail "serve $* started; want refusal '$want'"
    grep -qF -- "$want" <<<"$out" || fail "serve $*: want message '$want', got: $out"
    echo "ok: refused at start: $(head -n1 <<<"$out")"
}
expect_refused "does not match certificate" --tls-cert "$pki/srv1.crt" --tls-key "$pki/srv2.key"
expect_refused "cannot read" --tls-cert "$pki/missing.crt" --tls-key "$pki/srv1.key"
expect_refused "not a PEM certificate chain" --tls-cert "$pki/srv1.key" --tls-key "$pki/srv1.key"
expect_refused "needs both cert and key" --tls-cert "$pki/srv1.crt"
expect_refused "needs http.tls.client_ca" --tls-cert "$pki/srv1.crt" --tls-key "$pki/srv1.key" \
    --tls-client-auth require
expect_refused "client_auth must be" --tls-cert "$pki/srv1.crt" --tls-key "$pki/srv1.key" \
    --tls-client-ca "$pki/ca.crt" --tls-client-auth maybe

# ---- HTTPS with curl, skopeo, podman ------------------------------------------------

tls_start "$WORK/data" --tls-cert "$pki/tls.crt" --tls-key "$pki/tls.key"
expect_eq 200 "$(curl_code --cacert "$pki/ca.crt" "$URL/v2/")" "curl --cacert $URL/v2/"
expect_eq 200 "$(curl_code --cacert "$pki/ca.crt" "https://localhost:$PC_PORT/v2/")" \
    "curl --cacert https://localhost:$PC_PORT/v2/"
expect_eq fail:60 "$(curl_code "$URL/v2/")" "curl without the CA (exit 60: peer certificate not verified)"
expect_eq fail:60 "$(curl_code --cacert "$pki/otherca.crt" "$URL/v2/")" "curl trusting another CA"
openssl s_client -connect "127.0.0.1:$PC_PORT" -tls1_1 </dev/null >"$WORK/tls11.out" 2>&1 &&
    fail "a TLS 1.1 handshake succeeded"
curl -sS -o /dev/null --cacert "$pki/ca.crt" --tls-max 1.2 "$URL/v2/" ||
    fail "curl limited to TLS 1.2 failed"
echo "ok: curl trusts the test CA, is refused without it; TLS 1.1 refused, 1.2 and 1.3 work"

# skopeo push with verification on, then pull back: same digest.
for tag in oci-single docker-list; do
    want=$(img_digest "$img" "$tag")
    src=$(img_src "$img" "$tag")
    echo "+ skopeo copy --all $src docker://$REG/e2e/tls/$tag:v1 (TLS)" >>"$WORK/clients.log"
    sk copy -q --all --preserve-digests --dest-tls-verify=true --dest-cert-dir "$certs" \
        "$src" "docker://$REG/e2e/tls/$tag:v1" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo push over TLS ($tag, see clients.log)"
    sk copy -q --all --preserve-digests --src-tls-verify=true --src-cert-dir "$certs" \
        "docker://$REG/e2e/tls/$tag:v1" "dir:$WORK/back-$tag" >>"$WORK/clients.log" 2>&1 ||
        fail "skopeo pull over TLS ($tag, see clients.log)"
    expect_eq "$want" "sha256:$(sha256sum <"$WORK/back-$tag/manifest.json" | cut -d' ' -f1)" \
        "digest of $tag pulled back over TLS"
    expect_eq "$want" "$(sk inspect --raw --tls-verify=true --cert-dir "$certs" \
        "docker://$REG/e2e/tls/$tag:v1" | sha256sum | sed 's/^/sha256:/; s/ .*//')" \
        "skopeo inspect --raw over TLS ($tag)"
done
# and without the CA skopeo refuses
if sk inspect --raw --tls-verify=true "docker://$REG/e2e/tls/oci-single:v1" >>"$WORK/clients.log" 2>&1; then
    fail "skopeo inspect without the CA succeeded"
fi
echo "ok: skopeo push and pull over TLS (CA in a cert dir); refused without the CA"

want=$(img_digest "$img" oci-single)
cfg=$(jq -er .config.digest "$img/blobs/sha256/${want#sha256:}")
id=$(pod pull -q --tls-verify=true --cert-dir "$certs" --signature-policy "$WORK/policy.json" \
    "$REG/e2e/tls/oci-single:v1" 2>>"$WORK/clients.log") ||
    fail "podman pull over TLS (see clients.log)"
expect_eq "${cfg#sha256:}" "$id" "image ID from podman pull over TLS"
expect_eq "$want" "$(pod image inspect --format '{{.Digest}}' "$REG/e2e/tls/oci-single:v1")" \
    "podman image digest over TLS"
echo "ok: podman pull over TLS (CA in --cert-dir)"

# ---- SIGHUP: a new certificate, an open connection survives ---------------------------

expect_eq 1001 "$(serial_now)" "serial before the reload"
mkfifo "$WORK/ka.go"
python3 - "$PC_PORT" "$pki/ca.crt" "$WORK/ka.go" >"$WORK/keepalive.out" 2>"$WORK/keepalive.log" <<'PY' &
import http.client, ssl, sys
port, ca, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
c.auto_open = 0  # never reconnect behind our back
c.connect()
sock = c.sock
def get():
    c.request("GET", "/v2/")
    r = c.getresponse()
    r.read()
    return r.status
print("before", get(), sock.getpeercert()["serialNumber"], sock.getsockname()[1], flush=True)
open(go).read()  # the test writes once the server has reloaded
st = get()
assert c.sock is sock, "the connection was replaced"
print("after", st, sock.getpeercert()["serialNumber"], sock.getsockname()[1], flush=True)
PY
ka=$!
PIDS+=("$ka")
for _ in $(seq 100); do grep -q '^before' "$WORK/keepalive.out" && break; sleep 0.1; done
read -r _ st1 ser1 port1 <"$WORK/keepalive.out" || fail "keep-alive client: no first answer"
expect_eq 200 "$st1" "keep-alive client: first GET"
expect_eq 1001 "$ser1" "keep-alive client: serial before the reload"

cp "$pki/srv2.crt" "$pki/tls.crt"
cp "$pki/srv2.key" "$pki/tls.key"
kill -HUP "$PC_PID"
wait_log 1 'https: reloaded:.*serial 1002'
expect_eq 1002 "$(serial_now)" "serial a new connection sees after the reload"
expect_eq 200 "$(curl_code --cacert "$pki/ca.crt" "$URL/v2/")" "curl after the reload"
echo go >"$WORK/ka.go"
wait "$ka" || fail "keep-alive client failed after the reload (see keepalive.log)"
read -r _ st2 ser2 port2 < <(grep '^after' "$WORK/keepalive.out")
expect_eq 200 "$st2" "keep-alive client: GET after the reload on the same connection"
expect_eq 1001 "$ser2" "keep-alive client: its connection still has the old certificate"
expect_eq "$port1" "$port2" "keep-alive client: same local port (same TCP connection)"
echo "ok: SIGHUP reload: new connections get serial 1002, an open one goes on with 1001"

# A bad pair on reload: the old (good) one stays.
cp "$pki/srv1.crt" "$pki/tls.crt" # srv1's certificate with srv2's key
kill -HUP "$PC_PID"
wait_log 1 'TLS files not reloaded, the old ones stay: .*does not match'
expect_eq 1002 "$(serial_now)" "serial after a bad reload"
printf 'garbage\n' >"$pki/tls.crt"
kill -HUP "$PC_PID"
wait_log 2 'TLS files not reloaded'
expect_eq 1002 "$(serial_now)" "serial after a garbage certificate"
expect_eq 200 "$(curl_code --cacert "$pki/ca.crt" "$URL/v2/")" "curl after bad reloads"
echo "ok: bad pairs on SIGHUP are logged and the old certificate stays"
pc_stop

# ---- logins over TLS (when serve has --htpasswd) ------------------------------------------

if "$PULLCACHE" serve --help | grep -q -- '--htpasswd'; then
    htpasswd -nbB -C 5 alice 'alice pass' >"$WORK/htpasswd" 2>>"$WORK/clients.log" ||
        fail "htpasswd -nbB"
    tls_start "$WORK/data-auth" --tls-cert "$pki/srv1.crt" --tls-key "$pki/srv1.key" \
        --htpasswd "$WORK/htpasswd"
    if pod login --tls-verify=true --cert-dir "$certs" -u alice -p 'wrong pass' "$REG" \
        >>"$WORK/clients.log" 2>&1; then
        fail "podman login with a wrong password succeeded"
    fi
    pod login --tls-verify=true --cert-dir "$certs" -u alice -p 'alice pass' "$REG" \
        >>"$WORK/clients.log" 2>&1 || fail "podman login over TLS (see clients.log)"
    pod push -q --tls-verify=true --cert-dir "$certs" "$REG/e2e/tls/oci-single:v1" \
        "$REG/e2e/auth/pod:v1" >>"$WORK/clients.log" 2>&1 ||
        fail "podman push over TLS after login (see clients.log)"
    pod rmi -a -f >/dev/null
    id=$(pod pull -q --tls-verify=true --cert-dir "$certs" --signature-policy "$WORK/policy.json" \
        "$REG/e2e/auth/pod:v1" 2>>"$WORK/clients.log") ||
        fail "podman pull over TLS after login (see clients.log)"
    expect_eq "${cfg#sha256:}" "$id" "image ID after podman login + push + pull over TLS"
    pod logout "$REG" >>"$WORK/clients.log" 2>&1 || true
    if sk copy -q --dest-no-creds --dest-tls-verify=true --dest-cert-dir "$certs" \
        "$(img_src "$img" oci-single)" "docker://$REG/e2e/auth/sk:v1" >>"$WORK/clients.log" 2>&1; then
        fail "skopeo push without credentials succeeded"
    fi
    sk copy -q --preserve-digests --dest-creds 'alice:alice pass' --dest-tls-verify=true \
        --dest-cert-dir "$certs" "$(img_src "$img" oci-single)" "docker://$REG/e2e/auth/sk:v1" \
        >>"$WORK/clients.log" 2>&1 || fail "skopeo push --dest-creds over TLS (see clients.log)"
    expect_eq "$want" "$(sk inspect --raw --creds 'alice:alice pass' --tls-verify=true \
        --cert-dir "$certs" "docker://$REG/e2e/auth/sk:v1" | sha256sum | sed 's/^/sha256:/; s/ .*//')" \
        "skopeo inspect --creds over TLS"
    echo "ok: podman login + push + pull and skopeo --creds over TLS; wrong password and no credentials refused"
    pc_stop
else
    echo "skip: podman login / skopeo --creds over TLS (serve has no --htpasswd yet)"
fi

# ---- mTLS ------------------------------------------------------------------------------

# an upstream for the cache (plain HTTP behind pullcache), so podman pulls a
# mirrored image (fetched upstream while the TLS connection waits) with mTLS
dist_start "$WORK/dist"
dist_push "$img" docker-single "e2e/up:v1"

cat >"$WORK/mtls.yml" <<YML
http:
  tls:
    cert: $pki/srv1.crt
    key: $pki/srv1.key
    client_ca: $pki/ca.crt
    client_auth: require
YML
"$PULLCACHE" serve --check-config --config "$WORK/mtls.yml" >/dev/null || fail "check-config mtls.yml"
sed "s#key: $pki/srv1.key#key: $pki/node1.key#" "$WORK/mtls.yml" >"$WORK/bad.yml"
if out=$("$PULLCACHE" serve --check-config --config "$WORK/bad.yml" 2>&1); then
    fail "check-config accepted a mismatched key"
fi
grep -qF "does not match certificate" <<<"$out" || fail "check-config bad.yml: $out"
echo "ok: --check-config reads the TLS files: $out"
tls_start "$WORK/data" --config "$WORK/mtls.yml" --upstream "up=http://127.0.0.1:$DIST_PORT"
code=$(curl_code --cacert "$pki/ca.crt" "$URL/v2/")
case $code in fail:*) ;; *) fail "require: curl without a client certificate got HTTP $code" ;; esac
code=$(curl_code --cacert "$pki/ca.crt" --cert "$pki/intruder.crt" --key "$pki/intruder.key" "$URL/v2/")
case $code in fail:*) ;; *) fail "require: curl with another CA's client certificate got HTTP $code" ;; esac
code=$(curl_code --cacert "$pki/ca.crt" --cert "$pki/srv2.crt" --key "$pki/srv2.key" "$URL/v2/")
case $code in fail:*) ;; *) fail "require: a server-only (serverAuth) certificate as client got HTTP $code" ;; esac
expect_eq 200 "$(curl_code --cacert "$pki/ca.crt" --cert "$pki/node1.crt" --key "$pki/node1.key" "$URL/v2/")" \
    "require: curl with the node's client certificate"
wait_log 1 'handshake refused: no client certificate'
wait_log 1 'handshake refused: client certificate CN=intruder'
if sk inspect --raw --tls-verify=true --cert-dir "$certs" "docker://$REG/e2e/tls/oci-single:v1" \
    >>"$WORK/clients.log" 2>&1; then
    fail "require: skopeo without a client certificate succeeded"
fi
expect_eq "$want" "$(sk inspect --raw --tls-verify=true --cert-dir "$mcerts" \
    "docker://$REG/e2e/tls/oci-single:v1" | sha256sum | sed 's/^/sha256:/; s/ .*//')" \
    "require: skopeo inspect with the node's client certificate"
sk copy -q --all --preserve-digests --dest-tls-verify=true --dest-cert-dir "$mcerts" \
    "$(img_src "$img" oci-index)" "docker://$REG/e2e/tls/oci-index:v1" >>"$WORK/clients.log" 2>&1 ||
    fail "require: skopeo push with the node's client certificate (see clients.log)"
up=$(img_digest "$img" docker-single)
upcfg=$(jq -er .config.digest "$img/blobs/sha256/${up#sha256:}")
if pod pull -q --tls-verify=true --cert-dir "$certs" --signature-policy "$WORK/policy.json" \
    "$REG/up/e2e/up:v1" >>"$WORK/clients.log" 2>&1; then
    fail "require: podman pull without a client certificate succeeded"
fi
id=$(pod pull -q --tls-verify=true --cert-dir "$mcerts" --signature-policy "$WORK/policy.json" \
    "$REG/up/e2e/up:v1" 2>>"$WORK/clients.log") ||
    fail "require: podman pull of a mirrored image with the node's certificate (see clients.log)"
expect_eq "${upcfg#sha256:}" "$id" "image ID of the mirrored image pulled over mTLS"
expect_eq "$up" "$(pod image inspect --format '{{.Digest}}' "$REG/up/e2e/up:v1")" \
    "digest of the mirrored image pulled over mTLS"
echo "ok: mTLS require: no certificate, another CA's, a serverAuth-only one refused in the handshake; node certificate works (curl, skopeo push, podman pull through the cache)"
pc_stop

tls_start "$WORK/data" --tls-cert "$pki/srv1.crt" --tls-key "$pki/srv1.key" \
    --tls-client-ca "$pki/ca.crt" --tls-client-auth verify_if_given
expect_eq 200 "$(curl_code --cacert "$pki/ca.crt" "$URL/v2/")" "verify_if_given: no client certificate"
expect_eq 200 "$(curl_code --cacert "$pki/ca.crt" --cert "$pki/node1.crt" --key "$pki/node1.key" "$URL/v2/")" \
    "verify_if_given: the node's certificate"
code=$(curl_code --cacert "$pki/ca.crt" --cert "$pki/intruder.crt" --key "$pki/intruder.key" "$URL/v2/")
case $code in fail:*) ;; *) fail "verify_if_given: another CA's client certificate got HTTP $code" ;; esac
echo "ok: mTLS verify_if_given: none or a valid certificate accepted, an invalid one refused"
pc_stop

echo "PASS: $TEST_NAME"
