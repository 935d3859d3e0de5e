/*
 * main.c - the pullcache binary: dispatches `pullcache VERB ...` through
 * one table, prints help and the version.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpgen.h"

static int run_help(int argc, char **argv);
static int run_version(int argc, char **argv);

static const pc_verb verbs[] = {
    {"serve", "run the registry and pull-through cache daemon", pc_cli_serve_usage, pc_cli_serve},
    {"config", "print container runtime settings that use a pullcache mirror", pc_cli_config_usage,
     pc_cli_config},
    {"doctor", "check on a node that containerd, podman/CRI-O and Docker pull through the cache",
     pc_cli_doctor_usage, pc_cli_doctor},
    {"gc", "shrink the cache to its size cap, remove unreferenced blobs", pc_cli_gc_usage,
     pc_cli_gc},
    {"cache", "list, refresh or forget what a running serve's mirror has cached",
     pc_cli_cache_usage, pc_cli_cache},
    {"ls", "list the repositories of a registry (its catalog)", pc_cli_ls_usage, pc_cli_ls},
    {"rm", "delete a manifest from a registry (by tag: the digest it names)", pc_cli_rm_usage,
     pc_cli_rm},
    {"tags", "list every tag of a repository (no pull budget spent)", pc_cli_tags_usage,
     pc_cli_tags},
    {"inspect", "show an image's digest, platforms, config and layers", pc_cli_inspect_usage,
     pc_cli_inspect},
    {"fsck", "check a data directory (digests, metadata, uploads); --repair fixes it",
     pc_cli_fsck_usage, pc_cli_fsck},
    {"ratelimit", "show the pull budget a registry grants (HEAD only, costs no pull)",
     pc_cli_ratelimit_usage, pc_cli_ratelimit},
    {"pull", "pull an image like a container runtime, verifying every digest", pc_cli_pull_usage,
     pc_cli_pull},
    {"loadgen", "simulate N nodes pulling images M times; count 429s, latency, bytes",
     pc_cli_loadgen_usage, pc_cli_loadgen},
    {"copy", "copy an image between registries and OCI layouts, digests preserved",
     pc_cli_copy_usage, pc_cli_copy},
    {"sync", "keep a registry in step with a YAML list of source -> destination mappings",
     pc_cli_sync_usage, pc_cli_sync},
    {"migrate", "copy a data directory to other storage (S3, PostgreSQL), resumable, verified",
     pc_cli_migrate_usage, pc_cli_migrate},
    {"help", "show help for a verb", "usage: pullcache help [VERB]\n", run_help},
    {"version", "print the version", "usage: pullcache version\n", run_version},
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

void pc_cli_usage(const pc_verb *v)
{
    fputs(v->usage, stdout);
}

static void overview(FILE *out)
{
    fprintf(out,
            "pullcache %s - a private container registry and pull-through cache\n\n"
            "usage: pullcache VERB [OPTIONS]\n\nverbs:\n",
            PC_VERSION);
    for (size_t i = 0; i < NVERBS; i++)
        fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(out, "\n"
                 "exit codes (every client verb: pull, copy, sync, ratelimit, loadgen, ls, tags,\n"
                 "inspect, rm, cache, config):\n"
                 "  0    done\n"
                 "  1    local failure: a file or OCI layout (missing, unreadable, invalid,\n"
                 "       without the image asked for: sync's FILE too), memory, a credentials\n"
                 "       file; ratelimit --min: fewer pulls left than asked for\n"
                 "  2    usage: a bad flag or argument\n"
                 "  3    a registry refused (its status and error code are in the message) or\n"
                 "       could not be reached; loadgen: some pulls failed; config: the mirror\n"
                 "       does not serve what the settings need\n"
                 "  4    verification: a digest or size mismatch, a malformed manifest\n"
                 "  5    an index without an image for the platform asked for\n"
                 "  6    sync --once --no-wait stopped for the pull budget\n"
                 "  130  interrupted (SIGINT)\n"
                 "serve, gc, fsck, migrate and doctor have codes of their own (doctor: 1 when a\n"
                 "runtime bypasses the cache); their --help says what they mean.\n"
                 "\n`pullcache help VERB` or `pullcache VERB --help` shows a verb's options.\n");
}

static const pc_verb *find_verb(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

/* `pullcache help --man` and `pullcache help --completion bash` (not in
 * the usage text: the build runs them for build/pullcache.1 and
 * build/pullcache.bash). 0, 1 (write failed), 2 (usage). */
static int run_helpgen(int argc, char **argv)
{
    int rc;
    if (strcmp(argv[1], "--man") == 0 && argc == 2) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            return 1;
        overview(f);
        if (fclose(f) != 0) {
            free(text);
            return 1;
        }
        rc = pc_helpgen_man(stdout, verbs, NVERBS, text);
        free(text);
    } else if (strcmp(argv[1], "--completion") == 0 && argc == 3 && strcmp(argv[2], "bash") == 0) {
        rc = pc_helpgen_bash(stdout, verbs, NVERBS);
    } else {
        fprintf(stderr, "usage: pullcache help --man | --completion bash\n");
        return 2;
    }
    if (fflush(stdout) != 0 || rc != 0) {
        perror("pullcache help: writing");
        return 1;
    }
    return 0;
}

static int run_help(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--man") == 0 || strcmp(argv[1], "--completion") == 0))
        return run_helpgen(argc, argv);
    if (argc < 2) {
        overview(stdout);
        return 0;
    }
    const pc_verb *v = find_verb(argv[1]);
    if (!v) {
        fprintf(stderr, "pullcache: unknown verb '%s'; `pullcache help` lists them\n", argv[1]);
        return 2;
    }
    pc_cli_usage(v);
    return 0;
}

static int run_version(int argc, char **argv)
{
    printf("pullcache %s\n", PC_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        overview(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return run_version(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        overview(stdout);
        return 0;
    }
    const pc_verb *v = find_verb(argv[1]);
    if (!v) {
        fprintf(stderr, "pullcache: unknown verb '%s'; `pullcache help` lists them\n", argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            pc_cli_usage(v);
            return 0;
        }
    }
    return v->run(argc - 1, argv + 1);
}
