/*
 * h_mirror.c - answering mirrored repositories: manifests and blobs from
 * the cache when it can, otherwise through a request job (http.workers)
 * that asks the upstream (the HTTP threads never wait on the network);
 * blobs streamed to every client of one coalesced fetch as bytes arrive,
 * a client waiting for its fetch to start suspended without a thread; and
 * /metrics (counters and the upstreams' pull budgets).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "metrics.h"
#include "range.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/socket.h>

typedef struct {
    pc_mirror_target t;
    pc_mirror_outcome out;
    pc_manifest_rec rec;
    pc_digest d;
    int rc;
    int64_t size;
    pc_fetch *fetch;         /* held until handed to the response */
    pc_fetch_waiter started; /* a suspended request waiting for fetch to start */
} mjob;

static void mjob_free(void *p)
{
    mjob *j = p;
    pc_fetch_release(j->fetch);
    free(j);
}

static mjob *mjob_new(pc_req *req, const pc_mirror_target *t)
{
    mjob *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->t = *t;
    req->job = j;
    req->job_free = mjob_free;
    return j;
}

static int send_outcome(pc_req *req, const pc_mirror_outcome *o)
{
    return pc_req_error_hdr(req, o->status ? o->status : 502, o->code[0] ? o->code : "UNAVAILABLE",
                            o->message, "Retry-After", o->retry_after[0] ? o->retry_after : NULL,
                            NULL);
}

/* ---- manifests ---- */

static void manifest_work(pc_req *req)
{
    mjob *j = req->job;
    j->rc = pc_mirror_manifest_fetch(req->srv->mirror, &j->t, req->ref, &j->rec, &j->out);
}

static int manifest_finish(pc_req *req)
{
    mjob *j = req->job;
    if (j->rc == PC_EINVAL)
        return pc_req_error(req, 400, "DIGEST_INVALID", "invalid digest");
    if (j->rc)
        return send_outcome(req, &j->out);
    return pc_send_manifest(req, &j->rec, j->out.stale ? j->out.warning : NULL);
}

int pc_h_mirror_manifest(pc_req *req, const pc_mirror_target *t)
{
    pc_manifest_rec rec;
    if (strcmp(req->method, "GET") == 0)
        pc_mirror_stats_pull(req->srv->mirror, t, req->ref);
    if (pc_mirror_manifest_cached(req->srv->mirror, t, req->ref, &rec) == 0) {
        req->cached_upstream = t->upstream + 1;
        return pc_send_manifest(req, &rec, NULL);
    }
    if (!mjob_new(req, t))
        return pc_req_fail(req, PC_ENOMEM);
    return pc_req_async(req, manifest_work, manifest_finish);
}

/* ---- tag lists ---- */

typedef struct {
    pc_mirror_target t;
    pc_mirror_outcome out;
    json_t *tags;
    long n;
    char last[PC_TAG_MAX + 1];
    int rc;
} tjob;

static void tjob_free(void *p)
{
    tjob *j = p;
    json_decref(j->tags);
    free(j);
}

static int send_tags(pc_req *req, json_t *tags, long n, const char *last, const char *warning)
{
    char *json = NULL, last_out[PC_TAG_MAX + 1] = "", link[PC_NAME_MAX * 2 + 400] = "";
    bool more = false;
    if (pc_mirror_tags_page(tags, req->name, last, n, &json, &more, last_out, sizeof(last_out)))
        return pc_req_fail(req, PC_ENOMEM);
    const char *ns = pc_req_arg(req, "ns");
    if (more)
        snprintf(link, sizeof(link), "</v2/%s/tags/list?n=%ld&last=%s%s%s>; rel=\"next\"",
                 req->name, n, last_out, ns && *ns ? "&ns=" : "", ns && *ns ? ns : "");
    int r = pc_req_send(req, 200, "application/json", json, strlen(json), "Link",
                        link[0] ? link : NULL, "Warning", warning, NULL);
    free(json);
    return r;
}

static void tags_work(pc_req *req)
{
    tjob *j = req->job;
    j->rc = pc_mirror_tags(req->srv->mirror, &j->t, &j->tags, &j->out);
}

static int tags_finish(pc_req *req)
{
    tjob *j = req->job;
    if (j->rc)
        return send_outcome(req, &j->out);
    return send_tags(req, j->tags, j->n, j->last, j->out.stale ? j->out.warning : NULL);
}

int pc_h_mirror_tags(pc_req *req, const pc_mirror_target *t, long n, const char *last)
{
    json_t *tags = NULL;
    if (pc_mirror_tags_cached(req->srv->mirror, t, &tags) == 0) {
        int r = send_tags(req, tags, n, last, NULL);
        json_decref(tags);
        return r;
    }
    tjob *j = calloc(1, sizeof(*j));
    if (!j)
        return pc_req_fail(req, PC_ENOMEM);
    j->t = *t;
    j->n = n;
    snprintf(j->last, sizeof(j->last), "%s", last ? last : "");
    req->job = j;
    req->job_free = tjob_free;
    return pc_req_async(req, tags_work, tags_finish);
}

/* ---- referrers ---- */

typedef struct {
    pc_mirror_target t;
    pc_mirror_outcome out;
    pc_digest d;
    json_t *manifests;
    char artifact_type[256];
    bool filter;
    int rc;
} rjob;

static void rjob_free(void *p)
{
    rjob *j = p;
    json_decref(j->manifests);
    free(j);
}

static int send_referrers(pc_req *req, json_t *manifests, const char *at, const char *warning)
{
    char *json = NULL;
    if (pc_mirror_referrers_index(manifests, at, &json))
        return pc_req_fail(req, PC_ENOMEM);
    int r =
        pc_req_send(req, 200, "application/vnd.oci.image.index.v1+json", json, strlen(json),
                    "OCI-Filters-Applied", at ? "artifactType" : NULL, "Warning", warning, NULL);
    free(json);
    return r;
}

static void referrers_work(pc_req *req)
{
    rjob *j = req->job;
    j->rc = pc_mirror_referrers(req->srv->mirror, &j->t, &j->d, &j->manifests, &j->out);
}

static int referrers_finish(pc_req *req)
{
    rjob *j = req->job;
    if (j->rc)
        return send_outcome(req, &j->out);
    return send_referrers(req, j->manifests, j->filter ? j->artifact_type : NULL,
                          j->out.stale ? j->out.warning : NULL);
}

int pc_h_mirror_referrers(pc_req *req, const pc_mirror_target *t, const pc_digest *d,
                          const char *artifact_type)
{
    json_t *manifests = NULL;
    if (artifact_type && strlen(artifact_type) >= sizeof(((rjob *)0)->artifact_type))
        return pc_req_error(req, 400, "UNSUPPORTED", "artifactType too long");
    if (pc_mirror_referrers_cached(req->srv->mirror, t, d, &manifests) == 0) {
        int r = send_referrers(req, manifests, artifact_type, NULL);
        json_decref(manifests);
        return r;
    }
    rjob *j = calloc(1, sizeof(*j));
    if (!j)
        return pc_req_fail(req, PC_ENOMEM);
    j->t = *t;
    j->d = *d;
    j->filter = artifact_type != NULL;
    snprintf(j->artifact_type, sizeof(j->artifact_type), "%s", artifact_type ? artifact_type : "");
    req->job = j;
    req->job_free = rjob_free;
    return pc_req_async(req, referrers_work, referrers_finish);
}

/* ---- blobs ---- */

/* A cached blob of mirrored repository t, read like a local one: a file
 * whose size is not the recorded one is never served (registry.h). */
static int send_store_blob(pc_req *req, const pc_mirror_target *t, const pc_digest *d)
{
    int mhd;
    req->cached_upstream = t->upstream + 1;
    if (pc_send_blob_redirect(req, t->local, d, &mhd))
        return mhd;
    return pc_send_stored_blob(req, t->local, d);
}

static void head_work(pc_req *req)
{
    mjob *j = req->job;
    j->rc = pc_mirror_blob_head(req->srv->mirror, &j->t, &j->d, &j->size, &j->out);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void add_blob_headers(struct MHD_Response *resp, const pc_digest *d)
{
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(resp, "Docker-Content-Digest", d->str);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
}

static int head_finish(pc_req *req)
{
    mjob *j = req->job;
    if (j->rc)
        return send_outcome(req, &j->out);
    struct MHD_Response *resp = MHD_create_response_from_callback(
        j->size >= 0 ? (uint64_t)j->size : MHD_SIZE_UNKNOWN, 4096, no_body, NULL, NULL);
    if (!resp)
        return pc_req_fail(req, PC_ENOMEM);
    add_blob_headers(resp, &j->d);
    return pc_req_queue(req, 200, resp);
}

/* What a streaming response holds; freed with the response. */
typedef struct {
    pc_fetch *fetch;
    pc_fetch_waiter waiter;
    struct MHD_Connection *conn;
    const char *labels; /* metrics: upstream="..." */
    uint64_t sent;
    uint64_t base; /* a Range's first byte: the response's byte 0 is the blob's byte base */
} stream_ctx;

static void stream_suspend(void *ctx)
{
    stream_ctx *s = ctx;
    MHD_suspend_connection(s->conn);
}

static void stream_resume(void *ctx)
{
    stream_ctx *s = ctx;
    MHD_resume_connection(s->conn);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_ctx *s = cls;
    long n = pc_fetch_read(s->fetch, s->base + pos, buf, max, &s->waiter);
    if (n > 0) {
        s->sent += (uint64_t)n;
        return (ssize_t)n;
    }
    if (n == 0)
        return 0; /* suspended until more bytes arrive */
    if (n == PC_ENOTFOUND)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* The client's transfer must end short of Content-Length. Shut the
     * socket down ourselves as well: a connection that was suspended and
     * resumed is not always closed by libmicrohttpd 0.9.75 after
     * END_WITH_ERROR, which left clients hanging. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        shutdown(ci->connect_fd, SHUT_RDWR);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    stream_ctx *s = cls;
    pc_fetch_unwait(s->fetch, &s->waiter);
    pc_fetch_release(s->fetch);
    if (s->sent)
        pc_metrics_add("pullcache_client_bytes_total", s->labels, s->sent);
    free(s);
}

/* The fetch started (or failed): the suspended request answers. */
static void fetch_started(void *ctx)
{
    pc_req_wake(ctx);
}

/* A Range on a blob being fetched: once its size is known, 206 with exactly
 * those bytes as they arrive (the one fetch goes on for the whole blob),
 * 416 past the end; a malformed Range, or an unknown size, gets it all. */
static int fetch_range(pc_req *req, int64_t size, uint64_t *start, uint64_t *len, char *cr,
                       size_t cr_size)
{
    const char *range = pc_req_header(req, "Range");
    uint64_t end;
    *start = 0;
    *len = size >= 0 ? (uint64_t)size : 0;
    cr[0] = '\0';
    if (!range || size < 0)
        return 0;
    int rc = pc_range_parse(range, (uint64_t)size, start, &end);
    if (rc == PC_ERANGE) {
        snprintf(cr, cr_size, "bytes */%" PRId64, size);
        return rc;
    }
    if (rc) { /* malformed: ignored (RFC 9110) */
        *start = 0;
        return 0;
    }
    *len = end - *start + 1;
    snprintf(cr, cr_size, "bytes %" PRIu64 "-%" PRIu64 "/%" PRId64, *start, end, size);
    return 0;
}

static int fetch_finish(pc_req *req)
{
    mjob *j = req->job;
    j->rc = pc_fetch_wait_start(j->fetch, &j->size, &j->out); /* started: does not block */
    if (j->rc)
        return send_outcome(req, &j->out);
    uint64_t start, len;
    char cr[96];
    if (fetch_range(req, j->size, &start, &len, cr, sizeof(cr)) == PC_ERANGE) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return pc_req_fail(req, PC_ENOMEM);
        MHD_add_response_header(resp, "Content-Range", cr);
        add_blob_headers(resp, &j->d);
        return pc_req_queue(req, 416, resp);
    }
    stream_ctx *s = calloc(1, sizeof(*s));
    if (!s)
        return pc_req_fail(req, PC_ENOMEM);
    s->fetch = j->fetch;
    s->conn = req->conn;
    s->base = start;
    s->waiter.suspend = stream_suspend;
    s->waiter.resume = stream_resume;
    s->waiter.ctx = s;
    s->labels = pc_mirror_labels(req->srv->mirror, j->t.upstream);
    struct MHD_Response *resp = MHD_create_response_from_callback(
        j->size >= 0 ? len : MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, s, stream_free);
    if (!resp) {
        free(s);
        return pc_req_fail(req, PC_ENOMEM);
    }
    j->fetch = NULL; /* the response holds it now */
    add_blob_headers(resp, &j->d);
    if (cr[0])
        MHD_add_response_header(resp, "Content-Range", cr);
    req->resp_bytes = j->size >= 0 ? len : 0;
    return pc_req_queue(req, cr[0] ? 206 : 200, resp);
}

int pc_h_mirror_blob(pc_req *req, const pc_mirror_target *t, const pc_digest *d)
{
    pc_mirror *m = req->srv->mirror;
    uint64_t size;
    if (pc_mirror_blob_cached(m, t, d, &size) == 0)
        return send_store_blob(req, t, d);
    if (pc_mirror_offline(m, t)) {
        pc_mirror_outcome o;
        pc_mirror_offline_miss(t, "blob", &o);
        return send_outcome(req, &o);
    }
    mjob *j = mjob_new(req, t);
    if (!j)
        return pc_req_fail(req, PC_ENOMEM);
    j->d = *d;
    if (strcmp(req->method, "HEAD") == 0)
        return pc_req_async(req, head_work, head_finish);
    int rc = pc_fetch_join(m, t, d, &j->fetch);
    if (rc == PC_EEXISTS)
        return send_store_blob(req, t, d);
    if (rc)
        return pc_req_fail(req, rc);
    /* Waiting for the fetch to start takes no thread: the connection is
     * suspended and the fetch wakes it (so no request worker ever waits
     * for a fetch job; mirror_fetch.c runs those on a pool of their own). */
    j->started.resume = fetch_started;
    j->started.ctx = req;
    int mhd = pc_req_suspend(req, fetch_finish);
    if (pc_fetch_when_started(j->fetch, &j->started) != 1)
        pc_req_wake(req); /* started or failed already (or no memory: finish waits) */
    return mhd;
}

/* ---- /metrics ---- */

/* The file system of storage.data (fs blobs, meta.db, fetch spools), read
 * now: what a disk alert needs. Families of their own; "" when statvfs
 * fails (the series are left out). */
static char *disk_metrics(const char *dir)
{
    struct statvfs vf;
    char *out = NULL;
    if (statvfs(dir, &vf) != 0)
        return strdup("");
    unsigned long long unit = vf.f_frsize ? vf.f_frsize : vf.f_bsize;
    if (asprintf(&out,
                 "# HELP pullcache_data_filesystem_size_bytes Size of the file system holding "
                 "storage.data.\n"
                 "# TYPE pullcache_data_filesystem_size_bytes gauge\n"
                 "pullcache_data_filesystem_size_bytes %llu\n"
                 "# HELP pullcache_data_filesystem_free_bytes Bytes an unprivileged writer may "
                 "still use there.\n"
                 "# TYPE pullcache_data_filesystem_free_bytes gauge\n"
                 "pullcache_data_filesystem_free_bytes %llu\n",
                 unit * (unsigned long long)vf.f_blocks,
                 unit * (unsigned long long)vf.f_bavail) < 0)
        return NULL;
    return out;
}

/* The counters (metrics.c), then the budget gauges, rendered now from the
 * budget tracker, then the data directory's file system (their families
 * are their own, so the parts never split a family). */
int pc_h_metrics(pc_req *req)
{
    char *text = pc_metrics_render();
    char *budget = pc_budget_metrics(pc_mirror_budget(req->srv->mirror));
    char *disk = disk_metrics(req->srv->cfg->storage->data);
    if (budget && disk) {
        size_t bl = strlen(budget), dl = strlen(disk);
        char *both = realloc(budget, bl + dl + 1);
        if (both) {
            memcpy(both + bl, disk, dl + 1);
            budget = both;
        } else {
            free(budget);
            budget = NULL;
        }
    }
    free(disk);
    if (!text || !budget) {
        free(text);
        free(budget);
        return pc_req_fail(req, PC_ENOMEM);
    }
    size_t a = strlen(text), b = strlen(budget);
    char *all = realloc(text, a + b + 1);
    if (!all) {
        free(text);
        free(budget);
        return pc_req_fail(req, PC_ENOMEM);
    }
    memcpy(all + a, budget, b + 1);
    free(budget);
    int r = pc_req_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", all, a + b, NULL);
    free(all);
    return r;
}
