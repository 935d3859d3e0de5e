/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_s3_read.c - reading committed blobs of the S3 backend
 * (pc_blob_rd): ranged GETs, streamed ahead of the reader.
 *
 * open() starts the stream at byte 0 and waits for its first answer's
 * headers: the size and the ETag come with the GET that carries the bytes
 * (no HEAD, no separate first window), so a blob of up to 8 MiB (every
 * manifest, config and most layers) is one S3 request. The stream is a
 * thread of the reader's own that GETs the blob in ranges growing from 8
 * to 64 MiB (each on a pooled keep-alive connection) into a ring (4 MiB,
 * less when many streams run or the blob is smaller) the reader drains, so
 * fetching and sending overlap. A read elsewhere than where the stream
 * stands (a Range request) stops it and starts another there.
 *
 * Every GET after the first carries If-Match with the ETag the first one
 * saw: a blob removed or replaced under an open reader fails the next
 * request with PC_ENOTFOUND (rule 4) instead of serving other bytes;
 * bytes already fetched before are still the blob's.
 */
#include "blob_s3_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A stream's ring: RING_MAX while few streams run; the rings of all
 * streams of the process share RING_BUDGET, and a stream started when it
 * is spent gets RING_MIN (100 clients streaming at once stay within a few
 * tens of MiB). Sizes are powers of two, no larger than the bytes the
 * stream will carry. Rings are mapped, and a ring that ends is kept for
 * the next stream while the rings in use and kept stay within the budget
 * (no page faults and unmapping per GET), else unmapped: its memory goes
 * back to the system. */
#define RING_MAX ((size_t)4 << 20)
#define RING_MIN ((size_t)64 << 10)
#define RING_BUDGET ((size_t)8 << 20)
/* A waiting read_nowait is resumed once this much is in the ring (or half
 * a smaller ring). */
#define WAKE_MAX ((size_t)1 << 20)
#define RANGE_FIRST ((uint64_t)8 << 20)
#define RANGE_MAX ((uint64_t)64 << 20)
/* A stream thread runs one curl transfer: a small stack is plenty. */
#define STREAM_STACK ((size_t)256 << 10)

typedef struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *ring; /* mapped when the first bytes arrive */
    size_t cap;          /* the ring's size */
    size_t head, fill;   /* ring[head..] holds fill bytes, at blob offset pos */
    uint64_t pos, end;   /* the stream covers [pos, end) */
    bool done, stop;
    bool reader_waits, writer_waits; /* on cv: for bytes, for room */
    bool learn; /* the reader's first GET (open): no If-Match, it learns size and ETag */
    bool heard; /* learn: its answer's headers are in, size and etag set */
    uint64_t size;
    char etag[80]; /* the If-Match of the stream's GETs (learn: what the first said) */
    const pc_blob_waiter *waiter; /* a read_nowait waiting for bytes, or NULL */
    int rc;
    char msg[512]; /* rc's message, for the reader's thread */
} s3_stream;

typedef struct {
    pc_blob_rd base;
    s3_store *st;
    char key[S3_KEY_MAX];
    char etag[80];
    s3_stream *sm; /* NULL when no stream runs */
} s3_rd;

/* ---- rings ---- */

typedef struct spare {
    struct spare *next;
    size_t cap;
} spare;

static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t ring_in_use, ring_kept; /* bytes of rings of streams, of kept rings */
static spare *ring_spares;

/* A ring for a stream that will carry want bytes: what is left of the
 * budget, within bounds. */
static unsigned char *ring_new(uint64_t want, size_t *cap)
{
    pthread_mutex_lock(&ring_mu);
    size_t left = ring_in_use < RING_BUDGET ? RING_BUDGET - ring_in_use : 0;
    size_t n = RING_MAX;
    while (n > RING_MIN && (n > left || n / 2 >= want))
        n /= 2;
    void *p = NULL;
    for (spare **s = &ring_spares; *s; s = &(*s)->next)
        if ((*s)->cap == n) {
            p = *s;
            *s = (*s)->next;
            ring_kept -= n;
            break;
        }
    /* kept rings of other sizes make room for a new one */
    while (!p && ring_spares && ring_in_use + ring_kept + n > RING_BUDGET) {
        spare *s = ring_spares;
        ring_spares = s->next;
        ring_kept -= s->cap;
        munmap(s, s->cap);
    }
    ring_in_use += n;
    pthread_mutex_unlock(&ring_mu);
    if (!p && (p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) ==
                  MAP_FAILED) {
        pthread_mutex_lock(&ring_mu);
        ring_in_use -= n;
        pthread_mutex_unlock(&ring_mu);
        return NULL;
    }
    *cap = n;
    return p;
}

static void ring_free(unsigned char *ring, size_t cap)
{
    if (!ring)
        return;
    pthread_mutex_lock(&ring_mu);
    ring_in_use -= cap;
    bool keep = ring_in_use + ring_kept + cap <= RING_BUDGET;
    if (keep) {
        spare *s = (spare *)(void *)ring;
        s->cap = cap;
        s->next = ring_spares;
        ring_spares = s;
        ring_kept += cap;
    }
    pthread_mutex_unlock(&ring_mu);
    if (!keep)
        munmap(ring, cap);
}

/* ---- the stream ---- */

typedef struct {
    s3_stream *sm;
    const pc_s3_info *info; /* learn: the answer's headers */
    uint64_t want, got;     /* want: the bytes this GET must bring */
    bool first;
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

/* The room a writer waiting for it waits for. */
static size_t room_min(const s3_stream *sm)
{
    return sm->cap / 4 ? sm->cap / 4 : 1;
}

/* Under sm->mu, the first bytes of a GET: for the reader's first one its
 * headers (the size and ETag open() waits for); the ring, sized for what
 * is left. */
static int feed_first(feed_ctx *f)
{
    s3_stream *sm = f->sm;
    f->first = false;
    if (sm->learn && !sm->heard) {
        sm->size = f->info->size;
        snprintf(sm->etag, sizeof(sm->etag), "%s", f->info->etag);
        sm->end = sm->size;
        if (f->want > sm->end - sm->pos)
            f->want = sm->end - sm->pos;
        sm->heard = true;
        pthread_cond_broadcast(&sm->cv);
    }
    if (!sm->ring && !(sm->ring = ring_new(sm->end - sm->pos, &sm->cap))) {
        pc_error_set("S3 read: out of memory for a read-ahead ring");
        return PC_ENOMEM;
    }
    return 0;
}

/* The GET's bytes into the ring, waiting for room. */
static int feed(const void *buf, size_t n, void *ctx)
{
    feed_ctx *f = ctx;
    s3_stream *sm = f->sm;
    const unsigned char *p = buf;
    int rc = 0;
    pthread_mutex_lock(&sm->mu);
    if (f->first)
        rc = feed_first(f);
    if (rc == 0 && n > f->want - f->got) {
        pc_error_set("S3 sent more bytes than asked for");
        rc = PC_ERR;
    }
    while (rc == 0 && n && !sm->stop) {
        /* a full ring: wait for a quarter of it, not for each read of it */
        while (sm->cap - sm->fill < room_min(sm) && !sm->stop) {
            sm->writer_waits = true;
            pthread_cond_wait(&sm->cv, &sm->mu);
        }
        sm->writer_waits = false;
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
        if (sm->reader_waits)
            pthread_cond_broadcast(&sm->cv);
        wake_waiter(sm);
    }
    if (rc == 0 && sm->stop)
        rc = PC_ECONFLICT; /* any non-zero ends the transfer */
    pthread_mutex_unlock(&sm->mu);
    return rc;
}

static void *stream_main(void *p)
{
    s3_rd *r = p;
    s3_stream *sm = r->sm;
    pthread_mutex_lock(&sm->mu);
    uint64_t at = sm->pos, end = sm->end;
    bool learn = sm->learn, opening = sm->learn;
    char etag[sizeof(sm->etag)];
    snprintf(etag, sizeof(etag), "%s", sm->etag);
    pthread_mutex_unlock(&sm->mu);
    uint64_t range = RANGE_FIRST;
    int rc = 0;
    while (rc == 0 && at < end) {
        uint64_t len = end - at < range ? end - at : range;
        pc_s3_info info = {0};
        feed_ctx f = {sm, &info, len, 0, true};
        rc = pc_s3_get(r->st->s3, r->key, at, len, learn ? NULL : etag, feed, &f,
                       learn ? &info : NULL);
        if (learn) {
            /* the answer is in: its size bounds the stream (also when it
             * had no body to call feed with) */
            pthread_mutex_lock(&sm->mu);
            if (rc == 0 && !sm->heard) {
                sm->size = info.size;
                snprintf(sm->etag, sizeof(sm->etag), "%s", info.etag);
                sm->end = sm->size;
                sm->heard = true;
                if (f.want > sm->end - at)
                    f.want = sm->end - at;
            }
            end = sm->end;
            snprintf(etag, sizeof(etag), "%s", sm->etag);
            pthread_mutex_unlock(&sm->mu);
            learn = false;
        }
        if (rc == 0 && f.got != f.want) {
            pc_error_set("S3 GET %s: %llu bytes instead of %llu", r->key, (unsigned long long)f.got,
                         (unsigned long long)f.want);
            rc = PC_ERR;
        }
        /* not found at open is just that; later, the object went */
        if (rc == PC_ECONFLICT || (rc == PC_ENOTFOUND && !(opening && at == 0))) {
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

/* A stream from at to the end; learn: the reader's first, from byte 0 of
 * a blob whose size and ETag it finds out. */
static int stream_start(s3_rd *r, uint64_t at, bool learn)
{
    s3_stream *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return PC_ENOMEM;
    pthread_mutex_init(&sm->mu, NULL);
    pthread_cond_init(&sm->cv, NULL);
    sm->pos = at;
    sm->end = learn ? UINT64_MAX : r->base.size;
    sm->learn = learn;
    snprintf(sm->etag, sizeof(sm->etag), "%s", r->etag);
    r->sm = sm;
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e == 0) {
        pthread_attr_setstacksize(&attr, STREAM_STACK);
        e = pthread_create(&sm->th, &attr, stream_main, r);
        pthread_attr_destroy(&attr);
        if (e == 0) /* named after its creator (a pool worker) otherwise */
            pthread_setname_np(sm->th, "pc-s3-read");
    }
    if (e) {
        pthread_cond_destroy(&sm->cv);
        pthread_mutex_destroy(&sm->mu);
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
    while (sm->fill == 0 && !sm->done) {
        sm->reader_waits = true;
        pthread_cond_wait(&sm->cv, &sm->mu);
    }
    sm->reader_waits = false;
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
        if (sm->writer_waits && sm->cap - sm->fill >= room_min(sm))
            pthread_cond_broadcast(&sm->cv);
    }
    pthread_mutex_unlock(&sm->mu);
    return n;
}

/* ---- the reader ---- */

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
    if (r->sm) {
        pthread_mutex_lock(&r->sm->mu);
        bool here = r->sm->pos == offset;
        pthread_mutex_unlock(&r->sm->mu);
        if (!here)
            stream_stop(r);
    }
    int rc;
    if (!r->sm && (rc = stream_start(r, offset, false)))
        return rc;
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
    free(r);
}

/* Start the stream at byte 0 and wait for its answer's headers: the
 * blob's size and ETag. */
static int open_stream(s3_rd *r)
{
    int rc = stream_start(r, 0, true);
    if (rc)
        return rc;
    s3_stream *sm = r->sm;
    pthread_mutex_lock(&sm->mu);
    while (!sm->heard && !sm->done)
        pthread_cond_wait(&sm->cv, &sm->mu);
    if (sm->heard) {
        r->base.size = sm->size;
        snprintf(r->etag, sizeof(r->etag), "%s", sm->etag);
    } else {
        rc = sm->rc ? sm->rc : PC_ERR;
        pc_error_set("%s", sm->rc ? sm->msg : "S3 GET: no answer");
    }
    pthread_mutex_unlock(&sm->mu);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", pc_error_last());
        stream_stop(r);
        pc_error_set("%s", msg);
    }
    return rc;
}

int pc_blob_s3_open_rd(s3_store *st, const pc_digest *d, pc_blob_rd **out)
{
    s3_rd *r = calloc(1, sizeof(*r));
    int rc = PC_ENOMEM;
    if (!r)
        goto fail;
    r->st = st;
    if ((rc = pc_blob_s3_blob_key(d, r->key, sizeof(r->key))))
        goto fail;
    rc = open_stream(r);
    if (rc == PC_ERANGE) { /* the empty blob: no byte 0 to range over */
        pc_s3_info info = {0};
        if ((rc = pc_s3_head(st->s3, r->key, &info)) == 0) {
            r->base.size = info.size;
            snprintf(r->etag, sizeof(r->etag), "%s", info.etag);
        }
    }
    if (rc)
        goto fail;
    if (!*r->etag) {
        pc_error_set("S3 GET %s: no ETag in the answer", r->key);
        rc = PC_EUPSTREAM;
        goto fail;
    }
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
