/*
 * meta_pg_limits.c - the PostgreSQL meta store's copy of the client pull
 * limiter's counts (limiter.h), in a table every replica on the database
 * shares: buckets saved in one transaction with the expired ones dropped,
 * and loaded back at start.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

#include <string.h>

typedef struct {
    const pc_meta_limit_row *rows;
    size_t n;
    int64_t now;
    bool replace;
} save_args;

/* The writes of limit_save, inside its transaction. */
static int limit_write(pc_metastore *ms, void *p)
{
    const save_args *a = p;
    int rc = 0;
    if (a->replace && (rc = pc_pg_exec(ms, PG_LIMIT_CLEAR, "limiter clear", NULL, PG_NOARGS)))
        return rc;
    for (size_t i = 0; i < a->n; i++)
        if ((rc = pc_pg_exec(ms, PG_LIMIT_PUT, "limiter save", NULL,
                             PG_ARGS(PG_TEXT(a->rows[i].key), PG_INT(a->rows[i].bucket),
                                     PG_INT(a->rows[i].count), PG_INT(a->rows[i].expires)))))
            return rc;
    return pc_pg_exec(ms, PG_LIMIT_PRUNE, "limiter prune", NULL, PG_ARGS(PG_INT(a->now)));
}

static int pg_limit_save(pc_metastore *ms, const pc_meta_limit_row *rows, size_t n, int64_t now,
                         bool replace)
{
    if (n && !rows)
        return pc_meta_invalid("limiter rows");
    for (size_t i = 0; i < n; i++)
        if (!rows[i].key || !rows[i].key[0] || rows[i].count > INT64_MAX)
            return pc_meta_invalid("limiter row");
    save_args a = {rows, n, now, replace};
    return pc_pg_tx(ms, PC_PG_TX_PLAIN, limit_write, &a);
}

static int limit_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    const char *key = PQgetvalue(res, row, 0);
    int64_t count = pc_pg_col_int(res, row, 2);
    if (!key[0] || count < 0)
        return 0; /* not one of ours: nothing to count */
    pc_meta_limit_row lr = {key, pc_pg_col_int(res, row, 1), (uint64_t)count,
                            pc_pg_col_int(res, row, 3)};
    return r->cb.limit(&lr, r->ctx);
}

static int pg_limit_load(pc_metastore *ms, int64_t now, pc_meta_limit_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_pg_rows r = {.cb.limit = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_LIMIT_LOAD, "limiter load", limit_row, &r, PG_ARGS(PG_INT(now)));
}

typedef struct {
    const char *key;
    int64_t bucket, first, expires;
    uint64_t max;
    bool count;
    pc_meta_limit_take *out;
} take_args;

static int take_write(pc_metastore *ms, void *p)
{
    take_args *a = p;
    pc_pg_query q;
    int rc;
    if (a->count &&
        (rc = pc_pg_exec(ms, PG_LIMIT_LOCK, "limiter lock", NULL, PG_ARGS(PG_TEXT(a->key)))))
        return rc;
    if ((rc = pc_pg_query_row(&q, ms, PG_LIMIT_SUM, "limiter sum", "limiter sum: no row",
                              PG_ARGS(PG_TEXT(a->key), PG_INT(a->first)))))
        return rc;
    int64_t total = pc_pg_col_int(q.res, 0, 0), oldest = pc_pg_col_int(q.res, 0, 1);
    pc_pg_query_close(&q);
    pc_meta_limit_take *out = a->out;
    out->total = total > 0 ? (uint64_t)total : 0;
    out->oldest = -1;
    out->allowed = out->total < a->max;
    if (!a->count)
        return 0;
    if (!out->allowed) {
        out->oldest = oldest;
        return 0;
    }
    rc = pc_pg_exec(ms, PG_LIMIT_ADD, "limiter add", NULL,
                    PG_ARGS(PG_TEXT(a->key), PG_INT(a->bucket), PG_INT(a->expires)));
    if (rc == 0)
        out->total++;
    return rc;
}

static int pg_limit_take(pc_metastore *ms, const char *key, int64_t bucket, int64_t first,
                         int64_t expires, uint64_t max, bool count, pc_meta_limit_take *out)
{
    if (!key || !key[0] || !out || first > bucket || max > INT64_MAX)
        return pc_meta_invalid("limiter take");
    memset(out, 0, sizeof(*out));
    take_args a = {key, bucket, first, expires, max, count, out};
    if (!count)
        return take_write(ms, &a);
    return pc_pg_tx(ms, PC_PG_TX_PLAIN, take_write, &a);
}

void pc_pg_limits_install(pc_meta_limit_ops *ops)
{
    ops->limit_take = pg_limit_take;
    ops->limit_save = pg_limit_save;
    ops->limit_load = pg_limit_load;
}
