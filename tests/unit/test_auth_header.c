/*
 * test_auth_header.c - unit tests for auth_header.c: Authorization values (Basic and
 * Bearer, the forms clients send and the malformed ones attackers do),
 * resource scopes (the spec's forms, names that must not pass, merging,
 * limits), and WWW-Authenticate values, checked byte for byte and read
 * back with the client side's parser (pc_auth_challenge_parse).
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

#include "auth_header.h"
#include "base64.h"
#include "upstream.h"

/* "Basic " + base64 of the len bytes at plain. */
static char *basic_of(const char *plain, size_t len)
{
    char *b64 = NULL;
    assert_int_equal(pc_base64_encode(plain, len, false, &b64), 0);
    size_t n = strlen(b64) + 7;
    char *v = malloc(n);
    assert_non_null(v);
    snprintf(v, n, "Basic %s", b64);
    free(b64);
    return v;
}

static void header_bad(const char *v, int want)
{
    pc_auth_credentials c;
    pc_error_clear();
    int rc = pc_auth_header_parse(v, &c);
    if (rc != want)
        fail_msg("\"%s\": rc %d, want %d", v, rc, want);
    assert_int_equal(c.scheme, PC_AUTH_NONE);
    assert_null(c.user);
    assert_null(c.password);
    assert_null(c.token);
    assert_true(pc_error_last()[0] != '\0');
}

static void test_header_anonymous(void **state)
{
    (void)state;
    const char *none[] = {NULL, "", "   ", "\t "};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        pc_auth_credentials c;
        assert_int_equal(pc_auth_header_parse(none[i], &c), 0);
        assert_int_equal(c.scheme, PC_AUTH_NONE);
    }
}

static void test_header_basic(void **state)
{
    (void)state;
    static const struct {
        const char *value, *user, *pass;
    } ok[] = {
        {"Basic dXNlcjpzM2NyZXQ=", "user", "s3cret"},
        {"basic dXNlcjpzM2NyZXQ=", "user", "s3cret"},
        {"BASIC   dXNlcjpzM2NyZXQ=  ", "user", "s3cret"},
        {"Basic dXNlcjo=", "user", ""},                           /* "user:" */
        {"Basic dXNlcjpwYTpzcw==", "user", "pa:ss"},              /* the first ':' splits */
        {"Basic w7xzZXI6cMOkc3M=", "\xc3\xbcser", "p\xc3\xa4ss"}, /* UTF-8 */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        pc_auth_credentials c;
        int rc = pc_auth_header_parse(ok[i].value, &c);
        if (rc != 0)
            fail_msg("\"%s\": rc %d (%s)", ok[i].value, rc, pc_error_last());
        assert_int_equal(c.scheme, PC_AUTH_BASIC);
        assert_string_equal(c.user, ok[i].user);
        assert_string_equal(c.password, ok[i].pass);
        assert_null(c.token);
        pc_auth_credentials_clear(&c);
        assert_null(c.user);
    }
}

static void test_header_basic_bad(void **state)
{
    (void)state;
    header_bad("Basic", PC_EINVAL);
    header_bad("Basic ", PC_EINVAL);
    header_bad("Basic\tdXNlcjpzM2NyZXQ=", PC_EINVAL); /* the separator is SP */
    header_bad("Basic dXNlcjpzM2NyZXQ", PC_EINVAL);   /* padding missing */
    header_bad("Basic dXNlcjpzM2NyZXR=", PC_EINVAL);  /* non-canonical */
    header_bad("Basic dXNl cjpzM2NyZXQ=", PC_EINVAL); /* a space inside */
    header_bad("Basic dXNlcjpzM2NyZXQ=,x", PC_EINVAL);
    header_bad("Basic dXNlcg==", PC_EINVAL); /* "user": no ':' */
    header_bad("Basic OnBhc3M=", PC_EINVAL); /* ":pass": no user */
    header_bad("Basic Og==", PC_EINVAL);     /* ":" */
    header_bad("Basicx dXNlcjpzM2NyZXQ=", PC_ENOTSUP);
    header_bad("Digest username=\"a\"", PC_ENOTSUP);
    header_bad("Negotiate YIIB", PC_ENOTSUP);
    header_bad("dXNlcjpzM2NyZXQ=", PC_EINVAL); /* no scheme */
    header_bad("\"Basic\" dXNlcjpzM2NyZXQ=", PC_EINVAL);

    /* control characters, NUL included, in the decoded credentials */
    static const char *ctl[] = {"us\ner:x", "user:p\rw", "user:\x7f", "\x1b[31m:x"};
    for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
        char *v = basic_of(ctl[i], strlen(ctl[i]));
        header_bad(v, PC_EINVAL);
        free(v);
    }
    char *v = basic_of("us\0er:x", 7);
    header_bad(v, PC_EINVAL);
    free(v);

    /* length caps: the whole header, and the credentials */
    char big[PC_AUTH_BASIC_MAX + 1];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    v = basic_of(big, (PC_AUTH_BASIC_MAX / 4) * 3 + 3); /* encodes to just over the cap */
    header_bad(v, PC_ETOOBIG);
    free(v);
    char *huge = malloc(PC_AUTH_HEADER_MAX + 16);
    assert_non_null(huge);
    memcpy(huge, "Bearer ", 7);
    memset(huge + 7, 'a', PC_AUTH_HEADER_MAX);
    huge[PC_AUTH_HEADER_MAX + 7] = '\0';
    header_bad(huge, PC_ETOOBIG);
    free(huge);
}

static void test_header_bearer(void **state)
{
    (void)state;
    static const char *tokens[] = {
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "abc",
        "a-b_c.d~e+f/g==",
    };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        char v[128];
        snprintf(v, sizeof(v), "%s %s", i == 1 ? "bearer" : "Bearer", tokens[i]);
        pc_auth_credentials c;
        assert_int_equal(pc_auth_header_parse(v, &c), 0);
        assert_int_equal(c.scheme, PC_AUTH_BEARER);
        assert_string_equal(c.token, tokens[i]);
        assert_null(c.user);
        pc_auth_credentials_clear(&c);
    }
    header_bad("Bearer", PC_EINVAL);
    header_bad("Bearer ", PC_EINVAL);
    header_bad("Bearer a b", PC_EINVAL);
    header_bad("Bearer =abc", PC_EINVAL);
    header_bad("Bearer a=b", PC_EINVAL);
    header_bad("Bearer a,b", PC_EINVAL);
    header_bad("Bearer a\"b", PC_EINVAL);
    header_bad("Bearer a\x01", PC_EINVAL);
    header_bad("Bearer realm=\"x\"", PC_EINVAL);
}

static void scope_ok(const char *s, pc_auth_type type, const char *name, unsigned actions)
{
    pc_auth_scope sc;
    int rc = pc_auth_scope_parse(s, strlen(s), &sc);
    if (rc != 0)
        fail_msg("\"%s\": rc %d (%s)", s, rc, pc_error_last());
    assert_int_equal(sc.type, type);
    assert_string_equal(sc.name, name);
    if (sc.actions != actions)
        fail_msg("\"%s\": actions %#x, want %#x", s, sc.actions, actions);
}

static void scope_bad(const char *s)
{
    pc_auth_scope sc;
    int rc = pc_auth_scope_parse(s, strlen(s), &sc);
    if (rc != PC_EINVAL)
        fail_msg("\"%s\": rc %d, want PC_EINVAL", s, rc);
    assert_int_equal(sc.actions, 0);
    assert_string_equal(sc.name, "");
}

static void test_scope_parse(void **state)
{
    (void)state;
    scope_ok("repository:samalba/my-app:pull,push", PC_AUTH_REPOSITORY, "samalba/my-app",
             PC_AUTH_PULL | PC_AUTH_PUSH);
    scope_ok("repository:library/nginx:pull", PC_AUTH_REPOSITORY, "library/nginx", PC_AUTH_PULL);
    scope_ok("repository:a:delete,push,pull", PC_AUTH_REPOSITORY, "a",
             PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE);
    scope_ok("repository:team/app:*", PC_AUTH_REPOSITORY, "team/app", PC_AUTH_ALL);
    scope_ok("registry:catalog:*", PC_AUTH_REGISTRY, "catalog", PC_AUTH_ALL);
    scope_ok("repository(plugin):team/plug:pull", PC_AUTH_REPOSITORY, "team/plug", PC_AUTH_PULL);
    scope_ok("repository:docker.io/library/nginx:pull", PC_AUTH_REPOSITORY,
             "docker.io/library/nginx", PC_AUTH_PULL);
    /* well-formed unknown actions grant nothing; empty actions are allowed */
    scope_ok("repository:a/b:pull,metadata,fly", PC_AUTH_REPOSITORY, "a/b", PC_AUTH_PULL);
    scope_ok("repository:a/b:", PC_AUTH_REPOSITORY, "a/b", 0);
    scope_ok("repository:a/b:pull,,push", PC_AUTH_REPOSITORY, "a/b", PC_AUTH_PULL | PC_AUTH_PUSH);
    scope_ok("repository:a/b:pu*", PC_AUTH_REPOSITORY, "a/b", 0);

    scope_bad("");
    scope_bad(":");
    scope_bad("::");
    scope_bad("repository");
    scope_bad("repository:team/app");
    scope_bad("repository::pull");
    scope_bad("repo:team/app:pull");
    scope_bad("Repository:team/app:pull");
    scope_bad("repository():team/app:pull");
    scope_bad("repository(plugin:team/app:pull");
    scope_bad("repository(plugin)x:team/app:pull");
    scope_bad("registry:other:*");
    scope_bad("registry::*");
    scope_bad("repository:Team/App:pull");
    scope_bad("repository:team%2Fapp:pull");
    scope_bad("repository:team//app:pull");
    scope_bad("repository:team/../app:pull");
    scope_bad("repository:./app:pull");
    scope_bad("repository:/team/app:pull");
    scope_bad("repository:team/app/:pull");
    scope_bad("repository:localhost:5000/app:pull"); /* a host:port: never ours */
    scope_bad("repository:team/app:PULL");
    scope_bad("repository:team/app:pull;push");
    scope_bad("repository:team/app:pull push");
    scope_ok("repository:team/app:pull,", PC_AUTH_REPOSITORY, "team/app", PC_AUTH_PULL);
    scope_bad("repository: team/app:pull");

    char name[400], s[500];
    memset(name, 'a', sizeof(name));
    name[256] = '\0';
    snprintf(s, sizeof(s), "repository:%s:pull", name);
    scope_bad(s); /* 256 characters: one too many */
    name[255] = '\0';
    snprintf(s, sizeof(s), "repository:%s:pull", name);
    scope_ok(s, PC_AUTH_REPOSITORY, name, PC_AUTH_PULL);
}

static void test_scopes_parse(void **state)
{
    (void)state;
    pc_auth_scope *v = NULL;
    size_t n = 0;
    const char *values[] = {
        "repository:a/b:pull",
        "",
        " repository:c:push  registry:catalog:*",
        "repository:a/b:push",
    };
    assert_int_equal(pc_auth_scopes_parse(values, 4, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "a/b");
    assert_int_equal(v[0].actions, PC_AUTH_PULL | PC_AUTH_PUSH); /* merged */
    assert_string_equal(v[1].name, "c");
    assert_int_equal(v[2].type, PC_AUTH_REGISTRY);
    free(v);

    /* no scope at all: a token for nothing */
    const char *empty[] = {"", "   "};
    assert_int_equal(pc_auth_scopes_parse(empty, 2, &v, &n), 0);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(pc_auth_scopes_parse(NULL, 0, &v, &n), 0);

    /* one bad scope spoils the request */
    const char *bad[] = {"repository:a:pull", "repository:A:pull"};
    assert_int_equal(pc_auth_scopes_parse(bad, 2, &v, &n), PC_EINVAL);
    assert_null(v);
    assert_int_equal(n, 0);

    /* at most PC_AUTH_SCOPES_MAX resources; repeats of one do not count */
    static char buf[PC_AUTH_SCOPES_MAX + 1][64];
    const char *many[PC_AUTH_SCOPES_MAX + 1];
    for (size_t i = 0; i <= PC_AUTH_SCOPES_MAX; i++) {
        snprintf(buf[i], sizeof(buf[i]), "repository:r%zu:pull", i);
        many[i] = buf[i];
    }
    assert_int_equal(pc_auth_scopes_parse(many, PC_AUTH_SCOPES_MAX, &v, &n), 0);
    assert_int_equal(n, PC_AUTH_SCOPES_MAX);
    free(v);
    assert_int_equal(pc_auth_scopes_parse(many, PC_AUTH_SCOPES_MAX + 1, &v, &n), PC_ELIMIT);
    assert_null(v);
    const char *same[100];
    for (size_t i = 0; i < 100; i++)
        same[i] = "repository:x:pull";
    assert_int_equal(pc_auth_scopes_parse(same, 100, &v, &n), 0);
    assert_int_equal(n, 1);
    free(v);
}

static void test_scope_format(void **state)
{
    (void)state;
    char buf[300];
    assert_int_equal(pc_auth_actions_format(0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(pc_auth_actions_format(PC_AUTH_PUSH | PC_AUTH_PULL, buf, sizeof(buf)), 9);
    assert_string_equal(buf, "pull,push");
    pc_auth_actions_format(PC_AUTH_ALL | PC_AUTH_DELETE | PC_AUTH_PULL, buf, sizeof(buf));
    assert_string_equal(buf, "pull,delete,*");
    assert_int_equal(pc_auth_actions_format(PC_AUTH_PULL | PC_AUTH_PUSH, buf, 9), PC_ETOOBIG);

    pc_auth_scope s = {PC_AUTH_REPOSITORY, "team/app", PC_AUTH_PULL | PC_AUTH_PUSH};
    int n = pc_auth_scope_format(&s, buf, sizeof(buf));
    assert_string_equal(buf, "repository:team/app:pull,push");
    assert_int_equal(n, (int)strlen(buf));
    pc_auth_scope back;
    assert_int_equal(pc_auth_scope_parse(buf, (size_t)n, &back), 0);
    assert_memory_equal(&back, &s, sizeof(s));
    assert_int_equal(pc_auth_scope_format(&s, buf, 10), PC_ETOOBIG);

    pc_auth_scope cat = {PC_AUTH_REGISTRY, "catalog", PC_AUTH_ALL};
    pc_auth_scope_format(&cat, buf, sizeof(buf));
    assert_string_equal(buf, "registry:catalog:*");
    pc_auth_scope bad = {PC_AUTH_REPOSITORY, "Team", PC_AUTH_PULL};
    assert_int_equal(pc_auth_scope_format(&bad, buf, sizeof(buf)), PC_EINVAL);
    pc_auth_scope badtype = {7, "team", PC_AUTH_PULL};
    assert_int_equal(pc_auth_scope_format(&badtype, buf, sizeof(buf)), PC_EINVAL);
}

static void test_actions_allow(void **state)
{
    (void)state;
    assert_true(pc_auth_actions_allow(PC_AUTH_PULL, PC_AUTH_PULL));
    assert_true(pc_auth_actions_allow(PC_AUTH_PULL | PC_AUTH_PUSH, PC_AUTH_PUSH));
    assert_true(pc_auth_actions_allow(PC_AUTH_PULL | PC_AUTH_PUSH, PC_AUTH_PULL | PC_AUTH_PUSH));
    assert_false(pc_auth_actions_allow(PC_AUTH_PULL, PC_AUTH_PUSH));
    assert_false(pc_auth_actions_allow(PC_AUTH_PULL, PC_AUTH_PULL | PC_AUTH_PUSH));
    assert_false(pc_auth_actions_allow(0, PC_AUTH_PULL));
    assert_true(pc_auth_actions_allow(PC_AUTH_ALL, PC_AUTH_DELETE | PC_AUTH_PUSH));
    assert_false(pc_auth_actions_allow(PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE, PC_AUTH_ALL));
}

static void test_challenge_bearer(void **state)
{
    (void)state;
    char *v = NULL;
    pc_auth_scope sc[2] = {{PC_AUTH_REPOSITORY, "samalba/my-app", PC_AUTH_PULL | PC_AUTH_PUSH},
                           {PC_AUTH_REGISTRY, "catalog", PC_AUTH_ALL}};
    assert_int_equal(
        pc_auth_challenge_bearer(&v, "https://auth.example/token", "registry.example", sc, 1, NULL),
        0);
    assert_string_equal(v, "Bearer realm=\"https://auth.example/token\","
                           "service=\"registry.example\","
                           "scope=\"repository:samalba/my-app:pull,push\"");
    pc_auth_challenge ch;
    assert_int_equal(pc_auth_challenge_parse(v, &ch), 0);
    assert_string_equal(ch.scheme, "Bearer");
    assert_string_equal(ch.realm, "https://auth.example/token");
    assert_string_equal(ch.service, "registry.example");
    assert_string_equal(ch.scope, "repository:samalba/my-app:pull,push");
    free(v);

    /* several scopes: one parameter, space-separated; an error code */
    assert_int_equal(
        pc_auth_challenge_bearer(&v, "https://a/t", "svc", sc, 2, "insufficient_scope"), 0);
    assert_string_equal(v, "Bearer realm=\"https://a/t\",service=\"svc\","
                           "scope=\"repository:samalba/my-app:pull,push registry:catalog:*\","
                           "error=\"insufficient_scope\"");
    assert_int_equal(pc_auth_challenge_parse(v, &ch), 0);
    assert_string_equal(ch.scope, "repository:samalba/my-app:pull,push registry:catalog:*");
    assert_string_equal(ch.error, "insufficient_scope");
    free(v);

    /* no service, no scope */
    assert_int_equal(
        pc_auth_challenge_bearer(&v, "http://127.0.0.1:5000/token", NULL, NULL, 0, NULL), 0);
    assert_string_equal(v, "Bearer realm=\"http://127.0.0.1:5000/token\"");
    free(v);

    /* quotes and backslashes are escaped, and read back as they were */
    assert_int_equal(pc_auth_challenge_bearer(&v, "https://a/t?x=\"y\"", "a\\b\"c", NULL, 0, NULL),
                     0);
    assert_string_equal(v, "Bearer realm=\"https://a/t?x=\\\"y\\\"\",service=\"a\\\\b\\\"c\"");
    assert_int_equal(pc_auth_challenge_parse(v, &ch), 0);
    assert_string_equal(ch.realm, "https://a/t?x=\"y\"");
    assert_string_equal(ch.service, "a\\b\"c");
    free(v);

    /* header injection and missing realms are refused */
    v = (char *)"x";
    assert_int_equal(
        pc_auth_challenge_bearer(&v, "https://a/t\r\nSet-Cookie: x=y", "s", NULL, 0, NULL),
        PC_EINVAL);
    assert_null(v);
    assert_int_equal(pc_auth_challenge_bearer(&v, "https://a/t", "s\n", NULL, 0, NULL), PC_EINVAL);
    assert_int_equal(pc_auth_challenge_bearer(&v, "https://a/t", "s", NULL, 0, "x\x7f"), PC_EINVAL);
    assert_int_equal(pc_auth_challenge_bearer(&v, "", "s", NULL, 0, NULL), PC_EINVAL);
    assert_int_equal(pc_auth_challenge_bearer(&v, NULL, "s", NULL, 0, NULL), PC_EINVAL);
    pc_auth_scope badsc = {PC_AUTH_REPOSITORY, "a\"b", PC_AUTH_PULL};
    assert_int_equal(pc_auth_challenge_bearer(&v, "https://a/t", "s", &badsc, 1, NULL), PC_EINVAL);
    assert_null(v);
}

static void test_challenge_basic(void **state)
{
    (void)state;
    char *v = NULL;
    assert_int_equal(pc_auth_challenge_basic(&v, "pullcache"), 0);
    assert_string_equal(v, "Basic realm=\"pullcache\"");
    pc_auth_challenge ch;
    assert_int_equal(pc_auth_challenge_parse(v, &ch), 0);
    assert_string_equal(ch.scheme, "Basic");
    assert_string_equal(ch.realm, "pullcache");
    free(v);
    assert_int_equal(pc_auth_challenge_basic(&v, "a\"b"), 0);
    assert_string_equal(v, "Basic realm=\"a\\\"b\"");
    free(v);
    assert_int_equal(pc_auth_challenge_basic(&v, "a\rb"), PC_EINVAL);
    assert_int_equal(pc_auth_challenge_basic(&v, ""), PC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_anonymous), cmocka_unit_test(test_header_basic),
        cmocka_unit_test(test_header_basic_bad), cmocka_unit_test(test_header_bearer),
        cmocka_unit_test(test_scope_parse),      cmocka_unit_test(test_scopes_parse),
        cmocka_unit_test(test_scope_format),     cmocka_unit_test(test_actions_allow),
        cmocka_unit_test(test_challenge_bearer), cmocka_unit_test(test_challenge_basic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
