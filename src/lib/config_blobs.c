/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * config_blobs.c - the storage.blobs section (config.h pc_config_blobs):
 * its schema, defaults and checks, and the s3 driver's options as the
 * store factory takes them. Apart from config.c so that each storage
 * driver's settings stay in one place.
 *
 *   storage:
 *     blobs:
 *       driver: s3
 *       endpoint: http://127.0.0.1:7480
 *       region: us-east-1           # default
 *       bucket: pullcache
 *       prefix: registry/           # default: none
 *       path_style: true            # default false: bucket.host
 *       credentials_file: /etc/pullcache/s3.credentials   # else AWS_* variables
 *       redirect: false             # presigned GET URLs for blobs
 *       redirect_ttl: 300           # their lifetime, seconds
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

const cyaml_schema_field_t pc_config_blobs_fields[] = {
    CYAML_FIELD_STRING_PTR("driver", CYAML_FLAG_POINTER, pc_config_blobs, driver, 1, 64),
    CYAML_FIELD_STRING_PTR("endpoint", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_blobs,
                           endpoint, 1, 1000),
    CYAML_FIELD_STRING_PTR("region", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_blobs,
                           region, 1, 100),
    CYAML_FIELD_STRING_PTR("bucket", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_blobs,
                           bucket, 1, 255),
    CYAML_FIELD_STRING_PTR("prefix", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_config_blobs,
                           prefix, 0, 500),
    CYAML_FIELD_BOOL("path_style", CYAML_FLAG_OPTIONAL, pc_config_blobs, path_style),
    CYAML_FIELD_STRING_PTR("credentials_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           pc_config_blobs, credentials_file, 1, 4000),
    CYAML_FIELD_BOOL("redirect", CYAML_FLAG_OPTIONAL, pc_config_blobs, redirect),
    CYAML_FIELD_UINT("redirect_ttl", CYAML_FLAG_OPTIONAL, pc_config_blobs, redirect_ttl),
    CYAML_FIELD_END,
};

int pc_config_blobs_prepare(pc_config_blobs **b, const char *default_driver)
{
    if (!*b && !(*b = calloc(1, sizeof(**b))))
        return PC_ENOMEM;
    pc_config_blobs *c = *b;
    if (!c->driver && pc_config_set_str(&c->driver, default_driver))
        return PC_ENOMEM;
    if (!c->redirect_ttl)
        c->redirect_ttl = 300;
    c->s3 = (pc_blob_s3_opts){.s3 = {.endpoint = c->endpoint,
                                     .region = c->region,
                                     .bucket = c->bucket,
                                     .prefix = c->prefix,
                                     .path_style = c->path_style,
                                     .credentials_file = c->credentials_file},
                              .redirect = c->redirect,
                              .redirect_ttl = (long)c->redirect_ttl};
    return 0;
}

int pc_config_blobs_check(const pc_config_blobs *b)
{
    /* the s3 settings are ignored under another driver (serve --ephemeral
     * switches a configured s3 to mem) */
    if (strcmp(b->driver, "s3") != 0)
        return 0;
    if (!b->endpoint || !b->bucket) {
        pc_error_set("storage.blobs: driver s3 needs endpoint (http[s]://host[:port]) and bucket");
        return PC_EINVAL;
    }
    if (strncmp(b->endpoint, "http://", 7) != 0 && strncmp(b->endpoint, "https://", 8) != 0) {
        pc_error_set("storage.blobs.endpoint '%s' must start with http:// or https://",
                     b->endpoint);
        return PC_EINVAL;
    }
    if (b->redirect_ttl > 604800) {
        pc_error_set("storage.blobs.redirect_ttl is at most 604800 (7 days), not %u",
                     b->redirect_ttl);
        return PC_EINVAL;
    }
    return 0;
}

void pc_config_blobs_free(pc_config_blobs *b)
{
    if (!b)
        return;
    free(b->driver);
    free(b->endpoint);
    free(b->region);
    free(b->bucket);
    free(b->prefix);
    free(b->credentials_file);
    free(b);
}
