/*
 * meta_pg_cache.c - the PostgreSQL meta store's cache bookkeeping, shared
 * by every replica on the database: when the mirror last served or
 * fetched each blob, the least recently used candidates for eviction, and
 * the eviction of one of them.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

#include <stdlib.h>

/* A read first, the write only when the record is missing or older than
 * PC_PG_TOUCH_EVERY_S: a blob served again and again costs one indexed
 * read, no row lock and no WAL (an upsert whose update does nothing still
 * locks the row). No memory of what was written: another replica's gc may
 * have dropped the record meanwhile. */
static int pg_access_touch(pc_metastore *ms, const pc_digest *d, uint64_t size, int64_t now)
{
    if (!pc_meta_digest_ok(d) || size > (uint64_t)INT64_MAX)
        return pc_meta_invalid("digest");
    int64_t last = 0;
    int rc = pc_pg_get_int(ms, PG_ACCESS_GET, "access get", "no access record", &last,
                           PG_ARGS(PG_TEXT(d->str)));
    if (rc && rc != PC_ENOTFOUND)
        return rc;
    if (rc == 0 && now >= last && now - last < 60)
        return 0;
    if (rc == 0 && now < last)
        return 0; /* a time going backwards is no touch */
    return pc_pg_exec(ms, PG_ACCESS_TOUCH, "access touch", NULL,
                      PG_ARGS(PG_TEXT(d->str), PG_INT(size), PG_INT(now)));
}

/* Whether every repository holding d satisfies mirror (NULL: that none
 * holds it): 1 yes, 0 no, < 0 on an error. */
typedef struct {
    pc_meta_repo_pred mirror;
    void *ctx;
    bool outside;
} holder_scan;

static int holder_row(const PGresult *res, int row, void *p)
{
    holder_scan *h = p;
    const char *repo = PQgetvalue(res, row, 0);
    if (!h->mirror || !h->mirror(repo, h->ctx)) {
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
        pc_pg_each(ms, PG_HOLDER_REPOS, "eviction check", holder_row, &h, PG_ARGS(PG_TEXT(d->str)));
    if (rc < 0)
        return rc;
    return h.outside ? 0 : 1;
}

static int pg_access_lru(pc_metastore *ms, pc_meta_repo_pred mirror, void *pctx,
                         pc_meta_access_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("eviction query");
    pc_pg_query q;
    int rc = pc_pg_query_open(&q, ms, PG_ACCESS_LRU, "eviction candidates", PG_NOARGS);
    if (rc)
        return rc;
    int n = PQntuples(q.res);
    for (int i = 0; rc == 0 && i < n; i++) {
        pc_digest d;
        if (pc_pg_col_digest(q.res, i, 0, &d) != 0)
            continue; /* cannot name a blob: nothing to evict */
        int ok = only_mirror_holds(ms, &d, mirror, pctx);
        if (ok < 0)
            rc = ok;
        else if (ok)
            rc = cb(&d, (uint64_t)pc_pg_col_int(q.res, i, 1), pc_pg_col_int(q.res, i, 2), ctx);
    }
    pc_pg_query_close(&q);
    return rc;
}

typedef struct {
    const pc_digest *d;
    pc_meta_repo_pred mirror;
    void *ctx;
} evict_args;

/* The check and deletes of access_evict, inside its transaction (a
 * registry write: blob links go). */
static int evict_one(pc_metastore *ms, void *p)
{
    evict_args *a = p;
    const pc_digest *d = a->d;
    int64_t manifest = 0;
    int rc = pc_pg_get_int(ms, PG_ACCESS_MANIFEST, "eviction check", "no result", &manifest,
                           PG_ARGS(PG_TEXT(d->str)));
    if (rc)
        return rc;
    int only = manifest ? 0 : only_mirror_holds(ms, d, a->mirror, a->ctx);
    if (only < 0)
        return only;
    if (!only) {
        pc_error_set("%s is held outside the mirror", d->str);
        return PC_EEXISTS;
    }
    if ((rc = pc_pg_exec(ms, PG_ACCESS_UNLINK, "evict links", NULL, PG_ARGS(PG_TEXT(d->str)))))
        return rc;
    return pc_pg_exec(ms, PG_ACCESS_DEL, "evict access", NULL, PG_ARGS(PG_TEXT(d->str)));
}

static int pg_access_evict(pc_metastore *ms, const pc_digest *d, pc_meta_repo_pred mirror,
                           void *ctx)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("eviction");
    evict_args a = {d, mirror, ctx};
    return pc_pg_tx(ms, PC_PG_TX_WRITER, evict_one, &a);
}

void pc_pg_cache_install(pc_meta_cache_ops *ops)
{
    ops->access_touch = pg_access_touch;
    ops->access_lru = pg_access_lru;
    ops->access_evict = pg_access_evict;
}
