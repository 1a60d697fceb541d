/*
 * errors.c — kv_err -> etcd's gRPC status and HTTP status (see errors.h).
 * Each entry was compared with etcd 3.4.23's gateway answer where etcd can
 * produce it; the disk-full, I/O and shutdown cases are kvgate's own.
 */
#include "errors.h"

int gw_http_status_from_grpc(int code)
{
    switch (code) {
    case GRPC_OK: return 200;
    case GRPC_CANCELED: return 408;
    case GRPC_UNKNOWN: return 500;
    case GRPC_INVALID_ARGUMENT: return 400;
    case GRPC_DEADLINE_EXCEEDED: return 504;
    case GRPC_NOT_FOUND: return 404;
    case GRPC_ALREADY_EXISTS: return 409;
    case GRPC_PERMISSION_DENIED: return 403;
    case GRPC_UNAUTHENTICATED: return 401;
    case GRPC_RESOURCE_EXHAUSTED: return 429;
    case GRPC_FAILED_PRECONDITION: return 412; /* etcd 3.4.23 answers a duplicate lease 412 */
    case GRPC_ABORTED: return 409;
    case GRPC_OUT_OF_RANGE: return 400;
    case GRPC_UNIMPLEMENTED: return 501;
    case GRPC_INTERNAL: return 500;
    case GRPC_UNAVAILABLE: return 503;
    case GRPC_DATA_LOSS: return 500;
    default: return 500;
    }
}

gw_error gw_error_from_kv(kv_err e)
{
    gw_error r = {0, GRPC_UNKNOWN, "etcdserver: unknown error"};
    switch (e) {
    case KV_OK:
        break;
    case KV_ERR_COMPACTED:
        r.grpc_code = GRPC_OUT_OF_RANGE;
        r.message = "etcdserver: mvcc: required revision has been compacted";
        break;
    case KV_ERR_FUTURE_REV:
        r.grpc_code = GRPC_OUT_OF_RANGE;
        r.message = "etcdserver: mvcc: required revision is a future revision";
        break;
    case KV_ERR_KEY_NOT_FOUND:
        r.grpc_code = GRPC_INVALID_ARGUMENT;
        r.message = "etcdserver: key not found";
        break;
    case KV_ERR_EMPTY_KEY:
        r.grpc_code = GRPC_INVALID_ARGUMENT;
        r.message = "etcdserver: key is not provided";
        break;
    case KV_ERR_DUPLICATE_KEY:
        r.grpc_code = GRPC_INVALID_ARGUMENT;
        r.message = "etcdserver: duplicate key given in txn request";
        break;
    case KV_ERR_TOO_MANY_OPS:
        r.grpc_code = GRPC_INVALID_ARGUMENT;
        r.message = "etcdserver: too many operations in txn request";
        break;
    case KV_ERR_VALUE_PROVIDED:
        r.grpc_code = GRPC_INVALID_ARGUMENT;
        r.message = "etcdserver: value is provided";
        break;
    case KV_ERR_LEASE_PROVIDED:
        r.grpc_code = GRPC_INVALID_ARGUMENT;
        r.message = "etcdserver: lease is provided";
        break;
    case KV_ERR_INVALID_SORT:
        /* etcd 3.4 panics on an unknown sort target; 3.5 answers this. */
        r.grpc_code = GRPC_INVALID_ARGUMENT;
        r.message = "etcdserver: invalid sort option";
        break;
    case KV_ERR_LEASE_NOT_FOUND:
        r.grpc_code = GRPC_NOT_FOUND;
        r.message = "etcdserver: requested lease not found";
        break;
    case KV_ERR_LEASE_EXISTS:
        r.grpc_code = GRPC_FAILED_PRECONDITION;
        r.message = "etcdserver: lease already exists";
        break;
    case KV_ERR_LEASE_TTL_TOO_LARGE:
        r.grpc_code = GRPC_OUT_OF_RANGE;
        r.message = "etcdserver: too large lease TTL";
        break;
    case KV_ERR_NOSPACE:
        /* etcd's quota error text (clients match on it), but a 5xx:
         * kvgate's cause is a full disk, not a quota. */
        r.grpc_code = GRPC_RESOURCE_EXHAUSTED;
        r.message = "etcdserver: mvcc: database space exceeded";
        r.http_status = 507;
        break;
    case KV_ERR_IO:
        r.grpc_code = GRPC_INTERNAL;
        r.message = "etcdserver: storage I/O error";
        break;
    case KV_ERR_CLOSED:
        r.grpc_code = GRPC_UNAVAILABLE;
        r.message = "etcdserver: server stopped";
        break;
    case KV_ERR_NOMEM:
        r.grpc_code = GRPC_INTERNAL;
        r.message = "etcdserver: out of memory";
        break;
    }
    if (!r.http_status)
        r.http_status = gw_http_status_from_grpc(r.grpc_code);
    return r;
}

void gw_error_body(gwbuf *b, int grpc_code, const char *msg, size_t msg_len)
{
    buf_puts(b, "{\"error\":");
    buf_put_json_str(b, msg, msg_len);
    buf_puts(b, ",\"message\":");
    buf_put_json_str(b, msg, msg_len);
    buf_puts(b, ",\"code\":");
    buf_put_i64(b, grpc_code);
    buf_putc(b, '}');
}
