/*
 * mirror_stats.c - what the status page shows beside the history: the most
 * pulled images (manifest GETs by tag, counted in a small table that keeps
 * the heaviest: when it is full, a new image takes the place of the least
 * pulled one and starts from that count, so an image pulled often is never
 * pushed out by many pulled once), the recent upstream errors (a ring),
 * the traffic per upstream since start, the fetches running, and the
 * cache's size against max_size. Internal to the mirror module except the
 * calls in mirror.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

#define TOP_MAX 64   /* images tracked */
#define TOP_SHOWN 15 /* images in the document */
#define ERR_MAX 32   /* errors kept */

typedef struct {
    int upstream;
    char repo[PC_NAME_MAX + 1]; /* at the upstream */
    char tag[PC_TAG_MAX + 1];
    uint64_t pulls;
    int64_t last;
} top_entry;

typedef struct {
    int64_t at;
    int upstream;
    char cls[32];
    unsigned status;
    char kind[16];
    char method[8];
    char repo[PC_NAME_MAX + 1];
} err_entry;

struct pc_mirror_stats {
    pthread_mutex_t lock;
    top_entry top[TOP_MAX];
    int ntop;
    err_entry errs[ERR_MAX];
    int err_head, nerrs;
};

int pc_mirror_stats_new(pc_mirror *m)
{
    m->stats = calloc(1, sizeof(*m->stats));
    if (!m->stats)
        return PC_ENOMEM;
    pthread_mutex_init(&m->stats->lock, NULL);
    return 0;
}

void pc_mirror_stats_free(pc_mirror *m)
{
    if (!m->stats)
        return;
    pthread_mutex_destroy(&m->stats->lock);
    free(m->stats);
    m->stats = NULL;
}

void pc_mirror_stats_pull(pc_mirror *m, const pc_mirror_target *t, const char *reference)
{
    struct pc_mirror_stats *s = m ? m->stats : NULL;
    if (!s || !t || t->upstream < 0 || !reference || strchr(reference, ':'))
        return; /* by digest: the platform manifests of an index, or a pinned pull */
    int64_t now = pc_util_now_s();
    pthread_mutex_lock(&s->lock);
    int least = -1;
    for (int k = 0; k < s->ntop; k++) {
        top_entry *e = &s->top[k];
        if (e->upstream == t->upstream && strcmp(e->repo, t->repo) == 0 &&
            strcmp(e->tag, reference) == 0) {
            e->pulls++;
            e->last = now;
            goto done;
        }
        if (least < 0 || e->pulls < s->top[least].pulls)
            least = k;
    }
    uint64_t base = 0;
    top_entry *e;
    if (s->ntop < TOP_MAX) {
        e = &s->top[s->ntop++];
    } else {
        e = &s->top[least];
        base = e->pulls;
    }
    e->upstream = t->upstream;
    snprintf(e->repo, sizeof(e->repo), "%s", t->repo);
    snprintf(e->tag, sizeof(e->tag), "%s", reference);
    e->pulls = base + 1;
    e->last = now;
done:
    pthread_mutex_unlock(&s->lock);
}

void pc_mirror_stats_error(pc_mirror *m, const pc_mirror_target *t, const char *kind,
                           const char *method, const pc_upstream_resp *r)
{
    struct pc_mirror_stats *s = m->stats;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    err_entry *e = &s->errs[s->err_head];
    e->at = pc_util_now_s();
    e->upstream = t->upstream;
    snprintf(e->cls, sizeof(e->cls), "%s", pc_up_class_str(r->cls));
    e->status = (unsigned)r->status;
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    snprintf(e->method, sizeof(e->method), "%s", method);
    snprintf(e->repo, sizeof(e->repo), "%s", t->repo);
    s->err_head = (s->err_head + 1) % ERR_MAX;
    if (s->nerrs < ERR_MAX)
        s->nerrs++;
    pthread_mutex_unlock(&s->lock);
}

static int top_cmp(const void *a, const void *b)
{
    const top_entry *x = a, *y = b;
    if (x->pulls != y->pulls)
        return x->pulls < y->pulls ? 1 : -1;
    return x->last < y->last ? 1 : x->last > y->last ? -1 : 0;
}

static int64_t metric(const char *name, const char *up, const char *more)
{
    char labels[400];
    snprintf(labels, sizeof(labels), "%s%s%s", up, more ? "," : "", more ? more : "");
    return pc_metrics_value(name, labels);
}

void pc_mirror_stats_totals(pc_mirror *m, int i, pc_mirror_totals *out)
{
    const char *up = m->ups[i].labels;
    static const char *kinds[] = {"kind=\"manifest\"", "kind=\"blob\""};
    memset(out, 0, sizeof(*out));
    for (size_t k = 0; k < 2; k++) {
        out->hits += metric("pullcache_cache_hits_total", up, kinds[k]);
        out->misses += metric("pullcache_cache_misses_total", up, kinds[k]);
        out->stale += metric("pullcache_cache_stale_total", up, kinds[k]);
    }
    out->manifest_hits = metric("pullcache_cache_hits_total", up, kinds[0]);
    out->pulls =
        metric("pullcache_upstream_requests_total", up, "kind=\"manifest\",method=\"GET\"");
    out->bytes = metric("pullcache_upstream_bytes_total", up, NULL);
    out->avoided = metric("pullcache_cache_hit_bytes_total", up, NULL);
    out->n429 = metric("pullcache_upstream_errors_total", up, "class=\"too_many\"");
}

static json_t *traffic_json(pc_mirror *m)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < m->nups; i++) {
        pc_mirror_totals tt;
        pc_mirror_stats_totals(m, i, &tt);
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "upstream",
                           m->ups[i].cfg->name, "hits", (json_int_t)tt.hits, "misses",
                           (json_int_t)tt.misses, "stale", (json_int_t)tt.stale, "pulls",
                           (json_int_t)tt.pulls, "pulls_avoided", (json_int_t)tt.manifest_hits,
                           "bytes", (json_int_t)tt.bytes, "bytes_avoided", (json_int_t)tt.avoided,
                           "errors_429", (json_int_t)tt.n429));
    }
    return arr;
}

static json_t *images_json(pc_mirror *m, top_entry *copy, int n)
{
    json_t *arr = json_array();
    qsort(copy, (size_t)n, sizeof(*copy), top_cmp);
    for (int k = 0; arr && k < n && k < TOP_SHOWN; k++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I}", "upstream",
                                             m->ups[copy[k].upstream].cfg->name, "repository",
                                             copy[k].repo, "tag", copy[k].tag, "pulls",
                                             (json_int_t)copy[k].pulls, "last",
                                             (json_int_t)copy[k].last));
    return arr;
}

static json_t *errors_json(pc_mirror *m, const err_entry *errs, int head, int n)
{
    json_t *arr = json_array();
    for (int k = 0; arr && k < n; k++) { /* newest first */
        const err_entry *e = &errs[(head - 1 - k + 2 * ERR_MAX) % ERR_MAX];
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:o, s:s, s:s, s:s}", "at", (json_int_t)e->at,
                           "upstream", m->ups[e->upstream].cfg->name, "class", e->cls, "status",
                           e->status ? json_integer(e->status) : json_null(), "kind", e->kind,
                           "method", e->method, "repository", e->repo));
    }
    return arr;
}

json_t *pc_mirror_stats_json(pc_mirror *m)
{
    struct pc_mirror_stats *s = m ? m->stats : NULL;
    if (!s)
        return NULL;
    top_entry *top = malloc(sizeof(top_entry) * TOP_MAX);
    err_entry *errs = malloc(sizeof(err_entry) * ERR_MAX);
    json_t *doc = NULL;
    if (!top || !errs)
        goto done;
    pthread_mutex_lock(&s->lock);
    int ntop = s->ntop, head = s->err_head, nerrs = s->nerrs;
    memcpy(top, s->top, sizeof(top_entry) * (size_t)ntop);
    memcpy(errs, s->errs, sizeof(err_entry) * ERR_MAX);
    pthread_mutex_unlock(&s->lock);
    doc = json_pack("{s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I}}", "traffic", traffic_json(m),
                    "fetches", pc_fetch_list_json(m), "images", images_json(m, top, ntop), "errors",
                    errors_json(m, errs, head, nerrs), "store", "mirrored_bytes",
                    (json_int_t)pc_metrics_value("pullcache_cache_mirrored_bytes", NULL),
                    "max_size", (json_int_t)m->cfg->cache->max_size, "blobs",
                    (json_int_t)pc_metrics_value("pullcache_store_blobs", NULL), "bytes",
                    (json_int_t)pc_metrics_value("pullcache_store_bytes", NULL));
done:
    free(top);
    free(errs);
    return doc;
}
