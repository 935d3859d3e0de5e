/*
 * test_sync.c - unit tests for sync.c and sync_state.c: the sync file (a
 * full file, defaults, unknown keys and bad values refused with the file's
 * name, per-side options and their conflicts, scheme prefixes), versions
 * (parse, order, ranges), tag selection (exact list, regex, semver range,
 * newest N, their union), the settings string, and the state file (empty
 * when missing, record and match, subjects, save and load back, malformed
 * files refused).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "sync.h"

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/pc-sync-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal((ssize_t)strlen(text), write(fd, text, strlen(text)));
    close(fd);
}

static int load(const char *text, pc_sync_file **f)
{
    write_file(text);
    pc_error_clear();
    int rc = pc_sync_file_load(path, f);
    unlink(path);
    return rc;
}

static void bad(const char *text, const char *want_in_message)
{
    pc_sync_file *f = NULL;
    int rc = load(text, &f);
    if (rc != PC_EINVAL || !strstr(pc_error_last(), want_in_message))
        fail_msg("rc %d, message '%s', want '%s'", rc, pc_error_last(), want_in_message);
    assert_null(f);
}

static void test_file_full(void **state)
{
    (void)state;
    pc_sync_file *f = NULL;
    assert_int_equal(0, load("interval: 60\n"
                             "min_remaining: 10\n"
                             "mappings:\n"
                             "  - source: docker.io/library/nginx\n"
                             "    destination: 127.0.0.1:5000/mirror/nginx\n"
                             "    tags: [\"1.27\", \"1.26\"]\n"
                             "    regex: '^1\\.2[0-9]+$'\n"
                             "    semver: \">=1.25 <2\"\n"
                             "    newest: 3\n"
                             "    platforms: [linux/amd64, linux/arm64]\n"
                             "    referrers: true\n"
                             "  - source: ghcr.io/org/app\n"
                             "    destination: 127.0.0.1:5000/app\n"
                             "    newest: 1\n",
                             &f));
    assert_int_equal(60, f->interval);
    assert_int_equal(10, f->min_remaining);
    assert_int_equal(21600, f->max_pause);
    assert_int_equal(4, f->concurrency);
    assert_int_equal(2, f->mappings_count);
    pc_sync_mapping *m = &f->mappings[0];
    assert_string_equal("docker.io/library/nginx", m->source);
    assert_int_equal(2, m->tags_count);
    assert_string_equal("1.26", m->tags[1]);
    assert_string_equal("^1\\.2[0-9]+$", m->regex);
    assert_int_equal(3, m->newest);
    assert_int_equal(2, m->platforms_count);
    assert_true(m->referrers);
    assert_false(f->mappings[1].referrers);
    assert_true(pc_sync_needs_list(&f->mappings[1]));
    pc_sync_file_free(f);
}

static void test_file_bad(void **state)
{
    (void)state;
    bad("mapings:\n  - source: a.io/x\n    destination: b.io/y\n    tags: [a]\n", "mapings");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n    tag: [a]\n", "tag");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n    tag: [a]\n",
        "line 4: unknown key 'tag' in mappings (did you mean 'tags'?");
    bad("interval: 5\n", "mappings");
    bad("mappings:\n  - source: a.io/x:1\n    destination: b.io/y\n    tags: [a]\n",
        "mappings[0].source");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y@sha256:00\n    tags: [a]\n",
        "destination");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n", "selects no tags");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n    regex: '(['\n", "regex");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n    semver: '>=x'\n", "semver");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n    tags: ['a b']\n", "not a tag");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n    newest: 1\n"
        "    platforms: [linux]\n",
        "platforms");
    bad("mappings:\n  - source: a.io/x\n    destination: b.io/y\n    newest: -1\n", "");
    pc_sync_file *f = NULL;
    assert_int_equal(PC_ENOTFOUND, pc_sync_file_load("/nonexistent/sync.yml", &f));
}

static void test_file_options(void **state)
{
    (void)state;
    pc_sync_file *f = NULL;
    assert_int_equal(0, load("mappings:\n"
                             "  - source: https://registry.example.com/team/app\n"
                             "    destination: http://10.0.0.5:5000/team/app\n"
                             "    tags: [\"1\"]\n"
                             "    source_options:\n"
                             "      insecure: false\n"
                             "      ca_file: /etc/pullcache/ca.crt\n"
                             "      username: robot\n"
                             "      password_env: SRC_PASS\n"
                             "    destination_options: {plain_http: true, username: ci,\n"
                             "                          password_file: /run/secrets/push}\n"
                             "  - source: a.io/x\n"
                             "    destination: 127.0.0.1:5000/x\n"
                             "    tags: [a]\n"
                             "    source_options: {anonymous: true}\n",
                             &f));
    const pc_sync_mapping *m = &f->mappings[0];
    assert_non_null(m->source_options);
    assert_null(m->source_options->plain_http); /* not said */
    assert_non_null(m->source_options->insecure);
    assert_false(*m->source_options->insecure); /* said: false */
    assert_string_equal("/etc/pullcache/ca.crt", m->source_options->ca_file);
    assert_string_equal("robot", m->source_options->username);
    assert_string_equal("SRC_PASS", m->source_options->password_env);
    assert_null(m->source_options->password_file);
    assert_true(*m->destination_options->plain_http);
    assert_string_equal("/run/secrets/push", m->destination_options->password_file);
    assert_null(f->mappings[1].destination_options);
    assert_true(*f->mappings[1].source_options->anonymous);
    pc_sync_file_free(f);

#define MAP "mappings:\n  - source: a.io/x\n    destination: b.io/y\n    tags: [a]\n"
    bad(MAP "    source_options: {tls_verify: false}\n", "tls_verify");
    bad(MAP "    destination_options: {username: u}\n",
        "mappings[0].destination_options: username wants password_env or password_file");
    bad(MAP "    source_options: {password_env: X}\n", "password_env and password_file go with");
    bad(MAP "    source_options: {username: u, password_env: X, password_file: /f}\n",
        "exclude each other");
    bad(MAP "    source_options: {username: u, password_env: 'not a name'}\n",
        "password_env wants the name of an environment variable");
    bad(MAP "    source_options: {username: u, password_env: X, anonymous: true}\n",
        "anonymous: true and username");
    bad(MAP "    source_options: {plain_http: true, ca_file: /ca.crt}\n", "ca_file is for TLS");
    bad("mappings:\n  - source: http://a.io/x\n    destination: b.io/y\n    tags: [a]\n"
        "    source_options: {ca_file: /ca.crt}\n",
        "ca_file is for TLS");
    bad("mappings:\n  - source: http://a.io/x\n    destination: b.io/y\n    tags: [a]\n"
        "    source_options: {plain_http: false}\n",
        "plain_http disagrees");
    bad("mappings:\n  - source: a.io/x\n    destination: https://b.io/y\n    tags: [a]\n"
        "    destination_options: {plain_http: true}\n",
        "mappings[0].destination_options: plain_http disagrees");
    bad("mappings:\n  - source: http://a.io/x:1\n    destination: b.io/y\n    tags: [a]\n",
        "mappings[0].source");
    bad(MAP "    source_options: {plain_http: maybe}\n", "maybe"); /* true or false only */
#undef MAP
}

static void test_settings(void **state)
{
    (void)state;
    char *plats[] = {"linux/amd64", "linux/arm64/v8"};
    pc_sync_mapping m;
    char buf[128];
    memset(&m, 0, sizeof(m));
    assert_false(pc_sync_needs_state(&m));
    assert_int_equal(0, pc_sync_settings(&m, buf, sizeof(buf)));
    assert_string_equal("platforms=;referrers=0", buf);
    m.platforms = plats;
    m.platforms_count = 2;
    assert_true(pc_sync_needs_state(&m));
    assert_int_equal(0, pc_sync_settings(&m, buf, sizeof(buf)));
    assert_string_equal("platforms=linux/amd64,linux/arm64/v8;referrers=0", buf);
    m.platforms_count = 0;
    m.referrers = true;
    assert_true(pc_sync_needs_state(&m));
    assert_int_equal(0, pc_sync_settings(&m, buf, sizeof(buf)));
    assert_string_equal("platforms=;referrers=1", buf);
    m.platforms_count = 2;
    assert_int_equal(PC_ETOOBIG, pc_sync_settings(&m, buf, 20));
    assert_int_equal(PC_ETOOBIG, pc_sync_settings(&m, buf, 48)); /* one short */
    assert_int_equal(0, pc_sync_settings(&m, buf, 49));
}

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void test_state(void **state)
{
    (void)state;
    char dir[] = "/tmp/pc-sync-state-XXXXXX", p[128];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof(p), "%s/sync.yml.state", dir);
    pc_sync_state *s = NULL;
    assert_int_equal(0, pc_sync_state_load(p, &s)); /* missing: empty */
    pc_sync_record rec = {.source = "a.io/x",
                          .settings = "platforms=linux/amd64;referrers=1",
                          .source_digest = D1,
                          .destination_digest = D2};
    const char *key = "b.io/y:1";
    assert_false(pc_sync_state_matches(s, key, &rec));
    pc_copy_subject subj[2];
    memset(subj, 0, sizeof(subj));
    assert_int_equal(0, pc_digest_parse(&subj[0].digest, D2));
    snprintf(subj[0].referrers, sizeof(subj[0].referrers), "api:%s", D3);
    assert_int_equal(0, pc_digest_parse(&subj[1].digest, D3));
    snprintf(subj[1].referrers, sizeof(subj[1].referrers), "none");
    rec.subjects = subj;
    rec.nsubjects = 2;
    assert_int_equal(0, pc_sync_state_put(s, key, &rec));
    assert_true(pc_sync_state_matches(s, key, &rec));
    assert_false(pc_sync_state_matches(s, "b.io/y:2", &rec));
    pc_sync_record other = rec;
    other.source_digest = D3; /* the source moved on */
    assert_false(pc_sync_state_matches(s, key, &other));
    other = rec;
    other.destination_digest = D1; /* someone retagged the destination */
    assert_false(pc_sync_state_matches(s, key, &other));
    other = rec;
    other.settings = "platforms=;referrers=1";
    assert_false(pc_sync_state_matches(s, key, &other));
    other = rec;
    other.source = "c.io/x";
    assert_false(pc_sync_state_matches(s, key, &other));

    assert_int_equal(0, pc_sync_state_save(s, p));
    pc_sync_state_free(s);
    s = NULL;
    assert_int_equal(0, pc_sync_state_load(p, &s));
    assert_true(pc_sync_state_matches(s, key, &rec));
    pc_copy_subject back[4];
    assert_int_equal(2, pc_sync_state_subjects(s, key, back, 4));
    assert_string_equal(D2, back[0].digest.str);
    assert_string_equal("api:" D3, back[0].referrers);
    assert_string_equal("none", back[1].referrers);
    assert_int_equal(1, pc_sync_state_subjects(s, key, back, 1));
    assert_int_equal(0, pc_sync_state_subjects(s, "b.io/y:2", back, 4));
    /* a record replaced */
    rec.nsubjects = 0;
    rec.source_digest = D3;
    assert_int_equal(0, pc_sync_state_put(s, key, &rec));
    assert_true(pc_sync_state_matches(s, key, &rec));
    assert_int_equal(0, pc_sync_state_subjects(s, key, back, 4));
    pc_sync_state_free(s);

    /* no temporary file left next to it */
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    for (struct dirent *e; (e = readdir(dh));)
        if (strstr(e->d_name, "tmp-"))
            fail_msg("left behind: %s", e->d_name);
    closedir(dh);

    /* malformed files are refused with the path named */
    static const char *const bad_states[] = {
        "not json",
        "[]",
        "{\"tags\": {}}",
        "{\"version\": 2, \"tags\": {}}",
        "{\"version\": 1}",
        "{\"version\": 1, \"tags\": {\"b.io/y:1\": {\"source\": \"a.io/x\"}}}",
        "{\"version\": 1, \"tags\": {\"k\": {\"source\": \"s\", \"settings\": \"x\", "
        "\"source_digest\": \"d\", \"destination_digest\": \"d\", "
        "\"referrers\": [{\"digest\": \"sha256:zz\", \"fingerprint\": \"none\"}]}}}",
    };
    for (size_t i = 0; i < sizeof(bad_states) / sizeof(bad_states[0]); i++) {
        FILE *w = fopen(p, "w");
        assert_non_null(w);
        fputs(bad_states[i], w);
        fclose(w);
        s = NULL;
        pc_error_clear();
        int rc = pc_sync_state_load(p, &s);
        if (rc != PC_EINVAL || !strstr(pc_error_last(), p))
            fail_msg("state '%s': rc %d, message '%s'", bad_states[i], rc, pc_error_last());
        assert_null(s);
    }
    /* an unwritable place: PC_ERR, the path named */
    char nodir[200];
    snprintf(nodir, sizeof(nodir), "%s/missing/dir/state", dir);
    assert_int_equal(0, pc_sync_state_load(nodir, &s));
    assert_int_equal(PC_ERR, pc_sync_state_save(s, nodir));
    assert_non_null(strstr(pc_error_last(), nodir));
    pc_sync_state_free(s);
    unlink(p);
    rmdir(dir);
}

static pc_semver v3(unsigned long a, unsigned long b, unsigned long c)
{
    pc_semver v = {a, b, c};
    return v;
}

static void test_semver(void **state)
{
    (void)state;
    pc_semver v, w;
    assert_int_equal(0, pc_semver_parse("1.27", &v));
    w = v3(1, 27, 0);
    assert_int_equal(0, pc_semver_cmp(&v, &w));
    assert_int_equal(0, pc_semver_parse("v2.0.10", &v));
    w = v3(2, 0, 9);
    assert_true(pc_semver_cmp(&v, &w) > 0);
    assert_int_equal(0, pc_semver_parse("3", &v));
    assert_int_equal(PC_EINVAL, pc_semver_parse("1.27-alpine", &v));
    assert_int_equal(PC_EINVAL, pc_semver_parse("latest", &v));
    assert_int_equal(PC_EINVAL, pc_semver_parse("1..2", &v));
    assert_int_equal(PC_EINVAL, pc_semver_parse("1.2.3.4", &v));

    struct {
        const char *range;
        pc_semver v;
        int want;
    } cases[] = {
        {">=1.25 <2", {1, 25, 0}, 1},    {">=1.25 <2", {1, 24, 9}, 0}, {">=1.25 <2", {2, 0, 0}, 0},
        {">= 1.25, < 2", {1, 30, 1}, 1}, {"1.27", {1, 27, 0}, 1},      {"=1.27", {1, 27, 1}, 0},
        {">1.2.3", {1, 2, 4}, 1},        {"<=1.2", {1, 2, 0}, 1},      {"<=1.2", {1, 2, 1}, 0},
        {"^1.2", {1, 9, 0}, 1},          {"^1.2", {2, 0, 0}, 0},       {"^0.2.1", {0, 2, 5}, 1},
        {"^0.2.1", {0, 3, 0}, 0},        {"~1.27", {1, 27, 3}, 1},     {"~1.27", {1, 28, 0}, 0},
        {"~1", {1, 99, 0}, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = pc_semver_match(cases[i].range, &cases[i].v);
        if (got != cases[i].want)
            fail_msg("'%s' on %lu.%lu.%lu: %d, want %d", cases[i].range, cases[i].v.major,
                     cases[i].v.minor, cases[i].v.patch, got, cases[i].want);
    }
    assert_int_equal(PC_EINVAL, pc_semver_match("", &v));
    assert_int_equal(PC_EINVAL, pc_semver_match(">=", &v));
    assert_int_equal(PC_EINVAL, pc_semver_match("!1", &v));
    assert_int_equal(PC_EINVAL, pc_semver_match(">>>1", &v));
}

static const char *const avail[] = {"latest", "1.24",        "1.25", "1.25.3",  "1.26.1",
                                    "1.27",   "1.27-alpine", "2.0",  "v1.26.2", "mainline"};
#define NAVAIL (sizeof(avail) / sizeof(avail[0]))

static void selected(const pc_sync_mapping *m, const char *want)
{
    const char **out = NULL;
    size_t n = 0;
    char got[512] = "";
    assert_int_equal(0, pc_sync_select(m, avail, NAVAIL, &out, &n));
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof(got); i++)
        off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? " " : "", out[i]);
    free(out);
    if (strcmp(got, want) != 0)
        fail_msg("selected '%s', want '%s'", got, want);
}

static void test_select(void **state)
{
    (void)state;
    char *tags[] = {"1.27", "missing", "1.27"};
    pc_sync_mapping m;

    memset(&m, 0, sizeof(m));
    m.tags = tags;
    m.tags_count = 3;
    selected(&m, "1.27 missing"); /* exact, in order, no duplicates, absent kept */

    memset(&m, 0, sizeof(m));
    m.regex = "^1\\.2[5-6]";
    selected(&m, "1.25 1.25.3 1.26.1");

    memset(&m, 0, sizeof(m));
    m.semver = ">=1.25 <2";
    selected(&m, "1.27 v1.26.2 1.26.1 1.25.3 1.25"); /* newest first, -alpine is no version */

    memset(&m, 0, sizeof(m));
    m.newest = 2;
    selected(&m, "2.0 1.27");

    memset(&m, 0, sizeof(m));
    m.semver = "<2";
    m.newest = 3;
    m.regex = "^[0-9]"; /* v1.26.2 fails the regex */
    selected(&m, "1.27 1.26.1 1.25.3");

    memset(&m, 0, sizeof(m));
    m.tags = tags;
    m.tags_count = 1;
    m.newest = 2;
    selected(&m, "1.27 2.0"); /* the list, then the filter's, once each */

    memset(&m, 0, sizeof(m));
    m.regex = "(";
    const char **out = NULL;
    size_t n = 0;
    assert_int_equal(PC_EINVAL, pc_sync_select(&m, avail, NAVAIL, &out, &n));
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_full),    cmocka_unit_test(test_file_bad),
        cmocka_unit_test(test_file_options), cmocka_unit_test(test_settings),
        cmocka_unit_test(test_state),        cmocka_unit_test(test_semver),
        cmocka_unit_test(test_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
