/*
 * test_routes.c - the API's URL grammar: kinds, names (which may contain
 * "blobs" or "manifests" components) and references, the handler table, and
 * /_pullcache/status outside /v2/.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http.h"

static pc_req req;

static int parse(const char *url)
{
    memset(&req, 0, sizeof(req));
    return pc_route_parse(&req, url);
}

static void base_and_catalog(void **state)
{
    assert_int_equal(parse("/v2/"), 0);
    assert_int_equal(req.kind, PC_ROUTE_BASE);
    assert_int_equal(parse("/v2"), 0);
    assert_int_equal(req.kind, PC_ROUTE_BASE);
    assert_int_equal(parse("/v2/_catalog"), 0);
    assert_int_equal(req.kind, PC_ROUTE_CATALOG);
    assert_int_equal(parse("/v1/"), PC_ENOTFOUND);
    assert_int_equal(parse("/"), PC_ENOTFOUND);
    assert_int_equal(parse("/v2/foo"), PC_ENOTFOUND);
}

static void manifests_and_tags(void **state)
{
    assert_int_equal(parse("/v2/library/nginx/manifests/latest"), 0);
    assert_int_equal(req.kind, PC_ROUTE_MANIFEST);
    assert_string_equal(req.name, "library/nginx");
    assert_string_equal(req.ref, "latest");
    /* a name with a "manifests" component */
    assert_int_equal(parse("/v2/a/manifests/b/manifests/sha256:ab"), 0);
    assert_string_equal(req.name, "a/manifests/b");
    assert_string_equal(req.ref, "sha256:ab");
    assert_int_equal(parse("/v2/a/b/tags/list"), 0);
    assert_int_equal(req.kind, PC_ROUTE_TAGS);
    assert_string_equal(req.name, "a/b");
    /* an invalid tag reaches the manifest handler as it is (404
     * MANIFEST_UNKNOWN for reads, 400 TAG_INVALID for a PUT) */
    assert_int_equal(parse("/v2/myorg/myrepo/manifests/.INVALID_MANIFEST_NAME"), 0);
    assert_int_equal(req.kind, PC_ROUTE_MANIFEST);
    assert_string_equal(req.name, "myorg/myrepo");
    assert_string_equal(req.ref, ".INVALID_MANIFEST_NAME");
    /* an empty or overlong reference reaches the handler empty (TAG_INVALID
     * on PUT, MANIFEST_UNKNOWN on GET/HEAD/DELETE) */
    assert_int_equal(parse("/v2/a/manifests/"), 0);
    assert_string_equal(req.ref, "");
    char url[600] = "/v2/a/manifests/";
    memset(url + strlen(url), 't', 400);
    assert_int_equal(parse(url), 0);
    assert_string_equal(req.ref, "");
    /* bad names on upload routes are still upload routes (NAME_INVALID) */
    assert_int_equal(parse("/v2//blobs/uploads/"), PC_EINVAL);
    assert_int_equal(req.kind, PC_ROUTE_UPLOAD_START);
    assert_int_equal(parse("/v2/manifests/x"), PC_ENOTFOUND); /* no name */
}

static void blobs_and_uploads(void **state)
{
    assert_int_equal(parse("/v2/a/blobs/sha256:00"), 0);
    assert_int_equal(req.kind, PC_ROUTE_BLOB);
    assert_string_equal(req.name, "a");
    assert_string_equal(req.ref, "sha256:00");
    assert_int_equal(parse("/v2/a/b/blobs/uploads/"), 0);
    assert_int_equal(req.kind, PC_ROUTE_UPLOAD_START);
    assert_string_equal(req.name, "a/b");
    assert_int_equal(parse("/v2/a/b/blobs/uploads"), 0);
    assert_int_equal(req.kind, PC_ROUTE_UPLOAD_START);
    assert_string_equal(req.name, "a/b");
    assert_int_equal(parse("/v2/a/blobs/uploads/1234-abcd"), 0);
    assert_int_equal(req.kind, PC_ROUTE_UPLOAD);
    assert_string_equal(req.name, "a");
    assert_string_equal(req.ref, "1234-abcd");
    /* a repository called "x/blobs" */
    assert_int_equal(parse("/v2/x/blobs/blobs/sha256:11"), 0);
    assert_int_equal(req.kind, PC_ROUTE_BLOB);
    assert_string_equal(req.name, "x/blobs");
    assert_int_equal(parse("/v2/a/referrers/sha256:22"), 0);
    assert_int_equal(req.kind, PC_ROUTE_REFERRERS);
    assert_string_equal(req.ref, "sha256:22");
}

static void long_names_rejected(void **state)
{
    char url[1024] = "/v2/";
    for (int i = 0; i < 300; i++)
        strcat(url, "a");
    strcat(url, "/manifests/x");
    assert_int_equal(parse(url), PC_EINVAL);
}

static void status_route(void **state)
{
    bool others = false;
    char allow[64];
    assert_int_equal(parse("/_pullcache/status"), 0);
    assert_int_equal(req.kind, PC_ROUTE_STATUS);
    /* outside /v2/: no repository can be called that */
    assert_int_equal(parse("/_pullcache/status/"), PC_ENOTFOUND);
    /* the probes */
    assert_int_equal(parse("/healthz"), 0);
    assert_int_equal(req.kind, PC_ROUTE_HEALTHZ);
    assert_int_equal(parse("/readyz"), 0);
    assert_int_equal(req.kind, PC_ROUTE_READYZ);
    assert_int_equal(parse("/readyz/x"), PC_ENOTFOUND);
    assert_non_null(pc_route_find(PC_ROUTE_READYZ, "HEAD", &others));
    assert_null(pc_route_find(PC_ROUTE_HEALTHZ, "POST", &others));
    /* the status page, its files and its history */
    assert_int_equal(parse("/_pullcache"), 0);
    assert_int_equal(req.kind, PC_ROUTE_UI);
    assert_string_equal(req.ref, "index.html");
    assert_int_equal(parse("/_pullcache/"), 0);
    assert_int_equal(req.kind, PC_ROUTE_UI);
    assert_string_equal(req.ref, "index.html");
    assert_int_equal(parse("/_pullcache/ui/status.js"), 0);
    assert_int_equal(req.kind, PC_ROUTE_UI);
    assert_string_equal(req.ref, "status.js");
    assert_int_equal(parse("/_pullcache/ui/"), PC_ENOTFOUND);
    assert_int_equal(parse("/_pullcache/ui/a/b.js"), PC_ENOTFOUND);
    assert_int_equal(parse("/_pullcache/history"), 0);
    assert_int_equal(req.kind, PC_ROUTE_HISTORY);
    assert_string_equal(pc_route_kind_str(PC_ROUTE_HISTORY), "status");
    assert_string_equal(pc_route_kind_str(PC_ROUTE_UI), "ui");
    assert_null(pc_route_find(PC_ROUTE_UI, "POST", &others));
    assert_int_equal(parse("/_pullcache/other"), PC_ENOTFOUND);
    assert_int_equal(parse("/v2/_pullcache/status/manifests/x"), 0);
    assert_int_equal(req.kind, PC_ROUTE_MANIFEST);
    assert_non_null(pc_route_find(PC_ROUTE_STATUS, "GET", &others));
    assert_non_null(pc_route_find(PC_ROUTE_STATUS, "HEAD", &others));
    assert_null(pc_route_find(PC_ROUTE_STATUS, "POST", &others));
    assert_true(others);
    pc_route_allow(PC_ROUTE_STATUS, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD");
}

static void handler_table(void **state)
{
    bool others = false;
    assert_non_null(pc_route_find(PC_ROUTE_BLOB, "GET", &others));
    assert_non_null(pc_route_find(PC_ROUTE_MANIFEST, "PUT", &others));
    assert_null(pc_route_find(PC_ROUTE_BLOB, "PUT", &others));
    assert_true(others);
    assert_null(pc_route_find(PC_ROUTE_TAGS, "DELETE", &others));
    const pc_handler *h = pc_route_find(PC_ROUTE_UPLOAD, "PATCH", &others);
    assert_non_null(h);
    assert_non_null(h->finish);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base_and_catalog),  cmocka_unit_test(manifests_and_tags),
        cmocka_unit_test(blobs_and_uploads), cmocka_unit_test(long_names_rejected),
        cmocka_unit_test(handler_table),     cmocka_unit_test(status_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
