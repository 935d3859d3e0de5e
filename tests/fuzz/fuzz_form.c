/*
 * fuzz_form.c - libFuzzer target for the token service's form decoder
 * (pc_form_value in auth_token.c): the application/x-www-form-urlencoded body of
 * POST /token, read for each field the service takes and for a few output
 * sizes. The body is an exact-size buffer with no terminator, as MHD hands
 * it over. Besides the sanitizers, it checks that a value found fits its
 * buffer, holds no NUL (a %00 would cut a password short) and that a
 * smaller buffer never finds more.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {"grant_type", "username",  "password", "scope",
                                   "service",    "client_id", "",         "a"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char out[512], small[5];
        int rc = pc_form_value(body, size, keys[i], out, sizeof(out));
        CHECK(rc == 0 || rc == PC_ENOTFOUND || rc == PC_EINVAL || rc == PC_ETOOBIG);
        if (rc == 0) {
            size_t n = strlen(out);
            CHECK(n < sizeof(out));
            CHECK(n <= size); /* decoding never grows a value */
        }
        int rc2 = pc_form_value(body, size, keys[i], small, sizeof(small));
        if (rc2 == 0) {
            CHECK(rc == 0 && strcmp(small, out) == 0);
        }
        if (rc == PC_ENOTFOUND)
            CHECK(rc2 == PC_ENOTFOUND);
    }
    free(body);
    return 0;
}
