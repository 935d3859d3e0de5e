/*
 * ref.c - repository names, tags and image references: hand-written
 * scanners for the OCI distribution spec's name and tag grammar, and the
 * parser for references as users type them ("nginx", "ghcr.io/o/a:v1",
 * "localhost:5000/app@sha256:...") with Docker's defaults.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "ref.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_HOST "docker.io"
#define LEGACY_HOST "index.docker.io"
#define DEFAULT_TAG "latest"
#define OFFICIAL_PREFIX "library/"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Each path component is [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*; components
 * are joined by single slashes. The scanner alternates between "an
 * alphanumeric run is required here" and "a run just ended". */
bool pc_ref_name_valid_n(const char *s, size_t len)
{
    size_t i = 0;

    if (!s || len == 0 || len > PC_NAME_MAX)
        return false;
    for (;;) {
        if (i >= len || !is_lower_alnum(s[i]))
            return false;
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == len)
            return true;
        switch (s[i]) {
        case '/':
        case '.':
            i++;
            break;
        case '_':
            i++;
            if (i < len && s[i] == '_')
                i++;
            break;
        case '-':
            while (i < len && s[i] == '-')
                i++;
            break;
        default:
            return false;
        }
    }
}

bool pc_ref_name_valid(const char *s)
{
    if (!s)
        return false;
    return pc_ref_name_valid_n(s, strnlen(s, PC_NAME_MAX + 1));
}

bool pc_ref_tag_valid(const char *s)
{
    size_t i;

    if (!s || !(is_alnum(s[0]) || s[0] == '_'))
        return false;
    for (i = 1; s[i]; i++) {
        if (i >= PC_TAG_MAX)
            return false;
        if (!(is_alnum(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    }
    return true;
}

/* A registry host as Docker accepts it: DNS labels of [a-zA-Z0-9-] that
 * neither start nor end with '-', joined by '.', or a bracketed IPv6
 * address; then an optional ":port" of digits. */
static bool host_valid(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0 || len >= PC_HOST_MAX)
        return false;
    if (s[0] == '[') {
        for (i = 1; i < len && s[i] != ']'; i++)
            if (!(is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F') ||
                  s[i] == ':'))
                return false;
        if (i >= len || i == 1)
            return false;
        i++;
    } else {
        for (;;) {
            size_t start = i;
            if (i >= len || !is_alnum(s[i]))
                return false;
            while (i < len && (is_alnum(s[i]) || s[i] == '-'))
                i++;
            if (s[i - 1] == '-' || i - start > 63)
                return false;
            if (i < len && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i == len)
        return true;
    if (s[i] != ':' || i + 1 == len)
        return false;
    for (i++; i < len; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

bool pc_ref_host_like(const char *s, size_t len)
{
    if (len == 9 && memcmp(s, "localhost", 9) == 0)
        return true;
    return memchr(s, '.', len) != NULL || memchr(s, ':', len) != NULL;
}

static bool name_has_upper(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            return true;
    return false;
}

int pc_ref_parse(pc_ref *out, const char *s)
{
    const char *at, *slash, *name, *colon, *name_end;
    size_t rest_len, host_len, name_len;
    int rc = PC_EINVAL;

    memset(out, 0, sizeof(*out));
    if (!s || !*s) {
        pc_error_set("empty image reference");
        goto done;
    }

    /* "@digest" at the end. */
    at = strchr(s, '@');
    rest_len = at ? (size_t)(at - s) : strlen(s);
    if (at) {
        if (pc_digest_parse(&out->digest, at + 1) != 0) {
            pc_error_set("invalid digest in reference \"%s\"", s);
            goto done;
        }
        out->has_digest = true;
    }

    /* "host/" when the first component looks like one. */
    slash = memchr(s, '/', rest_len);
    if (slash && pc_ref_host_like(s, (size_t)(slash - s))) {
        host_len = (size_t)(slash - s);
        if (!host_valid(s, host_len)) {
            pc_error_set("invalid registry host in reference \"%s\"", s);
            goto done;
        }
        if (host_len == strlen(LEGACY_HOST) && memcmp(s, LEGACY_HOST, host_len) == 0)
            snprintf(out->host, sizeof(out->host), "%s", DEFAULT_HOST);
        else
            snprintf(out->host, sizeof(out->host), "%.*s", (int)host_len, s);
        name = slash + 1;
    } else {
        snprintf(out->host, sizeof(out->host), "%s", DEFAULT_HOST);
        name = s;
    }

    /* ":tag" after the name (names never contain ':'). */
    colon = memchr(name, ':', rest_len - (size_t)(name - s));
    name_end = colon ? colon : s + rest_len;
    name_len = (size_t)(name_end - name);
    if (colon) {
        size_t tag_len = (size_t)(s + rest_len - (colon + 1));
        if (tag_len == 0 || tag_len > PC_TAG_MAX) {
            pc_error_set("invalid tag in reference \"%s\"", s);
            goto done;
        }
        memcpy(out->tag, colon + 1, tag_len);
        out->tag[tag_len] = '\0';
        if (!pc_ref_tag_valid(out->tag)) {
            pc_error_set("invalid tag in reference \"%s\"", s);
            goto done;
        }
    }

    /* The repository name, with "library/" for official Docker Hub images. */
    if (name_has_upper(name, name_len)) {
        pc_error_set("repository name must be lowercase in reference \"%s\"", s);
        goto done;
    }
    if (!pc_ref_name_valid_n(name, name_len)) {
        pc_error_set("invalid repository name in reference \"%s\"", s);
        goto done;
    }
    if (strcmp(out->host, DEFAULT_HOST) == 0 && !memchr(name, '/', name_len)) {
        if (name_len + strlen(OFFICIAL_PREFIX) > PC_NAME_MAX) {
            pc_error_set("repository name too long in reference \"%s\"", s);
            goto done;
        }
        snprintf(out->name, sizeof(out->name), "%s%.*s", OFFICIAL_PREFIX, (int)name_len, name);
    } else {
        memcpy(out->name, name, name_len);
        out->name[name_len] = '\0';
    }

    if (!colon && !at)
        snprintf(out->tag, sizeof(out->tag), "%s", DEFAULT_TAG);
    rc = 0;
done:
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int pc_ref_format(const pc_ref *r, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s%s%s%s%s", r->host, r->name, r->tag[0] ? ":" : "", r->tag,
                     r->has_digest ? "@" : "", r->has_digest ? r->digest.str : "");
    if (n < 0 || (size_t)n >= size) {
        pc_error_set("image reference does not fit in %zu bytes", size);
        return PC_ETOOBIG;
    }
    return n;
}
