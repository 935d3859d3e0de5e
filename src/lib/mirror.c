/*
 * mirror.c - the pull-through cache's set-up and manifest rules (which
 * upstream a request belongs to is mirror_route.c): tags served within
 * their TTL without upstream contact, revalidation with HEAD (never a GET for a known tag),
 * GET only for new digests, stale answers while the upstream fails, the
 * registry error a client gets on a miss, and where the upstream's pull
 * budget (budget.h, mirror_budget.c) has its say when the upstream has a
 * reserve: below it or exhausted, expired tags are served without
 * revalidation; while a 429's Retry-After runs, misses are refused without
 * asking upstream.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* ---- set-up ---- */

/* Read a secret from a file (first line) or an environment variable into
 * *out (malloc'd). Returns 0 (also when neither is given: *out NULL). */
static int read_secret(const char *upname, const char *what, const char *file, const char *env,
                       char **out)
{
    *out = NULL;
    if (env) {
        const char *v = getenv(env);
        if (!v || !*v) {
            pc_error_set("upstream %s: environment variable %s (for the %s) is not set", upname,
                         env, what);
            return PC_EINVAL;
        }
        return (*out = strdup(v)) ? 0 : PC_ENOMEM;
    }
    if (!file)
        return 0;
    char buf[4096];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pc_error_set("upstream %s: cannot read the %s file %s: %s", upname, what, file,
                     strerror(errno));
        return PC_EINVAL;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        pc_error_set("upstream %s: cannot read the %s file %s", upname, what, file);
        return PC_EINVAL;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!buf[0]) {
        pc_error_set("upstream %s: the %s file %s is empty", upname, what, file);
        return PC_EINVAL;
    }
    *out = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return *out ? 0 : PC_ENOMEM;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* Every series of an upstream present from the start, at zero, so alerts
 * and rate() see a value before the first event. */
static void zero_series(const char *up)
{
    static const char *per_kind[] = {"pullcache_cache_hits_total", "pullcache_cache_misses_total",
                                     "pullcache_cache_stale_total"};
    static const char *kinds[] = {"manifest", "blob", "tags", "referrers"};
    static const char *plain[] = {
        "pullcache_upstream_bytes_total",  "pullcache_client_bytes_total",
        "pullcache_fetch_waiters_total",   "pullcache_fetch_follows_total",
        "pullcache_fetch_takeovers_total", "pullcache_budget_skipped_revalidations_total",
        "pullcache_budget_refused_total",  "pullcache_cache_hit_bytes_total"};
    char labels[300];
    for (size_t i = 0; i < sizeof(per_kind) / sizeof(per_kind[0]); i++)
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            snprintf(labels, sizeof(labels), "%s,kind=\"%s\"", up, kinds[k]);
            pc_metrics_add(per_kind[i], labels, 0);
        }
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        pc_metrics_add(plain[i], up, 0);
    /* failures by class: rate() over an alert's window misses the first
     * failure of a series that only appears with it */
    for (int c = PC_UP_NOT_FOUND; c <= PC_UP_PROTOCOL; c++) {
        snprintf(labels, sizeof(labels), "%s,class=\"%s\"", up, pc_up_class_str((pc_up_class)c));
        pc_metrics_add("pullcache_upstream_errors_total", labels, 0);
    }
    pc_metrics_gauge_add("pullcache_fetches_in_flight", up, 0);
}

static void declare_metrics(void)
{
    static const struct {
        const char *name;
        pc_metric_type type;
        const char *help;
    } defs[] = {
        {"pullcache_upstream_requests_total", PC_METRIC_COUNTER, "Requests sent upstream."},
        {"pullcache_upstream_errors_total", PC_METRIC_COUNTER, "Upstream failures by class."},
        {"pullcache_upstream_bytes_total", PC_METRIC_COUNTER, "Blob body bytes from upstream."},
        {"pullcache_client_bytes_total", PC_METRIC_COUNTER,
         "Bytes of mirrored blobs streamed to clients while fetching."},
        {"pullcache_cache_hits_total", PC_METRIC_COUNTER, "Answered from the cache."},
        {"pullcache_cache_misses_total", PC_METRIC_COUNTER, "Fetched from upstream."},
        {"pullcache_cache_hit_bytes_total", PC_METRIC_COUNTER,
         "Bytes of manifests and blobs served from the cache: what clients did not pull "
         "upstream."},
        {"pullcache_cache_stale_total", PC_METRIC_COUNTER,
         "Served from the cache while the upstream failed."},
        {"pullcache_fetches_in_flight", PC_METRIC_GAUGE, "Blob fetches running now."},
        {"pullcache_fetch_waiters_total", PC_METRIC_COUNTER,
         "Requests that joined a fetch already running."},
        {"pullcache_fetch_follows_total", PC_METRIC_COUNTER,
         "Blob misses that another replica sharing the stores was fetching: streamed from it "
         "(or its published copy) instead of fetched upstream."},
        {"pullcache_fetch_takeovers_total", PC_METRIC_COUNTER,
         "Fetches taken over from a replica that stopped renewing its lease (it died)."},
        {"pullcache_http_requests_total", PC_METRIC_COUNTER,
         "Requests served, by kind (manifest, blob, upload, ...), method and status."},
        {"pullcache_build_info", PC_METRIC_GAUGE, "Always 1; the version is in its label."},
        {"pullcache_budget_skipped_revalidations_total", PC_METRIC_COUNTER,
         "Expired tags served without revalidation because the upstream's pull budget is in "
         "reserve or exhausted."},
        {"pullcache_budget_refused_total", PC_METRIC_COUNTER,
         "Misses answered 429 without asking upstream while its Retry-After runs."},
        {"pullcache_cache_mirrored_bytes", PC_METRIC_GAUGE,
         "Bytes of mirrored blobs eviction may remove (nothing local holds them); counted at "
         "start and every 5 minutes."},
        {"pullcache_cache_max_size_bytes", PC_METRIC_GAUGE,
         "cache.max_size: the cap on pullcache_cache_mirrored_bytes (0: no cap)."},
        {"pullcache_cache_evictions_total", PC_METRIC_COUNTER,
         "Mirrored blobs evicted to keep under max_size."},
        {"pullcache_cache_evicted_bytes_total", PC_METRIC_COUNTER, "Bytes of those blobs."},
        {"pullcache_store_blobs", PC_METRIC_GAUGE,
         "Published blobs in the store, local and mirrored; counted at start and every 5 minutes."},
        {"pullcache_store_bytes", PC_METRIC_GAUGE, "Bytes of those blobs."},
    };
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
        pc_metrics_declare(defs[i].name, defs[i].type, defs[i].help);
    if (pc_metrics_value("pullcache_build_info", "version=\"" PC_VERSION "\"") == 0)
        pc_metrics_gauge_add("pullcache_build_info", "version=\"" PC_VERSION "\"", 1);
    static const char *zero[] = {"pullcache_cache_evictions_total",
                                 "pullcache_cache_evicted_bytes_total"};
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
        pc_metrics_add(zero[i], NULL, 0);
    static const char *gauges[] = {"pullcache_cache_mirrored_bytes", "pullcache_store_blobs",
                                   "pullcache_store_bytes"};
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        pc_metrics_gauge_add(gauges[i], NULL, 0);
}

int pc_mirror_new(pc_mirror **out, const pc_config *cfg, pc_registry *reg)
{
    pc_mirror *m = calloc(1, sizeof(*m));
    int rc = 0;
    if (!m)
        return PC_ENOMEM;
    m->cfg = cfg;
    m->reg = reg;
    pc_fetch_coord_init(m);
    m->def = -1;
    declare_metrics();
    pc_metrics_gauge_add("pullcache_cache_max_size_bytes", NULL,
                         (int64_t)cfg->cache->max_size -
                             pc_metrics_value("pullcache_cache_max_size_bytes", NULL));
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->lists_lock, NULL);
    pthread_cond_init(&m->idle, NULL);
    pthread_cond_init(&m->heartbeat_cv, NULL);
    m->ups = calloc(cfg->upstreams_count ? cfg->upstreams_count : 1, sizeof(*m->ups));
    if (!m->ups || pc_budget_new(&m->budget, (int)cfg->upstreams_count, NULL, NULL) ||
        pc_mirror_stats_new(m)) {
        rc = PC_ENOMEM;
        goto done;
    }
    for (unsigned i = 0; i < cfg->upstreams_count; i++) {
        const pc_config_upstream *c = &cfg->upstreams[i];
        char *password = NULL, *token = NULL;
        pc_mirror_up *u = &m->ups[i];
        u->cfg = c;
        pc_util_url_host(c->url, u->host, sizeof(u->host));
        char esc[160];
        snprintf(u->labels, sizeof(u->labels), "upstream=\"%s\"",
                 pc_metrics_escape(c->name, esc, sizeof(esc)));
        if ((rc = read_secret(c->name, "password", c->password_file, c->password_env, &password)) ||
            (rc = read_secret(c->name, "token", c->token_file, c->token_env, &token))) {
            free_secret(password);
            goto done;
        }
        pc_upstream_opts o = {
            .name = c->name,
            .url = c->url,
            .username = c->username,
            .password = password,
            .token = token,
            .connect_timeout_ms = (long)c->connect_timeout * 1000,
            .read_timeout_ms = (long)c->read_timeout * 1000,
            .max_connections = c->max_connections,
            .ca_file = c->ca_file,
            .insecure_tls = c->insecure,
        };
        rc = pc_upstream_new(&u->client, &o);
        free_secret(password);
        free_secret(token);
        if (rc)
            goto done;
        if (c->immutable_tags_count &&
            !(u->immutable = calloc(c->immutable_tags_count, sizeof(*u->immutable)))) {
            pc_upstream_free(u->client);
            rc = PC_ENOMEM;
            goto done;
        }
        for (; u->nimmutable < c->immutable_tags_count; u->nimmutable++)
            if (regcomp(&u->immutable[u->nimmutable], c->immutable_tags[u->nimmutable],
                        REG_EXTENDED | REG_NOSUB)) {
                pc_error_set("upstream %s: bad immutable_tags pattern '%s'", c->name,
                             c->immutable_tags[u->nimmutable]);
                m->nups++; /* so pc_mirror_free frees this one too */
                rc = PC_EINVAL;
                goto done;
            }
        /* one budget entry per upstream, at the upstream's index */
        if ((rc = pc_budget_add(m->budget, c->name, pc_budget_credential(c), c->reserve)) !=
            (int)i) {
            pc_upstream_free(u->client);
            rc = rc < 0 ? rc : PC_ERR;
            goto done;
        }
        rc = 0;
        m->nups++;
        zero_series(u->labels);
        if (strcmp(c->name, cfg->cache->default_upstream) == 0)
            m->def = (int)i;
    }
done:
    if (rc) {
        pc_mirror_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void pc_mirror_stop(pc_mirror *m)
{
    if (!m)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 15;
    pc_mirror_history_stop(m); /* its last write, while the stores are there */
    pthread_mutex_lock(&m->lock);
    m->stopping = 1;
    while (m->nfetch_threads > 0)
        if (pthread_cond_timedwait(&m->idle, &m->lock, &until) != 0)
            break;
    pthread_mutex_unlock(&m->lock);
    pc_fetch_pool_stop(m);
}

void pc_mirror_free(pc_mirror *m)
{
    if (!m)
        return;
    pc_mirror_stop(m);
    pc_fetch_coord_free(m);
    for (int i = 0; i < m->nups; i++) {
        pc_upstream_free(m->ups[i].client);
        for (unsigned k = 0; k < m->ups[i].nimmutable; k++)
            regfree(&m->ups[i].immutable[k]);
        free(m->ups[i].immutable);
    }
    free(m->ups);
    pc_budget_free(m->budget);
    pc_mirror_history_free(m);
    pc_mirror_stats_free(m);
    pc_mirror_lists_free(m);
    pthread_mutex_destroy(&m->lists_lock);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->idle);
    pthread_cond_destroy(&m->heartbeat_cv);
    free(m);
}

/* ---- outcomes and metrics ---- */

void pc_mirror_count(pc_mirror *m, const pc_mirror_target *t, const char *kind, const char *method,
                     const pc_upstream_resp *r)
{
    char labels[300];
    const char *up = m->ups[t->upstream].labels;
    snprintf(labels, sizeof(labels), "%s,kind=\"%s\",method=\"%s\"", up, kind, method);
    pc_metrics_add("pullcache_upstream_requests_total", labels, 1);
    if (r) {
        pc_budget_observe(m->budget, t->upstream, r);
        pc_mirror_budget_share(m, t->upstream, r);
        /* a 404 or 401 is an answer; only what says the upstream is in
         * trouble (unreachable, 5xx, 429, timeouts, lies) counts as failing */
        bool failing = r->cls != PC_UP_OK && r->cls != PC_UP_NOT_FOUND && r->cls != PC_UP_DENIED &&
                       r->cls != PC_UP_CLIENT && r->cls != PC_UP_ABORTED;
        pc_mirror_health *h = &m->ups[t->upstream].health;
        pthread_mutex_lock(&m->lock);
        if (failing) {
            h->last_error_at = (int64_t)time(NULL);
            snprintf(h->last_error, sizeof(h->last_error), "%s", pc_up_class_str(r->cls));
            h->failures++;
        } else {
            h->last_ok_at = (int64_t)time(NULL);
            h->failures = 0;
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (r && r->cls != PC_UP_OK && r->cls != PC_UP_NOT_FOUND && r->cls != PC_UP_ABORTED)
        pc_mirror_stats_error(m, t, kind, method, r);
    if (r && r->cls != PC_UP_OK) {
        snprintf(labels, sizeof(labels), "%s,class=\"%s\"", up, pc_up_class_str(r->cls));
        pc_metrics_add("pullcache_upstream_errors_total", labels, 1);
    }
}

static void count_cache(pc_mirror *m, const pc_mirror_target *t, const char *metric,
                        const char *kind)
{
    char labels[300];
    snprintf(labels, sizeof(labels), "%s,kind=\"%s\"", m->ups[t->upstream].labels, kind);
    pc_metrics_add(metric, labels, 1);
}

void pc_mirror_fail(pc_mirror *m, const pc_mirror_target *t, const pc_upstream_resp *r,
                    const char *kind, pc_mirror_outcome *out)
{
    const char *what = r->error_message[0] ? r->error_message : pc_up_class_str(r->cls);
    bool manifest = strcmp(kind, "manifest") == 0;
    memset(out, 0, sizeof(*out));
    snprintf(out->code, sizeof(out->code), "UNAVAILABLE");
    switch (r->cls) {
    case PC_UP_NOT_FOUND:
        out->status = 404;
        snprintf(out->code, sizeof(out->code), manifest ? "MANIFEST_UNKNOWN" : "BLOB_UNKNOWN");
        snprintf(out->message, sizeof(out->message), "%s not found at upstream %s", kind, t->name);
        return;
    case PC_UP_TOO_MANY:
        out->status = 429;
        snprintf(out->code, sizeof(out->code), "TOOMANYREQUESTS");
        snprintf(out->message, sizeof(out->message), "%s",
                 r->error_message[0] ? r->error_message
                                     : "the upstream registry is rate-limiting this cache");
        snprintf(out->retry_after, sizeof(out->retry_after), "%s", r->retry_after);
        return;
    case PC_UP_DENIED:
        out->status = 403;
        snprintf(out->code, sizeof(out->code), "DENIED");
        break;
    case PC_UP_REFUSED:
        out->status = 503;
        break;
    case PC_UP_TIMEOUT:
        out->status = 504;
        break;
    default:
        out->status = 502;
        break;
    }
    snprintf(out->message, sizeof(out->message), "upstream %s: %.300s (%s%s%ld)", t->name, what,
             pc_up_class_str(r->cls), r->status ? ", status " : "", r->status);
    if (!r->status) /* drop the ", status 0" */
        snprintf(out->message, sizeof(out->message), "upstream %s: %.300s (%s)", t->name, what,
                 pc_up_class_str(r->cls));
}

void pc_mirror_stale(pc_mirror *m, const pc_mirror_target *t, const pc_upstream_resp *r,
                     const char *kind, pc_mirror_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->stale = true;
    snprintf(out->warning, sizeof(out->warning),
             "299 - \"upstream %s unavailable (%s%s%ld): served from cache\"", t->name,
             pc_up_class_str(r->cls), r->status ? " " : "", r->status);
    if (!r->status)
        snprintf(out->warning, sizeof(out->warning),
                 "299 - \"upstream %s unavailable (%s): served from cache\"", t->name,
                 pc_up_class_str(r->cls));
    count_cache(m, t, "pullcache_cache_stale_total", kind);
    pc_log(PC_LOG_WARN, "upstream %s failed (%s); serving %s from cache", t->name,
           pc_up_class_str(r->cls), t->local);
}

/* ---- manifests ---- */

bool pc_mirror_offline(pc_mirror *m, const pc_mirror_target *t)
{
    return m->ups[t->upstream].cfg->offline;
}

/* Whether tag matches one of the upstream's immutable_tags patterns. */
static bool tag_immutable(pc_mirror *m, const pc_mirror_target *t, const char *tag)
{
    const pc_mirror_up *u = &m->ups[t->upstream];
    for (unsigned i = 0; i < u->nimmutable; i++)
        if (regexec(&u->immutable[i], tag, 0, NULL, 0) == 0)
            return true;
    return false;
}

void pc_mirror_offline_miss(const pc_mirror_target *t, const char *kind, pc_mirror_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->status = 404;
    snprintf(out->code, sizeof(out->code), "%s",
             strcmp(kind, "manifest") == 0 ? "MANIFEST_UNKNOWN"
             : strcmp(kind, "blob") == 0   ? "BLOB_UNKNOWN"
                                           : "NAME_UNKNOWN");
    snprintf(out->message, sizeof(out->message),
             "%s not cached, and upstream %s is offline (upstreams[].offline): nothing is fetched",
             kind, t->name);
}

int pc_mirror_manifest_cached(pc_mirror *m, const pc_mirror_target *t, const char *reference,
                              pc_manifest_rec *rec)
{
    pc_digest d;
    int64_t updated = 0;
    int rc;
    if (strchr(reference, ':')) {
        if ((rc = pc_digest_parse(&d, reference)))
            return PC_EINVAL;
    } else {
        if ((rc = pc_registry_tag_stat(m->reg, t->local, reference, &d, &updated)))
            return rc;
        if ((int64_t)time(NULL) - updated >= t->tag_ttl && !pc_mirror_offline(m, t) &&
            !tag_immutable(m, t, reference) && !pc_mirror_budget_skips(m, t))
            return PC_ENOTFOUND; /* due for revalidation */
    }
    rc = pc_registry_manifest_get(m->reg, t->local, &d, rec);
    if (rc == 0)
        count_cache(m, t, "pullcache_cache_hits_total", "manifest");
    return rc;
}

/* Read manifest bytes from upstream with the parser pushes go through
 * (pc_manifest_parse): what a push would be refused is not stored either.
 * The document's own mediaType wins over a Content-Type that disagrees.
 * 0, PC_EINVAL (message set: the first parse's), PC_ETOOBIG, PC_ENOMEM. */
static int upstream_manifest_parse(pc_manifest_info *info, const void *buf, size_t len,
                                   const char *media_type)
{
    int rc = pc_manifest_parse(info, buf, len, media_type);
    if (rc == PC_EINVAL && media_type && *media_type) {
        char first[512];
        snprintf(first, sizeof(first), "%s", pc_error_last());
        if ((rc = pc_manifest_parse(info, buf, len, NULL)) == PC_EINVAL)
            pc_error_set("%s", first);
    }
    return rc;
}

/* Store manifest bytes fetched from upstream under digest d (and tag,
 * moved only from *expect: registry.h). Bytes that are no manifest are
 * refused: PC_EINVAL (message set). */
static int store_manifest(pc_mirror *m, const pc_mirror_target *t, const char *tag,
                          const pc_digest *expect, const void *buf, size_t len,
                          const char *media_type, const pc_digest *d, pc_manifest_rec *rec)
{
    pc_manifest_info info;
    int rc;
    memset(&info, 0, sizeof(info));
    memset(rec, 0, sizeof(*rec));
    if ((rc = upstream_manifest_parse(&info, buf, len, media_type)))
        goto done;
    rc = pc_registry_cache_manifest_put(m->reg, t->local, tag, expect, d, buf, len, &info, rec);
done:
    pc_manifest_info_clear(&info);
    return rc;
}

/* GET reference upstream, check the bytes against `want` (when given) or
 * the upstream's Docker-Content-Digest and with the parser pushes go
 * through, store them (with tag). Bytes that fail a check are the
 * upstream's fault (counted as a "protocol" error, 502 for the client) and
 * nothing is kept. The tag moves only from *expect (compare-and-swap); a
 * writer that moved it first (another replica's revalidation) wins and its
 * manifest is the answer. */
static int fetch_and_store(pc_mirror *m, const pc_mirror_target *t, const char *reference,
                           const pc_digest *want, const char *tag, const pc_digest *expect,
                           pc_manifest_rec *rec, pc_mirror_outcome *out)
{
    pc_upstream_resp r;
    pc_digest got, claimed;
    pc_manifest_info info;
    char why[400] = "";
    int rc;
    if (pc_mirror_budget_refuses(m, t, out))
        return PC_EUPSTREAM;
    memset(&r, 0, sizeof(r));
    memset(&info, 0, sizeof(info));
    rc = pc_upstream_manifest(m->ups[t->upstream].client, t->repo, reference, false, &r);
    if (rc == 0 && r.cls == PC_UP_OK) {
        pc_digest_alg alg = PC_DIGEST_SHA256;
        bool has_claim = !want && r.digest[0] && pc_digest_parse(&claimed, r.digest) == 0;
        if (want)
            alg = want->alg;
        else if (has_claim)
            alg = claimed.alg;
        if ((rc = pc_digest_buffer(&got, alg, r.body ? r.body : "", r.body_len))) {
            pc_mirror_count(m, t, "manifest", "GET", &r);
            goto done;
        }
        if ((want && !pc_digest_equal(want, &got)) ||
            (has_claim && !pc_digest_equal(&claimed, &got))) {
            snprintf(why, sizeof(why),
                     "upstream %s sent a manifest whose content does not match its digest",
                     t->name);
            pc_log(PC_LOG_WARN, "upstream %s: manifest %s:%s has digest %s, expected %s", t->name,
                   t->repo, reference, got.str, want ? want->str : claimed.str);
            rc = PC_EDIGEST;
        } else if ((rc = upstream_manifest_parse(&info, r.body, r.body_len, r.media_type)) ==
                   PC_ENOMEM) {
            pc_mirror_count(m, t, "manifest", "GET", &r);
            goto done;
        } else if (rc) {
            snprintf(why, sizeof(why),
                     "upstream %s sent a manifest that is not valid (%.300s); not stored", t->name,
                     pc_error_last());
            pc_log(PC_LOG_WARN, "upstream %s: manifest %s:%s refused: %s", t->name, t->repo,
                   reference, pc_error_last());
            rc = PC_EUPSTREAM; /* out says what the client gets */
        }
        if (why[0]) {
            r.cls = PC_UP_PROTOCOL;
            snprintf(r.error_message, sizeof(r.error_message), "%s", why);
        }
    }
    pc_mirror_count(m, t, "manifest", "GET", rc && !why[0] ? NULL : &r);
    if (why[0]) {
        memset(out, 0, sizeof(*out));
        out->status = 502;
        snprintf(out->code, sizeof(out->code), "UNAVAILABLE");
        snprintf(out->message, sizeof(out->message), "%s", why);
        goto done;
    }
    if (rc) {
        r.cls = PC_UP_PROTOCOL;
        pc_mirror_fail(m, t, &r, "manifest", out);
        goto done;
    }
    if (r.cls != PC_UP_OK) {
        pc_mirror_fail(m, t, &r, "manifest", out);
        rc = PC_EUPSTREAM;
        goto done;
    }
    pc_metrics_add("pullcache_upstream_bytes_total", m->ups[t->upstream].labels, r.body_len);
    rc = store_manifest(m, t, tag, expect, r.body ? r.body : "", r.body_len, r.media_type, &got,
                        rec);
    if (rc == PC_ECONFLICT && tag) {
        pc_digest cur;
        int64_t upd;
        if (pc_registry_tag_stat(m->reg, t->local, tag, &cur, &upd) == 0 &&
            pc_registry_manifest_get(m->reg, t->local, &cur, rec) == 0) {
            pc_log(PC_LOG_DEBUG, "%s:%s was moved concurrently to %s; serving that", t->local, tag,
                   cur.str);
            rc = 0;
        }
    }
    if (rc) {
        memset(out, 0, sizeof(*out));
        out->status = 500;
        snprintf(out->code, sizeof(out->code), "UNKNOWN");
        snprintf(out->message, sizeof(out->message), "cannot store the manifest: %s",
                 pc_error_last());
        goto done;
    }
    count_cache(m, t, "pullcache_cache_misses_total", "manifest");
done:
    pc_manifest_info_clear(&info);
    pc_upstream_resp_clear(&r);
    return rc;
}

static int manifest_fetch_one(pc_mirror *m, const pc_mirror_target *t, const char *reference,
                              pc_manifest_rec *rec, pc_mirror_outcome *out)
{
    pc_upstream_resp r;
    pc_digest d, have;
    int64_t updated = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (strchr(reference, ':')) {
        if (pc_digest_parse(&d, reference))
            return PC_EINVAL;
        if (pc_registry_manifest_get(m->reg, t->local, &d, rec) == 0) {
            count_cache(m, t, "pullcache_cache_hits_total", "manifest");
            return 0;
        }
        return fetch_and_store(m, t, reference, &d, NULL, NULL, rec, out);
    }

    if (pc_registry_tag_stat(m->reg, t->local, reference, &have, &updated) != 0) {
        pc_digest absent; /* the tag must still not exist when it is set */
        memset(&absent, 0, sizeof(absent));
        return fetch_and_store(m, t, reference, NULL, reference, &absent, rec, out);
    }
    if ((int64_t)time(NULL) - updated < t->tag_ttl) {
        /* confirmed meanwhile (by the request this one waited for) */
        count_cache(m, t, "pullcache_cache_hits_total", "manifest");
        return pc_registry_manifest_get(m->reg, t->local, &have, rec);
    }
    if (pc_mirror_budget_skips(m, t)) { /* the budget went low since the request came in */
        count_cache(m, t, "pullcache_cache_hits_total", "manifest");
        return pc_registry_manifest_get(m->reg, t->local, &have, rec);
    }

    /* A known tag: revalidate with a HEAD, never a GET. */
    memset(&r, 0, sizeof(r));
    rc = pc_upstream_manifest(m->ups[t->upstream].client, t->repo, reference, true, &r);
    pc_mirror_count(m, t, "manifest", "HEAD", rc ? NULL : &r);
    if (rc || r.cls != PC_UP_OK) {
        if (rc)
            r.cls = PC_UP_PROTOCOL;
        pc_mirror_stale(m, t, &r, "manifest", out);
        pc_upstream_resp_clear(&r);
        return pc_registry_manifest_get(m->reg, t->local, &have, rec);
    }
    bool has_digest = r.digest[0] && pc_digest_parse(&d, r.digest) == 0;
    pc_upstream_resp_clear(&r);
    if (has_digest && pc_digest_equal(&d, &have)) {
        pc_registry_tag_touch(m->reg, t->local, reference, &have, (int64_t)time(NULL));
        count_cache(m, t, "pullcache_cache_hits_total", "manifest");
        return pc_registry_manifest_get(m->reg, t->local, &have, rec);
    }
    if (has_digest && pc_registry_manifest_get(m->reg, t->local, &d, rec) == 0) {
        /* moved to a manifest we already hold: re-point the tag */
        void *buf = NULL;
        size_t len = 0;
        if (pc_registry_manifest_bytes(m->reg, &d, &buf, &len) == 0) {
            rc = store_manifest(m, t, reference, &have, buf, len, rec->media_type, &d, rec);
            free(buf);
            if (rc == 0)
                return 0;
        }
    }
    if (!has_digest) {
        /* No digest in the HEAD answer: a GET by tag is the only way to know
         * (the upstream does not give us a choice). */
        rc = fetch_and_store(m, t, reference, NULL, reference, &have, rec, out);
    } else {
        rc = fetch_and_store(m, t, d.str, &d, reference, &have, rec, out);
    }
    if (rc && out->status != 404) {
        /* the new content could not be had: keep serving what we have */
        memset(&r, 0, sizeof(r));
        r.cls = out->status == 429 ? PC_UP_TOO_MANY : PC_UP_PROTOCOL;
        r.status = out->status == 429 ? 429 : 0;
        pc_mirror_stale(m, t, &r, "manifest", out);
        return pc_registry_manifest_get(m->reg, t->local, &have, rec);
    }
    return rc;
}

/* ---- blobs ---- */

void pc_mirror_set_strict(pc_mirror *m, bool strict)
{
    if (m)
        m->strict = strict;
}

int pc_mirror_blob_cached(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d,
                          uint64_t *size)
{
    /* linked here and of the recorded size (a damaged file is taken out
     * of service and fetched again), or (unless strict) stored for another
     * repository and adopted; either records the access for eviction */
    if (pc_registry_cache_blob_hit(m->reg, t->local, d, size) != 0 &&
        (m->strict || pc_registry_cache_adopt(m->reg, t->local, d, size) != 0))
        return PC_ENOTFOUND;
    count_cache(m, t, "pullcache_cache_hits_total", "blob");
    return 0;
}

int pc_mirror_blob_head(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d, int64_t *size,
                        pc_mirror_outcome *out)
{
    pc_upstream_resp r;
    if (pc_mirror_offline(m, t)) {
        pc_mirror_offline_miss(t, "blob", out);
        return PC_ENOTFOUND;
    }
    memset(&r, 0, sizeof(r));
    memset(out, 0, sizeof(*out));
    int rc = pc_upstream_blob(m->ups[t->upstream].client, t->repo, d, true, NULL, NULL, NULL, &r);
    pc_mirror_count(m, t, "blob", "HEAD", rc ? NULL : &r);
    if (rc)
        r.cls = PC_UP_PROTOCOL;
    if (rc || r.cls != PC_UP_OK) {
        pc_mirror_fail(m, t, &r, "blob", out);
        pc_upstream_resp_clear(&r);
        return PC_EUPSTREAM;
    }
    *size = r.content_length;
    pc_upstream_resp_clear(&r);
    return 0;
}

/* One upstream manifest exchange per (repository, reference) at a time:
 * concurrent requests for the same cold or stale tag wait for the first
 * one's result instead of each asking upstream. */
struct pc_mflight {
    char key[PC_NAME_MAX + 300];
    pthread_cond_t cv;
    int refs;
    bool done;
    int rc;
    pc_manifest_rec rec;
    pc_mirror_outcome out;
    struct pc_mflight *next;
};

/* Across processes sharing the stores, one exchange per (repository,
 * reference) too: the exchange holds the lease "manifest:<repo>@<ref>"
 * while it asks upstream; another process finding it held waits until it
 * is released (or runs out) and then looks again, finding what the holder
 * stored (a digest now stored, a tag confirmed within tag_ttl) without
 * asking upstream. A holder's failure leaves nothing stored: the waiter
 * then asks itself. The lease is short: a manifest exchange is one or two
 * requests, bounded by the upstream client's timeouts. */
#define MANIFEST_LEASE_MS 10000
#define MANIFEST_POLL_MS 50

static int manifest_exchange(pc_mirror *m, const pc_mirror_target *t, const char *reference,
                             const char *flight, pc_manifest_rec *rec, pc_mirror_outcome *out)
{
    char lkey[PC_LEASE_KEY_MAX];
    bool leased = false;
    if ((size_t)snprintf(lkey, sizeof(lkey), "manifest:%s", flight) < sizeof(lkey)) {
        int64_t until = pc_util_mono_ms() + MANIFEST_LEASE_MS + 1000;
        bool waited = false;
        for (;;) {
            int lr = pc_registry_lease_take(m->reg, lkey, m->owner, MANIFEST_LEASE_MS, NULL);
            if (lr == 0) {
                leased = true;
                break;
            }
            if (lr != PC_EEXISTS || m->stopping || pc_util_mono_ms() >= until)
                break; /* no lease store, or a holder that outlived its lease: ask anyway */
            if (!waited) {
                pc_metrics_add("pullcache_fetch_follows_total", m->ups[t->upstream].labels, 1);
                waited = true;
            }
            struct timespec ts = {0, MANIFEST_POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    int rc = manifest_fetch_one(m, t, reference, rec, out);
    if (leased)
        pc_registry_lease_release(m->reg, lkey, m->owner);
    return rc;
}

int pc_mirror_manifest_fetch(pc_mirror *m, const pc_mirror_target *t, const char *reference,
                             pc_manifest_rec *rec, pc_mirror_outcome *out)
{
    char key[PC_NAME_MAX + 300];
    struct pc_mflight *f;
    int rc;
    if (pc_mirror_offline(m, t)) {
        pc_mirror_offline_miss(t, "manifest", out);
        return PC_ENOTFOUND;
    }
    snprintf(key, sizeof(key), "%s@%s", t->local, reference);

    pthread_mutex_lock(&m->lock);
    for (f = m->mflights; f; f = f->next)
        if (strcmp(f->key, key) == 0)
            break;
    if (f) {
        f->refs++;
        /* counted on joining (not when the answer came), so the metric shows
         * who waits for a running exchange */
        pc_metrics_add("pullcache_fetch_waiters_total", m->ups[t->upstream].labels, 1);
        while (!f->done)
            pthread_cond_wait(&f->cv, &m->lock);
        rc = f->rc;
        *rec = f->rec;
        *out = f->out;
        if (--f->refs == 0) {
            pthread_cond_destroy(&f->cv);
            free(f);
        }
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        pthread_mutex_unlock(&m->lock);
        return manifest_fetch_one(m, t, reference, rec, out);
    }
    memcpy(f->key, key, sizeof(key));
    pthread_cond_init(&f->cv, NULL);
    f->refs = 1;
    f->next = m->mflights;
    m->mflights = f;
    pthread_mutex_unlock(&m->lock);

    rc = manifest_exchange(m, t, reference, key, rec, out);

    pthread_mutex_lock(&m->lock);
    for (struct pc_mflight **pp = &m->mflights; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->rc = rc;
    f->rec = *rec;
    f->out = *out;
    f->done = true;
    pthread_cond_broadcast(&f->cv);
    if (--f->refs == 0) {
        pthread_cond_destroy(&f->cv);
        free(f);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}
