/*
 * fuzz_jwt.c - libFuzzer target for the JWT decoder (pc_jwt_verify). The
 * first input byte picks a mode:
 *   0  the rest is a token, verified as it is: it must never verify (that
 *      would be a forged signature);
 *   1  the rest is a claims payload, signed under a valid ES256 header;
 *   2  the rest is "header\npayload", signed as it is.
 * Modes 1 and 2 reach the header and claim checks behind the signature.
 * A token that verifies must satisfy what verification promises: ES256,
 * the issuer and audience asked for, not expired, only valid and
 * non-empty access entries.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "auth_jwt.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define NOW 1700000000
#define HDR "{\"typ\":\"JWT\",\"alg\":\"ES256\"}"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pc_jwt_key *key;

static void check_verified(const char *tok, const pc_jwt_claims *c)
{
    CHECK(strcmp(c->iss, "auth.example") == 0 && strcmp(c->aud, "registry.example") == 0);
    CHECK(c->exp > NOW - PC_JWT_LEEWAY);
    CHECK(c->nbf <= NOW + PC_JWT_LEEWAY);
    CHECK(c->access_count <= PC_JWT_ACCESS_MAX && (c->access_count == 0 || c->access));
    for (size_t i = 0; i < c->access_count; i++) {
        CHECK(c->access[i].actions != 0);
        if (c->access[i].type == PC_AUTH_REPOSITORY)
            CHECK(pc_ref_name_valid(c->access[i].name));
        else
            CHECK(c->access[i].type == PC_AUTH_REGISTRY &&
                  strcmp(c->access[i].name, "catalog") == 0);
    }
    /* the header said ES256, exactly */
    const char *dot = strchr(tok, '.');
    unsigned char *hdr = NULL;
    size_t n = 0;
    CHECK(dot && pc_base64_decode(tok, (size_t)(dot - tok), true, &hdr, &n) == 0);
    json_t *j = json_loadb((const char *)hdr, n, 0, NULL);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "alg")), "ES256") == 0);
    json_decref(j);
    free(hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key && pc_jwt_key_generate(&key) != 0)
        abort();
    if (size == 0)
        return 0;
    int mode = data[0] % 3;
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    char *tok = NULL;

    if (mode == 0) {
        tok = malloc(len + 1);
        if (!tok)
            return 0;
        memcpy(tok, rest, len);
        tok[len] = '\0';
    } else if (mode == 1) {
        if (pc_jwt_sign_raw(key, HDR, strlen(HDR), rest, len, &tok) != 0)
            return 0;
    } else {
        const char *nl = memchr(rest, '\n', len);
        size_t hl = nl ? (size_t)(nl - rest) : len;
        const char *pay = nl ? nl + 1 : "";
        size_t pl = nl ? len - hl - 1 : 0;
        if (pc_jwt_sign_raw(key, rest, hl, pay, pl, &tok) != 0)
            return 0;
    }

    const pc_jwt_key *keys[] = {key};
    pc_jwt_verify_opts o = {"auth.example", "registry.example", keys, 1, -1, NOW};
    pc_jwt_claims c;
    int rc = pc_jwt_verify(tok, mode == 0 ? len : strlen(tok), &o, &c);
    if (rc == 0) {
        CHECK(mode != 0); /* nobody but the key signs */
        check_verified(tok, &c);
    } else {
        CHECK(c.access == NULL && c.access_count == 0);
    }
    pc_jwt_claims_clear(&c);
    free(tok);
    return 0;
}
