/*
 * upstream.h - the client for one upstream registry (libcurl): the /v2/
 * challenge, WWW-Authenticate parsing, bearer tokens per repository scope
 * cached until they expire, basic credentials, manifest HEAD/GET,
 * streamed blob GET/HEAD, a plain GET of any path, redirects to blob hosts without forwarding
 * Authorization, connection reuse, and a classification of every failure.
 *
 * Thread-safe: any number of threads may call into one pc_upstream at once;
 * at most max_connections transfers run at the same time (others wait).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_UPSTREAM_H
#define PC_UPSTREAM_H

#include "pc.h"
#include "digest.h"

typedef struct pc_upstream pc_upstream;

typedef struct {
    const char *name;         /* "docker.io" */
    const char *url;          /* "https://registry-1.docker.io", "http://127.0.0.1:5001" */
    const char *username;     /* NULL for anonymous */
    const char *password;     /* with username */
    const char *token;        /* a static bearer token instead of username/password */
    long connect_timeout_ms;  /* 0 = 5000 */
    long read_timeout_ms;     /* no byte for this long = timeout; 0 = 30000 */
    unsigned max_connections; /* 0 = 16 */
    const char *ca_file;      /* extra CA bundle for TLS, NULL = system */
    bool insecure_tls;        /* skip TLS verification (tests only) */
} pc_upstream_opts;

/* How a call ended, for the cache's decisions and the metrics. */
typedef enum {
    PC_UP_OK = 0,    /* 2xx */
    PC_UP_NOT_FOUND, /* 404 */
    PC_UP_DENIED,    /* 401/403 after authenticating */
    PC_UP_TOO_MANY,  /* 429 */
    PC_UP_SERVER,    /* 5xx */
    PC_UP_CLIENT,    /* other 4xx */
    PC_UP_TIMEOUT,   /* connect or read timeout */
    PC_UP_REFUSED,   /* connection refused / host unreachable / DNS */
    PC_UP_RESET,     /* connection reset or closed early (short body) */
    PC_UP_TLS,       /* TLS handshake or verification failure */
    PC_UP_ABORTED,   /* the caller's data callback asked to stop */
    PC_UP_PROTOCOL,  /* anything else curl reports */
} pc_up_class;

/* What came back. Strings are "" when absent. */
typedef struct {
    pc_up_class cls;
    long status;                /* HTTP status of the final response, 0 if none */
    char digest[PC_DIGEST_MAX]; /* Docker-Content-Digest */
    char media_type[256];       /* Content-Type (parameters stripped) */
    int64_t content_length;     /* -1 when unknown */
    char ratelimit_limit[128];  /* raw header values, as sent */
    char ratelimit_remaining[128];
    char ratelimit_source[128]; /* docker-ratelimit-source */
    char retry_after[64];
    char error_message[512]; /* from the registry error JSON, or curl's message */
    char *body;              /* manifest bytes (GET) or an error body; malloc'd */
    size_t body_len;
    char range[64];                  /* Range (upload progress: "0-<last byte>") */
    char oci_subject[PC_DIGEST_MAX]; /* OCI-Subject (a manifest PUT with a subject) */
    char link[1024];                 /* Link (pagination: <...>; rel="next") */
    char upload_uuid[128];           /* Docker-Upload-UUID */
} pc_upstream_resp;

/* Create the client. Strings in opts are copied. *out is the caller's. */
int pc_upstream_new(pc_upstream **out, const pc_upstream_opts *opts);
void pc_upstream_free(pc_upstream *u);
const char *pc_upstream_name(const pc_upstream *u);

/* HEAD (head=true) or GET a manifest by tag or digest. The Accept header
 * lists every manifest media type. A GET keeps at most 4 MiB of body.
 * Returns 0 when the exchange happened (look at out->cls and status), or
 * PC_ENOMEM. out is cleared with pc_upstream_resp_clear(). */
int pc_upstream_manifest(pc_upstream *u, const char *repo, const char *reference, bool head,
                         pc_upstream_resp *out);

/* Called with the headers of a successful (2xx) blob response before any
 * body bytes; return non-zero to abort. */
typedef int (*pc_upstream_start_cb)(const pc_upstream_resp *resp, void *ctx);
/* Called with each piece of a successful blob body; non-zero aborts. */
typedef int (*pc_upstream_data_cb)(const void *buf, size_t len, void *ctx);

/* HEAD or GET a blob, streaming a 2xx body to on_data (error bodies are kept
 * in out->body instead). Redirects are followed; Authorization is never
 * sent to another host. A body shorter than its Content-Length ends as
 * PC_UP_RESET. Returns 0 when the exchange happened (see out->cls). */
int pc_upstream_blob(pc_upstream *u, const char *repo, const pc_digest *d, bool head,
                     pc_upstream_start_cb on_start, pc_upstream_data_cb on_data, void *ctx,
                     pc_upstream_resp *out);

/* GET path on the registry (absolute: "/_pullcache/status", an optional
 * query allowed) without authentication, following redirects. A 2xx body of
 * up to max_body bytes (0 = 1 MiB) is kept in out->body; a longer one ends
 * as PC_UP_PROTOCOL. Error bodies are kept as for the other calls. Returns 0
 * when the exchange happened (see out->cls), PC_EINVAL for a path that is
 * not '/' followed by URL characters needing no escape (or has a "." or
 * ".." segment), or PC_ENOMEM. out is overwritten on entry. */
int pc_upstream_get(pc_upstream *u, const char *path, size_t max_body, pc_upstream_resp *out);

void pc_upstream_resp_clear(pc_upstream_resp *r);

/* A short name for a class ("timeout"). */
const char *pc_up_class_str(pc_up_class c);

/* Whether a TLS failure's message (PC_UP_TLS, curl's text) says the server
 * answered the TLS handshake with something that is not TLS, as a plain
 * HTTP server does: OpenSSL's "wrong version number" or "packet length too
 * long", GnuTLS's "unexpected TLS packet" or "unexpected length". */
bool pc_upstream_tls_plain_http(const char *message);

/* The registry URL the client was made with, without a trailing '/'. */
const char *pc_upstream_url(const pc_upstream *u);

/* --- parsing helpers, exposed for tests and other clients --- */

/* A parsed WWW-Authenticate challenge. */
typedef struct {
    char scheme[16]; /* "Bearer" or "Basic" */
    char realm[1024];
    char service[256];
    char scope[512];
    char error[64];
} pc_auth_challenge;

/* What a client knows about its registry's authentication. */
typedef struct {
    pc_auth_challenge challenge; /* the last challenge (scope and error cleared);
                                    scheme "" = the registry has asked for none */
    bool credentials;            /* username/password configured: sent to a token
                                    realm or a Basic registry; else tokens are anonymous */
    bool static_token;           /* opts.token is sent as Bearer, no token flow */
} pc_upstream_auth;

/* Fill out with what u knows now (after a call: how that call was
 * authenticated). Secrets are never included. */
void pc_upstream_auth_state(pc_upstream *u, pc_upstream_auth *out);

/* ---- the push side (upstream_push.c) ----
 *
 * Blob uploads (monolithic or chunked, resumable), cross-repository
 * mounts, manifest PUTs, the referrers API and tag lists. Push calls ask
 * the token realm for "repository:<repo>:pull,push"; a mount also for
 * "repository:<from>:pull". Upload Locations may be relative or absolute
 * and carry query parameters (distribution's _state); they are resolved
 * against the request URL, and Authorization is only sent to the
 * registry's own origin. */

/* Fill buf with up to len bytes of a request body; return the count (0 at
 * the end) or PC_UPSTREAM_READ_ABORT to abandon the request. */
typedef size_t (*pc_upstream_reader)(char *buf, size_t len, void *ctx);
#define PC_UPSTREAM_READ_ABORT ((size_t)-1)

/* An upload session. */
typedef struct {
    char *location;  /* absolute URL of the session; malloc'd */
    uint64_t offset; /* bytes the registry holds (as far as we know) */
} pc_upstream_upload;

/* Free up->location and zero *up. */
void pc_upstream_upload_clear(pc_upstream_upload *up);

/* POST /v2/<repo>/blobs/uploads/. With mount (and from, another
 * repository of this registry), ask for a cross-repository mount:
 * *mounted is true when the registry linked the blob (201). Otherwise
 * (202) up holds the new session, offset 0. Returns 0 when the exchange
 * happened (see out->cls; a 2xx without a usable Location is
 * PC_UP_PROTOCOL), PC_EINVAL for a bad name, PC_ENOMEM. out is
 * overwritten on entry, up is cleared first. */
int pc_upstream_upload_start(pc_upstream *u, const char *repo, const pc_digest *mount,
                             const char *from, bool *mounted, pc_upstream_upload *up,
                             pc_upstream_resp *out);

/* GET the session's status (204): up->offset from its Range header ("0-0"
 * is read as 0), up->location from its Location when sent. 0 when the
 * exchange happened (see out->cls), PC_ENOMEM. */
int pc_upstream_upload_status(pc_upstream *u, const char *repo, pc_upstream_upload *up,
                              pc_upstream_resp *out);

/* PATCH len bytes read from rd at up->offset (Content-Range). On 202 the
 * session advances (offset from the Range header, else + len; location
 * from Location). *sent is what curl took from rd (for byte counts, also
 * when the request failed). 0 when the exchange happened (see out->cls),
 * PC_ENOMEM. */
int pc_upstream_upload_chunk(pc_upstream *u, const char *repo, pc_upstream_upload *up, uint64_t len,
                             pc_upstream_reader rd, void *ctx, uint64_t *sent,
                             pc_upstream_resp *out);

/* PUT ?digest=d to close the session, with len more bytes from rd first
 * (len 0: no body). Success is 201. *sent as for _chunk. 0 when the
 * exchange happened (see out->cls), PC_ENOMEM. */
int pc_upstream_upload_finish(pc_upstream *u, const char *repo, pc_upstream_upload *up,
                              const pc_digest *d, uint64_t len, pc_upstream_reader rd, void *ctx,
                              uint64_t *sent, pc_upstream_resp *out);

/* DELETE the session (best effort, errors ignored). */
void pc_upstream_upload_cancel(pc_upstream *u, const char *repo, pc_upstream_upload *up);

/* PUT a manifest byte for byte under reference (tag or digest) with
 * Content-Type media_type. Success is 201; out->digest is the registry's
 * Docker-Content-Digest, out->oci_subject its OCI-Subject. 0 when the
 * exchange happened (see out->cls), PC_EINVAL, PC_ENOMEM. */
int pc_upstream_manifest_put(pc_upstream *u, const char *repo, const char *reference,
                             const char *media_type, const void *body, size_t len,
                             pc_upstream_resp *out);

/* GET a blob from byte offset on (Range: bytes=<offset>-; 206 expected
 * when offset > 0), streamed as pc_upstream_blob() does. */
int pc_upstream_blob_range(pc_upstream *u, const char *repo, const pc_digest *d, uint64_t offset,
                           pc_upstream_start_cb on_start, pc_upstream_data_cb on_data, void *ctx,
                           pc_upstream_resp *out);

/* GET /v2/<repo>/referrers/<d> (an OCI index, kept in out->body up to
 * 4 MiB). A 404 means the registry has no referrers API: use the tag
 * pc_upstream_referrers_tag() names instead. */
int pc_upstream_referrers(pc_upstream *u, const char *repo, const pc_digest *d,
                          pc_upstream_resp *out);

/* DELETE /v2/<repo>/manifests/<d> (token scope repository:<repo>:delete).
 * Success is 202. 0 when the exchange happened (see out->cls), PC_EINVAL
 * for a bad name, PC_ENOMEM. */
int pc_upstream_manifest_delete(pc_upstream *u, const char *repo, const pc_digest *d,
                                pc_upstream_resp *out);

/* The referrers tag schema's tag for d ("sha256-<hex>"), into buf. */
void pc_upstream_referrers_tag(const pc_digest *d, char *buf, size_t size);

/* GET one page of /v2/<repo>/tags/list: the first (next NULL) or the one
 * a previous page's Link named (next: the raw Link header value). The
 * body ({"name","tags"}) is kept in out->body up to 4 MiB; out->link holds
 * this page's Link ("" on the last page). */
int pc_upstream_tags_page(pc_upstream *u, const char *repo, const char *next,
                          pc_upstream_resp *out);

/* Parse a Link header value for its rel="next" target (<...>), resolved
 * against base_url, into *url (caller's, free()). 0, PC_ENOTFOUND (no next
 * link), PC_EINVAL, PC_ENOMEM. */
int pc_upstream_link_next(const char *base_url, const char *link, char **url);

/* Parse a WWW-Authenticate value (RFC 7235 auth-params, quoted strings
 * with escapes, any order, unknown params ignored). 0 or PC_EINVAL. */
int pc_auth_challenge_parse(const char *value, pc_auth_challenge *out);

#endif
