/*
 * meta_pg_pool.c - the PostgreSQL meta store's connection pool: at most
 * pool_max connections, made on demand; a thread borrows one per call
 * (and keeps it across nested calls: a transaction, a listing callback
 * calling back into the store), waiting up to wait_ms when all are out.
 * A connection the server dropped (a restart, pg_terminate_backend) is
 * noticed when borrowed, without a round trip, and made again.
 *
 * Connections are counted as the SQLite store's are:
 * pullcache_meta_connections_opened_total and
 * pullcache_meta_connections_open (docs/METRICS.md).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "meta_pg_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

void pc_pg_conn_close(pc_pg_conn *c)
{
    if (!c)
        return;
    if (c->pg) {
        PQfinish(c->pg);
        pc_metrics_gauge_add("pullcache_meta_connections_open", NULL, -1);
    }
    free(c);
}

/* The server's notices ("relation already exists, skipping") are not
 * worth a line on stderr. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* libpq's connection: the store's string (expanded: key=value or a URI),
 * an application name unless it names one, and a 10 s connect timeout
 * unless it sets one (libpq's default is none: a reconnect to a server
 * that is gone would hold the borrow for as long as TCP tries). */
static PGconn *pg_dial(const pc_pg_store *s)
{
    const char *const keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
    const char *const vals[] = {"10", s->conninfo, "pullcache", NULL};
    return PQconnectdbParams(keys, vals, 1);
}

int pc_pg_connect(pc_pg_store *s, pc_pg_conn **out)
{
    pc_pg_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return PC_ENOMEM;
    c->store = s;
    c->pg = pg_dial(s);
    if (!c->pg) {
        free(c);
        pc_error_set("meta store: PostgreSQL: out of memory");
        return PC_ENOMEM;
    }
    pc_metrics_add("pullcache_meta_connections_opened_total", NULL, 1);
    pc_metrics_gauge_add("pullcache_meta_connections_open", NULL, 1);
    PQsetNoticeProcessor(c->pg, quiet, NULL);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        int rc = pc_pg_error(c, NULL, PQerrorMessage(c->pg), "connect");
        pc_pg_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Whether c is still connected, as far as can be told without a round
 * trip: the server's goodbye (a FATAL error, then EOF) has arrived on the
 * socket of a connection it ended. */
static bool conn_alive(pc_pg_conn *c)
{
    /* twice: the first read may take the server's last message and stop
     * short of the end of the stream */
    for (int i = 0; i < 2; i++)
        if (PQstatus(c->pg) != CONNECTION_OK || !PQconsumeInput(c->pg) ||
            PQstatus(c->pg) != CONNECTION_OK)
            return false;
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
        PQfreemem(n);
    return PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}

int pc_pg_revive(pc_pg_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c->pg, "ROLLBACK");
        PQclear(r);
        if (conn_alive(c))
            return 0;
    }
    memset(c->prepared, 0, sizeof(c->prepared));
    PQreset(c->pg);
    pc_metrics_add("pullcache_meta_connections_opened_total", NULL, 1);
    if (PQstatus(c->pg) != CONNECTION_OK)
        return pc_pg_error(c, NULL, PQerrorMessage(c->pg), "reconnect");
    return 0;
}

/* The deadline wait_ms from now, on the condition variable's clock. */
static void deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A free connection, or a slot for a new one (*c NULL), waiting up to
 * wait_ms. 0 or PC_ERR ("all busy"). */
static int pool_take(pc_pg_store *s, pc_pg_conn **c)
{
    struct timespec until;
    bool timed = false;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->free_list) {
            *c = s->free_list;
            s->free_list = (*c)->next_free;
            (*c)->next_free = NULL;
            break;
        }
        if (s->nconns < s->pool_max) {
            *c = NULL;
            s->nconns++; /* reserved; pool_add fills it or pool_unreserve gives it up */
            break;
        }
        if (!timed) {
            deadline(&until, s->wait_ms);
            timed = true;
        }
        if (pthread_cond_timedwait(&s->freed, &s->lock, &until) == ETIMEDOUT && !s->free_list &&
            s->nconns >= s->pool_max) {
            pc_error_set("meta store: all %u PostgreSQL connections stayed busy for %u ms "
                         "(storage.meta.pool)",
                         s->pool_max, s->wait_ms);
            rc = PC_ERR;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int pc_pg_borrow(pc_pg_store *s, pc_pg_conn **out)
{
    pc_pg_conn *c = pthread_getspecific(s->key);
    if (c) {
        c->depth++;
        *out = c;
        return 0;
    }
    int rc = pool_take(s, &c);
    if (rc)
        return rc;
    if (!c) {
        if ((rc = pc_pg_connect(s, &c))) {
            pthread_mutex_lock(&s->lock);
            s->nconns--;
            pthread_cond_signal(&s->freed);
            pthread_mutex_unlock(&s->lock);
            return rc;
        }
        pthread_mutex_lock(&s->lock);
        for (unsigned i = 0; i < s->pool_max; i++)
            if (!s->conns[i]) {
                s->conns[i] = c;
                break;
            }
        pthread_mutex_unlock(&s->lock);
    } else if (!conn_alive(c) && (rc = pc_pg_revive(c))) {
        c->depth = 1;
        pc_pg_give_back(c); /* kept: the next borrow tries again */
        return rc;
    }
    c->depth = 1;
    pthread_setspecific(s->key, c);
    *out = c;
    return 0;
}

void pc_pg_give_back(pc_pg_conn *c)
{
    if (!c || --c->depth > 0)
        return;
    pc_pg_store *s = c->store;
    if (pthread_getspecific(s->key) == c)
        pthread_setspecific(s->key, NULL);
    pthread_mutex_lock(&s->lock);
    c->next_free = s->free_list;
    s->free_list = c;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

void pc_pg_pool_close(pc_pg_store *s)
{
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; s->conns && i < s->pool_max; i++) {
        pc_pg_conn_close(s->conns[i]);
        s->conns[i] = NULL;
    }
    s->free_list = NULL;
    s->nconns = 0;
    pthread_mutex_unlock(&s->lock);
}
