/*
 * upstream_auth.c - the authentication pieces of the upstream client that
 * need no network: WWW-Authenticate parsing (RFC 7235 auth-params), the
 * Authorization header values, token server answers, and the per-scope
 * bearer token cache. upstream.c does the exchanges.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "upstream_int.h"
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#define UP_TOKEN_DEFAULT_TTL 60 /* seconds, when expires_in is absent */

typedef struct {
    char *scope;
    char *token;
    int64_t until_ms; /* monotonic; usable while now < until_ms */
} up_token;

struct pc_up_tokens {
    pthread_mutex_t lock; /* guards the entries */
    up_token *v;
    size_t n, max;
};

void pc_up_secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* ---- WWW-Authenticate ---- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The field of out that a parameter name fills, NULL for unknown names. */
static char *chal_field(pc_auth_challenge *out, const char *name, size_t n, size_t *size)
{
    static const struct {
        const char *name;
        size_t off;
        size_t size;
    } params[] = {
        {"realm", offsetof(pc_auth_challenge, realm), sizeof(((pc_auth_challenge *)0)->realm)},
        {"service", offsetof(pc_auth_challenge, service),
         sizeof(((pc_auth_challenge *)0)->service)},
        {"scope", offsetof(pc_auth_challenge, scope), sizeof(((pc_auth_challenge *)0)->scope)},
        {"error", offsetof(pc_auth_challenge, error), sizeof(((pc_auth_challenge *)0)->error)},
    };
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        if (strlen(params[i].name) == n && strncasecmp(params[i].name, name, n) == 0) {
            *size = params[i].size;
            return (char *)out + params[i].off;
        }
    }
    return NULL;
}

/* Parse one parameter value at *pp (quoted-string with backslash escapes, or
 * a bare run of characters up to ',' or whitespace) into dst (may be NULL to
 * skip). Returns false when malformed or too long for dst. */
static bool chal_value(const char **pp, char *dst, size_t size)
{
    const char *p = *pp;
    size_t n = 0;
    bool ok = true;
    if (*p == '"') {
        for (p++;; p++) {
            if (*p == '\0')
                return false; /* unterminated */
            if (*p == '"')
                break;
            if (*p == '\\' && *++p == '\0')
                return false;
            if (dst && n + 1 < size)
                dst[n] = *p;
            else if (dst)
                ok = false;
            n++;
        }
        p++;
    } else {
        for (; *p && *p != ',' && *p != ' ' && *p != '\t' && *p != '"'; p++) {
            if (dst && n + 1 < size)
                dst[n] = *p;
            else if (dst)
                ok = false;
            n++;
        }
        if (n == 0)
            return false;
    }
    if (dst && ok)
        dst[n] = '\0';
    *pp = p;
    return ok;
}

int pc_auth_challenge_parse(const char *value, pc_auth_challenge *out)
{
    int rc = PC_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!value)
        goto done;
    const char *p = skip_ows(value);
    const char *s = p;
    while (is_tchar(*p))
        p++;
    size_t n = (size_t)(p - s);
    if (n == 0 || n >= sizeof(out->scheme) || (*p && *p != ' ' && *p != '\t'))
        goto done;
    if (n == 6 && strncasecmp(s, "bearer", 6) == 0)
        memcpy(out->scheme, "Bearer", 7);
    else if (n == 5 && strncasecmp(s, "basic", 5) == 0)
        memcpy(out->scheme, "Basic", 6);
    else
        memcpy(out->scheme, s, n);

    for (;;) {
        p = skip_ows(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (!*p)
            break;
        const char *name = p;
        while (is_tchar(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        if (nlen == 0)
            goto done;
        const char *q = skip_ows(p);
        if (*q != '=') {
            /* "<token> <token>": the next challenge of a list begins */
            if (q != p && is_tchar(*q))
                break;
            goto done;
        }
        p = skip_ows(q + 1);
        size_t size = 0;
        char *dst = chal_field(out, name, nlen, &size);
        if (!chal_value(&p, dst, size))
            goto done;
        p = skip_ows(p);
        if (*p && *p != ',')
            goto done;
    }
    if (strcmp(out->scheme, "Bearer") == 0 && out->realm[0] == '\0')
        goto done;
    rc = 0;
done:
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        pc_error_set("malformed WWW-Authenticate challenge");
    }
    return rc;
}

/* ---- Authorization values ---- */

/* prefix + value in a new string (caller's), NULL when out of memory. */
static char *header_line(const char *prefix, const char *value)
{
    size_t a = strlen(prefix), b = strlen(value);
    char *out = malloc(a + b + 1);
    if (out) {
        memcpy(out, prefix, a);
        memcpy(out + a, value, b + 1);
    }
    return out;
}

char *pc_up_auth_bearer(const char *token)
{
    return header_line("Authorization: Bearer ", token);
}

char *pc_up_auth_basic(const char *user, const char *pass)
{
    char *out = NULL;
    size_t ul = strlen(user), pl = pass ? strlen(pass) : 0;
    char *plain = malloc(ul + pl + 2);
    unsigned char *b64 = calloc(1, 4 * ((ul + pl + 3) / 3) + 1);
    if (!plain || !b64)
        goto done;
    memcpy(plain, user, ul);
    plain[ul] = ':';
    memcpy(plain + ul + 1, pass ? pass : "", pl + 1);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)(ul + pl + 1));
    out = header_line("Authorization: Basic ", (const char *)b64);
done:
    pc_up_secret_free(plain);
    pc_up_secret_free((char *)b64);
    return out;
}

/* ---- token server answers ---- */

/* Parse an RFC 3339 time ("2024-05-01T12:00:00.123Z", "...+02:00"). */
static bool parse_rfc3339(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return false;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    *out = timegm(&tm) - off;
    return true;
}

int pc_up_token_parse(const char *body, size_t len, char **token, int64_t *usable_ms)
{
    int rc = 0;
    json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, NULL);
    *token = NULL;
    *usable_ms = 0;
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok || !*tok)
        tok = json_string_value(json_object_get(j, "access_token"));
    if (!tok || !*tok) {
        pc_error_set("token response without a token");
        rc = PC_EINVAL;
        goto done;
    }
    if (!(*token = strdup(tok))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    json_t *jexp = json_object_get(j, "expires_in");
    int64_t ttl = json_is_number(jexp) ? (int64_t)json_number_value(jexp) : 0;
    if (ttl <= 0)
        ttl = UP_TOKEN_DEFAULT_TTL;
    int64_t life = ttl;
    time_t issued;
    const char *ia = json_string_value(json_object_get(j, "issued_at"));
    if (ia && parse_rfc3339(ia, &issued)) {
        int64_t age = (int64_t)time(NULL) - (int64_t)issued;
        if (age > 0)
            life = ttl - age; /* an old token handed out again */
    }
    int64_t margin = life >= 300 ? 30 : life / 5; /* renew shortly before expiry */
    if (life - margin > 0)
        *usable_ms = (life - margin) * 1000;
done:
    json_decref(j);
    return rc;
}

/* ---- the token cache ---- */

int pc_up_tokens_new(pc_up_tokens **out, size_t max)
{
    pc_up_tokens *t = calloc(1, sizeof(*t));
    if (t)
        t->v = calloc(max ? max : 1, sizeof(*t->v));
    if (!t || !t->v) {
        free(t);
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    t->max = max ? max : 1;
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

static void entry_free(up_token *e)
{
    free(e->scope);
    pc_up_secret_free(e->token);
}

void pc_up_tokens_free(pc_up_tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        entry_free(&t->v[i]);
    free(t->v);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int pc_up_tokens_get(pc_up_tokens *t, const char *scope, char **token)
{
    int rc = PC_ENOTFOUND;
    int64_t now = pc_util_mono_ms();
    *token = NULL;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n;) {
        up_token *e = &t->v[i];
        if (e->until_ms <= now) {
            entry_free(e);
            *e = t->v[--t->n];
            continue;
        }
        if (rc == PC_ENOTFOUND && strcmp(e->scope, scope) == 0) {
            *token = strdup(e->token);
            rc = *token ? 0 : PC_ENOMEM;
        }
        i++;
    }
    pthread_mutex_unlock(&t->lock);
    if (rc == PC_ENOMEM)
        pc_error_set("out of memory");
    return rc;
}

static void drop_locked(pc_up_tokens *t, const char *scope)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].scope, scope) == 0) {
            entry_free(&t->v[i]);
            t->v[i] = t->v[--t->n];
            return;
        }
    }
}

void pc_up_tokens_drop(pc_up_tokens *t, const char *scope)
{
    pthread_mutex_lock(&t->lock);
    drop_locked(t, scope);
    pthread_mutex_unlock(&t->lock);
}

void pc_up_tokens_put(pc_up_tokens *t, const char *scope, const char *token, int64_t usable_ms)
{
    if (usable_ms <= 0)
        return;
    up_token e = {strdup(scope), strdup(token), pc_util_mono_ms() + usable_ms};
    pthread_mutex_lock(&t->lock);
    drop_locked(t, scope);
    if (e.scope && e.token && t->n < t->max) {
        t->v[t->n++] = e;
        e.scope = e.token = NULL;
    }
    pthread_mutex_unlock(&t->lock);
    entry_free(&e);
}
