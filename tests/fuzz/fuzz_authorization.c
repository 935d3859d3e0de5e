/*
 * fuzz_authorization.c - libFuzzer target for what a client sends the
 * registry about itself: the Authorization header (pc_auth_header_parse)
 * and the scope parameters of a token request (pc_auth_scopes_parse). The
 * input is one header value; its lines are also the scope values. Besides
 * the sanitizers, it checks what a caller relies on: Basic users are
 * non-empty with no ':' or control character, tokens are token68, and
 * every parsed scope formats and parses back to itself.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_header.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAX_VALUES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool no_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static void check_header(const char *s)
{
    pc_auth_credentials c;
    int rc = pc_auth_header_parse(s, &c);
    if (rc != 0) {
        CHECK(c.scheme == PC_AUTH_NONE && !c.user && !c.password && !c.token);
        return;
    }
    switch (c.scheme) {
    case PC_AUTH_NONE:
        CHECK(!c.user && !c.token);
        break;
    case PC_AUTH_BASIC:
        CHECK(c.user && c.password && !c.token);
        CHECK(c.user[0] && !strchr(c.user, ':') && no_ctl(c.user) && no_ctl(c.password));
        break;
    case PC_AUTH_BEARER:
        CHECK(c.token && c.token[0] && !c.user);
        CHECK(strspn(c.token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789-._~+/=") == strlen(c.token));
        break;
    }
    pc_auth_credentials_clear(&c);
}

static void check_scopes(char *s)
{
    const char *values[MAX_VALUES];
    size_t n = 0;
    for (char *p = s; n < MAX_VALUES && p;) {
        values[n++] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    pc_auth_scope *v = NULL;
    size_t count = 0;
    if (pc_auth_scopes_parse(values, n, &v, &count) != 0) {
        CHECK(!v && count == 0);
        return;
    }
    CHECK(count <= PC_AUTH_SCOPES_MAX && (count == 0) == (v == NULL));
    for (size_t i = 0; i < count; i++) {
        char buf[PC_NAME_MAX + 64];
        pc_auth_scope back;
        CHECK(v[i].type == PC_AUTH_REPOSITORY || v[i].type == PC_AUTH_REGISTRY);
        if (v[i].type == PC_AUTH_REPOSITORY)
            CHECK(pc_ref_name_valid(v[i].name));
        int len = pc_auth_scope_format(&v[i], buf, sizeof(buf));
        CHECK(len > 0);
        CHECK(pc_auth_scope_parse(buf, (size_t)len, &back) == 0);
        CHECK(memcmp(&back, &v[i], sizeof(back)) == 0);
        for (size_t j = 0; j < i; j++) /* merged: one entry per resource */
            CHECK(v[j].type != v[i].type || strcmp(v[j].name, v[i].name) != 0);
    }
    char *challenge = NULL;
    if (pc_auth_challenge_bearer(&challenge, "https://r/t", "svc", v, count, NULL) == 0)
        free(challenge);
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_header(s);
    check_scopes(s);
    free(s);
    return 0;
}
