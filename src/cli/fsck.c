/*
 * fsck.c - `pullcache fsck`: check a data directory (blob files against
 * their digests, the meta store against the blob files, manifests of local
 * repositories against what they reference, uploads and temp files a crash
 * left) and, with --repair, remove or fix what is corrupt or unreachable.
 * Safe while a daemon runs on the same data directory (fsck.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "mirror_evict.h"
#include "fsck.h"
#include "pullfmt.h"

const char pc_cli_fsck_usage[] =
    "usage: pullcache fsck [--config FILE] [--data DIR] [--upstream NAME=URL]...\n"
    "                      [--grace SECONDS] [--repair] [--json]\n"
    "\n"
    "Check a data directory, or the stores a configuration names (S3 and\n"
    "PostgreSQL too; daemons may be running on them):\n"
    " - every blob file's bytes hash to its digest, and its size is the one the\n"
    "   meta store records;\n"
    " - every blob link and manifest has its file, and every manifest of a local\n"
    "   repository has its blobs (linked to the repository) and child manifests\n"
    "   (mirrored repositories may lack layers: the mirror fetches them again);\n"
    " - blob files nothing references, staging files without an upload session,\n"
    "   sessions without a staging file or idle past storage.upload_ttl, and temp\n"
    "   files left by a crash.\n"
    "Prints how many problems of each kind there are, then one line per problem\n"
    "with what --repair does about it. Blobs, uploads and temp files younger than\n"
    "the grace period may be in use and are left alone.\n"
    "\n"
    "--repair removes corrupt blob files (a pull through the mirror fetches them\n"
    "again, a push uploads them again), dangling blob links, manifests whose bytes\n"
    "are gone and local manifests that lack content (each with its tags: push the\n"
    "image again), unreferenced blobs, stale uploads and temp files; it links blobs\n"
    "a manifest needs and records true sizes. Each removal first checks, inside a\n"
    "meta store transaction, that the problem is still there.\n"
    "\n"
    "  -c, --config FILE      YAML configuration (storage.data, storage.upload_ttl,\n"
    "                         upstreams)\n"
    "  -d, --data DIR         data directory (default: storage.data, ./data); it must\n"
    "                         exist, nothing is created\n"
    "      --upstream NAME=URL  an upstream as given to serve (repeatable): its\n"
    "                         repositories are mirrored (host-like names always are)\n"
    "      --grace SECONDS    leave blobs, uploads and temp files younger than this\n"
    "                         alone (default 3600, as gc)\n"
    "      --repair           repair what is found, and say what was done\n"
    "      --json             print one JSON document: counts and problems\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit status:\n"
    "  0  no problems, or --repair repaired every problem found\n"
    "  1  problems found (without --repair), or a repair failed\n"
    "  2  usage: a bad flag or configuration\n"
    "  3  the data directory cannot be opened or read (a missing one included)\n"
    "\n"
    "Example:\n"
    "  pullcache fsck --data /var/lib/pullcache && echo consistent\n"
    "  pullcache fsck --data /var/lib/pullcache --repair\n";

enum { OPT_UPSTREAM = 256, OPT_GRACE, OPT_REPAIR, OPT_JSON };

#define MAX_FLAG_UPSTREAMS 64
#define FSCK_UNLOCKED_GRACE_MIN 60

static json_t *problem_json(const pc_fsck_problem *p)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "kind", pc_fsck_kind_name(p->kind), "status",
                  pc_fsck_status_name(p->status), "action",
                  p->status == PC_FSCK_REPAIRED ? pc_fsck_done(p->kind) : pc_fsck_action(p->kind),
                  "detail", p->detail);
    if (!o)
        return NULL;
    int bad = 0;
    if (p->repo[0])
        bad |= json_object_set_new(o, "repo", json_string(p->repo));
    if (p->digest.str[0])
        bad |= json_object_set_new(o, "digest", json_string(p->digest.str));
    if (p->ref.str[0])
        bad |= json_object_set_new(o, "ref", json_string(p->ref.str));
    if (p->name[0])
        bad |= json_object_set_new(o, p->kind == PC_FSCK_STALE_TEMP ? "name" : "upload",
                                   json_string(p->name));
    if (p->path[0])
        bad |= json_object_set_new(o, "path", json_string(p->path));
    bad |= json_object_set_new(o, "size", json_integer((json_int_t)p->size));
    if (p->kind == PC_FSCK_SIZE_MISMATCH)
        bad |= json_object_set_new(o, "recorded_size", json_integer((json_int_t)p->recorded));
    if (p->kind == PC_FSCK_INCOMPLETE_MANIFEST)
        bad |= json_object_set_new(o, "missing", json_integer(p->missing));
    if (p->age_s)
        bad |= json_object_set_new(o, "age", json_integer(p->age_s));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_json(const char *data, const pc_fsck_opts *o, const pc_fsck_report *r, bool clean)
{
    json_t *counts = json_object(), *problems = json_array();
    json_t *doc = NULL;
    int bad = !counts || !problems;
    for (int k = 0; k < PC_FSCK_KIND_COUNT && !bad; k++)
        bad |= json_object_set_new(counts, pc_fsck_kind_name((pc_fsck_kind)k),
                                   json_integer((json_int_t)r->counts[k]));
    for (size_t i = 0; i < r->nproblems && !bad; i++) {
        json_t *p = problem_json(&r->problems[i]);
        bad |= !p || json_array_append_new(problems, p);
    }
    if (!bad)
        doc = json_pack(
            "{s:s, s:b, s:b, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:I, "
            "s:I, s:o, s:o, s:I, s:I, s:I}",
            "data", data, "repair", o->repair, "clean", clean, "grace", (json_int_t)o->grace_s,
            "upload_ttl", (json_int_t)o->upload_ttl_s, "checked", "blobs", (json_int_t)r->blobs,
            "blob_bytes", (json_int_t)r->blob_bytes, "manifests", (json_int_t)r->manifests,
            "blob_links", (json_int_t)r->links, "uploads", (json_int_t)r->uploads,
            "upload_sessions", (json_int_t)r->sessions, "temp_files", (json_int_t)r->temp_files,
            "young", (json_int_t)r->young, "problems_found", (json_int_t)r->nproblems, "counts",
            counts, "problems", problems, "repaired", (json_int_t)r->repaired, "skipped",
            (json_int_t)r->skipped, "failed", (json_int_t)r->failed);
    if (!doc) {
        json_decref(counts);
        json_decref(problems);
        return -1;
    }
    return pc_cli_print_json(doc);
}

static const char *plural(unsigned long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void print_problem(const pc_fsck_problem *p)
{
    printf("%s", pc_fsck_kind_name(p->kind));
    if (p->repo[0])
        printf(" %s", p->repo);
    if (p->digest.str[0])
        printf(" %s", p->digest.str);
    if (p->name[0])
        printf(" %s", p->name);
    if (p->path[0] && p->kind != PC_FSCK_UNLINKED_BLOB && p->kind != PC_FSCK_SIZE_MISMATCH)
        printf(" (%s)", p->path);
    if (p->age_s)
        printf(", idle %lds", p->age_s);
    if (p->detail[0])
        printf(": %s", p->detail);
    switch (p->status) {
    case PC_FSCK_FOUND:
        printf(" -> --repair would %s\n", pc_fsck_action(p->kind));
        break;
    case PC_FSCK_REPAIRED:
        printf(" -> repaired: %s\n", pc_fsck_done(p->kind));
        break;
    case PC_FSCK_SKIPPED:
        printf(" -> skipped\n");
        break;
    case PC_FSCK_FAILED:
        printf(" -> FAILED\n");
        break;
    }
}

static void print_text(const char *data, const pc_fsck_opts *o, const pc_fsck_report *r)
{
    char bytes[32];
    if (r->nproblems) {
        printf("pullcache fsck: %s: %zu %s\n", data, r->nproblems,
               plural(r->nproblems, "problem", "problems"));
        for (int k = 0; k < PC_FSCK_KIND_COUNT; k++)
            if (r->counts[k])
                printf("  %-22s %4lu  %s\n", pc_fsck_kind_name((pc_fsck_kind)k), r->counts[k],
                       pc_fsck_kind_about((pc_fsck_kind)k));
        printf("\n");
        for (size_t i = 0; i < r->nproblems; i++)
            print_problem(&r->problems[i]);
        printf("\n");
    }
    printf("checked %lu %s (%s hashed), %lu %s, %lu blob %s, %lu upload %s, %lu upload %s, "
           "%lu temp %s",
           r->blobs, plural(r->blobs, "blob", "blobs"),
           pc_cli_fmt_bytes(r->blob_bytes, bytes, sizeof(bytes)), r->manifests,
           plural(r->manifests, "manifest", "manifests"), r->links,
           plural(r->links, "link", "links"), r->uploads, plural(r->uploads, "file", "files"),
           r->sessions, plural(r->sessions, "session", "sessions"), r->temp_files,
           plural(r->temp_files, "file", "files"));
    if (r->young)
        printf("; %lu younger than %lds left alone (may be in use)", r->young, o->grace_s);
    printf("\n");
    if (!r->nproblems)
        printf("pullcache fsck: %s is consistent\n", data);
    else if (!o->repair)
        printf("pullcache fsck: run `pullcache fsck --repair` to do what each line says (safe "
               "while serve runs)\n");
    else if (!r->failed)
        printf("pullcache fsck: repaired %lu of %zu %s%s; %s is consistent now\n", r->repaired,
               r->nproblems, plural(r->nproblems, "problem", "problems"),
               r->skipped ? " (the others changed meanwhile and need nothing)" : "", data);
    else
        printf("pullcache fsck: repaired %lu of %zu %s, %lu failed (see FAILED above)\n",
               r->repaired, r->nproblems, plural(r->nproblems, "problem", "problems"), r->failed);
}

int pc_cli_fsck(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"repair", no_argument, NULL, OPT_REPAIR},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *data = NULL, *upstreams[MAX_FLAG_UPSTREAMS];
    const char **names = NULL;
    size_t nnames = 0;
    int nupstreams = 0, rc = 2, c;
    bool json = false;
    pc_config *cfg = NULL;
    pc_registry *reg = NULL;
    pc_fsck_opts o;
    pc_fsck_report r;
    memset(&o, 0, sizeof(o));
    memset(&r, 0, sizeof(r));
    o.grace_s = 3600;

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
                fprintf(stderr, "pullcache fsck: at most %d --upstream flags\n",
                        MAX_FLAG_UPSTREAMS);
                return 2;
            }
            upstreams[nupstreams++] = optarg;
            break;
        case OPT_GRACE: {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 0) {
                fprintf(stderr, "pullcache fsck: --grace wants seconds, not '%s'\n", optarg);
                return 2;
            }
            o.grace_s = v;
            break;
        }
        case OPT_REPAIR:
            o.repair = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        default:
            fprintf(stderr, "`pullcache fsck --help` lists the options\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pullcache fsck: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    if (pc_cli_config_load("fsck", config_path, data, upstreams, nupstreams, &cfg))
        goto done;
    pc_store_opts so;
    pc_config_store_opts(cfg, &so);
    if (!pc_store_durable(&so)) {
        fprintf(stderr,
                "pullcache fsck: storage.blobs.driver %s, storage.meta.driver %s: in-memory "
                "storage leaves nothing to check (it ends with the serve that holds it)\n",
                pc_store_blobs_name(&so), pc_store_meta_name(&so));
        goto done;
    }
    if (pc_evict_upstreams(cfg, &names, &nnames)) {
        fprintf(stderr, "pullcache fsck: out of memory\n");
        goto done;
    }
    o.upload_ttl_s = (long)cfg->storage->upload_ttl;
    o.upstreams = names;
    o.nups = nnames;

    rc = 3;
    /* the defaults: a data directory that must exist (nothing is made);
     * other stores (S3, PostgreSQL) are opened as serve opens them */
    if (pc_store_is_default(&so) ? pc_fsck_open(cfg->storage->data, &reg)
                                 : pc_registry_open_opts(&reg, &so)) {
        fprintf(stderr, "pullcache fsck: cannot open the %s: %s\n",
                pc_store_is_default(&so) ? "data directory" : "stores", pc_error_last());
        goto done;
    }
    /* Without a publish lock (an object store) only the grace period keeps
     * a blob being published (visible, not yet linked) from looking
     * unreferenced: never shorter than a minute there, as for gc. */
    if (o.repair && o.grace_s < FSCK_UNLOCKED_GRACE_MIN && !pc_registry_publish_locks(reg)) {
        fprintf(stderr,
                "pullcache fsck: the %s blob store has no publish lock: --grace raised from %ld "
                "to %d s so that blobs being published are safe\n",
                pc_store_blobs_name(&so), o.grace_s, FSCK_UNLOCKED_GRACE_MIN);
        o.grace_s = FSCK_UNLOCKED_GRACE_MIN;
    }
    if (pc_fsck_run(reg, &o, &r)) {
        fprintf(stderr, "pullcache fsck: cannot read %s: %s\n", cfg->storage->data,
                pc_error_last());
        goto done;
    }
    bool clean = r.nproblems == 0 || (o.repair && r.failed == 0);
    if (json) {
        if (print_json(cfg->storage->data, &o, &r, clean)) {
            fprintf(stderr, "pullcache fsck: out of memory\n");
            rc = 1;
            goto done;
        }
    } else {
        print_text(cfg->storage->data, &o, &r);
    }
    rc = clean ? 0 : 1;
done:
    pc_fsck_report_free(&r);
    free(names);
    pc_registry_free(reg);
    pc_config_free(cfg);
    return rc;
}
