/*
 * limiter.c - the client pull limiter behind limiter.h: per-key rings of
 * bucket counts in sharded hash tables, the window arithmetic, the flush
 * to and load from the meta store, and client address keys.
 *
 * Layout: 64 shards, each a mutex, a chained hash table that doubles when
 * it holds as many keys as chains, and a list of the keys changed since
 * the last flush. A key's entry holds its rule's N bucket counts as a ring
 * (bucket i in slot i % N), the newest bucket the ring holds, and the sum
 * of the ring. A take hashes the key, locks its shard, moves the ring up
 * to the current bucket (zeroing the buckets that left the window), and
 * compares and increments: no allocation except for a key's first pull.
 *
 * Stored rows are (key, bucket start second, count, expiry second). When
 * the rows loaded at start were cut with other bucket widths (the window
 * changed in the configuration), the first flush replaces every stored
 * row with the buckets as they are now, so nothing is counted twice.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "limiter.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSHARDS 64
#define SHARD_BITS 6
#define MAX_BUCKETS 60
#define DEFAULT_MAX_KEYS 1000000
#define CLEAN INT64_MAX  /* dirty_from of an entry with nothing to write */
#define PRUNE_EVERY_S 60 /* expired rows are dropped from the store this often when idle */
#define SWEEP_EVERY_S 60 /* idle keys are forgotten this often (and when a shard is full) */

_Static_assert(NSHARDS == 1 << SHARD_BITS, "NSHARDS is 2^SHARD_BITS");

/* Docker Hub's message, so that clients show what they show for it. */
static const char limit_message[] =
    "You have reached your pull rate limit. You may increase the limit by authenticating and "
    "upgrading: https://www.docker.com/increase-rate-limit";

typedef struct {
    unsigned pulls, window;
    int64_t width; /* seconds per bucket */
    unsigned n;    /* buckets in the window */
    bool authenticated;
} rule;

typedef struct entry {
    struct entry *next;       /* hash chain */
    struct entry *dirty_next; /* the shard's dirty list, while dirty_from != CLEAN */
    uint64_t hash;
    int64_t newest;     /* the bucket slots[newest % n] holds */
    int64_t dirty_from; /* the oldest bucket changed since the last flush */
    uint64_t total;     /* the sum of slots */
    const rule *r;
    char *key; /* after slots */
    uint32_t slots[];
} entry;

typedef struct {
    pthread_mutex_t lock;
    entry **tab;
    size_t nchains; /* a power of two, or 0 before the first key */
    size_t count;
    entry *dirty;
} shard;

struct pc_limiter {
    rule rules[2]; /* anonymous, authenticated */
    pc_registry *store;
    bool shared; /* count in the store, not in memory */
    size_t max_per_shard;
    int64_t (*clock)(void *ctx);
    void *clock_ctx;
    shard shards[NSHARDS];

    pthread_mutex_t flush_lock; /* one flush at a time; guards the fields below */
    bool rewrite;               /* the next flush replaces every stored row */
    int64_t last_prune;
    int64_t last_sweep;

    unsigned flush_every_ms;
    bool thread_started;
    pthread_t thread;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
};

/* FNV-1a over the key, then MurmurHash3's 64-bit finalizer. FNV-1a alone
 * leaves its top bits (the shard) nearly unchanged by a key's last bytes:
 * the 256 addresses of one /24 went to 4 of the 64 shards and filled them
 * 16 times early. The finalizer makes every output bit depend on every
 * input bit, for the shard (top bits) and the chain (bottom bits) alike. */
static uint64_t key_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

static shard *shard_of(pc_limiter *l, uint64_t hash)
{
    return &l->shards[hash >> (64 - SHARD_BITS)];
}

static const rule *rule_of(const pc_limiter *l, const char *key)
{
    bool account =
        strncmp(key, PC_LIMITER_ACCOUNT_PREFIX, sizeof(PC_LIMITER_ACCOUNT_PREFIX) - 1) == 0;
    return &l->rules[account ? 1 : 0];
}

static int64_t bucket_of(const rule *r, int64_t now)
{
    return now > 0 ? now / r->width : 0;
}

static int rule_init(rule *r, const pc_limit_rule *in, bool authenticated)
{
    if (!in->pulls || !in->window) {
        pc_error_set("pull limit: pulls and window must be at least 1");
        return PC_EINVAL;
    }
    r->pulls = in->pulls;
    r->window = in->window;
    r->width = ((int64_t)in->window + MAX_BUCKETS - 1) / MAX_BUCKETS;
    r->n = (unsigned)((in->window + r->width - 1) / r->width);
    r->authenticated = authenticated;
    return 0;
}

/* ---- entries ---- */

static entry *find(const shard *s, const char *key, uint64_t hash)
{
    if (!s->nchains)
        return NULL;
    for (entry *e = s->tab[hash & (s->nchains - 1)]; e; e = e->next)
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Move e's ring up to bucket cur (> e->newest): the buckets that left the
 * window are zeroed and leave the total. */
static void advance(entry *e, int64_t cur)
{
    unsigned n = e->r->n;
    if (cur - e->newest >= (int64_t)n) {
        memset(e->slots, 0, n * sizeof(e->slots[0]));
        e->total = 0;
    } else {
        for (int64_t b = e->newest + 1; b <= cur; b++) {
            uint32_t *slot = &e->slots[b % n];
            e->total -= *slot;
            *slot = 0;
        }
    }
    e->newest = cur;
}

static void mark_dirty(shard *s, entry *e, int64_t bucket)
{
    if (e->dirty_from == CLEAN) {
        e->dirty_next = s->dirty;
        s->dirty = e;
        e->dirty_from = bucket;
    } else if (bucket < e->dirty_from) {
        e->dirty_from = bucket;
    }
}

/* Whether every bucket of e has left the window at now. */
static bool idle(const entry *e, int64_t now)
{
    return e->dirty_from == CLEAN && e->newest + e->r->n <= bucket_of(e->r, now);
}

/* Forget the idle keys of s (locked). */
static void sweep(shard *s, int64_t now)
{
    for (size_t i = 0; i < s->nchains; i++) {
        entry **pp = &s->tab[i];
        while (*pp) {
            entry *e = *pp;
            if (idle(e, now)) {
                *pp = e->next;
                free(e);
                s->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static int grow(shard *s)
{
    size_t n = s->nchains ? s->nchains * 2 : 64;
    entry **tab = calloc(n, sizeof(*tab));
    if (!tab)
        return PC_ENOMEM;
    for (size_t i = 0; i < s->nchains; i++) {
        entry *e = s->tab[i];
        while (e) {
            entry *next = e->next;
            e->next = tab[e->hash & (n - 1)];
            tab[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->tab);
    s->tab = tab;
    s->nchains = n;
    return 0;
}

/* A new entry for key in s (locked), its ring at bucket cur. PC_ENOMEM
 * when the shard is full of keys that are not idle, or out of memory. */
static int insert(pc_limiter *l, shard *s, const char *key, uint64_t hash, const rule *r,
                  int64_t cur, int64_t now, entry **out)
{
    if (s->count >= l->max_per_shard)
        sweep(s, now);
    if (s->count >= l->max_per_shard) {
        pc_error_set("pull limiter: too many clients tracked");
        return PC_ENOMEM;
    }
    if (s->count >= s->nchains && grow(s))
        return PC_ENOMEM;
    size_t klen = strlen(key) + 1;
    entry *e = calloc(1, sizeof(*e) + r->n * sizeof(e->slots[0]) + klen);
    if (!e)
        return PC_ENOMEM;
    e->key = (char *)&e->slots[r->n];
    memcpy(e->key, key, klen);
    e->hash = hash;
    e->r = r;
    e->newest = cur;
    e->dirty_from = CLEAN;
    e->next = s->tab[hash & (s->nchains - 1)];
    s->tab[hash & (s->nchains - 1)] = e;
    s->count++;
    *out = e;
    return 0;
}

/* Seconds from now until enough of the oldest buckets of e (at bucket cur,
 * over its budget) leave the window for one more pull to fit. */
static unsigned retry_after(const entry *e, int64_t cur, int64_t now)
{
    const rule *r = e->r;
    uint64_t need = e->total - r->pulls + 1, gone = 0;
    int64_t b = cur - r->n + 1;
    for (; b < cur; b++) {
        if (b >= 0)
            gone += e->slots[b % r->n];
        if (gone >= need)
            break;
    }
    int64_t secs = (b + r->n) * r->width - now;
    return secs < 1 ? 1 : secs > UINT32_MAX ? UINT32_MAX : (unsigned)secs;
}

/* A take counted in the store, shared by every process on it. A store
 * that fails lets the pull through uncounted (PC_ENOMEM: as a key that
 * cannot be tracked): the limit is a courtesy to the upstream, never a
 * reason to fail a pull. */
static int shared_take(pc_limiter *l, const rule *r, const char *key, int64_t now, bool count,
                       pc_limit_result *out)
{
    int64_t cur = bucket_of(r, now);
    pc_meta_limit_take t;
    int rc = pc_registry_limit_take(l->store, key, cur * r->width, (cur - r->n + 1) * r->width,
                                    (cur + r->n) * r->width, r->pulls, count, &t);
    if (rc) {
        pc_log(PC_LOG_WARN, "pull limiter: the meta store did not count a pull of %s (%s)", key,
               pc_error_last());
        pc_error_set("pull limiter: the meta store cannot count");
        return PC_ENOMEM;
    }
    out->remaining = t.total >= r->pulls ? 0 : (unsigned)(r->pulls - t.total);
    if (count && !t.allowed) {
        int64_t secs = t.oldest >= 0 ? t.oldest + (int64_t)r->n * r->width - now : r->width;
        out->allowed = false;
        out->retry_after = secs < 1 ? 1 : secs > UINT32_MAX ? UINT32_MAX : (unsigned)secs;
        return PC_ELIMIT;
    }
    return 0;
}

int pc_limiter_take(pc_limiter *l, const char *key, int64_t now, bool count, pc_limit_result *out)
{
    const rule *r = rule_of(l, key ? key : "");
    memset(out, 0, sizeof(*out));
    out->allowed = true;
    out->authenticated = r->authenticated;
    out->limit = r->pulls;
    out->window = r->window;
    out->remaining = r->pulls;
    if (!key || !key[0] || strnlen(key, PC_LIMITER_KEY_MAX + 1) > PC_LIMITER_KEY_MAX) {
        pc_error_set("pull limiter: invalid key");
        return PC_EINVAL;
    }
    int rc = 0;
    if (l->shared) {
        rc = shared_take(l, r, key, now, count, out);
        goto counted;
    }
    uint64_t hash = key_hash(key);
    shard *s = shard_of(l, hash);
    int64_t cur = bucket_of(r, now);
    pthread_mutex_lock(&s->lock);
    entry *e = find(s, key, hash);
    if (!e && (!count || (rc = insert(l, s, key, hash, r, cur, now, &e))))
        goto done; /* a look at an unknown key, or one that cannot be tracked */
    if (cur > e->newest)
        advance(e, cur);
    else
        cur = e->newest; /* the clock went back: keep what was counted */
    if (count && e->total >= r->pulls) {
        out->allowed = false;
        out->retry_after = retry_after(e, cur, now);
        rc = PC_ELIMIT;
    } else if (count) {
        e->slots[cur % r->n]++;
        e->total++;
        if (l->store)
            mark_dirty(s, e, cur);
    }
    out->remaining = e->total >= r->pulls ? 0 : (unsigned)(r->pulls - e->total);
done:
    pthread_mutex_unlock(&s->lock);
counted:;
    const char *budget = r->authenticated ? "budget=\"authenticated\"" : "budget=\"anonymous\"";
    if (rc == PC_ELIMIT) {
        pc_error_set("%s", limit_message);
        pc_metrics_add("pullcache_limit_refused_total", budget, 1);
    } else if (rc == 0 && count) {
        pc_metrics_add("pullcache_limit_pulls_total", budget, 1);
    } else if (rc == PC_ENOMEM && count) {
        pc_metrics_add("pullcache_limit_untracked_total", budget, 1);
    }
    return rc;
}

/* ---- persistence ---- */

typedef struct {
    pc_meta_limit_row *v;
    size_t n, cap;
    int rc;
} rows;

static void rows_free(rows *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free((char *)rs->v[i].key);
    free(rs->v);
}

static void rows_add(rows *rs, const entry *e, int64_t b)
{
    if (rs->rc)
        return;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        pc_meta_limit_row *v = realloc(rs->v, cap * sizeof(*v));
        if (!v) {
            rs->rc = PC_ENOMEM;
            return;
        }
        rs->v = v;
        rs->cap = cap;
    }
    char *key = strdup(e->key);
    if (!key) {
        rs->rc = PC_ENOMEM;
        return;
    }
    rs->v[rs->n++] = (pc_meta_limit_row){key, b * e->r->width, e->slots[b % e->r->n],
                                         (b + e->r->n) * e->r->width};
}

/* The unexpired buckets of e from bucket `from` on, as rows. */
static void rows_of(rows *rs, const entry *e, int64_t from, int64_t now)
{
    int64_t first = e->newest - e->r->n + 1, cur = bucket_of(e->r, now);
    if (from < first)
        from = first;
    if (from <= cur - e->r->n)
        from = cur - e->r->n + 1;
    for (int64_t b = from < 0 ? 0 : from; b <= e->newest; b++)
        if (e->slots[b % e->r->n])
            rows_add(rs, e, b);
}

/* Gather into rs (when not NULL) what shard s must write (all its live
 * buckets when all), mark it clean, and (when forget) forget its idle keys. */
static void collect(shard *s, rows *rs, bool all, bool forget, int64_t now)
{
    pthread_mutex_lock(&s->lock);
    for (entry *e = s->dirty, *next; e; e = next) {
        next = e->dirty_next;
        if (rs && !all)
            rows_of(rs, e, e->dirty_from, now);
        e->dirty_from = CLEAN;
        e->dirty_next = NULL;
    }
    s->dirty = NULL;
    for (size_t i = 0; rs && all && i < s->nchains; i++)
        for (entry *e = s->tab[i]; e; e = e->next)
            rows_of(rs, e, INT64_MIN, now);
    if (forget)
        sweep(s, now);
    pthread_mutex_unlock(&s->lock);
}

/* After a failed save: the rows' buckets are to be written again. */
static void remark(pc_limiter *l, const rows *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        const char *key = rs->v[i].key;
        uint64_t hash = key_hash(key);
        shard *s = shard_of(l, hash);
        pthread_mutex_lock(&s->lock);
        entry *e = find(s, key, hash);
        if (e)
            mark_dirty(s, e, rs->v[i].bucket / e->r->width);
        pthread_mutex_unlock(&s->lock);
    }
}

int pc_limiter_flush(pc_limiter *l, int64_t now)
{
    rows rs = {0};
    int rc = 0;
    pthread_mutex_lock(&l->flush_lock);
    bool all = l->rewrite && l->store;
    bool forget = now < l->last_sweep || now - l->last_sweep >= SWEEP_EVERY_S;
    if (forget)
        l->last_sweep = now;
    for (int i = 0; i < NSHARDS; i++)
        collect(&l->shards[i], l->store ? &rs : NULL, all, forget, now);
    if (!l->store)
        goto done;
    if (rs.rc) {
        rc = rs.rc;
        pc_error_set("pull limiter: out of memory while saving counts");
        l->rewrite = true; /* what was gathered is lost: write everything next time */
        goto done;
    }
    if (rs.n || all || now - l->last_prune >= PRUNE_EVERY_S) {
        rc = pc_registry_limit_save(l->store, rs.v, rs.n, now, all);
        if (rc) {
            remark(l, &rs);
            goto done;
        }
        l->last_prune = now;
        l->rewrite = false;
    }
done:
    pthread_mutex_unlock(&l->flush_lock);
    rows_free(&rs);
    return rc;
}

/* A stored row back into memory at load. */
static int load_row(const pc_meta_limit_row *row, void *ctx)
{
    pc_limiter *l = ctx;
    int64_t now = pc_limiter_now(l);
    if (strnlen(row->key, PC_LIMITER_KEY_MAX + 1) > PC_LIMITER_KEY_MAX || row->bucket < 0)
        return 0;
    const rule *r = rule_of(l, row->key);
    int64_t b = row->bucket / r->width, cur = bucket_of(r, now);
    if (row->bucket % r->width || row->expires != (b + r->n) * r->width || b > cur)
        l->rewrite = true; /* cut with other widths (or in the future): store them anew */
    if (b > cur)
        b = cur;
    if (b + r->n <= cur || row->count == 0)
        return 0;
    uint64_t hash = key_hash(row->key);
    shard *s = shard_of(l, hash);
    entry *e = find(s, row->key, hash);
    if (!e && insert(l, s, row->key, hash, r, b, now, &e))
        return 0; /* no room: that key starts afresh */
    if (b > e->newest)
        advance(e, b);
    else if (b + r->n <= e->newest)
        return 0;
    uint32_t *slot = &e->slots[b % r->n];
    uint64_t add = row->count < r->pulls ? row->count : r->pulls;
    if (add > UINT32_MAX - *slot)
        add = UINT32_MAX - *slot;
    *slot += (uint32_t)add;
    e->total += add;
    return 0;
}

/* ---- life cycle ---- */

int64_t pc_limiter_now(const pc_limiter *l)
{
    return l->clock ? l->clock(l->clock_ctx) : (int64_t)time(NULL);
}

static void *flush_main(void *p)
{
    pc_limiter *l = p;
    pthread_mutex_lock(&l->stop_lock);
    while (!l->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += l->flush_every_ms / 1000;
        until.tv_nsec += (long)(l->flush_every_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int w = 0;
        while (!l->stopping && w != ETIMEDOUT)
            w = pthread_cond_timedwait(&l->stop_cond, &l->stop_lock, &until);
        if (l->stopping)
            break;
        pthread_mutex_unlock(&l->stop_lock);
        if (pc_limiter_flush(l, pc_limiter_now(l)))
            pc_log(PC_LOG_WARN, "pull limiter: saving counts failed: %s", pc_error_last());
        pthread_mutex_lock(&l->stop_lock);
    }
    pthread_mutex_unlock(&l->stop_lock);
    return NULL;
}

static int start_thread(pc_limiter *l)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return PC_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&l->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (r != 0)
        return PC_ENOMEM;
    if (pthread_create(&l->thread, NULL, flush_main, l) != 0) {
        pthread_cond_destroy(&l->stop_cond);
        pc_error_set("pull limiter: cannot start its flush thread");
        return PC_ERR;
    }
    l->thread_started = true;
    return 0;
}

static void declare_metrics(void)
{
    pc_metrics_declare("pullcache_limit_pulls_total", PC_METRIC_COUNTER,
                       "Manifest GETs counted against a client's pull budget.");
    pc_metrics_declare("pullcache_limit_refused_total", PC_METRIC_COUNTER,
                       "Manifest GETs refused with 429: the client's pull budget was spent.");
    pc_metrics_declare("pullcache_limit_untracked_total", PC_METRIC_COUNTER,
                       "Manifest GETs let through uncounted: too many clients tracked.");
}

int pc_limiter_new(pc_limiter **out, const pc_limiter_opts *opts)
{
    pc_limiter *l = calloc(1, sizeof(*l));
    int rc = PC_ENOMEM;
    if (!l)
        return rc;
    for (int i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&l->shards[i].lock, NULL);
    pthread_mutex_init(&l->flush_lock, NULL);
    pthread_mutex_init(&l->stop_lock, NULL);
    size_t max_keys = opts->max_keys ? opts->max_keys : DEFAULT_MAX_KEYS;
    l->max_per_shard = (max_keys + NSHARDS - 1) / NSHARDS;
    l->store = opts->store;
    l->shared = opts->shared && opts->store;
    l->clock = opts->clock;
    l->clock_ctx = opts->clock_ctx;
    l->flush_every_ms = opts->flush_every_ms;
    if ((rc = rule_init(&l->rules[0], &opts->anonymous, false)) ||
        (rc = rule_init(&l->rules[1], &opts->authenticated, true)))
        goto fail;
    if (l->store) {
        int64_t now = pc_limiter_now(l);
        l->last_prune = now - PRUNE_EVERY_S; /* the first flush drops what expired */
        if ((rc = pc_registry_limit_load(l->store, now, load_row, l))) {
            if (rc == PC_ENOTSUP)
                pc_error_set("pull limiter: the meta store cannot keep counts");
            goto fail;
        }
    }
    if (l->flush_every_ms && (rc = start_thread(l)))
        goto fail;
    declare_metrics();
    *out = l;
    return 0;
fail:
    l->store = NULL; /* nothing of this limiter's is to be written */
    pc_limiter_free(l);
    return rc;
}

void pc_limiter_free(pc_limiter *l)
{
    if (!l)
        return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->stop_lock);
        l->stopping = true;
        pthread_cond_signal(&l->stop_cond);
        pthread_mutex_unlock(&l->stop_lock);
        pthread_join(l->thread, NULL);
        pthread_cond_destroy(&l->stop_cond);
    }
    if (l->store && pc_limiter_flush(l, pc_limiter_now(l)))
        pc_log(PC_LOG_WARN, "pull limiter: saving counts failed: %s", pc_error_last());
    for (int i = 0; i < NSHARDS; i++) {
        shard *s = &l->shards[i];
        for (size_t j = 0; j < s->nchains; j++)
            for (entry *e = s->tab[j], *next; e; e = next) {
                next = e->next;
                free(e);
            }
        free(s->tab);
        pthread_mutex_destroy(&s->lock);
    }
    pthread_mutex_destroy(&l->flush_lock);
    pthread_mutex_destroy(&l->stop_lock);
    free(l);
}

/* ---- keys ---- */

int pc_limiter_key_from_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    const char *suffix = "";
    if (!sa || !buf)
        goto bad;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        if (!inet_ntop(AF_INET, &in.sin_addr, ip, sizeof(ip)))
            goto bad;
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        unsigned char *a = in6.sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            if (!inet_ntop(AF_INET, a + 12, ip, sizeof(ip)))
                goto bad;
        } else {
            memset(a + 8, 0, 8); /* one /64 is one client: one site's network */
            if (!inet_ntop(AF_INET6, a, ip, sizeof(ip)))
                goto bad;
            suffix = "/64";
        }
    } else {
        goto bad;
    }
    int n = snprintf(buf, size, "%s%s", ip, suffix);
    if (n < 0 || (size_t)n >= size)
        goto bad;
    return 0;
bad:
    pc_error_set("pull limiter: not an IP address");
    return PC_EINVAL;
}

int pc_limiter_key_from_account(const char *account, char *buf, size_t size)
{
    size_t max = size < PC_LIMITER_KEY_MAX + 1 ? size : PC_LIMITER_KEY_MAX + 1;
    int n =
        account && account[0] ? snprintf(buf, max, PC_LIMITER_ACCOUNT_PREFIX "%s", account) : -1;
    if (n < 0 || (size_t)n >= max) {
        pc_error_set("pull limiter: invalid account name");
        return PC_EINVAL;
    }
    return 0;
}
