/*
 * test_base64.c - unit tests for base64.c: the RFC 4648 test vectors in
 * both alphabets, round trips of every byte length up to 70, and the
 * strictness that matters at a trust boundary (padding, alphabet,
 * whitespace, non-canonical final characters).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base64.h"

static void enc(const char *in, size_t len, bool url, const char *want)
{
    char *out = NULL;
    assert_int_equal(pc_base64_encode(in, len, url, &out), 0);
    assert_string_equal(out, want);
    free(out);
}

static void dec(const char *in, bool url, const char *want, size_t want_len)
{
    unsigned char *out = NULL;
    size_t n = 99;
    int rc = pc_base64_decode(in, strlen(in), url, &out, &n);
    if (rc != 0)
        fail_msg("\"%s\" (url %d): rc %d", in, url, rc);
    assert_int_equal(n, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[n], '\0');
    free(out);
}

static void dec_bad(const char *in, size_t len, bool url)
{
    unsigned char *out = (unsigned char *)"x";
    size_t n = 99;
    int rc = pc_base64_decode(in, len, url, &out, &n);
    if (rc != PC_EINVAL)
        fail_msg("\"%.*s\" (url %d): rc %d, want PC_EINVAL", (int)len, in, url, rc);
    assert_null(out);
    assert_int_equal(n, 0);
}

static void test_vectors(void **state)
{
    (void)state;
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        enc(plain[i], strlen(plain[i]), false, std[i]);
        enc(plain[i], strlen(plain[i]), true, url[i]);
        dec(std[i], false, plain[i], strlen(plain[i]));
        dec(url[i], true, plain[i], strlen(plain[i]));
    }
    /* the two characters the alphabets differ in */
    enc("\xfb\xff", 2, false, "+/8=");
    enc("\xfb\xff", 2, true, "-_8");
    dec("+/8=", false, "\xfb\xff", 2);
    dec("-_8", true, "\xfb\xff", 2);
}

static void test_round_trip(void **state)
{
    (void)state;
    unsigned char buf[70];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(buf); len++) {
        for (int url = 0; url < 2; url++) {
            char *s = NULL;
            unsigned char *back = NULL;
            size_t n = 0;
            assert_int_equal(pc_base64_encode(buf, len, url, &s), 0);
            assert_int_equal(pc_base64_decode(s, strlen(s), url, &back, &n), 0);
            assert_int_equal(n, len);
            assert_memory_equal(back, buf, len);
            free(s);
            free(back);
        }
    }
}

static void test_strict(void **state)
{
    (void)state;
    static const char *bad_std[] = {
        "Zg",       /* padding missing */
        "Zg=",      /* length not a multiple of 4 */
        "Z===",     /* three padding characters */
        "====",     /* nothing but padding */
        "Zh==",     /* unused bits set: "Zg==" is the one spelling of "f" */
        "Zm9=",     /* same, one padding character */
        "Zg==Zg==", /* padding in the middle */
        "Zm9v=Zg=", /* padding in the middle */
        " Zg=",     /* whitespace */
        "Zg=\n",    /* newline */
        "Zm9-",     /* URL alphabet in standard base64 */
        "Zm9_",     /* URL alphabet in standard base64 */
        "Zm9v!A==", /* outside every alphabet */
    };
    static const char *bad_url[] = {
        "Zg==",        /* padding is not used */
        "Zg=",         /* padding is not used */
        "Z",           /* no encoding is one character long */
        "Zm9vY", "Zh", /* unused bits set */
        "Zm9",         /* unused bits set */
        "+/8",         /* standard alphabet in base64url */
        "Zm 9v",       /* whitespace */
        "Zm.9v",       /* a JWT's separator is not part of a segment */
    };
    for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++)
        dec_bad(bad_std[i], strlen(bad_std[i]), false);
    for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++)
        dec_bad(bad_url[i], strlen(bad_url[i]), true);
    dec_bad("Zg\0=", 4, false); /* a NUL inside */
    dec_bad("Zm\09", 4, true);
}

static void test_limits(void **state)
{
    (void)state;
    char *s = NULL;
    unsigned char *out = NULL;
    size_t n;
    assert_int_equal(pc_base64_encode("", PC_BASE64_MAX + 1, false, &s), PC_ETOOBIG);
    assert_null(s);
    assert_int_equal(pc_base64_decode("", PC_BASE64_MAX + 1, true, &out, &n), PC_ETOOBIG);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
