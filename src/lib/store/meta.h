/*
 * store/meta.h - the meta store interface: repositories, blob links, tags,
 * manifests and their references, referrers, upload sessions, cache
 * bookkeeping, and the client pull limiter's counts.
 *
 * A versioned table of functions. The SQLite backend (meta_sqlite.c) is
 * the embedded default, the in-memory one (meta_mem.c) serves tests and
 * serve --ephemeral; the PostgreSQL one (meta_pg.c, store/meta_pg.h) is
 * shared by several replicas.
 * Repositories exist implicitly: a repository is known while it has a blob
 * link, a manifest or a tag. Manifest bytes live in the blob store under
 * their digest; the meta store keeps only what queries need.
 * All functions are safe to call from several threads at once.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_METASTORE_H
#define PC_METASTORE_H

#include "pc.h"
#include "digest.h"
#include "ref.h"

#define PC_MEDIA_TYPE_MAX 256

typedef struct pc_metastore pc_metastore;

/* What the meta store keeps of one manifest in one repository. */
typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest digest;
    char media_type[PC_MEDIA_TYPE_MAX];
    uint64_t size;
    char artifact_type[PC_MEDIA_TYPE_MAX]; /* "" when none */
    bool has_subject;
    pc_digest subject;
} pc_manifest_rec;

/* One thing a manifest points at: a blob (config, layer) or a manifest
 * (child of an index). */
typedef struct {
    pc_digest digest;
    bool is_manifest;
} pc_manifest_ref;

/* List callbacks return 0 to continue, non-zero to stop (that value is then
 * returned by the listing function). */
typedef int (*pc_meta_str_cb)(const char *s, void *ctx);
typedef int (*pc_meta_rec_cb)(const pc_manifest_rec *m, void *ctx);
typedef int (*pc_meta_digest_cb)(const pc_digest *d, void *ctx);
/* An eviction candidate: a mirrored blob, its size and last access. */
typedef int (*pc_meta_access_cb)(const pc_digest *d, uint64_t size, int64_t last_access, void *ctx);

/* One bucket of the client pull limiter (limiter.h): count pulls by key in
 * the bucket that starts at unix second `bucket`, to be forgotten at unix
 * second `expires`. */
typedef struct {
    const char *key;
    int64_t bucket;
    uint64_t count;
    int64_t expires;
} pc_meta_limit_row;
typedef int (*pc_meta_limit_cb)(const pc_meta_limit_row *row, void *ctx);

/* fsck's listings: a blob link; one reference of manifest `manifest` in
 * repo; an upload session (created: unix seconds). */
typedef int (*pc_meta_link_cb)(const char *repo, const pc_digest *d, uint64_t size, void *ctx);
typedef int (*pc_meta_ref_cb)(const char *repo, const pc_digest *manifest,
                              const pc_manifest_ref *ref, void *ctx);
typedef int (*pc_meta_upload_cb)(const char *id, const char *repo, int64_t created, void *ctx);

/* What guarded_remove removes once its check passed. */
typedef enum {
    PC_META_REMOVE_NOTHING,  /* only hold other writers off while check runs */
    PC_META_REMOVE_LINK,     /* the blob link (repo, digest) */
    PC_META_REMOVE_MANIFEST, /* manifest (repo, digest), its references and tags */
} pc_meta_remove_kind;

typedef struct {
    pc_meta_remove_kind kind;
    const char *repo;
    const pc_digest *digest;
} pc_meta_removal;

/* Runs inside guarded_remove's transaction: 0 lets the removal go on,
 * anything else cancels it (and is returned). */
typedef int (*pc_meta_guard_fn)(pc_metastore *ms, void *ctx);

/* A rule about repository names, given by the caller (the cache's "this
 * repository belongs to the mirror"): true or false. */
typedef bool (*pc_meta_repo_pred)(const char *repo, void *ctx);

/* ---- registry data: repositories, blob links, manifests, references, tags, uploads ---- */

#define PC_META_REG_VERSION 1

typedef struct {
    unsigned version; /* PC_META_REG_VERSION */

    /* Link a published blob into a repository (idempotent). */
    int (*blob_link)(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t size);
    /* Whether d is linked in repo; its size. 0 or PC_ENOTFOUND. */
    int (*blob_stat)(pc_metastore *ms, const char *repo, const pc_digest *d, uint64_t *size);
    /* Whether d is linked in any repository; its size. 0 or PC_ENOTFOUND. */
    int (*blob_stat_any)(pc_metastore *ms, const pc_digest *d, uint64_t *size);
    /* Remove a link. 0 or PC_ENOTFOUND. */
    int (*blob_unlink)(pc_metastore *ms, const char *repo, const pc_digest *d);

    /* Store a manifest record, the references of that manifest, and
     * (when tag is not NULL) point tag at it, in one transaction. Putting
     * the same manifest again replaces its record. The tag is compared and
     * swapped when expect is not NULL: it must point at *expect (or, when
     * expect->str is "", not exist); otherwise nothing is stored and the
     * result is PC_ECONFLICT. expect NULL sets the tag whatever it was. */
    int (*manifest_put)(pc_metastore *ms, const pc_manifest_rec *m, const pc_manifest_ref *refs,
                        size_t nrefs, const char *tag, const pc_digest *expect);
    /* Look up a manifest of repo by digest. 0 or PC_ENOTFOUND. */
    int (*manifest_get)(pc_metastore *ms, const char *repo, const pc_digest *d,
                        pc_manifest_rec *out);
    /* Delete a manifest from repo, with its references and every tag that
     * points at it. 0 or PC_ENOTFOUND. */
    int (*manifest_delete)(pc_metastore *ms, const char *repo, const pc_digest *d);

    /* Resolve a tag. 0 or PC_ENOTFOUND. */
    int (*tag_get)(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out);
    /* Remove a tag (the manifest stays). 0 or PC_ENOTFOUND. */
    int (*tag_delete)(pc_metastore *ms, const char *repo, const char *tag);
    /* Tags of repo in lexical (byte) order, those after `last` when last is
     * not NULL, at most limit of them when limit >= 0. PC_ENOTFOUND when the
     * repository is unknown. */
    int (*tag_list)(pc_metastore *ms, const char *repo, const char *last, long limit,
                    pc_meta_str_cb cb, void *ctx);

    /* Manifests of repo whose subject is `subject`, in digest order. */
    int (*referrers)(pc_metastore *ms, const char *repo, const pc_digest *subject,
                     pc_meta_rec_cb cb, void *ctx);

    /* Names of the repositories (see repo_exists), in lexical order,
     * after `last`, at most limit. */
    int (*catalog)(pc_metastore *ms, const char *last, long limit, pc_meta_str_cb cb, void *ctx);

    /* Whether repo exists: a manifest was stored in it (it stays when its
     * manifests are deleted; blobs alone make none). 0 or PC_ENOTFOUND. */
    int (*repo_exists)(pc_metastore *ms, const char *repo);

    /* Upload sessions: id -> repository. */
    int (*upload_put)(pc_metastore *ms, const char *id, const char *repo);
    /* 0 or PC_ENOTFOUND; repo receives the repository (PC_NAME_MAX+1). */
    int (*upload_get)(pc_metastore *ms, const char *id, char *repo);
    int (*upload_delete)(pc_metastore *ms, const char *id);

    /* Every digest something still needs: manifests in any repository, what
     * they reference, and blobs linked to repositories. For gc and fsck;
     * a digest may be reported more than once. */
    int (*referenced_foreach)(pc_metastore *ms, pc_meta_digest_cb cb, void *ctx);

    /* How many things hold d: blob links, manifests and manifest references
     * across all repositories. */
    int (*digest_holders)(pc_metastore *ms, const pc_digest *d, uint64_t *count);

    /* A manifest of repo that references blob d (not as an index child):
     * its digest into *manifest, so the descriptor (and its size) can be
     * read from its bytes. 0 or PC_ENOTFOUND. */
    int (*ref_holder)(pc_metastore *ms, const char *repo, const pc_digest *d, pc_digest *manifest);

    /* fsck: every blob link of every repository, by repository and digest. */
    int (*blob_link_foreach)(pc_metastore *ms, pc_meta_link_cb cb, void *ctx);
    /* Every manifest of every repository, by repository and digest. */
    int (*manifest_foreach)(pc_metastore *ms, pc_meta_rec_cb cb, void *ctx);
    /* Every manifest reference, by repository, manifest and reference. */
    int (*manifest_ref_foreach)(pc_metastore *ms, pc_meta_ref_cb cb, void *ctx);
    /* Every upload session, by id. */
    int (*upload_foreach)(pc_metastore *ms, pc_meta_upload_cb cb, void *ctx);
    /* Record size as the size of d wherever d is recorded (blob links and
     * manifests of every repository), in one transaction; *changed (may
     * be NULL) receives the rows that had another size. 0 or < 0. */
    int (*size_fix)(pc_metastore *ms, const pc_digest *d, uint64_t size, uint64_t *changed);
    /* In one write transaction (other writers wait): run check, and when
     * it returns 0 remove what `what` names, then commit. check may call
     * this store's read functions, never its writes; it may change other
     * storage (the blob store) as part of the repair. 0 (removed), check's
     * non-zero result (nothing removed), PC_ENOTFOUND (the row is gone),
     * or < 0. */
    int (*guarded_remove)(pc_metastore *ms, const pc_meta_removal *what, pc_meta_guard_fn check,
                          void *ctx);
} pc_meta_reg_ops;

/* ---- cache bookkeeping: tag freshness, blob access times, eviction ---- */

#define PC_META_CACHE_VERSION 1

typedef struct {
    unsigned version; /* PC_META_CACHE_VERSION */

    /* Resolve a tag and report when it was last set or confirmed (unix
     * seconds). 0 or PC_ENOTFOUND. */
    int (*tag_stat)(pc_metastore *ms, const char *repo, const char *tag, pc_digest *out,
                    int64_t *updated);
    /* Mark a tag as confirmed at `when` if it still points at d (an upstream
     * revalidation that found no change). 0 or PC_ENOTFOUND. */
    int (*tag_touch)(pc_metastore *ms, const char *repo, const char *tag, const pc_digest *d,
                     int64_t when);

    /* Record that the mirror served or fetched blob d (size bytes) at `now`
     * (unix seconds). Cheap when repeated: the stored time is only written
     * when it is older than about a minute. 0 or < 0. */
    int (*access_touch)(pc_metastore *ms, const pc_digest *d, uint64_t size, int64_t now);
    /* Eviction candidates, least recently used first: blobs with an access
     * record that no manifest is (of any repository) and that only
     * repositories satisfying mirror(repo, pctx) hold through blob links and
     * manifest references (mirror NULL: that nothing holds). The rule which
     * repositories are the mirror's is the caller's (the cache code). */
    int (*access_lru)(pc_metastore *ms, pc_meta_repo_pred mirror, void *pctx,
                      pc_meta_access_cb cb, void *ctx);
    /* In one transaction: check again that d is a candidate (as in
     * access_lru), PC_EEXISTS otherwise with nothing changed; then remove
     * d's blob links and its access record.
     * The caller removes the bytes afterwards. */
    int (*access_evict)(pc_metastore *ms, const pc_digest *d, pc_meta_repo_pred mirror,
                        void *ctx);
} pc_meta_cache_ops;

/* ---- the client pull limiter's counters (limiter.h) ---- */

#define PC_META_LIMIT_VERSION 2

/* What limit_take found. */
typedef struct {
    bool allowed;   /* counted (or, for a look, the budget is not spent) */
    uint64_t total; /* the key's pulls in the window, after this one when counted */
    int64_t oldest; /* refused: the oldest bucket in the window with pulls, else -1 */
} pc_meta_limit_take;

typedef struct {
    unsigned version; /* PC_META_LIMIT_VERSION */

    /* In one transaction: when replace, forget every stored bucket; store
     * the n rows (a row replaces the stored one of the same key and
     * bucket); drop the rows whose expires <= now. 0 or < 0. */
    int (*limit_save)(pc_metastore *ms, const pc_meta_limit_row *rows, size_t n, int64_t now,
                      bool replace);
    /* Every stored row with expires > now, in no particular order. 0, the
     * callback's non-zero result, or < 0. */
    int (*limit_load)(pc_metastore *ms, int64_t now, pc_meta_limit_cb cb, void *ctx);
    /* The limit as every process sharing the store counts it, in one
     * transaction: the total of key's buckets from `first` on; when count
     * and that total is below max, one more pull in `bucket` (the row
     * made with `expires`, kept otherwise), allowed; when count and it is
     * not, refused with the oldest bucket holding pulls (nothing
     * changed). Without count only the total (allowed: total < max).
     * Exact under concurrency: two takers never both get the last pull.
     * 0 (also when refused: see out->allowed) or < 0. */
    int (*limit_take)(pc_metastore *ms, const char *key, int64_t bucket, int64_t first,
                      int64_t expires, uint64_t max, bool count, pc_meta_limit_take *out);
} pc_meta_limit_ops;

/* ---- coordination of processes that share one store: leases and notes ---- */

#define PC_META_COORD_VERSION 1

/* Lengths including the terminating NUL. */
#define PC_LEASE_KEY_MAX 160
#define PC_LEASE_OWNER_MAX 256
#define PC_NOTE_MAX 1024

/* Who holds a lease, until when (unix milliseconds by the store's clock:
 * one clock for every process sharing the store). */
typedef struct {
    char owner[PC_LEASE_OWNER_MAX];
    int64_t expires_ms;
} pc_meta_lease;

/* A lease is a named claim with an expiry that one owner holds at a time:
 * "this upload is being written", "this blob is being fetched, by the
 * replica at this address", "this replica runs gc". The owner string is
 * the caller's (unique per claimant: a replica id and a request number, an
 * advertise address); the store compares it byte for byte. An expired
 * lease is as good as none: anybody may take it. Times are the store's
 * (its clock, not the caller's), so replicas with skewed clocks agree.
 * A note is a small shared value by key with the time it was last put
 * (the pull budget an upstream reported last, whichever replica saw it). */
typedef struct {
    unsigned version; /* PC_META_COORD_VERSION */

    /* Take lease key for owner for ttl_ms (> 0) from now: when nobody
     * holds it, its holder's time ran out, or owner holds it already
     * (then it is renewed). 0, or PC_EEXISTS when another owner holds it,
     * with that holder in *held (may be NULL). */
    int (*lease_take)(pc_metastore *ms, const char *key, const char *owner, long ttl_ms,
                      pc_meta_lease *held);
    /* Extend owner's lease to ttl_ms from now, also when its time ran out
     * but nobody took it since. 0, or PC_ENOTFOUND when owner does not
     * hold it (released, or taken by another after it expired). */
    int (*lease_renew)(pc_metastore *ms, const char *key, const char *owner, long ttl_ms);
    /* Give up owner's lease. 0, or PC_ENOTFOUND when owner does not hold
     * it (nothing changed: another holder keeps theirs). */
    int (*lease_release)(pc_metastore *ms, const char *key, const char *owner);
    /* The holder of key whose time has not run out. 0 or PC_ENOTFOUND. */
    int (*lease_get)(pc_metastore *ms, const char *key, pc_meta_lease *out);

    /* Set note key to value (a string, < PC_NOTE_MAX bytes), stamped now. */
    int (*note_put)(pc_metastore *ms, const char *key, const char *value);
    /* Read note key into value (size bytes; PC_ETOOBIG when it does not
     * fit) and when it was put (unix ms, store's clock; may be NULL).
     * 0 or PC_ENOTFOUND. */
    int (*note_get)(pc_metastore *ms, const char *key, char *value, size_t size,
                    int64_t *updated_ms);
} pc_meta_coord_ops;

/* A meta store: one handle (a database, a connection pool, memory) and a
 * table of functions per concern. Every function of every table is
 * required; pc_meta_check refuses a store whose versions or tables do not
 * match this header. */
struct pc_metastore {
    unsigned version;      /* PC_META_VERSION */
    const char *driver;    /* "sqlite", "mem", ... */
    const pc_meta_reg_ops *reg;
    const pc_meta_cache_ops *cache;
    const pc_meta_limit_ops *limits;
    const pc_meta_coord_ops *coord;
    void (*free)(pc_metastore *ms);
};

#define PC_META_VERSION 6

/* The input checks every backend makes the same way: a repository name or
 * tag that is set and fits (PC_NAME_MAX, PC_TAG_MAX), a digest with a
 * terminated, non-empty string. pc_meta_invalid sets "meta store: invalid
 * <what>" and returns PC_EINVAL. */
bool pc_meta_repo_ok(const char *repo);
bool pc_meta_tag_ok(const char *tag);
bool pc_meta_digest_ok(const pc_digest *d);
/* A lease key or owner, or a note key: set, fits (max bytes with its NUL). */
bool pc_meta_key_ok(const char *key, size_t max);
int pc_meta_invalid(const char *what);

/* 0 when ms was built against this header (every version matches, every
 * function is there), else PC_ENOTSUP with a message naming the driver
 * and what differs. */
int pc_meta_check(const pc_metastore *ms);

/* Open (creating and migrating as needed) the SQLite meta store at path, in
 * WAL mode. *out is the caller's (->free). 0 or PC_ERR. */
int pc_meta_sqlite_open(pc_metastore **out, const char *path);

/* A meta store kept in memory only (tests, serve --ephemeral): everything
 * is lost when it is freed. *out is the caller's (->free). 0 or
 * PC_ENOMEM. */
int pc_meta_mem_open(pc_metastore **out);

/* PRAGMA quick_check of a store opened by pc_meta_sqlite_open: 0 when
 * the file is sound, PC_EINVAL (message names the file and the first
 * problem) when it is damaged, or < 0. */
int pc_meta_sqlite_quick_check(pc_metastore *ms);

#endif
