/*
 * digest.h - content digests ("sha256:<64 hex>", "sha512:<128 hex>"):
 * validation and streaming computation (OpenSSL EVP).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_DIGEST_H
#define PC_DIGEST_H

#include "pc.h"

typedef enum { PC_DIGEST_SHA256 = 0, PC_DIGEST_SHA512 = 1 } pc_digest_alg;

#define PC_DIGEST_MAX 136 /* "sha512:" + 128 hex + NUL, rounded */

typedef struct {
    pc_digest_alg alg;
    char str[PC_DIGEST_MAX]; /* canonical "alg:hex" */
} pc_digest;

/* Parse and validate s as a digest. Only sha256 (64 lowercase hex) and
 * sha512 (128 lowercase hex) are accepted. Returns 0, PC_EINVAL for a
 * malformed digest, PC_ENOTSUP for a well-formed digest of another
 * algorithm (the spec's DIGEST_INVALID either way). */
int pc_digest_parse(pc_digest *out, const char *s);

/* The hex part of a parsed digest (borrowed from d). */
const char *pc_digest_hex(const pc_digest *d);

/* The algorithm name ("sha256"). Static string. */
const char *pc_digest_alg_name(pc_digest_alg alg);

/* Equality of two parsed digests. */
bool pc_digest_equal(const pc_digest *a, const pc_digest *b);

/* Digest of a whole buffer. Returns 0 or PC_ERR. */
int pc_digest_buffer(pc_digest *out, pc_digest_alg alg, const void *buf, size_t len);

/* Streaming hasher. */
typedef struct pc_hasher pc_hasher;

/* Start a hasher; *out is the caller's, freed with pc_hasher_free(). */
int pc_hasher_new(pc_hasher **out, pc_digest_alg alg);
int pc_hasher_update(pc_hasher *h, const void *buf, size_t len);
/* Finish into out; the hasher may not be updated afterwards. */
int pc_hasher_final(pc_hasher *h, pc_digest *out);
void pc_hasher_free(pc_hasher *h);

/* Digest of an open file descriptor's content from offset 0 (pread, so the
 * file position is untouched). Returns 0, PC_ERR on I/O failure. */
int pc_digest_fd(pc_digest *out, pc_digest_alg alg, int fd);

#endif
