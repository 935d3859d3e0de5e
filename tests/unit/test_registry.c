/*
 * test_registry.c - registry operations over the real filesystem blob store
 * and SQLite meta store: uploads verified before publish, manifests refuse
 * missing content, deletes never break another repository, mounts, tags.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

typedef struct {
    char dir[64];
    pc_registry *reg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pc-reg-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (pc_registry_open(&f->reg, f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    pc_registry_free(f->reg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Upload bytes into repo through a session; returns the registry result. */
static int upload(pc_registry *reg, const char *repo, const char *data, const char *claimed,
                  pc_digest *out)
{
    char id[72];
    pc_blob_up *w = NULL;
    uint64_t size = 0;
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, data, strlen(data)), 0);
    if (claimed)
        assert_int_equal(pc_digest_parse(&d, claimed), 0);
    assert_int_equal(pc_registry_upload_start(reg, repo, id), 0);
    assert_int_equal(pc_registry_upload_open(reg, repo, id, &w), 0);
    assert_int_equal(pc_blob_up_write(w, data, strlen(data)), 0);
    assert_int_equal(pc_registry_upload_release(reg, id, w, true), 0);
    if (out)
        *out = d;
    return pc_registry_upload_finish(reg, repo, id, NULL, &d, &size);
}

static void image_manifest(char *buf, size_t size, const pc_digest *config, const pc_digest *layer)
{
    snprintf(buf, size,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":2},\"layers\":[{\"mediaType\":"
             "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":5}]}",
             config->str, layer->str);
}

static void upload_verified_before_publish(void **state)
{
    fixture *f = *state;
    pc_digest d;
    uint64_t size;
    const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(upload(f->reg, "a", "hello", wrong, &d), PC_EDIGEST);
    assert_int_equal(pc_registry_blob_stat(f->reg, "a", &d, &size), PC_ENOTFOUND);
    assert_int_equal(upload(f->reg, "a", "hello", NULL, &d), 0);
    assert_int_equal(pc_registry_blob_stat(f->reg, "a", &d, &size), 0);
    assert_int_equal(size, 5);
    /* another repository does not see it without a mount */
    assert_int_equal(pc_registry_blob_stat(f->reg, "b", &d, &size), PC_ENOTFOUND);
}

static void upload_belongs_to_its_repo(void **state)
{
    fixture *f = *state;
    char id[72];
    uint64_t size;
    pc_blob_up *w = NULL, *w2 = NULL;
    assert_int_equal(pc_registry_upload_start(f->reg, "a", id), 0);
    assert_int_equal(pc_registry_upload_stat(f->reg, "a", id, &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(pc_registry_upload_stat(f->reg, "b", id, &size), PC_ENOTFOUND);
    assert_int_equal(pc_registry_upload_stat(f->reg, "a", "../../etc", &size), PC_ENOTFOUND);
    assert_int_equal(pc_registry_upload_open(f->reg, "a", id, &w), 0);
    /* one writer at a time */
    assert_int_equal(pc_registry_upload_open(f->reg, "a", id, &w2), PC_EEXISTS);
    assert_int_equal(pc_blob_up_write(w, "abc", 3), 0);
    assert_int_equal(pc_registry_upload_release(f->reg, id, w, true), 0);
    assert_int_equal(pc_registry_upload_stat(f->reg, "a", id, &size), 0);
    assert_int_equal(size, 3);
    assert_int_equal(pc_registry_upload_cancel(f->reg, "a", id), 0);
    assert_int_equal(pc_registry_upload_stat(f->reg, "a", id, &size), PC_ENOTFOUND);
}

/* Two registries on the same stores (two replicas, or two processes on
 * one data directory): an upload one of them writes is refused to the
 * other (its lease is held), moves to the other once released, and a
 * sweep by the other leaves it alone while it is being written. */
static void upload_one_writer_across_registries(void **state)
{
    fixture *f = *state;
    pc_registry *other = NULL;
    assert_int_equal(pc_registry_open(&other, f->dir), 0);
    char id[72];
    uint64_t size;
    pc_blob_up *w = NULL, *w2 = NULL;
    assert_int_equal(pc_registry_upload_start(f->reg, "a", id), 0);
    assert_int_equal(pc_registry_upload_open(f->reg, "a", id, &w), 0);
    assert_int_equal(pc_registry_upload_write(f->reg, id, w, "abc", 3), 0);
    assert_int_equal(pc_registry_upload_open(other, "a", id, &w2), PC_EEXISTS);
    assert_non_null(strstr(pc_error_last(), "another replica"));
    /* a sweep that would drop every upload (ttl 0) keeps the one being written */
    assert_int_equal(pc_registry_sweep_uploads(other, 0), 0);
    assert_int_equal(pc_registry_upload_release(f->reg, id, w, true), 0);
    /* the chunk landed; the next one goes to the other registry */
    assert_int_equal(pc_registry_upload_stat(other, "a", id, &size), 0);
    assert_int_equal(size, 3);
    assert_int_equal(pc_registry_upload_open(other, "a", id, &w2), 0);
    assert_int_equal(pc_registry_upload_write(other, id, w2, "def", 3), 0);
    assert_int_equal(pc_registry_upload_open(f->reg, "a", id, &w), PC_EEXISTS);
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, "abcdef", 6), 0);
    assert_int_equal(pc_registry_upload_finish(other, "a", id, w2, &d, &size), 0);
    assert_int_equal(size, 6);
    assert_int_equal(pc_registry_blob_stat(f->reg, "a", &d, &size), 0);
    pc_registry_free(other);
}

static void manifest_refuses_missing_blobs(void **state)
{
    fixture *f = *state;
    pc_digest cfg, layer;
    char m[1024];
    pc_manifest_put_result res;
    assert_int_equal(upload(f->reg, "a", "{}", NULL, &cfg), 0);
    assert_int_equal(pc_digest_buffer(&layer, PC_DIGEST_SHA256, "layer", 5), 0);
    image_manifest(m, sizeof(m), &cfg, &layer);
    assert_int_equal(pc_registry_manifest_put(f->reg, "a", "v1", NULL, m, strlen(m), &res),
                     PC_ENOTFOUND);
    assert_int_equal(upload(f->reg, "a", "layer", NULL, NULL), 0);
    assert_int_equal(pc_registry_manifest_put(f->reg, "a", "v1", NULL, m, strlen(m), &res), 0);
    pc_manifest_rec rec;
    assert_int_equal(pc_registry_manifest_resolve(f->reg, "a", "v1", &rec), 0);
    assert_true(pc_digest_equal(&rec.digest, &res.digest));
    assert_string_equal(rec.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_int_equal(rec.size, strlen(m));
    /* by digest, and a digest reference that does not match the bytes */
    assert_int_equal(pc_registry_manifest_resolve(f->reg, "a", res.digest.str, &rec), 0);
    const char *other = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    assert_int_equal(pc_registry_manifest_put(f->reg, "a", other, NULL, m, strlen(m), &res),
                     PC_EDIGEST);
    /* invalid JSON */
    assert_int_equal(pc_registry_manifest_put(f->reg, "a", "bad", NULL, "{", 1, &res), PC_EINVAL);
}

static void index_refuses_missing_child(void **state)
{
    fixture *f = *state;
    char idx[512];
    pc_manifest_put_result res;
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
             "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"digest\":\"sha256:%064d\",\"size\":10}]}",
             7);
    assert_int_equal(pc_registry_manifest_put(f->reg, "a", "idx", NULL, idx, strlen(idx), &res),
                     PC_ENOTFOUND);
}

static void deletes_never_break_other_repos(void **state)
{
    fixture *f = *state;
    pc_digest cfg, layer;
    char m[1024];
    pc_manifest_put_result ra, rb;
    pc_manifest_rec rec;
    uint64_t size;
    pc_blob_rd *r = NULL;

    for (int i = 0; i < 2; i++) {
        const char *repo = i ? "b" : "a";
        assert_int_equal(upload(f->reg, repo, "{}", NULL, &cfg), 0);
        assert_int_equal(upload(f->reg, repo, "layer", NULL, &layer), 0);
    }
    image_manifest(m, sizeof(m), &cfg, &layer);
    assert_int_equal(pc_registry_manifest_put(f->reg, "a", "v1", NULL, m, strlen(m), &ra), 0);
    assert_int_equal(pc_registry_manifest_put(f->reg, "b", "v1", NULL, m, strlen(m), &rb), 0);

    assert_int_equal(pc_registry_manifest_delete(f->reg, "a", ra.digest.str), 0);
    assert_int_equal(pc_registry_manifest_resolve(f->reg, "a", "v1", &rec), PC_ENOTFOUND);
    assert_int_equal(pc_registry_blob_delete(f->reg, "a", &layer), 0);
    assert_int_equal(pc_registry_blob_stat(f->reg, "a", &layer, &size), PC_ENOTFOUND);
    assert_int_equal(pc_registry_blob_delete(f->reg, "a", &layer), PC_ENOTFOUND);

    assert_int_equal(pc_registry_manifest_resolve(f->reg, "b", "v1", &rec), 0);
    assert_int_equal(pc_registry_blob_open(f->reg, "b", &layer, &r), 0);
    char buf[8] = {0};
    assert_int_equal(r->read(r, 0, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "layer", 5);
    r->close(r);
}

static void tag_delete_keeps_manifest(void **state)
{
    fixture *f = *state;
    pc_digest cfg, layer;
    char m[1024];
    pc_manifest_put_result res;
    pc_manifest_rec rec;
    assert_int_equal(upload(f->reg, "a", "{}", NULL, &cfg), 0);
    assert_int_equal(upload(f->reg, "a", "layer", NULL, &layer), 0);
    image_manifest(m, sizeof(m), &cfg, &layer);
    assert_int_equal(pc_registry_manifest_put(f->reg, "a", "v1", NULL, m, strlen(m), &res), 0);
    assert_int_equal(pc_registry_manifest_delete(f->reg, "a", "v1"), 0);
    assert_int_equal(pc_registry_manifest_resolve(f->reg, "a", "v1", &rec), PC_ENOTFOUND);
    assert_int_equal(pc_registry_manifest_resolve(f->reg, "a", res.digest.str, &rec), 0);
}

static void mounts(void **state)
{
    fixture *f = *state;
    pc_digest d;
    uint64_t size;
    assert_int_equal(upload(f->reg, "src", "shared", NULL, &d), 0);
    assert_int_equal(pc_registry_blob_mount(f->reg, "dst", "nope", &d), PC_ENOTFOUND);
    assert_int_equal(pc_registry_blob_stat(f->reg, "dst", &d, &size), PC_ENOTFOUND);
    assert_int_equal(pc_registry_blob_mount(f->reg, "dst", "src", &d), 0);
    assert_int_equal(pc_registry_blob_stat(f->reg, "dst", &d, &size), 0);
    assert_int_equal(pc_registry_blob_mount(f->reg, "dst2", NULL, &d), 0);
    pc_digest unknown;
    assert_int_equal(pc_digest_buffer(&unknown, PC_DIGEST_SHA256, "x", 1), 0);
    assert_int_equal(pc_registry_blob_mount(f->reg, "dst3", NULL, &unknown), PC_ENOTFOUND);
}

static void tag_pagination(void **state)
{
    fixture *f = *state;
    pc_digest cfg, layer;
    char m[1024], last[64];
    pc_manifest_put_result res;
    char *json = NULL;
    bool more = false;
    assert_int_equal(upload(f->reg, "a", "{}", NULL, &cfg), 0);
    assert_int_equal(upload(f->reg, "a", "layer", NULL, &layer), 0);
    image_manifest(m, sizeof(m), &cfg, &layer);
    const char *tags[] = {"c", "a", "B", "b"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pc_registry_manifest_put(f->reg, "a", tags[i], NULL, m, strlen(m), &res),
                         0);
    assert_int_equal(pc_registry_tags_json(f->reg, "a", NULL, 2, &json, &more, last, 64), 0);
    assert_string_equal(json, "{\"name\":\"a\",\"tags\":[\"B\",\"a\"]}");
    assert_true(more);
    assert_string_equal(last, "a");
    free(json);
    assert_int_equal(pc_registry_tags_json(f->reg, "a", "a", 2, &json, &more, last, 64), 0);
    assert_string_equal(json, "{\"name\":\"a\",\"tags\":[\"b\",\"c\"]}");
    assert_false(more);
    free(json);
    assert_int_equal(pc_registry_tags_json(f->reg, "a", NULL, -1, &json, &more, last, 64), 0);
    assert_string_equal(json, "{\"name\":\"a\",\"tags\":[\"B\",\"a\",\"b\",\"c\"]}");
    free(json);
    assert_int_equal(pc_registry_tags_json(f->reg, "zzz", NULL, -1, &json, &more, last, 64),
                     PC_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(upload_verified_before_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(upload_belongs_to_its_repo, setup, teardown),
        cmocka_unit_test_setup_teardown(upload_one_writer_across_registries, setup, teardown),
        cmocka_unit_test_setup_teardown(manifest_refuses_missing_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(index_refuses_missing_child, setup, teardown),
        cmocka_unit_test_setup_teardown(deletes_never_break_other_repos, setup, teardown),
        cmocka_unit_test_setup_teardown(tag_delete_keeps_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(mounts, setup, teardown),
        cmocka_unit_test_setup_teardown(tag_pagination, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
