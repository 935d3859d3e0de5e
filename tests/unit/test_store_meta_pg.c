/*
 * test_store_meta_pg.c - what only the PostgreSQL meta store has (the
 * shared cases are test_store_meta.c's postgres row): replicas starting
 * together on a fresh database migrate it once; a connection the server
 * ends is made again on the next call; guarded_remove holds writers off
 * (seen waiting on the server) until it commits; a pool's borrow waits,
 * bounded; where the connection string comes from; and the password never
 * reaching a message. Run by tests/tools/pg_test.sh (ctest
 * unit.store_meta_pg), which starts the server; without one every case
 * fails (it is not skipped).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/meta_pg_int.h" /* pc_pg_schema_version */
#include "meta_testutil.h"
#include "pg_testutil.h"

#define PASSWORD "Sekr1t-pw-42"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Poll sql on the maintenance database until it answers want (at most
 * about 20 s: a bound on a wait, not a timing assertion). */
static void wait_for(const char *sql, long long want)
{
    for (int i = 0; i < 2000; i++) {
        if (pc_test_pg_int(NULL, sql) == want)
            return;
        sleep_ms(10);
    }
    fail_msg("never true: %s = %lld", sql, want);
}

/* ---- migrations ---- */

enum { REPLICAS = 6 };

/* REPLICAS processes, released together, open the same fresh database:
 * every one succeeds and schema_version holds each migration once. */
static void test_migrate_once(void **state)
{
    (void)state;
    for (int round = 0; round < 4; round++) {
        char db[64], ci[1100];
        assert_int_equal(pc_test_pg_createdb(db, sizeof(db), ci, sizeof(ci), NULL), 0);
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t kids[REPLICAS];
        for (int i = 0; i < REPLICAS; i++) {
            kids[i] = fork();
            assert_true(kids[i] >= 0);
            if (kids[i] == 0) {
                char b;
                close(go[1]);
                if (read(go[0], &b, 1) != 0) /* EOF: the parent let go */
                    _exit(3);
                pc_metastore *ms = NULL;
                pc_pg_opts o = {.conninfo = ci, .pool = 1};
                int rc = pc_meta_pg_open(&ms, &o);
                if (rc)
                    fprintf(stderr, "replica %d: %s\n", i, pc_error_last());
                else
                    ms->free(ms);
                _exit(rc ? 1 : 0);
            }
        }
        close(go[0]);
        close(go[1]); /* all start now */
        for (int i = 0; i < REPLICAS; i++) {
            int st = 0;
            assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
            assert_true(WIFEXITED(st));
            assert_int_equal(WEXITSTATUS(st), 0);
        }
        assert_int_equal(pc_test_pg_int(db, "SELECT count(*) FROM schema_version"),
                         pc_pg_schema_version);
        assert_int_equal(pc_test_pg_int(db, "SELECT max(version) FROM schema_version"),
                         pc_pg_schema_version);
        assert_int_equal(pc_test_pg_int(db, "SELECT count(DISTINCT version) FROM schema_version"),
                         pc_pg_schema_version);
        /* and opening again applies nothing */
        pc_metastore *ms = NULL;
        pc_pg_opts o = {.conninfo = ci};
        assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
        ms->free(ms);
        assert_int_equal(pc_test_pg_int(db, "SELECT count(*) FROM schema_version"),
                         pc_pg_schema_version);
        pc_test_pg_dropdb(db);
    }
}

/* A database whose schema is newer than this program's is refused. */
static void test_newer_schema_refused(void **state)
{
    (void)state;
    char db[64], ci[1100], sql[128];
    assert_int_equal(pc_test_pg_createdb(db, sizeof(db), ci, sizeof(ci), NULL), 0);
    pc_metastore *ms = NULL;
    pc_pg_opts o = {.conninfo = ci};
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    ms->free(ms);
    snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES(%d, 0)",
             pc_pg_schema_version + 1);
    assert_int_equal(pc_test_pg_sql(db, sql), 0);
    assert_int_equal(pc_meta_pg_open(&ms, &o), PC_ERR);
    assert_non_null(strstr(pc_error_last(), "newer than this program's"));
    pc_test_pg_dropdb(db);
}

/* ---- lost connections ---- */

/* The server ends every connection of the store (pg_terminate_backend, as
 * a restart does): the next calls, reads and writes, work. */
static void test_reconnect(void **state)
{
    (void)state;
    char db[64], ci[1100], sql[256];
    assert_int_equal(pc_test_pg_createdb(db, sizeof(db), ci, sizeof(ci), NULL), 0);
    pc_metastore *ms = NULL;
    pc_pg_opts o = {.conninfo = ci, .pool = 2};
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    pc_manifest_rec a = rec("r/app", "a"), b = rec("r/app", "b");
    pc_digest got;
    assert_int_equal(ms->reg->manifest_put(ms, &a, NULL, 0, "v1", NULL), 0);
    for (int round = 0; round < 2; round++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                 " WHERE datname = '%s' AND application_name = 'pullcache'",
                 db);
        assert_true(pc_test_pg_int(NULL, sql) >= 1);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
                 " AND application_name = 'pullcache'",
                 db);
        wait_for(sql, 0);
        if (round == 0) { /* a read first */
            assert_int_equal(ms->reg->tag_get(ms, "r/app", "v1", &got), 0);
            assert_true(pc_digest_equal(&got, &a.digest));
            assert_int_equal(ms->reg->manifest_put(ms, &b, NULL, 0, "v1", &a.digest), 0);
        } else { /* a write first */
            int wrc = ms->reg->manifest_put(ms, &a, NULL, 0, "v1", &b.digest);
            if (wrc)
                print_message("%s\n", pc_error_last());
            assert_int_equal(wrc, 0);
            assert_int_equal(ms->reg->tag_get(ms, "r/app", "v1", &got), 0);
            assert_true(pc_digest_equal(&got, &a.digest));
        }
    }
    ms->free(ms);
    pc_test_pg_dropdb(db);
}

/* ---- guarded_remove holds writers off ---- */

typedef struct {
    pc_metastore *ms;
    const char *db;
    int link_rc;
    int stat_in_check;
    pthread_t writer;
} guard_race;

static void *link_thread(void *p)
{
    guard_race *g = p;
    pc_digest d = dg("late layer");
    g->link_rc = g->ms->reg->blob_link(g->ms, "g/app", &d, 10);
    return NULL;
}

/* Inside the guard: start a writer, see it wait on the writers' advisory
 * lock on the server, and check it has not written. */
static int guard_check(pc_metastore *ms, void *ctx)
{
    guard_race *g = ctx;
    char sql[256];
    uint64_t size;
    pc_digest d = dg("late layer");
    assert_int_equal(pthread_create(&g->writer, NULL, link_thread, g), 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
             " WHERE a.datname = '%s' AND l.locktype = 'advisory' AND NOT l.granted",
             g->db);
    wait_for(sql, 1);
    g->stat_in_check = ms->reg->blob_stat(ms, "g/app", &d, &size);
    return 0;
}

static void test_guard_holds_writers(void **state)
{
    (void)state;
    char db[64], ci[1100];
    assert_int_equal(pc_test_pg_createdb(db, sizeof(db), ci, sizeof(ci), NULL), 0);
    pc_metastore *ms = NULL;
    pc_pg_opts o = {.conninfo = ci, .pool = 2};
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    guard_race g = {.ms = ms, .db = db, .link_rc = 99};
    pc_meta_removal nothing = {PC_META_REMOVE_NOTHING, NULL, NULL};
    assert_int_equal(ms->reg->guarded_remove(ms, &nothing, guard_check, &g), 0);
    assert_int_equal(pthread_join(g.writer, NULL), 0);
    assert_int_equal(g.stat_in_check, PC_ENOTFOUND); /* not written while the guard ran */
    assert_int_equal(g.link_rc, 0);                  /* then written */
    pc_digest d = dg("late layer");
    uint64_t size = 0;
    assert_int_equal(ms->reg->blob_stat(ms, "g/app", &d, &size), 0);
    assert_int_equal(size, 10);
    ms->free(ms);
    pc_test_pg_dropdb(db);
}

/* ---- the pool ---- */

typedef struct {
    pc_metastore *ms;
    int rc;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    bool *done;
} busy_arg;

static void *busy_thread(void *p)
{
    busy_arg *a = p;
    pc_digest d;
    a->rc = a->ms->reg->tag_get(a->ms, "p/app", "v1", &d);
    pthread_mutex_lock(a->lock);
    *a->done = true;
    pthread_cond_signal(a->cond);
    pthread_mutex_unlock(a->lock);
    return NULL;
}

/* The guard keeps the only connection until the other thread's call
 * has given up waiting for it. */
static int hold_check(pc_metastore *ms, void *ctx)
{
    (void)ms;
    busy_arg *a = ctx;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, busy_thread, a), 0);
    pthread_mutex_lock(a->lock);
    while (!*a->done)
        pthread_cond_wait(a->cond, a->lock);
    pthread_mutex_unlock(a->lock);
    assert_int_equal(pthread_join(t, NULL), 0);
    return 0;
}

typedef struct {
    pc_metastore *ms;
    int index, failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    char content[32];
    for (int i = 0; i < 30; i++) {
        snprintf(content, sizeof(content), "w%d-%d", w->index, i);
        pc_manifest_rec m = rec("p/app", content);
        pc_digest got;
        if (w->ms->reg->manifest_put(w->ms, &m, NULL, 0, content, NULL) != 0 ||
            w->ms->reg->tag_get(w->ms, "p/app", content, &got) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_pool(void **state)
{
    (void)state;
    char db[64], ci[1100];
    assert_int_equal(pc_test_pg_createdb(db, sizeof(db), ci, sizeof(ci), NULL), 0);
    pc_metastore *ms = NULL;
    /* a wait long enough for any turn on a loaded machine: this part is
     * about taking turns, not about the bound */
    pc_pg_opts o = {.conninfo = ci, .pool = 1, .wait_ms = 120000};
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);

    /* one connection, six threads: each waits its turn */
    pthread_t t[6];
    worker_arg w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (worker_arg){ms, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
             " AND application_name = 'pullcache'",
             db);
    assert_int_equal(pc_test_pg_int(NULL, sql), 1);

    ms->free(ms);

    /* the wait is bounded: all connections out for longer fails the call */
    o.wait_ms = 200;
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    bool done = false;
    busy_arg a = {ms, 99, &lock, &cond, &done};
    pc_meta_removal nothing = {PC_META_REMOVE_NOTHING, NULL, NULL};
    assert_int_equal(ms->reg->guarded_remove(ms, &nothing, hold_check, &a), 0);
    assert_int_equal(a.rc, PC_ERR);
    pc_digest got;
    assert_int_equal(ms->reg->tag_get(ms, "p/app", "w0-0", &got), 0);
    ms->free(ms);

    /* a pool too large is refused */
    o.pool = PC_PG_POOL_MAX + 1;
    assert_int_equal(pc_meta_pg_open(&ms, &o), PC_EINVAL);
    pc_test_pg_dropdb(db);
}

/* ---- the connection string, the password ---- */

/* base's connection string without user= (the password tests log in as
 * another role). */
static void with_user(char *out, size_t size, const char *db, const char *user,
                      const char *password)
{
    char host[256] = "", port[32] = "";
    PQconninfoOption *opts = PQconninfoParse(pc_test_pg_base(), NULL);
    assert_non_null(opts);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "host") == 0)
            snprintf(host, sizeof(host), "%s", o->val);
        if (o->val && strcmp(o->keyword, "port") == 0)
            snprintf(port, sizeof(port), "%s", o->val);
    }
    PQconninfoFree(opts);
    snprintf(out, size, "host=%s port=%s dbname=%s user=%s password=%s", host, port, db, user,
             password);
}

static void assert_no_password(const char *msg)
{
    assert_null(strstr(msg, PASSWORD));
    assert_null(strstr(msg, "Wr0ng-pw-99"));
}

static void test_password_never_shown(void **state)
{
    (void)state;
    char db[64], ci[1100], good[1100], bad[1100];
    pc_test_pg_sql(NULL, "DROP ROLE IF EXISTS pc_pw_user");
    pc_test_pg_sql(NULL, "DROP ROLE IF EXISTS pc_pw");
    assert_int_equal(pc_test_pg_sql(NULL, "CREATE ROLE pc_pw NOLOGIN"), 0);
    assert_int_equal(
        pc_test_pg_sql(NULL, "CREATE ROLE pc_pw_user LOGIN PASSWORD '" PASSWORD "' IN ROLE pc_pw"),
        0);
    assert_int_equal(pc_test_pg_createdb(db, sizeof(db), ci, sizeof(ci), "pc_pw_user"), 0);
    with_user(good, sizeof(good), db, "pc_pw_user", PASSWORD);
    with_user(bad, sizeof(bad), db, "pc_pw_user", "Wr0ng-pw-99");

    /* the wrong password: refused, the message names neither */
    pc_metastore *ms = NULL;
    pc_pg_opts o = {.conninfo = bad};
    assert_int_equal(pc_meta_pg_open(&ms, &o), PC_ERR);
    assert_non_null(strstr(pc_error_last(), "password authentication failed"));
    assert_no_password(pc_error_last());

    /* the right one; a server message quoting it (a duplicate key's
     * DETAIL) has it taken out */
    o.conninfo = good;
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    assert_int_equal(ms->reg->upload_put(ms, PASSWORD, "r/app"), 0);
    assert_int_equal(ms->reg->upload_put(ms, PASSWORD, "r/app"), PC_EEXISTS);
    assert_non_null(strstr(pc_error_last(), "***"));
    assert_no_password(pc_error_last());
    ms->free(ms);

    /* no server there: the message names the host, not the password */
    char off[1100];
    snprintf(off, sizeof(off), "host=127.0.0.1 port=1 dbname=x user=u password=" PASSWORD);
    o.conninfo = off;
    assert_int_equal(pc_meta_pg_open(&ms, &o), PC_ERR);
    assert_non_null(strstr(pc_error_last(), "127.0.0.1"));
    assert_no_password(pc_error_last());

    /* a string libpq cannot parse: its message (which quotes it) is not used */
    o.conninfo = "host=127.0.0.1 password='" PASSWORD;
    assert_int_equal(pc_meta_pg_open(&ms, &o), PC_EINVAL);
    assert_no_password(pc_error_last());
    pc_test_pg_dropdb(db);
    pc_test_pg_sql(NULL, "DROP ROLE IF EXISTS pc_pw_user");
    pc_test_pg_sql(NULL, "DROP ROLE IF EXISTS pc_pw");
}

static void test_conninfo_sources(void **state)
{
    (void)state;
    char db[64], ci[1100], path[] = "/tmp/pc-conninfo-XXXXXX";
    assert_int_equal(pc_test_pg_createdb(db, sizeof(db), ci, sizeof(ci), NULL), 0);
    pc_metastore *ms = NULL;

    /* a file: its first line */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%s\nignored\n", ci);
    fclose(f);
    pc_pg_opts o = {.conninfo_file = path};
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    assert_string_equal(ms->driver, "postgres");
    ms->free(ms);
    unlink(path);
    assert_int_equal(pc_meta_pg_open(&ms, &o), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), path));

    /* a named environment variable; unset, an error */
    setenv("PC_TEST_CI", ci, 1);
    o = (pc_pg_opts){.conninfo_env = "PC_TEST_CI"};
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    ms->free(ms);
    unsetenv("PC_TEST_CI");
    assert_int_equal(pc_meta_pg_open(&ms, &o), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "PC_TEST_CI"));

    /* nothing given: PULLCACHE_PG_CONNINFO */
    setenv(PC_PG_CONNINFO_ENV, ci, 1);
    o = (pc_pg_opts){0};
    assert_int_equal(pc_meta_pg_open(&ms, &o), 0);
    pc_manifest_rec m = rec("e/app", "m");
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 0, "v1", NULL), 0);
    ms->free(ms);
    unsetenv(PC_PG_CONNINFO_ENV);
    /* it was that database */
    assert_int_equal(pc_test_pg_int(db, "SELECT count(*) FROM tags"), 1);
    pc_test_pg_dropdb(db);
}

int main(void)
{
    if (!pc_test_pg_base()) {
        fprintf(stderr, "test_store_meta_pg: PC_TEST_PG_CONNINFO not set (run it through "
                        "tests/tools/pg_test.sh, ctest -R unit.store_meta_pg)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_once),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_guard_holds_writers),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_password_never_shown),
        cmocka_unit_test(test_conninfo_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
