/*
 * test_tls.c - unit tests for tls.c with certificates made at test time by
 * GnuTLS (P-256): a good pair loads and is described (subject, serial,
 * chain length); a mismatched key, a missing file, a key as certificate, an
 * unsorted chain and an empty client CA file are refused with messages that
 * name the file; a reload with a new pair switches, a bad one keeps the old;
 * client_auth names; the libmicrohttpd option array.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tls.h"

static char dir[64];

static void path_of(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void write_datum(const char *name, const gnutls_datum_t *d, bool append)
{
    char p[128];
    path_of(p, sizeof(p), name);
    FILE *f = fopen(p, append ? "ab" : "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d->data, 1, d->size, f), d->size);
    fclose(f);
}

static void write_text(const char *name, const char *text)
{
    gnutls_datum_t d = {(unsigned char *)text, (unsigned)strlen(text)};
    write_datum(name, &d, false);
}

typedef struct {
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
} pair;

/* A P-256 key and a certificate for it: signed by issuer (NULL: self-signed),
 * serial 2 bytes, a CA when ca. Written as NAME.crt and NAME.key. */
static void make_pair(pair *out, const char *name, const pair *issuer, unsigned serial, bool ca)
{
    assert_int_equal(gnutls_x509_privkey_init(&out->key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(out->key, GNUTLS_PK_ECDSA,
                                                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                                  0),
                     0);
    assert_int_equal(gnutls_x509_crt_init(&out->crt), 0);
    gnutls_x509_crt_t c = out->crt;
    unsigned char sn[2] = {(unsigned char)(serial >> 8), (unsigned char)serial};
    char dn[64];
    snprintf(dn, sizeof(dn), "CN=%s", name);
    time_t now = time(NULL);
    assert_int_equal(gnutls_x509_crt_set_version(c, 3), 0);
    assert_int_equal(gnutls_x509_crt_set_serial(c, sn, sizeof(sn)), 0);
    assert_int_equal(gnutls_x509_crt_set_dn(c, dn, NULL), 0);
    assert_int_equal(gnutls_x509_crt_set_activation_time(c, now - 60), 0);
    assert_int_equal(gnutls_x509_crt_set_expiration_time(c, now + 86400), 0);
    assert_int_equal(gnutls_x509_crt_set_key(c, out->key), 0);
    assert_int_equal(gnutls_x509_crt_set_basic_constraints(c, ca ? 1 : 0, -1), 0);
    if (ca)
        assert_int_equal(gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_KEY_CERT_SIGN), 0);
    else
        assert_int_equal(gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME, "localhost",
                                                              9, GNUTLS_FSAN_SET),
                         0);
    assert_int_equal(gnutls_x509_crt_sign2(c, issuer ? issuer->crt : c,
                                           issuer ? issuer->key : out->key, GNUTLS_DIG_SHA256, 0),
                     0);
    gnutls_datum_t d;
    char fname[64];
    assert_int_equal(gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &d), 0);
    snprintf(fname, sizeof(fname), "%s.crt", name);
    write_datum(fname, &d, false);
    gnutls_free(d.data);
    assert_int_equal(gnutls_x509_privkey_export2(out->key, GNUTLS_X509_FMT_PEM, &d), 0);
    snprintf(fname, sizeof(fname), "%s.key", name);
    write_datum(fname, &d, false);
    gnutls_free(d.data);
}

static void pair_free(pair *p)
{
    gnutls_x509_crt_deinit(p->crt);
    gnutls_x509_privkey_deinit(p->key);
}

static void append_file(const char *dst, const char *src)
{
    char p[128], line[4096];
    path_of(p, sizeof(p), src);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t n = fread(line, 1, sizeof(line), f);
    fclose(f);
    gnutls_datum_t d = {(unsigned char *)line, (unsigned)n};
    write_datum(dst, &d, true);
}

static void copy_file(const char *dst, const char *src)
{
    write_text(dst, "");
    append_file(dst, src);
}

static pair ca, other_ca, srv1, srv2, srv3;

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/pc-test-tls.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    make_pair(&ca, "ca", NULL, 0x0a01, true);
    make_pair(&other_ca, "otherca", NULL, 0x0a02, true);
    make_pair(&srv1, "srv1", &ca, 0x1001, false);
    make_pair(&srv2, "srv2", &ca, 0x1002, false);
    make_pair(&srv3, "srv3", NULL, 0x1003, false);
    return 0;
}

static int teardown(void **state)
{
    pair *all[] = {&ca, &other_ca, &srv1, &srv2, &srv3};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        pair_free(all[i]);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static pc_tls_opts opts(char *cert, char *key, const char *c, const char *k)
{
    path_of(cert, 128, c);
    path_of(key, 128, k);
    return (pc_tls_opts){cert, key, NULL, PC_TLS_CLIENT_NONE};
}

static void test_client_auth_names(void **state)
{
    pc_tls_client_auth m;
    assert_int_equal(pc_tls_client_auth_parse("none", &m), 0);
    assert_int_equal(m, PC_TLS_CLIENT_NONE);
    assert_int_equal(pc_tls_client_auth_parse("verify_if_given", &m), 0);
    assert_int_equal(m, PC_TLS_CLIENT_VERIFY_IF_GIVEN);
    assert_int_equal(pc_tls_client_auth_parse("require", &m), 0);
    assert_int_equal(m, PC_TLS_CLIENT_REQUIRE);
    assert_int_equal(pc_tls_client_auth_parse("Require", &m), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "none, verify_if_given or require"));
}

static void test_load_and_describe(void **state)
{
    char cert[128], key[128], desc[600];
    pc_tls_opts o = opts(cert, key, "srv1.crt", "srv1.key");
    pc_tls *tls = NULL;
    assert_int_equal(pc_tls_new(&tls, &o), 0);
    pc_tls_describe(tls, desc, sizeof(desc));
    assert_non_null(strstr(desc, "CN=srv1"));
    assert_non_null(strstr(desc, "serial 1001"));
    assert_non_null(strstr(desc, "1 in chain"));
    assert_non_null(strstr(desc, "client certificates: none"));

    struct MHD_OptionItem items[4];
    pc_tls_mhd_options(tls, items, 4);
    assert_int_equal(items[0].option, MHD_OPTION_HTTPS_CERT_CALLBACK);
    assert_non_null(items[0].ptr_value);
    assert_int_equal(items[1].option, MHD_OPTION_HTTPS_PRIORITIES);
    assert_non_null(strstr(items[1].ptr_value, "+VERS-TLS1.2"));
    assert_null(strstr(items[1].ptr_value, "+VERS-TLS1.1"));
    assert_int_equal(items[2].option, MHD_OPTION_NOTIFY_CONNECTION);
    assert_ptr_equal(items[2].ptr_value, tls);
    assert_int_equal(items[3].option, MHD_OPTION_END);
    pc_tls_free(tls);

    /* leaf, then its CA: a chain of two */
    copy_file("chain.crt", "srv2.crt");
    append_file("chain.crt", "ca.crt");
    o = opts(cert, key, "chain.crt", "srv2.key");
    assert_int_equal(pc_tls_new(&tls, &o), 0);
    pc_tls_describe(tls, desc, sizeof(desc));
    assert_non_null(strstr(desc, "serial 1002, 2 in chain"));
    pc_tls_free(tls);
    pc_tls_free(NULL);
}

/* pc_tls_new refuses o with a message holding want. */
static void refused(const pc_tls_opts *o, const char *want)
{
    pc_tls *tls = (pc_tls *)1;
    assert_int_equal(pc_tls_new(&tls, o), PC_EINVAL);
    assert_null(tls);
    if (!strstr(pc_error_last(), want))
        fail_msg("want '%s' in '%s'", want, pc_error_last());
}

static void test_refusals(void **state)
{
    char cert[128], key[128], ca_path[128];
    pc_tls_opts o = opts(cert, key, "srv1.crt", "srv2.key");
    refused(&o, "does not match certificate");
    o = opts(cert, key, "missing.crt", "srv1.key");
    refused(&o, "cannot read");
    o = opts(cert, key, "srv1.key", "srv1.key");
    refused(&o, "not a PEM certificate chain");
    o = opts(cert, key, "srv1.crt", "srv1.crt");
    refused(&o, "not an unencrypted PEM private key");
    write_text("empty", "");
    o = opts(cert, key, "empty", "srv1.key");
    refused(&o, "empty file");
    /* the CA before the leaf */
    copy_file("unsorted.crt", "ca.crt");
    append_file("unsorted.crt", "srv1.crt");
    o = opts(cert, key, "unsorted.crt", "srv1.key");
    refused(&o, "not a PEM certificate chain");

    o = opts(cert, key, "srv1.crt", "srv1.key");
    o.client_auth = PC_TLS_CLIENT_REQUIRE;
    refused(&o, "needs a client CA");
    write_text("noca.crt", "no certificate here\n");
    path_of(ca_path, sizeof(ca_path), "noca.crt");
    o.client_ca = ca_path;
    refused(&o, "no PEM certificate");
    o.cert = NULL;
    refused(&o, "both a certificate and a key");
}

static void test_reload(void **state)
{
    char cert[128], key[128], ca_path[128], desc[600];
    copy_file("live.crt", "srv1.crt");
    copy_file("live.key", "srv1.key");
    copy_file("live-ca.crt", "ca.crt");
    pc_tls_opts o = opts(cert, key, "live.crt", "live.key");
    path_of(ca_path, sizeof(ca_path), "live-ca.crt");
    o.client_ca = ca_path;
    o.client_auth = PC_TLS_CLIENT_VERIFY_IF_GIVEN;
    pc_tls *tls = NULL;
    assert_int_equal(pc_tls_new(&tls, &o), 0);
    pc_tls_describe(tls, desc, sizeof(desc));
    assert_non_null(strstr(desc, "serial 1001"));
    assert_non_null(strstr(desc, "client certificates: verify_if_given"));

    /* a new good pair (and client CA) */
    copy_file("live.crt", "srv2.crt");
    copy_file("live.key", "srv2.key");
    copy_file("live-ca.crt", "otherca.crt");
    assert_int_equal(pc_tls_reload(tls), 0);
    pc_tls_describe(tls, desc, sizeof(desc));
    assert_non_null(strstr(desc, "serial 1002"));

    /* half-replaced: a mismatch, the old pair stays */
    copy_file("live.crt", "srv3.crt");
    assert_int_equal(pc_tls_reload(tls), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "does not match"));
    pc_tls_describe(tls, desc, sizeof(desc));
    assert_non_null(strstr(desc, "serial 1002"));

    /* the rest of the pair: now it switches */
    copy_file("live.key", "srv3.key");
    assert_int_equal(pc_tls_reload(tls), 0);
    pc_tls_describe(tls, desc, sizeof(desc));
    assert_non_null(strstr(desc, "CN=srv3"));
    assert_non_null(strstr(desc, "serial 1003"));

    /* a broken client CA file keeps everything */
    write_text("live-ca.crt", "garbage\n");
    assert_int_equal(pc_tls_reload(tls), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "client CA"));
    /* gone files too */
    char p[128];
    path_of(p, sizeof(p), "live.key");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(pc_tls_reload(tls), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "cannot read"));
    pc_tls_describe(tls, desc, sizeof(desc));
    assert_non_null(strstr(desc, "serial 1003"));
    pc_tls_free(tls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_auth_names),
        cmocka_unit_test(test_load_and_describe),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
