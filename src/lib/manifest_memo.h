/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * manifest_memo.h - small manifests' bytes kept in memory by digest, for
 * remote blob backends (manifest_memo.c). Thread-safe; process-wide.
 */
#ifndef PC_MANIFEST_MEMO_H
#define PC_MANIFEST_MEMO_H

#include "pc.h"
#include "digest.h"

/* A copy of d's bytes into *buf (the caller's, free()). 0, PC_ENOTFOUND
 * (not kept), PC_ENOMEM. */
int pc_manifest_memo_get(const pc_digest *d, void **buf, size_t *len);

/* Keep buf as d's bytes when it is small enough and hashes to d (else
 * nothing happens). */
void pc_manifest_memo_put(const pc_digest *d, const void *buf, size_t len);

#endif
