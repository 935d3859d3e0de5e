#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_help_docs.sh - pullcache(1) and the bash completion the build
# generates (build/pullcache.1, build/pullcache.bash, from `pullcache help
# --man` / `--completion bash`) say what the binary's help says, so they
# cannot drift from it:
#   - both files are what the binary under test prints now (not stale);
#   - the man page renders without a warning (groff -ww, man --warnings);
#   - every verb `pullcache --help` lists has its section in the rendered
#     page, and every --flag its --help names (grep -o '--[a-z][a-z0-9-]*',
#     as test_readme_help.sh reads them) is in that section;
#   - the completion, sourced in bash, is registered for pullcache, offers
#     every verb for `pullcache <TAB>`, every such flag for `pullcache VERB
#     --<TAB>`, and completes `pullcache se<TAB>` to serve, `pullcache serve
#     --li<TAB>` to --listen, `pullcache config con<TAB>` to containerd;
#     nothing for an unknown flag prefix.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PULLCACHE=${PULLCACHE:-$SRC/build/pullcache}
BUILD=${PC_BUILD:-$(dirname "$PULLCACHE")}
MAN=$BUILD/pullcache.1
COMP=$BUILD/pullcache.bash
WORK=$(mktemp -d /tmp/pc-e2e.help_docs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
bad=0
failf() { echo "FAIL: $*" >&2; bad=1; }

[ -s "$MAN" ] || { echo "FAIL: $MAN missing (the build generates it)" >&2; exit 1; }
[ -s "$COMP" ] || { echo "FAIL: $COMP missing (the build generates it)" >&2; exit 1; }
"$PULLCACHE" help --man >"$WORK/man.now"
"$PULLCACHE" help --completion bash >"$WORK/comp.now"
cmp -s "$MAN" "$WORK/man.now" || failf "$MAN differs from \`pullcache help --man\` (stale build?)"
cmp -s "$COMP" "$WORK/comp.now" || failf "$COMP differs from \`pullcache help --completion bash\`"

# ---- rendering ----------------------------------------------------------------
groff -man -ww -z -Tutf8 "$MAN" 2>"$WORK/groff.err" || failf "groff exit $?"
[ ! -s "$WORK/groff.err" ] || failf "groff -ww warns: $(head -5 "$WORK/groff.err")"
for loc in C C.UTF-8; do
    LC_ALL=$loc MANWIDTH=80 man --warnings -l "$MAN" 2>"$WORK/man.err" | col -bx >"$WORK/man.$loc.txt" ||
        failf "man -l ($loc) failed"
    [ ! -s "$WORK/man.err" ] || failf "man --warnings -l ($loc) warns: $(head -5 "$WORK/man.err")"
done
TXT=$WORK/man.C.UTF-8.txt
grep -q '^NAME' "$TXT" && grep -q '^VERBS' "$TXT" || failf "rendered page lacks NAME or VERBS"

# section VERB: the rendered "pullcache VERB" subsection of VERBS
section() {
    awk -v h="   pullcache $1" '
        /^[A-Z]/ { if (f) exit; next }
        $0 == h { f = 1; next }
        f && /^   pullcache [a-z]+$/ { exit }
        f' "$TXT"
}

# ---- completion ------------------------------------------------------------------
# complete WORD...: what the completion offers for the command line
# "pullcache WORD..." (the cursor on the last word), one per line, sorted.
complete_line() {
    bash --norc --noprofile -c '
        set -u
        . "$1"; shift
        COMP_WORDS=(pullcache "$@")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="${COMP_WORDS[*]}" COMP_POINT=${#COMP_LINE}
        _pullcache pullcache "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@" | sed '/^$/d' | sort
}
reg=$(bash --norc --noprofile -c '. "$1"; complete -p pullcache' _ "$COMP") ||
    failf "sourcing the completion registers nothing for pullcache"
[[ $reg == *"-F _pullcache"*" pullcache" ]] || failf "complete -p pullcache: $reg"

verbs=$("$PULLCACHE" --help | awk '/^verbs:/ { f = 1; next } f && /^  [a-z]/ { print $1 }')
[ "$(wc -w <<<"$verbs")" -gt 10 ] || failf "pullcache --help lists only: $verbs"
offered=$(complete_line "")
nflags=0
for v in $verbs; do
    grep -qx "$v" <<<"$offered" || failf "completion of 'pullcache <TAB>' lacks $v"
    sec=$(section "$v")
    [ -n "$sec" ] || { failf "man page has no section 'pullcache $v'"; continue; }
    summary=$("$PULLCACHE" --help | awk -v v="$v" '$1 == v { $1 = ""; sub(/^ /, ""); print; exit }')
    grep -qF -- "$summary" <<<"$(tr -s " \n" " " <<<"$sec" | tr -s " ")" || failf "man section $v lacks its summary: $summary"
    vflags=$(complete_line "$v" --)
    for fl in $("$PULLCACHE" "$v" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
        nflags=$((nflags + 1))
        grep -qE -- "(^|[^a-z0-9-])$fl([^a-z0-9-]|\$)" <<<"$sec" || failf "man section $v lacks $fl"
        grep -qx -- "$fl" <<<"$vflags" || failf "completion of 'pullcache $v --<TAB>' lacks $fl"
    done
done
[ "$nflags" -gt 100 ] || failf "only $nflags flags seen"

expect() { # WANT WORD...: the completion of "pullcache WORD..." is WANT (lines)
    local want=$1 got
    shift
    got=$(complete_line "$@")
    [ "$got" = "$want" ] || failf "completion of 'pullcache $*<TAB>': want '$want', got '$(tr '\n' ' ' <<<"$got")'"
}
expect serve se
expect --listen serve --lis
expect "$(printf '%s\n' --limit-anonymous --limit-authenticated --listen)" serve --li
expect containerd config con
expect "$(printf '%s\n' --help --version)" --
expect "" serve --no-such-fl
echo "completion: 'pullcache se' -> $(complete_line se); 'pullcache serve --li' -> $(complete_line serve --li | tr '\n' ' ')"

[ "$bad" -eq 0 ] || exit 1
echo "PASS: test_help_docs ($(wc -w <<<"$verbs") verbs, $nflags flags in man page and completion)"
