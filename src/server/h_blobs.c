/*
 * h_blobs.c - blob GET/HEAD (with Range, sent with sendfile) and DELETE.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "range.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Parse req->ref as a digest into d, answering DIGEST_INVALID on failure.
 * Returns 0 when parsed; otherwise the MHD result to return. */
static int parse_digest(pc_req *req, pc_digest *d, int *mhd)
{
    if (pc_digest_parse(d, req->ref) == 0)
        return 0;
    *mhd = pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
    return -1;
}

int pc_h_blob_get(pc_req *req)
{
    pc_digest d;
    pc_blob_reader *r = NULL;
    pc_mirror_target t;
    int mhd;
    if (parse_digest(req, &d, &mhd))
        return mhd;
    switch (pc_req_mirror_route(req, &t)) {
    case 0:
        return pc_h_mirror_blob(req, &t, &d);
    case PC_EINVAL:
        return pc_req_error(req, 400, "NAME_INVALID", pc_error_last());
    default:
        break;
    }
    int rc = pc_registry_blob_open(req->srv->reg, req->name, &d, &r);
    if (rc)
        return pc_req_fail(req, rc);
    return pc_send_blob(req, &d, r);
}

int pc_send_blob(pc_req *req, const pc_digest *dp, pc_blob_reader *r)
{
    pc_digest d = *dp;
    int rc;

    uint64_t start = 0, end = r->size ? r->size - 1 : 0, len = r->size;
    unsigned status = 200;
    const char *range = pc_req_header(req, "Range");
    char content_range[96] = "";
    if (range) {
        rc = pc_range_parse(range, r->size, &start, &end);
        if (rc == PC_ERANGE) {
            char cr[64];
            snprintf(cr, sizeof(cr), "bytes */%" PRIu64, r->size);
            r->close(r);
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            MHD_add_response_header(resp, "Content-Range", cr);
            MHD_add_response_header(resp, "Docker-Content-Digest", d.str);
            return pc_req_queue(req, 416, resp);
        }
        if (rc == 0) {
            status = 206;
            len = end - start + 1;
            snprintf(content_range, sizeof(content_range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                     start, end, r->size);
        }
        /* a malformed Range is ignored: the whole blob (RFC 9110) */
    }

    struct MHD_Response *resp;
    if (r->fd >= 0) {
        resp = MHD_create_response_from_fd_at_offset64(len, r->fd, (int64_t)start);
        if (resp)
            r->fd = -1; /* MHD closes it */
    } else {
        resp = NULL; /* non-file backends stream through read() (not yet needed) */
    }
    r->close(r);
    if (!resp)
        return pc_req_fail(req, PC_ERR);
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(resp, "Docker-Content-Digest", d.str);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    MHD_add_response_header(resp, "Cache-Control", "max-age=31536000");
    char etag[PC_DIGEST_MAX + 2];
    snprintf(etag, sizeof(etag), "\"%s\"", d.str);
    MHD_add_response_header(resp, "ETag", etag);
    if (content_range[0])
        MHD_add_response_header(resp, "Content-Range", content_range);
    req->resp_bytes = strcmp(req->method, "HEAD") == 0 ? 0 : len;
    return pc_req_queue(req, status, resp);
}

int pc_h_blob_delete(pc_req *req)
{
    pc_digest d;
    int mhd;
    if (parse_digest(req, &d, &mhd))
        return mhd;
    int rc = pc_registry_blob_delete(req->srv->reg, req->name, &d);
    if (rc)
        return pc_req_fail(req, rc);
    return pc_req_send(req, 202, NULL, "", 0, "Docker-Content-Digest", d.str, NULL);
}
