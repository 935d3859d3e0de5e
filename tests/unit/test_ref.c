/*
 * test_ref.c - unit tests for ref.c: the distribution spec's name and tag
 * grammar at its edges, and image references with Docker's defaults.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ref.h"

#define DGST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_name_valid(void **state)
{
    const char *good[] = {
        "a",
        "0",
        "ab",
        "a/b",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a---b",
        "library/nginx",
        "my-org/my.app_v2/sub__dir/x-y",
        "a0/b1/c2/d3",
        "1.2.3",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!pc_ref_name_valid(good[i]))
            fail_msg("name \"%s\" should be valid", good[i]);
}

static void test_name_invalid(void **state)
{
    const char *bad[] = {
        "",     "A",    "Nginx", "a/B",  ".a",   "a.",   "_a",   "a_", "-a",     "a-",    "a___b",
        "a_-b", "a-_b", "a._b",  "a..b", "a.-b", "a//b", "/a",   "a/", "a/../b", "a/./b", "a/.b",
        "a b",  "a:b",  "a@b",   "a+b",  "a\tb", "a/-b", "a/_b", "ä",  "a/b/",   "//",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pc_ref_name_valid(bad[i]))
            fail_msg("name \"%s\" should be invalid", bad[i]);
    assert_false(pc_ref_name_valid(NULL));
}

static void test_name_length(void **state)
{
    char s[400];

    memset(s, 'a', 255);
    s[255] = '\0';
    assert_true(pc_ref_name_valid(s));
    memset(s, 'a', 256);
    s[256] = '\0';
    assert_false(pc_ref_name_valid(s));
    memset(s, 'a', 399);
    s[399] = '\0';
    assert_false(pc_ref_name_valid(s));

    /* 255 with components: "aaa/aaa/.../a" */
    for (size_t i = 0; i < 255; i++)
        s[i] = (i % 4 == 3) ? '/' : 'a';
    s[254] = 'b';
    s[255] = '\0';
    assert_true(pc_ref_name_valid(s));
    s[255] = 'c';
    s[256] = '\0';
    assert_false(pc_ref_name_valid(s));
}

static void test_name_valid_n(void **state)
{
    /* Only the first len bytes count. */
    assert_true(pc_ref_name_valid_n("library/nginx/manifests/latest", 13));
    assert_false(pc_ref_name_valid_n("library/nginx/manifests/latest", 14)); /* trailing '/' */
    assert_true(pc_ref_name_valid_n("a.", 1));
    assert_false(pc_ref_name_valid_n("a.", 2));
    assert_false(pc_ref_name_valid_n("abc", 0));
    assert_false(pc_ref_name_valid_n(NULL, 3));
    /* An embedded NUL inside len is not a name character. */
    assert_false(pc_ref_name_valid_n("ab\0cd", 5));

    char s[300];
    memset(s, 'a', sizeof(s));
    assert_true(pc_ref_name_valid_n(s, 255));
    assert_false(pc_ref_name_valid_n(s, 256));
}

static void test_tag(void **state)
{
    const char *good[] = {"latest", "v1.2.3",  "_",    "_x",  "A",  "Z9",
                          "1",      "a-b_c.D", "a..b", "a--", "x.", "sha256-abc"};
    /* ".INVALID_MANIFEST_NAME": the OCI conformance suite's unknown manifest */
    const char *bad[] = {"",    ".a",  "-a",  "a:b", "a/b",
                         "a@b", "a b", "a+b", "ä",   ".INVALID_MANIFEST_NAME"};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!pc_ref_tag_valid(good[i]))
            fail_msg("tag \"%s\" should be valid", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pc_ref_tag_valid(bad[i]))
            fail_msg("tag \"%s\" should be invalid", bad[i]);
    assert_false(pc_ref_tag_valid(NULL));

    char s[200];
    memset(s, 'x', 128);
    s[128] = '\0';
    assert_true(pc_ref_tag_valid(s));
    s[128] = 'x';
    s[129] = '\0';
    assert_false(pc_ref_tag_valid(s));
}

/* Parse s and compare with the expected fields; digest NULL for none. */
static void check_ref(const char *s, const char *host, const char *name, const char *tag,
                      const char *digest)
{
    pc_ref r;
    if (pc_ref_parse(&r, s) != 0)
        fail_msg("reference \"%s\" should parse: %s", s, pc_error_last());
    assert_string_equal(r.host, host);
    assert_string_equal(r.name, name);
    assert_string_equal(r.tag, tag);
    assert_int_equal(r.has_digest, digest != NULL);
    if (digest)
        assert_string_equal(r.digest.str, digest);
}

static void test_parse_docker_defaults(void **state)
{
    check_ref("nginx", "docker.io", "library/nginx", "latest", NULL);
    check_ref("nginx:1.25", "docker.io", "library/nginx", "1.25", NULL);
    check_ref("bitnami/redis", "docker.io", "bitnami/redis", "latest", NULL);
    check_ref("docker.io/nginx", "docker.io", "library/nginx", "latest", NULL);
    check_ref("docker.io/library/nginx:alpine", "docker.io", "library/nginx", "alpine", NULL);
    check_ref("index.docker.io/nginx", "docker.io", "library/nginx", "latest", NULL);
    check_ref("a/b/c:t", "docker.io", "a/b/c", "t", NULL);
}

static void test_parse_hosts(void **state)
{
    check_ref("ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1", NULL);
    check_ref("quay.io/x", "quay.io", "x", "latest", NULL); /* no library/ off Docker Hub */
    check_ref("localhost/app", "localhost", "app", "latest", NULL);
    check_ref("localhost:5000/app:dev", "localhost:5000", "app", "dev", NULL);
    check_ref("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", NULL);
    check_ref("registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", NULL);
    check_ref("[::1]:5000/app", "[::1]:5000", "app", "latest", NULL);
    check_ref("Registry.Example.COM/app", "Registry.Example.COM", "app", "latest", NULL);
    /* "localhost" without a slash is a name, and ":5000" its tag. */
    check_ref("localhost:5000", "docker.io", "library/localhost", "5000", NULL);
    /* A first component without '.', ':' or "localhost" is part of the name. */
    check_ref("myhost/app", "docker.io", "myhost/app", "latest", NULL);
}

static void test_parse_digests(void **state)
{
    check_ref("nginx@" DGST, "docker.io", "library/nginx", "", DGST);
    check_ref("nginx:1.25@" DGST, "docker.io", "library/nginx", "1.25", DGST);
    check_ref("localhost:5000/app@" DGST, "localhost:5000", "app", "", DGST);
    check_ref("ghcr.io/o/a:v@" DGST, "ghcr.io", "o/a", "v", DGST);
}

static void test_parse_invalid(void **state)
{
    const char *bad[] = {
        "",
        "Nginx",
        "docker.io/Library/nginx",
        "ghcr.io/Org/app",
        "nginx:",
        "nginx:.x",
        "nginx:-x",
        "nginx:a:b",
        "nginx@",
        "nginx@sha256:abc",
        "nginx@md5:d41d8cd98f00b204e9800998ecf8427e",
        ("nginx@" DGST "@" DGST), /* (): one string, not a missing comma */
        ("@" DGST),
        ":tag",
        "/nginx",
        "nginx/",
        "a//b",
        "a/../b",
        "ghcr.io/",
        "ghcr.io//app",
        "-bad.io/app",
        "bad-.io/app",
        "host..io/app",
        "host.io:/app",
        "host.io:50a/app",
        "[::1/app",
        "[]:5000/app",
        "localhost:5000/",
        "nginx latest",
    };
    pc_ref r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pc_error_clear();
        if (pc_ref_parse(&r, bad[i]) != PC_EINVAL)
            fail_msg("reference \"%s\" should be PC_EINVAL", bad[i]);
        if (!pc_error_last()[0])
            fail_msg("reference \"%s\": no error message", bad[i]);
    }
    assert_int_equal(pc_ref_parse(&r, NULL), PC_EINVAL);
}

static void test_parse_lengths(void **state)
{
    char s[600], name[300];
    pc_ref r;

    /* 255-character names: fine with a host, too long once "library/" is added. */
    memset(name, 'a', 255);
    name[255] = '\0';
    snprintf(s, sizeof(s), "ghcr.io/%s", name);
    assert_int_equal(pc_ref_parse(&r, s), 0);
    assert_int_equal(strlen(r.name), 255);
    assert_int_equal(pc_ref_parse(&r, name), PC_EINVAL);
    name[247] = '\0'; /* 247 + "library/" = 255 */
    assert_int_equal(pc_ref_parse(&r, name), 0);
    assert_int_equal(strlen(r.name), 255);
    name[247] = 'a';
    name[248] = '\0';
    assert_int_equal(pc_ref_parse(&r, name), PC_EINVAL);

    memset(name, 'a', 256);
    name[256] = '\0';
    snprintf(s, sizeof(s), "ghcr.io/%s", name);
    assert_int_equal(pc_ref_parse(&r, s), PC_EINVAL);

    /* Tags: 128 fine, 129 not. */
    char tag[200];
    memset(tag, 't', 128);
    tag[128] = '\0';
    snprintf(s, sizeof(s), "app:%s", tag);
    assert_int_equal(pc_ref_parse(&r, s), 0);
    assert_string_equal(r.tag, tag);
    snprintf(s, sizeof(s), "app:%st", tag);
    assert_int_equal(pc_ref_parse(&r, s), PC_EINVAL);

    /* A host that does not fit. */
    char host[400];
    for (size_t i = 0; i < 299; i++)
        host[i] = (i % 10 == 9) ? '.' : 'h';
    host[299] = '\0';
    snprintf(s, sizeof(s), "%s/app", host);
    assert_int_equal(pc_ref_parse(&r, s), PC_EINVAL);
}

static void test_format(void **state)
{
    pc_ref r;
    char buf[600];

    assert_int_equal(pc_ref_parse(&r, "nginx"), 0);
    assert_int_equal(pc_ref_format(&r, buf, sizeof(buf)),
                     (int)strlen("docker.io/library/nginx:latest"));
    assert_string_equal(buf, "docker.io/library/nginx:latest");

    assert_int_equal(pc_ref_parse(&r, "localhost:5000/app@" DGST), 0);
    assert_true(pc_ref_format(&r, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "localhost:5000/app@" DGST);

    assert_int_equal(pc_ref_parse(&r, "ghcr.io/o/a:v1@" DGST), 0);
    assert_true(pc_ref_format(&r, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "ghcr.io/o/a:v1@" DGST);

    /* Round trip: the formatted form parses to the same reference. */
    pc_ref again;
    assert_int_equal(pc_ref_parse(&again, buf), 0);
    assert_string_equal(again.host, r.host);
    assert_string_equal(again.name, r.name);
    assert_string_equal(again.tag, r.tag);
    assert_true(again.has_digest && pc_digest_equal(&again.digest, &r.digest));

    /* Too small: exactly the length is one short of room for the NUL. */
    assert_int_equal(pc_ref_parse(&r, "nginx"), 0);
    size_t n = strlen("docker.io/library/nginx:latest");
    assert_int_equal(pc_ref_format(&r, buf, n), PC_ETOOBIG);
    assert_int_equal(pc_ref_format(&r, buf, n + 1), (int)n);
    assert_int_equal(pc_ref_format(&r, buf, 0), PC_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),    cmocka_unit_test(test_name_invalid),
        cmocka_unit_test(test_name_length),   cmocka_unit_test(test_name_valid_n),
        cmocka_unit_test(test_tag),           cmocka_unit_test(test_parse_docker_defaults),
        cmocka_unit_test(test_parse_hosts),   cmocka_unit_test(test_parse_digests),
        cmocka_unit_test(test_parse_invalid), cmocka_unit_test(test_parse_lengths),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
