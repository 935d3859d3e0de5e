/*
 * test_loadgen.c - unit tests for loadgen.c: nearest-rank percentiles, a
 * Docker-Hub-like budget (100 manifest GETs, then 429) hit by 120 pulls from
 * an in-process source, failures tallied by key, several images, a node
 * never running two pulls at once, --duration and the stop flag, bad
 * options.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "loadgen.h"
#include "pull_memsource.h"

static void test_percentile(void **state)
{
    (void)state;
    double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_true(pc_loadgen_percentile(v, 0, 50) == 0);
    assert_true(pc_loadgen_percentile(v, 1, 99) == 1);
    assert_true(pc_loadgen_percentile(v, 10, 50) == 5);
    assert_true(pc_loadgen_percentile(v, 10, 95) == 10);
    assert_true(pc_loadgen_percentile(v, 10, 90) == 9);
    assert_true(pc_loadgen_percentile(v, 10, 10) == 1);
    assert_true(pc_loadgen_percentile(v, 10, 11) == 2);
    assert_true(pc_loadgen_percentile(v, 10, 100) == 10);
    assert_true(pc_loadgen_percentile(v, 4, 50) == 2);
    assert_true(pc_loadgen_percentile(v, 3, 50) == 2);
}

typedef struct {
    memsrc s;
    pc_pull_source src;
    uint64_t bytes;
} world;

static void world_init(world *w)
{
    ms_init(&w->s);
    ms_source(&w->s, &w->src);
    ms_add_image(&w->s, "v1", "linux", "amd64", NULL, 1, NULL, NULL, &w->bytes);
}

static pc_loadgen_opts opts(const pc_loadgen_image *im, size_t n, unsigned nodes, unsigned ppn,
                            unsigned conc)
{
    pc_loadgen_opts o = {
        .images = im, .nimages = n, .nodes = nodes, .pulls_per_node = ppn, .concurrency = conc};
    return o;
}

static void test_budget(void **state)
{
    (void)state;
    world w;
    pc_loadgen_result r;
    world_init(&w);
    w.s.budget = 100;
    pc_loadgen_image im = {.src = &w.src, .repo = "library/test", .reference = "v1"};
    pc_loadgen_opts o = opts(&im, 1, 4, 30, 4);
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.end, PC_LOADGEN_COUNT);
    assert_int_equal(r.planned, 120);
    assert_int_equal(r.started, 120);
    assert_int_equal(r.ok, 100);
    assert_int_equal(r.failed, 20);
    assert_int_equal(r.canceled, 0);
    assert_int_equal(r.nfailures, 1);
    assert_string_equal(r.failures[0].key, "429 TOOMANYREQUESTS");
    assert_string_equal(r.failures[0].code, "TOOMANYREQUESTS");
    assert_int_equal(r.failures[0].status, 429);
    assert_int_equal(r.failures[0].count, 20);
    assert_non_null(strstr(r.failures[0].example, "pull rate limit"));
    assert_int_equal(r.nlatencies, 100);
    assert_int_equal(r.bytes, 100 * w.bytes);
    assert_int_equal(r.manifests, 120);
    assert_int_equal(w.s.manifest_gets, 120);
    assert_int_equal(w.s.blob_gets, 300);
    assert_true(r.p50 <= r.p95 && r.p95 <= r.p99 && r.p99 <= r.max);
    for (size_t i = 1; i < r.nlatencies; i++)
        assert_true(r.latencies[i - 1] <= r.latencies[i]);
    pc_loadgen_result_clear(&r);

    /* manifests only */
    w.s.budget = 10;
    o.manifest_only = true;
    int blobs = w.s.blob_gets;
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.ok, 10);
    assert_int_equal(r.failed, 110);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(w.s.blob_gets, blobs);
    pc_loadgen_result_clear(&r);
    ms_free(&w.s);
}

static void test_images_and_keys(void **state)
{
    (void)state;
    world w;
    pc_loadgen_result r;
    world_init(&w);
    pc_loadgen_image im[] = {
        {.src = &w.src, .repo = "library/test", .reference = "v1"},
        {.src = &w.src, .repo = "library/test", .reference = "missing"},
    };
    pc_loadgen_opts o = opts(im, 2, 2, 3, 8);
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.planned, 12);
    assert_int_equal(r.ok, 6);
    assert_int_equal(r.failed, 6);
    assert_int_equal(r.nfailures, 1);
    assert_string_equal(r.failures[0].key, "404 MANIFEST_UNKNOWN");
    assert_int_equal(r.failures[0].count, 6);
    pc_loadgen_result_clear(&r);
    ms_free(&w.s);
}

/* A node runs one pull at a time; C bounds the pulls in flight. */
static void test_bounds(void **state)
{
    (void)state;
    world w;
    pc_loadgen_result r;
    world_init(&w);
    w.s.manifest_delay_us = 5000;
    pc_loadgen_image im = {.src = &w.src, .repo = "library/test", .reference = "v1"};
    pc_loadgen_opts o = opts(&im, 1, 1, 10, 8);
    o.manifest_only = true;
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.ok, 10);
    assert_int_equal(w.s.max_in_flight, 1);
    pc_loadgen_result_clear(&r);
    w.s.max_in_flight = 0;
    o = opts(&im, 1, 6, 4, 3);
    o.manifest_only = true;
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.ok, 24);
    assert_true(w.s.max_in_flight <= 3);
    assert_true(w.s.max_in_flight >= 1);
    pc_loadgen_result_clear(&r);
    ms_free(&w.s);
}

static void test_stop(void **state)
{
    (void)state;
    world w;
    pc_loadgen_result r;
    world_init(&w);
    w.s.chunk_delay_us = 2000; /* about 20 ms per pull */
    pc_loadgen_image im = {.src = &w.src, .repo = "library/test", .reference = "v1"};

    /* a time limit ends a run that would take hours */
    pc_loadgen_opts o = opts(&im, 1, 2, 1000000, 2);
    o.duration = 0.3;
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.end, PC_LOADGEN_DURATION);
    assert_true(r.started < r.planned);
    assert_int_equal(r.failed, 0);
    assert_int_equal(r.ok + r.canceled, r.started);
    pc_loadgen_result_clear(&r);

    /* so does the stop flag */
    atomic_bool stop;
    atomic_init(&stop, true);
    o.duration = 0;
    o.stop = &stop;
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.end, PC_LOADGEN_STOPPED);
    assert_true(r.started <= 2);
    assert_int_equal(r.ok + r.canceled + r.failed, r.started);
    pc_loadgen_result_clear(&r);
    ms_free(&w.s);
}

static void note_moving(const pc_loadgen_result *sofar, void *ctx)
{
    bool *saw = ctx;
    if (sofar->ok == 0 && sofar->bytes_moving > 0)
        *saw = true;
}

/* The ticks see a pull's bytes as they arrive, not only once it ends. */
static void test_bytes_moving(void **state)
{
    (void)state;
    world w;
    pc_loadgen_result r;
    bool saw = false;
    world_init(&w);
    w.s.chunk_delay_us = 100000; /* a 1000-byte chunk every 0.1 s: a pull spans many ticks */
    pc_loadgen_image im = {.src = &w.src, .repo = "library/test", .reference = "v1"};
    pc_loadgen_opts o = opts(&im, 1, 1, 1, 1);
    o.on_tick = note_moving;
    o.tick_ctx = &saw;
    assert_int_equal(pc_loadgen_run(&o, &r), 0);
    assert_int_equal(r.ok, 1);
    assert_true(saw);
    assert_int_equal(r.bytes_moving, 0);
    assert_int_equal(r.bytes, w.bytes);
    pc_loadgen_result_clear(&r);
    ms_free(&w.s);
}

static void test_bad_options(void **state)
{
    (void)state;
    pc_loadgen_result r;
    pc_pull_source src = {0};
    pc_loadgen_image im = {.src = &src, .repo = "a", .reference = "b"};
    pc_loadgen_opts o = opts(&im, 1, 0, 1, 1);
    assert_int_equal(pc_loadgen_run(&o, &r), PC_EINVAL);
    o = opts(&im, 1, 1, 0, 1);
    assert_int_equal(pc_loadgen_run(&o, &r), PC_EINVAL);
    o = opts(&im, 1, 1, 1, 0);
    assert_int_equal(pc_loadgen_run(&o, &r), PC_EINVAL);
    o = opts(&im, 0, 1, 1, 1);
    assert_int_equal(pc_loadgen_run(&o, &r), PC_EINVAL);
    im.src = NULL;
    o = opts(&im, 1, 1, 1, 1);
    assert_int_equal(pc_loadgen_run(&o, &r), PC_EINVAL);
    assert_true(pc_error_last()[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_images_and_keys),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_bytes_moving),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
