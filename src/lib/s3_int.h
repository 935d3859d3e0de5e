/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3_int.h - what the S3 client's files share: one request (s3.c) that the
 * calls (s3_ops.c) describe.
 */
#ifndef PC_S3_INT_H
#define PC_S3_INT_H

#include "s3.h"
#include "util.h"

#include <curl/curl.h>
#include <pthread.h>

#define POOL_MAX 64

/* A client: its settings, credentials and idle handles. */
struct pc_s3 {
    char *endpoint;                 /* scheme://host[:port], no trailing '/' */
    char *scheme_host_v;            /* virtual-host style: scheme://bucket.host[:port] */
    char *host;                     /* the Host header for presigned URLs */
    char *region, *bucket, *prefix; /* prefix "" or "p/" */
    bool path_style;
    char *key_id, *secret;
    char sigv4[160];
    long timeout_s;
    pthread_mutex_t mu;
    CURL *idle[POOL_MAX];
    size_t n_idle;
};

/* One request, borrowed strings. The key is relative to the prefix. */
typedef struct {
    const char *what;   /* "GET" etc. for messages */
    const char *method; /* GET PUT HEAD DELETE POST */
    const char *key;    /* relative; NULL: the bucket */
    const char *query;  /* sorted and encoded, without '?'; NULL: none */
    const char *hdr[3]; /* extra header lines */
    const void *a, *b;  /* the request body: a then b */
    size_t alen, blen;
    int (*cb)(const void *buf, size_t n, void *ctx); /* 2xx body sink, else into body */
    void *ctx;
    pc_buf *body;     /* 2xx body when cb is NULL (may be NULL: dropped) */
    pc_s3_info *info; /* may be NULL */
    bool self_sign;   /* signed by pc_s3_sign_headers, not by libcurl */
} s3_req;

/* Send r (signed; again after a short pause on a 5xx or a broken
 * connection, except POST) and map the answer: 0 for 2xx, else the pc.h
 * code with the message set (never with the secret). */
int pc_s3_request(pc_s3 *s, s3_req *r);

#endif
