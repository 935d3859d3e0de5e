/*
 * client.c - shared connection flags, credential lookup and registry client
 * opening for the client verbs (see client.h).
 *
 * Credential sources, first match wins: --username + --password-stdin;
 * PULLCACHE_USERNAME + PULLCACHE_PASSWORD; the auth file (docker's
 * config.json or a containers auth.json: {"auths": {"host": {"auth":
 * base64("user:pass")}}} or "username"/"password" members). Credential
 * helpers (credsStore, credHelpers) are not run: the user is told to pass
 * credentials another way. Secrets are wiped before they are freed and are
 * never printed.
 */
#include "client.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base64.h"

#define CLIENT_SECRET_MAX 4096

void pc_client_opts_init(pc_client_opts *o)
{
    memset(o, 0, sizeof(*o));
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
    wipe_free(o->password);
    o->password = NULL;
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

int pc_client_opt(pc_client_opts *o, int code, const char *arg)
{
    switch (code) {
    case PC_CLIENT_OPT_PLAIN_HTTP:
        o->plain_http = true;
        return 1;
    case PC_CLIENT_OPT_INSECURE:
        o->insecure = true;
        return 1;
    case PC_CLIENT_OPT_CA_FILE:
        o->ca_file = arg;
        return 1;
    case PC_CLIENT_OPT_USERNAME:
        if (!*arg) {
            fprintf(stderr, "pullcache: --username wants a name\n");
            return -1;
        }
        o->username = arg;
        return 1;
    case PC_CLIENT_OPT_PASSWORD_STDIN:
        o->password_stdin = true;
        return 1;
    case PC_CLIENT_OPT_ANONYMOUS:
        o->anonymous = true;
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

int pc_client_registry_url(const pc_client_opts *o, const char *host, char *buf, size_t size)
{
    int n = is_docker_hub(host)
                ? snprintf(buf, size, "https://registry-1.docker.io")
                : snprintf(buf, size, "%s://%s", o->plain_http ? "http" : "https", host);
    return n < 0 || (size_t)n >= size ? PC_ETOOBIG : 0;
}

/* Read the first line of stdin as the password. */
static int read_password_stdin(pc_client_opts *o)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        fprintf(stderr, "pullcache: --password-stdin: nothing to read on stdin\n");
        return -1;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n == 0 || n > CLIENT_SECRET_MAX) {
        OPENSSL_cleanse(line, cap);
        free(line);
        fprintf(stderr, "pullcache: --password-stdin: the password is empty or too long\n");
        return -1;
    }
    o->password = line;
    return 0;
}

/* The host part of an auths key: "https://index.docker.io/v1/" ->
 * "index.docker.io". */
static void key_host(const char *key, char *buf, size_t size)
{
    const char *p = strstr(key, "://");
    p = p ? p + 3 : key;
    size_t len = strcspn(p, "/");
    if (len >= size)
        len = size - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
}

static bool key_matches(const char *key, const char *host)
{
    char kh[PC_HOST_MAX];
    key_host(key, kh, sizeof(kh));
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

static const char *default_auth_file(char *buf, size_t size)
{
    const char *env = getenv("REGISTRY_AUTH_FILE");
    if (env && *env)
        return env;
    const char *dc = getenv("DOCKER_CONFIG");
    if (dc && *dc) {
        snprintf(buf, size, "%s/config.json", dc);
        return buf;
    }
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    snprintf(buf, size, "%s/.docker/config.json", home);
    return buf;
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

int pc_client_credentials(pc_client_opts *o, const char *host, const char **username,
                          const char **describe)
{
    static char file_user[512];
    static char pathbuf[4096];
    *username = NULL;
    *describe = "anonymous";
    pc_client_opts_clear(o);
    if (o->username || o->password_stdin) {
        if (!o->username || !o->password_stdin) {
            fprintf(stderr, "pullcache: --username and --password-stdin go together\n");
            return -1;
        }
        if (read_password_stdin(o) != 0)
            return -1;
        *username = o->username;
        *describe = "flags";
        return 0;
    }
    if (o->anonymous)
        return 0;
    const char *eu = getenv("PULLCACHE_USERNAME"), *ep = getenv("PULLCACHE_PASSWORD");
    if (eu && *eu && ep && *ep) {
        o->password = strdup(ep);
        if (!o->password)
            return -1;
        *username = eu;
        *describe = "environment";
        return 0;
    }
    const char *path = o->auth_file ? o->auth_file : default_auth_file(pathbuf, sizeof(pathbuf));
    if (!path)
        return 0;
    char *u = NULL, *p = NULL;
    int rc = from_auth_file(path, o->auth_file != NULL, host, &u, &p);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        snprintf(file_user, sizeof(file_user), "%s", u);
        free(u);
        o->password = p;
        *username = file_user;
        *describe = path;
    }
    return 0;
}

int pc_client_open(pc_client_opts *o, const pc_ref *ref, pc_upstream **out)
{
    char url[PC_HOST_MAX + 16];
    const char *user, *from;
    if (pc_client_registry_url(o, ref->host, url, sizeof(url)) != 0) {
        fprintf(stderr, "pullcache: registry host too long\n");
        return -1;
    }
    if (pc_client_credentials(o, ref->host, &user, &from) != 0)
        return -1;
    return pc_client_new(o, NULL, ref->host, url, user, user ? o->password : NULL, out);
}

int pc_client_new(const pc_client_opts *o, const char *verb, const char *host, const char *url,
                  const char *user, const char *password, pc_upstream **out)
{
    pc_upstream_opts uo = {
        .name = host,
        .url = url,
        .username = user,
        .password = password,
        .connect_timeout_ms = o->connect_timeout_ms,
        .read_timeout_ms = o->read_timeout_ms,
        .max_connections = o->max_connections,
        .ca_file = o->ca_file,
        .insecure_tls = o->insecure,
    };
    if (pc_upstream_new(out, &uo) != 0) {
        fprintf(stderr, "pullcache%s%s: cannot set up a client for %s: %s\n", verb ? " " : "",
                verb ? verb : "", host, pc_error_last());
        return -1;
    }
    return 0;
}

int pc_client_parse_ref(const char *s, pc_ref *out)
{
    if (pc_ref_parse(out, s) != 0) {
        fprintf(stderr,
                "pullcache: '%s' is not an image reference (%s); examples: nginx, "
                "docker.io/library/nginx:1.27, 127.0.0.1:5000/team/app@sha256:...\n",
                s, pc_error_last());
        return -1;
    }
    return 0;
}
