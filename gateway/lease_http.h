/*
 * lease_http.h — etcd's Lease service over HTTP/JSON, as etcd 3.4.23's
 * gateway serves it, under /v3, /v3beta and /v3alpha (the KV endpoints'
 * prefixes; etcd3gw's default is /v3alpha):
 *
 *   POST .../lease/grant                  {"TTL","ID"} -> {"header","ID","TTL"}
 *   POST .../lease/revoke, .../kv/lease/revoke          {"ID"} -> {"header"}
 *   POST .../lease/keepalive              one or more {"ID"} objects ->
 *        200 application/json, chunked, one {"result":{"header","ID","TTL"}}
 *        line per object; an unknown lease gets its ID and no TTL.  A first
 *        object that does not decode: 500 {"error",...,"code":2}; a later
 *        one ends the stream.  An empty body: an empty 200 stream.
 *   POST .../lease/timetolive, .../kv/lease/timetolive  {"ID","keys"} ->
 *        {"header","ID","TTL","grantedTTL","keys"}; unknown: "TTL":"-1"
 *   POST .../lease/leases, .../kv/lease/leases  -> {"header","leases":[{"ID"}]}
 *
 * Errors as etcd: duplicate ID 412 code 9 "etcdserver: lease already exists";
 * TTL > 9000000000 400 code 11 "etcdserver: too large lease TTL"; revoke of
 * an unknown lease 404 code 5 "etcdserver: requested lease not found".
 */
#ifndef KVGATE_LEASE_HTTP_H
#define KVGATE_LEASE_HTTP_H

#include "etcd_json.h"
#include "http.h"
#include "kv.h"

typedef struct lease_http {
    kvstore *store;          /* borrowed */
    const ej_header *header; /* borrowed */
} lease_http;

/* Registers the routes; `lh` must outlive the server.  0 or -1. */
int lease_http_register(gw_server *s, lease_http *lh);

#endif
