/*
 * watch_http.c — POST /v3/watch (etcd's chunked JSON) and Server-Sent
 * Events watches over the HTTP core (http.h) and the watchable layer
 * (watch.h).
 *
 * One HTTP connection = one wconn = one watch_stream.  Data flow:
 *
 *   committer / sync loops --(watch queue)--> wake_cb --(pending list)-->
 *   pump thread --gw_stream_wake_direct--> reader --> socket
 *
 * The pump runs the reader itself and writes to the socket while the
 * stream is idle in libmicrohttpd (http.c, "direct writes"); otherwise
 * (the first response, a stream that ends or is busy) an MHD worker does.
 * The reader (either thread, never both at once) pops responses, encodes them into the
 * connection's output buffer and copies as much as MHD takes; when the
 * queue is empty it returns 0 and the core suspends the connection.  The
 * wakeup callback runs under the watchable's lock and must be cheap, so it
 * only links the connection into the pending list; the pump thread resumes
 * the whole list at once, after gathering wake-ups for wake_batch_us.
 *
 * SSE specifics (the resume contract):
 *   - `retry:` first; `event: created` with id = start - 1 (the revision the
 *     watch continues after), so a client dropped before any event resumes
 *     exactly at its start;
 *   - data messages carry the WatchResponse, id = the response's
 *     progress_rev: every event <= it has been sent;
 *   - `event: progress` (progress_notify) has id = its revision too;
 *   - initial=true: created (no id), the range at revision R as put events
 *     in pages (no id: a drop mid-snapshot restarts the snapshot), then
 *     `event: synced` with id R, then changes from R + 1;
 *   - `event: canceled` (compaction while streaming): the stream ends; the
 *     browser reconnects with Last-Event-ID and gets 410 Gone, its cue to
 *     start over with initial=true.
 * Those ids are a GET stream's (one watch).  A POST stream may hold several
 * watches: there an id is the revision every watch of the stream has been
 * delivered up to, sent only when it advanced (watch_cover.h), and
 * Last-Event-ID N starts each create at max(start_revision, N + 1).
 * create_request.fragment (POST, JSON or SSE) splits a response as etcd
 * does (watch_json.h, wj_fragment_end); on SSE the id goes on the last part.
 *
 * Locks: wh->mu guards the connection registry, the pending list, each
 * wconn's `pending`/`closed` and wh->ending.  Order: ws->mu (watchable,
 * held around wake_cb) -> wh->mu -> gw_req.lock -> MHD internal.  The
 * reader takes none of ours except in wc_close; on_close calls
 * watch_stream_close (ws->mu) before taking wh->mu, never while holding it.
 */
#include "watch_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errors.h"
#include "log.h"
#include "sse.h"
#include "watch_cover.h"
#include "watch_json.h"
#include "watch_params.h"

/* Tunables that are not options. */
static const size_t wh_buf_keep = 0;         /* idle streams keep buffers up to this */
static const unsigned wh_tick_ms = 1000;      /* heartbeat / idle scan period (max) */
/* Event encodings cached for sharing at most this big: a cached encoding
 * lives as long as the event's block, which a stalled reader's queue pins,
 * so big values are encoded per delivery instead of doubling that memory. */
static const size_t wh_cache_max = 2048;
/* Output held for a stream (encoded, not yet taken by MHD) at least this
 * big is reported to the watchable layer, which counts it against the
 * stream's byte budget (stream_queue_bytes): a reader stalled in the middle
 * of a big value then takes no more events.  Smaller amounts are not worth
 * a lock per fill. */
static const size_t wh_backlog_min = 16 * 1024;
/* Buffers grown past this (a big value) are freed as soon as they drain,
 * so a stream does not keep a big value's worth of memory afterwards. */
static const size_t wh_buf_max_keep = 16 * 1024;

void watch_http_opts_default(watch_http_opts *o)
{
    o->sse_heartbeat_ms = 15000;
    o->sse_retry_ms = 2000;
    o->max_streams = 10000;
    o->max_watches_per_stream = 1000;
    o->peer_check_ms = 1000;
    o->wake_batch_us = 500;
    o->snapshot_page = 500;
    o->max_request_bytes = 1572864;
    o->event_cache = false;
}

typedef struct wconn wconn;

struct watch_http {
    kvstore *store;
    watchable *ws;
    ej_header hdr;
    watch_http_opts o;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    wconn *conns;        /* registry, doubly linked */
    wconn *pending;      /* connections to resume, singly linked */
    gw_req **wake_v;     /* the pump's batch of wake-ups (pump thread only) */
    size_t wake_cap;
    bool stop_pump;
    atomic_bool ending;  /* server shutting down (set under mu, read anywhere) */
    pthread_t pump;
    atomic_uint n_streams;
    /* events put into responses (kvgate_watch_events_sent_total): one
     * relaxed add per response, not per event or watcher */
    _Atomic uint64_t events_sent;
    _Atomic uint64_t refused;  /* streams refused at --max-streams */
};

enum snap_state { SNAP_NONE = 0, SNAP_WAIT_CREATED, SNAP_PAGING, SNAP_SYNCED };

struct wconn {
    watch_http *wh;
    gw_req *r;
    watch_stream *st;
    /* wh->mu */
    wconn *prev, *next;
    wconn *pnext;
    bool pending, closed;
    /* any thread */
    atomic_bool hb_due, ending, dead;
    atomic_llong last_send_ms, last_poll_ms;
    /* fixed after the handler */
    bool sse, multi, text;
    int64_t created_id;   /* SSE: id of the created message (-1: none) */
    /* POST: the stream's watches (fragment; SSE ids, watch_cover.h); filled
     * by the handler, then the reader's */
    wcover cov;
    /* reader only (one MHD thread at a time) */
    sse_buf out;
    size_t out_off;
    gwbuf *sc;            /* the thread's scratch, set by the reader (wh_tls) */
    bool sent_retry, finish;
    bool backlog_set;     /* a non-zero watch_stream_set_backlog is in force */
    /* initial=true */
    enum snap_state snap;
    int64_t snap_rev, watch_id;
    kv_bytes snap_key, snap_end;
    kv_range_resp snap_page; /* the first page, read in the handler */
    bool snap_have_page, snap_more;
};

static long long wh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* wake-ups                                                            */

/* The watchable layer's callback: under ws->mu, any thread. */
static void wake_cb(void *arg)
{
    wconn *c = arg;
    watch_http *wh = c->wh;
    pthread_mutex_lock(&wh->mu);
    if (!c->pending && !c->closed) {
        c->pending = true;
        c->pnext = wh->pending;
        wh->pending = c;
        pthread_cond_signal(&wh->cond);
    }
    pthread_mutex_unlock(&wh->mu);
}

static void *pump_main(void *arg)
{
    watch_http *wh = arg;
    long long next_tick = wh_now_ms() + wh_tick_ms;
    pthread_mutex_lock(&wh->mu);
    while (!wh->stop_pump) {
        if (!wh->pending) {
            long long now = wh_now_ms();
            if (now < next_tick) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                long long ns = ts.tv_nsec + (next_tick - now) * 1000000LL;
                ts.tv_sec += (time_t)(ns / 1000000000LL);
                ts.tv_nsec = (long)(ns % 1000000000LL);
                pthread_cond_timedwait(&wh->cond, &wh->mu, &ts);
                continue;
            }
        }
        if (wh->pending) {
            if (wh->o.wake_batch_us) { /* gather the wake-ups of a burst */
                pthread_mutex_unlock(&wh->mu);
                struct timespec d = {0, (long)wh->o.wake_batch_us * 1000};
                nanosleep(&d, NULL);
                pthread_mutex_lock(&wh->mu);
            }
            /* A wake-up may write to the socket itself (gw_stream_wake_direct
             * runs the reader here), so they run outside wh->mu, which the
             * committer's wake_cb takes: each request is held by a
             * reference, and one whose stream closed meanwhile ignores it. */
            size_t n = 0;
            for (wconn *c = wh->pending; c; c = c->pnext)
                n++;
            if (n > wh->wake_cap) {
                gw_req **v = realloc(wh->wake_v, n * sizeof *v);
                if (v) {
                    wh->wake_v = v;
                    wh->wake_cap = n;
                }
            }
            size_t k = 0;
            wconn *list = wh->pending;
            wh->pending = NULL;
            for (wconn *c = list, *nx; c; c = nx) {
                nx = c->pnext;
                c->pnext = NULL;
                c->pending = false;
                if (k < wh->wake_cap) {
                    gw_req_ref(c->r);
                    wh->wake_v[k++] = c->r;
                } else {
                    gw_stream_wake(c->r); /* (no memory for the list) */
                }
            }
            if (k) {
                pthread_mutex_unlock(&wh->mu);
                for (size_t i = 0; i < k; i++) {
                    gw_stream_wake_direct(wh->wake_v[i]);
                    gw_req_unref(wh->wake_v[i]);
                }
                pthread_mutex_lock(&wh->mu);
            }
        }
        long long now = wh_now_ms();
        if (now >= next_tick) {
            for (wconn *c = wh->conns; c; c = c->next) {
                long long idle = now - atomic_load(&c->last_send_ms);
                /* A suspended connection does not see its peer leave: peek
                 * at idle sockets (EOF = gone, as MHD itself treats a read
                 * of 0 on a live connection). */
                if (wh->o.peer_check_ms && idle >= wh->o.peer_check_ms &&
                    now - atomic_load(&c->last_poll_ms) >= wh->o.peer_check_ms) {
                    atomic_store(&c->last_poll_ms, now);
                    if (gw_req_peer_closed(c->r)) {
                        atomic_store(&c->dead, true);
                        gw_stream_wake(c->r);
                        continue;
                    }
                }
                if (c->sse && wh->o.sse_heartbeat_ms && idle >= wh->o.sse_heartbeat_ms) {
                    if (!atomic_exchange(&c->hb_due, true))
                        gw_stream_wake(c->r);
                }
            }
            unsigned tick = wh_tick_ms;
            if (wh->o.sse_heartbeat_ms && wh->o.sse_heartbeat_ms / 4 < tick)
                tick = wh->o.sse_heartbeat_ms / 4 ? wh->o.sse_heartbeat_ms / 4 : 1;
            next_tick = now + tick;
        }
    }
    pthread_mutex_unlock(&wh->mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* connection lifetime                                                 */

static wconn *wc_new(watch_http *wh, gw_req *r)
{
    wconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->wh = wh;
    c->r = r;
    c->created_id = -1;
    wcover_init(&c->cov);
    sse_buf_init(&c->out);
    atomic_init(&c->hb_due, false);
    atomic_init(&c->ending, false);
    atomic_init(&c->dead, false);
    atomic_init(&c->last_send_ms, wh_now_ms());
    atomic_init(&c->last_poll_ms, wh_now_ms());
    return c;
}

/* Registers c (so shutdown and heartbeats see it) and opens its stream. */
static int wc_open(wconn *c)
{
    watch_http *wh = c->wh;
    pthread_mutex_lock(&wh->mu);
    c->next = wh->conns;
    if (wh->conns)
        wh->conns->prev = c;
    wh->conns = c;
    pthread_mutex_unlock(&wh->mu);
    c->st = watch_stream_new(wh->ws, wake_cb, c);
    return c->st ? 0 : -1;
}

/* The stream's on_close (also used on handler failures after wc_open). */
static void wc_close(void *arg)
{
    wconn *c = arg;
    watch_http *wh = c->wh;
    /* First the stream: after this returns, wake_cb never runs for c. */
    watch_stream_close(c->st);
    c->st = NULL;
    pthread_mutex_lock(&wh->mu);
    c->closed = true;
    if (c->prev)
        c->prev->next = c->next;
    else if (wh->conns == c)
        wh->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->pending) {
        for (wconn **pp = &wh->pending; *pp; pp = &(*pp)->pnext) {
            if (*pp == c) {
                *pp = c->pnext;
                break;
            }
        }
    }
    pthread_mutex_unlock(&wh->mu);
    sse_buf_free(&c->out);
    wcover_free(&c->cov);
    kv_bytes_free(&c->snap_key);
    kv_bytes_free(&c->snap_end);
    kv_range_resp_free(&c->snap_page);
    atomic_fetch_sub(&wh->n_streams, 1);
    free(c);
}

static void on_shutdown(void *arg)
{
    watch_http *wh = arg;
    pthread_mutex_lock(&wh->mu);
    atomic_store(&wh->ending, true);
    for (wconn *c = wh->conns; c; c = c->next) {
        atomic_store(&c->ending, true);
        gw_stream_wake(c->r);
    }
    pthread_mutex_unlock(&wh->mu);
}

/* ------------------------------------------------------------------ */
/* encoding into the output buffer                                     */

/* Per-thread encoding buffers.  A reader runs on one MHD worker thread and
 * uses them only within one call, so the streams of a worker share them:
 * no malloc/free per event and stream (a stream's own buffers were freed
 * every time it went idle, i.e. after nearly every event), and no buffer
 * per idle stream.  Only output MHD could not take yet is copied into the
 * stream's own `out`. */
typedef struct wh_tls {
    gwbuf scratch;
    sse_buf out;
} wh_tls;

static pthread_key_t wh_tls_key;
static pthread_once_t wh_tls_once = PTHREAD_ONCE_INIT;

static void wh_tls_free(void *p)
{
    wh_tls *t = p;
    buf_free(&t->scratch);
    sse_buf_free(&t->out);
    free(t);
}

static void wh_tls_init(void)
{
    (void)pthread_key_create(&wh_tls_key, wh_tls_free);
}

static wh_tls *wh_tls_get(void)
{
    pthread_once(&wh_tls_once, wh_tls_init);
    wh_tls *t = pthread_getspecific(wh_tls_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        sse_buf_init(&t->out);
        if (pthread_setspecific(wh_tls_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    return t;
}

/* scratch -> out, as one JSON line or one SSE message. */
static int emit_json_line(wconn *c)
{
    buf_puts(c->sc, "}\n");
    if (c->sc->failed)
        return -1;
    return sse_buf_append(&c->out, c->sc->p, c->sc->len);
}

static int emit_sse(wconn *c, const char *event, int64_t id)
{
    if (c->sc->failed)
        return -1;
    return sse_frame_message_rev(&c->out, event, id, c->sc->p, c->sc->len);
}

static void scratch_reset(wconn *c)
{
    c->sc->len = 0;
    c->sc->failed = false;
}

/* An event's base64 JSON, encoded once per event (and prev_kv choice) and
 * copied for every watcher that receives it. */
typedef struct wh_enc {
    size_t len;
    char data[];
} wh_enc;

void watch_http_cache_free(void *enc)
{
    free(enc);
}

static void put_event_cached(gwbuf *b, const watch_event *e, bool text, void *ctx)
{
    (void)ctx;
    const wh_enc *enc = text ? NULL : watch_event_cache_get(e);
    if (enc) {
        buf_put(b, enc->data, enc->len);
        return;
    }
    size_t start = b->len;
    wj_put_event(b, e, text);
    if (text || b->failed || b->len - start > wh_cache_max)
        return;
    wh_enc *n = malloc(sizeof *n + (b->len - start));
    if (!n)
        return;
    n->len = b->len - start;
    memcpy(n->data, b->p + start, n->len);
    watch_event_cache_set(e, n); /* ours or an equal winner: nothing to do */
}

/* An event response of a watch that asked for fragment, split as etcd
 * splits it (wj_fragment_end): one JSON line, or one SSE message, per part;
 * on SSE only the last part may carry an id (`id`). */
static int encode_fragments(wconn *c, const watch_response *resp, wj_event_writer put_ev,
                            size_t limit, int64_t id)
{
    watch_http *wh = c->wh;
    for (size_t from = 0; from < resp->n_events;) {
        size_t to = wj_fragment_end(&wh->hdr, resp, limit, from);
        bool more = to < resp->n_events;
        scratch_reset(c);
        if (!c->sse)
            buf_puts(c->sc, "{\"result\":");
        wj_put_response_part(c->sc, &wh->hdr, resp, c->text, put_ev, NULL, from, to, more);
        int rc = c->sse ? emit_sse(c, NULL, more ? -1 : id) : emit_json_line(c);
        if (rc < 0)
            return -1;
        from = to;
    }
    return 0;
}

/* The SSE id of a popped response on a stream of several watches (POST):
 * the revision every watch of the stream has been delivered up to, when
 * that advanced (watch_cover.h); -1: no id line. */
static int64_t multi_id(wconn *c, const watch_response *resp)
{
    wcover_apply(&c->cov, resp);
    return wcover_take_id(&c->cov);
}

/* One popped response -> out.  Returns 0 or -1 (ENOMEM). */
static int encode_response(wconn *c, const watch_response *resp)
{
    watch_http *wh = c->wh;
    scratch_reset(c);
    wj_event_writer put_ev = wh->o.event_cache ? put_event_cached : NULL;
    size_t limit = wh->o.max_request_bytes + 512 * 1024; /* etcd's + grpcOverheadBytes */
    bool frag = c->multi && resp->n_events >= 2 && wh->o.max_request_bytes &&
                wcover_fragment(&c->cov, resp->watch_id) &&
                wj_fragment_needed(&wh->hdr, resp, limit);
    if (!c->sse) {
        if (frag)
            return encode_fragments(c, resp, put_ev, limit, -1);
        buf_puts(c->sc, "{\"result\":");
        if (put_ev)
            wj_put_response_with(c->sc, &wh->hdr, resp, false, put_ev, NULL);
        else
            wj_put_response(c->sc, &wh->hdr, resp, false);
        return emit_json_line(c);
    }
    if (c->multi) {
        int64_t id = multi_id(c, resp);
        if (frag)
            return encode_fragments(c, resp, put_ev, limit, id);
        wj_put_response_with(c->sc, &wh->hdr, resp, c->text, put_ev, NULL);
        const char *event = resp->canceled ? "canceled"
                          : resp->created ? "created"
                          : resp->n_events == 0 ? "progress" : NULL;
        return emit_sse(c, event, id);
    }
    /* one watch (GET): every message's id is that watch's own progress */
    if (put_ev)
        wj_put_response_with(c->sc, &wh->hdr, resp, c->text, put_ev, NULL);
    else
        wj_put_response(c->sc, &wh->hdr, resp, c->text);
    if (resp->created && !resp->canceled) {
        /* progress_rev of a created response: the revision the watch
         * continues after (start - 1, or the current one) */
        int64_t id = c->snap == SNAP_WAIT_CREATED ? -1
                   : c->created_id >= 0 ? c->created_id
                   : resp->progress_rev > 0 ? resp->progress_rev : resp->header_rev;
        if (c->snap == SNAP_WAIT_CREATED)
            c->snap = SNAP_PAGING;
        return emit_sse(c, "created", id);
    }
    if (resp->canceled) {
        c->finish = true;
        return emit_sse(c, "canceled", -1);
    }
    if (resp->n_events == 0) {
        int64_t id = resp->progress_rev > 0 ? resp->progress_rev : resp->header_rev;
        return emit_sse(c, "progress", id);
    }
    int64_t id = resp->progress_rev;
    int64_t last = resp->events[resp->n_events - 1].ev->kv.mod_revision;
    if (id < last)
        id = last;
    return emit_sse(c, NULL, id);
}

/* The next page of the initial snapshot -> out; SNAP_SYNCED at the end. */
static int encode_snapshot_page(wconn *c)
{
    watch_http *wh = c->wh;
    kv_range_resp page = {0};
    if (c->snap_have_page) {
        page = c->snap_page;
        memset(&c->snap_page, 0, sizeof c->snap_page);
        c->snap_have_page = false;
    } else if (c->snap_more) {
        kv_range_req rq = {0};
        int64_t hdr;
        rq.key = c->snap_key;
        rq.range_end = c->snap_end;
        rq.limit = (int64_t)wh->o.snapshot_page;
        rq.revision = c->snap_rev;
        kv_err e = kvstore_range(wh->store, &rq, &page, &hdr);
        if (e != KV_OK) {
            /* compacted past R meanwhile (or I/O): tell the client, end */
            scratch_reset(c);
            watch_response fake = {0};
            fake.watch_id = c->watch_id;
            fake.canceled = true;
            if (e == KV_ERR_COMPACTED)
                fake.compact_rev = kvstore_compact_rev(wh->store);
            else
                fake.cancel_reason = gw_error_from_kv(e).message;
            fake.header_rev = fake.compact_rev ? 0 : c->snap_rev;
            wj_put_response(c->sc, &wh->hdr, &fake, c->text);
            c->finish = true;
            c->snap = SNAP_SYNCED;
            return emit_sse(c, "canceled", -1);
        }
    } else {
        page.more = false;
    }
    int rc = 0;
    if (page.n_kvs) {
        scratch_reset(c);
        wj_put_snapshot(c->sc, &wh->hdr, c->snap_rev, c->watch_id, page.kvs, page.n_kvs,
                        c->text);
        rc = emit_sse(c, NULL, -1);
        /* continue after the last key read */
        const kv_bytes *lk = &page.kvs[page.n_kvs - 1].key;
        uint8_t *p = malloc(lk->len + 1);
        if (!p) {
            rc = -1;
        } else {
            if (lk->len)
                memcpy(p, lk->data, lk->len);
            p[lk->len] = 0;
            kv_bytes_free(&c->snap_key);
            c->snap_key.data = p;
            c->snap_key.len = lk->len + 1;
        }
    }
    c->snap_more = page.more && rc == 0;
    kv_range_resp_free(&page);
    if (rc == 0 && !c->snap_more) {
        scratch_reset(c);
        wj_put_snapshot(c->sc, &wh->hdr, c->snap_rev, c->watch_id, NULL, 0, c->text);
        c->snap = SNAP_SYNCED;
        rc = emit_sse(c, "synced", c->snap_rev);
    }
    return rc;
}

/* Fills out up to about `want` bytes.  Returns -1 on ENOMEM. */
static int fill(wconn *c, size_t want)
{
    watch_http *wh = c->wh;
    if (c->sse && !c->sent_retry) {
        c->sent_retry = true;
        if (wh->o.sse_retry_ms && sse_frame_retry(&c->out, wh->o.sse_retry_ms) < 0)
            return -1;
    }
    while (c->out.len - c->out_off < want && !c->finish) {
        if (c->snap == SNAP_PAGING) {
            if (encode_snapshot_page(c) < 0)
                return -1;
            continue;
        }
        watch_response *resp = watch_stream_pop(c->st);
        if (!resp)
            break;
        int rc = encode_response(c, resp);
        if (resp->n_events)
            atomic_fetch_add_explicit(&c->wh->events_sent, resp->n_events, memory_order_relaxed);
        watch_response_free(resp);
        if (c->sc->cap > wh_buf_max_keep) /* copied into out: no second copy kept */
            buf_free(c->sc);
        if (rc < 0)
            return -1;
        /* JSON framing: one response per HTTP chunk, as etcd sends them;
         * etcd3gw json.loads() each chunk as it arrives. */
        if (!c->sse)
            break;
    }
    if (c->out.len == c->out_off && atomic_exchange(&c->hb_due, false) && c->sse) {
        if (sse_frame_comment(&c->out, "heartbeat") < 0)
            return -1;
    }
    return 0;
}

static ssize_t reader(void *sctx, char *buf, size_t max)
{
    wconn *c = sctx;
    if (atomic_load(&c->dead))
        return GW_STREAM_ERROR;
    if (atomic_load(&c->ending))
        return GW_STREAM_END;
    size_t n = c->out.len - c->out_off;
    if (n) { /* the rest of what MHD could not take before */
        if (n > max)
            n = max;
        memcpy(buf, c->out.data + c->out_off, n);
        c->out_off += n;
        if (c->out_off == c->out.len) {
            c->out.len = c->out_off = 0;
            if (c->out.cap > wh_buf_max_keep)
                sse_buf_free(&c->out);
        }
    } else {
        /* Encode more only once everything encoded is gone: what a stream
         * holds is then one fill (MHD's free space, or one response). */
        if (c->backlog_set) {
            watch_stream_set_backlog(c->st, 0);
            c->backlog_set = false;
        }
        wh_tls *t = wh_tls_get();
        if (!t)
            return GW_STREAM_ERROR;
        sse_buf own = c->out; /* empty; cap 0 unless a small leftover buffer */
        c->out = t->out;
        c->out.len = c->out_off = 0;
        c->sc = &t->scratch;
        int rc = fill(c, max);
        t->out = c->out;
        c->out = own;
        c->out.len = c->out_off = 0;
        c->sc = NULL;
        if (rc < 0)
            return GW_STREAM_ERROR;
        n = t->out.len < max ? t->out.len : max;
        if (n)
            memcpy(buf, t->out.data, n);
        if (t->out.len > n &&
            sse_buf_append(&c->out, t->out.data + n, t->out.len - n) < 0)
            return GW_STREAM_ERROR;
        if (t->out.cap > wh_buf_max_keep)
            sse_buf_free(&t->out);
        if (c->out.len >= wh_backlog_min) {
            watch_stream_set_backlog(c->st, c->out.len);
            c->backlog_set = true;
        }
    }
    if (n == 0) {
        if (c->finish)
            return GW_STREAM_END;
        /* idle: give back the leftover buffer, the connection sleeps */
        if (c->out.cap > wh_buf_keep)
            sse_buf_free(&c->out);
        return 0;
    }
    atomic_store(&c->last_send_ms, wh_now_ms());
    atomic_store(&c->hb_due, false);
    return (ssize_t)n;
}

/* ------------------------------------------------------------------ */
/* handlers                                                            */

static bool wants_sse(gw_req *r)
{
    const char *a = gw_req_header(r, "Accept");
    return a && strcasestr(a, "text/event-stream") != NULL;
}

/* Takes a stream slot; false (and a 429 / 503 reply) when none is left. */
static bool take_slot(watch_http *wh, gw_req *r)
{
    if (atomic_load(&wh->ending)) {
        gw_reply_error(r, 503, GRPC_UNAVAILABLE, "etcdserver: server stopped");
        return false;
    }
    unsigned n = atomic_fetch_add(&wh->n_streams, 1) + 1;
    if (wh->o.max_streams && n > wh->o.max_streams) {
        atomic_fetch_sub(&wh->n_streams, 1);
        atomic_fetch_add_explicit(&wh->refused, 1, memory_order_relaxed);
        /* at most one line per 10 s: a client retrying in a loop at the
         * limit must not flood the log */
        static log_ratelimit rl = LOG_RATELIMIT_INIT;
        uint64_t skipped;
        if (log_ratelimit_allow(&rl, 10000, &skipped))
            log_printf(LOG_WARN, "watch", "stream refused at limit max_streams=%u suppressed=%llu",
                       wh->o.max_streams, (unsigned long long)skipped);
        char msg[96];
        snprintf(msg, sizeof msg, "kvgate: too many watch streams (--max-streams %u)",
                 wh->o.max_streams);
        gw_reply_error(r, 429, GRPC_RESOURCE_EXHAUSTED, msg);
        gw_reply_add_header(r, "Retry-After", "1");
        return false;
    }
    return true;
}

/* 410 Gone: {"error":...,"message":...,"code":11,"compact_revision":"C"} */
static void reply_gone(gw_req *r, int64_t compact_rev)
{
    const char *m = "mvcc: required revision has been compacted";
    gwbuf b = GWBUF_INIT;
    buf_puts(&b, "{\"error\":\"");
    buf_puts(&b, m);
    buf_puts(&b, "\",\"message\":\"");
    buf_puts(&b, m);
    buf_puts(&b, "\",\"code\":11,\"compact_revision\":\"");
    buf_put_i64(&b, compact_rev);
    buf_puts(&b, "\"}");
    gw_reply_json(r, 410, &b);
}

static void sse_headers(gw_req *r)
{
    gw_reply_add_header(r, "Cache-Control", "no-cache");
    gw_reply_add_header(r, "X-Accel-Buffering", "no");
}

/* POST: the body's WatchRequests, JSON lines or (Accept) SSE. */
static void handle_post(gw_req *r, void *ctx)
{
    watch_http *wh = ctx;
    size_t blen;
    const char *body = gw_req_body(r, &blen);
    wj_request *reqs = NULL;
    size_t n = 0;
    char msg[256], *dmsg = NULL;
    bool sse = wants_sse(r);
    if (wj_decode_all(body, blen, &reqs, &n, &dmsg) < 0) { /* a stream's decode error: Unknown */
        gw_reply_error(r, 500, GRPC_UNKNOWN, dmsg ? dmsg : "etcdserver: out of memory");
        free(dmsg);
        return;
    }
    if (wh->o.max_watches_per_stream) {
        /* The whole body is here before the stream starts (http.h), so a
         * body holding more creates than the cap is refused up front, as
         * a bad request, instead of building its watchers first. */
        size_t creates = 0;
        for (size_t i = 0; i < n; i++)
            creates += reqs[i].kind == WJ_CREATE;
        if (creates > wh->o.max_watches_per_stream) {
            wj_requests_free(reqs, n);
            snprintf(msg, sizeof msg,
                     "kvgate: too many watch create requests in one stream (more than %u; "
                     "--max-watches-per-stream)", wh->o.max_watches_per_stream);
            gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, msg);
            return;
        }
    }
    int64_t resume = -1;
    if (sse) {
        const char *leid = gw_req_header(r, "Last-Event-ID");
        int64_t id;
        sse_leid lr = sse_parse_last_event_id(leid, leid ? strlen(leid) : 0, &id);
        if (lr == SSE_LEID_INVALID || (lr == SSE_LEID_OK && sse_resume_start(id) < 0)) {
            wj_requests_free(reqs, n);
            gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, "invalid Last-Event-ID: want a revision");
            return;
        }
        if (lr == SSE_LEID_OK)
            resume = sse_resume_start(id);
        if (resume > 0 && resume - 1 > kvstore_rev(wh->store)) {
            wj_requests_free(reqs, n);
            gw_reply_kv_error(r, KV_ERR_FUTURE_REV);
            return;
        }
        int64_t crev = kvstore_compact_rev(wh->store);
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].kind != WJ_CREATE)
                continue;
            if (resume > 0) /* every watch continues after the id (watch_cover.h) */
                reqs[i].start_revision = wcover_resume_start(reqs[i].start_revision, resume);
            if (reqs[i].start_revision > 0 && reqs[i].start_revision <= crev) {
                wj_requests_free(reqs, n);
                reply_gone(r, crev);
                return;
            }
        }
    }
    if (!take_slot(wh, r)) {
        wj_requests_free(reqs, n);
        return;
    }
    wconn *c = wc_new(wh, r);
    if (c) { /* fixed fields first: the pump reads them once c is registered */
        c->sse = sse;
        c->multi = true;
    }
    if (!c || wc_open(c) < 0) {
        if (c)
            wc_close(c);
        else
            atomic_fetch_sub(&wh->n_streams, 1);
        wj_requests_free(reqs, n);
        gw_reply_error(r, 500, GRPC_INTERNAL, "etcdserver: out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        watch_create_req cr;
        switch (reqs[i].kind) {
        case WJ_CREATE: {
            int64_t id = -1;
            /* read before the watch exists: at most what it continues after */
            int64_t cur = watchable_rev(wh->ws);
            wj_to_create(&reqs[i], &cr);
            if (watch_create(c->st, &cr, &id) == WATCH_OK &&
                (sse || reqs[i].fragment) &&
                wcover_add(&c->cov, id, wcover_create_done(cr.start_revision, cur),
                           reqs[i].fragment) < 0) {
                /* ENOMEM: a watch missing from the table would let ids
                 * overstate the stream, so end it instead */
                wj_requests_free(reqs, n);
                wc_close(c);
                gw_reply_error(r, 500, GRPC_INTERNAL, "etcdserver: out of memory");
                return;
            }
            break;
        }
        case WJ_CANCEL:
            watch_cancel(c->st, reqs[i].cancel_id);
            break;
        case WJ_PROGRESS:
            watch_stream_request_progress(c->st);
            break;
        case WJ_EMPTY:
            break;
        }
    }
    wj_requests_free(reqs, n);
    if (sse) {
        sse_headers(r);
        gw_reply_stream(r, 200, "text/event-stream", reader, c, wc_close);
    } else {
        gw_reply_stream(r, 200, "application/json", reader, c, wc_close);
    }
}

typedef struct query_ctx {
    watch_params *p;
    const char *err;
} query_ctx;

static int query_arg(void *arg, const char *name, const char *value, size_t len)
{
    query_ctx *q = arg;
    return watch_params_add(q->p, name, value, len, &q->err) < 0 ? -1 : 0;
}

/* GET: one watch from the query string, as SSE. */
static void handle_get(gw_req *r, void *ctx)
{
    watch_http *wh = ctx;
    watch_params p;
    const char *err = NULL;
    watch_params_init(&p);
    /* values with their lengths: keys are raw bytes and may hold NUL */
    query_ctx q = {&p, NULL};
    if (gw_req_query_each(r, query_arg, &q) != 0) {
        err = q.err;
        goto bad;
    }
    if (watch_params_finish(&p, &err) < 0)
        goto bad;
    const char *leid = gw_req_header(r, "Last-Event-ID");
    int64_t start;
    bool resumed;
    if (watch_params_start(&p, leid, leid ? strlen(leid) : 0, &start, &resumed, &err) < 0)
        goto bad;
    int64_t crev = kvstore_compact_rev(wh->store);
    if (start > 0 && start <= crev) {
        watch_params_free(&p);
        reply_gone(r, crev);
        return;
    }
    if (resumed && start - 1 > kvstore_rev(wh->store)) {
        /* an id this store never sent (a wiped or restored data dir):
         * waiting for it would silently skip everything up to it */
        watch_params_free(&p);
        gw_reply_kv_error(r, KV_ERR_FUTURE_REV);
        return;
    }
    if (!take_slot(wh, r)) {
        watch_params_free(&p);
        return;
    }
    wconn *c = wc_new(wh, r);
    if (!c) {
        atomic_fetch_sub(&wh->n_streams, 1);
        watch_params_free(&p);
        gw_reply_error(r, 500, GRPC_INTERNAL, "etcdserver: out of memory");
        return;
    }
    c->sse = true;
    c->text = p.text;
    c->watch_id = p.has_watch_id ? p.watch_id : 0;

    if (p.initial && !resumed) {
        /* The snapshot's first page, here, fixes R; the watch starts at R+1. */
        kv_range_req rq = {0};
        int64_t hdr = 0;
        rq.key = p.key;
        rq.range_end = p.range_end;
        rq.limit = (int64_t)wh->o.snapshot_page;
        kv_err e = kvstore_range(wh->store, &rq, &c->snap_page, &hdr);
        if (e != KV_OK) {
            atomic_fetch_sub(&wh->n_streams, 1);
            kv_range_resp_free(&c->snap_page);
            free(c);
            watch_params_free(&p);
            gw_reply_kv_error(r, e);
            return;
        }
        c->snap_have_page = true;
        c->snap_more = c->snap_page.more;
        c->snap_rev = hdr;
        c->snap = SNAP_WAIT_CREATED;
        start = hdr + 1;
        if (kv_bytes_set(&c->snap_end, p.range_end.data, p.range_end.len) < 0)
            c->snap_more = false; /* ENOMEM: the stream ends short, below */
    }
    if (start > 0)
        c->created_id = sse_created_id(start);

    if (wc_open(c) < 0) {
        wc_close(c);
        watch_params_free(&p);
        gw_reply_error(r, 500, GRPC_INTERNAL, "etcdserver: out of memory");
        return;
    }
    watch_create_req cr = {
        .key = p.key.data, .key_len = p.key.len,
        .range_end = p.range_end.data, .range_end_len = p.range_end.len,
        .start_revision = start,
        .watch_id = c->watch_id,
        .filter_noput = p.filter_noput, .filter_nodelete = p.filter_nodelete,
        .prev_kv = p.prev_kv, .progress_notify = p.progress_notify,
    };
    watch_err we = watch_create(c->st, &cr, NULL);
    watch_params_free(&p);
    if (we != WATCH_OK && we != WATCH_ERR_DUPLICATE_ID && we != WATCH_ERR_EMPTY_RANGE) {
        wc_close(c);
        gw_reply_error(r, 500, GRPC_INTERNAL, "etcdserver: out of memory");
        return;
    }
    sse_headers(r);
    gw_reply_stream(r, 200, "text/event-stream", reader, c, wc_close);
    return;
bad:
    watch_params_free(&p);
    gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, err ? err : "invalid watch parameters");
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

watch_http *watch_http_new(kvstore *store, watchable *ws, const ej_header *h,
                           const watch_http_opts *o)
{
    watch_http *wh = calloc(1, sizeof *wh);
    if (!wh)
        return NULL;
    wh->store = store;
    wh->ws = ws;
    wh->hdr = *h;
    if (o)
        wh->o = *o;
    else
        watch_http_opts_default(&wh->o);
    atomic_init(&wh->n_streams, 0);
    atomic_init(&wh->events_sent, 0);
    atomic_init(&wh->refused, 0);
    atomic_init(&wh->ending, false);
    pthread_mutex_init(&wh->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&wh->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&wh->pump, NULL, pump_main, wh) != 0) {
        pthread_cond_destroy(&wh->cond);
        pthread_mutex_destroy(&wh->mu);
        free(wh);
        return NULL;
    }
    return wh;
}

int watch_http_register(gw_server *s, watch_http *wh)
{
    static const char *const paths[] = {"/v3/watch", "/v3beta/watch", "/v3alpha/watch"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (gw_server_route(s, "POST", paths[i], handle_post, wh) < 0 ||
            gw_server_route(s, "GET", paths[i], handle_get, wh) < 0)
            return -1;
    }
    return gw_server_on_shutdown(s, on_shutdown, wh);
}

unsigned watch_http_streams(watch_http *wh)
{
    return atomic_load(&wh->n_streams);
}

uint64_t watch_http_events_sent(watch_http *wh)
{
    return atomic_load_explicit(&wh->events_sent, memory_order_relaxed);
}

uint64_t watch_http_refused(watch_http *wh)
{
    return atomic_load_explicit(&wh->refused, memory_order_relaxed);
}

void watch_http_free(watch_http *wh)
{
    if (!wh)
        return;
    pthread_mutex_lock(&wh->mu);
    wh->stop_pump = true;
    pthread_cond_signal(&wh->cond);
    pthread_mutex_unlock(&wh->mu);
    pthread_join(wh->pump, NULL);
    free(wh->wake_v);
    pthread_cond_destroy(&wh->cond);
    pthread_mutex_destroy(&wh->mu);
    free(wh);
}
