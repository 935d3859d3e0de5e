/*
 * test_store_meta_sqlite.c - unit tests of the SQLite meta store
 * (meta_sqlite.c): tags and catalog order and pagination, manifests
 * with their references and tags, referrers, holders across repositories,
 * upload sessions across restarts, schema versioning, use from threads,
 * the pull limiter's bucket rows.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

static void reopen(fixture *f)
{
    f->ms->free(f->ms);
    f->ms = NULL;
    assert_int_equal(pc_meta_sqlite_open(&f->ms, f->path), 0);
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

static void test_tag_order_and_pages(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    const char *tags[] = {"b", "a", "B", "latest", "1.0", "a0", "_x", "a-"};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        put_tagged(ms, "library/app", tags[i], tags[i]);
    put_tagged(ms, "library/other", "zzz", "zzz");

    strings l = {0};
    assert_int_equal(ms->reg->tag_list(ms, "library/app", NULL, -1, strings_cb, &l), 0);
    const char *all[] = {"1.0", "B", "_x", "a", "a-", "a0", "b", "latest", NULL};
    assert_strings(&l, all);

    strings p1 = {0}, p2 = {0}, p3 = {0};
    assert_int_equal(ms->reg->tag_list(ms, "library/app", NULL, 3, strings_cb, &p1), 0);
    const char *w1[] = {"1.0", "B", "_x", NULL};
    assert_strings(&p1, w1);
    assert_int_equal(ms->reg->tag_list(ms, "library/app", p1.s[2], 3, strings_cb, &p2), 0);
    const char *w2[] = {"a", "a-", "a0", NULL};
    assert_strings(&p2, w2);
    assert_int_equal(ms->reg->tag_list(ms, "library/app", p2.s[2], 3, strings_cb, &p3), 0);
    const char *w3[] = {"b", "latest", NULL};
    assert_strings(&p3, w3);

    /* `last` need not be a tag; limit 0 lists nothing */
    strings q = {0};
    assert_int_equal(ms->reg->tag_list(ms, "library/app", "a00", -1, strings_cb, &q), 0);
    const char *wq[] = {"b", "latest", NULL};
    assert_strings(&q, wq);
    strings z = {0};
    assert_int_equal(ms->reg->tag_list(ms, "library/app", NULL, 0, strings_cb, &z), 0);
    assert_int_equal(z.n, 0);
    assert_int_equal(ms->reg->tag_list(ms, "library/app", "zzz", 10, strings_cb, &z), 0);
    assert_int_equal(z.n, 0);

    strings stop = {.stop_after = 2};
    assert_int_equal(ms->reg->tag_list(ms, "library/app", NULL, -1, strings_cb, &stop), 5);
    assert_int_equal(stop.n, 2);

    /* moving a tag */
    pc_digest d;
    assert_int_equal(ms->reg->tag_get(ms, "library/app", "latest", &d), 0);
    pc_digest want = dg("latest");
    assert_true(pc_digest_equal(&d, &want));
    put_tagged(ms, "library/app", "b", "latest");
    assert_int_equal(ms->reg->tag_get(ms, "library/app", "latest", &d), 0);
    want = dg("b");
    assert_true(pc_digest_equal(&d, &want));
    assert_int_equal(ms->reg->tag_get(ms, "library/app", "nope", &d), PC_ENOTFOUND);
    assert_int_equal(ms->reg->tag_get(ms, "library/none", "latest", &d), PC_ENOTFOUND);

    /* deleting a tag keeps the manifest */
    assert_int_equal(ms->reg->tag_delete(ms, "library/app", "a0"), 0);
    assert_int_equal(ms->reg->tag_delete(ms, "library/app", "a0"), PC_ENOTFOUND);
    pc_manifest_rec m;
    want = dg("a0");
    assert_int_equal(ms->reg->manifest_get(ms, "library/app", &want, &m), 0);
}

static void test_tag_list_unknown_repo(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    strings l = {0};
    assert_int_equal(ms->reg->tag_list(ms, "nobody/here", NULL, -1, strings_cb, &l), PC_ENOTFOUND);
    assert_int_equal(ms->reg->repo_exists(ms, "nobody/here"), PC_ENOTFOUND);

    /* a blob link alone makes no repository (a failed push creates nothing) */
    pc_digest d = dg("layer");
    assert_int_equal(ms->reg->blob_link(ms, "only/blobs", &d, 5), 0);
    assert_int_equal(ms->reg->repo_exists(ms, "only/blobs"), PC_ENOTFOUND);
    assert_int_equal(ms->reg->tag_list(ms, "only/blobs", NULL, -1, strings_cb, &l), PC_ENOTFOUND);
    /* an untagged manifest does: no tags, but no error */
    put_tagged(ms, "only/blobs", "m", NULL);
    assert_int_equal(ms->reg->repo_exists(ms, "only/blobs"), 0);
    assert_int_equal(ms->reg->tag_list(ms, "only/blobs", NULL, -1, strings_cb, &l), 0);
    assert_int_equal(l.n, 0);
}

static void test_catalog(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest d = dg("x");
    strings l = {0};
    assert_int_equal(ms->reg->catalog(ms, NULL, -1, strings_cb, &l), 0);
    assert_int_equal(l.n, 0);

    /* blobs alone (say, of a push whose manifest failed) make no repository */
    assert_int_equal(ms->reg->blob_link(ms, "z/blobs-only", &d, 1), 0);
    assert_int_equal(ms->reg->blob_link(ms, "a", &d, 1), 0);
    put_tagged(ms, "a", "m1", "v1"); /* in blob_links, manifests and tags */
    put_tagged(ms, "b/x", "m2", NULL);
    put_tagged(ms, "a/b", "m3", "v1");
    put_tagged(ms, "a-b", "m4", NULL);
    put_tagged(ms, "c", "m5", "t");
    put_tagged(ms, "c", "m6", "u");

    assert_int_equal(ms->reg->catalog(ms, NULL, -1, strings_cb, &l), 0);
    const char *all[] = {"a", "a-b", "a/b", "b/x", "c", NULL};
    assert_strings(&l, all);

    strings p1 = {0}, p2 = {0}, p3 = {0};
    assert_int_equal(ms->reg->catalog(ms, NULL, 2, strings_cb, &p1), 0);
    const char *w1[] = {"a", "a-b", NULL};
    assert_strings(&p1, w1);
    assert_int_equal(ms->reg->catalog(ms, "a-b", 2, strings_cb, &p2), 0);
    const char *w2[] = {"a/b", "b/x", NULL};
    assert_strings(&p2, w2);
    assert_int_equal(ms->reg->catalog(ms, "b/x", 2, strings_cb, &p3), 0);
    const char *w3[] = {"c", NULL};
    assert_strings(&p3, w3);

    strings stop = {.stop_after = 1};
    assert_int_equal(ms->reg->catalog(ms, NULL, -1, strings_cb, &stop), 5);
}

static void test_blob_links(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest d = dg("blob");
    uint64_t size = 0;
    assert_int_equal(ms->reg->blob_stat(ms, "r", &d, &size), PC_ENOTFOUND);
    assert_int_equal(ms->reg->blob_stat_any(ms, &d, &size), PC_ENOTFOUND);
    assert_int_equal(ms->reg->blob_link(ms, "r", &d, 42), 0);
    assert_int_equal(ms->reg->blob_link(ms, "r", &d, 42), 0);
    assert_int_equal(ms->reg->blob_stat(ms, "r", &d, &size), 0);
    assert_int_equal(size, 42);
    assert_int_equal(ms->reg->blob_stat(ms, "s", &d, &size), PC_ENOTFOUND);
    size = 0;
    assert_int_equal(ms->reg->blob_stat_any(ms, &d, &size), 0);
    assert_int_equal(size, 42);
    assert_int_equal(ms->reg->blob_unlink(ms, "r", &d), 0);
    assert_int_equal(ms->reg->blob_unlink(ms, "r", &d), PC_ENOTFOUND);
    assert_int_equal(ms->reg->blob_stat_any(ms, &d, &size), PC_ENOTFOUND);
}

static void test_manifest_put_get_delete(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_manifest_rec m = rec("org/app", "manifest one");
    snprintf(m.artifact_type, sizeof(m.artifact_type), "application/vnd.example+type");
    m.has_subject = true;
    m.subject = dg("subject");
    pc_manifest_ref refs[] = {{dg("config"), false}, {dg("layer"), false}, {dg("layer"), false}};
    assert_int_equal(ms->reg->manifest_put(ms, &m, refs, 3, "v1", NULL), 0);

    pc_manifest_rec got;
    assert_int_equal(ms->reg->manifest_get(ms, "org/app", &m.digest, &got), 0);
    assert_string_equal(got.repo, "org/app");
    assert_true(pc_digest_equal(&got.digest, &m.digest));
    assert_string_equal(got.media_type, m.media_type);
    assert_int_equal(got.size, m.size);
    assert_string_equal(got.artifact_type, "application/vnd.example+type");
    assert_true(got.has_subject);
    assert_true(pc_digest_equal(&got.subject, &m.subject));
    assert_int_equal(ms->reg->manifest_get(ms, "org/other", &m.digest, &got), PC_ENOTFOUND);

    /* putting it again replaces the record and its references; tags stay */
    pc_manifest_rec m2 = m;
    snprintf(m2.media_type, sizeof(m2.media_type), "application/vnd.docker.v2+json");
    m2.artifact_type[0] = '\0';
    m2.has_subject = false;
    pc_manifest_ref refs2[] = {{dg("config"), false}};
    assert_int_equal(ms->reg->manifest_put(ms, &m2, refs2, 1, "v1-again", NULL), 0);
    assert_int_equal(ms->reg->manifest_get(ms, "org/app", &m.digest, &got), 0);
    assert_string_equal(got.media_type, "application/vnd.docker.v2+json");
    assert_string_equal(got.artifact_type, "");
    assert_false(got.has_subject);
    uint64_t holders = 99;
    pc_digest layer = dg("layer");
    assert_int_equal(ms->reg->digest_holders(ms, &layer, &holders), 0);
    assert_int_equal(holders, 0);
    pc_digest d;
    assert_int_equal(ms->reg->tag_get(ms, "org/app", "v1", &d), 0);
    assert_int_equal(ms->reg->tag_get(ms, "org/app", "v1-again", &d), 0);
    assert_true(pc_digest_equal(&d, &m.digest));

    /* another manifest with its own tag survives the delete */
    put_tagged(ms, "org/app", "manifest two", "v2");
    assert_int_equal(ms->reg->manifest_delete(ms, "org/app", &m.digest), 0);
    assert_int_equal(ms->reg->manifest_get(ms, "org/app", &m.digest, &got), PC_ENOTFOUND);
    assert_int_equal(ms->reg->tag_get(ms, "org/app", "v1", &d), PC_ENOTFOUND);
    assert_int_equal(ms->reg->tag_get(ms, "org/app", "v1-again", &d), PC_ENOTFOUND);
    assert_int_equal(ms->reg->tag_get(ms, "org/app", "v2", &d), 0);
    strings l = {0};
    assert_int_equal(ms->reg->tag_list(ms, "org/app", NULL, -1, strings_cb, &l), 0);
    const char *want[] = {"v2", NULL};
    assert_strings(&l, want);
    pc_digest config = dg("config");
    assert_int_equal(ms->reg->digest_holders(ms, &config, &holders), 0);
    assert_int_equal(holders, 0);
    assert_int_equal(ms->reg->manifest_delete(ms, "org/app", &m.digest), PC_ENOTFOUND);

    /* bad input is refused */
    pc_manifest_rec bad = rec("", "x");
    assert_int_equal(ms->reg->manifest_put(ms, &bad, NULL, 0, NULL, NULL), PC_EINVAL);
    bad = rec("ok", "x");
    assert_int_equal(ms->reg->manifest_put(ms, &bad, NULL, 0, "", NULL), PC_EINVAL);
}

typedef struct {
    int n;
    pc_manifest_rec recs[8];
} rec_list;

static int rec_cb(const pc_manifest_rec *m, void *ctx)
{
    rec_list *l = ctx;
    if (l->n < 8)
        l->recs[l->n] = *m;
    l->n++;
    return 0;
}

static void test_referrers(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest s = dg("the image");
    pc_digest t = dg("another image");
    const char *names[] = {"sig", "sbom", "other", "elsewhere", "plain"};
    pc_manifest_rec ms_[5];
    for (int i = 0; i < 5; i++) {
        ms_[i] = rec(i == 3 ? "repo/b" : "repo/a", names[i]);
        ms_[i].has_subject = i != 4;
        ms_[i].subject = i == 2 ? t : s;
        snprintf(ms_[i].artifact_type, sizeof(ms_[i].artifact_type), "type/%s", names[i]);
        assert_int_equal(ms->reg->manifest_put(ms, &ms_[i], NULL, 0, NULL, NULL), 0);
    }
    rec_list l = {0};
    assert_int_equal(ms->reg->referrers(ms, "repo/a", &s, rec_cb, &l), 0);
    assert_int_equal(l.n, 2);
    /* digest order */
    assert_true(strcmp(l.recs[0].digest.str, l.recs[1].digest.str) < 0);
    for (int i = 0; i < 2; i++) {
        assert_true(l.recs[i].has_subject);
        assert_true(pc_digest_equal(&l.recs[i].subject, &s));
        assert_string_equal(l.recs[i].repo, "repo/a");
        bool sig = pc_digest_equal(&l.recs[i].digest, &ms_[0].digest);
        bool sbom = pc_digest_equal(&l.recs[i].digest, &ms_[1].digest);
        assert_true(sig || sbom);
        assert_string_equal(l.recs[i].artifact_type, sig ? "type/sig" : "type/sbom");
    }
    rec_list none = {0};
    pc_digest u = dg("unknown");
    assert_int_equal(ms->reg->referrers(ms, "repo/a", &u, rec_cb, &none), 0);
    assert_int_equal(none.n, 0);
    rec_list b = {0};
    assert_int_equal(ms->reg->referrers(ms, "repo/b", &s, rec_cb, &b), 0);
    assert_int_equal(b.n, 1);
}

typedef struct {
    int n;
    pc_digest d[32];
} digest_list;

static int digest_cb(const pc_digest *d, void *ctx)
{
    digest_list *l = ctx;
    if (l->n < 32)
        l->d[l->n] = *d;
    l->n++;
    return 0;
}

static bool has_digest(const digest_list *l, const pc_digest *d)
{
    for (int i = 0; i < l->n && i < 32; i++)
        if (pc_digest_equal(&l->d[i], d))
            return true;
    return false;
}

static void test_holders_across_repos(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest config = dg("config"), layer = dg("layer"), lonely = dg("lonely");
    pc_manifest_ref refs[] = {{config, false}, {layer, false}};
    /* the same manifest pushed to two repositories */
    pc_manifest_rec a = rec("team/a", "manifest");
    pc_manifest_rec b = rec("team/b", "manifest");
    const char *repos[] = {"team/a", "team/b"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ms->reg->blob_link(ms, repos[i], &config, 6), 0);
        assert_int_equal(ms->reg->blob_link(ms, repos[i], &layer, 5), 0);
    }
    assert_int_equal(ms->reg->manifest_put(ms, &a, refs, 2, "latest", NULL), 0);
    assert_int_equal(ms->reg->manifest_put(ms, &b, refs, 2, "latest", NULL), 0);
    assert_int_equal(ms->reg->blob_link(ms, "team/c", &lonely, 1), 0);

    uint64_t n = 0;
    assert_int_equal(ms->reg->digest_holders(ms, &layer, &n), 0);
    assert_int_equal(n, 4); /* two links, two references */
    assert_int_equal(ms->reg->digest_holders(ms, &a.digest, &n), 0);
    assert_int_equal(n, 2);
    pc_digest nothing = dg("nothing");
    assert_int_equal(ms->reg->digest_holders(ms, &nothing, &n), 0);
    assert_int_equal(n, 0);

    digest_list l = {0};
    assert_int_equal(ms->reg->referenced_foreach(ms, digest_cb, &l), 0);
    assert_true(has_digest(&l, &config));
    assert_true(has_digest(&l, &layer));
    assert_true(has_digest(&l, &lonely));
    assert_true(has_digest(&l, &a.digest));
    assert_false(has_digest(&l, &nothing));

    /* deleting repository A's manifest leaves B's untouched */
    assert_int_equal(ms->reg->manifest_delete(ms, "team/a", &a.digest), 0);
    assert_int_equal(ms->reg->digest_holders(ms, &layer, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ms->reg->digest_holders(ms, &a.digest, &n), 0);
    assert_int_equal(n, 1);
    pc_manifest_rec got;
    assert_int_equal(ms->reg->manifest_get(ms, "team/b", &b.digest, &got), 0);
    pc_digest d;
    assert_int_equal(ms->reg->tag_get(ms, "team/b", "latest", &d), 0);
    assert_int_equal(ms->reg->tag_get(ms, "team/a", "latest", &d), PC_ENOTFOUND);
    assert_int_equal(ms->reg->blob_unlink(ms, "team/a", &layer), 0);
    assert_int_equal(ms->reg->digest_holders(ms, &layer, &n), 0);
    assert_int_equal(n, 2);
    /* team/a, its last manifest gone, is still a repository (empty tag list) */
    assert_int_equal(ms->reg->repo_exists(ms, "team/a"), 0);
}

static void test_uploads_persist(void **state)
{
    fixture *f = *state;
    char repo[PC_NAME_MAX + 1];
    assert_int_equal(f->ms->reg->upload_put(f->ms, "u-1", "library/app"), 0);
    assert_int_equal(f->ms->reg->upload_put(f->ms, "u-2", "other"), 0);
    assert_int_equal(f->ms->reg->upload_put(f->ms, "u-1", "library/app"), PC_EEXISTS);
    assert_int_equal(f->ms->reg->upload_put(f->ms, "../x", "library/app"), PC_EINVAL);
    reopen(f);
    pc_metastore *ms = f->ms;
    assert_int_equal(ms->reg->upload_get(ms, "u-1", repo), 0);
    assert_string_equal(repo, "library/app");
    assert_int_equal(ms->reg->upload_get(ms, "u-2", repo), 0);
    assert_string_equal(repo, "other");
    assert_int_equal(ms->reg->upload_delete(ms, "u-1"), 0);
    assert_int_equal(ms->reg->upload_get(ms, "u-1", repo), PC_ENOTFOUND);
    assert_int_equal(ms->reg->upload_delete(ms, "u-1"), PC_ENOTFOUND);
    /* uploads do not make a repository known */
    assert_int_equal(ms->reg->repo_exists(ms, "other"), PC_ENOTFOUND);
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

/* A version-3 database (no repos table) gains one at open, holding every
 * repository with a manifest; a repository of blobs alone gets no row. */
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
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE repos; PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(pc_meta_sqlite_open(&f->ms, f->path), 0);
    ms = f->ms;
    assert_int_equal(ms->reg->repo_exists(ms, "old/app"), 0);
    assert_int_equal(ms->reg->repo_exists(ms, "old/blobs"), PC_ENOTFOUND);
    strings l = {0};
    assert_int_equal(ms->reg->catalog(ms, NULL, -1, strings_cb, &l), 0);
    const char *want[] = {"old/app", NULL};
    assert_strings(&l, want);
}

typedef struct {
    pc_metastore *ms;
    int index;
    int failures;
} thread_arg;

static void *meta_thread(void *p)
{
    thread_arg *a = p;
    pc_metastore *ms = a->ms;
    char repo[64], content[64], tag[32];
    snprintf(repo, sizeof(repo), "thread/%d", a->index);
    for (int i = 0; i < 100; i++) {
        snprintf(content, sizeof(content), "m-%d-%d", a->index, i);
        snprintf(tag, sizeof(tag), "t%d", i % 10);
        pc_manifest_rec m;
        memset(&m, 0, sizeof(m));
        snprintf(m.repo, sizeof(m.repo), "%s", i % 2 ? repo : "shared");
        pc_digest_buffer(&m.digest, PC_DIGEST_SHA256, content, strlen(content));
        snprintf(m.media_type, sizeof(m.media_type), "application/json");
        m.size = (uint64_t)i;
        pc_manifest_ref ref = {m.digest, false};
        pc_digest got;
        pc_manifest_rec back;
        if (ms->reg->blob_link(ms, m.repo, &m.digest, 1) != 0 ||
            ms->reg->manifest_put(ms, &m, &ref, 1, tag, NULL) != 0 ||
            ms->reg->tag_get(ms, m.repo, tag, &got) != 0 ||
            ms->reg->manifest_get(ms, m.repo, &m.digest, &back) != 0 || back.size != m.size)
            a->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){.ms = f->ms, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, meta_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].failures, 0);
    }
    strings l = {0};
    assert_int_equal(f->ms->reg->tag_list(f->ms, "shared", NULL, -1, strings_cb, &l), 0);
    assert_int_equal(l.n, 5); /* even i only: t0 t2 t4 t6 t8 */
    strings c = {0};
    assert_int_equal(f->ms->reg->catalog(f->ms, NULL, -1, strings_cb, &c), 0);
    assert_int_equal(c.n, 5);
}

/* The limiter rows gathered by limit_load, as "key@bucket=count/expires". */
typedef struct {
    int n;
    char s[8][96];
} limit_rows;

static int limit_cb(const pc_meta_limit_row *r, void *ctx)
{
    limit_rows *l = ctx;
    assert_true(l->n < 8);
    snprintf(l->s[l->n++], sizeof(l->s[0]), "%s@%lld=%llu/%lld", r->key, (long long)r->bucket,
             (unsigned long long)r->count, (long long)r->expires);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static limit_rows load_limits(pc_metastore *ms, int64_t now)
{
    limit_rows l = {0};
    assert_int_equal(ms->limits->limit_load(ms, now, limit_cb, &l), 0);
    qsort(l.s, (size_t)l.n, sizeof(l.s[0]), cmp_str);
    return l;
}

/* ref_holder: a manifest of the repository that references the blob as a
 * config or layer (not as an index child), for the fetch size bound. */
static void test_ref_holder(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_manifest_rec m = rec("org/app", "image");
    pc_manifest_ref refs[] = {{dg("config"), false}, {dg("layer"), false}, {dg("child"), true}};
    assert_int_equal(ms->reg->manifest_put(ms, &m, refs, 3, "v1", NULL), 0);
    pc_digest got, layer = dg("layer"), child = dg("child"), other = dg("other");
    assert_int_equal(ms->reg->ref_holder(ms, "org/app", &layer, &got), 0);
    assert_true(pc_digest_equal(&got, &m.digest));
    assert_int_equal(ms->reg->ref_holder(ms, "org/app", &child, &got), PC_ENOTFOUND);
    assert_int_equal(ms->reg->ref_holder(ms, "org/app", &other, &got), PC_ENOTFOUND);
    assert_int_equal(ms->reg->ref_holder(ms, "org/else", &layer, &got), PC_ENOTFOUND);
    assert_int_equal(ms->reg->manifest_delete(ms, "org/app", &m.digest), 0);
    assert_int_equal(ms->reg->ref_holder(ms, "org/app", &layer, &got), PC_ENOTFOUND);
}

static void test_limit_rows(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_meta_limit_row rows[] = {
        {"10.0.0.1", 960, 4, 4560},
        {"10.0.0.1", 1020, 1, 4620},
        {"user:bob", 960, 2, 1000},
    };
    assert_int_equal(ms->limits->limit_save(ms, rows, 3, 500, false), 0);
    limit_rows l = load_limits(ms, 999);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.s[0], "10.0.0.1@1020=1/4620");
    assert_string_equal(l.s[1], "10.0.0.1@960=4/4560");
    assert_string_equal(l.s[2], "user:bob@960=2/1000");
    /* loading skips what expired; a row replaces its bucket's count */
    rows[0].count = 5;
    assert_int_equal(ms->limits->limit_save(ms, rows, 1, 500, false), 0);
    l = load_limits(ms, 1000);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.s[1], "10.0.0.1@960=5/4560");
    /* survives a reopen; saving drops expired rows */
    reopen(f);
    ms = f->ms;
    assert_int_equal(load_limits(ms, 0).n, 3);
    assert_int_equal(ms->limits->limit_save(ms, NULL, 0, 1000, false), 0);
    assert_int_equal(load_limits(ms, 0).n, 2);
    /* replace: every stored row goes, the given ones stay */
    assert_int_equal(ms->limits->limit_save(ms, &rows[2], 1, 0, true), 0);
    l = load_limits(ms, 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.s[0], "user:bob@960=2/1000");
    /* bad rows change nothing */
    pc_meta_limit_row bad = {"", 0, 1, 10};
    assert_int_equal(ms->limits->limit_save(ms, &bad, 1, 0, true), PC_EINVAL);
    assert_int_equal(load_limits(ms, 0).n, 1);
}

/* Not a pass/fail test: how long a manifest GET by tag costs the store. */
static void test_lookup_speed(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    put_tagged(ms, "library/nginx", "the manifest", "latest");
    enum { N = 20000 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        pc_digest d;
        pc_manifest_rec m;
        assert_int_equal(ms->reg->tag_get(ms, "library/nginx", "latest", &d), 0);
        assert_int_equal(ms->reg->manifest_get(ms, "library/nginx", &d, &m), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / N;
    print_message("tag_get + manifest_get: %.2f us\n", us);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tag_order_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_list_unknown_repo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_referrers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ref_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holders_across_repos, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uploads_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_repos, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_speed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
