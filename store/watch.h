/*
 * watch.h — the watchable layer's one public header (etcd's watchableStore,
 * watchStream and watcher).  The gateway includes kv.h and watch.h only.
 *
 * ---------------------------------------------------------------------------
 * What real etcd 3.4.23 sends on POST /v3/watch (observed on loopback; the
 * header's cluster_id/member_id/raft_term are elided as H below, int64 are
 * strings, defaults are omitted, so watch_id 0 never appears):
 *
 *  created:    {"result":{"header":{H,"revision":"5"},"created":true}}
 *              {"result":{"header":{H,"revision":"5"},"watch_id":"1","created":true}}
 *              header.revision = store revision when the watch was created.
 *  events:     {"result":{"header":{H,"revision":"3"},"watch_id":"7","events":[
 *                {"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"3",
 *                       "version":"2","value":"YmF6"},
 *                 "prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2",
 *                            "version":"1","value":"YmFy"}}]}}
 *              PUT events have no "type" (PUT = 0 is the default);
 *              delete: {"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"5"},
 *                       "prev_kv":{...last put...}}
 *              live: one response per revision per watcher, header.revision =
 *              that revision.  From history (start_revision <= current): one
 *              response with all events of up to 1000 revisions (etcd's
 *              watchBatchMaxRevs, counted over the revisions that have
 *              events for the watcher), then the next 1000 in the next
 *              response..., header.revision = current revision, prev_kv
 *              filled for those too.
 *  several create_requests in one body: all are served, each gets its
 *              own created response, in order.
 *  auto ids:   0, 1, 2, ... the next free id in the stream (a client id
 *              of 3 makes auto ids skip 3).  watch_id 0 in a request means
 *              "auto" (etcd's AutoWatchID is 0).
 *  duplicate client id:
 *              {"result":{"header":{H,"revision":"5"},"watch_id":"-1","created":true,
 *               "canceled":true,"cancel_reason":"mvcc: duplicate watch ID provided on the WatchStream"}}
 *  empty range (key >= range_end, range_end not "\0"):
 *              {"result":{"header":{H,"revision":"5"},"watch_id":"-1","created":true,
 *               "canceled":true,"cancel_reason":"mvcc: watcher range is empty"}}
 *  compacted start (start_revision < compact revision; after compact at 7):
 *              first the normal created response, then
 *              {"result":{"header":{H},"watch_id":"N","canceled":true,"compact_revision":"7"}}
 *              (note: header without revision, i.e. 0).  etcd serves
 *              start_revision == compact revision (it returned the events
 *              at 7); kvgate's kvstore_read_events refuses from_rev ==
 *              compact_rev, so kvgate cancels that case too (see report).
 *  start_revision in the future: created, then events from that revision.
 *  watch_id negative (-5) from the client: accepted and echoed.
 *  cancel_request right after a history create: canceled, no events.
 *  cancel_request {"cancel_request":{"watch_id":0}}:
 *              {"result":{"header":{H,"revision":"5"},"canceled":true}}
 *              cancel of an unknown id: no response at all.
 *  progress_request {"progress_request":{}}:
 *              {"result":{"header":{H,"revision":"5"},"watch_id":"-1"}}
 *              etcd 3.4 answers at once with the current revision even if
 *              a watcher of the stream is still catching up: observed with
 *              a watch from revision 1 at revision 4, the stream was
 *              created, then {"watch_id":"-1"} at revision 4, then the
 *              history events 2..4 (3.5 waits until all are synced).
 *              kvgate: see watch_stream_request_progress.
 *  progress_notify (--experimental-watch-progress-notify-interval, default
 *              10m): every interval, for each watcher with progress_notify
 *              that is synced and got no events since the last tick:
 *              {"result":{"header":{H,"revision":"9"},"watch_id":"1"}}
 *  create_request {} (no key): key "" is watched as "\0" (created normally).
 *  body that is not JSON: {"error":"invalid character 'x' looking for beginning
 *              of value","message":"...","code":2}; unknown request fields
 *              are ignored and produce nothing.
 * ---------------------------------------------------------------------------
 *
 * Model.  A watchable wraps a kvstore and installs its commit hook.  Each
 * watcher is in exactly one of three states, as in etcd:
 *   synced   — it has seen everything up to the watchable's revision; the
 *              commit hook hands it new events directly.
 *   unsynced — it is behind (start_revision in the past, or demoted); the
 *              sync loop reads its missing events from the store's history
 *              (kvstore_read_events) in bounded batches, then moves it to
 *              synced under the same lock the hook takes, so nothing is lost,
 *              duplicated or reordered across the handoff.
 *   victim   — its stream's queue was full when events were ready; the one
 *              response that did not fit is parked and the victim loop
 *              retries it.  If the stream stays full longer than
 *              victim_max_park_ms, the parked response is dropped and the
 *              watcher is demoted to unsynced at the first revision it
 *              missed: the history in RocksDB is the buffer, so a stalled
 *              reader costs O(1) memory per watcher and never blocks writers.
 *              (If the store compacts past that revision meanwhile, the
 *              watcher is canceled with compact_revision, as etcd would.)
 *
 * Delivery.  Each watch stream (one per HTTP connection) owns its watchers
 * and one queue of watch_response.  The layer appends; the gateway pops from
 * its content reader (watch_stream_pop).  The queue is bounded by
 * stream_queue_events events and by stream_queue_bytes bytes of keys and
 * values, the consumer's reported backlog (watch_stream_set_backlog)
 * included (a response is accepted while the queue is below both bounds,
 * so it may overshoot by one response); control responses
 * (created, canceled, compacted, progress request answers) are always
 * accepted, so they are never lost.  A watcher's created response is queued
 * before it can receive any event.  A response never splits the events of
 * one revision, and may hold several revisions.
 *
 * History batches (catch-up), as etcd batches them and where kvgate bounds
 * memory instead.  etcd's syncWatchers reads every event from the chosen
 * watchers' lowest start up to the current revision in one range, with no
 * bound, and gives each watcher the events of its first 1000 revisions
 * that have events for it (watchBatchMaxRevs), all in one response; the
 * rest waits for the next pass.  kvgate sends the same responses (up to
 * sync_batch_revs revisions that have events for the watcher, whatever
 * their number of events), but its read spans at most sync_batch_revs
 * store revisions past the chosen watchers' furthest-ahead start and stops
 * (between revisions) at sync_batch_events events or sync_batch_bytes
 * bytes of keys and values, and a pass fills at most sync_pass_events
 * response slots.  So kvgate's responses can be smaller than etcd's, never
 * bigger: a watcher whose key changes in few of the revisions (etcd would
 * look further ahead), big values (1 MiB per read), or revisions of more
 * than 128 events each on average (etcd's default --max-txn-ops is 128;
 * delete ranges and lease expiries can exceed it).  One revision is always
 * read and sent whole, as etcd does without fragment: a revision with a
 * million events costs its events' memory once in the read, as it did in
 * the commit that made it, and once per watcher 32 bytes an event.
 *
 * Events are shared, not copied per watcher: one refcounted block holds the
 * events of a commit (or of a history batch) and every response points into
 * it.  prev_kv is looked up lazily when the response is popped (on the
 * gateway's thread, never on the committer), once per event and block, and
 * cached for every watcher that shares it.  The gateway may cache its own
 * encoding of an event in the block too (watch_event_cache_*).
 *
 * Threads.
 *   - The commit hook runs on the store's committer thread; it never blocks
 *     on a consumer (a full queue makes a victim) and never reads RocksDB.
 *   - Two background threads (the layer's pool): the sync loop (unsynced
 *     watchers, compaction cancels, progress_notify ticks) and the victim
 *     loop.
 *   - watch_create, watch_cancel, watch_stream_request_progress and
 *     watch_stream_pop may be called from any thread, also concurrently on
 *     one stream (pop takes only the stream's queue lock, never the layer
 *     lock, so a reader never waits behind the committer).
 *     watch_stream_close must not race with any other call on that stream.
 *   - The wakeup callback is called from any of these threads (and from
 *     inside watch_create/cancel/request_progress) with the layer's lock
 *     held: it must be cheap, must not block, and must not call any
 *     watch_* function.  MHD_resume_connection is fine.  It is never called
 *     after watch_stream_close returns.
 *
 * Lock order (declared in watchable.c): ws->mu (groups, watcher states, the
 * watchable revision, stream watcher tables) -> st->mu (one stream's queue)
 * -> ws->kick_mu (loop wakeups).  The wakeup callback runs under ws->mu only.
 *
 * Ownership.  watch_stream_pop returns a new reference the caller frees with
 * watch_response_free, from any thread, at any time (also after the stream
 * or the watchable is closed: a response keeps what it points to alive).
 * Event and kv pointers in a response are borrowed from it and valid until
 * it is freed.  watch_create copies the request's bytes.  Order of shutdown:
 * watch_stream_close every stream, watchable_close, then kvstore_close.
 *
 * Memory.  Measured (tests/unit/store_watch.c): ~300 bytes per watcher on a
 * 31-byte key with 20 watchers per stream, stream included; a queued
 * response costs ~120 bytes plus 32 per event, the events themselves are
 * shared per commit.  A stream holds at most stream_queue_events events
 * and stream_queue_bytes bytes of keys and values (a response pins its
 * whole event block: a commit's, or a history batch of at most
 * sync_batch_bytes) plus one response of overshoot plus control responses;
 * a victim holds one parked response for at most victim_max_park_ms.
 */
#ifndef KVGATE_WATCH_H
#define KVGATE_WATCH_H

#include "kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct watchable watchable;
typedef struct watch_stream watch_stream;

/* Tunables.  Defaults from watchable_opts_default(); tests shrink them to
 * force the slow paths. */
typedef struct watchable_opts {
    size_t sync_batch_revs;        /* a history response holds the events of at most
                                      this many revisions that have events for its
                                      watcher (etcd's watchBatchMaxRevs: 1000; 0: no
                                      bound but the ones below) */
    size_t sync_batch_events;      /* events per history read, a memory bound (128000:
                                      1000 revisions of etcd's default --max-txn-ops
                                      128); the read stops between revisions, so one
                                      revision with more events is still read whole */
    size_t max_watchers_per_sync;  /* unsynced watchers per sync pass (etcd: 512) */
    unsigned sync_interval_ms;     /* sync loop period when idle (etcd: 100) */
    int64_t sync_locked_revs;      /* a pass whose watchers are at most this many
                                      revisions behind reads under the lock, so the
                                      last step of catch-up cannot be outrun by
                                      writers (64) */
    unsigned victim_retry_ms;      /* victim loop period while victims exist (etcd: 10) */
    unsigned victim_max_park_ms;   /* then drop the parked response, demote (1000) */
    size_t stream_queue_events;    /* per-stream queue bound in events (etcd chan: 1024 responses) */
    size_t stream_queue_bytes;     /* and in key + value bytes, plus what the consumer
                                      reported with watch_stream_set_backlog (1 MiB; 0:
                                      no byte bound).  Past it a watcher is parked, then
                                      re-reads history: a stalled reader of big values
                                      holds about this much, not its whole backlog */
    size_t sync_batch_bytes;       /* key + value bytes per history read (1 MiB; 0: none) */
    size_t sync_pass_events;       /* events put into responses per sync pass, summed
                                      over its watchers (32 bytes each; 256 Ki = 8 MiB):
                                      past it the pass's other watchers wait for the
                                      next pass (0: no bound) */
    unsigned progress_interval_ms; /* progress_notify period (etcd: 10 min) */
    /* Frees what the gateway stored with watch_event_cache_set; NULL if unused. */
    void (*cache_free)(void *enc);
} watchable_opts;

void watchable_opts_default(watchable_opts *o);

/* Wraps `s` and installs its commit hook; starts the two loop threads.
 * Returns NULL on ENOMEM or thread failure.  `s` must outlive the watchable
 * (close the watchable first, then the store). */
watchable *watchable_new(kvstore *s, const watchable_opts *opts);

/* Removes the commit hook, stops the threads, frees everything.  Every
 * stream must be closed first.  NULL ok. */
void watchable_close(watchable *ws);

/* The revision the watchable has notified up to: what a watch created now
 * with start_revision 0 starts after (etcd's watchStream.Rev()). */
int64_t watchable_rev(watchable *ws);

/* Diagnostics (tests): watchers in each state, and responses in queues. */
typedef struct watchable_stats {
    size_t synced, unsynced, victims, streams, watchers;
    /* cumulative */
    uint64_t victimized;     /* responses parked because a queue was full */
    uint64_t demoted;        /* parked responses dropped, watcher -> unsynced */
    uint64_t history_reads;  /* kvstore_read_events calls by the sync loop */
    uint64_t locked_reads;   /* of which under ws->mu (near the head) */
    uint64_t compacted;      /* watchers canceled with compact_revision */
} watchable_stats;
void watchable_get_stats(watchable *ws, watchable_stats *st);

/* ---- streams ---- */

/* Called when the stream's queue goes from empty to non-empty.  See the
 * Threads section: cheap, non-blocking, no watch_* calls. */
typedef void (*watch_wake_fn)(void *arg);

/* A new stream; wake may be NULL (poll with watch_stream_pop). */
watch_stream *watch_stream_new(watchable *ws, watch_wake_fn wake, void *wake_arg);

/* Cancels all its watchers (no canceled responses are queued), frees the
 * queue and the stream.  After it returns, wake is never called again.
 * Must not race with other calls on the same stream.  NULL ok. */
void watch_stream_close(watch_stream *st);

typedef enum watch_err {
    WATCH_OK = 0,
    WATCH_ERR_DUPLICATE_ID, /* "mvcc: duplicate watch ID provided on the WatchStream" */
    WATCH_ERR_EMPTY_RANGE,  /* "mvcc: watcher range is empty" */
    WATCH_ERR_NOT_FOUND,    /* cancel of an unknown id (etcd answers nothing) */
    WATCH_ERR_NOMEM,
} watch_err;

/* etcd's cancel_reason text for an error; NULL for WATCH_OK. */
const char *watch_err_reason(watch_err e);

#define WATCH_AUTO_ID 0 /* etcd: watch_id 0 in a create request = assign one */

typedef struct watch_create_req {
    const uint8_t *key;        /* borrowed, copied; empty = "\0" as etcd */
    size_t key_len;
    const uint8_t *range_end;  /* empty: single key; "\0": every key >= key */
    size_t range_end_len;
    int64_t start_revision;    /* 0: from now; else from that revision */
    int64_t watch_id;          /* WATCH_AUTO_ID or the client's id */
    bool filter_noput, filter_nodelete;
    bool prev_kv;
    bool progress_notify;
} watch_create_req;

/* Creates a watcher and queues its created response.  On a refusal
 * (DUPLICATE_ID, EMPTY_RANGE) it queues etcd's refusal response instead
 * (watch_id -1, created, canceled, cancel_reason) and returns the error; on
 * NOMEM nothing is queued.  *id_out (may be NULL) gets the id or -1.
 * A watch from history gets its events, and a start_revision at or below
 * the compact revision its compacted cancel, from the sync loop's next
 * periodic pass (within sync_interval_ms), as on etcd: so a request body's
 * later creates are answered first, in etcd's order. */
watch_err watch_create(watch_stream *st, const watch_create_req *req, int64_t *id_out);

/* Cancels one watcher: queues {watch_id, canceled} after anything already
 * queued for it; NOT_FOUND queues nothing (as etcd). */
watch_err watch_cancel(watch_stream *st, int64_t watch_id);

/* Queues a progress response (watch_id -1, progress = true), behind
 * everything already queued.  header_rev is the current revision, as etcd
 * 3.4 answers (observed: even while a watcher of the stream is still
 * catching up from history, i.e. before events at lower revisions are
 * sent).  progress_rev is the safe value: the highest R such that every
 * event <= R of every watcher of this stream is queued ahead of this
 * response; it equals header_rev when all the stream's watchers are synced
 * (etcd 3.5 only answers then).  Use header_rev for etcd's JSON, progress_rev
 * for resumable SSE ids. */
void watch_stream_request_progress(watch_stream *st);

/* ---- responses ---- */

typedef struct watch_event {
    const kv_event *ev;        /* borrowed from the response; DELETE: key + mod_revision */
    const kv_keyvalue *prev_kv; /* NULL unless prev_kv was asked and a previous
                                   version exists (and is not compacted) */
    struct watch_evblock *block_; /* private: for watch_event_cache_* */
    bool with_prev_;              /* private */
} watch_event;

typedef struct watch_response {
    int64_t watch_id;          /* -1 for progress request answers and refusals */
    int64_t header_rev;        /* what etcd puts in header.revision (0 for compacted) */
    int64_t progress_rev;      /* everything <= this was delivered for this watch
                                  (SSE "id:" for exact resume); 0 on refusals */
    bool created;
    bool canceled;
    bool progress;             /* no events: progress_notify tick or request answer */
    int64_t compact_rev;       /* > 0: canceled because history is compacted */
    const char *cancel_reason; /* static string or NULL */
    size_t n_events;
    watch_event *events;       /* n_events, in revision order */
    /* private */
    struct watch_response *next_;
    struct watch_evblock *block_;
    size_t bytes_;             /* key + value bytes of its events */
    bool want_prev_;
} watch_response;

/* Pops the oldest queued response, or NULL if none.  New reference.  Fills
 * prev_kv (a store read) when the watch asked for it. */
watch_response *watch_stream_pop(watch_stream *st);

/* Number of queued responses (for tests / heuristics). */
size_t watch_stream_queued(watch_stream *st);

/* Bytes the consumer holds for this stream, popped but not yet delivered
 * (the gateway's encoded output): counted against stream_queue_bytes, so
 * a stream whose reader stalls mid-response takes no more events.  Report
 * 0 once drained; the layer then resumes the stream's parked watchers.
 * Any thread; takes only the stream's queue lock. */
void watch_stream_set_backlog(watch_stream *st, size_t bytes);

void watch_response_free(watch_response *r); /* NULL ok */

/* A per-event cache shared by every response that carries the same event
 * (e.g. the gateway's JSON of the event, with prev_kv if the response has
 * it: the slot is distinct for with/without prev_kv).  get returns NULL if
 * unset.  set steals enc: if another thread set it first, enc is freed with
 * opts.cache_free and the winner is returned; else enc is returned. */
void *watch_event_cache_get(const watch_event *e);
void *watch_event_cache_set(const watch_event *e, void *enc);

#endif
