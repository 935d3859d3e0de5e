/*
 * fsck.c - the vocabulary of fsck.h's reports (problem kinds, actions,
 * statuses) and which repositories are mirrored. The check and repair
 * themselves touch the stores and are the registry's: registry_fsck*.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "fsck.h"

#include <stdlib.h>
#include <string.h>

#include "ref.h"

static const struct {
    const char *name, *about, *action, *done;
} kinds[PC_FSCK_KIND_COUNT] = {
    [PC_FSCK_CORRUPT_BLOB] = {"corrupt_blob", "blob file whose bytes do not match its digest",
                              "remove the blob file (a pull re-fetches or a push re-uploads it)",
                              "removed the blob file"},
    [PC_FSCK_DANGLING_LINK] = {"dangling_link", "blob link whose blob file is missing or corrupt",
                               "remove the link", "removed the link"},
    [PC_FSCK_MANIFEST_MISSING] = {"manifest_blob_missing",
                                  "manifest whose bytes are missing or corrupt",
                                  "remove the manifest with its tags",
                                  "removed the manifest with its tags"},
    [PC_FSCK_INCOMPLETE_MANIFEST] = {"incomplete_manifest",
                                     "local manifest missing a blob or child manifest",
                                     "remove the manifest with its tags (push it again)",
                                     "removed the manifest with its tags"},
    [PC_FSCK_UNLINKED_BLOB] = {"unlinked_blob",
                               "blob a local manifest needs, stored but not linked to its "
                               "repository",
                               "link the blob to the repository",
                               "linked the blob to the repository"},
    [PC_FSCK_SIZE_MISMATCH] = {"size_mismatch", "meta store records another size than the blob has",
                               "record the blob's true size", "recorded the blob's true size"},
    [PC_FSCK_ORPHAN_BLOB] = {"orphan_blob", "blob file nothing references, older than the grace",
                             "remove the blob file", "removed the blob file"},
    [PC_FSCK_ORPHAN_UPLOAD] = {"orphan_upload",
                               "staging file without an upload session, idle past the grace",
                               "remove the staging file", "removed the staging file"},
    [PC_FSCK_STALE_UPLOAD] = {"stale_upload", "upload session idle for longer than the upload ttl",
                              "remove the staging file and the session",
                              "removed the staging file and the session"},
    [PC_FSCK_UPLOAD_WITHOUT_FILE] = {"upload_without_file",
                                     "upload session whose staging file is gone",
                                     "remove the session", "removed the session"},
    [PC_FSCK_STALE_TEMP] = {"stale_temp", "temp file left by a crash, older than the grace",
                            "remove the temp file", "removed the temp file"},
};

const char *pc_fsck_kind_name(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].name : "unknown";
}

const char *pc_fsck_kind_about(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].about : "unknown";
}

const char *pc_fsck_action(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].action : "none";
}

const char *pc_fsck_done(pc_fsck_kind k)
{
    return k < PC_FSCK_KIND_COUNT ? kinds[k].done : "nothing";
}

const char *pc_fsck_status_name(pc_fsck_status s)
{
    switch (s) {
    case PC_FSCK_FOUND:
        return "found";
    case PC_FSCK_REPAIRED:
        return "repaired";
    case PC_FSCK_SKIPPED:
        return "skipped";
    case PC_FSCK_FAILED:
        return "failed";
    }
    return "unknown";
}

bool pc_fsck_mirrored(const char *repo, const char *const *upstreams, size_t nups)
{
    const char *slash = strchr(repo, '/');
    if (!slash)
        return false;
    size_t n = (size_t)(slash - repo);
    if (pc_ref_host_like(repo, n))
        return true;
    for (size_t i = 0; i < nups; i++)
        if (strlen(upstreams[i]) == n && memcmp(upstreams[i], repo, n) == 0)
            return true;
    return false;
}

void pc_fsck_report_free(pc_fsck_report *r)
{
    if (!r)
        return;
    free(r->problems);
    r->problems = NULL;
    r->nproblems = 0;
}
