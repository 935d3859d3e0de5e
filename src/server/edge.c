/*
 * edge.c - the HTTP edge's defences: connection bookkeeping (a deadline for
 * every request head, an idle deadline, displacement at the connection
 * cap), the raw request path check (no percent-encoding in a name) and the
 * request head checks against request smuggling (RFC 9112).
 *
 * Every connection libmicrohttpd opens gets a pc_conn. A connection waiting
 * for a request head (just accepted, or a keep-alive connection whose next
 * request line has come in) is in the `head` queue; one idle between
 * requests is in the `idle` queue; one whose head is complete is in neither
 * (busy). Each queue is in the order its members entered it, so the oldest
 * is first. A watchdog thread shuts down (shutdown SHUT_RDWR; libmicrohttpd
 * then sees the end of the stream and closes) every connection past its
 * queue's deadline; a new connection that would take the open count past
 * http.max_connections displaces the oldest waiting one. libmicrohttpd's own
 * idle timeout restarts with every byte, so alone it lets a client that
 * sends one byte a second hold a slot for ever.
 *
 * The socket context belongs to tls.c (its MHD_OPTION_NOTIFY_CONNECTION is
 * called from ours), so a pc_conn is found by its socket fd, unique among
 * open connections. The fd stays valid while its pc_conn is in the table:
 * libmicrohttpd tells us MHD_CONNECTION_NOTIFY_CLOSED (which takes it out,
 * under the lock) before it closes the socket.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "server.h"
#include "util.h"
#include "http.h"
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

typedef enum { CONN_HEAD, CONN_BUSY, CONN_IDLE, CONN_SHED } conn_state;

typedef struct pc_conn pc_conn;
struct pc_conn {
    pc_conn *prev, *next; /* in the queue of its state (head, idle) */
    struct MHD_Connection *mhd;
    int fd;
    conn_state state;
    int64_t since; /* ms (CLOCK_MONOTONIC) it entered its queue */
    bool raw_pct;  /* the current request's raw path is percent-encoded before its last '/' */
};

typedef struct {
    pc_conn *first, *last;
} conn_queue;

struct pc_edge {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running, stop;
    conn_queue head, idle;
    unsigned open; /* connections open (notified started, not yet closed) */
    unsigned shed; /* of those, shut down by us and not yet closed */
    unsigned max;  /* http.max_connections */
    int64_t head_ms, idle_ms;
    pc_conn **by_fd; /* the open connections by socket fd */
    size_t nfd;
    MHD_NotifyConnectionCallback chain; /* tls.c's, called from ours; NULL: none */
    void *chain_cls;
};

static void q_push(conn_queue *q, pc_conn *c)
{
    c->next = NULL;
    c->prev = q->last;
    if (q->last)
        q->last->next = c;
    else
        q->first = c;
    q->last = c;
}

static void q_del(conn_queue *q, pc_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        q->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        q->last = c->prev;
    c->prev = c->next = NULL;
}

static conn_queue *queue_of(struct pc_edge *e, pc_conn *c)
{
    return c->state == CONN_HEAD ? &e->head : c->state == CONN_IDLE ? &e->idle : NULL;
}

/* Move c to state s (a queue's tail when s waits). Under e->lock. */
static void set_state(struct pc_edge *e, pc_conn *c, conn_state s)
{
    conn_queue *q = queue_of(e, c);
    if (q)
        q_del(q, c);
    c->state = s;
    c->since = pc_util_mono_ms();
    if ((q = queue_of(e, c)))
        q_push(q, c);
}

/* Shut a waiting connection down; libmicrohttpd closes it. Under e->lock. */
static void shed(struct pc_edge *e, pc_conn *c, const char *reason)
{
    set_state(e, c, CONN_SHED);
    e->shed++;
    shutdown(c->fd, SHUT_RDWR);
    char labels[48];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    pc_metrics_add("pullcache_http_connections_shed_total", labels, 1);
}

static void *watchdog(void *arg)
{
    struct pc_edge *e = arg;
    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        int64_t now = pc_util_mono_ms();
        while (e->head.first && now - e->head.first->since >= e->head_ms)
            shed(e, e->head.first, "header_timeout");
        while (e->idle.first && now - e->idle.first->since >= e->idle_ms)
            shed(e, e->idle.first, "idle");
        /* wake at the next deadline, at least every 250 ms (a new first) */
        int64_t next = now + 250;
        if (e->head.first && e->head.first->since + e->head_ms < next)
            next = e->head.first->since + e->head_ms;
        if (e->idle.first && e->idle.first->since + e->idle_ms < next)
            next = e->idle.first->since + e->idle_ms;
        if (next < now + 10)
            next = now + 10;
        struct timespec until = {(time_t)(next / 1000), (long)(next % 1000) * 1000000};
        pthread_cond_timedwait(&e->wake, &e->lock, &until);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* Let the process hold max connections plus its files: raise the soft
 * RLIMIT_NOFILE towards the hard one when it is too low. The limit then
 * in force (the size of the fd table). */
static size_t raise_nofile(unsigned max)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max * 2 + 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 65536;
    rlim_t old = rl.rlim_cur;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
        if (rl.rlim_cur < want)
            pc_log(PC_LOG_WARN,
                   "open files limited to %llu (hard limit): fewer than http.max_connections "
                   "%u need; raise it (ulimit -Hn, LimitNOFILE=)",
                   (unsigned long long)rl.rlim_cur, max);
        else
            pc_log(PC_LOG_DEBUG, "raised the open files limit from %llu to %llu",
                   (unsigned long long)old, (unsigned long long)rl.rlim_cur);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > ((rlim_t)1 << 20) ? (size_t)1 << 20
                                                                           : (size_t)rl.rlim_cur;
}

int pc_edge_start(pc_server *srv, MHD_NotifyConnectionCallback chain, void *chain_cls)
{
    const pc_config_http *h = srv->cfg->http;
    struct pc_edge *e = calloc(1, sizeof(*e));
    if (!e)
        return PC_ENOMEM;
    e->max = h->max_connections;
    e->head_ms = (int64_t)h->header_timeout * 1000;
    e->idle_ms = (int64_t)h->timeout * 1000;
    e->chain = chain;
    e->chain_cls = chain_cls;
    e->nfd = raise_nofile(e->max);
    if (!(e->by_fd = calloc(e->nfd, sizeof(*e->by_fd)))) {
        free(e);
        return PC_ENOMEM;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&e->thread, NULL, watchdog, e) != 0) {
        pthread_cond_destroy(&e->wake);
        pthread_mutex_destroy(&e->lock);
        free(e->by_fd);
        free(e);
        pc_error_set("cannot start the connection watchdog thread");
        return PC_ERR;
    }
    e->running = true;
    pc_metrics_declare("pullcache_http_connections_shed_total", PC_METRIC_COUNTER,
                       "Connections closed by the server before their request: reason "
                       "header_timeout, idle or displaced (at http.max_connections)");
    static const char *reasons[] = {"header_timeout", "idle", "displaced"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "reason=\"%s\"", reasons[i]);
        pc_metrics_add("pullcache_http_connections_shed_total", labels, 0);
    }
    srv->edge = e;
    return 0;
}

void pc_edge_free(pc_server *srv)
{
    struct pc_edge *e = srv->edge;
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    if (e->running)
        pthread_join(e->thread, NULL);
    /* the daemon is stopped: every connection was notified closed */
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    free(e->by_fd);
    free(e);
    srv->edge = NULL;
}

unsigned pc_edge_mhd_limit(const pc_server *srv, unsigned threads)
{
    /* The cap is ours (displacement needs a slot to land in): libmicrohttpd
     * splits its own limit between the pool's threads, so each gets room
     * for every connection plus those being closed. */
    unsigned per = srv->cfg->http->max_connections + 64;
    return per * (threads ? threads : 1);
}

static int fd_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* The pc_conn of c, NULL when untracked. Under e->lock. */
static pc_conn *conn_of(struct pc_edge *e, struct MHD_Connection *c)
{
    int fd = fd_of(c);
    pc_conn *pc = fd >= 0 && (size_t)fd < e->nfd ? e->by_fd[fd] : NULL;
    return pc && pc->mhd == c ? pc : NULL;
}

static void conn_started(struct pc_edge *e, struct MHD_Connection *conn)
{
    int fd = fd_of(conn);
    if (fd < 0 || (size_t)fd >= e->nfd)
        return; /* untracked: only libmicrohttpd's idle timeout applies */
    pc_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->mhd = conn;
    c->fd = fd;
    c->state = CONN_BUSY;
    pthread_mutex_lock(&e->lock);
    e->by_fd[fd] = c;
    e->open++;
    set_state(e, c, CONN_HEAD);
    if (e->open - e->shed > e->max) {
        /* full: the connection waiting longest gives way (this one only
         * when every other is in the middle of a request) */
        pc_conn *v = e->head.first;
        if (e->idle.first && e->idle.first->since <= v->since)
            v = e->idle.first;
        shed(e, v, "displaced");
    }
    pthread_mutex_unlock(&e->lock);
}

static void conn_closed(struct pc_edge *e, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&e->lock);
    pc_conn *c = conn_of(e, conn);
    if (c) {
        if (c->state == CONN_SHED)
            e->shed--;
        set_state(e, c, CONN_BUSY); /* out of every queue */
        e->by_fd[c->fd] = NULL;
        e->open--;
    }
    pthread_mutex_unlock(&e->lock);
    free(c);
}

void pc_edge_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode code)
{
    pc_server *srv = cls;
    struct pc_edge *e = srv->edge;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        conn_started(e, conn);
    if (e->chain)
        e->chain(e->chain_cls, conn, socket_context, code);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        conn_closed(e, conn);
}

/* Whether the raw path (up to '?') has a '%' before its last '/'. */
static bool pct_before_last_slash(const char *uri)
{
    size_t n = strcspn(uri, "?#");
    const char *last = NULL;
    for (size_t i = 0; i < n; i++)
        if (uri[i] == '/')
            last = uri + i;
    return last && memchr(uri, '%', (size_t)(last - uri)) != NULL;
}

void *pc_edge_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    pc_server *srv = cls;
    struct pc_edge *e = srv->edge;
    pthread_mutex_lock(&e->lock);
    pc_conn *c = conn_of(e, conn);
    if (c) {
        c->raw_pct = uri && pct_before_last_slash(uri);
        if (c->state == CONN_IDLE) /* a keep-alive connection's next request line */
            set_state(e, c, CONN_HEAD);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL; /* the request's *con_cls stays NULL until on_request */
}

void pc_edge_head_done(pc_req *req)
{
    struct pc_edge *e = req->srv->edge;
    pthread_mutex_lock(&e->lock);
    pc_conn *c = conn_of(e, req->conn);
    if (c) {
        req->raw_pct = c->raw_pct;
        if (c->state != CONN_SHED)
            set_state(e, c, CONN_BUSY);
    }
    pthread_mutex_unlock(&e->lock);
}

void pc_edge_request_done(pc_server *srv, struct MHD_Connection *conn)
{
    struct pc_edge *e = srv->edge;
    pthread_mutex_lock(&e->lock);
    pc_conn *c = conn_of(e, conn);
    if (c && c->state != CONN_SHED)
        set_state(e, c, CONN_IDLE);
    pthread_mutex_unlock(&e->lock);
}

/* ---- request head checks ---- */

/* RFC 9110 5.6.2 token characters */
static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

struct head_scan {
    const char *bad; /* what is wrong, NULL for nothing */
    int te, cl;      /* Transfer-Encoding, Content-Length headers seen */
};

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct head_scan *s = cls;
    (void)kind;
    if (key_size == 0) {
        s->bad = "empty header name";
        return MHD_NO;
    }
    for (size_t i = 0; i < key_size; i++)
        if (!is_tchar((unsigned char)key[i])) {
            /* "Transfer-Encoding : chunked" arrives as a name with a space */
            s->bad = "invalid character in a header name (whitespace before the colon?)";
            return MHD_NO;
        }
    if (!value) {
        s->bad = "header without a value";
        return MHD_NO;
    }
    if (memchr(value, '\r', value_size) || memchr(value, '\n', value_size) ||
        strlen(value) != value_size) {
        s->bad = "CR, LF or NUL in a header value";
        return MHD_NO;
    }
#if MHD_VERSION <= 0x00097500
    /* libmicrohttpd 0.9.75 ends a header line at CRLF or at a bare LF and
     * zeroes the terminator in place (value and name point into its read
     * buffer): after a CRLF-terminated value come two NULs, after a bare LF
     * one NUL and the next line. A folded (obs-fold) line moves the value
     * away from its name; RFC 9112 5.2 allows refusing that too. */
    const char *after_name = key + key_size + 1;
    bool laid_out = value >= after_name && value - after_name < 4096;
    for (const char *p = after_name; laid_out && p < value; p++)
        laid_out = *p == ' ' || *p == '\t';
    if (!laid_out || value[value_size] != '\0' || value[value_size + 1] != '\0') {
        s->bad = "a header line not ended by CRLF (bare LF or a folded line)";
        return MHD_NO;
    }
#endif
    if (key_size == 17 && strncasecmp(key, "Transfer-Encoding", 17) == 0)
        s->te++;
    else if (key_size == 14 && strncasecmp(key, "Content-Length", 14) == 0)
        s->cl++;
    return MHD_YES;
}

static int refuse(pc_req *req, unsigned status, const char *code, const char *msg)
{
    pc_log(PC_LOG_DEBUG, "http: refused request head: %s", msg);
    /* answered on the head: libmicrohttpd reads nothing more from this
     * connection (no body, no pipelined request) and closes it */
    return pc_req_error(req, status, code, msg);
}

bool pc_edge_head_ok(pc_req *req, const char *version, int *mhd)
{
    struct head_scan s = {NULL, 0, 0};
    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, scan_header, &s);
#if MHD_VERSION <= 0x00097500
    /* the request line, as the header lines above */
    size_t vn = version ? strlen(version) : 0;
    if (!s.bad && vn && version[vn + 1] != '\0')
        s.bad = "the request line is not ended by CRLF (bare LF)";
#else
    (void)version;
#endif
    if (s.bad) {
        *mhd = refuse(req, 400, "UNSUPPORTED", s.bad);
        return false;
    }
    /* several Content-Length headers, or one with Transfer-Encoding, frame
     * the body ambiguously (RFC 9112 6.3): refuse rather than guess */
    if (s.cl > 1 || s.te > 1 || (s.cl && s.te)) {
        *mhd = refuse(req, 400, "SIZE_INVALID",
                      "conflicting Content-Length / Transfer-Encoding headers");
        return false;
    }
    if (s.te) {
        /* only chunked, alone: libmicrohttpd reads anything else to the end
         * of the connection (RFC 9112 6.1: 501 for a coding not understood) */
        const char *te = pc_req_header(req, "Transfer-Encoding");
        size_t n = te ? strlen(te) : 0;
        while (n && (te[n - 1] == ' ' || te[n - 1] == '\t'))
            n--;
        if (n != 7 || strncasecmp(te, "chunked", 7) != 0) {
            *mhd = refuse(req, 501, "UNSUPPORTED",
                          "Transfer-Encoding other than chunked is not supported");
            return false;
        }
    }
    const char *cl = s.cl ? pc_req_header(req, "Content-Length") : NULL;
    if (cl) {
        errno = 0;
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        uint64_t max = req->srv->cfg->http->max_body_size;
        if (errno == ERANGE || v > max) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "request body of %s bytes is over the limit of %llu (http.max_body_size)", cl,
                     (unsigned long long)max);
            *mhd = refuse(req, 413, "SIZE_INVALID", msg);
            return false;
        }
    }
    return true;
}
