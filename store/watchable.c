/*
 * watchable.c — etcd's watchableStore, watchStream and watcher in C.
 * The contract (states, delivery, threads, ownership) is in watch.h; this
 * comment says what must hold inside.
 *
 * The handoff invariant.  ws->rev is the last revision the commit hook has
 * processed; the hook updates it under ws->mu after queueing that commit's
 * events to every matching synced watcher.  A watcher becomes synced only
 * under ws->mu and only when it has been handed every event up to ws->rev
 * (min_rev == ws->rev + 1, or a future start).  So each revision reaches a
 * watcher exactly once: through the hook if the watcher was synced when the
 * hook ran, else through a history read (unsynced), else through its parked
 * response (victim) followed by history.  Responses of one watcher are
 * queued in revision order because only one path serves a watcher at a
 * time (its state says which).
 *
 * min_rev is "the next revision this watcher needs": for unsynced watchers
 * where the next history read starts; for victims the revision after their
 * parked response (pending_from is where the parked response starts, used
 * when it is dropped); for synced watchers a lower bound used to skip
 * events before a future start_revision.
 *
 * History reads run without ws->mu (RocksDB reads must not stall the
 * committer) unless the chosen watchers are within sync_locked_revs of the
 * head: then the read happens under the lock so the final step of catch-up
 * cannot be outrun by writers.  Watchers chosen for an unlocked read are
 * marked in_pass; a cancel or stream close meanwhile only marks them zombie
 * and the sync loop frees them (their stream may be gone: a zombie's st is
 * never touched).
 *
 * Locks (order: ws->mu -> st->mu -> ws->kick_mu):
 *   ws->mu       groups, every watcher's state/min_rev/pending, ws->rev, the
 *                victim and progress lists, stream id tables and the stream
 *                list, the notify scratch.  The wake callback runs under it.
 *   st->mu       one stream's queue (head, tail, counts).  Taken alone by
 *                watch_stream_pop, so the gateway never waits on ws->mu to
 *                read.
 *   ws->kick_mu  the loops' wakeup flags and condition variables.
 */
#include "log.h"
#include "watch.h"
#include "watcher_group.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- shared event blocks ---- */

/* One commit's (or one history batch's) events, copied once into a single
 * allocation and shared by every response that carries any of them. */
typedef struct watch_evblock {
    atomic_long refs;
    size_t n;
    kvstore *store;                 /* for prev_kv lookups at pop time */
    void (*cache_free)(void *);
    kv_event *evs;                  /* n; bytes point into the arena below */
    _Atomic(kv_keyvalue *) *prev;   /* n; NULL = not looked up yet */
    _Atomic(void *) *cache;         /* 2n: [2i] without prev_kv, [2i+1] with */
} watch_evblock;

/* Marks "looked up, there is no previous version". */
static kv_keyvalue prev_none_sentinel;
#define PREV_NONE (&prev_none_sentinel)

static watch_evblock *evblock_new(const kv_event *evs, size_t n, kvstore *store,
                                  void (*cache_free)(void *))
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += evs[i].kv.key.len + evs[i].kv.value.len;
    size_t sz = sizeof(watch_evblock) + n * sizeof(kv_event) +
                n * sizeof(_Atomic(kv_keyvalue *)) + 2 * n * sizeof(_Atomic(void *)) + bytes;
    watch_evblock *b = malloc(sz);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->n = n;
    b->store = store;
    b->cache_free = cache_free;
    b->evs = (kv_event *)(b + 1);
    b->prev = (_Atomic(kv_keyvalue *) *)(b->evs + n);
    b->cache = (_Atomic(void *) *)(b->prev + n);
    uint8_t *arena = (uint8_t *)(b->cache + 2 * n);
    for (size_t i = 0; i < n; i++) {
        kv_event *d = &b->evs[i];
        *d = evs[i];
        const kv_bytes *src[2] = {&evs[i].kv.key, &evs[i].kv.value};
        kv_bytes *dst[2] = {&d->kv.key, &d->kv.value};
        for (int j = 0; j < 2; j++) {
            if (src[j]->len) {
                memcpy(arena, src[j]->data, src[j]->len);
                dst[j]->data = arena;
                arena += src[j]->len;
            } else {
                dst[j]->data = NULL;
            }
        }
        atomic_init(&b->prev[i], NULL);
        atomic_init(&b->cache[2 * i], NULL);
        atomic_init(&b->cache[2 * i + 1], NULL);
    }
    return b;
}

static void evblock_ref(watch_evblock *b) { atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed); }

static void evblock_unref(watch_evblock *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < b->n; i++) {
        kv_keyvalue *p = atomic_load(&b->prev[i]);
        if (p && p != PREV_NONE) {
            kv_keyvalue_free(p);
            free(p);
        }
        for (int j = 0; j < 2; j++) {
            void *c = atomic_load(&b->cache[2 * i + j]);
            if (c && b->cache_free)
                b->cache_free(c);
        }
    }
    free(b);
}

static int64_t ev_rev(const kv_event *e) { return e->kv.mod_revision; }

/* ---- responses ---- */

static watch_response *response_new(size_t n_events)
{
    watch_response *r = calloc(1, sizeof *r + n_events * sizeof(watch_event));
    if (!r)
        return NULL;
    r->events = n_events ? (watch_event *)(r + 1) : NULL;
    return r;
}

void watch_response_free(watch_response *r)
{
    if (!r)
        return;
    evblock_unref(r->block_);
    free(r);
}

/* Appends event i of block b to r (r holds one reference to b, taken by the
 * caller once). */
static void response_add(watch_response *r, watch_evblock *b, size_t i)
{
    watch_event *e = &r->events[r->n_events++];
    e->ev = &b->evs[i];
    e->prev_kv = NULL;
    e->block_ = b;
    e->with_prev_ = r->want_prev_;
    r->bytes_ += b->evs[i].kv.key.len + b->evs[i].kv.value.len;
}

static size_t response_weight(const watch_response *r) { return r->n_events ? r->n_events : 1; }

static _Atomic(void *) *cache_slot(const watch_event *e)
{
    watch_evblock *b = e->block_;
    size_t idx = (size_t)(e->ev - b->evs);
    return &b->cache[2 * idx + (e->with_prev_ ? 1 : 0)];
}

void *watch_event_cache_get(const watch_event *e)
{
    return atomic_load(cache_slot(e));
}

void *watch_event_cache_set(const watch_event *e, void *enc)
{
    void *expected = NULL;
    if (atomic_compare_exchange_strong(cache_slot(e), &expected, enc))
        return enc;
    /* another thread encoded it first: keep the winner, free ours */
    if (e->block_->cache_free)
        e->block_->cache_free(enc);
    return expected;
}

/* ---- watchers and streams ---- */

typedef enum { W_SYNCED, W_UNSYNCED, W_VICTIM, W_DETACHED } wstate;

typedef struct watcher {
    wg_member m;                    /* first: a wg_member* is a watcher* */
    struct watch_stream *st;
    int64_t id;
    int64_t min_rev;
    int64_t pending_from;           /* victims: first revision of pending */
    watch_response *pending;        /* victims: the response that did not fit */
    uint64_t parked_at_ms;
    uint64_t stamp;                 /* notify scratch: last commit that touched it */
    uint32_t tidx;                  /* notify scratch: index in ws->touched */
    uint8_t state;                  /* wstate */
    bool filter_put, filter_delete, prev_kv, progress_notify;
    bool sent_since_tick;           /* events queued since the last progress tick */
    bool in_pass, zombie;
    struct watcher *id_next;        /* stream id table chain */
    struct watcher *vprev, *vnext;  /* victim list */
    struct watcher *pprev, *pnext;  /* progress_notify list */
    uint8_t bytes[];                /* key, then range end */
} watcher;

struct watch_stream {
    watchable *ws;
    watch_wake_fn wake;
    void *wake_arg;
    /* under st->mu */
    pthread_mutex_t mu;
    watch_response *qhead, *qtail;
    size_t qcount, qevents, qbytes;
    size_t backlog;                 /* the consumer's, watch_stream_set_backlog */
    /* under ws->mu */
    watcher **ids;
    size_t nbuckets, nwatchers;
    int64_t next_id;
    struct watch_stream *prev, *next;
};

typedef struct pair {
    uint32_t t; /* index into touched */
    uint32_t e; /* event index in the commit */
} pair;

struct watchable {
    kvstore *s;
    watchable_opts o;
    pthread_mutex_t mu;
    int64_t rev;
    watcher_group synced, unsynced;
    watcher *victims;
    size_t nvictims;
    watcher *progress;
    watch_stream *streams;
    size_t nstreams, nwatchers;
    /* notify scratch (committer thread, under mu); touched/cnt are kept at
     * least nwatchers long so the hook never allocates per watcher */
    uint64_t stamp;
    watcher **touched;
    uint32_t *cnt;
    void **resp;      /* watch_response * per touched watcher */
    size_t tcap;
    pair *pairs;
    size_t pcap;
    watcher **chosen; /* sync pass scratch, max_watchers_per_sync */
    uint64_t n_victimized, n_demoted, n_history_reads, n_locked_reads, n_compacted;
    /* loops */
    pthread_mutex_t kick_mu;
    pthread_cond_t kick_cv;
    bool stop, sync_kicked, victim_kicked;
    pthread_t sync_thr, victim_thr;
};

void watchable_opts_default(watchable_opts *o)
{
    memset(o, 0, sizeof *o);
    o->sync_batch_revs = 1000;
    o->sync_batch_events = 128 * 1000;
    o->sync_pass_events = 256 * 1024;
    o->max_watchers_per_sync = 512;
    o->sync_interval_ms = 100;
    o->sync_locked_revs = 64;
    o->victim_retry_ms = 10;
    o->victim_max_park_ms = 1000;
    o->stream_queue_events = 1024;
    o->stream_queue_bytes = 1u << 20;
    o->sync_batch_bytes = 1u << 20;
    o->progress_interval_ms = 10 * 60 * 1000;
}

const char *watch_err_reason(watch_err e)
{
    switch (e) {
    case WATCH_OK: return NULL;
    case WATCH_ERR_DUPLICATE_ID: return "mvcc: duplicate watch ID provided on the WatchStream";
    case WATCH_ERR_EMPTY_RANGE: return "mvcc: watcher range is empty";
    case WATCH_ERR_NOT_FOUND: return "mvcc: watcher does not exist";
    case WATCH_ERR_NOMEM: return "out of memory";
    }
    return "unknown";
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void kick(watchable *ws, bool sync, bool victim)
{
    pthread_mutex_lock(&ws->kick_mu);
    if (sync)
        ws->sync_kicked = true;
    if (victim)
        ws->victim_kicked = true;
    pthread_cond_broadcast(&ws->kick_cv);
    pthread_mutex_unlock(&ws->kick_mu);
}

/* ---- stream queue ---- */

/* The stream is at one of its bounds.  Under st->mu. */
static bool over_bound(const watch_stream *st)
{
    const watchable_opts *o = &st->ws->o;
    return st->qevents >= o->stream_queue_events ||
           (o->stream_queue_bytes && st->qbytes + st->backlog >= o->stream_queue_bytes);
}

/* Appends r unless the queue is at its bound (force: control responses).
 * Called under ws->mu; calls the wake callback on empty -> non-empty. */
static bool enqueue(watch_stream *st, watch_response *r, bool force)
{
    pthread_mutex_lock(&st->mu);
    if (!force && over_bound(st)) {
        pthread_mutex_unlock(&st->mu);
        return false;
    }
    r->next_ = NULL;
    bool was_empty = st->qhead == NULL;
    if (st->qtail)
        st->qtail->next_ = r;
    else
        st->qhead = r;
    st->qtail = r;
    st->qcount++;
    st->qevents += response_weight(r);
    st->qbytes += r->bytes_;
    pthread_mutex_unlock(&st->mu);
    if (was_empty && st->wake)
        st->wake(st->wake_arg);
    return true;
}

static bool stream_full(watch_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool full = over_bound(st);
    pthread_mutex_unlock(&st->mu);
    return full;
}

void watch_stream_set_backlog(watch_stream *st, size_t bytes)
{
    pthread_mutex_lock(&st->mu);
    bool was_full = over_bound(st);
    st->backlog = bytes;
    bool now_free = !over_bound(st);
    pthread_mutex_unlock(&st->mu);
    if (was_full && now_free) /* as in watch_stream_pop */
        kick(st->ws, true, true);
}

size_t watch_stream_queued(watch_stream *st)
{
    pthread_mutex_lock(&st->mu);
    size_t n = st->qcount;
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void fill_prev_kv(watch_response *r)
{
    watch_evblock *b = r->block_;
    for (size_t i = 0; i < r->n_events; i++) {
        watch_event *e = &r->events[i];
        size_t idx = (size_t)(e->ev - b->evs);
        kv_keyvalue *p = atomic_load(&b->prev[idx]);
        if (!p) {
            kv_keyvalue kv;
            bool found = false;
            const kv_keyvalue *k = &e->ev->kv;
            /* etcd: Range(key, rev-1); any error (compacted) = no prev_kv */
            kv_err err = kvstore_get_at(b->store, k->key.data, k->key.len,
                                        ev_rev(e->ev) - 1, &kv, &found);
            p = PREV_NONE;
            if (err == KV_OK && found) {
                p = malloc(sizeof *p);
                if (p)
                    *p = kv;
                else {
                    kv_keyvalue_free(&kv);
                    p = PREV_NONE;
                }
            }
            kv_keyvalue *expected = NULL;
            if (!atomic_compare_exchange_strong(&b->prev[idx], &expected, p)) {
                if (p != PREV_NONE) {
                    kv_keyvalue_free(p);
                    free(p);
                }
                p = expected;
            }
        }
        e->prev_kv = p == PREV_NONE ? NULL : p;
    }
}

watch_response *watch_stream_pop(watch_stream *st)
{
    pthread_mutex_lock(&st->mu);
    watch_response *r = st->qhead;
    bool was_full = over_bound(st);
    if (r) {
        st->qhead = r->next_;
        if (!st->qhead)
            st->qtail = NULL;
        st->qcount--;
        st->qevents -= response_weight(r);
        st->qbytes -= r->bytes_;
    }
    bool now_free = !over_bound(st);
    pthread_mutex_unlock(&st->mu);
    if (!r)
        return NULL;
    r->next_ = NULL;
    /* Room again: parked victims and skipped unsynced watchers of this
     * stream can move.  Only on the full -> not full edge, so a fast reader
     * costs nothing here. */
    if (was_full && now_free)
        kick(st->ws, true, true);
    if (r->want_prev_ && r->n_events)
        fill_prev_kv(r);
    return r;
}

/* ---- stream id table (under ws->mu) ---- */

static size_t id_slot(const watch_stream *st, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (st->nbuckets - 1);
}

static watcher *id_find(const watch_stream *st, int64_t id)
{
    for (watcher *w = st->ids[id_slot(st, id)]; w; w = w->id_next)
        if (w->id == id)
            return w;
    return NULL;
}

static void id_insert(watch_stream *st, watcher *w)
{
    if (st->nwatchers >= st->nbuckets) {
        size_t n = st->nbuckets * 2;
        watcher **nb = calloc(n, sizeof *nb);
        if (nb) { /* on failure keep the old table: longer chains only */
            watcher **old = st->ids;
            size_t on = st->nbuckets;
            st->ids = nb;
            st->nbuckets = n;
            for (size_t i = 0; i < on; i++)
                for (watcher *x = old[i], *next; x; x = next) {
                    next = x->id_next;
                    size_t s = id_slot(st, x->id);
                    x->id_next = nb[s];
                    nb[s] = x;
                }
            free(old);
        }
    }
    size_t s = id_slot(st, w->id);
    w->id_next = st->ids[s];
    st->ids[s] = w;
    st->nwatchers++;
}

static void id_remove(watch_stream *st, watcher *w)
{
    for (watcher **pp = &st->ids[id_slot(st, w->id)]; *pp; pp = &(*pp)->id_next)
        if (*pp == w) {
            *pp = w->id_next;
            st->nwatchers--;
            return;
        }
}

/* ---- watcher state changes (under ws->mu) ---- */

static void victim_link(watchable *ws, watcher *w)
{
    w->vprev = NULL;
    w->vnext = ws->victims;
    if (ws->victims)
        ws->victims->vprev = w;
    ws->victims = w;
    ws->nvictims++;
}

static void victim_unlink(watchable *ws, watcher *w)
{
    if (w->vprev)
        w->vprev->vnext = w->vnext;
    else
        ws->victims = w->vnext;
    if (w->vnext)
        w->vnext->vprev = w->vprev;
    w->vprev = w->vnext = NULL;
    ws->nvictims--;
}

/* Takes w out of whatever group or list its state puts it in. */
static void detach(watchable *ws, watcher *w)
{
    switch (w->state) {
    case W_SYNCED: watcher_group_remove(&ws->synced, &w->m); break;
    case W_UNSYNCED: watcher_group_remove(&ws->unsynced, &w->m); break;
    case W_VICTIM:
        victim_unlink(ws, w);
        watch_response_free(w->pending);
        w->pending = NULL;
        break;
    }
    w->state = W_DETACHED;
    if (w->progress_notify) {
        if (w->pprev)
            w->pprev->pnext = w->pnext;
        else
            ws->progress = w->pnext;
        if (w->pnext)
            w->pnext->pprev = w->pprev;
        w->pprev = w->pnext = NULL;
        w->progress_notify = false;
    }
}

/* Removes w from its stream and frees it (or leaves it to the sync loop if
 * a history read is in flight for it). */
static void watcher_destroy(watchable *ws, watcher *w)
{
    detach(ws, w);
    id_remove(w->st, w);
    w->st = NULL;
    ws->nwatchers--;
    if (w->in_pass)
        w->zombie = true;
    else
        free(w);
}

static void make_synced(watchable *ws, watcher *w)
{
    w->state = W_SYNCED;
    watcher_group_add(&ws->synced, &w->m);
}

static void make_unsynced(watchable *ws, watcher *w)
{
    w->state = W_UNSYNCED;
    watcher_group_add(&ws->unsynced, &w->m);
}

/* w (detached from its group) could not take r: park it. */
static void make_victim(watchable *ws, watcher *w, watch_response *r, int64_t from,
                        int64_t next)
{
    w->state = W_VICTIM;
    w->pending = r;
    w->pending_from = from;
    w->min_rev = next;
    w->parked_at_ms = now_ms();
    victim_link(ws, w);
    ws->n_victimized++;
    /* A slow consumer is worth one line, not one per parked response:
     * at most one per 10 s, with how many were parked in between.  Under
     * ws->mu, but the limiter is a load and a compare in the common case. */
    static log_ratelimit rl = LOG_RATELIMIT_INIT;
    uint64_t skipped;
    if (log_enabled(LOG_WARN) && log_ratelimit_allow(&rl, 10000, &skipped))
        log_printf(LOG_WARN, "watch",
                   "slow consumer: watcher parked as victim watch_id=%lld rev=%lld "
                   "victims=%zu others_parked_since_last_line=%llu",
                   (long long)w->id, (long long)from, ws->nvictims,
                   (unsigned long long)skipped);
}

static bool passes_filters(const watcher *w, const kv_event *e)
{
    if (e->type == KV_EVENT_PUT)
        return !w->filter_put;
    return !w->filter_delete;
}

static watch_response *control_response(int64_t id, int64_t header_rev)
{
    watch_response *r = response_new(0);
    if (r) {
        r->watch_id = id;
        r->header_rev = header_rev;
    }
    return r;
}

/* A compacted watcher: etcd's {watch_id, canceled, compact_revision} with
 * no header revision, then the watcher is gone. */
static void cancel_compacted(watchable *ws, watcher *w, int64_t compact)
{
    watch_response *r = control_response(w->id, 0);
    if (!r)
        return; /* try again next pass */
    r->canceled = true;
    r->compact_rev = compact;
    r->progress_rev = w->min_rev - 1;
    enqueue(w->st, r, true);
    watcher_destroy(ws, w);
    ws->n_compacted++;
}


/* ---- the commit hook: notify ---- */

#define CNT_POISON UINT32_MAX /* the watcher's pair could not be recorded */

typedef struct match_ctx {
    watchable *ws;
    uint32_t e;
    int64_t rev;
    const kv_event *ev;
    size_t ntouched, npairs;
} match_ctx;

static void notify_visit(wg_member *m, void *arg)
{
    match_ctx *c = arg;
    watchable *ws = c->ws;
    watcher *w = (watcher *)m;
    if (c->rev < w->min_rev || !passes_filters(w, c->ev))
        return;
    if (w->stamp != ws->stamp) {
        /* touched/cnt hold at least nwatchers entries (see ensure_scratch) */
        w->stamp = ws->stamp;
        w->tidx = (uint32_t)c->ntouched;
        ws->touched[c->ntouched] = w;
        ws->cnt[c->ntouched] = 0;
        c->ntouched++;
    }
    if (ws->cnt[w->tidx] == CNT_POISON)
        return;
    if (c->npairs == ws->pcap) {
        size_t ncap = ws->pcap * 2;
        pair *np = realloc(ws->pairs, ncap * sizeof *np);
        if (!np) {
            /* cannot record: this watcher will be demoted to unsynced and
             * read the commit back from history */
            ws->cnt[w->tidx] = CNT_POISON;
            return;
        }
        ws->pairs = np;
        ws->pcap = ncap;
    }
    ws->pairs[c->npairs++] = (pair){w->tidx, c->e};
    ws->cnt[w->tidx]++;
}

/* Runs on the committer thread, after the batch is durable and
 * kvstore_rev() == rev_to.  Never blocks on a consumer: a full queue turns
 * the watcher into a victim; an allocation failure demotes it to unsynced
 * (the events are in the store's history). */
static void commit_hook(void *arg, int64_t rev_to, const kv_event *evs, size_t n)
{
    watchable *ws = arg;
    bool kick_sync = false, kick_victim = false;
    pthread_mutex_lock(&ws->mu);
    if (rev_to <= ws->rev) { /* seen already (start-up race, see watchable_new) */
        pthread_mutex_unlock(&ws->mu);
        return;
    }
    int64_t from = ws->rev + 1;
    if (watcher_group_size(&ws->synced) && n) {
        ws->stamp++;
        match_ctx c = {.ws = ws};
        for (size_t i = 0; i < n; i++) {
            c.rev = ev_rev(&evs[i]);
            if (c.rev < from)
                continue;
            c.e = (uint32_t)i;
            c.ev = &evs[i];
            watcher_group_match(&ws->synced, evs[i].kv.key.data, evs[i].kv.key.len,
                                notify_visit, &c);
        }
        if (c.ntouched) {
            watch_evblock *b = evblock_new(evs, n, ws->s, ws->o.cache_free);
            /* one response per touched watcher, sized by its count */
            watch_response **resp = (watch_response **)ws->resp;
            for (size_t t = 0; t < c.ntouched; t++) {
                watcher *w = ws->touched[t];
                watch_response *r = NULL;
                if (b && ws->cnt[t] != CNT_POISON && (r = response_new(ws->cnt[t]))) {
                    r->watch_id = w->id;
                    r->header_rev = rev_to;
                    r->progress_rev = rev_to;
                    r->want_prev_ = w->prev_kv;
                    r->block_ = b;
                    evblock_ref(b);
                }
                resp[t] = r;
            }
            for (size_t p = 0; p < c.npairs; p++) {
                watch_response *r = resp[ws->pairs[p].t];
                if (r)
                    response_add(r, b, ws->pairs[p].e);
            }
            for (size_t t = 0; t < c.ntouched; t++) {
                watcher *w = ws->touched[t];
                watch_response *r = resp[t];
                int64_t wfrom = w->min_rev > from ? w->min_rev : from;
                if (r && enqueue(w->st, r, false)) {
                    w->min_rev = rev_to + 1;
                    w->sent_since_tick = true;
                    continue;
                }
                watcher_group_remove(&ws->synced, &w->m);
                if (r) {
                    make_victim(ws, w, r, wfrom, rev_to + 1);
                    kick_victim = true;
                } else {
                    w->min_rev = wfrom;
                    make_unsynced(ws, w);
                    kick_sync = true;
                }
            }
            evblock_unref(b);
        }
    }
    ws->rev = rev_to;
    pthread_mutex_unlock(&ws->mu);
    if (kick_sync || kick_victim)
        kick(ws, kick_sync, kick_victim);
}

/* Grows the notify scratch so it holds `need` watchers. */
static int ensure_scratch(watchable *ws, size_t need)
{
    if (need <= ws->tcap)
        return 0;
    size_t ncap = ws->tcap * 2;
    while (ncap < need)
        ncap *= 2;
    watcher **t = realloc(ws->touched, ncap * sizeof *t);
    if (!t)
        return -1;
    ws->touched = t;
    uint32_t *c = realloc(ws->cnt, ncap * sizeof *c);
    if (!c)
        return -1;
    ws->cnt = c;
    void **r = realloc(ws->resp, ncap * sizeof *r);
    if (!r)
        return -1;
    ws->resp = r;
    ws->tcap = ncap;
    return 0;
}

/* ---- the sync loop: unsynced watchers catch up from history ---- */

/* One pass over at most max_watchers_per_sync runnable unsynced watchers.
 * Returns true if another pass should follow at once (work was done and
 * runnable unsynced watchers remain). */
static bool sync_pass(watchable *ws)
{
    int64_t compact = kvstore_compact_rev(ws->s); /* outside ws->mu: see kv.h threads */
    pthread_mutex_lock(&ws->mu);
    size_t total = watcher_group_size(&ws->unsynced);
    if (!total) {
        pthread_mutex_unlock(&ws->mu);
        return false;
    }
    int64_t cur = ws->rev;
    size_t nchosen = 0, blocked = 0, visited = 0;
    int64_t min = INT64_MAX, maxmin = 0;
    wg_member *m = ws->unsynced.all_head;
    while (m && visited < total && nchosen < ws->o.max_watchers_per_sync) {
        wg_member *next = m->all_next;
        watcher *w = (watcher *)m;
        visited++;
        if (compact > 0 && w->min_rev < compact) { /* etcd: minRev < compactRev */
            cancel_compacted(ws, w, compact);
        } else if (w->min_rev < -1) {
            /* below etcd's compactMainRev, which is -1 before any compaction */
            cancel_compacted(ws, w, -1);
        } else if (w->min_rev > cur || w->min_rev == -1) {
            /* -1: etcd's history read is empty (revision -1 encodes above
             * every revision), then the watcher continues from cur + 1 */
            if (w->min_rev == -1)
                w->min_rev = cur + 1;
            watcher_group_remove(&ws->unsynced, &w->m);
            make_synced(ws, w);
        } else if (stream_full(w->st)) {
            blocked++; /* no point reading what cannot be queued */
        } else {
            ws->chosen[nchosen++] = w;
            w->in_pass = true;
            if (w->min_rev < min)
                min = w->min_rev;
            if (w->min_rev > maxmin)
                maxmin = w->min_rev;
        }
        m = next;
    }
    /* round-robin: the next pass starts with watchers not served now */
    for (size_t i = 0; i < nchosen; i++)
        watcher_group_to_tail(&ws->unsynced, &ws->chosen[i]->m);
    if (!nchosen) {
        pthread_mutex_unlock(&ws->mu);
        return false;
    }
    bool locked = cur - min + 1 <= ws->o.sync_locked_revs;
    ws->n_history_reads++;
    ws->n_locked_reads += locked;
    if (!locked)
        pthread_mutex_unlock(&ws->mu);
    kv_event *evs = NULL;
    size_t n = 0;
    int64_t next_rev = min;
    /* The read spans sync_batch_revs revisions past the furthest-ahead
     * chosen watcher's start (so each gets a full response's worth), and
     * is bounded in events and bytes too: the batch's block lives until
     * every chosen watcher's reader has taken its response.  A revision is
     * never split (the read stops only between revisions). */
    int64_t from = min > 0 ? min : 1, to = cur;
    int64_t revs = (int64_t)ws->o.sync_batch_revs;
    if (revs > 0 && maxmin < cur - revs + 1)
        to = (maxmin > from ? maxmin : from) + revs - 1;
    kv_err err = kvstore_read_events_max(ws->s, from, to, ws->o.sync_batch_events,
                                         ws->o.sync_batch_bytes, &evs, &n, &next_rev);
    watch_evblock *b = NULL;
    if (err == KV_OK && n) {
        b = evblock_new(evs, n, ws->s, ws->o.cache_free);
        if (!b)
            err = KV_ERR_NOMEM;
    }
    kv_events_free(evs, n);
    if (!locked)
        pthread_mutex_lock(&ws->mu);

    bool progressed = false, deferred = false;
    size_t placed = 0; /* events put into this pass's responses */
    for (size_t i = 0; i < nchosen; i++) {
        watcher *w = ws->chosen[i];
        w->in_pass = false;
        if (w->zombie) { /* canceled or its stream closed during the read */
            free(w);
            continue;
        }
        if (err != KV_OK || deferred)
            continue; /* compacted: the next pass cancels it; else retry later */
        /* etcd's eventBatch (mvcc/watcher_group.go): the events of at most
         * watchBatchMaxRevs revisions that have events for this watcher
         * (filtered ones count: etcd filters at send time); the rest from
         * `more` on, in the next response. */
        size_t cnt = 0, nrevs = 0, end = n;
        int64_t more = 0, last = 0;
        for (size_t j = 0; j < n; j++) {
            const kv_event *ev = &b->evs[j];
            if (ev_rev(ev) < w->min_rev ||
                !wg_member_contains(&w->m, ev->kv.key.data, ev->kv.key.len))
                continue;
            if (ev_rev(ev) != last) {
                if (revs > 0 && nrevs == (size_t)revs) {
                    more = ev_rev(ev);
                    end = j;
                    break;
                }
                nrevs++;
                last = ev_rev(ev);
            }
            cnt += passes_filters(w, ev);
        }
        /* a pass fills at most sync_pass_events response slots (32 bytes
         * each, per watcher): the rest of the chosen wait for the next */
        if (cnt && placed && ws->o.sync_pass_events && placed + cnt > ws->o.sync_pass_events) {
            deferred = true;
            continue;
        }
        placed += cnt;
        int64_t upto = more ? more : next_rev; /* the next revision it needs */
        if (cnt) {
            watch_response *r = response_new(cnt);
            if (!r)
                continue;
            r->watch_id = w->id;
            r->header_rev = cur; /* etcd: the current revision for history */
            r->progress_rev = upto - 1;
            r->want_prev_ = w->prev_kv;
            r->block_ = b;
            evblock_ref(b);
            for (size_t j = 0; j < end; j++)
                if (ev_rev(&b->evs[j]) >= w->min_rev && passes_filters(w, &b->evs[j]) &&
                    wg_member_contains(&w->m, b->evs[j].kv.key.data, b->evs[j].kv.key.len))
                    response_add(r, b, j);
            if (!enqueue(w->st, r, false)) {
                watcher_group_remove(&ws->unsynced, &w->m);
                make_victim(ws, w, r, w->min_rev, upto);
                kick(ws, false, true);
                continue;
            }
            w->sent_since_tick = true;
        }
        progressed = true;
        if (upto > w->min_rev)
            w->min_rev = upto;
        if (w->min_rev > ws->rev) {
            watcher_group_remove(&ws->unsynced, &w->m);
            make_synced(ws, w);
        }
    }
    bool again = deferred || (progressed && watcher_group_size(&ws->unsynced) > blocked);
    pthread_mutex_unlock(&ws->mu);
    evblock_unref(b);
    return again;
}

/* ---- the victim loop ---- */

static size_t victim_pass(watchable *ws)
{
    bool kick_sync = false;
    pthread_mutex_lock(&ws->mu);
    uint64_t now = now_ms();
    for (watcher *w = ws->victims, *next; w; w = next) {
        next = w->vnext;
        if (enqueue(w->st, w->pending, false)) {
            w->pending = NULL;
            w->sent_since_tick = true;
        } else if (now - w->parked_at_ms >= ws->o.victim_max_park_ms) {
            /* the stream stays full: drop the parked events and let the
             * history (RocksDB) be the buffer */
            watch_response_free(w->pending);
            w->pending = NULL;
            w->min_rev = w->pending_from;
            ws->n_demoted++;
        } else {
            continue;
        }
        victim_unlink(ws, w);
        if (w->min_rev <= ws->rev) {
            make_unsynced(ws, w);
            kick_sync = true;
        } else {
            make_synced(ws, w);
        }
    }
    size_t left = ws->nvictims;
    pthread_mutex_unlock(&ws->mu);
    if (kick_sync)
        kick(ws, true, false);
    return left;
}

/* ---- progress_notify ---- */

static void progress_tick(watchable *ws)
{
    pthread_mutex_lock(&ws->mu);
    for (watcher *w = ws->progress; w; w = w->pnext) {
        /* etcd: only synced watchers, and not right after events */
        if (w->state == W_SYNCED && !w->sent_since_tick) {
            watch_response *r = control_response(w->id, ws->rev);
            if (r) {
                r->progress = true;
                r->progress_rev = ws->rev;
                if (!enqueue(w->st, r, false))
                    watch_response_free(r);
            }
        }
        w->sent_since_tick = false;
    }
    pthread_mutex_unlock(&ws->mu);
}

/* ---- loop threads ---- */

static void deadline_in(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *sync_main(void *arg)
{
    watchable *ws = arg;
    uint64_t next_progress = now_ms() + ws->o.progress_interval_ms;
    for (;;) {
        bool again = sync_pass(ws);
        uint64_t now = now_ms();
        if (now >= next_progress) {
            progress_tick(ws);
            next_progress = now + ws->o.progress_interval_ms;
        }
        pthread_mutex_lock(&ws->kick_mu);
        if (!ws->stop && !again && !ws->sync_kicked) {
            uint64_t wait = ws->o.sync_interval_ms;
            now = now_ms();
            if (next_progress > now && next_progress - now < wait)
                wait = next_progress - now;
            struct timespec ts;
            deadline_in(&ts, wait);
            pthread_cond_timedwait(&ws->kick_cv, &ws->kick_mu, &ts);
        }
        ws->sync_kicked = false;
        bool stop = ws->stop;
        pthread_mutex_unlock(&ws->kick_mu);
        if (stop)
            return NULL;
    }
}

static void *victim_main(void *arg)
{
    watchable *ws = arg;
    for (;;) {
        size_t left = victim_pass(ws);
        pthread_mutex_lock(&ws->kick_mu);
        while (!ws->stop && !ws->victim_kicked) {
            if (left) {
                struct timespec ts;
                deadline_in(&ts, ws->o.victim_retry_ms);
                if (pthread_cond_timedwait(&ws->kick_cv, &ws->kick_mu, &ts) == ETIMEDOUT)
                    break;
            } else {
                pthread_cond_wait(&ws->kick_cv, &ws->kick_mu);
            }
        }
        ws->victim_kicked = false;
        bool stop = ws->stop;
        pthread_mutex_unlock(&ws->kick_mu);
        if (stop)
            return NULL;
    }
}

/* ---- API ---- */

/* Belt and braces: kvstore_set_commit_hook now itself returns only once no
 * call to the old hook is running (and none starts after), which is all the
 * close path needs; this barrier predates that and is kept.  Batches are
 * processed one at a time in order, so once a request submitted after the
 * swap has completed, no call to the old hook is running or can start.  A
 * count-only range is the cheapest request that goes through the committer. */
static void hook_barrier(kvstore *s)
{
    kv_request *r = calloc(1, sizeof *r);
    if (!r || kv_bytes_set(&r->op.u.range.key, "\0", 1)) {
        free(r);
        return; /* out of memory: best effort */
    }
    r->kind = KV_REQ_OP;
    r->op.type = KV_OP_RANGE;
    r->op.u.range.count_only = true;
    kv_response_free(kvstore_do(s, r));
}

watchable *watchable_new(kvstore *s, const watchable_opts *opts)
{
    watchable *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->s = s;
    if (opts)
        ws->o = *opts;
    else
        watchable_opts_default(&ws->o);
    if (!ws->o.max_watchers_per_sync)
        ws->o.max_watchers_per_sync = 1;
    if (!ws->o.sync_batch_events)
        ws->o.sync_batch_events = 1;
    if (!ws->o.stream_queue_events)
        ws->o.stream_queue_events = 1;
    if (!ws->o.progress_interval_ms)
        ws->o.progress_interval_ms = 1;
    if (!ws->o.sync_interval_ms) /* 0 would spin */
        ws->o.sync_interval_ms = 1;
    if (!ws->o.victim_retry_ms)
        ws->o.victim_retry_ms = 1;
    pthread_condattr_t ca;
    bool mu = false, kmu = false, cv = false, g1 = false, g2 = false;
    if (pthread_mutex_init(&ws->mu, NULL))
        goto err;
    mu = true;
    if (pthread_mutex_init(&ws->kick_mu, NULL))
        goto err;
    kmu = true;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    cv = pthread_cond_init(&ws->kick_cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cv)
        goto err;
    if (watcher_group_init(&ws->synced))
        goto err;
    g1 = true;
    if (watcher_group_init(&ws->unsynced))
        goto err;
    g2 = true;
    ws->tcap = 64;
    ws->touched = malloc(ws->tcap * sizeof *ws->touched);
    ws->cnt = malloc(ws->tcap * sizeof *ws->cnt);
    ws->resp = malloc(ws->tcap * sizeof *ws->resp);
    ws->pcap = 256;
    ws->pairs = malloc(ws->pcap * sizeof *ws->pairs);
    ws->chosen = malloc(ws->o.max_watchers_per_sync * sizeof *ws->chosen);
    if (!ws->touched || !ws->cnt || !ws->resp || !ws->pairs || !ws->chosen)
        goto err;

    /* Start-up race: a commit may publish between reading the revision and
     * installing the hook.  Reading again after installing covers it; the
     * hook ignores revisions at or below ws->rev, and no watcher exists yet
     * to miss anything. */
    ws->rev = kvstore_rev(s);
    kvstore_set_commit_hook(s, commit_hook, ws);
    int64_t r = kvstore_rev(s);
    pthread_mutex_lock(&ws->mu);
    if (r > ws->rev)
        ws->rev = r;
    pthread_mutex_unlock(&ws->mu);

    if (pthread_create(&ws->sync_thr, NULL, sync_main, ws))
        goto err_hook;
    if (pthread_create(&ws->victim_thr, NULL, victim_main, ws)) {
        pthread_mutex_lock(&ws->kick_mu);
        ws->stop = true;
        pthread_cond_broadcast(&ws->kick_cv);
        pthread_mutex_unlock(&ws->kick_mu);
        pthread_join(ws->sync_thr, NULL);
        goto err_hook;
    }
    return ws;

err_hook:
    kvstore_set_commit_hook(s, NULL, NULL);
    hook_barrier(s);
err:
    free(ws->touched);
    free(ws->cnt);
    free(ws->resp);
    free(ws->pairs);
    free(ws->chosen);
    if (g2)
        watcher_group_destroy(&ws->unsynced);
    if (g1)
        watcher_group_destroy(&ws->synced);
    if (cv)
        pthread_cond_destroy(&ws->kick_cv);
    if (kmu)
        pthread_mutex_destroy(&ws->kick_mu);
    if (mu)
        pthread_mutex_destroy(&ws->mu);
    free(ws);
    return NULL;
}

void watchable_close(watchable *ws)
{
    if (!ws)
        return;
    kvstore_set_commit_hook(ws->s, NULL, NULL);
    hook_barrier(ws->s);
    pthread_mutex_lock(&ws->kick_mu);
    ws->stop = true;
    pthread_cond_broadcast(&ws->kick_cv);
    pthread_mutex_unlock(&ws->kick_mu);
    pthread_join(ws->sync_thr, NULL);
    pthread_join(ws->victim_thr, NULL);
    /* streams the gateway forgot: close them rather than leak */
    while (ws->streams)
        watch_stream_close(ws->streams);
    free(ws->touched);
    free(ws->cnt);
    free(ws->resp);
    free(ws->pairs);
    free(ws->chosen);
    watcher_group_destroy(&ws->unsynced);
    watcher_group_destroy(&ws->synced);
    pthread_cond_destroy(&ws->kick_cv);
    pthread_mutex_destroy(&ws->kick_mu);
    pthread_mutex_destroy(&ws->mu);
    free(ws);
}

watch_stream *watch_stream_new(watchable *ws, watch_wake_fn wake, void *wake_arg)
{
    watch_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->nbuckets = 4;
    st->ids = calloc(st->nbuckets, sizeof *st->ids);
    if (!st->ids || pthread_mutex_init(&st->mu, NULL)) {
        free(st->ids);
        free(st);
        return NULL;
    }
    st->ws = ws;
    st->wake = wake;
    st->wake_arg = wake_arg;
    pthread_mutex_lock(&ws->mu);
    st->next = ws->streams;
    if (ws->streams)
        ws->streams->prev = st;
    ws->streams = st;
    ws->nstreams++;
    pthread_mutex_unlock(&ws->mu);
    return st;
}

void watch_stream_close(watch_stream *st)
{
    if (!st)
        return;
    watchable *ws = st->ws;
    pthread_mutex_lock(&ws->mu);
    for (size_t i = 0; i < st->nbuckets; i++)
        while (st->ids[i])
            watcher_destroy(ws, st->ids[i]);
    if (st->prev)
        st->prev->next = st->next;
    else
        ws->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    ws->nstreams--;
    pthread_mutex_unlock(&ws->mu);
    /* unreachable now: nothing else can enqueue or wake */
    for (watch_response *r = st->qhead, *next; r; r = next) {
        next = r->next_;
        watch_response_free(r);
    }
    free(st->ids);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

watch_err watch_create(watch_stream *st, const watch_create_req *req, int64_t *id_out)
{
    watchable *ws = st->ws;
    static const uint8_t zero = 0;
    const uint8_t *key = req->key;
    size_t klen = req->key_len;
    if (!klen) { /* etcd: "\x00 is the smallest key" */
        key = &zero;
        klen = 1;
    }
    bool inf = req->range_end_len == 1 && req->range_end[0] == 0;
    size_t elen = inf ? 0 : req->range_end_len;
    watch_err err = WATCH_OK;
    if (elen && itree_bytes_cmp(key, klen, req->range_end, elen) >= 0)
        err = WATCH_ERR_EMPTY_RANGE;
    if (id_out)
        *id_out = -1;

    /* allocate before taking the lock */
    watch_response *cr = control_response(-1, 0);
    watcher *w = err ? NULL : calloc(1, sizeof *w + klen + elen);
    if (!cr || (!err && !w)) {
        free(cr);
        free(w);
        return WATCH_ERR_NOMEM;
    }

    pthread_mutex_lock(&ws->mu);
    int64_t id = -1;
    if (!err) {
        if (req->watch_id == WATCH_AUTO_ID) {
            while (id_find(st, st->next_id))
                st->next_id++;
            id = st->next_id++;
        } else {
            id = req->watch_id;
            if (id_find(st, id))
                err = WATCH_ERR_DUPLICATE_ID;
        }
    }
    if (!err && ensure_scratch(ws, ws->nwatchers + 1)) {
        pthread_mutex_unlock(&ws->mu);
        free(cr);
        free(w);
        return WATCH_ERR_NOMEM;
    }
    cr->header_rev = ws->rev;
    cr->created = true;
    if (err) {
        cr->canceled = true;
        cr->cancel_reason = watch_err_reason(err);
        enqueue(st, cr, true);
        pthread_mutex_unlock(&ws->mu);
        free(w);
        return err;
    }

    memcpy(w->bytes, key, klen);
    if (elen)
        memcpy(w->bytes + klen, req->range_end, elen);
    wg_member_set(&w->m, w->bytes, klen, w->bytes + klen, elen, inf);
    w->st = st;
    w->id = id;
    w->filter_put = req->filter_noput;
    w->filter_delete = req->filter_nodelete;
    w->prev_kv = req->prev_kv;
    int64_t start = req->start_revision;
    /* etcd: synced if start is 0 or in the future.  A start below -1 only
     * ever gets canceled as compacted (sync_pass), so -2 stands for all of
     * them: min_rev - 1 and cur - min_rev + 1 then cannot overflow. */
    if (start < -1)
        start = -2;
    bool synced = start == 0 || start > ws->rev;
    w->min_rev = !synced ? start : start > ws->rev + 1 ? start : ws->rev + 1;
    cr->watch_id = id;
    cr->progress_rev = w->min_rev - 1 < ws->rev ? w->min_rev - 1 : ws->rev;
    enqueue(st, cr, true); /* created strictly before any event */
    id_insert(st, w);
    ws->nwatchers++;
    if (req->progress_notify) {
        w->progress_notify = true;
        w->pnext = ws->progress;
        if (ws->progress)
            ws->progress->pprev = w;
        ws->progress = w;
    }
    if (synced)
        make_synced(ws, w);
    else
        make_unsynced(ws, w);
    /* No kick for an unsynced watcher: its history (or its compacted
     * cancel) comes from the sync loop's next periodic pass, within
     * sync_interval_ms, as on etcd.  So the created responses for the rest
     * of a request body come first, in etcd's order, and a body of many
     * history watches is served by one pass instead of one per create. */
    pthread_mutex_unlock(&ws->mu);
    if (id_out)
        *id_out = id;
    return WATCH_OK;
}

watch_err watch_cancel(watch_stream *st, int64_t watch_id)
{
    watchable *ws = st->ws;
    watch_response *r = control_response(watch_id, 0);
    if (!r)
        return WATCH_ERR_NOMEM;
    pthread_mutex_lock(&ws->mu);
    watcher *w = id_find(st, watch_id);
    if (!w) {
        pthread_mutex_unlock(&ws->mu);
        free(r);
        return WATCH_ERR_NOT_FOUND;
    }
    r->header_rev = ws->rev;
    r->canceled = true;
    watcher_destroy(ws, w);
    enqueue(st, r, true);
    pthread_mutex_unlock(&ws->mu);
    return WATCH_OK;
}

void watch_stream_request_progress(watch_stream *st)
{
    watchable *ws = st->ws;
    watch_response *r = control_response(-1, 0);
    if (!r)
        return;
    pthread_mutex_lock(&ws->mu);
    int64_t safe = ws->rev;
    for (size_t i = 0; i < st->nbuckets; i++)
        for (watcher *w = st->ids[i]; w; w = w->id_next) {
            int64_t r_w = safe;
            if (w->state == W_UNSYNCED)
                r_w = w->min_rev - 1;
            else if (w->state == W_VICTIM)
                r_w = w->pending_from - 1;
            if (r_w < safe)
                safe = r_w;
        }
    r->header_rev = ws->rev; /* etcd 3.4: the current revision, always */
    r->progress_rev = safe;
    r->progress = true;
    enqueue(st, r, true);
    pthread_mutex_unlock(&ws->mu);
}

int64_t watchable_rev(watchable *ws)
{
    pthread_mutex_lock(&ws->mu);
    int64_t r = ws->rev;
    pthread_mutex_unlock(&ws->mu);
    return r;
}

void watchable_get_stats(watchable *ws, watchable_stats *out)
{
    pthread_mutex_lock(&ws->mu);
    out->synced = watcher_group_size(&ws->synced);
    out->unsynced = watcher_group_size(&ws->unsynced);
    out->victims = ws->nvictims;
    out->streams = ws->nstreams;
    out->watchers = ws->nwatchers;
    out->victimized = ws->n_victimized;
    out->demoted = ws->n_demoted;
    out->history_reads = ws->n_history_reads;
    out->locked_reads = ws->n_locked_reads;
    out->compacted = ws->n_compacted;
    pthread_mutex_unlock(&ws->mu);
}
