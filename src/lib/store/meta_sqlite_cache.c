/*
 * meta_sqlite_cache.c - the SQLite meta store's cache bookkeeping:
 * when the mirror last served or fetched each blob, the least recently
 * used candidates for eviction, and the eviction of one of them.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"

#include <stdlib.h>

/* A read first (WAL readers never wait and take no lock), the write only
 * when the record is missing or older than PC_SQ_TOUCH_EVERY: a blob served
 * again and again costs one indexed read. (No memory of what was written:
 * a gc in another process may have dropped the record meanwhile.) */
static int sq_access_touch(pc_metastore *ms, const pc_digest *d, uint64_t size, int64_t now)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("digest");
    int64_t last = 0;
    int rc = pc_sq_get_int(ms, ST_ACCESS_GET, "access get", "no access record", &last,
                           SQ_ARGS(SQ_TEXT(d->str)));
    if (rc && rc != PC_ENOTFOUND)
        return rc;
    if (rc == 0 && now >= last && now - last < PC_SQ_TOUCH_EVERY)
        return 0;
    return pc_sq_exec(ms, ST_ACCESS_TOUCH, "access touch", NULL,
                      SQ_ARGS(SQ_TEXT(d->str), SQ_INT(size), SQ_INT(now)));
}

/* Whether every repository holding d satisfies mirror (NULL: that none
 * holds it): 1 yes, 0 no, < 0 on an error. */
typedef struct {
    pc_meta_repo_pred mirror;
    void *ctx;
    bool outside;
} holder_scan;

static int holder_row(sqlite3_stmt *st, void *p)
{
    holder_scan *h = p;
    const char *repo = (const char *)sqlite3_column_text(st, 0);
    if (!repo || !h->mirror || !h->mirror(repo, h->ctx)) {
        h->outside = true;
        return 1; /* one is enough */
    }
    return 0;
}

static int only_mirror_holds(pc_metastore *ms, const pc_digest *d, pc_meta_repo_pred mirror,
                             void *ctx)
{
    holder_scan h = {mirror, ctx, false};
    int rc =
        pc_sq_each(ms, ST_HOLDER_REPOS, "eviction check", holder_row, &h, SQ_ARGS(SQ_TEXT(d->str)));
    if (rc < 0)
        return rc;
    return h.outside ? 0 : 1;
}

/* Collected first, filtered after: the holder query must not run while
 * the listing's statement is open on the same connection's cache. */
typedef struct {
    pc_digest d;
    uint64_t size;
    int64_t last;
} lru_row;

typedef struct {
    lru_row *v;
    size_t n, cap;
} lru_vec;

static int access_row(sqlite3_stmt *st, void *p)
{
    lru_vec *v = p;
    pc_digest d;
    if (pc_sq_col_digest(st, 0, &d) != 0)
        return 0; /* cannot name a blob: nothing to evict */
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        lru_row *nv = realloc(v->v, cap * sizeof(*nv));
        if (!nv)
            return PC_ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n].d = d;
    v->v[v->n].size = (uint64_t)sqlite3_column_int64(st, 1);
    v->v[v->n].last = (int64_t)sqlite3_column_int64(st, 2);
    v->n++;
    return 0;
}

static int sq_access_lru(pc_metastore *ms, pc_meta_repo_pred mirror, void *pctx,
                         pc_meta_access_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("eviction query");
    lru_vec v = {NULL, 0, 0};
    int rc = pc_sq_each(ms, ST_ACCESS_LRU, "eviction candidates", access_row, &v, SQ_NOARGS);
    for (size_t i = 0; rc == 0 && i < v.n; i++) {
        int ok = only_mirror_holds(ms, &v.v[i].d, mirror, pctx);
        if (ok < 0)
            rc = ok;
        else if (ok)
            rc = cb(&v.v[i].d, v.v[i].size, v.v[i].last, ctx);
    }
    free(v.v);
    return rc;
}

/* The check and deletes of access_evict, inside its transaction. */
static int evict_one(pc_metastore *ms, const pc_digest *d, pc_meta_repo_pred mirror, void *ctx)
{
    int64_t manifest = 0;
    int rc = pc_sq_get_int(ms, ST_ACCESS_MANIFEST, "eviction check", "no result", &manifest,
                           SQ_ARGS(SQ_TEXT(d->str)));
    if (rc)
        return rc;
    int only = manifest ? 0 : only_mirror_holds(ms, d, mirror, ctx);
    if (only < 0)
        return only;
    if (!only) {
        pc_error_set("%s is held outside the mirror", d->str);
        return PC_EEXISTS;
    }
    if ((rc = pc_sq_exec(ms, ST_ACCESS_UNLINK, "evict links", NULL, SQ_ARGS(SQ_TEXT(d->str)))))
        return rc;
    return pc_sq_exec(ms, ST_ACCESS_DEL, "evict access", NULL, SQ_ARGS(SQ_TEXT(d->str)));
}

static int sq_access_evict(pc_metastore *ms, const pc_digest *d, pc_meta_repo_pred mirror,
                           void *ctx)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("eviction");
    int rc = pc_sq_tx_begin(ms);
    if (rc == 0)
        rc = pc_sq_tx_end(ms, evict_one(ms, d, mirror, ctx));
    return rc;
}

void pc_sq_cache_install(pc_meta_cache_ops *ops)
{
    ops->access_touch = sq_access_touch;
    ops->access_lru = sq_access_lru;
    ops->access_evict = sq_access_evict;
}
