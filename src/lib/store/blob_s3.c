/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_s3.c - the S3 blob backend (store/blob.h version 2, driver
 * "s3"): the table, committed blobs, listings, presigned URLs and temp
 * leftovers. Readers are in blob_s3_read.c, writers in blob_s3_upload.c.
 */
#include "blob_s3_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int s3_open(pc_blob_backend *be, const pc_digest *d, pc_blob_rd **out)
{
    return pc_blob_s3_open_rd(s3_of(be), d, out);
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

int pc_blob_s3_abort_all(s3_store *st, const char *prefix)
{
    purge_ctx c = {st, false, 0};
    int rc = pc_s3_mpu_list(st->s3, prefix, purge_mpu, &c);
    return rc ? rc : c.rc;
}

int pc_blob_s3_purge(s3_store *st, const char *prefix, bool *found)
{
    purge_ctx c = {st, false, 0};
    int rc = pc_s3_mpu_list(st->s3, prefix, purge_mpu, &c);
    /* the objects (an upload's state) go only once its multipart uploads
     * are gone, so a failed abort is found and retried next time */
    if (rc == 0 && c.rc == 0)
        rc = pc_s3_list(st->s3, prefix, purge_obj, &c);
    if (found)
        *found = c.found;
    return rc ? rc : c.rc;
}

/* ---- temp leftovers: tmp/t-<hex> (objects or multipart uploads), and
 * multipart uploads on a blob's key (a commit copying in parts that
 * stopped), named by their key blobs/<alg>/<hex> ---- */

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

static int blob_mpu(const pc_s3_mpu *m, void *p)
{
    tmp_ctx *c = p;
    return c->cb(m->key, 0, pc_blob_s3_age(m->initiated), c->ctx);
}

static int s3_tmp_list(pc_blob_backend *be,
                       int (*cb)(const char *name, uint64_t size, long age_s, void *ctx), void *ctx)
{
    tmp_ctx c = {cb, ctx};
    int rc = pc_s3_list(s3_of(be)->s3, "tmp/", tmp_obj, &c);
    if (rc == 0)
        rc = pc_s3_mpu_list(s3_of(be)->s3, "tmp/", tmp_mpu, &c);
    return rc ? rc : pc_s3_mpu_list(s3_of(be)->s3, "blobs/", blob_mpu, &c);
}

static bool tmp_name_ok(const char *name)
{
    return name && strncmp(name, "t-", 2) == 0 && strlen(name) == 34 &&
           pc_util_is_lower_hex(name + 2, 32);
}

/* Whether name is a blob's key blobs/<alg>/<hex> (a multipart leftover). */
static bool blob_name_ok(const char *name)
{
    char text[PC_DIGEST_MAX + 8], key[S3_KEY_MAX];
    pc_digest d;
    const char *slash = name && strncmp(name, "blobs/", 6) == 0 ? strchr(name + 6, '/') : NULL;
    return slash &&
           (size_t)snprintf(text, sizeof(text), "%.*s:%s", (int)(slash - name - 6), name + 6,
                            slash + 1) < sizeof(text) &&
           pc_digest_parse(&d, text) == 0 && pc_blob_s3_blob_key(&d, key, sizeof(key)) == 0 &&
           strcmp(key, name) == 0;
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
    bool blob = blob_name_ok(name);
    if (!blob && !tmp_name_ok(name)) {
        pc_error_set("%s is not a temp leftover's name", name ? name : "(null)");
        return PC_EINVAL;
    }
    snprintf(key, sizeof(key), "%s%s", blob ? "" : "tmp/", name);
    age_ctx a = {false, 0};
    /* a blob's key: only its multipart uploads, never the blob */
    int rc = blob ? 0 : pc_s3_list(st->s3, key, age_obj, &a);
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
    return blob ? pc_blob_s3_abort_all(st, key) : pc_blob_s3_purge(st, key, NULL);
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
    st->copy_max = o->copy_max ? o->copy_max : S3_COPY_MAX;
    if (st->copy_max < S3_MIN_PART)
        st->copy_max = S3_MIN_PART;
    if (st->copy_max > S3_COPY_MAX)
        st->copy_max = S3_COPY_MAX;
    pc_blob_backend *b = &st->base;
    b->version = PC_BLOB_BACKEND_VERSION;
    b->name = "s3";
    b->caps = PC_BLOB_CAP_DURABLE | PC_BLOB_CAP_REMOTE;
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
