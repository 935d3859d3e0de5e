/*
 * doctor.h - what the parts of `pullcache doctor` share:
 *
 *   doctor.c        the verb: options, the files' paths, findings printed
 *                   worst-first (text or --json), the exit code
 *   doctor_probe.c  asking a mirror over HTTP: /v2/, /readyz, the status,
 *                   a cached tag to resolve, a manifest HEAD along a route
 *   doctor_rt.c     each runtime's files read (nodeconf.h) and checked:
 *                   containerd, containers-registries.conf, dockerd
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_CLI_DOCTOR_H
#define PC_CLI_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config_cmd.h"

typedef enum { PC_DOC_OK = 0, PC_DOC_WARN = 1, PC_DOC_ERROR = 2 } pc_doc_level;

typedef struct {
    pc_doc_level level;
    char *runtime;  /* containerd, podman, docker, or cache */
    char *upstream; /* or NULL */
    char *file;     /* the file the finding is about, or NULL */
    char *message;
    char *fix;  /* what to do, or NULL (ok) */
    size_t seq; /* the order found in */
} pc_doc_finding;

/* What doctor learnt about one mirror endpoint (scheme://host:port). */
typedef struct {
    char base[PC_CFG_MAX_URL + 16]; /* scheme://hostport */
    char hostport[PC_CFG_MAX_URL];
    bool plain;
    bool insecure_tls; /* asked without verifying its certificate */
    long readyz;       /* HTTP status of GET /readyz, 0: no answer */
    char readyz_err[256];
    json_t *status; /* the /_pullcache/status document, or NULL */
    long status_http;
    /* the cached tag per upstream of the status, for the resolve check */
    json_t *tags; /* {"docker.io": {"repo": "library/x", "tag": "t", "digest": "sha256:..."}} */
} pc_doc_mirror;

#define PC_DOC_MAX_MIRRORS 32

typedef struct {
    /* options */
    pc_cfg_mirror cache; /* --cache */
    bool have_cache;
    const char *ca_file;
    const char *root; /* --root DIR, "" for none */
    char containerd_config[4096], hosts_dir[4096], registries_conf[4096], registries_d[4096],
        docker_json[4096];
    bool hosts_dir_given, containerd_given, registries_given, registries_d_given, docker_given;
    char ups[PC_CFG_MAX_UPSTREAMS][PC_CFG_MAX_NAME];
    size_t nups;
    json_t *images; /* --image: {"upstream": {"repo", "tag"}} */
    /* state */
    pc_doc_mirror mirrors[PC_DOC_MAX_MIRRORS];
    size_t nmirrors;
    pc_doc_finding *f;
    size_t nf, capf;
    size_t runtimes_found;
    bool oom;
} pc_doc;

/* ---- doctor.c ---- */

/* Add a finding (strings copied; fix may be NULL; fmt makes the message).
 * Out of memory sets d->oom. */
void pc_doc_add(pc_doc *d, pc_doc_level level, const char *runtime, const char *upstream,
                const char *file, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* The cache URL to name in fixes: --cache, else the first mirror found that
 * is a pullcache, else a placeholder. */
const char *pc_doc_cache_url(const pc_doc *d);

/* ---- doctor_probe.c ---- */

typedef struct {
    long status;      /* 0: no HTTP answer */
    int curl_code;    /* CURLcode */
    bool tls;         /* the failure was in TLS */
    bool refused;     /* connection refused */
    char error[256];  /* what failed, for a message */
    char digest[160]; /* Docker-Content-Digest */
    bool registry;    /* Docker-Distribution-API-Version: registry/2.0 */
    char *body;
    size_t len;
} pc_doc_http;

/* One request (GET or HEAD; manifest media types accepted), 2 s to
 * connect, 10 s in all, TLS verified unless insecure (with --ca-file).
 * 0 (r filled, r->status 0 when no HTTP answer came), or -1 out of memory.
 * pc_doc_http_clear frees the body. */
int pc_doc_request(const pc_doc *d, const char *method, const char *url, bool insecure,
                   pc_doc_http *r);
void pc_doc_http_clear(pc_doc_http *r);

/* The endpoint of scheme://hostport, probed on first use (readyz, status,
 * cached tags); NULL when out of memory or too many. */
pc_doc_mirror *pc_doc_mirror_get(pc_doc *d, bool plain, const char *hostport, bool insecure_tls);

/* Whether hostport (of a URL with the scheme plain or not) is --cache's. */
bool pc_doc_is_cache(const pc_doc *d, bool plain, const char *hostport);

/* How a runtime names the upstream to the mirror. */
typedef enum {
    PC_DOC_ROUTE_NS,   /* /v2/<repo>?ns=<upstream> (containerd) */
    PC_DOC_ROUTE_PATH, /* /v2/<upstream>/<repo> (containers-registries.conf) */
    PC_DOC_ROUTE_BARE, /* /v2/<repo>, the server's default upstream (docker) */
} pc_doc_route;

/* What a route check found, best first. */
typedef enum {
    PC_DOC_RT_OK,
    PC_DOC_RT_NOT_READY,     /* a pullcache, /readyz 503 (warning) */
    PC_DOC_RT_NOT_PULLCACHE, /* a registry, but no pullcache /readyz (warning) */
    PC_DOC_RT_AUTH,          /* the tag's HEAD needs credentials (warning) */
    PC_DOC_RT_NOT_CACHE,     /* another host:port than --cache */
    PC_DOC_RT_UNREACHABLE,   /* no answer (refused, timeout, name) */
    PC_DOC_RT_TLS_PLAIN,     /* https:// to a server that speaks plain HTTP */
    PC_DOC_RT_TLS,           /* another TLS failure */
    PC_DOC_RT_NOT_REGISTRY,  /* GET <api_root>/ is not a registry's answer */
    PC_DOC_RT_NOT_MIRRORED,  /* the cache does not mirror the upstream */
    PC_DOC_RT_BARE_OTHER,    /* bare paths are not the upstream's there */
    PC_DOC_RT_TAG_MISSING,   /* the HEAD of a tag the cache holds got 404 */
    PC_DOC_RT_TAG_OTHER,     /* ... another digest, or another failure */
} pc_doc_rt;

/* Check that requests for upstream up, sent to api_root
 * (scheme://host[:port][/path], the root the runtime puts /<repo>/manifests/
 * under) the way route says, reach the cache's mirror of up: the API
 * answers, the server is a ready pullcache that mirrors up there, and a tag
 * it holds for up resolves with a manifest HEAD to the digest it holds (no
 * pull spent: a cached tag is answered from the store, or revalidated with
 * an upstream HEAD, which Docker Hub does not count). What was found (or,
 * for OK, what was checked) is written to msg. */
pc_doc_rt pc_doc_check_route(pc_doc *d, const char *up, const char *api_root, bool insecure,
                             pc_doc_route route, char *msg, size_t msgsize);

/* The level of a result; the server-side fix for it (malloc'd), or NULL
 * when the fix is in the node's file (the caller's). */
pc_doc_level pc_doc_rt_level(pc_doc_rt rt);
char *pc_doc_rt_server_fix(const pc_doc *d, pc_doc_rt rt, const char *up);

/* The upstreams doctor expects routed: --upstream, else those of the
 * cache's status, else docker.io. names: PC_CFG_MAX_UPSTREAMS entries. */
size_t pc_doc_expected(pc_doc *d, const char **names);

void pc_doc_mirrors_free(pc_doc *d);

/* ---- doctor_rt.c ---- */

void pc_doc_containerd(pc_doc *d);
void pc_doc_registries(pc_doc *d);
void pc_doc_docker(pc_doc *d);

#endif
