#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_doctor.sh - `pullcache doctor` against a real `pullcache serve` (its
# docker.io upstream the fake upstream, one tag cached): the files `pullcache
# config containerd|podman|docker` writes into a test root are all ok (exit
# 0), each runtime's route resolved with a manifest HEAD of the cached tag,
# and no upstream manifest GET made by doctor (no pull spent). Then broken
# files, each found with its finding and fix: containerd without config_path,
# a hosts.toml host without capabilities (a warning: containerd then grants
# push too), a mirror at a port nothing listens on, override_path without
# /v2, a podman [[registry]] without the upstream's prefix, a podman mirror
# without /docker.io against a server whose bare paths are private, Docker
# with an https:// mirror to the plain-HTTP cache, Docker against a server
# without --default-upstream docker.io; --json parsed by python3; usage
# errors exit 2; a node without any runtime's files exits 1; a real
# containerd (ctr --hosts-dir) and skopeo agree with the verdicts on their files;
# the README's example prints as shown.
. "$(dirname "$0")/lib.sh"

FP=5002
CACHE=http://127.0.0.1:$PC_PORT
mkimages "$WORK/img" doctor
fake_start pass "$FP" "" "" --repo library/test="$WORK/img"
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$FP" --default-upstream docker.io

# One tag cached, as a node's pull would leave it.
r=$(http_get "$CACHE/v2/docker.io/library/test/manifests/oci-single" "$WORK/m" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json')
expect_eq "200 0" "${r% *}" "GET of a manifest through the mirror"
WANT=$(reg_header "$WORK/m.h" Docker-Content-Digest)
[ -n "$WANT" ] || fail "no Docker-Content-Digest on the manifest"

# doc NAME ARGS...: doctor ARGS, stdout in $WORK/NAME.out, stderr in
# $WORK/NAME.err, the exit code in $rc.
doc() {
    local name=$1
    shift
    set +e
    "$PULLCACHE" doctor "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    set -e
}
# has NAME TEXT: the output of NAME holds TEXT.
has() { grep -qF -- "$2" "$WORK/$1.out" || fail "doctor ($1) does not say '$2': $(cat "$WORK/$1.out" "$WORK/$1.err")"; }
hasnt() { ! grep -qF -- "$2" "$WORK/$1.out" || fail "doctor ($1) says '$2': $(cat "$WORK/$1.out")"; }

# new_root NAME: a node's files as `pullcache config` writes them for the cache.
new_root() {
    local r=$WORK/$1
    mkdir -p "$r/etc/containerd"
    cat >"$r/etc/containerd/config.toml" <<'TOML'
version = 2
# what `pullcache config containerd` says to add
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
TOML
    "$PULLCACHE" config containerd --mirror "$CACHE" --output "$r/etc/containerd/certs.d" >/dev/null ||
        fail "config containerd --output"
    "$PULLCACHE" config podman --mirror "$CACHE" --output "$r/etc/containers/registries.conf.d" >/dev/null ||
        fail "config podman --output"
    "$PULLCACHE" config docker --mirror "$CACHE" --output "$r/etc/docker" >/dev/null 2>&1 ||
        fail "config docker --output"
    echo "$r"
}

# ---- help ------------------------------------------------------------------------
"$PULLCACHE" doctor --help >"$WORK/help1" || fail "doctor --help exit code"
"$PULLCACHE" help doctor >"$WORK/help2" || fail "help doctor exit code"
cmp -s "$WORK/help1" "$WORK/help2" || fail "doctor --help and help doctor differ"
for want in "--cache URL" "--root DIR" "--containerd-config FILE" "--hosts-dir DIR" "--registries-conf FILE" \
    "--registries-conf-d DIR" "--docker-daemon-json FILE" "--json" "exit codes:"; do
    grep -qF -- "$want" "$WORK/help1" || fail "doctor --help lacks '$want'"
done
"$PULLCACHE" help | grep -qE "^  doctor " || fail "help does not list doctor"
echo "ok: help"

# ---- all good --------------------------------------------------------------------
GOOD=$(new_root good)
fake_reset_log "$FP"
doc good --cache "$CACHE" --root "$GOOD"
expect_eq 0 "$rc" "doctor on the files config writes: exit code ($(cat "$WORK/good.out" "$WORK/good.err"))"
for rt in containerd podman docker; do
    has good "ok $rt docker.io: docker.io pulls go through the cache"
done
has good "ok cache: $CACHE/readyz answers 200"
has good "HEAD $CACHE/v2/library/test/manifests/oci-single?ns=docker.io answered $WANT"
has good "HEAD $CACHE/v2/docker.io/library/test/manifests/oci-single answered $WANT"
has good "HEAD $CACHE/v2/library/test/manifests/oci-single answered $WANT"
has good "0 errors, 0 warnings, 4 ok"
hasnt good "error "
[ ! -s "$WORK/good.err" ] || fail "doctor printed on stderr: $(cat "$WORK/good.err")"
# No pull spent: the cached tag is within its tag_ttl, nothing went upstream.
expect_eq 0 "$(fake_count "$FP" "" manifest)" "upstream manifest requests made by doctor"
# Without --cache, the mirrors the files name are checked as they are.
doc good2 --root "$GOOD"
expect_eq 0 "$rc" "doctor without --cache: exit code ($(cat "$WORK/good2.out"))"
has good2 "ok containerd docker.io"
# The paths one by one instead of --root.
doc good3 --cache "$CACHE" --containerd-config "$GOOD/etc/containerd/config.toml" \
    --hosts-dir "$GOOD/etc/containerd/certs.d" --registries-conf "$WORK/none.conf" \
    --registries-conf-d "$GOOD/etc/containers/registries.conf.d" --docker-daemon-json "$GOOD/etc/docker/daemon.json"
expect_eq 0 "$rc" "doctor with each path given: exit code ($(cat "$WORK/good3.out"))"
has good3 "0 errors, 0 warnings, 4 ok"
echo "ok: the files pullcache config writes go through the cache (no upstream request)"

# ---- containerd without config_path ----------------------------------------------
R=$(new_root nocp)
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n' \
    >"$R/etc/containerd/config.toml"
doc nocp --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "containerd without config_path: exit code"
has nocp "error containerd: $R/etc/containerd/config.toml sets no config_path"
has nocp "containerd reads no hosts.toml"
has nocp 'config_path = "/etc/containerd/certs.d"'
has nocp '[plugins."io.containerd.grpc.v1.cri".registry]'
has nocp "systemctl restart containerd"
has nocp "(once config_path is set)"
head -n1 "$WORK/nocp.out" | grep -q "^error " || fail "the first finding is not the error: $(cat "$WORK/nocp.out")"
echo "ok: containerd without config_path"

# ---- a hosts.toml host without capabilities --------------------------------------
R=$(new_root nocaps)
sed -i '/capabilities/d' "$R/etc/containerd/certs.d/docker.io/hosts.toml"
doc nocaps --cache "$CACHE" --root "$R"
# containerd grants pull, resolve and push to such a host: pulls still go
# through the cache (a warning, exit 0), pushes would go to it as well.
expect_eq 0 "$rc" "hosts.toml without capabilities: exit code ($(cat "$WORK/nocaps.out"))"
has nocaps "warning containerd docker.io: [host.\"$CACHE\"] in $R/etc/containerd/certs.d/docker.io/hosts.toml sets no capabilities"
has nocaps 'capabilities = ["pull", "resolve"]'
# a host that can pull but not resolve: tags are resolved at Docker Hub
sed -i "s|^\[host.\"$CACHE\"\]|&\n  capabilities = [\"pull\"]|" "$R/etc/containerd/certs.d/docker.io/hosts.toml"
doc nores --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "hosts.toml with capabilities = [pull]: exit code ($(cat "$WORK/nores.out"))"
has nores "lacks the resolve capability: containerd resolves tags at docker.io itself"
# an unknown capability: containerd refuses the file
sed -i 's|capabilities = \["pull"\]|capabilities = ["pull", "fetch"]|' "$R/etc/containerd/certs.d/docker.io/hosts.toml"
doc badcap --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "hosts.toml with an unknown capability: exit code"
has badcap 'unknown capability "fetch"'
echo "ok: capabilities (missing: warning; without resolve, unknown: errors)"

# ---- wrong port: nothing listens there --------------------------------------------
R=$(new_root port)
rm -r "$R/etc/containerd/certs.d"
"$PULLCACHE" config containerd --no-check --mirror http://127.0.0.1:5999 --output "$R/etc/containerd/certs.d" >/dev/null
doc port --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "containerd mirror at a wrong port: exit code"
has port "error containerd docker.io: 127.0.0.1:5999 is not the cache (127.0.0.1:$PC_PORT), and nothing answers there"
has port "pullcache config containerd --mirror $CACHE --upstream docker.io --output $R/etc/containerd/certs.d"
doc port2 --root "$R"
expect_eq 1 "$rc" "wrong port without --cache: exit code"
has port2 "error containerd docker.io: nothing answers at 127.0.0.1:5999"
has port2 "pulls fall back to the registry"
echo "ok: a mirror where nothing listens"

# ---- override_path without /v2 -----------------------------------------------------
R=$(new_root override)
sed -i "s|^\[host.\"$CACHE\"\]|&\n  override_path = true|" "$R/etc/containerd/certs.d/docker.io/hosts.toml"
doc override --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "override_path without /v2: exit code ($(cat "$WORK/override.out"))"
has override "GET $CACHE/ answered HTTP"
has override "override_path = true, so its URL must end with /v2"
echo "ok: override_path without /v2"

# ---- podman: a [[registry]] without the upstream's prefix ---------------------------
R=$(new_root noprefix)
cat >"$R/etc/containers/registries.conf.d/pullcache.conf" <<TOML
[[registry]]
location = "127.0.0.1:$PC_PORT/docker.io"
insecure = true
TOML
doc noprefix --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "podman [[registry]] without prefix: exit code"
has noprefix "error podman docker.io: no [[registry]] covers docker.io images"
has noprefix "has no prefix: it takes its location as prefix = \"127.0.0.1:$PC_PORT/docker.io\""
has noprefix 'prefix = "docker.io"'
# a prefix that covers only part of Docker Hub
cat >"$R/etc/containers/registries.conf.d/pullcache.conf" <<TOML
[[registry]]
prefix = "docker.io/library"
location = "docker.io/library"
[[registry.mirror]]
location = "127.0.0.1:$PC_PORT/docker.io"
insecure = true
TOML
doc partprefix --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "podman prefix docker.io/library: exit code"
has partprefix "applies only to images named docker.io/library/..."
# plain HTTP without insecure = true: podman's TLS to the cache fails
"$PULLCACHE" config podman --mirror "$CACHE" --output "$R/etc/containers/registries.conf.d" >/dev/null
sed -i '/insecure = true/d' "$R/etc/containers/registries.conf.d/pullcache.conf"
doc podtls --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "podman mirror without insecure: exit code ($(cat "$WORK/podtls.out"))"
has podtls "speaks plain HTTP, but the file says https://"
has podtls "insecure = true"
echo "ok: podman prefix and insecure"

# ---- docker: https:// to the plain-HTTP cache ----------------------------------------
R=$(new_root dtls)
echo "{\"registry-mirrors\": [\"https://127.0.0.1:$PC_PORT\"]}" >"$R/etc/docker/daemon.json"
doc dtls --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "docker https:// mirror to a plain-HTTP cache: exit code"
has dtls "error docker docker.io: 127.0.0.1:$PC_PORT speaks plain HTTP, but the file says https://"
has dtls "\"registry-mirrors\": [\"http://127.0.0.1:$PC_PORT\"]"
has dtls "\"insecure-registries\": [\"127.0.0.1:$PC_PORT\"]"
echo '{"registry-mirrors": "http://x"}' >"$R/etc/docker/daemon.json"
doc dtype --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "daemon.json with a string for registry-mirrors: exit code"
has dtype '"registry-mirrors" is not a list'
echo "ok: docker https:// to plain HTTP"

# ---- --json ------------------------------------------------------------------------
R=$(new_root json)
printf 'version = 2\n' >"$R/etc/containerd/config.toml"
sed -i '/capabilities/d' "$R/etc/containerd/certs.d/docker.io/hosts.toml"
doc json --cache "$CACHE" --root "$R" --json
expect_eq 1 "$rc" "doctor --json with an error: exit code"
/usr/bin/python3 - "$WORK/json.out" "$R" "$CACHE" <<'PY' || fail "doctor --json: $(cat "$WORK/json.out")"
import json, sys
d = json.load(open(sys.argv[1]))
root, cache = sys.argv[2], sys.argv[3]
f = d["findings"]
rank = {"error": 2, "warning": 1, "ok": 0}
assert d["cache"] == cache, d["cache"]
assert all(set(x) == {"level", "runtime", "upstream", "file", "message", "fix"} for x in f), f
assert [rank[x["level"]] for x in f] == sorted((rank[x["level"]] for x in f), reverse=True), "not worst-first"
for lvl, key in (("error", "errors"), ("warning", "warnings"), ("ok", "ok")):
    assert d[key] == sum(x["level"] == lvl for x in f), (key, d[key])
assert d["exit"] == 1
e = [x for x in f if x["level"] == "error"]
assert e[0]["runtime"] == "containerd" and e[0]["file"] == root + "/etc/containerd/config.toml", e[0]
assert 'config_path = "/etc/containerd/certs.d"' in e[0]["fix"], e[0]["fix"]
w = [x for x in f if x["level"] == "warning"]
assert len(w) == 1 and w[0]["upstream"] == "docker.io" and "capabilities" in w[0]["fix"], w
ok = {(x["runtime"], x["upstream"]) for x in f if x["level"] == "ok"}
assert ok == {("cache", None), ("containerd", "docker.io"), ("podman", "docker.io"), ("docker", "docker.io")}, ok
assert all(x["fix"] is None for x in f if x["level"] == "ok")
PY
doc json0 --cache "$CACHE" --root "$GOOD" --json
expect_eq 0 "$rc" "doctor --json, all ok: exit code"
/usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["errors"] == 0 and d["exit"] == 0 and d["ok"] == 4, d' \
    "$WORK/json0.out" || fail "doctor --json (ok): $(cat "$WORK/json0.out")"
echo "ok: --json"

# ---- an upstream the cache does not mirror -------------------------------------------
R=$(new_root ghcr)
"$PULLCACHE" config containerd --force --mirror "$CACHE" -u ghcr.io --output "$R/etc/containerd/certs.d" \
    >/dev/null 2>&1 || fail "config containerd --force -u ghcr.io"
doc ghcr --cache "$CACHE" --root "$R" --upstream docker.io --upstream GHCR.io
expect_eq 1 "$rc" "doctor --upstream ghcr.io against a cache without it: exit code ($(cat "$WORK/ghcr.out"))"
has ghcr "error containerd ghcr.io: the cache at 127.0.0.1:$PC_PORT does not mirror ghcr.io"
has ghcr "    - {name: ghcr.io, url: https://ghcr.io}"
has ghcr "error podman ghcr.io: no [[registry]] with prefix \"ghcr.io\""
has ghcr "pullcache config podman --mirror $CACHE --upstream ghcr.io --output $R/etc/containers/registries.conf.d"
has ghcr "ok containerd docker.io"
hasnt ghcr "docker ghcr.io"
echo "ok: an upstream the cache does not mirror; Docker is asked about docker.io only"

# ---- doctor's verdicts against a real containerd --------------------------------------
# ctr with the hosts.toml files of a root pulls docker.io/library/test: the
# registry itself (https://registry-1.docker.io) cannot be reached from this
# namespace, so a pull that works went through the cache. The files doctor
# passed work; so does a host without capabilities (why that is only a
# warning: containerd grants it pull and resolve, and push); the wrong port
# doctor called an error fails.
ctd_start
ctr_pull() { # HOSTS_DIR TAG: 0 when ctr pulled it
    echo "+ ctr images pull --hosts-dir $1 docker.io/library/test:$2" >>"$WORK/clients.log"
    c images pull --hosts-dir "$1" --snapshotter native "docker.io/library/test:$2" >>"$WORK/clients.log" 2>&1
}
ctr_pull "$GOOD/etc/containerd/certs.d" oci-single || fail "ctr pull with the files doctor passed (see clients.log)"
sed -i '/capabilities/d' "$WORK/nocaps/etc/containerd/certs.d/docker.io/hosts.toml"
grep -q capabilities "$WORK/nocaps/etc/containerd/certs.d/docker.io/hosts.toml" && fail "nocaps still has capabilities"
fake_reset_log "$FP"
ctr_pull "$WORK/nocaps/etc/containerd/certs.d" docker-single ||
    fail "ctr pull through a host without capabilities (doctor: a warning) failed (see clients.log)"
[ "$(fake_count "$FP" GET manifest)" -ge 1 ] || fail "the pull without capabilities did not reach the cache's upstream"
! ctr_pull "$WORK/port/etc/containerd/certs.d" docker-list ||
    fail "ctr pulled through a mirror where nothing listens (doctor: an error)"
echo "ok: ctr agrees: the passed files and a host without capabilities pull through the cache, the wrong port does not"

# ---- ... and a real containers/image (skopeo) ----------------------------------------
# The drop-ins of a root in one registries.conf (skopeo --registries-conf):
# skopeo inspect of docker.io/library/test works only through the cache.
clients_init
sk_inspect() { # CONF TAG: 0 when skopeo got the manifest
    echo "+ skopeo inspect (registries.conf $1) docker.io/library/test:$2" >>"$WORK/clients.log"
    skopeo --registries-conf "$1" inspect --raw --retry-times 0 \
        "docker://docker.io/library/test:$2" >>"$WORK/clients.log" 2>&1
}
cat "$GOOD"/etc/containers/registries.conf.d/*.conf >"$WORK/sk-good.conf"
sk_inspect "$WORK/sk-good.conf" docker-list || fail "skopeo with the drop-in doctor passed: $(tail -5 "$WORK/clients.log")"
sed '/insecure = true/d' "$WORK/sk-good.conf" >"$WORK/sk-tls.conf"
! sk_inspect "$WORK/sk-tls.conf" docker-list || fail "skopeo pulled through a mirror without insecure = true (doctor: an error)"
printf '[[registry]]\nlocation = "127.0.0.1:%s/docker.io"\ninsecure = true\n' "$PC_PORT" >"$WORK/sk-noprefix.conf"
! sk_inspect "$WORK/sk-noprefix.conf" docker-list || fail "skopeo pulled through a [[registry]] without prefix (doctor: an error)"
echo "ok: skopeo agrees: the passed drop-in works, no insecure and no prefix do not"

# ---- usage and empty nodes -----------------------------------------------------------
bad() {
    local want=$1
    shift
    doc bad "$@"
    expect_eq 2 "$rc" "exit code of doctor $*"
    grep -qF -- "$want" "$WORK/bad.err" || fail "doctor $*: message lacks '$want': $(cat "$WORK/bad.err")"
    [ ! -s "$WORK/bad.out" ] || fail "doctor $*: printed on stdout: $(cat "$WORK/bad.out")"
}
bad "--help" --bogus
bad "http:// or https://" --cache ftp://x
bad "without a path" --cache "$CACHE/v2/"
bad "unexpected argument" extra
bad "REGISTRY/REPOSITORY:TAG" --image alpine
bad "wants a path" --root ""
bad "did you mean ghcr.io?" --upstream ghcr
bad "not a URL" --upstream https://ghcr.io
mkdir -p "$WORK/empty"
doc empty --root "$WORK/empty"
expect_eq 1 "$rc" "doctor on a node without runtime files: exit code"
has empty "no container runtime's files found"
doc nofile --cache "$CACHE" --root "$WORK/empty" --containerd-config "$WORK/empty/nope.toml"
expect_eq 1 "$rc" "doctor with a --containerd-config that does not exist"
has nofile "$WORK/empty/nope.toml: no such file"
printf '[plugins\nversion = 2\n' >"$WORK/empty/broken.toml"
doc broken --root "$WORK/empty" --containerd-config "$WORK/empty/broken.toml"
expect_eq 1 "$rc" "doctor with a broken config.toml"
has broken "containerd cannot read $WORK/empty/broken.toml: line 1:"
echo "ok: usage errors exit 2, no runtime files or broken ones exit 1"

# ---- a server whose bare paths are private (serve's default) --------------------------
pc_stop
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$FP"
R=$(new_root bare)
sed -i "s|location = \"127.0.0.1:$PC_PORT/docker.io\"|location = \"127.0.0.1:$PC_PORT\"|" \
    "$R/etc/containers/registries.conf.d/pullcache.conf"
doc bare --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "bare paths private: exit code ($(cat "$WORK/bare.out"))"
has bare "error podman docker.io: the cache at 127.0.0.1:$PC_PORT serves bare /v2/<repository> paths from none"
has bare "has no /docker.io, so podman asks for bare paths"
has bare "location = \"127.0.0.1:$PC_PORT/docker.io\""
has bare "error docker docker.io: the cache at 127.0.0.1:$PC_PORT serves bare /v2/<repository> paths from none"
has bare "pullcache serve --default-upstream docker.io"
has bare "ok containerd docker.io"
echo "ok: podman mirror without /docker.io and docker against private bare paths"

# ---- the README's example, as written ------------------------------------------------
# "Check a node: pullcache doctor" shows a run against a fresh cache at
# 10.0.0.5:5000 (bare paths from docker.io, nothing cached yet) on a node
# whose config.toml lacks config_path (hosts.toml as `pullcache config` writes
# it) and whose daemon.json has no mirror. Reproduced here with 10.0.0.5 on
# this namespace's loopback and the node's files under a root; the one
# rewrite: that root is taken out of the paths doctor prints.
ip addr add 10.0.0.5/32 dev lo || fail "cannot add 10.0.0.5 to lo"
"$PULLCACHE" serve --listen 10.0.0.5:5000 --data "$WORK/data-readme" --default-upstream docker.io \
    >>"$WORK/pullcache-readme.log" 2>&1 &
readme_pid=$!
PIDS+=("$readme_pid")
wait_http http://10.0.0.5:5000/v2/ "$readme_pid"
R=$WORK/readme-node
mkdir -p "$R/etc/containerd" "$R/etc/docker"
printf 'version = 2\n' >"$R/etc/containerd/config.toml"
"$PULLCACHE" config containerd --mirror http://10.0.0.5:5000 --output "$R/etc/containerd/certs.d" >/dev/null
echo '{"debug": true}' >"$R/etc/docker/daemon.json"
awk '/^## Check a node: pullcache doctor$/ { on = 1; next } on && /^## / { exit } on' "$PC_SRC/README.md" |
    awk '/^```$/ { n++; next } n == 1' >"$WORK/readme.block"
first=$(head -n 1 "$WORK/readme.block")
case $first in '$ pullcache doctor '*) ;; *) fail "the README's doctor section has no '\$ pullcache doctor' block" ;; esac
read -r -a args <<<"${first#\$ pullcache }"
set +e
"$PULLCACHE" "${args[@]}" --root "$R" >"$WORK/readme.got" 2>&1
rc=$?
set -e
expect_eq 1 "$rc" "the README's doctor example: exit code"
sed -i "s|$R||g" "$WORK/readme.got"
tail -n +2 "$WORK/readme.block" | diff -u - "$WORK/readme.got" >"$WORK/readme.diff" ||
    fail "the README's doctor example differs from what it prints: $(cat "$WORK/readme.diff")"
echo "ok: the README's doctor example prints as shown"

# ---- a mirror that is a registry but no pullcache; a cache with access control --------
dist_start "$WORK/dist"
R=$(new_root dist)
rm -r "$R/etc/containerd/certs.d" "$R/etc/containers" "$R/etc/docker"
"$PULLCACHE" config containerd --no-check --mirror "http://127.0.0.1:$DIST_PORT" \
    --output "$R/etc/containerd/certs.d" >/dev/null
doc dist --root "$R"
expect_eq 0 "$rc" "a mirror that is a plain registry, no --cache: exit code ($(cat "$WORK/dist.out"))"
has dist "warning containerd docker.io: 127.0.0.1:$DIST_PORT answers as a registry but not as a pullcache (GET /readyz: HTTP 404)"
doc dist2 --cache "$CACHE" --root "$R"
expect_eq 1 "$rc" "a mirror that is another registry than --cache: exit code"
has dist2 "error containerd docker.io: 127.0.0.1:$DIST_PORT answers as a registry, but it is not the cache (127.0.0.1:$PC_PORT)"

pc_stop
htpasswd -nbB -C 5 alice 'alice pass' >"$WORK/htpasswd" 2>>"$WORK/clients.log" || fail "htpasswd -nbB"
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$FP" --default-upstream docker.io \
    --htpasswd "$WORK/htpasswd"
doc auth --cache "$CACHE" --root "$GOOD"
expect_eq 0 "$rc" "a cache with access control: exit code ($(cat "$WORK/auth.out"))"
has auth "its status needs an admin's credentials (HTTP 401)"
has auth "0 errors, 0 warnings, 4 ok"
doc auth2 --cache "$CACHE" --root "$GOOD" --image docker.io/library/test:oci-single
expect_eq 0 "$rc" "a cache with access control, --image: exit code ($(cat "$WORK/auth2.out"))"
# anonymous pulls are allowed by the default policy: --image's tag resolves
has auth2 "ok containerd docker.io: docker.io pulls go through the cache: HEAD $CACHE/v2/library/test/manifests/oci-single?ns=docker.io answered $WANT"
# mirrored content for users only: the tag's HEAD gets 401 (doctor sends no
# credentials), a warning; the route itself answered
pc_stop
cat >"$WORK/auth.yml" <<YML
upstreams:
  - name: docker.io
    url: http://127.0.0.1:$FP
cache:
  default_upstream: docker.io
auth:
  htpasswd: $WORK/htpasswd
  access:
    - prefix: docker.io
      readonly: true
      pull: [authenticated]
YML
pc_start "$WORK/data" --config "$WORK/auth.yml"
doc auth3 --cache "$CACHE" --root "$GOOD" --image docker.io/library/test:oci-single
expect_eq 0 "$rc" "pulls for users only, --image: exit code ($(cat "$WORK/auth3.out"))"
has auth3 "warning containerd docker.io: HEAD $CACHE/v2/library/test/manifests/oci-single?ns=docker.io answered 401"
has auth3 "0 errors, 3 warnings, 1 ok"
echo "ok: a plain registry as mirror (warning; error with --cache), a cache with access control"
