/*
 * upstream_int.h - internals shared by upstream.c (transfers),
 * upstream_auth.c (challenges, Authorization values, the token cache) and
 * upstream_class.c (how a call ended).
 * Not for other modules: they use upstream.h.
 */
#ifndef PC_UPSTREAM_INT_H
#define PC_UPSTREAM_INT_H

#include "upstream.h"

/* Bearer tokens by scope ("repository:library/nginx:pull"), each usable
 * until shortly before it expires. Thread-safe (its own mutex). */
typedef struct pc_up_tokens pc_up_tokens;

/* An empty cache holding at most max scopes. *out is the caller's. 0 or
 * PC_ENOMEM. */
int pc_up_tokens_new(pc_up_tokens **out, size_t max);
void pc_up_tokens_free(pc_up_tokens *t);

/* A copy of the live token for scope into *token (caller's, free with
 * pc_up_secret_free()). Expired entries are dropped on the way. 0,
 * PC_ENOTFOUND or PC_ENOMEM. */
int pc_up_tokens_get(pc_up_tokens *t, const char *scope, char **token);

/* Forget scope's token (the upstream refused it). */
void pc_up_tokens_drop(pc_up_tokens *t, const char *scope);

/* Keep token for scope for usable_ms. Best effort: a full cache or a
 * failed allocation only means the token is not kept. */
void pc_up_tokens_put(pc_up_tokens *t, const char *scope, const char *token, int64_t usable_ms);

/* Parse a token server's answer ({"token" or "access_token", "expires_in"
 * (default 60 s), "issued_at"}). *token is the caller's (pc_up_secret_free);
 * *usable_ms is how long to cache it, 0 when it must not be cached (it is
 * about to expire, or was issued long ago). 0, PC_EINVAL (no token) or
 * PC_ENOMEM. */
int pc_up_token_parse(const char *body, size_t len, char **token, int64_t *usable_ms);

/* "Authorization: Bearer <token>" and "Authorization: Basic <base64>"
 * header lines, the caller's (pc_up_secret_free); NULL when out of memory. */
char *pc_up_auth_bearer(const char *token);
char *pc_up_auth_basic(const char *user, const char *pass);

/* The class of a final HTTP status, and of a failed curl_easy_perform()
 * result (a CURLcode) that no callback of ours caused. */
pc_up_class pc_up_class_of_status(long status);
pc_up_class pc_up_class_of_curl(int curl_code);

/* The first message of a registry error body
 * ({"errors":[{"code","message"}]}, the message or else the code), or a
 * token server's {"details"}, {"message"} or {"error"}, into dst; dst is
 * left alone when the body has none. */
void pc_up_error_message(const char *body, size_t len, char *dst, size_t size);

/* Wipe and free a string that may hold a secret; NULL is fine. */
void pc_up_secret_free(char *s);

#endif
