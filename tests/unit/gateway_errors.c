/*
 * gateway_errors.c — kv_err -> etcd's wire error.  Messages, codes and HTTP
 * statuses as etcd 3.4.23's gateway answered them.
 */
#include <stdlib.h>

#include "errors.h"
#include "testhelp.h"

int main(void)
{
    TEST("etcd's errors") {
        struct { kv_err e; int status, code; const char *msg; } c[] = {
            {KV_ERR_COMPACTED, 400, 11, "etcdserver: mvcc: required revision has been compacted"},
            {KV_ERR_FUTURE_REV, 400, 11, "etcdserver: mvcc: required revision is a future revision"},
            {KV_ERR_KEY_NOT_FOUND, 400, 3, "etcdserver: key not found"},
            {KV_ERR_EMPTY_KEY, 400, 3, "etcdserver: key is not provided"},
            {KV_ERR_DUPLICATE_KEY, 400, 3, "etcdserver: duplicate key given in txn request"},
            {KV_ERR_TOO_MANY_OPS, 400, 3, "etcdserver: too many operations in txn request"},
            {KV_ERR_VALUE_PROVIDED, 400, 3, "etcdserver: value is provided"},
            {KV_ERR_LEASE_PROVIDED, 400, 3, "etcdserver: lease is provided"},
            {KV_ERR_INVALID_SORT, 400, 3, "etcdserver: invalid sort option"},
            {KV_ERR_LEASE_NOT_FOUND, 404, 5, "etcdserver: requested lease not found"},
            {KV_ERR_LEASE_EXISTS, 412, 9, "etcdserver: lease already exists"},
            {KV_ERR_LEASE_TTL_TOO_LARGE, 400, 11, "etcdserver: too large lease TTL"},
            {KV_ERR_NOSPACE, 507, 8, "etcdserver: mvcc: database space exceeded"},
            {KV_ERR_IO, 500, 13, "etcdserver: storage I/O error"},
            {KV_ERR_CLOSED, 503, 14, "etcdserver: server stopped"},
        };
        for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
            gw_error g = gw_error_from_kv(c[i].e);
            CHECK_EQ_INT(g.http_status, c[i].status);
            CHECK_EQ_INT(g.grpc_code, c[i].code);
            CHECK_EQ_STR(g.message, c[i].msg);
        }
    }
    TEST("grpc-gateway v1 status table") {
        CHECK_EQ_INT(gw_http_status_from_grpc(3), 400);
        CHECK_EQ_INT(gw_http_status_from_grpc(5), 404);
        CHECK_EQ_INT(gw_http_status_from_grpc(8), 429);
        CHECK_EQ_INT(gw_http_status_from_grpc(9), 412);
        CHECK_EQ_INT(gw_http_status_from_grpc(11), 400);
        CHECK_EQ_INT(gw_http_status_from_grpc(14), 503);
        CHECK_EQ_INT(gw_http_status_from_grpc(2), 500);
    }
    TEST("error body shape (etcd: error, message, code; Go escaping)") {
        gwbuf b = GWBUF_INIT;
        const char *m = "etcdserver: key not found";
        gw_error_body(&b, 3, m, strlen(m));
        buf_putc(&b, 0);
        CHECK_EQ_STR(b.p, "{\"error\":\"etcdserver: key not found\",\"message\":\"etcdserver: key not found\",\"code\":3}");
        buf_free(&b);
        const char *q = "unknown value \"<x>\" for enum e";
        gw_error_body(&b, 3, q, strlen(q));
        buf_putc(&b, 0);
        CHECK_EQ_STR(b.p, "{\"error\":\"unknown value \\\"\\u003cx\\u003e\\\" for enum e\",\"message\":"
                          "\"unknown value \\\"\\u003cx\\u003e\\\" for enum e\",\"code\":3}");
        buf_free(&b);
    }
    return TEST_REPORT();
}
