/*
 * mirror_history.c - the sampler behind the status page's plots: a thread
 * that every PC_HISTORY_INTERVAL seconds (on the multiples of it, by the
 * wall clock) records for each upstream the pull budget last seen and what
 * the counters (metrics.h) moved since the last sample into the ring
 * (history.h); about once a minute, and when it stops, it writes the chunks
 * that changed to the meta store's notes, and at start it reads them back,
 * so a restart keeps the hours behind it. Several replicas sharing one meta
 * store write the same notes: what a restart finds is whichever wrote each
 * chunk last (the budget they report is one budget).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define FLUSH_EVERY 6 /* samples between writes */
#define NCHUNKS (PC_HISTORY_CAPACITY / PC_HISTORY_CHUNK)

_Static_assert(PC_HISTORY_CAPACITY % PC_HISTORY_CHUNK == 0, "whole chunks");

struct pc_mirror_hist {
    pc_history *h;
    pthread_t thread;
    bool running;
    bool stop;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    pc_mirror_totals *base; /* per upstream: the counters at the last sample */
    int64_t *flushed;       /* per upstream: the newest sample written */
    bool warned;            /* a write failed (logged once) */
};

static void note_key(pc_mirror *m, int i, int64_t chunk, char *key, size_t size)
{
    snprintf(key, size, "history:%s:%lld", m->ups[i].cfg->name, (long long)(chunk % NCHUNKS));
}

static int64_t chunk_of(int64_t t)
{
    return t / PC_HISTORY_INTERVAL / PC_HISTORY_CHUNK;
}

static int sample_cmp(const void *a, const void *b)
{
    const pc_history_sample *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

/* Read upstream i's notes back into the ring: the samples of the last
 * PC_HISTORY_HOURS, in order. */
static void restore(pc_mirror *m, int i)
{
    struct pc_mirror_hist *mh = m->hist;
    pc_history_sample *all = malloc(sizeof(*all) * PC_HISTORY_CAPACITY);
    pc_history_sample chunk[PC_HISTORY_CHUNK];
    char key[PC_LEASE_KEY_MAX], value[PC_NOTE_MAX];
    int64_t now = pc_util_now_s(), oldest = now - (int64_t)PC_HISTORY_HOURS * 3600;
    int n = 0;
    if (!all)
        return;
    for (int64_t slot = 0; slot < NCHUNKS; slot++) {
        note_key(m, i, slot, key, sizeof(key));
        if (pc_registry_note_get(m->reg, key, value, sizeof(value), NULL) != 0)
            continue;
        int got = pc_history_chunk_decode(value, chunk);
        for (int k = 0; k < got && n < PC_HISTORY_CAPACITY; k++)
            if (chunk[k].t > oldest && chunk[k].t <= now && chunk_of(chunk[k].t) % NCHUNKS == slot)
                all[n++] = chunk[k];
    }
    qsort(all, (size_t)n, sizeof(*all), sample_cmp);
    for (int k = 0; k < n; k++)
        pc_history_add(mh->h, i, &all[k]);
    if (n)
        mh->flushed[i] = all[n - 1].t;
    free(all);
    if (n)
        pc_log(PC_LOG_INFO, "status history of upstream %s: %d sample(s) restored",
               m->ups[i].cfg->name, n);
}

/* Write upstream i's chunks that have samples newer than the last write. */
static void flush(pc_mirror *m, int i)
{
    struct pc_mirror_hist *mh = m->hist;
    pc_history_sample s[PC_HISTORY_CHUNK + 1];
    char key[PC_LEASE_KEY_MAX], value[PC_NOTE_MAX];
    pc_history_sample first;
    if (pc_history_get(mh->h, i, mh->flushed[i], &first, 1) != 1)
        return; /* nothing new */
    int64_t last = mh->flushed[i];
    for (int64_t c = chunk_of(first.t);;) {
        int64_t start = c * PC_HISTORY_CHUNK * PC_HISTORY_INTERVAL;
        int n = pc_history_get(mh->h, i, start - 1, s, PC_HISTORY_CHUNK + 1);
        int keep = 0;
        while (keep < n && chunk_of(s[keep].t) == c)
            keep++;
        if (keep > 0) {
            last = s[keep - 1].t;
            note_key(m, i, c, key, sizeof(key));
            if (pc_history_chunk_encode(s, keep, value, sizeof(value)) ||
                pc_registry_note_put(m->reg, key, value)) {
                if (!mh->warned)
                    pc_log(PC_LOG_WARN, "status history of upstream %s not saved: %s",
                           m->ups[i].cfg->name, pc_error_last());
                mh->warned = true;
            }
        }
        if (keep == n)
            break;
        c = chunk_of(s[keep].t); /* the next chunk with samples */
    }
    mh->flushed[i] = last;
}

static void sample(pc_mirror *m, int64_t t)
{
    struct pc_mirror_hist *mh = m->hist;
    for (int i = 0; i < m->nups; i++) {
        pc_mirror_totals now;
        pc_budget_info in;
        pc_mirror_stats_totals(m, i, &now);
        pc_mirror_totals *b = &mh->base[i];
        pc_history_sample s = {.t = t, .remaining = -1, .limit = -1};
        if (pc_budget_get(m->budget, i, &in) == 0 && in.state != PC_BUDGET_UNKNOWN) {
            s.remaining = in.remaining;
            s.limit = in.limit;
        }
        s.reserve = (int64_t)m->ups[i].cfg->reserve;
        s.n429 = now.n429 - b->n429;
        s.hits = now.hits - b->hits;
        s.misses = now.misses - b->misses;
        s.pulls = now.pulls - b->pulls;
        s.bytes = now.bytes - b->bytes;
        s.avoided = now.avoided - b->avoided;
        *b = now;
        pc_history_add(mh->h, i, &s);
    }
}

static void *history_main(void *arg)
{
    pc_mirror *m = arg;
    struct pc_mirror_hist *mh = m->hist;
    int since_flush = 0;
    pthread_mutex_lock(&mh->lock);
    while (!mh->stop) {
        int64_t next = (pc_util_now_s() / PC_HISTORY_INTERVAL + 1) * PC_HISTORY_INTERVAL;
        struct timespec until = {.tv_sec = (time_t)next};
        while (!mh->stop && pc_util_now_s() < next)
            if (pthread_cond_timedwait(&mh->cv, &mh->lock, &until) == ETIMEDOUT)
                break;
        if (mh->stop)
            break;
        pthread_mutex_unlock(&mh->lock);
        sample(m, next);
        if (++since_flush >= FLUSH_EVERY) {
            for (int i = 0; i < m->nups; i++)
                flush(m, i);
            since_flush = 0;
        }
        pthread_mutex_lock(&mh->lock);
    }
    pthread_mutex_unlock(&mh->lock);
    for (int i = 0; i < m->nups; i++)
        flush(m, i);
    return NULL;
}

int pc_mirror_history_start(pc_mirror *m)
{
    if (!m || m->hist)
        return m ? 0 : PC_EINVAL;
    struct pc_mirror_hist *mh = calloc(1, sizeof(*mh));
    const char **names = calloc((size_t)m->nups + 1, sizeof(*names));
    int rc = PC_ENOMEM;
    if (!mh || !names)
        goto fail;
    for (int i = 0; i < m->nups; i++)
        names[i] = m->ups[i].cfg->name;
    mh->base = calloc((size_t)m->nups + 1, sizeof(*mh->base));
    mh->flushed = calloc((size_t)m->nups + 1, sizeof(*mh->flushed));
    if (!mh->base || !mh->flushed || pc_history_new(&mh->h, names, m->nups, PC_HISTORY_CAPACITY))
        goto fail;
    pthread_mutex_init(&mh->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&mh->cv, &ca);
    pthread_condattr_destroy(&ca);
    m->hist = mh;
    for (int i = 0; i < m->nups; i++) {
        restore(m, i);
        pc_mirror_stats_totals(m, i, &mh->base[i]);
    }
    if (pthread_create(&mh->thread, NULL, history_main, m) != 0) {
        pc_error_set("cannot start the status history thread");
        rc = PC_ERR;
        goto fail_started;
    }
    mh->running = true;
    pthread_setname_np(mh->thread, "pc-history");
    free(names);
    return 0;
fail_started:
    m->hist = NULL;
    pthread_mutex_destroy(&mh->lock);
    pthread_cond_destroy(&mh->cv);
fail:
    if (mh) {
        pc_history_free(mh->h);
        free(mh->base);
        free(mh->flushed);
    }
    free(mh);
    free(names);
    return rc;
}

void pc_mirror_history_stop(pc_mirror *m)
{
    struct pc_mirror_hist *mh = m ? m->hist : NULL;
    if (!mh)
        return;
    if (mh->running) {
        pthread_mutex_lock(&mh->lock);
        mh->stop = true;
        pthread_cond_broadcast(&mh->cv);
        pthread_mutex_unlock(&mh->lock);
        pthread_join(mh->thread, NULL);
        mh->running = false;
    }
}

void pc_mirror_history_free(pc_mirror *m)
{
    struct pc_mirror_hist *mh = m ? m->hist : NULL;
    if (!mh)
        return;
    pc_mirror_history_stop(m);
    m->hist = NULL;
    pthread_mutex_destroy(&mh->lock);
    pthread_cond_destroy(&mh->cv);
    pc_history_free(mh->h);
    free(mh->base);
    free(mh->flushed);
    free(mh);
}

pc_history *pc_mirror_history(pc_mirror *m)
{
    return m && m->hist ? m->hist->h : NULL;
}
