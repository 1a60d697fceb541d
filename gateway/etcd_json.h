/*
 * etcd_json.h — etcd v3 KV messages <-> JSON, exactly as etcd 3.4's gateway
 * (grpc-gateway v1, golang/protobuf jsonpb with OrigName) reads and writes
 * them.  Facts verified against etcd 3.4.23:
 *
 * Input (request bodies)
 *   - The body's first JSON value is used; anything after it is ignored
 *     ('{"key":"Zm9v"} x' works).  An empty body or `null` is an empty
 *     request.  Syntax errors give Go's scanner message (gojson.h).
 *   - Field names: proto name or lowerCamelCase ("range_end"/"rangeEnd"; if
 *     both, camel wins).  Unknown fields ignored.  Duplicate keys: the last
 *     wins.  A null field is unset.
 *   - int64: a JSON integer (-0 too), or a string holding one (" 5" ok;
 *     "5.5", "1e2", "+5", "0x5", "" rejected with Go's texts, e.g.
 *     "json: cannot unmarshal number 5.5 into Go value of type int64").
 *     A string's raw text is parsed, escapes kept ("\u0031" is refused:
 *     invalid character '\\' looking for beginning of value).  Messages
 *     quote the whole literal, however long (600 digits: all of them).
 *   - bytes: padded standard base64 in a string (b64.h); otherwise
 *     "json: cannot unmarshal number into Go value of type []uint8".
 *   - bool: only true/false ("json: cannot unmarshal string into Go value
 *     of type bool").
 *   - enums: the exact upper-case name (raw text: "\u0041SCEND" is no
 *     name) or any int32; else `unknown value "x" for enum
 *     etcdserverpb.RangeRequest_SortOrder`, the raw text whole in Go's %q
 *     (gojson_quote).
 *   - uint64 (AlarmRequest.memberID): as int64 up to 2^64-1; a negative
 *     number, -0 included, is refused.
 *   - A message that is not an object: "json: cannot unmarshal array into
 *     Go value of type map[string]json.RawMessage"; a repeated field that is
 *     not an array: "... object into Go value of type []json.RawMessage".
 *   All of these are HTTP 400, gRPC code 3.
 *
 * Output (response bodies)
 *   - Proto field order, snake_case names, default values omitted (0, false,
 *     empty bytes, empty lists), int64/uint64 as decimal strings, bytes as
 *     padded base64.  The top-level header carries cluster_id, member_id,
 *     revision, raft_term; the headers of responses nested in a txn carry
 *     only revision ({"revision":"3"}, or {} when 0).
 *
 * Ownership: decoders fill caller-provided structs whose kv_bytes they
 * allocate (free with the kv.h *_free functions, also after a failure);
 * encoders append to a gwbuf.
 */
#ifndef KVGATE_ETCD_JSON_H
#define KVGATE_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "gojson.h"
#include "kv.h"

/* ---- decoding ---- */

/* A span of the body: a number literal or the text between a string's
 * quotes, as it was on the wire. */
typedef struct ej_span {
    size_t off, len;
} ej_span;

typedef struct ej_decoder {
    const char *body;    /* borrowed: the request body */
    size_t body_len;
    gojson_scan scan;    /* Go's view of the body */
    /* The error message when a call fails ("" before): any length (it may
     * quote a whole literal of the body, as Go does).  Set only through
     * ej_errf; valid until ej_decoder_done, which frees it. */
    const char *msg;
    bool msg_owned;
    void *root;          /* json_t *: the parsed object, or NULL (empty request) */
    const kv_op **empty_ops; /* RequestOps that set no request (etcd: key not found) */
    size_t n_empty_ops;
    /* When the body holds a number jansson cannot hold as Go would (not an
     * int64), an escape or invalid UTF-8, root is parsed from a sanitized
     * copy ("marked"): number literal k that is not an int64 is the
     * sentinel real for k, standing for body[nums[k]]; every string value
     * (not object keys) starts with "k:", its raw text being body[strs[k]]
     * (jsonpb hands int64 and enum fields the raw bytes, escapes kept). */
    bool marked;
    ej_span *nums, *strs;
    size_t n_nums, n_strs;
} ej_decoder;

/* Scans and parses body.  0 on success (d->root may be NULL: empty
 * request), -1 with d->msg.  Always pair with ej_decoder_done(). */
int ej_decoder_init(ej_decoder *d, const char *body, size_t len);
void ej_decoder_done(ej_decoder *d);

/* Sets d->msg (printf format, any length; "etcdserver: out of memory" if
 * it cannot be allocated).  Returns -1. */
int ej_errf(ej_decoder *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Decode the parsed body as the given request.  0 or -1 with d->msg; the
 * output struct must start zeroed and must be freed by the caller either
 * way (kv_range_req_free etc.). */
int ej_decode_range(ej_decoder *d, kv_range_req *out);
int ej_decode_put(ej_decoder *d, kv_put_req *out);
int ej_decode_delete(ej_decoder *d, kv_delete_req *out);
int ej_decode_txn(ej_decoder *d, kv_txn_req *out);
int ej_decode_compact(ej_decoder *d, kv_compact_req *out);

/* etcd's checkTxnRequest, for a txn holding empty RequestOps (which kv.h
 * cannot express; etcd answers "key not found" for them, after the checks
 * that come first in its order).  KV_OK when d saw no empty op. */
kv_err ej_check_txn(const ej_decoder *d, const kv_txn_req *t, size_t max_txn_ops);

/* etcd's request validation in its gRPC layer (v3rpc/key.go), which runs
 * before auth: empty keys, value/lease provided, too many ops, empty ops,
 * duplicate keys in a txn branch.  For answers the gateway gives before
 * the store sees the request.  d: the decoder that produced req. */
kv_err ej_validate(const ej_decoder *d, const kv_request *req, size_t max_txn_ops);

/* The size etcd's server checks against --max-request-bytes: the
 * protobuf encoding of the InternalRaftRequest carrying `req` (a put,
 * delete range, txn or compaction) with its 13-byte request header. */
size_t ej_raft_request_size(const kv_request *req);

/* Parses an int64 written as the contents of a JSON string, as jsonpb does
 * (the raw text between the quotes, escapes kept, is parsed as a JSON
 * number).  0 or -1 with an etcd error message in d->msg (any length).
 * d needs no ej_decoder_init for this; zero it and ej_decoder_done it. */
int ej_parse_int64(ej_decoder *d, const char *s, size_t n, int64_t *out);
/* The same with the message copied (truncated) into msg[0..msglen). */
int ej_parse_int64_text(const char *s, size_t n, int64_t *out, char *msg, size_t msglen);

/* One scalar field of the parsed body (any message: lease, maintenance
 * requests), with the same Go-compatible checks and texts as above.  camel
 * may be NULL when the JSON name equals the proto name ("ID", "TTL").
 * An absent or null field leaves *out unchanged.  0 or -1 with d->msg. */
int ej_get_int64(ej_decoder *d, const char *orig, const char *camel, int64_t *out);
/* A uint64 field (Go's texts name uint64; a negative number is refused). */
int ej_get_uint64(ej_decoder *d, const char *orig, const char *camel, uint64_t *out);
int ej_get_bool(ej_decoder *d, const char *orig, const char *camel, bool *out);
/* An enum field: one of names[0..n) or any int32; go_type names it in the
 * errors ("etcdserverpb.AlarmType"). */
int ej_get_enum(ej_decoder *d, const char *orig, const char *camel, const char *go_type,
                const char *const *names, int n, int *out);

/* The same on any object of the parsed tree (obj: a json_t * object of
 * d->root), for the other decoders (watch_json.c).  ej_obj_message: a
 * nested message, *out NULL when absent or null. */
struct json_t;
int ej_obj_int64(ej_decoder *d, struct json_t *obj, const char *orig, const char *camel, int64_t *out);
int ej_obj_bool(ej_decoder *d, struct json_t *obj, const char *orig, const char *camel, bool *out);
int ej_obj_bytes(ej_decoder *d, struct json_t *obj, const char *orig, const char *camel, kv_bytes *out);
int ej_obj_message(ej_decoder *d, struct json_t *obj, const char *orig, const char *camel,
                   struct json_t **out);
/* One enum value v (not null; e.g. an element of a repeated enum). */
int ej_enum_value(ej_decoder *d, struct json_t *v, const char *go_type, const char *const *names,
                  int n, int *out);

/* ---- encoding ---- */

typedef struct ej_header {
    uint64_t cluster_id, member_id, raft_term;
} ej_header;

/* "header":{...} for a top-level response (no braces around). */
void ej_put_header(gwbuf *b, const ej_header *h, int64_t revision);
/* One KeyValue object. */
void ej_put_kv(gwbuf *b, const kv_keyvalue *kv);
/* Go's name for a JSON value's kind, as in its UnmarshalTypeError texts
 * ("object", "array", "string", "number", "bool", "null"); static. */
const char *ej_go_kind(const struct json_t *v);
/* `,"name":"v"` (no comma before the first field; *first tracks it);
 * nothing when v is 0, as etcd omits defaults. */
void ej_put_i64_field(gwbuf *b, bool *first, const char *name, int64_t v);
/* A base64 JSON string (with quotes). */
void ej_put_bytes(gwbuf *b, const uint8_t *p, size_t n);

/* Whole response bodies. */
void ej_encode_range_resp(gwbuf *b, const ej_header *h, int64_t rev, const kv_range_resp *r);
void ej_encode_op_resp(gwbuf *b, const ej_header *h, int64_t rev, const kv_op_resp *r);
void ej_encode_compact_resp(gwbuf *b, const ej_header *h, int64_t rev);

#endif
