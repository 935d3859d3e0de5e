/*
 * mirror_int.h - what mirror.c (routing, manifests), mirror_fetch.c (coalesced
 * blob fetches) and mirror_budget.c (the pull budget's say) share.
 * Internal to the mirror module.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_MIRROR_INT_H
#define PC_MIRROR_INT_H

#include <pthread.h>
#include <regex.h>

#include "budget.h"
#include "history.h"
#include "mirror.h"

typedef struct {
    pc_upstream *client;
    const pc_config_upstream *cfg;
    char host[300];          /* the URL's host[:port], also accepted as ns= */
    char labels[200];        /* upstream="name", rendered for metrics */
    pc_mirror_health health; /* guarded by the mirror's lock */
    regex_t *immutable;      /* cfg->immutable_tags, compiled */
    unsigned nimmutable;
    /* the budget's shared note (mirror_budget.c), under the mirror's lock */
    int64_t budget_looked_ms;  /* when this process last read it (monotonic) */
    int64_t budget_applied_ms; /* the stamp of the last one applied or written */
} pc_mirror_up;

struct pc_mirror {
    const pc_config *cfg;
    pc_registry *reg;
    pc_mirror_up *ups;
    int nups;
    int def;           /* default upstream index, -1 for none */
    bool strict;       /* access control: a blob is served for a mirrored repository only
                        * when it came from that repository (pc_mirror_set_strict) */
    pc_budget *budget; /* entry i is upstream i with its credential */

    pthread_mutex_t lock; /* guards fetches, nfetch_threads, fetch_pool */
    pthread_cond_t idle;
    struct pc_fetch *fetches;
    struct pc_mflight *mflights; /* manifest exchanges in progress */
    int nfetch_threads;          /* fetch jobs queued or running */
    struct pc_jobpool
        *fetch_pool; /* cache.fetch_workers workers, started on first use (mirror_fetch.c) */
    volatile int stopping;

    struct pc_mirror_list *lists; /* upstream tag lists (mirror_lists.c), own lock */
    pthread_mutex_t lists_lock;

    /* Processes sharing the stores (mirror_fetch.c): this one as the owner
     * of a fetch lease ("<node> <advertise URL or ->"), the thread that
     * keeps its fetch leases alive, clients for the replicas it streams
     * from (guarded by lock). */
    char owner[PC_LEASE_OWNER_MAX];
    pthread_t heartbeat;
    bool heartbeat_on;
    pthread_cond_t heartbeat_cv;
    struct {
        char url[PC_LEASE_OWNER_MAX];
        pc_upstream *client;
    } peers[8];
    unsigned npeers;

    /* the status page (mirror_stats.c, mirror_history.c), own locks */
    struct pc_mirror_stats *stats;
    struct pc_mirror_hist *hist; /* NULL until pc_mirror_history_start */
};

/* Set m->owner from the registry's node and cluster.advertise (mirror_fetch.c). */
void pc_fetch_coord_init(pc_mirror *m);
/* Stop the heartbeat thread and free the peer clients (after the fetch
 * pool stopped). */
void pc_fetch_coord_free(pc_mirror *m);

/* Mark out as a stale answer (Warning: 299), counted and logged. */
void pc_mirror_stale(pc_mirror *m, const pc_mirror_target *t, const pc_upstream_resp *r,
                     const char *kind, pc_mirror_outcome *out);

/* Free the cached tag lists (mirror_lists.c). */
void pc_mirror_lists_free(pc_mirror *m);

/* Fill out from an upstream failure (kind: "manifest" or "blob"). */
void pc_mirror_fail(pc_mirror *m, const pc_mirror_target *t, const pc_upstream_resp *r,
                    const char *kind, pc_mirror_outcome *out);

/* Count one upstream request (and its error class when it failed), and
 * feed its ratelimit headers (or its 429) to the upstream's budget. r is
 * NULL when the exchange did not happen. */
void pc_mirror_count(pc_mirror *m, const pc_mirror_target *t, const char *kind, const char *method,
                     const pc_upstream_resp *r);

/* Tell the processes sharing the stores what upstream i's response r
 * said about its pull budget (its ratelimit headers, a 429): the note
 * "budget:<upstream>:<credential>" (mirror_budget.c). Nothing when r says
 * nothing about it. */
void pc_mirror_budget_share(pc_mirror *m, int i, const pc_upstream_resp *r);

/* The pull budget's say (mirror_budget.c). Whether a tag past its tag_ttl
 * is served as it is, without the HEAD, because the upstream has a reserve
 * and its budget is in reserve or exhausted (counted in
 * pullcache_budget_skipped_revalidations_total). No Warning header goes
 * with it: the upstream did not fail, the cache chose not to ask. */
bool pc_mirror_budget_skips(pc_mirror *m, const pc_mirror_target *t);

/* Whether a manifest GET must not go upstream because the upstream has a
 * reserve and a 429's Retry-After still runs; then *out is the 429 the
 * client gets (counted in pullcache_budget_refused_total). */
bool pc_mirror_budget_refuses(pc_mirror *m, const pc_mirror_target *t, pc_mirror_outcome *out);

/* Stop the fetch pool (after m->stopping is set): the queued fetches run
 * and end, the workers are joined (mirror_fetch.c). */
void pc_fetch_pool_stop(pc_mirror *m);

/* Whether a fetch of d runs now (eviction leaves such blobs alone). */
bool pc_fetch_running(pc_mirror *m, const pc_digest *d);

/* ---- the status page (mirror_stats.c, mirror_history.c) ---- */

/* Upstream i's counters since start, as metrics.h has them: manifests and
 * blobs answered from the cache, fetched, served stale; manifest hits
 * (pulls the upstream did not count); manifest GETs sent upstream; bytes
 * received from it; bytes served from the cache instead
 * (pullcache_cache_hit_bytes_total); its 429s. */
typedef struct {
    int64_t hits, misses, stale, manifest_hits, pulls, bytes, avoided, n429;
} pc_mirror_totals;
void pc_mirror_stats_totals(pc_mirror *m, int i, pc_mirror_totals *out);

/* The image table and the error ring: made with the mirror. 0 or PC_ENOMEM. */
int pc_mirror_stats_new(pc_mirror *m);
void pc_mirror_stats_free(pc_mirror *m);

/* Keep upstream failure r (of a kind/method request for t) among the
 * recent errors. */
void pc_mirror_stats_error(pc_mirror *m, const pc_mirror_target *t, const char *kind,
                           const char *method, const pc_upstream_resp *r);

/* The fetches running now, as the status document lists them
 * (mirror_fetch.c). New reference (an empty array when out of memory). */
json_t *pc_fetch_list_json(pc_mirror *m);

/* Stop the history's sampler (its last write done); free it. */
void pc_mirror_history_stop(pc_mirror *m);
void pc_mirror_history_free(pc_mirror *m);

#endif
