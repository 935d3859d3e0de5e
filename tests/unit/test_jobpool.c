/*
 * test_jobpool.c - unit tests of the job pool (jobpool.c): FIFO order,
 * wait-all counting jobs that jobs submit, a finishing shutdown runs what
 * is queued, a canceling one drops it (cancel called, nothing run) and
 * refuses new jobs (also between stop and free), init/fini run exactly
 * once per worker on that worker's thread with jobs seeing their worker's
 * state, bad sizes refused; and the progress tally (high-water marks,
 * skipped and failed blobs, events).
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

#include "jobpool.h"

/* ---- order ---- */

typedef struct {
    pthread_mutex_t m;
    int seen[200];
    int n;
} order_log;

typedef struct {
    order_log *log;
    int id;
} order_job;

static void order_run(void *arg, void *worker)
{
    order_job *j = arg;
    pthread_mutex_lock(&j->log->m);
    j->log->seen[j->log->n++] = j->id;
    pthread_mutex_unlock(&j->log->m);
}

static void test_fifo_order(void **state)
{
    (void)state;
    order_log log = {.m = PTHREAD_MUTEX_INITIALIZER};
    order_job jobs[200];
    pc_jobpool *p = NULL;
    pc_jobpool_opts o = {.workers = 1};
    assert_int_equal(pc_jobpool_new(&p, &o), 0);
    assert_int_equal(pc_jobpool_workers(p), 1);
    for (int i = 0; i < 200; i++) {
        jobs[i] = (order_job){&log, i};
        assert_int_equal(pc_jobpool_submit(p, order_run, NULL, &jobs[i]), 0);
    }
    pc_jobpool_wait(p);
    assert_int_equal(log.n, 200);
    for (int i = 0; i < 200; i++)
        assert_int_equal(log.seen[i], i); /* one worker: exactly the order submitted */
    pc_jobpool_free(p, PC_JOBPOOL_FINISH);
}

/* ---- wait-all with jobs that submit jobs ---- */

typedef struct {
    pc_jobpool *p;
    atomic_int ran;
    atomic_int submit_failed; /* no cmocka asserts off the main thread */
    atomic_int depth_left[64];
} tree;

typedef struct {
    tree *t;
    int slot;
} tree_job;

static tree_job tree_jobs[64];

static void tree_run(void *arg, void *worker)
{
    tree_job *j = arg;
    atomic_fetch_add(&j->t->ran, 1);
    /* each job queues its successor until its chain is 5 long: the last
     * ones are submitted while wait() already waits */
    if (atomic_fetch_sub(&j->t->depth_left[j->slot], 1) > 1 &&
        pc_jobpool_submit(j->t->p, tree_run, NULL, j) != 0)
        atomic_fetch_add(&j->t->submit_failed, 1);
}

static void test_wait_counts_jobs_from_jobs(void **state)
{
    (void)state;
    static tree t;
    memset(&t, 0, sizeof(t));
    pc_jobpool_opts o = {.workers = 4};
    assert_int_equal(pc_jobpool_new(&t.p, &o), 0);
    for (int i = 0; i < 64; i++) {
        atomic_init(&t.depth_left[i], 5);
        tree_jobs[i] = (tree_job){&t, i};
        assert_int_equal(pc_jobpool_submit(t.p, tree_run, NULL, &tree_jobs[i]), 0);
    }
    pc_jobpool_wait(t.p);
    assert_int_equal(atomic_load(&t.submit_failed), 0);
    assert_int_equal(atomic_load(&t.ran), 64 * 5);
    size_t queued = 9, running = 9;
    pc_jobpool_stats(t.p, &queued, &running);
    assert_int_equal(queued, 0);
    assert_int_equal(running, 0);
    /* wait on an idle pool returns at once, and the pool takes more */
    pc_jobpool_wait(t.p);
    atomic_init(&t.depth_left[0], 1);
    assert_int_equal(pc_jobpool_submit(t.p, tree_run, NULL, &tree_jobs[0]), 0);
    pc_jobpool_wait(t.p);
    assert_int_equal(atomic_load(&t.ran), 64 * 5 + 1);
    pc_jobpool_free(t.p, PC_JOBPOOL_FINISH);
}

/* ---- shutdown ---- */

typedef struct {
    pthread_mutex_t m;
    pthread_cond_t cv;
    bool started, open;
    int ran, canceled, queued_total;
    int late_submit_rc;
    pc_jobpool *p;
} gate;

static void noop_run(void *arg, void *worker)
{
    gate *g = arg;
    pthread_mutex_lock(&g->m);
    g->ran++;
    pthread_mutex_unlock(&g->m);
}

/* The first job: says it started, waits for the gate, then tries to queue
 * one more job (refused while the pool shuts down). */
static void blocker_run(void *arg, void *worker)
{
    gate *g = arg;
    pthread_mutex_lock(&g->m);
    g->started = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->m);
    g->ran++;
    pthread_mutex_unlock(&g->m);
    g->late_submit_rc = pc_jobpool_submit(g->p, noop_run, NULL, g);
}

/* A dropped job: the last one opens the gate (the canceling shutdown calls
 * these before it joins the workers, so the blocker can end). */
static void count_cancel(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->m);
    if (++g->canceled == g->queued_total) {
        g->open = true;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->m);
}

static void gate_start(gate *g, int queued)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->queued_total = queued;
    g->late_submit_rc = 12345;
    pc_jobpool_opts o = {.workers = 1};
    assert_int_equal(pc_jobpool_new(&g->p, &o), 0);
    assert_int_equal(pc_jobpool_submit(g->p, blocker_run, NULL, g), 0);
    pthread_mutex_lock(&g->m);
    while (!g->started)
        pthread_cond_wait(&g->cv, &g->m);
    pthread_mutex_unlock(&g->m);
    /* the only worker is busy: these stay queued */
    for (int i = 0; i < queued; i++)
        assert_int_equal(pc_jobpool_submit(g->p, noop_run, count_cancel, g), 0);
    size_t q = 0, r = 0;
    pc_jobpool_stats(g->p, &q, &r);
    assert_int_equal(q, (size_t)queued);
    assert_int_equal(r, 1);
}

static void gate_end(gate *g)
{
    pthread_mutex_destroy(&g->m);
    pthread_cond_destroy(&g->cv);
}

static void test_shutdown_cancels_queued(void **state)
{
    (void)state;
    gate g;
    gate_start(&g, 10);
    pc_jobpool_stop(g.p, PC_JOBPOOL_CANCEL);
    assert_int_equal(g.canceled, 10); /* each queued job dropped, its cancel called once */
    assert_int_equal(g.ran, 1);       /* only the running one ran (to its end) */
    assert_int_equal(g.late_submit_rc, PC_ERR);
    /* stopped, not freed: submit is refused, a second stop does nothing */
    assert_int_equal(pc_jobpool_submit(g.p, noop_run, count_cancel, &g), PC_ERR);
    pc_jobpool_stop(g.p, PC_JOBPOOL_FINISH);
    pc_jobpool_wait(g.p);
    pc_jobpool_free(g.p, PC_JOBPOOL_FINISH);
    assert_int_equal(g.ran, 1);
    assert_int_equal(g.canceled, 10);
    gate_end(&g);
}

static void *open_gate_later(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->m);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->m);
    return NULL;
}

static void test_shutdown_finishes_queued(void **state)
{
    (void)state;
    gate g;
    gate_start(&g, 10);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, open_gate_later, &g), 0);
    pc_jobpool_free(g.p, PC_JOBPOOL_FINISH);
    pthread_join(th, NULL);
    /* the blocker and every queued job (and the blocker's late one when it
     * came before the shutdown began) */
    assert_int_equal(g.ran, 11 + (g.late_submit_rc == 0));
    assert_int_equal(g.canceled, 0);
    gate_end(&g);
}

/* ---- init and fini per worker ---- */

typedef struct {
    pthread_t tid;
    int jobs;
    int finis;
} wstate;

typedef struct {
    pthread_mutex_t m;
    wstate ws[8];
    int inits, finis;
    bool wrong_thread;
} hooks;

static void *hook_init(void *ctx)
{
    hooks *h = ctx;
    pthread_mutex_lock(&h->m);
    wstate *w = &h->ws[h->inits++];
    w->tid = pthread_self();
    pthread_mutex_unlock(&h->m);
    return w;
}

static void hook_fini(void *ctx, void *worker)
{
    hooks *h = ctx;
    wstate *w = worker;
    pthread_mutex_lock(&h->m);
    h->finis++;
    w->finis++;
    if (!pthread_equal(w->tid, pthread_self()))
        h->wrong_thread = true;
    pthread_mutex_unlock(&h->m);
}

static void hook_job(void *arg, void *worker)
{
    hooks *h = arg;
    wstate *w = worker;
    pthread_mutex_lock(&h->m);
    w->jobs++;
    if (!pthread_equal(w->tid, pthread_self()))
        h->wrong_thread = true;
    pthread_mutex_unlock(&h->m);
}

static void test_init_fini_once_per_worker(void **state)
{
    (void)state;
    hooks h = {.m = PTHREAD_MUTEX_INITIALIZER};
    pc_jobpool *p = NULL;
    pc_jobpool_opts o = {
        .workers = 4, .name = "t-hooks", .init = hook_init, .fini = hook_fini, .ctx = &h};
    assert_int_equal(pc_jobpool_new(&p, &o), 0);
    assert_int_equal(pc_jobpool_workers(p), 4);
    for (int i = 0; i < 400; i++)
        assert_int_equal(pc_jobpool_submit(p, hook_job, NULL, &h), 0);
    pc_jobpool_wait(p);
    pc_jobpool_free(p, PC_JOBPOOL_FINISH);
    assert_int_equal(h.inits, 4);
    assert_int_equal(h.finis, 4);
    int jobs = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(h.ws[i].finis, 1); /* each worker's own state, once */
        for (int k = 0; k < i; k++)
            assert_false(pthread_equal(h.ws[i].tid, h.ws[k].tid)); /* one thread each */
        jobs += h.ws[i].jobs;
    }
    assert_int_equal(jobs, 400);
    assert_false(h.wrong_thread); /* jobs and fini ran on the thread init ran on */
}

static void test_bad_sizes(void **state)
{
    (void)state;
    pc_jobpool *p = (pc_jobpool *)&p;
    pc_jobpool_opts o = {.workers = 0};
    assert_int_equal(pc_jobpool_new(&p, &o), PC_EINVAL);
    assert_null(p);
    o.workers = PC_JOBPOOL_MAX_WORKERS + 1;
    assert_int_equal(pc_jobpool_new(&p, &o), PC_EINVAL);
    pc_jobpool_free(NULL, PC_JOBPOOL_CANCEL); /* a no-op */
}

/* ---- progress ---- */

typedef struct {
    pc_pull_progress ev[32];
    int n;
} events;

static void record_event(const pc_pull_progress *p, void *ctx)
{
    events *e = ctx;
    if (e->n < 32)
        e->ev[e->n++] = *p;
}

static void test_progress_tally(void **state)
{
    (void)state;
    events e = {0};
    pc_jobpool_progress pr;
    pc_pull_desc a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    a.size = 10;
    b.size = 20;
    c.size = 5;
    uint64_t hwa = 0, hwb = 0, hwc = 0;
    pc_jobpool_progress_init(&pr, record_event, &e);
    pc_jobpool_progress_add(&pr, a.size);
    pc_jobpool_progress_add(&pr, b.size);
    pc_jobpool_progress_add(&pr, c.size);
    pc_jobpool_progress_plan(&pr);
    assert_int_equal(e.ev[0].event, PC_PULL_EV_PLAN);
    assert_int_equal(e.ev[0].nblobs, 3);
    assert_int_equal(e.ev[0].total_size, 35);
    assert_null(e.ev[0].digest);

    pc_jobpool_progress_start(&pr, 0, &a);
    pc_jobpool_progress_data(&pr, 0, &a, &hwa, 6);
    pc_jobpool_progress_data(&pr, 0, &a, &hwa, 4); /* a resumed stream: nothing new */
    assert_int_equal(e.n, 3);
    assert_int_equal(e.ev[2].event, PC_PULL_EV_DATA);
    assert_int_equal(e.ev[2].done, 6);
    assert_int_equal(e.ev[2].total_done, 6);
    pc_jobpool_progress_data(&pr, 0, &a, &hwa, 10);
    assert_int_equal(e.ev[3].total_done, 10); /* only the 4 bytes past 6 counted */
    pc_jobpool_progress_end(&pr, 0, &a, &hwa, PC_PULL_EV_DONE);
    assert_int_equal(e.ev[4].event, PC_PULL_EV_DONE);
    assert_int_equal(e.ev[4].total_done, 10);
    assert_int_equal(e.ev[4].blobs_done, 1);

    pc_jobpool_progress_end(&pr, 1, &b, &hwb, PC_PULL_EV_SKIPPED); /* counted whole */
    assert_int_equal(e.ev[5].total_done, 30);
    assert_int_equal(e.ev[5].blobs_done, 2);
    assert_int_equal(e.ev[5].done, 20);

    pc_jobpool_progress_data(&pr, 2, &c, &hwc, 3);
    pc_jobpool_progress_end(&pr, 2, &c, &hwc, PC_PULL_EV_FAILED); /* not done: not counted */
    assert_int_equal(e.ev[7].event, PC_PULL_EV_FAILED);
    assert_int_equal(e.ev[7].blobs_done, 2);
    assert_int_equal(e.ev[7].total_done, 33);
    assert_int_equal(e.ev[7].done, 0);
    assert_int_equal(e.ev[7].blob, 2);
    assert_int_equal(pc_jobpool_progress_done(&pr), 33);
    assert_int_equal(e.n, 8);
    pc_jobpool_progress_destroy(&pr);

    /* without a callback the totals are still kept */
    pc_jobpool_progress_init(&pr, NULL, NULL);
    pc_jobpool_progress_add(&pr, 7);
    hwa = 0;
    a.size = 7;
    pc_jobpool_progress_end(&pr, 0, &a, &hwa, PC_PULL_EV_DONE);
    assert_int_equal(pc_jobpool_progress_done(&pr), 7);
    pc_jobpool_progress_destroy(&pr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_wait_counts_jobs_from_jobs),
        cmocka_unit_test(test_shutdown_cancels_queued),
        cmocka_unit_test(test_shutdown_finishes_queued),
        cmocka_unit_test(test_init_fini_once_per_worker),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_progress_tally),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
