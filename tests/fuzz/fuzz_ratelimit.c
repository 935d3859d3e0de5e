/*
 * fuzz_ratelimit.c - libFuzzer target for an upstream's pull-budget headers
 * (ratelimit.c): pc_ratelimit_parse_value on each input line,
 * pc_ratelimit_parse on the first three lines as ratelimit-limit,
 * ratelimit-remaining and docker-ratelimit-source, and
 * pc_ratelimit_retry_after on each line. Besides the sanitizers, it checks
 * that numbers are non-negative, a value formats and parses back to itself,
 * remaining never exceeds limit, and a wait is never negative but for -1.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define NOW 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    const char *lines[3] = {NULL, NULL, NULL};
    size_t n = 0;
    for (char *line = s, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (n < 3)
            lines[n++] = line;
        int64_t num = -2, win = -2;
        if (pc_ratelimit_parse_value(line, &num, &win) == 0) {
            CHECK(num >= 0 && win >= -1);
            char buf[64];
            int len = pc_ratelimit_format(buf, sizeof(buf), num, win);
            CHECK(len > 0);
            int64_t num2, win2;
            CHECK(pc_ratelimit_parse_value(buf, &num2, &win2) == 0);
            CHECK(num2 == num && win2 == win);
        }
        int64_t wait = pc_ratelimit_retry_after(line, NOW);
        CHECK(wait >= -1);
    }
    pc_ratelimit rl;
    memset(&rl, 'x', sizeof(rl)); /* every field is set, whatever the answer */
    int rc = pc_ratelimit_parse(lines[0], lines[1], lines[2], &rl);
    CHECK(rc == 0 || rc == PC_ENOTFOUND || rc == PC_EINVAL);
    if (rc == 0) {
        CHECK(rl.limit >= 0 || rl.remaining >= 0);
        if (rl.limit >= 0 && rl.remaining >= 0)
            CHECK(rl.remaining <= rl.limit);
        CHECK(rl.window >= -1);
    }
    CHECK(memchr(rl.source, '\0', sizeof(rl.source)));
    free(s);
    return 0;
}
