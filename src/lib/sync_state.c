/*
 * sync_state.c - what `pullcache sync` copied, by destination tag (see
 * sync.h): a JSON file (jansson) read at start and rewritten after each
 * copy through a temporary file and a rename, so a crash leaves the old
 * state or the new one, never half of one.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define STATE_VERSION 1

struct pc_sync_state {
    json_t *tags; /* "HOST/REPO:TAG" -> record object */
};

static int empty_state(pc_sync_state **out)
{
    pc_sync_state *s = calloc(1, sizeof(*s));
    if (!s || !(s->tags = json_object())) {
        free(s);
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    *out = s;
    return 0;
}

static bool record_valid(json_t *r)
{
    static const char *const keys[] = {"source", "settings", "source_digest", "destination_digest"};
    if (!json_is_object(r))
        return false;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!json_is_string(json_object_get(r, keys[i])))
            return false;
    json_t *refs = json_object_get(r, "referrers"), *e;
    size_t i;
    if (refs && !json_is_array(refs))
        return false;
    json_array_foreach(refs, i, e)
    {
        pc_digest d;
        const char *ds = json_string_value(json_object_get(e, "digest"));
        if (!ds || pc_digest_parse(&d, ds) != 0 ||
            !json_is_string(json_object_get(e, "fingerprint")))
            return false;
    }
    return true;
}

int pc_sync_state_load(const char *path, pc_sync_state **out)
{
    json_error_t err;
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return empty_state(out);
        pc_error_set("cannot read the state file %s: %s", path, strerror(errno));
        return PC_ENOTFOUND;
    }
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
    fclose(f);
    json_t *tags = json_object_get(root, "tags"), *rec;
    json_t *version = json_object_get(root, "version");
    const char *bad = !root                                          ? err.text
                      : !json_is_object(root)                        ? "not a JSON object"
                      : !json_is_integer(version)                    ? "no \"version\""
                      : json_integer_value(version) != STATE_VERSION ? "another version"
                      : !json_is_object(tags)                        ? "no \"tags\" object"
                                                                     : NULL;
    const char *key;
    json_object_foreach(bad ? NULL : tags, key, rec)
    {
        if (!record_valid(rec)) {
            bad = "a malformed record";
            break;
        }
    }
    if (bad) {
        pc_error_set("%s is not a pullcache sync state file (%s); move it away to start afresh",
                     path, bad);
        json_decref(root);
        return PC_EINVAL;
    }
    pc_sync_state *s = calloc(1, sizeof(*s));
    if (!s) {
        json_decref(root);
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    s->tags = json_incref(tags);
    json_decref(root);
    *out = s;
    return 0;
}

void pc_sync_state_free(pc_sync_state *s)
{
    if (!s)
        return;
    json_decref(s->tags);
    free(s);
}

static bool str_is(json_t *r, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(r, key));
    return v && want && strcmp(v, want) == 0;
}

bool pc_sync_state_matches(const pc_sync_state *s, const char *dest, const pc_sync_record *rec)
{
    json_t *r = json_object_get(s->tags, dest);
    return r && str_is(r, "source", rec->source) && str_is(r, "settings", rec->settings) &&
           str_is(r, "source_digest", rec->source_digest) &&
           str_is(r, "destination_digest", rec->destination_digest);
}

size_t pc_sync_state_subjects(const pc_sync_state *s, const char *dest, pc_copy_subject *out,
                              size_t max)
{
    json_t *refs = json_object_get(json_object_get(s->tags, dest), "referrers"), *e;
    size_t i, n = 0;
    json_array_foreach(refs, i, e)
    {
        if (n == max)
            break;
        /* checked at load (or written by put) */
        if (pc_digest_parse(&out[n].digest, json_string_value(json_object_get(e, "digest"))) != 0)
            continue;
        snprintf(out[n].referrers, sizeof(out[n].referrers), "%s",
                 json_string_value(json_object_get(e, "fingerprint")));
        n++;
    }
    return n;
}

int pc_sync_state_put(pc_sync_state *s, const char *dest, const pc_sync_record *rec)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    json_t *refs = json_array();
    for (size_t i = 0; refs && i < rec->nsubjects; i++)
        if (json_array_append_new(refs,
                                  json_pack("{s:s, s:s}", "digest", rec->subjects[i].digest.str,
                                            "fingerprint", rec->subjects[i].referrers)) != 0) {
            json_decref(refs);
            refs = NULL;
        }
    json_t *r =
        refs ? json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "source", rec->source, "settings",
                         rec->settings, "source_digest", rec->source_digest, "destination_digest",
                         rec->destination_digest, "referrers", refs, "synced_at", when)
             : NULL;
    if (!r || json_object_set_new(s->tags, dest, r) != 0) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    return 0;
}

int pc_sync_state_save(const pc_sync_state *s, const char *path)
{
    char tmp[4200];
    int rc = PC_ERR, fd;
    char *text = NULL;
    json_t *root = json_pack("{s:i, s:O}", "version", STATE_VERSION, "tags", s->tags);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp)) {
        pc_error_set("the state file's path is too long: %s", path);
        goto done;
    }
    if (!root || !(text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        pc_error_set("cannot write the state file %s: %s", path, strerror(errno));
        goto done;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool ok = off == len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        pc_error_set("cannot write the state file %s: %s", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        pc_error_set("cannot write the state file %s: %s", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
done:
    free(text);
    json_decref(root);
    return rc;
}
