/*
 * h_health.c - GET/HEAD /healthz and /readyz, for Kubernetes probes and
 * load balancers; never behind authentication (auth_access.c lets them through),
 * never a secret in them.
 *
 *   /healthz  200 {"status":"alive"} while the process answers HTTP.
 *   /readyz   200 when this replica can serve: the storage takes a write
 *             (a one-byte upload staged and removed) and the meta store
 *             answers a query; else 503 naming what failed. Upstream trouble
 *             is reported (last failure, failures since the last good
 *             answer) but never makes the replica unready: cached content
 *             is still served when an upstream is down.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

int pc_h_healthz(pc_req *req)
{
    static const char body[] = "{\"status\":\"alive\"}";
    return pc_req_send(req, 200, "application/json", body, sizeof(body) - 1, "Cache-Control",
                       "no-store", NULL);
}

/* The blob store takes a write (one byte staged and removed). */
static const char *storage_check(pc_req *req)
{
    return pc_registry_probe_blobs(req->srv->reg) ? pc_error_last() : NULL;
}

static const char *meta_check(pc_req *req)
{
    return pc_registry_probe_meta(req->srv->reg) ? pc_error_last() : NULL;
}

static json_t *check_json(const char *err)
{
    return err ? json_pack("{s:s, s:s}", "status", "failed", "error", err)
               : json_pack("{s:s}", "status", "ok");
}

static json_t *upstreams_json(pc_req *req)
{
    const pc_config *cfg = req->srv->cfg;
    json_t *a = json_array();
    for (unsigned i = 0; a && i < cfg->upstreams_count; i++) {
        pc_mirror_health h;
        if (pc_mirror_health_get(req->srv->mirror, (int)i, &h) != 0)
            memset(&h, 0, sizeof(h));
        const char *state = h.failures ? "failing" : h.last_ok_at ? "ok" : "unknown";
        json_t *u =
            json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "name", cfg->upstreams[i].name, "state",
                      state, "failures", (json_int_t)h.failures, "last_error",
                      h.last_error[0] ? json_string(h.last_error) : json_null(), "last_error_at",
                      h.last_error_at ? json_integer(h.last_error_at) : json_null(), "last_ok_at",
                      h.last_ok_at ? json_integer(h.last_ok_at) : json_null());
        if (!u || json_array_append_new(a, u) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int pc_h_readyz(pc_req *req)
{
    const char *storage = storage_check(req);
    char storage_err[256] = "";
    if (storage) /* the next check may overwrite the thread's error text */
        snprintf(storage_err, sizeof(storage_err), "%s", storage);
    const char *meta = meta_check(req);
    bool ready = !storage && !meta;
    json_t *doc = json_pack("{s:b, s:{s:o, s:o}, s:o}", "ready", ready, "checks", "storage",
                            check_json(storage ? storage_err : NULL), "metastore", check_json(meta),
                            "upstreams", upstreams_json(req));
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body)
        return pc_req_fail(req, PC_ENOMEM);
    if (!ready)
        pc_log(PC_LOG_WARN, "not ready: storage %s, meta store %s", storage ? storage_err : "ok",
               meta ? meta : "ok");
    int r = pc_req_send(req, ready ? 200 : 503, "application/json", body, strlen(body),
                        "Cache-Control", "no-store", NULL);
    free(body);
    return r;
}
