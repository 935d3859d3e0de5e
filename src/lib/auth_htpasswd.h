/*
 * auth_htpasswd.h - the users of HTTP Basic authentication, from an Apache
 * htpasswd file: one "user:hash" per line, '#' comments and blank lines
 * allowed, CRLF line ends tolerated.
 *
 * Only bcrypt hashes ($2y$, $2b$, $2a$; `htpasswd -B`) are accepted. A file
 * with any other hash (MD5 $apr1$, {SHA}, crypt DES, SHA-crypt, plain text)
 * is refused as a whole, with a message naming the line, the user and the
 * command that makes a bcrypt hash. So are duplicate users and the names
 * the access policy reserves: "anonymous", "authenticated" and any name
 * starting with '@' (a group there).
 *
 * A loaded pc_htpasswd never changes, so any number of threads may use it.
 * Reloading makes a new object: the server swaps its pointer (for example
 * on SIGHUP) and each request holds a reference while it verifies:
 *
 *   lock; h = pc_htpasswd_ref(current); unlock;
 *   ok = pc_htpasswd_verify(h, user, password);
 *   pc_htpasswd_free(h);
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_AUTH_HTPASSWD_H
#define PC_AUTH_HTPASSWD_H

#include "pc.h"

#define PC_HTPASSWD_FILE_MAX ((size_t)4 << 20) /* largest file loaded */
#define PC_HTPASSWD_USER_MAX 255               /* longest user name */

typedef struct pc_htpasswd pc_htpasswd;

/* Load the htpasswd file at path. *out is the caller's (pc_htpasswd_free).
 * Returns 0, PC_ENOTFOUND / PC_ERR (the file cannot be read), PC_ETOOBIG,
 * PC_EINVAL (a line is wrong; the message names path:line and the user) or
 * PC_ENOMEM. */
int pc_htpasswd_load(pc_htpasswd **out, const char *path);

/* The same from len bytes of text; origin names it in messages. */
int pc_htpasswd_parse(pc_htpasswd **out, const char *text, size_t len, const char *origin);

/* Whether password is user's. Takes one bcrypt computation whether or not
 * the user exists (an unknown user is checked against a dummy hash of the
 * file's highest cost), and compares in constant time. false for NULL
 * arguments and on any failure. */
bool pc_htpasswd_verify(const pc_htpasswd *h, const char *user, const char *password);

/* The bcrypt work pc_htpasswd_verify has done with h so far: the sum of
 * 2^cost over the computations it made (a computation of cost c runs 2^c
 * rounds of key expansion). So a test can see, without a clock, that an
 * unknown user costs what a user of the file's highest cost does. 0 for
 * NULL. */
uint64_t pc_htpasswd_work(const pc_htpasswd *h);

/* Whether user is in the file (no password check). */
bool pc_htpasswd_has_user(const pc_htpasswd *h, const char *user);

/* How many users the file has. */
size_t pc_htpasswd_count(const pc_htpasswd *h);

/* Take another reference to h; returns h. */
pc_htpasswd *pc_htpasswd_ref(pc_htpasswd *h);

/* Drop a reference; the last one frees h. NULL is fine. */
void pc_htpasswd_free(pc_htpasswd *h);

#endif
