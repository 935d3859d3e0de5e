/*
 * error.c - the per-thread error message behind pc_error_set()/pc_error_last().
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "pc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

void pc_error_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

const char *pc_error_last(void)
{
    return last_error;
}

void pc_error_clear(void)
{
    last_error[0] = '\0';
}

int pc_result_from_errno(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
        return PC_ENOSPC;
    case EROFS:
        return PC_EROFS;
    case ENOMEM:
        return PC_ENOMEM;
    default:
        return PC_ERR;
    }
}

const char *pc_result_str(int code)
{
    switch (code) {
    case PC_OK:
        return "ok";
    case PC_ENOTFOUND:
        return "not found";
    case PC_EEXISTS:
        return "already exists";
    case PC_EDIGEST:
        return "digest mismatch";
    case PC_EINVAL:
        return "invalid input";
    case PC_ERANGE:
        return "range not satisfiable";
    case PC_ETOOBIG:
        return "too large";
    case PC_ENOMEM:
        return "out of memory";
    case PC_ELIMIT:
        return "limit reached";
    case PC_EUPSTREAM:
        return "upstream failed";
    case PC_ENOTSUP:
        return "not supported";
    case PC_EAUTH:
        return "authentication required";
    case PC_EDENIED:
        return "access denied";
    case PC_ENOSPC:
        return "storage full";
    case PC_EROFS:
        return "storage read-only";
    case PC_ECONFLICT:
        return "changed concurrently";
    default:
        return "internal error";
    }
}
