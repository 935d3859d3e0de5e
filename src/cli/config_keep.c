/*
 * config_keep.c - containerd's files on a node, for `pullcache config
 * containerd --output DIR` run by a DaemonSet (deploy/kubernetes/node):
 *
 *   --watch SECONDS   keep the written hosts.toml files in place: each one
 *                     removed or changed (a node's configuration management,
 *                     a hand edit) is written again, until SIGTERM/SIGINT
 *   --remove-on-exit  then take them away (the DaemonSet being deleted)
 *   --remove          take them away now (a cleanup after a pod that was
 *                     killed without its SIGTERM)
 *
 * Only files that start with PC_CFG_MARK are removed: a hosts.toml an
 * administrator wrote for another registry stays. config_cmd.h has the
 * interface.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "client.h"
#include "config_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether the file at path starts with the mark line: 1 yes, 0 no,
 * -1 it does not exist (or cannot be read: errno). */
static int has_mark(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    bool marked = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!marked)
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, PC_CFG_MARK) == 0;
}

/* Remove DIR/name/hosts.toml if it is ours, then DIR/name if empty. 0 (removed,
 * absent or kept) or -1. */
static int remove_one(const char *dir, const char *name)
{
    char path[PATH_MAX], sub[PATH_MAX];
    if (snprintf(sub, sizeof(sub), "%s/%s", dir, name) >= (int)sizeof(sub) ||
        snprintf(path, sizeof(path), "%s/hosts.toml", sub) >= (int)sizeof(path)) {
        fprintf(stderr, "pullcache config: path too long under %s\n", dir);
        return -1;
    }
    int m = has_mark(path);
    if (m < 0 && errno == ENOENT)
        return 0;
    if (m < 0) {
        fprintf(stderr, "pullcache config: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (m == 0) {
        fprintf(stderr,
                "pullcache config: kept %s: not written by pullcache config (no mark line)\n",
                path);
        return 0;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "pullcache config: cannot remove %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("# removed %s\n", path);
    /* the directory goes only when nothing else is in it (a ca.crt stays) */
    if (rmdir(sub) != 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
        fprintf(stderr, "pullcache config: cannot remove the directory %s: %s\n", sub,
                strerror(errno));
        return -1;
    }
    return 0;
}

int pc_cfg_remove(const char *dir, const char *const *ups, size_t n)
{
    int rc = 0;
    if (n) {
        for (size_t i = 0; i < n; i++)
            rc |= remove_one(dir, ups[i]) ? 1 : 0;
        return fflush(stdout) ? 1 : rc;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "pullcache config: cannot read %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            rc |= remove_one(dir, e->d_name) ? 1 : 0;
    closedir(d);
    return fflush(stdout) ? 1 : rc;
}

/* The upstream a generated file belongs to: the first part of its rel path. */
static void upstream_of(const pc_cfg_file *f, char *buf, size_t size)
{
    snprintf(buf, size, "%.*s", (int)strcspn(f->rel, "/"), f->rel);
}

int pc_cfg_watch(const char *dir, const pc_cfg_output *g, unsigned interval, bool remove_on_exit)
{
    int rc = 0;
    char path[PATH_MAX];
    pc_cli_catch_stop(PC_CLI_STOP_TERM);
    printf("# keeping %zu file%s in %s (checked every %u s) until SIGTERM%s\n", g->nfiles,
           g->nfiles == 1 ? "" : "s", dir, interval, remove_on_exit ? ", then removing them" : "");
    fflush(stdout);
    while (!atomic_load(&pc_cli_stop_flag)) {
        /* sleep() ends early when the stop signal arrives (no SA_RESTART) */
        for (unsigned left = interval; left && !atomic_load(&pc_cli_stop_flag);)
            left = sleep(left);
        if (atomic_load(&pc_cli_stop_flag))
            break;
        for (size_t i = 0; i < g->nfiles; i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, g->files[i].rel);
            int w = pc_cfg_write_file(path, g->files[i].content);
            if (w == 0)
                printf("# restored %s\n", path);
            /* a failed write is retried at the next round; the message is on stderr */
        }
        fflush(stdout);
    }
    if (remove_on_exit) {
        char name[PC_CFG_MAX_NAME];
        for (size_t i = 0; i < g->nfiles; i++) {
            upstream_of(&g->files[i], name, sizeof(name));
            rc |= remove_one(dir, name) ? 1 : 0;
        }
    }
    printf("# stopped\n");
    return fflush(stdout) ? 1 : rc;
}
