/*
 * registry.c - repository operations over the blob store and meta store:
 * the rules of the distribution spec that do not depend on HTTP.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "registry_int.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store/factory.h"

#include <jansson.h>

/* The spare file kept in a data directory so that deletes and gc can free
 * space on a full disk (see space_reserve below). */
#define RESERVE_NAME "space.reserve"
#define RESERVE_BYTES (1024 * 1024)

/* Upload ids of monolithic POSTs: no client ever got their Location, so
 * one left by a crash can be dropped at the next start. */
#define MONO_PREFIX "m-"

/* ---- the space reserve ----
 *
 * A full disk (or a full SQLite file on it) refuses every write, and
 * SQLite needs room in its WAL even to delete a row. So a data directory
 * keeps RESERVE_BYTES in a spare file: an operation that frees space (a
 * delete, gc) and hits "disk full" removes the spare file and tries again;
 * the spare is made again once there is room. */

static void reserve_path(pc_registry *reg, char *buf, size_t size)
{
    snprintf(buf, size, "%s/" RESERVE_NAME, reg->data_dir);
}

/* Whether a store keeps its data on the data directory's disk (no
 * reserve is made for memory-only storage). */
static bool on_disk(const pc_registry *reg)
{
    return reg->data_dir && (reg->sqlite || (reg->be->caps & PC_BLOB_CAP_DURABLE));
}

void pc_registry_reserve_refill(pc_registry *reg)
{
    char path[4096], tmp[4200];
    struct stat st;
    if (!on_disk(reg))
        return;
    reserve_path(reg, path, sizeof(path));
    if (stat(path, &st) == 0)
        return;
    snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return; /* read-only, or not even an inode left */
    bool ok = posix_fallocate(fd, 0, RESERVE_BYTES) == 0 && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}

/* Give the reserve up: true when there was one. */
static bool reserve_release(pc_registry *reg)
{
    char path[4096];
    if (!on_disk(reg))
        return false;
    reserve_path(reg, path, sizeof(path));
    if (unlink(path) != 0)
        return false;
    pc_log(PC_LOG_WARN,
           "storage full: released the %d KiB space reserve of %s so that a delete can go on; "
           "free space (pullcache gc) and it is made again",
           RESERVE_BYTES / 1024, reg->data_dir);
    return true;
}

int pc_registry_new(pc_registry **out, pc_blob_backend *be, pc_metastore *ms)
{
    int rc = pc_meta_check(ms);
    if (rc)
        return rc;
    pc_registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return PC_ENOMEM;
    reg->be = be;
    reg->ms = ms;
    reg->claim_fd = -1;
    char hex[17];
    if (pc_util_random_hex(hex, 8, "a node id")) {
        free(reg);
        return PC_ERR;
    }
    snprintf(reg->node, sizeof(reg->node), "node-%s", hex);
    pthread_mutex_init(&reg->lock, NULL);
    *out = reg;
    return 0;
}

int pc_registry_open(pc_registry **out, const char *data_dir)
{
    pc_store_opts o = {.data_dir = data_dir};
    return pc_registry_open_opts(out, &o);
}

int pc_registry_open_opts(pc_registry **out, const pc_store_opts *o)
{
    pc_blob_backend *be = NULL;
    pc_metastore *ms = NULL;
    char path[4096];
    const char *data_dir = o->data_dir;
    int rc;

    if (!data_dir || !*data_dir) {
        pc_error_set("no data directory given");
        return PC_EINVAL;
    }
    if ((rc = pc_store_check(o)))
        return rc;
    if (mkdir(data_dir, 0755) != 0 && errno != EEXIST) {
        pc_error_set("cannot create data directory %s: %s", data_dir, strerror(errno));
        return PC_ERR;
    }
    if (!pc_store_is_default(o))
        pc_log(PC_LOG_WARN, "storage: blobs kept by the %s backend, metadata by the %s store%s",
               pc_store_blobs_name(o), pc_store_meta_name(o),
               pc_store_durable(o) ? "" : ": what is not on disk is lost when pullcache stops");
    if ((rc = pc_store_blobs_open(o, &be)))
        goto done;
    /* the fetch spools live in <data>/tmp (fs makes it; mem does not) */
    if ((size_t)snprintf(path, sizeof(path), "%s/tmp", data_dir) >= sizeof(path) ||
        (mkdir(path, 0755) != 0 && errno != EEXIST)) {
        pc_error_set("cannot create %s: %s", path, strerror(errno));
        rc = PC_ERR;
        goto done;
    }
    if ((rc = pc_store_meta_open(o, &ms)))
        goto done;
    if ((rc = pc_registry_new(out, be, ms)))
        goto done;
    (*out)->sqlite = strcmp(pc_store_meta_name(o), "sqlite") == 0;
    if (!((*out)->data_dir = strdup(data_dir))) {
        pc_registry_free(*out);
        *out = NULL;
        return PC_ENOMEM;
    }
    pc_registry_reserve_refill(*out);
done:
    if (rc) {
        if (ms)
            ms->free(ms);
        if (be)
            be->free(be);
    }
    return rc;
}

void pc_registry_free(pc_registry *reg)
{
    if (!reg)
        return;
    reg->ms->free(reg->ms);
    reg->be->free(reg->be);
    pthread_mutex_destroy(&reg->lock);
    if (reg->claim_fd >= 0)
        close(reg->claim_fd);
    free(reg->data_dir);
    free(reg);
}

int pc_registry_check_meta(pc_registry *reg)
{
    return reg->sqlite ? pc_meta_sqlite_quick_check(reg->ms) : 0;
}

int pc_registry_claim(pc_registry *reg)
{
    char path[4096];
    if (!reg->data_dir)
        return PC_EEXISTS;
    if (reg->claim_fd >= 0)
        return 0;
    snprintf(path, sizeof(path), "%s/serve.lock", reg->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == EROFS)
        return PC_EROFS; /* nothing to clean up there anyway */
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (fd >= 0)
            close(fd);
        return PC_EEXISTS;
    }
    reg->claim_fd = fd; /* held until pc_registry_free (or the process dies) */
    /* the only process on these stores: its leases are the data
     * directory's, so what a killed predecessor held is this one's now (a
     * client resumes its upload at once after a restart) */
    snprintf(reg->node, sizeof(reg->node), "claimed:%s", reg->data_dir);
    return 0;
}

int pc_registry_publish_lock(pc_registry *reg, pc_blob_hold *lk)
{
    return pc_blob_publish_lock(reg->be, false, lk);
}

void pc_registry_publish_unlock(pc_registry *reg, pc_blob_hold *lk)
{
    pc_blob_publish_unlock(reg->be, lk);
}

int pc_registry_rd_digest(pc_blob_rd *r, pc_digest_alg alg, pc_digest *out)
{
    int fd = -1;
    if (pc_blob_rd_fd(r, &fd) == 0) {
        int rc = pc_digest_fd(out, alg, fd);
        close(fd);
        return rc;
    }
    /* from the heap, not a thread-local buffer: static TLS is set up (its
     * pages touched) in every thread the process starts */
    enum { BUF = 65536 };
    pc_hasher *h = NULL;
    char *buf = malloc(BUF);
    int rc = buf ? pc_hasher_new(&h, alg) : PC_ENOMEM;
    for (uint64_t off = 0; rc == 0;) {
        long n = r->read(r, off, buf, BUF);
        if (n <= 0) {
            rc = n < 0 ? (int)n : pc_hasher_final(h, out);
            break;
        }
        rc = pc_hasher_update(h, buf, (size_t)n);
        off += (uint64_t)n;
    }
    pc_hasher_free(h);
    free(buf);
    return rc;
}

/* ---- blobs ---- */

void pc_registry_blob_damaged(pc_registry *reg, const pc_digest *d, const char *why)
{
    int rc = pc_blob_quarantine(reg->be, d);
    pc_log(PC_LOG_ERROR,
           "blob %s is damaged (%s): %s; it is not served (a push or an upstream fetch stores it "
           "again); run `pullcache fsck --repair` to check the rest of the store",
           d->str, why,
           rc == 0 ? "taken out of service (quarantine/)" : "could not take it out of service");
}

/* The recorded size of d in repo: its link's, or its manifest record's
 * (manifests are blobs too, fetchable through the blobs endpoint, as
 * distribution allows). */
static int recorded_size(pc_registry *reg, const char *repo, const pc_digest *d, uint64_t *size)
{
    int rc = reg->ms->reg->blob_stat(reg->ms, repo, d, size);
    if (rc == PC_ENOTFOUND) {
        pc_manifest_rec m;
        if (reg->ms->reg->manifest_get(reg->ms, repo, d, &m) == 0) {
            *size = m.size;
            rc = 0;
        }
    }
    return rc;
}

/* A file whose size is not the recorded one is damaged (truncated, or
 * written to): never serve it. Unless its bytes still hash to d, then the
 * record was wrong: it is corrected and the file served. */
int pc_registry_size_check(pc_registry *reg, const pc_digest *d, uint64_t want, uint64_t got)
{
    if (want == got)
        return 0;
    pc_blob_rd *r = NULL;
    pc_digest have;
    if (reg->be->open(reg->be, d, &r) == 0) {
        bool same = r->size == got && pc_registry_rd_digest(r, d->alg, &have) == 0 &&
                    pc_digest_equal(&have, d);
        r->close(r);
        if (same && reg->ms->reg->size_fix(reg->ms, d, got, NULL) == 0) {
            pc_log(PC_LOG_WARN, "blob %s: recorded size %llu corrected to %llu (its bytes match)",
                   d->str, (unsigned long long)want, (unsigned long long)got);
            return 0;
        }
    }
    char why[96];
    snprintf(why, sizeof(why), "file has %llu bytes, %llu recorded", (unsigned long long)got,
             (unsigned long long)want);
    pc_registry_blob_damaged(reg, d, why);
    pc_error_set("blob unknown");
    return PC_ENOTFOUND;
}

int pc_registry_blob_stat(pc_registry *reg, const char *repo, const pc_digest *d, uint64_t *size)
{
    uint64_t want = 0;
    int rc = recorded_size(reg, repo, d, &want);
    if (rc || (rc = reg->be->stat(reg->be, d, size)))
        return rc;
    return pc_registry_size_check(reg, d, want, *size);
}

bool pc_registry_blobs_remote(const pc_registry *reg)
{
    return (reg->be->caps & PC_BLOB_CAP_REMOTE) != 0;
}

int pc_registry_blob_url(pc_registry *reg, const char *repo, const pc_digest *d, char *buf,
                         size_t len, uint64_t *size)
{
    /* signing is local: first, so a backend without URLs costs nothing */
    int rc = pc_blob_url(reg->be, d, 0, buf, len, NULL);
    if (rc == 0)
        rc = pc_registry_blob_stat(reg, repo, d, size);
    if (rc && len)
        buf[0] = '\0';
    return rc;
}

int pc_registry_blob_open(pc_registry *reg, const char *repo, const pc_digest *d, pc_blob_rd **out)
{
    uint64_t want = 0;
    int rc = recorded_size(reg, repo, d, &want);
    if (rc || (rc = reg->be->open(reg->be, d, out)))
        return rc;
    if ((rc = pc_registry_size_check(reg, d, want, (*out)->size))) {
        (*out)->close(*out);
        *out = NULL;
    }
    return rc;
}

int pc_registry_blob_delete(pc_registry *reg, const char *repo, const pc_digest *d)
{
    /* Only the link goes: the bytes stay for every other repository (and
     * manifests of this one) that holds them; gc frees what nothing holds. */
    int rc = reg->ms->reg->blob_unlink(reg->ms, repo, d);
    if (rc == PC_ENOSPC && reserve_release(reg))
        rc = reg->ms->reg->blob_unlink(reg->ms, repo, d);
    return rc;
}

int pc_registry_blob_mount(pc_registry *reg, const char *repo, const char *from, const pc_digest *d)
{
    uint64_t size = 0;
    int rc;
    if (from)
        rc = reg->ms->reg->blob_stat(reg->ms, from, d, &size);
    else
        rc = reg->ms->reg->blob_stat_any(reg->ms, d, &size);
    if (rc)
        return rc;
    /* the blob must not go (gc) between finding it and linking it */
    pc_blob_hold lk;
    if ((rc = pc_registry_publish_lock(reg, &lk)))
        return rc;
    if ((rc = reg->be->stat(reg->be, d, &size)) == 0)
        rc = reg->ms->reg->blob_link(reg->ms, repo, d, size);
    pc_registry_publish_unlock(reg, &lk);
    /* no publish lock (S3): gone to a gc that looked before the link,
     * the mount is not done (the client uploads) */
    if (rc == 0 && (rc = pc_registry_publish_settle(reg, d)) == PC_ENOTFOUND)
        reg->ms->reg->blob_unlink(reg->ms, repo, d);
    return rc;
}

/* ---- uploads ---- */

int pc_registry_upload_start(pc_registry *reg, const char *repo, char *id)
{
    return pc_registry_upload_start_mono(reg, repo, id, false);
}

int pc_registry_upload_start_mono(pc_registry *reg, const char *repo, char *id, bool mono)
{
    pc_blob_up *u = NULL;
    int rc = pc_util_uuid4(mono ? id + strlen(MONO_PREFIX) : id, "an upload id");
    if (rc)
        return rc;
    if (mono)
        memcpy(id, MONO_PREFIX, strlen(MONO_PREFIX));
    if ((rc = pc_blob_up_create(reg->be, id, PC_DIGEST_SHA256, &u)))
        return rc;
    pc_blob_up_close(u);
    if ((rc = reg->ms->reg->upload_put(reg->ms, id, repo))) {
        reg->be->upload_remove(reg->be, id, 0);
        return rc;
    }
    return 0;
}

static int upload_owned(pc_registry *reg, const char *repo, const char *id)
{
    char owner[PC_NAME_MAX + 1];
    if (!pc_upload_id_valid(id)) {
        pc_error_set("unknown upload");
        return PC_ENOTFOUND;
    }
    int rc = reg->ms->reg->upload_get(reg->ms, id, owner);
    if (rc)
        return rc;
    if (strcmp(owner, repo) != 0) {
        pc_error_set("upload belongs to another repository");
        return PC_ENOTFOUND;
    }
    return 0;
}

int pc_registry_upload_stat(pc_registry *reg, const char *repo, const char *id, uint64_t *size)
{
    int rc = upload_owned(reg, repo, id);
    if (rc)
        return rc;
    return reg->be->upload_stat(reg->be, id, size);
}

/* The meta store lease that says who writes an upload: held while a
 * request appends, renewed every third of its time as bytes arrive, so a
 * crashed writer's upload is free again soon and a live one never. */
#define UPLOAD_LEASE_MS 30000

static void upload_lease_key(const char *id, char *key, size_t size)
{
    snprintf(key, size, "upload:%s", id);
}

static int active_claim(pc_registry *reg, const char *id)
{
    int rc = PC_ELIMIT, free_slot = -1;
    pthread_mutex_lock(&reg->lock);
    for (int i = 0; i < PC_REGISTRY_ACTIVE_MAX; i++) {
        if (reg->active[i].id[0] == '\0') {
            if (free_slot < 0)
                free_slot = i;
        } else if (strcmp(reg->active[i].id, id) == 0) {
            rc = PC_EEXISTS;
            goto done;
        }
    }
    if (free_slot >= 0) {
        snprintf(reg->active[free_slot].id, sizeof(reg->active[0].id), "%s", id);
        reg->active[free_slot].renewed_ms = pc_util_mono_ms();
        rc = 0;
    }
done:
    pthread_mutex_unlock(&reg->lock);
    if (rc == PC_EEXISTS)
        pc_error_set("another request is writing to this upload");
    else if (rc == PC_ELIMIT)
        pc_error_set("too many uploads in progress");
    if (rc)
        return rc;
    /* then across processes sharing the stores */
    char key[PC_LEASE_KEY_MAX];
    upload_lease_key(id, key, sizeof(key));
    rc = reg->ms->coord->lease_take(reg->ms, key, reg->node, UPLOAD_LEASE_MS, NULL);
    if (rc) {
        pthread_mutex_lock(&reg->lock);
        for (int i = 0; i < PC_REGISTRY_ACTIVE_MAX; i++)
            if (strcmp(reg->active[i].id, id) == 0)
                reg->active[i].id[0] = '\0';
        pthread_mutex_unlock(&reg->lock);
        if (rc == PC_EEXISTS)
            pc_error_set("another replica is writing to this upload");
    }
    return rc;
}

static void active_drop(pc_registry *reg, const char *id)
{
    bool held = false;
    pthread_mutex_lock(&reg->lock);
    for (int i = 0; i < PC_REGISTRY_ACTIVE_MAX; i++)
        if (strcmp(reg->active[i].id, id) == 0) {
            reg->active[i].id[0] = '\0';
            held = true;
        }
    pthread_mutex_unlock(&reg->lock);
    if (held) {
        char key[PC_LEASE_KEY_MAX];
        upload_lease_key(id, key, sizeof(key));
        reg->ms->coord->lease_release(reg->ms, key, reg->node);
    }
}

int pc_registry_upload_write(pc_registry *reg, const char *id, pc_blob_up *u, const void *buf,
                             size_t len)
{
    int64_t now = pc_util_mono_ms();
    bool renew = false;
    pthread_mutex_lock(&reg->lock);
    for (int i = 0; i < PC_REGISTRY_ACTIVE_MAX; i++)
        if (reg->active[i].id[0] && strcmp(reg->active[i].id, id) == 0) {
            if (now - reg->active[i].renewed_ms >= UPLOAD_LEASE_MS / 3) {
                reg->active[i].renewed_ms = now;
                renew = true;
            }
            break;
        }
    pthread_mutex_unlock(&reg->lock);
    if (renew) {
        char key[PC_LEASE_KEY_MAX];
        upload_lease_key(id, key, sizeof(key));
        int rc = reg->ms->coord->lease_renew(reg->ms, key, reg->node, UPLOAD_LEASE_MS);
        if (rc == PC_ENOTFOUND) {
            /* stalled past its lease and taken over: this writer is stale */
            pc_error_set("upload %s was taken over by another writer while this one stalled", id);
            return PC_ECONFLICT;
        }
        if (rc)
            return rc;
    }
    return pc_blob_up_write(u, buf, len);
}

int pc_registry_upload_open(pc_registry *reg, const char *repo, const char *id, pc_blob_up **out)
{
    int rc = upload_owned(reg, repo, id);
    if (rc)
        return rc;
    if ((rc = active_claim(reg, id)))
        return rc;
    if ((rc = pc_blob_up_resume(reg->be, id, PC_DIGEST_SHA256, out)))
        active_drop(reg, id);
    return rc;
}

int pc_registry_upload_release(pc_registry *reg, const char *id, pc_blob_up *u, bool keep)
{
    int rc = 0;
    if (u && keep)
        rc = pc_blob_up_checkpoint(u);
    if (u)
        pc_blob_up_close(u);
    active_drop(reg, id);
    return rc;
}

/* Tests only (tests/e2e/test_faults_crash.sh): PC_TEST_PUBLISH_DELAY_MS
 * widens the window between publishing an upload and linking it, where gc
 * once removed blobs that got a 201. */
static void test_publish_delay(void)
{
    const char *e = getenv("PC_TEST_PUBLISH_DELAY_MS");
    long ms = e ? strtol(e, NULL, 10) : 0;
    if (ms > 0 && ms <= 10000) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int pc_registry_upload_finish(pc_registry *reg, const char *repo, const char *id, pc_blob_up *u,
                              const pc_digest *d, uint64_t *size)
{
    int rc = upload_owned(reg, repo, id);
    if (rc) {
        pc_registry_upload_release(reg, id, u, false);
        return rc;
    }
    if (!u && (rc = pc_registry_upload_open(reg, repo, id, &u)))
        return rc;
    /* Publish and link under the publish lock: gc cannot remove the file
     * between its rename and the link that makes it referenced. */
    pc_blob_hold lk;
    if ((rc = pc_registry_publish_lock(reg, &lk))) {
        pc_registry_upload_release(reg, id, u, false);
        return rc;
    }
    rc = pc_blob_up_finish(u, d, NULL); /* frees u */
    active_drop(reg, id);
    if (rc) {
        pc_registry_publish_unlock(reg, &lk);
        if (rc == PC_EDIGEST)
            reg->ms->reg->upload_delete(reg->ms, id);
        return rc;
    }
    if ((rc = reg->be->stat(reg->be, d, size)) == 0) {
        test_publish_delay();
        rc = reg->ms->reg->blob_link(reg->ms, repo, d, *size);
    }
    pc_registry_publish_unlock(reg, &lk);
    /* no publish lock (S3): a gc may have removed d before the link; the
     * bytes are gone with the session, so the client uploads again */
    if (rc == 0 && (rc = pc_registry_publish_settle(reg, d)) == PC_ENOTFOUND) {
        reg->ms->reg->blob_unlink(reg->ms, repo, d);
        rc = PC_ERR;
    }
    /* the session is over either way: its file is gone */
    reg->ms->reg->upload_delete(reg->ms, id);
    return rc;
}

int pc_registry_upload_cancel(pc_registry *reg, const char *repo, const char *id)
{
    int rc = upload_owned(reg, repo, id);
    if (rc)
        return rc;
    reg->be->upload_remove(reg->be, id, 0);
    return reg->ms->reg->upload_delete(reg->ms, id);
}

struct sweep_ctx {
    pc_registry *reg;
    long ttl_s;
    int dropped;
    bool at_start;
};

/* Whether a request writes to upload id: of this process, or (leases) of
 * any process sharing the meta store (its lease is held). At a start with
 * the data directory claimed no other process is there: a held lease is
 * a dead process's, as its files are. */
static bool active_has(pc_registry *reg, const char *id, bool leases)
{
    bool found = false;
    pthread_mutex_lock(&reg->lock);
    for (int i = 0; i < PC_REGISTRY_ACTIVE_MAX && !found; i++)
        found = strcmp(reg->active[i].id, id) == 0;
    pthread_mutex_unlock(&reg->lock);
    if (found || !leases)
        return found;
    char key[PC_LEASE_KEY_MAX];
    upload_lease_key(id, key, sizeof(key));
    return reg->ms->coord->lease_get(reg->ms, key, NULL) != PC_ENOTFOUND;
}

/* A monolithic upload idle this long has lost its request (which writes
 * its body as it arrives): nobody can resume it, it has no Location. */
#define MONO_IDLE_S 600

static int sweep_one(const char *id, uint64_t size, long age_s, void *vctx)
{
    struct sweep_ctx *c = vctx;
    char owner[PC_NAME_MAX + 1];
    if (active_has(c->reg, id, !c->at_start))
        return 0; /* a request is writing to it right now */
    bool known = c->reg->ms->reg->upload_get(c->reg->ms, id, owner) == 0;
    bool mono = strncmp(id, MONO_PREFIX, strlen(MONO_PREFIX)) == 0;
    /* At start (the data directory claimed: no other serve on it), what
     * no request of this process holds is a dead process's: monolithic
     * uploads (no client has their Location) and staging files without a
     * session (fetch spools, half-made sessions) go whatever their age. */
    if (c->at_start && (mono || !known))
        age_s = LONG_MAX;
    if (mono && age_s > MONO_IDLE_S)
        age_s = LONG_MAX;
    /* an unknown staging file gets a minute's grace: it may be a session
     * being created right now */
    if (age_s <= c->ttl_s && (known || age_s < 60))
        return 0;
    c->reg->be->upload_remove(c->reg->be, id, 0);
    if (known)
        c->reg->ms->reg->upload_delete(c->reg->ms, id);
    c->dropped++;
    return 0;
}

int pc_registry_sweep_uploads(pc_registry *reg, long ttl_s)
{
    struct sweep_ctx c = {reg, ttl_s, 0, false};
    int rc = reg->be->upload_list(reg->be, sweep_one, &c);
    pc_registry_reserve_refill(reg);
    return rc < 0 ? rc : c.dropped;
}

int pc_registry_sweep_start(pc_registry *reg, long ttl_s)
{
    struct sweep_ctx c = {reg, ttl_s, 0, reg->claim_fd >= 0};
    int rc = reg->be->upload_list(reg->be, sweep_one, &c);
    return rc < 0 ? rc : c.dropped;
}

/* ---- manifests ---- */

static int check_refs(pc_registry *reg, const char *repo, const pc_manifest_info *info)
{
    for (size_t i = 0; i < info->nrefs; i++) {
        const pc_manifest_ref *r = &info->refs[i];
        uint64_t size;
        int rc;
        if (r->is_manifest) {
            pc_manifest_rec m;
            rc = reg->ms->reg->manifest_get(reg->ms, repo, &r->digest, &m);
        } else {
            rc = reg->ms->reg->blob_stat(reg->ms, repo, &r->digest, &size);
        }
        if (rc == PC_ENOTFOUND) {
            pc_error_set("%s %s is not in repository %s", r->is_manifest ? "manifest" : "blob",
                         r->digest.str, repo);
            return PC_ENOTFOUND;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int pc_registry_manifest_put(pc_registry *reg, const char *repo, const char *reference,
                             const char *content_type, const void *buf, size_t len,
                             pc_manifest_put_result *out)
{
    pc_manifest_info info;
    pc_manifest_rec rec;
    pc_digest want;
    bool by_digest = strchr(reference, ':') != NULL;
    int rc;

    memset(&info, 0, sizeof(info));
    memset(out, 0, sizeof(*out));
    if (len > PC_MANIFEST_MAX) {
        pc_error_set("manifest larger than %d bytes", PC_MANIFEST_MAX);
        return PC_ETOOBIG;
    }
    if (by_digest) {
        if ((rc = pc_digest_parse(&want, reference)))
            return rc == PC_ENOTSUP ? PC_EINVAL : rc;
        rc = pc_digest_buffer(&out->digest, want.alg, buf, len);
    } else {
        rc = pc_digest_buffer(&out->digest, PC_DIGEST_SHA256, buf, len);
    }
    if (rc)
        return rc;
    if (by_digest && !pc_digest_equal(&want, &out->digest)) {
        pc_error_set("manifest content has digest %s, not %s", out->digest.str, want.str);
        return PC_EDIGEST;
    }
    if ((rc = pc_manifest_parse(&info, buf, len, content_type)))
        goto done;
    if ((rc = check_refs(reg, repo, &info)))
        goto done;
    pc_blob_hold lk;
    if ((rc = pc_registry_publish_lock(reg, &lk)))
        goto done;
    if ((rc = pc_blob_put(reg->be, &out->digest, buf, len))) {
        pc_registry_publish_unlock(reg, &lk);
        goto done;
    }

    pc_registry_rec_fill(&rec, repo, &out->digest, &info, len);
    rc = reg->ms->reg->manifest_put(reg->ms, &rec, info.refs, info.nrefs,
                                    by_digest ? NULL : reference, NULL);
    pc_registry_publish_unlock(reg, &lk);
    /* no publish lock (S3): if a gc that looked before the record removed
     * the bytes (pc_blob_put finds a stored copy and writes none), they
     * are put again; a gc from now on sees the record */
    if (rc == 0 && (rc = pc_registry_publish_settle(reg, &out->digest)) == PC_ENOTFOUND)
        rc = pc_blob_put(reg->be, &out->digest, buf, len);
    out->has_subject = info.has_subject;
    if (info.has_subject)
        out->subject = info.subject;
done:
    pc_manifest_info_clear(&info);
    return rc;
}

int pc_registry_manifest_resolve(pc_registry *reg, const char *repo, const char *reference,
                                 pc_manifest_rec *out)
{
    pc_digest d;
    int rc;
    if (strchr(reference, ':')) {
        if ((rc = pc_digest_parse(&d, reference)))
            return rc == PC_ENOTSUP ? PC_EINVAL : rc;
    } else if ((rc = reg->ms->reg->tag_get(reg->ms, repo, reference, &d))) {
        return rc;
    }
    return reg->ms->reg->manifest_get(reg->ms, repo, &d, out);
}

int pc_registry_manifest_delete(pc_registry *reg, const char *repo, const char *reference)
{
    pc_digest d;
    int rc;
    bool tag = !strchr(reference, ':');
    if (!tag && (rc = pc_digest_parse(&d, reference)))
        return rc == PC_ENOTSUP ? PC_EINVAL : rc;
    for (int attempt = 0;; attempt++) {
        rc = tag ? reg->ms->reg->tag_delete(reg->ms, repo, reference)
                 : reg->ms->reg->manifest_delete(reg->ms, repo, &d);
        /* a full disk: deleting frees space, so spend the reserve on it */
        if (rc != PC_ENOSPC || attempt || !reserve_release(reg))
            return rc;
    }
}

/* ---- listings ---- */

struct list_ctx {
    json_t *arr;
    long want; /* entries to emit; the one past it only sets more */
    bool more;
    char *last_out;
    size_t last_size;
};

static int list_add(const char *s, void *vctx)
{
    struct list_ctx *c = vctx;
    if (c->want >= 0 && (long)json_array_size(c->arr) >= c->want) {
        c->more = true;
        return 1;
    }
    if (json_array_append_new(c->arr, json_string(s)))
        return PC_ENOMEM;
    if (c->last_out)
        snprintf(c->last_out, c->last_size, "%s", s);
    return 0;
}

static int dump(json_t *doc, char **json)
{
    *json = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return *json ? 0 : PC_ENOMEM;
}

int pc_registry_tags_json(pc_registry *reg, const char *repo, const char *last, long n, char **json,
                          bool *more, char *last_out, size_t last_size)
{
    struct list_ctx c = {json_array(), n, false, last_out, last_size};
    int rc;
    if (!c.arr)
        return PC_ENOMEM;
    if ((rc = reg->ms->reg->repo_exists(reg->ms, repo))) {
        json_decref(c.arr);
        return rc;
    }
    if (n != 0) {
        rc = reg->ms->reg->tag_list(reg->ms, repo, last, n < 0 ? -1 : n + 1, list_add, &c);
        if (rc < 0 || (rc > 1)) {
            json_decref(c.arr);
            return rc < 0 ? rc : PC_ERR;
        }
    }
    *more = c.more;
    return dump(json_pack("{s:s, s:o}", "name", repo, "tags", c.arr), json);
}

/* The catalog's walk: entries the filter drops are skipped, not counted,
 * and the walk goes on past them (in chunks) until the page is full. */
struct catalog_ctx {
    struct list_ctx list;
    pc_registry_name_keep keep; /* NULL: every name */
    void *keep_ctx;
    long seen;                     /* names the store gave in this chunk */
    char scanned[PC_NAME_MAX + 1]; /* the last of them: where the next chunk starts */
};

static int catalog_add(const char *s, void *vctx)
{
    struct catalog_ctx *c = vctx;
    c->seen++;
    snprintf(c->scanned, sizeof(c->scanned), "%s", s);
    if (c->keep && !c->keep(s, c->keep_ctx))
        return 0;
    return list_add(s, &c->list);
}

int pc_registry_catalog_json(pc_registry *reg, const char *last, long n, pc_registry_name_keep keep,
                             void *keep_ctx, char **json, bool *more, char *last_out,
                             size_t last_size)
{
    struct catalog_ctx c = {{json_array(), n, false, last_out, last_size}, keep, keep_ctx, 0, ""};
    char from[PC_NAME_MAX + 1];
    int rc = 0;
    if (!c.list.arr)
        return PC_ENOMEM;
    /* one more than a page tells whether there is more; with a filter,
     * chunks of at least 256 so that few names kept cost few queries */
    long chunk = n < 0 ? -1 : keep && n + 1 < 256 ? 256 : n + 1;
    snprintf(from, sizeof(from), "%s", last ? last : "");
    while (n != 0) {
        c.seen = 0;
        rc = reg->ms->reg->catalog(reg->ms, from[0] ? from : NULL, chunk, catalog_add, &c);
        if (rc < 0) {
            json_decref(c.list.arr);
            return rc;
        }
        if (rc > 0 || !keep || chunk < 0 || c.seen < chunk)
            break; /* the page is full (and more exists), or the store has no more */
        snprintf(from, sizeof(from), "%s", c.scanned);
    }
    *more = c.list.more;
    return dump(json_pack("{s:o}", "repositories", c.list.arr), json);
}

struct referrers_ctx {
    pc_registry *reg;
    json_t *arr;
    const char *artifact_type;
};

static int referrer_add(const pc_manifest_rec *m, void *vctx)
{
    struct referrers_ctx *c = vctx;
    void *buf = NULL;
    size_t len = 0;
    if (c->artifact_type && strcmp(c->artifact_type, m->artifact_type) != 0)
        return 0;
    if (pc_blob_get(c->reg->be, &m->digest, PC_MANIFEST_MAX, &buf, &len))
        return 0; /* bytes gone (gc race): leave it out rather than fail */
    json_t *desc = pc_manifest_descriptor(m, buf, len);
    free(buf);
    if (!desc || json_array_append_new(c->arr, desc))
        return PC_ENOMEM;
    return 0;
}

int pc_registry_referrers_json(pc_registry *reg, const char *repo, const pc_digest *subject,
                               const char *artifact_type, char **json)
{
    struct referrers_ctx c = {reg, json_array(), artifact_type};
    if (!c.arr)
        return PC_ENOMEM;
    int rc = reg->ms->reg->referrers(reg->ms, repo, subject, referrer_add, &c);
    if (rc < 0) {
        json_decref(c.arr);
        return rc;
    }
    return dump(json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", PC_MT_OCI_INDEX,
                          "manifests", c.arr),
                json);
}
