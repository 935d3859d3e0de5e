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
 *
 * A mapping needs tags or at least one filter. Filters combine (regex AND
 * semver, then newest); the tags list is added to what they choose.
 */
#ifndef PC_SYNC_H
#define PC_SYNC_H

#include "pc.h"

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
 * without tags or digests, every regex and semver range compiles, every
 * platform parses, each mapping selects something; defaults filled in.
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

#endif
