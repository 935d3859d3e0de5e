/*
 * pc.h - what every pullcache module shares: result codes and the
 * per-thread error message.
 *
 * Policy (decided once): functions return int, 0 on success and a negative
 * PC_E* code on failure. The module where a failure happens sets a message
 * with pc_error_set(); callers pass the code up unchanged. The HTTP edge maps
 * codes to status and registry error codes in one place (server/errors.c).
 * Out of memory is reported as PC_ENOMEM, never aborts.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_H
#define PC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum pc_result {
    PC_OK = 0,
    PC_ERR = -1,        /* internal failure (I/O, database) */
    PC_ENOTFOUND = -2,  /* the thing asked for does not exist */
    PC_EEXISTS = -3,    /* already exists */
    PC_EDIGEST = -4,    /* content does not match its digest */
    PC_EINVAL = -5,     /* malformed input from a client or a file */
    PC_ERANGE = -6,     /* a range or offset that cannot be satisfied */
    PC_ETOOBIG = -7,    /* input larger than allowed */
    PC_ENOMEM = -8,     /* allocation failed */
    PC_ELIMIT = -9,     /* a limit was reached (rate, size cap) */
    PC_EUPSTREAM = -10, /* an upstream registry failed */
    PC_ENOTSUP = -11,   /* the backend cannot do this */
    PC_EAUTH = -12,     /* no or wrong credentials: authenticate (HTTP 401) */
    PC_EDENIED = -13,   /* authenticated, but not allowed (HTTP 403) */
    PC_ENOSPC = -14,    /* the storage is full (disk, quota, database): HTTP 507 */
    PC_EROFS = -15,     /* the storage is read-only: HTTP 503 */
    PC_ECONFLICT = -16, /* a compare-and-swap lost: someone changed it first; retry */
};

/* Set the calling thread's error message (printf-style). Returns nothing. */
void pc_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The calling thread's last error message; "" if none. Borrowed, valid until
 * the next pc_error_set() on this thread. */
const char *pc_error_last(void);

/* Clear the calling thread's error message. */
void pc_error_clear(void);

/* The result code for a failed write's errno: PC_ENOSPC for ENOSPC and
 * EDQUOT, PC_EROFS for EROFS, PC_ENOMEM for ENOMEM, else PC_ERR. */
int pc_result_from_errno(int err);

/* A short name for a result code ("not found"). Static string. */
const char *pc_result_str(int code);

#endif
