/*
 * registry.h - the registry's operations on repositories, independent of
 * HTTP: blob reads and deletes, upload sessions, mounts, manifest push and
 * pull, tags, referrers, catalog; the pull-through cache's storage
 * (registry_cache.c), gc (registry_gc.c) and fsck (registry_fsck*.c). It
 * is the only owner of the blob store and the meta store: nothing outside
 * registry*.c and the backends sees their tables. It keeps their rules
 * (verify before publish, manifests refuse missing content, deletes never
 * break another repository, a blob file of the wrong size is never served).
 *
 * Callers validate names, tags and digests first (ref.h, digest.h); the
 * registry re-checks what touches storage.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_REGISTRY_H
#define PC_REGISTRY_H

#include "pc.h"
#include "store/spool.h"
#include "store/meta.h"
#include "store/factory.h"
#include "manifest.h"

typedef struct pc_registry pc_registry;

/* Open the registry over a data directory with the default storage (fs
 * blobs + meta.db inside it): pc_registry_open_opts with only data_dir.
 * *out is the caller's (pc_registry_free). 0 or < 0. */
int pc_registry_open(pc_registry **out, const char *data_dir);

/* Open the registry over the storage o names (store/factory.h): the data
 * directory is made as needed and always holds the fetch spools (tmp/) and
 * serve.lock; the space reserve only when a store is on disk. A storage
 * other than the default is logged as a warning. 0, PC_EINVAL (unknown
 * driver, no data directory), or the failing store's code. */
int pc_registry_open_opts(pc_registry **out, const pc_store_opts *o);

void pc_registry_free(pc_registry *reg);

/* --- storage integrity (issue 12) --- */

/* Check the meta store's file (SQLite PRAGMA quick_check): 0, PC_EINVAL
 * when damaged (message names the file), or < 0. */
int pc_registry_check_meta(pc_registry *reg);

/* Claim the data directory for this process (an exclusive flock on
 * DIR/serve.lock, held until pc_registry_free or the process ends).
 * 0, PC_EROFS (a read-only directory), or PC_EEXISTS when another live
 * process holds it (then what looks like a crash's leftovers may be that
 * process's work). */
int pc_registry_claim(pc_registry *reg);

/* Blob d's file is damaged (why: for the log): take it out of service
 * (quarantine) and log an error that names `pullcache fsck --repair`. */
void pc_registry_blob_damaged(pc_registry *reg, const pc_digest *d, const char *why);

/* Make the data directory's space reserve again if it was used and there
 * is room (deletes on a full disk spend it). */
void pc_registry_reserve_refill(pc_registry *reg);

/* --- blobs --- */

/* Size of blob d in repo. 0 or PC_ENOTFOUND (not linked or not stored). */
int pc_registry_blob_stat(pc_registry *reg, const char *repo, const pc_digest *d, uint64_t *size);

/* Whether the blob backend's reads are network round trips (an object
 * store, PC_BLOB_CAP_REMOTE): open blobs off the HTTP threads then. */
bool pc_registry_blobs_remote(const pc_registry *reg);

/* Open blob d of repo for reading. *out is the caller's (->close). */
int pc_registry_blob_open(pc_registry *reg, const char *repo, const pc_digest *d, pc_blob_rd **out);

/* A URL clients may GET blob d of repo from directly (the backend's
 * presigned URL, storage.blobs.redirect), handed out only after the checks
 * pc_registry_blob_stat makes (linked in repo, stored, of the recorded
 * size; *size its size). PC_ENOTSUP (cheap: nothing asked of the store)
 * when the backend hands out no URLs: serve the bytes instead. */
int pc_registry_blob_url(pc_registry *reg, const char *repo, const pc_digest *d, char *buf,
                         size_t len, uint64_t *size);

/* Remove blob d from repo (other repositories keep it). 0 or PC_ENOTFOUND.
 * On a full disk the space reserve is spent to let it go on. */
int pc_registry_blob_delete(pc_registry *reg, const char *repo, const pc_digest *d);

/* Mount d into repo from `from` (NULL: from any repository that has it).
 * 0 when mounted, PC_ENOTFOUND when there is nothing to mount. */
int pc_registry_blob_mount(pc_registry *reg, const char *repo, const char *from,
                           const pc_digest *d);

/* --- uploads --- */

/* Start an upload session for repo; id receives a new id (37 bytes). */
int pc_registry_upload_start(pc_registry *reg, const char *repo, char *id);

/* The same; mono marks the session of a monolithic POST (its id gets a
 * prefix, 39 bytes): no client holds its Location, so a crash's leftover
 * is dropped at the next start. */
int pc_registry_upload_start_mono(pc_registry *reg, const char *repo, char *id, bool mono);

/* Check that upload id belongs to repo and report its size. 0 or
 * PC_ENOTFOUND. */
int pc_registry_upload_stat(pc_registry *reg, const char *repo, const char *id, uint64_t *size);

/* Open upload id of repo for appending (pc_blob_up_write; it hashes as
 * bytes arrive). Only one writer per upload at a time: PC_EEXISTS while
 * another request writes to it. Release with pc_registry_upload_release()
 * or end with pc_registry_upload_finish(). */
int pc_registry_upload_open(pc_registry *reg, const char *repo, const char *id, pc_blob_up **out);
/* Append len bytes to upload u of id (opened by pc_registry_upload_open):
 * pc_blob_up_write, keeping the upload's lease alive. PC_ECONFLICT when
 * this writer stalled so long that another took the upload over. */
int pc_registry_upload_write(pc_registry *reg, const char *id, pc_blob_up *u, const void *buf,
                             size_t len);
/* Release upload u (may be NULL) of id: keep makes what was written durable
 * (a checkpoint: the end of a chunk), else it is dropped and the upload
 * stays at its last checkpoint (a refused or failed chunk leaves nothing).
 * 0 or the checkpoint's error (the chunk is then dropped). */
int pc_registry_upload_release(pc_registry *reg, const char *id, pc_blob_up *u, bool keep);

/* Verify upload id hashes to d, publish it and link it into repo. u is the
 * upload as pc_registry_upload_open gave it (its bytes so far are part of
 * the blob; it is consumed) or NULL (it is opened here). The session ends.
 * 0, PC_EDIGEST (nothing published, session ends), PC_ENOTFOUND,
 * PC_EEXISTS (u NULL and another request writes to it). */
int pc_registry_upload_finish(pc_registry *reg, const char *repo, const char *id, pc_blob_up *u,
                              const pc_digest *d, uint64_t *size);

/* Cancel an upload. 0 or PC_ENOTFOUND. */
int pc_registry_upload_cancel(pc_registry *reg, const char *repo, const char *id);

/* Drop upload sessions idle for more than ttl_s seconds, and staging files
 * that no session owns (a crash between creating the file and recording
 * the session). Returns how many were dropped, or < 0. */
int pc_registry_sweep_uploads(pc_registry *reg, long ttl_s);

/* The sweep at a start: as pc_registry_sweep_uploads, and when the data
 * directory is claimed (pc_registry_claim) also every monolithic upload
 * and every staging file without a session (a dead process's fetch
 * spools), whatever their age. */
int pc_registry_sweep_start(pc_registry *reg, long ttl_s);

/* --- manifests --- */

typedef struct {
    pc_digest digest;
    bool has_subject;
    pc_digest subject;
} pc_manifest_put_result;

/* Store manifest bytes for repo under `reference` (a tag or a digest
 * string). Checks: valid manifest (PC_EINVAL, MANIFEST_INVALID), size
 * (PC_ETOOBIG), digest reference matches content (PC_EDIGEST), every blob
 * and child present in repo (PC_ENOTFOUND, MANIFEST_BLOB_UNKNOWN). */
int pc_registry_manifest_put(pc_registry *reg, const char *repo, const char *reference,
                             const char *content_type, const void *buf, size_t len,
                             pc_manifest_put_result *out);

/* Resolve reference (tag or digest) in repo to a manifest record. 0 or
 * PC_ENOTFOUND. */
int pc_registry_manifest_resolve(pc_registry *reg, const char *repo, const char *reference,
                                 pc_manifest_rec *out);

/* Delete by digest (the manifest and its tags) or by tag (the tag only).
 * 0 or PC_ENOTFOUND. */
int pc_registry_manifest_delete(pc_registry *reg, const char *repo, const char *reference);

/* --- listings --- */

/* The tags list document {"name":..,"tags":[..]} as a malloc'd string in
 * *json; *more is true when tags after the last listed exist (Link). */
int pc_registry_tags_json(pc_registry *reg, const char *repo, const char *last, long n, char **json,
                          bool *more, char *last_out, size_t last_size);

/* Whether a repository name stays in a listing (the catalog's filter:
 * access control keeps only what the requester may pull). */
typedef bool (*pc_registry_name_keep)(const char *name, void *ctx);

/* The catalog document {"repositories":[..]}: at most n names after last
 * (n < 0: all; last NULL: from the start) that keep (NULL: every name)
 * keeps, as a malloc'd string in *json. The page is full (n names) when
 * that many kept ones exist; *more is true when a kept name follows the
 * page's last (into last_out: the Link header's last=). */
int pc_registry_catalog_json(pc_registry *reg, const char *last, long n, pc_registry_name_keep keep,
                             void *keep_ctx, char **json, bool *more, char *last_out,
                             size_t last_size);

/* The referrers index of subject in repo, filtered by artifact_type when
 * not NULL. */
int pc_registry_referrers_json(pc_registry *reg, const char *repo, const pc_digest *subject,
                               const char *artifact_type, char **json);

/* --- repository data without the push rules (mirror, cache admin) --- */

/* The record of manifest d of repo. 0 or PC_ENOTFOUND. */
int pc_registry_manifest_get(pc_registry *reg, const char *repo, const pc_digest *d,
                             pc_manifest_rec *out);

/* The stored bytes of manifest d (at most PC_MANIFEST_MAX) into *buf (the
 * caller's, free()). 0, PC_ENOTFOUND (bytes missing), PC_ETOOBIG. */
int pc_registry_manifest_bytes(pc_registry *reg, const pc_digest *d, void **buf, size_t *len);

/* Tag of repo: its manifest digest and when it was last set or confirmed
 * (unix seconds). 0 or PC_ENOTFOUND. */
int pc_registry_tag_stat(pc_registry *reg, const char *repo, const char *tag, pc_digest *out,
                         int64_t *updated);

/* Mark tag as confirmed at `when` if it still points at d (0: due for
 * revalidation now). 0 or PC_ENOTFOUND. */
int pc_registry_tag_touch(pc_registry *reg, const char *repo, const char *tag, const pc_digest *d,
                          int64_t when);

/* Remove a tag (its manifest stays). 0 or PC_ENOTFOUND. */
int pc_registry_tag_delete(pc_registry *reg, const char *repo, const char *tag);

/* cb for every tag of repo in byte order; stops at cb's non-zero result
 * (returned). PC_ENOTFOUND for an unknown repository, or < 0. */
int pc_registry_tag_each(pc_registry *reg, const char *repo, pc_meta_str_cb cb, void *ctx);

/* cb for every repository (pc_registry_catalog_json's), in byte order;
 * stops at cb's non-zero result (returned), or < 0. */
int pc_registry_repo_each(pc_registry *reg, pc_meta_str_cb cb, void *ctx);

/* --- the pull-through cache's storage (registry_cache.c) ---
 *
 * A mirrored repository's blobs are recorded like pushed ones (a link with
 * the size) plus an access record (the LRU of eviction). Every operation
 * that makes a blob a repository's takes the publish lock, so gc cannot
 * remove the file between its check and the link. */

/* A cache hit: d is linked in repo and its file has the recorded size;
 * *size receives it and the access is recorded (for eviction; a failure
 * to record it does not fail the hit). 0, PC_ENOTFOUND (not linked, not
 * stored, or its file has another size: then it is taken out of service,
 * pc_registry_blob_damaged), or < 0. */
int pc_registry_cache_blob_hit(pc_registry *reg, const char *repo, const pc_digest *d,
                               uint64_t *size);

/* Adopt blob d, already published (pushed, or fetched for another
 * repository), into mirrored repository repo: link it with its size
 * (*size) and record the access, under the publish lock. A file whose size
 * disagrees with what another repository recorded goes through the same
 * check as a read. 0, PC_ENOTFOUND (not stored, or damaged), or the meta
 * store's error (nothing is half done but a link without access record). */
int pc_registry_cache_adopt(pc_registry *reg, const char *repo, const pc_digest *d, uint64_t *size);

/* The staging of a pull-through fetch: a spool (store/spool.h) for
 * content expected to hash to d, in the data directory's tmp/ (the fs
 * backend adopts it from there without a copy), holding back its last byte
 * until verified. *out holds one reference (pc_spool_unref); the fetch
 * appends to it, clients read it (also after commit, and once the blob is
 * evicted). End a failed fetch with pc_spool_fail. 0 or < 0. */
int pc_registry_stage_begin(pc_registry *reg, const pc_digest *d, pc_spool **out);

/* End spool sp (every byte appended) as blob d of mirrored repository
 * repo, size bytes: verify it hashes to d (pc_spool_finish), publish it,
 * link d into repo and record the access, all under the publish lock. 0,
 * PC_EDIGEST (the bytes are not d's: nothing published, the spool failed),
 * or < 0 (publish or meta store failure, message set). */
int pc_registry_stage_commit(pc_registry *reg, pc_spool *sp, const char *repo, const pc_digest *d,
                             uint64_t size);

/* As pc_registry_stage_commit, for a spool filled from another replica
 * that fetches d itself and publishes it into the shared blob store: when
 * d is there already only the link and the access are recorded (no second
 * write of the same bytes), else the spool is committed. Verified first
 * either way. */
int pc_registry_stage_settle(pc_registry *reg, pc_spool *sp, const char *repo, const pc_digest *d,
                             uint64_t size);

/* Whether the blob store has a publish lock (fs: flock) that holds gc off
 * between a blob's publishing and its link; object stores have none. */
bool pc_registry_publish_locks(const pc_registry *reg);

/* --- coordination between processes sharing the stores (registry_coord.c;
 * store/meta.h's leases and notes) --- */

/* This process as a lease owner: "node-<random hex>", or "claimed:<data
 * dir>" once pc_registry_claim holds the data directory. */
const char *pc_registry_node(const pc_registry *reg);
int pc_registry_lease_take(pc_registry *reg, const char *key, const char *owner, long ttl_ms,
                           pc_meta_lease *held);
int pc_registry_lease_renew(pc_registry *reg, const char *key, const char *owner, long ttl_ms);
int pc_registry_lease_release(pc_registry *reg, const char *key, const char *owner);
int pc_registry_lease_get(pc_registry *reg, const char *key, pc_meta_lease *out);
int pc_registry_note_put(pc_registry *reg, const char *key, const char *value);
int pc_registry_note_get(pc_registry *reg, const char *key, char *value, size_t size,
                         int64_t *updated_ms);

/* The size a manifest of repo declares for blob d (its descriptor in the
 * bytes of a manifest that references d, not as an index child), the
 * bound of a fetch. 0 or PC_ENOTFOUND (none we hold references it). */
int pc_registry_cache_blob_bound(pc_registry *reg, const char *repo, const pc_digest *d,
                                 uint64_t *size);

/* Store manifest bytes fetched from an upstream as manifest d of repo
 * (info: what pc_manifest_parse made of them) and point tag at it when
 * not NULL, under the publish lock; *rec receives the record. No check
 * that what it references is present (mirrors fetch layers on demand).
 * The tag moves only when it still points at *expect (expect->str "": when
 * it does not exist; expect NULL: whatever it points at): a revalidation
 * that lost to another one (another replica) gets PC_ECONFLICT and stores
 * nothing. 0, PC_EDIGEST (bytes are not d's), PC_ECONFLICT, or < 0. */
int pc_registry_cache_manifest_put(pc_registry *reg, const char *repo, const char *tag,
                                   const pc_digest *expect, const pc_digest *d, const void *buf,
                                   size_t len, const pc_manifest_info *info, pc_manifest_rec *rec);

/* An eviction candidate: a stored mirrored blob and its stored size. */
typedef struct {
    pc_digest d;
    uint64_t size;
} pc_registry_lru_entry;

/* Eviction candidates, least recently used first: blobs with an access
 * record that no repository outside the mirror holds (which repositories
 * are the mirror's is the cache code's rule, mirror(repo, ctx):
 * mirror_evict.h), manifests never. Only blobs still stored are listed,
 * with the size of their file; the access records of the others are
 * dropped (unless dry). *out is the caller's (free()). 0 or < 0. */
int pc_registry_cache_lru(pc_registry *reg, pc_meta_repo_pred mirror, void *ctx, bool dry,
                          pc_registry_lru_entry **out, size_t *n);

/* Evict mirrored blob d: in one meta store transaction check again that
 * only mirror repositories hold it and drop its links and access record,
 * then remove its bytes (a reader with an open descriptor keeps reading).
 * 0, PC_EEXISTS (held outside the mirror meanwhile: kept), or < 0. */
int pc_registry_cache_evict(pc_registry *reg, const pc_digest *d, pc_meta_repo_pred mirror,
                            void *ctx);

/* How many blobs are published and their bytes. 0 or < 0. */
int pc_registry_store_usage(pc_registry *reg, uint64_t *blobs, uint64_t *bytes);

/* --- readiness (h_health.c) --- */

/* Whether the blob store takes writes: stage one byte under a name of its
 * own and remove it. 0 or < 0 (message set). */
int pc_registry_probe_blobs(pc_registry *reg);

/* Whether the meta store answers a read. 0 or < 0 (message set). */
int pc_registry_probe_meta(pc_registry *reg);

/* --- the client pull limiter's counters (limiter.h) --- */

/* In one transaction: when replace, forget every stored bucket; store the
 * n rows; drop rows whose expires <= now. 0, PC_ENOTSUP (this meta store
 * keeps no counters), or < 0. */
int pc_registry_limit_save(pc_registry *reg, const pc_meta_limit_row *rows, size_t n, int64_t now,
                           bool replace);

/* cb for every stored row with expires > now. 0, cb's non-zero result,
 * PC_ENOTSUP (no counters kept), or < 0. */
int pc_registry_limit_load(pc_registry *reg, int64_t now, pc_meta_limit_cb cb, void *ctx);
/* The meta store's limit_take (store/meta.h): a pull counted against the
 * budget every process on the store shares. */
int pc_registry_limit_take(pc_registry *reg, const char *key, int64_t bucket, int64_t first,
                           int64_t expires, uint64_t max, bool count, pc_meta_limit_take *out);

/* --- garbage collection (registry_gc.c) --- */

/* What a run of pc_gc_sweep() did (or would do, when dry). */
typedef struct {
    unsigned long blobs;   /* published blobs seen */
    unsigned long removed; /* unreferenced and removed */
    uint64_t removed_bytes;
    unsigned long young; /* unreferenced but within the grace period */
} pc_gc_stats;

/* Mark and sweep: remove every published blob that the meta store does not
 * reference (manifests, their references, blob links) and that is at
 * least grace_s seconds old, with its access record. dry: only count.
 * 0 or < 0 (message set). */
int pc_gc_sweep(pc_registry *reg, long grace_s, bool dry, pc_gc_stats *st);

#endif
