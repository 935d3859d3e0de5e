/*
 * fuzz_digest.c - libFuzzer target for digests (digest.c): pc_digest_parse
 * on the input as a string, and the digest of the input's bytes computed at
 * once (pc_digest_buffer) and streamed in two pieces (pc_hasher_*). Besides
 * the sanitizers, it checks that a parsed digest is canonical (the string
 * itself, lowercase hex of the algorithm's length), that computed digests
 * parse, and that streaming agrees with the one-shot digest.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_canonical(const pc_digest *d)
{
    const char *hex = pc_digest_hex(d);
    const char *alg = pc_digest_alg_name(d->alg);
    size_t alen = strlen(alg);
    CHECK(strncmp(d->str, alg, alen) == 0 && d->str[alen] == ':' && hex == d->str + alen + 1);
    CHECK(strlen(hex) == (d->alg == PC_DIGEST_SHA256 ? 64u : 128u));
    CHECK(strspn(hex, "0123456789abcdef") == strlen(hex));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    pc_digest d, back;
    int rc = pc_digest_parse(&d, s);
    CHECK(rc == 0 || rc == PC_EINVAL || rc == PC_ENOTSUP);
    if (rc == 0) {
        check_canonical(&d);
        CHECK(strcmp(d.str, s) == 0);
        CHECK(pc_digest_parse(&back, d.str) == 0 && pc_digest_equal(&back, &d));
    }

    size_t cut = size ? data[0] % (size + 1) : 0;
    for (int alg = PC_DIGEST_SHA256; alg <= PC_DIGEST_SHA512; alg++) {
        pc_digest whole, streamed;
        CHECK(pc_digest_buffer(&whole, (pc_digest_alg)alg, data, size) == 0);
        check_canonical(&whole);
        CHECK(pc_digest_parse(&back, whole.str) == 0 && pc_digest_equal(&back, &whole));
        pc_hasher *h = NULL;
        CHECK(pc_hasher_new(&h, (pc_digest_alg)alg) == 0);
        CHECK(pc_hasher_update(h, data, cut) == 0);
        CHECK(pc_hasher_update(h, data + cut, size - cut) == 0);
        CHECK(pc_hasher_final(h, &streamed) == 0);
        pc_hasher_free(h);
        CHECK(pc_digest_equal(&whole, &streamed));
    }
    free(s);
    return 0;
}
