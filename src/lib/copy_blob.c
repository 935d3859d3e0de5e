/*
 * copy_blob.c - moving the blobs of a copy: a bounded pool of workers
 * (jobpool.c), each taking one blob at a time.
 *
 * Reading: from a registry a producer thread streams a (ranged) GET into a
 * ring buffer that the upload drains; from a layout the file is read
 * directly. A stream that starts at byte 0 is hashed as it goes and the
 * last bytes are only handed over once the digest matched, so a corrupt
 * source never completes an upload; a stream resumed in the middle relies
 * on the destination's own digest check.
 *
 * Writing to a registry: HEAD (present: skipped), a cross-repository mount
 * when both sides are one registry, else an upload session: one PUT for a
 * blob up to chunk_size, else PATCHes of chunk_size with Content-Range and
 * a closing PUT ?digest=. When a request fails with a retryable error
 * (the destination or the source: 429, 5xx, timeouts, refused or reset
 * connections) the worker backs off, asks the session for its offset
 * (GET, Range) and continues from there; a session the destination
 * forgot (404, or distribution refusing a resumed offset) starts over.
 * Writing to a layout: temp file, digest checked, rename (pull_layout.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "copy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COPY_DEFAULT_WORKERS 4
#define COPY_MAX_WORKERS 64
#define RING_SIZE ((size_t)4 << 20)
#define RETRY_AFTER_MAX_S 300

/* ---- failures, retries, progress ---- */

bool pc_copy_canceled(pc_copy_ctx *c)
{
    return c->o->cancel && atomic_load(c->o->cancel);
}

static void record(pc_copy_ctx *c, int rc, bool dest, const pc_pull_error *e)
{
    pthread_mutex_lock(&c->lock);
    if (c->rc == 0) {
        c->rc = rc;
        c->res->error = *e;
        c->res->error_at_dest = dest;
    }
    atomic_store(&c->stop, true);
    pthread_mutex_unlock(&c->lock);
}

int pc_copy_fail(pc_copy_ctx *c, int rc, pc_pull_fail kind, bool dest, const char *object,
                 const char *fmt, ...)
{
    pc_pull_error e;
    va_list ap;
    va_start(ap, fmt);
    pc_pull_error_vset(&e, kind, object, fmt, ap);
    va_end(ap);
    record(c, rc, dest, &e);
    return rc;
}

int pc_copy_fail_resp(pc_copy_ctx *c, bool dest, const char *object, const pc_upstream_resp *r)
{
    pc_pull_error e;
    memset(&e, 0, sizeof(e));
    pc_pull_registry_code(r->body, r->body_len, e.code, sizeof(e.code));
    bool registry = r->status >= 400;
    int rc = r->status == 429 ? PC_ELIMIT : r->status == 404 ? PC_ENOTFOUND : PC_EUPSTREAM;
    const char *msg = r->error_message[0] ? r->error_message : "no details";
    e.kind = registry ? PC_PULL_FAIL_REGISTRY : PC_PULL_FAIL_NETWORK;
    e.cls = r->cls;
    e.status = r->status;
    snprintf(e.object, sizeof(e.object), "%s", object);
    snprintf(e.retry_after, sizeof(e.retry_after), "%s", r->retry_after);
    const char *side = dest ? "destination" : "source";
    if (r->cls == PC_UP_DENIED && (!r->error_message[0] || strncmp(msg, "HTTP ", 5) == 0))
        msg = "authentication failed or access denied (check the credentials: --username with "
              "--password-stdin, PULLCACHE_USERNAME/PULLCACHE_PASSWORD, or the auth file)";
    if (registry) {
        snprintf(e.key, sizeof(e.key), "%ld%s%s", r->status, e.code[0] ? " " : "", e.code);
        if (e.code[0] && strcmp(msg, e.code) == 0)
            snprintf(e.message, sizeof(e.message), "%s: %s: %s", object, side, e.key);
        else
            snprintf(e.message, sizeof(e.message), "%s: %s: %s: %s", object, side, e.key, msg);
    } else {
        snprintf(e.key, sizeof(e.key), "%s", pc_up_class_str(r->cls));
        snprintf(e.message, sizeof(e.message), "%s: %s: %s: %s", object, side, e.key, msg);
    }
    record(c, rc, dest, &e);
    return rc;
}

bool pc_copy_retryable(pc_up_class cls)
{
    return cls == PC_UP_TOO_MANY || cls == PC_UP_SERVER || cls == PC_UP_TIMEOUT ||
           cls == PC_UP_REFUSED || cls == PC_UP_RESET;
}

uint64_t pc_copy_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms,
                            int64_t retry_after_s, uint32_t rnd)
{
    uint64_t d = base_ms ? base_ms : 1;
    for (unsigned i = 0; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    uint64_t half = d / 2;
    uint64_t ms = half + (half ? (uint64_t)rnd % (half + 1) : 0);
    if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > ms)
        ms = (uint64_t)retry_after_s * 1000;
    return ms;
}

/* Sleep ms in slices; false when the copy is stopping. */
static bool nap(pc_copy_ctx *c, uint64_t ms)
{
    while (ms > 0) {
        if (atomic_load(&c->stop) || pc_copy_canceled(c))
            return false;
        uint64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !(atomic_load(&c->stop) || pc_copy_canceled(c));
}

bool pc_copy_retry(pc_copy_ctx *c, unsigned *attempt, const pc_upstream_resp *r)
{
    if (!pc_copy_retryable(r->cls) || *attempt >= c->retries)
        return false;
    int64_t ra = pc_ratelimit_retry_after(r->retry_after, time(NULL));
    if (ra > RETRY_AFTER_MAX_S)
        return false;
    pthread_mutex_lock(&c->lock);
    c->seed = c->seed * 1103515245u + 12345u;
    uint32_t rnd = c->seed >> 8;
    c->res->retries++;
    pthread_mutex_unlock(&c->lock);
    uint64_t ms = pc_copy_backoff_ms(*attempt, c->o->backoff_ms ? c->o->backoff_ms : 500,
                                     c->o->backoff_max_ms ? c->o->backoff_max_ms : 30000, ra, rnd);
    (*attempt)++;
    return nap(c, ms);
}

int pc_copy_plan_add(pc_copy_ctx *c, const pc_pull_desc *d)
{
    for (size_t i = 0; i < c->njobs; i++)
        if (pc_digest_equal(&c->jobs[i].desc.digest, &d->digest))
            return 0;
    if (c->njobs == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        pc_copy_job *nj = realloc(c->jobs, ncap * sizeof(*nj));
        if (!nj)
            return PC_ENOMEM;
        c->jobs = nj;
        c->cap = ncap;
    }
    pc_copy_job *j = &c->jobs[c->njobs++];
    memset(j, 0, sizeof(*j));
    j->desc = *d;
    pc_jobpool_progress_add(&c->prog, d->size);
    return 0;
}

/* Bytes of job index done up to pos (never counted twice). */
static void advance(pc_copy_ctx *c, size_t index, uint64_t pos)
{
    pc_copy_job *j = &c->jobs[index];
    pc_jobpool_progress_data(&c->prog, index, &j->desc, &j->hw, pos);
}

static void finished(pc_copy_ctx *c, size_t index, pc_pull_event ev)
{
    pc_copy_job *j = &c->jobs[index];
    pc_jobpool_progress_end(&c->prog, index, &j->desc, &j->hw, ev);
}

/* ---- readers ---- */

enum { RD_OK = 0, RD_SOURCE, RD_SIZE, RD_VERIFY, RD_LOCAL, RD_STOP };

typedef struct {
    pc_copy_ctx *c;
    size_t index;
    const pc_pull_desc *desc;
    uint64_t offset;    /* where this stream started */
    uint64_t delivered; /* bytes handed out since */
    pc_hasher *h;       /* offset 0: the whole blob is hashed */
    int failed;         /* RD_* */
    char msg[256];
    int fd; /* layout source */
    /* registry source: producer thread and ring */
    pthread_t th;
    bool th_started;
    pthread_mutex_t m;
    pthread_cond_t cv;
    char *ring;
    size_t rpos, rlen;
    bool eof, closed, size_bad;
    int src_rc;
    pc_upstream_resp resp;
} reader;

static int prod_start(const pc_upstream_resp *r, void *ctx)
{
    reader *rd = ctx;
    if (r->content_length >= 0 && (uint64_t)r->content_length != rd->desc->size - rd->offset) {
        rd->size_bad = true;
        return 1;
    }
    return 0;
}

static int prod_data(const void *buf, size_t len, void *ctx)
{
    reader *rd = ctx;
    const char *p = buf;
    pthread_mutex_lock(&rd->m);
    while (len > 0) {
        while (rd->rlen == RING_SIZE && !rd->closed)
            pthread_cond_wait(&rd->cv, &rd->m);
        if (rd->closed) {
            pthread_mutex_unlock(&rd->m);
            return 1;
        }
        size_t tail = (rd->rpos + rd->rlen) % RING_SIZE;
        size_t room = RING_SIZE - rd->rlen;
        size_t contig = RING_SIZE - tail;
        size_t n = len < room ? len : room;
        if (n > contig)
            n = contig;
        memcpy(rd->ring + tail, p, n);
        rd->rlen += n;
        p += n;
        len -= n;
        pthread_cond_broadcast(&rd->cv);
    }
    pthread_mutex_unlock(&rd->m);
    return 0;
}

static void *producer(void *arg)
{
    reader *rd = arg;
    const pc_copy_end *s = &rd->c->o->src;
    int rc = pc_upstream_blob_range(s->u, s->repo, &rd->desc->digest, rd->offset, prod_start,
                                    prod_data, rd, &rd->resp);
    pthread_mutex_lock(&rd->m);
    rd->src_rc = rc;
    rd->eof = true;
    pthread_cond_broadcast(&rd->cv);
    pthread_mutex_unlock(&rd->m);
    return NULL;
}

static void reader_close(reader *rd)
{
    if (rd->th_started) {
        pthread_mutex_lock(&rd->m);
        rd->closed = true;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->m);
        pthread_join(rd->th, NULL);
        rd->th_started = false;
    }
    if (rd->ring) {
        pthread_mutex_destroy(&rd->m);
        pthread_cond_destroy(&rd->cv);
        free(rd->ring);
        rd->ring = NULL;
    }
    if (rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
    pc_hasher_free(rd->h);
    rd->h = NULL;
    pc_upstream_resp_clear(&rd->resp);
}

/* Start reading the blob at offset. 0 or a failure (rd->failed, msg). */
static int reader_open(reader *rd, pc_copy_ctx *c, size_t index, uint64_t offset)
{
    const pc_copy_end *s = &c->o->src;
    memset(rd, 0, sizeof(*rd));
    rd->fd = -1;
    rd->c = c;
    rd->index = index;
    rd->desc = &c->jobs[index].desc;
    rd->offset = offset;
    if (offset == 0 && pc_hasher_new(&rd->h, rd->desc->digest.alg) != 0) {
        rd->failed = RD_LOCAL;
        snprintf(rd->msg, sizeof(rd->msg), "cannot start a hash");
        return -1;
    }
    if (!s->u) {
        char path[4096];
        if (pc_copy_layout_blob_path(s->dir, &rd->desc->digest, path, sizeof(path)) != 0 ||
            (rd->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
            (offset && lseek(rd->fd, (off_t)offset, SEEK_SET) < 0)) {
            rd->failed = RD_SOURCE;
            snprintf(rd->msg, sizeof(rd->msg), "cannot read %.200s: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (!(rd->ring = malloc(RING_SIZE))) {
        rd->failed = RD_LOCAL;
        snprintf(rd->msg, sizeof(rd->msg), "out of memory");
        return -1;
    }
    pthread_mutex_init(&rd->m, NULL);
    pthread_cond_init(&rd->cv, NULL);
    if (pthread_create(&rd->th, NULL, producer, rd) != 0) {
        rd->failed = RD_LOCAL;
        snprintf(rd->msg, sizeof(rd->msg), "cannot start a thread");
        return -1;
    }
    rd->th_started = true;
    return 0;
}

/* Take up to len bytes into buf. Returns the count (0 only at the end of
 * the blob) or PC_UPSTREAM_READ_ABORT with rd->failed set. */
static size_t reader_read(reader *rd, char *buf, size_t len)
{
    uint64_t left = rd->desc->size - rd->offset - rd->delivered;
    size_t n = 0;
    if (rd->failed)
        return PC_UPSTREAM_READ_ABORT;
    if (left == 0)
        return 0;
    if (len > left)
        len = (size_t)left;
    if (atomic_load(&rd->c->stop) || pc_copy_canceled(rd->c)) {
        rd->failed = RD_STOP;
        return PC_UPSTREAM_READ_ABORT;
    }
    if (rd->fd >= 0) {
        ssize_t r;
        do
            r = read(rd->fd, buf, len);
        while (r < 0 && errno == EINTR);
        if (r <= 0) {
            rd->failed = RD_SOURCE;
            snprintf(rd->msg, sizeof(rd->msg), "%s", r < 0 ? strerror(errno) : "file too short");
            return PC_UPSTREAM_READ_ABORT;
        }
        n = (size_t)r;
    } else {
        pthread_mutex_lock(&rd->m);
        while (rd->rlen == 0 && !rd->eof)
            pthread_cond_wait(&rd->cv, &rd->m);
        if (rd->rlen == 0) { /* the source ended early or failed */
            pthread_mutex_unlock(&rd->m);
            if (rd->size_bad) {
                rd->failed = RD_SIZE;
                snprintf(rd->msg, sizeof(rd->msg), "the source sends %lld bytes, expected %llu",
                         (long long)rd->resp.content_length,
                         (unsigned long long)(rd->desc->size - rd->offset));
            } else {
                rd->failed = RD_SOURCE;
                if (rd->resp.cls == PC_UP_OK) {
                    rd->resp.cls = PC_UP_RESET;
                    snprintf(rd->resp.error_message, sizeof(rd->resp.error_message),
                             "the source ended the blob early");
                }
            }
            return PC_UPSTREAM_READ_ABORT;
        }
        n = len < rd->rlen ? len : rd->rlen;
        size_t contig = RING_SIZE - rd->rpos;
        if (n > contig)
            n = contig;
        memcpy(buf, rd->ring + rd->rpos, n);
        rd->rpos = (rd->rpos + n) % RING_SIZE;
        rd->rlen -= n;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->m);
    }
    if (rd->h && pc_hasher_update(rd->h, buf, n) != 0) {
        rd->failed = RD_LOCAL;
        snprintf(rd->msg, sizeof(rd->msg), "cannot hash");
        return PC_UPSTREAM_READ_ABORT;
    }
    if (rd->h && n == left) { /* the last bytes: only if the digest matches */
        pc_digest got;
        if (pc_hasher_final(rd->h, &got) != 0 || !pc_digest_equal(&got, &rd->desc->digest)) {
            rd->failed = RD_VERIFY;
            snprintf(rd->msg, sizeof(rd->msg), "the source's bytes hash to %s", got.str);
            return PC_UPSTREAM_READ_ABORT;
        }
    }
    rd->delivered += n;
    advance(rd->c, rd->index, rd->offset + rd->delivered);
    return n;
}

/* The body of one request: at most limit bytes of the reader. */
typedef struct {
    reader *rd;
    uint64_t limit;
} body_slice;

static size_t slice_read(char *buf, size_t len, void *ctx)
{
    body_slice *s = ctx;
    if (s->limit == 0)
        return 0;
    if (len > s->limit)
        len = (size_t)s->limit;
    size_t n = reader_read(s->rd, buf, len);
    if (n != PC_UPSTREAM_READ_ABORT)
        s->limit -= n;
    return n;
}

/* A reader failure as the copy's failure. */
static int fail_reader(pc_copy_ctx *c, reader *rd, const char *object)
{
    switch (rd->failed) {
    case RD_SOURCE:
        if (rd->fd < 0 && rd->ring && rd->resp.cls != PC_UP_OK)
            return pc_copy_fail_resp(c, false, object, &rd->resp);
        return pc_copy_fail(c, PC_EUPSTREAM, PC_PULL_FAIL_NETWORK, false, object, "source: %s",
                            rd->msg);
    case RD_SIZE:
    case RD_VERIFY:
        return pc_copy_fail(c, PC_EDIGEST, PC_PULL_FAIL_VERIFY, false, object,
                            "source: %s; nothing was committed", rd->msg);
    case RD_STOP:
        return pc_copy_canceled(c)
                   ? pc_copy_fail(c, PC_ERR, PC_PULL_FAIL_CANCELED, false, object, "canceled")
                   : PC_ERR;
    default:
        return pc_copy_fail(c, PC_ERR, PC_PULL_FAIL_LOCAL, false, object, "%s", rd->msg);
    }
}

/* ---- one blob into a layout ---- */

static int blob_to_layout(pc_copy_ctx *c, size_t index, const char *object)
{
    pc_copy_job *j = &c->jobs[index];
    pc_pull_layout_blob *w = NULL;
    reader rd;
    char buf[1 << 16];
    int rc = 0;

    if (pc_pull_layout_has(c->dst_layout, &j->desc.digest, j->desc.size)) {
        pthread_mutex_lock(&c->lock);
        c->res->blobs_skipped++;
        pthread_mutex_unlock(&c->lock);
        finished(c, index, PC_PULL_EV_SKIPPED);
        return 0;
    }
    if ((rc = pc_pull_layout_blob_begin(c->dst_layout, &j->desc.digest, &w)) != 0)
        return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
    if (reader_open(&rd, c, index, 0) != 0) {
        rc = fail_reader(c, &rd, object);
        goto done;
    }
    pc_jobpool_progress_start(&c->prog, index, &j->desc);
    for (;;) {
        size_t n = reader_read(&rd, buf, sizeof(buf));
        if (n == PC_UPSTREAM_READ_ABORT) {
            rc = fail_reader(c, &rd, object);
            goto done;
        }
        if (n == 0)
            break;
        if ((rc = pc_pull_layout_blob_write(w, buf, n)) != 0) {
            rc = pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
            goto done;
        }
        pthread_mutex_lock(&c->lock);
        c->res->bytes += n;
        pthread_mutex_unlock(&c->lock);
    }
    rc = pc_pull_layout_blob_commit(w);
    w = NULL;
    if (rc != 0) {
        rc = pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
        goto done;
    }
    pthread_mutex_lock(&c->lock);
    c->res->blobs++;
    pthread_mutex_unlock(&c->lock);
    finished(c, index, PC_PULL_EV_DONE);
done:
    reader_close(&rd);
    pc_pull_layout_blob_abort(w);
    return rc;
}

/* ---- one blob into a registry ---- */

/* HEAD the blob at the destination: 1 present, 0 absent, <0 failed. */
static int dst_has(pc_copy_ctx *c, const pc_copy_job *j, const char *object)
{
    const pc_copy_end *d = &c->o->dst;
    pc_upstream_resp r;
    unsigned attempt = 0;
    for (;;) {
        int rc = pc_upstream_blob(d->u, d->repo, &j->desc.digest, true, NULL, NULL, NULL, &r);
        if (rc != 0) {
            pc_upstream_resp_clear(&r);
            return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
        }
        if (r.cls == PC_UP_OK || r.cls == PC_UP_NOT_FOUND) {
            int have = r.cls == PC_UP_OK &&
                       (r.content_length < 0 || (uint64_t)r.content_length == j->desc.size);
            pc_upstream_resp_clear(&r);
            return have;
        }
        if (!pc_copy_retry(c, &attempt, &r)) {
            rc = pc_copy_fail_resp(c, true, object, &r);
            pc_upstream_resp_clear(&r);
            return rc;
        }
        pc_upstream_resp_clear(&r);
    }
}

/* Open a session (or mount): 1 mounted, 0 session open, <0 failed. */
static int session_start(pc_copy_ctx *c, const pc_copy_job *j, bool try_mount,
                         pc_upstream_upload *up, const char *object)
{
    const pc_copy_end *d = &c->o->dst;
    pc_upstream_resp r;
    unsigned attempt = 0;
    for (;;) {
        bool mounted = false;
        int rc = pc_upstream_upload_start(d->u, d->repo, try_mount ? &j->desc.digest : NULL,
                                          try_mount ? c->o->src.repo : NULL, &mounted, up, &r);
        if (rc != 0) {
            pc_upstream_resp_clear(&r);
            return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
        }
        if (r.cls == PC_UP_OK) {
            pc_upstream_resp_clear(&r);
            return mounted ? 1 : 0;
        }
        if (try_mount && (r.cls == PC_UP_DENIED || r.cls == PC_UP_CLIENT)) {
            try_mount = false; /* no pull right on the source repository: plain upload */
        } else if (!pc_copy_retry(c, &attempt, &r)) {
            rc = pc_copy_fail_resp(c, true, object, &r);
            pc_upstream_resp_clear(&r);
            return rc;
        }
        pc_upstream_resp_clear(&r);
    }
}

static void count_sent(pc_copy_ctx *c, uint64_t sent)
{
    pthread_mutex_lock(&c->lock);
    c->res->bytes += sent;
    pthread_mutex_unlock(&c->lock);
}

static int blob_to_registry(pc_copy_ctx *c, size_t index, const char *object)
{
    const pc_copy_end *d = &c->o->dst;
    pc_copy_job *j = &c->jobs[index];
    uint64_t chunk = c->o->chunk_size ? c->o->chunk_size : (uint64_t)64 << 20;
    pc_upstream_upload up = {0};
    pc_upstream_resp r;
    reader rd;
    unsigned attempt = 0;
    int rc;

    memset(&rd, 0, sizeof(rd));
    rd.fd = -1;
    memset(&r, 0, sizeof(r));
    if ((rc = dst_has(c, j, object)) != 0) {
        if (rc == 1) {
            pthread_mutex_lock(&c->lock);
            c->res->blobs_skipped++;
            pthread_mutex_unlock(&c->lock);
            finished(c, index, PC_PULL_EV_SKIPPED);
            rc = 0;
        }
        goto done;
    }
    if ((rc = session_start(c, j, c->mount, &up, object)) != 0) {
        if (rc == 1) {
            pthread_mutex_lock(&c->lock);
            c->res->blobs_mounted++;
            pthread_mutex_unlock(&c->lock);
            finished(c, index, PC_PULL_EV_SKIPPED);
            rc = 0;
        }
        goto done;
    }
    pc_jobpool_progress_start(&c->prog, index, &j->desc);
    if (reader_open(&rd, c, index, 0) != 0) {
        rc = fail_reader(c, &rd, object);
        goto done;
    }
    for (;;) {
        uint64_t left = j->desc.size - up.offset, sent = 0;
        bool last = up.offset == 0 ? left <= chunk : left == 0;
        body_slice s = {&rd, last ? left : (left < chunk ? left : chunk)};
        if (last)
            rc = pc_upstream_upload_finish(d->u, d->repo, &up, &j->desc.digest, s.limit, slice_read,
                                           &s, &sent, &r);
        else
            rc = pc_upstream_upload_chunk(d->u, d->repo, &up, s.limit, slice_read, &s, &sent, &r);
        count_sent(c, sent);
        if (rc != 0) {
            rc = pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
            goto done;
        }
        if (r.cls == PC_UP_OK) {
            if (last)
                break;
            attempt = 0; /* progress: the retry budget is per stall */
            pc_upstream_resp_clear(&r);
            continue;
        }
        /* Failed. The source's fault (not retryable) or a verification
         * failure ends the copy; a retryable failure on either side resumes. */
        bool src_failed = rd.failed == RD_SOURCE && rd.ring && rd.resp.cls != PC_UP_OK;
        if (rd.failed && rd.failed != RD_SOURCE) {
            rc = fail_reader(c, &rd, object);
            goto done;
        }
        if (rd.failed && !(src_failed && pc_copy_retryable(rd.resp.cls))) {
            rc = fail_reader(c, &rd, object);
            goto done;
        }
        const pc_upstream_resp *why = src_failed ? &rd.resp : &r;
        bool resync = !src_failed && r.status == 416; /* the destination's offset differs */
        if (!resync && !pc_copy_retry(c, &attempt, why)) {
            rc = src_failed ? fail_reader(c, &rd, object) : pc_copy_fail_resp(c, true, object, &r);
            goto done;
        }
        if (resync && attempt++ >= c->retries) {
            rc = pc_copy_fail_resp(c, true, object, &r);
            goto done;
        }
        pc_upstream_resp_clear(&r);
        reader_close(&rd);
        /* Where is the destination? Ask until it answers; a session it
         * no longer knows (or refuses to continue) starts over. */
        for (;;) {
            rc = pc_upstream_upload_status(d->u, d->repo, &up, &r);
            if (rc != 0) {
                rc = pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
                goto done;
            }
            if (r.cls == PC_UP_OK && up.offset <= j->desc.size)
                break;
            if (r.cls == PC_UP_OK || !pc_copy_retry(c, &attempt, &r)) {
                if (pc_copy_retryable(r.cls)) {
                    rc = pc_copy_fail_resp(c, true, object, &r);
                    goto done;
                }
                /* 4xx: the session is gone; a new one from byte 0 */
                pc_upstream_resp_clear(&r);
                if ((rc = session_start(c, j, false, &up, object)) != 0)
                    goto done;
                break;
            }
            pc_upstream_resp_clear(&r);
        }
        pc_upstream_resp_clear(&r);
        if (up.offset > 0) {
            pthread_mutex_lock(&c->lock);
            c->res->resumed++;
            pthread_mutex_unlock(&c->lock);
        }
        if (reader_open(&rd, c, index, up.offset) != 0) {
            rc = fail_reader(c, &rd, object);
            goto done;
        }
    }
    pthread_mutex_lock(&c->lock);
    c->res->blobs++;
    pthread_mutex_unlock(&c->lock);
    finished(c, index, PC_PULL_EV_DONE);
    rc = 0;
done:
    if (rc != 0 && up.location)
        pc_upstream_upload_cancel(d->u, d->repo, &up);
    reader_close(&rd);
    pc_upstream_upload_clear(&up);
    pc_upstream_resp_clear(&r);
    return rc;
}

/* ---- the workers ---- */

/* One blob of the plan, on a pool worker (whose state is the copy). After
 * a failure or a cancel the jobs still queued do nothing. */
static void blob_job(void *arg, void *worker)
{
    pc_copy_ctx *c = worker;
    size_t i = (size_t)((pc_copy_job *)arg - c->jobs);
    char object[192];
    if (atomic_load(&c->stop))
        return;
    if (pc_copy_canceled(c)) {
        pc_copy_fail(c, PC_ERR, PC_PULL_FAIL_CANCELED, false, "copy", "canceled");
        return;
    }
    snprintf(object, sizeof(object), "blob %s", c->jobs[i].desc.digest.str);
    int rc = c->dst_layout ? blob_to_layout(c, i, object) : blob_to_registry(c, i, object);
    if (rc != 0)
        finished(c, i, PC_PULL_EV_FAILED);
}

static void *copy_of_worker(void *ctx)
{
    return ctx;
}

int pc_copy_blobs(pc_copy_ctx *c)
{
    unsigned n = c->o->concurrency ? c->o->concurrency : COPY_DEFAULT_WORKERS;
    if (n > COPY_MAX_WORKERS)
        n = COPY_MAX_WORKERS;
    if (n > c->njobs)
        n = (unsigned)c->njobs;
    pc_jobpool_opts po = {.workers = n, .name = "pc-copy", .init = copy_of_worker, .ctx = c};
    pc_jobpool *pool = NULL;
    pc_jobpool_new(&pool, &po); /* none: the calling thread does it all */
    for (size_t i = 0; i < c->njobs; i++)
        if (!pool || pc_jobpool_submit(pool, blob_job, NULL, &c->jobs[i]) != 0)
            blob_job(&c->jobs[i], c);
    pc_jobpool_free(pool, PC_JOBPOOL_FINISH);
    return c->rc;
}
