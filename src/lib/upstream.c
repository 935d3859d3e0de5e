/*
 * upstream.c - the client for one upstream registry, on libcurl: manifest
 * HEAD/GET, streamed blob GET/HEAD, the /v2/ token flow, redirects to blob
 * hosts, connection reuse, and a class for every way a call can end.
 *
 * Connections: a pool of CURL easy handles per upstream, guarded by a mutex
 * and a condition variable that also caps the transfers in flight at
 * max_connections. curl_easy_reset() keeps a handle's connection cache, so
 * a handle taken from the pool reuses its open keep-alive connections (the
 * pool is a stack: sequential calls always get the same, warm handle).
 *
 * Redirects are followed here, not by curl (CURLOPT_FOLLOWLOCATION off):
 * each hop is one curl_easy_perform(), the Location is resolved against the
 * current URL with CURLU, only http/https targets are accepted, and the
 * Authorization header (which we set by hand, so curl would not know to drop
 * it) is not sent to a hop whose scheme, host or port differ from the
 * previous one. Since every perform is one response, on_start/on_data only
 * ever see a final 2xx response, never a 401 or a redirect.
 *
 * Authentication: a static token is sent as Bearer. Otherwise the first call
 * goes out anonymously; a 401 carries a WWW-Authenticate challenge that is
 * remembered for the upstream. For Bearer, a token for
 * "repository:<repo>:pull" is fetched from the realm (with basic
 * credentials when configured), cached per scope until shortly before it
 * expires, and the request is retried once. For Basic, the retry carries
 * the credentials. Once a challenge is known, later calls authenticate up
 * front (cached token, or a token fetched before the request). Credentials
 * and tokens never appear in error messages or logs, and are wiped before
 * they are freed. Parsing and the token cache live in upstream_auth.c.
 */
#include "upstream_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#define UP_MAX_REDIRECTS 10
#define UP_MANIFEST_MAX ((size_t)4 << 20) /* kept body of a manifest GET */
#define UP_ERRBODY_MAX ((size_t)64 << 10) /* kept body of an error response */
#define UP_TOKEN_BODY_MAX ((size_t)64 << 10)
#define UP_TOKENS_MAX 1024 /* cached scopes per upstream */
#define UP_REF_MAX 256

#define UP_ACCEPT                                                                                  \
    "Accept: application/vnd.oci.image.manifest.v1+json, "                                         \
    "application/vnd.oci.image.index.v1+json, "                                                    \
    "application/vnd.docker.distribution.manifest.v2+json, "                                       \
    "application/vnd.docker.distribution.manifest.list.v2+json"

struct pc_upstream {
    char *name;
    char *url; /* without a trailing '/' */
    char *username;
    char *password;
    char *token;
    char *ca_file;
    long connect_timeout_ms;
    long read_timeout_s;
    unsigned max_conns;
    bool insecure_tls;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed; /* a handle went back to the pool */
    CURL **idle;          /* max_conns slots, a stack */
    unsigned n_idle;
    unsigned n_busy;
    pc_auth_challenge chal; /* the last challenge seen; scheme "" = none yet */
    pc_up_tokens *tokens;   /* its own lock */
};

/* The state of one call's transfer, shared by the curl callbacks. */
typedef struct {
    pc_upstream_resp *resp;
    size_t ok_max;                 /* keep a 2xx body up to this size (no on_data) */
    pc_upstream_start_cb on_start; /* streaming mode when on_data is set */
    pc_upstream_data_cb on_data;
    void *ctx;
    size_t body_cap;   /* allocated size of resp->body */
    int64_t received;  /* 2xx body bytes of the current hop */
    char *location;    /* of the current hop */
    char *www_auth;    /* of the current hop */
    bool headers_done; /* the current hop's header block ended */
    bool started;      /* on_start was called */
    bool aborted;      /* a caller callback asked to stop */
    bool too_big;      /* a kept 2xx body outgrew ok_max */
    bool crossed;      /* a redirect went to another origin */
    bool nomem;
    long read_timeout_ms;    /* no new byte for this long: give up */
    curl_off_t last_dl;      /* bytes seen at the last progress */
    struct timespec last_at; /* when they were seen */
    bool stalled;            /* ended by the read timeout */
    bool armed;              /* the body clock started (headers are in) */
} up_xfer;

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
    up_xfer *x = ud;
    if (dlnow != x->last_dl || (x->headers_done && !x->armed)) {
        x->armed = x->headers_done;
        x->last_dl = dlnow;
        clock_gettime(CLOCK_MONOTONIC, &x->last_at);
        return 0;
    }
    if (x->read_timeout_ms > 0 && x->headers_done && ms_since(&x->last_at) >= x->read_timeout_ms) {
        x->stalled = true;
        return 1;
    }
    return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

/* Concatenate NULL-terminated string arguments into a new string (caller's),
 * NULL when out of memory. */
static char *str_cat(const char *first, ...) __attribute__((sentinel));
static char *str_cat(const char *first, ...)
{
    va_list ap;
    size_t len = 0;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        len += strlen(s);
    va_end(ap);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    char *p = out;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *)) {
        size_t n = strlen(s);
        memcpy(p, s, n);
        p += n;
    }
    va_end(ap);
    *p = '\0';
    return out;
}

/* strdup(s), or NULL for a NULL s. Sets *fail when a copy failed. */
static char *dup_opt(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

/* Copy a header value of n bytes into dst (size bytes) only if it fits. */
static void copy_field(char *dst, size_t size, const char *v, size_t n)
{
    if (n >= size)
        n = 0;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void set_msg(pc_upstream_resp *r, const char *msg)
{
    snprintf(r->error_message, sizeof(r->error_message), "%s", msg);
}

static bool ref_char_ok(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr(extra, c) != NULL;
}

/* Repository names and references go into the URL path unescaped: accept
 * only what the distribution spec allows, and no empty, "." or ".." path
 * segments (curl would normalize those away). */
static bool path_part_ok(const char *s, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > UP_REF_MAX)
        return false;
    size_t seg = 0; /* start of the current segment */
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - seg;
            if (len == 0 || (len == 1 && s[seg] == '.') ||
                (len == 2 && s[seg] == '.' && s[seg + 1] == '.'))
                return false;
            seg = i + 1;
        } else if (!ref_char_ok(s[i], extra)) {
            return false;
        }
    }
    return true;
}

/* ---- responses ---- */

static void resp_init(pc_upstream_resp *r)
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
    resp_init(r);
}

/* ---- curl callbacks ---- */

static void hop_reset(up_xfer *x)
{
    pc_upstream_resp *r = x->resp;
    r->status = 0;
    r->digest[0] = r->media_type[0] = '\0';
    r->ratelimit_limit[0] = r->ratelimit_remaining[0] = r->ratelimit_source[0] = '\0';
    r->retry_after[0] = '\0';
    r->content_length = -1;
    free(r->body); /* a body belongs to the final response only */
    r->body = NULL;
    r->body_len = 0;
    x->body_cap = 0;
    free(x->location);
    free(x->www_auth);
    x->location = x->www_auth = NULL;
    x->received = 0;
    x->headers_done = false;
}

static bool body_append(up_xfer *x, const char *buf, size_t len)
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
static void header_field(up_xfer *x, const char *name, size_t nlen, const char *v, size_t vlen)
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

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    up_xfer *x = ud;
    pc_upstream_resp *r = x->resp;
    size_t len = size * nitems;
    size_t end = len;
    while (end > 0 && (buf[end - 1] == '\r' || buf[end - 1] == '\n'))
        end--;

    if (end >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a status line: a new response */
        hop_reset(x);
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

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    up_xfer *x = ud;
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
    if (st >= 300 && st < 400)
        return len;
    /* an error body: keep the first UP_ERRBODY_MAX bytes, drop the rest */
    size_t have = x->resp->body_len;
    size_t take = have >= UP_ERRBODY_MAX ? 0 : UP_ERRBODY_MAX - have;
    if (take > len)
        take = len;
    if (take && !body_append(x, buf, take))
        return 0;
    return len;
}

static int discard_data(const void *buf, size_t len, void *ctx)
{
    return 0;
}

/* ---- the connection pool ---- */

static int pool_get(pc_upstream *u, CURL **out)
{
    int rc = 0;
    CURL *h = NULL;
    pthread_mutex_lock(&u->lock);
    while (u->n_busy >= u->max_conns)
        pthread_cond_wait(&u->freed, &u->lock);
    u->n_busy++;
    if (u->n_idle > 0)
        h = u->idle[--u->n_idle];
    pthread_mutex_unlock(&u->lock);
    if (!h && !(h = curl_easy_init())) {
        pthread_mutex_lock(&u->lock);
        u->n_busy--;
        pthread_cond_signal(&u->freed);
        pthread_mutex_unlock(&u->lock);
        pc_error_set("upstream %s: cannot create a transfer handle", u->name);
        rc = PC_ENOMEM;
        goto done;
    }
    *out = h;
done:
    return rc;
}

static void pool_put(pc_upstream *u, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&u->lock);
    u->idle[u->n_idle++] = h; /* n_idle + n_busy <= max_conns */
    u->n_busy--;
    pthread_cond_signal(&u->freed);
    pthread_mutex_unlock(&u->lock);
}

/* ---- one exchange, following redirects ---- */

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

static void set_options(pc_upstream *u, CURL *h, up_xfer *x, const char *url, bool head,
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
    x->stalled = false;
    x->armed = false;
    clock_gettime(CLOCK_MONOTONIC, &x->last_at);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 65536L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pullcache/" PC_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (u->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, u->ca_file);
    if (u->insecure_tls) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* The class and message of a perform that failed with cc. */
static void fail_curl(up_xfer *x, CURLcode cc, const char *errbuf)
{
    pc_upstream_resp *r = x->resp;
    if (cc == CURLE_ABORTED_BY_CALLBACK && x->stalled) {
        r->cls = PC_UP_TIMEOUT;
        set_msg(r, "no data from the upstream within the read timeout");
    } else if (cc == CURLE_WRITE_ERROR && x->aborted) {
        r->cls = PC_UP_ABORTED;
        set_msg(r, "transfer aborted by the receiver");
    } else if (cc == CURLE_WRITE_ERROR && x->too_big) {
        r->cls = PC_UP_PROTOCOL;
        set_msg(r, "manifest larger than 4 MiB");
    } else {
        r->cls = pc_up_class_of_curl(cc);
        set_msg(r, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
}

/* Issue one request (GET, or HEAD when head) with the optional header
 * lines accept and auth, following redirects; auth is dropped from the
 * first hop to another origin on. Fills x->resp completely. Returns 0
 * (the outcome is in x->resp->cls) or PC_ENOMEM. */
static int exchange(pc_upstream *u, CURL *h, const char *url, bool head, const char *accept,
                    const char *auth, up_xfer *x)
{
    int rc = 0;
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
            set_msg(r, "too many redirects");
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
        hop_reset(x);
        errbuf[0] = '\0';
        set_options(u, h, x, cur, head, hdrs, errbuf);
        CURLcode cc = curl_easy_perform(h);
        if (x->nomem)
            goto oom;
        if (cc != CURLE_OK) {
            fail_curl(x, cc, errbuf);
            goto done;
        }
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        r->status = st;
        if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
            char *next = NULL;
            bool same = true;
            int rr = x->location ? resolve_location(cur, x->location, &next, &same) : PC_EINVAL;
            if (rr == PC_ENOMEM)
                goto oom;
            if (rr != 0) {
                r->cls = PC_UP_PROTOCOL;
                set_msg(r, "redirect without a usable Location");
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
            set_msg(r, "body shorter than its Content-Length");
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

/* Ask ch's realm for a token for scope. On success *hdr is the
 * "Authorization: Bearer ..." line (caller's, pc_up_secret_free) and the
 * token is cached. When the token server fails, *hdr stays NULL and out
 * describes its answer (class, status, message prefixed "token: ").
 * Returns 0 or PC_ENOMEM. */
static int token_fetch(pc_upstream *u, CURL *h, const pc_auth_challenge *ch, const char *scope,
                       char **hdr, pc_upstream_resp *out)
{
    int rc = 0;
    pc_upstream_resp tr;
    up_xfer x = {.resp = &tr, .ok_max = UP_TOKEN_BODY_MAX};
    char *esc_service = NULL, *esc_scope = NULL, *url = NULL, *basic = NULL, *tok = NULL;
    int64_t usable_ms = 0;
    char msg[sizeof(out->error_message)];
    resp_init(&tr);
    *hdr = NULL;

    esc_service = curl_easy_escape(h, ch->service, 0);
    esc_scope = curl_easy_escape(h, scope, 0);
    if (!esc_service || !esc_scope)
        goto oom;
    url = str_cat(ch->realm, strchr(ch->realm, '?') ? "&" : "?", ch->service[0] ? "service=" : "",
                  ch->service[0] ? esc_service : "", ch->service[0] ? "&" : "", "scope=", esc_scope,
                  NULL);
    if (!url)
        goto oom;
    if (u->username && !(basic = pc_up_auth_basic(u->username, u->password)))
        goto oom;
    if ((rc = exchange(u, h, url, false, NULL, basic, &x)) != 0)
        goto done;
    if (tr.cls == PC_UP_OK) {
        rc = pc_up_token_parse(tr.body, tr.body_len, &tok, &usable_ms);
        if (rc == PC_ENOMEM)
            goto oom;
        if (rc == 0) {
            if (!(*hdr = pc_up_auth_bearer(tok)))
                goto oom;
            pc_up_tokens_put(u->tokens, scope, tok, usable_ms);
            goto done;
        }
        rc = 0;
        tr.cls = PC_UP_PROTOCOL;
        set_msg(&tr, "token response without a token");
    }
    /* the token server said no: report its answer */
    snprintf(msg, sizeof(msg), "token: %.500s", tr.error_message);
    pc_upstream_resp_clear(out);
    *out = tr;
    resp_init(&tr);
    set_msg(out, msg);
    goto done;
oom:
    pc_error_set("upstream %s: out of memory", u->name);
    rc = PC_ENOMEM;
done:
    curl_free(esc_service);
    curl_free(esc_scope);
    free(url);
    pc_up_secret_free(basic);
    pc_up_secret_free(tok);
    free(x.location);
    free(x.www_auth);
    pc_upstream_resp_clear(&tr);
    return rc;
}

/* ---- calls ---- */

/* The Authorization line for a first attempt, from what is already known:
 * the static token, a cached token, a token fetched now because the upstream
 * is known to want one, basic credentials for a Basic upstream, or none.
 * *failed is set when a token fetch failed (out describes it). */
static int auth_first(pc_upstream *u, CURL *h, const char *scope, char **hdr, bool *failed,
                      pc_upstream_resp *out)
{
    int rc = 0;
    char *tok = NULL;
    pc_auth_challenge ch;
    *hdr = NULL;
    if (u->token) {
        *hdr = pc_up_auth_bearer(u->token);
        rc = *hdr ? 0 : PC_ENOMEM;
        goto done;
    }
    int got = pc_up_tokens_get(u->tokens, scope, &tok);
    pthread_mutex_lock(&u->lock);
    ch = u->chal;
    pthread_mutex_unlock(&u->lock);
    if (got == PC_ENOMEM) {
        rc = PC_ENOMEM;
    } else if (got == 0) {
        *hdr = pc_up_auth_bearer(tok);
        rc = *hdr ? 0 : PC_ENOMEM;
    } else if (strcmp(ch.scheme, "Bearer") == 0) {
        rc = token_fetch(u, h, &ch, scope, hdr, out);
        *failed = rc == 0 && !*hdr;
    } else if (strcmp(ch.scheme, "Basic") == 0 && u->username) {
        *hdr = pc_up_auth_basic(u->username, u->password);
        rc = *hdr ? 0 : PC_ENOMEM;
    }
done:
    pc_up_secret_free(tok);
    if (rc == PC_ENOMEM)
        pc_error_set("upstream %s: out of memory", u->name);
    return rc;
}

/* Run the request for path under /v2/<repo>, authenticating as needed and
 * retrying once after a 401 challenge. Fills x->resp. 0 or PC_ENOMEM. */
static int call(pc_upstream *u, const char *repo, const char *path, bool head, const char *accept,
                up_xfer *x)
{
    int rc = 0;
    CURL *h = NULL;
    char *url = NULL, *scope = NULL, *auth = NULL;
    bool failed = false;
    pc_auth_challenge ch;

    if ((rc = pool_get(u, &h)) != 0)
        goto done;
    url = str_cat(u->url, "/v2/", repo, path, NULL);
    scope = str_cat("repository:", repo, ":pull", NULL);
    if (!url || !scope) {
        pc_error_set("upstream %s: out of memory", u->name);
        rc = PC_ENOMEM;
        goto done;
    }
    if ((rc = auth_first(u, h, scope, &auth, &failed, x->resp)) != 0 || failed)
        goto done;
    for (int attempt = 0;; attempt++) {
        if ((rc = exchange(u, h, url, head, accept, auth, x)) != 0)
            goto done;
        /* only the registry's own challenge counts, never a blob host's */
        if (x->resp->status != 401 || attempt > 0 || u->token || x->crossed || !x->www_auth ||
            pc_auth_challenge_parse(x->www_auth, &ch) != 0)
            break;
        pthread_mutex_lock(&u->lock);
        u->chal = ch;
        u->chal.scope[0] = u->chal.error[0] = '\0';
        pthread_mutex_unlock(&u->lock);
        pc_up_secret_free(auth);
        auth = NULL;
        if (strcmp(ch.scheme, "Bearer") == 0) {
            pc_up_tokens_drop(u->tokens, scope); /* the cached one (if any) was refused */
            if ((rc = token_fetch(u, h, &ch, scope, &auth, x->resp)) != 0 || !auth)
                goto done;
        } else if (strcmp(ch.scheme, "Basic") == 0 && u->username) {
            if (!(auth = pc_up_auth_basic(u->username, u->password))) {
                pc_error_set("upstream %s: out of memory", u->name);
                rc = PC_ENOMEM;
                goto done;
            }
        } else {
            break;
        }
    }
done:
    pool_put(u, h);
    free(url);
    free(scope);
    pc_up_secret_free(auth);
    return rc;
}

static int invalid_name(const char *what)
{
    pc_error_set("upstream: invalid %s", what);
    return PC_EINVAL;
}

/* Contract (upstream.h), plus: out is overwritten (not freed) on entry, so
 * pass a cleared or fresh struct; PC_EINVAL for a repository name or
 * reference outside the distribution spec's grammar. */
int pc_upstream_manifest(pc_upstream *u, const char *repo, const char *reference, bool head,
                         pc_upstream_resp *out)
{
    int rc = 0;
    char *path = NULL;
    up_xfer x = {.resp = out, .ok_max = UP_MANIFEST_MAX};
    resp_init(out);
    if (!path_part_ok(repo, "._-/") || !path_part_ok(reference, "._-:+=") ||
        strchr(reference, '/')) {
        rc = invalid_name("repository name or reference");
        goto done;
    }
    if (!(path = str_cat("/manifests/", reference, NULL))) {
        pc_error_set("upstream %s: out of memory", u->name);
        rc = PC_ENOMEM;
        goto done;
    }
    rc = call(u, repo, path, head, UP_ACCEPT, &x);
done:
    free(path);
    free(x.location);
    free(x.www_auth);
    return rc;
}

/* Contract (upstream.h), plus: out is overwritten on entry; on_start is
 * called for a 2xx HEAD too; on_data may be NULL (the body is dropped). */
int pc_upstream_blob(pc_upstream *u, const char *repo, const pc_digest *d, bool head,
                     pc_upstream_start_cb on_start, pc_upstream_data_cb on_data, void *ctx,
                     pc_upstream_resp *out)
{
    int rc = 0;
    char *path = NULL;
    up_xfer x = {
        .resp = out, .on_start = on_start, .on_data = on_data ? on_data : discard_data, .ctx = ctx};
    resp_init(out);
    if (!path_part_ok(repo, "._-/") || !d || !path_part_ok(d->str, "._-:+=") ||
        strchr(d->str, '/')) {
        rc = invalid_name("repository name or digest");
        goto done;
    }
    if (!(path = str_cat("/blobs/", d->str, NULL))) {
        pc_error_set("upstream %s: out of memory", u->name);
        rc = PC_ENOMEM;
        goto done;
    }
    rc = call(u, repo, path, head, NULL, &x);
done:
    free(path);
    free(x.location);
    free(x.www_auth);
    return rc;
}

/* ---- life cycle ---- */

int pc_upstream_new(pc_upstream **out, const pc_upstream_opts *opts)
{
    int rc = 0;
    bool fail = false;
    pc_upstream *u = NULL;
    CURLU *cu = NULL;
    char *scheme = NULL;
    *out = NULL;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        pc_error_set("libcurl initialization failed");
        rc = PC_ERR;
        goto done;
    }
    if (!opts || !opts->url || !(cu = curl_url()) ||
        curl_url_set(cu, CURLUPART_URL, opts->url, 0) != CURLUE_OK ||
        curl_url_get(cu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        pc_error_set("upstream %s: invalid URL", opts && opts->name ? opts->name : "");
        rc = PC_EINVAL;
        goto done;
    }
    if (!(u = calloc(1, sizeof(*u)))) {
        rc = PC_ENOMEM;
        goto oom;
    }
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->freed, NULL);
    u->name = dup_opt(opts->name ? opts->name : opts->url, &fail);
    u->url = dup_opt(opts->url, &fail);
    if (opts->username && *opts->username) {
        u->username = dup_opt(opts->username, &fail);
        u->password = dup_opt(opts->password ? opts->password : "", &fail);
    }
    if (opts->token && *opts->token)
        u->token = dup_opt(opts->token, &fail);
    u->ca_file = dup_opt(opts->ca_file, &fail);
    u->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    long read_ms = opts->read_timeout_ms > 0 ? opts->read_timeout_ms : 30000;
    u->read_timeout_s = (read_ms + 999) / 1000;
    u->max_conns = opts->max_connections > 0 ? opts->max_connections : 16;
    u->insecure_tls = opts->insecure_tls;
    u->idle = calloc(u->max_conns, sizeof(*u->idle));
    if (fail || !u->idle || pc_up_tokens_new(&u->tokens, UP_TOKENS_MAX) != 0) {
        rc = PC_ENOMEM;
        goto oom;
    }
    size_t n = strlen(u->url);
    while (n > 0 && u->url[n - 1] == '/')
        u->url[--n] = '\0';
    *out = u;
    u = NULL;
    goto done;
oom:
    pc_error_set("upstream: out of memory");
done:
    pc_upstream_free(u);
    curl_free(scheme);
    curl_url_cleanup(cu);
    return rc;
}

void pc_upstream_free(pc_upstream *u)
{
    if (!u)
        return;
    for (unsigned i = 0; i < u->n_idle; i++)
        curl_easy_cleanup(u->idle[i]);
    pc_up_tokens_free(u->tokens);
    free(u->idle);
    free(u->name);
    free(u->url);
    free(u->username);
    pc_up_secret_free(u->password);
    pc_up_secret_free(u->token);
    free(u->ca_file);
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->freed);
    free(u);
}

const char *pc_upstream_name(const pc_upstream *u)
{
    return u->name;
}
