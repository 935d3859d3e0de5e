#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_kubernetes.sh - deploy/kubernetes, offline (no cluster):
#   - `kubectl kustomize` renders base, overlays/scale-out and node
#     ($KUBECTL, default kubectl: Debian's kubernetes-client, kustomize 2.0,
#     or a newer one);
#   - tests/tools/k8s_check.py checks the rendered objects' fields that
#     matter: the image (the kustomization's, tagged `pullcache --version`),
#     probes (/healthz liveness, /readyz readiness on port 5000), volumes
#     and mounts (base: a volumeClaimTemplate at /data; scale-out: an
#     emptyDir, the config's secret files in read-only Secret volumes, no
#     Secret rendered), securityContext (non-root 65532, read-only root file
#     system, no privilege escalation, capabilities drop ALL, seccomp
#     RuntimeDefault), the Service, PDB and NetworkPolicy selecting the pods,
#     --advertise from the downward API; each ConfigMap's config.yaml passes
#     `pullcache serve --check-config` (secret paths pointed at test files);
#   - the node DaemonSet's command, as rendered (kubelet's $(VAR) expansion
#     done by hand: the Service's host and port are the test's pullcache; the
#     binary is the one under test; the hostPath mount point is a test
#     directory), run as root without capabilities (setpriv, like
#     capabilities drop ALL + no_new_privs) against a real containerd of the
#     test's own: it writes docker.io/hosts.toml; killed (-9) and run again it
#     leaves the file untouched (same inode and mtime); `ctr images pull
#     --hosts-dir` then pulls docker.io/library/k8stest:v1 through the cache
#     (the cache's log has the ?ns=docker.io requests, the upstream behind
#     it got the manifest and blobs); SIGTERM removes exactly that file and
#     its directory, an administrator's quay.io/hosts.toml stays byte for
#     byte, and a pull with no hosts.toml left fails (no route to Docker Hub
#     here); with --watch 1 a removed or edited file is written again; after
#     a kill -9, `--remove` (the documented cleanup) removes only ours;
#   - usage errors of --watch/--remove exit 2.
. "$(dirname "$0")/lib.sh"

KUBECTL=${KUBECTL:-kubectl}
if ! command -v "$KUBECTL" >/dev/null; then
    echo "SKIP: $TEST_NAME: no $KUBECTL (scripts/deps.sh --test installs kubernetes-client)"
    exit 77
fi
K8S=$PC_SRC/deploy/kubernetes
VERSION=$("$PULLCACHE" --version | awk '{ print $2 }')

# ---- rendering and the fields that matter -----------------------------------------
# The image every overlay sets (base's kustomization), tagged with this version.
IMAGE=$(python3 -c '
import sys, yaml
k = yaml.safe_load(open(sys.argv[1]))
i = [i for i in k["images"] if i["name"] == "pullcache"][0]
print(i["newName"] + ":" + str(i["newTag"]))' "$K8S/base/kustomization.yaml")
expect_eq "$VERSION" "${IMAGE##*:}" "the kustomization's image tag (pullcache --version)"
mkdir -p "$WORK/secrets/postgres" "$WORK/secrets/s3" "$WORK/secrets/cluster"
echo 'host=db.example.com dbname=pullcache user=pc password=x' >"$WORK/secrets/postgres/conninfo"
printf 'aws_access_key_id = a\naws_secret_access_key = b\n' >"$WORK/secrets/s3/credentials"
openssl rand -hex 32 >"$WORK/secrets/cluster/secret"
for pair in base:base scale-out:overlays/scale-out node:node; do
    kind=${pair%%:*} dir=$K8S/${pair#*:}
    "$KUBECTL" kustomize "$dir" >"$WORK/$kind.yaml" 2>"$WORK/$kind.kustomize.log" ||
        fail "$KUBECTL kustomize ${pair#*:}: $(cat "$WORK/$kind.kustomize.log")"
    mkdir -p "$WORK/$kind"
    python3 "$PC_SRC/tests/tools/k8s_check.py" "$kind" "$WORK/$kind.yaml" "$IMAGE" "$WORK/$kind" \
        >"$WORK/$kind.check" 2>&1 || fail "rendered ${pair#*:}: $(cat "$WORK/$kind.check")"
    cat "$WORK/$kind.check"
    # overlays/*: kustomize overlays on the same bases render too
    if [ "$kind" != node ]; then
        sed "s|/run/secrets/pullcache/|$WORK/secrets/|" "$WORK/$kind/config.yaml" >"$WORK/$kind/check.yaml"
        "$PULLCACHE" serve --check-config --config "$WORK/$kind/check.yaml" >"$WORK/$kind.cc" 2>&1 ||
            fail "${pair#*:}'s config.yaml: serve --check-config: $(cat "$WORK/$kind.cc")"
    fi
done
for d in "$K8S"/overlays/*/; do
    "$KUBECTL" kustomize "$d" >/dev/null 2>"$WORK/overlay.log" ||
        fail "$KUBECTL kustomize $d: $(cat "$WORK/overlay.log")"
done
echo "ok: rendered base, overlays/scale-out, node; checked; configs valid"

# ---- the node step against a real containerd ----------------------------------------
clients_init
img=$WORK/img
mkimages "$img" k8s-1
dist_start "$WORK/dist"
dist_push "$img" oci-single library/k8stest:v1
dist_push "$img" docker-single library/k8stest:v2
# the cache, mirroring docker.io from the test's docker-registry
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$DIST_PORT"
ctd_start

HOSTDIR=$WORK/host/etc/containerd/certs.d
mkdir -p "$HOSTDIR/quay.io"
# an administrator's file for another registry: never touched
printf 'server = "https://quay.io"\n[host."https://quay-mirror.example.com"]\n  capabilities = ["pull"]\n' \
    >"$HOSTDIR/quay.io/hosts.toml"
QUAY=$(sha256sum "$HOSTDIR/quay.io/hosts.toml")

# The DaemonSet's command line, rendered, with what the kubelet and the
# mounts would supply (see the header).
mapfile -t NODE_CMD < <(sed -e "s|^/usr/bin/pullcache\$|$PULLCACHE|" \
    -e "s|\$(PULLCACHE_SERVICE_HOST)|127.0.0.1|" -e "s|\$(PULLCACHE_SERVICE_PORT)|$PC_PORT|" \
    -e "s|^/host/etc/containerd/certs.d\$|$HOSTDIR|" "$WORK/node/node-command")
[ "${NODE_CMD[0]}" = "$PULLCACHE" ] || fail "the DaemonSet's binary is not /usr/bin/pullcache: ${NODE_CMD[0]}"
printf '%s\n' "${NODE_CMD[@]}" | grep -qxF "$HOSTDIR" || fail "the DaemonSet's --output is not its hostPath mount"

NODE_PID=""
NODE_N=0
# node_start [ARGS...]: run the DaemonSet's command (ARGS replace it when
# given) as root without capabilities; wait until it keeps its files.
node_start() {
    local cmd=("${NODE_CMD[@]}")
    [ $# -eq 0 ] || cmd=("$@")
    NODE_N=$((NODE_N + 1))
    NODE_OUT=$WORK/node-$NODE_N.out
    echo "+ ${cmd[*]}" >>"$WORK/clients.log"
    setpriv --no-new-privs --bounding-set -all --inh-caps -all "${cmd[@]}" >"$NODE_OUT" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    for _ in $(seq 100); do
        grep -q '^# keeping' "$NODE_OUT" && break
        kill -0 "$NODE_PID" 2>/dev/null || fail "the node command exited: $(cat "$NODE_OUT")"
        sleep 0.1
    done
    grep -q '^# keeping' "$NODE_OUT" || fail "the node command does not keep its files: $(cat "$NODE_OUT")"
    expect_eq 0000000000000000 "$(awk '/^CapEff:/ { print $2 }' "/proc/$NODE_PID/status")" \
        "effective capabilities of the node command"
}
# node_stop SIGNAL: stop it; its exit status in NODE_RC.
node_stop() {
    NODE_RC=0
    kill "-$1" "$NODE_PID"
    wait "$NODE_PID" || NODE_RC=$?
}
files() { (cd "$WORK/host" && find . | sort); }

node_start
F=$HOSTDIR/docker.io/hosts.toml
[ -f "$F" ] || fail "the node command wrote no docker.io/hosts.toml: $(cat "$NODE_OUT")"
head -n 1 "$F" | grep -q '^# Written by `pullcache config containerd`' || fail "hosts.toml has no mark line"
grep -qxF "[host.\"http://127.0.0.1:$PC_PORT\"]" "$F" || fail "hosts.toml does not name the cache: $(cat "$F")"
expect_eq "./etc/containerd/certs.d/docker.io/hosts.toml" \
    "$(cd "$WORK/host" && find . -type f -newer "$HOSTDIR/quay.io/hosts.toml" | sort)" "files the node command wrote"
before=$(files)
st=$(stat -c '%i %Y.%y' "$F")
# a pod killed without SIGTERM, then its successor: the same file, untouched
node_stop KILL
expect_eq 137 "$NODE_RC" "exit status of the killed node command"
node_start
grep -qxF "# unchanged $F (goes to /etc/containerd/certs.d/docker.io/hosts.toml)" "$NODE_OUT" ||
    fail "the second run does not leave hosts.toml as it was: $(cat "$NODE_OUT")"
expect_eq "$st" "$(stat -c '%i %Y.%y' "$F")" "inode and mtime of hosts.toml after the second run"
expect_eq "$before" "$(files)" "files after the second run"
echo "ok: the DaemonSet's command wrote docker.io/hosts.toml, a second run left it as it was"

# containerd pulls docker.io through the cache with those files
want=$(img_digest "$img" oci-single)
cfgd=$(jq -r .config.digest "$img/blobs/sha256/${want#sha256:}")
ref=docker.io/library/k8stest:v1
echo "+ ctr images pull --hosts-dir $HOSTDIR $ref" >>"$WORK/clients.log"
c images pull --hosts-dir "$HOSTDIR" --platform linux/amd64 "$ref" >>"$WORK/clients.log" 2>&1 ||
    fail "ctr images pull --hosts-dir $ref (see clients.log)"
expect_eq "$want" "$(c images ls "name==$ref" | awk -v r="$ref" '$1 == r { print $3 }')" "digest of $ref in containerd"
grep -qE "(HEAD|GET) /v2/library/k8stest/manifests/v1\?ns=docker\.io 200" "$WORK/pullcache.log" ||
    fail "no manifest request for the tag ?ns=docker.io at the cache (see pullcache.log)"
grep -qF "GET /v2/library/k8stest/manifests/$want?ns=docker.io 200" "$WORK/pullcache.log" ||
    fail "no manifest GET by digest ?ns=docker.io at the cache (see pullcache.log)"
grep -qE "GET /v2/library/k8stest/blobs/$cfgd\?ns=docker\.io 200" "$WORK/pullcache.log" ||
    fail "the config blob did not come through the cache (see pullcache.log)"
n=$(grep -cF "\"GET /v2/library/k8stest/blobs/$cfgd HTTP" "$WORK/dist.log" || true)
expect_eq 1 "$n" "upstream GETs of the config blob (the cache fetched it once)"
echo "ok: ctr images pull --hosts-dir went through the cache"

# uninstall: SIGTERM (the pod's deletion) removes exactly what it wrote
node_stop TERM
expect_eq 0 "$NODE_RC" "exit status of the node command on SIGTERM"
grep -qxF "# removed $F" "$NODE_OUT" || fail "the node command did not say it removed $F: $(cat "$NODE_OUT")"
expect_eq "$(printf '%s\n' "$before" | grep -v 'docker\.io')" "$(files)" "files after the uninstall"
expect_eq "$QUAY" "$(sha256sum "$HOSTDIR/quay.io/hosts.toml")" "the administrator's quay.io/hosts.toml"
ref2=docker.io/library/k8stest:v2
if c images pull --hosts-dir "$HOSTDIR" --platform linux/amd64 "$ref2" >>"$WORK/clients.log" 2>&1; then
    fail "ctr pulled $ref2 with no hosts.toml left (through what?)"
fi
grep -q 'k8stest/manifests/v2' "$WORK/pullcache.log" && fail "the cache got a request for $ref2 after the uninstall"
echo "ok: SIGTERM removed docker.io/hosts.toml and its directory only; pulls no longer go to the cache"

# --watch 1: a removed or edited file is written again (the DaemonSet checks every 60 s)
watch_cmd=()
for ((i = 0; i < ${#NODE_CMD[@]}; i++)); do
    watch_cmd+=("${NODE_CMD[i]}")
    if [ "${NODE_CMD[i]}" = --watch ]; then watch_cmd+=(1); i=$((i + 1)); fi
done
node_start "${watch_cmd[@]}"
want_content=$(cat "$F")
# wait_restored WHAT: until the file is ours again (bounded: 10 s)
wait_restored() {
    for _ in $(seq 100); do
        [ "$(cat "$F" 2>/dev/null)" = "$want_content" ] && return 0
        sleep 0.1
    done
    fail "$1: hosts.toml not written again: $(cat "$NODE_OUT")"
}
rm "$F"
wait_restored "removed"
echo '# edited' >>"$F"
wait_restored "edited"
grep -qxF "# restored $F" "$NODE_OUT" || fail "no '# restored' line: $(cat "$NODE_OUT")"
echo "ok: --watch writes a removed or edited hosts.toml again"

# a kill -9 leaves the file; --remove (the documented cleanup) removes ours only
node_stop KILL
expect_eq 137 "$NODE_RC" "exit status of the killed node command"
[ -f "$F" ] || fail "kill -9 removed hosts.toml"
"$PULLCACHE" config containerd --remove --output "$HOSTDIR" >"$WORK/remove.out" 2>"$WORK/remove.err" ||
    fail "config containerd --remove: $(cat "$WORK/remove.err")"
expect_eq "# removed $F" "$(cat "$WORK/remove.out")" "what --remove removed"
grep -qF "kept $HOSTDIR/quay.io/hosts.toml: not written by pullcache config" "$WORK/remove.err" ||
    fail "--remove does not say it kept quay.io: $(cat "$WORK/remove.err")"
expect_eq "$(printf '%s\n' "$before" | grep -v 'docker\.io')" "$(files)" "files after --remove"
expect_eq "$QUAY" "$(sha256sum "$HOSTDIR/quay.io/hosts.toml")" "quay.io/hosts.toml after --remove"
# nothing left of ours: still 0
"$PULLCACHE" config containerd --remove --output "$HOSTDIR" -u docker.io >"$WORK/remove2.out" 2>&1 ||
    fail "a second --remove failed: $(cat "$WORK/remove2.out")"
expect_eq "" "$(cat "$WORK/remove2.out")" "a second --remove"
echo "ok: --remove after a kill -9 removed ours only"

# usage errors
for args in "--remove" "--remove --output $WORK/x --watch 5" "--mirror http://127.0.0.1:1 --watch 5" \
    "--mirror http://127.0.0.1:1 --output $WORK/x --watch 0" "--mirror http://127.0.0.1:1 --output $WORK/x --remove-on-exit"; do
    rc=0
    # shellcheck disable=SC2086
    "$PULLCACHE" config containerd $args >/dev/null 2>&1 || rc=$?
    expect_eq 2 "$rc" "exit code of config containerd $args"
done
rc=0
"$PULLCACHE" config podman --remove --output "$WORK/x" >/dev/null 2>&1 || rc=$?
expect_eq 2 "$rc" "exit code of config podman --remove"
[ ! -e "$WORK/x" ] || fail "a refused command wrote $WORK/x"
echo "PASS: $TEST_NAME"
