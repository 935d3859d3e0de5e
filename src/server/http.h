/*
 * http.h - what the server's modules share: the per-request state, the
 * route table entry, and response helpers. Internal to src/server.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_HTTP_H
#define PC_HTTP_H

#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <microhttpd.h>

#include "pc.h"
#include "config.h"
#include "limiter.h"
#include "log.h"
#include "ref.h"
#include "mirror.h"
#include "registry.h"

typedef enum {
    PC_ROUTE_NONE = 0,
    PC_ROUTE_BASE,         /* /v2/ */
    PC_ROUTE_CATALOG,      /* /v2/_catalog */
    PC_ROUTE_TAGS,         /* /v2/<name>/tags/list */
    PC_ROUTE_MANIFEST,     /* /v2/<name>/manifests/<ref> */
    PC_ROUTE_BLOB,         /* /v2/<name>/blobs/<digest> */
    PC_ROUTE_UPLOAD_START, /* /v2/<name>/blobs/uploads/ */
    PC_ROUTE_UPLOAD,       /* /v2/<name>/blobs/uploads/<id> */
    PC_ROUTE_REFERRERS,    /* /v2/<name>/referrers/<digest> */
    PC_ROUTE_METRICS,      /* /metrics */
    PC_ROUTE_STATUS,       /* /_pullcache/status */
    PC_ROUTE_TOKEN,        /* /token (auth_token.c) */
    PC_ROUTE_HEALTHZ,      /* /healthz (h_health.c), never behind authentication */
    PC_ROUTE_READYZ,       /* /readyz */
    PC_ROUTE_CACHE,        /* /_pullcache/cache (h_cache.c), admins only */
    PC_ROUTE_HISTORY,      /* /_pullcache/history (h_status.c), admins only */
    PC_ROUTE_UI,           /* /_pullcache/ and its files (h_ui.c), admins only */
} pc_route_kind;

typedef enum { PC_BODY_NONE = 0, PC_BODY_BUFFER, PC_BODY_UPLOAD, PC_BODY_DISCARD } pc_body_mode;

struct pc_server {
    struct MHD_Daemon *mhd;
    const pc_config *cfg;
    pc_registry *reg;
    pc_mirror *mirror;      /* NULL: no pull-through cache */
    pc_limiter *limiter;    /* NULL: no pull limits for our clients */
    struct pc_tls *tls;     /* NULL: plain HTTP (tls.h) */
    struct pc_authn *authn; /* NULL: no users, no access control (auth_setup.c, auth_int.h) */
    struct pc_edge *edge;   /* connection deadlines and the connection cap (edge.c) */
    unsigned port;
    struct timespec started; /* CLOCK_MONOTONIC, for uptime */
    /* The request job pool (pc_req_async): http.workers threads, each with
     * its meta-store connection for its life. Upstream blob fetches have a
     * pool of their own (mirror_fetch.c), and a request waiting for a fetch to
     * start is suspended without a worker (pc_req_suspend): no job ever
     * waits for a job that may still be queued behind it. */
    struct pc_jobpool *pool;
    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_idle;
    int jobs;
    atomic_int active; /* requests begun and not yet completed (drained at stop) */
};

typedef struct pc_req pc_req;

/* A handler: begin runs when the headers are in (it may answer at once or
 * choose how to take the body); finish runs when the whole body is in. */
typedef struct {
    pc_route_kind kind;
    const char *method;
    int (*begin)(pc_req *req);
    int (*finish)(pc_req *req);
} pc_handler;

struct pc_req {
    struct pc_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char path[2048]; /* as received (decoded by MHD), for the log */
    bool raw_pct;    /* the raw path has %-encoding before its last '/' (edge.c) */
    struct timespec t0;

    pc_route_kind kind;
    char name[PC_NAME_MAX + 1];
    char ref[256]; /* tag, digest or upload id */
    const pc_handler *handler;
    /* Routing, decided once per request in server.c (first_call), read by
     * access control (auth_access.c) and the handlers (pc_req_mirror_route):
     * pc_mirror_route's answer for name with ns= (for the cache admin API,
     * /_pullcache/cache, for its repo= argument). ns= moves reads only: a
     * write that carries it goes where the name alone routes, route_bare
     * (set, with route_ns, only for such a write). */
    int route_rc;
    pc_mirror_target route;
    bool route_ns; /* route was decided by a non-empty ns= */
    int route_bare_rc;
    pc_mirror_target route_bare;

    /* who asks: the authenticated account, NULL for anonymous (set by
     * authentication, issue #5); the pull budget that applied */
    const char *account;
    char user[256];         /* the authenticated user ("" anonymous); account points here */
    bool no_mount;          /* access control: a cross-repository mount may not read its source */
    const char *auth_error; /* the 401 challenge's error= (RFC 6750), NULL for none */
    int cached_upstream;    /* 1 + the upstream whose cached content this answer serves
                             * (pullcache_cache_hit_bytes_total), 0 none */
    bool limit_set;         /* manifest GET/HEAD with limits on: the ratelimit headers go out */
    pc_limit_result limit;
    char limit_source[PC_LIMITER_KEY_MAX + 1];

    /* body */
    pc_body_mode body;
    char *buf;
    size_t len, cap, max;
    bool too_big;
    pc_blob_up *writer;
    char upload_id[72];
    bool upload_owned; /* session created by this request: cancel on abort */
    bool upload_claimed;
    uint64_t upload_base; /* the session's size before this request's body */
    int write_rc;
    uint64_t body_bytes;
    bool has_range;
    uint64_t range_start, range_end;

    /* work off the HTTP threads (upstream calls): the connection is
     * suspended while `work` runs on a request pool worker, or until
     * pc_req_wake (pc_req_suspend); then `async_finish` answers. */
    void *job;
    void (*job_free)(void *job);
    int (*async_finish)(pc_req *req);
    volatile bool async_done;

    /* response */
    bool answered;
    unsigned status;
    uint64_t resp_bytes;
    /* An error answered on the head of a request whose small declared body
     * the client sends without waiting (no Expect: 100-continue) is held
     * until that body has been read and dropped: answered at once, the
     * client would still be sending into a closed connection and see a
     * reset instead of the answer (server.c pc_req_queue). */
    bool drain_first;
    struct MHD_Response *held;
};

/* Look up a request header (NULL when absent). */
const char *pc_req_header(pc_req *req, const char *name);
/* Look up a query argument (NULL when absent). */
const char *pc_req_arg(pc_req *req, const char *name);

/* Queue resp with status; takes the response (destroys its reference).
 * Returns MHD_YES/MHD_NO as an int for the access handler. */
int pc_req_queue(pc_req *req, unsigned status, struct MHD_Response *resp);

/* Answer with a registry error document {"errors":[{code,message,detail}]}. */
int pc_req_error(pc_req *req, unsigned status, const char *code, const char *message);

/* Same, with extra headers as name/value pairs, NULL-terminated. */
int pc_req_error_hdr(pc_req *req, unsigned status, const char *code, const char *message, ...);

/* Answer a PC_E* result from storage or the registry: maps it to the
 * status and registry code that fit the route (the single place codes
 * become HTTP). */
int pc_req_fail(pc_req *req, int rc);

/* Answer with bytes (copied) and a content type; headers may add more as
 * name/value pairs, NULL-terminated. */
int pc_req_send(pc_req *req, unsigned status, const char *content_type, const void *body,
                size_t len, ...);

/* Run work(req) on a worker of the request job pool (http.workers) with
 * the connection suspended, then finish(req) on the HTTP thread to answer.
 * Returns the MHD result. work must not wait for another request job. */
int pc_req_async(pc_req *req, void (*work)(pc_req *req), int (*finish)(pc_req *req));

/* Suspend the connection, holding no thread, until pc_req_wake(req) (from
 * any thread, once); then finish(req) answers on the HTTP thread. For
 * waits that something else ends (a blob fetch starting). Returns the MHD
 * result. */
int pc_req_suspend(pc_req *req, int (*finish)(pc_req *req));
void pc_req_wake(pc_req *req);

/* Limits (limits.c). For a manifest GET or HEAD when limits are on: take
 * from the client's pull budget (a GET spends one) at the limiter's clock.
 * true: go on (also when the limiter's table is full: served uncounted,
 * warned about at most once a minute); false: answered (429), *mhd is the
 * MHD result. */
bool pc_req_limit(pc_req *req, int *mhd);
/* Whether a pc_limiter_take result lets the request be served: every
 * result but PC_ELIMIT (a spent budget) does. */
bool pc_limit_serves(int rc);
/* The ratelimit-limit, ratelimit-remaining and docker-ratelimit-source
 * headers of a request that went through pc_req_limit (pc_req_queue adds
 * them to every response). */
void pc_req_limit_headers(pc_req *req, struct MHD_Response *resp);

/* Where the request's repository lives (decided once, before the handler
 * runs): 0 mirrored (*t), PC_ENOTFOUND local, PC_EINVAL invalid name.
 * Requests naming a registry that is not configured never reach a
 * handler. */
int pc_req_mirror_route(pc_req *req, pc_mirror_target *t);

/* Answer with a stored manifest (Warning header when given). */
int pc_send_manifest(pc_req *req, const pc_manifest_rec *m, const char *warning);
/* Answer with an open blob (Range honoured); takes r. */
int pc_send_blob(pc_req *req, const pc_digest *d, pc_blob_rd *r);
/* Blobs that hashed right whole in this process (verified.c), by digest,
 * size and the identity of the stored version (a file's, or a reader's
 * ident: S3's ETag). ident NULL or empty: never remembered. */
bool pc_verified_has(const pc_digest *d, const char *ident, uint64_t size);
void pc_verified_add(const pc_digest *d, const char *ident, uint64_t size);
/* The identity of open file fd (device, inode, modification time) into
 * buf, its size into *size. 0, PC_ERR, PC_ETOOBIG. */
int pc_verified_file_ident(int fd, char *buf, size_t len, uint64_t *size);

/* Answer a GET/HEAD of stored blob d in repo: pc_registry_blob_open, then
 * pc_send_blob; on a remote backend (S3) the open (a GET) runs on a
 * request worker with the connection suspended. */
int pc_send_stored_blob(pc_req *req, const char *repo, const pc_digest *d);

/* Answer a blob GET (a Range one too) of d in repo with 307 to the backend's
 * URL for it (storage.blobs.redirect), after pc_registry_blob_url's checks.
 * true when answered (*mhd the MHD result: the 307 or an error); false for
 * a HEAD or a backend without URLs: serve the bytes. */
bool pc_send_blob_redirect(pc_req *req, const char *repo, const pc_digest *d, int *mhd);

/* Mirrored requests (h_mirror.c). */
int pc_h_mirror_manifest(pc_req *req, const pc_mirror_target *t);
int pc_h_mirror_blob(pc_req *req, const pc_mirror_target *t, const pc_digest *d);
int pc_h_metrics(pc_req *req);

/* GET/HEAD /_pullcache/status (h_status.c). */
int pc_h_status(pc_req *req);
/* GET /_pullcache/history[?since=T]: the status page's samples (h_status.c). */
int pc_h_history(pc_req *req);
/* GET /_pullcache/ (the page) and /_pullcache/ui/<file> (h_ui.c). */
int pc_h_ui(pc_req *req);
/* A mirrored repository's tag list (the upstream's, paged with n/last). */
int pc_h_mirror_tags(pc_req *req, const pc_mirror_target *t, long n, const char *last);
/* A mirrored repository's referrers (the upstream's API or tag schema). */
int pc_h_mirror_referrers(pc_req *req, const pc_mirror_target *t, const pc_digest *d,
                          const char *artifact_type);
int pc_h_healthz(pc_req *req);
int pc_h_cache(pc_req *req);
int pc_h_readyz(pc_req *req);

/* Authentication and access control (auth_*.c). Before a request's
 * handler: who asks (Basic, Bearer) and whether the policy lets them.
 * true: go on; false: answered (401, 403, 429), *mhd is the MHD result. */
bool pc_req_authorize(pc_req *req, int *mhd);
/* The 401 UNAUTHORIZED answer with the WWW-Authenticate challenge that
 * fits req (pc_req_fail's PC_EAUTH). */
int pc_req_unauthorized(pc_req *req);
/* Whether the requester may pull repository name (catalog filter); true
 * without access control. */
bool pc_req_may_pull(pc_req *req, const char *name);
/* Build (NULL when no users are configured) and free srv->authn. 0 or
 * PC_EINVAL with a message (a weak htpasswd, a bad policy or key). */
int pc_server_auth_init(struct pc_server *srv, const pc_config *cfg);
void pc_server_auth_free(struct pc_server *srv);
/* GET /token: the token service; POST /token: its OAuth2 password grant. */
int pc_h_token(pc_req *req);
int pc_h_token_post_begin(pc_req *req);
int pc_h_token_post_finish(pc_req *req);
/* The value of key in an application/x-www-form-urlencoded body of len
 * bytes ('+' and %XX decoded; %00 refused) into out (size bytes). 0,
 * PC_ENOTFOUND, PC_EINVAL (bad encoding) or PC_ETOOBIG. */
int pc_form_value(const char *body, size_t len, const char *key, char *out, size_t size);

/* The HTTP edge (edge.c): per-connection deadlines and the cap. Start
 * before the daemon (0 or PC_E* with a message), free after it stopped.
 * chain (NULL for none): another MHD_OPTION_NOTIFY_CONNECTION callback
 * (tls.c's) that pc_edge_notify calls; it owns the socket context. */
int pc_edge_start(struct pc_server *srv, MHD_NotifyConnectionCallback chain, void *chain_cls);
void pc_edge_free(struct pc_server *srv);
/* The MHD_OPTION_CONNECTION_LIMIT to give a pool of threads (the cap on
 * open connections is kept by edge.c, not by libmicrohttpd). */
unsigned pc_edge_mhd_limit(const struct pc_server *srv, unsigned threads);
/* MHD_OPTION_NOTIFY_CONNECTION and MHD_OPTION_URI_LOG_CALLBACK (cls: srv). */
void pc_edge_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode code);
void *pc_edge_uri(void *cls, const char *uri, struct MHD_Connection *conn);
/* A request's head is complete (its first access handler call; sets
 * req->raw_pct) / a request is over (the connection waits for the next). */
void pc_edge_head_done(pc_req *req);
void pc_edge_request_done(struct pc_server *srv, struct MHD_Connection *conn);
/* Check a complete request head against smuggling shapes: header names
 * that are not tokens, CR/LF/NUL in values, lines not ended by CRLF,
 * ambiguous framing, a Transfer-Encoding other than chunked, a
 * Content-Length over http.max_body_size. true: go on; false: answered
 * (400, 413, 501; the connection closes), *mhd is the MHD result. */
bool pc_edge_head_ok(pc_req *req, const char *version, int *mhd);

/* Route table and parsing (routes.c). */
int pc_route_parse(pc_req *req, const char *url);
/* A route kind's name for metrics ("manifest", "blob", "upload", ...). */
const char *pc_route_kind_str(pc_route_kind k);

const pc_handler *pc_route_find(pc_route_kind kind, const char *method, bool *other_methods);
/* The methods a route answers, as an Allow header value ("GET, HEAD"). */
void pc_route_allow(pc_route_kind kind, char *buf, size_t size);

/* Handlers (h_*.c). */
int pc_h_base(pc_req *req);
int pc_h_catalog(pc_req *req);
int pc_h_tags(pc_req *req);
int pc_h_referrers(pc_req *req);
int pc_h_blob_get(pc_req *req);
int pc_h_blob_delete(pc_req *req);
int pc_h_upload_start_begin(pc_req *req);
int pc_h_upload_start_finish(pc_req *req);
int pc_h_upload_patch_begin(pc_req *req);
int pc_h_upload_patch_finish(pc_req *req);
int pc_h_upload_put_begin(pc_req *req);
int pc_h_upload_put_finish(pc_req *req);
int pc_h_upload_get(pc_req *req);
int pc_h_upload_delete(pc_req *req);
int pc_h_manifest_get(pc_req *req);
int pc_h_manifest_put_begin(pc_req *req);
int pc_h_manifest_put_finish(pc_req *req);
int pc_h_manifest_delete(pc_req *req);

#endif
