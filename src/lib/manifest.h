/*
 * manifest.h - reading manifests: which kind a manifest is, what it points
 * at (config, layers, index children), its subject and artifact type.
 * Manifests are kept byte for byte; this module only reads them (jansson).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_MANIFEST_H
#define PC_MANIFEST_H

#include "pc.h"
#include "store/meta.h"

#define PC_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define PC_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define PC_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define PC_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define PC_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define PC_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"

/* The biggest manifest accepted (413 past it). */
#define PC_MANIFEST_MAX (4 * 1024 * 1024)

typedef struct {
    char media_type[PC_MEDIA_TYPE_MAX];    /* the manifest's own media type */
    char artifact_type[PC_MEDIA_TYPE_MAX]; /* for referrers; "" when none */
    bool is_index;
    bool has_subject;
    pc_digest subject;
    pc_manifest_ref *refs; /* config + layers, or index children */
    size_t nrefs;
} pc_manifest_info;

/* Parse a manifest. content_type is the request's Content-Type (may be NULL
 * or empty). The media type is the document's "mediaType" when present,
 * else content_type; both present and different is an error. Accepts OCI
 * image manifest and index, Docker schema2 manifest and manifest list; any
 * config media type (artifacts). Returns 0, PC_EINVAL (MANIFEST_INVALID,
 * message set), PC_ETOOBIG (len > PC_MANIFEST_MAX) or PC_ENOMEM. out is
 * cleared with pc_manifest_info_clear(). */
int pc_manifest_parse(pc_manifest_info *out, const void *buf, size_t len, const char *content_type);

void pc_manifest_info_clear(pc_manifest_info *info);

/* The size the image manifest buf declares for blob d (its config or one
 * of its layers). 0 with *size, or PC_ENOTFOUND (no such descriptor, buf
 * is no image manifest, or it could not be read). */
int pc_manifest_blob_size(const void *buf, size_t len, const pc_digest *d, uint64_t *size);

/* Whether media type mt is one of the four manifest types above. */
bool pc_manifest_type_known(const char *mt);

/* Build the referrers descriptor for one manifest (mediaType, digest, size,
 * artifactType, annotations from the bytes buf) as a new jansson object
 * (json_t *, returned as void * to keep jansson out of this header).
 * NULL on failure. */
void *pc_manifest_descriptor(const pc_manifest_rec *m, const void *buf, size_t len);

#endif
