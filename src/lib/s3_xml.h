/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3_xml.h - reading S3's XML answers (ListObjectsV2, ListMultipartUploads,
 * InitiateMultipartUpload, CompleteMultipartUpload, CopyObject, Error) with
 * libxml2, for s3.c. Separate so the parsing is tested on its own
 * (tests/unit/test_s3_xml.c) without a server.
 *
 * Elements are matched by local name (any namespace), children of the
 * root only, so an answer's shape, not its namespace prefix, decides.
 * Documents are parsed without network access and without entity
 * substitution (no external entities, no DTD loading).
 */
#ifndef PC_S3_XML_H
#define PC_S3_XML_H

#include "s3.h"

/* The text of the first child element `name` of the root (an entity such
 * as &quot; decoded) into buf; root, when not NULL, must be the root
 * element's local name. PC_ENOTFOUND when absent, PC_EINVAL when the
 * document does not parse or its root differs, PC_ETOOBIG when it does
 * not fit. */
int pc_s3_xml_text(const char *xml, size_t len, const char *root, const char *name, char *buf,
                   size_t size);

/* A ListBucketResult: cb for every <Contents> whose <Key> starts with
 * strip (which is taken off), in document order; *truncated and the next
 * continuation token (into token; "" when none). cb's non-zero stops and
 * is returned. PC_EINVAL for a document that is no ListBucketResult or a
 * <Contents> without a key. */
int pc_s3_xml_objects(const char *xml, size_t len, const char *strip,
                      int (*cb)(const pc_s3_obj *o, void *ctx), void *ctx, bool *truncated,
                      char *token, size_t tsize);

/* A ListMultipartUploadsResult: cb for every <Upload> whose key starts
 * with strip; *truncated and the next key and upload-id markers. */
int pc_s3_xml_uploads(const char *xml, size_t len, const char *strip,
                      int (*cb)(const pc_s3_mpu *m, void *ctx), void *ctx, bool *truncated,
                      char *key_marker, size_t ksize, char *id_marker, size_t isize);

/* An ISO 8601 UTC time as S3 writes it ("2026-12-03T07:03:56.385Z", the
 * fraction optional) into *out. PC_EINVAL otherwise. */
int pc_s3_xml_time(const char *s, time_t *out);

#endif
