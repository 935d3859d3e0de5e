/*
 * limits.c - Docker-Hub-style pull limits at the HTTP edge: which budget a
 * manifest request draws from (the account, else the client address, IPv6
 * per /64), the 429 when it is spent, and the ratelimit headers every
 * manifest GET and HEAD answer carries while limits are on:
 *
 *   ratelimit-limit: 100;w=21600
 *   ratelimit-remaining: 76;w=21600
 *   docker-ratelimit-source: 192.0.2.1
 *
 * A GET spends one pull when it is accepted, before it is served, whatever
 * its outcome; a GET refused with 429 and every HEAD cost nothing.
 *
 * Only a spent budget refuses. When the limiter cannot track one more
 * client (its table is full), the request is served uncounted: refusing it
 * would let anyone who fills the table with addresses lock every new client
 * out. The limiter counts those in pullcache_limit_untracked_total; this
 * file logs a warning about it at most once every FULL_LOG_EVERY_S seconds.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define FULL_LOG_EVERY_S 60

/* When the last "table full" warning went out (limiter clock seconds);
 * INT64_MIN: never. */
static _Atomic int64_t full_logged_at = INT64_MIN;

/* Whether a "table full" warning is due at now: the first one, and then one
 * per FULL_LOG_EVERY_S (or when the clock went back). One thread wins. */
static bool full_log_due(int64_t now)
{
    int64_t last = atomic_load(&full_logged_at);
    if (last != INT64_MIN && now >= last && now - last < FULL_LOG_EVERY_S)
        return false;
    return atomic_compare_exchange_strong(&full_logged_at, &last, now);
}

/* The budget's key: the account, else the client's address. */
static int source_key(pc_req *req)
{
    if (req->account)
        return pc_limiter_key_from_account(req->account, req->limit_source,
                                           sizeof(req->limit_source));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return PC_EINVAL;
    return pc_limiter_key_from_addr(ci->client_addr, req->limit_source, sizeof(req->limit_source));
}

bool pc_limit_serves(int rc)
{
    return rc != PC_ELIMIT;
}

bool pc_req_limit(pc_req *req, int *mhd)
{
    bool get = strcmp(req->method, "GET") == 0;
    int64_t now = pc_limiter_now(req->srv->limiter);
    int rc = source_key(req);
    if (rc == 0)
        rc = pc_limiter_take(req->srv->limiter, req->limit_source, now, get, &req->limit);
    if (rc == PC_EINVAL)
        return true; /* no key (not an IP client): served, uncounted, no headers */
    req->limit_set = true;
    if (rc == PC_ENOMEM && full_log_due(now))
        pc_log(PC_LOG_WARN,
               "pull limits: too many clients tracked; serving new ones uncounted "
               "(pullcache_limit_untracked_total counts them; logged at most once a minute)");
    if (pc_limit_serves(rc))
        return true; /* counted, or (PC_ENOMEM) not trackable: served uncounted */
    *mhd = pc_req_fail(req, PC_ELIMIT);
    return false;
}

void pc_req_limit_headers(pc_req *req, struct MHD_Response *resp)
{
    char v[48];
    snprintf(v, sizeof(v), "%u;w=%u", req->limit.limit, req->limit.window);
    MHD_add_response_header(resp, "ratelimit-limit", v);
    snprintf(v, sizeof(v), "%u;w=%u", req->limit.remaining, req->limit.window);
    MHD_add_response_header(resp, "ratelimit-remaining", v);
    MHD_add_response_header(resp, "docker-ratelimit-source", req->limit_source);
}
