/*
 * status_http.h — GET /version and GET /health, shaped as etcd 3.4.23's:
 *   /version  200 application/json   {"etcdserver":"3.4.23","etcdcluster":"3.4.0"}
 *   /health   200 text/plain; charset=utf-8   {"health":"true"}
 * Other methods on them: 405 with "Allow: GET".
 */
#ifndef KVGATE_STATUS_HTTP_H
#define KVGATE_STATUS_HTTP_H

#include "http.h"
#include "kv.h"

/* `store` (borrowed) answers the health check. 0 or -1. */
int status_http_register(gw_server *s, kvstore *store);

#endif
