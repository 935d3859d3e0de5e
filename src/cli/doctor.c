/*
 * doctor.c - `pullcache doctor`: run on a node, read what containerd,
 * podman/CRI-O and dockerd are told about registry mirrors and check that
 * their pulls really go through the cache (doctor_rt.c reads the files,
 * doctor_probe.c asks the mirrors). This file is the verb: options, the
 * files' paths (--root or one flag each), findings printed worst-first with
 * their fixes (or as JSON), and the exit code: 1 when a runtime bypasses the
 * cache, 0 when all go through it, 2 on usage errors.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"
#include "doctor.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

const char pc_cli_doctor_usage[] =
    "usage: pullcache doctor [--cache URL] [--upstream NAME]... [--image NAME:TAG]...\n"
    "                        [--root DIR] [--containerd-config FILE] [--hosts-dir DIR]\n"
    "                        [--registries-conf FILE] [--registries-conf-d DIR]\n"
    "                        [--docker-daemon-json FILE] [--ca-file FILE] [--json]\n"
    "\n"
    "Check, on a node, that the container runtimes pull through the cache: it reads\n"
    "containerd's config.toml (config_path) and hosts.toml files, podman's and CRI-O's\n"
    "registries.conf and registries.conf.d/*.conf, and Docker's daemon.json, and for\n"
    "each runtime found and each upstream asks the mirror its files name, the way the\n"
    "runtime would: GET /v2/, GET /readyz, the upstreams in /_pullcache/status, and a\n"
    "manifest HEAD of a tag the cache already holds (from /_pullcache/cache). No pull\n"
    "is spent: a cached tag is answered from the cache's store, or revalidated with an\n"
    "upstream HEAD, which Docker Hub does not count; a tag that is not cached is never\n"
    "asked for. Findings are printed worst first (error, warning, ok), each with its\n"
    "fix: the line to put in which file, or the `pullcache config` command to run.\n"
    "\n"
    "  -c, --cache URL      the cache the runtimes should use (http:// or https://,\n"
    "                       host, port); without it, the mirrors the files name are\n"
    "                       checked as they are\n"
    "  -u, --upstream NAME  an upstream to expect routed (repeatable; default: the\n"
    "                       cache's upstreams from its status, else docker.io)\n"
    "      --image NAME:TAG a tag to resolve for its upstream, e.g.\n"
    "                       docker.io/library/alpine:3.20 (repeatable; default: one the\n"
    "                       cache lists; name one the cache holds, or a pull is spent)\n"
    "      --root DIR       read every file under DIR (DIR/etc/containerd/...)\n"
    "      --containerd-config FILE   default /etc/containerd/config.toml\n"
    "      --hosts-dir DIR            default: config_path from config.toml\n"
    "      --registries-conf FILE     default /etc/containers/registries.conf\n"
    "      --registries-conf-d DIR    default /etc/containers/registries.conf.d\n"
    "      --docker-daemon-json FILE  default /etc/docker/daemon.json\n"
    "      --ca-file FILE   verify https:// mirrors with this CA bundle\n"
    "      --json           print {cache, findings: [{level, runtime, upstream, file,\n"
    "                       message, fix}], errors, warnings, ok} instead of text\n"
    "  -h, --help           this help\n"
    "\n"
    "exit codes:\n"
    "  0  every runtime found pulls through the cache (warnings may be printed)\n"
    "  1  a runtime bypasses the cache (or none was found, or its files are broken)\n"
    "  2  usage: a bad flag or argument\n"
    "\n"
    "examples:\n"
    "  pullcache doctor --cache http://10.0.0.5:5000\n"
    "  pullcache doctor --json | jq -r '.findings[] | select(.level == \"error\") | .fix'\n";

static const char *const level_names[] = {"ok", "warning", "error"};

void pc_doc_add(pc_doc *d, pc_doc_level level, const char *runtime, const char *upstream,
                const char *file, const char *fix, const char *fmt, ...)
{
    if (d->nf == d->capf) {
        size_t cap = d->capf ? d->capf * 2 : 16;
        pc_doc_finding *nf = realloc(d->f, cap * sizeof(*nf));
        if (!nf) {
            d->oom = true;
            return;
        }
        d->f = nf;
        d->capf = cap;
    }
    pc_doc_finding *f = &d->f[d->nf];
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&f->message, fmt, ap) < 0)
        f->message = NULL;
    va_end(ap);
    f->level = level;
    f->seq = d->nf;
    f->runtime = strdup(runtime);
    f->upstream = upstream ? strdup(upstream) : NULL;
    f->file = file ? strdup(file) : NULL;
    f->fix = fix ? strdup(fix) : NULL;
    if (!f->message || !f->runtime || (upstream && !f->upstream) || (file && !f->file) ||
        (fix && !f->fix)) {
        free(f->message);
        free(f->runtime);
        free(f->upstream);
        free(f->file);
        free(f->fix);
        d->oom = true;
        return;
    }
    d->nf++;
}

const char *pc_doc_cache_url(const pc_doc *d)
{
    if (d->have_cache)
        return d->cache.url;
    for (size_t i = 0; i < d->nmirrors; i++)
        if (d->mirrors[i].readyz == 200 || d->mirrors[i].readyz == 503)
            return d->mirrors[i].base;
    return "http://CACHE:5000";
}

/* Worst first; within a level, in the order found. */
static int by_level(const void *a, const void *b)
{
    const pc_doc_finding *x = a, *y = b;
    if (x->level != y->level)
        return x->level > y->level ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void print_indented(FILE *out, const char *label, const char *text)
{
    bool first = true;
    while (text && *text) {
        size_t n = strcspn(text, "\n");
        fprintf(out, "%-9s%.*s\n", first ? label : "", (int)n, text);
        first = false;
        text += n + (text[n] == '\n');
    }
}

static void print_text(const pc_doc *d, size_t counts[3])
{
    for (size_t i = 0; i < d->nf; i++) {
        const pc_doc_finding *f = &d->f[i];
        char head[400];
        snprintf(head, sizeof(head), "%s %s%s%s", level_names[f->level], f->runtime,
                 f->upstream ? " " : "", f->upstream ? f->upstream : "");
        printf("%s: %s\n", head, f->message);
        if (f->fix)
            print_indented(stdout, "  fix:", f->fix);
    }
    printf("\n%zu error%s, %zu warning%s, %zu ok: %s\n", counts[2], counts[2] == 1 ? "" : "s",
           counts[1], counts[1] == 1 ? "" : "s", counts[0],
           counts[2] ? "pulls bypass the cache (see the errors above)"
                     : "every runtime found pulls through the cache");
}

static int print_json(const pc_doc *d, size_t counts[3], int code)
{
    json_t *arr = json_array();
    json_t *doc =
        json_pack("{s:s?, s:o, s:I, s:I, s:I, s:i}", "cache", d->have_cache ? d->cache.url : NULL,
                  "findings", arr ? arr : json_null(), "errors", (json_int_t)counts[2], "warnings",
                  (json_int_t)counts[1], "ok", (json_int_t)counts[0], "exit", code);
    if (!arr || !doc) {
        json_decref(doc);
        return -1;
    }
    for (size_t i = 0; i < d->nf; i++) {
        const pc_doc_finding *f = &d->f[i];
        json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s?}", "level", level_names[f->level],
                              "runtime", f->runtime, "upstream", f->upstream, "file", f->file,
                              "message", f->message, "fix", f->fix);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(doc);
            return -1;
        }
    }
    char *text = pc_cfg_json_text(doc);
    json_decref(doc);
    if (!text)
        return -1;
    fputs(text, stdout);
    free(text);
    return 0;
}

enum {
    OPT_ROOT = 256,
    OPT_CONTAINERD,
    OPT_HOSTS_DIR,
    OPT_REGISTRIES,
    OPT_REGISTRIES_D,
    OPT_DOCKER,
    OPT_JSON,
    OPT_CA_FILE,
    OPT_IMAGE,
};

/* --image NAME:TAG: host/repository:tag, into d->images[host]. */
static int add_image(pc_doc *d, const char *arg)
{
    const char *slash = strchr(arg, '/');
    const char *colon = strrchr(arg, ':');
    if (!slash || !colon || colon < strrchr(arg, '/') || colon[1] == '\0' || slash == arg ||
        colon == slash + 1 || strchr(arg, '@')) {
        fprintf(stderr,
                "pullcache doctor: --image '%s': give REGISTRY/REPOSITORY:TAG, e.g. "
                "docker.io/library/alpine:3.20\n",
                arg);
        return -1;
    }
    char *up = strndup(arg, (size_t)(slash - arg));
    char *repo = strndup(slash + 1, (size_t)(colon - slash - 1));
    int rc = -1;
    if (up && repo && (d->images || (d->images = json_object())))
        rc = json_object_set_new(d->images, up,
                                 json_pack("{s:s, s:s}", "repo", repo, "tag", colon + 1));
    if (rc)
        fprintf(stderr, "pullcache doctor: out of memory\n");
    free(up);
    free(repo);
    return rc;
}

static int set_path(char *dst, size_t size, const char *src, const char *flag)
{
    if (!*src || strlen(src) >= size) {
        fprintf(stderr, "pullcache doctor: %s wants a path%s\n", flag, *src ? " (too long)" : "");
        return -1;
    }
    snprintf(dst, size, "%s", src);
    return 0;
}

int pc_cli_doctor(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cache", required_argument, NULL, 'c'},
        {"upstream", required_argument, NULL, 'u'},
        {"image", required_argument, NULL, OPT_IMAGE},
        {"root", required_argument, NULL, OPT_ROOT},
        {"containerd-config", required_argument, NULL, OPT_CONTAINERD},
        {"hosts-dir", required_argument, NULL, OPT_HOSTS_DIR},
        {"registries-conf", required_argument, NULL, OPT_REGISTRIES},
        {"registries-conf-d", required_argument, NULL, OPT_REGISTRIES_D},
        {"docker-daemon-json", required_argument, NULL, OPT_DOCKER},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    static pc_doc d;
    const char *cache_arg = NULL;
    char root[4000] = ""; /* room for the paths under it in 4096 */
    bool json = false;
    int c, code = 2;

    memset(&d, 0, sizeof(d));
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:u:", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c':
            cache_arg = optarg;
            break;
        case 'u': {
            /* the names `pullcache config --upstream` takes */
            char name[PC_CFG_MAX_NAME];
            bool dup = false;
            if (pc_cfg_upstream_name("pullcache doctor", optarg, name, sizeof(name))) {
                bad = 1;
                break;
            }
            for (size_t i = 0; i < d.nups; i++)
                dup |= strcmp(d.ups[i], name) == 0;
            if (dup)
                break;
            if (d.nups == PC_CFG_MAX_UPSTREAMS) {
                fprintf(stderr, "pullcache doctor: at most %d upstreams\n", PC_CFG_MAX_UPSTREAMS);
                bad = 1;
                break;
            }
            memcpy(d.ups[d.nups++], name, sizeof(name));
            break;
        }
        case OPT_IMAGE:
            bad = add_image(&d, optarg);
            break;
        case OPT_ROOT:
            bad = set_path(root, sizeof(root), optarg, "--root");
            break;
        case OPT_CONTAINERD:
            bad = set_path(d.containerd_config, sizeof(d.containerd_config), optarg,
                           "--containerd-config");
            d.containerd_given = true;
            break;
        case OPT_HOSTS_DIR:
            bad = set_path(d.hosts_dir, sizeof(d.hosts_dir), optarg, "--hosts-dir");
            d.hosts_dir_given = true;
            break;
        case OPT_REGISTRIES:
            bad =
                set_path(d.registries_conf, sizeof(d.registries_conf), optarg, "--registries-conf");
            d.registries_given = true;
            break;
        case OPT_REGISTRIES_D:
            bad = set_path(d.registries_d, sizeof(d.registries_d), optarg, "--registries-conf-d");
            d.registries_d_given = true;
            break;
        case OPT_DOCKER:
            bad = set_path(d.docker_json, sizeof(d.docker_json), optarg, "--docker-daemon-json");
            d.docker_given = true;
            break;
        case OPT_CA_FILE:
            d.ca_file = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        default:
            fprintf(stderr, "`pullcache doctor --help` lists the options\n");
            bad = 1;
        }
        if (bad)
            goto done;
    }
    if (optind < argc) {
        fprintf(stderr, "pullcache doctor: unexpected argument '%s'\n", argv[optind]);
        goto done;
    }
    if (cache_arg) {
        if (pc_cfg_parse_mirror(cache_arg, false, "pullcache doctor: --cache", &d.cache))
            goto done;
        d.have_cache = true;
    }
    /* --root DIR: every default under DIR (a trailing slash dropped) */
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/')
        root[--rl] = '\0';
    d.root = root;
    if (!d.containerd_given)
        snprintf(d.containerd_config, sizeof(d.containerd_config), "%s%s", root,
                 PC_CFG_CONTAINERD_CONFIG);
    if (!d.registries_given)
        snprintf(d.registries_conf, sizeof(d.registries_conf), "%s%s", root,
                 PC_CFG_REGISTRIES_CONF);
    if (!d.registries_d_given)
        snprintf(d.registries_d, sizeof(d.registries_d), "%s%s", root, PC_CFG_REGISTRIES_DIR);
    if (!d.docker_given)
        snprintf(d.docker_json, sizeof(d.docker_json), "%s%s/%s", root, PC_CFG_DOCKER_DIR,
                 PC_CFG_DOCKER_JSON);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (d.have_cache) {
        pc_doc_mirror *m = pc_doc_mirror_get(&d, d.cache.plain, d.cache.hostport, false);
        if (m && m->readyz == 200)
            pc_doc_add(&d, PC_DOC_OK, "cache", NULL, NULL, NULL, "%s/readyz answers 200 (ready)",
                       d.cache.url);
        else if (m && m->readyz)
            pc_doc_add(&d, m->readyz == 503 ? PC_DOC_WARN : PC_DOC_ERROR, "cache", NULL, NULL,
                       m->readyz == 503 ? "see what fails in its /readyz answer and its log"
                                        : "check --cache: the URL of a pullcache serve",
                       "%s/readyz answers HTTP %ld%s", d.cache.url, m->readyz,
                       m->readyz == 503 ? " (not ready)" : ": not a pullcache");
        else if (m)
            pc_doc_add(&d, PC_DOC_ERROR, "cache", NULL, NULL,
                       "check --cache and that `pullcache serve` runs there",
                       "nothing answers at %s: %s", d.cache.url, m->readyz_err);
    }
    pc_doc_containerd(&d);
    pc_doc_registries(&d);
    pc_doc_docker(&d);
    if (d.runtimes_found == 0)
        pc_doc_add(&d, PC_DOC_ERROR, "doctor", NULL, NULL,
                   "run doctor on a node with containerd, podman/CRI-O or Docker, or point it "
                   "at their files (--root, --containerd-config, ...)",
                   "no container runtime's files found (%s, %s, %s, %s)", d.containerd_config,
                   d.registries_conf, d.registries_d, d.docker_json);
    if (d.oom) {
        fprintf(stderr, "pullcache doctor: out of memory\n");
        code = 1;
        goto done;
    }

    qsort(d.f, d.nf, sizeof(*d.f), by_level);
    size_t counts[3] = {0};
    for (size_t i = 0; i < d.nf; i++)
        counts[d.f[i].level]++;
    code = counts[PC_DOC_ERROR] ? 1 : 0;
    if (json ? print_json(&d, counts, code) : (print_text(&d, counts), 0)) {
        fprintf(stderr, "pullcache doctor: out of memory\n");
        code = 1;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "pullcache doctor: cannot write to stdout\n");
        code = 1;
    }
done:
    for (size_t i = 0; i < d.nf; i++) {
        free(d.f[i].message);
        free(d.f[i].runtime);
        free(d.f[i].upstream);
        free(d.f[i].file);
        free(d.f[i].fix);
    }
    free(d.f);
    pc_doc_mirrors_free(&d);
    json_decref(d.images);
    memset(&d, 0, sizeof(d));
    return code;
}
