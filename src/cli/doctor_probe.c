/*
 * doctor_probe.c - `pullcache doctor` asking mirrors over HTTP (libcurl):
 * each endpoint a node's files name is probed once (GET /readyz, GET
 * /_pullcache/status through config_check.c, and, where the cache lets us
 * list it, one cached tag per upstream from /_pullcache/cache); then every
 * route a runtime would take is checked with GET <api root>/ and a manifest
 * HEAD of that cached tag. Nothing here spends an upstream pull: a HEAD of a
 * cached tag is answered from the cache's store, or revalidated with an
 * upstream HEAD (free on Docker Hub); a tag that is not cached is never asked
 * for.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define BODY_MAX (1024 * 1024)

static const char accept_manifests[] = "Accept: application/vnd.oci.image.index.v1+json, "
                                       "application/vnd.docker.distribution.manifest.list.v2+json, "
                                       "application/vnd.oci.image.manifest.v1+json, "
                                       "application/vnd.docker.distribution.manifest.v2+json";

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    pc_doc_http *r = ctx;
    size_t add = size * n;
    if (r->len + add > BODY_MAX)
        return 0;
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, add);
    r->len += add;
    nb[r->len] = '\0';
    r->body = nb;
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    pc_doc_http *r = ctx;
    size_t len = size * n;
    static const char dcd[] = "docker-content-digest:", api[] = "docker-distribution-api-version:";
    if (len > sizeof(dcd) && strncasecmp(p, dcd, sizeof(dcd) - 1) == 0) {
        const char *v = p + sizeof(dcd) - 1;
        size_t vl = len - (sizeof(dcd) - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(r->digest, sizeof(r->digest), "%.*s", (int)vl, v);
    } else if (len > sizeof(api) && strncasecmp(p, api, sizeof(api) - 1) == 0) {
        r->registry = strstr(p, "registry/2.0") != NULL;
    }
    return len;
}

int pc_doc_request(const pc_doc *d, const char *method, const char *url, bool insecure,
                   pc_doc_http *r)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    bool head = strcmp(method, "HEAD") == 0;
    if (head && !(hdr = curl_slist_append(NULL, accept_manifests))) {
        curl_easy_cleanup(c);
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pullcache-doctor/" PC_VERSION);
    if (head)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (hdr)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    if (insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (d->ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, d->ca_file);
    }
    CURLcode cc = curl_easy_perform(c);
    r->curl_code = (int)cc;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        r->status = 0;
        r->refused = cc == CURLE_COULDNT_CONNECT;
        r->tls = cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
                 cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CIPHER ||
                 cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_ISSUER_ERROR;
        snprintf(r->error, sizeof(r->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        if (cc == CURLE_WRITE_ERROR)
            snprintf(r->error, sizeof(r->error), "answer larger than %d bytes", BODY_MAX);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return 0;
}

void pc_doc_http_clear(pc_doc_http *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* "h" and "h:443" are one https endpoint, "h" and "h:80" one http one. */
static void norm_hostport(bool plain, const char *hp, char *out, size_t size)
{
    size_t n = strlen(hp);
    const char *dflt = plain ? ":80" : ":443";
    size_t dl = strlen(dflt);
    if (n > dl && strcmp(hp + n - dl, dflt) == 0 && hp[n - dl - 1] != ':')
        n -= dl;
    snprintf(out, size, "%.*s", (int)n, hp);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

bool pc_doc_is_cache(const pc_doc *d, bool plain, const char *hostport)
{
    char a[PC_CFG_MAX_URL], b[PC_CFG_MAX_URL];
    if (!d->have_cache)
        return false;
    norm_hostport(plain, hostport, a, sizeof(a));
    norm_hostport(d->cache.plain, d->cache.hostport, b, sizeof(b));
    return strcmp(a, b) == 0;
}

/* The first fresh (else the first) cached tag of repository repo of the
 * cache at base, into the tags object under up. */
static int pick_tag(pc_doc *d, pc_doc_mirror *m, const char *up, const char *repo)
{
    pc_doc_http r;
    char *url = pc_cfg_printf("%s/_pullcache/cache?repo=%s", m->base, repo);
    int rc = url ? pc_doc_request(d, "GET", url, m->insecure_tls, &r) : -1;
    free(url);
    if (rc)
        return -1;
    json_t *doc = r.status == 200 ? json_loadb(r.body ? r.body : "", r.len, 0, NULL) : NULL;
    pc_doc_http_clear(&r);
    const json_t *tags = json_object_get(doc, "tags"), *pick = NULL, *t;
    size_t i;
    json_array_foreach(tags, i, t)
    {
        if (!json_string_value(json_object_get(t, "tag")) ||
            !json_string_value(json_object_get(t, "digest")))
            continue;
        if (!pick)
            pick = t;
        if (json_is_true(json_object_get(t, "fresh"))) {
            pick = t;
            break;
        }
    }
    size_t ul = strlen(up);
    if (pick &&
        json_object_set_new(m->tags, up,
                            json_pack("{s:s, s:s, s:s}", "repo", repo + ul + 1, "tag",
                                      json_string_value(json_object_get(pick, "tag")), "digest",
                                      json_string_value(json_object_get(pick, "digest")))))
        rc = -1;
    json_decref(doc);
    return rc;
}

/* One cached tag per upstream of the status (or --image's). */
static int find_tags(pc_doc *d, pc_doc_mirror *m)
{
    pc_doc_http r;
    const char *k;
    json_t *v, *ups = json_object_get(m->status, "upstreams"), *e;
    size_t i;
    if (!(m->tags = json_object()))
        return -1;
    json_object_foreach(d->images, k, v)
    {
        if (json_object_set(m->tags, k, v))
            return -1;
    }
    if (!m->status)
        return 0;
    char *url = pc_cfg_printf("%s/_pullcache/cache", m->base);
    int rc = url ? pc_doc_request(d, "GET", url, m->insecure_tls, &r) : -1;
    free(url);
    if (rc)
        return -1;
    json_t *doc = r.status == 200 ? json_loadb(r.body ? r.body : "", r.len, 0, NULL) : NULL;
    pc_doc_http_clear(&r);
    const json_t *repos = json_object_get(doc, "repositories");
    json_array_foreach(ups, i, e)
    {
        const char *up = json_string_value(json_object_get(e, "name"));
        size_t j, ul = up ? strlen(up) : 0;
        const json_t *rj;
        if (!up || json_object_get(m->tags, up))
            continue;
        json_array_foreach(repos, j, rj)
        {
            const char *repo = json_string_value(rj);
            if (repo && strncmp(repo, up, ul) == 0 && repo[ul] == '/') {
                if (pick_tag(d, m, up, repo)) {
                    json_decref(doc);
                    return -1;
                }
                if (json_object_get(m->tags, up))
                    break;
            }
        }
    }
    json_decref(doc);
    return 0;
}

pc_doc_mirror *pc_doc_mirror_get(pc_doc *d, bool plain, const char *hostport, bool insecure_tls)
{
    char hp[PC_CFG_MAX_URL];
    norm_hostport(plain, hostport, hp, sizeof(hp));
    insecure_tls = insecure_tls && !plain;
    for (size_t i = 0; i < d->nmirrors; i++) {
        pc_doc_mirror *m = &d->mirrors[i];
        if (m->plain == plain && m->insecure_tls == insecure_tls && strcmp(m->hostport, hp) == 0)
            return m;
    }
    if (d->nmirrors == PC_DOC_MAX_MIRRORS)
        return NULL;
    pc_doc_mirror *m = &d->mirrors[d->nmirrors++];
    memset(m, 0, sizeof(*m));
    snprintf(m->hostport, sizeof(m->hostport), "%s", hp);
    snprintf(m->base, sizeof(m->base), "%s://%s", plain ? "http" : "https", hp);
    m->plain = plain;
    m->insecure_tls = insecure_tls;

    pc_doc_http r;
    char *url = pc_cfg_printf("%s/readyz", m->base);
    int rc = url ? pc_doc_request(d, "GET", url, insecure_tls, &r) : -1;
    free(url);
    if (rc) {
        d->oom = true;
        return NULL;
    }
    m->readyz = r.status;
    snprintf(m->readyz_err, sizeof(m->readyz_err), "%s", r.error);
    bool answered = r.status != 0;
    pc_doc_http_clear(&r);
    if (!answered) /* nothing more to ask */
        return m;

    pc_cfg_mirror cm = {.plain = plain, .insecure = plain || insecure_tls};
    snprintf(cm.url, sizeof(cm.url), "%s", m->base);
    snprintf(cm.hostport, sizeof(cm.hostport), "%s", hp);
    pc_upstream_resp sr;
    if (pc_cfg_status_get(&cm, d->ca_file, &m->status, &sr) != 0) {
        d->oom = true;
        return NULL;
    }
    m->status_http = sr.status;
    pc_upstream_resp_clear(&sr);
    if (find_tags(d, m)) {
        d->oom = true;
        return NULL;
    }
    return m;
}

void pc_doc_mirrors_free(pc_doc *d)
{
    for (size_t i = 0; i < d->nmirrors; i++) {
        json_decref(d->mirrors[i].status);
        json_decref(d->mirrors[i].tags);
    }
    d->nmirrors = 0;
}

size_t pc_doc_expected(pc_doc *d, const char **names)
{
    size_t n = 0;
    if (d->nups) {
        for (size_t i = 0; i < d->nups; i++)
            names[n++] = d->ups[i];
        return n;
    }
    if (d->have_cache) {
        pc_doc_mirror *m = pc_doc_mirror_get(d, d->cache.plain, d->cache.hostport,
                                             d->cache.insecure && !d->cache.plain);
        size_t i;
        json_t *e;
        json_array_foreach(m ? json_object_get(m->status, "upstreams") : NULL, i, e)
        {
            const char *s = json_string_value(json_object_get(e, "name"));
            if (s && n < PC_CFG_MAX_UPSTREAMS)
                names[n++] = s;
        }
    }
    if (n == 0)
        names[n++] = "docker.io";
    return n;
}

/* Split scheme://hostport[/path] (path without a trailing slash). */
static bool split_url(const char *url, bool *plain, char *hp, size_t hpsize, const char **path)
{
    if (strncmp(url, "http://", 7) == 0)
        *plain = true;
    else if (strncmp(url, "https://", 8) == 0)
        *plain = false;
    else
        return false;
    const char *a = url + (*plain ? 7 : 8);
    size_t n = strcspn(a, "/");
    if (n == 0 || n >= hpsize)
        return false;
    snprintf(hp, hpsize, "%.*s", (int)n, a);
    *path = a + n;
    return true;
}

pc_doc_level pc_doc_rt_level(pc_doc_rt rt)
{
    if (rt == PC_DOC_RT_OK)
        return PC_DOC_OK;
    if (rt == PC_DOC_RT_NOT_READY || rt == PC_DOC_RT_NOT_PULLCACHE || rt == PC_DOC_RT_AUTH)
        return PC_DOC_WARN;
    return PC_DOC_ERROR;
}

char *pc_doc_rt_server_fix(const pc_doc *d, pc_doc_rt rt, const char *up)
{
    char ubuf[PC_CFG_MAX_NAME + 16];
    switch (rt) {
    case PC_DOC_RT_NOT_MIRRORED:
        return pc_cfg_printf("add %s to the cache's upstreams and restart it: in its config file\n"
                             "  upstreams:\n"
                             "    - {name: %s, url: %s}\n"
                             "or `pullcache serve --upstream %s=%s` (with its other --upstream "
                             "flags: they replace the built-in docker.io)",
                             up, up, pc_cfg_upstream_url(up, ubuf, sizeof(ubuf)), up,
                             pc_cfg_upstream_url(up, ubuf, sizeof(ubuf)));
    case PC_DOC_RT_BARE_OTHER:
        return pc_cfg_printf("run the cache with `pullcache serve --default-upstream %s` (or "
                             "cache: {default_upstream: %s} in its config file)",
                             up, up);
    case PC_DOC_RT_NOT_READY:
        return pc_cfg_printf("see what fails in %s/readyz (storage or meta store) and the "
                             "cache's log",
                             pc_doc_cache_url(d));
    default:
        return NULL;
    }
}

pc_doc_rt pc_doc_check_route(pc_doc *d, const char *up, const char *api_root, bool insecure,
                             pc_doc_route route, char *msg, size_t msgsize)
{
    char hp[PC_CFG_MAX_URL];
    const char *path;
    bool plain;
    pc_doc_http r;
    pc_doc_rt rt = PC_DOC_RT_OK;
    char *url = NULL;
    msg[0] = '\0';
    if (!split_url(api_root, &plain, hp, sizeof(hp), &path)) {
        snprintf(msg, msgsize, "%s is not an http:// or https:// URL", api_root);
        return PC_DOC_RT_NOT_REGISTRY;
    }
    bool other = d->have_cache && !pc_doc_is_cache(d, plain, hp);

    /* the API root: a registry answers 200 or 401 with its version header */
    if (!(url = pc_cfg_printf("%s/", api_root)) || pc_doc_request(d, "GET", url, insecure, &r)) {
        free(url);
        d->oom = true;
        return PC_DOC_RT_UNREACHABLE;
    }
    free(url);
    pc_doc_http_clear(&r);
    if (r.status == 0) {
        if (other) {
            snprintf(msg, msgsize, "%s is not the cache (%s), and nothing answers there: %s", hp,
                     d->cache.hostport, r.error);
            return PC_DOC_RT_NOT_CACHE;
        }
        if (r.tls && !plain) {
            pc_doc_http p;
            char *purl = pc_cfg_printf("http://%s%s/", hp, path);
            if (!purl || pc_doc_request(d, "GET", purl, false, &p)) {
                free(purl);
                d->oom = true;
                return PC_DOC_RT_TLS;
            }
            free(purl);
            pc_doc_http_clear(&p);
            if (p.status != 0) {
                snprintf(msg, msgsize,
                         "%s speaks plain HTTP, but the file says https://: the TLS handshake "
                         "fails (%s)",
                         hp, r.error);
                return PC_DOC_RT_TLS_PLAIN;
            }
            snprintf(msg, msgsize, "TLS to %s fails: %s", hp, r.error);
            return PC_DOC_RT_TLS;
        }
        snprintf(msg, msgsize, "nothing answers at %s: %s", hp, r.error);
        return PC_DOC_RT_UNREACHABLE;
    }
    if (!((r.status == 200 || r.status == 401) && r.registry)) {
        snprintf(msg, msgsize,
                 "GET %s/ answered HTTP %ld%s: that is not a registry's API root (a wrong path?)",
                 api_root, r.status, r.registry ? "" : " without Docker-Distribution-API-Version");
        return other ? PC_DOC_RT_NOT_CACHE : PC_DOC_RT_NOT_REGISTRY;
    }
    if (other) {
        snprintf(msg, msgsize, "%s answers as a registry, but it is not the cache (%s)", hp,
                 d->cache.hostport);
        return PC_DOC_RT_NOT_CACHE;
    }

    pc_doc_mirror *m = pc_doc_mirror_get(d, plain, hp, insecure);
    if (!m) {
        snprintf(msg, msgsize, "too many mirrors to check");
        return PC_DOC_RT_UNREACHABLE;
    }
    if (m->readyz != 200 && m->readyz != 503) {
        char why[300];
        if (m->readyz)
            snprintf(why, sizeof(why), "HTTP %ld", m->readyz);
        else
            snprintf(why, sizeof(why), "%s", m->readyz_err);
        snprintf(msg, msgsize,
                 "%s answers as a registry but not as a pullcache (GET /readyz: %s): whether "
                 "it caches %s was not checked",
                 hp, why, up);
        return PC_DOC_RT_NOT_PULLCACHE;
    }
    if (m->status) {
        const char *def = json_string_value(
            json_object_get(json_object_get(m->status, "cache"), "default_upstream"));
        if (route != PC_DOC_ROUTE_BARE && !pc_cfg_status_has(m->status, up)) {
            snprintf(msg, msgsize,
                     "the cache at %s does not mirror %s: it answers 404 for every %s image", hp,
                     up, up);
            return PC_DOC_RT_NOT_MIRRORED;
        }
        if (route == PC_DOC_ROUTE_BARE && (!def || strcmp(def, up) != 0)) {
            snprintf(msg, msgsize,
                     "the cache at %s serves bare /v2/<repository> paths from %s, not %s%s", hp,
                     def ? def : "(unknown)", up,
                     def && strcmp(def, "none") == 0 ? " (none: its private registry)" : "");
            return PC_DOC_RT_BARE_OTHER;
        }
    }

    const json_t *t = json_object_get(m->tags, up);
    const char *repo = json_string_value(json_object_get(t, "repo"));
    const char *tag = json_string_value(json_object_get(t, "tag"));
    const char *want = json_string_value(json_object_get(t, "digest"));
    if (!repo || !tag) {
        if (m->readyz == 503) {
            snprintf(msg, msgsize, "the cache at %s is not ready (GET /readyz: 503)", hp);
            return PC_DOC_RT_NOT_READY;
        }
        if (m->status)
            snprintf(msg, msgsize,
                     "%s is ready and mirrors %s there; no %s tag is cached yet to resolve "
                     "(pull one through the cache, or name one with --image)",
                     m->base, up, up);
        else
            snprintf(msg, msgsize,
                     "%s is ready; its status needs an admin's credentials (HTTP %ld), so "
                     "whether it mirrors %s was not checked, and no tag was resolved (name one "
                     "the cache holds with --image)",
                     m->base, m->status_http, up);
        return PC_DOC_RT_OK;
    }
    switch (route) {
    case PC_DOC_ROUTE_NS:
        url = pc_cfg_printf("%s/%s/manifests/%s?ns=%s", api_root, repo, tag, up);
        break;
    case PC_DOC_ROUTE_PATH:
        url = pc_cfg_printf("%s/%s/%s/manifests/%s", api_root, up, repo, tag);
        break;
    case PC_DOC_ROUTE_BARE:
        url = pc_cfg_printf("%s/%s/manifests/%s", api_root, repo, tag);
        break;
    }
    if (!url || pc_doc_request(d, "HEAD", url, insecure, &r)) {
        free(url);
        d->oom = true;
        return PC_DOC_RT_UNREACHABLE;
    }
    pc_doc_http_clear(&r);
    if (r.status == 200 && (!want || strcmp(want, r.digest) == 0)) {
        snprintf(msg, msgsize, "HEAD %s answered %s%s", url, r.digest[0] ? r.digest : "200",
                 m->readyz == 503 ? "; but the cache is not ready (GET /readyz: 503)" : "");
        rt = m->readyz == 503 ? PC_DOC_RT_NOT_READY : PC_DOC_RT_OK;
    } else if (r.status == 200) {
        snprintf(msg, msgsize, "HEAD %s answered %s, but the cache holds %s for %s/%s:%s", url,
                 r.digest[0] ? r.digest : "no digest", want, up, repo, tag);
        rt = PC_DOC_RT_TAG_OTHER;
    } else if (r.status == 401 || r.status == 403) {
        snprintf(msg, msgsize,
                 "HEAD %s answered %ld: the cache's access control wants credentials, which "
                 "doctor does not send, so the tag was not resolved (the route itself answers)",
                 url, r.status);
        rt = PC_DOC_RT_AUTH;
    } else if (r.status == 404) {
        snprintf(msg, msgsize,
                 "HEAD %s answered 404 for %s/%s:%s, which the cache holds: the request does not "
                 "reach its %s mirror",
                 url, up, repo, tag, up);
        rt = PC_DOC_RT_TAG_MISSING;
    } else {
        snprintf(msg, msgsize, "HEAD %s: %s%ld%s%s", url, r.status ? "HTTP " : "", r.status,
                 r.error[0] ? " " : "", r.error);
        rt = PC_DOC_RT_TAG_OTHER;
    }
    free(url);
    return rt;
}
