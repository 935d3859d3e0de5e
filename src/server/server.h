/*
 * server.h - the HTTP edge of `pullcache serve`: libmicrohttpd daemon,
 * request lifecycle, request log. Front ends only start and stop it.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_SERVER_H
#define PC_SERVER_H

#include "pc.h"
#include "config.h"
#include "limiter.h"
#include "mirror.h"
#include "registry.h"

typedef struct pc_server pc_server;

/* Start serving reg (and the pull-through cache `mirror`, NULL for none;
 * the client pull limiter `limiter`, NULL for none) with the settings of
 * cfg (borrowed; all must outlive the server). *out is the caller's
 * (pc_server_stop). 0 or PC_ERR with a message (address in use, bad
 * address...). */
int pc_server_start(pc_server **out, const pc_config *cfg, pc_registry *reg, pc_mirror *mirror,
                    pc_limiter *limiter);

/* Read and check http.tls's files as pc_server_start would (for
 * --check-config). 0 (also without TLS) or PC_EINVAL with a message. */
int pc_server_tls_check(const pc_config *cfg);

/* With http.tls: read the certificate, key and client CA files again.
 * 0: new handshakes get the new ones, open connections keep theirs.
 * PC_EINVAL with a message: the old ones stay. PC_ENOTFOUND: no TLS. */
int pc_server_tls_reload(pc_server *srv);

/* Build the access control of cfg's auth section as pc_server_start
 * would (htpasswd, policy, token keys; for --check-config). 0 (also
 * without users) or PC_EINVAL with a message. */
int pc_server_auth_check(const pc_config *cfg);

/* Whether the server does access control (users are configured). */
bool pc_server_auth_enabled(const pc_server *srv);

/* Reload the users (htpasswd file) and the access policy from auth (the
 * freshly read auth section; borrowed). 0: swapped in (requests under way
 * finish with the old ones); PC_EINVAL with a message: the old ones stay;
 * PC_ENOTFOUND: no access control. */
int pc_server_auth_reload(pc_server *srv, const pc_config_auth *auth);

/* The port actually bound (useful with port 0). */
unsigned pc_server_port(const pc_server *srv);

/* Stop accepting, finish or drop open connections, free the server. */
void pc_server_stop(pc_server *srv);

#endif
