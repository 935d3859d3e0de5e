/*
 * meta_sqlite_blobs.c - the SQLite meta store's blob links (which
 * repository holds which blob), upload sessions, and the queries gc and
 * fsck ask: every referenced digest, how many things hold a digest.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"
#include "store/blob.h" /* pc_upload_id_valid */

#include <time.h>

static int sq_blob_link(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t size)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob link");
    return pc_sq_exec(ms, ST_BLOB_LINK, "blob link", NULL,
                      SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(d->str), SQ_INT(size), SQ_INT(time(NULL))));
}

/* The size column of a blob link query, when size is not NULL. */
static int blob_size(pc_metastore *ms, int id, const char *missing, uint64_t *size,
                     const pc_sq_arg *args, size_t nargs)
{
    int64_t n = 0;
    int rc = pc_sq_get_int(ms, id, "blob stat", missing, &n, args, nargs);
    if (rc == 0 && size)
        *size = (uint64_t)n;
    return rc;
}

static int sq_blob_stat(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t *size)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob");
    return blob_size(ms, ST_BLOB_STAT, "blob unknown to repository", size,
                     SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(d->str)));
}

static int sq_blob_stat_any(pc_metastore *ms, const pc_digest *d, uint64_t *size)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("digest");
    return blob_size(ms, ST_BLOB_STAT_ANY, "blob unknown", size, SQ_ARGS(SQ_TEXT(d->str)));
}

static int sq_blob_unlink(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob");
    return pc_sq_delete(ms, ST_BLOB_UNLINK, "blob unlink", SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(d->str)));
}

static int sq_upload_put(pc_metastore *ms, const char *id, const char *repo)
{
    if (!pc_upload_id_valid(id) || !pc_meta_repo_ok(repo))
        return pc_meta_invalid("upload");
    return pc_sq_exec(ms, ST_UPLOAD_PUT, "upload put", NULL,
                      SQ_ARGS(SQ_TEXT(id), SQ_TEXT(repo), SQ_INT(time(NULL))));
}

static int sq_upload_get(pc_metastore *ms, const char *id, char *repo)
{
    if (!pc_upload_id_valid(id) || !repo)
        return pc_meta_invalid("upload");
    pc_sq_query q;
    int rc = pc_sq_query_row(&q, ms, ST_UPLOAD_GET, "upload get", "upload unknown",
                             SQ_ARGS(SQ_TEXT(id)));
    if (rc)
        return rc;
    rc = pc_sq_col_text(q.st, 0, repo, PC_NAME_MAX + 1);
    pc_sq_query_close(&q);
    return rc;
}

static int sq_upload_delete(pc_metastore *ms, const char *id)
{
    if (!pc_upload_id_valid(id))
        return pc_meta_invalid("upload id");
    return pc_sq_delete(ms, ST_UPLOAD_DEL, "upload delete", SQ_ARGS(SQ_TEXT(id)));
}

static int referenced_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    pc_digest d;
    const char *t = (const char *)sqlite3_column_text(st, 0);
    if (!t || pc_digest_parse(&d, t) != 0)
        return 0; /* cannot name a blob; nothing to keep */
    return r->cb.digest(&d, r->ctx);
}

static int sq_referenced_foreach(pc_metastore *ms, pc_meta_digest_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_sq_rows r = {.cb.digest = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_REFERENCED, "referenced", referenced_row, &r, SQ_NOARGS);
}

static int sq_digest_holders(pc_metastore *ms, const pc_digest *d, uint64_t *count)
{
    if (!pc_meta_digest_ok(d) || !count)
        return pc_meta_invalid("digest");
    int64_t n = 0;
    int rc =
        pc_sq_get_int(ms, ST_HOLDERS, "digest holders", "no result", &n, SQ_ARGS(SQ_TEXT(d->str)));
    if (rc == 0)
        *count = (uint64_t)n;
    return rc;
}

void pc_sq_blobs_install(pc_meta_reg_ops *ops)
{
    ops->blob_link = sq_blob_link;
    ops->blob_stat = sq_blob_stat;
    ops->blob_stat_any = sq_blob_stat_any;
    ops->blob_unlink = sq_blob_unlink;
    ops->upload_put = sq_upload_put;
    ops->upload_get = sq_upload_get;
    ops->upload_delete = sq_upload_delete;
    ops->referenced_foreach = sq_referenced_foreach;
    ops->digest_holders = sq_digest_holders;
}
