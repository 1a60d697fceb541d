/*
 * metrics.h — kvgate's metrics registry and the Prometheus text exposition
 * format (version 0.0.4) it is rendered in, for GET /metrics
 * (metrics_http.c gathers the values; this file only counts and formats).
 *
 * Cost model: the request path pays a few relaxed atomic adds and nothing
 * else: no locks, no allocation.  Counters are per endpoint (route path),
 * fixed when the server starts; a status code is a slot in a per-endpoint
 * array, so recording a request is three atomic adds (status slot,
 * histogram bucket, histogram sum).  Counters shared by the MHD threads
 * may bounce a cache line between cores under load; the figure is a few
 * nanoseconds, far below one request's cost.
 *
 * Histograms keep per-bucket (non-cumulative) counts and an integer sum in
 * a unit (microseconds for latency); rendering turns them into Prometheus's
 * cumulative `_bucket{le=...}`, `_sum` (scaled to the base unit) and
 * `_count`.  A scrape reads each counter once with relaxed loads: a scrape
 * racing with requests may show a `_count` one or two requests apart from
 * the buckets' sum, never a decreasing counter.
 *
 * Pure: rendering writes into a gwbuf; no sockets, no globals.
 */
#ifndef KVGATE_METRICS_H
#define KVGATE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define METRICS_HIST_MAX 20

/* A histogram over integer observations in some unit.  bounds: ascending
 * upper bounds (le), n of them; counts[n] is the +Inf bucket. */
typedef struct metrics_hist {
    const uint64_t *bounds; /* borrowed, static */
    size_t n;
    _Atomic uint64_t counts[METRICS_HIST_MAX + 1];
    _Atomic uint64_t sum;
} metrics_hist;

void metrics_hist_init(metrics_hist *h, const uint64_t *bounds, size_t n); /* n <= METRICS_HIST_MAX */
void metrics_hist_observe(metrics_hist *h, uint64_t v);

/* Request latency buckets, microseconds (100 us .. 10 s). */
extern const uint64_t metrics_latency_bounds_us[];
extern const size_t metrics_latency_nbounds;

/* ---- requests by endpoint ---- */
#define METRICS_STATUS_MIN 100
#define METRICS_STATUS_SLOTS 500 /* 100..599 */

typedef struct metrics_endpoint {
    char *path;                                      /* the label; owned */
    _Atomic uint64_t status[METRICS_STATUS_SLOTS];   /* by status - 100 */
    metrics_hist latency;                            /* microseconds */
} metrics_endpoint;

/* Endpoints are added before the server starts, then fixed.  The first,
 * "other", takes requests that matched no route (404, 405, preflight). */
typedef struct metrics_requests {
    metrics_endpoint *ep;
    size_t n, cap;
} metrics_requests;

#define METRICS_EP_OTHER 0

/* New registry holding only "other"; NULL on ENOMEM.  Free with
 * metrics_requests_free (NULL ok). */
metrics_requests *metrics_requests_new(void);
void metrics_requests_free(metrics_requests *m);
/* The index for `path`, added if new (routes sharing a path share it);
 * (size_t)-1 on ENOMEM.  Not thread-safe: before the server starts. */
size_t metrics_requests_endpoint(metrics_requests *m, const char *path);
/* Any thread.  status outside 100..599 is not counted (a client gone
 * before any answer); latency_us == UINT64_MAX: count the status only
 * (streams, whose lifetime is not a latency). */
void metrics_request_observe(metrics_requests *m, size_t ep, int status, uint64_t latency_us);

/* ---- text exposition ---- */

/* "# HELP name help\n# TYPE name type\n" (help escaped as the format says). */
void metrics_put_family(gwbuf *b, const char *name, const char *type, const char *help);
/* `name{labels} value\n`; labels: NULL or an already-rendered
 * `k="v",k2="v2"` list (use metrics_put_label_value for the values). */
void metrics_put_u64(gwbuf *b, const char *name, const char *labels, uint64_t v);
void metrics_put_i64(gwbuf *b, const char *name, const char *labels, int64_t v);
/* A label value with \\, \" and \n escaped, no quotes. */
void metrics_put_label_value(gwbuf *b, const char *s);
/* A histogram's samples (no family header): `name_bucket{labels,le=..}`,
 * `name_sum{labels}`, `name_count{labels}`; bounds and the sum are divided
 * by `scale` (1e6 turns microseconds into seconds; 1 leaves them). */
void metrics_put_hist(gwbuf *b, const char *name, const char *labels, const metrics_hist *h,
                      double scale);
/* The request families: kvgate_http_requests_total{endpoint,code} and
 * kvgate_http_request_duration_seconds{endpoint}. */
void metrics_put_requests(gwbuf *b, const metrics_requests *m);

#endif
