/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_s3_int.h - what the two halves of the S3 blob backend share
 * (blob_s3.c: blobs, listings, leftovers; blob_s3_upload.c: writers).
 */
#ifndef PC_STORE_BLOB_S3_INT_H
#define PC_STORE_BLOB_S3_INT_H

#include "blob_s3.h"

#define S3_MIN_PART ((uint64_t)5 << 20) /* S3's smallest part but the last */
#define S3_KEY_MAX 256
#define S3_COPY_MAX ((uint64_t)5 << 30) /* S3's largest CopyObject and copied part */

typedef struct {
    pc_blob_backend base;
    pc_s3 *s3;
    char locate[512]; /* "s3://bucket/prefix" for messages */
    bool redirect;
    long redirect_ttl;
    uint64_t copy_max; /* the largest blob published by one CopyObject */
} s3_store;

static inline s3_store *s3_of(pc_blob_backend *be)
{
    return (s3_store *)be;
}

/* Seconds since t (0 when in the future). */
long pc_blob_s3_age(time_t t);

/* Abort every multipart upload under prefix (relative key). */
int pc_blob_s3_abort_all(s3_store *st, const char *prefix);

/* Abort every multipart upload under prefix (relative key), then, when
 * that worked, remove every object under it. *found: whether there was
 * anything. 0 or < 0. */
int pc_blob_s3_purge(s3_store *st, const char *prefix, bool *found);

/* open(): a reader of blob d (blob_s3_read.c). */
int pc_blob_s3_open_rd(s3_store *st, const pc_digest *d, pc_blob_rd **out);

/* The upload half (blob_s3_upload.c). */
int pc_blob_s3_writer(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out);
int pc_blob_s3_upload_stat(pc_blob_backend *be, const char *id, uint64_t *size);
int pc_blob_s3_upload_remove(pc_blob_backend *be, const char *id, long min_age_s);
int pc_blob_s3_upload_list(pc_blob_backend *be,
                           int (*cb)(const char *id, uint64_t size, long age_s, void *ctx),
                           void *ctx);
/* "blobs/<alg>/<hex>" of re-validated d into key. 0 or PC_EINVAL. */
int pc_blob_s3_blob_key(const pc_digest *d, char *key, size_t size);

#endif
