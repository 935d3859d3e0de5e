/*
 * pull_layout.c - writing an OCI image layout (image-spec image-layout.md):
 * oci-layout, blobs/<alg>/<hex>, index.json. Every file is written to a
 * temporary name in its final directory, synced and renamed, so a blob
 * name always holds its verified content and a failed or interrupted pull
 * leaves at most a dot-file behind.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "pull.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "manifest.h"

#define REF_NAME "org.opencontainers.image.ref.name"

struct pc_pull_layout {
    char *dir;
};

struct pc_pull_layout_blob {
    int fd;
    char *tmp;
    char *final;
};

static char *path_join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return p;
}

static int mkdir_ok(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        pc_error_set("%s exists and is not a directory", path);
        return PC_EINVAL;
    }
    pc_error_set("cannot create %s: %s", path, strerror(errno));
    return PC_ERR;
}

static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    bool empty = true;
    if (!d)
        return false;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

/* A temporary file in the directory of final: "<dir>/.<base>.tmp-XXXXXX". */
static int tmp_open(const char *final, char **tmp_out)
{
    const char *slash = strrchr(final, '/');
    size_t dlen = slash ? (size_t)(slash - final) : 0;
    const char *base = slash ? slash + 1 : final;
    size_t n = strlen(final) + 16;
    char *tmp = malloc(n);
    if (!tmp) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    snprintf(tmp, n, "%.*s%s.%s.tmp-XXXXXX", (int)dlen, final, slash ? "/" : "", base);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        pc_error_set("cannot create a temporary file next to %s: %s", final, strerror(errno));
        free(tmp);
        return PC_ERR;
    }
    fchmod(fd, 0644);
    *tmp_out = tmp;
    return fd;
}

/* Write buf to path through a temporary file and rename. */
static int write_file(const char *path, const void *buf, size_t len)
{
    char *tmp = NULL;
    int fd = tmp_open(path, &tmp);
    if (fd < 0)
        return fd;
    if (pc_util_write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        pc_error_set("cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        pc_error_set("cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        pc_error_set("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(tmp);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return PC_ERR;
}

int pc_pull_layout_open(pc_pull_layout **out, const char *dir)
{
    int rc;
    char *marker = NULL, *blobs = NULL, *sha = NULL;
    pc_pull_layout *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (!l || !(l->dir = strdup(dir))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    marker = path_join(dir, "oci-layout", NULL);
    blobs = path_join(dir, "blobs", NULL);
    sha = path_join(dir, "blobs", "sha256");
    if (!marker || !blobs || !sha) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    if ((rc = mkdir_ok(dir)) != 0)
        goto done;
    if (access(marker, F_OK) != 0 && !dir_empty(dir)) {
        pc_error_set("%s is not empty and not an OCI image layout (no oci-layout file); "
                     "give a new or empty directory",
                     dir);
        rc = PC_EEXISTS;
        goto done;
    }
    if ((rc = mkdir_ok(blobs)) != 0 || (rc = mkdir_ok(sha)) != 0)
        goto done;
    if (access(marker, F_OK) != 0) {
        static const char text[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        if ((rc = write_file(marker, text, sizeof(text) - 1)) != 0)
            goto done;
    }
    *out = l;
    l = NULL;
done:
    free(marker);
    free(blobs);
    free(sha);
    pc_pull_layout_close(l);
    return rc;
}

void pc_pull_layout_close(pc_pull_layout *l)
{
    if (!l)
        return;
    free(l->dir);
    free(l);
}

/* blobs/<alg>/<hex> of d, creating blobs/<alg>. NULL when out of memory
 * or the directory cannot be made (message set). */
static char *blob_path(pc_pull_layout *l, const pc_digest *d)
{
    char *algdir = path_join(l->dir, "blobs", pc_digest_alg_name(d->alg));
    char *p = NULL;
    if (!algdir) {
        pc_error_set("out of memory");
        return NULL;
    }
    if (d->alg == PC_DIGEST_SHA256 || mkdir_ok(algdir) == 0) {
        p = path_join(algdir, pc_digest_hex(d), NULL);
        if (!p)
            pc_error_set("out of memory");
    }
    free(algdir);
    return p;
}

bool pc_pull_layout_has(pc_pull_layout *l, const pc_digest *d, uint64_t size)
{
    char *p = blob_path(l, d);
    bool ok = false;
    struct stat st;
    pc_digest got;
    if (!p)
        return false;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size &&
             pc_digest_fd(&got, d->alg, fd) == 0 && pc_digest_equal(&got, d);
        close(fd);
    }
    free(p);
    return ok;
}

int pc_pull_layout_blob_begin(pc_pull_layout *l, const pc_digest *d, pc_pull_layout_blob **out)
{
    pc_pull_layout_blob *b = calloc(1, sizeof(*b));
    *out = NULL;
    if (!b) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    b->fd = -1;
    if (!(b->final = blob_path(l, d))) {
        free(b);
        return PC_ERR;
    }
    int fd = tmp_open(b->final, &b->tmp);
    if (fd < 0) {
        free(b->final);
        free(b);
        return fd;
    }
    b->fd = fd;
    *out = b;
    return 0;
}

int pc_pull_layout_blob_write(pc_pull_layout_blob *b, const void *buf, size_t len)
{
    if (pc_util_write_all(b->fd, buf, len) != 0) {
        pc_error_set("cannot write %s: %s", b->tmp, strerror(errno));
        return PC_ERR;
    }
    return 0;
}

void pc_pull_layout_blob_abort(pc_pull_layout_blob *b)
{
    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    if (b->tmp)
        unlink(b->tmp);
    free(b->tmp);
    free(b->final);
    free(b);
}

int pc_pull_layout_blob_commit(pc_pull_layout_blob *b)
{
    int rc = 0;
    if (fsync(b->fd) != 0 || close(b->fd) != 0) {
        pc_error_set("cannot write %s: %s", b->tmp, strerror(errno));
        rc = PC_ERR;
    }
    b->fd = -1;
    if (rc == 0 && rename(b->tmp, b->final) != 0) {
        pc_error_set("cannot rename %s to %s: %s", b->tmp, b->final, strerror(errno));
        rc = PC_ERR;
    }
    if (rc == 0) {
        free(b->tmp);
        b->tmp = NULL;
    }
    pc_pull_layout_blob_abort(b);
    return rc;
}

int pc_pull_layout_put(pc_pull_layout *l, const pc_digest *d, const void *buf, size_t len)
{
    pc_digest got;
    if (pc_digest_buffer(&got, d->alg, buf, len) != 0) {
        pc_error_set("cannot hash %s", d->str);
        return PC_ERR;
    }
    if (!pc_digest_equal(&got, d)) {
        pc_error_set("content of %s hashes to %s", d->str, got.str);
        return PC_EDIGEST;
    }
    char *p = blob_path(l, d);
    if (!p)
        return PC_ERR;
    int rc = write_file(p, buf, len);
    free(p);
    return rc;
}

/* Whether an index.json entry is the one desc/ref_name replaces. */
static bool entry_replaced(json_t *e, const pc_pull_desc *desc, const char *ref_name)
{
    const char *name =
        json_string_value(json_object_get(json_object_get(e, "annotations"), REF_NAME));
    if (ref_name && *ref_name)
        return name && strcmp(name, ref_name) == 0;
    const char *dg = json_string_value(json_object_get(e, "digest"));
    return !name && dg && strcmp(dg, desc->digest.str) == 0;
}

static json_t *desc_json(const pc_pull_desc *desc, const char *ref_name)
{
    json_t *e = json_pack("{s:s, s:s, s:I}", "mediaType", desc->media_type, "digest",
                          desc->digest.str, "size", (json_int_t)desc->size);
    if (!e)
        return NULL;
    if (desc->has_platform) {
        json_t *p =
            json_pack("{s:s, s:s}", "architecture", desc->platform.arch, "os", desc->platform.os);
        if (!p ||
            (desc->platform.variant[0] &&
             json_object_set_new(p, "variant", json_string(desc->platform.variant))) ||
            json_object_set_new(e, "platform", p)) {
            json_decref(e);
            return NULL;
        }
    }
    if (ref_name && *ref_name &&
        json_object_set_new(e, "annotations", json_pack("{s:s}", REF_NAME, ref_name))) {
        json_decref(e);
        return NULL;
    }
    return e;
}

int pc_pull_layout_tag(pc_pull_layout *l, const pc_pull_desc *desc, const char *ref_name)
{
    int rc = PC_ENOMEM;
    json_t *idx = NULL, *list, *e;
    char *text = NULL, *path = path_join(l->dir, "index.json", NULL);
    json_error_t jerr;

    if (!path) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    if (access(path, F_OK) == 0) {
        idx = json_load_file(path, 0, &jerr);
        if (!json_is_object(idx) || !json_is_array(json_object_get(idx, "manifests"))) {
            pc_error_set("%s is not an OCI image index (%s); remove it or use another directory",
                         path, idx ? "no manifests array" : jerr.text);
            rc = PC_EINVAL;
            goto done;
        }
    } else {
        idx = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", PC_MT_OCI_INDEX,
                        "manifests");
        if (!idx) {
            pc_error_set("out of memory");
            goto done;
        }
    }
    list = json_object_get(idx, "manifests");
    for (size_t i = json_array_size(list); i-- > 0;) {
        if (entry_replaced(json_array_get(list, i), desc, ref_name))
            json_array_remove(list, i);
    }
    if (!(e = desc_json(desc, ref_name)) || json_array_append_new(list, e) ||
        !(text = json_dumps(idx, JSON_COMPACT))) {
        pc_error_set("out of memory");
        goto done;
    }
    rc = write_file(path, text, strlen(text));
done:
    free(text);
    free(path);
    json_decref(idx);
    return rc;
}

int pc_pull_layout_read(pc_pull_layout *l, const pc_digest *d, size_t max, char **buf, size_t *len)
{
    int rc = PC_ERR;
    char *p = blob_path(l, d), *b = NULL;
    struct stat st;
    int fd = -1;

    *buf = NULL;
    *len = 0;
    if (!p)
        return PC_ERR;
    if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
        pc_error_set("cannot open %s: %s", p, strerror(errno));
        rc = errno == ENOENT ? PC_ENOTFOUND : PC_ERR;
        goto done;
    }
    if (fstat(fd, &st) != 0 || st.st_size < 0) {
        pc_error_set("cannot stat %s: %s", p, strerror(errno));
        goto done;
    }
    if ((uint64_t)st.st_size > max) {
        pc_error_set("%s is larger than %zu bytes", p, max);
        rc = PC_ETOOBIG;
        goto done;
    }
    if (!(b = malloc((size_t)st.st_size + 1))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            pc_error_set("cannot read %s: %s", p, r < 0 ? strerror(errno) : "short file");
            goto done;
        }
        got += (size_t)r;
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    b = NULL;
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    free(b);
    free(p);
    return rc;
}
