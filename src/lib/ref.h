/*
 * ref.h - names, tags and image references, validated by the OCI
 * distribution spec's grammar.
 *
 *   name      [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *             at most 255 characters in all
 *   tag       [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 *   reference [host[:port]/]name[:tag][@digest]
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_REF_H
#define PC_REF_H

#include "pc.h"
#include "digest.h"

#define PC_NAME_MAX 255
#define PC_TAG_MAX 128
#define PC_HOST_MAX 256

/* Whether s is a valid repository name (spec regex, <= 255 chars). */
bool pc_ref_name_valid(const char *s);

/* Same, for the first len bytes of s. */
bool pc_ref_name_valid_n(const char *s, size_t len);

/* Whether the first len bytes of s, a reference's first path component,
 * name a registry host: they contain '.' or ':' or are "localhost" (Docker's
 * rule). */
bool pc_ref_host_like(const char *s, size_t len);

/* Whether s is a valid tag. */
bool pc_ref_tag_valid(const char *s);

/* A parsed image reference, as a user types it on the command line. */
typedef struct {
    char host[PC_HOST_MAX];     /* "docker.io", "127.0.0.1:5000" */
    char name[PC_NAME_MAX + 1]; /* "library/nginx" */
    char tag[PC_TAG_MAX + 1];   /* "" when only a digest is given */
    bool has_digest;
    pc_digest digest;
} pc_ref;

/* Parse s into out, with Docker's defaults: no host means "docker.io", a
 * single-component docker.io name gets "library/", no tag and no digest means
 * tag "latest". A first component is a host when it contains '.' or ':' or is
 * "localhost". Returns 0 or PC_EINVAL (message set). */
int pc_ref_parse(pc_ref *out, const char *s);

/* Format a reference back ("host/name:tag@digest") into buf. Returns the
 * length, or PC_ETOOBIG if buf is too small. */
int pc_ref_format(const pc_ref *r, char *buf, size_t size);

#endif
