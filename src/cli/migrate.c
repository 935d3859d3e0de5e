/*
 * migrate.c - `pullcache migrate`: move a single-machine installation (a
 * data directory's fs blobs and meta.db) to the stores a configuration
 * names (S3 and PostgreSQL, another data directory, any pair the store
 * factory opens), resumably and verified (migrate.h does the work). This
 * file opens both sides, keeps a serve off the source, and reports.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "migrate.h"
#include "pullfmt.h"
#include "store/factory.h"
#include "util.h"

const char pc_cli_migrate_usage[] =
    "usage: pullcache migrate --from DIR --to CONFIG [--dry-run] [--json] [--jobs N]\n"
    "                         [--force]\n"
    "\n"
    "Copy a data directory (the default storage: fs blobs and meta.db in DIR) to\n"
    "the storage CONFIG's storage section names (e.g. storage.blobs.driver s3 and\n"
    "storage.meta.driver postgres, or another data directory), so a fleet of\n"
    "replicas can take over from one machine:\n"
    " - every blob, each hashed on the way (a blob whose bytes do not match its\n"
    "   digest is not copied and is reported: run `pullcache fsck` on DIR);\n"
    " - blob links, manifests with their references, tags with their updated\n"
    "   times, the cache's access records and the pull limiter's counts;\n"
    " - then verification: every blob is at the destination with its size, every\n"
    "   manifest, blob link and tag is there, each tag naming the same digest.\n"
    "Upload sessions are not copied (their clients start those uploads again), nor\n"
    "repositories whose every manifest was deleted. Stop the serve on DIR first:\n"
    "a running one is refused (it holds DIR/serve.lock) unless --force, and so is a\n"
    "destination a serve already uses (it holds the destination's upkeep lease).\n"
    "\n"
    "Resumable: what the destination has is not written again (a blob of the\n"
    "same size is skipped), so after an interruption (even kill -9) run the same\n"
    "command again; a run with nothing left to do says so and writes nothing. A\n"
    "killed run may leave a partial blob in the destination's temp area (a file\n"
    "under tmp/, an S3 multipart upload), which gc and fsck remove.\n"
    "DIR is read only (opening meta.db may upgrade its schema). Progress goes to\n"
    "stderr when it is a terminal.\n"
    "\n"
    "      --from DIR         the data directory to copy (it must exist)\n"
    "      --to CONFIG        YAML configuration whose storage section (storage.data,\n"
    "                         storage.blobs, storage.meta) is the destination; it\n"
    "                         may not be DIR itself nor in memory\n"
    "      --dry-run          count what would be copied, write nothing (the\n"
    "                         destination's stores are opened, so made if missing)\n"
    "      --json             print the summary as one JSON document\n"
    "      --jobs N           blobs copied at once, 1 to 64 (default 4)\n"
    "      --force            copy even while a serve holds DIR (what it writes\n"
    "                         meanwhile may be missed: stop it and run again) or\n"
    "                         uses the destination\n"
    "  -h, --help             this help\n"
    "\n"
    "exit codes:\n"
    "  0  done: the destination has everything DIR has (verified), or --dry-run\n"
    "     counted\n"
    "  1  problems: blobs that could not be copied (corrupt or unreadable at the\n"
    "     source) or differences the verification found; each is listed\n"
    "  2  usage: a bad flag, a CONFIG that does not load, a destination that is\n"
    "     DIR or in memory\n"
    "  3  a store cannot be opened or failed (DIR is no data directory, the\n"
    "     destination cannot be reached...): run again to resume\n"
    "  4  a serve holds DIR/serve.lock or uses the destination (stop it, or\n"
    "     --force)\n"
    "\n"
    "Example:\n"
    "  pullcache migrate --from /var/lib/pullcache --to /etc/pullcache/fleet.yaml\n";

enum { OPT_FROM = 256, OPT_TO, OPT_DRY_RUN, OPT_JSON, OPT_JOBS, OPT_FORCE };

typedef struct {
    bool tty, json;
    json_t *problems; /* --json: the problems as found */
    int64_t drawn_ms; /* when the progress line was last drawn */
    pc_migrate_phase drawn_phase;
} ui_t;

#define REDRAW_MS 100

static const char *phase_name(pc_migrate_phase p)
{
    switch (p) {
    case PC_MIGRATE_BLOBS:
        return "blobs";
    case PC_MIGRATE_META:
        return "records";
    case PC_MIGRATE_VERIFY:
        return "verifying";
    }
    return "";
}

static void on_progress(const pc_migrate_progress *p, void *ctx)
{
    ui_t *ui = ctx;
    if (!ui->tty)
        return;
    /* at most every REDRAW_MS, but every phase's first and the blobs' last state */
    int64_t now = pc_util_mono_ms();
    bool last = p->phase == PC_MIGRATE_BLOBS && p->blobs_done == p->blobs;
    if (ui->drawn_ms && p->phase == ui->drawn_phase && !last && now - ui->drawn_ms < REDRAW_MS)
        return;
    ui->drawn_ms = now;
    ui->drawn_phase = p->phase;
    char a[32], b[32];
    if (p->phase == PC_MIGRATE_BLOBS)
        fprintf(stderr, "\rmigrate: blobs %" PRIu64 "/%" PRIu64 ", %s of %s\033[K", p->blobs_done,
                p->blobs, pc_cli_fmt_bytes(p->bytes_done, a, sizeof(a)),
                pc_cli_fmt_bytes(p->bytes, b, sizeof(b)));
    else
        fprintf(stderr, "\rmigrate: %s\033[K", phase_name(p->phase));
    fflush(stderr);
}

static void on_problem(const pc_migrate_problem *p, void *ctx)
{
    ui_t *ui = ctx;
    if (ui->tty)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "pullcache migrate: %s: %s%s%s%s%s: %s\n", pc_migrate_problem_name(p->kind),
            p->repo ? p->repo : "", p->tag ? ":" : "", p->tag ? p->tag : "", p->repo ? " " : "",
            p->digest ? p->digest->str : "", p->detail);
    if (ui->problems) {
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s}", "kind", pc_migrate_problem_name(p->kind),
                              "digest", p->digest ? p->digest->str : "", "repository",
                              p->repo ? json_string(p->repo) : json_null(), "tag",
                              p->tag ? json_string(p->tag) : json_null(), "detail", p->detail);
        if (o)
            json_array_append_new(ui->problems, o);
    }
}

static int print_json(const char *from, const char *to, bool dry, const pc_migrate_stats *s,
                      json_t *problems)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:b, s:b,"
        " s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I, s:I},"
        " s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:O}",
        "from", from, "to", to, "dry_run", dry, "nothing_to_do", pc_migrate_nothing_done(s),
        "verified", s->verified, "blobs", "source", (json_int_t)s->blobs, "bytes",
        (json_int_t)s->bytes, "copied", (json_int_t)s->blobs_copied, "copied_bytes",
        (json_int_t)s->bytes_copied, "present", (json_int_t)s->blobs_present, "links", "source",
        (json_int_t)s->links, "added", (json_int_t)s->links_added, "manifests", "source",
        (json_int_t)s->manifests, "put", (json_int_t)s->manifests_put, "tags", "source",
        (json_int_t)s->tags, "set", (json_int_t)s->tags_set, "times", (json_int_t)s->tag_times,
        "repositories", "source", (json_int_t)s->repos, "empty", (json_int_t)s->repos_empty,
        "access", "source", (json_int_t)s->access, "set", (json_int_t)s->access_set, "limits",
        "source", (json_int_t)s->limits, "set", (json_int_t)s->limits_set, "uploads_skipped",
        (json_int_t)s->uploads_skipped, "problems", problems);
    return pc_cli_print_json(o);
}

static void print_text(bool dry, const pc_migrate_stats *s)
{
    char a[32], b[32];
    const char *would = dry ? "would be " : "";
    bool nothing = pc_migrate_nothing_done(s) && !s->problems;
    if (nothing) {
        printf("nothing to do: the destination has every blob and record of the source%s\n",
               s->verified ? " (verified)" : "");
    } else {
        printf("blobs: %" PRIu64 " at the source (%s): %" PRIu64 " %scopied (%s), %" PRIu64
               " already there\n",
               s->blobs, pc_cli_fmt_bytes(s->bytes, a, sizeof(a)), s->blobs_copied, would,
               pc_cli_fmt_bytes(s->bytes_copied, b, sizeof(b)), s->blobs_present);
        printf("records %swritten: %" PRIu64 " of %" PRIu64 " blob links, %" PRIu64 " of %" PRIu64
               " manifests, %" PRIu64 " of %" PRIu64 " tags (updated times set: %" PRIu64
               "), %" PRIu64 " of %" PRIu64 " access records, %" PRIu64 " of %" PRIu64
               " limiter counts\n",
               would, s->links_added, s->links, s->manifests_put, s->manifests, s->tags_set,
               s->tags, s->tag_times, s->access_set, s->access, s->limits_set, s->limits);
    }
    if (s->uploads_skipped || s->repos_empty)
        printf("not copied: %" PRIu64 " upload session%s (their clients start again), %" PRIu64
               " repositor%s without manifests\n",
               s->uploads_skipped, pc_cli_plural(s->uploads_skipped), s->repos_empty,
               s->repos_empty == 1 ? "y" : "ies");
    if (s->problems)
        printf("%s%" PRIu64 " problem%s (listed above)\n", s->verified ? "verification: " : "",
               s->problems, pc_cli_plural(s->problems));
    else if (s->verified && !nothing)
        printf("verified: every blob, manifest, blob link and tag of the source is at the "
               "destination\n");
}

/* Keep a serve off DIR while we read it: a shared lock on serve.lock,
 * which serve takes exclusively. 0 (held in *fd, or -1 when DIR has no
 * serve.lock: no serve ever ran there), or -1 when a serve holds it. */
static int lock_source(const char *dir, int *fd)
{
    char path[PATH_MAX];
    *fd = -1;
    snprintf(path, sizeof(path), "%s/serve.lock", dir);
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0)
        return 0;
    if (flock(f, LOCK_SH | LOCK_NB) != 0) {
        close(f);
        return -1;
    }
    *fd = f;
    return 0;
}

/* Whether the destination's files would be DIR's own. */
static bool same_dir(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static int open_source(const char *dir, pc_blob_backend **be, pc_metastore **ms)
{
    char path[PATH_MAX];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "pullcache migrate: %s: %s\n", dir,
                errno ? strerror(errno) : "no directory");
        return -1;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/meta.db", dir) >= sizeof(path) ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "pullcache migrate: %s is no pullcache data directory: it has no meta.db\n",
                dir);
        return -1;
    }
    if (pc_blob_fs_open_existing(be, dir)) {
        fprintf(stderr, "pullcache migrate: the blobs in %s: %s\n", dir, pc_error_last());
        return -1;
    }
    if (pc_meta_sqlite_open(ms, path)) {
        fprintf(stderr, "pullcache migrate: %s: %s\n", path, pc_error_last());
        return -1;
    }
    return 0;
}

/* Check and open the destination. 0, 2 (usage), 3 (a store). */
static int open_dest(const char *from, const pc_config *cfg, pc_blob_backend **be,
                     pc_metastore **ms)
{
    pc_store_opts so;
    pc_config_store_opts(cfg, &so);
    const char *bn = pc_store_blobs_name(&so), *mn = pc_store_meta_name(&so);
    if (strcmp(bn, "mem") == 0 || strcmp(mn, "mem") == 0) {
        fprintf(stderr,
                "pullcache migrate: the destination's storage.blobs.driver is %s and "
                "storage.meta.driver %s: in-memory storage keeps nothing after this command\n",
                bn, mn);
        return 2;
    }
    bool on_disk = strcmp(bn, "fs") == 0 || strcmp(mn, "sqlite") == 0;
    if (on_disk && same_dir(from, so.data_dir)) {
        fprintf(stderr,
                "pullcache migrate: the destination's storage.data is %s, the source itself\n",
                so.data_dir);
        return 2;
    }
    if (on_disk && mkdir(so.data_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "pullcache migrate: %s: %s\n", so.data_dir, strerror(errno));
        return 3;
    }
    if (pc_store_blobs_open(&so, be)) {
        fprintf(stderr, "pullcache migrate: the destination's blob store (%s): %s\n", bn,
                pc_error_last());
        return 3;
    }
    if (pc_store_meta_open(&so, ms)) {
        fprintf(stderr, "pullcache migrate: the destination's meta store (%s): %s\n", mn,
                pc_error_last());
        return 3;
    }
    return 0;
}

/* A serve on the destination holds its upkeep lease (every serve takes it
 * each round; a stopped one gives it up): copying under live replicas could
 * overwrite what they write meanwhile. 0 (nobody, or --force), 4. */
static int check_dest_idle(pc_metastore *dm, bool force)
{
    pc_meta_lease held;
    if (dm->coord->lease_get(dm, "leader:upkeep", &held) != 0)
        return 0;
    time_t until = (time_t)(held.expires_ms / 1000);
    struct tm tm;
    char when[40] = "?";
    if (gmtime_r(&until, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (force) {
        fprintf(stderr,
                "pullcache migrate: warning: a serve (%s) uses the destination: what it writes "
                "meanwhile may be overwritten\n",
                held.owner);
        return 0;
    }
    fprintf(stderr,
            "pullcache migrate: a serve (%s) uses the destination (its upkeep lease runs until "
            "%s): stop every serve on it first, or --force. A serve killed without stopping "
            "keeps the lease until then.\n",
            held.owner, when);
    return 4;
}

int pc_cli_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"json", no_argument, NULL, OPT_JSON},
        {"jobs", required_argument, NULL, OPT_JOBS},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL;
    bool dry = false, force = false;
    unsigned jobs = 4;
    ui_t ui = {pc_cli_stderr_tty(), false, NULL, 0, PC_MIGRATE_BLOBS};
    int c, rc = 3, lockfd = -1;
    pc_config *cfg = NULL;
    pc_blob_backend *sb = NULL, *db = NULL;
    pc_metastore *sm = NULL, *dm = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FROM:
            from = optarg;
            break;
        case OPT_TO:
            to = optarg;
            break;
        case OPT_DRY_RUN:
            dry = true;
            break;
        case OPT_JSON:
            ui.json = true;
            break;
        case OPT_JOBS:
            if (pc_cli_parse_uint("migrate", "--jobs", optarg, 1, 64, &jobs))
                return 2;
            break;
        case OPT_FORCE:
            force = true;
            break;
        default:
            fprintf(stderr, "`pullcache migrate --help` lists the options\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pullcache migrate: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!from || !to) {
        fprintf(stderr, "pullcache migrate: --from DIR and --to CONFIG are both needed\n");
        return 2;
    }
    if (pc_cli_config_load("migrate", to, NULL, NULL, 0, &cfg))
        return 2;
    if (lock_source(from, &lockfd)) {
        if (!force) {
            fprintf(stderr,
                    "pullcache migrate: a serve holds %s/serve.lock: stop it first (or --force, "
                    "then run again once it is stopped)\n",
                    from);
            rc = 4;
            goto done;
        }
        fprintf(stderr,
                "pullcache migrate: warning: a serve holds %s/serve.lock: what it writes "
                "meanwhile may be missed; run again once it is stopped\n",
                from);
    }
    if (open_source(from, &sb, &sm))
        goto done;
    if ((rc = open_dest(from, cfg, &db, &dm)))
        goto done;
    if ((rc = check_dest_idle(dm, force)))
        goto done;
    if (ui.json && !(ui.problems = json_array())) {
        fprintf(stderr, "pullcache migrate: out of memory\n");
        rc = 3;
        goto done;
    }
    pc_migrate_opts o = {
        .src_blobs = sb,
        .src_meta = sm,
        .dst_blobs = db,
        .dst_meta = dm,
        .dry_run = dry,
        .jobs = jobs,
        .on_progress = on_progress,
        .on_problem = on_problem,
        .ctx = &ui,
    };
    pc_migrate_stats st;
    int mrc = pc_migrate_run(&o, &st);
    if (ui.tty)
        fputs("\r\033[K", stderr);
    if (mrc && mrc != PC_EDIGEST) {
        fprintf(stderr, "pullcache migrate: %s (what was copied stays: run again to resume)\n",
                pc_error_last());
        rc = 3;
        goto done;
    }
    if (ui.json) {
        if (print_json(from, to, dry, &st, ui.problems)) {
            fprintf(stderr, "pullcache migrate: out of memory\n");
            rc = 3;
            goto done;
        }
    } else {
        print_text(dry, &st);
    }
    rc = mrc ? 1 : 0;
done:
    json_decref(ui.problems);
    if (dm)
        dm->free(dm);
    if (db)
        db->free(db);
    if (sm)
        sm->free(sm);
    if (sb)
        sb->free(sb);
    if (lockfd >= 0)
        close(lockfd);
    pc_config_free(cfg);
    return rc;
}
