/*
 * election_http.c — etcd's v3election gateway (see lock_http.h): campaign,
 * proclaim, resign and leader as v3election/election.go over
 * clientv3/concurrency's Election (3.4), and observe as a stream of
 * {"result": LeaderResponse} lines.
 *
 * Observe keeps one watch on the whole prefix, created before the first
 * read, instead of etcd's sequence of watches (the prefix until a first
 * put, then the leader's key until its delete, then a new read): the
 * stream's reader replays etcd's loop over those events, skipping what a
 * read already covered, so it never creates a watch from the stream's
 * reader (which may run on the thread that wakes it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_routes.h"
#include "errors.h"
#include "lock_http.h"

static const char no_leader_key[] = "\"leader\" field must be provided";
static const char not_leader[] = "election: not leader";
static const char no_leader[] = "election: no leader";

/* Decodes a LeaderKey {name, key, rev, lease} (proto order). */
static int decode_leader(ej_decoder *d, struct json_t *obj, lk_op *op)
{
    int rc = ej_obj_bytes(d, obj, "name", NULL, &op->name);
    if (rc == 0)
        rc = ej_obj_bytes(d, obj, "key", NULL, &op->key);
    if (rc == 0)
        rc = ej_obj_int64(d, obj, "rev", NULL, &op->rev);
    if (rc == 0)
        rc = ej_obj_int64(d, obj, "lease", NULL, &op->lease);
    return rc;
}

static kv_request *delete_if_leader(const kv_bytes *key, int64_t rev)
{
    kv_request *req = lk_txn_req(key, rev);
    kv_op o;
    if (req && (lk_delete_op(&o, key) != 0 ||
                lk_txn_add(&req->op.u.txn->success, &req->op.u.txn->n_success, &o) != 0)) {
        kv_request_free(req);
        req = NULL;
    }
    return req;
}

static kv_request *put_if_leader(const kv_bytes *key, int64_t rev, const kv_bytes *value,
                                 int64_t lease)
{
    kv_request *req = lk_txn_req(key, rev);
    kv_op o;
    if (req && (lk_put_op(&o, key, value, lease) != 0 ||
                lk_txn_add(&req->op.u.txn->success, &req->op.u.txn->n_success, &o) != 0)) {
        kv_request_free(req);
        req = NULL;
    }
    return req;
}

static bool submit_checked(lk_op *op, kv_request *req, lk_step_fn next)
{
    if (lk_too_large(op->lh, req)) {
        kv_request_free(req);
        lk_reply_err(op, "etcdserver: request is too large");
        return false;
    }
    lk_submit(op, req, next);
    return true;
}

/* ------------------------------------------------------------------ */
/* campaign                                                            */

static void reply_campaign(lk_op *op)
{
    gwbuf b = GWBUF_INIT;
    bool first = true;
    buf_putc(&b, '{');
    ej_put_header(&b, lk_header(op->lh), op->hdr_rev);
    buf_puts(&b, ",\"leader\":{");
    if (op->name.len) {
        buf_puts(&b, "\"name\":");
        ej_put_bytes(&b, op->name.data, op->name.len);
        first = false;
    }
    if (op->key.len) {
        buf_puts(&b, first ? "\"key\":" : ",\"key\":");
        ej_put_bytes(&b, op->key.data, op->key.len);
        first = false;
    }
    ej_put_i64_field(&b, &first, "rev", op->my_rev);
    ej_put_i64_field(&b, &first, "lease", op->lease);
    buf_puts(&b, "}}");
    gw_reply_json(op->r, 200, &b);
}

static void campaign_resign(lk_op *op)
{
    lk_submit(op, delete_if_leader(&op->key, op->my_rev), lk_reply_wait_failed);
}

static void campaign_waited(lk_op *op)
{
    if (op->wait_canceled) { /* ctx canceled: Resign(client.Ctx()) */
        campaign_resign(op);
        return;
    }
    if (op->wait_err) {
        lk_reply_err(op, op->wait_err);
        return;
    }
    reply_campaign(op);
}

static void campaign_proclaimed(lk_op *op)
{
    kv_response *resp = op->resp;
    op->resp = NULL;
    if (!resp || resp->err != KV_OK) { /* Proclaim failed: Resign, return its error */
        op->wait_err = gw_error_from_kv(resp ? resp->err : KV_ERR_NOMEM).message;
        kv_response_free(resp);
        campaign_resign(op);
        return;
    }
    bool ok = resp->resp.type == KV_OP_TXN && resp->resp.u.txn && resp->resp.u.txn->succeeded;
    kv_response_free(resp);
    if (!ok) { /* (etcd's Resign then has no key: nothing to delete) */
        lk_reply_err(op, not_leader);
        return;
    }
    lk_wait_deletes(op, op->my_rev - 1, campaign_waited);
}

static void campaign_txn_done(lk_op *op)
{
    kv_response *resp = lk_take_resp(op);
    if (!resp)
        return;
    kv_txn_resp *t = resp->resp.type == KV_OP_TXN ? resp->resp.u.txn : NULL;
    op->hdr_rev = op->my_rev = resp->header_revision;
    bool proclaim = false;
    if (t && !t->succeeded && t->n_responses && t->responses[0].type == KV_OP_RANGE &&
        t->responses[0].u.range.n_kvs) {
        const kv_keyvalue *kv = &t->responses[0].u.range.kvs[0];
        op->my_rev = kv->create_revision;
        proclaim = kv->value.len != op->value.len ||
                   (kv->value.len && memcmp(kv->value.data, op->value.data, kv->value.len) != 0);
    }
    kv_response_free(resp);
    if (proclaim) {
        submit_checked(op, put_if_leader(&op->key, op->my_rev, &op->value, op->lease),
                       campaign_proclaimed);
        return;
    }
    lk_wait_deletes(op, op->my_rev - 1, campaign_waited);
}

static void campaign_txn(lk_op *op)
{
    if (lk_session_key(&op->pfx, op->lease, &op->key) != 0) {
        lk_reply_kv_err(op, KV_ERR_NOMEM);
        return;
    }
    kv_request *req = put_if_leader(&op->key, 0, &op->value, op->lease);
    kv_op o;
    if (req && (lk_range_key_op(&o, &op->key) != 0 ||
                lk_txn_add(&req->op.u.txn->failure, &req->op.u.txn->n_failure, &o) != 0)) {
        kv_request_free(req);
        req = NULL;
    }
    submit_checked(op, req, campaign_txn_done);
}

static void h_campaign(gw_req *r, void *ctx)
{
    lk_start_named(r, ctx, true, campaign_txn);
}

/* ------------------------------------------------------------------ */
/* proclaim / resign                                                   */

static void proclaim_done(lk_op *op)
{
    kv_response *resp = lk_take_resp(op);
    if (!resp)
        return;
    bool ok = resp->resp.type == KV_OP_TXN && resp->resp.u.txn && resp->resp.u.txn->succeeded;
    int64_t rev = resp->header_revision;
    kv_response_free(resp);
    if (!ok)
        lk_reply_err(op, not_leader);
    else
        lk_reply_header(op, rev);
}

static void resign_done(lk_op *op)
{
    kv_response *resp = lk_take_resp(op);
    if (!resp)
        return;
    lk_reply_header(op, resp->header_revision);
    kv_response_free(resp);
}

static void proclaim_txn(lk_op *op)
{
    if (op->key.len == 0) { /* the txn's put has no key */
        lk_reply_kv_err(op, KV_ERR_EMPTY_KEY);
        return;
    }
    submit_checked(op, put_if_leader(&op->key, op->rev, &op->value, op->lease), proclaim_done);
}

static void resign_txn(lk_op *op)
{
    if (op->key.len == 0) {
        lk_reply_kv_err(op, KV_ERR_EMPTY_KEY);
        return;
    }
    submit_checked(op, delete_if_leader(&op->key, op->rev), resign_done);
}

static void leader_call(gw_req *r, lock_http *lh, bool proclaim)
{
    lk_op *op = lk_op_new(lh, r);
    if (!op)
        return;
    ej_decoder d;
    if (lk_decode(r, &d) != 0)
        return;
    struct json_t *leader = NULL;
    int rc = 0;
    if (d.root) {
        rc = ej_obj_message(&d, d.root, "leader", NULL, &leader);
        if (rc == 0 && leader)
            rc = decode_leader(&d, leader, op);
        if (rc == 0 && proclaim)
            rc = ej_obj_bytes(&d, d.root, "value", NULL, &op->value);
    }
    if (rc != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
        ej_decoder_done(&d);
        return;
    }
    ej_decoder_done(&d);
    if (!leader) {
        lk_reply_err(op, no_leader_key);
        return;
    }
    if (gw_req_header(r, "Authorization")) {
        /* lease 0: the session's grant fails first; else the txn's check
         * of an empty key comes before auth */
        if (op->lease != 0 && op->key.len == 0)
            lk_reply_kv_err(op, KV_ERR_EMPTY_KEY);
        else
            lk_reply_err(op, "etcdserver: invalid auth token");
        return;
    }
    lk_session(op, proclaim ? proclaim_txn : resign_txn);
}

static void h_proclaim(gw_req *r, void *ctx) { leader_call(r, ctx, true); }
static void h_resign(gw_req *r, void *ctx) { leader_call(r, ctx, false); }

/* ------------------------------------------------------------------ */
/* leader                                                              */

static void put_leader_resp(gwbuf *b, const ej_header *h, int64_t rev, const kv_keyvalue *kv)
{
    buf_putc(b, '{');
    ej_put_header(b, h, rev);
    buf_puts(b, ",\"kv\":");
    ej_put_kv(b, kv);
    buf_putc(b, '}');
}

/* The first-created key under pfx at the current revision. */
static kv_err first_key(lock_http *lh, const kv_bytes *pfx, kv_range_resp *rr, int64_t *rev)
{
    kv_range_req q;
    memset(rr, 0, sizeof *rr);
    kv_err e = lk_first_create(pfx, KV_SORT_ASCEND, 0, &q) == 0
                   ? kvstore_range(lk_store(lh), &q, rr, rev)
                   : KV_ERR_NOMEM;
    kv_range_req_free(&q);
    return e;
}

static int decode_name(gw_req *r, kv_bytes *name)
{
    ej_decoder d;
    if (lk_decode(r, &d) != 0)
        return -1;
    if (d.root && ej_obj_bytes(&d, d.root, "name", NULL, name) != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
        ej_decoder_done(&d);
        return -1;
    }
    ej_decoder_done(&d);
    return 0;
}

static void h_leader(gw_req *r, void *ctx)
{
    lock_http *lh = ctx;
    kv_bytes name = {0}, pfx = {0};
    if (decode_name(r, &name) != 0) {
        kv_bytes_free(&name);
        return;
    }
    if (gw_req_header(r, "Authorization")) {
        kv_bytes_free(&name);
        gw_reply_error(r, 500, GRPC_UNKNOWN, "etcdserver: invalid auth token");
        return;
    }
    kv_range_resp rr;
    int64_t rev = 0;
    kv_err e = lk_prefix(&name, &pfx) == 0 ? first_key(lh, &pfx, &rr, &rev) : KV_ERR_NOMEM;
    kv_bytes_free(&name);
    kv_bytes_free(&pfx);
    if (e != KV_OK) {
        gw_reply_error(r, 500, GRPC_UNKNOWN, gw_error_from_kv(e).message);
        return;
    }
    if (rr.n_kvs == 0) {
        gw_reply_error(r, 500, GRPC_UNKNOWN, no_leader);
    } else {
        gwbuf b = GWBUF_INIT;
        put_leader_resp(&b, lk_header(lh), rev, &rr.kvs[0]);
        gw_reply_json(r, 200, &b);
    }
    kv_range_resp_free(&rr);
}

/* ------------------------------------------------------------------ */
/* observe                                                             */

typedef struct observer {
    lock_http *lh;
    lk_stream *ls;
    watch_stream *st;
    kv_bytes pfx;
    bool have_leader;      /* else: waiting for a first put under pfx */
    kv_bytes leader;       /* the leader's key */
    int64_t seen;          /* events at or below this revision are covered */
    bool over;             /* the watch was canceled: end */
    gwbuf out;
    size_t off;
} observer;

static void obs_emit(observer *o, int64_t rev, const kv_keyvalue *kv)
{
    buf_puts(&o->out, "{\"result\":");
    put_leader_resp(&o->out, lk_header(o->lh), rev, kv);
    buf_puts(&o->out, "}\n");
}

static bool same_bytes(const kv_bytes *a, const kv_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* election.go's observe loop, top: read the first-created key; emit it
 * and follow it, or wait for a first put. */
static void obs_find(observer *o)
{
    kv_range_resp rr;
    int64_t rev = 0;
    if (first_key(o->lh, &o->pfx, &rr, &rev) != KV_OK) {
        o->over = true;
        return;
    }
    o->seen = rev;
    if (rr.n_kvs) {
        obs_emit(o, rev, &rr.kvs[0]);
        o->have_leader = kv_bytes_set(&o->leader, rr.kvs[0].key.data, rr.kvs[0].key.len) == 0;
        if (!o->have_leader)
            o->over = true;
    } else {
        o->have_leader = false;
    }
    kv_range_resp_free(&rr);
}

static void obs_process(observer *o, watch_response *w)
{
    if (w->canceled || w->compact_rev > 0) {
        o->over = true;
        return;
    }
    for (size_t i = 0; i < w->n_events && !o->over; i++) {
        const kv_event *ev = w->events[i].ev;
        int64_t rev = ev->kv.mod_revision;
        if (rev <= o->seen)
            continue;
        if (!o->have_leader) {
            if (ev->type != KV_EVENT_PUT)
                continue;
            /* the first put: header revision = its revision */
            obs_emit(o, rev, &ev->kv);
            o->have_leader = kv_bytes_set(&o->leader, ev->kv.key.data, ev->kv.key.len) == 0;
            if (!o->have_leader)
                o->over = true;
            o->seen = rev;
            continue;
        }
        if (!same_bytes(&ev->kv.key, &o->leader))
            continue;
        if (ev->type == KV_EVENT_DELETE) {
            kv_bytes_free(&o->leader);
            o->have_leader = false;
            obs_find(o);
            continue;
        }
        obs_emit(o, w->header_rev, &ev->kv);
    }
}

static ssize_t obs_read(void *sctx, char *buf, size_t max)
{
    observer *o = sctx;
    for (;;) {
        if (o->out.failed)
            return GW_STREAM_ERROR;
        size_t n = o->out.len - o->off;
        if (n) {
            if (n > max)
                n = max;
            memcpy(buf, o->out.p + o->off, n);
            o->off += n;
            if (o->off == o->out.len)
                o->out.len = o->off = 0;
            return (ssize_t)n;
        }
        if (o->over)
            return GW_STREAM_END;
        if (lk_stream_ending(o->ls))
            return GW_STREAM_END;
        watch_response *w = watch_stream_pop(o->st);
        if (!w)
            return 0;
        obs_process(o, w);
        watch_response_free(w);
    }
}

static void obs_free(observer *o)
{
    watch_stream_close(o->st); /* first: then no wake-up comes any more */
    lk_stream_free(o->ls);
    kv_bytes_free(&o->pfx);
    kv_bytes_free(&o->leader);
    buf_free(&o->out);
    free(o);
}

static void obs_close(void *sctx) { obs_free(sctx); }

static void h_observe(gw_req *r, void *ctx)
{
    lock_http *lh = ctx;
    kv_bytes name = {0};
    if (decode_name(r, &name) != 0) {
        kv_bytes_free(&name);
        return;
    }
    observer *o = calloc(1, sizeof *o);
    if (!o || lk_prefix(&name, &o->pfx) != 0 || !(o->ls = lk_stream_new(lh, r))) {
        kv_bytes_free(&name);
        if (o) {
            kv_bytes_free(&o->pfx);
            free(o);
        }
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    kv_bytes_free(&name);
    o->lh = lh;
    o->out = (gwbuf)GWBUF_INIT;
    /* the watch first, from now: the read below covers what came before */
    o->st = watch_stream_new(lk_watchable(lh), lk_stream_wake_cb, o->ls);
    kv_range_req q;
    watch_create_req wc;
    memset(&wc, 0, sizeof wc);
    if (!o->st || lk_first_create(&o->pfx, KV_SORT_ASCEND, 0, &q) != 0) {
        obs_free(o);
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    wc.key = q.key.data;
    wc.key_len = q.key.len;
    wc.range_end = q.range_end.data;
    wc.range_end_len = q.range_end.len;
    watch_err we = watch_create(o->st, &wc, NULL);
    kv_range_req_free(&q);
    if (we != WATCH_OK) {
        obs_free(o);
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    obs_find(o);
    gw_reply_stream(r, 200, "application/json", obs_read, o, obs_close);
}

int election_http_register(gw_server *s, lock_http *lh)
{
    static const gw_api_route eps[] = {
        {"/election/campaign", h_campaign},
        {"/election/proclaim", h_proclaim},
        {"/election/leader", h_leader},
        {"/election/observe", h_observe},
        {"/election/resign", h_resign},
    };
    return gw_route_api(s, GW_API_V3_BETA, eps, sizeof eps / sizeof *eps, lh);
}
