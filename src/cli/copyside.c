/*
 * copyside.c - the sides of a copy, registry clients per host, platform
 * lists, summaries and the per-blob progress display shared by
 * `pullcache copy` and `pullcache sync` (see copyside.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "util.h"
#include "copyside.h"

#include <stdlib.h>
#include <string.h>

#include "pullfmt.h"

/* ---- sides ---- */

static int side_parse(const char *verb, const char *s, pc_copy_side *side)
{
    memset(side, 0, sizeof(*side));
    if (strncmp(s, "oci:", 4) == 0) {
        side->layout = true;
        if (pc_copy_layout_split(s + 4, side->dir, sizeof(side->dir), side->tag,
                                 sizeof(side->tag)) != 0) {
            fprintf(stderr, "pullcache %s: %s\n", verb, pc_error_last());
            return -1;
        }
        return 0;
    }
    if (pc_client_parse_ref(s, &side->ref, &side->scheme) != 0)
        return -1;
    const char *slash = strrchr(s, '/');
    const char *last = slash ? slash + 1 : s;
    const char *at = strchr(last, '@');
    const char *colon = strchr(last, ':');
    side->has_tag = colon && (!at || colon < at);
    return 0;
}

static void side_name(const pc_copy_side *side, char *buf, size_t size)
{
    if (side->layout)
        snprintf(buf, size, "oci:%.600s%s%s", side->dir, side->tag[0] ? ":" : "", side->tag);
    else if (pc_ref_format(&side->ref, buf, size) < 0)
        snprintf(buf, size, "%s/%s", side->ref.host, side->ref.name);
}

int pc_copy_sides_parse(const char *verb, const char *src, const char *dst, pc_copy_sides *s)
{
    if (side_parse(verb, src, &s->src) != 0 || side_parse(verb, dst, &s->dst) != 0)
        return -1;
    pc_copy_side *d = &s->dst;
    if (!d->layout && d->ref.has_digest) {
        fprintf(stderr, "pullcache %s: the destination takes a tag, not a digest: %s\n", verb, dst);
        return -1;
    }
    /* the source's tag, unless DST names one */
    const char *src_tag = s->src.layout ? s->src.tag : s->src.ref.has_digest ? "" : s->src.ref.tag;
    if (d->layout && !d->tag[0])
        snprintf(d->tag, sizeof(d->tag), "%s", src_tag);
    else if (!d->layout && !d->has_tag)
        snprintf(d->ref.tag, sizeof(d->ref.tag), "%s", src_tag);
    side_name(&s->src, s->src_name, sizeof(s->src_name));
    side_name(&s->dst, s->dst_name, sizeof(s->dst_name));
    if (!d->layout && !d->ref.tag[0])
        snprintf(s->dst_name, sizeof(s->dst_name), "%s/%s", d->ref.host, d->ref.name);
    return 0;
}

int pc_copy_sides_open(const char *verb, pc_client_opts *co, pc_copy_sides *s)
{
    /* the destination first: a --password-stdin login is usually for the push */
    pc_copy_side *order[2] = {&s->dst, &s->src};
    for (int i = 0; i < 2; i++) {
        pc_copy_side *side = order[i];
        pc_client_which which = side == &s->dst ? PC_CLIENT_DST : PC_CLIENT_SRC;
        pc_client_side set;
        if (side->layout)
            continue;
        pc_client_side_of(co, which, &set);
        if (pc_client_connect(co, verb, which, &set, side->ref.host, side->scheme, &side->u,
                              &side->conn) != 0)
            return -1;
    }
    return 0;
}

static void fill_end(const pc_copy_side *side, pc_copy_end *e, bool src)
{
    memset(e, 0, sizeof(*e));
    if (side->layout) {
        e->dir = side->dir;
        e->reference = side->tag[0] ? side->tag : NULL;
        return;
    }
    e->u = side->u;
    e->repo = side->ref.name;
    if (src)
        e->reference = side->ref.has_digest ? side->ref.digest.str : side->ref.tag;
    else
        e->reference = side->ref.tag[0] ? side->ref.tag : NULL;
}

void pc_copy_sides_fill(const pc_copy_sides *s, pc_copy_opts *o)
{
    fill_end(&s->src, &o->src, true);
    fill_end(&s->dst, &o->dst, false);
}

void pc_copy_sides_close(pc_copy_sides *s)
{
    pc_upstream_free(s->src.u);
    pc_upstream_free(s->dst.u);
    s->src.u = s->dst.u = NULL;
}

int pc_cli_platforms_parse(const char *verb, const char *arg, pc_pull_platform *plats, size_t *n)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n >= PC_COPY_PLATFORMS_MAX) {
            fprintf(stderr, "pullcache %s: at most %d platforms\n", verb, PC_COPY_PLATFORMS_MAX);
            return -1;
        }
        if (pc_cli_platform_parse(verb, tok, &plats[*n]) != 0)
            return -1;
        (*n)++;
    }
    return 0;
}

/* ---- summaries ---- */

static json_t *platforms_json(const char *s)
{
    json_t *a = json_array();
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); a && tok;
         tok = strtok_r(NULL, ", ", &save))
        json_array_append_new(a, json_string(tok));
    return a;
}

json_t *pc_cli_copy_json(const char *src, const char *dst, int rc, const pc_copy_result *r,
                         const char *advice)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "source", src,
        "destination", dst, "blobs", (json_int_t)r->blobs, "blobs_skipped",
        (json_int_t)r->blobs_skipped, "blobs_mounted", (json_int_t)r->blobs_mounted,
        "blobs_foreign", (json_int_t)r->blobs_foreign, "bytes", (json_int_t)r->bytes, "bytes_total",
        (json_int_t)r->bytes_total, "manifests", (json_int_t)r->manifests, "manifests_skipped",
        (json_int_t)r->manifests_skipped, "referrers", (json_int_t)r->referrers, "retries",
        (json_int_t)r->retries, "resumed", (json_int_t)r->resumed, "seconds", r->seconds);
    if (!o)
        return NULL;
    if (rc == 0) {
        json_object_set_new(o, "digest", json_string(r->top.digest.str));
        json_object_set_new(o, "media_type", json_string(r->top.media_type));
        json_object_set_new(o, "platforms", platforms_json(r->platforms));
        json_object_set_new(o, "index_rewritten", json_boolean(r->index_rewritten));
        json_object_set_new(o, "copied", json_boolean(r->blobs || r->manifests));
    } else {
        const pc_pull_error *e = &r->error;
        json_object_set_new(o, "error",
                            json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s}", "kind",
                                      pc_pull_fail_str(e->kind), "side",
                                      r->error_at_dest ? "destination" : "source", "status",
                                      e->status ? json_integer(e->status) : json_null(), "code",
                                      e->code[0] ? json_string(e->code) : json_null(), "key",
                                      e->key, "object", e->object, "message", e->message));
        if (advice && *advice)
            json_object_set_new(json_object_get(o, "error"), "advice", json_string(advice));
    }
    return o;
}

void pc_cli_copy_summary(FILE *f, const char *src, const char *dst, const pc_copy_result *r)
{
    char bytes[32];
    fprintf(f, "%s -> %s: %s%s%s%s", src, dst, r->top.digest.str, r->platforms[0] ? " (" : "",
            r->platforms, r->platforms[0] ? ")" : "");
    if (!r->blobs && !r->manifests) {
        fprintf(f, ", nothing to copy: the destination has it all (%.2f s)\n", r->seconds);
        return;
    }
    fprintf(f, ", %llu blob%s copied", (unsigned long long)r->blobs, pc_cli_plural(r->blobs));
    if (r->blobs_skipped || r->blobs_mounted)
        fprintf(f, " (%llu present, %llu mounted)", (unsigned long long)r->blobs_skipped,
                (unsigned long long)r->blobs_mounted);
    fprintf(f, ", %llu manifest%s", (unsigned long long)r->manifests, pc_cli_plural(r->manifests));
    if (r->referrers)
        fprintf(f, " (%llu referrer%s)", (unsigned long long)r->referrers,
                pc_cli_plural(r->referrers));
    fprintf(f, ", %s in %.2f s", pc_cli_fmt_bytes(r->bytes, bytes, sizeof(bytes)), r->seconds);
    if (r->retries)
        fprintf(f, ", %llu retries (%llu resumed)", (unsigned long long)r->retries,
                (unsigned long long)r->resumed);
    if (r->index_rewritten)
        fprintf(f, "; a new index of the chosen platforms");
    fputc('\n', f);
}

/* ---- per-blob progress ---- */

enum { B_WAIT = 0, B_ACTIVE, B_DONE, B_SKIPPED, B_FAILED };

typedef struct {
    uint64_t size, done;
    int state;
    bool shown; /* its final line was printed */
    char dig[24];
} bar_blob;

struct pc_cli_bars {
    double t0, last;
    bar_blob *b;
    size_t n, blobs_done;
    uint64_t total, total_done;
    int lines; /* lines of the live area drawn last */
};

pc_cli_bars *pc_cli_bars_new(void)
{
    pc_cli_bars *b = calloc(1, sizeof(*b));
    if (b)
        b->t0 = pc_util_mono_s();
    return b;
}

static void bar_cells(char *out, int cells, uint64_t done, uint64_t size)
{
    int fill = size ? (int)(done * (uint64_t)cells / size) : cells;
    for (int i = 0; i < cells; i++)
        out[i] = i < fill ? '#' : ' ';
    out[cells] = '\0';
}

static void draw(pc_cli_bars *b)
{
    char cells[41], d1[32], d2[32], rate[32];
    if (b->lines)
        fprintf(stderr, "\033[%dA", b->lines);
    fputs("\r\033[J", stderr);
    for (size_t i = 0; i < b->n; i++) { /* finished blobs scroll up, once */
        bar_blob *x = &b->b[i];
        if (x->shown || (x->state != B_DONE && x->state != B_SKIPPED && x->state != B_FAILED))
            continue;
        x->shown = true;
        fprintf(stderr, "  %-19s %-8s %s\n", x->dig,
                x->state == B_DONE      ? "copied"
                : x->state == B_SKIPPED ? "present"
                                        : "failed",
                pc_cli_fmt_bytes(x->size, d1, sizeof(d1)));
    }
    b->lines = 0;
    for (size_t i = 0; i < b->n && b->lines < 8; i++) {
        bar_blob *x = &b->b[i];
        if (x->state != B_ACTIVE)
            continue;
        bar_cells(cells, 30, x->done, x->size);
        fprintf(stderr, "  %-19s [%s] %3d%% %s / %s\n", x->dig, cells,
                x->size ? (int)(x->done * 100 / x->size) : 100,
                pc_cli_fmt_bytes(x->done, d1, sizeof(d1)),
                pc_cli_fmt_bytes(x->size, d2, sizeof(d2)));
        b->lines++;
    }
    double secs = pc_util_mono_s() - b->t0;
    bar_cells(cells, 30, b->total_done, b->total);
    fprintf(stderr, "  %-19s [%s] %zu/%zu blobs %s / %s %s/s\n", "total", cells, b->blobs_done,
            b->n, pc_cli_fmt_bytes(b->total_done, d1, sizeof(d1)),
            pc_cli_fmt_bytes(b->total, d2, sizeof(d2)),
            pc_cli_fmt_bytes(secs > 0.05 ? (uint64_t)((double)b->total_done / secs) : 0, rate,
                             sizeof(rate)));
    b->lines++;
    fflush(stderr);
    b->last = pc_util_mono_s();
}

void pc_cli_bars_event(const pc_pull_progress *p, void *ctx)
{
    pc_cli_bars *b = ctx;
    bool now = false;
    if (p->event == PC_PULL_EV_PLAN) {
        free(b->b);
        b->b = calloc(p->nblobs ? p->nblobs : 1, sizeof(*b->b));
        b->n = b->b ? p->nblobs : 0;
        now = true;
    } else if (p->blob < b->n) {
        bar_blob *x = &b->b[p->blob];
        x->size = p->size;
        x->done = p->done;
        snprintf(x->dig, sizeof(x->dig), "%.19s", p->digest ? p->digest->str : "");
        static const int states[] = {
            [PC_PULL_EV_START] = B_ACTIVE,  [PC_PULL_EV_DATA] = B_ACTIVE,
            [PC_PULL_EV_DONE] = B_DONE,     [PC_PULL_EV_SKIPPED] = B_SKIPPED,
            [PC_PULL_EV_FAILED] = B_FAILED,
        };
        now = p->event != PC_PULL_EV_DATA;
        x->state = states[p->event];
    }
    b->total = p->total_size;
    b->total_done = p->total_done;
    b->blobs_done = p->blobs_done;
    if (now || pc_util_mono_s() - b->last >= 0.1)
        draw(b);
}

void pc_cli_bars_free(pc_cli_bars *b, bool ok)
{
    if (!b)
        return;
    if (ok && b->n)
        draw(b);
    free(b->b);
    free(b);
}
