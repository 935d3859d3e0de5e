/*
 * endpoint.h - how the clients reach a registry a reference names: the
 * scheme an "http://" or "https://" prefix asks for, and the loopback
 * hosts that Docker treats as insecure registries (try https without
 * verifying the certificate, fall back to plain http).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_ENDPOINT_H
#define PC_ENDPOINT_H

#include "pc.h"

/* The scheme an "http://" or "https://" prefix of a reference asks for. */
typedef enum {
    PC_ENDPOINT_SCHEME_NONE = 0, /* no prefix: the client decides */
    PC_ENDPOINT_SCHEME_HTTP,     /* "http://": plain HTTP */
    PC_ENDPOINT_SCHEME_HTTPS,    /* "https://": TLS, no fallback */
} pc_endpoint_scheme;

/* Split a scheme prefix ("http://" or "https://", any case) off s: *scheme
 * says which (PC_ENDPOINT_SCHEME_NONE without one); returns the rest of s
 * (borrowed: s itself, or a pointer into it). */
const char *pc_endpoint_scheme_split(const char *s, pc_endpoint_scheme *scheme);

/* Whether a reference's host ("127.0.0.1:5000", "[::1]:5000", "localhost")
 * is a loopback address: 127.0.0.0/8, ::1 or localhost, the hosts Docker
 * treats as insecure registries. A port is ignored. */
bool pc_endpoint_loopback(const char *host);

/* Whether s can name the environment variable holding an endpoint's
 * password ([A-Za-z_][A-Za-z0-9_]*): --password-env, password_env. */
bool pc_endpoint_env_name_valid(const char *s);

#endif
