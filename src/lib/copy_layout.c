/*
 * copy_layout.c - reading an OCI image layout as a copy source: "DIR[:TAG]"
 * split, the descriptor index.json names by org.opencontainers.image.ref.name,
 * and where a blob lives (blobs/<alg>/<hex>). Writing a layout is
 * pull_layout.c's job.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ref.h"

#define REF_NAME "org.opencontainers.image.ref.name"

int pc_copy_layout_split(const char *s, char *dir, size_t dir_size, char *tag, size_t tag_size)
{
    const char *colon = strrchr(s, ':');
    size_t dlen = strlen(s);
    tag[0] = '\0';
    if (colon && !strchr(colon, '/') && pc_ref_tag_valid(colon + 1)) {
        dlen = (size_t)(colon - s);
        if (strlen(colon + 1) >= tag_size)
            goto bad;
        snprintf(tag, tag_size, "%s", colon + 1);
    }
    if (dlen == 0 || dlen >= dir_size)
        goto bad;
    memcpy(dir, s, dlen);
    dir[dlen] = '\0';
    return 0;
bad:
    pc_error_set("'oci:%.200s' is not an OCI layout reference: want oci:DIR[:TAG]", s);
    return PC_EINVAL;
}

int pc_copy_layout_blob_path(const char *dir, const pc_digest *d, char *buf, size_t size)
{
    int n =
        snprintf(buf, size, "%s/blobs/%s/%s", dir, pc_digest_alg_name(d->alg), pc_digest_hex(d));
    if (n < 0 || (size_t)n >= size) {
        pc_error_set("layout path too long");
        return PC_ETOOBIG;
    }
    return 0;
}

static int desc_from(json_t *e, pc_pull_desc *out)
{
    memset(out, 0, sizeof(*out));
    const char *mt = json_string_value(json_object_get(e, "mediaType"));
    const char *dg = json_string_value(json_object_get(e, "digest"));
    json_t *sz = json_object_get(e, "size");
    if (!mt || !dg || !json_is_integer(sz) || json_integer_value(sz) < 0 ||
        pc_digest_parse(&out->digest, dg) != 0) {
        pc_error_set("index.json has an entry without a valid mediaType, digest and size");
        return PC_EINVAL;
    }
    snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
    out->size = (uint64_t)json_integer_value(sz);
    return 0;
}

int pc_copy_layout_lookup(const char *dir, const char *ref_name, pc_pull_desc *out)
{
    char path[4096], names[400];
    json_error_t jerr;
    json_t *idx = NULL, *e;
    size_t i, off = 0, count = 0;
    int rc = PC_ENOTFOUND;

    names[0] = '\0';
    if (snprintf(path, sizeof(path), "%s/index.json", dir) >= (int)sizeof(path)) {
        pc_error_set("layout path too long");
        return PC_EINVAL;
    }
    idx = json_load_file(path, 0, &jerr);
    json_t *list = json_object_get(idx, "manifests");
    if (!json_is_array(list)) {
        pc_error_set("%s: not an OCI image layout index (%s)", path,
                     idx ? "no manifests array" : jerr.text);
        rc = PC_EINVAL;
        goto done;
    }
    json_array_foreach(list, i, e)
    {
        const char *name =
            json_string_value(json_object_get(json_object_get(e, "annotations"), REF_NAME));
        if (name && off < sizeof(names) - 1) {
            int w = snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "", name);
            off = w < 0 ? sizeof(names) - 1 : off + (size_t)w;
            if (off >= sizeof(names))
                off = sizeof(names) - 1;
        }
        if (ref_name && *ref_name) {
            if (name && strcmp(name, ref_name) == 0) {
                rc = desc_from(e, out);
                goto done;
            }
        } else if (count++ == 0) {
            rc = desc_from(e, out);
            if (rc != 0)
                goto done;
        }
    }
    if (!ref_name || !*ref_name) {
        if (count == 1)
            goto done; /* rc from desc_from */
        pc_error_set("%s holds %zu images; name one (oci:%s:TAG; it has: %s)", dir, count, dir,
                     names[0] ? names : "no names");
        rc = count ? PC_EINVAL : PC_ENOTFOUND;
        goto done;
    }
    pc_error_set("%s has no image named '%s' (it has: %s)", dir, ref_name,
                 names[0] ? names : "no names");
    rc = PC_ENOTFOUND;
done:
    json_decref(idx);
    return rc;
}
