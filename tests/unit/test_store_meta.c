/*
 * test_store_meta.c - the one backend test suite of the meta store
 * interface (store/meta.h): every case runs against every backend in
 * `kinds` (sqlite on a temporary file, mem), one cmocka group per
 * backend (postgres when PC_TEST_PG_CONNINFO names a server:
 * tests/tools/pg_test.sh, ctest's unit.store_meta_pg; PC_TEST_META_BACKENDS,
 * a comma-separated list, picks backends). Tags and catalog order and paging, manifests with their
 * references and tags, referrers, holders across repositories, upload
 * sessions, tag compare-and-swap (from many threads too), tag freshness,
 * access records and eviction, the pull limiter's rows, fsck's listings
 * and guarded removals, input checks and pc_meta_check. A new backend
 * is one more row. SQLite's own (files, schema versions, migrations) are
 * in test_store_meta_sqlite.c, PostgreSQL's in test_store_meta_pg.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/meta.h"
#include "store/meta_pg.h"
#include "pg_testutil.h"
#include "meta_testutil.h"
#include "testutil.h"

/* ---- the backends under test ---- */

typedef struct kind kind;
typedef struct {
    const kind *k;
    char dir[64];
    char path[128];
    char db[64];   /* postgres: the fixture's own database */
    char ci[1100]; /* and its connection string */
    pc_metastore *ms;
} fixture;

struct kind {
    const char *name;
    int (*open)(fixture *f);
    bool durable; /* keeps its data when freed and opened again */
};

static int sqlite_open(fixture *f)
{
    if (!f->dir[0]) {
        if (!pc_test_tmpdir(f->dir, sizeof(f->dir), "storemeta"))
            return PC_ERR;
        snprintf(f->path, sizeof(f->path), "%s/meta.db", f->dir);
    }
    return pc_meta_sqlite_open(&f->ms, f->path);
}

static int mem_open(fixture *f)
{
    return pc_meta_mem_open(&f->ms);
}

/* A fresh database per case, dropped by teardown. */
static int pg_open(fixture *f)
{
    if (!pc_test_pg_base())
        return PC_ERR;
    if (!f->db[0] && pc_test_pg_createdb(f->db, sizeof(f->db), f->ci, sizeof(f->ci), NULL) != 0)
        return PC_ERR;
    pc_pg_opts o = {.conninfo = f->ci};
    return pc_meta_pg_open(&f->ms, &o);
}

static const kind kinds[] = {
    {"sqlite", sqlite_open, true},
    {"mem", mem_open, false},
    {"postgres", pg_open, true},
};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->k = *state;
    assert_int_equal(f->k->open(f), 0);
    assert_int_equal(pc_meta_check(f->ms), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->ms)
        f->ms->free(f->ms);
    if (f->dir[0])
        pc_test_rmtree(f->dir);
    if (f->db[0])
        pc_test_pg_dropdb(f->db);
    free(f);
    return 0;
}

/* A restart: a durable backend freed and opened again on the same file.
 * A memory store keeps running (freeing it would lose everything), so the
 * assertions after a restart hold for both. */
static void reopen(fixture *f)
{
    if (!f->k->durable)
        return;
    f->ms->free(f->ms);
    f->ms = NULL;
    assert_int_equal(f->k->open(f), 0);
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
    uint64_t held = 0; /* a reference listed twice is stored once */
    pc_digest layer0 = dg("layer");
    assert_int_equal(ms->reg->digest_holders(ms, &layer0, &held), 0);
    assert_int_equal(held, 1);

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

/* limit_take: the shared count of one key's window; refused at max with
 * the oldest bucket; a look counts nothing; buckets before `first` are
 * out of the window; racing takers never both get the last pull. */
#define TAKERS 8
#define TAKES 25
#define TAKE_MAX 60

typedef struct {
    pc_metastore *ms;
    atomic_int *allowed, *failed;
} taker;

static void *take_many(void *p)
{
    taker *t = p;
    for (int i = 0; i < TAKES; i++) {
        pc_meta_limit_take r;
        if (t->ms->limits->limit_take(t->ms, "10.0.0.9", 100, 91, 200000, TAKE_MAX, true, &r) != 0)
            atomic_fetch_add(t->failed, 1);
        else if (r.allowed)
            atomic_fetch_add(t->allowed, 1);
    }
    return NULL;
}

static void test_limit_take(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    const pc_meta_limit_ops *L = ms->limits;
    pc_meta_limit_take r;

    /* an unknown key: nothing counted, allowed */
    assert_int_equal(L->limit_take(ms, "1.2.3.4", 10, 1, 1000, 3, false, &r), 0);
    assert_true(r.allowed);
    assert_int_equal(r.total, 0);
    /* three pulls in two buckets, then refused with the oldest bucket */
    assert_int_equal(L->limit_take(ms, "1.2.3.4", 9, 1, 1000, 3, true, &r), 0);
    assert_true(r.allowed);
    assert_int_equal(r.total, 1);
    assert_int_equal(L->limit_take(ms, "1.2.3.4", 10, 1, 1000, 3, true, &r), 0);
    assert_int_equal(L->limit_take(ms, "1.2.3.4", 10, 1, 1000, 3, true, &r), 0);
    assert_true(r.allowed);
    assert_int_equal(r.total, 3);
    assert_int_equal(L->limit_take(ms, "1.2.3.4", 10, 1, 1000, 3, true, &r), 0);
    assert_false(r.allowed);
    assert_int_equal(r.total, 3);
    assert_int_equal(r.oldest, 9);
    /* a look at a spent budget: not allowed, nothing changed */
    assert_int_equal(L->limit_take(ms, "1.2.3.4", 10, 1, 1000, 3, false, &r), 0);
    assert_false(r.allowed);
    assert_int_equal(r.total, 3);
    /* the window moves past bucket 9: one pull fits again */
    assert_int_equal(L->limit_take(ms, "1.2.3.4", 11, 10, 1000, 3, true, &r), 0);
    assert_true(r.allowed);
    assert_int_equal(r.total, 3);
    /* another key has its own count; the pulls are rows limit_load sees */
    assert_int_equal(L->limit_take(ms, "user:ann", 10, 1, 1000, 3, true, &r), 0);
    assert_int_equal(r.total, 1);
    limit_rows l = {0};
    assert_int_equal(L->limit_load(ms, 0, limit_cb, &l), 0);
    qsort(l.s, (size_t)l.n, sizeof(l.s[0]), cmp_str);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.s[0], "1.2.3.4@10=2/1000");
    assert_string_equal(l.s[1], "1.2.3.4@11=1/1000");
    assert_string_equal(l.s[2], "1.2.3.4@9=1/1000");
    assert_string_equal(l.s[3], "user:ann@10=1/1000");
    /* bad input */
    assert_int_equal(L->limit_take(ms, "", 10, 1, 1000, 3, true, &r), PC_EINVAL);
    assert_int_equal(L->limit_take(ms, NULL, 10, 1, 1000, 3, true, &r), PC_EINVAL);
    assert_int_equal(L->limit_take(ms, "k", 1, 5, 1000, 3, true, &r), PC_EINVAL);

    /* racing takers: exactly TAKE_MAX of TAKERS * TAKES allowed */
    atomic_int allowed, failed;
    atomic_init(&allowed, 0);
    atomic_init(&failed, 0);
    pthread_t th[TAKERS];
    taker t = {ms, &allowed, &failed};
    for (int i = 0; i < TAKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, take_many, &t), 0);
    for (int i = 0; i < TAKERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&failed), 0);
    assert_int_equal(atomic_load(&allowed), TAKE_MAX);
    assert_int_equal(L->limit_take(ms, "10.0.0.9", 100, 91, 200000, TAKE_MAX, false, &r), 0);
    assert_int_equal(r.total, TAKE_MAX);
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

/* A link of a blob in two repositories: one unlink leaves it held. */
static void test_blob_link_refcount(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest d = dg("shared layer");
    uint64_t size = 0, n = 0;
    assert_int_equal(ms->reg->blob_link(ms, "a/one", &d, 10), 0);
    /* linking again changes nothing, not even the size */
    assert_int_equal(ms->reg->blob_link(ms, "a/one", &d, 11), 0);
    assert_int_equal(ms->reg->blob_stat(ms, "a/one", &d, &size), 0);
    assert_int_equal(size, 10);
    assert_int_equal(ms->reg->blob_stat(ms, "a/one", &d, NULL), 0);
    assert_int_equal(ms->reg->blob_link(ms, "b/two", &d, 10), 0);
    assert_int_equal(ms->reg->digest_holders(ms, &d, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ms->reg->blob_unlink(ms, "a/one", &d), 0);
    assert_int_equal(ms->reg->digest_holders(ms, &d, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ms->reg->blob_stat(ms, "a/one", &d, &size), PC_ENOTFOUND);
    assert_int_equal(ms->reg->blob_stat_any(ms, &d, &size), 0);
    assert_int_equal(ms->reg->blob_stat(ms, "b/two", &d, &size), 0);
    assert_int_equal(ms->reg->blob_unlink(ms, "b/two", &d), 0);
    assert_int_equal(ms->reg->digest_holders(ms, &d, &n), 0);
    assert_int_equal(n, 0);
}

/* ---- tag compare-and-swap ---- */

static void test_tag_cas(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_manifest_rec a = rec("cas/app", "manifest a"), b = rec("cas/app", "manifest b");
    pc_manifest_rec c = rec("cas/app", "manifest c");
    pc_manifest_ref ref = {dg("c's layer"), false};
    pc_digest none = {0}, got;
    uint64_t n = 9;

    /* expect "": the tag must not exist */
    assert_int_equal(ms->reg->manifest_put(ms, &a, NULL, 0, "latest", &none), 0);
    assert_int_equal(ms->reg->tag_get(ms, "cas/app", "latest", &got), 0);
    assert_true(pc_digest_equal(&got, &a.digest));
    assert_int_equal(ms->reg->manifest_put(ms, &b, NULL, 0, "latest", &none), PC_ECONFLICT);
    pc_manifest_rec out;
    assert_int_equal(ms->reg->tag_get(ms, "cas/app", "latest", &got), 0);
    assert_true(pc_digest_equal(&got, &a.digest));
    assert_int_equal(ms->reg->manifest_get(ms, "cas/app", &b.digest, &out), PC_ENOTFOUND);

    /* expect matches: the tag moves */
    assert_int_equal(ms->reg->manifest_put(ms, &b, NULL, 0, "latest", &a.digest), 0);
    assert_int_equal(ms->reg->tag_get(ms, "cas/app", "latest", &got), 0);
    assert_true(pc_digest_equal(&got, &b.digest));

    /* expect does not match: nothing is stored, not the manifest, not its
     * references, and the tag stays */
    assert_int_equal(ms->reg->manifest_put(ms, &c, &ref, 1, "latest", &a.digest), PC_ECONFLICT);
    assert_int_equal(ms->reg->tag_get(ms, "cas/app", "latest", &got), 0);
    assert_true(pc_digest_equal(&got, &b.digest));
    assert_int_equal(ms->reg->manifest_get(ms, "cas/app", &c.digest, &out), PC_ENOTFOUND);
    assert_int_equal(ms->reg->digest_holders(ms, &ref.digest, &n), 0);
    assert_int_equal(n, 0);
    /* nor does a conflict in a new repository make it exist */
    pc_manifest_rec d = rec("cas/new", "manifest d");
    assert_int_equal(ms->reg->manifest_put(ms, &d, NULL, 0, "v1", &a.digest), PC_ECONFLICT);
    assert_int_equal(ms->reg->repo_exists(ms, "cas/new"), PC_ENOTFOUND);

    /* expecting a digest of a tag that does not exist conflicts */
    assert_int_equal(ms->reg->manifest_put(ms, &c, NULL, 0, "other", &b.digest), PC_ECONFLICT);
    assert_int_equal(ms->reg->tag_get(ms, "cas/app", "other", &got), PC_ENOTFOUND);

    /* expect NULL sets the tag whatever it was */
    assert_int_equal(ms->reg->manifest_put(ms, &c, &ref, 1, "latest", NULL), 0);
    assert_int_equal(ms->reg->tag_get(ms, "cas/app", "latest", &got), 0);
    assert_true(pc_digest_equal(&got, &c.digest));
    assert_int_equal(ms->reg->digest_holders(ms, &ref.digest, &n), 0);
    assert_int_equal(n, 1);
    /* no tag: expect is not looked at */
    assert_int_equal(ms->reg->manifest_put(ms, &a, NULL, 0, NULL, &b.digest), 0);
}

enum { CAS_THREADS = 8 };

typedef struct {
    pc_metastore *ms;
    pthread_barrier_t *go;
    pc_manifest_rec m;
    pc_digest old;
    int rc;
} cas_arg;

static void *cas_thread(void *p)
{
    cas_arg *a = p;
    pthread_barrier_wait(a->go);
    a->rc = a->ms->reg->manifest_put(a->ms, &a->m, NULL, 0, "latest", &a->old);
    return NULL;
}

/* N threads move the same tag from the same old digest, each to its own
 * manifest: one wins, the others conflict, the tag is the winner's. */
static void test_tag_cas_threads(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_manifest_rec old = rec("race/app", "old");
    assert_int_equal(ms->reg->manifest_put(ms, &old, NULL, 0, "latest", NULL), 0);
    pthread_barrier_t go;
    assert_int_equal(pthread_barrier_init(&go, NULL, CAS_THREADS), 0);
    pthread_t t[CAS_THREADS];
    cas_arg a[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++) {
        char content[32];
        snprintf(content, sizeof(content), "new %d", i);
        a[i] = (cas_arg){.ms = ms, .go = &go, .m = rec("race/app", content), .old = old.digest};
        assert_int_equal(pthread_create(&t[i], NULL, cas_thread, &a[i]), 0);
    }
    int winners = 0, winner = -1;
    for (int i = 0; i < CAS_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        if (a[i].rc == 0) {
            winners++;
            winner = i;
        } else {
            assert_int_equal(a[i].rc, PC_ECONFLICT);
        }
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(winners, 1);
    pc_digest got;
    pc_manifest_rec out;
    assert_int_equal(ms->reg->tag_get(ms, "race/app", "latest", &got), 0);
    assert_true(pc_digest_equal(&got, &a[winner].m.digest));
    for (int i = 0; i < CAS_THREADS; i++)
        assert_int_equal(ms->reg->manifest_get(ms, "race/app", &a[i].m.digest, &out),
                         i == winner ? 0 : PC_ENOTFOUND);
}

/* ---- cache bookkeeping ---- */

static void test_tag_stat_touch(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    int64_t before = (int64_t)time(NULL);
    put_tagged(ms, "up/app", "one", "v1");
    int64_t after = (int64_t)time(NULL);
    pc_digest got, one = dg("one"), two = dg("two");
    int64_t updated = 0;
    assert_int_equal(ms->cache->tag_stat(ms, "up/app", "v1", &got, &updated), 0);
    assert_true(pc_digest_equal(&got, &one));
    assert_true(updated >= before && updated <= after);
    /* a touch with the digest the tag has */
    assert_int_equal(ms->cache->tag_touch(ms, "up/app", "v1", &one, 12345), 0);
    assert_int_equal(ms->cache->tag_stat(ms, "up/app", "v1", &got, &updated), 0);
    assert_int_equal(updated, 12345);
    /* the tag moved meanwhile: no touch */
    assert_int_equal(ms->cache->tag_touch(ms, "up/app", "v1", &two, 99999), PC_ENOTFOUND);
    assert_int_equal(ms->cache->tag_stat(ms, "up/app", "v1", &got, &updated), 0);
    assert_int_equal(updated, 12345);
    assert_int_equal(ms->cache->tag_touch(ms, "up/app", "v2", &one, 1), PC_ENOTFOUND);
    assert_int_equal(ms->cache->tag_stat(ms, "up/app", "v2", &got, &updated), PC_ENOTFOUND);
    /* moving it sets the time again */
    put_tagged(ms, "up/app", "two", "v1");
    assert_int_equal(ms->cache->tag_stat(ms, "up/app", "v1", &got, &updated), 0);
    assert_true(pc_digest_equal(&got, &two));
    assert_true(updated >= before);
}

/* The test's rule for the mirror's repositories: first component "up". */
static bool up_pred(const char *repo, void *ctx)
{
    (void)ctx;
    return strncmp(repo, "up/", 3) == 0;
}

static bool any_pred(const char *repo, void *ctx)
{
    (void)repo;
    (void)ctx;
    return true;
}

typedef struct {
    int n;
    pc_digest d[16];
    uint64_t size[16];
    int64_t last[16];
} lru_list;

static int lru_cb(const pc_digest *d, uint64_t size, int64_t last, void *ctx)
{
    lru_list *l = ctx;
    assert_true(l->n < 16);
    l->d[l->n] = *d;
    l->size[l->n] = size;
    l->last[l->n++] = last;
    return 0;
}

static lru_list lru(pc_metastore *ms, pc_meta_repo_pred pred)
{
    lru_list l = {0};
    assert_int_equal(ms->cache->access_lru(ms, pred, NULL, lru_cb, &l), 0);
    return l;
}

/* Blobs for the eviction cases, by name: the names' digests. */
static void access_fixture(pc_metastore *ms, pc_digest *d)
{
    const char *names[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < 7; i++)
        d[i] = dg(names[i]);
    assert_int_equal(ms->reg->blob_link(ms, "up/x", &d[0], 1), 0); /* a: mirror only */
    assert_int_equal(ms->reg->blob_link(ms, "up/y", &d[1], 2), 0); /* b: mirror only */
    /* c: no holder at all */
    assert_int_equal(ms->reg->blob_link(ms, "up/x", &d[3], 4), 0); /* d: also local */
    assert_int_equal(ms->reg->blob_link(ms, "local/app", &d[3], 4), 0);
    pc_manifest_rec e = rec("up/x", "e"); /* e: a manifest */
    assert_int_equal(ms->reg->manifest_put(ms, &e, NULL, 0, NULL, NULL), 0);
    pc_manifest_ref rf = {d[5], false}; /* f: referenced by a local manifest */
    pc_manifest_rec lm = rec("local/app", "local manifest");
    assert_int_equal(ms->reg->manifest_put(ms, &lm, &rf, 1, NULL, NULL), 0);
    pc_manifest_ref rg = {d[6], false}; /* g: referenced by a mirror manifest */
    pc_manifest_rec um = rec("up/z", "up manifest");
    assert_int_equal(ms->reg->manifest_put(ms, &um, &rg, 1, NULL, NULL), 0);
    const int64_t when[] = {100, 50, 100, 10, 5, 20, 100};
    for (int i = 0; i < 7; i++)
        assert_int_equal(ms->cache->access_touch(ms, &d[i], (uint64_t)i + 1, when[i]), 0);
}

static void sort3(pc_digest *v)
{
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (strcmp(v[j].str, v[i].str) < 0) {
                pc_digest t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
}

static void test_access_lru(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest d[7];
    access_fixture(ms, d);
    /* LRU first, ties by digest; d (held by local/app), e (a manifest), f
     * (referenced from local/app) are never candidates */
    lru_list l = lru(ms, up_pred);
    assert_int_equal(l.n, 4);
    assert_true(pc_digest_equal(&l.d[0], &d[1]));
    assert_int_equal(l.last[0], 50);
    assert_int_equal(l.size[0], 2);
    pc_digest ties[3] = {d[0], d[2], d[6]};
    sort3(ties);
    for (int i = 0; i < 3; i++) {
        assert_true(pc_digest_equal(&l.d[1 + i], &ties[i]));
        assert_int_equal(l.last[1 + i], 100);
    }
    /* no predicate: only what nothing holds */
    l = lru(ms, NULL);
    assert_int_equal(l.n, 1);
    assert_true(pc_digest_equal(&l.d[0], &d[2]));
    /* every repository the mirror's: still no manifest */
    l = lru(ms, any_pred);
    assert_int_equal(l.n, 6);

    /* a touch within a minute of the stored one writes nothing */
    assert_int_equal(ms->cache->access_touch(ms, &d[1], 99, 80), 0);
    assert_int_equal(ms->cache->access_touch(ms, &d[1], 99, 110), 0); /* exactly 60 s */
    l = lru(ms, up_pred);
    assert_true(pc_digest_equal(&l.d[0], &d[1]));
    assert_int_equal(l.last[0], 50);
    assert_int_equal(l.size[0], 2);
    /* later than that it is written: b is now the most recent */
    assert_int_equal(ms->cache->access_touch(ms, &d[1], 99, 111), 0);
    l = lru(ms, up_pred);
    assert_int_equal(l.n, 4);
    assert_true(pc_digest_equal(&l.d[3], &d[1]));
    assert_int_equal(l.last[3], 111);
    assert_int_equal(l.size[3], 99);
    /* a time going backwards is no touch either */
    assert_int_equal(ms->cache->access_touch(ms, &d[1], 5, 7), 0);
    l = lru(ms, up_pred);
    assert_int_equal(l.last[3], 111);
}

static void test_access_evict(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest d[7];
    uint64_t size;
    access_fixture(ms, d);
    /* held outside the mirror: refused, nothing changed */
    assert_int_equal(ms->cache->access_evict(ms, &d[3], up_pred, NULL), PC_EEXISTS);
    assert_int_equal(ms->reg->blob_stat(ms, "up/x", &d[3], &size), 0);
    assert_int_equal(ms->reg->blob_stat(ms, "local/app", &d[3], &size), 0);
    assert_int_equal(ms->cache->access_evict(ms, &d[5], up_pred, NULL), PC_EEXISTS);
    assert_int_equal(ms->cache->access_evict(ms, &d[4], any_pred, NULL), PC_EEXISTS); /* manifest */
    assert_int_equal(ms->cache->access_evict(ms, &d[0], NULL, NULL), PC_EEXISTS);
    assert_int_equal(lru(ms, any_pred).n, 6);
    /* a mirror blob: its links and access record go */
    assert_int_equal(ms->cache->access_evict(ms, &d[0], up_pred, NULL), 0);
    assert_int_equal(ms->reg->blob_stat(ms, "up/x", &d[0], &size), PC_ENOTFOUND);
    assert_int_equal(ms->reg->blob_stat_any(ms, &d[0], &size), PC_ENOTFOUND);
    lru_list l = lru(ms, any_pred);
    assert_int_equal(l.n, 5);
    for (int i = 0; i < l.n; i++)
        assert_false(pc_digest_equal(&l.d[i], &d[0]));
    /* d, with the mirror's rule widened, goes from both repositories */
    assert_int_equal(ms->cache->access_evict(ms, &d[3], any_pred, NULL), 0);
    assert_int_equal(ms->reg->blob_stat_any(ms, &d[3], &size), PC_ENOTFOUND);
    /* the references of a mirror manifest are not removed (not links) */
    assert_int_equal(ms->cache->access_evict(ms, &d[6], up_pred, NULL), 0);
    pc_digest holder;
    assert_int_equal(ms->reg->ref_holder(ms, "up/z", &d[6], &holder), 0);
    assert_int_equal(lru(ms, any_pred).n, 3);
}

/* ---- fsck ---- */

typedef struct {
    int n;
    char s[16][400];
} lines;

static int link_line(const char *repo, const pc_digest *d, uint64_t size, void *ctx)
{
    lines *l = ctx;
    assert_true(l->n < 16);
    snprintf(l->s[l->n++], sizeof(l->s[0]), "%s %.12s %llu", repo, d->str,
             (unsigned long long)size);
    return 0;
}

static int ref_line(const char *repo, const pc_digest *m, const pc_manifest_ref *r, void *ctx)
{
    lines *l = ctx;
    assert_true(l->n < 16);
    snprintf(l->s[l->n++], sizeof(l->s[0]), "%s %s %s %d", repo, m->str, r->digest.str,
             r->is_manifest);
    return 0;
}

static int upload_line(const char *id, const char *repo, int64_t created, void *ctx)
{
    lines *l = ctx;
    assert_true(l->n < 16);
    int64_t now = (int64_t)time(NULL);
    assert_true(created <= now && created > now - 600);
    snprintf(l->s[l->n++], sizeof(l->s[0]), "%s %s", id, repo);
    return l->n >= 3 ? 4 : 0;
}

static void test_fsck_listings(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest x = dg("x"), y = dg("y");
    const pc_digest *lo = strcmp(x.str, y.str) < 0 ? &x : &y, *hi = lo == &x ? &y : &x;
    assert_int_equal(ms->reg->blob_link(ms, "b", hi, 2), 0);
    assert_int_equal(ms->reg->blob_link(ms, "b", lo, 1), 0);
    assert_int_equal(ms->reg->blob_link(ms, "a", hi, 3), 0);
    lines l = {0};
    assert_int_equal(ms->reg->blob_link_foreach(ms, link_line, &l), 0);
    assert_int_equal(l.n, 3);
    char want[3][400];
    snprintf(want[0], sizeof(want[0]), "a %.12s 3", hi->str);
    snprintf(want[1], sizeof(want[1]), "b %.12s 1", lo->str);
    snprintf(want[2], sizeof(want[2]), "b %.12s 2", hi->str);
    for (int i = 0; i < 3; i++)
        assert_string_equal(l.s[i], want[i]);

    pc_manifest_rec m1 = rec("r/2", "m1"), m2 = rec("r/1", "m2");
    pc_manifest_ref refs[] = {{*hi, true}, {*lo, false}};
    assert_int_equal(ms->reg->manifest_put(ms, &m1, refs, 2, NULL, NULL), 0);
    assert_int_equal(ms->reg->manifest_put(ms, &m2, refs, 1, NULL, NULL), 0);
    rec_list rl = {0};
    assert_int_equal(ms->reg->manifest_foreach(ms, rec_cb, &rl), 0);
    assert_int_equal(rl.n, 2);
    assert_string_equal(rl.recs[0].repo, "r/1");
    assert_string_equal(rl.recs[1].repo, "r/2");
    lines r = {0};
    assert_int_equal(ms->reg->manifest_ref_foreach(ms, ref_line, &r), 0);
    assert_int_equal(r.n, 3);
    snprintf(want[0], sizeof(want[0]), "r/1 %s %s 1", m2.digest.str, hi->str);
    snprintf(want[1], sizeof(want[1]), "r/2 %s %s 0", m1.digest.str, lo->str);
    snprintf(want[2], sizeof(want[2]), "r/2 %s %s 1", m1.digest.str, hi->str);
    for (int i = 0; i < 3; i++)
        assert_string_equal(r.s[i], want[i]);

    /* uploads by id; the callback's non-zero result stops the listing */
    const char *ids[] = {"u-c", "u-a", "u-d", "u-b"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(ms->reg->upload_put(ms, ids[i], "up/app"), 0);
    lines u = {0};
    assert_int_equal(ms->reg->upload_foreach(ms, upload_line, &u), 4);
    assert_int_equal(u.n, 3);
    assert_string_equal(u.s[0], "u-a up/app");
    assert_string_equal(u.s[1], "u-b up/app");
    assert_string_equal(u.s[2], "u-c up/app");
}

static void test_size_fix(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_manifest_rec m = rec("r/m", "the manifest"); /* size 12 */
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 0, "v1", NULL), 0);
    assert_int_equal(ms->reg->blob_link(ms, "r/a", &m.digest, 5), 0);
    assert_int_equal(ms->reg->blob_link(ms, "r/b", &m.digest, 12), 0);
    uint64_t changed = 99, size = 0;
    assert_int_equal(ms->reg->size_fix(ms, &m.digest, 12, &changed), 0);
    assert_int_equal(changed, 1); /* r/a's link */
    assert_int_equal(ms->reg->blob_stat(ms, "r/a", &m.digest, &size), 0);
    assert_int_equal(size, 12);
    assert_int_equal(ms->reg->size_fix(ms, &m.digest, 12, &changed), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(ms->reg->size_fix(ms, &m.digest, 7, &changed), 0);
    assert_int_equal(changed, 3); /* two links and the manifest */
    pc_manifest_rec got;
    assert_int_equal(ms->reg->manifest_get(ms, "r/m", &m.digest, &got), 0);
    assert_int_equal(got.size, 7);
    assert_int_equal(ms->reg->size_fix(ms, &m.digest, 8, NULL), 0);
    pc_digest other = dg("other");
    assert_int_equal(ms->reg->size_fix(ms, &other, 8, &changed), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(ms->reg->size_fix(ms, &m.digest, (uint64_t)INT64_MAX + 1, &changed),
                     PC_EINVAL);
}

/* A guard check that reads the store (a point read and a listing) and
 * returns what it was told to. */
typedef struct {
    int result;
    int calls;
    int stat_rc, manifest_rc, tags;
    const pc_digest *link, *manifest;
} guard;

static int guard_tag(const char *s, void *ctx)
{
    (void)s;
    ((guard *)ctx)->tags++;
    return 0;
}

static int guard_check(pc_metastore *ms, void *ctx)
{
    guard *g = ctx;
    uint64_t size;
    pc_manifest_rec m;
    g->calls++;
    g->tags = 0;
    g->stat_rc = ms->reg->blob_stat(ms, "g/app", g->link, &size);
    g->manifest_rc = ms->reg->manifest_get(ms, "g/app", g->manifest, &m);
    assert_int_equal(ms->reg->tag_list(ms, "g/app", NULL, -1, guard_tag, g), 0);
    return g->result;
}

static void test_guarded_remove(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    pc_digest layer = dg("layer"), got;
    uint64_t size;
    pc_manifest_rec m = rec("g/app", "m"), out;
    assert_int_equal(ms->reg->blob_link(ms, "g/app", &layer, 5), 0);
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 0, "v1", NULL), 0);
    guard g = {.link = &layer, .manifest = &m.digest};

    /* nothing: only the check */
    pc_meta_removal nothing = {PC_META_REMOVE_NOTHING, NULL, NULL};
    assert_int_equal(ms->reg->guarded_remove(ms, &nothing, guard_check, &g), 0);
    g.result = 3;
    assert_int_equal(ms->reg->guarded_remove(ms, &nothing, guard_check, &g), 3);
    assert_int_equal(g.calls, 2);
    assert_int_equal(g.stat_rc, 0);
    assert_int_equal(g.manifest_rc, 0);
    assert_int_equal(g.tags, 1);

    /* a link: the check says no, then yes */
    pc_meta_removal link = {PC_META_REMOVE_LINK, "g/app", &layer};
    g.result = 7;
    assert_int_equal(ms->reg->guarded_remove(ms, &link, guard_check, &g), 7);
    assert_int_equal(ms->reg->blob_stat(ms, "g/app", &layer, &size), 0);
    g.result = 0;
    assert_int_equal(ms->reg->guarded_remove(ms, &link, guard_check, &g), 0);
    assert_int_equal(g.stat_rc, 0); /* the check ran before the removal */
    assert_int_equal(ms->reg->blob_stat(ms, "g/app", &layer, &size), PC_ENOTFOUND);
    assert_int_equal(ms->reg->guarded_remove(ms, &link, guard_check, &g), PC_ENOTFOUND);
    assert_int_equal(g.stat_rc, PC_ENOTFOUND);

    /* a manifest, with its tags */
    pc_meta_removal man = {PC_META_REMOVE_MANIFEST, "g/app", &m.digest};
    g.result = -1;
    assert_int_equal(ms->reg->guarded_remove(ms, &man, guard_check, &g), -1);
    assert_int_equal(ms->reg->manifest_get(ms, "g/app", &m.digest, &out), 0);
    assert_int_equal(ms->reg->tag_get(ms, "g/app", "v1", &got), 0);
    g.result = 0;
    assert_int_equal(ms->reg->guarded_remove(ms, &man, guard_check, &g), 0);
    assert_int_equal(ms->reg->manifest_get(ms, "g/app", &m.digest, &out), PC_ENOTFOUND);
    assert_int_equal(ms->reg->tag_get(ms, "g/app", "v1", &got), PC_ENOTFOUND);
    assert_int_equal(ms->reg->guarded_remove(ms, &man, guard_check, &g), PC_ENOTFOUND);
    assert_int_equal(g.calls, 8);

    /* refused before any check */
    pc_meta_removal bad = {PC_META_REMOVE_LINK, "", &layer};
    assert_int_equal(ms->reg->guarded_remove(ms, &bad, guard_check, &g), PC_EINVAL);
    assert_int_equal(ms->reg->guarded_remove(ms, &link, NULL, &g), PC_EINVAL);
    assert_int_equal(ms->reg->guarded_remove(ms, NULL, guard_check, &g), PC_EINVAL);
    assert_int_equal(g.calls, 8);
}

/* Listing callbacks may call the store's read functions (the registry
 * does): a catalog callback lists each repository's tags. */
typedef struct {
    pc_metastore *ms;
    int repos, tags, fails;
} nested;

static int nested_tag(const char *s, void *ctx)
{
    nested *n = ctx;
    n->tags++;
    return s[0] ? 0 : 1;
}

static int nested_repo(const char *repo, void *ctx)
{
    nested *n = ctx;
    pc_digest d;
    n->repos++;
    if (n->ms->reg->repo_exists(n->ms, repo) != 0 ||
        n->ms->reg->tag_list(n->ms, repo, NULL, -1, nested_tag, n) != 0 ||
        n->ms->reg->tag_get(n->ms, repo, "v1", &d) != 0)
        n->fails++;
    return 0;
}

static int nested_digest(const pc_digest *d, void *ctx)
{
    nested *n = ctx;
    uint64_t count = 0;
    if (n->ms->reg->digest_holders(n->ms, d, &count) != 0 || count == 0)
        n->fails++;
    return 0;
}

static void test_callbacks_read_store(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    put_tagged(ms, "n/a", "m1", "v1");
    put_tagged(ms, "n/a", "m2", "v2");
    put_tagged(ms, "n/b", "m3", "v1");
    nested n = {.ms = ms};
    assert_int_equal(ms->reg->catalog(ms, NULL, -1, nested_repo, &n), 0);
    assert_int_equal(n.repos, 2);
    assert_int_equal(n.tags, 3);
    assert_int_equal(ms->reg->referenced_foreach(ms, nested_digest, &n), 0);
    assert_int_equal(n.fails, 0);
}

static void test_invalid_input(void **state)
{
    fixture *f = *state;
    pc_metastore *ms = f->ms;
    char longname[PC_NAME_MAX + 2], longtag[PC_TAG_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memset(longtag, 't', sizeof(longtag) - 1);
    longtag[sizeof(longtag) - 1] = '\0';
    pc_digest d = dg("x"), empty = {0}, unterminated, out;
    memset(&unterminated, 'a', sizeof(unterminated));
    uint64_t size;
    char repo[PC_NAME_MAX + 1];
    pc_manifest_rec m = rec("ok", "m"), got;

    assert_int_equal(ms->reg->blob_link(ms, "", &d, 1), PC_EINVAL);
    assert_int_equal(ms->reg->blob_link(ms, NULL, &d, 1), PC_EINVAL);
    assert_int_equal(ms->reg->blob_link(ms, longname, &d, 1), PC_EINVAL);
    assert_int_equal(ms->reg->blob_link(ms, "ok", &empty, 1), PC_EINVAL);
    assert_int_equal(ms->reg->blob_link(ms, "ok", &unterminated, 1), PC_EINVAL);
    assert_int_equal(ms->reg->blob_stat(ms, "ok", NULL, &size), PC_EINVAL);
    assert_int_equal(ms->reg->blob_stat_any(ms, &empty, &size), PC_EINVAL);
    assert_int_equal(ms->reg->blob_unlink(ms, longname, &d), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_put(ms, NULL, NULL, 0, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 1, NULL, NULL), PC_EINVAL);
    pc_manifest_ref badref = {empty, false};
    assert_int_equal(ms->reg->manifest_put(ms, &m, &badref, 1, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 0, longtag, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 0, "t", &unterminated), PC_EINVAL);
    pc_manifest_rec bad = m;
    bad.has_subject = true;
    assert_int_equal(ms->reg->manifest_put(ms, &bad, NULL, 0, NULL, NULL), PC_EINVAL);
    bad = m;
    memset(bad.media_type, 'x', sizeof(bad.media_type));
    assert_int_equal(ms->reg->manifest_put(ms, &bad, NULL, 0, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_get(ms, "ok", &d, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_get(ms, "", &d, &got), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_delete(ms, "ok", &empty), PC_EINVAL);
    assert_int_equal(ms->reg->tag_get(ms, "ok", longtag, &out), PC_EINVAL);
    assert_int_equal(ms->reg->tag_get(ms, "ok", "", &out), PC_EINVAL);
    assert_int_equal(ms->reg->tag_delete(ms, "ok", NULL), PC_EINVAL);
    assert_int_equal(ms->reg->tag_list(ms, "ok", NULL, -1, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->tag_list(ms, "", NULL, -1, strings_cb, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->referrers(ms, "ok", &empty, rec_cb, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->catalog(ms, NULL, -1, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->repo_exists(ms, longname), PC_EINVAL);
    assert_int_equal(ms->reg->upload_put(ms, "a/b", "ok"), PC_EINVAL);
    assert_int_equal(ms->reg->upload_put(ms, "u-1", ""), PC_EINVAL);
    assert_int_equal(ms->reg->upload_get(ms, "u-1", NULL), PC_EINVAL);
    assert_int_equal(ms->reg->upload_get(ms, "", repo), PC_EINVAL);
    assert_int_equal(ms->reg->upload_delete(ms, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->referenced_foreach(ms, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->digest_holders(ms, &d, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->ref_holder(ms, "ok", &d, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->blob_link_foreach(ms, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_foreach(ms, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->manifest_ref_foreach(ms, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->upload_foreach(ms, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->reg->size_fix(ms, &empty, 1, NULL), PC_EINVAL);
    int64_t when;
    assert_int_equal(ms->cache->tag_stat(ms, "ok", "t", &out, NULL), PC_EINVAL);
    assert_int_equal(ms->cache->tag_stat(ms, "ok", longtag, &out, &when), PC_EINVAL);
    assert_int_equal(ms->cache->tag_touch(ms, "ok", "t", NULL, 1), PC_EINVAL);
    assert_int_equal(ms->cache->access_touch(ms, &empty, 1, 1), PC_EINVAL);
    assert_int_equal(ms->cache->access_lru(ms, NULL, NULL, NULL, NULL), PC_EINVAL);
    assert_int_equal(ms->cache->access_evict(ms, &unterminated, NULL, NULL), PC_EINVAL);
    pc_meta_limit_row nokey = {NULL, 0, 1, 10}, huge = {"k", 0, (uint64_t)INT64_MAX + 1, 10};
    assert_int_equal(ms->limits->limit_save(ms, NULL, 1, 0, false), PC_EINVAL);
    assert_int_equal(ms->limits->limit_save(ms, &nokey, 1, 0, false), PC_EINVAL);
    assert_int_equal(ms->limits->limit_save(ms, &huge, 1, 0, false), PC_EINVAL);
    assert_int_equal(ms->limits->limit_load(ms, 0, NULL, NULL), PC_EINVAL);
    /* and none of it stored anything */
    strings l = {0};
    assert_int_equal(ms->reg->catalog(ms, NULL, -1, strings_cb, &l), 0);
    assert_int_equal(l.n, 0);
    digest_list dl = {0};
    assert_int_equal(ms->reg->referenced_foreach(ms, digest_cb, &dl), 0);
    assert_int_equal(dl.n, 0);
}

/* pc_meta_check: the backend passes; a copy with a table's version or a
 * function broken does not. */
static void test_check(void **state)
{
    fixture *f = *state;
    const pc_metastore *ms = f->ms;
    assert_string_equal(ms->driver, f->k->name);
    assert_int_equal(pc_meta_check(ms), 0);
    assert_int_equal(pc_meta_check(NULL), PC_ENOTSUP);

    pc_metastore h = *ms;
    h.version++;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    h = *ms;
    h.free = NULL;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);

    pc_meta_reg_ops reg = *ms->reg;
    h = *ms;
    h.reg = &reg;
    assert_int_equal(pc_meta_check(&h), 0);
    reg.version++;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    assert_non_null(strstr(pc_error_last(), f->k->name));
    reg = *ms->reg;
    reg.blob_link = NULL; /* the first */
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    reg = *ms->reg;
    reg.guarded_remove = NULL; /* the last */
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    h.reg = NULL;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);

    pc_meta_cache_ops cache = *ms->cache;
    h = *ms;
    h.cache = &cache;
    cache.access_evict = NULL;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    cache = *ms->cache;
    cache.version = 0;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);

    pc_meta_limit_ops limits = *ms->limits;
    h = *ms;
    h.limits = &limits;
    limits.limit_load = NULL;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    limits = *ms->limits;
    limits.version++;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    limits = *ms->limits;
    assert_int_equal(pc_meta_check(&h), 0);
}

/* Every case, on backend k: one cmocka group per backend. */
static int run_kind(const kind *k)
{
    void *s = (void *)k;
#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, s)
    const struct CMUnitTest tests[] = {
        T(test_tag_order_and_pages),
        T(test_tag_list_unknown_repo),
        T(test_catalog),
        T(test_blob_links),
        T(test_blob_link_refcount),
        T(test_manifest_put_get_delete),
        T(test_referrers),
        T(test_ref_holder),
        T(test_holders_across_repos),
        T(test_uploads_persist),
        T(test_threads),
        T(test_limit_rows),
        T(test_limit_take),
        T(test_tag_cas),
        T(test_tag_cas_threads),
        T(test_tag_stat_touch),
        T(test_access_lru),
        T(test_access_evict),
        T(test_fsck_listings),
        T(test_size_fix),
        T(test_guarded_remove),
        T(test_callbacks_read_store),
        T(test_invalid_input),
        T(test_check),
        T(test_lookup_speed),
    };
#undef T
    print_message("[ backend %s ]\n", k->name);
    return cmocka_run_group_tests_name(k->name, tests, NULL, NULL);
}

/* Whether backend k runs: named in PC_TEST_META_BACKENDS when that is
 * set, else every one (postgres only with a server to run on). */
static bool kind_wanted(const kind *k)
{
    const char *want = getenv("PC_TEST_META_BACKENDS");
    if (!want || !*want) {
        if (strcmp(k->name, "postgres") == 0 && !pc_test_pg_base()) {
            print_message("[ backend postgres: skipped, no PC_TEST_PG_CONNINFO ]\n");
            return false;
        }
        return true;
    }
    size_t n = strlen(k->name);
    for (const char *p = want; (p = strstr(p, k->name)); p += n)
        if ((p == want || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

int main(void)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kind_wanted(&kinds[i])) {
            failed += run_kind(&kinds[i]);
            ran++;
        }
    if (!ran) {
        fprintf(stderr, "no backend chosen (PC_TEST_META_BACKENDS)\n");
        return 1;
    }
    return failed;
}
