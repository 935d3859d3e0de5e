/*
 * meta_pg_blobs.c - the PostgreSQL meta store's blob links (which
 * repository holds which blob), upload sessions, and the queries gc and
 * fsck ask: every referenced digest, how many things hold a digest.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"
#include "store/blob.h" /* pc_upload_id_valid */

#include <time.h>

static int pg_blob_link(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t size)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d) || size > (uint64_t)INT64_MAX)
        return pc_meta_invalid("blob link");
    return pc_pg_write(ms, PG_BLOB_LINK, "blob link", NULL,
                       PG_ARGS(PG_TEXT(repo), PG_TEXT(d->str), PG_INT(size), PG_INT(time(NULL))));
}

/* The size column of a blob link query, when size is not NULL. */
static int blob_size(pc_metastore *ms, int id, const char *missing, uint64_t *size,
                     const pc_pg_arg *args, size_t nargs)
{
    int64_t n = 0;
    int rc = pc_pg_get_int(ms, id, "blob stat", missing, &n, args, nargs);
    if (rc == 0 && size)
        *size = (uint64_t)n;
    return rc;
}

static int pg_blob_stat(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t *size)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob");
    return blob_size(ms, PG_BLOB_STAT, "blob unknown to repository", size,
                     PG_ARGS(PG_TEXT(repo), PG_TEXT(d->str)));
}

static int pg_blob_stat_any(pc_metastore *ms, const pc_digest *d, uint64_t *size)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("digest");
    return blob_size(ms, PG_BLOB_STAT_ANY, "blob unknown", size, PG_ARGS(PG_TEXT(d->str)));
}

static int pg_blob_unlink(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob");
    return pc_pg_write_delete(ms, PG_BLOB_UNLINK, "blob unlink",
                              PG_ARGS(PG_TEXT(repo), PG_TEXT(d->str)));
}

static int pg_upload_put(pc_metastore *ms, const char *id, const char *repo)
{
    if (!pc_upload_id_valid(id) || !pc_meta_repo_ok(repo))
        return pc_meta_invalid("upload");
    return pc_pg_write(ms, PG_UPLOAD_PUT, "upload put", NULL,
                       PG_ARGS(PG_TEXT(id), PG_TEXT(repo), PG_INT(time(NULL))));
}

static int pg_upload_get(pc_metastore *ms, const char *id, char *repo)
{
    if (!pc_upload_id_valid(id) || !repo)
        return pc_meta_invalid("upload");
    pc_pg_query q;
    int rc = pc_pg_query_row(&q, ms, PG_UPLOAD_GET, "upload get", "upload unknown",
                             PG_ARGS(PG_TEXT(id)));
    if (rc)
        return rc;
    rc = pc_pg_col_text(q.res, 0, 0, repo, PC_NAME_MAX + 1);
    pc_pg_query_close(&q);
    return rc;
}

static int pg_upload_delete(pc_metastore *ms, const char *id)
{
    if (!pc_upload_id_valid(id))
        return pc_meta_invalid("upload id");
    return pc_pg_write_delete(ms, PG_UPLOAD_DEL, "upload delete", PG_ARGS(PG_TEXT(id)));
}

static int referenced_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    pc_digest d;
    if (PQgetisnull(res, row, 0) || pc_digest_parse(&d, PQgetvalue(res, row, 0)) != 0)
        return 0; /* cannot name a blob; nothing to keep */
    return r->cb.digest(&d, r->ctx);
}

static int pg_referenced_foreach(pc_metastore *ms, pc_meta_digest_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_pg_rows r = {.cb.digest = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_REFERENCED, "referenced", referenced_row, &r, PG_NOARGS);
}

static int pg_digest_holders(pc_metastore *ms, const pc_digest *d, uint64_t *count)
{
    if (!pc_meta_digest_ok(d) || !count)
        return pc_meta_invalid("digest");
    int64_t n = 0;
    int rc =
        pc_pg_get_int(ms, PG_HOLDERS, "digest holders", "no result", &n, PG_ARGS(PG_TEXT(d->str)));
    if (rc == 0)
        *count = (uint64_t)n;
    return rc;
}

void pc_pg_blobs_install(pc_meta_reg_ops *ops)
{
    ops->blob_link = pg_blob_link;
    ops->blob_stat = pg_blob_stat;
    ops->blob_stat_any = pg_blob_stat_any;
    ops->blob_unlink = pg_blob_unlink;
    ops->upload_put = pg_upload_put;
    ops->upload_get = pg_upload_get;
    ops->upload_delete = pg_upload_delete;
    ops->referenced_foreach = pg_referenced_foreach;
    ops->digest_holders = pg_digest_holders;
}
