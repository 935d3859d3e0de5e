/*
 * test_limiter.c - unit tests of the client pull limiter (limiter.c): the
 * window arithmetic (counts leave bucket by bucket, exactly at the bucket
 * boundary; remaining never negative; retry_after), HEADs that cost
 * nothing, the two budgets, the key cap, keys of one network spread over
 * the shards, takes from threads, client
 * address keys (IPv4, IPv6 per /64, IPv4-mapped), and persistence through
 * a real SQLite meta store: counts survive a restart, expired buckets are
 * not loaded, a changed window does not count twice.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <sqlite3.h>

#include "limiter.h"
#include "registry.h"
#include "testutil.h"

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

typedef struct {
    char dir[64];
    char path[128];
    pc_registry *ms; /* a registry over dir: its meta store is path */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_non_null(pc_test_tmpdir(f->dir, sizeof(f->dir), "limiter"));
    snprintf(f->path, sizeof(f->path), "%s/meta.db", f->dir);
    assert_int_equal(pc_registry_open(&f->ms, f->dir), 0);
    fake_now = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pc_registry_free(f->ms);
    pc_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* A limiter with the anonymous budget pulls/window (authenticated: twice
 * that), over store (NULL: memory only), on the fake clock. */
static pc_limiter *limiter(pc_registry *store, unsigned pulls, unsigned window)
{
    pc_limiter_opts o = {
        .anonymous = {pulls, window},
        .authenticated = {pulls * 2, window},
        .store = store,
        .clock = fake_clock,
    };
    pc_limiter *l = NULL;
    assert_int_equal(pc_limiter_new(&l, &o), 0);
    return l;
}

/* A counted take at t: its return code; remaining and retry_after out. */
static int pull(pc_limiter *l, const char *key, int64_t t, unsigned *remaining, unsigned *retry)
{
    pc_limit_result r;
    int rc = pc_limiter_take(l, key, t, true, &r);
    assert_int_equal(r.allowed, rc != PC_ELIMIT);
    if (remaining)
        *remaining = r.remaining;
    if (retry)
        *retry = r.retry_after;
    return rc;
}

/* What a HEAD at t sees: remaining (and it is allowed, costs nothing). */
static unsigned look(pc_limiter *l, const char *key, int64_t t)
{
    pc_limit_result r;
    assert_int_equal(pc_limiter_take(l, key, t, false, &r), 0);
    assert_true(r.allowed);
    assert_int_equal(r.retry_after, 0);
    return r.remaining;
}

static void test_count_and_refuse(void **state)
{
    (void)state;
    pc_limiter *l = limiter(NULL, 5, 60); /* 1 s buckets */
    unsigned rem, retry;
    pc_limit_result r;
    assert_int_equal(pc_limiter_take(l, "10.0.0.1", 1000, true, &r), 0);
    assert_int_equal(r.limit, 5);
    assert_int_equal(r.window, 60);
    assert_false(r.authenticated);
    assert_int_equal(r.remaining, 4);
    for (unsigned want = 3;; want--) {
        assert_int_equal(pull(l, "10.0.0.1", 1000, &rem, NULL), 0);
        assert_int_equal(rem, want);
        if (want == 0)
            break;
    }
    /* spent: refused, not counted, remaining stays 0 (never negative) */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pull(l, "10.0.0.1", 1000, &rem, &retry), PC_ELIMIT);
        assert_int_equal(rem, 0);
        assert_int_equal(retry, 60);
    }
    assert_non_null(strstr(pc_error_last(), "pull rate limit"));
    /* another client has its own budget */
    assert_int_equal(pull(l, "10.0.0.2", 1000, &rem, NULL), 0);
    assert_int_equal(rem, 4);
    /* one second before the bucket leaves: still refused, 1 s to wait */
    assert_int_equal(pull(l, "10.0.0.1", 1059, &rem, &retry), PC_ELIMIT);
    assert_int_equal(retry, 1);
    /* exactly at the boundary the five pulls of second 1000 are gone; the
     * refused ones never counted */
    assert_int_equal(look(l, "10.0.0.1", 1060), 5);
    assert_int_equal(pull(l, "10.0.0.1", 1060, &rem, NULL), 0);
    assert_int_equal(rem, 4);
    pc_limiter_free(l);
}

/* One step of a scenario on one key: at second t, a counted pull ('G') or
 * a look ('H'), and what it must give. */
typedef struct {
    int64_t t;
    char op;
    int rc;
    unsigned remaining;
    unsigned retry_after;
} step;

static void run_steps(pc_limiter *l, const char *key, const step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const step *s = &steps[i];
        pc_limit_result r;
        int rc = pc_limiter_take(l, key, s->t, s->op == 'G', &r);
        if (rc != s->rc || r.remaining != s->remaining || r.retry_after != s->retry_after ||
            r.allowed != (rc != PC_ELIMIT))
            fail_msg("step %zu (%c at %lld): want rc %d remaining %u retry %u, got rc %d "
                     "remaining %u retry %u allowed %d",
                     i, s->op, (long long)s->t, s->rc, s->remaining, s->retry_after, rc,
                     r.remaining, r.retry_after, r.allowed);
    }
}

#define RUN(l, key, steps) run_steps(l, key, steps, sizeof(steps) / sizeof(steps[0]))

static void test_bucket_by_bucket(void **state)
{
    (void)state;
    pc_limiter *l = limiter(NULL, 5, 600); /* 10 s buckets, 60 of them */
    static const step steps[] = {
        /* 2 pulls in bucket 100 (1000..1009), at its last second; 3 in 101 */
        {1009, 'G', 0, 4, 0},
        {1009, 'G', 0, 3, 0},
        {1015, 'G', 0, 2, 0},
        {1015, 'G', 0, 1, 0},
        {1015, 'G', 0, 0, 0},
        /* one pull must leave: bucket 100 goes at (100 + 60) * 10 = 1600 */
        {1015, 'G', PC_ELIMIT, 0, 585},
        {1599, 'G', PC_ELIMIT, 0, 1},
        {1599, 'H', 0, 0, 0},
        /* at 1600 bucket 100 left (591 s after its pulls: counts leave
         * with their bucket), bucket 101 not yet */
        {1600, 'H', 0, 2, 0},
        {1600, 'G', 0, 1, 0},
        {1605, 'G', 0, 0, 0},
        /* refused again; the oldest bucket (101, 3 pulls) leaves at 1610 */
        {1605, 'G', PC_ELIMIT, 0, 5},
        {1609, 'H', 0, 0, 0},
        {1610, 'H', 0, 3, 0},
        /* a long silence empties the whole window */
        {2200, 'H', 0, 5, 0},
        {100000, 'H', 0, 5, 0},
    };
    RUN(l, "192.0.2.1", steps);
    pc_limiter_free(l);
}

static void test_retry_needs_enough_buckets(void **state)
{
    (void)state;
    pc_limiter *l = limiter(NULL, 4, 120); /* 2 s buckets, 60 of them */
    static const step steps[] = {
        /* 1 pull in bucket 500 (t 1000), 3 in bucket 505 (t 1011) */
        {1000, 'G', 0, 3, 0},
        {1011, 'G', 0, 2, 0},
        {1011, 'G', 0, 1, 0},
        {1011, 'G', 0, 0, 0},
        /* one pull must leave: bucket 500 at (500 + 60) * 2 = 1120 */
        {1011, 'G', PC_ELIMIT, 0, 1120 - 1011},
        {1120, 'G', 0, 0, 0},
        /* full again with 3 in bucket 505 and 1 in bucket 560: the wait is
         * for bucket 505, at (505 + 60) * 2 = 1130 */
        {1121, 'G', PC_ELIMIT, 0, 1130 - 1121},
        {1129, 'H', 0, 0, 0},
        {1130, 'H', 0, 3, 0},
    };
    RUN(l, "198.51.100.4", steps);
    pc_limiter_free(l);
}

static void test_head_is_free(void **state)
{
    (void)state;
    pc_limiter *l = limiter(NULL, 3, 60);
    unsigned rem;
    for (int i = 0; i < 10; i++)
        assert_int_equal(look(l, "10.1.1.1", 1000), 3);
    assert_int_equal(pull(l, "10.1.1.1", 1000, &rem, NULL), 0);
    assert_int_equal(rem, 2);
    assert_int_equal(look(l, "10.1.1.1", 1000), 2);
    assert_int_equal(pull(l, "10.1.1.1", 1000, &rem, NULL), 0);
    assert_int_equal(pull(l, "10.1.1.1", 1000, &rem, NULL), 0);
    /* spent: a HEAD is still allowed, and says 0 */
    assert_int_equal(look(l, "10.1.1.1", 1000), 0);
    assert_int_equal(pull(l, "10.1.1.1", 1000, &rem, NULL), PC_ELIMIT);
    pc_limiter_free(l);
}

static void test_two_budgets(void **state)
{
    (void)state;
    pc_limiter *l = limiter(NULL, 2, 60); /* authenticated: 4 */
    pc_limit_result r;
    assert_int_equal(pc_limiter_take(l, "user:bob", 1000, true, &r), 0);
    assert_true(r.authenticated);
    assert_int_equal(r.limit, 4);
    assert_int_equal(r.remaining, 3);
    unsigned rem;
    for (int i = 0; i < 3; i++)
        assert_int_equal(pull(l, "user:bob", 1000, &rem, NULL), 0);
    assert_int_equal(pull(l, "user:bob", 1000, &rem, NULL), PC_ELIMIT);
    assert_int_equal(pull(l, "user:alice", 1000, &rem, NULL), 0);
    assert_int_equal(rem, 3);
    /* a name that merely starts like an account is an address key */
    assert_int_equal(pc_limiter_take(l, "users", 1000, true, &r), 0);
    assert_false(r.authenticated);
    assert_int_equal(r.remaining, 1);
    /* bad keys */
    assert_int_equal(pc_limiter_take(l, "", 1000, true, &r), PC_EINVAL);
    assert_int_equal(pc_limiter_take(l, NULL, 1000, true, &r), PC_EINVAL);
    char big[PC_LIMITER_KEY_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(pc_limiter_take(l, big, 1000, true, &r), PC_EINVAL);
    pc_limiter_free(l);
}

static void test_bad_rules(void **state)
{
    (void)state;
    pc_limiter *l = NULL;
    pc_limiter_opts o = {.anonymous = {0, 60}, .authenticated = {1, 60}};
    assert_int_equal(pc_limiter_new(&l, &o), PC_EINVAL);
    o.anonymous.pulls = 1;
    o.authenticated.window = 0;
    assert_int_equal(pc_limiter_new(&l, &o), PC_EINVAL);
    assert_null(l);
}

static void test_key_cap(void **state)
{
    (void)state;
    pc_limiter_opts o = {.anonymous = {5, 60}, .authenticated = {5, 60}, .max_keys = 64};
    pc_limiter *l = NULL;
    assert_int_equal(pc_limiter_new(&l, &o), 0);
    char key[32];
    int tracked = 0, untracked = 0;
    pc_limit_result r;
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "10.9.%d.%d", i / 256, i % 256);
        int rc = pc_limiter_take(l, key, 1000, true, &r);
        assert_true(rc == 0 || rc == PC_ENOMEM);
        assert_true(r.allowed); /* untracked keys are let through */
        if (rc == 0) {
            tracked++;
            assert_int_equal(r.remaining, 4);
        } else {
            untracked++;
            assert_int_equal(r.remaining, 5);
        }
    }
    assert_true(tracked <= 64);
    assert_true(untracked >= 300 - 64);
    /* once their windows are over, idle keys make room */
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "10.8.%d.%d", i / 256, i % 256);
        if (pc_limiter_take(l, key, 1060, true, &r) == 0)
            break;
        assert_true(i < 299);
    }
    pc_limiter_free(l);
}

/* How many of keys[0..n) a limiter with room for one key per shard (max_keys
 * 64: 64 shards of one) tracks: the number of shards the keys land in. */
static int shards_used(char keys[][64], int n)
{
    pc_limiter_opts o = {.anonymous = {5, 60}, .authenticated = {5, 60}, .max_keys = 64};
    pc_limiter *l = NULL;
    assert_int_equal(pc_limiter_new(&l, &o), 0);
    int tracked = 0;
    pc_limit_result r;
    for (int i = 0; i < n; i++) {
        int rc = pc_limiter_take(l, keys[i], 1000, true, &r);
        assert_true(rc == 0 || rc == PC_ENOMEM);
        assert_true(r.allowed);
        tracked += rc == 0;
    }
    pc_limiter_free(l);
    return tracked;
}

/* The keys of one network spread over the shards: a /24's 256 addresses,
 * and 256 /64s of one IPv6 /48, differ only in their last characters, and
 * must not crowd into a few shards (which would fill them long before the
 * table is full). 256 keys thrown at 64 shards by a well-mixed hash land in
 * about 63 of them; the hash is fixed, so the count is the same every run.
 * An unmixed FNV-1a, whose top bits picked the shard, put the /24 in 4. */
static void test_keys_spread_over_shards(void **state)
{
    (void)state;
    static char keys[256][64];
    for (int i = 0; i < 256; i++) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_addr.s_addr = htonl(0xC0000200u | (unsigned)i); /* 192.0.2.i */
        assert_int_equal(
            pc_limiter_key_from_addr((const struct sockaddr *)&in, keys[i], sizeof(keys[i])), 0);
    }
    assert_string_equal(keys[255], "192.0.2.255");
    int v4 = shards_used(keys, 256);
    for (int i = 0; i < 256; i++) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        assert_int_equal(inet_pton(AF_INET6, "2001:db8:1::1", &in6.sin6_addr), 1);
        in6.sin6_addr.s6_addr[7] = (unsigned char)i; /* 2001:db8:1:i::/64 */
        assert_int_equal(
            pc_limiter_key_from_addr((const struct sockaddr *)&in6, keys[i], sizeof(keys[i])), 0);
    }
    assert_string_equal(keys[255], "2001:db8:1:ff::/64");
    int v6 = shards_used(keys, 256);
    print_message("shards used: IPv4 /24 %d of 64, IPv6 /48 %d of 64\n", v4, v6);
    assert_true(v4 >= 48);
    assert_true(v6 >= 48);
}

typedef struct {
    pc_limiter *l;
    int allowed;
} thread_arg;

static void *taker(void *p)
{
    thread_arg *a = p;
    pc_limit_result r;
    char key[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "10.7.0.%d", i % 4);
        if (pc_limiter_take(a->l, key, 5000, true, &r) == 0)
            a->allowed++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pc_limiter *l = limiter(NULL, 1000, 3600);
    pthread_t th[8];
    thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){l, 0};
        assert_int_equal(pthread_create(&th[i], NULL, taker, &args[i]), 0);
    }
    int allowed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        allowed += args[i].allowed;
    }
    /* 16000 takes over 4 keys of 1000 pulls each: exactly 4000 counted */
    assert_int_equal(allowed, 4000);
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof(key), "10.7.0.%d", i);
        assert_int_equal(look(l, key, 5000), 0);
    }
    pc_limiter_free(l);
}

static void addr_key(const struct sockaddr *sa, const char *want)
{
    char buf[64];
    assert_int_equal(pc_limiter_key_from_addr(sa, buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
}

static void v6_key(const char *addr, const char *want)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(5000)};
    assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
    addr_key((const struct sockaddr *)&in6, want);
}

static void test_keys(void **state)
{
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(40000)};
    assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &in.sin_addr), 1);
    addr_key((const struct sockaddr *)&in, "192.0.2.7");
    /* IPv6: one key per /64 */
    v6_key("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64");
    v6_key("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64");
    v6_key("2001:db8:1:3::1", "2001:db8:1:3::/64");
    v6_key("::1", "::/64");
    v6_key("fe80::1234", "fe80::/64");
    /* IPv4-mapped: the IPv4 client */
    v6_key("::ffff:198.51.100.9", "198.51.100.9");
    /* not an IP address, or no room */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char buf[64];
    assert_int_equal(pc_limiter_key_from_addr((const struct sockaddr *)&un, buf, sizeof(buf)),
                     PC_EINVAL);
    assert_int_equal(pc_limiter_key_from_addr((const struct sockaddr *)&in, buf, 9), PC_EINVAL);
    assert_int_equal(pc_limiter_key_from_addr(NULL, buf, sizeof(buf)), PC_EINVAL);
    /* accounts */
    assert_int_equal(pc_limiter_key_from_account("bob", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "user:bob");
    assert_int_equal(pc_limiter_key_from_account("", buf, sizeof(buf)), PC_EINVAL);
    assert_int_equal(pc_limiter_key_from_account(NULL, buf, sizeof(buf)), PC_EINVAL);
    assert_int_equal(pc_limiter_key_from_account("a-rather-long-name", buf, 10), PC_EINVAL);
    char name[PC_LIMITER_KEY_MAX], key[PC_LIMITER_KEY_MAX * 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(pc_limiter_key_from_account(name, key, sizeof(key)), PC_EINVAL);
}

/* Rows in the limiter_counts table of the fixture's database. */
static int stored_rows(fixture *f)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM limiter_counts", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_persist_across_restart(void **state)
{
    fixture *f = *state;
    fake_now = 1000;
    pc_limiter *l = limiter(f->ms, 10, 3600);
    unsigned rem;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pull(l, "10.2.0.1", 1000, &rem, NULL), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pull(l, "user:carol", 1000, &rem, NULL), 0);
    assert_int_equal(pc_limiter_flush(l, 1000), 0);
    assert_int_equal(stored_rows(f), 2);
    assert_int_equal(pull(l, "10.2.0.1", 1001, &rem, NULL), 0); /* written by free() */
    pc_limiter_free(l);

    /* the meta store itself reopened too */
    pc_registry_free(f->ms);
    assert_int_equal(pc_registry_open(&f->ms, f->dir), 0);
    fake_now = 1500;
    l = limiter(f->ms, 10, 3600);
    assert_int_equal(look(l, "10.2.0.1", 1500), 10 - 5);
    assert_int_equal(look(l, "user:carol", 1500), 20 - 2);
    assert_int_equal(look(l, "10.2.0.2", 1500), 10);
    assert_int_equal(pull(l, "10.2.0.1", 1500, &rem, NULL), 0);
    assert_int_equal(rem, 4);
    pc_limiter_free(l);

    /* and again: loaded counts are not written twice or lost */
    l = limiter(f->ms, 10, 3600);
    assert_int_equal(look(l, "10.2.0.1", 1500), 4);
    pc_limiter_free(l);

    /* a smaller budget after the restart: remaining is 0, never negative */
    l = limiter(f->ms, 3, 3600);
    assert_int_equal(look(l, "10.2.0.1", 1500), 0);
    assert_int_equal(pull(l, "10.2.0.1", 1500, &rem, NULL), PC_ELIMIT);
    assert_int_equal(rem, 0);
    pc_limiter_free(l);
}

static void test_expired_not_loaded(void **state)
{
    fixture *f = *state;
    fake_now = 1000;
    pc_limiter *l = limiter(f->ms, 5, 60); /* 1 s buckets */
    unsigned rem;
    assert_int_equal(pull(l, "10.3.0.1", 1000, &rem, NULL), 0);
    assert_int_equal(pull(l, "10.3.0.1", 1000, &rem, NULL), 0);
    assert_int_equal(pull(l, "10.3.0.1", 1030, &rem, NULL), 0);
    pc_limiter_free(l); /* flushes at the clock's 1000 */

    fake_now = 1059;
    l = limiter(f->ms, 5, 60);
    assert_int_equal(look(l, "10.3.0.1", 1059), 2);
    pc_limiter_free(l);
    fake_now = 1060; /* second 1000's bucket has expired */
    l = limiter(f->ms, 5, 60);
    assert_int_equal(look(l, "10.3.0.1", 1060), 4);
    pc_limiter_free(l);
    assert_int_equal(stored_rows(f), 1); /* the flush at free dropped it */
    fake_now = 1090;
    l = limiter(f->ms, 5, 60);
    assert_int_equal(look(l, "10.3.0.1", 1090), 5);
    assert_int_equal(pc_limiter_flush(l, 1090), 0);
    pc_limiter_free(l);
    assert_int_equal(stored_rows(f), 0);
}

static void test_window_change(void **state)
{
    fixture *f = *state;
    fake_now = 1003;
    pc_limiter *l = limiter(f->ms, 10, 60); /* 1 s buckets */
    unsigned rem;
    assert_int_equal(pull(l, "10.4.0.1", 1003, &rem, NULL), 0);
    assert_int_equal(pull(l, "10.4.0.1", 1003, &rem, NULL), 0);
    assert_int_equal(pull(l, "10.4.0.1", 1007, &rem, NULL), 0);
    pc_limiter_free(l);
    assert_int_equal(stored_rows(f), 2);

    /* 10 s buckets now: both stored buckets fall into bucket 100 */
    fake_now = 1008;
    l = limiter(f->ms, 10, 600);
    assert_int_equal(look(l, "10.4.0.1", 1008), 7);
    assert_int_equal(pull(l, "10.4.0.1", 1008, &rem, NULL), 0);
    assert_int_equal(rem, 6);
    pc_limiter_free(l);
    assert_int_equal(stored_rows(f), 1);

    /* reloaded: 4 pulls, not the old rows and the new one added up */
    fake_now = 1009;
    l = limiter(f->ms, 10, 600);
    assert_int_equal(look(l, "10.4.0.1", 1009), 6);
    pc_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_and_refuse),
        cmocka_unit_test(test_bucket_by_bucket),
        cmocka_unit_test(test_retry_needs_enough_buckets),
        cmocka_unit_test(test_head_is_free),
        cmocka_unit_test(test_two_budgets),
        cmocka_unit_test(test_bad_rules),
        cmocka_unit_test(test_key_cap),
        cmocka_unit_test(test_keys_spread_over_shards),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_keys),
        cmocka_unit_test_setup_teardown(test_persist_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_not_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_change, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
