/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_s3_read.c - reading committed blobs of the S3 backend
 * (pc_blob_rd): ranged GETs, streamed ahead of the reader.
 *
 * open() GETs the first 256 KiB itself: it learns the size and the ETag
 * with no HEAD, and small blobs (manifests, configs) are read in that one
 * request. A read past it starts a stream: a thread of the reader's own
 * GETs the rest in ranges growing from 8 to 64 MiB (each on a pooled
 * keep-alive connection) into a ring (4 MiB, less when many streams run)
 * the reader drains, so fetching
 * and sending overlap. A read elsewhere than where the stream stands
 * (a Range request) stops it and starts another there.
 *
 * Every GET after the first carries If-Match with the ETag the first one
 * saw: a blob removed or replaced under an open reader fails the next
 * request with PC_ENOTFOUND (rule 4) instead of serving other bytes;
 * bytes already fetched before are still the blob's.
 */
#include "blob_s3_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define WIN_FIRST ((size_t)256 << 10)
/* A stream's ring: RING_MAX while few streams run; the rings of all
 * streams of the process share RING_BUDGET, and a stream started when it
 * is spent gets RING_MIN (100 clients streaming at once stay within a few
 * tens of MiB). Rings are mapped and unmapped, so their memory goes back
 * to the system when a stream ends. */
#define RING_MAX ((size_t)4 << 20)
#define RING_MIN ((size_t)64 << 10)
#define RING_BUDGET ((size_t)8 << 20)
/* A waiting read_nowait is resumed once this much is in the ring (or half
 * a smaller ring). */
#define WAKE_MAX ((size_t)1 << 20)
#define RANGE_FIRST ((uint64_t)8 << 20)
#define RANGE_MAX ((uint64_t)64 << 20)

typedef struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *ring;
    size_t cap;        /* the ring's size */
    size_t head, fill; /* ring[head..] holds fill bytes, at blob offset pos */
    uint64_t pos, end; /* the stream covers [pos, end) */
    bool done, stop;
    const pc_blob_waiter *waiter; /* a read_nowait waiting for bytes, or NULL */
    int rc;
    char msg[512]; /* rc's message, for the reader's thread */
} s3_stream;

typedef struct {
    pc_blob_rd base;
    s3_store *st;
    char key[S3_KEY_MAX];
    char etag[80];
    unsigned char *win; /* bytes [0, win_len) of the blob, from open() */
    size_t win_len;
    s3_stream *sm; /* NULL when no stream runs */
} s3_rd;

typedef struct {
    unsigned char *dst;
    size_t cap, n;
} sink;

static int to_sink(const void *buf, size_t n, void *ctx)
{
    sink *k = ctx;
    if (n > k->cap - k->n) {
        pc_error_set("S3 sent more bytes than asked for");
        return PC_ERR;
    }
    memcpy(k->dst + k->n, buf, n);
    k->n += n;
    return 0;
}

/* ---- the stream ---- */

static atomic_size_t ring_in_use; /* bytes of the process's rings */

/* A ring for a new stream: what is left of the budget, within bounds. */
static unsigned char *ring_new(size_t *cap)
{
    size_t used = atomic_load(&ring_in_use);
    size_t n = used < RING_BUDGET ? RING_BUDGET - used : 0;
    n = n > RING_MAX ? RING_MAX : n < RING_MIN ? RING_MIN : n;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    atomic_fetch_add(&ring_in_use, n);
    *cap = n;
    return p;
}

static void ring_free(unsigned char *ring, size_t cap)
{
    if (!ring)
        return;
    munmap(ring, cap);
    atomic_fetch_sub(&ring_in_use, cap);
}

typedef struct {
    s3_stream *sm;
    uint64_t got;
} feed_ctx;

/* Under sm->mu: bytes arrived or the stream ended; resume a waiting
 * read_nowait (once) when the ring holds a good part of its size (so that a
 * client faster than the store is not woken per network read) or the
 * stream ended. */
static void wake_waiter(s3_stream *sm)
{
    size_t enough = sm->cap / 2 < WAKE_MAX ? sm->cap / 2 : WAKE_MAX;
    if (!sm->done && sm->fill < enough)
        return;
    const pc_blob_waiter *w = sm->waiter;
    sm->waiter = NULL;
    if (w)
        w->resume(w->ctx);
}

/* The GET's bytes into the ring, waiting for room. */
static int feed(const void *buf, size_t n, void *ctx)
{
    feed_ctx *f = ctx;
    s3_stream *sm = f->sm;
    const unsigned char *p = buf;
    pthread_mutex_lock(&sm->mu);
    while (n && !sm->stop) {
        while (sm->fill == sm->cap && !sm->stop)
            pthread_cond_wait(&sm->cv, &sm->mu);
        if (sm->stop)
            break;
        size_t tail = (sm->head + sm->fill) % sm->cap;
        size_t room = sm->cap - sm->fill, k = n < room ? n : room;
        if (k > sm->cap - tail)
            k = sm->cap - tail;
        memcpy(sm->ring + tail, p, k);
        sm->fill += k;
        f->got += k;
        p += k;
        n -= k;
        pthread_cond_broadcast(&sm->cv);
        wake_waiter(sm);
    }
    bool stop = sm->stop;
    pthread_mutex_unlock(&sm->mu);
    return stop ? PC_ECONFLICT : 0; /* any non-zero ends the transfer */
}

static void *stream_main(void *p)
{
    s3_rd *r = p;
    s3_stream *sm = r->sm;
    pthread_mutex_lock(&sm->mu);
    uint64_t at = sm->pos, end = sm->end;
    pthread_mutex_unlock(&sm->mu);
    uint64_t range = RANGE_FIRST;
    int rc = 0;
    while (rc == 0 && at < end) {
        uint64_t len = end - at < range ? end - at : range;
        feed_ctx f = {sm, 0};
        rc = pc_s3_get(r->st->s3, r->key, at, len, r->etag, feed, &f, NULL);
        if (rc == 0 && f.got != len) {
            pc_error_set("S3 GET %s: %llu bytes instead of %llu", r->key, (unsigned long long)f.got,
                         (unsigned long long)len);
            rc = PC_ERR;
        }
        if (rc == PC_ECONFLICT || rc == PC_ENOTFOUND) {
            pc_error_set("blob %s was removed or replaced while it was read", r->key);
            rc = PC_ENOTFOUND;
        }
        at += f.got;
        range = range * 2 > RANGE_MAX ? RANGE_MAX : range * 2;
    }
    pthread_mutex_lock(&sm->mu);
    sm->done = true;
    sm->rc = sm->stop ? 0 : rc;
    if (sm->rc) /* pc_error_set is per thread: handed over */
        snprintf(sm->msg, sizeof(sm->msg), "%s", pc_error_last());
    pthread_cond_broadcast(&sm->cv);
    wake_waiter(sm);
    pthread_mutex_unlock(&sm->mu);
    return NULL;
}

static void stream_stop(s3_rd *r)
{
    s3_stream *sm = r->sm;
    if (!sm)
        return;
    pthread_mutex_lock(&sm->mu);
    sm->stop = true;
    sm->waiter = NULL; /* the reader is going: nobody to resume */
    pthread_cond_broadcast(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
    pthread_join(sm->th, NULL);
    pthread_cond_destroy(&sm->cv);
    pthread_mutex_destroy(&sm->mu);
    ring_free(sm->ring, sm->cap);
    free(sm);
    r->sm = NULL;
}

static int stream_start(s3_rd *r, uint64_t at)
{
    s3_stream *sm = calloc(1, sizeof(*sm));
    if (!sm || !(sm->ring = ring_new(&sm->cap))) {
        free(sm);
        return PC_ENOMEM;
    }
    pthread_mutex_init(&sm->mu, NULL);
    pthread_cond_init(&sm->cv, NULL);
    sm->pos = at;
    sm->end = r->base.size;
    r->sm = sm;
    int e = pthread_create(&sm->th, NULL, stream_main, r);
    if (e) {
        pthread_cond_destroy(&sm->cv);
        pthread_mutex_destroy(&sm->mu);
        ring_free(sm->ring, sm->cap);
        free(sm);
        r->sm = NULL;
        pc_error_set("S3 read of %s: cannot start a thread: %s", r->key, strerror(e));
        return PC_ERR;
    }
    return 0;
}

/* Up to len bytes from the stream standing at the reader's offset; with a
 * waiter, 0 (w->suspend called) instead of waiting for them. */
static long stream_read(s3_rd *r, void *buf, size_t len, const pc_blob_waiter *w)
{
    s3_stream *sm = r->sm;
    pthread_mutex_lock(&sm->mu);
    if (w && sm->fill == 0 && !sm->done) {
        w->suspend(w->ctx); /* under the lock: the wake-up cannot be lost */
        sm->waiter = w;
        pthread_mutex_unlock(&sm->mu);
        return 0;
    }
    while (sm->fill == 0 && !sm->done)
        pthread_cond_wait(&sm->cv, &sm->mu);
    long n;
    if (sm->fill == 0) {
        n = sm->rc ? sm->rc : PC_ERR;
        if (sm->rc)
            pc_error_set("%s", sm->msg);
        else
            pc_error_set("S3 GET %s: the stream ended early", r->key);
    } else {
        size_t k = len < sm->fill ? len : sm->fill;
        if (k > sm->cap - sm->head)
            k = sm->cap - sm->head;
        memcpy(buf, sm->ring + sm->head, k);
        sm->head = (sm->head + k) % sm->cap;
        sm->fill -= k;
        sm->pos += k;
        n = (long)k;
        pthread_cond_broadcast(&sm->cv);
    }
    pthread_mutex_unlock(&sm->mu);
    return n;
}

/* ---- the reader ---- */

/* The first window is mapped, not allocated, like the rings: with many
 * readers open its pages go back to the system as each one moves on. */
static void win_free(s3_rd *r)
{
    if (r->win)
        munmap(r->win, WIN_FIRST);
    r->win = NULL;
    r->win_len = 0;
}

static long rd_read_any(pc_blob_rd *br, uint64_t offset, void *buf, size_t len,
                        const pc_blob_waiter *w)
{
    s3_rd *r = (s3_rd *)br;
    if (offset >= br->size || len == 0)
        return 0;
    if (len > br->size - offset)
        len = (size_t)(br->size - offset);
    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    if (offset < r->win_len) {
        size_t n = r->win_len - (size_t)offset < len ? r->win_len - (size_t)offset : len;
        memcpy(buf, r->win + offset, n);
        return (long)n;
    }
    if (r->sm) {
        pthread_mutex_lock(&r->sm->mu);
        bool here = r->sm->pos == offset;
        pthread_mutex_unlock(&r->sm->mu);
        if (!here)
            stream_stop(r);
    }
    int rc;
    if (!r->sm && (rc = stream_start(r, offset)))
        return rc;
    if (r->win && offset >= r->win_len) {
        /* read past the first window: it is not needed again (a read back
         * there starts a stream of its own), and 256 KiB per open reader
         * adds up with many clients */
        win_free(r);
    }
    return stream_read(r, buf, len, w);
}

static long rd_read(pc_blob_rd *br, uint64_t offset, void *buf, size_t len)
{
    return rd_read_any(br, offset, buf, len, NULL);
}

static long rd_read_nowait(pc_blob_rd *br, uint64_t offset, void *buf, size_t len,
                           const pc_blob_waiter *w)
{
    return rd_read_any(br, offset, buf, len, w);
}

static void rd_close(pc_blob_rd *br)
{
    s3_rd *r = (s3_rd *)br;
    if (!r)
        return;
    stream_stop(r);
    win_free(r);
    free(r);
}

int pc_blob_s3_open_rd(s3_store *st, const pc_digest *d, pc_blob_rd **out)
{
    s3_rd *r = calloc(1, sizeof(*r));
    int rc = PC_ENOMEM;
    if (!r)
        goto fail;
    void *w = mmap(NULL, WIN_FIRST, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED)
        goto fail;
    r->win = w;
    r->st = st;
    if ((rc = pc_blob_s3_blob_key(d, r->key, sizeof(r->key))))
        goto fail;
    pc_s3_info info = {0};
    sink k = {r->win, WIN_FIRST, 0};
    rc = pc_s3_get(st->s3, r->key, 0, WIN_FIRST, NULL, to_sink, &k, &info);
    if (rc == PC_ERANGE) /* the empty blob: no byte 0 to range over */
        rc = pc_s3_head(st->s3, r->key, &info);
    else if (rc == 0 && info.size < k.n)
        info.size = k.n; /* a 200 without Content-Range: the whole object */
    if (rc)
        goto fail;
    if (!*info.etag) {
        pc_error_set("S3 GET %s: no ETag in the answer", r->key);
        rc = PC_EUPSTREAM;
        goto fail;
    }
    snprintf(r->etag, sizeof(r->etag), "%s", info.etag);
    r->win_len = k.n;
    r->base.size = info.size;
    r->base.read = rd_read;
    r->base.read_nowait = rd_read_nowait;
    r->base.close = rd_close;
    r->base.ident = r->etag;
    *out = &r->base;
    return 0;
fail:
    rd_close(r ? &r->base : NULL);
    return rc;
}
