/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * manifest_memo.c - small manifests' bytes kept in memory, for blob
 * backends where every read is a network round trip (an object store:
 * PC_BLOB_CAP_REMOTE), so that a manifest GET by digest costs the meta
 * store's lookup only (registry_cache.c).
 *
 * Bytes are content-addressed and immutable; an entry is made only from
 * bytes that hashed to their digest, so it can never serve other bytes
 * than the stored manifest's. Whether the repository holds the manifest is
 * still asked of the meta store on every request. A direct-mapped table of
 * MEMO_SLOTS entries of at most MEMO_ENTRY_MAX bytes (at most 16 MiB in
 * all; manifests are mostly a few KiB): a colliding digest replaces the
 * older entry.
 */
#include "manifest_memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEMO_SLOTS 512
#define MEMO_ENTRY_MAX (32 * 1024)

typedef struct {
    pc_digest d;
    unsigned char *buf; /* NULL: empty */
    size_t len;
} memo_entry;

static memo_entry memo[MEMO_SLOTS];
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t memo_slot(const pc_digest *d)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)d->str; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return (size_t)(h % MEMO_SLOTS);
}

int pc_manifest_memo_get(const pc_digest *d, void **buf, size_t *len)
{
    int rc = PC_ENOTFOUND;
    pthread_mutex_lock(&memo_lock);
    memo_entry *e = &memo[memo_slot(d)];
    if (e->buf && pc_digest_equal(&e->d, d)) {
        void *copy = malloc(e->len ? e->len : 1);
        if (copy) {
            memcpy(copy, e->buf, e->len);
            *buf = copy;
            *len = e->len;
            rc = 0;
        } else {
            rc = PC_ENOMEM;
        }
    }
    pthread_mutex_unlock(&memo_lock);
    return rc;
}

void pc_manifest_memo_put(const pc_digest *d, const void *buf, size_t len)
{
    pc_digest got;
    if (len > MEMO_ENTRY_MAX || pc_digest_buffer(&got, d->alg, buf, len) != 0 ||
        !pc_digest_equal(&got, d))
        return;
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, buf, len);
    pthread_mutex_lock(&memo_lock);
    memo_entry *e = &memo[memo_slot(d)];
    unsigned char *old = e->buf;
    e->d = *d;
    e->buf = copy;
    e->len = len;
    pthread_mutex_unlock(&memo_lock);
    free(old);
}
