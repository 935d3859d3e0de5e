/*
 * mirror_fetch.c - coalesced blob fetches for the pull-through cache: one upstream
 * GET per digest however many clients ask at once. The first request starts
 * a fetch job that streams the upstream body into a spool (store/spool.h);
 * every client reads the growing spool as bytes arrive; the blob is
 * published only after its digest is verified, and the last byte reaches
 * clients only then, so a bad or truncated transfer never completes.
 *
 * A fetch is bounded: by the size a cached manifest of the repository
 * declares for the blob (its descriptor), else by cache.max_fetch_size. A
 * Content-Length that disagrees with the declared size (or exceeds the
 * maximum) is refused before any body byte is read; a body (chunked, or
 * without any length) that goes one byte past the bound is cut there. Both
 * end as a 502 for the clients, the staged bytes are removed, and the
 * upstream is counted as failing (pullcache_upstream_errors_total,
 * class "protocol").
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobpool.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"

enum { F_STARTING, F_STREAMING, F_DONE, F_FAILED };

struct pc_fetch {
    pc_mirror *m;
    pc_mirror_target t;
    pc_digest d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int state;
    int64_t total;     /* the size clients are told: Content-Length, else expect; -1 */
    int64_t expect;    /* the size a cached manifest declares, -1 when none does */
    uint64_t cap;      /* most body bytes taken when expect is unknown */
    char refused[300]; /* why the fetch was stopped by its bound, "" when not */
    uint64_t received;
    pc_spool *sp;
    pc_mirror_outcome fail;
    pc_fetch_waiter **waiters;
    size_t nwaiters, capwaiters;
    struct pc_fetch *next; /* in m->fetches */
};

static void fetch_unref(pc_fetch *f)
{
    pthread_mutex_lock(&f->mu);
    int left = --f->refs;
    pthread_mutex_unlock(&f->mu);
    if (left > 0)
        return;
    if (f->sp)
        pc_spool_unref(f->sp);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f->waiters);
    free(f);
}

/* Take the waiter list (with f->mu held); the caller resumes them after
 * unlocking. */
static pc_fetch_waiter **take_waiters(pc_fetch *f, size_t *n)
{
    pc_fetch_waiter **list = f->waiters;
    *n = f->nwaiters;
    f->waiters = NULL;
    f->nwaiters = f->capwaiters = 0;
    return list;
}

static void wake(pc_fetch_waiter **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        list[i]->resume(list[i]->ctx);
    free(list);
}

/* The size a manifest of t's repository declares for d: -1 when none we
 * hold references it (a client may GET a blob by digest alone). */
static int64_t declared_size(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d)
{
    uint64_t size = 0;
    if (pc_registry_cache_blob_bound(m->reg, t->local, d, &size) != 0 || size > (uint64_t)INT64_MAX)
        return -1;
    return (int64_t)size;
}

/* Whether the headers announce a body the bound refuses; f->refused says
 * why. */
static bool start_refused(pc_fetch *f, const pc_upstream_resp *r)
{
    int64_t cl = r->content_length;
    if (f->expect >= 0 && cl >= 0 && cl != f->expect)
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent Content-Length %lld for blob %s, which its manifest declares "
                 "as %lld bytes",
                 f->t.name, (long long)cl, f->d.str, (long long)f->expect);
    else if (f->expect < 0 && cl >= 0 && (uint64_t)cl > f->cap)
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent Content-Length %lld for blob %s, more than "
                 "cache.max_fetch_size (%llu bytes)",
                 f->t.name, (long long)cl, f->d.str, (unsigned long long)f->cap);
    return f->refused[0] != '\0';
}

static int on_start(const pc_upstream_resp *r, void *ctx)
{
    pc_fetch *f = ctx;
    size_t n;
    if (start_refused(f, r))
        return 1; /* before any body byte: nothing staged */
    pthread_mutex_lock(&f->mu);
    f->total = r->content_length >= 0 ? r->content_length : f->expect;
    f->state = F_STREAMING;
    pthread_cond_broadcast(&f->cv);
    pc_fetch_waiter **list = take_waiters(f, &n);
    pthread_mutex_unlock(&f->mu);
    wake(list, n);
    return f->m->stopping ? 1 : 0;
}

static int on_data(const void *buf, size_t len, void *ctx)
{
    pc_fetch *f = ctx;
    size_t n;
    if (f->m->stopping)
        return 1;
    if (f->total >= 0 && f->received + len > (uint64_t)f->total) {
        /* more than declared: a chunked body past the manifest's size (curl
         * itself never hands out more than a Content-Length) */
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent more than the %lld bytes of blob %s", f->t.name,
                 (long long)f->total, f->d.str);
        return 1;
    }
    if (f->total < 0 && f->received + len > f->cap) {
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent more than cache.max_fetch_size (%llu bytes) for blob %s "
                 "of unknown size",
                 f->t.name, (unsigned long long)f->cap, f->d.str);
        return 1;
    }
    if (pc_spool_append(f->sp, buf, len))
        return 1;
    pthread_mutex_lock(&f->mu);
    f->received += len;
    pc_fetch_waiter **list = take_waiters(f, &n);
    pthread_mutex_unlock(&f->mu);
    wake(list, n);
    pc_metrics_add("pullcache_upstream_bytes_total", f->m->ups[f->t.upstream].labels, len);
    return 0;
}

static void finish(pc_fetch *f, int state)
{
    size_t n;
    pthread_mutex_lock(&f->mu);
    f->state = state;
    pthread_cond_broadcast(&f->cv);
    pc_fetch_waiter **list = take_waiters(f, &n);
    pthread_mutex_unlock(&f->mu);
    wake(list, n);
}

/* One fetch, on a worker of the mirror's fetch pool. */
static void fetch_main(void *arg, void *worker)
{
    pc_fetch *f = arg;
    pc_mirror *m = f->m;
    pc_upstream_resp r;
    int state = F_FAILED;

    memset(&r, 0, sizeof(r));
    f->expect = declared_size(m, &f->t, &f->d);
    int rc = pc_upstream_blob(m->ups[f->t.upstream].client, f->t.repo, &f->d, false, on_start,
                              on_data, f, &r);
    if (rc == 0 && f->refused[0]) {
        /* the upstream broke the bound: its fault, not an abort of ours */
        r.cls = PC_UP_PROTOCOL;
        snprintf(r.error_message, sizeof(r.error_message), "%s", f->refused);
    }
    pc_mirror_count(m, &f->t, "blob", "GET", rc ? NULL : &r);
    if (rc)
        r.cls = PC_UP_PROTOCOL;
    bool complete =
        rc == 0 && r.cls == PC_UP_OK && (f->total < 0 || f->received == (uint64_t)f->total);
    if (complete) {
        /* verify, publish, link and record the access in one step under
         * the publish lock: gc cannot take the file in between (registry.h) */
        int crc = pc_registry_stage_commit(m->reg, f->sp, f->t.local, &f->d, f->received);
        if (crc == 0) {
            state = F_DONE;
        } else if (crc == PC_EDIGEST) {
            pc_log(PC_LOG_WARN, "upstream %s: blob %s of %s failed verification; not stored",
                   f->t.name, f->d.str, f->t.repo);
            memset(&f->fail, 0, sizeof(f->fail));
            f->fail.status = 502;
            snprintf(f->fail.code, sizeof(f->fail.code), "UNAVAILABLE");
            snprintf(f->fail.message, sizeof(f->fail.message),
                     "upstream %s sent content that does not match digest %s", f->t.name, f->d.str);
        } else {
            char why[256];
            snprintf(why, sizeof(why), "%s", pc_error_last());
            pc_log(PC_LOG_ERROR, "blob %s of %s from upstream %s could not be stored (%s): %s",
                   f->d.str, f->t.repo, f->t.name, pc_result_str(crc), why);
            memset(&f->fail, 0, sizeof(f->fail));
            f->fail.status = 500;
            snprintf(f->fail.code, sizeof(f->fail.code), "UNKNOWN");
            snprintf(f->fail.message, sizeof(f->fail.message), "cannot store blob %s: %s", f->d.str,
                     why);
        }
    } else {
        pc_spool_fail(f->sp, PC_EUPSTREAM);
        if (r.cls == PC_UP_OK) /* short body with a 2xx */
            r.cls = PC_UP_RESET;
        pc_mirror_fail(m, &f->t, &r, "blob", &f->fail);
        if (f->refused[0]) {
            snprintf(f->fail.message, sizeof(f->fail.message), "%s; not stored", f->refused);
            pc_log(PC_LOG_WARN, "%s (%s); not stored", f->refused, f->t.repo);
        } else if (f->received)
            pc_log(PC_LOG_WARN, "upstream %s: blob %s of %s broke off after %llu bytes (%s)",
                   f->t.name, f->d.str, f->t.repo, (unsigned long long)f->received,
                   pc_up_class_str(r.cls));
    }
    pc_upstream_resp_clear(&r);
    if (state == F_DONE) {
        char labels[300];
        snprintf(labels, sizeof(labels), "%s,kind=\"blob\"", m->ups[f->t.upstream].labels);
        pc_metrics_add("pullcache_cache_misses_total", labels, 1);
    }

    /* Leave the table before announcing the end, so a request arriving
     * now finds the published blob (or starts a new fetch after a
     * failure). */
    pthread_mutex_lock(&m->lock);
    for (pc_fetch **pp = &m->fetches; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    pthread_mutex_unlock(&m->lock);
    finish(f, state);
    pc_metrics_gauge_add("pullcache_fetches_in_flight", m->ups[f->t.upstream].labels, -1);
    fetch_unref(f);

    pthread_mutex_lock(&m->lock);
    if (--m->nfetch_threads == 0)
        pthread_cond_broadcast(&m->idle);
    pthread_mutex_unlock(&m->lock);
}

/* The fetch pool (m->lock held), started on the first fetch: fetches run
 * there, never on the request pool, so a request job waiting for a fetch to
 * start never holds the worker that fetch needs (jobpool.h). A fetch job
 * waits for nothing but its upstream. */
static pc_jobpool *fetch_pool(pc_mirror *m)
{
    if (!m->fetch_pool) {
        unsigned n = m->cfg->cache ? m->cfg->cache->fetch_workers : 0;
        pc_jobpool_opts o = {.workers = n ? n : PC_CONFIG_WORKERS_DEFAULT, .name = "pc-fetch"};
        pc_jobpool_new(&m->fetch_pool, &o);
    }
    return m->fetch_pool;
}

void pc_fetch_pool_stop(pc_mirror *m)
{
    pthread_mutex_lock(&m->lock);
    pc_jobpool *p = m->fetch_pool;
    m->fetch_pool = NULL;
    pthread_mutex_unlock(&m->lock);
    /* queued fetches still run: with m->stopping they end at their first
     * callback, failing their waiters */
    pc_jobpool_free(p, PC_JOBPOOL_FINISH);
}

int pc_fetch_join(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d, pc_fetch **out)
{
    uint64_t size;
    int rc = 0;

    pthread_mutex_lock(&m->lock);
    if (m->stopping) {
        pthread_mutex_unlock(&m->lock);
        pc_error_set("shutting down");
        return PC_ERR;
    }
    for (pc_fetch *f = m->fetches; f; f = f->next) {
        if (pc_digest_equal(&f->d, d)) {
            pthread_mutex_lock(&f->mu);
            f->refs++;
            pthread_mutex_unlock(&f->mu);
            pthread_mutex_unlock(&m->lock);
            pc_metrics_add("pullcache_fetch_waiters_total", m->ups[t->upstream].labels, 1);
            *out = f;
            return 0;
        }
    }
    /* Published meanwhile (a fetch that ended since the caller looked):
     * make it this repository's (strict: only when it already is), under
     * m->lock so that a fetch ending now is seen in the table or here. */
    rc = m->strict ? pc_registry_cache_blob_hit(m->reg, t->local, d, &size)
                   : pc_registry_cache_adopt(m->reg, t->local, d, &size);
    if (rc != PC_ENOTFOUND) {
        pthread_mutex_unlock(&m->lock);
        return rc ? rc : PC_EEXISTS;
    }
    rc = 0;
    pc_fetch *f = calloc(1, sizeof(*f));
    if (!f) {
        pthread_mutex_unlock(&m->lock);
        return PC_ENOMEM;
    }
    f->m = m;
    f->t = *t;
    f->d = *d;
    f->total = -1;
    f->expect = -1;
    f->cap = m->cfg->cache && m->cfg->cache->max_fetch_size ? m->cfg->cache->max_fetch_size
                                                            : PC_CONFIG_MAX_FETCH_DEFAULT;
    f->refs = 2; /* the caller and the fetch job */
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if ((rc = pc_registry_stage_begin(m->reg, d, &f->sp)))
        goto fail;
    pc_jobpool *pool = fetch_pool(m);
    if (!pool || (rc = pc_jobpool_submit(pool, fetch_main, NULL, f)) != 0) {
        pc_error_set("cannot start a fetch");
        rc = rc ? rc : PC_ERR;
        goto fail;
    }
    f->next = m->fetches;
    m->fetches = f;
    m->nfetch_threads++;
    pthread_mutex_unlock(&m->lock);
    pc_metrics_gauge_add("pullcache_fetches_in_flight", m->ups[t->upstream].labels, 1);
    *out = f;
    return 0;
fail:
    pthread_mutex_unlock(&m->lock);
    f->refs = 1;
    fetch_unref(f);
    return rc;
}

int pc_fetch_wait_start(pc_fetch *f, int64_t *size, pc_mirror_outcome *out)
{
    pthread_mutex_lock(&f->mu);
    while (f->state == F_STARTING)
        pthread_cond_wait(&f->cv, &f->mu);
    int state = f->state;
    *size = f->total;
    if (state == F_FAILED)
        *out = f->fail;
    pthread_mutex_unlock(&f->mu);
    return state == F_FAILED ? PC_EUPSTREAM : 0;
}

/* Add w to the waiters woken at the next event (f->mu held). 0 or -1. */
static int add_waiter(pc_fetch *f, pc_fetch_waiter *w)
{
    if (f->nwaiters == f->capwaiters) {
        size_t cap = f->capwaiters ? f->capwaiters * 2 : 8;
        pc_fetch_waiter **nw = realloc(f->waiters, cap * sizeof(*nw));
        if (!nw)
            return -1;
        f->waiters = nw;
        f->capwaiters = cap;
    }
    f->waiters[f->nwaiters++] = w;
    return 0;
}

long pc_fetch_read(pc_fetch *f, uint64_t pos, void *buf, size_t max, pc_fetch_waiter *w)
{
    pthread_mutex_lock(&f->mu);
    if (f->state == F_FAILED) {
        pthread_mutex_unlock(&f->mu);
        return PC_ERR;
    }
    /* Until the digest is verified the last byte stays back, so a transfer
     * that turns out bad can never complete at the client. */
    uint64_t limit = f->state == F_DONE ? f->received : (f->received ? f->received - 1 : 0);
    if (pos < limit) {
        size_t n = (size_t)(limit - pos < max ? limit - pos : max);
        pthread_mutex_unlock(&f->mu);
        long got = pc_spool_read(f->sp, pos, buf, n);
        return got > 0 ? got : PC_ERR;
    }
    if (f->state == F_DONE) {
        pthread_mutex_unlock(&f->mu);
        return PC_ENOTFOUND;
    }
    if (add_waiter(f, w) != 0) {
        pthread_mutex_unlock(&f->mu);
        return PC_ERR;
    }
    w->suspend(w->ctx);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

int pc_fetch_when_started(pc_fetch *f, pc_fetch_waiter *w)
{
    pthread_mutex_lock(&f->mu);
    int state = f->state;
    if (state == F_STARTING && add_waiter(f, w) != 0) { /* on_start or finish wakes it */
        pthread_mutex_unlock(&f->mu);
        return PC_ENOMEM;
    }
    pthread_mutex_unlock(&f->mu);
    return state == F_STARTING ? 1 : state == F_FAILED ? PC_EUPSTREAM : 0;
}

void pc_fetch_unwait(pc_fetch *f, pc_fetch_waiter *w)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nwaiters; i++)
        if (f->waiters[i] == w) {
            f->waiters[i] = f->waiters[--f->nwaiters];
            break;
        }
    pthread_mutex_unlock(&f->mu);
}

bool pc_fetch_running(pc_mirror *m, const pc_digest *d)
{
    bool found = false;
    pthread_mutex_lock(&m->lock);
    for (pc_fetch *f = m->fetches; f && !found; f = f->next)
        found = pc_digest_equal(&f->d, d);
    pthread_mutex_unlock(&m->lock);
    return found;
}

void pc_fetch_release(pc_fetch *f)
{
    if (f)
        fetch_unref(f);
}
