/*
 * errors.h — how a store error or a gateway failure looks on the wire.
 *
 * etcd's JSON gateway (grpc-gateway v1) turns a gRPC status into
 *   HTTP <status>   {"error":"<msg>","message":"<msg>","code":<grpc code>}
 * with grpc-gateway's code->status table (InvalidArgument/OutOfRange/
 * FailedPrecondition 400, NotFound 404, ResourceExhausted 429, Internal/
 * Unknown/DataLoss 500, Unavailable 503, ...).  Messages are etcd's own
 * ("etcdserver: ..."), checked against etcd 3.4.23.
 */
#ifndef KVGATE_ERRORS_H
#define KVGATE_ERRORS_H

#include "buf.h"
#include "kv.h"

/* gRPC status codes used here. */
enum {
    GRPC_OK = 0, GRPC_CANCELED = 1, GRPC_UNKNOWN = 2, GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4, GRPC_NOT_FOUND = 5, GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7, GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9, GRPC_ABORTED = 10, GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12, GRPC_INTERNAL = 13, GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15, GRPC_UNAUTHENTICATED = 16,
};

typedef struct gw_error {
    int http_status;
    int grpc_code;
    const char *message; /* static string */
} gw_error;

/* The wire form of a store error (KV_OK is not an error: {500, 2, ...}). */
gw_error gw_error_from_kv(kv_err e);

/* grpc-gateway v1's HTTPStatusFromCode. */
int gw_http_status_from_grpc(int code);

/* Appends {"error":msg,"message":msg,"code":code} to b. */
void gw_error_body(gwbuf *b, int grpc_code, const char *msg, size_t msg_len);

#endif
