/*
 * api_routes.h — registering an etcd service's POST endpoints under the
 * API version prefixes the gateway serves them at.
 *
 * etcd 3.4's gateway serves the KV, lease, maintenance and cluster services
 * under /v3 and /v3beta (kvgate also under /v3alpha, etcd 3.3's prefix,
 * which etcd3gw uses by default), and v3lock / v3election under /v3 and
 * /v3beta only.
 */
#ifndef KVGATE_API_ROUTES_H
#define KVGATE_API_ROUTES_H

#include <stddef.h>

#include "http.h"

typedef struct gw_api_route {
    const char *suffix; /* e.g. "/kv/range" */
    gw_handler_fn fn;
} gw_api_route;

typedef enum gw_api_versions {
    GW_API_ALL,     /* /v3, /v3beta, /v3alpha */
    GW_API_V3_BETA, /* /v3, /v3beta */
} gw_api_versions;

/* POST <prefix><suffix> -> fn(ctx) for every prefix and endpoint; 0 or -1. */
int gw_route_api(gw_server *s, gw_api_versions v, const gw_api_route *eps, size_t n, void *ctx);

#endif
