/*
 * config_validate.c - checking a loaded configuration's values: listen
 * addresses, TLS and auth settings, upstreams, limits, storage, cluster and
 * log settings, each refused with a message that names the key.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "config.h"
#include "ref.h"
#include "store/factory.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pc_config_parse_listen(const char *listen, char *host, size_t size, unsigned *port)
{
    const char *colon;
    size_t hlen;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':')
            goto bad;
        colon = end + 1;
        listen++;
        hlen = (size_t)(end - listen);
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            goto bad;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= size)
        goto bad;
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || !colon[1] || *end || p == 0 || p > 65535)
        goto bad;
    *port = (unsigned)p;
    return 0;
bad:
    pc_error_set("invalid listen address '%s': want HOST:PORT, e.g. 127.0.0.1:5000", listen);
    return PC_EINVAL;
}

int pc_config_validate(const pc_config *c)
{
    char host[256];
    unsigned port;
    if (pc_config_parse_listen(c->http->listen, host, sizeof(host), &port))
        return PC_EINVAL;
    pc_store_opts so;
    pc_config_store_opts(c, &so);
    if (pc_store_check(&so) || pc_config_blobs_check(c->storage->blobs))
        return PC_EINVAL;
    const char *adv = c->cluster ? c->cluster->advertise : NULL;
    if (adv && ((strncmp(adv, "http://", 7) != 0 && strncmp(adv, "https://", 8) != 0) ||
                strcspn(adv, " \t\r\n") != strlen(adv))) {
        pc_error_set("cluster.advertise must be this replica's URL as the others reach it, "
                     "http://HOST:PORT or https://HOST:PORT, not '%s'",
                     adv);
        return PC_EINVAL;
    }
    if (strcmp(c->log->format, "text") != 0 && strcmp(c->log->format, "json") != 0) {
        pc_error_set("log.format must be text or json, not '%s'", c->log->format);
        return PC_EINVAL;
    }
    static const char *levels[] = {"error", "warn", "info", "debug"};
    bool ok = false;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        ok |= strcmp(c->log->level, levels[i]) == 0;
    if (!ok) {
        pc_error_set("log.level must be error, warn, info or debug, not '%s'", c->log->level);
        return PC_EINVAL;
    }
    if (strcmp(c->log->access, "all") != 0 && strcmp(c->log->access, "errors") != 0 &&
        strcmp(c->log->access, "off") != 0) {
        pc_error_set("log.access must be all, errors or off, not '%s'", c->log->access);
        return PC_EINVAL;
    }
    if (c->log->access_sample > 1000000) {
        pc_error_set("log.access_sample must be 1 to 1000000 (one request line in N), not %u",
                     c->log->access_sample);
        return PC_EINVAL;
    }
    if (c->log->file && !*c->log->file) {
        pc_error_set("log.file must name a file (leave it out to log to stderr)");
        return PC_EINVAL;
    }
    for (unsigned i = 0; i < c->upstreams_count; i++) {
        const pc_config_upstream *u = &c->upstreams[i];
        if (!pc_config_upstream_name_ok(u->name)) {
            pc_error_set("upstream name '%s' must be lowercase letters and digits separated by "
                         "'.', '_' or '-' (like docker.io)",
                         u->name);
            return PC_EINVAL;
        }
        if (strncmp(u->url, "http://", 7) != 0 && strncmp(u->url, "https://", 8) != 0) {
            pc_error_set("upstream %s: url must start with http:// or https://", u->name);
            return PC_EINVAL;
        }
        const char *authority = strstr(u->url, "://") + 3;
        if (memchr(authority, '@', strcspn(authority, "/?#"))) {
            /* the URL is logged and shown by /_pullcache/status: no secrets in it
             * (and the message does not repeat it) */
            pc_error_set("upstream %s: url must not contain user information (user@ or "
                         "user:password@); use username with password_file or password_env",
                         u->name);
            return PC_EINVAL;
        }
        if ((u->password_file || u->password_env) && !u->username) {
            pc_error_set("upstream %s: a password needs a username", u->name);
            return PC_EINVAL;
        }
        if (u->password_file && u->password_env) {
            pc_error_set("upstream %s: password_file and password_env are exclusive", u->name);
            return PC_EINVAL;
        }
        for (unsigned k = 0; k < u->immutable_tags_count; k++) {
            regex_t re;
            int e = regcomp(&re, u->immutable_tags[k], REG_EXTENDED | REG_NOSUB);
            if (e) {
                char why[128];
                regerror(e, &re, why, sizeof(why));
                pc_error_set("upstream %s: immutable_tags '%s' is not a POSIX extended regular "
                             "expression: %s",
                             u->name, u->immutable_tags[k], why);
                return PC_EINVAL;
            }
            regfree(&re);
        }
        for (unsigned j = 0; j < i; j++)
            if (strcmp(c->upstreams[j].name, u->name) == 0) {
                pc_error_set("upstream %s is configured twice", u->name);
                return PC_EINVAL;
            }
    }
    if (strcmp(c->cache->default_upstream, "none") != 0) {
        bool found = false;
        for (unsigned i = 0; i < c->upstreams_count; i++)
            found |= strcmp(c->upstreams[i].name, c->cache->default_upstream) == 0;
        if (!found) {
            pc_error_set("cache.default_upstream '%s' is not a configured upstream (or 'none')",
                         c->cache->default_upstream);
            return PC_EINVAL;
        }
    }
    for (unsigned i = 0; i < c->cache->local_prefixes_count; i++) {
        const char *lp = c->cache->local_prefixes[i];
        size_t first = strcspn(lp, "/");
        if (!pc_ref_name_valid(lp) || pc_ref_host_like(lp, first)) {
            pc_error_set("cache.local_prefixes: '%s' is not a repository name prefix (lowercase "
                         "components like team or team/app; a first component with a dot, a "
                         "colon or 'localhost' names a registry)",
                         lp);
            return PC_EINVAL;
        }
        for (unsigned j = 0; j < c->upstreams_count; j++)
            if (strlen(c->upstreams[j].name) == first &&
                strncmp(c->upstreams[j].name, lp, first) == 0) {
                pc_error_set("cache.local_prefixes: '%s' is inside the mirror of upstream %s", lp,
                             c->upstreams[j].name);
                return PC_EINVAL;
            }
    }
    const pc_config_limit *lims[] = {&c->limits->anonymous, &c->limits->authenticated};
    for (size_t i = 0; i < 2; i++)
        if (lims[i]->window > PC_CONFIG_LIMIT_WINDOW_MAX) {
            pc_error_set("limits.%s.window must be at most %u seconds (30 days)",
                         i ? "authenticated" : "anonymous", PC_CONFIG_LIMIT_WINDOW_MAX);
            return PC_EINVAL;
        }
    const pc_config_tls *t = c->http->tls;
    if (t && (t->cert || t->key || t->client_ca || t->client_auth)) {
        if (!t->cert || !t->key) {
            pc_error_set("http.tls needs both cert and key");
            return PC_EINVAL;
        }
        const char *ca = t->client_auth;
        if (ca && strcmp(ca, "none") != 0 && strcmp(ca, "verify_if_given") != 0 &&
            strcmp(ca, "require") != 0) {
            pc_error_set("http.tls.client_auth must be none, verify_if_given or require, not '%s'",
                         ca);
            return PC_EINVAL;
        }
        if (ca && strcmp(ca, "none") != 0 && !t->client_ca) {
            pc_error_set("http.tls.client_auth %s needs http.tls.client_ca", ca);
            return PC_EINVAL;
        }
    }
    const pc_config_auth *a = c->auth;
    if (a && a->challenge && strcmp(a->challenge, "bearer") != 0 &&
        strcmp(a->challenge, "basic") != 0) {
        pc_error_set("auth.challenge must be bearer or basic, not '%s'", a->challenge);
        return PC_EINVAL;
    }
    if (a && a->token && a->token->lifetime > 86400) {
        pc_error_set("auth.token.lifetime must be at most 86400 seconds");
        return PC_EINVAL;
    }
    if (c->http->threads > 256) {
        pc_error_set("http.threads must be at most 256");
        return PC_EINVAL;
    }
    if (c->http->workers > PC_CONFIG_WORKERS_MAX) {
        pc_error_set("http.workers must be at most %u", PC_CONFIG_WORKERS_MAX);
        return PC_EINVAL;
    }
    if (c->cache && c->cache->fetch_workers > PC_CONFIG_WORKERS_MAX) {
        pc_error_set("cache.fetch_workers must be at most %u", PC_CONFIG_WORKERS_MAX);
        return PC_EINVAL;
    }
    if (c->http->max_connections > 65536) {
        pc_error_set("http.max_connections must be at most 65536");
        return PC_EINVAL;
    }
    if (c->http->header_timeout > 3600) {
        pc_error_set("http.header_timeout must be at most 3600 seconds");
        return PC_EINVAL;
    }
    const char *xu = c->http->external_url;
    if (xu) {
        bool xok = strncmp(xu, "http://", 7) == 0 || strncmp(xu, "https://", 8) == 0;
        const char *xhost = xok ? strstr(xu, "//") + 2 : "";
        xok = xok && *xhost && *xhost != '/';
        for (const char *p = xu; xok && *p; p++)
            xok = (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f && !strchr("\"'\\<>?#", *p);
        if (!xok) {
            pc_error_set("http.external_url must be http(s)://HOST[:PORT][/PATH] (no query, "
                         "quotes or spaces), not '%s'",
                         xu);
            return PC_EINVAL;
        }
    }
    return 0;
}
