/*
 * meta_pg.c - the PostgreSQL meta store (store/meta_pg.h): opens the
 * store (its connection string from the options, a file or the
 * environment), migrates the schema, frees it, and runs the query and
 * transaction helpers the area files use (meta_pg_int.h).
 *
 * Every value goes to the server as a parameter of a prepared statement
 * (PQprepare once per connection, then PQexecPrepared); no SQL is pasted
 * together from values. Results are read whole before a listing's callback
 * runs, so a callback may call the store again (on the same connection).
 *
 * Migrations (meta_pg_schema.c) run in one transaction under a
 * transaction-level advisory lock on a fixed key: replicas starting
 * together wait for each other, the first applies what is missing, the
 * others then find schema_version current. Every multi-row change is one
 * transaction (pc_pg_tx), retried when the server reports a serialization
 * failure or broke a deadlock.
 *
 * guarded_remove's promise, "other writers wait while the check runs", is
 * kept with a second advisory key: each transaction that writes registry
 * data (blob links, manifests and their references, tags, repositories,
 * uploads) first takes it shared, guarded_remove takes it exclusive for
 * its whole transaction. Writers do not wait for each other; a guard waits
 * for the writers in flight to commit, then holds new ones off until it
 * commits, and (READ COMMITTED: each statement sees what committed before
 * it) its check reads everything they wrote. SERIALIZABLE would not do:
 * it aborts one side after the fact, but the check may already have
 * removed a blob file. Cache bookkeeping (access records, tag freshness,
 * limiter counts) takes no lock: no check reads it.
 *
 * Messages carry libpq's and the server's text with the connection's
 * password (from the string, PGPASSWORD or a password file) taken out;
 * the connection string itself is never put in a message.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PG_TX_RETRIES 8

static pc_pg_store *pg_of(pc_metastore *ms)
{
    return (pc_pg_store *)ms;
}

/* ---- messages ---- */

/* msg into out (size bytes), one line, every copy of secret replaced. */
static void redact(char *out, size_t size, const char *msg, const char *secret)
{
    size_t n = 0, sl = secret ? strlen(secret) : 0;
    for (const char *p = msg ? msg : ""; *p && n + 1 < size;) {
        if (sl && strncmp(p, secret, sl) == 0) {
            for (const char *r = "***"; *r && n + 1 < size; r++)
                out[n++] = *r;
            p += sl;
            continue;
        }
        out[n++] = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
        p++;
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

int pc_pg_error(pc_pg_conn *c, const char *state, const char *msg, const char *what)
{
    char clean[768];
    const char *pw = c && c->pg ? PQpass(c->pg) : NULL;
    redact(clean, sizeof(clean), msg && *msg ? msg : "connection lost", pw && *pw ? pw : NULL);
    pc_error_set("meta store: %s: %s", what, clean);
    if (c)
        snprintf(c->last_state, sizeof(c->last_state), "%s", state ? state : "");
    if (!state)
        return PC_ERR;
    if (strncmp(state, "23", 2) == 0) /* integrity constraint violation */
        return PC_EEXISTS;
    if (strcmp(state, "53100") == 0) /* disk_full */
        return PC_ENOSPC;
    if (strcmp(state, "53200") == 0) /* out_of_memory */
        return PC_ENOMEM;
    if (strcmp(state, "25006") == 0) /* read_only_sql_transaction (a standby) */
        return PC_EROFS;
    return PC_ERR;
}

/* ---- columns ---- */

int pc_pg_col_text(const PGresult *res, int row, int col, char *dst, size_t size)
{
    const char *t = PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
    size_t n = strlen(t);
    if (n >= size) {
        pc_error_set("meta store: stored value too long");
        return PC_ERR;
    }
    memcpy(dst, t, n + 1);
    return 0;
}

int pc_pg_col_digest(const PGresult *res, int row, int col, pc_digest *out)
{
    if (PQgetisnull(res, row, col) || pc_digest_parse(out, PQgetvalue(res, row, col)) != 0) {
        pc_error_set("meta store: stored digest is invalid");
        return PC_ERR;
    }
    return 0;
}

int64_t pc_pg_col_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* ---- queries ---- */

/* Statements that only read, safe to run again on a fresh connection
 * when the first try found the old one dropped (outside a transaction). */
static bool read_only(int id)
{
    return strncmp(pc_pg_stmt_sql[id], "SELECT", 6) == 0 && id != PG_LOCK_WRITE &&
           id != PG_LOCK_GUARD && id != PG_MANIFEST_LOCK;
}

/* Prepare id on c when it is not, then run it. A result (maybe failed) or
 * NULL (out of memory, or the connection is gone). */
static PGresult *stmt_run(pc_pg_conn *c, int id, const char *const *vals, int n)
{
    char name[16];
    snprintf(name, sizeof(name), "pc%d", id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->pg, name, pc_pg_stmt_sql[id], 0, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            return r;
        PQclear(r);
        c->prepared[id] = true;
    }
    return PQexecPrepared(c->pg, name, n, vals, NULL, NULL, 0);
}

/* Run id with args on the thread's connection: *out the result. */
static int run(pc_metastore *ms, int id, const char *what, const pc_pg_arg *args, size_t nargs,
               PGresult **out)
{
    const char *vals[PG_ARGS_MAX];
    char nums[PG_ARGS_MAX][24];
    pc_pg_conn *c = NULL;
    *out = NULL;
    if (nargs > PG_ARGS_MAX) {
        pc_error_set("meta store: %s: too many parameters", what);
        return PC_ERR;
    }
    for (size_t i = 0; i < nargs; i++) {
        switch (args[i].type) {
        case PC_PG_ARG_TEXT:
            vals[i] = args[i].text;
            break;
        case PC_PG_ARG_INT:
            snprintf(nums[i], sizeof(nums[i]), "%" PRId64, args[i].num);
            vals[i] = nums[i];
            break;
        case PC_PG_ARG_NULL:
            vals[i] = NULL;
            break;
        }
    }
    int rc = pc_pg_borrow(pg_of(ms), &c);
    if (rc)
        return rc;
    for (int attempt = 0;; attempt++) {
        PGresult *r = stmt_run(c, id, vals, (int)nargs);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *out = r;
            rc = 0;
            break;
        }
        if (attempt == 0 && PQstatus(c->pg) != CONNECTION_OK && !c->in_tx && read_only(id)) {
            PQclear(r);
            if ((rc = pc_pg_revive(c)) == 0)
                continue;
            break;
        }
        rc = pc_pg_error(c, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL,
                         r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), what);
        PQclear(r);
        break;
    }
    pc_pg_give_back(c);
    return rc;
}

int pc_pg_query_open(pc_pg_query *q, pc_metastore *ms, int id, const char *what,
                     const pc_pg_arg *args, size_t nargs)
{
    return run(ms, id, what, args, nargs, &q->res);
}

void pc_pg_query_close(pc_pg_query *q)
{
    PQclear(q->res);
    q->res = NULL;
}

int pc_pg_query_row(pc_pg_query *q, pc_metastore *ms, int id, const char *what, const char *missing,
                    const pc_pg_arg *args, size_t nargs)
{
    int rc = run(ms, id, what, args, nargs, &q->res);
    if (rc == 0 && PQntuples(q->res) < 1) {
        pc_pg_query_close(q);
        pc_error_set("%s", missing);
        rc = PC_ENOTFOUND;
    }
    return rc;
}

int pc_pg_get_int(pc_metastore *ms, int id, const char *what, const char *missing, int64_t *out,
                  const pc_pg_arg *args, size_t nargs)
{
    pc_pg_query q;
    int rc = pc_pg_query_row(&q, ms, id, what, missing, args, nargs);
    if (rc)
        return rc;
    *out = pc_pg_col_int(q.res, 0, 0);
    pc_pg_query_close(&q);
    return 0;
}

int pc_pg_exec(pc_metastore *ms, int id, const char *what, int64_t *changes, const pc_pg_arg *args,
               size_t nargs)
{
    PGresult *r = NULL;
    int rc = run(ms, id, what, args, nargs, &r);
    if (rc == 0 && changes) {
        const char *n = PQcmdTuples(r);
        *changes = n && *n ? (int64_t)strtoll(n, NULL, 10) : 0;
    }
    PQclear(r);
    return rc;
}

int pc_pg_delete(pc_metastore *ms, int id, const char *what, const pc_pg_arg *args, size_t nargs)
{
    int64_t changes = 0;
    int rc = pc_pg_exec(ms, id, what, &changes, args, nargs);
    if (rc == 0 && changes == 0) {
        pc_error_set("%s: not found", what);
        rc = PC_ENOTFOUND;
    }
    return rc;
}

int pc_pg_each(pc_metastore *ms, int id, const char *what, pc_pg_row_fn fn, void *ctx,
               const pc_pg_arg *args, size_t nargs)
{
    pc_pg_query q;
    int rc = pc_pg_query_open(&q, ms, id, what, args, nargs);
    if (rc)
        return rc;
    int n = PQntuples(q.res);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = fn(q.res, i, ctx);
    pc_pg_query_close(&q);
    return rc;
}

/* ---- transactions ---- */

/* A statement without parameters (BEGIN, COMMIT, ROLLBACK) on c. */
static int simple(pc_pg_conn *c, const char *sql)
{
    PGresult *r = PQexec(c->pg, sql);
    int rc = 0;
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pc_pg_error(c, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL,
                         r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), sql);
    PQclear(r);
    return rc;
}

/* Whether the server asks for the transaction to be tried again. */
static bool retryable(const pc_pg_conn *c)
{
    return strcmp(c->last_state, "40001") == 0 || strcmp(c->last_state, "40P01") == 0;
}

/* One try of pc_pg_tx on c. */
static int tx_once(pc_metastore *ms, pc_pg_conn *c, pc_pg_tx_kind kind, pc_pg_tx_fn fn, void *arg,
                   bool *began)
{
    int rc = simple(c, "BEGIN");
    *began = rc == 0;
    if (rc)
        return rc;
    c->in_tx = true;
    if (kind == PC_PG_TX_WRITER)
        rc = pc_pg_exec(ms, PG_LOCK_WRITE, "writer lock", NULL, PG_NOARGS);
    else if (kind == PC_PG_TX_GUARD)
        rc = pc_pg_exec(ms, PG_LOCK_GUARD, "guard lock", NULL, PG_NOARGS);
    if (rc == 0)
        rc = fn(ms, arg);
    if (rc == 0)
        rc = simple(c, "COMMIT");
    if (rc) {
        /* keep the message (and SQLSTATE) of what failed, not the rollback's */
        char msg[768], state[sizeof(c->last_state)];
        snprintf(msg, sizeof(msg), "%s", pc_error_last());
        snprintf(state, sizeof(state), "%s", c->last_state);
        if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            simple(c, "ROLLBACK");
        snprintf(c->last_state, sizeof(c->last_state), "%s", state);
        pc_error_set("%s", msg);
    }
    c->in_tx = false;
    return rc;
}

int pc_pg_tx(pc_metastore *ms, pc_pg_tx_kind kind, pc_pg_tx_fn fn, void *arg)
{
    pc_pg_conn *c = NULL;
    int rc = pc_pg_borrow(pg_of(ms), &c);
    if (rc)
        return rc;
    if (c->in_tx) { /* nested (never done by this store's own functions): join it */
        rc = fn(ms, arg);
        pc_pg_give_back(c);
        return rc;
    }
    bool revived = false;
    for (int attempt = 0;; attempt++) {
        bool began = false;
        c->last_state[0] = '\0';
        rc = tx_once(ms, c, kind, fn, arg, &began);
        if (rc && !began && !revived && PQstatus(c->pg) != CONNECTION_OK) {
            /* dropped before anything ran (the borrow's look missed it) */
            revived = true;
            if (pc_pg_revive(c) == 0)
                continue;
            break;
        }
        if (rc == 0 || kind == PC_PG_TX_GUARD || attempt + 1 >= PG_TX_RETRIES || !retryable(c))
            break;
        struct timespec ts = {0, (long)(1 + attempt) * 2000000L}; /* back off a little */
        nanosleep(&ts, NULL);
    }
    pc_pg_give_back(c);
    return rc;
}

/* ---- the connection string ---- */

/* The first line of path into *out (malloc'd). 0 or PC_EINVAL. */
static int read_line_file(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        pc_error_set("meta store: cannot read the PostgreSQL connection string file %s: %s", path,
                     strerror(errno));
        return PC_EINVAL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (n <= 0) {
        free(line);
        pc_error_set("meta store: the PostgreSQL connection string file %s is empty", path);
        return PC_EINVAL;
    }
    *out = line;
    return 0;
}

/* The connection string o names into *out (malloc'd); *from says where it
 * came from, for messages. 0, PC_EINVAL or PC_ENOMEM. */
static int conninfo_resolve(const pc_pg_opts *o, char **out, const char **from)
{
    const char *v = NULL;
    *from = "the options";
    if (o && o->conninfo) {
        v = o->conninfo;
    } else if (o && o->conninfo_file) {
        *from = o->conninfo_file;
        return read_line_file(o->conninfo_file, out);
    } else if (o && o->conninfo_env) {
        *from = o->conninfo_env;
        if (!(v = getenv(o->conninfo_env))) {
            pc_error_set("meta store: the environment variable %s (storage.meta.conninfo_env) "
                         "is not set",
                         o->conninfo_env);
            return PC_EINVAL;
        }
    } else {
        *from = PC_PG_CONNINFO_ENV;
        v = getenv(PC_PG_CONNINFO_ENV);
        if (!v)
            v = ""; /* libpq's PG* environment variables and defaults */
    }
    if (!(*out = strdup(v)))
        return PC_ENOMEM;
    return 0;
}

/* ---- open, migrate, free ---- */

static void pg_free(pc_metastore *ms)
{
    pc_pg_store *s = pg_of(ms);
    if (!s)
        return;
    pc_pg_pool_close(s);
    pthread_key_delete(s->key);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->lock);
    if (s->conninfo) {
        memset(s->conninfo, 0, strlen(s->conninfo)); /* may hold the password */
        free(s->conninfo);
    }
    free(s->conns);
    free(s);
}

/* A statement without parameters whose one row and column is an integer. */
static int simple_int(pc_pg_conn *c, const char *sql, int64_t *out)
{
    PGresult *r = PQexec(c->pg, sql);
    int rc = 0;
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        rc = pc_pg_error(c, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL,
                         r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), "schema version");
    else
        *out = pc_pg_col_int(r, 0, 0);
    PQclear(r);
    return rc;
}

/* Inside the migration's transaction, under its lock. */
static int migrate_steps(pc_pg_conn *c)
{
    int64_t version = 0;
    PGresult *r = PQexec(c->pg, "SELECT pg_advisory_xact_lock(" PC_PG_KEY_MIGRATE ")");
    int rc = 0;
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pc_pg_error(c, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL,
                         r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), "migration lock");
    PQclear(r);
    if (rc ||
        (rc = simple(c, "CREATE TABLE IF NOT EXISTS schema_version("
                        "version integer PRIMARY KEY, applied bigint NOT NULL)")) ||
        (rc = simple_int(c, "SELECT coalesce(max(version), 0) FROM schema_version", &version)))
        return rc;
    if (version > pc_pg_schema_version) {
        pc_error_set("meta store: schema version %" PRId64 " is newer than this program's (%d)",
                     version, pc_pg_schema_version);
        return PC_ERR;
    }
    for (int v = (int)version; v < pc_pg_schema_version; v++) {
        char num[16], now[24];
        if ((rc = simple(c, pc_pg_migrations[v])))
            return rc;
        snprintf(num, sizeof(num), "%d", v + 1);
        snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
        const char *vals[] = {num, now};
        r = PQexecParams(c->pg, "INSERT INTO schema_version(version, applied) VALUES($1, $2)", 2,
                         NULL, vals, NULL, NULL, 0);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = pc_pg_error(c, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL,
                             r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), "schema version");
        PQclear(r);
        if (rc)
            return rc;
    }
    return 0;
}

static int migrate(pc_pg_conn *c)
{
    int rc = simple(c, "BEGIN");
    if (rc)
        return rc;
    rc = migrate_steps(c);
    if (rc == 0)
        return simple(c, "COMMIT");
    char msg[768];
    snprintf(msg, sizeof(msg), "%s", pc_error_last());
    simple(c, "ROLLBACK");
    pc_error_set("%s", msg);
    return rc;
}

static pc_meta_reg_ops pg_reg;
static pc_meta_cache_ops pg_cache;
static pc_meta_limit_ops pg_limits;
static pc_meta_coord_ops pg_coord;
static pthread_once_t pg_tables_once = PTHREAD_ONCE_INIT;

static void pg_tables_fill(void)
{
    pg_reg.version = PC_META_REG_VERSION;
    pg_cache.version = PC_META_CACHE_VERSION;
    pg_limits.version = PC_META_LIMIT_VERSION;
    pc_pg_blobs_install(&pg_reg);
    pc_pg_manifests_install(&pg_reg, &pg_cache);
    pc_pg_fsck_install(&pg_reg);
    pc_pg_cache_install(&pg_cache);
    pc_pg_limits_install(&pg_limits);
    pg_coord.version = PC_META_COORD_VERSION;
    pc_pg_coord_install(&pg_coord);
}

/* The store without connections: options checked, locks made. */
static int store_make(const pc_pg_opts *o, pc_pg_store **out)
{
    const char *from = NULL;
    unsigned pool = o && o->pool ? o->pool : PC_PG_POOL_DEFAULT;
    if (pool > PC_PG_POOL_MAX) {
        pc_error_set("meta store: storage.meta.pool %u is more than %u", pool, PC_PG_POOL_MAX);
        return PC_EINVAL;
    }
    pc_pg_store *s = calloc(1, sizeof(*s));
    if (!s)
        return PC_ENOMEM;
    s->pool_max = pool;
    s->wait_ms = o && o->wait_ms ? o->wait_ms : PC_PG_WAIT_MS_DEFAULT;
    int rc = conninfo_resolve(o, &s->conninfo, &from);
    if (rc == 0 && s->conninfo[0]) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(s->conninfo, &err);
        if (!opts) {
            /* libpq's message quotes the string, which may hold the password */
            pc_error_set("meta store: the PostgreSQL connection string (from %s) cannot be "
                         "parsed",
                         from);
            rc = PC_EINVAL;
        }
        PQconninfoFree(opts);
        PQfreemem(err);
    }
    if (rc == 0 && !(s->conns = calloc(pool, sizeof(*s->conns))))
        rc = PC_ENOMEM;
    if (rc) {
        free(s->conninfo);
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    if (pthread_key_create(&s->key, NULL) != 0) {
        pthread_cond_destroy(&s->freed);
        pthread_mutex_destroy(&s->lock);
        free(s->conns);
        free(s->conninfo);
        free(s);
        pc_error_set("meta store: no thread key left");
        return PC_ERR;
    }
    *out = s;
    return 0;
}

int pc_meta_pg_open(pc_metastore **out, const pc_pg_opts *o)
{
    pc_pg_store *s = NULL;
    pc_pg_conn *c = NULL;
    pthread_once(&pg_tables_once, pg_tables_fill);
    int rc = store_make(o, &s);
    if (rc)
        return rc;
    s->base.version = PC_META_VERSION;
    s->base.driver = "postgres";
    s->base.free = pg_free;
    s->base.reg = &pg_reg;
    s->base.cache = &pg_cache;
    s->base.limits = &pg_limits;
    s->base.coord = &pg_coord;
    /* the first connection migrates, then joins the pool */
    if ((rc = pc_pg_borrow(s, &c)))
        goto done;
    rc = migrate(c);
    pc_pg_give_back(c);
done:
    if (rc) {
        pg_free(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* ---- one-statement registry writes ---- */

typedef struct {
    int id;
    const char *what;
    int64_t *changes;
    const pc_pg_arg *args;
    size_t nargs;
} write1;

static int write1_fn(pc_metastore *ms, void *arg)
{
    write1 *w = arg;
    return pc_pg_exec(ms, w->id, w->what, w->changes, w->args, w->nargs);
}

int pc_pg_write(pc_metastore *ms, int id, const char *what, int64_t *changes, const pc_pg_arg *args,
                size_t nargs)
{
    write1 w = {id, what, changes, args, nargs};
    return pc_pg_tx(ms, PC_PG_TX_WRITER, write1_fn, &w);
}

int pc_pg_write_delete(pc_metastore *ms, int id, const char *what, const pc_pg_arg *args,
                       size_t nargs)
{
    int64_t changes = 0;
    int rc = pc_pg_write(ms, id, what, &changes, args, nargs);
    if (rc == 0 && changes == 0) {
        pc_error_set("%s: not found", what);
        rc = PC_ENOTFOUND;
    }
    return rc;
}
