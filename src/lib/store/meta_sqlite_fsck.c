/*
 * meta_sqlite_fsck.c - what fsck (fsck.h) asks of the SQLite meta
 * store: every blob link, manifest, manifest reference and upload session,
 * recorded sizes set right, and removals that run only when a check made
 * inside the same write transaction still agrees (so a push or a mirror
 * fetch that wrote meanwhile is never undone).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"
#include "store/blob.h" /* pc_upload_id_valid */

#include <string.h>

static int link_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    char repo[PC_NAME_MAX + 1];
    pc_digest d;
    int rc;
    if ((rc = pc_sq_col_text(st, 0, repo, sizeof(repo))) || (rc = pc_sq_col_digest(st, 1, &d)))
        return rc;
    return r->cb.link(repo, &d, (uint64_t)sqlite3_column_int64(st, 2), r->ctx);
}

static int sq_blob_link_foreach(pc_metastore *ms, pc_meta_link_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_sq_rows r = {.cb.link = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_LINK_ALL, "blob links", link_row, &r, SQ_NOARGS);
}

static int manifest_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    pc_manifest_rec rec;
    int rc = pc_sq_col_rec(st, &rec);
    return rc ? rc : r->cb.rec(&rec, r->ctx);
}

static int sq_manifest_foreach(pc_metastore *ms, pc_meta_rec_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_sq_rows r = {.cb.rec = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_MANIFEST_ALL, "manifests", manifest_row, &r, SQ_NOARGS);
}

static int ref_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    char repo[PC_NAME_MAX + 1];
    pc_digest manifest;
    pc_manifest_ref ref;
    int rc;
    memset(&ref, 0, sizeof(ref));
    if ((rc = pc_sq_col_text(st, 0, repo, sizeof(repo))) ||
        (rc = pc_sq_col_digest(st, 1, &manifest)) || (rc = pc_sq_col_digest(st, 2, &ref.digest)))
        return rc;
    ref.is_manifest = sqlite3_column_int(st, 3) != 0;
    return r->cb.ref(repo, &manifest, &ref, r->ctx);
}

static int sq_manifest_ref_foreach(pc_metastore *ms, pc_meta_ref_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_sq_rows r = {.cb.ref = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_REF_ALL, "manifest references", ref_row, &r, SQ_NOARGS);
}

static int upload_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    char id[72], repo[PC_NAME_MAX + 1];
    int rc;
    if ((rc = pc_sq_col_text(st, 0, id, sizeof(id))) ||
        (rc = pc_sq_col_text(st, 1, repo, sizeof(repo))))
        return rc;
    if (!pc_upload_id_valid(id))
        return 0; /* cannot name a staging file; not ours to judge */
    return r->cb.upload(id, repo, (int64_t)sqlite3_column_int64(st, 2), r->ctx);
}

static int sq_upload_foreach(pc_metastore *ms, pc_meta_upload_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_sq_rows r = {.cb.upload = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_UPLOAD_ALL, "upload sessions", upload_row, &r, SQ_NOARGS);
}

/* The updates of size_fix, inside its transaction. */
static int size_write(pc_metastore *ms, const pc_digest *d, uint64_t size, uint64_t *changed)
{
    static const int steps[] = {ST_SIZE_FIX_LINKS, ST_SIZE_FIX_MANIFESTS};
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int64_t n = 0;
        int rc = pc_sq_exec(ms, steps[i], "size fix", &n, SQ_ARGS(SQ_TEXT(d->str), SQ_INT(size)));
        if (rc)
            return rc;
        total += (uint64_t)n;
    }
    if (changed)
        *changed = total;
    return 0;
}

static int sq_size_fix(pc_metastore *ms, const pc_digest *d, uint64_t size, uint64_t *changed)
{
    if (!pc_meta_digest_ok(d) || size > (uint64_t)INT64_MAX)
        return pc_meta_invalid("size fix");
    int rc = pc_sq_tx_begin(ms);
    if (rc)
        return rc;
    return pc_sq_tx_end(ms, size_write(ms, d, size, changed));
}

/* The removal of guarded_remove, inside its transaction. */
static int removal_write(pc_metastore *ms, const pc_meta_removal *what)
{
    switch (what->kind) {
    case PC_META_REMOVE_NOTHING:
        return 0;
    case PC_META_REMOVE_LINK:
        return pc_sq_delete(ms, ST_BLOB_UNLINK, "blob unlink",
                            SQ_ARGS(SQ_TEXT(what->repo), SQ_TEXT(what->digest->str)));
    case PC_META_REMOVE_MANIFEST:
        return pc_sq_manifest_erase(ms, what->repo, what->digest);
    }
    return pc_meta_invalid("removal");
}

static int sq_guarded_remove(pc_metastore *ms, const pc_meta_removal *what, pc_meta_guard_fn check,
                             void *ctx)
{
    if (!what || !check ||
        (what->kind != PC_META_REMOVE_NOTHING &&
         (!pc_meta_repo_ok(what->repo) || !pc_meta_digest_ok(what->digest))))
        return pc_meta_invalid("guarded removal");
    int rc = pc_sq_tx_begin(ms);
    if (rc)
        return rc;
    rc = check(ms, ctx);
    if (rc == 0)
        rc = removal_write(ms, what);
    return pc_sq_tx_end(ms, rc);
}

void pc_sq_fsck_install(pc_meta_reg_ops *ops)
{
    ops->blob_link_foreach = sq_blob_link_foreach;
    ops->manifest_foreach = sq_manifest_foreach;
    ops->manifest_ref_foreach = sq_manifest_ref_foreach;
    ops->upload_foreach = sq_upload_foreach;
    ops->size_fix = sq_size_fix;
    ops->guarded_remove = sq_guarded_remove;
}
