/*
 * test_ratelimit.c - unit tests for ratelimit.c: the header forms registries
 * send (Docker Hub's "N;w=S", bare numbers, IETF policy lists, quoted
 * parameters), missing headers, garbage, and Retry-After in both forms.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ratelimit.h"

static void value_ok(const char *v, int64_t number, int64_t window)
{
    int64_t n = -7, w = -7;
    int rc = pc_ratelimit_parse_value(v, &n, &w);
    if (rc != 0 || n != number || w != window)
        fail_msg("\"%s\": rc %d n %lld w %lld, want n %lld w %lld", v, rc, (long long)n,
                 (long long)w, (long long)number, (long long)window);
}

static void value_bad(const char *v)
{
    int64_t n = 0, w = 0;
    pc_error_clear();
    int rc = pc_ratelimit_parse_value(v, &n, &w);
    if (rc != PC_EINVAL)
        fail_msg("\"%s\": rc %d, want PC_EINVAL", v ? v : "(null)", rc);
    assert_true(pc_error_last()[0] != '\0');
}

static void test_value_forms(void **state)
{
    (void)state;
    value_ok("100;w=21600", 100, 21600);
    value_ok("76;w=21600", 76, 21600);
    value_ok("0;w=21600", 0, 21600);
    value_ok("100", 100, -1);
    value_ok("  100 ; w=21600  ", 100, 21600);
    value_ok("100;W=60", 100, 60);
    /* IETF draft: current value first, then policies. */
    value_ok("100, 100;w=60, 1000;w=3600", 100, 60);
    value_ok("1000, 100;w=60, 1000;w=3600", 1000, 3600);
    value_ok("5, 100;w=60", 5, -1);
    /* Unknown parameters, quoted or not, are skipped. */
    value_ok("100;comment=\"a, b; c\";w=3600", 100, 3600);
    value_ok("100;policy=hub;w=30", 100, 30);
    value_ok("100;burst", 100, -1);
    value_ok("9007199254740992;w=1", 9007199254740992LL, 1);
}

static void test_value_garbage(void **state)
{
    (void)state;
    value_bad(NULL);
    value_bad("");
    value_bad("   ");
    value_bad("-1;w=60");
    value_bad("abc");
    value_bad("100;w=");
    value_bad("100;w=x");
    value_bad("100;w=-5");
    value_bad("100 200");
    value_bad("100,");
    value_bad(",100");
    value_bad("100;");
    value_bad("100;=5");
    value_bad("100;c=\"unterminated");
    value_bad("1.5;w=60");
    value_bad("99999999999999999999");
    value_bad("9007199254740993");
    value_bad("1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1");
}

static void test_parse_headers(void **state)
{
    (void)state;
    pc_ratelimit r;
    assert_int_equal(pc_ratelimit_parse("100;w=21600", "76;w=21600", "203.0.113.7", &r), 0);
    assert_int_equal(r.limit, 100);
    assert_int_equal(r.remaining, 76);
    assert_int_equal(r.window, 21600);
    assert_string_equal(r.source, "203.0.113.7");

    /* No headers at all: the registry does not limit this client. */
    assert_int_equal(pc_ratelimit_parse(NULL, "", NULL, &r), PC_ENOTFOUND);
    assert_int_equal(r.limit, -1);
    assert_int_equal(r.remaining, -1);
    assert_int_equal(r.window, -1);
    assert_string_equal(r.source, "");

    /* Only one of the two; the window falls back to the other header. */
    assert_int_equal(pc_ratelimit_parse(NULL, "3;w=60", NULL, &r), 0);
    assert_int_equal(r.limit, -1);
    assert_int_equal(r.remaining, 3);
    assert_int_equal(r.window, 60);
    assert_int_equal(pc_ratelimit_parse("200", NULL, " uuid-1 \r\n", &r), 0);
    assert_int_equal(r.limit, 200);
    assert_int_equal(r.remaining, -1);
    assert_int_equal(r.window, -1);
    assert_string_equal(r.source, "uuid-1");

    /* One garbled header does not spoil the other. */
    assert_int_equal(pc_ratelimit_parse("lots", "7;w=60", NULL, &r), 0);
    assert_int_equal(r.limit, -1);
    assert_int_equal(r.remaining, 7);
    assert_int_equal(pc_ratelimit_parse("garbage", "also garbage", NULL, &r), PC_EINVAL);
    assert_int_equal(r.limit, -1);
    assert_int_equal(r.remaining, -1);

    /* remaining never exceeds limit. */
    assert_int_equal(pc_ratelimit_parse("10;w=60", "500;w=60", NULL, &r), 0);
    assert_int_equal(r.remaining, 10);

    /* A long source is cut, not overflowed. */
    char longsrc[400];
    memset(longsrc, 'a', sizeof(longsrc) - 1);
    longsrc[sizeof(longsrc) - 1] = '\0';
    assert_int_equal(pc_ratelimit_parse("1", "1", longsrc, &r), 0);
    assert_int_equal(strlen(r.source), PC_RATELIMIT_SOURCE_MAX - 1);
}

static void test_retry_after(void **state)
{
    (void)state;
    time_t now = 1784000000; /* 2026-07-14 */
    assert_int_equal(pc_ratelimit_retry_after("120", now), 120);
    assert_int_equal(pc_ratelimit_retry_after(" 0 ", now), 0);
    assert_int_equal(pc_ratelimit_retry_after(NULL, now), -1);
    assert_int_equal(pc_ratelimit_retry_after("", now), -1);
    assert_int_equal(pc_ratelimit_retry_after("-5", now), -1);
    assert_int_equal(pc_ratelimit_retry_after("12abc", now), -1);
    assert_int_equal(pc_ratelimit_retry_after("soon", now), -1);
    /* HTTP date, 90 s after now; and one in the past. */
    assert_int_equal(pc_ratelimit_retry_after("Tue, 14 Jul 2026 03:34:50 GMT", now), 90);
    assert_int_equal(pc_ratelimit_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now), 0);
}

static void test_format(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(pc_ratelimit_format(buf, sizeof(buf), 100, 21600), 11);
    assert_string_equal(buf, "100;w=21600");
    assert_int_equal(pc_ratelimit_format(buf, sizeof(buf), 7, -1), 1);
    assert_string_equal(buf, "7");
    assert_int_equal(pc_ratelimit_format(buf, 5, 100, 21600), PC_ETOOBIG);
    /* What we format, we parse back. */
    int64_t n, w;
    assert_int_equal(pc_ratelimit_format(buf, sizeof(buf), 42, 3600), 9);
    assert_int_equal(pc_ratelimit_parse_value(buf, &n, &w), 0);
    assert_int_equal(n, 42);
    assert_int_equal(w, 3600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_forms),   cmocka_unit_test(test_value_garbage),
        cmocka_unit_test(test_parse_headers), cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
