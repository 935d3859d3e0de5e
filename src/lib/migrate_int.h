/*
 * migrate_int.h - what the parts of the migration share (migrate.c: the
 * run and the blobs; migrate_meta.c: the records; migrate_verify.c: the
 * comparison): the run's state and a growable array.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_MIGRATE_INT_H
#define PC_MIGRATE_INT_H

#include "migrate.h"

/* A growable array of elements of `size` bytes. */
typedef struct {
    void *v;
    size_t n, cap, size;
} pc_mig_vec;

/* A new zeroed element at the end, or NULL (out of memory). */
void *pc_mig_vec_push(pc_mig_vec *a);
void pc_mig_vec_free(pc_mig_vec *a);
#define PC_MIG_AT(a, type, i) (&((type *)(a)->v)[i])

/* A blob of the source listing; failed: it could not be copied (reported
 * already, left out of the verification). */
typedef struct {
    pc_blob_entry e;
    bool failed;
} pc_mig_blob;

/* A tag of the source: repository, name, target, updated time. */
typedef struct {
    char repo[PC_NAME_MAX + 1];
    char tag[PC_TAG_MAX + 1];
    pc_digest digest;
    int64_t updated;
} pc_mig_tag;

/* A blob link of the source. */
typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest digest;
    uint64_t size;
} pc_mig_link;

/* A manifest reference of the source, with its manifest. */
typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest manifest;
    pc_manifest_ref ref;
} pc_mig_ref;

typedef struct {
    const pc_migrate_opts *o;
    pc_migrate_stats *st;
    pc_mig_vec blobs;     /* pc_mig_blob, the source's, by digest */
    pc_mig_vec links;     /* pc_mig_link */
    pc_mig_vec manifests; /* pc_manifest_rec, by repository and digest */
    pc_mig_vec refs;      /* pc_mig_ref, by repository and manifest */
    pc_mig_vec tags;      /* pc_mig_tag */
    pc_migrate_progress prog;
} pc_mig;

/* Report a problem (counted in st->problems). */
void pc_mig_problem(pc_mig *m, pc_migrate_problem_kind kind, const char *repo, const char *tag,
                    const pc_digest *d, const char *detail);
void pc_mig_progress(pc_mig *m);

/* migrate_meta.c: read the source's records into m (links, manifests,
 * references, tags), then write what the destination lacks. 0 or < 0. */
int pc_mig_meta_read(pc_mig *m);
int pc_mig_meta_copy(pc_mig *m);

/* migrate_verify.c: compare the destination with what was read. 0 or < 0
 * (a store failed); differences are problems. */
int pc_mig_verify(pc_mig *m);

/* The destination's blob listing, sorted by digest string (pc_blob_entry). */
int pc_mig_list_blobs(pc_blob_backend *be, pc_mig_vec *out);
/* The entry of d in such a sorted listing, or NULL. */
const pc_blob_entry *pc_mig_find_blob(const pc_mig_vec *sorted, const pc_digest *d);

#endif
