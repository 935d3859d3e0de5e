/*
 * test_registry_cache.c - the registry operations of the pull-through cache
 * (registry_cache.c) over the real filesystem blob store and SQLite meta
 * store: a fetch's staging is published, linked and recorded in one step
 * whose errors reach the caller; a hit on a mirrored blob whose file has
 * another size than recorded is no hit (the file is taken out of service);
 * adopting a stored blob links it and makes it an eviction candidate.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry_int.h" /* the stores themselves, to look behind the registry */
#include "mirror_evict.h"
#include "testutil.h"

#define REPO "docker.io/library/app"

static const char *const UPS[] = {"docker.io"};
static const pc_evict_rule RULE = {UPS, 1};

typedef struct {
    char dir[64];
    pc_registry *reg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_non_null(pc_test_tmpdir(f->dir, sizeof(f->dir), "regcache"));
    assert_int_equal(pc_registry_open(&f->reg, f->dir), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pc_registry_free(f->reg);
    pc_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* Stage data as a fetch does and commit it as d (its digest unless d is
 * given); the registry's result. */
static int stage(fixture *f, const char *data, const pc_digest *claimed, pc_digest *out)
{
    pc_spool *sp = NULL;
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, data, strlen(data)), 0);
    if (claimed)
        d = *claimed;
    assert_int_equal(pc_registry_stage_begin(f->reg, &d, &sp), 0);
    assert_int_equal(pc_spool_append(sp, data, strlen(data)), 0);
    /* the growing bytes are readable, all but the last until verified */
    char got[64] = "";
    assert_int_equal(pc_spool_read(sp, 0, got, sizeof(got) - 1), (long)strlen(data) - 1);
    assert_memory_equal(got, data, strlen(data) - 1);
    if (out)
        *out = d;
    int rc = pc_registry_stage_commit(f->reg, sp, REPO, &d, strlen(data));
    if (rc == 0) { /* and, once verified, every byte (also after the commit) */
        memset(got, 0, sizeof(got));
        assert_int_equal(pc_spool_read(sp, 0, got, sizeof(got) - 1), (long)strlen(data));
        assert_string_equal(got, data);
    }
    pc_spool_unref(sp);
    return rc;
}

static int count_lru(fixture *f, pc_digest *first)
{
    pc_registry_lru_entry *v = NULL;
    size_t n = 0;
    assert_int_equal(pc_registry_cache_lru(f->reg, pc_evict_repo_mirrored, (void *)&RULE, true, &v, &n), 0);
    if (n && first)
        *first = v[0].d;
    free(v);
    return (int)n;
}

static int count_uploads(const char *id, uint64_t size, long age_s, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

/* Staging leftovers: uploads and temp files of the blob store. */
static int staged(fixture *f)
{
    int n = 0;
    assert_int_equal(f->reg->be->upload_list(f->reg->be, count_uploads, &n), 0);
    assert_int_equal(f->reg->be->tmp_list(f->reg->be, count_uploads, &n), 0);
    return n;
}

/* A verified staging is published, linked and an eviction candidate. */
static void commit_publishes_links_records(void **state)
{
    fixture *f = *state;
    pc_digest d, lru;
    uint64_t size = 0;
    assert_int_equal(stage(f, "layer bytes", NULL, &d), 0);
    assert_int_equal(pc_registry_blob_stat(f->reg, REPO, &d, &size), 0);
    assert_int_equal(size, strlen("layer bytes"));
    assert_int_equal(count_lru(f, &lru), 1);
    assert_string_equal(lru.str, d.str);
    assert_int_equal(staged(f), 0);
    assert_int_equal(pc_registry_cache_blob_hit(f->reg, REPO, &d, &size), 0);
}

/* Bytes that are not the digest's: PC_EDIGEST, nothing published or
 * linked, the staging gone. */
static void commit_refuses_wrong_bytes(void **state)
{
    fixture *f = *state;
    pc_digest want;
    uint64_t size = 0;
    assert_int_equal(pc_digest_buffer(&want, PC_DIGEST_SHA256, "other", 5), 0);
    assert_int_equal(stage(f, "layer bytes", &want, NULL), PC_EDIGEST);
    assert_int_equal(pc_registry_blob_stat(f->reg, REPO, &want, &size), PC_ENOTFOUND);
    assert_int_equal(f->reg->be->stat(f->reg->be, &want, &size), PC_ENOTFOUND);
    assert_int_equal(count_lru(f, NULL), 0);
    assert_int_equal(staged(f), 0);
}

static int failing_link(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t size)
{
    pc_error_set("disk I/O error (test)");
    return PC_ERR;
}

/* A failing link reaches the caller (it was ignored once, and the fetch
 * reported a stored blob): nothing is left staged, the blob is no hit. */
static void commit_reports_link_failure(void **state)
{
    fixture *f = *state;
    pc_digest d;
    uint64_t size = 0;
    pc_metastore *ms = f->reg->ms;
    const pc_meta_reg_ops *orig = ms->reg;
    pc_meta_reg_ops broken = *orig; /* the same store, its blob_link failing */
    broken.blob_link = failing_link;
    ms->reg = &broken;
    int rc = stage(f, "layer", NULL, &d);
    ms->reg = orig;
    assert_int_equal(rc, PC_ERR);
    assert_int_equal(staged(f), 0);
    assert_int_equal(pc_registry_cache_blob_hit(f->reg, REPO, &d, &size), PC_ENOTFOUND);
    assert_int_equal(count_lru(f, NULL), 0);
}

/* A mirrored blob whose file lost bytes is no hit and out of service; a
 * fetch publishes it afresh. */
static void hit_checks_the_size(void **state)
{
    fixture *f = *state;
    pc_digest d;
    uint64_t size = 0;
    char path[256];
    assert_int_equal(stage(f, "0123456789", NULL, &d), 0);
    assert_int_equal(f->reg->be->locate(f->reg->be, PC_BLOB_IN_BLOBS, d.str, path, sizeof(path)),
                     0);
    assert_int_equal(truncate(path, 4), 0);
    assert_int_equal(pc_registry_cache_blob_hit(f->reg, REPO, &d, &size), PC_ENOTFOUND);
    assert_int_equal(f->reg->be->stat(f->reg->be, &d, &size), PC_ENOTFOUND);
    /* not adopted either: it is not stored any more */
    assert_int_equal(pc_registry_cache_adopt(f->reg, "quay.io/x/app", &d, &size), PC_ENOTFOUND);
    assert_int_equal(stage(f, "0123456789", NULL, NULL), 0);
    assert_int_equal(pc_registry_cache_blob_hit(f->reg, REPO, &d, &size), 0);
    assert_int_equal(size, 10);
}

/* A blob stored for one repository is adopted into another: linked there,
 * of its size; evicting it removes the bytes. */
static void adopt_then_evict(void **state)
{
    fixture *f = *state;
    pc_digest d;
    uint64_t size = 0;
    assert_int_equal(stage(f, "shared layer", NULL, &d), 0);
    assert_int_equal(pc_registry_cache_adopt(f->reg, "docker.io/library/other", &d, &size), 0);
    assert_int_equal(size, strlen("shared layer"));
    assert_int_equal(pc_registry_blob_stat(f->reg, "docker.io/library/other", &d, &size), 0);
    assert_int_equal(pc_registry_cache_evict(f->reg, &d, pc_evict_repo_mirrored, (void *)&RULE), 0);
    assert_int_equal(f->reg->be->stat(f->reg->be, &d, &size), PC_ENOTFOUND);
    assert_int_equal(pc_registry_cache_blob_hit(f->reg, REPO, &d, &size), PC_ENOTFOUND);
    assert_int_equal(count_lru(f, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commit_publishes_links_records, setup, teardown),
        cmocka_unit_test_setup_teardown(commit_refuses_wrong_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(commit_reports_link_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(hit_checks_the_size, setup, teardown),
        cmocka_unit_test_setup_teardown(adopt_then_evict, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
