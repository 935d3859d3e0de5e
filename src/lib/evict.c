/*
 * evict.c - the pull-through cache's size cap (least recently used mirrored
 * blobs go first, local content never) and the blob store's mark-and-sweep
 * garbage collection. See evict.h.
 *
 * A blob removed while a client still reads it is safe on the filesystem
 * backend: the reader holds an open descriptor (the response's sendfile fd,
 * or a fetch's staging fd, which after the rename is the published file),
 * and an unlinked file stays readable through it until closed.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "evict.h"
#include "mirror_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

/* ---- eviction ---- */

typedef struct {
    pc_digest d;
    uint64_t size;
} candidate;

typedef struct {
    candidate *v;
    size_t n, cap;
} candidates;

static int collect_candidate(const pc_digest *d, uint64_t size, int64_t last_access, void *ctx)
{
    candidates *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        candidate *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return PC_ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n].d = *d;
    c->v[c->n].size = size;
    c->n++;
    return 0;
}

int pc_evict_run(pc_registry *reg, const char *const *upstreams, size_t nups, uint64_t max_size,
                 bool dry, pc_evict_busy_fn busy, void *busy_ctx, pc_evict_stats *st)
{
    pc_metastore *ms = pc_registry_meta(reg);
    pc_blobstore *bs = pc_registry_blobs(reg);
    candidates c = {NULL, 0, 0};
    int rc;

    memset(st, 0, sizeof(*st));
    if ((rc = ms->access_lru(ms, upstreams, nups, collect_candidate, &c)))
        goto done;
    /* Count what is really stored; records of blobs already gone (removed
     * by a sweep, or evicted while a request linked them again) are
     * dropped. */
    for (size_t i = 0; i < c.n; i++) {
        uint64_t size;
        if (bs->stat(bs, &c.v[i].d, &size) == 0) {
            c.v[i].size = size;
            st->mirrored_bytes += size;
            continue;
        }
        if (!dry)
            ms->access_evict(ms, &c.v[i].d, upstreams, nups);
        c.v[i].size = 0;
    }
    uint64_t total = st->mirrored_bytes;
    for (size_t i = 0; i < c.n && total > max_size; i++) {
        const candidate *k = &c.v[i];
        if (!k->size)
            continue;
        if (busy && busy(&k->d, busy_ctx)) {
            st->skipped++;
            continue;
        }
        if (!dry) {
            /* Links first: once they are gone no new client finds the blob
             * through this mirror's repositories; a local push that linked
             * it meanwhile makes this PC_EEXISTS and the blob stays. */
            int erc = ms->access_evict(ms, &k->d, upstreams, nups);
            if (erc == PC_EEXISTS) {
                st->skipped++;
                continue;
            }
            if (erc) {
                rc = erc;
                goto done;
            }
            erc = bs->remove(bs, &k->d);
            if (erc && erc != PC_ENOTFOUND) {
                rc = erc;
                goto done;
            }
            pc_log(PC_LOG_DEBUG, "evicted %s (%llu bytes)", k->d.str, (unsigned long long)k->size);
        }
        total -= k->size;
        st->freed_bytes += k->size;
        st->freed++;
    }
done:
    free(c.v);
    return rc;
}

int pc_evict_upstreams(const pc_config *cfg, const char ***out, size_t *n)
{
    size_t count = cfg->upstreams_count;
    const char **v = calloc(count ? count : 1, sizeof(*v));
    if (!v)
        return PC_ENOMEM;
    for (size_t i = 0; i < count; i++)
        v[i] = cfg->upstreams[i].name;
    *out = v;
    *n = count;
    return 0;
}

static bool mirror_busy(const pc_digest *d, void *ctx)
{
    return pc_fetch_running(ctx, d);
}

int pc_mirror_evict(pc_mirror *m, uint64_t max_size, pc_evict_stats *st)
{
    const char **ups = NULL;
    size_t n = 0;
    memset(st, 0, sizeof(*st));
    int rc = pc_evict_upstreams(m->cfg, &ups, &n);
    if (!rc)
        rc = pc_evict_run(m->reg, ups, n, max_size ? max_size : UINT64_MAX, false, mirror_busy, m,
                          st);
    free(ups);
    if (st->freed) {
        pc_metrics_add("pullcache_cache_evictions_total", NULL, st->freed);
        pc_metrics_add("pullcache_cache_evicted_bytes_total", NULL, st->freed_bytes);
    }
    if (!rc) /* gauges: set to the new value (they are adjusted by deltas) */
        pc_metrics_gauge_add("pullcache_cache_mirrored_bytes", NULL,
                             (int64_t)(st->mirrored_bytes - st->freed_bytes) -
                                 pc_metrics_value("pullcache_cache_mirrored_bytes", NULL));
    return rc;
}

static int count_blob(const pc_digest *d, uint64_t size, void *ctx)
{
    uint64_t *acc = ctx;
    (void)d;
    acc[0]++;
    acc[1] += size;
    return 0;
}

int pc_mirror_store_gauges(pc_mirror *m)
{
    pc_blobstore *bs = pc_registry_blobs(m->reg);
    uint64_t acc[2] = {0, 0};
    int rc = bs->foreach (bs, count_blob, acc);
    if (rc)
        return rc;
    pc_metrics_gauge_add("pullcache_store_blobs", NULL,
                         (int64_t)acc[0] - pc_metrics_value("pullcache_store_blobs", NULL));
    pc_metrics_gauge_add("pullcache_store_bytes", NULL,
                         (int64_t)acc[1] - pc_metrics_value("pullcache_store_bytes", NULL));
    return 0;
}

/* ---- mark and sweep ---- */

/* Unreferenced blobs removed per hold of the publish lock. */
#define GC_BATCH 256

typedef struct {
    pc_digest *v;
    size_t n, cap;
} digest_set;

static int set_add(const pc_digest *d, void *ctx)
{
    digest_set *s = ctx;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        pc_digest *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return PC_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *d;
    return 0;
}

static int digest_cmp(const void *a, const void *b)
{
    return strcmp(((const pc_digest *)a)->str, ((const pc_digest *)b)->str);
}

typedef struct {
    digest_set *marked;
    digest_set unmarked; /* published, unreferenced */
    pc_gc_stats *st;
} sweep_ctx;

static int sweep_visit(const pc_digest *d, uint64_t size, void *ctx)
{
    sweep_ctx *s = ctx;
    s->st->blobs++;
    if (s->marked->n && bsearch(d, s->marked->v, s->marked->n, sizeof(*d), digest_cmp))
        return 0;
    return set_add(d, &s->unmarked);
}

int pc_gc_sweep(pc_registry *reg, long grace_s, bool dry, pc_gc_stats *st)
{
    pc_metastore *ms = pc_registry_meta(reg);
    pc_blobstore *bs = pc_registry_blobs(reg);
    digest_set marked = {NULL, 0, 0};
    sweep_ctx sc = {&marked, {NULL, 0, 0}, st};
    pc_blob_lock lk = {-1, -1};
    bool locked = false;
    int rc;

    memset(st, 0, sizeof(*st));
    if ((rc = ms->referenced_foreach(ms, set_add, &marked)))
        goto done;
    if (marked.n)
        qsort(marked.v, marked.n, sizeof(*marked.v), digest_cmp);
    /* Collect first, remove after: no unlinking under a running readdir. */
    if ((rc = bs->foreach (bs, sweep_visit, &sc)))
        goto done;
    /* Remove under the exclusive publish lock, in batches: a publisher
     * holds it shared from renaming its file until its link is recorded,
     * so the holders looked at below are final (no blob that got a 201
     * goes), and pushes wait at most one batch. */
    for (size_t i = 0; i < sc.unmarked.n; i++) {
        if (!dry && bs->publish_lock && i % GC_BATCH == 0) {
            if (locked)
                bs->publish_unlock(bs, &lk);
            locked = false;
            if ((rc = bs->publish_lock(bs, true, &lk)))
                goto done;
            locked = true;
        }
        const pc_digest *d = &sc.unmarked.v[i];
        long age = 0;
        uint64_t size = 0, holders = 0;
        if (bs->age(bs, d, &age) != 0 || bs->stat(bs, d, &size) != 0)
            continue; /* gone meanwhile */
        if (age < grace_s) {
            st->young++;
            continue;
        }
        /* Marked a while ago: ask again right before removing, so content
         * linked since (a mirror request reusing a stored blob) stays. */
        if ((rc = ms->digest_holders(ms, d, &holders)))
            goto done;
        if (holders)
            continue;
        if (!dry) {
            int erc = bs->remove(bs, d);
            if (erc == PC_ENOTFOUND)
                continue;
            if (erc) {
                rc = erc;
                goto done;
            }
            /* its access record, if the mirror ever served it */
            ms->access_evict(ms, d, NULL, 0);
        }
        st->removed++;
        st->removed_bytes += size;
    }
done:
    if (locked)
        bs->publish_unlock(bs, &lk);
    free(marked.v);
    free(sc.unmarked.v);
    return rc;
}
