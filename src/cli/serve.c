/*
 * serve.c - `pullcache serve`: load the configuration, open storage, run
 * the HTTP server until SIGINT/SIGTERM.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "mirror_evict.h"
#include "limiter.h"
#include "log.h"
#include "mirror.h"
#include "registry.h"
#include "server.h"

const char pc_cli_serve_usage[] =
    "usage: pullcache serve [--config FILE] [--listen ADDR:PORT] [--data DIR]\n"
    "                       [--log-format text|json] [--log-file FILE]\n"
    "                       [--timeout SECONDS] [--threads N]\n"
    "                       [--upstream NAME=URL]... [--default-upstream NAME|none]\n"
    "                       [--local-prefix PREFIX]...\n"
    "                       [--limit-anonymous PULLS/SECONDS]\n"
    "                       [--limit-authenticated PULLS/SECONDS]\n"
    "                       [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]\n"
    "                        [--tls-client-auth none|verify_if_given|require]]\n"
    "                       [--htpasswd FILE] [--admin USER|@GROUP]... [--ephemeral]\n"
    "                       [--advertise URL]\n"
    "       pullcache serve --check-config [--config FILE] [flags]\n"
    "\n"
    "Run the registry: an OCI Distribution v1.1 registry for private images and a\n"
    "pull-through cache for upstream registries (/v2/<upstream>/<repo>/..., containerd's\n"
    "?ns=<upstream>, or bare paths for the default upstream).\n"
    "Defaults are embedded; a YAML config file overrides them, flags override both.\n"
    "\n"
    "  -c, --config FILE      YAML configuration (see docs/CONFIG.md)\n"
    "  -l, --listen ADDR:PORT address to listen on (default 127.0.0.1:5000)\n"
    "  -d, --data DIR         data directory: blobs and meta.db (default ./data)\n"
    "      --log-format FMT   text (default) or json, one line per request\n"
    "      --log-file FILE    append the log to FILE instead of stderr (log.file);\n"
    "                         SIGUSR1 opens it again (logrotate's postrotate)\n"
    "      --timeout SECONDS  close idle connections after this long (default 60)\n"
    "      --threads N        worker threads (default: number of CPUs)\n"
    "      --upstream NAME=URL  mirror the registry at URL as NAME (repeatable), e.g.\n"
    "                         docker.io=https://registry-1.docker.io (the default when\n"
    "                         no upstream is configured)\n"
    "      --default-upstream NAME|none  none (the default): bare /v2/<name> paths are\n"
    "                         this private registry; NAME: they are upstream NAME's\n"
    "                         read-only mirror (what Docker's registry-mirrors needs),\n"
    "                         except under --local-prefix. Upstreams are always reached\n"
    "                         as /v2/NAME/<repo> and with containerd's ?ns=NAME\n"
    "      --local-prefix P   with a default upstream, bare names under P stay private\n"
    "                         and pushable (repeatable; cache.local_prefixes)\n"
    "      --limit-anonymous PULLS/SECONDS  turn on pull limits for our own clients:\n"
    "                         manifest GETs per window per client IP (IPv6: per /64),\n"
    "                         e.g. 100/21600 (limits.anonymous in the config file)\n"
    "      --limit-authenticated PULLS/SECONDS  the same per account (limits.authenticated)\n"
    "      --tls-cert FILE    serve HTTPS (TLS 1.2+) with this PEM certificate chain\n"
    "      --tls-key FILE     and its PEM private key (http.tls.cert/key); SIGHUP\n"
    "                         re-reads both (a bad new pair keeps the old one)\n"
    "      --tls-client-ca FILE  verify client certificates against these CAs (mTLS)\n"
    "      --tls-client-auth MODE  none, verify_if_given or require (the default with\n"
    "                         a client CA): require refuses the handshake without a\n"
    "                         valid client certificate\n"
    "      --htpasswd FILE    users (bcrypt htpasswd, `htpasswd -B`): turns on authentication\n"
    "                         and access control (auth.htpasswd; see docs/CONFIG.md); SIGHUP\n"
    "                         re-reads it. Without users, anyone who reaches the port may push\n"
    "      --admin USER|@GROUP  may read /metrics and /_pullcache/status (auth.admins;\n"
    "                         repeatable)\n"
    "      --ephemeral        keep blobs and metadata in memory only (storage.blobs and\n"
    "                         storage.meta driver mem): EVERYTHING IS LOST AT EXIT. Only\n"
    "                         fetch spools (DIR/tmp) and DIR/serve.lock touch --data\n"
    "      --advertise URL    this replica's URL as other replicas on the same stores\n"
    "                         reach it (cluster.advertise): they stream a blob it is\n"
    "                         fetching from it instead of fetching it again\n"
    "      --check-config     validate the configuration and exit (0 when valid)\n"
    "  -h, --help             this help\n"
    "\n"
    "exit codes:\n"
    "  0  stopped by SIGTERM or SIGINT after draining; --check-config: valid\n"
    "  1  the configuration is invalid, the data directory or meta store cannot be\n"
    "     opened, or the address cannot be listened on (the message says which)\n"
    "  2  usage: a bad flag or argument\n";

enum {
    OPT_LOG_FORMAT = 256,
    OPT_TIMEOUT,
    OPT_THREADS,
    OPT_CHECK,
    OPT_UPSTREAM,
    OPT_DEFAULT_UPSTREAM,
    OPT_LIMIT_ANONYMOUS,
    OPT_LIMIT_AUTHENTICATED,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CLIENT_CA,
    OPT_TLS_CLIENT_AUTH,
    OPT_HTPASSWD,
    OPT_LOCAL_PREFIX,
    OPT_ADMIN,
    OPT_EPHEMERAL,
    OPT_ADVERTISE,
    OPT_LOG_FILE
};

#define MAX_FLAG_UPSTREAMS 64

static int parse_uint(const char *flag, const char *s, unsigned max, unsigned *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "pullcache serve: %s wants a number up to %u, not '%s'\n", flag, max, s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* The client pull limiter of cfg's limits, its counts kept in reg's meta
 * store and written about every second. 0 or -1 (message printed). */
static int start_limiter(pc_limiter **out, const pc_config *cfg, pc_registry *reg)
{
    const pc_config_limits *lc = cfg->limits;
    pc_limiter_opts o = {
        .anonymous = {lc->anonymous.pulls, lc->anonymous.window},
        .authenticated = {lc->authenticated.pulls, lc->authenticated.window},
        .store = reg,
        .flush_every_ms = 1000,
    };
    /* replicas (cluster.advertise, or a meta store that is a server)
     * count together in the store; one process counts in memory */
    pc_store_opts so;
    pc_config_store_opts(cfg, &so);
    o.shared = (cfg->cluster && cfg->cluster->advertise) ||
               strcmp(pc_store_meta_name(&so), "postgres") == 0;
    if (pc_limiter_new(out, &o)) {
        fprintf(stderr, "pullcache serve: pull limits: %s\n", pc_error_last());
        return -1;
    }
    if (pc_config_auth_enabled(cfg))
        pc_log(PC_LOG_INFO, "pull limits: %u per %us per client address, %u per %us per account",
               lc->anonymous.pulls, lc->anonymous.window, lc->authenticated.pulls,
               lc->authenticated.window);
    else /* no users: every client is counted by its address */
        pc_log(PC_LOG_INFO, "pull limits: %u per %us per client address", lc->anonymous.pulls,
               lc->anonymous.window);
    if (o.shared)
        pc_log(PC_LOG_INFO, "pull limits: counted in the %s meta store, with every replica on it",
               pc_store_meta_name(&so));
    return 0;
}

/* --tls-cert, --tls-key, --tls-client-ca, --tls-client-auth (f[0..3], NULL
 * when not given) over http.tls. 0 or -1 (message printed). */
static int set_tls_flags(pc_config *cfg, const char *f[4])
{
    if (!f[0] && !f[1] && !f[2] && !f[3])
        return 0;
    if (!cfg->http->tls && !(cfg->http->tls = calloc(1, sizeof(*cfg->http->tls))))
        goto oom;
    pc_config_tls *t = cfg->http->tls;
    char **fields[4] = {&t->cert, &t->key, &t->client_ca, &t->client_auth};
    for (int i = 0; i < 4; i++)
        if (f[i] && pc_config_set_str(fields[i], f[i]))
            goto oom;
    return 0;
oom:
    fprintf(stderr, "pullcache serve: out of memory\n");
    return -1;
}

/* --htpasswd over auth.htpasswd. 0 or -1 (message printed). */
static int set_htpasswd(pc_config *cfg, const char *path)
{
    if (!path)
        return 0;
    if ((!cfg->auth && !(cfg->auth = calloc(1, sizeof(*cfg->auth)))) ||
        pc_config_set_str(&cfg->auth->htpasswd, path)) {
        fprintf(stderr, "pullcache serve: out of memory\n");
        return -1;
    }
    return 0;
}

/* --admin USER (repeatable): auth.admins without a config file. */
static int add_admins(pc_config *cfg, const char **admins, int n)
{
    if (n == 0)
        return 0;
    if (!cfg->auth && !(cfg->auth = calloc(1, sizeof(*cfg->auth))))
        goto oom;
    pc_config_auth *a = cfg->auth;
    char **list = realloc(a->admins, (a->admins_count + (unsigned)n) * sizeof(*list));
    if (!list)
        goto oom;
    a->admins = list;
    for (int i = 0; i < n; i++) {
        if (!(list[a->admins_count] = strdup(admins[i])))
            goto oom;
        a->admins_count++;
    }
    return 0;
oom:
    fprintf(stderr, "pullcache serve: out of memory\n");
    return -1;
}

/* --ephemeral: both stores in memory, over storage.blobs and storage.meta.
 * 0 or -1 (message printed). */
static int set_ephemeral(pc_config *cfg)
{
    pc_config_meta **meta = &cfg->storage->meta;
    if (pc_config_blobs_prepare(&cfg->storage->blobs, "mem") ||
        pc_config_set_str(&cfg->storage->blobs->driver, "mem") ||
        (!*meta && !(*meta = calloc(1, sizeof(**meta)))) ||
        pc_config_set_str(&(*meta)->driver, "mem")) {
        fprintf(stderr, "pullcache serve: out of memory\n");
        return -1;
    }
    return 0;
}

/* Whether the listen address is a loopback one. */
static bool listen_loopback(const char *listen)
{
    char host[256];
    unsigned port;
    if (pc_config_parse_listen(listen, host, sizeof(host), &port))
        return false;
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* The start-up line about authentication. */
static void say_auth(const pc_config *cfg, pc_server *srv)
{
    if (pc_server_auth_enabled(srv))
        pc_log(PC_LOG_INFO, "authentication is on: pushes need a user; anonymous clients may "
                            "pull mirrored content unless auth.access says otherwise");
    else if (listen_loopback(cfg->http->listen))
        pc_log(PC_LOG_INFO, "no users configured (--htpasswd, auth.htpasswd): no authentication; "
                            "listening on loopback only");
    else
        pc_log(PC_LOG_WARN,
               "no users configured (--htpasswd, auth.htpasswd) and listening on %s: ANYONE who "
               "can reach this address can push, overwrite and delete images",
               cfg->http->listen);
}

/* SIGHUP: the users and access rules again (the config file's auth
 * section, --htpasswd over it). A bad file keeps the old ones. */
static void reload_auth(pc_server *srv, const char *config_path, const char *htpasswd)
{
    if (!pc_server_auth_enabled(srv))
        return;
    pc_config *fresh = NULL;
    int rc = pc_config_load(&fresh, config_path);
    if (rc == 0 && set_htpasswd(fresh, htpasswd))
        rc = PC_ENOMEM;
    if (rc == 0)
        rc = pc_server_auth_reload(srv, fresh->auth);
    if (rc)
        pc_log(PC_LOG_WARN, "SIGHUP: users and access rules not reloaded, the old ones stay: %s",
               pc_error_last());
    pc_config_free(fresh);
}

/* Keep one value of a repeatable flag (at most MAX_FLAG_UPSTREAMS). */
static int flag_push(const char **list, int *n, const char *flag, const char *value)
{
    if (*n == MAX_FLAG_UPSTREAMS) {
        fprintf(stderr, "pullcache serve: at most %d --%s flags\n", MAX_FLAG_UPSTREAMS, flag);
        return -1;
    }
    list[(*n)++] = value;
    return 0;
}

/* Which bare names are private, and a warning for stored repositories that
 * a default upstream now hides (pushed before it was configured). */
typedef struct {
    pc_mirror *mirror;
    unsigned hidden;
    char first[PC_NAME_MAX + 1];
} hidden_scan;

static int count_hidden(const char *repo, void *ctx)
{
    hidden_scan *h = ctx;
    pc_mirror_target t;
    if (pc_mirror_route(h->mirror, repo, NULL, &t) == 0 && t.by_default && h->hidden++ == 0)
        snprintf(h->first, sizeof(h->first), "%s", repo);
    return 0;
}

static void say_bare_paths(const pc_config *cfg, pc_registry *reg, pc_mirror *mirror)
{
    if (strcmp(cfg->cache->default_upstream, "none") == 0) {
        pc_log(PC_LOG_INFO, "bare /v2/<repo> paths are this private registry");
        return;
    }
    pc_log(PC_LOG_INFO,
           "bare /v2/<repo> paths are %s's read-only mirror except under %u local prefix(es)",
           cfg->cache->default_upstream, cfg->cache->local_prefixes_count);
    hidden_scan h = {.mirror = mirror};
    if (pc_registry_repo_each(reg, count_hidden, &h) == 0 && h.hidden)
        pc_log(PC_LOG_WARN,
               "default_upstream %s hides %u stored private repositor%s outside "
               "cache.local_prefixes (e.g. %s): add their prefix to cache.local_prefixes to "
               "serve them",
               cfg->cache->default_upstream, h.hidden, h.hidden == 1 ? "y" : "ies", h.first);
}

/* serve's upkeep: rounds this far apart. */
#define UPKEEP_EVERY_S 300

/* One round: drop abandoned uploads, keep the cache under its size cap. */
static void upkeep(const pc_config *cfg, pc_registry *reg, pc_mirror *mirror)
{
    int n = pc_registry_sweep_uploads(reg, (long)cfg->storage->upload_ttl);
    if (n > 0)
        pc_log(PC_LOG_INFO, "dropped %d abandoned upload session(s)", n);
    pc_evict_stats ev;
    if (pc_mirror_evict(mirror, cfg->cache->max_size, &ev)) /* max_size 0: only counts */
        pc_log(PC_LOG_WARN, "cache eviction failed: %s", pc_error_last());
    else if (ev.freed)
        pc_log(PC_LOG_INFO, "evicted %lu mirrored blob(s), %llu bytes (cap %llu)", ev.freed,
               (unsigned long long)ev.freed_bytes, (unsigned long long)cfg->cache->max_size);
}

/* --advertise URL: cluster.advertise. */
static int set_advertise(pc_config *cfg, const char *url)
{
    if (!cfg->cluster && !(cfg->cluster = calloc(1, sizeof(*cfg->cluster))))
        return PC_ENOMEM;
    return pc_config_set_str(&cfg->cluster->advertise, url);
}

int pc_cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"default-upstream", required_argument, NULL, OPT_DEFAULT_UPSTREAM},
        {"limit-anonymous", required_argument, NULL, OPT_LIMIT_ANONYMOUS},
        {"limit-authenticated", required_argument, NULL, OPT_LIMIT_AUTHENTICATED},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
        {"tls-client-auth", required_argument, NULL, OPT_TLS_CLIENT_AUTH},
        {"htpasswd", required_argument, NULL, OPT_HTPASSWD},
        {"local-prefix", required_argument, NULL, OPT_LOCAL_PREFIX},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"ephemeral", no_argument, NULL, OPT_EPHEMERAL},
        {"advertise", required_argument, NULL, OPT_ADVERTISE},
        {"log-file", required_argument, NULL, OPT_LOG_FILE},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *listen = NULL, *data = NULL, *log_format = NULL;
    const char *log_file = NULL;
    const char *upstreams[MAX_FLAG_UPSTREAMS], *default_upstream = NULL;
    const char *limit_anon = NULL, *limit_auth = NULL, *htpasswd = NULL, *advertise = NULL;
    const char *tls_flags[4] = {NULL, NULL, NULL, NULL}; /* cert, key, client_ca, client_auth */
    const char *prefixes[MAX_FLAG_UPSTREAMS], *admins[MAX_FLAG_UPSTREAMS];
    int nupstreams = 0, nprefixes = 0, nadmins = 0;
    unsigned timeout = 0, threads = 0;
    bool have_timeout = false, have_threads = false, check = false, ephemeral = false;
    pc_config *cfg = NULL;
    pc_registry *reg = NULL;
    pc_server *srv = NULL;
    pc_mirror *mirror = NULL;
    pc_limiter *limiter = NULL;
    int rc = 1, c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:d:", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case OPT_LOG_FORMAT:
            log_format = optarg;
            break;
        case OPT_LOG_FILE:
            log_file = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_uint("--timeout", optarg, 86400, &timeout))
                return 2;
            have_timeout = true;
            break;
        case OPT_THREADS:
            if (parse_uint("--threads", optarg, 256, &threads))
                return 2;
            have_threads = true;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_UPSTREAM:
            if (flag_push(upstreams, &nupstreams, "upstream", optarg))
                return 2;
            break;
        case OPT_DEFAULT_UPSTREAM:
            default_upstream = optarg;
            break;
        case OPT_LIMIT_ANONYMOUS:
            limit_anon = optarg;
            break;
        case OPT_LIMIT_AUTHENTICATED:
            limit_auth = optarg;
            break;
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
        case OPT_TLS_CLIENT_CA:
        case OPT_TLS_CLIENT_AUTH:
            tls_flags[c - OPT_TLS_CERT] = optarg;
            break;
        case OPT_HTPASSWD:
            htpasswd = optarg;
            break;
        case OPT_LOCAL_PREFIX:
            if (flag_push(prefixes, &nprefixes, "local-prefix", optarg))
                return 2;
            break;
        case OPT_ADMIN:
            if (flag_push(admins, &nadmins, "admin", optarg))
                return 2;
            break;
        case OPT_EPHEMERAL:
            ephemeral = true;
            break;
        case OPT_ADVERTISE:
            advertise = optarg;
            break;
        default:
            fprintf(stderr, "`pullcache serve --help` lists the options\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pullcache serve: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    if (pc_config_load(&cfg, config_path)) {
        fprintf(stderr, "pullcache serve: %s\n", pc_error_last());
        return 1;
    }
    if ((listen && pc_config_set_str(&cfg->http->listen, listen)) ||
        (data && pc_config_set_str(&cfg->storage->data, data)) ||
        (log_format && pc_config_set_str(&cfg->log->format, log_format)) ||
        (log_file && pc_config_set_str(&cfg->log->file, log_file))) {
        fprintf(stderr, "pullcache serve: out of memory\n");
        goto done;
    }
    for (int i = 0; i < nupstreams; i++)
        if (pc_config_add_upstream(cfg, upstreams[i])) {
            fprintf(stderr, "pullcache serve: %s\n", pc_error_last());
            goto done;
        }
    if (default_upstream && pc_config_set_str(&cfg->cache->default_upstream, default_upstream))
        goto done;
    for (int i = 0; i < nprefixes; i++)
        if (pc_config_add_local_prefix(cfg, prefixes[i]))
            goto done;
    if (set_tls_flags(cfg, tls_flags) || set_htpasswd(cfg, htpasswd) ||
        add_admins(cfg, admins, nadmins) || (ephemeral && set_ephemeral(cfg)) ||
        (advertise && set_advertise(cfg, advertise)))
        goto done;
    if (pc_config_finalize(cfg)) {
        fprintf(stderr, "pullcache serve: out of memory\n");
        goto done;
    }
    if (pc_config_cluster_secret_load(cfg)) {
        fprintf(stderr, "pullcache serve: %s\n", pc_error_last());
        goto done;
    }
    if ((limit_anon && pc_config_parse_limit(limit_anon, &cfg->limits->anonymous)) ||
        (limit_auth && pc_config_parse_limit(limit_auth, &cfg->limits->authenticated))) {
        fprintf(stderr, "pullcache serve: %s\n", pc_error_last());
        rc = 2;
        goto done;
    }
    if (limit_anon || limit_auth)
        cfg->limits->enabled = true;
    if (have_timeout)
        cfg->http->timeout = timeout;
    if (have_threads)
        cfg->http->threads = threads;
    if (pc_config_validate(cfg)) {
        fprintf(stderr, "pullcache serve: %s%s%s\n", config_path ? config_path : "",
                config_path ? ": " : "", pc_error_last());
        goto done;
    }
    if (check && pc_server_auth_check(cfg)) {
        fprintf(stderr, "pullcache serve: %s: %s\n", config_path, pc_error_last());
        goto done;
    }
    if (check && pc_server_tls_check(cfg)) {
        fprintf(stderr, "pullcache serve: %s: %s\n", config_path, pc_error_last());
        goto done;
    }
    if (check) {
        printf("%s: configuration is valid\n",
               config_path ? config_path : "the embedded defaults and flags");
        rc = 0;
        goto done;
    }
    if (cfg->log->file && pc_log_open(cfg->log->file)) {
        fprintf(stderr, "pullcache serve: %s (log.file, --log-file)\n", pc_error_last());
        goto done;
    }
    pc_log_setup(cfg->log->format, cfg->log->level);
    pc_log_access(cfg->log->access, cfg->log->access_sample);

    /* Signals are taken synchronously by this thread; workers never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char meta[4096];
    struct stat st;
    pc_store_opts so;
    pc_config_store_opts(cfg, &so);
    snprintf(meta, sizeof(meta), "%s/meta.db", cfg->storage->data);
    bool had_dir = stat(cfg->storage->data, &st) == 0, had_meta = stat(meta, &st) == 0;
    bool sqlite = strcmp(pc_store_meta_name(&so), "sqlite") == 0;
    if (pc_registry_open_opts(&reg, &so)) {
        fprintf(stderr, "pullcache serve: cannot open storage in %s: %s\n", cfg->storage->data,
                pc_error_last());
        goto done;
    }
    if (pc_registry_check_meta(reg)) {
        fprintf(stderr,
                "pullcache serve: refusing to start: %s.\n"
                "Stop every pullcache on %s, move meta.db (with meta.db-wal and meta.db-shm) "
                "aside, restore it from a backup or salvage it (sqlite3 meta.db.bad .recover | "
                "sqlite3 meta.db), then run `pullcache fsck --data %s --repair`.\n",
                pc_error_last(), cfg->storage->data, cfg->storage->data);
        goto done;
    }
    /* A crash's leftovers (monolithic uploads, fetch spools) go now, unless
     * another serve shares the directory: they may be its work. */
    if (pc_registry_claim(reg) == PC_EEXISTS)
        pc_log(PC_LOG_WARN, "another process holds %s/serve.lock: leaving its uploads alone",
               cfg->storage->data);
    int swept = pc_registry_sweep_start(reg, (long)cfg->storage->upload_ttl);
    if (swept > 0)
        pc_log(PC_LOG_INFO, "dropped %d upload(s) and spool file(s) an earlier run left", swept);
    if (pc_mirror_new(&mirror, cfg, reg)) {
        fprintf(stderr, "pullcache serve: %s\n", pc_error_last());
        goto done;
    }
    /* the status page's history: what the last hours were, kept across restarts */
    if (pc_mirror_history_start(mirror))
        pc_log(PC_LOG_WARN, "no status history: %s", pc_error_last());
    if (cfg->limits->enabled && start_limiter(&limiter, cfg, reg))
        goto done;
    if (pc_server_start(&srv, cfg, reg, mirror, limiter)) {
        fprintf(stderr, "pullcache serve: %s\n", pc_error_last());
        goto done;
    }
    /* ./data is relative to the working directory: say where it really is */
    char abs[4096];
    const char *where = realpath(cfg->storage->data, abs) ? abs : cfg->storage->data;
    bool mem_blobs = strcmp(pc_store_blobs_name(&so), "mem") == 0;
    bool mem_meta = strcmp(pc_store_meta_name(&so), "mem") == 0;
    pc_log(PC_LOG_INFO, "pullcache %s serving on %s (data %s%s)", PC_VERSION, cfg->http->listen,
           where,
           mem_blobs && mem_meta ? "; blobs and metadata in memory: lost at exit"
           : mem_blobs           ? "; blobs in memory: lost at exit"
           : mem_meta            ? "; metadata in memory: lost at exit"
                                 : "");
    if (!had_dir)
        pc_log(PC_LOG_INFO, "made a new data directory %s", where);
    else if (!had_meta && sqlite)
        pc_log(PC_LOG_WARN,
               "data directory %s had no meta.db: starting empty (is --data the directory an "
               "earlier serve used?)",
               where);
    say_auth(cfg, srv);
    for (unsigned i = 0; i < cfg->upstreams_count; i++)
        pc_log(PC_LOG_INFO,
               "mirroring %s from %s as /v2/%s/<repo> and ?ns=%s (tag_ttl %us, reserve %u)%s",
               cfg->upstreams[i].name, cfg->upstreams[i].url, cfg->upstreams[i].name,
               cfg->upstreams[i].name, cfg->upstreams[i].tag_ttl, cfg->upstreams[i].reserve,
               strcmp(cfg->upstreams[i].name, cfg->cache->default_upstream) == 0
                   ? ", and bare /v2/<repo> paths"
                   : "");
    say_bare_paths(cfg, reg, mirror);
    int leader = -1; /* unknown, 0 no, 1 yes: logged when it changes */
    for (;;) {
        /* Between signals, every few minutes: drop abandoned uploads, and
         * keep the cache under its size cap - on one replica of those
         * sharing the stores at a time, the holder of the upkeep lease
         * (taken again each round: renewed; free again 3 rounds after its
         * holder stopped). */
        struct timespec every = {UPKEEP_EVERY_S, 0};
        pc_meta_lease held;
        int lr = pc_registry_lease_take(reg, "leader:upkeep", pc_registry_node(reg),
                                        3 * UPKEEP_EVERY_S * 1000L, &held);
        if (leader < 0 || (lr == 0) != (leader == 1)) {
            if (lr == 0)
                pc_log(PC_LOG_INFO, "upkeep: this replica is the leader (upload sweeps, eviction)");
            else if (lr == PC_EEXISTS)
                pc_log(PC_LOG_INFO, "upkeep: left to the leader %s", held.owner);
            else
                pc_log(PC_LOG_WARN, "upkeep: the meta store cannot say who leads (%s); doing it",
                       pc_error_last());
            leader = lr == 0;
        }
        if (lr != PC_EEXISTS)
            upkeep(cfg, reg, mirror);
        if (pc_mirror_store_gauges(mirror))
            pc_log(PC_LOG_WARN, "counting the stored blobs failed: %s", pc_error_last());
        int sig = sigtimedwait(&set, NULL, &every);
        if (sig < 0)
            continue;
        if (sig == SIGUSR1) {
            int lr2 = pc_log_reopen();
            if (lr2 == 0)
                pc_log(PC_LOG_INFO, "SIGUSR1: reopened the log file %s", cfg->log->file);
            else if (lr2 == PC_ENOTFOUND)
                pc_log(PC_LOG_INFO, "SIGUSR1: logging to stderr, no file to reopen");
            else
                pc_log(PC_LOG_WARN, "SIGUSR1: %s; still writing to the old file", pc_error_last());
            continue;
        }
        if (sig == SIGHUP) {
            reload_auth(srv, config_path, htpasswd);
            int tr = pc_server_tls_reload(srv);
            if (tr == PC_ENOTFOUND) {
                if (!pc_server_auth_enabled(srv))
                    pc_log(PC_LOG_INFO, "SIGHUP: nothing to reload (no TLS, no users)");
            } else if (tr)
                pc_log(PC_LOG_WARN, "SIGHUP: TLS files not reloaded, the old ones stay: %s",
                       pc_error_last());
            continue;
        }
        pc_log(PC_LOG_INFO, "signal %d: shutting down", sig);
        break;
    }
    /* drained: the next replica need not wait for the lease to run out
     * (and migrate sees no serve on these stores any more) */
    pc_server_stop(srv);
    srv = NULL;
    if (leader == 1)
        pc_registry_lease_release(reg, "leader:upkeep", pc_registry_node(reg));
    rc = 0;
done:
    pc_server_stop(srv);
    pc_limiter_free(limiter); /* after the server: the last counts are written */
    pc_mirror_free(mirror);
    pc_registry_free(reg);
    pc_config_free(cfg);
    return rc;
}
