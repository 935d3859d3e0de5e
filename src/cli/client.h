/*
 * client.h - what every client verb (ratelimit, pull, loadgen, copy) shares:
 * the connection flags (--plain-http, --insecure, --ca-file, timeouts), the
 * credentials (flags, environment, ~/.docker/config.json or a containers
 * auth.json), and opening a registry client (src/lib/upstream.h) for an
 * image reference.
 *
 * Verbs parse with getopt_long: put PC_CLIENT_LONGOPTS in the option table
 * and loop over pc_client_getopt(), which handles the shared flags. A stop
 * on SIGINT/SIGTERM is pc_cli_catch_stop() and pc_cli_stop_flag.
 */
#ifndef PC_CLI_CLIENT_H
#define PC_CLI_CLIENT_H

#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ref.h"
#include "upstream.h"

typedef struct {
    bool plain_http;       /* http:// instead of https:// */
    bool insecure;         /* TLS without certificate verification */
    const char *ca_file;   /* extra CA bundle */
    const char *username;  /* --username */
    bool password_stdin;   /* --password-stdin: read the password from stdin */
    bool anonymous;        /* --anonymous: ignore any stored credentials */
    const char *auth_file; /* --auth-file, else $REGISTRY_AUTH_FILE, else docker's */
    long connect_timeout_ms;
    long read_timeout_ms;
    unsigned max_connections;
    char *password; /* filled by pc_client_credentials(); wiped by pc_client_opts_clear() */
} pc_client_opts;

/* Option codes for the shared flags; verbs keep their own codes below 0x1000. */
enum {
    PC_CLIENT_OPT_PLAIN_HTTP = 0x1000,
    PC_CLIENT_OPT_INSECURE,
    PC_CLIENT_OPT_CA_FILE,
    PC_CLIENT_OPT_USERNAME,
    PC_CLIENT_OPT_PASSWORD_STDIN,
    PC_CLIENT_OPT_ANONYMOUS,
    PC_CLIENT_OPT_AUTH_FILE,
    PC_CLIENT_OPT_CONNECT_TIMEOUT,
    PC_CLIENT_OPT_TIMEOUT,
};

/* clang-format off */
#define PC_CLIENT_LONGOPTS                                                            \
    {"plain-http", no_argument, NULL, PC_CLIENT_OPT_PLAIN_HTTP},                      \
    {"insecure", no_argument, NULL, PC_CLIENT_OPT_INSECURE},                          \
    {"ca-file", required_argument, NULL, PC_CLIENT_OPT_CA_FILE},                      \
    {"username", required_argument, NULL, PC_CLIENT_OPT_USERNAME},                    \
    {"password-stdin", no_argument, NULL, PC_CLIENT_OPT_PASSWORD_STDIN},              \
    {"anonymous", no_argument, NULL, PC_CLIENT_OPT_ANONYMOUS},                        \
    {"auth-file", required_argument, NULL, PC_CLIENT_OPT_AUTH_FILE},                  \
    {"connect-timeout", required_argument, NULL, PC_CLIENT_OPT_CONNECT_TIMEOUT},      \
    {"timeout", required_argument, NULL, PC_CLIENT_OPT_TIMEOUT}
/* clang-format on */

/* The usage lines for the shared flags, to paste into a verb's help. */
#define PC_CLIENT_USAGE                                                                            \
    "connection (shared by every client verb):\n"                                                  \
    "  --plain-http          talk http:// (a registry served without TLS, like the tests')\n"      \
    "  --insecure            https without verifying the certificate\n"                            \
    "  --ca-file FILE        trust this CA bundle as well as the system's\n"                       \
    "  --username USER       log in as USER; the password comes from --password-stdin\n"           \
    "  --password-stdin      read the password from the first line of stdin\n"                     \
    "  --anonymous           ignore stored credentials\n"                                          \
    "  --auth-file FILE      credentials file (default $REGISTRY_AUTH_FILE, else\n"                \
    "                        $DOCKER_CONFIG/config.json or ~/.docker/config.json)\n"               \
    "  --connect-timeout S   seconds to connect (default 10)\n"                                    \
    "  --timeout S           seconds without a byte before giving up (default 60)\n"               \
    "  Credentials also come from PULLCACHE_USERNAME + PULLCACHE_PASSWORD.\n"

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
 * not use flag pointers), or -1 after a bad value of a shared flag or an
 * unknown option (a message is printed, for an unknown option a pointer to
 * `pullcache VERB --help`). */
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

/* The registry URL for a reference's host: docker.io (and its aliases) is
 * https://registry-1.docker.io; others are http:// with --plain-http, else
 * https://. Returns 0 or PC_ETOOBIG. */
int pc_client_registry_url(const pc_client_opts *o, const char *host, char *buf, size_t size);

/* Find credentials for host: --username + --password-stdin, else
 * PULLCACHE_USERNAME/PULLCACHE_PASSWORD, else the auth file's "auths" entry
 * (for docker.io also "https://index.docker.io/v1/" and the other
 * aliases). *username / o->password stay NULL for anonymous access.
 * Returns 0, or -1 with a message on stderr (unreadable stdin, malformed
 * file). *describe says where they came from ("anonymous", "flags",
 * "environment", the file path). */
int pc_client_credentials(pc_client_opts *o, const char *host, const char **username,
                          const char **describe);

/* Open a client for ref's registry with the credentials found for it.
 * Returns 0, or -1 with a message on stderr. */
int pc_client_open(pc_client_opts *o, const pc_ref *ref, pc_upstream **out);

/* A registry client for host at url, as user with password (both NULL for
 * anonymous access), with o's connection settings (timeouts,
 * max_connections, CA file, --insecure). Returns 0, or -1 with "pullcache
 * VERB: cannot set up a client for HOST: ..." on stderr (no VERB when it is
 * NULL). */
int pc_client_new(const pc_client_opts *o, const char *verb, const char *host, const char *url,
                  const char *user, const char *password, pc_upstream **out);

/* Parse a reference as the user typed it; prints a message and returns -1
 * when it is malformed. */
int pc_client_parse_ref(const char *s, pc_ref *out);

#endif
