/*
 * pull.h - pulling an image like a container runtime: GET the manifest by
 * tag or digest and verify its digest, resolve a platform in an index (or
 * take every child), fetch the config and layers with a bounded pool of
 * worker threads, stream every blob through its digest and check its size,
 * and write everything to an OCI image layout (or discard it).
 *
 * Files: pull.c (the engine), pull_platform.c (platforms, descriptors,
 * resolution), pull_layout.c (the OCI image layout writer).
 *
 * Thread-safe: any number of pulls may run at once (loadgen does); a pull
 * keeps all its state in its own pc_pull_result and stack, and the source's
 * functions must be thread-safe (pc_upstream is).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_PULL_H
#define PC_PULL_H

#include <stdatomic.h>

#include "pc.h"

#include <stdarg.h>
#include "digest.h"
#include "ratelimit.h"
#include "upstream.h"

/* ---- platforms (pull_platform.c) ---- */

#define PC_PULL_PLATFORM_FIELD 32
#define PC_PULL_PLATFORM_STR (3 * PC_PULL_PLATFORM_FIELD)

/* "os/architecture[/variant]", normalized (aliases such as x86_64 and
 * aarch64 mapped, arm64's default variant v8 and arm's v7 filled in,
 * amd64's v1 dropped). */
typedef struct {
    char os[PC_PULL_PLATFORM_FIELD];
    char arch[PC_PULL_PLATFORM_FIELD];
    char variant[PC_PULL_PLATFORM_FIELD];
} pc_pull_platform;

/* Parse "os/arch[/variant]" (as --platform takes it) and normalize it.
 * 0 or PC_EINVAL (message set). */
int pc_pull_platform_parse(pc_pull_platform *out, const char *s);

/* Normalize os, arch and variant in place (see pc_pull_platform). */
void pc_pull_platform_normalize(pc_pull_platform *p);

/* The platform of this machine (linux/<uname -m>, normalized). */
void pc_pull_platform_host(pc_pull_platform *out);

/* Format "os/arch[/variant]" into buf (truncated to fit). Returns buf. */
const char *pc_pull_platform_format(const pc_pull_platform *p, char *buf, size_t size);

/* One descriptor of a manifest (config or layer) or of an index (a child
 * manifest), with what the pull needs of it. */
typedef struct {
    char media_type[256];
    pc_digest digest;
    uint64_t size;
    bool has_urls;     /* "urls" non-empty: content that may live elsewhere */
    bool has_platform; /* index children: a "platform" object was given */
    pc_pull_platform platform;
} pc_pull_desc;

/* Whether a layer of this descriptor is a foreign / non-distributable one
 * that the pull leaves out: a foreign or nondistributable media type
 * *with* urls. Such layers without urls are fetched like any other. */
bool pc_pull_desc_foreign(const pc_pull_desc *d);

/* Read a manifest's descriptors. The document is first validated with
 * pc_manifest_parse() (content_type as there). For an image manifest
 * (*is_index false) out[0] is the config and out[1..] the layers; for an
 * index or manifest list, the children in order. *out is the caller's
 * (free()). 0, PC_EINVAL (message set), PC_ETOOBIG or PC_ENOMEM. */
int pc_pull_descs_parse(const void *buf, size_t len, const char *content_type, bool *is_index,
                        char *media_type, size_t media_type_size, pc_pull_desc **out, size_t *n);

/* Choose the child of an index that best runs on want: same os and
 * architecture, the same variant (for arm, the highest variant not above
 * want's), the first in index order on a tie. Children without a platform
 * never match. *index is set; 0 or PC_ENOTFOUND (message lists what the
 * index has). */
int pc_pull_platform_select(const pc_pull_desc *children, size_t n, const pc_pull_platform *want,
                            size_t *index);

/* ---- the OCI image layout writer (pull_layout.c) ---- */

typedef struct pc_pull_layout pc_pull_layout;
typedef struct pc_pull_layout_blob pc_pull_layout_blob;

/* Open (create if needed) an OCI image layout at dir: dir/oci-layout,
 * dir/blobs/sha256/. An existing directory that is not empty and is not
 * an OCI layout is refused (PC_EEXISTS) so a typo cannot scatter files
 * into someone's home. *out is the caller's (pc_pull_layout_close()).
 * 0, PC_EEXISTS, PC_EINVAL (a file is in the way), PC_ERR (I/O), PC_ENOMEM. */
int pc_pull_layout_open(pc_pull_layout **out, const char *dir);
void pc_pull_layout_close(pc_pull_layout *l);

/* Whether the layout already holds d with this size and content (the
 * file is hashed). */
bool pc_pull_layout_has(pc_pull_layout *l, const pc_digest *d, uint64_t size);

/* Start writing blob d: a temporary file next to its final name. Safe from
 * many threads at once (one writer per blob). *out is the caller's; end it
 * with pc_pull_layout_blob_commit() or _abort(). 0, PC_ERR, PC_ENOMEM. */
int pc_pull_layout_blob_begin(pc_pull_layout *l, const pc_digest *d, pc_pull_layout_blob **out);
int pc_pull_layout_blob_write(pc_pull_layout_blob *b, const void *buf, size_t len);
/* Flush, sync and rename to blobs/<alg>/<hex>; frees b either way. The
 * caller has verified the digest. 0 or PC_ERR. */
int pc_pull_layout_blob_commit(pc_pull_layout_blob *b);
/* Remove the temporary file and free b (NULL is fine). */
void pc_pull_layout_blob_abort(pc_pull_layout_blob *b);

/* Read blob d (at most max bytes) into *buf (caller's, free()). 0,
 * PC_ENOTFOUND, PC_ETOOBIG, PC_ERR, PC_ENOMEM. */
int pc_pull_layout_read(pc_pull_layout *l, const pc_digest *d, size_t max, char **buf, size_t *len);

/* Write a whole buffer as blob d (temp file + rename), after checking
 * that buf hashes to d. 0, PC_EDIGEST, PC_ERR, PC_ENOMEM. */
int pc_pull_layout_put(pc_pull_layout *l, const pc_digest *d, const void *buf, size_t len);

/* Name desc in index.json (temp file + rename): an entry with annotation
 * org.opencontainers.image.ref.name = ref_name (NULL or "" = no name).
 * Entries already there with the same name (or, unnamed, the same digest)
 * are replaced; others are kept. desc->platform is written when
 * has_platform. 0, PC_EINVAL (index.json unreadable), PC_ERR, PC_ENOMEM. */
int pc_pull_layout_tag(pc_pull_layout *l, const pc_pull_desc *desc, const char *ref_name);

/* ---- sources ---- */

/* Where a pull reads from: a table of two functions with the contracts of
 * pc_upstream_manifest() (always a GET here) and pc_upstream_blob() (GET).
 * Both are called from several threads at once. */
typedef struct {
    int (*manifest)(void *ctx, const char *repo, const char *reference, pc_upstream_resp *out);
    int (*blob)(void *ctx, const char *repo, const pc_digest *d, pc_upstream_start_cb on_start,
                pc_upstream_data_cb on_data, void *cb_ctx, pc_upstream_resp *out);
    void *ctx;
} pc_pull_source;

/* A source reading from a registry client (borrowed; it must outlive the
 * source). */
void pc_pull_source_upstream(pc_pull_source *out, pc_upstream *u);

/* ---- the engine (pull.c) ---- */

/* Events of the progress callback. */
typedef enum {
    PC_PULL_EV_PLAN = 0, /* the blob list is known: nblobs, total_size */
    PC_PULL_EV_START,    /* a blob transfer starts */
    PC_PULL_EV_DATA,     /* bytes of a blob arrived */
    PC_PULL_EV_DONE,     /* a blob is verified (and written) */
    PC_PULL_EV_SKIPPED,  /* a blob was already in the layout, or is foreign */
    PC_PULL_EV_FAILED,   /* a blob failed (the pull fails) */
} pc_pull_event;

/* What the progress callback sees. Strings and digests are borrowed for the
 * call. blob fields are unset for PLAN. */
typedef struct {
    pc_pull_event event;
    size_t blob;   /* index in the plan */
    size_t nblobs; /* blobs in the plan */
    const pc_digest *digest;
    uint64_t size;       /* of this blob, from its descriptor */
    uint64_t done;       /* bytes of this blob so far */
    uint64_t total_size; /* of all blobs in the plan */
    uint64_t total_done; /* bytes of all blobs so far (skipped ones count as done) */
    size_t blobs_done;   /* blobs finished (done or skipped) */
} pc_pull_progress;

/* Called from the worker threads, one call at a time per pull (the engine
 * serializes them); keep it quick. */
typedef void (*pc_pull_progress_cb)(const pc_pull_progress *p, void *ctx);

typedef struct {
    const char *repo;                 /* "library/nginx" */
    const char *reference;            /* tag or "sha256:..." */
    const char *tag;                  /* ref name in index.json; NULL or "" when none */
    const char *output;               /* OCI layout directory; NULL = discard */
    const pc_pull_platform *platform; /* NULL = this machine's */
    bool all_platforms;               /* an index: every child, and the index itself */
    bool manifest_only;               /* manifests only, no blobs (loadgen) */
    unsigned concurrency;             /* worker threads for blobs; 0 = 4 */
    pc_pull_progress_cb on_progress;  /* NULL = none */
    void *progress_ctx;
    const atomic_bool *cancel; /* set from elsewhere to stop early; NULL = never */
} pc_pull_opts;

/* Why a pull failed. */
typedef enum {
    PC_PULL_OK = 0,
    PC_PULL_FAIL_REGISTRY, /* the registry answered with an error status */
    PC_PULL_FAIL_NETWORK,  /* no usable answer: refused, timeout, reset, TLS */
    PC_PULL_FAIL_VERIFY,   /* digest or size mismatch, a malformed manifest */
    PC_PULL_FAIL_PLATFORM, /* the index has nothing for the platform */
    PC_PULL_FAIL_LOCAL,    /* writing the output, out of memory */
    PC_PULL_FAIL_CANCELED, /* opts.cancel was set */
} pc_pull_fail;

typedef struct {
    pc_pull_fail kind;
    pc_up_class cls;   /* of the failed exchange (REGISTRY, NETWORK) */
    long status;       /* HTTP status, 0 when none */
    char code[64];     /* registry error code ("TOOMANYREQUESTS"), "" when none */
    char key[96];      /* for counting: "429 TOOMANYREQUESTS", "reset", "digest mismatch" */
    char object[192];  /* what failed: "manifest latest", "blob sha256:..." */
    char message[768]; /* the whole story, one line */
    char retry_after[64];
} pc_pull_error;

/* Fill e for a failure that is not a registry's answer (verification, platform,
 * cancel, local): kind, object, "OBJECT: message" and the counting key. */
void pc_pull_error_vset(pc_pull_error *e, pc_pull_fail kind, const char *object, const char *fmt,
                        va_list ap) __attribute__((format(printf, 4, 0)));

/* One image manifest of the pull (several with all_platforms). */
typedef struct {
    pc_pull_desc desc;                   /* its descriptor (platform from the index) */
    char platform[PC_PULL_PLATFORM_STR]; /* "linux/amd64" ("" when unknown) */
    pc_digest config;
} pc_pull_image;

typedef struct {
    pc_pull_desc top;   /* the manifest the reference names */
    pc_pull_desc named; /* the one named in index.json (top, or the resolved child) */
    bool top_is_index;
    pc_pull_image *images; /* malloc'd; nimages entries */
    size_t nimages;
    uint64_t blobs;         /* blobs fetched and verified */
    uint64_t blobs_skipped; /* already in the layout */
    uint64_t blobs_foreign; /* foreign layers left out */
    uint64_t bytes;         /* blob bytes received */
    uint64_t manifests;     /* manifest GETs */
    uint64_t manifest_bytes;
    double seconds;
    bool has_ratelimit;     /* the top manifest's response carried ratelimit headers */
    pc_ratelimit ratelimit; /* parsed from them */
    char ratelimit_limit[128], ratelimit_remaining[128]; /* raw */
    pc_pull_error error;
} pc_pull_result;

/* Pull one image from src. Returns 0, or a negative code with res->error
 * filled in: PC_ELIMIT (429), PC_ENOTFOUND (404, or no platform),
 * PC_EUPSTREAM (other registry and network failures), PC_EDIGEST
 * (verification), PC_ERR / PC_ENOMEM (local). A failed pull leaves no blob
 * under a digest name it did not verify and does not touch index.json.
 * res is overwritten; clear it with pc_pull_result_clear(). */
int pc_pull_run(const pc_pull_source *src, const pc_pull_opts *opts, pc_pull_result *res);

void pc_pull_result_clear(pc_pull_result *res);

/* A short name for a failure kind ("registry", "verification"). Static. */
const char *pc_pull_fail_str(pc_pull_fail kind);

/* The registry error code of an error body ({"errors":[{"code":...}]})
 * into buf ("" when none). */
void pc_pull_registry_code(const char *body, size_t len, char *buf, size_t size);

#endif
