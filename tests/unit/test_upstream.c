/*
 * test_upstream.c - unit tests for upstream.c: the WWW-Authenticate parser,
 * and the client against three in-process HTTP servers (libmicrohttpd on
 * 127.0.0.1, ephemeral ports): a registry, its token realm and a blob host
 * that redirected blobs land on. The registry's behaviour is chosen by the
 * repository name: auth/ needs a bearer token, basic/ basic credentials,
 * limited/ answers 429 like Docker Hub, broken/ 503, slow/ takes 200 ms, and
 * the blob repositories redir, relredir, short and stall redirect, cut the
 * body short or stall. Also the internals in upstream_auth.c: token server
 * answers, the token cache, Authorization values. Nothing leaves the
 * loopback interface.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "digest.h"
#include "upstream.h"
#include "upstream_int.h"

#define DOCKERHUB_CHALLENGE                                                                        \
    "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","                \
    "scope=\"repository:library/nginx:pull\""
#define TOOMANY_BODY                                                                               \
    "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"You have reached your pull rate "    \
    "limit. You may increase the limit by authenticating and upgrading: "                          \
    "https://www.docker.com/increase-rate-limit\"}]}"
#define MANIFEST                                                                                   \
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","           \
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"           \
    "\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\"size\":2},"     \
    "\"layers\":[]}"
#define STATUS_BODY "{\"version\":\"test\",\"upstreams\":[]}"
#define GOOD_TOKEN "good-token-0123456789"
#define USER_PASS_B64 "Basic dXNlcjpzM2NyZXQ=" /* user:s3cret */
#define BLOB_LEN ((size_t)1 << 20)
#define SHORT_DECLARED 1000
#define SHORT_SENT 100

/* ---- test servers ---- */

typedef struct srv srv;
typedef enum MHD_Result (*srv_handler)(srv *s, struct MHD_Connection *c, const char *url,
                                       const char *method);

struct srv {
    struct MHD_Daemon *d;
    unsigned port;
    srv_handler handler;
    atomic_int requests;
    atomic_int connections;
    atomic_int auth_requests; /* requests that carried Authorization */
    atomic_int in_flight;
    atomic_int max_in_flight;
    pthread_mutex_t mu; /* guards the strings */
    char last_auth[512];
    char last_accept[512];
    char last_scope[256];
    char last_service[256];
};

static srv reg, tok, blobhost;
static char *blob;
static pc_digest blob_digest;
static pc_digest manifest_digest;
static atomic_bool stall_release;
static const char *token_required_auth; /* token server wants this Authorization */
static atomic_int token_mode;           /* 0: token + expires_in + issued_at, 1: access_token */

static void lookup(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key, char *dst,
                   size_t size)
{
    const char *v = MHD_lookup_connection_value(c, kind, key);
    snprintf(dst, size, "%s", v ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    static int first_call;
    srv *s = cls;
    if (*con_cls == NULL) { /* answer on the second call, or MHD closes the connection */
        *con_cls = &first_call;
        return MHD_YES;
    }
    atomic_fetch_add(&s->requests, 1);
    pthread_mutex_lock(&s->mu);
    lookup(c, MHD_HEADER_KIND, "Authorization", s->last_auth, sizeof(s->last_auth));
    lookup(c, MHD_HEADER_KIND, "Accept", s->last_accept, sizeof(s->last_accept));
    if (s->last_auth[0])
        atomic_fetch_add(&s->auth_requests, 1);
    pthread_mutex_unlock(&s->mu);
    return s->handler(s, c, url, method);
}

static void on_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe)
{
    srv *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&s->connections, 1);
}

static void srv_start(srv *s, srv_handler h)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->handler = h;
    pthread_mutex_init(&s->mu, NULL);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_CONNECTION, on_notify, s, MHD_OPTION_END);
    assert_non_null(s->d);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(di);
    s->port = di->port;
    assert_true(s->port > 0);
}

static void srv_stop(srv *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    s->d = NULL;
    pthread_mutex_destroy(&s->mu);
}

static void srv_reset(srv *s)
{
    atomic_store(&s->requests, 0);
    atomic_store(&s->connections, 0);
    atomic_store(&s->auth_requests, 0);
    atomic_store(&s->max_in_flight, 0);
    pthread_mutex_lock(&s->mu);
    s->last_auth[0] = s->last_accept[0] = s->last_scope[0] = s->last_service[0] = '\0';
    pthread_mutex_unlock(&s->mu);
}

/* Queue a response; hdrs is a NULL-terminated list of name, value pairs. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const void *body,
                             size_t len, const char *const *hdrs)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    for (size_t i = 0; hdrs && hdrs[i]; i += 2)
        MHD_add_response_header(r, hdrs[i], hdrs[i + 1]);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\"}]}",
                     code, msg);
    const char *hdrs[] = {"Content-Type", "application/json", NULL};
    return reply(c, status, body, (size_t)n, hdrs);
}

static ssize_t short_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    if (pos >= SHORT_SENT)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = SHORT_SENT - (size_t)pos;
    if (n > max)
        n = max;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static ssize_t stalled_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    for (int i = 0; i < 100 && !atomic_load(&stall_release); i++)
        usleep(50 * 1000);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static enum MHD_Result reply_callback(struct MHD_Connection *c, uint64_t size,
                                      MHD_ContentReaderCallback cb)
{
    struct MHD_Response *r = MHD_create_response_from_callback(size, 4096, cb, NULL, NULL);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static enum MHD_Result reply_blob(struct MHD_Connection *c)
{
    const char *hdrs[] = {"Content-Type", "application/octet-stream", "Docker-Content-Digest",
                          blob_digest.str, NULL};
    return reply(c, MHD_HTTP_OK, blob, BLOB_LEN, hdrs);
}

/* The registry: /v2/<repo>/manifests/<ref> and /v2/<repo>/blobs/<digest>. */
static enum MHD_Result reg_handler(srv *s, struct MHD_Connection *c, const char *url,
                                   const char *method)
{
    char repo[256], auth[512];
    const char *kind = strstr(url, "/manifests/");
    bool is_manifest = kind != NULL;
    if (!kind)
        kind = strstr(url, "/blobs/");
    if (strcmp(url, "/_status") == 0) { /* a plain GET of a non-/v2/ path */
        const char *hdrs[] = {"Content-Type", "application/json", NULL};
        return reply(c, MHD_HTTP_OK, STATUS_BODY, strlen(STATUS_BODY), hdrs);
    }
    if (!has_prefix(url, "/v2/") || !kind || (size_t)(kind - url - 4) >= sizeof(repo))
        return reply_error(c, 404, "NAME_UNKNOWN", "no such path");
    snprintf(repo, sizeof(repo), "%.*s", (int)(kind - url - 4), url + 4);
    const char *ref = strchr(kind + 1, '/') + 1;
    lookup(c, MHD_HEADER_KIND, "Authorization", auth, sizeof(auth));

    if (has_prefix(repo, "auth/") && strcmp(auth, "Bearer " GOOD_TOKEN) != 0) {
        char chal[1024];
        snprintf(chal, sizeof(chal),
                 "Bearer realm=\"http://127.0.0.1:%u/token\",service=\"test-registry\","
                 "scope=\"repository:%s:pull\"",
                 tok.port, repo);
        const char *hdrs[] = {"WWW-Authenticate", chal, "Content-Type", "application/json", NULL};
        const char *body = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication "
                           "required\"}]}";
        return reply(c, 401, body, strlen(body), hdrs);
    }
    if (has_prefix(repo, "basic/") && strcmp(auth, USER_PASS_B64) != 0) {
        const char *hdrs[] = {"WWW-Authenticate", "Basic realm=\"test registry\"", NULL};
        return reply(c, 401, "", 0, hdrs);
    }
    if (has_prefix(repo, "limited/")) {
        const char *hdrs[] = {"Content-Type",
                              "application/json",
                              "ratelimit-limit",
                              "100;w=21600",
                              "ratelimit-remaining",
                              "0;w=21600",
                              "docker-ratelimit-source",
                              "203.0.113.7",
                              "Retry-After",
                              "60",
                              NULL};
        return reply(c, 429, TOOMANY_BODY, strlen(TOOMANY_BODY), hdrs);
    }
    if (has_prefix(repo, "broken/"))
        return reply_error(c, 503, "UNAVAILABLE", "service unavailable");
    if (has_prefix(repo, "slow/")) {
        int now = atomic_fetch_add(&s->in_flight, 1) + 1;
        int prev = atomic_load(&s->max_in_flight);
        while (now > prev && !atomic_compare_exchange_weak(&s->max_in_flight, &prev, now))
            ;
        usleep(200 * 1000);
        atomic_fetch_sub(&s->in_flight, 1);
    }

    if (is_manifest) {
        if (strcmp(repo, "open/huge") == 0) {
            size_t n = ((size_t)4 << 20) + 1;
            char *big = calloc(1, n);
            const char *hdrs[] = {"Content-Type", "application/vnd.oci.image.index.v1+json", NULL};
            enum MHD_Result ret = reply(c, MHD_HTTP_OK, big, n, hdrs);
            free(big);
            return ret;
        }
        if (strcmp(ref, "latest") != 0 && strcmp(ref, manifest_digest.str) != 0)
            return reply_error(c, 404, "MANIFEST_UNKNOWN", "manifest unknown");
        const char *hdrs[] = {"Content-Type",
                              "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
                              "Docker-Content-Digest", manifest_digest.str, NULL};
        return reply(c, MHD_HTTP_OK, MANIFEST, strlen(MANIFEST), hdrs);
    }

    if (strcmp(ref, blob_digest.str) != 0)
        return reply_error(c, 404, "BLOB_UNKNOWN", "blob unknown");
    if (strcmp(repo, "auth/redir") == 0) { /* to the blob host, like S3 or a CDN */
        char loc[512];
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%u/data/%s?X-Amz-Signature=abc", blobhost.port,
                 ref);
        const char *hdrs[] = {"Location", loc, NULL};
        return reply(c, 307, "", 0, hdrs);
    }
    if (strcmp(repo, "auth/redir401") == 0) { /* to a blob host that wants a token */
        char loc[512];
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%u/deny/%s", blobhost.port, ref);
        const char *hdrs[] = {"Location", loc, NULL};
        return reply(c, 307, "", 0, hdrs);
    }
    if (strcmp(repo, "auth/relredir") == 0) { /* relative, same host: keeps Authorization */
        char loc[512];
        snprintf(loc, sizeof(loc), "../../img/blobs/%s", ref);
        const char *hdrs[] = {"Location", loc, NULL};
        return reply(c, 302, "", 0, hdrs);
    }
    if (strcmp(repo, "open/short") == 0)
        return reply_callback(c, SHORT_DECLARED, short_body);
    if (strcmp(repo, "open/stall") == 0)
        return reply_callback(c, BLOB_LEN, stalled_body);
    return reply_blob(c);
}

/* The blob host: /data/<digest>, no authentication. */
static enum MHD_Result blobhost_handler(srv *s, struct MHD_Connection *c, const char *url,
                                        const char *method)
{
    if (has_prefix(url, "/data/") && strcmp(url + 6, blob_digest.str) == 0)
        return reply_blob(c);
    if (has_prefix(url, "/deny/")) { /* a challenge naming the registry's realm */
        char chal[256];
        snprintf(chal, sizeof(chal), "Bearer realm=\"http://127.0.0.1:%u/token\",service=\"x\"",
                 tok.port);
        const char *hdrs[] = {"WWW-Authenticate", chal, NULL};
        return reply(c, 401, "", 0, hdrs);
    }
    return reply(c, 404, "", 0, NULL);
}

/* The token realm: /token?service=&scope=. */
static enum MHD_Result tok_handler(srv *s, struct MHD_Connection *c, const char *url,
                                   const char *method)
{
    char auth[512], body[512];
    const char *hdrs[] = {"Content-Type", "application/json", NULL};
    pthread_mutex_lock(&s->mu);
    lookup(c, MHD_GET_ARGUMENT_KIND, "scope", s->last_scope, sizeof(s->last_scope));
    lookup(c, MHD_GET_ARGUMENT_KIND, "service", s->last_service, sizeof(s->last_service));
    pthread_mutex_unlock(&s->mu);
    lookup(c, MHD_HEADER_KIND, "Authorization", auth, sizeof(auth));
    if (strcmp(url, "/token") != 0)
        return reply(c, 404, "", 0, NULL);
    if (token_required_auth && strcmp(auth, token_required_auth) != 0) {
        const char *b = "{\"details\":\"incorrect username or password\"}";
        return reply(c, 401, b, strlen(b), hdrs);
    }
    int n;
    if (atomic_load(&token_mode) == 1) {
        n = snprintf(body, sizeof(body), "{\"access_token\":\"%s\"}", GOOD_TOKEN);
    } else {
        char ts[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        n = snprintf(body, sizeof(body),
                     "{\"token\":\"%s\",\"access_token\":\"%s\",\"expires_in\":300,"
                     "\"issued_at\":\"%s\"}",
                     GOOD_TOKEN, GOOD_TOKEN, ts);
    }
    return reply(c, MHD_HTTP_OK, body, (size_t)n, hdrs);
}

static int group_setup(void **state)
{
    blob = malloc(BLOB_LEN);
    if (!blob)
        return -1;
    for (size_t i = 0; i < BLOB_LEN; i++)
        blob[i] = (char)((i * 7 + i / 1024) & 0xff);
    if (pc_digest_buffer(&blob_digest, PC_DIGEST_SHA256, blob, BLOB_LEN) != 0 ||
        pc_digest_buffer(&manifest_digest, PC_DIGEST_SHA256, MANIFEST, strlen(MANIFEST)) != 0)
        return -1;
    srv_start(&reg, reg_handler);
    srv_start(&tok, tok_handler);
    srv_start(&blobhost, blobhost_handler);
    return 0;
}

static int group_teardown(void **state)
{
    atomic_store(&stall_release, true);
    srv_stop(&reg);
    srv_stop(&tok);
    srv_stop(&blobhost);
    free(blob);
    return 0;
}

static int test_setup(void **state)
{
    srv_reset(&reg);
    srv_reset(&tok);
    srv_reset(&blobhost);
    token_required_auth = NULL;
    atomic_store(&token_mode, 0);
    return 0;
}

/* A client for the test registry; opts may override the defaults. */
static pc_upstream *client(const pc_upstream_opts *extra)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", reg.port);
    pc_upstream_opts o = {.name = "test", .read_timeout_ms = 5000};
    if (extra)
        o = *extra;
    o.url = url;
    pc_upstream *u = NULL;
    assert_int_equal(pc_upstream_new(&u, &o), 0);
    assert_string_equal(pc_upstream_name(u), o.name ? o.name : url);
    return u;
}

/* ---- WWW-Authenticate ---- */

static void test_chal_dockerhub(void **state)
{
    pc_auth_challenge ch;
    assert_int_equal(pc_auth_challenge_parse(DOCKERHUB_CHALLENGE, &ch), 0);
    assert_string_equal(ch.scheme, "Bearer");
    assert_string_equal(ch.realm, "https://auth.docker.io/token");
    assert_string_equal(ch.service, "registry.docker.io");
    assert_string_equal(ch.scope, "repository:library/nginx:pull");
    assert_string_equal(ch.error, "");
}

static void test_chal_basic(void **state)
{
    pc_auth_challenge ch;
    assert_int_equal(pc_auth_challenge_parse("Basic realm=\"Registry Realm\"", &ch), 0);
    assert_string_equal(ch.scheme, "Basic");
    assert_string_equal(ch.realm, "Registry Realm");
    assert_int_equal(pc_auth_challenge_parse("basic", &ch), 0);
    assert_string_equal(ch.scheme, "Basic");
    assert_string_equal(ch.realm, "");
}

static void test_chal_order_case_spaces(void **state)
{
    pc_auth_challenge ch;
    const char *v = "  BEARER   Scope = \"repository:a/b:pull,push\" ,  , SERVICE=reg.example ,"
                    "error=\"insufficient_scope\",Realm=\"https://auth.example/t?x=1\"  ";
    assert_int_equal(pc_auth_challenge_parse(v, &ch), 0);
    assert_string_equal(ch.scheme, "Bearer");
    assert_string_equal(ch.realm, "https://auth.example/t?x=1");
    assert_string_equal(ch.service, "reg.example");
    assert_string_equal(ch.scope, "repository:a/b:pull,push"); /* a comma inside quotes */
    assert_string_equal(ch.error, "insufficient_scope");
    /* unknown parameters are ignored, a second challenge ends the first */
    v = "Bearer realm=\"https://a/t\",charset=\"UTF-8\",foo=bar, Basic realm=\"x\"";
    assert_int_equal(pc_auth_challenge_parse(v, &ch), 0);
    assert_string_equal(ch.scheme, "Bearer");
    assert_string_equal(ch.realm, "https://a/t");
    assert_string_equal(ch.service, "");
}

static void test_chal_escapes(void **state)
{
    pc_auth_challenge ch;
    assert_int_equal(
        pc_auth_challenge_parse("Bearer realm=\"https://a/t\",service=\"a\\\"b\\\\c\\d\"", &ch), 0);
    assert_string_equal(ch.service, "a\"b\\cd");
}

static void test_chal_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "=",
        "realm=\"x\"",                          /* no scheme */
        "Bearer",                               /* Bearer without realm */
        "Bearer service=\"s\"",                 /* still no realm */
        "Bearer realm=\"https://a/t",           /* unterminated */
        "Bearer realm=\"https://a/t\\",         /* escape at the end */
        "Bearer realm=",                        /* empty value */
        "Bearer realm=\"a\" service=\"b\"",     /* missing comma */
        "Bearer realm=\"a\",=\"b\"",            /* empty name */
        "Bearer realm",                         /* no '=' */
        "Bearer;realm=\"a\"",                   /* not a separator */
        "Bearer realm=\"a\"\"b\"",              /* junk after a quoted string */
        "\"Bearer\" realm=\"a\"",               /* quoted scheme */
        "Bearerrrrrrrrrrrrrrrrrrr realm=\"a\"", /* scheme too long */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pc_auth_challenge ch;
        pc_error_clear();
        if (pc_auth_challenge_parse(bad[i], &ch) != PC_EINVAL)
            fail_msg("accepted: '%s'", bad[i]);
        assert_true(pc_error_last()[0] != '\0');
        assert_string_equal(ch.scheme, "");
    }
    pc_auth_challenge ch;
    assert_int_equal(pc_auth_challenge_parse(NULL, &ch), PC_EINVAL);
    /* a realm longer than the field is refused, not truncated */
    char longv[2200];
    memcpy(longv, "Bearer realm=\"", 14);
    memset(longv + 14, 'a', 2100);
    memcpy(longv + 2114, "\"", 2);
    assert_int_equal(pc_auth_challenge_parse(longv, &ch), PC_EINVAL);
}

static void test_classes(void **state)
{
    assert_int_equal(pc_up_class_of_status(200), PC_UP_OK);
    assert_int_equal(pc_up_class_of_status(206), PC_UP_OK);
    assert_int_equal(pc_up_class_of_status(404), PC_UP_NOT_FOUND);
    assert_int_equal(pc_up_class_of_status(401), PC_UP_DENIED);
    assert_int_equal(pc_up_class_of_status(403), PC_UP_DENIED);
    assert_int_equal(pc_up_class_of_status(429), PC_UP_TOO_MANY);
    assert_int_equal(pc_up_class_of_status(400), PC_UP_CLIENT);
    assert_int_equal(pc_up_class_of_status(502), PC_UP_SERVER);
    assert_int_equal(pc_up_class_of_status(304), PC_UP_PROTOCOL);
    assert_int_equal(pc_up_class_of_curl(CURLE_COULDNT_CONNECT), PC_UP_REFUSED);
    assert_int_equal(pc_up_class_of_curl(CURLE_COULDNT_RESOLVE_HOST), PC_UP_REFUSED);
    assert_int_equal(pc_up_class_of_curl(CURLE_OPERATION_TIMEDOUT), PC_UP_TIMEOUT);
    assert_int_equal(pc_up_class_of_curl(CURLE_RECV_ERROR), PC_UP_RESET);
    assert_int_equal(pc_up_class_of_curl(CURLE_PARTIAL_FILE), PC_UP_RESET);
    assert_int_equal(pc_up_class_of_curl(CURLE_GOT_NOTHING), PC_UP_RESET);
    assert_int_equal(pc_up_class_of_curl(CURLE_SEND_ERROR), PC_UP_RESET);
    assert_int_equal(pc_up_class_of_curl(CURLE_SSL_CONNECT_ERROR), PC_UP_TLS);
    assert_int_equal(pc_up_class_of_curl(CURLE_PEER_FAILED_VERIFICATION), PC_UP_TLS);
    assert_int_equal(pc_up_class_of_curl(CURLE_URL_MALFORMAT), PC_UP_PROTOCOL);

    char m[64] = "";
    const char *b = "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no\"},{\"message\":\"x\"}]}";
    pc_up_error_message(b, strlen(b), m, sizeof(m));
    assert_string_equal(m, "no");
    b = "{\"errors\":[{\"code\":\"DENIED\"}]}";
    pc_up_error_message(b, strlen(b), m, sizeof(m));
    assert_string_equal(m, "DENIED");
    b = "{\"details\":\"incorrect username or password\"}";
    pc_up_error_message(b, strlen(b), m, sizeof(m));
    assert_string_equal(m, "incorrect username or password");
    m[0] = '\0';
    pc_up_error_message("<html>502</html>", 16, m, sizeof(m));
    assert_string_equal(m, "");
}

static void test_class_str(void **state)
{
    assert_string_equal(pc_up_class_str(PC_UP_OK), "ok");
    assert_string_equal(pc_up_class_str(PC_UP_TIMEOUT), "timeout");
    assert_string_equal(pc_up_class_str(PC_UP_TOO_MANY), "too_many");
    assert_string_equal(pc_up_class_str(PC_UP_PROTOCOL), "protocol");
    assert_string_equal(pc_up_class_str((pc_up_class)99), "unknown");
}

static void iso_time(char *buf, size_t size, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%S.123456Z", &tm);
}

static void test_token_parse(void **state)
{
    char *t = NULL;
    int64_t ms = -1;
    const char *b = "{\"token\":\"abc\",\"expires_in\":300}";
    assert_int_equal(pc_up_token_parse(b, strlen(b), &t, &ms), 0);
    assert_string_equal(t, "abc");
    assert_int_equal(ms, 270 * 1000); /* renewed 30 s early */
    pc_up_secret_free(t);
    b = "{\"access_token\":\"xyz\"}"; /* the 60 s default */
    assert_int_equal(pc_up_token_parse(b, strlen(b), &t, &ms), 0);
    assert_string_equal(t, "xyz");
    assert_int_equal(ms, 48 * 1000);
    pc_up_secret_free(t);
    b = "{\"token\":\"\",\"access_token\":\"xyz\",\"expires_in\":120}";
    assert_int_equal(pc_up_token_parse(b, strlen(b), &t, &ms), 0);
    assert_string_equal(t, "xyz");
    pc_up_secret_free(t);

    /* issued_at: an old token lives shorter; one about to expire is not kept */
    char body[256], ts[64];
    iso_time(ts, sizeof(ts), time(NULL) - 100);
    snprintf(body, sizeof(body), "{\"token\":\"a\",\"expires_in\":300,\"issued_at\":\"%s\"}", ts);
    assert_int_equal(pc_up_token_parse(body, strlen(body), &t, &ms), 0);
    assert_true(ms >= 150 * 1000 && ms <= 162 * 1000);
    pc_up_secret_free(t);
    iso_time(ts, sizeof(ts), time(NULL) - 1000);
    snprintf(body, sizeof(body), "{\"token\":\"a\",\"expires_in\":300,\"issued_at\":\"%s\"}", ts);
    assert_int_equal(pc_up_token_parse(body, strlen(body), &t, &ms), 0);
    assert_int_equal(ms, 0);
    pc_up_secret_free(t);
    b = "{\"token\":\"a\",\"expires_in\":300,\"issued_at\":\"2100-01-01T00:00:00+02:00\"}";
    assert_int_equal(pc_up_token_parse(b, strlen(b), &t, &ms), 0);
    assert_int_equal(ms, 270 * 1000); /* a clock ahead of ours changes nothing */
    pc_up_secret_free(t);

    static const char *const bad[] = {"", "not json", "{}", "{\"token\":5}", "[\"token\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pc_up_token_parse(bad[i], strlen(bad[i]), &t, &ms), PC_EINVAL);
        assert_null(t);
    }
}

static void test_token_cache(void **state)
{
    pc_up_tokens *c = NULL;
    char *t = NULL;
    assert_int_equal(pc_up_tokens_new(&c, 2), 0);
    assert_int_equal(pc_up_tokens_get(c, "repository:a:pull", &t), PC_ENOTFOUND);
    pc_up_tokens_put(c, "repository:a:pull", "ta", 60000);
    pc_up_tokens_put(c, "repository:b:pull", "tb", 60000);
    pc_up_tokens_put(c, "repository:c:pull", "tc", 60000); /* full: not kept */
    pc_up_tokens_put(c, "repository:d:pull", "td", 0);     /* not to be cached */
    assert_int_equal(pc_up_tokens_get(c, "repository:a:pull", &t), 0);
    assert_string_equal(t, "ta");
    pc_up_secret_free(t);
    assert_int_equal(pc_up_tokens_get(c, "repository:c:pull", &t), PC_ENOTFOUND);
    assert_int_equal(pc_up_tokens_get(c, "repository:d:pull", &t), PC_ENOTFOUND);
    pc_up_tokens_put(c, "repository:a:pull", "ta2", 60000); /* replaces */
    assert_int_equal(pc_up_tokens_get(c, "repository:a:pull", &t), 0);
    assert_string_equal(t, "ta2");
    pc_up_secret_free(t);
    pc_up_tokens_drop(c, "repository:a:pull");
    assert_int_equal(pc_up_tokens_get(c, "repository:a:pull", &t), PC_ENOTFOUND);
    pc_up_tokens_put(c, "repository:e:pull", "te", 1); /* expires at once */
    usleep(5 * 1000);
    assert_int_equal(pc_up_tokens_get(c, "repository:e:pull", &t), PC_ENOTFOUND);
    assert_int_equal(pc_up_tokens_get(c, "repository:b:pull", &t), 0);
    pc_up_secret_free(t);
    pc_up_tokens_free(c);
}

static void test_auth_values(void **state)
{
    char *h = pc_up_auth_basic("user", "s3cret");
    assert_string_equal(h, "Authorization: " USER_PASS_B64);
    pc_up_secret_free(h);
    h = pc_up_auth_basic("a", NULL);
    assert_string_equal(h, "Authorization: Basic YTo="); /* "a:" */
    pc_up_secret_free(h);
    h = pc_up_auth_bearer("t0k");
    assert_string_equal(h, "Authorization: Bearer t0k");
    pc_up_secret_free(h);
}

/* ---- manifests ---- */

static void test_manifest_get(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "open/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(MANIFEST));
    assert_memory_equal(r.body, MANIFEST, r.body_len);
    assert_string_equal(r.digest, manifest_digest.str);
    assert_string_equal(r.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_int_equal(r.content_length, (int64_t)strlen(MANIFEST));
    assert_string_equal(r.error_message, "");
    /* every manifest media type is asked for, no credentials are sent */
    assert_non_null(strstr(reg.last_accept, "application/vnd.oci.image.manifest.v1+json"));
    assert_non_null(strstr(reg.last_accept, "application/vnd.oci.image.index.v1+json"));
    assert_non_null(
        strstr(reg.last_accept, "application/vnd.docker.distribution.manifest.v2+json"));
    assert_non_null(
        strstr(reg.last_accept, "application/vnd.docker.distribution.manifest.list.v2+json"));
    assert_int_equal(atomic_load(&reg.auth_requests), 0);
    pc_upstream_resp_clear(&r);
    /* by digest */
    assert_int_equal(pc_upstream_manifest(u, "open/img", manifest_digest.str, false, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_memory_equal(r.body, MANIFEST, r.body_len);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_manifest_head(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "open/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.digest, manifest_digest.str);
    assert_int_equal(r.content_length, (int64_t)strlen(MANIFEST));
    assert_null(r.body);
    assert_int_equal(r.body_len, 0);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_manifest_not_found(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "open/img", "nope", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_NOT_FOUND);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.error_message, "manifest unknown");
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_manifest_too_big(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "open/huge", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_PROTOCOL);
    assert_true(r.body_len <= ((size_t)4 << 20));
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_invalid_names(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    static const char *const repos[] = {"",   "../etc", "a/../b", "a//b", "/a",
                                        "a/", "a b",    "a?b",    "a/./b"};
    for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++)
        assert_int_equal(pc_upstream_manifest(u, repos[i], "latest", true, &r), PC_EINVAL);
    assert_int_equal(pc_upstream_manifest(u, "open/img", "a/b", true, &r), PC_EINVAL);
    assert_int_equal(pc_upstream_manifest(u, "open/img", "..", true, &r), PC_EINVAL);
    assert_int_equal(pc_upstream_manifest(u, "open/img", "x#y", true, &r), PC_EINVAL);
    assert_int_equal(atomic_load(&reg.requests), 0);
    pc_upstream_free(u);
}

/* ---- a plain GET ---- */

static void test_get(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    /* after a token flow, a plain GET still carries no Authorization */
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    pc_upstream_resp_clear(&r);
    assert_int_equal(pc_upstream_get(u, "/_status", 0, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.media_type, "application/json");
    assert_int_equal(r.body_len, strlen(STATUS_BODY));
    assert_memory_equal(r.body, STATUS_BODY, r.body_len);
    assert_string_equal(reg.last_auth, "");
    pc_upstream_resp_clear(&r);

    /* a body over the limit */
    assert_int_equal(pc_upstream_get(u, "/_status", 8, &r), 0);
    assert_int_equal(r.cls, PC_UP_PROTOCOL);
    assert_string_equal(r.error_message, "response larger than 8 bytes");
    pc_upstream_resp_clear(&r);

    /* not there: the registry's 404 and its message */
    assert_int_equal(pc_upstream_get(u, "/_nope?x=1", 0, &r), 0);
    assert_int_equal(r.cls, PC_UP_NOT_FOUND);
    assert_string_equal(r.error_message, "no such path");
    pc_upstream_resp_clear(&r);

    const char *bad[] = {"", "_status", "/a/../b", "/./x", "/a b", "/a#b", "/a\"b", "/a\nb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pc_upstream_get(u, bad[i], 0, &r), PC_EINVAL);
    assert_int_equal(pc_upstream_get(u, NULL, 0, &r), PC_EINVAL);
    pc_upstream_free(u);
}

/* ---- authentication ---- */

static void test_auth_state(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_auth a;
    pc_upstream_resp r;
    pc_upstream_auth_state(u, &a);
    assert_string_equal(a.challenge.scheme, ""); /* nothing asked yet */
    assert_false(a.credentials);
    assert_false(a.static_token);
    assert_int_equal(pc_upstream_manifest(u, "open/img", "latest", true, &r), 0);
    pc_upstream_resp_clear(&r);
    pc_upstream_auth_state(u, &a);
    assert_string_equal(a.challenge.scheme, ""); /* an open repository: no challenge */
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", true, &r), 0);
    pc_upstream_resp_clear(&r);
    pc_upstream_auth_state(u, &a);
    assert_string_equal(a.challenge.scheme, "Bearer");
    char realm[64];
    snprintf(realm, sizeof(realm), "http://127.0.0.1:%u/token", tok.port);
    assert_string_equal(a.challenge.realm, realm);
    assert_string_equal(a.challenge.service, "test-registry");
    assert_string_equal(a.challenge.scope, "");
    assert_false(a.credentials);
    assert_int_equal(strncmp(pc_upstream_url(u), "http://127.0.0.1:", 17), 0);
    assert_int_not_equal(pc_upstream_url(u)[strlen(pc_upstream_url(u)) - 1], '/');
    pc_upstream_free(u);

    pc_upstream_opts o = {.name = "creds", .username = "user", .password = "s3cret"};
    u = client(&o);
    pc_upstream_auth_state(u, &a);
    assert_true(a.credentials);
    pc_upstream_free(u);
    pc_upstream_opts t = {.name = "static", .token = GOOD_TOKEN};
    u = client(&t);
    pc_upstream_auth_state(u, &a);
    assert_true(a.static_token);
    pc_upstream_free(u);
}

static void test_token_flow_anonymous(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_memory_equal(r.body, MANIFEST, r.body_len);
    assert_int_equal(atomic_load(&tok.requests), 1);
    assert_string_equal(tok.last_scope, "repository:auth/img:pull");
    assert_string_equal(tok.last_service, "test-registry");
    assert_string_equal(tok.last_auth, ""); /* anonymous */
    assert_string_equal(reg.last_auth, "Bearer " GOOD_TOKEN);
    assert_int_equal(atomic_load(&reg.requests), 2); /* the 401, then the retry */
    pc_upstream_resp_clear(&r);

    /* the token is reused: no second token request, no second 401 */
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_string_equal(r.digest, manifest_digest.str);
    assert_int_equal(atomic_load(&tok.requests), 1);
    assert_int_equal(atomic_load(&reg.requests), 3);
    pc_upstream_resp_clear(&r);

    /* another repository: a new scope, fetched up front (the challenge is known) */
    assert_int_equal(pc_upstream_manifest(u, "auth/other", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(atomic_load(&tok.requests), 2);
    assert_string_equal(tok.last_scope, "repository:auth/other:pull");
    assert_int_equal(atomic_load(&reg.requests), 4);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_token_flow_credentials(void **state)
{
    token_required_auth = USER_PASS_B64;
    atomic_store(&token_mode, 1); /* access_token, no expires_in */
    pc_upstream_opts o = {.name = "creds", .username = "user", .password = "s3cret"};
    pc_upstream *u = client(&o);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_string_equal(tok.last_auth, USER_PASS_B64);
    assert_string_equal(reg.last_auth, "Bearer " GOOD_TOKEN);
    pc_upstream_resp_clear(&r);
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(atomic_load(&tok.requests), 1); /* 60 s default lifetime */
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);

    /* wrong password: denied by the token server; the secret is nowhere */
    pc_upstream_opts bad = {.name = "bad", .username = "user", .password = "wrongpass"};
    u = client(&bad);
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_DENIED);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.error_message, "incorrect username or password"));
    assert_null(strstr(r.error_message, "wrongpass"));
    assert_null(strstr(pc_error_last(), "wrongpass"));
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_static_token(void **state)
{
    pc_upstream_opts o = {.name = "static", .token = GOOD_TOKEN};
    pc_upstream *u = client(&o);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(atomic_load(&reg.requests), 1);
    assert_int_equal(atomic_load(&tok.requests), 0);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);

    pc_upstream_opts bad = {.name = "static", .token = "revoked"};
    u = client(&bad);
    assert_int_equal(pc_upstream_manifest(u, "auth/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_DENIED);
    assert_null(strstr(r.error_message, "revoked"));
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_basic_challenge(void **state)
{
    pc_upstream_opts o = {.name = "basic", .username = "user", .password = "s3cret"};
    pc_upstream *u = client(&o);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "basic/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_string_equal(reg.last_auth, USER_PASS_B64);
    assert_int_equal(atomic_load(&reg.requests), 2);
    pc_upstream_resp_clear(&r);
    /* known to be Basic now: credentials up front */
    assert_int_equal(pc_upstream_manifest(u, "basic/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(atomic_load(&reg.requests), 3);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);

    u = client(NULL); /* anonymous: denied */
    assert_int_equal(pc_upstream_manifest(u, "basic/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_DENIED);
    assert_int_equal(r.status, 401);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

/* ---- failures ---- */

static void test_too_many_requests(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "limited/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_TOO_MANY);
    assert_int_equal(r.status, 429);
    assert_true(has_prefix(r.error_message, "You have reached your pull rate limit."));
    assert_string_equal(r.ratelimit_limit, "100;w=21600");
    assert_string_equal(r.ratelimit_remaining, "0;w=21600");
    assert_string_equal(r.ratelimit_source, "203.0.113.7");
    assert_string_equal(r.retry_after, "60");
    assert_int_equal(r.body_len, strlen(TOOMANY_BODY));
    assert_memory_equal(r.body, TOOMANY_BODY, r.body_len);
    pc_upstream_resp_clear(&r);
    /* HEAD: no body, the headers still tell */
    assert_int_equal(pc_upstream_manifest(u, "limited/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_TOO_MANY);
    assert_string_equal(r.ratelimit_remaining, "0;w=21600");
    assert_string_equal(r.error_message, "HTTP 429");
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_server_error(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "broken/img", "latest", false, &r), 0);
    assert_int_equal(r.cls, PC_UP_SERVER);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.error_message, "service unavailable");
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_refused(void **state)
{
    /* a port nobody listens on: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sa.sin_port));
    pc_upstream_opts o = {.name = "gone", .url = url, .connect_timeout_ms = 1000};
    pc_upstream *u = NULL;
    assert_int_equal(pc_upstream_new(&u, &o), 0);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "open/img", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_REFUSED);
    assert_int_equal(r.status, 0);
    assert_true(r.error_message[0] != '\0');
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_new_invalid(void **state)
{
    pc_upstream *u = NULL;
    pc_upstream_opts o = {.name = "x", .url = "ftp://example.invalid"};
    assert_int_equal(pc_upstream_new(&u, &o), PC_EINVAL);
    assert_null(u);
    o.url = NULL;
    assert_int_equal(pc_upstream_new(&u, &o), PC_EINVAL);
    o.url = "not a url";
    assert_int_equal(pc_upstream_new(&u, &o), PC_EINVAL);
}

/* ---- blobs ---- */

typedef struct {
    int starts;
    long start_status;
    int64_t start_length;
    char start_digest[PC_DIGEST_MAX];
    int pieces;
    char *data;
    size_t len;
    size_t abort_after; /* 0 = never */
} sink;

static int sink_start(const pc_upstream_resp *resp, void *ctx)
{
    sink *k = ctx;
    k->starts++;
    k->start_status = resp->status;
    k->start_length = resp->content_length;
    snprintf(k->start_digest, sizeof(k->start_digest), "%s", resp->digest);
    assert_int_equal(k->len, 0); /* before any body byte */
    return 0;
}

static int sink_data(const void *buf, size_t len, void *ctx)
{
    sink *k = ctx;
    assert_int_equal(k->starts, 1);
    char *nd = realloc(k->data, k->len + len);
    assert_non_null(nd);
    k->data = nd;
    memcpy(k->data + k->len, buf, len);
    k->len += len;
    k->pieces++;
    return k->abort_after && k->len >= k->abort_after ? 1 : 0;
}

static void test_blob_redirect_stream(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    sink k = {0};
    assert_int_equal(
        pc_upstream_blob(u, "auth/redir", &blob_digest, false, sink_start, sink_data, &k, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(r.status, 200);
    /* the 401 and the 307 never reached the callbacks */
    assert_int_equal(k.starts, 1);
    assert_int_equal(k.start_status, 200);
    assert_int_equal(k.start_length, (int64_t)BLOB_LEN);
    assert_string_equal(k.start_digest, blob_digest.str);
    assert_true(k.pieces > 1);
    assert_int_equal(k.len, BLOB_LEN);
    assert_memory_equal(k.data, blob, BLOB_LEN);
    assert_null(r.body);
    /* the registry saw the token; the blob host saw no Authorization at all */
    assert_string_equal(reg.last_auth, "Bearer " GOOD_TOKEN);
    assert_int_equal(atomic_load(&blobhost.requests), 1);
    assert_int_equal(atomic_load(&blobhost.auth_requests), 0);
    assert_string_equal(blobhost.last_auth, "");
    free(k.data);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_blob_relative_redirect(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    sink k = {0};
    assert_int_equal(
        pc_upstream_blob(u, "auth/relredir", &blob_digest, false, sink_start, sink_data, &k, &r),
        0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(k.len, BLOB_LEN);
    assert_memory_equal(k.data, blob, BLOB_LEN);
    /* 401, retry -> 302, same host with the token -> 200 */
    assert_int_equal(atomic_load(&reg.requests), 3);
    assert_int_equal(atomic_load(&tok.requests), 1);
    assert_string_equal(reg.last_auth, "Bearer " GOOD_TOKEN);
    free(k.data);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_blob_foreign_challenge(void **state)
{
    token_required_auth = USER_PASS_B64;
    pc_upstream_opts o = {.name = "creds", .username = "user", .password = "s3cret"};
    pc_upstream *u = client(&o);
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_manifest(u, "auth/redir401", "latest", true, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(atomic_load(&tok.requests), 1);
    pc_upstream_resp_clear(&r);
    /* the blob host's 401 is the answer: no token fetched for it, nothing retried */
    sink k = {0};
    assert_int_equal(
        pc_upstream_blob(u, "auth/redir401", &blob_digest, false, sink_start, sink_data, &k, &r),
        0);
    assert_int_equal(r.cls, PC_UP_DENIED);
    assert_int_equal(r.status, 401);
    assert_int_equal(k.starts, 0);
    assert_int_equal(atomic_load(&tok.requests), 1);
    assert_int_equal(atomic_load(&blobhost.requests), 1);
    assert_int_equal(atomic_load(&blobhost.auth_requests), 0);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_blob_head(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    sink k = {0};
    assert_int_equal(
        pc_upstream_blob(u, "open/img", &blob_digest, true, sink_start, sink_data, &k, &r), 0);
    assert_int_equal(r.cls, PC_UP_OK);
    assert_int_equal(r.content_length, (int64_t)BLOB_LEN);
    assert_string_equal(r.digest, blob_digest.str);
    assert_int_equal(k.starts, 1);
    assert_int_equal(k.len, 0);
    pc_upstream_resp_clear(&r);
    /* an unknown blob: error body kept, no callbacks */
    pc_digest other;
    assert_int_equal(pc_digest_buffer(&other, PC_DIGEST_SHA256, "x", 1), 0);
    sink k2 = {0};
    assert_int_equal(pc_upstream_blob(u, "open/img", &other, false, sink_start, sink_data, &k2, &r),
                     0);
    assert_int_equal(r.cls, PC_UP_NOT_FOUND);
    assert_int_equal(k2.starts, 0);
    assert_string_equal(r.error_message, "blob unknown");
    assert_non_null(strstr(r.body, "BLOB_UNKNOWN"));
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_blob_short_body(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    sink k = {0};
    assert_int_equal(
        pc_upstream_blob(u, "open/short", &blob_digest, false, sink_start, sink_data, &k, &r), 0);
    assert_int_equal(r.cls, PC_UP_RESET);
    assert_int_equal(k.starts, 1);
    assert_int_equal(k.start_length, SHORT_DECLARED);
    assert_true(k.len <= SHORT_SENT);
    free(k.data);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static void test_blob_abort(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    sink k = {.abort_after = 1};
    assert_int_equal(
        pc_upstream_blob(u, "open/img", &blob_digest, false, sink_start, sink_data, &k, &r), 0);
    assert_int_equal(r.cls, PC_UP_ABORTED);
    assert_int_equal(k.pieces, 1);
    free(k.data);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_blob_read_timeout(void **state)
{
    pc_upstream_opts o = {.name = "stall", .read_timeout_ms = 1000};
    pc_upstream *u = client(&o);
    pc_upstream_resp r;
    sink k = {0};
    atomic_store(&stall_release, false);
    double t0 = now_s();
    assert_int_equal(
        pc_upstream_blob(u, "open/stall", &blob_digest, false, sink_start, sink_data, &k, &r), 0);
    double took = now_s() - t0;
    atomic_store(&stall_release, true);
    assert_int_equal(r.cls, PC_UP_TIMEOUT);
    assert_true(took >= 0.9 && took < 4.0);
    free(k.data);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
}

/* ---- connections ---- */

static void test_connection_reuse(void **state)
{
    pc_upstream *u = client(NULL);
    pc_upstream_resp r;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(pc_upstream_manifest(u, "open/img", "latest", i % 2 == 0, &r), 0);
        assert_int_equal(r.cls, PC_UP_OK);
        pc_upstream_resp_clear(&r);
        /* error responses keep the connection too */
        assert_int_equal(pc_upstream_manifest(u, "open/img", "missing", true, &r), 0);
        assert_int_equal(r.cls, PC_UP_NOT_FOUND);
        pc_upstream_resp_clear(&r);
    }
    assert_int_equal(atomic_load(&reg.requests), 40);
    assert_int_equal(atomic_load(&reg.connections), 1);
    pc_upstream_free(u);
}

typedef struct {
    pc_upstream *u;
    int cls;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    pc_upstream_resp r;
    a->cls = -1;
    if (pc_upstream_manifest(a->u, "slow/img", "latest", false, &r) == 0)
        a->cls = (int)r.cls;
    pc_upstream_resp_clear(&r);
    return NULL;
}

static void test_max_connections(void **state)
{
    pc_upstream_opts o = {.name = "capped", .max_connections = 2};
    pc_upstream *u = client(&o);
    pthread_t th[6];
    worker_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i].u = u;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].cls, PC_UP_OK);
    }
    assert_int_equal(atomic_load(&reg.requests), 6);
    assert_true(atomic_load(&reg.max_in_flight) <= 2);
    assert_true(atomic_load(&reg.connections) <= 2);
    pc_upstream_free(u);
}

/* TLS spoken to the plain-HTTP test registry fails as PC_UP_TLS (what the
 * clients' loopback fallback and advice rely on: the server may answer the
 * handshake with an HTTP error or hang up on it, so the message varies);
 * pc_upstream_tls_plain_http knows the messages of an HTTP answer and
 * takes no other failure for one. */
static void test_tls_to_plain_http(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", reg.port);
    pc_upstream_opts o = {.name = "plain", .url = url, .read_timeout_ms = 5000};
    pc_upstream *u = NULL;
    pc_upstream_resp r;
    assert_int_equal(pc_upstream_new(&u, &o), 0);
    assert_int_equal(pc_upstream_get(u, "/v2/", 0, &r), 0);
    pc_up_class cls = r.cls;
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
    assert_int_equal(cls, PC_UP_TLS);

    assert_true(pc_upstream_tls_plain_http(
        "OpenSSL/3.0.19: error:0A00010B:SSL routines::wrong version number"));
    assert_true(pc_upstream_tls_plain_http("error:1408F10B:SSL routines:ssl3_get_record:wrong "
                                           "version number"));
    assert_true(pc_upstream_tls_plain_http("error:1408E0F4:SSL routines:ssl3_get_message:packet "
                                           "length too long"));
    assert_true(pc_upstream_tls_plain_http("An unexpected TLS packet was received."));
    assert_true(pc_upstream_tls_plain_http("A TLS packet with unexpected length was received."));
    assert_false(pc_upstream_tls_plain_http(
        "SSL certificate problem: unable to get local issuer certificate"));
    assert_false(pc_upstream_tls_plain_http(
        "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to 127.0.0.1:5000 "));
    assert_false(pc_upstream_tls_plain_http(""));
    assert_false(pc_upstream_tls_plain_http(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_tls_to_plain_http, test_setup),
        cmocka_unit_test(test_chal_dockerhub),
        cmocka_unit_test(test_chal_basic),
        cmocka_unit_test(test_chal_order_case_spaces),
        cmocka_unit_test(test_chal_escapes),
        cmocka_unit_test(test_chal_malformed),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_class_str),
        cmocka_unit_test(test_token_parse),
        cmocka_unit_test(test_token_cache),
        cmocka_unit_test(test_auth_values),
        cmocka_unit_test_setup(test_manifest_get, test_setup),
        cmocka_unit_test_setup(test_manifest_head, test_setup),
        cmocka_unit_test_setup(test_manifest_not_found, test_setup),
        cmocka_unit_test_setup(test_manifest_too_big, test_setup),
        cmocka_unit_test_setup(test_invalid_names, test_setup),
        cmocka_unit_test_setup(test_get, test_setup),
        cmocka_unit_test_setup(test_auth_state, test_setup),
        cmocka_unit_test_setup(test_token_flow_anonymous, test_setup),
        cmocka_unit_test_setup(test_token_flow_credentials, test_setup),
        cmocka_unit_test_setup(test_static_token, test_setup),
        cmocka_unit_test_setup(test_basic_challenge, test_setup),
        cmocka_unit_test_setup(test_too_many_requests, test_setup),
        cmocka_unit_test_setup(test_server_error, test_setup),
        cmocka_unit_test_setup(test_refused, test_setup),
        cmocka_unit_test_setup(test_new_invalid, test_setup),
        cmocka_unit_test_setup(test_blob_redirect_stream, test_setup),
        cmocka_unit_test_setup(test_blob_relative_redirect, test_setup),
        cmocka_unit_test_setup(test_blob_foreign_challenge, test_setup),
        cmocka_unit_test_setup(test_blob_head, test_setup),
        cmocka_unit_test_setup(test_blob_short_body, test_setup),
        cmocka_unit_test_setup(test_blob_abort, test_setup),
        cmocka_unit_test_setup(test_blob_read_timeout, test_setup),
        cmocka_unit_test_setup(test_connection_reuse, test_setup),
        cmocka_unit_test_setup(test_max_connections, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
