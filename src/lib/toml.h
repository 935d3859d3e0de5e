/*
 * toml.h - a small TOML reader for the files `pullcache doctor` inspects on
 * a node (containerd's config.toml and hosts.toml, containers-registries.conf
 * v2). Debian ships no C TOML library, so this reads TOML 1.0 into a jansson
 * tree: tables and arrays of tables are objects and arrays of objects;
 * strings (basic, literal, multi-line), integers (decimal, 0x, 0o, 0b),
 * floats, booleans, arrays and inline tables are their JSON kinds. Dates and
 * times are kept as their text (strings): nothing here reads one. Duplicate
 * keys, a key redefined as another kind, unterminated strings, bad escapes,
 * control characters and trailing garbage are errors with a line number.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_TOML_H
#define PC_TOML_H

#include <stddef.h>

#include <jansson.h>

/* The deepest nesting of arrays and inline tables accepted. */
#define PC_TOML_MAX_DEPTH 32

/* Parse len bytes of TOML at text. 0 with *out the document (an object,
 * the caller's: json_decref), or -1 with *out NULL and a message ("line N:
 * what") in err (errsize bytes, NUL-terminated; out of memory says so). */
int pc_toml_parse(const char *text, size_t len, json_t **out, char *err, size_t errsize);

/* Read the file at path and parse it. 0 with *out as above; -1 with a
 * message (the file's path and line) in err; 1 when there is no file at
 * path (ENOENT; *out NULL, err empty). */
int pc_toml_load(const char *path, json_t **out, char *err, size_t errsize);

#endif
