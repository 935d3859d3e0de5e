/*
 * config.h - the daemon's configuration: embedded defaults, a YAML file
 * (libcyaml, unknown keys refused), then command-line flags on top.
 *
 *   http:
 *     listen: 127.0.0.1:5000     # address:port
 *     timeout: 60                # idle connection timeout, seconds
 *     threads: 0                 # worker threads, 0 = number of CPUs
 *     workers: 32                # job pool for requests that wait on upstreams
 *                                #   (misses, revalidation, tag lists, referrers)
 *     max_connections: 1024      # open at once; at the cap a new one displaces
 *                                #   the one waiting longest for its request head
 *     max_connections_per_ip: 256  # open at once from one client address
 *     header_timeout: 10         # seconds to send a request's line + headers
 *     max_body_size: 10737418240 # bytes one request body or blob may have (10 GiB)
 *     external_url: https://reg.example  # how clients reach us (token realm);
 *                                #   default: the request's Host header
 *     tls:                       # HTTPS instead of HTTP (src/server/tls.h); SIGHUP
 *       cert: /etc/pullcache/tls.crt    #   re-reads the files (a bad pair keeps the old)
 *       key: /etc/pullcache/tls.key     # PEM, unencrypted, must match cert
 *       client_ca: /etc/pullcache/nodes-ca.crt  # optional: CAs of client certificates
 *       client_auth: require     # none | verify_if_given | require (the default
 *                                #   with a client_ca; none without)
 *   storage:
 *     data: ./data               # blobs + meta.db
 *     upload_ttl: 86400          # seconds an idle upload session is kept
 *     blobs: {driver: fs}        # fs (DATA/blobs) | mem (lost at exit) | s3; store/factory.h
 *     meta: {driver: sqlite}     # sqlite (DATA/meta.db) | mem (lost at exit) | postgres
 *                                #   (+ conninfo_file, conninfo_env, pool: store/meta_pg.h)
 *   log:
 *     format: text               # text | json
 *     level: info                # error | warn | info | debug
 *   upstreams:                   # registries mirrored by the pull-through cache
 *     - name: docker.io          # [a-z0-9]+([._-][a-z0-9]+)*; /v2/<name>/... and ?ns=<name>
 *       url: https://registry-1.docker.io
 *       username: bob            # optional; the secret comes from a file or env only:
 *       password_file: /run/secrets/hub   # or password_env: HUB_PASSWORD
 *       token_file: ...          # or token_env: a static bearer token instead
 *       tag_ttl: 300             # seconds a tag is served without asking upstream
 *       reserve: 0               # pulls left below which cached tags are served
 *                                #   without revalidation; 0 = never hold back
 *       connect_timeout: 5       # seconds
 *       read_timeout: 30         # seconds without a byte before giving up
 *       max_connections: 16
 *       ca_file: /path/ca.pem
 *       insecure: false          # skip TLS verification (tests)
 *       offline: false           # true: serve only what is cached, never ask
 *       immutable_tags: ['^v?[0-9]+\.[0-9]+\.[0-9]+$']  # tags never revalidated
 *   cache:
 *     default_upstream: none     # none: bare /v2/<name> paths are the private
 *                                #   registry; an upstream's name: bare paths are
 *                                #   its read-only mirror (Docker's registry-mirrors)
 *     local_prefixes: [team]     # with a default upstream: bare names under these
 *                                #   stay private (pushable)
 *     max_size: 0                # bytes of mirrored content kept; 0 = no cap
 *     fetch_workers: 32          # upstream blob fetches running at once (a pool
 *                                #   of its own: requests wait for fetches)
 *     max_fetch_size: 17179869184  # bytes one upstream blob fetch may take when no
 *                                #   cached manifest declares the blob's size
 *   limits:                      # Docker-Hub-style pull limits for our own clients
 *     enabled: false             # true: manifest GETs are counted, ratelimit-* headers
 *     anonymous: {pulls: 100, window: 21600}     # per client IP (IPv6: per /64)
 *     authenticated: {pulls: 200, window: 21600} # per account
 *   auth:                        # users and access control (docs/CONFIG.md "Authentication")
 *     htpasswd: /etc/pullcache/htpasswd  # bcrypt only (htpasswd -B); --htpasswd; SIGHUP
 *     challenge: bearer          # bearer (our /token service) | basic
 *     groups: [{name: devs, members: [alice, bob]}]
 *     admins: [root, "@ops"]     # /_pullcache/status, /metrics
 *     catalog: [authenticated]   # who may list /v2/_catalog (filtered per user)
 *     access:                    # rules by repository prefix, the longest decides
 *       - {prefix: team, pull: [authenticated], push: ["@devs"], delete: [alice]}
 *       - {prefix: public, pull: [anonymous], readonly: true}
 *     token:                     # our token service (GET /token)
 *       realm: https://reg.example/token  # default: http.external_url + /token,
 *                                #   else http(s)://<Host>/token
 *       service: pullcache       # aud of our tokens
 *       issuer: pullcache        # iss of our tokens
 *       lifetime: 300            # seconds
 *       key: /etc/pullcache/token.key     # EC P-256 PEM; default: DATA/token.key (made once)
 *     trust:                     # tokens of an external issuer
 *       issuer: auth.example
 *       audience: registry.example
 *       key: /etc/pullcache/issuer.pem    # its public key or certificate
 *
 * With no upstreams configured, docker.io -> https://registry-1.docker.io
 * is the one upstream (reached as /v2/docker.io/... and ?ns=docker.io).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include "pc.h"
#include "store/factory.h"

/* auth (issue #5; src/server/auth_*.c). Users configured (htpasswd or trust)
 * turn on access control; without them there is none. */
typedef struct {
    char *name;
    char **members;
    unsigned members_count;
} pc_config_group;

typedef struct {
    char *prefix; /* "" = every repository */
    bool readonly;
    char **pull;
    unsigned pull_count;
    char **push;
    unsigned push_count;
    char **del; /* "delete" */
    unsigned del_count;
} pc_config_rule;

typedef struct {
    char *realm;       /* NULL: http.external_url + /token, else http(s)://<Host>/token */
    char *service;     /* NULL: "pullcache" */
    char *issuer;      /* NULL: "pullcache" */
    unsigned lifetime; /* seconds; 0 = 300 */
    char *key;         /* PEM EC P-256 private key; NULL = generated in memory */
} pc_config_token;

typedef struct {
    char *issuer;
    char *audience;
    char *key; /* PEM public key or certificate of the external issuer */
} pc_config_trust;

typedef struct {
    char *htpasswd;
    char *challenge; /* bearer (default) | basic */
    pc_config_group *groups;
    unsigned groups_count;
    char **admins;
    unsigned admins_count;
    char **catalog; /* NULL: [authenticated] */
    unsigned catalog_count;
    pc_config_rule *access;
    unsigned access_count;
    pc_config_token *token;
    pc_config_trust *trust;
} pc_config_auth;

/* http.tls; NULL (or no cert) = plain HTTP. */
typedef struct {
    char *cert;
    char *key;
    char *client_ca;
    char *client_auth; /* NULL: require with a client_ca, none without */
} pc_config_tls;

typedef struct {
    char *listen;
    unsigned timeout;
    unsigned threads;
    unsigned workers; /* request job pool (jobpool.h); 0 = the default */
    unsigned max_connections;
    unsigned max_connections_per_ip; /* 0 = the default */
    unsigned header_timeout;         /* seconds; 0 = the default */
    uint64_t max_body_size;          /* bytes; 0 = the default */
    char *external_url;              /* NULL: clients' Host header names us */
    pc_config_tls *tls;
} pc_config_http;

/* http defaults: header deadline, per-address cap, body cap (10 GiB). */
#define PC_CONFIG_HEADER_TIMEOUT_DEFAULT 10u
#define PC_CONFIG_PER_IP_DEFAULT 256u
#define PC_CONFIG_MAX_BODY_DEFAULT ((uint64_t)10 << 30)

/* storage.meta: the driver, and the postgres driver's connection (where
 * its string comes from) and pool size (store/meta_pg.h). */
typedef struct {
    char *driver;
    char *conninfo_file; /* NULL: conninfo_env */
    char *conninfo_env;  /* NULL: PULLCACHE_PG_CONNINFO, else libpq's PG* variables */
    unsigned pool;       /* 0: PC_PG_POOL_DEFAULT */
    pc_pg_opts pg;       /* the three above, as the store takes them (finalize) */
} pc_config_meta;

/* storage.blobs: the driver and the s3 driver's settings
 * (config_blobs.c). */
typedef struct {
    char *driver;
    char *endpoint, *region, *bucket, *prefix, *credentials_file;
    bool path_style, redirect;
    unsigned redirect_ttl;
    pc_blob_s3_opts s3; /* the above for the factory (pc_config_blobs_prepare) */
} pc_config_blobs;

typedef struct {
    char *data;
    unsigned upload_ttl;
    pc_config_blobs *blobs; /* driver "fs" when not configured */
    pc_config_meta *meta;   /* driver "sqlite" when not configured */
} pc_config_storage;

typedef struct {
    char *format;
    char *level;
    char *file;             /* NULL: stderr */
    char *access;           /* request lines: all (default), errors, off */
    unsigned access_sample; /* one in N request lines below 400 (0, 1: all) */
} pc_config_log;

/* cluster: replicas sharing one set of stores (docs/SCALE-OUT.md). */
typedef struct {
    /* How the other replicas reach this one ("http://10.0.0.5:5000"): a
     * replica asked for a blob this one fetches streams it from here
     * instead of fetching it upstream again. NULL: they wait for it to be
     * published instead. */
    char *advertise;
    /* A file holding a secret every replica of the deployment shares: a
     * replica presents it (Authorization: Bearer) when it streams a blob
     * from another, which lets it read blobs with authentication on.
     * NULL: none (peer reads then need no authentication to be on). */
    char *secret_file;
    char *secret; /* its contents, read by pc_config_cluster_secret_load; not YAML */
} pc_config_cluster;

typedef struct {
    char *name;
    char *url;
    char *username;
    char *password_file;
    char *password_env;
    char *token_file;
    char *token_env;
    unsigned tag_ttl;
    unsigned reserve; /* 0 = never hold back (budget.h) */
    unsigned connect_timeout;
    unsigned read_timeout;
    unsigned max_connections;
    char *ca_file;
    bool insecure;
    bool offline;          /* serve only what is cached; never contact the upstream */
    char **immutable_tags; /* POSIX extended regexes: matching tags are never revalidated */
    unsigned immutable_tags_count;
} pc_config_upstream;

typedef struct {
    char *default_upstream; /* "none": bare names are the private registry */
    uint64_t max_size;
    uint64_t max_fetch_size; /* bytes a blob fetch of unknown size may take (0 = the default) */
    unsigned fetch_workers;  /* blob fetch job pool (jobpool.h); 0 = the default */
    char **local_prefixes;   /* under a default upstream: bare names kept private */
    unsigned local_prefixes_count;
} pc_config_cache;

/* http.workers and cache.fetch_workers when not set, and their most. */
#define PC_CONFIG_WORKERS_DEFAULT 32u
#define PC_CONFIG_WORKERS_MAX 1024u

/* cache.max_fetch_size when not set: 16 GiB. */
#define PC_CONFIG_MAX_FETCH_DEFAULT ((uint64_t)16 << 30)

#define PC_CONFIG_LIMIT_WINDOW_MAX 2592000u

/* A pull budget: pulls per window seconds (0 = the default). */
typedef struct {
    unsigned pulls;
    unsigned window;
} pc_config_limit;

typedef struct {
    bool enabled;
    pc_config_limit anonymous;
    pc_config_limit authenticated;
} pc_config_limits;

typedef struct {
    pc_config_http *http;
    pc_config_storage *storage;
    pc_config_log *log;
    pc_config_upstream *upstreams;
    unsigned upstreams_count;
    pc_config_cache *cache;
    pc_config_limits *limits;
    pc_config_auth *auth;       /* NULL: no users, no access control */
    pc_config_cluster *cluster; /* NULL: not configured */
} pc_config;

/* Read cluster.secret_file into cluster.secret (first line, at least 16
 * bytes). 0 (also without one), PC_EINVAL or PC_ENOTFOUND with a message. */
int pc_config_cluster_secret_load(pc_config *cfg);

/* Whether cfg configures users (auth.htpasswd or auth.trust): access
 * control is on. */
bool pc_config_auth_enabled(const pc_config *cfg);

/* Add a bare repository prefix kept private under a default upstream (the
 * --local-prefix flag; checked by pc_config_finalize). 0 or PC_ENOMEM. */
int pc_config_add_local_prefix(pc_config *cfg, const char *prefix);

/* Add or replace (same name) an upstream given as "NAME=URL" (the
 * --upstream flag). 0 or PC_EINVAL. */
int pc_config_add_upstream(pc_config *cfg, const char *spec);

/* Parse "PULLS/WINDOW" or "PULLS" (the window stays) into *out (the
 * --limit-anonymous and --limit-authenticated flags). 0 or PC_EINVAL. */
int pc_config_parse_limit(const char *spec, pc_config_limit *out);

/* Whether s is an acceptable upstream name. */
bool pc_config_upstream_name_ok(const char *s);

/* Load the configuration: defaults, overlaid with the YAML file at path
 * when path is not NULL. *out is the caller's (pc_config_free). Returns 0,
 * or PC_EINVAL with a message naming the file and the problem. */
int pc_config_load(pc_config **out, const char *path);

/* After flags: the default upstream (docker.io) when none is configured,
 * per-upstream defaults, cache.default_upstream. 0 or PC_ENOMEM. */
int pc_config_finalize(pc_config *cfg);

/* Check the values (listen address form, log format...). 0 or PC_EINVAL. */
int pc_config_validate(const pc_config *cfg);

/* The storage cfg configures (storage.data, storage.blobs.driver,
 * storage.meta.driver), as the store factory takes it; the strings stay
 * cfg's. */
void pc_config_store_opts(const pc_config *cfg, pc_store_opts *o);

/* storage.blobs (config_blobs.c): the schema; create *b when missing with
 * default_driver and fill the defaults and (*b)->s3; check the settings
 * against the driver (0 or PC_EINVAL); free. */
#include <cyaml/cyaml.h>
extern const cyaml_schema_field_t pc_config_blobs_fields[];
int pc_config_blobs_prepare(pc_config_blobs **b, const char *default_driver);
int pc_config_blobs_check(const pc_config_blobs *b);
void pc_config_blobs_free(pc_config_blobs *b);

/* Replace a string field's value (flags over the file). */
int pc_config_set_str(char **field, const char *value);

/* Split "host:port" / "[v6]:port" into host (size bytes) and port. */
int pc_config_parse_listen(const char *listen, char *host, size_t size, unsigned *port);

void pc_config_free(pc_config *cfg);

#endif
