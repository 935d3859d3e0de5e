/*
 * yamlerr.h - turning libcyaml's message about an unknown key into one an
 * operator can act on: the file, the line of the key, the mapping it is in,
 * the nearest valid key and the keys that mapping takes. Used by the
 * configuration (config.c) and the sync file (sync.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_YAMLERR_H
#define PC_YAMLERR_H

#include <stddef.h>

#include <cyaml/cyaml.h>

/* When msg (libcyaml's captured log: "Unexpected key: K ... in mapping field
 * 'P' (line: N ...) ...") is about an unknown key, write "PATH line L:
 * unknown key 'K' in P (did you mean 'X'? keys there: ...)" into out and
 * return 1; else 0 (out untouched). top is the document's schema. */
int pc_yamlerr_explain(const char *path, const char *msg, const cyaml_schema_value_t *top,
                       char *out, size_t size);

/* The edit distance of a and b (insertions, deletions, substitutions),
 * for strings of at most 63 bytes; 99 beyond. */
int pc_yamlerr_distance(const char *a, const char *b);

#endif
