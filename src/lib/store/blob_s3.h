/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_s3.h - the S3 blob backend's options and opener (driver "s3"
 * of pc_blob_open; store/blob_s3.c, store/blob_s3_upload.c).
 *
 * Layout under the bucket's prefix:
 *   blobs/<alg>/<hex>          committed blobs
 *   uploads/<id>.state         an upload's checkpoint (sizes, parts, hash state)
 *   uploads/<id>.tail-<n>      the bytes after its last part at checkpoint n
 *   uploads/<id>.data          its multipart upload, completed there at commit
 *   tmp/t-<hex>                a temp writer's multipart upload / staging object
 *
 * Temp leftovers (tmp_list, tmp_remove) are named t-<hex> (under tmp/) or,
 * for a multipart upload left on a blob's key by a commit copying in
 * parts, by that key blobs/<alg>/<hex> (removing it never touches a blob).
 */
#ifndef PC_STORE_BLOB_S3_H
#define PC_STORE_BLOB_S3_H

#include "blob.h"
#include "s3.h"

typedef struct {
    pc_s3_opts s3;     /* endpoint, region, bucket, prefix, addressing, credentials */
    bool redirect;     /* url(): hand out presigned GET URLs */
    long redirect_ttl; /* their lifetime in seconds when url() is asked for <= 0 */
    uint64_t copy_max; /* blobs larger than this are published by UploadPartCopy in
                        * parts of this size; 0 = 5 GiB (S3's limit; at least 5 MiB) */
} pc_blob_s3_opts;

/* Open the S3 backend (o copied). Nothing is sent until the first call.
 * PC_EINVAL (message says which option) or PC_ENOMEM. */
int pc_blob_s3_open(pc_blob_backend **out, const pc_blob_s3_opts *o);

#endif
