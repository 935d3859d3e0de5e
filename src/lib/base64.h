/*
 * base64.h - strict base64 for what crosses a trust boundary: the padded
 * standard alphabet of HTTP Basic credentials (RFC 4648 section 4) and the
 * unpadded URL alphabet of JOSE/JWT (section 5). OpenSSL does the coding;
 * this module adds the strictness: no whitespace, no stray padding, and
 * only the canonical encoding of a byte string is accepted (unused bits
 * must be zero), so one value has exactly one spelling.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef PC_BASE64_H
#define PC_BASE64_H

#include "pc.h"

#define PC_BASE64_MAX ((size_t)1 << 24) /* longest input either function takes */

/* Encode len bytes of data. url: the URL alphabet without padding, else
 * the standard alphabet with padding. *out is a NUL-terminated string, the
 * caller's (free). Returns 0, PC_ETOOBIG (len > PC_BASE64_MAX) or
 * PC_ENOMEM. */
int pc_base64_encode(const void *data, size_t len, bool url, char **out);

/* Decode the len characters at s (url: as pc_base64_encode writes them).
 * *out holds *out_len bytes plus a terminating NUL not counted in
 * *out_len; it is the caller's (free; wipe it first when it held a
 * secret). Returns 0, PC_EINVAL (a character outside the alphabet,
 * misplaced or missing padding, a length no encoding has, set unused
 * bits), PC_ETOOBIG (len > PC_BASE64_MAX) or PC_ENOMEM. */
int pc_base64_decode(const char *s, size_t len, bool url, unsigned char **out, size_t *out_len);

#endif
