/*
 * meta_pg_fsck.c - what fsck (fsck.h) asks of the PostgreSQL meta store:
 * every blob link, manifest, manifest reference and upload session,
 * recorded sizes set right, and removals that run only when a check made
 * inside the same transaction still agrees, with every registry writer
 * held off meanwhile (the writers' advisory lock taken exclusive, see
 * meta_pg.c), so a push or a mirror fetch that writes meanwhile is never
 * undone.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"
#include "store/blob.h" /* pc_upload_id_valid */

#include <string.h>

static int link_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    char repo[PC_NAME_MAX + 1];
    pc_digest d;
    int rc;
    if ((rc = pc_pg_col_text(res, row, 0, repo, sizeof(repo))) ||
        (rc = pc_pg_col_digest(res, row, 1, &d)))
        return rc;
    return r->cb.link(repo, &d, (uint64_t)pc_pg_col_int(res, row, 2), r->ctx);
}

static int pg_blob_link_foreach(pc_metastore *ms, pc_meta_link_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_pg_rows r = {.cb.link = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_LINK_ALL, "blob links", link_row, &r, PG_NOARGS);
}

static int manifest_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    pc_manifest_rec rec;
    int rc = pc_pg_col_rec(res, row, &rec);
    return rc ? rc : r->cb.rec(&rec, r->ctx);
}

static int pg_manifest_foreach(pc_metastore *ms, pc_meta_rec_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_pg_rows r = {.cb.rec = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_MANIFEST_ALL, "manifests", manifest_row, &r, PG_NOARGS);
}

static int ref_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    char repo[PC_NAME_MAX + 1];
    pc_digest manifest;
    pc_manifest_ref ref;
    int rc;
    memset(&ref, 0, sizeof(ref));
    if ((rc = pc_pg_col_text(res, row, 0, repo, sizeof(repo))) ||
        (rc = pc_pg_col_digest(res, row, 1, &manifest)) ||
        (rc = pc_pg_col_digest(res, row, 2, &ref.digest)))
        return rc;
    ref.is_manifest = pc_pg_col_int(res, row, 3) != 0;
    return r->cb.ref(repo, &manifest, &ref, r->ctx);
}

static int pg_manifest_ref_foreach(pc_metastore *ms, pc_meta_ref_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_pg_rows r = {.cb.ref = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_REF_ALL, "manifest references", ref_row, &r, PG_NOARGS);
}

static int upload_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    char id[72], repo[PC_NAME_MAX + 1];
    int rc;
    if ((rc = pc_pg_col_text(res, row, 0, id, sizeof(id))) ||
        (rc = pc_pg_col_text(res, row, 1, repo, sizeof(repo))))
        return rc;
    if (!pc_upload_id_valid(id))
        return 0; /* cannot name a staging file; not ours to judge */
    return r->cb.upload(id, repo, pc_pg_col_int(res, row, 2), r->ctx);
}

static int pg_upload_foreach(pc_metastore *ms, pc_meta_upload_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_pg_rows r = {.cb.upload = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_UPLOAD_ALL, "upload sessions", upload_row, &r, PG_NOARGS);
}

typedef struct {
    const pc_digest *d;
    uint64_t size;
    uint64_t changed;
} size_args;

/* The updates of size_fix, inside its transaction. */
static int size_write(pc_metastore *ms, void *p)
{
    static const int steps[] = {PG_SIZE_FIX_LINKS, PG_SIZE_FIX_MANIFESTS};
    size_args *a = p;
    a->changed = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int64_t n = 0;
        int rc =
            pc_pg_exec(ms, steps[i], "size fix", &n, PG_ARGS(PG_TEXT(a->d->str), PG_INT(a->size)));
        if (rc)
            return rc;
        a->changed += (uint64_t)n;
    }
    return 0;
}

static int pg_size_fix(pc_metastore *ms, const pc_digest *d, uint64_t size, uint64_t *changed)
{
    if (!pc_meta_digest_ok(d) || size > (uint64_t)INT64_MAX)
        return pc_meta_invalid("size fix");
    size_args a = {d, size, 0};
    int rc = pc_pg_tx(ms, PC_PG_TX_WRITER, size_write, &a);
    if (rc == 0 && changed)
        *changed = a.changed;
    return rc;
}

typedef struct {
    const pc_meta_removal *what;
    pc_meta_guard_fn check;
    void *ctx;
} guard_args;

/* The check, then the removal, inside guarded_remove's transaction. */
static int guarded_write(pc_metastore *ms, void *p)
{
    guard_args *a = p;
    const pc_meta_removal *what = a->what;
    int rc = a->check(ms, a->ctx);
    if (rc)
        return rc;
    switch (what->kind) {
    case PC_META_REMOVE_NOTHING:
        return 0;
    case PC_META_REMOVE_LINK:
        return pc_pg_delete(ms, PG_BLOB_UNLINK, "blob unlink",
                            PG_ARGS(PG_TEXT(what->repo), PG_TEXT(what->digest->str)));
    case PC_META_REMOVE_MANIFEST:
        return pc_pg_manifest_erase(ms, what->repo, what->digest);
    }
    return pc_meta_invalid("removal");
}

static int pg_guarded_remove(pc_metastore *ms, const pc_meta_removal *what, pc_meta_guard_fn check,
                             void *ctx)
{
    if (!what || !check ||
        (what->kind != PC_META_REMOVE_NOTHING &&
         (!pc_meta_repo_ok(what->repo) || !pc_meta_digest_ok(what->digest))))
        return pc_meta_invalid("guarded removal");
    guard_args a = {what, check, ctx};
    return pc_pg_tx(ms, PC_PG_TX_GUARD, guarded_write, &a);
}

void pc_pg_fsck_install(pc_meta_reg_ops *ops)
{
    ops->blob_link_foreach = pg_blob_link_foreach;
    ops->manifest_foreach = pg_manifest_foreach;
    ops->manifest_ref_foreach = pg_manifest_ref_foreach;
    ops->upload_foreach = pg_upload_foreach;
    ops->size_fix = pg_size_fix;
    ops->guarded_remove = pg_guarded_remove;
}
