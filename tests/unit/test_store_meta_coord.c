/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_store_meta_coord.c - the meta store's coordination table
 * (store/meta.h: leases and notes) on every backend in `kinds` (postgres
 * under tests/tools/pg_test.sh): one owner
 * at a time, expiry by the store's clock, renew and release only by the
 * holder, exactly one winner among racing threads and among handles on one
 * database, notes with their time, and refused input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_testutil.h"
#include "store/meta.h"
#include "store/meta_pg.h"
#include "testutil.h"
#include "util.h"

typedef struct kind kind;
typedef struct {
    const kind *k;
    char dir[64];
    char path[128];
    char db[64];   /* postgres: the fixture's own database */
    char ci[1100]; /* and its connection string */
    pc_metastore *ms;
} fixture;

struct kind {
    const char *name;
    /* Open a handle on the fixture's store (a second call: a second
     * handle on the same data, as another process would have; NULL when
     * the backend cannot share). */
    int (*open)(fixture *f, pc_metastore **out);
    bool shared;
};

static int sqlite_open(fixture *f, pc_metastore **out)
{
    if (!f->dir[0]) {
        if (!pc_test_tmpdir(f->dir, sizeof(f->dir), "storecoord"))
            return PC_ERR;
        snprintf(f->path, sizeof(f->path), "%s/meta.db", f->dir);
    }
    return pc_meta_sqlite_open(out, f->path);
}

static int mem_open(fixture *f, pc_metastore **out)
{
    (void)f;
    return pc_meta_mem_open(out);
}

/* A fresh database per case (dropped by teardown); a second handle is a
 * second connection pool on it, as another replica has. */
static int pg_open(fixture *f, pc_metastore **out)
{
    if (!f->db[0] && pc_test_pg_createdb(f->db, sizeof(f->db), f->ci, sizeof(f->ci), NULL) != 0)
        return PC_ERR;
    pc_pg_opts o = {.conninfo = f->ci};
    return pc_meta_pg_open(out, &o);
}

static const kind kinds[] = {
    {"sqlite", sqlite_open, true},
    {"mem", mem_open, false},
    {"postgres", pg_open, true},
};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->k = *state;
    assert_int_equal(f->k->open(f, &f->ms), 0);
    assert_int_equal(pc_meta_check(f->ms), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->ms)
        f->ms->free(f->ms);
    if (f->dir[0])
        pc_test_rmtree(f->dir);
    if (f->db[0])
        pc_test_pg_dropdb(f->db);
    free(f);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Long enough that no test step on a loaded machine outlives it. */
#define LONG_TTL 60000

static void test_one_holder(void **state)
{
    fixture *f = *state;
    const pc_meta_coord_ops *c = f->ms->coord;
    pc_meta_lease held;

    assert_int_equal(c->lease_get(f->ms, "fetch:x", &held), PC_ENOTFOUND);
    int64_t before = pc_util_now_ms();
    assert_int_equal(c->lease_take(f->ms, "fetch:x", "replica-a", LONG_TTL, NULL), 0);
    memset(&held, 0, sizeof(held));
    assert_int_equal(c->lease_take(f->ms, "fetch:x", "replica-b", LONG_TTL, &held), PC_EEXISTS);
    assert_string_equal(held.owner, "replica-a");
    assert_true(held.expires_ms >= before + LONG_TTL);
    /* the holder taking again renews; get names it */
    assert_int_equal(c->lease_take(f->ms, "fetch:x", "replica-a", LONG_TTL, NULL), 0);
    memset(&held, 0, sizeof(held));
    assert_int_equal(c->lease_get(f->ms, "fetch:x", &held), 0);
    assert_string_equal(held.owner, "replica-a");
    /* another key is another lease */
    assert_int_equal(c->lease_take(f->ms, "fetch:y", "replica-b", LONG_TTL, NULL), 0);
    /* only the holder renews or releases */
    assert_int_equal(c->lease_renew(f->ms, "fetch:x", "replica-b", LONG_TTL), PC_ENOTFOUND);
    assert_int_equal(c->lease_release(f->ms, "fetch:x", "replica-b"), PC_ENOTFOUND);
    assert_int_equal(c->lease_get(f->ms, "fetch:x", &held), 0);
    assert_string_equal(held.owner, "replica-a");
    assert_int_equal(c->lease_renew(f->ms, "fetch:x", "replica-a", LONG_TTL), 0);
    assert_int_equal(c->lease_release(f->ms, "fetch:x", "replica-a"), 0);
    assert_int_equal(c->lease_get(f->ms, "fetch:x", &held), PC_ENOTFOUND);
    assert_int_equal(c->lease_release(f->ms, "fetch:x", "replica-a"), PC_ENOTFOUND);
    assert_int_equal(c->lease_renew(f->ms, "fetch:x", "replica-a", LONG_TTL), PC_ENOTFOUND);
    /* free again: the other owner takes it */
    assert_int_equal(c->lease_take(f->ms, "fetch:x", "replica-b", LONG_TTL, NULL), 0);
    assert_int_equal(c->lease_get(f->ms, "fetch:y", &held), 0);
    assert_string_equal(held.owner, "replica-b");
}

static void test_expiry(void **state)
{
    fixture *f = *state;
    const pc_meta_coord_ops *c = f->ms->coord;
    pc_meta_lease held;

    /* a holder that stops renewing loses the lease once its time is up */
    assert_int_equal(c->lease_take(f->ms, "gc", "dead", 100, NULL), 0);
    sleep_ms(300);
    assert_int_equal(c->lease_get(f->ms, "gc", &held), PC_ENOTFOUND);
    assert_int_equal(c->lease_take(f->ms, "gc", "alive", LONG_TTL, NULL), 0);
    /* and cannot renew or release it once another took it */
    assert_int_equal(c->lease_renew(f->ms, "gc", "dead", LONG_TTL), PC_ENOTFOUND);
    assert_int_equal(c->lease_release(f->ms, "gc", "dead"), PC_ENOTFOUND);
    assert_int_equal(c->lease_get(f->ms, "gc", &held), 0);
    assert_string_equal(held.owner, "alive");

    /* a late renew by the holder, nobody having taken it: it holds again */
    assert_int_equal(c->lease_take(f->ms, "slow", "a", 100, NULL), 0);
    sleep_ms(300);
    assert_int_equal(c->lease_renew(f->ms, "slow", "a", LONG_TTL), 0);
    assert_int_equal(c->lease_take(f->ms, "slow", "b", LONG_TTL, &held), PC_EEXISTS);
    assert_string_equal(held.owner, "a");

    /* many expired leases of crashed holders: each key free again */
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "upload:%d", i);
        assert_int_equal(c->lease_take(f->ms, key, "crashed", 50, NULL), 0);
    }
    sleep_ms(200);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "upload:%d", i);
        assert_int_equal(c->lease_get(f->ms, key, NULL), PC_ENOTFOUND);
        assert_int_equal(c->lease_take(f->ms, key, "next", LONG_TTL, NULL), 0);
    }
}

#define RACERS 8
#define ROUNDS 40

typedef struct {
    pc_metastore *ms;
    int id;
    atomic_int *wins; /* per round */
    pthread_barrier_t *go;
} racer;

static void *race(void *p)
{
    racer *r = p;
    char owner[32], key[32];
    snprintf(owner, sizeof(owner), "racer-%d", r->id);
    pthread_barrier_wait(r->go);
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(key, sizeof(key), "fetch:%d", i);
        pc_meta_lease held;
        int rc = r->ms->coord->lease_take(r->ms, key, owner, LONG_TTL, &held);
        if (rc == 0)
            atomic_fetch_add(&r->wins[i], 1);
        else if (rc != PC_EEXISTS || strncmp(held.owner, "racer-", 6) != 0)
            atomic_fetch_add(&r->wins[i], 1000); /* a failure, not a loss */
    }
    return NULL;
}

/* Threads racing for the same keys, each on the handle it is given:
 * exactly one takes each. */
static void race_on(pc_metastore *const *handles)
{
    pthread_t th[RACERS];
    racer rs[RACERS];
    atomic_int wins[ROUNDS];
    pthread_barrier_t go;
    for (int i = 0; i < ROUNDS; i++)
        atomic_init(&wins[i], 0);
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        rs[i] = (racer){handles[i], i, wins, &go};
        assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < ROUNDS; i++)
        assert_int_equal(atomic_load(&wins[i]), 1);
}

static void test_race_threads(void **state)
{
    fixture *f = *state;
    pc_metastore *hs[RACERS];
    for (int i = 0; i < RACERS; i++)
        hs[i] = f->ms;
    race_on(hs);
}

/* Handles on one database (what replicas or processes have): the same
 * race across them, and a lease taken through one is seen by the other. */
static void test_race_handles(void **state)
{
    fixture *f = *state;
    if (!f->k->shared) {
        print_message("[ %s keeps its data in one handle: nothing to share ]\n", f->k->name);
        return;
    }
    pc_metastore *other = NULL;
    assert_int_equal(f->k->open(f, &other), 0);
    pc_meta_lease held;
    assert_int_equal(f->ms->coord->lease_take(f->ms, "gc", "one", LONG_TTL, NULL), 0);
    assert_int_equal(other->coord->lease_take(other, "gc", "two", LONG_TTL, &held), PC_EEXISTS);
    assert_string_equal(held.owner, "one");
    assert_int_equal(f->ms->coord->note_put(f->ms, "budget:hub", "remaining=99"), 0);
    char v[64];
    assert_int_equal(other->coord->note_get(other, "budget:hub", v, sizeof(v), NULL), 0);
    assert_string_equal(v, "remaining=99");
    pc_metastore *hs[RACERS];
    for (int i = 0; i < RACERS; i++)
        hs[i] = i % 2 ? other : f->ms;
    race_on(hs);
    other->free(other);
}

static void test_notes(void **state)
{
    fixture *f = *state;
    const pc_meta_coord_ops *c = f->ms->coord;
    char v[PC_NOTE_MAX];
    int64_t when = 0;

    assert_int_equal(c->note_get(f->ms, "budget:docker.io", v, sizeof(v), &when), PC_ENOTFOUND);
    int64_t before = pc_util_now_ms();
    assert_int_equal(c->note_put(f->ms, "budget:docker.io", "limit=100 remaining=76"), 0);
    int64_t after = pc_util_now_ms();
    assert_int_equal(c->note_get(f->ms, "budget:docker.io", v, sizeof(v), &when), 0);
    assert_string_equal(v, "limit=100 remaining=76");
    /* the store's clock (PostgreSQL: the server's), here this machine's:
     * within a second of ours either way */
    assert_true(when >= before - 1000 && when <= after + 1000);
    assert_int_equal(c->note_put(f->ms, "budget:docker.io", "limit=100 remaining=75"), 0);
    assert_int_equal(c->note_get(f->ms, "budget:docker.io", v, sizeof(v), NULL), 0);
    assert_string_equal(v, "limit=100 remaining=75");
    /* a value that does not fit the caller's buffer is refused, not cut */
    char small[8];
    assert_int_equal(c->note_get(f->ms, "budget:docker.io", small, sizeof(small), NULL),
                     PC_ETOOBIG);
    /* the largest value fits; one more byte is refused */
    char big[PC_NOTE_MAX + 1];
    memset(big, 'x', sizeof(big));
    big[PC_NOTE_MAX - 1] = '\0';
    assert_int_equal(c->note_put(f->ms, "big", big), 0);
    assert_int_equal(c->note_get(f->ms, "big", v, sizeof(v), NULL), 0);
    assert_int_equal(strlen(v), PC_NOTE_MAX - 1);
    big[PC_NOTE_MAX - 1] = 'x';
    big[PC_NOTE_MAX] = '\0';
    assert_int_equal(c->note_put(f->ms, "big", big), PC_EINVAL);
    assert_int_equal(c->note_put(f->ms, "empty", ""), 0);
    assert_int_equal(c->note_get(f->ms, "empty", v, sizeof(v), NULL), 0);
    assert_string_equal(v, "");
}

static void test_invalid(void **state)
{
    fixture *f = *state;
    const pc_meta_coord_ops *c = f->ms->coord;
    char longkey[PC_LEASE_KEY_MAX + 1], longowner[PC_LEASE_OWNER_MAX + 1], v[16];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    memset(longowner, 'o', sizeof(longowner) - 1);
    longowner[sizeof(longowner) - 1] = '\0';

    assert_int_equal(c->lease_take(f->ms, NULL, "a", 10, NULL), PC_EINVAL);
    assert_int_equal(c->lease_take(f->ms, "", "a", 10, NULL), PC_EINVAL);
    assert_int_equal(c->lease_take(f->ms, longkey, "a", 10, NULL), PC_EINVAL);
    assert_int_equal(c->lease_take(f->ms, "k", NULL, 10, NULL), PC_EINVAL);
    assert_int_equal(c->lease_take(f->ms, "k", "", 10, NULL), PC_EINVAL);
    assert_int_equal(c->lease_take(f->ms, "k", longowner, 10, NULL), PC_EINVAL);
    assert_int_equal(c->lease_take(f->ms, "k", "a", 0, NULL), PC_EINVAL);
    assert_int_equal(c->lease_take(f->ms, "k", "a", -5, NULL), PC_EINVAL);
    assert_int_equal(c->lease_renew(f->ms, "k", NULL, 10), PC_EINVAL);
    assert_int_equal(c->lease_renew(f->ms, "k", "a", 0), PC_EINVAL);
    assert_int_equal(c->lease_release(f->ms, NULL, "a"), PC_EINVAL);
    assert_int_equal(c->lease_release(f->ms, "k", NULL), PC_EINVAL);
    assert_int_equal(c->lease_get(f->ms, longkey, NULL), PC_EINVAL);
    assert_int_equal(c->note_put(f->ms, NULL, "v"), PC_EINVAL);
    assert_int_equal(c->note_put(f->ms, "k", NULL), PC_EINVAL);
    assert_int_equal(c->note_get(f->ms, "k", NULL, 4, NULL), PC_EINVAL);
    assert_int_equal(c->note_get(f->ms, "k", v, 0, NULL), PC_EINVAL);
    /* nothing of the refused calls was stored */
    assert_int_equal(c->lease_get(f->ms, "k", NULL), PC_ENOTFOUND);
    assert_int_equal(c->note_get(f->ms, "k", v, sizeof(v), NULL), PC_ENOTFOUND);
    /* the longest key and owner that fit work */
    longkey[PC_LEASE_KEY_MAX - 1] = '\0';
    longowner[PC_LEASE_OWNER_MAX - 1] = '\0';
    assert_int_equal(c->lease_take(f->ms, longkey, longowner, LONG_TTL, NULL), 0);
    pc_meta_lease held;
    assert_int_equal(c->lease_get(f->ms, longkey, &held), 0);
    assert_string_equal(held.owner, longowner);
}

/* pc_meta_check refuses a store without the table, of another version,
 * or with a function missing. */
static void test_check(void **state)
{
    fixture *f = *state;
    pc_metastore h = *f->ms;
    pc_meta_coord_ops coord = *f->ms->coord;
    h.coord = NULL;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    h.coord = &coord;
    coord.version++;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    coord = *f->ms->coord;
    coord.note_get = NULL;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    coord = *f->ms->coord;
    coord.lease_take = NULL;
    assert_int_equal(pc_meta_check(&h), PC_ENOTSUP);
    coord = *f->ms->coord;
    assert_int_equal(pc_meta_check(&h), 0);
}

static int run_kind(const kind *k)
{
    void *s = (void *)k;
#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, s)
    const struct CMUnitTest tests[] = {
        T(test_one_holder), T(test_expiry),  T(test_race_threads), T(test_race_handles),
        T(test_notes),      T(test_invalid), T(test_check),
    };
#undef T
    print_message("[ backend %s ]\n", k->name);
    return cmocka_run_group_tests_name(k->name, tests, NULL, NULL);
}

/* With a PostgreSQL server (PC_TEST_PG_CONNINFO: tests/tools/pg_test.sh,
 * ctest's unit.store_meta_pg) the postgres backend only; else the others. */
int main(void)
{
    int failed = 0;
    bool pg = pc_test_pg_base() != NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if ((strcmp(kinds[i].name, "postgres") == 0) == pg)
            failed += run_kind(&kinds[i]);
    if (!pg)
        print_message(
            "[ backend postgres: in unit.store_meta_pg (no PC_TEST_PG_CONNINFO here) ]\n");
    return failed;
}
