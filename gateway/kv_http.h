/*
 * kv_http.h — the KV endpoints: POST {/v3,/v3beta,/v3alpha}/kv/{range,put,
 * deleterange,txn,compaction}.
 *
 * Reads call kvstore_range() on the MHD thread; every other request is
 * handed to kvstore_submit() and the connection sleeps until the store's
 * completion callback (committer thread) wakes it; the response is encoded
 * back on the MHD thread so the committer never spends time on JSON.
 */
#ifndef KVGATE_KV_HTTP_H
#define KVGATE_KV_HTTP_H

#include <stddef.h>

#include "etcd_json.h"
#include "http.h"
#include "kv.h"

typedef struct kv_http {
    kvstore *store;           /* borrowed */
    ej_header header;         /* cluster_id, member_id, raft_term */
    size_t max_request_bytes; /* etcd's --max-request-bytes */
    size_t max_txn_ops;       /* etcd's --max-txn-ops */
    size_t max_key_bytes;     /* --max-key-bytes: any key or range end (0: no cap) */
    size_t max_value_bytes;   /* --max-value-bytes: a put's value (0: no cap) */
} kv_http;

/* Registers the routes; `kh` must outlive the server.  0 or -1. */
int kv_http_register(gw_server *s, kv_http *kh);

#endif
