/*
 * test_copy.c - unit tests for the pure parts of the copy engine and the
 * push client: the back-off schedule (growth, cap, jitter bounds,
 * Retry-After), which failures are retried, oci:DIR[:TAG] splitting, the
 * layout index.json lookup, the referrers tag name, and Link header
 * pagination.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "copy.h"
#include "testutil.h"

static void test_backoff(void **state)
{
    (void)state;
    /* jitter 0 gives the lower bound (half), the largest jitter the full step */
    assert_int_equal(250, pc_copy_backoff_ms(0, 500, 30000, -1, 0));
    assert_int_equal(500, pc_copy_backoff_ms(0, 500, 30000, -1, 250));
    assert_int_equal(500, pc_copy_backoff_ms(1, 500, 30000, -1, 0));
    assert_int_equal(1000, pc_copy_backoff_ms(2, 500, 30000, -1, 0));
    assert_int_equal(15000, pc_copy_backoff_ms(10, 500, 30000, -1, 0)); /* capped */
    assert_int_equal(15000, pc_copy_backoff_ms(60, 500, 30000, -1, 0)); /* no overflow */
    for (uint32_t r = 0; r < 5000; r += 7) {
        uint64_t ms = pc_copy_backoff_ms(3, 500, 30000, -1, r);
        assert_true(ms >= 2000 && ms <= 4000);
    }
    /* Retry-After is a floor, never shortened */
    assert_int_equal(7000, pc_copy_backoff_ms(0, 500, 30000, 7, 0));
    assert_int_equal(1000, pc_copy_backoff_ms(2, 500, 30000, 0, 0));
}

static void test_retryable(void **state)
{
    (void)state;
    assert_true(pc_copy_retryable(PC_UP_TOO_MANY));
    assert_true(pc_copy_retryable(PC_UP_SERVER));
    assert_true(pc_copy_retryable(PC_UP_TIMEOUT));
    assert_true(pc_copy_retryable(PC_UP_REFUSED));
    assert_true(pc_copy_retryable(PC_UP_RESET));
    assert_false(pc_copy_retryable(PC_UP_NOT_FOUND));
    assert_false(pc_copy_retryable(PC_UP_DENIED));
    assert_false(pc_copy_retryable(PC_UP_CLIENT));
    assert_false(pc_copy_retryable(PC_UP_TLS));
    assert_false(pc_copy_retryable(PC_UP_OK));
}

static void split_ok(const char *s, const char *dir, const char *tag)
{
    char d[256], t[130];
    assert_int_equal(0, pc_copy_layout_split(s, d, sizeof(d), t, sizeof(t)));
    assert_string_equal(dir, d);
    assert_string_equal(tag, t);
}

static void test_layout_split(void **state)
{
    (void)state;
    char d[256], t[130];
    split_ok("./img:1.0", "./img", "1.0");
    split_ok("/tmp/img", "/tmp/img", "");
    split_ok("/tmp/a:b/img", "/tmp/a:b/img", ""); /* a ':' inside the path */
    split_ok("img:v1-alpine_2", "img", "v1-alpine_2");
    split_ok("img:", "img:", ""); /* an empty tag is no tag */
    assert_int_equal(PC_EINVAL, pc_copy_layout_split("", d, sizeof(d), t, sizeof(t)));
    assert_int_equal(PC_EINVAL, pc_copy_layout_split(":tag", d, sizeof(d), t, sizeof(t)));
}

static void test_layout_lookup(void **state)
{
    (void)state;
    char dir[64], file[128];
    pc_pull_desc d;
    assert_non_null(pc_test_tmpdir(dir, sizeof(dir), "copy"));
    snprintf(file, sizeof(file), "%s/index.json", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("{\"schemaVersion\":2,\"manifests\":["
          "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":10,"
          "\"annotations\":{\"org.opencontainers.image.ref.name\":\"one\"}},"
          "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":"
          "\"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"size\":20,"
          "\"annotations\":{\"org.opencontainers.image.ref.name\":\"two\"}}]}",
          f);
    fclose(f);
    assert_int_equal(0, pc_copy_layout_lookup(dir, "two", &d));
    assert_int_equal(20, d.size);
    assert_string_equal("application/vnd.docker.distribution.manifest.v2+json", d.media_type);
    assert_int_equal(PC_ENOTFOUND, pc_copy_layout_lookup(dir, "three", &d));
    assert_non_null(strstr(pc_error_last(), "one, two"));
    assert_int_equal(PC_EINVAL, pc_copy_layout_lookup(dir, NULL, &d)); /* two images: name one */
    assert_int_equal(PC_EINVAL, pc_copy_layout_lookup("/nonexistent", "x", &d));
    pc_test_rmtree(dir);
}

static void test_referrers_tag(void **state)
{
    (void)state;
    pc_digest d;
    char tag[80];
    assert_int_equal(0, pc_digest_parse(&d, "sha256:0123456789abcdef0123456789abcdef0123456789"
                                            "abcdef0123456789abcdef"));
    pc_upstream_referrers_tag(&d, tag, sizeof(tag));
    assert_string_equal("sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        tag);
}

static void test_link_next(void **state)
{
    (void)state;
    char *url = NULL;
    const char *base = "http://r.example:5000/v2/a/tags/list?n=2";
    assert_int_equal(
        0, pc_upstream_link_next(base, "</v2/a/tags/list?last=b&n=2>; rel=\"next\"", &url));
    assert_string_equal("http://r.example:5000/v2/a/tags/list?last=b&n=2", url);
    free(url);
    assert_int_equal(
        0, pc_upstream_link_next(base,
                                 "<https://x.example/p?q=1>; rel=\"prev\", <https://x.example/n>; "
                                 "REL=next",
                                 &url));
    assert_string_equal("https://x.example/n", url);
    free(url);
    assert_int_equal(PC_ENOTFOUND,
                     pc_upstream_link_next(base, "</v2/a/tags/list?last=b>; rel=\"prev\"", &url));
    assert_int_equal(PC_EINVAL, pc_upstream_link_next(base, "no brackets; rel=next", &url));
    assert_int_equal(PC_EINVAL, pc_upstream_link_next(base, "<ftp://x/y>; rel=next", &url));
    assert_null(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),       cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_layout_split),  cmocka_unit_test(test_layout_lookup),
        cmocka_unit_test(test_referrers_tag), cmocka_unit_test(test_link_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
