/*
 * kv_http.c — etcd's KV API over HTTP/JSON (see kv_http.h).
 *
 * Request path: body -> ej_decoder (Go-compatible errors, HTTP 400 code 3)
 * -> kv.h request.  Writes then check etcd's raft request size limit
 * ("etcdserver: request is too large", 400 code 3, checked by etcd after
 * its own validation: so not for an empty key), are submitted, and the
 * connection is suspended until kv_done() resumes it.
 */
#include "api_routes.h"
#include "kv_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static void reply_bad_request(gw_req *r, const char *msg)
{
    gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, msg);
}

/* etcd with auth disabled still checks a token sent in an Authorization
 * header (any value, even empty) and finds it invalid: 401 code 16, after
 * the request's validation errors (kv_err given here) and before
 * anything else. */
static void reply_auth(gw_req *r, kv_err validation)
{
    if (validation != KV_OK)
        gw_reply_kv_error(r, validation);
    else
        gw_reply_error(r, 401, GRPC_UNAUTHENTICATED, "etcdserver: invalid auth token");
}

/* ---- --max-key-bytes / --max-value-bytes ---- */

/* NULL when every key, range end (ops and compares) and put value of op is
 * within the limits, else the refusal's message.  Recurses into nested
 * txns: their depth is bounded by --max-json-depth (3 levels per txn). */
static const char *oversized(const kv_http *kh, const kv_op *op)
{
    size_t kmax = kh->max_key_bytes ? kh->max_key_bytes : SIZE_MAX;
    size_t vmax = kh->max_value_bytes ? kh->max_value_bytes : SIZE_MAX;
    static const char key_msg[] = "kvgate: key is too large (--max-key-bytes)";
    switch (op->type) {
    case KV_OP_RANGE:
        return op->u.range.key.len > kmax || op->u.range.range_end.len > kmax ? key_msg : NULL;
    case KV_OP_PUT:
        if (op->u.put.key.len > kmax)
            return key_msg;
        return op->u.put.value.len > vmax ? "kvgate: value is too large (--max-value-bytes)" : NULL;
    case KV_OP_DELETE:
        return op->u.del.key.len > kmax || op->u.del.range_end.len > kmax ? key_msg : NULL;
    case KV_OP_TXN: {
        const kv_txn_req *t = op->u.txn;
        const char *m = NULL;
        if (!t)
            return NULL;
        for (size_t i = 0; !m && i < t->n_compare; i++)
            if (t->compare[i].key.len > kmax || t->compare[i].range_end.len > kmax)
                m = key_msg;
        for (size_t i = 0; !m && i < t->n_success; i++)
            m = oversized(kh, &t->success[i]);
        for (size_t i = 0; !m && i < t->n_failure; i++)
            m = oversized(kh, &t->failure[i]);
        return m;
    }
    }
    return NULL;
}

/* ---- reads ---- */

static void h_range(gw_req *r, void *ctx)
{
    kv_http *kh = ctx;
    size_t len;
    const char *body = gw_req_body(r, &len);
    ej_decoder d;
    kv_range_req req;
    memset(&req, 0, sizeof req);
    if (ej_decoder_init(&d, body, len) != 0 || ej_decode_range(&d, &req) != 0) {
        reply_bad_request(r, d.msg);
        goto out;
    }
    if (kh->max_key_bytes) {
        kv_op one = {.type = KV_OP_RANGE, .u.range = req}; /* borrowed */
        const char *m = oversized(kh, &one);
        if (m) {
            reply_bad_request(r, m);
            goto out;
        }
    }
    if (gw_req_header(r, "Authorization")) {
        kv_request one;
        memset(&one, 0, sizeof one);
        one.kind = KV_REQ_OP;
        one.op.type = KV_OP_RANGE;
        one.op.u.range = req; /* borrowed for the check */
        reply_auth(r, ej_validate(&d, &one, kh->max_txn_ops));
        goto out;
    }
    kv_range_resp resp;
    memset(&resp, 0, sizeof resp);
    int64_t rev = 0;
    kv_err e = kvstore_range(kh->store, &req, &resp, &rev);
    if (e != KV_OK) {
        gw_reply_kv_error(r, e);
    } else {
        gwbuf b = GWBUF_INIT;
        ej_encode_range_resp(&b, &kh->header, rev, &resp);
        gw_reply_json(r, 200, &b);
    }
    kv_range_resp_free(&resp);
out:
    ej_decoder_done(&d);
    kv_range_req_free(&req);
}

/* ---- writes ---- */

static void free_response(void *p) { kv_response_free(p); }

/* Committer thread: stash the response, wake the connection. */
static void kv_done(void *arg, kv_response *resp)
{
    gw_req *r = arg;
    gw_req_set_user(r, resp, free_response);
    gw_req_resume(r);
}

/* MHD thread, after kv_done: encode and answer. */
static void finish(gw_req *r, kv_http *kh, bool compact)
{
    kv_response *resp = gw_req_user(r);
    gw_req_set_user(r, NULL, NULL);
    if (!resp) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    if (resp->err != KV_OK) {
        gw_reply_kv_error(r, resp->err);
    } else {
        gwbuf b = GWBUF_INIT;
        if (compact)
            ej_encode_compact_resp(&b, &kh->header, resp->header_revision);
        else
            ej_encode_op_resp(&b, &kh->header, resp->header_revision, &resp->resp);
        gw_reply_json(r, 200, &b);
    }
    kv_response_free(resp);
}

static void kv_finish(gw_req *r, void *ctx) { finish(r, ctx, false); }
static void kv_finish_compact(gw_req *r, void *ctx) { finish(r, ctx, true); }

static void submit(gw_req *r, kv_http *kh, kv_request *req)
{
    gw_req_suspend(r, req->kind == KV_REQ_COMPACT ? kv_finish_compact : kv_finish);
    kvstore_submit(kh->store, req, kv_done, r);
}

/* A txn whose branches hold only ranges: etcd serves it without raft
 * (isTxnReadonly), so the raft request size limit does not apply to it. */
static bool txn_read_only(const kv_request *req)
{
    if (req->kind != KV_REQ_OP || req->op.type != KV_OP_TXN)
        return false;
    const kv_txn_req *t = req->op.u.txn;
    for (size_t i = 0; i < t->n_success; i++)
        if (t->success[i].type != KV_OP_RANGE)
            return false;
    for (size_t i = 0; i < t->n_failure; i++)
        if (t->failure[i].type != KV_OP_RANGE)
            return false;
    return true;
}

/* Decodes the body into a new request of the given kind; NULL after
 * replying with the error. */
static kv_request *decode_write(gw_req *r, kv_http *kh, int which)
{
    size_t len;
    const char *body = gw_req_body(r, &len);
    ej_decoder d;
    kv_request *req = calloc(1, sizeof *req);
    if (!req) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return NULL;
    }
    int rc = ej_decoder_init(&d, body, len);
    bool key_given = true;
    if (rc == 0) {
        switch (which) {
        case KV_OP_PUT:
            req->kind = KV_REQ_OP;
            req->op.type = KV_OP_PUT;
            rc = ej_decode_put(&d, &req->op.u.put);
            key_given = req->op.u.put.key.len > 0;
            break;
        case KV_OP_DELETE:
            req->kind = KV_REQ_OP;
            req->op.type = KV_OP_DELETE;
            rc = ej_decode_delete(&d, &req->op.u.del);
            key_given = req->op.u.del.key.len > 0;
            break;
        case KV_OP_TXN:
            req->kind = KV_REQ_OP;
            req->op.type = KV_OP_TXN;
            req->op.u.txn = calloc(1, sizeof *req->op.u.txn);
            rc = req->op.u.txn ? ej_decode_txn(&d, req->op.u.txn) : -1;
            if (rc == 0) {
                kv_err e = ej_check_txn(&d, req->op.u.txn, kh->max_txn_ops);
                if (e != KV_OK) {
                    gw_reply_kv_error(r, e);
                    ej_decoder_done(&d);
                    kv_request_free(req);
                    return NULL;
                }
            }
            break;
        default:
            req->kind = KV_REQ_COMPACT;
            rc = ej_decode_compact(&d, &req->compact);
            break;
        }
    }
    if (rc != 0) {
        reply_bad_request(r, d.msg[0] ? d.msg : "etcdserver: out of memory");
        ej_decoder_done(&d);
        kv_request_free(req);
        return NULL;
    }
    const char *big = req->kind == KV_REQ_OP && (kh->max_key_bytes || kh->max_value_bytes)
                          ? oversized(kh, &req->op) : NULL;
    if (big) {
        reply_bad_request(r, big);
        ej_decoder_done(&d);
        kv_request_free(req);
        return NULL;
    }
    if (gw_req_header(r, "Authorization")) {
        reply_auth(r, ej_validate(&d, req, kh->max_txn_ops));
        ej_decoder_done(&d);
        kv_request_free(req);
        return NULL;
    }
    if (key_given && !txn_read_only(req) && ej_raft_request_size(req) > kh->max_request_bytes) {
        reply_bad_request(r, "etcdserver: request is too large");
        ej_decoder_done(&d);
        kv_request_free(req);
        return NULL;
    }
    ej_decoder_done(&d);
    return req;
}

static void h_put(gw_req *r, void *ctx)
{
    kv_request *req = decode_write(r, ctx, KV_OP_PUT);
    if (req)
        submit(r, ctx, req);
}

static void h_delete(gw_req *r, void *ctx)
{
    kv_request *req = decode_write(r, ctx, KV_OP_DELETE);
    if (req)
        submit(r, ctx, req);
}

static void h_txn(gw_req *r, void *ctx)
{
    kv_request *req = decode_write(r, ctx, KV_OP_TXN);
    if (req)
        submit(r, ctx, req);
}

static void h_compact(gw_req *r, void *ctx)
{
    kv_request *req = decode_write(r, ctx, -1);
    if (req)
        submit(r, ctx, req);
}

int kv_http_register(gw_server *s, kv_http *kh)
{
    static const gw_api_route eps[] = {
        {"/kv/range", h_range},
        {"/kv/put", h_put},
        {"/kv/deleterange", h_delete},
        {"/kv/txn", h_txn},
        {"/kv/compaction", h_compact},
    };
    return gw_route_api(s, GW_API_ALL, eps, sizeof eps / sizeof *eps, kh);
}
