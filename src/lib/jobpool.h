/*
 * jobpool.h - one bounded job pool: a fixed number of worker threads taking
 * jobs from a FIFO queue, with per-worker init/fini hooks, wait-all and a
 * shutdown that finishes or cancels what is still queued; and the progress
 * tally the blob transfers of the client verbs (pull, copy, loadgen through
 * pull) report with.
 *
 * The queue is unbounded (a linked list, one small allocation a job): every
 * user already bounds what it submits. The server submits one request job
 * per suspended connection (bounded by http.max_connections) and one fetch
 * job per distinct digest in flight (bounded by the same); the client verbs
 * submit their plan, a list they hold in memory anyway. Refusing a job
 * there would only turn into a 503 for a client the server accepted, so
 * what the pool bounds is the threads (and with them the meta-store
 * connections: the SQLite store keeps one per thread, and a pool worker's
 * thread lives as long as the pool), not the queue.
 *
 * Deadlock rule for users: a job must never wait for another job of the
 * same pool that may still be queued (with every worker waiting, it would
 * never start). The server runs request jobs and upstream fetches in two
 * pools, and a request waiting for a fetch to start holds no worker at all
 * (docs/CONFIG.md, http.workers and cache.fetch_workers); a manifest
 * request that waits for the same manifest's exchange waits for a job that
 * is running, never a queued one (mirror.c, pc_mirror_manifest_fetch).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_JOBPOOL_H
#define PC_JOBPOOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "pc.h"
#include "pull.h"

typedef struct pc_jobpool pc_jobpool;

/* A job: run on a worker with the worker's state (what init returned). */
typedef void (*pc_jobpool_fn)(void *arg, void *worker);

/* A queued job the pool drops at a canceling shutdown, on the calling
 * thread, so the submitter can release arg (and answer whoever waits). */
typedef void (*pc_jobpool_cancel_fn)(void *arg);

typedef struct {
    unsigned workers; /* threads, at least 1 (PC_JOBPOOL_MAX_WORKERS at most) */
    const char *name; /* thread name prefix (up to 10 characters), NULL = "pc-pool" */
    /* Per worker, on the worker's thread: init before its first job (its
     * result is the worker state handed to each job and to fini), fini
     * after its last. Both optional; each runs exactly once per worker. */
    void *(*init)(void *ctx);
    void (*fini)(void *ctx, void *worker);
    void *ctx;
} pc_jobpool_opts;

#define PC_JOBPOOL_MAX_WORKERS 1024u

/* Start the workers. When fewer threads than asked can be started (but at
 * least one), the pool runs with those (pc_jobpool_workers). 0, PC_EINVAL
 * (no workers asked, or too many), PC_ENOMEM, PC_ERR (no thread at all). */
int pc_jobpool_new(pc_jobpool **out, const pc_jobpool_opts *o);

/* Queue a job (FIFO). Safe from any thread, jobs included. cancel may be
 * NULL. 0, PC_ENOMEM, or PC_ERR once the pool is shutting down (the job
 * is then not queued and neither fn nor cancel is called). */
int pc_jobpool_submit(pc_jobpool *p, pc_jobpool_fn fn, pc_jobpool_cancel_fn cancel, void *arg);

/* Block until the queue is empty and no job runs, counting jobs that jobs
 * submit. Not from a job of the pool (it would wait for itself). */
void pc_jobpool_wait(pc_jobpool *p);

/* How a shutdown treats the jobs still queued. */
typedef enum {
    PC_JOBPOOL_FINISH = 0, /* the workers run them all, then stop */
    PC_JOBPOOL_CANCEL,     /* they are dropped (their cancel called); running jobs finish */
} pc_jobpool_end;

/* Refuse new jobs (submit fails from now on), finish or cancel the queued
 * ones, let the running ones end and join every worker (fini runs on
 * each). The pool stays valid for submit (refused) until freed; a second
 * stop does nothing. Not from a job of the pool, and from one thread. */
void pc_jobpool_stop(pc_jobpool *p, pc_jobpool_end how);

/* Stop (as above, unless stopped already) and free the pool. NULL is a
 * no-op. */
void pc_jobpool_free(pc_jobpool *p, pc_jobpool_end how);

/* Workers actually running. */
unsigned pc_jobpool_workers(const pc_jobpool *p);

/* Jobs queued and not started, and jobs running now (a snapshot). */
void pc_jobpool_stats(pc_jobpool *p, size_t *queued, size_t *running);

/* ---- progress of a batch of blob transfers ----
 *
 * What pull and copy report through pc_pull_progress: the plan (blobs and
 * total bytes), each blob's start, its bytes as they arrive (a blob that is
 * resumed after a retry never counts a byte twice: per blob, only what
 * goes past its high-water mark counts), its end (done, skipped: counted
 * whole; failed). Calls are serialized by the tally's own lock, so the
 * callback sees one event at a time with consistent totals. */
typedef struct {
    pc_pull_progress_cb cb; /* NULL: nothing reported, totals still kept */
    void *ctx;
    pthread_mutex_t lock;
    size_t nblobs;
    uint64_t total_size, total_done;
    size_t blobs_done;
} pc_jobpool_progress;

void pc_jobpool_progress_init(pc_jobpool_progress *pr, pc_pull_progress_cb cb, void *ctx);
void pc_jobpool_progress_destroy(pc_jobpool_progress *pr);

/* A blob of size bytes joins the plan (before the PLAN event). */
void pc_jobpool_progress_add(pc_jobpool_progress *pr, uint64_t size);

/* The plan is complete: the PLAN event. */
void pc_jobpool_progress_plan(pc_jobpool_progress *pr);

/* Blob index (d) starts moving. */
void pc_jobpool_progress_start(pc_jobpool_progress *pr, size_t index, const pc_pull_desc *d);

/* Blob index has its first pos bytes moved; *hw is the blob's high-water
 * mark (start at 0): only pos past it counts, and only then is the DATA
 * event sent. */
void pc_jobpool_progress_data(pc_jobpool_progress *pr, size_t index, const pc_pull_desc *d,
                              uint64_t *hw, uint64_t pos);

/* Blob index ended with ev (PC_PULL_EV_DONE, _SKIPPED or _FAILED). Done and
 * skipped blobs count whole (what is past *hw) and as one blob done. */
void pc_jobpool_progress_end(pc_jobpool_progress *pr, size_t index, const pc_pull_desc *d,
                             uint64_t *hw, pc_pull_event ev);

/* Bytes counted so far (under the lock). */
uint64_t pc_jobpool_progress_done(pc_jobpool_progress *pr);

#endif
