/*
 * test_blobstore.c - unit tests of the filesystem blob store
 * (blobstore_fs.c): publishing only verified content, uploads across
 * restarts, path validation, readers, listings that ignore junk.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blobstore.h"

typedef struct {
    char dir[64];
    pc_blobstore *bs;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pc-blobstore-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(pc_blobstore_fs_open(&f->bs, f->dir), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->bs)
        f->bs->free(f->bs);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    f->bs->free(f->bs);
    f->bs = NULL;
    assert_int_equal(pc_blobstore_fs_open(&f->bs, f->dir), 0);
}

static pc_digest digest_of(pc_digest_alg alg, const char *s)
{
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, alg, s, strlen(s)), 0);
    return d;
}

/* Path of a file under the store root. */
static void path_in(const fixture *f, char *out, size_t size, const char *rel)
{
    int n = snprintf(out, size, "%s/%s", f->dir, rel);
    assert_true(n > 0 && (size_t)n < size);
}

static void write_file(const fixture *f, const char *rel, const char *content)
{
    char p[512];
    path_in(f, p, sizeof(p), rel);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

static bool file_exists(const fixture *f, const char *rel)
{
    char p[512];
    struct stat st;
    path_in(f, p, sizeof(p), rel);
    return stat(p, &st) == 0;
}

/* Number of entries (other than . and ..) in a directory under the root. */
static int count_entries(const fixture *f, const char *rel)
{
    char cmd[600];
    char p[512];
    path_in(f, p, sizeof(p), rel);
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", p);
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    int n = -1;
    assert_int_equal(fscanf(fp, "%d", &n), 1);
    pclose(fp);
    return n;
}

typedef struct {
    int n;
    pc_digest seen[16];
    uint64_t sizes[16];
    int stop_after;
} collect;

static int collect_cb(const pc_digest *d, uint64_t size, void *ctx)
{
    collect *c = ctx;
    if (c->n < 16) {
        c->seen[c->n] = *d;
        c->sizes[c->n] = size;
    }
    c->n++;
    return (c->stop_after && c->n >= c->stop_after) ? 7 : 0;
}

static int count_blobs(pc_blobstore *bs)
{
    collect c = {0};
    assert_int_equal(bs->foreach (bs, collect_cb, &c), 0);
    return c.n;
}

static void test_put_get_stat(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    const char *data = "hello, blob";
    pc_digest d = digest_of(PC_DIGEST_SHA256, data);
    uint64_t size = 0;

    assert_int_equal(bs->version, PC_BLOBSTORE_VERSION);
    assert_int_equal(bs->stat(bs, &d, &size), PC_ENOTFOUND);
    assert_int_equal(bs->put(bs, &d, data, strlen(data)), 0);
    assert_int_equal(bs->stat(bs, &d, &size), 0);
    assert_int_equal(size, strlen(data));
    /* again: already there, still success */
    assert_int_equal(bs->put(bs, &d, data, strlen(data)), 0);

    char rel[256];
    const char *hex = pc_digest_hex(&d);
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/%s", hex, hex);
    assert_true(file_exists(f, rel));
    assert_int_equal(count_entries(f, "tmp"), 0);

    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(bs->get(bs, &d, 1024, &buf, &len), 0);
    assert_int_equal(len, strlen(data));
    assert_memory_equal(buf, data, len);
    free(buf);
    buf = NULL;
    assert_int_equal(bs->get(bs, &d, 3, &buf, &len), PC_ETOOBIG);
    assert_null(buf);

    /* an empty blob is a blob too */
    pc_digest empty = digest_of(PC_DIGEST_SHA256, "");
    assert_int_equal(bs->put(bs, &empty, "", 0), 0);
    assert_int_equal(bs->get(bs, &empty, 0, &buf, &len), 0);
    assert_int_equal(len, 0);
    free(buf);
}

static void test_put_sha512(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    const char *data = "long digest";
    pc_digest d = digest_of(PC_DIGEST_SHA512, data);
    uint64_t size = 0;
    assert_int_equal(bs->put(bs, &d, data, strlen(data)), 0);
    assert_int_equal(bs->stat(bs, &d, &size), 0);
    assert_int_equal(size, strlen(data));
    collect c = {0};
    assert_int_equal(bs->foreach (bs, collect_cb, &c), 0);
    assert_int_equal(c.n, 1);
    assert_true(pc_digest_equal(&c.seen[0], &d));
}

static void test_put_wrong_digest(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    pc_digest d = digest_of(PC_DIGEST_SHA256, "what was promised");
    const char *data = "what was sent";
    uint64_t size;
    assert_int_equal(bs->put(bs, &d, data, strlen(data)), PC_EDIGEST);
    assert_true(strlen(pc_error_last()) > 0);
    assert_int_equal(bs->stat(bs, &d, &size), PC_ENOTFOUND);
    pc_digest actual = digest_of(PC_DIGEST_SHA256, data);
    assert_int_equal(bs->stat(bs, &actual, &size), PC_ENOTFOUND);
    assert_int_equal(count_blobs(bs), 0);
    assert_int_equal(count_entries(f, "tmp"), 0);
}

static void test_remove(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    pc_digest d = digest_of(PC_DIGEST_SHA256, "gone soon");
    uint64_t size;
    assert_int_equal(bs->remove(bs, &d), PC_ENOTFOUND);
    assert_int_equal(bs->put(bs, &d, "gone soon", 9), 0);
    assert_int_equal(bs->remove(bs, &d), 0);
    assert_int_equal(bs->stat(bs, &d, &size), PC_ENOTFOUND);
    assert_int_equal(bs->remove(bs, &d), PC_ENOTFOUND);
    pc_blob_reader *r = NULL;
    assert_int_equal(bs->open(bs, &d, &r), PC_ENOTFOUND);
    void *buf = NULL;
    size_t len;
    assert_int_equal(bs->get(bs, &d, 100, &buf, &len), PC_ENOTFOUND);
}

/* Append s to the string in buf (of size bytes). */
static void append(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf), m = strlen(s);
    assert_true(n + m < size);
    memcpy(buf + n, s, m + 1);
}

typedef struct {
    int n;
    char id[8][80];
    uint64_t size[8];
    long age[8];
} upload_list;

static int upload_cb(const char *id, uint64_t size, long age_s, void *ctx)
{
    upload_list *l = ctx;
    if (l->n < 8) {
        snprintf(l->id[l->n], sizeof(l->id[0]), "%s", id);
        l->size[l->n] = size;
        l->age[l->n] = age_s;
    }
    l->n++;
    return 0;
}

static void test_upload_across_restart(void **state)
{
    fixture *f = *state;
    const char *id = "3f2a-Upload-0001";
    const char *parts[] = {"first part, ", "second part, ", "", "third part"};
    char whole[128] = "";
    pc_blob_writer *w = NULL;
    uint64_t size = 0;

    assert_int_equal(f->bs->upload_open(f->bs, id, false, &w), PC_ENOTFOUND);
    assert_int_equal(f->bs->upload_open(f->bs, id, true, &w), 0);
    assert_int_equal(w->size, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w->write(w, parts[i], strlen(parts[i])), 0);
        append(whole, sizeof(whole), parts[i]);
    }
    assert_int_equal(w->size, strlen(whole));
    w->close(w);

    /* a restart: the upload survives in staging */
    reopen(f);
    pc_blobstore *bs = f->bs;
    assert_int_equal(bs->upload_open(bs, id, true, &w), PC_EEXISTS);
    assert_int_equal(bs->upload_stat(bs, id, &size), 0);
    assert_int_equal(size, strlen(whole));
    upload_list l = {0};
    assert_int_equal(bs->upload_foreach(bs, upload_cb, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], id);
    assert_int_equal(l.size[0], strlen(whole));
    assert_true(l.age[0] >= 0 && l.age[0] < 60);

    assert_int_equal(bs->upload_open(bs, id, false, &w), 0);
    assert_int_equal(w->size, strlen(whole));
    assert_int_equal(w->write(w, parts[3], strlen(parts[3])), 0);
    append(whole, sizeof(whole), parts[3]);
    assert_int_equal(w->size, strlen(whole));
    w->close(w);

    pc_digest d = digest_of(PC_DIGEST_SHA256, whole);
    assert_int_equal(bs->stat(bs, &d, &size), PC_ENOTFOUND);
    assert_int_equal(bs->upload_commit(bs, id, &d), 0);
    assert_int_equal(bs->stat(bs, &d, &size), 0);
    assert_int_equal(size, strlen(whole));
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(bs->get(bs, &d, 4096, &buf, &len), 0);
    assert_int_equal(len, strlen(whole));
    assert_memory_equal(buf, whole, len);
    free(buf);

    assert_int_equal(bs->upload_stat(bs, id, &size), PC_ENOTFOUND);
    assert_int_equal(bs->upload_commit(bs, id, &d), PC_ENOTFOUND);
    assert_int_equal(count_entries(f, "uploads"), 0);
}

static void test_upload_large(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    enum { CHUNK = 1 << 20, N = 5 };
    char *chunk = malloc(CHUNK);
    assert_non_null(chunk);
    pc_hasher *h = NULL;
    assert_int_equal(pc_hasher_new(&h, PC_DIGEST_SHA256), 0);
    pc_blob_writer *w = NULL;
    assert_int_equal(bs->upload_open(bs, "big", true, &w), 0);
    for (int i = 0; i < N; i++) {
        memset(chunk, 'a' + i, CHUNK);
        assert_int_equal(w->write(w, chunk, CHUNK), 0);
        assert_int_equal(pc_hasher_update(h, chunk, CHUNK), 0);
    }
    w->close(w);
    pc_digest d;
    assert_int_equal(pc_hasher_final(h, &d), 0);
    pc_hasher_free(h);
    assert_int_equal(bs->upload_commit(bs, "big", &d), 0);
    uint64_t size = 0;
    assert_int_equal(bs->stat(bs, &d, &size), 0);
    assert_int_equal(size, (uint64_t)CHUNK * N);
    free(chunk);
}

static void test_commit_wrong_digest(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    pc_blob_writer *w = NULL;
    uint64_t size;
    assert_int_equal(bs->upload_open(bs, "bad-upload", true, &w), 0);
    assert_int_equal(w->write(w, "tampered", 8), 0);
    w->close(w);
    pc_digest claimed = digest_of(PC_DIGEST_SHA256, "original");
    assert_int_equal(bs->upload_commit(bs, "bad-upload", &claimed), PC_EDIGEST);
    assert_int_equal(bs->stat(bs, &claimed, &size), PC_ENOTFOUND);
    pc_digest actual = digest_of(PC_DIGEST_SHA256, "tampered");
    assert_int_equal(bs->stat(bs, &actual, &size), PC_ENOTFOUND);
    assert_int_equal(bs->upload_stat(bs, "bad-upload", &size), PC_ENOTFOUND);
    assert_int_equal(count_blobs(bs), 0);
    assert_int_equal(count_entries(f, "uploads"), 0);
}

static void test_commit_existing_blob(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    pc_digest d = digest_of(PC_DIGEST_SHA256, "twice");
    assert_int_equal(bs->put(bs, &d, "twice", 5), 0);
    pc_blob_writer *w = NULL;
    assert_int_equal(bs->upload_open(bs, "again", true, &w), 0);
    assert_int_equal(w->write(w, "twice", 5), 0);
    w->close(w);
    assert_int_equal(bs->upload_commit(bs, "again", &d), 0);
    uint64_t size;
    assert_int_equal(bs->upload_stat(bs, "again", &size), PC_ENOTFOUND);
    assert_int_equal(bs->stat(bs, &d, &size), 0);
    assert_int_equal(size, 5);
    assert_int_equal(count_blobs(bs), 1);
}

static void test_upload_remove_and_age(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    pc_blob_writer *w = NULL;
    assert_int_equal(bs->upload_remove(bs, "nope"), PC_ENOTFOUND);
    assert_int_equal(bs->upload_open(bs, "old-one", true, &w), 0);
    assert_int_equal(w->write(w, "abc", 3), 0);
    w->close(w);
    assert_int_equal(bs->upload_open(bs, "new-one", true, &w), 0);
    w->close(w);
    /* junk that is not an upload id is not listed */
    write_file(f, "uploads/not.an.id", "x");

    char p[512];
    path_in(f, p, sizeof(p), "uploads/old-one");
    struct timespec ts[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);

    upload_list l = {0};
    assert_int_equal(bs->upload_foreach(bs, upload_cb, &l), 0);
    assert_int_equal(l.n, 2);
    for (int i = 0; i < 2; i++) {
        if (strcmp(l.id[i], "old-one") == 0) {
            assert_true(l.age[i] >= 7200 && l.age[i] < 7300);
            assert_int_equal(l.size[i], 3);
        } else {
            assert_string_equal(l.id[i], "new-one");
            assert_true(l.age[i] < 60);
            assert_int_equal(l.size[i], 0);
        }
    }
    assert_int_equal(bs->upload_remove(bs, "old-one"), 0);
    uint64_t size;
    assert_int_equal(bs->upload_stat(bs, "old-one", &size), PC_ENOTFOUND);
    assert_int_equal(bs->upload_stat(bs, "new-one", &size), 0);
}

static void test_invalid_ids_and_digests(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    const char *bad[] = {"", ".", "..", "../x", "a/b", "a b", "a.b", "a_b", "\xc3\xa4", long_id};
    pc_digest d = digest_of(PC_DIGEST_SHA256, "x");
    pc_blob_writer *w = NULL;
    uint64_t size;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(pc_upload_id_valid(bad[i]));
        assert_int_equal(bs->upload_open(bs, bad[i], true, &w), PC_EINVAL);
        assert_int_equal(bs->upload_open(bs, bad[i], false, &w), PC_EINVAL);
        assert_int_equal(bs->upload_stat(bs, bad[i], &size), PC_EINVAL);
        assert_int_equal(bs->upload_commit(bs, bad[i], &d), PC_EINVAL);
        assert_int_equal(bs->upload_remove(bs, bad[i]), PC_EINVAL);
    }
    assert_false(pc_upload_id_valid(NULL));
    long_id[64] = '\0';
    assert_true(pc_upload_id_valid(long_id));
    assert_true(pc_upload_id_valid("0123-abcd-ABCD"));
    assert_int_equal(count_entries(f, "uploads"), 0);

    /* digests that could name another path are refused, never opened */
    pc_digest evil;
    memset(&evil, 0, sizeof(evil));
    evil.alg = PC_DIGEST_SHA256;
    snprintf(evil.str, sizeof(evil.str), "sha256:../../../../etc/passwd");
    pc_blob_reader *r = NULL;
    assert_int_equal(bs->stat(bs, &evil, &size), PC_EINVAL);
    assert_int_equal(bs->open(bs, &evil, &r), PC_EINVAL);
    assert_int_equal(bs->put(bs, &evil, "x", 1), PC_EINVAL);
    assert_int_equal(bs->remove(bs, &evil), PC_EINVAL);
    snprintf(evil.str, sizeof(evil.str), "sha256:%064d", 0);
    evil.str[20] = 'A'; /* uppercase hex is not canonical */
    assert_int_equal(bs->stat(bs, &evil, &size), PC_EINVAL);
    /* alg field disagreeing with the text */
    pc_digest mixed = d;
    mixed.alg = PC_DIGEST_SHA512;
    assert_int_equal(bs->stat(bs, &mixed, &size), PC_EINVAL);
    /* not NUL-terminated */
    memset(evil.str, 'a', sizeof(evil.str));
    assert_int_equal(bs->stat(bs, &evil, &size), PC_EINVAL);
    assert_int_equal(bs->upload_open(bs, "fine", true, &w), 0);
    w->close(w);
    assert_int_equal(bs->upload_commit(bs, "fine", &evil), PC_EINVAL);
    assert_int_equal(bs->upload_stat(bs, "fine", &size), 0);
}

static void test_reader(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    const char *data = "0123456789abcdefghij";
    pc_digest d = digest_of(PC_DIGEST_SHA256, data);
    assert_int_equal(bs->put(bs, &d, data, strlen(data)), 0);

    pc_blob_reader *r = NULL;
    assert_int_equal(bs->open(bs, &d, &r), 0);
    assert_int_equal(r->size, 20);
    assert_true(r->fd >= 0);
    assert_true(fcntl(r->fd, F_GETFD) & FD_CLOEXEC);

    char buf[32];
    /* through the fd, as sendfile would */
    assert_int_equal(pread(r->fd, buf, 5, 10), 5);
    assert_memory_equal(buf, "abcde", 5);
    /* through read() */
    assert_int_equal(r->read(r, 0, buf, 4), 4);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(r->read(r, 15, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "fghij", 5);
    assert_int_equal(r->read(r, 20, buf, sizeof(buf)), 0);
    assert_int_equal(r->read(r, 1000, buf, sizeof(buf)), 0);
    r->close(r);

    /* a caller that takes the fd keeps it open past close() */
    assert_int_equal(bs->open(bs, &d, &r), 0);
    int fd = r->fd;
    r->fd = -1;
    r->close(r);
    assert_int_equal(pread(fd, buf, 3, 0), 3);
    assert_memory_equal(buf, "012", 3);
    close(fd);
}

static void test_foreach_ignores_junk(void **state)
{
    fixture *f = *state;
    pc_blobstore *bs = f->bs;
    const char *contents[] = {"one", "two", "three"};
    pc_digest ds[3];
    for (int i = 0; i < 3; i++) {
        ds[i] = digest_of(i == 2 ? PC_DIGEST_SHA512 : PC_DIGEST_SHA256, contents[i]);
        assert_int_equal(bs->put(bs, &ds[i], contents[i], strlen(contents[i])), 0);
    }
    const char *hex = pc_digest_hex(&ds[0]);
    char rel[400], name[80];

    /* junk at every level */
    write_file(f, "blobs/sha256/README", "junk");
    char p[512];
    path_in(f, p, sizeof(p), "blobs/sha256/zz");
    assert_int_equal(mkdir(p, 0755), 0);
    write_file(f, "blobs/sha256/zz/zzzz", "junk");
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/short", hex);
    write_file(f, rel, "junk");
    /* right length, wrong fan-out directory */
    snprintf(name, sizeof(name), "%s", hex);
    name[0] = name[0] == 'f' ? '0' : 'f';
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/%s", hex, name);
    write_file(f, rel, "junk");
    /* uppercase hex */
    snprintf(name, sizeof(name), "%s", hex);
    for (char *c = name; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    if (strcmp(name, hex) != 0) {
        snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/%s", hex, name);
        write_file(f, rel, "junk");
    }
    /* a leftover temp name next to the blob */
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/%s.tmp", hex, hex);
    write_file(f, rel, "junk");
    /* a directory with a blob's name */
    pc_digest dirdig = digest_of(PC_DIGEST_SHA256, "a directory");
    const char *dhex = pc_digest_hex(&dirdig);
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s", dhex);
    path_in(f, p, sizeof(p), rel);
    mkdir(p, 0755);
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/%s", dhex, dhex);
    path_in(f, p, sizeof(p), rel);
    assert_int_equal(mkdir(p, 0755), 0);
    /* an unknown algorithm directory */
    path_in(f, p, sizeof(p), "blobs/md5");
    assert_int_equal(mkdir(p, 0755), 0);

    collect c = {0};
    assert_int_equal(bs->foreach (bs, collect_cb, &c), 0);
    assert_int_equal(c.n, 3);
    for (int i = 0; i < 3; i++) {
        bool found = false;
        for (int j = 0; j < c.n; j++)
            if (pc_digest_equal(&c.seen[j], &ds[i])) {
                found = true;
                assert_int_equal(c.sizes[j], strlen(contents[i]));
            }
        assert_true(found);
    }
    uint64_t size;
    assert_int_equal(bs->stat(bs, &dirdig, &size), PC_ENOTFOUND);

    /* stopping early hands back the callback's value */
    collect stop = {.stop_after = 1};
    assert_int_equal(bs->foreach (bs, collect_cb, &stop), 7);
    assert_int_equal(stop.n, 1);
}

static void test_tmp_is_not_a_blob(void **state)
{
    fixture *f = *state;
    pc_digest d = digest_of(PC_DIGEST_SHA256, "stray");
    char rel[200];
    snprintf(rel, sizeof(rel), "tmp/%s", pc_digest_hex(&d));
    write_file(f, rel, "stray");
    write_file(f, "tmp/put-fresh1", "in flight");
    write_file(f, "tmp/put-stale1", "crash leftover");
    char p[512];
    path_in(f, p, sizeof(p), "tmp/put-stale1");
    struct timespec ts[2] = {{time(NULL) - 86400, 0}, {time(NULL) - 86400, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);

    uint64_t size;
    assert_int_equal(f->bs->stat(f->bs, &d, &size), PC_ENOTFOUND);
    assert_int_equal(count_blobs(f->bs), 0);

    /* open removes stale temp files only */
    reopen(f);
    assert_false(file_exists(f, "tmp/put-stale1"));
    assert_true(file_exists(f, "tmp/put-fresh1"));
    assert_int_equal(f->bs->stat(f->bs, &d, &size), PC_ENOTFOUND);
    assert_int_equal(count_blobs(f->bs), 0);
}

typedef struct {
    pc_blobstore *bs;
    int index;
    int failures;
} thread_arg;

static void *put_thread(void *p)
{
    thread_arg *a = p;
    char buf[64];
    for (int i = 0; i < 50; i++) {
        /* half shared content, half per thread */
        snprintf(buf, sizeof(buf), "blob %d of %d", i, (i % 2) ? a->index : -1);
        pc_digest d;
        pc_blob_reader *r = NULL;
        if (pc_digest_buffer(&d, PC_DIGEST_SHA256, buf, strlen(buf)) != 0 ||
            a->bs->put(a->bs, &d, buf, strlen(buf)) != 0 || a->bs->open(a->bs, &d, &r) != 0) {
            a->failures++;
            continue;
        }
        char back[64];
        if (r->read(r, 0, back, sizeof(back)) != (long)strlen(buf) ||
            memcmp(back, buf, strlen(buf)) != 0)
            a->failures++;
        r->close(r);
    }
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){.bs = f->bs, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, put_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].failures, 0);
    }
    assert_int_equal(count_blobs(f->bs), 25 + 4 * 25);
    assert_int_equal(count_entries(f, "tmp"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_stat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_sha512, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_wrong_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_wrong_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_existing_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_remove_and_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_ids_and_digests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_ignores_junk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_is_not_a_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
