/*
 * client.h - what every client verb (ratelimit, pull, loadgen, copy) shares:
 * the connection flags (--plain-http, --insecure, --ca-file, timeouts; for
 * copy and sync per side: --src-*, --dest-*), the credentials (flags,
 * environment, ~/.docker/config.json or a containers auth.json), the
 * scheme (an http:// prefix, Docker's rule for loopback registries),
 * opening a registry client (src/lib/upstream.h) for an image reference,
 * and the advice on a TLS failure.
 *
 * Verbs parse with getopt_long: put PC_CLIENT_LONGOPTS in the option table
 * and loop over pc_client_getopt(), which handles the shared flags. A stop
 * on SIGINT/SIGTERM is pc_cli_catch_stop() and pc_cli_stop_flag.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_CLI_CLIENT_H
#define PC_CLI_CLIENT_H

#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "endpoint.h"
#include "ref.h"
#include "upstream.h"

/* The settings of one side of a connection, as flags or a sync mapping say
 * them. Booleans are tri-state, -1 = not said: a flag only ever says 1, a
 * sync file may say 0 to undo a flag. Strings are borrowed (NULL = not
 * said). */
typedef struct {
    int plain_http;            /* http:// instead of https:// */
    int insecure;              /* TLS without certificate verification */
    int anonymous;             /* ignore stored credentials */
    const char *ca_file;       /* extra CA bundle */
    const char *username;      /* log in as this user */
    const char *password_env;  /* ... with the password in this environment variable */
    const char *password_file; /* ... or on the first line of this file */
} pc_client_side;

/* Which side a connection is for: the flags and messages it uses. */
typedef enum {
    PC_CLIENT_BOTH = 0, /* a verb with one registry (or any side): --plain-http */
    PC_CLIENT_SRC,      /* copy/sync source: --src-plain-http over --plain-http */
    PC_CLIENT_DST,      /* copy/sync destination: --dest-plain-http over --plain-http */
} pc_client_which;

typedef struct {
    pc_client_side all;    /* --plain-http, --username, ...: every side */
    pc_client_side src;    /* --src-*: copy/sync sources */
    pc_client_side dst;    /* --dest-*: copy/sync destinations */
    bool password_stdin;   /* --password-stdin: one password, read once */
    const char *auth_file; /* --auth-file, else $REGISTRY_AUTH_FILE, else docker's */
    long connect_timeout_ms;
    long read_timeout_ms;
    unsigned max_connections;
    char *stdin_password; /* read on first use; wiped by pc_client_opts_clear() */
} pc_client_opts;

/* Option codes for the shared flags; verbs keep their own codes below 0x1000. */
enum {
    PC_CLIENT_OPT_PLAIN_HTTP = 0x1000,
    PC_CLIENT_OPT_INSECURE,
    PC_CLIENT_OPT_CA_FILE,
    PC_CLIENT_OPT_USERNAME,
    PC_CLIENT_OPT_PASSWORD_ENV,
    PC_CLIENT_OPT_PASSWORD_FILE,
    PC_CLIENT_OPT_ANONYMOUS,
    PC_CLIENT_OPT_PASSWORD_STDIN,
    PC_CLIENT_OPT_AUTH_FILE,
    PC_CLIENT_OPT_CONNECT_TIMEOUT,
    PC_CLIENT_OPT_TIMEOUT,
    /* The per-side flags: PC_CLIENT_OPT_SRC + k and PC_CLIENT_OPT_DST + k,
     * k the offset of the shared flag from PC_CLIENT_OPT_PLAIN_HTTP (0
     * plain-http ... 6 anonymous). */
    PC_CLIENT_OPT_SRC = 0x1100,
    PC_CLIENT_OPT_DST = 0x1200,
};

/* clang-format off */
#define PC_CLIENT_LONGOPTS                                                            \
    {"plain-http", no_argument, NULL, PC_CLIENT_OPT_PLAIN_HTTP},                      \
    {"insecure", no_argument, NULL, PC_CLIENT_OPT_INSECURE},                          \
    {"ca-file", required_argument, NULL, PC_CLIENT_OPT_CA_FILE},                      \
    {"username", required_argument, NULL, PC_CLIENT_OPT_USERNAME},                    \
    {"password-stdin", no_argument, NULL, PC_CLIENT_OPT_PASSWORD_STDIN},              \
    {"password-env", required_argument, NULL, PC_CLIENT_OPT_PASSWORD_ENV},            \
    {"password-file", required_argument, NULL, PC_CLIENT_OPT_PASSWORD_FILE},          \
    {"anonymous", no_argument, NULL, PC_CLIENT_OPT_ANONYMOUS},                        \
    {"auth-file", required_argument, NULL, PC_CLIENT_OPT_AUTH_FILE},                  \
    {"connect-timeout", required_argument, NULL, PC_CLIENT_OPT_CONNECT_TIMEOUT},      \
    {"timeout", required_argument, NULL, PC_CLIENT_OPT_TIMEOUT}

#define PC_CLIENT_SIDE_LONGOPTS_(side, code)                                          \
    {side "-plain-http", no_argument, NULL, (code) + 0},                              \
    {side "-insecure", no_argument, NULL, (code) + 1},                                \
    {side "-ca-file", required_argument, NULL, (code) + 2},                           \
    {side "-username", required_argument, NULL, (code) + 3},                          \
    {side "-password-env", required_argument, NULL, (code) + 4},                      \
    {side "-password-file", required_argument, NULL, (code) + 5},                     \
    {side "-anonymous", no_argument, NULL, (code) + 6}

/* The per-side flags of copy and sync: --src-plain-http, --dest-plain-http, ... */
#define PC_CLIENT_SIDE_LONGOPTS                                                       \
    PC_CLIENT_SIDE_LONGOPTS_("src", PC_CLIENT_OPT_SRC),                               \
    PC_CLIENT_SIDE_LONGOPTS_("dest", PC_CLIENT_OPT_DST)
/* clang-format on */

/* The usage lines for the shared flags, to paste into a verb's help. */
#define PC_CLIENT_USAGE                                                                            \
    "connection (shared by every client verb):\n"                                                  \
    "  --plain-http          talk http:// (a registry served without TLS, like the tests')\n"      \
    "  --insecure            https without verifying the certificate\n"                            \
    "  --ca-file FILE        trust this CA bundle as well as the system's\n"                       \
    "  --username USER       log in as USER, with the password from one of:\n"                     \
    "  --password-stdin        the first line of stdin\n"                                          \
    "  --password-env VAR      the environment variable VAR\n"                                     \
    "  --password-file FILE    the first line of FILE\n"                                           \
    "  --anonymous           ignore stored credentials\n"                                          \
    "  --auth-file FILE      credentials file (default $REGISTRY_AUTH_FILE, else\n"                \
    "                        $DOCKER_CONFIG/config.json or ~/.docker/config.json)\n"               \
    "  --connect-timeout S   seconds to connect (default 10)\n"                                    \
    "  --timeout S           seconds without a byte before giving up (default 60)\n"               \
    "  Credentials also come from PULLCACHE_USERNAME + PULLCACHE_PASSWORD.\n"                      \
    "  An http:// or https:// prefix on a reference chooses the scheme. Without a\n"               \
    "  prefix, --plain-http or --ca-file, a loopback registry (127.0.0.0/8, ::1,\n"                \
    "  localhost) is treated as Docker treats insecure registries: https without\n"                \
    "  verifying the certificate, and plain http when it does not speak TLS.\n"                    \
    "  Other registries are https; docker.io is always https://registry-1.docker.io.\n"

/* The usage lines for the per-side flags (copy, sync). */
#define PC_CLIENT_SIDE_USAGE                                                                       \
    "\n"                                                                                           \
    "each side on its own terms (the flags above apply to both sides):\n"                          \
    "  --src-plain-http, --dest-plain-http\n"                                                      \
    "  --src-insecure, --dest-insecure\n"                                                          \
    "  --src-ca-file FILE, --dest-ca-file FILE\n"                                                  \
    "  --src-username USER, --dest-username USER\n"                                                \
    "  --src-password-env VAR, --dest-password-env VAR\n"                                          \
    "  --src-password-file FILE, --dest-password-file FILE\n"                                      \
    "  --src-anonymous, --dest-anonymous\n"                                                        \
    "  A side's own flag wins over the shared one. --password-stdin is read once\n"                \
    "  and serves each side that has a username but no password of its own.\n"

/* Defaults. */
void pc_client_opts_init(pc_client_opts *o);

/* Wipe and free the password. */
void pc_client_opts_clear(pc_client_opts *o);

/* Handle one getopt_long code. Returns 1 when it was a shared flag, 0 when
 * it is the verb's own, -1 on a bad value (message printed to stderr). */
int pc_client_opt(pc_client_opts *o, int code, const char *arg);

/* The next option for verb's own switch (getopt_long over argv with
 * shortopts and longopts; set optind = 1 before the first call): the shared
 * flags are handled here and skipped. Returns the verb's option code, 0
 * after the last option (optind then names the first operand; longopts must
 * not use flag pointers), or -1 after a bad value of a shared flag, an
 * unknown option or --password-stdin without any --username (a message is
 * printed, for an unknown option a pointer to `pullcache VERB --help`). */
int pc_client_getopt(pc_client_opts *o, const char *verb, int argc, char **argv,
                     const char *shortopts, const struct option *longopts);

/* Set by the handler pc_cli_catch_stop() installs: the cancel/stop flag the
 * verbs hand their engines. */
extern atomic_bool pc_cli_stop_flag;

enum {
    PC_CLI_STOP_TERM = 1, /* SIGTERM as well as SIGINT */
    PC_CLI_STOP_ONCE = 2, /* SA_RESETHAND: a second ^C kills at once */
};

/* Catch SIGINT (and with PC_CLI_STOP_TERM SIGTERM) into pc_cli_stop_flag,
 * without SA_RESTART so that a sleep ends at once. how: PC_CLI_STOP_* bits. */
void pc_cli_catch_stop(int how);

/* The settings for side which: o's per-side flags over its shared ones. */
void pc_client_side_of(const pc_client_opts *o, pc_client_which which, pc_client_side *out);

/* Lay over on top of base: every field over says replaces base's. */
void pc_client_side_over(pc_client_side *base, const pc_client_side *over);

/* What pc_client_connect chose, for messages. */
typedef struct {
    char url[PC_HOST_MAX + 16]; /* the registry URL in use */
    char username[256];         /* "" = anonymous */
    char cred_source[4200];     /* "anonymous", "flags", "$VAR", "environment", a file */
    bool fell_back;             /* a loopback host did not speak TLS: plain http */
} pc_client_conn;

/* Open a registry client for host (a reference's host) with the settings
 * side (pc_client_side_of, perhaps with a sync mapping's laid over) and
 * the scheme a reference's prefix asked for. The scheme: docker.io is
 * https://registry-1.docker.io; else the prefix; else side->plain_http
 * when said; else https, and for a loopback host without a CA file
 * Docker's insecure-registry rule (https without verification; when its
 * /v2/ answer is a TLS failure and plain http answers, http). The
 * credentials, first match: side->username with its password (env, file,
 * else --password-stdin, read once into o); side->anonymous; the
 * PULLCACHE_USERNAME/PULLCACHE_PASSWORD environment; the auth file's
 * entry for host. verb and which name the command and the flags in
 * messages. conn (may be NULL) says what was chosen. Returns 0, or -1 with
 * a message on stderr (missing password, unreadable file, malformed auth
 * file, client setup). */
int pc_client_connect(pc_client_opts *o, const char *verb, pc_client_which which,
                      const pc_client_side *side, const char *host, pc_endpoint_scheme scheme,
                      pc_upstream **out, pc_client_conn *conn);

/* pc_client_connect for a verb with one registry (the shared flags). */
int pc_client_open(pc_client_opts *o, const char *verb, const pc_ref *ref,
                   pc_endpoint_scheme scheme, pc_upstream **out);

/* Parse a reference as the user typed it, with an optional http:// or
 * https:// prefix (*scheme; may be NULL when the verb takes none). Prints a
 * message and returns -1 when it is malformed. */
int pc_client_parse_ref(const char *s, pc_ref *out, pc_endpoint_scheme *scheme);

/* The advice for a failed exchange of class cls and message msg with the
 * registry at url on side which, into buf ("" when there is none): TLS
 * spoken to a plain-HTTP server (the message says so, or, when the server
 * hung up on the handshake, url answers a plain-HTTP GET of /v2/) says so
 * and names --plain-http (--src-plain-http, --dest-plain-http) or an
 * http:// reference; another TLS failure names --ca-file, --insecure and
 * --plain-http. With file_key (a sync file's "source_options"), the file's
 * keys are named as well. */
void pc_client_tls_advice(pc_up_class cls, const char *msg, pc_client_which which,
                          const char *file_key, const char *url, char *buf, size_t size);

#endif
