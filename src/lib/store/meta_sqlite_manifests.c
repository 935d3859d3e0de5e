/*
 * meta_sqlite_manifests.c - the SQLite meta store's manifests (with
 * their references, written in one transaction), tags, referrers, the
 * catalog and whether a repository exists.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"

#include <string.h>
#include <time.h>

/* A manifests row (PC_SQ_MANIFEST_COLS) into out; shared with fsck. */
int pc_sq_col_rec(sqlite3_stmt *st, pc_manifest_rec *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = pc_sq_col_text(st, 0, out->repo, sizeof(out->repo))) ||
        (rc = pc_sq_col_digest(st, 1, &out->digest)) ||
        (rc = pc_sq_col_text(st, 2, out->media_type, sizeof(out->media_type))))
        return rc;
    out->size = (uint64_t)sqlite3_column_int64(st, 3);
    if ((rc = pc_sq_col_text(st, 4, out->artifact_type, sizeof(out->artifact_type))))
        return rc;
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
        out->has_subject = true;
        if ((rc = pc_sq_col_digest(st, 5, &out->subject)))
            return rc;
    }
    return 0;
}

static bool rec_ok(const pc_manifest_rec *m)
{
    return m && pc_meta_repo_ok(m->repo) && pc_meta_digest_ok(&m->digest) &&
           memchr(m->media_type, '\0', sizeof(m->media_type)) &&
           memchr(m->artifact_type, '\0', sizeof(m->artifact_type)) &&
           (!m->has_subject || pc_meta_digest_ok(&m->subject));
}

/* A tag's compare-and-swap, inside manifest_put's transaction (BEGIN
 * IMMEDIATE: no other writer between this read and the write): 0 when tag
 * points at *expect (or, expect->str "", does not exist), else
 * PC_ECONFLICT. */
static int tag_compare(pc_metastore *ms, const char *repo, const char *tag, const pc_digest *expect)
{
    pc_sq_query q;
    int rc = pc_sq_query_row(&q, ms, ST_TAG_GET, "tag get", "tag unknown",
                             SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(tag)));
    if (rc && rc != PC_ENOTFOUND)
        return rc;
    bool same;
    if (rc == PC_ENOTFOUND) {
        same = expect->str[0] == '\0';
    } else {
        const char *cur = (const char *)sqlite3_column_text(q.st, 0);
        same = cur && strcmp(cur, expect->str) == 0;
        pc_sq_query_close(&q);
    }
    if (same)
        return 0;
    pc_error_set("tag %s:%s was changed concurrently", repo, tag);
    return PC_ECONFLICT;
}

/* The writes of manifest_put, inside its transaction. */
static int manifest_write(pc_metastore *ms, const pc_manifest_rec *m, const pc_manifest_ref *refs,
                          size_t nrefs, const char *tag, const pc_digest *expect)
{
    int64_t now = (int64_t)time(NULL);
    const char *repo = m->repo, *dg = m->digest.str;
    int rc;
    if (tag && expect && (rc = tag_compare(ms, repo, tag, expect)))
        return rc;
    rc = pc_sq_exec(ms, ST_REPO_ADD, "repository add", NULL, SQ_ARGS(SQ_TEXT(repo), SQ_INT(now)));
    if (rc)
        return rc;
    rc = pc_sq_exec(ms, ST_MANIFEST_UPSERT, "manifest put", NULL,
                    SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(dg), SQ_TEXT(m->media_type), SQ_INT(m->size),
                            SQ_TEXT(m->artifact_type),
                            m->has_subject ? SQ_TEXT(m->subject.str) : SQ_NULL, SQ_INT(now)));
    if (rc || (rc = pc_sq_exec(ms, ST_REFS_CLEAR, "manifest refs", NULL,
                               SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(dg)))))
        return rc;
    for (size_t i = 0; i < nrefs; i++)
        if ((rc = pc_sq_exec(ms, ST_REF_ADD, "manifest ref", NULL,
                             SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(dg), SQ_TEXT(refs[i].digest.str),
                                     SQ_INT(refs[i].is_manifest ? 1 : 0)))))
            return rc;
    if (tag)
        rc = pc_sq_exec(ms, ST_TAG_SET, "tag set", NULL,
                        SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(tag), SQ_TEXT(dg), SQ_INT(now)));
    return rc;
}

static int sq_manifest_put(pc_metastore *ms, const pc_manifest_rec *m, const pc_manifest_ref *refs,
                           size_t nrefs, const char *tag, const pc_digest *expect)
{
    if (!rec_ok(m) || (nrefs && !refs) || (tag && !pc_meta_tag_ok(tag)) ||
        (expect && expect->str[0] && !pc_meta_digest_ok(expect)))
        return pc_meta_invalid("manifest record");
    for (size_t i = 0; i < nrefs; i++)
        if (!pc_meta_digest_ok(&refs[i].digest))
            return pc_meta_invalid("manifest reference");
    int rc = pc_sq_tx_begin(ms);
    if (rc)
        return rc;
    return pc_sq_tx_end(ms, manifest_write(ms, m, refs, nrefs, tag, expect));
}

static int sq_manifest_get(pc_metastore *ms, const char *repo, const pc_digest *d,
                           pc_manifest_rec *out)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d) || !out)
        return pc_meta_invalid("manifest");
    pc_sq_query q;
    int rc = pc_sq_query_row(&q, ms, ST_MANIFEST_GET, "manifest get", "manifest unknown",
                             SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(d->str)));
    if (rc)
        return rc;
    rc = pc_sq_col_rec(q.st, out);
    pc_sq_query_close(&q);
    return rc;
}

/* The deletes of manifest_delete (and fsck's guarded_remove), inside the
 * caller's transaction. The foreign keys cascade too; explicit deletes keep
 * it true when a connection runs without them. */
int pc_sq_manifest_erase(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    static const int steps[] = {ST_TAGS_OF_MANIFEST_DEL, ST_REFS_CLEAR, ST_MANIFEST_DEL};
    int64_t gone = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int rc = pc_sq_exec(ms, steps[i], "manifest delete", &gone,
                            SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(d->str)));
        if (rc)
            return rc;
    }
    if (gone == 0) { /* rows the last step, the manifests DELETE, removed */
        pc_error_set("manifest unknown");
        return PC_ENOTFOUND;
    }
    return 0;
}

static int sq_manifest_delete(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("manifest");
    int rc = pc_sq_tx_begin(ms);
    if (rc)
        return rc;
    return pc_sq_tx_end(ms, pc_sq_manifest_erase(ms, repo, d));
}

/* The digest (column 0) and, when updated is not NULL, the time (column 1)
 * of a tag query. */
static int tag_row(pc_metastore *ms, int id, const char *what, const char *repo, const char *tag,
                   pc_digest *out, int64_t *updated)
{
    pc_sq_query q;
    int rc = pc_sq_query_row(&q, ms, id, what, "tag unknown", SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(tag)));
    if (rc)
        return rc;
    rc = pc_sq_col_digest(q.st, 0, out);
    if (rc == 0 && updated)
        *updated = (int64_t)sqlite3_column_int64(q.st, 1);
    pc_sq_query_close(&q);
    return rc;
}

static int sq_tag_get(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !out)
        return pc_meta_invalid("tag");
    return tag_row(ms, ST_TAG_GET, "tag get", repo, tag, out, NULL);
}

static int sq_tag_stat(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out,
                       int64_t *updated)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !out || !updated)
        return pc_meta_invalid("tag");
    return tag_row(ms, ST_TAG_STAT, "tag stat", repo, tag, out, updated);
}

static int sq_tag_touch(pc_metastore *ms, const char *repo, const char *tag, const pc_digest *d,
                        int64_t when)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !d)
        return pc_meta_invalid("tag");
    int64_t changed = 0;
    int rc = pc_sq_exec(ms, ST_TAG_TOUCH, "tag touch", &changed,
                        SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(tag), SQ_INT(when), SQ_TEXT(d->str)));
    if (rc)
        return rc;
    return changed > 0 ? 0 : PC_ENOTFOUND;
}

static int sq_tag_delete(pc_metastore *ms, const char *repo, const char *tag)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag))
        return pc_meta_invalid("tag");
    return pc_sq_delete(ms, ST_TAG_DEL, "tag delete", SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(tag)));
}

static int sq_repo_exists(pc_metastore *ms, const char *repo)
{
    if (!pc_meta_repo_ok(repo))
        return pc_meta_invalid("repository name");
    int64_t known = 0;
    int rc = pc_sq_get_int(ms, ST_REPO_EXISTS, "repo exists", "repository unknown", &known,
                           SQ_ARGS(SQ_TEXT(repo)));
    if (rc == 0 && known == 0) {
        pc_error_set("repository unknown");
        rc = PC_ENOTFOUND;
    }
    return rc;
}

/* Column 0 as text to the listing's callback. */
static int str_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    const char *s = (const char *)sqlite3_column_text(st, 0);
    return r->cb.str(s ? s : "", r->ctx);
}

static int sq_tag_list(pc_metastore *ms, const char *repo, const char *last, long limit,
                       pc_meta_str_cb cb, void *ctx)
{
    if (!pc_meta_repo_ok(repo) || !cb)
        return pc_meta_invalid("tag list");
    pc_sq_rows r = {.cb.str = cb, .ctx = ctx};
    int rc = sq_repo_exists(ms, repo);
    if (rc)
        return rc;
    return pc_sq_each(
        ms, ST_TAG_LIST, "tag list", str_row, &r,
        SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(last ? last : ""), SQ_INT(limit >= 0 ? limit : -1)));
}

static int rec_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    pc_manifest_rec rec;
    int rc = pc_sq_col_rec(st, &rec);
    return rc ? rc : r->cb.rec(&rec, r->ctx);
}

static int sq_referrers(pc_metastore *ms, const char *repo, const pc_digest *subject,
                        pc_meta_rec_cb cb, void *ctx)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(subject) || !cb)
        return pc_meta_invalid("referrers query");
    pc_sq_rows r = {.cb.rec = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_REFERRERS, "referrers", rec_row, &r,
                      SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(subject->str)));
}

static int sq_catalog(pc_metastore *ms, const char *last, long limit, pc_meta_str_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("catalog query");
    pc_sq_rows r = {.cb.str = cb, .ctx = ctx};
    return pc_sq_each(ms, ST_CATALOG, "catalog", str_row, &r,
                      SQ_ARGS(SQ_TEXT(last ? last : ""), SQ_INT(limit >= 0 ? limit : -1)));
}

static int sq_ref_holder(pc_metastore *ms, const char *repo, const pc_digest *d,
                         pc_digest *manifest)
{
    pc_sq_query q;
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d) || !manifest)
        return pc_meta_invalid("manifest reference");
    int rc = pc_sq_query_row(&q, ms, ST_REF_HOLDER, "reference holder", "no manifest references it",
                             SQ_ARGS(SQ_TEXT(repo), SQ_TEXT(d->str)));
    if (rc)
        return rc;
    rc = pc_sq_col_digest(q.st, 0, manifest);
    pc_sq_query_close(&q);
    return rc;
}

void pc_sq_manifests_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache)
{
    ops->ref_holder = sq_ref_holder;
    ops->manifest_put = sq_manifest_put;
    ops->manifest_get = sq_manifest_get;
    ops->manifest_delete = sq_manifest_delete;
    ops->tag_get = sq_tag_get;
    cache->tag_stat = sq_tag_stat;
    cache->tag_touch = sq_tag_touch;
    ops->tag_delete = sq_tag_delete;
    ops->tag_list = sq_tag_list;
    ops->referrers = sq_referrers;
    ops->catalog = sq_catalog;
    ops->repo_exists = sq_repo_exists;
}
