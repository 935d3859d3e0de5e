/*
 * copy.c - `pullcache copy SRC DST`: replicate an image (all platforms,
 * digests preserved) between registries and OCI image layouts, with a
 * progress line per blob on a terminal and a JSON summary for scripts.
 * The engine is src/lib/copy.c; copyside.c opens the two sides (shared
 * with `pullcache sync`).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copyside.h"
#include "pullfmt.h"

const char pc_cli_copy_usage[] =
    "usage: pullcache copy [OPTIONS] SRC DST\n"
    "\n"
    "Copy an image from SRC to DST with the digests unchanged (the exact manifest\n"
    "bytes). Each side is a registry reference (docker.io/library/nginx:1.27,\n"
    "127.0.0.1:5000/mirror/nginx:1.27, http://10.0.0.5:5000/team/app:1) or an OCI\n"
    "image layout (oci:DIR[:TAG]).\n"
    "Without a tag, DST takes SRC's. Blobs the destination has are skipped after\n"
    "a HEAD, blobs of another repository of the same registry are mounted, the\n"
    "others streamed in chunks; a dropped connection resumes from the\n"
    "destination's offset. Manifests go last and the tag very last, so a failed\n"
    "copy never names anything half-copied.\n"
    "\n"
    "      --platform OS/ARCH[/VARIANT]\n"
    "                          copy only this image of an index (repeatable, or\n"
    "                          comma-separated; several make a new index of those,\n"
    "                          with a new digest). Default: every platform\n"
    "      --referrers         also copy signatures, SBOMs and other referrers\n"
    "  -j, --concurrency N     blobs at once (default 4, 1 to 64)\n"
    "      --chunk-size MIB    upload chunk in MiB (default 64, 1 to 4096); smaller\n"
    "                          blobs go in one request\n"
    "      --retries N         repeat a failed request up to N times with back-off\n"
    "                          (default 5, 0 to 100; 429, 5xx, timeouts, dropped\n"
    "                          connections; Retry-After is respected)\n"
    "      --json              print a JSON summary on stdout (also on failure)\n"
    "  -h, --help              this help\n"
    "\n" PC_CLIENT_USAGE PC_CLIENT_SIDE_USAGE
    "  PULLCACHE_USERNAME/PULLCACHE_PASSWORD apply to both registries; the auth\n"
    "  file is looked up per registry host.\n"
    "\n"
    "exit codes:\n"
    "  0    copied (or the destination had everything)\n"
    "  1    local failure: a layout (missing, not a layout, no such image, several\n"
    "       images and none named), memory, a credentials file\n"
    "  2    usage error\n"
    "  3    registry or network error on either side (unknown image or tag,\n"
    "       authentication, a refused media type, 429 after the retries)\n"
    "  4    verification failure: digest or size mismatch, malformed manifest\n"
    "  5    the index has no image for a --platform\n"
    "  130  interrupted (SIGINT)\n"
    "\n"
    "examples:\n"
    "  pullcache copy docker.io/library/nginx:1.27 127.0.0.1:5000/mirror/nginx\n"
    "  pullcache copy --referrers http://127.0.0.1:5001/app:1 http://127.0.0.1:5000/app:1\n"
    "  pullcache copy --src-ca-file ca.crt --dest-plain-http --dest-username ci \\\n"
    "      --dest-password-env PUSH_TOKEN registry.example.com/team/app:1 10.0.0.5:5000/team/app\n"
    "  pullcache copy --platform linux/arm64 docker.io/library/alpine:3 oci:./alpine:3\n";

enum { OPT_PLATFORM = 256, OPT_REFERRERS, OPT_CHUNK, OPT_RETRIES, OPT_JSON };

int pc_cli_copy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"referrers", no_argument, NULL, OPT_REFERRERS},
        {"concurrency", required_argument, NULL, 'j'},
        {"chunk-size", required_argument, NULL, OPT_CHUNK},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"json", no_argument, NULL, OPT_JSON},
        PC_CLIENT_LONGOPTS,
        PC_CLIENT_SIDE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    pc_pull_platform plats[PC_COPY_PLATFORMS_MAX];
    size_t nplats = 0;
    unsigned concurrency = 4, chunk_mib = 64, retries = 5;
    bool json = false, referrers = false;
    int c, rc = PC_CLI_EXIT_USAGE;
    pc_copy_sides sides;
    pc_copy_result res;

    memset(&res, 0, sizeof(res));
    memset(&sides, 0, sizeof(sides));
    pc_client_opts_init(&co);
    optind = 1;
    while ((c = pc_client_getopt(&co, "copy", argc, argv, "j:", opts)) > 0) {
        switch (c) {
        case OPT_PLATFORM:
            if (pc_cli_platforms_parse("copy", optarg, plats, &nplats) != 0)
                goto done;
            break;
        case OPT_REFERRERS:
            referrers = true;
            break;
        case 'j':
            if (pc_cli_parse_uint("copy", "--concurrency", optarg, 1, 64, &concurrency) != 0)
                goto done;
            break;
        case OPT_CHUNK:
            if (pc_cli_parse_uint("copy", "--chunk-size", optarg, 1, 4096, &chunk_mib) != 0)
                goto done;
            break;
        case OPT_RETRIES:
            if (pc_cli_parse_uint("copy", "--retries", optarg, 0, 100, &retries) != 0)
                goto done;
            break;
        case OPT_JSON:
            json = true;
            break;
        }
    }
    if (c < 0)
        goto done;
    if (optind != argc - 2) {
        fprintf(stderr, "pullcache copy: want SRC and DST (`pullcache copy --help`)\n");
        goto done;
    }
    if (pc_copy_sides_parse("copy", argv[optind], argv[optind + 1], &sides) != 0)
        goto done;
    rc = PC_CLI_EXIT_LOCAL;
    co.max_connections = concurrency * 2 + 4;
    if (pc_copy_sides_open("copy", &co, &sides) != 0)
        goto done;

    pc_cli_catch_stop(PC_CLI_STOP_ONCE);

    pc_cli_bars *bars = pc_cli_stderr_tty() ? pc_cli_bars_new() : NULL;
    pc_copy_opts o = {
        .platforms = nplats ? plats : NULL,
        .nplatforms = nplats,
        .referrers = referrers,
        .concurrency = concurrency,
        .chunk_size = (uint64_t)chunk_mib << 20,
        .retries = retries,
        .no_retries = retries == 0,
        .on_progress = bars ? pc_cli_bars_event : NULL,
        .progress_ctx = bars,
        .cancel = &pc_cli_stop_flag,
    };
    pc_copy_sides_fill(&sides, &o);
    int crc = pc_copy_run(&o, &res);
    pc_cli_bars_free(bars, crc == 0);
    rc = crc == 0 ? PC_CLI_EXIT_OK : pc_cli_pull_exit(res.error.kind);
    char advice[400] = "";
    if (crc != 0) {
        const pc_copy_side *side = res.error_at_dest ? &sides.dst : &sides.src;
        pc_client_tls_advice(res.error.cls, res.error.message,
                             res.error_at_dest ? PC_CLIENT_DST : PC_CLIENT_SRC, NULL,
                             side->layout ? NULL : side->conn.url, advice, sizeof(advice));
        char creds[4400] = "";
        if ((res.error.status == 401 || res.error.status == 403) && !side->layout)
            snprintf(creds, sizeof(creds), "; credentials tried at the %s: %.4200s",
                     res.error_at_dest ? "destination" : "source",
                     side->conn.cred_source[0] ? side->conn.cred_source : "anonymous");
        fprintf(stderr, "pullcache copy: %s -> %s: %s%s%s%s\n", sides.src_name, sides.dst_name,
                res.error.message, advice[0] ? "; " : "", advice, creds);
    }
    if (json) {
        if (pc_cli_print_json(
                pc_cli_copy_json(sides.src_name, sides.dst_name, crc, &res, advice)) != 0 &&
            rc == 0)
            rc = PC_CLI_EXIT_LOCAL;
    } else if (crc == 0) {
        pc_cli_copy_summary(stdout, sides.src_name, sides.dst_name, &res);
    }
done:
    pc_copy_sides_close(&sides);
    pc_client_opts_clear(&co);
    return rc;
}
