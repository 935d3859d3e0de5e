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
#include <string.h>

#include "metrics.h"

pc_budget *pc_mirror_budget(pc_mirror *m)
{
    return m ? m->budget : NULL;
}

bool pc_mirror_budget_skips(pc_mirror *m, const pc_mirror_target *t)
{
    if (!pc_budget_holds(m->budget, t->upstream))
        return false;
    pc_metrics_add("pullcache_budget_skipped_revalidations_total", m->ups[t->upstream].labels, 1);
    return true;
}

bool pc_mirror_budget_refuses(pc_mirror *m, const pc_mirror_target *t, pc_mirror_outcome *out)
{
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
