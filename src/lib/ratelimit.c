/*
 * ratelimit.c - parsing of ratelimit-limit / ratelimit-remaining /
 * docker-ratelimit-source / Retry-After header values (see ratelimit.h).
 *
 * Grammar accepted for one header value (whitespace allowed around tokens):
 *   list  = item *( "," item )
 *   item  = number *( ";" name [ "=" ( token | quoted-string ) ] )
 * Only the "w" parameter means something (window seconds); others are
 * skipped. Anything else is refused as a whole: a budget we misread is
 * worse than one we admit we could not read.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "ratelimit.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define RL_NUM_MAX ((int64_t)1 << 53)
#define RL_ITEMS_MAX 16

typedef struct {
    int64_t number;
    int64_t window;
} rl_item;

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A non-negative decimal number of at most 2^53. */
static const char *parse_num(const char *p, int64_t *out)
{
    if (!isdigit((unsigned char)*p))
        return NULL;
    int64_t v = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        if (v > RL_NUM_MAX)
            return NULL;
        p++;
    }
    *out = v;
    return p;
}

static bool is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* One parameter after ';': name[=value]. Sets *window for "w". */
static const char *parse_param(const char *p, int64_t *window)
{
    const char *name = p;
    while (is_tchar(*p))
        p++;
    size_t nlen = (size_t)(p - name);
    if (nlen == 0)
        return NULL;
    p = skip_ws(p);
    if (*p != '=')
        return p; /* a bare flag */
    p = skip_ws(p + 1);
    if (nlen == 1 && (name[0] == 'w' || name[0] == 'W')) {
        int64_t w;
        p = parse_num(p, &w);
        if (!p)
            return NULL;
        *window = w;
        return p;
    }
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
                p++;
        if (*p != '"')
            return NULL;
        return p + 1;
    }
    const char *v = p;
    while (is_tchar(*p))
        p++;
    return p > v ? p : NULL;
}

static int parse_items(const char *value, rl_item *items, size_t *n)
{
    const char *p = value;
    *n = 0;
    for (;;) {
        if (*n == RL_ITEMS_MAX)
            return PC_EINVAL;
        rl_item *it = &items[(*n)++];
        it->window = -1;
        p = parse_num(skip_ws(p), &it->number);
        if (!p)
            return PC_EINVAL;
        p = skip_ws(p);
        while (*p == ';') {
            p = parse_param(skip_ws(p + 1), &it->window);
            if (!p)
                return PC_EINVAL;
            p = skip_ws(p);
        }
        if (*p == '\0')
            return 0;
        if (*p != ',')
            return PC_EINVAL;
        p++;
    }
}

int pc_ratelimit_parse_value(const char *value, int64_t *number, int64_t *window)
{
    rl_item items[RL_ITEMS_MAX];
    size_t n = 0;
    if (!value || parse_items(value, items, &n) != 0) {
        pc_error_set("malformed rate limit header value \"%.64s\"", value ? value : "");
        return PC_EINVAL;
    }
    *number = items[0].number;
    *window = items[0].window;
    for (size_t i = 1; i < n && *window < 0; i++)
        if (items[i].number == items[0].number)
            *window = items[i].window;
    return 0;
}

static bool present(const char *s)
{
    return s && *skip_ws(s);
}

int pc_ratelimit_parse(const char *limit, const char *remaining, const char *source,
                       pc_ratelimit *out)
{
    int64_t lw = -1, rw = -1;
    out->limit = out->remaining = out->window = -1;
    out->source[0] = '\0';
    if (present(source)) {
        const char *s = skip_ws(source);
        size_t len = strcspn(s, "\r\n");
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len >= sizeof(out->source))
            len = sizeof(out->source) - 1;
        memcpy(out->source, s, len);
        out->source[len] = '\0';
    }
    if (!present(limit) && !present(remaining)) {
        pc_error_set("no rate limit headers");
        return PC_ENOTFOUND;
    }
    if (present(limit) && pc_ratelimit_parse_value(limit, &out->limit, &lw) != 0)
        out->limit = -1;
    if (present(remaining) && pc_ratelimit_parse_value(remaining, &out->remaining, &rw) != 0)
        out->remaining = -1;
    if (out->limit < 0 && out->remaining < 0) {
        pc_error_set("rate limit headers could not be read (limit \"%.40s\", remaining \"%.40s\")",
                     limit ? limit : "", remaining ? remaining : "");
        return PC_EINVAL;
    }
    out->window = out->limit >= 0 && lw >= 0 ? lw : rw;
    if (out->limit >= 0 && out->remaining > out->limit)
        out->remaining = out->limit;
    return 0;
}

int64_t pc_ratelimit_retry_after(const char *value, time_t now)
{
    if (!present(value))
        return -1;
    const char *p = skip_ws(value);
    int64_t secs;
    const char *end = parse_num(p, &secs);
    if (end) {
        end = skip_ws(end);
        return *end == '\0' || *end == '\r' || *end == '\n' ? secs : -1;
    }
    time_t t = curl_getdate(p, NULL);
    if (t == (time_t)-1)
        return -1;
    return t > now ? (int64_t)(t - now) : 0;
}

int pc_ratelimit_format(char *buf, size_t size, int64_t n, int64_t window)
{
    int len = window >= 0 ? snprintf(buf, size, "%lld;w=%lld", (long long)n, (long long)window)
                          : snprintf(buf, size, "%lld", (long long)n);
    if (len < 0 || (size_t)len >= size)
        return PC_ETOOBIG;
    return len;
}
