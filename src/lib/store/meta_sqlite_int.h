/*
 * meta_sqlite_int.h - what the files of the SQLite meta store share:
 * the statement ids and their SQL (meta_sqlite_schema.c), the
 * per-thread connection, and the query helpers that prepare, bind, step
 * and reset a cached statement in one call (meta_sqlite.c). Internal
 * to the SQLite meta store.
 *
 * The areas each install their functions into the tables of store/meta.h
 * (registry data, cache bookkeeping, limiter counters, coordination):
 *   meta_sqlite_blobs.c      blob links, upload sessions, gc queries
 *   meta_sqlite_manifests.c  manifests, tags, referrers, catalog
 *   meta_sqlite_cache.c      cache access records (eviction)
 *   meta_sqlite_limits.c     the client pull limiter's counts
 *   meta_sqlite_fsck.c       fsck's listings and guarded repairs
 *   meta_sqlite_coord.c      leases and shared notes
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_METASTORE_SQLITE_INT_H
#define PC_METASTORE_SQLITE_INT_H

#include <pthread.h>

#include <sqlite3.h>

#include "store/meta.h"

/* The prepared statements every connection caches, by id. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_BLOB_LINK,
    ST_BLOB_STAT,
    ST_BLOB_STAT_ANY,
    ST_BLOB_UNLINK,
    ST_MANIFEST_UPSERT,
    ST_REFS_CLEAR,
    ST_REF_ADD,
    ST_TAG_SET,
    ST_MANIFEST_GET,
    ST_TAGS_OF_MANIFEST_DEL,
    ST_MANIFEST_DEL,
    ST_TAG_GET,
    ST_TAG_DEL,
    ST_TAG_LIST,
    ST_REFERRERS,
    ST_CATALOG,
    ST_REPO_EXISTS,
    ST_REPO_ADD,
    ST_UPLOAD_PUT,
    ST_UPLOAD_GET,
    ST_UPLOAD_DEL,
    ST_REFERENCED,
    ST_HOLDERS,
    ST_TAG_STAT,
    ST_TAG_TOUCH,
    ST_ACCESS_GET,
    ST_ACCESS_TOUCH,
    ST_ACCESS_LRU,
    ST_ACCESS_MANIFEST,
    ST_HOLDER_REPOS,
    ST_ACCESS_UNLINK,
    ST_ACCESS_DEL,
    ST_LIMIT_PUT,
    ST_LIMIT_PRUNE,
    ST_LIMIT_CLEAR,
    ST_LIMIT_LOAD,
    ST_LIMIT_SUM,
    ST_LIMIT_ADD,
    ST_LINK_ALL,
    ST_MANIFEST_ALL,
    ST_REF_ALL,
    ST_UPLOAD_ALL,
    ST_SIZE_FIX_LINKS,
    ST_SIZE_FIX_MANIFESTS,
    ST_REF_HOLDER,
    ST_LEASE_TAKE,
    ST_LEASE_PRUNE,
    ST_LEASE_RENEW,
    ST_LEASE_RELEASE,
    ST_LEASE_GET,
    ST_NOTE_PUT,
    ST_NOTE_GET,
    ST_COUNT
};

/* The columns of a manifests row, in the order pc_sq_col_rec() reads. */
#define PC_SQ_MANIFEST_COLS "repo, digest, media_type, size, artifact_type, subject"

/* access_touch writes a blob's last access at most this often (seconds). */
#define PC_SQ_TOUCH_EVERY 60
#define PC_SQ_TOUCH_EVERY_S "60"

/* meta_sqlite_schema.c: pc_sq_migrations[i] upgrades the schema from
 * user_version i to i + 1; pc_sq_stmt_sql[id] is statement id's SQL. */
extern const char *const pc_sq_migrations[];
extern const int pc_sq_schema_version;
extern const char *const pc_sq_stmt_sql[ST_COUNT];

typedef struct pc_sq_store pc_sq_store;

/* One thread's connection. */
typedef struct pc_sq_conn {
    pc_sq_store *store;
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    struct pc_sq_conn *prev, *next;
} pc_sq_conn;

struct pc_sq_store {
    pc_metastore base;
    char *path;
    pthread_key_t key;
    pthread_mutex_t lock; /* guards conns */
    pc_sq_conn *conns;    /* every open connection, for free() */
    char *ro_uri;         /* set on a read-only file system: the immutable URI */
};

/* A value bound to a statement parameter. Text is bound SQLITE_STATIC: it
 * must stay valid until the statement is reset. */
typedef enum { PC_SQ_ARG_TEXT, PC_SQ_ARG_INT, PC_SQ_ARG_NULL } pc_sq_arg_type;

typedef struct {
    pc_sq_arg_type type;
    const char *text;
    int64_t num;
} pc_sq_arg;

#define SQ_TEXT(s) ((pc_sq_arg){PC_SQ_ARG_TEXT, (s), 0})
#define SQ_INT(n) ((pc_sq_arg){PC_SQ_ARG_INT, NULL, (int64_t)(n)})
#define SQ_NULL ((pc_sq_arg){PC_SQ_ARG_NULL, NULL, 0})
/* The parameters ?1, ?2... of a call, as the (args, nargs) pair the
 * helpers below take: SQ_ARGS(SQ_TEXT(repo), SQ_INT(size)). */
#define SQ_ARGS(...)                                                                               \
    (const pc_sq_arg[]){__VA_ARGS__}, sizeof((const pc_sq_arg[]){__VA_ARGS__}) / sizeof(pc_sq_arg)
#define SQ_NOARGS NULL, 0

/* An open statement: prepared on the calling thread's connection, bound. */
typedef struct {
    pc_sq_conn *c;
    sqlite3_stmt *st;
    int id;
} pc_sq_query;

/* The caller's callback of a listing, for the row functions that call it. */
typedef struct {
    union {
        pc_meta_str_cb str;
        pc_meta_rec_cb rec;
        pc_meta_digest_cb digest;
        pc_meta_access_cb access;
        pc_meta_limit_cb limit;
        pc_meta_link_cb link;
        pc_meta_ref_cb ref;
        pc_meta_upload_cb upload;
    } cb;
    void *ctx;
} pc_sq_rows;

/* A row handed to a pc_sq_each() callback; return 0 to go on, non-zero to
 * stop (pc_sq_each then returns that value). */
typedef int (*pc_sq_row_fn)(sqlite3_stmt *st, void *ctx);

/* Open statement id on the calling thread's connection (opened on first
 * use) and bind args. 0, or < 0 with nothing left open. A statement whose
 * cached copy is in use further up the stack (a list callback calling
 * back into the store) is prepared afresh and finalized on close. */
int pc_sq_query_open(pc_sq_query *q, pc_metastore *ms, int id, const pc_sq_arg *args, size_t nargs);
/* Step: 1 with a row ready, 0 when there are no more, < 0 on an error
 * (the message names `what`). */
int pc_sq_query_step(pc_sq_query *q, const char *what);
/* Reset (or finalize) the statement. Safe on a query that failed to open. */
void pc_sq_query_close(pc_sq_query *q);
/* Open and step to the one row expected: 0 with the row ready (close q
 * after reading it), PC_ENOTFOUND with `missing` as the message, or < 0.
 * q is closed unless 0 is returned. */
int pc_sq_query_row(pc_sq_query *q, pc_metastore *ms, int id, const char *what, const char *missing,
                    const pc_sq_arg *args, size_t nargs);
/* Column 0 of the one row as an integer into *out. As pc_sq_query_row. */
int pc_sq_get_int(pc_metastore *ms, int id, const char *what, const char *missing, int64_t *out,
                  const pc_sq_arg *args, size_t nargs);
/* Run a statement that returns no rows. 0, PC_EEXISTS on a constraint
 * violation, or < 0. *changes (when not NULL) receives the rows changed. */
int pc_sq_exec(pc_metastore *ms, int id, const char *what, int64_t *changes, const pc_sq_arg *args,
               size_t nargs);
/* pc_sq_exec, and PC_ENOTFOUND ("<what>: not found") when no row changed. */
int pc_sq_delete(pc_metastore *ms, int id, const char *what, const pc_sq_arg *args, size_t nargs);
/* Hand every row to fn. 0, fn's non-zero result, or < 0. */
int pc_sq_each(pc_metastore *ms, int id, const char *what, pc_sq_row_fn fn, void *ctx,
               const pc_sq_arg *args, size_t nargs);

/* A write transaction on the calling thread's connection: begin (BEGIN
 * IMMEDIATE), then end with the outcome rc: commit when rc is 0, roll back
 * otherwise (or when the commit fails). pc_sq_tx_end returns rc, or the
 * commit's error. */
int pc_sq_tx_begin(pc_metastore *ms);
int pc_sq_tx_end(pc_metastore *ms, int rc);

/* Record db's last error as the thread's message: PC_ENOMEM or PC_ERR. */
int pc_sq_db_error(sqlite3 *db, const char *what);
/* Input checks: pc_meta_repo_ok & co. (store/meta.h), shared with every backend. */

/* Copy text column col into dst of size bytes. PC_ERR when it does not fit
 * (a corrupt or foreign database). */
int pc_sq_col_text(sqlite3_stmt *st, int col, char *dst, size_t size);
/* Parse text column col as a digest. PC_ERR when it is not one. */
int pc_sq_col_digest(sqlite3_stmt *st, int col, pc_digest *out);

/* A manifests row (PC_SQ_MANIFEST_COLS, from column 0) into out. */
int pc_sq_col_rec(sqlite3_stmt *st, pc_manifest_rec *out);
/* Delete manifest d of repo with its references and tags, inside the
 * caller's transaction. 0 or PC_ENOTFOUND. */
int pc_sq_manifest_erase(pc_metastore *ms, const char *repo, const pc_digest *d);

/* Each area puts its functions into the table. */
void pc_sq_blobs_install(pc_meta_reg_ops *ops);
void pc_sq_manifests_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache);
void pc_sq_cache_install(pc_meta_cache_ops *ops);
void pc_sq_limits_install(pc_meta_limit_ops *ops);
void pc_sq_fsck_install(pc_meta_reg_ops *ops);
void pc_sq_coord_install(pc_meta_coord_ops *ops);

#endif
