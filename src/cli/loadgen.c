/*
 * loadgen.c - `pullcache loadgen IMAGE...`: a bounded rollout simulation
 * (N nodes pulling a list of images M times, C pulls at once) against a
 * registry or a cache, reporting pulls ok and failed by error code (429 on
 * its own line), latency percentiles, bytes, and the registry's ratelimit
 * headers before and after (read with manifest HEADs, which Docker Hub does
 * not count). The engine is src/lib/loadgen.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "loadgen.h"
#include "pullfmt.h"

#define LOADGEN_MAX_IMAGES 64

const char pc_cli_loadgen_usage[] =
    "usage: pullcache loadgen [OPTIONS] IMAGE...\n"
    "\n"
    "Simulate a rollout: every node pulls every IMAGE, M times over (a node that\n"
    "pulls, deletes the image and pulls again - the pull-and-delete loop of a rate\n"
    "limit test, at scale), with at most C pulls in flight and one pull at a time\n"
    "per node. A pull is a full pull (manifest, platform, config and layers, every\n"
    "digest verified) whose bytes are discarded, or with --manifest-only just its\n"
    "manifests (what Docker Hub counts). The run stops when every pull ran, at\n"
    "--duration, or at SIGINT (pulls in flight are canceled) and reports pulls ok\n"
    "and failed by error (429 TOOMANYREQUESTS on its own line), latency p50/p95/p99\n"
    "of the pulls that succeeded, bytes, pulls/s, and the registry's ratelimit\n"
    "headers before and after (manifest HEADs of the first IMAGE, which Docker Hub\n"
    "does not count).\n"
    "\n"
    "  -n, --nodes N           simulated nodes (default 1)\n"
    "  -m, --pulls-per-node M  times each node pulls each IMAGE (default 1);\n"
    "                          pulls = N x M x number of IMAGEs\n"
    "  -c, --concurrency C     pulls in flight at once, across nodes (default N;\n"
    "                          at most N are used, 256 at most)\n"
    "  -d, --duration SECONDS  stop after this long even if pulls are left\n"
    "      --manifest-only     GET the manifests only, no blobs\n"
    "      --platform OS/ARCH[/VARIANT]\n"
    "                          which image of an index (default: this machine's)\n"
    "      --json              print the report as JSON on stdout\n"
    "  -h, --help              this help\n"
    "\n" PC_CLIENT_USAGE "\n"
    "A progress line is drawn on stderr when it is a terminal.\n"
    "\n"
    "exit codes:\n"
    "  0    every pull that ran succeeded\n"
    "  1    local failure (setting up a client, memory)\n"
    "  2    usage error\n"
    "  3    some pulls failed (the report says how)\n"
    "  130  stopped by SIGINT (after the report)\n"
    "\n"
    "example: 20 nodes rolling out two images five times, 10 pulls at once:\n"
    "  pullcache loadgen -n 20 -m 5 -c 10 registry.example.com/app:1.0 "
    "registry.example.com/sidecar:2\n";

enum { OPT_MANIFEST_ONLY = 256, OPT_PLATFORM, OPT_JSON };

typedef struct {
    bool show;
    unsigned draws;
} line;

static uint64_t count_429(const pc_loadgen_result *r)
{
    for (size_t i = 0; i < r->nfailures; i++)
        if (r->failures[i].status == 429)
            return r->failures[i].count;
    return 0;
}

static void draw(const pc_loadgen_result *r, line *l)
{
    char bytes[32];
    fprintf(stderr,
            "\r\033[Kloadgen %" PRIu64 "/%" PRIu64 " pulls: %" PRIu64 " ok, %" PRIu64
            " failed (429: %" PRIu64 "), %s, %.1f s",
            r->ok + r->failed + r->canceled, r->planned, r->ok, r->failed, count_429(r),
            pc_cli_fmt_bytes(r->bytes + r->bytes_moving + r->manifest_bytes, bytes, sizeof(bytes)),
            r->seconds);
    fflush(stderr);
    l->draws++;
}

static void on_tick(const pc_loadgen_result *r, void *ctx)
{
    line *l = ctx;
    if (l->show)
        draw(r, l);
}

/* Read the ratelimit headers with a manifest HEAD (free on Docker Hub). */
static bool probe(pc_upstream *u, const pc_loadgen_image *im, pc_ratelimit *out)
{
    pc_upstream_resp r;
    memset(&r, 0, sizeof(r));
    bool ok =
        pc_upstream_manifest(u, im->repo, im->reference, true, &r) == 0 &&
        pc_ratelimit_parse(r.ratelimit_limit, r.ratelimit_remaining, r.ratelimit_source, out) == 0;
    pc_upstream_resp_clear(&r);
    return ok;
}

static const char *end_str(pc_loadgen_end e)
{
    return e == PC_LOADGEN_DURATION ? "duration" : e == PC_LOADGEN_STOPPED ? "signal" : "count";
}

static double ms(double s)
{
    return s * 1000.0;
}

/* The credentials each registry client was opened with ("anonymous", "flags",
 * an auth file ...; "host: ..." joined by "; " for several), named when a
 * pull is refused with 401/403. One run per process. */
static char creds_tried[8192];

static void creds_add(const char *host, const pc_client_conn *conn, bool several)
{
    size_t off = strlen(creds_tried);
    const char *src = conn->cred_source[0] ? conn->cred_source : "anonymous";
    if (several)
        snprintf(creds_tried + off, sizeof(creds_tried) - off, "%s%.256s: %.4200s", off ? "; " : "",
                 host, src);
    else
        snprintf(creds_tried, sizeof(creds_tried), "%.4200s", src);
}

static bool denied(const pc_loadgen_failure *f)
{
    return f->status == 401 || f->status == 403;
}

static int print_json(const char *url, char **names, size_t n, unsigned nodes, unsigned ppn,
                      unsigned conc, unsigned duration, bool manifest_only,
                      const pc_loadgen_result *r, const pc_ratelimit *before,
                      const pc_ratelimit *after)
{
    json_t *imgs = json_array(), *fails = json_array();
    for (size_t i = 0; imgs && i < n; i++)
        json_array_append_new(imgs, json_string(names[i]));
    for (size_t i = 0; fails && i < r->nfailures; i++) {
        const pc_loadgen_failure *f = &r->failures[i];
        char advice[400];
        pc_client_tls_advice(strcmp(f->key, "tls") == 0 ? PC_UP_TLS : PC_UP_OK, f->example,
                             PC_CLIENT_BOTH, NULL, url, advice, sizeof(advice));
        json_t *fo = json_pack("{s:s, s:o, s:o, s:I, s:s}", "key", f->key, "status",
                               f->status ? json_integer(f->status) : json_null(), "code",
                               f->code[0] ? json_string(f->code) : json_null(), "count",
                               (json_int_t)f->count, "example", f->example);
        if (fo && advice[0])
            json_object_set_new(fo, "advice", json_string(advice));
        if (fo && denied(f))
            json_object_set_new(fo, "credentials_tried", json_string(creds_tried));
        json_array_append_new(fails, fo);
    }
    double done = (double)(r->ok + r->failed);
    json_t *o = json_pack(
        "{s:o, s:I, s:I, s:I, s:o, s:b, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:o, "
        "s:{s:f, s:f, s:f, s:f}, s:I, s:I, s:I, s:f, s:f, s:{s:o, s:o}}",
        "images", imgs, "nodes", (json_int_t)nodes, "pulls_per_node", (json_int_t)ppn,
        "concurrency", (json_int_t)conc, "duration",
        duration ? json_integer(duration) : json_null(), "manifest_only", manifest_only,
        "stopped_by", end_str(r->end), "pulls", "planned", (json_int_t)r->planned, "started",
        (json_int_t)r->started, "ok", (json_int_t)r->ok, "failed", (json_int_t)r->failed,
        "canceled", (json_int_t)r->canceled, "toomanyrequests", (json_int_t)count_429(r),
        "failures", fails, "latency_ms", "p50", ms(r->p50), "p95", ms(r->p95), "p99", ms(r->p99),
        "max", ms(r->max), "bytes", (json_int_t)r->bytes, "manifest_bytes",
        (json_int_t)r->manifest_bytes, "manifests", (json_int_t)r->manifests, "seconds", r->seconds,
        "pulls_per_second", r->seconds > 0 ? done / r->seconds : 0.0, "ratelimit", "before",
        pc_cli_ratelimit_json(before), "after", pc_cli_ratelimit_json(after));
    return pc_cli_print_json(o);
}

static void print_report(const char *url, size_t nimages, unsigned nodes, unsigned ppn,
                         unsigned conc, unsigned duration, bool manifest_only,
                         const pc_loadgen_result *r, const pc_ratelimit *before,
                         const pc_ratelimit *after)
{
    char b1[32], b2[32];
    printf("loadgen: %u node%s x %u pull%s x %zu image%s = %" PRIu64 " pulls, concurrency %u, %s\n",
           nodes, nodes == 1 ? "" : "s", ppn, ppn == 1 ? "" : "s", nimages, nimages == 1 ? "" : "s",
           r->planned, conc, manifest_only ? "manifests only" : "full pulls, discarded");
    if (r->end == PC_LOADGEN_DURATION)
        printf("stopped:   --duration %u s reached\n", duration);
    else if (r->end == PC_LOADGEN_STOPPED)
        printf("stopped:   interrupted\n");
    printf("pulls:     %" PRIu64 " started, %" PRIu64 " ok, %" PRIu64 " failed", r->started, r->ok,
           r->failed);
    if (r->canceled)
        printf(", %" PRIu64 " canceled", r->canceled);
    printf("\n429 TOOMANYREQUESTS: %" PRIu64 "\n", count_429(r));
    for (size_t i = 0; i < r->nfailures; i++) {
        const pc_loadgen_failure *f = &r->failures[i];
        if (f->status == 429)
            continue;
        printf("failed:    %" PRIu64 " x %s (first: %s)\n", f->count, f->key, f->example);
        char advice[400];
        pc_client_tls_advice(strcmp(f->key, "tls") == 0 ? PC_UP_TLS : PC_UP_OK, f->example,
                             PC_CLIENT_BOTH, NULL, url, advice, sizeof(advice));
        if (advice[0])
            printf("           %s\n", advice);
        if (denied(f))
            printf("           credentials tried: %s (--username with --password-stdin, "
                   "PULLCACHE_USERNAME/PULLCACHE_PASSWORD, or podman/docker login)\n",
                   creds_tried);
    }
    if (r->nlatencies)
        printf("latency:   p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms (ok pulls)\n",
               ms(r->p50), ms(r->p95), ms(r->p99), ms(r->max));
    else
        printf("latency:   no pull succeeded\n");
    double done = (double)(r->ok + r->failed);
    printf("bytes:     %s of blobs, %s of manifests; %.1f pulls/s over %.2f s\n",
           pc_cli_fmt_bytes(r->bytes, b1, sizeof(b1)),
           pc_cli_fmt_bytes(r->manifest_bytes, b2, sizeof(b2)),
           r->seconds > 0 ? done / r->seconds : 0.0, r->seconds);
    if (before || after) {
        char a[32] = "?", b[32] = "?", lim[32] = "?", win[40] = "";
        const pc_ratelimit *any = after ? after : before;
        if (before && before->remaining >= 0)
            snprintf(b, sizeof(b), "%" PRId64, before->remaining);
        if (after && after->remaining >= 0)
            snprintf(a, sizeof(a), "%" PRId64, after->remaining);
        if (any->limit >= 0)
            snprintf(lim, sizeof(lim), "%" PRId64, any->limit);
        if (any->window >= 0)
            snprintf(win, sizeof(win), " per %" PRId64 " s", any->window);
        printf("ratelimit: remaining %s -> %s (limit %s%s%s%s)\n", b, a, lim, win,
               any->source[0] ? ", source " : "", any->source);
    } else {
        printf("ratelimit: the registry sends no ratelimit headers\n");
    }
}

int pc_cli_loadgen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"pulls-per-node", required_argument, NULL, 'm'},
        {"concurrency", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"manifest-only", no_argument, NULL, OPT_MANIFEST_ONLY},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"json", no_argument, NULL, OPT_JSON},
        PC_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    pc_pull_platform platform;
    unsigned nodes = 1, ppn = 1, conc = 0, duration = 0;
    bool manifest_only = false, have_platform = false, json = false;
    int c, rc = PC_CLI_EXIT_USAGE;
    size_t nimages = 0, nups = 0;
    pc_ref refs[LOADGEN_MAX_IMAGES];
    pc_endpoint_scheme schemes[LOADGEN_MAX_IMAGES];
    pc_loadgen_image images[LOADGEN_MAX_IMAGES];
    pc_upstream *ups[LOADGEN_MAX_IMAGES];
    pc_pull_source srcs[LOADGEN_MAX_IMAGES];
    pc_loadgen_result res;
    pc_ratelimit before, after;
    bool have_before = false, have_after = false;

    memset(&res, 0, sizeof(res));
    pc_client_opts_init(&co);
    optind = 1;
    while ((c = pc_client_getopt(&co, "loadgen", argc, argv, "n:m:c:d:", opts)) > 0) {
        switch (c) {
        case 'n':
            if (pc_cli_parse_uint("loadgen", "--nodes", optarg, 1, 100000, &nodes) != 0)
                goto done;
            break;
        case 'm':
            if (pc_cli_parse_uint("loadgen", "--pulls-per-node", optarg, 1, 1000000, &ppn) != 0)
                goto done;
            break;
        case 'c':
            if (pc_cli_parse_uint("loadgen", "--concurrency", optarg, 1, 256, &conc) != 0)
                goto done;
            break;
        case 'd':
            if (pc_cli_parse_uint("loadgen", "--duration", optarg, 1, 604800, &duration) != 0)
                goto done;
            break;
        case OPT_MANIFEST_ONLY:
            manifest_only = true;
            break;
        case OPT_PLATFORM:
            if (pc_cli_platform_parse("loadgen", optarg, &platform) != 0)
                goto done;
            have_platform = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        }
    }
    if (c < 0)
        goto done;
    if (optind == argc) {
        fprintf(stderr, "pullcache loadgen: which IMAGE? (`pullcache loadgen --help`)\n");
        goto done;
    }
    if (argc - optind > LOADGEN_MAX_IMAGES) {
        fprintf(stderr, "pullcache loadgen: at most %d images\n", LOADGEN_MAX_IMAGES);
        goto done;
    }
    if (!conc || conc > nodes) /* a node runs one pull at a time */
        conc = nodes < 256 ? nodes : 256;
    for (int i = optind; i < argc; i++) {
        pc_ref *r = &refs[nimages];
        if (pc_client_parse_ref(argv[i], r, &schemes[nimages]) != 0)
            goto done;
        images[nimages].repo = r->name;
        images[nimages].reference = r->has_digest ? r->digest.str : r->tag;
        nimages++;
    }

    /* One client per registry host; credentials are looked up once per host. */
    rc = PC_CLI_EXIT_LOCAL;
    unsigned in_flight = conc * 4;
    co.max_connections = in_flight > 1024 ? 1024 : in_flight;
    for (size_t i = 0; i < nimages; i++) {
        size_t k;
        for (k = 0; k < i; k++)
            if (strcmp(refs[k].host, refs[i].host) == 0)
                break;
        if (k < i) {
            images[i].src = images[k].src;
            continue;
        }
        if (nups > 0 && co.password_stdin) {
            fprintf(stderr, "pullcache loadgen: --password-stdin works for one registry; these "
                            "images are on several\n");
            rc = PC_CLI_EXIT_USAGE;
            goto done;
        }
        pc_client_side side;
        pc_client_conn conn;
        pc_client_side_of(&co, PC_CLIENT_BOTH, &side);
        if (pc_client_connect(&co, "loadgen", PC_CLIENT_BOTH, &side, refs[i].host, schemes[i],
                              &ups[nups], &conn) != 0)
            goto done;
        bool several = false;
        for (size_t j = 1; j < nimages; j++)
            several = several || strcmp(refs[j].host, refs[0].host) != 0;
        creds_add(refs[i].host, &conn, several);
        pc_pull_source_upstream(&srcs[nups], ups[nups]);
        images[i].src = &srcs[nups];
        nups++;
    }

    pc_cli_catch_stop(PC_CLI_STOP_ONCE); /* a second ^C kills at once */

    pc_upstream *first = (pc_upstream *)images[0].src->ctx;
    have_before = probe(first, &images[0], &before);
    line ln = {.show = pc_cli_stderr_tty()};
    pc_loadgen_opts lo = {
        .images = images,
        .nimages = nimages,
        .nodes = nodes,
        .pulls_per_node = ppn,
        .concurrency = conc,
        .duration = duration,
        .manifest_only = manifest_only,
        .platform = have_platform ? &platform : NULL,
        .stop = &pc_cli_stop_flag,
        .on_tick = on_tick,
        .tick_ctx = &ln,
    };
    if (pc_loadgen_run(&lo, &res) != 0) {
        fprintf(stderr, "pullcache loadgen: %s\n", pc_error_last());
        goto done;
    }
    if (ln.show) {
        draw(&res, &ln);
        fputc('\n', stderr);
    }
    have_after = probe(first, &images[0], &after);
    char *names[LOADGEN_MAX_IMAGES];
    for (size_t i = 0; i < nimages; i++)
        names[i] = argv[optind + (int)i];
    if (json) {
        if (print_json(pc_upstream_url(first), names, nimages, nodes, ppn, conc, duration,
                       manifest_only, &res, have_before ? &before : NULL,
                       have_after ? &after : NULL) != 0) {
            fprintf(stderr, "pullcache loadgen: out of memory writing JSON\n");
            goto done;
        }
    } else {
        print_report(pc_upstream_url(first), nimages, nodes, ppn, conc, duration, manifest_only,
                     &res, have_before ? &before : NULL, have_after ? &after : NULL);
    }
    fflush(stdout);
    rc = res.end == PC_LOADGEN_STOPPED ? PC_CLI_EXIT_INTERRUPTED
         : res.failed                  ? PC_CLI_EXIT_REGISTRY
                                       : PC_CLI_EXIT_OK;
done:
    pc_loadgen_result_clear(&res);
    for (size_t i = 0; i < nups; i++)
        pc_upstream_free(ups[i]);
    pc_client_opts_clear(&co);
    return rc;
}
