/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/hash.h - a SHA-256/SHA-512 hasher whose state can be saved to
 * bytes and restored, so a chunked upload resumed after a restart goes on
 * hashing where it stopped instead of reading the upload back.
 */
#ifndef PC_STORE_HASH_H
#define PC_STORE_HASH_H

#include "pc.h"
#include "digest.h"

typedef struct pc_hash pc_hash;

/* The most bytes pc_hash_save writes. */
#define PC_HASH_STATE_MAX 256

/* Start a hasher; *out is the caller's (pc_hash_free). 0 or PC_ENOMEM. */
int pc_hash_new(pc_hash **out, pc_digest_alg alg);
int pc_hash_update(pc_hash *h, const void *buf, size_t len);
/* The algorithm it computes. */
pc_digest_alg pc_hash_alg(const pc_hash *h);
/* Bytes hashed so far. */
uint64_t pc_hash_count(const pc_hash *h);
/* The digest of everything so far. The hasher is left as it was (more
 * updates may follow). 0 or PC_ERR. */
int pc_hash_peek(const pc_hash *h, pc_digest *out);
/* Write the state into buf (size >= PC_HASH_STATE_MAX is always enough);
 * *len the bytes used. 0 or PC_ETOOBIG. */
int pc_hash_save(const pc_hash *h, void *buf, size_t size, size_t *len);
/* A hasher from saved bytes. PC_EINVAL (message set) for bytes that are no
 * saved state of this algorithm. */
int pc_hash_restore(pc_hash **out, pc_digest_alg alg, const void *buf, size_t len);
void pc_hash_free(pc_hash *h);

#endif
