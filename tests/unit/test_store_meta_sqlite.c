/*
 * test_store_meta_sqlite.c - unit tests of what only the SQLite meta
 * store (meta_sqlite.c) has: its database file in WAL mode, the schema
 * version it refuses when newer, the migration that adds the repos table.
 * Everything the interface promises runs on every backend in
 * test_store_meta.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/meta.h"
#include "meta_testutil.h"
#include "testutil.h"

typedef struct {
    char dir[64];
    char path[128];
    pc_metastore *ms;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_non_null(pc_test_tmpdir(f->dir, sizeof(f->dir), "metastore"));
    snprintf(f->path, sizeof(f->path), "%s/meta.db", f->dir);
    assert_int_equal(pc_meta_sqlite_open(&f->ms, f->path), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->ms)
        f->ms->free(f->ms);
    pc_test_rmtree(f->dir);
    free(f);
    return 0;
}

static void test_schema_version(void **state)
{
    fixture *f = *state;
    f->ms->free(f->ms);
    f->ms = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int(st, 0) >= 1);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* a database from a newer pullcache is refused, not damaged */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 9999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    pc_metastore *ms = NULL;
    assert_int_equal(pc_meta_sqlite_open(&ms, f->path), PC_ERR);
    assert_non_null(strstr(pc_error_last(), "newer"));
}

/* A version-3 database (no repos table, no leases or notes) gains them at
 * open, repos holding every repository with a manifest; a repository of
 * blobs alone gets no row. */
static void test_migration_repos(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest d = dg("layer");
    put_tagged(ms, "old/app", "m1", "v1");
    assert_int_equal(ms->reg->blob_link(ms, "old/blobs", &d, 5), 0);
    ms->free(ms);
    f->ms = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE repos; DROP TABLE leases; DROP TABLE notes;"
                                  " PRAGMA user_version = 3",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(pc_meta_sqlite_open(&f->ms, f->path), 0);
    ms = f->ms;
    assert_int_equal(ms->reg->repo_exists(ms, "old/app"), 0);
    assert_int_equal(ms->reg->repo_exists(ms, "old/blobs"), PC_ENOTFOUND);
    strings l = {0};
    assert_int_equal(ms->reg->catalog(ms, NULL, -1, strings_cb, &l), 0);
    const char *want[] = {"old/app", NULL};
    assert_strings(&l, want);
    assert_int_equal(ms->coord->lease_take(ms, "gc", "me", 1000, NULL), 0);
    assert_int_equal(ms->coord->note_put(ms, "n", "v"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_repos, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
