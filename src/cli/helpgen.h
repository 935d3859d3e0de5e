/*
 * helpgen.h - the man page and the shell completion, generated from the
 * verb table's help texts (one source: what a verb's --help prints is what
 * pullcache(1) says and what the completion offers).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_HELPGEN_H
#define PC_HELPGEN_H

#include <stddef.h>
#include <stdio.h>

#include "cli.h"

/* Write pullcache(1) in roff (man macros) to out: NAME, SYNOPSIS, the
 * overview text (what `pullcache --help` prints: verbs and exit codes) as
 * DESCRIPTION, each verb's summary and full usage text under VERBS, FILES,
 * SEE ALSO. The texts are copied verbatim (no-fill), escaped for roff.
 * Returns 0, or -1 when out fails. */
int pc_helpgen_man(FILE *out, const pc_verb *verbs, size_t n, const char *overview);

/* Write a bash completion script to out: it completes the verbs (and the
 * global --help/--version), each verb's --flags as its usage text names
 * them (plus the shared connection flags when the text refers to them), and
 * the sub-commands its synopsis lists (`config containerd|podman|...`,
 * `cache ... ls`); anything else falls back to file names. Returns 0, or -1
 * when out fails. */
int pc_helpgen_bash(FILE *out, const pc_verb *verbs, size_t n);

/* Every --flag text names, each once, in order of first appearance, the
 * way `grep -o -- '--[a-z][a-z0-9-]*'` finds them; cb gets the flag
 * ("--name", NUL-terminated) and arg. */
void pc_helpgen_flags(const char *text, void (*cb)(const char *flag, void *arg), void *arg);

#endif
