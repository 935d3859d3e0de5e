/*
 * nodeconf.c - reading the registry settings of containerd, the
 * containers-registries.conf family and dockerd out of their parsed files
 * (nodeconf.h). The rules mirror the runtimes': containerd adds https:// to
 * a host without a scheme and /v2 to its path (unless override_path), and
 * grants pull, resolve and push to a host without capabilities;
 * containers/image takes the location as the prefix when none is given and
 * lets a later drop-in's table replace one with the same prefix.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "nodeconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int bad(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errsize)
        vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

#define OOM(err, errsize) bad(err, errsize, "out of memory")

/* A string member: NULL when absent; -1 with a message when another type. */
static int get_str(const json_t *o, const char *k, const char *where, const char **out, char *err,
                   size_t errsize)
{
    const json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return bad(err, errsize, "%s%s is not a string", where, k);
    *out = json_string_value(v);
    return 0;
}

/* A boolean member (false when absent). */
static int get_bool(const json_t *o, const char *k, const char *where, bool *out, char *err,
                    size_t errsize)
{
    const json_t *v = json_object_get(o, k);
    *out = false;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return bad(err, errsize, "%s%s is not true or false", where, k);
    *out = json_is_true(v);
    return 0;
}

/* An object member that must be a table (NULL when absent). */
static int get_table(const json_t *o, const char *k, const char *where, const json_t **out,
                     char *err, size_t errsize)
{
    const json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return bad(err, errsize, "%s%s is not a table", where, k);
    *out = v;
    return 0;
}

/* ---- containerd ---- */

int pc_nodeconf_containerd_read(const json_t *doc, pc_nodeconf_containerd *out, char *err,
                                size_t errsize)
{
    static const char *const plugins[] = {"io.containerd.grpc.v1.cri",
                                          "io.containerd.cri.v1.images"};
    const json_t *pl = NULL, *v = json_object_get(doc, "version");
    memset(out, 0, sizeof(*out));
    if (v && !json_is_integer(v))
        return bad(err, errsize, "version is not an integer");
    out->version = v ? (long)json_integer_value(v) : 0;
    if (get_table(doc, "plugins", "", &pl, err, errsize))
        return -1;
    for (size_t i = 0; pl && i < sizeof(plugins) / sizeof(plugins[0]); i++) {
        const json_t *p = NULL, *reg = NULL, *mirrors = NULL;
        const char *cp = NULL;
        char where[96];
        snprintf(where, sizeof(where), "plugins.\"%s\".", plugins[i]);
        if (get_table(pl, plugins[i], "plugins.", &p, err, errsize) ||
            (p && get_table(p, "registry", where, &reg, err, errsize)))
            return -1;
        if (!reg)
            continue;
        snprintf(where, sizeof(where), "plugins.\"%s\".registry.", plugins[i]);
        if (get_str(reg, "config_path", where, &cp, err, errsize) ||
            get_table(reg, "mirrors", where, &mirrors, err, errsize))
            return -1;
        out->legacy_mirrors |= mirrors && json_object_size(mirrors) > 0;
        if (!out->plugin || (cp && !out->config_path))
            out->plugin = plugins[i];
        if (cp && *cp && !out->config_path && !(out->config_path = strdup(cp)))
            return OOM(err, errsize);
    }
    return 0;
}

void pc_nodeconf_containerd_clear(pc_nodeconf_containerd *c)
{
    free(c->config_path);
    memset(c, 0, sizeof(*c));
}

/* Go's path.Clean for an absolute path: "" and "." parts dropped, ".."
 * taken back, no trailing slash (except "/"). Into out (size >= len + 2). */
static void clean_path(const char *p, char *out)
{
    size_t n = 0;
    out[n++] = '/';
    while (*p) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        if (len == 1 && p[0] == '.') {
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 1 && out[n - 1] != '/')
                n--;
            if (n > 1)
                n--;
        } else {
            if (n > 1)
                out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = '\0';
}

static int host_read(const char *key, const json_t *t, pc_nodeconf_host *h, char *err,
                     size_t errsize)
{
    char where[600];
    const json_t *caps;
    snprintf(where, sizeof(where), "host.\"%.500s\".", key);
    if (!json_is_object(t))
        return bad(err, errsize, "host.\"%.500s\" is not a table", key);
    if (get_bool(t, "skip_verify", where, &h->skip_verify, err, errsize) ||
        get_bool(t, "override_path", where, &h->override_path, err, errsize))
        return -1;
    if ((caps = json_object_get(t, "capabilities"))) {
        size_t i;
        const json_t *c;
        if (!json_is_array(caps))
            return bad(err, errsize, "%scapabilities is not a list", where);
        json_array_foreach(caps, i, c)
        {
            const char *s = json_string_value(c);
            if (!s)
                return bad(err, errsize, "%scapabilities holds a value that is not a string",
                           where);
            if (strcasecmp(s, "pull") == 0)
                h->pull = true;
            else if (strcasecmp(s, "resolve") == 0)
                h->resolve = true;
            else if (strcasecmp(s, "push") == 0)
                h->push = true;
            else
                return bad(err, errsize,
                           "%scapabilities: unknown capability \"%.100s\" (containerd refuses "
                           "the file)",
                           where, s);
        }
        h->caps_given = json_array_size(caps) > 0;
    }
    if (!h->caps_given)
        h->pull = h->resolve = h->push = true;

    /* containerd: https:// unless the key starts with "http" */
    char *url = NULL;
    h->key = strdup(key);
    if (strncmp(key, "http", 4) == 0)
        url = strdup(key);
    else if (asprintf(&url, "https://%s", key) < 0)
        url = NULL;
    if (!h->key || !url) {
        free(url);
        return OOM(err, errsize);
    }
    h->url = url;
    const char *sep = strstr(url, "://");
    if (!sep || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return bad(err, errsize, "host \"%.500s\" is not an http:// or https:// URL", key);
    h->plain = strncmp(url, "http://", 7) == 0;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0)
        return bad(err, errsize, "host \"%.500s\" has no host name", key);
    if (auth[alen] == '?' || auth[alen] == '#')
        return bad(err, errsize, "host \"%.500s\": a query or fragment is not a path", key);
    const char *path = auth + alen;
    char *clean = malloc(strlen(path) + 8);
    if (!clean)
        return OOM(err, errsize);
    if (*path)
        clean_path(path, clean);
    else
        clean[0] = '\0';
    size_t cl = strlen(clean);
    if (!h->override_path && !(cl >= 3 && strcmp(clean + cl - 3, "/v2") == 0))
        strcat(clean, "/v2");
    int n = asprintf(&h->api_root, "%.*s%s", (int)(auth + alen - url), url, clean);
    free(clean);
    if (n < 0) {
        h->api_root = NULL;
        return OOM(err, errsize);
    }
    return 0;
}

int pc_nodeconf_hosts_read(const json_t *doc, pc_nodeconf_hosts *out, char *err, size_t errsize)
{
    const char *server = NULL, *k;
    const json_t *hosts = NULL, *t;
    memset(out, 0, sizeof(*out));
    if (get_str(doc, "server", "", &server, err, errsize) ||
        get_table(doc, "host", "", &hosts, err, errsize))
        return -1;
    if (server && !(out->server = strdup(server)))
        return OOM(err, errsize);
    if (!hosts)
        return 0;
    if (!(out->host = calloc(json_object_size(hosts) + 1, sizeof(*out->host))))
        return OOM(err, errsize);
    json_object_foreach((json_t *)hosts, k, t)
    {
        if (host_read(k, t, &out->host[out->nhost++], err, errsize))
            return -1;
    }
    return 0;
}

void pc_nodeconf_hosts_clear(pc_nodeconf_hosts *h)
{
    for (size_t i = 0; i < h->nhost; i++) {
        free(h->host[i].key);
        free(h->host[i].url);
        free(h->host[i].api_root);
    }
    free(h->host);
    free(h->server);
    memset(h, 0, sizeof(*h));
}

/* ---- containers-registries.conf ---- */

static void registry_free(pc_nodeconf_registry *g)
{
    for (size_t i = 0; i < g->nmirror; i++) {
        free(g->mirror[i].location);
        free(g->mirror[i].pull_from_mirror);
    }
    free(g->mirror);
    free(g->prefix);
    free(g->location);
    free(g->file);
    memset(g, 0, sizeof(*g));
}

static int registry_read(const json_t *t, size_t idx, const char *file, pc_nodeconf_registry *g,
                         char *err, size_t errsize)
{
    char where[64];
    const char *prefix, *location;
    const json_t *mirrors;
    snprintf(where, sizeof(where), "[[registry]] %zu: ", idx + 1);
    memset(g, 0, sizeof(*g));
    if (!json_is_object(t))
        return bad(err, errsize, "registry is not a list of tables");
    if (get_str(t, "prefix", where, &prefix, err, errsize) ||
        get_str(t, "location", where, &location, err, errsize) ||
        get_bool(t, "insecure", where, &g->insecure, err, errsize) ||
        get_bool(t, "blocked", where, &g->blocked, err, errsize) ||
        get_bool(t, "mirror-by-digest-only", where, &g->digest_only, err, errsize))
        return -1;
    if ((!prefix || !*prefix) && (!location || !*location))
        return bad(err, errsize, "%sneither prefix nor location is set", where);
    g->prefix_given = prefix && *prefix;
    if (!(g->prefix = strdup(g->prefix_given ? prefix : location)) ||
        (location && *location && !(g->location = strdup(location))) || !(g->file = strdup(file)))
        return OOM(err, errsize);
    if ((mirrors = json_object_get(t, "mirror"))) {
        size_t i;
        const json_t *m;
        if (!json_is_array(mirrors))
            return bad(err, errsize, "%smirror is not a list of tables", where);
        if (!(g->mirror = calloc(json_array_size(mirrors) + 1, sizeof(*g->mirror))))
            return OOM(err, errsize);
        json_array_foreach(mirrors, i, m)
        {
            pc_nodeconf_mirror *mm = &g->mirror[g->nmirror];
            const char *loc, *pfm;
            char w2[128];
            snprintf(w2, sizeof(w2), "%s[[registry.mirror]] %zu: ", where, i + 1);
            if (!json_is_object(m))
                return bad(err, errsize, "%smirror is not a list of tables", where);
            if (get_str(m, "location", w2, &loc, err, errsize) ||
                get_bool(m, "insecure", w2, &mm->insecure, err, errsize) ||
                get_str(m, "pull-from-mirror", w2, &pfm, err, errsize))
                return -1;
            if (!loc || !*loc)
                return bad(err, errsize, "%slocation is not set", w2);
            if (pfm && strcmp(pfm, "all") != 0 && strcmp(pfm, "digest-only") != 0 &&
                strcmp(pfm, "tag-only") != 0)
                return bad(err, errsize,
                           "%spull-from-mirror \"%.60s\" is not all, digest-only "
                           "or tag-only",
                           w2, pfm);
            g->nmirror++;
            if (!(mm->location = strdup(loc)) || (pfm && !(mm->pull_from_mirror = strdup(pfm))))
                return OOM(err, errsize);
        }
    }
    return 0;
}

int pc_nodeconf_registries_add(pc_nodeconf_registries *r, const json_t *doc, const char *file,
                               char *err, size_t errsize)
{
    const json_t *regs = json_object_get(doc, "registry"), *t;
    size_t i;
    if (json_is_object(json_object_get(doc, "registries")))
        r->v1 = true;
    if (!regs)
        return 0;
    if (!json_is_array(regs))
        return bad(err, errsize, "registry is not a list of tables ([[registry]])");
    json_array_foreach(regs, i, t)
    {
        pc_nodeconf_registry g;
        if (registry_read(t, i, file, &g, err, errsize)) {
            registry_free(&g);
            return -1;
        }
        size_t j;
        for (j = 0; j < r->nreg; j++)
            if (strcmp(r->reg[j].prefix, g.prefix) == 0)
                break;
        if (j < r->nreg) {
            registry_free(&r->reg[j]);
            r->reg[j] = g;
            continue;
        }
        pc_nodeconf_registry *nr = realloc(r->reg, (r->nreg + 1) * sizeof(*nr));
        if (!nr) {
            registry_free(&g);
            return OOM(err, errsize);
        }
        r->reg = nr;
        r->reg[r->nreg++] = g;
    }
    return 0;
}

/* How many characters of ref the prefix covers (0: no match). */
static size_t prefix_match(const char *prefix, const char *ref)
{
    size_t pl = strlen(prefix);
    if (strncmp(prefix, "*.", 2) == 0) {
        size_t hl = strcspn(ref, "/");
        size_t sl = pl - 1; /* ".domain" */
        if (hl > sl && strncmp(ref + hl - sl, prefix + 1, sl) == 0)
            return pl;
        return 0;
    }
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    if (pl == 0 || strncmp(prefix, ref, pl) != 0)
        return 0;
    char c = ref[pl];
    return c == '\0' || c == '/' || c == ':' || c == '@' ? pl : 0;
}

const pc_nodeconf_registry *pc_nodeconf_registries_find(const pc_nodeconf_registries *r,
                                                        const char *ref)
{
    const pc_nodeconf_registry *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < r->nreg; i++) {
        size_t n = prefix_match(r->reg[i].prefix, ref);
        if (n > best_len) {
            best = &r->reg[i];
            best_len = n;
        }
    }
    return best;
}

void pc_nodeconf_registries_clear(pc_nodeconf_registries *r)
{
    for (size_t i = 0; i < r->nreg; i++)
        registry_free(&r->reg[i]);
    free(r->reg);
    memset(r, 0, sizeof(*r));
}

/* ---- docker ---- */

static int str_list(const json_t *doc, const char *k, char ***out, size_t *n, char *err,
                    size_t errsize)
{
    const json_t *a = json_object_get(doc, k), *e;
    size_t i;
    *out = NULL;
    *n = 0;
    if (!a)
        return 0;
    if (!json_is_array(a))
        return bad(err, errsize, "\"%s\" is not a list", k);
    if (!(*out = calloc(json_array_size(a) + 1, sizeof(**out))))
        return OOM(err, errsize);
    json_array_foreach(a, i, e)
    {
        if (!json_is_string(e))
            return bad(err, errsize, "\"%s\" holds a value that is not a string", k);
        if (!((*out)[(*n)++] = strdup(json_string_value(e))))
            return OOM(err, errsize);
    }
    return 0;
}

int pc_nodeconf_docker_read(const json_t *doc, pc_nodeconf_docker *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(doc))
        return bad(err, errsize, "not a JSON object");
    if (str_list(doc, "registry-mirrors", &out->mirrors, &out->nmirrors, err, errsize) ||
        str_list(doc, "insecure-registries", &out->insecure, &out->ninsecure, err, errsize))
        return -1;
    return 0;
}

void pc_nodeconf_docker_clear(pc_nodeconf_docker *d)
{
    for (size_t i = 0; i < d->nmirrors; i++)
        free(d->mirrors[i]);
    for (size_t i = 0; i < d->ninsecure; i++)
        free(d->insecure[i]);
    free(d->mirrors);
    free(d->insecure);
    memset(d, 0, sizeof(*d));
}
