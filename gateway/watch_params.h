/*
 * watch_params.h — the query string of an SSE watch (GET /v3/watch?...)
 * turned into one watch-create request (pure: no sockets, no MHD).
 *
 * A browser's EventSource can only GET a URL, so everything etcd's
 * WatchCreateRequest carries in JSON travels here as query parameters, with
 * keys as URL-encoded raw bytes (the HTTP layer has already percent-decoded
 * them; values may hold NUL bytes, so every value comes with its length):
 *
 *   key=K            the key (raw bytes)           range_end=E   raw bytes
 *   prefix=true      every key starting with K     from_key=true every key >= K
 *   start_revision=N watch from revision N         prev_kv=true
 *   filters=noput,nodelete   (also repeated)       progress_notify=true
 *   watch_id=N       the id echoed in responses    initial=true  snapshot first
 *   encoding=text|base64                           last_event_id=N  resume
 *
 * Booleans accept true/false/1/0, and a bare `?prefix` means true.  Unknown
 * parameters are ignored (cache busters); a parameter given twice is an
 * error, except filters.
 *
 * Range conventions are etcd's: prefix K -> [K, GetPrefixRangeEnd(K)), where
 * the end is K with its last byte < 0xff incremented and the rest dropped,
 * or "\0" (to the end of the keyspace) when every byte is 0xff; an empty K
 * with prefix or from_key means all keys ("\0" .. "\0").
 *
 * Ownership: watch_params owns key and range_end; watch_params_free()
 * releases them.  Error messages are static strings.
 */
#ifndef KVGATE_WATCH_PARAMS_H
#define KVGATE_WATCH_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "sse.h"

typedef struct watch_params {
    kv_bytes key;          /* owned; after finish: never empty */
    kv_bytes range_end;    /* owned; after finish: as etcd's RangeEnd */
    int64_t start_revision; /* 0 = from the next revision */
    int64_t watch_id;       /* echoed in responses; 0 unless given */
    int64_t last_event_id;  /* -1 unless given in the query */
    bool prefix, from_key, prev_kv, progress_notify, initial, text;
    bool filter_noput, filter_nodelete;
    bool has_key, has_range_end, has_watch_id;
    unsigned seen;          /* bit per parameter: duplicate detection */
} watch_params;

void watch_params_init(watch_params *p);
void watch_params_free(watch_params *p);

/* Adds one query argument.  name is NUL-terminated; value (value_len bytes,
 * may contain NUL) may be NULL for a bare "?name".  Returns 0, or -1 with
 * *err set to a message for a 400 answer. */
int watch_params_add(watch_params *p, const char *name, const char *value,
                     size_t value_len, const char **err);

/* Checks the combination and computes range_end (prefix / from_key).
 * Returns 0, or -1 with *err set. */
int watch_params_finish(watch_params *p, const char **err);

/* etcd's GetPrefixRangeEnd: writes the end of the prefix range of
 * key[0..len) into a new malloc'd *out (len >= 1), "\0" when every byte is
 * 0xff.  An empty key gives "\0" too (with key "\0": all keys).
 * Returns 0 or -1 (ENOMEM). */
int watch_prefix_range_end(const uint8_t *key, size_t len, kv_bytes *out);

/* Where the watch starts, given the Last-Event-ID header (hdr, hdr_len;
 * hdr NULL when absent).  Precedence: the header (a browser reconnecting
 * repeats the original URL and adds it), then last_event_id in the query,
 * then start_revision, else 0 (from now).  *resumed tells the caller to
 * skip the initial snapshot: the client already has the state up to the
 * id.  Returns 0, or -1 with *err set (a malformed id). */
int watch_params_start(const watch_params *p, const char *hdr, size_t hdr_len,
                       int64_t *start, bool *resumed, const char **err);

#endif
