/*
 * registry_int.h - what the registry's own files (registry*.c) share: the
 * registry itself, the only holder of the blob store and the meta store,
 * and the checks every read of a stored blob goes through. Nothing outside
 * registry*.c (and the unit tests of storage) includes it.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_REGISTRY_INT_H
#define PC_REGISTRY_INT_H

#include <pthread.h>

#include "manifest.h"
#include "store/meta.h"
#include "registry.h"
#include "store/blob.h"

#define PC_REGISTRY_ACTIVE_MAX 1024

struct pc_registry {
    pc_blob_backend *be;
    pc_metastore *ms;
    bool sqlite;          /* ms is pc_meta_sqlite_open's */
    char *data_dir;       /* NULL when wrapping stores (pc_registry_new) */
    int claim_fd;         /* serve.lock held by pc_registry_claim, or -1 */
    pthread_mutex_t lock; /* guards active[] */
    /* the uploads this process writes right now, each also held as the
     * lease "upload:<id>" in the meta store (another process sharing the
     * stores sees it), renewed as bytes arrive */
    struct {
        char id[72];
        int64_t renewed_ms;
    } active[PC_REGISTRY_ACTIVE_MAX];
    char node[PC_LEASE_OWNER_MAX]; /* this process, as a lease owner */
};

/* Wrap existing stores (fsck, tests, other backends); the registry takes
 * both (pc_registry_free frees them). 0 or PC_ENOMEM (then the caller
 * still owns them). */
int pc_registry_new(pc_registry **out, pc_blob_backend *be, pc_metastore *ms);

/* The blob store's publish lock, shared (store/blob.h): hold it from
 * before a blob becomes visible until a holder (link, manifest, access
 * record) is recorded, so that gc cannot remove it in between. */
int pc_registry_publish_lock(pc_registry *reg, pc_blob_hold *lk);
void pc_registry_publish_unlock(pc_registry *reg, pc_blob_hold *lk);

/* On a blob store without a publish lock (S3) gc and publishers meet in
 * the meta store instead. gc holds the lease "gc:<digest>" (its key:
 * pc_registry_gc_key) from its last look at d's holders until d is
 * removed, at most PC_GC_HOLD_MS. A publisher, once d is visible and its
 * holder (link, manifest, access record) recorded, calls
 * pc_registry_publish_settle: it waits while that lease is held, then looks
 * at d. A gc that takes the lease after the holder was recorded sees it and
 * keeps d; one that looked before has removed d by then, and the look finds
 * it gone: PC_ENOTFOUND (message set), and the publisher puts the bytes
 * there again or fails its request (the client retries). 0 at once where
 * the blob store has a publish lock. */
#define PC_GC_HOLD_MS 30000L
void pc_registry_gc_key(const pc_digest *d, char *key, size_t size);
int pc_registry_publish_settle(pc_registry *reg, const pc_digest *d);

/* Hash the whole of open blob r with alg into *out (through its
 * descriptor when it has one, else its read). 0 or < 0. */
int pc_registry_rd_digest(pc_blob_rd *r, pc_digest_alg alg, pc_digest *out);

/* A stored blob d whose file has `got` bytes where `want` are recorded is
 * damaged: 0 when its bytes still hash to d (the record is corrected),
 * else it is taken out of service and PC_ENOTFOUND (message set). */
int pc_registry_size_check(pc_registry *reg, const pc_digest *d, uint64_t want, uint64_t got);

/* The record of a manifest of repo under digest d, len bytes, as parsed
 * into info. */
void pc_registry_rec_fill(pc_manifest_rec *rec, const char *repo, const pc_digest *d,
                          const pc_manifest_info *info, size_t len);

#endif
