/*
 * registry_fsck_repair.c - fsck's repairs: each problem confirmed once
 * more right before it is repaired (inside a meta store transaction where
 * a removal could undo a push or fetch), in the order of the problem
 * kinds.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "registry_fsck_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- repairs ---- */

typedef struct {
    fsck_t *f;
    const pc_fsck_problem *p;
} guard_ctx;

/* guarded_remove checks, inside the meta store's transaction. */
static int still_no_file(pc_metastore *ms, void *ctx)
{
    guard_ctx *g = ctx;
    uint64_t size;
    int rc = g->f->be->stat(g->f->be, &g->p->digest, &size);
    if (rc == 0) {
        pc_error_set("a blob file is there now");
        return PC_EEXISTS;
    }
    return rc == PC_ENOTFOUND ? 0 : rc;
}

static int still_incomplete(pc_metastore *ms, void *ctx)
{
    guard_ctx *g = ctx;
    fsck_t *f = g->f;
    manifest_t *m = pc_fsck_manifest_find(f, g->p->repo, &g->p->digest);
    if (!m)
        return PC_ENOTFOUND;
    const ref_t *refs = f->refs.v;
    for (size_t k = m->ref0; k < m->ref0 + m->nrefs; k++) {
        const pc_manifest_ref *r = &refs[k].ref;
        uint64_t size;
        pc_manifest_rec child;
        if (r->is_manifest ? ms->reg->manifest_get(ms, m->rec.repo, &r->digest, &child) != 0
                           : f->be->stat(f->be, &r->digest, &size) != 0)
            return 0;
    }
    pc_error_set("everything it references is there now");
    return PC_EEXISTS;
}

static int still_orphan(pc_metastore *ms, void *ctx)
{
    guard_ctx *g = ctx;
    uint64_t holders = 0;
    long age = 0;
    int rc = ms->reg->digest_holders(ms, &g->p->digest, &holders);
    if (rc)
        return rc;
    if (holders) {
        pc_error_set("referenced now");
        return PC_EEXISTS;
    }
    /* its age as listed: a blob committed again since is linked (or
     * recorded as a manifest) under the publish lock, held off now */
    const file_t *file = pc_fsck_file_find(g->f, &g->p->digest);
    age = file ? file->age_s : LONG_MAX;
    if (age < g->f->o->grace_s) {
        pc_error_set("written again %lds ago", age);
        return PC_EEXISTS;
    }
    /* removed with other writers held off: nothing links it meanwhile */
    return g->f->be->remove(g->f->be, &g->p->digest);
}

/* Repairs that remove run under the blob store's exclusive publish lock
 * (store/blob.h), taken before any meta store transaction: a push that
 * republishes the blob meanwhile waits, so its fresh file is not removed
 * on the strength of a look at the old one. Without one (S3) they hold the
 * blob's gc lease instead, as gc does (registry_int.h,
 * pc_registry_publish_settle): a push that linked the blob meanwhile
 * waits it out and finds the blob gone. */
typedef struct {
    pc_blob_hold lk;
    char key[PC_LEASE_KEY_MAX];
    bool leased;
} excl_t;

static int excl_lock(fsck_t *f, const pc_digest *d, excl_t *x)
{
    x->lk.a = x->lk.b = -1;
    x->leased = false;
    int rc = pc_blob_publish_lock(f->be, true, &x->lk);
    if (rc || f->be->publish_lock)
        return rc;
    pc_registry_gc_key(d, x->key, sizeof(x->key));
    rc = f->ms->coord->lease_take(f->ms, x->key, f->node, PC_GC_HOLD_MS, NULL);
    if (rc == PC_EEXISTS)
        pc_error_set("a gc is removing it");
    x->leased = rc == 0;
    return rc;
}

static void excl_unlock(fsck_t *f, excl_t *x)
{
    if (x->leased)
        f->ms->coord->lease_release(f->ms, x->key, f->node);
    pc_blob_publish_unlock(f->be, &x->lk);
}

static int repair_corrupt(fsck_t *f, pc_fsck_problem *p)
{
    bool match = false;
    uint64_t size = 0;
    pc_digest got;
    excl_t lk;
    int rc = excl_lock(f, &p->digest, &lk);
    if (rc)
        return rc;
    /* hash again: a push or fetch may have republished it meanwhile */
    rc = pc_fsck_verify_blob(f->be, &p->digest, &match, &size, &got);
    if (rc == 0 && match) {
        pc_error_set("its bytes match now");
        rc = PC_EEXISTS;
    } else if (rc == 0) {
        rc = f->be->remove(f->be, &p->digest);
    }
    excl_unlock(f, &lk);
    return rc;
}

static int repair_guarded(fsck_t *f, pc_fsck_problem *p, pc_meta_remove_kind kind,
                          pc_meta_guard_fn check)
{
    pc_meta_removal what = {kind, p->repo, &p->digest};
    guard_ctx g = {f, p};
    excl_t lk;
    int rc = excl_lock(f, &p->digest, &lk);
    if (rc)
        return rc;
    rc = f->ms->reg->guarded_remove(f->ms, &what, check, &g);
    excl_unlock(f, &lk);
    return rc;
}

static int repair_unlinked(fsck_t *f, pc_fsck_problem *p)
{
    uint64_t size;
    int rc = f->be->stat(f->be, &p->digest, &size);
    if (rc)
        return rc == PC_ENOTFOUND ? PC_EEXISTS : rc;
    return f->ms->reg->blob_link(f->ms, p->repo, &p->digest, size);
}

static int repair_size(fsck_t *f, pc_fsck_problem *p)
{
    uint64_t changed = 0;
    int rc = f->ms->reg->size_fix(f->ms, &p->digest, p->size, &changed);
    if (rc == 0 && changed == 0) {
        pc_error_set("recorded right now");
        return PC_EEXISTS;
    }
    return rc;
}

static int repair_upload(fsck_t *f, pc_fsck_problem *p)
{
    char repo[PC_NAME_MAX + 1];
    uint64_t size;
    int rc;
    switch (p->kind) {
    case PC_FSCK_ORPHAN_UPLOAD:
        if (f->ms->reg->upload_get(f->ms, p->name, repo) != PC_ENOTFOUND) {
            pc_error_set("a session owns it now");
            return PC_EEXISTS;
        }
        return f->be->upload_remove(f->be, p->name, f->o->grace_s);
    case PC_FSCK_STALE_UPLOAD:
        if ((rc = f->be->upload_remove(f->be, p->name, f->o->upload_ttl_s + 1)))
            return rc;
        rc = f->ms->reg->upload_delete(f->ms, p->name);
        return rc == PC_ENOTFOUND ? 0 : rc;
    default: /* PC_FSCK_UPLOAD_WITHOUT_FILE */
        if ((rc = f->be->upload_stat(f->be, p->name, &size)) != PC_ENOTFOUND) {
            if (rc == 0)
                pc_error_set("its staging file is there now");
            return rc ? rc : PC_EEXISTS;
        }
        return f->ms->reg->upload_delete(f->ms, p->name);
    }
}

static int repair_one(fsck_t *f, pc_fsck_problem *p)
{
    switch (p->kind) {
    case PC_FSCK_CORRUPT_BLOB:
        return repair_corrupt(f, p);
    case PC_FSCK_DANGLING_LINK:
        return repair_guarded(f, p, PC_META_REMOVE_LINK, still_no_file);
    case PC_FSCK_MANIFEST_MISSING:
        return repair_guarded(f, p, PC_META_REMOVE_MANIFEST, still_no_file);
    case PC_FSCK_INCOMPLETE_MANIFEST:
        return repair_guarded(f, p, PC_META_REMOVE_MANIFEST, still_incomplete);
    case PC_FSCK_UNLINKED_BLOB:
        return repair_unlinked(f, p);
    case PC_FSCK_SIZE_MISMATCH:
        return repair_size(f, p);
    case PC_FSCK_ORPHAN_BLOB: {
        int rc = repair_guarded(f, p, PC_META_REMOVE_NOTHING, still_orphan);
        if (rc == 0)
            f->ms->cache->access_evict(f->ms, &p->digest, NULL,
                                       NULL); /* its access record, if any */
        return rc;
    }
    case PC_FSCK_ORPHAN_UPLOAD:
    case PC_FSCK_STALE_UPLOAD:
    case PC_FSCK_UPLOAD_WITHOUT_FILE:
        return repair_upload(f, p);
    case PC_FSCK_STALE_TEMP:
        return f->be->tmp_remove(f->be, p->name, f->o->grace_s);
    case PC_FSCK_KIND_COUNT:
        break;
    }
    pc_error_set("unknown problem");
    return PC_EINVAL;
}

/* Problems in repair order: by kind (the enum's order), then as found
 * (incomplete manifests round by round, so children go before their
 * index). */
static int cmp_repair_order(const void *a, const void *b)
{
    const pc_fsck_problem *const *x = a, *const *y = b;
    if ((*x)->kind != (*y)->kind)
        return (*x)->kind < (*y)->kind ? -1 : 1;
    return *x < *y ? -1 : *x > *y;
}

int pc_fsck_repair(fsck_t *f)
{
    pc_fsck_report *r = f->r;
    pc_fsck_problem **order = calloc(r->nproblems ? r->nproblems : 1, sizeof(*order));
    if (!order) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    for (size_t i = 0; i < r->nproblems; i++)
        order[i] = &r->problems[i];
    qsort(order, r->nproblems, sizeof(*order), cmp_repair_order);
    for (size_t i = 0; i < r->nproblems; i++) {
        pc_fsck_problem *p = order[i];
        pc_error_clear();
        int rc = repair_one(f, p);
        if (rc == 0) {
            p->status = PC_FSCK_REPAIRED;
            r->repaired++;
        } else if (rc == PC_EEXISTS || rc == PC_ENOTFOUND) {
            p->status = PC_FSCK_SKIPPED;
            r->skipped++;
            pc_fsck_detail(p, "%sleft alone: %s", p->detail[0] ? "; " : "",
                           rc == PC_ENOTFOUND ? "gone meanwhile" : pc_error_last());
        } else {
            p->status = PC_FSCK_FAILED;
            r->failed++;
            pc_fsck_detail(p, "%srepair failed: %s", p->detail[0] ? "; " : "", pc_error_last());
        }
    }
    free(order);
    return 0;
}
