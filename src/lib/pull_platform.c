/*
 * pull_platform.c - the pure parts of a pull: platforms ("linux/arm64/v8")
 * parsed and normalized the way containerd does, the descriptors of a
 * manifest or index read with jansson (sizes, media types, urls,
 * platforms), and choosing the child of an index for a platform.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "manifest.h"

static void set_field(char *dst, const char *src, size_t n)
{
    if (n >= PC_PULL_PLATFORM_FIELD)
        n = PC_PULL_PLATFORM_FIELD - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Architecture aliases, as uname and distributions spell them. */
static const struct {
    const char *alias, *arch, *variant;
} arch_aliases[] = {
    {"x86_64", "amd64", ""}, {"x86-64", "amd64", ""}, {"aarch64", "arm64", ""},
    {"armhf", "arm", "v7"},  {"armel", "arm", "v6"},  {"i386", "386", ""},
    {"i686", "386", ""},     {"x86", "386", ""},
};

void pc_pull_platform_normalize(pc_pull_platform *p)
{
    lower(p->os);
    lower(p->arch);
    lower(p->variant);
    for (size_t i = 0; i < sizeof(arch_aliases) / sizeof(arch_aliases[0]); i++) {
        if (strcmp(p->arch, arch_aliases[i].alias) == 0) {
            set_field(p->arch, arch_aliases[i].arch, strlen(arch_aliases[i].arch));
            if (!p->variant[0])
                set_field(p->variant, arch_aliases[i].variant, strlen(arch_aliases[i].variant));
            break;
        }
    }
    /* "8" -> "v8" */
    if (p->variant[0] >= '0' && p->variant[0] <= '9') {
        size_t n = strlen(p->variant);
        if (n + 1 >= PC_PULL_PLATFORM_FIELD)
            n = PC_PULL_PLATFORM_FIELD - 2;
        memmove(p->variant + 1, p->variant, n);
        p->variant[0] = 'v';
        p->variant[n + 1] = '\0';
    }
    if (strcmp(p->arch, "arm64") == 0 && !p->variant[0])
        set_field(p->variant, "v8", 2);
    else if (strcmp(p->arch, "arm") == 0 && !p->variant[0])
        set_field(p->variant, "v7", 2);
    else if (strcmp(p->arch, "amd64") == 0 && strcmp(p->variant, "v1") == 0)
        p->variant[0] = '\0';
}

static bool field_ok(const char *s, size_t n)
{
    if (n == 0 || n >= PC_PULL_PLATFORM_FIELD)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int pc_pull_platform_parse(pc_pull_platform *out, const char *s)
{
    const char *parts[3] = {NULL, NULL, NULL};
    size_t lens[3] = {0, 0, 0};
    int n = 0;
    const char *p = s;

    memset(out, 0, sizeof(*out));
    if (!s)
        goto bad;
    while (n < 3) {
        size_t len = strcspn(p, "/");
        parts[n] = p;
        lens[n] = len;
        n++;
        if (!p[len])
            break;
        p += len + 1;
        if (n == 3)
            goto bad; /* a fourth component */
    }
    if (n < 2)
        goto bad;
    for (int i = 0; i < n; i++)
        if (!field_ok(parts[i], lens[i]))
            goto bad;
    set_field(out->os, parts[0], lens[0]);
    set_field(out->arch, parts[1], lens[1]);
    if (n == 3)
        set_field(out->variant, parts[2], lens[2]);
    pc_pull_platform_normalize(out);
    return 0;
bad:
    pc_error_set("'%.64s' is not a platform: want os/arch[/variant], e.g. linux/amd64, "
                 "linux/arm64/v8",
                 s ? s : "");
    return PC_EINVAL;
}

void pc_pull_platform_host(pc_pull_platform *out)
{
    struct utsname u;
    memset(out, 0, sizeof(*out));
    set_field(out->os, "linux", 5);
    if (uname(&u) == 0)
        set_field(out->arch, u.machine, strlen(u.machine));
    else
        set_field(out->arch, "amd64", 5);
    pc_pull_platform_normalize(out);
}

const char *pc_pull_platform_format(const pc_pull_platform *p, char *buf, size_t size)
{
    if (!size)
        return buf;
    snprintf(buf, size, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
    return buf;
}

/* The variant number of "vN", or -1. */
static int variant_num(const char *v)
{
    if (v[0] != 'v' || v[1] < '0' || v[1] > '9')
        return -1;
    char *end;
    long n = strtol(v + 1, &end, 10);
    return *end || n > 1000 ? -1 : (int)n;
}

/* How well have suits want: 0 = not at all, higher is better. */
static int platform_score(const pc_pull_platform *have, const pc_pull_platform *want)
{
    if (strcmp(have->os, want->os) != 0 || strcmp(have->arch, want->arch) != 0)
        return 0;
    if (strcmp(have->variant, want->variant) == 0)
        return 1000;
    if (strcmp(want->arch, "arm") == 0) {
        /* an arm/v7 machine runs v6 and v5 images too; prefer the highest */
        int h = variant_num(have->variant), w = variant_num(want->variant);
        if (h >= 0 && w >= 0 && h < w)
            return 1 + h;
    }
    return 0;
}

int pc_pull_platform_select(const pc_pull_desc *children, size_t n, const pc_pull_platform *want,
                            size_t *index)
{
    int best = 0;
    for (size_t i = 0; i < n; i++) {
        if (!children[i].has_platform)
            continue;
        int s = platform_score(&children[i].platform, want);
        if (s > best) {
            best = s;
            *index = i;
        }
    }
    if (best > 0)
        return 0;

    char msg[400], one[PC_PULL_PLATFORM_STR];
    size_t off = 0;
    msg[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof(msg) - 1; i++) {
        if (!children[i].has_platform)
            continue;
        int w = snprintf(msg + off, sizeof(msg) - off, "%s%s", off ? ", " : "",
                         pc_pull_platform_format(&children[i].platform, one, sizeof(one)));
        if (w < 0)
            break;
        off += (size_t)w;
        if (off >= sizeof(msg))
            off = sizeof(msg) - 1;
    }
    pc_error_set("no manifest for %s in the index (it has: %s)",
                 pc_pull_platform_format(want, one, sizeof(one)), msg[0] ? msg : "none");
    return PC_ENOTFOUND;
}

bool pc_pull_desc_foreign(const pc_pull_desc *d)
{
    return d->has_urls && (strstr(d->media_type, ".foreign.") != NULL ||
                           strstr(d->media_type, ".nondistributable.") != NULL);
}

static const char *json_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Fill one descriptor from a JSON object pc_manifest_parse() has checked. */
static int desc_read(json_t *o, pc_pull_desc *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->media_type, sizeof(d->media_type), "%s", json_str(o, "mediaType"));
    if (pc_digest_parse(&d->digest, json_str(o, "digest")) != 0)
        return PC_EINVAL;
    d->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
    json_t *urls = json_object_get(o, "urls");
    d->has_urls = json_is_array(urls) && json_array_size(urls) > 0;
    json_t *pl = json_object_get(o, "platform");
    if (json_is_object(pl)) {
        const char *os = json_str(pl, "os"), *arch = json_str(pl, "architecture");
        if (*os && *arch) {
            d->has_platform = true;
            set_field(d->platform.os, os, strlen(os));
            set_field(d->platform.arch, arch, strlen(arch));
            const char *v = json_str(pl, "variant");
            set_field(d->platform.variant, v, strlen(v));
            pc_pull_platform_normalize(&d->platform);
        }
    }
    return 0;
}

int pc_pull_descs_parse(const void *buf, size_t len, const char *content_type, bool *is_index,
                        char *media_type, size_t media_type_size, pc_pull_desc **out, size_t *n)
{
    pc_manifest_info info;
    json_t *doc = NULL;
    pc_pull_desc *d = NULL;
    size_t count = 0;
    int rc = pc_manifest_parse(&info, buf, len, content_type);

    *out = NULL;
    *n = 0;
    if (rc != 0)
        return rc;
    *is_index = info.is_index;
    if (media_type)
        snprintf(media_type, media_type_size, "%s", info.media_type);
    pc_manifest_info_clear(&info);
    doc = json_loadb(buf, len, 0, NULL);
    if (!doc) {
        pc_error_set("manifest is not valid JSON");
        return PC_EINVAL;
    }
    json_t *arr = json_object_get(doc, *is_index ? "manifests" : "layers");
    size_t total = json_array_size(arr) + (*is_index ? 0 : 1);
    d = calloc(total ? total : 1, sizeof(*d));
    if (!d) {
        pc_error_set("out of memory reading a manifest");
        rc = PC_ENOMEM;
        goto done;
    }
    rc = PC_EINVAL;
    if (!*is_index && desc_read(json_object_get(doc, "config"), &d[count++]) != 0)
        goto bad;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (desc_read(o, &d[count++]) != 0)
            goto bad;
    }
    *out = d;
    *n = count;
    d = NULL;
    rc = 0;
    goto done;
bad:
    pc_error_set("manifest: a descriptor has an invalid digest");
done:
    free(d);
    json_decref(doc);
    return rc;
}
