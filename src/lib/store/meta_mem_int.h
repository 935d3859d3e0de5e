/*
 * meta_mem_int.h - what the files of the in-memory meta store share:
 * the store, its rows, the sorted pointer arrays that index them, and
 * the helpers that find, insert and remove rows (meta_mem.c). Internal to
 * the in-memory meta store.
 *
 *   meta_mem.c        the store, open and free, indexes, shared helpers
 *   meta_mem_reg.c    blob links, manifests, tags, referrers, catalog,
 *                     uploads, gc queries
 *   meta_mem_cache.c  cache access records, limiter counts, fsck's
 *                     listings and guarded removals
 *   meta_mem_coord.c  leases and notes
 *
 * Locking: one recursive mutex guards everything. Recursive because
 * guarded_remove holds it while its check runs, and the check calls this
 * store's read functions on the same thread. Listing functions copy what
 * they list under the lock and call their callback after unlocking (when
 * no outer guarded_remove holds it), so a callback may call any function
 * of the store, as with the SQLite backend.
 *
 * Writes reserve every allocation they need before they change anything,
 * so a write either happens whole or (PC_ENOMEM) not at all: the
 * transactions of store/meta.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_META_MEM_INT_H
#define PC_META_MEM_INT_H

#include <pthread.h>

#include "store/meta.h"

/* access_touch writes a blob's last access only when it is older than
 * this (seconds), as the SQLite backend. */
#define PC_MM_TOUCH_EVERY 60

/* A sorted array of pointers to rows, ordered by cmp (which compares
 * two rows, or a row and a key row of the same type). */
typedef int (*pc_mm_cmp)(const void *a, const void *b);
typedef struct {
    void **v;
    size_t n, cap;
    pc_mm_cmp cmp;
} pc_mm_index;

/* Room for `more` inserts without allocating. 0 or PC_ENOMEM. */
int pc_mm_reserve(pc_mm_index *ix, size_t more);
/* The first position whose row is not before key. */
size_t pc_mm_lower(const pc_mm_index *ix, const void *key);
/* The row equal to key, or NULL. */
void *pc_mm_find(const pc_mm_index *ix, const void *key);
/* Insert row e at its place; room must be reserved. */
void pc_mm_insert(pc_mm_index *ix, void *e);
/* Remove the pointer e (a row of the index). */
void pc_mm_remove(pc_mm_index *ix, const void *e);
/* Remove the pointer at position i. */
void pc_mm_remove_at(pc_mm_index *ix, size_t i);

/* ---- rows ---- */

typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest d;
    uint64_t size;
} pc_mm_link;

typedef struct {
    pc_manifest_rec rec;
} pc_mm_manifest;

typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest manifest;
    pc_digest ref;
    bool is_manifest;
} pc_mm_ref;

typedef struct {
    char repo[PC_NAME_MAX + 1];
    char tag[PC_TAG_MAX + 1];
    pc_digest d;
    int64_t updated;
} pc_mm_tag;

typedef struct {
    char name[PC_NAME_MAX + 1];
} pc_mm_repo;

typedef struct {
    char id[72];
    char repo[PC_NAME_MAX + 1];
    int64_t created;
} pc_mm_upload;

typedef struct {
    pc_digest d;
    uint64_t size;
    int64_t last;
} pc_mm_access;

typedef struct {
    char *key;
    int64_t bucket;
    uint64_t count;
    int64_t expires;
} pc_mm_limit;

/* A lease or a note: key first, so both sort by it (pc_mm_key_cmp). */
typedef struct {
    char key[PC_LEASE_KEY_MAX];
    char owner[PC_LEASE_OWNER_MAX];
    int64_t expires_ms;
} pc_mm_lease;

typedef struct {
    char key[PC_LEASE_KEY_MAX];
    char value[PC_NOTE_MAX];
    int64_t updated_ms;
} pc_mm_note;

/* Rows whose first member is a key string, by it. */
int pc_mm_key_cmp(const void *a, const void *b);

typedef struct {
    pc_metastore base;
    pthread_mutex_t mu;      /* recursive: see the top of this file */
    pc_mm_index links;       /* pc_mm_link by repo, digest */
    pc_mm_index links_d;     /* the same rows by digest, repo */
    pc_mm_index manifests;   /* pc_mm_manifest by repo, digest */
    pc_mm_index manifests_d; /* the same rows by digest, repo */
    pc_mm_index refs;        /* pc_mm_ref by repo, manifest, ref */
    pc_mm_index refs_r;      /* the same rows by ref, repo, manifest */
    pc_mm_index tags;        /* pc_mm_tag by repo, tag */
    pc_mm_index repos;       /* pc_mm_repo by name */
    pc_mm_index uploads;     /* pc_mm_upload by id */
    pc_mm_index access;      /* pc_mm_access by digest */
    pc_mm_index limits;      /* pc_mm_limit by key, bucket */
    pc_mm_index leases;      /* pc_mm_lease by key */
    pc_mm_index notes;       /* pc_mm_note by key */
} pc_mm_store;

static inline pc_mm_store *pc_mm_of(pc_metastore *ms)
{
    return (pc_mm_store *)ms;
}

void pc_mm_lock(pc_mm_store *s);
void pc_mm_unlock(pc_mm_store *s);

/* Copy of d with every byte after the string zeroed. */
pc_digest pc_mm_digest(const pc_digest *d);
/* Copy the string src into dst of size bytes (it fits: checked before). */
void pc_mm_copy(char *dst, size_t size, const char *src);

/* Input checks: pc_meta_repo_ok & co. (store/meta.h), shared with every backend. */
int pc_mm_nomem(void);

/* Copies a listing gathers under the lock, of `size` bytes each. */
typedef struct {
    unsigned char *p;
    size_t n, cap, size;
} pc_mm_list;

/* Append a copy of the size bytes at e. 0 or PC_ENOMEM. */
int pc_mm_list_push(pc_mm_list *l, const void *e);
static inline void *pc_mm_list_at(const pc_mm_list *l, size_t i)
{
    return l->p + i * l->size;
}
void pc_mm_list_free(pc_mm_list *l);

/* Key rows for lookups and range starts. */
pc_mm_link pc_mm_link_key(const char *repo, const pc_digest *d);
pc_mm_ref pc_mm_ref_key(const char *repo, const pc_digest *manifest, const pc_digest *ref);

/* Under the lock: delete the link (repo, d), or the manifest (repo, d) with
 * its references and tags. 0 or PC_ENOTFOUND. */
int pc_mm_link_erase(pc_mm_store *s, const char *repo, const pc_digest *d);
int pc_mm_manifest_erase(pc_mm_store *s, const char *repo, const pc_digest *d);

/* Each file puts its functions into the tables. */
void pc_mm_reg_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache);
void pc_mm_cache_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache, pc_meta_limit_ops *limits);
void pc_mm_coord_install(pc_meta_coord_ops *ops);

#endif
