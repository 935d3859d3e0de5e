/*
 * history.h - a bounded ring of samples per upstream, what the status page
 * plots: every PC_HISTORY_INTERVAL seconds the pull budget last seen
 * (remaining, limit), the configured reserve, and what happened during the
 * interval (429s, cache hits and misses, upstream pulls and bytes, bytes
 * served from the cache instead of upstream). At most `capacity` samples
 * per upstream are kept; the oldest go first.
 *
 * The ring is persisted as notes of the meta store (the coordination
 * table every backend has), in chunks of PC_HISTORY_CHUNK consecutive
 * samples under "history:<upstream>:<slot>", the slot being the chunk's
 * number modulo the chunks the ring holds: a fixed set of notes that is
 * overwritten round and round, never growing. pc_history_chunk_encode and
 * _decode are the note's text; the sampler (mirror_history.c) reads and
 * writes them.
 *
 * Thread-safe: one mutex guards the ring.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_HISTORY_H
#define PC_HISTORY_H

#include <jansson.h>

#include "pc.h"

/* Seconds between two samples, and the hours the ring covers. */
#define PC_HISTORY_INTERVAL 10
#define PC_HISTORY_HOURS 6
#define PC_HISTORY_CAPACITY (PC_HISTORY_HOURS * 3600 / PC_HISTORY_INTERVAL)
/* Samples per persisted note. */
#define PC_HISTORY_CHUNK 8

/* One sample. Budget numbers are -1 when not known; counts are what
 * happened in the interval that ends at t. */
typedef struct {
    int64_t t;         /* unix seconds, a multiple of the interval */
    int64_t remaining; /* as last seen, -1 unknown */
    int64_t limit;     /* as last seen, -1 unknown */
    int64_t reserve;   /* configured */
    int64_t n429;      /* 429 answers from upstream */
    int64_t hits;      /* manifests and blobs answered from the cache */
    int64_t misses;    /* manifests and blobs fetched upstream */
    int64_t pulls;     /* manifest GETs sent upstream (what a pull budget counts) */
    int64_t bytes;     /* bytes received from upstream */
    int64_t avoided;   /* bytes served from the cache: what clients did not pull upstream */
} pc_history_sample;

typedef struct pc_history pc_history;

/* A ring for nups upstreams (their names copied), capacity samples each.
 * *out is the caller's (pc_history_free). 0, PC_EINVAL, PC_ENOMEM. */
int pc_history_new(pc_history **out, const char *const *names, int nups, int capacity);
void pc_history_free(pc_history *h);

/* Add sample s to upstream i's ring. A sample not later than the newest
 * one kept is dropped (restores and clock steps back cannot disorder the
 * ring). 0, PC_ENOTFOUND (no upstream i), PC_EEXISTS (dropped). */
int pc_history_add(pc_history *h, int i, const pc_history_sample *s);

/* Copy upstream i's samples with t > since, oldest first, into out (at
 * most max); returns how many (0 for no upstream i). */
int pc_history_get(pc_history *h, int i, int64_t since, pc_history_sample *out, int max);

/* The document of GET /_pullcache/history (docs/STATUS.md): every
 * upstream with its samples after since. New reference or NULL. */
json_t *pc_history_json(pc_history *h, int64_t since);

/* The note text of n samples (n <= PC_HISTORY_CHUNK) into buf (size
 * bytes). 0, or PC_ETOOBIG when it does not fit. */
int pc_history_chunk_encode(const pc_history_sample *s, int n, char *buf, size_t size);

/* Parse a note's text into out (PC_HISTORY_CHUNK samples): the count
 * read, or PC_EINVAL when it is not a history note. */
int pc_history_chunk_decode(const char *text, pc_history_sample *out);

#endif
