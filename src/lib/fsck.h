/*
 * fsck.h - checking a data directory: that the blob store and the meta
 * store agree, that every blob's bytes hash to its digest, that every
 * manifest of a local repository has its blobs and child manifests, and
 * that no crash left uploads or temp files behind; and, when asked,
 * repairing what is corrupt or unreachable.
 *
 * Safe while a daemon uses the same data directory. What may be in use is
 * left alone: blobs, uploads without a session and temp files younger than
 * the grace period (gc's rule, ages as the blob listing reports them),
 * and upload sessions idle for less than the upload ttl. Every problem found is confirmed against
 * the stores once more before it is reported, and every removal from the
 * meta store runs in a transaction that first checks the problem is still
 * there (guarded_remove), so content a push or a mirror fetch wrote
 * meanwhile is never undone.
 *
 * Mirrored repositories (first component a configured upstream's name, or
 * host-like: only the mirror stores those) may lack blobs and child
 * manifests: eviction removes layers and the mirror fetches them again on
 * demand, so only local manifests are held to completeness.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_FSCK_H
#define PC_FSCK_H

#include "pc.h"
#include "registry.h"

/* The kinds of problem, in the order a repair handles them. */
typedef enum {
    PC_FSCK_CORRUPT_BLOB,        /* a blob file whose bytes do not hash to its digest */
    PC_FSCK_DANGLING_LINK,       /* a blob link whose blob file is missing or corrupt */
    PC_FSCK_MANIFEST_MISSING,    /* a manifest row whose manifest bytes are missing or corrupt */
    PC_FSCK_INCOMPLETE_MANIFEST, /* a local manifest missing a blob or child manifest */
    PC_FSCK_UNLINKED_BLOB,       /* a local manifest's blob is stored but not linked to its repo */
    PC_FSCK_SIZE_MISMATCH,       /* the meta store records another size than the blob has */
    PC_FSCK_ORPHAN_BLOB,         /* a blob file nothing references, older than the grace */
    PC_FSCK_ORPHAN_UPLOAD,       /* a staging file without an upload session, idle past grace */
    PC_FSCK_STALE_UPLOAD,        /* an upload session idle for longer than the upload ttl */
    PC_FSCK_UPLOAD_WITHOUT_FILE, /* an upload session whose staging file is gone */
    PC_FSCK_STALE_TEMP,          /* a temp file (a crash's leftover) older than the grace */
    PC_FSCK_KIND_COUNT
} pc_fsck_kind;

typedef enum {
    PC_FSCK_FOUND,    /* found, not repaired (no repair asked) */
    PC_FSCK_REPAIRED, /* the repair did what pc_fsck_action() says */
    PC_FSCK_SKIPPED,  /* changed while fsck ran (a writer fixed or reused it): left alone */
    PC_FSCK_FAILED,   /* the repair failed; detail says why */
} pc_fsck_status;

#define PC_FSCK_PATH_MAX 512

/* One problem. Fields that do not apply to its kind are empty or 0. */
typedef struct {
    pc_fsck_kind kind;
    pc_fsck_status status;
    char repo[PC_NAME_MAX + 1];  /* the repository concerned */
    pc_digest digest;            /* the blob or manifest concerned */
    pc_digest ref;               /* incomplete_manifest: the first missing reference */
    char name[256];              /* upload id or temp file name */
    char path[PC_FSCK_PATH_MAX]; /* where the blob store keeps the file */
    uint64_t size;               /* the file's bytes (size_mismatch: the true size) */
    uint64_t recorded;           /* size_mismatch: the size the meta store records */
    long age_s;                  /* seconds since the file was last written */
    unsigned missing;            /* incomplete_manifest: how many references are missing */
    char detail[384];            /* what else there is to say (tags, the hash, an error) */
} pc_fsck_problem;

typedef struct {
    bool repair;       /* repair what is found */
    long grace_s;      /* leave blobs, session-less uploads and temp files younger than this */
    long upload_ttl_s; /* an upload session idle for longer is stale (storage.upload_ttl) */
    const char *const *upstreams; /* names of the mirror's upstreams (may be NULL) */
    size_t nups;
    /* Called between the check and the repair, when repairing (tests use it
     * to change the stores meanwhile). May be NULL. */
    void (*before_repair)(void *ctx);
    void *hook_ctx;
} pc_fsck_opts;

typedef struct {
    /* what was looked at */
    unsigned long blobs; /* blob files hashed */
    uint64_t blob_bytes;
    unsigned long manifests, links, uploads, sessions, temp_files;
    unsigned long young; /* left alone: younger than the grace period */
    /* what was found, by kind, and each problem */
    unsigned long counts[PC_FSCK_KIND_COUNT];
    pc_fsck_problem *problems;
    size_t nproblems;
    /* what the repair did */
    unsigned long repaired, skipped, failed;
} pc_fsck_report;

/* Open the registry over an existing data directory (dir/blobs...,
 * dir/meta.db) without creating anything (no space reserve, no cleanup,
 * no claim). PC_ENOTFOUND (message set) when dir is missing or no
 * pullcache data directory, else 0 or PC_ERR. *out is the caller's
 * (pc_registry_free). The check itself is registry_fsck*.c. */
int pc_fsck_open(const char *dir, pc_registry **out);

/* Check (and with o->repair, repair) the stores. *out is filled and the
 * caller's (pc_fsck_report_free), also on failure. 0, or < 0 when a store
 * could not be read (message set; the report holds what was found so far).
 * A repair that fails for one problem is that problem's status, not a
 * failure of the run. */
int pc_fsck_run(pc_registry *reg, const pc_fsck_opts *o, pc_fsck_report *out);

void pc_fsck_report_free(pc_fsck_report *r);

/* "corrupt_blob", ... (static strings). */
const char *pc_fsck_kind_name(pc_fsck_kind k);
/* What a problem of kind k is, in a few words. */
const char *pc_fsck_kind_about(pc_fsck_kind k);
/* What the repair does about kind k ("remove the blob file"). */
const char *pc_fsck_action(pc_fsck_kind k);
/* What the repair did about kind k ("removed the blob file"). */
const char *pc_fsck_done(pc_fsck_kind k);
/* "found", "repaired", "skipped", "failed". */
const char *pc_fsck_status_name(pc_fsck_status s);

/* Whether repo is a mirrored repository: its first component is one of
 * the nups upstreams or looks like a registry host. */
bool pc_fsck_mirrored(const char *repo, const char *const *upstreams, size_t nups);

#endif
