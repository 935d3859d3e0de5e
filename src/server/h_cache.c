/*
 * h_cache.c - /_pullcache/cache, the operator's handle on the mirror's
 * cache (admins only when access control is on; `pullcache cache` is its
 * client):
 *
 *   GET    /_pullcache/cache                   mirrored repositories cached
 *   GET    /_pullcache/cache?repo=R            R's cached tags: digest, age, fresh
 *   POST   /_pullcache/cache?repo=R&tag=T      refresh T now: revalidate with the
 *                                              upstream (HEAD, a GET only when the
 *                                              digest changed), whatever its tag_ttl
 *   DELETE /_pullcache/cache?repo=R[&tag=T]    forget T (or every tag of R): the
 *                                              next pull asks the upstream
 *
 * R is a mirrored name as clients write it (docker.io/library/nginx,
 * docker.io/nginx, or a bare name under a default upstream); anything else
 * is 400. Forgetting drops tags only: manifests and blobs stay until
 * eviction or `pullcache gc` (another tag may share them).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

static int send_json(pc_req *req, unsigned status, json_t *doc)
{
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body)
        return pc_req_fail(req, PC_ENOMEM);
    int r = pc_req_send(req, status, "application/json", body, strlen(body), "Cache-Control",
                        "no-store", NULL);
    free(body);
    return r;
}

/* The mirror target of ?repo= (routed once, in server.c), or an answered
 * 400. */
static bool target_of(pc_req *req, pc_mirror_target *t, int *mhd)
{
    const char *repo = pc_req_arg(req, "repo");
    if (!repo || !pc_ref_name_valid(repo)) {
        *mhd = pc_req_error(req, 400, "NAME_INVALID", "repo= must be a repository name");
        return false;
    }
    if (!req->srv->mirror || req->route_rc != 0) {
        *mhd = pc_req_error(req, 400, "NAME_INVALID",
                            "not a mirrored repository: name it as clients pull it, e.g. "
                            "docker.io/library/nginx");
        return false;
    }
    *t = req->route;
    return true;
}

static bool tag_arg(pc_req *req, const char **tag, bool required, int *mhd)
{
    *tag = pc_req_arg(req, "tag");
    if (*tag && !**tag)
        *tag = NULL;
    if ((required && !*tag) || (*tag && !pc_ref_tag_valid(*tag))) {
        *mhd = pc_req_error(req, 400, "TAG_INVALID",
                            required ? "tag= must be a valid tag" : "tag= is not a valid tag");
        return false;
    }
    return true;
}

typedef struct {
    pc_registry *reg;
    const pc_mirror_target *t;
    json_t *arr;
    int64_t now;
} tags_ctx;

static int add_tag(const char *tag, void *p)
{
    tags_ctx *c = p;
    pc_digest d;
    int64_t updated = 0;
    if (pc_registry_tag_stat(c->reg, c->t->local, tag, &d, &updated) != 0)
        return 0; /* gone meanwhile */
    int64_t age = c->now - updated;
    json_array_append_new(c->arr,
                          json_pack("{s:s, s:s, s:I, s:b}", "tag", tag, "digest", d.str,
                                    "age_seconds", (json_int_t)age, "fresh", age < c->t->tag_ttl));
    return 0;
}

static int mirrored_repo(const char *repo, void *p)
{
    void **c = p;
    pc_mirror_target t;
    if (pc_mirror_route(c[0], repo, NULL, &t) == 0 && strcmp(t.local, repo) == 0)
        json_array_append_new(c[1], json_string(repo));
    return 0;
}

static int cache_ls(pc_req *req)
{
    pc_registry *reg = req->srv->reg;
    int mhd;
    if (!pc_req_arg(req, "repo")) {
        json_t *arr = json_array();
        void *c[2] = {req->srv->mirror, arr};
        if (!arr || !req->srv->mirror || pc_registry_repo_each(reg, mirrored_repo, c) < 0) {
            json_decref(arr);
            return pc_req_fail(req, arr ? PC_ERR : PC_ENOMEM);
        }
        return send_json(req, 200, json_pack("{s:o}", "repositories", arr));
    }
    pc_mirror_target t;
    if (!target_of(req, &t, &mhd))
        return mhd;
    tags_ctx c = {reg, &t, json_array(), (int64_t)time(NULL)};
    int rc = c.arr ? pc_registry_tag_each(reg, t.local, add_tag, &c) : PC_ENOMEM;
    if (rc == PC_ENOTFOUND) {
        json_decref(c.arr);
        return pc_req_error(req, 404, "NAME_UNKNOWN", "nothing of this repository is cached");
    }
    if (rc < 0) {
        json_decref(c.arr);
        return pc_req_fail(req, rc);
    }
    return send_json(req, 200,
                     json_pack("{s:s, s:s, s:s, s:I, s:o}", "repository", t.local, "upstream",
                               t.name, "upstream_repository", t.repo, "tag_ttl",
                               (json_int_t)t.tag_ttl, "tags", c.arr));
}

typedef struct {
    pc_mirror_target t;
    char tag[PC_TAG_MAX + 1];
    bool had;
    pc_digest before;
    pc_manifest_rec rec;
    pc_mirror_outcome out;
    int rc;
} refresh_job;

static void refresh_work(pc_req *req)
{
    refresh_job *j = req->job;
    j->rc = pc_mirror_manifest_fetch(req->srv->mirror, &j->t, j->tag, &j->rec, &j->out);
}

static int refresh_finish(pc_req *req)
{
    refresh_job *j = req->job;
    if (j->rc)
        return pc_req_error_hdr(req, j->out.status ? j->out.status : 502,
                                j->out.code[0] ? j->out.code : "UNAVAILABLE", j->out.message, NULL);
    bool changed = !j->had || !pc_digest_equal(&j->before, &j->rec.digest);
    pc_log(PC_LOG_INFO, "cache: refreshed %s:%s -> %s%s", j->t.local, j->tag, j->rec.digest.str,
           changed ? " (changed)" : "");
    return send_json(req, 200,
                     json_pack("{s:s, s:s, s:s, s:o, s:b, s:b}", "repository", j->t.local, "tag",
                               j->tag, "digest", j->rec.digest.str, "previous",
                               j->had ? json_string(j->before.str) : json_null(), "changed",
                               changed, "stale", j->out.stale));
}

static int cache_refresh(pc_req *req)
{
    pc_registry *reg = req->srv->reg;
    const char *tag;
    int mhd;
    refresh_job *j = calloc(1, sizeof(*j));
    if (!j)
        return pc_req_fail(req, PC_ENOMEM);
    req->job = j;
    req->job_free = free;
    if (!target_of(req, &j->t, &mhd) || !tag_arg(req, &tag, true, &mhd))
        return mhd;
    snprintf(j->tag, sizeof(j->tag), "%s", tag);
    int64_t updated = 0;
    j->had = pc_registry_tag_stat(reg, j->t.local, tag, &j->before, &updated) == 0;
    /* due now: the fetch below revalidates it (HEAD; GET only for a new digest) */
    if (j->had)
        pc_registry_tag_touch(reg, j->t.local, tag, &j->before, 0);
    pc_mirror_lists_forget(req->srv->mirror, &j->t);
    return pc_req_async(req, refresh_work, refresh_finish);
}

static int forget_tag(const char *tag, void *p)
{
    void **c = p;
    pc_registry *reg = c[0];
    if (pc_registry_tag_delete(reg, c[1], tag) == 0)
        (*(int *)c[2])++;
    return 0;
}

static int cache_forget(pc_req *req)
{
    pc_registry *reg = req->srv->reg;
    pc_mirror_target t;
    const char *tag;
    int mhd, n = 0;
    if (!target_of(req, &t, &mhd) || !tag_arg(req, &tag, false, &mhd))
        return mhd;
    pc_mirror_lists_forget(req->srv->mirror, &t);
    if (tag) {
        if (pc_registry_tag_delete(reg, t.local, tag) == 0)
            n = 1;
    } else {
        /* collect first: deleting while listing would skip rows */
        json_t *tags = json_array();
        void *c[3] = {reg, t.local, &n};
        tags_ctx tc = {reg, &t, tags, 0};
        if (!tags || pc_registry_tag_each(reg, t.local, add_tag, &tc) < 0) {
            json_decref(tags);
            return pc_req_error(req, 404, "NAME_UNKNOWN", "nothing of this repository is cached");
        }
        for (size_t i = 0; i < json_array_size(tags); i++)
            forget_tag(json_string_value(json_object_get(json_array_get(tags, i), "tag")), c);
        json_decref(tags);
    }
    pc_log(PC_LOG_INFO, "cache: forgot %d tag(s) of %s%s%s", n, t.local, tag ? ":" : "",
           tag ? tag : "");
    return send_json(req, 200, json_pack("{s:s, s:i}", "repository", t.local, "forgotten", n));
}

int pc_h_cache(pc_req *req)
{
    if (strcmp(req->method, "GET") == 0)
        return cache_ls(req);
    if (strcmp(req->method, "POST") == 0)
        return cache_refresh(req);
    return cache_forget(req);
}
