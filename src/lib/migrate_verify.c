/*
 * migrate_verify.c - the migration's last step (migrate.h): compare the
 * destination with what was read from the source. Every source blob (but
 * those already reported as not copyable) must be in a fresh listing of
 * the destination with its size; every manifest record, blob link and tag
 * must be there, the tag resolving to the same digest. Each difference is
 * a problem.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "migrate_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int verify_blobs(pc_mig *m)
{
    pc_mig_vec dst = {0};
    char why[PC_DIGEST_MAX + 96];
    int rc = pc_mig_list_blobs(m->o->dst_blobs, &dst);
    if (rc) {
        pc_error_set("listing the destination's blobs: %s", pc_error_last());
        goto done;
    }
    for (size_t i = 0; i < m->blobs.n; i++) {
        const pc_mig_blob *b = PC_MIG_AT(&m->blobs, pc_mig_blob, i);
        if (b->failed)
            continue;
        const pc_blob_entry *have = pc_mig_find_blob(&dst, &b->e.digest);
        if (!have) {
            pc_mig_problem(m, PC_MIGRATE_P_BLOB_MISSING, NULL, NULL, &b->e.digest,
                           "not at the destination");
        } else if (have->size != b->e.size) {
            snprintf(why, sizeof(why),
                     "%" PRIu64 " bytes at the destination, %" PRIu64 " at the source", have->size,
                     b->e.size);
            pc_mig_problem(m, PC_MIGRATE_P_BLOB_SIZE, NULL, NULL, &b->e.digest, why);
        }
    }
    rc = 0;
done:
    pc_mig_vec_free(&dst);
    return rc;
}

static int verify_records(pc_mig *m)
{
    pc_metastore *dst = m->o->dst_meta;
    char why[PC_DIGEST_MAX + 96];
    for (size_t i = 0; i < m->manifests.n; i++) {
        const pc_manifest_rec *r = PC_MIG_AT(&m->manifests, pc_manifest_rec, i);
        pc_manifest_rec have;
        int rc = dst->reg->manifest_get(dst, r->repo, &r->digest, &have);
        if (rc == PC_ENOTFOUND) {
            pc_mig_problem(m, PC_MIGRATE_P_MANIFEST, r->repo, NULL, &r->digest,
                           "no record at the destination");
        } else if (rc) {
            pc_error_set("manifest %s in %s at the destination: %s", r->digest.str, r->repo,
                         pc_error_last());
            return rc;
        } else if (have.size != r->size || strcmp(have.media_type, r->media_type) != 0) {
            pc_mig_problem(m, PC_MIGRATE_P_MANIFEST, r->repo, NULL, &r->digest,
                           "the destination's record differs (size or media type)");
        }
    }
    for (size_t i = 0; i < m->links.n; i++) {
        const pc_mig_link *l = PC_MIG_AT(&m->links, pc_mig_link, i);
        uint64_t size = 0;
        int rc = dst->reg->blob_stat(dst, l->repo, &l->digest, &size);
        if (rc == PC_ENOTFOUND) {
            pc_mig_problem(m, PC_MIGRATE_P_LINK, l->repo, NULL, &l->digest,
                           "not linked at the destination");
        } else if (rc) {
            pc_error_set("blob link %s in %s at the destination: %s", l->digest.str, l->repo,
                         pc_error_last());
            return rc;
        } else if (size != l->size) {
            snprintf(why, sizeof(why), "linked with %" PRIu64 " bytes, %" PRIu64 " at the source",
                     size, l->size);
            pc_mig_problem(m, PC_MIGRATE_P_LINK, l->repo, NULL, &l->digest, why);
        }
    }
    for (size_t i = 0; i < m->tags.n; i++) {
        const pc_mig_tag *t = PC_MIG_AT(&m->tags, pc_mig_tag, i);
        pc_digest have;
        int rc = dst->reg->tag_get(dst, t->repo, t->tag, &have);
        if (rc == PC_ENOTFOUND) {
            pc_mig_problem(m, PC_MIGRATE_P_TAG, t->repo, t->tag, &t->digest,
                           "not at the destination");
        } else if (rc) {
            pc_error_set("tag %s:%s at the destination: %s", t->repo, t->tag, pc_error_last());
            return rc;
        } else if (!pc_digest_equal(&have, &t->digest)) {
            snprintf(why, sizeof(why), "resolves to %s at the destination", have.str);
            pc_mig_problem(m, PC_MIGRATE_P_TAG, t->repo, t->tag, &t->digest, why);
        }
    }
    return 0;
}

int pc_mig_verify(pc_mig *m)
{
    int rc = verify_blobs(m);
    return rc ? rc : verify_records(m);
}
