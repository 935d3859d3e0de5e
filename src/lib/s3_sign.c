/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3_sign.c - SigV4 query-string presigning (s3.h pc_s3_presign_url) and
 * the URI encoding S3 signs. libcurl signs requests it sends
 * (CURLOPT_AWS_SIGV4) but cannot presign a URL for someone else, so this is
 * the one place that computes SigV4 itself, with OpenSSL's HMAC and
 * SHA-256.
 */
#include "s3.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

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

int pc_s3_presign_url(const char *url, const char *host, const char *region, const char *access_key,
                      const char *secret_key, long ttl_s, time_t now, char *buf, size_t size)
{
    char date[9], stamp[17], scope[160], cred[400], ecred[600], canon[4096], sts[512];
    unsigned char k[32], h[32];
    char hh[65];
    struct tm tm;
    int rc = PC_ETOOBIG;
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
    strftime(date, sizeof(date), "%Y%m%d", &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    if ((size_t)snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, region) >=
            sizeof(scope) ||
        (size_t)snprintf(cred, sizeof(cred), "%s/%s", access_key, scope) >= sizeof(cred) ||
        pc_s3_uri_encode(cred, false, ecred, sizeof(ecred)) != 0)
        goto toolong;
    /* the query, sorted by name, as it is signed and sent */
    char query[1024];
    if ((size_t)snprintf(query, sizeof(query),
                         "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
                         "&X-Amz-Expires=%ld&X-Amz-SignedHeaders=host",
                         ecred, stamp, ttl_s) >= sizeof(query))
        goto toolong;
    if ((size_t)snprintf(canon, sizeof(canon), "GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", p,
                         query, host) >= sizeof(canon))
        goto toolong;
    unsigned int dl = 0;
    if (!EVP_Digest(canon, strlen(canon), h, &dl, EVP_sha256(), NULL))
        goto crypto;
    hex_of(h, 32, hh);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", stamp, scope, hh);
    char kstart[300];
    if ((size_t)snprintf(kstart, sizeof(kstart), "AWS4%s", secret_key) >= sizeof(kstart))
        goto toolong;
    bool ok = hmac(kstart, strlen(kstart), date, k) && hmac(k, 32, region, k) &&
              hmac(k, 32, "s3", k) && hmac(k, 32, "aws4_request", k) && hmac(k, 32, sts, h);
    OPENSSL_cleanse(kstart, sizeof(kstart));
    OPENSSL_cleanse(k, sizeof(k));
    if (!ok)
        goto crypto;
    hex_of(h, 32, hh);
    if ((size_t)snprintf(buf, size, "%s?%s&X-Amz-Signature=%s", url, query, hh) >= size)
        goto toolong;
    return 0;
toolong:
    pc_error_set("S3 presign: the URL does not fit in %zu bytes", size);
    return rc;
crypto:
    pc_error_set("S3 presign: OpenSSL could not compute the signature");
    return PC_ERR;
}
