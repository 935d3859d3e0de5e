/*
 * meta_mem_reg.c - the in-memory meta store's registry data: blob links,
 * manifests with their references (written whole or not at all), tags
 * with their compare-and-swap, referrers, the catalog, whether a
 * repository exists, upload sessions, and the queries gc asks (every
 * referenced digest, how many things hold a digest, a manifest that
 * references a blob).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_mem_int.h"
#include "store/blob.h" /* pc_upload_id_valid */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- blob links ---- */

static int mm_blob_link(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t size)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob link");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_link k = pc_mm_link_key(repo, d);
    int rc = 0;
    pc_mm_lock(s);
    if (!pc_mm_find(&s->links, &k)) { /* linked already: nothing changes */
        pc_mm_link *l = malloc(sizeof(*l));
        if (!l || (rc = pc_mm_reserve(&s->links, 1)) || (rc = pc_mm_reserve(&s->links_d, 1))) {
            free(l);
            rc = rc ? rc : pc_mm_nomem();
        } else {
            *l = k;
            l->size = size;
            pc_mm_insert(&s->links, l);
            pc_mm_insert(&s->links_d, l);
        }
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_blob_stat(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t *size)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_link k = pc_mm_link_key(repo, d);
    int rc = 0;
    pc_mm_lock(s);
    const pc_mm_link *l = pc_mm_find(&s->links, &k);
    if (!l) {
        pc_error_set("blob unknown to repository");
        rc = PC_ENOTFOUND;
    } else if (size) {
        *size = l->size;
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_blob_stat_any(pc_metastore *ms, const pc_digest *d, uint64_t *size)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("digest");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_link k = pc_mm_link_key("", d);
    int rc = 0;
    pc_mm_lock(s);
    size_t i = pc_mm_lower(&s->links_d, &k);
    const pc_mm_link *l = i < s->links_d.n ? s->links_d.v[i] : NULL;
    if (!l || strcmp(l->d.str, d->str) != 0) {
        pc_error_set("blob unknown");
        rc = PC_ENOTFOUND;
    } else if (size) {
        *size = l->size;
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_blob_unlink(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("blob");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    int rc = pc_mm_link_erase(s, repo, d);
    pc_mm_unlock(s);
    return rc;
}

/* ---- manifests and tags ---- */

static bool rec_ok(const pc_manifest_rec *m)
{
    return m && pc_meta_repo_ok(m->repo) && pc_meta_digest_ok(&m->digest) &&
           memchr(m->media_type, '\0', sizeof(m->media_type)) &&
           memchr(m->artifact_type, '\0', sizeof(m->artifact_type)) &&
           (!m->has_subject || pc_meta_digest_ok(&m->subject));
}

static pc_mm_tag tag_key(const char *repo, const char *tag)
{
    pc_mm_tag k;
    memset(&k, 0, sizeof(k));
    pc_mm_copy(k.repo, sizeof(k.repo), repo);
    pc_mm_copy(k.tag, sizeof(k.tag), tag ? tag : "");
    return k;
}

static pc_mm_manifest manifest_key(const char *repo, const pc_digest *d)
{
    pc_mm_manifest k;
    memset(&k, 0, sizeof(k));
    pc_mm_copy(k.rec.repo, sizeof(k.rec.repo), repo);
    if (d)
        k.rec.digest = pc_mm_digest(d);
    return k;
}

/* A clean copy of m: strings copied, the rest zeroed. */
static pc_manifest_rec rec_copy(const pc_manifest_rec *m)
{
    pc_manifest_rec r;
    memset(&r, 0, sizeof(r));
    pc_mm_copy(r.repo, sizeof(r.repo), m->repo);
    r.digest = pc_mm_digest(&m->digest);
    pc_mm_copy(r.media_type, sizeof(r.media_type), m->media_type);
    r.size = m->size;
    pc_mm_copy(r.artifact_type, sizeof(r.artifact_type), m->artifact_type);
    r.has_subject = m->has_subject;
    if (m->has_subject)
        r.subject = pc_mm_digest(&m->subject);
    return r;
}

/* What manifest_put allocates before it changes anything. */
typedef struct {
    pc_mm_repo *repo;
    pc_mm_manifest *man;
    pc_mm_ref **refs;
    pc_mm_tag *tag;
} put_rows;

static void put_rows_free(put_rows *p, size_t nrefs)
{
    free(p->repo);
    free(p->man);
    for (size_t i = 0; p->refs && i < nrefs; i++)
        free(p->refs[i]);
    free(p->refs);
    free(p->tag);
}

/* Under the lock: the tag's compare-and-swap, the allocations, then the
 * changes (which cannot fail). */
static int manifest_write(pc_mm_store *s, const pc_manifest_rec *m, const pc_manifest_ref *refs,
                          size_t nrefs, const char *tag, const pc_digest *expect)
{
    const char *repo = m->repo;
    pc_mm_tag tk = tag_key(repo, tag);
    pc_mm_tag *cur = tag ? pc_mm_find(&s->tags, &tk) : NULL;
    if (tag && expect) {
        bool same = cur ? strcmp(cur->d.str, expect->str) == 0 : expect->str[0] == '\0';
        if (!same) {
            pc_error_set("tag %s:%s was changed concurrently", repo, tag);
            return PC_ECONFLICT;
        }
    }
    pc_mm_repo rk;
    memset(&rk, 0, sizeof(rk));
    pc_mm_copy(rk.name, sizeof(rk.name), repo);
    pc_mm_manifest mk = manifest_key(repo, &m->digest);
    pc_mm_manifest *old = pc_mm_find(&s->manifests, &mk);
    put_rows p = {NULL, NULL, NULL, NULL};
    int rc = 0;
    if (!pc_mm_find(&s->repos, &rk) && !(p.repo = malloc(sizeof(*p.repo))))
        rc = pc_mm_nomem();
    if (!rc && !old && !(p.man = malloc(sizeof(*p.man))))
        rc = pc_mm_nomem();
    if (!rc && nrefs && !(p.refs = calloc(nrefs, sizeof(*p.refs))))
        rc = pc_mm_nomem();
    for (size_t i = 0; !rc && i < nrefs; i++)
        if (!(p.refs[i] = malloc(sizeof(**p.refs))))
            rc = pc_mm_nomem();
    if (!rc && tag && !cur && !(p.tag = malloc(sizeof(*p.tag))))
        rc = pc_mm_nomem();
    if (rc || (rc = pc_mm_reserve(&s->repos, 1)) || (rc = pc_mm_reserve(&s->manifests, 1)) ||
        (rc = pc_mm_reserve(&s->manifests_d, 1)) || (rc = pc_mm_reserve(&s->refs, nrefs)) ||
        (rc = pc_mm_reserve(&s->refs_r, nrefs)) || (rc = pc_mm_reserve(&s->tags, 1))) {
        put_rows_free(&p, nrefs);
        return rc;
    }
    int64_t now = (int64_t)time(NULL);
    if (p.repo) { /* the repository stays when its manifests go */
        *p.repo = rk;
        pc_mm_insert(&s->repos, p.repo);
    }
    if (old) { /* put again: the record is replaced, its references too */
        old->rec = rec_copy(m);
        pc_mm_ref rfk = pc_mm_ref_key(repo, &m->digest, NULL);
        size_t i = pc_mm_lower(&s->refs, &rfk);
        while (i < s->refs.n) {
            pc_mm_ref *r = s->refs.v[i];
            if (strcmp(r->repo, repo) != 0 || strcmp(r->manifest.str, m->digest.str) != 0)
                break;
            pc_mm_remove_at(&s->refs, i);
            pc_mm_remove(&s->refs_r, r);
            free(r);
        }
    } else {
        p.man->rec = rec_copy(m);
        pc_mm_insert(&s->manifests, p.man);
        pc_mm_insert(&s->manifests_d, p.man);
    }
    for (size_t i = 0; i < nrefs; i++) {
        pc_mm_ref *r = p.refs[i];
        *r = pc_mm_ref_key(repo, &m->digest, &refs[i].digest);
        r->is_manifest = refs[i].is_manifest;
        if (pc_mm_find(&s->refs, r)) { /* listed twice: the first one counts */
            free(r);
            continue;
        }
        pc_mm_insert(&s->refs, r);
        pc_mm_insert(&s->refs_r, r);
    }
    free(p.refs);
    if (tag) {
        pc_mm_tag *t = cur ? cur : p.tag;
        if (!cur)
            *t = tk;
        t->d = pc_mm_digest(&m->digest);
        t->updated = now;
        if (!cur)
            pc_mm_insert(&s->tags, t);
    }
    return 0;
}

static int mm_manifest_put(pc_metastore *ms, const pc_manifest_rec *m, const pc_manifest_ref *refs,
                           size_t nrefs, const char *tag, const pc_digest *expect)
{
    if (!rec_ok(m) || (nrefs && !refs) || (tag && !pc_meta_tag_ok(tag)) ||
        (expect && expect->str[0] && !pc_meta_digest_ok(expect)))
        return pc_meta_invalid("manifest record");
    for (size_t i = 0; i < nrefs; i++)
        if (!pc_meta_digest_ok(&refs[i].digest))
            return pc_meta_invalid("manifest reference");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    int rc = manifest_write(s, m, refs, nrefs, tag, expect);
    pc_mm_unlock(s);
    return rc;
}

static int mm_manifest_get(pc_metastore *ms, const char *repo, const pc_digest *d,
                           pc_manifest_rec *out)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d) || !out)
        return pc_meta_invalid("manifest");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_manifest k = manifest_key(repo, d);
    int rc = 0;
    pc_mm_lock(s);
    const pc_mm_manifest *m = pc_mm_find(&s->manifests, &k);
    if (m) {
        *out = m->rec;
    } else {
        pc_error_set("manifest unknown");
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_manifest_delete(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d))
        return pc_meta_invalid("manifest");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    int rc = pc_mm_manifest_erase(s, repo, d);
    pc_mm_unlock(s);
    return rc;
}

/* The tag's digest and, when updated is not NULL, its time. */
static int tag_row(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out,
                   int64_t *updated)
{
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_tag k = tag_key(repo, tag);
    int rc = 0;
    pc_mm_lock(s);
    const pc_mm_tag *t = pc_mm_find(&s->tags, &k);
    if (t) {
        *out = t->d;
        if (updated)
            *updated = t->updated;
    } else {
        pc_error_set("tag unknown");
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_tag_get(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !out)
        return pc_meta_invalid("tag");
    return tag_row(ms, repo, tag, out, NULL);
}

static int mm_tag_stat(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out,
                       int64_t *updated)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !out || !updated)
        return pc_meta_invalid("tag");
    return tag_row(ms, repo, tag, out, updated);
}

static int mm_tag_touch(pc_metastore *ms, const char *repo, const char *tag, const pc_digest *d,
                        int64_t when)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag) || !d)
        return pc_meta_invalid("tag");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_tag k = tag_key(repo, tag);
    int rc = 0;
    pc_mm_lock(s);
    pc_mm_tag *t = pc_mm_find(&s->tags, &k);
    if (t && strncmp(t->d.str, d->str, sizeof(d->str)) == 0) {
        t->updated = when;
    } else {
        pc_error_set("tag unknown or moved");
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_tag_delete(pc_metastore *ms, const char *repo, const char *tag)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_tag_ok(tag))
        return pc_meta_invalid("tag");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_tag k = tag_key(repo, tag);
    int rc = 0;
    pc_mm_lock(s);
    pc_mm_tag *t = pc_mm_find(&s->tags, &k);
    if (t) {
        pc_mm_remove(&s->tags, t);
        free(t);
    } else {
        pc_error_set("tag delete: not found");
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    return rc;
}

/* Under the lock: whether repo exists. */
static bool repo_known(pc_mm_store *s, const char *repo)
{
    pc_mm_repo k;
    memset(&k, 0, sizeof(k));
    pc_mm_copy(k.name, sizeof(k.name), repo);
    return pc_mm_find(&s->repos, &k) != NULL;
}

static int mm_repo_exists(pc_metastore *ms, const char *repo)
{
    if (!pc_meta_repo_ok(repo))
        return pc_meta_invalid("repository name");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    bool known = repo_known(s, repo);
    pc_mm_unlock(s);
    if (known)
        return 0;
    pc_error_set("repository unknown");
    return PC_ENOTFOUND;
}

/* ---- listings: copied under the lock, handed out after ---- */

static int str_each(pc_mm_list *l, size_t off, pc_meta_str_cb cb, void *ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        rc = cb((const char *)pc_mm_list_at(l, i) + off, ctx);
    pc_mm_list_free(l);
    return rc;
}

static int mm_tag_list(pc_metastore *ms, const char *repo, const char *last, long limit,
                       pc_meta_str_cb cb, void *ctx)
{
    if (!pc_meta_repo_ok(repo) || !cb)
        return pc_meta_invalid("tag list");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_mm_tag)};
    int rc = 0;
    pc_mm_lock(s);
    if (!repo_known(s, repo)) {
        pc_error_set("repository unknown");
        rc = PC_ENOTFOUND;
    }
    pc_mm_tag k = tag_key(repo, NULL);
    for (size_t i = pc_mm_lower(&s->tags, &k); rc == 0 && i < s->tags.n; i++) {
        const pc_mm_tag *t = s->tags.v[i];
        if (strcmp(t->repo, repo) != 0 || (limit >= 0 && l.n >= (size_t)limit))
            break;
        if (!last || strcmp(t->tag, last) > 0)
            rc = pc_mm_list_push(&l, t);
    }
    pc_mm_unlock(s);
    if (rc) {
        pc_mm_list_free(&l);
        return rc;
    }
    return str_each(&l, offsetof(pc_mm_tag, tag), cb, ctx);
}

static int rec_each(pc_mm_list *l, pc_meta_rec_cb cb, void *ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        rc = cb(pc_mm_list_at(l, i), ctx);
    pc_mm_list_free(l);
    return rc;
}

static int mm_referrers(pc_metastore *ms, const char *repo, const pc_digest *subject,
                        pc_meta_rec_cb cb, void *ctx)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(subject) || !cb)
        return pc_meta_invalid("referrers query");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_manifest_rec)};
    pc_mm_manifest k = manifest_key(repo, NULL);
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = pc_mm_lower(&s->manifests, &k); rc == 0 && i < s->manifests.n; i++) {
        const pc_mm_manifest *m = s->manifests.v[i];
        if (strcmp(m->rec.repo, repo) != 0)
            break;
        if (m->rec.has_subject && strcmp(m->rec.subject.str, subject->str) == 0)
            rc = pc_mm_list_push(&l, &m->rec);
    }
    pc_mm_unlock(s);
    if (rc) {
        pc_mm_list_free(&l);
        return rc;
    }
    return rec_each(&l, cb, ctx);
}

static int mm_catalog(pc_metastore *ms, const char *last, long limit, pc_meta_str_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("catalog query");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_mm_repo)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->repos.n; i++) {
        const pc_mm_repo *r = s->repos.v[i];
        if (limit >= 0 && l.n >= (size_t)limit)
            break;
        if (!last || strcmp(r->name, last) > 0)
            rc = pc_mm_list_push(&l, r);
    }
    pc_mm_unlock(s);
    if (rc) {
        pc_mm_list_free(&l);
        return rc;
    }
    return str_each(&l, offsetof(pc_mm_repo, name), cb, ctx);
}

/* ---- upload sessions ---- */

static int mm_upload_put(pc_metastore *ms, const char *id, const char *repo)
{
    if (!pc_upload_id_valid(id) || !pc_meta_repo_ok(repo))
        return pc_meta_invalid("upload");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return pc_mm_nomem();
    pc_mm_copy(u->id, sizeof(u->id), id);
    pc_mm_copy(u->repo, sizeof(u->repo), repo);
    u->created = (int64_t)time(NULL);
    int rc = 0;
    pc_mm_lock(s);
    if (pc_mm_find(&s->uploads, u)) {
        pc_error_set("meta store: upload put: session %s exists", id);
        rc = PC_EEXISTS;
    } else if ((rc = pc_mm_reserve(&s->uploads, 1)) == 0) {
        pc_mm_insert(&s->uploads, u);
        u = NULL;
    }
    pc_mm_unlock(s);
    free(u);
    return rc;
}

static pc_mm_upload upload_key(const char *id)
{
    pc_mm_upload k;
    memset(&k, 0, sizeof(k));
    pc_mm_copy(k.id, sizeof(k.id), id);
    return k;
}

static int mm_upload_get(pc_metastore *ms, const char *id, char *repo)
{
    if (!pc_upload_id_valid(id) || !repo)
        return pc_meta_invalid("upload");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_upload k = upload_key(id);
    int rc = 0;
    pc_mm_lock(s);
    const pc_mm_upload *u = pc_mm_find(&s->uploads, &k);
    if (u) {
        pc_mm_copy(repo, PC_NAME_MAX + 1, u->repo);
    } else {
        pc_error_set("upload unknown");
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_upload_delete(pc_metastore *ms, const char *id)
{
    if (!pc_upload_id_valid(id))
        return pc_meta_invalid("upload id");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_upload k = upload_key(id);
    int rc = 0;
    pc_mm_lock(s);
    pc_mm_upload *u = pc_mm_find(&s->uploads, &k);
    if (u) {
        pc_mm_remove(&s->uploads, u);
        free(u);
    } else {
        pc_error_set("upload delete: not found");
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    return rc;
}

/* ---- what gc asks ---- */

static int mm_referenced_foreach(pc_metastore *ms, pc_meta_digest_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_digest)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->manifests.n; i++)
        rc = pc_mm_list_push(&l, &((const pc_mm_manifest *)s->manifests.v[i])->rec.digest);
    for (size_t i = 0; rc == 0 && i < s->refs.n; i++)
        rc = pc_mm_list_push(&l, &((const pc_mm_ref *)s->refs.v[i])->ref);
    for (size_t i = 0; rc == 0 && i < s->links.n; i++)
        rc = pc_mm_list_push(&l, &((const pc_mm_link *)s->links.v[i])->d);
    pc_mm_unlock(s);
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = cb(pc_mm_list_at(&l, i), ctx);
    pc_mm_list_free(&l);
    return rc;
}

static int mm_digest_holders(pc_metastore *ms, const pc_digest *d, uint64_t *count)
{
    if (!pc_meta_digest_ok(d) || !count)
        return pc_meta_invalid("digest");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_link lk = pc_mm_link_key("", d);
    pc_mm_manifest mk = manifest_key("", NULL);
    mk.rec.digest = pc_mm_digest(d);
    pc_mm_ref rk = pc_mm_ref_key("", NULL, d);
    uint64_t n = 0;
    pc_mm_lock(s);
    for (size_t i = pc_mm_lower(&s->links_d, &lk);
         i < s->links_d.n && strcmp(((pc_mm_link *)s->links_d.v[i])->d.str, d->str) == 0; i++)
        n++;
    for (size_t i = pc_mm_lower(&s->manifests_d, &mk);
         i < s->manifests_d.n &&
         strcmp(((pc_mm_manifest *)s->manifests_d.v[i])->rec.digest.str, d->str) == 0;
         i++)
        n++;
    for (size_t i = pc_mm_lower(&s->refs_r, &rk);
         i < s->refs_r.n && strcmp(((pc_mm_ref *)s->refs_r.v[i])->ref.str, d->str) == 0; i++)
        n++;
    pc_mm_unlock(s);
    *count = n;
    return 0;
}

static int mm_ref_holder(pc_metastore *ms, const char *repo, const pc_digest *d,
                         pc_digest *manifest)
{
    if (!pc_meta_repo_ok(repo) || !pc_meta_digest_ok(d) || !manifest)
        return pc_meta_invalid("manifest reference");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_ref k = pc_mm_ref_key(repo, NULL, d);
    int rc = PC_ENOTFOUND;
    pc_mm_lock(s);
    for (size_t i = pc_mm_lower(&s->refs_r, &k); i < s->refs_r.n; i++) {
        const pc_mm_ref *r = s->refs_r.v[i];
        if (strcmp(r->ref.str, d->str) != 0 || strcmp(r->repo, repo) != 0)
            break;
        if (!r->is_manifest) {
            *manifest = r->manifest;
            rc = 0;
            break;
        }
    }
    pc_mm_unlock(s);
    if (rc)
        pc_error_set("no manifest references it");
    return rc;
}

void pc_mm_reg_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache)
{
    ops->blob_link = mm_blob_link;
    ops->blob_stat = mm_blob_stat;
    ops->blob_stat_any = mm_blob_stat_any;
    ops->blob_unlink = mm_blob_unlink;
    ops->manifest_put = mm_manifest_put;
    ops->manifest_get = mm_manifest_get;
    ops->manifest_delete = mm_manifest_delete;
    ops->tag_get = mm_tag_get;
    ops->tag_delete = mm_tag_delete;
    ops->tag_list = mm_tag_list;
    ops->referrers = mm_referrers;
    ops->catalog = mm_catalog;
    ops->repo_exists = mm_repo_exists;
    ops->upload_put = mm_upload_put;
    ops->upload_get = mm_upload_get;
    ops->upload_delete = mm_upload_delete;
    ops->referenced_foreach = mm_referenced_foreach;
    ops->digest_holders = mm_digest_holders;
    ops->ref_holder = mm_ref_holder;
    cache->tag_stat = mm_tag_stat;
    cache->tag_touch = mm_tag_touch;
}
