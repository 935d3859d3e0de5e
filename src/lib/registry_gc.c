/*
 * registry_gc.c - the blob store's mark-and-sweep garbage collection
 * (pc_gc_sweep, registry.h): mark every digest the meta store references,
 * then remove the unmarked published blobs past the grace period, asking
 * the meta store once more under the exclusive publish lock (on a blob
 * store without one, S3, under the blob's "gc:<digest>" lease in the meta
 * store, which publishers wait out: pc_registry_publish_settle).
 *
 * A blob removed while a client still reads it is safe on the filesystem
 * backend: the reader holds an open descriptor, and an unlinked file stays
 * readable through it until closed.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- mark and sweep ---- */

/* Unreferenced blobs removed per hold of the publish lock. */
#define GC_BATCH 256

typedef struct {
    pc_digest *v;
    size_t n, cap;
} digest_set;

static int set_add(const pc_digest *d, void *ctx)
{
    digest_set *s = ctx;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        pc_digest *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return PC_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *d;
    return 0;
}

static int digest_cmp(const void *a, const void *b)
{
    return strcmp(((const pc_digest *)a)->str, ((const pc_digest *)b)->str);
}

typedef struct {
    digest_set *marked;
    pc_blob_entry *v; /* published, unreferenced, with size and age */
    size_t n, cap;
    pc_gc_stats *st;
} sweep_ctx;

static int sweep_visit(const pc_blob_entry *e, void *ctx)
{
    sweep_ctx *s = ctx;
    s->st->blobs++;
    if (s->marked->n &&
        bsearch(&e->digest, s->marked->v, s->marked->n, sizeof(e->digest), digest_cmp))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        pc_blob_entry *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return PC_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *e;
    return 0;
}

/* Tests only (tests/e2e/test_fleet_gc.sh): PC_TEST_GC_REMOVE_DELAY_MS widens
 * the window between gc's last look at a blob's holders and its removal,
 * where a publisher's link could slip in, and says so on stderr. */
static void test_remove_delay(const pc_digest *d)
{
    const char *e = getenv("PC_TEST_GC_REMOVE_DELAY_MS");
    long ms = e ? strtol(e, NULL, 10) : 0;
    if (ms > 0 && ms <= 10000) {
        fprintf(stderr, "test: gc holds the removal of %s for %ld ms\n", d->str, ms);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int pc_gc_sweep(pc_registry *reg, long grace_s, bool dry, pc_gc_stats *st)
{
    pc_metastore *ms = reg->ms;
    pc_blob_backend *be = reg->be;
    digest_set marked = {NULL, 0, 0};
    sweep_ctx sc = {&marked, NULL, 0, 0, st};
    pc_blob_hold lk;
    bool locked = false;
    int rc;

    memset(st, 0, sizeof(*st));
    if ((rc = ms->reg->referenced_foreach(ms, set_add, &marked)))
        goto done;
    if (marked.n)
        qsort(marked.v, marked.n, sizeof(*marked.v), digest_cmp);
    /* Collect first, remove after: no unlinking under a running readdir. */
    if ((rc = be->list(be, sweep_visit, &sc)))
        goto done;
    /* Remove under the exclusive publish lock, in batches: a publisher
     * holds it shared from renaming its file until its link is recorded,
     * so the holders looked at below are final (no blob that got a 201
     * goes), and pushes wait at most one batch. */
    for (size_t i = 0; i < sc.n; i++) {
        if (!dry && i % GC_BATCH == 0) {
            if (locked)
                pc_blob_publish_unlock(be, &lk);
            locked = false;
            if ((rc = pc_blob_publish_lock(be, true, &lk)))
                goto done;
            locked = true;
        }
        const pc_digest *d = &sc.v[i].digest;
        long age = sc.v[i].age_s;
        uint64_t size = sc.v[i].size, holders = 0;
        if (age < grace_s) {
            st->young++;
            continue;
        }
        /* Without a publish lock: the lease publishers look at once they
         * have linked d (pc_registry_publish_settle), held from the last
         * look at its holders until it is gone. Another gc's: its turn. */
        char key[PC_LEASE_KEY_MAX];
        bool leased = false;
        if (!dry && !be->publish_lock) {
            pc_registry_gc_key(d, key, sizeof(key));
            int lr = ms->coord->lease_take(ms, key, reg->node, PC_GC_HOLD_MS, NULL);
            if (lr == PC_EEXISTS)
                continue;
            if (lr) {
                rc = lr;
                goto done;
            }
            leased = true;
        }
        /* Marked a while ago: ask again right before removing, so content
         * linked since (a mirror request reusing a stored blob) stays. */
        int erc = ms->reg->digest_holders(ms, d, &holders);
        if (erc == 0 && !holders && !dry) {
            test_remove_delay(d);
            erc = be->remove(be, d);
            if (erc == 0) /* its access record, if the mirror ever served it */
                ms->cache->access_evict(ms, d, NULL, NULL);
        }
        if (leased)
            ms->coord->lease_release(ms, key, reg->node);
        if (erc == PC_ENOTFOUND || (erc == 0 && holders))
            continue;
        if (erc) {
            rc = erc;
            goto done;
        }
        st->removed++;
        st->removed_bytes += size;
    }
done:
    if (locked)
        pc_blob_publish_unlock(be, &lk);
    free(marked.v);
    free(sc.v);
    return rc;
}
