/*
 * client.c - shared connection flags, credential lookup and registry client
 * opening for the client verbs (see client.h).
 *
 * Credential sources, first match wins: --username (or --src-username,
 * --dest-username) with --password-env, --password-file or
 * --password-stdin; --anonymous; PULLCACHE_USERNAME + PULLCACHE_PASSWORD;
 * the auth file (docker's
 * config.json or a containers auth.json: {"auths": {"host": {"auth":
 * base64("user:pass")}}} or "username"/"password" members). Credential
 * helpers (credsStore, credHelpers) are not run: the user is told to pass
 * credentials another way. Secrets are wiped before they are freed and are
 * never printed.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "client.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base64.h"

#define CLIENT_SECRET_MAX 4096

static const pc_client_side side_unset = {.plain_http = -1, .insecure = -1, .anonymous = -1};

void pc_client_opts_init(pc_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->all = o->src = o->dst = side_unset;
    o->connect_timeout_ms = 10000;
    o->read_timeout_ms = 60000;
    o->max_connections = 16;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void pc_client_opts_clear(pc_client_opts *o)
{
    wipe_free(o->stdin_password);
    o->stdin_password = NULL;
}

static int parse_secs(const char *flag, const char *arg, long *out_ms)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < 1 || v > 86400) {
        fprintf(stderr, "pullcache: %s wants whole seconds between 1 and 86400, not '%s'\n", flag,
                arg);
        return -1;
    }
    *out_ms = v * 1000;
    return 1;
}

/* "--", "--src-" or "--dest-": how which's flags begin. */
static const char *flag_prefix(pc_client_which which)
{
    return which == PC_CLIENT_SRC ? "--src-" : which == PC_CLIENT_DST ? "--dest-" : "--";
}

/* One of the flags a side has (k: the offset from PC_CLIENT_OPT_PLAIN_HTTP). */
static int side_opt(pc_client_side *side, pc_client_which which, int k, const char *arg)
{
    static const char *const names[] = {"plain-http",   "insecure",      "ca-file",  "username",
                                        "password-env", "password-file", "anonymous"};
    const char *pre = flag_prefix(which);
    if (k >= 2 && k <= 5 && !*arg) {
        fprintf(stderr, "pullcache: %s%s wants a value\n", pre, names[k]);
        return -1;
    }
    switch (k) {
    case 0:
        side->plain_http = 1;
        return 1;
    case 1:
        side->insecure = 1;
        return 1;
    case 2:
        side->ca_file = arg;
        return 1;
    case 3:
        side->username = arg;
        return 1;
    case 4:
        if (!pc_endpoint_env_name_valid(arg)) {
            fprintf(stderr,
                    "pullcache: %spassword-env wants the name of an environment variable, not "
                    "'%s'\n",
                    pre, arg);
            return -1;
        }
        side->password_env = arg;
        return 1;
    case 5:
        side->password_file = arg;
        return 1;
    case 6:
        side->anonymous = 1;
        return 1;
    default:
        return 0;
    }
}

int pc_client_opt(pc_client_opts *o, int code, const char *arg)
{
    if (code >= PC_CLIENT_OPT_PLAIN_HTTP && code <= PC_CLIENT_OPT_ANONYMOUS)
        return side_opt(&o->all, PC_CLIENT_BOTH, code - PC_CLIENT_OPT_PLAIN_HTTP, arg);
    if (code >= PC_CLIENT_OPT_SRC && code <= PC_CLIENT_OPT_SRC + 6)
        return side_opt(&o->src, PC_CLIENT_SRC, code - PC_CLIENT_OPT_SRC, arg);
    if (code >= PC_CLIENT_OPT_DST && code <= PC_CLIENT_OPT_DST + 6)
        return side_opt(&o->dst, PC_CLIENT_DST, code - PC_CLIENT_OPT_DST, arg);
    switch (code) {
    case PC_CLIENT_OPT_PASSWORD_STDIN:
        o->password_stdin = true;
        return 1;
    case PC_CLIENT_OPT_AUTH_FILE:
        o->auth_file = arg;
        return 1;
    case PC_CLIENT_OPT_CONNECT_TIMEOUT:
        return parse_secs("--connect-timeout", arg, &o->connect_timeout_ms);
    case PC_CLIENT_OPT_TIMEOUT:
        return parse_secs("--timeout", arg, &o->read_timeout_ms);
    default:
        return 0;
    }
}

int pc_client_getopt(pc_client_opts *o, const char *verb, int argc, char **argv,
                     const char *shortopts, const struct option *longopts)
{
    for (;;) {
        int c = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (c == -1 && o->password_stdin && !o->all.username && !o->src.username &&
            !o->dst.username) {
            bool sides = false;
            for (const struct option *lo = longopts; lo->name; lo++)
                sides = sides || lo->val == PC_CLIENT_OPT_SRC + 3;
            fprintf(stderr, "pullcache %s: --password-stdin goes with --username%s\n", verb,
                    sides ? " (or --src-username, --dest-username)" : "");
            return -1;
        }
        if (c == -1)
            return 0;
        if (c == '?' || c == ':') {
            fprintf(stderr, "`pullcache %s --help` lists the options\n", verb);
            return -1;
        }
        int shared = pc_client_opt(o, c, optarg);
        if (shared < 0)
            return -1;
        if (shared == 0)
            return c;
    }
}

atomic_bool pc_cli_stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    atomic_store(&pc_cli_stop_flag, true);
}

void pc_cli_catch_stop(int how)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: a sleep ends at once */
    sa.sa_flags = how & PC_CLI_STOP_ONCE ? SA_RESETHAND : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    if (how & PC_CLI_STOP_TERM)
        sigaction(SIGTERM, &sa, NULL);
}

static bool is_docker_hub(const char *host)
{
    return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
           strcmp(host, "registry-1.docker.io") == 0;
}

/* The first line of f as a password (malloc'd into *out). what names the
 * source in messages. 0 or -1 (message printed). */
static int read_secret_line(FILE *f, const char *what, char **out)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        fprintf(stderr, "pullcache: %s: nothing to read\n", what);
        return -1;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n == 0 || n > CLIENT_SECRET_MAX) {
        OPENSSL_cleanse(line, cap);
        free(line);
        fprintf(stderr, "pullcache: %s: the password is empty or too long\n", what);
        return -1;
    }
    *out = line;
    return 0;
}

static bool key_matches(const char *key, const char *host)
{
    char kh[PC_HOST_MAX];
    pc_util_url_host(key, kh, sizeof(kh)); /* "https://index.docker.io/v1/": index.docker.io */
    if (strcmp(kh, host) == 0)
        return true;
    return is_docker_hub(host) && is_docker_hub(kh);
}

/* Decode base64("user:pass") into a malloc'd user and password. */
static int decode_auth(const char *b64, char **user, char **pass)
{
    size_t len = strlen(b64);
    if (len == 0 || len > 2 * CLIENT_SECRET_MAX || len % 4)
        return -1;
    unsigned char *raw;
    size_t n;
    if (pc_base64_decode(b64, len, false, &raw, &n) != 0)
        return -1;
    char *colon = memchr(raw, ':', n);
    int rc = -1;
    if (colon && colon != (char *)raw && strlen((char *)raw) == n) {
        *colon = '\0';
        *user = strdup((char *)raw);
        *pass = strdup(colon + 1);
        rc = *user && *pass && **pass ? 0 : -1;
        if (rc) {
            free(*user);
            wipe_free(*pass);
            *user = *pass = NULL;
        }
    }
    OPENSSL_cleanse(raw, n);
    free(raw);
    return rc;
}

/* The credential files a user's tools write, in the order podman and
 * skopeo read them, then Docker's: REGISTRY_AUTH_FILE alone when set; else
 * $XDG_RUNTIME_DIR/containers/auth.json (podman login's default),
 * /run/containers/<uid>/auth.json, $XDG_CONFIG_HOME (~/.config)/containers/
 * auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json. Fills
 * paths[] (each PATH_MAX); returns how many. */
#define AUTH_FILES_MAX 5
static int default_auth_files(char paths[AUTH_FILES_MAX][4096])
{
    int n = 0;
    const char *env = getenv("REGISTRY_AUTH_FILE");
    if (env && *env) {
        snprintf(paths[n++], 4096, "%s", env);
        return n;
    }
    const char *xr = getenv("XDG_RUNTIME_DIR"), *xc = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME"), *dc = getenv("DOCKER_CONFIG");
    if (xr && *xr)
        snprintf(paths[n++], 4096, "%s/containers/auth.json", xr);
    else
        snprintf(paths[n++], 4096, "/run/containers/%u/auth.json", (unsigned)getuid());
    if (xc && *xc)
        snprintf(paths[n++], 4096, "%s/containers/auth.json", xc);
    else if (home && *home)
        snprintf(paths[n++], 4096, "%s/.config/containers/auth.json", home);
    if (dc && *dc)
        snprintf(paths[n++], 4096, "%s/config.json", dc);
    else if (home && *home)
        snprintf(paths[n++], 4096, "%s/.docker/config.json", home);
    return n;
}

/* Look host up in an auth file. 0 = found (user/pass set), 1 = nothing for
 * host (or no file), -1 = malformed (message printed). */
static int from_auth_file(const char *path, bool explicit_path, const char *host, char **user,
                          char **pass)
{
    json_error_t err;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (explicit_path) {
            fprintf(stderr, "pullcache: cannot read the credentials file %s: %s\n", path,
                    strerror(errno));
            return -1;
        }
        return 1;
    }
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
    fclose(f);
    if (!root || !json_is_object(root)) {
        fprintf(stderr,
                "pullcache: %s is not a JSON object (line %d: %s); fix or move it, or "
                "pass --anonymous\n",
                path, err.line, root ? "top level" : err.text);
        json_decref(root);
        return -1;
    }
    int rc = 1;
    const char *key;
    json_t *entry;
    json_t *auths = json_object_get(root, "auths");
    json_object_foreach(json_is_object(auths) ? auths : NULL, key, entry)
    {
        if (!key_matches(key, host) || !json_is_object(entry))
            continue;
        const char *auth = json_string_value(json_object_get(entry, "auth"));
        const char *u = json_string_value(json_object_get(entry, "username"));
        const char *p = json_string_value(json_object_get(entry, "password"));
        if (auth && *auth) {
            if (decode_auth(auth, user, pass) != 0) {
                fprintf(stderr,
                        "pullcache: %s: the \"auth\" entry for %s is not base64 of "
                        "user:password\n",
                        path, key);
                rc = -1;
            } else {
                rc = 0;
            }
            break;
        }
        if (u && *u && p && *p) {
            *user = strdup(u);
            *pass = strdup(p);
            rc = *user && *pass ? 0 : -1;
            break;
        }
    }
    if (rc == 1) {
        json_t *helpers = json_object_get(root, "credHelpers");
        bool helper = json_is_string(json_object_get(root, "credsStore"));
        json_object_foreach(json_is_object(helpers) ? helpers : NULL, key, entry)
        {
            if (key_matches(key, host))
                helper = true;
        }
        if (helper)
            fprintf(stderr,
                    "pullcache: note: %s names a credential helper for %s; helpers are not run, "
                    "so this pull is anonymous (use --username and --password-stdin)\n",
                    path, host);
    }
    json_decref(root);
    return rc;
}

void pc_client_side_over(pc_client_side *base, const pc_client_side *over)
{
    if (over->plain_http >= 0)
        base->plain_http = over->plain_http;
    if (over->insecure >= 0)
        base->insecure = over->insecure;
    if (over->anonymous >= 0)
        base->anonymous = over->anonymous;
    if (over->ca_file)
        base->ca_file = over->ca_file;
    if (over->username)
        base->username = over->username;
    if (over->password_env || over->password_file) { /* a password source replaces the other */
        base->password_env = over->password_env;
        base->password_file = over->password_file;
    }
}

void pc_client_side_of(const pc_client_opts *o, pc_client_which which, pc_client_side *out)
{
    *out = o->all;
    if (which == PC_CLIENT_SRC)
        pc_client_side_over(out, &o->src);
    else if (which == PC_CLIENT_DST)
        pc_client_side_over(out, &o->dst);
}

/* The password for side->username into *pass (malloc'd): its environment
 * variable, its file, else --password-stdin (read once into o). *from says
 * which. 0 or -1 (message printed). */
static int side_password(pc_client_opts *o, pc_client_which which, const pc_client_side *side,
                         char **pass, char *from, size_t from_size)
{
    const char *pre = flag_prefix(which);
    *pass = NULL;
    if (side->password_env && side->password_file) {
        fprintf(stderr, "pullcache: %spassword-env and %spassword-file exclude each other\n", pre,
                pre);
        return -1;
    }
    if (side->password_env) {
        const char *v = getenv(side->password_env);
        if (!v || !*v || strlen(v) > CLIENT_SECRET_MAX) {
            fprintf(stderr, "pullcache: %spassword-env: $%s is %s\n", pre, side->password_env,
                    v && *v ? "too long" : "empty or not set");
            return -1;
        }
        snprintf(from, from_size, "$%s", side->password_env);
        return (*pass = strdup(v)) ? 0 : -1;
    }
    if (side->password_file) {
        char what[600];
        snprintf(what, sizeof(what), "%spassword-file %s", pre, side->password_file);
        FILE *f = fopen(side->password_file, "r");
        if (!f) {
            fprintf(stderr, "pullcache: %s: %s\n", what, strerror(errno));
            return -1;
        }
        int rc = read_secret_line(f, what, pass);
        fclose(f);
        snprintf(from, from_size, "%s", side->password_file);
        return rc;
    }
    if (o->password_stdin) {
        if (!o->stdin_password && read_secret_line(stdin, "--password-stdin", &o->stdin_password))
            return -1;
        snprintf(from, from_size, "flags");
        return (*pass = strdup(o->stdin_password)) ? 0 : -1;
    }
    fprintf(stderr,
            "pullcache: %susername wants a password: %spassword-env VAR, %spassword-file FILE "
            "or --password-stdin\n",
            pre, pre, pre);
    return -1;
}

/* The credentials for host: *user and *pass malloc'd (both NULL for
 * anonymous access), conn->cred_source filled. 0 or -1 (message printed). */
static int side_credentials(pc_client_opts *o, pc_client_which which, const pc_client_side *side,
                            const char *host, char **user, char **pass, pc_client_conn *conn)
{
    *user = *pass = NULL;
    snprintf(conn->cred_source, sizeof(conn->cred_source), "anonymous");
    if (side->username) {
        if (side_password(o, which, side, pass, conn->cred_source, sizeof(conn->cred_source)))
            return -1;
        if (!(*user = strdup(side->username))) {
            wipe_free(*pass);
            *pass = NULL;
            return -1;
        }
        return 0;
    }
    if (side->password_env || side->password_file) {
        const char *pre = flag_prefix(which);
        fprintf(stderr, "pullcache: %spassword-%s goes with %susername\n", pre,
                side->password_env ? "env" : "file", pre);
        return -1;
    }
    if (side->anonymous == 1)
        return 0;
    const char *eu = getenv("PULLCACHE_USERNAME"), *ep = getenv("PULLCACHE_PASSWORD");
    if (eu && *eu && ep && *ep) {
        *user = strdup(eu);
        *pass = strdup(ep);
        if (!*user || !*pass) {
            free(*user);
            wipe_free(*pass);
            *user = *pass = NULL;
            return -1;
        }
        snprintf(conn->cred_source, sizeof(conn->cred_source), "environment");
        return 0;
    }
    if (o->auth_file) {
        int rc = from_auth_file(o->auth_file, true, host, user, pass);
        if (rc == 0)
            snprintf(conn->cred_source, sizeof(conn->cred_source), "%s", o->auth_file);
        return rc < 0 ? -1 : 0;
    }
    char paths[AUTH_FILES_MAX][4096];
    int n = default_auth_files(paths);
    for (int i = 0; i < n; i++) {
        int rc = from_auth_file(paths[i], false, host, user, pass);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            snprintf(conn->cred_source, sizeof(conn->cred_source), "%.4000s", paths[i]);
            return 0;
        }
    }
    return 0;
}

/* A registry client for host at url, as user with password (both NULL for
 * anonymous access), with o's timeouts and side's TLS settings. 0, or -1
 * with "pullcache VERB: cannot set up a client for HOST: ..." on stderr. */
static int client_new(const pc_client_opts *o, const char *verb, const pc_client_side *side,
                      const char *host, const char *url, const char *user, const char *password,
                      pc_upstream **out)
{
    pc_upstream_opts uo = {
        .name = host,
        .url = url,
        .username = user,
        .password = password,
        .connect_timeout_ms = o->connect_timeout_ms,
        .read_timeout_ms = o->read_timeout_ms,
        .max_connections = o->max_connections,
        .ca_file = side->ca_file,
        .insecure_tls = side->insecure == 1,
    };
    if (pc_upstream_new(out, &uo) != 0) {
        fprintf(stderr, "pullcache%s%s: cannot set up a client for %s: %s\n", verb ? " " : "",
                verb ? verb : "", host, pc_error_last());
        return -1;
    }
    return 0;
}

/* Whether a probe of /v2/ over u got an HTTP answer (any status). With
 * *cls the class of the exchange and msg its message. */
static bool probe_answers(pc_upstream *u, pc_up_class *cls, char *msg, size_t size)
{
    pc_upstream_resp r;
    if (pc_upstream_get(u, "/v2/", 64 * 1024, &r) != 0) {
        *cls = PC_UP_PROTOCOL;
        return false;
    }
    *cls = r.cls;
    snprintf(msg, size, "%s", r.error_message);
    bool answered = r.status != 0;
    pc_upstream_resp_clear(&r);
    return answered;
}

int pc_client_connect(pc_client_opts *o, const char *verb, pc_client_which which,
                      const pc_client_side *side, const char *host, pc_endpoint_scheme scheme,
                      pc_upstream **out, pc_client_conn *conn)
{
    pc_client_conn local;
    char *user = NULL, *pass = NULL;
    int rc = -1;
    if (!conn)
        conn = &local;
    memset(conn, 0, sizeof(*conn));
    *out = NULL;

    bool https = true, loopback_rule = false, hub = is_docker_hub(host);
    const char *url_host = hub ? "registry-1.docker.io" : host;
    if (!hub && scheme != PC_ENDPOINT_SCHEME_NONE)
        https = scheme == PC_ENDPOINT_SCHEME_HTTPS;
    else if (!hub && side->plain_http >= 0)
        https = side->plain_http == 0;
    else if (!hub)
        loopback_rule = !side->ca_file && pc_endpoint_loopback(host);
    int n = snprintf(conn->url, sizeof(conn->url), "%s://%s", https ? "https" : "http", url_host);
    if (n < 0 || (size_t)n >= sizeof(conn->url)) {
        fprintf(stderr, "pullcache %s: registry host too long\n", verb ? verb : "");
        return -1;
    }
    if (side_credentials(o, which, side, host, &user, &pass, conn) != 0)
        goto done;
    if (user)
        snprintf(conn->username, sizeof(conn->username), "%s", user);
    pc_client_side eff = *side;
    if (loopback_rule && eff.insecure < 0)
        eff.insecure = 1; /* Docker: an insecure registry's certificate is not checked */
    if (client_new(o, verb, &eff, host, conn->url, user, pass, out) != 0)
        goto done;
    rc = 0;
    if (loopback_rule) {
        pc_up_class cls;
        char msg[512];
        if (probe_answers(*out, &cls, msg, sizeof(msg)) || cls != PC_UP_TLS)
            goto done; /* it speaks TLS (or is down: its own error follows) */
        char url[sizeof(conn->url)];
        pc_upstream *plain = NULL;
        snprintf(url, sizeof(url), "http://%s", host);
        if (client_new(o, verb, &eff, host, url, user, pass, &plain) != 0) {
            rc = -1;
            goto done;
        }
        if (!probe_answers(plain, &cls, msg, sizeof(msg))) {
            pc_upstream_free(plain); /* neither: keep https and its TLS error */
            goto done;
        }
        pc_upstream_free(*out);
        *out = plain;
        snprintf(conn->url, sizeof(conn->url), "%s", url);
        conn->fell_back = true;
    }
done:
    free(user);
    wipe_free(pass);
    if (rc != 0) {
        pc_upstream_free(*out);
        *out = NULL;
    }
    return rc;
}

int pc_client_open(pc_client_opts *o, const char *verb, const pc_ref *ref,
                   pc_endpoint_scheme scheme, pc_upstream **out)
{
    pc_client_side side;
    pc_client_side_of(o, PC_CLIENT_BOTH, &side);
    return pc_client_connect(o, verb, PC_CLIENT_BOTH, &side, ref->host, scheme, out, NULL);
}

int pc_client_parse_ref(const char *s, pc_ref *out, pc_endpoint_scheme *scheme)
{
    pc_endpoint_scheme sc;
    const char *rest = pc_endpoint_scheme_split(s, &sc);
    if (sc != PC_ENDPOINT_SCHEME_NONE && !scheme) {
        fprintf(stderr, "pullcache: '%s': this verb takes no http:// or https:// prefix\n", s);
        return -1;
    }
    if (scheme)
        *scheme = sc;
    if (pc_ref_parse(out, rest) != 0) {
        fprintf(stderr,
                "pullcache: '%s' is not an image reference (%s); examples: nginx, "
                "docker.io/library/nginx:1.27, 127.0.0.1:5000/team/app@sha256:..., "
                "http://127.0.0.1:5000/team/app:1.0\n",
                s, pc_error_last());
        return -1;
    }
    return 0;
}

/* Whether url (https://HOST) answers plain HTTP: a GET of /v2/ over
 * http://HOST gets an HTTP status. */
static bool answers_plain_http(const char *url)
{
    char plain[PC_HOST_MAX + 16];
    pc_upstream *u = NULL;
    pc_up_class cls;
    char msg[512];
    if (!url || strncmp(url, "https://", 8) != 0 ||
        snprintf(plain, sizeof(plain), "http://%s", url + 8) >= (int)sizeof(plain))
        return false;
    pc_upstream_opts uo = {
        .name = "probe", .url = plain, .connect_timeout_ms = 5000, .read_timeout_ms = 5000};
    if (pc_upstream_new(&u, &uo) != 0)
        return false;
    bool yes = probe_answers(u, &cls, msg, sizeof(msg));
    pc_upstream_free(u);
    return yes;
}

void pc_client_tls_advice(pc_up_class cls, const char *msg, pc_client_which which,
                          const char *file_key, const char *url, char *buf, size_t size)
{
    const char *pre = flag_prefix(which);
    const char *who = which == PC_CLIENT_SRC   ? "the source registry"
                      : which == PC_CLIENT_DST ? "the destination registry"
                                               : "the registry";
    char file[160] = "";
    buf[0] = '\0';
    if (cls != PC_UP_TLS)
        return;
    /* the message usually says it; when the server hung up on the
     * handshake instead of answering it, ask it over plain HTTP */
    bool certificate = msg && strstr(msg, "certificate");
    if (pc_upstream_tls_plain_http(msg) || (!certificate && answers_plain_http(url))) {
        if (file_key)
            snprintf(file, sizeof(file), ", or plain_http: true under %s", file_key);
        snprintf(buf, size,
                 "%s speaks plain HTTP, not TLS: use %splain-http or an http:// reference%s", who,
                 pre, file);
    } else {
        if (file_key)
            snprintf(file, sizeof(file), " (ca_file, insecure under %s)", file_key);
        snprintf(buf, size,
                 "%s's certificate or TLS setup was refused: %sca-file FILE trusts its CA, "
                 "%sinsecure skips verification, %splain-http talks http://%s",
                 who, pre, pre, pre, file);
    }
}
