/*
 * test_mirror.c - the cache's routing rules: host-prefix paths, aliases,
 * containerd's ns=, registries that are not configured refused, the bare
 * namespace private by default, an explicit default upstream with local
 * prefixes, library/ for Docker Hub, read-only mirror names; and that what
 * was pushed never changes where a name goes.
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

#include "mirror.h"
#include "registry_int.h" /* the meta store itself, to store content */

typedef struct {
    char dir[64];
    pc_config *cfg;
    pc_registry *reg;
    pc_mirror *m;
} fixture;

static int setup_with(void **state, const char *def, const char *prefix)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pc-mirror-XXXXXX");
    if (!mkdtemp(f->dir) || pc_registry_open(&f->reg, f->dir) || pc_config_load(&f->cfg, NULL))
        return -1;
    if (pc_config_add_upstream(f->cfg, "docker.io=https://registry-1.docker.io") ||
        pc_config_add_upstream(f->cfg, "ghcr.io=https://ghcr.io") ||
        pc_config_add_upstream(f->cfg, "up=http://127.0.0.1:5999") ||
        (def && pc_config_set_str(&f->cfg->cache->default_upstream, def)) ||
        (prefix && pc_config_add_local_prefix(f->cfg, prefix)) || pc_config_finalize(f->cfg) ||
        pc_config_validate(f->cfg) || pc_mirror_new(&f->m, f->cfg, f->reg))
        return -1;
    *state = f;
    return 0;
}

/* the defaults a user gets: no default upstream */
static int setup(void **state)
{
    return setup_with(state, NULL, NULL);
}

/* Docker's registry-mirrors: bare names from docker.io, team/ kept private */
static int setup_docker(void **state)
{
    return setup_with(state, "docker.io", "team");
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    pc_mirror_free(f->m);
    pc_registry_free(f->reg);
    pc_config_free(f->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void host_prefix(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    assert_int_equal(pc_mirror_route(f->m, "docker.io/library/nginx", NULL, &t), 0);
    assert_string_equal(t.name, "docker.io");
    assert_string_equal(t.repo, "library/nginx");
    assert_string_equal(t.local, "docker.io/library/nginx");
    assert_int_equal(t.tag_ttl, 300);
    /* single-component Docker Hub names get library/ */
    assert_int_equal(pc_mirror_route(f->m, "docker.io/nginx", NULL, &t), 0);
    assert_string_equal(t.repo, "library/nginx");
    /* aliases of docker.io */
    assert_int_equal(pc_mirror_route(f->m, "index.docker.io/nginx", NULL, &t), 0);
    assert_string_equal(t.local, "docker.io/library/nginx");
    assert_int_equal(pc_mirror_route(f->m, "registry-1.docker.io/a/b", NULL, &t), 0);
    assert_string_equal(t.local, "docker.io/a/b");
    /* other upstreams keep single components as they are */
    assert_int_equal(pc_mirror_route(f->m, "ghcr.io/org/app", NULL, &t), 0);
    assert_string_equal(t.name, "ghcr.io");
    assert_string_equal(t.repo, "org/app");
    assert_int_equal(pc_mirror_route(f->m, "up/x", NULL, &t), 0);
    assert_string_equal(t.repo, "x");
}

static void ns_param(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    assert_int_equal(pc_mirror_route(f->m, "library/nginx", "docker.io", &t), 0);
    assert_string_equal(t.local, "docker.io/library/nginx");
    assert_int_equal(pc_mirror_route(f->m, "org/app", "ghcr.io", &t), 0);
    assert_string_equal(t.local, "ghcr.io/org/app");
    /* the upstream URL's host:port is accepted as ns too */
    assert_int_equal(pc_mirror_route(f->m, "team/x", "127.0.0.1:5999", &t), 0);
    assert_string_equal(t.name, "up");
    /* a mirror host configured with the upstream in its path */
    assert_int_equal(pc_mirror_route(f->m, "docker.io/library/nginx", "docker.io", &t), 0);
    assert_string_equal(t.local, "docker.io/library/nginx");
    /* ns= decides: another upstream's prefix is part of the name there */
    assert_int_equal(pc_mirror_route(f->m, "ghcr.io/x", "docker.io", &t), 0);
    assert_string_equal(t.local, "docker.io/ghcr.io/x");
}

/* A reference for a registry that is not configured is refused, never
 * answered locally or by another upstream. */
static void foreign_refused(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    static const char *ns_names[][2] = {
        {"team/app", "quay.io"}, {"big/img2", "quay.io"},     {"library/nginx", "evil.example"},
        {"x", "localhost:5000"}, {"org/app", "ghcr.io.evil"}, {"org/app", "GHCR.IO"},
    };
    for (size_t i = 0; i < sizeof(ns_names) / sizeof(ns_names[0]); i++) {
        assert_int_equal(pc_mirror_route(f->m, ns_names[i][0], ns_names[i][1], &t), PC_EUPSTREAM);
        assert_int_equal(t.where, PC_MIRROR_FOREIGN);
        assert_string_equal(t.foreign, ns_names[i][1]);
    }
    static const char *paths[][2] = {
        {"quay.io/org/app", "quay.io"},
        {"localhost/app", "localhost"},
        {"my.registry/a/b", "my.registry"},
        {"docker.iox/a", "docker.iox"},
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(pc_mirror_route(f->m, paths[i][0], NULL, &t), PC_EUPSTREAM);
        assert_string_equal(t.foreign, paths[i][1]);
        assert_true(pc_mirror_readonly(f->m, paths[i][0]));
    }
}

/* Bare names are the private registry by default, whatever is stored. */
static void bare_is_local(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    pc_metastore *ms = f->reg->ms;
    pc_digest d;
    const char *names[] = {"team/app", "nginx", "library/nginx", "a/b/c", "docker.io"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(pc_mirror_route(f->m, names[i], NULL, &t), PC_ENOTFOUND);
        assert_int_equal(t.where, PC_MIRROR_LOCAL);
        assert_false(pc_mirror_readonly(f->m, names[i]));
    }
    /* content stored under a mirrored name does not move a bare name */
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, "x", 1), 0);
    assert_int_equal(ms->reg->blob_link(ms, "docker.io/library/nginx", &d, 1), 0);
    assert_int_equal(pc_mirror_route(f->m, "library/nginx", NULL, &t), PC_ENOTFOUND);
    assert_int_equal(pc_mirror_route(f->m, "docker.io/nginx", NULL, &t), 0);
}

/* With a default upstream, bare names are its mirror (read-only) except
 * under local_prefixes; what was pushed does not change that. */
static void default_upstream(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    pc_metastore *ms = f->reg->ms;
    pc_digest d;
    assert_int_equal(pc_mirror_route(f->m, "library/nginx", NULL, &t), 0);
    assert_true(t.by_default);
    assert_string_equal(t.local, "docker.io/library/nginx");
    assert_int_equal(pc_mirror_route(f->m, "nginx", NULL, &t), 0);
    assert_string_equal(t.local, "docker.io/library/nginx");
    assert_true(pc_mirror_readonly(f->m, "library/demo"));
    /* a stored repository outside the prefixes does not shadow the mirror */
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, "x", 1), 0);
    assert_int_equal(ms->reg->blob_link(ms, "library/demo", &d, 1), 0);
    assert_int_equal(pc_mirror_route(f->m, "library/demo", NULL, &t), 0);
    assert_string_equal(t.local, "docker.io/library/demo");
    /* local prefixes on component boundaries */
    assert_int_equal(pc_mirror_route(f->m, "team/app", NULL, &t), PC_ENOTFOUND);
    assert_int_equal(pc_mirror_route(f->m, "team", NULL, &t), PC_ENOTFOUND);
    assert_false(pc_mirror_readonly(f->m, "team/app"));
    assert_int_equal(pc_mirror_route(f->m, "teamx/app", NULL, &t), 0);
    assert_string_equal(t.local, "docker.io/teamx/app");
    /* prefixes and ns= still win over the default */
    assert_int_equal(pc_mirror_route(f->m, "ghcr.io/org/app", NULL, &t), 0);
    assert_string_equal(t.name, "ghcr.io");
    assert_int_equal(pc_mirror_route(f->m, "team/app", "ghcr.io", &t), 0);
    assert_string_equal(t.local, "ghcr.io/team/app");
    assert_int_equal(pc_mirror_route(f->m, "team/app", "quay.io", &t), PC_EUPSTREAM);
}

static void readonly_names(void **state)
{
    fixture *f = *state;
    assert_true(pc_mirror_readonly(f->m, "docker.io/library/nginx"));
    assert_true(pc_mirror_readonly(f->m, "index.docker.io/x"));
    assert_true(pc_mirror_readonly(f->m, "ghcr.io/a"));
    assert_true(pc_mirror_readonly(f->m, "up/a"));
    assert_false(pc_mirror_readonly(f->m, "team/app"));
    assert_false(pc_mirror_readonly(f->m, "docker.io"));
    assert_false(pc_mirror_readonly(f->m, "upx/a"));
}

static void bad_local_prefixes(void **state)
{
    (void)state;
    const char *bad[] = {"docker.io", "ghcr.io/x", "up/x", "Team", "my.team", "localhost", "a//b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pc_config *cfg;
        assert_int_equal(pc_config_load(&cfg, NULL), 0);
        assert_int_equal(pc_config_add_upstream(cfg, "up=http://127.0.0.1:5999"), 0);
        assert_int_equal(pc_config_add_local_prefix(cfg, bad[i]), 0);
        assert_int_equal(pc_config_finalize(cfg), 0);
        assert_int_equal(pc_config_validate(cfg), PC_EINVAL);
        pc_config_free(cfg);
    }
}

/* n/last paging of a mirrored tag list */
static void tags_pages(void **state)
{
    (void)state;
    json_t *tags = json_pack("[s,s,s,s]", "a", "b", "c", "d");
    char *json = NULL, last[16];
    bool more = false;
    struct {
        const char *last;
        long n;
        const char *want;
        bool more;
        const char *want_last;
    } cases[] = {
        {NULL, -1, "{\"name\":\"r\",\"tags\":[\"a\",\"b\",\"c\",\"d\"]}", false, "d"},
        {NULL, 2, "{\"name\":\"r\",\"tags\":[\"a\",\"b\"]}", true, "b"},
        {"b", 2, "{\"name\":\"r\",\"tags\":[\"c\",\"d\"]}", false, "d"},
        {"bb", -1, "{\"name\":\"r\",\"tags\":[\"c\",\"d\"]}", false, "d"},
        {"d", 5, "{\"name\":\"r\",\"tags\":[]}", false, ""},
        {NULL, 0, "{\"name\":\"r\",\"tags\":[]}", false, ""},
        {"", 4, "{\"name\":\"r\",\"tags\":[\"a\",\"b\",\"c\",\"d\"]}", false, "d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(pc_mirror_tags_page(tags, "r", cases[i].last, cases[i].n, &json, &more,
                                             last, sizeof(last)),
                         0);
        assert_string_equal(json, cases[i].want);
        assert_int_equal(more, cases[i].more);
        assert_string_equal(last, cases[i].want_last);
        free(json);
    }
    json_decref(tags);
}

static void too_long_names(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    char name[300] = "docker.io/";
    memset(name + strlen(name), 'a', 250);
    /* fits as requested, but "docker.io/library/..." would pass 255 */
    assert_int_equal(pc_mirror_route(f->m, name, NULL, &t), PC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(host_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(ns_param, setup, teardown),
        cmocka_unit_test_setup_teardown(ns_param, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(foreign_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_refused, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(bare_is_local, setup, teardown),
        cmocka_unit_test_setup_teardown(default_upstream, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(readonly_names, setup, teardown),
        cmocka_unit_test(bad_local_prefixes),
        cmocka_unit_test(tags_pages),
        cmocka_unit_test_setup_teardown(too_long_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
