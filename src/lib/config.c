/*
 * config.c - YAML configuration with libcyaml: the schema tables, defaults
 * and validation.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

static const cyaml_schema_field_t http_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_http,
                           listen, 1, 300),
    CYAML_FIELD_UINT("timeout", CYAML_FLAG_OPTIONAL, pc_config_http, timeout),
    CYAML_FIELD_UINT("threads", CYAML_FLAG_OPTIONAL, pc_config_http, threads),
    CYAML_FIELD_UINT("max_connections", CYAML_FLAG_OPTIONAL, pc_config_http, max_connections),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t storage_fields[] = {
    CYAML_FIELD_STRING_PTR("data", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_storage,
                           data, 1, 4000),
    CYAML_FIELD_UINT("upload_ttl", CYAML_FLAG_OPTIONAL, pc_config_storage, upload_ttl),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t log_fields[] = {
    CYAML_FIELD_STRING_PTR("format", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_log,
                           format, 1, 16),
    CYAML_FIELD_STRING_PTR("level", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_log, level,
                           1, 16),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t top_fields[] = {
    CYAML_FIELD_MAPPING_PTR("http", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, http,
                            http_fields),
    CYAML_FIELD_MAPPING_PTR("storage", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, storage,
                            storage_fields),
    CYAML_FIELD_MAPPING_PTR("log", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, log,
                            log_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, pc_config, top_fields),
};

static _Thread_local char cyaml_msg[256];

static void cyaml_log_capture(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    if (level < CYAML_LOG_ERROR)
        return;
    size_t n = strlen(cyaml_msg);
    if (n + 2 < sizeof(cyaml_msg)) {
        if (n)
            cyaml_msg[n++] = ' ';
        vsnprintf(cyaml_msg + n, sizeof(cyaml_msg) - n, fmt, args);
    }
    n = strlen(cyaml_msg);
    while (n && (cyaml_msg[n - 1] == '\n' || cyaml_msg[n - 1] == ' '))
        cyaml_msg[--n] = '\0';
}

static const cyaml_config_t cyaml_cfg = {
    .log_fn = cyaml_log_capture,
    .mem_fn = cyaml_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_DEFAULT,
};

int pc_config_set_str(char **field, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return PC_ENOMEM;
    free(*field);
    *field = s;
    return 0;
}

/* Fill every missing section and value with the embedded default. Strings
 * that libcyaml allocated are freed with free(): cyaml_mem uses the libc
 * allocator. */
static int apply_defaults(pc_config *c)
{
    if (!c->http && !(c->http = calloc(1, sizeof(*c->http))))
        return PC_ENOMEM;
    if (!c->storage && !(c->storage = calloc(1, sizeof(*c->storage))))
        return PC_ENOMEM;
    if (!c->log && !(c->log = calloc(1, sizeof(*c->log))))
        return PC_ENOMEM;
    if (!c->http->listen && pc_config_set_str(&c->http->listen, "127.0.0.1:5000"))
        return PC_ENOMEM;
    if (!c->http->timeout)
        c->http->timeout = 60;
    if (!c->http->max_connections)
        c->http->max_connections = 1024;
    if (!c->storage->data && pc_config_set_str(&c->storage->data, "./data"))
        return PC_ENOMEM;
    if (!c->storage->upload_ttl)
        c->storage->upload_ttl = 86400;
    if (!c->log->format && pc_config_set_str(&c->log->format, "text"))
        return PC_ENOMEM;
    if (!c->log->level && pc_config_set_str(&c->log->level, "info"))
        return PC_ENOMEM;
    return 0;
}

int pc_config_load(pc_config **out, const char *path)
{
    pc_config *c = NULL;
    int rc;
    *out = NULL;
    if (path) {
        FILE *f = fopen(path, "r");
        if (!f) {
            pc_error_set("cannot read config file %s: %s", path, strerror(errno));
            return PC_EINVAL;
        }
        fclose(f);
        cyaml_msg[0] = '\0';
        cyaml_err_t err = cyaml_load_file(path, &cyaml_cfg, &top_schema, (cyaml_data_t **)&c, NULL);
        if (err != CYAML_OK) {
            pc_error_set("config file %s: %s%s%s", path, cyaml_strerror(err),
                         cyaml_msg[0] ? ": " : "", cyaml_msg);
            return PC_EINVAL;
        }
    }
    if (!c && !(c = calloc(1, sizeof(*c))))
        return PC_ENOMEM;
    if ((rc = apply_defaults(c))) {
        pc_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int pc_config_parse_listen(const char *listen, char *host, size_t size, unsigned *port)
{
    const char *colon;
    size_t hlen;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':')
            goto bad;
        colon = end + 1;
        listen++;
        hlen = (size_t)(end - listen);
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            goto bad;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= size)
        goto bad;
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || !colon[1] || *end || p == 0 || p > 65535)
        goto bad;
    *port = (unsigned)p;
    return 0;
bad:
    pc_error_set("invalid listen address '%s': want HOST:PORT, e.g. 127.0.0.1:5000", listen);
    return PC_EINVAL;
}

int pc_config_validate(const pc_config *c)
{
    char host[256];
    unsigned port;
    if (pc_config_parse_listen(c->http->listen, host, sizeof(host), &port))
        return PC_EINVAL;
    if (strcmp(c->log->format, "text") != 0 && strcmp(c->log->format, "json") != 0) {
        pc_error_set("log.format must be text or json, not '%s'", c->log->format);
        return PC_EINVAL;
    }
    static const char *levels[] = {"error", "warn", "info", "debug"};
    bool ok = false;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        ok |= strcmp(c->log->level, levels[i]) == 0;
    if (!ok) {
        pc_error_set("log.level must be error, warn, info or debug, not '%s'", c->log->level);
        return PC_EINVAL;
    }
    if (c->http->threads > 256) {
        pc_error_set("http.threads must be at most 256");
        return PC_EINVAL;
    }
    return 0;
}

void pc_config_free(pc_config *c)
{
    if (!c)
        return;
    if (c->http)
        free(c->http->listen);
    if (c->storage)
        free(c->storage->data);
    if (c->log) {
        free(c->log->format);
        free(c->log->level);
    }
    free(c->http);
    free(c->storage);
    free(c->log);
    free(c);
}
