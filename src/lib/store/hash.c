/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/hash.c - a SHA-256/SHA-512 hasher with a state that saves to bytes
 * (store/hash.h).
 *
 * Why the deprecated low-level API: OpenSSL 3's EVP_MD_CTX cannot be
 * serialized, but SHA256_CTX / SHA512_CTX are plain public structs. They
 * run the same (hardware accelerated) block functions as EVP. This file,
 * and only this one, uses them deliberately, hence
 * OPENSSL_SUPPRESS_DEPRECATED before the include. No SHA-2 is written here.
 *
 * Saved state, little-endian: "PCH2", alg byte, 3 zero bytes, the count
 * of bytes hashed (u64), then the context's fields: SHA-256 h[8], Nl, Nh,
 * num, md_len as u32 and the 64-byte partial block; SHA-512 h[8], Nl, Nh as
 * u64, num, md_len as u32 and the 128-byte partial block. restore checks
 * that the fields agree with each other.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "hash.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

struct pc_hash {
    pc_digest_alg alg;
    uint64_t count;
    union {
        SHA256_CTX s256;
        SHA512_CTX s512;
    } c;
};

#define STATE_HEAD 16 /* magic, alg, pad, count */

int pc_hash_new(pc_hash **out, pc_digest_alg alg)
{
    pc_hash *h = calloc(1, sizeof(*h));
    if (!h)
        return PC_ENOMEM;
    h->alg = alg;
    int ok = alg == PC_DIGEST_SHA512 ? SHA512_Init(&h->c.s512) : SHA256_Init(&h->c.s256);
    if (ok != 1) {
        free(h);
        pc_error_set("cannot start a hasher");
        return PC_ERR;
    }
    *out = h;
    return 0;
}

int pc_hash_update(pc_hash *h, const void *buf, size_t len)
{
    if (!len)
        return 0;
    int ok = h->alg == PC_DIGEST_SHA512 ? SHA512_Update(&h->c.s512, buf, len)
                                        : SHA256_Update(&h->c.s256, buf, len);
    if (ok != 1) {
        pc_error_set("hash update failed");
        return PC_ERR;
    }
    h->count += len;
    return 0;
}

pc_digest_alg pc_hash_alg(const pc_hash *h)
{
    return h->alg;
}

uint64_t pc_hash_count(const pc_hash *h)
{
    return h->count;
}

int pc_hash_peek(const pc_hash *h, pc_digest *out)
{
    static const char hx[] = "0123456789abcdef";
    unsigned char md[SHA512_DIGEST_LENGTH];
    size_t mdlen;
    pc_hash copy = *h; /* Final consumes the context */
    int ok;
    if (h->alg == PC_DIGEST_SHA512) {
        ok = SHA512_Final(md, &copy.c.s512);
        mdlen = SHA512_DIGEST_LENGTH;
    } else {
        ok = SHA256_Final(md, &copy.c.s256);
        mdlen = SHA256_DIGEST_LENGTH;
    }
    if (ok != 1) {
        pc_error_set("hash final failed");
        return PC_ERR;
    }
    char s[PC_DIGEST_MAX];
    const char *name = pc_digest_alg_name(h->alg);
    size_t nl = strlen(name);
    memcpy(s, name, nl);
    s[nl] = ':';
    char *p = s + nl + 1;
    for (size_t i = 0; i < mdlen; i++) {
        *p++ = hx[md[i] >> 4];
        *p++ = hx[md[i] & 15];
    }
    *p = '\0';
    return pc_digest_parse(out, s);
}

static unsigned char *put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static const unsigned char *get_le(const unsigned char *p, uint64_t *v, int n)
{
    *v = 0;
    for (int i = 0; i < n; i++)
        *v |= (uint64_t)p[i] << (8 * i);
    return p + n;
}

/* Bytes of the saved state for alg. */
static size_t state_len(pc_digest_alg alg)
{
    return alg == PC_DIGEST_SHA512 ? STATE_HEAD + 8 * 8 + 2 * 8 + 2 * 4 + SHA512_CBLOCK
                                   : STATE_HEAD + 8 * 4 + 2 * 4 + 2 * 4 + SHA256_CBLOCK;
}

int pc_hash_save(const pc_hash *h, void *buf, size_t size, size_t *len)
{
    size_t need = state_len(h->alg);
    if (size < need) {
        pc_error_set("hash state needs %zu bytes", need);
        return PC_ETOOBIG;
    }
    unsigned char *p = buf;
    memcpy(p, "PCH2", 4);
    p[4] = (unsigned char)h->alg;
    p[5] = p[6] = p[7] = 0;
    p = put_le(p + 8, h->count, 8);
    if (h->alg == PC_DIGEST_SHA512) {
        const SHA512_CTX *c = &h->c.s512;
        for (int i = 0; i < 8; i++)
            p = put_le(p, c->h[i], 8);
        p = put_le(p, c->Nl, 8);
        p = put_le(p, c->Nh, 8);
        p = put_le(p, c->num, 4);
        p = put_le(p, c->md_len, 4);
        memcpy(p, c->u.p, SHA512_CBLOCK);
    } else {
        const SHA256_CTX *c = &h->c.s256;
        for (int i = 0; i < 8; i++)
            p = put_le(p, c->h[i], 4);
        p = put_le(p, c->Nl, 4);
        p = put_le(p, c->Nh, 4);
        p = put_le(p, c->num, 4);
        p = put_le(p, c->md_len, 4);
        memcpy(p, c->data, SHA256_CBLOCK);
    }
    *len = need;
    return 0;
}

static int bad_state(pc_hash *h, const char *why)
{
    free(h);
    pc_error_set("saved hash state is damaged: %s", why);
    return PC_EINVAL;
}

int pc_hash_restore(pc_hash **out, pc_digest_alg alg, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (!buf || len != state_len(alg) || memcmp(p, "PCH2", 4) != 0 || p[4] != (unsigned char)alg ||
        p[5] || p[6] || p[7]) {
        pc_error_set("saved hash state is not a %s state", pc_digest_alg_name(alg));
        return PC_EINVAL;
    }
    pc_hash *h = calloc(1, sizeof(*h));
    if (!h)
        return PC_ENOMEM;
    h->alg = alg;
    uint64_t v, nl, nh, num, mdlen;
    p = get_le(p + 8, &h->count, 8);
    if (alg == PC_DIGEST_SHA512) {
        SHA512_CTX *c = &h->c.s512;
        for (int i = 0; i < 8; i++) {
            p = get_le(p, &v, 8);
            c->h[i] = v;
        }
        p = get_le(p, &nl, 8);
        p = get_le(p, &nh, 8);
        p = get_le(p, &num, 4);
        p = get_le(p, &mdlen, 4);
        memcpy(c->u.p, p, SHA512_CBLOCK);
        /* Nl:Nh count bits */
        if (nh != h->count >> 61 || nl != h->count << 3)
            return bad_state(h, "length fields disagree");
        if (num != h->count % SHA512_CBLOCK || mdlen != SHA512_DIGEST_LENGTH)
            return bad_state(h, "block fields disagree");
        c->Nl = nl;
        c->Nh = nh;
        c->num = (unsigned)num;
        c->md_len = (unsigned)mdlen;
    } else {
        SHA256_CTX *c = &h->c.s256;
        for (int i = 0; i < 8; i++) {
            p = get_le(p, &v, 4);
            c->h[i] = (SHA_LONG)v;
        }
        p = get_le(p, &nl, 4);
        p = get_le(p, &nh, 4);
        p = get_le(p, &num, 4);
        p = get_le(p, &mdlen, 4);
        memcpy(c->data, p, SHA256_CBLOCK);
        uint64_t bits = h->count << 3;
        if (nl != (bits & 0xffffffffu) || nh != ((h->count >> 29) & 0xffffffffu))
            return bad_state(h, "length fields disagree");
        if (num != h->count % SHA256_CBLOCK || mdlen != SHA256_DIGEST_LENGTH)
            return bad_state(h, "block fields disagree");
        c->Nl = (SHA_LONG)nl;
        c->Nh = (SHA_LONG)nh;
        c->num = (unsigned)num;
        c->md_len = (unsigned)mdlen;
    }
    *out = h;
    return 0;
}

void pc_hash_free(pc_hash *h)
{
    free(h);
}
