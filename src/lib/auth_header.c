/*
 * auth_header.c - Authorization header parsing, resource scopes and the
 * WWW-Authenticate values a 401 carries (see auth_header.h). Everything here reads
 * input from clients, so every parser is strict, bounded and refuses what
 * it does not fully understand; nothing here knows users or keys.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "auth_header.h"
#include "util.h"
#include "base64.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers ---- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void wipe_str(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* name="value" as an RFC 7230 quoted-string, after sep. false when value
 * holds a control character (other than HTAB) that no quoting may carry. */
static bool sb_param(pc_buf *b, const char *sep, const char *name, const char *value)
{
    for (const char *p = value; *p; p++)
        if (is_ctl((unsigned char)*p) && *p != '\t')
            return false;
    pc_buf_str(b, sep);
    pc_buf_str(b, name);
    pc_buf_add(b, "=\"", 2);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            pc_buf_add(b, "\\", 1);
        pc_buf_add(b, p, 1);
    }
    pc_buf_add(b, "\"", 1);
    return true;
}

/* ---- Authorization ---- */

void pc_auth_credentials_clear(pc_auth_credentials *c)
{
    if (!c)
        return;
    wipe_str(c->user);
    wipe_str(c->password);
    wipe_str(c->token);
    memset(c, 0, sizeof(*c));
}

static int parse_basic(const char *s, size_t len, pc_auth_credentials *out)
{
    unsigned char *plain = NULL;
    size_t n = 0;
    if (len > PC_AUTH_BASIC_MAX) {
        pc_error_set("Basic credentials longer than %d characters", PC_AUTH_BASIC_MAX);
        return PC_ETOOBIG;
    }
    int rc = pc_base64_decode(s, len, false, &plain, &n);
    if (rc != 0) {
        if (rc == PC_EINVAL)
            pc_error_set("Basic credentials are not valid base64");
        return rc;
    }
    rc = PC_EINVAL;
    const unsigned char *colon = memchr(plain, ':', n);
    for (size_t i = 0; i < n; i++) {
        if (is_ctl(plain[i])) {
            pc_error_set("Basic credentials contain a control character");
            goto done;
        }
    }
    if (!colon || colon == plain) {
        pc_error_set(colon ? "Basic credentials with an empty user"
                           : "Basic credentials without a ':'");
        goto done;
    }
    size_t ulen = (size_t)(colon - plain);
    out->user = strndup((const char *)plain, ulen);
    out->password = strndup((const char *)colon + 1, n - ulen - 1);
    if (!out->user || !out->password) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    out->scheme = PC_AUTH_BASIC;
    rc = 0;
done:
    explicit_bzero(plain, n);
    free(plain);
    return rc;
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int parse_bearer(const char *s, size_t len, pc_auth_credentials *out)
{
    size_t i = 0;
    while (i < len &&
           (is_lower_alnum(s[i]) || (s[i] >= 'A' && s[i] <= 'Z') || strchr("-._~+/", s[i]) != NULL))
        i++;
    if (i == 0)
        goto bad;
    while (i < len && s[i] == '=')
        i++;
    if (i != len)
        goto bad;
    out->token = strndup(s, len);
    if (!out->token) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    out->scheme = PC_AUTH_BEARER;
    return 0;
bad:
    pc_error_set("malformed Bearer token");
    return PC_EINVAL;
}

int pc_auth_header_parse(const char *value, pc_auth_credentials *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (!value)
        return 0;
    size_t len = strnlen(value, PC_AUTH_HEADER_MAX + 1);
    if (len > PC_AUTH_HEADER_MAX) {
        pc_error_set("Authorization header longer than %d bytes", PC_AUTH_HEADER_MAX);
        return PC_ETOOBIG;
    }
    const char *p = value, *end = value + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p == end)
        return 0;

    const char *scheme = p;
    while (p < end && is_tchar(*p))
        p++;
    size_t slen = (size_t)(p - scheme);
    if (slen == 0 || p == end || *p != ' ') {
        pc_error_set("malformed Authorization header");
        return PC_EINVAL;
    }
    while (p < end && *p == ' ')
        p++;
    if (slen == 5 && strncasecmp(scheme, "basic", 5) == 0) {
        rc = parse_basic(p, (size_t)(end - p), out);
    } else if (slen == 6 && strncasecmp(scheme, "bearer", 6) == 0) {
        rc = parse_bearer(p, (size_t)(end - p), out);
    } else {
        pc_error_set("unsupported authentication scheme");
        rc = PC_ENOTSUP;
    }
    if (rc != 0)
        pc_auth_credentials_clear(out);
    return rc;
}

/* ---- scopes ---- */

static const struct {
    const char *name;
    unsigned bit;
} actions[] = {
    {"pull", PC_AUTH_PULL},
    {"push", PC_AUTH_PUSH},
    {"delete", PC_AUTH_DELETE},
    {"*", PC_AUTH_ALL},
};

static const struct {
    const char *name;
    pc_auth_type type;
} types[] = {
    {"repository", PC_AUTH_REPOSITORY},
    {"registry", PC_AUTH_REGISTRY},
};

static const char *type_name(pc_auth_type t)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (types[i].type == t)
            return types[i].name;
    return NULL;
}

/* type [ "(" class ")" ], both [a-z0-9]+; the class is dropped. */
static int parse_type(const char *s, size_t len, pc_auth_type *out)
{
    size_t n = 0;
    while (n < len && is_lower_alnum(s[n]))
        n++;
    if (n == 0)
        return PC_EINVAL;
    if (n < len) {
        size_t i = n;
        if (s[i++] != '(')
            return PC_EINVAL;
        size_t c = i;
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == c || i + 1 != len || s[i] != ')')
            return PC_EINVAL;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0) {
            *out = types[i].type;
            return 0;
        }
    }
    return PC_EINVAL;
}

/* action *( "," action ), action = [a-z*]*; unknown actions grant nothing. */
static int parse_actions(const char *s, size_t len, unsigned *out)
{
    *out = 0;
    size_t i = 0;
    for (;;) {
        size_t a = i;
        while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '*'))
            i++;
        for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++)
            if (strlen(actions[k].name) == i - a && memcmp(actions[k].name, s + a, i - a) == 0)
                *out |= actions[k].bit;
        if (i == len)
            return 0;
        if (s[i] != ',')
            return PC_EINVAL;
        i++;
    }
}

int pc_auth_scope_parse(const char *s, size_t len, pc_auth_scope *out)
{
    memset(out, 0, sizeof(*out));
    const char *c1 = s ? memchr(s, ':', len) : NULL;
    const char *c2 = NULL;
    for (size_t i = len; s && i > 0; i--) {
        if (s[i - 1] == ':') {
            c2 = s + i - 1;
            break;
        }
    }
    const char *what = "no resource type, name and actions";
    if (!c1 || c2 == c1)
        goto bad;
    what = "unknown resource type";
    if (parse_type(s, (size_t)(c1 - s), &out->type) != 0)
        goto bad;
    const char *name = c1 + 1;
    size_t nlen = (size_t)(c2 - name);
    what = "invalid repository name";
    if (out->type == PC_AUTH_REPOSITORY && !pc_ref_name_valid_n(name, nlen))
        goto bad;
    what = "unknown registry resource";
    if (out->type == PC_AUTH_REGISTRY && !(nlen == 7 && memcmp(name, "catalog", 7) == 0))
        goto bad;
    what = "malformed actions";
    if (parse_actions(c2 + 1, len - (size_t)(c2 + 1 - s), &out->actions) != 0)
        goto bad;
    memcpy(out->name, name, nlen);
    out->name[nlen] = '\0';
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    pc_error_set("invalid scope: %s", what);
    return PC_EINVAL;
}

int pc_auth_scopes_parse(const char *const *values, size_t n, pc_auth_scope **out, size_t *count)
{
    int rc = 0;
    pc_auth_scope *v = NULL;
    size_t k = 0;
    *out = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = values[i];
        while (p && *p) {
            if (*p == ' ') {
                p++;
                continue;
            }
            size_t len = strcspn(p, " ");
            pc_auth_scope s;
            rc = pc_auth_scope_parse(p, len, &s);
            if (rc != 0)
                goto done;
            p += len;
            size_t j = 0;
            while (j < k && !(v[j].type == s.type && strcmp(v[j].name, s.name) == 0))
                j++;
            if (j < k) {
                v[j].actions |= s.actions;
                continue;
            }
            if (k == PC_AUTH_SCOPES_MAX) {
                pc_error_set("more than %d scopes", PC_AUTH_SCOPES_MAX);
                rc = PC_ELIMIT;
                goto done;
            }
            if (!v && !(v = calloc(PC_AUTH_SCOPES_MAX, sizeof(*v)))) {
                pc_error_set("out of memory");
                rc = PC_ENOMEM;
                goto done;
            }
            v[k++] = s;
        }
    }
done:
    if (rc != 0 || k == 0) {
        free(v);
        return rc;
    }
    *out = v;
    *count = k;
    return 0;
}

int pc_auth_actions_format(unsigned mask, char *buf, size_t size)
{
    size_t len = 0;
    if (size == 0)
        return PC_ETOOBIG;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
        if (!(mask & actions[k].bit))
            continue;
        size_t n = strlen(actions[k].name);
        if (len + (len > 0) + n + 1 > size)
            return PC_ETOOBIG;
        if (len > 0)
            buf[len++] = ',';
        memcpy(buf + len, actions[k].name, n + 1);
        len += n;
    }
    return (int)len;
}

int pc_auth_scope_format(const pc_auth_scope *s, char *buf, size_t size)
{
    char acts[32];
    const char *type = type_name(s->type);
    if (!type || (s->type == PC_AUTH_REPOSITORY && !pc_ref_name_valid(s->name)) ||
        (s->type == PC_AUTH_REGISTRY && strcmp(s->name, "catalog") != 0)) {
        pc_error_set("invalid scope");
        return PC_EINVAL;
    }
    if (pc_auth_actions_format(s->actions, acts, sizeof(acts)) < 0)
        return PC_EINVAL;
    size_t tl = strlen(type), nl = strlen(s->name), al = strlen(acts);
    if (tl + nl + al + 3 > size) {
        pc_error_set("scope does not fit");
        return PC_ETOOBIG;
    }
    memcpy(buf, type, tl);
    buf[tl] = ':';
    memcpy(buf + tl + 1, s->name, nl);
    buf[tl + 1 + nl] = ':';
    memcpy(buf + tl + nl + 2, acts, al + 1);
    return (int)(tl + nl + al + 2);
}

bool pc_auth_actions_allow(unsigned granted, unsigned needed)
{
    if (granted & PC_AUTH_ALL)
        return true;
    return (needed & ~granted) == 0;
}

/* ---- WWW-Authenticate ---- */

static int finish(pc_buf *b, bool ok, char **out)
{
    if (!ok || b->nomem) {
        free(b->s);
        if (!ok) {
            pc_error_set("invalid challenge: no realm, a control character or an invalid scope");
            return PC_EINVAL;
        }
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    *out = b->s;
    return 0;
}

int pc_auth_challenge_bearer(char **out, const char *realm, const char *service,
                             const pc_auth_scope *scopes, size_t n, const char *error)
{
    pc_buf b = {0};
    pc_buf sc = {0};
    bool ok = realm && *realm;
    *out = NULL;
    if (ok) {
        pc_buf_str(&b, "Bearer");
        ok = sb_param(&b, " ", "realm", realm);
    }
    if (ok && service)
        ok = sb_param(&b, ",", "service", service);
    for (size_t i = 0; ok && i < n; i++) {
        char one[PC_NAME_MAX + 64];
        ok = pc_auth_scope_format(&scopes[i], one, sizeof(one)) > 0;
        if (i > 0)
            pc_buf_add(&sc, " ", 1);
        pc_buf_str(&sc, one);
    }
    if (ok && n > 0) {
        if (sc.nomem)
            b.nomem = true;
        else
            ok = sb_param(&b, ",", "scope", sc.s);
    }
    if (ok && error)
        ok = sb_param(&b, ",", "error", error);
    free(sc.s);
    return finish(&b, ok, out);
}

int pc_auth_challenge_basic(char **out, const char *realm)
{
    pc_buf b = {0};
    bool ok = realm && *realm;
    *out = NULL;
    if (ok) {
        pc_buf_str(&b, "Basic");
        ok = sb_param(&b, " ", "realm", realm);
    }
    return finish(&b, ok, out);
}
