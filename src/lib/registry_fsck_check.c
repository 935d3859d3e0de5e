/*
 * registry_fsck_check.c - fsck's checks over the snapshot of one run
 * (registry_fsck.c): blob files, links, manifest bytes, complete local
 * manifests, unlinked blobs, orphans, uploads and temp files, each problem
 * confirmed against the live stores before it is reported.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "registry_fsck_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blob files: hash each. */
int pc_fsck_check_files(fsck_t *f)
{
    pc_digest got;
    for (size_t i = 0; i < f->files.n; i++) {
        file_t *file = (file_t *)f->files.v + i;
        bool match = false;
        uint64_t size = 0;
        int rc = pc_fsck_verify_blob(f->be, &file->d, &match, &size, &got);
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
        pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_CORRUPT_BLOB);
        if (!p)
            return PC_ENOMEM;
        p->digest = file->d;
        p->size = size;
        pc_fsck_locate(f, p, PC_BLOB_IN_BLOBS, file->d.str);
        pc_fsck_detail(p, "its %llu bytes hash to %s", (unsigned long long)size, got.str);
    }
    return 0;
}

/* Whether d has no usable file: not in the snapshot (and not published
 * since) or corrupt. */
static bool blob_missing(fsck_t *f, const pc_digest *d)
{
    file_t *file = pc_fsck_file_find(f, d);
    if (file && file->corrupt)
        return true;
    if (pc_fsck_present(file))
        return false;
    uint64_t size;
    return f->be->stat(f->be, d, &size) != 0;
}

static int size_problem(fsck_t *f, file_t *file, const char *repo, uint64_t recorded)
{
    if (file->size_reported)
        return 0;
    file->size_reported = true;
    pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_SIZE_MISMATCH);
    if (!p)
        return PC_ENOMEM;
    snprintf(p->repo, sizeof(p->repo), "%s", repo);
    p->digest = file->d;
    p->size = file->size;
    p->recorded = recorded;
    pc_fsck_locate(f, p, PC_BLOB_IN_BLOBS, file->d.str);
    pc_fsck_detail(p, "recorded as %llu bytes, the blob has %llu", (unsigned long long)recorded,
                   (unsigned long long)file->size);
    return 0;
}

int pc_fsck_check_links(fsck_t *f)
{
    for (size_t i = 0; i < f->links.n; i++) {
        link_t *l = (link_t *)f->links.v + i;
        file_t *file = pc_fsck_file_find(f, &l->d);
        if (pc_fsck_present(file)) {
            if (file->size != l->size && size_problem(f, file, l->repo, l->size))
                return PC_ENOMEM;
            continue;
        }
        uint64_t size;
        if (!blob_missing(f, &l->d) || f->ms->reg->blob_stat(f->ms, l->repo, &l->d, &size) != 0)
            continue; /* changed since the snapshot */
        l->dangling = true;
        pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_DANGLING_LINK);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->repo, sizeof(p->repo), "%s", l->repo);
        p->digest = l->d;
        p->size = l->size;
        pc_fsck_detail(p, file && file->corrupt ? "its blob file is corrupt" : "no blob file");
    }
    return 0;
}

int pc_fsck_check_manifest_bytes(fsck_t *f)
{
    for (size_t i = 0; i < f->manifests.n; i++) {
        manifest_t *m = (manifest_t *)f->manifests.v + i;
        file_t *file = pc_fsck_file_find(f, &m->rec.digest);
        if (pc_fsck_present(file)) {
            if (file->size != m->rec.size && size_problem(f, file, m->rec.repo, m->rec.size))
                return PC_ENOMEM;
            continue;
        }
        pc_manifest_rec now;
        if (!blob_missing(f, &m->rec.digest) ||
            f->ms->reg->manifest_get(f->ms, m->rec.repo, &m->rec.digest, &now) != 0)
            continue;
        m->broken = 1;
        pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_MANIFEST_MISSING);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->repo, sizeof(p->repo), "%s", m->rec.repo);
        p->digest = m->rec.digest;
        p->size = m->rec.size;
        pc_fsck_detail(p, "%s",
                       file && file->corrupt ? "its bytes are corrupt" : "no manifest bytes");
        pc_fsck_note_tags(f, p, m->rec.repo, &m->rec.digest);
    }
    return 0;
}

/* Whether reference r of a local manifest is missing (in the model: what
 * the repair removes counts as gone). */
static bool ref_missing(fsck_t *f, const ref_t *r)
{
    if (r->ref.is_manifest) {
        manifest_t *child = pc_fsck_manifest_find(f, r->repo, &r->ref.digest);
        return !child || child->broken;
    }
    return blob_missing(f, &r->ref.digest);
}

/* Local manifests that miss what they reference, round by round: an index
 * whose child became incomplete in round n is incomplete in round n + 1. */
int pc_fsck_check_complete(fsck_t *f)
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
            if (f->ms->reg->manifest_get(f->ms, m->rec.repo, &m->rec.digest, &now) != 0)
                continue; /* deleted since the snapshot */
            m->broken = round;
            changed = true;
            pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_INCOMPLETE_MANIFEST);
            if (!p)
                return PC_ENOMEM;
            snprintf(p->repo, sizeof(p->repo), "%s", m->rec.repo);
            p->digest = m->rec.digest;
            p->ref = first->ref.digest;
            p->missing = missing;
            p->size = m->rec.size;
            pc_fsck_detail(p, "%u of %zu references missing, first the %s %s", missing, m->nrefs,
                           first->ref.is_manifest ? "child manifest" : "blob",
                           first->ref.digest.str);
            pc_fsck_note_tags(f, p, m->rec.repo, &m->rec.digest);
        }
        if (!changed)
            return 0;
    }
}

/* Blobs that kept local manifests need in their repository but that are
 * not linked there (a client deleted the link): link them again. */
int pc_fsck_check_unlinked(fsck_t *f)
{
    ref_t *refs = f->refs.v;
    for (size_t i = 0; i < f->manifests.n; i++) {
        manifest_t *m = (manifest_t *)f->manifests.v + i;
        if (m->mirrored || m->broken)
            continue;
        for (size_t k = m->ref0; k < m->ref0 + m->nrefs; k++) {
            const ref_t *r = &refs[k];
            if (r->ref.is_manifest || pc_fsck_link_find(f, r->repo, &r->ref.digest))
                continue;
            file_t *file = pc_fsck_file_find(f, &r->ref.digest);
            uint64_t size;
            if (!pc_fsck_present(file) ||
                f->ms->reg->blob_stat(f->ms, r->repo, &r->ref.digest, &size) != PC_ENOTFOUND)
                continue;
            link_t *u = pc_fsck_vec_push(&f->unlinked);
            if (!u)
                return PC_ENOMEM;
            snprintf(u->repo, sizeof(u->repo), "%s", r->repo);
            u->d = r->ref.digest;
            u->size = file->size;
        }
    }
    pc_fsck_vec_sort(&f->unlinked, pc_fsck_cmp_link);
    for (size_t i = 0; i < f->unlinked.n; i++) {
        link_t *u = (link_t *)f->unlinked.v + i;
        if (i && pc_fsck_cmp_link(u, u - 1) == 0)
            continue;
        pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_UNLINKED_BLOB);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->repo, sizeof(p->repo), "%s", u->repo);
        p->digest = u->d;
        p->size = u->size;
        pc_fsck_locate(f, p, PC_BLOB_IN_BLOBS, u->d.str);
    }
    return 0;
}

static int mark(vec *set, const pc_digest *d)
{
    pc_digest *e = pc_fsck_vec_push(set);
    if (!e)
        return PC_ENOMEM;
    *e = *d;
    return 0;
}

/* Blob files nothing keeps once the repair is done. */
int pc_fsck_check_orphans(fsck_t *f)
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
    pc_fsck_vec_sort(&f->referenced, pc_fsck_cmp_digest);
    pc_fsck_vec_sort(&f->snapshot, pc_fsck_cmp_digest);
    for (size_t i = 0; i < f->files.n; i++) {
        file_t *file = (file_t *)f->files.v + i;
        if (!pc_fsck_present(file) ||
            pc_fsck_vec_find(&f->referenced, &file->d, pc_fsck_cmp_digest))
            continue;
        long age = file->age_s;
        if (age < f->o->grace_s) {
            f->r->young++;
            continue;
        }
        bool held_before = pc_fsck_vec_find(&f->snapshot, &file->d, pc_fsck_cmp_digest) != NULL;
        uint64_t holders = 0;
        int rc = f->ms->reg->digest_holders(f->ms, &file->d, &holders);
        if (rc)
            return rc;
        if (holders && !held_before)
            continue; /* linked since the snapshot (a mount, a mirror request) */
        pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_ORPHAN_BLOB);
        if (!p)
            return PC_ENOMEM;
        p->digest = file->d;
        p->size = file->size;
        p->age_s = age;
        pc_fsck_locate(f, p, PC_BLOB_IN_BLOBS, file->d.str);
        if (held_before)
            pc_fsck_detail(p, "only what the repair removes refers to it");
    }
    return 0;
}

int pc_fsck_check_uploads(fsck_t *f)
{
    char repo[PC_NAME_MAX + 1];
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < f->staged.n; i++) {
        staged_t *u = (staged_t *)f->staged.v + i;
        session_t key;
        snprintf(key.id, sizeof(key.id), "%.71s", u->name);
        session_t *s = pc_fsck_vec_find(&f->sessions, &key, pc_fsck_cmp_session);
        pc_fsck_problem *p = NULL;
        if (!s) {
            /* a mirror fetch's staging file, a session being made, or a
             * crash's leftover: only the last gets old */
            if (u->age_s < f->o->grace_s) {
                f->r->young++;
                continue;
            }
            if (f->ms->reg->upload_get(f->ms, u->name, repo) != PC_ENOTFOUND)
                continue;
            if (!(p = pc_fsck_add_problem(f, PC_FSCK_ORPHAN_UPLOAD)))
                return PC_ENOMEM;
        } else {
            if (u->age_s <= f->o->upload_ttl_s)
                continue;
            if (!(p = pc_fsck_add_problem(f, PC_FSCK_STALE_UPLOAD)))
                return PC_ENOMEM;
            snprintf(p->repo, sizeof(p->repo), "%s", s->repo);
        }
        snprintf(p->name, sizeof(p->name), "%s", u->name);
        p->size = u->size;
        p->age_s = u->age_s;
        pc_fsck_locate(f, p, PC_BLOB_IN_UPLOADS, u->name);
    }
    for (size_t i = 0; i < f->sessions.n; i++) {
        session_t *s = (session_t *)f->sessions.v + i;
        staged_t key;
        snprintf(key.name, sizeof(key.name), "%s", s->id);
        uint64_t size;
        if (pc_fsck_vec_find(&f->staged, &key, pc_fsck_cmp_staged) ||
            f->be->upload_stat(f->be, s->id, &size) != PC_ENOTFOUND ||
            f->ms->reg->upload_get(f->ms, s->id, repo) != 0)
            continue; /* a file after all, or the session ended meanwhile */
        pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_UPLOAD_WITHOUT_FILE);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->name, sizeof(p->name), "%s", s->id);
        snprintf(p->repo, sizeof(p->repo), "%s", s->repo);
        p->age_s = now > s->created ? (long)(now - s->created) : 0;
    }
    return 0;
}

int pc_fsck_check_temps(fsck_t *f)
{
    for (size_t i = 0; i < f->temps.n; i++) {
        staged_t *t = (staged_t *)f->temps.v + i;
        if (t->age_s < f->o->grace_s) {
            f->r->young++; /* a put() may be writing it */
            continue;
        }
        pc_fsck_problem *p = pc_fsck_add_problem(f, PC_FSCK_STALE_TEMP);
        if (!p)
            return PC_ENOMEM;
        snprintf(p->name, sizeof(p->name), "%s", t->name);
        p->size = t->size;
        p->age_s = t->age_s;
        pc_fsck_locate(f, p, PC_BLOB_IN_TMP, t->name);
    }
    return 0;
}
