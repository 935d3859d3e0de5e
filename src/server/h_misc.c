/*
 * h_misc.c - the small endpoints: API version check, catalog, tag list,
 * referrers.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "range.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int pc_h_base(pc_req *req)
{
    return pc_req_send(req, 200, "application/json", "{}", 2, NULL);
}

/* Parse the ?n= argument: -1 when absent. Answers 400 when malformed. */
static int parse_n(pc_req *req, long *n, int *mhd)
{
    const char *s = pc_req_arg(req, "n");
    uint64_t v;
    *n = -1;
    if (!s)
        return 0;
    if (pc_parse_u64(s, &v) || v > 100000) {
        *mhd = pc_req_error(req, 400, "PAGINATION_NUMBER_INVALID",
                            "n must be a number between 0 and 100000");
        return -1;
    }
    *n = (long)v;
    return 0;
}

static int send_list(pc_req *req, char *json, bool more, long n, const char *last)
{
    char link[PC_NAME_MAX * 2 + 128] = "";
    if (more) {
        if (req->kind == PC_ROUTE_CATALOG)
            snprintf(link, sizeof(link), "</v2/_catalog?n=%ld&last=%s>; rel=\"next\"", n, last);
        else
            snprintf(link, sizeof(link), "</v2/%s/tags/list?n=%ld&last=%s>; rel=\"next\"",
                     req->name, n, last);
    }
    int r = pc_req_send(req, 200, "application/json", json, strlen(json), "Link",
                        link[0] ? link : NULL, NULL);
    free(json);
    return r;
}

/* With access control, the catalog lists only the names the requester may
 * pull (the registry skips the others and still fills the page). */
static bool catalog_keep(const char *name, void *ctx)
{
    return pc_req_may_pull(ctx, name);
}

int pc_h_catalog(pc_req *req)
{
    long n;
    int mhd;
    char *json = NULL, last_out[PC_NAME_MAX + 1] = "";
    bool more = false;
    if (parse_n(req, &n, &mhd))
        return mhd;
    const char *last = pc_req_arg(req, "last");
    int rc = pc_registry_catalog_json(req->srv->reg, last, n, req->srv->authn ? catalog_keep : NULL,
                                      req, &json, &more, last_out, sizeof(last_out));
    if (rc)
        return pc_req_fail(req, rc);
    return send_list(req, json, more, n, last_out);
}

int pc_h_tags(pc_req *req)
{
    long n;
    int mhd;
    char *json = NULL, last_out[PC_TAG_MAX + 1] = "";
    bool more = false;
    if (parse_n(req, &n, &mhd))
        return mhd;
    const char *last = pc_req_arg(req, "last");
    pc_mirror_target t;
    switch (pc_req_mirror_route(req, &t)) {
    case 0:
        return pc_h_mirror_tags(req, &t, n, last);
    case PC_EINVAL:
        return pc_req_error(req, 400, "NAME_INVALID", pc_error_last());
    default:
        break;
    }
    int rc = pc_registry_tags_json(req->srv->reg, req->name, last, n, &json, &more, last_out,
                                   sizeof(last_out));
    if (rc)
        return pc_req_fail(req, rc);
    return send_list(req, json, more, n, last_out);
}

int pc_h_referrers(pc_req *req)
{
    pc_digest d;
    char *json = NULL;
    if (pc_digest_parse(&d, req->ref))
        return pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
    const char *at = pc_req_arg(req, "artifactType");
    if (at && !*at)
        at = NULL;
    pc_mirror_target t;
    switch (pc_req_mirror_route(req, &t)) {
    case 0:
        return pc_h_mirror_referrers(req, &t, &d, at);
    case PC_EINVAL:
        return pc_req_error(req, 400, "NAME_INVALID", pc_error_last());
    default:
        break;
    }
    int rc = pc_registry_referrers_json(req->srv->reg, req->name, &d, at, &json);
    if (rc)
        return pc_req_fail(req, rc);
    int r = pc_req_send(req, 200, "application/vnd.oci.image.index.v1+json", json, strlen(json),
                        "OCI-Filters-Applied", at ? "artifactType" : NULL, NULL);
    free(json);
    return r;
}
