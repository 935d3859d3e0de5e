/*
 * test_auth_policy.c - unit tests for auth_policy.c: the default (authenticated
 * push, anonymous pull of mirrored content only), rules and which one
 * decides, prefixes on component boundaries, read-only that sticks,
 * groups, admins and the catalog, configurations refused, the token
 * server's intersection, and names that must never match anything
 * (percent-encoding, "//", "..", case variants, over-long names).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_policy.h"

#define PULL PC_AUTH_PULL
#define PUSH PC_AUTH_PUSH
#define DEL PC_AUTH_DELETE
#define ALL3 (PULL | PUSH | DEL)
#define N(a) (sizeof(a) / sizeof((a)[0]))

static unsigned access_of(const pc_policy *p, const char *user, const char *name, bool mirrored)
{
    unsigned g = 0xff;
    int rc = pc_policy_access(p, user, name, mirrored, &g);
    if (rc != 0)
        fail_msg("%s on \"%s\": rc %d (%s)", user ? user : "anonymous", name, rc, pc_error_last());
    return g;
}

static void expect(const pc_policy *p, const char *user, const char *name, bool mirrored,
                   unsigned want)
{
    unsigned g = access_of(p, user, name, mirrored);
    if (g != want)
        fail_msg("%s on \"%s\"%s: %#x, want %#x", user ? user : "anonymous", name,
                 mirrored ? " (mirrored)" : "", g, want);
}

/* The configuration most tests use. */
static const char *const devs_members[] = {"bob", "carol"};
static const char *const ops_members[] = {"oscar"};
static const pc_policy_group groups[] = {
    {"devs", devs_members, N(devs_members)},
    {"ops", ops_members, N(ops_members)},
};
static const char *const authenticated[] = {"authenticated"};
static const char *const anonymous[] = {"anonymous"};
static const char *const devs[] = {"@devs"};
static const char *const alice[] = {"alice"};
static const char *const admins[] = {"root", "@ops"};
static const pc_policy_rule rules[] = {
    {"team", false, authenticated, 1, devs, 1, alice, 1},
    {"team/public/", false, anonymous, 1, NULL, 0, NULL, 0},
    {"team/locked", false, NULL, 0, NULL, 0, NULL, 0},
    {"docker.io", true, anonymous, 1, NULL, 0, NULL, 0},
    {"docker.io/library", false, authenticated, 1, alice, 1, alice, 1},
};

static pc_policy *make(void)
{
    pc_policy_config cfg = {rules, N(rules), groups, N(groups), admins, N(admins), NULL, 0};
    pc_policy *p = NULL;
    int rc = pc_policy_new(&p, &cfg);
    if (rc != 0)
        fail_msg("rc %d: %s", rc, pc_error_last());
    return p;
}

static void test_default(void **state)
{
    (void)state;
    pc_policy *p = NULL;
    assert_int_equal(pc_policy_new(&p, NULL), 0);
    /* local repositories: authenticated users pull and push; anonymous nothing */
    expect(p, NULL, "team/app", false, 0);
    expect(p, "", "team/app", false, 0); /* an empty user is anonymous */
    expect(p, "alice", "team/app", false, PULL | PUSH);
    /* mirrored: everyone pulls, nobody writes */
    expect(p, NULL, "docker.io/library/nginx", true, PULL);
    expect(p, NULL, "library/nginx", true, PULL);
    expect(p, "alice", "library/nginx", true, PULL);
    /* nobody is an admin, so nobody deletes */
    assert_false(pc_policy_is_admin(p, "alice"));
    assert_true(pc_policy_catalog(p, "alice"));
    assert_false(pc_policy_catalog(p, NULL));
    pc_policy_free(p);

    /* with admins: they also delete local content, never mirrored content */
    pc_policy_config cfg = {NULL, 0, groups, N(groups), admins, N(admins), NULL, 0};
    assert_int_equal(pc_policy_new(&p, &cfg), 0);
    expect(p, "root", "team/app", false, ALL3);
    expect(p, "oscar", "team/app", false, ALL3); /* by group */
    expect(p, "bob", "team/app", false, PULL | PUSH);
    expect(p, "root", "library/nginx", true, PULL);
    assert_true(pc_policy_is_admin(p, "root"));
    assert_true(pc_policy_is_admin(p, "oscar"));
    assert_false(pc_policy_is_admin(p, "bob"));
    assert_false(pc_policy_is_admin(p, NULL));
    assert_false(pc_policy_is_admin(p, ""));
    pc_policy_free(p);
}

static void test_rules(void **state)
{
    (void)state;
    pc_policy *p = make();
    /* "team": authenticated pull, @devs push, alice delete */
    expect(p, NULL, "team/app", false, 0);
    expect(p, "dave", "team/app", false, PULL);
    expect(p, "bob", "team/app", false, PULL | PUSH);
    expect(p, "carol", "team", false, PULL | PUSH);
    expect(p, "alice", "team/app/sub/deep", false, PULL | DEL);
    /* a rule decides even for admins: root is only authenticated here */
    expect(p, "root", "team/app", false, PULL);
    /* the longest prefix decides alone: no push for @devs under team/public */
    expect(p, NULL, "team/public/site", false, PULL);
    expect(p, "bob", "team/public/site", false, PULL);
    expect(p, "alice", "team/public", false, PULL);
    /* an empty rule shuts a subtree */
    expect(p, "alice", "team/locked/x", false, 0);
    expect(p, "bob", "team/locked", false, 0);
    /* no rule: the default */
    expect(p, "dave", "other/app", false, PULL | PUSH);
    expect(p, "root", "other/app", false, ALL3);
    pc_policy_free(p);
}

static void test_boundaries(void **state)
{
    (void)state;
    pc_policy *p = make();
    /* "team" is not a prefix of "teamx" or "team-x": the default applies */
    expect(p, "dave", "teamx", false, PULL | PUSH);
    expect(p, "dave", "teamx/app", false, PULL | PUSH);
    expect(p, "dave", "team-x/app", false, PULL | PUSH);
    expect(p, "dave", "team.x/app", false, PULL | PUSH);
    expect(p, "bob", "team_app", false, PULL | PUSH);
    expect(p, NULL, "teamx/app", false, 0);
    /* nor "team/public" of "team/publicity" */
    expect(p, NULL, "team/publicity", false, 0);
    expect(p, "bob", "team/publicity", false, PULL | PUSH);
    /* "team/locked" and "team/locked-not" */
    expect(p, "dave", "team/locked-not", false, PULL);
    pc_policy_free(p);
}

static void test_readonly(void **state)
{
    (void)state;
    pc_policy *p = make();
    /* docker.io is readonly: the more specific rule grants push, which
     * still cannot happen */
    expect(p, "alice", "docker.io/library/nginx", false, PULL);
    expect(p, NULL, "docker.io/library/nginx", false, 0); /* library's rule decides pull */
    expect(p, NULL, "docker.io/grafana/grafana", false, PULL);
    expect(p, "root", "docker.io/grafana/grafana", false, PULL);
    /* mirrored content is read-only whatever the rules say */
    expect(p, "bob", "team/app", true, PULL);
    expect(p, "alice", "team/app", true, PULL);
    pc_policy_free(p);

    /* even a rule that grants everything to everyone */
    static const pc_policy_rule open[] = {
        {"", false, anonymous, 1, anonymous, 1, anonymous, 1},
    };
    pc_policy_config cfg = {open, 1, NULL, 0, NULL, 0, NULL, 0};
    assert_int_equal(pc_policy_new(&p, &cfg), 0);
    expect(p, NULL, "anything/at/all", false, ALL3);
    expect(p, NULL, "docker.io/library/nginx", true, PULL);
    pc_policy_free(p);
}

/* Names that must never match a rule: each is refused, nothing granted,
 * even under a root rule that grants everything to anonymous. */
static void test_bypass(void **state)
{
    (void)state;
    static const pc_policy_rule open[] = {
        {"", false, anonymous, 1, anonymous, 1, anonymous, 1},
    };
    pc_policy_config cfg = {open, 1, NULL, 0, NULL, 0, NULL, 0};
    pc_policy *loose = NULL, *strict = make();
    assert_int_equal(pc_policy_new(&loose, &cfg), 0);
    static char longname[400], exact[300];
    for (size_t i = 0; i < 300; i += 2) {
        longname[i] = 'a';
        longname[i + 1] = '/';
    }
    longname[299] = 'a';
    longname[300] = '\0';                    /* "a/a/.../a", 300 characters */
    snprintf(exact, sizeof(exact), "team/"); /* team/ + 251 = 256 characters */
    memset(exact + 5, 'x', 251);
    exact[256] = '\0';
    const char *bad[] = {
        "",
        "team%2Fapp",
        "team%2fapp",
        "%74eam/app",
        "team/app%00",
        "team//app",
        "/team/app",
        "team/app/",
        "team/./app",
        "team/../team/app",
        "..",
        "../team/app",
        "team/..",
        "Team/app",
        "TEAM/APP",
        "team/App",
        "team/app ",
        " team/app",
        "team/app\n",
        "team\\app",
        "team/app:latest",
        "team/app@sha256:abc",
        "docker.io/library/nginx?x=1",
        "team/app#frag",
        "team/\xc3\xa4pp",
        longname,
        exact,
    };
    for (size_t i = 0; i < N(bad); i++) {
        pc_policy *ps[] = {loose, strict};
        for (size_t k = 0; k < 2; k++) {
            unsigned g = 0xff;
            int rc = pc_policy_access(ps[k], "alice", bad[i], false, &g);
            if (rc != PC_EINVAL || g != 0)
                fail_msg("\"%s\": rc %d granted %#x", bad[i], rc, g);
        }
    }
    unsigned g = 0xff;
    assert_int_equal(pc_policy_access(loose, NULL, NULL, true, &g), PC_EINVAL);
    assert_int_equal(g, 0);
    /* one character shorter is a fine name */
    exact[255] = '\0';
    expect(loose, NULL, exact, false, ALL3);
    pc_policy_free(loose);
    pc_policy_free(strict);
}

static void config_bad(const pc_policy_config *cfg, int want, const char *msg_has)
{
    pc_policy *p = (pc_policy *)1;
    pc_error_clear();
    int rc = pc_policy_new(&p, cfg);
    if (rc != want)
        fail_msg("rc %d, want %d (%s)", rc, want, pc_error_last());
    assert_null(p);
    if (!strstr(pc_error_last(), msg_has))
        fail_msg("message \"%s\" lacks \"%s\"", pc_error_last(), msg_has);
}

static void test_config_errors(void **state)
{
    (void)state;
    pc_policy_config cfg = {NULL, 0, groups, N(groups), NULL, 0, NULL, 0};
    static const char *const bad_prefixes[] = {"Team",     "team//x", "/team", "team/../x",
                                               "team%2fx", "a:b",     "team//"};
    for (size_t i = 0; i < N(bad_prefixes); i++) {
        pc_policy_rule r = {bad_prefixes[i], false, anonymous, 1, NULL, 0, NULL, 0};
        cfg.rules = &r;
        cfg.rule_count = 1;
        config_bad(&cfg, PC_EINVAL, "access rule 1: prefix is not a repository name");
    }
    /* "team" and "team/" are the same prefix */
    pc_policy_rule two[] = {{"team", false, NULL, 0, NULL, 0, NULL, 0},
                            {"team/", false, NULL, 0, NULL, 0, NULL, 0}};
    cfg.rules = two;
    cfg.rule_count = 2;
    config_bad(&cfg, PC_EINVAL, "access rule 2: prefix \"team\" again (rule 1)");
    two[0].prefix = NULL;
    two[1].prefix = "";
    config_bad(&cfg, PC_EINVAL, "again");

    pc_policy_rule ro = {"mirror", true, anonymous, 1, alice, 1, NULL, 0};
    cfg.rules = &ro;
    cfg.rule_count = 1;
    config_bad(&cfg, PC_EINVAL, "readonly, yet grants push or delete");

    static const char *const unknown_group[] = {"@nobody"};
    static const char *const bad_user[] = {"bob smith"};
    static const char *const empty_user[] = {""};
    static const char *const null_user[] = {NULL};
    static const char *const *bad_lists[] = {unknown_group, bad_user, empty_user, null_user};
    static const char *msgs[] = {"no group \"nobody\"", "is not a user", "is not a user", "(null)"};
    for (size_t i = 0; i < N(bad_lists); i++) {
        pc_policy_rule r = {"x", false, NULL, 0, NULL, 0, bad_lists[i], 1};
        cfg.rules = &r;
        config_bad(&cfg, PC_EINVAL, msgs[i]);
        if (!strstr(pc_error_last(), "access rule 1, delete"))
            fail_msg("message \"%s\" does not name the list", pc_error_last());
    }
    cfg.rule_count = 0;

    cfg.admins = anonymous;
    cfg.admin_count = 1;
    config_bad(&cfg, PC_EINVAL, "anonymous cannot be an administrator");
    cfg.admins = unknown_group;
    config_bad(&cfg, PC_EINVAL, "admins: no group");
    cfg.admins = NULL;
    cfg.admin_count = 0;

    pc_policy_group dup[] = {{"devs", NULL, 0}, {"devs", NULL, 0}};
    cfg.groups = dup;
    cfg.group_count = 2;
    config_bad(&cfg, PC_EINVAL, "group \"devs\" defined twice");
    pc_policy_group badname[] = {{"Dev Team", NULL, 0}};
    cfg.groups = badname;
    cfg.group_count = 1;
    config_bad(&cfg, PC_EINVAL, "name must be");
    static const char *const badmember[] = {"ok", "@devs"};
    pc_policy_group nested[] = {{"g", badmember, 2}};
    cfg.groups = nested;
    config_bad(&cfg, PC_EINVAL, "member 2 is not a user name");
}

static void test_catalog(void **state)
{
    (void)state;
    static const char *const ops[] = {"@ops"};
    pc_policy_config cfg = {NULL, 0, groups, N(groups), NULL, 0, ops, 1};
    pc_policy *p = NULL;
    assert_int_equal(pc_policy_new(&p, &cfg), 0);
    assert_true(pc_policy_catalog(p, "oscar"));
    assert_false(pc_policy_catalog(p, "bob"));
    assert_false(pc_policy_catalog(p, NULL));
    pc_policy_free(p);
    /* an empty list: nobody */
    cfg.catalog = ops;
    cfg.catalog_count = 0;
    assert_int_equal(pc_policy_new(&p, &cfg), 0);
    assert_false(pc_policy_catalog(p, "oscar"));
    pc_policy_free(p);
}

static bool mirrored_docker(const char *name, void *ctx)
{
    (*(int *)ctx)++;
    return strncmp(name, "library/", 8) == 0;
}

static void test_grant(void **state)
{
    (void)state;
    pc_policy *p = make();
    pc_auth_scope want[] = {
        {PC_AUTH_REPOSITORY, "team/app", PULL | PUSH},
        {PC_AUTH_REPOSITORY, "team/app/x", PC_AUTH_ALL},
        {PC_AUTH_REPOSITORY, "library/nginx", PULL | PUSH},
        {PC_AUTH_REPOSITORY, "team/locked", PULL},
        {PC_AUTH_REGISTRY, "catalog", PC_AUTH_ALL},
        {PC_AUTH_REGISTRY, "catalog", PULL},
        {PC_AUTH_REPOSITORY, "Bad//Name", PULL},
    };
    pc_auth_scope *got = NULL;
    int calls = 0;
    assert_int_equal(pc_policy_grant(p, "alice", want, N(want), mirrored_docker, &calls, &got), 0);
    assert_int_equal(got[0].actions, PULL);       /* alice is not in @devs */
    assert_int_equal(got[1].actions, PULL | DEL); /* "*" asks for all three */
    assert_int_equal(got[2].actions, PULL);       /* mirrored */
    assert_int_equal(got[3].actions, 0);
    assert_int_equal(got[4].actions, PC_AUTH_ALL);
    assert_int_equal(got[5].actions, 0); /* the catalog's action is "*" */
    assert_int_equal(got[6].actions, 0);
    for (size_t i = 0; i < N(want); i++) {
        assert_int_equal(got[i].type, want[i].type);
        assert_string_equal(got[i].name, want[i].name);
    }
    assert_int_equal(calls, 4); /* the valid repository names */
    free(got);

    assert_int_equal(pc_policy_grant(p, NULL, want, N(want), NULL, NULL, &got), 0);
    assert_int_equal(got[0].actions, 0);
    assert_int_equal(got[2].actions, 0); /* not mirrored without the callback: local */
    assert_int_equal(got[4].actions, 0);
    free(got);
    assert_int_equal(pc_policy_grant(p, "bob", want, 0, NULL, NULL, &got), 0);
    assert_null(got);
    pc_policy_free(p);
}

static void test_refs(void **state)
{
    (void)state;
    pc_policy *p = make();
    pc_policy *q = pc_policy_ref(p);
    assert_ptr_equal(p, q);
    pc_policy_free(p);
    expect(q, "bob", "team/app", false, PULL | PUSH); /* still alive */
    pc_policy_free(q);
    pc_policy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),    cmocka_unit_test(test_rules),
        cmocka_unit_test(test_boundaries), cmocka_unit_test(test_readonly),
        cmocka_unit_test(test_bypass),     cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_catalog),    cmocka_unit_test(test_grant),
        cmocka_unit_test(test_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
