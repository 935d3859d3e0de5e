/*
 * test_auth_htpasswd.c - unit tests for auth_htpasswd.c: bcrypt hashes made at test
 * time with libxcrypt ($2b$ and $2y$) and one line written by Apache's
 * `htpasswd -nbB`; comments, blank lines and CRLF; every weaker hash
 * refused with a message that says what to do; duplicates and reserved
 * names; wrong passwords and unknown users (which still cost a bcrypt
 * computation); references and concurrent use.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_htpasswd.h"

/* Written by `htpasswd -nbB -C 5 fixture 'fix pass!'` (Apache 2.4). */
#define FIXTURE_LINE "fixture:$2y$05$ZfqtD/kqw.Fp5rCuwlc/hu1Sm/4QPABrvyF4En387sxJqiPrussH6"
#define FIXTURE_PASS "fix pass!"

/* A bcrypt hash of password made now: prefix "$2b$" or "$2y$". */
static void make_hash(char *out, size_t size, const char *prefix, unsigned cost,
                      const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data data;
    memset(&data, 0, sizeof(data));
    assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof(setting)));
    const char *h = crypt_rn(password, setting, &data, sizeof(data));
    assert_non_null(h);
    assert_int_equal(strlen(h), 60);
    snprintf(out, size, "%s", h);
}

static pc_htpasswd *parse_ok(const char *text)
{
    pc_htpasswd *h = NULL;
    int rc = pc_htpasswd_parse(&h, text, strlen(text), "test");
    if (rc != 0)
        fail_msg("rc %d: %s", rc, pc_error_last());
    return h;
}

static void parse_bad(const char *text, const char *msg_has)
{
    pc_htpasswd *h = (pc_htpasswd *)1;
    pc_error_clear();
    int rc = pc_htpasswd_parse(&h, text, strlen(text), "users.htpasswd");
    assert_int_equal(rc, PC_EINVAL);
    assert_null(h);
    if (!strstr(pc_error_last(), msg_has))
        fail_msg("message \"%s\" lacks \"%s\"", pc_error_last(), msg_has);
}

static void test_verify(void **state)
{
    (void)state;
    char a[64], b[64], text[512];
    make_hash(a, sizeof(a), "$2b$", 5, "alice-secret");
    make_hash(b, sizeof(b), "$2y$", 4,
              "b\xc3\xb6"
              "b pass");
    snprintf(text, sizeof(text),
             "# pullcache users\n"
             "\n"
             "alice:%s\r\n"
             "   \t\n"
             "  # indented comment\n"
             "bob:%s\n" FIXTURE_LINE, /* no newline at the end */
             a, b);
    pc_htpasswd *h = parse_ok(text);
    assert_int_equal(pc_htpasswd_count(h), 3);
    assert_true(pc_htpasswd_verify(h, "alice", "alice-secret"));
    assert_true(pc_htpasswd_verify(h, "bob",
                                   "b\xc3\xb6"
                                   "b pass"));
    assert_true(pc_htpasswd_verify(h, "fixture", FIXTURE_PASS));

    /* wrong passwords */
    assert_false(pc_htpasswd_verify(h, "alice", "alice-secreT"));
    assert_false(pc_htpasswd_verify(h, "alice", "alice-secret "));
    assert_false(pc_htpasswd_verify(h, "alice", ""));
    assert_false(pc_htpasswd_verify(h, "alice",
                                    "b\xc3\xb6"
                                    "b pass"));
    assert_false(pc_htpasswd_verify(h, "fixture", "fix pass"));
    /* user names are case-sensitive; unknown users never pass */
    assert_false(pc_htpasswd_verify(h, "Alice", "alice-secret"));
    assert_false(pc_htpasswd_verify(h, "mallory", "alice-secret"));
    assert_false(pc_htpasswd_verify(h, "", ""));
    assert_false(pc_htpasswd_verify(h, NULL, "x"));
    assert_false(pc_htpasswd_verify(h, "alice", NULL));
    assert_false(pc_htpasswd_verify(NULL, "alice", "alice-secret"));
    /* a hash is not a password */
    assert_false(pc_htpasswd_verify(h, "alice", a));

    assert_true(pc_htpasswd_has_user(h, "alice"));
    assert_true(pc_htpasswd_has_user(h, "fixture"));
    assert_false(pc_htpasswd_has_user(h, "mallory"));
    assert_false(pc_htpasswd_has_user(h, NULL));
    pc_htpasswd_free(h);
}

static void test_empty(void **state)
{
    (void)state;
    pc_htpasswd *h = parse_ok("# nobody yet\n\n");
    assert_int_equal(pc_htpasswd_count(h), 0);
    assert_false(pc_htpasswd_verify(h, "anyone", ""));
    pc_htpasswd_free(h);
    h = parse_ok("");
    assert_int_equal(pc_htpasswd_count(h), 0);
    pc_htpasswd_free(h);
}

static void test_weak_hashes(void **state)
{
    (void)state;
    /* lines as `htpasswd -nbm`, `-nbs`, `-nbd` and `-nbp` write them */
    parse_bad("# users\nmd5user:$apr1$M3WHKGi0$bg33ATuu7SOJiJVAyJiMt/\n",
              "users.htpasswd:2: user \"md5user\" has an MD5 ($apr1$) hash");
    parse_bad("shauser:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n", "a SHA-1 ({SHA}) hash");
    parse_bad("desuser:8PxDvux34iCEo\n", "user \"desuser\" has a DES crypt hash");
    parse_bad("plainuser:pw\n", "a plain-text or unknown hash");
    parse_bad("u:$1$abcdefgh$0123456789012345678901\n", "MD5-crypt");
    parse_bad("u:$5$rounds=5000$abc$def\n", "SHA-256-crypt");
    parse_bad("u:$6$abc$def\n", "SHA-512-crypt");
    parse_bad("u:$y$j9T$abc$def\n", "yescrypt");
    parse_bad("u:\n", "plain-text");
    /* bcrypt, but not a well-formed one */
    parse_bad("u:$2x$05$ZfqtD/kqw.Fp5rCuwlc/hu1Sm/4QPABrvyF4En387sxJqiPrussH6\n",
              "malformed bcrypt");
    parse_bad("u:$2y$05$ZfqtD/kqw.Fp5rCuwlc/hu1Sm/4QPABrvyF4En387sxJqiPrussH\n",
              "malformed bcrypt");
    parse_bad("u:$2y$05$ZfqtD/kqw.Fp5rCuwlc/hu1Sm/4QPABrvyF4En387sxJqiPrussH66\n",
              "malformed bcrypt");
    parse_bad("u:$2y$03$ZfqtD/kqw.Fp5rCuwlc/hu1Sm/4QPABrvyF4En387sxJqiPrussH6\n",
              "malformed bcrypt");
    parse_bad("u:$2y$32$ZfqtD/kqw.Fp5rCuwlc/hu1Sm/4QPABrvyF4En387sxJqiPrussH6\n",
              "malformed bcrypt");
    parse_bad("u:$2y$05$ZfqtD/kqw.Fp5rCuwlc/hu1Sm/4QPABrvyF4En387sxJqiPruss!6\n",
              "malformed bcrypt");
    /* the message says how to fix it */
    parse_bad("carol:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n", "htpasswd -B users.htpasswd carol");
    /* one weak line spoils the file, wherever it is */
    char a[64], text[512];
    make_hash(a, sizeof(a), "$2b$", 4, "x");
    snprintf(text, sizeof(text), "alice:%s\nplainuser:pw\nbob:%s\n", a, a);
    parse_bad(text, "users.htpasswd:2:");
}

static void test_bad_lines(void **state)
{
    (void)state;
    char a[64], text[512];
    make_hash(a, sizeof(a), "$2b$", 4, "x");
    snprintf(text, sizeof(text), "alice:%s\nbob:%s\nalice:%s\n", a, a, a);
    parse_bad(text, "users.htpasswd:3: user \"alice\" again (first on line 1)");
    snprintf(text, sizeof(text), "just-a-name\n");
    parse_bad(text, "users.htpasswd:1: not \"user:hash\"");
    snprintf(text, sizeof(text), ":%s\n", a);
    parse_bad(text, "empty user name");
    snprintf(text, sizeof(text), "al ice:%s\n", a);
    parse_bad(text, "space or control character");
    snprintf(text, sizeof(text), "anonymous:%s\n", a);
    parse_bad(text, "reserved");
    snprintf(text, sizeof(text), "authenticated:%s\n", a);
    parse_bad(text, "reserved");
    snprintf(text, sizeof(text), "@admins:%s\n", a);
    parse_bad(text, "reserved");
    char longname[300];
    memset(longname, 'u', 256);
    longname[256] = '\0';
    snprintf(text, sizeof(text), "%s:%s\n", longname, a);
    parse_bad(text, "longer than 255");

    pc_htpasswd *h = (pc_htpasswd *)1;
    static const char nul[] = "alice:x\0\n";
    assert_int_equal(pc_htpasswd_parse(&h, nul, sizeof(nul) - 1, "f"), PC_EINVAL);
    assert_null(h);
    assert_non_null(strstr(pc_error_last(), "NUL"));
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pc-htpasswd-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char a[64], text[256];
    make_hash(a, sizeof(a), "$2y$", 4, "pw");
    int n = snprintf(text, sizeof(text), "dave:%s\n", a);
    assert_int_equal(write(fd, text, (size_t)n), n);
    close(fd);

    pc_htpasswd *h = NULL;
    assert_int_equal(pc_htpasswd_load(&h, path), 0);
    assert_true(pc_htpasswd_verify(h, "dave", "pw"));

    /* reload: a new object; the old one stays usable while referenced */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "erin:%s\n", a);
    fclose(f);
    pc_htpasswd *h2 = NULL;
    assert_int_equal(pc_htpasswd_load(&h2, path), 0);
    assert_true(pc_htpasswd_verify(h2, "erin", "pw"));
    assert_false(pc_htpasswd_verify(h2, "dave", "pw"));
    pc_htpasswd *held = pc_htpasswd_ref(h);
    pc_htpasswd_free(h); /* the server dropped it */
    assert_true(pc_htpasswd_verify(held, "dave", "pw"));
    pc_htpasswd_free(held);
    pc_htpasswd_free(h2);

    /* a weak file named in the message */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "frank:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n");
    fclose(f);
    h = (pc_htpasswd *)1;
    assert_int_equal(pc_htpasswd_load(&h, path), PC_EINVAL);
    assert_null(h);
    assert_non_null(strstr(pc_error_last(), path));
    unlink(path);

    assert_int_equal(pc_htpasswd_load(&h, path), PC_ENOTFOUND);
    assert_int_equal(pc_htpasswd_load(&h, "/tmp"), PC_ERR); /* a directory */
    pc_htpasswd_free(NULL);
}

/* The bcrypt work verify(user, pw) does on h; it says `want`. */
static uint64_t work_of(const pc_htpasswd *h, const char *user, const char *pw, bool want)
{
    uint64_t before = pc_htpasswd_work(h);
    assert_int_equal(pc_htpasswd_verify(h, user, pw), want);
    return pc_htpasswd_work(h) - before;
}

/* An unknown user costs a bcrypt computation of the file's highest cost,
 * as a user with that cost does, so that the time of an answer does not
 * tell whether the user exists. Measured in bcrypt work (2^cost per
 * computation), not in time. */
static void test_unknown_user_cost(void **state)
{
    (void)state;
    char a[64], b[64], text[256];
    make_hash(a, sizeof(a), "$2b$", 4, "pw");
    make_hash(b, sizeof(b), "$2y$", 6, "pw2");
    snprintf(text, sizeof(text), "alice:%s\nbob:%s\n", a, b);
    pc_htpasswd *h = parse_ok(text);
    assert_int_equal(pc_htpasswd_work(h), 0);
    assert_int_equal(work_of(h, "alice", "pw", true), 1u << 4);
    assert_int_equal(work_of(h, "alice", "wrong", false), 1u << 4);
    assert_int_equal(work_of(h, "bob", "wrong", false), 1u << 6);
    assert_int_equal(work_of(h, "nobody", "wrong", false), 1u << 6); /* the highest cost */
    assert_int_equal(work_of(h, "nobody", "", false), 1u << 6);
    assert_int_equal(work_of(h, "", "pw", false), 1u << 6);
    assert_int_equal(work_of(h, "alice", NULL, false), 0); /* no argument: nothing to check */
    pc_htpasswd_free(h);
    /* no users: the default cost, 10 */
    h = parse_ok("# nobody yet\n");
    assert_int_equal(work_of(h, "nobody", "pw", false), 1u << 10);
    pc_htpasswd_free(h);
    assert_int_equal(pc_htpasswd_work(NULL), 0);
}

typedef struct {
    pc_htpasswd *h;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < 20; i++) {
        if (pc_htpasswd_verify(w->h, "alice", "pw") && !pc_htpasswd_verify(w->h, "alice", "no"))
            w->ok++;
    }
    pc_htpasswd_free(w->h);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    char a[64], text[256];
    make_hash(a, sizeof(a), "$2b$", 4, "pw");
    snprintf(text, sizeof(text), "alice:%s\n", a);
    pc_htpasswd *h = parse_ok(text);
    pthread_t t[4];
    worker_arg w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_arg){pc_htpasswd_ref(h), 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    pc_htpasswd_free(h); /* the workers hold the last references */
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 20);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify),      cmocka_unit_test(test_empty),
        cmocka_unit_test(test_weak_hashes), cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_load_file),   cmocka_unit_test(test_unknown_user_cost),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
