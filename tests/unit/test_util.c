/*
 * test_util.c - unit tests for util.c: the clocks move the right way,
 * write-all through a pipe (short writes) and its failure code, hex digits
 * of both cases and nothing else, random hex ids and version 4 UUIDs
 * (shape, variant bits, two never equal), a URL's host in every spelling
 * the config accepts, and the growable buffer (appends, printf past the
 * small-buffer size, take and reset, the empty take).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pc.h"
#include "util.h"

static void clocks(void **state)
{
    (void)state;
    int64_t a = pc_util_mono_ms();
    double s = pc_util_mono_s();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_true(pc_util_mono_ms() >= a + 20);
    assert_true(pc_util_mono_s() >= s + 0.02);
    int64_t now = pc_util_now_s(), t = (int64_t)time(NULL);
    assert_true(now <= t && now >= t - 1);
}

static void write_all(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    /* larger than a pipe buffer: the writer goes on after short writes */
    size_t len = 200000;
    char *buf = malloc(len), *back = malloc(len);
    assert_non_null(buf);
    assert_non_null(back);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(i * 7);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        _exit(pc_util_write_all(p[1], buf, len) == 0 ? 0 : 1);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], back + got, len - got)) > 0)
        got += (size_t)n;
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    assert_int_equal(got, len);
    assert_memory_equal(buf, back, len);
    /* a bad fd: the code, a message, and errno of the write */
    assert_int_equal(pc_util_write_all(-1, "x", 1), PC_ERR);
    assert_int_equal(errno, EBADF);
    assert_non_null(strstr(pc_error_last(), "write failed"));
    /* nothing to write is no write at all */
    assert_int_equal(pc_util_write_all(-1, "", 0), 0);
    free(buf);
    free(back);
}

static void hex(void **state)
{
    (void)state;
    const char *d = "0123456789abcdef", *u = "ABCDEF";
    for (int i = 0; i < 16; i++)
        assert_int_equal(pc_util_hexval(d[i]), i);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pc_util_hexval(u[i]), 10 + i);
    const char *bad = "gG/:@`\0 -x";
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(pc_util_hexval(bad[i]), -1);
    assert_true(pc_util_is_lower_hex("0af9", 4));
    assert_false(pc_util_is_lower_hex("0aF9", 4));
    assert_false(pc_util_is_lower_hex("0ag9", 4));
    assert_true(pc_util_is_lower_hex("0ag9", 2)); /* only n bytes are read */
    assert_true(pc_util_is_lower_hex("", 0));
}

static void ids(void **state)
{
    (void)state;
    char a[33], b[33];
    assert_int_equal(pc_util_random_hex(a, 16, "a test id"), 0);
    assert_int_equal(pc_util_random_hex(b, 16, "a test id"), 0);
    assert_int_equal(strlen(a), 32);
    assert_true(pc_util_is_lower_hex(a, 32));
    assert_string_not_equal(a, b);
    char big[200];
    assert_int_equal(pc_util_random_hex(big, 65, "too long an id"), PC_ERR);
    assert_non_null(strstr(pc_error_last(), "too long an id"));

    char u[PC_UTIL_UUID_LEN + 1], v[PC_UTIL_UUID_LEN + 1];
    assert_int_equal(pc_util_uuid4(u, "an upload id"), 0);
    assert_int_equal(pc_util_uuid4(v, "an upload id"), 0);
    assert_int_equal(strlen(u), PC_UTIL_UUID_LEN);
    assert_string_not_equal(u, v);
    for (int i = 0; i < PC_UTIL_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else
            assert_true(pc_util_is_lower_hex(&u[i], 1));
    }
    assert_int_equal(u[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
}

static void url_host(void **state)
{
    (void)state;
    char h[32];
    pc_util_url_host("https://registry-1.docker.io", h, sizeof(h));
    assert_string_equal(h, "registry-1.docker.io");
    pc_util_url_host("http://127.0.0.1:5000/v2/", h, sizeof(h));
    assert_string_equal(h, "127.0.0.1:5000");
    pc_util_url_host("http://[::1]:8080?x=1", h, sizeof(h));
    assert_string_equal(h, "[::1]:8080");
    pc_util_url_host("http://h#frag", h, sizeof(h));
    assert_string_equal(h, "h");
    pc_util_url_host("quay.io/path", h, sizeof(h));
    assert_string_equal(h, "quay.io");
    pc_util_url_host("https://", h, sizeof(h));
    assert_string_equal(h, "");
    char small[5];
    pc_util_url_host("https://abcdefgh/x", small, sizeof(small));
    assert_string_equal(small, "abcd"); /* truncated, still terminated */
}

static void buffer(void **state)
{
    (void)state;
    pc_buf b = {0};
    char *s = pc_buf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, ""); /* nothing appended: "" */
    free(s);

    pc_buf_str(&b, "ab");
    pc_buf_add(&b, "cdef", 2);
    pc_buf_printf(&b, "-%d-%s", 42, "x");
    assert_string_equal(b.s, "abcd-42-x");
    assert_int_equal(b.len, 9);
    /* longer than the small buffer pc_buf_printf formats into first */
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pc_buf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, 9 + 2 + 999);
    assert_int_equal(b.s[b.len - 1], ']');
    assert_int_equal(b.s[b.len], '\0');
    /* many small appends grow it */
    for (int i = 0; i < 10000; i++)
        pc_buf_add(&b, "0123456789", 10);
    assert_int_equal(b.len, 1010 + 100000);
    assert_int_equal(strlen(b.s), b.len);
    s = pc_buf_take(&b);
    assert_non_null(s);
    assert_null(b.s); /* reset: the text is the caller's */
    assert_int_equal(b.len, 0);
    assert_memory_equal(s, "abcd-42-x[zz", 12);
    free(s);

    /* a failed allocation sticks: appends do nothing, take gives NULL */
    pc_buf_str(&b, "kept?");
    b.nomem = true;
    pc_buf_str(&b, "more");
    assert_string_equal(b.s, "kept?");
    assert_null(pc_buf_take(&b));
    assert_false(b.nomem);

    pc_buf_str(&b, "gone");
    pc_buf_free(&b);
    assert_null(b.s);
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clocks), cmocka_unit_test(write_all), cmocka_unit_test(hex),
        cmocka_unit_test(ids),    cmocka_unit_test(url_host),  cmocka_unit_test(buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
