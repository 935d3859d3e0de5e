/*
 * range.c - byte ranges: the single-range Range header of blob GETs
 * (RFC 9110 section 14.1.2), the Content-Range header of chunked upload
 * PATCHes, and the strict decimal parser both are built on.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "range.h"

#include <string.h>
#include <strings.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse the digits s[0..len) as a u64: at least one digit, nothing else,
 * no overflow. */
static int parse_u64_n(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return PC_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return PC_EINVAL;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return PC_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int pc_parse_u64(const char *s, uint64_t *out)
{
    if (!s || parse_u64_n(s, strlen(s), out) != 0) {
        pc_error_set("not a decimal number in range: \"%s\"", s ? s : "");
        return PC_EINVAL;
    }
    return 0;
}

/* Split "<a>-<b>" (s[0..len)) at its one '-'; either side may be empty,
 * which is reported through has_a / has_b. */
static int parse_pair(const char *s, size_t len, uint64_t *a, bool *has_a, uint64_t *b, bool *has_b)
{
    const char *dash = memchr(s, '-', len);
    size_t alen, blen;

    if (!dash)
        return PC_EINVAL;
    alen = (size_t)(dash - s);
    blen = len - alen - 1;
    *has_a = alen > 0;
    *has_b = blen > 0;
    if (*has_a && parse_u64_n(s, alen, a) != 0)
        return PC_EINVAL;
    if (*has_b && parse_u64_n(dash + 1, blen, b) != 0)
        return PC_EINVAL;
    return 0;
}

int pc_range_parse(const char *value, uint64_t size, uint64_t *start, uint64_t *end)
{
    uint64_t a = 0, b = 0;
    bool has_a, has_b;
    const char *p;
    size_t len;
    int rc = PC_EINVAL;

    if (!value || strncasecmp(value, "bytes=", 6) != 0) {
        pc_error_set("Range header is not a bytes range");
        goto done;
    }
    p = value + 6;
    if (strchr(p, ',')) {
        pc_error_set("multiple ranges are not supported");
        goto done;
    }
    while (is_ows(*p))
        p++;
    len = strlen(p);
    while (len > 0 && is_ows(p[len - 1]))
        len--;
    if (parse_pair(p, len, &a, &has_a, &b, &has_b) != 0 || (!has_a && !has_b)) {
        pc_error_set("malformed Range header");
        goto done;
    }
    if (has_a && has_b && b < a) {
        pc_error_set("Range header ends before it starts");
        goto done;
    }

    rc = PC_ERANGE;
    if (size == 0) {
        pc_error_set("range not satisfiable for an empty blob");
        goto done;
    }
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0) {
            pc_error_set("range of zero bytes is not satisfiable");
            goto done;
        }
        *start = b >= size ? 0 : size - b;
        *end = size - 1;
        rc = 0;
        goto done;
    }
    if (a >= size) {
        pc_error_set("range starts at %llu, blob has %llu bytes", (unsigned long long)a,
                     (unsigned long long)size);
        goto done;
    }
    *start = a;
    *end = (!has_b || b >= size) ? size - 1 : b;
    rc = 0;
done:
    return rc;
}

int pc_content_range_parse(const char *value, uint64_t *start, uint64_t *end)
{
    uint64_t a = 0, b = 0;
    bool has_a, has_b;
    const char *p = value;
    int rc = PC_EINVAL;

    if (!p) {
        pc_error_set("missing Content-Range");
        goto done;
    }
    if (strncasecmp(p, "bytes", 5) == 0 && (p[5] == ' ' || p[5] == '='))
        p += 6;
    if (parse_pair(p, strlen(p), &a, &has_a, &b, &has_b) != 0 || !has_a || !has_b) {
        pc_error_set("malformed Content-Range \"%s\", want <start>-<end>", value);
        goto done;
    }
    if (b < a) {
        pc_error_set("Content-Range \"%s\" ends before it starts", value);
        goto done;
    }
    if (b == UINT64_MAX) { /* its length, b - a + 1, would not fit in 64 bits */
        pc_error_set("Content-Range \"%s\" is too long", value);
        goto done;
    }
    *start = a;
    *end = b;
    rc = 0;
done:
    return rc;
}
