/*
 * server.c - the libmicrohttpd daemon: thread pool, the request lifecycle
 * (route, begin, body, finish), the request log line, and the response
 * helpers shared by the handlers.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "server.h"
#include "util.h"
#include "http.h"
#include "log.h"
#include "range.h"
#include "jobpool.h"
#include "metrics.h"
#include "tls.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

const char *pc_req_header(pc_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *pc_req_arg(pc_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int pc_req_queue(pc_req *req, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
    if (req->limit_set)
        pc_req_limit_headers(req, resp);
    req->answered = true;
    req->status = status;
    if (req->drain_first) {
        req->held = resp; /* queued when the body has been dropped (on_request) */
        return MHD_YES;
    }
    enum MHD_Result r = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Bodies up to this size are read and dropped before an early error is
 * sent (pc_req.drain_first); a larger one gets the answer at once. */
#define PC_DRAIN_MAX (16u * 1024 * 1024)

static bool drain_before_answer(pc_req *req)
{
    uint64_t n;
    const char *cl = pc_req_header(req, "Content-Length");
    const char *expect = pc_req_header(req, "Expect");
    return !expect && !pc_req_header(req, "Transfer-Encoding") && cl && pc_parse_u64(cl, &n) == 0 &&
           n > 0 && n <= PC_DRAIN_MAX;
}

static void add_headers(struct MHD_Response *resp, va_list ap)
{
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (v)
            MHD_add_response_header(resp, k, v);
    }
}

static int error_v(pc_req *req, unsigned status, const char *code, const char *message, va_list ap)
{
    json_t *doc = json_pack("{s:[{s:s, s:s, s:n}]}", "errors", "code", code, "message",
                            message ? message : "", "detail");
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body)
        return MHD_NO;
    size_t len = strlen(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    add_headers(resp, ap);
    req->resp_bytes = len;
    return pc_req_queue(req, status, resp);
}

int pc_req_error_hdr(pc_req *req, unsigned status, const char *code, const char *message, ...)
{
    va_list ap;
    va_start(ap, message);
    int r = error_v(req, status, code, message, ap);
    va_end(ap);
    return r;
}

static int error_plain(pc_req *req, unsigned status, const char *code, const char *message, ...)
{
    va_list ap;
    va_start(ap, message);
    int r = error_v(req, status, code, message, ap);
    va_end(ap);
    return r;
}

int pc_req_error(pc_req *req, unsigned status, const char *code, const char *message)
{
    return error_plain(req, status, code, message, NULL);
}

int pc_req_send(pc_req *req, unsigned status, const char *content_type, const void *body,
                size_t len, ...)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    va_list ap;
    va_start(ap, len);
    add_headers(resp, ap);
    va_end(ap);
    req->resp_bytes = len;
    return pc_req_queue(req, status, resp);
}

/* The one place result codes become HTTP statuses and registry codes. */
int pc_req_fail(pc_req *req, int rc)
{
    const char *msg = pc_error_last();
    bool manifest = req->kind == PC_ROUTE_MANIFEST;
    bool upload = req->kind == PC_ROUTE_UPLOAD || req->kind == PC_ROUTE_UPLOAD_START;
    switch (rc) {
    case PC_ENOTFOUND:
        if (manifest)
            return pc_req_error(req, 404, "MANIFEST_UNKNOWN", msg[0] ? msg : "manifest unknown");
        if (upload)
            return pc_req_error(req, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
        if (req->kind == PC_ROUTE_TAGS)
            return pc_req_error(req, 404, "NAME_UNKNOWN", "repository name not known");
        return pc_req_error(req, 404, "BLOB_UNKNOWN", "blob unknown to registry");
    case PC_EDIGEST:
        return pc_req_error(req, 400, "DIGEST_INVALID", msg[0] ? msg : "digest mismatch");
    case PC_EINVAL:
        if (manifest)
            return pc_req_error(req, 400, "MANIFEST_INVALID", msg);
        if (upload)
            return pc_req_error(req, 400, "BLOB_UPLOAD_INVALID", msg);
        return pc_req_error(req, 400, "DIGEST_INVALID", msg);
    case PC_ENOTSUP:
        return pc_req_error(req, 400, "DIGEST_INVALID", msg);
    case PC_ERANGE:
        return pc_req_error(req, 416, "BLOB_UPLOAD_INVALID", msg[0] ? msg : "invalid range");
    case PC_ETOOBIG:
        return pc_req_error(req, 413, manifest ? "MANIFEST_INVALID" : "SIZE_INVALID", msg);
    case PC_EEXISTS:
        return pc_req_error(req, 409, "BLOB_UPLOAD_INVALID", msg);
    case PC_ELIMIT: {
        /* a spent pull budget says when to come back */
        char retry[16] = "";
        if (req->limit_set && !req->limit.allowed)
            snprintf(retry, sizeof(retry), "%u", req->limit.retry_after);
        return pc_req_error_hdr(req, 429, "TOOMANYREQUESTS", msg, "Retry-After",
                                retry[0] ? retry : NULL, NULL);
    }
    case PC_ENOMEM:
        return pc_req_error(req, 503, "UNAVAILABLE", "out of memory");
    case PC_ENOSPC: { /* docs/CONFIG.md "Storage faults": 507, reads go on */
        char full[640];
        pc_log(PC_LOG_ERROR, "%s %s: storage full: %s", req->method, req->path, msg);
        snprintf(full, sizeof(full),
                 "the registry's storage is full (%s): reads still work; retry once space is "
                 "freed",
                 msg);
        return pc_req_error(req, 507, "UNAVAILABLE", full);
    }
    case PC_EROFS: {
        char ro[640];
        pc_log(PC_LOG_ERROR, "%s %s: storage read-only: %s", req->method, req->path, msg);
        snprintf(ro, sizeof(ro), "the registry's storage is read-only (%s): reads still work", msg);
        return pc_req_error(req, 503, "UNAVAILABLE", ro);
    }
    case PC_ECONFLICT: /* a tag another writer moved first: the client retries */
        return pc_req_error_hdr(req, 503, "UNAVAILABLE",
                                msg[0] ? msg : "changed concurrently; retry", "Retry-After", "1",
                                NULL);
    case PC_EAUTH: /* with the WWW-Authenticate challenge that fits (auth_token.c) */
        return pc_req_unauthorized(req);
    case PC_EDENIED:
        return pc_req_error(req, 403, "DENIED",
                            msg[0] ? msg : "requested access to the resource is denied");
    default:
        pc_log(PC_LOG_ERROR, "%s %s: %s", req->method, req->path, msg);
        return pc_req_error(req, 500, "UNKNOWN", "internal error; see the server log");
    }
}

static bool name_ok(pc_req *req)
{
    switch (req->kind) {
    case PC_ROUTE_NONE:
    case PC_ROUTE_BASE:
    case PC_ROUTE_CATALOG:
    case PC_ROUTE_METRICS:
    case PC_ROUTE_STATUS:
    case PC_ROUTE_TOKEN:
    case PC_ROUTE_HEALTHZ:
    case PC_ROUTE_READYZ:
    case PC_ROUTE_CACHE:
    case PC_ROUTE_HISTORY:
    case PC_ROUTE_UI:
        return true;
    default:
        return pc_ref_name_valid(req->name);
    }
}

static pc_req *req_new(pc_server *srv, struct MHD_Connection *conn, const char *url,
                       const char *method)
{
    pc_req *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->srv = srv;
    req->conn = conn;
    req->method = method;
    atomic_fetch_add(&srv->active, 1);
    clock_gettime(CLOCK_MONOTONIC, &req->t0);
    snprintf(req->path, sizeof(req->path), "%s", url);
    return req;
}

/* Decide where the request's repository lives (mirror.c has the rule),
 * with containerd's ns (NULL or "": none). Without a mirror every name is
 * local, except one that names a registry. */
static int route_repo(pc_req *req, const char *ns, pc_mirror_target *t)
{
    if (req->srv->mirror)
        return pc_mirror_route(req->srv->mirror, req->name, ns, t);
    memset(t, 0, sizeof(*t));
    t->upstream = -1;
    size_t first = strcspn(req->name, "/");
    if ((ns && *ns) || (req->name[first] && pc_ref_host_like(req->name, first))) {
        t->where = PC_MIRROR_FOREIGN;
        snprintf(t->foreign, sizeof(t->foreign), "%.*s", ns && *ns ? (int)strlen(ns) : (int)first,
                 ns && *ns ? ns : req->name);
        pc_error_set("registry %s is not mirrored by this pullcache", t->foreign);
        return PC_EUPSTREAM;
    }
    t->where = PC_MIRROR_LOCAL;
    return PC_ENOTFOUND;
}

/* Whether the request writes (what access control asks push or delete
 * for): an upload, or a method other than GET and HEAD. */
static bool writes(const pc_req *req)
{
    return req->kind == PC_ROUTE_UPLOAD || req->kind == PC_ROUTE_UPLOAD_START ||
           (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0);
}

static bool names_repo(pc_route_kind k)
{
    return k == PC_ROUTE_TAGS || k == PC_ROUTE_MANIFEST || k == PC_ROUTE_BLOB ||
           k == PC_ROUTE_UPLOAD_START || k == PC_ROUTE_UPLOAD || k == PC_ROUTE_REFERRERS;
}

static enum MHD_Result first_call(pc_req *req, const char *url)
{
    int rc = pc_route_parse(req, url);
    if (rc == PC_ENOTFOUND || req->kind == PC_ROUTE_NONE)
        return pc_req_error(req, 404, "NOT_FOUND", "no such API endpoint");
    /* A percent-encoded name ("team%2fapp") is no name: libmicrohttpd has
     * decoded the path, so only the raw one tells (edge.c). */
    if (req->raw_pct && names_repo(req->kind))
        return pc_req_error(req, 400, "NAME_INVALID",
                            "invalid repository name: percent-encoding in the path");
    int mhd;
    req->route_rc = PC_ENOTFOUND;
    req->route.where = PC_MIRROR_LOCAL;
    if (rc != PC_EINVAL && names_repo(req->kind) && pc_ref_name_valid(req->name)) {
        /* A name for a registry we do not mirror is nobody's here: 404 before
         * anything else (containerd then goes to the registry itself). */
        const char *ns = pc_req_arg(req, "ns");
        req->route_rc = route_repo(req, ns, &req->route);
        if (req->route_rc == PC_EUPSTREAM)
            return pc_req_error(req, 404, "NAME_UNKNOWN", pc_error_last());
        req->route_ns = ns && *ns;
        if (req->route_ns && writes(req))
            req->route_bare_rc = route_repo(req, NULL, &req->route_bare);
    } else if (req->kind == PC_ROUTE_CACHE && req->srv->mirror) {
        /* the cache admin API names its repository in repo= (h_cache.c) */
        const char *repo = pc_req_arg(req, "repo");
        if (repo && pc_ref_name_valid(repo))
            req->route_rc = pc_mirror_route(req->srv->mirror, repo, NULL, &req->route);
    }
    /* probes never authenticate (and learn nothing private) */
    bool probe = req->kind == PC_ROUTE_HEALTHZ || req->kind == PC_ROUTE_READYZ;
    if (!probe && !pc_req_authorize(req, &mhd)) /* who asks, and may they (sets account) */
        return mhd;
    if (req->srv->limiter && req->kind == PC_ROUTE_MANIFEST &&
        (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
        !pc_req_limit(req, &mhd))
        return mhd;
    if (rc == PC_EINVAL || !name_ok(req))
        return pc_req_error(req, 400, "NAME_INVALID", "invalid repository name");
    bool others = false;
    req->handler = pc_route_find(req->kind, req->method, &others);
    if (!req->handler) {
        char allow[64];
        pc_route_allow(req->kind, allow, sizeof(allow));
        return pc_req_error_hdr(req, 405, "UNSUPPORTED", "method not allowed for this endpoint",
                                "Allow", allow, NULL);
    }
    if (names_repo(req->kind) && req->route.where == PC_MIRROR_UPSTREAM &&
        strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        char msg[400];
        if (req->route.by_default)
            snprintf(msg, sizeof(msg),
                     "bare repository names here are a read-only mirror of %s "
                     "(cache.default_upstream); push under one of cache.local_prefixes",
                     req->route.name);
        else
            snprintf(msg, sizeof(msg), "%s is a read-only mirror of upstream %s", req->name,
                     req->route.name);
        return pc_req_error(req, 403, "DENIED", msg);
    }
    return req->handler->begin(req);
}

static void body_take(pc_req *req, const char *data, size_t size)
{
    req->body_bytes += size;
    switch (req->body) {
    case PC_BODY_BUFFER:
        if (req->too_big || req->len + size > req->max) {
            req->too_big = true;
            return;
        }
        if (req->len + size > req->cap) {
            size_t cap = req->cap ? req->cap : 16384;
            while (cap < req->len + size)
                cap *= 2;
            if (cap > req->max)
                cap = req->max;
            char *nb = realloc(req->buf, cap);
            if (!nb) {
                req->write_rc = PC_ENOMEM;
                return;
            }
            req->buf = nb;
            req->cap = cap;
        }
        memcpy(req->buf + req->len, data, size);
        req->len += size;
        return;
    case PC_BODY_UPLOAD:
        if (req->write_rc || !req->writer)
            return;
        if (pc_blob_up_size(req->writer) + size > req->srv->cfg->http->max_body_size) {
            /* http.max_body_size bounds a blob, not only one request: an
             * upload sent in many chunks stops there too (the chunk is
             * rewound and refused with 413) */
            pc_error_set("the upload would grow past %llu bytes (http.max_body_size)",
                         (unsigned long long)req->srv->cfg->http->max_body_size);
            req->write_rc = PC_ETOOBIG;
            return;
        }
        req->write_rc =
            pc_registry_upload_write(req->srv->reg, req->upload_id, req->writer, data, size);
        return;
    default:
        return;
    }
}

static bool method_has_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    pc_server *srv = cls;
    pc_req *req = *con_cls;
    if (!req) {
        req = req_new(srv, conn, url, method);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        pc_edge_head_done(req);
        int mhd;
        if (!pc_edge_head_ok(req, version, &mhd))
            return mhd;
        /* Methods with a body start now, so errors come before the body and
         * uploads stream. The others answer on the next call: a response
         * queued on the first call makes libmicrohttpd close the connection,
         * and keep-alive matters for manifest and blob GETs. */
        if (method_has_body(method)) {
            req->drain_first = drain_before_answer(req);
            enum MHD_Result r = first_call(req, url);
            req->drain_first = false;
            return r;
        }
        return MHD_YES;
    }
    if (req->async_finish) {
        if (!req->async_done)
            return MHD_YES; /* spurious call while the job runs */
        int (*fin)(pc_req *) = req->async_finish;
        req->async_finish = NULL;
        return fin(req);
    }
    if (!req->handler && !req->answered) {
        if (*upload_data_size) { /* a body where none belongs: ignore it */
            *upload_data_size = 0;
            return MHD_YES;
        }
        return first_call(req, url);
    }
    if (req->answered) {
        /* Answered early (an error before the body): drop the body, then
         * send a held answer. */
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (req->held) {
            struct MHD_Response *resp = req->held;
            req->held = NULL;
            enum MHD_Result r = MHD_queue_response(conn, req->status, resp);
            MHD_destroy_response(resp);
            return r;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (req->body_bytes + *upload_data_size > srv->cfg->http->max_body_size) {
            /* a chunked body over the cap (a declared one is refused on the
             * head); too late for an answer: drop the connection */
            pc_log(PC_LOG_WARN, "%s %s: body over http.max_body_size (%llu bytes): closed",
                   req->method, req->path, (unsigned long long)srv->cfg->http->max_body_size);
            req->status = 413;
            return MHD_NO;
        }
        body_take(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->handler && req->handler->finish)
        return req->handler->finish(req);
    return pc_req_error(req, 500, "UNKNOWN", "request not answered");
}

/* The query arguments the log may show: none that carries a secret. */
static bool query_loggable(const char *key)
{
    static const char *secret[] = {"password", "access_token",  "refresh_token",
                                   "token",    "client_secret", "code"};
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        if (strcasecmp(key, secret[i]) == 0)
            return false;
    return true;
}

typedef struct {
    char *buf;
    size_t size, len;
} query_text;

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    query_text *q = cls;
    int n = snprintf(q->buf + q->len, q->size - q->len, "%c%s=%s", q->len ? '&' : '?', key,
                     !query_loggable(key) ? "REDACTED"
                     : value              ? value
                                          : "");
    if (n > 0 && (size_t)n < q->size - q->len)
        q->len += (size_t)n;
    return MHD_YES;
}

/* The request's path and query string (?ns= routing must show in the
 * log), secrets replaced by REDACTED. */
static void log_target(pc_req *req, char *out, size_t size)
{
    char query[512] = "";
    query_text q = {query, sizeof(query), 0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_query, &q);
    snprintf(out, size, "%s%s", req->path, query);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    pc_server *srv = cls;
    pc_req *req = *con_cls;
    pc_edge_request_done(srv, conn); /* the connection waits for its next request */
    if (!req)
        return;
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
    /* A request that ended before its handler (the client dropped the
     * connection mid-body): what arrived stays in the session, as its
     * status then says, unless a write failed (then it is dropped). */
    if (req->upload_claimed)
        pc_registry_upload_release(srv->reg, req->upload_id, req->writer, !req->write_rc);
    else if (req->writer)
        pc_blob_up_close(req->writer);
    req->writer = NULL;
    if (req->upload_owned && req->upload_id[0]) /* a monolithic upload that never finished */
        pc_registry_upload_cancel(srv->reg, req->name, req->upload_id);

    char client[INET6_ADDRSTRLEN + 8] = "-";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        socklen_t sl =
            sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        getnameinfo(sa, sl, client, sizeof(client), NULL, 0, NI_NUMERICHOST);
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        (double)(t1.tv_sec - req->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - req->t0.tv_nsec) / 1e6;
    unsigned status = req->status;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_CLIENT_ABORT)
        status = status ? status : 499;
    if (toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT && !req->answered)
        status = 499;
    char logged[sizeof(req->path) + 512];
    log_target(req, logged, sizeof(logged));
    pc_log_request(client, req->method, logged, status,
                   req->answered && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? req->resp_bytes
                                                                               : 0,
                   ms, req->user);
    if (req->held) /* the client went away before its body ended */
        MHD_destroy_response(req->held);
    if (req->job && req->job_free)
        req->job_free(req->job);
    static const char *known[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};
    const char *method = "other";
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(req->method, known[i]) == 0)
            method = known[i];
    char labels[96];
    snprintf(labels, sizeof(labels), "kind=\"%s\",method=\"%s\",status=\"%u\"",
             pc_route_kind_str(req->kind), method, status);
    pc_metrics_add("pullcache_http_requests_total", labels, 1);
    if (req->kind == PC_ROUTE_BLOB && (status == 200 || status == 206) && req->answered &&
        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && req->resp_bytes)
        pc_metrics_add("pullcache_blob_bytes_sent_total", "", req->resp_bytes);
    if (req->cached_upstream > 0 && req->srv->mirror && (status == 200 || status == 206) &&
        req->answered && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && req->resp_bytes)
        pc_metrics_add("pullcache_cache_hit_bytes_total",
                       pc_mirror_labels(req->srv->mirror, req->cached_upstream - 1),
                       req->resp_bytes);
    snprintf(labels, sizeof(labels), "kind=\"%s\"", pc_route_kind_str(req->kind));
    pc_metrics_observe("pullcache_http_request_duration_seconds", labels, ms / 1e3);
    free(req->buf);
    free(req);
}

struct job_start {
    pc_req *req;
    void (*work)(pc_req *req);
};

/* A request's work, on a worker of the request pool. */
static void job_main(void *arg, void *worker)
{
    struct job_start *js = arg;
    pc_req *req = js->req;
    pc_server *srv = req->srv;
    js->work(req);
    free(js);
    __atomic_store_n(&req->async_done, true, __ATOMIC_RELEASE);
    MHD_resume_connection(req->conn);
    pthread_mutex_lock(&srv->jobs_lock);
    if (--srv->jobs == 0)
        pthread_cond_broadcast(&srv->jobs_idle);
    pthread_mutex_unlock(&srv->jobs_lock);
}

int pc_req_async(pc_req *req, void (*work)(pc_req *req), int (*finish)(pc_req *req))
{
    pc_server *srv = req->srv;
    struct job_start *js = malloc(sizeof(*js));
    if (!js)
        return pc_req_fail(req, PC_ENOMEM);
    js->req = req;
    js->work = work;
    req->async_finish = finish;
    req->async_done = false;
    pthread_mutex_lock(&srv->jobs_lock);
    srv->jobs++;
    pthread_mutex_unlock(&srv->jobs_lock);
    MHD_suspend_connection(req->conn);
    if (!srv->pool || pc_jobpool_submit(srv->pool, job_main, NULL, js) != 0) {
        /* run it here: slower for everyone on this thread, but answered */
        job_main(js, NULL);
    }
    return MHD_YES;
}

int pc_req_suspend(pc_req *req, int (*finish)(pc_req *req))
{
    req->async_finish = finish;
    req->async_done = false;
    MHD_suspend_connection(req->conn);
    return MHD_YES;
}

void pc_req_wake(pc_req *req)
{
    __atomic_store_n(&req->async_done, true, __ATOMIC_RELEASE);
    MHD_resume_connection(req->conn);
}

int pc_req_mirror_route(pc_req *req, pc_mirror_target *t)
{
    if (req->route_rc == PC_EINVAL)
        pc_error_set("invalid repository name for upstream %s",
                     req->route.name ? req->route.name : "?");
    *t = req->route;
    return req->route_rc;
}

/* Percent-decoding of paths and query arguments, in place. "%00" is left
 * encoded: a NUL would cut the string short and make a request act on a
 * shorter path than the one sent; kept as "%00" it fails every name, tag,
 * digest and id check instead. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = pc_util_hexval(r[1])) >= 0 && (lo = pc_util_hexval(r[2])) >= 0 &&
            (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    pc_log(PC_LOG_DEBUG, "http: %s", msg);
}

/* http.tls into *out (NULL when plain HTTP). 0 or PC_EINVAL with a message. */
static int tls_from_config(const pc_config *cfg, pc_tls **out)
{
    const pc_config_tls *tc = cfg->http->tls;
    *out = NULL;
    if (!tc || !tc->cert)
        return 0;
    pc_tls_opts to = {tc->cert, tc->key, tc->client_ca, PC_TLS_CLIENT_NONE};
    if (!tc->client_auth && tc->client_ca)
        to.client_auth = PC_TLS_CLIENT_REQUIRE; /* a client CA alone means require */
    else if (tc->client_auth && pc_tls_client_auth_parse(tc->client_auth, &to.client_auth))
        return PC_EINVAL;
    return pc_tls_new(out, &to);
}

int pc_server_tls_check(const pc_config *cfg)
{
    pc_tls *tls = NULL;
    int rc = tls_from_config(cfg, &tls);
    pc_tls_free(tls);
    return rc;
}

/* The answer-time histogram, every kind present from the start. Bounds in
 * seconds: sub-millisecond cache hits to minutes-long blob transfers. */
static void declare_latency(void)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
    static const pc_route_kind kinds[] = {PC_ROUTE_BASE,      PC_ROUTE_CATALOG, PC_ROUTE_TAGS,
                                          PC_ROUTE_MANIFEST,  PC_ROUTE_BLOB,    PC_ROUTE_UPLOAD,
                                          PC_ROUTE_REFERRERS, PC_ROUTE_TOKEN};
    char labels[64];
    pc_metrics_declare_histogram("pullcache_http_request_duration_seconds",
                                 "Time from a request's arrival to the end of its answer, by kind.",
                                 bounds, sizeof(bounds) / sizeof(bounds[0]));
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        snprintf(labels, sizeof(labels), "kind=\"%s\"", pc_route_kind_str(kinds[i]));
        pc_metrics_hist_zero("pullcache_http_request_duration_seconds", labels);
    }
}

int pc_server_start(pc_server **out, const pc_config *cfg, pc_registry *reg, pc_mirror *mirror,
                    pc_limiter *limiter)
{
    char host[256];
    unsigned port;
    struct addrinfo hints = {0}, *ai = NULL;
    int rc = pc_config_parse_listen(cfg->http->listen, host, sizeof(host), &port);
    if (rc)
        return rc;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0) {
        pc_error_set("cannot resolve listen address %s: %s", host, gai_strerror(gai));
        return PC_EINVAL;
    }

    pc_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        freeaddrinfo(ai);
        return PC_ENOMEM;
    }
    srv->cfg = cfg;
    srv->reg = reg;
    srv->mirror = mirror;
    srv->limiter = limiter;
    clock_gettime(CLOCK_MONOTONIC, &srv->started);
    pthread_mutex_init(&srv->jobs_lock, NULL);
    pthread_cond_init(&srv->jobs_idle, NULL);
    declare_latency();
    pc_metrics_declare("pullcache_meta_connections_opened_total", PC_METRIC_COUNTER,
                       "Meta-store connections opened (SQLite: one per thread that uses the "
                       "store, for the thread's life).");
    pc_metrics_declare("pullcache_meta_connections_open", PC_METRIC_GAUGE,
                       "Meta-store connections open now.");
    pc_metrics_declare("pullcache_blob_bytes_sent_total", PC_METRIC_COUNTER,
                       "Bytes of blob bodies this process sent to clients (completed responses; "
                       "not what a redirect sent them to fetch from the object store).");
    pc_metrics_declare("pullcache_blob_redirects_total", PC_METRIC_COUNTER,
                       "Blob GETs answered with 307 to the object store's presigned URL "
                       "(storage.blobs.redirect).");
    pc_jobpool_opts jo = {.workers =
                              cfg->http->workers ? cfg->http->workers : PC_CONFIG_WORKERS_DEFAULT,
                          .name = "pc-job"};
    if ((rc = pc_jobpool_new(&srv->pool, &jo)))
        goto fail;

    struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
    if ((rc = tls_from_config(cfg, &srv->tls)))
        goto fail;
    if ((rc = pc_server_auth_init(srv, cfg))) {
        pc_tls_free(srv->tls);
        goto fail;
    }
    pc_mirror_set_strict(mirror, srv->authn != NULL); /* no private blob under a mirrored name */
    if (srv->tls)
        pc_tls_mhd_options(srv->tls, tls_opts, 4);

    unsigned threads = cfg->http->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     (srv->tls ? MHD_USE_TLS : 0);
    if (ai->ai_family == AF_INET6) {
        /* "[::]" is every address, IPv4 ones too (clients then appear as
         * ::ffff:a.b.c.d); a specific IPv6 address is only that. */
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ai->ai_addr;
        bool any = memcmp(&a6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0;
        flags |= any ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    }
    /* the connection cap, header deadline and raw-path check (edge.c); its
     * connection notifications call tls.c's, which is taken out of the
     * TLS options (libmicrohttpd keeps one) */
    MHD_NotifyConnectionCallback chain = NULL;
    void *chain_cls = NULL;
    for (size_t i = 0; tls_opts[i].option != MHD_OPTION_END; i++)
        if (tls_opts[i].option == MHD_OPTION_NOTIFY_CONNECTION) {
            chain = (MHD_NotifyConnectionCallback)tls_opts[i].value;
            chain_cls = tls_opts[i].ptr_value;
            for (size_t j = i; tls_opts[j].option != MHD_OPTION_END; j++)
                tls_opts[j] = tls_opts[j + 1];
            break;
        }
    if ((rc = pc_edge_start(srv, chain, chain_cls))) {
        pc_server_auth_free(srv);
        pc_tls_free(srv->tls);
        goto fail;
    }
    srv->mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)cfg->http->timeout, MHD_OPTION_CONNECTION_LIMIT,
        pc_edge_mhd_limit(srv, threads), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)cfg->http->max_connections_per_ip, MHD_OPTION_NOTIFY_CONNECTION,
        pc_edge_notify, srv, MHD_OPTION_URI_LOG_CALLBACK, pc_edge_uri, srv,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_UNESCAPE_CALLBACK, unescape, srv,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->mhd) {
        pc_error_set("cannot listen on %s (address in use or not available?)", cfg->http->listen);
        pc_edge_free(srv);
        pc_server_auth_free(srv);
        pc_tls_free(srv->tls);
        pc_jobpool_free(srv->pool, PC_JOBPOOL_CANCEL); /* nothing was queued yet */
        free(srv);
        return PC_ERR;
    }
    if (srv->tls) {
        char desc[600];
        pc_tls_describe(srv->tls, desc, sizeof(desc));
        pc_log(PC_LOG_INFO, "https: %s", desc);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : port;
    *out = srv;
    return 0;
fail:
    freeaddrinfo(ai);
    pc_jobpool_free(srv->pool, PC_JOBPOOL_CANCEL); /* nothing was queued yet */
    pthread_mutex_destroy(&srv->jobs_lock);
    pthread_cond_destroy(&srv->jobs_idle);
    free(srv);
    return rc ? rc : PC_EINVAL;
}

int pc_server_tls_reload(pc_server *srv)
{
    if (!srv->tls)
        return PC_ENOTFOUND;
    int rc = pc_tls_reload(srv->tls);
    if (rc == 0) {
        char desc[600];
        pc_tls_describe(srv->tls, desc, sizeof(desc));
        pc_log(PC_LOG_INFO, "https: reloaded: %s", desc);
    }
    return rc;
}

unsigned pc_server_port(const pc_server *srv)
{
    return srv->port;
}

/* How long a stop waits for the requests in flight. */
#define PC_DRAIN_MS 10000

void pc_server_stop(pc_server *srv)
{
    if (!srv)
        return;
    /* Stop accepting at once: closing the listening socket makes new
     * connections fail instead of waiting in the backlog. Then let the
     * requests in flight finish, for a bounded time. */
    MHD_socket ls = MHD_quiesce_daemon(srv->mhd);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    int left = 0;
    for (int i = 0; i < PC_DRAIN_MS / 20 && (left = atomic_load(&srv->active)) > 0; i++)
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    if (left > 0)
        pc_log(PC_LOG_WARN, "stopping with %d request(s) still in flight after %d s", left,
               PC_DRAIN_MS / 1000);
    /* fetches end (waking suspended readers, and their pool joined), then
     * the request jobs drain: the queued ones still run (each answers its
     * client; with the mirror stopped they end at once) and every worker
     * is joined, so no job outlives the stores */
    pc_mirror_stop(srv->mirror);
    pc_jobpool_stop(srv->pool, PC_JOBPOOL_FINISH); /* a late request's job runs inline */
    MHD_stop_daemon(srv->mhd);
    pc_jobpool_free(srv->pool, PC_JOBPOOL_FINISH);
    /* after the daemon: it notified every connection closed */
    pc_edge_free(srv);
    pc_tls_free(srv->tls); /* after the daemon: its connections held the sets */
    pc_server_auth_free(srv);
    pthread_mutex_destroy(&srv->jobs_lock);
    pthread_cond_destroy(&srv->jobs_idle);
    free(srv);
}
