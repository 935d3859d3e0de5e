/*
 * pullfmt.c - output helpers shared by `pullcache pull` and `pullcache
 * loadgen` (see pullfmt.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "pullfmt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int pc_cli_pull_exit(pc_pull_fail kind)
{
    switch (kind) {
    case PC_PULL_OK:
        return PC_CLI_EXIT_OK;
    case PC_PULL_FAIL_REGISTRY:
    case PC_PULL_FAIL_NETWORK:
        return PC_CLI_EXIT_REGISTRY;
    case PC_PULL_FAIL_VERIFY:
        return PC_CLI_EXIT_VERIFY;
    case PC_PULL_FAIL_PLATFORM:
        return PC_CLI_EXIT_PLATFORM;
    case PC_PULL_FAIL_CANCELED:
        return PC_CLI_EXIT_INTERRUPTED;
    case PC_PULL_FAIL_LOCAL:
        break;
    }
    return PC_CLI_EXIT_LOCAL;
}

int pc_cli_config_load(const char *verb, const char *config_path, const char *data,
                       const char *const *upstreams, int nupstreams, pc_config **out)
{
    pc_config *cfg = NULL;
    *out = NULL;
    if (pc_config_load(&cfg, config_path)) {
        fprintf(stderr, "pullcache %s: %s\n", verb, pc_error_last());
        return -1;
    }
    if (data && pc_config_set_str(&cfg->storage->data, data)) {
        fprintf(stderr, "pullcache %s: out of memory\n", verb);
        goto fail;
    }
    for (int i = 0; i < nupstreams; i++)
        if (pc_config_add_upstream(cfg, upstreams[i])) {
            fprintf(stderr, "pullcache %s: %s\n", verb, pc_error_last());
            goto fail;
        }
    if (pc_config_finalize(cfg)) {
        fprintf(stderr, "pullcache %s: out of memory\n", verb);
        goto fail;
    }
    if (pc_config_validate(cfg)) {
        fprintf(stderr, "pullcache %s: %s%s%s\n", verb, config_path ? config_path : "",
                config_path ? ": " : "", pc_error_last());
        goto fail;
    }
    *out = cfg;
    return 0;
fail:
    pc_config_free(cfg);
    return -1;
}

const char *pc_cli_plural(unsigned long long n)
{
    return n == 1 ? "" : "s";
}

const char *pc_cli_fmt_bytes(uint64_t n, char *buf, size_t size)
{
    static const char *units[] = {"kB", "MB", "GB", "TB", "PB"};
    if (n < 1000) {
        snprintf(buf, size, "%" PRIu64 " B", n);
        return buf;
    }
    double v = (double)n / 1000.0;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, size, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

static json_t *int_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

json_t *pc_cli_ratelimit_json(const pc_ratelimit *rl)
{
    if (!rl)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o}", "limit", int_or_null(rl->limit), "remaining",
                     int_or_null(rl->remaining), "window", int_or_null(rl->window), "source",
                     rl->source[0] ? json_string(rl->source) : json_null());
}

const char *pc_cli_fmt_ratelimit(const pc_ratelimit *rl, char *buf, size_t size)
{
    char rem[32] = "?", lim[32] = "?", win[48] = "";
    if (rl->remaining >= 0)
        snprintf(rem, sizeof(rem), "%" PRId64, rl->remaining);
    if (rl->limit >= 0)
        snprintf(lim, sizeof(lim), "%" PRId64, rl->limit);
    if (rl->window >= 0)
        snprintf(win, sizeof(win), " per %" PRId64 " s", rl->window);
    snprintf(buf, size, "%s of %s%s%s%s%s", rem, lim, win, rl->source[0] ? " (source " : "",
             rl->source, rl->source[0] ? ")" : "");
    return buf;
}

int pc_cli_print_json(json_t *o)
{
    if (!o)
        return -1;
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return -1;
    puts(text);
    free(text);
    fflush(stdout);
    return 0;
}

int pc_cli_parse_uint(const char *verb, const char *flag, const char *arg, unsigned min,
                      unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < (long long)min || v > (long long)max) {
        fprintf(stderr, "pullcache %s: %s wants a whole number from %u to %u, not '%s'\n", verb,
                flag, min, max, arg);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int pc_cli_platform_parse(const char *verb, const char *arg, pc_pull_platform *out)
{
    if (pc_pull_platform_parse(out, arg) != 0) {
        fprintf(stderr, "pullcache %s: --platform: %s\n", verb, pc_error_last());
        return -1;
    }
    return 0;
}

bool pc_cli_stderr_tty(void)
{
    const char *term = getenv("TERM");
    return isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
}

int pc_cli_term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}
