/*
 * mirror_budget.c - what an upstream's pull budget (budget.h) changes in
 * the pull-through cache (mirror.c asks): with a reserve, below it or
 * exhausted, a tag past its tag_ttl is served as it is instead of being
 * revalidated; while a 429's Retry-After runs, a manifest GET is not sent
 * and the client gets 429 TOOMANYREQUESTS. Internal to the mirror module.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

/* ---- the budget across processes sharing the stores ----
 *
 * Every replica that talks to an upstream learns its budget from the
 * answers; the upstream counts them all against one budget. So what one
 * replica saw is written to a note (meta store, coordination table) and
 * the others read it, at most once a second per upstream, before they
 * judge the budget, and learn from it as from an answer of their own
 * (pc_budget_observe). The note keeps the raw header values and the
 * Retry-After as an absolute time, so a late reader waits no longer than
 * the writer was told to. */
#define BUDGET_LOOK_MS 1000
#define NOTE_FORMAT "pcbudget1"

static void note_key(pc_mirror *m, int i, char *key, size_t size)
{
    snprintf(key, size, "budget:%s:%s", m->ups[i].cfg->name, pc_budget_credential(m->ups[i].cfg));
}

/* A header value as it may go in a note line: no line breaks. */
static bool one_line(const char *v)
{
    return strcspn(v, "\r\n") == strlen(v);
}

void pc_mirror_budget_share(pc_mirror *m, int i, const pc_upstream_resp *r)
{
    bool is429 = r->cls == PC_UP_TOO_MANY || r->status == 429;
    if (!is429 && !r->ratelimit_limit[0] && !r->ratelimit_remaining[0])
        return; /* the common case: nothing to tell */
    if (!one_line(r->ratelimit_limit) || !one_line(r->ratelimit_remaining) ||
        !one_line(r->ratelimit_source))
        return;
    int64_t now = pc_util_now_s();
    int64_t ra = is429 ? pc_ratelimit_retry_after(r->retry_after, (time_t)now) : -1;
    char key[PC_LEASE_KEY_MAX], value[PC_NOTE_MAX];
    note_key(m, i, key, sizeof(key));
    int n = snprintf(value, sizeof(value), NOTE_FORMAT "\n%s\n%d\n%lld\n%s\n%s\n%s\n", m->owner,
                     is429 ? 429 : 200, (long long)(ra >= 0 ? now + ra : 0), r->ratelimit_limit,
                     r->ratelimit_remaining, r->ratelimit_source);
    if (n < 0 || (size_t)n >= sizeof(value))
        return;
    /* read back by this process, the note is known as its own (owner) */
    pc_registry_note_put(m->reg, key, value);
}

/* Split note lines (in place) into v: the count found. */
static int note_lines(char *s, char **v, int max)
{
    int n = 0;
    while (n < max && *s) {
        char *nl = strchr(s, '\n');
        if (!nl)
            break;
        *nl = '\0';
        v[n++] = s;
        s = nl + 1;
    }
    return n;
}

/* Learn from upstream i's note when another process wrote a newer one. */
static void budget_look(pc_mirror *m, int i)
{
    int64_t now_ms = pc_util_mono_ms();
    pthread_mutex_lock(&m->lock);
    bool due = now_ms - m->ups[i].budget_looked_ms >= BUDGET_LOOK_MS;
    if (due)
        m->ups[i].budget_looked_ms = now_ms;
    int64_t applied = m->ups[i].budget_applied_ms;
    pthread_mutex_unlock(&m->lock);
    if (!due)
        return;
    char key[PC_LEASE_KEY_MAX], value[PC_NOTE_MAX], *v[8];
    int64_t stamp = 0;
    note_key(m, i, key, sizeof(key));
    if (pc_registry_note_get(m->reg, key, value, sizeof(value), &stamp) != 0 || stamp <= applied)
        return;
    if (note_lines(value, v, 8) != 7 || strcmp(v[0], NOTE_FORMAT) != 0)
        return; /* not one of ours */
    pthread_mutex_lock(&m->lock);
    if (stamp > m->ups[i].budget_applied_ms)
        m->ups[i].budget_applied_ms = stamp;
    pthread_mutex_unlock(&m->lock);
    if (strcmp(v[1], m->owner) == 0)
        return; /* what this process saw itself */
    pc_upstream_resp r;
    memset(&r, 0, sizeof(r));
    r.status = strtol(v[2], NULL, 10);
    r.cls = r.status == 429 ? PC_UP_TOO_MANY : PC_UP_OK;
    long long retry_at = strtoll(v[3], NULL, 10);
    int64_t now = pc_util_now_s();
    if (r.status == 429 && retry_at > now)
        snprintf(r.retry_after, sizeof(r.retry_after), "%lld", retry_at - (long long)now);
    else if (r.status == 429 && retry_at > 0)
        return; /* its Retry-After has passed: nothing left to learn */
    snprintf(r.ratelimit_limit, sizeof(r.ratelimit_limit), "%s", v[4]);
    snprintf(r.ratelimit_remaining, sizeof(r.ratelimit_remaining), "%s", v[5]);
    snprintf(r.ratelimit_source, sizeof(r.ratelimit_source), "%s", v[6]);
    pc_budget_observe(m->budget, i, &r);
}

pc_budget *pc_mirror_budget(pc_mirror *m)
{
    if (!m)
        return NULL;
    for (int i = 0; i < m->nups; i++)
        budget_look(m, i);
    return m->budget;
}

bool pc_mirror_budget_skips(pc_mirror *m, const pc_mirror_target *t)
{
    budget_look(m, t->upstream);
    if (!pc_budget_holds(m->budget, t->upstream))
        return false;
    pc_metrics_add("pullcache_budget_skipped_revalidations_total", m->ups[t->upstream].labels, 1);
    return true;
}

bool pc_mirror_budget_refuses(pc_mirror *m, const pc_mirror_target *t, pc_mirror_outcome *out)
{
    budget_look(m, t->upstream);
    int64_t retry_in = pc_budget_wait(m->budget, t->upstream);
    if (retry_in <= 0)
        return false;
    memset(out, 0, sizeof(*out));
    out->status = 429;
    snprintf(out->code, sizeof(out->code), "TOOMANYREQUESTS");
    snprintf(out->message, sizeof(out->message),
             "upstream %s is rate-limiting this cache; it is not asked again for %lld s (its "
             "Retry-After)",
             t->name, (long long)retry_in);
    snprintf(out->retry_after, sizeof(out->retry_after), "%lld", (long long)retry_in);
    pc_metrics_add("pullcache_budget_refused_total", m->ups[t->upstream].labels, 1);
    return true;
}
