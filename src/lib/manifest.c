/*
 * manifest.c - reading manifests with jansson: the four manifest kinds
 * (OCI image manifest and index, Docker schema2 manifest and manifest list),
 * the descriptors they point at, their subject and artifact type, and the
 * descriptor the referrers API lists for one manifest.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "manifest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

static const struct {
    const char *media_type;
    bool is_index;
} kinds[] = {
    {PC_MT_OCI_MANIFEST, false},
    {PC_MT_OCI_INDEX, true},
    {PC_MT_DOCKER_MANIFEST, false},
    {PC_MT_DOCKER_LIST, true},
};

bool pc_manifest_type_known(const char *mt)
{
    if (!mt)
        return false;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(mt, kinds[i].media_type) == 0)
            return true;
    return false;
}

static bool type_is_index(const char *mt)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(mt, kinds[i].media_type) == 0)
            return kinds[i].is_index;
    return false;
}

void pc_manifest_info_clear(pc_manifest_info *info)
{
    if (!info)
        return;
    free(info->refs);
    memset(info, 0, sizeof(*info));
}

/* The media type of a Content-Type value: parameters (";...") and
 * surrounding whitespace removed, lowercased (media types are
 * case-insensitive). "" when ct is NULL or empty. */
static int content_type_media(const char *ct, char *out, size_t size)
{
    size_t start = 0, end;

    out[0] = '\0';
    if (!ct)
        return 0;
    end = strcspn(ct, ";");
    while (start < end && (ct[start] == ' ' || ct[start] == '\t'))
        start++;
    while (end > start && (ct[end - 1] == ' ' || ct[end - 1] == '\t'))
        end--;
    if (end - start >= size) {
        pc_error_set("Content-Type too long");
        return PC_EINVAL;
    }
    for (size_t i = start; i < end; i++)
        out[i - start] = (char)tolower((unsigned char)ct[i]);
    out[end - start] = '\0';
    return 0;
}

/* Validate the descriptor `d` named `field` (for messages): an object with
 * a string mediaType, a valid digest and a non-negative integer size.
 * Returns 0 with *digest filled, or PC_EINVAL (message set). */
static int descriptor_parse(json_t *d, const char *field, pc_digest *digest,
                            const char **media_type)
{
    json_t *mt, *dg, *sz;

    if (!json_is_object(d)) {
        pc_error_set("%s: descriptor must be an object", field);
        return PC_EINVAL;
    }
    mt = json_object_get(d, "mediaType");
    if (!json_is_string(mt)) {
        pc_error_set("%s.mediaType: missing or not a string", field);
        return PC_EINVAL;
    }
    dg = json_object_get(d, "digest");
    if (!json_is_string(dg)) {
        pc_error_set("%s.digest: missing or not a string", field);
        return PC_EINVAL;
    }
    if (pc_digest_parse(digest, json_string_value(dg)) != 0) {
        pc_error_set("%s.digest: invalid digest \"%.140s\"", field, json_string_value(dg));
        return PC_EINVAL;
    }
    sz = json_object_get(d, "size");
    if (!json_is_integer(sz) || json_integer_value(sz) < 0) {
        pc_error_set("%s.size: missing or not a non-negative integer", field);
        return PC_EINVAL;
    }
    if (media_type)
        *media_type = json_string_value(mt);
    return 0;
}

/* Copy a string into a media type field; PC_EINVAL when it does not fit. */
static int copy_type(char *dst, const char *src, const char *field)
{
    size_t n = strlen(src);
    if (n >= PC_MEDIA_TYPE_MAX) {
        pc_error_set("%s: longer than %d characters", field, PC_MEDIA_TYPE_MAX - 1);
        return PC_EINVAL;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

/* Append the descriptors of array arr (named field) to out->refs, which
 * has room for them. */
static int refs_parse(pc_manifest_info *out, json_t *arr, const char *field, bool is_manifest)
{
    char name[64];
    size_t i;
    json_t *d;

    json_array_foreach(arr, i, d)
    {
        snprintf(name, sizeof(name), "%s[%zu]", field, i);
        if (descriptor_parse(d, name, &out->refs[out->nrefs].digest, NULL) != 0)
            return PC_EINVAL;
        out->refs[out->nrefs].is_manifest = is_manifest;
        out->nrefs++;
    }
    return 0;
}

int pc_manifest_parse(pc_manifest_info *out, const void *buf, size_t len, const char *content_type)
{
    char ct[PC_MEDIA_TYPE_MAX];
    json_error_t jerr;
    json_t *doc = NULL, *v, *arr;
    const char *config_type = NULL;
    pc_digest config = {0};
    size_t nrefs;
    int rc = PC_EINVAL;

    memset(out, 0, sizeof(*out));
    if (len > PC_MANIFEST_MAX) {
        pc_error_set("manifest larger than %d bytes", PC_MANIFEST_MAX);
        rc = PC_ETOOBIG;
        goto done;
    }
    if (!buf || len == 0) {
        pc_error_set("empty manifest");
        goto done;
    }
    doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        pc_error_set("manifest is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                     jerr.column);
        goto done;
    }
    if (!json_is_object(doc)) {
        pc_error_set("manifest is not a JSON object");
        goto done;
    }
    v = json_object_get(doc, "schemaVersion");
    if (!json_is_integer(v) || json_integer_value(v) != 2) {
        pc_error_set("schemaVersion: must be 2");
        goto done;
    }

    /* The media type: the document's, else the Content-Type's. */
    if ((rc = content_type_media(content_type, ct, sizeof(ct))))
        goto done;
    rc = PC_EINVAL;
    v = json_object_get(doc, "mediaType");
    if (v && !json_is_string(v)) {
        pc_error_set("mediaType: not a string");
        goto done;
    }
    if (v) {
        if (ct[0] && strcasecmp(ct, json_string_value(v)) != 0) {
            pc_error_set("mediaType \"%.100s\" does not match Content-Type \"%.100s\"",
                         json_string_value(v), ct);
            goto done;
        }
        if (copy_type(out->media_type, json_string_value(v), "mediaType"))
            goto done;
    } else {
        memcpy(out->media_type, ct, sizeof(ct));
    }
    if (!out->media_type[0]) {
        pc_error_set("manifest has no mediaType and no Content-Type");
        goto done;
    }
    if (!pc_manifest_type_known(out->media_type)) {
        pc_error_set("unsupported manifest media type \"%.200s\"", out->media_type);
        goto done;
    }
    out->is_index = type_is_index(out->media_type);

    /* What it points at. */
    if (out->is_index) {
        arr = json_object_get(doc, "manifests");
        if (!json_is_array(arr)) {
            pc_error_set("manifests: missing or not an array");
            goto done;
        }
        nrefs = json_array_size(arr);
    } else {
        if (!json_object_get(doc, "config")) {
            pc_error_set("config: missing");
            goto done;
        }
        if (descriptor_parse(json_object_get(doc, "config"), "config", &config, &config_type))
            goto done;
        arr = json_object_get(doc, "layers");
        if (!json_is_array(arr)) {
            pc_error_set("layers: missing or not an array");
            goto done;
        }
        nrefs = json_array_size(arr) + 1;
    }
    if (nrefs > 0) {
        out->refs = calloc(nrefs, sizeof(*out->refs));
        if (!out->refs) {
            pc_error_set("out of memory reading manifest");
            rc = PC_ENOMEM;
            goto done;
        }
    }
    if (out->is_index) {
        if (refs_parse(out, arr, "manifests", true))
            goto done;
    } else {
        out->refs[0].digest = config;
        out->nrefs = 1;
        if (refs_parse(out, arr, "layers", false))
            goto done;
    }

    /* Subject and artifact type, for the referrers API. */
    v = json_object_get(doc, "subject");
    if (v) {
        if (descriptor_parse(v, "subject", &out->subject, NULL))
            goto done;
        out->has_subject = true;
    }
    v = json_object_get(doc, "artifactType");
    if (v && !json_is_string(v)) {
        pc_error_set("artifactType: not a string");
        goto done;
    }
    if (v) {
        if (copy_type(out->artifact_type, json_string_value(v), "artifactType"))
            goto done;
    } else if (config_type && strcmp(config_type, PC_MT_OCI_CONFIG) != 0 &&
               strcmp(config_type, DOCKER_CONFIG) != 0) {
        if (copy_type(out->artifact_type, config_type, "config.mediaType"))
            goto done;
    }
    rc = 0;
done:
    json_decref(doc);
    if (rc)
        pc_manifest_info_clear(out);
    return rc;
}

/* Whether descriptor desc names d; its size into *size then. */
static bool desc_size(json_t *desc, const pc_digest *d, uint64_t *size)
{
    json_t *dg = json_object_get(desc, "digest"), *sz = json_object_get(desc, "size");
    if (!json_is_string(dg) || strcmp(json_string_value(dg), d->str) != 0 || !json_is_integer(sz) ||
        json_integer_value(sz) < 0)
        return false;
    *size = (uint64_t)json_integer_value(sz);
    return true;
}

int pc_manifest_blob_size(const void *buf, size_t len, const pc_digest *d, uint64_t *size)
{
    json_t *doc = buf && len ? json_loadb(buf, len, 0, NULL) : NULL, *layer;
    int rc = PC_ENOTFOUND;
    size_t i;
    if (!doc)
        return PC_ENOTFOUND;
    if (desc_size(json_object_get(doc, "config"), d, size))
        rc = 0;
    json_array_foreach(json_object_get(doc, "layers"), i, layer)
    {
        if (rc == 0)
            break;
        if (desc_size(layer, d, size))
            rc = 0;
    }
    json_decref(doc);
    return rc;
}

/* The descriptor is built from the record; only the annotations come from
 * the bytes. Bytes that do not parse (or carry no "annotations" object)
 * give a descriptor without annotations. NULL only when out of memory. */
void *pc_manifest_descriptor(const pc_manifest_rec *m, const void *buf, size_t len)
{
    json_t *desc = NULL, *doc = NULL, *ann;
    bool ok = false;

    desc = json_object();
    if (!desc)
        goto done;
    if (json_object_set_new(desc, "mediaType", json_string(m->media_type)) ||
        json_object_set_new(desc, "digest", json_string(m->digest.str)) ||
        json_object_set_new(desc, "size", json_integer((json_int_t)m->size)))
        goto done;
    if (m->artifact_type[0] &&
        json_object_set_new(desc, "artifactType", json_string(m->artifact_type)))
        goto done;
    if (buf && len > 0)
        doc = json_loadb(buf, len, 0, NULL);
    ann = json_object_get(doc, "annotations");
    if (json_is_object(ann) && json_object_set(desc, "annotations", ann))
        goto done;
    ok = true;
done:
    json_decref(doc);
    if (!ok) {
        json_decref(desc);
        pc_error_set("out of memory building a referrers descriptor");
        return NULL;
    }
    return desc;
}
