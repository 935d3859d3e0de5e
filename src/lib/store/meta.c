/*
 * meta.c - the check every meta store passes before the registry uses it:
 * the versions of its handle and of its four tables (store/meta.h) match
 * this program's, and every function is there; and the input checks
 * every backend shares.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "store/meta.h"

#include <stddef.h>
#include <string.h>

/* Whether the n function pointers from first on are all set. The tables
 * are structs of an unsigned version followed only by function pointers. */
static bool all_set(const void *table, size_t size)
{
    typedef void (*fn)(void);
    size_t off = offsetof(pc_meta_reg_ops, blob_link);
    for (; off + sizeof(fn) <= size; off += sizeof(fn)) {
        fn f;
        const unsigned char *p = (const unsigned char *)table + off;
        __builtin_memcpy(&f, p, sizeof(f));
        if (!f)
            return false;
    }
    return true;
}

int pc_meta_check(const pc_metastore *ms)
{
    const char *drv = ms && ms->driver ? ms->driver : "?";
    if (!ms || ms->version != PC_META_VERSION || !ms->free) {
        pc_error_set("meta store %s: interface version %u, this program needs %u", drv,
                     ms ? ms->version : 0, PC_META_VERSION);
        return PC_ENOTSUP;
    }
    struct {
        const char *what;
        const void *table;
        unsigned have, want;
        size_t size;
    } t[] = {
        {"registry", ms->reg, ms->reg ? ms->reg->version : 0, PC_META_REG_VERSION,
         sizeof(pc_meta_reg_ops)},
        {"cache", ms->cache, ms->cache ? ms->cache->version : 0, PC_META_CACHE_VERSION,
         sizeof(pc_meta_cache_ops)},
        {"limiter", ms->limits, ms->limits ? ms->limits->version : 0, PC_META_LIMIT_VERSION,
         sizeof(pc_meta_limit_ops)},
        {"coordination", ms->coord, ms->coord ? ms->coord->version : 0, PC_META_COORD_VERSION,
         sizeof(pc_meta_coord_ops)},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (!t[i].table || t[i].have != t[i].want) {
            pc_error_set("meta store %s: %s table version %u, this program needs %u", drv,
                         t[i].what, t[i].have, t[i].want);
            return PC_ENOTSUP;
        }
        if (!all_set(t[i].table, t[i].size)) {
            pc_error_set("meta store %s: its %s table lacks functions", drv, t[i].what);
            return PC_ENOTSUP;
        }
    }
    return 0;
}

bool pc_meta_repo_ok(const char *repo)
{
    return repo && repo[0] && strnlen(repo, PC_NAME_MAX + 1) <= PC_NAME_MAX;
}

bool pc_meta_tag_ok(const char *tag)
{
    return tag && tag[0] && strnlen(tag, PC_TAG_MAX + 1) <= PC_TAG_MAX;
}

bool pc_meta_digest_ok(const pc_digest *d)
{
    return d && d->str[0] && memchr(d->str, '\0', sizeof(d->str)) != NULL;
}

bool pc_meta_key_ok(const char *key, size_t max)
{
    return key && key[0] && strnlen(key, max) < max;
}

int pc_meta_invalid(const char *what)
{
    pc_error_set("meta store: invalid %s", what);
    return PC_EINVAL;
}
