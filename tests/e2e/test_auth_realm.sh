#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_auth_realm.sh - the token realm of the 401 challenge is not the
# client's to choose when http.external_url is set.
#
# With users (--htpasswd) and http.external_url (the option this test is
# about, from a config file): a request with `Host: evil.example` gets a
# Bearer challenge whose realm is <external_url>/token (before: the key did
# not exist and the realm was http://evil.example/token), and the start log
# names the realm. Without it, the realm follows the Host header, and the
# start log says that the Host header is trusted. auth.token.realm, when
# set, wins over both.
. "$(dirname "$0")/lib.sh"

command -v htpasswd >/dev/null || fail "needs htpasswd (apt-get install apache2-utils)"
htpasswd -nbB -C 5 alice 'alice-Pw-7f3a9' >"$WORK/htpasswd"

challenge() { # HOST_HEADER: the WWW-Authenticate of an anonymous manifest GET
    curl -s -o /dev/null -D - -H "Host: $1" "http://127.0.0.1:$PC_PORT/v2/team/app/manifests/v1" |
        tr -d '\r' | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: //p'
}

cat >"$WORK/ext.yaml" <<EOF
http:
  external_url: https://registry.example:8443/
EOF
# external_url and users are the subject: the realm of a token-auth server
pc_start "$WORK/data" --config "$WORK/ext.yaml" --htpasswd "$WORK/htpasswd"
ch=$(challenge evil.example)
[[ $ch == 'Bearer realm="https://registry.example:8443/token"'* ]] ||
    fail "with http.external_url, Host: evil.example got the challenge '$ch'"
[[ $ch == *evil* ]] && fail "the challenge names the client's Host: $ch"
grep -q 'auth: token realm https://registry.example:8443/token' "$WORK/pullcache.log" ||
    fail "the start log does not name the realm: $(grep auth: "$WORK/pullcache.log")"
echo "ok: with http.external_url the realm is https://registry.example:8443/token whatever the Host"
pc_stop

# users on, no external_url: the realm follows the Host header
pc_start "$WORK/data" --htpasswd "$WORK/htpasswd"
ch=$(challenge evil.example)
[[ $ch == 'Bearer realm="http://evil.example/token"'* ]] ||
    fail "without http.external_url, the realm should follow the Host header: '$ch'"
grep -q 'auth: token realm .*Host header (trusted' "$WORK/pullcache.log" ||
    fail "the start log does not say the Host header is trusted: $(grep auth: "$WORK/pullcache.log")"
echo "ok: without it the realm follows the Host header, and the start log says so"
pc_stop

cat >"$WORK/both.yaml" <<EOF
http:
  external_url: https://registry.example:8443
auth:
  token:
    realm: https://auth.example/token
EOF
# auth.token.realm and external_url both set: the configured realm wins
pc_start "$WORK/data" --config "$WORK/both.yaml" --htpasswd "$WORK/htpasswd"
ch=$(challenge evil.example)
[[ $ch == 'Bearer realm="https://auth.example/token"'* ]] ||
    fail "auth.token.realm should win over http.external_url: '$ch'"
echo "ok: auth.token.realm wins over http.external_url"

bad_cfg() {
    printf 'http:\n  external_url: "%s"\n' "$1" >"$WORK/bad.yaml"
    if "$PULLCACHE" serve --check-config --config "$WORK/bad.yaml" >"$WORK/bad.out" 2>&1; then
        fail "http.external_url '$1' was accepted"
    fi
    grep -q 'external_url' "$WORK/bad.out" || fail "no message naming external_url: $(cat "$WORK/bad.out")"
}
bad_cfg 'registry.example'
bad_cfg 'https://'
bad_cfg 'https://a.example/x?y=1'
bad_cfg 'https://a.example/"x'
echo "ok: a malformed http.external_url is refused at start"
