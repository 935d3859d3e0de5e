/*
 * test_tls.c - unit tests for tls.c with certificates made at test time by
 * GnuTLS (P-256): a good pair loads and is described (subject, serial,
 * chain length); a mismatched key, a missing file, a key as certificate, an
 * unsorted chain and an empty client CA file are refused with messages that
 * name the file; a reload with a new pair switches, a bad one keeps the old;
 * client_auth names; the libmicrohttpd option array.
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
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
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
        assert_int_equal(gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                                              GNUTLS_FSAN_SET),
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

static pair ca, other_ca, srv1, srv2, srv3, node, intruder;

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
    make_pair(&node, "node", &ca, 0x2001, false);
    make_pair(&intruder, "intruder", &other_ca, 0x3001, false);
    return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    curl_global_cleanup();
    pair *all[] = {&ca, &other_ca, &srv1, &srv2, &srv3, &node, &intruder};
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

/* The handler: answers every GET with the verified client subject or "-". */
static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    if (!*con_cls) {
        *con_cls = c;
        return MHD_YES;
    }
    char subject[256] = "-";
    pc_tls_client_subject(c, subject, sizeof(subject));
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(subject), subject, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static size_t take(char *data, size_t size, size_t n, void *userp)
{
    char *buf = userp;
    size_t have = strlen(buf), add = size * n;
    if (have + add < 256) {
        memcpy(buf + have, data, add);
        buf[have + add] = '\0';
    }
    return add;
}

/* GET / on h; the body into body (256 bytes); the curl result. */
static CURLcode get(CURL *h, unsigned port, char *body)
{
    char url[64];
    snprintf(url, sizeof(url), "https://localhost:%u/", port);
    body[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    return curl_easy_perform(h);
}

/* A curl handle trusting the test CA, with client pair NAME (NULL: none). */
static CURL *client(unsigned port, const char *name, struct curl_slist **resolve)
{
    char ca_path[128], cert[128], key[128], r[64];
    path_of(ca_path, sizeof(ca_path), "ca.crt");
    CURL *h = curl_easy_init();
    assert_non_null(h);
    snprintf(r, sizeof(r), "localhost:%u:127.0.0.1", port);
    *resolve = curl_slist_append(NULL, r);
    curl_easy_setopt(h, CURLOPT_RESOLVE, *resolve);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca_path);
    curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
    if (name) {
        snprintf(cert, sizeof(cert), "%s/%s.crt", dir, name);
        snprintf(key, sizeof(key), "%s/%s.key", dir, name);
        curl_easy_setopt(h, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, key);
    }
    return h;
}

/* Whether the leaf certificate h saw has serial "10:0N"-like text want. */
static bool saw_serial(CURL *h, const char *want)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return false;
    for (struct curl_slist *e = ci->certinfo[0]; e; e = e->next)
        if (strncmp(e->data, "Serial Number:", 14) == 0)
            return strstr(e->data + 14, want) != NULL;
    return false;
}

/* A real daemon on loopback: client subjects under verify_if_given, a
 * refused foreign certificate, and a reload under an open connection. */
static void test_handshakes(void **state)
{
    char cert[128], key[128], ca_path[128], body[256];
    copy_file("hs.crt", "srv1.crt");
    copy_file("hs.key", "srv1.key");
    pc_tls_opts o = opts(cert, key, "hs.crt", "hs.key");
    path_of(ca_path, sizeof(ca_path), "ca.crt");
    o.client_ca = ca_path;
    o.client_auth = PC_TLS_CLIENT_VERIFY_IF_GIVEN;
    pc_tls *tls = NULL;
    assert_int_equal(pc_tls_new(&tls, &o), 0);
    struct MHD_OptionItem items[4];
    pc_tls_mhd_options(tls, items, 4);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL, answer, NULL,
                         MHD_OPTION_ARRAY, items, MHD_OPTION_END);
    assert_non_null(d);
    unsigned port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    struct curl_slist *r1, *r2, *r3, *r4;

    CURL *anon = client(port, NULL, &r1);
    assert_int_equal(get(anon, port, body), CURLE_OK);
    assert_string_equal(body, "-");

    CURL *h = client(port, "node", &r2);
    assert_int_equal(get(h, port, body), CURLE_OK);
    assert_string_equal(body, "CN=node");
    assert_true(saw_serial(h, "10:01") || saw_serial(h, "1001"));

    CURL *bad = client(port, "intruder", &r3);
    assert_int_not_equal(get(bad, port, body), CURLE_OK);

    /* reload: the open connection goes on, a new one sees the new serial */
    copy_file("hs.crt", "srv2.crt");
    copy_file("hs.key", "srv2.key");
    assert_int_equal(pc_tls_reload(tls), 0);
    assert_int_equal(get(h, port, body), CURLE_OK);
    assert_string_equal(body, "CN=node");
    long fresh = -1;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &fresh);
    assert_int_equal(fresh, 0); /* the same connection */
    CURL *h2 = client(port, "node", &r4);
    assert_int_equal(get(h2, port, body), CURLE_OK);
    assert_true(saw_serial(h2, "10:02") || saw_serial(h2, "1002"));

    CURL *all[] = {anon, h, bad, h2};
    struct curl_slist *lists[] = {r1, r2, r3, r4};
    for (int i = 0; i < 4; i++) {
        curl_easy_cleanup(all[i]);
        curl_slist_free_all(lists[i]);
    }
    MHD_stop_daemon(d);
    pc_tls_free(tls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_auth_names), cmocka_unit_test(test_load_and_describe),
        cmocka_unit_test(test_refusals),          cmocka_unit_test(test_reload),
        cmocka_unit_test(test_handshakes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
