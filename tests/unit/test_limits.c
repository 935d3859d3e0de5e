/*
 * test_limits.c - the pull limits at the HTTP edge (limits.c): which
 * pc_limiter_take results are served and which refused, and that a client
 * the limiter cannot track (its table is full) is served uncounted rather
 * than refused, counted in pullcache_limit_untracked_total and warned about
 * at most once a minute. pc_req_limit is driven without a connection
 * (an account's budget needs no client address; every path but a refusal
 * leaves the connection alone); the 429 itself is tested end to end by
 * tests/e2e/test_client_limits.sh.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"
#include "testutil.h"

#define WARNING "too many clients tracked"

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void serves(void **state)
{
    (void)state;
    assert_true(pc_limit_serves(0));
    assert_true(pc_limit_serves(PC_ENOMEM)); /* the table is full: allowed, not counted */
    assert_true(pc_limit_serves(PC_EINVAL)); /* no key */
    assert_false(pc_limit_serves(PC_ELIMIT));
}

/* A request of account for a manifest through pc_req_limit on srv; the
 * answer (true: served) and the request in *req. */
static bool limit(struct pc_server *srv, const char *method, const char *account, pc_req *req)
{
    memset(req, 0, sizeof(*req));
    req->srv = srv;
    req->method = method;
    req->kind = PC_ROUTE_MANIFEST;
    req->account = account;
    int mhd = -1;
    bool go = pc_req_limit(req, &mhd);
    if (go)
        assert_int_equal(mhd, -1); /* nothing answered */
    return go;
}

/* The lines of path that contain s. */
static int lines_with(const char *path, const char *s)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, s) != NULL;
    fclose(f);
    return n;
}

/* pc_req_limit three times for account at second now, stderr going to
 * path; each one served uncounted. */
static void untracked_pulls(struct pc_server *srv, const char *account, int64_t now,
                            const char *path)
{
    fake_now = now;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    bool go[3];
    pc_req req[3];
    for (int i = 0; i < 3; i++)
        go[i] = limit(srv, "GET", account, &req[i]);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    fclose(f);
    for (int i = 0; i < 3; i++) {
        assert_true(go[i]);
        assert_true(req[i].limit_set);
        assert_true(req[i].limit.allowed);
        assert_int_equal(req[i].limit.remaining, 5); /* not counted */
    }
}

static void full_table_serves(void **state)
{
    (void)state;
    /* max_keys 64: each of the 64 shards holds one key, so of 65 keys at
     * least one finds its shard full. The window (an hour) keeps the
     * tracked keys from going idle during the test. */
    pc_limiter_opts o = {
        .anonymous = {5, 3600}, .authenticated = {5, 3600}, .max_keys = 64, .clock = fake_clock};
    struct pc_server srv = {0};
    assert_int_equal(pc_limiter_new(&srv.limiter, &o), 0);
    fake_now = 100000;
    char tracked[32] = "", untracked[32] = "", key[64];
    pc_limit_result r;
    for (int i = 0; i < 65 && !untracked[0]; i++) {
        char name[32];
        snprintf(name, sizeof(name), "u%d", i);
        assert_int_equal(pc_limiter_key_from_account(name, key, sizeof(key)), 0);
        int rc = pc_limiter_take(srv.limiter, key, fake_now, true, &r);
        assert_true(rc == 0 || rc == PC_ENOMEM);
        memcpy(rc == 0 ? tracked : untracked, name, strlen(name) + 1);
    }
    assert_string_not_equal(tracked, "");
    assert_string_not_equal(untracked, ""); /* the table is full for this one */

    /* a tracked client is counted as before */
    pc_req req;
    assert_true(limit(&srv, "GET", tracked, &req));
    assert_true(req.limit_set);
    assert_int_equal(req.limit.remaining, 3);

    /* an untracked one is served, uncounted, with the headers; counted in
     * the metric; warned about once a minute */
    char dir[64], path[128];
    assert_non_null(pc_test_tmpdir(dir, sizeof(dir), "limits"));
    snprintf(path, sizeof(path), "%s/stderr", dir);
    const char *labels = "budget=\"authenticated\"";
    int64_t before = pc_metrics_value("pullcache_limit_untracked_total", labels);
    untracked_pulls(&srv, untracked, 100000, path);
    assert_int_equal(pc_metrics_value("pullcache_limit_untracked_total", labels), before + 3);
    assert_int_equal(lines_with(path, WARNING), 1);
    untracked_pulls(&srv, untracked, 100059, path);
    assert_int_equal(lines_with(path, WARNING), 1); /* 59 s later: still quiet */
    untracked_pulls(&srv, untracked, 100060, path);
    assert_int_equal(lines_with(path, WARNING), 2); /* a minute later: once more */
    untracked_pulls(&srv, untracked, 100061, path);
    assert_int_equal(lines_with(path, WARNING), 2);
    assert_int_equal(pc_metrics_value("pullcache_limit_untracked_total", labels), before + 12);

    /* a HEAD costs nothing either way */
    assert_true(limit(&srv, "HEAD", untracked, &req));
    assert_true(req.limit.allowed);

    unlink(path);
    rmdir(dir);
    pc_limiter_free(srv.limiter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serves),
        cmocka_unit_test(full_table_serves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
