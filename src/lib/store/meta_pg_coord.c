/*
 * meta_pg_coord.c - the PostgreSQL meta store's leases and notes
 * (store/meta.h, coordination): one table each that every replica on the
 * database shares, with the database server's clock (clock_timestamp(),
 * milliseconds) as the one clock, so replicas whose clocks differ agree on
 * when a lease ran out. A take is one INSERT ... ON CONFLICT DO UPDATE
 * whose WHERE lets it through only when the lease is free, expired or the
 * taker's own: atomic without a transaction.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

#include <stdatomic.h>
#include <string.h>

static int check_lease(const char *key, const char *owner, bool need_owner, long ttl_ms,
                       bool need_ttl)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("lease key");
    if ((owner || need_owner) && !pc_meta_key_ok(owner, PC_LEASE_OWNER_MAX))
        return pc_meta_invalid("lease owner");
    if (need_ttl && ttl_ms <= 0)
        return pc_meta_invalid("lease time");
    return 0;
}

static int lease_read(pc_metastore *ms, const char *key, pc_meta_lease *out)
{
    pc_pg_query q;
    int rc = pc_pg_query_row(&q, ms, PG_LEASE_GET, "lease get", "lease: not held",
                             PG_ARGS(PG_TEXT(key)));
    if (rc)
        return rc;
    pc_meta_lease l;
    memset(&l, 0, sizeof(l));
    rc = pc_pg_col_text(q.res, 0, 0, l.owner, sizeof(l.owner));
    l.expires_ms = pc_pg_col_int(q.res, 0, 1);
    pc_pg_query_close(&q);
    if (rc == 0 && out)
        *out = l;
    return rc;
}

/* Expired leases of crashed holders are dropped every so many takes. */
#define PRUNE_EVERY 64
static atomic_uint takes;

static int pg_lease_take(pc_metastore *ms, const char *key, const char *owner, long ttl_ms,
                         pc_meta_lease *held)
{
    int rc = check_lease(key, owner, true, ttl_ms, true);
    if (rc)
        return rc;
    if (atomic_fetch_add(&takes, 1) % PRUNE_EVERY == 0)
        pc_pg_exec(ms, PG_LEASE_PRUNE, "lease prune", NULL, PG_NOARGS);
    /* a holder that releases between our refused take and our look is
     * gone: take again (a few times; every round means progress by another) */
    for (int round = 0; round < 5; round++) {
        int64_t changes = 0;
        rc = pc_pg_exec(ms, PG_LEASE_TAKE, "lease take", &changes,
                        PG_ARGS(PG_TEXT(key), PG_TEXT(owner), PG_INT(ttl_ms)));
        if (rc || changes)
            return rc;
        rc = lease_read(ms, key, held);
        if (rc == 0) {
            pc_error_set("lease %s is held by another owner", key);
            return PC_EEXISTS;
        }
        if (rc != PC_ENOTFOUND)
            return rc;
    }
    pc_error_set("lease %s: taken and released by others too fast to see who holds it", key);
    return PC_ERR;
}

static int pg_lease_renew(pc_metastore *ms, const char *key, const char *owner, long ttl_ms)
{
    int rc = check_lease(key, owner, true, ttl_ms, true);
    if (rc)
        return rc;
    return pc_pg_delete(ms, PG_LEASE_RENEW, "lease renew",
                        PG_ARGS(PG_TEXT(key), PG_TEXT(owner), PG_INT(ttl_ms)));
}

static int pg_lease_release(pc_metastore *ms, const char *key, const char *owner)
{
    int rc = check_lease(key, owner, true, 0, false);
    if (rc)
        return rc;
    return pc_pg_delete(ms, PG_LEASE_RELEASE, "lease release",
                        PG_ARGS(PG_TEXT(key), PG_TEXT(owner)));
}

static int pg_lease_get(pc_metastore *ms, const char *key, pc_meta_lease *out)
{
    int rc = check_lease(key, NULL, false, 0, false);
    return rc ? rc : lease_read(ms, key, out);
}

static int pg_note_put(pc_metastore *ms, const char *key, const char *value)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("note key");
    if (!value || strnlen(value, PC_NOTE_MAX) >= PC_NOTE_MAX)
        return pc_meta_invalid("note value");
    return pc_pg_exec(ms, PG_NOTE_PUT, "note put", NULL, PG_ARGS(PG_TEXT(key), PG_TEXT(value)));
}

static int pg_note_get(pc_metastore *ms, const char *key, char *value, size_t size,
                       int64_t *updated_ms)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("note key");
    if (!value || !size)
        return pc_meta_invalid("note buffer");
    pc_pg_query q;
    int rc =
        pc_pg_query_row(&q, ms, PG_NOTE_GET, "note get", "note: not found", PG_ARGS(PG_TEXT(key)));
    if (rc)
        return rc;
    const char *v = PQgetvalue(q.res, 0, 0);
    size_t n = strlen(v);
    if (n >= size) {
        pc_error_set("note %s: %zu bytes do not fit in %zu", key, n, size);
        rc = PC_ETOOBIG;
    } else {
        memcpy(value, v, n + 1);
        if (updated_ms)
            *updated_ms = pc_pg_col_int(q.res, 0, 1);
    }
    pc_pg_query_close(&q);
    return rc;
}

void pc_pg_coord_install(pc_meta_coord_ops *ops)
{
    ops->lease_take = pg_lease_take;
    ops->lease_renew = pg_lease_renew;
    ops->lease_release = pg_lease_release;
    ops->lease_get = pg_lease_get;
    ops->note_put = pg_note_put;
    ops->note_get = pg_note_get;
}
