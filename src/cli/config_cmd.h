/*
 * config_cmd.h - what the three parts of `pullcache config` share:
 *
 *   config_cmd.c       the verb: options, --mirror and --upstream checks,
 *                      printing, writing --output files, --json
 *   config_runtimes.c  the files each runtime gets (containerd hosts.toml,
 *                      containers-registries.conf drop-in, daemon.json keys)
 *   config_check.c     asking the mirror's /_pullcache/status which
 *                      upstreams it serves, before anything is written
 *   config_keep.c      containerd's files on a node: --watch keeps them in
 *                      place, --remove (and --remove-on-exit) takes them away
 *
 * `pullcache doctor` (doctor.h), which checks the files these write, takes
 * the --mirror URL rules, the paths and the status request from here.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_CLI_CONFIG_CMD_H
#define PC_CLI_CONFIG_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "upstream.h"

#define PC_CFG_MAX_UPSTREAMS 64
#define PC_CFG_MAX_URL 512
#define PC_CFG_MAX_NAME 300 /* an --upstream name: host (253) and :port */

/* The first line of every hosts.toml `pullcache config containerd` makes:
 * --remove deletes a file only when it starts with this line. */
#define PC_CFG_MARK                                                                                \
    "# Written by `pullcache config containerd`: its --remove deletes files with this line only."

/* Where the runtimes' files are on a node (what --output DIR stands for). */
#define PC_CFG_CONTAINERD_CONFIG "/etc/containerd/config.toml"
#define PC_CFG_CONTAINERD_DIR "/etc/containerd/certs.d"
#define PC_CFG_REGISTRIES_CONF "/etc/containers/registries.conf"
#define PC_CFG_REGISTRIES_DIR "/etc/containers/registries.conf.d"
#define PC_CFG_REGISTRIES_DROPIN "pullcache.conf"
#define PC_CFG_DOCKER_DIR "/etc/docker"
#define PC_CFG_DOCKER_JSON "daemon.json"

/* The mirror as nodes reach it, from --mirror (validated, host lowercased). */
typedef struct {
    char url[PC_CFG_MAX_URL + 16]; /* scheme://host[:port], no trailing slash */
    char hostport[PC_CFG_MAX_URL]; /* host[:port] ([v6]:port) */
    bool plain;                    /* http:// */
    bool insecure;                 /* plain, or --plain-http */
} pc_cfg_mirror;

/* Parse and check a mirror's root URL: http(s)://host[:port][/], no path,
 * query or user (host lowercased). 0, or -1 with a message on stderr that
 * starts with what (e.g. "pullcache config: --mirror"). */
int pc_cfg_parse_mirror(const char *s, bool plain_http, const char *what, pc_cfg_mirror *m);

/* Check an --upstream NAME (a registry host: DNS labels with a '.', or a
 * :port, or localhost) and write it into buf, lowercased (with a note on
 * stderr when that changed it) and with docker.io's aliases folded. 0, or -1
 * with a message on stderr that starts with who (e.g. "pullcache config"). */
int pc_cfg_upstream_name(const char *who, const char *arg, char *buf, size_t size);

/* One generated file. */
typedef struct {
    char *path;    /* where it goes on a node */
    char *rel;     /* the same, relative to the runtime's directory (--output DIR) */
    char *content; /* the file's bytes */
} pc_cfg_file;

/* What a runtime generates: files, how to activate them (notes, comment
 * lines without the "# "), and warnings (always to stderr). All owned;
 * pc_cfg_output_free() releases them. */
typedef struct {
    pc_cfg_file files[PC_CFG_MAX_UPSTREAMS];
    size_t nfiles;
    char *notes;
    char *warnings;
} pc_cfg_output;

/* Build a runtime's output for the mirror and upstream names (valid,
 * lowercase, no duplicates). 0, or -1 when out of memory. */
typedef int (*pc_cfg_build_fn)(const pc_cfg_mirror *m, const char *const *ups, size_t n,
                               pc_cfg_output *out);

/* ---- helpers (config_runtimes.c) ---- */

/* A malloc'd formatted string (caller frees), NULL when out of memory. */
char *pc_cfg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Append text to *s (malloc'd or NULL; a newline is added when *s does
 * not end with one). 0, or -1 when out of memory (*s unchanged). */
int pc_cfg_append(char **s, const char *text);

/* Free everything o holds and zero it. */
void pc_cfg_output_free(pc_cfg_output *o);

/* A JSON value as indented text with a final newline (caller frees), NULL
 * when out of memory. */
char *pc_cfg_json_text(const json_t *j);

/* The registry an upstream name stands for: https://registry-1.docker.io
 * for docker.io, else https://<name>. Returns buf or a constant. */
const char *pc_cfg_upstream_url(const char *name, char *buf, size_t size);

/* ---- runtimes (config_runtimes.c) ---- */

int pc_cfg_build_containerd(const pc_cfg_mirror *m, const char *const *ups, size_t n,
                            pc_cfg_output *out);
/* podman, CRI-O, buildah, skopeo: one containers-registries.conf drop-in. */
int pc_cfg_build_registries_conf(const pc_cfg_mirror *m, const char *const *ups, size_t n,
                                 pc_cfg_output *out);
int pc_cfg_build_docker(const pc_cfg_mirror *m, const char *const *ups, size_t n,
                        pc_cfg_output *out);

/* Merge the mirror's daemon.json keys into the existing file at path: each
 * array gains the value unless it already holds it; other keys stay. *out
 * (the new text) is the caller's. 0, 1 (no file there), or -1 with a
 * message on stderr. */
int pc_cfg_merge_daemon_json(const char *path, const pc_cfg_mirror *m, char **out);

/* Write content to path atomically (a temporary file in its directory, then
 * rename; the directories made as needed), unless the file already holds
 * exactly content. 0 written, 1 already so, -1 with a message on stderr.
 * (config_cmd.c) */
int pc_cfg_write_file(const char *path, const char *content);

/* ---- a node's containerd files (config_keep.c) ---- */

/* Remove DIR/<upstream>/hosts.toml for each of ups (n of them; n == 0: every
 * DIR/<name>/hosts.toml) when it starts with PC_CFG_MARK, then the upstream's
 * directory if that left it empty; a file without the mark is kept (a note
 * on stderr). Prints "# removed PATH" per file. 0, or 1 when a file could
 * not be removed or DIR not read. */
int pc_cfg_remove(const char *dir, const char *const *ups, size_t n);

/* Keep the generated files (g->files[i] at DIR/rel) in place: every
 * interval seconds each one that is missing or differs is written again
 * ("# restored PATH"), until SIGINT or SIGTERM; then, with remove_on_exit,
 * the files are removed as pc_cfg_remove() does. 0, or 1 when a write or
 * removal failed at the end. */
int pc_cfg_watch(const char *dir, const pc_cfg_output *g, unsigned interval, bool remove_on_exit);

/* ---- the mirror check (config_check.c) ---- */

typedef struct {
    const char *ca_file; /* --ca-file: CA bundle for an https:// mirror, or NULL */
    bool force;          /* --force: warn instead of refusing */
    bool bare_paths;     /* the runtime sends Docker Hub pulls as bare /v2/<repo>
                            paths (docker): the server needs default_upstream docker.io */
} pc_cfg_check_opts;

/* The check refused the settings (exit code 3 of the verb). */
#define PC_CFG_REFUSED 3

/* Ask the mirror (GET <url>/_pullcache/status, 2 s to connect) which
 * upstreams it serves and compare with ups (the upstreams the generated
 * files point at it). What it found is appended to out->notes; a mirror that
 * cannot be asked (unreachable, TLS, credentials needed, not a pullcache) is
 * a warning appended to out->warnings. Returns 0 to go on, PC_CFG_REFUSED
 * after printing why on stderr (an upstream the mirror does not have, or
 * bare paths served from another registry than docker.io; with o->force
 * these are warnings and 0), or -1 when out of memory. */
int pc_cfg_check(const pc_cfg_mirror *m, const pc_cfg_check_opts *o, const char *const *ups,
                 size_t n, pc_cfg_output *out);

/* GET <m->url>/_pullcache/status (2 s to connect, no credentials; TLS
 * verified with ca_file unless m is insecure). 0 with *doc the status
 * document (the caller's), or 0 with *doc NULL when the answer was not one
 * (r says what came: status, class, error text; the caller clears r), or -1
 * when the client could not be set up (message on stderr). */
int pc_cfg_status_get(const pc_cfg_mirror *m, const char *ca_file, json_t **doc,
                      pc_upstream_resp *r);

/* Whether a status document's upstreams[] has one named name. */
bool pc_cfg_status_has(const json_t *doc, const char *name);

#endif
