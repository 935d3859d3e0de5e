/*
 * auth_token.c - the 401 challenge (WWW-Authenticate: Bearer with the
 * realm and the scope the request needs, or Basic) and the token service
 * of the Docker token specification (issue #5): GET /token, and POST
 * /token's OAuth2 password grant, issue short-lived ES256 tokens for the
 * scopes the policy grants.
 *
 * Nothing here logs or returns a password; the token is wiped from memory
 * once sent.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "auth_int.h"
#include "metrics.h"
#include "util.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

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
            unsigned need = pc_authn_needed(req);
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

static int token_issue(pc_req *req, struct pc_authn *a, const pc_authn_snap *sp,
                       const char *const *values, size_t nv);

int pc_h_token(pc_req *req)
{
    struct pc_authn *a = req->srv->authn;
    if (!a)
        return pc_req_error(req, 404, "NOT_FOUND", "no token service: authentication is off");
    pc_authn_snap s;
    pc_authn_identity id;
    int r;
    pc_authn_snap_take(a, &s);
    pc_authn_identify(req, a, &s, &id);
    if (id.throttled) {
        r = pc_authn_throttled(req, id.retry);
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
    pc_authn_snap_drop(&s);
    return r;
}

/* The token for the scopes in values (n of them, each space-separated) that
 * the policy grants req->user, as the reply. */
static int token_issue(pc_req *req, struct pc_authn *a, const pc_authn_snap *sp,
                       const char *const *values, size_t nv)
{
    pc_auth_scope *want = NULL, *grant = NULL;
    char *token = NULL, *body = NULL;
    size_t n = 0;
    int r;
    pc_authn_snap s = *sp;
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
        if (want[i].type == PC_AUTH_REPOSITORY) {
            grant[i].actions = asked & pc_authn_grant(req->srv, s.policy, user, want[i].name);
        } else {
            grant[i].actions = (want[i].actions & PC_AUTH_ALL) &&
                                       strcmp(want[i].name, "catalog") == 0 &&
                                       pc_policy_catalog(s.policy, user)
                                   ? PC_AUTH_ALL
                                   : 0;
        }
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
                    int hi = q + 2 < fe ? pc_util_hexval(q[1]) : -1,
                        lo = q + 2 < fe ? pc_util_hexval(q[2]) : -1;
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
    pc_authn_snap s;
    pc_authn_identity id;
    memset(&id, 0, sizeof(id));
    pc_authn_snap_take(a, &s);
    int r;
    bool ctl = false;
    for (const char *q = user; *q; q++)
        ctl |= (unsigned char)*q < 0x20 || *q == ':';
    if (!ctl)
        pc_authn_login(req, a, &s, user, password, &id);
    OPENSSL_cleanse(password, sizeof(password));
    if (id.throttled) {
        r = pc_authn_throttled(req, id.retry);
    } else if (!id.ok) {
        r = pc_req_error(req, 401, "UNAUTHORIZED", "wrong user name or password");
    } else {
        const char *v[1] = {scope};
        r = token_issue(req, a, &s, v, 1);
    }
    if (req->buf)
        OPENSSL_cleanse(req->buf, req->len);
    pc_authn_snap_drop(&s);
    return r;
}
