/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_fs.c - the filesystem blob backend (store/blob.h, version 2):
 * committed blobs, readers, listing, the publish lock, quarantine and temp
 * leftovers. Writers are in blob_fs_upload.c.
 *
 * The layout is version 1's (the former blobstore_fs.c), so existing data directories
 * keep working:
 *   blobs/<alg>/<first 2 hex>/<hex>   committed content
 *   uploads/<id>                      uploads growing until committed
 *   uploads/<id>.state                the last checkpoint (new in version 2)
 *   tmp/                              temp writers before their rename
 *   gc.lock, publish.lock             the publish lock (flock)
 * Every path is relative to a directory fd opened once and built only from
 * a re-validated digest's hex or a valid upload id. A blob appears by
 * rename() (or link()) within one filesystem after fsync: whole or not at
 * all. The store keeps no mutable state after open.
 */
#include "blob_fs_int.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* Temp files older than this are a crash's leftovers and removed at open. */
#define FS_TMP_STALE_S 3600

static const pc_digest_alg fs_algs[] = {PC_DIGEST_SHA256, PC_DIGEST_SHA512};

static fs_store *fs_of(pc_blob_backend *be)
{
    return (fs_store *)be;
}

static size_t alg_hexlen(pc_digest_alg alg)
{
    return alg == PC_DIGEST_SHA512 ? 128 : 64;
}

int pc_blob_fs_rel(const pc_digest *d, char *rel, char *dir)
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

long pc_blob_fs_age(const struct stat *st)
{
    time_t now = time(NULL);
    return now > st->st_mtime ? (long)(now - st->st_mtime) : 0;
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

long pc_blob_fs_pread(int fd, uint64_t size, uint64_t offset, void *buf, size_t len)
{
    if (offset >= size)
        return 0;
    if (len > size - offset)
        len = (size_t)(size - offset);
    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    for (;;) {
        ssize_t n = pread(fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pc_error_set("read: %s", strerror(errno));
            return PC_ERR;
        }
        return (long)n;
    }
}

/* Make the "<alg>/<xx>" directories of dir. */
static int mkdir_fan(fs_store *fs, const char *dir)
{
    char algdir[FS_REL_MAX];
    size_t alen = strcspn(dir, "/");
    memcpy(algdir, dir, alen);
    algdir[alen] = '\0';
    int rc = mkdir_at(fs->blobsfd, algdir);
    return rc ? rc : mkdir_at(fs->blobsfd, dir);
}

static bool blob_exists(fs_store *fs, const char *rel)
{
    struct stat st;
    return fstatat(fs->blobsfd, rel, &st, 0) == 0 && S_ISREG(st.st_mode);
}

int pc_blob_fs_publish(fs_store *fs, int fd, int dirfd, const char *name, const char *rel,
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
    int rc = mkdir_fan(fs, dir);
    if (rc)
        return rc;
    if (renameat(dirfd, name, fs->blobsfd, rel) != 0) {
        int e = errno;
        pc_error_set("publish blob: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    return fsync_dir_at(fs->blobsfd, dir);
}

static int fs_stat(pc_blob_backend *be, const pc_digest *d, uint64_t *size)
{
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int rc = pc_blob_fs_rel(d, rel, dir);
    if (rc)
        return rc;
    struct stat st;
    bool found = fstatat(fs_of(be)->blobsfd, rel, &st, 0) == 0;
    if (!found && errno != ENOENT && errno != ENOTDIR) {
        pc_error_set("stat blob: %s", strerror(errno));
        return PC_ERR;
    }
    if (!found || !S_ISREG(st.st_mode)) {
        pc_error_set("blob unknown");
        return PC_ENOTFOUND;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

typedef struct {
    pc_blob_rd base;
    int fd;
} fs_rd;

static long fs_rd_read(pc_blob_rd *r, uint64_t offset, void *buf, size_t len)
{
    return pc_blob_fs_pread(((fs_rd *)r)->fd, r->size, offset, buf, len);
}

static int fs_rd_fd(pc_blob_rd *r, int *out)
{
    int fd = fcntl(((fs_rd *)r)->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        pc_error_set("dup: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    *out = fd;
    return 0;
}

static void fs_rd_close(pc_blob_rd *r)
{
    if (!r)
        return;
    close(((fs_rd *)r)->fd);
    free(r);
}

static int fs_open(pc_blob_backend *be, const pc_digest *d, pc_blob_rd **out)
{
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int rc = pc_blob_fs_rel(d, rel, dir);
    if (rc)
        return rc;
    int fd = openat(fs_of(be)->blobsfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            pc_error_set("blob unknown");
            return PC_ENOTFOUND;
        }
        pc_error_set("open blob: %s", strerror(errno));
        return PC_ERR;
    }
    struct stat st;
    fs_rd *r = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        pc_error_set("blob unknown");
        rc = PC_ENOTFOUND;
    } else if (!(r = calloc(1, sizeof(*r)))) {
        rc = PC_ENOMEM;
    }
    if (rc) {
        close(fd);
        return rc;
    }
    r->fd = fd;
    r->base.size = (uint64_t)st.st_size;
    r->base.read = fs_rd_read;
    r->base.fd = fs_rd_fd;
    r->base.close = fs_rd_close;
    *out = &r->base;
    return 0;
}

static int fs_remove(pc_blob_backend *be, const pc_digest *d)
{
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    int rc = pc_blob_fs_rel(d, rel, dir);
    if (rc)
        return rc;
    if (unlinkat(fs_of(be)->blobsfd, rel, 0) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            pc_error_set("blob unknown");
            return PC_ENOTFOUND;
        }
        pc_error_set("remove blob: %s", strerror(errno));
        return PC_ERR;
    }
    return 0;
}

DIR *pc_blob_fs_opendir(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    DIR *dp = fdopendir(fd);
    if (!dp)
        close(fd);
    return dp;
}

/* Report the blobs of one fan-out directory alg/<fan>. */
static int list_fan(fs_store *fs, pc_digest_alg alg, const char *fan,
                    int (*cb)(const pc_blob_entry *e, void *ctx), void *ctx)
{
    const char *algname = pc_digest_alg_name(alg);
    size_t hexlen = alg_hexlen(alg), alen = strlen(algname);
    char path[FS_REL_MAX];
    int rc = 0;
    snprintf(path, sizeof(path), "%s/%s", algname, fan);
    DIR *dp = pc_blob_fs_opendir(fs->blobsfd, path);
    if (!dp)
        return 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *name = de->d_name;
        if (strlen(name) != hexlen || !pc_util_is_lower_hex(name, hexlen) || name[0] != fan[0] ||
            name[1] != fan[1])
            continue;
        struct stat st;
        if (fstatat(dirfd(dp), name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        pc_blob_entry e;
        char s[PC_DIGEST_MAX];
        memcpy(s, algname, alen);
        s[alen] = ':';
        memcpy(s + alen + 1, name, hexlen + 1);
        if (pc_digest_parse(&e.digest, s) != 0)
            continue;
        e.size = (uint64_t)st.st_size;
        e.age_s = pc_blob_fs_age(&st);
        if ((rc = cb(&e, ctx)) != 0)
            break;
    }
    closedir(dp);
    return rc;
}

static int fs_list(pc_blob_backend *be, int (*cb)(const pc_blob_entry *e, void *ctx), void *ctx)
{
    fs_store *fs = fs_of(be);
    int rc = 0;
    for (size_t a = 0; a < sizeof(fs_algs) / sizeof(fs_algs[0]) && rc == 0; a++) {
        DIR *dp = pc_blob_fs_opendir(fs->blobsfd, pc_digest_alg_name(fs_algs[a]));
        if (!dp)
            continue;
        struct dirent *de;
        while (rc == 0 && (de = readdir(dp)) != NULL) {
            if (strlen(de->d_name) != 2 || !pc_util_is_lower_hex(de->d_name, 2))
                continue;
            rc = list_fan(fs, fs_algs[a], de->d_name, cb, ctx);
        }
        closedir(dp);
    }
    return rc;
}

/* Link the (O_TMPFILE or still named) file fd in as blob d: link() fails
 * when the name exists, which keeps the existing copy. */
static int fs_adopt_fd(pc_blob_backend *be, int fd, uint64_t size, const pc_digest *d)
{
    fs_store *fs = fs_of(be);
    char rel[FS_REL_MAX], dir[FS_REL_MAX], proc[64];
    struct stat st;
    int rc = pc_blob_fs_rel(d, rel, dir);
    if (rc)
        return rc;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        pc_error_set("adopt: not a file of %llu bytes", (unsigned long long)size);
        return PC_EINVAL;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        pc_error_set("fsync: %s", strerror(e));
        return pc_result_from_errno(e);
    }
    if ((rc = mkdir_fan(fs, dir)))
        return rc;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, fs->blobsfd, rel, AT_SYMLINK_FOLLOW) != 0) {
        if (errno == EEXIST)
            return 0;
        pc_error_set("adopt file: %s", strerror(errno));
        return PC_ENOTSUP; /* another filesystem, no /proc, an unlinked file: copy */
    }
    return fsync_dir_at(fs->blobsfd, dir);
}

/* ---- temp leftovers (rule 2) ---- */

static bool tmp_name_ok(const char *name)
{
    return name && name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) <= 255;
}

int pc_blob_fs_list_files(int dfd, const char *what, bool (*name_ok)(const char *name),
                          int (*cb)(const char *name, uint64_t size, long age_s, void *ctx),
                          void *ctx)
{
    int rc = 0;
    DIR *dp = pc_blob_fs_opendir(dfd, ".");
    if (!dp) {
        pc_error_set("open %s directory: %s", what, strerror(errno));
        return PC_ERR;
    }
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        struct stat st;
        if (!name_ok(de->d_name) || fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if ((rc = cb(de->d_name, (uint64_t)st.st_size, pc_blob_fs_age(&st), ctx)) != 0)
            break;
    }
    closedir(dp);
    return rc;
}

static int fs_tmp_list(pc_blob_backend *be,
                       int (*cb)(const char *name, uint64_t size, long age_s, void *ctx), void *ctx)
{
    return pc_blob_fs_list_files(fs_of(be)->tmpfd, "temp", tmp_name_ok, cb, ctx);
}

static int fs_tmp_remove(pc_blob_backend *be, const char *name, long min_age_s)
{
    struct stat st;
    int tmpfd = fs_of(be)->tmpfd;
    if (!tmp_name_ok(name)) {
        pc_error_set("invalid temp file name");
        return PC_EINVAL;
    }
    if (fstatat(tmpfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        pc_error_set("temp file unknown");
        return errno == ENOENT ? PC_ENOTFOUND : PC_ERR;
    }
    if (!S_ISREG(st.st_mode)) {
        pc_error_set("temp file %s is no regular file", name);
        return PC_EINVAL;
    }
    if (pc_blob_fs_age(&st) < min_age_s) {
        pc_error_set("temp file %s was written %lds ago", name, pc_blob_fs_age(&st));
        return PC_EEXISTS;
    }
    if (unlinkat(tmpfd, name, 0) != 0) {
        pc_error_set("remove temp file: %s", strerror(errno));
        return errno == ENOENT ? PC_ENOTFOUND : PC_ERR;
    }
    return 0;
}

static int fs_locate(pc_blob_backend *be, pc_blob_kind kind, const char *name, char *buf,
                     size_t size)
{
    char rel[FS_REL_MAX], dir[FS_REL_MAX];
    const char *sub = NULL, *leaf = name;
    pc_digest d;
    int rc = 0;
    switch (kind) {
    case PC_BLOB_IN_BLOBS:
        if (!name || pc_digest_parse(&d, name) != 0 || (rc = pc_blob_fs_rel(&d, rel, dir))) {
            pc_error_set("invalid digest");
            return PC_EINVAL;
        }
        sub = "blobs";
        leaf = rel;
        break;
    case PC_BLOB_IN_UPLOADS:
        if (!pc_upload_id_valid(name)) {
            pc_error_set("invalid upload id");
            return PC_EINVAL;
        }
        sub = "uploads";
        break;
    case PC_BLOB_IN_TMP:
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
    int n = snprintf(buf, size, "%s/%s/%s", fs_of(be)->root, sub, leaf);
    if (n < 0 || (size_t)n >= size) {
        pc_error_set("path too long");
        return PC_ETOOBIG;
    }
    return 0;
}

/* Remove temp files older than FS_TMP_STALE_S (a crash's; a temp writer of
 * another process sharing the directory is younger). */
static void clean_tmp(fs_store *fs)
{
    DIR *dp = pc_blob_fs_opendir(fs->tmpfd, ".");
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (pc_blob_fs_age(&st) > FS_TMP_STALE_S)
            unlinkat(dirfd(dp), de->d_name, 0);
    }
    closedir(dp);
}

/* ---- the publish lock: version 1's two flock(2) files, so processes of
 * either version on one data directory exclude each other; gc.lock is
 * the gate that keeps a waiting remover from starving) ---- */

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

static int fs_publish_lock(pc_blob_backend *be, bool exclusive, pc_blob_hold *h)
{
    fs_store *fs = fs_of(be);
    h->a = h->b = -1;
    int gate = lock_open(fs, "gc.lock");
    int pub = lock_open(fs, "publish.lock");
    int rc = 0;
    if (gate < 0 || pub < 0) {
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
        h->a = gate;
        h->b = pub;
        return 0;
    }
    if ((rc = lock_take(gate, LOCK_SH)) == 0)
        rc = lock_take(pub, LOCK_SH);
    close(gate); /* passed the gate */
    if (rc) {
        close(pub);
        return rc;
    }
    h->b = pub;
    return 0;
}

static void fs_publish_unlock(pc_blob_backend *be, pc_blob_hold *h)
{
    (void)be;
    if (h->b >= 0)
        close(h->b);
    if (h->a >= 0)
        close(h->a);
    h->a = h->b = -1;
}

/* Move a damaged blob into quarantine/ (kept for a look, never served);
 * removed when quarantine/ cannot be made. */
static int fs_quarantine(pc_blob_backend *be, const pc_digest *d)
{
    fs_store *fs = fs_of(be);
    char rel[FS_REL_MAX], dir[FS_REL_MAX], qdir[4096], qpath[4400];
    int rc = pc_blob_fs_rel(d, rel, dir);
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
    return fs_remove(be, d);
}

static void fs_free(pc_blob_backend *be)
{
    fs_store *fs = fs_of(be);
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

/* Open subdirectory name of rootfd, making it first when create is set.
 * -1 on failure (message set, errno kept). */
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

static void fs_fill(fs_store *fs)
{
    pc_blob_backend *b = &fs->base;
    b->version = PC_BLOB_BACKEND_VERSION;
    b->name = "fs";
    b->caps = PC_BLOB_CAP_READ_AFTER_REMOVE | PC_BLOB_CAP_DURABLE;
    b->min_part = 0;
    b->stat = fs_stat;
    b->open = fs_open;
    b->remove = fs_remove;
    b->list = fs_list;
    b->writer = pc_blob_fs_writer;
    b->upload_stat = pc_blob_fs_upload_stat;
    b->upload_remove = pc_blob_fs_upload_remove;
    b->upload_list = pc_blob_fs_upload_list;
    b->free = fs_free;
    b->adopt_fd = fs_adopt_fd;
    b->publish_lock = fs_publish_lock;
    b->publish_unlock = fs_publish_unlock;
    b->quarantine = fs_quarantine;
    b->tmp_list = fs_tmp_list;
    b->tmp_remove = fs_tmp_remove;
    b->locate = fs_locate;
}

/* pc_blob_fs_open (create: make what is missing, clean a crash's old
 * leftovers) and pc_blob_fs_open_existing (neither). */
static int open_dir(pc_blob_backend **out, const char *dir, bool create)
{
    fs_store *fs = NULL;
    int rootfd = -1, rc = PC_ERR;
    if (!dir || !*dir) {
        pc_error_set("blob store directory not set");
        return PC_ERR;
    }
    if (create && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        pc_error_set("mkdir %s: %s", dir, strerror(errno));
        return PC_ERR;
    }
    if ((rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = !create && errno == ENOENT ? PC_ENOTFOUND : PC_ERR;
        pc_error_set("open %s: %s", dir, strerror(errno));
        return rc;
    }
    if (!(fs = calloc(1, sizeof(*fs)))) {
        rc = PC_ENOMEM;
        goto done;
    }
    fs->blobsfd = fs->uploadsfd = fs->tmpfd = -1;
    /* mkostemp() needs a path: an absolute one survives a later chdir() */
    if (!(fs->root = realpath(dir, NULL))) {
        pc_error_set("resolve %s: %s", dir, strerror(errno));
        goto done;
    }
    size_t plen = strlen(fs->root) + sizeof("/tmp");
    if (!(fs->tmpdir = malloc(plen))) {
        rc = PC_ENOMEM;
        goto done;
    }
    snprintf(fs->tmpdir, plen, "%s/tmp", fs->root);
    static const char *const subdirs[] = {"blobs", "uploads", "tmp"};
    int *fds[] = {&fs->blobsfd, &fs->uploadsfd, &fs->tmpfd};
    for (size_t i = 0; i < 3; i++) {
        /* blobs/ says this is a data directory; the work directories are
         * made when missing (a directory restored from a backup of meta.db
         * and blobs/ has none) */
        if ((*fds[i] = open_subdir(rootfd, subdirs[i], create || i > 0)) >= 0)
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
        pc_blob_fs_clean_states(fs, FS_TMP_STALE_S);
    }
    fs_fill(fs);
    *out = &fs->base;
    fs = NULL;
    rc = 0;
done:
    close(rootfd);
    if (fs)
        fs_free(&fs->base);
    return rc;
}

int pc_blob_fs_open(pc_blob_backend **out, const char *dir)
{
    return open_dir(out, dir, true);
}

int pc_blob_fs_open_existing(pc_blob_backend **out, const char *dir)
{
    return open_dir(out, dir, false);
}
