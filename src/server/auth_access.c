/*
 * auth_access.c - access control at the HTTP edge (issue #5): whether the
 * access policy (or a token's scopes) lets the one who asks do what the
 * request does, and the 401 / 403 / 429 answer when not.
 *
 * Permission is decided on the routed target, which server.c decided once
 * for the request (req->route): a read that the mirror serves from an
 * upstream is checked as "<upstream>/<repo>" (mirrored), whatever
 * spelling (bare path, ?ns=) led there; writes are checked on the name as
 * requested (mirrored when it is in a mirror's namespace: then read-only).
 * Our own tokens are an upper bound: a request needs both the token's
 * access for the requested name and the current policy.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "auth_int.h"

#include <strings.h>

#include <openssl/crypto.h>

#include <string.h>

/* The token's actions on repository name. */
static unsigned token_access(const pc_authn_identity *id, const char *name)
{
    for (size_t i = 0; i < id->claims.access_count; i++) {
        const pc_auth_scope *sc = &id->claims.access[i];
        if (sc->type == PC_AUTH_REPOSITORY && strcmp(sc->name, name) == 0)
            return sc->actions & PC_AUTH_ALL ? PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE
                                             : sc->actions;
    }
    return 0;
}

static bool token_catalog(const pc_authn_identity *id)
{
    for (size_t i = 0; i < id->claims.access_count; i++)
        if (id->claims.access[i].type == PC_AUTH_REGISTRY &&
            strcmp(id->claims.access[i].name, "catalog") == 0 &&
            (id->claims.access[i].actions & PC_AUTH_ALL))
            return true;
    return false;
}

/* Where repository name routes without ns= (names other than the
 * request's: a mount's from=, the catalog's, a token's scopes). */
static int route_name(pc_server *srv, const char *name, pc_mirror_target *t)
{
    if (!srv->mirror)
        return PC_ENOTFOUND;
    return pc_mirror_route(srv->mirror, name, NULL, t);
}

/* What the policy grants user on name, decided on its routed target (rc,
 * t: pc_mirror_route's answer; reads that the mirror serves:
 * "<upstream>/<repo>", mirrored). */
static unsigned policy_grant(const pc_policy *p, const char *user, const char *name, int rc,
                             const pc_mirror_target *t)
{
    unsigned g = 0, w = 0;
    if (!pc_ref_name_valid(name))
        return 0;
    if (rc != 0 && rc != PC_ENOTFOUND)
        return 0;  /* an invalid name, or a registry that is not mirrored */
    if (rc == 0) { /* reads come from the upstream */
        if (pc_policy_access(p, user, t->local, true, &g))
            g = 0;
        g &= PC_AUTH_PULL;
    }
    /* writes go to the name as requested (read-only where it is a mirror's) */
    if (pc_policy_access(p, user, name, rc == 0, &w))
        w = 0;
    if (rc != 0)
        g = w & PC_AUTH_PULL;
    return g | (w & (PC_AUTH_PUSH | PC_AUTH_DELETE));
}

/* The request's own routing (server.c decided it once): reads by name
 * with ns=, writes by the name alone. */
static int req_target(const pc_req *req, unsigned need, const pc_mirror_target **t)
{
    if (need != PC_AUTH_PULL && req->route_ns) {
        *t = &req->route_bare;
        return req->route_bare_rc;
    }
    *t = &req->route;
    return req->route_rc;
}

/* The actions the requester holds on name, routed as rc, t; moved: ns=
 * moved the read elsewhere. */
static unsigned granted_on(pc_req *req, const pc_authn_snap *s, const pc_authn_identity *id,
                           const char *name, int rc, const pc_mirror_target *t, bool moved)
{
    const char *user = req->user[0] ? req->user : NULL;
    if (id->external) { /* the external issuer decides; mirrors stay read-only */
        unsigned g = token_access(id, name);
        if (rc != PC_ENOTFOUND)
            g &= PC_AUTH_PULL;
        if (moved && rc == 0 && strcmp(t->local, name) != 0)
            g &= token_access(id, t->local) | ~(unsigned)PC_AUTH_PULL; /* ns= moves the read */
        return g;
    }
    unsigned g = policy_grant(s->policy, user, name, rc, t);
    if (id->scheme == PC_AUTH_BEARER)
        g &= token_access(id, name);
    return g;
}

unsigned pc_authn_needed(pc_req *req)
{
    switch (req->kind) {
    case PC_ROUTE_UPLOAD:
    case PC_ROUTE_UPLOAD_START:
        return PC_AUTH_PUSH;
    case PC_ROUTE_MANIFEST:
    case PC_ROUTE_BLOB:
        if (strcmp(req->method, "DELETE") == 0)
            return PC_AUTH_DELETE;
        if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
            return PC_AUTH_PULL;
        return PC_AUTH_PUSH;
    default:
        return PC_AUTH_PULL;
    }
}

static int deny(pc_req *req, const pc_authn_identity *id, bool token_short)
{
    /* no credentials, or a token that lacks the scope: authenticate (again) */
    if (id->scheme == PC_AUTH_NONE || token_short) {
        if (token_short)
            req->auth_error = "insufficient_scope";
        return pc_req_fail(req, PC_EAUTH);
    }
    pc_error_set("requested access to the resource is denied");
    return pc_req_fail(req, PC_EDENIED);
}

/* Another replica of this deployment reading a blob (mirror_fetch.c's
 * peer stream): "Authorization: Bearer <cluster secret>" on a blob GET or
 * HEAD, compared in constant time. Logged as user "replica". */
static bool from_replica(pc_req *req)
{
    const pc_config *cfg = req->srv->cfg;
    const char *secret = cfg->cluster ? cfg->cluster->secret : NULL;
    if (!secret || req->kind != PC_ROUTE_BLOB ||
        (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))
        return false;
    const char *h = pc_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    size_t n = strlen(secret);
    if (strlen(h) != n || CRYPTO_memcmp(h, secret, n) != 0)
        return false;
    snprintf(req->user, sizeof(req->user), "replica");
    return true;
}

bool pc_req_authorize(pc_req *req, int *mhd)
{
    struct pc_authn *a = req->srv->authn;
    if (!a || req->kind == PC_ROUTE_TOKEN)
        return true;
    if (from_replica(req))
        return true;
    pc_authn_snap s;
    pc_authn_identity id;
    pc_authn_snap_take(a, &s);
    pc_authn_identify(req, a, &s, &id);
    bool go = false;
    const char *user = req->user[0] ? req->user : NULL;
    if (id.throttled) {
        *mhd = pc_authn_throttled(req, id.retry);
        goto done;
    }
    if (!id.ok) {
        *mhd = pc_req_fail(req, PC_EAUTH);
        goto done;
    }
    switch (req->kind) {
    case PC_ROUTE_BASE:
        go = id.scheme != PC_AUTH_NONE;
        if (!go)
            *mhd = pc_req_fail(req, PC_EAUTH);
        goto done;
    case PC_ROUTE_METRICS:
    case PC_ROUTE_STATUS:
    case PC_ROUTE_HISTORY:
    case PC_ROUTE_UI:
    case PC_ROUTE_CACHE:
        go = user && pc_policy_is_admin(s.policy, user);
        if (!go)
            *mhd = deny(req, &id, false);
        goto done;
    case PC_ROUTE_CATALOG:
        go = id.external ? token_catalog(&id)
                         : pc_policy_catalog(s.policy, user) &&
                               (id.scheme != PC_AUTH_BEARER || token_catalog(&id));
        if (!go)
            *mhd = deny(req, &id, id.scheme == PC_AUTH_BEARER && !token_catalog(&id));
        goto done;
    default:
        break;
    }
    if (!pc_ref_name_valid(req->name)) {
        go = true; /* NAME_INVALID follows; nothing is served */
        goto done;
    }
    unsigned need = pc_authn_needed(req);
    const pc_mirror_target *t;
    int rc = req_target(req, need, &t);
    bool moved = need == PC_AUTH_PULL && req->route_ns;
    unsigned g = granted_on(req, &s, &id, req->name, rc, t, moved);
    go = pc_auth_actions_allow(g, need);
    /* A cross-repository mount reads its source: without pull there (or
     * without a from=, which would take the blob from any repository) the
     * request starts a plain upload instead, as when the blob is missing. */
    if (go && req->kind == PC_ROUTE_UPLOAD_START && pc_req_arg(req, "mount")) {
        const char *from = pc_req_arg(req, "from");
        pc_mirror_target ft;
        req->no_mount =
            !from || !(granted_on(req, &s, &id, from, route_name(req->srv, from, &ft), &ft, false) &
                       PC_AUTH_PULL);
    }
    if (!go) {
        bool short_token = false;
        if (id.scheme == PC_AUTH_BEARER && !id.external) {
            unsigned p = policy_grant(s.policy, user, req->name, rc, t);
            short_token = pc_auth_actions_allow(p, need);
        }
        *mhd = deny(req, &id, short_token);
    }
done:
    pc_jwt_claims_clear(&id.claims);
    pc_authn_snap_drop(&s);
    return go;
}

bool pc_req_may_pull(pc_req *req, const char *name)
{
    struct pc_authn *a = req->srv->authn;
    if (!a)
        return true;
    pc_authn_snap s;
    pc_authn_snap_take(a, &s);
    pc_mirror_target t;
    int rc = route_name(req->srv, name, &t);
    unsigned g = policy_grant(s.policy, req->user[0] ? req->user : NULL, name, rc, &t);
    pc_authn_snap_drop(&s);
    return (g & PC_AUTH_PULL) != 0;
}

unsigned pc_authn_grant(pc_server *srv, const pc_policy *p, const char *user, const char *name)
{
    pc_mirror_target t;
    return policy_grant(p, user, name, route_name(srv, name, &t), &t);
}
