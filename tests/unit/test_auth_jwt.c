/*
 * test_auth_jwt.c - unit tests for auth_jwt.c: sign then verify; a token signed
 * outside pullcache (openssl dgst, DER converted to r||s) with a fixed key
 * whose libtrust key id was computed independently; tampered payloads and
 * signatures; every alg but ES256 refused (none, HS256 keyed with the
 * public key, case and type variants); exp, nbf and the leeway; issuer and
 * audience; keys from PEM (PKCS#8, SEC1, public key, certificate, files)
 * and the kinds refused; the access claim's entries; malformed tokens.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base64.h"
#include "auth_jwt.h"

#define NOW 1700000000
#define ISS "auth.example"
#define AUD "registry.example"

/* A P-256 key made with `openssl ecparam -genkey`, its libtrust key id
 * computed with Python (SHA-256 of the DER public key, base32), and a
 * token signed with `openssl dgst -sha256 -sign` (DER turned into r||s). */
#define FIXED_PEM                                                                                  \
    "-----BEGIN PRIVATE KEY-----\n"                                                                \
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQ5w3/ZFF4fUdQ4kK\n"                           \
    "J+GnXPqMKE95h1DLmmmCZjXU2BGhRANCAAT8qfHNrf2psa88ly8ROlZ+rWc0NblQ\n"                           \
    "3+hDgtrKFM1zqfL+zWG0ymR3Rj8otywoUQk9Ev8zZNlGnSezfMGZlXMK\n"                                   \
    "-----END PRIVATE KEY-----\n"
#define FIXED_KID "3BM7:3VJ6:4XMH:L4AR:3R2Z:PLHO:Z47M:I75Q:FEB3:ML76:PFJG:RN7D"
#define FIXED_TOKEN                                                                                \
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6IjNCTTc6M1ZKNjo0WE1IOkw0QVI6M1IyWjpQTEhPOlo0N006" \
    "STc1UTpGRUIzOk1MNzY6UEZKRzpSTjdEIn0.eyJpc3MiOiJhdXRoLmV4YW1wbGUiLCJzdWIiOiJqbGhhd24iLCJhdWQi" \
    "OiJyZWdpc3RyeS5leGFtcGxlIiwiZXhwIjo0MTAyNDQ0ODAwLCJuYmYiOjE3MDAwMDAwMDAsImlhdCI6MTcwMDAwMDAw" \
    "MCwianRpIjoiZml4ZWQtMSIsImFjY2VzcyI6W3sidHlwZSI6InJlcG9zaXRvcnkiLCJuYW1lIjoic2FtYWxiYS9teS1h" \
    "cHAiLCJhY3Rpb25zIjpbInB1bGwiLCJwdXNoIl19XX0.JPA9oCLL4ezSUzlbav3EBsSQUWVhDKiGIwwST9NHm-"       \
    "hlwZUNI"                                                                                      \
    "iFdRvztVYxpNZeJUc4fxKesUDjhagcQ3zQI5Q"

static pc_jwt_key *key_a, *key_b;

static int setup(void **state)
{
    (void)state;
    if (pc_jwt_key_generate(&key_a) != 0 || pc_jwt_key_generate(&key_b) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pc_jwt_key_free(key_a);
    pc_jwt_key_free(key_b);
    return 0;
}

static pc_jwt_verify_opts opts_for(const pc_jwt_key *const *keys, size_t n)
{
    pc_jwt_verify_opts o = {ISS, AUD, keys, n, -1, NOW};
    return o;
}

static int verify_with(const char *tok, const pc_jwt_key *k, pc_jwt_claims *c)
{
    const pc_jwt_key *keys[] = {k};
    pc_jwt_verify_opts o = opts_for(keys, 1);
    return pc_jwt_verify(tok, strlen(tok), &o, c);
}

static void claims_init(pc_jwt_claims *c, const char *sub)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->iss, sizeof(c->iss), "%s", ISS);
    snprintf(c->aud, sizeof(c->aud), "%s", AUD);
    snprintf(c->sub, sizeof(c->sub), "%s", sub);
    c->iat = NOW;
    c->exp = NOW + 300;
}

/* A token with exactly this header and payload, signed by k. */
static char *raw(const pc_jwt_key *k, const char *header, const char *payload)
{
    char *t = NULL;
    assert_int_equal(pc_jwt_sign_raw(k, header, strlen(header), payload, strlen(payload), &t), 0);
    return t;
}

#define HDR "{\"typ\":\"JWT\",\"alg\":\"ES256\"}"
#define PAYLOAD_FMT "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d%s}"

/* A payload with the standard claims and exp, plus extra ("" or ",..."). */
static const char *payload(int exp, const char *extra)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), PAYLOAD_FMT, exp, extra);
    return buf;
}

static void verify_bad(const char *tok, const pc_jwt_key *k, const char *why)
{
    pc_jwt_claims c;
    pc_error_clear();
    int rc = verify_with(tok, k, &c);
    if (rc != PC_EINVAL)
        fail_msg("rc %d, want PC_EINVAL (%s)", rc, why);
    assert_null(c.access);
    assert_int_equal(c.exp, 0);
    if (!strstr(pc_error_last(), why))
        fail_msg("message \"%s\" lacks \"%s\"", pc_error_last(), why);
}

static void test_round_trip(void **state)
{
    (void)state;
    pc_auth_scope acc[3] = {
        {PC_AUTH_REPOSITORY, "team/app", PC_AUTH_PULL | PC_AUTH_PUSH},
        {PC_AUTH_REPOSITORY, "team/none", 0}, /* left out */
        {PC_AUTH_REGISTRY, "catalog", PC_AUTH_ALL},
    };
    pc_jwt_claims in, out;
    claims_init(&in, "alice");
    snprintf(in.jti, sizeof(in.jti), "id-1");
    in.access = acc;
    in.access_count = 3;
    char *tok = NULL;
    assert_int_equal(pc_jwt_sign(key_a, &in, &tok), 0);

    /* three base64url segments; the signature is 64 bytes */
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    assert_true(d1 && d2 && d1 != d2);
    assert_int_equal(strlen(d2 + 1), 86);
    unsigned char *hdr = NULL;
    size_t n;
    assert_int_equal(pc_base64_decode(tok, (size_t)(d1 - tok), true, &hdr, &n), 0);
    char want[160];
    snprintf(want, sizeof(want), "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"kid\":\"%s\"}",
             pc_jwt_key_id(key_a));
    assert_string_equal((char *)hdr, want);
    free(hdr);

    assert_int_equal(verify_with(tok, key_a, &out), 0);
    assert_string_equal(out.iss, ISS);
    assert_string_equal(out.sub, "alice");
    assert_string_equal(out.aud, AUD);
    assert_string_equal(out.jti, "id-1");
    assert_int_equal(out.iat, NOW);
    assert_int_equal(out.nbf, NOW);
    assert_int_equal(out.exp, NOW + 300);
    assert_int_equal(out.access_count, 2);
    assert_int_equal(out.access[0].type, PC_AUTH_REPOSITORY);
    assert_string_equal(out.access[0].name, "team/app");
    assert_int_equal(out.access[0].actions, PC_AUTH_PULL | PC_AUTH_PUSH);
    assert_int_equal(out.access[1].type, PC_AUTH_REGISTRY);
    assert_int_equal(out.access[1].actions, PC_AUTH_ALL);
    pc_jwt_claims_clear(&out);
    assert_null(out.access);

    /* the other key does not verify it */
    verify_bad(tok, key_b, "bad signature");
    free(tok);
}

static void test_defaults(void **state)
{
    (void)state;
    pc_jwt_claims in, out;
    memset(&in, 0, sizeof(in));
    snprintf(in.iss, sizeof(in.iss), "%s", ISS);
    snprintf(in.aud, sizeof(in.aud), "%s", AUD);
    char *t1 = NULL, *t2 = NULL;
    assert_int_equal(pc_jwt_sign(key_a, &in, &t1), 0);
    assert_int_equal(pc_jwt_sign(key_a, &in, &t2), 0);
    const pc_jwt_key *keys[] = {key_a};
    pc_jwt_verify_opts o = opts_for(keys, 1);
    o.now = 0; /* the real clock */
    assert_int_equal(pc_jwt_verify(t1, strlen(t1), &o, &out), 0);
    assert_string_equal(out.sub, ""); /* anonymous */
    assert_int_equal(out.exp - out.iat, PC_JWT_TTL);
    assert_int_equal(out.nbf, out.iat);
    assert_int_equal(strlen(out.jti), 22); /* 16 random bytes */
    char jti1[PC_JWT_STR_MAX];
    snprintf(jti1, sizeof(jti1), "%s", out.jti);
    pc_jwt_claims_clear(&out);
    assert_int_equal(pc_jwt_verify(t2, strlen(t2), &o, &out), 0);
    assert_string_not_equal(out.jti, jti1);
    pc_jwt_claims_clear(&out);
    free(t1);
    free(t2);

    /* what cannot be signed */
    char *t = (char *)"x";
    in.exp = NOW;
    in.nbf = NOW + 10;
    assert_int_equal(pc_jwt_sign(key_a, &in, &t), PC_EINVAL);
    assert_null(t);
    claims_init(&in, "x");
    in.aud[0] = '\0';
    assert_int_equal(pc_jwt_sign(key_a, &in, &t), PC_EINVAL);
    claims_init(&in, "x");
    pc_auth_scope bad = {PC_AUTH_REPOSITORY, "Bad/Name", PC_AUTH_PULL};
    in.access = &bad;
    in.access_count = 1;
    assert_int_equal(pc_jwt_sign(key_a, &in, &t), PC_EINVAL);
    claims_init(&in, "\xff\xfe"); /* JSON strings are UTF-8 */
    assert_int_equal(pc_jwt_sign(key_a, &in, &t), PC_EINVAL);
}

static void test_fixed_token(void **state)
{
    (void)state;
    pc_jwt_key *k = NULL;
    assert_int_equal(pc_jwt_key_from_pem(&k, FIXED_PEM, strlen(FIXED_PEM), true), 0);
    assert_string_equal(pc_jwt_key_id(k), FIXED_KID);
    pc_jwt_claims c;
    assert_int_equal(verify_with(FIXED_TOKEN, k, &c), 0);
    assert_string_equal(c.sub, "jlhawn");
    assert_string_equal(c.jti, "fixed-1");
    assert_int_equal(c.exp, 4102444800LL);
    assert_int_equal(c.access_count, 1);
    assert_string_equal(c.access[0].name, "samalba/my-app");
    assert_int_equal(c.access[0].actions, PC_AUTH_PULL | PC_AUTH_PUSH);
    pc_jwt_claims_clear(&c);

    /* from its public half alone, as an external issuer's key is given */
    char *pub = NULL;
    assert_int_equal(pc_jwt_key_public_pem(k, &pub), 0);
    assert_non_null(strstr(pub, "-----BEGIN PUBLIC KEY-----"));
    pc_jwt_key *kp = NULL;
    assert_int_equal(pc_jwt_key_from_pem(&kp, pub, strlen(pub), false), 0);
    assert_false(pc_jwt_key_can_sign(kp));
    assert_true(pc_jwt_key_can_sign(k));
    assert_string_equal(pc_jwt_key_id(kp), FIXED_KID);
    assert_int_equal(verify_with(FIXED_TOKEN, kp, &c), 0);
    pc_jwt_claims_clear(&c);
    free(pub);
    pc_jwt_key_free(kp);
    pc_jwt_key_free(k);
}

static void test_tampered(void **state)
{
    (void)state;
    pc_jwt_claims in;
    claims_init(&in, "alice");
    char *tok = NULL, *other = NULL;
    assert_int_equal(pc_jwt_sign(key_a, &in, &tok), 0);
    claims_init(&in, "admin");
    assert_int_equal(pc_jwt_sign(key_a, &in, &other), 0);
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char *o2 = strrchr(other, '.');

    /* alice's signature on admin's claims */
    char buf[2048];
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(o2 - other), other, d2);
    verify_bad(buf, key_a, "bad signature");
    /* a character of the payload changed */
    snprintf(buf, sizeof(buf), "%s", tok);
    size_t mid = (size_t)(d1 - tok) + (size_t)(d2 - d1) / 2;
    buf[mid] = buf[mid] == 'A' ? 'B' : 'A';
    verify_bad(buf, key_a, "token: ");
    /* a character of the signature changed */
    snprintf(buf, sizeof(buf), "%s", tok);
    size_t s = (size_t)(d2 - tok) + 10;
    buf[s] = buf[s] == 'A' ? 'B' : 'A';
    verify_bad(buf, key_a, "bad signature");
    /* the signature cut or grown */
    snprintf(buf, sizeof(buf), "%.*s", (int)strlen(tok) - 2, tok);
    verify_bad(buf, key_a, "malformed signature");
    snprintf(buf, sizeof(buf), "%sAAAA", tok);
    verify_bad(buf, key_a, "malformed signature");
    free(tok);
    free(other);
}

static void test_alg(void **state)
{
    (void)state;
    const char *pay = payload(NOW + 60, "");
    char *pay64 = NULL, *buf = NULL;
    assert_int_equal(pc_base64_encode(pay, strlen(pay), true, &pay64), 0);

    /* "none": no signature, or a real one carried along */
    static const char *none_hdrs[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}",
                                      "{\"alg\":\"\"}"};
    for (size_t i = 0; i < sizeof(none_hdrs) / sizeof(none_hdrs[0]); i++) {
        char *h64 = NULL;
        assert_int_equal(pc_base64_encode(none_hdrs[i], strlen(none_hdrs[i]), true, &h64), 0);
        size_t n = strlen(h64) + strlen(pay64) + 4;
        buf = malloc(n);
        snprintf(buf, n, "%s.%s.", h64, pay64);
        verify_bad(buf, key_a, "alg is not ES256");
        free(buf);
        char *signed_tok = raw(key_a, none_hdrs[i], pay);
        verify_bad(signed_tok, key_a, "alg is not ES256");
        free(signed_tok);
        free(h64);
    }

    /* HS256 keyed with the public key PEM: the classic confusion */
    char *pub = NULL;
    assert_int_equal(pc_jwt_key_public_pem(key_a, &pub), 0);
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *h64 = NULL, *mac64 = NULL;
    assert_int_equal(pc_base64_encode(hs, strlen(hs), true, &h64), 0);
    size_t n = strlen(h64) + strlen(pay64) + 100;
    buf = malloc(n);
    int in_len = snprintf(buf, n, "%s.%s", h64, pay64);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), pub, (int)strlen(pub), (unsigned char *)buf, (size_t)in_len,
                         mac, &mac_len));
    assert_int_equal(pc_base64_encode(mac, mac_len, true, &mac64), 0);
    snprintf(buf + in_len, n - (size_t)in_len, ".%s", mac64);
    verify_bad(buf, key_a, "alg is not ES256");
    free(buf);
    free(h64);
    free(mac64);
    free(pub);

    /* a valid ES256 signature under any other alg value is refused too */
    static const char *hdrs[] = {
        "{\"alg\":\"HS256\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"ES384\"}",
        "{\"alg\":\"es256\"}",
        "{\"alg\":\"ES256 \"}",
        "{\"alg\":\" ES256\"}",
        "{\"alg\":[\"ES256\"]}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":\"ES256\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        char *t = raw(key_a, hdrs[i], pay);
        pc_jwt_claims c;
        if (verify_with(t, key_a, &c) != PC_EINVAL)
            fail_msg("header %s accepted", hdrs[i]);
        free(t);
    }
    /* extensions we do not understand; headers that are not objects */
    char *t = raw(key_a, "{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}", pay);
    verify_bad(t, key_a, "critical");
    free(t);
    t = raw(key_a, "[\"ES256\"]", pay);
    verify_bad(t, key_a, "not a compact JWT");
    free(t);
    t = raw(key_a, "{\"alg\":\"ES256\",\"alg\":\"none\"}", pay); /* duplicate keys */
    verify_bad(t, key_a, "not a compact JWT");
    free(t);
    /* a key inside the token is never trusted */
    t = raw(key_b, "{\"alg\":\"ES256\",\"jwk\":{\"kty\":\"EC\"},\"x5c\":[\"AAAA\"]}", pay);
    verify_bad(t, key_a, "bad signature");
    free(t);
    free(pay64);
}

static void test_time(void **state)
{
    (void)state;
    static const struct {
        const char *payload_extra;
        int exp_offset;
        int leeway;
        int want;
        const char *why;
    } cases[] = {
        {"", 60, -1, 0, ""},
        {"", -120, -1, PC_EINVAL, "expired"},
        {"", -30, -1, 0, ""}, /* within the default leeway */
        {"", -30, 0, PC_EINVAL, "expired"},
        {"", 0, 0, PC_EINVAL, "expired"}, /* exp is the first invalid second */
        {",\"nbf\":1700000300", 600, -1, PC_EINVAL, "not valid yet"},
        {",\"nbf\":1700000030", 600, -1, 0, ""},
        {",\"nbf\":1700000030", 600, 0, PC_EINVAL, "not valid yet"},
        {",\"nbf\":1699999000,\"iat\":1699999000", 600, 0, 0, ""},
        {",\"nbf\":\"soon\"", 600, -1, PC_EINVAL, "not a date"},
        {",\"iat\":true", 600, -1, PC_EINVAL, "not a date"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = raw(key_a, HDR, payload(NOW + cases[i].exp_offset, cases[i].payload_extra));
        const pc_jwt_key *keys[] = {key_a};
        pc_jwt_verify_opts o = opts_for(keys, 1);
        o.leeway = cases[i].leeway;
        pc_jwt_claims c;
        int rc = pc_jwt_verify(t, strlen(t), &o, &c);
        if (rc != cases[i].want || (rc != 0 && !strstr(pc_error_last(), cases[i].why)))
            fail_msg("case %zu: rc %d (%s)", i, rc, pc_error_last());
        pc_jwt_claims_clear(&c);
        free(t);
    }
    /* exp is required, and must be a number */
    char *t = raw(key_a, HDR, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}");
    verify_bad(t, key_a, "exp missing");
    free(t);
    t = raw(key_a, HDR, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":\"4102444800\"}");
    verify_bad(t, key_a, "exp missing");
    free(t);
    t = raw(key_a, HDR, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1e300}");
    verify_bad(t, key_a, "exp missing");
    free(t);
    /* a fractional NumericDate is fine */
    t = raw(key_a, HDR, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1700000100.5}");
    pc_jwt_claims c;
    assert_int_equal(verify_with(t, key_a, &c), 0);
    assert_int_equal(c.exp, 1700000100);
    pc_jwt_claims_clear(&c);
    free(t);
}

static void test_iss_aud(void **state)
{
    (void)state;
    static const struct {
        const char *payload;
        int want;
    } cases[] = {
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1700000600}", 0},
        {"{\"iss\":\"evil\",\"aud\":\"" AUD "\",\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":\"" ISS "x\",\"aud\":\"" AUD "\",\"exp\":1700000600}", PC_EINVAL},
        {"{\"aud\":\"" AUD "\",\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":[\"" ISS "\"],\"aud\":\"" AUD "\",\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":\"" ISS "\",\"aud\":\"other\",\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":\"" ISS "\",\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" AUD "\"],\"exp\":1700000600}", 0},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"y\"],\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":\"" ISS "\",\"aud\":[1,\"" AUD "\"],\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":\"" ISS "\",\"aud\":[],\"exp\":1700000600}", PC_EINVAL},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":7,\"exp\":1700000600}", PC_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = raw(key_a, HDR, cases[i].payload);
        pc_jwt_claims c;
        int rc = verify_with(t, key_a, &c);
        if (rc != cases[i].want)
            fail_msg("%s: rc %d (%s)", cases[i].payload, rc, pc_error_last());
        if (rc == 0)
            assert_string_equal(c.aud, AUD);
        pc_jwt_claims_clear(&c);
        free(t);
    }
    /* a verifier without an issuer or audience trusts nothing */
    char *t = raw(key_a, HDR, cases[0].payload);
    const pc_jwt_key *keys[] = {key_a};
    pc_jwt_verify_opts o = opts_for(keys, 1);
    pc_jwt_claims c;
    o.issuer = "";
    assert_int_equal(pc_jwt_verify(t, strlen(t), &o, &c), PC_EINVAL);
    o = opts_for(keys, 1);
    o.audience = NULL;
    assert_int_equal(pc_jwt_verify(t, strlen(t), &o, &c), PC_EINVAL);
    o = opts_for(keys, 0);
    assert_int_equal(pc_jwt_verify(t, strlen(t), &o, &c), PC_EINVAL);
    free(t);
}

/* PEM text of what write() puts into a memory BIO. */
static char *pem_of(int (*write)(BIO *, void *), void *obj)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(write(b, obj), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static int w_pkcs8(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}
static int w_sec1(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL);
}
static int w_pub(BIO *b, void *k)
{
    return PEM_write_bio_PUBKEY(b, k);
}
static int w_cert(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}
static int w_encrypted(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, EVP_aes_128_cbc(), (unsigned char *)"pw", 2, NULL, NULL);
}

static X509 *self_signed(EVP_PKEY *k)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"issuer", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    return x;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_external_keys(void **state)
{
    (void)state;
    EVP_PKEY *ek = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ek);
    X509 *cert = self_signed(ek);
    char *pkcs8 = pem_of(w_pkcs8, ek), *sec1 = pem_of(w_sec1, ek), *pub = pem_of(w_pub, ek);
    char *crt = pem_of(w_cert, cert), *enc = pem_of(w_encrypted, ek);
    assert_non_null(strstr(sec1, "BEGIN EC PRIVATE KEY"));

    pc_jwt_key *signer = NULL, *signer1 = NULL, *trusted = NULL, *by_cert = NULL;
    assert_int_equal(pc_jwt_key_from_pem(&signer, pkcs8, strlen(pkcs8), true), 0);
    assert_int_equal(pc_jwt_key_from_pem(&signer1, sec1, strlen(sec1), true), 0);
    assert_string_equal(pc_jwt_key_id(signer), pc_jwt_key_id(signer1));

    /* public keys and certificates, from files as a config names them */
    char path[] = "/tmp/pc-jwt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, pub);
    assert_int_equal(pc_jwt_key_load_public(&trusted, path), 0);
    write_file(path, crt);
    assert_int_equal(pc_jwt_key_load_public(&by_cert, path), 0);
    pc_jwt_key *k = (pc_jwt_key *)1;
    assert_int_equal(pc_jwt_key_load_private(&k, path), PC_EINVAL); /* not private */
    assert_null(k);
    assert_non_null(strstr(pc_error_last(), path));
    write_file(path, sec1);
    pc_jwt_key_free(signer1);
    assert_int_equal(pc_jwt_key_load_private(&signer1, path), 0);
    write_file(path, enc); /* encrypted: refused, and nobody is prompted */
    k = (pc_jwt_key *)1;
    assert_int_equal(pc_jwt_key_load_private(&k, path), PC_EINVAL);
    assert_null(k);
    unlink(path);
    assert_int_equal(pc_jwt_key_load_public(&k, path), PC_ENOTFOUND);
    assert_string_equal(pc_jwt_key_id(trusted), pc_jwt_key_id(signer));
    assert_string_equal(pc_jwt_key_id(by_cert), pc_jwt_key_id(signer));

    /* tokens of the external issuer verify with only its public key */
    pc_jwt_claims in, out;
    claims_init(&in, "bob");
    char *tok = NULL;
    assert_int_equal(pc_jwt_sign(signer1, &in, &tok), 0);
    assert_int_equal(verify_with(tok, trusted, &out), 0);
    assert_string_equal(out.sub, "bob");
    assert_int_equal(verify_with(tok, by_cert, &out), 0);
    verify_bad(tok, key_a, "bad signature");
    char *t2 = (char *)"x";
    assert_int_equal(pc_jwt_sign(trusted, &in, &t2), PC_EINVAL); /* cannot sign */
    assert_null(t2);

    /* several trusted keys: a kid naming one picks it alone; an unknown or
     * absent kid tries them all */
    const pc_jwt_key *keys[] = {key_a, trusted};
    pc_jwt_verify_opts o = opts_for(keys, 2);
    assert_int_equal(pc_jwt_verify(tok, strlen(tok), &o, &out), 0);
    char hdr[160];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", pc_jwt_key_id(key_a));
    char *lying = raw(signer, hdr, payload(NOW + 60, ""));
    assert_int_equal(pc_jwt_verify(lying, strlen(lying), &o, &out), PC_EINVAL);
    char *unknown = raw(signer, "{\"alg\":\"ES256\",\"kid\":\"NOPE\"}", payload(NOW + 60, ""));
    assert_int_equal(pc_jwt_verify(unknown, strlen(unknown), &o, &out), 0);
    char *nokid = raw(signer, HDR, payload(NOW + 60, ""));
    assert_int_equal(pc_jwt_verify(nokid, strlen(nokid), &o, &out), 0);

    free(lying);
    free(unknown);
    free(nokid);
    free(tok);
    pc_jwt_key_free(signer);
    pc_jwt_key_free(signer1);
    pc_jwt_key_free(trusted);
    pc_jwt_key_free(by_cert);
    free(pkcs8);
    free(sec1);
    free(pub);
    free(crt);
    free(enc);
    X509_free(cert);
    EVP_PKEY_free(ek);
}

static void test_key_kinds(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *kinds[] = {rsa, p384, ed};
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(kinds[i]);
        char *priv = pem_of(w_pkcs8, kinds[i]), *pub = pem_of(w_pub, kinds[i]);
        pc_jwt_key *k = (pc_jwt_key *)1;
        assert_int_equal(pc_jwt_key_from_pem(&k, priv, strlen(priv), true), PC_EINVAL);
        assert_null(k);
        assert_non_null(strstr(pc_error_last(), "P-256"));
        assert_int_equal(pc_jwt_key_from_pem(&k, pub, strlen(pub), false), PC_EINVAL);
        free(priv);
        free(pub);
        EVP_PKEY_free(kinds[i]);
    }
    pc_jwt_key *k = NULL;
    const char *junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_int_equal(pc_jwt_key_from_pem(&k, junk, strlen(junk), true), PC_EINVAL);
    assert_int_equal(pc_jwt_key_from_pem(&k, "", 0, false), PC_EINVAL);
    /* a generated key's id has the libtrust shape */
    const char *kid = pc_jwt_key_id(key_a);
    assert_int_equal(strlen(kid), 59);
    for (size_t i = 0; i < 59; i++) {
        if (i % 5 == 4)
            assert_int_equal(kid[i], ':');
        else
            assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", kid[i]));
    }
    assert_string_not_equal(kid, pc_jwt_key_id(key_b));
}

static void test_access_claim(void **state)
{
    (void)state;
    const char *extra =
        ",\"access\":["
        "{\"type\":\"repository\",\"name\":\"team/app\",\"actions\":[\"pull\"]},"
        "{\"type\":\"repository\",\"name\":\"team/app\",\"actions\":[\"push\",\"fly\"]},"
        "{\"type\":\"repository(plugin)\",\"name\":\"plug/in\",\"actions\":[\"*\"]},"
        "{\"type\":\"registry\",\"name\":\"catalog\",\"actions\":[\"*\"]},"
        "{\"type\":\"widget\",\"name\":\"team/app\",\"actions\":[\"pull\"]},"
        "{\"type\":\"repository\",\"name\":\"Team/App\",\"actions\":[\"pull\"]},"
        "{\"type\":\"repository\",\"name\":\"team/../x\",\"actions\":[\"pull\"]},"
        "{\"type\":\"repository\",\"name\":\"a:b\",\"actions\":[\"pull\"]},"
        "{\"type\":\"repository\",\"name\":\"team/x\",\"actions\":[\"pull,push\"]},"
        "{\"type\":\"repository\",\"name\":\"team/y\",\"actions\":[]},"
        "{\"type\":\"repository\",\"name\":\"team/z\",\"actions\":[\"fly\"],\"extra\":1}"
        "]";
    char *t = raw(key_a, HDR, payload(NOW + 60, extra));
    pc_jwt_claims c;
    assert_int_equal(verify_with(t, key_a, &c), 0);
    assert_int_equal(c.access_count, 3);
    assert_string_equal(c.access[0].name, "team/app");
    assert_int_equal(c.access[0].actions, PC_AUTH_PULL | PC_AUTH_PUSH); /* merged */
    assert_string_equal(c.access[1].name, "plug/in");
    assert_int_equal(c.access[1].actions, PC_AUTH_ALL);
    assert_int_equal(c.access[2].type, PC_AUTH_REGISTRY);
    pc_jwt_claims_clear(&c);
    free(t);

    /* null or empty: no access */
    t = raw(key_a, HDR, payload(NOW + 60, ",\"access\":null"));
    assert_int_equal(verify_with(t, key_a, &c), 0);
    assert_int_equal(c.access_count, 0);
    free(t);

    /* malformed structure spoils the token */
    static const char *bad[] = {
        ",\"access\":\"repository:team/app:pull\"",
        ",\"access\":[\"repository:team/app:pull\"]",
        ",\"access\":[{\"type\":\"repository\",\"name\":\"a\"}]",
        ",\"access\":[{\"type\":\"repository\",\"name\":\"a\",\"actions\":\"pull\"}]",
        ",\"access\":[{\"type\":\"repository\",\"name\":\"a\",\"actions\":[1]}]",
        ",\"access\":[{\"type\":1,\"name\":\"a\",\"actions\":[]}]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = raw(key_a, HDR, payload(NOW + 60, bad[i]));
        verify_bad(t, key_a, "malformed access");
        free(t);
    }
    /* more than PC_JWT_ACCESS_MAX entries */
    static char many[PC_JWT_ACCESS_MAX * 80 + 64];
    size_t n = (size_t)snprintf(many, sizeof(many), ",\"access\":[");
    for (int i = 0; i <= PC_JWT_ACCESS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n,
                              "%s{\"type\":\"repository\",\"name\":\"r%d\",\"actions\":[\"pull\"]}",
                              i ? "," : "", i);
    snprintf(many + n, sizeof(many) - n, "]");
    t = raw(key_a, HDR, payload(NOW + 60, many));
    verify_bad(t, key_a, "malformed access");
    free(t);
}

static void test_malformed(void **state)
{
    (void)state;
    char *good = raw(key_a, HDR, payload(NOW + 60, ""));
    const char *d1 = strchr(good, '.');
    char buf[1024];
    verify_bad("", key_a, "not a compact JWT");
    verify_bad("abc", key_a, "not a compact JWT");
    verify_bad("a.b", key_a, "not a compact JWT");
    verify_bad("..", key_a, "not a compact JWT");
    snprintf(buf, sizeof(buf), "%s.AAAA", good);
    verify_bad(buf, key_a, "not a compact JWT"); /* four segments */
    snprintf(buf, sizeof(buf), " %s", good);
    verify_bad(buf, key_a, "not a compact JWT");
    snprintf(buf, sizeof(buf), "%.*s=%s", (int)(d1 - good), good, d1); /* padding */
    verify_bad(buf, key_a, "not a compact JWT");
    snprintf(buf, sizeof(buf), "Bearer %s", good);
    verify_bad(buf, key_a, "not a compact JWT");

    /* claims that are not one JSON object */
    static const char *pays[] = {"[]", "null", "{\"exp\":1,\"exp\":4102444800}", "{", ""};
    for (size_t i = 0; i < sizeof(pays) / sizeof(pays[0]); i++) {
        char *t = raw(key_a, HDR, pays[i]);
        verify_bad(t, key_a, "malformed claims");
        free(t);
    }
    pc_jwt_claims c;
    const pc_jwt_key *keys[] = {key_a};
    pc_jwt_verify_opts o = opts_for(keys, 1);
    assert_int_equal(pc_jwt_verify(NULL, 0, &o, &c), PC_EINVAL);
    char *big = malloc(PC_JWT_MAX + 2);
    memset(big, 'a', PC_JWT_MAX + 1);
    big[PC_JWT_MAX + 1] = '\0';
    assert_int_equal(verify_with(big, key_a, &c), PC_ETOOBIG);
    free(big);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_fixed_token), cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_alg),         cmocka_unit_test(test_time),
        cmocka_unit_test(test_iss_aud),     cmocka_unit_test(test_external_keys),
        cmocka_unit_test(test_key_kinds),   cmocka_unit_test(test_access_claim),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
