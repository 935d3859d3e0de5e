#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_config_cmd.sh - `pullcache config containerd|podman|cri-o|docker`: the
# generated hosts.toml, registries.conf drop-in and daemon.json parse (TOML
# with Python's tomllib, JSON with jq) and hold exactly the expected values;
# --output writes the files (daemon.json merged, not clobbered); --json is
# one parseable object; bad input exits 2 with a message; --upstream names
# are registry hosts (ghcr refused with a hint, Docker.IO lowercased, ports
# and localhost allowed), cri-o/crio get podman's drop-in.
# The mirror check against a real `pullcache serve`: an upstream the server
# does not mirror is refused (exit 3, nothing written) or, with --force,
# warned about; a server that is down, hangs, wants credentials, is not a
# pullcache or has a certificate we cannot verify (without --ca-file) is a
# warning; --no-check opens no connection; `config docker` warns when the
# server's default_upstream is none, refuses another registry's, and is
# quiet with docker.io. The README's "Point your nodes at the cache" examples
# are run as written against a server at 10.0.0.5:5000 and must print exactly
# what the README shows.
# Then the real clients accept the files: ctr pulls docker.io/... and ghcr.io/... through
# the generated hosts.toml from a docker-registry posing as the mirror (its
# access log shows ?ns=<upstream>), and podman pulls docker.io/... through the
# generated drop-in in /etc/containers/registries.conf.d (a private tmpfs).
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
# cfg ARGS: the format tests. --no-check: no server runs at their mirror URLs
# (the check has its own section below).
cfg() { "$PULLCACHE" config --no-check "$@"; }

# toml FILE EXPR: EXPR (Python, over the parsed document d) as JSON.
toml() {
    "$PY" -c 'import json, sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))
print(json.dumps(eval(sys.argv[2]), separators=(",", ":")))' "$1" "$2" ||
        fail "$1 is not TOML, or lacks $2: $(cat "$1")"
}

# ---- help ------------------------------------------------------------------------
"$PULLCACHE" config --help >"$WORK/help1" || fail "config --help exit code"
"$PULLCACHE" help config >"$WORK/help2" || fail "help config exit code"
cmp -s "$WORK/help1" "$WORK/help2" || fail "config --help and help config differ"
for want in "--mirror URL" "--upstream NAME" "--plain-http" "--output DIR" "--json" \
    "--ca-file FILE" "--no-check" "--force" "exit codes:" "examples:" "pullcache config containerd --mirror http://10.0.0.5:5000"; do
    grep -qF -- "$want" "$WORK/help1" || fail "config --help lacks '$want'"
done
"$PULLCACHE" help | grep -E "^  config " >/dev/null || fail "help does not list config"
echo "ok: help"

# ---- containerd ------------------------------------------------------------------
M=http://10.0.0.5:5000
cfg containerd --mirror "$M" >"$WORK/ctd.txt" || fail "config containerd exit code"
grep -qxF "# /etc/containerd/certs.d/docker.io/hosts.toml" "$WORK/ctd.txt" ||
    fail "containerd output lacks the path header: $(cat "$WORK/ctd.txt")"
grep -qF 'config_path = "/etc/containerd/certs.d"' "$WORK/ctd.txt" ||
    fail "containerd output lacks the config_path reminder"
# One upstream: the whole output is one valid hosts.toml.
expect_eq '"https://registry-1.docker.io"' "$(toml "$WORK/ctd.txt" 'd["server"]')" "docker.io server"
expect_eq '["http://10.0.0.5:5000"]' "$(toml "$WORK/ctd.txt" 'list(d["host"])')" "docker.io hosts"
expect_eq '["pull","resolve"]' "$(toml "$WORK/ctd.txt" 'd["host"]["http://10.0.0.5:5000"]["capabilities"]')" \
    "capabilities"
expect_eq '["capabilities"]' "$(toml "$WORK/ctd.txt" 'sorted(d["host"]["http://10.0.0.5:5000"])')" \
    "keys of the plain-HTTP host (no skip_verify)"

# --json: same content, four upstreams (aliases folded, duplicates dropped),
# an https mirror with --plain-http gets skip_verify.
cfg containerd --mirror https://Cache.Example.com:8443/ --plain-http --json -u docker.io -u ghcr.io \
    -u index.docker.io -u quay.io -u registry.k8s.io -u ghcr.io >"$WORK/ctd.json" ||
    fail "config containerd --json exit code"
expect_eq containerd "$(jq -r .runtime "$WORK/ctd.json")" "json runtime"
expect_eq https://cache.example.com:8443 "$(jq -r .mirror "$WORK/ctd.json")" "json mirror (lowercased, no slash)"
expect_eq 4 "$(jq '.files | length' "$WORK/ctd.json")" "number of hosts.toml files"
jq -e '.notes | map(select(contains("config_path"))) | length > 0' "$WORK/ctd.json" >/dev/null ||
    fail "json notes lack the config_path reminder"
i=0
for up in docker.io ghcr.io quay.io registry.k8s.io; do
    expect_eq "/etc/containerd/certs.d/$up/hosts.toml" "$(jq -r ".files[$i].path" "$WORK/ctd.json")" "path $i"
    jq -r ".files[$i].content" "$WORK/ctd.json" >"$WORK/h.toml"
    server=https://$up
    [ "$up" = docker.io ] && server=https://registry-1.docker.io
    expect_eq "\"$server\"" "$(toml "$WORK/h.toml" 'd["server"]')" "$up server"
    expect_eq '{"https://cache.example.com:8443":{"capabilities":["pull","resolve"],"skip_verify":true}}' \
        "$(toml "$WORK/h.toml" 'd["host"]')" "$up host table"
    grep -qF "?ns=$up" "$WORK/h.toml" || fail "$up hosts.toml does not mention ?ns=$up"
    i=$((i + 1))
done
# https without --plain-http: verified TLS, no skip_verify.
cfg containerd --mirror https://cache.example.com --json | jq -r '.files[0].content' >"$WORK/h.toml"
expect_eq '{"https://cache.example.com":{"capabilities":["pull","resolve"]}}' \
    "$(toml "$WORK/h.toml" 'd["host"]')" "verified https host table"

# --output DIR: DIR/<upstream>/hosts.toml, the same bytes as --json, nothing else.
cfg containerd --mirror "$M" -u docker.io -u ghcr.io --output "$WORK/certs.d/" >"$WORK/out.txt" ||
    fail "config containerd --output exit code"
cfg containerd --mirror "$M" -u docker.io -u ghcr.io --json >"$WORK/ctd2.json"
expect_eq "$WORK/certs.d/docker.io/hosts.toml
$WORK/certs.d/ghcr.io/hosts.toml" "$(find "$WORK/certs.d" -type f | sort)" "files written by --output"
for i in 0 1; do
    up=$(jq -r ".files[$i].path" "$WORK/ctd2.json" | cut -d/ -f5)
    jq -j ".files[$i].content" "$WORK/ctd2.json" | cmp -s - "$WORK/certs.d/$up/hosts.toml" ||
        fail "$WORK/certs.d/$up/hosts.toml differs from the --json content"
done
grep -qF "$WORK/certs.d/ghcr.io/hosts.toml" "$WORK/out.txt" || fail "--output does not say what it wrote"
echo "ok: containerd"

# ---- podman ------------------------------------------------------------------------
cfg podman --mirror "$M" -u docker.io -u quay.io >"$WORK/pod.conf" || fail "config podman exit code"
grep -qxF "# /etc/containers/registries.conf.d/pullcache.conf" "$WORK/pod.conf" ||
    fail "podman output lacks the path header"
expect_eq '[{"prefix":"docker.io","location":"docker.io","mirror":[{"location":"10.0.0.5:5000/docker.io","insecure":true}]},{"prefix":"quay.io","location":"quay.io","mirror":[{"location":"10.0.0.5:5000/quay.io","insecure":true}]}]' \
    "$(toml "$WORK/pod.conf" 'd["registry"]')" "podman [[registry]] tables"
expect_eq '["registry"]' "$(toml "$WORK/pod.conf" 'list(d)')" "podman top-level keys"
cfg podman --mirror https://cache.example.com --json >"$WORK/pod.json" || fail "config podman --json"
expect_eq /etc/containers/registries.conf.d/pullcache.conf "$(jq -r '.files[0].path' "$WORK/pod.json")" "podman path"
jq -r '.files[0].content' "$WORK/pod.json" >"$WORK/pod2.conf"
expect_eq '[{"prefix":"docker.io","location":"docker.io","mirror":[{"location":"cache.example.com/docker.io"}]}]' \
    "$(toml "$WORK/pod2.conf" 'd["registry"]')" "podman, verified https mirror"
cfg podman --mirror "$M" --output "$WORK/regconf" >/dev/null || fail "config podman --output"
[ -f "$WORK/regconf/pullcache.conf" ] || fail "podman --output wrote no pullcache.conf"
echo "ok: podman"

# ---- docker ------------------------------------------------------------------------
cfg docker --mirror "$M" >"$WORK/daemon.json" 2>"$WORK/docker.err" || fail "config docker exit code"
expect_eq '{"registry-mirrors":["http://10.0.0.5:5000"],"insecure-registries":["10.0.0.5:5000"]}' \
    "$(jq -c . "$WORK/daemon.json")" "daemon.json keys (stdout is pure JSON)"
grep -qF "/etc/docker/daemon.json" "$WORK/docker.err" || fail "docker: no path header on stderr"
! grep -qi "warning" "$WORK/docker.err" || fail "docker warns with docker.io only: $(cat "$WORK/docker.err")"
cfg docker --mirror https://cache.example.com -u docker.io -u ghcr.io >"$WORK/daemon2.json" 2>"$WORK/docker.err"
expect_eq '{"registry-mirrors":["https://cache.example.com"]}' "$(jq -c . "$WORK/daemon2.json")" \
    "daemon.json keys, verified https"
grep -F "ghcr.io" "$WORK/docker.err" | grep -qF "not mirrored" ||
    fail "docker: no stderr note that ghcr.io is not mirrored: $(cat "$WORK/docker.err")"
grep -qF "Docker Hub only" "$WORK/docker.err" || fail "docker: note does not say Docker Hub only"
cfg docker --mirror "$M" --json -u quay.io 2>/dev/null | jq -r '.files[0].content' | jq -e . >/dev/null ||
    fail "docker --json content is not JSON"

# --output merges into an existing daemon.json and is idempotent.
mkdir -p "$WORK/etc-docker"
echo '{"debug": true, "registry-mirrors": ["https://mirror.gcr.io"]}' >"$WORK/etc-docker/daemon.json"
cfg docker --mirror "$M" --output "$WORK/etc-docker" >/dev/null 2>&1 || fail "config docker --output (merge)"
cfg docker --mirror "$M/" --output "$WORK/etc-docker" >/dev/null 2>&1 || fail "config docker --output (again)"
expect_eq '{"debug":true,"registry-mirrors":["https://mirror.gcr.io","http://10.0.0.5:5000"],"insecure-registries":["10.0.0.5:5000"]}' \
    "$(jq -c . "$WORK/etc-docker/daemon.json")" "merged daemon.json"
echo 'not json' >"$WORK/etc-docker/daemon.json"
set +e
cfg docker --mirror "$M" --output "$WORK/etc-docker" >/dev/null 2>"$WORK/err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "config docker --output accepted a broken daemon.json"
expect_eq "not json" "$(cat "$WORK/etc-docker/daemon.json")" "broken daemon.json left alone"
expect_eq "daemon.json" "$(ls -A "$WORK/etc-docker")" "no temporary files left in --output DIR"
echo "ok: docker"

# ---- bad input -------------------------------------------------------------------
# bad EXPECTED-MESSAGE-PART ARGS...: exit 2, message on stderr, nothing on stdout.
bad() {
    local want=$1 rc
    shift
    set +e
    "$PULLCACHE" config "$@" >"$WORK/bad.out" 2>"$WORK/bad.err"
    rc=$?
    set -e
    expect_eq 2 "$rc" "exit code of config $*"
    grep -qF -- "$want" "$WORK/bad.err" || fail "config $*: message lacks '$want': $(cat "$WORK/bad.err")"
    [ ! -s "$WORK/bad.out" ] || fail "config $*: printed on stdout: $(cat "$WORK/bad.out")"
}
bad "containerd, podman, cri-o or docker" kubernetes --mirror "$M"
bad "containerd, podman, cri-o or docker"
bad "--mirror URL is required" containerd
bad "http:// or https://" containerd --mirror ftp://10.0.0.5
bad "http:// or https://" containerd --mirror 10.0.0.5:5000
bad "no host" containerd --mirror http://
bad "no host" podman --mirror https:///v2/
bad "without a path" containerd --mirror http://10.0.0.5:5000/v2/
bad "without a path" docker --mirror "http://10.0.0.5:5000?x=1"
bad "user:password" containerd --mirror http://u:p@10.0.0.5:5000
bad "bad port" containerd --mirror http://10.0.0.5:0
bad "bad port" containerd --mirror http://10.0.0.5:65536
bad "bad port" containerd --mirror http://10.0.0.5:
bad "not a host name" containerd --mirror "http://bad_host:5000"
bad "not a host name" containerd --mirror "http://[zz]:5000"
bad "--ca-file $WORK/no-such.crt" containerd --mirror https://cache.example.com --ca-file "$WORK/no-such.crt"
bad "unexpected argument" containerd podman --mirror "$M"
bad "--help" containerd --mirror "$M" --bogus
echo "ok: bad input"

# ---- upstream names ------------------------------------------------------------------
# Not a registry host: exit 2, one message, nothing on stdout (and no request:
# names are checked before the mirror is asked, so no --no-check here).
bad "'ghcr' is not a registry host" containerd --mirror "$M" --upstream ghcr
bad "did you mean ghcr.io?" containerd --mirror "$M" --upstream ghcr
bad "did you mean quay.io?" podman --mirror "$M" --upstream quay
bad "a '.' (ghcr.io), a port (registry:5000) or is localhost" containerd --mirror "$M" -u myregistry
bad "'a/b' is not a registry host" containerd --mirror "$M" --upstream a/b
bad "not a repository" containerd --mirror "$M" --upstream ghcr.io/org
bad "'-x' is not a registry host" containerd --mirror "$M" --upstream -x
bad "'../etc' is not a registry host" containerd --mirror "$M" --upstream ../etc
bad "'foo_bar.io' is not a registry host" containerd --mirror "$M" --upstream foo_bar.io
bad "'a..b' is not a registry host" containerd --mirror "$M" --upstream a..b
bad "'a:b:5000' is not a registry host" containerd --mirror "$M" --upstream a:b:5000
bad "bad port" containerd --mirror "$M" --upstream registry.local:0
bad "not a URL" containerd --mirror "$M" --upstream https://ghcr.io
bad "wants a registry host" podman --mirror "$M" --upstream ""
bad "wants a registry host" docker --mirror "$M" --upstream ""

# Uppercase is lowercased with a note; aliases fold into docker.io.
cfg containerd --mirror "$M" -u Docker.IO -u GHCR.io -u INDEX.docker.io --json \
    >"$WORK/upper.json" 2>"$WORK/upper.err" || fail "config with Docker.IO: exit code"
expect_eq "/etc/containerd/certs.d/docker.io/hosts.toml /etc/containerd/certs.d/ghcr.io/hosts.toml" \
    "$(jq -r '[.files[].path] | join(" ")' "$WORK/upper.json")" "Docker.IO and GHCR.io lowercased, aliases folded"
grep -qF "'Docker.IO' taken as docker.io" "$WORK/upper.err" || fail "no note for Docker.IO: $(cat "$WORK/upper.err")"
grep -qF "'GHCR.io' taken as ghcr.io" "$WORK/upper.err" || fail "no note for GHCR.io: $(cat "$WORK/upper.err")"
jq -r '.files[0].content' "$WORK/upper.json" >"$WORK/h.toml"
expect_eq '"https://registry-1.docker.io"' "$(toml "$WORK/h.toml" 'd["server"]')" "Docker.IO's server"

# Ports and localhost are registry hosts.
cfg containerd --mirror "$M" -u registry.local:5000 -u localhost -u localhost:5000 -u 10.0.0.7:443 \
    --json >"$WORK/ports.json" 2>"$WORK/ports.err" || fail "config with ports: $(cat "$WORK/ports.err")"
[ ! -s "$WORK/ports.err" ] || fail "config with ports printed on stderr: $(cat "$WORK/ports.err")"
expect_eq "registry.local:5000 localhost localhost:5000 10.0.0.7:443" \
    "$(jq -r '[.files[].path | split("/")[4]] | join(" ")' "$WORK/ports.json")" "upstreams with ports"
jq -r '.files[0].content' "$WORK/ports.json" >"$WORK/h.toml"
expect_eq '"https://registry.local:5000"' "$(toml "$WORK/h.toml" 'd["server"]')" "registry.local:5000 server"
grep -qF '?ns=registry.local:5000' "$WORK/h.toml" || fail "hosts.toml for registry.local:5000 lacks its ?ns="
cfg podman --mirror "$M" -u registry.local:5000 >"$WORK/pod-port.conf" || fail "podman with a port"
expect_eq '[{"prefix":"registry.local:5000","location":"registry.local:5000","mirror":[{"location":"10.0.0.5:5000/registry.local:5000","insecure":true}]}]' \
    "$(toml "$WORK/pod-port.conf" 'd["registry"]')" "podman drop-in for registry.local:5000"

# cri-o (and crio) read registries.conf like podman: the same drop-in.
cfg podman --mirror "$M" -u docker.io -u quay.io --json >"$WORK/pod3.json" || fail "config podman --json"
for rt in cri-o crio; do
    cfg "$rt" --mirror "$M" -u docker.io -u quay.io --json >"$WORK/crio.json" || fail "config $rt exit code"
    expect_eq cri-o "$(jq -r .runtime "$WORK/crio.json")" "runtime name of config $rt"
    expect_eq "$(jq -c .files "$WORK/pod3.json")" "$(jq -c .files "$WORK/crio.json")" "config $rt files = podman's"
done
# not piped into grep -q: its early exit would SIGPIPE a help longer than one buffer
grep -qF "cri-o" <<<"$("$PULLCACHE" config --help)" || fail "config --help does not name cri-o"
echo "ok: upstream names (ghcr refused, Docker.IO lowercased, ports, localhost, cri-o)"

# ---- the mirror check: a real pullcache serve ---------------------------------------
# run_cfg NAME ARGS...: config ARGS (the check on), stdout in $WORK/NAME.out,
# stderr in $WORK/NAME.err; the exit code in $rc.
run_cfg() {
    local name=$1
    shift
    set +e
    "$PULLCACHE" config "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    set -e
}
PCM=http://127.0.0.1:$PC_PORT
# serve's defaults: the one upstream docker.io, and bare paths private
# (default_upstream none), which the config docker warning below is about.
pc_start "$WORK/data"
curl -sS -f "$PCM/_pullcache/status" >"$WORK/status.json" || fail "GET /_pullcache/status"
expect_eq '["docker.io"]' "$(jq -c '[.upstreams[].name]' "$WORK/status.json")" "the server's upstreams"
expect_eq none "$(jq -r .cache.default_upstream "$WORK/status.json")" "serve's default default_upstream"

# What the server mirrors: no warning, a note that it was checked.
run_cfg ok containerd --mirror "$PCM"
expect_eq 0 "$rc" "config containerd against a server with docker.io: exit code ($(cat "$WORK/ok.err"))"
[ ! -s "$WORK/ok.err" ] || fail "config containerd (docker.io) printed on stderr: $(cat "$WORK/ok.err")"
grep -qxF "# Checked $PCM/_pullcache/status: it mirrors docker.io." "$WORK/ok.out" ||
    fail "config containerd does not say it checked: $(cat "$WORK/ok.out")"
expect_eq '"https://registry-1.docker.io"' "$(toml "$WORK/ok.out" 'd["server"]')" "checked output is still one hosts.toml"

# An upstream it lacks: refused with exit 3, the missing name and how to add
# it; nothing on stdout, nothing written.
run_cfg miss containerd --mirror "$PCM" -u docker.io -u ghcr.io --output "$WORK/miss.d"
expect_eq 3 "$rc" "config containerd -u ghcr.io against a server without ghcr.io: exit code"
grep -qF "$PCM does not mirror ghcr.io" "$WORK/miss.err" || fail "refusal does not name ghcr.io: $(cat "$WORK/miss.err")"
grep -qF -- "--upstream ghcr.io=https://ghcr.io" "$WORK/miss.err" || fail "refusal lacks the serve flag: $(cat "$WORK/miss.err")"
grep -qF -- "--upstream docker.io=https://registry-1.docker.io" "$WORK/miss.err" ||
    fail "refusal's serve line drops the server's docker.io: $(cat "$WORK/miss.err")"
grep -qF -- "- {name: ghcr.io, url: https://ghcr.io}" "$WORK/miss.err" || fail "refusal lacks the config key"
grep -qF -- "--force" "$WORK/miss.err" || fail "refusal does not mention --force"
[ ! -s "$WORK/miss.out" ] || fail "refusal printed on stdout: $(cat "$WORK/miss.out")"
[ ! -e "$WORK/miss.d" ] || fail "refusal wrote files: $(find "$WORK/miss.d")"
run_cfg miss2 podman --mirror "$PCM" -u quay.io -u ghcr.io --json
expect_eq 3 "$rc" "config podman -u quay.io -u ghcr.io: exit code"
grep -qF "does not mirror quay.io and ghcr.io" "$WORK/miss2.err" || fail "refusal does not name both: $(cat "$WORK/miss2.err")"
[ ! -s "$WORK/miss2.out" ] || fail "refusal printed JSON: $(cat "$WORK/miss2.out")"
run_cfg miss3 cri-o --mirror "$PCM" -u registry.local:5000
expect_eq 3 "$rc" "config cri-o -u registry.local:5000: exit code"

# --force: written, with a warning naming it.
run_cfg force containerd --mirror "$PCM" -u docker.io -u ghcr.io --force --output "$WORK/force.d"
expect_eq 0 "$rc" "config containerd -u ghcr.io --force: exit code ($(cat "$WORK/force.err"))"
grep -qF "# warning: $PCM does not mirror ghcr.io" "$WORK/force.err" || fail "--force does not warn: $(cat "$WORK/force.err")"
grep -qF -- "--force" "$WORK/force.err" || fail "the --force warning does not say --force"
expect_eq "$WORK/force.d/docker.io/hosts.toml
$WORK/force.d/ghcr.io/hosts.toml" "$(find "$WORK/force.d" -type f | sort)" "files written with --force"

# docker: the default (bare paths private) is the common misconfiguration: a
# warning naming --default-upstream docker.io, the keys still printed.
run_cfg dnone docker --mirror "$PCM"
expect_eq 0 "$rc" "config docker against default_upstream none: exit code"
grep -qF "# warning: $PCM does not serve Docker Hub at bare /v2/<repository>" "$WORK/dnone.err" ||
    fail "config docker does not warn about default_upstream none: $(cat "$WORK/dnone.err")"
grep -qF "cache.default_upstream is none" "$WORK/dnone.err" || fail "the warning does not say what the server has"
grep -qF "Run it with --default-upstream docker.io" "$WORK/dnone.err" || fail "the warning does not say the fix"
expect_eq "{\"registry-mirrors\":[\"$PCM\"],\"insecure-registries\":[\"127.0.0.1:$PC_PORT\"]}" \
    "$(jq -c . "$WORK/dnone.out")" "daemon.json keys despite the warning"
# Only Docker Hub goes through Docker's mirror: -u ghcr.io is not asked about.
run_cfg dghcr docker --mirror "$PCM" -u ghcr.io
expect_eq 0 "$rc" "config docker -u ghcr.io: exit code ($(cat "$WORK/dghcr.err"))"
grep -qF "ghcr.io is not mirrored: Docker's registry-mirrors" "$WORK/dghcr.err" ||
    fail "config docker -u ghcr.io: no Docker-Hub-only note: $(cat "$WORK/dghcr.err")"
! grep -qF "does not mirror ghcr.io" "$WORK/dghcr.err" || fail "config docker checked ghcr.io, which it does not write"
echo "ok: check against the defaults (missing upstream refused, --force warns, docker warns about none)"

# --no-check opens no connection: a listener that never accepts counts the
# connections made to it in its accept queue (ss Recv-Q); then the check
# itself connects (the count goes to 1) and, without an answer, times out
# with a warning.
LISTEN_PORT=5003
/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
open(sys.argv[2], "w").close()
time.sleep(3600)' "$LISTEN_PORT" "$WORK/listen.ready" &
PIDS+=("$!")
for _ in $(seq 100); do [ -f "$WORK/listen.ready" ] && break; sleep 0.1; done
[ -f "$WORK/listen.ready" ] || fail "the listener did not start"
queued() { ss -Hltn "sport = :$LISTEN_PORT" | awk '{ print $2 }'; }
expect_eq 0 "$(queued)" "connections queued at the listener before"
run_cfg nocheck containerd --mirror "http://127.0.0.1:$LISTEN_PORT" --no-check -u ghcr.io
expect_eq 0 "$rc" "config --no-check: exit code"
[ ! -s "$WORK/nocheck.err" ] || fail "config --no-check printed on stderr: $(cat "$WORK/nocheck.err")"
expect_eq 0 "$(queued)" "connections made by config --no-check"
run_cfg hang containerd --mirror "http://127.0.0.1:$LISTEN_PORT"
expect_eq 1 "$(queued)" "connections made by config with the check"
expect_eq 0 "$rc" "config against a server that does not answer: exit code"
grep -qF "could not ask http://127.0.0.1:$LISTEN_PORT which upstreams it mirrors" "$WORK/hang.err" ||
    fail "no warning for a server that does not answer: $(cat "$WORK/hang.err")"
grep -qF "timeout" "$WORK/hang.err" || fail "the warning does not say timeout: $(cat "$WORK/hang.err")"
echo "ok: --no-check makes no connection; a server that never answers is a warning"

# Nothing listening: a warning naming the URL and --no-check, files still written.
DEAD=http://127.0.0.1:5002
run_cfg dead containerd --mirror "$DEAD" -u ghcr.io --output "$WORK/dead.d"
expect_eq 0 "$rc" "config against a server that is down: exit code"
grep -qF "# warning: could not ask $DEAD which upstreams it mirrors" "$WORK/dead.err" ||
    fail "no warning for a server that is down: $(cat "$WORK/dead.err")"
grep -qF "refused" "$WORK/dead.err" || fail "the warning does not say refused"
grep -qF "assume it mirrors ghcr.io" "$WORK/dead.err" || fail "the warning does not say what is assumed"
grep -qF -- "--no-check" "$WORK/dead.err" || fail "the warning does not mention --no-check"
[ -f "$WORK/dead.d/ghcr.io/hosts.toml" ] || fail "nothing written when the server is down"
run_cfg deadj docker --mirror "$DEAD" --json
expect_eq 0 "$rc" "config docker --json against a server that is down: exit code"
jq -e '.files[0].content' "$WORK/deadj.out" >/dev/null || fail "config docker --json: no JSON when the server is down"
grep -qF "could not ask $DEAD" "$WORK/deadj.err" || fail "config docker --json: no warning on stderr"
echo "ok: a server that is down is a warning"

# default_upstream docker.io (the option this is about): no warning, a note.
pc_stop
pc_start "$WORK/data" --default-upstream docker.io
run_cfg dhub docker --mirror "$PCM"
expect_eq 0 "$rc" "config docker against default_upstream docker.io: exit code"
! grep -qi "warning" "$WORK/dhub.err" || fail "config docker warns with default_upstream docker.io: $(cat "$WORK/dhub.err")"
grep -qF "# Checked $PCM/_pullcache/status: it mirrors docker.io," "$WORK/dhub.err" ||
    fail "config docker does not say it checked: $(cat "$WORK/dhub.err")"
grep -qF "# at bare /v2/<repository> paths too." "$WORK/dhub.err" || fail "config docker does not confirm bare paths"
grep -qF "#   pullcache serve --default-upstream docker.io" "$WORK/dhub.err" ||
    fail "config docker does not print what the server needs"
jq -e . "$WORK/dhub.out" >/dev/null || fail "config docker stdout is not JSON"

# Bare paths from another registry would hand Docker nodes the wrong images:
# refused, --force warns. (Options: the upstreams and default this is about.)
pc_stop
pc_start "$WORK/data" --upstream docker.io=https://registry-1.docker.io --upstream quay.io=https://quay.io \
    --default-upstream quay.io
run_cfg dquay docker --mirror "$PCM"
expect_eq 3 "$rc" "config docker against default_upstream quay.io: exit code"
grep -qF "$PCM serves bare /v2/<repository> paths from quay.io" "$WORK/dquay.err" ||
    fail "config docker does not say where bare paths go: $(cat "$WORK/dquay.err")"
[ ! -s "$WORK/dquay.out" ] || fail "refusal printed daemon.json"
run_cfg dquayf docker --mirror "$PCM" --force
expect_eq 0 "$rc" "config docker --force against default_upstream quay.io: exit code"
grep -qF "# warning: $PCM serves bare /v2/<repository> paths from quay.io" "$WORK/dquayf.err" ||
    fail "config docker --force does not warn: $(cat "$WORK/dquayf.err")"
# and now quay.io is there: no refusal for it
run_cfg quay containerd --mirror "$PCM" -u quay.io -u docker.io
expect_eq 0 "$rc" "config containerd -u quay.io against a server with quay.io: exit code ($(cat "$WORK/quay.err"))"
grep -qxF "# Checked $PCM/_pullcache/status: it mirrors quay.io and docker.io." "$WORK/quay.out" ||
    fail "config containerd does not say it checked both: $(cat "$WORK/quay.out")"
echo "ok: config docker: quiet with default_upstream docker.io, refuses quay.io's"

# Access control on: the status needs an admin, so it cannot be checked: a
# warning, the files printed. (--htpasswd: the option this is about.)
pc_stop
htpasswd -nbB -C 5 alice 'alice pass' >"$WORK/htpasswd" 2>>"$WORK/clients.log" || fail "htpasswd -nbB"
pc_start "$WORK/data" --htpasswd "$WORK/htpasswd"
expect_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' "$PCM/_pullcache/status")" "status without credentials"
run_cfg auth containerd --mirror "$PCM" -u ghcr.io
expect_eq 0 "$rc" "config against a server with access control: exit code"
grep -qF "# warning: $PCM wants an admin's credentials for /_pullcache/status" "$WORK/auth.err" ||
    fail "no warning for a status behind credentials: $(cat "$WORK/auth.err")"
grep -qF "assume it mirrors ghcr.io" "$WORK/auth.err" || fail "the credentials warning does not say what is assumed"
grep -qxF '# /etc/containerd/certs.d/ghcr.io/hosts.toml' "$WORK/auth.out" || fail "no hosts.toml printed with access control"
pc_stop
echo "ok: a status behind credentials is a warning"

# HTTPS: without --ca-file our own CA's certificate cannot be verified (a
# warning naming --ca-file); with it the check works, refusal included.
pki=$WORK/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=pullcache e2e config CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>>"$WORK/openssl.log" || fail "openssl: CA"
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/srv.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/srv.key" \
    -out "$pki/srv.csr" -subj "/CN=localhost" 2>>"$WORK/openssl.log" &&
    openssl x509 -req -in "$pki/srv.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial 0x1001 \
        -days 2 -extfile "$pki/srv.ext" -out "$pki/srv.crt" 2>>"$WORK/openssl.log" ||
    fail "openssl: server certificate"
TLS_PORT=5004
TLSM=https://127.0.0.1:$TLS_PORT
"$PULLCACHE" serve --listen "127.0.0.1:$TLS_PORT" --data "$WORK/data-tls" --tls-cert "$pki/srv.crt" \
    --tls-key "$pki/srv.key" >>"$WORK/pullcache-tls.log" 2>&1 &
tls_pid=$!
PIDS+=("$tls_pid")
for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$pki/ca.crt" "$TLSM/v2/" && break
    kill -0 "$tls_pid" 2>/dev/null || fail "pullcache with TLS exited at start (see pullcache-tls.log)"
    sleep 0.1
done
run_cfg tls containerd --mirror "$TLSM"
expect_eq 0 "$rc" "config against an https mirror of our own CA, no --ca-file: exit code"
grep -qF "could not ask $TLSM which upstreams it mirrors" "$WORK/tls.err" ||
    fail "no warning for an unverifiable certificate: $(cat "$WORK/tls.err")"
grep -qF "tls" "$WORK/tls.err" || fail "the TLS warning does not say tls"
grep -qF -- "--ca-file" "$WORK/tls.err" || fail "the TLS warning does not mention --ca-file"
run_cfg tlsca containerd --mirror "$TLSM" --ca-file "$pki/ca.crt"
expect_eq 0 "$rc" "config --ca-file: exit code"
[ ! -s "$WORK/tlsca.err" ] || fail "config --ca-file printed on stderr: $(cat "$WORK/tlsca.err")"
grep -qxF "# Checked $TLSM/_pullcache/status: it mirrors docker.io." "$WORK/tlsca.out" ||
    fail "config --ca-file did not check: $(cat "$WORK/tlsca.out")"
expect_eq "{\"$TLSM\":{\"capabilities\":[\"pull\",\"resolve\"]}}" \
    "$(toml "$WORK/tlsca.out" 'd["host"]')" "a verified https mirror (no skip_verify)"
run_cfg tlsmiss podman --mirror "$TLSM" --ca-file "$pki/ca.crt" -u ghcr.io
expect_eq 3 "$rc" "config --ca-file -u ghcr.io: exit code"
# --plain-http on https: the nodes skip verification, so does the check
run_cfg tlsplain containerd --mirror "$TLSM" --plain-http
expect_eq 0 "$rc" "config --plain-http on https: exit code"
[ ! -s "$WORK/tlsplain.err" ] || fail "config --plain-http (https) printed on stderr: $(cat "$WORK/tlsplain.err")"
grep -qxF "# Checked $TLSM/_pullcache/status: it mirrors docker.io." "$WORK/tlsplain.out" ||
    fail "config --plain-http (https) did not check"
kill -TERM "$tls_pid"
wait "$tls_pid" 2>/dev/null || true
echo "ok: https mirror: --ca-file verifies, without it a warning"

# ---- the README's examples, as written -------------------------------------------
# "Point your nodes at the cache" shows `$ pullcache config ...` blocks run
# against a cache at 10.0.0.5:5000 (docker.io, bare paths from docker.io) and
# the warning a cache with default_upstream none gets. Both are reproduced
# here: 10.0.0.5 on this namespace's loopback, stdout and stderr together.
ip addr add 10.0.0.5/32 dev lo || fail "cannot add 10.0.0.5 to lo"
readme_serve() {
    "$PULLCACHE" serve --listen 10.0.0.5:5000 --data "$WORK/data-readme" "$@" \
        >>"$WORK/pullcache-readme.log" 2>&1 &
    readme_pid=$!
    PIDS+=("$readme_pid")
    wait_http http://10.0.0.5:5000/v2/ "$readme_pid"
}
mkdir -p "$WORK/readme"
n=0
inblock=0
while IFS= read -r line; do
    if [ "$line" = '```' ]; then
        if [ "$inblock" = 0 ]; then
            n=$((n + 1))
            : >"$WORK/readme/$n"
            inblock=1
        else
            inblock=0
        fi
        continue
    fi
    [ "$inblock" = 0 ] || printf '%s\n' "$line" >>"$WORK/readme/$n"
done < <(awk '/^## Point your nodes at the cache$/ { on = 1; next } on && /^## / { exit } on' "$PC_SRC/README.md")
readme_serve --default-upstream docker.io
ran=0
warnblock=""
for i in $(seq "$n"); do
    first=$(head -n 1 "$WORK/readme/$i")
    case $first in
    '$ pullcache config '*)
        read -r -a args <<<"${first#\$ pullcache }"
        "$PULLCACHE" "${args[@]}" >"$WORK/readme/$i.got" 2>&1 || true
        tail -n +2 "$WORK/readme/$i" | diff -u - "$WORK/readme/$i.got" >"$WORK/readme/$i.diff" ||
            fail "README example '$first' differs from what it prints: $(cat "$WORK/readme/$i.diff")"
        ran=$((ran + 1))
        ;;
    '# warning: '*) warnblock=$i ;;
    esac
done
[ "$ran" -ge 4 ] || fail "only $ran README config examples found (want containerd, podman, docker, the refusal)"
[ -n "$warnblock" ] || fail "the README shows no config docker warning"
kill -TERM "$readme_pid"
wait "$readme_pid" 2>/dev/null || true
# The warning block: what config docker prints on stderr when bare paths are
# private (default_upstream none: serve's default, so nothing is passed).
readme_serve
"$PULLCACHE" config docker --mirror http://10.0.0.5:5000 2>"$WORK/readme/warn.got" >/dev/null ||
    fail "config docker against the README's cache with the defaults"
/usr/bin/python3 -c 'import sys
want, got = open(sys.argv[1]).read(), open(sys.argv[2]).read()
sys.exit(0 if want in got else 1)' "$WORK/readme/$warnblock" "$WORK/readme/warn.got" ||
    fail "the README's config docker warning is not what it prints: $(cat "$WORK/readme/warn.got")"
kill -TERM "$readme_pid"
wait "$readme_pid" 2>/dev/null || true
echo "ok: the README's $ran config examples and the docker warning print as shown"

# ---- the real clients accept the files ----------------------------------------------
clients_init
img=$WORK/img
mkimages "$img" cfgcmd-1
dist_start "$WORK/dist"
MIRROR=http://127.0.0.1:$DIST_PORT

# containerd: docker-registry is the mirror, holding each image at the bare
# path (what containerd asks a mirror for, ?ns= telling pullcache the
# upstream). Different images, so each pull fetches its own config blob.
dist_push "$img" oci-single library/cfgtest:v1
dist_push "$img" docker-single org/app:v1
# With the check: docker-registry has no /_pullcache/status (404): a warning,
# the files are written.
"$PULLCACHE" config containerd --mirror "$MIRROR" -u docker.io -u ghcr.io --output "$WORK/hosts" \
    >/dev/null 2>"$WORK/dist-check.err" || fail "config containerd --output for ctr"
grep -qF "warning: $MIRROR answered GET /_pullcache/status with HTTP 404: it is" "$WORK/dist-check.err" ||
    fail "no not-a-pullcache warning for docker-registry: $(cat "$WORK/dist-check.err")"
ctd_start
for pair in docker.io/library/cfgtest:v1=oci-single ghcr.io/org/app:v1=docker-single; do
    ref=${pair%=*}
    tag=${pair#*=}
    up=${ref%%/*}
    repo=${ref#*/}
    repo=${repo%:*}
    want=$(img_digest "$img" "$tag")
    cfgd=$(jq -r .config.digest "$img/blobs/sha256/${want#sha256:}")
    echo "+ ctr images pull --hosts-dir $WORK/hosts $ref" >>"$WORK/clients.log"
    c images pull --hosts-dir "$WORK/hosts" --platform linux/amd64 "$ref" >>"$WORK/clients.log" 2>&1 ||
        fail "ctr images pull $ref through the generated hosts.toml (see clients.log)"
    expect_eq "$want" "$(c images ls "name==$ref" | awk -v r="$ref" '$1 == r { print $3 }')" \
        "digest of $ref in containerd"
    grep -qE "\"(HEAD|GET) /v2/$repo/manifests/v1\\?ns=$up HTTP" "$WORK/dist.log" ||
        fail "no manifest request for /v2/$repo/manifests/v1?ns=$up at the mirror (see dist.log)"
    grep -qF "\"GET /v2/$repo/blobs/$cfgd?ns=$up HTTP" "$WORK/dist.log" ||
        fail "the config blob of $ref did not come from the mirror with ?ns=$up (see dist.log)"
    echo "ok: ctr pulled $ref through the mirror (?ns=$up)"
done

# podman: the drop-in goes where a node keeps it. /etc/containers/registries.conf.d
# is a tmpfs in this test's mount namespace; the main registries.conf knows
# nothing of the mirror, so only the generated insecure = true allows plain HTTP.
want=$(img_digest "$img" oci-single)
cfgd=$(jq -r .config.digest "$img/blobs/sha256/${want#sha256:}")
dist_push "$img" oci-single docker.io/library/cfgtest:v1
mount -t tmpfs -o size=1m,mode=0755 pc-e2e-regconf /etc/containers/registries.conf.d ||
    fail "cannot mount a tmpfs on /etc/containers/registries.conf.d"
cfg podman --mirror "$MIRROR" --output /etc/containers/registries.conf.d >/dev/null ||
    fail "config podman --output /etc/containers/registries.conf.d"
printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$WORK/registries-min.conf"
export CONTAINERS_REGISTRIES_CONF=$WORK/registries-min.conf
ref=docker.io/library/cfgtest:v1
echo "+ podman pull $ref" >>"$WORK/clients.log"
id=$(pod pull -q --signature-policy "$WORK/policy.json" --platform linux/amd64 "$ref" \
    2>>"$WORK/clients.log") || fail "podman pull $ref through the generated drop-in (see clients.log)"
expect_eq "${cfgd#sha256:}" "$id" "image ID podman pulled through the mirror"
grep -qF "\"GET /v2/docker.io/library/cfgtest/manifests/v1 HTTP" "$WORK/dist.log" ||
    fail "podman did not ask the mirror for /v2/docker.io/library/cfgtest (see dist.log)"
echo "ok: podman pulled $ref through the mirror (host-prefix path)"
echo "PASS: $TEST_NAME"
