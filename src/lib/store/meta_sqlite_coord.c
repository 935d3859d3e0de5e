/*
 * meta_sqlite_coord.c - the SQLite meta store's leases and notes
 * (store/meta.h, coordination): every process on one meta.db shares them,
 * with the wall clock in milliseconds as the store's clock.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"

#include <string.h>

#include "util.h"

static int check_lease(const char *key, const char *owner, long ttl_ms)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("lease key");
    if (owner && !pc_meta_key_ok(owner, PC_LEASE_OWNER_MAX))
        return pc_meta_invalid("lease owner");
    if (ttl_ms < 0)
        return pc_meta_invalid("lease time");
    return 0;
}

static int lease_read(pc_metastore *ms, const char *key, int64_t now, pc_meta_lease *out)
{
    pc_sq_query q;
    int rc = pc_sq_query_row(&q, ms, ST_LEASE_GET, "lease get", "lease: not held",
                             SQ_ARGS(SQ_TEXT(key), SQ_INT(now)));
    if (rc)
        return rc;
    pc_meta_lease l;
    memset(&l, 0, sizeof(l));
    rc = pc_sq_col_text(q.st, 0, l.owner, sizeof(l.owner));
    l.expires_ms = sqlite3_column_int64(q.st, 1);
    pc_sq_query_close(&q);
    if (rc == 0 && out)
        *out = l;
    return rc;
}

/* The writes of lease_take, in its transaction: the take, then (when it
 * did not take) who holds it. */
static int take_write(pc_metastore *ms, const char *key, const char *owner, long ttl_ms,
                      int64_t now, pc_meta_lease *held)
{
    int64_t changes = 0;
    int rc = pc_sq_exec(ms, ST_LEASE_PRUNE, "lease prune", NULL, SQ_ARGS(SQ_INT(now)));
    if (rc == 0)
        rc = pc_sq_exec(ms, ST_LEASE_TAKE, "lease take", &changes,
                        SQ_ARGS(SQ_TEXT(key), SQ_TEXT(owner), SQ_INT(now), SQ_INT(ttl_ms)));
    if (rc || changes)
        return rc;
    rc = lease_read(ms, key, now, held);
    if (rc == PC_ENOTFOUND) {
        /* not taken yet not held: cannot be inside one write transaction */
        pc_error_set("lease %s: neither taken nor held", key);
        return PC_ERR;
    }
    if (rc == 0) {
        pc_error_set("lease %s is held by another owner", key);
        rc = PC_EEXISTS;
    }
    return rc;
}

static int sq_lease_take(pc_metastore *ms, const char *key, const char *owner, long ttl_ms,
                         pc_meta_lease *held)
{
    int rc = check_lease(key, owner, ttl_ms);
    if (rc)
        return rc;
    if (!owner || ttl_ms == 0)
        return pc_meta_invalid(owner ? "lease time" : "lease owner");
    if ((rc = pc_sq_tx_begin(ms)))
        return rc;
    int64_t now = pc_util_now_ms();
    rc = take_write(ms, key, owner, ttl_ms, now, held);
    /* a refusal is an answer, not a failure: commit the prune either way */
    int end = pc_sq_tx_end(ms, rc == PC_EEXISTS ? 0 : rc);
    return end ? end : rc;
}

static int sq_lease_renew(pc_metastore *ms, const char *key, const char *owner, long ttl_ms)
{
    int rc = check_lease(key, owner, ttl_ms);
    if (rc)
        return rc;
    if (!owner || ttl_ms == 0)
        return pc_meta_invalid(owner ? "lease time" : "lease owner");
    return pc_sq_delete(
        ms, ST_LEASE_RENEW, "lease renew",
        SQ_ARGS(SQ_TEXT(key), SQ_TEXT(owner), SQ_INT(pc_util_now_ms()), SQ_INT(ttl_ms)));
}

static int sq_lease_release(pc_metastore *ms, const char *key, const char *owner)
{
    int rc = check_lease(key, owner, 0);
    if (rc)
        return rc;
    if (!owner)
        return pc_meta_invalid("lease owner");
    return pc_sq_delete(ms, ST_LEASE_RELEASE, "lease release",
                        SQ_ARGS(SQ_TEXT(key), SQ_TEXT(owner)));
}

static int sq_lease_get(pc_metastore *ms, const char *key, pc_meta_lease *out)
{
    int rc = check_lease(key, NULL, 0);
    if (rc)
        return rc;
    return lease_read(ms, key, pc_util_now_ms(), out);
}

static int sq_note_put(pc_metastore *ms, const char *key, const char *value)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("note key");
    if (!value || strnlen(value, PC_NOTE_MAX) >= PC_NOTE_MAX)
        return pc_meta_invalid("note value");
    return pc_sq_exec(ms, ST_NOTE_PUT, "note put", NULL,
                      SQ_ARGS(SQ_TEXT(key), SQ_TEXT(value), SQ_INT(pc_util_now_ms())));
}

static int sq_note_get(pc_metastore *ms, const char *key, char *value, size_t size,
                       int64_t *updated_ms)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("note key");
    if (!value || !size)
        return pc_meta_invalid("note buffer");
    pc_sq_query q;
    int rc =
        pc_sq_query_row(&q, ms, ST_NOTE_GET, "note get", "note: not found", SQ_ARGS(SQ_TEXT(key)));
    if (rc)
        return rc;
    const char *v = (const char *)sqlite3_column_text(q.st, 0);
    size_t n = v ? strlen(v) : 0;
    if (n >= size) {
        pc_error_set("note %s: %zu bytes do not fit in %zu", key, n, size);
        rc = PC_ETOOBIG;
    } else {
        memcpy(value, v ? v : "", n + 1);
        if (updated_ms)
            *updated_ms = sqlite3_column_int64(q.st, 1);
    }
    pc_sq_query_close(&q);
    return rc;
}

void pc_sq_coord_install(pc_meta_coord_ops *ops)
{
    ops->lease_take = sq_lease_take;
    ops->lease_renew = sq_lease_renew;
    ops->lease_release = sq_lease_release;
    ops->lease_get = sq_lease_get;
    ops->note_put = sq_note_put;
    ops->note_get = sq_note_get;
}
