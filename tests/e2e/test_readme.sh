#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_readme.sh - the README's commands work as written (issue 10), online
# and offline. They are extracted from README.md, never copied into this
# file, so the README cannot drift from what is tested:
#   - "## Quickstart": the ```sh block that starts `pullcache serve`, and the
#     ```sh block after "Try it:" (skopeo push of an OCI layout, curl of the
#     tag list, podman pull);
#   - "## Command line": every `pullcache copy SRC DST` example (the `$ `
#     lines of its fenced blocks, continuations joined, and the inline
#     `pullcache copy ...` spans of its prose) and the sync file (the ```yaml
#     block after "`pullcache sync FILE`").
# A block that is not found fails the test. Only mechanical rewrites, each
# explained where it is made. An example whose source or destination is a
# placeholder host (registry.corp.example, 10.0.0.5) has no stand-in here and
# is listed as not run; those naming docker.io, the test registry on
# 127.0.0.1:$DIST_PORT and the Quickstart's serve on 127.0.0.1:$PC_PORT run,
# and at least one copy from each of docker.io and 127.0.0.1:$DIST_PORT and
# one docker.io sync mapping must be among them.
# Everything runs twice, each time with a fresh working directory (./data),
# in the order serve, Try it, the sync file (twice), the copy examples (the
# sync first, so that it meets the destination a new user's would be):
#   offline - only loopback, no name resolves: serve with its defaults (the
#             docker.io upstream configured, unreachable) takes the private
#             push and serves it; copies and syncs from docker.io fail with
#             exit 3 and leave no tag;
#   online  - the Docker Hub stand-in (lib.sh's hub_standin_start:
#             docker-registry as registry-1.docker.io:443 with a test CA the
#             system bundle holds, in this test's mount namespace only) holds
#             the docker.io images: the same lines succeed, serve's default
#             upstream reaches it, and the private push sends nothing there
#             (its access log never names the private repository or digests).
# Checked: the pushed digest is the layout's, the tag list, podman's image ID
# (the config digest) and digest, each copy's digest at the destination and
# its output as the README shows it (digests, sizes and times masked), the
# sync file as written passes --check, the synced tags' digests (one
# platform: that platform's manifest), and a second sync copies nothing.
. "$(dirname "$0")/lib.sh"

README=$PC_SRC/README.md
PC=127.0.0.1:$PC_PORT
DIST=127.0.0.1:$DIST_PORT
clients_init
# The Command line examples call `pullcache` by name: the binary under test
# is the `pullcache` on PATH, so those lines run unchanged.
mkdir -p "$WORK/bin"
ln -s "$(realpath "$PULLCACHE")" "$WORK/bin/pullcache"
export PATH=$WORK/bin:$PATH

# ---- extraction ----------------------------------------------------------------

# readme_block SECTION MARKER INFO CONTAINS: the body of the first fenced block
# with info string INFO ("" for a bare ```) in the README's "## SECTION..."
# part, after its first line that starts with MARKER ("" = from the heading
# on), whose body contains CONTAINS. Fails the test when there is none.
readme_block() {
    local out
    out=$(awk -v sec="## $1" -v mark="$2" -v info="$3" -v has="$4" '
        /^```/ && !fence { fence = 1; cur = substr($0, 4); sub(/[ \t]+$/, "", cur); body = ""; next }
        /^```/ && fence {
            fence = 0
            if (insec && seen && cur == info && index(body, has) && !done) { printf "%s", body; done = 1 }
            next
        }
        fence { body = body $0 "\n"; next }
        /^## / { insec = index($0, sec) == 1; seen = insec && mark == ""; next }
        insec && mark != "" && index($0, mark) == 1 { seen = 1 }
        END { exit done ? 0 : 1 }' "$README") ||
        fail "README.md: no \`\`\`$3 block containing '$4' in '## $1' after '$2' (the README changed: make this test follow it)"
    printf '%s\n' "$out"
}

# readme_copy_examples: the `pullcache copy SRC DST` examples of "## Command
# line", one per line: CMD<TAB>EXPECTED, EXPECTED being the output the README
# shows under a `$ ` line (lines joined by \n; "" for inline spans). Backslash
# continuations are joined with one space.
readme_copy_examples() {
    awk '
        function flush() { if (cmd != "") print cmd "\t" outp; cmd = ""; outp = "" }
        /^```/ { fence = !fence; if (!fence) flush(); next }
        /^## / { insec = index($0, "## Command line") == 1; next }
        !insec { next }
        fence && cont { l = $0; sub(/^[ \t]+/, "", l); cmd = cmd " " l; cont = sub(/[ \t]*\\$/, "", cmd); next }
        fence && /^\$ pullcache copy / { flush(); cmd = substr($0, 3); cont = sub(/[ \t]*\\$/, "", cmd); next }
        fence && /^\$ / { flush(); next }
        fence && cmd != "" { outp = outp (outp == "" ? "" : "\\n") $0; next }
        fence { next }
        {
            s = $0
            while (match(s, /`[^`]+`/)) {
                span = substr(s, RSTART + 1, RLENGTH - 2)
                s = substr(s, RSTART + RLENGTH)
                if (span ~ /^pullcache copy ([^ ]+ )*[^ -][^ ]* [^ -][^ ]*$/) print span "\t"
            }
        }' "$README"
}

# ref_split REF: R_HOST (docker.io for Docker Hub names; an http:// or
# https:// prefix dropped), R_REPO (library/ added to a one-part Docker Hub
# name), R_TAG ("" when none).
ref_split() {
    local r=${1#http://} first rest last
    r=${r#https://}
    first=${r%%/*}
    if [ "$first" != "$r" ] && { [[ $first == *[.:]* ]] || [ "$first" = localhost ]; }; then
        R_HOST=$first rest=${r#*/}
    else
        R_HOST=docker.io rest=$r
    fi
    last=${rest##*/}
    R_TAG=""
    if [[ $last == *:* ]]; then R_TAG=${last##*:} rest=${rest%:*}; fi
    if [ "$R_HOST" = docker.io ] && [[ $rest != */* ]]; then rest=library/$rest; fi
    R_REPO=$rest
}

# The images: Try it's layout and the Docker Hub stand-in's images share a
# seed (shared base layers, as an image built FROM a Hub image has), the test
# registry's another (so no copy into the cache can mount a blob from an
# earlier one: the README's counts are for a fresh destination).
mkimages "$WORK/img-hub" readme-hub 1
mkimages "$WORK/img-dist" readme-dist
MKIMAGE_TAGS=" oci-single oci-index docker-single docker-list "

# ---- Quickstart: the serve line --------------------------------------------------
qs=$(readme_block Quickstart "" sh "pullcache serve")
[ "$(wc -l <<<"$qs")" = 1 ] || fail "README Quickstart: the serve block is not one line: $qs"
# Rewrites: "bash scripts/deps.sh && make && " is dropped: CI has installed the
# dependencies and built before running the tests (this test runs from
# `make test`); ./build/pullcache becomes $PULLCACHE, the binary under test
# (make's build/ or another build directory).
serve_line=${qs#"bash scripts/deps.sh && make && "}
[ "$serve_line" != "$qs" ] || fail "README Quickstart: expected 'bash scripts/deps.sh && make && ./build/pullcache serve', got: $qs"
[[ $serve_line == "./build/pullcache serve"* ]] || fail "README Quickstart: expected ./build/pullcache serve..., got: $serve_line"
printf -v q %q "$PULLCACHE"
serve_cmd=$q${serve_line#./build/pullcache}
[[ $serve_cmd != *[\;\&\|\<\>\`\$]* ]] || fail "README Quickstart: the serve line is more than one command: $serve_line"

# ---- Quickstart: Try it --------------------------------------------------------------
try_block=$(readme_block Quickstart "Try it:" sh "")
mapfile -t TRY < <(grep -v '^[[:space:]]*\(#\|$\)' <<<"$try_block")
try_push="" try_curl="" try_podman=""
for l in "${TRY[@]}"; do
    case $l in
    "skopeo copy "*) try_push=$l ;;
    "curl "*/tags/list*) try_curl=$l ;;
    "podman pull "*) try_podman=$l ;;
    esac
done
[ -n "$try_push" ] && [ -n "$try_curl" ] && [ -n "$try_podman" ] ||
    fail "README 'Try it:' block lacks a skopeo copy, a curl of a tag list or a podman pull: $(printf '%s; ' "${TRY[@]}")"
# The push names the layout it reads and the image it makes.
[[ $try_push =~ \ oci:([^:\ ]+):([^\ ]+)\ docker://([^/\ ]+)/([^:\ ]+):([^\ ]+)$ ]] ||
    fail "README 'Try it:' push is not 'skopeo copy ... oci:DIR:TAG docker://HOST/REPO:TAG': $try_push"
LAYOUT=${BASH_REMATCH[1]} LAYOUT_TAG=${BASH_REMATCH[2]}
PRIV_HOST=${BASH_REMATCH[3]} PRIV_REPO=${BASH_REMATCH[4]} PRIV_TAG=${BASH_REMATCH[5]}
expect_eq "$PC" "$PRIV_HOST" "README 'Try it:' push destination host (the Quickstart's serve)"
[[ $try_podman == *" $PC/$PRIV_REPO:$PRIV_TAG" ]] ||
    fail "README 'Try it:' podman pull is not of the pushed $PC/$PRIV_REPO:$PRIV_TAG: $try_podman"
[[ $try_curl == *"http://$PC/v2/$PRIV_REPO/tags/list"* ]] ||
    fail "README 'Try it:' curl is not of the pushed repository's tag list: $try_curl"
# The layout's image: one platform (the README's skopeo copy, without --all,
# would copy one image of an index, so its digest could not be the layout's).
PRIV_DIGEST=$(img_digest "$WORK/img-hub" oci-single)
PRIV_CONFIG=$(jq -er .config.digest "$WORK/img-hub/blobs/sha256/${PRIV_DIGEST#sha256:}")

# ---- Command line: copy examples and the sync file ---------------------------------------
copy_examples=$(readme_copy_examples) || fail "reading README.md"
mapfile -t COPIES <<<"$copy_examples"
[ -n "$copy_examples" ] || fail "README '## Command line': no \`pullcache copy SRC DST\` example found"
declare -A HUB_TAGS=() DIST_TAGS=()
RUN_COPIES=() SKIPPED=()
n_hub_copy=0 n_dist_copy=0
for e in "${COPIES[@]}"; do
    cmd=${e%%$'\t'*}
    read -ra w <<<"$cmd"
    ref_split "${w[-2]}"
    s_host=$R_HOST s_repo=$R_REPO s_tag=${R_TAG:-latest}
    ref_split "${w[-1]}"
    if [ "$R_HOST" != "$PC" ] || { [ "$s_host" != docker.io ] && [ "$s_host" != "$DIST" ]; }; then
        SKIPPED+=("$cmd")
        continue
    fi
    [[ $cmd != *[\;\&\|\<\>\`\$\'\"]* ]] || fail "README copy example with shell syntax this test does not parse: $cmd"
    if [ "$s_host" = docker.io ]; then
        HUB_TAGS[$s_repo:$s_tag]=1
        n_hub_copy=$((n_hub_copy + 1))
    else
        [[ $MKIMAGE_TAGS == *" $s_tag "* ]] ||
            fail "README copy example from $DIST with tag '$s_tag': not one of the test images'$MKIMAGE_TAGS"
        DIST_TAGS[$s_repo:$s_tag]=$s_tag
        n_dist_copy=$((n_dist_copy + 1))
    fi
    RUN_COPIES+=("$e")
done
[ "$n_hub_copy" -gt 0 ] || fail "README '## Command line': no copy example from docker.io into $PC"
[ "$n_dist_copy" -gt 0 ] || fail "README '## Command line': no copy example from $DIST into $PC"

readme_block "Command line" '`pullcache sync FILE`' yaml "mappings:" >"$WORK/readme-sync.yaml"
grep -qF -- '`--once`' <(sed -n '/^`pullcache sync FILE`/,/^```/p' "$README") ||
    fail "README: the \`pullcache sync FILE\` paragraph no longer names --once"
python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' \
    "$WORK/readme-sync.yaml" >"$WORK/readme-sync.json" || fail "README sync file: not YAML"
KEEP_MAPPINGS=()
n_hub_sync=0
for i in $(jq -r '.mappings | keys[]' "$WORK/readme-sync.json"); do
    ref_split "$(jq -r ".mappings[$i].source" "$WORK/readme-sync.json")"
    s_host=$R_HOST s_repo=$R_REPO
    ref_split "$(jq -r ".mappings[$i].destination" "$WORK/readme-sync.json")"
    if [ "$R_HOST" != "$PC" ] || [ "$s_host" != docker.io ]; then
        SKIPPED+=("sync mapping $(jq -c ".mappings[$i] | {source, destination}" "$WORK/readme-sync.json")")
        continue
    fi
    [ "$(jq ".mappings[$i].tags | length" "$WORK/readme-sync.json")" -gt 0 ] ||
        fail "README sync mapping $i without exact tags: this test seeds the stand-in with the tags a mapping lists"
    for t in $(jq -r ".mappings[$i].tags[]" "$WORK/readme-sync.json"); do HUB_TAGS[$s_repo:$t]=1; done
    KEEP_MAPPINGS+=("$i")
    n_hub_sync=$((n_hub_sync + 1))
done
[ "$n_hub_sync" -gt 0 ] || fail "README sync file: no mapping from docker.io into $PC"
# Rewrite: the mappings with placeholder hosts are cut out of the file (their
# lines, nothing else); the others stay byte for byte.
python3 - "$WORK/readme-sync.yaml" "$WORK/sync.yaml" "${KEEP_MAPPINGS[@]}" <<'PY' || fail "cutting the sync file"
import re, sys, yaml
src, dst, keep = sys.argv[1], sys.argv[2], {int(i) for i in sys.argv[3:]}
lines = open(src).read().splitlines(keepends=True)
start = next(i for i, l in enumerate(lines) if re.match(r"mappings:\s*(#.*)?$", l))
item = re.match(r"(\s*)- ", lines[start + 1]).group(1)
out, n, k = lines[: start + 1], -1, True
for l in lines[start + 1 :]:
    if l.startswith(item + "- "):
        n += 1
        k = n in keep
    elif l.strip() and not l.startswith(item + " ") and not l.lstrip().startswith("#"):
        n, k = None, True  # the list ended
    if k:
        out.append(l)
open(dst, "w").write("".join(out))
a, b = yaml.safe_load(open(src)), yaml.safe_load(open(dst))
want = dict(a, mappings=[m for i, m in enumerate(a["mappings"]) if i in keep])
if want != b:
    sys.exit(f"the cut file says {b}, want {want}")
PY
echo "README: serve: $serve_line"
printf 'README: Try it: %s\n' "${TRY[@]}"
printf 'README: copy: %s\n' "${RUN_COPIES[@]%%$'\t'*}"
echo "README: sync file: mappings ${KEEP_MAPPINGS[*]} of $(jq '.mappings | length' "$WORK/readme-sync.json")"
for s in "${SKIPPED[@]}"; do echo "README: not run (placeholder hosts, no stand-in here): $s"; done

# The sync file as written (placeholders included) is a valid one.
out=$(pullcache sync --check "$WORK/readme-sync.yaml" 2>&1) || fail "pullcache sync --check README's file: $out"

# The test registry on $DIST holds the sources of its copy examples.
dist_start "$WORK/dist"
for rt in "${!DIST_TAGS[@]}"; do dist_push "$WORK/img-dist" "${DIST_TAGS[$rt]}" "$rt"; done

# ---- running and checking ------------------------------------------------------------------

# run_line OUT LINE: run LINE in the working directory, stdout+stderr in OUT;
# return its exit status.
run_line() {
    local rc=0
    echo "\$ $2"
    echo "+ $2" >>"$WORK/clients.log"
    (cd "$CWD" && bash -c "$2") >"$1" 2>&1 || rc=$?
    cat "$1" >>"$WORK/clients.log"
    return "$rc"
}

# digest_at REPO REF: Docker-Content-Digest of a manifest HEAD at $PC ("" unless 200).
digest_at() {
    local h=$WORK/dg.h code
    code=$(curl -sS -I -H "Accept: $MANIFEST_ACCEPT" -D "$h" -o /dev/null -w '%{http_code}' \
        "http://$PC/v2/$1/manifests/$2") || true
    if [ "$code" = 200 ]; then reg_header "$h" Docker-Content-Digest; fi
}

# mask: digests, sizes and durations of copy output as "<...>".
mask() {
    sed -E 's/sha256:[0-9a-f]+(\.\.\.)?/sha256:<digest>/g
        s/[0-9]+(\.[0-9]+)? ?[kMG]?B in [0-9]+(\.[0-9]+)? s/<size> in <time> s/g
        s/\([0-9]+(\.[0-9]+)? s\)/(<time> s)/g'
}

# platform_child INDEX_DIGEST OS/ARCH[/VARIANT]: the digest of that platform's
# manifest in a test image index of img-hub.
platform_child() {
    local os arch variant
    IFS=/ read -r os arch variant <<<"$2"
    jq -er --arg o "$os" --arg a "$arch" --arg v "${variant:-}" \
        '[.manifests[] | select(.platform.os == $o and .platform.architecture == $a
            and (.platform.variant // "") == $v) | .digest] | if length == 1 then .[0] else error end' \
        "$WORK/img-hub/blobs/sha256/${1#sha256:}"
}

# readme_run MODE: everything, in a fresh working directory $WORK/MODE.
readme_run() {
    local mode=$1 e cmd want rc got dst_repo dst_tag i t src_repo s_host s_tag want_d plats run w
    CWD=$WORK/$mode
    mkdir -p "$CWD"
    echo "== $mode"

    # Quickstart: serve in the background (the README runs it in the foreground).
    echo "\$ $serve_line"
    (cd "$CWD" && exec bash -c "exec $serve_cmd") >>"$WORK/pullcache.log" 2>&1 &
    PC_PID=$!
    PIDS+=("$PC_PID")
    wait_http "http://$PC/v2/" "$PC_PID"
    [ -f "$CWD/data/meta.db" ] && [ -d "$CWD/data/blobs" ] ||
        fail "$mode: serve keeps no data in ./data (README: data in ./data)"

    # Try it. Its layout, made here in the working directory, holds the test image.
    sk copy -q --preserve-digests "oci:$WORK/img-hub:oci-single" "oci:$CWD/$LAYOUT:$LAYOUT_TAG" \
        >>"$WORK/clients.log" 2>&1 || fail "making the layout $LAYOUT:$LAYOUT_TAG"
    expect_eq "$PRIV_DIGEST" "$(jq -er --arg t "$LAYOUT_TAG" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
        "$CWD/$LAYOUT/index.json")" "digest of $LAYOUT:$LAYOUT_TAG"
    for l in "${TRY[@]}"; do
        rc=0
        run_line "$WORK/try.out" "$l" || rc=$?
        [ "$rc" = 0 ] || fail "$mode: README 'Try it:' line failed (exit $rc): $l: $(cat "$WORK/try.out")"
        case $l in
        "$try_curl")
            expect_eq "{\"name\":\"$PRIV_REPO\",\"tags\":[\"$PRIV_TAG\"]}" "$(jq -c . "$WORK/try.out")" \
                "$mode: the tag list curl prints"
            ;;
        "$try_podman")
            expect_eq "${PRIV_CONFIG#sha256:}" "$(tail -n 1 "$WORK/try.out")" "$mode: image ID podman pull prints"
            expect_eq "$PRIV_DIGEST" "$(pod image inspect --format '{{.Digest}}' "$PC/$PRIV_REPO:$PRIV_TAG")" \
                "$mode: digest of the image podman pulled"
            ;;
        esac
    done
    expect_eq "$PRIV_DIGEST" "$(digest_at "$PRIV_REPO" "$PRIV_TAG")" "$mode: digest of the pushed $PRIV_REPO:$PRIV_TAG"
    echo "ok: $mode: serve took the private push; tag list and podman pull as expected"

    if [ "$mode" = online ]; then
        # serve's default upstream is the stand-in (so the log below would show a leak) ...
        e=${!HUB_TAGS[*]}
        e=${e%% *}
        expect_eq "$(img_digest "$WORK/img-hub" oci-index)" "$(digest_at "docker.io/${e%:*}" "${e##*:}")" \
            "online: docker.io/$e through serve's default upstream"
        for _ in $(seq 100); do
            grep -qF "\"GET /v2/${e%:*}/manifests/${e##*:} HTTP" "$HUB_LOG" && break
            sleep 0.1
        done
        grep -F "\"GET /v2/${e%:*}/manifests/${e##*:} HTTP" "$HUB_LOG" | grep -qF '"pullcache/' ||
            fail "online: the stand-in's access log shows no GET of $e by pullcache"
        # ... and the private push sent it nothing: no name, no digest.
        for t in "$PRIV_REPO" "$PRIV_DIGEST" "$PRIV_CONFIG"; do
            ! grep -F "$t" "$HUB_LOG" || fail "online: the Docker Hub stand-in was asked about $t"
        done
        echo "ok: online: serve reaches the stand-in; the private push sent it nothing"
    fi

    # The sync file (before the copies, so that its first run finds the
    # destination as a new user's is). The README shows the file, not a
    # command line: `pullcache sync --once FILE` is the one run its text
    # describes ("once (`--once`)").
    cp "$WORK/sync.yaml" "$CWD/sync.yaml"
    for run in 1 2; do
        rc=0
        run_line "$WORK/sync.out" "pullcache sync --once sync.yaml" || rc=$?
        if [ "$mode" = offline ]; then
            expect_eq 3 "$rc" "offline: exit status of pullcache sync --once (docker.io unreachable)"
            break
        fi
        [ "$rc" = 0 ] || fail "online: pullcache sync --once (run $run) exit $rc: $(cat "$WORK/sync.out")"
        if [ "$run" = 2 ]; then
            grep -qF "nothing to copy" "$WORK/sync.out" ||
                fail "online: the second sync run does not say 'nothing to copy': $(cat "$WORK/sync.out")"
        fi
        for i in "${KEEP_MAPPINGS[@]}"; do
            ref_split "$(jq -r ".mappings[$i].source" "$WORK/readme-sync.json")"
            src_repo=$R_REPO
            ref_split "$(jq -r ".mappings[$i].destination" "$WORK/readme-sync.json")"
            plats=$(jq -r "[.mappings[$i].platforms // [] | .[]] | join(\" \")" "$WORK/readme-sync.json")
            for t in $(jq -r ".mappings[$i].tags[]" "$WORK/readme-sync.json"); do
                want_d=$(img_digest "$WORK/img-hub" oci-index)
                case $plats in
                "") ;;
                *" "*) want_d="" ;; # several platforms: a new index, its digest unknown here
                *) want_d=$(platform_child "$want_d" "$plats") ;;
                esac
                got=$(digest_at "$R_REPO" "$t")
                [ -n "$got" ] || fail "online: sync run $run: no $R_REPO:$t at $PC"
                [ -z "$want_d" ] || expect_eq "$want_d" "$got" \
                    "online: sync run $run: digest of $R_REPO:$t (from docker.io/$src_repo${plats:+, $plats})"
            done
        done
    done
    if [ "$mode" = offline ]; then
        for i in "${KEEP_MAPPINGS[@]}"; do
            ref_split "$(jq -r ".mappings[$i].destination" "$WORK/readme-sync.json")"
            for t in $(jq -r ".mappings[$i].tags[]" "$WORK/readme-sync.json"); do
                expect_eq "" "$(digest_at "$R_REPO" "$t")" "offline: $R_REPO:$t after a failed sync"
            done
        done
    fi
    echo "ok: $mode: the README's sync file"

    # The copy examples.
    for e in "${RUN_COPIES[@]}"; do
        cmd=${e%%$'\t'*} want=${e#*$'\t'}
        read -ra w <<<"$cmd"
        ref_split "${w[-2]}"
        s_host=$R_HOST src_repo=$R_REPO s_tag=${R_TAG:-latest}
        ref_split "${w[-1]}"
        dst_repo=$R_REPO dst_tag=${R_TAG:-$s_tag}
        rc=0
        run_line "$WORK/copy.out" "$cmd" || rc=$?
        if [ "$s_host" = docker.io ] && [ "$mode" = offline ]; then
            expect_eq 3 "$rc" "offline: exit status of '$cmd' (exit 3: registry or network error)"
            expect_eq "" "$(digest_at "$dst_repo" "$dst_tag")" "offline: $dst_repo:$dst_tag after a failed copy"
            continue
        fi
        [ "$rc" = 0 ] || fail "$mode: README copy example failed (exit $rc): $cmd: $(cat "$WORK/copy.out")"
        if [ "$s_host" = docker.io ]; then
            want_d=$(img_digest "$WORK/img-hub" oci-index)
        else
            want_d=$(img_digest "$WORK/img-dist" "${DIST_TAGS[$src_repo:$s_tag]}")
        fi
        [[ $cmd == *" --platform"* ]] || expect_eq "$want_d" "$(digest_at "$dst_repo" "$dst_tag")" \
            "$mode: digest of $PC/$dst_repo:$dst_tag after '$cmd'"
        if [ -n "$want" ]; then
            # What the README shows under the command, for the test images.
            expect_eq "$(printf '%b\n' "$want" | mask)" "$(mask <"$WORK/copy.out")" \
                "$mode: output of '$cmd' (masked)"
        fi
    done
    echo "ok: $mode: the README's copy examples"

    pc_stop
    pod rmi -a -f >>"$WORK/clients.log" 2>&1 || fail "podman rmi -a"
    expect_eq "" "$(pod images -q)" "podman images after rmi"
    # skopeo's blob-location cache (on lib.sh's tmpfs) would carry this
    # run's registry contents into the next one.
    rm -rf /var/lib/containers/cache
}

# ---- offline, then online ----------------------------------------------------------------------
readme_run offline

hub_standin_start "$WORK/hubdata"
for rt in "${!HUB_TAGS[@]}"; do hub_push "$WORK/img-hub" oci-index "$rt"; done
readme_run online

# and nothing, over the whole run, named the private image at the stand-in
for t in "$PRIV_REPO" "$PRIV_DIGEST" "$PRIV_CONFIG"; do
    ! grep -F "$t" "$HUB_LOG" || fail "the Docker Hub stand-in was asked about $t"
done
echo "ok: README quickstart, Try it, copy and sync examples work as written, offline and online"
