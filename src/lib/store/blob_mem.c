/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_mem.c - the in-memory blob backend (store/blob.h, version 2),
 * for tests and `serve --ephemeral`: nothing survives the process.
 *
 * One mutex guards a hash table of blobs and a list of uploads. A blob's
 * bytes are a refcounted buffer: the table holds one reference, every open
 * reader one more, so removing (or replacing) a blob while a reader is
 * open leaves that reader its bytes (PC_BLOB_CAP_READ_AFTER_REMOVE).
 * Uploads are refcounted too, so a writer outlives upload_remove (its
 * commit then fails with PC_ENOTFOUND). The publish lock is a
 * writer-preferring rwlock: a waiting remover is not starved.
 */
#include "blob.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_BUCKETS 1024

typedef struct {
    unsigned refs;
    uint64_t size;
    unsigned char *data;
} mem_bytes;

typedef struct mem_blob {
    struct mem_blob *next;
    pc_digest d;
    mem_bytes *bytes;
    time_t mtime;
} mem_blob;

typedef struct mem_upload {
    struct mem_upload *next;
    unsigned refs;
    bool gone; /* removed or committed */
    char id[72];
    unsigned char *data;
    uint64_t len, cap;
    uint64_t ckpt; /* checkpointed bytes */
    unsigned char *state;
    size_t state_len;
    time_t mtime;
} mem_upload;

typedef struct {
    pc_blob_backend base;
    pthread_mutex_t mu;
    pthread_rwlock_t publish;
    mem_blob *buckets[MEM_BUCKETS];
    mem_upload *uploads;
} mem_store;

typedef struct {
    pc_blob_rd base;
    mem_store *ms;
    mem_bytes *bytes;
} mem_rd;

typedef struct {
    pc_blob_wr base;
    mem_store *ms;
    mem_upload *up; /* the upload, or a private one for a temp writer */
    bool temp;
} mem_wr;

static mem_store *ms_of(pc_blob_backend *be)
{
    return (mem_store *)be;
}

static unsigned bucket_of(const pc_digest *d)
{
    uint32_t h = 2166136261u;
    for (const char *p = d->str; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % MEM_BUCKETS;
}

static int check_digest(const pc_digest *d)
{
    pc_digest v;
    if (!d || memchr(d->str, '\0', sizeof(d->str)) == NULL || pc_digest_parse(&v, d->str) != 0 ||
        v.alg != d->alg) {
        pc_error_set("invalid digest");
        return PC_EINVAL;
    }
    return 0;
}

/* Under ms->mu. */
static mem_blob **blob_find(mem_store *ms, const pc_digest *d)
{
    mem_blob **pp = &ms->buckets[bucket_of(d)];
    while (*pp && !pc_digest_equal(&(*pp)->d, d))
        pp = &(*pp)->next;
    return pp;
}

/* Under ms->mu. */
static void bytes_unref(mem_bytes *b)
{
    if (b && --b->refs == 0) {
        free(b->data);
        free(b);
    }
}

static int not_found(void)
{
    pc_error_set("blob unknown");
    return PC_ENOTFOUND;
}

static int mem_stat(pc_blob_backend *be, const pc_digest *d, uint64_t *size)
{
    mem_store *ms = ms_of(be);
    int rc = check_digest(d);
    if (rc)
        return rc;
    pthread_mutex_lock(&ms->mu);
    mem_blob *b = *blob_find(ms, d);
    if (b)
        *size = b->bytes->size;
    pthread_mutex_unlock(&ms->mu);
    return b ? 0 : not_found();
}

static long mem_rd_read(pc_blob_rd *r, uint64_t offset, void *buf, size_t len)
{
    mem_bytes *b = ((mem_rd *)r)->bytes; /* immutable while referenced */
    if (offset >= b->size)
        return 0;
    if (len > b->size - offset)
        len = (size_t)(b->size - offset);
    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    memcpy(buf, b->data + offset, len);
    return (long)len;
}

static void mem_rd_close(pc_blob_rd *r)
{
    if (!r)
        return;
    mem_rd *mr = (mem_rd *)r;
    pthread_mutex_lock(&mr->ms->mu);
    bytes_unref(mr->bytes);
    pthread_mutex_unlock(&mr->ms->mu);
    free(mr);
}

static int mem_open(pc_blob_backend *be, const pc_digest *d, pc_blob_rd **out)
{
    mem_store *ms = ms_of(be);
    int rc = check_digest(d);
    if (rc)
        return rc;
    mem_rd *r = calloc(1, sizeof(*r));
    if (!r)
        return PC_ENOMEM;
    pthread_mutex_lock(&ms->mu);
    mem_blob *b = *blob_find(ms, d);
    if (b) {
        r->bytes = b->bytes;
        r->bytes->refs++;
    }
    pthread_mutex_unlock(&ms->mu);
    if (!b) {
        free(r);
        return not_found();
    }
    r->ms = ms;
    r->base.size = r->bytes->size;
    r->base.read = mem_rd_read;
    r->base.close = mem_rd_close;
    *out = &r->base;
    return 0;
}

static int mem_remove(pc_blob_backend *be, const pc_digest *d)
{
    mem_store *ms = ms_of(be);
    int rc = check_digest(d);
    if (rc)
        return rc;
    pthread_mutex_lock(&ms->mu);
    mem_blob **pp = blob_find(ms, d), *b = *pp;
    if (b) {
        *pp = b->next;
        bytes_unref(b->bytes);
        free(b);
    }
    pthread_mutex_unlock(&ms->mu);
    return b ? 0 : not_found();
}

static int mem_list(pc_blob_backend *be, int (*cb)(const pc_blob_entry *e, void *ctx), void *ctx)
{
    mem_store *ms = ms_of(be);
    /* Snapshot first: cb may call back into the store. */
    pc_blob_entry *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    time_t now = time(NULL);
    pthread_mutex_lock(&ms->mu);
    for (size_t i = 0; i < MEM_BUCKETS && rc == 0; i++)
        for (mem_blob *b = ms->buckets[i]; b; b = b->next) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                pc_blob_entry *nv = realloc(v, nc * sizeof(*nv));
                if (!nv) {
                    rc = PC_ENOMEM;
                    break;
                }
                v = nv;
                cap = nc;
            }
            v[n].digest = b->d;
            v[n].size = b->bytes->size;
            v[n].age_s = now > b->mtime ? (long)(now - b->mtime) : 0;
            n++;
        }
    pthread_mutex_unlock(&ms->mu);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(&v[i], ctx);
    free(v);
    return rc;
}

/* ---- uploads ---- */

/* Under ms->mu: drop n references. */
static void upload_drop(mem_upload *u, unsigned n)
{
    if (u && (u->refs -= n) == 0) {
        free(u->data);
        free(u->state);
        free(u);
    }
}

static void upload_unref(mem_upload *u)
{
    upload_drop(u, 1);
}

/* Under ms->mu: unlink upload id from the list (the list's reference is
 * the caller's to drop). */
static mem_upload *upload_take(mem_store *ms, const char *id)
{
    for (mem_upload **pp = &ms->uploads; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            mem_upload *u = *pp;
            *pp = u->next;
            u->gone = true;
            return u;
        }
    return NULL;
}

static mem_upload *upload_find(mem_store *ms, const char *id)
{
    for (mem_upload *u = ms->uploads; u; u = u->next)
        if (strcmp(u->id, id) == 0)
            return u;
    return NULL;
}

static int wr_append(pc_blob_wr *w, const void *buf, size_t len)
{
    mem_wr *mw = (mem_wr *)w;
    mem_upload *u = mw->up;
    int rc = 0;
    pthread_mutex_lock(&mw->ms->mu);
    if (u->len + len > u->cap) {
        uint64_t nc = u->cap ? u->cap : 4096;
        while (nc < u->len + len)
            nc *= 2;
        unsigned char *nd = nc <= SIZE_MAX ? realloc(u->data, (size_t)nc) : NULL;
        if (!nd)
            rc = PC_ENOMEM;
        else {
            u->data = nd;
            u->cap = nc;
        }
    }
    if (rc == 0) {
        if (len)
            memcpy(u->data + u->len, buf, len);
        u->len += len;
        u->mtime = time(NULL);
        w->size = u->len;
    }
    pthread_mutex_unlock(&mw->ms->mu);
    if (rc)
        pc_error_set("out of memory for an upload");
    return rc;
}

static int wr_checkpoint(pc_blob_wr *w, const void *st, size_t len)
{
    mem_wr *mw = (mem_wr *)w;
    if (mw->temp || len > PC_BLOB_STATE_MAX) {
        pc_error_set(mw->temp ? "a temp writer has no checkpoints" : "upload state too large");
        return PC_EINVAL;
    }
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return PC_ENOMEM;
    if (len)
        memcpy(copy, st, len);
    pthread_mutex_lock(&mw->ms->mu);
    mem_upload *u = mw->up;
    free(u->state);
    u->state = copy;
    u->state_len = len;
    u->ckpt = u->len;
    w->state = copy;
    w->state_len = len;
    w->state_size = u->ckpt;
    pthread_mutex_unlock(&mw->ms->mu);
    return 0;
}

static long wr_read(pc_blob_wr *w, uint64_t offset, void *buf, size_t len)
{
    mem_wr *mw = (mem_wr *)w;
    long n = 0;
    pthread_mutex_lock(&mw->ms->mu);
    mem_upload *u = mw->up;
    if (offset < u->len) {
        if (len > u->len - offset)
            len = (size_t)(u->len - offset);
        memcpy(buf, u->data + offset, len);
        n = (long)len;
    }
    pthread_mutex_unlock(&mw->ms->mu);
    return n;
}

static void wr_end(mem_wr *mw, bool drop)
{
    mem_store *ms = mw->ms;
    pthread_mutex_lock(&ms->mu);
    mem_upload *u = mw->up;
    unsigned refs = 1; /* the writer's */
    if (drop && !mw->temp && !u->gone && upload_take(ms, u->id))
        refs++; /* and the list's */
    if (!drop)
        u->len = u->ckpt; /* appends since the checkpoint are dropped */
    upload_drop(u, refs);
    pthread_mutex_unlock(&ms->mu);
    free(mw);
}

static void wr_cancel(pc_blob_wr *w)
{
    wr_end((mem_wr *)w, true);
}

static void wr_close(pc_blob_wr *w)
{
    mem_wr *mw = (mem_wr *)w;
    wr_end(mw, mw->temp);
}

static int wr_commit(pc_blob_wr *w, const pc_digest *d)
{
    mem_wr *mw = (mem_wr *)w;
    mem_store *ms = mw->ms;
    int rc = check_digest(d);
    mem_bytes *bytes = NULL;
    mem_blob *nb = NULL;
    if (!rc && (!(bytes = calloc(1, sizeof(*bytes))) || !(nb = calloc(1, sizeof(*nb)))))
        rc = PC_ENOMEM;
    pthread_mutex_lock(&ms->mu);
    mem_upload *u = mw->up;
    if (!rc && u->gone && !mw->temp) {
        pc_error_set("upload unknown");
        rc = PC_ENOTFOUND;
    }
    if (!rc) {
        /* the upload's buffer becomes the blob's */
        bytes->refs = 1;
        bytes->size = u->len;
        bytes->data = u->data ? u->data : malloc(1);
        u->data = NULL;
        u->len = u->cap = u->ckpt = 0;
        nb->d = *d;
        nb->bytes = bytes;
        nb->mtime = time(NULL);
        mem_blob **pp = blob_find(ms, d);
        if (*pp) { /* replace: readers of the old bytes keep them */
            bytes_unref((*pp)->bytes);
            (*pp)->bytes = bytes;
            (*pp)->mtime = nb->mtime;
            free(nb);
        } else {
            *pp = nb;
        }
        nb = NULL;
        bytes = NULL;
        if (!mw->temp && upload_take(ms, u->id))
            upload_unref(u);
    }
    pthread_mutex_unlock(&ms->mu);
    free(bytes);
    free(nb);
    if (rc)
        wr_close(w);
    else
        wr_end(mw, false);
    return rc;
}

static int mem_writer(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out)
{
    mem_store *ms = ms_of(be);
    if (id && !pc_upload_id_valid(id)) {
        pc_error_set("invalid upload id");
        return PC_EINVAL;
    }
    mem_wr *w = calloc(1, sizeof(*w));
    mem_upload *nu = create || !id ? calloc(1, sizeof(*nu)) : NULL;
    if (!w || ((create || !id) && !nu)) {
        free(w);
        free(nu);
        return PC_ENOMEM;
    }
    int rc = 0;
    pthread_mutex_lock(&ms->mu);
    mem_upload *u = id ? upload_find(ms, id) : NULL;
    if (id && create && u) {
        pc_error_set("upload %s exists", id);
        rc = PC_EEXISTS;
    } else if (id && !create && !u) {
        pc_error_set("upload unknown");
        rc = PC_ENOTFOUND;
    } else if (nu) {
        u = nu;
        nu = NULL;
        u->refs = 1;
        u->mtime = time(NULL);
        if (id) {
            snprintf(u->id, sizeof(u->id), "%s", id);
            u->next = ms->uploads;
            ms->uploads = u;
            u->refs++; /* the list's */
        }
    }
    if (!rc && id && !create) {
        u->refs++;
        u->len = u->ckpt; /* back to the last checkpoint */
    }
    if (!rc) {
        w->ms = ms;
        w->up = u;
        w->temp = !id;
        w->base.size = u->len;
        w->base.state = u->state;
        w->base.state_len = u->state_len;
        w->base.state_size = u->ckpt;
    }
    pthread_mutex_unlock(&ms->mu);
    free(nu);
    if (rc) {
        free(w);
        return rc;
    }
    w->base.append = wr_append;
    w->base.checkpoint = wr_checkpoint;
    w->base.commit = wr_commit;
    w->base.cancel = wr_cancel;
    w->base.close = wr_close;
    w->base.read = wr_read;
    *out = &w->base;
    return 0;
}

static int mem_upload_stat(pc_blob_backend *be, const char *id, uint64_t *size)
{
    mem_store *ms = ms_of(be);
    pthread_mutex_lock(&ms->mu);
    mem_upload *u = id ? upload_find(ms, id) : NULL;
    if (u)
        *size = u->ckpt;
    pthread_mutex_unlock(&ms->mu);
    if (!u) {
        pc_error_set("upload unknown");
        return PC_ENOTFOUND;
    }
    return 0;
}

static int mem_upload_remove(pc_blob_backend *be, const char *id, long min_age_s)
{
    mem_store *ms = ms_of(be);
    int rc = 0;
    pthread_mutex_lock(&ms->mu);
    mem_upload *u = id ? upload_find(ms, id) : NULL;
    time_t now = time(NULL);
    if (!u) {
        pc_error_set("upload unknown");
        rc = PC_ENOTFOUND;
    } else if (min_age_s > 0 && now - u->mtime < min_age_s) {
        pc_error_set("upload %s was written %lds ago", id, (long)(now - u->mtime));
        rc = PC_EEXISTS;
    } else {
        upload_take(ms, id);
        upload_unref(u);
    }
    pthread_mutex_unlock(&ms->mu);
    return rc;
}

static int mem_upload_list(pc_blob_backend *be,
                           int (*cb)(const char *id, uint64_t size, long age_s, void *ctx),
                           void *ctx)
{
    mem_store *ms = ms_of(be);
    struct item {
        char id[72];
        uint64_t size;
        long age;
    } *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    time_t now = time(NULL);
    pthread_mutex_lock(&ms->mu);
    for (mem_upload *u = ms->uploads; u; u = u->next) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct item *nv = realloc(v, nc * sizeof(*nv));
            if (!nv) {
                rc = PC_ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        memcpy(v[n].id, u->id, sizeof(v[n].id));
        v[n].size = u->ckpt;
        v[n].age = now > u->mtime ? (long)(now - u->mtime) : 0;
        n++;
    }
    pthread_mutex_unlock(&ms->mu);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(v[i].id, v[i].size, v[i].age, ctx);
    free(v);
    return rc;
}

static int mem_publish_lock(pc_blob_backend *be, bool exclusive, pc_blob_hold *h)
{
    mem_store *ms = ms_of(be);
    int e = exclusive ? pthread_rwlock_wrlock(&ms->publish) : pthread_rwlock_rdlock(&ms->publish);
    if (e) {
        pc_error_set("lock the blob store: %s", strerror(e));
        return PC_ERR;
    }
    h->p = ms;
    return 0;
}

static void mem_publish_unlock(pc_blob_backend *be, pc_blob_hold *h)
{
    if (h->p)
        pthread_rwlock_unlock(&ms_of(be)->publish);
    h->p = NULL;
}

static void mem_free(pc_blob_backend *be)
{
    mem_store *ms = ms_of(be);
    if (!ms)
        return;
    for (size_t i = 0; i < MEM_BUCKETS; i++)
        for (mem_blob *b = ms->buckets[i], *next; b; b = next) {
            next = b->next;
            bytes_unref(b->bytes);
            free(b);
        }
    for (mem_upload *u = ms->uploads, *next; u; u = next) {
        next = u->next;
        upload_unref(u);
    }
    pthread_rwlock_destroy(&ms->publish);
    pthread_mutex_destroy(&ms->mu);
    free(ms);
}

int pc_blob_mem_open(pc_blob_backend **out)
{
    mem_store *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return PC_ENOMEM;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ms->publish, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&ms->mu, NULL);
    pc_blob_backend *b = &ms->base;
    b->version = PC_BLOB_BACKEND_VERSION;
    b->name = "mem";
    b->caps = PC_BLOB_CAP_READ_AFTER_REMOVE;
    b->min_part = 0;
    b->stat = mem_stat;
    b->open = mem_open;
    b->remove = mem_remove;
    b->list = mem_list;
    b->writer = mem_writer;
    b->upload_stat = mem_upload_stat;
    b->upload_remove = mem_upload_remove;
    b->upload_list = mem_upload_list;
    b->free = mem_free;
    b->publish_lock = mem_publish_lock;
    b->publish_unlock = mem_publish_unlock;
    *out = b;
    return 0;
}

int pc_blob_mem_backdate(pc_blob_backend *be, const pc_digest *d, long seconds)
{
    mem_store *ms = ms_of(be);
    pthread_mutex_lock(&ms->mu);
    mem_blob *b = *blob_find(ms, d);
    if (b)
        b->mtime -= seconds;
    pthread_mutex_unlock(&ms->mu);
    return b ? 0 : not_found();
}
