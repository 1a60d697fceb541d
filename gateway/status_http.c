/*
 * status_http.c — etcd's /version and /health (see status_http.h).  kvgate
 * reports the etcd version whose API it reproduces, so clients that check it
 * (etcdctl, dashboards) treat kvgate as that etcd.
 */
#include "status_http.h"

#include <stdlib.h>
#include <string.h>

static void reply_const(gw_req *r, const char *ctype, const char *text)
{
    char *p = strdup(text);
    gw_reply(r, 200, ctype, p, p ? strlen(text) : 0);
}

static void h_version(gw_req *r, void *ctx)
{
    (void)ctx;
    reply_const(r, "application/json", "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
}

static void h_health(gw_req *r, void *ctx)
{
    kvstore *store = ctx;
    /* The store answers reads while it is open; a closed store would not be
     * reachable here (the server stops first). */
    if (kvstore_rev(store) > 0)
        reply_const(r, "text/plain; charset=utf-8", "{\"health\":\"true\"}");
    else
        gw_reply(r, 503, "text/plain; charset=utf-8", strdup("{\"health\":\"false\"}"), 18);
}

int status_http_register(gw_server *s, kvstore *store)
{
    if (gw_server_route(s, "GET", "/version", h_version, NULL) != 0 ||
        gw_server_route(s, "GET", "/health", h_health, store) != 0)
        return -1;
    return 0;
}
