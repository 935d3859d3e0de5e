/*
 * range.h - byte ranges: the Range request header of blob GETs (RFC 9110,
 * a single range) and the Content-Range header of chunked upload PATCHes
 * (the distribution spec's "<start>-<end>", inclusive).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_RANGE_H
#define PC_RANGE_H

#include "pc.h"

/* Parse a Range header value against a blob of `size` bytes. Forms:
 * "bytes=a-b", "bytes=a-", "bytes=-n". One range only.
 * On success *start and *end (inclusive) lie within the blob, end clamped to
 * size-1. Returns 0; PC_EINVAL when the header is malformed or has several
 * ranges (the caller ignores it and serves the whole blob, as RFC 9110
 * allows); PC_ERANGE when it is well formed but unsatisfiable (416). */
int pc_range_parse(const char *value, uint64_t size, uint64_t *start, uint64_t *end);

/* Parse an upload Content-Range value "<start>-<end>" (also accepts a
 * leading "bytes " and "bytes=" as some clients send). start <= end, and
 * end < 2^64 - 1 so that the length end - start + 1 fits in 64 bits.
 * Returns 0 or PC_EINVAL. */
int pc_content_range_parse(const char *value, uint64_t *start, uint64_t *end);

/* Parse a decimal unsigned 64-bit number that must fill the whole string
 * (no sign, no spaces, no overflow). Returns 0 or PC_EINVAL. */
int pc_parse_u64(const char *s, uint64_t *out);

#endif
