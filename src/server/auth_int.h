/*
 * auth_int.h - what the server's authentication files share (internal to
 * src/server): the state built from the auth configuration and swapped on
 * reload (auth_setup.c), a request's snapshot of it, who asks
 * (auth_login.c) and what they may do (auth_access.c), for the token
 * service and the 401 challenge (auth_token.c). The entry points are in
 * http.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_AUTH_INT_H
#define PC_AUTH_INT_H

#include "http.h"
#include "auth_header.h"
#include "auth_htpasswd.h"
#include "auth_jwt.h"
#include "auth_policy.h"
#include "server.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CACHE_SLOTS 256
#define CACHE_TTL 60
#define THROTTLE_SLOTS 1024
#define THROTTLE_FREE 5 /* failures in a row before attempts are delayed */
#define THROTTLE_MAX 30 /* seconds, the longest delay */

struct cache_slot {
    unsigned char key[32];
    int64_t expires;
    uint64_t gen;
    char user[PC_HTPASSWD_USER_MAX + 1];
};

struct throttle_slot {
    char addr[64];
    unsigned fails;
    int64_t until;
};

struct pc_authn {
    pthread_mutex_t lock;
    pc_htpasswd *users; /* NULL: no htpasswd (external tokens only) */
    pc_policy *policy;
    uint64_t gen; /* bumped on reload: cached logins of old users die */
    pc_jwt_key *key;
    pc_jwt_key *trust_key; /* NULL: no external issuer */
    char *trust_issuer, *trust_audience;
    char *realm; /* auth.token.realm, else http.external_url + /token; NULL: from the Host */
    char *service, *issuer;
    unsigned lifetime;
    bool basic; /* challenge with Basic, not Bearer */
    struct cache_slot cache[CACHE_SLOTS];
    struct throttle_slot throttle[THROTTLE_SLOTS];
};

/* A request's snapshot of the users and the policy (references, so that
 * a reload meanwhile changes nothing for it): take, then drop. */
typedef struct {
    pc_htpasswd *users;
    pc_policy *policy;
    uint64_t gen;
} pc_authn_snap;

void pc_authn_snap_take(struct pc_authn *a, pc_authn_snap *s);
void pc_authn_snap_drop(pc_authn_snap *s);

/* Who asks, from the Authorization header. */
typedef struct {
    pc_auth_scheme scheme;
    bool ok;       /* credentials given and valid (or none given) */
    bool external; /* a token of the trusted external issuer */
    bool throttled;
    unsigned retry;
    pc_jwt_claims claims; /* Bearer */
} pc_authn_identity;

/* Who asks, from the request's Authorization header (auth_login.c):
 * sets *id, req->user and req->account, req->auth_error for a bad token.
 * Clear id->claims after. */
void pc_authn_identify(pc_req *req, struct pc_authn *a, const pc_authn_snap *s,
                       pc_authn_identity *id);
/* A user name and password (Basic, or the OAuth2 password grant):
 * throttle, check, count. Sets id->ok or id->throttled, and req->user. */
void pc_authn_login(pc_req *req, struct pc_authn *a, const pc_authn_snap *s, const char *user,
                    const char *password, pc_authn_identity *id);

/* The 429 answer to a login from an address that failed too often,
 * with Retry-After: retry seconds. */
int pc_authn_throttled(pc_req *req, unsigned retry);

/* The actions (PC_AUTH_*) the request needs on its repository
 * (auth_access.c). */
unsigned pc_authn_needed(pc_req *req);
/* What the policy grants user (NULL: anonymous) on repository name, as
 * routed without ns= (the token service's scopes). */
unsigned pc_authn_grant(pc_server *srv, const pc_policy *p, const char *user, const char *name);

#endif
