/*
 * limiter.h - Docker-Hub-style pull limits for the registry's own clients:
 * a budget of pulls per sliding window, per key. A key is a client address
 * (IPv4 as is, IPv6 per /64, IPv4-mapped IPv6 as IPv4) for anonymous
 * clients, "user:NAME" for an account; keys that start with "user:" get
 * the authenticated budget, every other key the anonymous one.
 *
 * The window is cut into buckets of B = ceil(window / 60) seconds (at least
 * 1): at most 60 per key. Bucket i covers unix seconds [i*B, (i+1)*B); at
 * time t the window holds the N = ceil(window / B) buckets up to and
 * including bucket t/B. So a pull made at t is forgotten at the start of
 * bucket t/B + N: between N*B - B and N*B seconds later (N*B = window when
 * B divides it). Counts leave the window bucket by bucket.
 *
 * Counts live in memory (sharded hash tables, one short mutex hold per
 * take) so the manifest path never waits on storage. With a meta store,
 * changed buckets are written every flush_every_ms (a thread of the
 * limiter's own) and when the limiter is freed, and unexpired ones are
 * loaded when it is made: counts survive a restart. A SIGKILL loses what
 * changed since the last flush (about a second).
 *
 * Several replicas behind one meta store count together when the limiter
 * is shared (opts.shared): every take is then a conditional increment in
 * the store (pc_meta_limit_ops.limit_take), exact across processes.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_LIMITER_H
#define PC_LIMITER_H

#include "pc.h"
#include "registry.h"

#include <sys/socket.h>

typedef struct pc_limiter pc_limiter;

/* The longest key (an account name is cut to fit nowhere: longer keys are
 * refused). */
#define PC_LIMITER_KEY_MAX 300
#define PC_LIMITER_ACCOUNT_PREFIX "user:"

/* One budget: `pulls` per `window` seconds (both at least 1). */
typedef struct {
    unsigned pulls;
    unsigned window;
} pc_limit_rule;

typedef struct {
    pc_limit_rule anonymous;
    pc_limit_rule authenticated;
    /* Whose meta store the counts persist in (pc_registry_limit_save;
     * borrowed, must outlive the limiter); NULL: memory only. */
    pc_registry *store;
    /* With a store: count in it on every take (limit_take), not in
     * memory, so that every process sharing the store counts against one
     * budget (replicas: the 101st pull is refused whichever answers). A
     * take then costs one meta store transaction. */
    bool shared;
    /* How often the flush thread writes changed buckets; 0: no thread
     * (call pc_limiter_flush yourself). */
    unsigned flush_every_ms;
    /* Keys tracked at most (0: 1,000,000). A key beyond it is not counted
     * (pc_limiter_take says PC_ENOMEM) until idle keys leave. */
    size_t max_keys;
    /* The clock for loading, flushing and freeing, unix seconds; NULL:
     * time(NULL). Takes are given their time. */
    int64_t (*clock)(void *ctx);
    void *clock_ctx;
} pc_limiter_opts;

/* What a take found. */
typedef struct {
    bool allowed;         /* false: the budget is spent (a counted take was refused) */
    bool authenticated;   /* which budget applied */
    unsigned limit;       /* pulls per window */
    unsigned window;      /* seconds */
    unsigned remaining;   /* pulls left now (after this one when counted); never negative */
    unsigned retry_after; /* refused: seconds until a pull is allowed again; else 0 */
} pc_limit_result;

/* Make a limiter; with a store, load its unexpired counts and start the
 * flush thread when asked. *out is the caller's (pc_limiter_free). 0,
 * PC_EINVAL (a rule of 0), PC_ENOMEM, or the store's error. */
int pc_limiter_new(pc_limiter **out, const pc_limiter_opts *opts);

/* Stop the flush thread, write what changed (when there is a store), free.
 * NULL is fine. */
void pc_limiter_free(pc_limiter *l);

/* The budget of key at unix second now. count: a pull that spends one
 * (a manifest GET); otherwise only look (a HEAD: always allowed, costs
 * nothing, never creates a key). *out is filled in every case. Returns 0
 * (allowed; counted when count), PC_ELIMIT (count and the budget is spent:
 * not counted, message set), PC_ENOMEM (the key cannot be tracked: allowed,
 * not counted), PC_EINVAL (an empty or too long key). */
int pc_limiter_take(pc_limiter *l, const char *key, int64_t now, bool count, pc_limit_result *out);

/* Write the buckets changed since the last flush to the store and drop
 * expired ones there (at least once a minute); once a minute, forget the
 * keys whose window is empty. 0 or the store's error (the buckets stay
 * marked to be written). No store: 0. */
int pc_limiter_flush(pc_limiter *l, int64_t now);

/* The limiter's clock (opts.clock or time(NULL)). */
int64_t pc_limiter_now(const pc_limiter *l);

/* The key of a client address into buf: "192.0.2.1", "2001:db8:1:2::/64"
 * (IPv6 masked to its /64), IPv4-mapped IPv6 as IPv4. 0, or PC_EINVAL (not
 * an IP address, or buf too small). */
int pc_limiter_key_from_addr(const struct sockaddr *sa, char *buf, size_t size);

/* The key of an account: "user:NAME". 0 or PC_EINVAL (empty or too long). */
int pc_limiter_key_from_account(const char *account, char *buf, size_t size);

#endif
