/*
 * log.c - request and event lines, text or JSON, one write(2) each.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static bool log_json;
static pc_log_level log_level = PC_LOG_INFO;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void pc_log_setup(const char *format, const char *level)
{
    log_json = format && strcmp(format, "json") == 0;
    for (int i = 0; level && i < 4; i++)
        if (strcmp(level, level_names[i]) == 0)
            log_level = (pc_log_level)i;
}

static void timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void emit(char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n <= 0)
            return;
        line += n;
        len -= (size_t)n;
    }
}

static void emit_json(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(obj);
    if (!s)
        return;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return;
    }
    line[n] = '\n';
    emit(line, n + 1);
    free(line);
}

void pc_log(pc_log_level level, const char *fmt, ...)
{
    char ts[40], msg[1024], line[1200];
    va_list ap;
    if (level > log_level)
        return;
    timestamp(ts, sizeof(ts));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_json) {
        emit_json(
            json_pack("{s:s, s:s, s:s}", "time", ts, "level", level_names[level], "msg", msg));
        return;
    }
    int n = snprintf(line, sizeof(line), "%s %s %s\n", ts, level_names[level], msg);
    if (n > 0)
        emit(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void pc_log_request(const char *client, const char *method, const char *path, unsigned status,
                    uint64_t bytes, double duration_ms, const char *user)
{
    char ts[40], line[2400];
    if (log_level < PC_LOG_INFO)
        return;
    timestamp(ts, sizeof(ts));
    if (log_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:f}", "time", ts, "client", client,
                              "method", method, "path", path, "status", (int)status, "bytes",
                              (json_int_t)bytes, "ms", duration_ms);
        if (o && user && *user)
            json_object_set_new(o, "user", json_string(user));
        emit_json(o);
        return;
    }
    /* Paths come from clients: keep control characters out of the log. */
    char safe[2048];
    size_t j = 0;
    for (size_t i = 0; path[i] && j + 4 < sizeof(safe); i++) {
        unsigned char ch = (unsigned char)path[i];
        if (ch < 0x20 || ch == 0x7f || ch == ' ') {
            static const char hx[] = "0123456789ABCDEF";
            safe[j++] = '%';
            safe[j++] = hx[ch >> 4];
            safe[j++] = hx[ch & 15];
        } else {
            safe[j++] = (char)ch;
        }
    }
    safe[j] = '\0';
    /* user names come from the htpasswd file or a verified token: printable, no spaces
     * in htpasswd; a token's sub is cut at the first unsafe character */
    char who[80] = "";
    if (user && *user) {
        size_t k = (size_t)snprintf(who, sizeof(who), " user=");
        for (size_t i = 0; user[i] && k + 1 < sizeof(who); i++) {
            unsigned char ch = (unsigned char)user[i];
            if (ch <= 0x20 || ch == 0x7f)
                break;
            who[k++] = (char)ch;
        }
        who[k] = '\0';
    }
    int n = snprintf(line, sizeof(line), "%s %s %s %s %u %llu %.3fms%s\n", ts, client, method, safe,
                     status, (unsigned long long)bytes, duration_ms, who);
    if (n > 0)
        emit(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
