/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_fs_upload.c - writers of the filesystem blob backend: uploads
 * in uploads/<id> with their last checkpoint in uploads/<id>.state, and
 * anonymous temp writers in tmp/.
 *
 * A checkpoint: fdatasync the upload, then write "<id>.state.tmp" (magic
 * "PCUS", the checkpointed size as u64 and the front end's state as a u32
 * length and bytes, little-endian), fsync it and rename it over
 * "<id>.state". Reopening truncates the upload back to that size, so bytes
 * appended after the last checkpoint (a failed chunk, a crash) are gone.
 * Losing the rename in a crash leaves the previous checkpoint, which is
 * still consistent. An upload without a state file was written by version
 * 1: it resumes at its file size with no state (the front end hashes it
 * once through read()). Names with a '.' are never upload ids, so version
 * 1's listings skip the state files.
 */
#include "blob_fs_int.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_SUFFIX ".state"
#define STATE_TMP_SUFFIX ".state.tmp"
#define STATE_HEAD 16 /* magic, size, state length */

typedef struct {
    pc_blob_wr base;
    fs_store *fs;
    int fd;
    char id[72];   /* "" for a temp writer */
    char tmp[300]; /* a temp writer's name in tmp/ */
    uint64_t ckpt; /* checkpointed bytes */
    unsigned char *saved;
} fs_wr;

static int check_id(const char *id)
{
    if (!pc_upload_id_valid(id)) {
        pc_error_set("invalid upload id");
        return PC_EINVAL;
    }
    return 0;
}

static void state_name(char *buf, size_t size, const char *id, const char *suffix)
{
    snprintf(buf, size, "%s%s", id, suffix);
}

/* Read upload id's state file: 0 (found; *saved the caller's), PC_ENOTFOUND
 * (none), PC_ERR (damaged). */
static int state_read(fs_store *fs, const char *id, uint64_t *size, unsigned char **saved,
                      size_t *len)
{
    char name[96];
    unsigned char buf[STATE_HEAD + PC_BLOB_STATE_MAX + 1];
    state_name(name, sizeof(name), id, STATE_SUFFIX);
    int fd = openat(fs->uploadsfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return PC_ENOTFOUND;
        pc_error_set("open upload state: %s", strerror(errno));
        return PC_ERR;
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, sizeof(buf) - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    uint64_t sz = 0, sl = 0;
    for (int i = 0; n >= STATE_HEAD && i < 8; i++)
        sz |= (uint64_t)buf[4 + i] << (8 * i);
    for (int i = 0; n >= STATE_HEAD && i < 4; i++)
        sl |= (uint64_t)buf[12 + i] << (8 * i);
    if (n < STATE_HEAD || memcmp(buf, "PCUS", 4) != 0 || sl > PC_BLOB_STATE_MAX ||
        n != STATE_HEAD + sl) {
        pc_error_set("upload %s: damaged state file", id);
        return PC_ERR;
    }
    *size = sz;
    *len = (size_t)sl;
    if (saved) {
        if (!(*saved = malloc(sl ? sl : 1)))
            return PC_ENOMEM;
        memcpy(*saved, buf + STATE_HEAD, sl);
    }
    return 0;
}

/* Write upload id's state file (through a temp name and rename; synced
 * when sync is set). */
static int state_write(fs_store *fs, const char *id, uint64_t size, const void *st, size_t len,
                       bool sync)
{
    char tmp[96], name[96];
    unsigned char head[STATE_HEAD];
    memcpy(head, "PCUS", 4);
    for (int i = 0; i < 8; i++)
        head[4 + i] = (unsigned char)(size >> (8 * i));
    for (int i = 0; i < 4; i++)
        head[12 + i] = (unsigned char)((uint64_t)len >> (8 * i));
    state_name(tmp, sizeof(tmp), id, STATE_TMP_SUFFIX);
    state_name(name, sizeof(name), id, STATE_SUFFIX);
    int fd =
        openat(fs->uploadsfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        int e = errno;
        pc_error_set("write upload state: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    int rc = pc_util_write_all(fd, head, sizeof(head));
    if (!rc && len)
        rc = pc_util_write_all(fd, st, len);
    if (!rc && sync && fsync(fd) != 0) {
        pc_error_set("fsync upload state: %s", strerror(errno));
        rc = pc_result_from_errno(errno);
    }
    close(fd);
    if (!rc && renameat(fs->uploadsfd, tmp, fs->uploadsfd, name) != 0) {
        pc_error_set("write upload state: %s", strerror(errno));
        rc = pc_result_from_errno(errno);
    }
    if (rc)
        unlinkat(fs->uploadsfd, tmp, 0);
    return rc;
}

static void state_remove(fs_store *fs, const char *id)
{
    char name[96];
    state_name(name, sizeof(name), id, STATE_SUFFIX);
    unlinkat(fs->uploadsfd, name, 0);
    state_name(name, sizeof(name), id, STATE_TMP_SUFFIX);
    unlinkat(fs->uploadsfd, name, 0);
}

static int wr_append(pc_blob_wr *w, const void *buf, size_t len)
{
    int rc = pc_util_write_all(((fs_wr *)w)->fd, buf, len);
    if (rc == 0)
        w->size += len;
    return rc;
}

static int wr_checkpoint(pc_blob_wr *w, const void *st, size_t len)
{
    fs_wr *fw = (fs_wr *)w;
    if (!fw->id[0] || len > PC_BLOB_STATE_MAX) {
        pc_error_set(fw->id[0] ? "upload state too large" : "a temp writer has no checkpoints");
        return PC_EINVAL;
    }
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return PC_ENOMEM;
    if (fdatasync(fw->fd) != 0) {
        int e = errno;
        free(copy);
        pc_error_set("fsync upload: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    int rc = state_write(fw->fs, fw->id, w->size, st, len, true);
    if (rc) {
        free(copy);
        return rc;
    }
    if (len)
        memcpy(copy, st, len);
    free(fw->saved);
    fw->saved = copy;
    w->state = copy;
    w->state_len = len;
    w->state_size = fw->ckpt = w->size;
    return 0;
}

static long wr_read(pc_blob_wr *w, uint64_t offset, void *buf, size_t len)
{
    return pc_blob_fs_pread(((fs_wr *)w)->fd, w->size, offset, buf, len);
}

static void wr_free(fs_wr *fw)
{
    if (fw->fd >= 0)
        close(fw->fd);
    free(fw->saved);
    free(fw);
}

/* Back to the last checkpoint: what a failed chunk leaves. */
static void wr_rollback(fs_wr *fw)
{
    if (fw->id[0] && fw->base.size != fw->ckpt && ftruncate(fw->fd, (off_t)fw->ckpt) == 0)
        fw->base.size = fw->ckpt;
}

static void wr_cancel(pc_blob_wr *w)
{
    fs_wr *fw = (fs_wr *)w;
    if (fw->id[0]) {
        unlinkat(fw->fs->uploadsfd, fw->id, 0);
        state_remove(fw->fs, fw->id);
    } else {
        unlinkat(fw->fs->tmpfd, fw->tmp, 0);
    }
    wr_free(fw);
}

static void wr_close(pc_blob_wr *w)
{
    fs_wr *fw = (fs_wr *)w;
    if (!fw->id[0]) { /* nothing to resume */
        wr_cancel(w);
        return;
    }
    wr_rollback(fw);
    wr_free(fw);
}

static int wr_commit(pc_blob_wr *w, const pc_digest *d)
{
    fs_wr *fw = (fs_wr *)w;
    fs_store *fs = fw->fs;
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int rc = pc_blob_fs_rel(d, rel, dir);
    if (!rc && fw->id[0]) {
        /* replace: a damaged copy heals with verified bytes */
        rc = pc_blob_fs_publish(fs, fw->fd, fs->uploadsfd, fw->id, rel, dir, true);
        if (rc == 0)
            state_remove(fs, fw->id); /* a crash before: an orphan, removed at open */
    } else if (!rc) {
        rc = pc_blob_fs_publish(fs, fw->fd, fs->tmpfd, fw->tmp, rel, dir, false);
    }
    if (rc) {
        if (fw->id[0])
            wr_close(w);
        else
            wr_cancel(w);
        return rc;
    }
    wr_free(fw);
    return 0;
}

static int open_temp(fs_store *fs, fs_wr *fw)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/put-XXXXXX", fs->tmpdir) >= sizeof(path)) {
        pc_error_set("temp path too long");
        return PC_ERR;
    }
    fw->fd = mkostemp(path, O_CLOEXEC);
    if (fw->fd < 0) {
        int e = errno;
        pc_error_set("create temp file: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    snprintf(fw->tmp, sizeof(fw->tmp), "%s", strrchr(path, '/') + 1);
    return 0;
}

/* Open upload id (created with an empty checkpoint, or reopened at its
 * last one). */
static int open_upload(fs_store *fs, fs_wr *fw, const char *id, bool create)
{
    int flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
    snprintf(fw->id, sizeof(fw->id), "%s", id);
    fw->fd = openat(fs->uploadsfd, id, flags, 0644);
    if (fw->fd < 0) {
        int e = errno;
        if (create && e == EEXIST) {
            pc_error_set("upload %s exists", id);
            return PC_EEXISTS;
        }
        if (!create && e == ENOENT) {
            pc_error_set("upload unknown");
            return PC_ENOTFOUND;
        }
        pc_error_set("open upload: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    if (create) /* a checkpoint at 0: a crash before the first rolls back to empty */
        return state_write(fs, id, 0, NULL, 0, false);
    struct stat st;
    if (fstat(fw->fd, &st) != 0) {
        pc_error_set("stat upload: %s", strerror(errno));
        return PC_ERR;
    }
    uint64_t size = (uint64_t)st.st_size, ck;
    size_t len = 0;
    int rc = state_read(fs, id, &ck, &fw->saved, &len);
    if (rc == PC_ENOTFOUND) { /* written by version 1 */
        fw->ckpt = fw->base.size = size;
        return 0;
    }
    if (rc)
        return rc;
    if (ck > size) {
        pc_error_set("upload %s is shorter (%llu bytes) than its checkpoint (%llu)", id,
                     (unsigned long long)size, (unsigned long long)ck);
        return PC_ERR;
    }
    if (ck < size && ftruncate(fw->fd, (off_t)ck) != 0) {
        pc_error_set("truncate upload: %s", strerror(errno));
        return PC_ERR;
    }
    fw->ckpt = fw->base.size = fw->base.state_size = ck;
    fw->base.state = fw->saved;
    fw->base.state_len = len;
    return 0;
}

int pc_blob_fs_writer(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out)
{
    fs_store *fs = (fs_store *)be;
    int rc = id ? check_id(id) : 0;
    if (rc)
        return rc;
    fs_wr *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return PC_ENOMEM;
    fw->fs = fs;
    fw->fd = -1;
    rc = id ? open_upload(fs, fw, id, create) : open_temp(fs, fw);
    if (rc) {
        if (id && create && rc != PC_EEXISTS && fw->fd >= 0)
            unlinkat(fs->uploadsfd, id, 0);
        wr_free(fw);
        return rc;
    }
    fw->base.append = wr_append;
    fw->base.checkpoint = wr_checkpoint;
    fw->base.commit = wr_commit;
    fw->base.cancel = wr_cancel;
    fw->base.close = wr_close;
    fw->base.read = wr_read;
    *out = &fw->base;
    return 0;
}

int pc_blob_fs_upload_stat(pc_blob_backend *be, const char *id, uint64_t *size)
{
    fs_store *fs = (fs_store *)be;
    int rc = check_id(id);
    if (rc)
        return rc;
    struct stat st;
    if (fstatat(fs->uploadsfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
        pc_error_set("upload unknown");
        return PC_ENOTFOUND;
    }
    uint64_t ck;
    size_t len;
    rc = state_read(fs, id, &ck, NULL, &len);
    if (rc == PC_ENOTFOUND) {
        *size = (uint64_t)st.st_size;
        return 0;
    }
    if (rc == 0)
        *size = ck < (uint64_t)st.st_size ? ck : (uint64_t)st.st_size;
    return rc;
}

int pc_blob_fs_upload_remove(pc_blob_backend *be, const char *id, long min_age_s)
{
    fs_store *fs = (fs_store *)be;
    int rc = check_id(id);
    if (rc)
        return rc;
    struct stat st;
    if (fstatat(fs->uploadsfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        state_remove(fs, id);
        pc_error_set("upload unknown");
        return PC_ENOTFOUND;
    }
    if (min_age_s > 0 && pc_blob_fs_age(&st) < min_age_s) {
        pc_error_set("upload %s was written %lds ago", id, pc_blob_fs_age(&st));
        return PC_EEXISTS;
    }
    if (unlinkat(fs->uploadsfd, id, 0) != 0 && errno != ENOENT) {
        pc_error_set("remove upload: %s", strerror(errno));
        return PC_ERR;
    }
    state_remove(fs, id);
    return 0;
}

int pc_blob_fs_upload_list(pc_blob_backend *be,
                           int (*cb)(const char *id, uint64_t size, long age_s, void *ctx),
                           void *ctx)
{
    return pc_blob_fs_list_files(((fs_store *)be)->uploadsfd, "uploads", pc_upload_id_valid, cb,
                                 ctx);
}

void pc_blob_fs_clean_states(fs_store *fs, long min_age_s)
{
    DIR *dp = pc_blob_fs_opendir(fs->uploadsfd, ".");
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        char id[96];
        size_t n = strcspn(de->d_name, ".");
        const char *suffix = de->d_name + n;
        struct stat st, up;
        if (n >= sizeof(id) ||
            (strcmp(suffix, STATE_SUFFIX) != 0 && strcmp(suffix, STATE_TMP_SUFFIX) != 0))
            continue;
        memcpy(id, de->d_name, n);
        id[n] = '\0';
        if (!pc_upload_id_valid(id) ||
            fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            pc_blob_fs_age(&st) < min_age_s)
            continue;
        /* a state whose upload is gone (a crash inside commit), or a
         * checkpoint's temp file a crash left */
        if (strcmp(suffix, STATE_TMP_SUFFIX) == 0 ||
            fstatat(dirfd(dp), id, &up, AT_SYMLINK_NOFOLLOW) != 0)
            unlinkat(dirfd(dp), de->d_name, 0);
    }
    closedir(dp);
}
