/*
 * test_mirror_evict.c - unit tests of cache eviction and the gc sweep (mirror_evict.c)
 * over real filesystem and SQLite stores in a temporary directory:
 * mirrored blobs go least recently used first down to the cap, pushed
 * blobs and blobs a local repository shares never go, manifests never go,
 * busy blobs are skipped, access times are written at most once a minute,
 * the sweep removes only old unreferenced blobs, dry runs change nothing.
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

#include "mirror_evict.h"
#include "registry_int.h" /* the stores themselves, to set up and look */
#include "testutil.h"

static const char *const UPS[] = {"docker.io", "ghcr.io"};
#define NUPS 2
static const pc_evict_rule RULE = {UPS, NUPS};

typedef struct {
    char dir[64];
    pc_registry *reg;
    pc_blob_backend *be;
    pc_metastore *ms;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_non_null(pc_test_tmpdir(f->dir, sizeof(f->dir), "evict"));
    assert_int_equal(pc_registry_open(&f->reg, f->dir), 0);
    f->be = f->reg->be;
    f->ms = f->reg->ms;
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

/* Store a blob of `size` bytes of `fill`, link it into repo (when not
 * NULL) and, when accessed >= 0, record a mirror access at that time. */
static pc_digest blob(fixture *f, char fill, size_t size, const char *repo, int64_t accessed)
{
    char buf[4096];
    pc_digest d;
    assert_true(size <= sizeof(buf));
    memset(buf, fill, size);
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, buf, size), 0);
    assert_int_equal(pc_blob_put(f->be, &d, buf, size), 0);
    if (repo)
        assert_int_equal(f->ms->reg->blob_link(f->ms, repo, &d, size), 0);
    if (accessed >= 0)
        assert_int_equal(f->ms->cache->access_touch(f->ms, &d, size, accessed), 0);
    return d;
}

static bool stored(fixture *f, const pc_digest *d)
{
    uint64_t size;
    return f->be->stat(f->be, d, &size) == 0;
}

static void test_lru_down_to_cap(void **state)
{
    fixture *f = *state;
    pc_digest a = blob(f, 'a', 100, "docker.io/library/x", 1000);
    pc_digest b = blob(f, 'b', 100, "docker.io/library/x", 2000);
    pc_digest c = blob(f, 'c', 100, "ghcr.io/org/y", 3000);
    pc_digest d = blob(f, 'd', 100, "docker.io/library/z", 4000);
    /* a is used again: now the most recent */
    assert_int_equal(f->ms->cache->access_touch(f->ms, &a, 100, 5000), 0);

    pc_evict_stats st;
    assert_int_equal(pc_evict_run(f->reg, UPS, NUPS, 250, false, NULL, NULL, &st), 0);
    assert_int_equal(st.mirrored_bytes, 400);
    assert_int_equal(st.freed, 2);
    assert_int_equal(st.freed_bytes, 200);
    assert_false(stored(f, &b));
    assert_false(stored(f, &c));
    assert_true(stored(f, &a));
    assert_true(stored(f, &d));
    uint64_t size;
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "docker.io/library/x", &b, &size), PC_ENOTFOUND);
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "docker.io/library/x", &a, &size), 0);

    /* under the cap: nothing more goes */
    assert_int_equal(pc_evict_run(f->reg, UPS, NUPS, 250, false, NULL, NULL, &st), 0);
    assert_int_equal(st.mirrored_bytes, 200);
    assert_int_equal(st.freed, 0);
    /* cap 0: every mirrored blob goes */
    assert_int_equal(pc_evict_run(f->reg, UPS, NUPS, 0, false, NULL, NULL, &st), 0);
    assert_int_equal(st.freed, 2);
    assert_false(stored(f, &a));
    assert_false(stored(f, &d));
}

static void test_local_never_evicted(void **state)
{
    fixture *f = *state;
    /* pushed, old, never served by the mirror */
    pc_digest pushed = blob(f, 'p', 100, "team/app", -1);
    /* pushed and later asked for through a mirror repository (the mirror
     * links and touches stored content it finds): shared */
    pc_digest shared = blob(f, 's', 100, "team/app", 10);
    assert_int_equal(f->ms->reg->blob_link(f->ms, "docker.io/library/app", &shared, 100), 0);
    /* a repository whose first component only starts like an upstream */
    pc_digest lookalike = blob(f, 'l', 100, "docker.iox/app", 20);
    /* a single-component local repository */
    pc_digest single = blob(f, 'o', 100, "app", 30);
    /* mirrored, but a local manifest refers to it */
    pc_digest refd = blob(f, 'r', 100, "docker.io/library/app", 40);
    pc_digest mine = blob(f, 'm', 100, "docker.io/library/app", 50);

    char man[] = "{\"schemaVersion\":2}";
    pc_manifest_rec rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.repo, sizeof(rec.repo), "team/other");
    assert_int_equal(pc_digest_buffer(&rec.digest, PC_DIGEST_SHA256, man, strlen(man)), 0);
    assert_int_equal(pc_blob_put(f->be, &rec.digest, man, strlen(man)), 0);
    snprintf(rec.media_type, sizeof(rec.media_type), "application/vnd.oci.image.manifest.v1+json");
    rec.size = strlen(man);
    pc_manifest_ref ref = {refd, false};
    assert_int_equal(f->ms->reg->manifest_put(f->ms, &rec, &ref, 1, "v1", NULL), 0);

    pc_evict_stats st;
    assert_int_equal(pc_evict_run(f->reg, UPS, NUPS, 0, false, NULL, NULL, &st), 0);
    assert_int_equal(st.freed, 1);
    assert_int_equal(st.mirrored_bytes, 100);
    assert_false(stored(f, &mine));
    assert_true(stored(f, &pushed));
    assert_true(stored(f, &shared));
    assert_true(stored(f, &lookalike));
    assert_true(stored(f, &single));
    assert_true(stored(f, &refd));
    assert_true(stored(f, &rec.digest));
    uint64_t size;
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "docker.io/library/app", &shared, &size), 0);

    /* a local link appearing after the listing stops the eviction */
    pc_digest late = blob(f, 't', 100, "docker.io/library/app", 60);
    assert_int_equal(f->ms->reg->blob_link(f->ms, "team/app", &late, 100), 0);
    assert_int_equal(
        f->ms->cache->access_evict(f->ms, &late, pc_evict_repo_mirrored, (void *)&RULE),
        PC_EEXISTS);
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "docker.io/library/app", &late, &size), 0);
}

static void test_manifests_stay(void **state)
{
    fixture *f = *state;
    char man[] = "{\"schemaVersion\":2,\"mediaType\":\"x\"}";
    pc_manifest_rec rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.repo, sizeof(rec.repo), "docker.io/library/m");
    assert_int_equal(pc_digest_buffer(&rec.digest, PC_DIGEST_SHA256, man, strlen(man)), 0);
    assert_int_equal(pc_blob_put(f->be, &rec.digest, man, strlen(man)), 0);
    snprintf(rec.media_type, sizeof(rec.media_type), "application/vnd.oci.image.manifest.v1+json");
    rec.size = strlen(man);
    assert_int_equal(f->ms->reg->manifest_put(f->ms, &rec, NULL, 0, "latest", NULL), 0);
    /* a client asked for the manifest through the blobs endpoint */
    assert_int_equal(f->ms->reg->blob_link(f->ms, rec.repo, &rec.digest, rec.size), 0);
    assert_int_equal(f->ms->cache->access_touch(f->ms, &rec.digest, rec.size, 1), 0);
    pc_evict_stats st;
    assert_int_equal(pc_evict_run(f->reg, UPS, NUPS, 0, false, NULL, NULL, &st), 0);
    assert_int_equal(st.freed, 0);
    assert_true(stored(f, &rec.digest));
}

static bool busy_first(const pc_digest *d, void *ctx)
{
    return pc_digest_equal(d, ctx);
}

static void test_busy_skipped_and_dry_run(void **state)
{
    fixture *f = *state;
    pc_digest a = blob(f, 'a', 100, "docker.io/library/x", 1000);
    pc_digest b = blob(f, 'b', 100, "docker.io/library/x", 2000);
    pc_digest c = blob(f, 'c', 100, "docker.io/library/x", 3000);

    pc_evict_stats st;
    assert_int_equal(pc_evict_run(f->reg, UPS, NUPS, 100, true, NULL, NULL, &st), 0);
    assert_int_equal(st.freed, 2);
    assert_int_equal(st.freed_bytes, 200);
    assert_true(stored(f, &a) && stored(f, &b) && stored(f, &c));

    assert_int_equal(pc_evict_run(f->reg, UPS, NUPS, 150, false, busy_first, &a, &st), 0);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.freed, 2);
    assert_true(stored(f, &a));
    assert_false(stored(f, &b));
    assert_false(stored(f, &c));
}

/* The first two candidates, in order, into ctx[0] and ctx[1]. */
static int order_cb(const pc_digest *d, uint64_t size, int64_t last, void *ctx)
{
    pc_digest *want = ctx;
    for (int i = 0; i < 2; i++)
        if (want[i].str[0] == '\0') {
            want[i] = *d;
            return 0;
        }
    return 0;
}

static void test_touch_written_once_a_minute(void **state)
{
    fixture *f = *state;
    pc_digest a = blob(f, 'a', 10, "docker.io/library/x", 1000);
    pc_digest b = blob(f, 'b', 10, "docker.io/library/x", 1010);
    pc_digest got[2];

    /* 30 s later: not written, a stays the oldest */
    assert_int_equal(f->ms->cache->access_touch(f->ms, &a, 10, 1030), 0);
    memset(got, 0, sizeof(got));
    assert_int_equal(
        f->ms->cache->access_lru(f->ms, pc_evict_repo_mirrored, (void *)&RULE, order_cb, got), 0);
    assert_true(pc_digest_equal(&got[0], &a));
    assert_true(pc_digest_equal(&got[1], &b));

    /* 100 s later: written, b is the oldest now */
    assert_int_equal(f->ms->cache->access_touch(f->ms, &a, 10, 1100), 0);
    memset(got, 0, sizeof(got));
    assert_int_equal(
        f->ms->cache->access_lru(f->ms, pc_evict_repo_mirrored, (void *)&RULE, order_cb, got), 0);
    assert_true(pc_digest_equal(&got[0], &b));
    assert_true(pc_digest_equal(&got[1], &a));

    /* the stored time is kept across a reopen (no memory needed) */
    pc_metastore *ms2 = NULL;
    char path[128];
    snprintf(path, sizeof(path), "%s/meta.db", f->dir);
    assert_int_equal(pc_meta_sqlite_open(&ms2, path), 0);
    assert_int_equal(ms2->cache->access_touch(ms2, &b, 10, 1050), 0); /* older: ignored */
    memset(got, 0, sizeof(got));
    assert_int_equal(
        ms2->cache->access_lru(ms2, pc_evict_repo_mirrored, (void *)&RULE, order_cb, got), 0);
    assert_true(pc_digest_equal(&got[0], &b));

    /* another process (pullcache gc) evicts a; the next touch, within the
     * minute, records it again */
    assert_int_equal(ms2->cache->access_evict(ms2, &a, pc_evict_repo_mirrored, (void *)&RULE), 0);
    ms2->free(ms2);
    memset(got, 0, sizeof(got));
    assert_int_equal(
        f->ms->cache->access_lru(f->ms, pc_evict_repo_mirrored, (void *)&RULE, order_cb, got), 0);
    assert_true(pc_digest_equal(&got[0], &b));
    assert_int_equal(got[1].str[0], '\0');
    assert_int_equal(f->ms->cache->access_touch(f->ms, &a, 10, 1110), 0);
    memset(got, 0, sizeof(got));
    assert_int_equal(
        f->ms->cache->access_lru(f->ms, pc_evict_repo_mirrored, (void *)&RULE, order_cb, got), 0);
    assert_true(pc_digest_equal(&got[1], &a));
}

static void test_sweep(void **state)
{
    fixture *f = *state;
    pc_digest linked = blob(f, 'k', 100, "team/app", -1);
    pc_digest orphan = blob(f, 'o', 50, NULL, -1);
    pc_digest mirrored_orphan = blob(f, 'm', 70, NULL, 5);

    pc_gc_stats st;
    /* all are young: nothing goes */
    assert_int_equal(pc_gc_sweep(f->reg, 3600, false, &st), 0);
    assert_int_equal(st.blobs, 3);
    assert_int_equal(st.young, 2);
    assert_int_equal(st.removed, 0);
    /* dry: counted, kept */
    assert_int_equal(pc_gc_sweep(f->reg, 0, true, &st), 0);
    assert_int_equal(st.removed, 2);
    assert_int_equal(st.removed_bytes, 120);
    assert_true(stored(f, &orphan));
    /* grace 0: the unreferenced ones go, with their access records */
    assert_int_equal(pc_gc_sweep(f->reg, 0, false, &st), 0);
    assert_int_equal(st.removed, 2);
    assert_true(stored(f, &linked));
    assert_false(stored(f, &orphan));
    assert_false(stored(f, &mirrored_orphan));
    pc_digest got[2];
    memset(got, 0, sizeof(got));
    assert_int_equal(
        f->ms->cache->access_lru(f->ms, pc_evict_repo_mirrored, (void *)&RULE, order_cb, got), 0);
    assert_int_equal(got[0].str[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lru_down_to_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_never_evicted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifests_stay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_skipped_and_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_written_once_a_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
