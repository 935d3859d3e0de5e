/*
 * upstream_resp.c - reading one upstream response into a pc_upstream_resp:
 * the status line, the headers the callers use (digest, media type,
 * Content-Length, the ratelimit headers, Retry-After, Location and
 * WWW-Authenticate), and the body: a 2xx body streamed to the caller or
 * kept up to a limit, an error body kept up to 64 KiB. These are curl's
 * header and write callbacks; every status line starts a new hop, so only
 * the final response of a redirect chain is left in the pc_upstream_resp.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "upstream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void pc_up_resp_init(pc_upstream_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->cls = PC_UP_PROTOCOL;
    r->content_length = -1;
}

void pc_upstream_resp_clear(pc_upstream_resp *r)
{
    if (!r)
        return;
    free(r->body);
    pc_up_resp_init(r);
}

void pc_up_resp_msg(pc_upstream_resp *r, const char *msg)
{
    snprintf(r->error_message, sizeof(r->error_message), "%s", msg);
}

/* Copy a header value of n bytes into dst (size bytes) only if it fits. */
static void copy_field(char *dst, size_t size, const char *v, size_t n)
{
    if (n >= size)
        n = 0;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

void pc_up_hop_reset(pc_up_xfer *x)
{
    pc_upstream_resp *r = x->resp;
    r->status = 0;
    r->digest[0] = r->media_type[0] = '\0';
    r->ratelimit_limit[0] = r->ratelimit_remaining[0] = r->ratelimit_source[0] = '\0';
    r->retry_after[0] = '\0';
    r->range[0] = r->oci_subject[0] = r->link[0] = r->upload_uuid[0] = '\0';
    r->content_length = -1;
    free(r->body); /* a body belongs to the final response only */
    r->body = NULL;
    r->body_len = 0;
    x->body_cap = 0;
    free(x->location);
    free(x->www_auth);
    x->location = x->www_auth = NULL;
    x->received = 0;
    x->other_bytes = 0;
    x->body_cut = false;
    x->headers_done = false;
}

static bool body_append(pc_up_xfer *x, const char *buf, size_t len)
{
    pc_upstream_resp *r = x->resp;
    if (r->body_len + len + 1 > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb) {
            x->nomem = true;
            return false;
        }
        r->body = nb;
        x->body_cap = cap;
    }
    memcpy(r->body + r->body_len, buf, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return true;
}

#define RESP_FIELD(hname, f)                                                                       \
    {                                                                                              \
        hname, offsetof(pc_upstream_resp, f), sizeof(((pc_upstream_resp *)0)->f)                   \
    }

static const struct {
    const char *name;
    size_t off;
    size_t size;
} resp_headers[] = {
    RESP_FIELD("docker-content-digest", digest),
    RESP_FIELD("content-type", media_type),
    RESP_FIELD("ratelimit-limit", ratelimit_limit),
    RESP_FIELD("ratelimit-remaining", ratelimit_remaining),
    RESP_FIELD("docker-ratelimit-source", ratelimit_source),
    RESP_FIELD("retry-after", retry_after),
    RESP_FIELD("range", range),
    RESP_FIELD("oci-subject", oci_subject),
    RESP_FIELD("link", link),
    RESP_FIELD("docker-upload-uuid", upload_uuid),
};

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static char *mem_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* "type/subtype; charset=utf-8" -> "type/subtype", in place. */
static void strip_params(char *mt)
{
    char *semi = strchr(mt, ';');
    if (semi)
        *semi = '\0';
    size_t n = strlen(mt);
    while (n > 0 && (mt[n - 1] == ' ' || mt[n - 1] == '\t'))
        mt[--n] = '\0';
}

/* One header line of the current hop (curl calls this per line). */
static void header_field(pc_up_xfer *x, const char *name, size_t nlen, const char *v, size_t vlen)
{
    pc_upstream_resp *r = x->resp;
    for (size_t i = 0; i < sizeof(resp_headers) / sizeof(resp_headers[0]); i++) {
        if (name_is(name, nlen, resp_headers[i].name)) {
            copy_field((char *)r + resp_headers[i].off, resp_headers[i].size, v, vlen);
            if (resp_headers[i].off == offsetof(pc_upstream_resp, media_type))
                strip_params(r->media_type);
            return;
        }
    }
    if (name_is(name, nlen, "content-length")) {
        char num[24];
        copy_field(num, sizeof(num), v, vlen);
        char *end = NULL;
        long long cl = num[0] >= '0' && num[0] <= '9' ? strtoll(num, &end, 10) : -1;
        r->content_length = (end && *end == '\0' && cl >= 0) ? (int64_t)cl : -1;
    } else if (name_is(name, nlen, "location") && !x->location) {
        x->location = mem_dup(v, vlen);
        x->nomem = x->nomem || !x->location;
    } else if (name_is(name, nlen, "www-authenticate")) {
        /* several challenges: prefer Bearer */
        bool bearer = vlen >= 6 && strncasecmp(v, "bearer", 6) == 0;
        if (!x->www_auth || (bearer && strncasecmp(x->www_auth, "bearer", 6) != 0)) {
            free(x->www_auth);
            x->www_auth = mem_dup(v, vlen);
            x->nomem = x->nomem || !x->www_auth;
        }
    }
}

size_t pc_up_on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    pc_up_xfer *x = ud;
    pc_upstream_resp *r = x->resp;
    size_t len = size * nitems;
    size_t end = len;
    while (end > 0 && (buf[end - 1] == '\r' || buf[end - 1] == '\n'))
        end--;

    if (end >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a status line: a new response */
        pc_up_hop_reset(x);
        const char *sp = memchr(buf, ' ', end);
        long st = 0;
        for (size_t i = sp ? (size_t)(sp - buf) + 1 : end; i < end && st < 100; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                break;
            st = st * 10 + (buf[i] - '0');
        }
        r->status = st;
        return len;
    }
    if (x->headers_done) /* trailers */
        return len;
    if (end == 0) { /* the blank line that ends the header block */
        x->headers_done = true;
        if (r->status >= 200 && r->status < 300 && x->on_start && !x->started) {
            x->started = true;
            r->cls = PC_UP_OK;
            if (x->on_start(r, x->ctx) != 0) {
                x->aborted = true;
                return 0;
            }
        }
        return len;
    }
    const char *colon = memchr(buf, ':', end);
    if (!colon)
        return len;
    const char *v = colon + 1;
    const char *vend = buf + end;
    while (v < vend && (*v == ' ' || *v == '\t'))
        v++;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
        vend--;
    header_field(x, buf, (size_t)(colon - buf), v, (size_t)(vend - v));
    return x->nomem ? 0 : len;
}

size_t pc_up_on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    pc_up_xfer *x = ud;
    size_t len = size * nmemb;
    long st = x->resp->status;
    if (st >= 200 && st < 300) {
        x->received += (int64_t)len;
        if (x->on_data) {
            if (x->on_data(buf, len, x->ctx) != 0) {
                x->aborted = true;
                return 0;
            }
            return len;
        }
        if (x->resp->body_len + len > x->ok_max) {
            x->too_big = true;
            return 0;
        }
        return body_append(x, buf, len) ? len : 0;
    }
    /* a redirect's body is dropped, an error body's first PC_UP_ERRBODY_MAX
     * bytes kept; either ends there (x->body_cut), so a body without end
     * cannot hold the transfer */
    x->other_bytes += len;
    if (st >= 300 && st < 400) {
        if (x->other_bytes > PC_UP_ERRBODY_MAX) {
            x->body_cut = true;
            return 0;
        }
        return len;
    }
    size_t have = x->resp->body_len;
    size_t take = have >= PC_UP_ERRBODY_MAX ? 0 : PC_UP_ERRBODY_MAX - have;
    if (take > len)
        take = len;
    if (take && !body_append(x, buf, take))
        return 0;
    if (take < len) {
        x->body_cut = true;
        return 0;
    }
    return len;
}
