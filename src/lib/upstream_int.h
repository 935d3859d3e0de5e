/*
 * upstream_int.h - internals shared by the files of the upstream client:
 * upstream.c (life cycle, the handle pool), upstream_call.c (the calls and
 * the token flow), upstream_xfer.c (one exchange: curl options, redirects,
 * timeouts), upstream_resp.c (reading a response into a pc_upstream_resp),
 * upstream_auth.c (challenges, Authorization values, the token cache) and
 * upstream_class.c (how a call ended).
 * Not for other modules: they use upstream.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_UPSTREAM_INT_H
#define PC_UPSTREAM_INT_H

#include "upstream.h"

#include <pthread.h>
#include <time.h>

#include <curl/curl.h>

/* Bearer tokens by scope ("repository:library/nginx:pull"), each usable
 * until shortly before it expires. Thread-safe (its own mutex). */
typedef struct pc_up_tokens pc_up_tokens;

#define PC_UP_MANIFEST_MAX ((size_t)4 << 20) /* kept body of a manifest GET */
#define PC_UP_ERRBODY_MAX ((size_t)64 << 10) /* kept body of an error response */

struct pc_upstream {
    char *name;
    char *url; /* without a trailing '/' */
    char *username;
    char *password;
    char *token;
    char *ca_file;
    long connect_timeout_ms;
    long read_timeout_s;
    unsigned max_conns;
    bool insecure_tls;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed; /* a handle went back to the pool */
    CURL **idle;          /* max_conns slots, a stack */
    unsigned n_idle;
    unsigned n_busy;
    pc_auth_challenge chal;      /* the last challenge seen; scheme "" = none yet */
    pc_auth_challenge chal_seen; /* the same, kept when chal is forgotten (auth_state) */
    pc_up_tokens *tokens;        /* its own lock */
};

/* The state of one call's transfer, shared by the curl callbacks. Set
 * resp and the mode fields; the rest starts zeroed. location and www_auth
 * are freed by pc_up_xfer_clear(). */
typedef struct {
    pc_upstream_resp *resp;
    size_t ok_max;                 /* keep a 2xx body up to this size (no on_data) */
    const char *what;              /* what a too big kept body is, for the message */
    pc_upstream_start_cb on_start; /* streaming mode when on_data is set */
    pc_upstream_data_cb on_data;
    void *ctx;
    size_t body_cap;   /* allocated size of resp->body */
    int64_t received;  /* 2xx body bytes of the current hop */
    char *location;    /* of the current hop */
    char *www_auth;    /* of the current hop */
    bool headers_done; /* the current hop's header block ended */
    bool started;      /* on_start was called */
    bool aborted;      /* a caller callback asked to stop */
    bool too_big;      /* a kept 2xx body outgrew ok_max */
    bool crossed;      /* a redirect went to another origin */
    bool nomem;
    bool body_cut;           /* a redirect or error body outgrew PC_UP_ERRBODY_MAX: ended there */
    uint64_t other_bytes;    /* body bytes of a non-2xx response of the current hop */
    long read_timeout_ms;    /* no new byte for this long: give up */
    curl_off_t last_dl;      /* bytes seen at the last progress */
    struct timespec last_at; /* when they were seen */
    bool stalled;            /* ended by the read timeout */
    bool armed;              /* the body clock started (headers are in) */
    curl_off_t last_ul;      /* upload bytes seen at the last progress */

    /* Requests other than GET/HEAD (upstream_push.c). method NULL = GET or
     * HEAD. A body comes from body/body_len (rewound for every attempt) or
     * from reader (read once: such a request is not repeated after a 401
     * and is not redirected); body_size is its Content-Length. Requests
     * with a method never follow redirects. */
    const char *method;
    const char *const *headers; /* extra header lines, NULL-terminated */
    const char *body;
    size_t body_len, body_off;
    pc_upstream_reader reader;
    void *reader_ctx;
    int64_t body_size;
    uint64_t sent; /* body bytes handed to curl */
    bool no_auth;  /* never send Authorization (a URL on another origin) */
} pc_up_xfer;

/* --- upstream_call.c --- */

/* Run one request under /v2/<repo> (path appended) or to url (an
 * absolute URL, e.g. an upload Location), authenticating as needed for
 * the token scope "repository:<repo>:<actions>" plus, when also_pull is
 * set, "repository:<also_pull>:pull" (a mount source), retrying once
 * after a 401 challenge (not for reader bodies). Fills x->resp. 0 or
 * PC_ENOMEM. */
int pc_up_call(pc_upstream *u, const char *repo, const char *actions, const char *also_pull,
               const char *url, const char *path, bool head, const char *accept, pc_up_xfer *x);

/* Whether repo (or a reference) is safe to put into a URL path unescaped
 * (the spec's characters plus extra, no empty, "." or ".." segment). */
bool pc_up_path_part_ok(const char *s, const char *extra);

/* --- upstream.c: the handle pool --- */

/* A handle for one call, waiting while max_connections are busy. 0 or
 * PC_ENOMEM. Give it back with pc_up_pool_put() (NULL is fine). A pooled
 * handle whose connection went bad while it was idle (pc_up_conn_dirty)
 * is replaced by a fresh one first. */
int pc_up_pool_get(pc_upstream *u, CURL **out);
void pc_up_pool_put(pc_upstream *u, CURL *h);

/* --- upstream_xfer.c: one exchange --- */

/* Issue one request (GET, or HEAD when head) with the optional header
 * lines accept and auth, following redirects; auth is dropped from the
 * first hop to another origin on. Fills x->resp completely. Returns 0
 * (the outcome is in x->resp->cls) or PC_ENOMEM.
 *
 * Connections are never reused after a framing error: when a hop failed
 * (any curl error, our callbacks' aborts included) or its connection holds
 * bytes past the response (more than its Content-Length) or was closed,
 * *hp is replaced by a fresh handle, which drops every cached connection
 * of the old one. A GET or HEAD that fails on a reused connection with
 * leftovers instead of a response (HTTP/0.9, a weird reply) is sent once
 * more on a fresh handle. */
int pc_up_exchange(pc_upstream *u, CURL **hp, const char *url, bool head, const char *accept,
                   const char *auth, pc_up_xfer *x);

/* Whether the connection h used last is not fit for another request:
 * bytes wait on it that no response claimed, or the peer closed it. false
 * when h holds no open connection. */
bool pc_up_conn_dirty(CURL *h);

/* Replace *hp by a fresh handle (no cached connections). Keeps the old one
 * when a new one cannot be made. */
void pc_up_handle_renew(CURL **hp);

/* Free what the callbacks kept in x (not x->resp). */
void pc_up_xfer_clear(pc_up_xfer *x);

/* --- upstream_resp.c: reading a response --- */

/* An empty response: class PC_UP_PROTOCOL, no body, content_length -1. */
void pc_up_resp_init(pc_upstream_resp *r);

/* Set r->error_message. */
void pc_up_resp_msg(pc_upstream_resp *r, const char *msg);

/* Forget what the previous hop of x left in x and x->resp. */
void pc_up_hop_reset(pc_up_xfer *x);

/* curl's CURLOPT_HEADERFUNCTION and CURLOPT_WRITEFUNCTION, with a
 * pc_up_xfer as their data. */
size_t pc_up_on_header(char *buf, size_t size, size_t nitems, void *ud);
size_t pc_up_on_body(char *buf, size_t size, size_t nmemb, void *ud);

/* --- upstream_auth.c --- */

/* The bearer token cache (pc_up_tokens, declared above). */

/* An empty cache holding at most max scopes. *out is the caller's. 0 or
 * PC_ENOMEM. */
int pc_up_tokens_new(pc_up_tokens **out, size_t max);
void pc_up_tokens_free(pc_up_tokens *t);

/* A copy of the live token for scope into *token (caller's, free with
 * pc_up_secret_free()). Expired entries are dropped on the way. 0,
 * PC_ENOTFOUND or PC_ENOMEM. */
int pc_up_tokens_get(pc_up_tokens *t, const char *scope, char **token);

/* Forget scope's token (the upstream refused it). */
void pc_up_tokens_drop(pc_up_tokens *t, const char *scope);

/* Keep token for scope for usable_ms. Best effort: a full cache or a
 * failed allocation only means the token is not kept. */
void pc_up_tokens_put(pc_up_tokens *t, const char *scope, const char *token, int64_t usable_ms);

/* Parse a token server's answer ({"token" or "access_token", "expires_in"
 * (default 60 s), "issued_at"}). *token is the caller's (pc_up_secret_free);
 * *usable_ms is how long to cache it, 0 when it must not be cached (it is
 * about to expire, or was issued long ago). 0, PC_EINVAL (no token) or
 * PC_ENOMEM. */
int pc_up_token_parse(const char *body, size_t len, char **token, int64_t *usable_ms);

/* "Authorization: Bearer <token>" and "Authorization: Basic <base64>"
 * header lines, the caller's (pc_up_secret_free); NULL when out of memory. */
char *pc_up_auth_bearer(const char *token);
char *pc_up_auth_basic(const char *user, const char *pass);

/* The class of a final HTTP status, and of a failed curl_easy_perform()
 * result (a CURLcode) that no callback of ours caused. */
pc_up_class pc_up_class_of_status(long status);
pc_up_class pc_up_class_of_curl(int curl_code);

/* The first message of a registry error body
 * ({"errors":[{"code","message"}]}, the message or else the code), or a
 * token server's {"details"}, {"message"} or {"error"}, into dst; dst is
 * left alone when the body has none. */
void pc_up_error_message(const char *body, size_t len, char *dst, size_t size);

/* Wipe and free a string that may hold a secret; NULL is fine. */
void pc_up_secret_free(char *s);

#endif
