/*
 * log.h - the daemon's log: one line per request (client, method, path,
 * status, bytes, duration) and event lines, as text or JSON, to stderr.
 * Each line is written with a single write(2), so lines from several
 * threads never interleave.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_LOG_H
#define PC_LOG_H

#include "pc.h"

typedef enum { PC_LOG_ERROR = 0, PC_LOG_WARN, PC_LOG_INFO, PC_LOG_DEBUG } pc_log_level;

/* Set the format ("text" or "json") and level name. */
void pc_log_setup(const char *format, const char *level);

/* An event line at level. */
void pc_log(pc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The request line. user: the authenticated user, NULL or "" for none
 * (text: a last field "user=NAME"; JSON: "user"). */
void pc_log_request(const char *client, const char *method, const char *path, unsigned status,
                    uint64_t bytes, double duration_ms, const char *user);

#endif
