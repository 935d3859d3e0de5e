/*
 * gc.c - `pullcache gc`: on demand, evict mirrored blobs down to the cache's
 * size cap (least recently used first, local content never), then sweep
 * published blobs nothing references any more. Safe while a daemon runs on
 * the same data directory.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "config.h"
#include "mirror_evict.h"
#include "pullfmt.h"
#include "registry.h"

const char pc_cli_gc_usage[] =
    "usage: pullcache gc [--config FILE] [--data DIR] [--upstream NAME=URL]...\n"
    "                    [--max-size BYTES] [--grace SECONDS] [--dry-run] [--json]\n"
    "\n"
    "Collect garbage in a data directory (a daemon may be running on it):\n"
    " 1. evict mirrored blobs, least recently used first, until the mirrored content\n"
    "    fits in the size cap; pushed (local) content and blobs a local repository\n"
    "    shares are never evicted, manifests stay, and a later pull fetches an\n"
    "    evicted layer from its upstream again;\n"
    " 2. remove published blobs that nothing references and that are older than\n"
    "    the grace period (so pushes in flight are safe).\n"
    "Mirrored repositories are those under a configured upstream's name, so pass\n"
    "the daemon's --config (or its --upstream flags). With the stores of a fleet\n"
    "(storage.blobs on S3, storage.meta on PostgreSQL) gc runs from any machine that\n"
    "reaches them, with the replicas' configuration; DIR is then only scratch space.\n"
    "\n"
    "  -c, --config FILE      YAML configuration (storage.data, upstreams, cache.max_size)\n"
    "  -d, --data DIR         data directory (default: storage.data, ./data)\n"
    "      --upstream NAME=URL  an upstream as given to serve (repeatable)\n"
    "      --max-size BYTES   cap for mirrored content, with an optional K, M or G\n"
    "                         suffix (powers of 1024); default cache.max_size, where 0\n"
    "                         means no cap (given here, 0 evicts every mirrored blob)\n"
    "      --grace SECONDS    keep unreferenced blobs younger than this (default 3600)\n"
    "      --dry-run          report what would be removed, remove nothing\n"
    "      --json             print the summary as JSON\n"
    "  -h, --help             this help\n"
    "\n"
    "exit codes:\n"
    "  0  done (or, --dry-run, counted)\n"
    "  1  the configuration is invalid, DIR is not a data directory (a missing one\n"
    "     included), or the store failed (the message says which)\n"
    "  2  usage: a bad flag or argument\n";

enum { OPT_UPSTREAM = 256, OPT_MAX_SIZE, OPT_GRACE, OPT_DRY_RUN, OPT_JSON };

#define MAX_FLAG_UPSTREAMS 64

/* "123", "10K", "5M", "2G" into bytes. 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (!*s || s[0] == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (end == s)
        return -1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        return -1;
    }
    if (*end && end[1])
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int print_json(bool dry, bool evicted, uint64_t cap, const pc_evict_stats *ev,
                      const pc_gc_stats *sw)
{
    json_t *o =
        json_pack("{s:b, s:o, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}}", "dry_run", dry,
                  "max_size", evicted ? json_integer((json_int_t)cap) : json_null(), "evict",
                  "mirrored_bytes", (json_int_t)ev->mirrored_bytes, "freed", (json_int_t)ev->freed,
                  "freed_bytes", (json_int_t)ev->freed_bytes, "skipped", (json_int_t)ev->skipped,
                  "sweep", "blobs", (json_int_t)sw->blobs, "removed", (json_int_t)sw->removed,
                  "removed_bytes", (json_int_t)sw->removed_bytes, "young", (json_int_t)sw->young);
    return pc_cli_print_json(o);
}

#define GC_UNLOCKED_GRACE_MIN 60

int pc_cli_gc(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *data = NULL, *upstreams[MAX_FLAG_UPSTREAMS];
    const char **names = NULL;
    size_t nnames = 0;
    int nupstreams = 0, rc = 1, c;
    uint64_t max_size = 0;
    long grace = 3600;
    bool have_max = false, dry = false, json = false;
    pc_config *cfg = NULL;
    pc_registry *reg = NULL;
    pc_evict_stats ev;
    pc_gc_stats sw;
    memset(&ev, 0, sizeof(ev));
    memset(&sw, 0, sizeof(sw));

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case OPT_UPSTREAM:
            if (nupstreams == MAX_FLAG_UPSTREAMS) {
                fprintf(stderr, "pullcache gc: at most %d --upstream flags\n", MAX_FLAG_UPSTREAMS);
                return 2;
            }
            upstreams[nupstreams++] = optarg;
            break;
        case OPT_MAX_SIZE:
            if (parse_size(optarg, &max_size)) {
                fprintf(stderr, "pullcache gc: --max-size wants bytes (e.g. 500M), not '%s'\n",
                        optarg);
                return 2;
            }
            have_max = true;
            break;
        case OPT_GRACE: {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 0) {
                fprintf(stderr, "pullcache gc: --grace wants seconds, not '%s'\n", optarg);
                return 2;
            }
            grace = v;
            break;
        }
        case OPT_DRY_RUN:
            dry = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        default:
            fprintf(stderr, "`pullcache gc --help` lists the options\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pullcache gc: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    if (pc_cli_config_load("gc", config_path, data, upstreams, nupstreams, &cfg))
        return 1;
    pc_store_opts so;
    pc_config_store_opts(cfg, &so);
    if (!pc_store_durable(&so)) {
        fprintf(stderr,
                "pullcache gc: storage.blobs.driver %s, storage.meta.driver %s: gc works on what "
                "a data directory keeps on disk, and in-memory storage leaves nothing there (it "
                "ends with the serve that holds it)\n",
                pc_store_blobs_name(&so), pc_store_meta_name(&so));
        goto done;
    }
    if (pc_evict_upstreams(cfg, &names, &nnames)) {
        fprintf(stderr, "pullcache gc: out of memory\n");
        goto done;
    }
    if (!have_max)
        max_size = cfg->cache->max_size;
    bool evict = have_max || max_size > 0;

    /* Only serve makes a data directory: a missing one is a mistake here
     * when the stores are in it (fs blobs, meta.db). On an object store and
     * PostgreSQL the data directory holds no content, only scratch space
     * (made if missing): gc runs anywhere the configuration's stores are
     * reachable, e.g. beside the replicas with their configuration. */
    struct stat st;
    char meta[4096];
    bool sqlite = strcmp(pc_store_meta_name(&so), "sqlite") == 0;
    bool fs = strcmp(pc_store_blobs_name(&so), "fs") == 0;
    snprintf(meta, sizeof(meta), "%s/meta.db", cfg->storage->data);
    if ((sqlite || fs) && (stat(cfg->storage->data, &st) != 0 || !S_ISDIR(st.st_mode) ||
                           (sqlite && stat(meta, &st) != 0))) {
        fprintf(stderr,
                "pullcache gc: %s is not a pullcache data directory (no meta.db): give the one "
                "serve uses with --data DIR\n",
                cfg->storage->data);
        goto done;
    }
    if (pc_registry_open_opts(&reg, &so)) {
        fprintf(stderr, "pullcache gc: cannot open storage in %s: %s\n", cfg->storage->data,
                pc_error_last());
        goto done;
    }
    if (evict && pc_evict_run(reg, names, nnames, max_size, dry, NULL, NULL, &ev)) {
        fprintf(stderr, "pullcache gc: eviction: %s\n", pc_error_last());
        goto done;
    }
    /* Without a publish lock in the blob store (an object store), nothing
     * holds gc off between a replica publishing a blob and linking it but
     * the grace period: never shorter than a minute there. */
    if (grace < GC_UNLOCKED_GRACE_MIN && !pc_registry_publish_locks(reg)) {
        fprintf(stderr,
                "pullcache gc: the %s blob store has no publish lock: --grace raised from %ld to "
                "%d s so that blobs being published are safe\n",
                pc_store_blobs_name(&so), grace, GC_UNLOCKED_GRACE_MIN);
        grace = GC_UNLOCKED_GRACE_MIN;
    }
    if (pc_gc_sweep(reg, grace, dry, &sw)) {
        fprintf(stderr, "pullcache gc: sweep: %s\n", pc_error_last());
        goto done;
    }
    if (!dry) /* a full disk may have spent it (registry.h) */
        pc_registry_reserve_refill(reg);
    if (json) {
        if (print_json(dry, evict, max_size, &ev, &sw)) {
            fprintf(stderr, "pullcache gc: out of memory\n");
            goto done;
        }
    } else {
        const char *verb = dry ? "would evict" : "evicted";
        if (evict)
            printf("%s %lu mirrored blob(s), %" PRIu64 " bytes (mirrored: %" PRIu64
                   " bytes, cap %" PRIu64 "%s)\n",
                   verb, ev.freed, ev.freed_bytes, ev.mirrored_bytes, max_size,
                   ev.skipped ? ", some busy blobs skipped" : "");
        else
            printf("no cache size cap (cache.max_size is 0): nothing evicted\n");
        printf("%s %lu unreferenced blob(s), %" PRIu64 " bytes, of %lu (%lu younger than %lds"
               " kept)\n",
               dry ? "would sweep" : "swept", sw.removed, sw.removed_bytes, sw.blobs, sw.young,
               grace);
    }
    rc = 0;
done:
    free(names);
    pc_registry_free(reg);
    pc_config_free(cfg);
    return rc;
}
