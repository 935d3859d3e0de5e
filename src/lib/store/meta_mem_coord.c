/*
 * meta_mem_coord.c - the in-memory meta store's leases and notes
 * (store/meta.h, coordination): the SQLite backend's semantics for the
 * threads of one process, with the wall clock in milliseconds.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_mem_int.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

int pc_mm_key_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int check_lease(const char *key, const char *owner, bool need_owner)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("lease key");
    if ((owner || need_owner) && !pc_meta_key_ok(owner, PC_LEASE_OWNER_MAX))
        return pc_meta_invalid("lease owner");
    return 0;
}

/* Under the lock: the row of key (live or not), or NULL. */
static pc_mm_lease *lease_row(pc_mm_store *s, const char *key)
{
    pc_mm_lease k;
    pc_mm_copy(k.key, sizeof(k.key), key);
    return pc_mm_find(&s->leases, &k);
}

static int mm_lease_take(pc_metastore *ms, const char *key, const char *owner, long ttl_ms,
                         pc_meta_lease *held)
{
    int rc = check_lease(key, owner, true);
    if (rc)
        return rc;
    if (ttl_ms <= 0)
        return pc_meta_invalid("lease time");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    int64_t now = pc_util_now_ms();
    pc_mm_lease *l = lease_row(s, key);
    if (l && l->expires_ms > now && strcmp(l->owner, owner) != 0) {
        if (held) {
            memcpy(held->owner, l->owner, sizeof(held->owner));
            held->expires_ms = l->expires_ms;
        }
        pc_mm_unlock(s);
        pc_error_set("lease %s is held by another owner", key);
        return PC_EEXISTS;
    }
    if (!l) {
        if (!(l = calloc(1, sizeof(*l))) || pc_mm_reserve(&s->leases, 1)) {
            free(l);
            pc_mm_unlock(s);
            return pc_mm_nomem();
        }
        pc_mm_copy(l->key, sizeof(l->key), key);
        pc_mm_insert(&s->leases, l);
    }
    pc_mm_copy(l->owner, sizeof(l->owner), owner);
    l->expires_ms = now + ttl_ms;
    pc_mm_unlock(s);
    return 0;
}

static int mm_lease_renew(pc_metastore *ms, const char *key, const char *owner, long ttl_ms)
{
    int rc = check_lease(key, owner, true);
    if (rc)
        return rc;
    if (ttl_ms <= 0)
        return pc_meta_invalid("lease time");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    pc_mm_lease *l = lease_row(s, key);
    if (l && strcmp(l->owner, owner) == 0)
        l->expires_ms = pc_util_now_ms() + ttl_ms;
    else
        rc = PC_ENOTFOUND;
    pc_mm_unlock(s);
    if (rc)
        pc_error_set("lease renew: not found");
    return rc;
}

static int mm_lease_release(pc_metastore *ms, const char *key, const char *owner)
{
    int rc = check_lease(key, owner, true);
    if (rc)
        return rc;
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    pc_mm_lease *l = lease_row(s, key);
    if (l && strcmp(l->owner, owner) == 0) {
        pc_mm_remove(&s->leases, l);
        free(l);
    } else {
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    if (rc)
        pc_error_set("lease release: not found");
    return rc;
}

static int mm_lease_get(pc_metastore *ms, const char *key, pc_meta_lease *out)
{
    int rc = check_lease(key, NULL, false);
    if (rc)
        return rc;
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_lock(s);
    pc_mm_lease *l = lease_row(s, key);
    if (l && l->expires_ms > pc_util_now_ms()) {
        if (out) {
            memcpy(out->owner, l->owner, sizeof(out->owner));
            out->expires_ms = l->expires_ms;
        }
    } else {
        rc = PC_ENOTFOUND;
    }
    pc_mm_unlock(s);
    if (rc)
        pc_error_set("lease: not held");
    return rc;
}

static int mm_note_put(pc_metastore *ms, const char *key, const char *value)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("note key");
    if (!value || strnlen(value, PC_NOTE_MAX) >= PC_NOTE_MAX)
        return pc_meta_invalid("note value");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_note k;
    pc_mm_copy(k.key, sizeof(k.key), key);
    pc_mm_lock(s);
    pc_mm_note *n = pc_mm_find(&s->notes, &k);
    if (!n) {
        if (!(n = calloc(1, sizeof(*n))) || pc_mm_reserve(&s->notes, 1)) {
            free(n);
            pc_mm_unlock(s);
            return pc_mm_nomem();
        }
        pc_mm_copy(n->key, sizeof(n->key), key);
        pc_mm_insert(&s->notes, n);
    }
    pc_mm_copy(n->value, sizeof(n->value), value);
    n->updated_ms = pc_util_now_ms();
    pc_mm_unlock(s);
    return 0;
}

static int mm_note_get(pc_metastore *ms, const char *key, char *value, size_t size,
                       int64_t *updated_ms)
{
    if (!pc_meta_key_ok(key, PC_LEASE_KEY_MAX))
        return pc_meta_invalid("note key");
    if (!value || !size)
        return pc_meta_invalid("note buffer");
    pc_mm_store *s = pc_mm_of(ms);
    pc_mm_note k;
    int rc = 0;
    pc_mm_copy(k.key, sizeof(k.key), key);
    pc_mm_lock(s);
    pc_mm_note *n = pc_mm_find(&s->notes, &k);
    if (!n) {
        rc = PC_ENOTFOUND;
        pc_error_set("note: not found");
    } else if (strlen(n->value) >= size) {
        rc = PC_ETOOBIG;
        pc_error_set("note %s: %zu bytes do not fit in %zu", key, strlen(n->value), size);
    } else {
        memcpy(value, n->value, strlen(n->value) + 1);
        if (updated_ms)
            *updated_ms = n->updated_ms;
    }
    pc_mm_unlock(s);
    return rc;
}

void pc_mm_coord_install(pc_meta_coord_ops *ops)
{
    ops->lease_take = mm_lease_take;
    ops->lease_renew = mm_lease_renew;
    ops->lease_release = mm_lease_release;
    ops->lease_get = mm_lease_get;
    ops->note_put = mm_note_put;
    ops->note_get = mm_note_get;
}
