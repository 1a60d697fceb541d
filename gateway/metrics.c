/*
 * metrics.c — see metrics.h.  Output follows the Prometheus text format
 * 0.0.4: one HELP and TYPE line per family before its samples, label values
 * escaped, histogram buckets cumulative and ending in le="+Inf" equal to
 * _count.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RELAXED memory_order_relaxed

/* 100 us .. 10 s: loopback reads answer in tens of microseconds, a synced
 * write waits for an fsync (a millisecond on SSDs, tens on disks), and
 * anything past seconds is a stall worth seeing as such. */
const uint64_t metrics_latency_bounds_us[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
const size_t metrics_latency_nbounds = sizeof metrics_latency_bounds_us / sizeof(uint64_t);

void metrics_hist_init(metrics_hist *h, const uint64_t *bounds, size_t n)
{
    if (n > METRICS_HIST_MAX)
        n = METRICS_HIST_MAX;
    h->bounds = bounds;
    h->n = n;
    for (size_t i = 0; i <= METRICS_HIST_MAX; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum, 0);
}

void metrics_hist_observe(metrics_hist *h, uint64_t v)
{
    /* linear: 16 bounds, and most requests land in the first few */
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, RELAXED);
    atomic_fetch_add_explicit(&h->sum, v, RELAXED);
}

static int ep_init(metrics_endpoint *e, const char *path)
{
    e->path = strdup(path);
    if (!e->path)
        return -1;
    for (size_t i = 0; i < METRICS_STATUS_SLOTS; i++)
        atomic_init(&e->status[i], 0);
    metrics_hist_init(&e->latency, metrics_latency_bounds_us, metrics_latency_nbounds);
    return 0;
}

metrics_requests *metrics_requests_new(void)
{
    metrics_requests *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (metrics_requests_endpoint(m, "other") != METRICS_EP_OTHER) {
        metrics_requests_free(m);
        return NULL;
    }
    return m;
}

void metrics_requests_free(metrics_requests *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->ep[i].path);
    free(m->ep);
    free(m);
}

size_t metrics_requests_endpoint(metrics_requests *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->ep[i].path, path) == 0)
            return i;
    if (m->n == m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 16;
        metrics_endpoint *ne = realloc(m->ep, nc * sizeof *ne);
        if (!ne)
            return (size_t)-1;
        m->ep = ne;
        m->cap = nc;
    }
    if (ep_init(&m->ep[m->n], path) != 0)
        return (size_t)-1;
    return m->n++;
}

void metrics_request_observe(metrics_requests *m, size_t ep, int status, uint64_t latency_us)
{
    if (ep >= m->n || status < METRICS_STATUS_MIN ||
        status >= METRICS_STATUS_MIN + METRICS_STATUS_SLOTS)
        return;
    metrics_endpoint *e = &m->ep[ep];
    atomic_fetch_add_explicit(&e->status[status - METRICS_STATUS_MIN], 1, RELAXED);
    if (latency_us != UINT64_MAX)
        metrics_hist_observe(&e->latency, latency_us);
}

/* ---- text ---- */

void metrics_put_family(gwbuf *b, const char *name, const char *type, const char *help)
{
    buf_puts(b, "# HELP ");
    buf_puts(b, name);
    buf_putc(b, ' ');
    /* HELP text escapes only backslash and newline */
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            buf_puts(b, "\\\\");
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *p);
    }
    buf_puts(b, "\n# TYPE ");
    buf_puts(b, name);
    buf_putc(b, ' ');
    buf_puts(b, type);
    buf_putc(b, '\n');
}

void metrics_put_label_value(gwbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '"')
            buf_puts(b, "\\\"");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *s);
    }
}

static void put_name_labels(gwbuf *b, const char *name, const char *labels)
{
    buf_puts(b, name);
    if (labels && *labels) {
        buf_putc(b, '{');
        buf_puts(b, labels);
        buf_putc(b, '}');
    }
    buf_putc(b, ' ');
}

void metrics_put_u64(gwbuf *b, const char *name, const char *labels, uint64_t v)
{
    put_name_labels(b, name, labels);
    buf_put_u64(b, v);
    buf_putc(b, '\n');
}

void metrics_put_i64(gwbuf *b, const char *name, const char *labels, int64_t v)
{
    put_name_labels(b, name, labels);
    buf_put_i64(b, v);
    buf_putc(b, '\n');
}

/* A float in the shortest form that reads back the same (Go's
 * strconv.FormatFloat(f, 'g', -1) as Prometheus clients print). */
static void put_float(gwbuf *b, double v)
{
    char tmp[40];
    if (v == (double)(int64_t)v && v > -1e15 && v < 1e15) {
        /* whole numbers without an exponent: le="10", not "1e+01" */
        buf_put_i64(b, (int64_t)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    buf_puts(b, tmp);
}

void metrics_put_hist(gwbuf *b, const char *name, const char *labels, const metrics_hist *h,
                      double scale)
{
    /* one relaxed load per bucket; the count is their sum, so +Inf and
     * _count always agree within one scrape */
    uint64_t cum = 0;
    size_t nl = strlen(name);
    char *bn = malloc(nl + 8);
    if (!bn) {
        b->failed = true;
        return;
    }
    memcpy(bn, name, nl);
    for (size_t i = 0; i <= h->n; i++) {
        cum += atomic_load_explicit(&h->counts[i], RELAXED);
        memcpy(bn + nl, "_bucket", 8);
        buf_puts(b, bn);
        buf_putc(b, '{');
        if (labels && *labels) {
            buf_puts(b, labels);
            buf_putc(b, ',');
        }
        buf_puts(b, "le=\"");
        if (i < h->n)
            put_float(b, (double)h->bounds[i] / scale);
        else
            buf_puts(b, "+Inf");
        buf_puts(b, "\"} ");
        buf_put_u64(b, cum);
        buf_putc(b, '\n');
    }
    memcpy(bn + nl, "_sum", 5);
    put_name_labels(b, bn, labels);
    put_float(b, (double)atomic_load_explicit(&h->sum, RELAXED) / scale);
    buf_putc(b, '\n');
    memcpy(bn + nl, "_count", 7);
    metrics_put_u64(b, bn, labels, cum);
    free(bn);
}

void metrics_put_requests(gwbuf *b, const metrics_requests *m)
{
    gwbuf lb = GWBUF_INIT;
    metrics_put_family(b, "kvgate_http_requests_total", "counter",
                       "HTTP requests answered, by endpoint (route path; \"other\": no route) and status code.");
    for (size_t i = 0; i < m->n; i++) {
        const metrics_endpoint *e = &m->ep[i];
        for (size_t s = 0; s < METRICS_STATUS_SLOTS; s++) {
            uint64_t v = atomic_load_explicit(&e->status[s], RELAXED);
            if (!v)
                continue;
            lb.len = 0;
            buf_puts(&lb, "endpoint=\"");
            metrics_put_label_value(&lb, e->path);
            buf_puts(&lb, "\",code=\"");
            buf_put_u64(&lb, (uint64_t)(s + METRICS_STATUS_MIN));
            buf_putc(&lb, '"');
            buf_putc(&lb, 0);
            if (lb.failed)
                break;
            metrics_put_u64(b, "kvgate_http_requests_total", lb.p, v);
        }
    }
    metrics_put_family(b, "kvgate_http_request_duration_seconds", "histogram",
                       "Time from the request's arrival until its answer was sent, by endpoint (watch streams excluded).");
    for (size_t i = 0; i < m->n; i++) {
        const metrics_endpoint *e = &m->ep[i];
        /* an endpoint's series appear once it served a timed request:
         * 40 routes x 19 lines of zeros would be most of every scrape */
        uint64_t seen = 0;
        for (size_t k = 0; k <= e->latency.n; k++)
            seen += atomic_load_explicit(&e->latency.counts[k], RELAXED);
        if (!seen)
            continue;
        lb.len = 0;
        buf_puts(&lb, "endpoint=\"");
        metrics_put_label_value(&lb, e->path);
        buf_putc(&lb, '"');
        buf_putc(&lb, 0);
        if (lb.failed)
            break;
        metrics_put_hist(b, "kvgate_http_request_duration_seconds", lb.p, &e->latency, 1e6);
    }
    if (lb.failed)
        b->failed = true;
    buf_free(&lb);
}
