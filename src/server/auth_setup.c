/*
 * auth_setup.c - the server's authentication state (issue #5): built from
 * the auth configuration (htpasswd users, the access policy, the token
 * signing key, a trusted external issuer, the realm), checked for
 * --check-config, swapped on reload (SIGHUP), and the per-request
 * snapshot of it.
 *
 * Users and the policy are reference-counted and swapped on reload: a
 * request keeps the ones it started with (pc_authn_snap_take). Who asks
 * is auth_login.c, what they may do auth_access.c, the 401 challenge and
 * the token service auth_token.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "auth_int.h"
#include "log.h"
#include "metrics.h"
#include "server.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* ---- building ---- */

static char *dup_or(const char *s, const char *def)
{
    return strdup(s ? s : def);
}

/* The policy of auth. 0, PC_EINVAL (message), PC_ENOMEM. */
static int policy_build(pc_policy **out, const pc_config_auth *a)
{
    int rc = PC_ENOMEM;
    pc_policy_rule *rules = calloc(a->access_count + 1, sizeof(*rules));
    pc_policy_group *groups = calloc(a->groups_count + 1, sizeof(*groups));
    if (!rules || !groups)
        goto done;
    for (unsigned i = 0; i < a->access_count; i++) {
        const pc_config_rule *r = &a->access[i];
        rules[i] = (pc_policy_rule){r->prefix,
                                    r->readonly,
                                    (const char *const *)r->pull,
                                    r->pull_count,
                                    (const char *const *)r->push,
                                    r->push_count,
                                    (const char *const *)r->del,
                                    r->del_count};
    }
    for (unsigned i = 0; i < a->groups_count; i++)
        groups[i] = (pc_policy_group){a->groups[i].name, (const char *const *)a->groups[i].members,
                                      a->groups[i].members_count};
    pc_policy_config pc = {
        rules,
        a->access_count,
        groups,
        a->groups_count,
        (const char *const *)a->admins,
        a->admins_count,
        a->catalog ? (const char *const *)a->catalog : NULL,
        a->catalog_count,
    };
    rc = pc_policy_new(out, &pc);
    if (rc == PC_EINVAL) {
        char msg[512];
        snprintf(msg, sizeof(msg), "auth: %s", pc_error_last());
        pc_error_set("%s", msg);
    }
done:
    free(rules);
    free(groups);
    return rc;
}

/* Users and policy of auth into *users, *policy. */
static int load_users(const pc_config_auth *a, pc_htpasswd **users, pc_policy **policy)
{
    *users = NULL;
    *policy = NULL;
    int rc = 0;
    if (a->htpasswd && (rc = pc_htpasswd_load(users, a->htpasswd)) != 0) {
        if (rc == PC_ENOTFOUND || rc == PC_ERR) {
            char msg[512];
            snprintf(msg, sizeof(msg), "auth.htpasswd: %s", pc_error_last());
            pc_error_set("%s", msg);
        }
        return PC_EINVAL;
    }
    if ((rc = policy_build(policy, a)) != 0) {
        pc_htpasswd_free(*users);
        *users = NULL;
        return rc == PC_ENOMEM ? rc : PC_EINVAL;
    }
    return 0;
}

static void authn_free(struct pc_authn *a)
{
    if (!a)
        return;
    pc_htpasswd_free(a->users);
    pc_policy_free(a->policy);
    pc_jwt_key_free(a->key);
    pc_jwt_key_free(a->trust_key);
    free(a->trust_issuer);
    free(a->trust_audience);
    free(a->realm);
    free(a->service);
    free(a->issuer);
    pthread_mutex_destroy(&a->lock);
    OPENSSL_cleanse(a->cache, sizeof(a->cache));
    free(a);
}

/* persist: a key made now is written to the data directory (serve starting;
 * not --check-config, which leaves no file behind). */
static int authn_new(struct pc_authn **out, const pc_config *cfg, bool persist)
{
    *out = NULL;
    if (!pc_config_auth_enabled(cfg))
        return 0;
    const pc_config_auth *c = cfg->auth;
    struct pc_authn *a = calloc(1, sizeof(*a));
    if (!a)
        return PC_ENOMEM;
    pthread_mutex_init(&a->lock, NULL);
    int rc = load_users(c, &a->users, &a->policy);
    if (rc)
        goto fail;
    const pc_config_token *t = c->token;
    rc = PC_ENOMEM;
    if (!(a->service = dup_or(t ? t->service : NULL, "pullcache")) ||
        !(a->issuer = dup_or(t ? t->issuer : NULL, "pullcache")) ||
        (t && t->realm && !(a->realm = strdup(t->realm))))
        goto fail;
    const char *xu = cfg->http ? cfg->http->external_url : NULL;
    if (!a->realm && xu) { /* http.external_url: how clients reach us, not their Host header */
        size_t n = strlen(xu);
        while (n && xu[n - 1] == '/')
            n--;
        if (!(a->realm = malloc(n + sizeof("/token"))))
            goto fail;
        snprintf(a->realm, n + sizeof("/token"), "%.*s/token", (int)n, xu);
    }
    a->lifetime = t && t->lifetime ? t->lifetime : PC_JWT_TTL;
    a->basic = c->challenge && strcmp(c->challenge, "basic") == 0;
    /* Without a configured key, the one kept in the data directory (made on
     * first start): tokens survive a restart, and replicas sharing the data
     * directory's key file accept each other's. */
    char kept[4096];
    snprintf(kept, sizeof(kept), "%s/token.key", cfg->storage->data);
    const char *key_path = t && t->key ? t->key : kept;
    rc = pc_jwt_key_load_private(&a->key, key_path);
    if (rc == PC_ENOTFOUND && key_path == kept) {
        rc = pc_jwt_key_generate(&a->key);
        if (rc == 0 && persist && (rc = pc_jwt_key_save_private(a->key, kept)) == 0)
            pc_log(PC_LOG_INFO, "made the token signing key %s (key id %s)", kept,
                   pc_jwt_key_id(a->key));
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof(msg), "auth.token.key %.200s: %.280s", key_path, pc_error_last());
        pc_error_set("%s", msg);
        rc = PC_EINVAL;
        goto fail;
    }
    if (c->trust) {
        if ((rc = pc_jwt_key_load_public(&a->trust_key, c->trust->key))) {
            char msg[512];
            snprintf(msg, sizeof(msg), "auth.trust.key %s: %s", c->trust->key, pc_error_last());
            pc_error_set("%s", msg);
            rc = PC_EINVAL;
            goto fail;
        }
        rc = PC_ENOMEM;
        if (!(a->trust_issuer = strdup(c->trust->issuer)) ||
            !(a->trust_audience = strdup(c->trust->audience)))
            goto fail;
    }
    *out = a;
    return 0;
fail:
    authn_free(a);
    return rc;
}

int pc_server_auth_init(pc_server *srv, const pc_config *cfg)
{
    int rc = authn_new(&srv->authn, cfg, true);
    if (rc == 0 && srv->authn) {
        pc_metrics_declare("pullcache_auth_failed_logins_total", PC_METRIC_COUNTER,
                           "Logins refused for a wrong user name or password");
        pc_metrics_declare("pullcache_auth_throttled_total", PC_METRIC_COUNTER,
                           "Logins answered 429 because their address failed too often");
        pc_metrics_declare("pullcache_auth_tokens_issued_total", PC_METRIC_COUNTER,
                           "Tokens issued by the token service");
    }
    if (rc == 0 && srv->authn)
        pc_log(PC_LOG_INFO,
               "authentication on: %zu htpasswd user(s)%s, %s challenge, token key id %s",
               srv->authn->users ? pc_htpasswd_count(srv->authn->users) : (size_t)0,
               srv->authn->trust_key ? ", external token issuer trusted" : "",
               srv->authn->basic ? "Basic" : "Bearer", pc_jwt_key_id(srv->authn->key));
    if (rc == 0 && srv->authn && !srv->authn->basic) {
        if (srv->authn->realm)
            pc_log(PC_LOG_INFO, "auth: token realm %s", srv->authn->realm);
        else
            pc_log(PC_LOG_INFO, "auth: token realm http(s)://<Host>/token, from each request's "
                                "Host header (trusted; set http.external_url or "
                                "auth.token.realm to fix it)");
    }
    return rc;
}

void pc_server_auth_free(pc_server *srv)
{
    authn_free(srv->authn);
    srv->authn = NULL;
}

int pc_server_auth_check(const pc_config *cfg)
{
    struct pc_authn *a = NULL;
    int rc = authn_new(&a, cfg, false);
    authn_free(a);
    return rc;
}

bool pc_server_auth_enabled(const pc_server *srv)
{
    return srv->authn != NULL;
}

int pc_server_auth_reload(pc_server *srv, const pc_config_auth *auth)
{
    struct pc_authn *a = srv->authn;
    if (!a)
        return PC_ENOTFOUND;
    if (!auth) {
        pc_error_set("the configuration no longer has an auth section");
        return PC_EINVAL;
    }
    pc_htpasswd *users;
    pc_policy *policy;
    int rc = load_users(auth, &users, &policy);
    if (rc)
        return rc;
    pthread_mutex_lock(&a->lock);
    pc_htpasswd *old_users = a->users;
    pc_policy *old_policy = a->policy;
    a->users = users;
    a->policy = policy;
    a->gen++;
    pthread_mutex_unlock(&a->lock);
    pc_htpasswd_free(old_users);
    pc_policy_free(old_policy);
    pc_log(PC_LOG_INFO, "auth: reloaded: %zu htpasswd user(s), %u access rule(s)",
           users ? pc_htpasswd_count(users) : (size_t)0, auth->access_count);
    return 0;
}

/* ---- per request ---- */

void pc_authn_snap_take(struct pc_authn *a, pc_authn_snap *s)
{
    pthread_mutex_lock(&a->lock);
    s->users = a->users ? pc_htpasswd_ref(a->users) : NULL;
    s->policy = pc_policy_ref(a->policy);
    s->gen = a->gen;
    pthread_mutex_unlock(&a->lock);
}

void pc_authn_snap_drop(pc_authn_snap *s)
{
    pc_htpasswd_free(s->users);
    pc_policy_free(s->policy);
}
