/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_store_blob.c - the one backend test suite of the blob interface
 * version 2 (store/blob.h): every case runs against every backend in
 * `kinds` (fs in a temp dir, mem, and mem asking for 4 KiB parts as an
 * object store does), and s3 (path-style) and s3-vhost (virtual-host
 * addressing, and large blobs published by copied parts) against a real
 * S3 service when PULLCACHE_TEST_S3_ENV names an
 * env file as tests/tools/rgw.sh writes it (ctest unit.store_blob_s3 starts
 * radosgw for that). PULLCACHE_TEST_BLOB_KINDS
 * (comma-separated names) runs only those kinds.
 *
 * s3 cannot backdate a blob (LastModified is the server's clock): its
 * listing case checks that every age is young instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/blob.h"
#include "store/blob_s3.h"
#include "store/hash.h"
#include "testutil.h"
#include "util.h"

#include <curl/curl.h>

/* ---- the backends under test ---- */

typedef struct kind kind;
typedef struct {
    const kind *k;
    char dir[64];
    char prefix[96]; /* s3: this case's key prefix in the bucket */
    pc_blob_backend *be;
} fixture;

struct kind {
    const char *name;
    int (*open)(fixture *f);
    /* Make blob d look seconds older; NULL when the backend cannot. */
    int (*backdate)(fixture *f, const pc_digest *d, long seconds);
    /* Put an upload as version 1 left it (bytes, no saved state); NULL
     * when the backend has no version 1 data. */
    void (*v1_upload)(fixture *f, const char *id, const void *buf, size_t len);
};

static int fs_kind_open(fixture *f)
{
    return pc_blob_fs_open(&f->be, f->dir);
}

static int fs_backdate(fixture *f, const pc_digest *d, long seconds)
{
    char path[512];
    assert_int_equal(f->be->locate(f->be, PC_BLOB_IN_BLOBS, d->str, path, sizeof(path)), 0);
    struct timespec ts[2] = {{time(NULL) - seconds, 0}, {time(NULL) - seconds, 0}};
    return utimensat(AT_FDCWD, path, ts, 0);
}

static void fs_v1_upload(fixture *f, const char *id, const void *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/uploads/%s", f->dir, id);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static int mem_kind_open(fixture *f)
{
    return pc_blob_mem_open(&f->be);
}

static int mem_backdate(fixture *f, const pc_digest *d, long seconds)
{
    return pc_blob_mem_backdate(f->be, d, seconds);
}

/* mem asking for parts of PART bytes: every append but the last of a
 * write run must be at least that long (checked in parts_append). */
#define PART 4096
static int (*mem_append)(pc_blob_wr *w, const void *buf, size_t len);
static int (*mem_writer)(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out);
static _Atomic size_t small_appends, big_appends;

static int parts_append(pc_blob_wr *w, const void *buf, size_t len)
{
    if (len < PART)
        small_appends++;
    else
        big_appends++;
    return mem_append(w, buf, len);
}

static int parts_writer(pc_blob_backend *be, const char *id, bool create, pc_blob_wr **out)
{
    int rc = mem_writer(be, id, create, out);
    if (rc == 0)
        (*out)->append = parts_append;
    return rc;
}

static int parts_kind_open(fixture *f)
{
    int rc = pc_blob_mem_open(&f->be);
    if (rc == 0) {
        f->be->min_part = PART;
        mem_writer = f->be->writer;
        f->be->writer = parts_writer;
        pc_blob_wr *w; /* the backend's own append, set once before any thread */
        if ((rc = mem_writer(f->be, NULL, true, &w)) == 0) {
            mem_append = w->append;
            w->cancel(w);
        }
    }
    small_appends = big_appends = 0;
    return rc;
}

/* s3: the service named by the env file $PULLCACHE_TEST_S3_ENV (S3_ENDPOINT,
 * S3_REGION, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY lines; s3-vhost also
 * S3_VHOST_ENDPOINT), each case under a prefix of its own. */
static char s3_env[6][256];

static bool s3_env_load(void)
{
    static const char *const names[] = {"S3_ENDPOINT=",   "S3_REGION=",     "S3_BUCKET=",
                                        "S3_ACCESS_KEY=", "S3_SECRET_KEY=", "S3_VHOST_ENDPOINT="};
    const char *path = getenv("PULLCACHE_TEST_S3_ENV");
    FILE *fp = path ? fopen(path, "r") : NULL;
    char line[300];
    if (!fp)
        return false;
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\n")] = '\0';
        for (size_t i = 0; i < 6; i++)
            if (strncmp(line, names[i], strlen(names[i])) == 0)
                snprintf(s3_env[i], sizeof(s3_env[i]), "%s", line + strlen(names[i]));
    }
    fclose(fp);
    for (size_t i = 0; i < 5; i++)
        if (!s3_env[i][0])
            return false;
    /* the client reads credentials from the environment here */
    setenv("AWS_ACCESS_KEY_ID", s3_env[3], 1);
    setenv("AWS_SECRET_ACCESS_KEY", s3_env[4], 1);
    return true;
}

static int s3_open_as(fixture *f, bool path_style)
{
    static _Atomic unsigned n;
    if (!f->prefix[0])
        snprintf(f->prefix, sizeof(f->prefix), "test-%d-%u-%ld", (int)getpid(), n++,
                 (long)time(NULL));
    pc_blob_s3_opts o = {.s3 = {.endpoint = path_style ? s3_env[0] : s3_env[5],
                                .region = s3_env[1],
                                .bucket = s3_env[2],
                                .prefix = f->prefix,
                                .path_style = path_style},
                         .redirect = true,
                         .redirect_ttl = 300,
                         /* s3-vhost publishes blobs over 6 MiB by copied parts
                          * (UploadPartCopy) instead of one CopyObject */
                         .copy_max = path_style ? 0 : (uint64_t)6 << 20};
    return pc_blob_open_opts("s3", NULL, &o, &f->be);
}

static int s3_kind_open(fixture *f)
{
    return s3_open_as(f, true);
}

/* The same service addressed as BUCKET.HOST (S3_VHOST_ENDPOINT). */
static int s3_vhost_kind_open(fixture *f)
{
    return s3_open_as(f, false);
}

static const kind kinds[] = {
    {"fs", fs_kind_open, fs_backdate, fs_v1_upload},    {"mem", mem_kind_open, mem_backdate, NULL},
    {"mem-parts", parts_kind_open, mem_backdate, NULL}, {"s3", s3_kind_open, NULL, NULL},
    {"s3-vhost", s3_vhost_kind_open, NULL, NULL},
};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->k = *state;
    print_message("[ backend %s ]\n", f->k->name);
    assert_non_null(pc_test_tmpdir(f->dir, sizeof(f->dir), "storeblob"));
    assert_int_equal(f->k->open(f), 0);
    assert_int_equal(pc_blob_backend_check(f->be), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->be)
        f->be->free(f->be);
    pc_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* A restart: the backend freed and opened again on the same place. Only
 * durable backends keep anything. */
static void restart(fixture *f)
{
    f->be->free(f->be);
    f->be = NULL;
    assert_int_equal(f->k->open(f), 0);
}

static bool durable(const fixture *f)
{
    return f->be->caps & PC_BLOB_CAP_DURABLE;
}

/* ---- helpers ---- */

static size_t http_sink(char *p, size_t sz, size_t n, void *ud)
{
    pc_buf *b = ud;
    pc_buf_add(b, p, sz * n);
    return sz * n;
}

/* A plain GET of url (no credentials): body and status. */
static int http_get(const char *url, unsigned char **body, uint64_t *len, long *status)
{
    CURL *h = curl_easy_init();
    pc_buf b = {0};
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    *len = b.len;
    *body = (unsigned char *)pc_buf_take(&b);
    return cc == CURLE_OK ? 0 : -1;
}

static pc_digest digest_of(const void *buf, size_t len)
{
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, buf, len), 0);
    return d;
}

static unsigned char *pattern(size_t len, unsigned seed)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)((i * 31 + seed * 7 + (i >> 8)) & 0xff);
    return p;
}

static void assert_content(pc_blob_backend *be, const pc_digest *d, const void *want, size_t len)
{
    void *got = NULL;
    size_t n = 0;
    assert_int_equal(pc_blob_get(be, d, len + 1, &got, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    free(got);
}

static void assert_absent(pc_blob_backend *be, const pc_digest *d)
{
    uint64_t size;
    pc_blob_rd *r = NULL;
    assert_int_equal(be->stat(be, d, &size), PC_ENOTFOUND);
    assert_int_equal(be->open(be, d, &r), PC_ENOTFOUND);
}

static int count_entry(const pc_blob_entry *e, void *ctx)
{
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t count_blobs(pc_blob_backend *be)
{
    size_t n = 0;
    assert_int_equal(be->list(be, count_entry, &n), 0);
    return n;
}

static int count_named(const char *name, uint64_t size, long age_s, void *ctx)
{
    (void)name;
    (void)size;
    (void)age_s;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t count_uploads(pc_blob_backend *be)
{
    size_t n = 0;
    assert_int_equal(be->upload_list(be, count_named, &n), 0);
    return n;
}

static int first_name(const char *name, uint64_t size, long age_s, void *ctx)
{
    (void)size;
    (void)age_s;
    snprintf(ctx, 128, "%s", name);
    return 0;
}

static size_t count_tmp(pc_blob_backend *be)
{
    size_t n = 0;
    if (be->tmp_list)
        assert_int_equal(be->tmp_list(be, count_named, &n), 0);
    return n;
}

/* ---- the cases ---- */

/* Verified before visible: the front end (pc_blob_up_finish) compares its
 * own hash of exactly the appended bytes with the claimed digest and
 * cancels on a mismatch; no backend is asked to commit under a digest
 * its bytes do not have, and nothing is visible before commit. */
static void test_verify_before_publish(void **state)
{
    fixture *f = *state;
    const char data[] = "layer bytes";
    const char other[] = "other bytes";
    pc_digest d = digest_of(data, sizeof(data) - 1);
    pc_digest claimed = digest_of(other, sizeof(other) - 1);
    pc_digest got;
    pc_blob_up *u;

    assert_int_equal(pc_blob_up_create(f->be, "up-wrong", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_write(u, data, sizeof(data) - 1), 0);
    assert_absent(f->be, &d); /* appended, not committed: invisible */
    assert_int_equal(pc_blob_up_finish(u, &claimed, &got), PC_EDIGEST);
    assert_true(pc_digest_equal(&got, &d));
    assert_absent(f->be, &claimed);
    assert_absent(f->be, &d);
    uint64_t size;
    assert_int_equal(f->be->upload_stat(f->be, "up-wrong", &size), PC_ENOTFOUND);

    /* a whole buffer that does not hash to its digest */
    assert_int_equal(pc_blob_put(f->be, &claimed, data, sizeof(data) - 1), PC_EDIGEST);
    assert_absent(f->be, &claimed);
    assert_int_equal(count_blobs(f->be), 0);
    assert_int_equal(count_tmp(f->be), 0);

    /* the right digest publishes */
    assert_int_equal(pc_blob_up_create(f->be, "up-right", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_write(u, data, 5), 0);
    assert_int_equal(pc_blob_up_write(u, data + 5, sizeof(data) - 1 - 5), 0);
    assert_int_equal(pc_blob_up_finish(u, &d, NULL), 0);
    assert_content(f->be, &d, data, sizeof(data) - 1);
    assert_int_equal(f->be->upload_stat(f->be, "up-right", &size), PC_ENOTFOUND);

    /* a digest named at the end in another algorithm than hashed */
    pc_digest d512b;
    assert_int_equal(pc_digest_buffer(&d512b, PC_DIGEST_SHA512, data, sizeof(data) - 1), 0);
    assert_int_equal(pc_blob_up_create(f->be, "up-512", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_write(u, data, sizeof(data) - 1), 0);
    assert_int_equal(pc_blob_up_finish(u, &d512b, NULL), 0);
    assert_content(f->be, &d512b, data, sizeof(data) - 1);

    /* sha512 too */
    pc_digest d512;
    assert_int_equal(pc_digest_buffer(&d512, PC_DIGEST_SHA512, other, sizeof(other) - 1), 0);
    assert_int_equal(pc_blob_put(f->be, &d512, other, sizeof(other) - 1), 0);
    assert_content(f->be, &d512, other, sizeof(other) - 1);
}

/* Crash rules: a process that dies mid-upload and mid-temp-write leaves
 * no visible blob; its upload resumes at the last checkpoint (the bytes
 * after it are dropped) and its temp file is listed as garbage. */
static void test_crash_leaves_garbage(void **state)
{
    fixture *f = *state;
    if (!durable(f)) {
        /* nothing survives the process: a crash leaves nothing at all */
        assert_int_equal(count_tmp(f->be), 0);
        skip();
    }
    unsigned char *data = pattern(3 * 65536, 3);
    pc_digest d = digest_of(data, 3 * 65536);
    /* the temp writer's bytes must reach the backend: past its min_part */
    size_t tlen = (size_t)f->be->min_part + 4096;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fixture cf = *f;
        pc_blob_up *u, *t;
        unsigned char *tdata = pattern(tlen, 1);
        if (f->k->open(&cf) || pc_blob_up_create(cf.be, "crash", PC_DIGEST_SHA256, &u) ||
            pc_blob_up_write(u, data, 65536) || pc_blob_up_checkpoint(u) ||
            pc_blob_up_write(u, data + 65536, 1000) ||
            pc_blob_up_create(cf.be, NULL, PC_DIGEST_SHA256, &t) ||
            pc_blob_up_write(t, tdata, tlen))
            _exit(1);
        _exit(0); /* dies holding both writers */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    restart(f);
    assert_int_equal(count_blobs(f->be), 0);
    assert_int_equal(count_tmp(f->be), 1); /* the temp writer's bytes: garbage */
    /* which gc removes once idle long enough, by the name listed */
    char name[128] = "";
    assert_int_equal(f->be->tmp_list(f->be, first_name, name), 0);
    assert_int_equal(f->be->tmp_remove(f->be, name, 3600), PC_EEXISTS);
    assert_int_equal(count_tmp(f->be), 1);
    assert_int_equal(f->be->tmp_remove(f->be, name, 0), 0);
    assert_int_equal(count_tmp(f->be), 0);
    assert_int_equal(f->be->tmp_remove(f->be, name, 0), PC_ENOTFOUND);
    assert_int_equal(f->be->tmp_remove(f->be, "../etc", 0), PC_EINVAL);
    uint64_t size;
    assert_int_equal(f->be->upload_stat(f->be, "crash", &size), 0);
    assert_int_equal(size, 65536);
    pc_blob_up *u;
    assert_int_equal(pc_blob_up_resume(f->be, "crash", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_size(u), 65536);
    assert_int_equal(pc_blob_up_write(u, data + 65536, 2 * 65536), 0);
    assert_int_equal(pc_blob_up_finish(u, &d, NULL), 0);
    assert_content(f->be, &d, data, 3 * 65536);
    free(data);
}

typedef struct {
    pc_blob_backend *be;
    const unsigned char *data;
    size_t len;
    pc_digest d;
    int n;
    int rc;
} writer_arg;

static void *commit_thread(void *p)
{
    writer_arg *a = p;
    char id[32];
    pc_blob_up *u;
    snprintf(id, sizeof(id), "same-%d", a->n);
    a->rc = pc_blob_up_create(a->be, a->n % 2 ? id : NULL, PC_DIGEST_SHA256, &u);
    for (size_t off = 0; a->rc == 0 && off < a->len; off += 1500) {
        size_t n = a->len - off < 1500 ? a->len - off : 1500;
        a->rc = pc_blob_up_write(u, a->data + off, n);
    }
    if (a->rc == 0)
        a->rc = pc_blob_up_finish(u, &a->d, NULL);
    return NULL;
}

static void *read_thread(void *p)
{
    writer_arg *a = p;
    unsigned char *buf = malloc(a->len);
    a->rc = 0;
    for (int i = 0; i < 200 && a->rc == 0; i++) {
        pc_blob_rd *r;
        if (a->be->open(a->be, &a->d, &r) != 0)
            continue; /* not committed yet */
        size_t off = 0;
        long n;
        while (off < a->len && (n = r->read(r, off, buf + off, a->len - off)) > 0)
            off += (size_t)n;
        if (r->size != a->len || off != a->len || memcmp(buf, a->data, a->len) != 0)
            a->rc = PC_EDIGEST; /* a torn or mixed blob */
        r->close(r);
    }
    free(buf);
    return NULL;
}

/* Concurrent commits of one digest all succeed; the blob is there once,
 * whole, and readers meanwhile see it whole or not at all. */
static void test_concurrent_writers_one_digest(void **state)
{
    fixture *f = *state;
    enum { N = 8, LEN = 200000 };
    unsigned char *data = pattern(LEN, 8);
    pc_digest d = digest_of(data, LEN);
    pthread_t th[N + 2];
    writer_arg a[N + 2];
    for (int i = 0; i < N + 2; i++) {
        a[i] = (writer_arg){f->be, data, LEN, d, i, -100};
        assert_int_equal(pthread_create(&th[i], NULL, i < N ? commit_thread : read_thread, &a[i]),
                         0);
    }
    for (int i = 0; i < N + 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].rc, 0);
    }
    assert_int_equal(count_blobs(f->be), 1);
    assert_content(f->be, &d, data, LEN);
    assert_int_equal(count_uploads(f->be), 0);
    assert_int_equal(count_tmp(f->be), 0);
    free(data);
}

/* Upload resume: close the writer (and restart a durable backend), reopen
 * at its size, restore the hash state, finish: the digest is right with
 * nothing read back. A chunk appended but not checkpointed is rolled back. */
static void test_upload_resume(void **state)
{
    fixture *f = *state;
    enum { LEN = 100000 };
    unsigned char *data = pattern(LEN, 5);
    pc_digest d = digest_of(data, LEN);
    pc_blob_up *u;
    uint64_t size;

    assert_int_equal(pc_blob_up_create(f->be, "resume-1", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_write(u, data, 40000), 0);
    assert_int_equal(pc_blob_up_checkpoint(u), 0);
    assert_int_equal(pc_blob_up_write(u, data + 40000, 777), 0); /* a chunk that fails */
    pc_blob_up_close(u);
    if (durable(f))
        restart(f);
    assert_int_equal(f->be->upload_stat(f->be, "resume-1", &size), 0);
    assert_int_equal(size, 40000);

    assert_int_equal(pc_blob_up_resume(f->be, "resume-1", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_size(u), 40000);
    assert_int_equal(pc_blob_up_write(u, data + 40000, 30001), 0);
    assert_int_equal(pc_blob_up_checkpoint(u), 0);
    pc_blob_up_close(u);
    assert_int_equal(pc_blob_up_resume(f->be, "resume-1", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_size(u), 70001);
    assert_int_equal(pc_blob_up_write(u, data + 70001, LEN - 70001), 0);
    assert_int_equal(pc_blob_up_finish(u, &d, NULL), 0);
    assert_content(f->be, &d, data, LEN);

    /* an upload left by version 1 (no saved state) is hashed once */
    if (f->k->v1_upload) {
        pc_digest d2 = digest_of(data, 5000);
        f->k->v1_upload(f, "old-upload", data, 3000);
        assert_int_equal(pc_blob_up_resume(f->be, "old-upload", PC_DIGEST_SHA256, &u), 0);
        assert_int_equal(pc_blob_up_size(u), 3000);
        assert_int_equal(pc_blob_up_write(u, data + 3000, 2000), 0);
        assert_int_equal(pc_blob_up_finish(u, &d2, NULL), 0);
        assert_content(f->be, &d2, data, 5000);
    }
    assert_int_equal(pc_blob_up_resume(f->be, "never-made", PC_DIGEST_SHA256, &u), PC_ENOTFOUND);
    assert_int_equal(pc_blob_up_create(f->be, "bad/id", PC_DIGEST_SHA256, &u), PC_EINVAL);
    free(data);
}

/* An upload of several parts (min_part, or 1 MiB where there is none):
 * chunks that end mid-part with a checkpoint (the tail kept aside), a
 * close and restart between them, a resume and a commit; and a temp
 * writer of the same size. */
static void test_large_parts(void **state)
{
    fixture *f = *state;
    size_t part = f->be->min_part ? (size_t)f->be->min_part : (size_t)1 << 20;
    size_t len = 2 * part + 12345, cut1 = part / 2 + 7, cut2 = part + part / 2 + 3;
    unsigned char *data = pattern(len, 11);
    pc_digest d = digest_of(data, len);
    pc_blob_up *u;
    uint64_t size;
    assert_int_equal(pc_blob_up_create(f->be, "large", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_write(u, data, cut1), 0);
    assert_int_equal(pc_blob_up_checkpoint(u), 0); /* mid-part: a short tail */
    assert_int_equal(pc_blob_up_write(u, data + cut1, cut2 - cut1), 0);
    assert_int_equal(pc_blob_up_checkpoint(u), 0);               /* a part sent, a tail again */
    assert_int_equal(pc_blob_up_write(u, data + cut2, 1000), 0); /* dropped by the close */
    pc_blob_up_close(u);
    if (durable(f))
        restart(f);
    assert_int_equal(f->be->upload_stat(f->be, "large", &size), 0);
    assert_int_equal(size, cut2);
    assert_int_equal(count_uploads(f->be), 1);
    assert_int_equal(pc_blob_up_resume(f->be, "large", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_size(u), cut2);
    assert_absent(f->be, &d);
    assert_int_equal(pc_blob_up_write(u, data + cut2, len - cut2), 0);
    assert_int_equal(pc_blob_up_finish(u, &d, NULL), 0);
    assert_content(f->be, &d, data, len);
    assert_int_equal(count_uploads(f->be), 0);
    assert_int_equal(f->be->remove(f->be, &d), 0);
    assert_absent(f->be, &d);
    /* a temp writer as large */
    assert_int_equal(pc_blob_up_create(f->be, NULL, PC_DIGEST_SHA256, &u), 0);
    for (size_t off = 0; off < len; off += 300000)
        assert_int_equal(pc_blob_up_write(u, data + off, len - off < 300000 ? len - off : 300000),
                         0);
    assert_int_equal(pc_blob_up_finish(u, &d, NULL), 0);
    assert_content(f->be, &d, data, len);
    assert_int_equal(count_tmp(f->be), 0);
    assert_int_equal(count_blobs(f->be), 1);
    free(data);
}

/* Cancel drops an upload or a temp writer with everything in it; an
 * existing upload cannot be created twice. */
static void test_cancel(void **state)
{
    fixture *f = *state;
    const char data[] = "to be dropped";
    pc_digest d = digest_of(data, sizeof(data) - 1);
    pc_blob_up *u, *t, *dup;
    uint64_t size;
    assert_int_equal(pc_blob_up_create(f->be, "cancel-me", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_create(f->be, "cancel-me", PC_DIGEST_SHA256, &dup), PC_EEXISTS);
    assert_int_equal(pc_blob_up_write(u, data, sizeof(data) - 1), 0);
    assert_int_equal(pc_blob_up_checkpoint(u), 0);
    assert_int_equal(pc_blob_up_create(f->be, NULL, PC_DIGEST_SHA256, &t), 0);
    assert_int_equal(pc_blob_up_write(t, data, sizeof(data) - 1), 0);
    assert_int_equal(count_uploads(f->be), 1);
    pc_blob_up_cancel(u);
    pc_blob_up_cancel(t);
    assert_int_equal(f->be->upload_stat(f->be, "cancel-me", &size), PC_ENOTFOUND);
    assert_int_equal(count_uploads(f->be), 0);
    assert_int_equal(count_tmp(f->be), 0);
    assert_absent(f->be, &d);
    /* upload_remove honours its idle time */
    assert_int_equal(pc_blob_up_create(f->be, "idle", PC_DIGEST_SHA256, &u), 0);
    pc_blob_up_close(u);
    assert_int_equal(f->be->upload_remove(f->be, "idle", 3600), PC_EEXISTS);
    assert_int_equal(f->be->upload_remove(f->be, "idle", 0), 0);
    assert_int_equal(f->be->upload_remove(f->be, "idle", 0), PC_ENOTFOUND);
}

typedef struct {
    pc_digest old;
    size_t calls;
    uint64_t bytes;
    long old_age, max_young_age;
} list_ctx;

static int list_visit(const pc_blob_entry *e, void *p)
{
    list_ctx *c = p;
    c->calls++;
    c->bytes += e->size;
    if (pc_digest_equal(&e->digest, &c->old))
        c->old_age = e->age_s;
    else if (e->age_s > c->max_young_age)
        c->max_young_age = e->age_s;
    return 0;
}

static int stop_visit(const pc_blob_entry *e, void *p)
{
    (void)e;
    (*(int *)p)++;
    return 42;
}

/* One listing gives every blob with its size and age (what gc needs,
 * with no stat per blob); a callback's non-zero stops it. */
static void test_list_sizes_ages(void **state)
{
    fixture *f = *state;
    unsigned char *a = pattern(10, 1), *b = pattern(2000, 2), *c = pattern(70000, 3);
    list_ctx lc = {digest_of(b, 2000), 0, 0, -1, -1};
    pc_digest da = digest_of(a, 10), dc = digest_of(c, 70000);
    assert_int_equal(pc_blob_put(f->be, &da, a, 10), 0);
    assert_int_equal(pc_blob_put(f->be, &lc.old, b, 2000), 0);
    assert_int_equal(pc_blob_put(f->be, &dc, c, 70000), 0);
    assert_int_equal(pc_blob_put(f->be, &dc, c, 70000), 0); /* again: still one */
    if (f->k->backdate)
        assert_int_equal(f->k->backdate(f, &lc.old, 5000), 0);
    assert_int_equal(f->be->list(f->be, list_visit, &lc), 0);
    assert_int_equal(lc.calls, 3);
    assert_int_equal(lc.bytes, 10 + 2000 + 70000);
    if (f->k->backdate)
        assert_true(lc.old_age >= 5000 && lc.old_age < 5100);
    else /* no backdating (s3): the blob is listed, as young as the others */
        assert_true(lc.old_age >= 0 && lc.old_age < 600);
    assert_true(lc.max_young_age >= 0 && lc.max_young_age < 5000);
    int calls = 0;
    assert_int_equal(f->be->list(f->be, stop_visit, &calls), 42);
    assert_int_equal(calls, 1);
    free(a);
    free(b);
    free(c);
}

/* Removing (or replacing) a blob while a reader is open: the reader keeps
 * its bytes where the backend says so, else fails cleanly; new opens
 * see it gone. */
static void test_remove_while_reading(void **state)
{
    fixture *f = *state;
    /* larger than what a reader of an object store fetches ahead (s3:
     * its first GET, 8 MiB, started at open), so reading on after the
     * removal must ask again */
    enum { LEN = 9000000 };
    unsigned char *data = pattern(LEN, 9), *buf = malloc(LEN);
    pc_digest d = digest_of(data, LEN);
    pc_blob_rd *r, *r2;
    assert_int_equal(pc_blob_put(f->be, &d, data, LEN), 0);
    assert_int_equal(f->be->open(f->be, &d, &r), 0);
    assert_int_equal(r->read(r, 0, buf, 1000), 1000);
    /* heal: commit the same digest again while r is open (r: replaced
     * under it), then r2 opens the new copy, which is removed under it */
    pc_blob_up *u;
    assert_int_equal(pc_blob_up_create(f->be, "heal", PC_DIGEST_SHA256, &u), 0);
    assert_int_equal(pc_blob_up_write(u, data, LEN), 0);
    assert_int_equal(pc_blob_up_finish(u, &d, NULL), 0);
    assert_int_equal(f->be->open(f->be, &d, &r2), 0);
    assert_int_equal(f->be->remove(f->be, &d), 0);
    assert_absent(f->be, &d);
    assert_int_equal(f->be->remove(f->be, &d), PC_ENOTFOUND);
    pc_blob_rd *rs[] = {r, r2};
    for (int k = 0; k < 2; k++) {
        size_t off = k ? 0 : 1000;
        long n = 0;
        while (off < LEN && (n = rs[k]->read(rs[k], off, buf + off, LEN - off)) > 0)
            off += (size_t)n;
        if (f->be->caps & PC_BLOB_CAP_READ_AFTER_REMOVE) {
            assert_int_equal(off, LEN);
            assert_memory_equal(buf, data, LEN);
        } else {
            /* bytes fetched before the removal may still come; what comes
             * is the blob's, and the reader stops with PC_ENOTFOUND */
            assert_int_equal(n, PC_ENOTFOUND);
            assert_true(off < LEN);
            assert_memory_equal(buf, data, off);
        }
        rs[k]->close(rs[k]);
    }
    free(data);
    free(buf);
}

/* Reads at any offset: short at the end, 0 at and past it. */
/* A waiter for read_nowait: counts suspends, resume posts to a condition. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int suspends, resumes;
} nowait_ctx;

static void nowait_suspend(void *ctx)
{
    nowait_ctx *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->suspends++;
    pthread_mutex_unlock(&c->mu);
}

static void nowait_resume(void *ctx)
{
    nowait_ctx *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->resumes++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* read_nowait (offered by backends whose reads wait on the network): the
 * whole blob read through it is the blob's bytes; a 0 always comes with a
 * suspend and is followed by exactly one resume; bytes of the first window
 * come without a suspend; the reader names its stored version (ident) the
 * same way on every open. */
static void test_read_nowait(void **state)
{
    fixture *f = *state;
    size_t n = (3u << 20) + 12345;
    unsigned char *data = pattern(n, 11), *got = malloc(n);
    assert_non_null(got);
    pc_digest d = digest_of(data, n);
    assert_int_equal(pc_blob_put(f->be, &d, data, n), 0);
    pc_blob_rd *r;
    assert_int_equal(f->be->open(f->be, &d, &r), 0);
    if (!r->read_nowait) { /* reads that never wait long (files, memory) */
        r->close(r);
        free(got);
        free(data);
        return;
    }
    nowait_ctx c = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pc_blob_waiter w = {nowait_suspend, nowait_resume, &c};
    assert_int_equal(r->read_nowait(r, 0, got, 1000, &w), 1000);
    assert_int_equal(c.suspends, 0);
    size_t at = 1000;
    while (at < n) {
        long k = r->read_nowait(r, at, got + at, 100000, &w);
        assert_true(k >= 0);
        if (k > 0) {
            at += (size_t)k;
            continue;
        }
        pthread_mutex_lock(&c.mu);
        assert_int_equal(c.suspends, c.resumes + 1);
        while (c.resumes < c.suspends) /* no timeout: ctest's ends a hang */
            pthread_cond_wait(&c.cv, &c.mu);
        pthread_mutex_unlock(&c.mu);
    }
    assert_memory_equal(got, data, n);
    assert_int_equal(c.suspends, c.resumes);
    assert_non_null(r->ident);
    char ident[128];
    snprintf(ident, sizeof(ident), "%s", r->ident);
    r->close(r);
    assert_int_equal(f->be->open(f->be, &d, &r), 0);
    assert_string_equal(r->ident, ident);
    r->close(r);
    assert_int_equal(f->be->remove(f->be, &d), 0);
    free(got);
    free(data);
}

static void test_read_offsets(void **state)
{
    fixture *f = *state;
    unsigned char *data = pattern(1000, 4), buf[200];
    pc_digest d = digest_of(data, 1000);
    pc_blob_rd *r;
    assert_int_equal(pc_blob_put(f->be, &d, data, 1000), 0);
    assert_int_equal(f->be->open(f->be, &d, &r), 0);
    assert_int_equal(r->size, 1000);
    assert_int_equal(r->read(r, 0, buf, 10), 10);
    assert_memory_equal(buf, data, 10);
    assert_int_equal(r->read(r, 500, buf, 200), 200);
    assert_memory_equal(buf, data + 500, 200);
    assert_int_equal(r->read(r, 990, buf, 200), 10);
    assert_memory_equal(buf, data + 990, 10);
    assert_int_equal(r->read(r, 1000, buf, 200), 0);
    assert_int_equal(r->read(r, 5000, buf, 200), 0);
    assert_int_equal(r->read(r, UINT64_MAX, buf, 200), 0);
    assert_int_equal(r->read(r, 3, buf, 0), 0);
    /* the optional sendfile fd reads the same bytes, or is not offered */
    int fd = -1;
    int rc = pc_blob_rd_fd(r, &fd);
    if (rc == 0) {
        assert_int_equal(pread(fd, buf, 200, 800), 200);
        assert_memory_equal(buf, data + 800, 200);
        close(fd);
    } else {
        assert_int_equal(rc, PC_ENOTSUP);
    }
    r->close(r);
    /* the empty blob */
    pc_digest e = digest_of("", 0);
    assert_int_equal(pc_blob_put(f->be, &e, "", 0), 0);
    assert_int_equal(f->be->open(f->be, &e, &r), 0);
    assert_int_equal(r->size, 0);
    assert_int_equal(r->read(r, 0, buf, 10), 0);
    r->close(r);
    /* a digest that does not parse is refused, not looked up */
    pc_digest bad = d;
    memcpy(bad.str, "sha256:../", 10);
    uint64_t size;
    assert_int_equal(f->be->stat(f->be, &bad, &size), PC_EINVAL);
    char url[2048];
    time_t exp;
    rc = pc_blob_url(f->be, &d, 60, url, sizeof(url), &exp);
    assert_true(rc == 0 || rc == PC_ENOTSUP);
    if (rc == 0) { /* the URL serves the blob to anyone, unsigned */
        assert_true(exp > time(NULL) && exp <= time(NULL) + 61);
        unsigned char *got = NULL;
        long status = 0;
        assert_int_equal(http_get(url, &got, &size, &status), 0);
        assert_int_equal(status, 200);
        assert_int_equal(size, 1000);
        assert_memory_equal(got, data, 1000);
        free(got);
        /* and a tampered one is refused */
        char *sig = strstr(url, "X-Amz-Signature=");
        assert_non_null(sig);
        sig[16] = sig[16] == '0' ? '1' : '0';
        assert_int_equal(http_get(url, &got, &size, &status), 0);
        assert_int_equal(status, 403);
        free(got);
    }
    free(data);
}

/* A backend asking for parts gets appends of at least min_part, except
 * the last of a run (before a checkpoint or the commit). */
static void test_min_part(void **state)
{
    fixture *f = *state;
    unsigned char *data = pattern(10000, 6);
    pc_digest d = digest_of(data, 10000);
    pc_blob_up *u;
    small_appends = big_appends = 0;
    assert_int_equal(pc_blob_up_create(f->be, "parts", PC_DIGEST_SHA256, &u), 0);
    for (size_t off = 0; off < 10000; off += 1000)
        assert_int_equal(pc_blob_up_write(u, data + off, 1000), 0);
    assert_int_equal(pc_blob_up_size(u), 10000);
    assert_int_equal(pc_blob_up_finish(u, &d, NULL), 0);
    assert_content(f->be, &d, data, 10000);
    if (f->be->min_part == PART) {
        assert_int_equal(big_appends, 2);   /* 2 x 4096 */
        assert_int_equal(small_appends, 1); /* the last 1808 */
    }
    free(data);
}

/* ---- the filesystem layout of version 1 (fs only) ---- */

/* A data directory as version 1 wrote it (blobs/<alg>/<2 hex>/<hex>, an
 * upload, a temp file, junk) opens and reads as it is. */
static void test_fs_reads_v1_data_dir(void **state)
{
    (void)state;
    char dir[64], path[512];
    const char data[] = "written by version 1";
    pc_digest d = digest_of(data, sizeof(data) - 1);
    assert_non_null(pc_test_tmpdir(dir, sizeof(dir), "storeblobv1"));
    const char *hex = pc_digest_hex(&d);
    static const char *const dirs[] = {"blobs", "blobs/sha256", "uploads", "tmp"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, dirs[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s", dir, hex);
    assert_int_equal(mkdir(path, 0755), 0);
    char blob[256], junk[256];
    snprintf(blob, sizeof(blob), "blobs/sha256/%.2s/%s", hex, hex);
    snprintf(junk, sizeof(junk), "blobs/sha256/%.2s/not-a-digest", hex);
    const char *files[] = {blob, junk, "tmp/put-abc123", "uploads/v1-upload"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(data, fp);
        fclose(fp);
    }
    pc_blob_backend *be;
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nothing-here", dir);
    assert_int_equal(pc_blob_fs_open_existing(&be, missing), PC_ENOTFOUND);
    assert_int_equal(pc_blob_fs_open_existing(&be, dir), 0); /* fsck's way: as it is */
    assert_int_equal(count_tmp(be), 1);
    be->free(be);
    assert_int_equal(pc_blob_fs_open(&be, dir), 0);
    assert_int_equal(count_blobs(be), 1); /* the junk name is no blob */
    assert_content(be, &d, data, sizeof(data) - 1);
    assert_int_equal(count_uploads(be), 1);
    assert_int_equal(count_tmp(be), 1);
    uint64_t size;
    assert_int_equal(be->upload_stat(be, "v1-upload", &size), 0);
    assert_int_equal(size, sizeof(data) - 1);
    be->free(be);
    pc_test_rmtree(dir);
}

/* ---- the version check (no backend needed) ---- */

static int frees;
static void fake_free(pc_blob_backend *be)
{
    (void)be;
    frees++;
}

static void test_version_check(void **state)
{
    (void)state;
    pc_blob_backend *mem;
    assert_int_equal(pc_blob_mem_open(&mem), 0);
    pc_blob_backend fake = *mem;
    fake.version = 1;
    fake.free = fake_free;
    frees = 0;
    assert_int_equal(pc_blob_backend_check(&fake), PC_ENOTSUP);
    assert_non_null(strstr(pc_error_last(), "version 1"));
    assert_int_equal(frees, 0); /* a foreign layout is not touched */
    fake.version = PC_BLOB_BACKEND_VERSION;
    fake.list = NULL;
    assert_int_equal(pc_blob_backend_check(&fake), PC_ENOTSUP);
    assert_non_null(strstr(pc_error_last(), "required"));
    assert_int_equal(frees, 1);
    assert_int_equal(pc_blob_backend_check(mem), 0);
    mem->free(mem);

    char dir[64];
    pc_blob_backend *be;
    assert_non_null(pc_test_tmpdir(dir, sizeof(dir), "storeblobv"));
    assert_int_equal(pc_blob_open("fs", dir, &be), 0);
    assert_string_equal(be->name, "fs");
    be->free(be);
    pc_test_rmtree(dir);
    assert_int_equal(pc_blob_open("mem", NULL, &be), 0);
    be->free(be);
    assert_int_equal(pc_blob_open("s4", "x", &be), PC_ENOTSUP);
    assert_non_null(strstr(pc_error_last(), "s4"));
}

/* ---- the resumable hasher ---- */

static void test_hash_save_restore(void **state)
{
    (void)state;
    unsigned char *data = pattern(5000, 7);
    static const size_t cuts[] = {0, 1, 55, 63, 64, 65, 111, 127, 128, 129, 4999, 5000};
    pc_digest_alg algs[] = {PC_DIGEST_SHA256, PC_DIGEST_SHA512};
    for (size_t a = 0; a < 2; a++) {
        pc_digest want, got;
        assert_int_equal(pc_digest_buffer(&want, algs[a], data, 5000), 0);
        for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
            pc_hash *h, *h2;
            unsigned char st[PC_HASH_STATE_MAX];
            size_t n;
            assert_int_equal(pc_hash_new(&h, algs[a]), 0);
            assert_int_equal(pc_hash_update(h, data, cuts[i]), 0);
            assert_int_equal(pc_hash_save(h, st, sizeof(st), &n), 0);
            pc_hash_free(h);
            assert_int_equal(pc_hash_restore(&h2, algs[a], st, n), 0);
            assert_int_equal(pc_hash_count(h2), cuts[i]);
            assert_int_equal(pc_hash_update(h2, data + cuts[i], 5000 - cuts[i]), 0);
            assert_int_equal(pc_hash_peek(h2, &got), 0);
            assert_string_equal(got.str, want.str);
            pc_hash_free(h2);
            /* damaged, truncated or another algorithm's state is refused */
            st[8] ^= 1; /* the count */
            assert_int_equal(pc_hash_restore(&h2, algs[a], st, n), PC_EINVAL);
            st[8] ^= 1;
            assert_int_equal(pc_hash_restore(&h2, algs[a], st, n - 1), PC_EINVAL);
            assert_int_equal(pc_hash_restore(&h2, algs[1 - a], st, n), PC_EINVAL);
        }
    }
    free(data);
}

/* ---- cases moved from version 1's test_blobstore.c ---- */

/* Whole buffers: put checks the digest (nothing visible on a mismatch),
 * put again is fine, get is bounded, the empty blob and SHA-512 work. */
static void test_put_get(void **state)
{
    fixture *f = *state;
    pc_blob_backend *be = f->be;
    const char *data = "hello, blob";
    pc_digest d = digest_of(data, strlen(data));
    uint64_t size = 0;
    assert_int_equal(be->stat(be, &d, &size), PC_ENOTFOUND);
    assert_int_equal(pc_blob_put(be, &d, data, strlen(data)), 0);
    assert_int_equal(pc_blob_put(be, &d, data, strlen(data)), 0); /* again: still success */
    assert_int_equal(be->stat(be, &d, &size), 0);
    assert_int_equal(size, strlen(data));
    assert_content(be, &d, data, strlen(data));
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(pc_blob_get(be, &d, 3, &buf, &len), PC_ETOOBIG);
    assert_null(buf);
    pc_digest empty = digest_of("", 0);
    assert_int_equal(pc_blob_put(be, &empty, "", 0), 0);
    assert_int_equal(pc_blob_get(be, &empty, 0, &buf, &len), 0);
    assert_int_equal(len, 0);
    free(buf);
    pc_digest d512;
    assert_int_equal(pc_digest_buffer(&d512, PC_DIGEST_SHA512, "long digest", 11), 0);
    assert_int_equal(pc_blob_put(be, &d512, "long digest", 11), 0);
    assert_content(be, &d512, "long digest", 11);
    assert_int_equal(count_blobs(be), 3);
    /* a buffer that is not what its digest promises is never stored */
    pc_digest promised = digest_of("what was promised", 17);
    assert_int_equal(pc_blob_put(be, &promised, "what was sent", 13), PC_EDIGEST);
    assert_absent(be, &promised);
    pc_digest sent = digest_of("what was sent", 13);
    assert_absent(be, &sent);
    assert_int_equal(count_blobs(be), 3);
    assert_int_equal(count_tmp(be), 0);
}

/* Rule 5: bad upload ids and digests that could name another path are
 * refused before anything is opened. */
static void test_invalid_ids_and_digests(void **state)
{
    fixture *f = *state;
    pc_blob_backend *be = f->be;
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    const char *bad[] = {"", ".", "..", "../x", "a/b", "a b", "a.b", "a_b", "\xc3\xa4", long_id};
    pc_blob_wr *w = NULL;
    uint64_t size;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(pc_upload_id_valid(bad[i]));
        assert_int_equal(be->writer(be, bad[i], true, &w), PC_EINVAL);
        assert_int_equal(be->writer(be, bad[i], false, &w), PC_EINVAL);
        assert_true(be->upload_stat(be, bad[i], &size) < 0);
        assert_true(be->upload_remove(be, bad[i], 0) < 0);
    }
    assert_false(pc_upload_id_valid(NULL));
    long_id[64] = '\0';
    assert_true(pc_upload_id_valid(long_id));
    assert_true(pc_upload_id_valid("0123-abcd-ABCD"));
    assert_int_equal(count_uploads(be), 0);

    pc_digest evil;
    memset(&evil, 0, sizeof(evil));
    evil.alg = PC_DIGEST_SHA256;
    snprintf(evil.str, sizeof(evil.str), "sha256:../../../../etc/passwd");
    pc_blob_rd *r = NULL;
    assert_int_equal(be->stat(be, &evil, &size), PC_EINVAL);
    assert_int_equal(be->open(be, &evil, &r), PC_EINVAL);
    assert_true(pc_blob_put(be, &evil, "x", 1) < 0);
    assert_int_equal(be->remove(be, &evil), PC_EINVAL);
    snprintf(evil.str, sizeof(evil.str), "sha256:%064d", 0);
    evil.str[20] = 'A'; /* uppercase hex is not canonical */
    assert_int_equal(be->stat(be, &evil, &size), PC_EINVAL);
    pc_digest mixed = digest_of("x", 1);
    mixed.alg = PC_DIGEST_SHA512; /* the alg field disagrees with the text */
    assert_int_equal(be->stat(be, &mixed, &size), PC_EINVAL);
    memset(evil.str, 'a', sizeof(evil.str)); /* not NUL-terminated */
    assert_int_equal(be->stat(be, &evil, &size), PC_EINVAL);
    assert_int_equal(count_blobs(be), 0);
}

/* fs: list reports blobs only, never junk at any level of blobs/. */
static void test_fs_list_ignores_junk(void **state)
{
    (void)state;
    char dir[64], p[512];
    pc_blob_backend *be = NULL;
    assert_non_null(pc_test_tmpdir(dir, sizeof(dir), "storejunk"));
    assert_int_equal(pc_blob_fs_open(&be, dir), 0);
    const char *contents[] = {"one", "two", "three"};
    pc_digest ds[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pc_digest_buffer(&ds[i], i == 2 ? PC_DIGEST_SHA512 : PC_DIGEST_SHA256,
                                          contents[i], strlen(contents[i])),
                         0);
        assert_int_equal(pc_blob_put(be, &ds[i], contents[i], strlen(contents[i])), 0);
    }
    const char *hex = pc_digest_hex(&ds[0]);
    char name[80];
    const char *junk[8];
    char bufs[8][400];
    int nj = 0;
    snprintf(bufs[nj], sizeof(bufs[0]), "%s/blobs/sha256/README", dir);
    junk[nj] = bufs[nj], nj++;
    snprintf(bufs[nj], sizeof(bufs[0]), "%s/blobs/sha256/%.2s/short", dir, hex);
    junk[nj] = bufs[nj], nj++;
    snprintf(name, sizeof(name), "%s", hex); /* right length, wrong fan-out directory */
    name[0] = name[0] == 'f' ? '0' : 'f';
    snprintf(bufs[nj], sizeof(bufs[0]), "%s/blobs/sha256/%.2s/%s", dir, hex, name);
    junk[nj] = bufs[nj], nj++;
    snprintf(bufs[nj], sizeof(bufs[0]), "%s/blobs/sha256/%.2s/%s.tmp", dir, hex, hex);
    junk[nj] = bufs[nj], nj++;
    for (int i = 0; i < nj; i++) {
        FILE *fp = fopen(junk[i], "w");
        assert_non_null(fp);
        fputs("junk", fp);
        fclose(fp);
    }
    pc_digest dirdig;
    assert_int_equal(pc_digest_buffer(&dirdig, PC_DIGEST_SHA256, "a directory", 11), 0);
    const char *dhex = pc_digest_hex(&dirdig);
    snprintf(p, sizeof(p), "%s/blobs/sha256/%.2s", dir, dhex);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/blobs/sha256/%.2s/%s", dir, dhex,
             dhex); /* a dir with a blob's name */
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/blobs/md5", dir); /* an unknown algorithm */
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(count_blobs(be), 3);
    uint64_t size;
    assert_int_equal(be->stat(be, &dirdig, &size), PC_ENOTFOUND);
    be->free(be);
}

typedef struct {
    pc_blob_backend *be;
    int index;
    int failures;
} put_arg;

static void *put_thread(void *p)
{
    put_arg *a = p;
    char buf[64];
    for (int i = 0; i < 50; i++) {
        /* half shared content, half per thread */
        snprintf(buf, sizeof(buf), "blob %d of %d", i, (i % 2) ? a->index : -1);
        pc_digest d;
        pc_blob_rd *r = NULL;
        if (pc_digest_buffer(&d, PC_DIGEST_SHA256, buf, strlen(buf)) != 0 ||
            pc_blob_put(a->be, &d, buf, strlen(buf)) != 0 || a->be->open(a->be, &d, &r) != 0) {
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

/* Rule 6: puts and reads from several threads, shared content included. */
static void test_threads_put(void **state)
{
    fixture *f = *state;
    pthread_t t[4];
    put_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (put_arg){.be = f->be, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, put_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].failures, 0);
    }
    assert_int_equal(count_blobs(f->be), 25 + 4 * 25);
    assert_int_equal(count_tmp(f->be), 0);
}

/* s3 only: a multipart upload left on a blob's key (a commit copying in
 * parts that stopped) is a temp leftover named by that key; removing it
 * honours its idle time and aborts only the upload, never the blob. */
static void test_s3_blob_key_leftover(void **state)
{
    fixture *f = *state;
    const char data[] = "a committed blob";
    pc_digest d = digest_of(data, sizeof(data) - 1);
    assert_int_equal(pc_blob_put(f->be, &d, data, sizeof(data) - 1), 0);
    char key[160], id[256], name[128] = "";
    snprintf(key, sizeof(key), "blobs/sha256/%s", pc_digest_hex(&d));
    pc_s3_opts o = {.endpoint = s3_env[0],
                    .region = s3_env[1],
                    .bucket = s3_env[2],
                    .prefix = f->prefix,
                    .path_style = true};
    pc_s3 *s3;
    assert_int_equal(pc_s3_open(&o, &s3), 0);
    assert_int_equal(pc_s3_mpu_create(s3, key, id, sizeof(id)), 0);
    assert_int_equal(count_tmp(f->be), 1);
    assert_int_equal(f->be->tmp_list(f->be, first_name, name), 0);
    assert_string_equal(name, key);
    assert_int_equal(f->be->tmp_remove(f->be, name, 3600), PC_EEXISTS);
    assert_int_equal(f->be->tmp_remove(f->be, name, 0), 0);
    assert_int_equal(count_tmp(f->be), 0);
    assert_int_equal(pc_s3_mpu_abort(s3, key, id), PC_ENOTFOUND); /* it is gone */
    assert_content(f->be, &d, data, sizeof(data) - 1);            /* the blob is not */
    assert_int_equal(f->be->tmp_remove(f->be, name, 0), PC_ENOTFOUND);
    assert_int_equal(f->be->tmp_remove(f->be, "blobs/sha256/../x", 0), PC_EINVAL);
    pc_s3_free(s3);
}

/* Whether kind k runs: listed in PULLCACHE_TEST_BLOB_KINDS when set, else
 * every kind but s3, which also needs its env file. */
static bool kind_selected(const kind *k)
{
    const char *only = getenv("PULLCACHE_TEST_BLOB_KINDS");
    bool listed = !only || !*only;
    if (!listed) {
        size_t n = strlen(k->name);
        for (const char *p = only; (p = strstr(p, k->name)); p += n)
            if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
                listed = true;
    }
    if (strncmp(k->name, "s3", 2) == 0)
        return listed && only && *only && s3_env_load() &&
               (strcmp(k->name, "s3") == 0 || s3_env[5][0]);
    return listed;
}

/* clang-format off */
#define KIND_CASE(fn) {#fn, fn}
/* clang-format on */

int main(void)
{
    static const struct {
        const char *name;
        CMUnitTestFunction fn;
    } per_kind[] = {
        KIND_CASE(test_verify_before_publish),
        KIND_CASE(test_crash_leaves_garbage),
        KIND_CASE(test_concurrent_writers_one_digest),
        KIND_CASE(test_upload_resume),
        KIND_CASE(test_large_parts),
        KIND_CASE(test_cancel),
        KIND_CASE(test_list_sizes_ages),
        KIND_CASE(test_remove_while_reading),
        KIND_CASE(test_read_offsets),
        KIND_CASE(test_read_nowait),
        KIND_CASE(test_min_part),
        KIND_CASE(test_put_get),
        KIND_CASE(test_invalid_ids_and_digests),
        KIND_CASE(test_threads_put),
    };
    enum { NK = sizeof(kinds) / sizeof(kinds[0]), NC = sizeof(per_kind) / sizeof(per_kind[0]) };
    struct CMUnitTest tests[NK * NC + NK + 4];
    size_t n = 0;
    bool fs = false;
    for (size_t c = 0; c < NC; c++)
        for (size_t k = 0; k < NK; k++)
            if (kind_selected(&kinds[k])) {
                fs |= k == 0;
                tests[n++] = (struct CMUnitTest){per_kind[c].name, per_kind[c].fn, setup, teardown,
                                                 (void *)&kinds[k]};
            }
    for (size_t k = 0; k < NK; k++)
        if (strcmp(kinds[k].name, "s3") == 0 && kind_selected(&kinds[k]))
            tests[n++] = (struct CMUnitTest){"test_s3_blob_key_leftover", test_s3_blob_key_leftover,
                                             setup, teardown, (void *)&kinds[k]};
    if (fs) { /* the cases without a backend row go with the default kinds */
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fs_list_ignores_junk);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fs_reads_v1_data_dir);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_version_check);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_hash_save_restore);
    }
    if (n == 0) {
        fprintf(stderr, "no blob backend selected (PULLCACHE_TEST_BLOB_KINDS, "
                        "PULLCACHE_TEST_S3_ENV)\n");
        return 1;
    }
    return _cmocka_run_group_tests("store_blob", tests, n, NULL, NULL);
}
