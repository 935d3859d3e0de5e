/*
 * tls.h - HTTPS for `pullcache serve`: the server certificate and key, and
 * optional client-certificate verification (mTLS), on libmicrohttpd's
 * GnuTLS back end.
 *
 * The certificate reaches GnuTLS through a retrieve callback
 * (MHD_OPTION_HTTPS_CERT_CALLBACK), not through MHD's fixed in-memory
 * credentials, so pc_tls_reload can swap the certificate, key and client
 * CA while the daemon runs: handshakes after the swap get the new set,
 * connections already open keep the one they negotiated with (each holds
 * a reference; a set is freed when its last connection closes).
 *
 * Client certificates are checked by a per-session GnuTLS verify function
 * against our own trust list (MHD's MHD_OPTION_HTTPS_MEM_TRUST could not be
 * reloaded and only asks for a certificate without checking it). With
 * client_auth require, a client without a valid certificate fails the TLS
 * handshake: it never gets an HTTP status.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_TLS_H
#define PC_TLS_H

#include "pc.h"

#include <microhttpd.h>

typedef struct pc_tls pc_tls;

typedef enum {
    PC_TLS_CLIENT_NONE = 0,        /* no client certificate asked for */
    PC_TLS_CLIENT_VERIFY_IF_GIVEN, /* asked for; a given one must verify */
    PC_TLS_CLIENT_REQUIRE,         /* a valid one is needed to connect */
} pc_tls_client_auth;

typedef struct {
    const char *cert;      /* PEM: the server certificate, then intermediates */
    const char *key;       /* PEM: its private key (unencrypted) */
    const char *client_ca; /* PEM: CAs client certificates must chain to; NULL */
    pc_tls_client_auth client_auth;
} pc_tls_opts;

/* "none", "verify_if_given" or "require" into *out. 0 or PC_EINVAL. */
int pc_tls_client_auth_parse(const char *s, pc_tls_client_auth *out);

/* Read and check the files of o (paths copied): the certificate chain
 * parses, the key parses and is the certificate's, the client CA file
 * holds at least one certificate. *out is the caller's (pc_tls_free).
 * 0 or PC_EINVAL with a message naming the file and the problem. */
int pc_tls_new(pc_tls **out, const pc_tls_opts *o);

/* Read the same files again. 0: new handshakes get the new set. Otherwise
 * PC_EINVAL with a message, and the set in use stays. Thread-safe. */
int pc_tls_reload(pc_tls *tls);

/* One line about the set in use, for the log: subject, serial, expiry,
 * client verification. */
void pc_tls_describe(pc_tls *tls, char *buf, size_t size);

/* Fill items (room for n >= 4) with the libmicrohttpd options that serve
 * HTTPS through tls, MHD_OPTION_END last, for MHD_OPTION_ARRAY; the daemon
 * also needs the MHD_USE_TLS flag. tls must outlive the daemon. */
void pc_tls_mhd_options(pc_tls *tls, struct MHD_OptionItem *items, size_t n);

/* Whether connection c (of a daemon serving through pc_tls) presented a
 * client certificate that verified; its subject DN into subject (size
 * bytes, may be truncated). False on plain HTTP. pc_tls owns the daemon's
 * MHD_OPTION_NOTIFY_CONNECTION and the connections' socket context. */
bool pc_tls_client_subject(struct MHD_Connection *c, char *subject, size_t size);

/* Free tls; after the daemon stopped. NULL is fine. */
void pc_tls_free(pc_tls *tls);

#endif
