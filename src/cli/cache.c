/*
 * cache.c - `pullcache cache ls|refresh|forget`: the operator's handle on a
 * running serve's mirror cache, through its /_pullcache/cache endpoint
 * (src/server/h_cache.c): what is cached and how fresh, revalidate a
 * re-pushed tag now instead of after tag_ttl, or forget tags so the next
 * pull asks the upstream.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ref.h"

const char pc_cli_cache_usage[] =
    "usage: pullcache cache [OPTIONS] ls [NAME]\n"
    "       pullcache cache [OPTIONS] refresh NAME:TAG\n"
    "       pullcache cache [OPTIONS] forget NAME[:TAG]\n"
    "\n"
    "Look at and steer the mirror cache of a running `pullcache serve`. NAME is a\n"
    "mirrored repository as nodes pull it: docker.io/library/nginx, docker.io/nginx.\n"
    "  ls             the mirrored repositories cached; with NAME, its cached tags\n"
    "                 with digest, age and whether they are within tag_ttl\n"
    "  refresh N:T    revalidate tag T with the upstream now (a HEAD; a GET only when\n"
    "                 the digest changed), e.g. after it was re-pushed upstream\n"
    "  forget N[:T]   forget tag T (or every cached tag of N): the next pull asks the\n"
    "                 upstream; layers stay until eviction or `pullcache gc`\n"
    "\n"
    "  -s, --server URL       the serve to talk to (default http://127.0.0.1:5000)\n"
    "      --username USER    an admin of that serve (with auth on; auth.admins, --admin)\n"
    "      --password-stdin   read the password from standard input (first line)\n"
    "      --ca-file FILE     trust this CA for an https:// server\n"
    "      --json             print the server's JSON answer\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit status (the table in `pullcache help`): 0 done, 2 usage, 3 the server\n"
    "refused (the message says why) or cannot be reached.\n"
    "\n"
    "Example:\n"
    "  pullcache cache refresh docker.io/library/nginx:1.27\n";

typedef struct {
    char *buf;
    size_t len;
} body;

static size_t take(char *p, size_t size, size_t n, void *ctx)
{
    body *b = ctx;
    size_t add = size * n;
    if (b->len + add > 8 * 1024 * 1024)
        return 0;
    char *nb = realloc(b->buf, b->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, add);
    b->buf = nb;
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

typedef struct {
    const char *server, *username, *ca_file;
    char password[1024];
    bool json;
} opts;

/* One request; *status and *out (the body, the caller's). 0, or 3 when the
 * server could not be reached (message printed). */
static int call(const opts *o, const char *method, const char *name, const char *tag, long *status,
                json_t **out)
{
    CURL *c = curl_easy_init();
    body b = {NULL, 0};
    char url[2048];
    if (!c)
        return 3;
    char *er = name ? curl_easy_escape(c, name, 0) : NULL;
    char *et = tag ? curl_easy_escape(c, tag, 0) : NULL;
    snprintf(url, sizeof(url), "%s/_pullcache/cache%s%s%s%s", o->server, er ? "?repo=" : "",
             er ? er : "", et ? "&tag=" : "", et ? et : "");
    curl_free(er);
    curl_free(et);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pullcache-cache");
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    if (o->username) {
        curl_easy_setopt(c, CURLOPT_USERNAME, o->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, o->password);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "pullcache cache: cannot reach %s: %s (is serve running there? --server)\n",
                o->server, curl_easy_strerror(rc));
        free(b.buf);
        return 3;
    }
    *out = json_loads(b.buf ? b.buf : "", 0, NULL);
    free(b.buf);
    return 0;
}

/* The server's refusal, printed; 3 (the registry refused, as for every
 * client verb). */
static int refused(long status, json_t *doc)
{
    const char *msg = json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "errors"), 0), "message"));
    fprintf(stderr, "pullcache cache: the server answered %ld: %s%s\n", status,
            msg ? msg : "no registry error message",
            status == 401 || status == 403
                ? " (it needs an admin: --username with --password-stdin)"
                : "");
    return 3;
}

/* NAME[:TAG]: a ':' after the last '/' starts the tag. */
static int split(char *arg, char **name, char **tag)
{
    char *slash = strrchr(arg, '/');
    char *colon = strrchr(slash ? slash : arg, ':');
    *tag = NULL;
    if (colon) {
        *colon = '\0';
        *tag = colon + 1;
        if (!pc_ref_tag_valid(*tag)) {
            fprintf(stderr, "pullcache cache: '%s' is not a valid tag\n", *tag);
            return 2;
        }
    }
    *name = arg;
    if (!pc_ref_name_valid(*name)) {
        fprintf(stderr,
                "pullcache cache: '%s' is not a repository name (lowercase, like "
                "docker.io/library/nginx)\n",
                *name);
        return 2;
    }
    return 0;
}

static void print_human(const char *verb, json_t *doc)
{
    if (strcmp(verb, "ls") == 0 && json_object_get(doc, "repositories")) {
        json_t *r;
        size_t i;
        json_array_foreach(json_object_get(doc, "repositories"), i, r)
            printf("%s\n", json_string_value(r));
    } else if (strcmp(verb, "ls") == 0) {
        json_t *t;
        size_t i;
        printf("%s (upstream %s, tag_ttl %llds)\n",
               json_string_value(json_object_get(doc, "repository")),
               json_string_value(json_object_get(doc, "upstream")),
               (long long)json_integer_value(json_object_get(doc, "tag_ttl")));
        json_array_foreach(json_object_get(doc, "tags"), i, t)
        {
            printf("  %-24s %s  %llds ago  %s\n", json_string_value(json_object_get(t, "tag")),
                   json_string_value(json_object_get(t, "digest")),
                   (long long)json_integer_value(json_object_get(t, "age_seconds")),
                   json_is_true(json_object_get(t, "fresh")) ? "fresh" : "due for revalidation");
        }
    } else if (strcmp(verb, "refresh") == 0) {
        printf("%s:%s -> %s (%s%s)\n", json_string_value(json_object_get(doc, "repository")),
               json_string_value(json_object_get(doc, "tag")),
               json_string_value(json_object_get(doc, "digest")),
               json_is_true(json_object_get(doc, "changed")) ? "changed" : "unchanged",
               json_is_true(json_object_get(doc, "stale"))
                   ? "; the upstream failed, the cached copy stays"
                   : "");
    } else {
        long long n = (long long)json_integer_value(json_object_get(doc, "forgotten"));
        printf("forgot %lld tag%s of %s\n", n, n == 1 ? "" : "s",
               json_string_value(json_object_get(doc, "repository")));
    }
}

int pc_cli_cache(int argc, char **argv)
{
    enum { OPT_USER = 256, OPT_PWSTDIN, OPT_CA, OPT_JSON };
    static const struct option lo[] = {
        {"server", required_argument, NULL, 's'},
        {"username", required_argument, NULL, OPT_USER},
        {"password-stdin", no_argument, NULL, OPT_PWSTDIN},
        {"ca-file", required_argument, NULL, OPT_CA},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.server = "http://127.0.0.1:5000"};
    bool pw_stdin = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+s:h", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            o.server = optarg;
            break;
        case OPT_USER:
            o.username = optarg;
            break;
        case OPT_PWSTDIN:
            pw_stdin = true;
            break;
        case OPT_CA:
            o.ca_file = optarg;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case 'h':
            fputs(pc_cli_cache_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "`pullcache cache --help` lists the options\n");
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "pullcache cache: say ls, refresh or forget (`pullcache cache --help`)\n");
        return 2;
    }
    const char *verb = argv[optind++];
    char *name = NULL, *tag = NULL;
    const char *method;
    if (strcmp(verb, "ls") == 0)
        method = "GET";
    else if (strcmp(verb, "refresh") == 0)
        method = "POST";
    else if (strcmp(verb, "forget") == 0)
        method = "DELETE";
    else {
        fprintf(stderr, "pullcache cache: unknown subcommand '%s' (ls, refresh, forget)\n", verb);
        return 2;
    }
    if (optind < argc && split(argv[optind++], &name, &tag))
        return 2;
    if (optind < argc || (!name && method[0] != 'G') || (tag && method[0] == 'G') ||
        (!tag && method[0] == 'P')) {
        fprintf(stderr,
                "pullcache cache: usage: ls [NAME] | refresh NAME:TAG | forget NAME[:TAG]\n");
        return 2;
    }
    if (strncmp(o.server, "http://", 7) != 0 && strncmp(o.server, "https://", 8) != 0) {
        fprintf(stderr, "pullcache cache: --server needs http:// or https://, not '%s'\n",
                o.server);
        return 2;
    }
    if (pw_stdin) {
        if (!o.username) {
            fprintf(stderr, "pullcache cache: --password-stdin needs --username\n");
            return 2;
        }
        if (!fgets(o.password, sizeof(o.password), stdin)) {
            fprintf(stderr, "pullcache cache: no password on standard input\n");
            return 2;
        }
        o.password[strcspn(o.password, "\r\n")] = '\0';
    }
    long status = 0;
    json_t *doc = NULL;
    int rc = call(&o, method, name, tag, &status, &doc);
    explicit_bzero(o.password, sizeof(o.password));
    if (rc)
        return rc;
    if (status != 200 || !doc) {
        rc = refused(status, doc);
        json_decref(doc);
        return rc;
    }
    if (o.json) {
        char *s = json_dumps(doc, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        print_human(verb, doc);
    }
    json_decref(doc);
    return 0;
}
