/*
 * test_migrate.c - the migration (migrate.h) between in-memory stores:
 * everything is copied (tags with their updated times, access records,
 * limiter counts), a second run writes nothing, a dry run writes nothing,
 * a partly filled destination is completed (a tag pointing elsewhere is set
 * again, a blob of another size there is replaced), a corrupt source blob is reported and not
 * copied, and the verification finds blobs a destination lost.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migrate.h"

typedef struct {
    pc_blob_backend *sb, *db;
    pc_metastore *sm, *dm;
    pc_digest layer, config, manifest;
    size_t nproblems;
    pc_migrate_problem_kind kinds[16];
    pc_digest digests[16];
} fx_t;

static const char LAYER[] = "layer bytes, layer bytes, layer bytes";
static const char CONFIG[] = "{\"architecture\":\"amd64\"}";
static const char MANIFEST[] = "{\"schemaVersion\":2}";
static const char *MT = "application/vnd.oci.image.manifest.v1+json";

static void put(pc_blob_backend *be, const char *s, pc_digest *d)
{
    assert_int_equal(pc_digest_buffer(d, PC_DIGEST_SHA256, s, strlen(s)), 0);
    assert_int_equal(pc_blob_put(be, d, s, strlen(s)), 0);
}

static pc_manifest_rec record(const fx_t *f, const char *repo)
{
    pc_manifest_rec m;
    memset(&m, 0, sizeof(m));
    snprintf(m.repo, sizeof(m.repo), "%s", repo);
    m.digest = f->manifest;
    snprintf(m.media_type, sizeof(m.media_type), "%s", MT);
    m.size = strlen(MANIFEST);
    return m;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(pc_blob_mem_open(&f->sb), 0);
    assert_int_equal(pc_blob_mem_open(&f->db), 0);
    assert_int_equal(pc_meta_mem_open(&f->sm), 0);
    assert_int_equal(pc_meta_mem_open(&f->dm), 0);
    put(f->sb, LAYER, &f->layer);
    put(f->sb, CONFIG, &f->config);
    put(f->sb, MANIFEST, &f->manifest);
    pc_metastore *ms = f->sm;
    assert_int_equal(ms->reg->blob_link(ms, "team/app", &f->layer, strlen(LAYER)), 0);
    assert_int_equal(ms->reg->blob_link(ms, "team/app", &f->config, strlen(CONFIG)), 0);
    pc_manifest_ref refs[] = {{f->config, false}, {f->layer, false}};
    pc_manifest_rec m = record(f, "team/app");
    assert_int_equal(ms->reg->manifest_put(ms, &m, refs, 2, "v1", NULL), 0);
    assert_int_equal(ms->cache->tag_touch(ms, "team/app", "v1", &f->manifest, 1000), 0);
    assert_int_equal(ms->cache->access_touch(ms, &f->layer, strlen(LAYER), 5000), 0);
    pc_meta_limit_row row = {"client-1", 3600, 7, 4000000000};
    assert_int_equal(ms->limits->limit_save(ms, &row, 1, 100, false), 0);
    assert_int_equal(ms->reg->upload_put(ms, "u-1", "team/app"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    f->sb->free(f->sb);
    f->db->free(f->db);
    f->sm->free(f->sm);
    f->dm->free(f->dm);
    free(f);
    return 0;
}

static void on_problem(const pc_migrate_problem *p, void *ctx)
{
    fx_t *f = ctx;
    if (f->nproblems < 16) {
        f->kinds[f->nproblems] = p->kind;
        if (p->digest)
            f->digests[f->nproblems] = *p->digest;
    }
    f->nproblems++;
}

static int run(fx_t *f, bool dry, pc_migrate_stats *st)
{
    pc_migrate_opts o = {.src_blobs = f->sb,
                         .src_meta = f->sm,
                         .dst_blobs = f->db,
                         .dst_meta = f->dm,
                         .dry_run = dry,
                         .jobs = 2,
                         .now = 200,
                         .on_problem = on_problem,
                         .ctx = f};
    f->nproblems = 0;
    return pc_migrate_run(&o, st);
}

static int count_blob(const pc_blob_entry *e, void *ctx)
{
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t nblobs(pc_blob_backend *be)
{
    size_t n = 0;
    assert_int_equal(be->list(be, count_blob, &n), 0);
    return n;
}

static int access_cb(const pc_digest *d, uint64_t size, int64_t last, void *ctx)
{
    (void)d;
    (void)size;
    *(int64_t *)ctx = last;
    return 0;
}

static bool any(const char *repo, void *ctx)
{
    (void)repo;
    (void)ctx;
    return true;
}

static int limit_cb(const pc_meta_limit_row *r, void *ctx)
{
    *(uint64_t *)ctx = r->count;
    return 0;
}

static void copies_everything_then_nothing(void **state)
{
    fx_t *f = *state;
    pc_migrate_stats st;
    assert_int_equal(run(f, false, &st), 0);
    assert_int_equal(f->nproblems, 0);
    assert_true(st.verified);
    assert_int_equal(st.blobs, 3);
    assert_int_equal(st.blobs_copied, 3);
    assert_int_equal(st.bytes_copied, strlen(LAYER) + strlen(CONFIG) + strlen(MANIFEST));
    assert_int_equal(st.links_added, 2);
    assert_int_equal(st.manifests_put, 1);
    assert_int_equal(st.tags_set, 1);
    assert_int_equal(st.access_set, 1);
    assert_int_equal(st.limits_set, 1);
    assert_int_equal(st.uploads_skipped, 1);
    assert_false(pc_migrate_nothing_done(&st));

    /* the destination has it all, with the source's times */
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(pc_blob_get(f->db, &f->layer, 1024, &buf, &len), 0);
    assert_memory_equal(buf, LAYER, strlen(LAYER));
    free(buf);
    pc_digest d;
    int64_t updated = 0, last = 0;
    assert_int_equal(f->dm->cache->tag_stat(f->dm, "team/app", "v1", &d, &updated), 0);
    assert_string_equal(d.str, f->manifest.str);
    assert_int_equal(updated, 1000);
    pc_manifest_rec m;
    assert_int_equal(f->dm->reg->manifest_get(f->dm, "team/app", &f->manifest, &m), 0);
    assert_string_equal(m.media_type, MT);
    assert_int_equal(f->dm->reg->ref_holder(f->dm, "team/app", &f->layer, &d), 0);
    assert_int_equal(f->dm->cache->access_lru(f->dm, any, NULL, access_cb, &last), 0);
    assert_int_equal(last, 5000);
    uint64_t count = 0;
    assert_int_equal(f->dm->limits->limit_load(f->dm, 200, limit_cb, &count), 0);
    assert_int_equal(count, 7);
    char repo[PC_NAME_MAX + 1];
    assert_int_equal(f->dm->reg->upload_get(f->dm, "u-1", repo), PC_ENOTFOUND);

    /* again: nothing to do */
    assert_int_equal(run(f, false, &st), 0);
    assert_true(pc_migrate_nothing_done(&st));
    assert_int_equal(st.blobs_present, 3);
    assert_true(st.verified);
}

static void dry_run_writes_nothing(void **state)
{
    fx_t *f = *state;
    pc_migrate_stats st;
    assert_int_equal(run(f, true, &st), 0);
    assert_false(st.verified);
    assert_int_equal(st.blobs_copied, 3);
    assert_int_equal(st.manifests_put, 1);
    assert_int_equal(st.tags_set, 1);
    assert_int_equal(nblobs(f->db), 0);
    pc_digest d;
    assert_int_equal(f->dm->reg->tag_get(f->dm, "team/app", "v1", &d), PC_ENOTFOUND);
    assert_int_equal(f->dm->reg->repo_exists(f->dm, "team/app"), PC_ENOTFOUND);
}

static void completes_a_partial_destination(void **state)
{
    fx_t *f = *state;
    pc_digest d, other;
    /* a blob copied already, and v1 pointing at another manifest */
    assert_int_equal(pc_blob_put(f->db, &f->layer, LAYER, strlen(LAYER)), 0);
    put(f->db, "{\"other\":1}", &other);
    pc_manifest_rec m = record(f, "team/app");
    m.digest = other;
    assert_int_equal(f->dm->reg->manifest_put(f->dm, &m, NULL, 0, "v1", NULL), 0);
    pc_migrate_stats st;
    assert_int_equal(run(f, false, &st), 0);
    assert_int_equal(st.blobs_present, 1);
    assert_int_equal(st.blobs_copied, 2);
    assert_int_equal(st.tags_set, 1);
    assert_int_equal(f->dm->reg->tag_get(f->dm, "team/app", "v1", &d), 0);
    assert_string_equal(d.str, f->manifest.str);
}

static void damaged_destination_copy_is_replaced(void **state)
{
    fx_t *f = *state;
    /* the destination has other bytes (another size) under the layer's digest */
    pc_blob_wr *w = NULL;
    assert_int_equal(f->db->writer(f->db, NULL, true, &w), 0);
    assert_int_equal(w->append(w, "short", 5), 0);
    assert_int_equal(w->commit(w, &f->layer), 0);
    pc_migrate_stats st;
    assert_int_equal(run(f, false, &st), 0);
    assert_int_equal(st.blobs_present, 0);
    assert_int_equal(st.blobs_copied, 3);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(pc_blob_get(f->db, &f->layer, 1024, &buf, &len), 0);
    assert_int_equal(len, strlen(LAYER));
    assert_memory_equal(buf, LAYER, len);
    free(buf);
}

static void corrupt_source_blob_is_reported(void **state)
{
    fx_t *f = *state;
    /* bytes committed under a digest they do not hash to */
    pc_digest bad;
    assert_int_equal(pc_digest_buffer(&bad, PC_DIGEST_SHA256, "x", 1), 0);
    pc_blob_wr *w = NULL;
    assert_int_equal(f->sb->writer(f->sb, NULL, true, &w), 0);
    assert_int_equal(w->append(w, "not x", 5), 0);
    assert_int_equal(w->commit(w, &bad), 0);
    pc_migrate_stats st;
    assert_int_equal(run(f, false, &st), PC_EDIGEST);
    assert_int_equal(f->nproblems, 1);
    assert_int_equal(f->kinds[0], PC_MIGRATE_P_CORRUPT);
    assert_string_equal(f->digests[0].str, bad.str);
    assert_int_equal(st.blobs_copied, 3);
    uint64_t size;
    assert_int_equal(f->db->stat(f->db, &bad, &size), PC_ENOTFOUND);
    assert_true(st.verified);
}

/* A destination that loses what it is given: commits drop the bytes. */
static int (*real_writer)(pc_blob_backend *, const char *, bool, pc_blob_wr **);

static int lossy_commit(pc_blob_wr *w, const pc_digest *d)
{
    (void)d;
    w->cancel(w);
    return 0;
}

static int lossy_writer(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out)
{
    int rc = real_writer(be, id, create, out);
    if (rc == 0)
        (*out)->commit = lossy_commit;
    return rc;
}

static void verification_finds_lost_blobs(void **state)
{
    fx_t *f = *state;
    real_writer = f->db->writer;
    f->db->writer = lossy_writer;
    pc_migrate_stats st;
    assert_int_equal(run(f, false, &st), PC_EDIGEST);
    f->db->writer = real_writer;
    assert_true(st.verified);
    assert_int_equal(f->nproblems, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(f->kinds[i], PC_MIGRATE_P_BLOB_MISSING);
    /* once the destination keeps them, a run completes */
    assert_int_equal(run(f, false, &st), 0);
    assert_int_equal(st.blobs_copied, 3);
    assert_int_equal(f->nproblems, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(copies_everything_then_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(dry_run_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(completes_a_partial_destination, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_destination_copy_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_source_blob_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(verification_finds_lost_blobs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
