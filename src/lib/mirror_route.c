/*
 * mirror_route.c - which registry a request for a repository belongs to:
 * the routing rule (README "Routing", docs/CONFIG.md), read from the
 * configuration only, and the small per-upstream lookups that go with it
 * (labels, health).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"

#include <stdio.h>
#include <string.h>

/* Index of the upstream called `s` (name, docker.io alias, or its URL's
 * host[:port] when by_host), -1 when none. s is n bytes. */
static int find_upstream(pc_mirror *m, const char *s, size_t n, bool by_host)
{
    static const char *docker_aliases[] = {"index.docker.io", "registry-1.docker.io"};
    for (int i = 0; i < m->nups; i++) {
        const char *name = m->ups[i].cfg->name;
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return i;
        if (strcmp(name, "docker.io") == 0)
            for (size_t a = 0; a < 2; a++)
                if (strlen(docker_aliases[a]) == n && memcmp(docker_aliases[a], s, n) == 0)
                    return i;
        if (by_host && strlen(m->ups[i].host) == n && memcmp(m->ups[i].host, s, n) == 0)
            return i;
    }
    return -1;
}

int pc_mirror_health_get(pc_mirror *m, int i, pc_mirror_health *out)
{
    if (!m || i < 0 || i >= m->nups)
        return PC_ENOTFOUND;
    pthread_mutex_lock(&m->lock);
    *out = m->ups[i].health;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

const char *pc_mirror_labels(pc_mirror *m, int i)
{
    return m->ups[i].labels;
}

/* Whether bare name `name` is under one of the configured local_prefixes
 * (on a component boundary). */
static bool under_local_prefix(pc_mirror *m, const char *name)
{
    const pc_config_cache *c = m->cfg->cache;
    for (unsigned i = 0; i < c->local_prefixes_count; i++) {
        size_t n = strlen(c->local_prefixes[i]);
        if (strncmp(name, c->local_prefixes[i], n) == 0 && (name[n] == '\0' || name[n] == '/'))
            return true;
    }
    return false;
}

static int route_to(pc_mirror *m, int up, const char *repo, pc_mirror_target *t)
{
    t->where = PC_MIRROR_UPSTREAM;
    t->upstream = up;
    t->name = m->ups[up].cfg->name;
    t->tag_ttl = (long)m->ups[up].cfg->tag_ttl;
    bool library = strcmp(t->name, "docker.io") == 0 && !strchr(repo, '/');
    int n = snprintf(t->repo, sizeof(t->repo), "%s%s", library ? "library/" : "", repo);
    if (n < 0 || (size_t)n >= sizeof(t->repo) || !pc_ref_name_valid(t->repo))
        goto bad;
    n = snprintf(t->local, sizeof(t->local), "%s/%s", t->name, t->repo);
    if (n < 0 || (size_t)n >= sizeof(t->local) || !pc_ref_name_valid(t->local))
        goto bad;
    return 0;
bad:
    pc_error_set("invalid repository name for upstream %s", t->name);
    return PC_EINVAL;
}

static int route_foreign(pc_mirror_target *t, const char *registry, size_t n)
{
    t->where = PC_MIRROR_FOREIGN;
    if (n >= sizeof(t->foreign))
        n = sizeof(t->foreign) - 1;
    memcpy(t->foreign, registry, n);
    t->foreign[n] = '\0';
    pc_error_set("registry %s is not mirrored by this pullcache (configure it as an upstream, "
                 "or pull from it directly)",
                 t->foreign);
    return PC_EUPSTREAM;
}

/*
 * The routing rule (README "Routing", docs/CONFIG.md): a reference for
 * registry X is answered from X's mirror or refused, never from anywhere
 * else.
 *
 *   ?ns=X (containerd)        X configured: X's mirror (a leading "X/" in the
 *                             path is dropped); else FOREIGN
 *   /v2/X/repo, X configured  X's mirror (name, docker.io alias)
 *   /v2/X/repo, X host-like   FOREIGN ('.' or ':' or "localhost")
 *   /v2/repo (bare)           the private registry; with a default upstream
 *                             D, D's read-only mirror except under
 *                             local_prefixes
 *
 * No metastore lookup: what a name means never depends on what was pushed.
 */
int pc_mirror_route(pc_mirror *m, const char *name, const char *ns, pc_mirror_target *t)
{
    memset(t, 0, sizeof(*t));
    t->upstream = -1;
    const char *slash = strchr(name, '/');
    size_t first = slash ? (size_t)(slash - name) : 0;
    int up = -1;

    if (ns && *ns) {
        if ((up = find_upstream(m, ns, strlen(ns), true)) < 0)
            return route_foreign(t, ns, strlen(ns));
        if (slash && find_upstream(m, name, first, false) == up)
            name = slash + 1; /* a mirror host configured with the prefix in its path */
        return route_to(m, up, name, t);
    }
    if (slash && (up = find_upstream(m, name, first, false)) >= 0)
        return route_to(m, up, slash + 1, t);
    if (slash && pc_ref_host_like(name, first))
        return route_foreign(t, name, first);
    if (m->def >= 0 && !under_local_prefix(m, name)) {
        int rc = route_to(m, m->def, name, t);
        t->by_default = true;
        return rc;
    }
    t->where = PC_MIRROR_LOCAL;
    return PC_ENOTFOUND;
}

bool pc_mirror_readonly(pc_mirror *m, const char *name)
{
    pc_mirror_target t;
    int rc = pc_mirror_route(m, name, NULL, &t);
    return rc != PC_ENOTFOUND;
}
