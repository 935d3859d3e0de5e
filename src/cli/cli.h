/*
 * cli.h - the verb table of the pullcache binary. Each verb is a function
 * with its own usage text; main.c dispatches.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_CLI_H
#define PC_CLI_H

typedef struct {
    const char *name;
    const char *summary;
    const char *usage; /* full --help text */
    int (*run)(int argc, char **argv);
} pc_verb;

/* Print a verb's usage to stdout. */
void pc_cli_usage(const pc_verb *v);

/* Verbs (one file each). */
int pc_cli_serve(int argc, char **argv);
extern const char pc_cli_serve_usage[];
int pc_cli_config(int argc, char **argv);
extern const char pc_cli_config_usage[];
int pc_cli_doctor(int argc, char **argv);
extern const char pc_cli_doctor_usage[];
int pc_cli_gc(int argc, char **argv);
extern const char pc_cli_gc_usage[];
int pc_cli_cache(int argc, char **argv);
extern const char pc_cli_cache_usage[];
int pc_cli_ls(int argc, char **argv);
extern const char pc_cli_ls_usage[];
int pc_cli_rm(int argc, char **argv);
extern const char pc_cli_rm_usage[];
int pc_cli_tags(int argc, char **argv);
extern const char pc_cli_tags_usage[];
int pc_cli_inspect(int argc, char **argv);
extern const char pc_cli_inspect_usage[];
int pc_cli_fsck(int argc, char **argv);
extern const char pc_cli_fsck_usage[];
int pc_cli_ratelimit(int argc, char **argv);
extern const char pc_cli_ratelimit_usage[];
int pc_cli_pull(int argc, char **argv);
extern const char pc_cli_pull_usage[];
int pc_cli_loadgen(int argc, char **argv);
extern const char pc_cli_loadgen_usage[];
int pc_cli_copy(int argc, char **argv);
extern const char pc_cli_copy_usage[];
int pc_cli_sync(int argc, char **argv);
extern const char pc_cli_sync_usage[];
int pc_cli_migrate(int argc, char **argv);
extern const char pc_cli_migrate_usage[];

#endif
