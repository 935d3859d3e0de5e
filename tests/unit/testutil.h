/*
 * testutil.h - helpers the unit tests share (header only; each test is its
 * own program): a temporary directory made for a test and removed with
 * everything in it afterwards.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_TESTUTIL_H
#define PC_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline int pc_test_rm_entry(const char *path, const struct stat *st, int flag,
                                   struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Make /tmp/pc-<what>-XXXXXX into dir (size bytes). NULL when it fails. */
static inline char *pc_test_tmpdir(char *dir, size_t size, const char *what)
{
    snprintf(dir, size, "/tmp/pc-%s-XXXXXX", what);
    return mkdtemp(dir);
}

/* Remove dir and everything below it. */
static inline void pc_test_rmtree(const char *dir)
{
    nftw(dir, pc_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
