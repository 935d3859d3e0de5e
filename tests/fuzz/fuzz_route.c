/*
 * fuzz_route.c - libFuzzer target for the API's URL grammar (routes.c):
 * pc_route_parse on a request path, then the handler lookup and Allow list
 * for the kind it found. The input is the path (as MHD hands it over,
 * NUL-terminated). Besides the sanitizers, it checks that an API route has
 * a kind, a stored name within the spec's limit for the kinds that take one,
 * terminated name and reference, and that every route has a handler for
 * some method.
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

static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "BREW"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pc_req req;
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';

    memset(&req, 0, sizeof(req));
    int rc = pc_route_parse(&req, url);
    CHECK(rc == 0 || rc == PC_ENOTFOUND || rc == PC_EINVAL);
    CHECK(memchr(req.name, '\0', sizeof(req.name)) && memchr(req.ref, '\0', sizeof(req.ref)));
    if (rc == PC_ENOTFOUND)
        CHECK(req.kind == PC_ROUTE_NONE);
    if (rc == 0) {
        CHECK(req.kind != PC_ROUTE_NONE);
        switch (req.kind) {
        case PC_ROUTE_TAGS:
        case PC_ROUTE_MANIFEST:
        case PC_ROUTE_BLOB:
        case PC_ROUTE_UPLOAD_START:
        case PC_ROUTE_UPLOAD:
        case PC_ROUTE_REFERRERS:
            CHECK(req.name[0] && strlen(req.name) <= PC_NAME_MAX);
            CHECK(strncmp(url, "/v2/", 4) == 0 &&
                  strncmp(url + 4, req.name, strlen(req.name)) == 0);
            break;
        default:
            CHECK(!req.name[0]);
        }
        bool any = false;
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
            bool other;
            const pc_handler *h = pc_route_find(req.kind, methods[i], &other);
            if (h)
                any = true;
            CHECK(!h || h->kind == req.kind);
        }
        CHECK(any);
        char allow[128];
        pc_route_allow(req.kind, allow, sizeof(allow));
        CHECK(allow[0]);
        pc_route_allow(req.kind, allow, 4); /* truncation stays terminated */
        CHECK(memchr(allow, '\0', 4));
        CHECK(pc_route_kind_str(req.kind) != NULL);
    }
    free(url);
    return 0;
}
