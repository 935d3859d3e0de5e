#!/usr/bin/env bash
# test_config_cmd.sh - `pullcache config containerd|podman|cri-o|docker`: the
# generated hosts.toml, registries.conf drop-in and daemon.json parse (TOML
# with Python's tomllib, JSON with jq) and hold exactly the expected values;
# --output writes the files (daemon.json merged, not clobbered); --json is
# one parseable object; bad input exits 2 with a message; --upstream names
# are registry hosts (ghcr refused with a hint, Docker.IO lowercased, ports
# and localhost allowed), cri-o/crio get podman's drop-in. Then the real
# clients accept the files: ctr pulls docker.io/... and ghcr.io/... through
# the generated hosts.toml from a docker-registry posing as the mirror (its
# access log shows ?ns=<upstream>), and podman pulls docker.io/... through the
# generated drop-in in /etc/containers/registries.conf.d (a private tmpfs).
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
cfg() { "$PULLCACHE" config "$@"; }

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
    "examples:" "pullcache config containerd --mirror http://10.0.0.5:5000"; do
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
bad "unexpected argument" containerd podman --mirror "$M"
bad "--help" containerd --mirror "$M" --bogus
echo "ok: bad input"

# ---- upstream names ------------------------------------------------------------------
# Not a registry host: exit 2, one message, nothing on stdout.
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
"$PULLCACHE" config --help | grep -qF "cri-o" || fail "config --help does not name cri-o"
echo "ok: upstream names (ghcr refused, Docker.IO lowercased, ports, localhost, cri-o)"

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
cfg containerd --mirror "$MIRROR" -u docker.io -u ghcr.io --output "$WORK/hosts" >/dev/null ||
    fail "config containerd --output for ctr"
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
