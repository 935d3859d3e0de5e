/*
 * registry.h - the registry's operations on repositories, independent of
 * HTTP: blob reads and deletes, upload sessions, mounts, manifest push and
 * pull, tags, referrers, catalog. It owns the blob store and meta store and
 * keeps their rules (verify before publish, manifests refuse missing
 * content, deletes never break another repository).
 *
 * Callers validate names, tags and digests first (ref.h, digest.h); the
 * registry re-checks what touches storage.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_REGISTRY_H
#define PC_REGISTRY_H

#include "pc.h"
#include "blobstore.h"
#include "metastore.h"
#include "manifest.h"

typedef struct pc_registry pc_registry;

/* Open the registry over a data directory (blobs + meta.db inside it).
 * *out is the caller's (pc_registry_free). 0 or PC_ERR. */
int pc_registry_open(pc_registry **out, const char *data_dir);

/* Wrap existing stores (tests, other backends); the registry takes both. */
int pc_registry_new(pc_registry **out, pc_blobstore *bs, pc_metastore *ms);

void pc_registry_free(pc_registry *reg);

pc_blobstore *pc_registry_blobs(pc_registry *reg);
pc_metastore *pc_registry_meta(pc_registry *reg);

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

/* The blob store's publish lock, shared (blobstore.h): hold it from
 * before a blob becomes visible until a holder (link, manifest, access
 * record) is recorded, so that gc cannot remove it in between. */
int pc_registry_publish_lock(pc_registry *reg, pc_blob_lock *lk);
void pc_registry_publish_unlock(pc_registry *reg, pc_blob_lock *lk);

/* Blob d's file is damaged (why: for the log): take it out of service
 * (quarantine) and log an error that names `pullcache fsck --repair`. */
void pc_registry_blob_damaged(pc_registry *reg, const pc_digest *d, const char *why);

/* Make the data directory's space reserve again if it was used and there
 * is room (deletes on a full disk spend it). */
void pc_registry_reserve_refill(pc_registry *reg);

/* --- blobs --- */

/* Size of blob d in repo. 0 or PC_ENOTFOUND (not linked or not stored). */
int pc_registry_blob_stat(pc_registry *reg, const char *repo, const pc_digest *d, uint64_t *size);

/* Open blob d of repo for reading. *out is the caller's (->close). */
int pc_registry_blob_open(pc_registry *reg, const char *repo, const pc_digest *d,
                          pc_blob_reader **out);

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

/* Open upload id of repo for appending. Only one writer per upload at a
 * time: PC_EEXISTS while another request writes to it. Release with
 * pc_registry_upload_release(). */
int pc_registry_upload_open(pc_registry *reg, const char *repo, const char *id,
                            pc_blob_writer **out);
void pc_registry_upload_release(pc_registry *reg, const char *id, pc_blob_writer *w);

/* Verify upload id hashes to d, publish it and link it into repo. The
 * session ends. 0, PC_EDIGEST (nothing published, session ends),
 * PC_ENOTFOUND. */
int pc_registry_upload_finish(pc_registry *reg, const char *repo, const char *id,
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

/* The catalog document {"repositories":[..]}. */
int pc_registry_catalog_json(pc_registry *reg, const char *last, long n, char **json, bool *more,
                             char *last_out, size_t last_size);

/* The referrers index of subject in repo, filtered by artifact_type when
 * not NULL. */
int pc_registry_referrers_json(pc_registry *reg, const char *repo, const pc_digest *subject,
                               const char *artifact_type, char **json);

#endif
