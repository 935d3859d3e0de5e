/*
 * meta_mem.c - the in-memory meta store (store/meta.h), for tests and
 * `serve --ephemeral`: everything is lost when it is freed. Behaves as
 * the SQLite backend (meta_sqlite*.c) does: the same ordering, holders,
 * cascades, paging, compare-and-swap and input checks; the shared suite
 * tests/unit/test_store_meta.c runs against both.
 *
 * This file opens and frees the store, keeps its lock and the sorted
 * pointer arrays that index the rows, and the helpers the other files
 * share (meta_mem_int.h, which also describes the locking). It has no
 * connections: the SQLite backend's connection metrics stay untouched.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_mem_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- indexes ---- */

int pc_mm_reserve(pc_mm_index *ix, size_t more)
{
    if (ix->n + more <= ix->cap)
        return 0;
    size_t cap = ix->cap ? ix->cap : 16;
    while (cap < ix->n + more)
        cap *= 2;
    void **v = realloc(ix->v, cap * sizeof(*v));
    if (!v)
        return pc_mm_nomem();
    ix->v = v;
    ix->cap = cap;
    return 0;
}

size_t pc_mm_lower(const pc_mm_index *ix, const void *key)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->cmp(ix->v[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void *pc_mm_find(const pc_mm_index *ix, const void *key)
{
    size_t i = pc_mm_lower(ix, key);
    return i < ix->n && ix->cmp(ix->v[i], key) == 0 ? ix->v[i] : NULL;
}

void pc_mm_insert(pc_mm_index *ix, void *e)
{
    size_t i = pc_mm_lower(ix, e);
    memmove(ix->v + i + 1, ix->v + i, (ix->n - i) * sizeof(*ix->v));
    ix->v[i] = e;
    ix->n++;
}

void pc_mm_remove_at(pc_mm_index *ix, size_t i)
{
    memmove(ix->v + i, ix->v + i + 1, (ix->n - i - 1) * sizeof(*ix->v));
    ix->n--;
}

void pc_mm_remove(pc_mm_index *ix, const void *e)
{
    for (size_t i = pc_mm_lower(ix, e); i < ix->n && ix->cmp(ix->v[i], e) == 0; i++) {
        if (ix->v[i] == e) {
            pc_mm_remove_at(ix, i);
            return;
        }
    }
}

/* ---- the orders of the rows ---- */

static int dcmp(const pc_digest *a, const pc_digest *b)
{
    return strcmp(a->str, b->str);
}

static int link_cmp(const void *a, const void *b)
{
    const pc_mm_link *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    return c ? c : dcmp(&x->d, &y->d);
}

static int link_d_cmp(const void *a, const void *b)
{
    const pc_mm_link *x = a, *y = b;
    int c = dcmp(&x->d, &y->d);
    return c ? c : strcmp(x->repo, y->repo);
}

static int manifest_cmp(const void *a, const void *b)
{
    const pc_mm_manifest *x = a, *y = b;
    int c = strcmp(x->rec.repo, y->rec.repo);
    return c ? c : dcmp(&x->rec.digest, &y->rec.digest);
}

static int manifest_d_cmp(const void *a, const void *b)
{
    const pc_mm_manifest *x = a, *y = b;
    int c = dcmp(&x->rec.digest, &y->rec.digest);
    return c ? c : strcmp(x->rec.repo, y->rec.repo);
}

static int ref_cmp(const void *a, const void *b)
{
    const pc_mm_ref *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    if (c == 0)
        c = dcmp(&x->manifest, &y->manifest);
    return c ? c : dcmp(&x->ref, &y->ref);
}

static int ref_r_cmp(const void *a, const void *b)
{
    const pc_mm_ref *x = a, *y = b;
    int c = dcmp(&x->ref, &y->ref);
    if (c == 0)
        c = strcmp(x->repo, y->repo);
    return c ? c : dcmp(&x->manifest, &y->manifest);
}

static int tag_cmp(const void *a, const void *b)
{
    const pc_mm_tag *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    return c ? c : strcmp(x->tag, y->tag);
}

static int repo_cmp(const void *a, const void *b)
{
    return strcmp(((const pc_mm_repo *)a)->name, ((const pc_mm_repo *)b)->name);
}

static int upload_cmp(const void *a, const void *b)
{
    return strcmp(((const pc_mm_upload *)a)->id, ((const pc_mm_upload *)b)->id);
}

static int access_cmp(const void *a, const void *b)
{
    return dcmp(&((const pc_mm_access *)a)->d, &((const pc_mm_access *)b)->d);
}

static int limit_cmp(const void *a, const void *b)
{
    const pc_mm_limit *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

/* ---- shared helpers ---- */

void pc_mm_lock(pc_mm_store *s)
{
    pthread_mutex_lock(&s->mu);
}

void pc_mm_unlock(pc_mm_store *s)
{
    pthread_mutex_unlock(&s->mu);
}

pc_digest pc_mm_digest(const pc_digest *d)
{
    pc_digest out;
    memset(&out, 0, sizeof(out));
    out.alg = d->alg;
    pc_mm_copy(out.str, sizeof(out.str), d->str);
    return out;
}

void pc_mm_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int pc_mm_nomem(void)
{
    pc_error_set("meta store: out of memory");
    return PC_ENOMEM;
}

int pc_mm_list_push(pc_mm_list *l, const void *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        unsigned char *p = realloc(l->p, cap * l->size);
        if (!p)
            return pc_mm_nomem();
        l->p = p;
        l->cap = cap;
    }
    memcpy(l->p + l->n * l->size, e, l->size);
    l->n++;
    return 0;
}

void pc_mm_list_free(pc_mm_list *l)
{
    free(l->p);
    l->p = NULL;
    l->n = l->cap = 0;
}

pc_mm_link pc_mm_link_key(const char *repo, const pc_digest *d)
{
    pc_mm_link k;
    memset(&k, 0, sizeof(k));
    pc_mm_copy(k.repo, sizeof(k.repo), repo ? repo : "");
    if (d)
        k.d = pc_mm_digest(d);
    return k;
}

pc_mm_ref pc_mm_ref_key(const char *repo, const pc_digest *manifest, const pc_digest *ref)
{
    pc_mm_ref k;
    memset(&k, 0, sizeof(k));
    pc_mm_copy(k.repo, sizeof(k.repo), repo ? repo : "");
    if (manifest)
        k.manifest = pc_mm_digest(manifest);
    if (ref)
        k.ref = pc_mm_digest(ref);
    return k;
}

int pc_mm_link_erase(pc_mm_store *s, const char *repo, const pc_digest *d)
{
    pc_mm_link k = pc_mm_link_key(repo, d);
    pc_mm_link *l = pc_mm_find(&s->links, &k);
    if (!l) {
        pc_error_set("blob unlink: not found");
        return PC_ENOTFOUND;
    }
    pc_mm_remove(&s->links, l);
    pc_mm_remove(&s->links_d, l);
    free(l);
    return 0;
}

int pc_mm_manifest_erase(pc_mm_store *s, const char *repo, const pc_digest *d)
{
    pc_mm_manifest k;
    memset(&k, 0, sizeof(k));
    pc_mm_copy(k.rec.repo, sizeof(k.rec.repo), repo);
    k.rec.digest = pc_mm_digest(d);
    pc_mm_manifest *m = pc_mm_find(&s->manifests, &k);
    if (!m) {
        pc_error_set("manifest unknown");
        return PC_ENOTFOUND;
    }
    /* its tags: those of the repository that point at it */
    pc_mm_tag tk;
    memset(&tk, 0, sizeof(tk));
    pc_mm_copy(tk.repo, sizeof(tk.repo), repo);
    for (size_t i = pc_mm_lower(&s->tags, &tk); i < s->tags.n;) {
        pc_mm_tag *t = s->tags.v[i];
        if (strcmp(t->repo, repo) != 0)
            break;
        if (dcmp(&t->d, d) == 0) {
            pc_mm_remove_at(&s->tags, i);
            free(t);
        } else {
            i++;
        }
    }
    /* its references */
    pc_mm_ref rk = pc_mm_ref_key(repo, d, NULL);
    size_t i = pc_mm_lower(&s->refs, &rk);
    while (i < s->refs.n) {
        pc_mm_ref *r = s->refs.v[i];
        if (strcmp(r->repo, repo) != 0 || dcmp(&r->manifest, d) != 0)
            break;
        pc_mm_remove_at(&s->refs, i);
        pc_mm_remove(&s->refs_r, r);
        free(r);
    }
    pc_mm_remove(&s->manifests, m);
    pc_mm_remove(&s->manifests_d, m);
    free(m);
    return 0;
}

/* ---- open, free ---- */

/* Free every row of ix (rows held by a second index are freed through
 * the first only) and the array. */
static void index_free(pc_mm_index *ix, bool rows)
{
    for (size_t i = 0; rows && i < ix->n; i++)
        free(ix->v[i]);
    free(ix->v);
    ix->v = NULL;
    ix->n = ix->cap = 0;
}

static void mm_free(pc_metastore *ms)
{
    pc_mm_store *s = pc_mm_of(ms);
    if (!s)
        return;
    index_free(&s->links, true);
    index_free(&s->links_d, false);
    index_free(&s->manifests, true);
    index_free(&s->manifests_d, false);
    index_free(&s->refs, true);
    index_free(&s->refs_r, false);
    index_free(&s->tags, true);
    index_free(&s->repos, true);
    index_free(&s->uploads, true);
    index_free(&s->access, true);
    for (size_t i = 0; i < s->limits.n; i++)
        free(((pc_mm_limit *)s->limits.v[i])->key);
    index_free(&s->limits, true);
    index_free(&s->leases, true);
    index_free(&s->notes, true);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The function tables, the same for every store: filled once. */
static pc_meta_reg_ops mm_reg;
static pc_meta_cache_ops mm_cache;
static pc_meta_limit_ops mm_limits;
static pc_meta_coord_ops mm_coord;
static pthread_once_t mm_tables_once = PTHREAD_ONCE_INIT;

static void mm_tables_fill(void)
{
    mm_reg.version = PC_META_REG_VERSION;
    mm_cache.version = PC_META_CACHE_VERSION;
    mm_limits.version = PC_META_LIMIT_VERSION;
    pc_mm_reg_install(&mm_reg, &mm_cache);
    pc_mm_cache_install(&mm_reg, &mm_cache, &mm_limits);
    mm_coord.version = PC_META_COORD_VERSION;
    pc_mm_coord_install(&mm_coord);
}

int pc_meta_mem_open(pc_metastore **out)
{
    pthread_once(&mm_tables_once, mm_tables_fill);
    if (!out)
        return pc_meta_invalid("argument");
    pc_mm_store *s = calloc(1, sizeof(*s));
    if (!s)
        return pc_mm_nomem();
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0) {
        free(s);
        return pc_mm_nomem();
    }
    int r = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    if (r == 0)
        r = pthread_mutex_init(&s->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    if (r != 0) {
        free(s);
        pc_error_set("meta store: mutex init failed");
        return PC_ERR;
    }
    s->links.cmp = link_cmp;
    s->links_d.cmp = link_d_cmp;
    s->manifests.cmp = manifest_cmp;
    s->manifests_d.cmp = manifest_d_cmp;
    s->refs.cmp = ref_cmp;
    s->refs_r.cmp = ref_r_cmp;
    s->tags.cmp = tag_cmp;
    s->repos.cmp = repo_cmp;
    s->uploads.cmp = upload_cmp;
    s->access.cmp = access_cmp;
    s->limits.cmp = limit_cmp;
    s->leases.cmp = pc_mm_key_cmp;
    s->notes.cmp = pc_mm_key_cmp;
    s->base.version = PC_META_VERSION;
    s->base.driver = "mem";
    s->base.free = mm_free;
    s->base.reg = &mm_reg;
    s->base.cache = &mm_cache;
    s->base.limits = &mm_limits;
    s->base.coord = &mm_coord;
    *out = &s->base;
    return 0;
}
