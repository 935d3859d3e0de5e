/*
 * mirror_evict.h - keeping the pull-through cache under its size cap, and garbage
 * collection of the blob store.
 *
 * Eviction removes mirrored blobs, least recently used first, until the
 * mirrored blobs that nothing local holds fit in max_size. Pushed (local)
 * content is never evicted, nor a blob a local repository shares, nor
 * manifests (small; they keep a mirrored image's tags working, and a later
 * pull re-fetches an evicted layer on demand).
 *
 * The sweep (registry_gc.c, declared in registry.h) removes published
 * blobs that nothing in the meta store references any more and that are
 * older than a grace period (so content published a moment ago by a push
 * or fetch whose link is still on its way stays).
 *
 * Both may run while a daemon uses the same data directory: the meta store
 * is SQLite in WAL mode and the filesystem blob store publishes by rename.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_EVICT_H
#define PC_EVICT_H

#include "pc.h"
#include "config.h"
#include "mirror.h"
#include "registry.h"

/* What a run of pc_evict_run() did (or would do, when dry). */
typedef struct {
    uint64_t mirrored_bytes; /* evictable mirrored bytes before the run */
    uint64_t freed_bytes;    /* removed (or, dry, that would be) */
    unsigned long freed;     /* blobs removed */
    unsigned long skipped;   /* over the cap but busy or held meanwhile */
} pc_evict_stats;

/* Which repositories are the mirror's: those whose first path component
 * is one of the nups names in upstreams. */
typedef struct {
    const char *const *upstreams;
    size_t nups;
} pc_evict_rule;

/* The rule as the registry's predicate (rule: a pc_evict_rule). */
bool pc_evict_repo_mirrored(const char *repo, void *rule);

/* Whether blob d is in use right now and must stay (a fetch of it runs). */
typedef bool (*pc_evict_busy_fn)(const pc_digest *d, void *ctx);

/* Evict mirrored blobs of reg, least recently used first, until at most
 * max_size bytes of them remain. upstreams (nups names) say which
 * repositories are the mirror's ("<upstream>/..."). busy (may be NULL) is
 * asked before each removal. dry: only count. *st is filled. 0 or < 0 (a
 * store failed: message set; *st tells what was done before). */
int pc_evict_run(pc_registry *reg, const char *const *upstreams, size_t nups, uint64_t max_size,
                 bool dry, pc_evict_busy_fn busy, void *busy_ctx, pc_evict_stats *st);

/* The configured upstream names as an array for pc_evict_run(); *out is
 * the caller's (free() the array only; the names are cfg's). 0 or
 * PC_ENOMEM. */
int pc_evict_upstreams(const pc_config *cfg, const char ***out, size_t *n);

/* pc_evict_run() for a running mirror: its upstreams, skipping blobs being
 * fetched now; max_size 0 is no cap (only counts). Updates the metrics
 * pullcache_cache_mirrored_bytes (what stays), pullcache_cache_evictions_total
 * and pullcache_cache_evicted_bytes_total. *st is filled. */
int pc_mirror_evict(pc_mirror *m, uint64_t max_size, pc_evict_stats *st);

/* Count the published blobs and their bytes into the gauges
 * pullcache_store_blobs and pullcache_store_bytes. 0 or < 0. */
int pc_mirror_store_gauges(pc_mirror *m);

/* Garbage collection (pc_gc_sweep, pc_gc_stats) is the registry's: registry.h. */

#endif
