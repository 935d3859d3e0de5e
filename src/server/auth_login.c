/*
 * auth_login.c - who asks (issue #5): HTTP Basic against the htpasswd
 * users, or a Bearer token of the Docker token specification (ours, or a
 * trusted external issuer's).
 *
 * A successful Basic check is remembered for CACHE_TTL seconds keyed by a
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
#include "auth_int.h"
#include "log.h"
#include "metrics.h"

#include <netdb.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

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

int pc_authn_throttled(pc_req *req, unsigned retry)
{
    char after[16];
    snprintf(after, sizeof(after), "%u", retry);
    return pc_req_error_hdr(req, 429, "TOOMANYREQUESTS",
                            "too many failed logins from this address; try again later",
                            "Retry-After", after, NULL);
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
static bool cache_hit(struct pc_authn *a, const pc_authn_snap *s, const char *user,
                      const char *password)
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
static bool basic_ok(struct pc_authn *a, const pc_authn_snap *s, const char *user,
                     const char *password)
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

/* A user name and password (Basic, or the OAuth2 password grant): throttle,
 * check, count. Sets id->ok or id->throttled, and req->user. */
void pc_authn_login(pc_req *req, struct pc_authn *a, const pc_authn_snap *s, const char *user,
                    const char *password, pc_authn_identity *id)
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

void pc_authn_identify(pc_req *req, struct pc_authn *a, const pc_authn_snap *s,
                       pc_authn_identity *id)
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
        pc_authn_login(req, a, s, cr.user, cr.password, id);
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
