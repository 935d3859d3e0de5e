/*
 * blobstore_fs.c - the filesystem blob store: the embedded default behind
 * the pc_blobstore table (blobstore.h).
 *
 * Layout under the root directory:
 *   blobs/<alg>/<first 2 hex>/<hex>   published, verified content
 *   uploads/<id>                      uploads growing until they are committed
 *   tmp/                              temp files of put() before their rename
 *
 * Every path is relative to a directory fd opened once (openat() and
 * friends) and is built only from a validated digest's hex or a validated
 * upload id. Content is published by rename() within one filesystem, after
 * fsync and digest verification, so readers see a blob whole or not at all.
 * The store keeps no mutable state after open: it is safe from any thread.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "blobstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Temp files older than this are a crash's leftovers and removed at open. */
#define FS_TMP_STALE_S 3600

/* Room for "<alg>/<xx>/<hex>" with the longest algorithm and hex. */
#define FS_REL_MAX 192

typedef struct {
    pc_blobstore base;
    char *root;   /* the root directory's absolute path, for locate() */
    char *tmpdir; /* "<root>/tmp", for mkostemp() */
    int blobsfd;
    int uploadsfd;
    int tmpfd;
} fs_store;

typedef struct {
    pc_blob_writer base;
    int fd;
} fs_writer;

static const pc_digest_alg fs_algs[] = {PC_DIGEST_SHA256, PC_DIGEST_SHA512};

static fs_store *fs_of(pc_blobstore *bs)
{
    return (fs_store *)bs;
}

bool pc_upload_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (n >= 64)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return n > 0;
}

static int check_id(const char *id)
{
    if (!pc_upload_id_valid(id)) {
        pc_error_set("invalid upload id");
        return PC_EINVAL;
    }
    return 0;
}

static size_t alg_hexlen(pc_digest_alg alg)
{
    return alg == PC_DIGEST_SHA512 ? 128 : 64;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* Re-validate d (it names a path) and write "<alg>/<xx>/<hex>" into rel and
 * "<alg>/<xx>" into dir. 0 or PC_EINVAL. */
static int blob_rel(const pc_digest *d, char *rel, char *dir)
{
    pc_digest v;
    if (!d || memchr(d->str, '\0', sizeof(d->str)) == NULL || pc_digest_parse(&v, d->str) != 0 ||
        v.alg != d->alg) {
        pc_error_set("invalid digest");
        return PC_EINVAL;
    }
    const char *alg = pc_digest_alg_name(v.alg);
    const char *hex = pc_digest_hex(&v);
    int n = snprintf(rel, FS_REL_MAX, "%s/%.2s/%s", alg, hex, hex);
    int m = snprintf(dir, FS_REL_MAX, "%s/%.2s", alg, hex);
    if (n < 0 || n >= FS_REL_MAX || m < 0 || m >= FS_REL_MAX) {
        pc_error_set("digest path too long");
        return PC_EINVAL;
    }
    return 0;
}

static int mkdir_at(int dirfd, const char *path)
{
    if (mkdirat(dirfd, path, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        pc_error_set("mkdir %s: %s", path, strerror(e));
        return pc_result_from_errno(e);
    }
    return 0;
}

/* Flush a directory's entries (after a rename into it). */
static int fsync_dir_at(int dirfd, const char *path)
{
    int rc = 0;
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        pc_error_set("fsync directory %s: %s", path, strerror(e));
        rc = pc_result_from_errno(e);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Write all of buf to fd, across short writes and EINTR. 0 or PC_ERR. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            pc_error_set("write failed: %s", strerror(e));
            return pc_result_from_errno(e);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes at off (pread, EINTR). 0, or PC_ERR when the file
 * is shorter or unreadable. */
static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            pc_error_set("read failed: %s", n < 0 ? strerror(errno) : "file shrank");
            return PC_ERR;
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Whether a published blob named rel exists. */
static bool blob_exists(fs_store *fs, const char *rel)
{
    struct stat st;
    return fstatat(fs->blobsfd, rel, &st, 0) == 0 && S_ISREG(st.st_mode);
}

static int fs_stat(pc_blobstore *bs, const pc_digest *d, uint64_t *size)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int rc = blob_rel(d, rel, dir);
    if (rc)
        return rc;
    struct stat st;
    if (fstatat(fs->blobsfd, rel, &st, 0) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            pc_error_set("blob unknown");
            return PC_ENOTFOUND;
        }
        pc_error_set("stat blob: %s", strerror(errno));
        return PC_ERR;
    }
    if (!S_ISREG(st.st_mode)) {
        pc_error_set("blob unknown");
        return PC_ENOTFOUND;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static long fs_reader_read(pc_blob_reader *r, uint64_t offset, void *buf, size_t len)
{
    if (r->fd < 0) {
        pc_error_set("reader has no file");
        return PC_ERR;
    }
    if (offset >= r->size)
        return 0;
    if (len > r->size - offset)
        len = (size_t)(r->size - offset);
    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    for (;;) {
        ssize_t n = pread(r->fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pc_error_set("read blob: %s", strerror(errno));
            return PC_ERR;
        }
        return (long)n;
    }
}

static void fs_reader_close(pc_blob_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}

static int fs_open(pc_blobstore *bs, const pc_digest *d, pc_blob_reader **out)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    pc_blob_reader *r = NULL;
    int fd = -1;
    int rc = blob_rel(d, rel, dir);
    if (rc)
        goto done;
    fd = openat(fs->blobsfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            pc_error_set("blob unknown");
            rc = PC_ENOTFOUND;
        } else {
            pc_error_set("open blob: %s", strerror(errno));
            rc = PC_ERR;
        }
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        pc_error_set("stat blob: %s", strerror(errno));
        rc = PC_ERR;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        pc_error_set("blob unknown");
        rc = PC_ENOTFOUND;
        goto done;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        rc = PC_ENOMEM;
        goto done;
    }
    r->size = (uint64_t)st.st_size;
    r->fd = fd;
    r->read = fs_reader_read;
    r->close = fs_reader_close;
    fd = -1;
    *out = r;
    r = NULL;
done:
    if (fd >= 0)
        close(fd);
    free(r);
    return rc;
}

/* Move the verified file `name` in dirfd to the published name rel. When
 * that exists already the file is removed, unless replace is set: then the
 * verified bytes take the published name (atomically: readers of the old
 * file keep it), which heals a damaged copy. fd is the open file, for
 * fsync. 0, PC_ENOSPC, PC_EROFS or PC_ERR. */
static int publish(fs_store *fs, int fd, int dirfd, const char *name, const char *rel,
                   const char *dir, bool replace)
{
    if (fsync(fd) != 0) {
        int e = errno;
        pc_error_set("fsync: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    if (!replace && blob_exists(fs, rel)) {
        unlinkat(dirfd, name, 0);
        return 0;
    }
    char algdir[FS_REL_MAX];
    size_t alen = strcspn(dir, "/");
    memcpy(algdir, dir, alen);
    algdir[alen] = '\0';
    int rc = mkdir_at(fs->blobsfd, algdir);
    if (!rc)
        rc = mkdir_at(fs->blobsfd, dir);
    if (rc)
        return rc;
    if (renameat(dirfd, name, fs->blobsfd, rel) != 0) {
        int e = errno;
        pc_error_set("publish blob: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    return fsync_dir_at(fs->blobsfd, dir);
}

static int fs_put(pc_blobstore *bs, const pc_digest *d, const void *buf, size_t len)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    char *tmppath = NULL;
    int fd = -1;
    pc_digest got;
    int rc = blob_rel(d, rel, dir);
    if (rc)
        goto done;
    if ((rc = pc_digest_buffer(&got, d->alg, buf, len)))
        goto done;
    if (!pc_digest_equal(&got, d)) {
        pc_error_set("content does not match digest %s", d->str);
        rc = PC_EDIGEST;
        goto done;
    }
    if (blob_exists(fs, rel))
        goto done;
    size_t plen = strlen(fs->tmpdir) + sizeof("/put-XXXXXX");
    tmppath = malloc(plen);
    if (!tmppath) {
        rc = PC_ENOMEM;
        goto done;
    }
    snprintf(tmppath, plen, "%s/put-XXXXXX", fs->tmpdir);
    fd = mkostemp(tmppath, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        pc_error_set("create temp file: %s", strerror(e));
        rc = pc_result_from_errno(e);
        goto done;
    }
    if ((rc = write_all(fd, buf, len)))
        goto done;
    /* The name inside tmp/ is what follows the last '/'. */
    const char *name = strrchr(tmppath, '/') + 1;
    rc = publish(fs, fd, fs->tmpfd, name, rel, dir, false);
    if (rc == 0) {
        free(tmppath);
        tmppath = NULL;
    }
done:
    if (fd >= 0)
        close(fd);
    if (tmppath)
        unlink(tmppath);
    free(tmppath);
    return rc;
}

static int fs_get(pc_blobstore *bs, const pc_digest *d, size_t max, void **buf, size_t *len)
{
    pc_blob_reader *r = NULL;
    char *data = NULL;
    int rc = fs_open(bs, d, &r);
    if (rc)
        goto done;
    if (r->size > max) {
        pc_error_set("blob of %llu bytes is larger than %zu", (unsigned long long)r->size, max);
        rc = PC_ETOOBIG;
        goto done;
    }
    data = malloc(r->size ? (size_t)r->size : 1);
    if (!data) {
        rc = PC_ENOMEM;
        goto done;
    }
    if ((rc = pread_all(r->fd, data, (size_t)r->size, 0)))
        goto done;
    *buf = data;
    *len = (size_t)r->size;
    data = NULL;
done:
    free(data);
    if (r)
        r->close(r);
    return rc;
}

static int fs_remove(pc_blobstore *bs, const pc_digest *d)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int rc = blob_rel(d, rel, dir);
    if (rc)
        return rc;
    if (unlinkat(fs->blobsfd, rel, 0) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            pc_error_set("blob unknown");
            return PC_ENOTFOUND;
        }
        pc_error_set("remove blob: %s", strerror(errno));
        return PC_ERR;
    }
    return 0;
}

static int fs_age(pc_blobstore *bs, const pc_digest *d, long *age_s)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int rc = blob_rel(d, rel, dir);
    if (rc)
        return rc;
    struct stat st;
    if (fstatat(fs->blobsfd, rel, &st, 0) != 0 || !S_ISREG(st.st_mode)) {
        pc_error_set("blob unknown");
        return PC_ENOTFOUND;
    }
    time_t now = time(NULL);
    *age_s = now > st.st_mtime ? (long)(now - st.st_mtime) : 0;
    return 0;
}

/* Open directory path under dirfd as a stream. NULL when it does not exist
 * (or cannot be read; callers treat both as empty). */
static DIR *opendir_at(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    DIR *dp = fdopendir(fd);
    if (!dp)
        close(fd);
    return dp;
}

/* Report the blobs in one fan-out directory alg/<fan>. */
static int foreach_fan(fs_store *fs, pc_digest_alg alg, const char *fan,
                       int (*cb)(const pc_digest *d, uint64_t size, void *ctx), void *ctx)
{
    const char *algname = pc_digest_alg_name(alg);
    size_t hexlen = alg_hexlen(alg);
    char path[FS_REL_MAX];
    int rc = 0;
    snprintf(path, sizeof(path), "%s/%s", algname, fan);
    DIR *dp = opendir_at(fs->blobsfd, path);
    if (!dp)
        return 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *name = de->d_name;
        if (strlen(name) != hexlen || !is_lower_hex(name, hexlen) || name[0] != fan[0] ||
            name[1] != fan[1])
            continue;
        struct stat st;
        if (fstatat(dirfd(dp), name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* "<alg>:<hex>": both lengths are known to fit */
        pc_digest d;
        char s[PC_DIGEST_MAX];
        size_t alen = strlen(algname);
        memcpy(s, algname, alen);
        s[alen] = ':';
        memcpy(s + alen + 1, name, hexlen + 1);
        if (pc_digest_parse(&d, s) != 0)
            continue;
        if ((rc = cb(&d, (uint64_t)st.st_size, ctx)) != 0)
            break;
    }
    closedir(dp);
    return rc;
}

static int fs_foreach(pc_blobstore *bs, int (*cb)(const pc_digest *d, uint64_t size, void *ctx),
                      void *ctx)
{
    fs_store *fs = fs_of(bs);
    int rc = 0;
    for (size_t a = 0; a < sizeof(fs_algs) / sizeof(fs_algs[0]) && rc == 0; a++) {
        DIR *dp = opendir_at(fs->blobsfd, pc_digest_alg_name(fs_algs[a]));
        if (!dp)
            continue;
        struct dirent *de;
        while (rc == 0 && (de = readdir(dp)) != NULL) {
            if (strlen(de->d_name) != 2 || !is_lower_hex(de->d_name, 2))
                continue;
            rc = foreach_fan(fs, fs_algs[a], de->d_name, cb, ctx);
        }
        closedir(dp);
    }
    return rc;
}

static int fs_writer_write(pc_blob_writer *w, const void *buf, size_t len)
{
    fs_writer *fw = (fs_writer *)w;
    int rc = write_all(fw->fd, buf, len);
    if (rc == 0)
        w->size += len;
    return rc;
}

static int fs_writer_truncate(pc_blob_writer *w, uint64_t size)
{
    fs_writer *fw = (fs_writer *)w;
    if (size > w->size) {
        pc_error_set("cannot grow an upload by truncating it");
        return PC_EINVAL;
    }
    if (ftruncate(fw->fd, (off_t)size) != 0) {
        int e = errno;
        pc_error_set("truncate upload: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    w->size = size;
    return 0;
}

static void fs_writer_close(pc_blob_writer *w)
{
    if (!w)
        return;
    fs_writer *fw = (fs_writer *)w;
    if (fw->fd >= 0)
        close(fw->fd);
    free(fw);
}

static int fs_upload_open(pc_blobstore *bs, const char *id, bool create, pc_blob_writer **out)
{
    fs_store *fs = fs_of(bs);
    fs_writer *w = NULL;
    int fd = -1;
    int rc = check_id(id);
    if (rc)
        goto done;
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
    fd = openat(fs->uploadsfd, id, flags, 0644);
    if (fd < 0) {
        if (create && errno == EEXIST) {
            pc_error_set("upload %s exists", id);
            rc = PC_EEXISTS;
        } else if (!create && errno == ENOENT) {
            pc_error_set("upload unknown");
            rc = PC_ENOTFOUND;
        } else {
            int e = errno;
            pc_error_set("open upload: %s", strerror(e));
            rc = pc_result_from_errno(e);
        }
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        pc_error_set("stat upload: %s", strerror(errno));
        rc = PC_ERR;
        goto done;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        rc = PC_ENOMEM;
        goto done;
    }
    w->base.size = (uint64_t)st.st_size;
    w->base.write = fs_writer_write;
    w->base.truncate = fs_writer_truncate;
    w->base.close = fs_writer_close;
    w->fd = fd;
    fd = -1;
    *out = &w->base;
    w = NULL;
done:
    if (fd >= 0)
        close(fd);
    free(w);
    return rc;
}

static int fs_upload_stat(pc_blobstore *bs, const char *id, uint64_t *size)
{
    fs_store *fs = fs_of(bs);
    int rc = check_id(id);
    if (rc)
        return rc;
    struct stat st;
    if (fstatat(fs->uploadsfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
        pc_error_set("upload unknown");
        return PC_ENOTFOUND;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int fs_upload_read_fd(pc_blobstore *bs, const char *id, int *fd_out)
{
    fs_store *fs = fs_of(bs);
    int rc = check_id(id);
    if (rc)
        return rc;
    int fd = openat(fs->uploadsfd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        pc_error_set("upload unknown");
        return PC_ENOTFOUND;
    }
    *fd_out = fd;
    return 0;
}

static int fs_upload_commit(pc_blobstore *bs, const char *id, const pc_digest *d)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int fd = -1;
    pc_digest got;
    int rc = check_id(id);
    if (!rc)
        rc = blob_rel(d, rel, dir);
    if (rc)
        goto done;
    fd = openat(fs->uploadsfd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            pc_error_set("upload unknown");
            rc = PC_ENOTFOUND;
        } else {
            pc_error_set("open upload: %s", strerror(errno));
            rc = PC_ERR;
        }
        goto done;
    }
    if ((rc = pc_digest_fd(&got, d->alg, fd)))
        goto done;
    if (!pc_digest_equal(&got, d)) {
        unlinkat(fs->uploadsfd, id, 0);
        pc_error_set("upload content is %s, not %s", got.str, d->str);
        rc = PC_EDIGEST;
        goto done;
    }
    rc = publish(fs, fd, fs->uploadsfd, id, rel, dir, true);
done:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int fs_upload_remove(pc_blobstore *bs, const char *id)
{
    fs_store *fs = fs_of(bs);
    int rc = check_id(id);
    if (rc)
        return rc;
    if (unlinkat(fs->uploadsfd, id, 0) != 0) {
        if (errno == ENOENT) {
            pc_error_set("upload unknown");
            return PC_ENOTFOUND;
        }
        pc_error_set("remove upload: %s", strerror(errno));
        return PC_ERR;
    }
    return 0;
}

static int fs_upload_foreach(pc_blobstore *bs,
                             int (*cb)(const char *id, uint64_t size, long age_s, void *ctx),
                             void *ctx)
{
    fs_store *fs = fs_of(bs);
    int rc = 0;
    DIR *dp = opendir_at(fs->uploadsfd, ".");
    if (!dp) {
        pc_error_set("open uploads directory: %s", strerror(errno));
        return PC_ERR;
    }
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (!pc_upload_id_valid(de->d_name))
            continue;
        struct stat st;
        if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        long age = now > st.st_mtime ? (long)(now - st.st_mtime) : 0;
        if ((rc = cb(de->d_name, (uint64_t)st.st_size, age, ctx)) != 0)
            break;
    }
    closedir(dp);
    return rc;
}

/* Whether name can be a file directly in tmp/ (not ".", "..", hidden or a
 * path). */
static bool tmp_name_ok(const char *name)
{
    return name && name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) <= 255;
}

static long age_of(const struct stat *st)
{
    time_t now = time(NULL);
    return now > st->st_mtime ? (long)(now - st->st_mtime) : 0;
}

static int fs_tmp_foreach(pc_blobstore *bs,
                          int (*cb)(const char *name, uint64_t size, long age_s, void *ctx),
                          void *ctx)
{
    fs_store *fs = fs_of(bs);
    int rc = 0;
    DIR *dp = opendir_at(fs->tmpfd, ".");
    if (!dp) {
        pc_error_set("open temp directory: %s", strerror(errno));
        return PC_ERR;
    }
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        struct stat st;
        if (!tmp_name_ok(de->d_name) ||
            fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if ((rc = cb(de->d_name, (uint64_t)st.st_size, age_of(&st), ctx)) != 0)
            break;
    }
    closedir(dp);
    return rc;
}

/* Unlink regular file name in dirfd if it was last written at least
 * min_age_s ago. what names it in messages. */
static int remove_idle_at(int dirfd, const char *name, long min_age_s, const char *what)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            pc_error_set("%s unknown", what);
            return PC_ENOTFOUND;
        }
        pc_error_set("stat %s: %s", what, strerror(errno));
        return PC_ERR;
    }
    if (!S_ISREG(st.st_mode)) {
        pc_error_set("%s %s is no regular file", what, name);
        return PC_EINVAL;
    }
    if (age_of(&st) < min_age_s) {
        pc_error_set("%s %s was written %lds ago", what, name, age_of(&st));
        return PC_EEXISTS;
    }
    if (unlinkat(dirfd, name, 0) != 0) {
        if (errno == ENOENT) {
            pc_error_set("%s unknown", what);
            return PC_ENOTFOUND;
        }
        pc_error_set("remove %s: %s", what, strerror(errno));
        return PC_ERR;
    }
    return 0;
}

static int fs_tmp_remove(pc_blobstore *bs, const char *name, long min_age_s)
{
    if (!tmp_name_ok(name)) {
        pc_error_set("invalid temp file name");
        return PC_EINVAL;
    }
    return remove_idle_at(fs_of(bs)->tmpfd, name, min_age_s, "temp file");
}

static int fs_upload_remove_idle(pc_blobstore *bs, const char *id, long min_age_s)
{
    int rc = check_id(id);
    if (rc)
        return rc;
    return remove_idle_at(fs_of(bs)->uploadsfd, id, min_age_s, "upload");
}

static int fs_locate(pc_blobstore *bs, pc_blob_area area, const char *name, char *buf, size_t size)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    const char *sub = NULL, *leaf = name;
    int rc = 0;
    switch (area) {
    case PC_BLOB_AREA_BLOB: {
        pc_digest d;
        if (!name || pc_digest_parse(&d, name) != 0) {
            pc_error_set("invalid digest");
            return PC_EINVAL;
        }
        if ((rc = blob_rel(&d, rel, dir)))
            return rc;
        sub = "blobs";
        leaf = rel;
        break;
    }
    case PC_BLOB_AREA_UPLOAD:
        if ((rc = check_id(name)))
            return rc;
        sub = "uploads";
        break;
    case PC_BLOB_AREA_TMP:
        if (!tmp_name_ok(name)) {
            pc_error_set("invalid temp file name");
            return PC_EINVAL;
        }
        sub = "tmp";
        break;
    default:
        pc_error_set("unknown blob store area");
        return PC_EINVAL;
    }
    int n = snprintf(buf, size, "%s/%s/%s", fs->root, sub, leaf);
    if (n < 0 || (size_t)n >= size) {
        pc_error_set("path too long");
        return PC_ETOOBIG;
    }
    return 0;
}

/* Remove temp files a crash left behind (older than FS_TMP_STALE_S, so a
 * put() of another process sharing the directory is left alone). */
static void clean_tmp(fs_store *fs)
{
    DIR *dp = opendir_at(fs->tmpfd, ".");
    if (!dp)
        return;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (now - st.st_mtime > FS_TMP_STALE_S)
            unlinkat(dirfd(dp), de->d_name, 0);
    }
    closedir(dp);
}

/* ---- publish lock (see blobstore.h) ----
 *
 * Two lock files in the root, held with flock(2) so that every process on
 * the data directory (serve, gc, fsck) and every thread (each takes its own
 * open file description) takes part. Publishers hold publish.lock shared;
 * a remover holds it exclusively. A remover first takes gc.lock
 * exclusively and publishers pass through gc.lock (shared, released at
 * once) before taking publish.lock: a waiting remover so stops new
 * publishers and is not starved by a stream of overlapping ones. */

static int lock_open(fs_store *fs, const char *name)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", fs->root, name) >= sizeof(path))
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) /* a read-only data directory: nobody publishes there anyway */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    return fd;
}

static int lock_take(int fd, int op)
{
    while (flock(fd, op) != 0) {
        if (errno != EINTR) {
            pc_error_set("lock the blob store: %s", strerror(errno));
            return PC_ERR;
        }
    }
    return 0;
}

static int fs_publish_lock(pc_blobstore *bs, bool exclusive, pc_blob_lock *lk)
{
    fs_store *fs = fs_of(bs);
    lk->a = lk->b = -1;
    int gate = lock_open(fs, "gc.lock");
    int pub = lock_open(fs, "publish.lock");
    int rc = 0;
    if (gate < 0 || pub < 0) {
        /* no lock files and none can be made: a read-only directory */
        if (gate >= 0)
            close(gate);
        if (pub >= 0)
            close(pub);
        return 0;
    }
    if (exclusive) {
        if ((rc = lock_take(gate, LOCK_EX)) || (rc = lock_take(pub, LOCK_EX))) {
            close(gate);
            close(pub);
            return rc;
        }
        lk->a = gate;
        lk->b = pub;
        return 0;
    }
    if ((rc = lock_take(gate, LOCK_SH)) == 0) {
        close(gate); /* passed the gate */
        gate = -1;
        rc = lock_take(pub, LOCK_SH);
    }
    if (gate >= 0)
        close(gate);
    if (rc) {
        close(pub);
        return rc;
    }
    lk->b = pub;
    return 0;
}

static void fs_publish_unlock(pc_blobstore *bs, pc_blob_lock *lk)
{
    (void)bs;
    if (lk->b >= 0) /* closing drops the flock */
        close(lk->b);
    if (lk->a >= 0)
        close(lk->a);
    lk->a = lk->b = -1;
}

/* Move a damaged blob out of blobs/ into quarantine/ (kept for a look,
 * never served; fsck reports nothing there). Removed when quarantine/
 * cannot be made. */
static int fs_quarantine(pc_blobstore *bs, const pc_digest *d)
{
    fs_store *fs = fs_of(bs);
    char rel[FS_REL_MAX], dir[FS_REL_MAX], qdir[4096], qpath[4400];
    int rc = blob_rel(d, rel, dir);
    if (rc)
        return rc;
    snprintf(qdir, sizeof(qdir), "%s/quarantine", fs->root);
    if (mkdir(qdir, 0755) == 0 || errno == EEXIST) {
        snprintf(qpath, sizeof(qpath), "%s/%s-%s-%ld", qdir, pc_digest_alg_name(d->alg),
                 pc_digest_hex(d), (long)time(NULL));
        if (renameat(fs->blobsfd, rel, AT_FDCWD, qpath) == 0)
            return 0;
        if (errno == ENOENT)
            return PC_ENOTFOUND;
    }
    return fs_remove(bs, d);
}

static void fs_free(pc_blobstore *bs)
{
    fs_store *fs = fs_of(bs);
    if (!fs)
        return;
    if (fs->blobsfd >= 0)
        close(fs->blobsfd);
    if (fs->uploadsfd >= 0)
        close(fs->uploadsfd);
    if (fs->tmpfd >= 0)
        close(fs->tmpfd);
    free(fs->root);
    free(fs->tmpdir);
    free(fs);
}

/* Open the subdirectory name of rootfd, creating it when create is set.
 * -1 on failure (message set; errno kept). */
static int open_subdir(int rootfd, const char *name, bool create)
{
    if (create && mkdir_at(rootfd, name) != 0)
        return -1;
    int fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        pc_error_set("open %s: %s", name, strerror(e));
        errno = e;
    }
    return fd;
}

/* pc_blobstore_fs_open (create: make what is missing, clean old temp
 * files) and pc_blobstore_fs_open_existing (neither). */
static int fs_open_dir(pc_blobstore **out, const char *dir, bool create)
{
    fs_store *fs = NULL;
    char *abs = NULL;
    int rootfd = -1;
    int rc = PC_ERR;
    if (!dir || !*dir) {
        pc_error_set("blob store directory not set");
        goto done;
    }
    if (create && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        pc_error_set("mkdir %s: %s", dir, strerror(errno));
        goto done;
    }
    rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        if (!create && errno == ENOENT)
            rc = PC_ENOTFOUND;
        pc_error_set("open %s: %s", dir, strerror(errno));
        goto done;
    }
    fs = calloc(1, sizeof(*fs));
    if (!fs) {
        rc = PC_ENOMEM;
        goto done;
    }
    fs->blobsfd = fs->uploadsfd = fs->tmpfd = -1;
    /* mkostemp() needs a path: an absolute one survives a later chdir(). */
    abs = realpath(dir, NULL);
    if (!abs) {
        pc_error_set("resolve %s: %s", dir, strerror(errno));
        goto done;
    }
    size_t plen = strlen(abs) + sizeof("/tmp");
    fs->tmpdir = malloc(plen);
    if (!fs->tmpdir) {
        rc = PC_ENOMEM;
        goto done;
    }
    snprintf(fs->tmpdir, plen, "%s/tmp", abs);
    static const char *const subdirs[] = {"blobs", "uploads", "tmp"};
    int *fds[] = {&fs->blobsfd, &fs->uploadsfd, &fs->tmpfd};
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if ((*fds[i] = open_subdir(rootfd, subdirs[i], create)) >= 0)
            continue;
        if (!create && errno == ENOENT) {
            pc_error_set("%s is no pullcache data directory: it has no %s/", dir, subdirs[i]);
            rc = PC_ENOTFOUND;
        }
        goto done;
    }
    if (create) {
        for (size_t a = 0; a < sizeof(fs_algs) / sizeof(fs_algs[0]); a++)
            if (mkdir_at(fs->blobsfd, pc_digest_alg_name(fs_algs[a])) != 0)
                goto done;
        clean_tmp(fs);
    }
    fs->root = abs;
    abs = NULL;
    fs->base.version = PC_BLOBSTORE_VERSION;
    fs->base.stat = fs_stat;
    fs->base.open = fs_open;
    fs->base.put = fs_put;
    fs->base.get = fs_get;
    fs->base.remove = fs_remove;
    fs->base.foreach = fs_foreach;
    fs->base.upload_open = fs_upload_open;
    fs->base.upload_stat = fs_upload_stat;
    fs->base.upload_commit = fs_upload_commit;
    fs->base.upload_remove = fs_upload_remove;
    fs->base.upload_foreach = fs_upload_foreach;
    fs->base.free = fs_free;
    fs->base.upload_read_fd = fs_upload_read_fd;
    fs->base.age = fs_age;
    fs->base.tmp_foreach = fs_tmp_foreach;
    fs->base.tmp_remove = fs_tmp_remove;
    fs->base.upload_remove_idle = fs_upload_remove_idle;
    fs->base.locate = fs_locate;
    fs->base.publish_lock = fs_publish_lock;
    fs->base.publish_unlock = fs_publish_unlock;
    fs->base.quarantine = fs_quarantine;
    *out = &fs->base;
    fs = NULL;
    rc = 0;
done:
    free(abs);
    if (rootfd >= 0)
        close(rootfd);
    if (fs)
        fs_free(&fs->base);
    return rc;
}

int pc_blobstore_fs_open(pc_blobstore **out, const char *dir)
{
    return fs_open_dir(out, dir, true);
}

int pc_blobstore_fs_open_existing(pc_blobstore **out, const char *dir)
{
    return fs_open_dir(out, dir, false);
}
