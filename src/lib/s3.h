/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3.h - a small S3 client on libcurl (SigV4 through CURLOPT_AWS_SIGV4, no
 * SDK): the object calls the S3 blob backend (store/blob_s3.c) needs, on one
 * bucket under one key prefix.
 *
 * Keys given to and reported by these functions are relative to the
 * configured prefix ("blobs/sha256/<hex>" is PREFIX/blobs/sha256/<hex> in
 * the bucket). Every function is safe from any thread: transfers take a
 * curl handle from a pool (connections are kept alive per handle).
 *
 * Results are pc.h codes: PC_ENOTFOUND (404, NoSuchKey, NoSuchUpload),
 * PC_ECONFLICT (412: a condition such as If-Match failed), PC_EAUTH (403
 * with a signature or key error), PC_EDENIED (other 403), PC_ENOSPC (quota),
 * PC_EUPSTREAM (5xx, network), PC_ERR otherwise; the message (pc_error_set)
 * names the call, key and S3's error code, and never contains the secret
 * key or an Authorization header.
 */
#ifndef PC_S3_H
#define PC_S3_H

#include "pc.h"

#include <time.h>

/* Borrowed strings. */
typedef struct {
    const char *endpoint;         /* http(s)://host[:port] */
    const char *region;           /* SigV4 region ("us-east-1" when NULL) */
    const char *bucket;           /* required */
    const char *prefix;           /* key prefix ("" or NULL: none; a '/' is added) */
    bool path_style;              /* endpoint/bucket/key, else bucket.host/key */
    const char *credentials_file; /* NULL: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY */
    long timeout_s;               /* per-request stall limit; 0 = 60 */
} pc_s3_opts;

typedef struct pc_s3 pc_s3;

/* What a call learnt about an object (any field may be unset: 0 / ""). */
typedef struct {
    uint64_t size; /* Content-Length (HEAD), or the whole size (ranged GET) */
    time_t mtime;  /* Last-Modified */
    char etag[80]; /* with its quotes, as S3 sends it */
} pc_s3_info;

/* One object of a listing. */
typedef struct {
    const char *key; /* relative to the prefix */
    uint64_t size;
    time_t mtime;
    const char *etag;
} pc_s3_obj;

/* One multipart upload of a listing. */
typedef struct {
    const char *key;
    const char *upload_id;
    time_t initiated;
} pc_s3_mpu;

/* One uploaded part, for complete. */
typedef struct {
    int number;
    char etag[80];
} pc_s3_part;

/* A client for o (copied). Credentials come from o->credentials_file (lines
 * `aws_access_key_id = ...` / `aws_secret_access_key = ...`, the AWS
 * credentials file's names; `[section]` lines are ignored) or else the
 * environment. PC_EINVAL (message says which setting) or PC_ENOMEM. */
int pc_s3_open(const pc_s3_opts *o, pc_s3 **out);
void pc_s3_free(pc_s3 *s);

/* PUT key from buf (len bytes). extra_hdr: one more request header line
 * ("If-None-Match: *") or NULL. info may be NULL. */
int pc_s3_put(pc_s3 *s, const char *key, const void *buf, size_t len, const char *extra_hdr,
              pc_s3_info *info);

/* GET bytes [off, off+len) of key (len 0: to the end) and hand them to cb
 * as they arrive (cb returns 0 to go on). if_match: an ETag the object must
 * still have (PC_ECONFLICT when not) or NULL. info gets the ETag and the
 * object's whole size (from Content-Range), already when cb is first
 * called. Asking past the end is PC_ERANGE. */
int pc_s3_get(pc_s3 *s, const char *key, uint64_t off, uint64_t len, const char *if_match,
              int (*cb)(const void *buf, size_t n, void *ctx), void *ctx, pc_s3_info *info);

/* HEAD key. */
int pc_s3_head(pc_s3 *s, const char *key, pc_s3_info *info);

/* DELETE key (S3 answers 204 for a missing key too: 0). */
int pc_s3_delete(pc_s3 *s, const char *key);

/* Every object under prefix (relative), in pages of ListObjectsV2; stops
 * and returns cb's value when non-zero. */
int pc_s3_list(pc_s3 *s, const char *prefix, int (*cb)(const pc_s3_obj *o, void *ctx), void *ctx);

/* CopyObject src to dst (server side; S3 limits this to 5 GiB). */
int pc_s3_copy(pc_s3 *s, const char *src, const char *dst, pc_s3_info *info);

/* ---- multipart uploads ---- */

/* Start one on key; its id into id (size >= 256). */
int pc_s3_mpu_create(pc_s3 *s, const char *key, char *id, size_t size);
/* Upload part number (1..10000) as the bytes of a then b (either may be
 * empty); its ETag into etag (size >= 80). */
int pc_s3_mpu_part(pc_s3 *s, const char *key, const char *id, int number, const void *a,
                   size_t alen, const void *b, size_t blen, char *etag, size_t size);
/* Upload part number of upload id on key as bytes [first, last] of object
 * src (UploadPartCopy, server side; at most 5 GiB a part); its ETag into
 * etag. */
int pc_s3_mpu_copy_part(pc_s3 *s, const char *src, uint64_t first, uint64_t last, const char *key,
                        const char *id, int number, char *etag, size_t size);
/* Complete with parts (ascending numbers). */
int pc_s3_mpu_complete(pc_s3 *s, const char *key, const char *id, const pc_s3_part *parts, size_t n,
                       pc_s3_info *info);
/* Abort (PC_ENOTFOUND when unknown). */
int pc_s3_mpu_abort(pc_s3 *s, const char *key, const char *id);
/* Every multipart upload under prefix (ListMultipartUploads, paged). */
int pc_s3_mpu_list(pc_s3 *s, const char *prefix, int (*cb)(const pc_s3_mpu *m, void *ctx),
                   void *ctx);

/* ---- presigned URLs ---- */

/* A presigned GET URL of key valid for ttl_s seconds (1..604800) from
 * now. PC_ETOOBIG when size is too small. */
int pc_s3_presign(pc_s3 *s, const char *key, long ttl_s, time_t now, char *buf, size_t size);

/* The same without a client, for tests against published vectors: url is
 * the object's full URL (scheme://host/path, path already percent-encoded
 * as it is to be sent), host the Host header value. */
int pc_s3_presign_url(const char *url, const char *host, const char *region, const char *access_key,
                      const char *secret_key, long ttl_s, time_t now, char *buf, size_t size);

/* The SigV4 Authorization header line ("Authorization: AWS4-HMAC-SHA256
 * ...") into authz, and the x-amz-date value into stamp, for a request
 * method on path (as sent, percent-encoded) with query (sorted and encoded,
 * or NULL) to host, signing host, x-amz-date and the header lines hdrs
 * ("name: value", at most 12). The payload hash signed is the value of the
 * x-amz-content-sha256 line among them (UNSIGNED-PAYLOAD without one). For
 * the requests libcurl 7.88 signs wrongly (s3_sign.c). */
int pc_s3_sign_headers(const char *method, const char *path, const char *query, const char *host,
                       const char *const *hdrs, size_t n, const char *region,
                       const char *access_key, const char *secret_key, time_t now, char *authz,
                       size_t asize, char stamp[17]);

/* ---- helpers shared with the tests ---- */

/* Percent-encode s as SigV4 wants (unreserved A-Za-z0-9-._~ kept; '/' kept
 * when keep_slash). PC_ETOOBIG when it does not fit. */
int pc_s3_uri_encode(const char *s, bool keep_slash, char *buf, size_t size);

#endif
