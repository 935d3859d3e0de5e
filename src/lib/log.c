/*
 * log.c - request and event lines, text or JSON, one write(2) each.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static bool log_json;
static bool log_journal; /* stderr is a journald stream: "<N>" prefixes */
static pc_log_level log_level = PC_LOG_INFO;
static int log_fd = STDERR_FILENO;
static char *log_path; /* NULL: stderr */
static pthread_mutex_t log_reopen_lock = PTHREAD_MUTEX_INITIALIZER;

enum { ACCESS_ALL, ACCESS_ERRORS, ACCESS_OFF };
static int log_access = ACCESS_ALL;
static unsigned log_sample = 1;
static unsigned long log_seen; /* request lines below 400 so far (atomic) */

static const char *level_names[] = {"error", "warn", "info", "debug"};
static const char journal_prio[] = {'3', '4', '6', '7'}; /* syslog err, warning, info, debug */

/* JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected; it is
 * inherited, so it only counts when stderr still is that stream. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void pc_log_setup(const char *format, const char *level)
{
    log_json = format && strcmp(format, "json") == 0;
    for (int i = 0; level && i < 4; i++)
        if (strcmp(level, level_names[i]) == 0)
            log_level = (pc_log_level)i;
    log_journal = !log_path && stderr_is_journal();
}

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        pc_error_set("cannot open log file %s: %s", path, strerror(errno));
    return fd;
}

int pc_log_open(const char *path)
{
    int fd = open_file(path);
    if (fd < 0)
        return PC_ERR;
    char *copy = strdup(path);
    if (!copy) {
        close(fd);
        return PC_ENOMEM;
    }
    pthread_mutex_lock(&log_reopen_lock);
    if (log_path) { /* opened before: keep the descriptor's number */
        dup2(fd, log_fd);
        close(fd);
    } else {
        log_fd = fd;
    }
    free(log_path);
    log_path = copy;
    log_journal = false;
    pthread_mutex_unlock(&log_reopen_lock);
    return 0;
}

int pc_log_reopen(void)
{
    int rc = 0;
    pthread_mutex_lock(&log_reopen_lock);
    if (!log_path) {
        rc = PC_ENOTFOUND;
    } else {
        int fd = open_file(log_path);
        /* dup2 swaps the file under the same number at once: a write in
         * another thread lands whole in the old file or the new one */
        if (fd < 0 || dup2(fd, log_fd) < 0) {
            if (fd >= 0)
                pc_error_set("cannot reopen log file %s: %s", log_path, strerror(errno));
            rc = PC_ERR;
        }
        if (fd >= 0)
            close(fd);
    }
    pthread_mutex_unlock(&log_reopen_lock);
    return rc;
}

void pc_log_access(const char *mode, unsigned sample)
{
    log_access = mode && strcmp(mode, "off") == 0      ? ACCESS_OFF
                 : mode && strcmp(mode, "errors") == 0 ? ACCESS_ERRORS
                                                       : ACCESS_ALL;
    log_sample = sample ? sample : 1;
    __atomic_store_n(&log_seen, 0, __ATOMIC_RELAXED);
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
        ssize_t n = write(log_fd, line, len);
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
    int n = log_journal ? snprintf(line, sizeof(line), "<%c>%s\n", journal_prio[level], msg)
                        : snprintf(line, sizeof(line), "%s %s %s\n", ts, level_names[level], msg);
    if (n > 0)
        emit(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void pc_log_request(const char *client, const char *method, const char *path, unsigned status,
                    uint64_t bytes, double duration_ms, const char *user)
{
    char ts[40], line[2400];
    if (log_level < PC_LOG_INFO || log_access == ACCESS_OFF)
        return;
    if (status < 400 &&
        (log_access == ACCESS_ERRORS ||
         (log_sample > 1 && __atomic_fetch_add(&log_seen, 1, __ATOMIC_RELAXED) % log_sample != 0)))
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
    /* the journal: a server error is a warning, the rest information */
    char head[48];
    if (log_journal)
        snprintf(head, sizeof(head), "<%c>", status >= 500 ? '4' : '6');
    else
        snprintf(head, sizeof(head), "%s ", ts);
    int n = snprintf(line, sizeof(line), "%s%s %s %s %u %llu %.3fms%s\n", head, client, method,
                     safe, status, (unsigned long long)bytes, duration_ms, who);
    if (n > 0)
        emit(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
