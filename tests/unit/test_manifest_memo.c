/*
 * test_manifest_memo.c - unit tests for manifest_memo.c: only bytes that
 * hash to their digest and are small enough are kept, a get hands out a
 * copy, and a colliding or later put replaces an entry.
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
#include <cmocka.h>

#include "manifest_memo.h"

static pc_digest digest_of(const void *buf, size_t len)
{
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, buf, len), 0);
    return d;
}

static void test_kept_when_it_hashes_right(void **state)
{
    (void)state;
    const char m[] = "{\"schemaVersion\":2,\"memo\":1}";
    pc_digest d = digest_of(m, sizeof(m) - 1);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(pc_manifest_memo_get(&d, &buf, &len), PC_ENOTFOUND);
    pc_manifest_memo_put(&d, m, sizeof(m) - 1);
    assert_int_equal(pc_manifest_memo_get(&d, &buf, &len), 0);
    assert_int_equal(len, sizeof(m) - 1);
    assert_memory_equal(buf, m, len);
    memset(buf, 'x', len); /* the caller's copy: the entry is not touched */
    free(buf);
    assert_int_equal(pc_manifest_memo_get(&d, &buf, &len), 0);
    assert_memory_equal(buf, m, len);
    free(buf);
}

static void test_wrong_bytes_never_kept(void **state)
{
    (void)state;
    const char m[] = "{\"schemaVersion\":2,\"memo\":2}";
    const char other[] = "{\"schemaVersion\":2,\"memo\":3}";
    pc_digest d = digest_of(m, sizeof(m) - 1);
    pc_manifest_memo_put(&d, other, sizeof(other) - 1);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(pc_manifest_memo_get(&d, &buf, &len), PC_ENOTFOUND);
}

static void test_big_not_kept(void **state)
{
    (void)state;
    size_t n = 64 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '{', n);
    pc_digest d = digest_of(big, n);
    pc_manifest_memo_put(&d, big, n);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(pc_manifest_memo_get(&d, &buf, &len), PC_ENOTFOUND);
    free(big);
}

static void test_many_entries(void **state)
{
    (void)state;
    /* more digests than slots: every get is either the right bytes or a miss */
    char m[64];
    int hits = 0;
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(m, sizeof(m), "{\"n\":%d}", i);
        pc_digest d = digest_of(m, (size_t)n);
        pc_manifest_memo_put(&d, m, (size_t)n);
    }
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(m, sizeof(m), "{\"n\":%d}", i);
        pc_digest d = digest_of(m, (size_t)n);
        void *buf = NULL;
        size_t len = 0;
        int rc = pc_manifest_memo_get(&d, &buf, &len);
        if (rc == PC_ENOTFOUND)
            continue;
        assert_int_equal(rc, 0);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(buf, m, len);
        free(buf);
        hits++;
    }
    assert_true(hits > 0);
    assert_true(hits <= 512);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kept_when_it_hashes_right),
        cmocka_unit_test(test_wrong_bytes_never_kept),
        cmocka_unit_test(test_big_not_kept),
        cmocka_unit_test(test_many_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
