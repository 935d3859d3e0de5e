/*
 * pull.c - the pull engine: manifest by tag or digest (digest verified),
 * platform resolution, then config and layers fetched by a bounded pool of
 * worker threads, each blob streamed through its digest with its size
 * checked, into an OCI image layout or nowhere. The first failure stops the
 * other workers; its HTTP status, registry error code and message end up
 * in the result for the CLI and loadgen.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "pull.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "jobpool.h"

#define PULL_DEFAULT_WORKERS 4
#define PULL_MAX_WORKERS 64
#define CONFIG_KEEP_MAX ((size_t)1 << 20) /* configs are kept to read their platform */

/* ---- sources ---- */

static int up_manifest(void *ctx, const char *repo, const char *reference, pc_upstream_resp *out)
{
    return pc_upstream_manifest(ctx, repo, reference, false, out);
}

static int up_blob(void *ctx, const char *repo, const pc_digest *d, pc_upstream_start_cb on_start,
                   pc_upstream_data_cb on_data, void *cb_ctx, pc_upstream_resp *out)
{
    return pc_upstream_blob(ctx, repo, d, false, on_start, on_data, cb_ctx, out);
}

void pc_pull_source_upstream(pc_pull_source *out, pc_upstream *u)
{
    out->manifest = up_manifest;
    out->blob = up_blob;
    out->ctx = u;
}

/* ---- state of one pull ---- */

typedef struct {
    pc_pull_desc desc;
    bool is_config;
    char *keep; /* a config's bytes (up to CONFIG_KEEP_MAX) */
    size_t keep_len;
    uint64_t hw; /* bytes reported (pc_jobpool_progress_data) */
} job;

typedef struct {
    const pc_pull_source *src;
    const pc_pull_opts *o;
    pc_pull_result *res;
    pc_pull_layout *layout;
    pthread_mutex_t lock; /* guards what follows */
    job *jobs;
    size_t njobs;
    atomic_bool stop; /* a job failed or the pull was canceled */
    int rc;           /* the first failure's code */
    pc_jobpool_progress prog;
} pull;

/* One manifest fetched: its descriptor and what it points at. */
typedef struct {
    pc_pull_desc desc;
    bool is_index;
    pc_pull_desc *refs;
    size_t nrefs;
    char *body;
    size_t body_len;
} fetched;

static void fetched_clear(fetched *f)
{
    free(f->refs);
    free(f->body);
    memset(f, 0, sizeof(*f));
}

static bool canceled(const pull *p)
{
    return p->o->cancel && atomic_load(p->o->cancel);
}

void pc_pull_registry_code(const char *body, size_t len, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!body || !len)
        return;
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
    const char *code = json_string_value(json_object_get(e, "code"));
    if (code)
        snprintf(buf, size, "%s", code);
    json_decref(doc);
}

/* Record e as the pull's failure unless one is recorded already (later
 * failures are often caused by the stop), and stop the other workers. */
static void record(pull *p, int rc, const pc_pull_error *e)
{
    pthread_mutex_lock(&p->lock);
    if (p->rc == 0) {
        p->rc = rc;
        p->res->error = *e;
    }
    atomic_store(&p->stop, true);
    pthread_mutex_unlock(&p->lock);
}

void pc_pull_error_vset(pc_pull_error *e, pc_pull_fail kind, const char *object, const char *fmt,
                        va_list ap)
{
    char msg[600];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    snprintf(e->object, sizeof(e->object), "%s", object);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(e->message, sizeof(e->message), "%.180s: %.560s", object, msg);
    snprintf(e->key, sizeof(e->key), "%s",
             kind == PC_PULL_FAIL_VERIFY     ? "verification failed"
             : kind == PC_PULL_FAIL_PLATFORM ? "no matching platform"
             : kind == PC_PULL_FAIL_CANCELED ? "canceled"
                                             : "local error");
}

static int fail(pull *p, int rc, pc_pull_fail kind, const char *object, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(pull *p, int rc, pc_pull_fail kind, const char *object, const char *fmt, ...)
{
    pc_pull_error e;
    va_list ap;
    va_start(ap, fmt);
    pc_pull_error_vset(&e, kind, object, fmt, ap);
    va_end(ap);
    record(p, rc, &e);
    return rc;
}

/* A failed exchange (rc 0, resp->cls not OK) as the pull's failure. */
static int fail_resp(pull *p, const char *object, const pc_upstream_resp *r)
{
    pc_pull_error e;
    memset(&e, 0, sizeof(e));
    pc_pull_registry_code(r->body, r->body_len, e.code, sizeof(e.code));
    bool registry = r->status >= 400 || r->cls == PC_UP_NOT_FOUND || r->cls == PC_UP_DENIED ||
                    r->cls == PC_UP_TOO_MANY || r->cls == PC_UP_SERVER || r->cls == PC_UP_CLIENT;
    int rc = r->status == 429 || r->cls == PC_UP_TOO_MANY ? PC_ELIMIT
             : r->status == 404                           ? PC_ENOTFOUND
                                                          : PC_EUPSTREAM;
    const char *msg = r->error_message[0] ? r->error_message : "no details";
    e.kind = registry ? PC_PULL_FAIL_REGISTRY : PC_PULL_FAIL_NETWORK;
    e.cls = r->cls;
    e.status = r->status;
    snprintf(e.object, sizeof(e.object), "%s", object);
    snprintf(e.retry_after, sizeof(e.retry_after), "%s", r->retry_after);
    if (registry) {
        snprintf(e.key, sizeof(e.key), "%ld%s%s", r->status, e.code[0] ? " " : "", e.code);
        if (e.code[0] && strcmp(msg, e.code) == 0)
            snprintf(e.message, sizeof(e.message), "%s: %s", object, e.key);
        else
            snprintf(e.message, sizeof(e.message), "%s: %s: %s", object, e.key, msg);
    } else {
        snprintf(e.key, sizeof(e.key), "%s", pc_up_class_str(r->cls));
        snprintf(e.message, sizeof(e.message), "%s: %s: %s", object, e.key, msg);
    }
    record(p, rc, &e);
    return rc;
}

/* ---- manifests ---- */

/* GET a manifest and verify it: against want (a child's descriptor) or the
 * digest in the reference, else against Docker-Content-Digest when sent. */
static int fetch_manifest(pull *p, const char *reference, const pc_pull_desc *want, bool top,
                          fetched *out)
{
    pc_upstream_resp r;
    char object[192];
    pc_digest named, sent, got;
    bool by_digest = pc_digest_parse(&named, reference) == 0;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(object, sizeof(object), "manifest %s", reference);
    memset(&r, 0, sizeof(r));
    rc = p->src->manifest(p->src->ctx, p->o->repo, reference, &r);
    if (rc != 0) {
        rc = fail(p, rc, PC_PULL_FAIL_LOCAL, object, "%s", pc_error_last());
        goto done;
    }
    pthread_mutex_lock(&p->lock);
    p->res->manifests++;
    p->res->manifest_bytes += r.body_len;
    pthread_mutex_unlock(&p->lock);
    if (top) {
        snprintf(p->res->ratelimit_limit, sizeof(p->res->ratelimit_limit), "%s", r.ratelimit_limit);
        snprintf(p->res->ratelimit_remaining, sizeof(p->res->ratelimit_remaining), "%s",
                 r.ratelimit_remaining);
        p->res->has_ratelimit = pc_ratelimit_parse(r.ratelimit_limit, r.ratelimit_remaining,
                                                   r.ratelimit_source, &p->res->ratelimit) == 0;
    }
    if (r.cls != PC_UP_OK) {
        rc = fail_resp(p, object, &r);
        goto done;
    }
    if (!r.body || r.body_len == 0) {
        rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object, "the registry sent an empty body");
        goto done;
    }
    if (want)
        named = want->digest, by_digest = true;
    bool have_sent = false;
    if (!by_digest && r.digest[0]) {
        int prc = pc_digest_parse(&sent, r.digest);
        if (prc == PC_EINVAL) {
            rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                      "malformed Docker-Content-Digest '%.100s'", r.digest);
            goto done;
        }
        have_sent = prc == 0;
    }
    pc_digest_alg alg = by_digest ? named.alg : have_sent ? sent.alg : PC_DIGEST_SHA256;
    if (pc_digest_buffer(&got, alg, r.body, r.body_len) != 0) {
        rc = fail(p, PC_ERR, PC_PULL_FAIL_LOCAL, object, "cannot hash the manifest");
        goto done;
    }
    if (by_digest && !pc_digest_equal(&got, &named)) {
        rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                  "the registry sent a manifest that hashes to %s, not %s", got.str, named.str);
        goto done;
    }
    if (have_sent && !pc_digest_equal(&got, &sent)) {
        rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                  "the manifest hashes to %s but Docker-Content-Digest says %s", got.str, sent.str);
        goto done;
    }
    if (want && want->size != r.body_len) {
        rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object, "%zu bytes, the index says %llu",
                  r.body_len, (unsigned long long)want->size);
        goto done;
    }
    rc = pc_pull_descs_parse(r.body, r.body_len, r.media_type, &out->is_index, out->desc.media_type,
                             sizeof(out->desc.media_type), &out->refs, &out->nrefs);
    if (rc != 0) {
        rc = fail(p, rc == PC_ENOMEM ? PC_ENOMEM : PC_EDIGEST,
                  rc == PC_ENOMEM ? PC_PULL_FAIL_LOCAL : PC_PULL_FAIL_VERIFY, object,
                  "not a usable manifest: %s", pc_error_last());
        goto done;
    }
    out->desc.digest = got;
    out->desc.size = r.body_len;
    if (want) {
        out->desc.has_platform = want->has_platform;
        out->desc.platform = want->platform;
    }
    out->body = r.body;
    out->body_len = r.body_len;
    r.body = NULL;
done:
    pc_upstream_resp_clear(&r);
    if (rc != 0)
        fetched_clear(out);
    return rc;
}

/* ---- blobs ---- */

enum { XF_OK = 0, XF_SIZE, XF_LOCAL, XF_STOP };

typedef struct {
    pull *p;
    job *j;
    size_t index;
    pc_hasher *h;
    pc_pull_layout_blob *w;
    uint64_t got;
    int why;
    int64_t sent_length;
    char msg[256];
} xfer;

static int on_start(const pc_upstream_resp *r, void *ctx)
{
    xfer *x = ctx;
    if (r->content_length >= 0 && (uint64_t)r->content_length != x->j->desc.size) {
        x->why = XF_SIZE;
        x->sent_length = r->content_length;
        return 1;
    }
    pc_jobpool_progress_start(&x->p->prog, x->index, &x->j->desc);
    return 0;
}

static int on_data(const void *buf, size_t len, void *ctx)
{
    xfer *x = ctx;
    pull *p = x->p;
    if (atomic_load(&p->stop) || canceled(p)) {
        x->why = XF_STOP;
        return 1;
    }
    if (x->got + len > x->j->desc.size) {
        x->why = XF_SIZE;
        x->got += len;
        return 1;
    }
    x->got += len;
    if (pc_hasher_update(x->h, buf, len) != 0) {
        x->why = XF_LOCAL;
        snprintf(x->msg, sizeof(x->msg), "cannot hash");
        return 1;
    }
    if (x->w && pc_pull_layout_blob_write(x->w, buf, len) != 0) {
        x->why = XF_LOCAL;
        snprintf(x->msg, sizeof(x->msg), "%s", pc_error_last());
        return 1;
    }
    if (x->j->is_config && x->j->keep_len + len <= CONFIG_KEEP_MAX) {
        char *k = realloc(x->j->keep, x->j->keep_len + len + 1);
        if (k) {
            memcpy(k + x->j->keep_len, buf, len);
            x->j->keep = k;
            x->j->keep_len += len;
            k[x->j->keep_len] = '\0';
        }
    }
    pthread_mutex_lock(&p->lock);
    p->res->bytes += len;
    pthread_mutex_unlock(&p->lock);
    pc_jobpool_progress_data(&p->prog, x->index, &x->j->desc, &x->j->hw, x->got);
    return 0;
}

static void blob_finished(pull *p, size_t index, job *j, pc_pull_event ev)
{
    pthread_mutex_lock(&p->lock);
    if (ev == PC_PULL_EV_SKIPPED)
        p->res->blobs_skipped++;
    else if (ev == PC_PULL_EV_DONE)
        p->res->blobs++;
    pthread_mutex_unlock(&p->lock);
    pc_jobpool_progress_end(&p->prog, index, &j->desc, &j->hw, ev);
}

/* Fetch, verify and store one blob. 0 or the failure's code (recorded). */
static int fetch_blob(pull *p, size_t index)
{
    job *j = &p->jobs[index];
    char object[192];
    pc_upstream_resp r;
    pc_digest got;
    xfer x = {.p = p, .j = j, .index = index, .sent_length = -1};
    int rc;

    snprintf(object, sizeof(object), "blob %s", j->desc.digest.str);
    memset(&r, 0, sizeof(r));
    if (p->layout && pc_pull_layout_has(p->layout, &j->desc.digest, j->desc.size)) {
        if (j->is_config)
            pc_pull_layout_read(p->layout, &j->desc.digest, CONFIG_KEEP_MAX, &j->keep,
                                &j->keep_len);
        blob_finished(p, index, j, PC_PULL_EV_SKIPPED);
        return 0;
    }
    if ((rc = pc_hasher_new(&x.h, j->desc.digest.alg)) != 0) {
        rc = fail(p, PC_ENOMEM, PC_PULL_FAIL_LOCAL, object, "cannot start a hash");
        goto done;
    }
    if (p->layout && (rc = pc_pull_layout_blob_begin(p->layout, &j->desc.digest, &x.w)) != 0) {
        rc = fail(p, rc, PC_PULL_FAIL_LOCAL, object, "%s", pc_error_last());
        goto done;
    }
    rc = p->src->blob(p->src->ctx, p->o->repo, &j->desc.digest, on_start, on_data, &x, &r);
    if (rc != 0) {
        rc = fail(p, rc, PC_PULL_FAIL_LOCAL, object, "%s", pc_error_last());
        goto done;
    }
    if (x.why == XF_STOP) {
        rc = canceled(p) ? fail(p, PC_ERR, PC_PULL_FAIL_CANCELED, object, "canceled") : PC_ERR;
        goto done;
    }
    if (x.why == XF_LOCAL) {
        rc = fail(p, PC_ERR, PC_PULL_FAIL_LOCAL, object, "%s", x.msg);
        goto done;
    }
    if (x.why == XF_SIZE) {
        if (x.sent_length >= 0)
            rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                      "size mismatch: the registry sends %lld bytes, the manifest says %llu",
                      (long long)x.sent_length, (unsigned long long)j->desc.size);
        else
            rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                      "size mismatch: the registry sent more than the manifest's %llu bytes",
                      (unsigned long long)j->desc.size);
        goto done;
    }
    if (r.cls != PC_UP_OK) {
        rc = fail_resp(p, object, &r);
        goto done;
    }
    if (x.got != j->desc.size) {
        rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                  "size mismatch: the registry sent %llu bytes, the manifest says %llu",
                  (unsigned long long)x.got, (unsigned long long)j->desc.size);
        goto done;
    }
    if (pc_hasher_final(x.h, &got) != 0) {
        rc = fail(p, PC_ERR, PC_PULL_FAIL_LOCAL, object, "cannot finish the hash");
        goto done;
    }
    if (!pc_digest_equal(&got, &j->desc.digest)) {
        rc = fail(p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                  "digest mismatch: the registry sent %llu bytes that hash to %s",
                  (unsigned long long)x.got, got.str);
        goto done;
    }
    if (x.w) {
        pc_pull_layout_blob *w = x.w;
        x.w = NULL;
        if ((rc = pc_pull_layout_blob_commit(w)) != 0) {
            rc = fail(p, rc, PC_PULL_FAIL_LOCAL, object, "%s", pc_error_last());
            goto done;
        }
    }
    blob_finished(p, index, j, PC_PULL_EV_DONE);
done:
    if (rc != 0)
        blob_finished(p, index, j, PC_PULL_EV_FAILED);
    pc_pull_layout_blob_abort(x.w);
    pc_hasher_free(x.h);
    pc_upstream_resp_clear(&r);
    return rc;
}

/* One blob of the plan, on a pool worker (whose state is the pull). After
 * a failure or a cancel the jobs still queued do nothing. */
static void blob_job(void *arg, void *worker)
{
    pull *p = worker;
    job *j = arg;
    if (atomic_load(&p->stop))
        return;
    if (canceled(p)) {
        fail(p, PC_ERR, PC_PULL_FAIL_CANCELED, "pull", "canceled");
        return;
    }
    fetch_blob(p, (size_t)(j - p->jobs));
}

static void *pull_of_worker(void *ctx)
{
    return ctx;
}

static int run_workers(pull *p)
{
    unsigned n = p->o->concurrency ? p->o->concurrency : PULL_DEFAULT_WORKERS;
    if (n > PULL_MAX_WORKERS)
        n = PULL_MAX_WORKERS;
    if (n > p->njobs)
        n = (unsigned)p->njobs;
    pc_jobpool_opts po = {.workers = n, .name = "pc-pull", .init = pull_of_worker, .ctx = p};
    pc_jobpool *pool = NULL;
    pc_jobpool_new(&pool, &po); /* none: the calling thread does it all */
    for (size_t i = 0; i < p->njobs; i++)
        if (!pool || pc_jobpool_submit(pool, blob_job, NULL, &p->jobs[i]) != 0)
            blob_job(&p->jobs[i], p);
    pc_jobpool_free(pool, PC_JOBPOOL_FINISH);
    return p->rc;
}

/* Add a blob to the plan unless it is there already. */
static int plan_add(pull *p, const pc_pull_desc *d, bool is_config, size_t *cap)
{
    for (size_t i = 0; i < p->njobs; i++)
        if (pc_digest_equal(&p->jobs[i].desc.digest, &d->digest))
            return 0;
    if (p->njobs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        job *nj = realloc(p->jobs, ncap * sizeof(*nj));
        if (!nj)
            return PC_ENOMEM;
        p->jobs = nj;
        *cap = ncap;
    }
    job *j = &p->jobs[p->njobs++];
    memset(j, 0, sizeof(*j));
    j->desc = *d;
    j->is_config = is_config;
    pc_jobpool_progress_add(&p->prog, d->size);
    return 0;
}

/* The platform an image config names ("" when it names none). */
static void config_platform(const char *buf, size_t len, char *out, size_t size)
{
    out[0] = '\0';
    json_t *doc = buf ? json_loadb(buf, len, 0, NULL) : NULL;
    const char *os = json_string_value(json_object_get(doc, "os"));
    const char *arch = json_string_value(json_object_get(doc, "architecture"));
    const char *var = json_string_value(json_object_get(doc, "variant"));
    if (os && arch) {
        pc_pull_platform pl;
        memset(&pl, 0, sizeof(pl));
        snprintf(pl.os, sizeof(pl.os), "%s", os);
        snprintf(pl.arch, sizeof(pl.arch), "%s", arch);
        snprintf(pl.variant, sizeof(pl.variant), "%s", var ? var : "");
        pc_pull_platform_normalize(&pl);
        pc_pull_platform_format(&pl, out, size);
    }
    json_decref(doc);
}

void pc_pull_result_clear(pc_pull_result *res)
{
    if (!res)
        return;
    free(res->images);
    memset(res, 0, sizeof(*res));
}

const char *pc_pull_fail_str(pc_pull_fail kind)
{
    switch (kind) {
    case PC_PULL_OK:
        return "ok";
    case PC_PULL_FAIL_REGISTRY:
        return "registry";
    case PC_PULL_FAIL_NETWORK:
        return "network";
    case PC_PULL_FAIL_VERIFY:
        return "verification";
    case PC_PULL_FAIL_PLATFORM:
        return "platform";
    case PC_PULL_FAIL_LOCAL:
        return "local";
    case PC_PULL_FAIL_CANCELED:
        return "canceled";
    }
    return "unknown";
}

int pc_pull_run(const pc_pull_source *src, const pc_pull_opts *o, pc_pull_result *res)
{
    pull p = {.src = src, .o = o, .res = res};
    fetched top, *kids = NULL;
    size_t nkids = 0, cap = 0;
    double t0 = pc_util_mono_s();
    int rc = 0;
    char object[192];

    memset(res, 0, sizeof(*res));
    memset(&top, 0, sizeof(top));
    pthread_mutex_init(&p.lock, NULL);
    pc_jobpool_progress_init(&p.prog, o->on_progress, o->progress_ctx);
    atomic_init(&p.stop, false);
    snprintf(object, sizeof(object), "%s:%s", o->repo, o->reference);

    if (o->output && !o->manifest_only && (rc = pc_pull_layout_open(&p.layout, o->output)) != 0) {
        rc = fail(&p, rc, PC_PULL_FAIL_LOCAL, "output", "%s", pc_error_last());
        goto done;
    }
    if ((rc = fetch_manifest(&p, o->reference, NULL, true, &top)) != 0)
        goto done;
    res->top = top.desc;
    res->named = top.desc;
    res->top_is_index = top.is_index;

    /* Which image manifests: the top one, the child for the platform, or all. */
    if (!top.is_index) {
        if (!(kids = calloc(1, sizeof(*kids)))) {
            rc = fail(&p, PC_ENOMEM, PC_PULL_FAIL_LOCAL, object, "out of memory");
            goto done;
        }
        nkids = 1;
        kids[0] = top;
        kids[0].body = NULL; /* top keeps it */
        kids[0].refs = top.refs;
        top.refs = NULL;
        top.nrefs = 0;
    } else {
        size_t want_i = 0, count = top.nrefs;
        if (!o->all_platforms) {
            pc_pull_platform host;
            const pc_pull_platform *want = o->platform;
            if (!want) {
                pc_pull_platform_host(&host);
                want = &host;
            }
            if (pc_pull_platform_select(top.refs, top.nrefs, want, &want_i) != 0) {
                rc = fail(&p, PC_ENOTFOUND, PC_PULL_FAIL_PLATFORM, "platform", "%s",
                          pc_error_last());
                goto done;
            }
            count = 1;
        }
        if (!(kids = calloc(count ? count : 1, sizeof(*kids)))) {
            rc = fail(&p, PC_ENOMEM, PC_PULL_FAIL_LOCAL, object, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < count; i++) {
            const pc_pull_desc *cd = &top.refs[o->all_platforms ? i : want_i];
            if ((rc = fetch_manifest(&p, cd->digest.str, cd, false, &kids[i])) != 0)
                goto done;
            nkids++;
            if (kids[i].is_index) {
                snprintf(object, sizeof(object), "manifest %s", cd->digest.str);
                rc = fail(&p, PC_EDIGEST, PC_PULL_FAIL_VERIFY, object,
                          "an index inside an index is not supported");
                goto done;
            }
        }
        if (!o->all_platforms)
            res->named = kids[0].desc;
    }

    /* The plan: every config and layer once. */
    if (!(res->images = calloc(nkids ? nkids : 1, sizeof(*res->images)))) {
        rc = fail(&p, PC_ENOMEM, PC_PULL_FAIL_LOCAL, object, "out of memory");
        goto done;
    }
    res->nimages = nkids;
    for (size_t i = 0; i < nkids; i++) {
        pc_pull_image *im = &res->images[i];
        im->desc = kids[i].desc;
        if (kids[i].desc.has_platform)
            pc_pull_platform_format(&kids[i].desc.platform, im->platform, sizeof(im->platform));
        if (kids[i].nrefs)
            im->config = kids[i].refs[0].digest;
        for (size_t k = 0; k < kids[i].nrefs && !o->manifest_only; k++) {
            if (k > 0 && pc_pull_desc_foreign(&kids[i].refs[k])) {
                res->blobs_foreign++;
                continue;
            }
            if (plan_add(&p, &kids[i].refs[k], k == 0, &cap) != 0) {
                rc = fail(&p, PC_ENOMEM, PC_PULL_FAIL_LOCAL, object, "out of memory");
                goto done;
            }
        }
    }
    pc_jobpool_progress_plan(&p.prog);

    if (p.njobs && (rc = run_workers(&p)) != 0)
        goto done;
    if (canceled(&p)) {
        rc = fail(&p, PC_ERR, PC_PULL_FAIL_CANCELED, "pull", "canceled");
        goto done;
    }

    /* Platforms of single manifests come from their configs. */
    for (size_t i = 0; i < nkids; i++) {
        pc_pull_image *im = &res->images[i];
        for (size_t k = 0; !im->platform[0] && k < p.njobs; k++)
            if (p.jobs[k].is_config && pc_digest_equal(&p.jobs[k].desc.digest, &im->config))
                config_platform(p.jobs[k].keep, p.jobs[k].keep_len, im->platform,
                                sizeof(im->platform));
    }

    /* A single-platform image answers --platform only when it is that
     * platform (an index picks its child; a lone manifest cannot). */
    if (!top.is_index && o->platform && nkids == 1 && res->images[0].platform[0]) {
        char want[PC_PULL_PLATFORM_STR];
        pc_pull_platform_format(o->platform, want, sizeof(want));
        if (strcmp(res->images[0].platform, want) != 0) {
            rc = fail(&p, PC_ENOTFOUND, PC_PULL_FAIL_PLATFORM, "platform",
                      "the image is for %s only, not %s", res->images[0].platform, want);
            goto done;
        }
    }

    /* Manifests last, then the name: a failed pull never names anything. */
    if (p.layout) {
        for (size_t i = 0; i < nkids; i++) {
            const char *body = kids[i].body ? kids[i].body : top.body;
            size_t len = kids[i].body ? kids[i].body_len : top.body_len;
            if ((rc = pc_pull_layout_put(p.layout, &kids[i].desc.digest, body, len)) != 0) {
                rc = fail(&p, rc, PC_PULL_FAIL_LOCAL, "output", "%s", pc_error_last());
                goto done;
            }
        }
        if (top.is_index && o->all_platforms &&
            (rc = pc_pull_layout_put(p.layout, &top.desc.digest, top.body, top.body_len)) != 0) {
            rc = fail(&p, rc, PC_PULL_FAIL_LOCAL, "output", "%s", pc_error_last());
            goto done;
        }
        if ((rc = pc_pull_layout_tag(p.layout, &res->named, o->tag)) != 0) {
            rc = fail(&p, rc, PC_PULL_FAIL_LOCAL, "output", "%s", pc_error_last());
            goto done;
        }
    }
done:
    if (rc == 0 && p.rc != 0)
        rc = p.rc;
    res->seconds = pc_util_mono_s() - t0;
    for (size_t i = 0; i < p.njobs; i++)
        free(p.jobs[i].keep);
    free(p.jobs);
    if (kids && !top.is_index)
        kids[0].body = NULL;
    for (size_t i = 0; i < nkids; i++)
        fetched_clear(&kids[i]);
    free(kids);
    fetched_clear(&top);
    pc_pull_layout_close(p.layout);
    pc_jobpool_progress_destroy(&p.prog);
    pthread_mutex_destroy(&p.lock);
    return rc;
}
