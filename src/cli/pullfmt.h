/*
 * pullfmt.h - what the pull and loadgen verbs share on the output side:
 * exit codes for a failed pull, byte counts for people, the ratelimit
 * object of their JSON, numeric flags, and whether stderr is a terminal
 * that can take a progress line.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_CLI_PULLFMT_H
#define PC_CLI_PULLFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "pull.h"

/* Exit codes of the client verbs that pull. */
enum {
    PC_CLI_EXIT_OK = 0,
    PC_CLI_EXIT_LOCAL = 1,    /* the output directory, memory, credentials file */
    PC_CLI_EXIT_USAGE = 2,    /* bad flags or arguments */
    PC_CLI_EXIT_REGISTRY = 3, /* an error status from the registry, or the network */
    PC_CLI_EXIT_VERIFY = 4,   /* digest or size mismatch, malformed manifest */
    PC_CLI_EXIT_PLATFORM = 5, /* the index has no manifest for the platform */
    PC_CLI_EXIT_INTERRUPTED = 130,
};

/* The exit code for a pull that failed this way. */
int pc_cli_pull_exit(pc_pull_fail kind);

/* "4.3 MB" (powers of 1000, like docker) into buf; returns buf. */
const char *pc_cli_fmt_bytes(uint64_t n, char *buf, size_t size);

/* The configuration of a verb that works on a data directory (gc, fsck):
 * FILE (NULL: the embedded defaults), then --data and --upstream flags,
 * finalized and validated. 0 with *out (pc_config_free), or -1 with
 * "pullcache VERB: ..." on stderr. */
int pc_cli_config_load(const char *verb, const char *config_path, const char *data,
                       const char *const *upstreams, int nupstreams, pc_config **out);

/* "s" unless n is 1: "%llu blob%s". */
const char *pc_cli_plural(unsigned long long n);

/* {"limit","remaining","window","source"} (null members when unknown), or
 * JSON null when rl is NULL. A new reference. */
json_t *pc_cli_ratelimit_json(const pc_ratelimit *rl);

/* "76 of 100 per 21600 s (source 1.2.3.4)" into buf; returns buf. */
const char *pc_cli_fmt_ratelimit(const pc_ratelimit *rl, char *buf, size_t size);

/* Print o compactly on stdout with a newline and drop the reference.
 * 0 or -1. */
int pc_cli_print_json(json_t *o);

/* Parse a whole number for flag within [min, max]; prints a message and
 * returns -1 when it is not one. */
int pc_cli_parse_uint(const char *verb, const char *flag, const char *arg, unsigned min,
                      unsigned max, unsigned *out);

/* Parse --platform OS/ARCH[/VARIANT] for verb; prints a message and returns
 * -1 when it is malformed. */
int pc_cli_platform_parse(const char *verb, const char *arg, pc_pull_platform *out);

/* Whether stderr is a terminal that understands \r and ESC[K. */
bool pc_cli_stderr_tty(void);

/* Columns of the terminal on stderr (80 when unknown). */
int pc_cli_term_width(void);

#endif
