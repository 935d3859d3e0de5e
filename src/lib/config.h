/*
 * config.h - the daemon's configuration: embedded defaults, a YAML file
 * (libcyaml, unknown keys refused), then command-line flags on top.
 *
 *   http:
 *     listen: 127.0.0.1:5000     # address:port
 *     timeout: 60                # idle connection timeout, seconds
 *     threads: 0                 # worker threads, 0 = number of CPUs
 *     max_connections: 1024
 *   storage:
 *     data: ./data               # blobs + meta.db
 *     upload_ttl: 86400          # seconds an idle upload session is kept
 *   log:
 *     format: text               # text | json
 *     level: info                # error | warn | info | debug
 */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include "pc.h"

typedef struct {
    char *listen;
    unsigned timeout;
    unsigned threads;
    unsigned max_connections;
} pc_config_http;

typedef struct {
    char *data;
    unsigned upload_ttl;
} pc_config_storage;

typedef struct {
    char *format;
    char *level;
} pc_config_log;

typedef struct {
    pc_config_http *http;
    pc_config_storage *storage;
    pc_config_log *log;
} pc_config;

/* Load the configuration: defaults, overlaid with the YAML file at path
 * when path is not NULL. *out is the caller's (pc_config_free). Returns 0,
 * or PC_EINVAL with a message naming the file and the problem. */
int pc_config_load(pc_config **out, const char *path);

/* Check the values (listen address form, log format...). 0 or PC_EINVAL. */
int pc_config_validate(const pc_config *cfg);

/* Replace a string field's value (flags over the file). */
int pc_config_set_str(char **field, const char *value);

/* Split "host:port" / "[v6]:port" into host (size bytes) and port. */
int pc_config_parse_listen(const char *listen, char *host, size_t size, unsigned *port);

void pc_config_free(pc_config *cfg);

#endif
