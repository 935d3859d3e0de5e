/*
 * util.h - the small helpers every module needs and none owns: clocks,
 * writing a whole buffer, hex digits, random ids, a URL's host and a
 * growable string buffer. One copy each (they used to be pasted per file).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_UTIL_H
#define PC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- clocks ---- */

/* Monotonic time (CLOCK_MONOTONIC) in milliseconds and in seconds: for
 * durations and deadlines, never for dates. */
int64_t pc_util_mono_ms(void);
double pc_util_mono_s(void);
/* Wall-clock time in unix seconds (what is stored and shown). */
int64_t pc_util_now_s(void);
/* Wall-clock time in unix milliseconds (lease expiries shared by processes). */
int64_t pc_util_now_ms(void);

/* ---- I/O ---- */

/* Write all len bytes of buf to fd, going on after EINTR and short
 * writes. 0, or the result code for the failed write's errno
 * (pc_result_from_errno) with a message set; errno stays that write's. */
int pc_util_write_all(int fd, const void *buf, size_t len);

/* ---- hex and ids ---- */

/* The value of hex digit c (either case), -1 when c is none. */
int pc_util_hexval(char c);
/* Whether the n bytes at s are all lower-case hex digits. */
bool pc_util_is_lower_hex(const char *s, size_t n);
/* n random bytes (OpenSSL's RAND_bytes) as 2n lower-case hex digits and a
 * NUL into out (2n + 1 bytes). 0, or PC_ERR (message set: what for). */
int pc_util_random_hex(char *out, size_t n, const char *what);
/* A random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", and
 * a NUL into out (37 bytes). 0, or PC_ERR (message set: what for). */
#define PC_UTIL_UUID_LEN 36
int pc_util_uuid4(char out[PC_UTIL_UUID_LEN + 1], const char *what);

/* ---- URLs ---- */

/* The authority (host[:port]) of url ("https://h:5000/p" -> "h:5000"; a
 * url without "://" is taken as starting with it) into host, truncated to
 * size - 1 bytes. */
void pc_util_url_host(const char *url, char *host, size_t size);

/* ---- a growable string ---- */

/* Zero-initialise ({0}); append; take the text. Appends after a failed
 * allocation do nothing and the failure sticks (nomem), so a builder
 * checks once, at the end. s is NUL-terminated whenever it is not NULL. */
typedef struct {
    char *s;
    size_t len, cap;
    bool nomem;
} pc_buf;

void pc_buf_add(pc_buf *b, const void *data, size_t n);
void pc_buf_str(pc_buf *b, const char *s);
void pc_buf_printf(pc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pc_buf_vprintf(pc_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The text, the caller's to free ("" for nothing appended), the buffer
 * reset; NULL (and freed) when an allocation failed. */
char *pc_buf_take(pc_buf *b);
/* Free the text and reset the buffer. */
void pc_buf_free(pc_buf *b);

#endif
