/*
 * test_toml.c - unit tests for toml.c: the shapes containerd's config.toml,
 * hosts.toml and containers-registries.conf use (quoted table names,
 * arrays of tables, dotted keys, inline tables, multi-line arrays with
 * comments), every string form and escape, numbers, dates kept as text, and
 * bad input refused with its line: duplicate keys and tables, a value
 * extended by a later line, unterminated strings and arrays, bad escapes,
 * control characters, trailing garbage, overlong nesting, 64-bit overflow.
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
#include <unistd.h>

#include "toml.h"

/* Parse text; its JSON (compact, keys in order) must be want. */
static void ok(const char *text, const char *want)
{
    json_t *doc = NULL;
    char err[300];
    int rc = pc_toml_parse(text, strlen(text), &doc, err, sizeof(err));
    if (rc)
        fail_msg("refused: %s\n--- input:\n%s", err, text);
    char *got = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (strcmp(got, want) != 0)
        fail_msg("got  %s\nwant %s\n--- input:\n%s", got, want, text);
    free(got);
    json_decref(doc);
}

/* text must be refused with a message containing want. */
static void bad_len(const char *text, size_t len, const char *want)
{
    json_t *doc = (json_t *)1;
    char err[300];
    assert_int_equal(pc_toml_parse(text, len, &doc, err, sizeof(err)), -1);
    assert_null(doc);
    if (!strstr(err, want))
        fail_msg("message '%s' lacks '%s' (input: %s)", err, want, text);
}

static void bad(const char *text, const char *want)
{
    bad_len(text, strlen(text), want);
}

static void test_runtime_files(void **state)
{
    (void)state;
    ok("version = 2\n"
       "\n"
       "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
       "  config_path = \"/etc/containerd/certs.d\"\n",
       "{\"version\":2,\"plugins\":{\"io.containerd.grpc.v1.cri\":{\"registry\":"
       "{\"config_path\":\"/etc/containerd/certs.d\"}}}}");
    ok("# hosts.toml\n"
       "server = \"https://registry-1.docker.io\"\n"
       "\n"
       "[host.\"http://10.0.0.5:5000\"]\n"
       "  capabilities = [\"pull\", \"resolve\"]  # no push\n"
       "  skip_verify = true\n"
       "[host.'https://m2']\n"
       "  capabilities = [\n"
       "    \"pull\", # a comment in an array\n"
       "    \"resolve\",\n"
       "  ]\n",
       "{\"server\":\"https://registry-1.docker.io\",\"host\":{\"http://10.0.0.5:5000\":"
       "{\"capabilities\":[\"pull\",\"resolve\"],\"skip_verify\":true},\"https://m2\":"
       "{\"capabilities\":[\"pull\",\"resolve\"]}}}");
    ok("unqualified-search-registries = [\"docker.io\"]\r\n"
       "[[registry]]\r\n"
       "prefix = \"docker.io\"\r\n"
       "location = \"docker.io\"\r\n"
       "[[registry.mirror]]\r\n"
       "location = \"10.0.0.5:5000/docker.io\"\r\n"
       "insecure = true\r\n"
       "[[registry.mirror]]\r\n"
       "location = \"m2/docker.io\"\r\n"
       "[[registry]]\r\n"
       "location = \"quay.io\"\r\n",
       "{\"unqualified-search-registries\":[\"docker.io\"],\"registry\":[{\"prefix\":\"docker.io\","
       "\"location\":\"docker.io\",\"mirror\":[{\"location\":\"10.0.0.5:5000/docker.io\","
       "\"insecure\":true},{\"location\":\"m2/docker.io\"}]},{\"location\":\"quay.io\"}]}");
    /* dotted keys, inline tables, a [sub] table of the last array element */
    ok("a.b.c = 1\n"
       "a . \"d e\" = { x = 1, y = [1, 2], z = { w = false } }\n"
       "[[t]]\n"
       "n = 1\n"
       "[t.sub]\n"
       "m = 2\n",
       "{\"a\":{\"b\":{\"c\":1},\"d e\":{\"x\":1,\"y\":[1,2],\"z\":{\"w\":false}}},"
       "\"t\":[{\"n\":1,\"sub\":{\"m\":2}}]}");
    /* an implicit table may be headed once later; a BOM at the start */
    ok("\xef\xbb\xbf[a.b]\nx = 1\n[a]\ny = 2\n", "{\"a\":{\"b\":{\"x\":1},\"y\":2}}");
    ok("", "{}");
    ok("# only a comment", "{}");
}

static void test_strings(void **state)
{
    (void)state;
    ok("s = \"tab\\there \\\"q\\\" \\\\ \\u00e9 \\U0001F600\"",
       "{\"s\":\"tab\\there \\\"q\\\" \\\\ \xc3\xa9 \xf0\x9f\x98\x80\"}");
    ok("s = 'C:\\path\\no escapes'", "{\"s\":\"C:\\\\path\\\\no escapes\"}");
    ok("s = \"\"\"\nline1\nline2\"\"\"", "{\"s\":\"line1\\nline2\"}");
    ok("s = \"\"\"a \\\n    b\"\"\"", "{\"s\":\"a b\"}");
    ok("s = '''\nraw \\n\n'''", "{\"s\":\"raw \\\\n\\n\"}");
    ok("s = \"\"\"two \"\" quotes\"\"\"\"\"", "{\"s\":\"two \\\"\\\" quotes\\\"\\\"\"}");
    ok("\"quoted key\" = 1\n'lit.key' = 2", "{\"quoted key\":1,\"lit.key\":2}");
    ok("e = \"\"", "{\"e\":\"\"}");
}

static void test_numbers(void **state)
{
    (void)state;
    ok("a = 0\nb = -17\nc = +5\nd = 1_000\ne = 0xff\nf = 0o17\ng = 0b101",
       "{\"a\":0,\"b\":-17,\"c\":5,\"d\":1000,\"e\":255,\"f\":15,\"g\":5}");
    ok("i = 9223372036854775807\nj = -9223372036854775808",
       "{\"i\":9223372036854775807,\"j\":-9223372036854775808}");
    ok("f = 1.5\ng = -2e3\nh = 6.25E-1", "{\"f\":1.5,\"g\":-2000.0,\"h\":0.625}");
    ok("d = 1979-05-27T07:32:00Z\nt = 07:32:00\ne = 1979-05-27 07:32:00",
       "{\"d\":\"1979-05-27T07:32:00Z\",\"t\":\"07:32:00\",\"e\":\"1979-05-27 07:32:00\"}");
    ok("t = true\nf = false", "{\"t\":true,\"f\":false}");
}

static void test_bad(void **state)
{
    (void)state;
    bad("a = 1\na = 2", "line 2: the key 'a' is defined twice");
    bad("[t]\n[t]", "line 2: the table [t] is defined twice");
    bad("a = {x = 1}\n[a]", "line 2: [a]: 'a' is already a value");
    bad("a = {x = 1}\na.y = 2", "'a' is already a value, not a table");
    bad("a = [1]\n[[a]]", "[[a]]: 'a' is already a value or a table");
    bad("[t]\n[[t]]", "[[t]]: 't' is already a value or a table");
    bad("a = 1\na.b = 2", "'a' is already a value, not a table");
    bad("s = \"open", "line 1: an unterminated string");
    bad("s = \"\"\"open\n", "an unterminated string");
    bad("s = \"a\nb\"", "a newline in a one-line string");
    bad("s = \"\\x\"", "an unknown escape '\\x'");
    bad("s = \"\\u12\"", "\\u wants 4 hex digits");
    bad("s = \"\\u0000\"", "not a character this reader keeps");
    bad("s = \"\\ud800\"", "not a character this reader keeps");
    bad_len("s = \"a\x01\"", 8, "a control character in a string");
    bad_len("k = 1 # c\x7f", 10, "a control character in a comment");
    bad_len("a = 1\n\0", 7, "line 2: a NUL byte");
    bad_len("a = 1\0", 6, "line 1: a NUL byte");
    bad_len("a = 1", 4, "a value is missing");
    bad("s = \"\xff\"", "not UTF-8");
    bad("a = [1, 2", "an unterminated array");
    bad("a = [1 2]", "',' or ']' wanted in an array");
    bad("a = {x = 1,}", "cannot start a key");
    bad("a = {x = 1\n}", "',' or '}' wanted in an inline table");
    bad("a = 1 b = 2", "unexpected 'b' after the value");
    bad("a 1", "'=' wanted after the key 'a'");
    bad("= 1", "'=' cannot start a key");
    bad("a =", "a value is missing");
    bad("a = @", "'@' cannot start a value");
    bad("[t", "']' wanted after the table name");
    bad("[[t]", "']]' wanted after the table name");
    bad("[t] x", "unexpected 'x'");
    bad("a = 01", "no leading zeros");
    bad("a = 1__0", "'_' only between digits");
    bad("a = _1", "'_' only between digits");
    bad("a = 9223372036854775808", "not a 64-bit integer");
    bad("a = 0x", "is not a number");
    bad("a = 0o8", "is not a number");
    bad("a = -0x1", "no sign before 0x");
    bad("a = 1.", "digits on both sides");
    bad("a = .5", "digits on both sides");
    bad("a = inf", "inf and nan");
    bad("a = truex", "is not a number");
    bad("a = 1\r", "a carriage return without a line feed");
    bad("\"\"\"k\"\"\" = 1", "a multi-line string cannot be a key");

    /* nesting: at the limit fine, one more refused */
    char deep[2 * PC_TOML_MAX_DEPTH + 16];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "a = ");
    for (int i = 0; i < PC_TOML_MAX_DEPTH + 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < PC_TOML_MAX_DEPTH + 1; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    json_t *doc = NULL;
    char err[300];
    assert_int_equal(pc_toml_parse(deep, n, &doc, err, sizeof(err)), 0);
    json_decref(doc);
    memmove(deep + 5, deep + 4, n - 3);
    deep[4] = '[';
    deep[n + 1] = ']';
    deep[n + 2] = '\0';
    bad(deep, "nested more than");
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/test_toml.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "x = 1\ny = [\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    json_t *doc = NULL;
    char err[600];
    assert_int_equal(pc_toml_load(path, &doc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    if (!strstr(err, "line 3: an unterminated array"))
        fail_msg("%s", err);
    unlink(path);
    assert_int_equal(pc_toml_load(path, &doc, err, sizeof(err)), 1);
    assert_null(doc);
    assert_string_equal(err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_files), cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),       cmocka_unit_test(test_bad),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
