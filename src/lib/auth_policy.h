/*
 * auth_policy.h - who may pull, push and delete which repository, and who is an
 * administrator. Used once users are configured (htpasswd or an external
 * token issuer); without users the server does no access control.
 *
 * Principals, in every list:
 *   alice           a user (as authenticated: htpasswd name or token sub)
 *   @ops            every member of the group "ops"
 *   authenticated   any user who authenticated
 *   anonymous       everyone, with or without credentials
 *
 * Rules. A rule grants actions on the repositories under its prefix. A
 * prefix matches on path-component boundaries only: "team" (or "team/")
 * matches "team" and "team/app/x", never "teamx" or "teamx/app"; "" matches
 * every repository. For one repository the matching rule with the longest
 * prefix decides alone: the rules of shorter prefixes are not consulted
 * (no merging), so a more specific rule can both widen and narrow access.
 * Read-only is the exception and sticks: when the repository is mirrored
 * (served from an upstream) or any matching rule is readonly, nobody may
 * push or delete, whatever the deciding rule says.
 *
 * Default, for repositories no rule matches (the "authenticated
 * push, anonymous pull of mirrored content only"):
 *   mirrored   pull: anonymous                 push, delete: nobody
 *   local      pull, push: authenticated       delete: admins
 * The catalog (/v2/_catalog) is open to `catalog` principals, by default
 * authenticated; the server lists only names the user may pull.
 *
 * Names are checked with pc_ref_name_valid() before any matching: a name
 * with upper case, percent-encoding, "//", "." or ".." components, a
 * trailing '/', or more than 255 characters matches nothing and is refused
 * (PC_EINVAL, nothing granted). The server passes the repository name as
 * the request path has it ("docker.io/library/nginx" for a host-prefixed
 * mirror path, "library/nginx" for a bare one) and says whether routing
 * made it mirrored.
 *
 * Configuration (YAML, wired to libcyaml later):
 *
 *   auth:
 *     htpasswd: /etc/pullcache/htpasswd
 *     groups:
 *       - name: devs
 *         members: [alice, bob]
 *     admins: [root, "@ops"]        # admin endpoints; delete by default
 *     catalog: [authenticated]      # who may list repositories
 *     access:
 *       - prefix: team              # team and team/...
 *         pull: [authenticated]
 *         push: ["@devs"]
 *         delete: [alice]
 *       - prefix: team/public
 *         pull: [anonymous]         # decides alone for team/public/...
 *       - prefix: docker.io
 *         readonly: true
 *         pull: [anonymous]
 *
 * A pc_policy never changes once made: any number of threads may use it;
 * reload by making a new one and swapping (references as in auth_htpasswd.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_AUTH_POLICY_H
#define PC_AUTH_POLICY_H

#include "pc.h"
#include "auth_header.h"

#define PC_POLICY_RULES_MAX 1024
#define PC_POLICY_PRINCIPALS_MAX 1024 /* in one list */

typedef struct pc_policy pc_policy;

/* One access rule; lists hold principals. */
typedef struct {
    const char *prefix; /* NULL or "" = every repository */
    bool readonly;
    const char *const *pull;
    size_t pull_count;
    const char *const *push;
    size_t push_count;
    const char *const *del;
    size_t del_count;
} pc_policy_rule;

typedef struct {
    const char *name; /* [a-z0-9._-]+, used as "@name" */
    const char *const *members;
    size_t member_count;
} pc_policy_group;

/* Everything is borrowed by pc_policy_new() and copied. */
typedef struct {
    const pc_policy_rule *rules;
    size_t rule_count;
    const pc_policy_group *groups;
    size_t group_count;
    const char *const *admins; /* users and @groups */
    size_t admin_count;
    const char *const *catalog; /* principals; NULL = {"authenticated"} */
    size_t catalog_count;
} pc_policy_config;

/* Make a policy from cfg (NULL = the default alone). *out is the caller's
 * (pc_policy_free). Returns 0, PC_EINVAL (a bad prefix, a duplicate
 * prefix or group, an unknown @group, a readonly rule granting push or
 * delete, "anonymous" as an admin, a malformed principal; the message
 * names the rule), PC_ELIMIT or PC_ENOMEM. */
int pc_policy_new(pc_policy **out, const pc_policy_config *cfg);

/* Take another reference; returns p. */
pc_policy *pc_policy_ref(pc_policy *p);

/* Drop a reference; the last one frees p. NULL is fine. */
void pc_policy_free(pc_policy *p);

/* The actions (PC_AUTH_PULL | PC_AUTH_PUSH | PC_AUTH_DELETE) user may do
 * on repository name. user NULL or "" is an anonymous client. mirrored:
 * routing serves name from an upstream. Returns 0, or PC_EINVAL for an
 * invalid name (*granted is 0). */
int pc_policy_access(const pc_policy *p, const char *user, const char *name, bool mirrored,
                     unsigned *granted);

/* Whether user may list the catalog. */
bool pc_policy_catalog(const pc_policy *p, const char *user);

/* Whether user is an administrator (never an anonymous client). */
bool pc_policy_is_admin(const pc_policy *p, const char *user);

/* Whether routing serves name from an upstream. */
typedef bool (*pc_policy_mirrored_fn)(const char *name, void *ctx);

/* The token server's intersection: for each requested scope the requested
 * actions user holds ("*" on a repository asks for all three; the catalog
 * needs "*"). Every requested scope is in *out, in order, with the
 * actions granted (possibly none). mirrored may be NULL (all local).
 * *out (NULL when n is 0) is the caller's (free). 0 or PC_ENOMEM. */
int pc_policy_grant(const pc_policy *p, const char *user, const pc_auth_scope *want, size_t n,
                    pc_policy_mirrored_fn mirrored, void *ctx, pc_auth_scope **out);

#endif
