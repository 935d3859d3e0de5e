/*
 * upstream_call.c - the calls of the upstream client (manifest HEAD/GET,
 * blob HEAD/GET, a plain GET of any path) and the token flow around them.
 *
 * Authentication: a static token is sent as Bearer. Otherwise the first call
 * goes out anonymously; a 401 carries a WWW-Authenticate challenge that is
 * remembered for the upstream. For Bearer, a token for
 * "repository:<repo>:pull" (pushes: "pull,push", plus "pull" on a mount's
 * source repository) is fetched from the realm (with basic
 * credentials when configured), cached per scope until shortly before it
 * expires, and the request is retried once. For Basic, the retry carries
 * the credentials. Once a challenge is known, later calls authenticate up
 * front (cached token, or a token fetched before the request) until a token
 * request fails, which makes the next call start anonymously again. Credentials
 * and tokens never appear in error messages or logs, and are wiped before
 * they are freed. Parsing and the token cache live in upstream_auth.c; one
 * exchange (redirects, timeouts) in upstream_xfer.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "upstream_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UP_TOKEN_BODY_MAX ((size_t)64 << 10)
#define UP_GET_DEFAULT_MAX ((size_t)1 << 20)
#define UP_REF_MAX 256
#define UP_PATH_MAX 2048

#define UP_ACCEPT                                                                                  \
    "Accept: application/vnd.oci.image.manifest.v1+json, "                                         \
    "application/vnd.oci.image.index.v1+json, "                                                    \
    "application/vnd.docker.distribution.manifest.v2+json, "                                       \
    "application/vnd.docker.distribution.manifest.list.v2+json"

/* Concatenate NULL-terminated string arguments into a new string (caller's),
 * NULL when out of memory. */
static char *str_cat(const char *first, ...) __attribute__((sentinel));
static char *str_cat(const char *first, ...)
{
    va_list ap;
    size_t len = 0;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        len += strlen(s);
    va_end(ap);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    char *p = out;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *)) {
        size_t n = strlen(s);
        memcpy(p, s, n);
        p += n;
    }
    va_end(ap);
    *p = '\0';
    return out;
}

static bool ref_char_ok(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr(extra, c) != NULL;
}

/* Repository names and references go into the URL path unescaped: accept
 * only what the distribution spec allows, and no empty, "." or ".." path
 * segments (curl would normalize those away). */
bool pc_up_path_part_ok(const char *s, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > UP_REF_MAX)
        return false;
    size_t seg = 0; /* start of the current segment */
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - seg;
            if (len == 0 || (len == 1 && s[seg] == '.') ||
                (len == 2 && s[seg] == '.' && s[seg + 1] == '.'))
                return false;
            seg = i + 1;
        } else if (!ref_char_ok(s[i], extra)) {
            return false;
        }
    }
    return true;
}

static int discard_data(const void *buf, size_t len, void *ctx)
{
    return 0;
}

static int oom(pc_upstream *u)
{
    pc_error_set("upstream %s: out of memory", u->name);
    return PC_ENOMEM;
}

/* Ask ch's realm for a token for scope. On success *hdr is the
 * "Authorization: Bearer ..." line (caller's, pc_up_secret_free) and the
 * token is cached. When the token server fails, *hdr stays NULL and out
 * describes its answer (class, status, message prefixed "token: ").
 * Returns 0 or PC_ENOMEM. */
static int token_fetch(pc_upstream *u, CURL **hp, const pc_auth_challenge *ch, const char *scope,
                       char **hdr, pc_upstream_resp *out)
{
    int rc = 0;
    pc_upstream_resp tr;
    pc_up_xfer x = {.resp = &tr, .ok_max = UP_TOKEN_BODY_MAX, .what = "token response"};
    char *esc_service = NULL, *esc_scope = NULL, *url = NULL, *basic = NULL, *tok = NULL;
    int64_t usable_ms = 0;
    char msg[sizeof(out->error_message)];
    pc_up_resp_init(&tr);
    *hdr = NULL;

    esc_service = curl_easy_escape(*hp, ch->service, 0);
    if (!esc_service)
        goto oom;
    url = str_cat(ch->realm, strchr(ch->realm, '?') ? "&" : "?", ch->service[0] ? "service=" : "",
                  ch->service[0] ? esc_service : "", NULL);
    if (!url)
        goto oom;
    /* one scope= parameter per scope (a push that mounts asks for two) */
    const char *sep = ch->service[0] ? "&" : ""; /* url ends in '?' or '&' otherwise */
    for (const char *sc = scope; *sc;) {
        size_t n = strcspn(sc, " ");
        if (n) {
            char *next;
            curl_free(esc_scope);
            if (!(esc_scope = curl_easy_escape(*hp, sc, (int)n)))
                goto oom;
            if (!(next = str_cat(url, sep, "scope=", esc_scope, NULL)))
                goto oom;
            free(url);
            url = next;
            sep = "&";
        }
        sc += n;
        while (*sc == ' ')
            sc++;
    }
    if (u->username && !(basic = pc_up_auth_basic(u->username, u->password)))
        goto oom;
    if ((rc = pc_up_exchange(u, hp, url, false, NULL, basic, &x)) != 0)
        goto done;
    if (tr.cls == PC_UP_OK) {
        rc = pc_up_token_parse(tr.body, tr.body_len, &tok, &usable_ms);
        if (rc == PC_ENOMEM)
            goto oom;
        if (rc == 0) {
            if (!(*hdr = pc_up_auth_bearer(tok)))
                goto oom;
            pc_up_tokens_put(u->tokens, scope, tok, usable_ms);
            goto done;
        }
        rc = 0;
        tr.cls = PC_UP_PROTOCOL;
        pc_up_resp_msg(&tr, "token response without a token");
    }
    /* the token server said no (or did not answer): report its answer, and
     * forget the challenge, so the next call asks the registry anonymously
     * first and follows whatever it says then (a realm that moved, or
     * authentication turned off) instead of going to this realm again */
    pthread_mutex_lock(&u->lock);
    if (strcmp(u->chal.realm, ch->realm) == 0)
        memset(&u->chal, 0, sizeof(u->chal));
    pthread_mutex_unlock(&u->lock);
    snprintf(msg, sizeof(msg), "token: %.500s", tr.error_message);
    pc_upstream_resp_clear(out);
    *out = tr;
    pc_up_resp_init(&tr);
    pc_up_resp_msg(out, msg);
    goto done;
oom:
    rc = oom(u);
done:
    curl_free(esc_service);
    curl_free(esc_scope);
    free(url);
    pc_up_secret_free(basic);
    pc_up_secret_free(tok);
    pc_up_xfer_clear(&x);
    pc_upstream_resp_clear(&tr);
    return rc;
}

/* The Authorization line for a first attempt, from what is already known:
 * the static token, a cached token, a token fetched now because the upstream
 * is known to want one, basic credentials for a Basic upstream, or none.
 * *failed is set when a token fetch failed (out describes it). */
static int auth_first(pc_upstream *u, CURL **hp, const char *scope, char **hdr, bool *failed,
                      pc_upstream_resp *out)
{
    int rc = 0;
    char *tok = NULL;
    pc_auth_challenge ch;
    *hdr = NULL;
    if (u->token) {
        *hdr = pc_up_auth_bearer(u->token);
        rc = *hdr ? 0 : PC_ENOMEM;
        goto done;
    }
    int got = pc_up_tokens_get(u->tokens, scope, &tok);
    pthread_mutex_lock(&u->lock);
    ch = u->chal;
    pthread_mutex_unlock(&u->lock);
    if (got == PC_ENOMEM) {
        rc = PC_ENOMEM;
    } else if (got == 0) {
        *hdr = pc_up_auth_bearer(tok);
        rc = *hdr ? 0 : PC_ENOMEM;
    } else if (strcmp(ch.scheme, "Bearer") == 0) {
        rc = token_fetch(u, hp, &ch, scope, hdr, out);
        *failed = rc == 0 && !*hdr;
    } else if (strcmp(ch.scheme, "Basic") == 0 && u->username) {
        *hdr = pc_up_auth_basic(u->username, u->password);
        rc = *hdr ? 0 : PC_ENOMEM;
    }
done:
    pc_up_secret_free(tok);
    if (rc == PC_ENOMEM)
        pc_error_set("upstream %s: out of memory", u->name);
    return rc;
}

/* Contract in upstream_int.h. The token cache is keyed by the whole scope
 * string, actions included, so a pull token is never used for a push. */
int pc_up_call(pc_upstream *u, const char *repo, const char *actions, const char *also_pull,
               const char *full_url, const char *path, bool head, const char *accept, pc_up_xfer *x)
{
    int rc = 0;
    CURL *h = NULL;
    char *url = NULL, *scope = NULL, *auth = NULL;
    bool failed = false;
    pc_auth_challenge ch;

    if ((rc = pc_up_pool_get(u, &h)) != 0)
        goto done;
    url = full_url ? strdup(full_url) : str_cat(u->url, "/v2/", repo, path, NULL);
    scope = also_pull ? str_cat("repository:", repo, ":", actions, " repository:", also_pull,
                                ":pull", NULL)
                      : str_cat("repository:", repo, ":", actions, NULL);
    if (!url || !scope) {
        rc = oom(u);
        goto done;
    }
    if (!x->no_auth && ((rc = auth_first(u, &h, scope, &auth, &failed, x->resp)) != 0 || failed))
        goto done;
    for (int attempt = 0;; attempt++) {
        if ((rc = pc_up_exchange(u, &h, url, head, accept, auth, x)) != 0)
            goto done;
        /* only the registry's own challenge counts, never a blob host's; a
         * body read from a stream cannot be sent twice */
        if (x->resp->status != 401 || attempt > 0 || u->token || x->crossed || !x->www_auth ||
            x->no_auth || x->reader || pc_auth_challenge_parse(x->www_auth, &ch) != 0)
            break;
        pthread_mutex_lock(&u->lock);
        u->chal = ch;
        u->chal.scope[0] = u->chal.error[0] = '\0';
        u->chal_seen = u->chal;
        pthread_mutex_unlock(&u->lock);
        pc_up_secret_free(auth);
        auth = NULL;
        if (strcmp(ch.scheme, "Bearer") == 0) {
            pc_up_tokens_drop(u->tokens, scope); /* the cached one (if any) was refused */
            if ((rc = token_fetch(u, &h, &ch, scope, &auth, x->resp)) != 0 || !auth)
                goto done;
        } else if (strcmp(ch.scheme, "Basic") == 0 && u->username) {
            if (!(auth = pc_up_auth_basic(u->username, u->password))) {
                rc = oom(u);
                goto done;
            }
        } else {
            break;
        }
    }
done:
    pc_up_pool_put(u, h);
    free(url);
    free(scope);
    pc_up_secret_free(auth);
    return rc;
}

static int invalid_name(const char *what)
{
    pc_error_set("upstream: invalid %s", what);
    return PC_EINVAL;
}

/* Contract (upstream.h), plus: out is overwritten (not freed) on entry, so
 * pass a cleared or fresh struct; PC_EINVAL for a repository name or
 * reference outside the distribution spec's grammar. */
int pc_upstream_manifest(pc_upstream *u, const char *repo, const char *reference, bool head,
                         pc_upstream_resp *out)
{
    int rc = 0;
    char *path = NULL;
    pc_up_xfer x = {.resp = out, .ok_max = PC_UP_MANIFEST_MAX, .what = "manifest"};
    pc_up_resp_init(out);
    if (!pc_up_path_part_ok(repo, "._-/") || !pc_up_path_part_ok(reference, "._-:+=") ||
        strchr(reference, '/')) {
        rc = invalid_name("repository name or reference");
        goto done;
    }
    if (!(path = str_cat("/manifests/", reference, NULL))) {
        rc = oom(u);
        goto done;
    }
    rc = pc_up_call(u, repo, "pull", NULL, NULL, path, head, UP_ACCEPT, &x);
done:
    free(path);
    pc_up_xfer_clear(&x);
    return rc;
}

/* Contract (upstream.h), plus: out is overwritten on entry; on_start is
 * called for a 2xx HEAD too; on_data may be NULL (the body is dropped). */
int pc_upstream_blob(pc_upstream *u, const char *repo, const pc_digest *d, bool head,
                     pc_upstream_start_cb on_start, pc_upstream_data_cb on_data, void *ctx,
                     pc_upstream_resp *out)
{
    int rc = 0;
    char *path = NULL;
    pc_up_xfer x = {
        .resp = out, .on_start = on_start, .on_data = on_data ? on_data : discard_data, .ctx = ctx};
    pc_up_resp_init(out);
    if (!pc_up_path_part_ok(repo, "._-/") || !d || !pc_up_path_part_ok(d->str, "._-:+=") ||
        strchr(d->str, '/')) {
        rc = invalid_name("repository name or digest");
        goto done;
    }
    if (!(path = str_cat("/blobs/", d->str, NULL))) {
        rc = oom(u);
        goto done;
    }
    rc = pc_up_call(u, repo, "pull", NULL, NULL, path, head, NULL, &x);
done:
    free(path);
    pc_up_xfer_clear(&x);
    return rc;
}

/* A path with an optional query: '/' then URL characters that need no
 * escaping (RFC 3986 unreserved, sub-delims, ':', '@', '/', '?', '%'), no
 * "." or ".." segment. */
static bool get_path_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > UP_PATH_MAX || p[0] != '/')
        return false;
    size_t qpos = strcspn(p, "?");
    for (size_t i = 0; i < n; i++)
        if (!ref_char_ok(p[i], "-._~!$&'()*+,;=:@/?%"))
            return false;
    for (size_t i = 0; i < qpos; i++) {
        if (p[i] != '/')
            continue;
        size_t len = strcspn(p + i + 1, "/?");
        if ((len == 1 && p[i + 1] == '.') || (len == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
            return false;
    }
    return true;
}

/* Contract (upstream.h), plus: out is overwritten on entry. */
int pc_upstream_get(pc_upstream *u, const char *path, size_t max_body, pc_upstream_resp *out)
{
    int rc = 0;
    CURL *h = NULL;
    char *url = NULL;
    pc_up_xfer x = {.resp = out, .ok_max = max_body ? max_body : UP_GET_DEFAULT_MAX};
    pc_up_resp_init(out);
    if (!get_path_ok(path)) {
        rc = invalid_name("path");
        goto done;
    }
    if (!(url = str_cat(u->url, path, NULL))) {
        rc = oom(u);
        goto done;
    }
    if ((rc = pc_up_pool_get(u, &h)) != 0)
        goto done;
    rc = pc_up_exchange(u, &h, url, false, NULL, NULL, &x);
done:
    pc_up_pool_put(u, h);
    free(url);
    pc_up_xfer_clear(&x);
    return rc;
}
