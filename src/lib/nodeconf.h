/*
 * nodeconf.h - what a node's container runtimes are told about registry
 * mirrors, read from their files (parsed TOML or JSON trees, toml.h and
 * jansson) into plain structures, for `pullcache doctor`:
 *
 *   containerd  config.toml: the CRI registry's config_path (1.x:
 *               plugins."io.containerd.grpc.v1.cri".registry, 2.x:
 *               plugins."io.containerd.cri.v1.images".registry); hosts.toml:
 *               server and the [host."URL"] tables (capabilities,
 *               skip_verify, override_path), as containerd reads them
 *   containers  registries.conf and registries.conf.d/NAME.conf (v2): the
 *               [[registry]] tables (prefix, location, insecure, blocked,
 *               mirror-by-digest-only) and their [[registry.mirror]]s; a
 *               drop-in's table replaces an earlier one with the same prefix
 *   docker      daemon.json: registry-mirrors, insecure-registries
 *
 * Every parser checks the types of the keys it reads (a wrong type is an
 * error naming the key, as the runtime itself would refuse the file) and
 * ignores keys it does not read.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_NODECONF_H
#define PC_NODECONF_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* ---- containerd ---- */

typedef struct {
    long version;        /* the file's version key, 0 when absent */
    char *config_path;   /* the registry's config_path, NULL when not set */
    const char *plugin;  /* the plugin table config_path (or registry) is in, or NULL */
    bool legacy_mirrors; /* registry.mirrors is set (replaced by config_path) */
} pc_nodeconf_containerd;

/* Read containerd's config.toml tree. 0, or -1 with a message in err. */
int pc_nodeconf_containerd_read(const json_t *doc, pc_nodeconf_containerd *out, char *err,
                                size_t errsize);
void pc_nodeconf_containerd_clear(pc_nodeconf_containerd *c);

typedef struct {
    char *key;       /* the [host."KEY"] as written */
    char *url;       /* scheme://host[:port][path]: https:// added when KEY has none */
    char *api_root;  /* where containerd sends /<repo>/manifests/...: url + /v2 unless
                        override_path or the path already ends with /v2 */
    bool plain;      /* http:// */
    bool caps_given; /* capabilities was set (else containerd grants all three) */
    bool pull, resolve, push;
    bool skip_verify;   /* skip_verify = true */
    bool override_path; /* override_path = true */
} pc_nodeconf_host;

typedef struct {
    char *server;           /* server, NULL when not set */
    pc_nodeconf_host *host; /* the [host] tables in file order */
    size_t nhost;
} pc_nodeconf_hosts;

/* Read a hosts.toml tree. 0, or -1 with a message in err (an unknown
 * capability, a wrong type, a host URL that is not one: containerd refuses
 * such a file and pulls fail). */
int pc_nodeconf_hosts_read(const json_t *doc, pc_nodeconf_hosts *out, char *err, size_t errsize);
void pc_nodeconf_hosts_clear(pc_nodeconf_hosts *h);

/* ---- containers-registries.conf (podman, CRI-O, buildah, skopeo) ---- */

typedef struct {
    char *location;
    bool insecure;
    char *pull_from_mirror; /* "all", "digest-only", "tag-only", or NULL */
} pc_nodeconf_mirror;

typedef struct {
    char *prefix;   /* the prefix, or the location when prefix is not set */
    char *location; /* NULL when not set (then the prefix) */
    bool prefix_given;
    bool insecure;
    bool blocked;
    bool digest_only; /* mirror-by-digest-only = true: tags resolved at the registry */
    pc_nodeconf_mirror *mirror;
    size_t nmirror;
    char *file; /* the file it came from */
} pc_nodeconf_registry;

typedef struct {
    pc_nodeconf_registry *reg;
    size_t nreg;
    bool v1; /* a file in the v1 format ([registries.search] ...) was seen */
} pc_nodeconf_registries;

/* Add the [[registry]] tables of one file's tree, in order (a table with a
 * prefix already present replaces it, as a later drop-in does). 0, or -1
 * with a message in err. */
int pc_nodeconf_registries_add(pc_nodeconf_registries *r, const json_t *doc, const char *file,
                               char *err, size_t errsize);
/* The [[registry]] a reference (host/repository, e.g. docker.io/library/x)
 * falls under: the longest prefix that matches it on a '/' boundary, or a
 * "*.domain" wildcard; NULL when none does. */
const pc_nodeconf_registry *pc_nodeconf_registries_find(const pc_nodeconf_registries *r,
                                                        const char *ref);
void pc_nodeconf_registries_clear(pc_nodeconf_registries *r);

/* ---- docker ---- */

typedef struct {
    char **mirrors; /* registry-mirrors */
    size_t nmirrors;
    char **insecure; /* insecure-registries */
    size_t ninsecure;
} pc_nodeconf_docker;

/* Read daemon.json's tree. 0, or -1 with a message in err. */
int pc_nodeconf_docker_read(const json_t *doc, pc_nodeconf_docker *out, char *err, size_t errsize);
void pc_nodeconf_docker_clear(pc_nodeconf_docker *d);

#endif
