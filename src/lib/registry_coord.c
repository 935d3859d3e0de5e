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

bool pc_registry_publish_locks(const pc_registry *reg)
{
    return reg->be->publish_lock != NULL;
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
