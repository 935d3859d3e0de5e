/*
 * digest.c - digest validation and hashing (OpenSSL EVP, which uses the
 * CPU's SHA extensions when present).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "digest.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

struct pc_hasher {
    EVP_MD_CTX *ctx;
    pc_digest_alg alg;
};

static const struct {
    const char *name;
    size_t hexlen;
} algs[] = {
    [PC_DIGEST_SHA256] = {"sha256", 64},
    [PC_DIGEST_SHA512] = {"sha512", 128},
};

static const EVP_MD *alg_md(pc_digest_alg alg)
{
    return alg == PC_DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

const char *pc_digest_alg_name(pc_digest_alg alg)
{
    return algs[alg].name;
}

/* The spec's grammar: algorithm ":" encoded, algorithm components
 * [a-z0-9]+ joined by [+._-], encoded [a-zA-Z0-9=_-]+. */
static bool grammar_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return false;
    bool need_alnum = true;
    for (const char *p = s; p < colon; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
        if (alnum)
            need_alnum = false;
        else if (!need_alnum && strchr("+._-", *p))
            need_alnum = true;
        else
            return false;
    }
    if (need_alnum || !colon[1])
        return false;
    for (const char *p = colon + 1; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '=' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int pc_digest_parse(pc_digest *out, const char *s)
{
    if (!s || strlen(s) >= PC_DIGEST_MAX + 64 || !grammar_ok(s)) {
        pc_error_set("invalid digest");
        return PC_EINVAL;
    }
    for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
        size_t nl = strlen(algs[a].name);
        if (strncmp(s, algs[a].name, nl) != 0 || s[nl] != ':')
            continue;
        const char *hex = s + nl + 1;
        if (strlen(hex) != algs[a].hexlen || !pc_util_is_lower_hex(hex, algs[a].hexlen)) {
            pc_error_set("invalid %s digest: want %zu lowercase hex characters", algs[a].name,
                         algs[a].hexlen);
            return PC_EINVAL;
        }
        out->alg = (pc_digest_alg)a;
        memcpy(out->str, s, nl + 1 + algs[a].hexlen + 1);
        return 0;
    }
    pc_error_set("unsupported digest algorithm (sha256 and sha512 are supported)");
    return PC_ENOTSUP;
}

const char *pc_digest_hex(const pc_digest *d)
{
    return d->str + strlen(algs[d->alg].name) + 1;
}

bool pc_digest_equal(const pc_digest *a, const pc_digest *b)
{
    return a->alg == b->alg && strcmp(a->str, b->str) == 0;
}

static void format_digest(pc_digest *out, pc_digest_alg alg, const unsigned char *md,
                          unsigned int mdlen)
{
    static const char hx[] = "0123456789abcdef";
    size_t nl = strlen(algs[alg].name);
    out->alg = alg;
    memcpy(out->str, algs[alg].name, nl);
    out->str[nl] = ':';
    char *p = out->str + nl + 1;
    for (unsigned int i = 0; i < mdlen; i++) {
        *p++ = hx[md[i] >> 4];
        *p++ = hx[md[i] & 15];
    }
    *p = '\0';
}

int pc_hasher_new(pc_hasher **out, pc_digest_alg alg)
{
    pc_hasher *h = calloc(1, sizeof(*h));
    if (!h)
        return PC_ENOMEM;
    h->alg = alg;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, alg_md(alg), NULL) != 1) {
        pc_hasher_free(h);
        pc_error_set("cannot start %s hasher", algs[alg].name);
        return PC_ERR;
    }
    *out = h;
    return 0;
}

int pc_hasher_update(pc_hasher *h, const void *buf, size_t len)
{
    if (len && EVP_DigestUpdate(h->ctx, buf, len) != 1) {
        pc_error_set("hash update failed");
        return PC_ERR;
    }
    return 0;
}

int pc_hasher_final(pc_hasher *h, pc_digest *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1) {
        pc_error_set("hash final failed");
        return PC_ERR;
    }
    format_digest(out, h->alg, md, mdlen);
    return 0;
}

void pc_hasher_free(pc_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int pc_digest_buffer(pc_digest *out, pc_digest_alg alg, const void *buf, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, len, md, &mdlen, alg_md(alg), NULL) != 1) {
        pc_error_set("hash failed");
        return PC_ERR;
    }
    format_digest(out, alg, md, mdlen);
    return 0;
}

int pc_digest_fd(pc_digest *out, pc_digest_alg alg, int fd)
{
    pc_hasher *h = NULL;
    int rc = pc_hasher_new(&h, alg);
    if (rc)
        return rc;
    enum { BUFSZ = 256 * 1024 };
    char *buf = malloc(BUFSZ);
    if (!buf) {
        rc = PC_ENOMEM;
        goto done;
    }
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, BUFSZ, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pc_error_set("read failed while hashing: %s", strerror(errno));
            rc = PC_ERR;
            goto done;
        }
        if (n == 0)
            break;
        if ((rc = pc_hasher_update(h, buf, (size_t)n)))
            goto done;
        off += n;
    }
    rc = pc_hasher_final(h, out);
done:
    free(buf);
    pc_hasher_free(h);
    return rc;
}
