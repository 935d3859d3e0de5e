/*
 * h_ui.c - the status page: GET/HEAD /_pullcache/ answers its index.html,
 * /_pullcache/ui/<file> its script and style sheet, all embedded in the
 * binary (ui_assets.h, from src/server/ui/ by cmake/embed.cmake): nothing
 * is loaded from anywhere else, so it works offline. The page reads
 * /_pullcache/status and /_pullcache/history every few seconds (same
 * origin, the same credentials) and draws them itself.
 *
 * Admins only when access control is on, like the documents it reads
 * (auth_access.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"
#include "ui_assets.h"

#include <string.h>

/* What the page may load: its own files and documents, nothing else. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

int pc_h_ui(pc_req *req)
{
    for (unsigned i = 0; i < pc_ui_assets_count; i++) {
        const pc_ui_asset *a = &pc_ui_assets[i];
        if (strcmp(a->name, req->ref) != 0)
            continue;
        return pc_req_send(req, 200, a->type, a->data, a->len, "Cache-Control", "no-cache",
                           "Content-Security-Policy", UI_CSP, "X-Content-Type-Options", "nosniff",
                           "Referrer-Policy", "no-referrer", NULL);
    }
    return pc_req_error(req, 404, "NOT_FOUND", "no such file of the status page");
}
