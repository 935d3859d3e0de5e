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
 */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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

bool pc_req_limit(pc_req *req, int *mhd)
{
    bool get = strcmp(req->method, "GET") == 0;
    int rc = source_key(req);
    if (rc == 0)
        rc = pc_limiter_take(req->srv->limiter, req->limit_source, (int64_t)time(NULL), get,
                             &req->limit);
    if (rc == PC_EINVAL)
        return true;       /* no key (not an IP client): served, uncounted, no headers */
    req->limit_set = true; /* PC_ENOMEM: too many clients tracked; served uncounted */
    if (rc == 0)
        return true;
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
