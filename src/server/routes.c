/*
 * routes.c - the URL grammar of the distribution API and the table that
 * maps a route and method to its handler.
 *
 * Names may contain "blobs" or "manifests" as components, so a path is
 * read from its end: the last one or two components say the kind, what is
 * left before them is the name.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"

#include <string.h>

static const pc_handler handlers[] = {
    /* with access control: /metrics and /_pullcache/status are for admins (auth_access.c) */
    {PC_ROUTE_METRICS, "GET", pc_h_metrics, NULL},
    {PC_ROUTE_TOKEN, "GET", pc_h_token, NULL},
    {PC_ROUTE_TOKEN, "POST", pc_h_token_post_begin, pc_h_token_post_finish},
    {PC_ROUTE_STATUS, "GET", pc_h_status, NULL},
    {PC_ROUTE_STATUS, "HEAD", pc_h_status, NULL},
    {PC_ROUTE_HISTORY, "GET", pc_h_history, NULL},
    {PC_ROUTE_HISTORY, "HEAD", pc_h_history, NULL},
    {PC_ROUTE_UI, "GET", pc_h_ui, NULL},
    {PC_ROUTE_UI, "HEAD", pc_h_ui, NULL},
    {PC_ROUTE_CACHE, "GET", pc_h_cache, NULL},
    {PC_ROUTE_CACHE, "POST", pc_h_cache, NULL},
    {PC_ROUTE_CACHE, "DELETE", pc_h_cache, NULL},
    {PC_ROUTE_HEALTHZ, "GET", pc_h_healthz, NULL},
    {PC_ROUTE_HEALTHZ, "HEAD", pc_h_healthz, NULL},
    {PC_ROUTE_READYZ, "GET", pc_h_readyz, NULL},
    {PC_ROUTE_READYZ, "HEAD", pc_h_readyz, NULL},
    {PC_ROUTE_BASE, "GET", pc_h_base, NULL},
    {PC_ROUTE_BASE, "HEAD", pc_h_base, NULL},
    {PC_ROUTE_CATALOG, "GET", pc_h_catalog, NULL},
    {PC_ROUTE_TAGS, "GET", pc_h_tags, NULL},
    {PC_ROUTE_REFERRERS, "GET", pc_h_referrers, NULL},
    {PC_ROUTE_BLOB, "GET", pc_h_blob_get, NULL},
    {PC_ROUTE_BLOB, "HEAD", pc_h_blob_get, NULL},
    {PC_ROUTE_BLOB, "DELETE", pc_h_blob_delete, NULL},
    {PC_ROUTE_UPLOAD_START, "POST", pc_h_upload_start_begin, pc_h_upload_start_finish},
    {PC_ROUTE_UPLOAD, "PATCH", pc_h_upload_patch_begin, pc_h_upload_patch_finish},
    {PC_ROUTE_UPLOAD, "PUT", pc_h_upload_put_begin, pc_h_upload_put_finish},
    {PC_ROUTE_UPLOAD, "GET", pc_h_upload_get, NULL},
    {PC_ROUTE_UPLOAD, "DELETE", pc_h_upload_delete, NULL},
    {PC_ROUTE_MANIFEST, "GET", pc_h_manifest_get, NULL},
    {PC_ROUTE_MANIFEST, "HEAD", pc_h_manifest_get, NULL},
    {PC_ROUTE_MANIFEST, "PUT", pc_h_manifest_put_begin, pc_h_manifest_put_finish},
    {PC_ROUTE_MANIFEST, "DELETE", pc_h_manifest_delete, NULL},
};

const char *pc_route_kind_str(pc_route_kind k)
{
    switch (k) {
    case PC_ROUTE_BASE:
        return "base";
    case PC_ROUTE_CATALOG:
        return "catalog";
    case PC_ROUTE_TAGS:
        return "tags";
    case PC_ROUTE_MANIFEST:
        return "manifest";
    case PC_ROUTE_BLOB:
        return "blob";
    case PC_ROUTE_UPLOAD_START:
    case PC_ROUTE_UPLOAD:
        return "upload";
    case PC_ROUTE_REFERRERS:
        return "referrers";
    case PC_ROUTE_METRICS:
        return "metrics";
    case PC_ROUTE_STATUS:
    case PC_ROUTE_HISTORY:
        return "status";
    case PC_ROUTE_UI:
        return "ui";
    case PC_ROUTE_TOKEN:
        return "token";
    case PC_ROUTE_HEALTHZ:
    case PC_ROUTE_READYZ:
        return "probe";
    case PC_ROUTE_CACHE:
        return "cache";
    default:
        return "other";
    }
}

const pc_handler *pc_route_find(pc_route_kind kind, const char *method, bool *other_methods)
{
    *other_methods = false;
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        if (handlers[i].kind != kind)
            continue;
        if (strcmp(handlers[i].method, method) == 0)
            return &handlers[i];
        *other_methods = true;
    }
    return NULL;
}

void pc_route_allow(pc_route_kind kind, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        if (handlers[i].kind != kind)
            continue;
        int w = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", handlers[i].method);
        if (w < 0 || (size_t)w >= size - n)
            break;
        n += (size_t)w;
    }
}

/* Does the path end with "/<a>/<b>" (b may be empty)? Sets *name_len to
 * the length of what comes before and *last to b. */
static bool tail2(const char *p, size_t n, const char *a, const char **last, size_t *name_len)
{
    /* find last '/' */
    const char *end = p + n;
    const char *s1 = NULL;
    for (const char *q = end; q > p; q--)
        if (q[-1] == '/') {
            s1 = q - 1;
            break;
        }
    if (!s1)
        return false;
    const char *s0 = NULL;
    for (const char *q = s1; q > p; q--)
        if (q[-1] == '/') {
            s0 = q - 1;
            break;
        }
    if (!s0)
        return false;
    size_t alen = (size_t)(s1 - s0 - 1);
    if (alen != strlen(a) || memcmp(s0 + 1, a, alen) != 0)
        return false;
    *last = s1 + 1;
    *name_len = (size_t)(s0 - p);
    return true;
}

static int set_name(pc_req *req, const char *p, size_t n)
{
    if (n == 0 || n > PC_NAME_MAX)
        return PC_EINVAL;
    memcpy(req->name, p, n);
    req->name[n] = '\0';
    return 0;
}

/* A reference too long to be a tag, digest or upload id is kept empty: the
 * handler then answers TAG_INVALID (a manifest PUT; a read or DELETE answers
 * 404 MANIFEST_UNKNOWN), DIGEST_INVALID or BLOB_UPLOAD_UNKNOWN, the code that
 * fits the route. */
static int set_ref(pc_req *req, const char *s)
{
    size_t n = strlen(s);
    if (n >= sizeof(req->ref))
        n = 0;
    memcpy(req->ref, s, n);
    req->ref[n] = '\0';
    return 0;
}

/* Parse url into req->kind, req->name, req->ref. Returns 0 when the URL is
 * one of the API's; PC_ENOTFOUND when it is not an API path at all;
 * PC_EINVAL when it has an API shape but a name that cannot be stored
 * (too long, empty) - the caller answers NAME_INVALID. Name and reference
 * syntax are checked by the handlers. */
int pc_route_parse(pc_req *req, const char *url)
{
    const char *last;
    size_t nl;

    req->kind = PC_ROUTE_NONE;
    if (strcmp(url, "/metrics") == 0) {
        req->kind = PC_ROUTE_METRICS;
        return 0;
    }
    /* Outside /v2/, so no repository name can collide with it. */
    if (strcmp(url, "/_pullcache/status") == 0) {
        req->kind = PC_ROUTE_STATUS;
        return 0;
    }
    if (strcmp(url, "/_pullcache/history") == 0) {
        req->kind = PC_ROUTE_HISTORY;
        return 0;
    }
    /* the status page: /_pullcache/ is its index.html, the rest its files */
    if (strcmp(url, "/_pullcache/") == 0 || strcmp(url, "/_pullcache") == 0) {
        req->kind = PC_ROUTE_UI;
        return set_ref(req, "index.html");
    }
    if (strncmp(url, "/_pullcache/ui/", 15) == 0 && url[15] && !strchr(url + 15, '/')) {
        req->kind = PC_ROUTE_UI;
        return set_ref(req, url + 15);
    }
    if (strcmp(url, "/_pullcache/cache") == 0) {
        req->kind = PC_ROUTE_CACHE;
        return 0;
    }
    if (strcmp(url, "/healthz") == 0) {
        req->kind = PC_ROUTE_HEALTHZ;
        return 0;
    }
    if (strcmp(url, "/readyz") == 0) {
        req->kind = PC_ROUTE_READYZ;
        return 0;
    }
    if (strcmp(url, "/token") == 0) { /* the token service (auth_token.c) */
        req->kind = PC_ROUTE_TOKEN;
        return 0;
    }
    if (strcmp(url, "/v2/") == 0 || strcmp(url, "/v2") == 0) {
        req->kind = PC_ROUTE_BASE;
        return 0;
    }
    if (strncmp(url, "/v2/", 4) != 0)
        return PC_ENOTFOUND;
    if (strcmp(url, "/v2/_catalog") == 0) {
        req->kind = PC_ROUTE_CATALOG;
        return 0;
    }
    const char *p = url + 4;
    size_t n = strlen(p);

    if (tail2(p, n, "tags", &last, &nl) && strcmp(last, "list") == 0) {
        req->kind = PC_ROUTE_TAGS;
        return set_name(req, p, nl);
    }
    if (tail2(p, n, "manifests", &last, &nl)) {
        req->kind = PC_ROUTE_MANIFEST;
        if (set_name(req, p, nl))
            return PC_EINVAL;
        return set_ref(req, last);
    }
    if (tail2(p, n, "referrers", &last, &nl)) {
        req->kind = PC_ROUTE_REFERRERS;
        if (set_name(req, p, nl))
            return PC_EINVAL;
        return set_ref(req, last);
    }
    if (tail2(p, n, "uploads", &last, &nl)) {
        /* <name>/blobs/uploads/<id-or-empty> */
        if (nl >= 6 && memcmp(p + nl - 6, "/blobs", 6) == 0) {
            req->kind = *last == '\0' ? PC_ROUTE_UPLOAD_START : PC_ROUTE_UPLOAD;
            if (set_name(req, p, nl - 6))
                return PC_EINVAL;
            return *last == '\0' ? 0 : set_ref(req, last);
        }
    }
    if (tail2(p, n, "blobs", &last, &nl)) {
        if (strcmp(last, "uploads") == 0) {
            req->kind = PC_ROUTE_UPLOAD_START;
            return set_name(req, p, nl);
        }
        req->kind = PC_ROUTE_BLOB;
        if (set_name(req, p, nl))
            return PC_EINVAL;
        return set_ref(req, last);
    }
    return PC_ENOTFOUND;
}
