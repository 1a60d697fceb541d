/*
 * watch_json.h — etcd's WatchRequest / WatchResponse <-> JSON, as etcd
 * 3.4's gateway reads and writes them on POST /v3/watch (pure: buffers in,
 * results out; no sockets).
 *
 * Facts observed on etcd 3.4.23 (tests/diff/test_watch_diff.py checks them):
 *
 * Request bodies
 *   - The body is a sequence of WatchRequest JSON values (Go's json.Decoder
 *     loop: whitespace between them optional).  The first value decides:
 *     bad syntax or a bad field there is HTTP 500 {"error":m,"message":m,
 *     "code":2} (the stream's decode error is not InvalidArgument, unlike
 *     the unary KV calls).  A bad value after a good one silently ends the
 *     list: the requests before it are served, the stream stays open.
 *   - `null`, `{}` and an empty body are empty requests: nothing happens.
 *   - The request_union oneof: the first of create_request /
 *     cancel_request / progress_request in document order wins.
 *   - Field names as the unary calls (proto name or lowerCamelCase),
 *     int64 as number or string, bytes as padded base64; filters is an
 *     array of NOPUT/NODELETE names or numbers (unknown numbers accepted and
 *     ignored, unknown names refused).
 *
 * Responses (one per line: {"result":<WatchResponse>}\n)
 *   - Proto field order: header, watch_id, created, canceled,
 *     compact_revision, cancel_reason, fragment, events; defaults omitted.
 *   - Event: {"type":"DELETE","kv":{..},"prev_kv":{..}}; PUT has no type.
 *   - A compacted cancel has a header without revision.
 *
 * SSE data (encoding=text): the same WatchResponse object, without the
 * "result" wrapper; with text = true, keys and values are JSON strings of
 * their UTF-8 text instead of base64, and a key or value that is not valid
 * UTF-8 is sent as base64 under "key_base64" / "value_base64" instead, so
 * nothing is ever lost or mangled.
 *
 * Ownership: wj_decode_requests returns a new malloc'd array the caller
 * frees with wj_requests_free.  Encoders append to a gwbuf.
 */
#ifndef KVGATE_WATCH_JSON_H
#define KVGATE_WATCH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "etcd_json.h"
#include "kv.h"
#include "watch.h"

typedef enum wj_kind {
    WJ_EMPTY = 0,   /* no request_union field: ignored */
    WJ_CREATE,
    WJ_CANCEL,
    WJ_PROGRESS,
} wj_kind;

typedef struct wj_request {
    wj_kind kind;
    /* WJ_CREATE */
    kv_bytes key, range_end; /* owned */
    int64_t start_revision, watch_id;
    bool progress_notify, prev_kv, fragment;
    bool filter_noput, filter_nodelete;
    /* WJ_CANCEL */
    int64_t cancel_id;
} wj_request;

/* Decodes every WatchRequest of a body.  Returns 0 with *out / *n (n may be
 * 0, *out then NULL), or -1 when the first value is bad, with *msg a new
 * string (free it) holding etcd's message, of any length (NULL: out of
 * memory, "etcdserver: out of memory").  Values after the first bad one
 * are ignored (as etcd). */
int wj_decode_all(const char *body, size_t len, wj_request **out, size_t *n, char **msg);
/* The same with the message copied (truncated) into msg[0..msglen). */
int wj_decode_requests(const char *body, size_t len, wj_request **out, size_t *n,
                       char *msg, size_t msglen);
void wj_requests_free(wj_request *reqs, size_t n);

/* Fills a watch_create_req that borrows req's bytes. */
void wj_to_create(const wj_request *req, watch_create_req *out);

/* The WatchResponse object ({"header":...}), without "result". */
void wj_put_response(gwbuf *b, const ej_header *h, const watch_response *r, bool text);

/* One Event object ({"type":..,"kv":..,"prev_kv":..}). */
void wj_put_event(gwbuf *b, const watch_event *e, bool text);

/* As wj_put_response, with every event written by put_ev (e.g. copied from
 * a cache of its encoding shared by all the watchers that get it). */
typedef void (*wj_event_writer)(gwbuf *b, const watch_event *e, bool text, void *ctx);
void wj_put_response_with(gwbuf *b, const ej_header *h, const watch_response *r, bool text,
                          wj_event_writer put_ev, void *ctx);

/* One fragment of a response: its events [from, to), and "fragment":true
 * when `fragment` (etcd's field order: after cancel_reason, before events). */
void wj_put_response_part(gwbuf *b, const ej_header *h, const watch_response *r, bool text,
                          wj_event_writer put_ev, void *ctx, size_t from, size_t to,
                          bool fragment);

/* create_request.fragment, as etcd 3.4 (v3rpc/watch.go sendFragments) does
 * it, by the response's protobuf size (gogoproto Size()) against `limit`
 * (etcd: --max-request-bytes + 512 KiB of gRPC overhead):
 *   - a response whose Size() < limit, or with fewer than 2 events, is
 *     sent whole;
 *   - else parts with "fragment":true, each taking events in order while
 *     its Size() (fragment field included) stays < limit, at least one;
 *     the last part (the one that takes the last event) has no fragment.
 * Sizes use the same header (cluster_id, member_id, raft_term, revision)
 * and events (kv, prev_kv) the JSON carries. */
size_t wj_pb_event_size(const watch_event *e); /* one WatchResponse.events element */
size_t wj_pb_response_base(const ej_header *h, const watch_response *r, bool fragment);
bool wj_fragment_needed(const ej_header *h, const watch_response *r, size_t limit);
/* The end (exclusive) of the part that starts at event `from`. */
size_t wj_fragment_end(const ej_header *h, const watch_response *r, size_t limit, size_t from);

/* A response of put events for the initial snapshot of an SSE watch. */
void wj_put_snapshot(gwbuf *b, const ej_header *h, int64_t rev, int64_t watch_id,
                     const kv_keyvalue *kvs, size_t n, bool text);

/* One KeyValue, text or base64 as above. */
void wj_put_kv(gwbuf *b, const kv_keyvalue *kv, bool text);

/* True when p[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool wj_utf8_valid(const uint8_t *p, size_t n);

#endif
