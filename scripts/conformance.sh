#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# conformance.sh - run the OCI distribution-spec v1.1.x conformance suite
# against a freshly started `pullcache serve`, offline, in a private network
# namespace (only loopback up). See docs/CONFORMANCE.md.
#
#   bash scripts/conformance.sh [DSPEC]
#
# DSPEC (or $DSPEC_DIR): a distribution-spec checkout (a tree with
# conformance/) or a bare git directory of it, from which $DSPEC_REF (default
# v1.1.1) is exported. The suite is a Go test package; it is built with
# Debian's Go (golang-go) in module mode with GOPROXY=off: every module is
# replaced by a directory, Debian's golang-*-dev sources under
# /usr/share/gocode/src where Debian has them, and three that Debian 12 lacks
# (or has too old), each a source tree or a bare git directory:
#   $CONF_GINKGO  github.com/onsi/ginkgo/v2   tag v2.11.0  (default $DSPEC_DEPS/ginkgo)
#   $CONF_GOMEGA  github.com/onsi/gomega      tag v1.27.8  (default $DSPEC_DEPS/gomega)
#   $CONF_REGGIE  github.com/bloodorangeio/reggie tag v0.6.1 (default $DSPEC_DEPS/reggie)
# Modules that are only in the module graph, never compiled, get empty stubs.
#
# Other environment:
#   PULLCACHE     the binary (default build/pullcache of this repo)
#   CONF_WORK     work dir: build copy, stubs, data, report (default: a new /tmp dir)
#   CONF_PORT     port inside the namespace (default 5000)
#   CONF_INSTALL=1  apt-get install the Debian packages that are missing
#   CONF_GINKGO_ARGS  extra args for the suite binary (e.g. -ginkgo.v)
#
# Exit status: 0 when every spec that ran passed, or "skipped" (no suite tree,
# no Go, or a missing dependency: CI cannot fetch them); 1 when specs failed;
# 2 when the build or the server could not start. The last line is
# "conformance: N passed, N failed, N skipped" or "conformance: skipped: ...".
set -euo pipefail
umask 022
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PULLCACHE=${PULLCACHE:-$REPO/build/pullcache}
DSPEC=${1:-${DSPEC_DIR:-}}
DSPEC_REF=${DSPEC_REF:-v1.1.1}
DSPEC_DEPS=${DSPEC_DEPS:-}
CONF_GINKGO=${CONF_GINKGO:-${DSPEC_DEPS:+$DSPEC_DEPS/ginkgo}}
CONF_GOMEGA=${CONF_GOMEGA:-${DSPEC_DEPS:+$DSPEC_DEPS/gomega}}
CONF_REGGIE=${CONF_REGGIE:-${DSPEC_DEPS:+$DSPEC_DEPS/reggie}}
CONF_PORT=${CONF_PORT:-5000}
GOSRC=/usr/share/gocode/src

# Debian 12 packages: the Go toolchain and the library sources the suite's
# compiled packages come from.
DEB_PKGS=(golang-go golang-github-go-resty-resty-dev golang-github-opencontainers-go-digest-dev
          golang-github-google-uuid-dev golang-github-mitchellh-mapstructure-dev
          golang-github-asaskevich-govalidator-dev golang-github-go-logr-logr-dev
          golang-github-google-go-cmp-dev golang-gopkg-yaml.v3-dev golang-golang-x-net-dev
          golang-golang-x-sys-dev golang-golang-x-text-dev)
# module path => directory under $GOSRC
DEB_MODS=(github.com/google/uuid=github.com/google/uuid
          github.com/opencontainers/go-digest=github.com/opencontainers/go-digest
          github.com/go-resty/resty/v2=github.com/go-resty/resty
          github.com/mitchellh/mapstructure=github.com/mitchellh/mapstructure
          github.com/go-logr/logr=github.com/go-logr/logr
          github.com/google/go-cmp=github.com/google/go-cmp
          gopkg.in/yaml.v3=gopkg.in/yaml.v3
          golang.org/x/net=golang.org/x/net
          golang.org/x/sys=golang.org/x/sys
          golang.org/x/text=golang.org/x/text)
# in the module graph (go.mod files of ginkgo, gomega, x/net) but not compiled
STUB_MODS=(golang.org/x/tools golang.org/x/term golang.org/x/mod github.com/golang/protobuf
           google.golang.org/protobuf github.com/go-task/slim-sprig github.com/google/pprof
           gopkg.in/check.v1)

skip() {
    echo "conformance: skipped: $*"
    exit 0
}
die() {
    echo "conformance: error: $*" >&2
    exit 2
}
is_bare_git() { [ -f "$1/HEAD" ] && [ -d "$1/objects" ]; }

# ---- what is there (checked before anything is built or started) ----------
if [ -z "${PC_CONF_IN_NETNS:-}" ]; then
    [ -n "$DSPEC" ] || skip "no distribution-spec tree (pass its path or set DSPEC_DIR)"
    [ -d "$DSPEC" ] || skip "no distribution-spec tree at $DSPEC"
    if ! is_bare_git "$DSPEC" && [ ! -f "$DSPEC/conformance/00_conformance_suite_test.go" ]; then
        skip "$DSPEC has no conformance/ suite"
    fi
    if [ "${CONF_INSTALL:-0}" = 1 ]; then
        missing=()
        for p in "${DEB_PKGS[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            echo "conformance: installing ${missing[*]}" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                "${missing[@]}" >/tmp/pullcache-conformance-apt.log 2>&1 ||
                die "apt-get install failed, see /tmp/pullcache-conformance-apt.log"
        fi
    fi
    command -v go >/dev/null || skip "no Go toolchain (apt-get install ${DEB_PKGS[*]})"
    for m in "${DEB_MODS[@]}" github.com/asaskevich/govalidator=github.com/asaskevich/govalidator; do
        [ -d "$GOSRC/${m#*=}" ] || skip "no $GOSRC/${m#*=} (apt-get install ${DEB_PKGS[*]})"
    done
    for v in CONF_GINKGO CONF_GOMEGA CONF_REGGIE; do
        d=${!v}
        if [ -z "$d" ] || [ ! -d "$d" ]; then
            skip "$v (or DSPEC_DEPS) does not name a source tree or bare git dir"
        fi
    done
    [ -x "$PULLCACHE" ] || die "no pullcache binary at $PULLCACHE (build it, or set PULLCACHE)"
    command -v curl >/dev/null || die "curl is needed"
    unshare --net --fork true 2>/dev/null || die "cannot make a network namespace (unshare --net; run as root)"
    export PC_CONF_IN_NETNS=1 PULLCACHE DSPEC DSPEC_REF CONF_GINKGO CONF_GOMEGA CONF_REGGIE
    # shellcheck disable=SC2016 # $0 and $@ expand in the inner shell
    exec unshare --net --fork --kill-child=TERM bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi

# ---- inside the namespace ---------------------------------------------------
WORK=${CONF_WORK:-$(mktemp -d /tmp/pullcache-conformance.XXXXXX)}
mkdir -p "$WORK"
SPID=""
cleanup() {
    if [ -n "$SPID" ]; then
        kill "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# tree DEST SRC REF: SRC as a plain source tree in DEST (git archive of REF
# when SRC is a bare git dir).
tree() {
    rm -rf "$1"
    mkdir -p "$1"
    if is_bare_git "$2"; then
        git --git-dir="$2" archive "$3" | tar -x -C "$1" || die "git archive $3 from $2 failed"
    else
        cp -a "$2/." "$1/"
    fi
}

echo "conformance: preparing the suite ($DSPEC, $DSPEC_REF) in $WORK" >&2
tree "$WORK/dspec" "$DSPEC" "$DSPEC_REF"
[ -f "$WORK/dspec/conformance/00_conformance_suite_test.go" ] || die "$DSPEC_REF has no conformance/ suite"
DEPS=$WORK/deps
tree "$DEPS/ginkgo" "$CONF_GINKGO" v2.11.0
tree "$DEPS/gomega" "$CONF_GOMEGA" v1.27.8
tree "$DEPS/reggie" "$CONF_REGGIE" v0.6.1
# Debian's govalidator (2018) has no go.mod; a replacement directory needs one.
tree "$DEPS/govalidator" "$GOSRC/github.com/asaskevich/govalidator" -
[ -f "$DEPS/govalidator/go.mod" ] ||
    printf 'module github.com/asaskevich/govalidator\n\ngo 1.13\n' >"$DEPS/govalidator/go.mod"

stub() {
    local d=$DEPS/stubs/${1//\//_}
    mkdir -p "$d"
    printf 'module %s\n\ngo 1.18\n' "$1" >"$d/go.mod"
    echo "$d"
}

B=$WORK/build
rm -rf "$B"
cp -a "$WORK/dspec/conformance" "$B"
rm -f "$B/go.sum"
{
    echo "module github.com/opencontainers/distribution-spec/conformance"
    echo
    echo "go 1.19"
    echo
    echo "require ("
    echo "	github.com/bloodorangeio/reggie v0.6.1"
    echo "	github.com/google/uuid v1.3.0"
    echo "	github.com/onsi/ginkgo/v2 v2.11.0"
    echo "	github.com/onsi/gomega v1.27.8"
    echo "	github.com/opencontainers/go-digest v1.0.0"
    echo ")"
    echo
    echo "replace ("
    echo "	github.com/bloodorangeio/reggie => $DEPS/reggie"
    echo "	github.com/onsi/ginkgo/v2 => $DEPS/ginkgo"
    echo "	github.com/onsi/gomega => $DEPS/gomega"
    echo "	github.com/asaskevich/govalidator => $DEPS/govalidator"
    for m in "${DEB_MODS[@]}"; do echo "	${m%%=*} => $GOSRC/${m#*=}"; done
    for m in "${STUB_MODS[@]}"; do echo "	$m => $(stub "$m")"; done
    echo ")"
} >"$B/go.mod"

export GOPROXY=off GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local GOWORK=off GOPATH=$WORK/gopath
# Go's own build cache ($HOME/.cache/go-build) unless there is no HOME
[ -n "${GOCACHE:-}" ] || [ -n "${HOME:-}" ] || export GOCACHE=$WORK/gocache
SUITE=$WORK/conformance.test
echo "conformance: building with $(go version)" >&2
for _ in $(seq 1 20); do
    if (cd "$B" && go test -c -o "$SUITE" .) >"$WORK/build.log" 2>&1; then
        break
    fi
    # A module another Debian release pulls into the graph: stub it and retry.
    m=$(grep -oE '[A-Za-z0-9./_~-]+@v[^:]*: module lookup disabled' "$WORK/build.log" | head -1 | sed 's/@.*//')
    [ -n "$m" ] || { cat "$WORK/build.log" >&2; die "building the suite failed (log: $WORK/build.log)"; }
    echo "conformance: stubbing $m (in the module graph only)" >&2
    (cd "$B" && go mod edit -replace="$m=$(stub "$m")")
done
[ -x "$SUITE" ] || { cat "$WORK/build.log" >&2; die "building the suite failed"; }

# ---- server -----------------------------------------------------------------
rm -rf "$WORK/data"
mkdir -p "$WORK/data" "$WORK/report"
"$PULLCACHE" serve --listen "127.0.0.1:$CONF_PORT" --data "$WORK/data" --default-upstream none \
    >"$WORK/pullcache.log" 2>&1 &
SPID=$!
up=0
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$CONF_PORT/v2/" 2>/dev/null; then
        up=1
        break
    fi
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
[ "$up" = 1 ] || { cat "$WORK/pullcache.log" >&2; die "pullcache did not come up"; }

# ---- suite ------------------------------------------------------------------
# Every workflow on. pullcache mounts a blob it has in any repository when
# from= is missing, hence OCI_AUTOMATIC_CROSSMOUNT=1.
export OCI_ROOT_URL=http://127.0.0.1:$CONF_PORT
export OCI_NAMESPACE=${OCI_NAMESPACE:-myorg/myrepo}
export OCI_CROSSMOUNT_NAMESPACE=${OCI_CROSSMOUNT_NAMESPACE:-myorg/other}
export OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
export OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_AUTOMATIC_CROSSMOUNT=${OCI_AUTOMATIC_CROSSMOUNT:-1}
export OCI_DELETE_MANIFEST_BEFORE_BLOBS=${OCI_DELETE_MANIFEST_BEFORE_BLOBS:-1}
export OCI_DEBUG=${OCI_DEBUG:-0} OCI_REPORT_DIR=$WORK/report
ver=$("$PULLCACHE" --version 2>/dev/null | head -1 || true)
src=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "conformance: distribution-spec $DSPEC_REF against $PULLCACHE (${ver:-pullcache}; scripts from $src)" >&2
rc=0
# shellcheck disable=SC2086 # (pipefail: rc is the suite's status)
(cd "$WORK/report" && "$SUITE" -ginkgo.no-color ${CONF_GINKGO_ARGS:-}) 2>&1 | tee "$WORK/suite.log" ||
    rc=$?

line=$(grep -E '(SUCCESS|FAIL)! -- [0-9]+ Passed' "$WORK/suite.log" | tail -1 || true)
echo "conformance: report $WORK/report/report.html, junit $WORK/report/junit.xml, log $WORK/suite.log" >&2
if [ -z "$line" ]; then
    tail -20 "$WORK/pullcache.log" >&2
    echo "conformance: the suite printed no summary (exit $rc)"
    exit 1
fi
p=$(sed -E 's/.* ([0-9]+) Passed.*/\1/' <<<"$line")
f=$(sed -E 's/.* ([0-9]+) Failed.*/\1/' <<<"$line")
s=$(sed -E 's/.* ([0-9]+) Skipped.*/\1/' <<<"$line")
echo "conformance: $p passed, $f failed, $s skipped"
[ "$f" = 0 ] && [ "$rc" = 0 ]
