/*
 * metrics_http.h — GET /metrics: kvgate's counters and gauges in the
 * Prometheus text exposition format 0.0.4 (metrics.h renders; this file
 * gathers).  The metric names are listed in README.md ("Metrics").
 *
 * A scrape reads atomics and takes the watchable store's and the lessor's
 * locks once each (watchable_get_stats, lease count); nothing is computed
 * per request on the request path.
 */
#ifndef KVGATE_METRICS_HTTP_H
#define KVGATE_METRICS_HTTP_H

#include "http.h"
#include "kv.h"
#include "watch.h"
#include "watch_http.h"

typedef struct metrics_http {
    gw_server *srv;   /* borrowed: request counters, connections */
    kvstore *store;   /* borrowed */
    watchable *ws;    /* borrowed */
    watch_http *wh;   /* borrowed */
} metrics_http;

/* Registers GET /metrics; mh must outlive the server.  0 or -1 (ENOMEM). */
int metrics_http_register(gw_server *s, metrics_http *mh);

/* The whole exposition into b (tests call it without a server). */
void metrics_http_render(metrics_http *mh, gwbuf *b);

#endif
