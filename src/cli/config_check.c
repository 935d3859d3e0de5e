/*
 * config_check.c - before `pullcache config` writes anything, ask the mirror
 * which upstreams it serves: GET <mirror>/_pullcache/status (docs/STATUS.md)
 * lists them in "upstreams" and says where bare /v2/<repository> paths go in
 * "cache.default_upstream". Settings for an upstream the server does not
 * mirror would send nodes to a mirror that answers 404 for every image, and
 * Docker's registry-mirrors (bare paths) only work when the server serves
 * those from docker.io; both are refused (or, with --force, warned about).
 * A mirror that cannot be asked (down, TLS, credentials needed, not a
 * pullcache) is a warning: the files are still written.
 *
 * One request with the registry client (src/lib/upstream.h), 2 s to
 * connect, no credentials sent.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "config_cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream.h"

#define STATUS_PATH "/_pullcache/status"

/* names joined as "a", "a and b", "a, b and c" (caller frees), NULL when
 * out of memory. */
static char *join(const char *const *names, size_t n)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", names[i]);
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

bool pc_cfg_status_has(const json_t *doc, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "upstreams"), i, e)
    {
        const char *s = json_string_value(json_object_get(e, "name"));
        if (s && strcmp(s, name) == 0)
            return true;
    }
    return false;
}

/* Append a warning paragraph (formatted) to out->warnings. 0 or -1. */
static int warn(pc_cfg_output *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(pc_cfg_output *out, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    int rc = pc_cfg_append(&out->warnings, s);
    free(s);
    return rc;
}

/* The server could not tell us: a warning saying why. 0 or -1. */
static int not_checked(const pc_cfg_mirror *m, const pc_upstream_resp *r, const char *assumed,
                       pc_cfg_output *out)
{
    switch (r->cls) {
    case PC_UP_OK: /* 2xx, but not pullcache's status document */
        return warn(out,
                    "warning: %s answered GET " STATUS_PATH " with a document that\n"
                    "is not pullcache's status, so which upstreams it mirrors was not\n"
                    "checked; the settings assume it mirrors %s.\n",
                    m->url, assumed);
    case PC_UP_DENIED:
        return warn(out,
                    "warning: %s wants an admin's credentials for " STATUS_PATH "\n"
                    "(its access control is on), so which upstreams it mirrors was not\n"
                    "checked; the settings assume it mirrors %s.\n",
                    m->url, assumed);
    case PC_UP_NOT_FOUND:
    case PC_UP_CLIENT:
    case PC_UP_SERVER:
    case PC_UP_TOO_MANY:
        if (r->status == 401 || r->status == 403)
            return warn(out,
                        "warning: %s wants an admin's credentials for " STATUS_PATH "\n"
                        "(HTTP %ld: its access control is on), so which upstreams it\n"
                        "mirrors was not checked; the settings assume it mirrors %s.\n",
                        m->url, r->status, assumed);
        return warn(out,
                    "warning: %s answered GET " STATUS_PATH " with HTTP %ld: it is\n"
                    "not a pullcache, or one too old to say which upstreams it mirrors,\n"
                    "so that was not checked; the settings assume it mirrors %s.\n",
                    m->url, r->status, assumed);
    default:
        return warn(out,
                    "warning: could not ask %s which upstreams it mirrors:\n"
                    "GET " STATUS_PATH ": %s (%s).\n"
                    "The settings assume it mirrors %s. Check the URL and that the\n"
                    "server runs there,%s or skip this check with --no-check.\n",
                    m->url, pc_up_class_str(r->cls),
                    r->error_message[0] ? r->error_message : "no answer", assumed,
                    r->cls == PC_UP_TLS ? " give --ca-file FILE for a certificate of your own\nCA,"
                                        : "");
    }
}

/* The upstreams asked for that the server lacks: refuse, or warn with
 * --force. Returns 0, PC_CFG_REFUSED or -1 (out of memory). */
static int missing(const pc_cfg_mirror *m, const pc_cfg_check_opts *o, const json_t *have,
                   const char *const *miss, size_t nmiss, pc_cfg_output *out)
{
    const char *names[PC_CFG_MAX_UPSTREAMS];
    char ubuf[PC_CFG_MAX_NAME + 16];
    char *flags = NULL, *yaml = NULL, *lmiss = NULL, *lhave = NULL;
    size_t nhave = 0, flen = 0, ylen = 0, i;
    json_t *e;
    int rc = -1;
    FILE *ff = open_memstream(&flags, &flen), *yf = open_memstream(&yaml, &ylen);
    if (!ff || !yf)
        goto done;
    /* serve's --upstream flags replace the built-in docker.io: name every one */
    json_array_foreach(have, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        const char *u = json_string_value(json_object_get(e, "url"));
        if (n && nhave < PC_CFG_MAX_UPSTREAMS)
            names[nhave++] = n;
        if (n && u)
            fprintf(ff, " --upstream %s=%s", n, u);
    }
    for (size_t j = 0; j < nmiss; j++) {
        const char *url = pc_cfg_upstream_url(miss[j], ubuf, sizeof(ubuf));
        fprintf(ff, " --upstream %s=%s", miss[j], url);
        fprintf(yf, "    - {name: %s, url: %s}\n", miss[j], url);
    }
    bool bad = fclose(ff) != 0;
    bad |= fclose(yf) != 0;
    ff = yf = NULL;
    if (bad || !(lmiss = join(miss, nmiss)) || !(lhave = join(names, nhave)))
        goto done;
    const char *them = nmiss == 1 ? "it" : "them";
    if (o->force) {
        rc = warn(out,
                  "warning: %s does not mirror %s\n"
                  "(it mirrors %s); writing the settings anyway (--force).\n"
                  "Until the server has %s, nodes fall back to the registry itself.\n"
                  "Add %s with\n"
                  "  pullcache serve%s\n"
                  "or in its config file:\n"
                  "  upstreams:\n"
                  "%s",
                  m->url, lmiss, nhave ? lhave : "no registry", them, them, flags, yaml);
        goto done;
    }
    fprintf(stderr,
            "pullcache config: %s does not mirror %s\n"
            "(it mirrors %s): it cannot serve %s images to nodes.\n"
            "Add %s to the server and restart it:\n"
            "  pullcache serve%s\n"
            "(flags replace the built-in docker.io: this line keeps the ones it has)\n"
            "or in its config file:\n"
            "  upstreams:\n"
            "%s"
            "Or leave %s out, or write the settings anyway with --force.\n",
            m->url, lmiss, nhave ? lhave : "no registry", lmiss, them, flags, yaml,
            nmiss == 1 ? "that --upstream" : "those --upstream flags");
    rc = PC_CFG_REFUSED;
done:
    if (ff)
        fclose(ff);
    if (yf)
        fclose(yf);
    free(lmiss);
    free(lhave);
    free(flags);
    free(yaml);
    return rc;
}

/* Docker's registry-mirrors send bare /v2/<repository> paths: the server
 * must serve them from docker.io. def: its cache.default_upstream. */
static int bare_paths(const pc_cfg_mirror *m, const pc_cfg_check_opts *o, const char *def,
                      pc_cfg_output *out)
{
    static const char fix[] =
        "Run it with --default-upstream docker.io (cache.default_upstream in its config).\n";
    if (strcmp(def, "docker.io") == 0)
        return 0;
    if (strcmp(def, "none") == 0)
        return warn(out,
                    "warning: %s does not serve Docker Hub at bare /v2/<repository>\n"
                    "paths (its cache.default_upstream is none: they are its private registry),\n"
                    "so Docker nodes would pull nothing through it and fall back to Docker Hub.\n"
                    "%s",
                    m->url, fix);
    if (o->force)
        return warn(out,
                    "warning: %s serves bare /v2/<repository> paths from %s,\n"
                    "not docker.io: Docker nodes would get %s's images for Docker Hub\n"
                    "names (writing the settings anyway: --force).\n%s",
                    m->url, def, def, fix);
    fprintf(stderr,
            "pullcache config: %s serves bare /v2/<repository> paths from %s,\n"
            "not docker.io: Docker nodes would get %s's images for Docker Hub names.\n"
            "%sOr write the settings anyway with --force.\n",
            m->url, def, def, fix);
    return PC_CFG_REFUSED;
}

int pc_cfg_status_get(const pc_cfg_mirror *m, const char *ca_file, json_t **doc,
                      pc_upstream_resp *r)
{
    pc_upstream *u = NULL;
    /* no credentials: the status needs an admin's, and this is not the place
     * to send them; --plain-http on an https:// mirror means the nodes do not
     * verify it either */
    pc_upstream_opts uo = {
        .name = m->hostport,
        .url = m->url,
        .connect_timeout_ms = 2000,
        .read_timeout_ms = 5000,
        .max_connections = 1,
        .ca_file = ca_file,
        .insecure_tls = !m->plain && m->insecure && !ca_file,
    };
    *doc = NULL;
    memset(r, 0, sizeof(*r));
    if (pc_upstream_new(&u, &uo) != 0) {
        fprintf(stderr, "pullcache: cannot set up a client for %s: %s\n", m->url, pc_error_last());
        return -1;
    }
    if (pc_upstream_get(u, STATUS_PATH, 0, r) != 0) {
        pc_upstream_free(u);
        fprintf(stderr, "pullcache: out of memory\n");
        return -1;
    }
    pc_upstream_free(u);
    if (r->cls == PC_UP_OK)
        *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
    if (*doc && !json_is_array(json_object_get(*doc, "upstreams"))) {
        json_decref(*doc);
        *doc = NULL;
    }
    return 0;
}

int pc_cfg_check(const pc_cfg_mirror *m, const pc_cfg_check_opts *o, const char *const *ups,
                 size_t n, pc_cfg_output *out)
{
    pc_upstream_resp r;
    json_t *doc = NULL;
    const char *miss[PC_CFG_MAX_UPSTREAMS], *ok[PC_CFG_MAX_UPSTREAMS];
    size_t nmiss = 0, nok = 0;
    char *assumed = join(ups, n), *lok = NULL, *note = NULL;
    int rc = -1;

    memset(&r, 0, sizeof(r));
    if (!assumed)
        goto oom;
    if (pc_cfg_status_get(m, o->ca_file, &doc, &r) != 0)
        goto done;
    const json_t *list = json_object_get(doc, "upstreams");
    if (!json_is_array(list)) {
        if (not_checked(m, &r, assumed, out))
            goto oom;
        rc = 0;
        goto done;
    }

    for (size_t i = 0; i < n; i++) {
        if (pc_cfg_status_has(doc, ups[i]))
            ok[nok++] = ups[i];
        else
            miss[nmiss++] = ups[i];
    }
    if (nmiss && (rc = missing(m, o, list, miss, nmiss, out)) != 0) {
        if (rc < 0)
            goto oom;
        goto done;
    }
    const char *def =
        json_string_value(json_object_get(json_object_get(doc, "cache"), "default_upstream"));
    if (o->bare_paths && def && (rc = bare_paths(m, o, def, out)) != 0) {
        if (rc < 0)
            goto oom;
        goto done;
    }
    if (nok) {
        bool bare = o->bare_paths && def && strcmp(def, "docker.io") == 0;
        if (!(lok = join(ok, nok)) ||
            !(note = pc_cfg_printf("Checked %s" STATUS_PATH ": it mirrors %s%s", m->url, lok,
                                   bare ? ",\nat bare /v2/<repository> paths too." : ".")) ||
            pc_cfg_append(&out->notes, note))
            goto oom;
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "pullcache config: out of memory\n");
    rc = -1;
done:
    json_decref(doc);
    pc_upstream_resp_clear(&r);
    free(assumed);
    free(lok);
    free(note);
    return rc;
}
