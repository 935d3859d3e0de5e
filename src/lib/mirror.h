/*
 * mirror.h - the pull-through cache: which requests go to which upstream,
 * and how manifests and blobs of mirrored repositories are answered from
 * the cache, revalidated, fetched and kept when the upstream fails.
 *
 * Mirrored content lives in the ordinary stores under the repository name
 * "<upstream>/<repo>" ("docker.io/library/nginx"); those names are
 * read-only for clients.
 *
 * Functions marked "may block" talk to the upstream and must not run on
 * an HTTP worker thread (the server runs them on its request job pool).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_MIRROR_H
#define PC_MIRROR_H

#include <jansson.h>

#include "pc.h"
#include "budget.h"
#include "config.h"
#include "history.h"
#include "registry.h"
#include "upstream.h"

typedef struct pc_mirror pc_mirror;

/* Build the mirror for every upstream of cfg (credentials are read from
 * their files or environment variables now). cfg and reg are borrowed and
 * must outlive the mirror. *out is the caller's (pc_mirror_free). 0,
 * PC_EINVAL (a credential file is unreadable: message set), PC_ENOMEM. */
int pc_mirror_new(pc_mirror **out, const pc_config *cfg, pc_registry *reg);

/* Stop: abort fetches, wait (bounded) for running jobs, free. */
void pc_mirror_free(pc_mirror *m);

/* Abort running fetches and wait (at most 15 s) for their threads. */
void pc_mirror_stop(pc_mirror *m);

/* Where a request for a repository goes. */
typedef enum {
    PC_MIRROR_LOCAL,    /* the private registry, the name as requested */
    PC_MIRROR_UPSTREAM, /* an upstream's read-only mirror */
    PC_MIRROR_FOREIGN,  /* names a registry that is not configured: refused */
} pc_mirror_where;

typedef struct {
    pc_mirror_where where;
    bool by_default;             /* a bare name served from the default upstream */
    int upstream;                /* index into the configured upstreams, -1 if none */
    const char *name;            /* upstream name (borrowed from the config) */
    char repo[PC_NAME_MAX + 1];  /* repository at the upstream */
    char local[PC_NAME_MAX + 1]; /* repository name in our stores */
    long tag_ttl;
    char foreign[PC_HOST_MAX]; /* FOREIGN: the registry named (ns= or first component) */
} pc_mirror_target;

/* Route a request for repository `name` (as requested) with containerd's
 * ns query parameter (NULL when absent), by the rule in mirror.c; the
 * answer depends on the configuration only, never on stored content.
 * 0 when mirrored (t->where UPSTREAM), PC_ENOTFOUND for the private
 * registry (LOCAL), PC_EUPSTREAM when it names a registry that is not
 * configured (FOREIGN, t->foreign; message set), PC_EINVAL when the
 * upstream's repository name would be invalid (message set). */
int pc_mirror_route(pc_mirror *m, const char *name, const char *ns, pc_mirror_target *t);

/* The pull budgets seen for the upstreams: entry i is upstream i (see
 * budget.h). Borrowed; lives as long as the mirror. */
pc_budget *pc_mirror_budget(pc_mirror *m);

/* How upstream i answered lately (for /readyz and the status page). */
typedef struct {
    int64_t last_ok_at;     /* unix seconds of the last answer that was no failure, 0: never */
    int64_t last_error_at;  /* unix seconds of the last failure, 0: never */
    char last_error[32];    /* its class (pc_up_class_str), "" when none */
    unsigned long failures; /* failures since the last good answer */
} pc_mirror_health;

/* A copy of upstream i's health. 0, or PC_ENOTFOUND for no such upstream. */
int pc_mirror_health_get(pc_mirror *m, int i, pc_mirror_health *out);

/* The rendered metrics label of upstream i (upstream="name"). */
const char *pc_mirror_labels(pc_mirror *m, int i);

/* Whether `name` (without ns=) is not the private registry's: a mirror's
 * (by prefix or the default upstream) or a foreign registry's, so writes to
 * it must be refused. */
bool pc_mirror_readonly(pc_mirror *m, const char *name);

/* With access control on, a blob already in the store (say, pushed to a
 * private repository) must not be served under a mirrored name unless it
 * was fetched for that repository: strict mode asks the upstream first
 * (a fetch) instead of linking whatever the store holds. Default off (the
 * digest alone is enough: every client may read everything anyway). */
void pc_mirror_set_strict(pc_mirror *m, bool strict);

/* The outcome of a mirrored request when it is not a plain answer. */
typedef struct {
    bool stale;        /* answered from the cache while the upstream failed */
    char warning[300]; /* the Warning header value when stale */
    unsigned status;   /* on failure: the HTTP status for the client */
    char code[32];     /* registry error code */
    char message[512];
    char retry_after[64];
} pc_mirror_outcome;

/* Whether t's upstream is offline (upstreams[].offline): only what is
 * cached is served; a miss is 404 (pc_mirror_offline_miss) and nothing is
 * ever sent upstream. */
bool pc_mirror_offline(pc_mirror *m, const pc_mirror_target *t);

/* The 404 of a miss at an offline upstream (kind: manifest, blob, tags). */
void pc_mirror_offline_miss(const pc_mirror_target *t, const char *kind, pc_mirror_outcome *out);

/* A manifest answer without upstream contact: a tag confirmed within its
 * tag_ttl, a tag matching the upstream's immutable_tags, any cached tag of
 * an offline upstream, a tag past it while the upstream has a reserve and its pull
 * budget is in reserve or exhausted (served as it is, no Warning), or a
 * digest we have. 0 with *rec, or PC_ENOTFOUND. */
int pc_mirror_manifest_cached(pc_mirror *m, const pc_mirror_target *t, const char *reference,
                              pc_manifest_rec *rec);

/* May block. Revalidate (HEAD) or fetch (GET) the manifest and store it.
 * 0 with *rec (out->stale when served from the cache because the upstream
 * failed), or < 0 with out->status/code/message for the client. For an
 * upstream with a reserve, no GET is sent while a 429's Retry-After runs:
 * the client gets 429 TOOMANYREQUESTS with the seconds left. */
int pc_mirror_manifest_fetch(pc_mirror *m, const pc_mirror_target *t, const char *reference,
                             pc_manifest_rec *rec, pc_mirror_outcome *out);

/* A blob we have (in this mirror repository or anywhere in the blob store,
 * since content is verified by digest). 0 with *size, or PC_ENOTFOUND. */
int pc_mirror_blob_cached(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d,
                          uint64_t *size);

/* May block. HEAD of an uncached blob: ask upstream with a HEAD. 0 with
 * *size (-1 when upstream sent none), or < 0 with *out filled. */
int pc_mirror_blob_head(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d, int64_t *size,
                        pc_mirror_outcome *out);

/* ---- tag lists (mirror_lists.c) ---- */

/* The upstream's whole tag list of t (sorted, unique) when fetched less than
 * its tag_ttl ago. 0 with *tags (an array, the caller's), or PC_ENOTFOUND. */
int pc_mirror_tags_cached(pc_mirror *m, const pc_mirror_target *t, json_t **tags);

/* May block. Fetch every page of the upstream's tag list of t and keep it
 * for tag_ttl. When the upstream fails, the last list fetched (however old)
 * or else the tags cached here, with out->stale and its Warning. 0 with
 * *tags (the caller's), PC_ENOTFOUND (404 at the upstream; out is the
 * NAME_UNKNOWN answer), or < 0 with out filled. */
int pc_mirror_tags(pc_mirror *m, const pc_mirror_target *t, json_t **tags, pc_mirror_outcome *out);

/* Drop the kept tag list of t (an operator's refresh or forget). */
void pc_mirror_lists_forget(pc_mirror *m, const pc_mirror_target *t);

/* One page of a sorted tag array as the tags/list document of `name`: the
 * tags after `last` (NULL or "": from the start), at most n (n < 0: all).
 * *more when tags are left (last_out: the page's last tag). 0 or
 * PC_ENOMEM. */
int pc_mirror_tags_page(json_t *tags, const char *name, const char *last, long n, char **json,
                        bool *more, char *last_out, size_t last_size);

/* ---- referrers (mirror_lists.c) ---- */

/* The upstream's referrers of d in t (an array of descriptors) when asked
 * less than tag_ttl ago. 0 with *manifests (the caller's), or PC_ENOTFOUND. */
int pc_mirror_referrers_cached(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d,
                               json_t **manifests);

/* May block. Ask the upstream's referrers API, or without it the referrers
 * tag schema's index (sha256-<hex>; absent: none), and keep the answer for
 * tag_ttl. When the upstream fails, the last answer or the referrers cached
 * here, with out->stale. 0 with *manifests (the caller's), or < 0 with out
 * filled. */
int pc_mirror_referrers(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d,
                        json_t **manifests, pc_mirror_outcome *out);

/* The referrers index document of manifests, only those of artifact_type
 * when not NULL. 0 or PC_ENOMEM. */
int pc_mirror_referrers_index(json_t *manifests, const char *artifact_type, char **json);

/* ---- the status page (mirror_stats.c, mirror_history.c) ---- */

/* Count a client's manifest GET of t by tag `reference` among the most
 * pulled images (a reference by digest is not counted). */
void pc_mirror_stats_pull(pc_mirror *m, const pc_mirror_target *t, const char *reference);

/* What the status document adds for the page (docs/STATUS.md): traffic per
 * upstream since start, the fetches running, the most pulled images, the
 * recent upstream errors, the store's size against max_size. New reference,
 * or NULL when out of memory. */
json_t *pc_mirror_stats_json(pc_mirror *m);

/* Restore the history (history.h) from the meta store's notes and start
 * sampling it every PC_HISTORY_INTERVAL seconds (serve only; stopped, with
 * a last write, by pc_mirror_stop). 0, PC_ENOMEM or PC_ERR. */
int pc_mirror_history_start(pc_mirror *m);

/* The history, NULL before pc_mirror_history_start. Borrowed. */
pc_history *pc_mirror_history(pc_mirror *m);

/* ---- coalesced blob fetches ---- */

typedef struct pc_fetch pc_fetch;

/* Join the fetch of d (starting one when none runs). *out is a reference
 * released with pc_fetch_release(). Does not block. 0, PC_EEXISTS when the
 * blob was published meanwhile (serve it from the store), PC_ENOMEM,
 * PC_ERR. */
int pc_fetch_join(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d, pc_fetch **out);

/* May block until the upstream answered with headers or failed. 0 with
 * *size (-1 when unknown), or < 0 with *out filled. */
int pc_fetch_wait_start(pc_fetch *f, int64_t *size, pc_mirror_outcome *out);

/* How a reader that found no data waits: suspend(ctx) is called with the
 * fetch locked (so no wake-up can be lost), resume(ctx) later from the
 * fetch thread when data arrived or the fetch ended. */
typedef struct pc_fetch_waiter {
    void (*suspend)(void *ctx);
    void (*resume)(void *ctx);
    void *ctx;
} pc_fetch_waiter;

/* Read up to max bytes at pos. Returns bytes read (> 0); 0 when no data yet
 * (w->suspend was called; read again after w->resume); PC_ENOTFOUND at the
 * verified end; PC_ERR when the fetch failed (the client's transfer must
 * end short). The last byte is only handed out once the digest is
 * verified. */
long pc_fetch_read(pc_fetch *f, uint64_t pos, void *buf, size_t max, pc_fetch_waiter *w);

/* Forget a waiter that is going away (connection closed). */
void pc_fetch_unwait(pc_fetch *f, pc_fetch_waiter *w);

/* pc_fetch_wait_start without blocking, for a waiter that holds no thread
 * (a suspended request: no job-pool worker waits for a fetch to start).
 * 1 while the fetch is still starting: w->resume(w->ctx) is then called
 * once, from the fetch, when it started or failed (w->suspend is not
 * used); call pc_fetch_wait_start then, which no longer blocks. 0 when it
 * has started already, PC_EUPSTREAM when it failed (as
 * pc_fetch_wait_start), PC_ENOMEM (nothing registered). */
int pc_fetch_when_started(pc_fetch *f, pc_fetch_waiter *w);

void pc_fetch_release(pc_fetch *f);

#endif
