/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_s3.c - the S3 blob backend (store/blob.h version 2, driver
 * "s3"): committed blobs, reads, listings, presigned URLs and temp
 * leftovers. Writers are in blob_s3_upload.c.
 *
 * Reads are ranged GETs on a pooled keep-alive connection, in windows that
 * grow from 256 KiB (the first, fetched by open() itself: no HEAD before a
 * read) to 8 MiB for sequential readers; a read as large as a window goes
 * straight into the caller's buffer. Every GET after the first carries
 * If-Match with the ETag the first one saw, so a blob replaced or removed
 * under an open reader fails with PC_ENOTFOUND (rule 4) instead of
 * serving other bytes.
 */
#include "blob_s3_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIN_FIRST ((size_t)256 << 10)
#define WIN_MAX ((size_t)8 << 20)

long pc_blob_s3_age(time_t t)
{
    time_t now = time(NULL);
    return now > t ? (long)(now - t) : 0;
}

int pc_blob_s3_blob_key(const pc_digest *d, char *key, size_t size)
{
    pc_digest v;
    if (!d || memchr(d->str, '\0', sizeof(d->str)) == NULL || pc_digest_parse(&v, d->str) != 0 ||
        v.alg != d->alg || !pc_digest_equal(&v, d)) {
        pc_error_set("invalid digest");
        return PC_EINVAL;
    }
    const char *colon = strchr(v.str, ':');
    if ((size_t)snprintf(key, size, "blobs/%.*s/%s", (int)(colon - v.str), v.str, colon + 1) >=
        size) {
        pc_error_set("invalid digest");
        return PC_EINVAL;
    }
    return 0;
}

static int s3_stat(pc_blob_backend *be, const pc_digest *d, uint64_t *size)
{
    char key[S3_KEY_MAX];
    pc_s3_info info = {0};
    int rc = pc_blob_s3_blob_key(d, key, sizeof(key));
    if (rc == 0 && (rc = pc_s3_head(s3_of(be)->s3, key, &info)) == 0)
        *size = info.size;
    return rc;
}

/* ---- reading ---- */

typedef struct {
    pc_blob_rd base;
    s3_store *st;
    char key[S3_KEY_MAX];
    char etag[80];
    unsigned char *win; /* bytes [win_off, win_off + win_len) of the blob */
    uint64_t win_off;
    size_t win_len, win_cap, next; /* next: the size of the next window */
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

/* GET [off, off+len) into dst; the bytes received into *got. */
static int rd_fetch(s3_rd *r, uint64_t off, size_t len, unsigned char *dst, size_t *got)
{
    sink k = {dst, len, 0};
    int rc = pc_s3_get(r->st->s3, r->key, off, len, r->etag, to_sink, &k, NULL);
    if (rc == PC_ECONFLICT || rc == PC_ENOTFOUND) {
        pc_error_set("blob %s was removed or replaced while it was read", r->key);
        return PC_ENOTFOUND;
    }
    *got = k.n;
    return rc;
}

static long rd_read(pc_blob_rd *br, uint64_t offset, void *buf, size_t len)
{
    s3_rd *r = (s3_rd *)br;
    if (offset >= br->size || len == 0)
        return 0;
    if (len > br->size - offset)
        len = (size_t)(br->size - offset);
    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    if (offset >= r->win_off && offset < r->win_off + r->win_len) {
        size_t at = (size_t)(offset - r->win_off),
               n = r->win_len - at < len ? r->win_len - at : len;
        memcpy(buf, r->win + at, n);
        return (long)n;
    }
    bool sequential = offset == r->win_off + r->win_len;
    if (sequential && r->next < WIN_MAX)
        r->next = r->next * 2 > WIN_MAX ? WIN_MAX : r->next * 2;
    else if (!sequential)
        r->next = WIN_FIRST * 4;
    size_t got = 0;
    int rc;
    if (len >= r->next) { /* straight into the caller's buffer */
        if ((rc = rd_fetch(r, offset, len, buf, &got)))
            return rc;
        return got ? (long)got : PC_ERR;
    }
    size_t want = r->next;
    if (want > br->size - offset)
        want = (size_t)(br->size - offset);
    if (want > r->win_cap) {
        unsigned char *nw = realloc(r->win, want);
        if (!nw)
            return PC_ENOMEM;
        r->win = nw;
        r->win_cap = want;
    }
    r->win_len = 0;
    if ((rc = rd_fetch(r, offset, want, r->win, &got)))
        return rc;
    if (!got) {
        pc_error_set("S3 GET %s: no bytes at %llu", r->key, (unsigned long long)offset);
        return PC_ERR;
    }
    r->win_off = offset;
    r->win_len = got;
    size_t n = got < len ? got : len;
    memcpy(buf, r->win, n);
    return (long)n;
}

static void rd_close(pc_blob_rd *br)
{
    s3_rd *r = (s3_rd *)br;
    if (!r)
        return;
    free(r->win);
    free(r);
}

static int s3_open(pc_blob_backend *be, const pc_digest *d, pc_blob_rd **out)
{
    s3_store *st = s3_of(be);
    s3_rd *r = calloc(1, sizeof(*r));
    int rc = PC_ENOMEM;
    if (!r || !(r->win = malloc(WIN_FIRST)))
        goto fail;
    r->win_cap = WIN_FIRST;
    r->st = st;
    if ((rc = pc_blob_s3_blob_key(d, r->key, sizeof(r->key))))
        goto fail;
    /* the first window tells the size and the ETag: no HEAD */
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
    r->next = WIN_FIRST;
    r->base.size = info.size;
    r->base.read = rd_read;
    r->base.close = rd_close;
    *out = &r->base;
    return 0;
fail:
    rd_close(r ? &r->base : NULL);
    return rc;
}

static int s3_remove(pc_blob_backend *be, const pc_digest *d)
{
    char key[S3_KEY_MAX];
    s3_store *st = s3_of(be);
    pc_s3_info info = {0};
    int rc = pc_blob_s3_blob_key(d, key, sizeof(key));
    /* S3 deletes a missing key with success: HEAD tells the caller */
    if (rc == 0 && (rc = pc_s3_head(st->s3, key, &info)) == 0)
        rc = pc_s3_delete(st->s3, key);
    return rc;
}

/* ---- listings ---- */

typedef struct {
    int (*cb)(const pc_blob_entry *e, void *ctx);
    void *ctx;
} list_ctx;

static int list_one(const pc_s3_obj *o, void *p)
{
    list_ctx *c = p;
    char text[PC_DIGEST_MAX + 8];
    const char *slash = strchr(o->key + 6, '/'); /* after "blobs/" */
    pc_blob_entry e;
    if (!slash || (size_t)snprintf(text, sizeof(text), "%.*s:%s", (int)(slash - o->key - 6),
                                   o->key + 6, slash + 1) >= sizeof(text))
        return 0;
    if (pc_digest_parse(&e.digest, text) != 0 || strcmp(e.digest.str, text) != 0)
        return 0; /* not a blob's name */
    e.size = o->size;
    e.age_s = pc_blob_s3_age(o->mtime);
    return c->cb(&e, c->ctx);
}

static int s3_list(pc_blob_backend *be, int (*cb)(const pc_blob_entry *e, void *ctx), void *ctx)
{
    list_ctx c = {cb, ctx};
    return pc_s3_list(s3_of(be)->s3, "blobs/", list_one, &c);
}

/* ---- purging a prefix ---- */

typedef struct {
    s3_store *st;
    bool found;
    int rc;
} purge_ctx;

static int purge_obj(const pc_s3_obj *o, void *p)
{
    purge_ctx *c = p;
    c->found = true;
    int rc = pc_s3_delete(c->st->s3, o->key);
    if (rc && !c->rc)
        c->rc = rc;
    return 0;
}

static int purge_mpu(const pc_s3_mpu *m, void *p)
{
    purge_ctx *c = p;
    c->found = true;
    int rc = pc_s3_mpu_abort(c->st->s3, m->key, m->upload_id);
    if (rc && rc != PC_ENOTFOUND && !c->rc)
        c->rc = rc;
    return 0;
}

int pc_blob_s3_purge(s3_store *st, const char *prefix, bool *found)
{
    purge_ctx c = {st, false, 0};
    int rc = pc_s3_mpu_list(st->s3, prefix, purge_mpu, &c);
    if (rc == 0)
        rc = pc_s3_list(st->s3, prefix, purge_obj, &c);
    if (found)
        *found = c.found;
    return rc ? rc : c.rc;
}

/* ---- temp leftovers: tmp/t-<hex>, objects or multipart uploads ---- */

typedef struct {
    int (*cb)(const char *name, uint64_t size, long age_s, void *ctx);
    void *ctx;
} tmp_ctx;

static int tmp_obj(const pc_s3_obj *o, void *p)
{
    tmp_ctx *c = p;
    return c->cb(o->key + 4, o->size, pc_blob_s3_age(o->mtime), c->ctx);
}

static int tmp_mpu(const pc_s3_mpu *m, void *p)
{
    tmp_ctx *c = p;
    /* its size would take a ListParts per upload: reported as 0 */
    return c->cb(m->key + 4, 0, pc_blob_s3_age(m->initiated), c->ctx);
}

static int s3_tmp_list(pc_blob_backend *be,
                       int (*cb)(const char *name, uint64_t size, long age_s, void *ctx), void *ctx)
{
    tmp_ctx c = {cb, ctx};
    int rc = pc_s3_list(s3_of(be)->s3, "tmp/", tmp_obj, &c);
    return rc ? rc : pc_s3_mpu_list(s3_of(be)->s3, "tmp/", tmp_mpu, &c);
}

static bool tmp_name_ok(const char *name)
{
    return name && strncmp(name, "t-", 2) == 0 && strlen(name) == 34 &&
           pc_util_is_lower_hex(name + 2, 32);
}

typedef struct {
    bool found;
    time_t newest;
} age_ctx;

static int age_obj(const pc_s3_obj *o, void *p)
{
    age_ctx *c = p;
    c->found = true;
    if (o->mtime > c->newest)
        c->newest = o->mtime;
    return 0;
}

static int age_mpu(const pc_s3_mpu *m, void *p)
{
    age_ctx *c = p;
    c->found = true;
    if (m->initiated > c->newest)
        c->newest = m->initiated;
    return 0;
}

static int s3_tmp_remove(pc_blob_backend *be, const char *name, long min_age_s)
{
    s3_store *st = s3_of(be);
    char key[S3_KEY_MAX];
    if (!tmp_name_ok(name)) {
        pc_error_set("%s is not a temp leftover's name", name ? name : "(null)");
        return PC_EINVAL;
    }
    snprintf(key, sizeof(key), "tmp/%s", name);
    age_ctx a = {false, 0};
    int rc = pc_s3_list(st->s3, key, age_obj, &a);
    if (rc == 0)
        rc = pc_s3_mpu_list(st->s3, key, age_mpu, &a);
    if (rc)
        return rc;
    if (!a.found) {
        pc_error_set("temp leftover %s unknown", name);
        return PC_ENOTFOUND;
    }
    if (min_age_s > 0 && pc_blob_s3_age(a.newest) < min_age_s) {
        pc_error_set("temp leftover %s was written %lds ago", name, pc_blob_s3_age(a.newest));
        return PC_EEXISTS;
    }
    return pc_blob_s3_purge(st, key, NULL);
}

/* ---- the rest of the table ---- */

static int s3_url(pc_blob_backend *be, const pc_digest *d, long ttl_s, char *buf, size_t size,
                  time_t *expires)
{
    s3_store *st = s3_of(be);
    char key[S3_KEY_MAX];
    if (!st->redirect) {
        pc_error_set("the S3 blob store hands out no URLs (storage.blobs.redirect is off)");
        return PC_ENOTSUP;
    }
    int rc = pc_blob_s3_blob_key(d, key, sizeof(key));
    if (rc)
        return rc;
    if (ttl_s <= 0)
        ttl_s = st->redirect_ttl;
    time_t now = time(NULL);
    if ((rc = pc_s3_presign(st->s3, key, ttl_s, now, buf, size)) == 0 && expires)
        *expires = now + ttl_s;
    return rc;
}

static int s3_locate(pc_blob_backend *be, pc_blob_kind kind, const char *name, char *buf,
                     size_t size)
{
    s3_store *st = s3_of(be);
    char key[S3_KEY_MAX];
    int rc = 0;
    if (kind == PC_BLOB_IN_BLOBS) {
        pc_digest d;
        if (pc_digest_parse(&d, name) != 0)
            return PC_EINVAL;
        rc = pc_blob_s3_blob_key(&d, key, sizeof(key));
    } else if (kind == PC_BLOB_IN_UPLOADS) {
        if (!pc_upload_id_valid(name))
            return PC_EINVAL;
        snprintf(key, sizeof(key), "uploads/%s.state", name);
    } else {
        if (!tmp_name_ok(name))
            return PC_EINVAL;
        snprintf(key, sizeof(key), "tmp/%s", name);
    }
    if (rc)
        return rc;
    if ((size_t)snprintf(buf, size, "%s%s", st->locate, key) >= size)
        return PC_ETOOBIG;
    return 0;
}

static void s3_free(pc_blob_backend *be)
{
    s3_store *st = s3_of(be);
    if (!st)
        return;
    pc_s3_free(st->s3);
    free(st);
}

int pc_blob_s3_open(pc_blob_backend **out, const pc_blob_s3_opts *o)
{
    if (!o) {
        pc_error_set("the s3 blob driver needs its options (storage.blobs: endpoint, bucket, ...)");
        return PC_EINVAL;
    }
    if (o->redirect && (o->redirect_ttl < 1 || o->redirect_ttl > 604800)) {
        pc_error_set("storage.blobs.redirect_ttl must be 1 to 604800 seconds");
        return PC_EINVAL;
    }
    s3_store *st = calloc(1, sizeof(*st));
    if (!st)
        return PC_ENOMEM;
    int rc = pc_s3_open(&o->s3, &st->s3);
    if (rc) {
        free(st);
        return rc;
    }
    const char *pre = o->s3.prefix ? o->s3.prefix : "";
    while (*pre == '/')
        pre++;
    snprintf(st->locate, sizeof(st->locate), "s3://%s/%s%s", o->s3.bucket, pre,
             *pre && pre[strlen(pre) - 1] != '/' ? "/" : "");
    st->redirect = o->redirect;
    st->redirect_ttl = o->redirect_ttl;
    pc_blob_backend *b = &st->base;
    b->version = PC_BLOB_BACKEND_VERSION;
    b->name = "s3";
    b->caps = PC_BLOB_CAP_DURABLE;
    b->min_part = S3_MIN_PART;
    b->stat = s3_stat;
    b->open = s3_open;
    b->remove = s3_remove;
    b->list = s3_list;
    b->writer = pc_blob_s3_writer;
    b->upload_stat = pc_blob_s3_upload_stat;
    b->upload_remove = pc_blob_s3_upload_remove;
    b->upload_list = pc_blob_s3_upload_list;
    b->free = s3_free;
    b->url = s3_url;
    b->tmp_list = s3_tmp_list;
    b->tmp_remove = s3_tmp_remove;
    b->locate = s3_locate;
    *out = b;
    return 0;
}
