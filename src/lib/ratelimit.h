/*
 * ratelimit.h - reading a registry's pull budget from its response headers:
 * `ratelimit-limit`, `ratelimit-remaining` (Docker Hub: "100;w=21600"; the
 * IETF drafts: "100, 100;w=60, 1000;w=3600"), `docker-ratelimit-source`, and
 * `Retry-After` (seconds or an HTTP date). Shared by the client verbs and the
 * daemon's budget tracking.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_RATELIMIT_H
#define PC_RATELIMIT_H

#include "pc.h"

#include <time.h>

#define PC_RATELIMIT_SOURCE_MAX 128

/* One registry's budget as one response reported it. -1 = not sent or not
 * understood. */
typedef struct {
    int64_t limit;                        /* pulls per window */
    int64_t remaining;                    /* pulls left in the current window */
    int64_t window;                       /* window length in seconds (";w=") */
    char source[PC_RATELIMIT_SOURCE_MAX]; /* docker-ratelimit-source, "" if none */
} pc_ratelimit;

/* Parse one header value of the `ratelimit-limit` / `ratelimit-remaining`
 * form: a comma-separated list of items, each a non-negative integer with
 * optional ";name=value" parameters. The first item is the current value;
 * its window is its own "w=" parameter or, failing that, the "w=" of the
 * first later item (a policy) with the same number. *window is -1 when no
 * window is given. Returns 0, or PC_EINVAL with a message for anything
 * else (empty, negative, non-numeric, overflow). */
int pc_ratelimit_parse_value(const char *value, int64_t *number, int64_t *window);

/* Fill out from the three raw header values (NULL or "" = absent). Headers
 * that are absent or malformed leave their fields at -1; the window comes
 * from the limit header, else the remaining header. Returns 0 when a limit
 * or a remaining count was understood, PC_ENOTFOUND when neither header was
 * sent (the registry does not limit this client), PC_EINVAL when a header
 * was sent but none could be understood. remaining is clamped to limit. */
int pc_ratelimit_parse(const char *limit, const char *remaining, const char *source,
                       pc_ratelimit *out);

/* Seconds to wait from a Retry-After value: delta-seconds, or an HTTP date
 * compared with now (0 when it is in the past). -1 when absent or
 * malformed. */
int64_t pc_ratelimit_retry_after(const char *value, time_t now);

/* Format "N;w=S" (or "N" when window < 0) into buf. Returns the length or
 * PC_ETOOBIG. */
int pc_ratelimit_format(char *buf, size_t size, int64_t n, int64_t window);

#endif
