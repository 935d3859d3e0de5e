/*
 * doctor_rt.c - `pullcache doctor`'s checks of each runtime's files: what
 * containerd (config.toml's config_path, hosts.toml), podman and CRI-O
 * (registries.conf and its drop-ins) and dockerd (daemon.json) would do with
 * a pull of each upstream, and whether that reaches the cache
 * (pc_doc_check_route). Each problem is a finding with its fix: the line to
 * put in which file, or the `pullcache config` command that writes it.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "doctor.h"
#include "nodeconf.h"
#include "toml.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* root + path (path absolute on the node). */
static char *under_root(const pc_doc *d, const char *path)
{
    return pc_cfg_printf("%s%s", d->root, path);
}

/* The finding for a route check's result: ok, or the problem with the
 * server-side fix, tls_fix for https:// to plain HTTP, else node_fix. */
static void route_finding(pc_doc *d, pc_doc_rt rt, const char *runtime, const char *up,
                          const char *file, const char *msg, const char *node_fix,
                          const char *tls_fix, const char *suffix)
{
    char *sfix = pc_doc_rt_server_fix(d, rt, up);
    const char *fix = sfix ? sfix : rt == PC_DOC_RT_TLS_PLAIN && tls_fix ? tls_fix : node_fix;
    if (rt == PC_DOC_RT_OK)
        pc_doc_add(d, PC_DOC_OK, runtime, up, file, NULL, "%s pulls go through the cache%s: %s", up,
                   suffix ? suffix : "", msg);
    else
        pc_doc_add(d, pc_doc_rt_level(rt), runtime, up, file, fix, "%s%s%s", msg,
                   pc_doc_rt_level(rt) == PC_DOC_ERROR ? ": pulls fall back to the registry" : "",
                   suffix ? suffix : "");
    free(sfix);
}

/* Add name to names (n entries, PC_CFG_MAX_UPSTREAMS room) unless there. */
static void add_name(char (*names)[PC_CFG_MAX_NAME], size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return;
    if (*n < PC_CFG_MAX_UPSTREAMS && strlen(name) < PC_CFG_MAX_NAME)
        snprintf(names[(*n)++], PC_CFG_MAX_NAME, "%s", name);
}

/* ---- containerd ------------------------------------------------------------- */

/* The hosts.toml directories: --hosts-dir, else config_path's (':'
 * separated, under --root), else the default. */
static size_t hosts_dirs(const pc_doc *d, const pc_nodeconf_containerd *c, char **dirs, size_t max)
{
    size_t n = 0;
    if (d->hosts_dir_given) {
        dirs[n++] = strdup(d->hosts_dir);
        return n;
    }
    if (!c->config_path) {
        dirs[n++] = under_root(d, PC_CFG_CONTAINERD_DIR);
        return n;
    }
    for (const char *p = c->config_path; *p && n < max;) {
        size_t len = strcspn(p, ":");
        if (len) {
            char *part = strndup(p, len);
            dirs[n++] = part ? under_root(d, part) : NULL;
            free(part);
        }
        p += len + (p[len] == ':');
    }
    return n;
}

static void check_hosts_file(pc_doc *d, const char *up, const char *path, const char *dir,
                             const char *suffix)
{
    json_t *doc = NULL;
    char err[600];
    pc_nodeconf_hosts h = {0};
    char *cfg_fix =
        pc_cfg_printf("pullcache config containerd --mirror %s --upstream %s --output %s",
                      pc_doc_cache_url(d), up, dir);
    if (pc_toml_load(path, &doc, err, sizeof(err)) != 0 ||
        pc_nodeconf_hosts_read(doc, &h, err, sizeof(err)) != 0) {
        pc_doc_add(d, PC_DOC_ERROR, "containerd", up, path, cfg_fix,
                   "containerd cannot use %s: %s; pulls of %s fail", path, err, up);
        goto done;
    }
    const pc_nodeconf_host *use = NULL;
    size_t first_pull = h.nhost, idx = 0;
    for (size_t i = 0; i < h.nhost; i++) {
        const char *sep = strstr(h.host[i].url, "://");
        char hp[PC_CFG_MAX_URL];
        snprintf(hp, sizeof(hp), "%.*s", (int)strcspn(sep + 3, "/"), sep + 3);
        if (h.host[i].pull && first_pull == h.nhost)
            first_pull = i;
        if (!use && pc_doc_is_cache(d, h.host[i].plain, hp)) {
            use = &h.host[i];
            idx = i;
        }
    }
    if (!use && first_pull < h.nhost) {
        use = &h.host[first_pull];
        idx = first_pull;
    }
    if (!use && h.nhost) {
        use = &h.host[0];
        idx = 0;
    }
    if (!use) {
        pc_doc_add(d, PC_DOC_ERROR, "containerd", up, path, cfg_fix,
                   "%s has no [host.\"URL\"] table: containerd pulls %s images from %s%s", path, up,
                   h.server ? h.server : "the registry itself", suffix ? suffix : "");
        goto done;
    }
    if (!use->caps_given) {
        char *fix = pc_cfg_printf("in %s, under [host.\"%s\"]:\n  capabilities = [\"pull\", "
                                  "\"resolve\"]",
                                  path, use->key);
        pc_doc_add(d, PC_DOC_WARN, "containerd", up, path, fix,
                   "[host.\"%s\"] in %s sets no capabilities, so containerd grants it pull, "
                   "resolve and push: pulls go through the cache, but pushes to %s go to it "
                   "too, and the cache refuses writes to a mirror",
                   use->key, path, up);
        free(fix);
    } else if (!use->pull || !use->resolve) {
        char *fix = pc_cfg_printf("in %s, under [host.\"%s\"]:\n  capabilities = [\"pull\", "
                                  "\"resolve\"]",
                                  path, use->key);
        pc_doc_add(d, PC_DOC_ERROR, "containerd", up, path, fix,
                   "[host.\"%s\"] in %s lacks the %s capability: containerd %s at %s itself%s",
                   use->key, path, !use->resolve ? "resolve" : "pull",
                   !use->resolve ? "resolves tags" : "fetches manifests and layers", up,
                   suffix ? suffix : "");
        free(fix);
        goto done;
    }
    if (first_pull < idx)
        pc_doc_add(d, PC_DOC_WARN, "containerd", up, path, cfg_fix,
                   "[host.\"%s\"] comes before the cache in %s: containerd tries it first",
                   h.host[first_pull].key, path);

    char msg[1200];
    pc_doc_rt rt = pc_doc_check_route(d, up, use->api_root, use->skip_verify, PC_DOC_ROUTE_NS, msg,
                                      sizeof(msg));
    char *tls_fix = NULL, *node_fix = cfg_fix, *op_fix = NULL;
    if (rt == PC_DOC_RT_TLS_PLAIN) {
        const char *sep = strstr(use->url, "://");
        tls_fix = pc_cfg_printf("in %s: [host.\"http://%.*s\"] (http://, the cache speaks plain "
                                "HTTP), or: %s",
                                path, (int)strcspn(sep + 3, "/"), sep + 3, cfg_fix);
    }
    if (rt == PC_DOC_RT_NOT_REGISTRY && use->override_path)
        node_fix = op_fix = pc_cfg_printf(
            "in %s, [host.\"%s\"] has override_path = true, so its URL must end with /v2 (or "
            "remove override_path): %s",
            path, use->key, cfg_fix);
    route_finding(d, rt, "containerd", up, path, msg, node_fix, tls_fix, suffix);
    free(tls_fix);
    free(op_fix);
done:
    free(cfg_fix);
    pc_nodeconf_hosts_clear(&h);
    json_decref(doc);
}

void pc_doc_containerd(pc_doc *d)
{
    const char *file = d->containerd_config;
    json_t *doc = NULL;
    char err[600];
    pc_nodeconf_containerd c = {0};
    char *dirs[16] = {0};
    size_t ndirs = 0;
    int rc = pc_toml_load(file, &doc, err, sizeof(err));
    if (rc == 1) {
        if (d->containerd_given)
            pc_doc_add(d, PC_DOC_ERROR, "containerd", NULL, file, NULL, "%s: no such file", file);
        return;
    }
    d->runtimes_found++;
    if (rc < 0 || pc_nodeconf_containerd_read(doc, &c, err, sizeof(err)) != 0) {
        pc_doc_add(d, PC_DOC_ERROR, "containerd", NULL, file,
                   "correct the file: containerd does not start with it",
                   "containerd cannot read %s", err);
        goto done;
    }
    const char *suffix = NULL;
    if (!c.config_path) {
        const char *plugin = c.plugin         ? c.plugin
                             : c.version >= 3 ? "io.containerd.cri.v1.images"
                                              : "io.containerd.grpc.v1.cri";
        char *fix = pc_cfg_printf("in %s:\n"
                                  "  [plugins.\"%s\".registry]\n"
                                  "    config_path = \"%s\"\n"
                                  "then restart containerd (systemctl restart containerd)",
                                  file, plugin, PC_CFG_CONTAINERD_DIR);
        pc_doc_add(d, PC_DOC_ERROR, "containerd", NULL, file, fix,
                   "%s sets no config_path in [plugins.\"%s\".registry]: containerd reads no "
                   "hosts.toml and pulls every image straight from its registry",
                   file, plugin);
        free(fix);
        suffix = " (once config_path is set)";
    }
    if (c.legacy_mirrors)
        pc_doc_add(d, c.config_path ? PC_DOC_ERROR : PC_DOC_WARN, "containerd", NULL, file,
                   "remove the registry.mirrors tables; hosts.toml files under config_path "
                   "replace them (pullcache config containerd --output DIR writes them)",
                   "%s sets registry.mirrors, %s", file,
                   c.config_path ? "which containerd refuses together with config_path"
                                 : "which containerd deprecates for hosts.toml files");

    ndirs = hosts_dirs(d, &c, dirs, sizeof(dirs) / sizeof(dirs[0]));
    const char *exp[PC_CFG_MAX_UPSTREAMS];
    static char names[PC_CFG_MAX_UPSTREAMS][PC_CFG_MAX_NAME];
    size_t nnames = 0, nexp = pc_doc_expected(d, exp);
    for (size_t i = 0; i < nexp; i++)
        add_name(names, &nnames, exp[i]);
    /* and every upstream the directories configure */
    for (size_t i = 0; i < ndirs && !d->nups; i++) {
        DIR *dh = dirs[i] ? opendir(dirs[i]) : NULL;
        struct dirent *e;
        while (dh && (e = readdir(dh))) {
            if (e->d_name[0] == '.' || strcmp(e->d_name, "_default") == 0)
                continue;
            char *p = pc_cfg_printf("%s/%s/hosts.toml", dirs[i], e->d_name);
            if (p && access(p, F_OK) == 0)
                add_name(names, &nnames, e->d_name);
            free(p);
        }
        if (dh)
            closedir(dh);
    }
    for (size_t u = 0; u < nnames; u++) {
        const char *up = names[u];
        char *found = NULL;
        const char *in = ndirs && dirs[0] ? dirs[0] : PC_CFG_CONTAINERD_DIR;
        for (size_t i = 0; i < ndirs && !found; i++) {
            char *p = dirs[i] ? pc_cfg_printf("%s/%s/hosts.toml", dirs[i], up) : NULL;
            char *q = dirs[i] ? pc_cfg_printf("%s/_default/hosts.toml", dirs[i]) : NULL;
            if (p && access(p, F_OK) == 0) {
                found = p;
                p = NULL;
                in = dirs[i];
            } else if (q && access(q, F_OK) == 0) {
                found = q;
                q = NULL;
                in = dirs[i];
            }
            free(p);
            free(q);
        }
        if (!found) {
            char *fix = pc_cfg_printf("pullcache config containerd --mirror %s --upstream %s "
                                      "--output %s",
                                      pc_doc_cache_url(d), up, in);
            pc_doc_add(d, PC_DOC_ERROR, "containerd", up, NULL, fix,
                       "no %s/%s/hosts.toml: containerd pulls %s images straight from the "
                       "registry",
                       in, up, up);
            free(fix);
            continue;
        }
        check_hosts_file(d, up, found, in, suffix);
        free(found);
    }
done:
    for (size_t i = 0; i < ndirs; i++)
        free(dirs[i]);
    pc_nodeconf_containerd_clear(&c);
    json_decref(doc);
}

/* ---- containers-registries.conf --------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* registries.conf, then the drop-ins in name order. 0 when none exists. */
static size_t registries_files(const pc_doc *d, char **files, size_t max)
{
    size_t n = 0;
    if (access(d->registries_conf, F_OK) == 0)
        files[n++] = strdup(d->registries_conf);
    DIR *dh = opendir(d->registries_d);
    struct dirent *e;
    size_t first = n;
    while (dh && (e = readdir(dh)) && n < max) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".conf") != 0)
            continue;
        files[n++] = pc_cfg_printf("%s/%s", d->registries_d, e->d_name);
    }
    if (dh)
        closedir(dh);
    qsort(files + first, n - first, sizeof(*files), cmp_str);
    return n;
}

static void check_registry(pc_doc *d, const pc_nodeconf_registries *regs, const char *up)
{
    char ref[PC_CFG_MAX_NAME + 40];
    snprintf(ref, sizeof(ref), "%s/pullcache-doctor/probe", up);
    const pc_nodeconf_registry *g = pc_nodeconf_registries_find(regs, ref);
    char *cfg_fix = pc_cfg_printf("pullcache config podman --mirror %s --upstream %s --output %s",
                                  pc_doc_cache_url(d), up, d->registries_d);
    if (!g) {
        /* a table meant for it whose prefix does not cover it? */
        const pc_nodeconf_registry *near = NULL;
        size_t ul = strlen(up);
        for (size_t i = 0; i < regs->nreg && !near; i++) {
            const char *loc = regs->reg[i].location ? regs->reg[i].location : "";
            const char *slash = strrchr(loc, '/');
            bool names_up =
                (slash && strcmp(slash + 1, up) == 0) || strncmp(regs->reg[i].prefix, up, ul) == 0;
            for (size_t j = 0; j < regs->reg[i].nmirror; j++) {
                const char *ml = strrchr(regs->reg[i].mirror[j].location, '/');
                names_up |= ml && strcmp(ml + 1, up) == 0;
            }
            if (names_up)
                near = &regs->reg[i];
        }
        if (near) {
            const char *cu = pc_doc_cache_url(d), *chp = strstr(cu, "://") + 3;
            char *fix =
                pc_cfg_printf("in %s, the tables for %s:\n"
                              "  [[registry]]\n"
                              "  prefix = \"%s\"\n"
                              "  location = \"%s\"\n"
                              "  [[registry.mirror]]\n"
                              "  location = \"%s/%s\"\n%s"
                              "or write the drop-in: %s",
                              near->file, up, up, up, chp, up,
                              strncmp(cu, "http://", 7) == 0 ? "  insecure = true\n" : "", cfg_fix);
            pc_doc_add(d, PC_DOC_ERROR, "podman", up, near->file, fix,
                       "no [[registry]] covers %s images: the one in %s %s prefix = \"%s\", so it "
                       "applies only to images named %s/...; podman and CRI-O pull %s images "
                       "straight from %s",
                       up, near->file,
                       near->prefix_given ? "has" : "has no prefix: it takes its location as",
                       near->prefix, near->prefix, up, up);
            free(fix);
        } else {
            pc_doc_add(d, PC_DOC_ERROR, "podman", up, NULL, cfg_fix,
                       "no [[registry]] with prefix \"%s\": podman and CRI-O pull %s images "
                       "straight from %s",
                       up, up, up);
        }
        goto done;
    }
    if (g->blocked) {
        pc_doc_add(d, PC_DOC_ERROR, "podman", up, g->file, cfg_fix,
                   "the [[registry]] for \"%s\" in %s is blocked: no %s image can be pulled",
                   g->prefix, g->file, up);
        goto done;
    }
    const pc_nodeconf_mirror *mm = NULL;
    char loc[PC_CFG_MAX_URL];
    bool insecure = false;
    for (size_t i = 0; i < g->nmirror && !mm; i++) {
        char hp[PC_CFG_MAX_URL];
        snprintf(hp, sizeof(hp), "%.*s", (int)strcspn(g->mirror[i].location, "/"),
                 g->mirror[i].location);
        if (pc_doc_is_cache(d, false, hp) || pc_doc_is_cache(d, true, hp))
            mm = &g->mirror[i];
    }
    if (!mm && g->nmirror)
        mm = &g->mirror[0];
    if (mm) {
        snprintf(loc, sizeof(loc), "%s", mm->location);
        insecure = mm->insecure;
    } else if (g->location && strcmp(g->location, up) != 0) {
        snprintf(loc, sizeof(loc), "%s", g->location); /* pulled from there, no fallback */
        insecure = g->insecure;
    } else {
        pc_doc_add(d, PC_DOC_ERROR, "podman", up, g->file, cfg_fix,
                   "the [[registry]] for \"%s\" in %s has no [[registry.mirror]]: podman and "
                   "CRI-O pull %s images straight from %s",
                   g->prefix, g->file, up, g->location ? g->location : g->prefix);
        goto done;
    }
    if (g->digest_only ||
        (mm && mm->pull_from_mirror && strcmp(mm->pull_from_mirror, "digest-only") == 0)) {
        char *fix = pc_cfg_printf("in %s, remove %s from the [[registry]] for \"%s\"", g->file,
                                  g->digest_only ? "mirror-by-digest-only = true"
                                                 : "pull-from-mirror = \"digest-only\"",
                                  g->prefix);
        pc_doc_add(d, PC_DOC_ERROR, "podman", up, g->file, fix,
                   "%s: pulls by tag skip the mirror and go to %s", g->file, up);
        free(fix);
    }

    size_t hl = strcspn(loc, "/");
    const char *path = loc + hl;
    char hp[PC_CFG_MAX_URL];
    snprintf(hp, sizeof(hp), "%.*s", (int)hl, loc);
    pc_doc_route route = PC_DOC_ROUTE_PATH;
    char want_path[PC_CFG_MAX_NAME + 2];
    snprintf(want_path, sizeof(want_path), "/%s", up);
    if (*path == '\0' || strcmp(path, "/") == 0) {
        route = PC_DOC_ROUTE_BARE;
    } else if (strcmp(path, want_path) != 0) {
        char *fix = pc_cfg_printf("in %s, the mirror of \"%s\":\n  location = \"%s/%s\"", g->file,
                                  g->prefix, hp, up);
        pc_doc_add(d, PC_DOC_ERROR, "podman", up, g->file, fix,
                   "the mirror location \"%s\" in %s asks the cache for %s%s/<repository>, not "
                   "%s/<repository>: it serves each upstream under /v2/<upstream>/",
                   loc, g->file, hp, path, up);
        free(fix);
        goto done;
    }
    char *root_https = pc_cfg_printf("https://%s/v2", hp),
         *root_http = pc_cfg_printf("http://%s/v2", hp);
    char msg[1200];
    pc_doc_rt rt = PC_DOC_RT_UNREACHABLE;
    if (root_https && root_http) {
        /* containers/image tries https; insecure = true lets it fall back to http */
        rt = pc_doc_check_route(d, up, root_https, insecure, route, msg, sizeof(msg));
        if (insecure && (rt == PC_DOC_RT_TLS_PLAIN || rt == PC_DOC_RT_TLS))
            rt = pc_doc_check_route(d, up, root_http, false, route, msg, sizeof(msg));
    } else {
        d->oom = true;
        snprintf(msg, sizeof(msg), "out of memory");
    }
    free(root_https);
    free(root_http);
    char *tls_fix = pc_cfg_printf("in %s, under the [[registry.mirror]] with location = \"%s\":\n"
                                  "  insecure = true\n(the cache speaks plain HTTP), or: %s",
                                  g->file, loc, cfg_fix);
    char *bare_fix = NULL;
    if (rt == PC_DOC_RT_BARE_OTHER) {
        /* the mirror lacks the upstream's path: that, not the server, is the fix */
        bare_fix = pc_cfg_printf("in %s, the mirror of \"%s\":\n  location = \"%s/%s\"", g->file,
                                 g->prefix, hp, up);
        size_t l = strlen(msg);
        snprintf(msg + l, sizeof(msg) - l,
                 "; the mirror location \"%s\" has no /%s, so podman asks for bare paths", loc, up);
        pc_doc_add(d, PC_DOC_ERROR, "podman", up, g->file, bare_fix,
                   "%s: pulls fall back to the registry", msg);
    } else {
        route_finding(d, rt, "podman", up, g->file, msg, cfg_fix, tls_fix, NULL);
    }
    free(bare_fix);
    free(tls_fix);
done:
    free(cfg_fix);
}

void pc_doc_registries(pc_doc *d)
{
    char *files[256] = {0};
    size_t nfiles = registries_files(d, files, sizeof(files) / sizeof(files[0]));
    pc_nodeconf_registries regs = {0};
    bool broken = false;
    if (nfiles == 0) {
        if (d->registries_given || d->registries_d_given)
            pc_doc_add(d, PC_DOC_ERROR, "podman", NULL, d->registries_conf, NULL,
                       "neither %s nor a drop-in in %s exists", d->registries_conf,
                       d->registries_d);
        return;
    }
    d->runtimes_found++;
    for (size_t i = 0; i < nfiles; i++) {
        json_t *doc = NULL;
        char err[600];
        if (!files[i]) {
            d->oom = true;
            continue;
        }
        if (pc_toml_load(files[i], &doc, err, sizeof(err)) != 0 ||
            pc_nodeconf_registries_add(&regs, doc, files[i], err, sizeof(err)) != 0) {
            pc_doc_add(d, PC_DOC_ERROR, "podman", NULL, files[i],
                       "correct the file: podman, CRI-O, buildah and skopeo refuse to pull "
                       "while it is broken",
                       "cannot read %s%s%s", strstr(err, files[i]) ? "" : files[i],
                       strstr(err, files[i]) ? "" : ": ", err);
            broken = true;
        }
        json_decref(doc);
    }
    if (regs.v1)
        pc_doc_add(
            d, PC_DOC_WARN, "podman", NULL, d->registries_conf,
            "convert it to the v2 format ([[registry]] tables): containers-registries.conf(5)",
            "%s uses the v1 format ([registries.search] ...), which has no mirrors",
            d->registries_conf);
    if (!broken) {
        const char *exp[PC_CFG_MAX_UPSTREAMS];
        size_t nexp = pc_doc_expected(d, exp);
        for (size_t i = 0; i < nexp; i++)
            check_registry(d, &regs, exp[i]);
    }
    pc_nodeconf_registries_clear(&regs);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
}

/* ---- docker ----------------------------------------------------------------- */

static bool is_loopback(const char *hp)
{
    return strncmp(hp, "127.", 4) == 0 || strncmp(hp, "localhost", 9) == 0 ||
           strncmp(hp, "[::1]", 5) == 0;
}

void pc_doc_docker(pc_doc *d)
{
    const char *file = d->docker_json, *up = "docker.io";
    json_error_t jerr;
    char err[600];
    pc_nodeconf_docker dk = {0};
    char *cfg_fix = NULL;
    char *dir = strdup(file), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    if (access(file, F_OK) != 0 && errno == ENOENT) {
        if (d->docker_given)
            pc_doc_add(d, PC_DOC_ERROR, "docker", NULL, file, NULL, "%s: no such file", file);
        free(dir);
        return;
    }
    d->runtimes_found++;
    cfg_fix = pc_cfg_printf("pullcache config docker --mirror %s --output %s\nthen restart "
                            "dockerd (systemctl restart docker)",
                            pc_doc_cache_url(d), slash ? dir : ".");
    json_t *doc = json_load_file(file, 0, &jerr);
    if (!doc || pc_nodeconf_docker_read(doc, &dk, err, sizeof(err)) != 0) {
        pc_doc_add(d, PC_DOC_ERROR, "docker", NULL, file,
                   "correct the file: dockerd does not start with it", "dockerd cannot read %s: %s",
                   file, doc ? err : jerr.text);
        goto done;
    }
    if (dk.nmirrors == 0) {
        pc_doc_add(d, PC_DOC_ERROR, "docker", up, file, cfg_fix,
                   "%s has no registry-mirrors: Docker pulls Docker Hub images straight from "
                   "Docker Hub",
                   file);
        goto done;
    }
    const char *use = NULL;
    bool plain = false;
    char hp[PC_CFG_MAX_URL] = "";
    const char *path = "";
    for (size_t i = 0; i < dk.nmirrors && !use; i++) {
        const char *u = dk.mirrors[i];
        bool p = strncmp(u, "http://", 7) == 0;
        if (!p && strncmp(u, "https://", 8) != 0)
            continue;
        const char *a = u + (p ? 7 : 8);
        char h[PC_CFG_MAX_URL];
        snprintf(h, sizeof(h), "%.*s", (int)strcspn(a, "/"), a);
        if (pc_doc_is_cache(d, p, h) || !d->have_cache || i + 1 == dk.nmirrors) {
            use = u;
            plain = p;
            snprintf(hp, sizeof(hp), "%s", h);
            path = a + strlen(h);
        }
    }
    if (!use) {
        pc_doc_add(d, PC_DOC_ERROR, "docker", up, file, cfg_fix,
                   "no registry-mirrors entry in %s is an http:// or https:// URL", file);
        goto done;
    }
    if (*path && strcmp(path, "/") != 0) {
        pc_doc_add(d, PC_DOC_ERROR, "docker", up, file, cfg_fix,
                   "the registry-mirrors entry \"%s\" has a path: dockerd refuses it (a mirror "
                   "is served at /v2/ of its root)",
                   use);
        goto done;
    }
    char *root = pc_cfg_printf("%s://%s/v2", plain ? "http" : "https", hp);
    char msg[1200];
    bool insecure_listed = false;
    for (size_t i = 0; i < dk.ninsecure; i++)
        insecure_listed |= strcmp(dk.insecure[i], hp) == 0;
    pc_doc_rt rt = root ? pc_doc_check_route(d, up, root, insecure_listed && !plain,
                                             PC_DOC_ROUTE_BARE, msg, sizeof(msg))
                        : PC_DOC_RT_UNREACHABLE;
    free(root);
    char *tls_fix = pc_cfg_printf("in %s:\n  \"registry-mirrors\": [\"http://%s\"],\n"
                                  "  \"insecure-registries\": [\"%s\"]\n(the cache speaks plain "
                                  "HTTP), then restart dockerd (systemctl restart docker)",
                                  file, hp, hp);
    route_finding(d, rt, "docker", up, file, msg, cfg_fix, tls_fix, NULL);
    if (rt == PC_DOC_RT_OK && plain && !insecure_listed && !is_loopback(hp)) {
        char *fix = pc_cfg_printf("in %s:\n  \"insecure-registries\": [\"%s\"]", file, hp);
        pc_doc_add(d, PC_DOC_WARN, "docker", up, file, fix,
                   "%s is not in insecure-registries: dockerd may refuse plain HTTP to it", hp);
        free(fix);
    }
    free(tls_fix);
done:
    free(cfg_fix);
    free(dir);
    pc_nodeconf_docker_clear(&dk);
    json_decref(doc);
}
