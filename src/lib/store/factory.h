/*
 * store/factory.h - storage chosen by name: the blob backend and the meta
 * store a registry runs on, opened from one set of options (the config's
 * storage section, serve --ephemeral).
 *
 *   storage:
 *     data: ./data
 *     blobs: {driver: fs}        # fs (DATA/blobs, ...) | mem | s3 (store/blob_s3.h)
 *     meta: {driver: sqlite}     # sqlite (DATA/meta.db) | mem | postgres
 *
 * Blob drivers are pc_blob_open's table (store/blob.c); meta drivers are
 * this module's table. A NULL name is the default (fs, sqlite: what
 * pullcache has always used). Durable drivers keep their data across
 * restarts (in the data directory; postgres on its server); mem keeps it
 * in the process only.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_STORE_FACTORY_H
#define PC_STORE_FACTORY_H

#include "pc.h"
#include "store/blob.h"
#include "store/blob_s3.h"
#include "store/meta.h"
#include "store/meta_pg.h"

#define PC_STORE_BLOBS_DEFAULT "fs"
#define PC_STORE_META_DEFAULT "sqlite"

/* Borrowed strings. */
typedef struct {
    const char *data_dir;  /* the data directory (fs blobs, sqlite meta, fetch spools) */
    const char *blobs;     /* blob driver; NULL = PC_STORE_BLOBS_DEFAULT */
    const char *meta;      /* meta driver; NULL = PC_STORE_META_DEFAULT */
    const char *meta_path; /* sqlite: the database file; NULL = DATA/meta.db */
    const pc_pg_opts *pg;  /* postgres: connection and pool; NULL = the defaults */
    /* blob driver s3: its options (store/blob_s3.h; NULL otherwise) */
    const pc_blob_s3_opts *s3;
} pc_store_opts;

/* o's blob and meta driver names (the defaults for NULL). */
const char *pc_store_blobs_name(const pc_store_opts *o);
const char *pc_store_meta_name(const pc_store_opts *o);

/* Whether both names are known drivers: 0, or PC_EINVAL with a message
 * naming the config key, the name and the known drivers. */
int pc_store_check(const pc_store_opts *o);

/* Whether o's blobs and meta both stay in the data directory across
 * restarts (what gc and fsck work on). Unknown names are not durable. */
bool pc_store_durable(const pc_store_opts *o);

/* Whether o is the default storage (fs + sqlite). */
bool pc_store_is_default(const pc_store_opts *o);

/* Open o's blob backend (checked by pc_blob_backend_check; s3 with
 * o->s3). *out is the caller's (->free). 0, PC_ENOTSUP for an unknown
 * name, or the driver's code. */
int pc_store_blobs_open(const pc_store_opts *o, pc_blob_backend **out);

/* Open o's meta store. *out is the caller's (->free). 0, PC_ENOTSUP for
 * an unknown name, PC_EINVAL when a path is too long, or the driver's
 * code. */
int pc_store_meta_open(const pc_store_opts *o, pc_metastore **out);

#endif
