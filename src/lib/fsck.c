/*
 * fsck.c - the data directory check and repair of fsck.h.
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
#include "fsck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ref.h"

#define HASH_CHUNK (1u << 20)

static const struct {
    const char *name, *about, *action, *done;
} kinds[PC_FSCK_KIND_COUNT] = {
    [PC_FSCK_CORRUPT_BLOB] = {"corrupt_blob", "blob file whose bytes do not match its digest",
                              "remove the blob file (a pull re-fetches or a push re-uploads it)",
                              "removed the blob file"},
    [PC_FSCK_DANGLING_LINK] = {"dangling_link", "blob link whose blob file is missing or corrupt",
                               "remove the link", "removed the link"},
    [PC_FSCK_MANIFEST_MISSING] = {"manifest_blob_missing",
                                  "manifest whose bytes are missing or corrupt",
                                  "remove the manifest with its tags",
                                  "removed the manifest with its tags"},
    [PC_FSCK_INCOMPLETE_MANIFEST] = {"incomplete_manifest",
                                     "local manifest missing a blob or child manifest",
                                     "remove the manifest with its tags (push it again)",
                                     "removed the manifest with its tags"},
    [PC_FSCK_UNLINKED_BLOB] = {"unlinked_blob",
                               "blob a local manifest needs, stored but not linked to its "
                               "repository",
                               "link the blob to the repository",
                               "linked the blob to the repository"},
    [PC_FSCK_SIZE_MISMATCH] = {"size_mismatch", "meta store records another size than the blob has",
                               "record the blob's true size", "recorded the blob's true size"},
    [PC_FSCK_ORPHAN_BLOB] = {"orphan_blob", "blob file nothing references, older than the grace",
                             "remove the blob file", "removed the blob file"},
    [PC_FSCK_ORPHAN_UPLOAD] = {"orphan_upload",
                               "staging file without an upload session, idle past the grace",
                               "remove the staging file", "removed the staging file"},
    [PC_FSCK_STALE_UPLOAD] = {"stale_upload", "upload session idle for longer than the upload ttl",
                              "remove the staging file and the session",
                              "removed the staging file and the session"},
    [PC_FSCK_UPLOAD_WITHOUT_FILE] = {"upload_without_file",
                                     "upload session whose staging file is gone",
                                     "remove the session", "removed the session"},
    [PC_FSCK_STALE_TEMP] = {"stale_temp", "temp file left by a crash, older than the grace",
                            "remove the temp file", "removed the temp file"},
};

const char *pc_fsck_kind_name(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].name : "unknown";
}

const char *pc_fsck_kind_about(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].about : "unknown";
}

const char *pc_fsck_action(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].action : "none";
}

const char *pc_fsck_done(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].done : "nothing";
}

const char *pc_fsck_status_name(pc_fsck_status s)
{
    switch (s) {
    case PC_FSCK_FOUND:
        return "found";
    case PC_FSCK_REPAIRED:
        return "repaired";
    case PC_FSCK_SKIPPED:
        return "skipped";
    case PC_FSCK_FAILED:
        return "failed";
    }
    return "unknown";
}

bool pc_fsck_mirrored(const char *repo, const char *const *upstreams, size_t nups)
{
    const char *slash = strchr(repo, '/');
    if (!slash)
        return false;
    size_t n = (size_t)(slash - repo);
    if (pc_ref_host_like(repo, n))
        return true;
    for (size_t i = 0; i < nups; i++)
        if (strlen(upstreams[i]) == n && memcmp(upstreams[i], repo, n) == 0)
            return true;
    return false;
}

int pc_fsck_open(const char *dir, pc_blobstore **bs, pc_metastore **ms)
{
    char path[4096];
    struct stat st;
    *bs = NULL;
    *ms = NULL;
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
    int rc = pc_blobstore_fs_open_existing(bs, dir);
    if (rc)
        return rc;
    if ((rc = pc_metastore_sqlite_open(ms, path))) {
        (*bs)->free(*bs);
        *bs = NULL;
    }
    return rc;
}

/* ---- the snapshot ---- */

typedef struct {
    pc_digest d;
    uint64_t size;
    bool corrupt;
    bool gone; /* removed while fsck ran */
    bool size_reported;
} file_t;

typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest d;
    uint64_t size;
    bool dangling;
} link_t;

typedef struct {
    pc_manifest_rec rec;
    bool mirrored;
    int broken;         /* 0: fine; 1: bytes missing; n > 1: incomplete, found in round n */
    size_t ref0, nrefs; /* its references: refs[ref0 .. ref0 + nrefs) */
} manifest_t;

typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest manifest;
    pc_manifest_ref ref;
} ref_t;

typedef struct {
    char id[72];
    char repo[PC_NAME_MAX + 1];
    int64_t created;
} session_t;

typedef struct {
    char name[256];
    uint64_t size;
    long age_s;
} staged_t; /* a staging file or a temp file */

/* A growable array of elements of size `size`. */
typedef struct {
    void *v;
    size_t n, cap, size;
} vec;

static void *vec_push(vec *a)
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

typedef struct {
    pc_blobstore *bs;
    pc_metastore *ms;
    const pc_fsck_opts *o;
    pc_fsck_report *r;
    vec files, links, manifests, refs, sessions, staged, temps;
    vec referenced; /* pc_digest: what keeps a blob after the repair */
    vec snapshot;   /* pc_digest: what held a blob in the snapshot */
    vec unlinked;   /* link_t: (repo, blob) a kept local manifest needs linked */
} fsck_t;

static int cmp_digest(const void *a, const void *b)
{
    return strcmp(((const pc_digest *)a)->str, ((const pc_digest *)b)->str);
}

static int cmp_file(const void *a, const void *b)
{
    return cmp_digest(&((const file_t *)a)->d, &((const file_t *)b)->d);
}

static int cmp_link(const void *a, const void *b)
{
    const link_t *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    return c ? c : cmp_digest(&x->d, &y->d);
}

static int cmp_manifest(const void *a, const void *b)
{
    const manifest_t *x = a, *y = b;
    int c = strcmp(x->rec.repo, y->rec.repo);
    return c ? c : cmp_digest(&x->rec.digest, &y->rec.digest);
}

static int cmp_ref(const void *a, const void *b)
{
    const ref_t *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    if (!c)
        c = cmp_digest(&x->manifest, &y->manifest);
    return c ? c : cmp_digest(&x->ref.digest, &y->ref.digest);
}

static int cmp_session(const void *a, const void *b)
{
    return strcmp(((const session_t *)a)->id, ((const session_t *)b)->id);
}

static int cmp_staged(const void *a, const void *b)
{
    return strcmp(((const staged_t *)a)->name, ((const staged_t *)b)->name);
}

static void vec_sort(vec *a, int (*cmp)(const void *, const void *))
{
    if (a->n > 1)
        qsort(a->v, a->n, a->size, cmp);
}

static void *vec_find(const vec *a, const void *key, int (*cmp)(const void *, const void *))
{
    return a->n ? bsearch(key, a->v, a->n, a->size, cmp) : NULL;
}

static file_t *file_find(fsck_t *f, const pc_digest *d)
{
    file_t key;
    key.d = *d;
    return vec_find(&f->files, &key, cmp_file);
}

static link_t *link_find(fsck_t *f, const char *repo, const pc_digest *d)
{
    link_t key;
    snprintf(key.repo, sizeof(key.repo), "%s", repo);
    key.d = *d;
    return vec_find(&f->links, &key, cmp_link);
}

static manifest_t *manifest_find(fsck_t *f, const char *repo, const pc_digest *d)
{
    manifest_t key;
    snprintf(key.rec.repo, sizeof(key.rec.repo), "%s", repo);
    key.rec.digest = *d;
    return vec_find(&f->manifests, &key, cmp_manifest);
}

static bool present(const file_t *file)
{
    return file && !file->gone && !file->corrupt;
}

static int collect_link(const char *repo, const pc_digest *d, uint64_t size, void *ctx)
{
    fsck_t *f = ctx;
    link_t *l = vec_push(&f->links);
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
    manifest_t *m = vec_push(&f->manifests);
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
    ref_t *r = vec_push(&f->refs);
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
    session_t *s = vec_push(&f->sessions);
    if (!s)
        return PC_ENOMEM;
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->repo, sizeof(s->repo), "%s", repo);
    s->created = created;
    return 0;
}

static int collect_file(const pc_digest *d, uint64_t size, void *ctx)
{
    fsck_t *f = ctx;
    file_t *file = vec_push(&f->files);
    if (!file)
        return PC_ENOMEM;
    file->d = *d;
    file->size = size;
    return 0;
}

static int collect_staged(vec *into, const char *name, uint64_t size, long age_s)
{
    staged_t *s = vec_push(into);
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
                c = cmp_digest(&r->manifest, &key.manifest);
            if (c >= 0)
                break;
            i++;
        }
        m->ref0 = i;
        while (i < f->refs.n && strcmp(refs[i].repo, key.repo) == 0 &&
               cmp_digest(&refs[i].manifest, &key.manifest) == 0)
            i++;
        m->nrefs = i - m->ref0;
    }
}

static int snapshot(fsck_t *f)
{
    pc_metastore *ms = f->ms;
    pc_blobstore *bs = f->bs;
    int rc;
    /* The meta store first, then the files (gc's order): a blob published
     * after the rows were read is young or confirmed below. */
    if ((rc = ms->upload_foreach(ms, collect_session, f)) ||
        (rc = ms->blob_link_foreach(ms, collect_link, f)) ||
        (rc = ms->manifest_foreach(ms, collect_manifest, f)) ||
        (rc = ms->manifest_ref_foreach(ms, collect_ref, f)) ||
        (rc = bs->upload_foreach(bs, collect_upload, f)) ||
        (rc = bs->tmp_foreach(bs, collect_temp, f)) || (rc = bs->foreach (bs, collect_file, f)))
        return rc;
    vec_sort(&f->sessions, cmp_session);
    vec_sort(&f->links, cmp_link);
    vec_sort(&f->manifests, cmp_manifest);
    vec_sort(&f->refs, cmp_ref);
    vec_sort(&f->staged, cmp_staged);
    vec_sort(&f->temps, cmp_staged);
    vec_sort(&f->files, cmp_file);
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
static int verify_blob(pc_blobstore *bs, const pc_digest *d, bool *match, uint64_t *size,
                       pc_digest *got)
{
    pc_blob_reader *rd = NULL;
    pc_hasher *h = NULL;
    char *buf = NULL;
    uint64_t off = 0;
    int rc = bs->open(bs, d, &rd);
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

static pc_fsck_problem *add_problem(fsck_t *f, pc_fsck_kind kind)
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

static void locate(fsck_t *f, pc_fsck_problem *p, pc_blob_area area, const char *name)
{
    if (f->bs->locate && f->bs->locate(f->bs, area, name, p->path, sizeof(p->path)) != 0)
        p->path[0] = '\0';
}

/* Append to p->detail. */
static void detail(pc_fsck_problem *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void detail(pc_fsck_problem *p, const char *fmt, ...)
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
    if (t->ms->tag_get(t->ms, t->repo, tag, &d) == 0 && pc_digest_equal(&d, t->d)) {
        detail(t->p, "%s%s", t->n ? ", " : "; tags: ", tag);
        t->n++;
    }
    return 0;
}

/* Name the tags of manifest d in the problem's detail (they go with it). */
static void note_tags(fsck_t *f, pc_fsck_problem *p, const char *repo, const pc_digest *d)
{
    tags_ctx t = {p, d, f->ms, repo, 0};
    f->ms->tag_list(f->ms, repo, NULL, -1, tag_of, &t);
}

/* Blob files: hash each. */
static int check_files(fsck_t *f)
{
    pc_digest got;
    for (size_t i = 0; i < f->files.n; i++) {
        file_t *file = (file_t *)f->files.v + i;
        bool match = false;
        uint64_t size = 0;
        int rc = verify_blob(f->bs, &file->d, &match, &size, &got);
        if (rc == PC_ENOTFOUND) {
            file->gone = true;
            continue;
        }
        if (rc)
            return rc;
        f->r->blobs++;
        f->r->blob_bytes += size;
        file->size = size;
        if (match)
            continue;
        file->corrupt = true;
        pc_fsck_problem *p = add_problem(f, PC_FSCK_CORRUPT_BLOB);
        if (!p)
            return PC_ENOMEM;
        p->digest = file->d;
        p->size = size;
        locate(f, p, PC_BLOB_AREA_BLOB, file->d.str);
        detail(p, "its %llu bytes hash to %s", (unsigned long long)size, got.str);
    }
    return 0;
}

/* Whether d has no usable file: not in the snapshot (and not published
 * since) or corrupt. */
static bool blob_missing(fsck_t *f, const pc_digest *d)
{
    file_t *file = file_find(f, d);
    if (file && file->corrupt)
        return true;
    if (present(file))
        return false;
    uint64_t size;
    return f->bs->stat(f->bs, d, &size) != 0;
}

static int size_problem(fsck_t *f, file_t *file, const char *repo, uint64_t recorded)
{
    if (file->size_reported)
        return 0;
    file->size_reported = true;
    pc_fsck_problem *p = add_problem(f, PC_FSCK_SIZE_MISMATCH);
    if (!p)
        return PC_ENOMEM;
    snprintf(p->repo, sizeof(p->repo), "%s", repo);
    p->digest = file->d;
    p->size = file->size;
    p->recorded = recorded;
    locate(f, p, PC_BLOB_AREA_BLOB, file->d.str);
    detail(p, "recorded as %llu bytes, the blob has %llu", (unsigned long long)recorded,
           (unsigned long long)file->size);
    return 0;
}

static int check_links(fsck_t *f)
{
    for (size_t i = 0; i < f->links.n; i++) {
        link_t *l = (link_t *)f->links.v + i;
        file_t *file = file_find(f, &l->d);
        if (present(file)) {
            if (file->size != l->size && size_problem(f, file, l->repo, l->size))
                return PC_ENOMEM;
            continue;
        }
        uint64_t size;
        if (!blob_missing(f, &l->d) || f->ms->blob_stat(f->ms, l->repo, &l->d, &size) != 0)
            continue; /* changed since the snapshot */
        l->dangling = true;
        pc_fsck_problem *p = add_problem(f, PC_FSCK_DANGLING_LINK);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->repo, sizeof(p->repo), "%s", l->repo);
        p->digest = l->d;
        p->size = l->size;
        detail(p, file && file->corrupt ? "its blob file is corrupt" : "no blob file");
    }
    return 0;
}

static int check_manifest_bytes(fsck_t *f)
{
    for (size_t i = 0; i < f->manifests.n; i++) {
        manifest_t *m = (manifest_t *)f->manifests.v + i;
        file_t *file = file_find(f, &m->rec.digest);
        if (present(file)) {
            if (file->size != m->rec.size && size_problem(f, file, m->rec.repo, m->rec.size))
                return PC_ENOMEM;
            continue;
        }
        pc_manifest_rec now;
        if (!blob_missing(f, &m->rec.digest) ||
            f->ms->manifest_get(f->ms, m->rec.repo, &m->rec.digest, &now) != 0)
            continue;
        m->broken = 1;
        pc_fsck_problem *p = add_problem(f, PC_FSCK_MANIFEST_MISSING);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->repo, sizeof(p->repo), "%s", m->rec.repo);
        p->digest = m->rec.digest;
        p->size = m->rec.size;
        detail(p, "%s", file && file->corrupt ? "its bytes are corrupt" : "no manifest bytes");
        note_tags(f, p, m->rec.repo, &m->rec.digest);
    }
    return 0;
}

/* Whether reference r of a local manifest is missing (in the model: what
 * the repair removes counts as gone). */
static bool ref_missing(fsck_t *f, const ref_t *r)
{
    if (r->ref.is_manifest) {
        manifest_t *child = manifest_find(f, r->repo, &r->ref.digest);
        return !child || child->broken;
    }
    return blob_missing(f, &r->ref.digest);
}

/* Local manifests that miss what they reference, round by round: an index
 * whose child became incomplete in round n is incomplete in round n + 1. */
static int check_complete(fsck_t *f)
{
    ref_t *refs = f->refs.v;
    for (int round = 2;; round++) {
        bool changed = false;
        for (size_t i = 0; i < f->manifests.n; i++) {
            manifest_t *m = (manifest_t *)f->manifests.v + i;
            if (m->mirrored || m->broken)
                continue;
            unsigned missing = 0;
            const ref_t *first = NULL;
            for (size_t k = m->ref0; k < m->ref0 + m->nrefs; k++)
                if (ref_missing(f, &refs[k]) && missing++ == 0)
                    first = &refs[k];
            if (!missing)
                continue;
            pc_manifest_rec now;
            if (f->ms->manifest_get(f->ms, m->rec.repo, &m->rec.digest, &now) != 0)
                continue; /* deleted since the snapshot */
            m->broken = round;
            changed = true;
            pc_fsck_problem *p = add_problem(f, PC_FSCK_INCOMPLETE_MANIFEST);
            if (!p)
                return PC_ENOMEM;
            snprintf(p->repo, sizeof(p->repo), "%s", m->rec.repo);
            p->digest = m->rec.digest;
            p->ref = first->ref.digest;
            p->missing = missing;
            p->size = m->rec.size;
            detail(p, "%u of %zu references missing, first the %s %s", missing, m->nrefs,
                   first->ref.is_manifest ? "child manifest" : "blob", first->ref.digest.str);
            note_tags(f, p, m->rec.repo, &m->rec.digest);
        }
        if (!changed)
            return 0;
    }
}

/* Blobs that kept local manifests need in their repository but that are
 * not linked there (a client deleted the link): link them again. */
static int check_unlinked(fsck_t *f)
{
    ref_t *refs = f->refs.v;
    for (size_t i = 0; i < f->manifests.n; i++) {
        manifest_t *m = (manifest_t *)f->manifests.v + i;
        if (m->mirrored || m->broken)
            continue;
        for (size_t k = m->ref0; k < m->ref0 + m->nrefs; k++) {
            const ref_t *r = &refs[k];
            if (r->ref.is_manifest || link_find(f, r->repo, &r->ref.digest))
                continue;
            file_t *file = file_find(f, &r->ref.digest);
            uint64_t size;
            if (!present(file) ||
                f->ms->blob_stat(f->ms, r->repo, &r->ref.digest, &size) != PC_ENOTFOUND)
                continue;
            link_t *u = vec_push(&f->unlinked);
            if (!u)
                return PC_ENOMEM;
            snprintf(u->repo, sizeof(u->repo), "%s", r->repo);
            u->d = r->ref.digest;
            u->size = file->size;
        }
    }
    vec_sort(&f->unlinked, cmp_link);
    for (size_t i = 0; i < f->unlinked.n; i++) {
        link_t *u = (link_t *)f->unlinked.v + i;
        if (i && cmp_link(u, u - 1) == 0)
            continue;
        pc_fsck_problem *p = add_problem(f, PC_FSCK_UNLINKED_BLOB);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->repo, sizeof(p->repo), "%s", u->repo);
        p->digest = u->d;
        p->size = u->size;
        locate(f, p, PC_BLOB_AREA_BLOB, u->d.str);
    }
    return 0;
}

static int mark(vec *set, const pc_digest *d)
{
    pc_digest *e = vec_push(set);
    if (!e)
        return PC_ENOMEM;
    *e = *d;
    return 0;
}

/* Blob files nothing keeps once the repair is done. */
static int check_orphans(fsck_t *f)
{
    ref_t *refs = f->refs.v;
    for (size_t i = 0; i < f->links.n; i++) {
        link_t *l = (link_t *)f->links.v + i;
        if (mark(&f->snapshot, &l->d) || (!l->dangling && mark(&f->referenced, &l->d)))
            return PC_ENOMEM;
    }
    for (size_t i = 0; i < f->manifests.n; i++) {
        manifest_t *m = (manifest_t *)f->manifests.v + i;
        if (mark(&f->snapshot, &m->rec.digest) ||
            (!m->broken && mark(&f->referenced, &m->rec.digest)))
            return PC_ENOMEM;
        for (size_t k = m->ref0; k < m->ref0 + m->nrefs; k++)
            if (mark(&f->snapshot, &refs[k].ref.digest) ||
                (!m->broken && mark(&f->referenced, &refs[k].ref.digest)))
                return PC_ENOMEM;
    }
    vec_sort(&f->referenced, cmp_digest);
    vec_sort(&f->snapshot, cmp_digest);
    for (size_t i = 0; i < f->files.n; i++) {
        file_t *file = (file_t *)f->files.v + i;
        if (!present(file) || vec_find(&f->referenced, &file->d, cmp_digest))
            continue;
        long age = 0;
        if (f->bs->age(f->bs, &file->d, &age) != 0)
            continue; /* gone meanwhile */
        if (age < f->o->grace_s) {
            f->r->young++;
            continue;
        }
        bool held_before = vec_find(&f->snapshot, &file->d, cmp_digest) != NULL;
        uint64_t holders = 0;
        int rc = f->ms->digest_holders(f->ms, &file->d, &holders);
        if (rc)
            return rc;
        if (holders && !held_before)
            continue; /* linked since the snapshot (a mount, a mirror request) */
        pc_fsck_problem *p = add_problem(f, PC_FSCK_ORPHAN_BLOB);
        if (!p)
            return PC_ENOMEM;
        p->digest = file->d;
        p->size = file->size;
        p->age_s = age;
        locate(f, p, PC_BLOB_AREA_BLOB, file->d.str);
        if (held_before)
            detail(p, "only what the repair removes refers to it");
    }
    return 0;
}

static int check_uploads(fsck_t *f)
{
    char repo[PC_NAME_MAX + 1];
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < f->staged.n; i++) {
        staged_t *u = (staged_t *)f->staged.v + i;
        session_t key;
        snprintf(key.id, sizeof(key.id), "%.71s", u->name);
        session_t *s = vec_find(&f->sessions, &key, cmp_session);
        pc_fsck_problem *p = NULL;
        if (!s) {
            /* a mirror fetch's staging file, a session being made, or a
             * crash's leftover: only the last gets old */
            if (u->age_s < f->o->grace_s) {
                f->r->young++;
                continue;
            }
            if (f->ms->upload_get(f->ms, u->name, repo) != PC_ENOTFOUND)
                continue;
            if (!(p = add_problem(f, PC_FSCK_ORPHAN_UPLOAD)))
                return PC_ENOMEM;
        } else {
            if (u->age_s <= f->o->upload_ttl_s)
                continue;
            if (!(p = add_problem(f, PC_FSCK_STALE_UPLOAD)))
                return PC_ENOMEM;
            snprintf(p->repo, sizeof(p->repo), "%s", s->repo);
        }
        snprintf(p->name, sizeof(p->name), "%s", u->name);
        p->size = u->size;
        p->age_s = u->age_s;
        locate(f, p, PC_BLOB_AREA_UPLOAD, u->name);
    }
    for (size_t i = 0; i < f->sessions.n; i++) {
        session_t *s = (session_t *)f->sessions.v + i;
        staged_t key;
        snprintf(key.name, sizeof(key.name), "%s", s->id);
        uint64_t size;
        if (vec_find(&f->staged, &key, cmp_staged) ||
            f->bs->upload_stat(f->bs, s->id, &size) != PC_ENOTFOUND ||
            f->ms->upload_get(f->ms, s->id, repo) != 0)
            continue; /* a file after all, or the session ended meanwhile */
        pc_fsck_problem *p = add_problem(f, PC_FSCK_UPLOAD_WITHOUT_FILE);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->name, sizeof(p->name), "%s", s->id);
        snprintf(p->repo, sizeof(p->repo), "%s", s->repo);
        p->age_s = now > s->created ? (long)(now - s->created) : 0;
    }
    return 0;
}

static int check_temps(fsck_t *f)
{
    for (size_t i = 0; i < f->temps.n; i++) {
        staged_t *t = (staged_t *)f->temps.v + i;
        if (t->age_s < f->o->grace_s) {
            f->r->young++; /* a put() may be writing it */
            continue;
        }
        pc_fsck_problem *p = add_problem(f, PC_FSCK_STALE_TEMP);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->name, sizeof(p->name), "%s", t->name);
        p->size = t->size;
        p->age_s = t->age_s;
        locate(f, p, PC_BLOB_AREA_TMP, t->name);
    }
    return 0;
}

/* ---- repairs ---- */

typedef struct {
    fsck_t *f;
    const pc_fsck_problem *p;
} guard_ctx;

/* guarded_remove checks, inside the meta store's transaction. */
static int still_no_file(pc_metastore *ms, void *ctx)
{
    guard_ctx *g = ctx;
    uint64_t size;
    int rc = g->f->bs->stat(g->f->bs, &g->p->digest, &size);
    if (rc == 0) {
        pc_error_set("a blob file is there now");
        return PC_EEXISTS;
    }
    return rc == PC_ENOTFOUND ? 0 : rc;
}

static int still_incomplete(pc_metastore *ms, void *ctx)
{
    guard_ctx *g = ctx;
    fsck_t *f = g->f;
    manifest_t *m = manifest_find(f, g->p->repo, &g->p->digest);
    if (!m)
        return PC_ENOTFOUND;
    const ref_t *refs = f->refs.v;
    for (size_t k = m->ref0; k < m->ref0 + m->nrefs; k++) {
        const pc_manifest_ref *r = &refs[k].ref;
        uint64_t size;
        pc_manifest_rec child;
        if (r->is_manifest ? ms->manifest_get(ms, m->rec.repo, &r->digest, &child) != 0
                           : f->bs->stat(f->bs, &r->digest, &size) != 0)
            return 0;
    }
    pc_error_set("everything it references is there now");
    return PC_EEXISTS;
}

static int still_orphan(pc_metastore *ms, void *ctx)
{
    guard_ctx *g = ctx;
    uint64_t holders = 0;
    long age = 0;
    int rc = ms->digest_holders(ms, &g->p->digest, &holders);
    if (rc)
        return rc;
    if (holders) {
        pc_error_set("referenced now");
        return PC_EEXISTS;
    }
    if ((rc = g->f->bs->age(g->f->bs, &g->p->digest, &age)))
        return rc;
    if (age < g->f->o->grace_s) {
        pc_error_set("written again %lds ago", age);
        return PC_EEXISTS;
    }
    /* removed with other writers held off: nothing links it meanwhile */
    return g->f->bs->remove(g->f->bs, &g->p->digest);
}

/* Repairs that remove run under the blob store's exclusive publish lock
 * (blobstore.h), taken before any meta store transaction: a push that
 * republishes the blob meanwhile waits, so its fresh file is not removed
 * on the strength of a look at the old one. */
static int excl_lock(fsck_t *f, pc_blob_lock *lk)
{
    lk->a = lk->b = -1;
    return f->bs->publish_lock ? f->bs->publish_lock(f->bs, true, lk) : 0;
}

static void excl_unlock(fsck_t *f, pc_blob_lock *lk)
{
    if (f->bs->publish_unlock)
        f->bs->publish_unlock(f->bs, lk);
}

static int repair_corrupt(fsck_t *f, pc_fsck_problem *p)
{
    bool match = false;
    uint64_t size = 0;
    pc_digest got;
    pc_blob_lock lk;
    int rc = excl_lock(f, &lk);
    if (rc)
        return rc;
    /* hash again: a push or fetch may have republished it meanwhile */
    rc = verify_blob(f->bs, &p->digest, &match, &size, &got);
    if (rc == 0 && match) {
        pc_error_set("its bytes match now");
        rc = PC_EEXISTS;
    } else if (rc == 0) {
        rc = f->bs->remove(f->bs, &p->digest);
    }
    excl_unlock(f, &lk);
    return rc;
}

static int repair_guarded(fsck_t *f, pc_fsck_problem *p, pc_meta_remove_kind kind,
                          pc_meta_guard_fn check)
{
    pc_meta_removal what = {kind, p->repo, &p->digest};
    guard_ctx g = {f, p};
    pc_blob_lock lk;
    int rc = excl_lock(f, &lk);
    if (rc)
        return rc;
    rc = f->ms->guarded_remove(f->ms, &what, check, &g);
    excl_unlock(f, &lk);
    return rc;
}

static int repair_unlinked(fsck_t *f, pc_fsck_problem *p)
{
    uint64_t size;
    int rc = f->bs->stat(f->bs, &p->digest, &size);
    if (rc)
        return rc == PC_ENOTFOUND ? PC_EEXISTS : rc;
    return f->ms->blob_link(f->ms, p->repo, &p->digest, size);
}

static int repair_size(fsck_t *f, pc_fsck_problem *p)
{
    uint64_t changed = 0;
    int rc = f->ms->size_fix(f->ms, &p->digest, p->size, &changed);
    if (rc == 0 && changed == 0) {
        pc_error_set("recorded right now");
        return PC_EEXISTS;
    }
    return rc;
}

static int repair_upload(fsck_t *f, pc_fsck_problem *p)
{
    char repo[PC_NAME_MAX + 1];
    uint64_t size;
    int rc;
    switch (p->kind) {
    case PC_FSCK_ORPHAN_UPLOAD:
        if (f->ms->upload_get(f->ms, p->name, repo) != PC_ENOTFOUND) {
            pc_error_set("a session owns it now");
            return PC_EEXISTS;
        }
        return f->bs->upload_remove_idle(f->bs, p->name, f->o->grace_s);
    case PC_FSCK_STALE_UPLOAD:
        if ((rc = f->bs->upload_remove_idle(f->bs, p->name, f->o->upload_ttl_s + 1)))
            return rc;
        rc = f->ms->upload_delete(f->ms, p->name);
        return rc == PC_ENOTFOUND ? 0 : rc;
    default: /* PC_FSCK_UPLOAD_WITHOUT_FILE */
        if ((rc = f->bs->upload_stat(f->bs, p->name, &size)) != PC_ENOTFOUND) {
            if (rc == 0)
                pc_error_set("its staging file is there now");
            return rc ? rc : PC_EEXISTS;
        }
        return f->ms->upload_delete(f->ms, p->name);
    }
}

static int repair_one(fsck_t *f, pc_fsck_problem *p)
{
    switch (p->kind) {
    case PC_FSCK_CORRUPT_BLOB:
        return repair_corrupt(f, p);
    case PC_FSCK_DANGLING_LINK:
        return repair_guarded(f, p, PC_META_REMOVE_LINK, still_no_file);
    case PC_FSCK_MANIFEST_MISSING:
        return repair_guarded(f, p, PC_META_REMOVE_MANIFEST, still_no_file);
    case PC_FSCK_INCOMPLETE_MANIFEST:
        return repair_guarded(f, p, PC_META_REMOVE_MANIFEST, still_incomplete);
    case PC_FSCK_UNLINKED_BLOB:
        return repair_unlinked(f, p);
    case PC_FSCK_SIZE_MISMATCH:
        return repair_size(f, p);
    case PC_FSCK_ORPHAN_BLOB: {
        int rc = repair_guarded(f, p, PC_META_REMOVE_NOTHING, still_orphan);
        if (rc == 0)
            f->ms->access_evict(f->ms, &p->digest, NULL, 0); /* its access record, if any */
        return rc;
    }
    case PC_FSCK_ORPHAN_UPLOAD:
    case PC_FSCK_STALE_UPLOAD:
    case PC_FSCK_UPLOAD_WITHOUT_FILE:
        return repair_upload(f, p);
    case PC_FSCK_STALE_TEMP:
        return f->bs->tmp_remove(f->bs, p->name, f->o->grace_s);
    case PC_FSCK_KIND_COUNT:
        break;
    }
    pc_error_set("unknown problem");
    return PC_EINVAL;
}

/* Problems in repair order: by kind (the enum's order), then as found
 * (incomplete manifests round by round, so children go before their
 * index). */
static int cmp_repair_order(const void *a, const void *b)
{
    const pc_fsck_problem *const *x = a, *const *y = b;
    if ((*x)->kind != (*y)->kind)
        return (*x)->kind < (*y)->kind ? -1 : 1;
    return *x < *y ? -1 : *x > *y;
}

static int repair(fsck_t *f)
{
    pc_fsck_report *r = f->r;
    pc_fsck_problem **order = calloc(r->nproblems ? r->nproblems : 1, sizeof(*order));
    if (!order) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    for (size_t i = 0; i < r->nproblems; i++)
        order[i] = &r->problems[i];
    qsort(order, r->nproblems, sizeof(*order), cmp_repair_order);
    for (size_t i = 0; i < r->nproblems; i++) {
        pc_fsck_problem *p = order[i];
        pc_error_clear();
        int rc = repair_one(f, p);
        if (rc == 0) {
            p->status = PC_FSCK_REPAIRED;
            r->repaired++;
        } else if (rc == PC_EEXISTS || rc == PC_ENOTFOUND) {
            p->status = PC_FSCK_SKIPPED;
            r->skipped++;
            detail(p, "%sleft alone: %s", p->detail[0] ? "; " : "",
                   rc == PC_ENOTFOUND ? "gone meanwhile" : pc_error_last());
        } else {
            p->status = PC_FSCK_FAILED;
            r->failed++;
            detail(p, "%srepair failed: %s", p->detail[0] ? "; " : "", pc_error_last());
        }
    }
    free(order);
    return 0;
}

int pc_fsck_run(pc_blobstore *bs, pc_metastore *ms, const pc_fsck_opts *o, pc_fsck_report *out)
{
    fsck_t f;
    memset(out, 0, sizeof(*out));
    memset(&f, 0, sizeof(f));
    f.bs = bs;
    f.ms = ms;
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
    if (!bs->tmp_foreach || !bs->upload_remove_idle || !ms->blob_link_foreach ||
        !ms->guarded_remove) {
        pc_error_set("these stores cannot be checked (no fsck functions)");
        return PC_ENOTSUP;
    }
    if ((rc = snapshot(&f)) || (rc = check_files(&f)) || (rc = check_links(&f)) ||
        (rc = check_manifest_bytes(&f)) || (rc = check_complete(&f)) || (rc = check_unlinked(&f)) ||
        (rc = check_orphans(&f)) || (rc = check_uploads(&f)) || (rc = check_temps(&f)))
        goto done;
    if (o->repair && out->nproblems) {
        if (o->before_repair)
            o->before_repair(o->hook_ctx);
        rc = repair(&f);
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

void pc_fsck_report_free(pc_fsck_report *r)
{
    if (!r)
        return;
    free(r->problems);
    r->problems = NULL;
    r->nproblems = 0;
}
