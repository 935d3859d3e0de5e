/*
 * migrate_meta.c - the migration's records (migrate.h): read the source's
 * blob links, manifests with their references, repositories and tags, then
 * write to the destination what it lacks or has otherwise: links,
 * manifest records (each with its references, in one manifest_put), tags
 * (manifest_put with the tag, compared and swapped against what the
 * destination had) with their updated times (tag_touch), the cache's
 * access records and the limiter's counts. Each write is skipped when the
 * destination already has it, so runs after the first write nothing.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "migrate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int nomem(void)
{
    pc_error_set("out of memory");
    return PC_ENOMEM;
}

/* ---- reading the source ---- */

static int on_link(const char *repo, const pc_digest *d, uint64_t size, void *ctx)
{
    pc_mig_link *l = pc_mig_vec_push(ctx);
    if (!l)
        return nomem();
    snprintf(l->repo, sizeof(l->repo), "%s", repo);
    l->digest = *d;
    l->size = size;
    return 0;
}

static int on_manifest(const pc_manifest_rec *r, void *ctx)
{
    pc_manifest_rec *n = pc_mig_vec_push(ctx);
    if (!n)
        return nomem();
    *n = *r;
    return 0;
}

static int on_ref(const char *repo, const pc_digest *manifest, const pc_manifest_ref *ref,
                  void *ctx)
{
    pc_mig_ref *n = pc_mig_vec_push(ctx);
    if (!n)
        return nomem();
    snprintf(n->repo, sizeof(n->repo), "%s", repo);
    n->manifest = *manifest;
    n->ref = *ref;
    return 0;
}

/* A list of strings (repositories, tags of one). */
typedef struct {
    char **v;
    size_t n, cap;
} strs_t;

static int on_str(const char *s, void *ctx)
{
    strs_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return nomem();
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return nomem();
    l->n++;
    return 0;
}

static void strs_free(strs_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int cmp_manifest(const void *a, const void *b)
{
    const pc_manifest_rec *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    return c ? c : strcmp(x->digest.str, y->digest.str);
}

static int cmp_ref(const void *a, const void *b)
{
    const pc_mig_ref *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    if (!c)
        c = strcmp(x->manifest.str, y->manifest.str);
    return c ? c : strcmp(x->ref.digest.str, y->ref.digest.str);
}

/* The source's record of manifest d in repo, or NULL. */
static const pc_manifest_rec *find_manifest(const pc_mig *m, const char *repo, const pc_digest *d)
{
    pc_manifest_rec key;
    snprintf(key.repo, sizeof(key.repo), "%s", repo);
    key.digest = *d;
    return m->manifests.n ? bsearch(&key, m->manifests.v, m->manifests.n, sizeof(key), cmp_manifest)
                          : NULL;
}

/* Whether the source has a manifest in repo. */
static bool repo_has_manifest(const pc_mig *m, const char *repo)
{
    size_t lo = 0, hi = m->manifests.n;
    while (lo < hi) { /* the first record whose repo is >= repo */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(PC_MIG_AT(&m->manifests, pc_manifest_rec, mid)->repo, repo) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->manifests.n &&
           strcmp(PC_MIG_AT(&m->manifests, pc_manifest_rec, lo)->repo, repo) == 0;
}

/* The references of manifest (repo, d): *first and *n in m->refs. */
static void refs_of(const pc_mig *m, const char *repo, const pc_digest *d, size_t *first, size_t *n)
{
    size_t lo = 0, hi = m->refs.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const pc_mig_ref *r = PC_MIG_AT(&m->refs, pc_mig_ref, mid);
        int c = strcmp(r->repo, repo);
        if (!c)
            c = strcmp(r->manifest.str, d->str);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t e = lo;
    while (e < m->refs.n && strcmp(PC_MIG_AT(&m->refs, pc_mig_ref, e)->repo, repo) == 0 &&
           strcmp(PC_MIG_AT(&m->refs, pc_mig_ref, e)->manifest.str, d->str) == 0)
        e++;
    *first = lo;
    *n = e - lo;
}

static int read_tags(pc_mig *m, pc_metastore *ms)
{
    strs_t repos = {0}, tags = {0};
    int rc = ms->reg->catalog(ms, NULL, -1, on_str, &repos);
    if (rc) {
        pc_error_set("listing the source's repositories: %s", pc_error_last());
        goto done;
    }
    m->tags.size = sizeof(pc_mig_tag);
    for (size_t i = 0; i < repos.n; i++) {
        m->st->repos++;
        if (!repo_has_manifest(m, repos.v[i]))
            m->st->repos_empty++;
        strs_free(&tags);
        rc = ms->reg->tag_list(ms, repos.v[i], NULL, -1, on_str, &tags);
        if (rc == PC_ENOTFOUND)
            continue;
        if (rc) {
            pc_error_set("listing the tags of %s at the source: %s", repos.v[i], pc_error_last());
            goto done;
        }
        for (size_t j = 0; j < tags.n; j++) {
            pc_mig_tag *t = pc_mig_vec_push(&m->tags);
            if (!t) {
                rc = nomem();
                goto done;
            }
            snprintf(t->repo, sizeof(t->repo), "%s", repos.v[i]);
            snprintf(t->tag, sizeof(t->tag), "%s", tags.v[j]);
            rc = ms->cache->tag_stat(ms, t->repo, t->tag, &t->digest, &t->updated);
            if (rc == PC_ENOTFOUND) { /* gone meanwhile (--force on a serving source) */
                m->tags.n--;
                continue;
            }
            if (rc) {
                pc_error_set("reading tag %s:%s at the source: %s", t->repo, t->tag,
                             pc_error_last());
                goto done;
            }
            m->st->tags++;
        }
    }
    rc = 0;
done:
    strs_free(&repos);
    strs_free(&tags);
    return rc;
}

int pc_mig_meta_read(pc_mig *m)
{
    pc_metastore *ms = m->o->src_meta;
    m->links.size = sizeof(pc_mig_link);
    m->manifests.size = sizeof(pc_manifest_rec);
    m->refs.size = sizeof(pc_mig_ref);
    int rc = ms->reg->blob_link_foreach(ms, on_link, &m->links);
    if (rc) {
        pc_error_set("listing the source's blob links: %s", pc_error_last());
        return rc;
    }
    if ((rc = ms->reg->manifest_foreach(ms, on_manifest, &m->manifests))) {
        pc_error_set("listing the source's manifests: %s", pc_error_last());
        return rc;
    }
    if ((rc = ms->reg->manifest_ref_foreach(ms, on_ref, &m->refs))) {
        pc_error_set("listing the source's manifest references: %s", pc_error_last());
        return rc;
    }
    if (m->manifests.n)
        qsort(m->manifests.v, m->manifests.n, m->manifests.size, cmp_manifest);
    if (m->refs.n)
        qsort(m->refs.v, m->refs.n, m->refs.size, cmp_ref);
    m->st->links = m->links.n;
    m->st->manifests = m->manifests.n;
    return read_tags(m, ms);
}

/* ---- writing the destination ---- */

static bool same_record(const pc_manifest_rec *a, const pc_manifest_rec *b)
{
    return pc_digest_equal(&a->digest, &b->digest) && strcmp(a->media_type, b->media_type) == 0 &&
           a->size == b->size && strcmp(a->artifact_type, b->artifact_type) == 0 &&
           a->has_subject == b->has_subject &&
           (!a->has_subject || pc_digest_equal(&a->subject, &b->subject));
}

/* The references of (repo, d) as manifest_put takes them; *out is the
 * caller's (free). */
static int refs_array(const pc_mig *m, const char *repo, const pc_digest *d, pc_manifest_ref **out,
                      size_t *n)
{
    size_t first;
    refs_of(m, repo, d, &first, n);
    *out = NULL;
    if (!*n)
        return 0;
    if (!(*out = malloc(*n * sizeof(**out))))
        return nomem();
    for (size_t i = 0; i < *n; i++)
        (*out)[i] = PC_MIG_AT(&m->refs, pc_mig_ref, first + i)->ref;
    return 0;
}

/* Put manifest r (with its references) and, when tag is set, the tag,
 * compared with what the destination had (expect). */
static int put_manifest(pc_mig *m, const pc_manifest_rec *r, const char *tag,
                        const pc_digest *expect)
{
    pc_metastore *dst = m->o->dst_meta;
    pc_manifest_ref *refs = NULL;
    size_t n = 0;
    int rc = refs_array(m, r->repo, &r->digest, &refs, &n);
    if (rc == 0)
        rc = dst->reg->manifest_put(dst, r, refs, n, tag, expect);
    free(refs);
    return rc;
}

static int copy_links(pc_mig *m)
{
    pc_metastore *dst = m->o->dst_meta;
    for (size_t i = 0; i < m->links.n; i++) {
        const pc_mig_link *l = PC_MIG_AT(&m->links, pc_mig_link, i);
        uint64_t size = 0;
        int rc = dst->reg->blob_stat(dst, l->repo, &l->digest, &size);
        if (rc == 0 && size == l->size)
            continue;
        if (rc && rc != PC_ENOTFOUND)
            goto fail;
        m->st->links_added++;
        if (m->o->dry_run)
            continue;
        if (rc == 0 && (rc = dst->reg->blob_unlink(dst, l->repo, &l->digest)) && rc != PC_ENOTFOUND)
            goto fail;
        if ((rc = dst->reg->blob_link(dst, l->repo, &l->digest, l->size)))
            goto fail;
        continue;
    fail:
        pc_error_set("blob link %s in %s at the destination: %s", l->digest.str, l->repo,
                     pc_error_last());
        return rc;
    }
    return 0;
}

static int copy_manifests(pc_mig *m)
{
    pc_metastore *dst = m->o->dst_meta;
    for (size_t i = 0; i < m->manifests.n; i++) {
        const pc_manifest_rec *r = PC_MIG_AT(&m->manifests, pc_manifest_rec, i);
        pc_manifest_rec have;
        int rc = dst->reg->manifest_get(dst, r->repo, &r->digest, &have);
        if (rc == 0 && same_record(r, &have))
            continue;
        if (rc && rc != PC_ENOTFOUND) {
            pc_error_set("manifest %s in %s at the destination: %s", r->digest.str, r->repo,
                         pc_error_last());
            return rc;
        }
        m->st->manifests_put++;
        if (!m->o->dry_run && (rc = put_manifest(m, r, NULL, NULL))) {
            pc_error_set("storing manifest %s in %s at the destination: %s", r->digest.str, r->repo,
                         pc_error_last());
            return rc;
        }
    }
    return 0;
}

static int copy_tags(pc_mig *m)
{
    pc_metastore *dst = m->o->dst_meta;
    for (size_t i = 0; i < m->tags.n; i++) {
        const pc_mig_tag *t = PC_MIG_AT(&m->tags, pc_mig_tag, i);
        pc_digest have;
        int64_t updated = 0;
        int rc = dst->cache->tag_stat(dst, t->repo, t->tag, &have, &updated);
        if (rc && rc != PC_ENOTFOUND)
            goto fail;
        bool same = rc == 0 && pc_digest_equal(&have, &t->digest);
        if (same && updated == t->updated)
            continue;
        if (!same) {
            const pc_manifest_rec *r = find_manifest(m, t->repo, &t->digest);
            if (!r) { /* a tag without its manifest: the source changed under us */
                pc_mig_problem(m, PC_MIGRATE_P_TAG, t->repo, t->tag, &t->digest,
                               "the source has no record of the manifest it names");
                continue;
            }
            m->st->tags_set++;
            if (!m->o->dry_run) {
                pc_digest expect;
                if (rc == PC_ENOTFOUND)
                    memset(&expect, 0, sizeof(expect)); /* "": must not exist */
                else
                    expect = have;
                rc = put_manifest(m, r, t->tag, &expect);
                if (rc == PC_ECONFLICT) {
                    pc_mig_problem(m, PC_MIGRATE_P_CONFLICT, t->repo, t->tag, &t->digest,
                                   "the destination's tag changed while it was being set "
                                   "(a serve on the destination?)");
                    continue;
                }
                if (rc)
                    goto fail;
            }
        }
        m->st->tag_times++;
        if (!m->o->dry_run &&
            (rc = dst->cache->tag_touch(dst, t->repo, t->tag, &t->digest, t->updated)))
            goto fail;
        continue;
    fail:
        pc_error_set("tag %s:%s at the destination: %s", t->repo, t->tag, pc_error_last());
        return rc;
    }
    return 0;
}

/* ---- access records and limiter counts ---- */

typedef struct {
    pc_digest d;
    uint64_t size;
    int64_t last;
} access_t;

static bool any_repo(const char *repo, void *ctx)
{
    (void)repo;
    (void)ctx;
    return true;
}

static int on_access(const pc_digest *d, uint64_t size, int64_t last, void *ctx)
{
    access_t *a = pc_mig_vec_push(ctx);
    if (!a)
        return nomem();
    a->d = *d;
    a->size = size;
    a->last = last;
    return 0;
}

static int cmp_access(const void *a, const void *b)
{
    return strcmp(((const access_t *)a)->d.str, ((const access_t *)b)->d.str);
}

/* Every access record of ms (the eviction listing over every repository:
 * the records of blobs, manifests have none that count), by digest. */
static int read_access(pc_metastore *ms, pc_mig_vec *out)
{
    out->size = sizeof(access_t);
    int rc = ms->cache->access_lru(ms, any_repo, NULL, on_access, out);
    if (rc == 0 && out->n)
        qsort(out->v, out->n, out->size, cmp_access);
    return rc;
}

/* The stores write an access time only when it is this much newer than the
 * stored one (access_touch: "about a minute"). */
#define ACCESS_SLACK_S 60

static int copy_access(pc_mig *m)
{
    pc_mig_vec src = {0}, dst = {0};
    int rc = read_access(m->o->src_meta, &src);
    if (rc) {
        pc_error_set("listing the source's cache access records: %s", pc_error_last());
        goto done;
    }
    if ((rc = read_access(m->o->dst_meta, &dst))) {
        pc_error_set("listing the destination's cache access records: %s", pc_error_last());
        goto done;
    }
    m->st->access = src.n;
    for (size_t i = 0; i < src.n; i++) {
        const access_t *a = PC_MIG_AT(&src, access_t, i);
        const access_t *have = dst.n ? bsearch(a, dst.v, dst.n, sizeof(*a), cmp_access) : NULL;
        if (have && have->last >= a->last - ACCESS_SLACK_S)
            continue;
        m->st->access_set++;
        if (!m->o->dry_run &&
            (rc = m->o->dst_meta->cache->access_touch(m->o->dst_meta, &a->d, a->size, a->last))) {
            pc_error_set("access record of %s at the destination: %s", a->d.str, pc_error_last());
            goto done;
        }
    }
    rc = 0;
done:
    pc_mig_vec_free(&src);
    pc_mig_vec_free(&dst);
    return rc;
}

typedef struct {
    char *key;
    int64_t bucket;
    uint64_t count;
    int64_t expires;
} limit_t;

static int on_limit(const pc_meta_limit_row *row, void *ctx)
{
    limit_t *l = pc_mig_vec_push(ctx);
    if (!l || !(l->key = strdup(row->key)))
        return nomem();
    l->bucket = row->bucket;
    l->count = row->count;
    l->expires = row->expires;
    return 0;
}

static int cmp_limit(const void *a, const void *b)
{
    const limit_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->bucket > y->bucket) - (x->bucket < y->bucket);
}

static void limits_free(pc_mig_vec *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(PC_MIG_AT(l, limit_t, i)->key);
    pc_mig_vec_free(l);
}

static int copy_limits(pc_mig *m)
{
    int64_t now = m->o->now ? m->o->now : (int64_t)time(NULL);
    pc_mig_vec src = {0}, dst = {0};
    pc_meta_limit_row *rows = NULL;
    src.size = dst.size = sizeof(limit_t);
    pc_metastore *sm = m->o->src_meta, *dm = m->o->dst_meta;
    int rc = sm->limits->limit_load(sm, now, on_limit, &src);
    if (rc) {
        pc_error_set("reading the source's limiter counts: %s", pc_error_last());
        goto done;
    }
    if ((rc = dm->limits->limit_load(dm, now, on_limit, &dst))) {
        pc_error_set("reading the destination's limiter counts: %s", pc_error_last());
        goto done;
    }
    if (dst.n)
        qsort(dst.v, dst.n, dst.size, cmp_limit);
    m->st->limits = src.n;
    if (src.n && !(rows = calloc(src.n, sizeof(*rows)))) {
        rc = nomem();
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < src.n; i++) {
        const limit_t *l = PC_MIG_AT(&src, limit_t, i);
        const limit_t *have = dst.n ? bsearch(l, dst.v, dst.n, sizeof(*l), cmp_limit) : NULL;
        if (have && have->count == l->count && have->expires == l->expires)
            continue;
        rows[n++] = (pc_meta_limit_row){l->key, l->bucket, l->count, l->expires};
    }
    m->st->limits_set = n;
    if (n && !m->o->dry_run && (rc = dm->limits->limit_save(dm, rows, n, now, false))) {
        pc_error_set("storing the limiter counts at the destination: %s", pc_error_last());
        goto done;
    }
    rc = 0;
done:
    free(rows);
    limits_free(&src);
    limits_free(&dst);
    return rc;
}

int pc_mig_meta_copy(pc_mig *m)
{
    int rc;
    if ((rc = copy_links(m)) || (rc = copy_manifests(m)) || (rc = copy_tags(m)) ||
        (rc = copy_access(m)) || (rc = copy_limits(m)))
        return rc;
    return 0;
}
