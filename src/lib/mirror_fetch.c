/*
 * mirror_fetch.c - coalesced blob fetches for the pull-through cache: one upstream
 * GET per digest however many clients ask at once. The first request starts
 * a fetch job that streams the upstream body into a spool (store/spool.h);
 * every client reads the growing spool as bytes arrive; the blob is
 * published only after its digest is verified, and the last byte reaches
 * clients only then, so a bad or truncated transfer never completes.
 *
 * A fetch is bounded: by the size a cached manifest of the repository
 * declares for the blob (its descriptor), else by cache.max_fetch_size. A
 * Content-Length that disagrees with the declared size (or exceeds the
 * maximum) is refused before any body byte is read; a body (chunked, or
 * without any length) that goes one byte past the bound is cut there. Both
 * end as a 502 for the clients, the staged bytes are removed, and the
 * upstream is counted as failing (pullcache_upstream_errors_total,
 * class "protocol").
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "mirror_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobpool.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "util.h"

enum { F_STARTING, F_STREAMING, F_DONE, F_FAILED };

struct pc_fetch {
    pc_mirror *m;
    pc_mirror_target t;
    pc_digest d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int state;
    int64_t total;     /* the size clients are told: Content-Length, else expect; -1 */
    int64_t expect;    /* the size a cached manifest declares, -1 when none does */
    uint64_t cap;      /* most body bytes taken when expect is unknown */
    char refused[300]; /* why the fetch was stopped by its bound, "" when not */
    uint64_t received;
    pc_spool *sp;
    pc_mirror_outcome fail;
    pc_fetch_waiter **waiters;
    size_t nwaiters, capwaiters;
    struct pc_fetch *next; /* in m->fetches */
    /* across processes sharing the stores: this fetch holds the lease
     * "fetch:<digest>" (it goes upstream), or follows its holder */
    bool leased;
    char key[PC_LEASE_KEY_MAX];
    char holder[PC_LEASE_OWNER_MAX]; /* the holder when following, "" when leased */
    uint64_t skip;                   /* bytes of a new source already in the spool */
    int64_t started;                 /* unix seconds, for the status page */
};

static void fetch_unref(pc_fetch *f)
{
    pthread_mutex_lock(&f->mu);
    int left = --f->refs;
    pthread_mutex_unlock(&f->mu);
    if (left > 0)
        return;
    if (f->sp)
        pc_spool_unref(f->sp);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f->waiters);
    free(f);
}

/* Take the waiter list (with f->mu held); the caller resumes them after
 * unlocking. */
static pc_fetch_waiter **take_waiters(pc_fetch *f, size_t *n)
{
    pc_fetch_waiter **list = f->waiters;
    *n = f->nwaiters;
    f->waiters = NULL;
    f->nwaiters = f->capwaiters = 0;
    return list;
}

static void wake(pc_fetch_waiter **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        list[i]->resume(list[i]->ctx);
    free(list);
}

/* The size a manifest of t's repository declares for d: -1 when none we
 * hold references it (a client may GET a blob by digest alone). */
static int64_t declared_size(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d)
{
    uint64_t size = 0;
    if (pc_registry_cache_blob_bound(m->reg, t->local, d, &size) != 0 || size > (uint64_t)INT64_MAX)
        return -1;
    return (int64_t)size;
}

/* Whether the headers announce a body the bound refuses; f->refused says
 * why. */
static bool start_refused(pc_fetch *f, const pc_upstream_resp *r)
{
    int64_t cl = r->content_length;
    if (f->expect >= 0 && cl >= 0 && cl != f->expect)
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent Content-Length %lld for blob %s, which its manifest declares "
                 "as %lld bytes",
                 f->t.name, (long long)cl, f->d.str, (long long)f->expect);
    else if (f->expect < 0 && cl >= 0 && (uint64_t)cl > f->cap)
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent Content-Length %lld for blob %s, more than "
                 "cache.max_fetch_size (%llu bytes)",
                 f->t.name, (long long)cl, f->d.str, (unsigned long long)f->cap);
    return f->refused[0] != '\0';
}

static int on_start(const pc_upstream_resp *r, void *ctx)
{
    pc_fetch *f = ctx;
    size_t n;
    if (start_refused(f, r))
        return 1; /* before any body byte: nothing staged */
    if (f->skip && r->content_length >= 0 && f->total >= 0 && r->content_length != f->total) {
        snprintf(f->refused, sizeof(f->refused),
                 "blob %s: the source that took over announced %lld bytes, not %lld", f->d.str,
                 (long long)r->content_length, (long long)f->total);
        return 1;
    }
    pthread_mutex_lock(&f->mu);
    f->total = r->content_length >= 0 ? r->content_length : f->expect;
    f->state = F_STREAMING;
    pthread_cond_broadcast(&f->cv);
    pc_fetch_waiter **list = take_waiters(f, &n);
    pthread_mutex_unlock(&f->mu);
    wake(list, n);
    return f->m->stopping ? 1 : 0;
}

static int on_data(const void *buf, size_t len, void *ctx)
{
    pc_fetch *f = ctx;
    size_t n;
    if (f->m->stopping)
        return 1;
    if (f->skip) {
        /* a source that took over sends from the start: what the spool
         * has (hashed with it) is dropped from its stream */
        size_t k = len < f->skip ? len : (size_t)f->skip;
        f->skip -= k;
        buf = (const char *)buf + k;
        len -= k;
        if (!len)
            return 0;
    }
    if (f->total >= 0 && f->received + len > (uint64_t)f->total) {
        /* more than declared: a chunked body past the manifest's size (curl
         * itself never hands out more than a Content-Length) */
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent more than the %lld bytes of blob %s", f->t.name,
                 (long long)f->total, f->d.str);
        return 1;
    }
    if (f->total < 0 && f->received + len > f->cap) {
        snprintf(f->refused, sizeof(f->refused),
                 "upstream %s sent more than cache.max_fetch_size (%llu bytes) for blob %s "
                 "of unknown size",
                 f->t.name, (unsigned long long)f->cap, f->d.str);
        return 1;
    }
    if (pc_spool_append(f->sp, buf, len))
        return 1;
    pthread_mutex_lock(&f->mu);
    f->received += len;
    pc_fetch_waiter **list = take_waiters(f, &n);
    pthread_mutex_unlock(&f->mu);
    wake(list, n);
    pc_metrics_add("pullcache_upstream_bytes_total", f->m->ups[f->t.upstream].labels, len);
    return 0;
}

static void finish(pc_fetch *f, int state)
{
    size_t n;
    pthread_mutex_lock(&f->mu);
    f->state = state;
    pthread_cond_broadcast(&f->cv);
    pc_fetch_waiter **list = take_waiters(f, &n);
    pthread_mutex_unlock(&f->mu);
    wake(list, n);
}

/* ---- across processes sharing the stores ----
 *
 * Who fetches a blob upstream is the holder of the meta store lease
 * "fetch:<digest>" (owner "<node> <advertise URL or ->"), kept alive by
 * the heartbeat thread every FETCH_BEAT_MS while its fetch runs and
 * released once the blob is published (or the fetch failed). Another
 * process asked for the blob meanwhile follows the holder: it streams the
 * blob from the holder's advertise address (a GET of the same repository
 * there, which joins the holder's fetch), verifies it, and links what the
 * holder published. When the holder is unreachable (it died), the
 * follower waits for the lease to run out (FETCH_LEASE_MS after the last
 * beat), takes it and fetches upstream itself: its clients keep the bytes
 * they have and the new stream goes on after them, all verified at the
 * end. Without an advertise address a follower waits for the blob to be
 * published and then serves it from the store. */
#define FETCH_LEASE_MS 5000
#define FETCH_BEAT_MS 1000
#define FOLLOW_POLL_MS 200
/* the longest a follower waits for a holder that neither finishes nor dies */
#define FOLLOW_MAX_MS (30L * 60 * 1000)

enum { FOLLOW_DONE = F_DONE, FOLLOW_FAILED = F_FAILED, FOLLOW_UPSTREAM = 100 };

void pc_fetch_coord_init(pc_mirror *m)
{
    const char *adv = m->cfg->cluster ? m->cfg->cluster->advertise : NULL;
    snprintf(m->owner, sizeof(m->owner), "%s %s", pc_registry_node(m->reg),
             adv && *adv ? adv : "-");
}

static void *heartbeat_main(void *arg)
{
    pc_mirror *m = arg;
    char(*keys)[PC_LEASE_KEY_MAX] = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&m->lock);
    while (m->heartbeat_on) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += FETCH_BEAT_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&m->heartbeat_cv, &m->lock, &until);
        if (!m->heartbeat_on)
            break;
        size_t n = 0;
        for (pc_fetch *f = m->fetches; f; f = f->next) {
            if (!f->leased)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                void *nk = realloc(keys, nc * sizeof(*keys));
                if (!nk)
                    break;
                keys = nk;
                cap = nc;
            }
            memcpy(keys[n++], f->key, sizeof(keys[0]));
        }
        pthread_mutex_unlock(&m->lock);
        for (size_t i = 0; i < n; i++)
            if (pc_registry_lease_renew(m->reg, keys[i], m->owner, FETCH_LEASE_MS) == PC_ENOTFOUND)
                pc_log(PC_LOG_WARN,
                       "lost the lease %s (this process stalled past %d ms): another "
                       "replica may fetch the blob too",
                       keys[i], FETCH_LEASE_MS);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    free(keys);
    return NULL;
}

/* With m->lock held: the heartbeat runs once a fetch holds a lease. */
static void heartbeat_start(pc_mirror *m)
{
    if (m->heartbeat_on)
        return;
    m->heartbeat_on = true;
    if (pthread_create(&m->heartbeat, NULL, heartbeat_main, m) != 0) {
        m->heartbeat_on = false;
        pc_log(PC_LOG_WARN, "cannot start the fetch lease heartbeat: other replicas may take "
                            "over long fetches");
    } else {
        /* a thread is named after its creator (a fetch worker) otherwise */
        pthread_setname_np(m->heartbeat, "pc-heartbeat");
    }
}

void pc_fetch_coord_free(pc_mirror *m)
{
    pthread_mutex_lock(&m->lock);
    bool on = m->heartbeat_on;
    m->heartbeat_on = false;
    pthread_cond_broadcast(&m->heartbeat_cv);
    pthread_mutex_unlock(&m->lock);
    if (on)
        pthread_join(m->heartbeat, NULL);
    for (unsigned i = 0; i < m->npeers; i++)
        pc_upstream_free(m->peers[i].client);
    m->npeers = 0;
}

/* The advertise URL in a lease owner ("<node> <url>"), or NULL for "-". */
static const char *holder_url(const char *owner)
{
    const char *sp = strchr(owner, ' ');
    if (!sp || !sp[1] || strcmp(sp + 1, "-") == 0)
        return NULL;
    return sp + 1;
}

/* A client for the replica at url (kept for the mirror's life). */
static pc_upstream *peer_client(pc_mirror *m, const char *url)
{
    pc_upstream *c = NULL;
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < m->npeers && !c; i++)
        if (strcmp(m->peers[i].url, url) == 0)
            c = m->peers[i].client;
    if (!c) {
        /* the deployment's shared secret, when there is one, lets it read
         * the blob with authentication on (auth_access.c) */
        pc_upstream_opts o = {.name = "peer",
                              .url = url,
                              .read_timeout_ms = 30000,
                              .token = m->cfg->cluster ? m->cfg->cluster->secret : NULL};
        if (pc_upstream_new(&c, &o) == 0) {
            if (m->npeers == sizeof(m->peers) / sizeof(m->peers[0])) {
                pc_upstream_free(m->peers[0].client);
                memmove(&m->peers[0], &m->peers[1], sizeof(m->peers[0]) * (m->npeers - 1));
                m->npeers--;
            }
            snprintf(m->peers[m->npeers].url, sizeof(m->peers[0].url), "%s", url);
            m->peers[m->npeers++].client = c;
        } else {
            c = NULL;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return c;
}

static void fail_with(pc_fetch *f, int status, const char *code, const char *msg)
{
    memset(&f->fail, 0, sizeof(f->fail));
    f->fail.status = status;
    snprintf(f->fail.code, sizeof(f->fail.code), "%s", code);
    snprintf(f->fail.message, sizeof(f->fail.message), "%s", msg);
}

/* Verify and link a spool that another replica's bytes (or the shared
 * store's) filled. */
static int follow_settle(pc_fetch *f)
{
    int crc = pc_registry_stage_settle(f->m->reg, f->sp, f->t.local, &f->d, f->received);
    if (crc == 0)
        return FOLLOW_DONE;
    char msg[400];
    snprintf(msg, sizeof(msg), "blob %s from another replica %s", f->d.str,
             crc == PC_EDIGEST ? "does not match its digest" : "could not be stored");
    pc_log(PC_LOG_WARN, "%s (%s)", msg, pc_error_last());
    if (crc != PC_EDIGEST)
        pc_spool_fail(f->sp, crc);
    fail_with(f, 502, "UNAVAILABLE", msg);
    return FOLLOW_FAILED;
}

/* The blob is in the shared store (its holder published it): copy it
 * into the spool for this process's clients, after the bytes they have. */
static int follow_from_store(pc_fetch *f)
{
    pc_blob_rd *rd = NULL;
    if (pc_registry_blob_open(f->m->reg, f->t.local, &f->d, &rd) != 0)
        return -1;
    pc_upstream_resp r;
    memset(&r, 0, sizeof(r));
    r.content_length = (int64_t)rd->size;
    int rc = on_start(&r, f) ? -1 : 0;
    static const size_t chunk = 256 * 1024;
    char *buf = rc ? NULL : malloc(chunk);
    uint64_t off = 0;
    while (rc == 0 && buf && off < rd->size) {
        long n = rd->read(rd, off, buf, chunk);
        if (n <= 0 || on_data(buf, (size_t)n, f)) {
            rc = -1;
            break;
        }
        off += (uint64_t)n;
    }
    if (!buf)
        rc = -1;
    free(buf);
    rd->close(rd);
    return rc;
}

/* Follow the fetch that the lease holder runs: FOLLOW_DONE (verified and
 * linked), FOLLOW_FAILED (f->fail says why), or FOLLOW_UPSTREAM (this
 * process holds the lease now: fetch upstream). */
static int follow(pc_fetch *f)
{
    pc_mirror *m = f->m;
    int64_t deadline = pc_util_mono_ms() + FOLLOW_MAX_MS;
    bool tried = false; /* the current holder was asked and failed */
    pc_metrics_add("pullcache_fetch_follows_total", m->ups[f->t.upstream].labels, 1);
    while (!m->stopping && pc_util_mono_ms() < deadline) {
        const char *url = holder_url(f->holder);
        if (url && !tried) {
            pc_upstream *c = peer_client(m, url);
            pc_upstream_resp r;
            memset(&r, 0, sizeof(r));
            int rc = c ? pc_upstream_blob(c, f->t.local, &f->d, false, on_start, on_data, f, &r)
                       : PC_ERR;
            bool whole = rc == 0 && r.cls == PC_UP_OK && !f->refused[0] &&
                         (f->total < 0 || f->received == (uint64_t)f->total);
            pc_up_class cls = rc ? PC_UP_REFUSED : r.cls;
            char why[sizeof(r.error_message)];
            memcpy(why, r.error_message, sizeof(why));
            long status = r.status;
            pc_upstream_resp_clear(&r);
            if (whole)
                return follow_settle(f);
            if (f->refused[0]) {
                pc_spool_fail(f->sp, PC_EUPSTREAM);
                fail_with(f, 502, "UNAVAILABLE", f->refused);
                return FOLLOW_FAILED;
            }
            if (cls == PC_UP_DENIED || status == 401 || status == 403) {
                /* it wants credentials this process has none for: wait for
                 * the blob to be published instead */
                pc_log(PC_LOG_WARN,
                       "blob %s: the replica fetching it (%s) refused to stream it (%ld): give "
                       "every replica the same cluster.secret_file; waiting for it to be "
                       "published",
                       f->d.str, url, status);
                f->skip = f->received;
                tried = true;
                continue;
            }
            if (cls != PC_UP_REFUSED && cls != PC_UP_RESET && cls != PC_UP_TIMEOUT &&
                cls != PC_UP_OK) {
                /* the holder answered: its upstream's failure is ours too
                 * (asking the upstream again would spend budget on the same
                 * answer) */
                char msg[sizeof(f->fail.message)];
                snprintf(msg, sizeof(msg), "blob %s: the replica fetching it answered %ld%s%.300s",
                         f->d.str, status, why[0] ? ": " : "", why);
                pc_spool_fail(f->sp, PC_EUPSTREAM);
                fail_with(f, status == 404 ? 404 : 502,
                          status == 404 ? "BLOB_UNKNOWN" : "UNAVAILABLE", msg);
                return FOLLOW_FAILED;
            }
            pc_log(PC_LOG_WARN,
                   "blob %s: the replica fetching it (%s) is unreachable after %llu "
                   "bytes (%s); taking over once its lease runs out",
                   f->d.str, url, (unsigned long long)f->received, pc_up_class_str(cls));
            f->skip = f->received;
            tried = true;
        }
        /* published meanwhile? then from the store */
        uint64_t size;
        if (pc_registry_cache_adopt(m->reg, f->t.local, &f->d, &size) == 0) {
            f->skip = f->received;
            if (follow_from_store(f) == 0 && f->received == size)
                return follow_settle(f);
            pc_spool_fail(f->sp, PC_EUPSTREAM);
            fail_with(f, 502, "UNAVAILABLE", "cannot read the blob another replica published");
            return FOLLOW_FAILED;
        }
        pc_meta_lease held;
        int lr = pc_registry_lease_take(m->reg, f->key, m->owner, FETCH_LEASE_MS, &held);
        if (lr == 0) {
            pthread_mutex_lock(&m->lock);
            f->leased = true;
            f->holder[0] = '\0';
            heartbeat_start(m);
            pthread_mutex_unlock(&m->lock);
            f->skip = f->received;
            pc_metrics_add("pullcache_fetch_takeovers_total", m->ups[f->t.upstream].labels, 1);
            return FOLLOW_UPSTREAM;
        }
        if (lr == PC_EEXISTS && strcmp(held.owner, f->holder) != 0) {
            snprintf(f->holder, sizeof(f->holder), "%s", held.owner);
            tried = false; /* a new holder: ask it */
            continue;
        }
        if (lr != PC_EEXISTS) {
            pc_spool_fail(f->sp, lr);
            fail_with(f, 503, "UNAVAILABLE", "the meta store cannot say who fetches this blob");
            return FOLLOW_FAILED;
        }
        struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    pc_spool_fail(f->sp, PC_EUPSTREAM);
    fail_with(f, 503, "UNAVAILABLE", "the replica fetching this blob did not finish in time");
    return FOLLOW_FAILED;
}

/* The fetch's lease, taken by its job: a meta store round trip (on
 * PostgreSQL a network call), so never under m->lock. This process's
 * requests for the digest already share f (m->fetches, under m->lock); the
 * lease makes it one fetch across the processes sharing the stores. */
static void take_lease(pc_fetch *f)
{
    pc_mirror *m = f->m;
    pc_meta_lease held;
    int lr = pc_registry_lease_take(m->reg, f->key, m->owner, FETCH_LEASE_MS, &held);
    if (lr != 0 && lr != PC_EEXISTS)
        pc_log(PC_LOG_WARN,
               "blob %s: the meta store cannot say who fetches it (%s); fetching it here", f->d.str,
               pc_error_last());
    pthread_mutex_lock(&m->lock); /* the heartbeat reads leased and key under it */
    if (lr == 0) {
        f->leased = true;
        heartbeat_start(m);
    } else if (lr == PC_EEXISTS) {
        snprintf(f->holder, sizeof(f->holder), "%s", held.owner);
    } else {
        f->key[0] = '\0';
    }
    pthread_mutex_unlock(&m->lock);
}

/* One fetch, on a worker of the mirror's fetch pool. */
static void fetch_main(void *arg, void *worker)
{
    pc_fetch *f = arg;
    pc_mirror *m = f->m;
    pc_upstream_resp r;
    int state = F_FAILED;

    memset(&r, 0, sizeof(r));
    take_lease(f);
    f->expect = declared_size(m, &f->t, &f->d);
    if (!f->leased && f->key[0]) {
        int fr = follow(f);
        if (fr != FOLLOW_UPSTREAM) {
            state = fr;
            goto out;
        }
    }
    int rc = pc_upstream_blob(m->ups[f->t.upstream].client, f->t.repo, &f->d, false, on_start,
                              on_data, f, &r);
    if (rc == 0 && f->refused[0]) {
        /* the upstream broke the bound: its fault, not an abort of ours */
        r.cls = PC_UP_PROTOCOL;
        snprintf(r.error_message, sizeof(r.error_message), "%s", f->refused);
    }
    pc_mirror_count(m, &f->t, "blob", "GET", rc ? NULL : &r);
    if (rc)
        r.cls = PC_UP_PROTOCOL;
    bool complete =
        rc == 0 && r.cls == PC_UP_OK && (f->total < 0 || f->received == (uint64_t)f->total);
    if (complete) {
        /* verify, publish, link and record the access in one step under
         * the publish lock: gc cannot take the file in between (registry.h) */
        int crc = pc_registry_stage_commit(m->reg, f->sp, f->t.local, &f->d, f->received);
        if (crc == 0) {
            state = F_DONE;
        } else if (crc == PC_EDIGEST) {
            pc_log(PC_LOG_WARN, "upstream %s: blob %s of %s failed verification; not stored",
                   f->t.name, f->d.str, f->t.repo);
            memset(&f->fail, 0, sizeof(f->fail));
            f->fail.status = 502;
            snprintf(f->fail.code, sizeof(f->fail.code), "UNAVAILABLE");
            snprintf(f->fail.message, sizeof(f->fail.message),
                     "upstream %s sent content that does not match digest %s", f->t.name, f->d.str);
        } else {
            char why[256];
            snprintf(why, sizeof(why), "%s", pc_error_last());
            pc_log(PC_LOG_ERROR, "blob %s of %s from upstream %s could not be stored (%s): %s",
                   f->d.str, f->t.repo, f->t.name, pc_result_str(crc), why);
            memset(&f->fail, 0, sizeof(f->fail));
            f->fail.status = 500;
            snprintf(f->fail.code, sizeof(f->fail.code), "UNKNOWN");
            snprintf(f->fail.message, sizeof(f->fail.message), "cannot store blob %s: %s", f->d.str,
                     why);
        }
    } else {
        pc_spool_fail(f->sp, PC_EUPSTREAM);
        if (r.cls == PC_UP_OK) /* short body with a 2xx */
            r.cls = PC_UP_RESET;
        pc_mirror_fail(m, &f->t, &r, "blob", &f->fail);
        if (f->refused[0]) {
            snprintf(f->fail.message, sizeof(f->fail.message), "%s; not stored", f->refused);
            pc_log(PC_LOG_WARN, "%s (%s); not stored", f->refused, f->t.repo);
        } else if (f->received)
            pc_log(PC_LOG_WARN, "upstream %s: blob %s of %s broke off after %llu bytes (%s)",
                   f->t.name, f->d.str, f->t.repo, (unsigned long long)f->received,
                   pc_up_class_str(r.cls));
    }
    pc_upstream_resp_clear(&r);
    if (state == F_DONE) {
        char labels[300];
        snprintf(labels, sizeof(labels), "%s,kind=\"blob\"", m->ups[f->t.upstream].labels);
        pc_metrics_add("pullcache_cache_misses_total", labels, 1);
    }
out:
    if (f->leased) /* published (or failed): the next asker looks again */
        pc_registry_lease_release(m->reg, f->key, m->owner);

    /* Leave the table before announcing the end, so a request arriving
     * now finds the published blob (or starts a new fetch after a
     * failure). */
    pthread_mutex_lock(&m->lock);
    for (pc_fetch **pp = &m->fetches; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    pthread_mutex_unlock(&m->lock);
    finish(f, state);
    pc_metrics_gauge_add("pullcache_fetches_in_flight", m->ups[f->t.upstream].labels, -1);
    fetch_unref(f);

    pthread_mutex_lock(&m->lock);
    if (--m->nfetch_threads == 0)
        pthread_cond_broadcast(&m->idle);
    pthread_mutex_unlock(&m->lock);
}

/* The fetch pool (m->lock held), started on the first fetch: fetches run
 * there, never on the request pool, so a request job waiting for a fetch to
 * start never holds the worker that fetch needs (jobpool.h). A fetch job
 * waits for nothing but its upstream. */
static pc_jobpool *fetch_pool(pc_mirror *m)
{
    if (!m->fetch_pool) {
        unsigned n = m->cfg->cache ? m->cfg->cache->fetch_workers : 0;
        pc_jobpool_opts o = {.workers = n ? n : PC_CONFIG_WORKERS_DEFAULT, .name = "pc-fetch"};
        pc_jobpool_new(&m->fetch_pool, &o);
    }
    return m->fetch_pool;
}

void pc_fetch_pool_stop(pc_mirror *m)
{
    pthread_mutex_lock(&m->lock);
    pc_jobpool *p = m->fetch_pool;
    m->fetch_pool = NULL;
    pthread_mutex_unlock(&m->lock);
    /* queued fetches still run: with m->stopping they end at their first
     * callback, failing their waiters */
    pc_jobpool_free(p, PC_JOBPOOL_FINISH);
}

int pc_fetch_join(pc_mirror *m, const pc_mirror_target *t, const pc_digest *d, pc_fetch **out)
{
    uint64_t size;
    int rc = 0;

    pthread_mutex_lock(&m->lock);
    if (m->stopping) {
        pthread_mutex_unlock(&m->lock);
        pc_error_set("shutting down");
        return PC_ERR;
    }
    for (pc_fetch *f = m->fetches; f; f = f->next) {
        if (pc_digest_equal(&f->d, d)) {
            pthread_mutex_lock(&f->mu);
            f->refs++;
            pthread_mutex_unlock(&f->mu);
            pthread_mutex_unlock(&m->lock);
            pc_metrics_add("pullcache_fetch_waiters_total", m->ups[t->upstream].labels, 1);
            *out = f;
            return 0;
        }
    }
    /* Published meanwhile (a fetch that ended since the caller looked):
     * make it this repository's (strict: only when it already is), under
     * m->lock so that a fetch ending now is seen in the table or here. */
    rc = m->strict ? pc_registry_cache_blob_hit(m->reg, t->local, d, &size)
                   : pc_registry_cache_adopt(m->reg, t->local, d, &size);
    if (rc != PC_ENOTFOUND) {
        pthread_mutex_unlock(&m->lock);
        return rc ? rc : PC_EEXISTS;
    }
    rc = 0;
    pc_fetch *f = calloc(1, sizeof(*f));
    if (!f) {
        pthread_mutex_unlock(&m->lock);
        return PC_ENOMEM;
    }
    f->m = m;
    f->t = *t;
    f->d = *d;
    f->total = -1;
    f->expect = -1;
    f->started = pc_util_now_s();
    f->cap = m->cfg->cache && m->cfg->cache->max_fetch_size ? m->cfg->cache->max_fetch_size
                                                            : PC_CONFIG_MAX_FETCH_DEFAULT;
    f->refs = 2; /* the caller and the fetch job */
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if ((rc = pc_registry_stage_begin(m->reg, d, &f->sp)))
        goto fail;
    /* one fetch across every process sharing the stores: the job takes
     * the lease (take_lease) */
    snprintf(f->key, sizeof(f->key), "fetch:%s", d->str);
    pc_jobpool *pool = fetch_pool(m);
    if (!pool || (rc = pc_jobpool_submit(pool, fetch_main, NULL, f)) != 0) {
        pc_error_set("cannot start a fetch");
        rc = rc ? rc : PC_ERR;
        goto fail;
    }
    f->next = m->fetches;
    m->fetches = f;
    m->nfetch_threads++;
    pthread_mutex_unlock(&m->lock);
    pc_metrics_gauge_add("pullcache_fetches_in_flight", m->ups[t->upstream].labels, 1);
    *out = f;
    return 0;
fail:
    pthread_mutex_unlock(&m->lock);
    f->refs = 1;
    fetch_unref(f);
    return rc;
}

int pc_fetch_wait_start(pc_fetch *f, int64_t *size, pc_mirror_outcome *out)
{
    pthread_mutex_lock(&f->mu);
    while (f->state == F_STARTING)
        pthread_cond_wait(&f->cv, &f->mu);
    int state = f->state;
    *size = f->total;
    if (state == F_FAILED)
        *out = f->fail;
    pthread_mutex_unlock(&f->mu);
    return state == F_FAILED ? PC_EUPSTREAM : 0;
}

/* Add w to the waiters woken at the next event (f->mu held). 0 or -1. */
static int add_waiter(pc_fetch *f, pc_fetch_waiter *w)
{
    if (f->nwaiters == f->capwaiters) {
        size_t cap = f->capwaiters ? f->capwaiters * 2 : 8;
        pc_fetch_waiter **nw = realloc(f->waiters, cap * sizeof(*nw));
        if (!nw)
            return -1;
        f->waiters = nw;
        f->capwaiters = cap;
    }
    f->waiters[f->nwaiters++] = w;
    return 0;
}

long pc_fetch_read(pc_fetch *f, uint64_t pos, void *buf, size_t max, pc_fetch_waiter *w)
{
    pthread_mutex_lock(&f->mu);
    if (f->state == F_FAILED) {
        pthread_mutex_unlock(&f->mu);
        return PC_ERR;
    }
    /* Until the digest is verified the last byte stays back, so a transfer
     * that turns out bad can never complete at the client. */
    uint64_t limit = f->state == F_DONE ? f->received : (f->received ? f->received - 1 : 0);
    if (pos < limit) {
        size_t n = (size_t)(limit - pos < max ? limit - pos : max);
        pthread_mutex_unlock(&f->mu);
        long got = pc_spool_read(f->sp, pos, buf, n);
        return got > 0 ? got : PC_ERR;
    }
    if (f->state == F_DONE) {
        pthread_mutex_unlock(&f->mu);
        return PC_ENOTFOUND;
    }
    if (add_waiter(f, w) != 0) {
        pthread_mutex_unlock(&f->mu);
        return PC_ERR;
    }
    w->suspend(w->ctx);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

int pc_fetch_when_started(pc_fetch *f, pc_fetch_waiter *w)
{
    pthread_mutex_lock(&f->mu);
    int state = f->state;
    if (state == F_STARTING && add_waiter(f, w) != 0) { /* on_start or finish wakes it */
        pthread_mutex_unlock(&f->mu);
        return PC_ENOMEM;
    }
    pthread_mutex_unlock(&f->mu);
    return state == F_STARTING ? 1 : state == F_FAILED ? PC_EUPSTREAM : 0;
}

void pc_fetch_unwait(pc_fetch *f, pc_fetch_waiter *w)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nwaiters; i++)
        if (f->waiters[i] == w) {
            f->waiters[i] = f->waiters[--f->nwaiters];
            break;
        }
    pthread_mutex_unlock(&f->mu);
}

bool pc_fetch_running(pc_mirror *m, const pc_digest *d)
{
    bool found = false;
    pthread_mutex_lock(&m->lock);
    for (pc_fetch *f = m->fetches; f && !found; f = f->next)
        found = pc_digest_equal(&f->d, d);
    pthread_mutex_unlock(&m->lock);
    return found;
}

void pc_fetch_release(pc_fetch *f)
{
    if (f)
        fetch_unref(f);
}

json_t *pc_fetch_list_json(pc_mirror *m)
{
    static const char *states[] = {"starting", "streaming", "done", "failed"};
    json_t *list = json_array();
    if (!m || !list)
        return list;
    pthread_mutex_lock(&m->lock);
    for (pc_fetch *f = m->fetches; f; f = f->next) {
        pthread_mutex_lock(&f->mu);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:b}", "upstream", f->t.name,
                              "repository", f->t.repo, "digest", f->d.str, "state",
                              states[f->state], "received", (json_int_t)f->received, "total",
                              f->total >= 0 ? json_integer((json_int_t)f->total) : json_null(),
                              "started", (json_int_t)f->started, "leased", f->leased || !f->key[0]);
        pthread_mutex_unlock(&f->mu);
        if (o)
            json_array_append_new(list, o);
    }
    pthread_mutex_unlock(&m->lock);
    return list;
}
