/*
 * meta_sqlite_cache.c - the SQLite meta store's cache bookkeeping:
 * when the mirror last served or fetched each blob, the least recently
 * used candidates for eviction, and the eviction of one of them.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"

#include <stdlib.h>
#include <string.h>

/* A read first (WAL readers never wait and take no lock), the write only
 * when the record is missing or older than PC_SQ_TOUCH_EVERY: a blob served
 * again and again costs one indexed read. (No memory of what was written:
 * a gc in another process may have dropped the record meanwhile.) */
static int sq_access_touch(pc_metastore *ms, const pc_digest *d, uint64_t size, int64_t now)
{
    if (!pc_sq_digest_ok(d))
        return pc_sq_invalid("digest");
    int64_t last = 0;
    int rc = pc_sq_get_int(ms, ST_ACCESS_GET, "access get", "no access record", &last,
                           SQ_ARGS(SQ_TEXT(d->str)));
    if (rc && rc != PC_ENOTFOUND)
        return rc;
    if (rc == 0 && now >= last && now - last < PC_SQ_TOUCH_EVERY)
        return 0;
    return pc_sq_exec(ms, ST_ACCESS_TOUCH, "access touch", NULL,
                      SQ_ARGS(SQ_TEXT(d->str), SQ_INT(size), SQ_INT(now)));
}

/* "\n<name>\n<name>\n" for the upstream names (the caller frees *out). */
static int upstream_list(const char *const *ups, size_t n, char **out)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        if (!ups[i] || !ups[i][0] || strchr(ups[i], '\n') || strchr(ups[i], '/'))
            return pc_sq_invalid("upstream name");
        len += strlen(ups[i]) + 1;
    }
    char *s = malloc(len), *p = s;
    if (!s)
        return PC_ENOMEM;
    *p++ = '\n';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ups[i]);
        memcpy(p, ups[i], l);
        p += l;
        *p++ = '\n';
    }
    *p = '\0';
    *out = s;
    return 0;
}

static int access_row(sqlite3_stmt *st, void *p)
{
    pc_sq_rows *r = p;
    pc_digest d;
    if (pc_sq_col_digest(st, 0, &d) != 0)
        return 0; /* cannot name a blob: nothing to evict */
    return r->cb.access(&d, (uint64_t)sqlite3_column_int64(st, 1),
                        (int64_t)sqlite3_column_int64(st, 2), r->ctx);
}

static int sq_access_lru(pc_metastore *ms, const char *const *upstreams, size_t nups,
                         pc_meta_access_cb cb, void *ctx)
{
    if (!cb || (nups && !upstreams))
        return pc_sq_invalid("eviction query");
    pc_sq_rows r = {.cb.access = cb, .ctx = ctx};
    char *list = NULL;
    int rc = upstream_list(upstreams, nups, &list);
    if (rc == 0)
        rc = pc_sq_each(ms, ST_ACCESS_LRU, "eviction candidates", access_row, &r,
                        SQ_ARGS(SQ_TEXT(list)));
    free(list);
    return rc;
}

/* The check and deletes of access_evict, inside its transaction. */
static int evict_one(pc_metastore *ms, const pc_digest *d, const char *list)
{
    int64_t held = 0;
    int rc = pc_sq_get_int(ms, ST_ACCESS_HELD, "eviction check", "no result", &held,
                           SQ_ARGS(SQ_TEXT(list), SQ_TEXT(d->str)));
    if (rc)
        return rc;
    if (held) {
        pc_error_set("%s is held outside the mirror", d->str);
        return PC_EEXISTS;
    }
    if ((rc = pc_sq_exec(ms, ST_ACCESS_UNLINK, "evict links", NULL, SQ_ARGS(SQ_TEXT(d->str)))))
        return rc;
    return pc_sq_exec(ms, ST_ACCESS_DEL, "evict access", NULL, SQ_ARGS(SQ_TEXT(d->str)));
}

static int sq_access_evict(pc_metastore *ms, const pc_digest *d, const char *const *upstreams,
                           size_t nups)
{
    if (!pc_sq_digest_ok(d) || (nups && !upstreams))
        return pc_sq_invalid("eviction");
    char *list = NULL;
    int rc = upstream_list(upstreams, nups, &list);
    if (rc == 0 && (rc = pc_sq_tx_begin(ms)) == 0)
        rc = pc_sq_tx_end(ms, evict_one(ms, d, list));
    free(list);
    return rc;
}

void pc_sq_cache_install(pc_metastore *ms)
{
    ms->access_touch = sq_access_touch;
    ms->access_lru = sq_access_lru;
    ms->access_evict = sq_access_evict;
}
