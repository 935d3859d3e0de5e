/*
 * registry_fsck_int.h - what the files of fsck share (registry_fsck.c: the
 * snapshot, hashing, problem records and the run; registry_fsck_check.c:
 * the checks; registry_fsck_repair.c: the repairs): the model of one run.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_REGISTRY_FSCK_INT_H
#define PC_REGISTRY_FSCK_INT_H

#include "fsck.h"
#include "registry_int.h"

typedef struct {
    pc_digest d;
    uint64_t size;
    long age_s; /* seconds since it was written, as listed */
    bool corrupt;
    bool gone; /* removed while fsck ran */
    bool size_reported;
} file_t;

typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest d;
    uint64_t size;
    bool dangling;
} link_t;

typedef struct {
    pc_manifest_rec rec;
    bool mirrored;
    int broken;         /* 0: fine; 1: bytes missing; n > 1: incomplete, found in round n */
    size_t ref0, nrefs; /* its references: refs[ref0 .. ref0 + nrefs) */
} manifest_t;

typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest manifest;
    pc_manifest_ref ref;
} ref_t;

typedef struct {
    char id[72];
    char repo[PC_NAME_MAX + 1];
    int64_t created;
} session_t;

typedef struct {
    char name[256];
    uint64_t size;
    long age_s;
} staged_t; /* a staging file or a temp file */

/* A growable array of elements of size `size`. */
typedef struct {
    void *v;
    size_t n, cap, size;
} vec;

typedef struct {
    pc_blob_backend *be;
    pc_metastore *ms;
    const char *node; /* the registry's, as a lease owner */
    const pc_fsck_opts *o;
    pc_fsck_report *r;
    vec files, links, manifests, refs, sessions, staged, temps;
    vec referenced; /* pc_digest: what keeps a blob after the repair */
    vec snapshot;   /* pc_digest: what held a blob in the snapshot */
    vec unlinked;   /* link_t: (repo, blob) a kept local manifest needs linked */
} fsck_t;

void *pc_fsck_vec_push(vec *a);
int pc_fsck_cmp_digest(const void *a, const void *b);
int pc_fsck_cmp_link(const void *a, const void *b);
int pc_fsck_cmp_session(const void *a, const void *b);
int pc_fsck_cmp_staged(const void *a, const void *b);
void pc_fsck_vec_sort(vec *a, int (*cmp)(const void *, const void *));
void *pc_fsck_vec_find(const vec *a, const void *key, int (*cmp)(const void *, const void *));
file_t *pc_fsck_file_find(fsck_t *f, const pc_digest *d);
link_t *pc_fsck_link_find(fsck_t *f, const char *repo, const pc_digest *d);
manifest_t *pc_fsck_manifest_find(fsck_t *f, const char *repo, const pc_digest *d);
bool pc_fsck_present(const file_t *file);
int pc_fsck_verify_blob(pc_blob_backend *be, const pc_digest *d, bool *match, uint64_t *size,
                        pc_digest *got);
pc_fsck_problem *pc_fsck_add_problem(fsck_t *f, pc_fsck_kind kind);
void pc_fsck_locate(fsck_t *f, pc_fsck_problem *p, pc_blob_kind area, const char *name);
/* Append to p->detail. */
void pc_fsck_detail(pc_fsck_problem *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pc_fsck_note_tags(fsck_t *f, pc_fsck_problem *p, const char *repo, const pc_digest *d);
int pc_fsck_check_files(fsck_t *f);
int pc_fsck_check_links(fsck_t *f);
int pc_fsck_check_manifest_bytes(fsck_t *f);
int pc_fsck_check_complete(fsck_t *f);
int pc_fsck_check_unlinked(fsck_t *f);
int pc_fsck_check_orphans(fsck_t *f);
int pc_fsck_check_uploads(fsck_t *f);
int pc_fsck_check_temps(fsck_t *f);
int pc_fsck_repair(fsck_t *f);

#endif
