/*
 * config.c - YAML configuration with libcyaml: the schema tables, loading
 * and defaults (checking the values: config_validate.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "config.h"
#include "ref.h"
#include "store/factory.h"
#include "yamlerr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <cyaml/cyaml.h>

static const cyaml_schema_field_t tls_fields[] = {
    CYAML_FIELD_STRING_PTR("cert", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_tls, cert, 1,
                           4000),
    CYAML_FIELD_STRING_PTR("key", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_tls, key, 1,
                           4000),
    CYAML_FIELD_STRING_PTR("client_ca", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_tls,
                           client_ca, 1, 4000),
    CYAML_FIELD_STRING_PTR("client_auth", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_tls,
                           client_auth, 1, 32),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t http_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_http,
                           listen, 1, 300),
    CYAML_FIELD_UINT("timeout", CYAML_FLAG_OPTIONAL, pc_config_http, timeout),
    CYAML_FIELD_UINT("threads", CYAML_FLAG_OPTIONAL, pc_config_http, threads),
    CYAML_FIELD_UINT("workers", CYAML_FLAG_OPTIONAL, pc_config_http, workers),
    CYAML_FIELD_UINT("max_connections", CYAML_FLAG_OPTIONAL, pc_config_http, max_connections),
    CYAML_FIELD_UINT("max_connections_per_ip", CYAML_FLAG_OPTIONAL, pc_config_http,
                     max_connections_per_ip),
    CYAML_FIELD_UINT("header_timeout", CYAML_FLAG_OPTIONAL, pc_config_http, header_timeout),
    CYAML_FIELD_UINT("max_body_size", CYAML_FLAG_OPTIONAL, pc_config_http, max_body_size),
    CYAML_FIELD_STRING_PTR("external_url", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_http,
                           external_url, 1, 1000),
    CYAML_FIELD_MAPPING_PTR("tls", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_http, tls,
                            tls_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t meta_fields[] = {
    CYAML_FIELD_STRING_PTR("driver", CYAML_FLAG_POINTER, pc_config_meta, driver, 1, 64),
    CYAML_FIELD_STRING_PTR("conninfo_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_meta, conninfo_file, 1, 4000),
    CYAML_FIELD_STRING_PTR("conninfo_env", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_meta,
                           conninfo_env, 1, 200),
    CYAML_FIELD_UINT("pool", CYAML_FLAG_OPTIONAL, pc_config_meta, pool),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t storage_fields[] = {
    CYAML_FIELD_STRING_PTR("data", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_storage,
                           data, 1, 4000),
    CYAML_FIELD_UINT("upload_ttl", CYAML_FLAG_OPTIONAL, pc_config_storage, upload_ttl),
    CYAML_FIELD_MAPPING_PTR("blobs", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_storage,
                            blobs, pc_config_blobs_fields),
    CYAML_FIELD_MAPPING_PTR("meta", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_storage,
                            meta, meta_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t log_fields[] = {
    CYAML_FIELD_STRING_PTR("format", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_log,
                           format, 1, 16),
    CYAML_FIELD_STRING_PTR("level", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_log, level,
                           1, 16),
    CYAML_FIELD_STRING_PTR("file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_log, file, 1,
                           4096),
    CYAML_FIELD_STRING_PTR("access", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_log,
                           access, 1, 16),
    CYAML_FIELD_UINT("access_sample", CYAML_FLAG_OPTIONAL, pc_config_log, access_sample),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t str_schema = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 4000),
};

#define STR_LIST(key, type, field)                                                                 \
    CYAML_FIELD_SEQUENCE(key, CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, type, field, &str_schema,  \
                         0, 1024)

static const cyaml_schema_field_t upstream_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, pc_config_upstream, name, 1, 128),
    CYAML_FIELD_STRING_PTR("url", CYAML_FLAG_POINTER, pc_config_upstream, url, 1, 1024),
    CYAML_FIELD_STRING_PTR("username", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_upstream,
                           username, 1, 256),
    CYAML_FIELD_STRING_PTR("password_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_upstream, password_file, 1, 4000),
    CYAML_FIELD_STRING_PTR("password_env", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_upstream, password_env, 1, 256),
    CYAML_FIELD_STRING_PTR("token_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_upstream, token_file, 1, 4000),
    CYAML_FIELD_STRING_PTR("token_env", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_upstream, token_env, 1, 256),
    CYAML_FIELD_UINT("tag_ttl", CYAML_FLAG_OPTIONAL, pc_config_upstream, tag_ttl),
    CYAML_FIELD_UINT("reserve", CYAML_FLAG_OPTIONAL, pc_config_upstream, reserve),
    CYAML_FIELD_UINT("connect_timeout", CYAML_FLAG_OPTIONAL, pc_config_upstream, connect_timeout),
    CYAML_FIELD_UINT("read_timeout", CYAML_FLAG_OPTIONAL, pc_config_upstream, read_timeout),
    CYAML_FIELD_UINT("max_connections", CYAML_FLAG_OPTIONAL, pc_config_upstream, max_connections),
    CYAML_FIELD_STRING_PTR("ca_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_upstream,
                           ca_file, 1, 4000),
    CYAML_FIELD_BOOL("insecure", CYAML_FLAG_OPTIONAL, pc_config_upstream, insecure),
    CYAML_FIELD_BOOL("offline", CYAML_FLAG_OPTIONAL, pc_config_upstream, offline),
    STR_LIST("immutable_tags", pc_config_upstream, immutable_tags),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t upstream_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, pc_config_upstream, upstream_fields),
};

static const cyaml_schema_field_t cache_fields[] = {
    CYAML_FIELD_STRING_PTR("default_upstream", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_cache, default_upstream, 1, 128),
    CYAML_FIELD_UINT("max_size", CYAML_FLAG_OPTIONAL, pc_config_cache, max_size),
    CYAML_FIELD_UINT("max_fetch_size", CYAML_FLAG_OPTIONAL, pc_config_cache, max_fetch_size),
    CYAML_FIELD_UINT("fetch_workers", CYAML_FLAG_OPTIONAL, pc_config_cache, fetch_workers),
    STR_LIST("local_prefixes", pc_config_cache, local_prefixes),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t limit_fields[] = {
    CYAML_FIELD_UINT("pulls", CYAML_FLAG_OPTIONAL, pc_config_limit, pulls),
    CYAML_FIELD_UINT("window", CYAML_FLAG_OPTIONAL, pc_config_limit, window),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t limits_fields[] = {
    CYAML_FIELD_BOOL("enabled", CYAML_FLAG_OPTIONAL, pc_config_limits, enabled),
    CYAML_FIELD_MAPPING("anonymous", CYAML_FLAG_OPTIONAL, pc_config_limits, anonymous,
                        limit_fields),
    CYAML_FIELD_MAPPING("authenticated", CYAML_FLAG_OPTIONAL, pc_config_limits, authenticated,
                        limit_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t group_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, pc_config_group, name, 1, 128),
    STR_LIST("members", pc_config_group, members),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t group_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, pc_config_group, group_fields),
};

static const cyaml_schema_field_t rule_fields[] = {
    CYAML_FIELD_STRING_PTR("prefix", CYAML_FLAG_POINTER, pc_config_rule, prefix, 0, 255),
    CYAML_FIELD_BOOL("readonly", CYAML_FLAG_OPTIONAL, pc_config_rule, readonly),
    STR_LIST("pull", pc_config_rule, pull),
    STR_LIST("push", pc_config_rule, push),
    STR_LIST("delete", pc_config_rule, del),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t rule_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, pc_config_rule, rule_fields),
};

static const cyaml_schema_field_t token_fields[] = {
    CYAML_FIELD_STRING_PTR("realm", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_token,
                           realm, 1, 1024),
    CYAML_FIELD_STRING_PTR("service", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_token,
                           service, 1, 255),
    CYAML_FIELD_STRING_PTR("issuer", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_token,
                           issuer, 1, 255),
    CYAML_FIELD_UINT("lifetime", CYAML_FLAG_OPTIONAL, pc_config_token, lifetime),
    CYAML_FIELD_STRING_PTR("key", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_token, key, 1,
                           4000),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t trust_fields[] = {
    CYAML_FIELD_STRING_PTR("issuer", CYAML_FLAG_POINTER, pc_config_trust, issuer, 1, 255),
    CYAML_FIELD_STRING_PTR("audience", CYAML_FLAG_POINTER, pc_config_trust, audience, 1, 255),
    CYAML_FIELD_STRING_PTR("key", CYAML_FLAG_POINTER, pc_config_trust, key, 1, 4000),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t auth_fields[] = {
    CYAML_FIELD_STRING_PTR("htpasswd", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_auth,
                           htpasswd, 1, 4000),
    CYAML_FIELD_STRING_PTR("challenge", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_auth,
                           challenge, 1, 16),
    CYAML_FIELD_SEQUENCE("groups", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_auth, groups,
                         &group_schema, 0, 1024),
    STR_LIST("admins", pc_config_auth, admins),
    STR_LIST("catalog", pc_config_auth, catalog),
    CYAML_FIELD_SEQUENCE("access", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_auth, access,
                         &rule_schema, 0, 1024),
    CYAML_FIELD_MAPPING_PTR("token", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_auth,
                            token, token_fields),
    CYAML_FIELD_MAPPING_PTR("trust", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_auth,
                            trust, trust_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cluster_fields[] = {
    CYAML_FIELD_STRING_PTR("advertise", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_cluster,
                           advertise, 1, 1024),
    CYAML_FIELD_STRING_PTR("secret_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_cluster, secret_file, 1, 4096),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t top_fields[] = {
    CYAML_FIELD_SEQUENCE("upstreams", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config,
                         upstreams, &upstream_schema, 0, 64),
    CYAML_FIELD_MAPPING_PTR("cache", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, cache,
                            cache_fields),
    CYAML_FIELD_MAPPING_PTR("http", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, http,
                            http_fields),
    CYAML_FIELD_MAPPING_PTR("storage", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, storage,
                            storage_fields),
    CYAML_FIELD_MAPPING_PTR("log", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, log,
                            log_fields),
    CYAML_FIELD_MAPPING_PTR("limits", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, limits,
                            limits_fields),
    CYAML_FIELD_MAPPING_PTR("auth", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, auth,
                            auth_fields),
    CYAML_FIELD_MAPPING_PTR("cluster", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config, cluster,
                            cluster_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, pc_config, top_fields),
};

static _Thread_local char cyaml_msg[256];

static void cyaml_log_capture(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));
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

static void upstream_defaults(pc_config_upstream *u)
{
    if (!u->tag_ttl)
        u->tag_ttl = 300;
    if (!u->connect_timeout)
        u->connect_timeout = 5;
    if (!u->read_timeout)
        u->read_timeout = 30;
    if (!u->max_connections)
        u->max_connections = 16;
}

bool pc_config_upstream_name_ok(const char *s)
{
    /* one repository-name component: [a-z0-9]+([._-][a-z0-9]+)* */
    bool need = true;
    size_t n = 0;
    for (; *s; s++, n++) {
        bool alnum = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9');
        if (alnum)
            need = false;
        else if (!need && (*s == '.' || *s == '_' || *s == '-'))
            need = true;
        else
            return false;
    }
    return !need && n <= 128;
}

static void upstream_clear(pc_config_upstream *u)
{
    free(u->name);
    free(u->url);
    free(u->username);
    free(u->password_file);
    free(u->password_env);
    free(u->token_file);
    free(u->token_env);
    free(u->ca_file);
    for (unsigned i = 0; i < u->immutable_tags_count; i++)
        free(u->immutable_tags[i]);
    free(u->immutable_tags);
    memset(u, 0, sizeof(*u));
}

int pc_config_add_upstream(pc_config *c, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        pc_error_set("--upstream wants NAME=URL, e.g. docker.io=https://registry-1.docker.io");
        return PC_EINVAL;
    }
    char name[129];
    size_t nl = (size_t)(eq - spec);
    if (nl >= sizeof(name)) {
        pc_error_set("upstream name too long");
        return PC_EINVAL;
    }
    memcpy(name, spec, nl);
    name[nl] = '\0';
    pc_config_upstream *u = NULL;
    for (unsigned i = 0; i < c->upstreams_count; i++)
        if (strcmp(c->upstreams[i].name, name) == 0)
            u = &c->upstreams[i];
    if (u) {
        return pc_config_set_str(&u->url, eq + 1);
    }
    pc_config_upstream *grown =
        realloc(c->upstreams, (c->upstreams_count + 1) * sizeof(*c->upstreams));
    if (!grown)
        return PC_ENOMEM;
    c->upstreams = grown;
    u = &c->upstreams[c->upstreams_count];
    memset(u, 0, sizeof(*u));
    if (pc_config_set_str(&u->name, name) || pc_config_set_str(&u->url, eq + 1)) {
        upstream_clear(u);
        return PC_ENOMEM;
    }
    upstream_defaults(u);
    c->upstreams_count++;
    return 0;
}

/* Docker Hub's published budgets are the defaults: 100 anonymous and 200
 * authenticated pulls per 6 hours. */
static void limit_default(pc_config_limit *l, unsigned pulls, unsigned window)
{
    if (!l->pulls)
        l->pulls = pulls;
    if (!l->window)
        l->window = window;
}

int pc_config_parse_limit(const char *spec, pc_config_limit *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long pulls = strtoul(spec, &end, 10), window = out->window;
    bool ok = spec[0] >= '0' && spec[0] <= '9' && !errno && pulls > 0 && pulls <= UINT32_MAX;
    if (ok && *end == '/') {
        const char *w = end + 1;
        window = strtoul(w, &end, 10);
        ok = w[0] >= '0' && w[0] <= '9' && !errno && window > 0 && window <= UINT32_MAX;
    }
    if (!ok || *end) {
        pc_error_set("a pull limit is PULLS/WINDOW_SECONDS, e.g. 100/21600, not '%s'", spec);
        return PC_EINVAL;
    }
    if (window > PC_CONFIG_LIMIT_WINDOW_MAX) {
        pc_error_set("pull limit '%s': the window is at most %u seconds (30 days)", spec,
                     PC_CONFIG_LIMIT_WINDOW_MAX);
        return PC_EINVAL;
    }
    out->pulls = (unsigned)pulls;
    out->window = (unsigned)window;
    return 0;
}

/* storage.meta: sqlite when not configured; the postgres options. */
static int meta_default(pc_config_meta **m)
{
    if (!*m && !(*m = calloc(1, sizeof(**m))))
        return PC_ENOMEM;
    (*m)->pg = (pc_pg_opts){.conninfo_file = (*m)->conninfo_file,
                            .conninfo_env = (*m)->conninfo_env,
                            .pool = (*m)->pool};
    return (*m)->driver ? 0 : pc_config_set_str(&(*m)->driver, PC_STORE_META_DEFAULT);
}

void pc_config_store_opts(const pc_config *c, pc_store_opts *o)
{
    *o = (pc_store_opts){
        .data_dir = c->storage->data,
        .blobs = c->storage->blobs ? c->storage->blobs->driver : NULL,
        .meta = c->storage->meta ? c->storage->meta->driver : NULL,
        .pg = c->storage->meta ? &c->storage->meta->pg : NULL,
        .s3 = c->storage->blobs ? &c->storage->blobs->s3 : NULL,
    };
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
    if (!c->http->max_connections_per_ip)
        c->http->max_connections_per_ip = PC_CONFIG_PER_IP_DEFAULT;
    if (!c->http->header_timeout)
        c->http->header_timeout = PC_CONFIG_HEADER_TIMEOUT_DEFAULT;
    if (!c->http->max_body_size)
        c->http->max_body_size = PC_CONFIG_MAX_BODY_DEFAULT;
    if (!c->http->workers)
        c->http->workers = PC_CONFIG_WORKERS_DEFAULT;
    if (!c->storage->data && pc_config_set_str(&c->storage->data, "./data"))
        return PC_ENOMEM;
    if (!c->storage->upload_ttl)
        c->storage->upload_ttl = 86400;
    if (pc_config_blobs_prepare(&c->storage->blobs, PC_STORE_BLOBS_DEFAULT) ||
        meta_default(&c->storage->meta))
        return PC_ENOMEM;
    if (!c->log->format && pc_config_set_str(&c->log->format, "text"))
        return PC_ENOMEM;
    if (!c->log->level && pc_config_set_str(&c->log->level, "info"))
        return PC_ENOMEM;
    if (!c->log->access && pc_config_set_str(&c->log->access, "all"))
        return PC_ENOMEM;
    if (!c->log->access_sample)
        c->log->access_sample = 1;
    if (!c->cache && !(c->cache = calloc(1, sizeof(*c->cache))))
        return PC_ENOMEM;
    if (!c->limits && !(c->limits = calloc(1, sizeof(*c->limits))))
        return PC_ENOMEM;
    limit_default(&c->limits->anonymous, 100, 21600);
    limit_default(&c->limits->authenticated, 200, 21600);
    return 0;
}

int pc_config_add_local_prefix(pc_config *c, const char *prefix)
{
    pc_config_cache *k = c->cache;
    char **n = realloc(k->local_prefixes, (k->local_prefixes_count + 1) * sizeof(*n));
    if (!n)
        return PC_ENOMEM;
    k->local_prefixes = n;
    if (!(n[k->local_prefixes_count] = strdup(prefix)))
        return PC_ENOMEM;
    k->local_prefixes_count++;
    return 0;
}

int pc_config_finalize(pc_config *c)
{
    if (c->upstreams_count == 0 &&
        pc_config_add_upstream(c, "docker.io=https://registry-1.docker.io"))
        return PC_ENOMEM;
    for (unsigned i = 0; i < c->upstreams_count; i++)
        upstream_defaults(&c->upstreams[i]);
    /* Bare /v2/<name> paths are the private registry unless the operator
     * makes an upstream serve them (what Docker's registry-mirrors needs). */
    if (!c->cache->default_upstream && pc_config_set_str(&c->cache->default_upstream, "none"))
        return PC_ENOMEM;
    if (!c->cache->max_fetch_size)
        c->cache->max_fetch_size = PC_CONFIG_MAX_FETCH_DEFAULT;
    if (!c->cache->fetch_workers)
        c->cache->fetch_workers = PC_CONFIG_WORKERS_DEFAULT;
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
            char why[1024];
            if (pc_yamlerr_explain(path, cyaml_msg, &top_schema, why, sizeof(why)))
                pc_error_set("config file %s", why);
            else
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

bool pc_config_auth_enabled(const pc_config *c)
{
    return c->auth && (c->auth->htpasswd || c->auth->trust);
}

static void strs_free(char **v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void auth_free(pc_config_auth *a)
{
    if (!a)
        return;
    free(a->htpasswd);
    free(a->challenge);
    for (unsigned i = 0; i < a->groups_count; i++) {
        free(a->groups[i].name);
        strs_free(a->groups[i].members, a->groups[i].members_count);
    }
    free(a->groups);
    strs_free(a->admins, a->admins_count);
    strs_free(a->catalog, a->catalog_count);
    for (unsigned i = 0; i < a->access_count; i++) {
        pc_config_rule *r = &a->access[i];
        free(r->prefix);
        strs_free(r->pull, r->pull_count);
        strs_free(r->push, r->push_count);
        strs_free(r->del, r->del_count);
    }
    free(a->access);
    if (a->token) {
        free(a->token->realm);
        free(a->token->service);
        free(a->token->issuer);
        free(a->token->key);
        free(a->token);
    }
    if (a->trust) {
        free(a->trust->issuer);
        free(a->trust->audience);
        free(a->trust->key);
        free(a->trust);
    }
    free(a);
}

void pc_config_free(pc_config *c)
{
    if (!c)
        return;
    if (c->http) {
        free(c->http->listen);
        free(c->http->external_url);
        if (c->http->tls) {
            free(c->http->tls->cert);
            free(c->http->tls->key);
            free(c->http->tls->client_ca);
            free(c->http->tls->client_auth);
            free(c->http->tls);
        }
    }
    if (c->storage) {
        free(c->storage->data);
        pc_config_blobs_free(c->storage->blobs);
        if (c->storage->meta) {
            free(c->storage->meta->driver);
            free(c->storage->meta->conninfo_file);
            free(c->storage->meta->conninfo_env);
            free(c->storage->meta);
        }
    }
    if (c->log) {
        free(c->log->format);
        free(c->log->level);
        free(c->log->file);
        free(c->log->access);
    }
    for (unsigned i = 0; i < c->upstreams_count; i++)
        upstream_clear(&c->upstreams[i]);
    free(c->upstreams);
    if (c->cache) {
        free(c->cache->default_upstream);
        for (unsigned i = 0; i < c->cache->local_prefixes_count; i++)
            free(c->cache->local_prefixes[i]);
        free(c->cache->local_prefixes);
    }
    free(c->cache);
    free(c->limits);
    auth_free(c->auth);
    free(c->http);
    free(c->storage);
    free(c->log);
    if (c->cluster) {
        free(c->cluster->advertise);
        free(c->cluster->secret_file);
        if (c->cluster->secret) {
            OPENSSL_cleanse(c->cluster->secret, strlen(c->cluster->secret));
            free(c->cluster->secret);
        }
    }
    free(c->cluster);
    free(c);
}

int pc_config_cluster_secret_load(pc_config *c)
{
    if (!c->cluster || !c->cluster->secret_file || c->cluster->secret)
        return 0;
    FILE *f = fopen(c->cluster->secret_file, "re");
    if (!f) {
        pc_error_set("cluster.secret_file %s: %s", c->cluster->secret_file, strerror(errno));
        return PC_ENOTFOUND;
    }
    char line[1024];
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    size_t n = got ? strcspn(line, "\r\n") : 0;
    line[n] = '\0';
    int rc = 0;
    if (n < 16) {
        pc_error_set("cluster.secret_file %s: the secret (its first line) must have at least 16 "
                     "characters; make one with `openssl rand -hex 32`",
                     c->cluster->secret_file);
        rc = PC_EINVAL;
    } else if (!(c->cluster->secret = strdup(line))) {
        rc = PC_ENOMEM;
    }
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}
