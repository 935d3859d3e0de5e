/*
 * metastore_sqlite.c - the SQLite meta store: the embedded default behind
 * the pc_metastore table (metastore.h).
 *
 * One database file in WAL mode (readers never wait for the writer),
 * synchronous=NORMAL, foreign keys on, a 5 s busy timeout. Each thread that
 * uses the store gets its own connection (a pthread key, opened on first use,
 * closed when the thread exits or the store is freed), with its prepared
 * statements cached, so manifest reads from a server's thread pool run in
 * parallel without a shared lock. The schema is versioned with PRAGMA
 * user_version and upgraded at open by the migration table below.
 *
 * free() closes every thread's connection: call it only once no other
 * thread uses the store (after a server's thread pool has stopped).
 */
#include "metastore.h"
#include "blobstore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#define SQ_BUSY_TIMEOUT_MS 5000

/* migrations[i] upgrades the schema from user_version i to i + 1. Append
 * only; never edit a shipped step. */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE blob_links("
    "  repo TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL, PRIMARY KEY(repo, digest)) WITHOUT ROWID;"
    "CREATE INDEX blob_links_digest ON blob_links(digest);"
    "CREATE TABLE manifests("
    "  repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL, artifact_type TEXT NOT NULL DEFAULT '', subject TEXT,"
    "  created INTEGER NOT NULL, PRIMARY KEY(repo, digest)) WITHOUT ROWID;"
    "CREATE INDEX manifests_digest ON manifests(digest);"
    "CREATE INDEX manifests_subject ON manifests(repo, subject, digest)"
    "  WHERE subject IS NOT NULL;"
    "CREATE TABLE manifest_refs("
    "  repo TEXT NOT NULL, manifest TEXT NOT NULL, ref TEXT NOT NULL,"
    "  is_manifest INTEGER NOT NULL, PRIMARY KEY(repo, manifest, ref),"
    "  FOREIGN KEY(repo, manifest) REFERENCES manifests(repo, digest) ON DELETE CASCADE)"
    "  WITHOUT ROWID;"
    "CREATE INDEX manifest_refs_ref ON manifest_refs(ref);"
    "CREATE TABLE tags("
    "  repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,"
    "  updated INTEGER NOT NULL, PRIMARY KEY(repo, tag),"
    "  FOREIGN KEY(repo, digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE)"
    "  WITHOUT ROWID;"
    "CREATE INDEX tags_digest ON tags(repo, digest);"
    "CREATE TABLE uploads("
    "  id TEXT NOT NULL PRIMARY KEY, repo TEXT NOT NULL, created INTEGER NOT NULL)"
    "  WITHOUT ROWID;",
    /* 1 -> 2: when the mirror last served or fetched each blob (eviction). */
    "CREATE TABLE cache_access("
    "  digest TEXT NOT NULL PRIMARY KEY, size INTEGER NOT NULL,"
    "  last_access INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX cache_access_lru ON cache_access(last_access, digest);",
};

#define SQ_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

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
    ST_ACCESS_HELD,
    ST_ACCESS_UNLINK,
    ST_ACCESS_DEL,
    ST_COUNT
};

#define MANIFEST_COLS "repo, digest, media_type, size, artifact_type, subject"

/* access_touch writes a blob's last access at most this often. */
#define SQ_TOUCH_EVERY 60
#define SQ_TOUCH_EVERY_S "60"

/* A holder of digest D (an SQL expression) in a repository whose first
 * component is not in the newline-framed upstream list ?1. */
#define SQ_LOCAL_HOLDER(D)                                                                         \
    "SELECT 1 FROM (SELECT repo FROM blob_links WHERE digest = " D                                 \
    " UNION ALL SELECT repo FROM manifest_refs WHERE ref = " D ") h"                               \
    " WHERE instr(?1, char(10) || substr(h.repo, 1, instr(h.repo, '/') - 1) || char(10)) = 0"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_BLOB_LINK] = "INSERT INTO blob_links(repo, digest, size, created) VALUES(?1, ?2, ?3, ?4)"
                     " ON CONFLICT(repo, digest) DO NOTHING",
    [ST_BLOB_STAT] = "SELECT size FROM blob_links WHERE repo = ?1 AND digest = ?2",
    [ST_BLOB_STAT_ANY] = "SELECT size FROM blob_links WHERE digest = ?1 LIMIT 1",
    [ST_BLOB_UNLINK] = "DELETE FROM blob_links WHERE repo = ?1 AND digest = ?2",
    [ST_MANIFEST_UPSERT] =
        "INSERT INTO manifests(" MANIFEST_COLS ", created) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT(repo, digest) DO UPDATE SET media_type = excluded.media_type,"
        " size = excluded.size, artifact_type = excluded.artifact_type,"
        " subject = excluded.subject",
    [ST_REFS_CLEAR] = "DELETE FROM manifest_refs WHERE repo = ?1 AND manifest = ?2",
    [ST_REF_ADD] = "INSERT INTO manifest_refs(repo, manifest, ref, is_manifest)"
                   " VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    [ST_TAG_SET] = "INSERT INTO tags(repo, tag, digest, updated) VALUES(?1, ?2, ?3, ?4)"
                   " ON CONFLICT(repo, tag) DO UPDATE SET digest = excluded.digest,"
                   " updated = excluded.updated",
    [ST_MANIFEST_GET] = "SELECT " MANIFEST_COLS " FROM manifests WHERE repo = ?1 AND digest = ?2",
    [ST_TAGS_OF_MANIFEST_DEL] = "DELETE FROM tags WHERE repo = ?1 AND digest = ?2",
    [ST_MANIFEST_DEL] = "DELETE FROM manifests WHERE repo = ?1 AND digest = ?2",
    [ST_TAG_GET] = "SELECT digest FROM tags WHERE repo = ?1 AND tag = ?2",
    [ST_TAG_DEL] = "DELETE FROM tags WHERE repo = ?1 AND tag = ?2",
    [ST_TAG_LIST] = "SELECT tag FROM tags WHERE repo = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
    [ST_REFERRERS] = "SELECT " MANIFEST_COLS " FROM manifests WHERE repo = ?1 AND subject = ?2"
                     " ORDER BY digest",
    [ST_CATALOG] = "SELECT repo FROM blob_links WHERE repo > ?1"
                   " UNION SELECT repo FROM manifests WHERE repo > ?1"
                   " UNION SELECT repo FROM tags WHERE repo > ?1"
                   " ORDER BY 1 LIMIT ?2",
    [ST_REPO_EXISTS] = "SELECT EXISTS(SELECT 1 FROM blob_links WHERE repo = ?1)"
                       " OR EXISTS(SELECT 1 FROM manifests WHERE repo = ?1)"
                       " OR EXISTS(SELECT 1 FROM tags WHERE repo = ?1)",
    [ST_UPLOAD_PUT] = "INSERT INTO uploads(id, repo, created) VALUES(?1, ?2, ?3)",
    [ST_UPLOAD_GET] = "SELECT repo FROM uploads WHERE id = ?1",
    [ST_UPLOAD_DEL] = "DELETE FROM uploads WHERE id = ?1",
    [ST_REFERENCED] = "SELECT digest FROM manifests UNION ALL SELECT ref FROM manifest_refs"
                      " UNION ALL SELECT digest FROM blob_links",
    [ST_HOLDERS] = "SELECT (SELECT count(*) FROM blob_links WHERE digest = ?1)"
                   " + (SELECT count(*) FROM manifests WHERE digest = ?1)"
                   " + (SELECT count(*) FROM manifest_refs WHERE ref = ?1)",
    [ST_TAG_STAT] = "SELECT digest, updated FROM tags WHERE repo = ?1 AND tag = ?2",
    [ST_TAG_TOUCH] = "UPDATE tags SET updated = ?3 WHERE repo = ?1 AND tag = ?2 AND digest = ?4",
    [ST_ACCESS_GET] = "SELECT last_access FROM cache_access WHERE digest = ?1",
    [ST_ACCESS_TOUCH] =
        "INSERT INTO cache_access(digest, size, last_access) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(digest) DO UPDATE SET size = excluded.size,"
        " last_access = excluded.last_access"
        " WHERE cache_access.last_access < excluded.last_access - " SQ_TOUCH_EVERY_S,
    /* ?1 is "\n<upstream>\n<upstream>\n": a holder is outside the mirror
     * when its repository's first component is not in that list. */
    [ST_ACCESS_LRU] =
        "SELECT a.digest, a.size, a.last_access FROM cache_access a"
        " WHERE NOT EXISTS(SELECT 1 FROM manifests WHERE digest = a.digest)"
        " AND NOT EXISTS(" SQ_LOCAL_HOLDER("a.digest") ") ORDER BY a.last_access, a.digest",
    [ST_ACCESS_HELD] = "SELECT EXISTS(SELECT 1 FROM manifests WHERE digest = ?2)"
                       " OR EXISTS(" SQ_LOCAL_HOLDER("?2") ")",
    [ST_ACCESS_UNLINK] = "DELETE FROM blob_links WHERE digest = ?1",
    [ST_ACCESS_DEL] = "DELETE FROM cache_access WHERE digest = ?1",
};

typedef struct sq_store sq_store;

/* One thread's connection. */
typedef struct sq_conn {
    sq_store *store;
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    struct sq_conn *prev, *next;
} sq_conn;

struct sq_store {
    pc_metastore base;
    char *path;
    pthread_key_t key;
    pthread_mutex_t lock; /* guards conns */
    sq_conn *conns;       /* every open connection, for free() */
};

static sq_store *sq_of(pc_metastore *ms)
{
    return (sq_store *)ms;
}

/* Record the connection's last error as the thread's message. */
static int db_error(sqlite3 *db, const char *what)
{
    int code = sqlite3_errcode(db);
    pc_error_set("meta store: %s: %s", what, sqlite3_errmsg(db));
    return code == SQLITE_NOMEM ? PC_ENOMEM : PC_ERR;
}

static void conn_close(sq_conn *c)
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
    sq_conn *c = p;
    sq_store *s = c->store;
    pthread_mutex_lock(&s->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->lock);
    conn_close(c);
}

/* Open a connection to path with the per-connection settings. */
static int conn_open(sq_store *s, sq_conn **out)
{
    int rc = 0;
    sq_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return PC_ENOMEM;
    c->store = s;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->path, &c->db, flags, NULL) != SQLITE_OK) {
        if (c->db)
            rc = db_error(c->db, s->path);
        else
            pc_error_set("meta store: cannot open %s", s->path);
        rc = rc ? rc : PC_ERR;
        goto done;
    }
    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
    if (sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", NULL, NULL,
                     NULL) != SQLITE_OK) {
        rc = db_error(c->db, "settings");
        goto done;
    }
    *out = c;
    c = NULL;
done:
    conn_close(c);
    return rc;
}

/* The calling thread's connection, opened on first use. */
static int conn_get(sq_store *s, sq_conn **out)
{
    sq_conn *c = pthread_getspecific(s->key);
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
    *out = c;
    return 0;
}

/* Statement id of connection c, ready to bind. When the cached one is in
 * use further up the stack (a list callback calling back into the store), a
 * fresh one is prepared; stmt_put() finalizes it. */
static int stmt_get(sq_conn *c, int id, sqlite3_stmt **out)
{
    sqlite3_stmt *st = c->stmts[id];
    if (st && !sqlite3_stmt_busy(st)) {
        *out = st;
        return 0;
    }
    unsigned flags = st ? 0 : SQLITE_PREPARE_PERSISTENT;
    if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, flags, &st, NULL) != SQLITE_OK)
        return db_error(c->db, "prepare");
    if (!c->stmts[id])
        c->stmts[id] = st;
    *out = st;
    return 0;
}

static void stmt_put(sq_conn *c, int id, sqlite3_stmt *st)
{
    if (!st)
        return;
    if (st == c->stmts[id])
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
}

/* Connection and statement id in one step. */
static int prep(pc_metastore *ms, int id, sq_conn **c, sqlite3_stmt **st)
{
    int rc = conn_get(sq_of(ms), c);
    if (!rc)
        rc = stmt_get(*c, id, st);
    return rc;
}

/* Run a statement that returns no rows. */
static int step_done(sq_conn *c, sqlite3_stmt *st, const char *what)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE)
        return 0;
    if ((r & 0xff) == SQLITE_CONSTRAINT) {
        pc_error_set("meta store: %s: %s", what, sqlite3_errmsg(c->db));
        return PC_EEXISTS;
    }
    return db_error(c->db, what);
}

/* Run a statement by id with no parameters (transaction control). */
static int exec_id(sq_conn *c, int id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(c, id, &st);
    if (!rc)
        rc = step_done(c, st, stmt_sql[id]);
    stmt_put(c, id, st);
    return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static bool repo_ok(const char *repo)
{
    return repo && repo[0] && strnlen(repo, PC_NAME_MAX + 1) <= PC_NAME_MAX;
}

static bool tag_ok(const char *tag)
{
    return tag && tag[0] && strnlen(tag, PC_TAG_MAX + 1) <= PC_TAG_MAX;
}

static bool digest_ok(const pc_digest *d)
{
    return d && d->str[0] && memchr(d->str, '\0', sizeof(d->str)) != NULL;
}

static int invalid(const char *what)
{
    pc_error_set("meta store: invalid %s", what);
    return PC_EINVAL;
}

/* Copy text column col into dst of size bytes. PC_ERR when it does not fit
 * (a corrupt or foreign database). */
static int col_text(sqlite3_stmt *st, int col, char *dst, size_t size)
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

static int col_digest(sqlite3_stmt *st, int col, pc_digest *out)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    if (!t || pc_digest_parse(out, t) != 0) {
        pc_error_set("meta store: stored digest is invalid");
        return PC_ERR;
    }
    return 0;
}

/* A manifests row (MANIFEST_COLS) into out. */
static int col_rec(sqlite3_stmt *st, pc_manifest_rec *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = col_text(st, 0, out->repo, sizeof(out->repo))) ||
        (rc = col_digest(st, 1, &out->digest)) ||
        (rc = col_text(st, 2, out->media_type, sizeof(out->media_type))))
        return rc;
    out->size = (uint64_t)sqlite3_column_int64(st, 3);
    if ((rc = col_text(st, 4, out->artifact_type, sizeof(out->artifact_type))))
        return rc;
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
        out->has_subject = true;
        if ((rc = col_digest(st, 5, &out->subject)))
            return rc;
    }
    return 0;
}

/* Step a single-row query: 0 with a row ready, PC_ENOTFOUND, PC_ERR. */
static int step_row(sq_conn *c, sqlite3_stmt *st, const char *what, const char *missing)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        return 0;
    if (r == SQLITE_DONE) {
        pc_error_set("%s", missing);
        return PC_ENOTFOUND;
    }
    return db_error(c->db, what);
}

static int sq_blob_link(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t size)
{
    if (!repo_ok(repo) || !digest_ok(d))
        return invalid("blob link");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_BLOB_LINK, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, d->str);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
    rc = step_done(c, st, "blob link");
done:
    if (c)
        stmt_put(c, ST_BLOB_LINK, st);
    return rc;
}

static int sq_blob_stat(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t *size)
{
    if (!repo_ok(repo) || !digest_ok(d))
        return invalid("blob");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_BLOB_STAT, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, d->str);
    if ((rc = step_row(c, st, "blob stat", "blob unknown to repository")))
        goto done;
    if (size)
        *size = (uint64_t)sqlite3_column_int64(st, 0);
done:
    if (c)
        stmt_put(c, ST_BLOB_STAT, st);
    return rc;
}

static int sq_blob_stat_any(pc_metastore *ms, const pc_digest *d, uint64_t *size)
{
    if (!digest_ok(d))
        return invalid("digest");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_BLOB_STAT_ANY, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, d->str);
    if ((rc = step_row(c, st, "blob stat", "blob unknown")))
        goto done;
    if (size)
        *size = (uint64_t)sqlite3_column_int64(st, 0);
done:
    if (c)
        stmt_put(c, ST_BLOB_STAT_ANY, st);
    return rc;
}

/* Run a DELETE of (a, b) by id; PC_ENOTFOUND when no row went. */
static int delete_pair(pc_metastore *ms, int id, const char *a, const char *b, const char *what)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, id, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, a);
    if (b)
        bind_text(st, 2, b);
    if ((rc = step_done(c, st, what)))
        goto done;
    if (sqlite3_changes(c->db) == 0) {
        pc_error_set("%s: not found", what);
        rc = PC_ENOTFOUND;
    }
done:
    if (c)
        stmt_put(c, id, st);
    return rc;
}

static int sq_blob_unlink(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!repo_ok(repo) || !digest_ok(d))
        return invalid("blob");
    return delete_pair(ms, ST_BLOB_UNLINK, repo, d->str, "blob unlink");
}

/* Run statement id of c with one text parameter. */
static int delete_one(sq_conn *c, int id, const char *p1)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(c, id, &st);
    if (!rc) {
        bind_text(st, 1, p1);
        rc = step_done(c, st, stmt_sql[id]);
    }
    stmt_put(c, id, st);
    return rc;
}

/* Run statement id of c with (repo, digest, text, int) bound as given. */
static int exec_bound(sq_conn *c, int id, const char *p1, const char *p2, const char *p3,
                      sqlite3_int64 p4)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(c, id, &st);
    if (rc)
        goto done;
    bind_text(st, 1, p1);
    bind_text(st, 2, p2);
    if (p3)
        bind_text(st, 3, p3);
    if (sqlite3_bind_parameter_count(st) >= 4)
        sqlite3_bind_int64(st, 4, p4);
    rc = step_done(c, st, stmt_sql[id]);
done:
    stmt_put(c, id, st);
    return rc;
}

static int sq_manifest_put(pc_metastore *ms, const pc_manifest_rec *m, const pc_manifest_ref *refs,
                           size_t nrefs, const char *tag)
{
    if (!m || !repo_ok(m->repo) || !digest_ok(&m->digest) ||
        !memchr(m->media_type, '\0', sizeof(m->media_type)) ||
        !memchr(m->artifact_type, '\0', sizeof(m->artifact_type)) ||
        (m->has_subject && !digest_ok(&m->subject)) || (nrefs && !refs) || (tag && !tag_ok(tag)))
        return invalid("manifest record");
    for (size_t i = 0; i < nrefs; i++)
        if (!digest_ok(&refs[i].digest))
            return invalid("manifest reference");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    bool in_tx = false;
    sqlite3_int64 now = (sqlite3_int64)time(NULL);
    int rc = conn_get(sq_of(ms), &c);
    if (rc || (rc = exec_id(c, ST_BEGIN)))
        goto done;
    in_tx = true;

    if ((rc = stmt_get(c, ST_MANIFEST_UPSERT, &st)))
        goto done;
    bind_text(st, 1, m->repo);
    bind_text(st, 2, m->digest.str);
    bind_text(st, 3, m->media_type);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)m->size);
    bind_text(st, 5, m->artifact_type);
    if (m->has_subject)
        bind_text(st, 6, m->subject.str);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, now);
    rc = step_done(c, st, "manifest put");
    stmt_put(c, ST_MANIFEST_UPSERT, st);
    if (rc)
        goto done;

    if ((rc = exec_bound(c, ST_REFS_CLEAR, m->repo, m->digest.str, NULL, 0)))
        goto done;
    for (size_t i = 0; i < nrefs; i++)
        if ((rc = exec_bound(c, ST_REF_ADD, m->repo, m->digest.str, refs[i].digest.str,
                             refs[i].is_manifest ? 1 : 0)))
            goto done;
    if (tag && (rc = exec_bound(c, ST_TAG_SET, m->repo, tag, m->digest.str, now)))
        goto done;
    if ((rc = exec_id(c, ST_COMMIT)))
        goto done;
    in_tx = false;
done:
    if (in_tx)
        exec_id(c, ST_ROLLBACK);
    return rc;
}

static int sq_manifest_get(pc_metastore *ms, const char *repo, const pc_digest *d,
                           pc_manifest_rec *out)
{
    if (!repo_ok(repo) || !digest_ok(d) || !out)
        return invalid("manifest");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_MANIFEST_GET, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, d->str);
    if ((rc = step_row(c, st, "manifest get", "manifest unknown")))
        goto done;
    rc = col_rec(st, out);
done:
    if (c)
        stmt_put(c, ST_MANIFEST_GET, st);
    return rc;
}

static int sq_manifest_delete(pc_metastore *ms, const char *repo, const pc_digest *d)
{
    if (!repo_ok(repo) || !digest_ok(d))
        return invalid("manifest");
    sq_conn *c = NULL;
    bool in_tx = false;
    int rc = conn_get(sq_of(ms), &c);
    if (rc || (rc = exec_id(c, ST_BEGIN)))
        goto done;
    in_tx = true;
    /* The foreign keys cascade too; explicit deletes keep it true when a
     * connection runs without them. */
    if ((rc = exec_bound(c, ST_TAGS_OF_MANIFEST_DEL, repo, d->str, NULL, 0)) ||
        (rc = exec_bound(c, ST_REFS_CLEAR, repo, d->str, NULL, 0)) ||
        (rc = exec_bound(c, ST_MANIFEST_DEL, repo, d->str, NULL, 0)))
        goto done;
    if (sqlite3_changes(c->db) == 0) {
        pc_error_set("manifest unknown");
        rc = PC_ENOTFOUND;
        goto done;
    }
    if ((rc = exec_id(c, ST_COMMIT)))
        goto done;
    in_tx = false;
done:
    if (in_tx)
        exec_id(c, ST_ROLLBACK);
    return rc;
}

static int sq_tag_get(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out)
{
    if (!repo_ok(repo) || !tag_ok(tag) || !out)
        return invalid("tag");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_TAG_GET, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, tag);
    if ((rc = step_row(c, st, "tag get", "tag unknown")))
        goto done;
    rc = col_digest(st, 0, out);
done:
    if (c)
        stmt_put(c, ST_TAG_GET, st);
    return rc;
}

static int sq_tag_stat(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out,
                       int64_t *updated)
{
    if (!repo_ok(repo) || !tag_ok(tag) || !out || !updated)
        return invalid("tag");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_TAG_STAT, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, tag);
    if ((rc = step_row(c, st, "tag stat", "tag unknown")))
        goto done;
    if ((rc = col_digest(st, 0, out)))
        goto done;
    *updated = (int64_t)sqlite3_column_int64(st, 1);
done:
    if (c)
        stmt_put(c, ST_TAG_STAT, st);
    return rc;
}

static int sq_tag_touch(pc_metastore *ms, const char *repo, const char *tag, const pc_digest *d,
                        int64_t when)
{
    if (!repo_ok(repo) || !tag_ok(tag) || !d)
        return invalid("tag");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_TAG_TOUCH, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, tag);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)when);
    bind_text(st, 4, d->str);
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE) {
        pc_error_set("tag touch: %s", sqlite3_errmsg(c->db));
        rc = PC_ERR;
        goto done;
    }
    rc = sqlite3_changes(c->db) > 0 ? 0 : PC_ENOTFOUND;
done:
    if (c)
        stmt_put(c, ST_TAG_TOUCH, st);
    return rc;
}

static int sq_tag_delete(pc_metastore *ms, const char *repo, const char *tag)
{
    if (!repo_ok(repo) || !tag_ok(tag))
        return invalid("tag");
    return delete_pair(ms, ST_TAG_DEL, repo, tag, "tag delete");
}

static int sq_repo_exists(pc_metastore *ms, const char *repo)
{
    if (!repo_ok(repo))
        return invalid("repository name");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_REPO_EXISTS, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    if ((rc = step_row(c, st, "repo exists", "repository unknown")))
        goto done;
    if (sqlite3_column_int(st, 0) == 0) {
        pc_error_set("repository unknown");
        rc = PC_ENOTFOUND;
    }
done:
    if (c)
        stmt_put(c, ST_REPO_EXISTS, st);
    return rc;
}

/* Step a listing statement, handing column 0 as text to cb. */
static int list_strings(sq_conn *c, sqlite3_stmt *st, const char *what, pc_meta_str_cb cb,
                        void *ctx)
{
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            return 0;
        if (r != SQLITE_ROW)
            return db_error(c->db, what);
        const char *s = (const char *)sqlite3_column_text(st, 0);
        int cbrc = cb(s ? s : "", ctx);
        if (cbrc)
            return cbrc;
    }
}

static int sq_tag_list(pc_metastore *ms, const char *repo, const char *last, long limit,
                       pc_meta_str_cb cb, void *ctx)
{
    if (!repo_ok(repo) || !cb)
        return invalid("tag list");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_repo_exists(ms, repo);
    if (rc || (rc = prep(ms, ST_TAG_LIST, &c, &st)))
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, last ? last : "");
    sqlite3_bind_int64(st, 3, limit >= 0 ? (sqlite3_int64)limit : -1);
    rc = list_strings(c, st, "tag list", cb, ctx);
done:
    if (c)
        stmt_put(c, ST_TAG_LIST, st);
    return rc;
}

static int sq_referrers(pc_metastore *ms, const char *repo, const pc_digest *subject,
                        pc_meta_rec_cb cb, void *ctx)
{
    if (!repo_ok(repo) || !digest_ok(subject) || !cb)
        return invalid("referrers query");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    pc_manifest_rec rec;
    int rc = prep(ms, ST_REFERRERS, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, repo);
    bind_text(st, 2, subject->str);
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = db_error(c->db, "referrers");
            goto done;
        }
        if ((rc = col_rec(st, &rec)) || (rc = cb(&rec, ctx)))
            goto done;
    }
done:
    if (c)
        stmt_put(c, ST_REFERRERS, st);
    return rc;
}

static int sq_catalog(pc_metastore *ms, const char *last, long limit, pc_meta_str_cb cb, void *ctx)
{
    if (!cb)
        return invalid("catalog query");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_CATALOG, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, last ? last : "");
    sqlite3_bind_int64(st, 2, limit >= 0 ? (sqlite3_int64)limit : -1);
    rc = list_strings(c, st, "catalog", cb, ctx);
done:
    if (c)
        stmt_put(c, ST_CATALOG, st);
    return rc;
}

static int sq_upload_put(pc_metastore *ms, const char *id, const char *repo)
{
    if (!pc_upload_id_valid(id) || !repo_ok(repo))
        return invalid("upload");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_UPLOAD_PUT, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, id);
    bind_text(st, 2, repo);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    rc = step_done(c, st, "upload put");
done:
    if (c)
        stmt_put(c, ST_UPLOAD_PUT, st);
    return rc;
}

static int sq_upload_get(pc_metastore *ms, const char *id, char *repo)
{
    if (!pc_upload_id_valid(id) || !repo)
        return invalid("upload");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_UPLOAD_GET, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, id);
    if ((rc = step_row(c, st, "upload get", "upload unknown")))
        goto done;
    rc = col_text(st, 0, repo, PC_NAME_MAX + 1);
done:
    if (c)
        stmt_put(c, ST_UPLOAD_GET, st);
    return rc;
}

static int sq_upload_delete(pc_metastore *ms, const char *id)
{
    if (!pc_upload_id_valid(id))
        return invalid("upload id");
    return delete_pair(ms, ST_UPLOAD_DEL, id, NULL, "upload delete");
}

static int sq_referenced_foreach(pc_metastore *ms, pc_meta_digest_cb cb, void *ctx)
{
    if (!cb)
        return invalid("callback");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_REFERENCED, &c, &st);
    if (rc)
        goto done;
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = db_error(c->db, "referenced");
            goto done;
        }
        pc_digest d;
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t || pc_digest_parse(&d, t) != 0)
            continue; /* cannot name a blob; nothing to keep */
        if ((rc = cb(&d, ctx)))
            goto done;
    }
done:
    if (c)
        stmt_put(c, ST_REFERENCED, st);
    return rc;
}

static int sq_digest_holders(pc_metastore *ms, const pc_digest *d, uint64_t *count)
{
    if (!digest_ok(d) || !count)
        return invalid("digest");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_HOLDERS, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, d->str);
    if ((rc = step_row(c, st, "digest holders", "no result")))
        goto done;
    *count = (uint64_t)sqlite3_column_int64(st, 0);
done:
    if (c)
        stmt_put(c, ST_HOLDERS, st);
    return rc;
}

/* ---- cache access (eviction) ---- */

/* A read first (WAL readers never wait and take no lock), the write only
 * when the record is missing or older than SQ_TOUCH_EVERY: a blob served
 * again and again costs one indexed read. (No memory of what was written:
 * a gc in another process may have dropped the record meanwhile.) */
static int sq_access_touch(pc_metastore *ms, const pc_digest *d, uint64_t size, int64_t now)
{
    if (!digest_ok(d))
        return invalid("digest");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep(ms, ST_ACCESS_GET, &c, &st);
    if (rc)
        goto done;
    bind_text(st, 1, d->str);
    rc = step_row(c, st, "access get", "no access record");
    bool fresh = rc == 0 && now >= (int64_t)sqlite3_column_int64(st, 0) &&
                 now - (int64_t)sqlite3_column_int64(st, 0) < SQ_TOUCH_EVERY;
    stmt_put(c, ST_ACCESS_GET, st);
    st = NULL;
    if (rc && rc != PC_ENOTFOUND)
        goto done;
    rc = 0;
    if (fresh)
        goto done;
    if ((rc = stmt_get(c, ST_ACCESS_TOUCH, &st)))
        goto done;
    bind_text(st, 1, d->str);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
    rc = step_done(c, st, "access touch");
    stmt_put(c, ST_ACCESS_TOUCH, st);
done:
    return rc;
}

/* "\n<name>\n<name>\n" for the upstream names (the caller frees *out). */
static int upstream_list(const char *const *ups, size_t n, char **out)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        if (!ups[i] || !ups[i][0] || strchr(ups[i], '\n') || strchr(ups[i], '/'))
            return invalid("upstream name");
        len += strlen(ups[i]) + 1;
    }
    char *s = malloc(len), *p = s;
    if (!s)
        return PC_ENOMEM;
    *p++ = '\n';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ups[i]);
        memcpy(p, ups[i], l);
        p += l;
        *p++ = '\n';
    }
    *p = '\0';
    *out = s;
    return 0;
}

static int sq_access_lru(pc_metastore *ms, const char *const *upstreams, size_t nups,
                         pc_meta_access_cb cb, void *ctx)
{
    if (!cb || (nups && !upstreams))
        return invalid("eviction query");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    char *list = NULL;
    int rc = upstream_list(upstreams, nups, &list);
    if (rc || (rc = prep(ms, ST_ACCESS_LRU, &c, &st)))
        goto done;
    bind_text(st, 1, list);
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = db_error(c->db, "eviction candidates");
            goto done;
        }
        pc_digest d;
        if (col_digest(st, 0, &d) != 0)
            continue; /* cannot name a blob: nothing to evict */
        if ((rc = cb(&d, (uint64_t)sqlite3_column_int64(st, 1),
                     (int64_t)sqlite3_column_int64(st, 2), ctx)))
            goto done;
    }
done:
    if (c)
        stmt_put(c, ST_ACCESS_LRU, st);
    free(list);
    return rc;
}

static int sq_access_evict(pc_metastore *ms, const pc_digest *d, const char *const *upstreams,
                           size_t nups)
{
    if (!digest_ok(d) || (nups && !upstreams))
        return invalid("eviction");
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    bool in_tx = false;
    char *list = NULL;
    int rc = upstream_list(upstreams, nups, &list);
    if (rc || (rc = conn_get(sq_of(ms), &c)) || (rc = exec_id(c, ST_BEGIN)))
        goto done;
    in_tx = true;
    if ((rc = stmt_get(c, ST_ACCESS_HELD, &st)))
        goto done;
    bind_text(st, 1, list);
    bind_text(st, 2, d->str);
    rc = step_row(c, st, "eviction check", "no result");
    bool held = rc == 0 && sqlite3_column_int(st, 0) != 0;
    stmt_put(c, ST_ACCESS_HELD, st);
    if (rc)
        goto done;
    if (held) {
        pc_error_set("%s is held outside the mirror", d->str);
        rc = PC_EEXISTS;
        goto done;
    }
    if ((rc = delete_one(c, ST_ACCESS_UNLINK, d->str)) ||
        (rc = delete_one(c, ST_ACCESS_DEL, d->str)) || (rc = exec_id(c, ST_COMMIT)))
        goto done;
    in_tx = false;
done:
    if (in_tx)
        exec_id(c, ST_ROLLBACK);
    free(list);
    return rc;
}

static void sq_free(pc_metastore *ms)
{
    sq_store *s = sq_of(ms);
    if (!s)
        return;
    pthread_setspecific(s->key, NULL);
    pthread_key_delete(s->key);
    pthread_mutex_lock(&s->lock);
    while (s->conns) {
        sq_conn *c = s->conns;
        s->conns = c->next;
        conn_close(c);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}

/* Bring the schema to SQ_SCHEMA_VERSION inside one write transaction. */
static int migrate(sq_conn *c)
{
    sqlite3_stmt *st = NULL;
    bool in_tx = false;
    int rc = 0;
    char sql[64];
    if (sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_error(c->db, "WAL mode");
        goto done;
    }
    if ((rc = exec_id(c, ST_BEGIN)))
        goto done;
    in_tx = true;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(c->db, "schema version");
        goto done;
    }
    int version = sqlite3_column_int(st, 0);
    if (version > SQ_SCHEMA_VERSION) {
        pc_error_set("meta store: schema version %d is newer than this program's (%d)", version,
                     SQ_SCHEMA_VERSION);
        rc = PC_ERR;
        goto done;
    }
    for (int v = version; v < SQ_SCHEMA_VERSION; v++) {
        if (sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            rc = db_error(c->db, "schema migration");
            goto done;
        }
    }
    if (version < SQ_SCHEMA_VERSION) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SQ_SCHEMA_VERSION);
        if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            rc = db_error(c->db, "schema version");
            goto done;
        }
    }
    if ((rc = exec_id(c, ST_COMMIT)))
        goto done;
    in_tx = false;
done:
    sqlite3_finalize(st);
    if (in_tx)
        exec_id(c, ST_ROLLBACK);
    return rc;
}

int pc_metastore_sqlite_open(pc_metastore **out, const char *path)
{
    sq_store *s = NULL;
    sq_conn *c = NULL;
    bool key_made = false, lock_made = false;
    int rc = PC_ERR;
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
    if ((rc = conn_get(s, &c)) || (rc = migrate(c)))
        goto done;
    s->base.version = PC_METASTORE_VERSION;
    s->base.blob_link = sq_blob_link;
    s->base.blob_stat = sq_blob_stat;
    s->base.blob_stat_any = sq_blob_stat_any;
    s->base.blob_unlink = sq_blob_unlink;
    s->base.manifest_put = sq_manifest_put;
    s->base.manifest_get = sq_manifest_get;
    s->base.manifest_delete = sq_manifest_delete;
    s->base.tag_get = sq_tag_get;
    s->base.tag_stat = sq_tag_stat;
    s->base.tag_touch = sq_tag_touch;
    s->base.tag_delete = sq_tag_delete;
    s->base.tag_list = sq_tag_list;
    s->base.referrers = sq_referrers;
    s->base.catalog = sq_catalog;
    s->base.repo_exists = sq_repo_exists;
    s->base.upload_put = sq_upload_put;
    s->base.upload_get = sq_upload_get;
    s->base.upload_delete = sq_upload_delete;
    s->base.referenced_foreach = sq_referenced_foreach;
    s->base.digest_holders = sq_digest_holders;
    s->base.free = sq_free;
    s->base.access_touch = sq_access_touch;
    s->base.access_lru = sq_access_lru;
    s->base.access_evict = sq_access_evict;
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
