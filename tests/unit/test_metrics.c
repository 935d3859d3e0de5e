/*
 * test_metrics.c - unit tests for metrics.c: counters and gauges, lazy
 * series, the exact Prometheus text of a small registry, label escaping,
 * the series cap and its dropped counter, exact totals under 8 threads, and
 * histograms (bucket edges, cumulative rendering, misuse dropped).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define MAX_SERIES 10000 /* the cap metrics.c documents */
#define DROPPED "pullcache_metrics_dropped_total"
#define DROPPED_LINES                                                                              \
    "# HELP pullcache_metrics_dropped_total Metric updates dropped (series cap reached, or a "     \
    "malformed name or label set).\n"                                                              \
    "# TYPE pullcache_metrics_dropped_total counter\n"

static int reset(void **state)
{
    pc_metrics_reset();
    return 0;
}

static void check_render(const char *want)
{
    char *got = pc_metrics_render();
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("render:\n--- got ---\n%s--- want ---\n%s", got, want);
    free(got);
}

static void test_metrics_counter(void **state)
{
    assert_int_equal(pc_metrics_value("t_counter_total", "a=\"1\""), 0);
    pc_metrics_add("t_counter_total", "a=\"1\"", 1);
    pc_metrics_add("t_counter_total", "a=\"1\"", 41);
    pc_metrics_add("t_counter_total", "a=\"2\"", 7);
    pc_metrics_add("t_counter_total", "", 3);
    pc_metrics_add("t_counter_total", NULL, 2); /* NULL labels are the empty set */
    assert_int_equal(pc_metrics_value("t_counter_total", "a=\"1\""), 42);
    assert_int_equal(pc_metrics_value("t_counter_total", "a=\"2\""), 7);
    assert_int_equal(pc_metrics_value("t_counter_total", ""), 5);
    assert_int_equal(pc_metrics_value("t_counter_total", NULL), 5);
    assert_int_equal(pc_metrics_value("t_counter_total", "a=\"3\""), 0);
    assert_int_equal(pc_metrics_value("t_other_total", "a=\"1\""), 0);
    assert_int_equal(pc_metrics_value(DROPPED, ""), 0);

    pc_metrics_reset();
    assert_int_equal(pc_metrics_value("t_counter_total", "a=\"1\""), 0);
    pc_metrics_add("t_counter_total", "a=\"1\"", 1);
    assert_int_equal(pc_metrics_value("t_counter_total", "a=\"1\""), 1);
}

static void test_metrics_gauge(void **state)
{
    pc_metrics_gauge_add("t_gauge", "u=\"x\"", 5);
    pc_metrics_gauge_add("t_gauge", "u=\"x\"", -2);
    assert_int_equal(pc_metrics_value("t_gauge", "u=\"x\""), 3);
    pc_metrics_gauge_add("t_gauge", "u=\"x\"", -10);
    assert_int_equal(pc_metrics_value("t_gauge", "u=\"x\""), -7);
    pc_metrics_gauge_add("t_gauge", "u=\"y\"", -1); /* created by a negative delta */
    assert_int_equal(pc_metrics_value("t_gauge", "u=\"y\""), -1);
    pc_metrics_gauge_add("t_gauge", "u=\"y\"", 1);
    assert_int_equal(pc_metrics_value("t_gauge", "u=\"y\""), 0);

    /* An undeclared gauge renders its sign; a zero gauge still renders. */
    check_render(DROPPED_LINES "pullcache_metrics_dropped_total 0\n"
                               "# TYPE t_gauge untyped\n"
                               "t_gauge{u=\"x\"} -7\n"
                               "t_gauge{u=\"y\"} 0\n");
}

static void test_metrics_lazy(void **state)
{
    /* Reading or declaring creates nothing; only updates do. */
    pc_metrics_declare("t_lazy_total", PC_METRIC_COUNTER, "Lazy.");
    assert_int_equal(pc_metrics_value("t_lazy_total", ""), 0);
    check_render(DROPPED_LINES "pullcache_metrics_dropped_total 0\n");
    pc_metrics_add("t_lazy_total", "", 0);
    check_render(DROPPED_LINES "pullcache_metrics_dropped_total 0\n"
                               "# HELP t_lazy_total Lazy.\n"
                               "# TYPE t_lazy_total counter\n"
                               "t_lazy_total 0\n");
}

static void test_metrics_render(void **state)
{
    pc_metrics_declare("t_requests_total", PC_METRIC_COUNTER, "Requests served.");
    pc_metrics_declare("t_in_flight", PC_METRIC_GAUGE, "Fetches in flight.");
    pc_metrics_declare("t_odd", PC_METRIC_COUNTER, "Help with \\ and\nnewline.");
    pc_metrics_declare("t_nohelp", PC_METRIC_GAUGE, "");
    pc_metrics_declare("t_in_flight", PC_METRIC_GAUGE, "Fetches in flight now."); /* replaces */

    /* Created out of order on purpose. */
    pc_metrics_add("t_requests_total", "method=\"PUT\",status=\"201\"", 2);
    pc_metrics_add("t_requests_total", "method=\"GET\",status=\"200\"", 10);
    pc_metrics_add("t_requests_total", "method=\"GET\",status=\"404\"", 1);
    pc_metrics_gauge_add("t_in_flight", "upstream=\"b\"", 2);
    pc_metrics_gauge_add("t_in_flight", "upstream=\"a\"", -1);
    pc_metrics_add("t_undeclared", "", 18446744073709551615u);
    pc_metrics_add("t_odd", "", 1);
    pc_metrics_gauge_add("t_nohelp", "", 4);
    pc_metrics_add("t_a:colon", "", 1);

    /* The dropped counter's name sorts first. */
    check_render(DROPPED_LINES "pullcache_metrics_dropped_total 0\n"
                               "# TYPE t_a:colon untyped\n"
                               "t_a:colon 1\n"
                               "# HELP t_in_flight Fetches in flight now.\n"
                               "# TYPE t_in_flight gauge\n"
                               "t_in_flight{upstream=\"a\"} -1\n"
                               "t_in_flight{upstream=\"b\"} 2\n"
                               "# TYPE t_nohelp gauge\n"
                               "t_nohelp 4\n"
                               "# HELP t_odd Help with \\\\ and\\nnewline.\n"
                               "# TYPE t_odd counter\n"
                               "t_odd 1\n"
                               "# HELP t_requests_total Requests served.\n"
                               "# TYPE t_requests_total counter\n"
                               "t_requests_total{method=\"GET\",status=\"200\"} 10\n"
                               "t_requests_total{method=\"GET\",status=\"404\"} 1\n"
                               "t_requests_total{method=\"PUT\",status=\"201\"} 2\n"
                               "# TYPE t_undeclared untyped\n"
                               "t_undeclared 18446744073709551615\n");
}

static void test_metrics_escape(void **state)
{
    char buf[64], small[6];

    assert_string_equal(pc_metrics_escape("docker.io", buf, sizeof(buf)), "docker.io");
    assert_string_equal(pc_metrics_escape("", buf, sizeof(buf)), "");
    assert_string_equal(pc_metrics_escape(NULL, buf, sizeof(buf)), "");
    assert_string_equal(pc_metrics_escape("a\\b\"c\nd", buf, sizeof(buf)), "a\\\\b\\\"c\\nd");
    assert_ptr_equal(pc_metrics_escape("x", buf, sizeof(buf)), buf);

    /* Truncated: never half an escape, never half a UTF-8 character. */
    assert_string_equal(pc_metrics_escape("abcdefgh", small, sizeof(small)), "abcde");
    assert_string_equal(pc_metrics_escape("abcd\"", small, sizeof(small)), "abcd");
    assert_string_equal(pc_metrics_escape("abc\"d", small, sizeof(small)), "abc\\\"");
    assert_string_equal(pc_metrics_escape("abc\xc3\xa9", small, sizeof(small)), "abc\xc3\xa9");
    assert_string_equal(pc_metrics_escape("abcd\xc3\xa9", small, sizeof(small)), "abcd");
    assert_string_equal(pc_metrics_escape("ab\xe2\x82\xac!", small, sizeof(small)),
                        "ab\xe2\x82\xac");
    assert_string_equal(pc_metrics_escape("abc\xe2\x82\xac", small, sizeof(small)), "abc");
    assert_string_equal(pc_metrics_escape("abcdef", buf, 1), "");

    /* An escaped value makes a series that renders as given. */
    char labels[128];
    snprintf(labels, sizeof(labels), "upstream=\"%s\"",
             pc_metrics_escape("we\"ird\\name\n", buf, sizeof(buf)));
    pc_metrics_add("t_esc_total", labels, 1);
    assert_int_equal(pc_metrics_value("t_esc_total", labels), 1);
    assert_int_equal(pc_metrics_value(DROPPED, ""), 0);
    check_render(DROPPED_LINES "pullcache_metrics_dropped_total 0\n"
                               "# TYPE t_esc_total untyped\n"
                               "t_esc_total{upstream=\"we\\\"ird\\\\name\\n\"} 1\n");
}

static void test_metrics_malformed(void **state)
{
    /* Updates that would corrupt the exposition are dropped and counted. */
    static const char *bad_labels[] = {
        "a=\"unescaped\"quote\"",
        "a=\"raw\nnewline\"",
        "a=\"bad\\escape\"",
        "a=\"open",
        "a=unquoted",
        "=\"x\"",
        "1a=\"x\"",
        "a=\"x\",",
        "a=\"x\"b=\"y\"",
        "a-b=\"x\"",
        "a=\"x\"}",
        "a=\"trailing\\\"",
    };
    static const char *bad_names[] = {"", "1abc", "has space", "a{b}", "a-b", "é"};
    int64_t n = 0;

    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        pc_metrics_add("t_bad_total", bad_labels[i], 1);
        if (pc_metrics_value(DROPPED, "") != ++n)
            fail_msg("labels %s were accepted", bad_labels[i]);
    }
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        pc_metrics_gauge_add(bad_names[i], "", 1);
        if (pc_metrics_value(DROPPED, "") != ++n)
            fail_msg("name \"%s\" was accepted", bad_names[i]);
    }
    char long_name[256];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    pc_metrics_add(long_name, "", 1);
    assert_int_equal(pc_metrics_value(DROPPED, ""), ++n);
    char long_labels[2048];
    memset(long_labels, 'v', sizeof(long_labels));
    memcpy(long_labels, "a=\"", 3);
    memcpy(long_labels + sizeof(long_labels) - 2, "\"", 2);
    pc_metrics_add("t_bad_total", long_labels, 1);
    assert_int_equal(pc_metrics_value(DROPPED, ""), ++n);
    pc_metrics_add(NULL, "", 1); /* ignored */

    /* The good forms next to them are accepted. */
    pc_metrics_add("t_good_total", "a=\"x\",_b=\"\",c9=\"\\\\\\\"\\n\"", 1);
    assert_int_equal(pc_metrics_value(DROPPED, ""), n);
    char out[64];
    snprintf(out, sizeof(out), "pullcache_metrics_dropped_total %lld\n", (long long)n);
    char want[512];
    snprintf(want, sizeof(want),
             "%s%s# TYPE t_good_total untyped\n"
             "t_good_total{a=\"x\",_b=\"\",c9=\"\\\\\\\"\\n\"} 1\n",
             DROPPED_LINES, out);
    check_render(want);
}

static void test_metrics_cap(void **state)
{
    char labels[64];

    for (int i = 0; i < MAX_SERIES + 500; i++) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        pc_metrics_add("t_cap_total", labels, 1);
    }
    assert_int_equal(pc_metrics_value(DROPPED, ""), 500);
    assert_int_equal(pc_metrics_value("t_cap_total", "i=\"0\""), 1);
    assert_int_equal(pc_metrics_value("t_cap_total", "i=\"9999\""), 1);
    assert_int_equal(pc_metrics_value("t_cap_total", "i=\"10000\""), 0);

    /* Existing series still count; new ones of any name are dropped. */
    pc_metrics_add("t_cap_total", "i=\"42\"", 5);
    assert_int_equal(pc_metrics_value("t_cap_total", "i=\"42\""), 6);
    pc_metrics_gauge_add("t_cap_gauge", "", 1);
    assert_int_equal(pc_metrics_value("t_cap_gauge", ""), 0);
    assert_int_equal(pc_metrics_value(DROPPED, ""), 501);

    char *text = pc_metrics_render();
    assert_non_null(text);
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    /* TYPE line + 10000 series + the dropped counter's HELP, TYPE and value. */
    assert_int_equal(lines, 1 + MAX_SERIES + 3);
    assert_non_null(strstr(text, "\npullcache_metrics_dropped_total 501\n"));
    assert_null(strstr(text, "i=\"10000\""));
    free(text);

    /* A reset frees the room again. */
    pc_metrics_reset();
    pc_metrics_gauge_add("t_cap_gauge", "", 1);
    assert_int_equal(pc_metrics_value("t_cap_gauge", ""), 1);
    assert_int_equal(pc_metrics_value(DROPPED, ""), 0);
}

#define THREADS 8
#define ROUNDS 100000
#define SHARED_NEW 200 /* series every thread creates at once */

static pthread_barrier_t barrier;

static void *hammer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char own[32], labels[32];

    snprintf(own, sizeof(own), "thread=\"%d\"", id);
    pthread_barrier_wait(&barrier);
    /* Racing creations of the same series must yield one series each. */
    for (int i = 0; i < SHARED_NEW; i++) {
        snprintf(labels, sizeof(labels), "n=\"%d\"", i);
        pc_metrics_add("t_race_total", labels, 1);
    }
    for (int i = 0; i < ROUNDS; i++) {
        pc_metrics_add("t_shared_total", "", 1);
        pc_metrics_add("t_own_total", own, 1);
        pc_metrics_gauge_add("t_level", "", (i & 1) ? -1 : 1);
        pc_metrics_gauge_add("t_down", own, -1);
    }
    return NULL;
}

static void test_metrics_threads(void **state)
{
    pthread_t t[THREADS];
    char labels[32];

    assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&barrier);

    assert_int_equal(pc_metrics_value("t_shared_total", ""), (int64_t)THREADS * ROUNDS);
    assert_int_equal(pc_metrics_value("t_level", ""), 0);
    for (int i = 0; i < THREADS; i++) {
        snprintf(labels, sizeof(labels), "thread=\"%d\"", i);
        assert_int_equal(pc_metrics_value("t_own_total", labels), ROUNDS);
        assert_int_equal(pc_metrics_value("t_down", labels), -ROUNDS);
    }
    for (int i = 0; i < SHARED_NEW; i++) {
        snprintf(labels, sizeof(labels), "n=\"%d\"", i);
        assert_int_equal(pc_metrics_value("t_race_total", labels), THREADS);
    }
    assert_int_equal(pc_metrics_value(DROPPED, ""), 0);

    /* Exactly one line per series: no duplicates from racing creations. */
    char *text = pc_metrics_render();
    assert_non_null(text);
    size_t race = 0;
    for (const char *p = text; (p = strstr(p, "\nt_race_total{")); p++)
        race++;
    assert_int_equal(race, SHARED_NEW);
    free(text);
}

static void test_metrics_histogram(void **state)
{
    static const double b[] = {0.01, 0.1, 1};
    pc_metrics_declare_histogram("t_seconds", "Answer time.", b, 3);

    pc_metrics_observe("t_seconds", "kind=\"blob\"", 0.01); /* on the edge: le 0.01 */
    pc_metrics_observe("t_seconds", "kind=\"blob\"", 0.05);
    pc_metrics_observe("t_seconds", "kind=\"blob\"", 0.5);
    pc_metrics_observe("t_seconds", "kind=\"blob\"", 7.25); /* only +Inf */
    pc_metrics_observe("t_seconds", "", -1);                /* clock trouble: counted as 0 */
    assert_int_equal(pc_metrics_hist_count("t_seconds", "kind=\"blob\""), 4);
    assert_int_equal(pc_metrics_hist_count("t_seconds", NULL), 1);
    assert_int_equal(pc_metrics_hist_count("t_seconds", "kind=\"tag\""), 0);
    assert_int_equal(pc_metrics_value(DROPPED, ""), 0);

    check_render(DROPPED_LINES "pullcache_metrics_dropped_total 0\n"
                               "# HELP t_seconds Answer time.\n"
                               "# TYPE t_seconds histogram\n"
                               "t_seconds_bucket{le=\"0.01\"} 1\n"
                               "t_seconds_bucket{le=\"0.1\"} 1\n"
                               "t_seconds_bucket{le=\"1\"} 1\n"
                               "t_seconds_bucket{le=\"+Inf\"} 1\n"
                               "t_seconds_sum 0.000000\n"
                               "t_seconds_count 1\n"
                               "t_seconds_bucket{kind=\"blob\",le=\"0.01\"} 1\n"
                               "t_seconds_bucket{kind=\"blob\",le=\"0.1\"} 2\n"
                               "t_seconds_bucket{kind=\"blob\",le=\"1\"} 3\n"
                               "t_seconds_bucket{kind=\"blob\",le=\"+Inf\"} 4\n"
                               "t_seconds_sum{kind=\"blob\"} 7.810000\n"
                               "t_seconds_count{kind=\"blob\"} 4\n");
}

static void test_metrics_histogram_misuse(void **state)
{
    static const double bad[] = {1, 0.5};
    static const double ok[] = {1};

    pc_metrics_observe("t_undeclared_seconds", "", 1); /* no bounds known: dropped */
    assert_int_equal(pc_metrics_hist_count("t_undeclared_seconds", ""), 0);
    assert_int_equal(pc_metrics_value(DROPPED, ""), 1);

    pc_metrics_declare_histogram("t_bad_seconds", "", bad, 2); /* not ascending: refused */
    pc_metrics_observe("t_bad_seconds", "", 1);
    assert_int_equal(pc_metrics_hist_count("t_bad_seconds", ""), 0);
    assert_int_equal(pc_metrics_value(DROPPED, ""), 2);

    pc_metrics_declare_histogram("t_ok_seconds", "", ok, 1);
    pc_metrics_observe("t_ok_seconds", "le=\"1\"", 1); /* le is the histogram's own label */
    assert_int_equal(pc_metrics_value(DROPPED, ""), 3);
    pc_metrics_observe("t_ok_seconds", "", 1);
    pc_metrics_add("t_ok_seconds", "", 5); /* a counter update of a histogram series: ignored */
    assert_int_equal(pc_metrics_hist_count("t_ok_seconds", ""), 1);
    pc_metrics_add("t_plain_total", "", 1);
    pc_metrics_observe("t_plain_total", "", 1); /* not declared as a histogram */
    assert_int_equal(pc_metrics_value("t_plain_total", ""), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_metrics_counter, reset),
        cmocka_unit_test_setup(test_metrics_gauge, reset),
        cmocka_unit_test_setup(test_metrics_lazy, reset),
        cmocka_unit_test_setup(test_metrics_render, reset),
        cmocka_unit_test_setup(test_metrics_escape, reset),
        cmocka_unit_test_setup(test_metrics_malformed, reset),
        cmocka_unit_test_setup(test_metrics_cap, reset),
        cmocka_unit_test_setup(test_metrics_threads, reset),
        cmocka_unit_test_setup(test_metrics_histogram, reset),
        cmocka_unit_test_setup(test_metrics_histogram_misuse, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
