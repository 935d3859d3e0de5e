/*
 * mirror_evict.c - the pull-through cache's size cap (least recently used mirrored
 * blobs go first, local content never), the policy over the registry's
 * eviction primitives (pc_registry_cache_lru, pc_registry_cache_evict),
 * and the store gauges. See mirror_evict.h; gc is registry_gc.c.
 *
 * A blob removed while a client still reads it is safe on the filesystem
 * backend: the reader holds an open descriptor (the response's sendfile fd,
 * or a fetch's staging fd, which after the rename is the published file),
 * and an unlinked file stays readable through it until closed.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_evict.h"
#include "mirror_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

/* ---- eviction ---- */

/* The cache's rule: a repository is the mirror's when its first path
 * component names an upstream ("<upstream>/<repo>"). */
bool pc_evict_repo_mirrored(const char *repo, void *rule)
{
    const pc_evict_rule *r = rule;
    const char *slash = strchr(repo, '/');
    if (!slash || !r)
        return false;
    size_t n = (size_t)(slash - repo);
    for (size_t i = 0; i < r->nups; i++)
        if (r->upstreams[i] && strlen(r->upstreams[i]) == n && memcmp(r->upstreams[i], repo, n) == 0)
            return true;
    return false;
}

int pc_evict_run(pc_registry *reg, const char *const *upstreams, size_t nups, uint64_t max_size,
                 bool dry, pc_evict_busy_fn busy, void *busy_ctx, pc_evict_stats *st)
{
    pc_registry_lru_entry *c = NULL;
    size_t n = 0;
    int rc;

    pc_evict_rule rule = {upstreams, nups};
    memset(st, 0, sizeof(*st));
    /* what is really stored, least recently used first (registry.h) */
    if ((rc = pc_registry_cache_lru(reg, pc_evict_repo_mirrored, &rule, dry, &c, &n)))
        return rc;
    for (size_t i = 0; i < n; i++)
        st->mirrored_bytes += c[i].size;
    uint64_t total = st->mirrored_bytes;
    for (size_t i = 0; i < n && total > max_size; i++) {
        const pc_registry_lru_entry *k = &c[i];
        if (!k->size)
            continue;
        if (busy && busy(&k->d, busy_ctx)) {
            st->skipped++;
            continue;
        }
        if (!dry) {
            int erc = pc_registry_cache_evict(reg, &k->d, pc_evict_repo_mirrored, &rule);
            if (erc == PC_EEXISTS) { /* a local push linked it meanwhile: it stays */
                st->skipped++;
                continue;
            }
            if (erc) {
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
    free(c);
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

int pc_mirror_store_gauges(pc_mirror *m)
{
    uint64_t acc[2] = {0, 0};
    int rc = pc_registry_store_usage(m->reg, &acc[0], &acc[1]);
    if (rc)
        return rc;
    pc_metrics_gauge_add("pullcache_store_blobs", NULL,
                         (int64_t)acc[0] - pc_metrics_value("pullcache_store_blobs", NULL));
    pc_metrics_gauge_add("pullcache_store_bytes", NULL,
                         (int64_t)acc[1] - pc_metrics_value("pullcache_store_bytes", NULL));
    return 0;
}
