#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_readme_install.sh - the README's "## Install" commands for the
# container image and Kubernetes work as written. They are extracted from
# README.md (the ```sh blocks under "### Container image" and "### Kubernetes"),
# never copied here; a block that is missing or a line this test does not
# know fails it. Only mechanical rewrites, each explained where it is made.
#   Container image, run in a fresh directory with the Quickstart's serve
#   (`pullcache serve`, defaults: 127.0.0.1:5000, ./data) running:
#     make image        -> the Makefile's recipe for it (checked to be that),
#                          with the binary under test and build/ here
#     ./build/pullcache -> the binary under test
#     podman            -> the test's podman (storage in $WORK) with runc
#                          (this host's crun refuses its hybrid cgroups)
#     curl              -> repeated until the container answers (podman run
#                          -d returns before serve listens), then checked
#   The image's tag in the README is `pullcache --version`; the pushed
#   image's config says user 65532:65532; the container's /readyz is ready.
#   Kubernetes (no cluster here): `kubectl create namespace NS` recorded;
#   each `kubectl apply|delete -n NS -k DIR` must name that namespace and a
#   directory that `kubectl kustomize` renders and tests/tools/k8s_check.py
#   accepts (as e2e.kubernetes checks it).
. "$(dirname "$0")/lib.sh"

README=$PC_SRC/README.md
VERSION=$("$PULLCACHE" --version | awk '{ print $2 }')
KUBECTL=${KUBECTL:-kubectl}
clients_init

# install_block SUBSECTION N: the body of the N-th ```sh block under
# "### SUBSECTION" of "## Install" (fails the test when there is none).
install_block() {
    local out
    out=$(awk -v sub_="### $1" -v want="$2" '
        /^## / { insec = $0 == "## Install"; insub = 0; next }
        insec && /^### / { insub = $0 == sub_; next }
        /^```/ && !fence { fence = 1; take = insub && $0 == "```sh" && ++n == want; next }
        /^```/ && fence { fence = 0; if (take) { done = 1 }; take = 0; next }
        fence && take { print }
        END { exit done ? 0 : 1 }' "$README") ||
        fail "README.md: no ${2}. \`\`\`sh block under '### $1' of '## Install' (the README changed: make this test follow it)"
    printf '%s\n' "$out"
}

# ---- Container image ------------------------------------------------------------------
mapfile -t LINES < <(install_block "Container image" 1 | grep -v '^[[:space:]]*\(#\|$\)')
recipe=$(awk '/^image:/ { f = 1; next } f && /^\t/ { sub(/^\t/, ""); print; next } f { exit }' "$PC_SRC/Makefile")
expect_eq 'bash scripts/mkimage-oci.sh $(BUILD)/pullcache $(BUILD)/image' "$recipe" "the Makefile's image recipe"
mkdir -p "$WORK/readme"
cd "$WORK/readme" || fail "cd $WORK/readme"
"$PULLCACHE" serve >>"$WORK/pullcache.log" 2>&1 &
PC_PID=$!
PIDS+=("$PC_PID")
wait_http "http://127.0.0.1:5000/v2/" "$PC_PID"
ran=0 podman_name=""
trap '_rc=$?; [ -z "$podman_name" ] || pod rm -f "$podman_name" >/dev/null 2>&1; (exit $_rc); _pc_cleanup' EXIT
for l in "${LINES[@]}"; do
    echo "+ $l" >>"$WORK/clients.log"
    read -ra w <<<"$l"
    [[ $l != *[\;\&\|\<\>\`\$\'\"]* ]] || fail "README image line with shell syntax this test does not parse: $l"
    case $l in
    "make image")
        bash "$PC_SRC/scripts/mkimage-oci.sh" "$PULLCACHE" build/image >>"$WORK/clients.log" 2>&1 ||
            fail "make image (see clients.log)"
        ;;
    "./build/pullcache copy "*)
        [[ $l == *" oci:build/image:$VERSION "* ]] || fail "README copies oci:build/image with another tag than $VERSION: $l"
        "$PULLCACHE" "${w[@]:1}" >>"$WORK/clients.log" 2>&1 || fail "$l (see clients.log)"
        ;;
    "skopeo inspect "*)
        "${w[@]}" >"$WORK/inspect.json" 2>>"$WORK/clients.log" || fail "$l (see clients.log)"
        expect_eq "65532:65532" "$(jq -r .config.User "$WORK/inspect.json")" "user of the pushed image"
        ;;
    "podman run "*)
        for ((i = 2; i < ${#w[@]}; i++)); do [ "${w[i]}" != --name ] || podman_name=${w[i + 1]}; done
        [ -n "$podman_name" ] || fail "README podman run has no --name (the test removes the container by it): $l"
        pod --runtime runc "${w[@]:1}" >>"$WORK/clients.log" 2>&1 || fail "$l (see clients.log)"
        ;;
    "curl "*/readyz)
        out=""
        for _ in $(seq 100); do
            out=$("${w[@]}" 2>/dev/null) && [ -n "$out" ] && break
            sleep 0.1
        done
        expect_eq true "$(jq -r .ready <<<"$out")" "the container's /readyz ($l)"
        ;;
    *) fail "README Container image line this test does not know: $l" ;;
    esac
    ran=$((ran + 1))
done
expect_eq 5 "$ran" "Container image lines run"
[ -n "$podman_name" ] || fail "README: no podman run of the image"
pod rm -f "$podman_name" >>"$WORK/clients.log" 2>&1 || fail "podman rm -f $podman_name"
podman_name=""
echo "ok: Container image: $ran lines"

# ---- Kubernetes -------------------------------------------------------------------------
if ! command -v "$KUBECTL" >/dev/null; then
    echo "SKIP: $TEST_NAME: the Kubernetes lines need $KUBECTL (scripts/deps.sh --test)"
    exit 77
fi
IMAGE=$(python3 -c '
import sys, yaml
k = yaml.safe_load(open(sys.argv[1]))
i = [i for i in k["images"] if i["name"] == "pullcache"][0]
print(i["newName"] + ":" + str(i["newTag"]))' "$PC_SRC/deploy/kubernetes/base/kustomization.yaml")
ns="" ran=0 applied=""
for n in 1 2; do
    mapfile -t LINES < <(install_block Kubernetes "$n" | grep -v '^[[:space:]]*\(#\|$\)')
    for l in "${LINES[@]}"; do
        read -ra w <<<"$l"
        case "${w[*]:0:3}" in
        "kubectl create namespace")
            [ ${#w[@]} = 4 ] || fail "README: $l"
            ns=${w[3]}
            ;;
        "kubectl apply -n" | "kubectl delete -n")
            [ ${#w[@]} = 6 ] && [ "${w[4]}" = -k ] || fail "README kubectl line not 'kubectl apply|delete -n NS -k DIR': $l"
            [ -n "$ns" ] && [ "${w[3]}" = "$ns" ] || fail "README: $l uses namespace ${w[3]}, not the one created ('$ns')"
            dir=${w[5]}
            case $dir in
            deploy/kubernetes/base) kind=base ;;
            deploy/kubernetes/overlays/scale-out) kind=scale-out ;;
            deploy/kubernetes/node) kind=node ;;
            *) fail "README: $l: not a directory of deploy/kubernetes this test checks" ;;
            esac
            out=$WORK/k8s-$ran
            mkdir -p "$out"
            "$KUBECTL" kustomize "$PC_SRC/$dir" >"$out.yaml" 2>"$out.log" || fail "$KUBECTL kustomize $dir: $(cat "$out.log")"
            python3 "$PC_SRC/tests/tools/k8s_check.py" "$kind" "$out.yaml" "$IMAGE" "$out" >"$out.check" 2>&1 ||
                fail "README: $l: $(cat "$out.check")"
            applied+=" ${w[1]}:$kind"
            ;;
        *) fail "README Kubernetes line this test does not know: $l" ;;
        esac
        ran=$((ran + 1))
    done
done
expect_eq " apply:base apply:node delete:node" "$applied" "what the README's kubectl lines apply and delete"
echo "ok: Kubernetes: $ran lines (no cluster here: each -k directory rendered and checked)"
echo "PASS: $TEST_NAME"
