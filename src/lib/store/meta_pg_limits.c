/*
 * meta_pg_limits.c - the PostgreSQL meta store's copy of the client pull
 * limiter's counts (limiter.h), in a table every replica on the database
 * shares: buckets saved in one transaction with the expired ones dropped,
 * and loaded back at start.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

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

void pc_pg_limits_install(pc_meta_limit_ops *ops)
{
    ops->limit_save = pg_limit_save;
    ops->limit_load = pg_limit_load;
}
