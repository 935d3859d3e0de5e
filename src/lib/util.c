/*
 * util.c - the small shared helpers of util.h: clocks, write-all, hex
 * digits, random ids, a URL's host, the growable string buffer.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "util.h"
#include "pc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

/* ---- clocks ---- */

int64_t pc_util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double pc_util_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t pc_util_now_s(void)
{
    return (int64_t)time(NULL);
}

int64_t pc_util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- I/O ---- */

int pc_util_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            pc_error_set("write failed: %s", strerror(e));
            errno = e;
            return pc_result_from_errno(e);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- hex and ids ---- */

static const char hexdigits[] = "0123456789abcdef";

int pc_util_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool pc_util_is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void hex_of(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        *out++ = hexdigits[b[i] >> 4];
        *out++ = hexdigits[b[i] & 15];
    }
    *out = '\0';
}

int pc_util_random_hex(char *out, size_t n, const char *what)
{
    unsigned char b[64];
    if (n > sizeof(b)) {
        pc_error_set("%s: %zu random bytes asked, at most %zu", what, n, sizeof(b));
        return PC_ERR;
    }
    if (RAND_bytes(b, (int)n) != 1) {
        pc_error_set("no randomness for %s", what);
        return PC_ERR;
    }
    hex_of(b, n, out);
    return 0;
}

int pc_util_uuid4(char out[PC_UTIL_UUID_LEN + 1], const char *what)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        pc_error_set("no randomness for %s", what);
        return PC_ERR;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hexdigits[b[i] >> 4];
        *p++ = hexdigits[b[i] & 15];
    }
    *p = '\0';
    return 0;
}

/* ---- URLs ---- */

void pc_util_url_host(const char *url, char *host, size_t size)
{
    if (!size)
        return;
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    if (n >= size)
        n = size - 1;
    memcpy(host, p, n);
    host[n] = '\0';
}

/* ---- a growable string ---- */

/* Room for n more bytes and the NUL. */
static bool buf_room(pc_buf *b, size_t n)
{
    if (b->nomem)
        return false;
    if (n >= SIZE_MAX / 2 - b->len) {
        b->nomem = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
        b->nomem = true;
        return false;
    }
    b->s = p;
    b->cap = cap;
    return true;
}

void pc_buf_add(pc_buf *b, const void *data, size_t n)
{
    if (!buf_room(b, n))
        return;
    if (n)
        memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void pc_buf_str(pc_buf *b, const char *s)
{
    pc_buf_add(b, s, strlen(s));
}

void pc_buf_vprintf(pc_buf *b, const char *fmt, va_list ap)
{
    if (b->nomem)
        return;
    va_list again;
    va_copy(again, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n < 0) {
        b->nomem = true;
    } else if ((size_t)n < sizeof(small)) {
        pc_buf_add(b, small, (size_t)n);
    } else if (buf_room(b, (size_t)n)) {
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void pc_buf_printf(pc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pc_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *pc_buf_take(pc_buf *b)
{
    if (!b->nomem && !b->s)
        pc_buf_add(b, "", 0);
    char *s = b->nomem ? NULL : b->s;
    if (!s)
        free(b->s);
    *b = (pc_buf){0};
    return s;
}

void pc_buf_free(pc_buf *b)
{
    free(b->s);
    *b = (pc_buf){0};
}
