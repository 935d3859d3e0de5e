/*
 * fuzz_config.c - libFuzzer target for the daemon's configuration
 * (config.c, yamlerr.c). The input is a YAML file: it is written to a
 * temporary file and loaded (pc_config_load, then pc_config_finalize and
 * pc_config_validate, as serve does); its lines are also given to the flag
 * parsers (--upstream, --limit-*, --listen, --local-prefix), and it is read
 * as a libcyaml message by pc_yamlerr_explain over a small schema (the
 * real messages name keys taken from the file). Besides the sanitizers and
 * the leak checker, it checks that a loaded configuration has its defaults
 * and that failures say why.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cyaml/cyaml.h>

#include "config.h"
#include "yamlerr.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A schema with nesting like the configuration's, for pc_yamlerr_explain. */
typedef struct {
    char *name;
    unsigned ttl;
} fz_item;
typedef struct {
    char *listen;
    fz_item *items;
    unsigned items_count;
} fz_http;
typedef struct {
    fz_http *http;
} fz_top;
static const cyaml_schema_field_t item_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, fz_item, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("ttl", CYAML_FLAG_OPTIONAL, fz_item, ttl),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t item_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, fz_item, item_fields),
};
static const cyaml_schema_field_t http_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, fz_http, listen, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("items", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, fz_http, items,
                         &item_schema, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_field_t top_fields[] = {
    CYAML_FIELD_MAPPING_PTR("http", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, fz_top, http,
                            http_fields),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, fz_top, top_fields),
};

static char path[64];

static void check_lines(char *s)
{
    pc_config *cfg = NULL;
    if (pc_config_load(&cfg, NULL) != 0)
        return;
    for (char *line = s, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        pc_config_limit lim = {0, 0};
        if (pc_config_parse_limit(line, &lim) == 0)
            CHECK(lim.pulls > 0 && lim.window <= PC_CONFIG_LIMIT_WINDOW_MAX);
        char host[256];
        unsigned port = 0;
        if (pc_config_parse_listen(line, host, sizeof(host), &port) == 0)
            CHECK(port <= 65535 && strlen(host) < sizeof(host));
        char tiny[4];
        (void)pc_config_parse_listen(line, tiny, sizeof(tiny), &port);
        (void)pc_config_upstream_name_ok(line);
        if (cfg->upstreams_count < 32)
            (void)pc_config_add_upstream(cfg, line);
        if (cfg->cache->local_prefixes_count < 32)
            (void)pc_config_add_local_prefix(cfg, line);
    }
    if (pc_config_finalize(cfg) == 0)
        (void)pc_config_validate(cfg);
    pc_config_free(cfg);
}

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) { /* one file, rewritten for every input, removed at exit */
        snprintf(path, sizeof(path), "/tmp/fuzz_config.%d.yml", (int)getpid());
        atexit(remove_file);
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);

    pc_config *cfg = NULL;
    int rc = pc_config_load(&cfg, path);
    if (rc == 0) {
        CHECK(cfg && cfg->http && cfg->http->listen && cfg->storage && cfg->log && cfg->cache);
        if (pc_config_finalize(cfg) == 0) {
            CHECK(cfg->upstreams_count > 0);
            (void)pc_config_validate(cfg);
        }
        (void)pc_config_auth_enabled(cfg);
        pc_config_free(cfg);
    } else {
        CHECK(rc == PC_EINVAL && !cfg);
        CHECK(pc_error_last()[0]);
    }

    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char why[1024];
    if (pc_yamlerr_explain(path, s, &top_schema, why, sizeof(why)))
        CHECK(memchr(why, '\0', sizeof(why)));
    char small[16];
    (void)pc_yamlerr_explain(path, s, &top_schema, small, sizeof(small));
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        int d = pc_yamlerr_distance(s, nl + 1);
        CHECK(d >= 0 && d <= 99);
        *nl = '\n';
    }
    check_lines(s);
    free(s);
    return 0;
}
