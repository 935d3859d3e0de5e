/*
 * jobpool.c - one bounded job pool (fixed workers, unbounded FIFO queue,
 * per-worker init/fini, wait-all, finishing or canceling shutdown) and the
 * progress tally of blob transfers; see jobpool.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "jobpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    pc_jobpool_fn fn;
    pc_jobpool_cancel_fn cancel;
    void *arg;
    struct job *next;
} job;

struct pc_jobpool {
    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t work;  /* a job was queued, or the pool is stopping */
    pthread_cond_t idle;  /* the queue is empty and no job runs */
    job *head, *tail;
    size_t queued, running;
    bool stopping;
    bool joined; /* pc_jobpool_stop ran (only its caller reads and writes it) */
    pthread_t *threads;
    unsigned nthreads;
    pc_jobpool_opts o;
    char name[11];
};

static void *worker_main(void *arg)
{
    pc_jobpool *p = arg;
    void *w = p->o.init ? p->o.init(p->o.ctx) : NULL;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        job *j = p->head;
        if (!j)
            break; /* stopping, and nothing left to run */
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg, w);
        free(j);
        pthread_mutex_lock(&p->lock);
        p->running--;
        if (!p->head && p->running == 0)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
    if (p->o.fini)
        p->o.fini(p->o.ctx, w);
    return NULL;
}

int pc_jobpool_new(pc_jobpool **out, const pc_jobpool_opts *o)
{
    *out = NULL;
    if (!o || o->workers == 0 || o->workers > PC_JOBPOOL_MAX_WORKERS) {
        pc_error_set("job pool: between 1 and %u workers, not %u", PC_JOBPOOL_MAX_WORKERS,
                     o ? o->workers : 0);
        return PC_EINVAL;
    }
    pc_jobpool *p = calloc(1, sizeof(*p));
    if (!p || !(p->threads = calloc(o->workers, sizeof(*p->threads)))) {
        free(p);
        pc_error_set("job pool: out of memory");
        return PC_ENOMEM;
    }
    p->o = *o;
    snprintf(p->name, sizeof(p->name), "%s", o->name ? o->name : "pc-pool");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    for (unsigned i = 0; i < o->workers; i++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, worker_main, p) != 0)
            break; /* run with those started */
        char tname[16];
        snprintf(tname, sizeof(tname), "%.10s-%u", p->name, i % 1000u);
        pthread_setname_np(p->threads[p->nthreads], tname);
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->idle);
        free(p->threads);
        free(p);
        pc_error_set("job pool: cannot start a thread");
        return PC_ERR;
    }
    *out = p;
    return 0;
}

int pc_jobpool_submit(pc_jobpool *p, pc_jobpool_fn fn, pc_jobpool_cancel_fn cancel, void *arg)
{
    job *j = malloc(sizeof(*j));
    if (!j) {
        pc_error_set("job pool: out of memory");
        return PC_ENOMEM;
    }
    j->fn = fn;
    j->cancel = cancel;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        free(j);
        pc_error_set("job pool: shutting down");
        return PC_ERR;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void pc_jobpool_wait(pc_jobpool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->head || p->running)
        pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void pc_jobpool_stop(pc_jobpool *p, pc_jobpool_end how)
{
    if (!p || p->joined)
        return;
    job *dropped = NULL;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    if (how == PC_JOBPOOL_CANCEL) {
        dropped = p->head;
        p->head = p->tail = NULL;
        p->queued = 0;
    }
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    while (dropped) {
        job *j = dropped;
        dropped = j->next;
        if (j->cancel)
            j->cancel(j->arg);
        free(j);
    }
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->joined = true;
}

void pc_jobpool_free(pc_jobpool *p, pc_jobpool_end how)
{
    if (!p)
        return;
    pc_jobpool_stop(p, how);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p->threads);
    free(p);
}

unsigned pc_jobpool_workers(const pc_jobpool *p)
{
    return p->nthreads;
}

void pc_jobpool_stats(pc_jobpool *p, size_t *queued, size_t *running)
{
    pthread_mutex_lock(&p->lock);
    if (queued)
        *queued = p->queued;
    if (running)
        *running = p->running;
    pthread_mutex_unlock(&p->lock);
}

/* ---- progress ---- */

void pc_jobpool_progress_init(pc_jobpool_progress *pr, pc_pull_progress_cb cb, void *ctx)
{
    memset(pr, 0, sizeof(*pr));
    pr->cb = cb;
    pr->ctx = ctx;
    pthread_mutex_init(&pr->lock, NULL);
}

void pc_jobpool_progress_destroy(pc_jobpool_progress *pr)
{
    pthread_mutex_destroy(&pr->lock);
}

/* Send one event (lock held). */
static void emit(pc_jobpool_progress *pr, pc_pull_event ev, size_t index, const pc_pull_desc *d,
                 uint64_t done)
{
    if (!pr->cb)
        return;
    pc_pull_progress e = {
        .event = ev,
        .blob = index,
        .nblobs = pr->nblobs,
        .digest = d ? &d->digest : NULL,
        .size = d ? d->size : 0,
        .done = done,
        .total_size = pr->total_size,
        .total_done = pr->total_done,
        .blobs_done = pr->blobs_done,
    };
    pr->cb(&e, pr->ctx);
}

void pc_jobpool_progress_add(pc_jobpool_progress *pr, uint64_t size)
{
    pthread_mutex_lock(&pr->lock);
    pr->nblobs++;
    pr->total_size += size;
    pthread_mutex_unlock(&pr->lock);
}

void pc_jobpool_progress_plan(pc_jobpool_progress *pr)
{
    pthread_mutex_lock(&pr->lock);
    emit(pr, PC_PULL_EV_PLAN, 0, NULL, 0);
    pthread_mutex_unlock(&pr->lock);
}

void pc_jobpool_progress_start(pc_jobpool_progress *pr, size_t index, const pc_pull_desc *d)
{
    pthread_mutex_lock(&pr->lock);
    emit(pr, PC_PULL_EV_START, index, d, 0);
    pthread_mutex_unlock(&pr->lock);
}

void pc_jobpool_progress_data(pc_jobpool_progress *pr, size_t index, const pc_pull_desc *d,
                              uint64_t *hw, uint64_t pos)
{
    pthread_mutex_lock(&pr->lock);
    if (pos > *hw) {
        pr->total_done += pos - *hw;
        *hw = pos;
        emit(pr, PC_PULL_EV_DATA, index, d, pos);
    }
    pthread_mutex_unlock(&pr->lock);
}

void pc_jobpool_progress_end(pc_jobpool_progress *pr, size_t index, const pc_pull_desc *d,
                             uint64_t *hw, pc_pull_event ev)
{
    pthread_mutex_lock(&pr->lock);
    if (ev != PC_PULL_EV_FAILED) {
        if (d->size > *hw)
            pr->total_done += d->size - *hw;
        *hw = d->size;
        pr->blobs_done++;
    }
    emit(pr, ev, index, d, ev == PC_PULL_EV_FAILED ? 0 : d->size);
    pthread_mutex_unlock(&pr->lock);
}

uint64_t pc_jobpool_progress_done(pc_jobpool_progress *pr)
{
    pthread_mutex_lock(&pr->lock);
    uint64_t n = pr->total_done;
    pthread_mutex_unlock(&pr->lock);
    return n;
}
