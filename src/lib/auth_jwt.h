/*
 * auth_jwt.h - the bearer tokens of the Docker registry token specification:
 * JSON Web Tokens signed with ES256 (ECDSA on P-256 with SHA-256), compact
 * serialization, base64url without padding.
 *
 *   header  {"typ":"JWT","alg":"ES256","kid":"<key id>"}
 *   claims  {"iss","sub","aud","exp","nbf","iat","jti",
 *            "access":[{"type":"repository","name":"team/app",
 *                       "actions":["pull","push"]}]}
 *
 * The key id is the one libtrust (and so distribution's token
 * authentication) computes: SHA-256 of the DER public key, the first 240
 * bits in base32, in groups of four joined by ':'. A registry that trusts
 * our certificate finds our key by it.
 *
 * Verification accepts "alg":"ES256" and nothing else ("none", HS256,
 * RS256... are refused before any signature is looked at); the key comes
 * from the trusted set only, never from the token ("jwk", "x5c" and
 * "jku" are ignored); a "kid" naming a trusted key picks it, any other
 * token is tried against each trusted key.
 *
 * Keys are immutable once made: any number of threads may sign and verify
 * with one at once.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_AUTH_JWT_H
#define PC_AUTH_JWT_H

#include "pc.h"
#include "auth_header.h"

#define PC_JWT_MAX 16384     /* longest token verified */
#define PC_JWT_STR_MAX 256   /* longest iss, sub, aud, jti (with the NUL) */
#define PC_JWT_ACCESS_MAX 64 /* access entries kept from one token */
#define PC_JWT_LEEWAY 60     /* default clock skew allowed, seconds */
#define PC_JWT_TTL 300       /* default lifetime of an issued token, seconds */

typedef struct pc_jwt_key pc_jwt_key;

/* A token's claims. For pc_jwt_sign they are input (access is borrowed);
 * pc_jwt_verify fills them and access is then the caller's, freed with
 * pc_jwt_claims_clear(). */
typedef struct {
    char iss[PC_JWT_STR_MAX];
    char sub[PC_JWT_STR_MAX]; /* "" for an anonymous client */
    char aud[PC_JWT_STR_MAX]; /* verify: the audience that matched */
    char jti[PC_JWT_STR_MAX];
    int64_t iat, nbf, exp; /* seconds since the epoch; verify: 0 = absent (nbf, iat) */
    pc_auth_scope *access;
    size_t access_count;
} pc_jwt_claims;

/* A fresh P-256 key pair, in memory only (tokens die with the process).
 * *out is the caller's (pc_jwt_key_free). 0, PC_ERR or PC_ENOMEM. */
int pc_jwt_key_generate(pc_jwt_key **out);

/* Write k's private key to path (PKCS#8 PEM, mode 0600, through a temp
 * file and a rename). 0 or PC_ERR (message set). */
int pc_jwt_key_save_private(const pc_jwt_key *k, const char *path);

/* A P-256 private key from a PEM file (PKCS#8 or SEC1 "EC PRIVATE KEY",
 * unencrypted), for issuing tokens. 0, PC_ENOTFOUND, PC_ERR, PC_EINVAL
 * (not an EC P-256 private key; the message says what it is). */
int pc_jwt_key_load_private(pc_jwt_key **out, const char *path);

/* A P-256 public key from a PEM file holding a public key or a
 * certificate (the first one), for trusting an external token issuer.
 * Returns as pc_jwt_key_load_private. */
int pc_jwt_key_load_public(pc_jwt_key **out, const char *path);

/* The same two from PEM text in memory (len bytes). */
int pc_jwt_key_from_pem(pc_jwt_key **out, const char *pem, size_t len, bool private_key);

/* The public half of k as a PEM "PUBLIC KEY" (for a token issuer's
 * clients). *out is the caller's (free). 0, PC_ERR or PC_ENOMEM. */
int pc_jwt_key_public_pem(const pc_jwt_key *k, char **out);

/* The key's id (libtrust form, "ABCD:EFGH:..."), valid while k lives. */
const char *pc_jwt_key_id(const pc_jwt_key *k);

/* Whether k holds a private key (can sign). */
bool pc_jwt_key_can_sign(const pc_jwt_key *k);

void pc_jwt_key_free(pc_jwt_key *k);

/* Sign claims with k into a compact token. iat 0 = now, nbf 0 = iat, exp 0
 * = iat + PC_JWT_TTL, jti "" = 16 random bytes; access entries with no
 * actions are left out. *out is the caller's (free). Returns 0, PC_EINVAL
 * (k cannot sign, an invalid access entry, exp before nbf), PC_ERR or
 * PC_ENOMEM. */
int pc_jwt_sign(const pc_jwt_key *k, const pc_jwt_claims *claims, char **out);

/* Lower level, for tests and the fuzz target: sign exactly these header
 * and payload bytes (any bytes: nothing is checked). */
int pc_jwt_sign_raw(const pc_jwt_key *k, const char *header, size_t hlen, const char *payload,
                    size_t plen, char **out);

/* What a verifier trusts. */
typedef struct {
    const char *issuer;            /* iss must equal this */
    const char *audience;          /* aud (a string or an array) must hold this */
    const pc_jwt_key *const *keys; /* trusted keys (public or private) */
    size_t key_count;
    int leeway;  /* seconds of clock skew allowed around exp and nbf; < 0 = PC_JWT_LEEWAY */
    int64_t now; /* seconds since the epoch; 0 = time(NULL) */
} pc_jwt_verify_opts;

/* Verify the len bytes of token: form, alg ES256, the signature by a
 * trusted key, iss, aud, exp (required) and nbf against now with leeway.
 * Access entries are checked as scopes are (pc_auth_scope_parse rules):
 * entries of unknown types, invalid names or no known action are dropped
 * (they grant nothing); entries for one resource are merged. out is
 * overwritten and, on success, the caller's (pc_jwt_claims_clear).
 * Returns 0, PC_EINVAL (the token is not valid; the message says why),
 * PC_ETOOBIG (over PC_JWT_MAX) or PC_ENOMEM. */
int pc_jwt_verify(const char *token, size_t len, const pc_jwt_verify_opts *opts,
                  pc_jwt_claims *out);

/* Free out->access and zero out. */
void pc_jwt_claims_clear(pc_jwt_claims *c);

#endif
