/*
 * http.h — kvgate's HTTP core: a libmicrohttpd daemon, a route table and a
 * small reply API that endpoint files (kv_http.c, status_http.c, and later
 * watch, lease, maintenance, cluster) build on without touching the core.
 *
 * Model
 *   - Endpoints register {method, exact path, handler, ctx} before start.
 *     Unknown path: 404 as etcd's gateway ("Not Found\n" under /v3*, Go's
 *     "404 page not found\n" elsewhere).  Known path, other method: 405 with
 *     a JSON error and an Allow header.  OPTIONS: CORS preflight.
 *   - The core reads the whole body (capped; 413 beyond the cap) and calls
 *     the handler once, on an MHD worker thread.  Handlers never block.
 *   - A handler answers in one of three ways:
 *       1. now:    gw_reply*(r, ...) and return;
 *       2. later:  gw_req_suspend(r, cont) and return; some other thread
 *                  finishes the work, then calls gw_req_resume(r); `cont`
 *                  then runs on an MHD thread and answers (or suspends
 *                  again).  E.g. writes: suspend, kvstore_submit(); the
 *                  store's completion callback stashes its result with
 *                  gw_req_set_user() and calls gw_req_resume().
 *       3. stream: gw_reply_stream(r, ...) with a reader; see below.
 *     A reply recorded from another thread is fine as long as
 *     gw_req_resume() follows it (the resume publishes it).
 *   - Streams (for POST /v3/watch, GET /v3/watch as SSE): chunked response
 *     of unknown length.  The core calls `read` on an MHD thread whenever the
 *     socket can take data.  `read` returns bytes written (> 0), 0 when it has
 *     nothing now (the core suspends the connection until gw_stream_wake()),
 *     GW_STREAM_END to finish, GW_STREAM_ERROR to abort the connection.
 *     gw_stream_wake() may be called from any thread, any number of times,
 *     also before the reader returned 0 (no wake-up is lost).  `on_close`
 *     runs exactly once when the connection is done with the stream (client
 *     gone, END, error or shutdown); after it returns, the stream owner must
 *     not call gw_stream_wake() again (guard with the owner's own lock).
 *     Idle streams are never timed out by the core: send heartbeats (wake
 *     periodically) so dead peers surface as write errors.
 *     Note: libmicrohttpd 0.9.75 sends the response only after the whole
 *     request body was received, so a POST stream's requests are those in
 *     its body.
 *   - Shutdown: gw_server_stop() stops accepting, calls the registered
 *     shutdown hooks (stream owners end their streams and wake them), waits
 *     for every request in flight (suspended or streaming), then stops.
 *
 * Threads: handlers, continuations and stream readers run on MHD worker
 * threads (MHD_OPTION_THREAD_POOL_SIZE of them); one request is never run
 * on two threads at once.
 *
 * Ownership: gw_req belongs to the core; it stays valid from the handler
 * call until the reply is sent (across suspensions) or, for streams, until
 * on_close returns.  Reply bodies passed as gwbuf or malloc'd pointers are
 * stolen (freed by the core, also on failure).
 */
#ifndef KVGATE_HTTP_H
#define KVGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "kv.h"

typedef struct gw_server gw_server;
typedef struct gw_req gw_req;

#define GW_DEFAULT_CONN_MEMORY ((size_t)12 * 1024)

typedef void (*gw_handler_fn)(gw_req *r, void *ctx);

typedef struct gw_config {
    const char *listen;        /* "HOST:PORT"; port 0 picks a free one */
    const char *cors_origins;  /* comma-separated; "*" = any; NULL = none */
    size_t max_body_bytes;     /* HTTP request body cap (413 beyond) */
    unsigned max_connections;
    unsigned threads;          /* 0 = number of cores */
    unsigned conn_timeout_s;   /* idle timeout of ordinary connections */
    unsigned stream_timeout_s; /* a stream whose reader accepts nothing for this long is closed (0: never) */
    /* libmicrohttpd's per-connection memory pool (request line + headers,
     * read buffer, send buffer).  It is the main per-stream memory cost of
     * an idle watch stream, so it is small; request headers beyond what it
     * holds are refused by libmicrohttpd (431).  0: GW_DEFAULT_CONN_MEMORY. */
    size_t conn_memory;
    /* Deepest nesting of arrays/objects accepted in a request body; deeper
     * bodies get 400 (code 3) before any parser runs (0: no check of our
     * own; Go's scanner still stops at 10000, jansson at 2048). */
    unsigned max_json_depth;
} gw_config;

/* Creates the server and binds the listening socket (so a busy port fails
 * here, with "listen HOST:PORT: address already in use").  NULL and a new
 * malloc'd *errmsg on failure. */
gw_server *gw_server_new(const gw_config *cfg, char **errmsg);

/* Registers a route; method "GET"/"POST"/...; path exact (no query).
 * Only before gw_server_start.  0 or -1 (ENOMEM). */
int gw_server_route(gw_server *s, const char *method, const char *path,
                    gw_handler_fn fn, void *ctx);

/* Called by gw_server_stop() after accept stops, before waiting for
 * requests in flight.  Only before gw_server_start. */
int gw_server_on_shutdown(gw_server *s, void (*fn)(void *arg), void *arg);

int gw_server_start(gw_server *s, char **errmsg);
uint16_t gw_server_port(const gw_server *s); /* the bound port */
/* Stop accepting, run hooks, wait (up to grace_ms) for requests in flight,
 * stop the daemon. */
void gw_server_stop(gw_server *s, unsigned grace_ms);
void gw_server_free(gw_server *s); /* NULL ok; stops first if needed */

/* ---- operations (GET /metrics) ---- */
struct metrics_requests;
/* Requests by endpoint and status, with latency (metrics.h); borrowed, NULL
 * before start.  Counted when a request completes, lock-free. */
const struct metrics_requests *gw_server_metrics(const gw_server *s);
unsigned gw_server_connections(gw_server *s); /* open client connections */
long gw_server_in_flight(gw_server *s);       /* requests not yet completed, streams included */

/* ---- the request (borrowed strings, valid while r is) ---- */
const char *gw_req_method(const gw_req *r);
const char *gw_req_path(const gw_req *r);
const char *gw_req_body(const gw_req *r, size_t *len);
const char *gw_req_header(gw_req *r, const char *name);   /* NULL if absent */
const char *gw_req_query(gw_req *r, const char *name);    /* NULL if absent */
/* Every query argument in order, percent-decoded, with its length (values
 * may hold NUL bytes, e.g. raw keys; value NULL for a bare "?name").  Stops
 * when fn returns non-zero and returns that value; else 0. */
typedef int (*gw_query_fn)(void *arg, const char *name, const char *value, size_t value_len);
int gw_req_query_each(gw_req *r, gw_query_fn fn, void *arg);
/* True when the client has closed or reset its side of the connection (a
 * non-blocking MSG_PEEK on the socket sees EOF or an error).  For idle
 * streams: libmicrohttpd 0.9.75 does not watch suspended connections.  Any
 * thread, until the stream's on_close returns. */
bool gw_req_peer_closed(gw_req *r);
/* One pointer of handler state, e.g. a store response.  If the request
 * ends while it is still set (the client left while the request slept),
 * the core calls free_fn(p) (when not NULL).  Set it to NULL to take it. */
void *gw_req_user(const gw_req *r);
void gw_req_set_user(gw_req *r, void *p, void (*free_fn)(void *p));

/* ---- replies (at most one per request) ---- */
/* Steals `body` (malloc'd, may be NULL with len 0). */
void gw_reply(gw_req *r, int status, const char *content_type, char *body, size_t len);
/* application/json; steals the buffer (an allocation failure in it becomes
 * a 500). */
void gw_reply_json(gw_req *r, int status, gwbuf *b);
/* {"error":msg,"message":msg,"code":grpc_code} */
void gw_reply_error(gw_req *r, int http_status, int grpc_code, const char *msg);
void gw_reply_kv_error(gw_req *r, kv_err e);
/* An extra header on the reply (copied); before or after gw_reply*.  Up to
 * 8 per request; more are dropped. */
void gw_reply_add_header(gw_req *r, const char *name, const char *value);

/* ---- answering later ---- */
void gw_req_suspend(gw_req *r, gw_handler_fn cont); /* from a handler or continuation */
void gw_req_resume(gw_req *r);                      /* any thread, once per suspend */

/* ---- streams ---- */
#define GW_STREAM_END ((ssize_t)-1)
#define GW_STREAM_ERROR ((ssize_t)-2)
typedef ssize_t (*gw_stream_read_fn)(void *sctx, char *buf, size_t max);
void gw_reply_stream(gw_req *r, int status, const char *content_type,
                     gw_stream_read_fn read, void *sctx, void (*on_close)(void *sctx));
void gw_stream_wake(gw_req *r); /* any thread */
/* The same, except that while the stream is idle in libmicrohttpd
 * (suspended after its reader returned 0) the reader runs on the calling
 * thread and its output goes straight to the socket (http.c, "direct
 * writes": one send per wake-up instead of a resume, a worker wake-up and
 * a suspend).  So the caller must not hold any lock the reader takes.  The
 * reader still never runs on two threads at once. */
void gw_stream_wake_direct(gw_req *r);

/* A reference that keeps r's memory valid (not its stream): e.g. to call
 * gw_stream_wake_direct outside the owner's lock.  A wake-up of a request
 * whose stream has closed (on_close ran) does nothing then. */
void gw_req_ref(gw_req *r);
void gw_req_unref(gw_req *r);

#endif
