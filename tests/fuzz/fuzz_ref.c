/*
 * fuzz_ref.c - libFuzzer target for names, tags and image references
 * (ref.c): pc_ref_parse, pc_ref_format, pc_ref_name_valid(_n),
 * pc_ref_tag_valid, pc_ref_host_like. The input is one reference as a user
 * types it. Besides the sanitizers, it checks that a parsed reference has a
 * valid name, a valid tag or a digest, and formats and parses back to
 * itself, and that the validators agree with the grammar's length limits.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t len = strlen(s);

    bool nv = pc_ref_name_valid(s);
    CHECK(nv == pc_ref_name_valid_n(s, len));
    if (nv)
        CHECK(len >= 1 && len <= PC_NAME_MAX);
    if (pc_ref_tag_valid(s))
        CHECK(len >= 1 && len <= PC_TAG_MAX && !strchr(s, '/') && !strchr(s, ':'));
    (void)pc_ref_host_like(s, len);
    /* a prefix that is not NUL-terminated: an exact-size copy */
    if (len) {
        char *p = malloc(len);
        if (p) {
            memcpy(p, s, len);
            (void)pc_ref_name_valid_n(p, len);
            (void)pc_ref_host_like(p, len);
            free(p);
        }
    }

    pc_ref r;
    if (pc_ref_parse(&r, s) == 0) {
        CHECK(r.host[0] && strlen(r.host) < PC_HOST_MAX);
        CHECK(pc_ref_name_valid(r.name));
        CHECK(r.tag[0] ? pc_ref_tag_valid(r.tag) : r.has_digest);
        if (r.has_digest) {
            pc_digest d;
            CHECK(pc_digest_parse(&d, r.digest.str) == 0);
        }
        char buf[PC_HOST_MAX + PC_NAME_MAX + PC_TAG_MAX + PC_DIGEST_MAX + 8];
        int n = pc_ref_format(&r, buf, sizeof(buf));
        CHECK(n > 0 && (size_t)n < sizeof(buf));
        pc_ref back;
        CHECK(pc_ref_parse(&back, buf) == 0);
        CHECK(strcmp(back.host, r.host) == 0 && strcmp(back.name, r.name) == 0 &&
              strcmp(back.tag, r.tag) == 0 && back.has_digest == r.has_digest);
        if (r.has_digest)
            CHECK(pc_digest_equal(&back.digest, &r.digest));
        char small[8];
        n = pc_ref_format(&r, small, sizeof(small));
        CHECK(n == PC_ETOOBIG || (n > 0 && (size_t)n < sizeof(small)));
    }
    free(s);
    return 0;
}
