#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_routing.sh - a node always gets the image it asked for (issue 10).
# Debian's docker-registry stands in for Docker Hub (upstream docker.io: the
# only option passed, since the real one is out of reach) and a second one for
# ghcr.io, which pullcache does not mirror. Invariants, each checked:
#   - a reference for registry X is answered from X's mirror or refused: ?ns=
#     or a host-like first component naming an unconfigured registry is 404
#     NAME_UNKNOWN, never local content or another upstream's, and containerd
#     then falls back to the registry itself;
#   - with the defaults, bare names are the private registry: pushes with
#     skopeo work whatever the upstream holds, and no private name or digest
#     is sent upstream (the upstream request counter does not move);
#   - a failed push creates nothing (no catalog entry, no tag list);
#   - no push can shadow a mirrored name: writes under docker.io/ are 403, and
#     with Docker's registry-mirrors mode (--default-upstream docker.io) bare
#     names are the upstream's, read-only, except under --local-prefix; with
#     and without users.
. "$(dirname "$0")/lib.sh"

clients_init
PCR=127.0.0.1:$PC_PORT
GHCR_PORT=5002
for s in base demo local ghcr; do mkimages "$WORK/img-$s" "route-$s" 1; done
dist_start "$WORK/dist"
HUB_PID=$DIST_PID
dist_push "$WORK/img-base" docker-single library/base:cached
dist_push "$WORK/img-demo" docker-single library/demo:1
dist_push "$WORK/img-demo" oci-single big/img2:1
# The ghcr.io stand-in holds its own team/app:1.0.
DIST_PORT=$GHCR_PORT dist_start "$WORK/ghcr"
DIST_PORT=$GHCR_PORT dist_push "$WORK/img-ghcr" oci-single team/app:1.0
DIST_PID=$HUB_PID

pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$DIST_PORT"
grep -q "info made a new data directory $WORK/data" "$WORK/pullcache.log" || fail "serve did not say it made $WORK/data"
upstream_requests() { pc_metric pullcache_upstream_requests_total 'upstream="docker.io"'; }

# expect_refused METHOD PATH STATUS CODE [WORD]: one request, its status, error code
# and a word its message must contain.
expect_refused() {
    local r m=(-X "$1")
    [ "$1" = HEAD ] && m=(-I)
    r=$(http_get "http://$PCR$2" "$WORK/e" "${m[@]}" -H "Accept: $MANIFEST_ACCEPT")
    expect_eq "$3" "${r%% *}" "$1 $2: status"
    expect_eq "$4" "$(err_code "$WORK/e")" "$1 $2: error code"
    if [ -n "${5:-}" ]; then
        grep -qF "$5" "$WORK/e" || fail "$1 $2: message does not name $5: $(cat "$WORK/e")"
    fi
}
catalog() { curl -sS "http://$PCR/v2/_catalog" | jq -c .repositories; }

# ---- defaults: private pushes, nothing sent upstream --------------------------------
echo "== defaults: bare names are private"
# The base image's blobs in the cache, through the mirror (so the store has them).
sk copy -q --src-tls-verify=false "docker://$PCR/docker.io/library/base:cached" "dir:$WORK/pulled" \
    >>"$WORK/clients.log" 2>&1 || fail "skopeo copy through the mirror (see clients.log)"
before=$(upstream_requests)
# Pushing images whose blobs the cache has, the upstream has, or nobody has.
push_image "$WORK/img-base" docker-single e2e/from-cache:v1
push_image "$WORK/img-demo" docker-single library/demo:mine
push_image "$WORK/img-local" oci-index team/app:1.0
# podman push and pullcache copy too (blobs the upstream holds: the HEAD must not
# be answered from there, or the client skips the upload and the manifest fails).
pod pull -q --tls-verify=false "$PCR/library/demo:mine" >>"$WORK/clients.log" 2>&1 || fail "podman pull $PCR/library/demo:mine"
pod push -q --tls-verify=false "$PCR/library/demo:mine" "docker://$PCR/e2e/podman:1" >>"$WORK/clients.log" 2>&1 ||
    fail "podman push into a default pullcache (see clients.log)"
"$PULLCACHE" copy --plain-http "127.0.0.1:$DIST_PORT/library/demo:1" "$PCR/e2e/copied:1" >>"$WORK/clients.log" 2>&1 ||
    fail "pullcache copy into a default pullcache (see clients.log)"
expect_eq "$(img_digest "$WORK/img-demo" docker-single)" "$(reg_digest e2e/copied 1)" "e2e/copied:1 (pullcache copy)"
expect_eq "$before" "$(upstream_requests)" "upstream requests while pushing private images"
expect_eq "$(img_digest "$WORK/img-demo" docker-single)" "$(reg_digest library/demo mine)" "bare library/demo:mine is the pushed image"
expect_eq "$(img_digest "$WORK/img-local" oci-index)" "$(reg_digest team/app 1.0)" "team/app:1.0 is the pushed image"
# The mirror still serves the upstream's library/demo:1, untouched by the push.
expect_eq "$(img_digest "$WORK/img-demo" docker-single)" "$(reg_digest docker.io/library/demo 1)" "docker.io/library/demo:1"
# Bare names never reach the upstream: the upstream's big/img2 is not here.
before=$(upstream_requests)
expect_refused GET /v2/big/img2/manifests/1 404 MANIFEST_UNKNOWN
expect_refused HEAD /v2/library/demo/blobs/"$(img_digest "$WORK/img-demo" oci-single)" 404 ""
expect_eq "$before" "$(upstream_requests)" "upstream requests for bare reads"
echo "ok: pushes of cached, upstream-held and new content; nothing asked upstream"

# ---- never the wrong registry's image ---------------------------------------------------
echo "== foreign registries are refused"
for p in "/v2/team/app/manifests/1.0?ns=ghcr.io" "/v2/big/img2/manifests/1?ns=quay.io" \
    "/v2/library/demo/manifests/1?ns=quay.io" "/v2/ghcr.io/team/app/manifests/1.0" \
    "/v2/quay.io/big/img2/manifests/1" "/v2/localhost/team/app/manifests/1.0" \
    "/v2/team/app/tags/list?ns=ghcr.io" "/v2/ghcr.io/team/app/tags/list"; do
    reg=$(sed -E 's/.*ns=//; t; s|^/v2/([^/]*)/.*|\1|' <<<"$p")
    expect_refused GET "$p" 404 NAME_UNKNOWN "$reg"
    expect_refused HEAD "$p" 404 ""
done
expect_refused POST /v2/ghcr.io/team/app/blobs/uploads/ 404 NAME_UNKNOWN ghcr.io
expect_refused POST "/v2/team/app/blobs/uploads/?ns=quay.io" 404 NAME_UNKNOWN quay.io
if sk copy -q --dest-tls-verify=false "$(img_src "$WORK/img-local" oci-single)" \
    "docker://$PCR/quay.io/team/app:1" >>"$WORK/clients.log" 2>&1; then
    fail "a push to quay.io/team/app succeeded on a pullcache that does not mirror quay.io"
fi
# ns= of a configured upstream is that upstream's, never local: team/app is private
# here, docker.io/team/app does not exist upstream.
expect_refused GET "/v2/team/app/manifests/1.0?ns=docker.io" 404 MANIFEST_UNKNOWN
expect_eq "$(img_digest "$WORK/img-demo" oci-single)" "$(reg_digest "big/img2" "1?ns=docker.io")" "big/img2:1 with ns=docker.io"

# containerd: hosts.toml mirrors for docker.io and ghcr.io (which pullcache does
# not have; the ghcr.io stand-in is its server). ghcr.io/team/app:1.0 must be
# ghcr.io's image, not the private team/app:1.0.
ctd_start
HOSTS=$WORK/certs.d
mkdir -p "$HOSTS/ghcr.io" "$HOSTS/docker.io"
cat >"$HOSTS/ghcr.io/hosts.toml" <<TOML
server = "http://127.0.0.1:$GHCR_PORT"
[host."http://$PCR"]
  capabilities = ["pull", "resolve"]
TOML
cat >"$HOSTS/docker.io/hosts.toml" <<TOML
server = "https://registry-1.docker.io"
[host."http://$PCR"]
  capabilities = ["pull", "resolve"]
TOML
c images pull --hosts-dir "$HOSTS" --platform linux/amd64 ghcr.io/team/app:1.0 >>"$WORK/clients.log" 2>&1 ||
    fail "ctr images pull ghcr.io/team/app:1.0 (see clients.log)"
got=$(c images ls "name==ghcr.io/team/app:1.0" | awk 'NR > 1 { print $3 }')
expect_eq "$(img_digest "$WORK/img-ghcr" oci-single)" "$got" "ctr pull ghcr.io/team/app:1.0: ghcr.io's image"
grep -q 'HEAD /v2/team/app/manifests/1.0?ns=ghcr.io 404' "$WORK/pullcache.log" ||
    fail "containerd did not ask the mirror first (no 404 for its HEAD?ns=ghcr.io in the log)"
# The log shows the query (so ns= routing can be seen), never a secret in it.
curl -s -o /dev/null "http://$PCR/v2/?password=hunter2&x=1"
grep -q 'GET /v2/?password=REDACTED&x=1 200' "$WORK/pullcache.log" || fail "query string not logged (redacted)"
grep -q hunter2 "$WORK/pullcache.log" && fail "a password from a query string is in the log"
c images pull --hosts-dir "$HOSTS" docker.io/big/img2:1 >>"$WORK/clients.log" 2>&1 ||
    fail "ctr images pull docker.io/big/img2:1 (see clients.log)"
got=$(c images ls "name==docker.io/big/img2:1" | awk 'NR > 1 { print $3 }')
expect_eq "$(img_digest "$WORK/img-demo" oci-single)" "$got" "ctr pull docker.io/big/img2:1 through the mirror"
echo "ok: ns= and host prefixes of unmirrored registries are 404; ctr falls back and gets the right image"

# ---- mirrored names are read-only; failed pushes leave nothing ---------------------------
echo "== writes to mirrors refused, failed pushes create nothing"
expect_refused POST /v2/docker.io/library/demo/blobs/uploads/ 403 DENIED docker.io
expect_refused PUT /v2/docker.io/library/demo/manifests/1 403 DENIED docker.io
expect_refused DELETE "/v2/docker.io/library/demo/manifests/$(img_digest "$WORK/img-demo" docker-single)" 403 DENIED
expect_refused POST "/v2/library/demo/blobs/uploads/?ns=docker.io" 403 DENIED docker.io
cat_before=$(catalog)
# A blob, then a manifest that names a blob nobody uploaded.
printf 'config' >"$WORK/cfg.json"
cfg=$(reg_push_blob e2e/broken "$WORK/cfg.json")
missing=sha256:$(printf 'missing' | sha256sum | cut -d' ' -f1)
cat >"$WORK/bad-manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$cfg","size":6},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$missing","size":7}]}
JSON
r=$(http_get "http://$PCR/v2/e2e/broken/manifests/1" "$WORK/e" -X PUT \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$WORK/bad-manifest.json")
expect_eq 400 "${r%% *}" "PUT of a manifest with a missing blob"
expect_eq MANIFEST_BLOB_UNKNOWN "$(err_code "$WORK/e")" "PUT of a manifest with a missing blob: code"
expect_eq "$cat_before" "$(catalog)" "catalog after a failed push"
expect_refused GET /v2/e2e/broken/tags/list 404 NAME_UNKNOWN
expect_eq '["e2e/copied","e2e/from-cache","e2e/podman","library/demo","team/app"]' "$(catalog | jq -c 'map(select(startswith("docker.io/") | not))')" "private repositories in the catalog"
echo "ok: 403 DENIED for writes to mirrored names; a failed push leaves no repository"

# ---- Docker's registry-mirrors mode -----------------------------------------------------
# About the option: bare names are docker.io's (what dockerd's registry-mirrors
# sends), read-only, except under --local-prefix.
echo "== --default-upstream docker.io --local-prefix team"
pc_needs_persistent "the pushes so far to survive a restart"
pc_stop
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$DIST_PORT" --default-upstream docker.io --local-prefix team
expect_eq "$(img_digest "$WORK/img-demo" docker-single)" "$(reg_digest library/demo 1)" "bare library/demo:1 from the upstream"
expect_eq "$(img_digest "$WORK/img-demo" docker-single)" "$(reg_digest demo 1)" "bare demo:1 (library/ added)"
expect_eq "$(img_digest "$WORK/img-demo" oci-single)" "$(reg_digest big/img2 1)" "bare big/img2:1 from the upstream"
# The earlier private push of library/demo:mine does not shadow the mirror; serve
# says at start that it hides it (and e2e/from-cache).
expect_refused GET /v2/library/demo/manifests/mine 404 MANIFEST_UNKNOWN
grep -q 'warn default_upstream docker.io hides 4 stored private repositories outside cache.local_prefixes (e.g. e2e/copied)' "$WORK/pullcache.log" ||
    fail "serve did not warn about the private repositories its default upstream hides"
if sk copy -q --dest-tls-verify=false "$(img_src "$WORK/img-local" oci-single)" \
    "docker://$PCR/library/demo:1" >>"$WORK/clients.log" 2>&1; then
    fail "a push to the mirrored bare name library/demo:1 succeeded"
fi
expect_refused POST /v2/library/demo/blobs/uploads/ 403 DENIED local_prefixes
expect_eq "$(img_digest "$WORK/img-demo" docker-single)" "$(reg_digest library/demo 1)" "bare library/demo:1 after the refused push"
# Under the local prefix: private, pushable, never sent upstream.
before=$(upstream_requests)
expect_eq "$(img_digest "$WORK/img-local" oci-index)" "$(reg_digest team/app 1.0)" "team/app:1.0 (local prefix)"
push_image "$WORK/img-local" docker-single team/tool:2
expect_eq "$(img_digest "$WORK/img-local" docker-single)" "$(reg_digest team/tool 2)" "team/tool:2 pushed under the local prefix"
expect_eq "$before" "$(upstream_requests)" "upstream requests for local-prefix pushes and pulls"
echo "ok: bare names from docker.io, read-only; team/ private"

# ---- the same with users ------------------------------------------------------------------
echo "== with --htpasswd"
pc_stop
htpasswd -cbB "$WORK/htpasswd" alice secret 2>/dev/null
pc_start "$WORK/data" --upstream "docker.io=http://127.0.0.1:$DIST_PORT" --default-upstream docker.io \
    --local-prefix team --htpasswd "$WORK/htpasswd"
expect_eq 200 "$(reg_status HEAD /v2/library/demo/manifests/1 -H "Accept: $MANIFEST_ACCEPT")" "anonymous bare pull of library/demo:1"
if sk copy -q --dest-tls-verify=false --dest-creds alice:secret "$(img_src "$WORK/img-local" oci-single)" \
    "docker://$PCR/library/demo:1" >>"$WORK/clients.log" 2>&1; then
    fail "alice's push to the mirrored bare name library/demo:1 succeeded"
fi
expect_eq 200 "$(reg_status HEAD /v2/library/demo/manifests/1 -H "Accept: $MANIFEST_ACCEPT")" "anonymous bare pull of library/demo:1 after alice's refused push"
sk copy -q --dest-tls-verify=false --dest-creds alice:secret "$(img_src "$WORK/img-local" oci-single)" \
    "docker://$PCR/team/alice:1" >>"$WORK/clients.log" 2>&1 || fail "alice's push to team/alice:1 (see clients.log)"
r=$(curl -sS -u alice:secret "http://$PCR/v2/_catalog" | jq -c '.repositories | map(select(startswith("docker.io/") | not))')
expect_eq '["e2e/copied","e2e/from-cache","e2e/podman","library/demo","team/alice","team/app","team/tool"]' "$r" "catalog with users (nothing from the refused push)"
echo "ok: with users too"
echo "PASS: $TEST_NAME"
