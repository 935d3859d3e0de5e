/*
 * sync.c - `pullcache sync FILE`: keep destination repositories in step
 * with source repositories as a YAML file maps them (src/lib/sync.h), once
 * or every `interval` seconds, each side with its own connection settings
 * (a mapping's options over the --src- and --dest- flags over the shared
 * ones). A tag whose source digest (HEAD) equals the destination's (HEAD)
 * is left alone without spending a pull, so a second run copies nothing
 * and says so; for a mapping with platforms or referrers, whose
 * destination digest differs, the state file records what was copied and
 * two HEADs (plus a referrers listing) tell whether it still holds. Before
 * spending pulls on a tag the source's ratelimit headers (from that HEAD)
 * are read: below min_remaining, sync pauses until the window resets
 * (Retry-After, else the window the headers name) and checks again.
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
#include <time.h>

#include "copyside.h"
#include "pullfmt.h"
#include "ratelimit.h"
#include "sync.h"

const char pc_cli_sync_usage[] =
    "usage: pullcache sync [OPTIONS] FILE\n"
    "\n"
    "Copy the tags FILE selects from each source repository to its destination\n"
    "(see `pullcache copy`), once (--once) or every `interval` seconds until SIGINT\n"
    "or SIGTERM. Tags whose digest is already at the destination are skipped after\n"
    "two HEADs (no pull spent); a run with nothing to do says so. A mapping with\n"
    "platforms or referrers gives the destination another digest (or more than\n"
    "the digest covers), so what was copied is recorded in the state file: a tag\n"
    "whose source and destination digests (HEADs) are as recorded, with the same\n"
    "platforms and referrers (a listing, never a manifest GET), is skipped too.\n"
    "Before copying a tag, the source's ratelimit headers (from that HEAD) are\n"
    "checked: with fewer than min_remaining pulls left, sync pauses until the\n"
    "window resets and checks again.\n"
    "\n"
    "FILE (YAML; unknown keys are refused):\n"
    "  interval: 3600          # seconds between runs (default 3600)\n"
    "  min_remaining: 10       # pause below this many pulls left (default 0: never)\n"
    "  max_pause: 21600        # longest single pause in seconds (default 21600)\n"
    "  concurrency: 4          # blobs at once per copy\n"
    "  mappings:\n"
    "    - source: docker.io/library/nginx\n"
    "      destination: 127.0.0.1:5000/mirror/nginx\n"
    "      tags: [\"1.27\", \"1.26\"]    # exact tags, and/or filters over the tag list:\n"
    "      regex: '^1\\.2[0-9]+$'      # POSIX ERE (anchor it)\n"
    "      semver: \">=1.25 <2\"        # tags that are versions, in this range\n"
    "      newest: 3                  # the 3 highest versions of those\n"
    "      platforms: [linux/amd64]   # default: every platform\n"
    "      referrers: false           # also copy signatures, SBOMs\n"
    "      source_options:            # this mapping's source, over the flags:\n"
    "        plain_http: false        #   http:// (so does an http:// prefix on source)\n"
    "        insecure: false          #   TLS without certificate verification\n"
    "        ca_file: /etc/pullcache/registry-ca.crt\n"
    "        username: robot          #   with one of:\n"
    "        password_env: SRC_PASS   #     an environment variable's name\n"
    "        password_file: /run/secrets/src   # the file's first line\n"
    "        anonymous: false         #   ignore stored credentials\n"
    "      destination_options: {plain_http: true}   # the same keys\n"
    "  source and destination may start with http:// or https://.\n"
    "\n"
    "      --once              one run, then exit\n"
    "      --no-wait           with --once: stop (exit 6) instead of pausing for the\n"
    "                          pull budget\n"
    "      --dry-run           say what would be copied, copy nothing\n"
    "      --check             check FILE and exit\n"
    "      --state PATH        the record of what was copied (default FILE.state, next\n"
    "                          to FILE; JSON, rewritten after each copy). Unwritable:\n"
    "                          a warning, and such tags are copied again next run\n"
    "      --json              one JSON summary per run on stdout\n"
    "  -h, --help              this help\n"
    "\n" PC_CLIENT_USAGE PC_CLIENT_SIDE_USAGE
    "  A mapping's source_options and destination_options win over these flags.\n"
    "\n"
    "exit codes:\n"
    "  0    every selected tag is at its destination\n"
    "  1    FILE is unreadable or invalid, a local failure\n"
    "  2    usage error\n"
    "  3    a mapping or tag failed (the others still ran; the last run's result)\n"
    "  6    --no-wait: stopped because the source's pull budget is below min_remaining\n"
    "  130  interrupted during --once\n";

enum { OPT_ONCE = 256, OPT_NO_WAIT, OPT_DRY_RUN, OPT_CHECK, OPT_JSON, OPT_STATE };
enum { EXIT_BUDGET = 6 };

/* Registry clients by host and settings, kept across runs. */
typedef struct {
    char host[PC_HOST_MAX];
    pc_endpoint_scheme scheme;
    pc_client_which which;
    pc_client_side side;
    pc_upstream *u;
    char cred_source[4200]; /* what pc_client_connect chose, for 401/403 messages */
} host_client;

typedef struct {
    const pc_sync_file *f;
    pc_client_opts *co;
    bool no_wait, dry_run, json;
    host_client clients[32];
    size_t nclients;
    pc_sync_state *state;
    const char *state_path;
    bool state_warned;
    /* one run */
    json_t *tags;
    unsigned copied, current, failed;
    uint64_t bytes;
    double paused;
    bool budget_stop;
} syncer;

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool side_same(const pc_client_side *a, const pc_client_side *b)
{
    return a->plain_http == b->plain_http && a->insecure == b->insecure &&
           a->anonymous == b->anonymous && str_same(a->ca_file, b->ca_file) &&
           str_same(a->username, b->username) && str_same(a->password_env, b->password_env) &&
           str_same(a->password_file, b->password_file);
}

/* A mapping's options as client settings. */
static void side_from_file(const pc_sync_side *o, pc_client_side *out)
{
    *out = (pc_client_side){.plain_http = -1, .insecure = -1, .anonymous = -1};
    if (!o)
        return;
    if (o->plain_http)
        out->plain_http = *o->plain_http;
    if (o->insecure)
        out->insecure = *o->insecure;
    if (o->anonymous)
        out->anonymous = *o->anonymous;
    out->ca_file = o->ca_file;
    out->username = o->username;
    out->password_env = o->password_env;
    out->password_file = o->password_file;
}

/* The client for one side of a mapping (ref's host, with its prefix and
 * the mapping's options over the flags). */
static pc_upstream *client_for(syncer *s, pc_client_which which, const pc_ref *ref,
                               pc_endpoint_scheme scheme, const pc_sync_side *opts)
{
    pc_client_side side, file;
    pc_client_side_of(s->co, which, &side);
    side_from_file(opts, &file);
    pc_client_side_over(&side, &file);
    for (size_t i = 0; i < s->nclients; i++) {
        host_client *c = &s->clients[i];
        if (strcmp(c->host, ref->host) == 0 && c->scheme == scheme && c->which == which &&
            side_same(&c->side, &side))
            return c->u;
    }
    if (s->nclients == sizeof(s->clients) / sizeof(s->clients[0])) {
        fprintf(stderr, "pullcache sync: too many registries\n");
        return NULL;
    }
    host_client *c = &s->clients[s->nclients];
    pc_client_conn conn;
    if (pc_client_connect(s->co, "sync", which, &side, ref->host, scheme, &c->u, &conn) != 0)
        return NULL;
    snprintf(c->cred_source, sizeof(c->cred_source), "%s",
             conn.cred_source[0] ? conn.cred_source : "anonymous");
    snprintf(c->host, sizeof(c->host), "%s", ref->host);
    c->scheme = scheme;
    c->which = which;
    c->side = side;
    s->nclients++;
    return c->u;
}

/* The credentials client u was opened with ("anonymous", "flags", a file ...). */
static const char *cred_of(const syncer *s, const pc_upstream *u)
{
    for (size_t i = 0; i < s->nclients; i++)
        if (s->clients[i].u == u)
            return s->clients[i].cred_source;
    return "anonymous";
}

/* Sleep secs, waking for a signal. false when stopping. */
static bool pause_for(double secs)
{
    while (secs > 0 && !atomic_load(&pc_cli_stop_flag)) {
        double step = secs > 0.2 ? 0.2 : secs;
        struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
        nanosleep(&ts, NULL);
        secs -= step;
    }
    return !atomic_load(&pc_cli_stop_flag);
}

/* Record one tag's outcome. */
static void note(syncer *s, const char *src, const char *dst, const char *tag, const char *status,
                 const pc_copy_result *r, const char *error)
{
    if (strcmp(status, "copied") == 0 || strcmp(status, "would copy") == 0)
        s->copied++;
    else if (strcmp(status, "up to date") == 0)
        s->current++;
    else
        s->failed++;
    if (r)
        s->bytes += r->bytes;
    if (s->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "source", src, "destination", dst, "tag", tag,
                              "status", status);
        if (o && r) {
            json_object_set_new(o, "digest", json_string(r->top.digest.str));
            json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
            json_object_set_new(o, "blobs", json_integer((json_int_t)r->blobs));
        }
        if (o && error)
            json_object_set_new(o, "error", json_string(error));
        json_array_append_new(s->tags, o);
    } else if (error) {
        printf("  %s:%s -> %s:%s  %s: %s\n", src, tag, dst, tag, status, error);
    } else {
        char b[32];
        printf("  %s:%s -> %s:%s  %s", src, tag, dst, tag, status);
        if (r)
            printf(" (%llu blob%s, %s)", (unsigned long long)r->blobs, pc_cli_plural(r->blobs),
                   pc_cli_fmt_bytes(r->bytes, b, sizeof(b)));
        putchar('\n');
    }
    fflush(stdout);
}

/* HEAD src's tag, pausing while the budget is below min_remaining. 0 with
 * *digest set (or "" when the source has no such tag: the copy reports
 * it), 1 to stop (budget with --no-wait, or a signal). */
static int head_source(syncer *s, pc_upstream *u, const pc_ref *src, const char *tag, char *digest,
                       size_t size, char *err, size_t err_size)
{
    for (;;) {
        pc_upstream_resp r;
        pc_ratelimit rl;
        digest[0] = err[0] = '\0';
        if (pc_upstream_manifest(u, src->name, tag, true, &r) != 0) {
            snprintf(err, err_size, "%s", pc_error_last());
            return 0;
        }
        if (r.cls == PC_UP_OK)
            snprintf(digest, size, "%s", r.digest);
        else
            snprintf(err, err_size, "HEAD: %ld %s", r.status, r.error_message);
        bool low = s->f->min_remaining &&
                   pc_ratelimit_parse(r.ratelimit_limit, r.ratelimit_remaining, r.ratelimit_source,
                                      &rl) == 0 &&
                   rl.remaining >= 0 && rl.remaining < (int64_t)s->f->min_remaining;
        int64_t wait = pc_ratelimit_retry_after(r.retry_after, time(NULL));
        pc_upstream_resp_clear(&r);
        if (!low)
            return 0;
        if (s->no_wait) {
            fprintf(stderr,
                    "pullcache sync: %s/%s: %lld pulls left, fewer than min_remaining %u; "
                    "stopping (--no-wait)\n",
                    src->host, src->name, (long long)rl.remaining, s->f->min_remaining);
            s->budget_stop = true;
            return 1;
        }
        if (wait <= 0)
            wait = rl.window > 0 ? rl.window : 60;
        if (wait > (int64_t)s->f->max_pause)
            wait = s->f->max_pause;
        time_t until = time(NULL) + (time_t)wait;
        char when[32];
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&until));
        fprintf(stderr,
                "pullcache sync: %s/%s: %lld pulls left, fewer than min_remaining %u; pausing "
                "until %s (%lld s)\n",
                src->host, src->name, (long long)rl.remaining, s->f->min_remaining, when,
                (long long)wait);
        double t0 = pc_util_mono_s();
        bool go_on = pause_for((double)wait);
        s->paused += pc_util_mono_s() - t0;
        if (!go_on)
            return 1;
        fprintf(stderr, "pullcache sync: %s/%s: checking the budget again\n", src->host, src->name);
    }
}

/* HEAD a tag at the destination: 0 with *digest set, -1 when absent or
 * failed. */
static int head_source_plain(pc_upstream *u, const pc_ref *ref, const char *tag, char *digest,
                             size_t size, char *err, size_t err_size)
{
    pc_upstream_resp r;
    int rc = -1;
    digest[0] = err[0] = '\0';
    if (pc_upstream_manifest(u, ref->name, tag, true, &r) == 0 && r.cls == PC_UP_OK &&
        r.digest[0]) {
        snprintf(digest, size, "%s", r.digest);
        rc = 0;
    } else {
        snprintf(err, err_size, "%ld %s", r.status, r.error_message);
    }
    pc_upstream_resp_clear(&r);
    return rc;
}

/* The source's tags (every page) into *tags (caller frees each and the
 * array). 0, or -1 with err set. */
static int list_tags(pc_upstream *u, const char *repo, char ***tags, size_t *n, char *err,
                     size_t err_size)
{
    char *next = NULL;
    size_t cap = 0;
    *tags = NULL;
    *n = 0;
    for (int page = 0; page < 1000; page++) {
        pc_upstream_resp r;
        int rc = pc_upstream_tags_page(u, repo, next, &r);
        free(next);
        next = NULL;
        if (rc != 0 || r.cls != PC_UP_OK) {
            snprintf(err, err_size, "cannot list tags: %s%ld %s", rc ? pc_error_last() : "",
                     r.status, r.error_message);
            pc_upstream_resp_clear(&r);
            return -1;
        }
        json_t *doc = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
        json_t *list = json_object_get(doc, "tags"), *t;
        size_t i;
        json_array_foreach(list, i, t)
        {
            if (!json_is_string(t))
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                char **nt = realloc(*tags, cap * sizeof(*nt));
                if (!nt)
                    break;
                *tags = nt;
            }
            if (((*tags)[*n] = strdup(json_string_value(t))))
                (*n)++;
        }
        json_decref(doc);
        if (r.link[0] && !(next = strdup(r.link))) {
            pc_upstream_resp_clear(&r);
            break;
        }
        pc_upstream_resp_clear(&r);
        if (!next)
            break;
    }
    return 0;
}

/* Whether the state says dst's tag holds what a copy from src would give
 * it: the source digest sd and the destination's digest (HEAD) are as
 * recorded, with these settings, and with referrers each recorded
 * subject's referrers are unchanged at the source. */
static bool state_current(syncer *s, const pc_sync_mapping *m, pc_upstream *su, pc_upstream *du,
                          const pc_ref *src, const pc_ref *dst, const char *tag, const char *sd,
                          const char *key)
{
    char settings[1024], source[PC_HOST_MAX + PC_NAME_MAX + 2], dd[PC_DIGEST_MAX], err[600];
    if (!s->state || pc_sync_settings(m, settings, sizeof(settings)) != 0 ||
        head_source_plain(du, dst, tag, dd, sizeof(dd), err, sizeof(err)) != 0)
        return false;
    snprintf(source, sizeof(source), "%s/%s", src->host, src->name);
    pc_sync_record rec = {
        .source = source, .settings = settings, .source_digest = sd, .destination_digest = dd};
    if (!pc_sync_state_matches(s->state, key, &rec))
        return false;
    if (!m->referrers)
        return true;
    pc_copy_subject subj[PC_COPY_SUBJECTS_MAX];
    size_t n = pc_sync_state_subjects(s->state, key, subj, PC_COPY_SUBJECTS_MAX);
    for (size_t i = 0; i < n; i++) {
        char fp[PC_COPY_FINGERPRINT_MAX];
        if (pc_copy_referrers_fingerprint(su, src->name, &subj[i].digest, fp, sizeof(fp)) != 0 ||
            strcmp(fp, subj[i].referrers) != 0)
            return false;
    }
    return n > 0; /* a referrers copy lists at least the top manifest */
}

/* Record a copy of m's tag in the state and write it out. */
static void state_record(syncer *s, const pc_sync_mapping *m, const pc_ref *src, const char *sd,
                         const char *key, const pc_copy_result *res)
{
    char settings[1024], source[PC_HOST_MAX + PC_NAME_MAX + 2];
    if (!s->state || s->dry_run || !sd[0] || res->subjects_overflow ||
        pc_sync_settings(m, settings, sizeof(settings)) != 0)
        return;
    snprintf(source, sizeof(source), "%s/%s", src->host, src->name);
    pc_sync_record rec = {.source = source,
                          .settings = settings,
                          .source_digest = sd,
                          .destination_digest = res->top.digest.str,
                          .subjects = res->subjects,
                          .nsubjects = res->nsubjects};
    if (pc_sync_state_put(s->state, key, &rec) == 0 &&
        pc_sync_state_save(s->state, s->state_path) == 0)
        return;
    if (!s->state_warned)
        fprintf(stderr,
                "pullcache sync: %s; tags with platforms or referrers will be copied again "
                "next run\n",
                pc_error_last());
    s->state_warned = true;
}

/* Sync one mapping. 1 when the run must stop, else 0. */
static int sync_mapping(syncer *s, const pc_sync_mapping *m)
{
    pc_ref src, dst;
    pc_endpoint_scheme src_scheme, dst_scheme;
    char **avail = NULL, err[600];
    size_t navail = 0, nsel = 0;
    const char **sel = NULL;
    pc_pull_platform plats[PC_COPY_PLATFORMS_MAX];
    int stop = 0;

    if (pc_ref_parse(&src, pc_endpoint_scheme_split(m->source, &src_scheme)) != 0 ||
        pc_ref_parse(&dst, pc_endpoint_scheme_split(m->destination, &dst_scheme)) != 0) {
        note(s, m->source, m->destination, "*", "failed", NULL, pc_error_last());
        return 0;
    }
    pc_upstream *su = client_for(s, PC_CLIENT_SRC, &src, src_scheme, m->source_options);
    pc_upstream *du =
        su ? client_for(s, PC_CLIENT_DST, &dst, dst_scheme, m->destination_options) : NULL;
    if (!su || !du) {
        note(s, m->source, m->destination, "*", "failed", NULL, "cannot open a registry client");
        return 0;
    }
    if (pc_sync_needs_list(m) && list_tags(su, src.name, &avail, &navail, err, sizeof(err)) != 0) {
        char msg[sizeof(err) + 4300];
        bool denied = strstr(err, ": 401 ") || strstr(err, ": 403 ") ||
                      strncmp(err, "cannot list tags: 401", 21) == 0 ||
                      strncmp(err, "cannot list tags: 403", 21) == 0;
        snprintf(msg, sizeof(msg), "%s%s%.4200s", err,
                 denied ? "; credentials tried at the source: " : "", denied ? cred_of(s, su) : "");
        note(s, m->source, m->destination, "*", "failed", NULL, msg);
        return 0;
    }
    if (pc_sync_select(m, (const char *const *)avail, navail, &sel, &nsel) != 0) {
        note(s, m->source, m->destination, "*", "failed", NULL, pc_error_last());
        goto done;
    }
    for (unsigned i = 0; i < m->platforms_count; i++)
        pc_pull_platform_parse(&plats[i], m->platforms[i]); /* checked at load */
    for (size_t i = 0; i < nsel && !stop; i++) {
        const char *tag = sel[i];
        char sd[PC_DIGEST_MAX], dd[PC_DIGEST_MAX], derr[600];
        char key[PC_HOST_MAX + PC_NAME_MAX + PC_TAG_MAX + 3];
        snprintf(key, sizeof(key), "%s/%s:%s", dst.host, dst.name, tag);
        if ((stop = head_source(s, su, &src, tag, sd, sizeof(sd), err, sizeof(err))) != 0)
            break;
        bool current = false;
        if (sd[0] && pc_sync_needs_state(m))
            current = state_current(s, m, su, du, &src, &dst, tag, sd, key);
        else if (sd[0])
            current = head_source_plain(du, &dst, tag, dd, sizeof(dd), derr, sizeof(derr)) == 0 &&
                      strcmp(sd, dd) == 0;
        if (current) {
            note(s, m->source, m->destination, tag, "up to date", NULL, NULL);
            continue;
        }
        if (s->dry_run) {
            note(s, m->source, m->destination, tag, "would copy", NULL, NULL);
            continue;
        }
        pc_copy_result res;
        pc_copy_opts o = {
            .src = {.u = su, .repo = src.name, .reference = tag},
            .dst = {.u = du, .repo = dst.name, .reference = tag},
            .platforms = m->platforms_count ? plats : NULL,
            .nplatforms = m->platforms_count,
            .referrers = m->referrers,
            .concurrency = s->f->concurrency,
            .cancel = &pc_cli_stop_flag,
        };
        int rc = pc_copy_run(&o, &res);
        if (rc == 0 && pc_sync_needs_state(m))
            state_record(s, m, &src, sd, key, &res);
        char msg[sizeof(res.error.message) + 410 + 4300] = "";
        if (rc != 0) {
            char advice[400];
            bool at_dst = res.error_at_dest;
            pc_client_tls_advice(res.error.cls, res.error.message,
                                 at_dst ? PC_CLIENT_DST : PC_CLIENT_SRC,
                                 at_dst ? "destination_options" : "source_options",
                                 pc_upstream_url(at_dst ? du : su), advice, sizeof(advice));
            char creds[4300] = "";
            if (res.error.status == 401 || res.error.status == 403)
                snprintf(creds, sizeof(creds), "; credentials tried at the %s: %.4200s",
                         at_dst ? "destination" : "source", cred_of(s, at_dst ? du : su));
            snprintf(msg, sizeof(msg), "%s%s%s%s", res.error.message, advice[0] ? "; " : "", advice,
                     creds);
        }
        note(s, m->source, m->destination, tag, rc == 0 ? "copied" : "failed", &res,
             rc == 0 ? NULL : msg);
        if (atomic_load(&pc_cli_stop_flag))
            stop = 1;
    }
done:
    for (size_t i = 0; i < navail; i++)
        free(avail[i]);
    free(avail);
    free(sel);
    return stop;
}

/* One pass over every mapping; prints its summary. The exit code. */
static int run_once(syncer *s)
{
    double t0 = pc_util_mono_s();
    char b[32];
    s->tags = json_array();
    s->copied = s->current = s->failed = 0;
    s->bytes = 0;
    s->paused = 0;
    s->budget_stop = false;
    for (unsigned i = 0; i < s->f->mappings_count; i++)
        if (sync_mapping(s, &s->f->mappings[i]) != 0)
            break;
    double secs = pc_util_mono_s() - t0;
    unsigned total = s->copied + s->current + s->failed;
    if (s->json) {
        pc_cli_print_json(json_pack("{s:o, s:I, s:I, s:I, s:I, s:f, s:f, s:b, s:b}", "tags",
                                    s->tags, "copied", (json_int_t)s->copied, "up_to_date",
                                    (json_int_t)s->current, "failed", (json_int_t)s->failed,
                                    "bytes", (json_int_t)s->bytes, "seconds", secs, "paused",
                                    s->paused, "budget_stop", s->budget_stop, "interrupted",
                                    (int)atomic_load(&pc_cli_stop_flag)));
    } else {
        json_decref(s->tags);
        if (s->copied == 0 && s->failed == 0)
            printf("sync: nothing to copy: %u tag%s up to date (%s sent) in %.2f s\n", total,
                   pc_cli_plural(total), pc_cli_fmt_bytes(s->bytes, b, sizeof(b)), secs);
        else
            printf("sync: %u tag%s: %u %s, %u up to date, %u failed; %s sent in %.2f s%s\n", total,
                   pc_cli_plural(total), s->copied, s->dry_run ? "to copy" : "copied", s->current,
                   s->failed, pc_cli_fmt_bytes(s->bytes, b, sizeof(b)), secs,
                   s->paused > 0 ? " (paused for the pull budget)" : "");
        fflush(stdout);
    }
    s->tags = NULL;
    if (s->budget_stop)
        return EXIT_BUDGET;
    if (s->failed)
        return PC_CLI_EXIT_REGISTRY;
    return atomic_load(&pc_cli_stop_flag) ? PC_CLI_EXIT_INTERRUPTED : PC_CLI_EXIT_OK;
}

int pc_cli_sync(int argc, char **argv)
{
    static const struct option opts[] = {
        {"once", no_argument, NULL, OPT_ONCE},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"check", no_argument, NULL, OPT_CHECK},
        {"json", no_argument, NULL, OPT_JSON},
        {"state", required_argument, NULL, OPT_STATE},
        PC_CLIENT_LONGOPTS,
        PC_CLIENT_SIDE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    pc_client_opts co;
    syncer s;
    char state_path[4200];
    pc_sync_file *f = NULL;
    bool once = false, check = false;
    int c, rc = PC_CLI_EXIT_USAGE;

    memset(&s, 0, sizeof(s));
    pc_client_opts_init(&co);
    optind = 1;
    while ((c = pc_client_getopt(&co, "sync", argc, argv, "", opts)) > 0) {
        switch (c) {
        case OPT_ONCE:
            once = true;
            break;
        case OPT_NO_WAIT:
            s.no_wait = true;
            break;
        case OPT_DRY_RUN:
            s.dry_run = true;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_JSON:
            s.json = true;
            break;
        case OPT_STATE:
            if (!*optarg) {
                fprintf(stderr, "pullcache sync: --state wants a path\n");
                goto done;
            }
            s.state_path = optarg;
            break;
        }
    }
    if (c < 0)
        goto done;
    if (optind != argc - 1) {
        fprintf(stderr, "pullcache sync: which FILE? (`pullcache sync --help`)\n");
        goto done;
    }
    if (s.no_wait && !once) {
        fprintf(stderr, "pullcache sync: --no-wait goes with --once\n");
        goto done;
    }
    rc = PC_CLI_EXIT_LOCAL;
    if (pc_sync_file_load(argv[optind], &f) != 0) {
        fprintf(stderr, "pullcache sync: %s\n", pc_error_last());
        goto done;
    }
    if (check) {
        printf("%s: %u mapping%s, interval %u s, min_remaining %u\n", argv[optind],
               f->mappings_count, pc_cli_plural(f->mappings_count), f->interval, f->min_remaining);
        rc = PC_CLI_EXIT_OK;
        goto done;
    }
    if (!s.state_path) {
        snprintf(state_path, sizeof(state_path), "%s.state", argv[optind]);
        s.state_path = state_path;
    }
    if (pc_sync_state_load(s.state_path, &s.state) != 0) {
        fprintf(stderr, "pullcache sync: %s\n", pc_error_last());
        goto done;
    }
    s.f = f;
    s.co = &co;
    co.max_connections = f->concurrency * 2 + 4;
    pc_cli_catch_stop(PC_CLI_STOP_TERM);
    for (;;) {
        rc = run_once(&s);
        if (once || atomic_load(&pc_cli_stop_flag))
            break;
        fprintf(stderr, "pullcache sync: next run in %u s\n", f->interval);
        if (!pause_for((double)f->interval))
            break;
    }
    if (!once && atomic_load(&pc_cli_stop_flag) && rc == PC_CLI_EXIT_INTERRUPTED)
        rc = PC_CLI_EXIT_OK; /* a service asked to stop */
done:
    for (size_t i = 0; i < s.nclients; i++)
        pc_upstream_free(s.clients[i].u);
    pc_sync_state_free(s.state);
    pc_sync_file_free(f);
    pc_client_opts_clear(&co);
    return rc;
}
