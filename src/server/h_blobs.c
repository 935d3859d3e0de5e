/*
 * h_blobs.c - blob GET/HEAD (with Range, sent with sendfile) and DELETE.
 * A whole blob is hashed while it streams: when its bytes do not match its
 * digest the last block is never sent (the connection is cut, so no client
 * gets a complete wrong body) and the file is taken out of service. Once a
 * stored version has hashed right, this process remembers it (verified.c:
 * a file by digest, inode, size and modification time, an object by the
 * identity its reader reports, S3's ETag; a replaced one is hashed again)
 * and later GETs go out unhashed (files with sendfile), so hot layers cost
 * no hashing; damage done to a file after that is found by `pullcache fsck`
 * or the next start. With storage.blobs.redirect a GET is answered with 307
 * to the backend's presigned URL instead (HEAD stays here).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "metrics.h"
#include "range.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes per read of a hashed blob response (MHD's buffer for it). */
#define HASHED_BLOCK (64 * 1024)
/* Bytes per read of a blob streamed from a backend without files. */
#define READ_BLOCK (64 * 1024)

/* Parse req->ref as a digest into d, answering DIGEST_INVALID on failure.
 * Returns 0 when parsed; otherwise the MHD result to return. */
static int parse_digest(pc_req *req, pc_digest *d, int *mhd)
{
    if (pc_digest_parse(d, req->ref) == 0)
        return 0;
    *mhd = pc_req_error(req, 400, "DIGEST_INVALID", pc_error_last());
    return -1;
}

int pc_h_blob_get(pc_req *req)
{
    pc_digest d;
    pc_mirror_target t;
    int mhd;
    if (parse_digest(req, &d, &mhd))
        return mhd;
    switch (pc_req_mirror_route(req, &t)) {
    case 0:
        return pc_h_mirror_blob(req, &t, &d);
    case PC_EINVAL:
        return pc_req_error(req, 400, "NAME_INVALID", pc_error_last());
    default:
        break;
    }
    if (pc_send_blob_redirect(req, req->name, &d, &mhd))
        return mhd;
    return pc_send_stored_blob(req, req->name, &d);
}

/* ---- opening a blob off the HTTP thread (remote backends) ---- */

typedef struct {
    char repo[PC_NAME_MAX + 1];
    pc_digest d;
    pc_blob_rd *r;
    int rc;
    char msg[512]; /* rc's message: pc_error_set is per thread */
} open_job;

static void open_job_free(void *p)
{
    open_job *j = p;
    if (j->r)
        j->r->close(j->r);
    free(j);
}

/* A HEAD's reader: the size only (its response has no body, so nothing
 * reads it): the store's HEAD instead of starting a GET of the bytes. */
static long head_read(pc_blob_rd *r, uint64_t offset, void *buf, size_t len)
{
    (void)r, (void)offset, (void)buf, (void)len;
    pc_error_set("a HEAD's blob has no bytes to read");
    return PC_ENOTSUP;
}

static void head_close(pc_blob_rd *r)
{
    free(r);
}

static int head_open(pc_registry *reg, const char *repo, const pc_digest *d, pc_blob_rd **out)
{
    uint64_t size = 0;
    int rc = pc_registry_blob_stat(reg, repo, d, &size); /* also checks the recorded size */
    if (rc)
        return rc;
    pc_blob_rd *r = calloc(1, sizeof(*r));
    if (!r)
        return PC_ENOMEM;
    r->size = size;
    r->read = head_read;
    r->close = head_close;
    *out = r;
    return 0;
}

static void open_work(pc_req *req)
{
    open_job *j = req->job;
    if (strcmp(req->method, "HEAD") == 0)
        j->rc = head_open(req->srv->reg, j->repo, &j->d, &j->r);
    else
        j->rc = pc_registry_blob_open(req->srv->reg, j->repo, &j->d, &j->r);
    if (j->rc)
        snprintf(j->msg, sizeof(j->msg), "%s", pc_error_last());
}

static int open_finish(pc_req *req)
{
    open_job *j = req->job;
    if (j->rc) {
        pc_error_set("%s", j->msg);
        return pc_req_fail(req, j->rc);
    }
    pc_blob_rd *r = j->r;
    j->r = NULL; /* pc_send_blob's now */
    return pc_send_blob(req, &j->d, r);
}

int pc_send_stored_blob(pc_req *req, const char *repo, const pc_digest *d)
{
    pc_registry *reg = req->srv->reg;
    if (pc_registry_blobs_remote(reg) && strlen(repo) < sizeof(((open_job *)0)->repo)) {
        open_job *j = calloc(1, sizeof(*j));
        if (!j)
            return pc_req_fail(req, PC_ENOMEM);
        snprintf(j->repo, sizeof(j->repo), "%s", repo);
        j->d = *d;
        if (req->job && req->job_free) /* a mirror job that found the blob stored */
            req->job_free(req->job);
        req->job = j;
        req->job_free = open_job_free;
        return pc_req_async(req, open_work, open_finish);
    }
    pc_blob_rd *r = NULL;
    int rc = pc_registry_blob_open(reg, repo, d, &r);
    if (rc)
        return pc_req_fail(req, rc);
    return pc_send_blob(req, d, r);
}

bool pc_send_blob_redirect(pc_req *req, const char *repo, const pc_digest *d, int *mhd)
{
    if (strcmp(req->method, "GET") != 0)
        return false; /* HEAD: answered here, one HEAD to the store at most */
    char url[PC_BLOB_URL_MAX];
    uint64_t size = 0;
    int rc = pc_registry_blob_url(req->srv->reg, repo, d, url, sizeof(url), &size);
    if (rc == PC_ENOTSUP)
        return false;
    if (rc) {
        *mhd = pc_req_fail(req, rc);
        return true;
    }
    pc_metrics_add("pullcache_blob_redirects_total", "", 1);
    /* a Range is the client's to send again: the store honours it */
    *mhd = pc_req_send(req, 307, NULL, "", 0, "Location", url, "Docker-Content-Digest", d->str,
                       "Cache-Control", "no-store", NULL);
    return true;
}

/* ---- files: hashed until they hashed right once, then sendfile ---- */

/* Whether fd is a file that already hashed to d in this process. */
static bool file_verified(int fd, const pc_digest *d)
{
    char ident[96];
    uint64_t size;
    return pc_verified_file_ident(fd, ident, sizeof(ident), &size) == 0 &&
           pc_verified_has(d, ident, size);
}

static void file_verified_add(int fd, const pc_digest *d)
{
    char ident[96];
    uint64_t size;
    if (pc_verified_file_ident(fd, ident, sizeof(ident), &size) == 0)
        pc_verified_add(d, ident, size);
}

typedef struct {
    int fd;
    uint64_t size;
    pc_digest d;
    pc_hasher *h;
    pc_registry *reg;
} hashed_body;

static void hashed_free(void *cls)
{
    hashed_body *b = cls;
    close(b->fd);
    pc_hasher_free(b->h);
    free(b);
}

/* Hash one block of blob d about to go out; with the last one, check the
 * digest: a mismatch takes the blob out of service. false: do not send it. */
static bool hash_block(pc_hasher *h, const pc_digest *d, pc_registry *reg, const char *buf,
                       size_t n, bool last)
{
    pc_digest got;
    if (pc_hasher_update(h, buf, n) != 0 || (last && pc_hasher_final(h, &got) != 0))
        return false;
    if (last && !pc_digest_equal(&got, d)) {
        char why[PC_DIGEST_MAX + 32];
        snprintf(why, sizeof(why), "its bytes hash to %s", got.str);
        pc_registry_blob_damaged(reg, d, why);
        return false;
    }
    return true;
}

/* MHD asks for the blocks in order: hash each before it goes out, and
 * check the digest before handing over the last one. */
static ssize_t hashed_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    hashed_body *b = cls;
    if (pos >= b->size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t want = b->size - pos < max ? (size_t)(b->size - pos) : max;
    ssize_t n;
    do
        n = pread(b->fd, buf, want, (off_t)pos);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        pc_log(PC_LOG_ERROR, "blob %s: read at %" PRIu64 " failed: %s", b->d.str, pos,
               n < 0 ? strerror(errno) : "the file shrank");
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    bool last = pos + (uint64_t)n == b->size;
    if (!hash_block(b->h, &b->d, b->reg, buf, (size_t)n, last))
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the client sees a cut body */
    if (last)
        file_verified_add(b->fd, &b->d);
    return n;
}

/* A response that streams the whole of fd (size bytes) hashed; takes fd
 * (also on failure). NULL when out of memory. */
static struct MHD_Response *hashed_response(pc_req *req, const pc_digest *d, int fd, uint64_t size)
{
    hashed_body *b = calloc(1, sizeof(*b));
    if (!b || pc_hasher_new(&b->h, d->alg) != 0) {
        free(b);
        close(fd);
        return NULL;
    }
    b->fd = fd;
    b->size = size;
    b->d = *d;
    b->reg = req->srv->reg;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(size, HASHED_BLOCK, hashed_read, b, hashed_free);
    if (!resp)
        hashed_free(b);
    return resp;
}

/* ---- backends without files: streamed through their read ---- */

typedef struct {
    pc_blob_rd *r;
    uint64_t start, len;
    pc_digest d;
    pc_hasher *h; /* a whole GET: hashed as it goes out, checked before its last block */
    pc_registry *reg;
    struct MHD_Connection *conn; /* suspended while the backend's bytes are on their way */
    pc_blob_waiter waiter;
} read_body;

static void read_suspend(void *ctx)
{
    read_body *b = ctx;
    MHD_suspend_connection(b->conn);
}

static void read_resume(void *ctx)
{
    read_body *b = ctx;
    MHD_resume_connection(b->conn);
}

static void read_free(void *cls)
{
    read_body *b = cls;
    b->r->close(b->r);
    pc_hasher_free(b->h);
    free(b);
}

/* End the client's transfer short of Content-Length. The socket is shut
 * down here as well: libmicrohttpd 0.9.75 does not always close a
 * connection that was suspended and resumed after END_WITH_ERROR (see
 * h_mirror.c's stream_read). */
static ssize_t read_cut(read_body *b)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(b->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        shutdown(ci->connect_fd, SHUT_RDWR);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static ssize_t read_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    read_body *b = cls;
    if (pos >= b->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t want = b->len - pos < max ? (size_t)(b->len - pos) : max;
    /* an object store's bytes may be on their way: the connection is
     * suspended meanwhile, so no HTTP thread waits for them */
    long n = b->r->read_nowait ? b->r->read_nowait(b->r, b->start + pos, buf, want, &b->waiter)
                               : b->r->read(b->r, b->start + pos, buf, want);
    if (n == 0 && b->r->read_nowait)
        return 0; /* suspended; resumed when bytes are ready */
    if (n <= 0) {
        pc_log(PC_LOG_ERROR, "blob %s: read at %" PRIu64 " failed: %s", b->d.str, b->start + pos,
               n < 0 ? pc_error_last() : "the blob shrank");
        return read_cut(b);
    }
    bool last = pos + (uint64_t)n == b->len;
    if (b->h && !hash_block(b->h, &b->d, b->reg, buf, (size_t)n, last))
        return read_cut(b);
    if (b->h && last) /* hashed right: this version goes out unhashed next time */
        pc_verified_add(&b->d, b->r->ident, b->r->size);
    return (ssize_t)n;
}

/* A response that streams len bytes of r from start; takes r (also on
 * failure). NULL when out of memory. */
static struct MHD_Response *read_response(pc_req *req, const pc_digest *d, pc_blob_rd *r,
                                          uint64_t start, uint64_t len, bool hash)
{
    read_body *b = calloc(1, sizeof(*b));
    if (!b || (hash && pc_hasher_new(&b->h, d->alg) != 0)) {
        free(b);
        r->close(r);
        return NULL;
    }
    b->r = r;
    b->start = start;
    b->len = len;
    b->d = *d;
    b->reg = req->srv->reg;
    b->conn = req->conn;
    b->waiter = (pc_blob_waiter){.suspend = read_suspend, .resume = read_resume, .ctx = b};
    struct MHD_Response *resp =
        MHD_create_response_from_callback(len, READ_BLOCK, read_read, b, read_free);
    if (!resp)
        read_free(b);
    return resp;
}

int pc_send_blob(pc_req *req, const pc_digest *dp, pc_blob_rd *r)
{
    pc_digest d = *dp;
    int rc;

    uint64_t start = 0, end = r->size ? r->size - 1 : 0, len = r->size;
    unsigned status = 200;
    const char *range = pc_req_header(req, "Range");
    char content_range[96] = "";
    if (range) {
        rc = pc_range_parse(range, r->size, &start, &end);
        if (rc == PC_ERANGE) {
            char cr[64];
            snprintf(cr, sizeof(cr), "bytes */%" PRIu64, r->size);
            r->close(r);
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            MHD_add_response_header(resp, "Content-Range", cr);
            MHD_add_response_header(resp, "Docker-Content-Digest", d.str);
            return pc_req_queue(req, 416, resp);
        }
        if (rc == 0) {
            status = 206;
            len = end - start + 1;
            snprintf(content_range, sizeof(content_range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                     start, end, r->size);
        }
        /* a malformed Range is ignored: the whole blob (RFC 9110) */
    }

    struct MHD_Response *resp;
    bool whole_get = status == 200 && len > 0 && strcmp(req->method, "GET") == 0;
    int fd = -1;
    if ((rc = pc_blob_rd_fd(r, &fd)) == PC_ENOTSUP) {
        /* no file (memory, object stores): stream through read, hashed
         * unless this version (r->ident) hashed right before */
        bool hash = whole_get && !pc_verified_has(&d, r->ident, r->size);
        resp = read_response(req, &d, r, start, len, hash); /* takes r */
    } else {
        r->close(r);
        if (rc) {
            resp = NULL;
        } else if (whole_get && !file_verified(fd, &d)) {
            resp = hashed_response(req, &d, fd, len); /* takes the fd */
        } else {
            resp = MHD_create_response_from_fd_at_offset64(len, fd, (int64_t)start);
            if (!resp)
                close(fd); /* else MHD closes it */
        }
    }
    if (!resp)
        return pc_req_fail(req, PC_ERR);
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(resp, "Docker-Content-Digest", d.str);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    MHD_add_response_header(resp, "Cache-Control", "max-age=31536000");
    char etag[PC_DIGEST_MAX + 2];
    snprintf(etag, sizeof(etag), "\"%s\"", d.str);
    MHD_add_response_header(resp, "ETag", etag);
    if (content_range[0])
        MHD_add_response_header(resp, "Content-Range", content_range);
    req->resp_bytes = strcmp(req->method, "HEAD") == 0 ? 0 : len;
    return pc_req_queue(req, status, resp);
}

int pc_h_blob_delete(pc_req *req)
{
    pc_digest d;
    int mhd;
    if (parse_digest(req, &d, &mhd))
        return mhd;
    int rc = pc_registry_blob_delete(req->srv->reg, req->name, &d);
    if (rc)
        return pc_req_fail(req, rc);
    return pc_req_send(req, 202, NULL, "", 0, "Docker-Content-Digest", d.str, NULL);
}
