/*
 * loadgen.h - a bounded rollout simulation: N logical nodes each pull a
 * list of images M times (the pull-and-delete loop of a node that keeps
 * losing its image cache), at most C pulls in flight overall, until every
 * pull is done, a time limit passes or the caller says stop. Each pull is a
 * full discard pull (pull.h) or only its manifests. Counts pulls ok and
 * failed by error key ("429 TOOMANYREQUESTS"), latencies, bytes.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_LOADGEN_H
#define PC_LOADGEN_H

#include <stdatomic.h>

#include "pull.h"

typedef struct {
    const pc_pull_source *src; /* its registry */
    const char *repo;          /* "library/nginx" */
    const char *reference;     /* tag or digest */
} pc_loadgen_image;

/* How the run ended. */
typedef enum {
    PC_LOADGEN_COUNT = 0, /* every planned pull ran */
    PC_LOADGEN_DURATION,  /* the time limit passed */
    PC_LOADGEN_STOPPED,   /* opts.stop was set (SIGINT) */
} pc_loadgen_end;

/* Failures that share a key ("429 TOOMANYREQUESTS", "reset",
 * "verification failed"). */
typedef struct {
    char key[96];
    long status;
    char code[64];
    uint64_t count;
    char example[768]; /* the first message seen */
} pc_loadgen_failure;

typedef struct {
    uint64_t planned; /* nodes x pulls_per_node x images */
    uint64_t started;
    uint64_t ok;
    uint64_t failed;              /* canceled pulls are not failures */
    uint64_t canceled;            /* in flight when the run was stopped */
    pc_loadgen_failure *failures; /* by first occurrence; nfailures entries */
    size_t nfailures;
    double *latencies; /* seconds of each ok pull, sorted once the run ends */
    size_t nlatencies;
    double p50, p95, p99, max; /* of ok pulls, seconds; 0 when none */
    uint64_t bytes;            /* blob bytes received by finished pulls */
    uint64_t bytes_moving;     /* in ticks: blob bytes of the pulls still running */
    uint64_t manifest_bytes;
    uint64_t manifests; /* manifest GETs */
    double seconds;
    pc_loadgen_end end;
} pc_loadgen_result;

/* Called on the caller's thread about five times a second with the counts
 * so far (latencies unsorted, percentiles unset). */
typedef void (*pc_loadgen_tick_cb)(const pc_loadgen_result *sofar, void *ctx);

typedef struct {
    const pc_loadgen_image *images;
    size_t nimages;
    unsigned nodes;            /* >= 1 */
    unsigned pulls_per_node;   /* times each node pulls each image, >= 1 */
    unsigned concurrency;      /* pulls in flight at once; a node runs one at a time */
    unsigned blob_concurrency; /* per pull; 0 = the pull default */
    double duration;           /* seconds; 0 = no limit */
    bool manifest_only;
    const pc_pull_platform *platform; /* NULL = this machine's */
    const atomic_bool *stop;          /* set to stop early (in-flight pulls are canceled) */
    pc_loadgen_tick_cb on_tick;
    void *tick_ctx;
} pc_loadgen_opts;

/* Run the simulation; blocks until it ends. res is overwritten; clear it
 * with pc_loadgen_result_clear(). 0, PC_EINVAL (bad options, message set),
 * PC_ENOMEM or PC_ERR (no thread could be started). */
int pc_loadgen_run(const pc_loadgen_opts *o, pc_loadgen_result *res);

void pc_loadgen_result_clear(pc_loadgen_result *res);

/* Nearest-rank percentile p (0 < p <= 100) of n sorted values; 0 when
 * n == 0. */
double pc_loadgen_percentile(const double *sorted, size_t n, double p);

#endif
