/*
 * auth_policy.c - access rules by repository prefix, groups and administrators
 * (see auth_policy.h for the rules of matching and the default).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "auth_policy.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { P_ANON, P_AUTH, P_USER, P_GROUP } pkind;

typedef struct {
    pkind kind;
    char *user;   /* P_USER */
    size_t group; /* P_GROUP: index into groups */
} principal;

typedef struct {
    principal *v;
    size_t n;
} plist;

typedef struct {
    char *prefix; /* normalized: no trailing '/'; "" = all */
    size_t plen;
    bool readonly;
    plist acts[3]; /* pull, push, delete */
} rule;

typedef struct {
    char *name;
    char **members;
    size_t n;
} group;

struct pc_policy {
    atomic_int refs;
    rule *rules;
    size_t nrules;
    group *groups;
    size_t ngroups;
    plist admins;
    plist catalog;
};

static const unsigned act_bits[3] = {PC_AUTH_PULL, PC_AUTH_PUSH, PC_AUTH_DELETE};
static const char *const act_names[3] = {"pull", "push", "delete"};

/* ---- building ---- */

static bool user_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 255 || s[0] == '@')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == ':')
            return false;
    }
    return true;
}

static bool group_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || strchr("._-", s[i])))
            return false;
    return true;
}

static void plist_free(plist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].user);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Resolve names into l; what names the list in messages. */
static int plist_make(pc_policy *p, plist *l, const char *const *names, size_t n, const char *what)
{
    if (n > PC_POLICY_PRINCIPALS_MAX) {
        pc_error_set("%s: more than %d principals", what, PC_POLICY_PRINCIPALS_MAX);
        return PC_ELIMIT;
    }
    if (n == 0)
        return 0;
    if (!(l->v = calloc(n, sizeof(*l->v)))) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        principal *e = &l->v[l->n];
        if (s && strcmp(s, "anonymous") == 0) {
            e->kind = P_ANON;
        } else if (s && strcmp(s, "authenticated") == 0) {
            e->kind = P_AUTH;
        } else if (s && s[0] == '@') {
            size_t g = 0;
            while (g < p->ngroups && strcmp(p->groups[g].name, s + 1) != 0)
                g++;
            if (g == p->ngroups) {
                pc_error_set("%s: no group \"%s\"", what, s + 1);
                return PC_EINVAL;
            }
            e->kind = P_GROUP;
            e->group = g;
        } else if (user_name_ok(s)) {
            e->kind = P_USER;
            if (!(e->user = strdup(s))) {
                pc_error_set("out of memory");
                return PC_ENOMEM;
            }
        } else {
            pc_error_set("%s: \"%s\" is not a user, @group, authenticated or anonymous", what,
                         s ? s : "(null)");
            return PC_EINVAL;
        }
        l->n++;
    }
    return 0;
}

static int add_groups(pc_policy *p, const pc_policy_config *cfg)
{
    if (cfg->group_count == 0)
        return 0;
    if (!(p->groups = calloc(cfg->group_count, sizeof(*p->groups))))
        goto nomem;
    for (size_t i = 0; i < cfg->group_count; i++) {
        const pc_policy_group *in = &cfg->groups[i];
        group *g = &p->groups[i];
        if (!group_name_ok(in->name)) {
            pc_error_set("group %zu: name must be [a-z0-9._-]+", i + 1);
            return PC_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->groups[j].name, in->name) == 0) {
                pc_error_set("group \"%s\" defined twice", in->name);
                return PC_EINVAL;
            }
        }
        if (!(g->name = strdup(in->name)))
            goto nomem;
        p->ngroups++;
        if (in->member_count > PC_POLICY_PRINCIPALS_MAX) {
            pc_error_set("group \"%s\": more than %d members", in->name, PC_POLICY_PRINCIPALS_MAX);
            return PC_ELIMIT;
        }
        if (in->member_count && !(g->members = calloc(in->member_count, sizeof(char *))))
            goto nomem;
        for (size_t j = 0; j < in->member_count; j++) {
            if (!user_name_ok(in->members[j])) {
                pc_error_set("group \"%s\": member %zu is not a user name", in->name, j + 1);
                return PC_EINVAL;
            }
            if (!(g->members[g->n] = strdup(in->members[j])))
                goto nomem;
            g->n++;
        }
    }
    return 0;
nomem:
    pc_error_set("out of memory");
    return PC_ENOMEM;
}

static int add_rule(pc_policy *p, const pc_policy_rule *in, size_t idx)
{
    char what[64];
    rule *r = &p->rules[p->nrules];
    const char *pre = in->prefix ? in->prefix : "";
    size_t len = strnlen(pre, PC_NAME_MAX + 2);
    if (len > 0 && pre[len - 1] == '/')
        len--;
    if (len > 0 && !pc_ref_name_valid_n(pre, len)) {
        pc_error_set("access rule %zu: prefix is not a repository name", idx + 1);
        return PC_EINVAL;
    }
    for (size_t i = 0; i < p->nrules; i++) {
        if (p->rules[i].plen == len && memcmp(p->rules[i].prefix, pre, len) == 0) {
            pc_error_set("access rule %zu: prefix \"%s\" again (rule %zu)", idx + 1,
                         p->rules[i].prefix, i + 1);
            return PC_EINVAL;
        }
    }
    if (in->readonly && (in->push_count || in->del_count)) {
        pc_error_set("access rule %zu: readonly, yet grants push or delete", idx + 1);
        return PC_EINVAL;
    }
    if (!(r->prefix = strndup(pre, len))) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    r->plen = len;
    r->readonly = in->readonly;
    p->nrules++;
    const char *const *lists[3] = {in->pull, in->push, in->del};
    size_t counts[3] = {in->pull_count, in->push_count, in->del_count};
    for (int a = 0; a < 3; a++) {
        snprintf(what, sizeof(what), "access rule %zu, %s", idx + 1, act_names[a]);
        int rc = plist_make(p, &r->acts[a], lists[a], counts[a], what);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int pc_policy_new(pc_policy **out, const pc_policy_config *cfg)
{
    static const pc_policy_config none = {0};
    static const char *const default_catalog[] = {"authenticated"};
    int rc = 0;
    *out = NULL;
    if (!cfg)
        cfg = &none;
    pc_policy *p = calloc(1, sizeof(*p));
    if (!p) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    atomic_init(&p->refs, 1);
    if ((rc = add_groups(p, cfg)) != 0)
        goto done;
    if (cfg->rule_count > PC_POLICY_RULES_MAX) {
        pc_error_set("more than %d access rules", PC_POLICY_RULES_MAX);
        rc = PC_ELIMIT;
        goto done;
    }
    if (cfg->rule_count && !(p->rules = calloc(cfg->rule_count, sizeof(*p->rules)))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < cfg->rule_count; i++)
        if ((rc = add_rule(p, &cfg->rules[i], i)) != 0)
            goto done;
    if ((rc = plist_make(p, &p->admins, cfg->admins, cfg->admin_count, "admins")) != 0)
        goto done;
    for (size_t i = 0; i < p->admins.n; i++) {
        if (p->admins.v[i].kind == P_ANON) {
            pc_error_set("admins: anonymous cannot be an administrator");
            rc = PC_EINVAL;
            goto done;
        }
    }
    if (cfg->catalog)
        rc = plist_make(p, &p->catalog, cfg->catalog, cfg->catalog_count, "catalog");
    else
        rc = plist_make(p, &p->catalog, default_catalog, 1, "catalog");
done:
    if (rc != 0) {
        pc_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

pc_policy *pc_policy_ref(pc_policy *p)
{
    if (p)
        atomic_fetch_add(&p->refs, 1);
    return p;
}

void pc_policy_free(pc_policy *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (size_t i = 0; i < p->nrules; i++) {
        free(p->rules[i].prefix);
        for (int a = 0; a < 3; a++)
            plist_free(&p->rules[i].acts[a]);
    }
    free(p->rules);
    for (size_t i = 0; i < p->ngroups; i++) {
        for (size_t j = 0; j < p->groups[i].n; j++)
            free(p->groups[i].members[j]);
        free(p->groups[i].members);
        free(p->groups[i].name);
    }
    free(p->groups);
    plist_free(&p->admins);
    plist_free(&p->catalog);
    free(p);
}

/* ---- deciding ---- */

static bool in_group(const group *g, const char *user)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->members[i], user) == 0)
            return true;
    return false;
}

/* Whether user (NULL = anonymous) is one of l. */
static bool plist_has(const pc_policy *p, const plist *l, const char *user)
{
    for (size_t i = 0; i < l->n; i++) {
        const principal *e = &l->v[i];
        switch (e->kind) {
        case P_ANON:
            return true;
        case P_AUTH:
            if (user)
                return true;
            break;
        case P_USER:
            if (user && strcmp(e->user, user) == 0)
                return true;
            break;
        case P_GROUP:
            if (user && in_group(&p->groups[e->group], user))
                return true;
            break;
        }
    }
    return false;
}

static const char *who(const char *user)
{
    return user && *user ? user : NULL;
}

bool pc_policy_is_admin(const pc_policy *p, const char *user)
{
    user = who(user);
    return user && plist_has(p, &p->admins, user);
}

bool pc_policy_catalog(const pc_policy *p, const char *user)
{
    return plist_has(p, &p->catalog, who(user));
}

int pc_policy_access(const pc_policy *p, const char *user, const char *name, bool mirrored,
                     unsigned *granted)
{
    *granted = 0;
    if (!pc_ref_name_valid(name)) {
        pc_error_set("invalid repository name");
        return PC_EINVAL;
    }
    user = who(user);
    size_t len = strlen(name);
    const rule *best = NULL;
    bool readonly = mirrored;
    for (size_t i = 0; i < p->nrules; i++) {
        const rule *r = &p->rules[i];
        bool match = r->plen == 0 || (r->plen <= len && memcmp(name, r->prefix, r->plen) == 0 &&
                                      (name[r->plen] == '\0' || name[r->plen] == '/'));
        if (!match)
            continue;
        readonly = readonly || r->readonly;
        if (!best || r->plen > best->plen)
            best = r;
    }
    unsigned g = 0;
    if (best) {
        for (int a = 0; a < 3; a++)
            if (plist_has(p, &best->acts[a], user))
                g |= act_bits[a];
    } else if (mirrored) {
        g = PC_AUTH_PULL;
    } else if (user) {
        g = PC_AUTH_PULL | PC_AUTH_PUSH;
        if (pc_policy_is_admin(p, user))
            g |= PC_AUTH_DELETE;
    }
    if (readonly)
        g &= PC_AUTH_PULL;
    *granted = g;
    return 0;
}

int pc_policy_grant(const pc_policy *p, const char *user, const pc_auth_scope *want, size_t n,
                    pc_policy_mirrored_fn mirrored, void *ctx, pc_auth_scope **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    pc_auth_scope *v = calloc(n, sizeof(*v));
    if (!v) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = want[i];
        unsigned asked = want[i].actions;
        unsigned have = 0;
        if (want[i].type == PC_AUTH_REPOSITORY) {
            if (asked & PC_AUTH_ALL)
                asked |= PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE;
            bool m = mirrored && pc_ref_name_valid(want[i].name) && mirrored(want[i].name, ctx);
            if (pc_policy_access(p, user, want[i].name, m, &have) != 0)
                have = 0;
            v[i].actions = asked & have & (PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE);
        } else if (want[i].type == PC_AUTH_REGISTRY && strcmp(want[i].name, "catalog") == 0) {
            v[i].actions = (asked & PC_AUTH_ALL) && pc_policy_catalog(p, user) ? PC_AUTH_ALL : 0;
        } else {
            v[i].actions = 0;
        }
    }
    *out = v;
    return 0;
}
