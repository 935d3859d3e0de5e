/*
 * yamlerr.c - unknown keys in YAML files explained (yamlerr.h): libcyaml
 * names the key and a backtrace of mapping fields with the line each
 * starts on; the line of the key itself is found in the file, after the
 * line of its mapping, and the valid keys of that mapping come from the
 * schema.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "yamlerr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pc_yamlerr_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63)
        return 99;
    int row[64];
    for (size_t j = 0; j <= m; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* The mapping fields of a value (through sequences and pointers), or NULL. */
static const cyaml_schema_field_t *fields_of(const cyaml_schema_value_t *v)
{
    while (v && (v->type == CYAML_SEQUENCE || v->type == CYAML_SEQUENCE_FIXED))
        v = v->sequence.entry;
    return v && v->type == CYAML_MAPPING ? v->mapping.fields : NULL;
}

/* The line of "key:" in path after line `after` (1-based), 0 if not found. */
static int key_line(const char *path, const char *key, int after)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    int n = 0, found = 0;
    size_t kl = strlen(key);
    while (f && !found && fgets(buf, sizeof(buf), f)) {
        if (++n < after)
            continue;
        const char *p = buf;
        while (*p == ' ' || *p == '\t' || *p == '-' || *p == '{' || *p == ',')
            p++;
        /* the key may also sit inside a flow mapping on this line */
        for (const char *q = p; q && *q; q = strstr(q + 1, key)) {
            if (strncmp(q, key, kl) == 0 && (q == buf || !isalnum((unsigned char)q[-1])) &&
                (q[kl] == ':' || q[kl] == ' ') && strchr(q + kl, ':')) {
                found = n;
                break;
            }
        }
    }
    if (f)
        fclose(f);
    return found;
}

int pc_yamlerr_explain(const char *path, const char *msg, const cyaml_schema_value_t *top,
                       char *out, size_t size)
{
    const char *k = strstr(msg, "Unexpected key: ");
    if (!k)
        return 0;
    char key[128];
    k += strlen("Unexpected key: ");
    size_t kl = strcspn(k, " \t\n");
    if (kl == 0 || kl >= sizeof(key))
        return 0;
    memcpy(key, k, kl);
    key[kl] = '\0';

    /* The backtrace names the enclosing fields innermost first. */
    const char *names[16];
    size_t nlen[16];
    int depth = 0;
    for (const char *p = strstr(k, "in mapping field '"); p && depth < 16;
         p = strstr(p + 1, "in mapping field '")) {
        names[depth] = p + strlen("in mapping field '");
        nlen[depth] = strcspn(names[depth], "'");
        depth++;
    }
    const char *first = strstr(k, "(line: ");
    int after = first ? atoi(first + 7) : 1; /* the innermost mapping's first line */

    /* Walk the schema from the top to the mapping that holds the key. */
    const cyaml_schema_field_t *fields = fields_of(top);
    char where[256] = "";
    size_t wl = 0;
    for (int d = depth - 1; d >= 0 && fields; d--) {
        const cyaml_schema_field_t *f = fields;
        while (f->key && (strlen(f->key) != nlen[d] || strncmp(f->key, names[d], nlen[d]) != 0))
            f++;
        if (!f->key)
            return 0;
        int w = snprintf(where + wl, sizeof(where) - wl, "%s%.*s", wl ? "." : "", (int)nlen[d],
                         names[d]);
        if (w > 0 && (size_t)w < sizeof(where) - wl)
            wl += (size_t)w;
        fields = fields_of(&f->value);
    }
    if (!fields)
        return 0;
    const char *best = NULL;
    int best_d = 99;
    char valid[512] = "";
    size_t vl = 0;
    for (const cyaml_schema_field_t *f = fields; f->key; f++) {
        int d = pc_yamlerr_distance(key, f->key);
        if (d < best_d) {
            best_d = d;
            best = f->key;
        }
        int w = snprintf(valid + vl, sizeof(valid) - vl, "%s%s", vl ? ", " : "", f->key);
        if (w > 0 && (size_t)w < sizeof(valid) - vl)
            vl += (size_t)w;
    }
    int line = key_line(path, key, after);
    char at[32] = "";
    if (line)
        snprintf(at, sizeof(at), " line %d", line);
    char hint[200] = "";
    if (best && best_d <= 2 + (int)strlen(key) / 4)
        snprintf(hint, sizeof(hint), "did you mean '%s'? ", best);
    snprintf(out, size, "%s%s: unknown key '%s' in %s (%skeys there: %s)", path, at, key,
             where[0] ? where : "the top level", hint, valid);
    return 1;
}
