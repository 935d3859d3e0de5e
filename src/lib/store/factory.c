/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store/factory.c - storage chosen by name (store/factory.h): the meta
 * store drivers' table, and the blob drivers through pc_blob_open's own.
 */
#include "factory.h"

#include <stdio.h>
#include <string.h>

static int sqlite_open(const pc_store_opts *o, pc_metastore **out)
{
    char path[4096];
    const char *p = o->meta_path;
    if (!p) {
        if (!o->data_dir) {
            pc_error_set("the sqlite meta store needs a data directory");
            return PC_EINVAL;
        }
        if ((size_t)snprintf(path, sizeof(path), "%s/meta.db", o->data_dir) >= sizeof(path)) {
            pc_error_set("data directory path too long");
            return PC_EINVAL;
        }
        p = path;
    }
    return pc_meta_sqlite_open(out, p);
}

static int mem_open(const pc_store_opts *o, pc_metastore **out)
{
    (void)o;
    return pc_meta_mem_open(out);
}

static int postgres_open(const pc_store_opts *o, pc_metastore **out)
{
    static const pc_pg_opts defaults = {0};
    return pc_meta_pg_open(out, o->pg ? o->pg : &defaults);
}

/* The meta store drivers by name (config: storage.meta.driver). */
static const struct {
    const char *name;
    bool durable;
    int (*open)(const pc_store_opts *o, pc_metastore **out);
} meta_drivers[] = {
    {"sqlite", true, sqlite_open},
    {"mem", false, mem_open},
    {"postgres", true, postgres_open},
};

#define NMETA (sizeof(meta_drivers) / sizeof(meta_drivers[0]))

const char *pc_store_blobs_name(const pc_store_opts *o)
{
    return o->blobs ? o->blobs : PC_STORE_BLOBS_DEFAULT;
}

const char *pc_store_meta_name(const pc_store_opts *o)
{
    return o->meta ? o->meta : PC_STORE_META_DEFAULT;
}

/* The i-th driver of a kind: name and durability, NULL past the last. */
static const char *driver_at(bool meta, size_t i, bool *durable)
{
    if (!meta)
        return pc_blob_driver(i, durable);
    if (i >= NMETA)
        return NULL;
    *durable = meta_drivers[i].durable;
    return meta_drivers[i].name;
}

/* Whether name is a driver of its kind; its durability into *durable. */
static bool known(bool meta, const char *name, bool *durable)
{
    const char *d;
    for (size_t i = 0; (d = driver_at(meta, i, durable)); i++)
        if (strcmp(d, name) == 0)
            return true;
    *durable = false;
    return false;
}

/* "unknown storage.KIND.driver 'NAME' (known: a, b)" into the error. */
static int unknown(bool meta, const char *name)
{
    char list[256] = "";
    size_t n = 0;
    bool durable;
    const char *d;
    for (size_t i = 0; n < sizeof(list) && (d = driver_at(meta, i, &durable)); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", d);
    pc_error_set("storage.%s.driver '%s' is not a known driver (known: %s)",
                 meta ? "meta" : "blobs", name, list);
    return PC_EINVAL;
}

int pc_store_check(const pc_store_opts *o)
{
    bool durable;
    if (!known(false, pc_store_blobs_name(o), &durable))
        return unknown(false, pc_store_blobs_name(o));
    if (!known(true, pc_store_meta_name(o), &durable))
        return unknown(true, pc_store_meta_name(o));
    return 0;
}

bool pc_store_durable(const pc_store_opts *o)
{
    bool blobs = false, meta = false;
    return known(false, pc_store_blobs_name(o), &blobs) && blobs &&
           known(true, pc_store_meta_name(o), &meta) && meta;
}

bool pc_store_is_default(const pc_store_opts *o)
{
    return strcmp(pc_store_blobs_name(o), PC_STORE_BLOBS_DEFAULT) == 0 &&
           strcmp(pc_store_meta_name(o), PC_STORE_META_DEFAULT) == 0;
}

int pc_store_blobs_open(const pc_store_opts *o, pc_blob_backend **out)
{
    bool durable;
    if (!known(false, pc_store_blobs_name(o), &durable)) {
        unknown(false, pc_store_blobs_name(o));
        return PC_ENOTSUP;
    }
    const char *name = pc_store_blobs_name(o);
    return pc_blob_open_opts(name, o->data_dir, strcmp(name, "s3") == 0 ? o->s3 : NULL, out);
}

int pc_store_meta_open(const pc_store_opts *o, pc_metastore **out)
{
    const char *name = pc_store_meta_name(o);
    for (size_t i = 0; i < NMETA; i++)
        if (strcmp(meta_drivers[i].name, name) == 0)
            return meta_drivers[i].open(o, out);
    unknown(true, name);
    return PC_ENOTSUP;
}
