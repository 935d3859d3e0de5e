/*
 * meta_pg_int.h - what the files of the PostgreSQL meta store share: the
 * statement ids and their SQL (meta_pg_schema.c), the connection pool
 * (meta_pg_pool.c), and the query helpers that run a prepared statement
 * on the calling thread's borrowed connection in one call (meta_pg.c).
 * Internal to the PostgreSQL meta store.
 *
 * The areas each install their functions into the tables of store/meta.h,
 * as the SQLite store's do:
 *   meta_pg_blobs.c      blob links, upload sessions, gc queries
 *   meta_pg_manifests.c  manifests, tags, referrers, catalog
 *   meta_pg_cache.c      cache access records (eviction)
 *   meta_pg_limits.c     the client pull limiter's counts
 *   meta_pg_coord.c      leases and shared notes
 *   meta_pg_fsck.c       fsck's listings and guarded repairs
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_METASTORE_PG_INT_H
#define PC_METASTORE_PG_INT_H

#include <pthread.h>

#include <libpq-fe.h>

#include "store/meta_pg.h"

/* The prepared statements every connection prepares on first use, by id. */
enum {
    PG_LOCK_WRITE,
    PG_LOCK_GUARD,
    PG_BLOB_LINK,
    PG_BLOB_STAT,
    PG_BLOB_STAT_ANY,
    PG_BLOB_UNLINK,
    PG_MANIFEST_UPSERT,
    PG_MANIFEST_LOCK,
    PG_REFS_CLEAR,
    PG_REF_ADD,
    PG_TAG_SET,
    PG_TAG_CREATE,
    PG_TAG_SWAP,
    PG_MANIFEST_GET,
    PG_TAGS_OF_MANIFEST_DEL,
    PG_MANIFEST_DEL,
    PG_TAG_GET,
    PG_TAG_DEL,
    PG_TAG_LIST,
    PG_REFERRERS,
    PG_CATALOG,
    PG_REPO_EXISTS,
    PG_REPO_ADD,
    PG_UPLOAD_PUT,
    PG_UPLOAD_GET,
    PG_UPLOAD_DEL,
    PG_REFERENCED,
    PG_HOLDERS,
    PG_TAG_STAT,
    PG_TAG_TOUCH,
    PG_ACCESS_GET,
    PG_ACCESS_TOUCH,
    PG_ACCESS_LRU,
    PG_ACCESS_MANIFEST,
    PG_HOLDER_REPOS,
    PG_ACCESS_UNLINK,
    PG_ACCESS_DEL,
    PG_LIMIT_PUT,
    PG_LIMIT_PRUNE,
    PG_LIMIT_CLEAR,
    PG_LIMIT_LOAD,
    PG_LIMIT_LOCK,
    PG_LIMIT_SUM,
    PG_LIMIT_ADD,
    PG_LINK_ALL,
    PG_MANIFEST_ALL,
    PG_REF_ALL,
    PG_UPLOAD_ALL,
    PG_SIZE_FIX_LINKS,
    PG_SIZE_FIX_MANIFESTS,
    PG_REF_HOLDER,
    PG_LEASE_TAKE,
    PG_LEASE_PRUNE,
    PG_LEASE_RENEW,
    PG_LEASE_RELEASE,
    PG_LEASE_GET,
    PG_NOTE_PUT,
    PG_NOTE_GET,
    PG_COUNT
};

/* The columns of a manifests row, in the order pc_pg_col_rec() reads. */
#define PC_PG_MANIFEST_COLS "repo, digest, media_type, size, artifact_type, subject"

/* access_touch writes a blob's last access at most this often (seconds). */
#define PC_PG_TOUCH_EVERY_S "60"

/* The advisory lock keys (pg_advisory_lock's one bigint space of the
 * database): the migration's, and the writers' (shared) against
 * guarded_remove (exclusive). "pcmigrat", "pcwriter" in ASCII. */
#define PC_PG_KEY_MIGRATE "8098436854416826740"
#define PC_PG_KEY_WRITE "8098447888221496690"
/* limit_take's per-key lock: pg_advisory_xact_lock(PC_PG_KEY_LIMITS,
 * hashtext(key)), the two-int4 form (its class apart from the keys above). */
#define PC_PG_KEY_LIMITS "1885430864"

/* meta_pg_schema.c: pc_pg_migrations[i] is migration i + 1 (the
 * schema_version row it leaves); pc_pg_stmt_sql[id] is statement id's
 * SQL. */
extern const char *const pc_pg_migrations[];
extern const int pc_pg_schema_version;
extern const char *const pc_pg_stmt_sql[PG_COUNT];

typedef struct pc_pg_store pc_pg_store;

/* One pooled connection. While a thread has it borrowed, depth counts the
 * nested borrows (a transaction, a listing whose callback calls back). */
typedef struct pc_pg_conn {
    pc_pg_store *store;
    PGconn *pg;
    bool prepared[PG_COUNT];
    unsigned depth;
    bool in_tx;
    char last_state[6]; /* SQLSTATE of the last error (pc_pg_error), "" for none */
    struct pc_pg_conn *next_free;
} pc_pg_conn;

struct pc_pg_store {
    pc_metastore base;
    char *conninfo;       /* the resolved connection string ("" for libpq's env) */
    unsigned pool_max;    /* connections at most */
    unsigned wait_ms;     /* a borrow's wait at most */
    pthread_mutex_t lock; /* guards conns, nconns, free_list */
    pthread_cond_t freed;
    pc_pg_conn **conns; /* every connection made (pool_max slots) */
    unsigned nconns;
    pc_pg_conn *free_list;
    pthread_key_t key; /* the calling thread's borrowed connection */
};

/* A statement parameter. Text is borrowed for the call. */
typedef enum { PC_PG_ARG_TEXT, PC_PG_ARG_INT, PC_PG_ARG_NULL } pc_pg_arg_type;

typedef struct {
    pc_pg_arg_type type;
    const char *text;
    int64_t num;
} pc_pg_arg;

#define PG_TEXT(s) ((pc_pg_arg){PC_PG_ARG_TEXT, (s), 0})
#define PG_INT(n) ((pc_pg_arg){PC_PG_ARG_INT, NULL, (int64_t)(n)})
#define PG_NULL ((pc_pg_arg){PC_PG_ARG_NULL, NULL, 0})
/* The parameters $1, $2... of a call, as the (args, nargs) pair the
 * helpers below take. */
#define PG_ARGS(...)                                                                               \
    (const pc_pg_arg[]){__VA_ARGS__}, sizeof((const pc_pg_arg[]){__VA_ARGS__}) / sizeof(pc_pg_arg)
#define PG_NOARGS NULL, 0
#define PG_ARGS_MAX 8

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
} pc_pg_rows;

/* A row (row of res) handed to a pc_pg_each() callback; 0 to go on,
 * non-zero to stop (pc_pg_each then returns that value). */
typedef int (*pc_pg_row_fn)(const PGresult *res, int row, void *ctx);

/* meta_pg_pool.c: borrow the calling thread's connection (the one it
 * already has, else a free one, else a new one while fewer than pool_max
 * are made, else wait for one up to wait_ms), reconnecting one the server
 * dropped. 0 or < 0 (nothing borrowed). pc_pg_give_back ends one borrow. */
int pc_pg_borrow(pc_pg_store *s, pc_pg_conn **out);
void pc_pg_give_back(pc_pg_conn *c);
/* Make c usable again: roll back a transaction left open, reconnect a
 * dropped connection (its statements are prepared again on first use).
 * 0 or PC_ERR. */
int pc_pg_revive(pc_pg_conn *c);
/* Open one connection (not pooled). 0 or PC_ERR. */
int pc_pg_connect(pc_pg_store *s, pc_pg_conn **out);
void pc_pg_conn_close(pc_pg_conn *c);
/* Close every connection (free()). */
void pc_pg_pool_close(pc_pg_store *s);

/* Set the thread's message "meta store: WHAT: MSG" with c's password
 * taken out of MSG; the code for SQLSTATE state (NULL: a connection
 * failure): PC_EEXISTS for a constraint, PC_ENOSPC, PC_EROFS, else PC_ERR. */
int pc_pg_error(pc_pg_conn *c, const char *state, const char *msg, const char *what);

/* A query's result, open until pc_pg_query_close. */
typedef struct {
    PGresult *res;
} pc_pg_query;

/* Run statement id with args on the thread's connection: q->res holds the
 * rows. 0 or < 0. */
int pc_pg_query_open(pc_pg_query *q, pc_metastore *ms, int id, const char *what,
                     const pc_pg_arg *args, size_t nargs);
void pc_pg_query_close(pc_pg_query *q);
/* As pc_pg_query_open, and PC_ENOTFOUND (message `missing`, q closed)
 * when there is no row. */
int pc_pg_query_row(pc_pg_query *q, pc_metastore *ms, int id, const char *what, const char *missing,
                    const pc_pg_arg *args, size_t nargs);
/* Column 0 of the one row as an integer into *out. As pc_pg_query_row. */
int pc_pg_get_int(pc_metastore *ms, int id, const char *what, const char *missing, int64_t *out,
                  const pc_pg_arg *args, size_t nargs);
/* A statement that returns no rows. 0, PC_EEXISTS on a constraint
 * violation, or < 0. *changes (may be NULL) receives the rows changed. */
int pc_pg_exec(pc_metastore *ms, int id, const char *what, int64_t *changes, const pc_pg_arg *args,
               size_t nargs);
/* pc_pg_exec, and PC_ENOTFOUND ("<what>: not found") when no row changed. */
int pc_pg_delete(pc_metastore *ms, int id, const char *what, const pc_pg_arg *args, size_t nargs);
/* Every row to fn (all rows are read first: fn may call the store). 0,
 * fn's non-zero result, or < 0. */
int pc_pg_each(pc_metastore *ms, int id, const char *what, pc_pg_row_fn fn, void *ctx,
               const pc_pg_arg *args, size_t nargs);

/* How a transaction keeps guarded_remove's promise ("other writers
 * wait", meta_pg.c): a registry write takes the writers' advisory lock
 * shared, guarded_remove exclusive; cache bookkeeping takes none. */
typedef enum { PC_PG_TX_PLAIN, PC_PG_TX_WRITER, PC_PG_TX_GUARD } pc_pg_tx_kind;

/* Run fn(ms, arg) in one transaction on the thread's connection: commit
 * when it returns 0, roll back otherwise. A serialization failure or a
 * deadlock the server broke is retried (fn runs again from the start),
 * except for PC_PG_TX_GUARD (its check may have acted). fn's result, or
 * the commit's error. */
typedef int (*pc_pg_tx_fn)(pc_metastore *ms, void *arg);
int pc_pg_tx(pc_metastore *ms, pc_pg_tx_kind kind, pc_pg_tx_fn fn, void *arg);

/* One statement of registry data in a PC_PG_TX_WRITER transaction: as
 * pc_pg_exec and pc_pg_delete. */
int pc_pg_write(pc_metastore *ms, int id, const char *what, int64_t *changes, const pc_pg_arg *args,
                size_t nargs);
int pc_pg_write_delete(pc_metastore *ms, int id, const char *what, const pc_pg_arg *args,
                       size_t nargs);

/* Column helpers: copy text into dst (PC_ERR when it does not fit), parse
 * a digest (PC_ERR when it is not one), an integer (0 when NULL). */
int pc_pg_col_text(const PGresult *res, int row, int col, char *dst, size_t size);
int pc_pg_col_digest(const PGresult *res, int row, int col, pc_digest *out);
int64_t pc_pg_col_int(const PGresult *res, int row, int col);

/* A manifests row (PC_PG_MANIFEST_COLS, from column 0) into out. */
int pc_pg_col_rec(const PGresult *res, int row, pc_manifest_rec *out);
/* Delete manifest d of repo with its references and tags, inside the
 * caller's transaction. 0 or PC_ENOTFOUND. */
int pc_pg_manifest_erase(pc_metastore *ms, const char *repo, const pc_digest *d);

/* Each area puts its functions into the table. */
void pc_pg_blobs_install(pc_meta_reg_ops *ops);
void pc_pg_manifests_install(pc_meta_reg_ops *ops, pc_meta_cache_ops *cache);
void pc_pg_cache_install(pc_meta_cache_ops *ops);
void pc_pg_limits_install(pc_meta_limit_ops *ops);
void pc_pg_fsck_install(pc_meta_reg_ops *ops);
void pc_pg_coord_install(pc_meta_coord_ops *ops);

#endif
