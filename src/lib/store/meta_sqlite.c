/*
 * meta_sqlite.c - the SQLite meta store: the embedded default behind
 * the pc_metastore table (store/meta.h). This file opens, migrates and frees
 * the store, keeps the per-thread connections and runs the query helpers
 * the area files use (meta_sqlite_int.h).
 *
 * One database file in WAL mode (readers never wait for the writer),
 * synchronous=NORMAL, foreign keys on, a 5 s busy timeout. Each thread that
 * uses the store gets its own connection (a pthread key, opened on first use,
 * closed when the thread exits or the store is freed), with its prepared
 * statements cached, so manifest reads from a server's thread pool run in
 * parallel without a shared lock. The schema is versioned with PRAGMA
 * user_version and upgraded at open by the migration table
 * (meta_sqlite_schema.c).
 *
 * free() closes every thread's connection: call it only once no other
 * thread uses the store (after a server's thread pool has stopped).
 *
 * Connections are counted: pullcache_meta_connections_opened_total (every
 * open) and pullcache_meta_connections_open (the gauge of those open now),
 * docs/METRICS.md; serve's job pools bound them (jobpool.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "metrics.h"

#define SQ_BUSY_TIMEOUT_MS 5000

static pc_sq_store *sq_of(pc_metastore *ms)
{
    return (pc_sq_store *)ms;
}

int pc_sq_db_error(sqlite3 *db, const char *what)
{
    int code = sqlite3_errcode(db) & 0xff;
    int sys = sqlite3_system_errno(db);
    pc_error_set("meta store: %s: %s", what, sqlite3_errmsg(db));
    switch (code) {
    case SQLITE_NOMEM:
        return PC_ENOMEM;
    case SQLITE_FULL:
        return PC_ENOSPC;
    case SQLITE_READONLY:
        return PC_EROFS;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return pc_result_from_errno(sys);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        pc_error_set("meta store: %s: %s (the database file is damaged: stop serve and see "
                     "`pullcache fsck --help`)",
                     what, sqlite3_errmsg(db));
        return PC_ERR;
    default:
        return PC_ERR;
    }
}

int pc_sq_col_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!t)
        n = 0;
    if (n >= size) {
        pc_error_set("meta store: stored value too long");
        return PC_ERR;
    }
    memcpy(dst, t ? (const char *)t : "", n);
    dst[n] = '\0';
    return 0;
}

int pc_sq_col_digest(sqlite3_stmt *st, int col, pc_digest *out)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    if (!t || pc_digest_parse(out, t) != 0) {
        pc_error_set("meta store: stored digest is invalid");
        return PC_ERR;
    }
    return 0;
}

/* ---- connections ---- */

static void conn_close(pc_sq_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

/* The pthread key's destructor: the thread exits, its connection goes. */
static void conn_release(void *p)
{
    pc_sq_conn *c = p;
    pc_sq_store *s = c->store;
    pthread_mutex_lock(&s->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->lock);
    conn_close(c);
    pc_metrics_gauge_add("pullcache_meta_connections_open", NULL, -1);
}

/* Open a connection to path with the per-connection settings. */
static int conn_open(pc_sq_store *s, pc_sq_conn **out)
{
    int rc = 0;
    pc_sq_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return PC_ENOMEM;
    c->store = s;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (s->ro_uri) /* nobody writes to a read-only file system: immutable */
        flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->ro_uri ? s->ro_uri : s->path, &c->db, flags, NULL) != SQLITE_OK) {
        if (c->db)
            rc = pc_sq_db_error(c->db, s->path);
        else
            pc_error_set("meta store: cannot open %s", s->path);
        rc = rc ? rc : PC_ERR;
        goto done;
    }
    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
    if (!s->ro_uri && sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                                   NULL, NULL, NULL) != SQLITE_OK) {
        rc = pc_sq_db_error(c->db, "settings");
        goto done;
    }
    *out = c;
    c = NULL;
done:
    conn_close(c);
    return rc;
}

/* The calling thread's connection, opened on first use. */
static int conn_get(pc_sq_store *s, pc_sq_conn **out)
{
    pc_sq_conn *c = pthread_getspecific(s->key);
    if (c) {
        *out = c;
        return 0;
    }
    int rc = conn_open(s, &c);
    if (rc)
        return rc;
    if (pthread_setspecific(s->key, c) != 0) {
        conn_close(c);
        pc_error_set("meta store: cannot attach connection to thread");
        return PC_ERR;
    }
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    pthread_mutex_unlock(&s->lock);
    pc_metrics_add("pullcache_meta_connections_opened_total", NULL, 1);
    pc_metrics_gauge_add("pullcache_meta_connections_open", NULL, 1);
    *out = c;
    return 0;
}

/* Statement id of connection c, ready to bind. When the cached one is in
 * use further up the stack (a list callback calling back into the store), a
 * fresh one is prepared; stmt_put() finalizes it. */
static int stmt_get(pc_sq_conn *c, int id, sqlite3_stmt **out)
{
    sqlite3_stmt *st = c->stmts[id];
    if (st && !sqlite3_stmt_busy(st)) {
        *out = st;
        return 0;
    }
    unsigned flags = st ? 0 : SQLITE_PREPARE_PERSISTENT;
    if (sqlite3_prepare_v3(c->db, pc_sq_stmt_sql[id], -1, flags, &st, NULL) != SQLITE_OK)
        return pc_sq_db_error(c->db, "prepare");
    if (!c->stmts[id])
        c->stmts[id] = st;
    *out = st;
    return 0;
}

static void stmt_put(pc_sq_conn *c, int id, sqlite3_stmt *st)
{
    if (!st)
        return;
    if (st == c->stmts[id])
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
}

/* ---- queries ---- */

int pc_sq_query_open(pc_sq_query *q, pc_metastore *ms, int id, const pc_sq_arg *args, size_t nargs)
{
    q->c = NULL;
    q->st = NULL;
    q->id = id;
    pc_sq_conn *c = NULL;
    int rc = conn_get(sq_of(ms), &c);
    if (rc || (rc = stmt_get(c, id, &q->st)))
        return rc;
    q->c = c;
    for (size_t i = 0; i < nargs; i++) {
        int p = (int)i + 1;
        switch (args[i].type) {
        case PC_SQ_ARG_TEXT:
            sqlite3_bind_text(q->st, p, args[i].text, -1, SQLITE_STATIC);
            break;
        case PC_SQ_ARG_INT:
            sqlite3_bind_int64(q->st, p, (sqlite3_int64)args[i].num);
            break;
        case PC_SQ_ARG_NULL:
            sqlite3_bind_null(q->st, p);
            break;
        }
    }
    return 0;
}

int pc_sq_query_step(pc_sq_query *q, const char *what)
{
    int r = sqlite3_step(q->st);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE)
        return 0;
    return pc_sq_db_error(q->c->db, what);
}

void pc_sq_query_close(pc_sq_query *q)
{
    if (q->c)
        stmt_put(q->c, q->id, q->st);
    q->c = NULL;
    q->st = NULL;
}

int pc_sq_query_row(pc_sq_query *q, pc_metastore *ms, int id, const char *what, const char *missing,
                    const pc_sq_arg *args, size_t nargs)
{
    int rc = pc_sq_query_open(q, ms, id, args, nargs);
    if (rc == 0) {
        rc = pc_sq_query_step(q, what);
        if (rc == 1)
            return 0;
        if (rc == 0) {
            pc_error_set("%s", missing);
            rc = PC_ENOTFOUND;
        }
    }
    pc_sq_query_close(q);
    return rc;
}

int pc_sq_get_int(pc_metastore *ms, int id, const char *what, const char *missing, int64_t *out,
                  const pc_sq_arg *args, size_t nargs)
{
    pc_sq_query q;
    int rc = pc_sq_query_row(&q, ms, id, what, missing, args, nargs);
    if (rc)
        return rc;
    *out = (int64_t)sqlite3_column_int64(q.st, 0);
    pc_sq_query_close(&q);
    return 0;
}

int pc_sq_exec(pc_metastore *ms, int id, const char *what, int64_t *changes, const pc_sq_arg *args,
               size_t nargs)
{
    pc_sq_query q;
    int rc = pc_sq_query_open(&q, ms, id, args, nargs);
    if (rc)
        return rc;
    int r = sqlite3_step(q.st);
    if (r == SQLITE_DONE) {
        if (changes)
            *changes = sqlite3_changes(q.c->db);
    } else if ((r & 0xff) == SQLITE_CONSTRAINT) {
        pc_error_set("meta store: %s: %s", what, sqlite3_errmsg(q.c->db));
        rc = PC_EEXISTS;
    } else {
        rc = pc_sq_db_error(q.c->db, what);
    }
    pc_sq_query_close(&q);
    return rc;
}

int pc_sq_delete(pc_metastore *ms, int id, const char *what, const pc_sq_arg *args, size_t nargs)
{
    int64_t changes = 0;
    int rc = pc_sq_exec(ms, id, what, &changes, args, nargs);
    if (rc == 0 && changes == 0) {
        pc_error_set("%s: not found", what);
        rc = PC_ENOTFOUND;
    }
    return rc;
}

int pc_sq_each(pc_metastore *ms, int id, const char *what, pc_sq_row_fn fn, void *ctx,
               const pc_sq_arg *args, size_t nargs)
{
    pc_sq_query q;
    int rc = pc_sq_query_open(&q, ms, id, args, nargs);
    while (rc == 0 && (rc = pc_sq_query_step(&q, what)) == 1)
        rc = fn(q.st, ctx);
    pc_sq_query_close(&q);
    return rc;
}

int pc_sq_tx_begin(pc_metastore *ms)
{
    return pc_sq_exec(ms, ST_BEGIN, pc_sq_stmt_sql[ST_BEGIN], NULL, SQ_NOARGS);
}

int pc_sq_tx_end(pc_metastore *ms, int rc)
{
    if (rc == 0)
        rc = pc_sq_exec(ms, ST_COMMIT, pc_sq_stmt_sql[ST_COMMIT], NULL, SQ_NOARGS);
    if (rc) {
        /* SQLite may have rolled back already (a full disk): keep the
         * message of what failed, not the rollback's */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", pc_error_last());
        pc_sq_exec(ms, ST_ROLLBACK, pc_sq_stmt_sql[ST_ROLLBACK], NULL, SQ_NOARGS);
        pc_error_set("%s", msg);
    }
    return rc;
}

/* ---- open, migrate, free ---- */

static void sq_free(pc_metastore *ms)
{
    pc_sq_store *s = sq_of(ms);
    if (!s)
        return;
    pthread_setspecific(s->key, NULL);
    pthread_key_delete(s->key);
    pthread_mutex_lock(&s->lock);
    while (s->conns) {
        pc_sq_conn *c = s->conns;
        s->conns = c->next;
        conn_close(c);
        pc_metrics_gauge_add("pullcache_meta_connections_open", NULL, -1);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s->ro_uri);
    free(s);
}

/* Inside the migration's transaction: read user_version, run the steps
 * this database lacks, record the new version. */
static int migrate_steps(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    char sql[64];
    int rc = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = pc_sq_db_error(db, "schema version");
        goto done;
    }
    int version = sqlite3_column_int(st, 0);
    if (version > pc_sq_schema_version) {
        pc_error_set("meta store: schema version %d is newer than this program's (%d)", version,
                     pc_sq_schema_version);
        rc = PC_ERR;
        goto done;
    }
    for (int v = version; v < pc_sq_schema_version; v++) {
        if (sqlite3_exec(db, pc_sq_migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            rc = pc_sq_db_error(db, "schema migration");
            goto done;
        }
    }
    if (version < pc_sq_schema_version) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", pc_sq_schema_version);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = pc_sq_db_error(db, "schema version");
    }
done:
    sqlite3_finalize(st);
    return rc;
}

/* On a read-only file system a WAL database cannot be opened the usual
 * way (it needs its -shm file): open it as an immutable URI instead. */
static int ro_setup(pc_sq_store *s)
{
    char dir[4096];
    struct statvfs vf;
    snprintf(dir, sizeof(dir), "%s", s->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (statvfs(dir, &vf) != 0 || !(vf.f_flag & ST_RDONLY))
        return 0;
    size_t n = strlen(s->path);
    char *u = malloc(n * 3 + sizeof("file:?immutable=1"));
    if (!u)
        return PC_ENOMEM;
    char *p = u + sprintf(u, "file:");
    for (const char *q = s->path; *q; q++) {
        if (*q == '%' || *q == '?' || *q == '#')
            p += sprintf(p, "%%%02X", (unsigned char)*q);
        else
            *p++ = *q;
    }
    strcpy(p, "?immutable=1");
    s->ro_uri = u;
    return 0;
}

/* WAL mode, then the schema brought to pc_sq_schema_version inside one
 * write transaction. Read-only: only a check that the schema is current. */
static int migrate(pc_sq_store *s)
{
    pc_sq_conn *c = NULL;
    int rc = conn_get(s, &c);
    if (rc)
        return rc;
    if (s->ro_uri) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            rc = pc_sq_db_error(c->db, "schema version");
        } else if (sqlite3_column_int(st, 0) != pc_sq_schema_version) {
            pc_error_set("meta store: %s is on a read-only file system and its schema (version "
                         "%d) needs an upgrade to %d: mount it writable once",
                         s->path, sqlite3_column_int(st, 0), pc_sq_schema_version);
            rc = PC_EROFS;
        }
        sqlite3_finalize(st);
        return rc;
    }
    if (sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK)
        return pc_sq_db_error(c->db, "WAL mode");
    if ((rc = pc_sq_tx_begin(&s->base)))
        return rc;
    return pc_sq_tx_end(&s->base, migrate_steps(c->db));
}

/* The function tables, the same for every store: filled once. */
static pc_meta_reg_ops sq_reg;
static pc_meta_cache_ops sq_cache;
static pc_meta_limit_ops sq_limits;
static pc_meta_coord_ops sq_coord;
static pthread_once_t sq_tables_once = PTHREAD_ONCE_INIT;

static void sq_tables_fill(void)
{
    sq_reg.version = PC_META_REG_VERSION;
    sq_cache.version = PC_META_CACHE_VERSION;
    sq_limits.version = PC_META_LIMIT_VERSION;
    pc_sq_blobs_install(&sq_reg);
    pc_sq_manifests_install(&sq_reg, &sq_cache);
    pc_sq_fsck_install(&sq_reg);
    pc_sq_cache_install(&sq_cache);
    pc_sq_limits_install(&sq_limits);
    sq_coord.version = PC_META_COORD_VERSION;
    pc_sq_coord_install(&sq_coord);
}

int pc_meta_sqlite_open(pc_metastore **out, const char *path)
{
    pc_sq_store *s = NULL;
    bool key_made = false, lock_made = false;
    int rc = PC_ERR;
    pthread_once(&sq_tables_once, sq_tables_fill);
    if (!path || !*path) {
        pc_error_set("meta store path not set");
        goto done;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        rc = PC_ENOMEM;
        goto done;
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pc_error_set("meta store: mutex init failed");
        goto done;
    }
    lock_made = true;
    if (pthread_key_create(&s->key, conn_release) != 0) {
        pc_error_set("meta store: no thread key left");
        goto done;
    }
    key_made = true;
    if ((rc = ro_setup(s)) || (rc = migrate(s)))
        goto done;
    s->base.version = PC_META_VERSION;
    s->base.driver = "sqlite";
    s->base.free = sq_free;
    s->base.reg = &sq_reg;
    s->base.cache = &sq_cache;
    s->base.limits = &sq_limits;
    s->base.coord = &sq_coord;
    *out = &s->base;
    s = NULL;
    rc = 0;
done:
    if (s) {
        if (key_made)
            sq_free(&s->base);
        else {
            if (lock_made)
                pthread_mutex_destroy(&s->lock);
            free(s->path);
            free(s);
        }
    }
    return rc;
}

int pc_meta_sqlite_quick_check(pc_metastore *ms)
{
    pc_sq_store *s = sq_of(ms);
    pc_sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = conn_get(s, &c);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK)
        return pc_sq_db_error(c->db, "quick_check");
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t || strcmp(t, "ok") != 0) {
            pc_error_set("%s is damaged (PRAGMA quick_check: %s)", s->path, t ? t : "?");
            rc = PC_EINVAL;
        }
    } else {
        rc = pc_sq_db_error(c->db, "quick_check");
        if (rc == PC_ERR) {
            char m[400];
            snprintf(m, sizeof(m), "%s", pc_error_last());
            pc_error_set("%s is damaged (%s)", s->path, m);
            rc = PC_EINVAL;
        }
    }
    sqlite3_finalize(st);
    return rc;
}
