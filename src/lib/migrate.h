/*
 * migrate.h - move a registry's content from one pair of stores to
 * another (`pullcache migrate`: a data directory's fs blobs and meta.db to
 * S3 and PostgreSQL, or any pair the store factory opens), through the
 * blob backend and meta store interfaces only.
 *
 * What is copied, in this order (bytes before the records that name them,
 * so a serve on the destination never sees a record without its bytes):
 *  1. every committed blob (manifests' bytes included), each through a
 *     hashing writer (pc_blob_up): a blob whose bytes do not hash to its
 *     digest is not written and is reported; a blob the destination has
 *     with the same size is skipped;
 *  2. blob links; manifest records with their references (a record equal
 *     to the destination's is skipped); tags, each with its updated time
 *     (tag_stat, tag_touch); the cache's access records (access_lru over
 *     every repository, access_touch); the pull limiter's counts
 *     (limit_load, limit_save). Upload sessions are not copied (counted):
 *     a client whose upload was under way starts it again.
 *  3. verification: every source blob is at the destination with its
 *     size, every tag resolves to the same digest, every manifest record
 *     and blob link is there.
 * Every write is idempotent, so a run that was killed is resumed by running
 * it again; a run with nothing left to do writes nothing.
 * Not carried: a repository without any manifest (the interface makes
 * repositories through manifests only: counted as empty), leases and
 * notes (a running fleet's transient state).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_MIGRATE_H
#define PC_MIGRATE_H

#include "pc.h"
#include "store/blob.h"
#include "store/meta.h"

typedef enum {
    PC_MIGRATE_BLOBS,  /* copying blobs */
    PC_MIGRATE_META,   /* copying records */
    PC_MIGRATE_VERIFY, /* comparing */
} pc_migrate_phase;

/* What the progress callback sees (borrowed for the call). */
typedef struct {
    pc_migrate_phase phase;
    uint64_t blobs, blobs_done; /* blobs at the source, looked at so far */
    uint64_t bytes, bytes_done; /* their bytes, copied or skipped so far */
} pc_migrate_progress;

typedef enum {
    PC_MIGRATE_P_CORRUPT,      /* a source blob does not hash to its digest (fsck) */
    PC_MIGRATE_P_READ,         /* a source blob could not be read */
    PC_MIGRATE_P_BLOB_MISSING, /* verify: a source blob is not at the destination */
    PC_MIGRATE_P_BLOB_SIZE,    /* verify: ... with another size */
    PC_MIGRATE_P_MANIFEST,     /* verify: a manifest record is missing or differs */
    PC_MIGRATE_P_LINK,         /* verify: a blob link is missing or has another size */
    PC_MIGRATE_P_TAG,          /* verify: a tag is missing or resolves to another digest */
    PC_MIGRATE_P_CONFLICT,     /* a destination tag changed while it was being set */
} pc_migrate_problem_kind;

/* One problem (borrowed for the call; repo, tag NULL when not about one). */
typedef struct {
    pc_migrate_problem_kind kind;
    const char *repo;
    const char *tag;
    const pc_digest *digest;
    const char *detail; /* what was found, for people */
} pc_migrate_problem;

/* A stable name for a problem kind ("corrupt", "blob-missing", ...). */
const char *pc_migrate_problem_name(pc_migrate_problem_kind k);

/* The stores are borrowed; the callbacks may be NULL and are called from
 * the calling thread only. */
typedef struct {
    pc_blob_backend *src_blobs;
    pc_metastore *src_meta;
    pc_blob_backend *dst_blobs;
    pc_metastore *dst_meta;
    bool dry_run;  /* count what would be written, write nothing, no verify */
    unsigned jobs; /* blobs copied at once (0: 1) */
    int64_t now;   /* unix seconds for the limiter's expiry (0: time(NULL)) */
    void (*on_progress)(const pc_migrate_progress *p, void *ctx);
    void (*on_problem)(const pc_migrate_problem *p, void *ctx);
    void *ctx;
} pc_migrate_opts;

/* Counts of one run: what the source has, and what was (dry run: would
 * be) written to the destination. */
typedef struct {
    uint64_t blobs, bytes;               /* at the source */
    uint64_t blobs_copied, bytes_copied; /* written */
    uint64_t blobs_present;              /* already at the destination, same size */
    uint64_t links, links_added;
    uint64_t repos, repos_empty; /* repositories; those without a manifest (not carried) */
    uint64_t manifests, manifests_put;
    uint64_t tags, tags_set, tag_times; /* tags; pointed anew; updated time set */
    uint64_t access, access_set;        /* cache access records */
    uint64_t limits, limits_set;        /* limiter rows (unexpired) */
    uint64_t uploads_skipped;           /* upload sessions at the source, not copied */
    uint64_t problems;                  /* on_problem calls */
    bool verified;                      /* verification ran (not a dry run) */
} pc_migrate_stats;

/* Whether a run wrote (dry run: would write) nothing. */
bool pc_migrate_nothing_done(const pc_migrate_stats *st);

/* Run the migration o describes into *st (zeroed first). 0 when everything
 * was copied and verified (dry run: counted); PC_EDIGEST when problems
 * were found (st->problems, each reported to on_problem; the rest was
 * copied); < 0 with the message set when a store failed (a listing, a
 * write): what was written stays, and a new run resumes. */
int pc_migrate_run(const pc_migrate_opts *o, pc_migrate_stats *st);

#endif
