/*
 * sync.c - the sync file (libcyaml schema, defaults, checks, per-side
 * options) and tag selection: exact tags, a POSIX ERE (regcomp),
 * semantic-version ranges over tags that parse as versions, the newest N.
 * The state of what was copied is sync_state.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "sync.h"
#include "yamlerr.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "endpoint.h"
#include "pull.h"
#include "ref.h"

#define SYNC_DEFAULT_INTERVAL 3600
#define SYNC_DEFAULT_MAX_PAUSE 21600
#define SYNC_DEFAULT_CONCURRENCY 4

/* ---- the file ---- */

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 256),
};

/* true or false, nothing else (cyaml's own booleans take any other word
 * for true) */
static const cyaml_strval_t bool_strings[] = {{"false", 0}, {"true", 1}};

static const cyaml_schema_field_t side_fields[] = {
    CYAML_FIELD_ENUM_PTR("plain_http", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT,
                         pc_sync_side, plain_http, bool_strings, 2),
    CYAML_FIELD_ENUM_PTR("insecure", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT,
                         pc_sync_side, insecure, bool_strings, 2),
    CYAML_FIELD_ENUM_PTR("anonymous", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT,
                         pc_sync_side, anonymous, bool_strings, 2),
    CYAML_FIELD_STRING_PTR("ca_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_side,
                           ca_file, 1, 4095),
    CYAML_FIELD_STRING_PTR("username", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_side,
                           username, 1, 255),
    CYAML_FIELD_STRING_PTR("password_env", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_side,
                           password_env, 1, 255),
    CYAML_FIELD_STRING_PTR("password_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_side,
                           password_file, 1, 4095),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t mapping_fields[] = {
    CYAML_FIELD_STRING_PTR("source", CYAML_FLAG_POINTER, pc_sync_mapping, source, 1, 600),
    CYAML_FIELD_STRING_PTR("destination", CYAML_FLAG_POINTER, pc_sync_mapping, destination, 1, 600),
    CYAML_FIELD_SEQUENCE("tags", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_mapping, tags,
                         &string_entry, 0, 1000),
    CYAML_FIELD_STRING_PTR("regex", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_mapping,
                           regex, 1, 1000),
    CYAML_FIELD_STRING_PTR("semver", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_mapping,
                           semver, 1, 200),
    CYAML_FIELD_UINT("newest", CYAML_FLAG_OPTIONAL, pc_sync_mapping, newest),
    CYAML_FIELD_SEQUENCE("platforms", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, pc_sync_mapping,
                         platforms, &string_entry, 0, 16),
    CYAML_FIELD_BOOL("referrers", CYAML_FLAG_OPTIONAL, pc_sync_mapping, referrers),
    CYAML_FIELD_MAPPING_PTR("source_options", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                            pc_sync_mapping, source_options, side_fields),
    CYAML_FIELD_MAPPING_PTR("destination_options", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                            pc_sync_mapping, destination_options, side_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t mapping_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, pc_sync_mapping, mapping_fields),
};

static const cyaml_schema_field_t top_fields[] = {
    CYAML_FIELD_UINT("interval", CYAML_FLAG_OPTIONAL, pc_sync_file, interval),
    CYAML_FIELD_UINT("min_remaining", CYAML_FLAG_OPTIONAL, pc_sync_file, min_remaining),
    CYAML_FIELD_UINT("max_pause", CYAML_FLAG_OPTIONAL, pc_sync_file, max_pause),
    CYAML_FIELD_UINT("concurrency", CYAML_FLAG_OPTIONAL, pc_sync_file, concurrency),
    CYAML_FIELD_SEQUENCE("mappings", CYAML_FLAG_POINTER, pc_sync_file, mappings, &mapping_schema, 1,
                         1000),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, pc_sync_file, top_fields),
};

static _Thread_local char yaml_msg[256];

static void yaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));
static void yaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    if (level < CYAML_LOG_ERROR)
        return;
    size_t n = strlen(yaml_msg);
    if (n + 2 < sizeof(yaml_msg)) {
        if (n)
            yaml_msg[n++] = ' ';
        vsnprintf(yaml_msg + n, sizeof(yaml_msg) - n, fmt, args);
    }
    n = strlen(yaml_msg);
    while (n && (yaml_msg[n - 1] == '\n' || yaml_msg[n - 1] == ' '))
        yaml_msg[--n] = '\0';
}

static const cyaml_config_t yaml_cfg = {
    .log_fn = yaml_log,
    .mem_fn = cyaml_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_DEFAULT,
};

void pc_sync_file_free(pc_sync_file *f)
{
    if (f)
        cyaml_free(&yaml_cfg, &top_schema, f, 0);
}

/* A repository reference without tag or digest (a scheme prefix allowed). */
static int check_repo(const char *path, unsigned i, const char *key, const char *s)
{
    pc_endpoint_scheme scheme;
    s = pc_endpoint_scheme_split(s, &scheme);
    const char *slash = strrchr(s, '/');
    const char *last = slash ? slash + 1 : s;
    if (strchr(last, ':') || strchr(s, '@') || !slash) {
        pc_error_set("%s: mappings[%u].%s: '%s' must be a repository (host/name, no tag or "
                     "digest)",
                     path, i, key, s);
        return PC_EINVAL;
    }
    return 0;
}

/* The options of one side agree with each other and with ref's prefix. */
static int check_side(const char *path, unsigned i, const char *key, const pc_sync_side *o,
                      const char *ref)
{
    pc_endpoint_scheme scheme;
    const char *why = NULL;
    if (!o)
        return 0;
    pc_endpoint_scheme_split(ref, &scheme);
    bool plain = o->plain_http && *o->plain_http;
    if (o->username && !o->password_env && !o->password_file)
        why = "username wants password_env or password_file";
    else if (!o->username && (o->password_env || o->password_file))
        why = "password_env and password_file go with username";
    else if (o->password_env && o->password_file)
        why = "password_env and password_file exclude each other";
    else if (o->password_env && !pc_endpoint_env_name_valid(o->password_env))
        why = "password_env wants the name of an environment variable";
    else if (o->username && o->anonymous && *o->anonymous)
        why = "anonymous: true and username exclude each other";
    else if (o->ca_file && (plain || scheme == PC_ENDPOINT_SCHEME_HTTP))
        why = "ca_file is for TLS, but this side talks plain http";
    else if (o->plain_http && ((scheme == PC_ENDPOINT_SCHEME_HTTP && !plain) ||
                               (scheme == PC_ENDPOINT_SCHEME_HTTPS && plain)))
        why = "plain_http disagrees with the reference's http:// or https:// prefix";
    if (!why)
        return 0;
    pc_error_set("%s: mappings[%u].%s: %s", path, i, key, why);
    return PC_EINVAL;
}

static int check_mapping(const char *path, unsigned i, const pc_sync_mapping *m)
{
    int rc;
    if ((rc = check_repo(path, i, "source", m->source)) != 0 ||
        (rc = check_repo(path, i, "destination", m->destination)) != 0 ||
        (rc = check_side(path, i, "source_options", m->source_options, m->source)) != 0 ||
        (rc = check_side(path, i, "destination_options", m->destination_options, m->destination)) !=
            0)
        return rc;
    if (!m->tags_count && !pc_sync_needs_list(m)) {
        pc_error_set("%s: mappings[%u] (%s) selects no tags: give tags, regex, semver or newest",
                     path, i, m->source);
        return PC_EINVAL;
    }
    for (unsigned k = 0; k < m->tags_count; k++) {
        if (!pc_ref_tag_valid(m->tags[k])) {
            pc_error_set("%s: mappings[%u].tags: '%s' is not a tag", path, i, m->tags[k]);
            return PC_EINVAL;
        }
    }
    if (m->regex) {
        regex_t re;
        int err = regcomp(&re, m->regex, REG_EXTENDED | REG_NOSUB);
        if (err) {
            char buf[128];
            regerror(err, &re, buf, sizeof(buf));
            pc_error_set("%s: mappings[%u].regex '%s': %s", path, i, m->regex, buf);
            return PC_EINVAL;
        }
        regfree(&re);
    }
    pc_semver zero = {0, 0, 0};
    if (m->semver && pc_semver_match(m->semver, &zero) < 0) {
        char why[200];
        snprintf(why, sizeof(why), "%s", pc_error_last());
        pc_error_set("%s: mappings[%u].semver: %s", path, i, why);
        return PC_EINVAL;
    }
    for (unsigned k = 0; k < m->platforms_count; k++) {
        pc_pull_platform p;
        if (pc_pull_platform_parse(&p, m->platforms[k]) != 0) {
            char why[200];
            snprintf(why, sizeof(why), "%s", pc_error_last());
            pc_error_set("%s: mappings[%u].platforms: %s", path, i, why);
            return PC_EINVAL;
        }
    }
    return 0;
}

int pc_sync_file_load(const char *path, pc_sync_file **out)
{
    pc_sync_file *f = NULL;
    *out = NULL;
    yaml_msg[0] = '\0';
    FILE *probe = fopen(path, "r");
    if (!probe) {
        pc_error_set("cannot read %s: %s", path, strerror(errno));
        return PC_ENOTFOUND;
    }
    fclose(probe);
    cyaml_err_t err = cyaml_load_file(path, &yaml_cfg, &top_schema, (cyaml_data_t **)&f, NULL);
    if (err != CYAML_OK) {
        char why[1024];
        if (pc_yamlerr_explain(path, yaml_msg, &top_schema, why, sizeof(why)))
            pc_error_set("%s", why);
        else
            pc_error_set("%s: %s", path, yaml_msg[0] ? yaml_msg : cyaml_strerror(err));
        return err == CYAML_ERR_OOM ? PC_ENOMEM : PC_EINVAL;
    }
    if (!f->interval)
        f->interval = SYNC_DEFAULT_INTERVAL;
    if (!f->max_pause)
        f->max_pause = SYNC_DEFAULT_MAX_PAUSE;
    if (!f->concurrency)
        f->concurrency = SYNC_DEFAULT_CONCURRENCY;
    if (f->concurrency > 64) {
        pc_error_set("%s: concurrency must be 1 to 64", path);
        pc_sync_file_free(f);
        return PC_EINVAL;
    }
    for (unsigned i = 0; i < f->mappings_count; i++) {
        int rc = check_mapping(path, i, &f->mappings[i]);
        if (rc != 0) {
            pc_sync_file_free(f);
            return rc;
        }
    }
    *out = f;
    return 0;
}

/* ---- versions ---- */

static const char *parse_num(const char *p, unsigned long *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    unsigned long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > 100000000UL)
            return NULL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    *out = v;
    return p;
}

/* [v]N[.N[.N]] at s; *parts how many were given. NULL when malformed. */
static const char *parse_version(const char *s, pc_semver *v, int *parts)
{
    memset(v, 0, sizeof(*v));
    *parts = 0;
    if (*s == 'v' || *s == 'V')
        s++;
    unsigned long *f[3] = {&v->major, &v->minor, &v->patch};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != '.')
                break;
            s++;
        }
        if (!(s = parse_num(s, f[i])))
            return NULL;
        (*parts)++;
    }
    return s;
}

int pc_semver_parse(const char *s, pc_semver *out)
{
    int parts;
    const char *end = parse_version(s, out, &parts);
    return end && *end == '\0' ? 0 : PC_EINVAL;
}

int pc_semver_cmp(const pc_semver *a, const pc_semver *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return 0;
}

/* One comparator: 1 holds, 0 not, PC_EINVAL malformed. */
static int comparator(const char *tok, const pc_semver *v)
{
    char op[3] = "";
    size_t n = strspn(tok, "<>=^~");
    if (n > 2)
        return PC_EINVAL;
    memcpy(op, tok, n);
    op[n] = '\0';
    pc_semver c, hi;
    int parts;
    const char *end = parse_version(tok + n, &c, &parts);
    if (!end || *end)
        return PC_EINVAL;
    int cmp = pc_semver_cmp(v, &c);
    if (!op[0] || strcmp(op, "=") == 0 || strcmp(op, "==") == 0)
        return cmp == 0;
    if (strcmp(op, ">=") == 0)
        return cmp >= 0;
    if (strcmp(op, ">") == 0)
        return cmp > 0;
    if (strcmp(op, "<=") == 0)
        return cmp <= 0;
    if (strcmp(op, "<") == 0)
        return cmp < 0;
    if (strcmp(op, "^") == 0 || strcmp(op, "~") == 0) {
        hi = c;
        if (strcmp(op, "~") == 0 && parts >= 2) {
            hi.minor++;
            hi.patch = 0;
        } else if (strcmp(op, "^") == 0 && c.major == 0 && parts >= 2) {
            hi.minor++;
            hi.patch = 0;
        } else {
            hi.major++;
            hi.minor = hi.patch = 0;
        }
        return cmp >= 0 && pc_semver_cmp(v, &hi) < 0;
    }
    return PC_EINVAL;
}

int pc_semver_match(const char *range, const pc_semver *v)
{
    char buf[256];
    int all = 1, count = 0;
    if (strlen(range) >= sizeof(buf))
        goto bad;
    snprintf(buf, sizeof(buf), "%s", range);
    for (char *save = NULL, *tok = strtok_r(buf, " \t,", &save); tok;
         tok = strtok_r(NULL, " \t,", &save)) {
        /* ">= 1.2": an operator standing alone belongs to the next word */
        char joined[128];
        if (strspn(tok, "<>=^~") == strlen(tok)) {
            char *next = strtok_r(NULL, " \t,", &save);
            if (!next)
                goto bad;
            snprintf(joined, sizeof(joined), "%.3s%.100s", tok, next);
            tok = joined;
        }
        int r = comparator(tok, v);
        if (r < 0)
            goto bad;
        all = all && r;
        count++;
    }
    if (count == 0)
        goto bad;
    return all;
bad:
    pc_error_set("'%.200s' is not a version range (want e.g. \">=1.25 <2\", \"^1.2\", \"~1.27\")",
                 range);
    return PC_EINVAL;
}

/* ---- selection ---- */

bool pc_sync_needs_list(const pc_sync_mapping *m)
{
    return m->regex || m->semver || m->newest;
}

bool pc_sync_needs_state(const pc_sync_mapping *m)
{
    return m->platforms_count || m->referrers;
}

int pc_sync_settings(const pc_sync_mapping *m, char *buf, size_t size)
{
    size_t n = 0;
    int w = snprintf(buf, size, "platforms=");
    for (unsigned i = 0; w >= 0 && (size_t)w < size - n && i < m->platforms_count; i++) {
        n += (size_t)w;
        w = snprintf(buf + n, size - n, "%s%s", i ? "," : "", m->platforms[i]);
    }
    if (w >= 0 && (size_t)w < size - n) {
        n += (size_t)w;
        w = snprintf(buf + n, size - n, ";referrers=%d", m->referrers ? 1 : 0);
    }
    return w < 0 || (size_t)w >= size - n ? PC_ETOOBIG : 0;
}

typedef struct {
    const char *tag;
    pc_semver v;
} vtag;

static int vtag_desc(const void *a, const void *b)
{
    const vtag *x = a, *y = b;
    int c = pc_semver_cmp(&y->v, &x->v);
    return c ? c : strcmp(x->tag, y->tag);
}

static bool chosen(const char **out, size_t n, const char *t)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(out[i], t) == 0)
            return true;
    return false;
}

int pc_sync_select(const pc_sync_mapping *m, const char *const *avail, size_t n, const char ***out,
                   size_t *nout)
{
    int rc = 0;
    regex_t re;
    bool have_re = false;
    vtag *vt = NULL;
    size_t nv = 0, k = 0;
    const char **res = calloc(m->tags_count + n + 1, sizeof(*res));

    *out = NULL;
    *nout = 0;
    if (!res || !(vt = calloc(n + 1, sizeof(*vt)))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    for (unsigned i = 0; i < m->tags_count; i++)
        if (!chosen(res, k, m->tags[i]))
            res[k++] = m->tags[i];
    if (!pc_sync_needs_list(m))
        goto finish;
    if (m->regex) {
        if (regcomp(&re, m->regex, REG_EXTENDED | REG_NOSUB) != 0) {
            pc_error_set("'%s' is not a POSIX extended regular expression", m->regex);
            rc = PC_EINVAL;
            goto done;
        }
        have_re = true;
    }
    bool by_version = m->semver || m->newest;
    for (size_t i = 0; i < n; i++) {
        const char *t = avail[i];
        if (have_re && regexec(&re, t, 0, NULL, 0) != 0)
            continue;
        if (!by_version) {
            if (!chosen(res, k, t))
                res[k++] = t;
            continue;
        }
        pc_semver v;
        if (pc_semver_parse(t, &v) != 0)
            continue;
        if (m->semver) {
            int r = pc_semver_match(m->semver, &v);
            if (r < 0) {
                rc = r;
                goto done;
            }
            if (!r)
                continue;
        }
        vt[nv].tag = t;
        vt[nv].v = v;
        nv++;
    }
    if (by_version) {
        qsort(vt, nv, sizeof(*vt), vtag_desc);
        size_t take = m->newest && m->newest < nv ? m->newest : nv;
        for (size_t i = 0; i < take; i++)
            if (!chosen(res, k, vt[i].tag))
                res[k++] = vt[i].tag;
    }
finish:
    *out = res;
    *nout = k;
    res = NULL;
done:
    if (have_re)
        regfree(&re);
    free(vt);
    free(res);
    return rc;
}
