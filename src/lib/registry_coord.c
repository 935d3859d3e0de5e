/*
 * registry_coord.c - the registry's door to the meta store's
 * coordination table (store/meta.h: leases and notes) for the code that
 * coordinates processes sharing the stores: the mirror's "who fetches this
 * blob", uploads' "who writes this upload". This process's identity as a
 * lease owner is the registry's node name.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "registry_int.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

bool pc_registry_publish_locks(const pc_registry *reg)
{
    return reg->be->publish_lock != NULL;
}

void pc_registry_gc_key(const pc_digest *d, char *key, size_t size)
{
    snprintf(key, size, "gc:%s", d->str);
}

int pc_registry_publish_settle(pc_registry *reg, const pc_digest *d)
{
    if (pc_registry_publish_locks(reg))
        return 0;
    char key[PC_LEASE_KEY_MAX];
    pc_meta_lease held;
    pc_registry_gc_key(d, key, sizeof(key));
    /* a gc holds it for one look at d's holders and one removal; a dead
     * gc's runs out after PC_GC_HOLD_MS */
    int64_t until = pc_util_now_ms() + PC_GC_HOLD_MS + 1000;
    int rc;
    while ((rc = reg->ms->coord->lease_get(reg->ms, key, &held)) == 0 && pc_util_now_ms() < until) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc && rc != PC_ENOTFOUND)
        return rc;
    uint64_t size;
    if ((rc = reg->be->stat(reg->be, d, &size)) == PC_ENOTFOUND) {
        pc_error_set("blob %s was removed by a gc that looked at it before it was linked: "
                     "publish it again",
                     d->str);
        return PC_ENOTFOUND;
    }
    return rc;
}

const char *pc_registry_node(const pc_registry *reg)
{
    return reg->node;
}

int pc_registry_lease_take(pc_registry *reg, const char *key, const char *owner, long ttl_ms,
                           pc_meta_lease *held)
{
    return reg->ms->coord->lease_take(reg->ms, key, owner, ttl_ms, held);
}

int pc_registry_lease_renew(pc_registry *reg, const char *key, const char *owner, long ttl_ms)
{
    return reg->ms->coord->lease_renew(reg->ms, key, owner, ttl_ms);
}

int pc_registry_lease_release(pc_registry *reg, const char *key, const char *owner)
{
    return reg->ms->coord->lease_release(reg->ms, key, owner);
}

int pc_registry_lease_get(pc_registry *reg, const char *key, pc_meta_lease *out)
{
    return reg->ms->coord->lease_get(reg->ms, key, out);
}

int pc_registry_note_put(pc_registry *reg, const char *key, const char *value)
{
    return reg->ms->coord->note_put(reg->ms, key, value);
}

int pc_registry_note_get(pc_registry *reg, const char *key, char *value, size_t size,
                         int64_t *updated_ms)
{
    return reg->ms->coord->note_get(reg->ms, key, value, size, updated_ms);
}
