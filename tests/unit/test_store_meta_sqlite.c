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

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/meta.h"

typedef struct {
    char dir[64];
    char path[128];
    pc_metastore *ms;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pc-metastore-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
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
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static pc_digest dg(const char *s)
{
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, s, strlen(s)), 0);
    return d;
}

static pc_manifest_rec rec(const char *repo, const char *content)
{
    pc_manifest_rec m;
    memset(&m, 0, sizeof(m));
    snprintf(m.repo, sizeof(m.repo), "%s", repo);
    m.digest = dg(content);
    snprintf(m.media_type, sizeof(m.media_type), "application/vnd.oci.image.manifest.v1+json");
    m.size = strlen(content);
    return m;
}

/* A list of strings gathered from a listing callback. */
typedef struct {
    int n;
    char s[32][300];
    int stop_after;
} strings;

static int strings_cb(const char *s, void *ctx)
{
    strings *l = ctx;
    if (l->n < 32)
        snprintf(l->s[l->n], sizeof(l->s[0]), "%s", s);
    l->n++;
    return (l->stop_after && l->n >= l->stop_after) ? 5 : 0;
}

/* Assert that l holds exactly the NULL-terminated list want. */
static void assert_strings(const strings *l, const char *const *want)
{
    int n = 0;
    while (want[n])
        n++;
    assert_int_equal(l->n, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(l->s[i], want[i]);
}

static void put_tagged(pc_metastore *ms, const char *repo, const char *content, const char *tag)
{
    pc_manifest_rec m = rec(repo, content);
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 0, tag, NULL), 0);
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
