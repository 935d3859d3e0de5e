/*
 * pg_testutil.h - fresh PostgreSQL databases for the meta store tests, on
 * the server tests/tools/pg_test.sh started: PC_TEST_PG_CONNINFO is its
 * connection string (a superuser on the maintenance database).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_PG_TESTUTIL_H
#define PC_PG_TESTUTIL_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The server's connection string, NULL when there is none. */
static inline const char *pc_test_pg_base(void)
{
    const char *c = getenv("PC_TEST_PG_CONNINFO");
    return c && *c ? c : NULL;
}

static inline void pc_test_pg_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Run sql on the maintenance database (or db when not NULL). 0 or -1
 * (the message printed). */
static inline int pc_test_pg_sql(const char *db, const char *sql)
{
    char ci[1024];
    snprintf(ci, sizeof(ci), "%s%s%s", pc_test_pg_base(), db ? " dbname=" : "", db ? db : "");
    PGconn *c = PQconnectdb(ci);
    int rc = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg test: %s", PQerrorMessage(c));
        rc = -1;
    } else {
        PQsetNoticeProcessor(c, pc_test_pg_quiet, NULL);
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            fprintf(stderr, "pg test: %s: %s", sql, PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}

/* The one integer sql answers on db, or -1. */
static inline long long pc_test_pg_int(const char *db, const char *sql)
{
    char ci[1024];
    snprintf(ci, sizeof(ci), "%s%s%s", pc_test_pg_base(), db ? " dbname=" : "", db ? db : "");
    PGconn *c = PQconnectdb(ci);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else
            fprintf(stderr, "pg test: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

/* A new empty database (its name into db, its connection string into
 * ci); owner when not NULL owns it. 0 or -1. */
static inline int pc_test_pg_createdb(char *db, size_t dbsize, char *ci, size_t cisize,
                                      const char *owner)
{
    static int seq;
    char sql[256];
    snprintf(db, dbsize, "pc_test_%ld_%d", (long)getpid(), __sync_add_and_fetch(&seq, 1));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s%s%s", db, owner ? " OWNER " : "",
             owner ? owner : "");
    if (pc_test_pg_sql(NULL, sql) != 0)
        return -1;
    snprintf(ci, cisize, "%s dbname=%s", pc_test_pg_base(), db);
    return 0;
}

static inline void pc_test_pg_dropdb(const char *db)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    pc_test_pg_sql(NULL, sql);
}

#endif
