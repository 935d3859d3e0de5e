/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3_sign.c - SigV4 computed here, with OpenSSL's HMAC and SHA-256: the
 * query-string presign (s3.h pc_s3_presign_url; libcurl cannot presign a
 * URL for someone else), the Authorization header for the requests
 * libcurl 7.88 signs wrongly (pc_s3_sign_headers), and the URI encoding S3
 * signs. Everything else is signed by libcurl (CURLOPT_AWS_SIGV4).
 */
#include "s3.h"

#include "util.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int pc_s3_uri_encode(const char *s, bool keep_slash, char *buf, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        if (n + (keep ? 1 : 3) >= size) {
            pc_error_set("S3: an encoded name is too long");
            return PC_ETOOBIG;
        }
        if (keep) {
            buf[n++] = (char)c;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        }
    }
    if (n >= size) {
        pc_error_set("S3: an encoded name is too long");
        return PC_ETOOBIG;
    }
    buf[n] = '\0';
    return 0;
}

static void hex_of(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n) &&
           n == 32;
}

/* The signature (hex, 65 bytes) of canonical request canon made at stamp
 * (date its first 8 characters) for scope date/region/s3/aws4_request. */
static int signature(const char *canon, const char *stamp, const char *region,
                     const char *secret_key, char hex[65])
{
    char date[9], scope[160], sts[512], kstart[300], hh[65];
    unsigned char k[32], h[32];
    unsigned int dl = 0;
    snprintf(date, sizeof(date), "%.8s", stamp);
    if ((size_t)snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, region) >=
            sizeof(scope) ||
        (size_t)snprintf(kstart, sizeof(kstart), "AWS4%s", secret_key) >= sizeof(kstart)) {
        pc_error_set("S3: the region or secret key is too long to sign with");
        return PC_ETOOBIG;
    }
    if (!EVP_Digest(canon, strlen(canon), h, &dl, EVP_sha256(), NULL)) {
        OPENSSL_cleanse(kstart, sizeof(kstart));
        pc_error_set("S3: OpenSSL could not compute the signature");
        return PC_ERR;
    }
    hex_of(h, 32, hh);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", stamp, scope, hh);
    bool ok = hmac(kstart, strlen(kstart), date, k) && hmac(k, 32, region, k) &&
              hmac(k, 32, "s3", k) && hmac(k, 32, "aws4_request", k) && hmac(k, 32, sts, h);
    OPENSSL_cleanse(kstart, sizeof(kstart));
    OPENSSL_cleanse(k, sizeof(k));
    if (!ok) {
        pc_error_set("S3: OpenSSL could not compute the signature");
        return PC_ERR;
    }
    hex_of(h, 32, hex);
    return 0;
}

static int header_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t nx = strcspn(x, ":"), ny = strcspn(y, ":");
    int c = strncasecmp(x, y, nx < ny ? nx : ny);
    return c ? c : (nx > ny) - (nx < ny);
}

int pc_s3_sign_headers(const char *method, const char *path, const char *query, const char *host,
                       const char *const *hdrs, size_t n, const char *region,
                       const char *access_key, const char *secret_key, time_t now, char *authz,
                       size_t asize, char stamp[17])
{
    const char *v[16];
    char line[64];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, 17, "%Y%m%dT%H%M%SZ", &tm);
    if (n > 12) {
        pc_error_set("S3: too many headers to sign");
        return PC_EINVAL;
    }
    snprintf(line, sizeof(line), "x-amz-date:%s", stamp);
    char hostline[600];
    snprintf(hostline, sizeof(hostline), "host:%s", host);
    size_t m = 0;
    v[m++] = hostline;
    v[m++] = line;
    for (size_t i = 0; i < n; i++)
        v[m++] = hdrs[i];
    /* sorted by name alone: "x-amz-copy-source" before
     * "x-amz-copy-source-range" (libcurl 7.88 sorts whole lines and gets
     * that pair wrong) */
    qsort(v, m, sizeof(v[0]), header_cmp);
    pc_buf canon = {0}, names = {0};
    const char *payload = "UNSIGNED-PAYLOAD";
    size_t payload_len = strlen(payload);
    pc_buf_printf(&canon, "%s\n%s\n%s\n", method, path, query ? query : "");
    for (size_t i = 0; i < m; i++) {
        size_t nl = strcspn(v[i], ":");
        const char *val = v[i][nl] ? v[i] + nl + 1 : "";
        while (*val == ' ' || *val == '\t')
            val++;
        size_t vl = strlen(val);
        while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            vl--;
        if (nl == 20 && strncasecmp(v[i], "x-amz-content-sha256", 20) == 0) {
            payload = val; /* the payload's hash line is this header's value */
            payload_len = vl;
        }
        for (size_t j = 0; j < nl; j++) {
            char c = (char)tolower((unsigned char)v[i][j]);
            pc_buf_add(&canon, &c, 1);
            pc_buf_add(&names, &c, 1);
        }
        pc_buf_str(&canon, ":");
        pc_buf_add(&canon, val, vl);
        pc_buf_str(&canon, "\n");
        if (i + 1 < m)
            pc_buf_str(&names, ";");
    }
    pc_buf_printf(&canon, "\n%s\n", names.s ? names.s : "");
    pc_buf_add(&canon, payload, payload_len);
    char sig[65];
    int rc =
        canon.nomem || names.nomem ? PC_ENOMEM : signature(canon.s, stamp, region, secret_key, sig);
    if (rc == 0 &&
        (size_t)snprintf(authz, asize,
                         "Authorization: AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/aws4_request, "
                         "SignedHeaders=%s, Signature=%s",
                         access_key, stamp, region, names.s, sig) >= asize) {
        pc_error_set("S3: the Authorization header does not fit");
        rc = PC_ETOOBIG;
    }
    pc_buf_free(&canon);
    pc_buf_free(&names);
    return rc;
}

int pc_s3_presign_url(const char *url, const char *host, const char *region, const char *access_key,
                      const char *secret_key, long ttl_s, time_t now, char *buf, size_t size)
{
    char stamp[17], cred[400], ecred[600], canon[4096], query[1024], sig[65];
    struct tm tm;
    if (ttl_s < 1 || ttl_s > 604800) {
        pc_error_set("S3 presign: a URL lives 1 s to 7 days, not %ld s", ttl_s);
        return PC_EINVAL;
    }
    /* the path: everything after scheme://host */
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    if (!p || strchr(p, '?')) {
        pc_error_set("S3 presign: %s is no object URL", url);
        return PC_EINVAL;
    }
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    /* the query, sorted by name, as it is signed and sent */
    if ((size_t)snprintf(cred, sizeof(cred), "%s/%.8s/%s/s3/aws4_request", access_key, stamp,
                         region) >= sizeof(cred) ||
        pc_s3_uri_encode(cred, false, ecred, sizeof(ecred)) != 0 ||
        (size_t)snprintf(query, sizeof(query),
                         "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
                         "&X-Amz-Expires=%ld&X-Amz-SignedHeaders=host",
                         ecred, stamp, ttl_s) >= sizeof(query) ||
        (size_t)snprintf(canon, sizeof(canon), "GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", p,
                         query, host) >= sizeof(canon))
        goto toolong;
    int rc = signature(canon, stamp, region, secret_key, sig);
    if (rc)
        return rc;
    if ((size_t)snprintf(buf, size, "%s?%s&X-Amz-Signature=%s", url, query, sig) >= size)
        goto toolong;
    return 0;
toolong:
    pc_error_set("S3 presign: the URL does not fit in %zu bytes", size);
    return PC_ETOOBIG;
}
