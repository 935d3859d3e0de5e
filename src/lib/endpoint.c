/*
 * endpoint.c - scheme prefixes on references and loopback hosts (see
 * endpoint.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 256

const char *pc_endpoint_scheme_split(const char *s, pc_endpoint_scheme *scheme)
{
    *scheme = PC_ENDPOINT_SCHEME_NONE;
    if (strncasecmp(s, "http://", 7) == 0) {
        *scheme = PC_ENDPOINT_SCHEME_HTTP;
        return s + 7;
    }
    if (strncasecmp(s, "https://", 8) == 0) {
        *scheme = PC_ENDPOINT_SCHEME_HTTPS;
        return s + 8;
    }
    return s;
}

bool pc_endpoint_loopback(const char *host)
{
    char buf[HOST_MAX];
    size_t len;
    if (host[0] == '[') { /* [v6]:port */
        const char *end = strchr(host, ']');
        if (!end || (size_t)(end - host - 1) >= sizeof(buf))
            return false;
        len = (size_t)(end - host - 1);
        memcpy(buf, host + 1, len);
        buf[len] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    len = strcspn(host, ":");
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return true;
    struct in_addr a4;
    return inet_pton(AF_INET, buf, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

bool pc_endpoint_env_name_valid(const char *s)
{
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}
