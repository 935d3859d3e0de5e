/*
 * test_digest.c - unit tests for digest.c: parsing and validation of
 * "alg:hex" digests, known SHA-256/SHA-512 vectors through every way of
 * hashing (buffer, streaming, file descriptor).
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
#include <unistd.h>

#include "digest.h"

#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_MILLION_A "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define SHA512_EMPTY                                                                               \
    "sha512:"                                                                                      \
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318"       \
    "d2877eec2f63b931bd47417a81a538327af927da3e"
#define SHA512_ABC                                                                                 \
    "sha512:"                                                                                      \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c"       \
    "23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

static void test_parse_sha256(void **state)
{
    pc_digest d;
    assert_int_equal(pc_digest_parse(&d, SHA256_EMPTY), 0);
    assert_int_equal(d.alg, PC_DIGEST_SHA256);
    assert_string_equal(d.str, SHA256_EMPTY);
    assert_string_equal(pc_digest_hex(&d), &SHA256_EMPTY[7]);
    assert_string_equal(pc_digest_alg_name(d.alg), "sha256");
}

static void test_parse_sha512(void **state)
{
    pc_digest d;
    assert_int_equal(pc_digest_parse(&d, SHA512_ABC), 0);
    assert_int_equal(d.alg, PC_DIGEST_SHA512);
    assert_string_equal(d.str, SHA512_ABC);
    assert_int_equal(strlen(pc_digest_hex(&d)), 128);
    assert_string_equal(pc_digest_alg_name(d.alg), "sha512");
}

static void test_parse_uppercase_hex(void **state)
{
    pc_digest d;
    char s[] = SHA256_ABC;
    for (char *p = s + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    pc_error_clear();
    assert_int_equal(pc_digest_parse(&d, s), PC_EINVAL);
    assert_true(pc_error_last()[0] != '\0');

    /* One uppercase letter is enough. */
    char one[] = SHA256_ABC;
    one[7] = 'B';
    assert_int_equal(pc_digest_parse(&d, one), PC_EINVAL);
}

static void test_parse_wrong_length(void **state)
{
    pc_digest d;
    char s[200];

    /* 63 and 65 hex characters. */
    snprintf(s, sizeof(s), "%.*s", (int)strlen(SHA256_ABC) - 1, SHA256_ABC);
    assert_int_equal(pc_digest_parse(&d, s), PC_EINVAL);
    snprintf(s, sizeof(s), "%s0", SHA256_ABC);
    assert_int_equal(pc_digest_parse(&d, s), PC_EINVAL);
    /* A sha256 hex under the sha512 name and the other way round. */
    snprintf(s, sizeof(s), "sha512:%s", &SHA256_ABC[7]);
    assert_int_equal(pc_digest_parse(&d, s), PC_EINVAL);
    snprintf(s, sizeof(s), "sha256:%s", &SHA512_ABC[7]);
    assert_int_equal(pc_digest_parse(&d, s), PC_EINVAL);
    /* Empty hex. */
    assert_int_equal(pc_digest_parse(&d, "sha256:"), PC_EINVAL);
}

static void test_parse_not_hex(void **state)
{
    pc_digest d;
    char s[] = SHA256_ABC;
    s[10] = 'g';
    assert_int_equal(pc_digest_parse(&d, s), PC_EINVAL);
    char t[] = SHA256_ABC;
    t[10] = '=';
    assert_int_equal(pc_digest_parse(&d, t), PC_EINVAL);
    char sp[100];
    snprintf(sp, sizeof(sp), "%s ", SHA256_ABC);
    assert_int_equal(pc_digest_parse(&d, sp), PC_EINVAL);
    snprintf(sp, sizeof(sp), " %s", SHA256_ABC);
    assert_int_equal(pc_digest_parse(&d, sp), PC_EINVAL);
}

static void test_parse_unknown_algorithm(void **state)
{
    pc_digest d;
    pc_error_clear();
    assert_int_equal(pc_digest_parse(&d, "md5:d41d8cd98f00b204e9800998ecf8427e"), PC_ENOTSUP);
    assert_true(pc_error_last()[0] != '\0');
    assert_int_equal(pc_digest_parse(&d, "sha384:abc"), PC_ENOTSUP);
    assert_int_equal(pc_digest_parse(&d, "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
                     PC_ENOTSUP);
    assert_int_equal(
        pc_digest_parse(&d, "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
        PC_ENOTSUP);
}

static void test_parse_malformed(void **state)
{
    pc_digest d;
    const char *bad[] = {
        "",
        "sha256",
        ":e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256::e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha-:abc",
        "-sha:abc",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pc_digest_parse(&d, bad[i]) != PC_EINVAL)
            fail_msg("digest \"%s\" should be PC_EINVAL", bad[i]);
    }
    assert_int_equal(pc_digest_parse(&d, NULL), PC_EINVAL);

    /* A very long string is refused without reading past its end. */
    size_t n = 100000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memcpy(big, "sha256:", 7);
    memset(big + 7, 'a', n - 7);
    big[n] = '\0';
    assert_int_equal(pc_digest_parse(&d, big), PC_EINVAL);
    free(big);
}

static void test_equal(void **state)
{
    pc_digest a, b, c, e;
    assert_int_equal(pc_digest_parse(&a, SHA256_ABC), 0);
    assert_int_equal(pc_digest_parse(&b, SHA256_ABC), 0);
    assert_int_equal(pc_digest_parse(&c, SHA256_EMPTY), 0);
    assert_int_equal(pc_digest_parse(&e, SHA512_ABC), 0);
    assert_true(pc_digest_equal(&a, &b));
    assert_false(pc_digest_equal(&a, &c));
    assert_false(pc_digest_equal(&a, &e));
}

static void test_buffer_vectors(void **state)
{
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, "", 0), 0);
    assert_string_equal(d.str, SHA256_EMPTY);
    assert_int_equal(d.alg, PC_DIGEST_SHA256);
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, "abc", 3), 0);
    assert_string_equal(d.str, SHA256_ABC);
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA512, "", 0), 0);
    assert_string_equal(d.str, SHA512_EMPTY);
    assert_int_equal(d.alg, PC_DIGEST_SHA512);
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA512, "abc", 3), 0);
    assert_string_equal(d.str, SHA512_ABC);

    /* What the hasher produces parses back to itself. */
    pc_digest p;
    assert_int_equal(pc_digest_parse(&p, d.str), 0);
    assert_true(pc_digest_equal(&p, &d));
}

static void test_hasher_streaming(void **state)
{
    size_t n = 1000000;
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, 'a', n);

    /* Uneven chunk sizes, including empty updates. */
    pc_hasher *h = NULL;
    pc_digest d;
    assert_int_equal(pc_hasher_new(&h, PC_DIGEST_SHA256), 0);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = step < n - off ? step : n - off;
        assert_int_equal(pc_hasher_update(h, buf + off, k), 0);
        assert_int_equal(pc_hasher_update(h, buf + off, 0), 0);
        off += k;
        step = step * 3 + 1;
    }
    assert_int_equal(pc_hasher_final(h, &d), 0);
    pc_hasher_free(h);
    assert_string_equal(d.str, SHA256_MILLION_A);

    pc_digest whole;
    assert_int_equal(pc_digest_buffer(&whole, PC_DIGEST_SHA256, buf, n), 0);
    assert_true(pc_digest_equal(&whole, &d));
    free(buf);

    /* An empty stream. */
    assert_int_equal(pc_hasher_new(&h, PC_DIGEST_SHA512), 0);
    assert_int_equal(pc_hasher_final(h, &d), 0);
    pc_hasher_free(h);
    assert_string_equal(d.str, SHA512_EMPTY);

    pc_hasher_free(NULL);
}

static void test_fd(void **state)
{
    char path[] = "/tmp/pc_test_digest_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);

    pc_digest d;
    assert_int_equal(pc_digest_fd(&d, PC_DIGEST_SHA256, fd), 0);
    assert_string_equal(d.str, SHA256_EMPTY);

    assert_int_equal(write(fd, "abc", 3), 3);
    /* The position is at the end; pc_digest_fd hashes from 0 and leaves it there. */
    assert_int_equal(pc_digest_fd(&d, PC_DIGEST_SHA256, fd), 0);
    assert_string_equal(d.str, SHA256_ABC);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
    assert_int_equal(pc_digest_fd(&d, PC_DIGEST_SHA512, fd), 0);
    assert_string_equal(d.str, SHA512_ABC);

    /* Bigger than the internal buffer. */
    assert_int_equal(ftruncate(fd, 0), 0);
    size_t n = 1000000;
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, 'a', n);
    assert_int_equal(pwrite(fd, buf, n, 0), (ssize_t)n);
    free(buf);
    assert_int_equal(pc_digest_fd(&d, PC_DIGEST_SHA256, fd), 0);
    assert_string_equal(d.str, SHA256_MILLION_A);
    close(fd);

    /* A closed descriptor is an I/O failure. */
    pc_error_clear();
    assert_int_equal(pc_digest_fd(&d, PC_DIGEST_SHA256, fd), PC_ERR);
    assert_true(pc_error_last()[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sha256),
        cmocka_unit_test(test_parse_sha512),
        cmocka_unit_test(test_parse_uppercase_hex),
        cmocka_unit_test(test_parse_wrong_length),
        cmocka_unit_test(test_parse_not_hex),
        cmocka_unit_test(test_parse_unknown_algorithm),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_buffer_vectors),
        cmocka_unit_test(test_hasher_streaming),
        cmocka_unit_test(test_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
