/*
 * meta_mem_cache.c - the in-memory meta store's cache bookkeeping (when
 * the mirror last served or fetched each blob, eviction candidates and
 * the eviction of one), the client pull limiter's counts, and what fsck
 * asks: every blob link, manifest, reference and upload session,
 * recorded sizes set right, and removals guarded by a check that runs
 * under the store's lock.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_mem_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- cache access records ---- */

static pc_mm_access access_key(const pc_digest *d)
{
    pc_mm_access k;
    memset(&k, 0, sizeof(k));
    k.d = pc_mm_digest(d);
    return k;
}

/* Written when missing, or when the stored time is more than
 * PC_MM_TOUCH_EVERY seconds before now (as the SQLite backend's upsert). */
static int mm_access_touch(pc_metastore *ms, const pc_digest *d, uint64_t size, int64_t now)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("digest");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_access k = access_key(d);
    int rc = 0;
    pc_mm_lock(s);
    pc_mm_access *a = pc_mm_find(&s->access, &k);
    if (a) {
        if (now > INT64_MIN + PC_MM_TOUCH_EVERY && a->last < now - PC_MM_TOUCH_EVERY) {
            a->size = size;
            a->last = now;
        }
    } else if (!(a = malloc(sizeof(*a)))) {
        rc = pc_mm_nomem();
    } else if ((rc = pc_mm_reserve(&s->access, 1))) {
        free(a);
    } else {
        *a = k;
        a->size = size;
        a->last = now;
        pc_mm_insert(&s->access, a);
    }
    pc_mm_unlock(s);
    return rc;
}

/* Under the lock: whether d is a candidate: no manifest of any
 * repository is d, and every repository holding d through a blob link or
 * a manifest reference satisfies mirror (NULL: none holds it). */
static bool candidate(pc_mm_store *s, const pc_digest *d, pc_meta_repo_pred mirror, void *ctx)
{
    pc_mm_manifest mk;
    memset(&mk, 0, sizeof(mk));
    mk.rec.digest = pc_mm_digest(d);
    size_t i = pc_mm_lower(&s->manifests_d, &mk);
    if (i < s->manifests_d.n &&
        strcmp(((const pc_mm_manifest *)s->manifests_d.v[i])->rec.digest.str, d->str) == 0)
        return false;
    pc_mm_link lk = pc_mm_link_key("", d);
    for (i = pc_mm_lower(&s->links_d, &lk); i < s->links_d.n; i++) {
        const pc_mm_link *l = s->links_d.v[i];
        if (strcmp(l->d.str, d->str) != 0)
            break;
        if (!mirror || !mirror(l->repo, ctx))
            return false;
    }
    pc_mm_ref rk = pc_mm_ref_key("", NULL, d);
    for (i = pc_mm_lower(&s->refs_r, &rk); i < s->refs_r.n; i++) {
        const pc_mm_ref *r = s->refs_r.v[i];
        if (strcmp(r->ref.str, d->str) != 0)
            break;
        if (!mirror || !mirror(r->repo, ctx))
            return false;
    }
    return true;
}

static int lru_cmp(const void *a, const void *b)
{
    const pc_mm_access *x = a, *y = b;
    if (x->last != y->last)
        return x->last < y->last ? -1 : 1;
    return strcmp(x->d.str, y->d.str);
}

/* The predicate runs under the store's lock (it is a rule about names). */
static int mm_access_lru(pc_metastore *ms, pc_meta_repo_pred mirror, void *pctx,
                         pc_meta_access_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("eviction query");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_mm_access)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->access.n; i++) {
        const pc_mm_access *a = s->access.v[i];
        if (candidate(s, &a->d, mirror, pctx))
            rc = pc_mm_list_push(&l, a);
    }
    pc_mm_unlock(s);
    if (rc == 0 && l.n)
        qsort(l.p, l.n, l.size, lru_cmp);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const pc_mm_access *a = pc_mm_list_at(&l, i);
        rc = cb(&a->d, a->size, a->last, ctx);
    }
    pc_mm_list_free(&l);
    return rc;
}

static int mm_access_evict(pc_metastore *ms, const pc_digest *d, pc_meta_repo_pred mirror,
                           void *ctx)
{
    if (!pc_meta_digest_ok(d))
        return pc_meta_invalid("eviction");
    pc_mm_store *s = pc_mm_of(ms);
    int rc = 0;
    pc_mm_lock(s);
    if (!candidate(s, d, mirror, ctx)) {
        pc_error_set("%s is held outside the mirror", d->str);
        rc = PC_EEXISTS;
    } else {
        pc_mm_link lk = pc_mm_link_key("", d);
        size_t i = pc_mm_lower(&s->links_d, &lk);
        while (i < s->links_d.n) {
            pc_mm_link *l = s->links_d.v[i];
            if (strcmp(l->d.str, d->str) != 0)
                break;
            pc_mm_remove_at(&s->links_d, i);
            pc_mm_remove(&s->links, l);
            free(l);
        }
        pc_mm_access k = access_key(d);
        pc_mm_access *a = pc_mm_find(&s->access, &k);
        if (a) {
            pc_mm_remove(&s->access, a);
            free(a);
        }
    }
    pc_mm_unlock(s);
    return rc;
}

/* ---- the client pull limiter's counts ---- */

static void limit_free(pc_mm_limit *r)
{
    if (r) {
        free(r->key);
        free(r);
    }
}

static int mm_limit_save(pc_metastore *ms, const pc_meta_limit_row *rows, size_t n, int64_t now,
                         bool replace)
{
    if (n && !rows)
        return pc_meta_invalid("limiter rows");
    for (size_t i = 0; i < n; i++)
        if (!rows[i].key || !rows[i].key[0] || rows[i].count > INT64_MAX)
            return pc_meta_invalid("limiter row");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_limit **fresh = n ? calloc(n, sizeof(*fresh)) : NULL;
    int rc = n && !fresh ? pc_mm_nomem() : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!(fresh[i] = malloc(sizeof(**fresh))) || !(fresh[i]->key = strdup(rows[i].key))) {
            free(fresh[i]);
            fresh[i] = NULL;
            rc = pc_mm_nomem();
            break;
        }
        fresh[i]->bucket = rows[i].bucket;
        fresh[i]->count = rows[i].count;
        fresh[i]->expires = rows[i].expires;
    }
    pc_mm_lock(s);
    if (rc == 0 && (rc = pc_mm_reserve(&s->limits, n)) == 0) {
        if (replace) {
            for (size_t i = 0; i < s->limits.n; i++)
                limit_free(s->limits.v[i]);
            s->limits.n = 0;
        }
        for (size_t i = 0; i < n; i++) {
            pc_mm_limit *cur = pc_mm_find(&s->limits, fresh[i]);
            if (cur) { /* a row replaces the stored one of its key and bucket */
                cur->count = fresh[i]->count;
                cur->expires = fresh[i]->expires;
                limit_free(fresh[i]);
            } else {
                pc_mm_insert(&s->limits, fresh[i]);
            }
            fresh[i] = NULL;
        }
        size_t keep = 0; /* drop what expired, in place */
        for (size_t i = 0; i < s->limits.n; i++) {
            pc_mm_limit *r = s->limits.v[i];
            if (r->expires <= now)
                limit_free(r);
            else
                s->limits.v[keep++] = r;
        }
        s->limits.n = keep;
    }
    pc_mm_unlock(s);
    for (size_t i = 0; fresh && i < n; i++)
        limit_free(fresh[i]);
    free(fresh);
    return rc;
}

static int mm_limit_take(pc_metastore *ms, const char *key, int64_t bucket, int64_t first,
                         int64_t expires, uint64_t max, bool count, pc_meta_limit_take *out)
{
    if (!key || !key[0] || !out || first > bucket || max > INT64_MAX)
        return pc_meta_invalid("limiter take");
    pc_mm_store *s = pc_mm_of(ms);
    memset(out, 0, sizeof(*out));
    out->oldest = -1;
    pc_mm_limit k = {.key = (char *)key, .bucket = first};
    pc_mm_lock(s);
    /* the key's rows are contiguous, by bucket: from the first in the window on */
    int64_t oldest = -1;
    pc_mm_limit *row = NULL;
    for (size_t i = pc_mm_lower(&s->limits, &k); i < s->limits.n; i++) {
        pc_mm_limit *r = s->limits.v[i];
        if (strcmp(r->key, key) != 0)
            break;
        if (r->count > 0 && oldest < 0)
            oldest = r->bucket;
        out->total += r->count;
        if (r->bucket == bucket)
            row = r;
    }
    out->allowed = out->total < max;
    int rc = 0;
    if (count && !out->allowed) {
        out->oldest = oldest;
    } else if (count && row) {
        row->count++;
        out->total++;
    } else if (count) {
        pc_mm_limit *n = malloc(sizeof(*n));
        if (!n || !(n->key = strdup(key)) || pc_mm_reserve(&s->limits, 1)) {
            if (n)
                free(n->key);
            free(n);
            rc = pc_mm_nomem();
        } else {
            n->bucket = bucket;
            n->count = 1;
            n->expires = expires;
            pc_mm_insert(&s->limits, n);
            out->total++;
        }
    }
    pc_mm_unlock(s);
    return rc;
}

static int mm_limit_load(pc_metastore *ms, int64_t now, pc_meta_limit_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_mm_limit)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->limits.n; i++) {
        const pc_mm_limit *r = s->limits.v[i];
        if (r->expires <= now)
            continue;
        pc_mm_limit c = *r;
        if (!(c.key = strdup(r->key)))
            rc = pc_mm_nomem();
        else if ((rc = pc_mm_list_push(&l, &c)))
            free(c.key);
    }
    pc_mm_unlock(s);
    for (size_t i = 0; i < l.n; i++) {
        pc_mm_limit *r = pc_mm_list_at(&l, i);
        pc_meta_limit_row row = {r->key, r->bucket, r->count, r->expires};
        if (rc == 0)
            rc = cb(&row, ctx);
        free(r->key);
    }
    pc_mm_list_free(&l);
    return rc;
}

/* ---- fsck's listings ---- */

static int mm_blob_link_foreach(pc_metastore *ms, pc_meta_link_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_mm_link)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->links.n; i++)
        rc = pc_mm_list_push(&l, s->links.v[i]);
    pc_mm_unlock(s);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const pc_mm_link *k = pc_mm_list_at(&l, i);
        rc = cb(k->repo, &k->d, k->size, ctx);
    }
    pc_mm_list_free(&l);
    return rc;
}

static int mm_manifest_foreach(pc_metastore *ms, pc_meta_rec_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_manifest_rec)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->manifests.n; i++)
        rc = pc_mm_list_push(&l, &((const pc_mm_manifest *)s->manifests.v[i])->rec);
    pc_mm_unlock(s);
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = cb(pc_mm_list_at(&l, i), ctx);
    pc_mm_list_free(&l);
    return rc;
}

static int mm_manifest_ref_foreach(pc_metastore *ms, pc_meta_ref_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_mm_ref)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->refs.n; i++)
        rc = pc_mm_list_push(&l, s->refs.v[i]);
    pc_mm_unlock(s);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const pc_mm_ref *r = pc_mm_list_at(&l, i);
        pc_manifest_ref ref;
        memset(&ref, 0, sizeof(ref));
        ref.digest = r->ref;
        ref.is_manifest = r->is_manifest;
        rc = cb(r->repo, &r->manifest, &ref, ctx);
    }
    pc_mm_list_free(&l);
    return rc;
}

static int mm_upload_foreach(pc_metastore *ms, pc_meta_upload_cb cb, void *ctx)
{
    if (!cb)
        return pc_meta_invalid("callback");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_list l = {.size = sizeof(pc_mm_upload)};
    int rc = 0;
    pc_mm_lock(s);
    for (size_t i = 0; rc == 0 && i < s->uploads.n; i++)
        rc = pc_mm_list_push(&l, s->uploads.v[i]);
    pc_mm_unlock(s);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const pc_mm_upload *u = pc_mm_list_at(&l, i);
        rc = cb(u->id, u->repo, u->created, ctx);
    }
    pc_mm_list_free(&l);
    return rc;
}

/* ---- fsck's repairs ---- */

static int mm_size_fix(pc_metastore *ms, const pc_digest *d, uint64_t size, uint64_t *changed)
{
    if (!pc_meta_digest_ok(d) || size > (uint64_t)INT64_MAX)
        return pc_meta_invalid("size fix");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_link lk = pc_mm_link_key("", d);
    pc_mm_manifest mk;
    memset(&mk, 0, sizeof(mk));
    mk.rec.digest = pc_mm_digest(d);
    uint64_t n = 0;
    pc_mm_lock(s);
    for (size_t i = pc_mm_lower(&s->links_d, &lk); i < s->links_d.n; i++) {
        pc_mm_link *l = s->links_d.v[i];
        if (strcmp(l->d.str, d->str) != 0)
            break;
        if (l->size != size) {
            l->size = size;
            n++;
        }
    }
    for (size_t i = pc_mm_lower(&s->manifests_d, &mk); i < s->manifests_d.n; i++) {
        pc_mm_manifest *m = s->manifests_d.v[i];
        if (strcmp(m->rec.digest.str, d->str) != 0)
            break;
        if (m->rec.size != size) {
            m->rec.size = size;
            n++;
        }
    }
    pc_mm_unlock(s);
    if (changed)
        *changed = n;
    return 0;
}

/* check runs with the store's (recursive) lock held: its read calls take
 * it again on the same thread, every other thread waits. */
static int mm_guarded_remove(pc_metastore *ms, const pc_meta_removal *what, pc_meta_guard_fn check,
                             void *ctx)
{
    if (!what || !check ||
        (what->kind != PC_META_REMOVE_NOTHING &&
         (!pc_meta_repo_ok(what->repo) || !pc_meta_digest_ok(what->digest))))
        return pc_meta_invalid("guarded removal");
    if (what->kind != PC_META_REMOVE_NOTHING && what->kind != PC_META_REMOVE_LINK &&
        what->kind != PC_META_REMOVE_MANIFEST)
        return pc_meta_invalid("removal");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    int rc = check(ms, ctx);
    if (rc == 0 && what->kind == PC_META_REMOVE_LINK)
        rc = pc_mm_link_erase(s, what->repo, what->digest);
    else if (rc == 0 && what->kind == PC_META_REMOVE_MANIFEST)
        rc = pc_mm_manifest_erase(s, what->repo, what->digest);
    pc_mm_unlock(s);
    return rc;
}

void pc_mm_cache_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache, pc_meta_limit_ops *limits)
{
    cache->access_touch = mm_access_touch;
    cache->access_lru = mm_access_lru;
    cache->access_evict = mm_access_evict;
    limits->limit_save = mm_limit_save;
    limits->limit_load = mm_limit_load;
    limits->limit_take = mm_limit_take;
    ops->blob_link_foreach = mm_blob_link_foreach;
    ops->manifest_foreach = mm_manifest_foreach;
    ops->manifest_ref_foreach = mm_manifest_ref_foreach;
    ops->upload_foreach = mm_upload_foreach;
    ops->size_fix = mm_size_fix;
    ops->guarded_remove = mm_guarded_remove;
}
