/*
 * metrics.h - process-wide counters and gauges, rendered as Prometheus text
 * for GET /metrics. Series are identified by a metric name and a label set
 * given already rendered ("upstream=\"docker.io\",kind=\"blob\""); the first
 * use of a series creates it. Updates are lock-free after creation.
 *
 * Metrics used by the daemon (all prefixed pullcache_):
 *   upstream_requests_total{upstream,kind,method}   requests sent upstream
 *   cache_hits_total{upstream,kind}                 served from the cache
 *   cache_misses_total{upstream,kind}               had to ask upstream
 *   cache_stale_total{upstream,kind}                served stale (upstream failing)
 *   upstream_bytes_total{upstream}                  body bytes from upstream
 *   client_bytes_total{upstream}                    body bytes to clients
 *   fetches_in_flight{upstream}                     gauge
 *   fetch_waiters_total{upstream}                   requests that joined a fetch
 *   upstream_errors_total{upstream,class}           failures by class
 *   http_requests_total{kind,method,status}         every request served
 *   http_request_duration_seconds{kind}             histogram of answer times
 *   limit_pulls_total{budget}                       manifest GETs counted (limiter.h)
 *   limit_refused_total{budget}                     manifest GETs refused with 429
 *   limit_untracked_total{budget}                   let through: too many clients tracked
 *   budget_skipped_revalidations_total{upstream}    expired tags served as they are (budget low)
 *   budget_refused_total{upstream}                  misses refused while a Retry-After runs
 * and, rendered from budget.c at request time (not series of this registry):
 *   upstream_ratelimit_{limit,remaining,window_seconds,reserve,seen_timestamp_seconds,
 *                       state}{upstream,credential[,state]}
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_METRICS_H
#define PC_METRICS_H

#include "pc.h"

typedef enum { PC_METRIC_COUNTER, PC_METRIC_GAUGE, PC_METRIC_HISTOGRAM } pc_metric_type;

/* Most bucket bounds a histogram may have (without +Inf). */
#define PC_METRICS_MAX_BUCKETS 24

/* Declare a metric's type and help text (once, at start-up; optional: an
 * undeclared metric renders as an untyped counter). Thread-safe. */
void pc_metrics_declare(const char *name, pc_metric_type type, const char *help);

/* Declare a histogram with n ascending upper bounds (+Inf is implied).
 * Observations of an undeclared name are dropped. Thread-safe. */
void pc_metrics_declare_histogram(const char *name, const char *help, const double *bounds,
                                  size_t n);

/* Record one observation (e.g. seconds) in a declared histogram series.
 * Values are kept to the microunit in _sum. */
void pc_metrics_observe(const char *name, const char *labels, double value);

/* Create a histogram series with no observations, so it renders from the
 * start. */
void pc_metrics_hist_zero(const char *name, const char *labels);

/* Observations so far in a histogram series (0 when it does not exist). For tests. */
uint64_t pc_metrics_hist_count(const char *name, const char *labels);

/* Add n to a counter series (created on first use). */
void pc_metrics_add(const char *name, const char *labels, uint64_t n);

/* Add delta (may be negative) to a gauge series. */
void pc_metrics_gauge_add(const char *name, const char *labels, int64_t delta);

/* Current value of a series (0 when it does not exist). For tests. */
int64_t pc_metrics_value(const char *name, const char *labels);

/* Render every series as Prometheus text exposition format 0.0.4 into a
 * malloc'd string (the caller's). NULL when out of memory. */
char *pc_metrics_render(void);

/* Forget every series (tests). */
void pc_metrics_reset(void);

/* Render one label value escaped for Prometheus (\\, \", \n) into buf.
 * Returns buf. */
char *pc_metrics_escape(const char *value, char *buf, size_t size);

#endif
