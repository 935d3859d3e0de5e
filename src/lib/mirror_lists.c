/*
 * mirror_lists.c - tag lists and referrers of mirrored repositories.
 *
 * Tag lists: the upstream's whole
 * list (every page it links to), not only the tags that happen to be
 * cached, so Flux, Renovate and `skopeo list-tags` see what the registry
 * has. A list is kept in memory for the upstream's tag_ttl and served
 * without asking again; when the upstream fails, the last list (however
 * old), else the tags cached here, is served with a Warning. A tag list is
 * no manifest GET: it spends no pull budget. Clients page through it with
 * the spec's n/last (pc_mirror_tags_page).
 *
 * Referrers: the upstream's referrers API, or for a registry without it
 * (a 404) the referrers tag schema's index (tag sha256-<hex>), kept and
 * served stale the same way, so `cosign verify` and `notation verify`
 * through the cache see signatures and SBOMs.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"

#define LIST_SLOTS 256
#define LIST_PAGES_MAX 200   /* pages followed per list */
#define LIST_TAGS_MAX 100000 /* tags kept per list */

struct pc_mirror_list {
    char local[PC_NAME_MAX + PC_DIGEST_MAX +
               2];      /* repository, "@digest" for referrers; "" = empty */
    char *tags;         /* JSON: the tag array or the referrers index */
    int64_t fetched_ms; /* CLOCK_MONOTONIC */
};

static struct pc_mirror_list *slot_of(pc_mirror *m, const char *local)
{
    if (!m->lists && !(m->lists = calloc(LIST_SLOTS, sizeof(*m->lists))))
        return NULL;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)local; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return &m->lists[h % LIST_SLOTS];
}

void pc_mirror_lists_free(pc_mirror *m)
{
    for (size_t i = 0; m->lists && i < LIST_SLOTS; i++)
        free(m->lists[i].tags);
    free(m->lists);
    m->lists = NULL;
}

/* The cached list under key (a copy), if any, and how old it is. */
static char *cached_copy(pc_mirror *m, const char *key, int64_t *age_ms)
{
    char *copy = NULL;
    pthread_mutex_lock(&m->lists_lock);
    struct pc_mirror_list *s = slot_of(m, key);
    if (s && s->tags && strcmp(s->local, key) == 0) {
        copy = strdup(s->tags);
        *age_ms = pc_util_mono_ms() - s->fetched_ms;
    }
    pthread_mutex_unlock(&m->lists_lock);
    return copy;
}

static void cache_put(pc_mirror *m, const char *key, const char *tags)
{
    char *copy = strdup(tags);
    if (!copy)
        return;
    pthread_mutex_lock(&m->lists_lock);
    struct pc_mirror_list *s = slot_of(m, key);
    if (s) {
        free(s->tags);
        snprintf(s->local, sizeof(s->local), "%s", key);
        s->tags = copy;
        s->fetched_ms = pc_util_mono_ms();
        copy = NULL;
    }
    pthread_mutex_unlock(&m->lists_lock);
    free(copy);
}

void pc_mirror_lists_forget(pc_mirror *m, const pc_mirror_target *t)
{
    pthread_mutex_lock(&m->lists_lock);
    struct pc_mirror_list *s = slot_of(m, t->local);
    if (s && strcmp(s->local, t->local) == 0) {
        free(s->tags);
        s->tags = NULL;
        s->local[0] = '\0';
    }
    pthread_mutex_unlock(&m->lists_lock);
}

int pc_mirror_tags_cached(pc_mirror *m, const pc_mirror_target *t, json_t **tags)
{
    int64_t age = 0;
    char *s = cached_copy(m, t->local, &age);
    if (!s || age >= (int64_t)t->tag_ttl * 1000) {
        free(s);
        return PC_ENOTFOUND;
    }
    *tags = json_loads(s, 0, NULL);
    free(s);
    return *tags ? 0 : PC_ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* tags (an array, possibly unsorted, with duplicates and junk) as a sorted
 * array of unique valid tags. */
static json_t *normalized(json_t *tags)
{
    size_t n = json_array_size(tags), k = 0;
    const char **v = calloc(n ? n : 1, sizeof(*v));
    json_t *out = json_array();
    if (!v || !out) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(tags, i));
        if (s && pc_ref_tag_valid(s))
            v[k++] = s;
    }
    qsort(v, k, sizeof(*v), cmp_str);
    for (size_t i = 0; i < k; i++)
        if ((i == 0 || strcmp(v[i], v[i - 1]) != 0) &&
            json_array_append_new(out, json_string(v[i])) != 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    free(v);
    return out;
}

/* Every page of the upstream's list into all (an array). 0, or < 0 with
 * *r describing the failed exchange. */
static int fetch_all(pc_mirror *m, const pc_mirror_target *t, json_t *all, pc_upstream_resp *r)
{
    pc_upstream *u = m->ups[t->upstream].client;
    char *next = NULL;
    int rc = 0;
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        rc = pc_upstream_tags_page(u, t->repo, next, r);
        pc_mirror_count(m, t, "tags", "GET", rc == 0 ? r : NULL);
        free(next);
        next = NULL;
        if (rc)
            return rc;
        if (r->cls != PC_UP_OK)
            return PC_EUPSTREAM;
        json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
        json_t *tags = json_object_get(doc, "tags");
        if (!doc || !(json_is_array(tags) || json_is_null(tags))) {
            json_decref(doc);
            r->cls = PC_UP_PROTOCOL;
            snprintf(r->error_message, sizeof(r->error_message), "%s",
                     "the upstream's tag list is not {\"tags\": [...]}");
            return PC_EUPSTREAM;
        }
        json_array_extend(all, tags);
        json_decref(doc);
        if (!r->link[0] || json_array_size(all) >= LIST_TAGS_MAX)
            return 0;
        if (!(next = strdup(r->link)))
            return PC_ENOMEM;
        pc_upstream_resp_clear(r);
    }
    free(next);
    pc_log(PC_LOG_WARN, "upstream %s: tag list of %s longer than %d pages, cut there", t->name,
           t->repo, LIST_PAGES_MAX);
    return 0;
}

/* The tags cached here for t, as an array (the fallback of last resort). */
static json_t *local_tags(pc_mirror *m, const pc_mirror_target *t)
{
    char *json = NULL, last[PC_TAG_MAX + 1];
    bool more = false;
    if (pc_registry_tags_json(m->reg, t->local, NULL, -1, &json, &more, last, sizeof(last)))
        return NULL;
    json_t *doc = json_loads(json, 0, NULL);
    free(json);
    json_t *tags = json_incref(json_object_get(doc, "tags"));
    json_decref(doc);
    return tags;
}

int pc_mirror_tags(pc_mirror *m, const pc_mirror_target *t, json_t **tags, pc_mirror_outcome *out)
{
    memset(out, 0, sizeof(*out));
    *tags = NULL;
    if (pc_mirror_offline(m, t)) {
        if ((*tags = local_tags(m, t)))
            return 0;
        pc_mirror_offline_miss(t, "tags", out);
        return PC_ENOTFOUND;
    }
    pc_upstream_resp r;
    memset(&r, 0, sizeof(r));
    json_t *all = json_array();
    if (!all)
        return PC_ENOMEM;
    int rc = fetch_all(m, t, all, &r);
    if (rc == 0) {
        json_t *sorted = normalized(all);
        json_decref(all);
        char *s = sorted ? json_dumps(sorted, JSON_COMPACT) : NULL;
        if (s)
            cache_put(m, t->local, s);
        free(s);
        pc_upstream_resp_clear(&r);
        *tags = sorted;
        return sorted ? 0 : PC_ENOMEM;
    }
    json_decref(all);
    if (rc == PC_ENOMEM) {
        pc_upstream_resp_clear(&r);
        return rc;
    }
    if (r.cls == PC_UP_NOT_FOUND) {
        out->status = 404;
        snprintf(out->code, sizeof(out->code), "NAME_UNKNOWN");
        snprintf(out->message, sizeof(out->message), "repository %s not found at upstream %s",
                 t->repo, t->name);
        pc_upstream_resp_clear(&r);
        return PC_ENOTFOUND;
    }
    /* The upstream failed: the last list, however old, else what is cached. */
    int64_t age = 0;
    char *old = cached_copy(m, t->local, &age);
    json_t *have = old ? json_loads(old, 0, NULL) : local_tags(m, t);
    free(old);
    if (have) {
        pc_mirror_stale(m, t, &r, "tags", out);
        pc_upstream_resp_clear(&r);
        *tags = have;
        return 0;
    }
    pc_mirror_fail(m, t, &r, "tags", out);
    pc_upstream_resp_clear(&r);
    return PC_EUPSTREAM;
}

int pc_mirror_tags_page(json_t *tags, const char *name, const char *last, long n, char **json,
                        bool *more, char *last_out, size_t last_size)
{
    size_t total = json_array_size(tags), i = 0;
    json_t *page = json_array();
    if (!page)
        return PC_ENOMEM;
    if (last && *last)
        while (i < total && strcmp(json_string_value(json_array_get(tags, i)), last) <= 0)
            i++;
    *more = false;
    last_out[0] = '\0';
    for (; i < total; i++) {
        if (n >= 0 && (long)json_array_size(page) == n) {
            *more = n > 0;
            break;
        }
        json_t *tag = json_array_get(tags, i);
        snprintf(last_out, last_size, "%s", json_string_value(tag));
        json_array_append(page, tag);
    }
    json_t *doc = json_pack("{s:s, s:o}", "name", name, "tags", page);
    *json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return *json ? 0 : PC_ENOMEM;
}

/* ---- referrers ---- */

static void referrers_key(const pc_mirror_target *t, const pc_digest *d, char *key, size_t size)
{
    snprintf(key, size, "%s@%s", t->local, d->str);
}

/* An OCI index's manifests array from body, or NULL when it is not one. */
static json_t *index_manifests(const char *body, size_t len)
{
    json_t *doc = json_loadb(body ? body : "", len, 0, NULL);
    json_t *list = json_incref(json_object_get(doc, "manifests"));
    json_decref(doc);
    if (!json_is_array(list)) {
        json_decref(list);
        return NULL;
    }
    return list;
}

int pc_mirror_referrers_cached(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d,
                               json_t **manifests)
{
    char key[sizeof(((struct pc_mirror_list *)0)->local)];
    int64_t age = 0;
    referrers_key(t, d, key, sizeof(key));
    char *s = cached_copy(m, key, &age);
    if (!s || age >= (int64_t)t->tag_ttl * 1000) {
        free(s);
        return PC_ENOTFOUND;
    }
    *manifests = json_loads(s, 0, NULL);
    free(s);
    return *manifests ? 0 : PC_ENOMEM;
}

/* The referrers cached here for the mirror repository (the fallback of
 * last resort). */
static json_t *local_referrers(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d)
{
    char *json = NULL;
    if (pc_registry_referrers_json(m->reg, t->local, d, NULL, &json))
        return NULL;
    json_t *list = index_manifests(json, strlen(json));
    free(json);
    return list;
}

int pc_mirror_referrers(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d,
                        json_t **manifests, pc_mirror_outcome *out)
{
    pc_upstream *u = m->ups[t->upstream].client;
    pc_upstream_resp r;
    char key[sizeof(((struct pc_mirror_list *)0)->local)];
    memset(out, 0, sizeof(*out));
    memset(&r, 0, sizeof(r));
    *manifests = NULL;
    if (pc_mirror_offline(m, t)) {
        *manifests = local_referrers(m, t, d);
        return *manifests ? 0 : PC_ENOMEM;
    }
    referrers_key(t, d, key, sizeof(key));
    int rc = pc_upstream_referrers(u, t->repo, d, &r);
    pc_mirror_count(m, t, "referrers", "GET", rc == 0 ? &r : NULL);
    if (rc == 0 && r.cls == PC_UP_NOT_FOUND) {
        /* no referrers API: the tag schema's index, none when it is absent */
        char tag[PC_TAG_MAX + 1];
        pc_upstream_referrers_tag(d, tag, sizeof(tag));
        pc_upstream_resp_clear(&r);
        rc = pc_upstream_manifest(u, t->repo, tag, false, &r);
        pc_mirror_count(m, t, "referrers", "GET", rc == 0 ? &r : NULL);
        if (rc == 0 && r.cls == PC_UP_NOT_FOUND) {
            pc_upstream_resp_clear(&r);
            *manifests = json_array();
            cache_put(m, key, "[]");
            return *manifests ? 0 : PC_ENOMEM;
        }
    }
    if (rc) {
        pc_upstream_resp_clear(&r);
        return rc;
    }
    if (r.cls == PC_UP_OK) {
        json_t *list = index_manifests(r.body, r.body_len);
        if (list) {
            char *s = json_dumps(list, JSON_COMPACT);
            if (s)
                cache_put(m, key, s);
            free(s);
            pc_upstream_resp_clear(&r);
            *manifests = list;
            return 0;
        }
        r.cls = PC_UP_PROTOCOL;
        snprintf(r.error_message, sizeof(r.error_message), "%s",
                 "the upstream's referrers answer is not an OCI index");
    }
    /* The upstream failed: the last answer, however old, else what is cached. */
    int64_t age = 0;
    char *old = cached_copy(m, key, &age);
    json_t *have = old ? json_loads(old, 0, NULL) : local_referrers(m, t, d);
    free(old);
    if (have) {
        pc_mirror_stale(m, t, &r, "referrers", out);
        pc_upstream_resp_clear(&r);
        *manifests = have;
        return 0;
    }
    pc_mirror_fail(m, t, &r, "referrers", out);
    pc_upstream_resp_clear(&r);
    return PC_EUPSTREAM;
}

int pc_mirror_referrers_index(json_t *manifests, const char *artifact_type, char **json)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < json_array_size(manifests); i++) {
        json_t *e = json_array_get(manifests, i);
        const char *at = json_string_value(json_object_get(e, "artifactType"));
        if (!artifact_type || (at && strcmp(at, artifact_type) == 0))
            json_array_append(list, e);
    }
    json_t *doc = list ? json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType",
                                   "application/vnd.oci.image.index.v1+json", "manifests", list)
                       : NULL;
    *json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return *json ? 0 : PC_ENOMEM;
}
