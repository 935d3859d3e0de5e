/*
 * test_auth_token.c - the pure parts of the token service (auth_token.c):
 * reading fields of an application/x-www-form-urlencoded body, as the
 * OAuth2 password grant of POST /token sends them. The rest (challenges,
 * decisions, tokens, throttling) is driven end to end by
 * tests/e2e/test_auth.sh.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

static int get(const char *body, const char *key, char *out, size_t size)
{
    return pc_form_value(body, strlen(body), key, out, size);
}

static void form_fields(void **state)
{
    (void)state;
    char v[64];
    const char *b = "grant_type=password&username=al%69ce&password=a+b%26c%3Dd&scope=";
    assert_int_equal(get(b, "grant_type", v, sizeof(v)), 0);
    assert_string_equal(v, "password");
    assert_int_equal(get(b, "username", v, sizeof(v)), 0);
    assert_string_equal(v, "alice");
    assert_int_equal(get(b, "password", v, sizeof(v)), 0);
    assert_string_equal(v, "a b&c=d"); /* '+' is a space; %26 and %3D do not split */
    assert_int_equal(get(b, "scope", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    assert_int_equal(get(b, "service", v, sizeof(v)), PC_ENOTFOUND);
    /* a key is matched whole, never as a prefix or suffix */
    assert_int_equal(get("xusername=a&user=b", "username", v, sizeof(v)), PC_ENOTFOUND);
    assert_int_equal(get("usernamex=a&user=b", "user", v, sizeof(v)), 0);
    assert_string_equal(v, "b");
    /* the first of repeated fields */
    assert_int_equal(get("a=1&a=2", "a", v, sizeof(v)), 0);
    assert_string_equal(v, "1");
    /* a field without '=' is skipped */
    assert_int_equal(get("a&a=3", "a", v, sizeof(v)), 0);
    assert_string_equal(v, "3");
}

static void form_refusals(void **state)
{
    (void)state;
    char v[8];
    assert_int_equal(get("a=%", "a", v, sizeof(v)), PC_EINVAL);
    assert_int_equal(get("a=%4", "a", v, sizeof(v)), PC_EINVAL);
    assert_int_equal(get("a=%zz", "a", v, sizeof(v)), PC_EINVAL);
    assert_int_equal(get("a=x%00y", "a", v, sizeof(v)), PC_EINVAL); /* no NUL inside */
    assert_int_equal(get("a=1234567", "a", v, sizeof(v)), 0);
    assert_int_equal(get("a=12345678", "a", v, sizeof(v)), PC_ETOOBIG);
    /* the length bounds the body: nothing past it is read */
    assert_int_equal(pc_form_value("a=1&b=2", 3, "b", v, sizeof(v)), PC_ENOTFOUND);
    assert_int_equal(pc_form_value("a=12", 3, "a", v, sizeof(v)), 0);
    assert_string_equal(v, "1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(form_fields),
        cmocka_unit_test(form_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
