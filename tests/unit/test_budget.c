/*
 * test_budget.c - the pull-budget tracker: state transitions unknown -> ok
 * -> reserve -> exhausted -> ok (after the Retry-After or the window, on an
 * injected clock), malformed headers ignored, a 429 without headers, entries
 * per credential kept apart, the log lines on transitions (stderr captured),
 * the Prometheus rendering, and concurrent use.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "log.h"

#define T0 1700000000

static _Atomic int64_t clock_now = T0;

static int64_t test_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&clock_now);
}

static pc_upstream_resp resp(long status, const char *limit, const char *remaining,
                             const char *source, const char *retry_after)
{
    pc_upstream_resp r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.cls = status == 429 ? PC_UP_TOO_MANY : status < 300 ? PC_UP_OK : PC_UP_SERVER;
    r.content_length = -1;
    snprintf(r.ratelimit_limit, sizeof(r.ratelimit_limit), "%s", limit ? limit : "");
    snprintf(r.ratelimit_remaining, sizeof(r.ratelimit_remaining), "%s",
             remaining ? remaining : "");
    snprintf(r.ratelimit_source, sizeof(r.ratelimit_source), "%s", source ? source : "");
    snprintf(r.retry_after, sizeof(r.retry_after), "%s", retry_after ? retry_after : "");
    return r;
}

static void see(pc_budget *b, int i, long status, const char *limit, const char *remaining,
                const char *retry_after)
{
    pc_upstream_resp r = resp(status, limit, remaining, "198.51.100.7", retry_after);
    pc_budget_observe(b, i, &r);
}

/* ---- stderr capture: pc_log writes to fd 2 ---- */

static int saved_fd = -1;
static char log_path[64];

static void capture_begin(void)
{
    snprintf(log_path, sizeof(log_path), "/tmp/pc-budget-log-XXXXXX");
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    saved_fd = dup(2);
    assert_true(saved_fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}

/* Stop capturing; the captured text (malloc'd). */
static char *capture_end(void)
{
    dup2(saved_fd, 2);
    close(saved_fd);
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *buf = calloc(1, (size_t)size + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (size_t)size, f);
    buf[n] = '\0';
    fclose(f);
    unlink(log_path);
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static pc_budget *tracker(int cap)
{
    pc_budget *b = NULL;
    atomic_store(&clock_now, T0);
    assert_int_equal(pc_budget_new(&b, cap, test_clock, NULL), 0);
    return b;
}

/* ---- tests ---- */

static void unknown_ok_reserve_exhausted_ok(void **state)
{
    pc_budget *b = tracker(1);
    pc_budget_info in;
    int64_t retry = -1;
    assert_int_equal(pc_budget_add(b, "docker.io", "anonymous", 5), 0);
    capture_begin();

    assert_int_equal(pc_budget_check(b, 0, &retry), PC_BUDGET_UNKNOWN);
    assert_int_equal(retry, 0);
    see(b, 0, 200, NULL, NULL, NULL); /* no headers: nothing learnt */
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_UNKNOWN);
    assert_int_equal(pc_budget_get(b, 0, &in), 0);
    assert_int_equal(in.limit, -1);
    assert_int_equal(in.seen_at, 0);

    see(b, 0, 200, "100;w=21600", "99;w=21600", NULL);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);
    assert_false(pc_budget_holds(b, 0));
    assert_int_equal(pc_budget_get(b, 0, &in), 0);
    assert_int_equal(in.limit, 100);
    assert_int_equal(in.remaining, 99);
    assert_int_equal(in.window, 21600);
    assert_string_equal(in.source, "198.51.100.7");
    assert_int_equal(in.seen_at, T0);
    assert_int_equal(in.reserve, 5);
    assert_string_equal(in.upstream, "docker.io");
    assert_string_equal(in.credential, "anonymous");

    atomic_store(&clock_now, T0 + 10);
    see(b, 0, 200, "100;w=21600", "5;w=21600", NULL); /* at the reserve: still ok */
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);
    see(b, 0, 200, "100;w=21600", "4;w=21600", NULL);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_RESERVE);
    assert_true(pc_budget_holds(b, 0));
    see(b, 0, 200, "100;w=21600", "3;w=21600", NULL); /* still reserve: no second line */
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_RESERVE);

    see(b, 0, 200, "100;w=21600", "0;w=21600", NULL);
    assert_int_equal(pc_budget_check(b, 0, &retry), PC_BUDGET_EXHAUSTED);
    assert_int_equal(retry, 0); /* no 429 yet: misses may still ask */

    /* Docker Hub's 429 with a Retry-After: exhausted until it passes */
    atomic_store(&clock_now, T0 + 100);
    see(b, 0, 429, "100;w=21600", "0;w=21600", "30");
    assert_int_equal(pc_budget_check(b, 0, &retry), PC_BUDGET_EXHAUSTED);
    assert_int_equal(retry, 30);
    assert_true(pc_budget_holds(b, 0));
    assert_int_equal(pc_budget_wait(b, 0), 30);
    assert_int_equal(pc_budget_get(b, 0, &in), 0);
    assert_int_equal(in.last_429_at, T0 + 100);
    assert_int_equal(in.retry_at, T0 + 130);
    atomic_store(&clock_now, T0 + 129);
    assert_int_equal(pc_budget_check(b, 0, &retry), PC_BUDGET_EXHAUSTED);
    assert_int_equal(retry, 1);
    atomic_store(&clock_now, T0 + 130);
    assert_int_equal(pc_budget_check(b, 0, &retry), PC_BUDGET_OK);
    assert_int_equal(retry, 0);
    assert_false(pc_budget_holds(b, 0));
    assert_int_equal(pc_budget_wait(b, 0), 0);
    assert_int_equal(pc_budget_get(b, 0, &in), 0);
    assert_int_equal(in.retry_at, 0);
    assert_int_equal(in.remaining, 0); /* the last seen number stays */
    assert_int_equal(in.last_429_at, T0 + 100);

    see(b, 0, 200, "100;w=21600", "50;w=21600", NULL); /* ok -> ok: no line */
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);

    char *log = capture_end();
    assert_int_equal(count(log, "is below its reserve of 5"), 1);
    assert_int_equal(count(log, "is exhausted"), 1);
    assert_int_equal(count(log, "is ok again"), 1);
    assert_non_null(strstr(log, "upstream docker.io (credential anonymous)"));
    assert_non_null(strstr(log, "remaining 4, limit 100, window 21600s"));
    assert_non_null(strstr(log, "is ok again: its Retry-After passed"));
    free(log);
    pc_budget_free(b);
}

static void back_to_ok_by_observation_and_window(void **state)
{
    pc_budget *b = tracker(1);
    assert_int_equal(pc_budget_add(b, "hub", "anonymous", 10), 0);
    capture_begin();
    see(b, 0, 200, "100;w=60", "3;w=60", NULL);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_RESERVE);
    see(b, 0, 200, "100;w=60", "40;w=60", NULL); /* a fetch reports more again */
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);

    /* a reserve seen at T0 cannot be true a whole window later */
    see(b, 0, 200, "100;w=60", "2;w=60", NULL);
    atomic_store(&clock_now, T0 + 59);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_RESERVE);
    atomic_store(&clock_now, T0 + 60);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);

    /* nor an exhaustion (remaining 0 without a 429) */
    see(b, 0, 200, "100;w=60", "0;w=60", NULL);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_EXHAUSTED);
    atomic_store(&clock_now, T0 + 119);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_EXHAUSTED);
    atomic_store(&clock_now, T0 + 120);
    pc_budget_info in;
    assert_int_equal(pc_budget_get(b, 0, &in), 0); /* get applies the lapse too */
    assert_int_equal(in.state, PC_BUDGET_OK);

    /* no window: trusted for PC_BUDGET_UNWINDOWED seconds */
    see(b, 0, 200, "100", "1", NULL);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_RESERVE);
    atomic_store(&clock_now, T0 + 120 + PC_BUDGET_UNWINDOWED);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);

    char *log = capture_end();
    assert_int_equal(count(log, "is below its reserve"), 3);
    assert_int_equal(count(log, "is exhausted"), 1);
    assert_int_equal(count(log, "is ok again"), 4);
    assert_int_equal(count(log, "a whole window passed"), 2);
    free(log);
    pc_budget_free(b);
}

static void malformed_headers_ignored(void **state)
{
    pc_budget *b = tracker(1);
    pc_budget_info in;
    assert_int_equal(pc_budget_add(b, "hub", "anonymous", 5), 0);
    see(b, 0, 200, "100;w=21600", "80;w=21600", NULL);
    atomic_store(&clock_now, T0 + 5);
    pc_error_set("the caller's message");
    static const char *bad[][2] = {
        {"abc", "def"}, {"-1", "-1"}, {"100;w=", "x"}, {"1e3", "2;;"}, {" , ", ";w=1"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        see(b, 0, 200, bad[k][0], bad[k][1], NULL);
        assert_int_equal(pc_budget_get(b, 0, &in), 0);
        assert_int_equal(in.state, PC_BUDGET_OK);
        assert_int_equal(in.limit, 100);
        assert_int_equal(in.remaining, 80);
        assert_int_equal(in.seen_at, T0);
    }
    assert_string_equal(pc_error_last(), "the caller's message");
    /* one good header of two is used; the other reads as unknown */
    see(b, 0, 200, "garbage", "4;w=600", NULL);
    assert_int_equal(pc_budget_get(b, 0, &in), 0);
    assert_int_equal(in.limit, -1);
    assert_int_equal(in.remaining, 4);
    assert_int_equal(in.window, 600);
    assert_int_equal(in.state, PC_BUDGET_RESERVE);
    /* only a limit: nothing to compare, ok */
    see(b, 0, 200, "100;w=600", NULL, NULL);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);
    pc_budget_free(b);
}

static void bare_429(void **state)
{
    pc_budget *b = tracker(2);
    pc_budget_info in;
    int64_t retry = -1;
    assert_int_equal(pc_budget_add(b, "quay.io", "anonymous", 0), 0);
    assert_int_equal(pc_budget_add(b, "ghcr.io", "anonymous", 0), 1);
    capture_begin();

    /* no headers, no Retry-After: exhausted for the back-off, misses still ask */
    see(b, 0, 429, NULL, NULL, NULL);
    assert_int_equal(pc_budget_check(b, 0, &retry), PC_BUDGET_EXHAUSTED);
    assert_int_equal(retry, 0);
    assert_int_equal(pc_budget_get(b, 0, &in), 0);
    assert_int_equal(in.limit, -1);
    assert_int_equal(in.remaining, -1);
    assert_int_equal(in.seen_at, 0);
    assert_int_equal(in.last_429_at, T0);
    atomic_store(&clock_now, T0 + PC_BUDGET_BACKOFF - 1);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_EXHAUSTED);
    atomic_store(&clock_now, T0 + PC_BUDGET_BACKOFF);
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);

    /* a 429 with malformed headers still counts; Retry-After as an HTTP date */
    atomic_store(&clock_now, 1700000000); /* Tue, 14 Nov 2023 22:13:20 GMT */
    see(b, 1, 429, "bogus", "bogus", "Tue, 14 Nov 2023 22:15:20 GMT");
    assert_int_equal(pc_budget_check(b, 1, &retry), PC_BUDGET_EXHAUSTED);
    assert_int_equal(retry, 120);
    /* reserve 0 never holds back: tracked and reported only */
    assert_false(pc_budget_holds(b, 1));
    assert_int_equal(pc_budget_wait(b, 1), 0);
    /* a success replaces it at once */
    see(b, 1, 200, "500;w=3600", "499;w=3600", NULL);
    assert_int_equal(pc_budget_check(b, 1, &retry), PC_BUDGET_OK);
    assert_int_equal(retry, 0);

    /* reserve 0 never holds back, but 0 left is exhausted */
    see(b, 1, 200, "500;w=3600", "1;w=3600", NULL);
    assert_int_equal(pc_budget_check(b, 1, NULL), PC_BUDGET_OK);
    see(b, 1, 200, "500;w=3600", "0;w=3600", NULL);
    assert_int_equal(pc_budget_check(b, 1, NULL), PC_BUDGET_EXHAUSTED);
    assert_false(pc_budget_holds(b, 1));

    char *log = capture_end();
    assert_int_equal(count(log, "is exhausted"), 3);
    assert_non_null(strstr(log, "backing off 60s"));
    assert_non_null(strstr(log, "Retry-After 120s"));
    assert_null(strstr(log, "cached tags are served")); /* not with reserve 0 */
    assert_int_equal(count(log, "is below its reserve"), 0);
    free(log);
    pc_budget_free(b);
}

static void per_credential(void **state)
{
    pc_budget *b = tracker(3);
    assert_int_equal(pc_budget_add(b, "docker.io", "anonymous", 5), 0);
    assert_int_equal(pc_budget_add(b, "docker.io", "bob", 5), 1);
    assert_int_equal(pc_budget_add(b, "ghcr.io", "anonymous", 0), 2);
    assert_int_equal(pc_budget_add(b, "docker.io", "bob", 1), PC_EEXISTS);
    assert_int_equal(pc_budget_add(b, "quay.io", "anonymous", 1), PC_ELIMIT);
    assert_int_equal(pc_budget_add(b, "", "anonymous", 1), PC_EINVAL);
    assert_int_equal(pc_budget_count(b), 3);
    assert_int_equal(pc_budget_find(b, "docker.io", "bob"), 1);
    assert_int_equal(pc_budget_find(b, "ghcr.io", "anonymous"), 2);
    assert_int_equal(pc_budget_find(b, "ghcr.io", "bob"), PC_ENOTFOUND);

    capture_begin();
    see(b, 0, 429, "100;w=21600", "0;w=21600", "3600");
    see(b, 1, 200, "200;w=21600", "150;w=21600", NULL);
    char *log = capture_end();
    free(log);
    int64_t retry;
    assert_int_equal(pc_budget_check(b, 0, &retry), PC_BUDGET_EXHAUSTED);
    assert_int_equal(retry, 3600);
    assert_int_equal(pc_budget_wait(b, 0), 3600);
    assert_int_equal(pc_budget_wait(b, 1), 0);
    assert_false(pc_budget_holds(b, 7));
    assert_int_equal(pc_budget_wait(b, 7), 0);
    assert_int_equal(pc_budget_check(b, 1, &retry), PC_BUDGET_OK);
    assert_int_equal(retry, 0);
    assert_int_equal(pc_budget_check(b, 2, NULL), PC_BUDGET_UNKNOWN);
    assert_int_equal(pc_budget_check(b, 7, NULL), PC_BUDGET_UNKNOWN); /* no such entry */
    pc_budget_observe(b, 7, NULL);
    pc_budget_info in;
    assert_int_equal(pc_budget_get(b, 1, &in), 0);
    assert_int_equal(in.limit, 200);
    assert_int_equal(pc_budget_get(b, 3, &in), PC_ENOTFOUND);

    /* the credential identity a configuration gives: never the secret */
    pc_config_upstream u;
    memset(&u, 0, sizeof(u));
    assert_string_equal(pc_budget_credential(&u), "anonymous");
    u.token_env = "GHCR_TOKEN";
    assert_string_equal(pc_budget_credential(&u), "token");
    u.token_env = NULL;
    u.username = "bob";
    u.password_env = "HUB_PASSWORD";
    assert_string_equal(pc_budget_credential(&u), "bob");
    pc_budget_free(b);
}

static void metrics_text(void **state)
{
    pc_budget *b = tracker(2);
    assert_int_equal(pc_budget_add(b, "hub", "anonymous", 5), 0);
    assert_int_equal(pc_budget_add(b, "hub", "bo\"b", 7), 1);
    capture_begin();
    see(b, 0, 200, "100;w=21600", "3;w=21600", NULL);
    free(capture_end());
    char *t = pc_budget_metrics(b);
    assert_non_null(t);
    assert_non_null(strstr(t, "# TYPE pullcache_upstream_ratelimit_limit gauge\n"));
    assert_non_null(
        strstr(t, "\npullcache_upstream_ratelimit_limit{upstream=\"hub\",credential=\"anonymous\"} "
                  "100\n"));
    assert_non_null(strstr(
        t, "\npullcache_upstream_ratelimit_remaining{upstream=\"hub\",credential=\"anonymous\"} "
           "3\n"));
    assert_non_null(strstr(t, "\npullcache_upstream_ratelimit_window_seconds{upstream=\"hub\","
                              "credential=\"anonymous\"} 21600\n"));
    assert_non_null(strstr(
        t,
        "\npullcache_upstream_ratelimit_reserve{upstream=\"hub\",credential=\"anonymous\"} 5\n"));
    assert_non_null(strstr(t, "\npullcache_upstream_ratelimit_seen_timestamp_seconds{upstream="
                              "\"hub\",credential=\"anonymous\"} 1700000000\n"));
    assert_non_null(strstr(t, "\npullcache_upstream_ratelimit_state{upstream=\"hub\",credential="
                              "\"anonymous\",state=\"reserve\"} 1\n"));
    assert_non_null(strstr(t, "\npullcache_upstream_ratelimit_state{upstream=\"hub\",credential="
                              "\"anonymous\",state=\"ok\"} 0\n"));
    /* an entry never seen: its reserve and state, no numbers; labels escaped */
    assert_non_null(strstr(
        t, "\npullcache_upstream_ratelimit_reserve{upstream=\"hub\",credential=\"bo\\\"b\"} 7\n"));
    assert_non_null(strstr(t, "\npullcache_upstream_ratelimit_state{upstream=\"hub\",credential="
                              "\"bo\\\"b\",state=\"unknown\"} 1\n"));
    assert_null(strstr(t, "pullcache_upstream_ratelimit_limit{upstream=\"hub\",credential=\"bo"));
    free(t);
    t = pc_budget_metrics(NULL);
    assert_non_null(t);
    assert_string_equal(t, "");
    free(t);
    pc_budget_free(b);
}

/* ---- concurrency: observations, checks and reads from several threads ---- */

static void *hammer(void *arg)
{
    pc_budget *b = arg;
    char rem[32];
    for (int k = 0; k < 20000; k++) {
        snprintf(rem, sizeof(rem), "%d;w=60", k % 12);
        see(b, k % 2, k % 97 == 0 ? 429 : 200, "100;w=60", rem, k % 3 ? "5" : NULL);
        pc_budget_check(b, k % 2, NULL);
        if (k % 500 == 0) {
            pc_budget_info in;
            pc_budget_get(b, 0, &in);
            free(pc_budget_metrics(b));
            atomic_fetch_add(&clock_now, 1);
        }
    }
    return NULL;
}

static void concurrent_use(void **state)
{
    pc_budget *b = tracker(2);
    pthread_t th[4];
    assert_int_equal(pc_budget_add(b, "a", "anonymous", 5), 0);
    assert_int_equal(pc_budget_add(b, "b", "anonymous", 5), 1);
    capture_begin();
    for (int k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&th[k], NULL, hammer, b), 0);
    for (int k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    see(b, 0, 200, "100;w=60", "50;w=60", NULL);
    char *log = capture_end();
    assert_int_equal(pc_budget_check(b, 0, NULL), PC_BUDGET_OK);
    /* every transition logged whole, one per line */
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        assert_non_null(strstr(line, "pull budget of upstream "));
    free(log);
    pc_budget_free(b);
}

int main(void)
{
    pc_log_setup("text", "info");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_ok_reserve_exhausted_ok),
        cmocka_unit_test(back_to_ok_by_observation_and_window),
        cmocka_unit_test(malformed_headers_ignored),
        cmocka_unit_test(bare_429),
        cmocka_unit_test(per_credential),
        cmocka_unit_test(metrics_text),
        cmocka_unit_test(concurrent_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
