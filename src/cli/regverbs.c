/*
 * regverbs.c - the small registry verbs crane and regctl users reach for:
 * `pullcache tags REPO` (every tag, following the registry's pages) and
 * `pullcache inspect REF` (the manifest's digest, type, size, platforms of
 * an index, config and layers of an image), each with --json, over the
 * shared connection flags (client.h). Reads only: a manifest GET counts
 * against a registry's pull budget like any pull, a tag list does not.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client.h"
#include "manifest.h"
#include "pullfmt.h"

const char pc_cli_ls_usage[] =
    "usage: pullcache ls [--json] [connection flags] REGISTRY\n"
    "\n"
    "List the repositories of REGISTRY (host[:port], e.g. 127.0.0.1:5000, or with an\n"
    "http:// or https:// prefix) from its catalog, following its pages (Link), in\n"
    "byte order. The catalog is asked without credentials: a registry that wants\n"
    "them for its catalog answers 401 (use its own tools there).\n"
    "\n"
    "  --json           {\"repositories\": [...]}\n"
    "  --page-size N    ask for N names a page (default 1000)\n"
    "\n"
    "Connection flags as for `pullcache pull`.\n"
    "\n"
    "exit status: 0, 2 usage, 3 the registry refused or could not be reached.\n";

const char pc_cli_rm_usage[] =
    "usage: pullcache rm [--json] [connection flags] IMAGE\n"
    "\n"
    "Delete the manifest IMAGE names (registry/name:tag or @digest) from the\n"
    "registry: by tag, the digest the tag names now (one HEAD), so every tag on that\n"
    "manifest goes with it, as the distribution spec deletes. Layers stay until the\n"
    "registry's garbage collection (`pullcache gc` for a pullcache).\n"
    "\n"
    "  --json   {\"repository\", \"digest\", \"deleted\": true}\n"
    "\n"
    "Connection flags as for `pullcache pull` (a user allowed to delete: --username\n"
    "with --password-stdin).\n"
    "\n"
    "exit status: 0, 2 usage, 3 the registry refused (405 when it has deletes\n"
    "turned off, 404 when there is no such manifest) or could not be reached.\n";

const char pc_cli_tags_usage[] =
    "usage: pullcache tags [--json] [connection flags] REPOSITORY\n"
    "\n"
    "List every tag of REPOSITORY (registry/name, e.g. 127.0.0.1:5000/team/app or\n"
    "docker.io/library/nginx), following the registry's pages (Link), in byte order.\n"
    "A tag list is no manifest GET: it spends no pull budget.\n"
    "\n"
    "  --json   {\"name\": ..., \"tags\": [...]}\n"
    "\n"
    "Connection flags as for `pullcache pull` (--plain-http, --insecure, --ca-file,\n"
    "--username with --password-stdin, ...).\n"
    "\n"
    "exit status: 0, 2 usage, 3 the registry refused or could not be reached.\n";

const char pc_cli_inspect_usage[] =
    "usage: pullcache inspect [--json] [connection flags] IMAGE\n"
    "\n"
    "Show what IMAGE (registry/name:tag or @digest) is: its digest, media type and\n"
    "size; for an index the platforms it holds, each with its manifest digest; for\n"
    "an image its config and layers with their sizes and the total. One manifest\n"
    "GET per manifest shown (an index: one).\n"
    "\n"
    "  --json   the same as one JSON document\n"
    "\n"
    "Connection flags as for `pullcache pull`.\n"
    "\n"
    "exit status: 0, 2 usage, 3 the registry refused or could not be reached, 4 a\n"
    "manifest that does not match its digest or cannot be parsed.\n";

/* Open the registry of the one argument; 0 or an exit status. */
static int open_arg(pc_client_opts *co, const char *verb, int argc, char **argv,
                    const struct option *opts, bool *json, pc_ref *ref, pc_upstream **u)
{
    int c;
    optind = 1;
    while ((c = pc_client_getopt(co, verb, argc, argv, "", opts)) > 0)
        if (c == 'J')
            *json = true;
    if (c < 0)
        return PC_CLI_EXIT_USAGE;
    if (optind != argc - 1) {
        fprintf(stderr, "pullcache %s: one %s (`pullcache %s --help`)\n", verb,
                strcmp(verb, "tags") == 0 ? "REPOSITORY" : "IMAGE", verb);
        return PC_CLI_EXIT_USAGE;
    }
    pc_endpoint_scheme scheme;
    if (pc_client_parse_ref(argv[optind], ref, &scheme) != 0)
        return PC_CLI_EXIT_USAGE;
    if (pc_client_open(co, verb, ref, scheme, u) != 0)
        return PC_CLI_EXIT_LOCAL;
    return 0;
}

static int refused(const char *verb, const char *what, const pc_upstream *u,
                   const pc_upstream_resp *r)
{
    char advice[400];
    pc_client_tls_advice(r->cls, r->error_message, PC_CLIENT_BOTH, NULL, pc_upstream_url(u), advice,
                         sizeof(advice));
    fprintf(stderr, "pullcache %s: %s: %s (%s%s%ld)%s%s\n", verb, what,
            r->error_message[0] ? r->error_message : pc_up_class_str(r->cls),
            pc_up_class_str(r->cls), r->status ? ", status " : "", r->status, advice[0] ? "; " : "",
            advice);
    return PC_CLI_EXIT_REGISTRY;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* arr's strings sorted, in a new array (arr released). */
static json_t *sorted_tags(json_t *arr)
{
    size_t n = json_array_size(arr), k = 0;
    const char **v = calloc(n ? n : 1, sizeof(*v));
    json_t *out = v ? json_array() : NULL;
    for (size_t i = 0; out && i < n; i++)
        if (json_is_string(json_array_get(arr, i)))
            v[k++] = json_string_value(json_array_get(arr, i));
    if (out) {
        qsort(v, k, sizeof(*v), cmp_str);
        for (size_t i = 0; i < k; i++)
            json_array_append_new(out, json_string(v[i]));
    }
    free(v);
    json_decref(arr);
    return out;
}

/* Append the names under key of a list page (a catalog or tag list
 * document) to all. */
static void add_names(json_t *all, const pc_upstream_resp *r, const char *key)
{
    json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
    json_t *names = json_object_get(doc, key);
    if (json_is_array(names))
        json_array_extend(all, names);
    json_decref(doc);
}

/* names one a line, or doc (which holds them) as JSON; takes doc. */
static int print_names(const json_t *names, bool json, json_t *doc)
{
    if (json)
        return pc_cli_print_json(doc);
    json_decref(doc);
    size_t i;
    json_t *t;
    json_array_foreach(names, i, t) printf("%s\n", json_string_value(t));
    return 0;
}

/* The path of a Link header's rel="next" target (<...>), absolute URLs cut
 * to their path; "" when there is none. */
static void next_path(const char *link, char *out, size_t size)
{
    out[0] = '\0';
    const char *a = strchr(link, '<'), *b = a ? strchr(a, '>') : NULL;
    if (!a || !b || !strstr(b, "next"))
        return;
    a++;
    const char *scheme = strstr(a, "://");
    if (scheme && scheme < b) {
        a = strchr(scheme + 3, '/');
        if (!a || a > b)
            return;
    }
    snprintf(out, size, "%.*s", (int)(b - a), a);
}

int pc_cli_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},
        {"page-size", required_argument, NULL, 'P'},
        PC_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    pc_ref ref;
    pc_upstream *u = NULL;
    bool json = false;
    unsigned page_size = 1000;
    int c, rc = 0;
    pc_client_opts_init(&co);
    optind = 1;
    while ((c = pc_client_getopt(&co, "ls", argc, argv, "", opts)) > 0) {
        if (c == 'J')
            json = true;
        else if (c == 'P' && pc_cli_parse_uint("ls", "--page-size", optarg, 1, 100000, &page_size))
            c = -1;
        if (c < 0)
            break;
    }
    if (c < 0 || optind != argc - 1 || strchr(argv[optind], '@')) {
        if (c >= 0)
            fprintf(stderr, "pullcache ls: one REGISTRY (`pullcache ls --help`)\n");
        pc_client_opts_clear(&co);
        return PC_CLI_EXIT_USAGE;
    }
    /* REGISTRY as a reference to some repository of it: host and scheme */
    char refstr[PC_HOST_MAX + 16];
    const char *arg = argv[optind];
    size_t len = strlen(arg);
    snprintf(refstr, sizeof(refstr), "%.*s/x", (int)(len && arg[len - 1] == '/' ? len - 1 : len),
             arg);
    pc_endpoint_scheme scheme;
    if (strchr(strstr(arg, "://") ? strstr(arg, "://") + 3 : arg, '/') ||
        pc_client_parse_ref(refstr, &ref, &scheme) != 0) {
        fprintf(stderr, "pullcache ls: '%s' is not a registry (host[:port])\n", arg);
        pc_client_opts_clear(&co);
        return PC_CLI_EXIT_USAGE;
    }
    if (pc_client_open(&co, "ls", &ref, scheme, &u) != 0) {
        pc_client_opts_clear(&co);
        return PC_CLI_EXIT_LOCAL;
    }
    json_t *all = json_array();
    char path[2048];
    snprintf(path, sizeof(path), "/v2/_catalog?n=%u", page_size);
    for (int page = 0; all && path[0] && page < 1000; page++) {
        pc_upstream_resp r;
        memset(&r, 0, sizeof(r));
        if (pc_upstream_get(u, path, 8 * 1024 * 1024, &r) != 0 || r.cls != PC_UP_OK) {
            rc = refused("ls", arg, u, &r);
            pc_upstream_resp_clear(&r);
            break;
        }
        add_names(all, &r, "repositories");
        next_path(r.link, path, sizeof(path));
        pc_upstream_resp_clear(&r);
    }
    if (rc == 0 && all)
        all = sorted_tags(all);
    if (rc == 0 && all)
        rc = print_names(all, json, json_pack("{s:O}", "repositories", all));
    json_decref(all);
    pc_upstream_free(u);
    pc_client_opts_clear(&co);
    return rc;
}

int pc_cli_tags(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},
        PC_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    pc_ref ref;
    pc_upstream *u = NULL;
    bool json = false;
    pc_client_opts_init(&co);
    int rc = open_arg(&co, "tags", argc, argv, opts, &json, &ref, &u);
    json_t *all = json_array();
    char *next = NULL;
    for (int page = 0; rc == 0 && all && page < 1000; page++) {
        pc_upstream_resp r;
        memset(&r, 0, sizeof(r));
        if (pc_upstream_tags_page(u, ref.name, next, &r) != 0 || r.cls != PC_UP_OK) {
            rc = refused("tags", argv[argc - 1], u, &r);
            pc_upstream_resp_clear(&r);
            break;
        }
        add_names(all, &r, "tags");
        free(next);
        next = r.link[0] ? strdup(r.link) : NULL;
        pc_upstream_resp_clear(&r);
        if (!next)
            break;
    }
    free(next);
    if (rc == 0 && all) /* in byte order, whatever order the registry sent */
        all = sorted_tags(all);
    if (rc == 0 && all)
        rc = print_names(all, json, json_pack("{s:s, s:O}", "name", ref.name, "tags", all));
    json_decref(all);
    pc_upstream_free(u);
    pc_client_opts_clear(&co);
    return rc;
}

int pc_cli_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},
        PC_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    pc_ref ref;
    pc_upstream *u = NULL;
    bool json = false;
    pc_upstream_resp r;
    pc_manifest_info info;
    memset(&r, 0, sizeof(r));
    memset(&info, 0, sizeof(info));
    pc_client_opts_init(&co);
    int rc = open_arg(&co, "inspect", argc, argv, opts, &json, &ref, &u);
    if (rc)
        goto done;
    const char *reference = ref.has_digest ? ref.digest.str : ref.tag;
    if (pc_upstream_manifest(u, ref.name, reference, false, &r) != 0 || r.cls != PC_UP_OK) {
        rc = refused("inspect", argv[argc - 1], u, &r);
        goto done;
    }
    pc_digest got;
    if (pc_digest_buffer(&got, PC_DIGEST_SHA256, r.body, r.body_len) != 0 ||
        (ref.has_digest && !pc_digest_equal(&got, &ref.digest)) ||
        pc_manifest_parse(&info, r.body, r.body_len, r.media_type) != 0) {
        fprintf(stderr, "pullcache inspect: %s: the manifest %s\n", argv[argc - 1],
                ref.has_digest ? "does not match its digest or cannot be parsed"
                               : "cannot be parsed");
        rc = PC_CLI_EXIT_VERIFY;
        goto done;
    }
    json_t *doc = json_pack("{s:s, s:s, s:I}", "digest", got.str, "mediaType", info.media_type,
                            "size", (json_int_t)r.body_len);
    uint64_t total = 0;
    if (info.is_index) {
        json_t *list = json_array();
        json_t *mdoc = json_loadb(r.body, r.body_len, 0, NULL);
        json_t *ms = json_object_get(mdoc, "manifests");
        size_t i;
        json_t *m;
        json_array_foreach(ms, i, m)
        {
            json_t *p = json_object_get(m, "platform");
            const char *os = json_string_value(json_object_get(p, "os"));
            const char *arch = json_string_value(json_object_get(p, "architecture"));
            const char *variant = json_string_value(json_object_get(p, "variant"));
            char plat[128];
            snprintf(plat, sizeof(plat), "%s/%s%s%s", os ? os : "?", arch ? arch : "?",
                     variant ? "/" : "", variant ? variant : "");
            json_array_append_new(list, json_pack("{s:s, s:O?, s:O?}", "platform", plat, "digest",
                                                  json_object_get(m, "digest"), "size",
                                                  json_object_get(m, "size")));
        }
        json_decref(mdoc);
        json_object_set_new(doc, "manifests", list);
    } else {
        json_t *mdoc = json_loadb(r.body, r.body_len, 0, NULL);
        json_t *layers = json_array();
        json_t *cfg = json_object_get(mdoc, "config");
        if (cfg)
            json_object_set_new(doc, "config",
                                json_pack("{s:O?, s:O?, s:O?}", "mediaType",
                                          json_object_get(cfg, "mediaType"), "digest",
                                          json_object_get(cfg, "digest"), "size",
                                          json_object_get(cfg, "size")));
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(mdoc, "layers"), i, l)
        {
            total += (uint64_t)json_integer_value(json_object_get(l, "size"));
            json_array_append_new(layers, json_pack("{s:O?, s:O?, s:O?}", "mediaType",
                                                    json_object_get(l, "mediaType"), "digest",
                                                    json_object_get(l, "digest"), "size",
                                                    json_object_get(l, "size")));
        }
        json_decref(mdoc);
        json_object_set_new(doc, "layers", layers);
        json_object_set_new(doc, "total_size", json_integer((json_int_t)total));
    }
    if (info.artifact_type[0])
        json_object_set_new(doc, "artifactType", json_string(info.artifact_type));
    if (json) {
        rc = pc_cli_print_json(doc);
        goto done;
    }
    char b[32];
    printf("%s\n  digest     %s\n  mediaType  %s\n  size       %zu\n", argv[argc - 1], got.str,
           info.media_type, r.body_len);
    size_t i;
    json_t *e;
    if (info.is_index) {
        json_array_foreach(json_object_get(doc, "manifests"), i, e)
            printf("  %-20s %s\n", json_string_value(json_object_get(e, "platform")),
                   json_string_value(json_object_get(e, "digest")));
    } else {
        json_t *cfg = json_object_get(doc, "config");
        if (cfg)
            printf("  config     %s\n", json_string_value(json_object_get(cfg, "digest")));
        json_array_foreach(json_object_get(doc, "layers"), i, e)
            printf("  layer      %s  %s\n", json_string_value(json_object_get(e, "digest")),
                   pc_cli_fmt_bytes((uint64_t)json_integer_value(json_object_get(e, "size")), b,
                                    sizeof(b)));
        printf("  total      %s in %zu layer%s\n", pc_cli_fmt_bytes(total, b, sizeof(b)),
               json_array_size(json_object_get(doc, "layers")),
               pc_cli_plural(json_array_size(json_object_get(doc, "layers"))));
    }
    json_decref(doc);
done:
    pc_manifest_info_clear(&info);
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
    pc_client_opts_clear(&co);
    return rc;
}

int pc_cli_rm(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},
        PC_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    pc_ref ref;
    pc_upstream *u = NULL;
    bool json = false;
    pc_upstream_resp r;
    memset(&r, 0, sizeof(r));
    pc_client_opts_init(&co);
    int rc = open_arg(&co, "rm", argc, argv, opts, &json, &ref, &u);
    if (rc)
        goto done;
    pc_digest d = ref.digest;
    if (!ref.has_digest) { /* the digest the tag names now */
        if (pc_upstream_manifest(u, ref.name, ref.tag, true, &r) != 0 || r.cls != PC_UP_OK) {
            rc = refused("rm", argv[argc - 1], u, &r);
            goto done;
        }
        if (pc_digest_parse(&d, r.digest) != 0) {
            fprintf(stderr, "pullcache rm: %s: the registry sent no usable Docker-Content-Digest\n",
                    argv[argc - 1]);
            rc = PC_CLI_EXIT_REGISTRY;
            goto done;
        }
        pc_upstream_resp_clear(&r);
    }
    if (pc_upstream_manifest_delete(u, ref.name, &d, &r) != 0 || r.cls != PC_UP_OK) {
        rc = refused("rm", argv[argc - 1], u, &r);
        goto done;
    }
    if (json)
        rc = pc_cli_print_json(
            json_pack("{s:s, s:s, s:b}", "repository", ref.name, "digest", d.str, "deleted", 1));
    else
        printf("deleted %s@%s\n", ref.name, d.str);
done:
    pc_upstream_resp_clear(&r);
    pc_upstream_free(u);
    pc_client_opts_clear(&co);
    return rc;
}
