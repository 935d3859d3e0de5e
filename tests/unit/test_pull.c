/*
 * test_pull.c - unit tests for the pull engine (pull.c, pull_platform.c,
 * pull_layout.c): platform strings and normalization, choosing a child of
 * an index, descriptors (foreign layers), the OCI layout writer (temp file +
 * rename, index.json merging), and whole pulls from an in-process source:
 * single manifests, indexes, all platforms, skips, every verification
 * failure, 429, cancel, progress events, and many pulls at once.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "pull.h"
#include "pull_memsource.h"

/* ---- helpers ---- */

static char *mkdtemp_dir(void)
{
    char tmpl[] = "/tmp/pc-test-pull.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static bool file_exists(const char *dir, const char *rel)
{
    char p[600];
    snprintf(p, sizeof(p), "%.400s/%.150s", dir, rel);
    return access(p, F_OK) == 0;
}

static bool blob_exists(const char *dir, const pc_digest *d)
{
    char rel[200];
    snprintf(rel, sizeof(rel), "blobs/sha256/%s", pc_digest_hex(d));
    return file_exists(dir, rel);
}

/* Files in dir/blobs/sha256 whose name starts with '.' (temporaries). */
static int dotfiles(const char *dir)
{
    char p[600];
    snprintf(p, sizeof(p), "%.400s/blobs/sha256", dir);
    DIR *dd = opendir(p);
    int n = 0;
    struct dirent *e;
    if (!dd)
        return 0;
    while ((e = readdir(dd)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(dd);
    return n;
}

static json_t *load_index(const char *dir)
{
    char p[600];
    snprintf(p, sizeof(p), "%.400s/index.json", dir);
    json_t *j = json_load_file(p, 0, NULL);
    assert_non_null(j);
    return j;
}

static const char *ref_name_of(json_t *entry)
{
    return json_string_value(json_object_get(json_object_get(entry, "annotations"),
                                             "org.opencontainers.image.ref.name"));
}

/* ---- platforms ---- */

static void plat_ok(const char *in, const char *want)
{
    pc_pull_platform p;
    char buf[PC_PULL_PLATFORM_STR];
    if (pc_pull_platform_parse(&p, in) != 0)
        fail_msg("'%s' rejected: %s", in, pc_error_last());
    pc_pull_platform_format(&p, buf, sizeof(buf));
    if (strcmp(buf, want) != 0)
        fail_msg("'%s' -> '%s', want '%s'", in, buf, want);
}

static void plat_bad(const char *in)
{
    pc_pull_platform p;
    pc_error_clear();
    if (pc_pull_platform_parse(&p, in) != PC_EINVAL)
        fail_msg("'%s' accepted", in ? in : "(null)");
    assert_true(pc_error_last()[0] != '\0');
}

static void test_platform_parse(void **state)
{
    (void)state;
    plat_ok("linux/amd64", "linux/amd64");
    plat_ok("linux/amd64/v1", "linux/amd64");
    plat_ok("linux/amd64/v3", "linux/amd64/v3");
    plat_ok("linux/arm64", "linux/arm64/v8");
    plat_ok("linux/arm64/v8", "linux/arm64/v8");
    plat_ok("linux/arm64/8", "linux/arm64/v8");
    plat_ok("linux/arm", "linux/arm/v7");
    plat_ok("linux/arm/v6", "linux/arm/v6");
    plat_ok("Linux/X86_64", "linux/amd64");
    plat_ok("linux/aarch64", "linux/arm64/v8");
    plat_ok("linux/armhf", "linux/arm/v7");
    plat_ok("linux/i386", "linux/386");
    plat_ok("windows/amd64", "windows/amd64");
    plat_ok("linux/s390x", "linux/s390x");
    plat_bad(NULL);
    plat_bad("");
    plat_bad("linux");
    plat_bad("linux/");
    plat_bad("/amd64");
    plat_bad("linux/amd64/");
    plat_bad("linux/arm/v7/extra");
    plat_bad("linux/am d64");
    plat_bad("linux/amd64;rm");
}

static void test_platform_host(void **state)
{
    (void)state;
    pc_pull_platform p;
    pc_pull_platform_host(&p);
    assert_string_equal(p.os, "linux");
    assert_true(p.arch[0] != '\0');
    assert_string_not_equal(p.arch, "x86_64");
    assert_string_not_equal(p.arch, "aarch64");
}

static pc_pull_desc child(const char *os, const char *arch, const char *variant)
{
    pc_pull_desc d;
    memset(&d, 0, sizeof(d));
    if (os) {
        d.has_platform = true;
        snprintf(d.platform.os, sizeof(d.platform.os), "%s", os);
        snprintf(d.platform.arch, sizeof(d.platform.arch), "%s", arch);
        snprintf(d.platform.variant, sizeof(d.platform.variant), "%s", variant ? variant : "");
        pc_pull_platform_normalize(&d.platform);
    }
    return d;
}

static size_t pick(const pc_pull_desc *kids, size_t n, const char *want)
{
    pc_pull_platform w;
    size_t i = 999;
    assert_int_equal(pc_pull_platform_parse(&w, want), 0);
    if (pc_pull_platform_select(kids, n, &w, &i) != 0)
        return 999;
    return i;
}

static void test_platform_select(void **state)
{
    (void)state;
    pc_pull_desc kids[] = {
        child(NULL, NULL, NULL),           /* no platform: never chosen */
        child("linux", "amd64", NULL),     /* 1 */
        child("linux", "arm64", "v8"),     /* 2 */
        child("linux", "arm", "v6"),       /* 3 */
        child("linux", "arm", "v7"),       /* 4 */
        child("unknown", "unknown", NULL), /* an attestation manifest */
        child("linux", "amd64", NULL),     /* 6: a duplicate; the first wins */
        child("windows", "amd64", NULL),   /* 7 */
        child("linux", "aarch64", NULL),   /* 8: normalized to arm64/v8 */
    };
    size_t n = sizeof(kids) / sizeof(kids[0]);
    assert_int_equal(pick(kids, n, "linux/amd64"), 1);
    assert_int_equal(pick(kids, n, "linux/x86_64"), 1);
    assert_int_equal(pick(kids, n, "linux/arm64"), 2);
    assert_int_equal(pick(kids, n, "linux/arm64/v8"), 2);
    assert_int_equal(pick(kids, n, "linux/arm/v7"), 4);
    assert_int_equal(pick(kids, n, "linux/arm"), 4);
    assert_int_equal(pick(kids, n, "linux/arm/v6"), 3);
    assert_int_equal(pick(kids, n, "windows/amd64"), 7);
    assert_int_equal(pick(kids, n, "linux/arm/v5"), 999);
    assert_int_equal(pick(kids, n, "linux/amd64/v3"), 999);

    /* an arm/v7 machine takes a v6 image when there is no v7 one */
    pc_pull_desc old[] = {child("linux", "arm", "v5"), child("linux", "arm", "v6")};
    assert_int_equal(pick(old, 2, "linux/arm/v7"), 1);

    pc_error_clear();
    assert_int_equal(pick(kids, n, "linux/s390x"), 999);
    assert_non_null(strstr(pc_error_last(), "linux/s390x"));
    assert_non_null(strstr(pc_error_last(), "linux/arm64/v8"));
    assert_int_equal(pick(kids, 0, "linux/amd64"), 999);
    assert_non_null(strstr(pc_error_last(), "none"));
}

static void test_descs(void **state)
{
    (void)state;
    const char *index =
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" PC_MT_OCI_MANIFEST "\",\"digest\":\"sha256:"
        "1111111111111111111111111111111111111111111111111111111111111111\",\"size\":10,"
        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"" PC_MT_OCI_MANIFEST "\",\"digest\":\"sha256:"
        "2222222222222222222222222222222222222222222222222222222222222222\",\"size\":20}]}";
    bool is_index = false;
    char mt[256];
    pc_pull_desc *d = NULL;
    size_t n = 0;
    assert_int_equal(
        pc_pull_descs_parse(index, strlen(index), NULL, &is_index, mt, sizeof(mt), &d, &n), 0);
    assert_true(is_index);
    assert_string_equal(mt, PC_MT_OCI_INDEX);
    assert_int_equal(n, 2);
    assert_true(d[0].has_platform);
    assert_string_equal(d[0].platform.arch, "arm64");
    assert_string_equal(d[0].platform.variant, "v8");
    assert_int_equal(d[0].size, 10);
    assert_false(d[1].has_platform);
    free(d);

    /* a Docker manifest (media type from Content-Type) with a foreign layer */
    const char *man =
        "{\"schemaVersion\":2,"
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
        "\"digest\":\"sha256:3333333333333333333333333333333333333333333333333333333333333333\","
        "\"size\":5},\"layers\":["
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
        "\"digest\":\"sha256:4444444444444444444444444444444444444444444444444444444444444444\","
        "\"size\":7,\"urls\":[\"https://example.com/layer\"]},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
        "\"digest\":\"sha256:5555555555555555555555555555555555555555555555555555555555555555\","
        "\"size\":8},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        "\"digest\":\"sha256:6666666666666666666666666666666666666666666666666666666666666666\","
        "\"size\":9,\"urls\":[\"https://example.com/mirror\"]}]}";
    assert_int_equal(pc_pull_descs_parse(man, strlen(man), PC_MT_DOCKER_MANIFEST, &is_index, mt,
                                         sizeof(mt), &d, &n),
                     0);
    assert_false(is_index);
    assert_string_equal(mt, PC_MT_DOCKER_MANIFEST);
    assert_int_equal(n, 4);
    assert_int_equal(d[0].size, 5);
    assert_true(pc_pull_desc_foreign(&d[1]));  /* foreign with urls: left out */
    assert_false(pc_pull_desc_foreign(&d[2])); /* foreign without urls: fetched */
    assert_false(pc_pull_desc_foreign(&d[3])); /* urls on a normal layer: fetched */
    free(d);

    assert_int_equal(pc_pull_descs_parse("{}", 2, NULL, &is_index, mt, sizeof(mt), &d, &n),
                     PC_EINVAL);
    assert_null(d);
    assert_int_equal(pc_pull_descs_parse("nope", 4, NULL, &is_index, mt, sizeof(mt), &d, &n),
                     PC_EINVAL);
}

/* ---- the layout writer ---- */

static void test_layout(void **state)
{
    (void)state;
    char *dir = mkdtemp_dir();
    char sub[600];
    snprintf(sub, sizeof(sub), "%.400s/layout", dir);
    pc_pull_layout *l = NULL;
    pc_digest d, other;
    const char *text = "hello layout";

    assert_int_equal(pc_pull_layout_open(&l, sub), 0);
    assert_true(file_exists(sub, "oci-layout"));
    assert_true(file_exists(sub, "blobs/sha256"));
    assert_false(file_exists(sub, "index.json"));

    /* put checks the digest */
    pc_digest_buffer(&d, PC_DIGEST_SHA256, text, strlen(text));
    pc_digest_buffer(&other, PC_DIGEST_SHA256, "x", 1);
    assert_int_equal(pc_pull_layout_put(l, &other, text, strlen(text)), PC_EDIGEST);
    assert_false(blob_exists(sub, &other));
    assert_int_equal(pc_pull_layout_put(l, &d, text, strlen(text)), 0);
    assert_true(blob_exists(sub, &d));
    assert_true(pc_pull_layout_has(l, &d, strlen(text)));
    assert_false(pc_pull_layout_has(l, &d, strlen(text) + 1));
    assert_false(pc_pull_layout_has(l, &other, 1));
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(pc_pull_layout_read(l, &d, 100, &buf, &len), 0);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(buf, text, len);
    free(buf);
    assert_int_equal(pc_pull_layout_read(l, &d, 3, &buf, &len), PC_ETOOBIG);
    assert_int_equal(pc_pull_layout_read(l, &other, 100, &buf, &len), PC_ENOTFOUND);

    /* a streamed blob is invisible until committed; abort leaves nothing */
    pc_pull_layout_blob *w = NULL;
    assert_int_equal(pc_pull_layout_blob_begin(l, &other, &w), 0);
    assert_int_equal(pc_pull_layout_blob_write(w, "x", 1), 0);
    assert_false(blob_exists(sub, &other));
    assert_int_equal(dotfiles(sub), 1);
    pc_pull_layout_blob_abort(w);
    assert_false(blob_exists(sub, &other));
    assert_int_equal(dotfiles(sub), 0);
    assert_int_equal(pc_pull_layout_blob_begin(l, &other, &w), 0);
    assert_int_equal(pc_pull_layout_blob_write(w, "x", 1), 0);
    assert_int_equal(pc_pull_layout_blob_commit(w), 0);
    assert_true(pc_pull_layout_has(l, &other, 1));
    assert_int_equal(dotfiles(sub), 0);

    /* a file whose content does not match its name is not "present" */
    char p[700];
    snprintf(p, sizeof(p), "%.400s/blobs/sha256/%s", sub, pc_digest_hex(&other));
    FILE *f = fopen(p, "w");
    fputs("y", f);
    fclose(f);
    assert_false(pc_pull_layout_has(l, &other, 1));

    /* index.json: entries by name replace, others stay */
    pc_pull_desc a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    snprintf(a.media_type, sizeof(a.media_type), PC_MT_OCI_MANIFEST);
    a.digest = d;
    a.size = 12;
    b = a;
    b.digest = other;
    b.has_platform = true;
    assert_int_equal(pc_pull_platform_parse(&b.platform, "linux/arm64"), 0);
    assert_int_equal(pc_pull_layout_tag(l, &a, "v1"), 0);
    assert_int_equal(pc_pull_layout_tag(l, &a, "v2"), 0);
    assert_int_equal(pc_pull_layout_tag(l, &b, "v1"), 0); /* v1 moves to b */
    assert_int_equal(pc_pull_layout_tag(l, &b, NULL), 0); /* unnamed */
    assert_int_equal(pc_pull_layout_tag(l, &b, NULL), 0); /* not twice */
    json_t *idx = load_index(sub);
    assert_int_equal(json_integer_value(json_object_get(idx, "schemaVersion")), 2);
    assert_string_equal(json_string_value(json_object_get(idx, "mediaType")), PC_MT_OCI_INDEX);
    json_t *m = json_object_get(idx, "manifests");
    assert_int_equal(json_array_size(m), 3);
    assert_string_equal(ref_name_of(json_array_get(m, 0)), "v2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "digest")), d.str);
    assert_string_equal(ref_name_of(json_array_get(m, 1)), "v1");
    json_t *e1 = json_array_get(m, 1);
    assert_string_equal(json_string_value(json_object_get(e1, "digest")), other.str);
    assert_int_equal(json_integer_value(json_object_get(e1, "size")), 12);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e1, "platform"), "variant")), "v8");
    assert_null(ref_name_of(json_array_get(m, 2)));
    json_decref(idx);
    pc_pull_layout_close(l);

    /* reopening an existing layout is fine; a non-empty non-layout is not */
    assert_int_equal(pc_pull_layout_open(&l, sub), 0);
    pc_pull_layout_close(l);
    snprintf(p, sizeof(p), "%.400s/oci-layout", sub);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(pc_pull_layout_open(&l, sub), PC_EEXISTS);
    assert_null(l);
    /* a file in the way */
    snprintf(p, sizeof(p), "%.400s/plainfile", dir);
    f = fopen(p, "w");
    fclose(f);
    assert_int_not_equal(pc_pull_layout_open(&l, p), 0);
    rm_rf(dir);
    free(dir);
}

/* ---- whole pulls from memory ---- */

typedef struct {
    memsrc s;
    pc_pull_source src;
    pc_digest amd, arm, index, single;
    size_t amd_size, arm_size, index_size;
    uint64_t amd_bytes, single_bytes;
    char index_body[1024];
} world;

static void world_init(world *w)
{
    ms_init(&w->s);
    ms_source(&w->s, &w->src);
    ms_add_image(&w->s, "single", "linux", "amd64", NULL, 1, &w->single, NULL, &w->single_bytes);
    ms_add_image(&w->s, NULL, "linux", "amd64", NULL, 2, &w->amd, &w->amd_size, &w->amd_bytes);
    ms_add_image(&w->s, NULL, "linux", "arm64", "v8", 3, &w->arm, &w->arm_size, NULL);
    snprintf(w->index_body, sizeof(w->index_body),
             "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\",\"manifests\":["
             "{\"mediaType\":\"" PC_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
             "{\"mediaType\":\"" PC_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}",
             w->amd.str, w->amd_size, w->arm.str, w->arm_size);
    ms_add_manifest(&w->s, "multi", w->index_body, PC_MT_OCI_INDEX, &w->index);
}

static int run(world *w, const char *ref, const char *out, const char *platform, bool all,
               pc_pull_result *res)
{
    pc_pull_platform pl;
    if (platform)
        assert_int_equal(pc_pull_platform_parse(&pl, platform), 0);
    pc_pull_opts o = {
        .repo = "test/app",
        .reference = ref,
        .tag = strncmp(ref, "sha256:", 7) == 0 ? NULL : ref,
        .output = out,
        .platform = platform ? &pl : NULL,
        .all_platforms = all,
        .concurrency = 3,
    };
    return pc_pull_run(&w->src, &o, res);
}

/* The blobs of a manifest in the source, for checking a layout. */
static void expect_image_in(world *w, const char *dir, const pc_digest *man)
{
    ms_manifest *m = ms_find_manifest(&w->s, man->str);
    pc_pull_desc *d;
    size_t n;
    bool is_index;
    assert_non_null(m);
    assert_true(blob_exists(dir, man));
    assert_int_equal(
        pc_pull_descs_parse(m->body, m->len, m->media_type, &is_index, NULL, 0, &d, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(blob_exists(dir, &d[i].digest));
    free(d);
}

static void test_pull_single(void **state)
{
    (void)state;
    world w;
    pc_pull_result r;
    char *dir = mkdtemp_dir();
    world_init(&w);

    assert_int_equal(run(&w, "single", dir, NULL, false, &r), 0);
    assert_false(r.top_is_index);
    assert_true(pc_digest_equal(&r.top.digest, &w.single));
    assert_true(pc_digest_equal(&r.named.digest, &w.single));
    assert_string_equal(r.top.media_type, PC_MT_OCI_MANIFEST);
    assert_int_equal(r.nimages, 1);
    assert_string_equal(r.images[0].platform, "linux/amd64"); /* from the config */
    assert_int_equal(r.blobs, 3);
    assert_int_equal(r.blobs_skipped, 0);
    assert_int_equal(r.bytes, w.single_bytes);
    assert_int_equal(r.manifests, 1);
    assert_true(r.has_ratelimit == false);
    expect_image_in(&w, dir, &w.single);
    assert_int_equal(dotfiles(dir), 0);
    json_t *idx = load_index(dir);
    json_t *e = json_array_get(json_object_get(idx, "manifests"), 0);
    assert_string_equal(ref_name_of(e), "single");
    assert_string_equal(json_string_value(json_object_get(e, "digest")), w.single.str);
    json_decref(idx);
    pc_pull_result_clear(&r);

    /* again: everything is there already */
    int gets = w.s.blob_gets;
    assert_int_equal(run(&w, "single", dir, NULL, false, &r), 0);
    assert_int_equal(r.blobs, 0);
    assert_int_equal(r.blobs_skipped, 3);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(w.s.blob_gets, gets);
    assert_string_equal(r.images[0].platform, "linux/amd64"); /* config read from the layout */
    pc_pull_result_clear(&r);

    /* by digest: verified against the reference, no name in index.json */
    assert_int_equal(run(&w, w.single.str, NULL, NULL, false, &r), 0);
    assert_true(pc_digest_equal(&r.named.digest, &w.single));
    pc_pull_result_clear(&r);

    /* unknown tag: 404 with the registry's code */
    assert_int_equal(run(&w, "nope", NULL, NULL, false, &r), PC_ENOTFOUND);
    assert_int_equal(r.error.kind, PC_PULL_FAIL_REGISTRY);
    assert_int_equal(r.error.status, 404);
    assert_string_equal(r.error.code, "MANIFEST_UNKNOWN");
    assert_string_equal(r.error.key, "404 MANIFEST_UNKNOWN");
    assert_non_null(strstr(r.error.message, "manifest nope"));
    pc_pull_result_clear(&r);
    ms_free(&w.s);
    rm_rf(dir);
    free(dir);
}

static void test_pull_index(void **state)
{
    (void)state;
    world w;
    pc_pull_result r;
    char *dir = mkdtemp_dir();
    world_init(&w);

    assert_int_equal(run(&w, "multi", dir, "linux/arm64", false, &r), 0);
    assert_true(r.top_is_index);
    assert_true(pc_digest_equal(&r.top.digest, &w.index));
    assert_true(pc_digest_equal(&r.named.digest, &w.arm));
    assert_true(r.named.has_platform);
    assert_int_equal(r.nimages, 1);
    assert_string_equal(r.images[0].platform, "linux/arm64/v8");
    assert_int_equal(r.manifests, 2);
    assert_int_equal(r.blobs, 3);
    expect_image_in(&w, dir, &w.arm);
    assert_false(blob_exists(dir, &w.amd));
    assert_false(blob_exists(dir, &w.index)); /* one platform: the index is not kept */
    json_t *idx = load_index(dir);
    json_t *e = json_array_get(json_object_get(idx, "manifests"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), w.arm.str);
    assert_string_equal(ref_name_of(e), "multi");
    json_decref(idx);
    pc_pull_result_clear(&r);

    /* every platform: the index is named, the shared layer fetched once */
    int gets = w.s.blob_gets;
    assert_int_equal(run(&w, "multi", dir, NULL, true, &r), 0);
    assert_true(pc_digest_equal(&r.named.digest, &w.index));
    assert_int_equal(r.nimages, 2);
    assert_int_equal(r.manifests, 3);
    assert_int_equal(r.blobs + r.blobs_skipped, 5);
    assert_int_equal(r.blobs_skipped, 3); /* arm64's from the first pull */
    assert_int_equal(w.s.blob_gets - gets, 2);
    expect_image_in(&w, dir, &w.amd);
    expect_image_in(&w, dir, &w.arm);
    assert_true(blob_exists(dir, &w.index));
    idx = load_index(dir);
    assert_int_equal(json_array_size(json_object_get(idx, "manifests")), 1);
    e = json_array_get(json_object_get(idx, "manifests"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), w.index.str);
    assert_string_equal(json_string_value(json_object_get(e, "mediaType")), PC_MT_OCI_INDEX);
    json_decref(idx);
    pc_pull_result_clear(&r);

    /* no such platform */
    assert_int_equal(run(&w, "multi", NULL, "linux/s390x", false, &r), PC_ENOTFOUND);
    assert_int_equal(r.error.kind, PC_PULL_FAIL_PLATFORM);
    assert_non_null(strstr(r.error.message, "linux/arm64/v8"));
    pc_pull_result_clear(&r);

    /* manifests only */
    gets = w.s.blob_gets;
    pc_pull_opts o = {.repo = "test/app", .reference = "multi", .manifest_only = true};
    pc_pull_platform pl;
    pc_pull_platform_parse(&pl, "linux/amd64");
    o.platform = &pl;
    assert_int_equal(pc_pull_run(&w.src, &o, &r), 0);
    assert_int_equal(r.manifests, 2);
    assert_int_equal(r.blobs, 0);
    assert_int_equal(w.s.blob_gets, gets);
    pc_pull_result_clear(&r);
    ms_free(&w.s);
    rm_rf(dir);
    free(dir);
}

static void test_pull_verify(void **state)
{
    (void)state;
    world w;
    pc_pull_result r;
    char *dir = mkdtemp_dir();
    world_init(&w);

    /* the second layer of "single" comes back with wrong bytes */
    ms_manifest *m = ms_find_manifest(&w.s, "single");
    pc_pull_desc *d;
    size_t n;
    bool is_index;
    assert_int_equal(
        pc_pull_descs_parse(m->body, m->len, m->media_type, &is_index, NULL, 0, &d, &n), 0);
    pc_digest bad = d[2].digest;
    free(d);
    ms_blob *b = NULL;
    for (size_t i = 0; i < w.s.nb; i++)
        if (pc_digest_equal(&w.s.b[i].d, &bad))
            b = &w.s.b[i];
    assert_non_null(b);
    b->wrong = true;
    assert_int_equal(run(&w, "single", dir, NULL, false, &r), PC_EDIGEST);
    assert_int_equal(r.error.kind, PC_PULL_FAIL_VERIFY);
    assert_non_null(strstr(r.error.message, bad.str));
    assert_non_null(strstr(r.error.message, "digest mismatch"));
    assert_false(blob_exists(dir, &bad));
    assert_false(blob_exists(dir, &w.single));
    assert_false(file_exists(dir, "index.json"));
    assert_int_equal(dotfiles(dir), 0);
    pc_pull_result_clear(&r);
    b->wrong = false;

    /* a Content-Length that disagrees with the descriptor: stopped at once */
    b->claimed_length = (int64_t)b->len + 1;
    assert_int_equal(run(&w, "single", dir, NULL, false, &r), PC_EDIGEST);
    assert_non_null(strstr(r.error.message, "size mismatch"));
    assert_false(blob_exists(dir, &bad));
    assert_int_equal(dotfiles(dir), 0);
    pc_pull_result_clear(&r);
    b->claimed_length = -1;

    /* fewer bytes than the descriptor says (the blob is shorter) */
    b->len -= 10;
    assert_int_equal(run(&w, "single", dir, NULL, false, &r), PC_EDIGEST);
    assert_non_null(strstr(r.error.message, "size mismatch"));
    assert_false(blob_exists(dir, &bad));
    pc_pull_result_clear(&r);
    b->len += 10;

    /* Docker-Content-Digest that disagrees with the bytes */
    snprintf(m->sent_digest, sizeof(m->sent_digest), "%s", w.amd.str);
    assert_int_equal(run(&w, "single", NULL, NULL, false, &r), PC_EDIGEST);
    assert_non_null(strstr(r.error.message, "Docker-Content-Digest"));
    pc_pull_result_clear(&r);
    snprintf(m->sent_digest, sizeof(m->sent_digest), "sha256:nothex");
    assert_int_equal(run(&w, "single", NULL, NULL, false, &r), PC_EDIGEST);
    pc_pull_result_clear(&r);
    m->sent_digest[0] = '\0';

    /* by digest: the bytes must hash to the reference */
    ms_manifest *md = ms_find_manifest(&w.s, w.amd.str);
    snprintf(md->ref, sizeof(md->ref), "%s", w.arm.str); /* arm's digest serves amd's bytes */
    ms_manifest *ma = ms_find_manifest(&w.s, w.arm.str);
    assert_ptr_equal(ma, md);
    assert_int_equal(run(&w, w.arm.str, NULL, NULL, false, &r), PC_EDIGEST);
    assert_non_null(strstr(r.error.message, "hashes to"));
    pc_pull_result_clear(&r);
    /* ... and so must an index's child */
    assert_int_equal(run(&w, "multi", NULL, "linux/arm64", false, &r), PC_EDIGEST);
    pc_pull_result_clear(&r);

    /* a manifest that is not one */
    ms_add_manifest(&w.s, "garbage", "{\"schemaVersion\":2}", PC_MT_OCI_MANIFEST, NULL);
    assert_int_equal(run(&w, "garbage", NULL, NULL, false, &r), PC_EDIGEST);
    assert_int_equal(r.error.kind, PC_PULL_FAIL_VERIFY);
    pc_pull_result_clear(&r);
    ms_free(&w.s);
    rm_rf(dir);
    free(dir);
}

static void test_pull_429(void **state)
{
    (void)state;
    world w;
    pc_pull_result r;
    world_init(&w);
    w.s.budget = 1;
    assert_int_equal(run(&w, "single", NULL, NULL, false, &r), 0);
    assert_true(r.has_ratelimit);
    assert_int_equal(r.ratelimit.limit, 100);
    assert_int_equal(r.ratelimit.remaining, 0);
    assert_int_equal(r.ratelimit.window, 21600);
    pc_pull_result_clear(&r);
    assert_int_equal(run(&w, "single", NULL, NULL, false, &r), PC_ELIMIT);
    assert_int_equal(r.error.kind, PC_PULL_FAIL_REGISTRY);
    assert_int_equal(r.error.status, 429);
    assert_string_equal(r.error.code, "TOOMANYREQUESTS");
    assert_string_equal(r.error.key, "429 TOOMANYREQUESTS");
    assert_non_null(strstr(r.error.message, "You have reached your pull rate limit"));
    assert_true(r.has_ratelimit); /* the headers of the refusal are kept too */
    assert_int_equal(r.ratelimit.remaining, 0);
    pc_pull_result_clear(&r);
    ms_free(&w.s);
}

typedef struct {
    int plan, start, data, done, skipped, failed;
    uint64_t last_total_done, total_size;
    size_t nblobs;
} counts;

static void count_event(const pc_pull_progress *p, void *ctx)
{
    counts *c = ctx;
    switch (p->event) {
    case PC_PULL_EV_PLAN:
        c->plan++;
        c->total_size = p->total_size;
        c->nblobs = p->nblobs;
        break;
    case PC_PULL_EV_START:
        c->start++;
        break;
    case PC_PULL_EV_DATA:
        c->data++;
        assert_true(p->done <= p->size);
        break;
    case PC_PULL_EV_DONE:
        c->done++;
        break;
    case PC_PULL_EV_SKIPPED:
        c->skipped++;
        break;
    case PC_PULL_EV_FAILED:
        c->failed++;
        break;
    }
    assert_true(p->total_done >= c->last_total_done);
    c->last_total_done = p->total_done;
}

static void test_pull_progress_cancel(void **state)
{
    (void)state;
    world w;
    pc_pull_result r;
    counts c;
    memset(&c, 0, sizeof(c));
    world_init(&w);
    pc_pull_opts o = {.repo = "test/app",
                      .reference = "single",
                      .on_progress = count_event,
                      .progress_ctx = &c,
                      .concurrency = 2};
    assert_int_equal(pc_pull_run(&w.src, &o, &r), 0);
    assert_int_equal(c.plan, 1);
    assert_int_equal(c.nblobs, 3);
    assert_int_equal(c.start, 3);
    assert_int_equal(c.done, 3);
    assert_int_equal(c.failed, 0);
    assert_true(c.data >= 3);
    assert_int_equal(c.total_size, w.single_bytes);
    assert_int_equal(c.last_total_done, w.single_bytes);
    pc_pull_result_clear(&r);

    atomic_bool cancel;
    atomic_init(&cancel, true);
    o.on_progress = NULL;
    o.cancel = &cancel;
    assert_int_not_equal(pc_pull_run(&w.src, &o, &r), 0);
    assert_int_equal(r.error.kind, PC_PULL_FAIL_CANCELED);
    pc_pull_result_clear(&r);
    ms_free(&w.s);
}

typedef struct {
    world *w;
    int rc;
    uint64_t bytes;
} thread_arg;

static void *pull_thread(void *arg)
{
    thread_arg *a = arg;
    pc_pull_result r;
    pc_pull_platform pl;
    pc_pull_platform_parse(&pl, "linux/amd64");
    pc_pull_opts o = {.repo = "test/app", .reference = "multi", .platform = &pl};
    a->rc = pc_pull_run(&a->w->src, &o, &r);
    a->bytes = r.bytes;
    pc_pull_result_clear(&r);
    return NULL;
}

static void test_pull_threads(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    pthread_t t[8];
    thread_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (thread_arg){.w = &w, .rc = -100};
        assert_int_equal(pthread_create(&t[i], NULL, pull_thread, &a[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, 0);
        assert_int_equal(a[i].bytes, w.amd_bytes);
    }
    assert_int_equal(w.s.manifest_gets, 16);
    assert_int_equal(w.s.blob_gets, 24);
    ms_free(&w.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_platform_parse),  cmocka_unit_test(test_platform_host),
        cmocka_unit_test(test_platform_select), cmocka_unit_test(test_descs),
        cmocka_unit_test(test_layout),          cmocka_unit_test(test_pull_single),
        cmocka_unit_test(test_pull_index),      cmocka_unit_test(test_pull_verify),
        cmocka_unit_test(test_pull_429),        cmocka_unit_test(test_pull_progress_cancel),
        cmocka_unit_test(test_pull_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
