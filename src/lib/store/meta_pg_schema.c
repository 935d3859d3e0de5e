/*
 * meta_pg_schema.c - the PostgreSQL meta store's schema: the numbered
 * migrations that build and upgrade it (one schema_version row each), and
 * the SQL of every statement the connections prepare.
 *
 * Text that is compared or ordered is COLLATE "C": tags, repositories
 * and digests list in byte order whatever the database's locale.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

#define T "text COLLATE \"C\" NOT NULL"

/* pc_pg_migrations[i] is migration i + 1. Append only; never edit a
 * shipped step (a new table, say leases, is one more string). */
const char *const pc_pg_migrations[] = {
    /* 1: the registry's data. */
    "CREATE TABLE blob_links("
    "  repo " T ", digest " T ", size bigint NOT NULL, created bigint NOT NULL,"
    "  PRIMARY KEY(repo, digest));"
    "CREATE INDEX blob_links_digest ON blob_links(digest);"
    "CREATE TABLE repos(name " T " PRIMARY KEY, created bigint NOT NULL);"
    "CREATE TABLE manifests("
    "  repo " T ", digest " T ", media_type text NOT NULL, size bigint NOT NULL,"
    "  artifact_type text NOT NULL DEFAULT '', subject text COLLATE \"C\","
    "  created bigint NOT NULL, PRIMARY KEY(repo, digest));"
    "CREATE INDEX manifests_digest ON manifests(digest);"
    "CREATE INDEX manifests_subject ON manifests(repo, subject, digest)"
    "  WHERE subject IS NOT NULL;"
    "CREATE TABLE manifest_refs("
    "  repo " T ", manifest " T ", ref " T ", is_manifest smallint NOT NULL,"
    "  PRIMARY KEY(repo, manifest, ref),"
    "  FOREIGN KEY(repo, manifest) REFERENCES manifests(repo, digest) ON DELETE CASCADE);"
    "CREATE INDEX manifest_refs_ref ON manifest_refs(ref);"
    "CREATE TABLE tags("
    "  repo " T ", tag " T ", digest " T ", updated bigint NOT NULL,"
    "  PRIMARY KEY(repo, tag),"
    "  FOREIGN KEY(repo, digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE);"
    "CREATE INDEX tags_digest ON tags(repo, digest);"
    "CREATE TABLE uploads(id " T " PRIMARY KEY, repo " T ", created bigint NOT NULL);",
    /* 2: when the mirror last served or fetched each blob (eviction). */
    "CREATE TABLE cache_access("
    "  digest " T " PRIMARY KEY, size bigint NOT NULL, last_access bigint NOT NULL);"
    "CREATE INDEX cache_access_lru ON cache_access(last_access, digest);",
    /* 3: the client pull limiter's counts, by key and bucket start. */
    "CREATE TABLE limiter_counts("
    "  key " T ", bucket bigint NOT NULL, count bigint NOT NULL, expires bigint NOT NULL,"
    "  PRIMARY KEY(key, bucket));"
    "CREATE INDEX limiter_counts_expires ON limiter_counts(expires);",
    /* 4: leases (who writes an upload, fetches a blob, runs gc) and shared
     * notes (an upstream's last pull budget), in milliseconds of the
     * server's clock. */
    "CREATE TABLE leases(key " T " PRIMARY KEY, owner text NOT NULL, expires_ms bigint NOT NULL);"
    "CREATE INDEX leases_expires ON leases(expires_ms);"
    "CREATE TABLE notes(key " T " PRIMARY KEY, value text NOT NULL, updated_ms bigint NOT NULL);",
};

const int pc_pg_schema_version = (int)(sizeof(pc_pg_migrations) / sizeof(pc_pg_migrations[0]));

const char *const pc_pg_stmt_sql[PG_COUNT] = {
    [PG_LOCK_WRITE] = "SELECT pg_advisory_xact_lock_shared(" PC_PG_KEY_WRITE ")",
    [PG_LOCK_GUARD] = "SELECT pg_advisory_xact_lock(" PC_PG_KEY_WRITE ")",
    [PG_BLOB_LINK] = "INSERT INTO blob_links(repo, digest, size, created) VALUES($1, $2, $3, $4)"
                     " ON CONFLICT(repo, digest) DO NOTHING",
    [PG_BLOB_STAT] = "SELECT size FROM blob_links WHERE repo = $1 AND digest = $2",
    [PG_BLOB_STAT_ANY] = "SELECT size FROM blob_links WHERE digest = $1 LIMIT 1",
    [PG_BLOB_UNLINK] = "DELETE FROM blob_links WHERE repo = $1 AND digest = $2",
    [PG_MANIFEST_UPSERT] =
        "INSERT INTO manifests(" PC_PG_MANIFEST_COLS ", created) VALUES($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT(repo, digest) DO UPDATE SET media_type = excluded.media_type,"
        " size = excluded.size, artifact_type = excluded.artifact_type,"
        " subject = excluded.subject",
    /* manifest_delete locks the manifest row first, as manifest_put's
     * upsert does: the two never wait for each other in a cycle */
    [PG_MANIFEST_LOCK] = "SELECT 1 FROM manifests WHERE repo = $1 AND digest = $2 FOR UPDATE",
    [PG_REFS_CLEAR] = "DELETE FROM manifest_refs WHERE repo = $1 AND manifest = $2",
    [PG_REF_ADD] = "INSERT INTO manifest_refs(repo, manifest, ref, is_manifest)"
                   " VALUES($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    [PG_TAG_SET] = "INSERT INTO tags(repo, tag, digest, updated) VALUES($1, $2, $3, $4)"
                   " ON CONFLICT(repo, tag) DO UPDATE SET digest = excluded.digest,"
                   " updated = excluded.updated",
    /* the compare-and-swap: one row changed, or a conflict. A concurrent
     * writer of the same tag holds its row (or its key) until it commits;
     * then this statement sees its result (READ COMMITTED re-checks the
     * WHERE on the newest row version). */
    [PG_TAG_CREATE] = "INSERT INTO tags(repo, tag, digest, updated) VALUES($1, $2, $3, $4)"
                      " ON CONFLICT(repo, tag) DO NOTHING",
    [PG_TAG_SWAP] = "UPDATE tags SET digest = $3, updated = $4"
                    " WHERE repo = $1 AND tag = $2 AND digest = $5",
    [PG_MANIFEST_GET] =
        "SELECT " PC_PG_MANIFEST_COLS " FROM manifests WHERE repo = $1 AND digest = $2",
    [PG_TAGS_OF_MANIFEST_DEL] = "DELETE FROM tags WHERE repo = $1 AND digest = $2",
    [PG_MANIFEST_DEL] = "DELETE FROM manifests WHERE repo = $1 AND digest = $2",
    [PG_TAG_GET] = "SELECT digest FROM tags WHERE repo = $1 AND tag = $2",
    [PG_TAG_DEL] = "DELETE FROM tags WHERE repo = $1 AND tag = $2",
    /* LIMIT NULL: no limit */
    [PG_TAG_LIST] = "SELECT tag FROM tags WHERE repo = $1 AND tag > $2 ORDER BY tag LIMIT $3",
    [PG_REFERRERS] =
        "SELECT " PC_PG_MANIFEST_COLS " FROM manifests WHERE repo = $1 AND subject = $2"
        " ORDER BY digest",
    [PG_CATALOG] = "SELECT name FROM repos WHERE name > $1 ORDER BY name LIMIT $2",
    [PG_REPO_EXISTS] = "SELECT count(*) FROM repos WHERE name = $1",
    [PG_REPO_ADD] = "INSERT INTO repos(name, created) VALUES($1, $2) ON CONFLICT DO NOTHING",
    [PG_UPLOAD_PUT] = "INSERT INTO uploads(id, repo, created) VALUES($1, $2, $3)",
    [PG_UPLOAD_GET] = "SELECT repo FROM uploads WHERE id = $1",
    [PG_UPLOAD_DEL] = "DELETE FROM uploads WHERE id = $1",
    [PG_REFERENCED] = "SELECT digest FROM manifests UNION ALL SELECT ref FROM manifest_refs"
                      " UNION ALL SELECT digest FROM blob_links",
    [PG_HOLDERS] = "SELECT (SELECT count(*) FROM blob_links WHERE digest = $1)"
                   " + (SELECT count(*) FROM manifests WHERE digest = $1)"
                   " + (SELECT count(*) FROM manifest_refs WHERE ref = $1)",
    [PG_TAG_STAT] = "SELECT digest, updated FROM tags WHERE repo = $1 AND tag = $2",
    [PG_TAG_TOUCH] = "UPDATE tags SET updated = $3 WHERE repo = $1 AND tag = $2 AND digest = $4",
    /* written only when missing or older than PC_PG_TOUCH_EVERY_S: the
     * caller reads first (PG_ACCESS_GET's row), so a repeated touch costs
     * one indexed read and takes no row lock */
    [PG_ACCESS_TOUCH] =
        "INSERT INTO cache_access(digest, size, last_access) VALUES($1, $2, $3)"
        " ON CONFLICT(digest) DO UPDATE SET size = excluded.size,"
        " last_access = excluded.last_access"
        " WHERE cache_access.last_access < excluded.last_access - " PC_PG_TOUCH_EVERY_S,
    [PG_ACCESS_LRU] = "SELECT a.digest, a.size, a.last_access FROM cache_access a"
                      " WHERE NOT EXISTS(SELECT 1 FROM manifests WHERE digest = a.digest)"
                      " ORDER BY a.last_access, a.digest",
    [PG_ACCESS_GET] = "SELECT last_access FROM cache_access WHERE digest = $1",
    [PG_ACCESS_MANIFEST] = "SELECT count(*) FROM (SELECT 1 FROM manifests WHERE digest = $1"
                           " LIMIT 1) m",
    [PG_HOLDER_REPOS] = "SELECT repo FROM blob_links WHERE digest = $1"
                        " UNION SELECT repo FROM manifest_refs WHERE ref = $1 ORDER BY 1",
    [PG_ACCESS_UNLINK] = "DELETE FROM blob_links WHERE digest = $1",
    [PG_ACCESS_DEL] = "DELETE FROM cache_access WHERE digest = $1",
    [PG_LIMIT_PUT] =
        "INSERT INTO limiter_counts(key, bucket, count, expires) VALUES($1, $2, $3, $4)"
        " ON CONFLICT(key, bucket) DO UPDATE SET count = excluded.count,"
        " expires = excluded.expires",
    [PG_LIMIT_PRUNE] = "DELETE FROM limiter_counts WHERE expires <= $1",
    [PG_LIMIT_CLEAR] = "DELETE FROM limiter_counts",
    /* limit_take: takers of one key queue on its advisory lock, so the
     * sum they read is the one they add to */
    [PG_LIMIT_LOCK] = "SELECT pg_advisory_xact_lock(" PC_PG_KEY_LIMITS ", hashtext($1))",
    [PG_LIMIT_SUM] = "SELECT coalesce(sum(count), 0)::bigint, coalesce(min(bucket), -1)::bigint"
                     " FROM limiter_counts WHERE key = $1 AND bucket >= $2 AND count > 0",
    [PG_LIMIT_ADD] = "INSERT INTO limiter_counts(key, bucket, count, expires) VALUES($1, $2, 1, $3)"
                     " ON CONFLICT(key, bucket) DO UPDATE SET count = limiter_counts.count + 1",
    [PG_LIMIT_LOAD] = "SELECT key, bucket, count, expires FROM limiter_counts WHERE expires > $1",
    [PG_LINK_ALL] = "SELECT repo, digest, size FROM blob_links ORDER BY repo, digest",
    [PG_MANIFEST_ALL] = "SELECT " PC_PG_MANIFEST_COLS " FROM manifests ORDER BY repo, digest",
    [PG_REF_ALL] = "SELECT repo, manifest, ref, is_manifest FROM manifest_refs"
                   " ORDER BY repo, manifest, ref",
    [PG_UPLOAD_ALL] = "SELECT id, repo, created FROM uploads ORDER BY id",
    [PG_SIZE_FIX_LINKS] = "UPDATE blob_links SET size = $2 WHERE digest = $1 AND size <> $2",
    [PG_SIZE_FIX_MANIFESTS] = "UPDATE manifests SET size = $2 WHERE digest = $1 AND size <> $2",
/* the server's clock in milliseconds: one clock for every replica */
#define NOW_MS "floor(extract(epoch from clock_timestamp()) * 1000)::bigint"
    [PG_LEASE_TAKE] = "INSERT INTO leases(key, owner, expires_ms) VALUES($1, $2, " NOW_MS " + $3)"
                      " ON CONFLICT(key) DO UPDATE SET owner = excluded.owner,"
                      " expires_ms = excluded.expires_ms"
                      " WHERE leases.expires_ms <= " NOW_MS " OR leases.owner = excluded.owner",
    [PG_LEASE_PRUNE] = "DELETE FROM leases WHERE expires_ms <= " NOW_MS " - 60000",
    [PG_LEASE_RENEW] =
        "UPDATE leases SET expires_ms = " NOW_MS " + $3 WHERE key = $1 AND owner = $2",
    [PG_LEASE_RELEASE] = "DELETE FROM leases WHERE key = $1 AND owner = $2",
    [PG_LEASE_GET] = "SELECT owner, expires_ms FROM leases WHERE key = $1 AND expires_ms > " NOW_MS,
    [PG_NOTE_PUT] = "INSERT INTO notes(key, value, updated_ms) VALUES($1, $2, " NOW_MS ")"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                    " updated_ms = excluded.updated_ms",
    [PG_NOTE_GET] = "SELECT value, updated_ms FROM notes WHERE key = $1",
#undef NOW_MS
    [PG_REF_HOLDER] = "SELECT manifest FROM manifest_refs WHERE repo = $1 AND ref = $2"
                      " AND is_manifest = 0 LIMIT 1",
};
