/*
 * log.h - the daemon's log: one line per request (client, method, path,
 * status, bytes, duration) and event lines, as text or JSON, to stderr or
 * a file (reopened on request for logrotate). Each line is written with a single write(2), so lines
 * from several threads never interleave.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_LOG_H
#define PC_LOG_H

#include "pc.h"

typedef enum { PC_LOG_ERROR = 0, PC_LOG_WARN, PC_LOG_INFO, PC_LOG_DEBUG } pc_log_level;

/* Set the format ("text" or "json") and level name. On stderr, when
 * systemd's JOURNAL_STREAM names the stream stderr is, text lines carry a
 * "<N>" priority prefix (sd-daemon(3)) and no timestamp: the journal keeps
 * its own and files the level. */
void pc_log_setup(const char *format, const char *level);

/* Write to FILE (appended, created 0640) instead of stderr. 0, or PC_ERR
 * with the error set (the log stays where it was). */
int pc_log_open(const char *path);

/* Open the log file again under its name (SIGUSR1, after logrotate moved
 * it): lines written meanwhile go to the old or the new file, none is lost
 * or split. 0, PC_ENOTFOUND when logging to stderr, PC_ERR (the old file
 * stays in use). */
int pc_log_reopen(void);

/* Which request lines to write: mode "all" (the default), "errors" (status
 * 400 and above only) or "off"; of the lines below 400, one in sample
 * (>= 1) is written. */
void pc_log_access(const char *mode, unsigned sample);

/* An event line at level. */
void pc_log(pc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The request line. user: the authenticated user, NULL or "" for none
 * (text: a last field "user=NAME"; JSON: "user"). */
void pc_log_request(const char *client, const char *method, const char *path, unsigned status,
                    uint64_t bytes, double duration_ms, const char *user);

#endif
