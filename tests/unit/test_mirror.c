/*
 * test_mirror.c - the cache's routing rules: host-prefix paths, aliases,
 * containerd's ns=, local repositories first, the default upstream,
 * library/ for Docker Hub, read-only mirror names.
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

typedef struct {
    char dir[64];
    pc_config *cfg;
    pc_registry *reg;
    pc_mirror *m;
} fixture;

static int setup_with(void **state, const char *def)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pc-mirror-XXXXXX");
    if (!mkdtemp(f->dir) || pc_registry_open(&f->reg, f->dir) || pc_config_load(&f->cfg, NULL))
        return -1;
    if (pc_config_add_upstream(f->cfg, "docker.io=https://registry-1.docker.io") ||
        pc_config_add_upstream(f->cfg, "ghcr.io=https://ghcr.io") ||
        pc_config_add_upstream(f->cfg, "up=http://127.0.0.1:5999") ||
        pc_config_set_str(&f->cfg->cache->default_upstream, def) || pc_config_finalize(f->cfg) ||
        pc_config_validate(f->cfg) || pc_mirror_new(&f->m, f->cfg, f->reg))
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "docker.io");
}

static int setup_none(void **state)
{
    return setup_with(state, "none");
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
    /* an unknown ns falls through to the default upstream, never elsewhere */
    assert_int_equal(pc_mirror_route(f->m, "team/x", "evil.example", &t), 0);
    assert_string_equal(t.name, "docker.io");
}

static void local_first_then_default(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    pc_metastore *ms = pc_registry_meta(f->reg);
    pc_digest d;
    assert_int_equal(pc_mirror_route(f->m, "team/app", NULL, &t), 0);
    assert_string_equal(t.local, "docker.io/team/app");
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, "x", 1), 0);
    assert_int_equal(ms->blob_link(ms, "team/app", &d, 1), 0);
    assert_int_equal(pc_mirror_route(f->m, "team/app", NULL, &t), PC_ENOTFOUND);
}

static void no_default(void **state)
{
    fixture *f = *state;
    pc_mirror_target t;
    assert_int_equal(pc_mirror_route(f->m, "team/app", NULL, &t), PC_ENOTFOUND);
    assert_int_equal(pc_mirror_route(f->m, "nginx", NULL, &t), PC_ENOTFOUND);
    assert_int_equal(pc_mirror_route(f->m, "docker.io/nginx", NULL, &t), 0);
}

static void readonly_names(void **state)
{
    fixture *f = *state;
    assert_true(pc_mirror_readonly(f->m, "docker.io/library/nginx"));
    assert_true(pc_mirror_readonly(f->m, "index.docker.io/x"));
    assert_true(pc_mirror_readonly(f->m, "ghcr.io/a"));
    assert_false(pc_mirror_readonly(f->m, "team/app"));
    assert_false(pc_mirror_readonly(f->m, "docker.io"));
    assert_false(pc_mirror_readonly(f->m, "docker.iox/a"));
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
        cmocka_unit_test_setup_teardown(local_first_then_default, setup, teardown),
        cmocka_unit_test_setup_teardown(no_default, setup_none, teardown),
        cmocka_unit_test_setup_teardown(readonly_names, setup, teardown),
        cmocka_unit_test_setup_teardown(too_long_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
