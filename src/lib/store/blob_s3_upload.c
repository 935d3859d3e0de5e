/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_s3_upload.c - the S3 blob backend's writers (uploads and temp
 * writers) on S3 multipart uploads.
 *
 * A writer keeps the bytes after its last part in memory (fewer than
 * min_part, 5 MiB). An append that brings them to min_part sends them, with
 * the appended bytes, as the next part (the multipart upload is created
 * then, on first need): by a thread of the part's own, while the next
 * bytes arrive (one part in flight; the next part, a checkpoint, the
 * commit or the end wait for it, and its failure fails them). A checkpoint writes those pending
 * bytes as a tail object uploads/<id>.tail-<n> and then the state object uploads/<id>.state (size,
 * multipart upload id, the parts with their ETags, which tail, the front end's hash state); the
 * state object's PUT is the atomic step, the previous tail is removed after it. Parts sent after
 * the last checkpoint are not in its state: a resumed writer sends its own parts under the same
 * numbers, and complete names parts explicitly.
 *
 * Commit (rule 1: visible only when verified, whole): a writer that never
 * reached min_part PUTs its bytes straight to blobs/<alg>/<hex> (one
 * request; manifests and small blobs). Else the last bytes go as the last
 * part, the multipart upload is completed on its staging key
 * (uploads/<id>.data or tmp/t-<hex>) and copied server side (CopyObject)
 * to the digest's key, which therefore appears at once and whole: one
 * CopyObject up to copy_max (5 GiB, S3's limit), else a multipart upload on
 * the digest's key of UploadPartCopy parts, visible when completed.
 * Concurrent commits of one digest each write the same bytes to the same
 * key: the last one stays (rule 3).
 */
#include "blob_s3_int.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "pcs3-upload 1"
/* Appends up to this long are copied and sent as a part in the background
 * while the next bytes arrive; longer ones are sent from the caller's
 * buffer before append returns. */
#define FLIGHT_COPY_MAX ((size_t)64 << 20)

/* The part in flight: its own bytes, sent by a detached thread of its own
 * (a crash mid-part leaves no thread to join) that says when it is done. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool busy, done;
    pc_s3 *s3;
    const char *key, *mpu;
    unsigned char *buf;
    size_t len, cap;
    int number;
    char etag[80];
    int rc;
    char msg[512];
} s3_flight;

typedef struct {
    pc_blob_wr base;
    s3_store *st;
    bool temp;
    char id[72];           /* upload id, or the temp name t-<hex> */
    char mkey[S3_KEY_MAX]; /* the multipart upload's (staging) key */
    char mpu[256];         /* its upload id; "" before the first part */
    pc_s3_part *parts;
    uint64_t *psize;
    size_t nparts, pcap;
    unsigned char *pend; /* the bytes after the last part */
    size_t pend_len, pend_cap;
    unsigned gen;         /* the tail object of the last checkpoint (0: none) */
    unsigned char *state; /* the last checkpoint's hash state */
    bool failed;
    s3_flight fl; /* not yet in parts[] until flight_wait */
} s3_wr;

static int invalid_id(void)
{
    pc_error_set("invalid upload id");
    return PC_EINVAL;
}

static void key_of(char *buf, size_t size, const char *id, const char *what)
{
    snprintf(buf, size, "uploads/%s.%s", id, what);
}

static int flight_wait(s3_wr *w);

static void wr_free(s3_wr *w)
{
    if (!w)
        return;
    flight_wait(w);
    free(w->fl.buf);
    free(w->parts);
    free(w->psize);
    free(w->pend);
    free(w->state);
    free(w);
}

static int pend_reserve(s3_wr *w, size_t more)
{
    if (w->pend_len + more <= w->pend_cap)
        return 0;
    size_t nc = w->pend_cap ? w->pend_cap : 64 * 1024;
    while (nc < w->pend_len + more)
        nc *= 2;
    unsigned char *np = realloc(w->pend, nc);
    if (!np) {
        pc_error_set("out of memory for an upload's pending bytes");
        return PC_ENOMEM;
    }
    w->pend = np;
    w->pend_cap = nc;
    return 0;
}

static int parts_reserve(s3_wr *w)
{
    if (w->nparts < w->pcap)
        return 0;
    size_t nc = w->pcap ? w->pcap * 2 : 16;
    pc_s3_part *np = realloc(w->parts, nc * sizeof(*np));
    if (np)
        w->parts = np;
    uint64_t *ns = np ? realloc(w->psize, nc * sizeof(*ns)) : NULL;
    if (!ns)
        return PC_ENOMEM;
    w->psize = ns;
    w->pcap = nc;
    return 0;
}

/* ---- parts ---- */

static void *flight_main(void *p)
{
    s3_flight *f = p;
    pthread_setname_np(pthread_self(), "pc-s3-part"); /* else its creator's name */
    f->rc = pc_s3_mpu_part(f->s3, f->key, f->mpu, f->number, f->buf, f->len, NULL, 0, f->etag,
                           sizeof(f->etag));
    if (f->rc) /* pc_error_set is per thread: handed over */
        snprintf(f->msg, sizeof(f->msg), "%s", pc_error_last());
    pthread_mutex_lock(&f->mu);
    f->done = true; /* the last touch of f: the waiter may free it next */
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Wait for the part in flight and count it in; its failure fails the
 * writer (0 when none was in flight). */
static int flight_wait(s3_wr *w)
{
    s3_flight *f = &w->fl;
    if (!f->busy)
        return 0;
    pthread_mutex_lock(&f->mu);
    while (!f->done)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    f->busy = false;
    if (f->rc) {
        w->failed = true;
        pc_error_set("%s", f->msg);
        return f->rc;
    }
    pc_s3_part *p = &w->parts[w->nparts];
    p->number = f->number;
    snprintf(p->etag, sizeof(p->etag), "%s", f->etag);
    w->psize[w->nparts++] = f->len;
    return 0;
}

/* Start sending pend then (b, blen) as the next part in the background:
 * the bytes are moved into the flight's buffer (pend gets the flight's
 * old one). Needs no part in flight. */
static int flight_start(s3_wr *w, const void *b, size_t blen)
{
    s3_flight *f = &w->fl;
    size_t need = w->pend_len + blen;
    unsigned char *ob = f->buf;
    size_t ocap = f->cap;
    f->buf = w->pend;
    f->cap = w->pend_cap;
    f->len = w->pend_len;
    w->pend = ob;
    w->pend_cap = ocap;
    w->pend_len = 0;
    if (need > f->cap) {
        unsigned char *nb = realloc(f->buf, need);
        if (!nb) {
            pc_error_set("out of memory for an upload's part");
            return PC_ENOMEM;
        }
        f->buf = nb;
        f->cap = need;
    }
    if (blen)
        memcpy(f->buf + f->len, b, blen);
    f->len = need;
    f->s3 = w->st->s3;
    f->key = w->mkey;
    f->mpu = w->mpu;
    f->number = (int)w->nparts + 1;
    f->done = false;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&th, &attr, flight_main, f);
    pthread_attr_destroy(&attr);
    if (e) {
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        pc_error_set("upload %s: cannot start a thread: %s", w->id, strerror(e));
        return PC_ERR;
    }
    f->busy = true;
    return 0;
}

/* Before a part: room in parts[], the multipart upload, the part limit. */
static int part_prepare(s3_wr *w)
{
    int rc = parts_reserve(w);
    if (!rc && !*w->mpu)
        rc = pc_s3_mpu_create(w->st->s3, w->mkey, w->mpu, sizeof(w->mpu));
    if (!rc && w->nparts >= 10000) {
        pc_error_set("upload %s: more than 10000 parts", w->id);
        rc = PC_ETOOBIG;
    }
    return rc;
}

/* Send pend then (b, blen) as the next part, now. */
static int send_part(s3_wr *w, const void *b, size_t blen)
{
    s3_store *st = w->st;
    int rc = flight_wait(w);
    if (!rc)
        rc = part_prepare(w);
    if (rc)
        return rc;
    pc_s3_part *p = &w->parts[w->nparts];
    p->number = (int)w->nparts + 1;
    if ((rc = pc_s3_mpu_part(st->s3, w->mkey, w->mpu, p->number, w->pend, w->pend_len, b, blen,
                             p->etag, sizeof(p->etag))))
        return rc;
    w->psize[w->nparts++] = w->pend_len + blen;
    w->pend_len = 0;
    return 0;
}

static int wr_append(pc_blob_wr *bw, const void *buf, size_t len)
{
    s3_wr *w = (s3_wr *)bw;
    if (w->failed) {
        pc_error_set("upload %s: an earlier append failed", w->id);
        return PC_ERR;
    }
    int rc;
    if (w->pend_len + len >= S3_MIN_PART && len > FLIGHT_COPY_MAX) {
        rc = send_part(w, buf, len);
    } else if (w->pend_len + len >= S3_MIN_PART) {
        /* the previous part must be in, this one goes while more arrives */
        if ((rc = flight_wait(w)) == 0 && (rc = part_prepare(w)) == 0)
            rc = flight_start(w, buf, len);
    } else if ((rc = pend_reserve(w, len)) == 0) {
        if (len)
            memcpy(w->pend + w->pend_len, buf, len);
        w->pend_len += len;
    }
    if (rc)
        w->failed = true;
    else
        bw->size += len;
    return rc;
}

/* Read back what is still in memory: the bytes after the last part (all of
 * a writer below min_part: manifests, small blobs). Bytes already sent as
 * parts cannot be read before the upload is completed: PC_ENOTSUP. */
static long wr_read(pc_blob_wr *bw, uint64_t offset, void *buf, size_t len)
{
    s3_wr *w = (s3_wr *)bw;
    uint64_t in_parts = bw->size - w->pend_len;
    if (offset >= bw->size)
        return 0;
    if (offset < in_parts) {
        pc_error_set("upload %s: bytes sent to S3 as parts cannot be read back", w->id);
        return PC_ENOTSUP;
    }
    size_t at = (size_t)(offset - in_parts);
    if (len > w->pend_len - at)
        len = w->pend_len - at;
    memcpy(buf, w->pend + at, len);
    return (long)len;
}

/* ---- the state object ---- */

/* PUT the state object (with extra header hdr, or NULL). */
static int state_write(s3_wr *w, unsigned gen, const void *hs, size_t hlen, const char *hdr)
{
    pc_buf b = {0};
    char key[S3_KEY_MAX];
    pc_buf_printf(&b, "%s\nsize %llu\nmpu %s\ntail %u %zu\nparts %zu\n", STATE_MAGIC,
                  (unsigned long long)w->base.size, *w->mpu ? w->mpu : "-", gen, w->pend_len,
                  w->nparts);
    for (size_t i = 0; i < w->nparts; i++)
        pc_buf_printf(&b, "%d %llu %s\n", w->parts[i].number, (unsigned long long)w->psize[i],
                      w->parts[i].etag);
    pc_buf_str(&b, "state ");
    for (size_t i = 0; i < hlen; i++)
        pc_buf_printf(&b, "%02x", ((const unsigned char *)hs)[i]);
    pc_buf_str(&b, "\n");
    if (b.nomem) {
        pc_buf_free(&b);
        return PC_ENOMEM;
    }
    key_of(key, sizeof(key), w->id, "state");
    int rc = pc_s3_put(w->st->s3, key, b.s, b.len, hdr, NULL);
    pc_buf_free(&b);
    return rc;
}

static int bad_state(const char *id)
{
    pc_error_set("upload %s: its state object is damaged; remove the upload", id);
    return PC_ERR;
}

/* Parse a state object into w (size, mpu, parts, gen, pending length, hash
 * state); *tail_len the tail object's length. */
static int state_parse(s3_wr *w, char *text, size_t *tail_len)
{
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    unsigned long long size;
    size_t n;
    char mpu[256];
    if (!line || strcmp(line, STATE_MAGIC) != 0)
        return bad_state(w->id);
    if (!(line = strtok_r(NULL, "\n", &save)) || sscanf(line, "size %llu", &size) != 1 ||
        !(line = strtok_r(NULL, "\n", &save)) || sscanf(line, "mpu %255s", mpu) != 1 ||
        !(line = strtok_r(NULL, "\n", &save)) ||
        sscanf(line, "tail %u %zu", &w->gen, tail_len) != 2 ||
        !(line = strtok_r(NULL, "\n", &save)) || sscanf(line, "parts %zu", &n) != 1 || n > 10000)
        return bad_state(w->id);
    snprintf(w->mpu, sizeof(w->mpu), "%s", strcmp(mpu, "-") == 0 ? "" : mpu);
    uint64_t sum = *tail_len;
    for (size_t i = 0; i < n; i++) {
        int num;
        unsigned long long ps;
        char etag[80];
        if (parts_reserve(w))
            return PC_ENOMEM;
        if (!(line = strtok_r(NULL, "\n", &save)) ||
            sscanf(line, "%d %llu %79s", &num, &ps, etag) != 3 || num != (int)i + 1)
            return bad_state(w->id);
        w->parts[i].number = num;
        snprintf(w->parts[i].etag, sizeof(w->parts[i].etag), "%s", etag);
        w->psize[i] = ps;
        w->nparts++;
        sum += ps;
    }
    if (!(line = strtok_r(NULL, "\n", &save)) || strncmp(line, "state ", 6) != 0 || sum != size)
        return bad_state(w->id);
    const char *hex = line + 6;
    size_t hl = strlen(hex);
    if (hl % 2 || hl / 2 > PC_BLOB_STATE_MAX || !pc_util_is_lower_hex(hex, hl))
        return bad_state(w->id);
    if (!(w->state = malloc(hl / 2 + 1)))
        return PC_ENOMEM;
    for (size_t i = 0; i < hl / 2; i++)
        w->state[i] =
            (unsigned char)(pc_util_hexval(hex[2 * i]) << 4 | pc_util_hexval(hex[2 * i + 1]));
    w->base.state = w->state;
    w->base.state_len = hl / 2;
    w->base.state_size = size;
    w->base.size = size;
    return 0;
}

typedef struct {
    pc_buf *b;
    size_t max;
} grab_ctx;

static int grab(const void *buf, size_t n, void *ctx)
{
    grab_ctx *g = ctx;
    if (g->b->len + n > g->max) {
        pc_error_set("S3 object larger than expected");
        return PC_ERR;
    }
    pc_buf_add(g->b, buf, n);
    return g->b->nomem ? PC_ENOMEM : 0;
}

/* GET a whole small object (at most max bytes) into b. */
static int get_small(s3_store *st, const char *key, size_t max, pc_buf *b, pc_s3_info *info)
{
    grab_ctx g = {b, max};
    return pc_s3_get(st->s3, key, 0, 0, NULL, grab, &g, info);
}

/* Load upload w->id's last checkpoint into w. */
static int load(s3_wr *w)
{
    char key[S3_KEY_MAX];
    pc_buf b = {0};
    size_t tail_len = 0;
    key_of(key, sizeof(key), w->id, "state");
    int rc = get_small(w->st, key, 64 * 1024, &b, NULL);
    if (rc == PC_ENOTFOUND)
        pc_error_set("upload unknown");
    if (rc == 0 && !b.s)
        rc = bad_state(w->id);
    if (rc == 0)
        rc = state_parse(w, b.s, &tail_len);
    pc_buf_free(&b);
    if (rc == 0 && tail_len) {
        char tk[S3_KEY_MAX], what[32];
        snprintf(what, sizeof(what), "tail-%u", w->gen);
        key_of(tk, sizeof(tk), w->id, what);
        pc_buf t = {0};
        rc = get_small(w->st, tk, tail_len, &t, NULL);
        if (rc == 0 && t.len != tail_len)
            rc = bad_state(w->id);
        if (rc == 0 && (rc = pend_reserve(w, tail_len)) == 0) {
            memcpy(w->pend, t.s, tail_len);
            w->pend_len = tail_len;
        }
        pc_buf_free(&t);
    }
    return rc;
}

static int wr_checkpoint(pc_blob_wr *bw, const void *hs, size_t hlen)
{
    s3_wr *w = (s3_wr *)bw;
    if (w->temp || hlen > PC_BLOB_STATE_MAX) {
        pc_error_set(w->temp ? "a temp writer has no checkpoints" : "upload state too large");
        return PC_EINVAL;
    }
    int rc = flight_wait(w);
    if (rc)
        return rc;
    if (w->failed) {
        pc_error_set("upload %s: an earlier append failed", w->id);
        return PC_ERR;
    }
    char tk[S3_KEY_MAX], what[32];
    unsigned gen = w->pend_len ? w->gen + 1 : 0;
    if (gen) {
        snprintf(what, sizeof(what), "tail-%u", gen);
        key_of(tk, sizeof(tk), w->id, what);
        rc = pc_s3_put(w->st->s3, tk, w->pend, w->pend_len, NULL, NULL);
    }
    if (rc == 0)
        rc = state_write(w, gen, hs, hlen, NULL);
    if (rc)
        return rc;
    if (w->gen && w->gen != gen) { /* the previous tail: no longer named */
        snprintf(what, sizeof(what), "tail-%u", w->gen);
        key_of(tk, sizeof(tk), w->id, what);
        pc_s3_delete(w->st->s3, tk);
    }
    w->gen = gen;
    unsigned char *copy = malloc(hlen ? hlen : 1);
    if (!copy)
        return PC_ENOMEM;
    if (hlen)
        memcpy(copy, hs, hlen);
    free(w->state);
    w->state = copy;
    bw->state = copy;
    bw->state_len = hlen;
    bw->state_size = bw->size;
    return 0;
}

/* Remove everything of the writer: its multipart uploads and objects. */
static void drop_all(s3_wr *w)
{
    char prefix[S3_KEY_MAX];
    flight_wait(w); /* its part is aborted with the upload */
    if (w->temp) {
        if (*w->mpu)
            pc_s3_mpu_abort(w->st->s3, w->mkey, w->mpu);
        return;
    }
    snprintf(prefix, sizeof(prefix), "uploads/%s.", w->id);
    pc_blob_s3_purge(w->st, prefix, NULL);
}

static void wr_cancel(pc_blob_wr *bw)
{
    s3_wr *w = (s3_wr *)bw;
    drop_all(w);
    wr_free(w);
}

static void wr_close(pc_blob_wr *bw)
{
    s3_wr *w = (s3_wr *)bw;
    if (w->temp)
        drop_all(w);
    wr_free(w);
}

/* Copy the completed staging object src (size bytes) to the blob's key dst
 * server side: one CopyObject up to copy_max, else a multipart upload on
 * dst of UploadPartCopy parts of copy_max bytes, visible only once
 * completed (rule 1) and aborted on failure. */
static int publish_copy(s3_store *st, const char *src, const char *dst, uint64_t size)
{
    if (size <= st->copy_max)
        return pc_s3_copy(st->s3, src, dst, NULL);
    uint64_t n = (size + st->copy_max - 1) / st->copy_max;
    if (n > 10000) {
        pc_error_set("blob of %llu bytes: more than 10000 copied parts", (unsigned long long)size);
        return PC_ETOOBIG;
    }
    pc_s3_part *parts = calloc((size_t)n, sizeof(*parts));
    char id[256];
    int rc = parts ? pc_s3_mpu_create(st->s3, dst, id, sizeof(id)) : PC_ENOMEM;
    if (rc) {
        free(parts);
        return rc;
    }
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        uint64_t first = i * st->copy_max;
        uint64_t last = (first + st->copy_max < size ? first + st->copy_max : size) - 1;
        parts[i].number = (int)i + 1;
        rc = pc_s3_mpu_copy_part(st->s3, src, first, last, dst, id, parts[i].number, parts[i].etag,
                                 sizeof(parts[i].etag));
    }
    if (rc == 0)
        rc = pc_s3_mpu_complete(st->s3, dst, id, parts, (size_t)n, NULL);
    if (rc)
        pc_s3_mpu_abort(st->s3, dst, id);
    free(parts);
    return rc;
}

static int wr_commit(pc_blob_wr *bw, const pc_digest *d)
{
    s3_wr *w = (s3_wr *)bw;
    s3_store *st = w->st;
    char key[S3_KEY_MAX];
    int rc = pc_blob_s3_blob_key(d, key, sizeof(key));
    int frc = flight_wait(w);
    if (!rc)
        rc = frc;
    if (!rc && w->failed) {
        pc_error_set("upload %s: an earlier append failed", w->id);
        rc = PC_ERR;
    }
    if (!rc && !w->nparts) {
        rc = pc_s3_put(st->s3, key, w->pend, w->pend_len, NULL, NULL);
    } else if (!rc) {
        if (w->pend_len)
            rc = send_part(w, NULL, 0);
        if (!rc)
            rc = pc_s3_mpu_complete(st->s3, w->mkey, w->mpu, w->parts, w->nparts, NULL);
        if (!rc) {
            *w->mpu = '\0'; /* completed: nothing to abort */
            rc = publish_copy(st, w->mkey, key, bw->size);
            pc_s3_delete(st->s3, w->mkey);
        }
    }
    if (rc) {
        wr_close(bw);
        return rc;
    }
    drop_all(w);
    wr_free(w);
    return 0;
}

int pc_blob_s3_writer(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out)
{
    s3_store *st = s3_of(be);
    if (id && !pc_upload_id_valid(id))
        return invalid_id();
    s3_wr *w = calloc(1, sizeof(*w));
    if (!w)
        return PC_ENOMEM;
    w->st = st;
    int rc = 0;
    if (!id) {
        char hex[33];
        w->temp = true;
        if ((rc = pc_util_random_hex(hex, 16, "a temp writer's name")))
            goto fail;
        snprintf(w->id, sizeof(w->id), "t-%s", hex);
        snprintf(w->mkey, sizeof(w->mkey), "tmp/%s", w->id);
    } else {
        snprintf(w->id, sizeof(w->id), "%s", id);
        key_of(w->mkey, sizeof(w->mkey), id, "data");
        if (create) {
            /* one conditional PUT: created, or 412 when it exists */
            rc = state_write(w, 0, "", 0, "If-None-Match: *");
            if (rc == PC_ECONFLICT) {
                pc_error_set("upload %s exists", id);
                rc = PC_EEXISTS;
            }
        } else {
            rc = load(w);
        }
        if (rc)
            goto fail;
    }
    w->base.append = wr_append;
    w->base.checkpoint = wr_checkpoint;
    w->base.commit = wr_commit;
    w->base.cancel = wr_cancel;
    w->base.close = wr_close;
    w->base.read = wr_read;
    *out = &w->base;
    return 0;
fail:
    wr_free(w);
    return rc;
}

/* ---- uploads from outside a writer ---- */

int pc_blob_s3_upload_stat(pc_blob_backend *be, const char *id, uint64_t *size)
{
    if (!pc_upload_id_valid(id))
        return invalid_id();
    s3_wr *w = calloc(1, sizeof(*w));
    if (!w)
        return PC_ENOMEM;
    w->st = s3_of(be);
    snprintf(w->id, sizeof(w->id), "%s", id);
    char key[S3_KEY_MAX];
    pc_buf b = {0};
    size_t tail_len;
    key_of(key, sizeof(key), id, "state");
    int rc = get_small(w->st, key, 64 * 1024, &b, NULL);
    if (rc == PC_ENOTFOUND)
        pc_error_set("upload unknown");
    if (rc == 0 && !b.s)
        rc = bad_state(id);
    if (rc == 0 && (rc = state_parse(w, b.s, &tail_len)) == 0)
        *size = w->base.size;
    pc_buf_free(&b);
    wr_free(w);
    return rc;
}

int pc_blob_s3_upload_remove(pc_blob_backend *be, const char *id, long min_age_s)
{
    s3_store *st = s3_of(be);
    if (!pc_upload_id_valid(id))
        return invalid_id();
    char key[S3_KEY_MAX], prefix[S3_KEY_MAX];
    pc_s3_info info = {0};
    key_of(key, sizeof(key), id, "state");
    int rc = pc_s3_head(st->s3, key, &info);
    if (rc == PC_ENOTFOUND)
        pc_error_set("upload unknown");
    if (rc)
        return rc;
    if (min_age_s > 0 && pc_blob_s3_age(info.mtime) < min_age_s) {
        pc_error_set("upload %s was written %lds ago", id, pc_blob_s3_age(info.mtime));
        return PC_EEXISTS;
    }
    snprintf(prefix, sizeof(prefix), "uploads/%s.", id);
    return pc_blob_s3_purge(st, prefix, NULL);
}

typedef struct {
    pc_blob_backend *be;
    int (*cb)(const char *id, uint64_t size, long age_s, void *ctx);
    void *ctx;
} ulist_ctx;

static int ulist_one(const pc_s3_obj *o, void *p)
{
    ulist_ctx *c = p;
    const char *name = o->key + 8; /* after "uploads/" */
    size_t n = strlen(name);
    char id[72];
    if (n < 7 || n - 6 >= sizeof(id) || strcmp(name + n - 6, ".state") != 0)
        return 0;
    memcpy(id, name, n - 6);
    id[n - 6] = '\0';
    uint64_t size;
    if (!pc_upload_id_valid(id) || pc_blob_s3_upload_stat(c->be, id, &size) != 0)
        return 0; /* gone meanwhile, or not ours */
    return c->cb(id, size, pc_blob_s3_age(o->mtime), c->ctx);
}

int pc_blob_s3_upload_list(pc_blob_backend *be,
                           int (*cb)(const char *id, uint64_t size, long age_s, void *ctx),
                           void *ctx)
{
    ulist_ctx c = {be, cb, ctx};
    return pc_s3_list(s3_of(be)->s3, "uploads/", ulist_one, &c);
}
