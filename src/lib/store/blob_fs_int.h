/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/blob_fs_int.h - what the two halves of the filesystem blob backend
 * share (blob_fs.c: blobs, locks, leftovers; blob_fs_upload.c: writers).
 */
#ifndef PC_STORE_BLOB_FS_INT_H
#define PC_STORE_BLOB_FS_INT_H

#include "blob.h"

#include <dirent.h>
#include <sys/stat.h>

/* Room for "<alg>/<xx>/<hex>" with the longest algorithm and hex. */
#define FS_REL_MAX 192

typedef struct {
    pc_blob_backend base;
    char *root;   /* the root directory's absolute path, for locate() */
    char *tmpdir; /* "<root>/tmp", for mkostemp() */
    int blobsfd;
    int uploadsfd;
    int tmpfd;
} fs_store;

/* Re-validate d and write "<alg>/<xx>/<hex>" into rel and "<alg>/<xx>" into
 * dir. 0 or PC_EINVAL. */
int pc_blob_fs_rel(const pc_digest *d, char *rel, char *dir);
/* Move the verified file `name` in dirfd (open as fd, fsynced here) to the
 * blob name rel; an existing blob is replaced when replace is set, else
 * kept (and name removed). 0 or < 0. */
int pc_blob_fs_publish(fs_store *fs, int fd, int dirfd, const char *name, const char *rel,
                       const char *dir, bool replace);
/* pread(2) once, across EINTR, clamped to size: like pc_blob_rd.read. */
long pc_blob_fs_pread(int fd, uint64_t size, uint64_t offset, void *buf, size_t len);
/* Seconds since st was last written. */
long pc_blob_fs_age(const struct stat *st);

/* Directory path under dirfd as a stream; NULL when it cannot be opened. */
DIR *pc_blob_fs_opendir(int dirfd, const char *path);
/* Call cb for every regular file in dirfd whose name passes name_ok, with
 * its size and age; what names the directory in messages. */
int pc_blob_fs_list_files(int dfd, const char *what, bool (*name_ok)(const char *name),
                          int (*cb)(const char *name, uint64_t size, long age_s, void *ctx),
                          void *ctx);

/* The upload half (blob_fs_upload.c). */
int pc_blob_fs_writer(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out);
int pc_blob_fs_upload_stat(pc_blob_backend *be, const char *id, uint64_t *size);
int pc_blob_fs_upload_remove(pc_blob_backend *be, const char *id, long min_age_s);
int pc_blob_fs_upload_list(pc_blob_backend *be,
                           int (*cb)(const char *id, uint64_t size, long age_s, void *ctx),
                           void *ctx);
/* Remove state files whose upload is gone, older than min_age_s. */
void pc_blob_fs_clean_states(fs_store *fs, long min_age_s);

#endif
