/*
 * sync.h - the pure parts of `pullcache sync`: its YAML file (libcyaml,
 * unknown keys refused) and choosing tags (an exact list, a POSIX
 * extended regular expression, a semantic-version range, the newest N).
 *
 *   interval: 3600            # seconds between runs without --once (default 3600)
 *   min_remaining: 10         # pause while the source reports fewer pulls left (0 = never)
 *   max_pause: 21600          # longest single pause in seconds (default 21600)
 *   concurrency: 4            # blobs at once per copy (default 4)
 *   mappings:
 *     - source: docker.io/library/nginx          # a repository, no tag
 *       destination: 127.0.0.1:5000/mirror/nginx # a repository, no tag
 *       tags: ["1.27", "1.26"]  # these tags, and/or a filter over the source's tag list:
 *       regex: '^1\.2[0-9]+$'   #   POSIX ERE, the whole tag must match (anchor it)
 *       semver: ">=1.25 <2"     #   tags that parse as versions, within the range
 *       newest: 3               #   of those (or of all version tags), the 3 highest
 *       platforms: [linux/amd64]  # optional; default every platform
 *       referrers: false          # optional: also copy signatures, SBOMs
 *       source_options:           # optional: how to talk to the source
 *         plain_http: false       #   http:// (a prefix on source does the same)
 *         insecure: false         #   TLS without certificate verification
 *         ca_file: /etc/pullcache/registry-ca.crt
 *         username: robot         #   with password_env or password_file:
 *         password_env: SRC_PASSWORD      # an environment variable's name
 *         password_file: /run/secrets/src # the file's first line
 *         anonymous: false        #   ignore stored credentials
 *       destination_options: {plain_http: true}   # the same keys
 *
 * A mapping needs tags or at least one filter. Filters combine (regex AND
 * semver, then newest); the tags list is added to what they choose.
 * source and destination may start with http:// or https://. A mapping's
 * options win over the command line's flags for that side.
 *
 * What sync copied for mappings with platforms or referrers (whose
 * destination digest is not the source's) is kept in a state file
 * (pc_sync_state, sync_state.c), so that a tag already copied is
 * recognized from two HEADs.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_SYNC_H
#define PC_SYNC_H

#include "pc.h"
#include "copy.h"

/* How sync talks to one side of a mapping. Absent keys are NULL. */
typedef struct {
    bool *plain_http;
    bool *insecure;
    bool *anonymous;
    char *ca_file;
    char *username;
    char *password_env;  /* the name of an environment variable */
    char *password_file; /* the password is the first line */
} pc_sync_side;

typedef struct {
    char *source;
    char *destination;
    char **tags;
    unsigned tags_count;
    char *regex;
    char *semver;
    unsigned newest;
    char **platforms;
    unsigned platforms_count;
    bool referrers;
    pc_sync_side *source_options;      /* NULL when absent */
    pc_sync_side *destination_options; /* NULL when absent */
} pc_sync_mapping;

typedef struct {
    unsigned interval;
    unsigned min_remaining;
    unsigned max_pause;
    unsigned concurrency;
    pc_sync_mapping *mappings;
    unsigned mappings_count;
} pc_sync_file;

/* Load and check path: at least one mapping, sources and destinations
 * without tags or digests (an http:// or https:// prefix allowed), every
 * regex and semver range compiles, every platform parses, each mapping
 * selects something, the options agree (a username has one password
 * source and no anonymous, a password source has a username, a ca_file
 * goes with TLS, plain_http agrees with a scheme prefix, password_env is a
 * variable name); defaults filled in.
 * *out is the caller's (pc_sync_file_free). 0, PC_EINVAL (message with
 * the file name and what is wrong), PC_ENOTFOUND (unreadable), PC_ENOMEM. */
int pc_sync_file_load(const char *path, pc_sync_file **out);
void pc_sync_file_free(pc_sync_file *f);

/* A version as tags spell it: [v]MAJOR[.MINOR[.PATCH]], numbers only (a
 * suffix such as -alpine or -rc1 makes it no version). */
typedef struct {
    unsigned long major, minor, patch;
} pc_semver;

/* Parse a tag as a version. 0 or PC_EINVAL. */
int pc_semver_parse(const char *s, pc_semver *out);

/* <0, 0, >0 like strcmp. */
int pc_semver_cmp(const pc_semver *a, const pc_semver *b);

/* Whether v satisfies range: space-separated comparators that must all
 * hold, each OP VERSION with OP one of >= > <= < = (none means =), ^
 * (same major; for 0.x same minor) or ~ (same minor). Missing parts of a
 * comparator's version are 0 (">=1.25" is ">=1.25.0"). 1 yes, 0 no,
 * PC_EINVAL for a malformed range (message set). */
int pc_semver_match(const char *range, const pc_semver *v);

/* Choose the tags of m among the source's tags (avail, n of them; may be
 * NULL when m only lists tags): m->tags (kept in order, also when absent
 * from avail, so a missing one is reported by the copy), then the tags of
 * avail that pass the filters (newest first when newest or semver is set,
 * else in avail's order), no duplicates. *out holds pointers into m->tags
 * and avail (borrowed), an array the caller frees. 0, PC_EINVAL (a bad
 * regex or range; message set), PC_ENOMEM. */
int pc_sync_select(const pc_sync_mapping *m, const char *const *avail, size_t n, const char ***out,
                   size_t *nout);

/* Whether m needs the source's tag list (it has a filter). */
bool pc_sync_needs_list(const pc_sync_mapping *m);

/* Whether a copy of m gives the destination another digest than the
 * source's (platforms), or copies what the tag's digest does not cover
 * (referrers): then a tag is known to be current only from the state. */
bool pc_sync_needs_state(const pc_sync_mapping *m);

/* What m asks of a copy besides the tag, as a string the state records
 * ("platforms=linux/amd64,linux/arm64;referrers=1"): a recorded copy made
 * with other settings does not count. 0 or PC_ETOOBIG. */
int pc_sync_settings(const pc_sync_mapping *m, char *buf, size_t size);

/* ---- what sync copied (sync_state.c) ----
 *
 * A JSON file, by destination "HOST/REPO:TAG":
 *   {"version": 1, "tags": {"127.0.0.1:5000/mirror/nginx:1.27": {
 *      "source": "docker.io/library/nginx", "settings": "platforms=linux/amd64;referrers=0",
 *      "source_digest": "sha256:...", "destination_digest": "sha256:...",
 *      "referrers": [{"digest": "sha256:...", "fingerprint": "api:sha256:..."}],
 *      "synced_at": "2025-01-31T12:00:00Z"}}}
 * A tag is current when its source digest (HEAD), its destination digest
 * (HEAD), the source and the settings are as recorded, and with referrers
 * every recorded subject's fingerprint (pc_copy_referrers_fingerprint) is
 * unchanged. */
typedef struct pc_sync_state pc_sync_state;

/* One copy as recorded. */
typedef struct {
    const char *source;              /* "HOST/REPO" */
    const char *settings;            /* pc_sync_settings */
    const char *source_digest;       /* the source tag's digest before the copy */
    const char *destination_digest;  /* the destination tag's digest after it */
    const pc_copy_subject *subjects; /* with referrers: what was listed */
    size_t nsubjects;
} pc_sync_record;

/* Read the state at path; a missing file is an empty state. *out is the
 * caller's (pc_sync_state_free). 0, PC_EINVAL (not a state file: message
 * names it), PC_ENOTFOUND (unreadable), PC_ENOMEM. */
int pc_sync_state_load(const char *path, pc_sync_state **out);
void pc_sync_state_free(pc_sync_state *s);

/* Whether dest's record has rec's source, settings, source digest and
 * destination digest (rec's subjects are not compared). */
bool pc_sync_state_matches(const pc_sync_state *s, const char *dest, const pc_sync_record *rec);

/* The subjects recorded for dest into out (at most max, 0 when none or no
 * record); returns how many. */
size_t pc_sync_state_subjects(const pc_sync_state *s, const char *dest, pc_copy_subject *out,
                              size_t max);

/* Record rec as dest's, replacing what was there. 0 or PC_ENOMEM. */
int pc_sync_state_put(pc_sync_state *s, const char *dest, const pc_sync_record *rec);

/* Write the state to path: a temporary file next to it, fsync, rename.
 * 0 or PC_ERR (message names the path). */
int pc_sync_state_save(const pc_sync_state *s, const char *path);

#endif
