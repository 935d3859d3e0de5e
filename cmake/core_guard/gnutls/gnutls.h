/*
 * gnutls.h - a guard, not the library: found first on the core library's
 * include path (CMakeLists.txt, pccore) so that src/lib including gnutls
 * (libmicrohttpd's TLS back end, src/server/tls.c) is a build error.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#error "src/lib is the core library: it never includes gnutls (TLS serving is src/server/tls.c)"
