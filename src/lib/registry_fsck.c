/*
 * registry_fsck.c - the data directory check and repair of fsck.h: opening
 * a data directory as it is, the snapshot of both stores, hashing, the
 * problem records and the run (checks: registry_fsck_check.c, repairs:
 * registry_fsck_repair.c).
 *
 * One run: take the meta store's rows (links, manifests, references,
 * upload sessions), then the blob store's files (hashing every blob), then
 * derive the problems from both as one model in which what the repair
 * removes is already gone: a corrupt layer makes its link dangling and the
 * local manifests that need it incomplete, an index whose child manifest is
 * incomplete is incomplete too, and blobs only those held become orphans.
 * So the report lists everything one repair does, and after it a second
 * run finds nothing. Each problem is confirmed against the live stores
 * before it is reported (a daemon may have changed them since the
 * snapshot), and again, inside a meta store transaction where it matters,
 * right before it is repaired.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "registry_fsck_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HASH_CHUNK (1u << 20)

int pc_fsck_open(const char *dir, pc_registry **out)
{
    char path[4096];
    struct stat st;
    pc_blob_backend *be = NULL;
    pc_metastore *ms = NULL;
    *out = NULL;
    if (!dir || !*dir) {
        pc_error_set("no data directory given");
        return PC_EINVAL;
    }
    if (stat(dir, &st) != 0) {
        pc_error_set("%s: %s", dir, strerror(errno));
        return errno == ENOENT || errno == ENOTDIR ? PC_ENOTFOUND : PC_ERR;
    }
    if (!S_ISDIR(st.st_mode)) {
        pc_error_set("%s is no directory", dir);
        return PC_ENOTFOUND;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/meta.db", dir) >= sizeof(path)) {
        pc_error_set("data directory path too long");
        return PC_EINVAL;
    }
    /* The SQLite store would create a missing database: look first. */
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        pc_error_set("%s is no pullcache data directory: it has no meta.db", dir);
        return PC_ENOTFOUND;
    }
    int rc = pc_blob_fs_open_existing(&be, dir);
    if (rc)
        return rc;
    if ((rc = pc_meta_sqlite_open(&ms, path)) == 0 && (rc = pc_registry_new(out, be, ms)))
        ms->free(ms);
    if (rc)
        be->free(be);
    return rc;
}

void *pc_fsck_vec_push(vec *a)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        void *v = realloc(a->v, cap * a->size);
        if (!v) {
            pc_error_set("out of memory");
            return NULL;
        }
        a->v = v;
        a->cap = cap;
    }
    void *e = (char *)a->v + a->n++ * a->size;
    memset(e, 0, a->size);
    return e;
}

int pc_fsck_cmp_digest(const void *a, const void *b)
{
    return strcmp(((const pc_digest *)a)->str, ((const pc_digest *)b)->str);
}

static int cmp_file(const void *a, const void *b)
{
    return pc_fsck_cmp_digest(&((const file_t *)a)->d, &((const file_t *)b)->d);
}

int pc_fsck_cmp_link(const void *a, const void *b)
{
    const link_t *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    return c ? c : pc_fsck_cmp_digest(&x->d, &y->d);
}

static int cmp_manifest(const void *a, const void *b)
{
    const manifest_t *x = a, *y = b;
    int c = strcmp(x->rec.repo, y->rec.repo);
    return c ? c : pc_fsck_cmp_digest(&x->rec.digest, &y->rec.digest);
}

static int cmp_ref(const void *a, const void *b)
{
    const ref_t *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    if (!c)
        c = pc_fsck_cmp_digest(&x->manifest, &y->manifest);
    return c ? c : pc_fsck_cmp_digest(&x->ref.digest, &y->ref.digest);
}

int pc_fsck_cmp_session(const void *a, const void *b)
{
    return strcmp(((const session_t *)a)->id, ((const session_t *)b)->id);
}

int pc_fsck_cmp_staged(const void *a, const void *b)
{
    return strcmp(((const staged_t *)a)->name, ((const staged_t *)b)->name);
}

void pc_fsck_vec_sort(vec *a, int (*cmp)(const void *, const void *))
{
    if (a->n > 1)
        qsort(a->v, a->n, a->size, cmp);
}

void *pc_fsck_vec_find(const vec *a, const void *key, int (*cmp)(const void *, const void *))
{
    return a->n ? bsearch(key, a->v, a->n, a->size, cmp) : NULL;
}

file_t *pc_fsck_file_find(fsck_t *f, const pc_digest *d)
{
    file_t key;
    key.d = *d;
    return pc_fsck_vec_find(&f->files, &key, cmp_file);
}

link_t *pc_fsck_link_find(fsck_t *f, const char *repo, const pc_digest *d)
{
    link_t key;
    snprintf(key.repo, sizeof(key.repo), "%s", repo);
    key.d = *d;
    return pc_fsck_vec_find(&f->links, &key, pc_fsck_cmp_link);
}

manifest_t *pc_fsck_manifest_find(fsck_t *f, const char *repo, const pc_digest *d)
{
    manifest_t key;
    snprintf(key.rec.repo, sizeof(key.rec.repo), "%s", repo);
    key.rec.digest = *d;
    return pc_fsck_vec_find(&f->manifests, &key, cmp_manifest);
}

bool pc_fsck_present(const file_t *file)
{
    return file && !file->gone && !file->corrupt;
}

static int collect_link(const char *repo, const pc_digest *d, uint64_t size, void *ctx)
{
    fsck_t *f = ctx;
    link_t *l = pc_fsck_vec_push(&f->links);
    if (!l)
        return PC_ENOMEM;
    snprintf(l->repo, sizeof(l->repo), "%s", repo);
    l->d = *d;
    l->size = size;
    return 0;
}

static int collect_manifest(const pc_manifest_rec *rec, void *ctx)
{
    fsck_t *f = ctx;
    manifest_t *m = pc_fsck_vec_push(&f->manifests);
    if (!m)
        return PC_ENOMEM;
    m->rec = *rec;
    m->mirrored = pc_fsck_mirrored(rec->repo, f->o->upstreams, f->o->nups);
    return 0;
}

static int collect_ref(const char *repo, const pc_digest *manifest, const pc_manifest_ref *ref,
                       void *ctx)
{
    fsck_t *f = ctx;
    ref_t *r = pc_fsck_vec_push(&f->refs);
    if (!r)
        return PC_ENOMEM;
    snprintf(r->repo, sizeof(r->repo), "%s", repo);
    r->manifest = *manifest;
    r->ref = *ref;
    return 0;
}

static int collect_session(const char *id, const char *repo, int64_t created, void *ctx)
{
    fsck_t *f = ctx;
    session_t *s = pc_fsck_vec_push(&f->sessions);
    if (!s)
        return PC_ENOMEM;
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->repo, sizeof(s->repo), "%s", repo);
    s->created = created;
    return 0;
}

static int collect_file(const pc_blob_entry *e, void *ctx)
{
    fsck_t *f = ctx;
    file_t *file = pc_fsck_vec_push(&f->files);
    if (!file)
        return PC_ENOMEM;
    file->d = e->digest;
    file->size = e->size;
    file->age_s = e->age_s;
    return 0;
}

static int collect_staged(vec *into, const char *name, uint64_t size, long age_s)
{
    staged_t *s = pc_fsck_vec_push(into);
    if (!s)
        return PC_ENOMEM;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->size = size;
    s->age_s = age_s;
    return 0;
}

static int collect_upload(const char *id, uint64_t size, long age_s, void *ctx)
{
    return collect_staged(&((fsck_t *)ctx)->staged, id, size, age_s);
}

static int collect_temp(const char *name, uint64_t size, long age_s, void *ctx)
{
    return collect_staged(&((fsck_t *)ctx)->temps, name, size, age_s);
}

/* Give every manifest the range of its references (refs sorted). */
static void attach_refs(fsck_t *f)
{
    ref_t *refs = f->refs.v;
    size_t i = 0;
    for (size_t k = 0; k < f->manifests.n; k++) {
        manifest_t *m = (manifest_t *)f->manifests.v + k;
        ref_t key;
        snprintf(key.repo, sizeof(key.repo), "%s", m->rec.repo);
        key.manifest = m->rec.digest;
        /* both sorted by (repo, manifest): walk refs along */
        while (i < f->refs.n) {
            ref_t *r = &refs[i];
            int c = strcmp(r->repo, key.repo);
            if (!c)
                c = pc_fsck_cmp_digest(&r->manifest, &key.manifest);
            if (c >= 0)
                break;
            i++;
        }
        m->ref0 = i;
        while (i < f->refs.n && strcmp(refs[i].repo, key.repo) == 0 &&
               pc_fsck_cmp_digest(&refs[i].manifest, &key.manifest) == 0)
            i++;
        m->nrefs = i - m->ref0;
    }
}

static int snapshot(fsck_t *f)
{
    pc_metastore *ms = f->ms;
    pc_blob_backend *be = f->be;
    int rc;
    /* The meta store first, then the files (gc's order): a blob published
     * after the rows were read is young or confirmed below. */
    if ((rc = ms->reg->upload_foreach(ms, collect_session, f)) ||
        (rc = ms->reg->blob_link_foreach(ms, collect_link, f)) ||
        (rc = ms->reg->manifest_foreach(ms, collect_manifest, f)) ||
        (rc = ms->reg->manifest_ref_foreach(ms, collect_ref, f)) ||
        (rc = be->upload_list(be, collect_upload, f)) || (rc = be->tmp_list(be, collect_temp, f)) ||
        (rc = be->list(be, collect_file, f)))
        return rc;
    pc_fsck_vec_sort(&f->sessions, pc_fsck_cmp_session);
    pc_fsck_vec_sort(&f->links, pc_fsck_cmp_link);
    pc_fsck_vec_sort(&f->manifests, cmp_manifest);
    pc_fsck_vec_sort(&f->refs, cmp_ref);
    pc_fsck_vec_sort(&f->staged, pc_fsck_cmp_staged);
    pc_fsck_vec_sort(&f->temps, pc_fsck_cmp_staged);
    pc_fsck_vec_sort(&f->files, cmp_file);
    attach_refs(f);
    f->r->links = f->links.n;
    f->r->manifests = f->manifests.n;
    f->r->sessions = f->sessions.n;
    f->r->uploads = f->staged.n;
    f->r->temp_files = f->temps.n;
    return 0;
}

/* ---- hashing ---- */

/* Hash published blob d. 0 with *match and *size set, PC_ENOTFOUND when it
 * is gone, or < 0 when it cannot be read (a permission problem must not
 * look like corruption: the run stops). got receives the digest found. */
int pc_fsck_verify_blob(pc_blob_backend *be, const pc_digest *d, bool *match, uint64_t *size,
                        pc_digest *got)
{
    pc_blob_rd *rd = NULL;
    pc_hasher *h = NULL;
    char *buf = NULL;
    uint64_t off = 0;
    int rc = be->open(be, d, &rd);
    if (rc)
        goto done;
    if ((rc = pc_hasher_new(&h, d->alg)))
        goto done;
    if (!(buf = malloc(HASH_CHUNK))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    for (;;) {
        long n = rd->read(rd, off, buf, HASH_CHUNK);
        if (n < 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s", pc_error_last());
            pc_error_set("read blob %s: %s", d->str, why);
            rc = (int)n;
            goto done;
        }
        if (n == 0)
            break;
        if ((rc = pc_hasher_update(h, buf, (size_t)n)))
            goto done;
        off += (uint64_t)n;
    }
    if ((rc = pc_hasher_final(h, got)))
        goto done;
    *match = pc_digest_equal(got, d);
    *size = off;
done:
    pc_hasher_free(h);
    free(buf);
    if (rd)
        rd->close(rd);
    return rc;
}

/* ---- problems ---- */

pc_fsck_problem *pc_fsck_add_problem(fsck_t *f, pc_fsck_kind kind)
{
    pc_fsck_report *r = f->r;
    if (r->nproblems % 64 == 0) {
        pc_fsck_problem *v = realloc(r->problems, (r->nproblems + 64) * sizeof(*v));
        if (!v) {
            pc_error_set("out of memory");
            return NULL;
        }
        r->problems = v;
    }
    pc_fsck_problem *p = &r->problems[r->nproblems++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->status = PC_FSCK_FOUND;
    r->counts[kind]++;
    return p;
}

void pc_fsck_locate(fsck_t *f, pc_fsck_problem *p, pc_blob_kind area, const char *name)
{
    if (!f->be->locate || f->be->locate(f->be, area, name, p->path, sizeof(p->path)) != 0)
        p->path[0] = '\0';
}

/* Append to p->detail. */
void pc_fsck_detail(pc_fsck_problem *p, const char *fmt, ...)
{
    size_t len = strlen(p->detail);
    if (len + 1 >= sizeof(p->detail))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail + len, sizeof(p->detail) - len, fmt, ap);
    va_end(ap);
}

typedef struct {
    pc_fsck_problem *p;
    const pc_digest *d;
    pc_metastore *ms;
    const char *repo;
    unsigned n;
} tags_ctx;

static int tag_of(const char *tag, void *ctx)
{
    tags_ctx *t = ctx;
    pc_digest d;
    if (t->ms->reg->tag_get(t->ms, t->repo, tag, &d) == 0 && pc_digest_equal(&d, t->d)) {
        pc_fsck_detail(t->p, "%s%s", t->n ? ", " : "; tags: ", tag);
        t->n++;
    }
    return 0;
}

/* Name the tags of manifest d in the problem's detail (they go with it). */
void pc_fsck_note_tags(fsck_t *f, pc_fsck_problem *p, const char *repo, const pc_digest *d)
{
    tags_ctx t = {p, d, f->ms, repo, 0};
    f->ms->reg->tag_list(f->ms, repo, NULL, -1, tag_of, &t);
}

int pc_fsck_run(pc_registry *reg, const pc_fsck_opts *o, pc_fsck_report *out)
{
    fsck_t f;
    memset(out, 0, sizeof(*out));
    memset(&f, 0, sizeof(f));
    pc_blob_backend *be = f.be = reg->be;
    f.ms = reg->ms;
    f.node = reg->node;
    f.o = o;
    f.r = out;
    f.files.size = sizeof(file_t);
    f.links.size = sizeof(link_t);
    f.manifests.size = sizeof(manifest_t);
    f.refs.size = sizeof(ref_t);
    f.sessions.size = sizeof(session_t);
    f.staged.size = sizeof(staged_t);
    f.temps.size = sizeof(staged_t);
    f.referenced.size = sizeof(pc_digest);
    f.snapshot.size = sizeof(pc_digest);
    f.unlinked.size = sizeof(link_t);
    int rc;
    if (!be->tmp_list || !be->tmp_remove) {
        pc_error_set("these stores cannot be checked (the blob backend has no temp listing)");
        return PC_ENOTSUP;
    }
    if ((rc = snapshot(&f)) || (rc = pc_fsck_check_files(&f)) || (rc = pc_fsck_check_links(&f)) ||
        (rc = pc_fsck_check_manifest_bytes(&f)) || (rc = pc_fsck_check_complete(&f)) ||
        (rc = pc_fsck_check_unlinked(&f)) || (rc = pc_fsck_check_orphans(&f)) ||
        (rc = pc_fsck_check_uploads(&f)) || (rc = pc_fsck_check_temps(&f)))
        goto done;
    if (o->repair && out->nproblems) {
        if (o->before_repair)
            o->before_repair(o->hook_ctx);
        rc = pc_fsck_repair(&f);
    }
done:
    free(f.files.v);
    free(f.links.v);
    free(f.manifests.v);
    free(f.refs.v);
    free(f.sessions.v);
    free(f.staged.v);
    free(f.temps.v);
    free(f.referenced.v);
    free(f.snapshot.v);
    free(f.unlinked.v);
    return rc;
}
