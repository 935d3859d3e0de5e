/*
 * meta_sqlite_limits.c - the SQLite meta store's copy of the client
 * pull limiter's counts (limiter.h): buckets saved in one transaction with
 * the expired ones dropped, and loaded back at start.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"

#include <string.h>

/* The writes of limit_save, inside its transaction. */
static int limit_write(pc_metastore *ms, const pc_meta_limit_row *rows, size_t n, int64_t now,
                       bool replace)
{
    int rc = 0;
    if (replace && (rc = pc_sq_exec(ms, ST_LIMIT_CLEAR, "limiter clear", NULL, SQ_NOARGS)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = pc_sq_exec(ms, ST_LIMIT_PUT, "limiter save", NULL,
                             SQ_ARGS(SQ_TEXT(rows[i].key), SQ_INT(rows[i].bucket),
                                     SQ_INT(rows[i].count), SQ_INT(rows[i].expires)))))
            return rc;
    return pc_sq_exec(ms, ST_LIMIT_PRUNE, "limiter prune", NULL, SQ_ARGS(SQ_INT(now)));
}

static int sq_limit_save(pc_metastore *ms, const pc_meta_limit_row *rows, size_t n, int64_t now,
                         bool replace)
{
    if (n && !rows)
        return pc_meta_invalid("limiter rows");
    for (size_t i = 0; i < n; i++)
        if (!rows[i].key || !rows[i].key[0] || rows[i].count > INT64_MAX)
            return pc_meta_invalid("limiter row");
    int rc = pc_sq_tx_begin(ms);
    if (rc)
        return rc;
    return pc_sq_tx_end(ms, limit_write(ms, rows, n, now, replace));
}

static int limit_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    const char *key = (const char *)sqlite3_column_text(st, 0);
    sqlite3_int64 count = sqlite3_column_int64(st, 2);
    if (!key || !key[0] || count < 0)
        return 0; /* not one of ours: nothing to count */
    pc_meta_limit_row row = {key, (int64_t)sqlite3_column_int64(st, 1), (uint64_t)count,
                             (int64_t)sqlite3_column_int64(st, 3)};
    return r->cb.limit(&row, r->ctx);
}

static int sq_limit_load(pc_metastore *ms, int64_t now, pc_meta_limit_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_sq_rows r = {.cb.limit = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_LIMIT_LOAD, "limiter load", limit_row, &r, SQ_ARGS(SQ_INT(now)));
}

typedef struct {
    const char *key;
    int64_t bucket, first, expires;
    uint64_t max;
    bool count;
} take_args;

/* limit_take's reads and write, inside its transaction. */
static int take_write(pc_metastore *ms, const take_args *a, pc_meta_limit_take *out)
{
    pc_sq_query q;
    int rc = pc_sq_query_row(&q, ms, ST_LIMIT_SUM, "limiter sum", "limiter sum: no row",
                             SQ_ARGS(SQ_TEXT(a->key), SQ_INT(a->first)));
    if (rc)
        return rc;
    sqlite3_int64 total = sqlite3_column_int64(q.st, 0);
    int64_t oldest = sqlite3_column_int64(q.st, 1);
    pc_sq_query_close(&q);
    out->total = total > 0 ? (uint64_t)total : 0;
    out->oldest = -1;
    out->allowed = out->total < a->max;
    if (!a->count)
        return 0;
    if (!out->allowed) {
        out->oldest = oldest;
        return 0;
    }
    rc = pc_sq_exec(ms, ST_LIMIT_ADD, "limiter add", NULL,
                    SQ_ARGS(SQ_TEXT(a->key), SQ_INT(a->bucket), SQ_INT(a->expires)));
    if (rc == 0)
        out->total++;
    return rc;
}

static int sq_limit_take(pc_metastore *ms, const char *key, int64_t bucket, int64_t first,
                         int64_t expires, uint64_t max, bool count, pc_meta_limit_take *out)
{
    if (!key || !key[0] || !out || first > bucket || max > INT64_MAX)
        return pc_meta_invalid("limiter take");
    take_args a = {key, bucket, first, expires, max, count};
    memset(out, 0, sizeof(*out));
    if (!count) /* a look reads one consistent snapshot: no write transaction */
        return take_write(ms, &a, out);
    int rc = pc_sq_tx_begin(ms);
    if (rc)
        return rc;
    return pc_sq_tx_end(ms, take_write(ms, &a, out));
}

void pc_sq_limits_install(pc_meta_limit_ops *ops)
{
    ops->limit_take = sq_limit_take;
    ops->limit_save = sq_limit_save;
    ops->limit_load = sq_limit_load;
}
