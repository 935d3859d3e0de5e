/*
 * history.c - the per-upstream ring of status samples behind history.h,
 * its JSON document and the text of the notes that persist it.
 *
 * A note holds "pchist1\n" and one line per sample, ten integers separated
 * by spaces in the order of pc_history_sample (-1 for an unknown budget
 * number).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "history.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_MAGIC "pchist1\n"
#define NFIELDS 10

typedef struct {
    char *name;
    pc_history_sample *ring; /* capacity slots */
    int head;                /* the next slot written */
    int n;                   /* samples kept */
} up_ring;

struct pc_history {
    pthread_mutex_t lock;
    int nups, capacity;
    up_ring *ups;
};

int pc_history_new(pc_history **out, const char *const *names, int nups, int capacity)
{
    *out = NULL;
    if (nups < 0 || capacity <= 0)
        return PC_EINVAL;
    pc_history *h = calloc(1, sizeof(*h));
    if (!h)
        return PC_ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    h->capacity = capacity;
    h->ups = calloc((size_t)nups + 1, sizeof(*h->ups));
    if (!h->ups)
        goto nomem;
    for (int i = 0; i < nups; i++) {
        h->nups = i + 1;
        h->ups[i].name = strdup(names[i]);
        h->ups[i].ring = calloc((size_t)capacity, sizeof(pc_history_sample));
        if (!h->ups[i].name || !h->ups[i].ring)
            goto nomem;
    }
    *out = h;
    return 0;
nomem:
    pc_history_free(h);
    return PC_ENOMEM;
}

void pc_history_free(pc_history *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->nups; i++) {
        free(h->ups[i].name);
        free(h->ups[i].ring);
    }
    free(h->ups);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

int pc_history_add(pc_history *h, int i, const pc_history_sample *s)
{
    if (!h || i < 0 || i >= h->nups)
        return PC_ENOTFOUND;
    int rc = 0;
    pthread_mutex_lock(&h->lock);
    up_ring *u = &h->ups[i];
    int newest = (u->head + h->capacity - 1) % h->capacity;
    if (u->n > 0 && s->t <= u->ring[newest].t) {
        rc = PC_EEXISTS;
    } else {
        u->ring[u->head] = *s;
        u->head = (u->head + 1) % h->capacity;
        if (u->n < h->capacity)
            u->n++;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int pc_history_get(pc_history *h, int i, int64_t since, pc_history_sample *out, int max)
{
    if (!h || i < 0 || i >= h->nups || max <= 0)
        return 0;
    int got = 0;
    pthread_mutex_lock(&h->lock);
    up_ring *u = &h->ups[i];
    int first = (u->head + h->capacity - u->n) % h->capacity;
    for (int k = 0; k < u->n && got < max; k++) {
        const pc_history_sample *s = &u->ring[(first + k) % h->capacity];
        if (s->t > since)
            out[got++] = *s;
    }
    pthread_mutex_unlock(&h->lock);
    return got;
}

static json_t *known(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *sample_json(const pc_history_sample *s)
{
    return json_pack("[I, o, o, I, I, I, I, I, I, I]", (json_int_t)s->t, known(s->remaining),
                     known(s->limit), (json_int_t)s->reserve, (json_int_t)s->n429,
                     (json_int_t)s->hits, (json_int_t)s->misses, (json_int_t)s->pulls,
                     (json_int_t)s->bytes, (json_int_t)s->avoided);
}

json_t *pc_history_json(pc_history *h, int64_t since)
{
    pc_history_sample *buf = h ? malloc((size_t)h->capacity * sizeof(*buf)) : NULL;
    json_t *ups = json_array();
    json_t *doc = NULL;
    if (!h || !buf || !ups)
        goto done;
    for (int i = 0; i < h->nups; i++) {
        int n = pc_history_get(h, i, since, buf, h->capacity);
        json_t *arr = json_array();
        for (int k = 0; arr && k < n; k++)
            if (json_array_append_new(arr, sample_json(&buf[k])) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        json_t *u = arr ? json_pack("{s:s, s:o}", "name", h->ups[i].name, "samples", arr) : NULL;
        if (!u || json_array_append_new(ups, u) != 0)
            goto done;
    }
    doc = json_pack("{s:i, s:i, s:[s,s,s,s,s,s,s,s,s,s], s:O}", "interval", PC_HISTORY_INTERVAL,
                    "capacity", h->capacity, "fields", "t", "remaining", "limit", "reserve", "n429",
                    "hits", "misses", "pulls", "bytes", "avoided", "upstreams", ups);
done:
    json_decref(ups);
    free(buf);
    return doc;
}

int pc_history_chunk_encode(const pc_history_sample *s, int n, char *buf, size_t size)
{
    size_t o = 0;
    int w = snprintf(buf, size, "%s", NOTE_MAGIC);
    if (w < 0 || (size_t)w >= size || n > PC_HISTORY_CHUNK)
        return PC_ETOOBIG;
    o = (size_t)w;
    for (int k = 0; k < n; k++) {
        w = snprintf(buf + o, size - o,
                     "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
                     " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n",
                     s[k].t, s[k].remaining, s[k].limit, s[k].reserve, s[k].n429, s[k].hits,
                     s[k].misses, s[k].pulls, s[k].bytes, s[k].avoided);
        if (w < 0 || (size_t)w >= size - o)
            return PC_ETOOBIG;
        o += (size_t)w;
    }
    return 0;
}

/* One line of ten integers into *s; the position after its newline, or
 * NULL when it is malformed. */
static const char *parse_line(const char *p, pc_history_sample *s)
{
    int64_t v[NFIELDS];
    for (int f = 0; f < NFIELDS; f++) {
        char *end;
        if (*p == ' ' || *p == '\n' || !*p)
            return NULL;
        long long x = strtoll(p, &end, 10);
        if (end == p || *end != (f == NFIELDS - 1 ? '\n' : ' '))
            return NULL;
        v[f] = (int64_t)x;
        p = end + 1;
    }
    *s = (pc_history_sample){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
    return p;
}

int pc_history_chunk_decode(const char *text, pc_history_sample *out)
{
    size_t ml = strlen(NOTE_MAGIC);
    if (strncmp(text, NOTE_MAGIC, ml) != 0)
        return PC_EINVAL;
    const char *p = text + ml;
    int n = 0;
    while (*p && n < PC_HISTORY_CHUNK) {
        p = parse_line(p, &out[n]);
        if (!p)
            return PC_EINVAL;
        n++;
    }
    return *p ? PC_EINVAL : n;
}
