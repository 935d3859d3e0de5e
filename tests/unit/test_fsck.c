/*
 * test_fsck.c - unit tests of the data directory check and repair
 * (fsck.c) over real filesystem and SQLite stores in a temporary
 * directory, with a registry open on the same directory as a daemon would
 * have it: a clean store has no problems; a corrupt layer is found with the
 * link and the manifests (an index too) it breaks, a check changes nothing
 * and a repair leaves a clean store; missing manifest bytes, mirrored
 * repositories (evicted layers are no problem), unlinked blobs, wrong
 * recorded sizes, orphans and uploads within and past the grace, stale
 * sessions and temp files; a repair leaves alone what changed meanwhile;
 * opening never creates a data directory; the meta store's guarded
 * removal.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fsck.h"
#include "registry_int.h" /* the stores themselves, to set up damage */
#include "testutil.h"

typedef struct {
    char dir[64];
    pc_registry *reg; /* the "daemon" on the same directory */
    pc_blob_backend *be;
    pc_metastore *ms;
} fixture;

typedef struct {
    pc_digest config, layer, manifest;
} image;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_non_null(pc_test_tmpdir(f->dir, sizeof(f->dir), "fsck"));
    assert_int_equal(pc_registry_open(&f->reg, f->dir), 0);
    f->be = f->reg->be;
    f->ms = f->reg->ms;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pc_registry_free(f->reg);
    pc_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* Upload data into repo through a session, as a push does. */
static pc_digest upload(fixture *f, const char *repo, const char *data)
{
    char id[72];
    pc_blob_up *w = NULL;
    uint64_t size = 0;
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, data, strlen(data)), 0);
    assert_int_equal(pc_registry_upload_start(f->reg, repo, id), 0);
    assert_int_equal(pc_registry_upload_open(f->reg, repo, id, &w), 0);
    assert_int_equal(pc_blob_up_write(w, data, strlen(data)), 0);
    assert_int_equal(pc_registry_upload_release(f->reg, id, w, true), 0);
    assert_int_equal(pc_registry_upload_finish(f->reg, repo, id, NULL, &d, &size), 0);
    return d;
}

/* Push a one-layer image (content made from seed) as repo:tag. */
static image push_image(fixture *f, const char *repo, const char *tag, int seed)
{
    image img;
    char cfg[64], layer[64], m[1024];
    pc_manifest_put_result res;
    snprintf(cfg, sizeof(cfg), "{\"seed\":%d}", seed);
    snprintf(layer, sizeof(layer), "layer bytes of image %d", seed);
    img.config = upload(f, repo, cfg);
    img.layer = upload(f, repo, layer);
    snprintf(m, sizeof(m),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
             "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
             img.config.str, strlen(cfg), img.layer.str, strlen(layer));
    assert_int_equal(pc_registry_manifest_put(f->reg, repo, tag, NULL, m, strlen(m), &res), 0);
    img.manifest = res.digest;
    return img;
}

/* Push an index of the one manifest child as repo:tag. */
static pc_digest push_index(fixture *f, const char *repo, const char *tag, const pc_digest *child)
{
    char idx[512];
    pc_manifest_put_result res;
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
             "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"digest\":\"%s\",\"size\":10,\"platform\":{\"os\":\"linux\","
             "\"architecture\":\"amd64\"}}]}",
             child->str);
    assert_int_equal(pc_registry_manifest_put(f->reg, repo, tag, NULL, idx, strlen(idx), &res), 0);
    return res.digest;
}

/* Store a mirrored image the way the mirror does: bytes put, links, and a
 * manifest record with its references (no completeness check). */
static image mirror_image(fixture *f, const char *repo, const char *tag, int seed)
{
    image img;
    char cfg[64], layer[64], m[1024];
    pc_manifest_rec rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(cfg, sizeof(cfg), "{\"mirrored\":%d}", seed);
    snprintf(layer, sizeof(layer), "mirrored layer %d", seed);
    assert_int_equal(pc_digest_buffer(&img.config, PC_DIGEST_SHA256, cfg, strlen(cfg)), 0);
    assert_int_equal(pc_digest_buffer(&img.layer, PC_DIGEST_SHA256, layer, strlen(layer)), 0);
    assert_int_equal(pc_blob_put(f->be, &img.config, cfg, strlen(cfg)), 0);
    assert_int_equal(pc_blob_put(f->be, &img.layer, layer, strlen(layer)), 0);
    assert_int_equal(f->ms->reg->blob_link(f->ms, repo, &img.config, strlen(cfg)), 0);
    assert_int_equal(f->ms->reg->blob_link(f->ms, repo, &img.layer, strlen(layer)), 0);
    snprintf(m, sizeof(m), "{\"schemaVersion\":2,\"config\":\"%s\",\"layer\":\"%s\"}",
             img.config.str, img.layer.str);
    assert_int_equal(pc_digest_buffer(&img.manifest, PC_DIGEST_SHA256, m, strlen(m)), 0);
    assert_int_equal(pc_blob_put(f->be, &img.manifest, m, strlen(m)), 0);
    snprintf(rec.repo, sizeof(rec.repo), "%s", repo);
    rec.digest = img.manifest;
    snprintf(rec.media_type, sizeof(rec.media_type), "application/vnd.oci.image.manifest.v1+json");
    rec.size = strlen(m);
    pc_manifest_ref refs[2] = {{img.config, false}, {img.layer, false}};
    assert_int_equal(f->ms->reg->manifest_put(f->ms, &rec, refs, 2, tag, NULL), 0);
    return img;
}

static void blob_path(fixture *f, const pc_digest *d, char *buf, size_t size)
{
    const char *hex = pc_digest_hex(d);
    snprintf(buf, size, "%s/blobs/sha256/%.2s/%s", f->dir, hex, hex);
}

/* Set a file's modification time seconds into the past. */
static void backdate(const char *path, long seconds)
{
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= seconds;
    tv[1] = tv[0];
    assert_int_equal(utimes(path, tv), 0);
}

static void write_file(const char *path, const char *data)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(data, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

typedef struct {
    bool repair;
    long grace, ttl;
    const char *const *ups;
    size_t nups;
    void (*hook)(void *);
    void *hook_ctx;
} run_opts;

/* fsck as its own process would: stores opened anew on the directory. */
static void run_with(fixture *f, const run_opts *ro, pc_fsck_report *r)
{
    pc_registry *reg = NULL;
    pc_fsck_opts o;
    memset(&o, 0, sizeof(o));
    o.repair = ro->repair;
    o.grace_s = ro->grace;
    o.upload_ttl_s = ro->ttl ? ro->ttl : 86400;
    o.upstreams = ro->ups;
    o.nups = ro->nups;
    o.before_repair = ro->hook;
    o.hook_ctx = ro->hook_ctx;
    assert_int_equal(pc_fsck_open(f->dir, &reg), 0);
    assert_int_equal(pc_fsck_run(reg, &o, r), 0);
    pc_registry_free(reg);
}

static void run(fixture *f, bool repair, pc_fsck_report *r)
{
    run_opts ro = {repair, 3600, 0, NULL, 0, NULL, NULL};
    run_with(f, &ro, r);
}

static unsigned long total(const pc_fsck_report *r)
{
    unsigned long n = 0;
    for (int k = 0; k < PC_FSCK_KIND_COUNT; k++)
        n += r->counts[k];
    assert_int_equal(n, r->nproblems);
    return n;
}

static const pc_fsck_problem *find(const pc_fsck_report *r, pc_fsck_kind kind)
{
    for (size_t i = 0; i < r->nproblems; i++)
        if (r->problems[i].kind == kind)
            return &r->problems[i];
    fail_msg("no %s problem", pc_fsck_kind_name(kind));
    return NULL;
}

static void assert_clean(fixture *f)
{
    pc_fsck_report r;
    run(f, false, &r);
    for (size_t i = 0; i < r.nproblems; i++)
        print_message("unexpected: %s %s %s %s\n", pc_fsck_kind_name(r.problems[i].kind),
                      r.problems[i].repo, r.problems[i].digest.str, r.problems[i].detail);
    assert_int_equal(total(&r), 0);
    pc_fsck_report_free(&r);
}

static void clean_store_has_no_problems(void **state)
{
    fixture *f = *state;
    image a = push_image(f, "team/a", "v1", 1);
    push_index(f, "team/a", "multi", &a.manifest);
    pc_fsck_report r;
    run(f, false, &r);
    assert_int_equal(total(&r), 0);
    assert_int_equal(r.blobs, 4); /* config, layer, manifest, index */
    assert_int_equal(r.manifests, 2);
    assert_int_equal(r.links, 2);
    assert_int_equal(r.young, 0);
    pc_fsck_report_free(&r);
    run(f, true, &r); /* nothing to repair: nothing changes */
    assert_int_equal(total(&r), 0);
    assert_int_equal(r.repaired, 0);
    pc_fsck_report_free(&r);
}

static void corrupt_layer_found_with_what_it_breaks(void **state)
{
    fixture *f = *state;
    image a = push_image(f, "team/a", "v1", 1);
    pc_digest idx = push_index(f, "team/a", "multi", &a.manifest);
    image b = push_image(f, "team/b", "v1", 2);
    char path[256];
    blob_path(f, &a.layer, path, sizeof(path));
    write_file(path, "layer bytes of image X"); /* same length, other bytes */

    pc_fsck_report r;
    run(f, false, &r);
    assert_int_equal(r.counts[PC_FSCK_CORRUPT_BLOB], 1);
    assert_int_equal(r.counts[PC_FSCK_DANGLING_LINK], 1);
    assert_int_equal(r.counts[PC_FSCK_INCOMPLETE_MANIFEST], 2); /* the image and its index */
    assert_int_equal(total(&r), 4);
    const pc_fsck_problem *p = find(&r, PC_FSCK_CORRUPT_BLOB);
    assert_string_equal(p->digest.str, a.layer.str);
    assert_string_equal(p->path, path);
    assert_int_equal(p->status, PC_FSCK_FOUND);
    p = find(&r, PC_FSCK_DANGLING_LINK);
    assert_string_equal(p->repo, "team/a");
    assert_string_equal(p->digest.str, a.layer.str);
    /* the image first (round 2), then the index that needs it (round 3) */
    p = find(&r, PC_FSCK_INCOMPLETE_MANIFEST);
    assert_string_equal(p->digest.str, a.manifest.str);
    assert_string_equal(p->ref.str, a.layer.str);
    assert_non_null(strstr(p->detail, "tags: v1"));
    assert_string_equal(p[1].digest.str, idx.str);
    assert_string_equal(p[1].ref.str, a.manifest.str);
    assert_non_null(strstr(p[1].detail, "tags: multi"));
    pc_fsck_report_free(&r);

    /* a check changes nothing */
    pc_manifest_rec rec;
    uint64_t size;
    assert_true(exists(path));
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "team/a", &a.layer, &size), 0);
    assert_int_equal(f->ms->reg->manifest_get(f->ms, "team/a", &idx, &rec), 0);

    run(f, true, &r);
    assert_int_equal(total(&r), 4);
    assert_int_equal(r.repaired, 4);
    assert_int_equal(r.failed, 0);
    for (size_t i = 0; i < r.nproblems; i++)
        assert_int_equal(r.problems[i].status, PC_FSCK_REPAIRED);
    pc_fsck_report_free(&r);
    assert_false(exists(path));
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "team/a", &a.layer, &size), PC_ENOTFOUND);
    assert_int_equal(f->ms->reg->manifest_get(f->ms, "team/a", &a.manifest, &rec), PC_ENOTFOUND);
    assert_int_equal(f->ms->reg->manifest_get(f->ms, "team/a", &idx, &rec), PC_ENOTFOUND);
    pc_digest t;
    assert_int_equal(f->ms->reg->tag_get(f->ms, "team/a", "v1", &t), PC_ENOTFOUND);
    assert_int_equal(f->ms->reg->tag_get(f->ms, "team/a", "multi", &t), PC_ENOTFOUND);
    /* the other image and the config are untouched */
    assert_int_equal(f->ms->reg->manifest_get(f->ms, "team/b", &b.manifest, &rec), 0);
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "team/a", &a.config, &size), 0);
    assert_clean(f);
}

static void missing_manifest_bytes(void **state)
{
    fixture *f = *state;
    image a = push_image(f, "team/a", "v1", 1);
    pc_digest idx = push_index(f, "team/a", "multi", &a.manifest);
    char path[256];
    blob_path(f, &a.manifest, path, sizeof(path));
    assert_int_equal(unlink(path), 0);

    pc_fsck_report r;
    run(f, false, &r);
    assert_int_equal(r.counts[PC_FSCK_MANIFEST_MISSING], 1);
    assert_int_equal(r.counts[PC_FSCK_INCOMPLETE_MANIFEST], 1);
    assert_int_equal(total(&r), 2);
    const pc_fsck_problem *p = find(&r, PC_FSCK_MANIFEST_MISSING);
    assert_string_equal(p->digest.str, a.manifest.str);
    assert_non_null(strstr(p->detail, "tags: v1"));
    assert_string_equal(find(&r, PC_FSCK_INCOMPLETE_MANIFEST)->digest.str, idx.str);
    pc_fsck_report_free(&r);

    run(f, true, &r);
    assert_int_equal(r.repaired, 2);
    pc_fsck_report_free(&r);
    pc_digest t;
    assert_int_equal(f->ms->reg->tag_get(f->ms, "team/a", "v1", &t), PC_ENOTFOUND);
    assert_clean(f);
}

static void mirrored_repos_may_lack_layers(void **state)
{
    fixture *f = *state;
    static const char *const ups[] = {"hub"};
    image d = mirror_image(f, "docker.io/library/x", "1", 1);
    image h = mirror_image(f, "hub/library/y", "1", 2);
    assert_true(pc_fsck_mirrored("docker.io/library/x", NULL, 0));
    assert_true(pc_fsck_mirrored("localhost:5000/x", NULL, 0));
    assert_false(pc_fsck_mirrored("hub/library/y", NULL, 0));
    assert_true(pc_fsck_mirrored("hub/library/y", ups, 1));
    assert_false(pc_fsck_mirrored("hubx/y", ups, 1));
    assert_false(pc_fsck_mirrored("team", ups, 1));

    /* evicted the way eviction does it: links, then the bytes */
    assert_int_equal(f->ms->reg->blob_unlink(f->ms, "docker.io/library/x", &d.layer), 0);
    assert_int_equal(f->be->remove(f->be, &d.layer), 0);
    assert_int_equal(f->ms->reg->blob_unlink(f->ms, "hub/library/y", &h.layer), 0);
    assert_int_equal(f->be->remove(f->be, &h.layer), 0);
    run_opts ro = {false, 3600, 0, ups, 1, NULL, NULL};
    pc_fsck_report r;
    run_with(f, &ro, &r);
    assert_int_equal(total(&r), 0);
    pc_fsck_report_free(&r);
    /* without the upstream's name, hub/... is a local repository */
    ro.nups = 0;
    run_with(f, &ro, &r);
    assert_int_equal(total(&r), 1);
    assert_string_equal(find(&r, PC_FSCK_INCOMPLETE_MANIFEST)->repo, "hub/library/y");
    pc_fsck_report_free(&r);

    /* a link without its file is a problem in a mirror too; the manifest
     * stays (the mirror fetches the layer again) */
    char path[256];
    blob_path(f, &d.config, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    ro.nups = 1;
    ro.repair = true;
    run_with(f, &ro, &r);
    assert_int_equal(total(&r), 1);
    assert_string_equal(find(&r, PC_FSCK_DANGLING_LINK)->digest.str, d.config.str);
    assert_int_equal(r.repaired, 1);
    pc_fsck_report_free(&r);
    pc_manifest_rec rec;
    uint64_t size;
    assert_int_equal(f->ms->reg->manifest_get(f->ms, "docker.io/library/x", &d.manifest, &rec), 0);
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "docker.io/library/x", &d.config, &size),
                     PC_ENOTFOUND);
    ro.repair = false;
    run_with(f, &ro, &r);
    assert_int_equal(total(&r), 0);
    pc_fsck_report_free(&r);
}

static void unlinked_blob_is_linked_again(void **state)
{
    fixture *f = *state;
    image a = push_image(f, "team/a", "v1", 1);
    /* a client deleted the layer's link (DELETE /v2/team/a/blobs/...) */
    assert_int_equal(pc_registry_blob_delete(f->reg, "team/a", &a.layer), 0);
    pc_fsck_report r;
    run(f, false, &r);
    assert_int_equal(total(&r), 1);
    const pc_fsck_problem *p = find(&r, PC_FSCK_UNLINKED_BLOB);
    assert_string_equal(p->repo, "team/a");
    assert_string_equal(p->digest.str, a.layer.str);
    pc_fsck_report_free(&r);
    run(f, true, &r);
    assert_int_equal(r.repaired, 1);
    pc_fsck_report_free(&r);
    uint64_t size = 0;
    assert_int_equal(pc_registry_blob_stat(f->reg, "team/a", &a.layer, &size), 0);
    assert_int_equal(size, strlen("layer bytes of image 1"));
    assert_clean(f);
}

/* Run SQL on the data directory's meta.db from a connection of our own. */
static void sql(fixture *f, const char *stmt)
{
    char path[128];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/meta.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void size_mismatch_recorded_right(void **state)
{
    fixture *f = *state;
    image a = push_image(f, "team/a", "v1", 1);
    char stmt[256];
    snprintf(stmt, sizeof(stmt), "UPDATE blob_links SET size = 999 WHERE digest = '%s'",
             a.config.str);
    sql(f, stmt);
    pc_fsck_report r;
    run(f, false, &r);
    assert_int_equal(total(&r), 1);
    const pc_fsck_problem *p = find(&r, PC_FSCK_SIZE_MISMATCH);
    assert_string_equal(p->digest.str, a.config.str);
    assert_int_equal(p->recorded, 999);
    assert_int_equal(p->size, strlen("{\"seed\":1}"));
    pc_fsck_report_free(&r);
    run(f, true, &r);
    assert_int_equal(r.repaired, 1);
    pc_fsck_report_free(&r);
    uint64_t size = 0;
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "team/a", &a.config, &size), 0);
    assert_int_equal(size, strlen("{\"seed\":1}"));
    assert_clean(f);
}

static void orphan_blobs_past_the_grace(void **state)
{
    fixture *f = *state;
    pc_digest old, young;
    assert_int_equal(pc_digest_buffer(&old, PC_DIGEST_SHA256, "old", 3), 0);
    assert_int_equal(pc_digest_buffer(&young, PC_DIGEST_SHA256, "young", 5), 0);
    assert_int_equal(pc_blob_put(f->be, &old, "old", 3), 0);
    assert_int_equal(pc_blob_put(f->be, &young, "young", 5), 0);
    char oldp[256], youngp[256];
    blob_path(f, &old, oldp, sizeof(oldp));
    blob_path(f, &young, youngp, sizeof(youngp));
    backdate(oldp, 7200);

    pc_fsck_report r;
    run(f, false, &r);
    assert_int_equal(total(&r), 1);
    const pc_fsck_problem *p = find(&r, PC_FSCK_ORPHAN_BLOB);
    assert_string_equal(p->digest.str, old.str);
    assert_true(p->age_s >= 7200);
    assert_int_equal(r.young, 1);
    pc_fsck_report_free(&r);
    run(f, true, &r);
    assert_int_equal(r.repaired, 1);
    pc_fsck_report_free(&r);
    assert_false(exists(oldp));
    assert_true(exists(youngp));
    /* with no grace the young one goes too */
    run_opts ro = {true, 0, 0, NULL, 0, NULL, NULL};
    run_with(f, &ro, &r);
    assert_int_equal(r.counts[PC_FSCK_ORPHAN_BLOB], 1);
    assert_int_equal(r.repaired, 1);
    pc_fsck_report_free(&r);
    assert_false(exists(youngp));
}

static void uploads_and_sessions(void **state)
{
    fixture *f = *state;
    char live[72], stale[72], fileless[72], path[256];
    pc_blob_wr *w = NULL;
    /* a push in progress: a session and its staging file, written now */
    assert_int_equal(pc_registry_upload_start(f->reg, "team/a", live), 0);
    /* a mirror fetch in progress: a staging file without a session */
    assert_int_equal(f->be->writer(f->be, "fetch-young", true, &w), 0);
    w->close(w);
    /* a crash's leftover: a staging file without a session, old */
    assert_int_equal(f->be->writer(f->be, "fetch-old", true, &w), 0);
    assert_int_equal(w->append(w, "abc", 3), 0);
    assert_int_equal(w->checkpoint(w, NULL, 0), 0);
    w->close(w);
    snprintf(path, sizeof(path), "%s/uploads/fetch-old", f->dir);
    backdate(path, 7200);
    /* an abandoned push: idle longer than the ttl */
    assert_int_equal(pc_registry_upload_start(f->reg, "team/a", stale), 0);
    snprintf(path, sizeof(path), "%s/uploads/%s", f->dir, stale);
    backdate(path, 500);
    /* a session whose file is gone */
    assert_int_equal(pc_registry_upload_start(f->reg, "team/b", fileless), 0);
    assert_int_equal(f->be->upload_remove(f->be, fileless, 0), 0);

    run_opts ro = {false, 3600, 300, NULL, 0, NULL, NULL};
    pc_fsck_report r;
    run_with(f, &ro, &r);
    assert_int_equal(total(&r), 3);
    assert_int_equal(r.uploads, 4);
    assert_int_equal(r.sessions, 3);
    assert_int_equal(r.young, 1); /* fetch-young */
    const pc_fsck_problem *p = find(&r, PC_FSCK_ORPHAN_UPLOAD);
    assert_string_equal(p->name, "fetch-old");
    assert_int_equal(p->size, 3);
    snprintf(path, sizeof(path), "%s/uploads/fetch-old", f->dir);
    assert_string_equal(p->path, path);
    p = find(&r, PC_FSCK_STALE_UPLOAD);
    assert_string_equal(p->name, stale);
    assert_string_equal(p->repo, "team/a");
    p = find(&r, PC_FSCK_UPLOAD_WITHOUT_FILE);
    assert_string_equal(p->name, fileless);
    assert_string_equal(p->repo, "team/b");
    pc_fsck_report_free(&r);

    ro.repair = true;
    run_with(f, &ro, &r);
    assert_int_equal(r.repaired, 3);
    pc_fsck_report_free(&r);
    uint64_t size;
    char repo[PC_NAME_MAX + 1];
    assert_int_equal(f->be->upload_stat(f->be, "fetch-old", &size), PC_ENOTFOUND);
    assert_int_equal(f->be->upload_stat(f->be, stale, &size), PC_ENOTFOUND);
    assert_int_equal(f->ms->reg->upload_get(f->ms, stale, repo), PC_ENOTFOUND);
    assert_int_equal(f->ms->reg->upload_get(f->ms, fileless, repo), PC_ENOTFOUND);
    /* what is in use stays */
    assert_int_equal(f->be->upload_stat(f->be, "fetch-young", &size), 0);
    assert_int_equal(pc_registry_upload_stat(f->reg, "team/a", live, &size), 0);
    ro.repair = false;
    run_with(f, &ro, &r);
    assert_int_equal(total(&r), 0);
    pc_fsck_report_free(&r);
}

static void stale_temp_files(void **state)
{
    fixture *f = *state;
    char old[256], young[256];
    snprintf(old, sizeof(old), "%s/tmp/put-crashed", f->dir);
    snprintf(young, sizeof(young), "%s/tmp/put-writing", f->dir);
    write_file(old, "half a blob");
    write_file(young, "a put in progress");
    backdate(old, 7200);
    pc_fsck_report r;
    run(f, false, &r);
    assert_int_equal(total(&r), 1);
    assert_int_equal(r.temp_files, 2);
    assert_int_equal(r.young, 1);
    const pc_fsck_problem *p = find(&r, PC_FSCK_STALE_TEMP);
    assert_string_equal(p->name, "put-crashed");
    assert_string_equal(p->path, old);
    pc_fsck_report_free(&r);
    run(f, true, &r);
    assert_int_equal(r.repaired, 1);
    pc_fsck_report_free(&r);
    assert_false(exists(old));
    assert_true(exists(young));
}

/* before_repair: what a daemon might do between the check and the repair. */
static void republish(void *ctx)
{
    fixture *f = ctx;
    const char *layer = "layer bytes of image 1";
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, layer, strlen(layer)), 0);
    assert_int_equal(pc_blob_put(f->be, &d, layer, strlen(layer)), 0); /* a push again */
    char path[256];
    snprintf(path, sizeof(path), "%s/uploads/fetch-old", f->dir);
    backdate(path, 0); /* a writer appends to it again */
    pc_digest old;
    assert_int_equal(pc_digest_buffer(&old, PC_DIGEST_SHA256, "old", 3), 0);
    assert_int_equal(f->ms->reg->blob_link(f->ms, "team/c", &old, 3), 0); /* a mount */
    pc_digest fixed;
    assert_int_equal(pc_digest_buffer(&fixed, PC_DIGEST_SHA256, "fixed", 5), 0);
    const char *hex = pc_digest_hex(&fixed);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", f->dir, hex, hex);
    write_file(path, "fixed"); /* republished whole */
}

static void repair_leaves_what_changed_meanwhile(void **state)
{
    fixture *f = *state;
    image a = push_image(f, "team/a", "v1", 1);
    char path[256];
    blob_path(f, &a.layer, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    pc_blob_wr *w = NULL;
    assert_int_equal(f->be->writer(f->be, "fetch-old", true, &w), 0);
    w->close(w);
    snprintf(path, sizeof(path), "%s/uploads/fetch-old", f->dir);
    backdate(path, 7200);
    pc_digest old;
    assert_int_equal(pc_digest_buffer(&old, PC_DIGEST_SHA256, "old", 3), 0);
    assert_int_equal(pc_blob_put(f->be, &old, "old", 3), 0);
    blob_path(f, &old, path, sizeof(path));
    backdate(path, 7200);
    pc_digest fixed;
    char fixedp[256];
    assert_int_equal(pc_digest_buffer(&fixed, PC_DIGEST_SHA256, "fixed", 5), 0);
    assert_int_equal(pc_blob_put(f->be, &fixed, "fixed", 5), 0);
    assert_int_equal(f->ms->reg->blob_link(f->ms, "team/c", &fixed, 5), 0);
    blob_path(f, &fixed, fixedp, sizeof(fixedp));
    write_file(fixedp, "fixeD");

    run_opts ro = {true, 3600, 0, NULL, 0, republish, f};
    pc_fsck_report r;
    run_with(f, &ro, &r);
    assert_int_equal(r.counts[PC_FSCK_INCOMPLETE_MANIFEST], 1);
    assert_int_equal(r.counts[PC_FSCK_ORPHAN_UPLOAD], 1);
    assert_int_equal(r.counts[PC_FSCK_ORPHAN_BLOB], 1);
    assert_int_equal(r.counts[PC_FSCK_CORRUPT_BLOB], 1);
    assert_int_equal(r.counts[PC_FSCK_DANGLING_LINK],
                     2); /* team/a's layer, team/c's corrupt blob */
    assert_int_equal(total(&r), 6);
    assert_int_equal(r.skipped, 6);
    assert_int_equal(r.repaired, 0);
    assert_int_equal(r.failed, 0);
    for (size_t i = 0; i < r.nproblems; i++) {
        assert_int_equal(r.problems[i].status, PC_FSCK_SKIPPED);
        assert_non_null(strstr(r.problems[i].detail, "left alone"));
    }
    pc_fsck_report_free(&r);
    pc_manifest_rec rec;
    uint64_t size;
    assert_int_equal(f->ms->reg->manifest_get(f->ms, "team/a", &a.manifest, &rec), 0);
    assert_int_equal(pc_registry_blob_stat(f->reg, "team/a", &a.layer, &size), 0);
    assert_int_equal(f->be->upload_stat(f->be, "fetch-old", &size), 0);
    assert_true(exists(path));
    assert_true(exists(fixedp));
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "team/c", &fixed, &size), 0);
    assert_clean(f);
}

static void open_creates_nothing(void **state)
{
    fixture *f = *state;
    pc_registry *reg = NULL;
    char path[128];
    snprintf(path, sizeof(path), "%s/none/data", f->dir);
    assert_int_equal(pc_fsck_open(path, &reg), PC_ENOTFOUND);
    assert_null(reg);
    snprintf(path, sizeof(path), "%s/none", f->dir);
    assert_false(exists(path));
    /* an empty directory is no data directory, and stays empty */
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(pc_fsck_open(path, &reg), PC_ENOTFOUND);
    assert_int_equal(rmdir(path), 0);
    /* a meta.db alone is not enough either: blobs/ ... must be there */
    assert_int_equal(mkdir(path, 0755), 0);
    char db[160];
    snprintf(db, sizeof(db), "%s/meta.db", path);
    write_file(db, "");
    assert_int_equal(pc_fsck_open(path, &reg), PC_ENOTFOUND);
    char blobs[160];
    snprintf(blobs, sizeof(blobs), "%s/blobs", path);
    assert_false(exists(blobs));
    /* a file is no directory */
    assert_int_equal(pc_fsck_open(db, &reg), PC_ENOTFOUND);
}

typedef struct {
    int calls;
    image img;
} guard_state;

static int refuse(pc_metastore *ms, void *ctx)
{
    ((guard_state *)ctx)->calls++;
    return PC_EEXISTS;
}

/* Allows the removal while the layer is linked somewhere: reads work
 * inside the transaction. */
static int allow_if_linked(pc_metastore *ms, void *ctx)
{
    guard_state *g = ctx;
    uint64_t size;
    g->calls++;
    return ms->reg->blob_stat_any(ms, &g->img.layer, &size) == 0 ? 0 : PC_EDIGEST;
}

static void guarded_remove_checks_first(void **state)
{
    fixture *f = *state;
    guard_state g;
    memset(&g, 0, sizeof(g));
    g.img = push_image(f, "team/a", "v1", 1);
    pc_meta_removal link = {PC_META_REMOVE_LINK, "team/a", &g.img.layer};
    pc_meta_removal man = {PC_META_REMOVE_MANIFEST, "team/a", &g.img.manifest};
    pc_meta_removal none = {PC_META_REMOVE_NOTHING, NULL, NULL};
    uint64_t size;
    pc_digest t;
    assert_int_equal(f->ms->reg->guarded_remove(f->ms, &link, refuse, &g), PC_EEXISTS);
    assert_int_equal(g.calls, 1);
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "team/a", &g.img.layer, &size), 0);
    assert_int_equal(f->ms->reg->guarded_remove(f->ms, &none, allow_if_linked, &g), 0);
    assert_int_equal(f->ms->reg->guarded_remove(f->ms, &link, allow_if_linked, &g), 0);
    assert_int_equal(g.calls, 3);
    assert_int_equal(f->ms->reg->blob_stat(f->ms, "team/a", &g.img.layer, &size), PC_ENOTFOUND);
    /* the check says no: the manifest and its tag stay */
    assert_int_equal(f->ms->reg->guarded_remove(f->ms, &man, allow_if_linked, &g), PC_EDIGEST);
    assert_int_equal(f->ms->reg->guarded_remove(f->ms, &man, refuse, &g), PC_EEXISTS);
    assert_int_equal(f->ms->reg->tag_get(f->ms, "team/a", "v1", &t), 0);
    assert_int_equal(f->ms->reg->blob_link(f->ms, "team/a", &g.img.layer, 22), 0);
    assert_int_equal(f->ms->reg->guarded_remove(f->ms, &man, allow_if_linked, &g), 0);
    assert_int_equal(f->ms->reg->tag_get(f->ms, "team/a", "v1", &t), PC_ENOTFOUND);
    assert_int_equal(f->ms->reg->guarded_remove(f->ms, &man, allow_if_linked, &g), PC_ENOTFOUND);
    /* the store takes writes after every rollback */
    assert_int_equal(f->ms->reg->blob_link(f->ms, "team/x", &g.img.layer, 22), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(clean_store_has_no_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_layer_found_with_what_it_breaks, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_manifest_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(mirrored_repos_may_lack_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(unlinked_blob_is_linked_again, setup, teardown),
        cmocka_unit_test_setup_teardown(size_mismatch_recorded_right, setup, teardown),
        cmocka_unit_test_setup_teardown(orphan_blobs_past_the_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(uploads_and_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_temp_files, setup, teardown),
        cmocka_unit_test_setup_teardown(repair_leaves_what_changed_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(open_creates_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(guarded_remove_checks_first, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
