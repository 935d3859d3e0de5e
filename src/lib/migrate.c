/*
 * migrate.c - the migration's run (migrate.h) and its blob phase: list the
 * source's blobs and the destination's, copy what the destination lacks
 * through hashing writers on a few threads, and report progress and
 * problems from the calling thread.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "migrate_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COPY_BUF (1u << 20)
#define JOBS_MAX 64

void *pc_mig_vec_push(pc_mig_vec *a)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        void *v = realloc(a->v, cap * a->size);
        if (!v)
            return NULL;
        a->v = v;
        a->cap = cap;
    }
    void *e = (char *)a->v + a->n++ * a->size;
    memset(e, 0, a->size);
    return e;
}

void pc_mig_vec_free(pc_mig_vec *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

const char *pc_migrate_problem_name(pc_migrate_problem_kind k)
{
    switch (k) {
    case PC_MIGRATE_P_CORRUPT:
        return "corrupt";
    case PC_MIGRATE_P_READ:
        return "unreadable";
    case PC_MIGRATE_P_BLOB_MISSING:
        return "blob-missing";
    case PC_MIGRATE_P_BLOB_SIZE:
        return "blob-size";
    case PC_MIGRATE_P_MANIFEST:
        return "manifest";
    case PC_MIGRATE_P_LINK:
        return "link";
    case PC_MIGRATE_P_TAG:
        return "tag";
    case PC_MIGRATE_P_CONFLICT:
        return "conflict";
    }
    return "?";
}

bool pc_migrate_nothing_done(const pc_migrate_stats *st)
{
    return !st->blobs_copied && !st->links_added && !st->manifests_put && !st->tags_set &&
           !st->tag_times && !st->access_set && !st->limits_set;
}

void pc_mig_problem(pc_mig *m, pc_migrate_problem_kind kind, const char *repo, const char *tag,
                    const pc_digest *d, const char *detail)
{
    m->st->problems++;
    if (m->o->on_problem) {
        pc_migrate_problem p = {kind, repo, tag, d, detail ? detail : ""};
        m->o->on_problem(&p, m->o->ctx);
    }
}

void pc_mig_progress(pc_mig *m)
{
    if (m->o->on_progress)
        m->o->on_progress(&m->prog, m->o->ctx);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const pc_blob_entry *)a)->digest.str, ((const pc_blob_entry *)b)->digest.str);
}

static int collect_entry(const pc_blob_entry *e, void *ctx)
{
    pc_blob_entry *n = pc_mig_vec_push(ctx);
    if (!n) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    *n = *e;
    return 0;
}

int pc_mig_list_blobs(pc_blob_backend *be, pc_mig_vec *out)
{
    out->size = sizeof(pc_blob_entry);
    int rc = be->list(be, collect_entry, out);
    if (rc == 0 && out->n)
        qsort(out->v, out->n, sizeof(pc_blob_entry), cmp_entry);
    return rc;
}

const pc_blob_entry *pc_mig_find_blob(const pc_mig_vec *sorted, const pc_digest *d)
{
    pc_blob_entry key;
    key.digest = *d;
    return sorted->n ? bsearch(&key, sorted->v, sorted->n, sizeof(key), cmp_entry) : NULL;
}

/* ---- the blob phase ---- */

/* A problem a worker found, handed to the calling thread. */
typedef struct {
    pc_migrate_problem_kind kind;
    pc_digest digest;
    char detail[512];
} found_t;

typedef struct {
    pc_mig *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next;      /* the next blob to look at */
    unsigned running; /* workers still working */
    int fatal;        /* a destination failure: every worker stops */
    char fatal_msg[1024];
    pc_mig_vec found; /* found_t, not yet reported */
    uint64_t blobs_done, bytes_done;
} copier_t;

/* A problem with d: what, then more (may be ""). */
static void found(copier_t *c, pc_migrate_problem_kind kind, const pc_digest *d, const char *what,
                  const char *more)
{
    pthread_mutex_lock(&c->mu);
    found_t *f = pc_mig_vec_push(&c->found);
    if (f) {
        f->kind = kind;
        f->digest = *d;
        snprintf(f->detail, sizeof(f->detail), "%s%s", what, more);
    } else if (!c->fatal) {
        c->fatal = PC_ENOMEM;
        snprintf(c->fatal_msg, sizeof(c->fatal_msg), "out of memory");
    }
    pthread_mutex_unlock(&c->mu);
}

static void add_bytes(copier_t *c, uint64_t n)
{
    pthread_mutex_lock(&c->mu);
    c->bytes_done += n;
    pthread_mutex_unlock(&c->mu);
}

/* Copy blob b: 0 (copied, or a source problem recorded in b->failed), or
 * < 0 when the destination failed (message set). */
static int copy_one(copier_t *c, pc_mig_blob *b, char *buf)
{
    const pc_migrate_opts *o = c->m->o;
    const pc_digest *d = &b->e.digest;
    pc_blob_rd *rd = NULL;
    pc_blob_up *u = NULL;
    uint64_t off = 0;
    int rc = o->src_blobs->open(o->src_blobs, d, &rd);
    if (rc) {
        found(c, PC_MIGRATE_P_READ, d, "cannot open it at the source: ", pc_error_last());
        b->failed = true;
        return 0;
    }
    if ((rc = pc_blob_up_create(o->dst_blobs, NULL, d->alg, &u)))
        goto done;
    for (;;) {
        long n = rd->read(rd, off, buf, COPY_BUF);
        if (n < 0) {
            found(c, PC_MIGRATE_P_READ, d, "reading it at the source: ", pc_error_last());
            b->failed = true;
            pc_blob_up_cancel(u);
            u = NULL;
            rc = 0;
            goto done;
        }
        if (n == 0)
            break;
        if ((rc = pc_blob_up_write(u, buf, (size_t)n)))
            goto done;
        off += (uint64_t)n;
        add_bytes(c, (uint64_t)n);
    }
    pc_digest got;
    rc = pc_blob_up_finish(u, d, &got);
    u = NULL;
    if (rc == PC_EDIGEST) {
        char why[PC_DIGEST_MAX + 64];
        snprintf(why, sizeof(why), "%s (pullcache fsck)", got.str);
        found(c, PC_MIGRATE_P_CORRUPT, d, "its bytes at the source hash to ", why);
        b->failed = true;
        rc = 0;
    } else if (rc == 0) {
        pthread_mutex_lock(&c->mu);
        c->m->st->blobs_copied++;
        c->m->st->bytes_copied += off;
        pthread_mutex_unlock(&c->mu);
        if (off < b->e.size) /* the listing said more: the rest counts as looked at */
            add_bytes(c, b->e.size - off);
    }
done:
    if (u)
        pc_blob_up_cancel(u);
    rd->close(rd);
    return rc;
}

static void *copier_main(void *arg)
{
    copier_t *c = arg;
    pc_mig *m = c->m;
    char *buf = malloc(COPY_BUF);
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (!buf && !c->fatal) {
            c->fatal = PC_ENOMEM;
            snprintf(c->fatal_msg, sizeof(c->fatal_msg), "out of memory");
        }
        if (c->fatal || c->next >= m->blobs.n) {
            c->running--;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            break;
        }
        pc_mig_blob *b = PC_MIG_AT(&m->blobs, pc_mig_blob, c->next++);
        pthread_mutex_unlock(&c->mu);
        int rc = copy_one(c, b, buf);
        pthread_mutex_lock(&c->mu);
        c->blobs_done++;
        if (rc && !c->fatal) {
            c->fatal = rc;
            snprintf(c->fatal_msg, sizeof(c->fatal_msg), "writing %s to the destination: %s",
                     b->e.digest.str, pc_error_last());
        }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    free(buf);
    return NULL;
}

/* Report what the workers found so far and the progress (c->mu held). */
static void report(copier_t *c)
{
    pc_mig *m = c->m;
    for (size_t i = 0; i < c->found.n; i++) {
        found_t *f = PC_MIG_AT(&c->found, found_t, i);
        pc_mig_problem(m, f->kind, NULL, NULL, &f->digest, f->detail);
    }
    c->found.n = 0;
    m->prog.blobs_done = c->blobs_done;
    m->prog.bytes_done = c->bytes_done;
    pc_mig_progress(m);
}

/* Count what the destination has with the same size (done, not copied)
 * and move the blobs to copy to the front of m->blobs (with dry_run:
 * count them as copied). The number to copy, or < 0. */
static long plan_blobs(pc_mig *m, copier_t *c)
{
    pc_mig_vec dst = {0};
    int rc = pc_mig_list_blobs(m->o->dst_blobs, &dst);
    if (rc) {
        pc_error_set("listing the destination's blobs: %s", pc_error_last());
        pc_mig_vec_free(&dst);
        return rc;
    }
    size_t w = 0;
    for (size_t i = 0; i < m->blobs.n; i++) {
        pc_mig_blob *b = PC_MIG_AT(&m->blobs, pc_mig_blob, i);
        const pc_blob_entry *have = pc_mig_find_blob(&dst, &b->e.digest);
        if (have && have->size == b->e.size) {
            m->st->blobs_present++;
            c->blobs_done++;
            c->bytes_done += b->e.size;
            continue;
        }
        if (m->o->dry_run) {
            m->st->blobs_copied++;
            m->st->bytes_copied += b->e.size;
        }
        pc_mig_blob t = *b;
        *b = *PC_MIG_AT(&m->blobs, pc_mig_blob, w);
        *PC_MIG_AT(&m->blobs, pc_mig_blob, w) = t;
        w++;
    }
    pc_mig_vec_free(&dst);
    c->found.size = sizeof(found_t);
    m->prog.phase = PC_MIGRATE_BLOBS;
    m->prog.blobs_done = c->blobs_done;
    m->prog.bytes_done = c->bytes_done;
    return (long)w;
}

static int copy_blobs(pc_mig *m)
{
    copier_t c;
    memset(&c, 0, sizeof(c));
    c.m = m;
    long ncopy = plan_blobs(m, &c);
    if (ncopy < 0)
        return (int)ncopy;
    pc_mig_progress(m);
    if (m->o->dry_run || ncopy == 0)
        return 0;
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    /* the workers take blobs [0, ncopy) */
    size_t all = m->blobs.n;
    m->blobs.n = (size_t)ncopy;
    unsigned jobs = m->o->jobs ? m->o->jobs : 1;
    if (jobs > JOBS_MAX)
        jobs = JOBS_MAX;
    if (jobs > (unsigned)ncopy)
        jobs = (unsigned)ncopy;
    pthread_t th[JOBS_MAX];
    unsigned started = 0;
    pthread_mutex_lock(&c.mu);
    for (; started < jobs; started++) {
        c.running++;
        if (pthread_create(&th[started], NULL, copier_main, &c) != 0) {
            c.running--;
            break;
        }
    }
    if (!started) {
        c.fatal = PC_ERR;
        snprintf(c.fatal_msg, sizeof(c.fatal_msg), "cannot start a thread");
    }
    while (c.running) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c.cv, &c.mu, &ts);
        report(&c);
    }
    report(&c);
    pthread_mutex_unlock(&c.mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    m->blobs.n = all;
    int rc = c.fatal;
    if (rc)
        pc_error_set("%s", c.fatal_msg);
    pc_mig_vec_free(&c.found);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    return rc;
}

static int read_blobs(pc_mig *m)
{
    pc_mig_vec l = {0};
    int rc = pc_mig_list_blobs(m->o->src_blobs, &l);
    if (rc) {
        pc_error_set("listing the source's blobs: %s", pc_error_last());
        pc_mig_vec_free(&l);
        return rc;
    }
    m->blobs.size = sizeof(pc_mig_blob);
    for (size_t i = 0; i < l.n; i++) {
        pc_mig_blob *b = pc_mig_vec_push(&m->blobs);
        if (!b) {
            pc_mig_vec_free(&l);
            pc_error_set("out of memory");
            return PC_ENOMEM;
        }
        b->e = *PC_MIG_AT(&l, pc_blob_entry, i);
        m->st->blobs++;
        m->st->bytes += b->e.size;
    }
    pc_mig_vec_free(&l);
    m->prog.blobs = m->st->blobs;
    m->prog.bytes = m->st->bytes;
    return 0;
}

static int count_upload(const char *id, const char *repo, int64_t created, void *ctx)
{
    (void)id;
    (void)repo;
    (void)created;
    ((pc_migrate_stats *)ctx)->uploads_skipped++;
    return 0;
}

int pc_migrate_run(const pc_migrate_opts *o, pc_migrate_stats *st)
{
    pc_mig m;
    memset(&m, 0, sizeof(m));
    memset(st, 0, sizeof(*st));
    m.o = o;
    m.st = st;
    int rc;
    if ((rc = read_blobs(&m)))
        goto done;
    if ((rc = pc_mig_meta_read(&m)))
        goto done;
    if ((rc = o->src_meta->reg->upload_foreach(o->src_meta, count_upload, st))) {
        pc_error_set("listing the source's upload sessions: %s", pc_error_last());
        goto done;
    }
    if ((rc = copy_blobs(&m)))
        goto done;
    m.prog.phase = PC_MIGRATE_META;
    pc_mig_progress(&m);
    if ((rc = pc_mig_meta_copy(&m)))
        goto done;
    if (!o->dry_run) {
        m.prog.phase = PC_MIGRATE_VERIFY;
        pc_mig_progress(&m);
        if ((rc = pc_mig_verify(&m)))
            goto done;
        st->verified = true;
    }
    rc = st->problems ? PC_EDIGEST : 0;
done:
    pc_mig_vec_free(&m.blobs);
    pc_mig_vec_free(&m.links);
    pc_mig_vec_free(&m.manifests);
    pc_mig_vec_free(&m.refs);
    pc_mig_vec_free(&m.tags);
    return rc;
}
