/*
 * toml.c - the TOML reader of toml.h: one pass over the text, building a
 * jansson tree. Which objects are tables defined by a [header], which are
 * values (inline tables, arrays) that no later line may extend, and which
 * arrays are arrays of tables ([[header]]) is kept beside the tree, in three
 * small pointer lists, so the tree itself stays plain JSON.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "toml.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A list of json_t pointers (borrowed from the tree). */
typedef struct {
    const json_t **v;
    size_t n, cap;
} ptrset;

typedef struct {
    const char *p, *end;
    int line;
    char *err;
    size_t errsize;
    bool failed;
    ptrset headed;  /* tables defined by a [header] (or by dotted keys) */
    ptrset fixed;   /* inline tables and arrays: values, closed to later lines */
    ptrset tarrays; /* arrays of tables ([[header]]) */
} parser;

static bool set_has(const ptrset *s, const json_t *j)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == j)
            return true;
    return false;
}

static int set_add(ptrset *s, const json_t *j)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        const json_t **v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = j;
    return 0;
}

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *ps, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ps->errsize)
        snprintf(ps->err, ps->errsize, "line %d: %s", ps->line, msg);
    return -1;
}

static int nomem(parser *ps)
{
    return fail(ps, "out of memory");
}

static bool at_end(const parser *ps)
{
    return ps->p >= ps->end;
}

static int peek(const parser *ps)
{
    return at_end(ps) ? -1 : (unsigned char)*ps->p;
}

/* Spaces and tabs. */
static void skip_ws(parser *ps)
{
    while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

/* A comment to the end of the line (not the newline). Control characters
 * other than tab are not allowed in one. */
static int skip_comment(parser *ps)
{
    if (peek(ps) != '#')
        return 0;
    while (!at_end(ps) && *ps->p != '\n') {
        unsigned char c = (unsigned char)*ps->p;
        if ((c < 0x20 && c != '\t' && !(c == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')) ||
            c == 0x7f)
            return fail(ps, "a control character in a comment");
        ps->p++;
    }
    return 0;
}

/* A newline (LF or CRLF): 1 when one was taken, 0 when none is here. */
static int take_newline(parser *ps)
{
    if (peek(ps) == '\n') {
        ps->p++;
        ps->line++;
        return 1;
    }
    if (peek(ps) == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') {
        ps->p += 2;
        ps->line++;
        return 1;
    }
    return 0;
}

/* Whitespace, comments and newlines (inside arrays). */
static int skip_blank(parser *ps)
{
    for (;;) {
        skip_ws(ps);
        if (skip_comment(ps))
            return -1;
        if (!take_newline(ps))
            return 0;
    }
}

/* After a key/value or a header: only whitespace and a comment before the
 * end of the line. */
static int end_of_line(parser *ps)
{
    skip_ws(ps);
    if (skip_comment(ps))
        return -1;
    if (at_end(ps) || take_newline(ps))
        return 0;
    if (*ps->p == '\r')
        return fail(ps, "a carriage return without a line feed");
    if (*ps->p == '\0')
        return fail(ps, "a NUL byte");
    return fail(ps, "unexpected '%c' after the value (one key = value per line)", *ps->p);
}

/* ---- strings ---- */

static void put_utf8(pc_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    pc_buf_add(b, u, n);
}

/* An escape after '\' in a basic string, appended to b. */
static int escape(parser *ps, pc_buf *b)
{
    if (at_end(ps))
        return fail(ps, "an unterminated string");
    char c = *ps->p++;
    const char *simple = strchr("btnfr\"\\", c);
    if (c && simple) {
        static const char to[] = "\b\t\n\f\r\"\\";
        pc_buf_add(b, &to[simple - "btnfr\"\\"], 1);
        return 0;
    }
    if (c != 'u' && c != 'U')
        return fail(ps, "an unknown escape '\\%c' in a string", c);
    int digits = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (int i = 0; i < digits; i++) {
        int v = at_end(ps) ? -1 : pc_util_hexval(*ps->p);
        if (v < 0)
            return fail(ps, "\\%c wants %d hex digits", c, digits);
        cp = cp << 4 | (uint32_t)v;
        ps->p++;
    }
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return fail(ps, "\\%c%0*" PRIX32 " is not a character this reader keeps", c, digits, cp);
    put_utf8(b, cp);
    return 0;
}

/* The string starting at ps->p (a quote), into *out (malloc'd, NUL-free
 * UTF-8 checked by the caller through jansson). */
static int string(parser *ps, char **out)
{
    char q = *ps->p;
    bool multi = ps->end - ps->p >= 3 && ps->p[1] == q && ps->p[2] == q;
    pc_buf b = {0};
    ps->p += multi ? 3 : 1;
    if (multi) /* a newline right after the opening quotes is trimmed */
        take_newline(ps);
    for (;;) {
        if (at_end(ps)) {
            pc_buf_free(&b);
            return fail(ps, "an unterminated string");
        }
        char c = *ps->p;
        if (c == q) {
            if (!multi) {
                ps->p++;
                break;
            }
            if (ps->end - ps->p >= 3 && ps->p[1] == q && ps->p[2] == q) {
                /* up to two more quotes belong to the content: """a""""" */
                int extra = 0;
                while (extra < 2 && ps->end - ps->p > 3 && ps->p[3] == q) {
                    pc_buf_add(&b, &q, 1);
                    ps->p++;
                    extra++;
                }
                ps->p += 3;
                break;
            }
            pc_buf_add(&b, &c, 1);
            ps->p++;
            continue;
        }
        if (c == '\n' || (c == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')) {
            if (!multi) {
                pc_buf_free(&b);
                return fail(ps, "a newline in a one-line string");
            }
            if (c == '\r')
                ps->p++;
            pc_buf_add(&b, "\n", 1);
            ps->p++;
            ps->line++;
            continue;
        }
        if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f) {
            pc_buf_free(&b);
            return fail(ps, "a control character in a string");
        }
        if (c == '\\' && q == '"') {
            ps->p++;
            if (multi) { /* a line-ending backslash trims the whitespace after it */
                const char *s = ps->p;
                while (s < ps->end && (*s == ' ' || *s == '\t'))
                    s++;
                if (s < ps->end && (*s == '\n' || *s == '\r')) {
                    ps->p = s;
                    while (!at_end(ps)) {
                        if (take_newline(ps))
                            continue;
                        if (*ps->p == ' ' || *ps->p == '\t') {
                            ps->p++;
                            continue;
                        }
                        break;
                    }
                    continue;
                }
            }
            if (escape(ps, &b)) {
                pc_buf_free(&b);
                return -1;
            }
            continue;
        }
        pc_buf_add(&b, &c, 1);
        ps->p++;
    }
    if (!(*out = pc_buf_take(&b)))
        return nomem(ps);
    return 0;
}

/* A JSON string of s (UTF-8 checked). Takes s. */
static json_t *jstring(parser *ps, char *s)
{
    json_t *j = json_string(s);
    free(s);
    if (!j)
        fail(ps, "a string that is not UTF-8");
    return j;
}

/* ---- keys ---- */

static bool bare_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

#define MAX_KEY_PARTS 32

typedef struct {
    char *part[MAX_KEY_PARTS];
    size_t n;
} key;

static void key_free(key *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->part[i]);
    k->n = 0;
}

/* A dotted key: parts separated by '.', whitespace around the dots. */
static int key_parts(parser *ps, key *k);

/* The key into k; on failure k holds nothing. */
static int parse_key(parser *ps, key *k)
{
    if (key_parts(ps, k) == 0)
        return 0;
    key_free(k);
    return -1;
}

static int key_parts(parser *ps, key *k)
{
    k->n = 0;
    for (;;) {
        skip_ws(ps);
        char *part = NULL;
        int c = peek(ps);
        if (c == '"' || c == '\'') {
            if (ps->end - ps->p >= 3 && ps->p[1] == c && ps->p[2] == c)
                return fail(ps, "a multi-line string cannot be a key");
            if (string(ps, &part))
                return -1;
            json_t *chk = json_string(part); /* UTF-8 */
            if (!chk) {
                free(part);
                return fail(ps, "a key that is not UTF-8");
            }
            json_decref(chk);
        } else if (bare_char(c)) {
            const char *s = ps->p;
            while (!at_end(ps) && bare_char(*ps->p))
                ps->p++;
            if (!(part = strndup(s, (size_t)(ps->p - s))))
                return nomem(ps);
        } else {
            return fail(ps, c < 0 ? "a key is missing" : "'%c' cannot start a key", c);
        }
        if (k->n == MAX_KEY_PARTS) {
            free(part);
            return fail(ps, "a key of more than %d parts", MAX_KEY_PARTS);
        }
        k->part[k->n++] = part;
        skip_ws(ps);
        if (peek(ps) != '.')
            return 0;
        ps->p++;
    }
}

/* ---- values ---- */

static json_t *value(parser *ps, int depth);

/* A key/value into table t (dotted parts create tables). */
static int keyval(parser *ps, json_t *t, int depth);

static json_t *array(parser *ps, int depth)
{
    json_t *a = json_array();
    if (!a || set_add(&ps->fixed, a)) {
        json_decref(a);
        nomem(ps);
        return NULL;
    }
    ps->p++; /* [ */
    for (;;) {
        if (skip_blank(ps))
            goto bad;
        if (peek(ps) == ']') {
            ps->p++;
            return a;
        }
        if (at_end(ps)) {
            fail(ps, "an unterminated array");
            goto bad;
        }
        json_t *v = value(ps, depth + 1);
        if (!v)
            goto bad;
        if (json_array_append_new(a, v)) {
            nomem(ps);
            goto bad;
        }
        if (skip_blank(ps))
            goto bad;
        if (peek(ps) == ',') {
            ps->p++;
            continue;
        }
        if (peek(ps) == ']') {
            ps->p++;
            return a;
        }
        fail(ps, at_end(ps) ? "an unterminated array" : "',' or ']' wanted in an array");
        goto bad;
    }
bad:
    json_decref(a);
    return NULL;
}

static json_t *inline_table(parser *ps, int depth)
{
    json_t *t = json_object();
    if (!t || set_add(&ps->fixed, t)) {
        json_decref(t);
        nomem(ps);
        return NULL;
    }
    ps->p++; /* { */
    skip_ws(ps);
    if (peek(ps) == '}') {
        ps->p++;
        return t;
    }
    for (;;) {
        if (keyval(ps, t, depth + 1))
            goto bad;
        skip_ws(ps);
        if (peek(ps) == ',') {
            ps->p++;
            continue;
        }
        if (peek(ps) == '}') {
            ps->p++;
            return t;
        }
        fail(ps, "',' or '}' wanted in an inline table (which is one line)");
        goto bad;
    }
bad:
    json_decref(t);
    return NULL;
}

/* A number, a boolean, inf/nan, or a date/time (kept as text). */
static json_t *scalar(parser *ps)
{
    const char *s = ps->p;
    while (!at_end(ps) && (bare_char(*ps->p) || (*ps->p && strchr("+.:", *ps->p))))
        ps->p++;
    /* a date and a time may be separated by one space: 1979-05-27 07:32:00 */
    if (ps->p - s == 10 && s[4] == '-' && ps->end - ps->p > 1 && *ps->p == ' ' && ps->p[1] >= '0' &&
        ps->p[1] <= '9') {
        ps->p++;
        while (!at_end(ps) && (bare_char(*ps->p) || (*ps->p && strchr("+.:", *ps->p))))
            ps->p++;
    }
    size_t n = (size_t)(ps->p - s);
    char tok[128];
    if (n == 0) {
        if (at_end(ps))
            fail(ps, "a value is missing");
        else
            fail(ps, "'%c' cannot start a value", *s);
        return NULL;
    }
    if (n >= sizeof(tok)) {
        fail(ps, "a value of %zu characters", n);
        return NULL;
    }
    memcpy(tok, s, n);
    tok[n] = '\0';
    if (strcmp(tok, "true") == 0)
        return json_true();
    if (strcmp(tok, "false") == 0)
        return json_false();
    const char *t = tok + (tok[0] == '+' || tok[0] == '-');
    if (strcmp(t, "inf") == 0 || strcmp(t, "nan") == 0) {
        fail(ps, "inf and nan are not kept by this reader");
        return NULL;
    }
    bool date = n >= 8 && ((tok[4] == '-' && tok[7] == '-') || (tok[2] == ':' && tok[5] == ':'));
    if (date) {
        for (size_t i = 0; i < n; i++)
            if (!strchr("0123456789-:TtZz.+ ", tok[i])) {
                fail(ps, "'%s' is not a date or time", tok);
                return NULL;
            }
        json_t *j = json_string(tok);
        if (!j)
            nomem(ps);
        return j;
    }

    /* underscores only between digits */
    char digits[128];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '_') {
            if (i == 0 || i + 1 == n || pc_util_hexval(tok[i - 1]) < 0 ||
                pc_util_hexval(tok[i + 1]) < 0) {
                fail(ps, "'%s': '_' only between digits", tok);
                return NULL;
            }
            continue;
        }
        digits[m++] = tok[i];
    }
    digits[m] = '\0';
    const char *d = digits;
    bool neg = *d == '-';
    int base = 10;
    if (*d == '+' || *d == '-')
        d++;
    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'o' || d[1] == 'b')) {
        if (d != digits) {
            fail(ps, "'%s': no sign before 0x, 0o or 0b", tok);
            return NULL;
        }
        base = d[1] == 'x' ? 16 : d[1] == 'o' ? 8 : 2;
        d += 2;
    }
    bool is_float = base == 10 && strpbrk(d, ".eE") != NULL;
    if (!*d || (base == 10 && !is_float && d[0] == '0' && d[1])) {
        fail(ps, "'%s' is not a number (no leading zeros)", tok);
        return NULL;
    }
    char *endp = NULL;
    errno = 0;
    if (is_float) {
        /* digits on both sides of the dot */
        const char *dot = strchr(d, '.');
        if (dot && (dot == d || !(dot[1] >= '0' && dot[1] <= '9') ||
                    !(dot[-1] >= '0' && dot[-1] <= '9'))) {
            fail(ps, "'%s': a float wants digits on both sides of '.'", tok);
            return NULL;
        }
        for (const char *q = d; *q; q++)
            if (!strchr("0123456789.eE+-", *q) ||
                (q > d && (*q == '+' || *q == '-') && q[-1] != 'e' && q[-1] != 'E')) {
                fail(ps, "'%s' is not a number", tok);
                return NULL;
            }
        double v = strtod(digits, &endp);
        if (*endp || errno) {
            fail(ps, "'%s' is not a number", tok);
            return NULL;
        }
        json_t *j = json_real(v);
        if (!j)
            nomem(ps);
        return j;
    }
    for (const char *q = d; *q; q++)
        if (pc_util_hexval(*q) < 0 || pc_util_hexval(*q) >= base) {
            fail(ps, "'%s' is not a number", tok);
            return NULL;
        }
    unsigned long long u = strtoull(d, &endp, base);
    if (*endp || errno == ERANGE || u > (unsigned long long)LLONG_MAX + (neg ? 1u : 0u)) {
        fail(ps, "'%s' is not a 64-bit integer", tok);
        return NULL;
    }
    long long v = neg ? (long long)(0 - u) : (long long)u;
    json_t *j = json_integer((json_int_t)v);
    if (!j)
        nomem(ps);
    return j;
}

static json_t *value(parser *ps, int depth)
{
    if (depth > PC_TOML_MAX_DEPTH) {
        fail(ps, "arrays or inline tables nested more than %d deep", PC_TOML_MAX_DEPTH);
        return NULL;
    }
    int c = peek(ps);
    if (c == '"' || c == '\'') {
        char *s = NULL;
        if (string(ps, &s))
            return NULL;
        return jstring(ps, s);
    }
    if (c == '[')
        return array(ps, depth);
    if (c == '{')
        return inline_table(ps, depth);
    return scalar(ps);
}

/* The table under name in t for a dotted key or a header path: created
 * (implicitly) when absent; the last table of an array of tables (headers
 * only); NULL with a message when it is a value. */
static json_t *descend(parser *ps, json_t *t, const char *name, bool header)
{
    json_t *c = json_object_get(t, name);
    if (!c) {
        c = json_object();
        if (!c || json_object_set_new(t, name, c)) {
            nomem(ps);
            return NULL;
        }
        return c;
    }
    if (header && json_is_array(c) && set_has(&ps->tarrays, c))
        return json_array_get(c, json_array_size(c) - 1);
    if (!json_is_object(c) || set_has(&ps->fixed, c)) {
        fail(ps, "'%s' is already a value, not a table", name);
        return NULL;
    }
    return c;
}

static int keyval(parser *ps, json_t *t, int depth)
{
    key k;
    int rc = -1;
    if (parse_key(ps, &k))
        return -1;
    skip_ws(ps);
    if (peek(ps) != '=') {
        fail(ps, "'=' wanted after the key '%s'", k.part[k.n - 1]);
        goto done;
    }
    ps->p++;
    skip_ws(ps);
    for (size_t i = 0; i + 1 < k.n; i++)
        if (!(t = descend(ps, t, k.part[i], false)))
            goto done;
    const char *name = k.part[k.n - 1];
    if (json_object_get(t, name)) {
        fail(ps, "the key '%s' is defined twice", name);
        goto done;
    }
    json_t *v = value(ps, depth);
    if (!v)
        goto done;
    if (json_object_set_new(t, name, v)) {
        nomem(ps);
        goto done;
    }
    rc = 0;
done:
    key_free(&k);
    return rc;
}

/* [a.b] or [[a.b]]: the table that following key/values go into. */
static json_t *header(parser *ps, json_t *root)
{
    bool arr = ps->end - ps->p >= 2 && ps->p[1] == '[';
    key k;
    json_t *t = root, *res = NULL;
    ps->p += arr ? 2 : 1;
    if (parse_key(ps, &k))
        return NULL;
    if (peek(ps) != ']' || (arr && (ps->end - ps->p < 2 || ps->p[1] != ']'))) {
        fail(ps, arr ? "']]' wanted after the table name" : "']' wanted after the table name");
        goto done;
    }
    ps->p += arr ? 2 : 1;
    for (size_t i = 0; i + 1 < k.n; i++)
        if (!(t = descend(ps, t, k.part[i], true)))
            goto done;
    const char *name = k.part[k.n - 1];
    json_t *c = json_object_get(t, name);
    if (arr) {
        if (!c) {
            if (!(c = json_array()) || json_object_set_new(t, name, c) ||
                set_add(&ps->tarrays, c)) {
                nomem(ps);
                goto done;
            }
        } else if (!json_is_array(c) || !set_has(&ps->tarrays, c)) {
            fail(ps, "[[%s]]: '%s' is already a value or a table", name, name);
            goto done;
        }
        json_t *n = json_object();
        if (!n || json_array_append_new(c, n)) {
            nomem(ps);
            goto done;
        }
        res = n;
    } else {
        if (!c) {
            if (!(c = json_object()) || json_object_set_new(t, name, c)) {
                nomem(ps);
                goto done;
            }
        } else if (!json_is_object(c) || set_has(&ps->fixed, c)) {
            fail(ps, "[%s]: '%s' is already a value", name, name);
            goto done;
        } else if (set_has(&ps->headed, c)) {
            fail(ps, "the table [%s] is defined twice", name);
            goto done;
        }
        if (set_add(&ps->headed, c)) {
            nomem(ps);
            goto done;
        }
        res = c;
    }
    if (end_of_line(ps))
        res = NULL;
done:
    key_free(&k);
    return res;
}

int pc_toml_parse(const char *text, size_t len, json_t **out, char *err, size_t errsize)
{
    parser ps = {.p = text, .end = text + len, .line = 1, .err = err, .errsize = errsize};
    json_t *root = json_object(), *cur = root;
    *out = NULL;
    if (errsize)
        err[0] = '\0';
    if (!root) {
        nomem(&ps);
        goto done;
    }
    /* a UTF-8 byte order mark is allowed at the start */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        ps.p += 3;
    while (!at_end(&ps)) {
        skip_ws(&ps);
        if (skip_comment(&ps))
            goto done;
        if (at_end(&ps))
            break;
        if (take_newline(&ps))
            continue;
        if (*ps.p == '\0') {
            fail(&ps, "a NUL byte");
            goto done;
        }
        if (*ps.p == '[') {
            if (!(cur = header(&ps, root)))
                goto done;
            continue;
        }
        if (keyval(&ps, cur, 0) || end_of_line(&ps))
            goto done;
    }
    *out = root;
    root = NULL;
done:
    if (!*out && !ps.failed)
        nomem(&ps);
    json_decref(root);
    free(ps.headed.v);
    free(ps.fixed.v);
    free(ps.tarrays.v);
    return *out ? 0 : -1;
}

int pc_toml_load(const char *path, json_t **out, char *err, size_t errsize)
{
    *out = NULL;
    if (errsize)
        err[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    pc_buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        pc_buf_add(&b, chunk, n);
        if (b.len > 16 * 1024 * 1024) {
            fclose(f);
            pc_buf_free(&b);
            snprintf(err, errsize, "%s: larger than 16 MiB", path);
            return -1;
        }
    }
    bool rerr = ferror(f);
    int saved = errno;
    fclose(f);
    if (rerr || b.nomem) {
        pc_buf_free(&b);
        snprintf(err, errsize, "%s: %s", path, rerr ? strerror(saved) : "out of memory");
        return -1;
    }
    size_t len = b.len;
    char *text = pc_buf_take(&b);
    char msg[300];
    int rc = text ? pc_toml_parse(text, len, out, msg, sizeof(msg)) : -1;
    if (rc)
        snprintf(err, errsize, "%s: %s", path, text ? msg : "out of memory");
    free(text);
    return rc;
}
