/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_store_spool.c - the local spool of in-flight fetches
 * (store/spool.h): readers stream it while it grows, the last byte stays
 * back until the digest verifies, a bad or broken fetch reaches readers as
 * an error, and a verified spool commits into any blob backend.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "store/spool.h"
#include "testutil.h"

typedef struct {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_non_null(pc_test_tmpdir(f->dir, sizeof(f->dir), "spool"));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pc_test_rmtree(f->dir);
    free(f);
    return 0;
}

static unsigned char *pattern(size_t len)
{
    unsigned char *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 13 + (i >> 9));
    return p;
}

static pc_digest digest_of(const void *buf, size_t len)
{
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, buf, len), 0);
    return d;
}

static size_t entries(const char *dir)
{
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        n += de->d_name[0] != '.';
    closedir(dp);
    return n;
}

static void on_notify(void *ctx)
{
    (*(int *)ctx)++;
}

/* The hold-back rule: everything but the last byte while growing, all of
 * it once verified, then the end. The file has no name (a crash leaves
 * nothing in the directory). */
static void test_holdback_until_verified(void **state)
{
    fixture *f = *state;
    unsigned char *data = pattern(100), buf[200];
    pc_digest d = digest_of(data, 100);
    int notified = 0;
    pc_spool_opts o = {1, on_notify, &notified};
    pc_spool *s;
    assert_int_equal(pc_spool_create(f->dir, &d, &o, &s), 0);
    assert_int_equal(entries(f->dir), 0);
    assert_int_equal(pc_spool_read(s, 0, buf, sizeof(buf)), 0); /* nothing yet */
    assert_int_equal(pc_spool_append(s, data, 60), 0);
    assert_int_equal(pc_spool_append(s, data + 60, 40), 0);
    assert_int_equal(notified, 2);
    assert_int_equal(pc_spool_received(s), 100);
    assert_int_equal(pc_spool_readable(s), 99);
    assert_int_equal(pc_spool_read(s, 0, buf, sizeof(buf)), 99);
    assert_memory_equal(buf, data, 99);
    assert_int_equal(pc_spool_read(s, 99, buf, sizeof(buf)), 0); /* held back */
    assert_false(pc_spool_verified(s, NULL));
    assert_int_equal(pc_spool_finish(s), 0);
    assert_int_equal(notified, 3);
    uint64_t size;
    assert_true(pc_spool_verified(s, &size));
    assert_int_equal(size, 100);
    assert_int_equal(pc_spool_read(s, 99, buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], data[99]);
    assert_int_equal(pc_spool_read(s, 100, buf, sizeof(buf)), PC_ENOTFOUND);
    assert_int_equal(pc_spool_read(s, 5000, buf, sizeof(buf)), PC_ENOTFOUND);
    assert_int_equal(pc_spool_append(s, data, 1), PC_EINVAL); /* ended */
    pc_spool_unref(s);

    /* hold-back 0: readers see every byte at once */
    assert_int_equal(pc_spool_create(f->dir, &d, NULL, &s), 0);
    assert_int_equal(pc_spool_append(s, data, 10), 0);
    assert_int_equal(pc_spool_readable(s), 10);
    pc_spool_unref(s);
    assert_int_equal(entries(f->dir), 0);
    free(data);
}

/* Content that does not hash to the digest, or a fetch that broke off:
 * readers get the error (never the last byte), nothing can be committed. */
static void test_bad_content_fails(void **state)
{
    fixture *f = *state;
    unsigned char *data = pattern(1000), buf[2000];
    pc_digest d = digest_of(data, 1000);
    pc_spool_opts o = {1, NULL, NULL};
    pc_blob_backend *be;
    pc_spool *s;
    assert_int_equal(pc_blob_mem_open(&be), 0);
    assert_int_equal(pc_spool_create(f->dir, &d, &o, &s), 0);
    data[500] ^= 1;
    assert_int_equal(pc_spool_append(s, data, 1000), 0);
    assert_int_equal(pc_spool_read(s, 0, buf, sizeof(buf)), 999);
    assert_int_equal(pc_spool_finish(s), PC_EDIGEST);
    assert_int_equal(pc_spool_read(s, 0, buf, sizeof(buf)), PC_EDIGEST);
    assert_int_equal(pc_spool_read(s, 999, buf, sizeof(buf)), PC_EDIGEST);
    assert_int_equal(pc_spool_commit(s, be), PC_EINVAL);
    uint64_t size;
    assert_int_equal(be->stat(be, &d, &size), PC_ENOTFOUND);
    pc_spool_unref(s);

    assert_int_equal(pc_spool_create(f->dir, &d, &o, &s), 0);
    assert_int_equal(pc_spool_append(s, data, 10), 0);
    pc_spool_fail(s, PC_EUPSTREAM);
    pc_spool_wait(s, 9); /* returns: the spool ended */
    assert_int_equal(pc_spool_read(s, 0, buf, sizeof(buf)), PC_EUPSTREAM);
    assert_int_equal(pc_spool_commit(s, be), PC_EINVAL);
    pc_spool_unref(s);
    be->free(be);
    free(data);
}

typedef struct {
    pc_spool *s;
    const unsigned char *data;
    size_t len;
    int rc;
} reader_arg;

/* A reader streaming like a client: read what is there, wait for more. */
static void *reader(void *p)
{
    reader_arg *a = p;
    unsigned char *buf = malloc(a->len + 1);
    uint64_t off = 0;
    a->rc = 0;
    for (;;) {
        long n = pc_spool_read(a->s, off, buf + off, 3000);
        if (n == 0) {
            pc_spool_wait(a->s, off);
            continue;
        }
        if (n < 0) {
            a->rc = n == PC_ENOTFOUND ? 0 : (int)n;
            break;
        }
        off += (uint64_t)n;
    }
    if (a->rc == 0 && (off != a->len || memcmp(buf, a->data, a->len) != 0))
        a->rc = PC_EDIGEST;
    free(buf);
    pc_spool_unref(a->s);
    return NULL;
}

/* Many readers stream one growing spool to its verified end. */
static void test_readers_stream_while_growing(void **state)
{
    fixture *f = *state;
    enum { LEN = 300000, READERS = 6 };
    unsigned char *data = pattern(LEN);
    pc_digest d = digest_of(data, LEN);
    pc_spool_opts o = {1, NULL, NULL};
    pc_spool *s;
    pthread_t th[READERS];
    reader_arg a[READERS];
    assert_int_equal(pc_spool_create(f->dir, &d, &o, &s), 0);
    for (int i = 0; i < READERS; i++) {
        a[i] = (reader_arg){s, data, LEN, -100};
        pc_spool_ref(s);
        assert_int_equal(pthread_create(&th[i], NULL, reader, &a[i]), 0);
    }
    for (size_t off = 0; off < LEN; off += 7000) {
        size_t n = LEN - off < 7000 ? LEN - off : 7000;
        assert_int_equal(pc_spool_append(s, data + off, n), 0);
        assert_int_equal(pc_spool_readable(s), off + n - 1);
    }
    assert_int_equal(pc_spool_finish(s), 0);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].rc, 0);
    }
    pc_spool_unref(s);
    free(data);
}

/* A verified spool commits into any backend: fs on the same filesystem
 * (the file is adopted) and mem (copied). Readers keep reading after. */
static void test_commit_into_backends(void **state)
{
    fixture *f = *state;
    enum { LEN = 123457 };
    unsigned char *data = pattern(LEN), *buf = malloc(LEN);
    pc_digest d = digest_of(data, LEN);
    char store[128], spools[128];
    snprintf(store, sizeof(store), "%s/data", f->dir);
    snprintf(spools, sizeof(spools), "%s/data/tmp", f->dir);
    pc_blob_backend *bes[2];
    assert_int_equal(pc_blob_fs_open(&bes[0], store), 0);
    assert_int_equal(pc_blob_mem_open(&bes[1]), 0);
    for (int i = 0; i < 2; i++) {
        pc_spool *s;
        assert_int_equal(pc_spool_create(i == 0 ? spools : f->dir, &d, NULL, &s), 0);
        assert_int_equal(pc_spool_append(s, data, LEN), 0);
        assert_int_equal(pc_spool_commit(s, bes[i]), PC_EINVAL); /* not verified yet */
        assert_int_equal(pc_spool_finish(s), 0);
        assert_int_equal(pc_spool_commit(s, bes[i]), 0);
        assert_int_equal(pc_spool_commit(s, bes[i]), 0); /* again: still one blob */
        void *got;
        size_t n;
        assert_int_equal(pc_blob_get(bes[i], &d, LEN, &got, &n), 0);
        assert_int_equal(n, LEN);
        assert_memory_equal(got, data, LEN);
        free(got);
        assert_int_equal(pc_spool_read(s, 0, buf, LEN), LEN);
        assert_memory_equal(buf, data, LEN);
        pc_spool_unref(s);
        bes[i]->free(bes[i]);
    }
    assert_int_equal(entries(spools), 0); /* no temp file left */
    free(data);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_holdback_until_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_content_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_stream_while_growing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_into_backends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
