/*
 * microhttpd.h - a guard, not the library: found first on the core
 * library's include path (CMakeLists.txt, pccore) so that src/lib
 * including libmicrohttpd is a build error. The HTTP edge is src/server.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#error "src/lib is the core library: it never includes libmicrohttpd (put HTTP code in src/server)"
