/*
 * auth_header.h - the registry's side of HTTP authentication, the parts that need
 * no network and no user database: the request's Authorization header
 * (Basic, Bearer), resource scopes as the Docker token specification
 * writes them, and the WWW-Authenticate value of a 401.
 *
 *   scope       resourcescope *( " " resourcescope )
 *   resource    type [ "(" class ")" ] ":" name ":" action *( "," action )
 *   "repository:team/app:pull,push"   "registry:catalog:*"
 *
 * A scope's name is a repository name checked with pc_ref_name_valid() (so
 * the spec's "host:port/name" form, which ours never has, is refused); the
 * deprecated resource class ("repository(plugin)") is accepted and dropped.
 * Known actions become bits; well-formed unknown actions are dropped (they
 * grant nothing), anything else is refused.
 *
 * Parsing a WWW-Authenticate value (the client side, another registry's
 * challenge) is pc_auth_challenge_parse() in upstream.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_AUTH_HEADER_H
#define PC_AUTH_HEADER_H

#include "pc.h"
#include "ref.h"

#define PC_AUTH_HEADER_MAX 8192 /* longest Authorization value accepted */
#define PC_AUTH_BASIC_MAX 1024  /* longest base64 credentials of a Basic value */
#define PC_AUTH_SCOPES_MAX 32   /* resource scopes in one request */

/* Actions, as bits. PC_AUTH_ALL is the "*" action: every action on a
 * repository (an external issuer may grant it), the action of
 * registry:catalog. */
enum {
    PC_AUTH_PULL = 1u << 0,
    PC_AUTH_PUSH = 1u << 1,
    PC_AUTH_DELETE = 1u << 2,
    PC_AUTH_ALL = 1u << 3,
};

typedef enum {
    PC_AUTH_REPOSITORY = 1, /* name: a repository */
    PC_AUTH_REGISTRY = 2,   /* name: "catalog" */
} pc_auth_type;

/* One resource scope. */
typedef struct {
    pc_auth_type type;
    char name[PC_NAME_MAX + 1];
    unsigned actions; /* PC_AUTH_* bits; 0 = nothing */
} pc_auth_scope;

typedef enum {
    PC_AUTH_NONE = 0, /* no Authorization header: anonymous */
    PC_AUTH_BASIC,
    PC_AUTH_BEARER,
} pc_auth_scheme;

/* What a request's Authorization header carried. Strings are the
 * struct's (pc_auth_credentials_clear). */
typedef struct {
    pc_auth_scheme scheme;
    char *user;     /* Basic: the user-id, never "" */
    char *password; /* Basic: may be "" */
    char *token;    /* Bearer: token68 characters, never "" */
} pc_auth_credentials;

/* Parse an Authorization value into out (overwritten). NULL or "" is
 * anonymous (0, scheme NONE). The scheme is case-insensitive; Basic
 * credentials are strict base64 of at most PC_AUTH_BASIC_MAX characters
 * decoding to "user:password" with a non-empty user and no control
 * characters; a Bearer token is token68. Returns 0, PC_EINVAL (malformed,
 * message set), PC_ETOOBIG (over PC_AUTH_HEADER_MAX or PC_AUTH_BASIC_MAX),
 * PC_ENOTSUP (another scheme: Digest, Negotiate...) or PC_ENOMEM. On
 * failure out is empty. */
int pc_auth_header_parse(const char *value, pc_auth_credentials *out);

/* Free the strings of c (the password is wiped first) and zero it. */
void pc_auth_credentials_clear(pc_auth_credentials *c);

/* Parse one resourcescope from the len bytes at s. 0 or PC_EINVAL. */
int pc_auth_scope_parse(const char *s, size_t len, pc_auth_scope *out);

/* Parse the scope parameters of a token request: n values (repeated
 * `scope=` query parameters, or one space-separated form value), each a
 * space-separated list; empty values and empty list items are skipped.
 * Scopes naming the same resource are merged (actions OR-ed), in the order
 * first seen. *out (NULL when *count is 0) is the caller's (free). Returns
 * 0, PC_EINVAL (any malformed scope: the request is bad), PC_ELIMIT (more
 * than PC_AUTH_SCOPES_MAX resources) or PC_ENOMEM. */
int pc_auth_scopes_parse(const char *const *values, size_t n, pc_auth_scope **out, size_t *count);

/* Write the actions of mask as the spec spells them ("pull,push"; order
 * pull, push, delete, *) into buf. Returns the length or PC_ETOOBIG. */
int pc_auth_actions_format(unsigned mask, char *buf, size_t size);

/* Write s as "type:name:actions" into buf. Returns the length, PC_EINVAL
 * (an invalid scope) or PC_ETOOBIG. */
int pc_auth_scope_format(const pc_auth_scope *s, char *buf, size_t size);

/* Whether actions granted (from a token or a policy) cover every action in
 * needed; PC_AUTH_ALL covers all. */
bool pc_auth_actions_allow(unsigned granted, unsigned needed);

/* The value of a Bearer challenge: `Bearer realm="...",service="..."`,
 * then `scope="s1 s2"` when n > 0 and `error="..."` when error is not
 * NULL (RFC 6750: "invalid_token", "insufficient_scope"). Values are
 * quoted-strings with '"' and '\' escaped. *out is the caller's (free).
 * Returns 0, PC_EINVAL (a missing realm, a control character in a value,
 * an invalid scope) or PC_ENOMEM. */
int pc_auth_challenge_bearer(char **out, const char *realm, const char *service,
                             const pc_auth_scope *scopes, size_t n, const char *error);

/* The value of a Basic challenge: `Basic realm="..."`. As above. */
int pc_auth_challenge_basic(char **out, const char *realm);

#endif
