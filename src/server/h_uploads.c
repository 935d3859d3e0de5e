/*
 * h_uploads.c - blob uploads: POST (start, monolithic ?digest=, mount),
 * chunked PATCH with Content-Range, PUT to finish, GET status, DELETE.
 * Bodies stream straight into the blob store's staging area.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "range.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void upload_location(pc_req *req, char *buf, size_t size)
{
    snprintf(buf, size, "/v2/%s/blobs/uploads/%s", req->name, req->upload_id);
}

static void range_value(uint64_t size, char *buf, size_t n)
{
    snprintf(buf, n, "0-%" PRIu64, size ? size - 1 : 0);
}

/* 202 with the session's Location, Range and id. */
static int send_progress(pc_req *req, unsigned status, uint64_t size)
{
    char loc[PC_NAME_MAX + 128], range[48];
    upload_location(req, loc, sizeof(loc));
    range_value(size, range, sizeof(range));
    return pc_req_send(req, status, NULL, "", 0, "Location", loc, "Range", range,
                       "Docker-Upload-UUID", req->upload_id, NULL);
}

static int send_created(pc_req *req, const pc_digest *d)
{
    char loc[PC_NAME_MAX + PC_DIGEST_MAX + 32];
    snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", req->name, d->str);
    return pc_req_send(req, 201, NULL, "", 0, "Location", loc, "Docker-Content-Digest", d->str,
                       NULL);
}

/* Claim the session's writer and switch the request to streaming. */
static int start_streaming(pc_req *req)
{
    int rc = pc_registry_upload_open(req->srv->reg, req->name, req->upload_id, &req->writer);
    if (rc)
        return rc;
    /* a declared chunk that would take the blob past http.max_body_size
     * is refused before its first byte (server.c stops an undeclared one) */
    const char *cl = pc_req_header(req, "Content-Length");
    uint64_t n, max = req->srv->cfg->http->max_body_size;
    if (cl && pc_parse_u64(cl, &n) == 0 && (n > max || pc_blob_up_size(req->writer) > max - n)) {
        pc_registry_upload_release(req->srv->reg, req->upload_id, req->writer, false);
        req->writer = NULL;
        pc_error_set("the upload would grow past %llu bytes (http.max_body_size)",
                     (unsigned long long)max);
        return PC_ETOOBIG;
    }
    req->upload_claimed = true;
    req->upload_base = pc_blob_up_size(req->writer);
    req->body = PC_BODY_UPLOAD;
    return 0;
}

/* The chunk of this request is refused (or failed half-way, a full disk):
 * drop it, so that the session stays at what it had (its last checkpoint)
 * and a retry continues there. */
static void writer_rewind(pc_req *req)
{
    if (req->upload_claimed)
        pc_registry_upload_release(req->srv->reg, req->upload_id, req->writer, false);
    req->writer = NULL;
    req->upload_claimed = false;
}

/* End the chunk: what it wrote is made durable (a checkpoint). The
 * session's size after it, or 0 when nothing was claimed. A failed
 * checkpoint drops the chunk and sets req->write_rc. */
static uint64_t writer_release(pc_req *req)
{
    uint64_t size = req->writer ? pc_blob_up_size(req->writer) : req->upload_base;
    if (req->upload_claimed) {
        int rc = pc_registry_upload_release(req->srv->reg, req->upload_id, req->writer, true);
        if (rc && !req->write_rc) {
            req->write_rc = rc;
            size = req->upload_base;
        }
    }
    req->writer = NULL;
    req->upload_claimed = false;
    return size;
}

/* Content-Range of a PATCH/PUT must continue the upload exactly. */
static int check_content_range(pc_req *req, uint64_t size, int *mhd)
{
    const char *cr = pc_req_header(req, "Content-Range");
    if (!cr)
        return 0;
    if (pc_content_range_parse(cr, &req->range_start, &req->range_end)) {
        *mhd = pc_req_error(req, 416, "BLOB_UPLOAD_INVALID",
                            "Content-Range must be <start>-<end> continuing the upload");
        return -1;
    }
    req->has_range = true;
    if (req->range_start != size) {
        char range[48], loc[PC_NAME_MAX + 128];
        range_value(size, range, sizeof(range));
        upload_location(req, loc, sizeof(loc));
        pc_error_set("chunk starts at %" PRIu64 " but the upload has %" PRIu64 " bytes",
                     req->range_start, size);
        *mhd = pc_req_error_hdr(req, 416, "BLOB_UPLOAD_INVALID", pc_error_last(), "Range", range,
                                "Location", loc, "Docker-Upload-UUID", req->upload_id, NULL);
        return -1;
    }
    const char *cl = pc_req_header(req, "Content-Length");
    uint64_t n;
    if (cl && pc_parse_u64(cl, &n) == 0 && n != req->range_end - req->range_start + 1) {
        *mhd = pc_req_error(req, 416, "BLOB_UPLOAD_INVALID",
                            "Content-Length does not match Content-Range");
        return -1;
    }
    return 0;
}

static bool load_session(pc_req *req, uint64_t *size, int *mhd)
{
    if (!pc_upload_id_valid(req->ref)) {
        *mhd = pc_req_error(req, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
        return false;
    }
    memcpy(req->upload_id, req->ref, strlen(req->ref) + 1); /* valid ids are < 65 bytes */
    int rc = pc_registry_upload_stat(req->srv->reg, req->name, req->upload_id, size);
    if (rc) {
        *mhd = pc_req_fail(req, rc);
        return false;
    }
    return true;
}

/* ---- POST /v2/<name>/blobs/uploads/ ---- */

int pc_h_upload_start_begin(pc_req *req)
{
    pc_registry *reg = req->srv->reg;
    const char *mount = pc_req_arg(req, "mount");
    const char *digest = pc_req_arg(req, "digest");
    pc_digest d;
    int rc;

    if (mount && !req->no_mount) { /* else a plain upload, as when the blob is not there */
        if (pc_digest_parse(&d, mount))
            return pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
        const char *from = pc_req_arg(req, "from");
        if (from && !pc_ref_name_valid(from))
            return pc_req_error(req, 400, "NAME_INVALID", "invalid repository name in from=");
        if (pc_registry_blob_mount(reg, req->name, from, &d) == 0)
            return send_created(req, &d);
    }
    if (digest && pc_digest_parse(&d, digest))
        return pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
    /* a monolithic upload's session is marked: its Location is never
     * given out, so a crash's leftover can go at the next start */
    if ((rc = pc_registry_upload_start_mono(reg, req->name, req->upload_id, digest != NULL)))
        return pc_req_fail(req, rc);
    if (!digest)
        return send_progress(req, 202, 0);
    /* monolithic: the body is the blob */
    req->upload_owned = true;
    if ((rc = start_streaming(req)))
        return pc_req_fail(req, rc);
    return MHD_YES;
}

static int finish_upload(pc_req *req, const char *digest)
{
    pc_digest d;
    uint64_t size;
    if (req->write_rc) {
        writer_rewind(req);
        return pc_req_fail(req, req->write_rc);
    }
    if (pc_digest_parse(&d, digest)) {
        writer_rewind(req);
        return pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
    }
    /* the upload as this request left it: finish takes it (and the claim) */
    pc_blob_up *u = req->upload_claimed ? req->writer : NULL;
    req->writer = NULL;
    req->upload_claimed = false;
    int rc = pc_registry_upload_finish(req->srv->reg, req->name, req->upload_id, u, &d, &size);
    req->upload_owned = false; /* the session ended (published or dropped) */
    if (rc == PC_EDIGEST)
        return pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
    if (rc)
        return pc_req_fail(req, rc);
    return send_created(req, &d);
}

int pc_h_upload_start_finish(pc_req *req)
{
    return finish_upload(req, pc_req_arg(req, "digest"));
}

/* ---- PATCH /v2/<name>/blobs/uploads/<id> ---- */

int pc_h_upload_patch_begin(pc_req *req)
{
    uint64_t size;
    int mhd, rc;
    if (!load_session(req, &size, &mhd))
        return mhd;
    if (check_content_range(req, size, &mhd))
        return mhd;
    if ((rc = start_streaming(req)))
        return pc_req_fail(req, rc);
    return MHD_YES;
}

int pc_h_upload_patch_finish(pc_req *req)
{
    bool bad_len = req->has_range && req->body_bytes != req->range_end - req->range_start + 1;
    if (req->write_rc || bad_len)
        writer_rewind(req); /* a refused chunk appends nothing */
    uint64_t size = writer_release(req);
    if (req->write_rc)
        return pc_req_fail(req, req->write_rc);
    if (bad_len)
        return pc_req_error(req, 416, "BLOB_UPLOAD_INVALID",
                            "body length does not match Content-Range");
    return send_progress(req, 202, size);
}

/* ---- PUT /v2/<name>/blobs/uploads/<id>?digest= ---- */

int pc_h_upload_put_begin(pc_req *req)
{
    uint64_t size;
    pc_digest d;
    int mhd, rc;
    const char *digest = pc_req_arg(req, "digest");
    if (!digest || pc_digest_parse(&d, digest))
        return pc_req_error(req, 400, "DIGEST_INVALID",
                            digest ? pc_error_last() : "the digest parameter is required");
    if (!load_session(req, &size, &mhd))
        return mhd;
    if (check_content_range(req, size, &mhd))
        return mhd;
    if ((rc = start_streaming(req)))
        return pc_req_fail(req, rc);
    return MHD_YES;
}

int pc_h_upload_put_finish(pc_req *req)
{
    if (req->has_range && req->body_bytes != req->range_end - req->range_start + 1) {
        writer_rewind(req);
        writer_release(req);
        return pc_req_error(req, 416, "BLOB_UPLOAD_INVALID",
                            "body length does not match Content-Range");
    }
    if (req->write_rc)
        writer_rewind(req);
    return finish_upload(req, pc_req_arg(req, "digest"));
}

/* ---- GET and DELETE /v2/<name>/blobs/uploads/<id> ---- */

int pc_h_upload_get(pc_req *req)
{
    uint64_t size;
    int mhd;
    if (!load_session(req, &size, &mhd))
        return mhd;
    return send_progress(req, 204, size);
}

int pc_h_upload_delete(pc_req *req)
{
    uint64_t size;
    int mhd;
    if (!load_session(req, &size, &mhd))
        return mhd;
    int rc = pc_registry_upload_cancel(req->srv->reg, req->name, req->upload_id);
    if (rc)
        return pc_req_fail(req, rc);
    return pc_req_send(req, 204, NULL, "", 0, NULL);
}
