/*
 * copyside.h - what `pullcache copy` and `pullcache sync` share: the two
 * sides of a copy (a registry reference or oci:DIR[:TAG]) parsed and
 * opened with the client flags, registry clients per host with the
 * credentials found for it, --platform lists, the JSON and text summary
 * of a copy, and the per-blob progress display on a terminal.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_CLI_COPYSIDE_H
#define PC_CLI_COPYSIDE_H

#include <stdio.h>

#include <jansson.h>

#include "client.h"
#include "copy.h"

#define PC_COPY_PLATFORMS_MAX 16
#define PC_COPY_NAME_MAX (PC_HOST_MAX + PC_NAME_MAX + PC_TAG_MAX + PC_DIGEST_MAX + 8)

/* One side as the user typed it. */
typedef struct {
    bool layout;
    char dir[4096];            /* layout */
    char tag[PC_TAG_MAX + 1];  /* layout: "" = none */
    pc_ref ref;                /* registry */
    pc_endpoint_scheme scheme; /* registry: its http:// or https:// prefix */
    bool has_tag;              /* registry: a tag was typed (else ref.tag is "latest" or SRC's) */
    pc_upstream *u;            /* opened */
    pc_client_conn conn;       /* opened: the URL and credentials chosen */
} pc_copy_side;

typedef struct {
    pc_copy_side src, dst;
    char src_name[PC_COPY_NAME_MAX], dst_name[PC_COPY_NAME_MAX];
} pc_copy_sides;

/* Parse SRC and DST (each may start with http:// or https://); a DST
 * without a tag takes SRC's (none when SRC is a digest). Prints a message
 * and returns -1 on bad input. */
int pc_copy_sides_parse(const char *verb, const char *src, const char *dst, pc_copy_sides *s);

/* Open registry clients for the registry sides (pc_client_connect with
 * --src-* over the shared flags for SRC, --dest-* for DST). Prints a
 * message and returns -1 on failure. */
int pc_copy_sides_open(const char *verb, pc_client_opts *co, pc_copy_sides *s);

/* Set o->src and o->dst from the opened sides. */
void pc_copy_sides_fill(const pc_copy_sides *s, pc_copy_opts *o);

/* Free the clients. */
void pc_copy_sides_close(pc_copy_sides *s);

/* Add the platforms of arg ("linux/amd64,linux/arm64") to plats. Prints a
 * message and returns -1 when one is malformed or there are too many. */
int pc_cli_platforms_parse(const char *verb, const char *arg, pc_pull_platform *plats, size_t *n);

/* The JSON summary of a copy (rc 0) or its failure (with advice, "" when
 * none: pc_client_tls_advice). A new reference. */
json_t *pc_cli_copy_json(const char *src, const char *dst, int rc, const pc_copy_result *r,
                         const char *advice);

/* One line: what was copied, or that nothing had to be. */
void pc_cli_copy_summary(FILE *f, const char *src, const char *dst, const pc_copy_result *r);

/* The per-blob progress display on stderr (pc_pull_progress_cb). */
typedef struct pc_cli_bars pc_cli_bars;
pc_cli_bars *pc_cli_bars_new(void);
void pc_cli_bars_event(const pc_pull_progress *p, void *ctx);
/* Draw the final state (ok) or leave the last one, and free (NULL is fine). */
void pc_cli_bars_free(pc_cli_bars *b, bool ok);

#endif
