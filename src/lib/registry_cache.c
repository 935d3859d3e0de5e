/*
 * registry_cache.c - the registry operations of the pull-through cache,
 * eviction, readiness probes and the limiter's counters: every store
 * access of mirror.c, mirror_fetch.c, mirror_evict.c and the HTTP handlers (registry.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "registry_int.h"
#include "manifest_memo.h"
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* ---- repository data ---- */

int pc_registry_manifest_get(pc_registry *reg, const char *repo, const pc_digest *d,
                             pc_manifest_rec *out)
{
    return reg->ms->reg->manifest_get(reg->ms, repo, d, out);
}

int pc_registry_manifest_bytes(pc_registry *reg, const pc_digest *d, void **buf, size_t *len)
{
    /* an object store's read is a round trip: small manifests that hashed
     * right are kept in memory (manifest_memo.c) */
    bool remote = (reg->be->caps & PC_BLOB_CAP_REMOTE) != 0;
    if (remote && pc_manifest_memo_get(d, buf, len) == 0)
        return 0;
    int rc = pc_blob_get(reg->be, d, PC_MANIFEST_MAX, buf, len);
    if (rc == 0 && remote)
        pc_manifest_memo_put(d, *buf, *len);
    return rc;
}

int pc_registry_tag_stat(pc_registry *reg, const char *repo, const char *tag, pc_digest *out,
                         int64_t *updated)
{
    return reg->ms->cache->tag_stat(reg->ms, repo, tag, out, updated);
}

int pc_registry_tag_touch(pc_registry *reg, const char *repo, const char *tag, const pc_digest *d,
                          int64_t when)
{
    return reg->ms->cache->tag_touch(reg->ms, repo, tag, d, when);
}

int pc_registry_tag_delete(pc_registry *reg, const char *repo, const char *tag)
{
    return reg->ms->reg->tag_delete(reg->ms, repo, tag);
}

int pc_registry_tag_each(pc_registry *reg, const char *repo, pc_meta_str_cb cb, void *ctx)
{
    return reg->ms->reg->tag_list(reg->ms, repo, NULL, -1, cb, ctx);
}

int pc_registry_repo_each(pc_registry *reg, pc_meta_str_cb cb, void *ctx)
{
    return reg->ms->reg->catalog(reg->ms, NULL, -1, cb, ctx);
}

void pc_registry_rec_fill(pc_manifest_rec *rec, const char *repo, const pc_digest *d,
                          const pc_manifest_info *info, size_t len)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->repo, sizeof(rec->repo), "%s", repo);
    rec->digest = *d;
    snprintf(rec->media_type, sizeof(rec->media_type), "%s", info->media_type);
    rec->size = len;
    snprintf(rec->artifact_type, sizeof(rec->artifact_type), "%s", info->artifact_type);
    rec->has_subject = info->has_subject;
    if (info->has_subject)
        rec->subject = info->subject;
}

/* ---- mirrored blobs ---- */

int pc_registry_cache_blob_hit(pc_registry *reg, const char *repo, const pc_digest *d,
                               uint64_t *size)
{
    uint64_t want = 0;
    int rc = reg->ms->reg->blob_stat(reg->ms, repo, d, &want);
    if (rc || (rc = reg->be->stat(reg->be, d, size)))
        return rc;
    if ((rc = pc_registry_size_check(reg, d, want, *size)))
        return rc;
    /* bookkeeping for eviction only: serving the hit matters more */
    if (reg->ms->cache->access_touch(reg->ms, d, *size, pc_util_now_s()))
        pc_log(PC_LOG_DEBUG, "blob %s: access not recorded: %s", d->str, pc_error_last());
    return 0;
}

/* The one way a blob becomes a mirrored repository's: under the publish
 * lock, publish verified spool sp as d (when sp is not NULL; size is then
 * its length) or find d already published (*size from its file, checked
 * against a size recorded elsewhere), link d into repo and record the
 * access. Every step's error ends it and is returned. */
static int cache_publish(pc_registry *reg, pc_spool *sp, const char *repo, const pc_digest *d,
                         uint64_t *size)
{
    pc_blob_hold lk;
    uint64_t want = 0;
    int rc = pc_registry_publish_lock(reg, &lk);
    if (rc)
        return rc;
    if (sp) {
        rc = pc_spool_commit(sp, reg->be);
    } else if ((rc = reg->be->stat(reg->be, d, size)) == 0 &&
               reg->ms->reg->blob_stat_any(reg->ms, d, &want) == 0) {
        rc = pc_registry_size_check(reg, d, want, *size);
    }
    if (rc == 0)
        rc = reg->ms->reg->blob_link(reg->ms, repo, d, *size);
    if (rc == 0)
        rc = reg->ms->cache->access_touch(reg->ms, d, *size, pc_util_now_s());
    pc_registry_publish_unlock(reg, &lk);
    /* no publish lock (S3): removed by a gc that looked before the link,
     * this request fails (the client retries, the blob is fetched again) */
    if (rc == 0 && (rc = pc_registry_publish_settle(reg, d)) == PC_ENOTFOUND) {
        reg->ms->reg->blob_unlink(reg->ms, repo, d);
        rc = PC_ERR;
    }
    return rc;
}

int pc_registry_cache_adopt(pc_registry *reg, const char *repo, const pc_digest *d, uint64_t *size)
{
    /* a miss (the common case) costs one look, not the publish lock, which
     * a gc batch may hold for a while */
    int rc = reg->be->stat(reg->be, d, size);
    return rc ? rc : cache_publish(reg, NULL, repo, d, size);
}

/* The spool directory: <data>/tmp, where the fs backend adopts a verified
 * spool's file without a copy. */
static void spool_dir(pc_registry *reg, char *buf, size_t size)
{
    const char *t = getenv("TMPDIR");
    if (reg->data_dir)
        snprintf(buf, size, "%s/tmp", reg->data_dir);
    else
        snprintf(buf, size, "%s", t && *t ? t : "/tmp");
}

int pc_registry_stage_begin(pc_registry *reg, const pc_digest *d, pc_spool **out)
{
    char dir[4096];
    pc_spool_opts o = {.holdback = 1};
    spool_dir(reg, dir, sizeof(dir));
    return pc_spool_create(dir, d, &o, out);
}

int pc_registry_stage_commit(pc_registry *reg, pc_spool *sp, const char *repo, const pc_digest *d,
                             uint64_t size)
{
    int rc = pc_spool_finish(sp);
    return rc ? rc : cache_publish(reg, sp, repo, d, &size);
}

int pc_registry_stage_settle(pc_registry *reg, pc_spool *sp, const char *repo, const pc_digest *d,
                             uint64_t size)
{
    int rc = pc_spool_finish(sp);
    if (rc)
        return rc;
    uint64_t have = 0;
    if (reg->be->stat(reg->be, d, &have) == 0 && have == size)
        return cache_publish(reg, NULL, repo, d, &have);
    return cache_publish(reg, sp, repo, d, &size);
}

int pc_registry_cache_blob_bound(pc_registry *reg, const char *repo, const pc_digest *d,
                                 uint64_t *size)
{
    pc_digest md;
    void *buf = NULL;
    size_t len = 0;
    if (reg->ms->reg->ref_holder(reg->ms, repo, d, &md) != 0)
        return PC_ENOTFOUND;
    int rc = PC_ENOTFOUND;
    if (pc_registry_manifest_bytes(reg, &md, &buf, &len) == 0 &&
        pc_manifest_blob_size(buf, len, d, size) == 0)
        rc = 0;
    free(buf);
    return rc;
}

int pc_registry_cache_manifest_put(pc_registry *reg, const char *repo, const char *tag,
                                   const pc_digest *expect, const pc_digest *d, const void *buf,
                                   size_t len, const pc_manifest_info *info, pc_manifest_rec *rec)
{
    pc_blob_hold lk;
    pc_registry_rec_fill(rec, repo, d, info, len);
    int rc = pc_registry_publish_lock(reg, &lk);
    if (rc)
        return rc;
    if ((rc = pc_blob_put(reg->be, d, buf, len)) == 0)
        rc = reg->ms->reg->manifest_put(reg->ms, rec, info->refs, info->nrefs, tag, expect);
    pc_registry_publish_unlock(reg, &lk);
    /* no publish lock (S3): bytes a gc removed before the record are put again */
    if (rc == 0 && (rc = pc_registry_publish_settle(reg, d)) == PC_ENOTFOUND)
        rc = pc_blob_put(reg->be, d, buf, len);
    return rc;
}

/* ---- eviction ---- */

typedef struct {
    pc_registry_lru_entry *v;
    size_t n, cap;
} lru_list;

static int lru_add(const pc_digest *d, uint64_t size, int64_t last_access, void *ctx)
{
    lru_list *c = ctx;
    (void)last_access;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        pc_registry_lru_entry *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return PC_ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n].d = *d;
    c->v[c->n].size = size;
    c->n++;
    return 0;
}

int pc_registry_cache_lru(pc_registry *reg, pc_meta_repo_pred mirror, void *ctx, bool dry,
                          pc_registry_lru_entry **out, size_t *n)
{
    lru_list c = {NULL, 0, 0};
    *out = NULL;
    *n = 0;
    int rc = reg->ms->cache->access_lru(reg->ms, mirror, ctx, lru_add, &c);
    if (rc) {
        free(c.v);
        return rc;
    }
    /* Keep what is really stored, with its file's size; records of blobs
     * already gone (removed by a sweep, or evicted while a request linked
     * them again) are dropped. */
    size_t kept = 0;
    for (size_t i = 0; i < c.n; i++) {
        uint64_t size;
        if (reg->be->stat(reg->be, &c.v[i].d, &size) == 0) {
            c.v[kept].d = c.v[i].d;
            c.v[kept++].size = size;
        } else if (!dry) {
            reg->ms->cache->access_evict(reg->ms, &c.v[i].d, mirror, ctx);
        }
    }
    *out = c.v;
    *n = kept;
    return 0;
}

int pc_registry_cache_evict(pc_registry *reg, const pc_digest *d, pc_meta_repo_pred mirror,
                            void *ctx)
{
    /* Links first: once they are gone no new client finds the blob through
     * this mirror's repositories; a local push that linked it meanwhile
     * makes this PC_EEXISTS and the blob stays. */
    int rc = reg->ms->cache->access_evict(reg->ms, d, mirror, ctx);
    if (rc)
        return rc;
    rc = reg->be->remove(reg->be, d);
    return rc == PC_ENOTFOUND ? 0 : rc;
}

static int count_blob(const pc_blob_entry *e, void *ctx)
{
    uint64_t *acc = ctx;
    acc[0]++;
    acc[1] += e->size;
    return 0;
}

int pc_registry_store_usage(pc_registry *reg, uint64_t *blobs, uint64_t *bytes)
{
    uint64_t acc[2] = {0, 0};
    int rc = reg->be->list(reg->be, count_blob, acc);
    if (rc)
        return rc;
    *blobs = acc[0];
    *bytes = acc[1];
    return 0;
}

/* ---- readiness ---- */

int pc_registry_probe_blobs(pc_registry *reg)
{
    static atomic_ulong seq;
    char id[64];
    snprintf(id, sizeof(id), "readyz-%ld-%lu", (long)getpid(),
             (unsigned long)atomic_fetch_add(&seq, 1));
    pc_blob_wr *w = NULL;
    int rc = reg->be->writer(reg->be, id, true, &w);
    if (rc == 0) {
        rc = w->append(w, "r", 1);
        if (rc == 0)
            rc = w->checkpoint(w, NULL, 0);
        w->close(w);
        int rm = reg->be->upload_remove(reg->be, id, 0);
        rc = rc ? rc : rm;
    }
    return rc;
}

int pc_registry_probe_meta(pc_registry *reg)
{
    int rc = reg->ms->reg->repo_exists(reg->ms, "pullcache/readyz");
    return rc == PC_ENOTFOUND ? 0 : rc;
}

/* ---- the limiter's counters ---- */

int pc_registry_limit_save(pc_registry *reg, const pc_meta_limit_row *rows, size_t n, int64_t now,
                           bool replace)
{
    return reg->ms->limits->limit_save(reg->ms, rows, n, now, replace);
}

int pc_registry_limit_load(pc_registry *reg, int64_t now, pc_meta_limit_cb cb, void *ctx)
{
    return reg->ms->limits->limit_load(reg->ms, now, cb, ctx);
}

int pc_registry_limit_take(pc_registry *reg, const char *key, int64_t bucket, int64_t first,
                           int64_t expires, uint64_t max, bool count, pc_meta_limit_take *out)
{
    return reg->ms->limits->limit_take(reg->ms, key, bucket, first, expires, max, count, out);
}
