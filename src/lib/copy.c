/*
 * copy.c - the copy engine: read the source's manifest (registry GET with
 * its digest verified, or an OCI layout's index.json), choose the images
 * of an index (all, one, or several: then a new index of those), gather
 * referrers (the referrers API, else the sha256-<hex> tag schema), plan
 * every blob once, move the blobs (copy_blob.c), then write the manifests
 * byte for byte: children by digest, referrers, the referrers tag index
 * where the destination has no referrers API, and the tag last.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "copy_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "manifest.h"

#define REFERRERS_DEPTH 2

/* One manifest of the copy. */
typedef struct {
    pc_pull_desc desc;
    bool is_index;
    bool referrer;      /* listed as a referrer of subject */
    pc_digest subject;  /* with referrer */
    bool dst_has_api;   /* the destination answered its PUT with OCI-Subject */
    pc_pull_desc *refs; /* blobs (config first) or children */
    size_t nrefs;
    char *body;
    size_t len;
} man;

typedef struct {
    man *v;
    size_t n, cap;
} man_list;

static void man_clear(man *m)
{
    free(m->refs);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

static man *list_add(man_list *l)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        man *nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv)
            return NULL;
        l->v = nv;
        l->cap = ncap;
    }
    man *m = &l->v[l->n++];
    memset(m, 0, sizeof(*m));
    return m;
}

static bool list_has(const man_list *l, const pc_digest *d)
{
    for (size_t i = 0; i < l->n; i++)
        if (pc_digest_equal(&l->v[i].desc.digest, d))
            return true;
    return false;
}

static int oom(pc_copy_ctx *c)
{
    return pc_copy_fail(c, PC_ENOMEM, PC_PULL_FAIL_LOCAL, false, "copy", "out of memory");
}

/* ---- reading manifests ---- */

/* The descriptors of a manifest of a type this program does not know
 * (an artifact): its config, layers and blobs, all treated as blobs. */
static int generic_descs(const char *body, size_t len, man *m)
{
    static const char *const fields[] = {"config", "layers", "blobs"};
    json_t *doc = json_loadb(body, len, 0, NULL);
    size_t count = 0, i;
    json_t *e;
    if (!json_is_object(doc)) {
        json_decref(doc);
        pc_error_set("not a JSON object");
        return PC_EINVAL;
    }
    m->refs = calloc(64, sizeof(*m->refs));
    for (size_t f = 0; m->refs && f < 3; f++) {
        json_t *v = json_object_get(doc, fields[f]);
        json_t *one = json_is_object(v) ? json_pack("[O]", v) : json_incref(v);
        json_array_foreach(one, i, e)
        {
            const char *dg = json_string_value(json_object_get(e, "digest"));
            const char *mt = json_string_value(json_object_get(e, "mediaType"));
            pc_pull_desc *d = &m->refs[count];
            if (count >= 64 || !dg || pc_digest_parse(&d->digest, dg) != 0)
                continue;
            d->size = (uint64_t)json_integer_value(json_object_get(e, "size"));
            snprintf(d->media_type, sizeof(d->media_type), "%s", mt ? mt : "");
            count++;
        }
        json_decref(one);
    }
    const char *mt = json_string_value(json_object_get(doc, "mediaType"));
    if (mt && !m->desc.media_type[0])
        snprintf(m->desc.media_type, sizeof(m->desc.media_type), "%s", mt);
    json_decref(doc);
    if (!m->refs) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    m->nrefs = count;
    m->is_index = false;
    return 0;
}

/* Read the whole file at path (at most max bytes). */
static int read_file(const char *path, size_t max, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    size_t n = 0, cap = 0;
    *buf = NULL;
    if (!f) {
        pc_error_set("cannot read %s", path);
        return PC_ENOTFOUND;
    }
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 131072;
            char *nb = realloc(b, cap);
            if (!nb) {
                fclose(f);
                free(b);
                pc_error_set("out of memory");
                return PC_ENOMEM;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, 65536, f);
        n += r;
        if (n > max) {
            fclose(f);
            free(b);
            pc_error_set("%s is larger than %zu bytes", path, max);
            return PC_ETOOBIG;
        }
        if (r == 0)
            break;
    }
    fclose(f);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* Fetch and verify one manifest of the source: by reference (the top), or
 * the one want describes (a child or referrer). */
static int fetch(pc_copy_ctx *c, const char *reference, const pc_pull_desc *want, man *out)
{
    const pc_copy_end *s = &c->o->src;
    pc_upstream_resp r;
    pc_digest named, got;
    char object[300], hint[256] = "";
    bool by_digest = false;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    snprintf(object, sizeof(object), "manifest %s", want ? want->digest.str : reference);
    if (want) {
        named = want->digest;
        by_digest = true;
        out->desc = *want;
        snprintf(hint, sizeof(hint), "%s", want->media_type);
    }
    if (s->u) {
        const char *ref = want ? want->digest.str : reference;
        by_digest = by_digest || pc_digest_parse(&named, ref) == 0;
        for (unsigned attempt = 0;;) {
            if ((rc = pc_upstream_manifest(s->u, s->repo, ref, false, &r)) != 0)
                return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, false, object, "%s",
                                    pc_error_last());
            if (r.cls == PC_UP_OK || !pc_copy_retry(c, &attempt, &r))
                break;
            pc_upstream_resp_clear(&r);
        }
        if (r.cls != PC_UP_OK) {
            rc = pc_copy_fail_resp(c, false, object, &r);
            goto done;
        }
        if (!by_digest && r.digest[0] && pc_digest_parse(&named, r.digest) == 0)
            by_digest = true;
        if (!hint[0])
            snprintf(hint, sizeof(hint), "%s", r.media_type);
        out->body = r.body;
        out->len = r.body_len;
        r.body = NULL;
    } else {
        char path[4096];
        pc_pull_desc top;
        if (!want) {
            if ((rc = pc_copy_layout_lookup(s->dir, reference, &top)) != 0)
                /* a layout is a local directory: what it lacks is a local
                 * failure, whatever it is (exit 1, the table in `pullcache help`) */
                return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, false, "source", "%s",
                                    pc_error_last());
            named = top.digest;
            by_digest = true;
            out->desc = top;
            snprintf(hint, sizeof(hint), "%s", top.media_type);
        }
        if ((rc = pc_copy_layout_blob_path(s->dir, &named, path, sizeof(path))) != 0 ||
            (rc = read_file(path, PC_MANIFEST_MAX, &out->body, &out->len)) != 0)
            return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, false, object, "%s", pc_error_last());
    }
    pc_digest_alg alg = by_digest ? named.alg : PC_DIGEST_SHA256;
    if (!out->body || pc_digest_buffer(&got, alg, out->body, out->len) != 0) {
        rc = pc_copy_fail(c, PC_EDIGEST, PC_PULL_FAIL_VERIFY, false, object, "empty or unreadable");
        goto done;
    }
    if (by_digest && !pc_digest_equal(&got, &named)) {
        rc = pc_copy_fail(c, PC_EDIGEST, PC_PULL_FAIL_VERIFY, false, object,
                          "the source's manifest hashes to %s, not %s", got.str, named.str);
        goto done;
    }
    rc = pc_pull_descs_parse(out->body, out->len, hint, &out->is_index, out->desc.media_type,
                             sizeof(out->desc.media_type), &out->refs, &out->nrefs);
    if (rc == PC_EINVAL && !pc_manifest_type_known(hint)) {
        snprintf(out->desc.media_type, sizeof(out->desc.media_type), "%s", hint);
        rc = generic_descs(out->body, out->len, out);
    }
    if (rc != 0) {
        rc = pc_copy_fail(c, rc == PC_ENOMEM ? PC_ENOMEM : PC_EDIGEST,
                          rc == PC_ENOMEM ? PC_PULL_FAIL_LOCAL : PC_PULL_FAIL_VERIFY, false, object,
                          "not a usable manifest: %s", pc_error_last());
        goto done;
    }
    out->desc.digest = got;
    out->desc.size = out->len;
done:
    pc_upstream_resp_clear(&r);
    return rc;
}

/* ---- platforms ---- */

/* A new index holding only the children marked in keep (the source's
 * other fields and order kept), in place of m's body. */
static int rewrite_index(pc_copy_ctx *c, man *m, const bool *keep)
{
    json_t *doc = json_loadb(m->body, m->len, 0, NULL);
    json_t *list = json_object_get(doc, "manifests"), *nl = json_array();
    char *text = NULL;
    size_t k = 0;
    for (size_t i = 0; list && nl && i < json_array_size(list); i++)
        if (i < m->nrefs && keep[i])
            json_array_append(nl, json_array_get(list, i));
    if (!doc || !nl || json_object_set_new(doc, "manifests", nl) != 0 ||
        !(text = json_dumps(doc, JSON_COMPACT))) {
        json_decref(doc);
        return oom(c);
    }
    json_decref(doc);
    free(m->body);
    m->body = text;
    m->len = strlen(text);
    for (size_t i = 0; i < m->nrefs; i++)
        if (keep[i])
            m->refs[k++] = m->refs[i];
    m->nrefs = k;
    pc_digest_buffer(&m->desc.digest, PC_DIGEST_SHA256, m->body, m->len);
    m->desc.size = m->len;
    return 0;
}

/* Mark the children of index m that the options want. *n = how many. */
static int choose(pc_copy_ctx *c, const man *m, bool *keep, size_t *n)
{
    *n = 0;
    if (!c->o->nplatforms) {
        for (size_t i = 0; i < m->nrefs; i++)
            keep[i] = true;
        *n = m->nrefs;
        return 0;
    }
    for (size_t p = 0; p < c->o->nplatforms; p++) {
        size_t at = 0;
        if (pc_pull_platform_select(m->refs, m->nrefs, &c->o->platforms[p], &at) != 0)
            return pc_copy_fail(c, PC_ENOTFOUND, PC_PULL_FAIL_PLATFORM, false, "platform", "%s",
                                pc_error_last());
        if (!keep[at])
            (*n)++;
        keep[at] = true;
    }
    return 0;
}

/* ---- referrers ---- */

static int digest_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "api:" + sha256 of the sorted digests of descs, one a line. */
static int api_fingerprint(const pc_pull_desc *descs, size_t n, char *out, size_t size)
{
    const char **v = calloc(n ? n : 1, sizeof(*v));
    pc_hasher *h = NULL;
    pc_digest d;
    int rc = PC_ENOMEM;
    if (!v || pc_hasher_new(&h, PC_DIGEST_SHA256) != 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        v[i] = descs[i].digest.str;
    qsort(v, n, sizeof(*v), digest_str_cmp);
    for (size_t i = 0; i < n; i++)
        if (pc_hasher_update(h, v[i], strlen(v[i])) != 0 || pc_hasher_update(h, "\n", 1) != 0)
            goto done;
    if (pc_hasher_final(h, &d) != 0)
        goto done;
    snprintf(out, size, "api:%s", d.str);
    rc = 0;
done:
    pc_hasher_free(h);
    free(v);
    return rc;
}

/* The referrer descriptors of a referrers index body (none when it is not
 * an index: the spec's advice). */
static void referrer_descs(const pc_upstream_resp *r, pc_pull_desc **out, size_t *n)
{
    bool is_index = false;
    *out = NULL;
    *n = 0;
    if (pc_pull_descs_parse(r->body, r->body_len, PC_MT_OCI_INDEX, &is_index, NULL, 0, out, n) !=
            0 ||
        !is_index) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
}

/* "tag:DIGEST" of the referrers tag index r (its Docker-Content-Digest,
 * else the digest of its body). */
static void tag_fingerprint(const pc_upstream_resp *r, char *out, size_t size)
{
    pc_digest d;
    if (r->digest[0])
        snprintf(out, size, "tag:%s", r->digest);
    else if (r->body && pc_digest_buffer(&d, PC_DIGEST_SHA256, r->body, r->body_len) == 0)
        snprintf(out, size, "tag:%s", d.str);
    else
        snprintf(out, size, "tag:unknown");
}

int pc_copy_referrers_fingerprint(pc_upstream *u, const char *repo, const pc_digest *subject,
                                  char *out, size_t size)
{
    pc_upstream_resp r;
    char tag[80];
    int rc;
    if ((rc = pc_upstream_referrers(u, repo, subject, &r)) != 0)
        return rc;
    if (r.cls == PC_UP_OK) {
        pc_pull_desc *descs;
        size_t n;
        referrer_descs(&r, &descs, &n);
        rc = api_fingerprint(descs, n, out, size);
        free(descs);
        pc_upstream_resp_clear(&r);
        return rc;
    }
    bool absent = r.cls == PC_UP_NOT_FOUND || r.status == 400;
    if (!absent) {
        pc_error_set("referrers of %s: %s", subject->str,
                     r.error_message[0] ? r.error_message : pc_up_class_str(r.cls));
        pc_upstream_resp_clear(&r);
        return PC_EUPSTREAM;
    }
    pc_upstream_resp_clear(&r);
    pc_upstream_referrers_tag(subject, tag, sizeof(tag));
    if ((rc = pc_upstream_manifest(u, repo, tag, true, &r)) != 0)
        return rc;
    if (r.cls == PC_UP_OK)
        tag_fingerprint(&r, out, size);
    else if (r.cls == PC_UP_NOT_FOUND)
        snprintf(out, size, "none");
    else {
        pc_error_set("referrers tag of %s: %s", subject->str,
                     r.error_message[0] ? r.error_message : pc_up_class_str(r.cls));
        rc = PC_EUPSTREAM;
    }
    pc_upstream_resp_clear(&r);
    return rc;
}

/* Note subject d and its referrers fingerprint in the result. */
static void note_subject(pc_copy_ctx *c, const pc_digest *d, const char *fp)
{
    pc_copy_result *res = c->res;
    for (size_t i = 0; i < res->nsubjects; i++)
        if (pc_digest_equal(&res->subjects[i].digest, d))
            return;
    if (res->nsubjects == PC_COPY_SUBJECTS_MAX) {
        res->subjects_overflow = true;
        return;
    }
    pc_copy_subject *s = &res->subjects[res->nsubjects++];
    s->digest = *d;
    snprintf(s->referrers, sizeof(s->referrers), "%s", fp);
}

/* The referrer descriptors of d at the source into *out (caller's); the
 * listing's fingerprint is noted in the result. */
static int list_referrers(pc_copy_ctx *c, const pc_digest *d, pc_pull_desc **out, size_t *n)
{
    const pc_copy_end *s = &c->o->src;
    pc_upstream_resp r;
    char object[200], tag[80], fp[PC_COPY_FINGERPRINT_MAX] = "none";
    int rc = 0, use_tag;
    *out = NULL;
    *n = 0;
    if (!s->u)
        return 0; /* layouts: no referrers */
    snprintf(object, sizeof(object), "referrers of %s", d->str);
    for (use_tag = 0; use_tag < 2; use_tag++) {
        for (unsigned attempt = 0;;) {
            pc_upstream_referrers_tag(d, tag, sizeof(tag));
            rc = use_tag ? pc_upstream_manifest(s->u, s->repo, tag, false, &r)
                         : pc_upstream_referrers(s->u, s->repo, d, &r);
            if (rc != 0)
                return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, false, object, "%s",
                                    pc_error_last());
            if (r.cls == PC_UP_OK || !pc_copy_retry(c, &attempt, &r))
                break;
            pc_upstream_resp_clear(&r);
        }
        if (r.cls == PC_UP_OK)
            break;
        bool absent = r.cls == PC_UP_NOT_FOUND || (!use_tag && r.status == 400);
        if (!absent) {
            rc = pc_copy_fail_resp(c, false, object, &r);
            pc_upstream_resp_clear(&r);
            return rc;
        }
        pc_upstream_resp_clear(&r);
    }
    if (use_tag < 2) { /* r is the listing (else both were absent: none) */
        referrer_descs(&r, out, n);
        if (use_tag)
            tag_fingerprint(&r, fp, sizeof(fp));
        else if (api_fingerprint(*out, *n, fp, sizeof(fp)) != 0)
            snprintf(fp, sizeof(fp), "unknown");
    }
    note_subject(c, d, fp);
    pc_upstream_resp_clear(&r);
    return 0;
}

/* Fetch the referrers of every manifest in l (and theirs, to
 * REFERRERS_DEPTH), adding them (and an index referrer's children). */
static int gather_referrers(pc_copy_ctx *c, man_list *l, const man *top)
{
    size_t from = 0;
    for (int depth = 0; depth < REFERRERS_DEPTH; depth++) {
        size_t upto = l->n;
        for (size_t i = from; i <= upto; i++) {
            const pc_digest *subj =
                i == upto ? (depth == 0 && top ? &top->desc.digest : NULL) : &l->v[i].desc.digest;
            pc_pull_desc *refs = NULL;
            size_t nrefs = 0;
            if (!subj)
                continue;
            pc_digest sd = *subj;
            int rc = list_referrers(c, &sd, &refs, &nrefs);
            for (size_t k = 0; rc == 0 && k < nrefs; k++) {
                if (list_has(l, &refs[k].digest) ||
                    (top && pc_digest_equal(&refs[k].digest, &top->desc.digest)))
                    continue;
                man *m = list_add(l);
                if (!m) {
                    rc = oom(c);
                    break;
                }
                if ((rc = fetch(c, NULL, &refs[k], m)) != 0) {
                    man_clear(m);
                    l->n--;
                    break;
                }
                m->referrer = true;
                m->subject = sd;
                c->res->referrers++;
                size_t mi = l->n - 1; /* l->v moves as it grows */
                for (size_t ch = 0; l->v[mi].is_index && ch < l->v[mi].nrefs && rc == 0; ch++) {
                    pc_pull_desc cd = l->v[mi].refs[ch];
                    if (list_has(l, &cd.digest))
                        continue;
                    man *k2 = list_add(l);
                    rc = k2 ? fetch(c, NULL, &cd, k2) : oom(c);
                    if (rc != 0 && k2) {
                        man_clear(k2);
                        l->n--;
                    }
                }
            }
            free(refs);
            if (rc != 0)
                return rc;
        }
        from = upto;
    }
    return 0;
}

/* ---- writing manifests ---- */

/* Write m under reference (a tag, or NULL: its digest), unless the
 * destination already has it there. */
static int put(pc_copy_ctx *c, man *m, const char *reference)
{
    const pc_copy_end *d = &c->o->dst;
    pc_upstream_resp r;
    char object[400];
    const char *ref = reference ? reference : m->desc.digest.str;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    snprintf(object, sizeof(object), "manifest %.140s (%.200s)",
             reference ? reference : m->desc.digest.str, m->desc.media_type);
    if (!d->u) {
        if (pc_pull_layout_has(c->dst_layout, &m->desc.digest, m->desc.size)) {
            c->res->manifests_skipped++;
            return 0;
        }
        if ((rc = pc_pull_layout_put(c->dst_layout, &m->desc.digest, m->body, m->len)) != 0)
            return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
        c->res->manifests++;
        return 0;
    }
    for (unsigned attempt = 0;;) {
        if ((rc = pc_upstream_manifest(d->u, d->repo, ref, true, &r)) != 0)
            return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
        if (r.cls == PC_UP_OK || r.cls == PC_UP_NOT_FOUND || !pc_copy_retry(c, &attempt, &r))
            break;
        pc_upstream_resp_clear(&r);
    }
    bool same = r.cls == PC_UP_OK && (!reference || strcmp(r.digest, m->desc.digest.str) == 0);
    pc_upstream_resp_clear(&r);
    if (same && !m->referrer) {
        c->res->manifests_skipped++;
        return 0;
    }
    for (unsigned attempt = 0;;) {
        rc = pc_upstream_manifest_put(d->u, d->repo, ref, m->desc.media_type, m->body, m->len, &r);
        if (rc != 0)
            return pc_copy_fail(c, rc, PC_PULL_FAIL_LOCAL, true, object, "%s", pc_error_last());
        if (r.cls == PC_UP_OK || !pc_copy_retry(c, &attempt, &r))
            break;
        pc_upstream_resp_clear(&r);
    }
    if (r.cls != PC_UP_OK) {
        rc = pc_copy_fail_resp(c, true, object, &r);
    } else if (r.digest[0] && strcmp(r.digest, m->desc.digest.str) != 0) {
        rc = pc_copy_fail(c, PC_EDIGEST, PC_PULL_FAIL_VERIFY, true, object,
                          "the destination stored it as %s, not %s", r.digest, m->desc.digest.str);
    } else {
        m->dst_has_api = r.oci_subject[0] != '\0';
        c->res->manifests++;
    }
    pc_upstream_resp_clear(&r);
    return rc;
}

/* The referrers API descriptor of m: mediaType, digest, size,
 * artifactType (else a manifest's config media type), annotations. */
static json_t *referrer_desc(const man *m)
{
    json_t *doc = json_loadb(m->body, m->len, 0, NULL);
    json_t *e = json_pack("{s:s, s:s, s:I}", "mediaType", m->desc.media_type, "digest",
                          m->desc.digest.str, "size", (json_int_t)m->desc.size);
    const char *at = json_string_value(json_object_get(doc, "artifactType"));
    if (!at && !m->is_index)
        at = json_string_value(json_object_get(json_object_get(doc, "config"), "mediaType"));
    if (e && at)
        json_object_set_new(e, "artifactType", json_string(at));
    json_t *ann = json_object_get(doc, "annotations");
    if (e && json_is_object(ann))
        json_object_set(e, "annotations", ann);
    json_decref(doc);
    return e;
}

/* A destination without the referrers API: keep the referrers tag index
 * (sha256-<hex>) of each subject up to date, merging what is there. */
static int referrers_fallback(pc_copy_ctx *c, man_list *l)
{
    const pc_copy_end *d = &c->o->dst;
    for (size_t i = 0; i < l->n; i++) {
        man *m = &l->v[i];
        if (!m->referrer || m->dst_has_api || !d->u)
            continue;
        bool first = true; /* handle each subject once */
        for (size_t k = 0; k < i; k++)
            if (l->v[k].referrer && !l->v[k].dst_has_api &&
                pc_digest_equal(&l->v[k].subject, &m->subject))
                first = false;
        if (!first)
            continue;
        char tag[80];
        pc_upstream_resp r;
        pc_upstream_referrers_tag(&m->subject, tag, sizeof(tag));
        if (pc_upstream_manifest(d->u, d->repo, tag, false, &r) != 0)
            return pc_copy_fail(c, PC_ENOMEM, PC_PULL_FAIL_LOCAL, true, tag, "%s", pc_error_last());
        json_t *idx = r.cls == PC_UP_OK ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
        pc_upstream_resp_clear(&r);
        if (!json_is_array(json_object_get(idx, "manifests"))) {
            json_decref(idx);
            idx = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", PC_MT_OCI_INDEX,
                            "manifests");
        }
        json_t *list = json_object_get(idx, "manifests");
        bool changed = false;
        for (size_t k = i; idx && k < l->n; k++) {
            man *rm = &l->v[k];
            if (!rm->referrer || rm->dst_has_api || !pc_digest_equal(&rm->subject, &m->subject))
                continue;
            bool there = false;
            for (size_t q = 0; q < json_array_size(list); q++) {
                const char *dg =
                    json_string_value(json_object_get(json_array_get(list, q), "digest"));
                there = there || (dg && strcmp(dg, rm->desc.digest.str) == 0);
            }
            if (!there) {
                json_array_append_new(list, referrer_desc(rm));
                changed = true;
            }
        }
        man fb;
        memset(&fb, 0, sizeof(fb));
        fb.body = changed ? json_dumps(idx, JSON_COMPACT) : NULL;
        json_decref(idx);
        if (!changed)
            continue;
        if (!fb.body)
            return oom(c);
        fb.len = strlen(fb.body);
        snprintf(fb.desc.media_type, sizeof(fb.desc.media_type), "%s", PC_MT_OCI_INDEX);
        pc_digest_buffer(&fb.desc.digest, PC_DIGEST_SHA256, fb.body, fb.len);
        fb.desc.size = fb.len;
        int rc = put(c, &fb, tag);
        man_clear(&fb);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- the run ---- */

/* Add the blobs of m to the plan (foreign layers left out). */
static int plan(pc_copy_ctx *c, const man *m)
{
    for (size_t k = 0; !m->is_index && k < m->nrefs; k++) {
        if (k > 0 && pc_pull_desc_foreign(&m->refs[k])) {
            c->res->blobs_foreign++;
            continue;
        }
        if (pc_copy_plan_add(c, &m->refs[k]) != 0)
            return oom(c);
    }
    return 0;
}

static void platforms_str(pc_copy_result *res, const man_list *l)
{
    char one[PC_PULL_PLATFORM_STR];
    size_t off = 0;
    for (size_t i = 0; i < l->n && off < sizeof(res->platforms) - 1; i++) {
        if (l->v[i].referrer || !l->v[i].desc.has_platform)
            continue;
        int w =
            snprintf(res->platforms + off, sizeof(res->platforms) - off, "%s%s", off ? ", " : "",
                     pc_pull_platform_format(&l->v[i].desc.platform, one, sizeof(one)));
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

int pc_copy_run(const pc_copy_opts *o, pc_copy_result *res)
{
    pc_copy_ctx c = {.o = o, .res = res};
    man top;
    man_list l = {0};
    bool *keep = NULL;
    ssize_t named_i = -1; /* -1: top, else the one child chosen */
    double t0 = pc_util_mono_s();
    int rc = 0;

    memset(res, 0, sizeof(*res));
    memset(&top, 0, sizeof(top));
    pthread_mutex_init(&c.lock, NULL);
    pc_jobpool_progress_init(&c.prog, o->on_progress, o->progress_ctx);
    atomic_init(&c.stop, false);
    c.seed = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)&c;
    c.retries = o->no_retries ? 0 : o->retries ? o->retries : 5;
    if (!o->dst.u && (rc = pc_pull_layout_open(&c.dst_layout, o->dst.dir)) != 0) {
        rc = pc_copy_fail(&c, rc, PC_PULL_FAIL_LOCAL, true, "destination", "%s", pc_error_last());
        goto done;
    }
    c.mount = o->src.u && o->dst.u &&
              strcmp(pc_upstream_url(o->src.u), pc_upstream_url(o->dst.u)) == 0 &&
              strcmp(o->src.repo, o->dst.repo) != 0;

    if ((rc = fetch(&c, o->src.reference, NULL, &top)) != 0)
        goto done;
    if (top.is_index) {
        size_t n = 0;
        if (!(keep = calloc(top.nrefs ? top.nrefs : 1, sizeof(*keep)))) {
            rc = oom(&c);
            goto done;
        }
        if ((rc = choose(&c, &top, keep, &n)) != 0)
            goto done;
        for (size_t i = 0; i < top.nrefs; i++) {
            if (!keep[i])
                continue;
            man *m = list_add(&l);
            if (!m) {
                rc = oom(&c);
                goto done;
            }
            if ((rc = fetch(&c, NULL, &top.refs[i], m)) != 0) {
                l.n--;
                man_clear(m);
                goto done;
            }
            if (m->is_index) {
                rc = pc_copy_fail(&c, PC_EDIGEST, PC_PULL_FAIL_VERIFY, false, "source",
                                  "manifest %s: an index inside an index is not supported",
                                  m->desc.digest.str);
                goto done;
            }
        }
        if (o->nplatforms && n == 1) {
            named_i = 0;
        } else if (o->nplatforms && n < top.nrefs) {
            if ((rc = rewrite_index(&c, &top, keep)) != 0)
                goto done;
            res->index_rewritten = true;
        }
    }
    const man *named = named_i < 0 ? &top : &l.v[named_i];
    res->top = named->desc;
    res->top_is_index = named->is_index;
    platforms_str(res, &l);
    if (o->referrers && (rc = gather_referrers(&c, &l, named_i < 0 ? &top : NULL)) != 0)
        goto done;
    named = named_i < 0 ? &top : &l.v[named_i]; /* l.v may have moved */

    for (size_t i = 0; i < l.n; i++)
        if ((rc = plan(&c, &l.v[i])) != 0)
            goto done;
    if (named_i < 0 && (rc = plan(&c, &top)) != 0)
        goto done;
    res->bytes_total = c.prog.total_size;
    pc_jobpool_progress_plan(&c.prog);
    if (c.njobs && (rc = pc_copy_blobs(&c)) != 0)
        goto done;
    if (pc_copy_canceled(&c)) {
        rc = pc_copy_fail(&c, PC_ERR, PC_PULL_FAIL_CANCELED, false, "copy", "canceled");
        goto done;
    }

    /* Manifests: children by digest, then referrers, then the name. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < l.n; i++)
            if ((ssize_t)i != named_i && l.v[i].referrer == (pass == 1) &&
                (rc = put(&c, &l.v[i], NULL)) != 0)
                goto done;
    if ((rc = referrers_fallback(&c, &l)) != 0)
        goto done;
    if (c.dst_layout) {
        for (size_t i = 0; i < l.n; i++) {
            if (l.v[i].referrer && (rc = pc_pull_layout_tag(c.dst_layout, &l.v[i].desc, NULL))) {
                rc = pc_copy_fail(&c, rc, PC_PULL_FAIL_LOCAL, true, "index.json", "%s",
                                  pc_error_last());
                goto done;
            }
        }
        if ((rc = put(&c, named_i < 0 ? &top : &l.v[named_i], NULL)) != 0)
            goto done;
        pc_pull_desc nd = named->desc;
        nd.has_platform = false;
        if ((rc = pc_pull_layout_tag(c.dst_layout, &nd, o->dst.reference)) != 0) {
            rc =
                pc_copy_fail(&c, rc, PC_PULL_FAIL_LOCAL, true, "index.json", "%s", pc_error_last());
            goto done;
        }
    } else if ((rc = put(&c, named_i < 0 ? &top : &l.v[named_i], o->dst.reference)) != 0) {
        goto done;
    }
done:
    if (rc == 0 && c.rc != 0)
        rc = c.rc;
    res->seconds = pc_util_mono_s() - t0;
    free(c.jobs);
    free(keep);
    for (size_t i = 0; i < l.n; i++)
        man_clear(&l.v[i]);
    free(l.v);
    man_clear(&top);
    pc_pull_layout_close(c.dst_layout);
    pc_jobpool_progress_destroy(&c.prog);
    pthread_mutex_destroy(&c.lock);
    return rc;
}
