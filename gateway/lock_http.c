/*
 * lock_http.c — etcd's v3lock gateway (see lock_http.h) and the machinery
 * the election endpoints share: requests that sleep on a store write or a
 * watch, and the manager thread that wakes them.
 *
 * A request that waits (lock, campaign) is an lk_op: its steps run on MHD
 * threads, one at a time (handler, then continuations).  Between steps the
 * connection is suspended and one of these resumes it, exactly once:
 *   - the store's completion callback (lk_submit);
 *   - the manager thread, when the op is "armed" (waiting on its watch):
 *     after the watch layer's wake callback queued it, when the client's
 *     socket is found closed (peeked every lk_tick_ms), or at shutdown.
 * The wake callback runs under the watchable's lock: it only links the op
 * into the pending list; the manager resumes outside lh->mu.
 *
 * Locks: ws->mu (around the wake callbacks) -> lh->mu -> gw_req/MHD.
 * Steps never hold lh->mu while calling watch_* or the store.
 */
#include "api_routes.h"
#include "lock_http.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"

static const unsigned lk_tick_ms = 100; /* peer checks of waiting requests */

struct lk_stream {
    lock_http *lh;
    gw_req *r;
    bool pending, closed;  /* lh->mu */
    atomic_bool ending;    /* shutdown */
    atomic_bool dead;      /* the peer closed */
    lk_stream *next, *prev, *pnext;
};

struct lock_http {
    kvstore *store;
    watchable *ws;
    const ej_header *header;
    size_t max_request_bytes;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    lk_op *ops;            /* every op of a live request */
    lk_op *pending;        /* armed ops whose watch has news */
    lk_stream *streams;
    lk_stream *spending;
    bool stop, ending, started;
    pthread_t thr;
};

const ej_header *lk_header(lock_http *lh) { return lh->header; }
kvstore *lk_store(lock_http *lh) { return lh->store; }
watchable *lk_watchable(lock_http *lh) { return lh->ws; }
size_t lk_max_request_bytes(lock_http *lh) { return lh->max_request_bytes; }

/* ------------------------------------------------------------------ */
/* the manager thread                                                  */

static void *manager_main(void *arg)
{
    lock_http *lh = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&lh->mu);
    while (!lh->stop) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        bool tick = now.tv_sec > next.tv_sec ||
                    (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec);
        if (!lh->pending && !lh->spending && !tick) {
            if (!lh->ops && !lh->streams) /* no request to check: no ticks while idle */
                pthread_cond_wait(&lh->cond, &lh->mu);
            else
                pthread_cond_timedwait(&lh->cond, &lh->mu, &next);
            continue;
        }
        lk_op *resume = NULL;
        for (lk_op *op = lh->pending, *nx; op; op = nx) {
            nx = op->pnext;
            op->pnext = NULL;
            op->pending = false;
            if (op->armed) {
                op->armed = false;
                op->pnext = resume;
                resume = op;
            }
        }
        lh->pending = NULL;
        /* Streams are woken under lh->mu (their on_close takes it before
         * the request goes away); their readers take none of our locks. */
        for (lk_stream *s = lh->spending, *nx; s; s = nx) {
            nx = s->pnext;
            s->pnext = NULL;
            s->pending = false;
            gw_stream_wake(s->r);
        }
        lh->spending = NULL;
        if (tick) {
            for (lk_op *op = lh->ops; op; op = op->next_op) {
                if (op->armed && !op->pending && gw_req_peer_closed(op->r)) {
                    op->canceled = true;
                    op->armed = false;
                    op->pnext = resume;
                    resume = op;
                }
            }
            for (lk_stream *s = lh->streams; s; s = s->next) {
                if (!atomic_load(&s->dead) && gw_req_peer_closed(s->r)) {
                    atomic_store(&s->dead, true);
                    gw_stream_wake(s->r);
                }
            }
            next = now;
            next.tv_nsec += (long)lk_tick_ms * 1000000L;
            if (next.tv_nsec >= 1000000000L) {
                next.tv_sec++;
                next.tv_nsec -= 1000000000L;
            }
        }
        if (resume) {
            /* an op taken out of `armed` is ours to resume: its request
             * sleeps (holding its memory) until we do */
            pthread_mutex_unlock(&lh->mu);
            for (lk_op *op = resume, *nx; op; op = nx) {
                nx = op->pnext;
                op->pnext = NULL;
                gw_req_resume(op->r);
            }
            pthread_mutex_lock(&lh->mu);
        }
    }
    pthread_mutex_unlock(&lh->mu);
    return NULL;
}

/* The watch layer's callback for an op's watch: under ws->mu, cheap. */
static void op_wake_cb(void *arg)
{
    lk_op *op = arg;
    lock_http *lh = op->lh;
    pthread_mutex_lock(&lh->mu);
    if (op->armed && !op->pending) {
        op->pending = true;
        op->pnext = lh->pending;
        lh->pending = op;
        pthread_cond_signal(&lh->cond);
    }
    pthread_mutex_unlock(&lh->mu);
}

static void on_shutdown(void *arg)
{
    lock_http *lh = arg;
    lk_op *resume = NULL;
    pthread_mutex_lock(&lh->mu);
    lh->ending = true;
    for (lk_op *op = lh->ops; op; op = op->next_op) {
        op->canceled = true;
        op->shutdown = true;
        if (op->armed && !op->pending) {
            op->armed = false;
            op->pnext = resume;
            resume = op;
        }
    }
    for (lk_stream *s = lh->streams; s; s = s->next) {
        atomic_store(&s->ending, true);
        gw_stream_wake(s->r);
    }
    pthread_mutex_unlock(&lh->mu);
    for (lk_op *op = resume, *nx; op; op = nx) {
        nx = op->pnext;
        op->pnext = NULL;
        gw_req_resume(op->r);
    }
}

/* ------------------------------------------------------------------ */
/* ops                                                                 */

static void op_free(void *p)
{
    lk_op *op = p;
    lock_http *lh = op->lh;
    pthread_mutex_lock(&lh->mu);
    if (op->registered) {
        if (op->prev_op)
            op->prev_op->next_op = op->next_op;
        else
            lh->ops = op->next_op;
        if (op->next_op)
            op->next_op->prev_op = op->prev_op;
    }
    if (op->pending) {
        for (lk_op **pp = &lh->pending; *pp; pp = &(*pp)->pnext)
            if (*pp == op) {
                *pp = op->pnext;
                break;
            }
    }
    pthread_mutex_unlock(&lh->mu);
    watch_stream_close(op->st); /* after this, op_wake_cb never runs for op */
    kv_response_free(op->resp);
    kv_bytes_free(&op->name);
    kv_bytes_free(&op->value);
    kv_bytes_free(&op->key);
    kv_bytes_free(&op->pfx);
    free(op);
}

lk_op *lk_op_new(lock_http *lh, gw_req *r)
{
    lk_op *op = calloc(1, sizeof *op);
    if (!op) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return NULL;
    }
    op->lh = lh;
    op->r = r;
    pthread_mutex_lock(&lh->mu);
    if (!lh->ops && !lh->streams)
        pthread_cond_signal(&lh->cond); /* the manager ticks again */
    op->registered = true;
    op->next_op = lh->ops;
    if (lh->ops)
        lh->ops->prev_op = op;
    lh->ops = op;
    if (lh->ending)
        op->canceled = op->shutdown = true;
    pthread_mutex_unlock(&lh->mu);
    gw_req_set_user(r, op, op_free);
    return op;
}

bool lk_canceled(lk_op *op)
{
    pthread_mutex_lock(&op->lh->mu);
    bool c = op->canceled;
    pthread_mutex_unlock(&op->lh->mu);
    return c;
}

static void lk_cont(gw_req *r, void *ctx)
{
    (void)ctx;
    lk_op *op = gw_req_user(r);
    if (!op) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    op->next(op);
}

static void submit_cb(void *arg, kv_response *resp)
{
    lk_op *op = arg;
    op->resp = resp;
    gw_req_resume(op->r);
}

void lk_submit(lk_op *op, kv_request *req, lk_step_fn next)
{
    kv_response_free(op->resp);
    op->resp = NULL;
    op->next = next;
    gw_req_suspend(op->r, lk_cont);
    if (!req) { /* out of memory: answer through the same path */
        kv_response *resp = calloc(1, sizeof *resp);
        if (resp)
            resp->err = KV_ERR_NOMEM;
        submit_cb(op, resp);
        return;
    }
    kvstore_submit(op->lh->store, req, submit_cb, op);
}

/* Takes the store's answer; NULL after answering its error. */
kv_response *lk_take_resp(lk_op *op)
{
    kv_response *resp = op->resp;
    op->resp = NULL;
    if (!resp) {
        lk_reply_kv_err(op, KV_ERR_NOMEM);
        return NULL;
    }
    if (resp->err != KV_OK) {
        lk_reply_kv_err(op, resp->err);
        kv_response_free(resp);
        return NULL;
    }
    return resp;
}

/* ---- replies ---- */

void lk_reply_err(lk_op *op, const char *msg)
{
    gw_reply_error(op->r, 500, GRPC_UNKNOWN, msg);
}

void lk_reply_kv_err(lk_op *op, kv_err e)
{
    if (e == KV_ERR_CLOSED) {
        gw_reply_kv_error(op->r, e);
        return;
    }
    lk_reply_err(op, gw_error_from_kv(e).message);
}

void lk_reply_canceled(lk_op *op)
{
    bool shutdown;
    pthread_mutex_lock(&op->lh->mu);
    shutdown = op->shutdown;
    pthread_mutex_unlock(&op->lh->mu);
    if (shutdown)
        gw_reply_kv_error(op->r, KV_ERR_CLOSED);
    else /* nobody reads it: the client left */
        gw_reply_error(op->r, 500, GRPC_CANCELED, "context canceled");
}

void lk_reply_header(lk_op *op, int64_t rev)
{
    gwbuf b = GWBUF_INIT;
    buf_putc(&b, '{');
    ej_put_header(&b, op->lh->header, rev);
    buf_putc(&b, '}');
    gw_reply_json(op->r, 200, &b);
}

/* ---- requests ---- */

int lk_decode(gw_req *r, ej_decoder *d)
{
    size_t len;
    const char *body = gw_req_body(r, &len);
    if (ej_decoder_init(d, body, len) != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d->msg);
        ej_decoder_done(d);
        return -1;
    }
    return 0;
}

int lk_prefix(const kv_bytes *name, kv_bytes *pfx)
{
    kv_bytes_free(pfx);
    pfx->data = malloc(name->len + 1);
    if (!pfx->data)
        return -1;
    if (name->len)
        memcpy(pfx->data, name->data, name->len);
    pfx->data[name->len] = '/';
    pfx->len = name->len + 1;
    return 0;
}

int lk_session_key(const kv_bytes *pfx, int64_t lease, kv_bytes *out)
{
    char hex[24];
    if (lease < 0)
        snprintf(hex, sizeof hex, "-%" PRIx64, (uint64_t)0 - (uint64_t)lease);
    else
        snprintf(hex, sizeof hex, "%" PRIx64, (uint64_t)lease);
    size_t hl = strlen(hex);
    kv_bytes_free(out);
    out->data = malloc(pfx->len + hl);
    if (!out->data)
        return -1;
    if (pfx->len)
        memcpy(out->data, pfx->data, pfx->len);
    memcpy(out->data + pfx->len, hex, hl);
    out->len = pfx->len + hl;
    return 0;
}

/* clientv3.GetPrefixRangeEnd */
static int prefix_end(const kv_bytes *pfx, kv_bytes *end)
{
    for (size_t i = pfx->len; i-- > 0;) {
        if (pfx->data[i] < 0xff) {
            if (kv_bytes_set(end, pfx->data, i + 1) != 0)
                return -1;
            end->data[i]++;
            return 0;
        }
    }
    return kv_bytes_set(end, "", 1);
}

int lk_first_create(const kv_bytes *pfx, int order, int64_t max_create_rev, kv_range_req *out)
{
    memset(out, 0, sizeof *out);
    if (kv_bytes_set(&out->key, pfx->data, pfx->len) != 0 || prefix_end(pfx, &out->range_end) != 0)
        return -1;
    out->sort_order = order;
    out->sort_target = KV_SORT_CREATE;
    out->limit = 1;
    out->max_create_revision = max_create_rev;
    return 0;
}

kv_request *lk_grant_req(int64_t ttl)
{
    kv_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->kind = KV_REQ_LEASE_GRANT;
    req->lease.ttl = ttl;
    return req;
}

kv_request *lk_txn_req(const kv_bytes *key, int64_t create_rev)
{
    kv_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->kind = KV_REQ_OP;
    req->op.type = KV_OP_TXN;
    kv_txn_req *t = req->op.u.txn = calloc(1, sizeof *t);
    if (!t || !(t->compare = calloc(1, sizeof *t->compare))) {
        kv_request_free(req);
        return NULL;
    }
    t->n_compare = 1;
    t->compare[0].result = KV_CMP_EQUAL;
    t->compare[0].target = KV_CMP_CREATE;
    t->compare[0].number = create_rev;
    if (kv_bytes_set(&t->compare[0].key, key->data, key->len) != 0) {
        kv_request_free(req);
        return NULL;
    }
    return req;
}

int lk_txn_add(kv_op **ops, size_t *n, kv_op *op)
{
    kv_op *v = realloc(*ops, (*n + 1) * sizeof *v);
    if (!v) {
        kv_op_free(op);
        return -1;
    }
    v[*n] = *op;
    *ops = v;
    (*n)++;
    memset(op, 0, sizeof *op);
    return 0;
}

/* op set to an empty op of the given type whose key is a copy of key;
 * 0, or -1 with op freed. */
static int key_op(kv_op *op, kv_op_type type, const kv_bytes *key)
{
    memset(op, 0, sizeof *op);
    op->type = type;
    kv_bytes *k = type == KV_OP_PUT ? &op->u.put.key : type == KV_OP_DELETE ? &op->u.del.key : &op->u.range.key;
    if (kv_bytes_set(k, key->data, key->len) != 0) {
        kv_op_free(op);
        return -1;
    }
    return 0;
}

int lk_put_op(kv_op *op, const kv_bytes *key, const kv_bytes *value, int64_t lease)
{
    if (key_op(op, KV_OP_PUT, key) != 0)
        return -1;
    op->u.put.lease = lease;
    if (value && kv_bytes_set(&op->u.put.value, value->data, value->len) != 0) {
        kv_op_free(op);
        return -1;
    }
    return 0;
}

int lk_delete_op(kv_op *op, const kv_bytes *key)
{
    return key_op(op, KV_OP_DELETE, key);
}

int lk_range_key_op(kv_op *op, const kv_bytes *key)
{
    return key_op(op, KV_OP_RANGE, key);
}

bool lk_too_large(lock_http *lh, const kv_request *req)
{
    return req && lh->max_request_bytes && ej_raft_request_size(req) > lh->max_request_bytes;
}

/* ---- sessions ---- */

static void session_granted(lk_op *op)
{
    kv_response *resp = lk_take_resp(op);
    if (!resp)
        return;
    op->lease = resp->lease.id;
    kv_response_free(resp);
    op->then(op);
}

void lk_session(lk_op *op, lk_step_fn next)
{
    if (op->lease != 0) {
        next(op);
        return;
    }
    op->then = next;
    lk_submit(op, lk_grant_req(60), session_granted); /* concurrency's defaultSessionTTL */
}

/* ---- waitDeletes ---- */

static void wd_get(lk_op *op);

/* Suspends until the op's watch has news, the client leaves or the
 * server stops. */
static void wd_arm(lk_op *op, lk_step_fn next)
{
    lock_http *lh = op->lh;
    op->next = next;
    gw_req_suspend(op->r, lk_cont);
    pthread_mutex_lock(&lh->mu);
    bool go = op->canceled;
    op->armed = !go;
    pthread_mutex_unlock(&lh->mu);
    if (!go && watch_stream_queued(op->st) > 0) { /* news before we armed */
        pthread_mutex_lock(&lh->mu);
        go = op->armed;
        op->armed = false;
        pthread_mutex_unlock(&lh->mu);
    }
    if (go)
        gw_req_resume(op->r);
}

static void wd_finish(lk_op *op)
{
    watch_stream_close(op->st);
    op->st = NULL;
    op->wait_done(op);
}

static void wd_watch(lk_op *op)
{
    if (lk_canceled(op)) {
        op->wait_canceled = true;
        wd_finish(op);
        return;
    }
    bool deleted = false;
    watch_response *w;
    while ((w = watch_stream_pop(op->st))) {
        if (w->compact_rev > 0)
            op->wait_err = "etcdserver: mvcc: required revision has been compacted";
        for (size_t i = 0; i < w->n_events; i++)
            if (w->events[i].ev->type == KV_EVENT_DELETE)
                deleted = true;
        watch_response_free(w);
    }
    if (op->wait_err && !deleted) {
        wd_finish(op);
        return;
    }
    if (deleted) {
        op->wait_err = NULL;
        watch_stream_close(op->st);
        op->st = NULL;
        wd_get(op);
        return;
    }
    wd_arm(op, wd_watch);
}

/* key.go's waitDeletes: the newest key under the prefix created at or
 * before max_create_rev; none: done; else wait for its DELETE (watching
 * from the read's revision), and read again. */
static void wd_get(lk_op *op)
{
    lock_http *lh = op->lh;
    kv_range_req q;
    kv_range_resp rr;
    memset(&rr, 0, sizeof rr);
    int64_t rev = 0;
    kv_err e = lk_first_create(&op->pfx, KV_SORT_DESCEND, op->max_create_rev, &q) == 0
                   ? kvstore_range(lh->store, &q, &rr, &rev)
                   : KV_ERR_NOMEM;
    kv_range_req_free(&q);
    if (e != KV_OK) {
        op->wait_err = gw_error_from_kv(e).message;
        kv_range_resp_free(&rr);
        wd_finish(op);
        return;
    }
    if (rr.n_kvs == 0) {
        op->wait_rev = rev;
        kv_range_resp_free(&rr);
        wd_finish(op);
        return;
    }
    op->st = watch_stream_new(lh->ws, op_wake_cb, op);
    watch_create_req wc;
    memset(&wc, 0, sizeof wc);
    wc.key = rr.kvs[0].key.data;
    wc.key_len = rr.kvs[0].key.len;
    wc.start_revision = rev;
    if (!op->st || watch_create(op->st, &wc, NULL) != WATCH_OK) {
        kv_range_resp_free(&rr);
        op->wait_err = "etcdserver: out of memory";
        wd_finish(op);
        return;
    }
    kv_range_resp_free(&rr);
    wd_arm(op, wd_watch);
}

void lk_wait_deletes(lk_op *op, int64_t max_create_rev, lk_step_fn done)
{
    op->max_create_rev = max_create_rev;
    op->wait_done = done;
    op->wait_err = NULL;
    op->wait_canceled = false;
    wd_get(op);
}

/* ------------------------------------------------------------------ */
/* streams (observe)                                                   */

lk_stream *lk_stream_new(lock_http *lh, gw_req *r)
{
    lk_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lh = lh;
    s->r = r;
    atomic_init(&s->ending, false);
    atomic_init(&s->dead, false);
    pthread_mutex_lock(&lh->mu);
    if (lh->ending)
        atomic_store(&s->ending, true);
    if (!lh->ops && !lh->streams)
        pthread_cond_signal(&lh->cond); /* the manager ticks again */
    s->next = lh->streams;
    if (lh->streams)
        lh->streams->prev = s;
    lh->streams = s;
    pthread_mutex_unlock(&lh->mu);
    return s;
}

void lk_stream_wake_cb(void *arg)
{
    lk_stream *s = arg;
    lock_http *lh = s->lh;
    pthread_mutex_lock(&lh->mu);
    if (!s->pending && !s->closed) {
        s->pending = true;
        s->pnext = lh->spending;
        lh->spending = s;
        pthread_cond_signal(&lh->cond);
    }
    pthread_mutex_unlock(&lh->mu);
}

bool lk_stream_ending(lk_stream *s)
{
    return atomic_load(&s->ending) || atomic_load(&s->dead);
}

void lk_stream_free(lk_stream *s)
{
    if (!s)
        return;
    lock_http *lh = s->lh;
    pthread_mutex_lock(&lh->mu);
    s->closed = true;
    if (s->prev)
        s->prev->next = s->next;
    else if (lh->streams == s)
        lh->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->pending) {
        for (lk_stream **pp = &lh->spending; *pp; pp = &(*pp)->pnext)
            if (*pp == s) {
                *pp = s->pnext;
                break;
            }
    }
    pthread_mutex_unlock(&lh->mu);
    free(s);
}

/* ------------------------------------------------------------------ */
/* lock / unlock (v3lock/lock.go over concurrency.Mutex)               */

static void reply_lock(lk_op *op, int64_t rev)
{
    gwbuf b = GWBUF_INIT;
    buf_putc(&b, '{');
    ej_put_header(&b, op->lh->header, rev);
    if (op->key.len) {
        buf_puts(&b, ",\"key\":");
        ej_put_bytes(&b, op->key.data, op->key.len);
    }
    buf_putc(&b, '}');
    gw_reply_json(op->r, 200, &b);
}

void lk_reply_wait_failed(lk_op *op)
{
    kv_response_free(op->resp);
    op->resp = NULL;
    if (op->wait_canceled)
        lk_reply_canceled(op);
    else
        lk_reply_err(op, op->wait_err ? op->wait_err : "etcdserver: out of memory");
}

/* Mutex.Unlock after a failed wait: delete myKey. */
static void lock_release(lk_op *op)
{
    kv_request *req = calloc(1, sizeof *req);
    if (req) {
        req->kind = KV_REQ_OP;
        if (lk_delete_op(&req->op, &op->key) != 0) {
            free(req);
            req = NULL;
        }
    }
    lk_submit(op, req, lk_reply_wait_failed);
}

static void lock_waited(lk_op *op)
{
    if (op->wait_canceled || op->wait_err) {
        lock_release(op);
        return;
    }
    reply_lock(op, op->wait_rev);
}

static void lock_txn_done(lk_op *op)
{
    kv_response *resp = lk_take_resp(op);
    if (!resp)
        return;
    kv_txn_resp *t = resp->resp.type == KV_OP_TXN ? resp->resp.u.txn : NULL;
    if (!t || t->n_responses < 2 || (!t->succeeded && t->responses[0].type != KV_OP_RANGE) ||
        t->responses[1].type != KV_OP_RANGE) {
        kv_response_free(resp);
        lk_reply_err(op, "etcdserver: unexpected txn response");
        return;
    }
    op->my_rev = resp->header_revision;
    if (!t->succeeded && t->responses[0].u.range.n_kvs)
        op->my_rev = t->responses[0].u.range.kvs[0].create_revision;
    const kv_range_resp *owner = &t->responses[1].u.range;
    bool mine = owner->n_kvs == 0 || owner->kvs[0].create_revision == op->my_rev;
    int64_t rev = resp->header_revision;
    kv_response_free(resp);
    if (mine) {
        reply_lock(op, rev);
        return;
    }
    lk_wait_deletes(op, op->my_rev - 1, lock_waited);
}

static void lock_txn(lk_op *op)
{
    if (lk_session_key(&op->pfx, op->lease, &op->key) != 0) {
        lk_reply_kv_err(op, KV_ERR_NOMEM);
        return;
    }
    kv_request *req = lk_txn_req(&op->key, 0);
    if (req) {
        kv_txn_req *t = req->op.u.txn;
        kv_op o;
        kv_range_req owner;
        bool ok = lk_put_op(&o, &op->key, NULL, op->lease) == 0 &&
                  lk_txn_add(&t->success, &t->n_success, &o) == 0;
        ok = ok && lk_first_create(&op->pfx, KV_SORT_ASCEND, 0, &owner) == 0;
        if (ok) {
            memset(&o, 0, sizeof o);
            o.type = KV_OP_RANGE;
            o.u.range = owner;
            ok = lk_txn_add(&t->success, &t->n_success, &o) == 0;
        } else {
            kv_range_req_free(&owner);
        }
        ok = ok && lk_range_key_op(&o, &op->key) == 0 &&
             lk_txn_add(&t->failure, &t->n_failure, &o) == 0;
        ok = ok && lk_first_create(&op->pfx, KV_SORT_ASCEND, 0, &owner) == 0;
        if (ok) {
            memset(&o, 0, sizeof o);
            o.type = KV_OP_RANGE;
            o.u.range = owner;
            ok = lk_txn_add(&t->failure, &t->n_failure, &o) == 0;
        }
        if (!ok) {
            kv_request_free(req);
            req = NULL;
        }
    }
    if (lk_too_large(op->lh, req)) {
        kv_request_free(req);
        lk_reply_err(op, "etcdserver: request is too large");
        return;
    }
    lk_submit(op, req, lock_txn_done);
}

void lk_start_named(gw_req *r, lock_http *lh, bool with_value, lk_step_fn next)
{
    lk_op *op = lk_op_new(lh, r);
    if (!op)
        return;
    ej_decoder d;
    if (lk_decode(r, &d) != 0)
        return;
    int rc = 0;
    if (d.root) {
        rc = ej_obj_bytes(&d, d.root, "name", NULL, &op->name);
        if (rc == 0)
            rc = ej_obj_int64(&d, d.root, "lease", NULL, &op->lease);
        if (rc == 0 && with_value)
            rc = ej_obj_bytes(&d, d.root, "value", NULL, &op->value);
    }
    if (rc != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
        ej_decoder_done(&d);
        return;
    }
    ej_decoder_done(&d);
    if (gw_req_header(r, "Authorization")) {
        lk_reply_err(op, "etcdserver: invalid auth token");
        return;
    }
    if (lk_prefix(&op->name, &op->pfx) != 0) {
        lk_reply_kv_err(op, KV_ERR_NOMEM);
        return;
    }
    lk_session(op, next);
}

static void h_lock(gw_req *r, void *ctx)
{
    lk_start_named(r, ctx, false, lock_txn);
}

static void unlock_done(lk_op *op)
{
    kv_response *resp = lk_take_resp(op);
    if (!resp)
        return;
    lk_reply_header(op, resp->header_revision);
    kv_response_free(resp);
}

static void h_unlock(gw_req *r, void *ctx)
{
    lk_op *op = lk_op_new(ctx, r);
    if (!op)
        return;
    ej_decoder d;
    if (lk_decode(r, &d) != 0)
        return;
    if (d.root && ej_obj_bytes(&d, d.root, "key", NULL, &op->key) != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
        ej_decoder_done(&d);
        return;
    }
    ej_decoder_done(&d);
    if (op->key.len == 0) { /* etcd's request check comes before auth */
        lk_reply_kv_err(op, KV_ERR_EMPTY_KEY);
        return;
    }
    if (gw_req_header(r, "Authorization")) {
        lk_reply_err(op, "etcdserver: invalid auth token");
        return;
    }
    kv_request *req = calloc(1, sizeof *req);
    if (req) {
        req->kind = KV_REQ_OP;
        if (lk_delete_op(&req->op, &op->key) != 0) {
            free(req);
            req = NULL;
        }
    }
    if (lk_too_large(op->lh, req)) {
        kv_request_free(req);
        lk_reply_err(op, "etcdserver: request is too large");
        return;
    }
    lk_submit(op, req, unlock_done);
}

/* ------------------------------------------------------------------ */

lock_http *lock_http_new(kvstore *store, watchable *ws, const ej_header *header,
                         size_t max_request_bytes)
{
    if (!store || !ws || !header)
        return NULL;
    lock_http *lh = calloc(1, sizeof *lh);
    if (!lh)
        return NULL;
    lh->store = store;
    lh->ws = ws;
    lh->header = header;
    lh->max_request_bytes = max_request_bytes;
    pthread_mutex_init(&lh->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&lh->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&lh->thr, NULL, manager_main, lh) != 0) {
        pthread_cond_destroy(&lh->cond);
        pthread_mutex_destroy(&lh->mu);
        free(lh);
        return NULL;
    }
    lh->started = true;
    return lh;
}

int lock_http_register(gw_server *s, lock_http *lh)
{
    /* etcd 3.4 serves v3lock and v3election under /v3 and /v3beta only */
    static const gw_api_route eps[] = {
        {"/lock/lock", h_lock},
        {"/lock/unlock", h_unlock},
    };
    if (gw_route_api(s, GW_API_V3_BETA, eps, sizeof eps / sizeof *eps, lh) != 0)
        return -1;
    if (election_http_register(s, lh) != 0)
        return -1;
    return gw_server_on_shutdown(s, on_shutdown, lh);
}

void lock_http_free(lock_http *lh)
{
    if (!lh)
        return;
    pthread_mutex_lock(&lh->mu);
    lh->stop = true;
    pthread_cond_signal(&lh->cond);
    pthread_mutex_unlock(&lh->mu);
    if (lh->started)
        pthread_join(lh->thr, NULL);
    pthread_cond_destroy(&lh->cond);
    pthread_mutex_destroy(&lh->mu);
    free(lh);
}
