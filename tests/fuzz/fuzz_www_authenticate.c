/*
 * fuzz_www_authenticate.c - libFuzzer target for the WWW-Authenticate
 * parser the upstream client runs on every registry's 401
 * (pc_auth_challenge_parse, upstream_auth.c). Besides the sanitizers, it
 * checks that a parsed challenge has its fields terminated within their
 * arrays, that a Bearer challenge has a realm, and that a challenge
 * written back by pc_auth_challenge_bearer parses to the same realm,
 * service and error.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_header.h"
#include "upstream.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool terminated(const char *field, size_t size)
{
    return memchr(field, '\0', size) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    pc_auth_challenge ch;
    if (pc_auth_challenge_parse(s, &ch) != 0) {
        CHECK(ch.scheme[0] == '\0' && ch.realm[0] == '\0');
        goto done;
    }
    CHECK(terminated(ch.scheme, sizeof(ch.scheme)) && terminated(ch.realm, sizeof(ch.realm)) &&
          terminated(ch.service, sizeof(ch.service)) && terminated(ch.scope, sizeof(ch.scope)) &&
          terminated(ch.error, sizeof(ch.error)));
    CHECK(ch.scheme[0] != '\0');
    if (strcmp(ch.scheme, "Bearer") != 0)
        goto done;
    CHECK(ch.realm[0] != '\0');

    char *again = NULL;
    if (pc_auth_challenge_bearer(&again, ch.realm, ch.service, NULL, 0,
                                 ch.error[0] ? ch.error : NULL) != 0)
        goto done; /* a control character inside a quoted value: ours never has one */
    pc_auth_challenge back;
    CHECK(pc_auth_challenge_parse(again, &back) == 0);
    CHECK(strcmp(back.scheme, "Bearer") == 0 && strcmp(back.realm, ch.realm) == 0 &&
          strcmp(back.service, ch.service) == 0 && strcmp(back.error, ch.error) == 0);
    free(again);
done:
    free(s);
    return 0;
}
