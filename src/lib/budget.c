/*
 * budget.c - per upstream and credential pull-budget tracking (budget.h):
 * observations from upstream responses, the state machine unknown / ok /
 * reserve / exhausted with its lapses, the log lines on transitions, and
 * the Prometheus rendering.
 *
 * Entries live in one array sized at creation and never move. Each entry's
 * state, lapse time and Retry-After deadline are mirrored in atomics so
 * that pc_budget_check() (asked on every expired-tag and miss request)
 * takes no lock; everything else, and every change, happens under the
 * tracker's mutex. The atomics are published one by one, so a reader may
 * briefly see a new state with an old deadline: both are hints that the
 * next check corrects.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "budget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

typedef struct {
    pc_budget_info info; /* under lock; info.state is the state as last judged */
    int64_t until;       /* under lock: when reserve/exhausted lapses, 0 = no lapse */
    const char *why;     /* under lock: what the lapse means, for its log line */
    _Atomic int state;
    _Atomic int64_t until_a;
    _Atomic int64_t retry_at;
} entry;

struct pc_budget {
    pthread_mutex_t lock;
    pc_budget_clock clock;
    void *clock_ctx;
    int n, cap;
    entry *e;
};

static int64_t now_of(const pc_budget *b)
{
    return b->clock ? b->clock(b->clock_ctx) : (int64_t)time(NULL);
}

int pc_budget_new(pc_budget **out, int capacity, pc_budget_clock clock, void *clock_ctx)
{
    pc_budget *b = calloc(1, sizeof(*b));
    if (!b)
        return PC_ENOMEM;
    b->e = calloc(capacity > 0 ? (size_t)capacity : 1, sizeof(*b->e));
    if (!b->e) {
        free(b);
        return PC_ENOMEM;
    }
    b->cap = capacity > 0 ? capacity : 1;
    b->clock = clock;
    b->clock_ctx = clock_ctx;
    pthread_mutex_init(&b->lock, NULL);
    *out = b;
    return 0;
}

void pc_budget_free(pc_budget *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->e);
    free(b);
}

int pc_budget_find(const pc_budget *b, const char *upstream, const char *credential)
{
    for (int i = 0; b && i < b->n; i++)
        if (strcmp(b->e[i].info.upstream, upstream) == 0 &&
            strcmp(b->e[i].info.credential, credential) == 0)
            return i;
    return PC_ENOTFOUND;
}

int pc_budget_add(pc_budget *b, const char *upstream, const char *credential, int64_t reserve)
{
    if (!upstream || !*upstream || strlen(upstream) >= sizeof(b->e[0].info.upstream) ||
        !credential || !*credential || strlen(credential) >= sizeof(b->e[0].info.credential)) {
        pc_error_set("budget: an upstream and a credential name are needed");
        return PC_EINVAL;
    }
    if (pc_budget_find(b, upstream, credential) >= 0) {
        pc_error_set("budget: upstream %s with credential %s is tracked already", upstream,
                     credential);
        return PC_EEXISTS;
    }
    if (b->n == b->cap) {
        pc_error_set("budget: more than %d upstreams", b->cap);
        return PC_ELIMIT;
    }
    entry *e = &b->e[b->n];
    memset(&e->info, 0, sizeof(e->info));
    snprintf(e->info.upstream, sizeof(e->info.upstream), "%s", upstream);
    snprintf(e->info.credential, sizeof(e->info.credential), "%s", credential);
    e->info.reserve = reserve > 0 ? reserve : 0;
    e->info.state = PC_BUDGET_UNKNOWN;
    e->info.limit = e->info.remaining = e->info.window = -1;
    e->until = 0;
    e->why = "";
    atomic_init(&e->state, PC_BUDGET_UNKNOWN);
    atomic_init(&e->until_a, 0);
    atomic_init(&e->retry_at, 0);
    return b->n++;
}

int pc_budget_count(const pc_budget *b)
{
    return b ? b->n : 0;
}

const char *pc_budget_credential(const pc_config_upstream *u)
{
    if (u->username && *u->username)
        return u->username;
    if (u->token_file || u->token_env)
        return "token";
    return "anonymous";
}

const char *pc_budget_state_str(pc_budget_state s)
{
    switch (s) {
    case PC_BUDGET_OK:
        return "ok";
    case PC_BUDGET_RESERVE:
        return "reserve";
    case PC_BUDGET_EXHAUSTED:
        return "exhausted";
    default:
        return "unknown";
    }
}

/* ---- transitions ---- */

/* "N" or "?" for -1. */
static const char *num(char *buf, size_t size, int64_t v)
{
    if (v < 0)
        snprintf(buf, size, "?");
    else
        snprintf(buf, size, "%lld", (long long)v);
    return buf;
}

/* "remaining R, limit L, window Ws" of an entry. Under lock. */
static void numbers(const pc_budget_info *in, char *buf, size_t size)
{
    char r[24], l[24], w[24];
    snprintf(buf, size, "remaining %s, limit %s, window %s%s", num(r, sizeof(r), in->remaining),
             num(l, sizeof(l), in->limit), num(w, sizeof(w), in->window),
             in->window >= 0 ? "s" : "");
}

/* A log line about to be written (outside the lock). */
typedef struct {
    pc_log_level level;
    char text[1024];
} pending_log;

/* Move e to state st (lapsing at until, 0 = never) and fill *lg with the
 * line to log when this is a transition worth one. Under lock. */
static void set_state(entry *e, pc_budget_state st, int64_t until, const char *why,
                      const char *detail, pending_log *lg)
{
    pc_budget_info *in = &e->info;
    pc_budget_state old = in->state;
    char nums[128];
    in->state = st;
    e->until = st >= PC_BUDGET_RESERVE ? until : 0;
    e->why = why ? why : "";
    atomic_store_explicit(&e->until_a, e->until, memory_order_relaxed);
    atomic_store_explicit(&e->retry_at, in->retry_at, memory_order_relaxed);
    atomic_store_explicit(&e->state, (int)st, memory_order_release);
    if (st == old)
        return;
    numbers(in, nums, sizeof(nums));
    if (st == PC_BUDGET_RESERVE) {
        lg->level = PC_LOG_WARN;
        snprintf(lg->text, sizeof(lg->text),
                 "pull budget of upstream %s (credential %s) is below its reserve of %lld: %s; "
                 "cached tags are served without revalidation",
                 in->upstream, in->credential, (long long)in->reserve, nums);
    } else if (st == PC_BUDGET_EXHAUSTED) {
        lg->level = PC_LOG_WARN;
        snprintf(lg->text, sizeof(lg->text),
                 "pull budget of upstream %s (credential %s) is exhausted: %s%s%s", in->upstream,
                 in->credential, nums, detail ? detail : "",
                 in->reserve > 0 ? "; cached tags are served as they are" : "");
    } else if (st == PC_BUDGET_OK && old >= PC_BUDGET_RESERVE && detail) {
        lg->level = PC_LOG_INFO;
        snprintf(lg->text, sizeof(lg->text),
                 "pull budget of upstream %s (credential %s) is ok again: %s (last seen: %s)",
                 in->upstream, in->credential, detail, nums);
    } else if (st == PC_BUDGET_OK && old >= PC_BUDGET_RESERVE) {
        lg->level = PC_LOG_INFO;
        snprintf(lg->text, sizeof(lg->text),
                 "pull budget of upstream %s (credential %s) is ok again: %s", in->upstream,
                 in->credential, nums);
    }
}

/* Apply a lapse that is due at now. Under lock. */
static void lapse(entry *e, int64_t now, pending_log *lg)
{
    if (e->info.state < PC_BUDGET_RESERVE || !e->until || now < e->until)
        return;
    if (e->info.retry_at && e->info.retry_at <= now)
        e->info.retry_at = 0;
    set_state(e, PC_BUDGET_OK, 0, NULL, e->why, lg);
}

static void flush_log(const pending_log *lg)
{
    if (lg->text[0])
        pc_log(lg->level, "%s", lg->text);
}

void pc_budget_observe(pc_budget *b, int i, const pc_upstream_resp *r)
{
    pc_ratelimit rl;
    pending_log lg = {PC_LOG_INFO, ""};
    char detail[96] = "";

    if (!b || i < 0 || i >= b->n || !r)
        return;
    bool is429 = r->cls == PC_UP_TOO_MANY || r->status == 429;
    if (!is429 && !r->ratelimit_limit[0] && !r->ratelimit_remaining[0])
        return; /* the common case: nothing to learn */
    /* Parsing may set the thread's error message: keep the caller's. */
    char saved[512]; /* the size of error.c's buffer */
    snprintf(saved, sizeof(saved), "%s", pc_error_last());
    bool headers = pc_ratelimit_parse(r->ratelimit_limit, r->ratelimit_remaining,
                                      r->ratelimit_source, &rl) == 0;
    if (saved[0])
        pc_error_set("%s", saved);
    else
        pc_error_clear();
    if (!headers && !is429)
        return; /* malformed: a budget we misread is worse than none */

    int64_t now = now_of(b);
    int64_t ra = is429 ? pc_ratelimit_retry_after(r->retry_after, (time_t)now) : -1;
    pthread_mutex_lock(&b->lock);
    entry *e = &b->e[i];
    pc_budget_info *in = &e->info;
    if (headers) {
        in->limit = rl.limit;
        in->remaining = rl.remaining;
        in->window = rl.window;
        snprintf(in->source, sizeof(in->source), "%s", rl.source);
        in->seen_at = now;
    }
    in->retry_at = is429 && ra >= 0 ? now + ra : 0;
    if (is429)
        in->last_429_at = now;

    int64_t windowed = headers && rl.window > 0 ? rl.window : PC_BUDGET_UNWINDOWED;
    if (is429) {
        if (ra >= 0) {
            snprintf(detail, sizeof(detail), " (429 from upstream, Retry-After %llds)",
                     (long long)ra);
            set_state(e, PC_BUDGET_EXHAUSTED, now + ra, "its Retry-After passed", detail, &lg);
        } else if (headers && rl.remaining == 0 && rl.window > 0) {
            snprintf(detail, sizeof(detail), " (429 from upstream)");
            set_state(e, PC_BUDGET_EXHAUSTED, now + rl.window, "a whole window passed", detail,
                      &lg);
        } else {
            snprintf(detail, sizeof(detail), " (429 from upstream, backing off %ds)",
                     PC_BUDGET_BACKOFF);
            set_state(e, PC_BUDGET_EXHAUSTED, now + PC_BUDGET_BACKOFF, "the back-off passed",
                      detail, &lg);
        }
    } else if (rl.remaining == 0) {
        set_state(e, PC_BUDGET_EXHAUSTED, now + windowed,
                  rl.window > 0 ? "a whole window passed" : "the observation is too old", NULL,
                  &lg);
    } else if (rl.remaining > 0 && rl.remaining < in->reserve) {
        set_state(e, PC_BUDGET_RESERVE, now + windowed,
                  rl.window > 0 ? "a whole window passed" : "the observation is too old", NULL,
                  &lg);
    } else {
        set_state(e, PC_BUDGET_OK, 0, NULL, NULL, &lg);
    }
    pthread_mutex_unlock(&b->lock);
    flush_log(&lg);
}

pc_budget_state pc_budget_check(pc_budget *b, int i, int64_t *retry_in)
{
    if (retry_in)
        *retry_in = 0;
    if (!b || i < 0 || i >= b->n)
        return PC_BUDGET_UNKNOWN;
    entry *e = &b->e[i];
    int64_t now = now_of(b);
    int st = atomic_load_explicit(&e->state, memory_order_acquire);
    int64_t until = atomic_load_explicit(&e->until_a, memory_order_relaxed);
    if (st >= PC_BUDGET_RESERVE && until && now >= until) {
        pending_log lg = {PC_LOG_INFO, ""};
        pthread_mutex_lock(&b->lock);
        lapse(e, now, &lg);
        st = (int)e->info.state;
        pthread_mutex_unlock(&b->lock);
        flush_log(&lg);
    }
    if (retry_in) {
        int64_t ra = atomic_load_explicit(&e->retry_at, memory_order_relaxed);
        *retry_in = ra > now ? ra - now : 0;
    }
    return (pc_budget_state)st;
}

/* The reserve is set before any concurrent use and never changes: read
 * without the lock. */
bool pc_budget_holds(pc_budget *b, int i)
{
    return pc_budget_check(b, i, NULL) >= PC_BUDGET_RESERVE && b->e[i].info.reserve > 0;
}

int64_t pc_budget_wait(pc_budget *b, int i)
{
    int64_t retry_in = 0;
    if (pc_budget_check(b, i, &retry_in) != PC_BUDGET_EXHAUSTED || b->e[i].info.reserve <= 0)
        return 0;
    return retry_in;
}

int pc_budget_get(pc_budget *b, int i, pc_budget_info *out)
{
    pending_log lg = {PC_LOG_INFO, ""};
    if (!b || i < 0 || i >= b->n)
        return PC_ENOTFOUND;
    int64_t now = now_of(b);
    pthread_mutex_lock(&b->lock);
    lapse(&b->e[i], now, &lg);
    *out = b->e[i].info;
    if (out->retry_at && out->retry_at <= now)
        out->retry_at = 0;
    pthread_mutex_unlock(&b->lock);
    flush_log(&lg);
    return 0;
}

/* ---- /metrics ---- */

typedef enum { F_LIMIT, F_REMAINING, F_WINDOW, F_RESERVE, F_SEEN, F_STATE, F_COUNT } family;

static const struct {
    const char *name;
    const char *help;
} families[F_COUNT] = {
    {"pullcache_upstream_ratelimit_limit",
     "Pulls per window the upstream last announced (ratelimit-limit)."},
    {"pullcache_upstream_ratelimit_remaining",
     "Pulls left in the window as the upstream last announced (ratelimit-remaining)."},
    {"pullcache_upstream_ratelimit_window_seconds",
     "Length of the upstream's rate-limit window (the w= of its headers)."},
    {"pullcache_upstream_ratelimit_reserve",
     "Configured reserve: below it cached tags are not revalidated."},
    {"pullcache_upstream_ratelimit_seen_timestamp_seconds",
     "Unix time of the last response that carried rate-limit headers."},
    {"pullcache_upstream_ratelimit_state",
     "Budget state (unknown, ok, reserve, exhausted): 1 for the current one."},
};

static void series(FILE *f, family fam, const char *labels, const char *extra, int64_t v)
{
    fprintf(f, "%s{%s%s} %lld\n", families[fam].name, labels, extra ? extra : "", (long long)v);
}

char *pc_budget_metrics(pc_budget *b)
{
    char *text = NULL;
    size_t len = 0;
    int n = pc_budget_count(b);
    pc_budget_info *all = calloc(n > 0 ? (size_t)n : 1, sizeof(*all));
    FILE *f = all ? open_memstream(&text, &len) : NULL;
    if (!f) {
        free(all);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        pc_budget_get(b, i, &all[i]);
    for (int fam = 0; fam < F_COUNT && n > 0; fam++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", families[fam].name, families[fam].help,
                families[fam].name);
        for (int i = 0; i < n; i++) {
            const pc_budget_info *in = &all[i];
            char up[300], cred[520], labels[840];
            snprintf(labels, sizeof(labels), "upstream=\"%s\",credential=\"%s\"",
                     pc_metrics_escape(in->upstream, up, sizeof(up)),
                     pc_metrics_escape(in->credential, cred, sizeof(cred)));
            switch ((family)fam) {
            case F_LIMIT:
                if (in->limit >= 0)
                    series(f, F_LIMIT, labels, NULL, in->limit);
                break;
            case F_REMAINING:
                if (in->remaining >= 0)
                    series(f, F_REMAINING, labels, NULL, in->remaining);
                break;
            case F_WINDOW:
                if (in->window >= 0)
                    series(f, F_WINDOW, labels, NULL, in->window);
                break;
            case F_RESERVE:
                series(f, F_RESERVE, labels, NULL, in->reserve);
                break;
            case F_SEEN:
                if (in->seen_at > 0)
                    series(f, F_SEEN, labels, NULL, in->seen_at);
                break;
            case F_STATE:
                for (int s = PC_BUDGET_UNKNOWN; s <= PC_BUDGET_EXHAUSTED; s++) {
                    char extra[40];
                    snprintf(extra, sizeof(extra), ",state=\"%s\"",
                             pc_budget_state_str((pc_budget_state)s));
                    series(f, F_STATE, labels, extra, in->state == (pc_budget_state)s);
                }
                break;
            default:
                break;
            }
        }
    }
    free(all);
    if (fclose(f) != 0 || !text) {
        free(text);
        return NULL;
    }
    return text;
}
