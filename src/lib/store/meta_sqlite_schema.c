/*
 * meta_sqlite_schema.c - the SQLite meta store's schema: the
 * migrations that build and upgrade it (PRAGMA user_version), and the SQL
 * of every statement the connections prepare and cache.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_sqlite_int.h"

/* pc_sq_migrations[i] upgrades the schema from user_version i to i + 1.
 * Append only; never edit a shipped step. */
const char *const pc_sq_migrations[] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE blob_links("
    "  repo TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL, PRIMARY KEY(repo, digest)) WITHOUT ROWID;"
    "CREATE INDEX blob_links_digest ON blob_links(digest);"
    "CREATE TABLE manifests("
    "  repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL, artifact_type TEXT NOT NULL DEFAULT '', subject TEXT,"
    "  created INTEGER NOT NULL, PRIMARY KEY(repo, digest)) WITHOUT ROWID;"
    "CREATE INDEX manifests_digest ON manifests(digest);"
    "CREATE INDEX manifests_subject ON manifests(repo, subject, digest)"
    "  WHERE subject IS NOT NULL;"
    "CREATE TABLE manifest_refs("
    "  repo TEXT NOT NULL, manifest TEXT NOT NULL, ref TEXT NOT NULL,"
    "  is_manifest INTEGER NOT NULL, PRIMARY KEY(repo, manifest, ref),"
    "  FOREIGN KEY(repo, manifest) REFERENCES manifests(repo, digest) ON DELETE CASCADE)"
    "  WITHOUT ROWID;"
    "CREATE INDEX manifest_refs_ref ON manifest_refs(ref);"
    "CREATE TABLE tags("
    "  repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,"
    "  updated INTEGER NOT NULL, PRIMARY KEY(repo, tag),"
    "  FOREIGN KEY(repo, digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE)"
    "  WITHOUT ROWID;"
    "CREATE INDEX tags_digest ON tags(repo, digest);"
    "CREATE TABLE uploads("
    "  id TEXT NOT NULL PRIMARY KEY, repo TEXT NOT NULL, created INTEGER NOT NULL)"
    "  WITHOUT ROWID;",
    /* 1 -> 2: when the mirror last served or fetched each blob (eviction). */
    "CREATE TABLE cache_access("
    "  digest TEXT NOT NULL PRIMARY KEY, size INTEGER NOT NULL,"
    "  last_access INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX cache_access_lru ON cache_access(last_access, digest);",
    /* 2 -> 3: the client pull limiter's counts, by key and bucket start. */
    "CREATE TABLE limiter_counts("
    "  key TEXT NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL, PRIMARY KEY(key, bucket)) WITHOUT ROWID;"
    "CREATE INDEX limiter_counts_expires ON limiter_counts(expires);",
    /* 3 -> 4: repositories, made by their first stored manifest and kept when
     * its manifests are deleted; blobs alone (a failed push) make none. */
    "CREATE TABLE repos("
    "  name TEXT NOT NULL PRIMARY KEY, created INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO repos(name, created)"
    "  SELECT repo, MIN(created) FROM manifests GROUP BY repo;",
    /* 4 -> 5: leases (who writes an upload, fetches a blob, runs gc) and
     * shared notes (an upstream's last pull budget), for the processes
     * that share this store. Times in unix milliseconds. */
    "CREATE TABLE leases("
    "  key TEXT NOT NULL PRIMARY KEY, owner TEXT NOT NULL, expires_ms INTEGER NOT NULL)"
    "  WITHOUT ROWID;"
    "CREATE INDEX leases_expires ON leases(expires_ms);"
    "CREATE TABLE notes("
    "  key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL)"
    "  WITHOUT ROWID;",
};

const int pc_sq_schema_version = (int)(sizeof(pc_sq_migrations) / sizeof(pc_sq_migrations[0]));

const char *const pc_sq_stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_BLOB_LINK] = "INSERT INTO blob_links(repo, digest, size, created) VALUES(?1, ?2, ?3, ?4)"
                     " ON CONFLICT(repo, digest) DO NOTHING",
    [ST_BLOB_STAT] = "SELECT size FROM blob_links WHERE repo = ?1 AND digest = ?2",
    [ST_BLOB_STAT_ANY] = "SELECT size FROM blob_links WHERE digest = ?1 LIMIT 1",
    [ST_BLOB_UNLINK] = "DELETE FROM blob_links WHERE repo = ?1 AND digest = ?2",
    [ST_MANIFEST_UPSERT] =
        "INSERT INTO manifests(" PC_SQ_MANIFEST_COLS ", created) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT(repo, digest) DO UPDATE SET media_type = excluded.media_type,"
        " size = excluded.size, artifact_type = excluded.artifact_type,"
        " subject = excluded.subject",
    [ST_REFS_CLEAR] = "DELETE FROM manifest_refs WHERE repo = ?1 AND manifest = ?2",
    [ST_REF_ADD] = "INSERT INTO manifest_refs(repo, manifest, ref, is_manifest)"
                   " VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    [ST_TAG_SET] = "INSERT INTO tags(repo, tag, digest, updated) VALUES(?1, ?2, ?3, ?4)"
                   " ON CONFLICT(repo, tag) DO UPDATE SET digest = excluded.digest,"
                   " updated = excluded.updated",
    [ST_MANIFEST_GET] =
        "SELECT " PC_SQ_MANIFEST_COLS " FROM manifests WHERE repo = ?1 AND digest = ?2",
    [ST_TAGS_OF_MANIFEST_DEL] = "DELETE FROM tags WHERE repo = ?1 AND digest = ?2",
    [ST_MANIFEST_DEL] = "DELETE FROM manifests WHERE repo = ?1 AND digest = ?2",
    [ST_TAG_GET] = "SELECT digest FROM tags WHERE repo = ?1 AND tag = ?2",
    [ST_TAG_DEL] = "DELETE FROM tags WHERE repo = ?1 AND tag = ?2",
    [ST_TAG_LIST] = "SELECT tag FROM tags WHERE repo = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
    [ST_REFERRERS] =
        "SELECT " PC_SQ_MANIFEST_COLS " FROM manifests WHERE repo = ?1 AND subject = ?2"
        " ORDER BY digest",
    /* A repository exists once a manifest was stored in it (repos): uploaded
     * blobs alone, say of a push whose manifest failed, make none. */
    [ST_CATALOG] = "SELECT name FROM repos WHERE name > ?1 ORDER BY name LIMIT ?2",
    [ST_REPO_EXISTS] = "SELECT EXISTS(SELECT 1 FROM repos WHERE name = ?1)",
    [ST_REPO_ADD] = "INSERT OR IGNORE INTO repos(name, created) VALUES(?1, ?2)",
    [ST_UPLOAD_PUT] = "INSERT INTO uploads(id, repo, created) VALUES(?1, ?2, ?3)",
    [ST_UPLOAD_GET] = "SELECT repo FROM uploads WHERE id = ?1",
    [ST_UPLOAD_DEL] = "DELETE FROM uploads WHERE id = ?1",
    [ST_REFERENCED] = "SELECT digest FROM manifests UNION ALL SELECT ref FROM manifest_refs"
                      " UNION ALL SELECT digest FROM blob_links",
    [ST_HOLDERS] = "SELECT (SELECT count(*) FROM blob_links WHERE digest = ?1)"
                   " + (SELECT count(*) FROM manifests WHERE digest = ?1)"
                   " + (SELECT count(*) FROM manifest_refs WHERE ref = ?1)",
    [ST_TAG_STAT] = "SELECT digest, updated FROM tags WHERE repo = ?1 AND tag = ?2",
    [ST_TAG_TOUCH] = "UPDATE tags SET updated = ?3 WHERE repo = ?1 AND tag = ?2 AND digest = ?4",
    [ST_ACCESS_GET] = "SELECT last_access FROM cache_access WHERE digest = ?1",
    [ST_ACCESS_TOUCH] =
        "INSERT INTO cache_access(digest, size, last_access) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(digest) DO UPDATE SET size = excluded.size,"
        " last_access = excluded.last_access"
        " WHERE cache_access.last_access < excluded.last_access - " PC_SQ_TOUCH_EVERY_S,
    /* Manifests are never eviction candidates; which repositories belong
     * to the mirror is the cache's rule (access_lru's predicate). */
    [ST_ACCESS_LRU] = "SELECT a.digest, a.size, a.last_access FROM cache_access a"
                      " WHERE NOT EXISTS(SELECT 1 FROM manifests WHERE digest = a.digest)"
                      " ORDER BY a.last_access, a.digest",
    [ST_ACCESS_MANIFEST] = "SELECT EXISTS(SELECT 1 FROM manifests WHERE digest = ?1)",
    [ST_HOLDER_REPOS] = "SELECT repo FROM blob_links WHERE digest = ?1"
                        " UNION SELECT repo FROM manifest_refs WHERE ref = ?1 ORDER BY 1",
    [ST_ACCESS_UNLINK] = "DELETE FROM blob_links WHERE digest = ?1",
    [ST_ACCESS_DEL] = "DELETE FROM cache_access WHERE digest = ?1",
    [ST_LIMIT_PUT] =
        "INSERT INTO limiter_counts(key, bucket, count, expires) VALUES(?1, ?2, ?3, ?4)"
        " ON CONFLICT(key, bucket) DO UPDATE SET count = excluded.count,"
        " expires = excluded.expires",
    [ST_LIMIT_PRUNE] = "DELETE FROM limiter_counts WHERE expires <= ?1",
    [ST_LIMIT_CLEAR] = "DELETE FROM limiter_counts",
    [ST_LIMIT_SUM] = "SELECT coalesce(sum(count), 0), coalesce(min(bucket), -1) FROM limiter_counts"
                     " WHERE key = ?1 AND bucket >= ?2 AND count > 0",
    [ST_LIMIT_ADD] = "INSERT INTO limiter_counts(key, bucket, count, expires) VALUES(?1, ?2, 1, ?3)"
                     " ON CONFLICT(key, bucket) DO UPDATE SET count = count + 1",
    [ST_LIMIT_LOAD] = "SELECT key, bucket, count, expires FROM limiter_counts WHERE expires > ?1",
    [ST_LINK_ALL] = "SELECT repo, digest, size FROM blob_links ORDER BY repo, digest",
    [ST_MANIFEST_ALL] = "SELECT " PC_SQ_MANIFEST_COLS " FROM manifests ORDER BY repo, digest",
    [ST_REF_ALL] = "SELECT repo, manifest, ref, is_manifest FROM manifest_refs"
                   " ORDER BY repo, manifest, ref",
    [ST_UPLOAD_ALL] = "SELECT id, repo, created FROM uploads ORDER BY id",
    [ST_SIZE_FIX_LINKS] = "UPDATE blob_links SET size = ?2 WHERE digest = ?1 AND size <> ?2",
    [ST_SIZE_FIX_MANIFESTS] = "UPDATE manifests SET size = ?2 WHERE digest = ?1 AND size <> ?2",
    /* Taken when free, expired, or already the owner's; changes() says
     * whether it was. Expired leases of other keys are dropped on the way
     * (ST_LEASE_PRUNE) so crashed holders leave no rows for long. */
    [ST_LEASE_TAKE] = "INSERT INTO leases(key, owner, expires_ms) VALUES(?1, ?2, ?3 + ?4)"
                      " ON CONFLICT(key) DO UPDATE SET owner = excluded.owner,"
                      " expires_ms = excluded.expires_ms"
                      " WHERE leases.expires_ms <= ?3 OR leases.owner = excluded.owner",
    [ST_LEASE_PRUNE] = "DELETE FROM leases WHERE expires_ms <= ?1 - 60000",
    [ST_LEASE_RENEW] = "UPDATE leases SET expires_ms = ?3 + ?4 WHERE key = ?1 AND owner = ?2",
    [ST_LEASE_RELEASE] = "DELETE FROM leases WHERE key = ?1 AND owner = ?2",
    [ST_LEASE_GET] = "SELECT owner, expires_ms FROM leases WHERE key = ?1 AND expires_ms > ?2",
    [ST_NOTE_PUT] = "INSERT INTO notes(key, value, updated_ms) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                    " updated_ms = excluded.updated_ms",
    [ST_NOTE_GET] = "SELECT value, updated_ms FROM notes WHERE key = ?1",
    [ST_REF_HOLDER] = "SELECT manifest FROM manifest_refs WHERE repo = ?1 AND ref = ?2"
                      " AND is_manifest = 0 LIMIT 1",
};
