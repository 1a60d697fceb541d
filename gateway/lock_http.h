/*
 * lock_http.h — etcd 3.4's v3lock and v3election gateways (the services
 * etcd's client port serves next to the KV gateway), as etcd 3.4.23
 * answers them, under /v3 and /v3beta (etcd serves neither under /v3alpha):
 *
 *   POST .../lock/lock          {name, lease} -> {header, key}
 *   POST .../lock/unlock        {key} -> {header}
 *   POST .../election/campaign  {name, lease, value} -> {header, leader:{name,key,rev,lease}}
 *   POST .../election/proclaim  {leader, value} -> {header}
 *   POST .../election/leader    {name} -> {header, kv}
 *   POST .../election/observe   {name} -> a stream of {"result":{header, kv}} lines
 *   POST .../election/resign    {leader} -> {header}
 *
 * The recipes are clientv3/concurrency's (mutex.go, election.go, key.go of
 * etcd 3.4): the key is name + "/" + the lease ID in lower-case hex; lease
 * 0 is a new 60 s lease (concurrency.NewSession), never kept alive (the
 * servers orphan their sessions); waiting for the keys created before
 * one's own is etcd's waitDeletes (a read of the newest older key, a watch
 * for its DELETE, again).  A waiting lock or campaign suspends its
 * connection; it is resumed from the watch layer's callback, never polled.
 * A client that leaves while waiting is noticed (its socket is peeked
 * every 100 ms) and its key deleted, as etcd's canceled context does.
 *
 * Errors as etcd's (the v3lock/v3election servers call etcd through a
 * client, so every store error reaches the gateway as gRPC code 2, HTTP
 * 500, with etcd's message); body decoding errors as every unary call (400
 * code 3).
 */
#ifndef KVGATE_LOCK_HTTP_H
#define KVGATE_LOCK_HTTP_H

#include <stddef.h>

#include "etcd_json.h"
#include "http.h"
#include "kv.h"
#include "watch.h"

typedef struct lock_http lock_http;

/* header: borrowed, must outlive it.  NULL on ENOMEM or thread failure. */
lock_http *lock_http_new(kvstore *store, watchable *ws, const ej_header *header,
                         size_t max_request_bytes);
/* Registers the lock and election routes and a shutdown hook (waiting
 * requests are canceled, their keys deleted; observe streams end).  0 or -1. */
int lock_http_register(gw_server *s, lock_http *lh);
/* After gw_server_stop, before watchable_close.  NULL ok. */
void lock_http_free(lock_http *lh);

/* ---- shared by lock_http.c and election_http.c (internal) ---- */

typedef struct lk_op lk_op;
typedef void (*lk_step_fn)(lk_op *op);

/* One lock/election request in progress; it is the request's gw_req_user
 * and lives until the request ends. */
struct lk_op {
    lock_http *lh;
    gw_req *r;
    lk_step_fn next;       /* run by the continuation after a resume */
    lk_step_fn then;       /* after lk_session's grant */
    kv_response *resp;     /* the store's answer to the last lk_submit */
    /* the request */
    kv_bytes name, value, key;
    int64_t lease, rev;
    /* the recipe */
    kv_bytes pfx;          /* name + "/" */
    int64_t my_rev;        /* create revision of op->key (lock: myRev, election: leaderRev) */
    int64_t hdr_rev;       /* the revision the answer's header carries */
    /* waitDeletes */
    int64_t max_create_rev;
    int64_t wait_rev;      /* the header of waitDeletes' last read */
    lk_step_fn wait_done;  /* then: wait_err NULL (done), or the error */
    const char *wait_err;
    bool wait_canceled;    /* the client left or the server stops */
    watch_stream *st;
    /* lh->mu */
    bool armed, pending, canceled, shutdown, registered;
    lk_op *next_op, *prev_op, *pnext;
};

/* A new op for r, set as its user data (freed when the request ends).
 * NULL after answering 500 (out of memory). */
lk_op *lk_op_new(lock_http *lh, gw_req *r);
/* Suspends r, submits req (stolen); op->next runs with op->resp. */
void lk_submit(lk_op *op, kv_request *req, lk_step_fn next);
/* The store's answer to the last lk_submit, taken from op; NULL after
 * answering its error (out of memory, or the store's). */
kv_response *lk_take_resp(lk_op *op);
/* etcd's waitDeletes(op->pfx, max_create_rev): then `done` runs (on an MHD
 * thread) with op->wait_rev = the header of the last read, or wait_err /
 * wait_canceled set.  Suspends r until then. */
void lk_wait_deletes(lk_op *op, int64_t max_create_rev, lk_step_fn done);
/* The client left or the server is stopping (read under the lock). */
bool lk_canceled(lk_op *op);

/* The answers. */
void lk_reply_err(lk_op *op, const char *msg);   /* 500, code 2, msg */
void lk_reply_kv_err(lk_op *op, kv_err e);       /* 500, code 2, etcd's text for e */
void lk_reply_canceled(lk_op *op);               /* the client is gone / server stops */
void lk_reply_header(lk_op *op, int64_t rev);    /* {"header":...} */
/* After a wait that failed and the cleanup write (unlock, resign) it
 * caused: answers the failure (canceled, or wait_err), whatever the cleanup
 * gave. */
void lk_reply_wait_failed(lk_op *op);
const ej_header *lk_header(lock_http *lh);
kvstore *lk_store(lock_http *lh);
watchable *lk_watchable(lock_http *lh);
size_t lk_max_request_bytes(lock_http *lh);

/* Decodes the body; on failure answers 400 code 3 and returns -1 (d done). */
int lk_decode(gw_req *r, ej_decoder *d);
/* name + "/" + lease in Go's %x (lower-case hex, "-" for negatives). */
int lk_session_key(const kv_bytes *pfx, int64_t lease, kv_bytes *out);
/* pfx = name + "/". */
int lk_prefix(const kv_bytes *name, kv_bytes *pfx);
/* A range of every key under pfx sorted by create revision (order), limit 1. */
int lk_first_create(const kv_bytes *pfx, int order, int64_t max_create_rev, kv_range_req *out);
/* Requests. */
kv_request *lk_grant_req(int64_t ttl);
/* A txn request with one compare CREATE(key) == rev; ops added by the caller. */
kv_request *lk_txn_req(const kv_bytes *key, int64_t create_rev);
/* Appends an op to a txn branch (kv_op copied shallowly: its bytes are stolen). */
int lk_txn_add(kv_op **ops, size_t *n, kv_op *op);
int lk_put_op(kv_op *op, const kv_bytes *key, const kv_bytes *value, int64_t lease);
int lk_delete_op(kv_op *op, const kv_bytes *key);
int lk_range_key_op(kv_op *op, const kv_bytes *key);
/* The request is over --max-request-bytes (etcd: "request is too large"). */
bool lk_too_large(lock_http *lh, const kv_request *req);

/* Lease 0: grant a 60 s lease first (concurrency.NewSession); then `next`
 * runs with op->lease set, or the grant's error answered. */
void lk_session(lk_op *op, lk_step_fn next);
/* A lock or campaign request: decodes {name, lease[, value]} into a new
 * op (or answers the bad body), refuses a token as etcd does (auth is off),
 * then opens the session and continues with next. */
void lk_start_named(gw_req *r, lock_http *lh, bool with_value, lk_step_fn next);

/* ---- observe streams (election_http.c) ---- */
typedef struct lk_stream lk_stream;
/* A stream registered with lh: wake(arg) -> gw_stream_wake(r) from the
 * manager thread; peer checks; shutdown ends it (lk_stream_ending). */
lk_stream *lk_stream_new(lock_http *lh, gw_req *r);
void lk_stream_wake_cb(void *arg); /* a watch_wake_fn, arg = the lk_stream */
bool lk_stream_ending(lk_stream *s); /* shutdown or peer gone */
/* From on_close, after the stream's watch_stream_close. */
void lk_stream_free(lk_stream *s);

int election_http_register(gw_server *s, lock_http *lh);

#endif
