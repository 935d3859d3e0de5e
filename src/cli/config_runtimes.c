/*
 * config_runtimes.c - the files `pullcache config` generates for each
 * container runtime, as text (no I/O here except reading an existing
 * daemon.json to merge into):
 *
 *   containerd  one hosts.toml per upstream, /etc/containerd/certs.d/<upstream>/;
 *               containerd adds ?ns=<upstream> to every mirror request
 *   podman      one containers-registries.conf drop-in (also CRI-O, buildah,
 *   cri-o       skopeo) whose mirrors use pullcache's /v2/<upstream>/<repo> path
 *   docker      daemon.json "registry-mirrors" (Docker Hub only; bare /v2 paths,
 *               which the server serves from docker.io only with
 *               --default-upstream docker.io)
 *
 * The formats follow containerd's docs/hosts.md, containers/image's
 * containers-registries.conf(5) and dockerd's daemon.json.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "config_cmd.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- small helpers ---------------------------------------------------------- */

char *pc_cfg_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

int pc_cfg_append(char **s, const char *text)
{
    size_t have = *s ? strlen(*s) : 0;
    bool nl = have && (*s)[have - 1] != '\n';
    char *r = pc_cfg_printf("%s%s%s", *s ? *s : "", nl ? "\n" : "", text);
    if (!r)
        return -1;
    free(*s);
    *s = r;
    return 0;
}

void pc_cfg_output_free(pc_cfg_output *o)
{
    for (size_t i = 0; i < o->nfiles; i++) {
        free(o->files[i].path);
        free(o->files[i].rel);
        free(o->files[i].content);
    }
    free(o->notes);
    free(o->warnings);
    memset(o, 0, sizeof(*o));
}

/* Add a file whose path is dir/rel; takes rel and content. 0 or -1 (out of
 * memory). */
static int gen_add(pc_cfg_output *o, const char *dir, char *rel, char *content)
{
    char *path = rel && content ? pc_cfg_printf("%s/%s", dir, rel) : NULL;
    if (!path || o->nfiles == PC_CFG_MAX_UPSTREAMS) {
        free(path);
        free(rel);
        free(content);
        return -1;
    }
    o->files[o->nfiles++] = (pc_cfg_file){path, rel, content};
    return 0;
}

const char *pc_cfg_upstream_url(const char *name, char *buf, size_t size)
{
    if (strcmp(name, "docker.io") == 0)
        return "https://registry-1.docker.io";
    snprintf(buf, size, "https://%s", name);
    return buf;
}

char *pc_cfg_json_text(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    char *r = s ? pc_cfg_printf("%s\n", s) : NULL;
    free(s);
    return r;
}

/* ---- containerd ------------------------------------------------------------- */

int pc_cfg_build_containerd(const pc_cfg_mirror *m, const char *const *ups, size_t n,
                            pc_cfg_output *out)
{
    static const char dir[] = PC_CFG_CONTAINERD_DIR;
    char ubuf[PC_CFG_MAX_NAME + 16];
    for (size_t i = 0; i < n; i++) {
        pc_buf c = {0};
        pc_buf_printf(&c,
                      PC_CFG_MARK
                      "\n"
                      "# Pull %s images through the pullcache mirror at %s.\n"
                      "# containerd tries the mirror first, adding ?ns=%s to each request\n"
                      "# (pullcache routes by it), and falls back to server if the mirror fails.\n"
                      "server = \"%s\"\n"
                      "\n",
                      ups[i], m->url, ups[i], pc_cfg_upstream_url(ups[i], ubuf, sizeof(ubuf)));
        if (m->plain)
            pc_buf_printf(&c, "# Plain HTTP: containerd uses no TLS for an http:// host.\n");
        pc_buf_printf(&c,
                      "[host.\"%s\"]\n"
                      "  capabilities = [\"pull\", \"resolve\"]\n",
                      m->url);
        if (m->insecure && !m->plain)
            pc_buf_printf(
                &c, "  skip_verify = true  # --plain-http: the certificate is not verified\n");
        char *content = pc_buf_take(&c);
        if (gen_add(out, dir, pc_cfg_printf("%s/hosts.toml", ups[i]), content))
            return -1;
    }

    pc_buf nt = {0};
    pc_buf_printf(&nt,
                  "containerd reads these files only when its CRI registry config_path points at\n"
                  "%s. In /etc/containerd/config.toml:\n"
                  "  containerd 1.x (version = 2):\n"
                  "    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
                  "      config_path = \"%s\"\n"
                  "  containerd 2.x (version = 3):\n"
                  "    [plugins.\"io.containerd.cri.v1.images\".registry]\n"
                  "      config_path = \"%s\"\n"
                  "Setting config_path needs a containerd restart; files under it take effect\n"
                  "without one. ctr uses them with: ctr images pull --hosts-dir %s REF\n",
                  dir, dir, dir, dir);
    out->notes = pc_buf_take(&nt);
    return out->notes ? 0 : -1;
}

/* ---- podman, CRI-O (containers-registries.conf v2) -------------------------- */

int pc_cfg_build_registries_conf(const pc_cfg_mirror *m, const char *const *ups, size_t n,
                                 pc_cfg_output *out)
{
    pc_buf c = {0};
    pc_buf_printf(&c,
                  "# containers-registries.conf drop-in (podman, CRI-O, buildah, skopeo):\n"
                  "# pull through the pullcache mirror at %s, which serves\n"
                  "# each upstream under /v2/<upstream>/<repository>. The registry itself\n"
                  "# is tried when the mirror fails.\n",
                  m->url);
    for (size_t i = 0; i < n; i++) {
        pc_buf_printf(&c,
                      "\n"
                      "[[registry]]\n"
                      "prefix = \"%s\"\n"
                      "location = \"%s\"\n"
                      "\n"
                      "[[registry.mirror]]\n"
                      "location = \"%s/%s\"\n",
                      ups[i], ups[i], m->hostport, ups[i]);
        if (m->insecure)
            pc_buf_printf(&c, "insecure = true\n");
    }
    char *content = pc_buf_take(&c);
    if (gen_add(out, PC_CFG_REGISTRIES_DIR, strdup(PC_CFG_REGISTRIES_DROPIN), content))
        return -1;

    out->notes = pc_cfg_printf("podman, buildah and skopeo read the drop-in at their next run;\n"
                               "CRI-O re-reads it on `systemctl reload crio`.%s\n",
                               m->insecure ? "\ninsecure = true: plain HTTP or unverified TLS "
                                             "to the mirror is allowed."
                                           : "");
    return out->notes ? 0 : -1;
}

/* ---- docker (daemon.json) ---------------------------------------------------- */

/* The daemon.json keys for the mirror, as a new JSON object. */
static json_t *docker_keys(const pc_cfg_mirror *m)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "registry-mirrors", json_pack("[s]", m->url)) ||
        (m->insecure &&
         json_object_set_new(o, "insecure-registries", json_pack("[s]", m->hostport)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int pc_cfg_build_docker(const pc_cfg_mirror *m, const char *const *ups, size_t n,
                        pc_cfg_output *out)
{
    json_t *keys = docker_keys(m);
    char *content = keys ? pc_cfg_json_text(keys) : NULL;
    json_decref(keys);
    if (gen_add(out, PC_CFG_DOCKER_DIR, strdup(PC_CFG_DOCKER_JSON), content))
        return -1;

    pc_buf w = {0};
    size_t others = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ups[i], "docker.io") != 0) {
            pc_buf_printf(&w, "%s%s", others ? ", " : "warning: ", ups[i]);
            others++;
        }
    if (others)
        pc_buf_printf(&w,
                      " %s not mirrored: Docker's registry-mirrors\n"
                      "apply to Docker Hub only. Pull %s by pullcache's host-prefix path\n"
                      "instead (docker pull %s/<upstream>/<repository>:<tag>),\n"
                      "or use the containerd or podman settings.\n",
                      others == 1 ? "is" : "are", others == 1 ? "it" : "them", m->hostport);
    char *warn = pc_buf_take(&w);
    if (!warn)
        return -1;
    if (others)
        out->warnings = warn;
    else
        free(warn);

    out->notes =
        pc_cfg_printf("After changing daemon.json, restart dockerd: systemctl restart docker.\n"
                      "Docker sends Docker Hub pulls to the mirror as bare /v2/<repository>\n"
                      "paths: the server must serve those from docker.io. Run it with\n"
                      "  pullcache serve --default-upstream docker.io\n"
                      "or set cache: {default_upstream: docker.io} in its config file; names\n"
                      "under cache.local_prefixes (--local-prefix) stay private and pushable.%s\n",
                      m->insecure ? "\ninsecure-registries lets Docker use plain HTTP or "
                                    "unverified TLS\nto the mirror."
                                  : "");
    return out->notes ? 0 : -1;
}

int pc_cfg_merge_daemon_json(const char *path, const pc_cfg_mirror *m, char **out)
{
    json_error_t err;
    json_t *keys = NULL, *doc;
    const char *k;
    json_t *v;
    int rc = -1;
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 1;
    doc = json_load_file(path, 0, &err);
    if (!doc || !json_is_object(doc)) {
        fprintf(stderr,
                "pullcache config: %s exists but is not a JSON object (%s); not touching it\n",
                path, doc ? "another JSON type" : err.text);
        goto done;
    }
    if (!(keys = docker_keys(m)))
        goto oom;
    json_object_foreach(keys, k, v)
    {
        json_t *have = json_object_get(doc, k);
        if (!have) {
            if (json_object_set(doc, k, v))
                goto oom;
            continue;
        }
        if (!json_is_array(have)) {
            fprintf(stderr, "pullcache config: %s: \"%s\" is not a list; not touching it\n", path,
                    k);
            goto done;
        }
        const char *want = json_string_value(json_array_get(v, 0));
        size_t i;
        json_t *e;
        bool found = false;
        json_array_foreach(have, i, e)
        {
            const char *s = json_string_value(e);
            /* registry-mirrors may end with a slash; dockerd adds one anyway */
            found |= s && strncmp(s, want, strlen(want)) == 0 &&
                     (s[strlen(want)] == '\0' || strcmp(s + strlen(want), "/") == 0);
        }
        if (!found && json_array_append_new(have, json_string(want)))
            goto oom;
    }
    if (!(*out = pc_cfg_json_text(doc)))
        goto oom;
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "pullcache config: out of memory\n");
done:
    json_decref(keys);
    json_decref(doc);
    return rc;
}
