/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/spool.h - the local spool of one in-flight pull-through fetch: a
 * file that grows while any number of readers stream it, hashed as it
 * grows, then committed into any blob backend. Separate from the durable
 * store, so coalescing and "the last byte is held back until the digest
 * verifies" work the same over fs, memory or S3.
 *
 * Life: create (one writer appends, readers read at offsets) -> finish
 * (the hash must equal the expected digest: verified) or fail -> commit
 * into a backend (verified only) -> the last unref frees it. The file has
 * no name from the start (O_TMPFILE, or unlinked at once), so a crash
 * leaves nothing behind.
 */
#ifndef PC_STORE_SPOOL_H
#define PC_STORE_SPOOL_H

#include "blob.h"

typedef struct pc_spool pc_spool;

typedef struct {
    /* Bytes at the end that readers do not see until the digest verified
     * (the registry uses 1: a transfer that turns out bad can never
     * complete at a client). 0: readers see everything appended. */
    uint64_t holdback;
    /* Called with no lock held after bytes arrive and when the spool ends
     * (verified or failed), from the appending thread. May be NULL. */
    void (*notify)(void *ctx);
    void *ctx;
} pc_spool_opts;

/* A new spool in directory dir for content expected to hash to want.
 * *out holds one reference (pc_spool_unref). 0 or < 0. */
int pc_spool_create(const char *dir, const pc_digest *want, const pc_spool_opts *o, pc_spool **out);
void pc_spool_ref(pc_spool *s);
void pc_spool_unref(pc_spool *s);

/* The writer: append (hashing), then finish or fail. append after the
 * end is PC_EINVAL. finish: 0 when the bytes hash to want, else
 * PC_EDIGEST (the spool fails with it). fail ends the spool with code (<
 * 0, e.g. PC_EUPSTREAM); readers then get code. */
int pc_spool_append(pc_spool *s, const void *buf, size_t len);
int pc_spool_finish(pc_spool *s);
void pc_spool_fail(pc_spool *s, int code);

/* Readers: copy up to len bytes at off that may be shown (all received
 * bytes once verified, else all but the hold-back). Returns the bytes
 * copied; 0 when none may be shown yet (wait: notify or pc_spool_wait);
 * PC_ENOTFOUND at the end of a verified spool; the failure code of a
 * failed one. */
long pc_spool_read(pc_spool *s, uint64_t off, void *buf, size_t len);
/* Block until bytes at off may be shown or the spool ended. */
void pc_spool_wait(pc_spool *s, uint64_t off);

/* Bytes appended so far, and bytes readers may see now. */
uint64_t pc_spool_received(pc_spool *s);
uint64_t pc_spool_readable(pc_spool *s);
/* Whether it verified (and its size, when size is not NULL). */
bool pc_spool_verified(pc_spool *s, uint64_t *size);

/* Publish a verified spool into be under its digest: the backend adopts
 * the file when it can (fs on the same filesystem: no copy), else the
 * bytes are copied through a hashing temp writer (pc_blob_up, so the copy
 * is checked once more). PC_EINVAL when not verified. Readers keep
 * reading the spool meanwhile. */
int pc_spool_commit(pc_spool *s, pc_blob_backend *be);

#endif
