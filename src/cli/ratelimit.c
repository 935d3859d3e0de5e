/*
 * ratelimit.c - `pullcache ratelimit IMAGE`: how many pulls a registry still
 * grants this client, read the way the course chapter's check script does it
 * but without spending a pull: the registry's challenge, a token from its
 * realm (anonymous or with credentials), then a manifest HEAD whose
 * ratelimit-limit / ratelimit-remaining / docker-ratelimit-source headers
 * are parsed by src/lib/ratelimit.c. When the registry is a pullcache, its
 * /_pullcache/status adds the budgets it has seen for its upstreams.
 * Output: one human line (redrawn in place under --watch on a terminal) or
 * one JSON object per check; --min makes it a CI gate.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"
#include "client.h"
#include "pullfmt.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ratelimit.h"

const char pc_cli_ratelimit_usage[] =
    "usage: pullcache ratelimit [--json] [--watch SECONDS [--count N]] [--min N]\n"
    "                           [connection options] IMAGE\n"
    "\n"
    "Show the pull budget a registry grants this client: limit, remaining pulls,\n"
    "window and the source it is counted against (an IP address or an account).\n"
    "IMAGE is a reference as docker takes it; Docker Hub is the default, so nginx\n"
    "means docker.io/library/nginx:latest. The check follows the registry's\n"
    "challenge, gets a token from its realm (anonymous, or with the credentials\n"
    "below) and sends a manifest HEAD: registries do not count a HEAD as a pull,\n"
    "so checking costs nothing. A registry that sends no ratelimit headers does\n"
    "not limit this client, and the output says so. When the registry is a\n"
    "pullcache, the budgets it has seen for its upstreams are shown too (a cache\n"
    "answers the HEAD itself, fetching a manifest it does not hold yet).\n"
    "\n"
    "  --json             one JSON object per check (one line each)\n"
    "  --watch SECONDS    check again every SECONDS; on a terminal the output is\n"
    "                     redrawn in place, otherwise one line is appended per\n"
    "                     check; Ctrl-C (SIGINT) or SIGTERM stops it with exit 0\n"
    "  --count N          with --watch: stop after N checks\n"
    "  --min N            exit 1 when fewer than N pulls remain (a CI gate);\n"
    "                     a registry without a limit passes, one whose headers\n"
    "                     cannot be read does not\n"
    "  -h, --help         this help\n"
    "\n" PC_CLIENT_USAGE "\n"
    "exit status:\n"
    "  0  checked (and at least --min pulls remain); a watch stopped by a signal\n"
    "  1  fewer than --min pulls remain (or the remaining count is unreadable)\n"
    "  2  usage: a bad flag, a malformed IMAGE, unusable credentials\n"
    "  3  the registry or the network failed: unknown image, credentials\n"
    "     refused, connection refused, TLS, timeout\n"
    "  With --watch --count N: the status of the last check.\n"
    "\n"
    "--json fields: image, registry, checked_at (UTC), status (of the HEAD),\n"
    "limited (false: no ratelimit headers), limit, remaining, window (seconds),\n"
    "source (null when not sent or not understood), headers (the raw values),\n"
    "auth (\"anonymous\": no credentials sent, \"bearer\": a token got with\n"
    "credentials, \"basic\"), credentials (anonymous, flags, environment or the\n"
    "auth file), username, token_realm, token_service, min and below_min (with\n"
    "--min), upstreams (a pullcache's /_pullcache/status entries), error (when\n"
    "the check failed).\n"
    "\n"
    "example:\n"
    "  $ pullcache ratelimit nginx\n"
    "  docker.io/library/nginx:latest  limit 100 per 6h  remaining 76  source "
    "203.0.113.7  (anonymous token from https://auth.docker.io/token)\n";

enum { OPT_JSON = 256, OPT_WATCH, OPT_COUNT, OPT_MIN };
enum { RL_EXIT_OK = 0, RL_EXIT_LOW = 1, RL_EXIT_USAGE = 2, RL_EXIT_REGISTRY = 3 };

#define RL_STATUS_PATH "/_pullcache/status"
#define RL_STATUS_MAX ((size_t)1 << 20)
#define RL_SECONDS_MAX 86400

/* Everything a check needs, fixed for the whole run. */
typedef struct {
    char image[PC_HOST_MAX + PC_NAME_MAX + PC_TAG_MAX + PC_DIGEST_MAX + 8];
    char url[PC_HOST_MAX + 16];
    const char *repo;
    const char *reference;   /* the digest if given, else the tag */
    const char *username;    /* NULL: anonymous */
    const char *cred_source; /* "anonymous", "flags", "environment", a file */
    pc_client_conn conn;     /* what pc_client_connect chose */
    bool json;
    bool watch;
    bool redraw; /* --watch on a terminal, not --json */
    bool have_min;
    int64_t min;
    bool probe_status; /* still worth asking /_pullcache/status */
    int rows_drawn;    /* terminal rows of the last redrawn block */
} rl_run;

/* The outcome of one check. */
typedef struct {
    time_t at;
    int exit;        /* RL_EXIT_* */
    char error[800]; /* "" when the registry answered the HEAD */
    long status;
    int parsed; /* pc_ratelimit_parse(): 0, PC_ENOTFOUND (no headers), PC_EINVAL */
    pc_ratelimit rl;
    char raw_limit[128], raw_remaining[128], raw_source[128];
    int64_t retry_after; /* -1 unless a 429 said */
    bool below_min;
    pc_upstream_auth auth;
    json_t *pcstatus; /* a pullcache's status document, or NULL */
} rl_check;

/* ---- small formatting helpers ---- */

/* 21600 -> "6h", 5400 -> "1h30m", 45 -> "45s", 86400 -> "1d": the two
 * largest units, so 90061 is "1d1h". */
static void fmt_duration(char *buf, size_t size, int64_t s)
{
    static const struct {
        int64_t secs;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    size_t i = 0, nunits = sizeof(units) / sizeof(units[0]);
    if (s <= 0) {
        snprintf(buf, size, "0s");
        return;
    }
    while (s < units[i].secs)
        i++;
    int64_t major = s / units[i].secs;
    int64_t minor = i + 1 < nunits ? s % units[i].secs / units[i + 1].secs : 0;
    if (minor > 0)
        snprintf(buf, size, "%lld%c%lld%c", (long long)major, units[i].unit, (long long)minor,
                 units[i + 1].unit);
    else
        snprintf(buf, size, "%lld%c", (long long)major, units[i].unit);
}

static void fmt_utc(char *buf, size_t size, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *int_or_null(int64_t v)
{
    return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* ---- one check ---- */

static bool is_docker_hub_url(const char *url)
{
    return strcmp(url, "https://registry-1.docker.io") == 0;
}

/* Set the check's error message (cut at the buffer's size). */
static void set_error(rl_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(rl_check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

/* One line that says what went wrong, for a HEAD that did not end in 2xx
 * (or a 429 without readable headers). */
static void explain_failure(const rl_run *run, const pc_upstream_resp *r, rl_check *c)
{
    const char *msg = r->error_message[0] ? r->error_message : pc_up_class_str(r->cls);
    bool token = strncmp(msg, "token: ", 7) == 0;
    const char *realm = c->auth.challenge.realm;
    switch (r->cls) {
    case PC_UP_NOT_FOUND:
        if (token)
            set_error(c, "the token server %s answered 404 (%s)", realm, msg + 7);
        else
            set_error(c, "%s: no such image at %s (%s)", run->image, run->url, msg);
        break;
    case PC_UP_DENIED:
        if (token && run->username)
            set_error(c, "the token server %s refused the credentials of %s (from %s): %s", realm,
                      run->username, run->cred_source, msg + 7);
        else if (token)
            set_error(c,
                      "the token server %s refused an anonymous token: %s; log in with "
                      "--username and --password-stdin",
                      realm, msg + 7);
        else if (run->username)
            set_error(c, "%s denied access to %s for %s (credentials from %s): %s", run->url,
                      run->repo, run->username, run->cred_source, msg);
        else
            set_error(c,
                      "%s denied anonymous access to %s (%s); log in with --username and "
                      "--password-stdin",
                      run->url, run->repo, msg);
        break;
    case PC_UP_REFUSED:
        set_error(c, "cannot connect to %s: %s", run->url, msg);
        break;
    case PC_UP_TLS: {
        char advice[400];
        pc_client_tls_advice(r->cls, msg, PC_CLIENT_BOTH, NULL, run->url, advice, sizeof(advice));
        set_error(c, "TLS failure with %s: %s; %s", run->url, msg, advice);
        break;
    }
    case PC_UP_TIMEOUT:
        set_error(c, "no answer from %s in time: %s", run->url, msg);
        break;
    default:
        if (r->status)
            set_error(c, "%s answered HTTP %ld for %s: %s", run->url, r->status, run->image, msg);
        else
            set_error(c, "%s: %s", run->url, msg);
        break;
    }
}

/* Ask a pullcache for the budgets it has seen. A registry that is not one
 * (404, not the expected JSON) is not asked again. */
static void probe_status(rl_run *run, pc_upstream *u, rl_check *c)
{
    pc_upstream_resp r;
    if (pc_upstream_get(u, RL_STATUS_PATH, RL_STATUS_MAX, &r) != 0)
        return;
    if (r.cls == PC_UP_OK) {
        json_t *doc = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
        if (json_is_object(doc) && json_is_array(json_object_get(doc, "upstreams")))
            c->pcstatus = doc;
        else
            json_decref(doc);
    }
    /* a transient failure of a pullcache keeps it in the probe */
    if (!c->pcstatus && r.cls != PC_UP_SERVER && r.cls != PC_UP_TIMEOUT && r.cls != PC_UP_RESET)
        run->probe_status = false;
    pc_upstream_resp_clear(&r);
}

static void check_once(rl_run *run, pc_upstream *u, rl_check *c)
{
    pc_upstream_resp r;
    memset(c, 0, sizeof(*c));
    c->at = time(NULL);
    c->parsed = PC_ENOTFOUND;
    c->retry_after = -1;
    c->rl.limit = c->rl.remaining = c->rl.window = -1;
    int rc = pc_upstream_manifest(u, run->repo, run->reference, true, &r);
    pc_upstream_auth_state(u, &c->auth);
    if (rc != 0) {
        set_error(c, "%s", pc_error_last());
        c->exit = RL_EXIT_REGISTRY;
        return;
    }
    c->status = r.status;
    snprintf(c->raw_limit, sizeof(c->raw_limit), "%s", r.ratelimit_limit);
    snprintf(c->raw_remaining, sizeof(c->raw_remaining), "%s", r.ratelimit_remaining);
    snprintf(c->raw_source, sizeof(c->raw_source), "%s", r.ratelimit_source);
    if (r.cls == PC_UP_OK || r.cls == PC_UP_TOO_MANY)
        c->parsed = pc_ratelimit_parse(r.ratelimit_limit, r.ratelimit_remaining, r.ratelimit_source,
                                       &c->rl);
    if (r.cls == PC_UP_TOO_MANY)
        c->retry_after = pc_ratelimit_retry_after(r.retry_after, c->at);
    /* a 429 that carries a readable budget is an answer too */
    if (r.cls != PC_UP_OK && !(r.cls == PC_UP_TOO_MANY && c->parsed == 0)) {
        explain_failure(run, &r, c);
        c->exit = RL_EXIT_REGISTRY;
        pc_upstream_resp_clear(&r);
        return;
    }
    pc_upstream_resp_clear(&r);
    if (run->have_min && c->parsed != PC_ENOTFOUND)
        c->below_min = c->rl.remaining < 0 || c->rl.remaining < run->min;
    c->exit = c->below_min ? RL_EXIT_LOW : RL_EXIT_OK;
    if (run->probe_status)
        probe_status(run, u, c);
}

/* ---- human output ---- */

/* "(anonymous token from REALM)" and the like. */
static void fmt_auth(char *buf, size_t size, const rl_run *run, const rl_check *c)
{
    const pc_auth_challenge *ch = &c->auth.challenge;
    if (strcmp(ch->scheme, "Bearer") == 0 && !c->auth.credentials)
        snprintf(buf, size, "(anonymous token from %s)", ch->realm);
    else if (strcmp(ch->scheme, "Bearer") == 0)
        snprintf(buf, size, "(token for %s from %s, credentials from %s)", run->username, ch->realm,
                 run->cred_source);
    else if (strcmp(ch->scheme, "Basic") == 0 && c->auth.credentials)
        snprintf(buf, size, "(basic auth as %s, credentials from %s)", run->username,
                 run->cred_source);
    else if (run->username)
        snprintf(buf, size, "(no authentication asked; credentials from %s not used)",
                 run->cred_source);
    else
        snprintf(buf, size, "(no authentication)");
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* An integer member, or -1. */
static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0)
        return (int64_t)json_real_value(v);
    return -1;
}

/* A time member (Unix seconds, or an RFC 3339 UTC string) as "12s ago", or
 * the string as sent. */
static void fmt_when(char *buf, size_t size, json_t *v, time_t now)
{
    time_t t = (time_t)-1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    buf[0] = '\0';
    if (json_is_integer(v)) {
        t = (time_t)json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *end = strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%S", &tm);
        if (end && (*end == 'Z' || *end == '.' || *end == '+' || *end == '\0'))
            t = timegm(&tm);
        else
            snprintf(buf, size, "%s", json_string_value(v));
    }
    if (t == (time_t)-1)
        return;
    char d[32];
    if (t <= now) {
        fmt_duration(d, sizeof(d), (int64_t)(now - t));
        snprintf(buf, size, "%s ago", d);
    } else {
        fmt_duration(d, sizeof(d), (int64_t)(t - now));
        snprintf(buf, size, "in %s", d);
    }
}

/* "limit 100 per 6h  remaining 76  source 1.2.3.4" from numbers (-1 = not
 * known). */
static void fmt_budget(FILE *f, int64_t limit, int64_t remaining, int64_t window,
                       const char *source)
{
    char w[32];
    if (limit >= 0)
        fprintf(f, "limit %lld", (long long)limit);
    else
        fprintf(f, "limit ?");
    if (window > 0) {
        fmt_duration(w, sizeof(w), window);
        fprintf(f, " per %s", w);
    }
    if (remaining >= 0)
        fprintf(f, "  remaining %lld", (long long)remaining);
    else
        fprintf(f, "  remaining ?");
    if (source && *source)
        fprintf(f, "  source %s", source);
}

/* Which of a pullcache's upstreams serves repo, by the routing rule its
 * status states (first path component an upstream's name, else the default
 * upstream unless under a local prefix); NULL: its own private repository. */
static const char *route_of(json_t *doc, const char *repo)
{
    json_t *ups = json_object_get(doc, "upstreams"), *up, *cache = json_object_get(doc, "cache");
    const char *slash = strchr(repo, '/');
    size_t i, n = slash ? (size_t)(slash - repo) : 0;
    json_array_foreach(ups, i, up)
    {
        const char *name = jstr(up, "name");
        if (name && n && strlen(name) == n && strncmp(repo, name, n) == 0)
            return name;
    }
    const char *def = jstr(cache, "default_upstream");
    if (!def || strcmp(def, "none") == 0)
        return NULL;
    json_t *lp;
    json_array_foreach(json_object_get(cache, "local_prefixes"), i, lp)
    {
        const char *p = json_string_value(lp);
        size_t pl = p ? strlen(p) : 0;
        if (pl && strncmp(repo, p, pl) == 0 && (repo[pl] == '\0' || repo[pl] == '/'))
            return NULL;
    }
    return def;
}

static void print_upstreams(FILE *f, json_t *doc, time_t now, const char *repo)
{
    const char *version = jstr(doc, "version");
    int64_t uptime = jint(doc, "uptime_seconds");
    char buf[64];
    fprintf(f, "\npullcache%s%s at this registry", version ? " " : "", version ? version : "");
    if (uptime >= 0) {
        fmt_duration(buf, sizeof(buf), uptime);
        fprintf(f, " (up %s)", buf);
    }
    json_t *ups = json_object_get(doc, "upstreams");
    const char *via = route_of(doc, repo);
    if (via)
        fprintf(f, "; %s comes through its mirror of %s", repo, via);
    else
        fprintf(f, "; %s is its own (private) repository: pulling it spends no upstream budget",
                repo);
    if (!json_array_size(ups)) {
        fprintf(f, "; it mirrors nothing");
        return;
    }
    fprintf(f, "; budgets it has seen upstream:");
    size_t i;
    json_t *up;
    json_array_foreach(ups, i, up)
    {
        const char *name = jstr(up, "name"), *url = jstr(up, "url");
        const char *cred = jstr(up, "credential");
        int64_t reserve = jint(up, "reserve");
        fprintf(f, "\n  %s", name ? name : "?");
        if (url || cred || reserve >= 0) {
            fprintf(f, " (%s", url ? url : "");
            if (cred)
                fprintf(f, "%scredential %s", url ? ", " : "", cred);
            if (reserve >= 0)
                fprintf(f, "%sreserve %lld", url || cred ? ", " : "", (long long)reserve);
            fprintf(f, ")");
        }
        json_t *rl = json_object_get(up, "ratelimit");
        if (!json_is_object(rl)) {
            fprintf(f, ": no budget seen yet");
            continue;
        }
        fprintf(f, ": ");
        fmt_budget(f, jint(rl, "limit"), jint(rl, "remaining"), jint(rl, "window"),
                   jstr(rl, "source"));
        if (jstr(rl, "state"))
            fprintf(f, "  state %s", jstr(rl, "state"));
        fmt_when(buf, sizeof(buf), json_object_get(rl, "seen_at"), now);
        if (buf[0])
            fprintf(f, "  seen %s", buf);
        fmt_when(buf, sizeof(buf), json_object_get(rl, "retry_at"), now);
        if (buf[0])
            fprintf(f, "  retry %s", buf);
    }
}

/* The human text of a check, without a final newline. */
static void print_human(FILE *f, const rl_run *run, const rl_check *c)
{
    char when[16], a[1400];
    if (run->watch) {
        struct tm tm;
        localtime_r(&c->at, &tm);
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
        fprintf(f, "[%s] ", when);
    }
    if (c->error[0]) {
        fprintf(f, "%s  error: %s", run->image, c->error);
        return;
    }
    fmt_auth(a, sizeof(a), run, c);
    fprintf(f, "%s  ", run->image);
    if (c->parsed == PC_ENOTFOUND) {
        fprintf(f, "%s sent no rate limit headers, so it does not limit this client  %s", run->url,
                a);
    } else if (c->parsed == PC_EINVAL) {
        fprintf(f, "rate limit headers not understood:");
        if (c->raw_limit[0])
            fprintf(f, " ratelimit-limit \"%s\"", c->raw_limit);
        if (c->raw_remaining[0])
            fprintf(f, " ratelimit-remaining \"%s\"", c->raw_remaining);
        if (c->raw_source[0])
            fprintf(f, "  source %s", c->rl.source);
        fprintf(f, "  %s", a);
    } else {
        fmt_budget(f, c->rl.limit, c->rl.remaining, c->rl.window, c->rl.source);
        fprintf(f, "  %s", a);
    }
    if (c->status == 429) {
        fprintf(f, "  (429 Too Many Requests");
        if (c->retry_after >= 0) {
            fmt_duration(when, sizeof(when), c->retry_after);
            fprintf(f, ", retry in %s", when);
        }
        fprintf(f, ")");
    }
    if (c->below_min) {
        if (c->rl.remaining >= 0)
            fprintf(f, "\nbelow --min %lld: %lld pull(s) remain", (long long)run->min,
                    (long long)c->rl.remaining);
        else
            fprintf(f, "\nbelow --min %lld: the remaining count cannot be read",
                    (long long)run->min);
    }
    if (c->pcstatus)
        print_upstreams(f, c->pcstatus, c->at, run->repo);
}

/* ---- JSON output ---- */

static json_t *check_json(const rl_run *run, const rl_check *c)
{
    char at[32];
    const pc_auth_challenge *ch = &c->auth.challenge;
    bool bearer = strcmp(ch->scheme, "Bearer") == 0;
    bool basic = strcmp(ch->scheme, "Basic") == 0;
    const char *auth = "anonymous";
    if (bearer && c->auth.credentials)
        auth = "bearer";
    else if (basic && c->auth.credentials)
        auth = "basic";
    fmt_utc(at, sizeof(at), c->at);
    json_t *o = json_object();
    json_t *h = json_object();
    if (!o || !h)
        goto oom;
    json_object_set_new(o, "image", json_string(run->image));
    json_object_set_new(o, "registry", json_string(run->url));
    json_object_set_new(o, "checked_at", json_string(at));
    if (c->status)
        json_object_set_new(o, "status", json_integer(c->status));
    if (c->error[0]) {
        json_object_set_new(o, "error", json_string(c->error));
    } else {
        bool ok = c->parsed == 0;
        json_object_set_new(o, "limited", json_boolean(c->parsed != PC_ENOTFOUND));
        json_object_set_new(o, "limit", int_or_null(ok ? c->rl.limit : -1));
        json_object_set_new(o, "remaining", int_or_null(ok ? c->rl.remaining : -1));
        json_object_set_new(o, "window", int_or_null(ok ? c->rl.window : -1));
        json_object_set_new(o, "source", str_or_null(c->rl.source));
    }
    if (c->raw_limit[0])
        json_object_set_new(h, "ratelimit-limit", json_string(c->raw_limit));
    if (c->raw_remaining[0])
        json_object_set_new(h, "ratelimit-remaining", json_string(c->raw_remaining));
    if (c->raw_source[0])
        json_object_set_new(h, "docker-ratelimit-source", json_string(c->raw_source));
    json_object_set_new(o, "headers", h);
    h = NULL;
    json_object_set_new(o, "auth", json_string(auth));
    json_object_set_new(o, "credentials", json_string(run->cred_source));
    json_object_set_new(o, "username", str_or_null(run->username));
    json_object_set_new(o, "token_realm", str_or_null(bearer ? ch->realm : NULL));
    json_object_set_new(o, "token_service", str_or_null(bearer ? ch->service : NULL));
    if (run->have_min) {
        json_object_set_new(o, "min", json_integer((json_int_t)run->min));
        json_object_set_new(o, "below_min", json_boolean(c->below_min));
    }
    if (c->pcstatus) {
        json_object_set(o, "upstreams", json_object_get(c->pcstatus, "upstreams"));
        json_object_set(o, "pullcache_version", json_object_get(c->pcstatus, "version"));
        const char *via = route_of(c->pcstatus, run->repo);
        json_object_set_new(o, "via_upstream", str_or_null(via));
    }
    return o;
oom:
    json_decref(o);
    json_decref(h);
    return NULL;
}

/* ---- drawing ---- */

/* Terminal rows a block takes at the terminal's width. */
static int block_rows(const char *text)
{
    struct winsize ws;
    size_t width = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        width = ws.ws_col;
    int rows = 0;
    for (const char *p = text;;) {
        size_t len = strcspn(p, "\n");
        rows += width && len > width ? (int)((len + width - 1) / width) : 1;
        if (!p[len])
            break;
        p += len + 1;
    }
    return rows;
}

/* Print a check's output: a JSON line, an appended block, or the block
 * redrawn over the previous one. Returns 0, or -1 when out of memory. */
static int emit(rl_run *run, const rl_check *c)
{
    if (run->json)
        return pc_cli_print_json(check_json(run, c));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return -1;
    print_human(mem, run, c);
    if (fclose(mem) != 0 || !text) {
        free(text);
        return -1;
    }
    if (!run->redraw) {
        /* a failed single check is reported on stderr by the caller */
        if (run->watch || !c->error[0])
            printf("%s\n", text);
        free(text);
        fflush(stdout);
        return 0;
    }
    /* back to the first row of the previous block, then each line erased
     * and rewritten, then whatever the old block had below cleared */
    int rows = block_rows(text);
    fputs("\r", stdout);
    if (run->rows_drawn > 1)
        printf("\033[%dA", run->rows_drawn - 1);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        printf("\033[K%s%s", line, next ? "\n" : "");
    }
    fputs("\033[J", stdout);
    fflush(stdout);
    run->rows_drawn = rows;
    free(text);
    return 0;
}

/* ---- the verb ---- */

static int parse_count(const char *flag, const char *arg, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (!*arg || errno || *end || v < lo || v > hi) {
        fprintf(stderr,
                "pullcache ratelimit: %s wants a whole number from %lld to %lld, not '%s'\n", flag,
                (long long)lo, (long long)hi, arg);
        return -1;
    }
    *out = v;
    return 0;
}

/* Sleep for secs seconds or until a stop signal. */
static void nap(int64_t secs)
{
    struct timespec left = {.tv_sec = (time_t)secs, .tv_nsec = 0};
    while (!atomic_load(&pc_cli_stop_flag) && nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

static int open_client(rl_run *run, pc_client_opts *co, const pc_ref *ref,
                       pc_endpoint_scheme scheme, pc_upstream **out)
{
    pc_client_side side;
    co->max_connections = 1;
    pc_client_side_of(co, PC_CLIENT_BOTH, &side);
    if (pc_client_connect(co, "ratelimit", PC_CLIENT_BOTH, &side, ref->host, scheme, out,
                          &run->conn) != 0)
        return -1;
    snprintf(run->url, sizeof(run->url), "%s", run->conn.url);
    run->username = run->conn.username[0] ? run->conn.username : NULL;
    run->cred_source = run->conn.cred_source;
    return 0;
}

int pc_cli_ratelimit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"watch", required_argument, NULL, OPT_WATCH},
        {"count", required_argument, NULL, OPT_COUNT},
        {"min", required_argument, NULL, OPT_MIN},
        PC_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    rl_run run;
    pc_client_opts co;
    pc_ref ref;
    pc_upstream *u = NULL;
    int64_t interval = 0, count = 0;
    int c, rc = RL_EXIT_USAGE;
    memset(&run, 0, sizeof(run));
    pc_client_opts_init(&co);

    optind = 1;
    while ((c = pc_client_getopt(&co, "ratelimit", argc, argv, "", opts)) > 0) {
        switch (c) {
        case OPT_JSON:
            run.json = true;
            break;
        case OPT_WATCH:
            if (parse_count("--watch", optarg, 1, RL_SECONDS_MAX, &interval))
                goto done;
            run.watch = true;
            break;
        case OPT_COUNT:
            if (parse_count("--count", optarg, 1, INT32_MAX, &count))
                goto done;
            break;
        case OPT_MIN:
            if (parse_count("--min", optarg, 0, INT64_MAX / 2, &run.min))
                goto done;
            run.have_min = true;
            break;
        }
    }
    if (c < 0)
        goto done;
    if (optind != argc - 1) {
        fprintf(stderr, "pullcache ratelimit: %s\n%s",
                optind >= argc ? "which image? e.g. `pullcache ratelimit nginx`" : "one IMAGE only",
                "`pullcache ratelimit --help` lists the options\n");
        goto done;
    }
    if (count && !run.watch) {
        fprintf(stderr, "pullcache ratelimit: --count goes with --watch\n");
        goto done;
    }
    pc_endpoint_scheme scheme;
    if (pc_client_parse_ref(argv[optind], &ref, &scheme) != 0)
        goto done;
    if (pc_ref_format(&ref, run.image, sizeof(run.image)) < 0) {
        fprintf(stderr, "pullcache ratelimit: image reference too long\n");
        goto done;
    }
    run.repo = ref.name;
    run.reference = ref.has_digest ? ref.digest.str : ref.tag;
    if (open_client(&run, &co, &ref, scheme, &u) != 0)
        goto done;
    run.probe_status = !is_docker_hub_url(run.url);
    run.redraw = run.watch && !run.json && isatty(STDOUT_FILENO);

    if (run.watch)
        pc_cli_catch_stop(PC_CLI_STOP_TERM);
    for (int64_t n = 1;; n++) {
        rl_check chk;
        check_once(&run, u, &chk);
        rc = chk.exit;
        int out = emit(&run, &chk);
        if (!run.watch && chk.error[0])
            fprintf(stderr, "pullcache ratelimit: %s\n", chk.error);
        json_decref(chk.pcstatus);
        if (out != 0) {
            fprintf(stderr, "pullcache ratelimit: out of memory\n");
            rc = RL_EXIT_REGISTRY;
            break;
        }
        if (!run.watch || (count && n >= count))
            break;
        nap(interval);
        if (atomic_load(&pc_cli_stop_flag)) {
            rc = RL_EXIT_OK;
            break;
        }
    }
    if (run.redraw && run.rows_drawn)
        fputs("\n", stdout);
done:
    pc_upstream_free(u);
    pc_client_opts_clear(&co);
    return rc;
}
