/*
 * test_config.c - configuration: embedded defaults, YAML overlay, unknown
 * keys refused, validation of values, listen address parsing, the pull
 * limits section and its flags, the storage drivers.
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

#include "config.h"
#include "yamlerr.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/pc-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void defaults(void **state)
{
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, NULL), 0);
    assert_string_equal(c->http->listen, "127.0.0.1:5000");
    assert_string_equal(c->storage->data, "./data");
    assert_string_equal(c->log->format, "text");
    assert_int_equal(c->http->timeout, 60);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(c->upstreams_count, 1);
    assert_string_equal(c->upstreams[0].name, "docker.io");
    assert_string_equal(c->upstreams[0].url, "https://registry-1.docker.io");
    assert_int_equal(c->upstreams[0].tag_ttl, 300);
    /* bare names are the private registry unless the operator says otherwise */
    assert_string_equal(c->cache->default_upstream, "none");
    assert_int_equal(c->cache->local_prefixes_count, 0);
    assert_int_equal(pc_config_validate(c), 0);
    pc_config_free(c);
}

static void file_overrides_defaults(void **state)
{
    char *p = write_tmp("http:\n  listen: 0.0.0.0:6000\n  timeout: 5\nlog:\n  format: json\n");
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_string_equal(c->http->listen, "0.0.0.0:6000");
    assert_int_equal(c->http->timeout, 5);
    assert_string_equal(c->log->format, "json");
    assert_string_equal(c->storage->data, "./data"); /* untouched section keeps defaults */
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    assert_int_equal(pc_config_set_str(&c->storage->data, "/srv/x"), 0);
    assert_string_equal(c->storage->data, "/srv/x");
    pc_config_free(c);
    unlink(p);
}

static void unknown_key_refused(void **state)
{
    char *p = write_tmp("http:\n  listen: 127.0.0.1:1\n  lisen: typo\n");
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    assert_null(c);
    assert_non_null(strstr(pc_error_last(), p));
    /* the line of the key, where it is, the nearest valid key */
    assert_non_null(strstr(pc_error_last(), "line 3: unknown key 'lisen' in http"));
    assert_non_null(strstr(pc_error_last(), "did you mean 'listen'?"));
    unlink(p);
    /* deeper: a sequence entry's mapping */
    p = write_tmp("log:\n  format: text\nupstreams:\n  - name: hub\n    url: http://x\n"
                  "    tagttl: 3\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "line 6: unknown key 'tagttl' in upstreams"));
    assert_non_null(strstr(pc_error_last(), "did you mean 'tag_ttl'?"));
    unlink(p);
    /* nothing near: no guess, the valid keys */
    p = write_tmp("zzzzzzzz: 1\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "line 1: unknown key 'zzzzzzzz' in the top level"));
    assert_null(strstr(pc_error_last(), "did you mean"));
    assert_non_null(strstr(pc_error_last(), "keys there: "));
    unlink(p);
    assert_int_equal(pc_yamlerr_distance("lisen", "listen"), 1);
    assert_int_equal(pc_yamlerr_distance("", "abc"), 3);
    assert_int_equal(pc_yamlerr_distance("kitten", "sitting"), 3);
}

static void malformed_yaml_refused(void **state)
{
    char *p = write_tmp("http: [unclosed\n");
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    unlink(p);
    p = write_tmp("http:\n  timeout: -3\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    unlink(p);
}

static void missing_file(void **state)
{
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, "/nonexistent/pullcache.yaml"), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "/nonexistent/pullcache.yaml"));
}

static void bad_values(void **state)
{
    char *p = write_tmp("log:\n  format: xml\n");
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "xml"));
    pc_config_free(c);
    unlink(p);
    p = write_tmp("http:\n  listen: nocolon\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    pc_config_free(c);
    unlink(p);
}

/* The HTTP edge (edge.c): header deadline, per-address cap, body cap,
 * external URL (the token realm). */
static void http_edge_keys(void **state)
{
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, NULL), 0);
    assert_int_equal(c->http->header_timeout, 10);
    assert_int_equal(c->http->max_connections_per_ip, 256);
    assert_true(c->http->max_body_size == (uint64_t)10 << 30);
    assert_null(c->http->external_url);
    pc_config_free(c);
    char *p = write_tmp("http:\n  header_timeout: 3\n  max_connections_per_ip: 8\n"
                        "  max_body_size: 1000\n  external_url: https://r.example:8443/reg\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    assert_int_equal(c->http->header_timeout, 3);
    assert_int_equal(c->http->max_connections_per_ip, 8);
    assert_true(c->http->max_body_size == 1000);
    assert_string_equal(c->http->external_url, "https://r.example:8443/reg");
    pc_config_free(c);
    unlink(p);
    static const char *bad[] = {
        "http:\n  external_url: r.example\n",
        "http:\n  external_url: https://\n",
        "http:\n  external_url: \"https://a/x?y\"\n",
        "http:\n  external_url: \"https://a b\"\n",
        "http:\n  header_timeout: 3601\n",
        "http:\n  max_connections: 70000\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = write_tmp(bad[i]);
        assert_int_equal(pc_config_load(&c, p), 0);
        assert_int_equal(pc_config_finalize(c), 0);
        assert_int_equal(pc_config_validate(c), PC_EINVAL);
        pc_config_free(c);
        unlink(p);
    }
}

static void upstreams_from_file_and_flags(void **state)
{
    char *p = write_tmp("upstreams:\n  - name: ghcr.io\n    url: https://ghcr.io\n"
                        "    tag_ttl: 60\n    reserve: 20\n    username: bob\n"
                        "    password_env: GHCR_PW\n"
                        "cache:\n  max_size: 1000000\n");
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_add_upstream(c, "local=http://127.0.0.1:5001"), 0);
    assert_int_equal(pc_config_add_upstream(c, "ghcr.io=https://mirror.example"), 0);
    assert_int_equal(pc_config_add_upstream(c, "nourl="), PC_EINVAL);
    assert_int_equal(pc_config_add_upstream(c, "=http://x"), PC_EINVAL);
    assert_int_equal(pc_config_finalize(c), 0);
    /* configured upstreams replace the docker.io default; no default route */
    assert_int_equal(c->upstreams_count, 2);
    assert_string_equal(c->upstreams[0].url, "https://mirror.example");
    assert_int_equal(c->upstreams[0].tag_ttl, 60);
    assert_int_equal(c->upstreams[1].tag_ttl, 300);
    assert_int_equal(c->upstreams[0].reserve, 20);
    assert_int_equal(c->upstreams[1].reserve, 0); /* default: never hold back */
    assert_string_equal(c->cache->default_upstream, "none");
    assert_int_equal(c->cache->max_size, 1000000);
    assert_int_equal(pc_config_validate(c), 0);
    assert_int_equal(pc_config_set_str(&c->cache->default_upstream, "nope"), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    pc_config_free(c);
    unlink(p);

    p = write_tmp("upstreams:\n  - name: Bad_Name\n    url: https://x\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    pc_config_free(c);
    unlink(p);
    p = write_tmp("upstreams:\n  - name: x\n    url: ftp://x\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    pc_config_free(c);
    unlink(p);
    p = write_tmp("upstreams:\n  - name: x\n    url: https://x\n    password_env: P\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL); /* password without username */
    pc_config_free(c);
    unlink(p);
    /* credentials in the URL: refused, and the message does not repeat them */
    p = write_tmp("upstreams:\n  - name: x\n    url: https://bob:s3cret@x.example/v2\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    assert_null(strstr(pc_error_last(), "s3cret"));
    assert_non_null(strstr(pc_error_last(), "user information"));
    pc_config_free(c);
    unlink(p);
    /* an '@' after the host is no user information */
    p = write_tmp("upstreams:\n  - name: x\n    url: https://x.example/a@b\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    pc_config_free(c);
    unlink(p);
}

static void limits_section(void **state)
{
    /* off by default, with Docker Hub's budgets ready */
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, NULL), 0);
    assert_false(c->limits->enabled);
    assert_int_equal(c->limits->anonymous.pulls, 100);
    assert_int_equal(c->limits->anonymous.window, 21600);
    assert_int_equal(c->limits->authenticated.pulls, 200);
    assert_int_equal(c->limits->authenticated.window, 21600);
    pc_config_free(c);

    /* a partial section: what is missing keeps its default */
    char *p = write_tmp("limits:\n  enabled: true\n  anonymous: {pulls: 5, window: 3600}\n"
                        "  authenticated:\n    pulls: 50\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    unlink(p);
    assert_true(c->limits->enabled);
    assert_int_equal(c->limits->anonymous.pulls, 5);
    assert_int_equal(c->limits->anonymous.window, 3600);
    assert_int_equal(c->limits->authenticated.pulls, 50);
    assert_int_equal(c->limits->authenticated.window, 21600);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    /* flags: PULLS/WINDOW, or PULLS alone */
    assert_int_equal(pc_config_parse_limit("10/60", &c->limits->anonymous), 0);
    assert_int_equal(c->limits->anonymous.pulls, 10);
    assert_int_equal(c->limits->anonymous.window, 60);
    assert_int_equal(pc_config_parse_limit("7", &c->limits->anonymous), 0);
    assert_int_equal(c->limits->anonymous.pulls, 7);
    assert_int_equal(c->limits->anonymous.window, 60);
    static const char *bad[] = {"",      "0/60",           "5/0",        "5/",
                                "/60",   "-1/60",          "5/60x",      "x",
                                "5 /60", "99999999999/60", "100/2592001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pc_config_parse_limit(bad[i], &c->limits->anonymous), PC_EINVAL);
    assert_int_equal(c->limits->anonymous.pulls, 7); /* untouched by a bad one */
    /* a window over 30 days is refused */
    c->limits->authenticated.window = 2592001;
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "limits.authenticated.window"));
    pc_config_free(c);

    /* unknown keys are refused in the section too */
    p = write_tmp("limits:\n  enabled: true\n  anonymous: {pulls: 5, windows: 3600}\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    unlink(p);
    p = write_tmp("limits:\n  enable: true\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    unlink(p);
}

static void auth_section(void **state)
{
    pc_config *c = NULL;
    assert_int_equal(pc_config_load(&c, NULL), 0);
    assert_null(c->auth);
    assert_false(pc_config_auth_enabled(c));
    pc_config_free(c);

    char *p = write_tmp("auth:\n  htpasswd: /etc/htp\n  challenge: basic\n"
                        "  groups:\n    - name: devs\n      members: [alice, bob]\n"
                        "  admins: [root, \"@devs\"]\n  catalog: [anonymous]\n"
                        "  access:\n    - prefix: team\n      pull: [authenticated]\n"
                        "      push: [\"@devs\"]\n      delete: [alice]\n"
                        "    - {prefix: \"\", readonly: true, pull: [anonymous]}\n"
                        "  token: {realm: \"https://r/token\", service: s, issuer: i, lifetime: 9,"
                        " key: /k}\n  trust: {issuer: e, audience: a, key: /p}\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    unlink(p);
    assert_true(pc_config_auth_enabled(c));
    const pc_config_auth *a = c->auth;
    assert_string_equal(a->htpasswd, "/etc/htp");
    assert_string_equal(a->challenge, "basic");
    assert_int_equal(a->groups_count, 1);
    assert_string_equal(a->groups[0].name, "devs");
    assert_int_equal(a->groups[0].members_count, 2);
    assert_string_equal(a->groups[0].members[1], "bob");
    assert_int_equal(a->admins_count, 2);
    assert_string_equal(a->admins[1], "@devs");
    assert_int_equal(a->catalog_count, 1);
    assert_int_equal(a->access_count, 2);
    assert_string_equal(a->access[0].prefix, "team");
    assert_int_equal(a->access[0].del_count, 1);
    assert_string_equal(a->access[0].del[0], "alice");
    assert_string_equal(a->access[1].prefix, "");
    assert_true(a->access[1].readonly);
    assert_int_equal(a->token->lifetime, 9);
    assert_string_equal(a->token->realm, "https://r/token");
    assert_string_equal(a->trust->audience, "a");
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    pc_config_free(c);

    /* refused: unknown keys anywhere in the section, a bad challenge, a long lifetime,
     * a trust without its key */
    static const char *bad[] = {
        "auth:\n  htpasswd: /x\n  users: [a]\n",
        "auth:\n  access:\n    - {prefix: a, pul: [b]}\n",
        "auth:\n  token: {lifetme: 5}\n",
        "auth:\n  trust: {issuer: e, audience: a}\n",
        "auth:\n  groups:\n    - {name: g, member: [a]}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = write_tmp(bad[i]);
        assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
        unlink(p);
    }
    p = write_tmp("auth:\n  htpasswd: /x\n  challenge: digest\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    unlink(p);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "auth.challenge"));
    pc_config_free(c);
    p = write_tmp("auth:\n  htpasswd: /x\n  token: {lifetime: 100000}\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    unlink(p);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    pc_config_free(c);
}

/* storage.blobs / storage.meta: defaults exactly as before (fs + sqlite
 * under storage.data), names checked at validation with the known ones
 * listed, unknown keys refused as everywhere. */
static void storage_drivers(void **state)
{
    pc_config *c = NULL;
    pc_store_opts o;
    assert_int_equal(pc_config_load(&c, NULL), 0);
    assert_string_equal(c->storage->blobs->driver, "fs");
    assert_string_equal(c->storage->meta->driver, "sqlite");
    pc_config_store_opts(c, &o);
    assert_string_equal(o.data_dir, "./data");
    assert_true(pc_store_is_default(&o));
    assert_true(pc_store_durable(&o));
    assert_null(o.meta_path);
    pc_config_free(c);

    char *p = write_tmp("storage:\n  data: /srv/d\n  blobs: {driver: mem}\n"
                        "  meta:\n    driver: mem\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    pc_config_store_opts(c, &o);
    assert_string_equal(o.data_dir, "/srv/d");
    assert_string_equal(pc_store_blobs_name(&o), "mem");
    assert_string_equal(pc_store_meta_name(&o), "mem");
    assert_false(pc_store_is_default(&o));
    assert_false(pc_store_durable(&o));
    pc_config_free(c);
    unlink(p);

    /* one store in memory is not durable either (gc and fsck refuse it) */
    p = write_tmp("storage:\n  blobs: {driver: mem}\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_string_equal(c->storage->meta->driver, "sqlite");
    pc_config_store_opts(c, &o);
    assert_false(pc_store_durable(&o));
    assert_false(pc_store_is_default(&o));
    pc_config_free(c);
    unlink(p);

    /* an unknown name: refused by validation, naming the key and the drivers */
    p = write_tmp("storage:\n  blobs: {driver: nosuch}\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "storage.blobs.driver 'nosuch'"));
    assert_non_null(strstr(pc_error_last(), "known: fs, mem"));
    pc_config_free(c);
    unlink(p);
    p = write_tmp("storage:\n  meta: {driver: mysql}\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "storage.meta.driver 'mysql'"));
    assert_non_null(strstr(pc_error_last(), "known: sqlite, mem, postgres"));
    pc_config_free(c);
    unlink(p);

    /* postgres: durable, its connection's source and pool handed on */
    p = write_tmp("storage:\n  meta:\n    driver: postgres\n    conninfo_file: /run/pc/ci\n"
                  "    conninfo_env: MY_CI\n    pool: 3\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    pc_config_store_opts(c, &o);
    assert_string_equal(pc_store_meta_name(&o), "postgres");
    assert_true(pc_store_durable(&o));
    assert_false(pc_store_is_default(&o));
    assert_non_null(o.pg);
    assert_string_equal(o.pg->conninfo_file, "/run/pc/ci");
    assert_string_equal(o.pg->conninfo_env, "MY_CI");
    assert_int_equal(o.pg->pool, 3);
    assert_null(o.pg->conninfo);
    pc_config_free(c);
    unlink(p);

    /* unknown keys and a section without its driver are refused at load */
    p = write_tmp("storage:\n  meta: {driver: sqlite, drvier: x}\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "unknown key 'drvier' in storage.meta"));
    unlink(p);
    p = write_tmp("storage:\n  blobs: {}\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    assert_null(c);
    unlink(p);
    p = write_tmp("storage:\n  blob: {driver: fs}\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "did you mean 'blobs'?"));
    unlink(p);
}

/* storage.blobs with driver s3: its settings reach the factory as
 * pc_blob_s3_opts; what it needs is checked at validation; the backend
 * opens without sending anything (credentials from the environment). */
static void storage_s3(void **state)
{
    pc_config *c = NULL;
    pc_store_opts o;
    char *p = write_tmp("storage:\n  blobs:\n    driver: s3\n    endpoint: http://127.0.0.1:7480\n"
                        "    bucket: cache\n    prefix: reg/\n    region: eu-1\n"
                        "    path_style: true\n    redirect: true\n");
    assert_int_equal(pc_config_load(&c, p), 0);
    assert_int_equal(pc_config_finalize(c), 0);
    assert_int_equal(pc_config_validate(c), 0);
    pc_config_store_opts(c, &o);
    assert_string_equal(pc_store_blobs_name(&o), "s3");
    assert_non_null(o.s3);
    assert_string_equal(o.s3->s3.endpoint, "http://127.0.0.1:7480");
    assert_string_equal(o.s3->s3.bucket, "cache");
    assert_string_equal(o.s3->s3.prefix, "reg/");
    assert_string_equal(o.s3->s3.region, "eu-1");
    assert_true(o.s3->s3.path_style);
    assert_null(o.s3->s3.credentials_file);
    assert_true(o.s3->redirect);
    assert_int_equal(o.s3->redirect_ttl, 300);
    assert_true(pc_store_durable(&o));
    assert_false(pc_store_is_default(&o));
    pc_blob_backend *be = NULL;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(pc_store_blobs_open(&o, &be), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "AWS_ACCESS_KEY_ID"));
    setenv("AWS_ACCESS_KEY_ID", "k", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    assert_int_equal(pc_store_blobs_open(&o, &be), 0);
    assert_string_equal(be->name, "s3");
    be->free(be);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    pc_config_free(c);
    unlink(p);

    static const struct {
        const char *yaml, *msg;
    } bad[] = {
        {"storage:\n  blobs: {driver: s3, bucket: b}\n", "needs endpoint"},
        {"storage:\n  blobs: {driver: s3, endpoint: 'http://h'}\n", "needs endpoint"},
        {"storage:\n  blobs: {driver: s3, endpoint: 'ftp://h', bucket: b}\n", "http://"},
        {"storage:\n  blobs: {driver: s3, endpoint: 'http://h', bucket: b, redirect_ttl: "
         "604801}\n",
         "redirect_ttl"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = write_tmp(bad[i].yaml);
        assert_int_equal(pc_config_load(&c, p), 0);
        assert_int_equal(pc_config_finalize(c), 0);
        assert_int_equal(pc_config_validate(c), PC_EINVAL);
        assert_non_null(strstr(pc_error_last(), bad[i].msg));
        pc_config_free(c);
        unlink(p);
    }
    /* a misspelt setting is refused at load like any unknown key */
    p = write_tmp("storage:\n  blobs: {driver: s3, endpiont: 'http://h'}\n");
    assert_int_equal(pc_config_load(&c, p), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "endpiont"));
    unlink(p);
}

static void listen_forms(void **state)
{
    char host[64];
    unsigned port = 0;
    assert_int_equal(pc_config_parse_listen("127.0.0.1:5000", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5000);
    assert_int_equal(pc_config_parse_listen("[::1]:443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    assert_int_equal(pc_config_parse_listen("localhost:65535", host, sizeof(host), &port), 0);
    assert_int_equal(pc_config_parse_listen("h:0", host, sizeof(host), &port), PC_EINVAL);
    assert_int_equal(pc_config_parse_listen("h:65536", host, sizeof(host), &port), PC_EINVAL);
    assert_int_equal(pc_config_parse_listen("h:", host, sizeof(host), &port), PC_EINVAL);
    assert_int_equal(pc_config_parse_listen(":80", host, sizeof(host), &port), PC_EINVAL);
    assert_int_equal(pc_config_parse_listen("h:8x", host, sizeof(host), &port), PC_EINVAL);
    assert_int_equal(pc_config_parse_listen("[::1:80", host, sizeof(host), &port), PC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(file_overrides_defaults),
        cmocka_unit_test(unknown_key_refused),
        cmocka_unit_test(malformed_yaml_refused),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(http_edge_keys),
        cmocka_unit_test(listen_forms),
        cmocka_unit_test(upstreams_from_file_and_flags),
        cmocka_unit_test(limits_section),
        cmocka_unit_test(auth_section),
        cmocka_unit_test(storage_drivers),
        cmocka_unit_test(storage_s3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
