/*
 * test_endpoint.c - unit tests for endpoint.c: scheme prefixes split off
 * references, and which hosts are loopback (Docker's insecure registries).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "endpoint.h"

static void test_scheme_split(void **state)
{
    (void)state;
    pc_endpoint_scheme sc;
    assert_string_equal(pc_endpoint_scheme_split("http://127.0.0.1:5000/a", &sc),
                        "127.0.0.1:5000/a");
    assert_int_equal(sc, PC_ENDPOINT_SCHEME_HTTP);
    assert_string_equal(pc_endpoint_scheme_split("HTTPS://ghcr.io/o/a:v1", &sc), "ghcr.io/o/a:v1");
    assert_int_equal(sc, PC_ENDPOINT_SCHEME_HTTPS);
    assert_string_equal(pc_endpoint_scheme_split("docker.io/library/nginx", &sc),
                        "docker.io/library/nginx");
    assert_int_equal(sc, PC_ENDPOINT_SCHEME_NONE);
    /* not a scheme: left alone (the reference parser refuses it) */
    assert_string_equal(pc_endpoint_scheme_split("ftp://h/a", &sc), "ftp://h/a");
    assert_int_equal(sc, PC_ENDPOINT_SCHEME_NONE);
    assert_string_equal(pc_endpoint_scheme_split("http:/h/a", &sc), "http:/h/a");
    assert_int_equal(sc, PC_ENDPOINT_SCHEME_NONE);
    assert_string_equal(pc_endpoint_scheme_split("http://", &sc), "");
    assert_int_equal(sc, PC_ENDPOINT_SCHEME_HTTP);
}

static void test_loopback(void **state)
{
    (void)state;
    static const char *const yes[] = {"127.0.0.1:5000", "127.0.0.1",   "127.255.3.4:1", "localhost",
                                      "localhost:5000", "LOCALHOST:1", "[::1]:5000",    "[::1]"};
    static const char *const no[] = {"128.0.0.1:5000",
                                     "10.0.0.5:5000",
                                     "docker.io",
                                     "localhost.example.com",
                                     "127.example.com",
                                     "[::2]:5000",
                                     "[::1",
                                     "1.127.0.0",
                                     "",
                                     "[]:1",
                                     "192.0.2.10:5002"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!pc_endpoint_loopback(yes[i]))
            fail_msg("%s is loopback", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (pc_endpoint_loopback(no[i]))
            fail_msg("%s is not loopback", no[i]);
}

static void test_env_name(void **state)
{
    (void)state;
    const char *good[] = {"HUB_PASSWORD", "_x", "a1", "A"};
    const char *bad[] = {"", "1A", "A-B", "A B", "$A", "A=1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(pc_endpoint_env_name_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(pc_endpoint_env_name_valid(bad[i]));
    assert_false(pc_endpoint_env_name_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheme_split),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_env_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
