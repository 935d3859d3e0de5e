/*
 * metrics.c - the process-wide registry of counter, gauge and histogram
 * series behind metrics.h, and its Prometheus text rendering (format 0.0.4).
 *
 * Layout: a fixed open-addressing hash table of pointers to series. A slot
 * goes from NULL to a series exactly once (under the mutex, published with
 * a release store) and never changes again until pc_metrics_reset(), so
 * lookups read slots with acquire loads and take no lock; a series, once
 * published, never moves, and its value is a relaxed C11 atomic. Only the
 * creation of a series, a dropped update, declarations and rendering take
 * the mutex. A histogram series carries its own bucket counters (one per
 * bound plus +Inf, not cumulative; rendering sums them) and a sum kept in
 * microunits, all relaxed atomics: a scrape may see an observation's count
 * before its bucket, which Prometheus tolerates.
 *
 * Bounds: at most PC_METRICS_MAX_SERIES series (the table is sized so that
 * probing always ends on an empty slot), names up to 200 bytes and label
 * strings up to 1024. An update that would create a series beyond the cap,
 * or whose name or label string is malformed or too long (it would corrupt
 * the exposition), is dropped and counted by pullcache_metrics_dropped_total,
 * a series of its own outside the cap that is always rendered.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "metrics.h"
#include "util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PC_METRICS_MAX_SERIES
#define PC_METRICS_MAX_SERIES 10000
#endif
#define TABLE_SIZE 16384 /* power of two, well above the cap */
#define MAX_NAME 200
#define MAX_LABELS 1024
#define DROPPED_NAME "pullcache_metrics_dropped_total"
#define DROPPED_HELP                                                                               \
    "Metric updates dropped (series cap reached, or a malformed name or label set)."

_Static_assert((TABLE_SIZE & (TABLE_SIZE - 1)) == 0, "TABLE_SIZE must be a power of two");
_Static_assert(TABLE_SIZE >= PC_METRICS_MAX_SERIES + PC_METRICS_MAX_SERIES / 2,
               "the table must stay at most two thirds full");

/* The buckets of one histogram series. */
typedef struct hist {
    size_t n; /* bounds, without +Inf */
    double bounds[PC_METRICS_MAX_BUCKETS];
    _Atomic uint64_t buckets[PC_METRICS_MAX_BUCKETS + 1]; /* [n] is +Inf */
    _Atomic uint64_t sum_micro;
} hist;

/* One series. Allocated on a cache line of its own so that hot counters of
 * different series do not share one. key is "name\0labels\0". */
typedef struct series {
    _Atomic uint64_t
        value; /* a gauge stores its int64 as two's complement; a histogram its count */
    uint64_t hash;
    pc_metric_type kind; /* how it was created: add, gauge_add or observe */
    hist *h;             /* histograms only */
    size_t name_len;
    const char *labels; /* points into key */
    char key[];
} series;

typedef struct decl {
    char *name;
    char *help;
    pc_metric_type type;
    size_t n_bounds; /* histograms */
    double bounds[PC_METRICS_MAX_BUCKETS];
} decl;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(series *) table[TABLE_SIZE];
static size_t n_series; /* user series, under lock; the dropped series is not counted */
static series *dropped; /* under lock; NULL until first needed */
static decl *decls;     /* under lock */
static size_t n_decls, cap_decls;

/* FNV-1a over name, a separator byte no valid name contains, and labels.
 * Stores the lengths in *name_len and *labels_len. */
static uint64_t key_hash(const char *name, const char *labels, size_t *name_len, size_t *labels_len)
{
    uint64_t h = 0xcbf29ce484222325u;
    const unsigned char *p;

    for (p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    *name_len = (size_t)(p - (const unsigned char *)name);
    h = (h ^ 0xffu) * 0x100000001b3u;
    for (p = (const unsigned char *)labels; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    *labels_len = (size_t)(p - (const unsigned char *)labels);
    return h;
}

static bool series_is(const series *s, uint64_t h, const char *name, size_t name_len,
                      const char *labels)
{
    return s->hash == h && s->name_len == name_len && memcmp(s->key, name, name_len) == 0 &&
           strcmp(s->labels, labels) == 0;
}

/* The series for (name, labels) or NULL; *slot is where probing stopped
 * (the empty slot an insert would use). Lock-free. */
static series *table_find(uint64_t h, const char *name, size_t name_len, const char *labels,
                          size_t *slot)
{
    size_t i = (size_t)h & (TABLE_SIZE - 1);
    for (;;) {
        series *s = atomic_load_explicit(&table[i], memory_order_acquire);
        if (!s || series_is(s, h, name, name_len, labels)) {
            *slot = i;
            return s;
        }
        i = (i + 1) & (TABLE_SIZE - 1);
    }
}

static bool is_name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* A metric name: [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool valid_name(const char *name, size_t len)
{
    if (len == 0 || len > MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_name_char(name[i], i == 0, true))
            return false;
    return true;
}

/* A rendered label set: empty, or lname="value" joined by commas, lname
 * [a-zA-Z_][a-zA-Z0-9_]*, the value escaped as pc_metrics_escape does. */
static bool valid_labels(const char *p, size_t len)
{
    if (len > MAX_LABELS)
        return false;
    if (!*p)
        return true;
    for (;;) {
        const char *start = p;
        while (is_name_char(*p, p == start, false))
            p++;
        if (p == start || *p++ != '=' || *p++ != '"')
            return false;
        while (*p != '"') {
            if (!*p || *p == '\n')
                return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return false;
            }
            p++;
        }
        p++;
        if (!*p)
            return true;
        if (*p++ != ',')
            return false;
    }
}

static const decl *decl_find(const char *name);

static series *series_new(uint64_t h, const char *name, size_t name_len, const char *labels,
                          size_t labels_len, pc_metric_type kind, const decl *d)
{
    size_t size = sizeof(series) + name_len + 1 + labels_len + 1;
    size = (size + 63) & ~(size_t)63;
    series *s = aligned_alloc(64, size);
    if (!s)
        return NULL;
    atomic_init(&s->value, 0);
    s->hash = h;
    s->kind = kind;
    s->h = NULL;
    if (kind == PC_METRIC_HISTOGRAM) {
        s->h = calloc(1, sizeof(*s->h));
        if (!s->h) {
            free(s);
            return NULL;
        }
        s->h->n = d->n_bounds;
        memcpy(s->h->bounds, d->bounds, d->n_bounds * sizeof(double));
    }
    s->name_len = name_len;
    memcpy(s->key, name, name_len);
    s->key[name_len] = '\0';
    memcpy(s->key + name_len + 1, labels, labels_len + 1);
    s->labels = s->key + name_len + 1;
    return s;
}

/* Create the dropped counter if it does not exist yet. Under lock. */
static void ensure_dropped(void)
{
    size_t name_len, labels_len, slot;
    uint64_t h;

    if (dropped)
        return;
    h = key_hash(DROPPED_NAME, "", &name_len, &labels_len);
    dropped = table_find(h, DROPPED_NAME, name_len, "", &slot);
    if (dropped)
        return;
    dropped = series_new(h, DROPPED_NAME, name_len, "", labels_len, PC_METRIC_COUNTER, NULL);
    if (dropped)
        atomic_store_explicit(&table[slot], dropped, memory_order_release);
}

/* Count one dropped update. Under lock. */
static void count_dropped(void)
{
    ensure_dropped();
    if (dropped)
        atomic_fetch_add_explicit(&dropped->value, 1, memory_order_relaxed);
}

/* The series for (name, labels), created when missing; NULL when the update
 * is dropped (and then counted). */
static series *series_get(const char *name, const char *labels, pc_metric_type kind)
{
    const decl *d = NULL;
    size_t name_len, labels_len, slot;
    uint64_t h;
    series *s;

    if (!name)
        return NULL;
    if (!labels)
        labels = "";
    h = key_hash(name, labels, &name_len, &labels_len);
    s = table_find(h, name, name_len, labels, &slot);
    if (s)
        goto found;

    pthread_mutex_lock(&lock);
    s = table_find(h, name, name_len, labels, &slot); /* another thread may have won */
    if (s)
        goto done;
    if (kind == PC_METRIC_HISTOGRAM) {
        d = decl_find(name);
        if (!d || d->type != PC_METRIC_HISTOGRAM || !valid_labels(labels, labels_len) ||
            strstr(labels, "le=\"")) {
            count_dropped();
            goto done;
        }
    }
    if (n_series >= PC_METRICS_MAX_SERIES || !valid_name(name, name_len) ||
        !valid_labels(labels, labels_len)) {
        count_dropped();
        goto done;
    }
    s = series_new(h, name, name_len, labels, labels_len, kind, d);
    if (!s) {
        count_dropped();
        goto done;
    }
    n_series++;
    atomic_store_explicit(&table[slot], s, memory_order_release);
done:
    pthread_mutex_unlock(&lock);
found:
    if (s && (s->kind == PC_METRIC_HISTOGRAM) != (kind == PC_METRIC_HISTOGRAM))
        return NULL; /* a histogram name used as a counter, or the reverse */
    return s;
}

void pc_metrics_add(const char *name, const char *labels, uint64_t n)
{
    series *s = series_get(name, labels, PC_METRIC_COUNTER);
    if (s)
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void pc_metrics_gauge_add(const char *name, const char *labels, int64_t delta)
{
    series *s = series_get(name, labels, PC_METRIC_GAUGE);
    if (s)
        atomic_fetch_add_explicit(&s->value, (uint64_t)delta, memory_order_relaxed);
}

void pc_metrics_observe(const char *name, const char *labels, double value)
{
    series *s = series_get(name, labels, PC_METRIC_HISTOGRAM);
    size_t i = 0;

    if (!s || !s->h)
        return;
    if (!(value >= 0)) /* negative or NaN: clock trouble, count it as 0 */
        value = 0;
    while (i < s->h->n && value > s->h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->h->sum_micro,
                              value > 1.8e13 ? UINT64_C(1) << 63 : (uint64_t)(value * 1e6 + 0.5),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

void pc_metrics_hist_zero(const char *name, const char *labels)
{
    (void)series_get(name, labels, PC_METRIC_HISTOGRAM);
}

/* The existing series for (name, labels), or NULL. Lock-free. */
static series *series_lookup(const char *name, const char *labels)
{
    size_t name_len, labels_len, slot;

    if (!name)
        return NULL;
    if (!labels)
        labels = "";
    uint64_t h = key_hash(name, labels, &name_len, &labels_len);
    return table_find(h, name, name_len, labels, &slot);
}

uint64_t pc_metrics_hist_count(const char *name, const char *labels)
{
    series *s = series_lookup(name, labels);
    return s && s->h ? atomic_load_explicit(&s->value, memory_order_relaxed) : 0;
}

int64_t pc_metrics_value(const char *name, const char *labels)
{
    series *s = series_lookup(name, labels);
    return s ? (int64_t)atomic_load_explicit(&s->value, memory_order_relaxed) : 0;
}

/* Re-declaring a name replaces its type and help. Declarations survive
 * pc_metrics_reset() (they are made once, at start-up). An invalid name or
 * an allocation failure leaves the metric undeclared. */
static void declare(const char *name, pc_metric_type type, const char *help, const double *bounds,
                    size_t n_bounds)
{
    char *n = NULL, *hp = NULL;

    if (!name || !valid_name(name, strlen(name)))
        return;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_decls; i++) {
        if (strcmp(decls[i].name, name) == 0) {
            hp = strdup(help ? help : "");
            if (hp) {
                free(decls[i].help);
                decls[i].help = hp;
                decls[i].type = type;
                decls[i].n_bounds = n_bounds;
                if (n_bounds)
                    memcpy(decls[i].bounds, bounds, n_bounds * sizeof(double));
            }
            goto done;
        }
    }
    if (n_decls == cap_decls) {
        size_t cap = cap_decls ? 2 * cap_decls : 32;
        decl *d = realloc(decls, cap * sizeof(*d));
        if (!d)
            goto done;
        decls = d;
        cap_decls = cap;
    }
    n = strdup(name);
    hp = strdup(help ? help : "");
    if (!n || !hp) {
        free(n);
        free(hp);
        goto done;
    }
    decls[n_decls] = (decl){.name = n, .help = hp, .type = type, .n_bounds = n_bounds};
    if (n_bounds)
        memcpy(decls[n_decls].bounds, bounds, n_bounds * sizeof(double));
    n_decls++;
done:
    pthread_mutex_unlock(&lock);
}

void pc_metrics_declare(const char *name, pc_metric_type type, const char *help)
{
    if (type != PC_METRIC_HISTOGRAM) /* a histogram needs its bounds */
        declare(name, type, help, NULL, 0);
}

/* Bounds must be finite and strictly ascending; more than
 * PC_METRICS_MAX_BUCKETS, or none, leaves the name undeclared. */
void pc_metrics_declare_histogram(const char *name, const char *help, const double *bounds,
                                  size_t n)
{
    if (!bounds || n == 0 || n > PC_METRICS_MAX_BUCKETS)
        return;
    for (size_t i = 0; i < n; i++)
        if (!(bounds[i] > -1e300 && bounds[i] < 1e300) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return;
    declare(name, PC_METRIC_HISTOGRAM, help, bounds, n);
}

/* Must not run concurrently with updates: lock-free readers could still be
 * holding a series it frees. */
void pc_metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        series *s = atomic_load_explicit(&table[i], memory_order_relaxed);
        if (s)
            free(s->h);
        free(s);
        atomic_store_explicit(&table[i], NULL, memory_order_relaxed);
    }
    n_series = 0;
    dropped = NULL;
    pthread_mutex_unlock(&lock);
}

/* ---- rendering ---- */

/* HELP text escaping: backslash and newline. */
static void buf_help(pc_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            pc_buf_add(b, "\\\\", 2);
        else if (*s == '\n')
            pc_buf_add(b, "\\n", 2);
        else
            pc_buf_add(b, s, 1);
    }
}

static int series_cmp(const void *a, const void *b)
{
    const series *x = *(const series *const *)a, *y = *(const series *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->labels, y->labels);
}

/* The declaration of name, or NULL. Under lock. */
static const decl *decl_find(const char *name)
{
    static const decl dropped_decl = {
        .name = DROPPED_NAME, .help = DROPPED_HELP, .type = PC_METRIC_COUNTER};

    for (size_t i = 0; i < n_decls; i++)
        if (strcmp(decls[i].name, name) == 0)
            return &decls[i];
    return strcmp(name, DROPPED_NAME) == 0 ? &dropped_decl : NULL;
}

static void render_family_header(pc_buf *b, const series *s, const decl *d)
{
    if (d && d->help[0]) {
        pc_buf_str(b, "# HELP ");
        pc_buf_str(b, s->key);
        pc_buf_add(b, " ", 1);
        buf_help(b, d->help);
        pc_buf_add(b, "\n", 1);
    }
    pc_buf_str(b, "# TYPE ");
    pc_buf_str(b, s->key);
    pc_buf_str(b, !d                               ? " untyped\n"
                  : d->type == PC_METRIC_GAUGE     ? " gauge\n"
                  : d->type == PC_METRIC_HISTOGRAM ? " histogram\n"
                                                   : " counter\n");
}

/* name_suffix{labels[,le="bound"]} value */
static void render_line(pc_buf *b, const series *s, const char *suffix, const char *le,
                        const char *value)
{
    pc_buf_str(b, s->key);
    pc_buf_str(b, suffix);
    if (s->labels[0] || le) {
        pc_buf_add(b, "{", 1);
        pc_buf_str(b, s->labels);
        if (le) {
            pc_buf_str(b, s->labels[0] ? ",le=\"" : "le=\"");
            pc_buf_str(b, le);
            pc_buf_add(b, "\"", 1);
        }
        pc_buf_add(b, "}", 1);
    }
    pc_buf_add(b, " ", 1);
    pc_buf_str(b, value);
    pc_buf_add(b, "\n", 1);
}

static void render_histogram(pc_buf *b, const series *s)
{
    char num[32], le[32];
    uint64_t cum = 0, sum = atomic_load_explicit(&s->h->sum_micro, memory_order_relaxed);

    for (size_t i = 0; i <= s->h->n; i++) {
        cum += atomic_load_explicit(&s->h->buckets[i], memory_order_relaxed);
        if (i < s->h->n)
            snprintf(le, sizeof(le), "%g", s->h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        snprintf(num, sizeof(num), "%" PRIu64, cum);
        render_line(b, s, "_bucket", le, num);
    }
    snprintf(num, sizeof(num), "%" PRIu64 ".%06" PRIu64, sum / 1000000, sum % 1000000);
    render_line(b, s, "_sum", NULL, num);
    snprintf(num, sizeof(num), "%" PRIu64, cum); /* _count agrees with +Inf */
    render_line(b, s, "_count", NULL, num);
}

static void render_series(pc_buf *b, const series *s, const decl *d)
{
    char num[32];
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    bool is_signed = d ? d->type == PC_METRIC_GAUGE : s->kind == PC_METRIC_GAUGE;

    if (s->h) {
        render_histogram(b, s);
        return;
    }

    pc_buf_str(b, s->key);
    if (s->labels[0]) {
        pc_buf_add(b, "{", 1);
        pc_buf_str(b, s->labels);
        pc_buf_add(b, "}", 1);
    }
    if (is_signed)
        snprintf(num, sizeof(num), " %" PRId64 "\n", (int64_t)v);
    else
        snprintf(num, sizeof(num), " %" PRIu64 "\n", v);
    pc_buf_str(b, num);
}

char *pc_metrics_render(void)
{
    pc_buf b = {0};
    series **all = NULL;
    size_t n = 0;
    const decl *d = NULL;

    pthread_mutex_lock(&lock);
    ensure_dropped();
    all = malloc((n_series + 1) * sizeof(*all));
    if (!all) {
        b.nomem = true;
        goto done;
    }
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        series *s = atomic_load_explicit(&table[i], memory_order_relaxed);
        if (s)
            all[n++] = s;
    }
    qsort(all, n, sizeof(*all), series_cmp);
    pc_buf_add(&b, "", 0); /* an empty registry still renders as "" */
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(all[i]->key, all[i - 1]->key) != 0) {
            d = decl_find(all[i]->key);
            render_family_header(&b, all[i], d);
        }
        render_series(&b, all[i], d);
    }
done:
    pthread_mutex_unlock(&lock);
    free(all);
    return pc_buf_take(&b);
}

/* ---- escaping ---- */

/* Truncation never splits an escape sequence or a UTF-8 character; the
 * result is always terminated (when size > 0). A NULL value renders "". */
char *pc_metrics_escape(const char *value, char *buf, size_t size)
{
    size_t o = 0;
    bool truncated = false;

    if (size == 0)
        return buf;
    for (const char *p = value ? value : ""; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        size_t need = esc ? 2 : 1;
        if (o + need > size - 1) {
            truncated = true;
            break;
        }
        if (esc) {
            buf[o++] = esc[0];
            buf[o++] = esc[1];
        } else {
            buf[o++] = *p;
        }
    }
    if (truncated) {
        /* Drop a trailing incomplete UTF-8 sequence. */
        size_t i = o;
        while (i > 0 && ((unsigned char)buf[i - 1] & 0xc0) == 0x80)
            i--;
        if (i > 0 && ((unsigned char)buf[i - 1] & 0xc0) == 0xc0) {
            unsigned char lead = (unsigned char)buf[i - 1];
            size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
            if (o - (i - 1) < want)
                o = i - 1;
        }
    }
    buf[o] = '\0';
    return buf;
}
