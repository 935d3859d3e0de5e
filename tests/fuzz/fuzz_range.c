/*
 * fuzz_range.c - libFuzzer target for byte ranges (range.c): the Range
 * header of blob GETs (pc_range_parse) against blobs of several sizes, the
 * Content-Range header of upload PATCHes (pc_content_range_parse) and the
 * strict decimal parser under both (pc_parse_u64). The input is one header
 * value. Besides the sanitizers, it checks that a satisfiable range lies
 * inside the blob, that an upload range has a length that fits in 64 bits
 * (the handler computes end - start + 1), and that a parsed number prints
 * back as the digits it came from.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t sizes[] = {0, 1, 2, 100, 4096, UINT64_MAX / 2, UINT64_MAX - 1, UINT64_MAX};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t start = 7, end = 7;
        int rc = pc_range_parse(s, sizes[i], &start, &end);
        CHECK(rc == 0 || rc == PC_EINVAL || rc == PC_ERANGE);
        if (rc == 0)
            CHECK(sizes[i] > 0 && start <= end && end < sizes[i]);
        else
            CHECK(start == 7 && end == 7); /* untouched on failure */
    }

    uint64_t a, b;
    if (pc_content_range_parse(s, &a, &b) == 0) {
        CHECK(a <= b);
        CHECK(b - a + 1 != 0); /* the chunk's length is representable */
    }

    uint64_t v;
    if (pc_parse_u64(s, &v) == 0) {
        char back[24];
        snprintf(back, sizeof(back), "%" PRIu64, v);
        const char *digits = s;
        while (digits[0] == '0' && digits[1])
            digits++;
        CHECK(strcmp(back, digits) == 0);
    }
    free(s);
    return 0;
}
