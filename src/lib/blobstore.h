/*
 * blobstore.h - the blob store interface: content-addressed bytes, and the
 * staging area where uploads grow until they are verified and published.
 *
 * A versioned table of functions (libgit2's odb backend pattern). The
 * filesystem backend (blobstore_fs.c) is the embedded default; an S3 backend
 * plugs in behind the same table later.
 *
 * Rules every backend keeps:
 *  - a blob is visible under its digest only after its content was hashed
 *    and matched that digest (write to a temp name, verify, rename);
 *  - a crash leaves at most unpublished garbage (temp files, stale uploads);
 *  - upload ids are validated by the caller ([A-Za-z0-9-]{1,64}); a backend
 *    never builds a path from anything else than a digest's hex or an id.
 * All functions are safe to call from several threads at once.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_BLOBSTORE_H
#define PC_BLOBSTORE_H

#include "pc.h"
#include "digest.h"

#define PC_BLOBSTORE_VERSION 1

typedef struct pc_blobstore pc_blobstore;
typedef struct pc_blob_reader pc_blob_reader;
typedef struct pc_blob_writer pc_blob_writer;

/* A held publish lock (publish_lock). */
typedef struct {
    int a, b;
} pc_blob_lock;

/* The areas of a store, for locate(). */
typedef enum {
    PC_BLOB_AREA_BLOB,   /* published blobs, named by digest string */
    PC_BLOB_AREA_UPLOAD, /* staging, named by upload id */
    PC_BLOB_AREA_TMP     /* put()'s temp files, named as tmp_foreach reports */
} pc_blob_area;

/* An open published blob. */
struct pc_blob_reader {
    uint64_t size;
    int fd; /* >= 0 when the backend has a file for sendfile, else -1 */
    /* Read up to len bytes at offset; returns bytes read (0 at end) or < 0. */
    long (*read)(pc_blob_reader *r, uint64_t offset, void *buf, size_t len);
    /* Close; also closes fd unless the caller took it (set r->fd = -1). */
    void (*close)(pc_blob_reader *r);
};

/* An open upload, positioned at its end. */
struct pc_blob_writer {
    uint64_t size; /* bytes in the upload so far */
    /* Append len bytes; returns 0 or PC_ERR (message set). */
    int (*write)(pc_blob_writer *w, const void *buf, size_t len);
    /* Close without publishing (the upload stays in staging). */
    void (*close)(pc_blob_writer *w);
    /* Cut the upload back to size bytes (<= its size): a refused or
     * failed chunk leaves nothing behind. 0 or < 0. */
    int (*truncate)(pc_blob_writer *w, uint64_t size);
};

struct pc_blobstore {
    unsigned version; /* PC_BLOBSTORE_VERSION */

    /* Size of a published blob. 0 or PC_ENOTFOUND. */
    int (*stat)(pc_blobstore *bs, const pc_digest *d, uint64_t *size);

    /* Open a published blob for reading; *out is the caller's (->close). */
    int (*open)(pc_blobstore *bs, const pc_digest *d, pc_blob_reader **out);

    /* Publish a whole buffer under d after checking it hashes to d.
     * 0 (also when it already existed), PC_EDIGEST, PC_ERR. */
    int (*put)(pc_blobstore *bs, const pc_digest *d, const void *buf, size_t len);

    /* Read a whole published blob of at most max bytes into *buf (the
     * caller's, free()). PC_ENOTFOUND, PC_ETOOBIG. */
    int (*get)(pc_blobstore *bs, const pc_digest *d, size_t max, void **buf, size_t *len);

    /* Remove a published blob. 0 or PC_ENOTFOUND. */
    int (*remove)(pc_blobstore *bs, const pc_digest *d);

    /* Call cb for every published blob; stops early and returns cb's value
     * when cb returns non-zero. */
    int (*foreach)(pc_blobstore *bs, int (*cb)(const pc_digest *d, uint64_t size, void *ctx),
                   void *ctx);

    /* Open the upload `id` for appending, creating it when create is true
     * (PC_EEXISTS if it exists then). PC_ENOTFOUND for an unknown upload.
     * *out is the caller's (->close). One writer per upload at a time. */
    int (*upload_open)(pc_blobstore *bs, const char *id, bool create, pc_blob_writer **out);

    /* Bytes in the upload so far. 0 or PC_ENOTFOUND. */
    int (*upload_stat)(pc_blobstore *bs, const char *id, uint64_t *size);

    /* Verify the upload hashes to d and publish it under d (replacing a
     * published copy, which may be damaged); the upload is gone afterwards
     * either way except on PC_ERR. 0, PC_EDIGEST (nothing
     * published, upload removed), PC_ENOTFOUND, PC_ERR. */
    int (*upload_commit)(pc_blobstore *bs, const char *id, const pc_digest *d);

    /* Drop an upload. 0 or PC_ENOTFOUND. */
    int (*upload_remove)(pc_blobstore *bs, const char *id);

    /* Call cb for every upload id in staging with its age in seconds. */
    int (*upload_foreach)(pc_blobstore *bs,
                          int (*cb)(const char *id, uint64_t size, long age_s, void *ctx),
                          void *ctx);

    /* Free the store. */
    void (*free)(pc_blobstore *bs);

    /* --- added in version 1 for the pull-through cache --- */

    /* A read-only descriptor on upload id's staging file, to stream a blob
     * to clients while it is still arriving (the caller's, close()). It
     * stays valid after the upload is committed or removed. PC_ENOTSUP for
     * backends without files. */
    int (*upload_read_fd)(pc_blobstore *bs, const char *id, int *fd);

    /* --- added in version 1 for gc --- */

    /* Seconds since published blob d was last written (its publication).
     * 0 or PC_ENOTFOUND. */
    int (*age)(pc_blobstore *bs, const pc_digest *d, long *age_s);

    /* --- added in version 1 for fsck (fsck.h) --- */

    /* Call cb for every temp file (put()'s bytes before their rename, or
     * a crash's leftovers) with its age in seconds since its last write. */
    int (*tmp_foreach)(pc_blobstore *bs,
                       int (*cb)(const char *name, uint64_t size, long age_s, void *ctx),
                       void *ctx);
    /* Remove temp file `name` (as tmp_foreach reported it) if it was last
     * written at least min_age_s seconds ago. 0, PC_EEXISTS (written since:
     * kept), PC_ENOTFOUND, PC_EINVAL (not a temp file's name), PC_ERR. */
    int (*tmp_remove)(pc_blobstore *bs, const char *name, long min_age_s);
    /* Drop upload id if it was last written at least min_age_s seconds ago
     * (so a writer still appending keeps it). 0, PC_EEXISTS (kept),
     * PC_ENOTFOUND, PC_ERR. */
    int (*upload_remove_idle)(pc_blobstore *bs, const char *id, long min_age_s);
    /* Where the backend keeps item `name` of `area`, for messages (the file
     * path for the filesystem backend) into buf. 0, PC_EINVAL (bad name),
     * PC_ETOOBIG (buf too small). */
    int (*locate)(pc_blobstore *bs, pc_blob_area area, const char *name, char *buf, size_t size);

    /* --- added in version 1 for storage integrity (issue 12) --- */

    /* The lock that makes "publish a blob and record who holds it"
     * atomic with respect to removing unreferenced blobs, across threads
     * and processes on the same store: a publisher holds it shared from
     * before its blob becomes visible until the meta store records a
     * holder (link, manifest); a remover (gc, fsck) holds it exclusive
     * from its last look at the holders until the removal is done. A
     * waiting remover is not starved by publishers. Take it before any
     * meta store transaction. 0 or < 0; release with publish_unlock. */
    int (*publish_lock)(pc_blobstore *bs, bool exclusive, pc_blob_lock *lk);
    void (*publish_unlock)(pc_blobstore *bs, pc_blob_lock *lk);
    /* Take a damaged published blob d out of service (never served
     * again; a new upload of d publishes afresh). 0 or PC_ENOTFOUND. */
    int (*quarantine)(pc_blobstore *bs, const pc_digest *d);
};

/* Open (creating directories as needed) the filesystem blob store rooted at
 * dir: dir/blobs/<alg>/<2 hex>/<hex>, dir/uploads/<id>, dir/tmp/. *out is the
 * caller's (->free). 0 or PC_ERR. */
int pc_blobstore_fs_open(pc_blobstore **out, const char *dir);

/* Open the filesystem blob store in dir as it is: nothing is created and
 * no temp file is cleaned up (fsck reports them). PC_ENOTFOUND (message
 * set) when dir or its blobs/, uploads/ or tmp/ is missing, else 0 or
 * PC_ERR. *out is the caller's (->free). */
int pc_blobstore_fs_open_existing(pc_blobstore **out, const char *dir);

/* Whether id is an acceptable upload id ([A-Za-z0-9-]{1,64}). */
bool pc_upload_id_valid(const char *id);

#endif
