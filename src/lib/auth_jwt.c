/*
 * auth_jwt.c - ES256 JSON Web Tokens for the registry token flow (see auth_jwt.h):
 * P-256 keys (generated, or PEM files), signing and verifying with OpenSSL
 * EVP, JOSE's raw r||s signatures converted from and to DER, claims in and
 * out of JSON with jansson.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "auth_jwt.h"
#include "base64.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#define KID_MAX 64             /* 12 groups of 4 base32 characters, 11 ':' */
#define PEM_FILE_MAX (1 << 20) /* largest key file read */
#define SIG_LEN 64             /* r || s, 32 bytes each */
#define NUMDATE_MAX 1e15       /* NumericDate values beyond this are refused */

struct pc_jwt_key {
    EVP_PKEY *pkey;
    bool priv;
    char kid[KID_MAX];
};

static int nomem(void)
{
    pc_error_set("out of memory");
    return PC_ENOMEM;
}

/* ---- keys ---- */

/* libtrust's key id: base32 of the first 30 bytes of SHA-256(DER SPKI),
 * in groups of 4 joined by ':'. */
static int make_kid(pc_jwt_key *k)
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char *der = NULL, md[32];
    int n = i2d_PUBKEY(k->pkey, &der);
    if (n <= 0 || !EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
        OPENSSL_free(der);
        ERR_clear_error();
        pc_error_set("cannot compute the key id");
        return PC_ERR;
    }
    OPENSSL_free(der);
    size_t o = 0;
    for (size_t i = 0; i < 30; i += 5) { /* 5 bytes = 8 characters */
        uint64_t v = 0;
        for (size_t j = 0; j < 5; j++)
            v = v << 8 | md[i + j];
        for (int c = 7; c >= 0; c--) {
            if (o > 0 && o % 5 == 4)
                k->kid[o++] = ':';
            k->kid[o++] = b32[(v >> (5 * c)) & 31];
        }
    }
    k->kid[o] = '\0';
    return 0;
}

/* Wrap pkey (taken) into a key after checking it is EC P-256. */
static int wrap_key(pc_jwt_key **out, EVP_PKEY *pkey, bool priv)
{
    char group[64] = "";
    *out = NULL;
    if (!EVP_PKEY_is_a(pkey, "EC") || !EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
        const char *type = EVP_PKEY_get0_type_name(pkey);
        ERR_clear_error();
        pc_error_set("not an EC P-256 key (%s%s%s): ES256 needs one", type ? type : "unknown",
                     group[0] ? " " : "", group);
        EVP_PKEY_free(pkey);
        return PC_EINVAL;
    }
    pc_jwt_key *k = calloc(1, sizeof(*k));
    if (!k) {
        EVP_PKEY_free(pkey);
        return nomem();
    }
    k->pkey = pkey;
    k->priv = priv;
    int rc = make_kid(k);
    if (rc != 0) {
        pc_jwt_key_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

int pc_jwt_key_generate(pc_jwt_key **out)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pkey) {
        ERR_clear_error();
        *out = NULL;
        pc_error_set("cannot generate a P-256 key");
        return PC_ERR;
    }
    return wrap_key(out, pkey, true);
}

int pc_jwt_key_save_private(const pc_jwt_key *k, const char *path)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        pc_error_set("key path too long");
        return PC_EINVAL;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        pc_error_set("cannot create %s: %s", tmp, strerror(errno));
        return PC_ERR;
    }
    BIO *bio = BIO_new_fd(fd, BIO_NOCLOSE);
    bool ok = bio && PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
              BIO_flush(bio) == 1;
    BIO_free(bio);
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        ERR_clear_error();
        pc_error_set("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return PC_ERR;
    }
    return 0;
}

/* Never prompt for a pass phrase: encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

int pc_jwt_key_from_pem(pc_jwt_key **out, const char *pem, size_t len, bool private_key)
{
    EVP_PKEY *pkey = NULL;
    *out = NULL;
    if (len > PEM_FILE_MAX) {
        pc_error_set("key PEM larger than %d bytes", PEM_FILE_MAX);
        return PC_ETOOBIG;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return nomem();
    if (private_key) {
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    } else {
        pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
        if (!pkey && BIO_reset(bio) == 1) {
            X509 *cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
            if (cert)
                pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey) {
        pc_error_set(private_key ? "no unencrypted PEM private key"
                                 : "no PEM public key or certificate");
        return PC_EINVAL;
    }
    return wrap_key(out, pkey, private_key);
}

static int load_file(pc_jwt_key **out, const char *path, bool private_key)
{
    int rc = PC_ERR;
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = errno == ENOENT ? PC_ENOTFOUND : PC_ERR;
        pc_error_set("%s: %s", path, strerror(errno));
        return rc;
    }
    if (!(buf = malloc(PEM_FILE_MAX + 1))) {
        rc = nomem();
        goto done;
    }
    len = fread(buf, 1, PEM_FILE_MAX + 1, f);
    if (ferror(f)) {
        pc_error_set("%s: read error", path);
        goto done;
    }
    rc = pc_jwt_key_from_pem(out, buf, len, private_key);
    if (rc != 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", pc_error_last());
        pc_error_set("%s: %s", path, msg);
    }
done:
    if (buf) {
        explicit_bzero(buf, len);
        free(buf);
    }
    fclose(f);
    return rc;
}

int pc_jwt_key_load_private(pc_jwt_key **out, const char *path)
{
    return load_file(out, path, true);
}

int pc_jwt_key_load_public(pc_jwt_key **out, const char *path)
{
    return load_file(out, path, false);
}

int pc_jwt_key_public_pem(const pc_jwt_key *k, char **out)
{
    char *data = NULL;
    *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return nomem();
    int rc = PC_ERR;
    if (PEM_write_bio_PUBKEY(bio, k->pkey) != 1) {
        pc_error_set("cannot write the public key");
        goto done;
    }
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !(*out = strndup(data, (size_t)n))) {
        rc = nomem();
        goto done;
    }
    rc = 0;
done:
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

const char *pc_jwt_key_id(const pc_jwt_key *k)
{
    return k->kid;
}

bool pc_jwt_key_can_sign(const pc_jwt_key *k)
{
    return k && k->priv;
}

void pc_jwt_key_free(pc_jwt_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* ---- signing ---- */

/* a "." b (both base64url of the bytes given); the signing input. */
static int signing_input(const char *h, size_t hl, const char *p, size_t pl, char **out)
{
    char *eh = NULL, *ep = NULL;
    int rc = pc_base64_encode(h, hl, true, &eh);
    if (rc == 0)
        rc = pc_base64_encode(p, pl, true, &ep);
    if (rc == 0) {
        size_t a = strlen(eh), b = strlen(ep);
        if ((*out = malloc(a + b + 2))) {
            memcpy(*out, eh, a);
            (*out)[a] = '.';
            memcpy(*out + a + 1, ep, b + 1);
        } else {
            rc = nomem();
        }
    }
    free(eh);
    free(ep);
    return rc;
}

int pc_jwt_sign_raw(const pc_jwt_key *k, const char *header, size_t hlen, const char *payload,
                    size_t plen, char **out)
{
    int rc = PC_ERR;
    char *input = NULL, *esig = NULL;
    unsigned char der[128], raw[SIG_LEN];
    size_t der_len = sizeof(der);
    ECDSA_SIG *sig = NULL;
    EVP_MD_CTX *ctx = NULL;
    *out = NULL;
    if (!k || !k->priv) {
        pc_error_set("the key cannot sign (no private key)");
        return PC_EINVAL;
    }
    if ((rc = signing_input(header, hlen, payload, plen, &input)) != 0)
        return rc;
    rc = PC_ERR;
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, der, &der_len, (const unsigned char *)input, strlen(input)) != 1) {
        pc_error_set("ES256 signing failed");
        goto done;
    }
    const unsigned char *p = der;
    const BIGNUM *r, *s;
    if (!(sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len))) {
        pc_error_set("ES256 signing gave no signature");
        goto done;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) {
        pc_error_set("ES256 signature out of range");
        goto done;
    }
    if ((rc = pc_base64_encode(raw, sizeof(raw), true, &esig)) != 0)
        goto done;
    size_t a = strlen(input), b = strlen(esig);
    if (!(*out = malloc(a + b + 2))) {
        rc = nomem();
        goto done;
    }
    memcpy(*out, input, a);
    (*out)[a] = '.';
    memcpy(*out + a + 1, esig, b + 1);
    rc = 0;
done:
    ERR_clear_error();
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
    free(input);
    free(esig);
    return rc;
}

/* The access claim: one object per entry with actions, [] when none. */
static json_t *access_json(const pc_auth_scope *v, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } acts[] = {{PC_AUTH_PULL, "pull"},
                {PC_AUTH_PUSH, "push"},
                {PC_AUTH_DELETE, "delete"},
                {PC_AUTH_ALL, "*"}};
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char one[PC_NAME_MAX + 64];
        if (v[i].actions == 0)
            continue;
        if (pc_auth_scope_format(&v[i], one, sizeof(one)) < 0) {
            json_decref(arr);
            return NULL;
        }
        json_t *a = json_array();
        for (size_t k = 0; a && k < sizeof(acts) / sizeof(acts[0]); k++)
            if (v[i].actions & acts[k].bit)
                json_array_append_new(a, json_string(acts[k].name));
        json_t *e = json_pack("{s:s,s:s,s:o}", "type",
                              v[i].type == PC_AUTH_REGISTRY ? "registry" : "repository", "name",
                              v[i].name, "actions", a);
        if (!e || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int pc_jwt_sign(const pc_jwt_key *k, const pc_jwt_claims *c, char **out)
{
    int rc = PC_EINVAL;
    json_t *hdr = NULL, *pay = NULL, *acc = NULL;
    char *hs = NULL, *ps = NULL, *jti = NULL;
    *out = NULL;
    if (!c->iss[0] || !c->aud[0]) {
        pc_error_set("a token needs an issuer and an audience");
        return PC_EINVAL;
    }
    int64_t iat = c->iat ? c->iat : (int64_t)time(NULL);
    int64_t nbf = c->nbf ? c->nbf : iat;
    int64_t exp = c->exp ? c->exp : iat + PC_JWT_TTL;
    if (exp <= nbf) {
        pc_error_set("a token that expires before it is valid");
        return PC_EINVAL;
    }
    if (!(acc = access_json(c->access, c->access_count))) {
        pc_error_set("invalid access entry");
        return PC_EINVAL;
    }
    if (c->jti[0]) {
        jti = strdup(c->jti);
    } else {
        unsigned char rnd[16];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            pc_error_set("no random bytes for the token id");
            rc = PC_ERR;
            goto done;
        }
        pc_base64_encode(rnd, sizeof(rnd), true, &jti);
    }
    if (!jti) {
        rc = nomem();
        goto done;
    }
    hdr = json_pack("{s:s,s:s,s:s}", "typ", "JWT", "alg", "ES256", "kid", k->kid);
    pay = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:O}", "iss", c->iss, "sub", c->sub, "aud",
                    c->aud, "exp", (json_int_t)exp, "nbf", (json_int_t)nbf, "iat", (json_int_t)iat,
                    "jti", jti, "access", acc);
    if (hdr)
        hs = json_dumps(hdr, JSON_COMPACT);
    if (pay)
        ps = json_dumps(pay, JSON_COMPACT);
    if (!hs || !ps) { /* json_pack also fails on invalid UTF-8 in a claim */
        pc_error_set("cannot encode the token (claims must be UTF-8)");
        rc = PC_EINVAL;
        goto done;
    }
    rc = pc_jwt_sign_raw(k, hs, strlen(hs), ps, strlen(ps), out);
done:
    json_decref(hdr);
    json_decref(pay);
    json_decref(acc);
    free(hs);
    free(ps);
    free(jti);
    return rc;
}

/* ---- verifying ---- */

void pc_jwt_claims_clear(pc_jwt_claims *c)
{
    if (!c)
        return;
    free(c->access);
    memset(c, 0, sizeof(*c));
}

/* Decode one base64url segment as a JSON object (duplicate keys refused). */
static json_t *segment_json(const char *s, size_t len)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    if (pc_base64_decode(s, len, true, &raw, &n) != 0)
        return NULL;
    json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Whether the 64-byte JOSE signature over input verifies with k. */
static bool sig_ok(const pc_jwt_key *k, const unsigned char *raw, const char *input, size_t ilen)
{
    bool ok = false;
    unsigned char *der = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!sig || !r || !s || !ctx || ECDSA_SIG_set0(sig, r, s) != 1)
        goto done;
    r = s = NULL; /* owned by sig now */
    int n = i2d_ECDSA_SIG(sig, &der);
    if (n <= 0 || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1)
        goto done;
    ok = EVP_DigestVerify(ctx, der, (size_t)n, (const unsigned char *)input, ilen) == 1;
done:
    ERR_clear_error();
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* A string claim into dst; absent leaves dst "". false when not a string
 * or too long. */
static bool str_claim(json_t *pay, const char *name, char *dst)
{
    json_t *v = json_object_get(pay, name);
    if (!v)
        return true;
    if (!json_is_string(v) || json_string_length(v) >= PC_JWT_STR_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* A NumericDate claim; absent = 0 with *present false. */
static bool date_claim(json_t *pay, const char *name, int64_t *out, bool *present)
{
    json_t *v = json_object_get(pay, name);
    *out = 0;
    *present = v != NULL;
    if (!v)
        return true;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < -(json_int_t)NUMDATE_MAX || i > (json_int_t)NUMDATE_MAX)
            return false;
        *out = (int64_t)i;
        return true;
    }
    double d = json_is_real(v) ? json_real_value(v) : NAN;
    if (!isfinite(d) || d < -NUMDATE_MAX || d > NUMDATE_MAX)
        return false;
    *out = (int64_t)d; /* toward zero; then down, as floor() would */
    if ((double)*out > d)
        (*out)--;
    return true;
}

/* aud: a string or an array of strings holding want. */
static bool aud_claim(json_t *pay, const char *want, char *dst)
{
    json_t *v = json_object_get(pay, "aud");
    size_t i;
    json_t *e;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), want) != 0)
            return false;
    } else if (json_is_array(v)) {
        bool found = false;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e))
                return false;
            if (strcmp(json_string_value(e), want) == 0)
                found = true;
        }
        if (!found)
            return false;
    } else {
        return false;
    }
    snprintf(dst, PC_JWT_STR_MAX, "%s", want);
    return true;
}

/* One access entry to a scope; false when it grants nothing we know. */
static bool access_entry(json_t *e, pc_auth_scope *out, bool *malformed)
{
    json_t *type = json_object_get(e, "type"), *name = json_object_get(e, "name");
    json_t *acts = json_object_get(e, "actions"), *a;
    size_t i;
    char buf[1024];
    if (!json_is_object(e) || !json_is_string(type) || !json_is_string(name) ||
        !json_is_array(acts)) {
        *malformed = true;
        return false;
    }
    if (strlen(json_string_value(type)) != json_string_length(type) ||
        strlen(json_string_value(name)) != json_string_length(name))
        return false; /* a NUL inside: not a name we could match */
    int n = snprintf(buf, sizeof(buf), "%s:%s:", json_string_value(type), json_string_value(name));
    if (n < 0 || (size_t)n >= sizeof(buf))
        return false;
    size_t len = (size_t)n;
    json_array_foreach(acts, i, a)
    {
        if (!json_is_string(a)) {
            *malformed = true;
            return false;
        }
        const char *s = json_string_value(a);
        if (strspn(s, "abcdefghijklmnopqrstuvwxyz*") != json_string_length(a))
            continue; /* not an action the grammar has: grants nothing */
        size_t sl = strlen(s);
        if (len + sl + 2 >= sizeof(buf))
            return false;
        if (buf[len - 1] != ':')
            buf[len++] = ',';
        memcpy(buf + len, s, sl);
        len += sl;
    }
    return pc_auth_scope_parse(buf, len, out) == 0 && out->actions != 0;
}

static int access_claim(json_t *pay, pc_jwt_claims *out)
{
    json_t *v = json_object_get(pay, "access"), *e;
    size_t i;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return PC_EINVAL;
    if (json_array_size(v) > PC_JWT_ACCESS_MAX)
        return PC_EINVAL;
    if (json_array_size(v) == 0)
        return 0;
    if (!(out->access = calloc(json_array_size(v), sizeof(*out->access))))
        return PC_ENOMEM;
    json_array_foreach(v, i, e)
    {
        pc_auth_scope s;
        bool malformed = false;
        if (!access_entry(e, &s, &malformed)) {
            if (malformed)
                return PC_EINVAL;
            continue;
        }
        size_t j = 0;
        while (j < out->access_count &&
               !(out->access[j].type == s.type && strcmp(out->access[j].name, s.name) == 0))
            j++;
        if (j < out->access_count)
            out->access[j].actions |= s.actions;
        else
            out->access[out->access_count++] = s;
    }
    return 0;
}

/* Claims after the signature checked out. */
static int check_claims(json_t *pay, const pc_jwt_verify_opts *o, pc_jwt_claims *out)
{
    int64_t now = o->now ? o->now : (int64_t)time(NULL);
    int64_t leeway = o->leeway < 0 ? PC_JWT_LEEWAY : o->leeway;
    bool has_exp, has_nbf, has_iat;
    if (!str_claim(pay, "iss", out->iss) || !str_claim(pay, "sub", out->sub) ||
        !str_claim(pay, "jti", out->jti)) {
        pc_error_set("token: iss, sub or jti is not a string of at most %d bytes",
                     PC_JWT_STR_MAX - 1);
        return PC_EINVAL;
    }
    if (strcmp(out->iss, o->issuer) != 0) {
        pc_error_set("token: issued by someone else");
        return PC_EINVAL;
    }
    if (!aud_claim(pay, o->audience, out->aud)) {
        pc_error_set("token: meant for another audience");
        return PC_EINVAL;
    }
    if (!date_claim(pay, "exp", &out->exp, &has_exp) ||
        !date_claim(pay, "nbf", &out->nbf, &has_nbf) ||
        !date_claim(pay, "iat", &out->iat, &has_iat) || !has_exp) {
        pc_error_set("token: exp missing, or exp, nbf or iat not a date");
        return PC_EINVAL;
    }
    if (now - leeway >= out->exp) {
        pc_error_set("token: expired");
        return PC_EINVAL;
    }
    if (has_nbf && now + leeway < out->nbf) {
        pc_error_set("token: not valid yet");
        return PC_EINVAL;
    }
    int rc = access_claim(pay, out);
    if (rc == PC_ENOMEM)
        return nomem();
    if (rc != 0)
        pc_error_set("token: malformed access claim (or more than %d entries)", PC_JWT_ACCESS_MAX);
    return rc;
}

int pc_jwt_verify(const char *token, size_t len, const pc_jwt_verify_opts *o, pc_jwt_claims *out)
{
    int rc = PC_EINVAL;
    json_t *hdr = NULL, *pay = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    const char *why = "not a compact JWT";
    memset(out, 0, sizeof(*out));
    if (len > PC_JWT_MAX) {
        pc_error_set("token longer than %d bytes", PC_JWT_MAX);
        return PC_ETOOBIG;
    }
    if (!o || !o->issuer || !o->issuer[0] || !o->audience || !o->audience[0] || o->key_count == 0) {
        pc_error_set("token: no issuer, audience or key to check against");
        return PC_EINVAL;
    }
    const char *d1 = token ? memchr(token, '.', len) : NULL;
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        goto bad;
    if (!(hdr = segment_json(token, (size_t)(d1 - token))))
        goto bad;
    why = "alg is not ES256";
    json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "ES256") != 0 ||
        json_string_length(alg) != 5)
        goto bad;
    why = "a critical header extension";
    if (json_object_get(hdr, "crit"))
        goto bad;
    why = "malformed signature";
    if (pc_base64_decode(d2 + 1, len - (size_t)(d2 + 1 - token), true, &sig, &sig_len) != 0 ||
        sig_len != SIG_LEN)
        goto bad;

    /* The kid picks a trusted key when it names one; else try them all. */
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    size_t input_len = (size_t)(d2 - token);
    bool named = false, ok = false;
    for (size_t i = 0; kid && i < o->key_count && !named; i++) {
        if (strcmp(kid, o->keys[i]->kid) == 0) {
            named = true;
            ok = sig_ok(o->keys[i], sig, token, input_len);
        }
    }
    for (size_t i = 0; !named && !ok && i < o->key_count; i++)
        ok = sig_ok(o->keys[i], sig, token, input_len);
    why = "bad signature";
    if (!ok)
        goto bad;
    why = "malformed claims";
    if (!(pay = segment_json(d1 + 1, (size_t)(d2 - d1 - 1))))
        goto bad;
    rc = check_claims(pay, o, out);
    goto done;
bad:
    rc = PC_EINVAL;
    pc_error_set("token: %s", why);
done:
    if (rc != 0)
        pc_jwt_claims_clear(out);
    json_decref(hdr);
    json_decref(pay);
    free(sig);
    return rc;
}
