/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3.c - the S3 client (s3.h): options and credentials, a pool of curl
 * handles (each keeps its connection alive), and the one request function
 * (s3_int.h) that signs with CURLOPT_AWS_SIGV4, streams bodies both ways,
 * retries and maps S3's answers to pc.h codes. The calls are in s3_ops.c.
 *
 * What libcurl 7.88 and radosgw need (found against a real RGW):
 *  - x-amz-content-sha256 on every request (UNSIGNED-PAYLOAD here), else
 *    403 SignatureDoesNotMatch;
 *  - the query string already sorted by name and percent-encoded (curl
 *    signs it as it is), value-less parameters with a trailing '='
 *    (?uploads=);
 *  - CompleteMultipartUpload may answer an empty <ETag>;
 *  - CopyObject may answer 200 with an <Error> body.
 */
#include "s3_int.h"
#include "s3_xml.h"
#include "util.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRBODY_MAX 16384

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- options and credentials ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int read_credentials(pc_s3 *s, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        pc_error_set("S3 credentials_file %s cannot be read: give a readable file with "
                     "aws_access_key_id = ... and aws_secret_access_key = ... lines",
                     path);
        return PC_EINVAL;
    }
    char line[1024];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), fp)) {
        char *t = trim(line), *eq = strchr(t, '=');
        if (!*t || *t == '#' || *t == ';' || *t == '[' || !eq)
            continue;
        *eq = '\0';
        char *name = trim(t), *val = trim(eq + 1);
        char **slot = NULL;
        if (strcmp(name, "aws_access_key_id") == 0)
            slot = &s->key_id;
        else if (strcmp(name, "aws_secret_access_key") == 0)
            slot = &s->secret;
        if (slot && !*slot && !(*slot = strdup(val)))
            rc = PC_ENOMEM;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(fp);
    if (rc == 0 && (!s->key_id || !s->secret)) {
        pc_error_set("S3 credentials_file %s lacks aws_access_key_id or aws_secret_access_key",
                     path);
        rc = PC_EINVAL;
    }
    return rc;
}

static int credentials(pc_s3 *s, const pc_s3_opts *o)
{
    if (o->credentials_file)
        return read_credentials(s, o->credentials_file);
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (!id || !*id || !secret || !*secret) {
        pc_error_set("S3: no credentials: set storage.blobs.credentials_file, or "
                     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
        return PC_EINVAL;
    }
    if (!(s->key_id = strdup(id)) || !(s->secret = strdup(secret)))
        return PC_ENOMEM;
    return 0;
}

/* Whether v is safe inside a URL's host or the sigv4 option: no ':',
 * '/', '@', space or control characters. */
static bool plain(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v <= ' ' || strchr(":/@?#%\\\"", *v))
            return false;
    return true;
}

int pc_s3_open(const pc_s3_opts *o, pc_s3 **out)
{
    pthread_once(&curl_once, curl_init);
    const char *ep = o->endpoint, *region = o->region ? o->region : "us-east-1";
    const char *hostp = ep ? strstr(ep, "://") : NULL;
    if (!ep || !hostp || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) ||
        !hostp[3]) {
        pc_error_set("S3 endpoint %s: give http://host[:port] or https://host[:port]",
                     ep ? ep : "(none)");
        return PC_EINVAL;
    }
    if (!o->bucket || !*o->bucket || !plain(o->bucket) || !*region || !plain(region)) {
        pc_error_set("S3: the bucket and region must be set, without ':', '/' or spaces");
        return PC_EINVAL;
    }
    pc_s3 *s = calloc(1, sizeof(*s));
    if (!s)
        return PC_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    int rc = PC_ENOMEM;
    size_t eplen = strlen(ep);
    while (eplen && ep[eplen - 1] == '/')
        eplen--;
    const char *h = hostp + 3;
    size_t hlen = eplen - (size_t)(h - ep);
    if (memchr(h, '/', hlen)) {
        pc_error_set("S3 endpoint %s: no path, only scheme://host[:port]", ep);
        rc = PC_EINVAL;
        goto fail;
    }
    const char *pre = o->prefix ? o->prefix : "";
    while (*pre == '/')
        pre++;
    size_t plen = strlen(pre);
    while (plen && pre[plen - 1] == '/')
        plen--;
    pc_buf v = {0};
    pc_buf_add(&v, ep, (size_t)(h - ep));
    pc_buf_printf(&v, "%s.", o->bucket);
    pc_buf_add(&v, h, hlen);
    if (!(s->endpoint = strndup(ep, eplen)) || !(s->scheme_host_v = pc_buf_take(&v)) ||
        !(s->region = strdup(region)) || !(s->bucket = strdup(o->bucket)) ||
        !(s->prefix = malloc(plen + 2)))
        goto fail;
    memcpy(s->prefix, pre, plen);
    strcpy(s->prefix + plen, plen ? "/" : "");
    s->path_style = o->path_style;
    /* the Host header as curl sends it: without the scheme's default port */
    if (hlen > 3 && strncmp(ep, "http://", 7) == 0 && strncmp(h + hlen - 3, ":80", 3) == 0)
        hlen -= 3;
    else if (hlen > 4 && strncmp(ep, "https://", 8) == 0 && strncmp(h + hlen - 4, ":443", 4) == 0)
        hlen -= 4;
    if (s->path_style)
        s->host = strndup(h, hlen);
    else if ((s->host = malloc(strlen(o->bucket) + hlen + 2)))
        snprintf(s->host, strlen(o->bucket) + hlen + 2, "%s.%.*s", o->bucket, (int)hlen, h);
    if (!s->host)
        goto fail;
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", s->region);
    s->timeout_s = o->timeout_s > 0 ? o->timeout_s : 60;
    if ((rc = credentials(s, o)))
        goto fail;
    *out = s;
    return 0;
fail:
    pc_s3_free(s);
    return rc;
}

void pc_s3_free(pc_s3 *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_idle; i++)
        curl_easy_cleanup(s->idle[i]);
    if (s->secret) {
        OPENSSL_cleanse(s->secret, strlen(s->secret));
        free(s->secret);
    }
    free(s->key_id);
    free(s->endpoint);
    free(s->scheme_host_v);
    free(s->host);
    free(s->region);
    free(s->bucket);
    free(s->prefix);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- the handle pool ---- */

static CURL *pool_get(pc_s3 *s)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->n_idle)
        h = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->mu);
    if (h)
        curl_easy_reset(h); /* keeps the connection and DNS caches */
    else
        h = curl_easy_init();
    return h;
}

static void pool_put(pc_s3 *s, CURL *h)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_idle < POOL_MAX) {
        s->idle[s->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- one request ---- */

typedef struct {
    s3_req *r;
    CURL *h;
    size_t sent;
    long status;
    pc_buf err; /* the body of a failure */
    int cb_rc;
    bool delivered; /* body bytes went to the caller: no retry */
    uint64_t clen, whole;
    bool have_range;
} s3_xfer;

static long status_of(s3_xfer *x)
{
    if (!x->status)
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    return x->status;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    s3_xfer *x = ud;
    size_t len = sz * n;
    long st = status_of(x);
    if (st < 200 || st > 299) {
        if (x->err.len < ERRBODY_MAX)
            pc_buf_add(&x->err, p, len);
        return len;
    }
    if (!x->delivered && x->r->info) /* the headers are in: a streaming caller may look */
        x->r->info->size = x->have_range ? x->whole : x->clen;
    x->delivered = true;
    if (x->r->cb) {
        if ((x->cb_rc = x->r->cb(p, len, x->r->ctx)) != 0)
            return 0; /* stops the transfer */
    } else if (x->r->body) {
        pc_buf_add(x->r->body, p, len);
        if (x->r->body->nomem)
            return 0;
    }
    return len;
}

static size_t on_send(char *p, size_t sz, size_t n, void *ud)
{
    s3_xfer *x = ud;
    size_t room = sz * n, done = 0;
    while (room > 0 && x->sent < x->r->alen + x->r->blen) {
        const char *src;
        size_t left;
        if (x->sent < x->r->alen) {
            src = (const char *)x->r->a + x->sent;
            left = x->r->alen - x->sent;
        } else {
            src = (const char *)x->r->b + (x->sent - x->r->alen);
            left = x->r->alen + x->r->blen - x->sent;
        }
        size_t k = left < room ? left : room;
        memcpy(p + done, src, k);
        done += k;
        room -= k;
        x->sent += k;
    }
    return done;
}

static bool header_is(const char *line, size_t len, const char *name, const char **val)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    *val = line + nl + 1;
    while (**val == ' ')
        (*val)++;
    return true;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    s3_xfer *x = ud;
    size_t len = sz * n;
    char line[256];
    if (len >= sizeof(line))
        return len;
    memcpy(line, p, len);
    line[len] = '\0';
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        line[--len] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a 100) */
        x->have_range = false;
        return sz * n;
    }
    pc_s3_info *info = x->r->info;
    const char *v;
    if (header_is(line, len, "content-range", &v)) {
        const char *slash = strchr(v, '/');
        if (slash && slash[1] != '*') {
            x->whole = strtoull(slash + 1, NULL, 10);
            x->have_range = true;
        }
    } else if (header_is(line, len, "content-length", &v)) {
        x->clen = strtoull(v, NULL, 10);
    } else if (info && header_is(line, len, "etag", &v)) {
        snprintf(info->etag, sizeof(info->etag), "%s", v);
    } else if (info && header_is(line, len, "last-modified", &v)) {
        time_t t = curl_getdate(v, NULL);
        if (t != -1)
            info->mtime = t;
    }
    return sz * n;
}

/* Build the URL of r into u. */
static int build_url(pc_s3 *s, const s3_req *r, pc_buf *u)
{
    char enc[3072];
    if (r->key) {
        char full[2048];
        if ((size_t)snprintf(full, sizeof(full), "%s%s", s->prefix, r->key) >= sizeof(full))
            return PC_ETOOBIG;
        int rc = pc_s3_uri_encode(full, true, enc, sizeof(enc));
        if (rc)
            return rc;
    }
    if (s->path_style)
        pc_buf_printf(u, "%s/%s%s%s", s->endpoint, s->bucket, r->key ? "/" : "", r->key ? enc : "");
    else
        pc_buf_printf(u, "%s/%s", s->scheme_host_v, r->key ? enc : "");
    if (r->query)
        pc_buf_printf(u, "?%s", r->query);
    return u->nomem ? PC_ENOMEM : 0;
}

/* The code and message for a failed request. */
static int fail(pc_s3 *s, const s3_req *r, long status, const pc_buf *err)
{
    char code[128] = "", msg[256] = "";
    if (err->len) {
        pc_s3_xml_text(err->s, err->len, "Error", "Code", code, sizeof(code));
        pc_s3_xml_text(err->s, err->len, "Error", "Message", msg, sizeof(msg));
    }
    int rc = PC_ERR;
    const char *hint = "";
    if (status == 404 || strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchUpload") == 0) {
        rc = PC_ENOTFOUND;
        if (strcmp(code, "NoSuchBucket") == 0) {
            rc = PC_ERR;
            hint = ": create the bucket, or fix storage.blobs.bucket";
        }
    } else if (status == 412) {
        rc = PC_ECONFLICT;
    } else if (status == 416) {
        rc = PC_ERANGE;
    } else if (strcmp(code, "QuotaExceeded") == 0 || strcmp(code, "EntityTooLarge") == 0) {
        rc = PC_ENOSPC;
        hint = ": the bucket's quota or the object size limit is reached";
    } else if (status == 403 && (strcmp(code, "SignatureDoesNotMatch") == 0 ||
                                 strcmp(code, "InvalidAccessKeyId") == 0 ||
                                 strcmp(code, "RequestTimeTooSkewed") == 0)) {
        rc = PC_EAUTH;
        hint = ": check the access key and secret (credentials_file or AWS_* variables), the "
               "region and the clock";
    } else if (status == 403) {
        rc = PC_EDENIED;
        hint = !*code ? ": denied (a HEAD answer names no reason: check the credentials and the "
                        "user's rights on the bucket)"
                      : ": the S3 user may not do this on the bucket";
    } else if (status >= 500) {
        rc = PC_EUPSTREAM;
        hint = ": the S3 service failed, retry later";
    }
    pc_error_set("S3 %s %s/%s%s: HTTP %ld%s%s%s%s%s", r->what, s->bucket, s->prefix,
                 r->key ? r->key : "", status, *code ? " " : "", code, *msg ? " (" : "", msg,
                 *msg ? ")" : "");
    if (*hint) {
        char first[512];
        snprintf(first, sizeof(first), "%s", pc_error_last());
        pc_error_set("%s%s", first, hint);
    }
    return rc;
}

static int request_once(pc_s3 *s, s3_req *r, bool *retry);

/* One request, again after a short pause when the service failed (5xx)
 * or the connection broke before any body byte reached the caller, up to
 * three times; POST (complete) is sent once. radosgw answers 500 to a GET
 * racing a PUT of the same key. */
int pc_s3_request(pc_s3 *s, s3_req *r)
{
    static const long pause_ms[] = {20, 100, 400};
    int rc = 0;
    for (size_t i = 0;; i++) {
        bool retry = false;
        if (r->body)
            pc_buf_free(r->body);
        rc = request_once(s, r, &retry);
        if (!retry || i == sizeof(pause_ms) / sizeof(pause_ms[0]) || strcmp(r->method, "POST") == 0)
            return rc;
        struct timespec ts = {0, pause_ms[i] * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int request_once(pc_s3 *s, s3_req *r, bool *retry)
{
    pc_buf url = {0};
    s3_xfer x = {.r = r};
    struct curl_slist *hdrs = NULL;
    int rc = build_url(s, r, &url);
    if (rc) {
        pc_error_set("S3 %s: the key %s is too long", r->what, r->key ? r->key : "");
        pc_buf_free(&url);
        return rc;
    }
    CURL *h = x.h = pool_get(s);
    if (!h) {
        pc_buf_free(&url);
        pc_error_set("S3: cannot create a transfer handle");
        return PC_ENOMEM;
    }
    const char *sign[4] = {"x-amz-content-sha256: UNSIGNED-PAYLOAD"};
    size_t ns = 1;
    hdrs = curl_slist_append(hdrs, sign[0]);
    for (size_t i = 0; i < 3 && r->hdr[i]; i++) {
        hdrs = curl_slist_append(hdrs, r->hdr[i]);
        sign[ns++] = r->hdr[i];
    }
    curl_easy_setopt(h, CURLOPT_URL, url.s);
    if (r->self_sign) {
        /* signed here: the path as sent (after scheme://host), the query */
        char authz[1024], stamp[17], date[40];
        const char *path = strchr(strstr(url.s, "://") + 3, '/');
        char *q = strchr(path, '?');
        if (q)
            *q = '\0';
        rc = pc_s3_sign_headers(r->method, path, r->query, s->host, sign, ns, s->region, s->key_id,
                                s->secret, time(NULL), authz, sizeof(authz), stamp);
        if (q)
            *q = '?';
        if (rc) {
            curl_slist_free_all(hdrs);
            pool_put(s, h);
            pc_buf_free(&url);
            return rc;
        }
        snprintf(date, sizeof(date), "x-amz-date: %s", stamp);
        hdrs = curl_slist_append(hdrs, date);
        hdrs = curl_slist_append(hdrs, authz);
        OPENSSL_cleanse(authz, sizeof(authz));
    } else {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, s->key_id);
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->timeout_s);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 64L * 1024); /* per handle: one per stream */
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    /* no "Expect:" header to switch 100-continue off: curl would sign
     * the empty header it then leaves out; wait for 100 only briefly */
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 50L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_send);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(r->alen + r->blen));
        curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->alen ? (const char *)r->a : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->alen);
    } else if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
    CURLcode cc = curl_easy_perform(h);
    long st = status_of(&x);
    if (cc == CURLE_OK && st >= 200 && st <= 299) {
        rc = 0;
    } else if (x.cb_rc) {
        rc = x.cb_rc;
    } else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && st > 299)) {
        pc_error_set("S3 %s %s/%s%s: %s: check storage.blobs.endpoint and that the S3 service "
                     "runs",
                     r->what, s->bucket, s->prefix, r->key ? r->key : "", curl_easy_strerror(cc));
        rc = cc == CURLE_WRITE_ERROR ? PC_ENOMEM : PC_EUPSTREAM;
    } else {
        rc = fail(s, r, st, &x.err);
    }
    *retry = rc != 0 && !x.delivered && !x.cb_rc && (st >= 500 || st == 0);
    if (rc == 0 && r->info)
        r->info->size = x.have_range ? x.whole : x.clen;
    curl_slist_free_all(hdrs);
    /* a handle whose transfer broke off may hold a half-read connection */
    if (cc == CURLE_OK)
        pool_put(s, h);
    else
        curl_easy_cleanup(h);
    pc_buf_free(&x.err);
    pc_buf_free(&url);
    return rc;
}

/* ---- presigned URLs ---- */

int pc_s3_presign(pc_s3 *s, const char *key, long ttl_s, time_t now, char *buf, size_t size)
{
    s3_req r = {.key = key};
    pc_buf url = {0};
    int rc = build_url(s, &r, &url);
    if (rc == 0)
        rc = pc_s3_presign_url(url.s, s->host, s->region, s->key_id, s->secret, ttl_s, now, buf,
                               size);
    pc_buf_free(&url);
    return rc;
}
