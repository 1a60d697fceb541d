/*
 * kv_types.c — constructors/destructors of the plain data types of kv.h and
 * the names of the store's errors.
 *
 * Why a file of its own: every layer (gateway, watchable store, tests) frees
 * requests and responses; keeping the ownership rules in one place (kv.h:
 * "kv_*_free frees the contents, not the struct, unless it says otherwise")
 * avoids each caller re-deriving them.  All functions accept zeroed structs.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

const char *kv_err_name(kv_err e)
{
    switch (e) {
    case KV_OK: return "KV_OK";
    case KV_ERR_COMPACTED: return "KV_ERR_COMPACTED";
    case KV_ERR_FUTURE_REV: return "KV_ERR_FUTURE_REV";
    case KV_ERR_KEY_NOT_FOUND: return "KV_ERR_KEY_NOT_FOUND";
    case KV_ERR_EMPTY_KEY: return "KV_ERR_EMPTY_KEY";
    case KV_ERR_DUPLICATE_KEY: return "KV_ERR_DUPLICATE_KEY";
    case KV_ERR_TOO_MANY_OPS: return "KV_ERR_TOO_MANY_OPS";
    case KV_ERR_VALUE_PROVIDED: return "KV_ERR_VALUE_PROVIDED";
    case KV_ERR_LEASE_PROVIDED: return "KV_ERR_LEASE_PROVIDED";
    case KV_ERR_INVALID_SORT: return "KV_ERR_INVALID_SORT";
    case KV_ERR_LEASE_NOT_FOUND: return "KV_ERR_LEASE_NOT_FOUND";
    case KV_ERR_LEASE_EXISTS: return "KV_ERR_LEASE_EXISTS";
    case KV_ERR_LEASE_TTL_TOO_LARGE: return "KV_ERR_LEASE_TTL_TOO_LARGE";
    case KV_ERR_NOSPACE: return "KV_ERR_NOSPACE";
    case KV_ERR_IO: return "KV_ERR_IO";
    case KV_ERR_CLOSED: return "KV_ERR_CLOSED";
    case KV_ERR_NOMEM: return "KV_ERR_NOMEM";
    }
    return "KV_ERR_UNKNOWN";
}

void kv_bytes_free(kv_bytes *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

int kv_bytes_set(kv_bytes *b, const void *data, size_t len)
{
    uint8_t *p = NULL;
    if (len) {
        p = malloc(len);
        if (!p)
            return -1;
        memcpy(p, data, len);
    }
    free(b->data);
    b->data = p;
    b->len = len;
    return 0;
}

int kv_mem_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

void kv_keyvalue_free(kv_keyvalue *kv)
{
    if (!kv)
        return;
    kv_bytes_free(&kv->key);
    kv_bytes_free(&kv->value);
}

void kv_range_req_free(kv_range_req *r)
{
    if (!r)
        return;
    kv_bytes_free(&r->key);
    kv_bytes_free(&r->range_end);
}

static void kvs_free(kv_keyvalue *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kv_keyvalue_free(&kvs[i]);
    free(kvs);
}

void kv_range_resp_free(kv_range_resp *r)
{
    if (!r)
        return;
    kvs_free(r->kvs, r->n_kvs);
    r->kvs = NULL;
    r->n_kvs = 0;
}

void kv_put_req_free(kv_put_req *r)
{
    if (!r)
        return;
    kv_bytes_free(&r->key);
    kv_bytes_free(&r->value);
}

void kv_put_resp_free(kv_put_resp *r)
{
    if (!r)
        return;
    if (r->prev_kv) {
        kv_keyvalue_free(r->prev_kv);
        free(r->prev_kv);
        r->prev_kv = NULL;
    }
}

void kv_delete_req_free(kv_delete_req *r)
{
    if (!r)
        return;
    kv_bytes_free(&r->key);
    kv_bytes_free(&r->range_end);
}

void kv_delete_resp_free(kv_delete_resp *r)
{
    if (!r)
        return;
    kvs_free(r->prev_kvs, r->n_prev_kvs);
    r->prev_kvs = NULL;
    r->n_prev_kvs = 0;
}

void kv_compare_free(kv_compare *c)
{
    if (!c)
        return;
    kv_bytes_free(&c->key);
    kv_bytes_free(&c->range_end);
    kv_bytes_free(&c->value);
}

void kv_op_free(kv_op *op)
{
    if (!op)
        return;
    switch (op->type) {
    case KV_OP_RANGE: kv_range_req_free(&op->u.range); break;
    case KV_OP_PUT: kv_put_req_free(&op->u.put); break;
    case KV_OP_DELETE: kv_delete_req_free(&op->u.del); break;
    case KV_OP_TXN: kv_txn_req_free(op->u.txn); op->u.txn = NULL; break;
    }
}

void kv_op_resp_free(kv_op_resp *r)
{
    if (!r)
        return;
    switch (r->type) {
    case KV_OP_RANGE: kv_range_resp_free(&r->u.range); break;
    case KV_OP_PUT: kv_put_resp_free(&r->u.put); break;
    case KV_OP_DELETE: kv_delete_resp_free(&r->u.del); break;
    case KV_OP_TXN: kv_txn_resp_free(r->u.txn); r->u.txn = NULL; break;
    }
}

void kv_txn_req_free(kv_txn_req *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_compare; i++)
        kv_compare_free(&t->compare[i]);
    free(t->compare);
    for (size_t i = 0; i < t->n_success; i++)
        kv_op_free(&t->success[i]);
    free(t->success);
    for (size_t i = 0; i < t->n_failure; i++)
        kv_op_free(&t->failure[i]);
    free(t->failure);
    free(t);
}

void kv_txn_resp_free(kv_txn_resp *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_responses; i++)
        kv_op_resp_free(&t->responses[i]);
    free(t->responses);
    free(t);
}

void kv_request_free(kv_request *r)
{
    if (!r)
        return;
    if (r->kind == KV_REQ_OP)
        kv_op_free(&r->op);
    free(r);
}

void kv_response_free(kv_response *r)
{
    if (!r)
        return;
    kv_op_resp_free(&r->resp); /* zeroed unless the op succeeded */
    free(r);
}

void kv_event_free(kv_event *ev)
{
    if (ev)
        kv_keyvalue_free(&ev->kv);
}

void kv_events_free(kv_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kv_event_free(&evs[i]);
    free(evs);
}
