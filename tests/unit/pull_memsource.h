/*
 * pull_memsource.h - an in-process pc_pull_source for the pull and loadgen
 * unit tests: manifests by tag or digest and blobs from memory, with the
 * faults the tests need (wrong bytes, a wrong Docker-Content-Digest, a
 * Docker-Hub-like budget of manifest GETs followed by 429). Header-only:
 * each test program includes it once.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_TEST_PULL_MEMSOURCE_H
#define PC_TEST_PULL_MEMSOURCE_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest.h"
#include "pull.h"

#define MS_MAX 32

typedef struct {
    char ref[PC_DIGEST_MAX];
    char *body;
    size_t len;
    const char *media_type;
    char sent_digest[PC_DIGEST_MAX]; /* Docker-Content-Digest to send; "" = the right one */
} ms_manifest;

typedef struct {
    pc_digest d;
    unsigned char *data;
    size_t len;
    bool wrong;             /* send every byte inverted */
    int64_t claimed_length; /* Content-Length to send; -1 = the real one */
} ms_blob;

typedef struct {
    ms_manifest m[MS_MAX];
    size_t nm;
    ms_blob b[MS_MAX];
    size_t nb;
    pthread_mutex_t lock;
    int budget; /* manifest GETs left before 429; -1 = unlimited */
    int limit;  /* for the ratelimit headers */
    int manifest_gets;
    int blob_gets;
    unsigned chunk_delay_us;      /* sleep before each blob chunk (slow registry) */
    unsigned manifest_delay_us;   /* sleep in each manifest GET */
    int in_flight, max_in_flight; /* manifest GETs at once */
} memsrc;

static void ms_init(memsrc *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->budget = -1;
    s->limit = 100;
}

static void ms_free(memsrc *s)
{
    for (size_t i = 0; i < s->nm; i++)
        free(s->m[i].body);
    for (size_t i = 0; i < s->nb; i++)
        free(s->b[i].data);
    pthread_mutex_destroy(&s->lock);
}

/* Add a blob; its digest into *d (may be NULL). */
static ms_blob *ms_add_blob(memsrc *s, const void *data, size_t len, pc_digest *d)
{
    ms_blob *b = &s->b[s->nb++];
    b->data = malloc(len ? len : 1);
    memcpy(b->data, data, len);
    b->len = len;
    b->claimed_length = -1;
    pc_digest_buffer(&b->d, PC_DIGEST_SHA256, data, len);
    if (d)
        *d = b->d;
    return b;
}

/* Add a manifest under its digest and, when tag is not NULL, the tag. */
static void ms_add_manifest(memsrc *s, const char *tag, const char *body, const char *mt,
                            pc_digest *d)
{
    pc_digest dg;
    pc_digest_buffer(&dg, PC_DIGEST_SHA256, body, strlen(body));
    for (int k = 0; k < 2; k++) {
        const char *ref = k == 0 ? dg.str : tag;
        if (!ref)
            continue;
        ms_manifest *m = &s->m[s->nm++];
        snprintf(m->ref, sizeof(m->ref), "%s", ref);
        m->body = strdup(body);
        m->len = strlen(body);
        m->media_type = mt;
    }
    if (d)
        *d = dg;
}

static ms_manifest *ms_find_manifest(memsrc *s, const char *ref)
{
    for (size_t i = 0; i < s->nm; i++)
        if (strcmp(s->m[i].ref, ref) == 0)
            return &s->m[i];
    return NULL;
}

static void ms_resp_init(pc_upstream_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
}

static void ms_error(pc_upstream_resp *r, long status, pc_up_class cls, const char *body)
{
    r->status = status;
    r->cls = cls;
    r->body = strdup(body);
    r->body_len = strlen(body);
    pc_pull_registry_code(body, strlen(body), r->error_message, sizeof(r->error_message));
}

static int ms_manifest_get(void *ctx, const char *repo, const char *reference,
                           pc_upstream_resp *out)
{
    memsrc *s = ctx;
    ms_resp_init(out);
    pthread_mutex_lock(&s->lock);
    if (++s->in_flight > s->max_in_flight)
        s->max_in_flight = s->in_flight;
    pthread_mutex_unlock(&s->lock);
    if (s->manifest_delay_us)
        usleep(s->manifest_delay_us);
    pthread_mutex_lock(&s->lock);
    s->in_flight--;
    s->manifest_gets++;
    bool limited = s->budget == 0;
    if (s->budget > 0)
        s->budget--;
    if (s->budget >= 0) {
        snprintf(out->ratelimit_limit, sizeof(out->ratelimit_limit), "%d;w=21600", s->limit);
        snprintf(out->ratelimit_remaining, sizeof(out->ratelimit_remaining), "%d;w=21600",
                 s->budget);
    }
    pthread_mutex_unlock(&s->lock);
    if (limited) {
        ms_error(out, 429, PC_UP_TOO_MANY,
                 "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"You have reached "
                 "your pull rate limit.\"}]}");
        snprintf(out->error_message, sizeof(out->error_message),
                 "You have reached your pull rate limit.");
        return 0;
    }
    ms_manifest *m = ms_find_manifest(s, reference);
    if (!m) {
        ms_error(out, 404, PC_UP_NOT_FOUND,
                 "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}");
        return 0;
    }
    out->status = 200;
    out->cls = PC_UP_OK;
    out->body = malloc(m->len);
    memcpy(out->body, m->body, m->len);
    out->body_len = m->len;
    out->content_length = (int64_t)m->len;
    snprintf(out->media_type, sizeof(out->media_type), "%s", m->media_type);
    if (m->sent_digest[0]) {
        snprintf(out->digest, sizeof(out->digest), "%s", m->sent_digest);
    } else {
        pc_digest d;
        pc_digest_buffer(&d, PC_DIGEST_SHA256, m->body, m->len);
        snprintf(out->digest, sizeof(out->digest), "%s", d.str);
    }
    return 0;
}

static int ms_blob_get(void *ctx, const char *repo, const pc_digest *d,
                       pc_upstream_start_cb on_start, pc_upstream_data_cb on_data, void *cb_ctx,
                       pc_upstream_resp *out)
{
    memsrc *s = ctx;
    ms_blob *b = NULL;
    ms_resp_init(out);
    pthread_mutex_lock(&s->lock);
    s->blob_gets++;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->nb; i++)
        if (pc_digest_equal(&s->b[i].d, d))
            b = &s->b[i];
    if (!b) {
        ms_error(out, 404, PC_UP_NOT_FOUND,
                 "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown\"}]}");
        return 0;
    }
    out->status = 200;
    out->content_length = b->claimed_length >= 0 ? b->claimed_length : (int64_t)b->len;
    if (on_start && on_start(out, cb_ctx) != 0) {
        out->cls = PC_UP_ABORTED;
        return 0;
    }
    unsigned char chunk[1000];
    for (size_t off = 0; off < b->len; off += sizeof(chunk)) {
        size_t n = b->len - off < sizeof(chunk) ? b->len - off : sizeof(chunk);
        memcpy(chunk, b->data + off, n);
        if (b->wrong)
            for (size_t k = 0; k < n; k++)
                chunk[k] ^= 0xFF;
        if (s->chunk_delay_us)
            usleep(s->chunk_delay_us);
        if (on_data(chunk, n, cb_ctx) != 0) {
            out->cls = PC_UP_ABORTED;
            return 0;
        }
    }
    out->cls = PC_UP_OK;
    return 0;
}

static void ms_source(memsrc *s, pc_pull_source *src)
{
    src->manifest = ms_manifest_get;
    src->blob = ms_blob_get;
    src->ctx = s;
}

/* A test image: a config naming platform os/arch[/variant] and two layers of
 * seeded bytes; its manifest (OCI) is added under tag (may be NULL). The
 * manifest's digest and size into *d, *size; the blob bytes into *bytes. */
static void ms_add_image(memsrc *s, const char *tag, const char *os, const char *arch,
                         const char *variant, int seed, pc_digest *d, size_t *size, uint64_t *bytes)
{
    char cfg[256], man[2048];
    unsigned char layer[2][5000];
    pc_digest cd, ld[2];
    snprintf(cfg, sizeof(cfg),
             "{\"architecture\":\"%s\",\"os\":\"%s\"%s%s%s,\"rootfs\":{\"type\":\"layers\"}}", arch,
             os, variant ? ",\"variant\":\"" : "", variant ? variant : "", variant ? "\"" : "");
    ms_add_blob(s, cfg, strlen(cfg), &cd);
    for (int l = 0; l < 2; l++) {
        /* the first layer is the same in every image (shared) */
        size_t sd = l == 0 ? 0 : (size_t)seed + 1;
        for (size_t k = 0; k < sizeof(layer[l]); k++)
            layer[l][k] = (unsigned char)((k * 31 + sd * 7 + (size_t)l) & 0xFF);
        ms_add_blob(s, layer[l], l == 0 ? 3000 : sizeof(layer[l]), &ld[l]);
    }
    snprintf(man, sizeof(man),
             "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
             "\"config\":{\"mediaType\":\"" PC_MT_OCI_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},"
             "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
             "\"digest\":\"%s\",\"size\":3000},"
             "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
             "\"size\":%zu}]}",
             cd.str, strlen(cfg), ld[0].str, ld[1].str, sizeof(layer[1]));
    ms_add_manifest(s, tag, man, PC_MT_OCI_MANIFEST, d);
    if (size)
        *size = strlen(man);
    if (bytes)
        *bytes = strlen(cfg) + 3000 + sizeof(layer[1]);
}

#endif
