/*
 * gateway_http.c — the HTTP core (http.h) on a real socket: routing, 404/405
 * shapes, body cap, CORS, answers from other threads (suspend/resume, also
 * when the resume comes before the handler returned) and streams woken
 * from another thread.  No store involved.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "testhelp.h"

static uint16_t port;

/* One request on a fresh connection ("Connection: close"); returns the
 * whole response (malloc'd). */
static char *http(const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return strdup("");
    }
    size_t n = strlen(req), off = 0;
    while (off < n) {
        ssize_t w = write(fd, req + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    for (;;) {
        if (cap - len < 2048)
            out = realloc(out, cap *= 2);
        ssize_t r = read(fd, out + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    out[len] = 0;
    close(fd);
    return out;
}

static char *post(const char *path, const char *body)
{
    char req[8192];
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             path, strlen(body), body);
    return http(req);
}

/* ---- handlers ---- */

static void h_sync(gw_req *r, void *ctx)
{
    (void)ctx;
    size_t len;
    const char *body = gw_req_body(r, &len);
    gwbuf b = GWBUF_INIT;
    buf_puts(&b, "{\"echo\":");
    buf_put_json_str(&b, body, len);
    buf_putc(&b, '}');
    gw_reply_json(r, 200, &b);
}

static void async_cont(gw_req *r, void *ctx)
{
    (void)ctx;
    char *msg = gw_req_user(r);
    gw_req_set_user(r, NULL, NULL);
    gw_reply(r, 200, "text/plain", msg, strlen(msg));
}

static void *async_worker(void *arg)
{
    gw_req *r = arg;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gw_req_set_user(r, strdup("done later"), free);
    gw_req_resume(r);
    return NULL;
}

static void h_async(gw_req *r, void *ctx)
{
    (void)ctx;
    pthread_t t;
    gw_req_suspend(r, async_cont);
    pthread_create(&t, NULL, async_worker, r);
    pthread_detach(t);
}

/* The answer arrives before the handler returns (a store that completes
 * at once, e.g. when closing). */
static void h_early(gw_req *r, void *ctx)
{
    (void)ctx;
    gw_req_suspend(r, async_cont);
    gw_req_set_user(r, strdup("done at once"), free);
    gw_req_resume(r);
}

/* A stream of 3 lines, each produced by another thread; the reader returns
 * 0 in between (the core suspends the connection). */
typedef struct stream {
    pthread_mutex_t mu;
    int produced, sent;
    bool closed;
    gw_req *r;
} stream;

static atomic_int streams_closed;

static ssize_t stream_read(void *sctx, char *buf, size_t max)
{
    stream *s = sctx;
    pthread_mutex_lock(&s->mu);
    ssize_t n = 0;
    if (s->sent < s->produced) {
        n = snprintf(buf, max, "{\"line\":%d}\n", s->sent);
        s->sent++;
    } else if (s->sent == 3) {
        n = GW_STREAM_END;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void stream_close(void *sctx)
{
    stream *s = sctx;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&streams_closed, 1);
}

static void *stream_producer(void *arg)
{
    stream *s = arg;
    for (int i = 0; i < 3; i++) {
        struct timespec ts = {0, 3 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->mu);
        s->produced++;
        if (!s->closed)
            gw_stream_wake(s->r);
        pthread_mutex_unlock(&s->mu);
    }
    /* wait for close, then free */
    for (;;) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->mu);
        bool c = s->closed;
        pthread_mutex_unlock(&s->mu);
        if (c)
            break;
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
}

static void h_stream(gw_req *r, void *ctx)
{
    (void)ctx;
    stream *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->r = r;
    gw_reply_stream(r, 200, "application/json", stream_read, s, stream_close);
    pthread_t t;
    pthread_create(&t, NULL, stream_producer, s);
    pthread_detach(t);
}

/* ---- a bulk stream: many wake-ups, big pieces, a slow client ----
 * Exercises direct writes (http.c): partial chunks kept while the socket is
 * full, the flusher thread, the hand-over to libmicrohttpd for heavy
 * streams and back, both framings. */
typedef struct bulk {
    pthread_mutex_t mu;
    char *data;
    size_t len, off; /* produced, handed to the core */
    bool done, closed;
    gw_req *r;
} bulk;

#define BULK_PIECES 120

static size_t bulk_piece_len(int i) { return (size_t)(i * 7919 % 30000) + 1; }
static char bulk_byte(size_t pos) { return (char)('a' + (pos * 31 + pos / 977) % 26); }

static ssize_t bulk_read(void *sctx, char *buf, size_t max)
{
    bulk *b = sctx;
    pthread_mutex_lock(&b->mu);
    ssize_t n = 0;
    if (b->off < b->len) {
        size_t k = b->len - b->off < max ? b->len - b->off : max;
        memcpy(buf, b->data + b->off, k);
        b->off += k;
        n = (ssize_t)k;
    } else if (b->done) {
        n = GW_STREAM_END;
    }
    pthread_mutex_unlock(&b->mu);
    return n;
}

static void bulk_close(void *sctx)
{
    bulk *b = sctx;
    pthread_mutex_lock(&b->mu);
    b->closed = true;
    pthread_mutex_unlock(&b->mu);
}

static size_t bulk_total(void)
{
    size_t t = 0;
    for (int i = 0; i < BULK_PIECES; i++)
        t += bulk_piece_len(i);
    return t;
}

static void *bulk_producer(void *arg)
{
    bulk *b = arg;
    size_t total = bulk_total();
    pthread_mutex_lock(&b->mu);
    b->data = malloc(total);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < BULK_PIECES; i++) {
        pthread_mutex_lock(&b->mu);
        size_t l = bulk_piece_len(i);
        for (size_t j = 0; j < l; j++)
            b->data[b->len + j] = bulk_byte(b->len + j);
        b->len += l;
        if (i == BULK_PIECES - 1)
            b->done = true;
        bool closed = b->closed;
        pthread_mutex_unlock(&b->mu);
        if (closed) /* r is held by our reference (h_bulk) */
            ;
        else if (i % 3 == 2) /* both kinds of wake-up, also while blocked */
            gw_stream_wake(b->r);
        else
            gw_stream_wake_direct(b->r);
        if (i % 8 == 0) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (;;) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&b->mu);
        bool c = b->closed;
        pthread_mutex_unlock(&b->mu);
        if (c)
            break;
    }
    gw_req_unref(b->r);
    free(b->data);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return NULL;
}

static void h_bulk(gw_req *r, void *ctx)
{
    (void)ctx;
    bulk *b = calloc(1, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    b->r = r;
    gw_req_ref(r); /* wakes outside b->mu may come after the stream closed */
    gw_reply_stream(r, 200, "application/octet-stream", bulk_read, b, bulk_close);
    pthread_t t;
    pthread_create(&t, NULL, bulk_producer, b);
    pthread_detach(t);
}

/* GET /v3/bulk with a small receive buffer, not read for `stall_ms`, then
 * read to EOF; returns the body (chunked decoded when chunked) or NULL. */
static char *bulk_fetch(const char *version, int stall_ms, size_t *len, bool *chunked)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rcv = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    char req[128];
    snprintf(req, sizeof req, "GET /v3/bulk %s\r\nHost: x\r\nConnection: close\r\n\r\n", version);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return NULL;
    }
    struct timespec ts = {stall_ms / 1000, (long)(stall_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    size_t cap = 1 << 16, n = 0;
    char *raw = malloc(cap);
    for (;;) {
        if (cap - n < 65536)
            raw = realloc(raw, cap *= 2);
        ssize_t k = read(fd, raw + n, cap - n - 1);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    raw[n] = 0;
    char *body = strstr(raw, "\r\n\r\n");
    if (!body) {
        free(raw);
        return NULL;
    }
    *chunked = strstr(raw, "Transfer-Encoding: chunked") && strstr(raw, "Transfer-Encoding: chunked") < body;
    body += 4;
    size_t blen = n - (size_t)(body - raw);
    char *out = malloc(blen + 1);
    size_t o = 0;
    if (!*chunked) {
        memcpy(out, body, blen);
        o = blen;
    } else {
        char *p = body, *end = body + blen;
        for (;;) {
            char *e = NULL;
            unsigned long cl = strtoul(p, &e, 16);
            if (e == p || e + 2 > end || e[0] != '\r' || e[1] != '\n') {
                free(out);
                out = NULL;
                break;
            }
            p = e + 2;
            if (cl == 0)
                break;
            if (p + cl + 2 > end || p[cl] != '\r' || p[cl + 1] != '\n') {
                free(out);
                out = NULL;
                break;
            }
            memcpy(out + o, p, cl);
            o += cl;
            p += cl + 2;
        }
    }
    free(raw);
    *len = o;
    return out;
}

static bool bulk_ok(const char *b, size_t len)
{
    if (!b || len != bulk_total())
        return false;
    for (size_t i = 0; i < len; i++)
        if (b[i] != bulk_byte(i))
            return false;
    return true;
}

int main(void)
{
    char *err = NULL;
    gw_config cfg = {"127.0.0.1:0", "http://ok.example", 1000, 100, 2, 10};
    gw_server *s = gw_server_new(&cfg, &err);
    CHECK(s != NULL);
    if (!s)
        return TEST_REPORT();
    gw_server_route(s, "POST", "/v3/sync", h_sync, NULL);
    gw_server_route(s, "POST", "/v3/async", h_async, NULL);
    gw_server_route(s, "POST", "/v3/early", h_early, NULL);
    gw_server_route(s, "GET", "/v3/stream", h_stream, NULL);
    gw_server_route(s, "GET", "/v3/bulk", h_bulk, NULL);
    CHECK_EQ_INT(gw_server_start(s, &err), 0);
    port = gw_server_port(s);
    CHECK(port != 0);

    TEST("busy port: etcd-style message") {
        char lbuf[64], *e2 = NULL;
        snprintf(lbuf, sizeof lbuf, "127.0.0.1:%u", port);
        gw_config c2 = cfg;
        c2.listen = lbuf;
        CHECK(gw_server_new(&c2, &e2) == NULL);
        char want[96];
        snprintf(want, sizeof want, "listen 127.0.0.1:%u: address already in use", port);
        CHECK_EQ_STR(e2, want);
        free(e2);
    }
    TEST("sync reply with the body") {
        char *r = post("/v3/sync", "{\"a\":1}");
        CHECK(strstr(r, "HTTP/1.1 200") == r);
        CHECK(strstr(r, "Content-Type: application/json") != NULL);
        CHECK(strstr(r, "{\"echo\":\"{\\\"a\\\":1}\"}") != NULL);
        free(r);
    }
    TEST("answer from another thread") {
        for (int i = 0; i < 20; i++) {
            char *r = post("/v3/async", "");
            CHECK(strstr(r, "HTTP/1.1 200") == r);
            CHECK(strstr(r, "\r\n\r\ndone later") != NULL);
            free(r);
        }
    }
    TEST("resume before the handler returned") {
        char *r = post("/v3/early", "");
        CHECK(strstr(r, "\r\n\r\ndone at once") != NULL);
        free(r);
    }
    TEST("stream woken from another thread, then ended") {
        char *r = http("GET /v3/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(strstr(r, "Transfer-Encoding: chunked") != NULL);
        CHECK(strstr(r, "{\"line\":0}") && strstr(r, "{\"line\":1}") && strstr(r, "{\"line\":2}"));
        free(r);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        CHECK_EQ_INT(atomic_load(&streams_closed), 1);
    }
    TEST("404 shapes as etcd (gateway prefix vs Go mux)") {
        char *r = post("/v3/nope", "{}");
        CHECK(strstr(r, "HTTP/1.1 404") == r);
        CHECK(strstr(r, "\r\n\r\nNot Found\n") != NULL);
        free(r);
        r = post("/nope", "{}");
        CHECK(strstr(r, "\r\n\r\n404 page not found\n") != NULL);
        free(r);
    }
    TEST("unclean paths: 301 to the clean one, query kept (Go's ServeMux, as etcd)") {
        char *r = http("POST /v3//sync?a=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        CHECK(strstr(r, "HTTP/1.1 301") == r);
        CHECK(strstr(r, "Location: /v3/sync?a=b\r\n") != NULL);
        free(r);
        r = http("GET /v3/x/../sync/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(strstr(r, "Location: /v3/sync/\r\n") != NULL);
        CHECK(strstr(r, "<a href=\"/v3/sync/\">Moved Permanently</a>.\n\n") != NULL);
        free(r);
        r = http("GET /v3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(strstr(r, "Location: /v3/\r\n") != NULL);
        free(r);
    }
    TEST("405 with Allow and a JSON error") {
        char *r = http("GET /v3/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(strstr(r, "HTTP/1.1 405") == r);
        CHECK(strstr(r, "Allow: POST") != NULL);
        CHECK(strstr(r, "{\"error\":\"Method Not Allowed\",\"message\":\"Method Not Allowed\",\"code\":12}") != NULL);
        free(r);
    }
    TEST("body cap: 413 by Content-Length and by counting chunks") {
        char big[1500];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        char *r = post("/v3/sync", big);
        CHECK(strstr(r, "HTTP/1.1 413") == r);
        CHECK(strstr(r, "\"code\":8") != NULL);
        free(r);
        char req[4096];
        snprintf(req, sizeof req, "POST /v3/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", (unsigned)strlen(big), big);
        r = http(req);
        CHECK(strstr(r, "HTTP/1.1 413") == r);
        free(r);
    }
    TEST("bulk streams to slow clients: every byte once, in order, framed (HTTP/1.1 and 1.0)") {
        const char *vers[2] = {"HTTP/1.1", "HTTP/1.0"};
        for (int v = 0; v < 2; v++)
            for (int stall = 0; stall <= 300; stall += 300) {
                size_t len = 0;
                bool chunked = false;
                char *b = bulk_fetch(vers[v], stall, &len, &chunked);
                CHECK(b != NULL);
                CHECK(chunked == (v == 0));
                CHECK(bulk_ok(b, len));
                if (!bulk_ok(b, len))
                    fprintf(stderr, "bulk %s stall %d: %zu of %zu bytes\n", vers[v], stall, len,
                            bulk_total());
                free(b);
            }
    }
    TEST("CORS: preflight and headers for allowed origins only") {
        char *r = http("OPTIONS /v3/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Origin: http://ok.example\r\nAccess-Control-Request-Method: POST\r\n\r\n");
        CHECK(strstr(r, "HTTP/1.1 200") == r);
        CHECK(strstr(r, "Access-Control-Allow-Origin: http://ok.example") != NULL);
        CHECK(strstr(r, "last-event-id") != NULL);
        CHECK(strstr(r, "content-type") != NULL);
        CHECK(strstr(r, "Access-Control-Max-Age: ") != NULL);
        free(r);
        r = http("POST /v3/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOrigin: http://bad.example\r\n"
                 "Content-Length: 2\r\n\r\n{}");
        CHECK(strstr(r, "HTTP/1.1 200") == r);
        CHECK(strstr(r, "Access-Control-Allow-Origin") == NULL);
        free(r);
        r = http("POST /v3/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOrigin: http://ok.example\r\n"
                 "Content-Length: 2\r\n\r\n{}");
        CHECK(strstr(r, "Access-Control-Allow-Origin: http://ok.example") != NULL);
        free(r);
    }
    gw_server_stop(s, 1000);
    gw_server_free(s);
    return TEST_REPORT();
}
