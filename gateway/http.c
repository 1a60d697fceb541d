/*
 * http.c — the libmicrohttpd daemon behind http.h: listening socket, route
 * table, body accumulation with a cap, CORS, suspend/resume for answers that
 * come from other threads, and chunked streams.
 *
 * Per-request state (gw_req) lives in MHD's *con_cls from the first
 * access-handler call to MHD's "completed" notification.  It is reference
 * counted: MHD's side holds one reference, a suspension holds one until
 * gw_req_resume() returns, a stream response holds one until its free
 * callback ran; the last unref frees it (gw_req_ref: other holders, e.g.
 * a wake-up batch).
 *
 * Locks: gw_req.lock guards suspended / wake_pending / closed, so that a
 * resume from another thread never races the suspend it undoes and never
 * touches a connection MHD has already closed; it also guards the direct
 * writes (see "direct writes": a suspended stream's socket is written
 * under it, and the reader then runs under it).  It is held across
 * MHD_suspend_connection / MHD_resume_connection (which take MHD's own
 * mutex inside): order gw_req.lock -> MHD internal, and gw_req.lock ->
 * gw_server.blk_mu (the list of streams waiting for their socket to
 * drain).  live_mu and conns_mu: see gw_server.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "gojson.h"
#include "log.h"
#include "metrics.h"

/* Tunables. */
/* Bodies up to this need no malloc.  Small: every connection carries it,
 * thousands of watch streams included (a watch body is ~50 bytes, a GET
 * none), and a bigger body costs one malloc, nothing per byte. */
static const size_t gw_inline_body = 256;
/* The block libmicrohttpd allocates (zeroed) with each streamed response.
 * Chunked (HTTP/1.1) streams never use it: 0.9.75 has the reader write
 * straight into the connection's write buffer, as much as fits there.
 * Only an HTTP/1.0 stream reads through it, at most this much per call.
 * So it is small: thousands of watch streams each carry one (2 KiB -> 256
 * bytes measured 1.8 KiB less RSS per stream, same CPU per event). */
static const size_t gw_stream_block = 256;
static const int gw_listen_backlog = 4096;
static size_t gw_page_size = 4096; /* MADV_DONTNEED granularity; sysconf at gw_server_new */
static const char gw_cors_methods[] = "GET, POST, OPTIONS";
static const char gw_cors_headers[] =
    "accept, content-type, authorization, cache-control, last-event-id";
static const char gw_cors_max_age[] = "600";
#define GW_MAX_EXTRA_HEADERS 8

typedef struct route {
    char *method, *path;
    size_t path_len;
    gw_handler_fn fn;
    void *ctx;
} route;

typedef struct hook {
    void (*fn)(void *);
    void *arg;
} hook;

/* A connection as the request deadline sees it (libmicrohttpd's socket
 * context); see "request deadline" below.  Fields under gw_server.conns_mu. */
typedef struct gw_conn {
    int fd;               /* -1 once shut down (or unknown) */
    uint64_t since_us;    /* when the request being received began */
    bool busy;            /* a handler has taken its request */
    bool over;            /* opened past max_connections: its requests get 503 */
    bool parsing;         /* request line seen, handler not called yet (see cl_refused) */
    struct gw_conn *prev, *next;
} gw_conn;

struct gw_server {
    gw_config cfg;
    char *host;              /* as given in --listen, for messages */
    int listen_fd;
    uint16_t port;
    struct MHD_Daemon *d;
    route *routes;
    size_t n_routes;
    hook *hooks;
    size_t n_hooks;
    char **origins;          /* allowed CORS origins */
    size_t n_origins;
    bool cors_any;
    atomic_long active;      /* requests between first call and completion */
    /* Every request between its first call and its completion, so that
     * gw_server_stop() can resume the suspended ones: libmicrohttpd aborts
     * the process if MHD_stop_daemon() finds a suspended connection.
     * Lock order: live_mu, then a request's lock. */
    pthread_mutex_t live_mu;
    gw_req *live;
    atomic_bool stopping;
    bool started, stopped;
    /* per-endpoint request counters (metrics.h), built at start from the
     * route table: route_ep[i] is route i's endpoint; read-only after */
    metrics_requests *metrics;
    size_t *route_ep;
    /* The request deadline: every open connection, and the thread that
     * shuts down those past it.  conns_mu guards conns, every gw_conn and
     * sweeper_stop; it is taken alone (never with live_mu or a request's
     * lock held). */
    pthread_mutex_t conns_mu;
    pthread_cond_t sweeper_cv;
    gw_conn *conns;      /* not busy: the sweeper's */
    gw_conn *busy_conns; /* a handler has their request (see conn_link) */
    unsigned n_conns;
    pthread_t sweeper;
    bool sweeper_on, sweeper_stop;
    /* Direct writes (see "direct writes" below): streams whose socket was
     * full, waiting for it to drain, and the thread that waits for them.
     * blk_mu guards the list and every gw_req.bnext/bprev; it is taken
     * inside a request's lock, never the other way round. */
    pthread_mutex_t blk_mu;
    gw_req *blocked;
    int blk_epfd, blk_evfd;
    pthread_t flusher;
    bool flusher_on;
    atomic_bool flusher_stop;
};

/* RS_DRAIN: an answer is ready (404, 405, preflight...) but the request
 * body is still coming; read and drop it, then answer, so the connection
 * stays usable (an answer queued before the body makes MHD close it). */
enum req_state { RS_BODY, RS_DRAIN, RS_RUNNING, RS_SUSPENDED, RS_DONE };

struct gw_req {
    gw_server *s;
    gw_req *live_prev, *live_next; /* gw_server.live, under live_mu */
    struct MHD_Connection *conn;
    const char *method, *path; /* MHD's, valid for the request */
    const route *rt;
    enum req_state state;
    uint64_t t0_us; /* arrival (CLOCK_MONOTONIC), for the latency histogram */
    atomic_int refs;

    const char *origin;
    bool cors_ok;

    /* body */
    char *body;
    size_t body_len, body_cap;
    bool too_big;

    /* reply */
    bool replied;
    int status;
    const char *ctype;
    char *rbody;
    size_t rlen;
    size_t n_extra;
    char *extra[GW_MAX_EXTRA_HEADERS][2];

    /* async */
    pthread_mutex_t lock;
    bool want_suspend, suspended, wake_pending, closed;
    bool stop_forced; /* resumed by gw_server_stop(): answer 503 */
    bool uncounted;   /* came in while stopping: not in gw_server.active */
    gw_handler_fn cont;
    void *user;
    void (*user_free)(void *);

    /* stream */
    gw_stream_read_fn rd;
    void *sctx;
    void (*on_close)(void *);
    bool streaming;
    /* the reader's buffer pages given back (see stream_release_pages) */
    char *rel_buf;
    size_t rel_max;
    bool rel_dirty;
    /* direct writes (under lock): the socket, the framing libmicrohttpd
     * uses for this stream, what a partial write left unsent */
    int fd;
    enum { DW_NONE = 0, DW_CHUNKED, DW_RAW } framing;
    char *dw;
    size_t dw_off, dw_len;
    bool dw_failed;           /* a direct write failed or stalled: abort */
    bool blocked;             /* on gw_server.blocked, fd in blk_epfd */
    uint64_t blocked_ms;      /* since when */
    gw_req *bnext, *bprev;    /* gw_server.blocked, under blk_mu */
    bool http10, http11;      /* the request's version */
    uint64_t deadline_us;     /* Grpc-Timeout (mono_us), 0: none */

    char inline_body[];
};

/* ------------------------------------------------------------------ */
/* request lifetime                                                    */

static gw_req *req_new(gw_server *s, struct MHD_Connection *c, const char *url, const char *method)
{
    gw_req *r = malloc(sizeof *r + gw_inline_body);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->s = s;
    r->conn = c;
    r->path = url;
    r->method = method;
    atomic_init(&r->refs, 1);
    r->fd = -1;
    r->body = r->inline_body;
    r->body_cap = gw_inline_body;
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void req_unref(gw_req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->user && r->user_free)
        r->user_free(r->user);
    if (r->body != r->inline_body)
        free(r->body);
    free(r->rbody);
    for (size_t i = 0; i < r->n_extra; i++) {
        free(r->extra[i][0]);
        free(r->extra[i][1]);
    }
    free(r->dw);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void gw_req_ref(gw_req *r) { atomic_fetch_add(&r->refs, 1); }
void gw_req_unref(gw_req *r) { req_unref(r); }

/* ------------------------------------------------------------------ */
/* accessors                                                           */

const char *gw_req_method(const gw_req *r) { return r->method; }
const char *gw_req_path(const gw_req *r) { return r->path; }
const char *gw_req_body(const gw_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}
const char *gw_req_header(gw_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const char *gw_req_query(gw_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct query_iter {
    gw_query_fn fn;
    void *arg;
    int rc;
} query_iter;

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    query_iter *it = cls;
    (void)kind;
    (void)key_size;
    it->rc = it->fn(it->arg, key, value, value ? value_size : 0);
    return it->rc ? MHD_NO : MHD_YES;
}

int gw_req_query_each(gw_req *r, gw_query_fn fn, void *arg)
{
    query_iter it = {fn, arg, 0};
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, query_cb, &it);
    return it.rc;
}

bool gw_req_peer_closed(gw_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return true;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}
void *gw_req_user(const gw_req *r) { return r->user; }
void gw_req_set_user(gw_req *r, void *p, void (*free_fn)(void *))
{
    r->user = p;
    r->user_free = free_fn;
}

/* ------------------------------------------------------------------ */
/* replies                                                             */

void gw_reply(gw_req *r, int status, const char *content_type, char *body, size_t len)
{
    if (r->replied || r->streaming) { /* one reply per request */
        free(body);
        return;
    }
    r->replied = true;
    if (!body)
        len = 0;
    r->status = status;
    r->ctype = content_type;
    r->rbody = body;
    r->rlen = len;
}

void gw_reply_error(gw_req *r, int http_status, int grpc_code, const char *msg)
{
    gwbuf b = GWBUF_INIT;
    gw_error_body(&b, grpc_code, msg, strlen(msg));
    gw_reply_json(r, http_status, &b);
}

void gw_reply_json(gw_req *r, int status, gwbuf *b)
{
    if (b->failed) {
        static const char oom[] =
            "{\"error\":\"etcdserver: out of memory\",\"message\":\"etcdserver: out of memory\",\"code\":13}";
        buf_free(b);
        char *p = strdup(oom);
        gw_reply(r, 500, "application/json", p, p ? sizeof oom - 1 : 0);
        return;
    }
    size_t len;
    char *p = buf_steal(b, &len);
    gw_reply(r, status, "application/json", p, len);
}

void gw_reply_kv_error(gw_req *r, kv_err e)
{
    gw_error ge = gw_error_from_kv(e);
    gw_reply_error(r, ge.http_status, ge.grpc_code, ge.message);
}

void gw_reply_add_header(gw_req *r, const char *name, const char *value)
{
    if (r->n_extra == GW_MAX_EXTRA_HEADERS)
        return;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    r->extra[r->n_extra][0] = n;
    r->extra[r->n_extra][1] = v;
    r->n_extra++;
}

static void add_common_headers(gw_req *r, struct MHD_Response *resp)
{
    if (r->cors_ok) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin",
                                r->s->cors_any ? "*" : r->origin);
        if (!r->s->cors_any)
            MHD_add_response_header(resp, "Vary", "Origin");
    }
    for (size_t i = 0; i < r->n_extra; i++)
        MHD_add_response_header(resp, r->extra[i][0], r->extra[i][1]);
    if (atomic_load_explicit(&r->s->stopping, memory_order_relaxed))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

static enum MHD_Result queue_reply(gw_req *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->rlen, r->rbody ? r->rbody : (void *)"",
                                        r->rbody ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->rbody = NULL; /* the response owns it now */
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    add_common_headers(r, resp);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->state = RS_DONE;
    return ok;
}

/* Plain-text answers shaped as Go's http.Error (etcd's 404s). */
static void reply_text(gw_req *r, int status, const char *text)
{
    char *p = strdup(text);
    gw_reply(r, status, "text/plain; charset=utf-8", p, p ? strlen(p) : 0);
    gw_reply_add_header(r, "X-Content-Type-Options", "nosniff");
}

/* ------------------------------------------------------------------ */
/* streams                                                             */

/* An idle stream's memory is mostly libmicrohttpd's connection pool
 * (--connection-memory): 0.9.75 hands the chunked reader the pool's whole
 * free space as its write buffer (~12 KiB of the 12 KiB pool), and about
 * 10 KiB of that pool is resident by then (request parsing touched it).  A
 * watch stream writes a few hundred bytes per event at the start of that
 * buffer, so the rest only costs RSS: when the stream goes idle its
 * page-aligned interior is given back to the kernel (MADV_DONTNEED: the
 * pages stay mapped and read as zeros when touched again).  The reader owns
 * buf..buf+max by libmicrohttpd's contract (and 0.9.75 calls it only once
 * everything before was sent), so nothing anyone needs is lost; the pool's
 * allocator metadata lies outside it.  Done once per stream and again only
 * after output reached past the first page (a big value) or libmicrohttpd
 * moved the buffer: no syscall per event.  Measured on the fan-out
 * benchmark: 12.6 -> ~6.8 KiB of RSS per idle watch stream, request
 * headers still up to the full pool. */
static void stream_note_buffer(gw_req *r, char *buf, size_t max, size_t used)
{
    if (buf != r->rel_buf || max != r->rel_max) {
        r->rel_buf = buf;
        r->rel_max = max;
        r->rel_dirty = true;
    } else if (used) {
        uintptr_t first = ((uintptr_t)buf + gw_page_size - 1) & ~(uintptr_t)(gw_page_size - 1);
        /* + 2: the chunk's trailing CRLF libmicrohttpd writes after it */
        if ((uintptr_t)buf + used + 2 > first)
            r->rel_dirty = true;
    }
}

static void stream_release_pages(gw_req *r)
{
    if (!r->rel_dirty)
        return;
    r->rel_dirty = false;
    uintptr_t a = ((uintptr_t)r->rel_buf + gw_page_size - 1) & ~(uintptr_t)(gw_page_size - 1);
    uintptr_t e = ((uintptr_t)r->rel_buf + r->rel_max) & ~(uintptr_t)(gw_page_size - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    gw_req *r = cls;
    (void)pos;
    /* a direct write failed, or left part of a chunk unsent (resumed by
     * gw_server_stop while blocked): the stream cannot go on */
    pthread_mutex_lock(&r->lock);
    bool abort_ = r->dw_failed || r->dw_len;
    pthread_mutex_unlock(&r->lock);
    if (abort_)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    ssize_t n = r->rd(r->sctx, buf, max);
    stream_note_buffer(r, buf, max, n > 0 ? (size_t)n : 0);
    if (n > 0)
        return n;
    if (n == 0)
        stream_release_pages(r);
    if (n == GW_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    /* Nothing to send: sleep until gw_stream_wake(), unless a wake-up
     * already came in since the reader looked. */
    pthread_mutex_lock(&r->lock);
    if (r->wake_pending) {
        r->wake_pending = false;
    } else if (!r->closed) {
        MHD_suspend_connection(r->conn);
        r->suspended = true;
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void stream_free(void *cls)
{
    gw_req *r = cls;
    if (r->on_close)
        r->on_close(r->sctx);
    req_unref(r);
}

void gw_reply_stream(gw_req *r, int status, const char *content_type, gw_stream_read_fn read,
                     void *sctx, void (*on_close)(void *sctx))
{
    if (r->replied || r->streaming) {
        if (on_close)
            on_close(sctx);
        return;
    }
    r->streaming = true;
    r->status = status;
    r->ctype = content_type;
    r->rd = read;
    r->sctx = sctx;
    r->on_close = on_close;
}

static enum MHD_Result queue_stream(gw_req *r)
{
    atomic_fetch_add(&r->refs, 1);
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, gw_stream_block, stream_reader, r, stream_free);
    if (!resp) {
        /* on_close still runs exactly once */
        stream_free(r);
        return MHD_NO;
    }
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    add_common_headers(r, resp);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->state = RS_DONE;
    /* libmicrohttpd 0.9.75 frames a stream of unknown length in chunks for
     * HTTP/1.1 (also with "Connection: close") and sends it raw, closing
     * at the end, for HTTP/1.0; direct writes frame theirs the same way. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&r->lock);
    if (ci && ok == MHD_YES && r->s->flusher_on && (r->http11 || r->http10)) {
        r->fd = ci->connect_fd;
        r->framing = r->http11 ? DW_CHUNKED : DW_RAW;
    }
    pthread_mutex_unlock(&r->lock);
    /* The idle timeout is for ordinary requests (slow-loris).  A stream is
     * suspended while it has nothing to send (no timeout then), but a
     * reader that stops reading leaves it blocked on a full socket, which
     * libmicrohttpd would count as idle: such a reader gets the longer
     * stream timeout, so it can catch up when it reads again. */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              r->s->cfg.stream_timeout_s);
    return ok;
}

static void direct_flush(gw_req *r);

void gw_stream_wake(gw_req *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->suspended && !r->blocked) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    } else if (r->blocked) {
        /* part of a direct write waits for the socket: the flusher goes on
         * (the reader runs again once it drained) */
    } else if (!r->closed) {
        r->wake_pending = true;
    }
    pthread_mutex_unlock(&r->lock);
}

void gw_stream_wake_direct(gw_req *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->suspended) {
        if (r->framing != DW_NONE && !atomic_load(&r->s->stopping)) {
            if (!r->blocked) /* blocked: the flusher goes on when it drains */
                direct_flush(r);
        } else {
            r->suspended = false;
            MHD_resume_connection(r->conn);
        }
    } else if (!r->closed) {
        r->wake_pending = true;
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- direct writes ----
 * A stream wakes up for every event, and on the fan-out benchmark nearly
 * every stream is idle between events.  Through libmicrohttpd that costs,
 * per event and stream, MHD_resume_connection (its mutex and one eventfd
 * write), a worker wake-up, the reader, the send and MHD_suspend_connection
 * again.  Instead, while a stream is suspended in libmicrohttpd (its
 * reader returned 0, so everything before was sent and libmicrohttpd has
 * nothing buffered), gw_stream_wake_direct runs the reader on the calling thread
 * and writes its output to the socket itself, framed as libmicrohttpd
 * frames that stream (chunks for HTTP/1.1, raw for HTTP/1.0): one sendmsg
 * per event and stream, and the connection stays suspended.  Only a
 * stream that ends (the reader returns END or ERROR) or a heavy one (more
 * than gw_direct_burst bytes in one go) is resumed, and libmicrohttpd's
 * reader path takes over until the stream is idle again.  A socket that
 * takes only part of a chunk keeps the rest here (it must go out before
 * anything else), is watched by the flusher thread (epoll, EPOLLOUT) and
 * aborted after --stream-stall-timeout seconds without draining.
 * Everything under the request's lock; the reader never runs on two
 * threads at once (libmicrohttpd calls it only while not suspended). */
static const size_t gw_direct_chunk = 16 * 1024; /* reader output per write */
static const size_t gw_direct_burst = 64 * 1024; /* then libmicrohttpd takes over */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void resume_locked(gw_req *r)
{
    r->suspended = false;
    MHD_resume_connection(r->conn);
}

/* Waits for the socket to drain (under r->lock). */
static void dw_block(gw_req *r)
{
    gw_server *s = r->s;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = r};
    if (s->blk_epfd < 0 || epoll_ctl(s->blk_epfd, EPOLL_CTL_ADD, r->fd, &ev) != 0) {
        /* nobody could wake it: give up on the stream */
        r->dw_failed = true;
        resume_locked(r);
        return;
    }
    r->blocked = true;
    r->blocked_ms = mono_ms();
    pthread_mutex_lock(&s->blk_mu);
    r->bprev = NULL;
    r->bnext = s->blocked;
    if (s->blocked)
        s->blocked->bprev = r;
    s->blocked = r;
    pthread_mutex_unlock(&s->blk_mu);
}

/* Under r->lock, while still suspended: the fd is still this stream's. */
static void dw_unblock(gw_req *r)
{
    gw_server *s = r->s;
    if (!r->blocked)
        return;
    r->blocked = false;
    (void)epoll_ctl(s->blk_epfd, EPOLL_CTL_DEL, r->fd, NULL);
    pthread_mutex_lock(&s->blk_mu);
    if (r->bprev)
        r->bprev->bnext = r->bnext;
    else
        s->blocked = r->bnext;
    if (r->bnext)
        r->bnext->bprev = r->bprev;
    r->bnext = r->bprev = NULL;
    pthread_mutex_unlock(&s->blk_mu);
}

/* Sends iov; keeps what the socket did not take in r->dw.  Returns 1 when
 * all went, 0 when some is left (blocked), -1 on a socket error. */
static int dw_send(gw_req *r, struct iovec *iov, int niov)
{
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    ssize_t k;
    do
        k = sendmsg(r->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (k < 0 && errno == EINTR);
    if (k < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        k = 0;
    }
    if ((size_t)k == total)
        return 1;
    size_t rest = total - (size_t)k;
    char *p = malloc(rest);
    if (!p)
        return -1;
    size_t o = 0, skip = (size_t)k;
    for (int i = 0; i < niov; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(p + o, (char *)iov[i].iov_base + skip, l - skip);
        o += l - skip;
        skip = 0;
    }
    free(r->dw);
    r->dw = p;
    r->dw_off = 0;
    r->dw_len = rest;
    return 0;
}

/* What a partial write left: 1 all sent, 0 still blocked, -1 error. */
static int dw_send_rest(gw_req *r)
{
    ssize_t k;
    do
        k = send(r->fd, r->dw + r->dw_off, r->dw_len - r->dw_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    r->dw_off += (size_t)k;
    if (r->dw_off < r->dw_len)
        return 0;
    free(r->dw);
    r->dw = NULL;
    r->dw_off = r->dw_len = 0;
    return 1;
}

/* Under r->lock; r suspended, not blocked (or just unblocked), framing set.
 * Writes what the reader has until it has nothing (stays suspended), the
 * socket is full (blocked), or the stream ends, fails or is heavy
 * (resumed: libmicrohttpd's reader path goes on). */
static void direct_flush(gw_req *r)
{
    char data[gw_direct_chunk];
    size_t sent = 0;
    if (r->dw_len) {
        int rc = dw_send_rest(r);
        if (rc == 0) {
            dw_block(r);
            return;
        }
        if (rc < 0) {
            r->dw_failed = true;
            resume_locked(r);
            return;
        }
    }
    for (;;) {
        if (sent >= gw_direct_burst) {
            resume_locked(r);
            return;
        }
        ssize_t n = r->rd(r->sctx, data, sizeof data);
        if (n == 0) {
            r->wake_pending = false;
            return;
        }
        if (n < 0) { /* END or ERROR: the reader says it again to libmicrohttpd */
            resume_locked(r);
            return;
        }
        char hdr[24];
        struct iovec iov[3];
        int niov = 0;
        if (r->framing == DW_CHUNKED) { /* "%zx\r\n", without printf */
            size_t hl = 0, v = (size_t)n;
            char tmp[sizeof(size_t) * 2];
            do {
                tmp[hl++] = "0123456789abcdef"[v & 15];
                v >>= 4;
            } while (v);
            for (size_t i = 0; i < hl; i++)
                hdr[i] = tmp[hl - 1 - i];
            hdr[hl++] = '\r';
            hdr[hl++] = '\n';
            iov[niov++] = (struct iovec){hdr, hl};
        }
        iov[niov++] = (struct iovec){data, (size_t)n};
        if (r->framing == DW_CHUNKED)
            iov[niov++] = (struct iovec){(void *)"\r\n", 2};
        int rc = dw_send(r, iov, niov);
        if (rc < 0) {
            r->dw_failed = true;
            resume_locked(r);
            return;
        }
        if (rc == 0) {
            dw_block(r);
            return;
        }
        sent += (size_t)n;
    }
}

/* Finds r on the blocked list and takes a reference (listed = suspended =
 * alive); false if it is not there any more. */
static bool blocked_ref(gw_server *s, gw_req *r)
{
    bool found = false;
    pthread_mutex_lock(&s->blk_mu);
    for (gw_req *x = s->blocked; x; x = x->bnext)
        if (x == r) {
            atomic_fetch_add(&r->refs, 1);
            found = true;
            break;
        }
    pthread_mutex_unlock(&s->blk_mu);
    return found;
}

static void *flusher_main(void *arg)
{
    gw_server *s = arg;
    struct epoll_event evs[64];
    uint64_t next_scan = mono_ms() + 1000;
    while (!atomic_load(&s->flusher_stop)) {
        int n = epoll_wait(s->blk_epfd, evs, 64, 1000);
        for (int i = 0; i < n; i++) {
            gw_req *r = evs[i].data.ptr;
            if (!r || !blocked_ref(s, r))
                continue; /* the stop eventfd, or no longer blocked */
            pthread_mutex_lock(&r->lock);
            if (r->blocked) {
                dw_unblock(r);
                if (r->suspended && !r->closed)
                    direct_flush(r);
            }
            pthread_mutex_unlock(&r->lock);
            req_unref(r);
        }
        uint64_t now = mono_ms();
        if (now < next_scan)
            continue;
        next_scan = now + 1000;
        unsigned tmo = s->cfg.stream_timeout_s;
        if (!tmo)
            continue;
        /* streams that took nothing for --stream-stall-timeout: abort */
        for (;;) {
            gw_req *r = NULL;
            pthread_mutex_lock(&s->blk_mu);
            for (gw_req *x = s->blocked; x; x = x->bnext)
                if (now - x->blocked_ms >= (uint64_t)tmo * 1000u) {
                    r = x;
                    atomic_fetch_add(&r->refs, 1);
                    break;
                }
            pthread_mutex_unlock(&s->blk_mu);
            if (!r)
                break;
            pthread_mutex_lock(&r->lock);
            if (r->blocked) {
                dw_unblock(r);
                r->dw_failed = true;
                if (r->suspended && !r->closed)
                    resume_locked(r);
            }
            pthread_mutex_unlock(&r->lock);
            req_unref(r);
        }
    }
    return NULL;
}

static int flusher_start(gw_server *s)
{
    s->blk_epfd = epoll_create1(EPOLL_CLOEXEC);
    s->blk_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->blk_epfd < 0 || s->blk_evfd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(s->blk_epfd, EPOLL_CTL_ADD, s->blk_evfd, &ev) != 0)
        return -1;
    atomic_store(&s->flusher_stop, false);
    if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0)
        return -1;
    s->flusher_on = true;
    return 0;
}

static void flusher_stop(gw_server *s)
{
    if (s->flusher_on) {
        atomic_store(&s->flusher_stop, true);
        uint64_t one = 1;
        ssize_t w = write(s->blk_evfd, &one, sizeof one);
        (void)w;
        pthread_join(s->flusher, NULL);
        s->flusher_on = false;
    }
}

/* ------------------------------------------------------------------ */
/* suspend / resume                                                    */

void gw_req_suspend(gw_req *r, gw_handler_fn cont)
{
    r->want_suspend = true;
    r->cont = cont;
}

void gw_req_resume(gw_req *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->suspended) {
        r->suspended = false;
        if (!r->closed)
            MHD_resume_connection(r->conn);
    } else {
        r->wake_pending = true; /* the handler has not suspended yet */
    }
    pthread_mutex_unlock(&r->lock);
    req_unref(r); /* the suspension's reference */
}

/* Runs a handler or continuation and carries out what it asked for. */
static enum MHD_Result run(gw_req *r, gw_handler_fn fn)
{
    for (;;) {
        r->want_suspend = false;
        r->state = RS_RUNNING;
        atomic_fetch_add(&r->refs, 1); /* held by a possible suspension */
        fn(r, r->rt->ctx);
        if (!r->want_suspend)
            req_unref(r); /* no suspension: drop its reference (never the last) */
        if (r->streaming) {
            if (r->want_suspend) /* a stream and a suspension: use the stream */
                r->want_suspend = false;
            return queue_stream(r);
        }
        if (!r->want_suspend) {
            if (!r->replied)
                gw_reply_error(r, 500, GRPC_INTERNAL, "kvgate: handler gave no reply");
            return queue_reply(r);
        }
        /* Suspending: from here another thread may be filling in the
         * reply; read it only after the lock says the resume happened. */
        pthread_mutex_lock(&r->lock);
        if (r->wake_pending) {
            /* gw_req_resume() already ran (and dropped its reference) */
            r->wake_pending = false;
            pthread_mutex_unlock(&r->lock);
            if (r->replied)
                return queue_reply(r);
            fn = r->cont;
            continue;
        }
        MHD_suspend_connection(r->conn);
        r->suspended = true;
        r->state = RS_SUSPENDED;
        pthread_mutex_unlock(&r->lock);
        return MHD_YES;
    }
}

/* ------------------------------------------------------------------ */
/* routing, CORS, body                                                 */

static bool origin_allowed(const gw_server *s, const char *origin)
{
    if (s->cors_any)
        return true;
    for (size_t i = 0; i < s->n_origins; i++)
        if (strcmp(s->origins[i], origin) == 0)
            return true;
    return false;
}

static bool is_gateway_path(const char *p)
{
    return strncmp(p, "/v3/", 4) == 0 || strncmp(p, "/v3beta/", 8) == 0 ||
           strncmp(p, "/v3alpha/", 9) == 0;
}

/* The route for (method, path); *path_known says whether any method has it. */
static const route *find_route(const gw_server *s, const char *method, const char *path,
                               bool *path_known)
{
    size_t pl = strlen(path);
    *path_known = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        const route *rt = &s->routes[i];
        if (rt->path_len != pl || memcmp(rt->path, path, pl) != 0)
            continue;
        *path_known = true;
        if (strcmp(rt->method, method) == 0)
            return rt;
    }
    return NULL;
}

/* Go's cleanPath (net/http ServeMux): path.Clean, keeping a trailing slash.
 * Writes into out (at least strlen(p) + 2 bytes). */
static void clean_path(const char *p, char *out)
{
    size_t o = 0, n = strlen(p);
    out[o++] = '/';
    for (size_t i = 0; i < n;) {
        while (i < n && p[i] == '/')
            i++;
        size_t st = i;
        while (i < n && p[i] != '/')
            i++;
        size_t l = i - st;
        if (l == 0 || (l == 1 && p[st] == '.'))
            continue;
        if (l == 2 && p[st] == '.' && p[st + 1] == '.') {
            if (o > 1) {
                o--; /* drop the trailing '/' */
                while (o > 1 && out[o - 1] != '/')
                    o--;
            }
            continue;
        }
        memcpy(out + o, p + st, l);
        o += l;
        out[o++] = '/';
    }
    if (o > 1)
        o--; /* no trailing slash ... */
    if (n > 1 && p[n - 1] == '/' && o > 1)
        out[o++] = '/'; /* ... unless the request had one */
    out[o] = 0;
}

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    gwbuf *q = cls;
    (void)kind;
    buf_putc(q, q->p && memchr(q->p, '?', q->len) ? '&' : '?');
    buf_puts(q, key);
    if (value) {
        buf_putc(q, '=');
        buf_puts(q, value);
    }
    return MHD_YES;
}

/* Go's ServeMux redirects unclean paths, and subtree roots without their
 * slash ("/v3" -> "/v3/"), with 301; etcd's gateway inherits that. */
static bool redirect_if_unclean(gw_req *r)
{
    const char *p = r->path;
    size_t n = strlen(p);
    char *clean = malloc(n + 3);
    if (!clean)
        return false;
    if (p[0] != '/') {
        clean[0] = '/';
        strcpy(clean + 1, p);
        char *t = strdup(clean);
        if (t)
            clean_path(t, clean);
        free(t);
    } else {
        clean_path(p, clean);
    }
    if (strcmp(clean, "/v3") == 0) /* etcd: only /v3/ is a mux subtree */
        strcat(clean, "/");
    bool moved = strcmp(clean, p) != 0;
    if (moved) {
        /* Go keeps the query; MHD has split it into arguments already:
         * rebuild it (exact for the usual unescaped k=v&k=v). */
        gwbuf q = GWBUF_INIT;
        buf_puts(&q, clean);
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_query_arg, &q);
        buf_putc(&q, 0);
        if (!q.failed) {
            free(clean);
            size_t l;
            clean = buf_steal(&q, &l);
        }
        buf_free(&q);
        const char *m = r->method;
        if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
            char *body = NULL;
            if (asprintf(&body, "<a href=\"%s\">Moved Permanently</a>.\n\n", clean) < 0)
                body = NULL;
            gw_reply(r, 301, "text/html; charset=utf-8", body, body ? strlen(body) : 0);
        } else {
            gw_reply(r, 301, NULL, NULL, 0);
        }
        gw_reply_add_header(r, "Location", clean);
    }
    free(clean);
    return moved;
}

static void allow_header(gw_req *r)
{
    char allow[64] = "";
    const gw_server *s = r->s;
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, r->path) != 0)
            continue;
        if (allow[0])
            strncat(allow, ", ", sizeof allow - strlen(allow) - 1);
        strncat(allow, s->routes[i].method, sizeof allow - strlen(allow) - 1);
    }
    gw_reply_add_header(r, "Allow", allow);
}

static void preflight(gw_req *r)
{
    if (!r->cors_ok) {
        if (r->origin) {
            gw_reply_error(r, 403, GRPC_PERMISSION_DENIED, "kvgate: CORS origin not allowed");
        } else {
            gw_reply(r, 204, NULL, NULL, 0);
            gw_reply_add_header(r, "Allow", gw_cors_methods);
        }
        return;
    }
    gw_reply(r, 200, NULL, NULL, 0);
    gw_reply_add_header(r, "Access-Control-Allow-Methods", gw_cors_methods);
    gw_reply_add_header(r, "Access-Control-Allow-Headers", gw_cors_headers);
    gw_reply_add_header(r, "Access-Control-Max-Age", gw_cors_max_age);
}

static void reply_too_big(gw_req *r, unsigned long long got)
{
    char msg[128];
    snprintf(msg, sizeof msg, "grpc: received message larger than max (%llu vs. %zu)", got,
             r->s->cfg.max_body_bytes);
    gw_reply_error(r, 413, GRPC_RESOURCE_EXHAUSTED, msg);
}

/* --max-json-depth: refuses a body nested deeper than the limit, found
 * with one linear pass, so that no parser (jansson recurses once per
 * level) ever sees it.  Beyond Go's own 10000 levels the decoder answers
 * etcd's "exceeded max depth" itself, so that answer stays etcd's.
 * True when it answered. */
static bool refuse_deep_body(gw_req *r)
{
    unsigned max = r->s->cfg.max_json_depth;
    if (max == 0 || r->body_len <= max)
        return false;
    size_t d = gojson_depth(r->body, r->body_len, 10000);
    if (d <= max || d > 10000)
        return false;
    char msg[160];
    snprintf(msg, sizeof msg,
             "kvgate: request body nested too deeply (more than %u levels; --max-json-depth)",
             max);
    gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, msg);
    return true;
}

static bool append_body(gw_req *r, const char *data, size_t n)
{
    if (r->too_big)
        return true;
    if (r->body_len + n > r->s->cfg.max_body_bytes) {
        r->too_big = true;
        r->body_len += n; /* keep counting for the message */
        return true;
    }
    if (r->body_cap - r->body_len < n + 1) {
        size_t cap = r->body_cap * 2;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *p = r->body == r->inline_body ? malloc(cap) : realloc(r->body, cap);
        if (!p)
            return false;
        if (r->body == r->inline_body)
            memcpy(p, r->body, r->body_len);
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return true;
}

/* ---- an invalid Content-Length ----
 * libmicrohttpd 0.9.75 refuses it itself (400, or 413 past 2^64) but sends
 * its answer's head twice: parse_connection_headers() queues the answer and
 * builds its head, then the state machine goes on as if the headers were
 * fine and builds the head again (the handler is never called).  A client
 * or proxy reads a 400 whose body is another response head.  Nothing of
 * kvgate's runs for such a request but the URI callback (before the
 * headers) and the error log, which 0.9.75 calls on the connection's worker
 * thread as it refuses the header ("Failed to parse `Content-Length'
 * header" / "Too large value of 'Content-Length' header"), before anything
 * is sent.  So the URI callback notes, per worker thread, the connections
 * between request line and handler; when the log says a Content-Length was
 * refused and exactly one connection of this thread is at that point, it
 * is that one: kvgate writes Go's answer (etcd's: one 400 "400 Bad
 * Request", Connection: close) to its socket and shuts down the sending
 * side, so libmicrohttpd's own answer cannot go out (its send fails and it
 * closes the connection).  With more than one such connection on the
 * thread (headers that came in pieces on several connections at once) it
 * does nothing and libmicrohttpd's doubled answer goes out as before. */
static __thread struct MHD_Connection *tl_parsing_conn; /* the last noted */
static __thread int tl_parsing_n;                        /* how many are noted */

static gw_conn *conn_ctx(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void parsing_begin(struct MHD_Connection *c)
{
    gw_conn *gc = conn_ctx(c);
    if (gc && !gc->parsing) {
        gc->parsing = true;
        tl_parsing_n++;
    }
    tl_parsing_conn = gc ? c : NULL;
}

/* c's handler is called, or c closes */
static void parsing_end(struct MHD_Connection *c, gw_conn *gc)
{
    if (gc && gc->parsing) {
        gc->parsing = false;
        tl_parsing_n--;
    }
    if (tl_parsing_conn == c)
        tl_parsing_conn = NULL;
}

static void cl_refused(void)
{
    static const char ans[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 15\r\n"
                              "Connection: close\r\n\r\n"
                              "400 Bad Request";
    struct MHD_Connection *c = tl_parsing_conn;
    if (!c || tl_parsing_n != 1)
        return;
    gw_conn *gc = conn_ctx(c);
    if (!gc || !gc->parsing)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    ssize_t k;
    do
        k = send(ci->connect_fd, ans, sizeof ans - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (k < 0 && errno == EINTR);
    (void)k;
    shutdown(ci->connect_fd, SHUT_WR);
}

/* libmicrohttpd's own messages (connection limit reached, accept or socket
 * errors) in kvgate's log format instead of raw text on stderr; they can
 * come once per refused connection, so at most one line per 10 s. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (strstr(fmt, "Content-Length' header. Closing connection."))
        cl_refused(); /* see above */
    static log_ratelimit rl = LOG_RATELIMIT_INIT;
    uint64_t skipped;
    if (!log_enabled(LOG_WARN) || !log_ratelimit_allow(&rl, 10000, &skipped))
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = 0;
    log_printf(LOG_WARN, "http", "%s suppressed=%llu", msg, (unsigned long long)skipped);
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- request deadline (slow clients) ----
 * libmicrohttpd's connection timeout is an idle timeout: every byte received
 * restarts it, so a client sending its headers or its body one byte every
 * few seconds would hold a connection and its memory forever (slow loris).
 * So receiving a whole request has a deadline too: conn_timeout_s from the
 * connection's start or from the end of its previous request.  A sweeper
 * thread shuts down the socket of a connection past it whose request no
 * handler has taken yet; libmicrohttpd then sees the socket fail and cleans
 * up as for any client that went away.  Requests a handler has taken
 * (running, waiting for the store, watch streams) are never swept. */
static const unsigned gw_sweep_ms = 500; /* sweeper period */

/* --max-connections: libmicrohttpd at its limit stops accepting, so one
 * more client would sit in the kernel's backlog without a word until it
 * gave up.  Instead libmicrohttpd's limit is this much higher, and a
 * connection opened past max_connections gets one clear answer (503, code
 * 14, Retry-After, Connection: close) to its first request. */
static unsigned conn_margin(unsigned max) { return max / 8 + 16 < 512 ? max / 8 + 16 : 512; }

/* Connections a handler has taken (busy: running, waiting for the store,
 * streaming) are on their own list, so the sweeper walks only those it
 * may shut down: with thousands of watch streams open, each sweep (every
 * gw_sweep_ms) was a walk over all of them.  Under conns_mu. */
static void conn_link(gw_server *s, gw_conn *gc)
{
    gw_conn **head = gc->busy ? &s->busy_conns : &s->conns;
    gc->prev = NULL;
    gc->next = *head;
    if (*head)
        (*head)->prev = gc;
    *head = gc;
}

static void conn_unlink(gw_server *s, gw_conn *gc)
{
    if (gc->prev)
        gc->prev->next = gc->next;
    else if (gc->busy)
        s->busy_conns = gc->next;
    else
        s->conns = gc->next;
    if (gc->next)
        gc->next->prev = gc->prev;
    gc->prev = gc->next = NULL;
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    gw_server *s = cls;
    gw_conn *gc = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        gc = calloc(1, sizeof *gc);
        if (!gc)
            return; /* this one has only the idle timeout */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        gc->fd = ci ? (int)ci->connect_fd : -1;
        gc->since_us = mono_us();
        pthread_mutex_lock(&s->conns_mu);
        gc->over = ++s->n_conns > s->cfg.max_connections;
        conn_link(s, gc);
        pthread_mutex_unlock(&s->conns_mu);
        *socket_context = gc;
        return;
    }
    if (!gc)
        return;
    parsing_end(c, gc);
    /* CLOSED comes before libmicrohttpd closes the fd: once unlinked here
     * the sweeper cannot touch a reused descriptor */
    pthread_mutex_lock(&s->conns_mu);
    conn_unlink(s, gc);
    s->n_conns--;
    pthread_mutex_unlock(&s->conns_mu);
    free(gc);
    *socket_context = NULL;
}

/* True when c was opened past max_connections (refuse its request). */
static bool conn_over(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const gw_conn *gc = ci ? ci->socket_context : NULL;
    return gc && gc->over; /* set once before any request: no lock needed */
}

/* busy: a handler takes the connection's request; !busy: it completed, the
 * next request's clock starts. */
static void conn_mark(gw_server *s, struct MHD_Connection *c, bool busy)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    gw_conn *gc = ci ? ci->socket_context : NULL;
    if (!gc)
        return;
    pthread_mutex_lock(&s->conns_mu);
    if (gc->busy != busy) {
        conn_unlink(s, gc);
        gc->busy = busy;
        conn_link(s, gc);
    }
    if (!busy)
        gc->since_us = mono_us();
    pthread_mutex_unlock(&s->conns_mu);
}

static void *sweeper_main(void *arg)
{
    gw_server *s = arg;
    uint64_t limit = (uint64_t)s->cfg.conn_timeout_s * 1000000u;
    pthread_mutex_lock(&s->conns_mu);
    while (!s->sweeper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)gw_sweep_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->sweeper_cv, &s->conns_mu, &ts);
        uint64_t now = mono_us();
        for (gw_conn *gc = s->conns; gc; gc = gc->next) {
            if (!gc->busy && gc->fd >= 0 && now - gc->since_us > limit) {
                shutdown(gc->fd, SHUT_RDWR);
                gc->fd = -1;
            }
        }
    }
    pthread_mutex_unlock(&s->conns_mu);
    return NULL;
}

static void sweeper_stop(gw_server *s)
{
    if (!s->sweeper_on)
        return;
    pthread_mutex_lock(&s->conns_mu);
    s->sweeper_stop = true;
    pthread_cond_signal(&s->sweeper_cv);
    pthread_mutex_unlock(&s->conns_mu);
    pthread_join(s->sweeper, NULL);
    s->sweeper_on = false;
}

/* Counts the finished request (a few relaxed atomic adds) and logs a
 * server error.  status 0: the client left before any answer. */
static void observe_done(gw_server *s, gw_req *r)
{
    if (!s->metrics)
        return;
    size_t ep = r->rt ? s->route_ep[r->rt - s->routes] : METRICS_EP_OTHER;
    uint64_t lat = r->streaming ? UINT64_MAX : mono_us() - r->t0_us;
    metrics_request_observe(s->metrics, ep, r->status, lat);
    if (r->status >= 500)
        log_printf(LOG_WARN, "http", "server error status=%d method=%s path=%s latency_us=%llu",
                   r->status, r->rt ? r->rt->method : "-", r->rt ? r->rt->path : "-",
                   (unsigned long long)(r->streaming ? 0 : lat));
}

/* ---- query strings libmicrohttpd cannot hold ----
 * libmicrohttpd keeps every query argument in the connection's memory pool
 * (--connection-memory); when the pool runs out while it parses the request
 * line, 0.9.75 neither answers nor closes: the client waits for the idle
 * timeout (tests/e2e/test_barrage.py found it: GET /version?a=b&... with
 * 200 arguments hung).  Its URI callback runs just before that parsing, on
 * the request line in the connection's own buffer (which libmicrohttpd
 * itself then cuts up), so a query with more arguments than the pool can
 * hold is emptied there (the request is refused anyway, its arguments are
 * never read) and marked for a 414 in *con_cls. */
static char gw_query_overflow; /* the mark (its address) */

/* Arguments that surely fit: a header record costs libmicrohttpd ~64
 * bytes of the pool, which also holds the request line, the headers and
 * the read buffer.  48 at the default 12 KiB; kvgate's routes read <= 12. */
static size_t max_query_args(const gw_server *s)
{
    return (s->cfg.conn_memory ? s->cfg.conn_memory : GW_DEFAULT_CONN_MEMORY) / 256;
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    gw_server *s = cls;
    parsing_begin(c);
    const char *q = strchr(uri, '?');
    if (!q || !q[1])
        return NULL;
    size_t n = 1;
    for (const char *p = q + 1; *p; p++)
        n += *p == '&';
    if (n <= max_query_args(s))
        return NULL;
    /* libmicrohttpd parses the arguments from q + 1 on: make it "" */
    ((char *)q)[1] = 0;
    return &gw_query_overflow;
}

/* ---- request acceptance: what Go's net/http (etcd) refuses ----
 * libmicrohttpd 0.9.75 accepts header lines that Go's server refuses, and
 * some of them change where the request ends: "Content-Length : 14"
 * (space before the colon) is kept under the name "Content-Length " and
 * ignored, so the body is parsed as the next request (request smuggling
 * behind a proxy that honours it).  So before any handler runs, the
 * request's headers are checked as Go's server checks them, in its order
 * (readTransfer, then Host, then names and values), and a refused request
 * is answered and its connection closed (Connection: close), so nothing
 * that follows on the connection is read as a request. */

/* Go's httpguts token table (RFC 7230 tchar). */
static bool is_tchar(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return true;
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* httpguts.ValidHostHeader's byte table. */
static bool is_host_byte(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return true;
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
        return true;
    return ch && strchr("!$%&'()*+,-.:;=[]_~", ch) != NULL;
}

typedef struct hdr_scan {
    bool crlf;            /* the request line ended with CRLF */
    unsigned n_host, n_te, n_cl;
    const char *host, *te, *cl;
    size_t host_len, te_len, cl_len;
    bool cl_differ;       /* two Content-Length values that differ */
    bool bad_name, bad_value, fold;
    const char *expect;
    const char *last_end; /* where the last header's value ends (crlf only) */
} hdr_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    hdr_scan *h = cls;
    (void)kind;
    if (key_size == 0)
        h->bad_name = true;
    for (size_t i = 0; i < key_size; i++)
        if (!is_tchar((unsigned char)key[i]))
            h->bad_name = true;
    if (!value)
        return MHD_YES;
    for (size_t i = 0; i < value_size; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < ' ' && ch != '\t') || ch == 0x7f)
            h->bad_value = true;
    }
    /* A NUL in a value: libmicrohttpd keeps the value up to it (its length
     * is the C string's).  It turns each line's CR and LF into NULs, so a
     * value that ends at its line's CRLF is followed by two NULs; one
     * followed by anything else was cut by a NUL of the request's own.
     * Only with CRLF lines (as the request line's): after a bare LF the
     * next line follows at once. */
    if (h->crlf) {
        if (value[value_size + 1] != 0)
            h->bad_value = true;
        else if (value[value_size + 2] == ' ' || value[value_size + 2] == '\t')
            h->fold = true; /* the next line continues this one */
        h->last_end = value + value_size;
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        h->n_host++;
        h->host = value;
        h->host_len = value_size;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        h->n_te++;
        h->te = value;
        h->te_len = value_size;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (h->n_cl++ == 0) {
            h->cl = value;
            h->cl_len = value_size;
        } else if (value_size != h->cl_len || memcmp(value, h->cl, value_size) != 0) {
            h->cl_differ = true;
        }
    } else if (strcasecmp(key, MHD_HTTP_HEADER_EXPECT) == 0 && !h->expect) {
        h->expect = value;
    }
    return MHD_YES;
}


/* Go's answer to a request it cannot read ("400 Bad Request[: why]",
 * text/plain, Connection: close). */
static void reply_bad_request(gw_req *r, const char *why)
{
    char text[96];
    snprintf(text, sizeof text, "400 Bad Request%s%s", why ? ": " : "", why ? why : "");
    char *p = strdup(text);
    gw_reply(r, 400, "text/plain; charset=utf-8", p, p ? strlen(p) : 0);
    gw_reply_add_header(r, "Connection", "close");
}

/* Whether an Expect value holds the token 100-continue (Go's hasToken). */
static bool expects_continue(const char *v)
{
    static const char tok[] = "100-continue";
    for (const char *p = v; (p = strcasestr(p, tok)) != NULL; p++) {
        char before = p == v ? ' ' : p[-1], after = p[sizeof tok - 1];
        if ((before == ' ' || before == ',' || before == '\t') &&
            (after == 0 || after == ' ' || after == ',' || after == '\t'))
            return true;
    }
    return false;
}

/* Refuses a request Go's server would not read (see above).  0: fine;
 * 1: a reply is set (answer it now, the connection closes after it).
 * (An invalid Content-Length never gets here: see cl_refused.) */
static int refuse_malformed(gw_req *r, struct MHD_Connection *c, const char *version)
{
    hdr_scan h = {0};
    size_t vl = version ? strlen(version) : 0;
    /* "HTTP/1.1" is in the connection's read buffer, its line end turned
     * into NULs: CR LF -> two NULs; a bare LF -> one, then the next line */
    h.crlf = vl == 8 && version[vl + 1] == 0;
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_header, &h);
    /* After the last header's CR LF comes the empty line's, unless
     * libmicrohttpd took a line for the end of the headers that was not:
     * 0.9.75 does so with a line that starts with ':' (an empty name,
     * which Go accepts), and reads the lines after it as body or as the
     * next request. */
    if (h.last_end && (h.last_end[2] != 0 || h.last_end[3] != 0))
        h.bad_name = true;
    if (h.n_te) {
        /* Go: only "chunked", one header (RFC 9112 6.1: 501 for others);
         * libmicrohttpd would read any other body until the client closes */
        if (h.n_te > 1 || h.te_len != 7 || strncasecmp(h.te, "chunked", 7) != 0) {
            char *p = strdup("Unsupported transfer encoding");
            gw_reply(r, 501, "text/plain; charset=utf-8", p, p ? strlen(p) : 0);
            gw_reply_add_header(r, "Connection", "close");
            return 1;
        }
    }
    if (h.cl_differ) {
        reply_bad_request(r, NULL);
        return 1;
    }
    if (vl == 8 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0 && h.n_host == 0) {
        reply_bad_request(r, "missing required Host header");
        return 1;
    }
    if (h.n_host > 1) {
        reply_bad_request(r, NULL);
        return 1;
    }
    if (h.n_host == 1 && h.host) {
        for (size_t i = 0; i < h.host_len; i++)
            if (!is_host_byte((unsigned char)h.host[i])) {
                reply_bad_request(r, "malformed Host header");
                return 1;
            }
    }
    if (h.fold) { /* RFC 9112 5.2: refuse or unfold; 0.9.75 garbles it */
        reply_bad_request(r, "obsolete line folding");
        return 1;
    }
    if (h.bad_name || h.bad_value) {
        reply_bad_request(r, h.bad_name ? "invalid header name" : "invalid header value");
        return 1;
    }
    if (h.expect && h.expect[0] && !expects_continue(h.expect)) {
        gw_reply(r, 417, NULL, NULL, 0);
        gw_reply_add_header(r, "Connection", "close");
        return 1;
    }
    return 0;
}

/* RFC 9112 3.2.2: a server accepts the absolute-form request target
 * ("POST http://host:port/v3/kv/range"), as Go's does: the path is what
 * follows the authority ("" for none: Go's mux then redirects to "/"). */
static const char *origin_form(const char *url)
{
    const char *p = url;
    if (!((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
        return url;
    while (((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' ||
           *p == '-' || *p == '.')
        p++;
    if (p[0] != ':' || p[1] != '/' || p[2] != '/')
        return url;
    p += 3;
    const char *slash = strchr(p, '/');
    return slash ? slash : p + strlen(p);
}

/* Grpc-Timeout, as etcd's grpc-gateway reads it (runtime.AnnotateContext,
 * timeoutDecode): an integer (strconv.ParseInt: optional sign) and one
 * unit, H M S m u n; the call's deadline.  0 ok (*ns: the timeout, 0 for
 * none), -1 invalid. */
static int parse_grpc_timeout(const char *v, int64_t *ns)
{
    size_t n = strlen(v);
    *ns = 0;
    if (n == 0)
        return 0; /* Header.Get gives "": no timeout */
    if (n < 2)
        return -1;
    uint64_t unit;
    switch (v[n - 1]) {
    case 'H': unit = 3600000000000ull; break;
    case 'M': unit = 60000000000ull; break;
    case 'S': unit = 1000000000ull; break;
    case 'm': unit = 1000000ull; break;
    case 'u': unit = 1000ull; break;
    case 'n': unit = 1ull; break;
    default: return -1;
    }
    size_t i = 0;
    bool neg = false;
    if (v[0] == '+' || v[0] == '-') {
        neg = v[0] == '-';
        i = 1;
    }
    if (i == n - 1)
        return -1;
    uint64_t t = 0;
    for (; i < n - 1; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(v[i] - '0'), lim = (uint64_t)INT64_MAX + neg;
        if (t > (lim - d) / 10)
            return -1; /* out of int64's range */
        t = t * 10 + d;
    }
    /* time.Duration(t) * unit wraps in Go as it does here */
    uint64_t d = (neg ? 0 - t : t) * unit;
    *ns = (int64_t)d;
    return 0;
}

/* Sets r's deadline from its Grpc-Timeout; false (and a reply set) when
 * the header is invalid. */
static bool take_grpc_timeout(gw_req *r, struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Grpc-Timeout");
    int64_t ns;
    if (!v)
        return true;
    if (parse_grpc_timeout(v, &ns) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "invalid grpc-timeout: %.120s", v);
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, msg);
        return false;
    }
    if (ns == 0)
        return true;
    if (ns < 0)
        r->deadline_us = 1; /* passed already */
    else
        r->deadline_us = r->t0_us + (uint64_t)ns / 1000u;
    return true;
}

static bool deadline_passed(const gw_req *r)
{
    return r->deadline_us && mono_us() >= r->deadline_us;
}

/* A request whose Grpc-Timeout deadline has passed when its call would
 * start: etcd's gateway gets DeadlineExceeded from the call, 504 code 4.
 * (Only checked then: a call still running at its deadline, e.g. a lock
 * or campaign waiting or a slow write, is not canceled.) */
static void reply_deadline_exceeded(gw_req *r)
{
    free(r->rbody);
    r->rbody = NULL;
    r->rlen = 0;
    for (size_t i = 0; i < r->n_extra; i++) {
        free(r->extra[i][0]);
        free(r->extra[i][1]);
    }
    r->n_extra = 0;
    r->replied = false;
    r->deadline_us = 0;
    gw_reply_error(r, 504, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
}

/* A reply is set before the body was read (404, 405, preflight, ...):
 * read and drop the body, then answer, so the connection stays usable (an
 * answer queued mid-body makes libmicrohttpd close the socket with data
 * unread: a reset the client may see instead of the answer).  A declared
 * Content-Length over the body cap is answered at once, as the 413 of a
 * known route: libmicrohttpd then reads no more and closes after it. */
static enum MHD_Result drain_then_answer(gw_req *r, struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) &&
        strtoull(cl, NULL, 10) > r->s->cfg.max_body_bytes) {
        gw_reply_add_header(r, "Connection", "close");
        return queue_reply(r);
    }
    r->state = RS_DRAIN;
    return MHD_YES;
}

static enum MHD_Result ahc(void *cls, struct MHD_Connection *c, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_data_size, void **con_cls)
{
    gw_server *s = cls;
    bool query_overflow = *con_cls == &gw_query_overflow;
    if (query_overflow)
        *con_cls = NULL;
    gw_req *r = *con_cls;

    if (!r) {
        parsing_end(c, conn_ctx(c));
        url = origin_form(url);
        r = req_new(s, c, url, method);
        if (!r)
            return MHD_NO;
        r->http11 = version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
        r->http10 = version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
        *con_cls = r;
        r->t0_us = mono_us();
        atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
        pthread_mutex_lock(&s->live_mu);
        r->live_next = s->live;
        if (s->live)
            s->live->live_prev = r;
        s->live = r;
        pthread_mutex_unlock(&s->live_mu);
        r->body[0] = 0;
        if (atomic_load(&s->stopping)) {
            /* Closed without an answer, as a refused connection would be:
             * clients retry (an EventSource given a 503 would stop for
             * good instead of reconnecting to the restarted server). */
            r->uncounted = true;
            atomic_fetch_sub_explicit(&s->active, 1, memory_order_relaxed);
            return MHD_NO;
        }
        if (refuse_malformed(r, c, version))
            return queue_reply(r);
        r->origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
        r->cors_ok = r->origin && origin_allowed(s, r->origin);
        if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
            preflight(r);
            return drain_then_answer(r, c);
        }
        if (s->cfg.max_connections && conn_over(c)) {
            char msg[96];
            snprintf(msg, sizeof msg, "kvgate: too many connections (--max-connections %u)",
                     s->cfg.max_connections);
            gw_reply_error(r, 503, GRPC_UNAVAILABLE, msg);
            gw_reply_add_header(r, "Retry-After", "1");
            gw_reply_add_header(r, "Connection", "close");
            return queue_reply(r);
        }
        if (query_overflow) {
            char msg[96];
            snprintf(msg, sizeof msg, "kvgate: too many query parameters (at most %zu)",
                     max_query_args(s));
            gw_reply_error(r, 414, GRPC_INVALID_ARGUMENT, msg);
            gw_reply_add_header(r, "Connection", "close");
            return queue_reply(r);
        }
        bool known;
        r->rt = find_route(s, method, url, &known);
        if (!r->rt) {
            if (redirect_if_unclean(r)) {
                /* answered */
            } else if (known) {
                allow_header(r);
                gw_reply_error(r, 405, GRPC_UNIMPLEMENTED, "Method Not Allowed");
            } else {
                reply_text(r, 404, is_gateway_path(url) ? "Not Found\n" : "404 page not found\n");
            }
            return drain_then_answer(r, c);
        }
        if (is_gateway_path(url) && !take_grpc_timeout(r, c))
            return drain_then_answer(r, c);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > s->cfg.max_body_bytes) {
                reply_too_big(r, n);
                return queue_reply(r);
            }
        }
        r->state = RS_BODY;
        return MHD_YES;
    }

    switch (r->state) {
    case RS_DRAIN:
        if (*upload_data_size) {
            /* all of it, however long: answered mid-upload, libmicrohttpd
             * would close the socket with the rest unread and the client
             * get a reset instead of the answer (the request deadline,
             * --connection-timeout, still bounds a slow body) */
            r->body_len += *upload_data_size;
            *upload_data_size = 0;
            return MHD_YES;
        }
        return queue_reply(r);
    case RS_BODY:
        if (*upload_data_size) {
            if (!append_body(r, upload_data, *upload_data_size))
                return MHD_NO;
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (r->too_big) {
            reply_too_big(r, r->body_len);
            return queue_reply(r);
        }
        if (refuse_deep_body(r))
            return queue_reply(r);
        if (deadline_passed(r)) { /* Grpc-Timeout: before the call */
            reply_deadline_exceeded(r);
            return queue_reply(r);
        }
        conn_mark(s, c, true);
        return run(r, r->rt->fn);
    case RS_SUSPENDED:
        if (r->replied)
            return queue_reply(r);
        if (r->stop_forced) {
            gw_reply_error(r, 503, GRPC_UNAVAILABLE, "etcdserver: server stopped");
            return queue_reply(r);
        }
        return run(r, r->cont);
    case RS_RUNNING:
    case RS_DONE:
    default:
        *upload_data_size = 0;
        return MHD_YES;
    }
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    gw_server *s = cls;
    gw_req *r = *con_cls;
    (void)toe;
    conn_mark(s, c, false);
    if (!r || r == (void *)&gw_query_overflow) /* (marked, never reached ahc) */
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&s->live_mu);
    if (r->live_prev)
        r->live_prev->live_next = r->live_next;
    else
        s->live = r->live_next;
    if (r->live_next)
        r->live_next->live_prev = r->live_prev;
    r->live_prev = r->live_next = NULL;
    pthread_mutex_unlock(&s->live_mu);
    pthread_mutex_lock(&r->lock);
    r->closed = true;
    r->suspended = false;
    pthread_mutex_unlock(&r->lock);
    observe_done(s, r);
    if (!r->uncounted)
        atomic_fetch_sub_explicit(&s->active, 1, memory_order_relaxed);
    req_unref(r);
}

/* ------------------------------------------------------------------ */
/* server                                                              */

static char *msgf(const char *fmt, const char *a, const char *b)
{
    char *m = NULL;
    if (asprintf(&m, fmt, a, b) < 0)
        return NULL;
    return m;
}

/* strerror in Go's style: lower-case first letter. */
static void go_strerror(int e, char *out, size_t n)
{
    snprintf(out, n, "%s", strerror(e));
    if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
        out[0] = (char)(out[0] - 'A' + 'a');
}

static int open_listener(gw_server *s, char **errmsg)
{
    const char *l = s->cfg.listen;
    const char *colon = strrchr(l, ':');
    if (!colon || colon == l || !colon[1]) {
        *errmsg = msgf("invalid --listen %s: want HOST:PORT%s", l, "");
        return -1;
    }
    size_t hl = (size_t)(colon - l);
    char *host = strndup(l, hl);
    if (!host) {
        *errmsg = msgf("out of memory%s%s", "", "");
        return -1;
    }
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        *errmsg = msgf("invalid --listen %s: bad port%s", l, "");
        free(host);
        return -1;
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0) {
        *errmsg = msgf("listen %s: %s", l, gai_strerror(gai));
        free(host);
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, gw_listen_backlog) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        char e[128];
        go_strerror(err, e, sizeof e);
        *errmsg = msgf("listen %s: %s", l, e);
        free(host);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
    s->listen_fd = fd;
    s->host = host;
    return 0;
}

static int parse_origins(gw_server *s)
{
    const char *p = s->cfg.cors_origins;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 1 && *p == '*') {
            s->cors_any = true;
        } else if (n) {
            char **o = realloc(s->origins, (s->n_origins + 1) * sizeof *o);
            if (!o)
                return -1;
            s->origins = o;
            if (!(o[s->n_origins] = strndup(p, n)))
                return -1;
            s->n_origins++;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

gw_server *gw_server_new(const gw_config *cfg, char **errmsg)
{
    gw_server *s = calloc(1, sizeof *s);
    *errmsg = NULL;
    if (!s)
        goto oom;
    s->cfg = *cfg;
    s->listen_fd = -1;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0 && (ps & (ps - 1)) == 0)
        gw_page_size = (size_t)ps;
    atomic_init(&s->active, 0);
    pthread_mutex_init(&s->live_mu, NULL);
    pthread_mutex_init(&s->conns_mu, NULL);
    pthread_mutex_init(&s->blk_mu, NULL);
    s->blk_epfd = s->blk_evfd = -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->sweeper_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&s->stopping, false);
    if (!s->cfg.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = n > 0 ? (unsigned)n : 1;
    }
    if (parse_origins(s) != 0)
        goto oom;
    if (open_listener(s, errmsg) != 0)
        goto err;
    return s;
oom:
    *errmsg = msgf("out of memory%s%s", "", "");
err:
    gw_server_free(s);
    return NULL;
}

int gw_server_route(gw_server *s, const char *method, const char *path, gw_handler_fn fn, void *ctx)
{
    route *rs = realloc(s->routes, (s->n_routes + 1) * sizeof *rs);
    if (!rs)
        return -1;
    s->routes = rs;
    route *rt = &rs[s->n_routes];
    rt->method = strdup(method);
    rt->path = strdup(path);
    if (!rt->method || !rt->path) {
        free(rt->method);
        free(rt->path);
        return -1;
    }
    rt->path_len = strlen(path);
    rt->fn = fn;
    rt->ctx = ctx;
    s->n_routes++;
    return 0;
}

int gw_server_on_shutdown(gw_server *s, void (*fn)(void *arg), void *arg)
{
    hook *h = realloc(s->hooks, (s->n_hooks + 1) * sizeof *h);
    if (!h)
        return -1;
    s->hooks = h;
    h[s->n_hooks].fn = fn;
    h[s->n_hooks].arg = arg;
    s->n_hooks++;
    return 0;
}

int gw_server_start(gw_server *s, char **errmsg)
{
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_USE_TURBO;
    *errmsg = NULL;
    s->metrics = metrics_requests_new();
    s->route_ep = calloc(s->n_routes + 1, sizeof *s->route_ep);
    if (!s->metrics || !s->route_ep) {
        *errmsg = msgf("out of memory%s%s", "", "");
        return -1;
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        s->route_ep[i] = metrics_requests_endpoint(s->metrics, s->routes[i].path);
        if (s->route_ep[i] == (size_t)-1) {
            *errmsg = msgf("out of memory%s%s", "", "");
            return -1;
        }
    }
    if (flusher_start(s) != 0) { /* no direct writes then (libmicrohttpd's path only) */
        flusher_stop(s);
        log_printf(LOG_WARN, "http", "direct stream writes off: cannot start their thread");
    }
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, ahc, s,
        /* first: options after it could log through the default logger */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)(s->cfg.max_connections ? s->cfg.max_connections + conn_margin(s->cfg.max_connections) : 0),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->cfg.conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(s->cfg.conn_memory ? s->cfg.conn_memory : GW_DEFAULT_CONN_MEMORY),
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, s,
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, s,
        MHD_OPTION_END);
    if (!s->d) {
        flusher_stop(s);
        *errmsg = msgf("listen %s: cannot start the HTTP server%s", s->cfg.listen, "");
        return -1;
    }
    if (s->cfg.conn_timeout_s) {
        if (pthread_create(&s->sweeper, NULL, sweeper_main, s) != 0) {
            flusher_stop(s);
            MHD_stop_daemon(s->d);
            s->d = NULL;
            *errmsg = msgf("cannot start the request deadline thread%s%s", "", "");
            return -1;
        }
        s->sweeper_on = true;
    }
    s->started = true;
    return 0;
}

uint16_t gw_server_port(const gw_server *s) { return s->port; }

const metrics_requests *gw_server_metrics(const gw_server *s) { return s->metrics; }

unsigned gw_server_connections(gw_server *s)
{
    if (!s->d)
        return 0;
    /* libmicrohttpd sums its thread pool's workers here */
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return di ? di->num_connections : 0;
}

long gw_server_in_flight(gw_server *s)
{
    return atomic_load_explicit(&s->active, memory_order_relaxed);
}

/* Resumes every suspended connection before MHD_stop_daemon(): a request
 * still waiting (e.g. for the store) is answered 503, a stream's reader is
 * called again (its shutdown hook has told it to end). */
static void resume_all_suspended(gw_server *s)
{
    size_t n = 0, cap = 0;
    gw_req **v = NULL;
    pthread_mutex_lock(&s->live_mu);
    for (gw_req *r = s->live; r; r = r->live_next) {
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            gw_req **nv = realloc(v, nc * sizeof *nv);
            if (!nv)
                break;
            v = nv;
            cap = nc;
        }
        atomic_fetch_add(&r->refs, 1);
        v[n++] = r;
    }
    pthread_mutex_unlock(&s->live_mu);
    for (size_t i = 0; i < n; i++) {
        gw_req *r = v[i];
        pthread_mutex_lock(&r->lock);
        if (r->suspended && !r->closed) {
            dw_unblock(r); /* (its partial chunk makes the reader abort) */
            r->suspended = false;
            r->stop_forced = true;
            MHD_resume_connection(r->conn);
        }
        pthread_mutex_unlock(&r->lock);
        req_unref(r);
    }
    free(v);
}

void gw_server_stop(gw_server *s, unsigned grace_ms)
{
    if (!s->started || s->stopped)
        return;
    s->stopped = true;
    atomic_store(&s->stopping, true);
    /* No MHD_quiesce_daemon(): in libmicrohttpd 0.9.75 with a thread pool
     * and epoll it races the workers, which also take the listen socket out
     * of their epoll sets once they see the quiesce flag, and then aborts
     * ("Failed to remove listen FD from epoll set").  Requests that arrive
     * from now on get their connection closed at once (see ahc) and are
     * not waited for. */
    for (size_t i = 0; i < s->n_hooks; i++)
        s->hooks[i].fn(s->hooks[i].arg);
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (unsigned waited = 0; waited < grace_ms; waited += 10) {
        if (atomic_load(&s->active) <= 0)
            break;
        nanosleep(&ts, NULL);
    }
    resume_all_suspended(s);
    sweeper_stop(s);
    flusher_stop(s); /* after the resumes: nothing is blocked any more */
    MHD_stop_daemon(s->d);
    s->d = NULL;
    s->listen_fd = -1; /* closed above, or by MHD_stop_daemon */
}

void gw_server_free(gw_server *s)
{
    if (!s)
        return;
    if (s->started && !s->stopped)
        gw_server_stop(s, 0);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].method);
        free(s->routes[i].path);
    }
    free(s->routes);
    metrics_requests_free(s->metrics);
    free(s->route_ep);
    free(s->hooks);
    for (size_t i = 0; i < s->n_origins; i++)
        free(s->origins[i]);
    free(s->origins);
    free(s->host);
    pthread_mutex_destroy(&s->live_mu);
    pthread_mutex_destroy(&s->conns_mu);
    pthread_mutex_destroy(&s->blk_mu);
    if (s->blk_epfd >= 0)
        close(s->blk_epfd);
    if (s->blk_evfd >= 0)
        close(s->blk_evfd);
    pthread_cond_destroy(&s->sweeper_cv);
    free(s);
}
