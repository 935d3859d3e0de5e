/*
 * upstream.c - the client for one upstream registry, on libcurl: its life
 * cycle, the pool of transfer handles, and what it knows about the
 * registry's authentication.
 *
 * The client is split by purpose: upstream_call.c holds the calls
 * (manifest, blob, plain GET) and the token flow, upstream_xfer.c one
 * exchange (curl options, the read timeout, redirects), upstream_resp.c how
 * a response is read, upstream_auth.c challenges, tokens and Authorization
 * values, upstream_class.c how a call ended.
 *
 * Connections: a pool of CURL easy handles per upstream, guarded by a mutex
 * and a condition variable that also caps the transfers in flight at
 * max_connections. curl_easy_reset() keeps a handle's connection cache, so
 * a handle taken from the pool reuses its open keep-alive connections (the
 * pool is a stack: sequential calls always get the same, warm handle).
 * A handle whose connection broke framing (bytes past a response, an
 * error) is replaced by a fresh one instead (upstream_xfer.c), so the
 * next request never reads a previous response's leftovers.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "upstream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UP_TOKENS_MAX 1024 /* cached scopes per upstream */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* strdup(s), or NULL for a NULL s. Sets *fail when a copy failed. */
static char *dup_opt(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

/* ---- the connection pool ---- */

int pc_up_pool_get(pc_upstream *u, CURL **out)
{
    int rc = 0;
    CURL *h = NULL;
    pthread_mutex_lock(&u->lock);
    while (u->n_busy >= u->max_conns)
        pthread_cond_wait(&u->freed, &u->lock);
    u->n_busy++;
    if (u->n_idle > 0)
        h = u->idle[--u->n_idle];
    pthread_mutex_unlock(&u->lock);
    if (h && pc_up_conn_dirty(h)) /* bytes arrived on the idle connection */
        pc_up_handle_renew(&h);
    if (!h && !(h = curl_easy_init())) {
        pthread_mutex_lock(&u->lock);
        u->n_busy--;
        pthread_cond_signal(&u->freed);
        pthread_mutex_unlock(&u->lock);
        pc_error_set("upstream %s: cannot create a transfer handle", u->name);
        rc = PC_ENOMEM;
        goto done;
    }
    *out = h;
done:
    return rc;
}

void pc_up_pool_put(pc_upstream *u, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&u->lock);
    u->idle[u->n_idle++] = h; /* n_idle + n_busy <= max_conns */
    u->n_busy--;
    pthread_cond_signal(&u->freed);
    pthread_mutex_unlock(&u->lock);
}

/* ---- life cycle ---- */

int pc_upstream_new(pc_upstream **out, const pc_upstream_opts *opts)
{
    int rc = 0;
    bool fail = false;
    pc_upstream *u = NULL;
    CURLU *cu = NULL;
    char *scheme = NULL;
    *out = NULL;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        pc_error_set("libcurl initialization failed");
        rc = PC_ERR;
        goto done;
    }
    if (!opts || !opts->url || !(cu = curl_url()) ||
        curl_url_set(cu, CURLUPART_URL, opts->url, 0) != CURLUE_OK ||
        curl_url_get(cu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        pc_error_set("upstream %s: invalid URL", opts && opts->name ? opts->name : "");
        rc = PC_EINVAL;
        goto done;
    }
    if (!(u = calloc(1, sizeof(*u)))) {
        rc = PC_ENOMEM;
        goto oom;
    }
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->freed, NULL);
    u->name = dup_opt(opts->name ? opts->name : opts->url, &fail);
    u->url = dup_opt(opts->url, &fail);
    if (opts->username && *opts->username) {
        u->username = dup_opt(opts->username, &fail);
        u->password = dup_opt(opts->password ? opts->password : "", &fail);
    }
    if (opts->token && *opts->token)
        u->token = dup_opt(opts->token, &fail);
    u->ca_file = dup_opt(opts->ca_file, &fail);
    u->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    long read_ms = opts->read_timeout_ms > 0 ? opts->read_timeout_ms : 30000;
    u->read_timeout_s = (read_ms + 999) / 1000;
    u->max_conns = opts->max_connections > 0 ? opts->max_connections : 16;
    u->insecure_tls = opts->insecure_tls;
    u->idle = calloc(u->max_conns, sizeof(*u->idle));
    if (fail || !u->idle || pc_up_tokens_new(&u->tokens, UP_TOKENS_MAX) != 0) {
        rc = PC_ENOMEM;
        goto oom;
    }
    size_t n = strlen(u->url);
    while (n > 0 && u->url[n - 1] == '/')
        u->url[--n] = '\0';
    *out = u;
    u = NULL;
    goto done;
oom:
    pc_error_set("upstream: out of memory");
done:
    pc_upstream_free(u);
    curl_free(scheme);
    curl_url_cleanup(cu);
    return rc;
}

void pc_upstream_free(pc_upstream *u)
{
    if (!u)
        return;
    for (unsigned i = 0; i < u->n_idle; i++)
        curl_easy_cleanup(u->idle[i]);
    pc_up_tokens_free(u->tokens);
    free(u->idle);
    free(u->name);
    free(u->url);
    free(u->username);
    pc_up_secret_free(u->password);
    pc_up_secret_free(u->token);
    free(u->ca_file);
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->freed);
    free(u);
}

const char *pc_upstream_name(const pc_upstream *u)
{
    return u->name;
}

const char *pc_upstream_url(const pc_upstream *u)
{
    return u->url;
}

void pc_upstream_auth_state(pc_upstream *u, pc_upstream_auth *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&u->lock);
    /* what was last asked for, even when a failed token request made the
     * next call start anonymously again */
    out->challenge = u->chal.scheme[0] ? u->chal : u->chal_seen;
    pthread_mutex_unlock(&u->lock);
    out->credentials = u->username != NULL;
    out->static_token = u->token != NULL;
}
