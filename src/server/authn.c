/*
 * authn.c - authentication and access control at the HTTP edge (issue
 * #5): who asks (HTTP Basic against the htpasswd users, or a Bearer token
 * of the Docker token specification: ours or a trusted external
 * issuer's), whether the access policy lets them do what the request
 * does, the 401 challenge and 403 answer, and the token service (GET
 * /token) that issues short-lived ES256 tokens.
 *
 * Permission is decided on the routed target: a read that the mirror
 * serves from an upstream is checked as "<upstream>/<repo>" (mirrored),
 * whatever spelling (bare path, ?ns=) led there; writes are checked on the
 * name as requested (mirrored when it is in a mirror's namespace: then
 * read-only). Our own tokens are an upper bound: a request needs both the
 * token's access for the requested name and the current policy.
 *
 * Users and the policy are reference-counted and swapped on reload. A
 * successful Basic check is remembered for CACHE_TTL seconds keyed by a
 * SHA-256 of the user and password (compared in constant time), so a
 * client does not cost a bcrypt per request. Failed logins are slowed per
 * client address without blocking a thread: after THROTTLE_FREE failures
 * in a row, further attempts are answered 429 (Retry-After) for a delay
 * that doubles with each failure, capped at THROTTLE_MAX seconds.
 *
 * Nothing here logs or returns a password, a token or an Authorization
 * header.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "auth.h"
#include "htpasswd.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "server.h"

#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define CACHE_SLOTS 256
#define CACHE_TTL 60
#define THROTTLE_SLOTS 1024
#define THROTTLE_FREE 5 /* failures in a row before attempts are delayed */
#define THROTTLE_MAX 30 /* seconds, the longest delay */

struct cache_slot {
    unsigned char key[32];
    int64_t expires;
    uint64_t gen;
    char user[PC_HTPASSWD_USER_MAX + 1];
};

struct throttle_slot {
    char addr[64];
    unsigned fails;
    int64_t until;
};

struct pc_authn {
    pthread_mutex_t lock;
    pc_htpasswd *users; /* NULL: no htpasswd (external tokens only) */
    pc_policy *policy;
    uint64_t gen; /* bumped on reload: cached logins of old users die */
    pc_jwt_key *key;
    pc_jwt_key *trust_key; /* NULL: no external issuer */
    char *trust_issuer, *trust_audience;
    char *realm; /* auth.token.realm, else http.external_url + /token; NULL: from the Host */
    char *service, *issuer;
    unsigned lifetime;
    bool basic; /* challenge with Basic, not Bearer */
    struct cache_slot cache[CACHE_SLOTS];
    struct throttle_slot throttle[THROTTLE_SLOTS];
};

/* ---- building ---- */

static char *dup_or(const char *s, const char *def)
{
    return strdup(s ? s : def);
}

/* The policy of auth. 0, PC_EINVAL (message), PC_ENOMEM. */
static int policy_build(pc_policy **out, const pc_config_auth *a)
{
    int rc = PC_ENOMEM;
    pc_policy_rule *rules = calloc(a->access_count + 1, sizeof(*rules));
    pc_policy_group *groups = calloc(a->groups_count + 1, sizeof(*groups));
    if (!rules || !groups)
        goto done;
    for (unsigned i = 0; i < a->access_count; i++) {
        const pc_config_rule *r = &a->access[i];
        rules[i] = (pc_policy_rule){r->prefix,
                                    r->readonly,
                                    (const char *const *)r->pull,
                                    r->pull_count,
                                    (const char *const *)r->push,
                                    r->push_count,
                                    (const char *const *)r->del,
                                    r->del_count};
    }
    for (unsigned i = 0; i < a->groups_count; i++)
        groups[i] = (pc_policy_group){a->groups[i].name, (const char *const *)a->groups[i].members,
                                      a->groups[i].members_count};
    pc_policy_config pc = {
        rules,
        a->access_count,
        groups,
        a->groups_count,
        (const char *const *)a->admins,
        a->admins_count,
        a->catalog ? (const char *const *)a->catalog : NULL,
        a->catalog_count,
    };
    rc = pc_policy_new(out, &pc);
    if (rc == PC_EINVAL) {
        char msg[512];
        snprintf(msg, sizeof(msg), "auth: %s", pc_error_last());
        pc_error_set("%s", msg);
    }
done:
    free(rules);
    free(groups);
    return rc;
}

/* Users and policy of auth into *users, *policy. */
static int load_users(const pc_config_auth *a, pc_htpasswd **users, pc_policy **policy)
{
    *users = NULL;
    *policy = NULL;
    int rc = 0;
    if (a->htpasswd && (rc = pc_htpasswd_load(users, a->htpasswd)) != 0) {
        if (rc == PC_ENOTFOUND || rc == PC_ERR) {
            char msg[512];
            snprintf(msg, sizeof(msg), "auth.htpasswd: %s", pc_error_last());
            pc_error_set("%s", msg);
        }
        return PC_EINVAL;
    }
    if ((rc = policy_build(policy, a)) != 0) {
        pc_htpasswd_free(*users);
        *users = NULL;
        return rc == PC_ENOMEM ? rc : PC_EINVAL;
    }
    return 0;
}

static void authn_free(struct pc_authn *a)
{
    if (!a)
        return;
    pc_htpasswd_free(a->users);
    pc_policy_free(a->policy);
    pc_jwt_key_free(a->key);
    pc_jwt_key_free(a->trust_key);
    free(a->trust_issuer);
    free(a->trust_audience);
    free(a->realm);
    free(a->service);
    free(a->issuer);
    pthread_mutex_destroy(&a->lock);
    OPENSSL_cleanse(a->cache, sizeof(a->cache));
    free(a);
}

/* persist: a key made now is written to the data directory (serve starting;
 * not --check-config, which leaves no file behind). */
static int authn_new(struct pc_authn **out, const pc_config *cfg, bool persist)
{
    *out = NULL;
    if (!pc_config_auth_enabled(cfg))
        return 0;
    const pc_config_auth *c = cfg->auth;
    struct pc_authn *a = calloc(1, sizeof(*a));
    if (!a)
        return PC_ENOMEM;
    pthread_mutex_init(&a->lock, NULL);
    int rc = load_users(c, &a->users, &a->policy);
    if (rc)
        goto fail;
    const pc_config_token *t = c->token;
    rc = PC_ENOMEM;
    if (!(a->service = dup_or(t ? t->service : NULL, "pullcache")) ||
        !(a->issuer = dup_or(t ? t->issuer : NULL, "pullcache")) ||
        (t && t->realm && !(a->realm = strdup(t->realm))))
        goto fail;
    const char *xu = cfg->http ? cfg->http->external_url : NULL;
    if (!a->realm && xu) { /* http.external_url: how clients reach us, not their Host header */
        size_t n = strlen(xu);
        while (n && xu[n - 1] == '/')
            n--;
        if (!(a->realm = malloc(n + sizeof("/token"))))
            goto fail;
        snprintf(a->realm, n + sizeof("/token"), "%.*s/token", (int)n, xu);
    }
    a->lifetime = t && t->lifetime ? t->lifetime : PC_JWT_TTL;
    a->basic = c->challenge && strcmp(c->challenge, "basic") == 0;
    /* Without a configured key, the one kept in the data directory (made on
     * first start): tokens survive a restart, and replicas sharing the data
     * directory's key file accept each other's. */
    char kept[4096];
    snprintf(kept, sizeof(kept), "%s/token.key", cfg->storage->data);
    const char *key_path = t && t->key ? t->key : kept;
    rc = pc_jwt_key_load_private(&a->key, key_path);
    if (rc == PC_ENOTFOUND && key_path == kept) {
        rc = pc_jwt_key_generate(&a->key);
        if (rc == 0 && persist && (rc = pc_jwt_key_save_private(a->key, kept)) == 0)
            pc_log(PC_LOG_INFO, "made the token signing key %s (key id %s)", kept,
                   pc_jwt_key_id(a->key));
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof(msg), "auth.token.key %.200s: %.280s", key_path, pc_error_last());
        pc_error_set("%s", msg);
        rc = PC_EINVAL;
        goto fail;
    }
    if (c->trust) {
        if ((rc = pc_jwt_key_load_public(&a->trust_key, c->trust->key))) {
            char msg[512];
            snprintf(msg, sizeof(msg), "auth.trust.key %s: %s", c->trust->key, pc_error_last());
            pc_error_set("%s", msg);
            rc = PC_EINVAL;
            goto fail;
        }
        rc = PC_ENOMEM;
        if (!(a->trust_issuer = strdup(c->trust->issuer)) ||
            !(a->trust_audience = strdup(c->trust->audience)))
            goto fail;
    }
    *out = a;
    return 0;
fail:
    authn_free(a);
    return rc;
}

int pc_server_auth_init(pc_server *srv, const pc_config *cfg)
{
    int rc = authn_new(&srv->authn, cfg, true);
    if (rc == 0 && srv->authn) {
        pc_metrics_declare("pullcache_auth_failed_logins_total", PC_METRIC_COUNTER,
                           "Logins refused for a wrong user name or password");
        pc_metrics_declare("pullcache_auth_throttled_total", PC_METRIC_COUNTER,
                           "Logins answered 429 because their address failed too often");
        pc_metrics_declare("pullcache_auth_tokens_issued_total", PC_METRIC_COUNTER,
                           "Tokens issued by the token service");
    }
    if (rc == 0 && srv->authn)
        pc_log(PC_LOG_INFO,
               "authentication on: %zu htpasswd user(s)%s, %s challenge, token key id %s",
               srv->authn->users ? pc_htpasswd_count(srv->authn->users) : (size_t)0,
               srv->authn->trust_key ? ", external token issuer trusted" : "",
               srv->authn->basic ? "Basic" : "Bearer", pc_jwt_key_id(srv->authn->key));
    if (rc == 0 && srv->authn && !srv->authn->basic) {
        if (srv->authn->realm)
            pc_log(PC_LOG_INFO, "auth: token realm %s", srv->authn->realm);
        else
            pc_log(PC_LOG_INFO, "auth: token realm http(s)://<Host>/token, from each request's "
                                "Host header (trusted; set http.external_url or "
                                "auth.token.realm to fix it)");
    }
    return rc;
}

void pc_server_auth_free(pc_server *srv)
{
    authn_free(srv->authn);
    srv->authn = NULL;
}

int pc_server_auth_check(const pc_config *cfg)
{
    struct pc_authn *a = NULL;
    int rc = authn_new(&a, cfg, false);
    authn_free(a);
    return rc;
}

bool pc_server_auth_enabled(const pc_server *srv)
{
    return srv->authn != NULL;
}

int pc_server_auth_reload(pc_server *srv, const pc_config_auth *auth)
{
    struct pc_authn *a = srv->authn;
    if (!a)
        return PC_ENOTFOUND;
    if (!auth) {
        pc_error_set("the configuration no longer has an auth section");
        return PC_EINVAL;
    }
    pc_htpasswd *users;
    pc_policy *policy;
    int rc = load_users(auth, &users, &policy);
    if (rc)
        return rc;
    pthread_mutex_lock(&a->lock);
    pc_htpasswd *old_users = a->users;
    pc_policy *old_policy = a->policy;
    a->users = users;
    a->policy = policy;
    a->gen++;
    pthread_mutex_unlock(&a->lock);
    pc_htpasswd_free(old_users);
    pc_policy_free(old_policy);
    pc_log(PC_LOG_INFO, "auth: reloaded: %zu htpasswd user(s), %u access rule(s)",
           users ? pc_htpasswd_count(users) : (size_t)0, auth->access_count);
    return 0;
}

/* ---- per request ---- */

/* What a request's snapshot of the users and policy is. */
typedef struct {
    pc_htpasswd *users;
    pc_policy *policy;
    uint64_t gen;
} snapshot;

static void snap_take(struct pc_authn *a, snapshot *s)
{
    pthread_mutex_lock(&a->lock);
    s->users = a->users ? pc_htpasswd_ref(a->users) : NULL;
    s->policy = pc_policy_ref(a->policy);
    s->gen = a->gen;
    pthread_mutex_unlock(&a->lock);
}

static void snap_drop(snapshot *s)
{
    pc_htpasswd_free(s->users);
    pc_policy_free(s->policy);
}

static void client_addr(pc_req *req, char *buf, size_t size)
{
    snprintf(buf, size, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        socklen_t sl =
            sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        getnameinfo(sa, sl, buf, (socklen_t)size, NULL, 0, NI_NUMERICHOST);
    }
}

static size_t slot_of(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h % n);
}

/* Seconds until addr may try again; 0 = now. */
static unsigned throttle_wait(struct pc_authn *a, const char *addr)
{
    int64_t now = (int64_t)time(NULL);
    unsigned wait = 0;
    pthread_mutex_lock(&a->lock);
    struct throttle_slot *t = &a->throttle[slot_of(addr, THROTTLE_SLOTS)];
    if (strcmp(t->addr, addr) == 0 && t->until > now)
        wait = (unsigned)(t->until - now);
    pthread_mutex_unlock(&a->lock);
    return wait;
}

static void throttle_note(struct pc_authn *a, const char *addr, bool ok)
{
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&a->lock);
    struct throttle_slot *t = &a->throttle[slot_of(addr, THROTTLE_SLOTS)];
    if (strcmp(t->addr, addr) != 0) {
        memset(t, 0, sizeof(*t));
        snprintf(t->addr, sizeof(t->addr), "%s", addr);
    }
    if (ok) {
        t->fails = 0;
        t->until = 0;
    } else if (++t->fails >= THROTTLE_FREE) {
        unsigned shift = t->fails - THROTTLE_FREE;
        int64_t delay = shift >= 5 ? THROTTLE_MAX : (int64_t)1 << shift;
        t->until = now + (delay > THROTTLE_MAX ? THROTTLE_MAX : delay);
    }
    pthread_mutex_unlock(&a->lock);
}

static void cache_key(const char *user, const char *password, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    memset(out, 0, 32);
    if (!ctx)
        return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, user, strlen(user) + 1);
    EVP_DigestUpdate(ctx, password, strlen(password));
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

/* Whether user:password was checked good within CACHE_TTL (no bcrypt). */
static bool cache_hit(struct pc_authn *a, const snapshot *s, const char *user, const char *password)
{
    unsigned char key[32];
    cache_key(user, password, key);
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&a->lock);
    const struct cache_slot *c = &a->cache[key[0]];
    bool hit = c->expires > now && c->gen == s->gen && CRYPTO_memcmp(c->key, key, 32) == 0 &&
               strcmp(c->user, user) == 0;
    pthread_mutex_unlock(&a->lock);
    OPENSSL_cleanse(key, sizeof(key));
    return hit;
}

/* Whether user:password is right (bcrypt); a good one goes into the cache. */
static bool basic_ok(struct pc_authn *a, const snapshot *s, const char *user, const char *password)
{
    if (!s->users || !pc_htpasswd_verify(s->users, user, password))
        return false;
    unsigned char key[32];
    cache_key(user, password, key);
    pthread_mutex_lock(&a->lock);
    struct cache_slot *c = &a->cache[key[0]];
    memcpy(c->key, key, 32);
    c->expires = (int64_t)time(NULL) + CACHE_TTL;
    c->gen = s->gen;
    snprintf(c->user, sizeof(c->user), "%s", user);
    pthread_mutex_unlock(&a->lock);
    OPENSSL_cleanse(key, sizeof(key));
    return true;
}

/* Who asks, from the Authorization header. */
typedef struct {
    pc_auth_scheme scheme;
    bool ok;       /* credentials given and valid (or none given) */
    bool external; /* a token of the trusted external issuer */
    bool throttled;
    unsigned retry;
    pc_jwt_claims claims; /* Bearer */
} identity;

/* A user name and password (Basic, or the OAuth2 password grant): throttle,
 * check, count. Sets id->ok or id->throttled, and req->user. */
static void login(pc_req *req, struct pc_authn *a, const snapshot *s, const char *user,
                  const char *password, identity *id)
{
    char addr[64];
    client_addr(req, addr, sizeof(addr));
    /* credentials checked good a moment ago go on while others from the
     * same address are slowed down */
    if (s->users && cache_hit(a, s, user, password)) {
        snprintf(req->user, sizeof(req->user), "%s", user);
        id->ok = true;
    } else if ((id->retry = throttle_wait(a, addr)) > 0) {
        id->throttled = true;
        pc_metrics_add("pullcache_auth_throttled_total", NULL, 1);
    } else if (basic_ok(a, s, user, password)) {
        throttle_note(a, addr, true);
        snprintf(req->user, sizeof(req->user), "%s", user);
        id->ok = true;
    } else {
        throttle_note(a, addr, false);
        pc_metrics_add("pullcache_auth_failed_logins_total", NULL, 1);
        pc_log(PC_LOG_INFO, "auth: failed login for user '%.64s' from %s", user, addr);
    }
}

static void identify(pc_req *req, struct pc_authn *a, const snapshot *s, identity *id)
{
    memset(id, 0, sizeof(*id));
    pc_auth_credentials cr;
    const char *hv = pc_req_header(req, "Authorization");
    if (pc_auth_header_parse(hv, &cr) != 0) {
        id->scheme = PC_AUTH_BEARER; /* malformed: treat as a bad token */
        return;
    }
    id->scheme = cr.scheme;
    if (cr.scheme == PC_AUTH_NONE) {
        id->ok = true;
    } else if (cr.scheme == PC_AUTH_BASIC) {
        login(req, a, s, cr.user, cr.password, id);
    } else if (cr.scheme == PC_AUTH_BEARER) {
        const pc_jwt_key *keys[1] = {a->key};
        pc_jwt_verify_opts o = {a->issuer, a->service, keys, 1, 0, 0};
        if (pc_jwt_verify(cr.token, strlen(cr.token), &o, &id->claims) == 0) {
            id->ok = true;
        } else if (a->trust_key) {
            const pc_jwt_key *tk[1] = {a->trust_key};
            pc_jwt_verify_opts e = {a->trust_issuer, a->trust_audience, tk, 1, -1, 0};
            if (pc_jwt_verify(cr.token, strlen(cr.token), &e, &id->claims) == 0)
                id->ok = id->external = true;
        }
        if (id->ok)
            snprintf(req->user, sizeof(req->user), "%s", id->claims.sub);
        else
            req->auth_error = "invalid_token"; /* expired, forged, another issuer's */
    }
    pc_auth_credentials_clear(&cr);
    pc_error_clear();
    if (id->ok && req->user[0])
        req->account = req->user;
}

/* The token's actions on repository name. */
static unsigned token_access(const identity *id, const char *name)
{
    for (size_t i = 0; i < id->claims.access_count; i++) {
        const pc_auth_scope *sc = &id->claims.access[i];
        if (sc->type == PC_AUTH_REPOSITORY && strcmp(sc->name, name) == 0)
            return sc->actions & PC_AUTH_ALL ? PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE
                                             : sc->actions;
    }
    return 0;
}

static bool token_catalog(const identity *id)
{
    for (size_t i = 0; i < id->claims.access_count; i++)
        if (id->claims.access[i].type == PC_AUTH_REGISTRY &&
            strcmp(id->claims.access[i].name, "catalog") == 0 &&
            (id->claims.access[i].actions & PC_AUTH_ALL))
            return true;
    return false;
}

/* What the policy grants user on name, decided on the routed target
 * (reads that the mirror serves: "<upstream>/<repo>", mirrored). */
static unsigned policy_grant(pc_server *srv, const pc_policy *p, const char *user, const char *name,
                             const char *ns)
{
    pc_mirror_target t;
    unsigned g = 0, w = 0;
    if (!pc_ref_name_valid(name))
        return 0;
    int rc = srv->mirror ? pc_mirror_route(srv->mirror, name, ns, &t) : PC_ENOTFOUND;
    if (rc != 0 && rc != PC_ENOTFOUND)
        return 0;  /* an invalid name, or a registry that is not mirrored */
    if (rc == 0) { /* reads come from the upstream */
        if (pc_policy_access(p, user, t.local, true, &g))
            g = 0;
        g &= PC_AUTH_PULL;
    }
    /* writes go to the name as requested (read-only where it is a mirror's) */
    bool ro = rc == 0 || (srv->mirror && pc_mirror_readonly(srv->mirror, name));
    if (pc_policy_access(p, user, name, ro, &w))
        w = 0;
    if (rc != 0)
        g = w & PC_AUTH_PULL;
    return g | (w & (PC_AUTH_PUSH | PC_AUTH_DELETE));
}

/* The actions the requester holds on name. */
static unsigned granted_on(pc_req *req, const snapshot *s, const identity *id, const char *name,
                           const char *ns)
{
    const char *user = req->user[0] ? req->user : NULL;
    if (id->external) { /* the external issuer decides; mirrors stay read-only */
        unsigned g = token_access(id, name);
        if (req->srv->mirror && pc_mirror_readonly(req->srv->mirror, name))
            g &= PC_AUTH_PULL;
        pc_mirror_target t;
        if (req->srv->mirror && pc_mirror_route(req->srv->mirror, name, ns, &t) == 0 &&
            strcmp(t.local, name) != 0 && !(ns == NULL || !*ns))
            g &= token_access(id, t.local) | ~(unsigned)PC_AUTH_PULL; /* ns= moves the read */
        return g;
    }
    unsigned g = policy_grant(req->srv, s->policy, user, name, ns);
    if (id->scheme == PC_AUTH_BEARER)
        g &= token_access(id, name);
    return g;
}

static unsigned needed(pc_req *req)
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

static int deny(pc_req *req, const identity *id, bool token_short)
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

bool pc_req_authorize(pc_req *req, int *mhd)
{
    struct pc_authn *a = req->srv->authn;
    if (!a || req->kind == PC_ROUTE_TOKEN)
        return true;
    snapshot s;
    identity id;
    snap_take(a, &s);
    identify(req, a, &s, &id);
    bool go = false;
    const char *user = req->user[0] ? req->user : NULL;
    if (id.throttled) {
        char retry[16];
        snprintf(retry, sizeof(retry), "%u", id.retry);
        *mhd = pc_req_error_hdr(req, 429, "TOOMANYREQUESTS",
                                "too many failed logins from this address; try again later",
                                "Retry-After", retry, NULL);
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
    unsigned need = needed(req);
    const char *ns = pc_req_arg(req, "ns");
    unsigned g = granted_on(req, &s, &id, req->name, need == PC_AUTH_PULL ? ns : NULL);
    go = pc_auth_actions_allow(g, need);
    /* A cross-repository mount reads its source: without pull there (or
     * without a from=, which would take the blob from any repository) the
     * request starts a plain upload instead, as when the blob is missing. */
    if (go && req->kind == PC_ROUTE_UPLOAD_START && pc_req_arg(req, "mount")) {
        const char *from = pc_req_arg(req, "from");
        req->no_mount = !from || !(granted_on(req, &s, &id, from, NULL) & PC_AUTH_PULL);
    }
    if (!go) {
        bool short_token = false;
        if (id.scheme == PC_AUTH_BEARER && !id.external) {
            unsigned p =
                policy_grant(req->srv, s.policy, user, req->name, need == PC_AUTH_PULL ? ns : NULL);
            short_token = pc_auth_actions_allow(p, need);
        }
        *mhd = deny(req, &id, short_token);
    }
done:
    pc_jwt_claims_clear(&id.claims);
    snap_drop(&s);
    return go;
}

bool pc_req_may_pull(pc_req *req, const char *name)
{
    struct pc_authn *a = req->srv->authn;
    if (!a)
        return true;
    snapshot s;
    snap_take(a, &s);
    unsigned g = policy_grant(req->srv, s.policy, req->user[0] ? req->user : NULL, name, NULL);
    snap_drop(&s);
    return (g & PC_AUTH_PULL) != 0;
}

/* The realm: configured (auth.token.realm, http.external_url), else
 * http(s)://<Host>/token: the Host header is the client's to choose. */
static void realm_of(pc_req *req, char *buf, size_t size)
{
    struct pc_authn *a = req->srv->authn;
    if (a->realm) {
        snprintf(buf, size, "%s", a->realm);
        return;
    }
    const char *host = pc_req_header(req, "Host");
    bool ok = host && *host && strlen(host) < 256;
    for (const char *p = host; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr(".-:[]", *p);
    if (ok)
        snprintf(buf, size, "%s://%s/token", req->srv->tls ? "https" : "http", host);
    else
        snprintf(buf, size, "%s://%s/token", req->srv->tls ? "https" : "http",
                 req->srv->cfg->http->listen);
}

int pc_req_unauthorized(pc_req *req)
{
    struct pc_authn *a = req->srv->authn;
    char *value = NULL;
    int rc;
    if (!a) /* cannot happen: only access control answers 401 */
        return pc_req_error(req, 401, "UNAUTHORIZED", "authentication required");
    if (a->basic) {
        rc = pc_auth_challenge_basic(&value, "pullcache");
    } else {
        char realm[600];
        realm_of(req, realm, sizeof(realm));
        pc_auth_scope sc = {0};
        size_t n = 0;
        if (req->kind == PC_ROUTE_CATALOG) {
            sc.type = PC_AUTH_REGISTRY;
            snprintf(sc.name, sizeof(sc.name), "catalog");
            sc.actions = PC_AUTH_ALL;
            n = 1;
        } else if (req->kind != PC_ROUTE_BASE && req->kind != PC_ROUTE_METRICS &&
                   req->kind != PC_ROUTE_STATUS && req->kind != PC_ROUTE_CACHE &&
                   pc_ref_name_valid(req->name)) {
            sc.type = PC_AUTH_REPOSITORY;
            snprintf(sc.name, sizeof(sc.name), "%s", req->name);
            unsigned need = needed(req);
            sc.actions = need == PC_AUTH_PUSH ? PC_AUTH_PULL | PC_AUTH_PUSH : need;
            n = 1;
        }
        rc = pc_auth_challenge_bearer(&value, realm, a->service, &sc, n, req->auth_error);
    }
    if (rc)
        return pc_req_error(req, 401, "UNAUTHORIZED", "authentication required");
    int r = pc_req_error_hdr(req, 401, "UNAUTHORIZED", "authentication required",
                             "WWW-Authenticate", value, NULL);
    free(value);
    return r;
}

/* ---- GET /token ---- */

struct scope_args {
    const char *v[PC_AUTH_SCOPES_MAX];
    size_t n;
    bool over;
};

static enum MHD_Result collect_scope(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct scope_args *sa = cls;
    if (strcmp(key, "scope") == 0 && value) {
        if (sa->n == PC_AUTH_SCOPES_MAX)
            sa->over = true;
        else
            sa->v[sa->n++] = value;
    }
    return MHD_YES;
}

static int token_issue(pc_req *req, struct pc_authn *a, const snapshot *sp,
                       const char *const *values, size_t nv);

int pc_h_token(pc_req *req)
{
    struct pc_authn *a = req->srv->authn;
    if (!a)
        return pc_req_error(req, 404, "NOT_FOUND", "no token service: authentication is off");
    snapshot s;
    identity id;
    int r;
    snap_take(a, &s);
    identify(req, a, &s, &id);
    if (id.throttled) {
        char retry[16];
        snprintf(retry, sizeof(retry), "%u", id.retry);
        r = pc_req_error_hdr(req, 429, "TOOMANYREQUESTS",
                             "too many failed logins from this address; try again later",
                             "Retry-After", retry, NULL);
        goto done;
    }
    if (!id.ok || id.scheme == PC_AUTH_BEARER) {
        char *value = NULL;
        pc_auth_challenge_basic(&value, "pullcache");
        r = pc_req_error_hdr(req, 401, "UNAUTHORIZED", "wrong user name or password",
                             "WWW-Authenticate", value, NULL);
        free(value);
        goto done;
    }
    struct scope_args sa = {{0}, 0, false};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_scope, &sa);
    r = sa.over ? pc_req_error(req, 400, "UNSUPPORTED", "too many scopes")
                : token_issue(req, a, &s, sa.v, sa.n);
done:
    pc_jwt_claims_clear(&id.claims);
    snap_drop(&s);
    return r;
}

/* The token for the scopes in values (n of them, each space-separated) that
 * the policy grants req->user, as the reply. */
static int token_issue(pc_req *req, struct pc_authn *a, const snapshot *sp,
                       const char *const *values, size_t nv)
{
    pc_auth_scope *want = NULL, *grant = NULL;
    char *token = NULL, *body = NULL;
    size_t n = 0;
    int r;
    snapshot s = *sp;
    int rc = pc_auth_scopes_parse(values, nv, &want, &n);
    if (rc == PC_ENOMEM) {
        r = pc_req_fail(req, rc);
        goto done;
    }
    if (rc) {
        r = pc_req_error(req, 400, "UNSUPPORTED", "invalid scope");
        goto done;
    }
    const char *user = req->user[0] ? req->user : NULL;
    if (n && !(grant = calloc(n, sizeof(*grant)))) {
        r = pc_req_fail(req, PC_ENOMEM);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        grant[i] = want[i];
        unsigned asked = want[i].actions & PC_AUTH_ALL
                             ? PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE
                             : want[i].actions;
        if (want[i].type == PC_AUTH_REPOSITORY)
            grant[i].actions = asked & policy_grant(req->srv, s.policy, user, want[i].name, NULL);
        else
            grant[i].actions = (want[i].actions & PC_AUTH_ALL) &&
                                       strcmp(want[i].name, "catalog") == 0 &&
                                       pc_policy_catalog(s.policy, user)
                                   ? PC_AUTH_ALL
                                   : 0;
    }
    int64_t now = (int64_t)time(NULL);
    pc_jwt_claims c;
    memset(&c, 0, sizeof(c));
    snprintf(c.iss, sizeof(c.iss), "%s", a->issuer);
    snprintf(c.sub, sizeof(c.sub), "%s", req->user);
    snprintf(c.aud, sizeof(c.aud), "%s", a->service);
    c.iat = now;
    c.nbf = now;
    c.exp = now + a->lifetime;
    c.access = grant;
    c.access_count = n;
    if ((rc = pc_jwt_sign(a->key, &c, &token))) {
        r = pc_req_fail(req, rc == PC_ENOMEM ? rc : PC_ERR);
        goto done;
    }
    char issued[32];
    struct tm tm;
    time_t tt = (time_t)now;
    gmtime_r(&tt, &tm);
    strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *doc = json_pack("{s:s, s:s, s:I, s:s}", "token", token, "access_token", token,
                            "expires_in", (json_int_t)a->lifetime, "issued_at", issued);
    body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body) {
        r = pc_req_fail(req, PC_ENOMEM);
        goto done;
    }
    pc_metrics_add("pullcache_auth_tokens_issued_total", NULL, 1);
    r = pc_req_send(req, 200, "application/json", body, strlen(body), "Cache-Control", "no-store",
                    NULL);
done:
    if (token)
        OPENSSL_cleanse(token, strlen(token));
    if (body)
        OPENSSL_cleanse(body, strlen(body));
    free(token);
    free(body);
    free(want);
    free(grant);
    return r;
}

/* ---- POST /token: the OAuth2 password grant ---- */

static int hexdig(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pc_form_value(const char *body, size_t len, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(fe - p));
        if (eq && (size_t)(eq - p) == klen && memcmp(p, key, klen) == 0) {
            size_t w = 0;
            for (const char *q = eq + 1; q < fe; q++) {
                char ch = *q;
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%') {
                    int hi = q + 2 < fe ? hexdig(q[1]) : -1, lo = q + 2 < fe ? hexdig(q[2]) : -1;
                    if (hi < 0 || lo < 0 || (hi | lo) == 0) {
                        pc_error_set("form field %s: bad percent-encoding", key);
                        return PC_EINVAL;
                    }
                    ch = (char)(hi * 16 + lo);
                    q += 2;
                }
                if (w + 1 >= size) {
                    pc_error_set("form field %s too long", key);
                    return PC_ETOOBIG;
                }
                out[w++] = ch;
            }
            out[w] = '\0';
            return 0;
        }
        if (!amp) /* the last field (fe + 1 would point past the body) */
            break;
        p = amp + 1;
    }
    return PC_ENOTFOUND;
}

int pc_h_token_post_begin(pc_req *req)
{
    if (!req->srv->authn)
        return pc_req_error(req, 404, "NOT_FOUND", "no token service: authentication is off");
    req->body = PC_BODY_BUFFER;
    req->max = 65536;
    return MHD_YES;
}

int pc_h_token_post_finish(pc_req *req)
{
    struct pc_authn *a = req->srv->authn;
    char grant_type[32], user[PC_HTPASSWD_USER_MAX + 1], password[1024], scope[8192];
    const char *body = req->buf ? req->buf : "";
    if (req->too_big)
        return pc_req_error(req, 413, "SIZE_INVALID", "token request larger than 64 KiB");
    if (pc_form_value(body, req->len, "grant_type", grant_type, sizeof(grant_type)) != 0 ||
        strcmp(grant_type, "password") != 0)
        return pc_req_error(req, 400, "UNSUPPORTED",
                            "only grant_type=password is supported (or GET /token)");
    if (pc_form_value(body, req->len, "username", user, sizeof(user)) != 0 || !user[0] ||
        pc_form_value(body, req->len, "password", password, sizeof(password)) != 0)
        return pc_req_error(req, 400, "UNSUPPORTED", "username and password are required");
    int rc = pc_form_value(body, req->len, "scope", scope, sizeof(scope));
    if (rc == PC_ENOTFOUND)
        scope[0] = '\0';
    else if (rc)
        return pc_req_error(req, 400, "UNSUPPORTED", "invalid scope");
    snapshot s;
    identity id;
    memset(&id, 0, sizeof(id));
    snap_take(a, &s);
    int r;
    bool ctl = false;
    for (const char *q = user; *q; q++)
        ctl |= (unsigned char)*q < 0x20 || *q == ':';
    if (!ctl)
        login(req, a, &s, user, password, &id);
    OPENSSL_cleanse(password, sizeof(password));
    if (id.throttled) {
        char retry[16];
        snprintf(retry, sizeof(retry), "%u", id.retry);
        r = pc_req_error_hdr(req, 429, "TOOMANYREQUESTS",
                             "too many failed logins from this address; try again later",
                             "Retry-After", retry, NULL);
    } else if (!id.ok) {
        r = pc_req_error(req, 401, "UNAUTHORIZED", "wrong user name or password");
    } else {
        const char *v[1] = {scope};
        r = token_issue(req, a, &s, v, 1);
    }
    if (req->buf)
        OPENSSL_cleanse(req->buf, req->len);
    snap_drop(&s);
    return r;
}
