/*
 * store/meta_pg.h - the PostgreSQL meta store: the pc_metastore table
 * (store/meta.h) on a PostgreSQL server (libpq), shared by several
 * pullcache replicas. Its options and its open function.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_METASTORE_PG_H
#define PC_METASTORE_PG_H

#include "store/meta.h"

#define PC_PG_POOL_DEFAULT 8u
#define PC_PG_POOL_MAX 1024u
#define PC_PG_WAIT_MS_DEFAULT 30000u
/* The environment variable read when neither conninfo nor conninfo_file
 * nor conninfo_env is given. */
#define PC_PG_CONNINFO_ENV "PULLCACHE_PG_CONNINFO"

/* Where the libpq connection string (key=value pairs or a postgresql://
 * URI) comes from, first set first: conninfo itself; the first line of
 * conninfo_file; the environment variable conninfo_env (an error when it
 * is named and not set); else PULLCACHE_PG_CONNINFO when set; else none,
 * and libpq's own PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
 * PGPASSFILE... decide. The password never appears in a message.
 * Borrowed strings. */
typedef struct {
    const char *conninfo;
    const char *conninfo_file;
    const char *conninfo_env;
    unsigned pool;    /* connections at most; 0: PC_PG_POOL_DEFAULT */
    unsigned wait_ms; /* a call's wait for a free connection; 0: PC_PG_WAIT_MS_DEFAULT */
} pc_pg_opts;

/* Connect, and create or migrate the schema (once, under an advisory
 * lock, however many replicas start together). *out is the caller's
 * (->free, once no thread uses it). 0, PC_EINVAL (a connection string
 * that cannot be read or parsed), or PC_ERR (the server refused or is
 * not there; the message is libpq's, without the password). */
int pc_meta_pg_open(pc_metastore **out, const pc_pg_opts *o);

#endif
