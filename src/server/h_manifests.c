/*
 * h_manifests.c - manifest GET/HEAD (exact stored bytes, sent from the blob
 * store), PUT (buffered up to 4 MiB, checked, stored) and DELETE.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "manifest.h"
#include "range.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Check req->ref: a digest (has ':') or a tag. Answers on failure: a malformed
 * digest is 400 DIGEST_INVALID; a reference that is no valid tag is 400
 * TAG_INVALID for a PUT (it cannot be stored under that name), but for a read
 * or a DELETE it names nothing that can exist, so 404 MANIFEST_UNKNOWN, as
 * the OCI conformance suite expects (its ".INVALID_MANIFEST_NAME"). */
static bool reference_ok(pc_req *req, bool put, int *mhd)
{
    if (strchr(req->ref, ':')) {
        pc_digest d;
        if (pc_digest_parse(&d, req->ref) == 0)
            return true;
        *mhd = pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
        return false;
    }
    if (pc_ref_tag_valid(req->ref))
        return true;
    if (put)
        *mhd =
            pc_req_error(req, 400, "TAG_INVALID", "invalid tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
    else
        *mhd = pc_req_error(req, 404, "MANIFEST_UNKNOWN",
                            "manifest unknown: the reference is no valid tag or digest");
    return false;
}

int pc_send_manifest(pc_req *req, const pc_manifest_rec *m, const char *warning)
{
    /* Manifests are small: one buffer lets the headers and body leave in
     * a single write. */
    void *buf = NULL;
    size_t size = 0;
    int rc = pc_registry_manifest_bytes(req->srv->reg, &m->digest, &buf, &size);
    if (rc) {
        if (rc == PC_ENOTFOUND)
            pc_error_set("manifest %s is recorded but its bytes are missing; run pullcache fsck",
                         m->digest.str);
        return pc_req_fail(req, rc == PC_ENOTFOUND ? PC_ERR : rc);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(size, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(buf);
        return pc_req_fail(req, PC_ENOMEM);
    }
    MHD_add_response_header(resp, "Content-Type", m->media_type);
    MHD_add_response_header(resp, "Docker-Content-Digest", m->digest.str);
    char etag[PC_DIGEST_MAX + 2];
    snprintf(etag, sizeof(etag), "\"%s\"", m->digest.str);
    MHD_add_response_header(resp, "ETag", etag);
    if (warning && *warning)
        MHD_add_response_header(resp, "Warning", warning);
    req->resp_bytes = strcmp(req->method, "HEAD") == 0 ? 0 : size;
    return pc_req_queue(req, 200, resp);
}

int pc_h_manifest_get(pc_req *req)
{
    pc_manifest_rec m;
    pc_mirror_target t;
    int mhd;
    if (!reference_ok(req, false, &mhd))
        return mhd;
    switch (pc_req_mirror_route(req, &t)) {
    case 0:
        return pc_h_mirror_manifest(req, &t);
    case PC_EINVAL:
        return pc_req_error(req, 400, "NAME_INVALID", pc_error_last());
    default:
        break;
    }
    int rc = pc_registry_manifest_resolve(req->srv->reg, req->name, req->ref, &m);
    if (rc)
        return pc_req_fail(req, rc);
    return pc_send_manifest(req, &m, NULL);
}

int pc_h_manifest_put_begin(pc_req *req)
{
    int mhd;
    if (!reference_ok(req, true, &mhd))
        return mhd;
    const char *cl = pc_req_header(req, "Content-Length");
    uint64_t n;
    /* Far too big: answer before the body (the connection closes). A body
     * a little too big is read and dropped (body_take keeps at most max),
     * then answered 413 at its end: a client still sending when an early
     * answer closes the connection gets a reset, not the 413. */
    if (cl && pc_parse_u64(cl, &n) == 0 && n > 16 * (uint64_t)PC_MANIFEST_MAX)
        return pc_req_error(req, 413, "SIZE_INVALID", "manifest larger than 4 MiB");
    req->body = PC_BODY_BUFFER;
    req->max = PC_MANIFEST_MAX;
    return MHD_YES;
}

int pc_h_manifest_put_finish(pc_req *req)
{
    pc_manifest_put_result res;
    if (req->too_big)
        return pc_req_error(req, 413, "SIZE_INVALID", "manifest larger than 4 MiB");
    if (req->write_rc)
        return pc_req_fail(req, req->write_rc);
    int rc = pc_registry_manifest_put(req->srv->reg, req->name, req->ref,
                                      pc_req_header(req, "Content-Type"), req->buf ? req->buf : "",
                                      req->len, &res);
    switch (rc) {
    case 0:
        break;
    case PC_ENOTFOUND:
        return pc_req_error(req, 400, "MANIFEST_BLOB_UNKNOWN", pc_error_last());
    case PC_EDIGEST:
        return pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
    case PC_EINVAL:
        return pc_req_error(req, 400, "MANIFEST_INVALID", pc_error_last());
    default:
        return pc_req_fail(req, rc);
    }
    char loc[PC_NAME_MAX + PC_DIGEST_MAX + 32];
    snprintf(loc, sizeof(loc), "/v2/%s/manifests/%s", req->name, res.digest.str);
    return pc_req_send(req, 201, NULL, "", 0, "Location", loc, "Docker-Content-Digest",
                       res.digest.str, "OCI-Subject", res.has_subject ? res.subject.str : NULL,
                       NULL);
}

int pc_h_manifest_delete(pc_req *req)
{
    int mhd;
    if (!reference_ok(req, false, &mhd))
        return mhd;
    int rc = pc_registry_manifest_delete(req->srv->reg, req->name, req->ref);
    if (rc)
        return pc_req_fail(req, rc);
    return pc_req_send(req, 202, NULL, "", 0, NULL);
}
