/*
 * watch_http.h — the watch endpoints: {/v3,/v3beta,/v3alpha}/watch.
 *
 *   POST, JSON (etcd 3.4's gateway, exactly): the body holds WatchRequest
 *     objects; the answer is a chunked stream of {"result":WatchResponse}
 *     lines, one per response, open until the client leaves.
 *   GET ?key=...&... (Server-Sent Events, for EventSource): one watch per
 *     stream, parameters in the query (watch_params.h); `id:` on every data
 *     message is the highest revision it covers, so a reconnect with
 *     Last-Event-ID continues exactly after it.
 *   POST with "Accept: text/event-stream": the JSON body's watches, SSE
 *     framing (for fetch-based SSE clients).
 *
 * Cost model: an idle stream is a suspended libmicrohttpd connection (no
 * CPU); the watchable layer's wakeup callback queues the connection and one
 * "pump" thread resumes the queued connections in batches (one pass of MHD's
 * suspended list per batch instead of per event).  The same thread sends
 * SSE heartbeats on idle streams and peeks at idle sockets, because a
 * suspended connection does not notice its peer leaving (MHD 0.9.75): a
 * stream whose client left is ended within about peer_check_ms.
 *
 * Lifetime: create with watch_http_new, register before gw_server_start,
 * stop the server (its shutdown hook ends every stream), then
 * watch_http_free, then watchable_close and kvstore_close.
 */
#ifndef KVGATE_WATCH_HTTP_H
#define KVGATE_WATCH_HTTP_H

#include <stddef.h>

#include "etcd_json.h"
#include "http.h"
#include "kv.h"
#include "watch.h"

typedef struct watch_http_opts {
    unsigned sse_heartbeat_ms;  /* comment line on idle SSE streams (15000; 0 = never) */
    unsigned sse_retry_ms;      /* the "retry:" hint sent on connect (2000) */
    unsigned max_streams;       /* concurrent watch streams; beyond: 429 (10000; 0 = no cap) */
    unsigned max_watches_per_stream; /* creates in one POST body; beyond: 400 (1000; 0 = no cap) */
    unsigned peer_check_ms;     /* peek at streams idle this long for a closed peer (1000; 0 = never) */
    unsigned wake_batch_us;     /* how long wake-ups are gathered before a resume pass (500) */
    size_t snapshot_page;       /* keys per range read for initial=true (500) */
    size_t max_request_bytes;   /* --max-request-bytes: a response of a create_request with
                                   fragment is split at this + 512 KiB, as etcd (1572864) */
    bool event_cache;           /* share each event's JSON between watchers; needs
                                   watchable_opts.cache_free = watch_http_cache_free (false) */
} watch_http_opts;

/* The watchable layer's cache_free for the encodings watch_http caches. */
void watch_http_cache_free(void *enc);

void watch_http_opts_default(watch_http_opts *o);

typedef struct watch_http watch_http;

/* store and ws are borrowed and must outlive it; h is copied.  Starts the
 * pump thread.  NULL on failure. */
watch_http *watch_http_new(kvstore *store, watchable *ws, const ej_header *h,
                           const watch_http_opts *o);

/* Registers the routes and the shutdown hook.  0 or -1. */
int watch_http_register(gw_server *s, watch_http *wh);

/* Streams open now (tests, diagnostics). */
unsigned watch_http_streams(watch_http *wh);
/* Cumulative, for /metrics: events sent in watch responses (each event
 * once per stream it went to), and streams refused at --max-streams. */
uint64_t watch_http_events_sent(watch_http *wh);
uint64_t watch_http_refused(watch_http *wh);

/* Stops the pump thread and frees.  After gw_server_stop.  NULL ok. */
void watch_http_free(watch_http *wh);

#endif
