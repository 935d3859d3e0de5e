/*
 * auth_htpasswd.c - loading an htpasswd file of bcrypt hashes and checking
 * passwords against it with libxcrypt's crypt_rn (see auth_htpasswd.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "auth_htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define BCRYPT_LEN 60 /* "$2b$" + "NN$" + 22 salt + 31 hash characters */
#define DEFAULT_COST 10

typedef struct {
    char *user;
    char hash[BCRYPT_LEN + 1];
    unsigned line;
} ht_user;

struct pc_htpasswd {
    atomic_int refs;
    ht_user *v; /* sorted by user */
    size_t n;
    char dummy[CRYPT_GENSALT_OUTPUT_SIZE]; /* setting for unknown users */
    _Atomic uint64_t work;                 /* pc_htpasswd_work */
};

static bool is_bcrypt_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '/';
}

/* Whether h (len bytes) is a well-formed bcrypt hash; its cost in *cost. */
static bool bcrypt_ok(const char *h, size_t len, unsigned *cost)
{
    if (len != BCRYPT_LEN || h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) || h[3] != '$')
        return false;
    if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9' || h[6] != '$')
        return false;
    *cost = (unsigned)(h[4] - '0') * 10 + (unsigned)(h[5] - '0');
    if (*cost < 4 || *cost > 31)
        return false;
    for (size_t i = 7; i < len; i++)
        if (!is_bcrypt_char(h[i]))
            return false;
    return true;
}

/* What kind of (refused) hash h is, for the message. */
static const char *hash_kind(const char *h, size_t len)
{
    static const struct {
        const char *prefix;
        const char *kind;
    } kinds[] = {
        {"$apr1$", "an MD5 ($apr1$)"},    {"{SHA}", "a SHA-1 ({SHA})"},
        {"$1$", "an MD5-crypt ($1$)"},    {"$5$", "a SHA-256-crypt ($5$)"},
        {"$6$", "a SHA-512-crypt ($6$)"}, {"$y$", "a yescrypt ($y$)"},
        {"$2", "a malformed bcrypt"},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (len >= n && memcmp(h, kinds[i].prefix, n) == 0)
            return kinds[i].kind;
    }
    if (len == 13) {
        size_t i = 0;
        while (i < len && is_bcrypt_char(h[i]))
            i++;
        if (i == len)
            return "a DES crypt";
    }
    return "a plain-text or unknown";
}

/* User names: printable, no space or ':', UTF-8 allowed; not reserved. */
static const char *user_problem(const char *u, size_t len)
{
    if (len == 0)
        return "an empty user name";
    if (len > PC_HTPASSWD_USER_MAX)
        return "a user name longer than 255 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c == 0x7f)
            return "a user name with a space or control character";
    }
    if (u[0] == '@' || (len == 9 && memcmp(u, "anonymous", 9) == 0) ||
        (len == 13 && memcmp(u, "authenticated", 13) == 0))
        return "a reserved user name (anonymous, authenticated, @...)";
    return NULL;
}

static int cmp_user(const void *a, const void *b)
{
    return strcmp(((const ht_user *)a)->user, ((const ht_user *)b)->user);
}

static void free_users(ht_user *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].user);
        explicit_bzero(v[i].hash, sizeof(v[i].hash));
    }
    free(v);
}

/* One non-comment line (trimmed, len > 0). */
static int parse_line(pc_htpasswd *h, const char *s, size_t len, unsigned line, const char *origin,
                      size_t *cap, unsigned *max_cost)
{
    const char *colon = memchr(s, ':', len);
    if (!colon) {
        pc_error_set("%s:%u: not \"user:hash\"", origin, line);
        return PC_EINVAL;
    }
    size_t ulen = (size_t)(colon - s), hlen = len - ulen - 1;
    const char *hash = colon + 1;
    const char *problem = user_problem(s, ulen);
    if (problem) {
        pc_error_set("%s:%u: %s", origin, line, problem);
        return PC_EINVAL;
    }
    unsigned cost = 0;
    if (!bcrypt_ok(hash, hlen, &cost)) {
        pc_error_set("%s:%u: user \"%.*s\" has %s hash; only bcrypt ($2y$, $2b$, $2a$) is "
                     "accepted: set the password again with `htpasswd -B %s %.*s`",
                     origin, line, (int)ulen, s, hash_kind(hash, hlen), origin, (int)ulen, s);
        return PC_EINVAL;
    }
    if (h->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        ht_user *v = realloc(h->v, ncap * sizeof(*v));
        if (!v)
            goto nomem;
        h->v = v;
        *cap = ncap;
    }
    ht_user *u = &h->v[h->n];
    if (!(u->user = strndup(s, ulen)))
        goto nomem;
    memcpy(u->hash, hash, BCRYPT_LEN);
    u->hash[BCRYPT_LEN] = '\0';
    u->line = line;
    h->n++;
    if (cost > *max_cost)
        *max_cost = cost;
    return 0;
nomem:
    pc_error_set("out of memory");
    return PC_ENOMEM;
}

int pc_htpasswd_parse(pc_htpasswd **out, const char *text, size_t len, const char *origin)
{
    int rc = 0;
    size_t cap = 0;
    unsigned max_cost = 0, line = 0;
    pc_htpasswd *h = calloc(1, sizeof(*h));
    *out = NULL;
    if (!h) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    atomic_init(&h->refs, 1);
    if (len > PC_HTPASSWD_FILE_MAX) {
        pc_error_set("%s: larger than %zu bytes", origin, PC_HTPASSWD_FILE_MAX);
        rc = PC_ETOOBIG;
        goto done;
    }
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (memchr(s, '\0', n)) {
            pc_error_set("%s:%u: a NUL byte (not a text file?)", origin, line);
            rc = PC_EINVAL;
            goto done;
        }
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        if (n == 0 || *s == '#')
            continue;
        if ((rc = parse_line(h, s, n, line, origin, &cap, &max_cost)) != 0)
            goto done;
    }
    if (h->n > 1)
        qsort(h->v, h->n, sizeof(*h->v), cmp_user);
    for (size_t i = 1; i < h->n; i++) {
        if (strcmp(h->v[i - 1].user, h->v[i].user) == 0) {
            unsigned a = h->v[i - 1].line, b = h->v[i].line;
            pc_error_set("%s:%u: user \"%s\" again (first on line %u)", origin, a > b ? a : b,
                         h->v[i].user, a < b ? a : b);
            rc = PC_EINVAL;
            goto done;
        }
    }
    if (!crypt_gensalt_rn("$2b$", max_cost ? max_cost : DEFAULT_COST, NULL, 0, h->dummy,
                          (int)sizeof(h->dummy))) {
        pc_error_set("%s: cannot make a bcrypt salt", origin);
        rc = PC_ERR;
        goto done;
    }
done:
    if (rc != 0) {
        pc_htpasswd_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

int pc_htpasswd_load(pc_htpasswd **out, const char *path)
{
    int rc = PC_ERR;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = errno == ENOENT ? PC_ENOTFOUND : PC_ERR;
        pc_error_set("%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        pc_error_set("%s: not a regular file", path);
        goto done;
    }
    if ((size_t)st.st_size > PC_HTPASSWD_FILE_MAX) {
        pc_error_set("%s: larger than %zu bytes", path, PC_HTPASSWD_FILE_MAX);
        rc = PC_ETOOBIG;
        goto done;
    }
    /* one byte more than allowed: a file that grew since fstat is refused */
    if (!(buf = malloc(PC_HTPASSWD_FILE_MAX + 1))) {
        pc_error_set("out of memory");
        rc = PC_ENOMEM;
        goto done;
    }
    len = fread(buf, 1, PC_HTPASSWD_FILE_MAX + 1, f);
    if (ferror(f)) {
        pc_error_set("%s: read error", path);
        goto done;
    }
    rc = pc_htpasswd_parse(out, buf, len, path);
done:
    if (buf) {
        explicit_bzero(buf, len);
        free(buf);
    }
    fclose(f);
    return rc;
}

static const ht_user *find(const pc_htpasswd *h, const char *user)
{
    ht_user key = {.user = (char *)user};
    return h->n ? bsearch(&key, h->v, h->n, sizeof(*h->v), cmp_user) : NULL;
}

bool pc_htpasswd_verify(const pc_htpasswd *h, const char *user, const char *password)
{
    if (!h || !user || !password)
        return false;
    const ht_user *u = find(h, user);
    struct crypt_data *data = calloc(1, sizeof(*data));
    if (!data)
        return false;
    const char *setting = u ? u->hash : h->dummy;
    const char *got = crypt_rn(password, setting, data, (int)sizeof(*data));
    if (got) /* a setting is "$2b$NN$...": NN, the cost, was checked at load (or made) */
        atomic_fetch_add(&((pc_htpasswd *)h)->work,
                         (uint64_t)1 << ((setting[4] - '0') * 10 + (setting[5] - '0')));
    bool ok = u && got && strlen(got) == BCRYPT_LEN && CRYPTO_memcmp(got, u->hash, BCRYPT_LEN) == 0;
    explicit_bzero(data, sizeof(*data));
    free(data);
    return ok;
}

uint64_t pc_htpasswd_work(const pc_htpasswd *h)
{
    return h ? atomic_load(&((pc_htpasswd *)h)->work) : 0;
}

bool pc_htpasswd_has_user(const pc_htpasswd *h, const char *user)
{
    return h && user && find(h, user) != NULL;
}

size_t pc_htpasswd_count(const pc_htpasswd *h)
{
    return h ? h->n : 0;
}

pc_htpasswd *pc_htpasswd_ref(pc_htpasswd *h)
{
    if (h)
        atomic_fetch_add(&h->refs, 1);
    return h;
}

void pc_htpasswd_free(pc_htpasswd *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    free_users(h->v, h->n);
    free(h);
}
