/*
 * budget.h - the pull budget `serve` has seen for each upstream and
 * credential: the last ratelimit-limit / ratelimit-remaining / window /
 * docker-ratelimit-source an upstream sent, its last 429 and Retry-After,
 * and a state the cache acts on:
 *
 *   unknown    nothing seen yet (the upstream sent no ratelimit headers)
 *   ok         remaining >= reserve (or not known)
 *   reserve    0 < remaining < reserve
 *   exhausted  remaining == 0, or the upstream answered 429
 *
 * What the cache does about it is opt-in: an entry with a reserve (> 0)
 * holds back in reserve and exhausted (cached tags are served without
 * revalidation, so what is left goes to images not cached yet) and, while
 * a 429's Retry-After runs, has counted requests wait. With reserve 0 (the
 * default: never hold back) the budget is only tracked and reported.
 *
 * A reserve or exhausted state lapses back to ok on its own when the
 * observation can no longer be true: a 429's Retry-After has passed, or
 * the rate-limit window has passed since it was seen (a sliding window has
 * forgotten every pull counted in it), or - when the upstream named no
 * window - PC_BUDGET_BACKOFF seconds after a bare 429 and
 * PC_BUDGET_UNWINDOWED seconds after other observations. Any later response
 * with headers replaces the observation at once.
 *
 * One line is logged when an entry enters reserve, enters exhausted, or
 * returns to ok from either (upstream, credential identity, limit,
 * remaining, window; never a secret).
 *
 * Thread-safe. pc_budget_check(), _holds() and _wait() are lock-free
 * unless a state lapses; the other calls take one short mutex.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_BUDGET_H
#define PC_BUDGET_H

#include "pc.h"
#include "config.h"
#include "ratelimit.h"
#include "upstream.h"

/* Seconds a bare 429 (no Retry-After, no window) keeps an entry exhausted. */
#define PC_BUDGET_BACKOFF 60
/* Seconds a reserve/exhausted observation without a window is trusted. */
#define PC_BUDGET_UNWINDOWED 300

typedef enum {
    PC_BUDGET_UNKNOWN = 0,
    PC_BUDGET_OK,
    PC_BUDGET_RESERVE,
    PC_BUDGET_EXHAUSTED,
} pc_budget_state;

typedef struct pc_budget pc_budget;

/* The clock, in unix seconds; tests inject their own. */
typedef int64_t (*pc_budget_clock)(void *ctx);

/* What one entry knows. Numbers are -1 when not known. */
typedef struct {
    char upstream[129];
    char credential[257]; /* a user name, "anonymous" or "token"; never a secret */
    int64_t reserve;
    pc_budget_state state; /* now (lapses applied) */
    int64_t limit;         /* as last seen */
    int64_t remaining;
    int64_t window;                       /* seconds */
    char source[PC_RATELIMIT_SOURCE_MAX]; /* docker-ratelimit-source, "" if none */
    int64_t seen_at;                      /* unix time of the last headers, 0 never */
    int64_t last_429_at;                  /* unix time of the last 429, 0 never */
    int64_t retry_at; /* the last 429's Retry-After deadline, 0 none or passed */
} pc_budget_info;

/* A tracker for at most capacity entries. clock NULL = time(2). *out is the
 * caller's (pc_budget_free). 0 or PC_ENOMEM. */
int pc_budget_new(pc_budget **out, int capacity, pc_budget_clock clock, void *clock_ctx);
void pc_budget_free(pc_budget *b);

/* Add the entry for (upstream, credential) with a reserve (0 = never hold
 * back). Returns its index (>= 0), PC_EEXISTS when that pair exists,
 * PC_ELIMIT when the tracker is full, PC_EINVAL for an empty or overlong
 * name. Not concurrent with the other calls (set-up only). */
int pc_budget_add(pc_budget *b, const char *upstream, const char *credential, int64_t reserve);

/* The index of (upstream, credential), or PC_ENOTFOUND. */
int pc_budget_find(const pc_budget *b, const char *upstream, const char *credential);

/* The number of entries. */
int pc_budget_count(const pc_budget *b);

/* The credential identity an upstream's configuration gives: its username,
 * "token" for a static token, else "anonymous". Borrowed from u or static. */
const char *pc_budget_credential(const pc_config_upstream *u);

/* Learn from one upstream response to entry i: its ratelimit headers when
 * they parse (malformed or absent ones are ignored), and a 429 (with or
 * without headers) marks the entry exhausted until its Retry-After, its
 * window or PC_BUDGET_BACKOFF passes. Other responses change nothing. */
void pc_budget_observe(pc_budget *b, int i, const pc_upstream_resp *r);

/* The state of entry i now. *retry_in (may be NULL) is the number of
 * seconds until the last 429's Retry-After passes, 0 when there is none:
 * while it is > 0 nothing should be asked upstream that the limit counts.
 * Lock-free except when a state lapses (then it is logged). */
pc_budget_state pc_budget_check(pc_budget *b, int i, int64_t *retry_in);

/* Whether cached tags past their tag_ttl are served as they are now: entry
 * i has a reserve (> 0) and is in reserve or exhausted. */
bool pc_budget_holds(pc_budget *b, int i);

/* Seconds a request the limit counts (a manifest GET) should not be sent
 * for: entry i has a reserve (> 0) and a 429's Retry-After still runs.
 * 0 = go ahead. */
int64_t pc_budget_wait(pc_budget *b, int i);

/* A copy of entry i with its current state. 0 or PC_ENOTFOUND. */
int pc_budget_get(pc_budget *b, int i, pc_budget_info *out);

/* "unknown", "ok", "reserve", "exhausted". */
const char *pc_budget_state_str(pc_budget_state s);

/* Every entry as Prometheus text (families pullcache_upstream_ratelimit_*,
 * HELP and TYPE included), malloc'd, the caller's; NULL when out of
 * memory. b may be NULL (renders ""). */
char *pc_budget_metrics(pc_budget *b);

#endif
