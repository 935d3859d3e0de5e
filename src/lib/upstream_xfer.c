/*
 * upstream_xfer.c - one exchange with an upstream: the curl options of a
 * request, the per-byte read timeout, and the redirect loop.
 *
 * Redirects are followed here, not by curl (CURLOPT_FOLLOWLOCATION off):
 * each hop is one curl_easy_perform(), the Location is resolved against the
 * current URL with CURLU, only http/https targets are accepted, and the
 * Authorization header (which we set by hand, so curl would not know to drop
 * it) is not sent to a hop whose scheme, host or port differ from the
 * previous one. Since every perform is one response, on_start/on_data only
 * ever see a final 2xx response, never a 401 or a redirect. How a response
 * is read is in upstream_resp.c.
 *
 * Requests with a method (POST, PUT, PATCH, DELETE: the push side) send
 * their body from memory or from a reader callback with a known
 * Content-Length, without "Expect: 100-continue" (a wasted round trip),
 * and are never redirected.
 *
 * Framing: a connection is only reused when the previous response on it
 * ended exactly where its framing said. After any failed hop, or when
 * bytes are left on the connection past the response (an upstream that
 * sent more than its Content-Length) or the peer closed it, the handle is
 * replaced (pc_up_handle_renew), so no later request can read those bytes
 * as its response ("Received HTTP/0.9"). Leftovers that arrive while a
 * handle is idle are caught when it leaves the pool (upstream.c); if they
 * arrive later still, the request fails on its reused connection before
 * any response ("Received HTTP/0.9", a weird reply) and is sent once more
 * on a fresh handle.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "upstream_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define UP_MAX_REDIRECTS 10

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* The read timeout, to the millisecond: curl's low-speed check averages
 * over a window and trips several seconds late on a body that stalls after
 * a burst. Headers and body both count as progress (dlnow and the header
 * callback reset the clock). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    pc_up_xfer *x = ud;
    if (dlnow != x->last_dl || ulnow != x->last_ul || (x->headers_done && !x->armed)) {
        x->armed = x->headers_done;
        x->last_dl = dlnow;
        x->last_ul = ulnow;
        clock_gettime(CLOCK_MONOTONIC, &x->last_at);
        return 0;
    }
    if (x->read_timeout_ms > 0 && x->headers_done && ms_since(&x->last_at) >= x->read_timeout_ms) {
        x->stalled = true;
        return 1;
    }
    return 0;
}

bool pc_up_conn_dirty(CURL *h)
{
    curl_socket_t s = CURL_SOCKET_BAD;
    char c;
    if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK || s == CURL_SOCKET_BAD)
        return false; /* nothing open: curl will connect afresh */
    ssize_t n = recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

void pc_up_handle_renew(CURL **hp)
{
    CURL *fresh = curl_easy_init();
    if (!fresh)
        return;
    curl_easy_cleanup(*hp);
    *hp = fresh;
}

void pc_up_xfer_clear(pc_up_xfer *x)
{
    free(x->location);
    free(x->www_auth);
    x->location = x->www_auth = NULL;
}

/* Resolve loc against base into *next (caller's, curl_free). *same is true
 * when both have the same scheme, host and port. 0, PC_EINVAL or PC_ENOMEM. */
static int resolve_location(const char *base, const char *loc, char **next, bool *same)
{
    int rc = PC_EINVAL;
    CURLU *a = curl_url(), *b = NULL;
    char *pa[3] = {0}, *pb[3] = {0};
    static const CURLUPart parts[3] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    *next = NULL;
    if (!a) {
        rc = PC_ENOMEM;
        goto done;
    }
    if (curl_url_set(a, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto done;
    if (!(b = curl_url_dup(a))) {
        rc = PC_ENOMEM;
        goto done;
    }
    if (curl_url_set(b, CURLUPART_URL, loc, 0) != CURLUE_OK)
        goto done;
    *same = true;
    for (int i = 0; i < 3; i++) {
        if (curl_url_get(a, parts[i], &pa[i], CURLU_DEFAULT_PORT) != CURLUE_OK ||
            curl_url_get(b, parts[i], &pb[i], CURLU_DEFAULT_PORT) != CURLUE_OK)
            goto done;
        if (strcasecmp(pa[i], pb[i]) != 0)
            *same = false;
    }
    if (strcasecmp(pb[0], "http") != 0 && strcasecmp(pb[0], "https") != 0)
        goto done;
    if (curl_url_get(b, CURLUPART_URL, next, 0) != CURLUE_OK)
        goto done;
    rc = 0;
done:
    for (int i = 0; i < 3; i++) {
        curl_free(pa[i]);
        curl_free(pb[i]);
    }
    curl_url_cleanup(a);
    curl_url_cleanup(b);
    return rc;
}

/* CURLOPT_READFUNCTION: the request body, from memory or the reader. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    pc_up_xfer *x = ud;
    size_t want = size * nitems, got;
    if (x->reader) {
        got = x->reader(buf, want, x->reader_ctx);
        if (got == PC_UPSTREAM_READ_ABORT) {
            x->aborted = true;
            return CURL_READFUNC_ABORT;
        }
    } else {
        got = x->body_len - x->body_off;
        if (got > want)
            got = want;
        if (got)
            memcpy(buf, x->body + x->body_off, got);
        x->body_off += got;
    }
    x->sent += got;
    return got;
}

static void set_options(pc_upstream *u, CURL *h, pc_up_xfer *x, const char *url, bool head,
                        struct curl_slist *hdrs, char *errbuf)
{
    curl_easy_reset(h); /* keeps the handle's connections */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, u->read_timeout_s);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    x->read_timeout_ms = u->read_timeout_s * 1000;
    x->last_dl = 0;
    x->last_ul = 0;
    x->stalled = false;
    x->armed = false;
    clock_gettime(CLOCK_MONOTONIC, &x->last_at);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 65536L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pullcache/" PC_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, pc_up_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, pc_up_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (x->method) {
        x->body_off = 0;
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
        if (strcmp(x->method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, x);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                             (curl_off_t)(x->reader ? x->body_size : (int64_t)x->body_len));
            curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
        }
    }
    if (u->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, u->ca_file);
    if (u->insecure_tls) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* The class and message of a perform that failed with cc. */
static void fail_curl(pc_up_xfer *x, CURLcode cc, const char *errbuf)
{
    pc_upstream_resp *r = x->resp;
    if (cc == CURLE_ABORTED_BY_CALLBACK && x->stalled) {
        r->cls = PC_UP_TIMEOUT;
        pc_up_resp_msg(r, "no data from the upstream within the read timeout");
    } else if ((cc == CURLE_WRITE_ERROR || cc == CURLE_ABORTED_BY_CALLBACK ||
                cc == CURLE_READ_ERROR) &&
               x->aborted) {
        r->cls = PC_UP_ABORTED;
        pc_up_resp_msg(r, "transfer aborted by the receiver");
    } else if (cc == CURLE_WRITE_ERROR && x->too_big) {
        size_t n = x->ok_max;
        const char *unit = "bytes";
        if (n >= ((size_t)1 << 20) && n % ((size_t)1 << 20) == 0) {
            n >>= 20;
            unit = "MiB";
        } else if (n >= 1024 && n % 1024 == 0) {
            n >>= 10;
            unit = "KiB";
        }
        r->cls = PC_UP_PROTOCOL;
        snprintf(r->error_message, sizeof(r->error_message), "%s larger than %zu %s",
                 x->what ? x->what : "response", n, unit);
    } else {
        r->cls = pc_up_class_of_curl(cc);
        pc_up_resp_msg(r, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
}

/* Contract in upstream_int.h. */
int pc_up_exchange(pc_upstream *u, CURL **hp, const char *url, bool head, const char *accept,
                   const char *auth, pc_up_xfer *x)
{
    int rc = 0;
    bool resent = false;
    pc_upstream_resp *r = x->resp;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    char *cur = strdup(url);
    r->error_message[0] = '\0';
    x->crossed = false;
    if (!cur)
        goto oom;
    for (int hop = 0;; hop++) {
        if (hop > UP_MAX_REDIRECTS) {
            r->cls = PC_UP_PROTOCOL;
            pc_up_resp_msg(r, "too many redirects");
            goto done;
        }
        curl_slist_free_all(hdrs);
        hdrs = NULL;
        struct curl_slist *t = NULL;
        if (accept && !(t = curl_slist_append(hdrs, accept)))
            goto oom;
        hdrs = t ? t : hdrs;
        if (auth && !(t = curl_slist_append(hdrs, auth)))
            goto oom;
        hdrs = t ? t : hdrs;
        for (size_t i = 0; x->headers && x->headers[i]; i++) {
            if (!(t = curl_slist_append(hdrs, x->headers[i])))
                goto oom;
            hdrs = t;
        }
        if (x->method) {
            if (!(t = curl_slist_append(hdrs, "Expect:")))
                goto oom;
            hdrs = t;
        }
        pc_up_hop_reset(x);
        errbuf[0] = '\0';
        CURL *h = *hp;
        set_options(u, h, x, cur, head, hdrs, errbuf);
        CURLcode cc = curl_easy_perform(h);
        if (x->nomem)
            goto oom;
        bool cut = cc == CURLE_WRITE_ERROR && x->body_cut; /* an endless error body */
        if (cc != CURLE_OK && !cut) {
            long conns = 1, got = 0;
            curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &got);
            pc_up_handle_renew(hp); /* whatever the connection holds: never again */
            if ((cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_WEIRD_SERVER_REPLY) &&
                conns == 0 && got == 0 && !x->headers_done && !x->started && !x->aborted &&
                !x->method && !resent) {
                /* a reused connection that held leftovers of an earlier
                 * response ("Received HTTP/0.9"): nothing of this response
                 * arrived, a GET or HEAD can go again */
                resent = true;
                hop--;
                continue;
            }
            fail_curl(x, cc, errbuf);
            goto done;
        }
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        if (cut || pc_up_conn_dirty(h)) /* more bytes than the response framed, or closed */
            pc_up_handle_renew(hp);
        r->status = st;
        if (!x->method && (st == 301 || st == 302 || st == 303 || st == 307 || st == 308)) {
            char *next = NULL;
            bool same = true;
            int rr = x->location ? resolve_location(cur, x->location, &next, &same) : PC_EINVAL;
            if (rr == PC_ENOMEM)
                goto oom;
            if (rr != 0) {
                r->cls = PC_UP_PROTOCOL;
                pc_up_resp_msg(r, "redirect without a usable Location");
                goto done;
            }
            if (!same) {
                auth = NULL; /* never forward credentials to another host */
                x->crossed = true;
            }
            free(cur);
            cur = strdup(next);
            curl_free(next);
            if (!cur)
                goto oom;
            continue;
        }
        r->cls = pc_up_class_of_status(st);
        if (r->cls == PC_UP_OK && !head && r->content_length >= 0 &&
            x->received < r->content_length) {
            r->cls = PC_UP_RESET;
            pc_up_resp_msg(r, "body shorter than its Content-Length");
        } else if (st >= 400) {
            pc_up_error_message(r->body, r->body_len, r->error_message, sizeof(r->error_message));
            if (!r->error_message[0])
                snprintf(r->error_message, sizeof(r->error_message), "HTTP %ld", st);
        } else if (r->cls != PC_UP_OK) {
            snprintf(r->error_message, sizeof(r->error_message), "unexpected HTTP %ld", st);
        }
        goto done;
    }
oom:
    pc_error_set("upstream %s: out of memory", u->name);
    rc = PC_ENOMEM;
done:
    curl_slist_free_all(hdrs);
    free(cur);
    return rc;
}
