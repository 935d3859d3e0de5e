/*
 * tls.c - HTTPS for `pullcache serve` (see tls.h): certificate sets read
 * from PEM files, handed to GnuTLS by a retrieve callback so a reload
 * swaps them under running connections, and client-certificate
 * verification against a reloadable trust list.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tls.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* TLS 1.2 and 1.3 only; GnuTLS's NORMAL ciphers otherwise. */
#define PC_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define PC_TLS_MAX_CHAIN 16
#define PC_TLS_MAX_FILE (1024 * 1024)

/* One certificate, key and client CA, as read by one load. Shared by the
 * connections that negotiated with it; freed with its last reference. */
typedef struct tls_set {
    int refs; /* under pc_tls.lock; the current set holds one */
    gnutls_pcert_st pcerts[PC_TLS_MAX_CHAIN];
    unsigned npcerts;
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t client_ca; /* NULL: none */
    char desc[512];
} tls_set;

struct pc_tls {
    char *cert, *key, *client_ca;
    pc_tls_client_auth client_auth;
    pthread_mutex_t lock;
    tls_set *cur;
};

/* A connection's socket context: which set its handshake used. */
typedef struct {
    pc_tls *tls;
    tls_set *set;
    bool client_verified; /* a client certificate was given and verified */
    char client_dn[256];
} tls_conn;

int pc_tls_client_auth_parse(const char *s, pc_tls_client_auth *out)
{
    static const struct {
        const char *name;
        pc_tls_client_auth v;
    } modes[] = {
        {"none", PC_TLS_CLIENT_NONE},
        {"verify_if_given", PC_TLS_CLIENT_VERIFY_IF_GIVEN},
        {"require", PC_TLS_CLIENT_REQUIRE},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(s, modes[i].name) == 0) {
            *out = modes[i].v;
            return 0;
        }
    pc_error_set("tls client_auth must be none, verify_if_given or require, not '%s'", s);
    return PC_EINVAL;
}

static void set_free(tls_set *set)
{
    if (!set)
        return;
    for (unsigned i = 0; i < set->npcerts; i++)
        gnutls_pcert_deinit(&set->pcerts[i]);
    if (set->key)
        gnutls_privkey_deinit(set->key);
    if (set->client_ca)
        gnutls_x509_trust_list_deinit(set->client_ca, 1);
    free(set);
}

static void set_release(pc_tls *tls, tls_set *set)
{
    pthread_mutex_lock(&tls->lock);
    bool last = --set->refs == 0;
    pthread_mutex_unlock(&tls->lock);
    if (last)
        set_free(set);
}

/* The whole file at path into *d (gnutls_free'd by the caller). */
static int read_file(const char *what, const char *path, gnutls_datum_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        pc_error_set("tls %s %s: cannot read: %s", what, path, strerror(errno));
        return PC_EINVAL;
    }
    unsigned char *buf = gnutls_malloc(PC_TLS_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, PC_TLS_MAX_FILE + 1, f) : 0;
    bool err = ferror(f);
    fclose(f);
    if (!buf)
        return PC_ENOMEM;
    if (err || n == 0 || n > PC_TLS_MAX_FILE) {
        gnutls_free(buf);
        pc_error_set("tls %s %s: %s", what, path,
                     err ? "read error"
                     : n ? "larger than 1 MiB"
                         : "empty file");
        return PC_EINVAL;
    }
    buf[n] = '\0';
    d->data = buf;
    d->size = (unsigned)n;
    return 0;
}

static int pubkey_der(gnutls_pubkey_t pk, gnutls_datum_t *out)
{
    return gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, out);
}

/* Whether key is the private half of the leaf certificate's public key. */
static bool key_matches(tls_set *set)
{
    gnutls_pubkey_t kp = NULL;
    gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
    bool same = false;
    if (gnutls_pubkey_init(&kp) == 0 && gnutls_pubkey_import_privkey(kp, set->key, 0, 0) == 0 &&
        pubkey_der(kp, &a) == 0 && pubkey_der(set->pcerts[0].pubkey, &b) == 0)
        same = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    if (kp)
        gnutls_pubkey_deinit(kp);
    return same;
}

static void describe(tls_set *set, const pc_tls *tls)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t dn = {NULL, 0};
    unsigned char serial[64];
    size_t slen = sizeof(serial);
    char hex[2 * sizeof(serial) + 1] = "?", when[32] = "?";
    if (gnutls_x509_crt_init(&crt) == 0 &&
        gnutls_x509_crt_import(crt, &set->pcerts[0].cert, GNUTLS_X509_FMT_DER) == 0) {
        gnutls_x509_crt_get_dn3(crt, &dn, 0);
        if (gnutls_x509_crt_get_serial(crt, serial, &slen) == 0)
            for (size_t i = 0; i < slen; i++)
                snprintf(hex + 2 * i, 3, "%02X", serial[i]);
        time_t exp = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        if (exp != (time_t)-1 && gmtime_r(&exp, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (exp != (time_t)-1 && exp < time(NULL))
            pc_log(PC_LOG_WARN, "tls certificate %s expired at %s", tls->cert, when);
    }
    static const char *modes[] = {"none", "verify_if_given", "require"};
    snprintf(set->desc, sizeof(set->desc),
             "certificate %s (serial %s, %u in chain, expires %s), client certificates: %s",
             dn.data ? (const char *)dn.data : "?", hex, set->npcerts, when,
             modes[tls->client_auth]);
    gnutls_free(dn.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
}

/* Read tls's files into a new set (one reference, the caller's). */
static int set_load(pc_tls *tls, tls_set **out)
{
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0}, ca = {NULL, 0};
    tls_set *set = calloc(1, sizeof(*set));
    int rc = PC_EINVAL, g;
    if (!set)
        return PC_ENOMEM;
    set->refs = 1;
    if ((rc = read_file("certificate", tls->cert, &cert)) ||
        (rc = read_file("key", tls->key, &key)) ||
        (tls->client_ca && (rc = read_file("client CA", tls->client_ca, &ca))))
        goto done;
    rc = PC_EINVAL;
    set->npcerts = PC_TLS_MAX_CHAIN;
    g = gnutls_pcert_list_import_x509_raw(set->pcerts, &set->npcerts, &cert, GNUTLS_X509_FMT_PEM,
                                          GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (g < 0 || set->npcerts == 0) {
        set->npcerts = 0;
        pc_error_set("tls certificate %s: not a PEM certificate chain (leaf first): %s", tls->cert,
                     g < 0 ? gnutls_strerror(g) : "no certificate");
        goto done;
    }
    if ((g = gnutls_privkey_init(&set->key)) < 0 ||
        (g = gnutls_privkey_import_x509_raw(set->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        pc_error_set("tls key %s: not an unencrypted PEM private key: %s", tls->key,
                     gnutls_strerror(g));
        goto done;
    }
    if (!key_matches(set)) {
        pc_error_set("tls key %s does not match certificate %s (the key is another pair's)",
                     tls->key, tls->cert);
        goto done;
    }
    if (tls->client_ca) {
        if ((g = gnutls_x509_trust_list_init(&set->client_ca, 0)) < 0) {
            pc_error_set("tls: %s", gnutls_strerror(g));
            goto done;
        }
        g = gnutls_x509_trust_list_add_trust_mem(set->client_ca, &ca, NULL, GNUTLS_X509_FMT_PEM, 0,
                                                 0);
        if (g <= 0) {
            pc_error_set("tls client CA %s: no PEM certificate in it%s%s", tls->client_ca,
                         g < 0 ? ": " : "", g < 0 ? gnutls_strerror(g) : "");
            goto done;
        }
    }
    describe(set, tls);
    *out = set;
    set = NULL;
    rc = 0;
done:
    gnutls_free(cert.data);
    if (key.data) {
        gnutls_memset(key.data, 0, key.size);
        gnutls_free(key.data);
    }
    gnutls_free(ca.data);
    set_free(set);
    return rc;
}

int pc_tls_new(pc_tls **out, const pc_tls_opts *o)
{
    *out = NULL;
    if (!o->cert || !o->key) {
        pc_error_set("tls needs both a certificate and a key");
        return PC_EINVAL;
    }
    if (o->client_auth != PC_TLS_CLIENT_NONE && !o->client_ca) {
        pc_error_set("tls client certificate verification needs a client CA file");
        return PC_EINVAL;
    }
    pc_tls *tls = calloc(1, sizeof(*tls));
    if (!tls)
        return PC_ENOMEM;
    pthread_mutex_init(&tls->lock, NULL);
    tls->client_auth = o->client_auth;
    int rc = PC_ENOMEM;
    if (!(tls->cert = strdup(o->cert)) || !(tls->key = strdup(o->key)) ||
        (o->client_ca && !(tls->client_ca = strdup(o->client_ca))))
        goto fail;
    if ((rc = set_load(tls, &tls->cur)))
        goto fail;
    *out = tls;
    return 0;
fail:
    pc_tls_free(tls);
    return rc;
}

int pc_tls_reload(pc_tls *tls)
{
    tls_set *set = NULL;
    int rc = set_load(tls, &set);
    if (rc)
        return rc;
    pthread_mutex_lock(&tls->lock);
    tls_set *old = tls->cur;
    tls->cur = set;
    pthread_mutex_unlock(&tls->lock);
    set_release(tls, old);
    return 0;
}

void pc_tls_describe(pc_tls *tls, char *buf, size_t size)
{
    pthread_mutex_lock(&tls->lock);
    snprintf(buf, size, "%s", tls->cur->desc);
    pthread_mutex_unlock(&tls->lock);
}

/* The socket context of the connection a GnuTLS session belongs to
 * (libmicrohttpd sets the session's pointer to its connection). */
static tls_conn *conn_of(gnutls_session_t s)
{
    struct MHD_Connection *c = gnutls_session_get_ptr(s);
    const union MHD_ConnectionInfo *ci =
        c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return ci ? ci->socket_context : NULL;
}

/* GnuTLS asks for our certificate: the current set, referenced by the
 * connection until it closes. */
static int retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    tls_conn *tc = conn_of(s);
    if (!tc)
        return -1;
    pthread_mutex_lock(&tc->tls->lock);
    tls_set *set = tc->tls->cur, *old = tc->set;
    set->refs++;
    tc->set = set;
    pthread_mutex_unlock(&tc->tls->lock);
    if (old)
        set_release(tc->tls, old);
    *pcert = set->pcerts;
    *pcert_length = set->npcerts;
    *privkey = set->key;
    return 0;
}

/* During the handshake, after the client's Certificate message (or its
 * absence): 0 accepts, anything else ends the handshake. */
static int verify_client(gnutls_session_t s)
{
    tls_conn *tc = conn_of(s);
    if (!tc || !tc->set || !tc->set->client_ca)
        return -1;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0) {
        if (tc->tls->client_auth == PC_TLS_CLIENT_REQUIRE) {
            pc_log(PC_LOG_INFO, "tls: handshake refused: no client certificate");
            return -1;
        }
        return 0;
    }
    gnutls_x509_crt_t crts[PC_TLS_MAX_CHAIN];
    unsigned nc = 0, status = 0;
    int rc = -1, g = 0;
    for (; nc < n && nc < PC_TLS_MAX_CHAIN; nc++) {
        if ((g = gnutls_x509_crt_init(&crts[nc])) < 0)
            goto done;
        if ((g = gnutls_x509_crt_import(crts[nc], &peers[nc], GNUTLS_X509_FMT_DER)) < 0) {
            nc++;
            goto done;
        }
    }
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (void *)GNUTLS_KP_TLS_WWW_CLIENT,
                                     0};
    g = gnutls_x509_trust_list_verify_crt2(tc->set->client_ca, crts, nc, &purpose, 1, 0, &status,
                                           NULL);
    if (g == 0 && status == 0) {
        rc = 0;
        gnutls_datum_t ok = {NULL, 0};
        if (gnutls_x509_crt_get_dn3(crts[0], &ok, 0) == 0)
            snprintf(tc->client_dn, sizeof(tc->client_dn), "%s", (const char *)ok.data);
        gnutls_free(ok.data);
        tc->client_verified = true;
    }
done:;
    gnutls_datum_t dn = {NULL, 0}, why = {NULL, 0};
    if (rc) {
        if (nc)
            gnutls_x509_crt_get_dn3(crts[0], &dn, 0);
        if (g == 0 &&
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) == 0)
            while (why.size && why.data[why.size - 1] == ' ') /* GnuTLS ends it with a space */
                why.data[--why.size] = '\0';
        pc_log(PC_LOG_INFO, "tls: handshake refused: client certificate %s: %s",
               dn.data ? (const char *)dn.data : "?",
               g < 0      ? gnutls_strerror(g)
               : why.data ? (const char *)why.data
                          : "not trusted");
    }
    gnutls_free(dn.data);
    gnutls_free(why.data);
    for (unsigned i = 0; i < nc; i++)
        gnutls_x509_crt_deinit(crts[i]);
    return rc;
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context,
                   enum MHD_ConnectionNotificationCode code)
{
    pc_tls *tls = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        /* before the handshake; without a context the handshake fails */
        tls_conn *tc = calloc(1, sizeof(*tc));
        if (!tc)
            return;
        tc->tls = tls;
        *socket_context = tc;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (tls->client_auth != PC_TLS_CLIENT_NONE && ci && ci->tls_session) {
            gnutls_session_t s = ci->tls_session;
            /* REQUEST, not REQUIRE, in both modes: verify_client decides
             * (and says why) when no certificate comes */
            gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
            gnutls_session_set_verify_function(s, verify_client);
        }
        return;
    }
    tls_conn *tc = *socket_context;
    if (!tc)
        return;
    *socket_context = NULL;
    if (tc->set)
        set_release(tls, tc->set);
    free(tc);
}

bool pc_tls_client_subject(struct MHD_Connection *c, char *subject, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const tls_conn *tc = ci ? ci->socket_context : NULL;
    if (!tc || !tc->client_verified)
        return false;
    snprintf(subject, size, "%s", tc->client_dn);
    return true;
}

void pc_tls_mhd_options(pc_tls *tls, struct MHD_OptionItem *items, size_t n)
{
    if (n < 4) {
        if (n)
            items[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        return;
    }
    items[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)retrieve};
    items[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)PC_TLS_PRIORITIES};
    items[2] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify, tls};
    items[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

void pc_tls_free(pc_tls *tls)
{
    if (!tls)
        return;
    if (tls->cur)
        set_release(tls, tls->cur);
    pthread_mutex_destroy(&tls->lock);
    free(tls->cert);
    free(tls->key);
    free(tls->client_ca);
    free(tls);
}
