/*
 * copy.h - replicating an image from one place to another, digests
 * preserved: a registry repository (pc_upstream) or an OCI image layout
 * on either side. All platforms of an index by default (or the chosen
 * ones), referrers (signatures, SBOMs) on request.
 *
 * Order, so that nothing half-copied is ever named at the destination:
 * every blob first (a bounded pool of workers; blobs the destination
 * already has are skipped after a HEAD, blobs of another repository of
 * the same registry are mounted, the rest streamed from the source in
 * chunks with resume after a dropped connection), then the child
 * manifests by digest, then the top manifest under its tag. Failed
 * requests are retried with exponential back-off and jitter
 * (pc_copy_backoff_ms), respecting Retry-After.
 *
 * Files: copy.c (the plan, manifests, referrers), copy_blob.c (blob
 * transfers, readers, retries), copy_layout.c (OCI layout sources).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_COPY_H
#define PC_COPY_H

#include <stdatomic.h>

#include "pc.h"
#include "digest.h"
#include "pull.h"
#include "upstream.h"

/* One side of a copy. */
typedef struct {
    pc_upstream *u;        /* a registry (borrowed), or NULL for a layout */
    const char *repo;      /* with u: the repository */
    const char *dir;       /* without u: the OCI image layout directory */
    const char *reference; /* source: tag or "sha256:..." (layout: a ref name, or
                              NULL when index.json names one image);
                              destination: the tag, or NULL for digests only */
} pc_copy_end;

typedef struct {
    pc_copy_end src, dst;
    const pc_pull_platform *platforms; /* these images of an index; NULL = all */
    size_t nplatforms;
    bool referrers;                  /* also copy what refers to each manifest */
    unsigned concurrency;            /* blobs at once; 0 = 4 */
    uint64_t chunk_size;             /* PATCH size; blobs up to this go in one PUT;
                                        0 = 64 MiB */
    unsigned retries;                /* per request after the first try; 0 = default 5 */
    bool no_retries;                 /* never retry (retries ignored) */
    unsigned backoff_ms;             /* first back-off; 0 = 500 */
    unsigned backoff_max_ms;         /* back-off cap; 0 = 30000 */
    pc_pull_progress_cb on_progress; /* blob events as the pull engine sends them;
                                        SKIPPED covers present and mounted blobs */
    void *progress_ctx;
    const atomic_bool *cancel; /* set elsewhere to stop early; NULL = never */
} pc_copy_opts;

/* The most manifests whose referrers a copy records (pc_copy_result). */
#define PC_COPY_SUBJECTS_MAX 32
/* The size of a referrers fingerprint (pc_copy_referrers_fingerprint). */
#define PC_COPY_FINGERPRINT_MAX (PC_DIGEST_MAX + 8)

/* A manifest whose referrers a copy listed at the source, and what the
 * listing was. */
typedef struct {
    pc_digest digest;
    char referrers[PC_COPY_FINGERPRINT_MAX]; /* pc_copy_referrers_fingerprint's value */
} pc_copy_subject;

typedef struct {
    pc_pull_desc top; /* the manifest named at the destination */
    bool top_is_index;
    bool index_rewritten;       /* platforms chose several images: a new index (new digest) */
    char platforms[512];        /* "linux/amd64, linux/arm64/v8" ("" when unknown) */
    uint64_t blobs;             /* uploaded */
    uint64_t blobs_skipped;     /* the destination had them */
    uint64_t blobs_mounted;     /* mounted from the source repository */
    uint64_t blobs_foreign;     /* foreign layers left out */
    uint64_t bytes;             /* blob bytes sent to the destination (resends included) */
    uint64_t bytes_total;       /* blob bytes of the plan */
    uint64_t manifests;         /* manifests written */
    uint64_t manifests_skipped; /* the destination had them (HEAD) */
    uint64_t referrers;         /* referrer manifests copied */
    uint64_t retries;           /* requests repeated after a failure */
    uint64_t resumed;           /* uploads continued from the destination's offset */
    double seconds;
    bool error_at_dest; /* the failure was the destination's (else the source's or local) */
    pc_pull_error error;
    /* with referrers: the manifests whose referrers were listed at the
     * source (each once), with the listing's fingerprint */
    pc_copy_subject subjects[PC_COPY_SUBJECTS_MAX];
    size_t nsubjects;
    bool subjects_overflow; /* more were listed than subjects holds */
} pc_copy_result;

/* Copy one image as o says. Returns 0 or a negative code with res->error
 * filled in (its kind as the pull engine's: registry, network,
 * verification, platform, local, canceled; error_at_dest tells which
 * side). The destination tag is written only after everything it names
 * is there. res is overwritten. */
int pc_copy_run(const pc_copy_opts *o, pc_copy_result *res);

/* What the source u says refers to subject in repo, without a manifest
 * GET (so without spending a pull where registries count them): the
 * referrers API (GET) gives "api:" and the sha256 of the referrers'
 * digests, sorted, one a line; a registry without the API (404, 400) the
 * digest of the sha256-<hex> tag's index (HEAD) as "tag:DIGEST", or "none"
 * when that tag is absent too. pc_copy_run records the same value for each
 * subject it lists (res->subjects), so an unchanged value means unchanged
 * referrers. 0, or PC_EUPSTREAM (the registry failed; message set),
 * PC_ENOMEM. */
int pc_copy_referrers_fingerprint(pc_upstream *u, const char *repo, const pc_digest *subject,
                                  char *out, size_t size);

/* Milliseconds to wait before retry number attempt (0 = the first
 * retry): base * 2^attempt capped at cap, with equal jitter (half fixed,
 * half from rnd), and never less than retry_after_s seconds when that is
 * >= 0. */
uint64_t pc_copy_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms,
                            int64_t retry_after_s, uint32_t rnd);

/* Whether a failed exchange of this class is worth repeating (429, 5xx,
 * timeouts, refused and reset connections). */
bool pc_copy_retryable(pc_up_class cls);

/* ---- OCI layout sources (copy_layout.c) ---- */

/* Find the descriptor index.json gives ref_name in layout dir (NULL: the
 * only entry, which must then be unique). 0, PC_ENOTFOUND (message names
 * what the layout has), PC_EINVAL (no usable index.json), PC_ENOMEM. */
int pc_copy_layout_lookup(const char *dir, const char *ref_name, pc_pull_desc *out);

/* Path of blob d in layout dir into buf. 0 or PC_ETOOBIG. */
int pc_copy_layout_blob_path(const char *dir, const pc_digest *d, char *buf, size_t size);

/* Split "DIR[:TAG]" (the part after "oci:") into dir and tag (tag "" when
 * none: the text after the last ':' counts as a tag only when it is a
 * valid tag and has no '/'). 0 or PC_EINVAL. */
int pc_copy_layout_split(const char *s, char *dir, size_t dir_size, char *tag, size_t tag_size);

#endif
