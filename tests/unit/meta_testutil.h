/*
 * meta_testutil.h - what the meta store tests share (header only, included
 * after cmocka.h and store/meta.h): digests and manifest records made from
 * strings, a listing callback that gathers names, and a tagged manifest put.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_META_TESTUTIL_H
#define PC_META_TESTUTIL_H

#include <stdio.h>
#include <string.h>

#include "digest.h"
#include "store/meta.h"

/* The sha256 digest of s. */
static inline pc_digest dg(const char *s)
{
    pc_digest d;
    assert_int_equal(pc_digest_buffer(&d, PC_DIGEST_SHA256, s, strlen(s)), 0);
    return d;
}

/* An OCI image manifest record of repo whose bytes are content. */
static inline pc_manifest_rec rec(const char *repo, const char *content)
{
    pc_manifest_rec m;
    memset(&m, 0, sizeof(m));
    snprintf(m.repo, sizeof(m.repo), "%s", repo);
    m.digest = dg(content);
    snprintf(m.media_type, sizeof(m.media_type), "application/vnd.oci.image.manifest.v1+json");
    m.size = strlen(content);
    return m;
}

/* A list of strings gathered from a listing callback (the first 32). */
typedef struct {
    int n;
    char s[32][300];
    int stop_after; /* > 0: the callback answers 5 (stop) at this count */
} strings;

static inline int strings_cb(const char *s, void *ctx)
{
    strings *l = ctx;
    if (l->n < 32)
        snprintf(l->s[l->n], sizeof(l->s[0]), "%s", s);
    l->n++;
    return (l->stop_after && l->n >= l->stop_after) ? 5 : 0;
}

/* Assert that l holds exactly the NULL-terminated list want. */
static inline void assert_strings(const strings *l, const char *const *want)
{
    int n = 0;
    while (want[n])
        n++;
    assert_int_equal(l->n, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(l->s[i], want[i]);
}

/* Store a manifest of repo made from content, tagged tag (NULL: none). */
static inline void put_tagged(pc_metastore *ms, const char *repo, const char *content,
                              const char *tag)
{
    pc_manifest_rec m = rec(repo, content);
    assert_int_equal(ms->reg->manifest_put(ms, &m, NULL, 0, tag, NULL), 0);
}

#endif
