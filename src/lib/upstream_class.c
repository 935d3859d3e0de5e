/*
 * upstream_class.c - how an upstream call ended: the class of an HTTP
 * status or a curl result, their names, and the message of a registry
 * error body, and whether a TLS failure means the server speaks plain
 * HTTP. upstream.c applies them to every exchange.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "upstream_int.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

const char *pc_up_class_str(pc_up_class c)
{
    static const char *const names[] = {
        [PC_UP_OK] = "ok",           [PC_UP_NOT_FOUND] = "not_found",
        [PC_UP_DENIED] = "denied",   [PC_UP_TOO_MANY] = "too_many",
        [PC_UP_SERVER] = "server",   [PC_UP_CLIENT] = "client",
        [PC_UP_TIMEOUT] = "timeout", [PC_UP_REFUSED] = "refused",
        [PC_UP_RESET] = "reset",     [PC_UP_TLS] = "tls",
        [PC_UP_ABORTED] = "aborted", [PC_UP_PROTOCOL] = "protocol",
    };
    if ((unsigned)c < sizeof(names) / sizeof(names[0]) && names[c])
        return names[c];
    return "unknown";
}

pc_up_class pc_up_class_of_status(long st)
{
    if (st >= 200 && st < 300)
        return PC_UP_OK;
    if (st == 404)
        return PC_UP_NOT_FOUND;
    if (st == 401 || st == 403)
        return PC_UP_DENIED;
    if (st == 429)
        return PC_UP_TOO_MANY;
    if (st >= 500 && st < 600)
        return PC_UP_SERVER;
    if (st >= 400 && st < 500)
        return PC_UP_CLIENT;
    return PC_UP_PROTOCOL;
}

pc_up_class pc_up_class_of_curl(int cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return PC_UP_REFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return PC_UP_TIMEOUT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return PC_UP_RESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return PC_UP_TLS;
    default:
        return PC_UP_PROTOCOL;
    }
}

bool pc_upstream_tls_plain_http(const char *message)
{
    static const char *const says[] = {
        "wrong version number",          /* OpenSSL 1.1 and 3 */
        "packet length too long",        /* OpenSSL, an HTTP reply read as a record */
        "unexpected TLS packet",         /* GnuTLS */
        "packet with unexpected length", /* GnuTLS */
    };
    for (size_t i = 0; message && i < sizeof(says) / sizeof(says[0]); i++)
        if (strstr(message, says[i]))
            return true;
    return false;
}

/* The first message of a registry error body ({"errors":[{"code","message"}]}),
 * or a token server's {"details"} / {"message"} / {"error"}; "" if none. */
void pc_up_error_message(const char *body, size_t len, char *dst, size_t size)
{
    if (!body || len == 0)
        return;
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!j)
        return;
    const char *msg = NULL;
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    if (e0) {
        msg = json_string_value(json_object_get(e0, "message"));
        if (!msg || !*msg)
            msg = json_string_value(json_object_get(e0, "code"));
    }
    static const char *const keys[] = {"details", "message", "error"};
    for (size_t i = 0; (!msg || !*msg) && i < sizeof(keys) / sizeof(keys[0]); i++)
        msg = json_string_value(json_object_get(j, keys[i]));
    if (msg && *msg)
        snprintf(dst, size, "%s", msg);
    json_decref(j);
}
