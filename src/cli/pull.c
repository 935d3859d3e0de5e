/*
 * pull.c - `pullcache pull IMAGE`: pull like a container runtime (manifest,
 * platform, config and layers at once, every digest verified) into an OCI
 * image layout or nowhere, with a progress bar on a terminal and a JSON
 * summary for scripts. The engine is src/lib/pull.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "util.h"
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "pull.h"
#include "pullfmt.h"

const char pc_cli_pull_usage[] =
    "usage: pullcache pull [OPTIONS] (--output DIR | --discard) IMAGE\n"
    "\n"
    "Pull IMAGE the way a container runtime does: GET the manifest (by tag or digest)\n"
    "and check its digest, pick the platform from an index, fetch the config and the\n"
    "layers concurrently, and verify the digest and size of every blob. Nothing\n"
    "unverified is ever stored under its digest, and index.json names the image only\n"
    "when the whole pull succeeded.\n"
    "\n"
    "  -o, --output DIR        write an OCI image layout to DIR (created if needed; an\n"
    "                          existing layout gains the image, blobs it has are skipped)\n"
    "      --discard           verify everything, keep nothing\n"
    "      --platform OS/ARCH[/VARIANT]\n"
    "                          which image of an index (default: this machine's)\n"
    "      --all-platforms     every image of an index, and the index itself\n"
    "  -j, --concurrency N     blobs fetched at once (default 4, 1 to 64)\n"
    "      --json              print a JSON summary on stdout (also on failure)\n"
    "  -h, --help              this help\n"
    "\n" PC_CLIENT_USAGE "\n"
    "A progress bar is drawn on stderr when it is a terminal; otherwise stderr gets\n"
    "errors only. Without --json a one-line summary goes to stdout.\n"
    "\n"
    "exit codes:\n"
    "  0    pulled and verified\n"
    "  1    local failure: the output directory, memory, a credentials file\n"
    "  2    usage error\n"
    "  3    registry or network error (the message has the HTTP status and the\n"
    "       registry's error code, e.g. 429 TOOMANYREQUESTS)\n"
    "  4    verification failure: digest or size mismatch, malformed manifest\n"
    "  5    the index has no image for the platform\n"
    "  130  interrupted (SIGINT)\n"
    "\n"
    "examples:\n"
    "  pullcache pull --output ./nginx docker.io/library/nginx:1.27\n"
    "  pullcache pull --plain-http --discard --json 127.0.0.1:5000/team/app:1.0\n";

enum { OPT_DISCARD = 256, OPT_PLATFORM, OPT_ALL_PLATFORMS, OPT_JSON };

/* The progress bar: one line on stderr, redrawn in place. The engine calls
 * bar_event one call at a time. */
typedef struct {
    const char *label;
    double t0, last;
    uint64_t total, done;
    size_t nblobs, blobs_done;
    unsigned draws;
} bar;

static void bar_draw(bar *b)
{
    char done[32], total[32], rate[32];
    double secs = pc_util_mono_s() - b->t0;
    int width = pc_cli_term_width();
    int cells = width - 70;
    if (cells > 40)
        cells = 40;
    if (cells < 10)
        cells = 10;
    int pct = b->total ? (int)(b->done * 100 / b->total) : (b->blobs_done == b->nblobs ? 100 : 0);
    int fill = pct * cells / 100;
    pc_cli_fmt_bytes(b->done, done, sizeof(done));
    pc_cli_fmt_bytes(b->total, total, sizeof(total));
    pc_cli_fmt_bytes(secs > 0.05 ? (uint64_t)((double)b->done / secs) : 0, rate, sizeof(rate));
    fprintf(stderr, "\r\033[K%.30s [%.*s%*s] %3d%% %s/%s %zu/%zu blobs %s/s", b->label, fill,
            "########################################", cells - fill, "", pct, done, total,
            b->blobs_done, b->nblobs, rate);
    fflush(stderr);
    b->last = pc_util_mono_s();
    b->draws++;
}

static void bar_event(const pc_pull_progress *p, void *ctx)
{
    bar *b = ctx;
    b->total = p->total_size;
    b->done = p->total_done;
    b->nblobs = p->nblobs;
    b->blobs_done = p->blobs_done;
    if (p->event == PC_PULL_EV_PLAN || pc_util_mono_s() - b->last >= 0.1)
        bar_draw(b);
}

static json_t *images_json(const pc_pull_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->nimages; i++)
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:I}", "platform", r->images[i].platform, "digest",
                         r->images[i].desc.digest.str, "config", r->images[i].config.str, "size",
                         (json_int_t)r->images[i].desc.size));
    return a;
}

static json_t *platforms_json(const pc_pull_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->nimages; i++)
        if (r->images[i].platform[0])
            json_array_append_new(a, json_string(r->images[i].platform));
    return a;
}

static int print_json(const char *image, const char *output, int rc, const pc_pull_result *r)
{
    json_t *rl = pc_cli_ratelimit_json(r->has_ratelimit ? &r->ratelimit : NULL);
    json_t *o;
    if (rc == 0) {
        o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o, "
                      "s:o}",
                      "image", image, "digest", r->top.digest.str, "media_type", r->top.media_type,
                      "manifest", r->named.digest.str, "platforms", platforms_json(r), "images",
                      images_json(r), "blobs", (json_int_t)r->blobs, "blobs_skipped",
                      (json_int_t)r->blobs_skipped, "blobs_foreign", (json_int_t)r->blobs_foreign,
                      "bytes", (json_int_t)r->bytes, "manifests", (json_int_t)r->manifests,
                      "manifest_bytes", (json_int_t)r->manifest_bytes, "seconds", r->seconds,
                      "output", output ? json_string(output) : json_null(), "ratelimit", rl);
    } else {
        const pc_pull_error *e = &r->error;
        o = json_pack("{s:s, s:{s:s, s:o, s:o, s:s, s:s, s:s}, s:I, s:f, s:o, s:o}", "image", image,
                      "error", "kind", pc_pull_fail_str(e->kind), "status",
                      e->status ? json_integer(e->status) : json_null(), "code",
                      e->code[0] ? json_string(e->code) : json_null(), "key", e->key, "object",
                      e->object, "message", e->message, "bytes", (json_int_t)r->bytes, "seconds",
                      r->seconds, "output", output ? json_string(output) : json_null(), "ratelimit",
                      rl);
    }
    return pc_cli_print_json(o);
}

static void print_error(const char *image, const char *url, const pc_pull_result *r,
                        const pc_client_conn *conn)
{
    const pc_pull_error *e = &r->error;
    char advice[400];
    pc_client_tls_advice(e->cls, e->message, PC_CLIENT_BOTH, NULL, url, advice, sizeof(advice));
    fprintf(stderr, "pullcache pull: %s: %s%s%s\n", image, e->message, advice[0] ? "; " : "",
            advice);
    if (e->status == 429) {
        char rl[256];
        fprintf(stderr,
                "pullcache pull: the registry refuses more pulls for now (its pull rate "
                "limit)%s%s%s%s; pull through a pullcache mirror to stop spending it\n",
                r->has_ratelimit ? "; remaining " : "",
                r->has_ratelimit ? pc_cli_fmt_ratelimit(&r->ratelimit, rl, sizeof(rl)) : "",
                e->retry_after[0] ? "; Retry-After: " : "", e->retry_after);
    } else if (e->kind == PC_PULL_FAIL_VERIFY) {
        fprintf(stderr, "pullcache pull: nothing unverified was stored\n");
    } else if (e->status == 401 || e->status == 403) {
        fprintf(stderr,
                "pullcache pull: credentials tried: %s (--username with --password-stdin, "
                "PULLCACHE_USERNAME/PULLCACHE_PASSWORD, or podman/docker login)\n",
                conn->cred_source[0] ? conn->cred_source : "anonymous");
    }
}

static void print_summary(const char *image, const char *output, const pc_pull_result *r)
{
    char bytes[32], plat[256] = "";
    size_t off = 0;
    for (size_t i = 0; i < r->nimages && off < sizeof(plat); i++) {
        if (!r->images[i].platform[0])
            continue;
        int w = snprintf(plat + off, sizeof(plat) - off, "%s%s", off ? ", " : "",
                         r->images[i].platform);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    /* the digest a user pins is the one the reference names (an index's),
     * then what was taken of it */
    if (r->top_is_index && !pc_digest_equal(&r->top.digest, &r->named.digest))
        printf("%s: %s (index; %s%s%s), %llu blob%s", image, r->top.digest.str,
               plat[0] ? plat : "child", plat[0] ? " " : "", r->named.digest.str,
               (unsigned long long)r->blobs, pc_cli_plural(r->blobs));
    else
        printf("%s: %s%s%s%s, %llu blob%s", image, r->named.digest.str, plat[0] ? " (" : "", plat,
               plat[0] ? ")" : "", (unsigned long long)r->blobs, pc_cli_plural(r->blobs));
    if (r->blobs_skipped)
        printf(" (+%llu already present)", (unsigned long long)r->blobs_skipped);
    if (r->blobs_foreign)
        printf(" (%llu foreign layers left out)", (unsigned long long)r->blobs_foreign);
    printf(", %s in %.2f s, %s%s\n", pc_cli_fmt_bytes(r->bytes, bytes, sizeof(bytes)), r->seconds,
           output ? "written to " : "verified and discarded", output ? output : "");
}

int pc_cli_pull(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"discard", no_argument, NULL, OPT_DISCARD},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"all-platforms", no_argument, NULL, OPT_ALL_PLATFORMS},
        {"concurrency", required_argument, NULL, 'j'},
        {"json", no_argument, NULL, OPT_JSON},
        PC_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    pc_pull_platform platform;
    const char *output = NULL;
    bool discard = false, have_platform = false, all = false, json = false;
    unsigned concurrency = 4;
    int c, rc = PC_CLI_EXIT_USAGE;
    pc_upstream *u = NULL;
    pc_client_conn conn = {0};
    pc_pull_result res;
    pc_ref ref;
    char image[PC_HOST_MAX + PC_NAME_MAX + PC_TAG_MAX + PC_DIGEST_MAX + 8];

    memset(&res, 0, sizeof(res));
    pc_client_opts_init(&co);
    optind = 1;
    while ((c = pc_client_getopt(&co, "pull", argc, argv, "o:j:", opts)) > 0) {
        switch (c) {
        case 'o':
            if (!*optarg) {
                fprintf(stderr, "pullcache pull: --output wants a directory\n");
                goto done;
            }
            output = optarg;
            break;
        case OPT_DISCARD:
            discard = true;
            break;
        case OPT_PLATFORM:
            if (pc_cli_platform_parse("pull", optarg, &platform) != 0)
                goto done;
            have_platform = true;
            break;
        case OPT_ALL_PLATFORMS:
            all = true;
            break;
        case 'j':
            if (pc_cli_parse_uint("pull", "--concurrency", optarg, 1, 64, &concurrency) != 0)
                goto done;
            break;
        case OPT_JSON:
            json = true;
            break;
        }
    }
    if (c < 0)
        goto done;
    if (optind != argc - 1) {
        fprintf(stderr, optind < argc ? "pullcache pull: one IMAGE at a time\n"
                                      : "pullcache pull: which IMAGE? (`pullcache pull --help`)\n");
        goto done;
    }
    if (!output == !discard) {
        fprintf(stderr, "pullcache pull: say where the image goes: --output DIR or --discard\n");
        goto done;
    }
    if (have_platform && all) {
        fprintf(stderr, "pullcache pull: --platform and --all-platforms exclude each other\n");
        goto done;
    }
    pc_endpoint_scheme scheme;
    if (pc_client_parse_ref(argv[optind], &ref, &scheme) != 0)
        goto done;
    if (pc_ref_format(&ref, image, sizeof(image)) < 0)
        snprintf(image, sizeof(image), "%s", argv[optind]);

    rc = PC_CLI_EXIT_LOCAL;
    co.max_connections = concurrency + 2;
    pc_client_side side;
    pc_client_side_of(&co, PC_CLIENT_BOTH, &side);
    if (pc_client_connect(&co, "pull", PC_CLIENT_BOTH, &side, ref.host, scheme, &u, &conn) != 0)
        goto done;

    pc_cli_catch_stop(PC_CLI_STOP_ONCE); /* a second ^C kills at once */

    const char *slash = strrchr(argv[optind], '/');
    bar b = {.label = slash ? slash + 1 : argv[optind], .t0 = pc_util_mono_s()};
    bool show = pc_cli_stderr_tty();
    pc_pull_source src;
    pc_pull_source_upstream(&src, u);
    pc_pull_opts po = {
        .repo = ref.name,
        .reference = ref.has_digest ? ref.digest.str : ref.tag,
        .tag = ref.tag,
        .output = output,
        .platform = have_platform ? &platform : NULL,
        .all_platforms = all,
        .concurrency = concurrency,
        .on_progress = show ? bar_event : NULL,
        .progress_ctx = &b,
        .cancel = &pc_cli_stop_flag,
    };
    int prc = pc_pull_run(&src, &po, &res);
    if (show && b.draws) {
        if (prc == 0)
            bar_draw(&b);
        fputc('\n', stderr);
    }
    rc = prc == 0 ? PC_CLI_EXIT_OK : pc_cli_pull_exit(res.error.kind);
    if (prc != 0)
        print_error(image, pc_upstream_url(u), &res, &conn);
    if (json) {
        if (print_json(image, output, prc, &res) != 0 && rc == 0)
            rc = PC_CLI_EXIT_LOCAL;
    } else if (prc == 0) {
        print_summary(image, output, &res);
    }
done:
    pc_pull_result_clear(&res);
    pc_upstream_free(u);
    pc_client_opts_clear(&co);
    return rc;
}
