/*
 * loadgen.c - the rollout simulation behind `pullcache loadgen`: a job pool
 * (jobpool.c) runs one pull of a node at a time with the pull engine
 * (discard, or manifests only), tallies the outcome and queues that node's
 * next pull at the back, so a node never pulls twice at once and the nodes
 * take turns; the calling thread watches the clock and the stop flag,
 * cancels pulls in flight when the run must end, and ticks.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "loadgen.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobpool.h"

#define LOADGEN_MAX_WORKERS 256
#define TICK_MS 200

typedef struct run run;

typedef struct {
    run *r;
    uint64_t next; /* next pull of this node, 0 .. pulls_per_node x nimages */
    bool busy;     /* a pull of it is queued or running */
} node;

struct run {
    const pc_loadgen_opts *o;
    pc_loadgen_result *res;
    pthread_mutex_t lock; /* guards everything below and res */
    pthread_cond_t cond;  /* a pull ended, or the run is ending */
    node *nodes;
    pc_jobpool *pool;
    unsigned busy; /* pulls in flight */
    bool ending;   /* start no more pulls */
    bool nomem;
    uint64_t per_node; /* pulls of one node */
    size_t lat_cap;
    atomic_bool cancel;          /* handed to the pulls in flight */
    atomic_uint_fast64_t moving; /* blob bytes of the pulls in flight so far */
};

/* A pull's progress, counted into run->moving as its bytes arrive. */
typedef struct {
    run *r;
    uint64_t counted;
} moving_ctx;

static void on_moving(const pc_pull_progress *p, void *ctx)
{
    moving_ctx *m = ctx;
    if (p->total_done > m->counted) {
        atomic_fetch_add(&m->r->moving, p->total_done - m->counted);
        m->counted = p->total_done;
    }
}

double pc_loadgen_percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    double x = p / 100.0 * (double)n;
    size_t rank = x <= 0 ? 0 : (size_t)x;
    if ((double)rank < x)
        rank++; /* ceil without libm */
    size_t i = rank < 1 ? 0 : rank - 1;
    return sorted[i < n ? i : n - 1];
}

/* Tally one finished pull (lock held). */
static void tally(run *r, int rc, const pc_pull_result *pr)
{
    pc_loadgen_result *res = r->res;
    res->bytes += pr->bytes;
    res->manifest_bytes += pr->manifest_bytes;
    res->manifests += pr->manifests;
    if (rc == 0) {
        res->ok++;
        if (res->nlatencies == r->lat_cap) {
            size_t ncap = r->lat_cap ? r->lat_cap * 2 : 256;
            double *nl = realloc(res->latencies, ncap * sizeof(*nl));
            if (!nl) {
                r->nomem = true;
                return;
            }
            res->latencies = nl;
            r->lat_cap = ncap;
        }
        res->latencies[res->nlatencies++] = pr->seconds;
        return;
    }
    if (pr->error.kind == PC_PULL_FAIL_CANCELED) {
        res->canceled++;
        return;
    }
    res->failed++;
    const char *key = pr->error.key[0] ? pr->error.key : "unknown";
    for (size_t i = 0; i < res->nfailures; i++) {
        if (strcmp(res->failures[i].key, key) == 0) {
            res->failures[i].count++;
            return;
        }
    }
    pc_loadgen_failure *nf = realloc(res->failures, (res->nfailures + 1) * sizeof(*nf));
    if (!nf) {
        r->nomem = true;
        return;
    }
    res->failures = nf;
    pc_loadgen_failure *f = &nf[res->nfailures++];
    memset(f, 0, sizeof(*f));
    snprintf(f->key, sizeof(f->key), "%s", key);
    snprintf(f->code, sizeof(f->code), "%s", pr->error.code);
    snprintf(f->example, sizeof(f->example), "%s", pr->error.message);
    f->status = pr->error.status;
    f->count = 1;
}

static void pull_job(void *arg, void *worker);

/* Queue the next pull of node n (lock held); a node with none left, or a
 * run that is ending, is done pulling. */
static void queue_next(run *r, node *n)
{
    n->busy = false;
    if (r->ending || n->next >= r->per_node)
        return;
    if (pc_jobpool_submit(r->pool, pull_job, NULL, n) != 0) {
        r->nomem = true; /* the node cannot go on: end the run */
        r->ending = true;
        return;
    }
    n->busy = true;
}

/* One pull of a node, on a pool worker. */
static void pull_job(void *arg, void *worker)
{
    node *n = arg;
    run *r = n->r;
    const pc_loadgen_opts *o = r->o;
    pthread_mutex_lock(&r->lock);
    if (r->ending) {
        n->busy = false;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        return;
    }
    uint64_t seq = n->next++;
    r->busy++;
    r->res->started++;
    pthread_mutex_unlock(&r->lock);

    const pc_loadgen_image *im = &o->images[seq % o->nimages];
    pc_pull_opts po = {
        .repo = im->repo,
        .reference = im->reference,
        .platform = o->platform,
        .manifest_only = o->manifest_only,
        .concurrency = o->blob_concurrency,
        .cancel = &r->cancel,
        .on_progress = on_moving,
    };
    moving_ctx mc = {r, 0};
    po.progress_ctx = &mc;
    pc_pull_result pr;
    int rc = pc_pull_run(im->src, &po, &pr);

    pthread_mutex_lock(&r->lock);
    atomic_fetch_sub(&r->moving, mc.counted); /* now in res->bytes */
    tally(r, rc, &pr);
    pc_pull_result_clear(&pr);
    r->busy--;
    queue_next(r, n);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void pc_loadgen_result_clear(pc_loadgen_result *res)
{
    if (!res)
        return;
    free(res->failures);
    free(res->latencies);
    memset(res, 0, sizeof(*res));
}

int pc_loadgen_run(const pc_loadgen_opts *o, pc_loadgen_result *res)
{
    run r = {.o = o, .res = res};
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (!o->images || o->nimages == 0 || o->nodes == 0 || o->pulls_per_node == 0 ||
        o->concurrency == 0 || o->duration < 0) {
        pc_error_set("loadgen: need images, and nodes, pulls per node and concurrency of at "
                     "least 1");
        return PC_EINVAL;
    }
    for (size_t i = 0; i < o->nimages; i++) {
        if (!o->images[i].src || !o->images[i].repo || !o->images[i].reference) {
            pc_error_set("loadgen: image %zu has no source, repository or reference", i);
            return PC_EINVAL;
        }
    }
    r.per_node = (uint64_t)o->pulls_per_node * o->nimages;
    res->planned = r.per_node * o->nodes;
    unsigned want = o->concurrency < o->nodes ? o->concurrency : o->nodes;
    if (want > LOADGEN_MAX_WORKERS)
        want = LOADGEN_MAX_WORKERS;
    r.nodes = calloc(o->nodes, sizeof(*r.nodes));
    if (!r.nodes) {
        pc_error_set("loadgen: out of memory");
        return PC_ENOMEM;
    }
    for (unsigned i = 0; i < o->nodes; i++)
        r.nodes[i].r = &r;
    pthread_mutex_init(&r.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r.cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&r.cancel, false);

    double t0 = pc_util_mono_s(), deadline = o->duration > 0 ? t0 + o->duration : 0;
    pc_jobpool_opts po = {.workers = want, .name = "pc-loadgen"};
    if ((rc = pc_jobpool_new(&r.pool, &po)) != 0) {
        pc_error_set("loadgen: cannot start its workers");
        goto done;
    }

    /* every node's first pull, in node order; each queues its next */
    pthread_mutex_lock(&r.lock);
    for (unsigned i = 0; i < o->nodes; i++)
        queue_next(&r, &r.nodes[i]);
    for (;;) {
        bool all_done = true;
        for (unsigned i = 0; i < o->nodes && all_done; i++)
            all_done = !r.nodes[i].busy && r.nodes[i].next >= r.per_node;
        if (all_done || (r.ending && r.busy == 0))
            break;
        if (!r.ending) {
            if (o->stop && atomic_load(o->stop)) {
                res->end = PC_LOADGEN_STOPPED;
                r.ending = true;
            } else if (deadline > 0 && pc_util_mono_s() >= deadline) {
                res->end = PC_LOADGEN_DURATION;
                r.ending = true;
            }
            if (r.ending) {
                atomic_store(&r.cancel, true);
                pthread_cond_broadcast(&r.cond);
                continue;
            }
        }
        if (o->on_tick) {
            res->seconds = pc_util_mono_s() - t0;
            res->bytes_moving = atomic_load(&r.moving);
            o->on_tick(res, o->tick_ctx);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long wait_ms = TICK_MS;
        if (deadline > 0 && !r.ending) {
            double left = (deadline - pc_util_mono_s()) * 1000.0;
            if (left < wait_ms)
                wait_ms = left < 1 ? 1 : (long)left;
        }
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r.cond, &r.lock, &ts);
    }
    r.ending = true;
    pthread_cond_broadcast(&r.cond);
    pthread_mutex_unlock(&r.lock);

done:
    pc_jobpool_free(r.pool, PC_JOBPOOL_FINISH); /* pulls still queued see ending */
    res->seconds = pc_util_mono_s() - t0;
    res->bytes_moving = 0; /* every pull's bytes are in res->bytes now */
    if (res->nlatencies) {
        qsort(res->latencies, res->nlatencies, sizeof(double), cmp_double);
        res->p50 = pc_loadgen_percentile(res->latencies, res->nlatencies, 50);
        res->p95 = pc_loadgen_percentile(res->latencies, res->nlatencies, 95);
        res->p99 = pc_loadgen_percentile(res->latencies, res->nlatencies, 99);
        res->max = res->latencies[res->nlatencies - 1];
    }
    if (rc == 0 && r.nomem) {
        pc_error_set("loadgen: out of memory while counting");
        rc = PC_ENOMEM;
    }
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
    free(r.nodes);
    return rc;
}
