/*
 * upstream_push.c - the push side of the registry client: upload sessions
 * (POST, cross-repository mount, chunked PATCH with Content-Range, status
 * GET for resuming, the closing PUT ?digest=, DELETE), manifest PUTs with
 * the exact bytes, ranged blob GETs, the referrers API and paginated tag
 * lists.
 *
 * Every call goes through pc_up_call() (upstream_call.c), which runs the
 * token flow with the scope "repository:<repo>:pull,push" for writes.
 * Upload Locations are resolved with CURLU against the URL of the request
 * that returned them (relative or absolute, query parameters kept); an
 * upload URL on another origin gets no Authorization.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "upstream_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PUSH_URL_MAX 4096
#define TAGS_PAGE "?n=1000"

static int oom(pc_upstream *u)
{
    pc_error_set("upstream %s: out of memory", u->name);
    return PC_ENOMEM;
}

static int bad_name(const char *what)
{
    pc_error_set("upstream: invalid %s", what);
    return PC_EINVAL;
}

void pc_upstream_upload_clear(pc_upstream_upload *up)
{
    if (!up)
        return;
    free(up->location);
    memset(up, 0, sizeof(*up));
}

/* Resolve loc against base into *out (caller's, free()). 0, PC_EINVAL,
 * PC_ENOMEM. */
static int resolve(const char *base, const char *loc, char **out)
{
    int rc = PC_EINVAL;
    CURLU *cu = curl_url();
    char *s = NULL, *scheme = NULL;
    *out = NULL;
    if (!cu)
        return PC_ENOMEM;
    if (curl_url_set(cu, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(cu, CURLUPART_URL, loc, 0) != CURLUE_OK ||
        curl_url_get(cu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
        curl_url_get(cu, CURLUPART_URL, &s, 0) != CURLUE_OK)
        goto done;
    rc = (*out = strdup(s)) ? 0 : PC_ENOMEM;
done:
    curl_free(s);
    curl_free(scheme);
    curl_url_cleanup(cu);
    return rc;
}

/* Whether a and b have the same scheme, host and port. */
static bool same_origin(const char *a, const char *b)
{
    static const CURLUPart parts[3] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    CURLU *ua = curl_url(), *ub = curl_url();
    bool same = ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
                curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK;
    for (int i = 0; same && i < 3; i++) {
        char *pa = NULL, *pb = NULL;
        same = curl_url_get(ua, parts[i], &pa, CURLU_DEFAULT_PORT) == CURLUE_OK &&
               curl_url_get(ub, parts[i], &pb, CURLU_DEFAULT_PORT) == CURLUE_OK &&
               strcasecmp(pa, pb) == 0;
        curl_free(pa);
        curl_free(pb);
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* url with "name=value" appended to its query (value URL-encoded), into
 * *out (caller's). 0, PC_EINVAL, PC_ENOMEM. */
static int add_query(const char *url, const char *name, const char *value, char **out)
{
    int rc = PC_EINVAL;
    CURLU *cu = curl_url();
    char *s = NULL, *pair = NULL;
    size_t n = strlen(name) + strlen(value) + 2;
    *out = NULL;
    if (!cu || !(pair = malloc(n))) {
        rc = PC_ENOMEM;
        goto done;
    }
    snprintf(pair, n, "%s=%s", name, value);
    if (curl_url_set(cu, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_set(cu, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK ||
        curl_url_get(cu, CURLUPART_URL, &s, 0) != CURLUE_OK)
        goto done;
    rc = (*out = strdup(s)) ? 0 : PC_ENOMEM;
done:
    free(pair);
    curl_free(s);
    curl_url_cleanup(cu);
    return rc;
}

/* The upload offset a Range header reports: "0-<last>" (or "bytes=0-<last>")
 * -> last + 1; "0-0" -> 0 (ambiguous: an empty session reports the same).
 * false when the value is not of that form. */
static bool range_offset(const char *v, uint64_t *offset)
{
    if (strncasecmp(v, "bytes=", 6) == 0)
        v += 6;
    if (v[0] != '0' || v[1] != '-' || v[2] < '0' || v[2] > '9')
        return false;
    char *end;
    unsigned long long last = strtoull(v + 2, &end, 10);
    if (*end)
        return false;
    *offset = last == 0 ? 0 : (uint64_t)last + 1;
    return true;
}

/* Take the response's Location (resolved against url) as the session's. */
static int take_location(pc_upstream *u, pc_up_xfer *x, const char *url, pc_upstream_upload *up)
{
    char *next = NULL;
    if (!x->location)
        return 0;
    int rc = resolve(url, x->location, &next);
    if (rc == PC_ENOMEM)
        return oom(u);
    if (rc != 0) {
        x->resp->cls = PC_UP_PROTOCOL;
        pc_up_resp_msg(x->resp, "upload Location is not a usable URL");
        return 0;
    }
    free(up->location);
    up->location = next;
    return 0;
}

int pc_upstream_upload_start(pc_upstream *u, const char *repo, const pc_digest *mount,
                             const char *from, bool *mounted, pc_upstream_upload *up,
                             pc_upstream_resp *out)
{
    int rc = 0;
    char path[PC_DIGEST_MAX + 512], *url = NULL;
    pc_up_xfer x = {.resp = out, .method = "POST"};
    pc_up_resp_init(out);
    pc_upstream_upload_clear(up);
    *mounted = false;
    if (!pc_up_path_part_ok(repo, "._-/") || (from && !pc_up_path_part_ok(from, "._-/")))
        return bad_name("repository name");
    if (mount && from)
        snprintf(path, sizeof(path), "/blobs/uploads/?mount=%s&from=%s", mount->str, from);
    else
        snprintf(path, sizeof(path), "/blobs/uploads/");
    size_t n = strlen(u->url) + strlen(repo) + strlen(path) + 8;
    if (!(url = malloc(n)))
        return oom(u);
    snprintf(url, n, "%s/v2/%s%s", u->url, repo, path);
    rc = pc_up_call(u, repo, "pull,push", mount && from ? from : NULL, url, NULL, false, NULL, &x);
    if (rc != 0 || out->cls != PC_UP_OK)
        goto done;
    if (out->status == 201 && mount && from) {
        *mounted = true;
        goto done;
    }
    if ((rc = take_location(u, &x, url, up)) != 0)
        goto done;
    if (out->cls == PC_UP_OK && (out->status != 202 || !up->location)) {
        out->cls = PC_UP_PROTOCOL;
        snprintf(out->error_message, sizeof(out->error_message),
                 "upload start answered HTTP %ld without an upload Location", out->status);
    }
    up->offset = 0;
done:
    free(url);
    pc_up_xfer_clear(&x);
    return rc;
}

/* x for a request to the session: Authorization only on our origin. */
static void session_xfer(pc_upstream *u, pc_up_xfer *x, const pc_upstream_upload *up)
{
    x->no_auth = !same_origin(u->url, up->location);
}

int pc_upstream_upload_status(pc_upstream *u, const char *repo, pc_upstream_upload *up,
                              pc_upstream_resp *out)
{
    int rc;
    pc_up_xfer x = {.resp = out};
    pc_up_resp_init(out);
    if (!up->location) {
        out->cls = PC_UP_NOT_FOUND;
        pc_up_resp_msg(out, "no upload session");
        return 0;
    }
    session_xfer(u, &x, up);
    char *url = strdup(up->location);
    if (!url)
        return oom(u);
    rc = pc_up_call(u, repo, "pull,push", NULL, url, NULL, false, NULL, &x);
    if (rc == 0 && out->cls == PC_UP_OK) {
        uint64_t off = 0;
        if (out->range[0] && !range_offset(out->range, &off)) {
            out->cls = PC_UP_PROTOCOL;
            pc_up_resp_msg(out, "upload status with an unreadable Range header");
        } else {
            up->offset = off;
            rc = take_location(u, &x, url, up);
        }
    }
    free(url);
    pc_up_xfer_clear(&x);
    return rc;
}

/* PATCH or PUT on the session with len bytes from rd (PUT: url has the
 * digest parameter). */
static int session_write(pc_upstream *u, const char *repo, pc_upstream_upload *up,
                         const char *method, const char *url, uint64_t len, pc_upstream_reader rd,
                         void *ctx, uint64_t *sent, pc_upstream_resp *out)
{
    char crange[80];
    const char *hdrs[3] = {"Content-Type: application/octet-stream", NULL, NULL};
    pc_up_xfer x = {.resp = out, .method = method, .headers = hdrs};
    if (len) {
        snprintf(crange, sizeof(crange), "Content-Range: %" PRIu64 "-%" PRIu64, up->offset,
                 up->offset + len - 1);
        hdrs[1] = crange;
        x.reader = rd;
        x.reader_ctx = ctx;
        x.body_size = (int64_t)len;
    }
    session_xfer(u, &x, up);
    int rc = pc_up_call(u, repo, "pull,push", NULL, url, NULL, false, NULL, &x);
    if (sent)
        *sent = x.sent;
    if (rc == 0 && out->cls == PC_UP_OK && strcmp(method, "PATCH") == 0) {
        uint64_t off = up->offset + len;
        if (out->range[0] && !range_offset(out->range, &off)) {
            out->cls = PC_UP_PROTOCOL;
            pc_up_resp_msg(out, "upload answer with an unreadable Range header");
        } else if (off != up->offset + len) {
            out->cls = PC_UP_PROTOCOL;
            snprintf(out->error_message, sizeof(out->error_message),
                     "the registry holds %" PRIu64 " bytes after a chunk ending at %" PRIu64, off,
                     up->offset + len);
        } else {
            up->offset = off;
            rc = take_location(u, &x, url, up);
        }
    }
    pc_up_xfer_clear(&x);
    return rc;
}

int pc_upstream_upload_chunk(pc_upstream *u, const char *repo, pc_upstream_upload *up, uint64_t len,
                             pc_upstream_reader rd, void *ctx, uint64_t *sent,
                             pc_upstream_resp *out)
{
    pc_up_resp_init(out);
    if (sent)
        *sent = 0;
    if (!up->location || len == 0) {
        out->cls = PC_UP_CLIENT;
        pc_up_resp_msg(out, "no upload session or an empty chunk");
        return 0;
    }
    char *url = strdup(up->location);
    if (!url)
        return oom(u);
    int rc = session_write(u, repo, up, "PATCH", url, len, rd, ctx, sent, out);
    free(url);
    return rc;
}

int pc_upstream_upload_finish(pc_upstream *u, const char *repo, pc_upstream_upload *up,
                              const pc_digest *d, uint64_t len, pc_upstream_reader rd, void *ctx,
                              uint64_t *sent, pc_upstream_resp *out)
{
    char *url = NULL;
    pc_up_resp_init(out);
    if (sent)
        *sent = 0;
    if (!up->location) {
        out->cls = PC_UP_CLIENT;
        pc_up_resp_msg(out, "no upload session");
        return 0;
    }
    int rc = add_query(up->location, "digest", d->str, &url);
    if (rc == PC_ENOMEM)
        return oom(u);
    if (rc != 0) {
        out->cls = PC_UP_PROTOCOL;
        pc_up_resp_msg(out, "upload Location is not a usable URL");
        return 0;
    }
    rc = session_write(u, repo, up, "PUT", url, len, rd, ctx, sent, out);
    if (rc == 0 && out->cls == PC_UP_OK && out->status != 201) {
        out->cls = PC_UP_PROTOCOL;
        snprintf(out->error_message, sizeof(out->error_message),
                 "closing the upload answered HTTP %ld, not 201", out->status);
    }
    free(url);
    return rc;
}

void pc_upstream_upload_cancel(pc_upstream *u, const char *repo, pc_upstream_upload *up)
{
    pc_upstream_resp r;
    pc_up_resp_init(&r);
    if (up->location) {
        pc_up_xfer x = {.resp = &r, .method = "DELETE"};
        session_xfer(u, &x, up);
        pc_up_call(u, repo, "pull,push", NULL, up->location, NULL, false, NULL, &x);
        pc_up_xfer_clear(&x);
    }
    pc_upstream_resp_clear(&r);
}

int pc_upstream_manifest_put(pc_upstream *u, const char *repo, const char *reference,
                             const char *media_type, const void *body, size_t len,
                             pc_upstream_resp *out)
{
    char ct[300], path[PC_DIGEST_MAX + 32];
    const char *hdrs[2] = {ct, NULL};
    pc_up_xfer x = {.resp = out, .method = "PUT", .headers = hdrs, .body = body, .body_len = len};
    pc_up_resp_init(out);
    if (!pc_up_path_part_ok(repo, "._-/") || !pc_up_path_part_ok(reference, "._-:+=") ||
        strchr(reference, '/') || strlen(reference) >= sizeof(path) - 16)
        return bad_name("repository name or reference");
    if (!media_type || !*media_type || strlen(media_type) > 250 || strpbrk(media_type, "\r\n"))
        return bad_name("media type");
    snprintf(ct, sizeof(ct), "Content-Type: %s", media_type);
    snprintf(path, sizeof(path), "/manifests/%s", reference);
    int rc = pc_up_call(u, repo, "pull,push", NULL, NULL, path, false, NULL, &x);
    pc_up_xfer_clear(&x);
    return rc;
}

int pc_upstream_blob_range(pc_upstream *u, const char *repo, const pc_digest *d, uint64_t offset,
                           pc_upstream_start_cb on_start, pc_upstream_data_cb on_data, void *ctx,
                           pc_upstream_resp *out)
{
    char range[64], path[PC_DIGEST_MAX + 16];
    if (offset == 0)
        return pc_upstream_blob(u, repo, d, false, on_start, on_data, ctx, out);
    pc_up_xfer x = {.resp = out, .on_start = on_start, .on_data = on_data, .ctx = ctx};
    pc_up_resp_init(out);
    if (!on_data || !pc_up_path_part_ok(repo, "._-/") || !pc_up_path_part_ok(d->str, "._-:+="))
        return bad_name("repository name or digest");
    snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", offset);
    snprintf(path, sizeof(path), "/blobs/%s", d->str);
    /* the Range line rides in the accept slot: one extra header line */
    int rc = pc_up_call(u, repo, "pull", NULL, NULL, path, false, range, &x);
    pc_up_xfer_clear(&x);
    return rc;
}

int pc_upstream_manifest_delete(pc_upstream *u, const char *repo, const pc_digest *d,
                                pc_upstream_resp *out)
{
    char path[PC_DIGEST_MAX + 16];
    pc_up_xfer x = {.resp = out, .method = "DELETE"};
    pc_up_resp_init(out);
    if (!pc_up_path_part_ok(repo, "._-/") || !pc_up_path_part_ok(d->str, "._-:+="))
        return bad_name("repository name or digest");
    snprintf(path, sizeof(path), "/manifests/%s", d->str);
    int rc = pc_up_call(u, repo, "delete", NULL, NULL, path, false, NULL, &x);
    pc_up_xfer_clear(&x);
    return rc;
}

void pc_upstream_referrers_tag(const pc_digest *d, char *buf, size_t size)
{
    snprintf(buf, size, "%s-%.64s", pc_digest_alg_name(d->alg), pc_digest_hex(d));
}

int pc_upstream_referrers(pc_upstream *u, const char *repo, const pc_digest *d,
                          pc_upstream_resp *out)
{
    char path[PC_DIGEST_MAX + 16];
    pc_up_xfer x = {.resp = out, .ok_max = PC_UP_MANIFEST_MAX, .what = "referrers list"};
    pc_up_resp_init(out);
    if (!pc_up_path_part_ok(repo, "._-/"))
        return bad_name("repository name");
    snprintf(path, sizeof(path), "/referrers/%s", d->str);
    int rc = pc_up_call(u, repo, "pull", NULL, NULL, path, false,
                        "Accept: application/vnd.oci.image.index.v1+json", &x);
    pc_up_xfer_clear(&x);
    return rc;
}

int pc_upstream_link_next(const char *base_url, const char *link, char **url)
{
    *url = NULL;
    /* <target>; rel="next" (several links may be comma-separated) */
    for (const char *p = link; p && *p;) {
        const char *lt = strchr(p, '<');
        const char *gt = lt ? strchr(lt, '>') : NULL;
        if (!lt || !gt)
            return PC_EINVAL;
        const char *end = strchr(gt, ',');
        size_t plen = end ? (size_t)(end - gt) : strlen(gt);
        char params[256];
        snprintf(params, sizeof(params), "%.*s", (int)(plen < 255 ? plen : 255), gt + 1);
        for (char *c = params; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        if (strstr(params, "rel=\"next\"") || strstr(params, "rel=next")) {
            size_t n = (size_t)(gt - lt - 1);
            if (n == 0 || n >= PUSH_URL_MAX)
                return PC_EINVAL;
            char target[PUSH_URL_MAX];
            memcpy(target, lt + 1, n);
            target[n] = '\0';
            return resolve(base_url, target, url);
        }
        p = end ? end + 1 : NULL;
    }
    return PC_ENOTFOUND;
}

int pc_upstream_tags_page(pc_upstream *u, const char *repo, const char *next, pc_upstream_resp *out)
{
    int rc = 0;
    char *url = NULL, base[PUSH_URL_MAX];
    pc_up_xfer x = {.resp = out, .ok_max = PC_UP_MANIFEST_MAX, .what = "tag list"};
    pc_up_resp_init(out);
    if (!pc_up_path_part_ok(repo, "._-/"))
        return bad_name("repository name");
    snprintf(base, sizeof(base), "%s/v2/%s/tags/list", u->url, repo);
    if (next) {
        rc = pc_upstream_link_next(base, next, &url);
        if (rc == PC_ENOMEM)
            return oom(u);
        if (rc != 0 || !same_origin(u->url, url)) {
            free(url);
            out->cls = PC_UP_PROTOCOL;
            pc_up_resp_msg(out, "tag list: unusable Link header");
            return 0;
        }
    } else {
        size_t n = strlen(base) + sizeof(TAGS_PAGE);
        if (!(url = malloc(n)))
            return oom(u);
        snprintf(url, n, "%s%s", base, TAGS_PAGE);
    }
    rc = pc_up_call(u, repo, "pull", NULL, url, NULL, false, NULL, &x);
    free(url);
    pc_up_xfer_clear(&x);
    return rc;
}
