/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob.h - the blob backend interface, version 2: content-addressed
 * bytes as storage primitives that a filesystem, memory or object store
 * (S3) can all offer.
 *
 * Names: pc_blob_backend (the table), pc_blob_rd (an open blob), pc_blob_wr
 * (an open upload), pc_blob_hold (a publish lock), pc_blob_kind (an area,
 * for locate). Drivers: fs, mem, s3 (store/blob_s3.h). Version 1 (blobstore.h) is gone; the
 * registry, gc, fsck and the fetch path use this one.
 *
 * Who does what:
 *  - The FRONT END hashes. Bytes are hashed as they arrive (pc_blob_up in
 *    this header, store/hash.h) and a backend is told to commit only under
 *    the digest the front end computed. No backend reads an upload back to
 *    re-verify it (on S3 that would be a whole GET per upload).
 *  - The BACKEND stores bytes: it reads at an offset, appends, makes
 *    appended bytes durable together with an opaque resume state
 *    (checkpoint), commits under a given digest, lists, removes.
 *
 * Rules every backend keeps (tests/unit/test_store_blob.c checks them for
 * every backend in its table):
 *  1. Visible only when verified: a blob appears under a digest only
 *     through commit(), which the front end calls only with the digest its
 *     hasher computed over exactly the bytes appended (pc_blob_up_finish
 *     compares that with the digest the client claimed and cancels on a
 *     mismatch). A blob is visible whole or not at all.
 *  2. A crash leaves only garbage: an upload or temp writer that was not
 *     committed is never visible as a blob; after a restart an upload comes
 *     back at its last checkpoint (bytes appended after it are dropped), and
 *     anything else left over (fs: tmp/ files) is listed by tmp_list for
 *     fsck/gc to remove.
 *  3. Concurrent commits of one digest (two uploads of the same content)
 *     both succeed; the blob is then visible once, with its content intact,
 *     and a reader never sees a mix.
 *  4. Removing while a reader is open: with PC_BLOB_CAP_READ_AFTER_REMOVE
 *     (fs: the open file; mem: a refcount) the reader keeps reading the
 *     same bytes to its end. Without it (an object store's ranged GETs) a
 *     read after the removal fails with PC_ENOTFOUND - never other bytes;
 *     only bytes the reader had fetched ahead before the removal (the
 *     blob's own, s3: its first 256 KiB and its stream's ring) may still
 *     be returned before that.
 *  5. Paths and keys are built only from a re-validated digest or an upload
 *     id that passes pc_upload_id_valid ([A-Za-z0-9-]{1,64}).
 *  6. Every function is safe from any thread; one writer per upload id at
 *     a time (the front end's rule: the meta store owns upload sessions).
 *
 * Results are pc.h codes; a failing call sets pc_error_set().
 */
#ifndef PC_STORE_BLOB_H
#define PC_STORE_BLOB_H

#include "pc.h"
#include "digest.h"

#include <time.h>

#define PC_BLOB_BACKEND_VERSION 2

typedef struct pc_blob_backend pc_blob_backend;
typedef struct pc_blob_rd pc_blob_rd;
typedef struct pc_blob_wr pc_blob_wr;

/* Room enough for any url() a backend gives (an S3 presigned GET). */
#define PC_BLOB_URL_MAX 4096

/* Capability bits in pc_blob_backend.caps. */
#define PC_BLOB_CAP_READ_AFTER_REMOVE 0x1u /* rule 4: an open reader outlives remove() */
#define PC_BLOB_CAP_DURABLE 0x2u           /* survives a restart (fs, S3; not mem) */
#define PC_BLOB_CAP_REMOTE 0x4u            /* every read is a network round trip (S3) */

/* One blob of a listing: its digest, size and seconds since it was last
 * written (its commit). Reported by list() in the same pass. */
typedef struct {
    pc_digest digest;
    uint64_t size;
    long age_s;
} pc_blob_entry;

/* The areas of a store, for locate() (messages only). */
typedef enum {
    PC_BLOB_IN_BLOBS,   /* committed blobs, named by digest string */
    PC_BLOB_IN_UPLOADS, /* uploads, named by id */
    PC_BLOB_IN_TMP      /* temp writers' leftovers, named as tmp_list reports */
} pc_blob_kind;

/* A held publish lock (publish_lock). Opaque to the caller. */
typedef struct {
    int a, b;
    void *p;
} pc_blob_hold;

/* Who waits for a read_nowait (a suspended HTTP connection). */
typedef struct pc_blob_waiter {
    void (*suspend)(void *ctx);
    void (*resume)(void *ctx);
    void *ctx;
} pc_blob_waiter;

/* An open committed blob. */
struct pc_blob_rd {
    uint64_t size;
    /* THE read path (required): copy up to len bytes at offset into buf.
     * Returns the bytes copied (short reads allowed), 0 at or past the
     * end, or < 0 (PC_ENOTFOUND: removed, see rule 4). */
    long (*read)(pc_blob_rd *r, uint64_t offset, void *buf, size_t len);
    /* Optional: a new descriptor on the blob's bytes for sendfile, the
     * caller's to close. NULL or PC_ENOTSUP when the backend has no
     * files. Use pc_blob_rd_fd(). */
    int (*fd)(pc_blob_rd *r, int *out);
    /* Release the reader (required). */
    void (*close)(pc_blob_rd *r);
    /* Optional (NULL when reads never wait long: files, memory): read
     * without holding the thread while bytes are on their way (an object
     * store's GET). Like read for an offset below size, except that when
     * no byte is ready it calls w->suspend(w->ctx) and returns 0; then
     * w->resume(w->ctx) is called once, from another thread (maybe before
     * this call returns), when bytes are ready or the read failed: call it
     * again. w must stay valid until close(), which also ends any wait. */
    long (*read_nowait)(pc_blob_rd *r, uint64_t offset, void *buf, size_t len,
                        const pc_blob_waiter *w);
    /* Optional (NULL when none): a string naming the stored version this
     * reader reads (S3: the object's ETag; every read of the reader comes
     * from that version), so that the front end may remember a version
     * that hashed right and stream it unhashed next time. Another content
     * stored under the digest must have another identity. Owned by r. */
    const char *ident;
};

/* An open upload (or an anonymous temp writer). Appends go after the last
 * checkpoint; they become durable with checkpoint() or commit(). */
struct pc_blob_wr {
    /* Bytes in the upload: checkpointed + appended since. */
    uint64_t size;
    /* The resume state saved with the last checkpoint (the front end's
     * hasher state, opaque to the backend), and the upload size it goes
     * with; state_len 0 when none was saved (a new upload, or one written
     * by the version 1 store). Owned by the writer. */
    const void *state;
    size_t state_len;
    uint64_t state_size;
    /* Append len bytes (required). 0 or < 0; a failed append leaves the
     * writer usable only for close() or cancel(). */
    int (*append)(pc_blob_wr *w, const void *buf, size_t len);
    /* Make every byte so far durable together with state (state_len <=
     * PC_BLOB_STATE_MAX), so that a later writer(id, false) (after a close or a
     * crash) resumes exactly here (required for uploads; PC_EINVAL for a
     * temp writer). 0 or < 0 (then the previous checkpoint still holds).
     * The bytes since the last checkpoint may be fewer than min_part (the
     * end of a client's chunk): a backend that cannot store a short part
     * keeps that tail aside (S3: a tail object, sent as part of the next
     * part or of the commit). */
    int (*checkpoint)(pc_blob_wr *w, const void *state, size_t state_len);
    /* Publish every byte so far under d (the front end's computed digest,
     * not checked again) and free the writer; the upload is gone. When d
     * is already present it is replaced (a damaged copy heals) or kept:
     * either way d is visible with this content. 0 or < 0 (the writer is
     * freed either way; on failure the upload stays at its last
     * checkpoint, a temp writer is dropped). */
    int (*commit)(pc_blob_wr *w, const pc_digest *d);
    /* Drop the upload (or temp writer) and everything in it; free w. */
    void (*cancel)(pc_blob_wr *w);
    /* Free w; the upload stays at its last checkpoint (appends since are
     * dropped, so a failed chunk leaves nothing behind). */
    void (*close)(pc_blob_wr *w);
    /* Optional: read back the bytes written so far, for what the front
     * end must hash once more: an upload without a saved state (written by
     * version 1), or a digest claimed in another algorithm than the one
     * hashed. Like pc_blob_rd.read. NULL or PC_ENOTSUP on object stores. */
    long (*read)(pc_blob_wr *w, uint64_t offset, void *buf, size_t len);
};

/* The most state bytes a checkpoint may carry. */
#define PC_BLOB_STATE_MAX 4096

struct pc_blob_backend {
    unsigned version; /* PC_BLOB_BACKEND_VERSION */
    const char *name; /* driver name ("fs", "mem") */
    unsigned caps;    /* PC_BLOB_CAP_* */
    /* The smallest piece the backend wants per write, except the last: the
     * front end buffers appends up to it (S3 multipart: 5 MiB; fs/mem: 0).
     * pc_blob_up does. */
    uint64_t min_part;

    /* --- required --- */

    /* Size of committed blob d (one HEAD on S3). 0 or PC_ENOTFOUND. */
    int (*stat)(pc_blob_backend *be, const pc_digest *d, uint64_t *size);
    /* Open committed blob d for reading; *out is the caller's (->close). */
    int (*open)(pc_blob_backend *be, const pc_digest *d, pc_blob_rd **out);
    /* Remove committed blob d (rule 4). 0 or PC_ENOTFOUND. */
    int (*remove)(pc_blob_backend *be, const pc_digest *d);
    /* Call cb for every committed blob with size and age, in one pass (no
     * per-blob request); stops and returns cb's value when non-zero. */
    int (*list)(pc_blob_backend *be, int (*cb)(const pc_blob_entry *e, void *ctx), void *ctx);
    /* A writer: for upload `id` (create: a new upload, PC_EEXISTS when it
     * exists; else reopen at its last checkpoint, PC_ENOTFOUND when
     * unknown), or with id NULL an anonymous temp writer that cannot be
     * resumed (manifests, spooled fetches). *out is the caller's. */
    int (*writer)(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out);
    /* Checkpointed bytes of upload id. 0 or PC_ENOTFOUND. */
    int (*upload_stat)(pc_blob_backend *be, const char *id, uint64_t *size);
    /* Drop upload id if it was last written at least min_age_s seconds ago
     * (0: at once). 0, PC_EEXISTS (written since: kept), PC_ENOTFOUND. */
    int (*upload_remove)(pc_blob_backend *be, const char *id, long min_age_s);
    /* Call cb for every upload with its size and age. */
    int (*upload_list)(pc_blob_backend *be,
                       int (*cb)(const char *id, uint64_t size, long age_s, void *ctx), void *ctx);
    /* Free the backend (no reader or writer may be open). */
    void (*free)(pc_blob_backend *be);

    /* --- optional: NULL (or PC_ENOTSUP) when the backend has no such
     * thing; call them through the pc_blob_* wrappers below --- */

    /* A URL clients may GET blob d from directly (S3: presigned), valid
     * for about ttl_s seconds; *expires the time it stops working. */
    int (*url)(pc_blob_backend *be, const pc_digest *d, long ttl_s, char *buf, size_t size,
               time_t *expires);
    /* Publish the bytes of local file fd (size bytes, already verified to
     * hash to d by the caller) without copying (fs: link an O_TMPFILE
     * spool). PC_ENOTSUP when it cannot (another filesystem): copy instead. */
    int (*adopt_fd)(pc_blob_backend *be, int fd, uint64_t size, const pc_digest *d);
    /* The publish lock (version 1's rules): a publisher holds it
     * shared from before commit until the meta store records a holder, a
     * remover (gc, fsck) exclusive from its last look at the holders until
     * the removal is done; a waiting remover is not starved. Object stores
     * leave it to the meta store (an advisory lock). */
    int (*publish_lock)(pc_blob_backend *be, bool exclusive, pc_blob_hold *h);
    void (*publish_unlock)(pc_blob_backend *be, pc_blob_hold *h);
    /* Take damaged blob d out of service (never served again). */
    int (*quarantine)(pc_blob_backend *be, const pc_digest *d);
    /* Leftovers of temp writers (rule 2), with size and age. */
    int (*tmp_list)(pc_blob_backend *be,
                    int (*cb)(const char *name, uint64_t size, long age_s, void *ctx), void *ctx);
    /* Remove leftover `name` if idle for min_age_s. 0, PC_EEXISTS (kept),
     * PC_ENOTFOUND, PC_EINVAL (not a leftover's name). */
    int (*tmp_remove)(pc_blob_backend *be, const char *name, long min_age_s);
    /* Where item `name` of `kind` lives, for messages. 0, PC_EINVAL,
     * PC_ETOOBIG. */
    int (*locate)(pc_blob_backend *be, pc_blob_kind kind, const char *name, char *buf, size_t size);
};

/* Whether id is an acceptable upload id ([A-Za-z0-9-]{1,64}), rule 5. */
bool pc_upload_id_valid(const char *id);

/* ---- opening backends ---- */

/* Accept a table a driver returned: its version must be
 * PC_BLOB_BACKEND_VERSION and every required function set. On refusal the
 * message says why and PC_ENOTSUP is returned; a table of this version is
 * freed, one of another version is left alone (its layout is unknown). */
int pc_blob_backend_check(pc_blob_backend *be);

/* Open the backend named driver ("fs": location is the data directory;
 * "mem": location is ignored) and check it. PC_ENOTSUP for an unknown
 * driver or a refused table, else the driver's result. */
int pc_blob_open(const char *driver, const char *location, pc_blob_backend **out);
/* The same with the driver's own options: "s3" needs a pc_blob_s3_opts
 * (store/blob_s3.h; PC_EINVAL without), the others take NULL. */
int pc_blob_open_opts(const char *driver, const char *location, const void *opts,
                      pc_blob_backend **out);

/* The name of pc_blob_open's i-th driver (0, 1, ...; NULL past the last),
 * with in *durable (when not NULL) whether it keeps blobs in its location
 * across restarts (fs) or not (mem). */
const char *pc_blob_driver(size_t i, bool *durable);

/* The filesystem backend in dir (created as needed; the v1 layout:
 * dir/blobs/<alg>/<2 hex>/<hex>, dir/uploads/<id> (+ <id>.state), dir/tmp/).
 * store/blob_fs.c. */
int pc_blob_fs_open(pc_blob_backend **out, const char *dir);
/* The same on dir as it is, for fsck: nothing is created and no leftover
 * cleaned up (fsck reports them). PC_ENOTFOUND (message set) when dir or
 * its blobs/, uploads/ or tmp/ is missing. */
int pc_blob_fs_open_existing(pc_blob_backend **out, const char *dir);
/* The in-memory backend (store/blob_mem.c). */
int pc_blob_mem_open(pc_blob_backend **out);
/* Tests only: make committed blob d of a mem backend look seconds older. */
int pc_blob_mem_backdate(pc_blob_backend *be, const pc_digest *d, long seconds);

/* ---- optional capabilities through one door each (PC_ENOTSUP when
 * absent) ---- */

int pc_blob_rd_fd(pc_blob_rd *r, int *out);
int pc_blob_url(pc_blob_backend *be, const pc_digest *d, long ttl_s, char *buf, size_t size,
                time_t *expires);
int pc_blob_adopt_fd(pc_blob_backend *be, int fd, uint64_t size, const pc_digest *d);
/* Without a lock in the backend these succeed and hold nothing. */
int pc_blob_publish_lock(pc_blob_backend *be, bool exclusive, pc_blob_hold *h);
void pc_blob_publish_unlock(pc_blob_backend *be, pc_blob_hold *h);
/* Falls back to remove() when the backend has no quarantine. */
int pc_blob_quarantine(pc_blob_backend *be, const pc_digest *d);

/* ---- the front end: hashing writes (store/blob.c) ---- */

typedef struct pc_blob_up pc_blob_up;

/* Start upload id (NULL: a temp writer) hashing with alg. */
int pc_blob_up_create(pc_blob_backend *be, const char *id, pc_digest_alg alg, pc_blob_up **out);
/* Resume upload id at its last checkpoint: the saved hash state is
 * restored, so nothing is read back; an upload without one (version 1) is
 * hashed once through the writer's read (PC_ENOTSUP if it has none). */
int pc_blob_up_resume(pc_blob_backend *be, const char *id, pc_digest_alg alg, pc_blob_up **out);
/* Hash and append (buffered up to the backend's min_part). */
int pc_blob_up_write(pc_blob_up *u, const void *buf, size_t len);
/* Bytes in the upload so far. */
uint64_t pc_blob_up_size(const pc_blob_up *u);
/* Make everything so far durable with the hash state (end of a chunk). */
int pc_blob_up_checkpoint(pc_blob_up *u);
/* Finish: the computed digest must equal want, then the backend commits
 * under it. A want of another algorithm than the upload was hashed with
 * (the client names its digest only at the end) is hashed once more
 * through the writer's read (PC_ENOTSUP without one). PC_EDIGEST when it differs: the upload is
 * cancelled and nothing becomes visible. *got (may be NULL) is the computed digest. u is freed
 * either way. */
int pc_blob_up_finish(pc_blob_up *u, const pc_digest *want, pc_digest *got);
/* Stop: keep the upload at its last checkpoint (pc_blob_up_close) or
 * drop it (pc_blob_up_cancel); u is freed. */
void pc_blob_up_close(pc_blob_up *u);
void pc_blob_up_cancel(pc_blob_up *u);

/* A whole buffer under d (checked to hash to d first: PC_EDIGEST). */
int pc_blob_put(pc_blob_backend *be, const pc_digest *d, const void *buf, size_t len);
/* A whole committed blob of at most max bytes into *buf (the caller's,
 * free()). PC_ENOTFOUND, PC_ETOOBIG. */
int pc_blob_get(pc_blob_backend *be, const pc_digest *d, size_t max, void **buf, size_t *len);

#endif
