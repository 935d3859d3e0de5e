/*
 * config_cmd.c - `pullcache config containerd|podman|cri-o|docker`: the
 * settings that point a node's container runtime at a pullcache mirror,
 * printed for a human (path headers as comments), written into a directory
 * (--output), or as JSON for scripts (--json). This file is the verb: its
 * options, the checks of --mirror and --upstream names, and the output; the
 * files themselves come from config_runtimes.c, and config_check.c asks the
 * mirror first whether it serves the upstreams (config_cmd.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"
#include "client.h"
#include "config_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char pc_cli_config_usage[] =
    "usage: pullcache config containerd|podman|cri-o|docker --mirror URL [--upstream NAME]...\n"
    "                        [--plain-http] [--ca-file FILE] [--no-check] [--force]\n"
    "                        [--output DIR [--watch SECONDS [--remove-on-exit]]] [--json]\n"
    "       pullcache config containerd --remove --output DIR [--upstream NAME]...\n"
    "\n"
    "Print the configuration that makes a node's container runtime pull through a\n"
    "pullcache mirror, falling back to the upstream registry when the mirror is down.\n"
    "It first asks the mirror (GET /_pullcache/status) which upstreams it serves and\n"
    "refuses settings for one it does not mirror; a mirror that cannot be asked (down,\n"
    "credentials needed, not a pullcache) is a warning.\n"
    "\n"
    "  containerd  a hosts.toml per upstream for /etc/containerd/certs.d/<upstream>/\n"
    "              (containerd appends ?ns=<upstream> to mirror requests; its CRI\n"
    "              config needs config_path = \"/etc/containerd/certs.d\")\n"
    "  podman      /etc/containers/registries.conf.d/pullcache.conf: a [[registry.mirror]]\n"
    "              at <mirror>/<upstream> per upstream (also read by CRI-O, buildah, skopeo)\n"
    "  cri-o       the same drop-in as podman (also: crio)\n"
    "  docker      the /etc/docker/daemon.json keys: registry-mirrors (Docker Hub only).\n"
    "              Docker sends bare /v2/<repository> paths, which the server serves\n"
    "              from Docker Hub only when run with --default-upstream docker.io\n"
    "\n"
    "  -m, --mirror URL     pullcache's root URL as nodes reach it: http:// or https://,\n"
    "                       a host, an optional port, no path\n"
    "  -u, --upstream NAME  a registry to pull through the mirror (repeatable; default\n"
    "                       docker.io): its host, e.g. ghcr.io, quay.io, registry.k8s.io,\n"
    "                       registry.local:5000, localhost:5000 (taken in lowercase)\n"
    "      --plain-http     the mirror is insecure: plain HTTP (implied by an http:// URL)\n"
    "                       or TLS the nodes cannot verify (containerd skip_verify, podman\n"
    "                       insecure = true, docker insecure-registries)\n"
    "      --ca-file FILE   verify an https:// mirror's certificate with this CA bundle\n"
    "                       when asking it for its upstreams\n"
    "      --no-check       do not ask the mirror: no request at all\n"
    "      --force          write settings the mirror cannot serve (an upstream it does\n"
    "                       not have, bare paths from another registry) with a warning\n"
    "  -o, --output DIR     write the files under DIR (which stands for /etc/containerd/certs.d,\n"
    "                       /etc/containers/registries.conf.d or /etc/docker) instead of\n"
    "                       printing them; an existing daemon.json gets the keys merged in\n"
    "                       (a file that already holds those bytes is left untouched)\n"
    "      --json           print {runtime, mirror, files: [{path, content}], notes}\n"
    "\n"
    "  containerd on a node (the DaemonSet of deploy/kubernetes/node runs these):\n"
    "      --watch SECONDS  after writing, keep running: every SECONDS write again each\n"
    "                       file that was removed or changed, until SIGTERM or SIGINT\n"
    "      --remove-on-exit with --watch: on SIGTERM or SIGINT remove the files first\n"
    "      --remove         remove DIR/<upstream>/hosts.toml of each --upstream (none\n"
    "                       given: of every upstream under DIR) and its directory once\n"
    "                       empty; only files whose first line is the mark this verb\n"
    "                       writes (\"# Written by `pullcache config containerd`...\"),\n"
    "                       others are kept. No --mirror needed, nothing asked\n"
    "  -h, --help           this help\n"
    "\n"
    "exit codes:\n"
    "  0  printed or written (warnings, if any, on stderr); --watch: stopped by\n"
    "     SIGTERM or SIGINT; --remove: removed, or nothing of ours there\n"
    "  1  a file could not be written (or another local failure)\n"
    "  2  usage: unknown runtime, a bad --mirror URL or --upstream name\n"
    "  3  the mirror does not serve what the settings need (see --force)\n"
    "\n"
    "examples:\n"
    "  pullcache config containerd --mirror http://10.0.0.5:5000 \\\n"
    "      --upstream docker.io --upstream ghcr.io --output /etc/containerd/certs.d\n"
    "  pullcache config podman --mirror https://cache.example.com --upstream quay.io\n"
    "  pullcache config docker --mirror http://10.0.0.5:5000\n"
    "  pullcache config containerd --mirror http://10.0.0.5:5000 --json | jq -r '.files[].path'\n"
    "  pullcache config containerd --mirror http://pullcache.pullcache.svc:5000 \\\n"
    "      --output /host/etc/containerd/certs.d --watch 60 --remove-on-exit\n"
    "  pullcache config containerd --remove --output /etc/containerd/certs.d\n";

typedef struct {
    const char *name;
    const char *alias; /* another name for it, or NULL */
    bool json_content; /* the files are JSON: headers and notes go to stderr */
    bool bare_paths;   /* Docker Hub pulls arrive as bare /v2/<repo> paths */
    bool hub_only;     /* only docker.io goes through the mirror */
    pc_cfg_build_fn build;
} runtime;

static const runtime runtimes[] = {
    {"containerd", NULL, false, false, false, pc_cfg_build_containerd},
    {"podman", NULL, false, false, false, pc_cfg_build_registries_conf},
    {"cri-o", "crio", false, false, false, pc_cfg_build_registries_conf},
    {"docker", NULL, true, true, true, pc_cfg_build_docker},
};

#define NRUNTIMES (sizeof(runtimes) / sizeof(runtimes[0]))

/* ---- --mirror ---------------------------------------------------------------- */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
}

int pc_cfg_parse_mirror(const char *s, bool plain_http, const char *what, pc_cfg_mirror *m)
{
    const char *rest;
    bool https;
    if (strncasecmp(s, "http://", 7) == 0) {
        https = false;
        rest = s + 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        https = true;
        rest = s + 8;
    } else {
        fprintf(stderr,
                "%s wants an http:// or https:// URL such as "
                "http://10.0.0.5:5000, not '%s'\n",
                what, s);
        return -1;
    }
    size_t alen = strcspn(rest, "/?#");
    const char *tail = rest + alen;
    if (alen == 0) {
        fprintf(stderr, "%s '%s' has no host\n", what, s);
        return -1;
    }
    if (*tail && strcmp(tail, "/") != 0) {
        fprintf(stderr,
                "%s '%s': give pullcache's root URL, without a path, "
                "query or fragment (pullcache serves /v2/ at the root)\n",
                what, s);
        return -1;
    }
    if (memchr(rest, '@', alen)) {
        fprintf(stderr, "%s '%s': no user:password in the URL\n", what, s);
        return -1;
    }
    if (alen >= PC_CFG_MAX_URL - 16) {
        fprintf(stderr, "%s URL too long\n", what);
        return -1;
    }

    char auth[PC_CFG_MAX_URL];
    memcpy(auth, rest, alen);
    auth[alen] = '\0';
    char *port = NULL;
    bool host_ok = true;
    if (auth[0] == '[') {
        char *close = strchr(auth, ']');
        host_ok = close && close > auth + 1;
        for (char *p = auth + 1; host_ok && p < close; p++)
            host_ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                      (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.';
        if (host_ok && close[1] == ':')
            port = close + 1;
        else if (host_ok && close[1] != '\0')
            host_ok = false;
    } else {
        port = strchr(auth, ':');
        size_t hlen = port ? (size_t)(port - auth) : alen;
        host_ok = hlen > 0 && hlen <= 253 && auth[0] != '.' && auth[0] != '-' &&
                  auth[hlen - 1] != '.' && auth[hlen - 1] != '-';
        for (size_t i = 0; host_ok && i < hlen; i++)
            host_ok = host_char(auth[i]) && !(auth[i] == '.' && auth[i + 1] == '.');
    }
    if (!host_ok) {
        fprintf(stderr, "%s '%s': '%s' is not a host name or address\n", what, s, auth);
        return -1;
    }
    if (port) {
        char *end = NULL;
        unsigned long v = strtoul(port + 1, &end, 10);
        if (port[1] < '0' || port[1] > '9' || *end || v == 0 || v > 65535 || strlen(port + 1) > 5) {
            fprintf(stderr, "%s '%s': bad port '%s'\n", what, s, port + 1);
            return -1;
        }
    }
    for (char *p = auth; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    snprintf(m->hostport, sizeof(m->hostport), "%s", auth);
    snprintf(m->url, sizeof(m->url), "%s://%s", https ? "https" : "http", auth);
    m->plain = !https;
    m->insecure = !https || plain_http;
    return 0;
}

/* ---- --upstream ------------------------------------------------------------- */

/* Registries people name by a short word, for the hint. */
static const struct {
    const char *word, *host;
} short_names[] = {
    {"docker", "docker.io"},
    {"dockerhub", "docker.io"},
    {"hub", "docker.io"},
    {"ghcr", "ghcr.io"},
    {"github", "ghcr.io"},
    {"quay", "quay.io"},
    {"gcr", "gcr.io"},
    {"k8s", "registry.k8s.io"},
    {"kubernetes", "registry.k8s.io"},
    {"mcr", "mcr.microsoft.com"},
    {"ecr", "public.ecr.aws"},
    {"gitlab", "registry.gitlab.com"},
};

/* One DNS label: letters, digits and '-', not at either end, 1-63 long. */
static bool label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static void bad_upstream(const char *who, const char *arg, const char *why)
{
    fprintf(stderr,
            "%s: --upstream '%s' is not a registry host (%s); give the registry's "
            "host, e.g. docker.io, ghcr.io, registry.local:5000\n",
            who, arg, why);
}

int pc_cfg_upstream_name(const char *who, const char *arg, char *buf, size_t size)
{
    size_t len = strlen(arg);
    const char *scheme = strstr(arg, "://");
    if (len == 0) {
        fprintf(stderr,
                "%s: --upstream wants a registry host, e.g. docker.io, "
                "ghcr.io or registry.local:5000\n",
                who);
        return -1;
    }
    if (scheme) {
        fprintf(stderr, "%s: --upstream '%s': give the registry's host (%.*s), not a URL\n", who,
                arg, (int)strcspn(scheme + 3, "/"), scheme + 3);
        return -1;
    }
    if (strchr(arg, '/')) {
        fprintf(stderr,
                "%s: --upstream '%s' is not a registry host: name the registry "
                "only (%.*s), not a repository in it\n",
                who, arg, (int)strcspn(arg, "/"), arg);
        return -1;
    }
    if (len >= size) {
        bad_upstream(who, arg, "too long");
        return -1;
    }
    bool upper = false;
    for (size_t i = 0; i <= len; i++) {
        char c = arg[i];
        upper |= c >= 'A' && c <= 'Z';
        buf[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }

    char *port = strrchr(buf, ':');
    size_t hlen = port ? (size_t)(port - buf) : len;
    if (port) {
        char *end = NULL;
        unsigned long v = strtoul(port + 1, &end, 10);
        if (port[1] < '0' || port[1] > '9' || *end || v == 0 || v > 65535 || strlen(port + 1) > 5) {
            bad_upstream(who, arg, "bad port");
            return -1;
        }
    }
    bool dot = memchr(buf, '.', hlen) != NULL;
    for (const char *p = buf, *end = buf + hlen;;) {
        const char *q = memchr(p, '.', (size_t)(end - p));
        if (hlen > 253 || !label_ok(p, q ? (size_t)(q - p) : (size_t)(end - p))) {
            bad_upstream(who, arg, "letters, digits and '-' in labels separated by '.'");
            return -1;
        }
        if (!q)
            break;
        p = q + 1;
    }
    if (!dot && !port && strcmp(buf, "localhost") != 0) {
        const char *hint = NULL;
        for (size_t i = 0; i < sizeof(short_names) / sizeof(short_names[0]); i++)
            if (strcmp(buf, short_names[i].word) == 0)
                hint = short_names[i].host;
        fprintf(stderr,
                "%s: --upstream '%s' is not a registry host: a registry's name has\n"
                "a '.' (ghcr.io), a port (registry:5000) or is localhost; %s%s%s\n",
                who, arg, hint ? "did you mean " : "name the registry's host, e.g. ",
                hint ? hint : "ghcr.io or registry.local:5000", hint ? "?" : "");
        return -1;
    }
    if (upper)
        fprintf(stderr,
                "%s: note: --upstream '%s' taken as %s (registry hosts are "
                "lowercase)\n",
                who, arg, buf);
    if (strcmp(buf, "index.docker.io") == 0 || strcmp(buf, "registry-1.docker.io") == 0)
        snprintf(buf, size, "docker.io");
    return 0;
}

/* Add an upstream (checked, normalised; duplicates dropped). 0, or -1 with
 * a message. */
static int add_upstream(char (*names)[PC_CFG_MAX_NAME], size_t *n, const char *arg)
{
    char name[PC_CFG_MAX_NAME];
    if (pc_cfg_upstream_name("pullcache config", arg, name, sizeof(name)))
        return -1;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return 0;
    if (*n == PC_CFG_MAX_UPSTREAMS) {
        fprintf(stderr, "pullcache config: at most %d upstreams\n", PC_CFG_MAX_UPSTREAMS);
        return -1;
    }
    memcpy(names[(*n)++], name, sizeof(name));
    return 0;
}

/* ---- output ------------------------------------------------------------------- */

/* Print text as comment lines ("# ..."). */
static void print_comment(FILE *f, const char *text)
{
    while (text && *text) {
        size_t n = strcspn(text, "\n");
        if (n)
            fprintf(f, "# %.*s\n", (int)n, text);
        else
            fputs("#\n", f);
        text += n + (text[n] == '\n');
    }
}

/* mkdir -p for the directory part of path (or all of it when whole). */
static int make_dirs(const char *path, bool whole)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        fprintf(stderr, "pullcache config: path too long: %s\n", path);
        return -1;
    }
    if (!whole) {
        char *slash = strrchr(buf, '/');
        if (!slash)
            return 0;
        *slash = '\0';
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (buf[0] && mkdir(buf, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "pullcache config: mkdir %s: %s\n", buf, strerror(errno));
            return -1;
        }
        *p = c;
        if (!c)
            break;
    }
    return 0;
}

/* Whether the file at path holds exactly content. */
static bool same_content(const char *path, const char *content)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t len = strlen(content), off = 0;
    char buf[4096];
    bool same = true;
    for (size_t r; same && (r = fread(buf, 1, sizeof(buf), f)) > 0; off += r)
        same = off + r <= len && memcmp(buf, content + off, r) == 0;
    same = same && !ferror(f) && off == len;
    fclose(f);
    return same;
}

/* A temporary file in the same directory, then rename, so a reader sees the
 * old file or the whole new one. */
int pc_cfg_write_file(const char *path, const char *content)
{
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", dlen, path, path + dlen) >= (int)sizeof(tmp)) {
        fprintf(stderr, "pullcache config: path too long: %s\n", path);
        return -1;
    }
    if (make_dirs(path, false))
        return -1;
    if (same_content(path, content))
        return 1;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "pullcache config: cannot create a file next to %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    size_t len = strlen(content), off = 0;
    int rc = -1;
    while (off < len) {
        ssize_t w = write(fd, content + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto done;
        off += (size_t)w;
    }
    if (fchmod(fd, 0644) || fsync(fd))
        goto done;
    if (close(fd)) {
        fd = -1;
        goto done;
    }
    fd = -1;
    if (rename(tmp, path))
        goto done;
    rc = 0;
done:
    if (rc) {
        fprintf(stderr, "pullcache config: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    }
    return rc;
}

/* Write every file under dir; out_paths[i] receives the written path,
 * unchanged[i] whether the file already held those bytes. */
static int write_outputs(const runtime *rt, const pc_cfg_output *g, const pc_cfg_mirror *m,
                         const char *dir, char **out_paths, bool *unchanged)
{
    if (make_dirs(dir, true))
        return -1;
    for (size_t i = 0; i < g->nfiles; i++) {
        char *path = pc_cfg_printf("%s/%s", dir, g->files[i].rel);
        char *merged = NULL;
        if (!path) {
            fprintf(stderr, "pullcache config: out of memory\n");
            return -1;
        }
        out_paths[i] = path;
        if (rt->json_content && pc_cfg_merge_daemon_json(path, m, &merged) < 0)
            return -1;
        int w = pc_cfg_write_file(path, merged ? merged : g->files[i].content);
        free(merged);
        if (w < 0)
            return -1;
        unchanged[i] = w == 1;
    }
    return 0;
}

static int print_json(const runtime *rt, const pc_cfg_mirror *m, const pc_cfg_output *g,
                      char **written)
{
    json_t *doc = json_pack("{s:s, s:s, s:[], s:[]}", "runtime", rt->name, "mirror", m->url,
                            "files", "notes");
    json_t *files = doc ? json_object_get(doc, "files") : NULL;
    json_t *notes = doc ? json_object_get(doc, "notes") : NULL;
    int rc = -1;
    if (!doc)
        goto done;
    for (size_t i = 0; i < g->nfiles; i++) {
        json_t *f =
            json_pack("{s:s, s:s}", "path", g->files[i].path, "content", g->files[i].content);
        if (!f || (written && json_object_set_new(f, "written", json_string(written[i]))) ||
            json_array_append_new(files, f))
            goto done;
    }
    for (const char *t = g->notes; t && *t;) {
        size_t n = strcspn(t, "\n");
        if (json_array_append_new(notes, json_stringn(t, n)))
            goto done;
        t += n + (t[n] == '\n');
    }
    char *text = pc_cfg_json_text(doc);
    if (!text)
        goto done;
    fputs(text, stdout);
    free(text);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "pullcache config: out of memory\n");
    json_decref(doc);
    return rc;
}

static void print_text(const runtime *rt, const pc_cfg_output *g)
{
    /* JSON files stay valid on stdout: their comments go to stderr. */
    FILE *cf = rt->json_content ? stderr : stdout;
    print_comment(cf, g->notes);
    for (size_t i = 0; i < g->nfiles; i++) {
        fprintf(cf, "%s# %s%s\n", i || g->notes ? "\n" : "", g->files[i].path,
                rt->json_content ? " (merge these keys into it)" : "");
        fflush(cf);
        fputs(g->files[i].content, stdout);
    }
}

/* ---- the verb ------------------------------------------------------------------ */

enum {
    OPT_PLAIN_HTTP = 256,
    OPT_JSON,
    OPT_CA_FILE,
    OPT_NO_CHECK,
    OPT_FORCE,
    OPT_REMOVE,
    OPT_WATCH,
    OPT_REMOVE_ON_EXIT
};

static const runtime *find_runtime(const char *name)
{
    for (size_t i = 0; i < NRUNTIMES; i++)
        if (strcmp(name, runtimes[i].name) == 0 ||
            (runtimes[i].alias && strcmp(name, runtimes[i].alias) == 0))
            return &runtimes[i];
    return NULL;
}

int pc_cli_config(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mirror", required_argument, NULL, 'm'},
        {"upstream", required_argument, NULL, 'u'},
        {"plain-http", no_argument, NULL, OPT_PLAIN_HTTP},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"no-check", no_argument, NULL, OPT_NO_CHECK},
        {"force", no_argument, NULL, OPT_FORCE},
        {"output", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, OPT_JSON},
        {"remove", no_argument, NULL, OPT_REMOVE},
        {"watch", required_argument, NULL, OPT_WATCH},
        {"remove-on-exit", no_argument, NULL, OPT_REMOVE_ON_EXIT},
        {NULL, 0, NULL, 0},
    };
    const char *mirror_arg = NULL, *output = NULL;
    char outdir[PATH_MAX];
    static char names[PC_CFG_MAX_UPSTREAMS][PC_CFG_MAX_NAME];
    const char *ups[PC_CFG_MAX_UPSTREAMS];
    char *written[PC_CFG_MAX_UPSTREAMS] = {0};
    bool unchanged[PC_CFG_MAX_UPSTREAMS] = {0};
    size_t nups = 0;
    unsigned watch = 0;
    bool plain_http = false, json = false, check = true, remove = false, remove_on_exit = false;
    pc_cfg_check_opts co = {0};
    const runtime *rt = NULL;
    pc_cfg_mirror m;
    pc_cfg_output g = {0};
    int rc = 1, c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "m:u:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            mirror_arg = optarg;
            break;
        case 'u':
            if (add_upstream(names, &nups, optarg))
                return 2;
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_PLAIN_HTTP:
            plain_http = true;
            break;
        case OPT_CA_FILE:
            if (access(optarg, R_OK) != 0) {
                fprintf(stderr, "pullcache config: --ca-file %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            co.ca_file = optarg;
            break;
        case OPT_NO_CHECK:
            check = false;
            break;
        case OPT_FORCE:
            co.force = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_REMOVE:
            remove = true;
            break;
        case OPT_REMOVE_ON_EXIT:
            remove_on_exit = true;
            break;
        case OPT_WATCH: {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end || v == 0 || v > 86400) {
                fprintf(stderr,
                        "pullcache config: --watch wants seconds between checks, 1 to 86400, not "
                        "'%s'\n",
                        optarg);
                return 2;
            }
            watch = (unsigned)v;
            break;
        }
        default:
            fprintf(stderr, "`pullcache config --help` lists the options\n");
            return 2;
        }
    }
    if (optind == argc) {
        fprintf(stderr, "pullcache config: which runtime? containerd, podman, cri-o or docker "
                        "(`pullcache config --help`)\n");
        return 2;
    }
    if (!(rt = find_runtime(argv[optind]))) {
        fprintf(stderr,
                "pullcache config: unknown runtime '%s'; choose containerd, podman, cri-o or "
                "docker\n",
                argv[optind]);
        return 2;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "pullcache config: unexpected argument '%s'\n", argv[optind + 1]);
        return 2;
    }
    if ((remove || watch || remove_on_exit) && strcmp(rt->name, "containerd") != 0) {
        fprintf(stderr, "pullcache config: --remove, --watch and --remove-on-exit are for "
                        "containerd's files only\n");
        return 2;
    }
    if ((remove || watch || remove_on_exit) && !output) {
        fprintf(stderr, "pullcache config: --remove, --watch and --remove-on-exit need --output "
                        "DIR (the files' directory)\n");
        return 2;
    }
    if (remove && (watch || remove_on_exit || json)) {
        fprintf(stderr, "pullcache config: --remove goes alone (not with --watch, "
                        "--remove-on-exit or --json)\n");
        return 2;
    }
    if (remove_on_exit && !watch) {
        fprintf(stderr, "pullcache config: --remove-on-exit goes with --watch SECONDS\n");
        return 2;
    }
    if (!mirror_arg && !remove) {
        fprintf(stderr, "pullcache config: --mirror URL is required, e.g. --mirror "
                        "http://10.0.0.5:5000\n");
        return 2;
    }
    if (output && !*output) {
        fprintf(stderr, "pullcache config: --output wants a directory\n");
        return 2;
    }
    if (output && strlen(output) >= sizeof(outdir)) {
        fprintf(stderr, "pullcache config: --output path too long\n");
        return 2;
    }
    if (output) { /* DIR/ and DIR name the same directory: drop trailing slashes */
        size_t n = strlen(output);
        while (n > 1 && output[n - 1] == '/')
            n--;
        memcpy(outdir, output, n);
        outdir[n] = '\0';
        output = outdir;
    }
    for (size_t i = 0; i < nups; i++)
        ups[i] = names[i];
    if (remove) /* every marked file under DIR unless upstreams are named */
        return pc_cfg_remove(output, ups, nups);
    if (pc_cfg_parse_mirror(mirror_arg, plain_http, "pullcache config: --mirror", &m))
        return 2;
    if (nups == 0)
        ups[nups++] = "docker.io";

    if (rt->build(&m, ups, nups, &g)) {
        fprintf(stderr, "pullcache config: out of memory\n");
        goto done;
    }
    if (check) {
        /* Docker's settings send only Docker Hub pulls to the mirror */
        static const char *const hub[] = {"docker.io"};
        co.bare_paths = rt->bare_paths;
        int r =
            rt->hub_only ? pc_cfg_check(&m, &co, hub, 1, &g) : pc_cfg_check(&m, &co, ups, nups, &g);
        if (r) {
            rc = r == PC_CFG_REFUSED ? PC_CFG_REFUSED : 1;
            goto done;
        }
    }
    if (g.warnings) {
        fflush(stdout);
        print_comment(stderr, g.warnings);
    }
    if (output) {
        if (watch) /* SIGTERM before the first write still ends the loop */
            pc_cli_catch_stop(PC_CLI_STOP_TERM);
        if (write_outputs(rt, &g, &m, output, written, unchanged))
            goto done;
        if (!json) {
            for (size_t i = 0; i < g.nfiles; i++)
                printf("# %s %s (goes to %s)\n", unchanged[i] ? "unchanged" : "wrote", written[i],
                       g.files[i].path);
            print_comment(stdout, g.notes);
        }
    }
    if (json) {
        if (print_json(rt, &m, &g, output ? written : NULL))
            goto done;
    } else if (!output) {
        print_text(rt, &g);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "pullcache config: cannot write to stdout\n");
        goto done;
    }
    rc = watch ? pc_cfg_watch(output, &g, watch, remove_on_exit) : 0;
done:
    for (size_t i = 0; i < PC_CFG_MAX_UPSTREAMS; i++)
        free(written[i]);
    pc_cfg_output_free(&g);
    return rc;
}
