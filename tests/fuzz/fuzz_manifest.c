/*
 * fuzz_manifest.c - libFuzzer target for manifest reading (manifest.c):
 * pc_manifest_parse under each Content-Type a client may send (none, the
 * four manifest types, a parameterised one), pc_manifest_blob_size and
 * pc_manifest_descriptor. The input is the manifest body. Besides the
 * sanitizers, it checks what the registry relies on: a parsed manifest has
 * a known media type, its kind matches that type, every reference is a
 * valid digest, an image manifest's config and layers report their sizes,
 * and a failed parse leaves nothing behind.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
    NULL,
    "",
    PC_MT_OCI_MANIFEST,
    PC_MT_OCI_INDEX,
    PC_MT_DOCKER_MANIFEST,
    " application/vnd.docker.distribution.manifest.list.v2+json ; charset=utf-8",
};

static void check_parsed(const pc_manifest_info *m, const uint8_t *data, size_t size)
{
    CHECK(pc_manifest_type_known(m->media_type));
    CHECK(m->is_index == (strcmp(m->media_type, PC_MT_OCI_INDEX) == 0 ||
                          strcmp(m->media_type, PC_MT_DOCKER_LIST) == 0));
    CHECK(strlen(m->artifact_type) < PC_MEDIA_TYPE_MAX);
    CHECK((m->nrefs == 0) == (m->refs == NULL));
    if (!m->is_index)
        CHECK(m->nrefs >= 1); /* the config */
    for (size_t i = 0; i < m->nrefs; i++) {
        pc_digest back;
        CHECK(m->refs[i].is_manifest == m->is_index);
        CHECK(pc_digest_parse(&back, m->refs[i].digest.str) == 0);
        CHECK(pc_digest_equal(&back, &m->refs[i].digest));
        uint64_t sz;
        int rc = pc_manifest_blob_size(data, size, &m->refs[i].digest, &sz);
        if (!m->is_index)
            CHECK(rc == 0); /* every blob of an image manifest has its size */
    }
    if (m->has_subject) {
        pc_digest back;
        CHECK(pc_digest_parse(&back, m->subject.str) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so a read past the end is caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
        pc_manifest_info m;
        int rc = pc_manifest_parse(&m, buf, size, content_types[i]);
        if (rc == 0) {
            check_parsed(&m, buf, size);
        } else {
            CHECK(rc == PC_EINVAL || rc == PC_ETOOBIG || rc == PC_ENOMEM);
            CHECK(m.refs == NULL && m.nrefs == 0);
        }
        pc_manifest_info_clear(&m);
    }
    pc_manifest_rec rec = {.size = size};
    strcpy(rec.repo, "fuzz/repo");
    strcpy(rec.media_type, PC_MT_OCI_MANIFEST);
    strcpy(rec.artifact_type, "application/x-fuzz");
    if (pc_digest_buffer(&rec.digest, PC_DIGEST_SHA256, buf, size) == 0) {
        json_t *desc = pc_manifest_descriptor(&rec, buf, size);
        CHECK(desc != NULL);
        char *s = json_dumps(desc, JSON_COMPACT);
        CHECK(s != NULL);
        free(s);
        json_decref(desc);
    }
    free(buf);
    return 0;
}
