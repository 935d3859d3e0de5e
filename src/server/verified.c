/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * verified.c - the blobs this process has seen hash right whole, so that
 * later whole GETs of the same stored bytes go out unhashed (h_blobs.c).
 *
 * An entry is a digest, a size and the identity of the stored version
 * that hashed right: for a file its device, inode and modification time
 * (a replaced file is another identity), for a backend without files the
 * identity its reader reports (S3: the object's ETag, and every ranged GET
 * of that reader carries If-Match on it, so the bytes are that version's).
 * A direct-mapped table: a colliding digest evicts the older entry, which
 * only costs one more hashed GET.
 */
#include "http.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define VERIFIED_SLOTS 4096
#define IDENT_MAX 96

typedef struct {
    char digest[PC_DIGEST_MAX];
    char ident[IDENT_MAX];
    uint64_t size;
} verified_entry;

static verified_entry verified[VERIFIED_SLOTS];
static pthread_mutex_t verified_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t verified_slot(const char *digest)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)digest; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return (size_t)(h % VERIFIED_SLOTS);
}

bool pc_verified_has(const pc_digest *d, const char *ident, uint64_t size)
{
    if (!ident || !*ident || strlen(ident) >= IDENT_MAX)
        return false;
    pthread_mutex_lock(&verified_lock);
    const verified_entry *v = &verified[verified_slot(d->str)];
    bool yes = v->size == size && strcmp(v->digest, d->str) == 0 && strcmp(v->ident, ident) == 0;
    pthread_mutex_unlock(&verified_lock);
    return yes;
}

void pc_verified_add(const pc_digest *d, const char *ident, uint64_t size)
{
    if (!ident || !*ident || strlen(ident) >= IDENT_MAX)
        return;
    verified_entry v = {.size = size};
    snprintf(v.digest, sizeof(v.digest), "%s", d->str);
    snprintf(v.ident, sizeof(v.ident), "%s", ident);
    pthread_mutex_lock(&verified_lock);
    verified[verified_slot(d->str)] = v;
    pthread_mutex_unlock(&verified_lock);
}

int pc_verified_file_ident(int fd, char *buf, size_t len, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return PC_ERR;
    *size = (uint64_t)st.st_size;
    int n = snprintf(buf, len, "file:%ju:%ju:%jd.%09ld", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
                     (intmax_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return n > 0 && (size_t)n < len ? 0 : PC_ETOOBIG;
}
