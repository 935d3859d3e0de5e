/*
 * test_nodeconf.c - unit tests for nodeconf.c over parsed TOML and JSON:
 * containerd's config_path in the 1.x and 2.x plugin tables (and its
 * absence, legacy mirrors); hosts.toml URLs as containerd builds them
 * (https:// added, /v2 appended or kept, override_path, path cleaning), the
 * all-capabilities default, unknown capabilities and wrong types refused;
 * registries.conf prefixes (from the location when absent), longest-prefix
 * and wildcard matching on '/' boundaries, a later file's table replacing an
 * earlier one, mirrors and their flags, v1 files noticed, bad tables
 * refused; daemon.json lists and wrong types.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "nodeconf.h"
#include "toml.h"

static json_t *toml(const char *text)
{
    json_t *doc = NULL;
    char err[300];
    if (pc_toml_parse(text, strlen(text), &doc, err, sizeof(err)))
        fail_msg("TOML refused: %s", err);
    return doc;
}

static void test_containerd(void **state)
{
    (void)state;
    pc_nodeconf_containerd c;
    char err[300];
    json_t *d = toml("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
                     "config_path = \"/etc/containerd/certs.d\"\n");
    assert_int_equal(pc_nodeconf_containerd_read(d, &c, err, sizeof(err)), 0);
    assert_int_equal(c.version, 2);
    assert_string_equal(c.config_path, "/etc/containerd/certs.d");
    assert_string_equal(c.plugin, "io.containerd.grpc.v1.cri");
    assert_false(c.legacy_mirrors);
    pc_nodeconf_containerd_clear(&c);
    json_decref(d);

    d = toml("version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n"
             "config_path = \"/a:/b\"\n");
    assert_int_equal(pc_nodeconf_containerd_read(d, &c, err, sizeof(err)), 0);
    assert_string_equal(c.config_path, "/a:/b");
    assert_string_equal(c.plugin, "io.containerd.cri.v1.images");
    pc_nodeconf_containerd_clear(&c);
    json_decref(d);

    /* no config_path: NULL, mirrors noticed; an empty one is none */
    d = toml("[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n"
             "endpoint = [\"https://m\"]\n");
    assert_int_equal(pc_nodeconf_containerd_read(d, &c, err, sizeof(err)), 0);
    assert_null(c.config_path);
    assert_true(c.legacy_mirrors);
    pc_nodeconf_containerd_clear(&c);
    json_decref(d);
    d = toml("[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"\"\n");
    assert_int_equal(pc_nodeconf_containerd_read(d, &c, err, sizeof(err)), 0);
    assert_null(c.config_path);
    pc_nodeconf_containerd_clear(&c);
    json_decref(d);
    d = toml("");
    assert_int_equal(pc_nodeconf_containerd_read(d, &c, err, sizeof(err)), 0);
    assert_null(c.config_path);
    assert_null(c.plugin);
    json_decref(d);

    /* wrong types */
    static const char *const bad[][2] = {
        {"version = \"2\"", "version is not an integer"},
        {"plugins = 1", "plugins is not a table"},
        {"[plugins]\n\"io.containerd.grpc.v1.cri\" = []", "is not a table"},
        {"[plugins.\"io.containerd.grpc.v1.cri\"]\nregistry = 'x'", "registry is not a table"},
        {"[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = 1",
         "registry.config_path is not a string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = toml(bad[i][0]);
        assert_int_equal(pc_nodeconf_containerd_read(d, &c, err, sizeof(err)), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        pc_nodeconf_containerd_clear(&c);
        json_decref(d);
    }
}

static void test_hosts(void **state)
{
    (void)state;
    pc_nodeconf_hosts h;
    char err[300];
    json_t *d = toml("server = \"https://registry-1.docker.io\"\n"
                     "[host.\"http://10.0.0.5:5000\"]\ncapabilities = [\"pull\", \"Resolve\"]\n"
                     "[host.\"cache.example.com\"]\nskip_verify = true\n"
                     "[host.\"https://m/prefix/\"]\ncapabilities = []\n"
                     "[host.\"https://m/v2\"]\ncapabilities = [\"pull\"]\n"
                     "[host.\"https://m/x/v2\"]\noverride_path = true\n"
                     "[host.\"https://m/a/../b/./c\"]\n"
                     "[host.\"http://m:1\"]\noverride_path = true\n");
    assert_int_equal(pc_nodeconf_hosts_read(d, &h, err, sizeof(err)), 0);
    assert_string_equal(h.server, "https://registry-1.docker.io");
    assert_int_equal(h.nhost, 7);
    /* in file order */
    assert_string_equal(h.host[0].key, "http://10.0.0.5:5000");
    assert_string_equal(h.host[0].api_root, "http://10.0.0.5:5000/v2");
    assert_true(h.host[0].plain);
    assert_true(h.host[0].caps_given && h.host[0].pull && h.host[0].resolve && !h.host[0].push);
    /* no scheme: https; no capabilities: all three */
    assert_string_equal(h.host[1].url, "https://cache.example.com");
    assert_string_equal(h.host[1].api_root, "https://cache.example.com/v2");
    assert_false(h.host[1].plain);
    assert_true(h.host[1].skip_verify);
    assert_false(h.host[1].caps_given);
    assert_true(h.host[1].pull && h.host[1].resolve && h.host[1].push);
    /* an empty list is no list (containerd: len > 0) */
    assert_false(h.host[2].caps_given);
    assert_true(h.host[2].push);
    assert_string_equal(h.host[2].api_root, "https://m/prefix/v2");
    assert_string_equal(h.host[3].api_root, "https://m/v2");
    assert_true(h.host[3].pull && !h.host[3].resolve);
    assert_string_equal(h.host[4].api_root, "https://m/x/v2");
    assert_string_equal(h.host[5].api_root, "https://m/b/c/v2");
    assert_string_equal(h.host[6].api_root, "http://m:1");
    pc_nodeconf_hosts_clear(&h);
    json_decref(d);

    d = toml("server = \"https://ghcr.io\"\n");
    assert_int_equal(pc_nodeconf_hosts_read(d, &h, err, sizeof(err)), 0);
    assert_int_equal(h.nhost, 0);
    pc_nodeconf_hosts_clear(&h);
    json_decref(d);

    static const char *const bad[][2] = {
        {"server = 1", "server is not a string"},
        {"host = 1", "host is not a table"},
        {"host.x = 1", "host.\"x\" is not a table"},
        {"[host.\"h\"]\ncapabilities = \"pull\"", "capabilities is not a list"},
        {"[host.\"h\"]\ncapabilities = [1]", "not a string"},
        {"[host.\"h\"]\ncapabilities = [\"pull\", \"fetch\"]", "unknown capability \"fetch\""},
        {"[host.\"h\"]\nskip_verify = \"yes\"", "skip_verify is not true or false"},
        {"[host.\"h\"]\noverride_path = 1", "override_path is not true or false"},
        {"[host.\"httpx://h\"]", "is not an http:// or https:// URL"},
        {"[host.\"http://\"]", "has no host name"},
        {"[host.\"http://h?x\"]", "a query or fragment"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = toml(bad[i][0]);
        assert_int_equal(pc_nodeconf_hosts_read(d, &h, err, sizeof(err)), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        pc_nodeconf_hosts_clear(&h);
        json_decref(d);
    }
}

static void test_registries(void **state)
{
    (void)state;
    pc_nodeconf_registries r = {0};
    char err[300];
    json_t *a = toml("[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n"
                     "[[registry.mirror]]\nlocation = \"old:5000/docker.io\"\n"
                     "[[registry]]\nlocation = \"quay.io\"\nblocked = true\n"
                     "[[registry]]\nprefix = \"*.example.com\"\nlocation = \"m.example.com\"\n"
                     "[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"lib\"\n"
                     "mirror-by-digest-only = true\n");
    json_t *b = toml("[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n"
                     "[[registry.mirror]]\nlocation = \"10.0.0.5:5000/docker.io\"\n"
                     "insecure = true\npull-from-mirror = \"digest-only\"\n"
                     "[[registry.mirror]]\nlocation = \"m2/docker.io\"\n");
    assert_int_equal(pc_nodeconf_registries_add(&r, a, "a.conf", err, sizeof(err)), 0);
    assert_int_equal(pc_nodeconf_registries_add(&r, b, "b.conf", err, sizeof(err)), 0);
    assert_int_equal(r.nreg, 4);
    assert_false(r.v1);

    const pc_nodeconf_registry *g = pc_nodeconf_registries_find(&r, "docker.io/x/y");
    assert_non_null(g);
    assert_string_equal(g->file, "b.conf"); /* the later table replaced a.conf's */
    assert_int_equal(g->nmirror, 2);
    assert_string_equal(g->mirror[0].location, "10.0.0.5:5000/docker.io");
    assert_true(g->mirror[0].insecure);
    assert_string_equal(g->mirror[0].pull_from_mirror, "digest-only");
    assert_false(g->mirror[1].insecure);
    assert_null(g->mirror[1].pull_from_mirror);
    /* the longest prefix wins */
    g = pc_nodeconf_registries_find(&r, "docker.io/library/nginx");
    assert_string_equal(g->prefix, "docker.io/library");
    assert_true(g->digest_only);
    /* a '/' boundary: docker.io/libraryx is not under docker.io/library */
    g = pc_nodeconf_registries_find(&r, "docker.io/libraryx/a");
    assert_string_equal(g->prefix, "docker.io");
    assert_null(pc_nodeconf_registries_find(&r, "docker.iox/a"));
    /* prefix from the location */
    g = pc_nodeconf_registries_find(&r, "quay.io/org/app");
    assert_non_null(g);
    assert_false(g->prefix_given);
    assert_true(g->blocked);
    /* wildcards: subdomains only */
    g = pc_nodeconf_registries_find(&r, "a.b.example.com/x");
    assert_non_null(g);
    assert_string_equal(g->prefix, "*.example.com");
    assert_null(pc_nodeconf_registries_find(&r, "example.com/x"));
    assert_null(pc_nodeconf_registries_find(&r, "ghcr.io/x"));
    json_decref(a);
    json_decref(b);

    json_t *v1 = toml("[registries.search]\nregistries = ['docker.io']\n");
    assert_int_equal(pc_nodeconf_registries_add(&r, v1, "v1.conf", err, sizeof(err)), 0);
    assert_true(r.v1);
    json_decref(v1);
    pc_nodeconf_registries_clear(&r);

    static const char *const bad[][2] = {
        {"registry = 1", "registry is not a list of tables"},
        {"registry = [1]", "registry is not a list of tables"},
        {"[[registry]]\ninsecure = true", "neither prefix nor location is set"},
        {"[[registry]]\nprefix = 1", "prefix is not a string"},
        {"[[registry]]\nlocation = \"x\"\nblocked = 1", "blocked is not true or false"},
        {"[[registry]]\nlocation = \"x\"\nmirror = 1", "mirror is not a list of tables"},
        {"[[registry]]\nlocation = \"x\"\n[[registry.mirror]]\ninsecure = true",
         "[[registry.mirror]] 1: location is not set"},
        {"[[registry]]\nlocation = \"x\"\n[[registry.mirror]]\nlocation = \"m\"\n"
         "pull-from-mirror = \"some\"",
         "pull-from-mirror \"some\" is not all, digest-only or tag-only"},
        {"[[registry]]\nlocation = \"x\"\n[[registry]]\nlocation = 2", "[[registry]] 2: location"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *d = toml(bad[i][0]);
        pc_nodeconf_registries r2 = {0};
        assert_int_equal(pc_nodeconf_registries_add(&r2, d, "f", err, sizeof(err)), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        pc_nodeconf_registries_clear(&r2);
        json_decref(d);
    }
}

static void test_docker(void **state)
{
    (void)state;
    pc_nodeconf_docker k;
    char err[300];
    json_t *d = json_loads("{\"debug\": true, \"registry-mirrors\": [\"http://10.0.0.5:5000\", "
                           "\"https://m\"], \"insecure-registries\": [\"10.0.0.5:5000\"]}",
                           0, NULL);
    assert_int_equal(pc_nodeconf_docker_read(d, &k, err, sizeof(err)), 0);
    assert_int_equal(k.nmirrors, 2);
    assert_string_equal(k.mirrors[1], "https://m");
    assert_int_equal(k.ninsecure, 1);
    assert_string_equal(k.insecure[0], "10.0.0.5:5000");
    pc_nodeconf_docker_clear(&k);
    json_decref(d);
    d = json_loads("{}", 0, NULL);
    assert_int_equal(pc_nodeconf_docker_read(d, &k, err, sizeof(err)), 0);
    assert_int_equal(k.nmirrors, 0);
    pc_nodeconf_docker_clear(&k);
    json_decref(d);

    static const char *const bad[][2] = {
        {"[]", "not a JSON object"},
        {"{\"registry-mirrors\": \"http://m\"}", "\"registry-mirrors\" is not a list"},
        {"{\"registry-mirrors\": [1]}", "\"registry-mirrors\" holds a value that is not a string"},
        {"{\"insecure-registries\": {}}", "\"insecure-registries\" is not a list"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = json_loads(bad[i][0], 0, NULL);
        assert_non_null(d);
        assert_int_equal(pc_nodeconf_docker_read(d, &k, err, sizeof(err)), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        pc_nodeconf_docker_clear(&k);
        json_decref(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_containerd),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_registries),
        cmocka_unit_test(test_docker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
