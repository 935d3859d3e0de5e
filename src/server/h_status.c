/*
 * h_status.c - GET/HEAD /_pullcache/status: what `serve` knows about
 * itself and its upstreams as one JSON document (version, uptime, every
 * upstream with its credential identity, tag_ttl, reserve and the pull
 * budget last seen, and the cache settings). `pullcache ratelimit` reads it
 * when pointed at a pullcache; the document is described in docs/STATUS.md.
 * For the status page (h_ui.c) it also carries the traffic per upstream,
 * the fetches running, the most pulled images, the recent upstream errors
 * and the store's size (mirror_stats.c); GET /_pullcache/history serves the
 * samples behind its plots (history.h).
 *
 * Never contains a secret: credentials appear as the user name, "token" or
 * "anonymous", and upstream URLs cannot carry user information (the
 * configuration refuses it).
 *
 * With access control (users configured) only admins get it, like
 * /metrics (auth_access.c); without, anyone who can reach the port.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "budget.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

/* A number, or null when unknown (< 0, or 0 for times). */
static json_t *num_or_null(int64_t v, bool zero_is_null)
{
    if (v < 0 || (zero_is_null && v == 0))
        return json_null();
    return json_integer((json_int_t)v);
}

static json_t *ratelimit_json(const pc_budget_info *in)
{
    if (in->state == PC_BUDGET_UNKNOWN)
        return json_null();
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o}", "limit", num_or_null(in->limit, false),
        "remaining", num_or_null(in->remaining, false), "window", num_or_null(in->window, false),
        "source", in->source[0] ? json_string(in->source) : json_null(), "seen_at",
        num_or_null(in->seen_at, true), "state", pc_budget_state_str(in->state), "last_429_at",
        num_or_null(in->last_429_at, true), "retry_at", num_or_null(in->retry_at, true));
}

static json_t *upstream_json(pc_req *req, unsigned i)
{
    const pc_config_upstream *u = &req->srv->cfg->upstreams[i];
    pc_budget *b = pc_mirror_budget(req->srv->mirror);
    pc_budget_info in;
    if (pc_budget_get(b, (int)i, &in) != 0) {
        memset(&in, 0, sizeof(in));
        in.state = PC_BUDGET_UNKNOWN;
    }
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:o}", "name", u->name, "url", u->url, "credential",
                     pc_budget_credential(u), "tag_ttl", (json_int_t)u->tag_ttl, "reserve",
                     (json_int_t)u->reserve, "ratelimit", ratelimit_json(&in));
}

/* Answer doc (consumed; NULL: out of memory) as JSON, not to be cached. */
static int send_json(pc_req *req, json_t *doc)
{
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body)
        return pc_req_fail(req, PC_ENOMEM);
    int r = pc_req_send(req, 200, "application/json", body, strlen(body), "Cache-Control",
                        "no-store", NULL);
    free(body);
    return r;
}

int pc_h_status(pc_req *req)
{
    const pc_config *cfg = req->srv->cfg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    json_t *ups = json_array();
    for (unsigned i = 0; ups && i < cfg->upstreams_count; i++) {
        json_t *u = upstream_json(req, i);
        if (!u || json_array_append_new(ups, u) != 0) {
            json_decref(ups);
            ups = NULL;
        }
    }
    json_t *prefixes = json_array();
    for (unsigned i = 0; prefixes && i < cfg->cache->local_prefixes_count; i++)
        json_array_append_new(prefixes, json_string(cfg->cache->local_prefixes[i]));
    if (!ups || !prefixes) {
        json_decref(ups);
        json_decref(prefixes);
        return pc_req_fail(req, PC_ENOMEM);
    }
    json_t *doc =
        json_pack("{s:s, s:I, s:I, s:o, s:{s:s, s:o, s:I}}", "version", PC_VERSION, "now",
                  (json_int_t)time(NULL), "uptime_seconds",
                  (json_int_t)(now.tv_sec - req->srv->started.tv_sec), "upstreams", ups, "cache",
                  "default_upstream", cfg->cache->default_upstream, "local_prefixes", prefixes,
                  "max_size", (json_int_t)cfg->cache->max_size);
    json_t *stats = doc ? pc_mirror_stats_json(req->srv->mirror) : NULL;
    if (stats && json_object_update(doc, stats) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    json_decref(stats);
    return send_json(req, doc);
}

int pc_h_history(pc_req *req)
{
    const char *since = pc_req_arg(req, "since");
    long long s = -1;
    if (since) {
        char *end;
        s = strtoll(since, &end, 10);
        if (!*since || *end)
            return pc_req_error(req, 400, "INVALID", "since= wants unix seconds");
    }
    pc_history *h = pc_mirror_history(req->srv->mirror);
    json_t *doc = NULL;
    if (h) {
        doc = pc_history_json(h, (int64_t)s);
    } else {
        /* not kept (only `serve` samples): the same document, empty */
        doc = json_pack("{s:i, s:i, s:[], s:[]}", "interval", PC_HISTORY_INTERVAL, "capacity",
                        PC_HISTORY_CAPACITY, "fields", "upstreams");
    }
    if (doc)
        json_object_set_new(doc, "now", json_integer((json_int_t)time(NULL)));
    return send_json(req, doc);
}
