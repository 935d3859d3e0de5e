/*
 * copy_int.h - internals shared by the files of the copy engine: copy.c
 * (the plan, manifests, referrers) and copy_blob.c (blob transfers,
 * readers, retries). Not for other modules: they use copy.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_COPY_INT_H
#define PC_COPY_INT_H

#include "copy.h"

#include <pthread.h>

#include "jobpool.h"

/* One blob of the plan. */
typedef struct {
    pc_pull_desc desc;
    uint64_t hw; /* bytes reported as done so far (pc_jobpool_progress_data) */
} pc_copy_job;

/* The state of one copy. */
typedef struct {
    const pc_copy_opts *o;
    pc_copy_result *res;
    pc_pull_layout *dst_layout; /* the destination when it is a layout */
    bool mount;                 /* src and dst are one registry, different repositories */
    unsigned retries;           /* effective o->retries */
    pthread_mutex_t lock;       /* guards what follows */
    pc_copy_job *jobs;
    size_t njobs, cap;
    atomic_bool stop;         /* a job failed or the copy was canceled */
    int rc;                   /* the first failure's code */
    pc_jobpool_progress prog; /* the plan's totals and the progress events */
    uint32_t seed;            /* for jitter */
} pc_copy_ctx;

/* Record a failure (the first one wins) and stop the workers. Returns rc. */
int pc_copy_fail(pc_copy_ctx *c, int rc, pc_pull_fail kind, bool dest, const char *object,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Record a failed exchange (rc 0, r->cls not OK) as the failure. */
int pc_copy_fail_resp(pc_copy_ctx *c, bool dest, const char *object, const pc_upstream_resp *r);

bool pc_copy_canceled(pc_copy_ctx *c);

/* After the failed exchange r: whether to try again. *attempt counts the
 * retries made so far; when true, it was incremented, the retry counted
 * and the back-off slept. False when the class is not retryable, the
 * retries are used up, Retry-After asks for more than 5 minutes, or the
 * copy is stopping. */
bool pc_copy_retry(pc_copy_ctx *c, unsigned *attempt, const pc_upstream_resp *r);

/* Add a blob to the plan unless it is there. 0 or PC_ENOMEM. */
int pc_copy_plan_add(pc_copy_ctx *c, const pc_pull_desc *d);

/* Transfer every blob of the plan with o->concurrency workers. 0 or the
 * first failure's code (recorded). */
int pc_copy_blobs(pc_copy_ctx *c);

#endif
