#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_pull_cli.sh - `pullcache pull IMAGE` against a real docker-registry
# (images pushed with skopeo from tests/tools/mkimage.sh) and the fake
# upstream's faults:
#   layouts     OCI and Docker, single manifest and two-platform index, into
#               --output DIR: every digest equals the source's, every blob file
#               hashes to its name, index.json names the pulled manifest with
#               the tag; skopeo inspects the OCI ones, umoci unpacks one
#   platforms   default = this machine's, --platform linux/arm64,
#               --all-platforms (the index and every child), an unknown
#               platform is exit 5 with what the index has
#   --discard   --json summary: bytes = config + layers, nothing written;
#               a second pull into the same layout skips every blob
#   faults      wrong bytes: exit 4, no file under the bad digest, no temp
#               file, no index.json; reset mid-blob: exit 3, the same;
#               429: exit 3 with TOOMANYREQUESTS (also in --json); 404
#   terminal    under a pseudo-terminal (util-linux script) the progress bar
#               is redrawn in place; without one stderr stays empty
#   usage       bad flags and arguments: exit 2
. "$(dirname "$0")/lib.sh"

command -v script >/dev/null || fail "script (util-linux) is not installed"
command -v umoci >/dev/null || fail "umoci is not installed"

clients_init
IMG=$WORK/img
mkimages "$IMG" pullcli 1
dist_start "$WORK/dist"
for t in oci-single oci-index docker-single docker-list; do
    dist_push "$IMG" "$t" "test/app:$t"
done
R=127.0.0.1:$DIST_PORT/test/app

# pull OUT [args...]: run `pullcache pull`, stdout in OUT, stderr in OUT.err;
# print the exit status.
pull() {
    local out=$1 rc=0
    shift
    "$PULLCACHE" pull "$@" >"$out" 2>"$out.err" </dev/null || rc=$?
    echo "$rc"
}
has() { grep -F -- "$2" "$1" >/dev/null || fail "$(basename "$1") lacks '$2': $(cat "$1")"; }
blob() { echo "$IMG/blobs/sha256/${1#sha256:}"; }
# child DIGEST ARCH: the digest of ARCH's manifest in the source index DIGEST.
child() { jq -r --arg a "$2" '.manifests[] | select(.platform.architecture == $a) | .digest' "$(blob "$1")"; }
# blobs_of MANIFEST_DIGEST: config and layer digests of a source manifest.
blobs_of() { jq -r '.config.digest, .layers[].digest' "$(blob "$1")"; }
size_of() { jq '[.config.size, .layers[].size] | add' "$(blob "$1")"; }

# check_layout DIR TAG NAMED...: DIR is an OCI layout whose index.json names
# NAMED[0] with ref.name TAG; every blob file hashes to its name and equals
# the source's bytes; every manifest in NAMED and everything it points at is
# there; no temporary file was left.
check_layout() {
    local dir=$1 tag=$2 named=$3 d f
    shift 2
    [ "$(cat "$dir/oci-layout")" = '{"imageLayoutVersion":"1.0.0"}' ] || fail "$dir/oci-layout"
    expect_eq "$named" "$(jq -r --arg t "$tag" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
        "$dir/index.json")" "index.json entry for $tag"
    for f in "$dir"/blobs/sha256/*; do
        expect_eq "$(basename "$f")" "$(sha256sum "$f" | cut -d' ' -f1)" "content of $f"
    done
    [ -z "$(find "$dir" -name '.*')" ] || fail "temporary files left in $dir: $(find "$dir" -name '.*')"
    for m in "$@"; do
        cmp "$(blob "$m")" "$dir/blobs/sha256/${m#sha256:}" || fail "manifest $m in $dir"
        if jq -e '.manifests' "$(blob "$m")" >/dev/null; then continue; fi
        for d in $(blobs_of "$m"); do
            cmp "$(blob "$d")" "$dir/blobs/sha256/${d#sha256:}" || fail "blob $d of $m in $dir"
        done
    done
}

HOST_ARCH=$(uname -m)
case $HOST_ARCH in x86_64) HOST_ARCH=amd64 ;; aarch64) HOST_ARCH=arm64 ;; esac

# ---- the four images, this machine's platform ---------------------------------
for t in oci-single docker-single oci-index docker-list; do
    top=$(img_digest "$IMG" "$t")
    want=$top
    case $t in *-index | *-list) want=$(child "$top" "$HOST_ARCH") ;; esac
    [ -n "$want" ] || { echo "no $HOST_ARCH image in $t; skipping it"; continue; }
    out=$WORK/out-$t
    rc=$(pull "$WORK/p-$t.json" --plain-http --json --output "$out" "$R:$t")
    expect_eq 0 "$rc" "pull $t exit status ($(cat "$WORK/p-$t.json.err"))"
    [ ! -s "$WORK/p-$t.json.err" ] || fail "pull $t wrote to stderr without a terminal: $(cat "$WORK/p-$t.json.err")"
    j=$WORK/p-$t.json
    expect_eq "$top" "$(jq -r .digest "$j")" "$t: top digest"
    expect_eq "$want" "$(jq -r .manifest "$j")" "$t: resolved manifest"
    expect_eq "$(img_mediatype "$IMG" "$t")" "$(jq -r .media_type "$j")" "$t: media type"
    expect_eq "[\"linux/$HOST_ARCH$([ "$HOST_ARCH" = arm64 ] && echo /v8)\"]" \
        "$(jq -c .platforms "$j")" "$t: platforms"
    expect_eq 5 "$(jq -r .blobs "$j")" "$t: blobs"
    expect_eq "$(size_of "$want")" "$(jq -r .bytes "$j")" "$t: bytes"
    expect_eq "$out" "$(jq -r .output "$j")" "$t: output"
    check_layout "$out" "$t" "$want"
    expect_eq 1 "$(jq '.manifests | length' "$out/index.json")" "$t: index.json entries"
done

# skopeo reads the OCI layouts (1.9 ignores Docker media types in index.json).
expect_eq "$(img_digest "$IMG" oci-single)" \
    "$(sk inspect "oci:$WORK/out-oci-single:oci-single" | jq -r .Digest)" "skopeo inspect oci-single"
expect_eq "$(child "$(img_digest "$IMG" oci-index)" "$HOST_ARCH")" \
    "$(sk inspect "oci:$WORK/out-oci-index:oci-index" | jq -r .Digest)" "skopeo inspect oci-index"
# umoci unpacks it: the layers apply, the whiteout removes /etc/remove-me.
umoci unpack --rootless --image "$WORK/out-oci-single:oci-single" "$WORK/bundle" \
    >>"$WORK/clients.log" 2>&1 || fail "umoci unpack (see clients.log)"
[ -x "$WORK/bundle/rootfs/pc-hello" ] || fail "umoci: /pc-hello missing"
[ -e "$WORK/bundle/rootfs/etc/pc-image" ] || fail "umoci: /etc/pc-image missing"
[ ! -e "$WORK/bundle/rootfs/etc/remove-me" ] || fail "umoci: the whiteout did not apply"

# ---- a second pull into the same layout skips what is there ---------------------
rc=$(pull "$WORK/again.json" --plain-http --json --output "$WORK/out-oci-single" "$R:oci-single")
expect_eq 0 "$rc" "second pull exit status ($(cat "$WORK/again.json.err"))"
expect_eq 0 "$(jq -r .blobs "$WORK/again.json")" "second pull: blobs fetched"
expect_eq 5 "$(jq -r .blobs_skipped "$WORK/again.json")" "second pull: blobs skipped"
expect_eq 0 "$(jq -r .bytes "$WORK/again.json")" "second pull: bytes"
# another tag into the same layout: both are named
rc=$(pull "$WORK/other.json" --plain-http --json --output "$WORK/out-oci-single" "$R:docker-single")
expect_eq 0 "$rc" "pull of a second image into a layout"
check_layout "$WORK/out-oci-single" docker-single "$(img_digest "$IMG" docker-single)"
check_layout "$WORK/out-oci-single" oci-single "$(img_digest "$IMG" oci-single)"
expect_eq 2 "$(jq '.manifests | length' "$WORK/out-oci-single/index.json")" "two images in one layout"

# ---- platforms -----------------------------------------------------------------
for t in oci-index docker-list; do
    top=$(img_digest "$IMG" "$t")
    arm=$(child "$top" arm64)
    rc=$(pull "$WORK/arm-$t.json" --plain-http --json --platform linux/arm64 --output "$WORK/arm-$t" "$R:$t")
    expect_eq 0 "$rc" "--platform linux/arm64 $t ($(cat "$WORK/arm-$t.json.err"))"
    expect_eq "$arm" "$(jq -r .manifest "$WORK/arm-$t.json")" "--platform linux/arm64 $t: manifest"
    expect_eq '["linux/arm64/v8"]' "$(jq -c .platforms "$WORK/arm-$t.json")" "$t arm64 platforms"
    check_layout "$WORK/arm-$t" "$t" "$arm"
    expect_eq linux/arm64/v8 "$(jq -r '.manifests[0].platform | "\(.os)/\(.architecture)/\(.variant)"' \
        "$WORK/arm-$t/index.json")" "$t: platform in index.json"

    rc=$(pull "$WORK/all-$t.json" --plain-http --json --all-platforms --output "$WORK/all-$t" "$R:$t")
    expect_eq 0 "$rc" "--all-platforms $t ($(cat "$WORK/all-$t.json.err"))"
    expect_eq "$top" "$(jq -r .manifest "$WORK/all-$t.json")" "--all-platforms $t: named manifest"
    expect_eq '["linux/amd64","linux/arm64/v8"]' "$(jq -c '.platforms | sort' "$WORK/all-$t.json")" \
        "--all-platforms $t: platforms"
    # shared layers are fetched once: 3 shared + 2 x (config + meta layer)
    expect_eq 7 "$(jq -r .blobs "$WORK/all-$t.json")" "--all-platforms $t: blobs"
    check_layout "$WORK/all-$t" "$t" "$top" "$(child "$top" amd64)" "$arm"
done
expect_eq "$(img_digest "$IMG" oci-index)" \
    "sha256:$(sk inspect --raw "oci:$WORK/all-oci-index:oci-index" | sha256sum | cut -d' ' -f1)" \
    "skopeo inspect --raw of the pulled index"

rc=$(pull "$WORK/s390x.json" --plain-http --platform linux/s390x --output "$WORK/s390x" "$R:oci-index")
expect_eq 5 "$rc" "unknown platform exit status"
has "$WORK/s390x.json.err" "no manifest for linux/s390x"
has "$WORK/s390x.json.err" "linux/arm64/v8"
[ ! -e "$WORK/s390x/index.json" ] || fail "a failed pull wrote index.json"
# A single-platform (amd64) image is no s390x image either: exit 5, not amd64.
rc=$(pull "$WORK/s390x-single.json" --plain-http --platform linux/s390x --output "$WORK/s390x-single" "$R:oci-single")
expect_eq 5 "$rc" "--platform linux/s390x of a single-platform image: exit status"
has "$WORK/s390x-single.json.err" "only, not linux/s390x"
[ ! -e "$WORK/s390x-single/index.json" ] || fail "a failed single-platform pull wrote index.json"
rc=$(pull "$WORK/amd64-single.json" --plain-http --platform linux/amd64 --discard "$R:oci-single")
expect_eq 0 "$rc" "--platform linux/amd64 of the amd64 single-platform image"

# ---- --discard, by digest --------------------------------------------------------
top=$(img_digest "$IMG" oci-index)
rc=$(pull "$WORK/discard.json" --plain-http --discard --json -j 2 "$R@$top")
expect_eq 0 "$rc" "--discard by digest ($(cat "$WORK/discard.json.err"))"
expect_eq null "$(jq -r .output "$WORK/discard.json")" "--discard: output"
expect_eq "$top" "$(jq -r .digest "$WORK/discard.json")" "--discard: digest"
expect_eq "$(size_of "$(child "$top" "$HOST_ARCH")")" "$(jq -r .bytes "$WORK/discard.json")" "--discard: bytes"
rc=$(pull "$WORK/human.txt" --plain-http --discard "$R:docker-single")
expect_eq 0 "$rc" "--discard without --json"
has "$WORK/human.txt" "verified and discarded"
has "$WORK/human.txt" "$(img_digest "$IMG" docker-single)"
# An index: the summary leads with the index digest (what one pins), then the child taken.
rc=$(pull "$WORK/human-index.txt" --plain-http --discard "$R:oci-index")
expect_eq 0 "$rc" "--discard of an index without --json"
has "$WORK/human-index.txt" "$R:oci-index: $top (index; linux/$HOST_ARCH $(child "$top" "$HOST_ARCH"))"

# ---- registry errors --------------------------------------------------------------
rc=$(pull "$WORK/404.json" --plain-http --json --discard "$R:nope")
expect_eq 3 "$rc" "unknown tag exit status"
has "$WORK/404.json.err" "404 MANIFEST_UNKNOWN"
expect_eq MANIFEST_UNKNOWN "$(jq -r .error.code "$WORK/404.json")" "404 --json code"
rc=$(pull "$WORK/refused.json" --plain-http --discard "127.0.0.1:5999/test/app:x")
expect_eq 3 "$rc" "refused connection exit status"
has "$WORK/refused.json.err" "refused"

# ---- faults from the fake upstream ---------------------------------------------
FP=5002
F=127.0.0.1:$FP/library/test
fake_start pass "$FP" "" "" --repo "library/test=$IMG"
single=$(img_digest "$IMG" oci-single)
big=$(jq -r '.layers[1].digest' "$(blob "$single")")
# check_failed DIR: no blob under the big layer's digest, no temp file, no name.
check_failed() {
    [ ! -e "$1/blobs/sha256/${big#sha256:}" ] || fail "$1: the bad blob was stored under its digest"
    [ -z "$(find "$1" -name '.*')" ] || fail "$1: temporary files left: $(find "$1" -name '.*')"
    [ ! -e "$1/index.json" ] || fail "$1: a failed pull wrote index.json"
    for f in "$1"/blobs/sha256/*; do
        [ -e "$f" ] || continue
        expect_eq "$(basename "$f")" "$(sha256sum "$f" | cut -d' ' -f1)" "content of $f"
    done
}

fake_scenario "$FP" wrong_bytes_blob
rc=$(pull "$WORK/wrong.json" --plain-http --output "$WORK/wrong" "$F:oci-single")
expect_eq 4 "$rc" "wrong bytes exit status"
has "$WORK/wrong.json.err" "blob $big: digest mismatch"
has "$WORK/wrong.json.err" "nothing unverified was stored"
check_failed "$WORK/wrong"

fake_scenario "$FP" reset_mid_blob
rc=$(pull "$WORK/reset.json" --plain-http --json --output "$WORK/reset" "$F:oci-single")
expect_eq 3 "$rc" "reset mid-blob exit status"
has "$WORK/reset.json.err" "blob $big: reset"
expect_eq network "$(jq -r .error.kind "$WORK/reset.json")" "reset: error kind"
check_failed "$WORK/reset"
# the fake's next GET of that blob is normal: the same command now succeeds
rc=$(pull "$WORK/reset2.json" --plain-http --json --output "$WORK/reset" "$F:oci-single")
expect_eq 0 "$rc" "pull after the reset ($(cat "$WORK/reset2.json.err"))"
check_layout "$WORK/reset" oci-single "$single"

fake_scenario "$FP" dockerhub_429
rc=$(pull "$WORK/429.json" --plain-http --json --discard "$F:oci-single")
expect_eq 3 "$rc" "429 exit status"
has "$WORK/429.json.err" "429 TOOMANYREQUESTS: You have reached your pull rate limit"
expect_eq TOOMANYREQUESTS "$(jq -r .error.code "$WORK/429.json")" "429 --json code"
expect_eq 429 "$(jq -r .error.status "$WORK/429.json")" "429 --json status"
expect_eq 0 "$(jq -r .ratelimit.remaining "$WORK/429.json")" "429 --json ratelimit remaining"
expect_eq 100 "$(jq -r .ratelimit.limit "$WORK/429.json")" "429 --json ratelimit limit"
fake_scenario "$FP" pass

# ---- progress on a terminal ------------------------------------------------------
TERM=xterm script -qfec "$PULLCACHE pull --plain-http --discard $R:oci-single" /dev/null \
    >"$WORK/tty.out" 2>&1 </dev/null || fail "pull under script failed: $(cat "$WORK/tty.out")"
draws=$(tr -cd '\r' <"$WORK/tty.out" | wc -c)
# script turns each \n into \r\n: the summary line and the bar's last newline
# add two; the bar itself is drawn at least twice (plan and done).
[ "$draws" -ge 4 ] || fail "progress bar not redrawn in place ($draws CRs): $(cat -v "$WORK/tty.out")"
grep -F $'\033[K' "$WORK/tty.out" >/dev/null || fail "no ESC[K in the progress output: $(cat -v "$WORK/tty.out")"
grep -F "100% " "$WORK/tty.out" >/dev/null || fail "the bar never reached 100%: $(cat -v "$WORK/tty.out")"
grep -F "5/5 blobs" "$WORK/tty.out" >/dev/null || fail "the bar lacks the blob count: $(cat -v "$WORK/tty.out")"

# ---- usage ------------------------------------------------------------------------
usage() { # MESSAGE-PART ARGS...
    local want=$1
    shift
    rc=$(pull "$WORK/usage.out" "$@")
    expect_eq 2 "$rc" "exit status of pull $*"
    has "$WORK/usage.out.err" "$want"
}
usage "--output DIR or --discard" --plain-http "$R:oci-single"
usage "--output DIR or --discard" --discard --output "$WORK/x" "$R:oci-single"
usage "which IMAGE" --discard
usage "one IMAGE at a time" --discard "$R:a" "$R:b"
usage "--concurrency wants a whole number" --discard -j 0 "$R:oci-single"
usage "is not a platform" --discard --platform linux "$R:oci-single"
usage "exclude each other" --discard --platform linux/amd64 --all-platforms "$R:oci-single"
usage "not an image reference" --discard "UPPER/Case:tag"
usage "--help" --discard --bogus "$R:oci-single"
"$PULLCACHE" pull --help | grep -F -- "--all-platforms" >/dev/null || fail "pull --help lacks --all-platforms"
"$PULLCACHE" help | grep -E "^  pull " >/dev/null || fail "help does not list pull"

# an output path that is a non-empty directory but not a layout is refused
mkdir -p "$WORK/notalayout" && echo x >"$WORK/notalayout/file"
rc=$(pull "$WORK/notlayout.out" --plain-http --output "$WORK/notalayout" --discard "$R:oci-single")
expect_eq 2 "$rc" "--output and --discard together"
rc=$(pull "$WORK/notlayout.out" --plain-http --output "$WORK/notalayout" "$R:oci-single")
expect_eq 1 "$rc" "non-layout output directory exit status"
has "$WORK/notlayout.out.err" "not an OCI image layout"
echo "ok"
