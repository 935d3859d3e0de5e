/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/spool.c - the local spool of an in-flight fetch (store/spool.h).
 *
 * One file descriptor on a nameless file: the writer pwrite()s at the end,
 * readers pread() below the shown limit. A mutex and a condition variable
 * guard the counters and the state; the file I/O runs unlocked (bytes
 * below the limit never change).
 */
#include "spool.h"
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { S_GROWING, S_VERIFIED, S_FAILED };

struct pc_spool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned refs;
    int fd;
    int state;
    int fail_code;
    uint64_t received;
    pc_digest want;
    pc_hash *h; /* the writer's alone */
    pc_spool_opts o;
};

/* A nameless file in dir. */
static int open_nameless(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/spool-XXXXXX", dir) >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

int pc_spool_create(const char *dir, const pc_digest *want, const pc_spool_opts *o, pc_spool **out)
{
    pc_spool *s = calloc(1, sizeof(*s));
    if (!s)
        return PC_ENOMEM;
    int rc = pc_hash_new(&s->h, want->alg);
    if (rc) {
        free(s);
        return rc;
    }
    if ((s->fd = open_nameless(dir)) < 0) {
        int e = errno;
        pc_error_set("spool file in %s: %s", dir, strerror(e));
        pc_hash_free(s->h);
        free(s);
        return pc_result_from_errno(e);
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->refs = 1;
    s->want = *want;
    if (o)
        s->o = *o;
    *out = s;
    return 0;
}

void pc_spool_ref(pc_spool *s)
{
    pthread_mutex_lock(&s->mu);
    s->refs++;
    pthread_mutex_unlock(&s->mu);
}

void pc_spool_unref(pc_spool *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    unsigned left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left)
        return;
    close(s->fd);
    pc_hash_free(s->h);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void notify(pc_spool *s)
{
    pthread_cond_broadcast(&s->cv);
    if (s->o.notify)
        s->o.notify(s->o.ctx);
}

/* End the spool (under no lock). */
static void end(pc_spool *s, int state, int code)
{
    pthread_mutex_lock(&s->mu);
    if (s->state == S_GROWING) {
        s->state = state;
        s->fail_code = code;
    }
    pthread_mutex_unlock(&s->mu);
    notify(s);
}

int pc_spool_append(pc_spool *s, const void *buf, size_t len)
{
    pthread_mutex_lock(&s->mu);
    int state = s->state;
    uint64_t off = s->received;
    pthread_mutex_unlock(&s->mu);
    if (state != S_GROWING) {
        pc_error_set("spool has ended");
        return PC_EINVAL;
    }
    int rc = pc_hash_update(s->h, buf, len);
    const char *p = buf;
    size_t left = len;
    while (rc == 0 && left) {
        ssize_t n = pwrite(s->fd, p, left, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            pc_error_set("write spool: %s", strerror(e));
            rc = pc_result_from_errno(e);
            break;
        }
        p += n;
        off += (uint64_t)n;
        left -= (size_t)n;
    }
    if (rc) {
        end(s, S_FAILED, rc);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    s->received = off;
    pthread_mutex_unlock(&s->mu);
    notify(s);
    return 0;
}

int pc_spool_finish(pc_spool *s)
{
    pc_digest got;
    int rc = pc_hash_peek(s->h, &got);
    if (rc == 0 && !pc_digest_equal(&got, &s->want)) {
        pc_error_set("spooled content is %s, not %s", got.str, s->want.str);
        rc = PC_EDIGEST;
    }
    end(s, rc ? S_FAILED : S_VERIFIED, rc);
    return rc;
}

void pc_spool_fail(pc_spool *s, int code)
{
    end(s, S_FAILED, code < 0 ? code : PC_ERR);
}

/* Under s->mu. */
static uint64_t shown(const pc_spool *s)
{
    if (s->state == S_VERIFIED)
        return s->received;
    return s->received > s->o.holdback ? s->received - s->o.holdback : 0;
}

long pc_spool_read(pc_spool *s, uint64_t off, void *buf, size_t len)
{
    pthread_mutex_lock(&s->mu);
    int state = s->state, code = s->fail_code;
    uint64_t limit = shown(s);
    pthread_mutex_unlock(&s->mu);
    if (state == S_FAILED)
        return code;
    if (off >= limit)
        return state == S_VERIFIED ? PC_ENOTFOUND : 0;
    if (!len)
        return 0;
    if (len > limit - off)
        len = (size_t)(limit - off);
    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    for (;;) {
        ssize_t n = pread(s->fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            pc_error_set("read spool: %s", n < 0 ? strerror(errno) : "file shrank");
            return PC_ERR;
        }
        return (long)n;
    }
}

void pc_spool_wait(pc_spool *s, uint64_t off)
{
    pthread_mutex_lock(&s->mu);
    while (s->state == S_GROWING && shown(s) <= off)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

uint64_t pc_spool_received(pc_spool *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->received;
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t pc_spool_readable(pc_spool *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = shown(s);
    pthread_mutex_unlock(&s->mu);
    return v;
}

bool pc_spool_verified(pc_spool *s, uint64_t *size)
{
    pthread_mutex_lock(&s->mu);
    bool v = s->state == S_VERIFIED;
    if (size)
        *size = s->received;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int pc_spool_commit(pc_spool *s, pc_blob_backend *be)
{
    uint64_t size;
    if (!pc_spool_verified(s, &size)) {
        pc_error_set("spool of %s is not verified", s->want.str);
        return PC_EINVAL;
    }
    int rc = pc_blob_adopt_fd(be, s->fd, size, &s->want);
    if (rc != PC_ENOTSUP)
        return rc;
    pc_blob_up *u;
    if ((rc = pc_blob_up_create(be, NULL, s->want.alg, &u)))
        return rc;
    enum { CHUNK = 256 * 1024 };
    char *buf = malloc(CHUNK);
    if (!buf) {
        pc_blob_up_cancel(u);
        return PC_ENOMEM;
    }
    for (uint64_t off = 0; rc == 0 && off < size;) {
        long n = pc_spool_read(s, off, buf, CHUNK);
        if (n <= 0) {
            rc = n < 0 ? (int)n : PC_ERR;
            break;
        }
        rc = pc_blob_up_write(u, buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    if (rc) {
        pc_blob_up_cancel(u);
        return rc;
    }
    return pc_blob_up_finish(u, &s->want, NULL);
}
