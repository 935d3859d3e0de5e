/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob.c - the blob backend front end (store/blob.h): the version
 * check and driver table, the doors to optional capabilities, and the
 * hashing writer that makes "verified before visible" hold for every
 * backend.
 */
#include "blob.h"
#include "blob_s3.h"
#include "hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fs_open(pc_blob_backend **out, const char *location, const void *opts)
{
    (void)opts;
    return pc_blob_fs_open(out, location);
}

static int mem_open(pc_blob_backend **out, const char *location, const void *opts)
{
    (void)location;
    (void)opts;
    return pc_blob_mem_open(out);
}

static int s3_open(pc_blob_backend **out, const char *location, const void *opts)
{
    (void)location;
    return pc_blob_s3_open(out, opts);
}

/* The drivers by name (config: storage.blobs.driver, through
 * store/factory.c): durable ones keep their blobs in the location. */
static const struct {
    const char *name;
    bool durable;
    int (*open)(pc_blob_backend **out, const char *location, const void *opts);
} drivers[] = {
    {"fs", true, fs_open},
    {"mem", false, mem_open},
    {"s3", true, s3_open}, /* opts: pc_blob_s3_opts (store/blob_s3.h) */
};

#define NDRIVERS (sizeof(drivers) / sizeof(drivers[0]))

const char *pc_blob_driver(size_t i, bool *durable)
{
    if (i >= NDRIVERS)
        return NULL;
    if (durable)
        *durable = drivers[i].durable;
    return drivers[i].name;
}

bool pc_upload_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (n >= 64)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return n > 0;
}

int pc_blob_backend_check(pc_blob_backend *be)
{
    const char *why = NULL;
    if (!be) {
        pc_error_set("blob backend: no table");
        return PC_ENOTSUP;
    }
    if (be->version != PC_BLOB_BACKEND_VERSION)
        why = "interface version";
    else if (!be->stat || !be->open || !be->remove || !be->list || !be->writer ||
             !be->upload_stat || !be->upload_remove || !be->upload_list || !be->free)
        why = "required function";
    if (!why)
        return 0;
    if (be->version != PC_BLOB_BACKEND_VERSION)
        pc_error_set("blob backend %s has interface version %u, this pullcache needs version %d",
                     be->name ? be->name : "?", be->version, PC_BLOB_BACKEND_VERSION);
    else
        pc_error_set("blob backend %s lacks a required function", be->name ? be->name : "?");
    /* free is the only function a table of another version may share at
     * this place: call it only on our own version's tables */
    if (be->version == PC_BLOB_BACKEND_VERSION && be->free)
        be->free(be);
    return PC_ENOTSUP;
}

int pc_blob_open(const char *driver, const char *location, pc_blob_backend **out)
{
    return pc_blob_open_opts(driver, location, NULL, out);
}

int pc_blob_open_opts(const char *driver, const char *location, const void *opts,
                      pc_blob_backend **out)
{
    pc_blob_backend *be = NULL;
    int rc = PC_ENOTSUP;
    for (size_t i = 0; driver && i < NDRIVERS; i++) {
        if (strcmp(drivers[i].name, driver) != 0)
            continue;
        rc = drivers[i].open(&be, location, opts);
        if (rc)
            return rc;
        if ((rc = pc_blob_backend_check(be)))
            return rc;
        *out = be;
        return 0;
    }
    char known[128] = "";
    for (size_t i = 0, n = 0; i < NDRIVERS && n < sizeof(known); i++)
        n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", drivers[i].name);
    pc_error_set("unknown blob storage driver %s (known: %s)", driver ? driver : "(none)", known);
    return rc;
}

/* ---- optional capabilities ---- */

static int notsup(const char *what)
{
    pc_error_set("the blob backend cannot %s", what);
    return PC_ENOTSUP;
}

int pc_blob_rd_fd(pc_blob_rd *r, int *out)
{
    return r->fd ? r->fd(r, out) : notsup("hand out a file");
}

int pc_blob_url(pc_blob_backend *be, const pc_digest *d, long ttl_s, char *buf, size_t size,
                time_t *expires)
{
    return be->url ? be->url(be, d, ttl_s, buf, size, expires) : notsup("give out URLs");
}

int pc_blob_adopt_fd(pc_blob_backend *be, int fd, uint64_t size, const pc_digest *d)
{
    return be->adopt_fd ? be->adopt_fd(be, fd, size, d) : notsup("adopt a file");
}

int pc_blob_publish_lock(pc_blob_backend *be, bool exclusive, pc_blob_hold *h)
{
    h->a = h->b = -1;
    h->p = NULL;
    return be->publish_lock ? be->publish_lock(be, exclusive, h) : 0;
}

void pc_blob_publish_unlock(pc_blob_backend *be, pc_blob_hold *h)
{
    if (be->publish_unlock)
        be->publish_unlock(be, h);
}

int pc_blob_quarantine(pc_blob_backend *be, const pc_digest *d)
{
    return be->quarantine ? be->quarantine(be, d) : be->remove(be, d);
}

/* ---- the hashing writer ----
 *
 * How "verified before visible" holds: every byte the caller hands to
 * pc_blob_up_write goes through the hasher before it reaches the backend,
 * so the hasher's digest is the digest of exactly the bytes in the writer
 * (restored states included: their count must equal the checkpointed
 * size). pc_blob_up_finish commits only when that digest equals the one
 * the client claimed, and backends publish only in commit. */

struct pc_blob_up {
    pc_blob_backend *be;
    pc_blob_wr *w;
    pc_hash *h;
    unsigned char *buf; /* pending bytes, fewer than be->min_part */
    size_t buflen, bufcap;
};

static void up_free(pc_blob_up *u)
{
    if (u->h)
        pc_hash_free(u->h);
    free(u->buf);
    free(u);
}

static int up_start(pc_blob_backend *be, const char *id, bool create, pc_blob_up **out)
{
    pc_blob_up *u = calloc(1, sizeof(*u));
    if (!u)
        return PC_ENOMEM;
    u->be = be;
    int rc = be->writer(be, id, create, &u->w);
    if (rc) {
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int pc_blob_up_create(pc_blob_backend *be, const char *id, pc_digest_alg alg, pc_blob_up **out)
{
    pc_blob_up *u;
    int rc = up_start(be, id, true, &u);
    if (rc)
        return rc;
    if ((rc = pc_hash_new(&u->h, alg))) {
        pc_blob_up_cancel(u);
        return rc;
    }
    *out = u;
    return 0;
}

/* Hash the bytes written so far into u->h (an upload with no saved state,
 * or a digest of another algorithm than the one hashed). */
static int up_rehash(pc_blob_up *u)
{
    pc_blob_wr *w = u->w;
    if (!w->read)
        return notsup("read an upload back to hash it");
    enum { CHUNK = 256 * 1024 };
    char *buf = malloc(CHUNK);
    if (!buf)
        return PC_ENOMEM;
    int rc = 0;
    uint64_t off = 0;
    while (rc == 0 && off < w->size) {
        long n = w->read(w, off, buf, CHUNK);
        if (n <= 0) {
            if (n == 0)
                pc_error_set("upload shorter than its size");
            rc = n < 0 ? (int)n : PC_ERR;
            break;
        }
        rc = pc_hash_update(u->h, buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    return rc;
}

int pc_blob_up_resume(pc_blob_backend *be, const char *id, pc_digest_alg alg, pc_blob_up **out)
{
    pc_blob_up *u;
    int rc = up_start(be, id, false, &u);
    if (rc)
        return rc;
    pc_blob_wr *w = u->w;
    if (w->state_len) {
        rc = pc_hash_restore(&u->h, alg, w->state, w->state_len);
        if (rc == 0 && (pc_hash_count(u->h) != w->state_size || w->state_size != w->size)) {
            pc_error_set("upload %s: saved hash state covers %llu bytes, the upload has %llu", id,
                         (unsigned long long)pc_hash_count(u->h), (unsigned long long)w->size);
            rc = PC_ERR;
        }
    } else if ((rc = pc_hash_new(&u->h, alg)) == 0 && w->size) {
        rc = up_rehash(u);
    }
    if (rc) {
        pc_blob_up_close(u);
        return rc;
    }
    *out = u;
    return 0;
}

static int up_flush(pc_blob_up *u)
{
    if (!u->buflen)
        return 0;
    int rc = u->w->append(u->w, u->buf, u->buflen);
    if (rc == 0)
        u->buflen = 0;
    return rc;
}

int pc_blob_up_write(pc_blob_up *u, const void *buf, size_t len)
{
    int rc = pc_hash_update(u->h, buf, len);
    if (rc)
        return rc;
    uint64_t part = u->be->min_part;
    if (!part || (!u->buflen && len >= part))
        return u->w->append(u->w, buf, len);
    const unsigned char *p = buf;
    while (len) {
        if (!u->buf) {
            if (part > (uint64_t)1 << 30) {
                pc_error_set("blob backend part size too large");
                return PC_ERR;
            }
            if (!(u->buf = malloc((size_t)part)))
                return PC_ENOMEM;
            u->bufcap = (size_t)part;
        }
        size_t n = u->bufcap - u->buflen < len ? u->bufcap - u->buflen : len;
        memcpy(u->buf + u->buflen, p, n);
        u->buflen += n;
        p += n;
        len -= n;
        if (u->buflen == u->bufcap && (rc = up_flush(u)))
            return rc;
    }
    return 0;
}

uint64_t pc_blob_up_size(const pc_blob_up *u)
{
    return u->w->size + u->buflen;
}

int pc_blob_up_checkpoint(pc_blob_up *u)
{
    unsigned char st[PC_HASH_STATE_MAX];
    size_t n;
    int rc = up_flush(u);
    if (!rc)
        rc = pc_hash_save(u->h, st, sizeof(st), &n);
    if (!rc)
        rc = u->w->checkpoint(u->w, st, n);
    return rc;
}

int pc_blob_up_finish(pc_blob_up *u, const pc_digest *want, pc_digest *got)
{
    pc_digest d;
    int rc = up_flush(u);
    if (!rc && want->alg != pc_hash_alg(u->h)) {
        /* the client names its digest only now, in another algorithm
         * than the one hashed while the bytes arrived: hash them once more */
        pc_hash_free(u->h);
        u->h = NULL;
        if ((rc = pc_hash_new(&u->h, want->alg)) == 0)
            rc = up_rehash(u);
    }
    if (!rc)
        rc = pc_hash_peek(u->h, &d);
    if (rc) {
        pc_blob_up_close(u);
        return rc;
    }
    if (got)
        *got = d;
    if (!pc_digest_equal(&d, want)) {
        pc_blob_up_cancel(u);
        pc_error_set("content is %s, not %s", d.str, want->str);
        return PC_EDIGEST;
    }
    rc = u->w->commit(u->w, &d);
    up_free(u);
    return rc;
}

void pc_blob_up_close(pc_blob_up *u)
{
    if (!u)
        return;
    u->w->close(u->w);
    up_free(u);
}

void pc_blob_up_cancel(pc_blob_up *u)
{
    if (!u)
        return;
    u->w->cancel(u->w);
    up_free(u);
}

int pc_blob_put(pc_blob_backend *be, const pc_digest *d, const void *buf, size_t len)
{
    uint64_t size;
    pc_digest got;
    int rc = pc_digest_buffer(&got, d->alg, buf, len);
    if (rc)
        return rc;
    if (!pc_digest_equal(&got, d)) {
        pc_error_set("content does not match digest %s", d->str);
        return PC_EDIGEST;
    }
    if (be->stat(be, d, &size) == 0 && size == len)
        return 0;
    pc_blob_up *u;
    if ((rc = pc_blob_up_create(be, NULL, d->alg, &u)))
        return rc;
    if ((rc = pc_blob_up_write(u, buf, len))) {
        pc_blob_up_cancel(u);
        return rc;
    }
    return pc_blob_up_finish(u, d, NULL);
}

int pc_blob_get(pc_blob_backend *be, const pc_digest *d, size_t max, void **buf, size_t *len)
{
    pc_blob_rd *r = NULL;
    char *data = NULL;
    int rc = be->open(be, d, &r);
    if (rc)
        return rc;
    if (r->size > max) {
        pc_error_set("blob of %llu bytes is larger than %zu", (unsigned long long)r->size, max);
        rc = PC_ETOOBIG;
        goto done;
    }
    if (!(data = malloc(r->size ? (size_t)r->size : 1))) {
        rc = PC_ENOMEM;
        goto done;
    }
    for (uint64_t off = 0; off < r->size;) {
        long n = r->read(r, off, data + off, (size_t)(r->size - off));
        if (n <= 0) {
            if (n == 0)
                pc_error_set("blob %s shrank while read", d->str);
            rc = n < 0 ? (int)n : PC_ERR;
            goto done;
        }
        off += (uint64_t)n;
    }
    *buf = data;
    *len = (size_t)r->size;
    data = NULL;
done:
    free(data);
    r->close(r);
    return rc;
}
