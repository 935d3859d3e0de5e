/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3_ops.c - the S3 calls of s3.h on the one request function (s3_int.h):
 * objects (PUT, ranged GET, HEAD, DELETE, ListObjectsV2 paging, CopyObject)
 * and multipart uploads (create, part, complete, abort, list). Query strings
 * are written here already sorted by name and percent-encoded, as curl
 * signs them as they are; value-less parameters carry a trailing '='.
 */
#include "s3_int.h"
#include "s3_xml.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the object calls ---- */

int pc_s3_put(pc_s3 *s, const char *key, const void *buf, size_t len, const char *extra_hdr,
              pc_s3_info *info)
{
    s3_req r = {.what = "PUT", .method = "PUT", .key = key, .a = buf, .alen = len, .info = info};
    r.hdr[0] = extra_hdr;
    return pc_s3_request(s, &r);
}

int pc_s3_get(pc_s3 *s, const char *key, uint64_t off, uint64_t len, const char *if_match,
              int (*cb)(const void *buf, size_t n, void *ctx), void *ctx, pc_s3_info *info)
{
    char range[80], im[120];
    s3_req r = {.what = "GET", .method = "GET", .key = key, .cb = cb, .ctx = ctx, .info = info};
    size_t nh = 0;
    if (off || len) {
        if (len)
            snprintf(range, sizeof(range), "Range: bytes=%llu-%llu", (unsigned long long)off,
                     (unsigned long long)(off + len - 1));
        else
            snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)off);
        r.hdr[nh++] = range;
    }
    if (if_match && *if_match) {
        snprintf(im, sizeof(im), "If-Match: %s", if_match);
        r.hdr[nh++] = im;
    }
    return pc_s3_request(s, &r);
}

int pc_s3_head(pc_s3 *s, const char *key, pc_s3_info *info)
{
    s3_req r = {.what = "HEAD", .method = "HEAD", .key = key, .info = info};
    return pc_s3_request(s, &r);
}

int pc_s3_delete(pc_s3 *s, const char *key)
{
    s3_req r = {.what = "DELETE", .method = "DELETE", .key = key};
    return pc_s3_request(s, &r);
}

int pc_s3_list(pc_s3 *s, const char *prefix, int (*cb)(const pc_s3_obj *o, void *ctx), void *ctx)
{
    char full[1024], eprefix[3200], token[1024] = "", etoken[3200], query[7000];
    if ((size_t)snprintf(full, sizeof(full), "%s%s", s->prefix, prefix) >= sizeof(full) ||
        pc_s3_uri_encode(full, false, eprefix, sizeof(eprefix)) != 0)
        return PC_ETOOBIG;
    bool more = true;
    int rc = 0;
    while (more && rc == 0) {
        pc_buf body = {0};
        if (*token) {
            if ((rc = pc_s3_uri_encode(token, false, etoken, sizeof(etoken))))
                break;
            snprintf(query, sizeof(query), "continuation-token=%s&list-type=2&prefix=%s", etoken,
                     eprefix);
        } else {
            snprintf(query, sizeof(query), "list-type=2&prefix=%s", eprefix);
        }
        s3_req r = {.what = "LIST", .method = "GET", .query = query, .body = &body};
        if ((rc = pc_s3_request(s, &r)) == 0) {
            if (body.nomem)
                rc = PC_ENOMEM;
            else
                rc = pc_s3_xml_objects(body.s, body.len, s->prefix, cb, ctx, &more, token,
                                       sizeof(token));
        }
        pc_buf_free(&body);
    }
    return rc;
}

/* The x-amz-copy-source header naming relative key src. */
static int copy_source(pc_s3 *s, const char *src, char *hdr, size_t size)
{
    char full[2048], enc[3200];
    if ((size_t)snprintf(full, sizeof(full), "%s/%s%s", s->bucket, s->prefix, src) >=
            sizeof(full) ||
        pc_s3_uri_encode(full, true, enc, sizeof(enc)) != 0 ||
        (size_t)snprintf(hdr, size, "x-amz-copy-source: /%s", enc) >= size) {
        pc_error_set("S3 COPY %s: the key is too long", src);
        return PC_ETOOBIG;
    }
    return 0;
}

/* A copy's answer: 200 may still carry an <Error> (S3 sends the status
 * before the copy is done). */
static int copy_result(const pc_buf *body, const char *what, const char *src)
{
    char code[128];
    if (body->len && pc_s3_xml_text(body->s, body->len, "Error", "Code", code, sizeof(code)) == 0) {
        pc_error_set("S3 %s of %s: %s", what, src, code);
        return PC_EUPSTREAM;
    }
    return 0;
}

int pc_s3_copy(pc_s3 *s, const char *src, const char *dst, pc_s3_info *info)
{
    char hdr[3400];
    int rc = copy_source(s, src, hdr, sizeof(hdr));
    if (rc)
        return rc;
    pc_buf body = {0};
    s3_req r = {.what = "COPY", .method = "PUT", .key = dst, .body = &body, .info = info};
    r.hdr[0] = hdr;
    rc = pc_s3_request(s, &r);
    if (rc == 0 && body.len) {
        rc = copy_result(&body, "COPY", src);
        if (rc == 0 && info) {
            char when[64];
            pc_s3_xml_text(body.s, body.len, NULL, "ETag", info->etag, sizeof(info->etag));
            if (pc_s3_xml_text(body.s, body.len, NULL, "LastModified", when, sizeof(when)) == 0)
                pc_s3_xml_time(when, &info->mtime);
        }
    }
    pc_buf_free(&body);
    return rc;
}

/* ---- multipart ---- */

static int id_query(const char *id, const char *before, char *q, size_t size)
{
    char enc[800];
    if (pc_s3_uri_encode(id, false, enc, sizeof(enc)) != 0 ||
        (size_t)snprintf(q, size, "%suploadId=%s", before, enc) >= size)
        return PC_ETOOBIG;
    return 0;
}

int pc_s3_mpu_create(pc_s3 *s, const char *key, char *id, size_t size)
{
    pc_buf body = {0};
    s3_req r = {.what = "CREATE-MULTIPART",
                .method = "POST",
                .key = key,
                .query = "uploads=",
                .body = &body};
    int rc = pc_s3_request(s, &r);
    if (rc == 0) {
        rc = body.nomem ? PC_ENOMEM
                        : pc_s3_xml_text(body.s, body.len, "InitiateMultipartUploadResult",
                                         "UploadId", id, size);
        if (rc == 0 && !*id)
            rc = PC_ENOTFOUND;
        if (rc == PC_ENOTFOUND)
            pc_error_set("S3 CREATE-MULTIPART %s: the answer has no UploadId", key);
        if (rc == PC_ENOTFOUND)
            rc = PC_EUPSTREAM;
    }
    pc_buf_free(&body);
    return rc;
}

int pc_s3_mpu_part(pc_s3 *s, const char *key, const char *id, int number, const void *a,
                   size_t alen, const void *b, size_t blen, char *etag, size_t size)
{
    char before[40], q[900];
    snprintf(before, sizeof(before), "partNumber=%d&", number);
    if (number < 1 || number > 10000 || id_query(id, before, q, sizeof(q)) != 0) {
        pc_error_set("S3 UPLOAD-PART %s: part number %d or upload id out of range", key, number);
        return PC_EINVAL;
    }
    pc_s3_info info = {0};
    s3_req r = {.what = "UPLOAD-PART",
                .method = "PUT",
                .key = key,
                .query = q,
                .a = a,
                .alen = alen,
                .b = b,
                .blen = blen,
                .info = &info};
    int rc = pc_s3_request(s, &r);
    if (rc == 0 && (!*info.etag || strlen(info.etag) >= size)) {
        pc_error_set("S3 UPLOAD-PART %s: the answer has no usable ETag", key);
        rc = PC_EUPSTREAM;
    }
    if (rc == 0)
        snprintf(etag, size, "%s", info.etag);
    return rc;
}

/* s into b with XML's five special characters escaped (an ETag is hex in
 * quotes; nothing else is expected, but nothing else may break out). */
static void xml_escape(pc_buf *b, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '"':
            pc_buf_str(b, "&quot;");
            break;
        case '&':
            pc_buf_str(b, "&amp;");
            break;
        case '<':
            pc_buf_str(b, "&lt;");
            break;
        case '>':
            pc_buf_str(b, "&gt;");
            break;
        case '\'':
            pc_buf_str(b, "&apos;");
            break;
        default:
            pc_buf_add(b, s, 1);
        }
}

int pc_s3_mpu_copy_part(pc_s3 *s, const char *src, uint64_t first, uint64_t last, const char *key,
                        const char *id, int number, char *etag, size_t size)
{
    char hdr[3400], range[96], before[40], q[900];
    snprintf(before, sizeof(before), "partNumber=%d&", number);
    if (number < 1 || number > 10000 || last < first || id_query(id, before, q, sizeof(q)) != 0) {
        pc_error_set("S3 UPLOAD-PART-COPY %s: part number %d, range or upload id out of range", key,
                     number);
        return PC_EINVAL;
    }
    int rc = copy_source(s, src, hdr, sizeof(hdr));
    if (rc)
        return rc;
    snprintf(range, sizeof(range), "x-amz-copy-source-range: bytes=%llu-%llu",
             (unsigned long long)first, (unsigned long long)last);
    pc_buf body = {0};
    /* libcurl 7.88 sorts the signed header lines as whole strings and so
     * puts x-amz-copy-source-range before x-amz-copy-source: signed here */
    s3_req r = {.what = "UPLOAD-PART-COPY",
                .method = "PUT",
                .key = key,
                .query = q,
                .body = &body,
                .self_sign = true};
    r.hdr[0] = hdr;
    r.hdr[1] = range;
    if ((rc = pc_s3_request(s, &r)) == 0 &&
        (rc = copy_result(&body, "UPLOAD-PART-COPY", src)) == 0) {
        /* the part's ETag comes in the body (CopyPartResult), not a header */
        rc = body.nomem ? PC_ENOMEM
                        : pc_s3_xml_text(body.s, body.len, "CopyPartResult", "ETag", etag, size);
        if (rc == 0 && !*etag)
            rc = PC_ENOTFOUND;
        if (rc) {
            pc_error_set("S3 UPLOAD-PART-COPY %s: the answer has no usable ETag", key);
            rc = PC_EUPSTREAM;
        }
    }
    pc_buf_free(&body);
    return rc;
}

int pc_s3_mpu_complete(pc_s3 *s, const char *key, const char *id, const pc_s3_part *parts, size_t n,
                       pc_s3_info *info)
{
    char q[900];
    if (id_query(id, "", q, sizeof(q)))
        return PC_ETOOBIG;
    pc_buf x = {0}, body = {0};
    pc_buf_str(&x, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < n; i++) {
        pc_buf_printf(&x, "<Part><PartNumber>%d</PartNumber><ETag>", parts[i].number);
        xml_escape(&x, parts[i].etag);
        pc_buf_str(&x, "</ETag></Part>");
    }
    pc_buf_str(&x, "</CompleteMultipartUpload>");
    if (x.nomem) {
        pc_buf_free(&x);
        return PC_ENOMEM;
    }
    s3_req r = {.what = "COMPLETE-MULTIPART",
                .method = "POST",
                .key = key,
                .query = q,
                .a = x.s,
                .alen = x.len,
                .body = &body,
                .info = info};
    int rc = pc_s3_request(s, &r);
    if (rc == 0 && body.len) {
        /* like copy, a 200 may carry an <Error>; the <ETag> may be empty
         * (radosgw) */
        char code[128];
        if (pc_s3_xml_text(body.s, body.len, "Error", "Code", code, sizeof(code)) == 0) {
            pc_error_set("S3 COMPLETE-MULTIPART %s: %s", key, code);
            rc = code[0] == 'N' && strcmp(code, "NoSuchUpload") == 0 ? PC_ENOTFOUND : PC_EUPSTREAM;
        }
    }
    pc_buf_free(&x);
    pc_buf_free(&body);
    return rc;
}

int pc_s3_mpu_abort(pc_s3 *s, const char *key, const char *id)
{
    char q[900];
    if (id_query(id, "", q, sizeof(q)))
        return PC_ETOOBIG;
    s3_req r = {.what = "ABORT-MULTIPART", .method = "DELETE", .key = key, .query = q};
    return pc_s3_request(s, &r);
}

int pc_s3_mpu_list(pc_s3 *s, const char *prefix, int (*cb)(const pc_s3_mpu *m, void *ctx),
                   void *ctx)
{
    char full[1024], eprefix[3200], km[1024] = "", im[800] = "", ekm[3200], eim[2400];
    char query[9000];
    if ((size_t)snprintf(full, sizeof(full), "%s%s", s->prefix, prefix) >= sizeof(full) ||
        pc_s3_uri_encode(full, false, eprefix, sizeof(eprefix)) != 0)
        return PC_ETOOBIG;
    bool more = true;
    int rc = 0;
    while (more && rc == 0) {
        pc_buf body = {0};
        if (*km) {
            if (pc_s3_uri_encode(km, false, ekm, sizeof(ekm)) ||
                pc_s3_uri_encode(im, false, eim, sizeof(eim)))
                return PC_ETOOBIG;
            snprintf(query, sizeof(query),
                     "key-marker=%s&prefix=%s&upload-id-marker=%s&uploads=", ekm, eprefix, eim);
        } else {
            snprintf(query, sizeof(query), "prefix=%s&uploads=", eprefix);
        }
        s3_req r = {.what = "LIST-MULTIPART", .method = "GET", .query = query, .body = &body};
        if ((rc = pc_s3_request(s, &r)) == 0)
            rc = body.nomem ? PC_ENOMEM
                            : pc_s3_xml_uploads(body.s, body.len, s->prefix, cb, ctx, &more, km,
                                                sizeof(km), im, sizeof(im));
        pc_buf_free(&body);
    }
    return rc;
}
