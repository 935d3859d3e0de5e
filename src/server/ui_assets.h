/*
 * ui_assets.h - the status page's files (src/server/ui/), embedded in the
 * binary by cmake/embed.cmake as the table pc_ui_assets. Internal to
 * src/server (h_ui.c serves them).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_UI_ASSETS_H
#define PC_UI_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name; /* the file name: "index.html" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} pc_ui_asset;

extern const pc_ui_asset pc_ui_assets[];
extern const unsigned pc_ui_assets_count;

#endif
