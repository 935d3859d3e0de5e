/*
 * meta_pg_manifests.c - the PostgreSQL meta store's manifests (with
 * their references and tag, written in one transaction), the tag
 * compare-and-swap, tags, referrers, the catalog and whether a repository
 * exists.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

#include <string.h>
#include <time.h>

/* A manifests row (PC_PG_MANIFEST_COLS) into out; shared with fsck. */
int pc_pg_col_rec(const PGresult *res, int row, pc_manifest_rec *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = pc_pg_col_text(res, row, 0, out->repo, sizeof(out->repo))) ||
        (rc = pc_pg_col_digest(res, row, 1, &out->digest)) ||
        (rc = pc_pg_col_text(res, row, 2, out->media_type, sizeof(out->media_type))))
        return rc;
    out->size = (uint64_t)pc_pg_col_int(res, row, 3);
    if ((rc = pc_pg_col_text(res, row, 4, out->artifact_type, sizeof(out->artifact_type))))
        return rc;
    if (!PQgetisnull(res, row, 5)) {
        out->has_subject = true;
        if ((rc = pc_pg_col_digest(res, row, 5, &out->subject)))
            return rc;
    }
    return 0;
}

static bool rec_ok(const pc_manifest_rec *m)
{
    return m && pc_meta_repo_ok(m->repo) && pc_meta_digest_ok(&m->digest) &&
           memchr(m->media_type, '\0', sizeof(m->media_type)) &&
           memchr(m->artifact_type, '\0', sizeof(m->artifact_type)) &&
           (!m->has_subject || pc_meta_digest_ok(&m->subject)) && m->size <= (uint64_t)INT64_MAX;
}

typedef struct {
    const pc_manifest_rec *m;
    const pc_manifest_ref *refs;
    size_t nrefs;
    const char *tag;
    const pc_digest *expect;
} put_args;

/* The tag of manifest_put: set whatever it was (expect NULL), created
 * when it must not exist (expect ""), or moved from *expect. A statement
 * that changes no row is the conflict. */
static int tag_write(pc_metastore *ms, const put_args *a, int64_t now)
{
    const char *repo = a->m->repo, *dg = a->m->digest.str;
    int64_t changed = 0;
    int rc;
    if (!a->expect)
        return pc_pg_exec(ms, PG_TAG_SET, "tag set", NULL,
                          PG_ARGS(PG_TEXT(repo), PG_TEXT(a->tag), PG_TEXT(dg), PG_INT(now)));
    if (a->expect->str[0] == '\0')
        rc = pc_pg_exec(ms, PG_TAG_CREATE, "tag create", &changed,
                        PG_ARGS(PG_TEXT(repo), PG_TEXT(a->tag), PG_TEXT(dg), PG_INT(now)));
    else
        rc = pc_pg_exec(ms, PG_TAG_SWAP, "tag swap", &changed,
                        PG_ARGS(PG_TEXT(repo), PG_TEXT(a->tag), PG_TEXT(dg), PG_INT(now),
                                PG_TEXT(a->expect->str)));
    if (rc == 0 && changed != 1) {
        pc_error_set("tag %s:%s was changed concurrently", repo, a->tag);
        rc = PC_ECONFLICT;
    }
    return rc;
}

/* The writes of manifest_put, inside its transaction; the conflict rolls
 * them all back. */
static int manifest_write(pc_metastore *ms, void *p)
{
    const put_args *a = p;
    const pc_manifest_rec *m = a->m;
    int64_t now = (int64_t)time(NULL);
    const char *repo = m->repo, *dg = m->digest.str;
    /* the repository first: a new one's row is the first thing two puts
     * into it wait for, so they never wait for each other in a cycle */
    int rc =
        pc_pg_exec(ms, PG_REPO_ADD, "repository add", NULL, PG_ARGS(PG_TEXT(repo), PG_INT(now)));
    if (rc)
        return rc;
    rc = pc_pg_exec(ms, PG_MANIFEST_UPSERT, "manifest put", NULL,
                    PG_ARGS(PG_TEXT(repo), PG_TEXT(dg), PG_TEXT(m->media_type), PG_INT(m->size),
                            PG_TEXT(m->artifact_type),
                            m->has_subject ? PG_TEXT(m->subject.str) : PG_NULL, PG_INT(now)));
    if (rc || (rc = pc_pg_exec(ms, PG_REFS_CLEAR, "manifest refs", NULL,
                               PG_ARGS(PG_TEXT(repo), PG_TEXT(dg)))))
        return rc;
    for (size_t i = 0; i < a->nrefs; i++)
        if ((rc = pc_pg_exec(ms, PG_REF_ADD, "manifest ref", NULL,
                             PG_ARGS(PG_TEXT(repo), PG_TEXT(dg), PG_TEXT(a->refs[i].digest.str),
                                     PG_INT(a->refs[i].is_manifest ? 1 : 0)))))
            return rc;
    return a->tag ? tag_write(ms, a, now) : 0;
}

static int pg_manifest_put(pc_metastore *ms, const pc_manifest_rec *m, const pc_manifest_ref *refs,
                           size_t nrefs, const char *tag, const pc_digest *expect)
{
    if (!rec_ok(m) || (nrefs && !refs) || (tag && !pc_meta_tag_ok(tag)) ||
        (expect && expect->str[0] && !pc_meta_digest_ok(expect)))
        return pc_meta_invalid("manifest record");
    for (size_t i = 0; i < nrefs; i++)
        if (!pc_meta_digest_ok(&refs[i].digest))
            return pc_meta_invalid("manifest reference");
    put_args a = {m, refs, nrefs, tag, tag ? expect : NULL};
    return pc_pg_tx(ms, PC_PG_TX_WRITER, manifest_write, &a);
}

static int pg_manifest_get(pc_metastore *ms, const char *repo, const pc_digest *d,
                           pc_manifest_rec *out)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d) || !out)
        return pc_meta_invalid("manifest");
    pc_pg_query q;
    int rc = pc_pg_query_row(&q, ms, PG_MANIFEST_GET, "manifest get", "manifest unknown",
                             PG_ARGS(PG_TEXT(repo), PG_TEXT(d->str)));
    if (rc)
        return rc;
    rc = pc_pg_col_rec(q.res, 0, out);
    pc_pg_query_close(&q);
    return rc;
}

/* The deletes of manifest_delete (and fsck's guarded_remove), inside the
 * caller's transaction: the manifest row locked first (as manifest_put's
 * upsert takes it first), then its tags, references and itself. */
int pc_pg_manifest_erase(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    static const int steps[] = {PG_TAGS_OF_MANIFEST_DEL, PG_REFS_CLEAR, PG_MANIFEST_DEL};
    pc_pg_query q;
    int rc = pc_pg_query_row(&q, ms, PG_MANIFEST_LOCK, "manifest delete", "manifest unknown",
                             PG_ARGS(PG_TEXT(repo), PG_TEXT(d->str)));
    if (rc)
        return rc;
    pc_pg_query_close(&q);
    int64_t gone = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if ((rc = pc_pg_exec(ms, steps[i], "manifest delete", &gone,
                             PG_ARGS(PG_TEXT(repo), PG_TEXT(d->str)))))
            return rc;
    if (gone == 0) {
        pc_error_set("manifest unknown");
        return PC_ENOTFOUND;
    }
    return 0;
}

typedef struct {
    const char *repo;
    const pc_digest *d;
} erase_args;

static int erase_fn(pc_metastore *ms, void *p)
{
    erase_args *a = p;
    return pc_pg_manifest_erase(ms, a->repo, a->d);
}

static int pg_manifest_delete(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("manifest");
    erase_args a = {repo, d};
    return pc_pg_tx(ms, PC_PG_TX_WRITER, erase_fn, &a);
}

/* The digest (column 0) and, when updated is not NULL, the time (column 1)
 * of a tag query. */
static int tag_row(pc_metastore *ms, int id, const char *what, const char *repo, const char *tag,
                   pc_digest *out, int64_t *updated)
{
    pc_pg_query q;
    int rc = pc_pg_query_row(&q, ms, id, what, "tag unknown", PG_ARGS(PG_TEXT(repo), PG_TEXT(tag)));
    if (rc)
        return rc;
    rc = pc_pg_col_digest(q.res, 0, 0, out);
    if (rc == 0 && updated)
        *updated = pc_pg_col_int(q.res, 0, 1);
    pc_pg_query_close(&q);
    return rc;
}

static int pg_tag_get(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !out)
        return pc_meta_invalid("tag");
    return tag_row(ms, PG_TAG_GET, "tag get", repo, tag, out, NULL);
}

static int pg_tag_stat(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out,
                       int64_t *updated)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !out || !updated)
        return pc_meta_invalid("tag");
    return tag_row(ms, PG_TAG_STAT, "tag stat", repo, tag, out, updated);
}

/* Only the time of a tag (bookkeeping): no writers' lock. */
static int pg_tag_touch(pc_metastore *ms, const char *repo, const char *tag, const pc_digest *d,
                        int64_t when)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("tag");
    int64_t changed = 0;
    int rc = pc_pg_exec(ms, PG_TAG_TOUCH, "tag touch", &changed,
                        PG_ARGS(PG_TEXT(repo), PG_TEXT(tag), PG_INT(when), PG_TEXT(d->str)));
    if (rc)
        return rc;
    if (changed == 0) {
        pc_error_set("tag unknown");
        return PC_ENOTFOUND;
    }
    return 0;
}

static int pg_tag_delete(pc_metastore *ms, const char *repo, const char *tag)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag))
        return pc_meta_invalid("tag");
    return pc_pg_write_delete(ms, PG_TAG_DEL, "tag delete", PG_ARGS(PG_TEXT(repo), PG_TEXT(tag)));
}

static int pg_repo_exists(pc_metastore *ms, const char *repo)
{
    if (!pc_meta_repo_ok(repo))
        return pc_meta_invalid("repository name");
    int64_t known = 0;
    int rc = pc_pg_get_int(ms, PG_REPO_EXISTS, "repo exists", "repository unknown", &known,
                           PG_ARGS(PG_TEXT(repo)));
    if (rc == 0 && known == 0) {
        pc_error_set("repository unknown");
        rc = PC_ENOTFOUND;
    }
    return rc;
}

/* Column 0 as text to the listing's callback. */
static int str_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    return r->cb.str(PQgetvalue(res, row, 0), r->ctx);
}

/* limit as a LIMIT parameter: NULL (none) when negative. */
static pc_pg_arg limit_arg(long limit)
{
    return limit >= 0 ? PG_INT(limit) : PG_NULL;
}

static int pg_tag_list(pc_metastore *ms, const char *repo, const char *last, long limit,
                       pc_meta_str_cb cb, void *ctx)
{
    if (!pc_meta_repo_ok(repo) || !cb)
        return pc_meta_invalid("tag list");
    pc_pg_rows r = {.cb.str = cb, .ctx = ctx};
    int rc = pg_repo_exists(ms, repo);
    if (rc)
        return rc;
    return pc_pg_each(ms, PG_TAG_LIST, "tag list", str_row, &r,
                      PG_ARGS(PG_TEXT(repo), PG_TEXT(last ? last : ""), limit_arg(limit)));
}

static int rec_row(const PGresult *res, int row, void *p)
{
    pc_pg_rows *r = p;
    pc_manifest_rec rec;
    int rc = pc_pg_col_rec(res, row, &rec);
    return rc ? rc : r->cb.rec(&rec, r->ctx);
}

static int pg_referrers(pc_metastore *ms, const char *repo, const pc_digest *subject,
                        pc_meta_rec_cb cb, void *ctx)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(subject) || !cb)
        return pc_meta_invalid("referrers query");
    pc_pg_rows r = {.cb.rec = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_REFERRERS, "referrers", rec_row, &r,
                      PG_ARGS(PG_TEXT(repo), PG_TEXT(subject->str)));
}

static int pg_catalog(pc_metastore *ms, const char *last, long limit, pc_meta_str_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("catalog query");
    pc_pg_rows r = {.cb.str = cb, .ctx = ctx};
    return pc_pg_each(ms, PG_CATALOG, "catalog", str_row, &r,
                      PG_ARGS(PG_TEXT(last ? last : ""), limit_arg(limit)));
}

static int pg_ref_holder(pc_metastore *ms, const char *repo, const pc_digest *d,
                         pc_digest *manifest)
{
    pc_pg_query q;
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d) || !manifest)
        return pc_meta_invalid("manifest reference");
    int rc = pc_pg_query_row(&q, ms, PG_REF_HOLDER, "reference holder", "no manifest references it",
                             PG_ARGS(PG_TEXT(repo), PG_TEXT(d->str)));
    if (rc)
        return rc;
    rc = pc_pg_col_digest(q.res, 0, 0, manifest);
    pc_pg_query_close(&q);
    return rc;
}

void pc_pg_manifests_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache)
{
    ops->ref_holder = pg_ref_holder;
    ops->manifest_put = pg_manifest_put;
    ops->manifest_get = pg_manifest_get;
    ops->manifest_delete = pg_manifest_delete;
    ops->tag_get = pg_tag_get;
    cache->tag_stat = pg_tag_stat;
    cache->tag_touch = pg_tag_touch;
    ops->tag_delete = pg_tag_delete;
    ops->tag_list = pg_tag_list;
    ops->referrers = pg_referrers;
    ops->catalog = pg_catalog;
    ops->repo_exists = pg_repo_exists;
}
