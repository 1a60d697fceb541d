/*
 * store_watch.c — the watchable layer on the real store (no mocks):
 * created-before-events, ids, refusals, matching (hash and interval tree),
 * filters, prev_kv, history, compaction cancel, cancel, progress, the wake
 * callback, many watchers on one key (memory per watcher), and stream close.
 * The concurrency tests (handoff, stalled streams) are in
 * store_watch_concurrent.c.
 */
#include "kv.h"
#include "watch.h"
#include "testhelp.h"

#include <ftw.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb, (void)f, (void)ftw;
    return remove(p);
}

typedef struct env {
    char dir[64];
    kvstore *s;
    watchable *ws;
} env;

static void env_open(env *e, const watchable_opts *o)
{
    strcpy(e->dir, "/tmp/kvgate-watch-test.XXXXXX");
    if (!mkdtemp(e->dir))
        abort();
    kvstore_opts so;
    kvstore_opts_default(&so);
    so.sync_writes = false;
    char *err = NULL;
    e->s = kvstore_open(e->dir, &so, &err);
    if (!e->s) {
        fprintf(stderr, "kvstore_open: %s\n", err ? err : "?");
        exit(2);
    }
    e->ws = watchable_new(e->s, o);
    if (!e->ws)
        abort();
}

static void env_close(env *e)
{
    watchable_close(e->ws);
    kvstore_close(e->s);
    nftw(e->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static kv_bytes bytes(const char *s)
{
    kv_bytes b = {0};
    if (s && *s)
        kv_bytes_set(&b, s, strlen(s));
    return b;
}

static int64_t do_req(env *e, kv_request *r)
{
    kv_response *resp = kvstore_do(e->s, r);
    int64_t rev = resp->err == KV_OK ? resp->header_revision : -1;
    if (resp->err != KV_OK)
        fprintf(stderr, "request failed: %s\n", kv_err_name(resp->err));
    kv_response_free(resp);
    return rev;
}

static int64_t put(env *e, const char *k, const char *v)
{
    kv_request *r = calloc(1, sizeof *r);
    r->kind = KV_REQ_OP;
    r->op.type = KV_OP_PUT;
    r->op.u.put.key = bytes(k);
    r->op.u.put.value = bytes(v);
    return do_req(e, r);
}

static int64_t del(env *e, const char *k, const char *end)
{
    kv_request *r = calloc(1, sizeof *r);
    r->kind = KV_REQ_OP;
    r->op.type = KV_OP_DELETE;
    r->op.u.del.key = bytes(k);
    r->op.u.del.range_end = bytes(end);
    return do_req(e, r);
}

/* A txn of two puts: one revision, two events. */
static int64_t put2(env *e, const char *k1, const char *k2)
{
    kv_txn_req *t = calloc(1, sizeof *t);
    t->n_success = 2;
    t->success = calloc(2, sizeof(kv_op));
    const char *ks[2] = {k1, k2};
    for (int i = 0; i < 2; i++) {
        t->success[i].type = KV_OP_PUT;
        t->success[i].u.put.key = bytes(ks[i]);
        t->success[i].u.put.value = bytes("t");
    }
    kv_request *r = calloc(1, sizeof *r);
    r->kind = KV_REQ_OP;
    r->op.type = KV_OP_TXN;
    r->op.u.txn = t;
    return do_req(e, r);
}

static int64_t compact(env *e, int64_t rev)
{
    kv_request *r = calloc(1, sizeof *r);
    r->kind = KV_REQ_COMPACT;
    r->compact.revision = rev;
    r->compact.physical = true;
    return do_req(e, r);
}

static watch_create_req wreq(const char *key, const char *end, int64_t start)
{
    watch_create_req q = {0};
    q.key = (const uint8_t *)key;
    q.key_len = strlen(key);
    if (end) {
        q.range_end = (const uint8_t *)end;
        q.range_end_len = *end ? strlen(end) : 1; /* "" means "\0" here */
    }
    q.start_revision = start;
    return q;
}

/* Pops with a deadline: the sync loop is asynchronous. */
static watch_response *pop_wait(watch_stream *st, int ms)
{
    for (int i = 0; i < ms; i++) {
        watch_response *r = watch_stream_pop(st);
        if (r)
            return r;
        usleep(1000);
    }
    return NULL;
}

static bool key_is(const kv_event *ev, const char *k)
{
    return ev->kv.key.len == strlen(k) && memcmp(ev->kv.key.data, k, ev->kv.key.len) == 0;
}

static atomic_int wakes;
static void on_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

int main(void)
{
    watchable_opts o;
    watchable_opts_default(&o);
    o.sync_interval_ms = 5;

    TEST("created first, then live put/put/delete; wake on empty->non-empty") {
        env e;
        env_open(&e, &o);
        int64_t r0 = put(&e, "foo", "bar");
        watch_stream *st = watch_stream_new(e.ws, on_wake, NULL);
        atomic_store(&wakes, 0);
        int64_t id = -2;
        watch_create_req q = wreq("foo", NULL, 0);
        CHECK_EQ_INT(watch_create(st, &q, &id), WATCH_OK);
        CHECK_EQ_INT(id, 0);
        CHECK_EQ_INT(atomic_load(&wakes), 1);
        watch_response *r = watch_stream_pop(st);
        CHECK(r && r->created && !r->canceled && r->watch_id == 0 && r->header_rev == r0 &&
              r->n_events == 0);
        watch_response_free(r);
        CHECK(watch_stream_pop(st) == NULL);
        int64_t r1 = put(&e, "foo", "baz");
        int64_t r2 = put(&e, "other", "x");
        int64_t r3 = del(&e, "foo", NULL);
        (void)r2;
        CHECK(atomic_load(&wakes) >= 2);
        r = watch_stream_pop(st);
        CHECK(r && r->n_events == 1 && r->header_rev == r1 && r->progress_rev == r1);
        if (r && r->n_events == 1) {
            const kv_event *ev = r->events[0].ev;
            CHECK_EQ_INT(ev->type, KV_EVENT_PUT);
            CHECK(key_is(ev, "foo"));
            CHECK_MEM(ev->kv.value.data, ev->kv.value.len, "baz", 3);
            CHECK_EQ_INT(ev->kv.mod_revision, r1);
            CHECK_EQ_INT(ev->kv.create_revision, r0);
            CHECK_EQ_INT(ev->kv.version, 2);
            CHECK(r->events[0].prev_kv == NULL);
        }
        watch_response_free(r);
        r = watch_stream_pop(st);
        CHECK(r && r->n_events == 1 && r->events[0].ev->type == KV_EVENT_DELETE &&
              r->events[0].ev->kv.mod_revision == r3 && r->events[0].ev->kv.value.len == 0);
        watch_response_free(r);
        CHECK(watch_stream_pop(st) == NULL);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("ids: auto from 0 skipping client ids; duplicate and empty range refused as etcd") {
        env e;
        env_open(&e, &o);
        int64_t rev = put(&e, "a", "1");
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("a", NULL, 0);
        int64_t id;
        q.watch_id = 1;
        CHECK_EQ_INT(watch_create(st, &q, &id), WATCH_OK);
        CHECK_EQ_INT(id, 1);
        CHECK_EQ_INT(watch_create(st, &q, &id), WATCH_ERR_DUPLICATE_ID);
        CHECK_EQ_INT(id, -1);
        q.watch_id = WATCH_AUTO_ID;
        int64_t ids[3];
        for (int i = 0; i < 3; i++)
            watch_create(st, &q, &ids[i]);
        CHECK(ids[0] == 0 && ids[1] == 2 && ids[2] == 3);
        watch_create_req bad = wreq("b", "a", 0);
        CHECK_EQ_INT(watch_create(st, &bad, &id), WATCH_ERR_EMPTY_RANGE);
        bad = wreq("b", "b", 0);
        CHECK_EQ_INT(watch_create(st, &bad, &id), WATCH_ERR_EMPTY_RANGE);
        watch_create_req fromkey = wreq("zzz", "", 0); /* range_end "\0" */
        CHECK_EQ_INT(watch_create(st, &fromkey, &id), WATCH_OK);
        CHECK_EQ_INT(id, 4);
        /* the queue: created 1, refusal, created 0, 2, 3, refusal x2, created 4 */
        int64_t want_id[] = {1, -1, 0, 2, 3, -1, -1, 4};
        bool want_cancel[] = {0, 1, 0, 0, 0, 1, 1, 0};
        const char *want_reason[] = {NULL, "mvcc: duplicate watch ID provided on the WatchStream",
                                     NULL, NULL, NULL, "mvcc: watcher range is empty",
                                     "mvcc: watcher range is empty", NULL};
        for (int i = 0; i < 8; i++) {
            watch_response *r = watch_stream_pop(st);
            CHECK(r != NULL);
            if (!r)
                break;
            CHECK_EQ_INT(r->watch_id, want_id[i]);
            CHECK(r->created);
            CHECK_EQ_INT(r->canceled, want_cancel[i]);
            CHECK_EQ_INT(r->header_rev, rev);
            if (want_reason[i])
                CHECK_EQ_STR(r->cancel_reason, want_reason[i]);
            else
                CHECK(r->cancel_reason == NULL);
            watch_response_free(r);
        }
        CHECK(watch_stream_pop(st) == NULL);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("matching: key, prefix, from-key, all keys, empty key = \\0; filters") {
        env e;
        env_open(&e, &o);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        enum { W_KEY, W_PREFIX, W_FROM, W_ALL, W_NOPUT, W_NODEL, W_ZERO, NW };
        watch_create_req qs[NW] = {
            wreq("foo", NULL, 0), wreq("foo", "fop", 0), wreq("foo", "", 0),
            wreq("", "", 0), /* key "" -> "\0", end "\0": all keys */
            wreq("foo", "fop", 0), wreq("foo", "fop", 0), wreq("", NULL, 0),
        };
        qs[W_NOPUT].filter_noput = true;
        qs[W_NODEL].filter_nodelete = true;
        for (int i = 0; i < NW; i++) {
            int64_t id;
            CHECK_EQ_INT(watch_create(st, &qs[i], &id), WATCH_OK);
            CHECK_EQ_INT(id, i);
        }
        for (int i = 0; i < NW; i++)
            watch_response_free(watch_stream_pop(st));
        put(&e, "foo", "1");   /* KEY PREFIX FROM ALL NODEL */
        put(&e, "foo1", "1");  /* PREFIX FROM ALL NODEL */
        put(&e, "fop", "1");   /* FROM ALL */
        put(&e, "abc", "1");   /* ALL */
        put(&e, "zzz", "1");   /* FROM ALL */
        del(&e, "foo1", NULL); /* PREFIX FROM ALL NOPUT */
        kv_bytes z = {(uint8_t *)"\0", 1};
        kv_request *rq = calloc(1, sizeof *rq);
        rq->kind = KV_REQ_OP;
        rq->op.type = KV_OP_PUT;
        kv_bytes_set(&rq->op.u.put.key, z.data, 1);
        do_req(&e, rq);        /* key "\0": ALL ZERO */
        int want[NW] = {[W_KEY] = 1, [W_PREFIX] = 3, [W_FROM] = 5, [W_ALL] = 7,
                        [W_NOPUT] = 1, [W_NODEL] = 2, [W_ZERO] = 1};
        int got[NW] = {0};
        watch_response *r;
        while ((r = watch_stream_pop(st))) {
            if (r->watch_id >= 0 && r->watch_id < NW)
                got[r->watch_id] += (int)r->n_events;
            if (r->watch_id == W_NOPUT)
                CHECK(r->events[0].ev->type == KV_EVENT_DELETE);
            if (r->watch_id == W_ZERO)
                CHECK(r->events[0].ev->kv.key.len == 1 && r->events[0].ev->kv.key.data[0] == 0);
            watch_response_free(r);
        }
        for (int i = 0; i < NW; i++)
            CHECK_EQ_INT(got[i], want[i]);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("a txn's events arrive in one response, in order") {
        env e;
        env_open(&e, &o);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("k", "l", 0);
        watch_create(st, &q, NULL);
        watch_response_free(watch_stream_pop(st));
        int64_t rev = put2(&e, "k2", "k1");
        watch_response *r = watch_stream_pop(st);
        CHECK(r && r->n_events == 2);
        if (r && r->n_events == 2) {
            CHECK(key_is(r->events[0].ev, "k2") && key_is(r->events[1].ev, "k1"));
            CHECK(r->events[0].ev->kv.mod_revision == rev && r->events[1].ev->kv.mod_revision == rev);
        }
        watch_response_free(r);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("prev_kv: live and from history; a delete's prev is the last put") {
        env e;
        env_open(&e, &o);
        int64_t r1 = put(&e, "foo", "v1");
        int64_t r2 = put(&e, "foo", "v2");
        int64_t r3 = del(&e, "foo", NULL);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("foo", NULL, r1);
        q.prev_kv = true;
        watch_create(st, &q, NULL);
        watch_create_req q2 = wreq("foo", NULL, 0);
        q2.prev_kv = true;
        watch_create(st, &q2, NULL);
        /* the two created responses, then watcher 0's history (the sync
         * loop may run between the two creates: order across watchers of a
         * stream is not fixed, only created-before-events per watcher) */
        watch_response *r, *hist = NULL;
        int created = 0;
        while ((!hist || created < 2) && (r = pop_wait(st, 2000))) {
            if (r->created) {
                created++;
                CHECK(r->watch_id == 0 || r->watch_id == 1);
                CHECK(r->watch_id == 1 || !hist);
                watch_response_free(r);
            } else {
                hist = r;
            }
        }
        r = hist;
        CHECK(r && r->watch_id == 0 && r->n_events == 3 && r->header_rev == r3);
        if (r && r->n_events == 3) {
            CHECK(r->events[0].prev_kv == NULL);
            CHECK(r->events[1].prev_kv && r->events[1].prev_kv->mod_revision == r1);
            CHECK(r->events[2].prev_kv && r->events[2].prev_kv->mod_revision == r2);
            CHECK(r->events[2].prev_kv &&
                  memcmp(r->events[2].prev_kv->value.data, "v2", 2) == 0);
            CHECK_EQ_INT(r->events[2].ev->type, KV_EVENT_DELETE);
        }
        watch_response_free(r);
        int64_t r4 = put(&e, "foo", "v3");
        int64_t r5 = put(&e, "foo", "v4");
        (void)r4;
        for (int k = 0; k < 2; k++) { /* both watchers get r4 (no prev: deleted) */
            r = pop_wait(st, 2000);
            CHECK(r && r->n_events == 1 && r->events[0].prev_kv == NULL);
            watch_response_free(r);
        }
        for (int k = 0; k < 2; k++) {
            r = pop_wait(st, 2000);
            CHECK(r && r->n_events == 1 && r->events[0].ev->kv.mod_revision == r5 &&
                  r->events[0].prev_kv && r->events[0].prev_kv->mod_revision == r4);
            watch_response_free(r);
        }
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("history batches count revisions, as etcd's watchBatchMaxRevs; filtered ones too") {
        watchable_opts o2 = o;
        o2.sync_batch_revs = 4;
        env e;
        env_open(&e, &o2);
        /* 10 revisions of two events each (b/1, b/2), then 3 of other keys */
        int64_t first = 0;
        for (int i = 0; i < 10; i++) {
            int64_t rv = put2(&e, "b/1", "b/2");
            if (!first)
                first = rv;
        }
        for (int i = 0; i < 3; i++)
            put(&e, "zz", "x");
        int64_t last = watchable_rev(e.ws);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("b/", "b0", first);
        watch_create(st, &q, NULL);
        watch_response *r = watch_stream_pop(st);
        CHECK(r && r->created);
        watch_response_free(r);
        /* 4 + 4 + 2 revisions: 8, 8 and 4 events */
        size_t want[3] = {8, 8, 4};
        int64_t expect = first;
        for (int k = 0; k < 3; k++) {
            r = pop_wait(st, 3000);
            CHECK(r && r->n_events == want[k]);
            if (!r)
                break;
            for (size_t i = 0; i < r->n_events; i++)
                CHECK_EQ_INT(r->events[i].ev->kv.mod_revision, expect + (int64_t)(i / 2));
            expect += (int64_t)r->n_events / 2;
            CHECK_EQ_INT(r->header_rev, last);
            if (k < 2)
                CHECK_EQ_INT(r->progress_rev, expect - 1);
            else
                CHECK(r->progress_rev >= expect - 1 && r->progress_rev <= last);
            watch_response_free(r);
        }
        CHECK_EQ_INT(expect, first + 10);
        /* NOPUT on every event: nothing is sent, yet the revisions count
         * (etcd filters at send time), and the watcher ends up synced */
        watch_create_req q2 = wreq("b/", "b0", first);
        q2.filter_noput = true;
        int64_t id2 = -1;
        watch_create(st, &q2, &id2);
        r = watch_stream_pop(st);
        CHECK(r && r->created && r->watch_id == id2);
        watch_response_free(r);
        int64_t dl = del(&e, "b/1", NULL);
        int seen2 = 0;
        for (int k = 0; k < 2 && (r = pop_wait(st, 3000)); k++) {
            CHECK(r->n_events == 1 && r->events[0].ev->kv.mod_revision == dl);
            seen2 += r->watch_id == id2;
            watch_response_free(r);
        }
        CHECK_EQ_INT(seen2, 1);
        CHECK(!watch_stream_pop(st));
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("one pass fills at most sync_pass_events response slots; the rest follow") {
        watchable_opts o2 = o;
        o2.sync_pass_events = 10;
        env e;
        env_open(&e, &o2);
        int64_t first = 0;
        for (int i = 0; i < 6; i++) {
            int64_t rv = put(&e, "p", "x");
            if (!first)
                first = rv;
        }
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        for (int k = 0; k < 3; k++) {
            watch_create_req q = wreq("p", NULL, first);
            watch_create(st, &q, NULL);
        }
        int got[3] = {0, 0, 0};
        int created = 0;
        watch_response *r;
        while ((got[0] < 6 || got[1] < 6 || got[2] < 6) && (r = pop_wait(st, 3000))) {
            if (r->created)
                created++;
            else if (r->watch_id >= 0 && r->watch_id < 3) {
                CHECK(r->n_events == 6); /* each watcher's batch stays whole */
                got[r->watch_id] += (int)r->n_events;
            }
            watch_response_free(r);
        }
        CHECK_EQ_INT(created, 3);
        CHECK(got[0] == 6 && got[1] == 6 && got[2] == 6);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("history then live: one pass with small batches, no gap, no dup") {
        watchable_opts o2 = o;
        o2.sync_batch_events = 3;
        o2.sync_locked_revs = 1;
        env e;
        env_open(&e, &o2);
        int64_t first = 0;
        for (int i = 0; i < 20; i++) {
            int64_t rv = put(&e, i % 2 ? "h1" : "h0", "x");
            if (!first)
                first = rv;
        }
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("h", "i", first + 1);
        watch_create(st, &q, NULL);
        watch_response *r = watch_stream_pop(st);
        CHECK(r && r->created);
        watch_response_free(r);
        int64_t expect = first + 1, last = watchable_rev(e.ws);
        int responses = 0;
        while (expect <= last && (r = pop_wait(st, 2000))) {
            responses++;
            for (size_t i = 0; i < r->n_events; i++)
                CHECK_EQ_INT(r->events[i].ev->kv.mod_revision, expect++);
            CHECK(r->progress_rev >= expect - 1);
            watch_response_free(r);
        }
        CHECK_EQ_INT(expect, last + 1);
        CHECK(responses >= 6); /* batches of 3 events */
        int64_t lv = put(&e, "h5", "x");
        r = pop_wait(st, 2000);
        CHECK(r && r->n_events == 1 && r->events[0].ev->kv.mod_revision == lv);
        watch_response_free(r);
        watchable_stats s;
        watchable_get_stats(e.ws, &s);
        CHECK_EQ_INT(s.synced, 1);
        CHECK_EQ_INT(s.unsynced, 0);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("future start revision: events from that revision on") {
        env e;
        env_open(&e, &o);
        int64_t rv = put(&e, "f", "0");
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("f", NULL, rv + 2);
        watch_create(st, &q, NULL);
        watch_response_free(watch_stream_pop(st));
        put(&e, "f", "1");
        int64_t r2 = put(&e, "f", "2");
        watch_response *r = pop_wait(st, 500);
        CHECK(r && r->n_events == 1 && r->events[0].ev->kv.mod_revision == r2);
        watch_response_free(r);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("compacted start: created, then canceled with compact_revision") {
        env e;
        env_open(&e, &o);
        for (int i = 0; i < 5; i++)
            put(&e, "c", "x");
        int64_t cur = put(&e, "c", "y");
        CHECK(compact(&e, cur - 1) > 0);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("c", NULL, 2);
        int64_t id;
        CHECK_EQ_INT(watch_create(st, &q, &id), WATCH_OK);
        watch_response *r = watch_stream_pop(st);
        CHECK(r && r->created && !r->canceled && r->watch_id == id);
        watch_response_free(r);
        r = pop_wait(st, 1000);
        CHECK(r && r->canceled && !r->created && r->compact_rev == cur - 1 && r->watch_id == id &&
              r->header_rev == 0);
        watch_response_free(r);
        /* the id is free again and a watch above the compaction works */
        q = wreq("c", NULL, cur);
        q.watch_id = id;
        CHECK_EQ_INT(watch_create(st, &q, NULL), WATCH_OK);
        watch_response_free(watch_stream_pop(st));
        r = pop_wait(st, 1000);
        CHECK(r && r->n_events == 1 && r->events[0].ev->kv.mod_revision == cur);
        watch_response_free(r);
        watchable_stats s;
        watchable_get_stats(e.ws, &s);
        CHECK_EQ_INT(s.watchers, 1);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("negative start revisions as etcd 3.4 (and no int64 overflow)") {
        env e;
        env_open(&e, &o);
        put(&e, "n", "0");
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        /* below etcd's compactMainRev (-1 before any compaction): canceled
         * with compact_revision -1 */
        int64_t starts[] = {INT64_MIN, -2};
        for (int i = 0; i < 2; i++) {
            watch_create_req q = wreq("n", NULL, starts[i]);
            int64_t id;
            CHECK_EQ_INT(watch_create(st, &q, &id), WATCH_OK);
            watch_response *r = watch_stream_pop(st);
            CHECK(r && r->created && !r->canceled);
            watch_response_free(r);
            r = pop_wait(st, 1000);
            CHECK(r && r->canceled && r->compact_rev == -1 && r->watch_id == id);
            watch_response_free(r);
        }
        /* -1: no history (etcd's read of it is empty), live events after */
        watch_create_req q = wreq("n", NULL, -1);
        CHECK_EQ_INT(watch_create(st, &q, NULL), WATCH_OK);
        watch_response_free(watch_stream_pop(st));
        usleep(50 * 1000); /* a few sync passes */
        int64_t r1 = put(&e, "n", "1");
        watch_response *r = pop_wait(st, 1000);
        CHECK(r && r->n_events == 1 && r->events[0].ev->kv.mod_revision == r1);
        watch_response_free(r);
        /* INT64_MAX: synced, waits for a revision that never comes */
        q = wreq("n", NULL, INT64_MAX);
        CHECK_EQ_INT(watch_create(st, &q, NULL), WATCH_OK);
        watch_response_free(watch_stream_pop(st));
        put(&e, "n", "2");
        r = pop_wait(st, 1000); /* only the -1 watcher's event */
        CHECK(r && r->n_events == 1);
        watch_response_free(r);
        CHECK(pop_wait(st, 50) == NULL);
        /* after a compaction every negative start is canceled with it */
        int64_t cur = put(&e, "n", "3");
        watch_response_free(pop_wait(st, 1000));
        CHECK(compact(&e, cur) > 0);
        int64_t after[] = {INT64_MIN, -1};
        for (int i = 0; i < 2; i++) {
            q = wreq("n", NULL, after[i]);
            CHECK_EQ_INT(watch_create(st, &q, NULL), WATCH_OK);
            watch_response_free(watch_stream_pop(st));
            r = pop_wait(st, 1000);
            CHECK(r && r->canceled && r->compact_rev == cur);
            watch_response_free(r);
        }
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("compaction while unsynced (stalled) cancels with compact_revision") {
        watchable_opts o2 = o;
        o2.stream_queue_events = 1;
        o2.victim_max_park_ms = 1;
        env e;
        env_open(&e, &o2);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("s", NULL, 0);
        watch_create(st, &q, NULL);
        /* never popped: created occupies the queue, the watcher falls behind */
        int64_t last = 0;
        for (int i = 0; i < 10; i++)
            last = put(&e, "s", "x");
        usleep(50000);
        compact(&e, last);
        usleep(50000);
        watch_response *r = watch_stream_pop(st); /* created */
        CHECK(r && r->created);
        watch_response_free(r);
        bool canceled = false;
        while ((r = pop_wait(st, 500))) {
            if (r->canceled && r->compact_rev == last)
                canceled = true;
            watch_response_free(r);
            if (canceled)
                break;
        }
        CHECK(canceled);
        watchable_stats s;
        watchable_get_stats(e.ws, &s);
        CHECK_EQ_INT(s.watchers, 0);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("byte bound: a stalled stream holds ~stream_queue_bytes, then catches up in order") {
        watchable_opts o2 = o;
        o2.stream_queue_bytes = 4096;
        o2.sync_batch_bytes = 4096;
        o2.victim_max_park_ms = 1;
        env e;
        env_open(&e, &o2);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("b", NULL, 0);
        watch_create(st, &q, NULL);
        static char big[1001];
        memset(big, 'v', 1000);
        int64_t first = 0, last = 0;
        for (int i = 0; i < 50; i++) {
            last = put(&e, "b", big);
            if (!first)
                first = last;
        }
        usleep(50000);
        /* created + about 4 KiB of events, not the 50 KB written */
        CHECK(watch_stream_queued(st) <= 1 + 5);
        /* and the backlog the consumer reports counts too */
        watch_stream_set_backlog(st, 1 << 20);
        int64_t more = put(&e, "b", big);
        CHECK(watch_stream_queued(st) <= 1 + 5);
        watch_stream_set_backlog(st, 0);
        watchable_stats s;
        watchable_get_stats(e.ws, &s);
        CHECK(s.victimized >= 1);
        int64_t want = first;
        size_t maxn = 0;
        watch_response *r;
        while (want <= more && (r = pop_wait(st, 2000))) {
            for (size_t i = 0; i < r->n_events; i++) {
                CHECK_EQ_INT(r->events[i].ev->kv.mod_revision, want);
                CHECK_EQ_INT(r->events[i].ev->kv.value.len, 1000);
                want++;
            }
            if (r->n_events > maxn)
                maxn = r->n_events;
            watch_response_free(r);
        }
        CHECK_EQ_INT(want, more + 1);
        CHECK(maxn <= 5); /* history batches bounded by sync_batch_bytes */
        (void)last;
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("cancel: canceled response after queued events; unknown id answers nothing") {
        env e;
        env_open(&e, &o);
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("x", NULL, 0);
        int64_t id;
        watch_create(st, &q, &id);
        int64_t rv = put(&e, "x", "1");
        CHECK_EQ_INT(watch_cancel(st, id), WATCH_OK);
        CHECK_EQ_INT(watch_cancel(st, id), WATCH_ERR_NOT_FOUND);
        CHECK_EQ_INT(watch_cancel(st, 42), WATCH_ERR_NOT_FOUND);
        put(&e, "x", "2");
        watch_response *r = watch_stream_pop(st);
        CHECK(r && r->created);
        watch_response_free(r);
        r = watch_stream_pop(st);
        CHECK(r && r->n_events == 1);
        watch_response_free(r);
        r = watch_stream_pop(st);
        CHECK(r && r->canceled && !r->created && r->watch_id == id && r->header_rev == rv &&
              r->compact_rev == 0);
        watch_response_free(r);
        CHECK(watch_stream_pop(st) == NULL);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("progress request: current revision when synced, safe revision while catching up") {
        watchable_opts o2 = o;
        o2.sync_interval_ms = 100000; /* the sync loop only runs when kicked */
        env e;
        env_open(&e, &o2);
        int64_t r1 = put(&e, "p", "1");
        int64_t r2 = put(&e, "p", "2");
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_stream_request_progress(st); /* no watchers */
        watch_response *r = watch_stream_pop(st);
        CHECK(r && r->progress && r->watch_id == -1 && r->header_rev == r2);
        watch_response_free(r);
        watch_create_req q = wreq("p", NULL, 0);
        watch_create(st, &q, NULL);
        watch_stream_request_progress(st);
        watch_response_free(watch_stream_pop(st));
        r = watch_stream_pop(st);
        CHECK(r && r->progress && r->watch_id == -1 && r->header_rev == r2 &&
              r->progress_rev == r2);
        watch_response_free(r);
        /* a watcher from history that has not caught up yet: etcd 3.4's
         * header revision, but a safe progress_rev */
        watch_create_req h = wreq("p", NULL, r1);
        watch_create(st, &h, NULL);
        watch_stream_request_progress(st);
        r = watch_stream_pop(st);
        CHECK(r && r->created);
        watch_response_free(r);
        /* the sync loop may have run since the create: its history may be queued ahead
         * of the answer (then progress_rev covers it) or not yet (then
         * progress_rev stops before it) */
        bool hist_first = false;
        while ((r = watch_stream_pop(st)) && r->watch_id != -1) {
            hist_first = true;
            watch_response_free(r);
        }
        CHECK(r && r->progress && r->n_events == 0);
        if (r) {
            CHECK_EQ_INT(r->header_rev, r2);
            CHECK_EQ_INT(r->progress_rev, hist_first ? r2 : r1 - 1);
        }
        watch_response_free(r);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("progress_notify: idle synced watchers get {watch_id, header} ticks; others do not") {
        watchable_opts o2 = o;
        o2.progress_interval_ms = 30;
        env e;
        env_open(&e, &o2);
        int64_t rv = put(&e, "q", "1");
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("q", NULL, 0);
        q.progress_notify = true;
        watch_create(st, &q, NULL);
        watch_create_req q2 = wreq("q2", NULL, 0);
        watch_create(st, &q2, NULL);
        watch_response_free(watch_stream_pop(st));
        watch_response_free(watch_stream_pop(st));
        usleep(120000);
        int ticks = 0, others = 0;
        watch_response *r;
        while ((r = watch_stream_pop(st))) {
            if (r->progress && r->watch_id == 0 && r->header_rev == rv && !r->n_events)
                ticks++;
            else
                others++;
            watch_response_free(r);
        }
        CHECK(ticks >= 2);
        CHECK_EQ_INT(others, 0);
        watch_stream_close(st);
        env_close(&e);
    }

    TEST("2,000 watchers on one key: one write reaches each once; memory per watcher") {
        env e;
        env_open(&e, &o);
        enum { NS = 100, PER = 20 };
        static watch_stream *sts[NS];
        struct mallinfo2 m0 = mallinfo2();
        for (int i = 0; i < NS; i++) {
            sts[i] = watch_stream_new(e.ws, NULL, NULL);
            for (int j = 0; j < PER; j++) {
                watch_create_req q = wreq("hot/key/with/a/realistic/length", NULL, 0);
                watch_create(sts[i], &q, NULL);
            }
        }
        for (int i = 0; i < NS; i++) /* created responses */
            for (int j = 0; j < PER; j++)
                watch_response_free(watch_stream_pop(sts[i]));
        struct mallinfo2 m1 = mallinfo2();
        double per = (double)(m1.uordblks - m0.uordblks) / (NS * PER);
        printf("memory per watcher (incl. its share of streams): %.0f bytes\n", per);
        CHECK(per < 9 * 1024);
        put(&e, "unrelated", "x");
        for (int i = 0; i < NS; i++)
            CHECK_EQ_INT(watch_stream_queued(sts[i]), 0);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t rv = put(&e, "hot/key/with/a/realistic/length", "v");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("put reaching 2000 watchers: %.2f ms\n",
               (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        int got = 0, bad = 0;
        for (int i = 0; i < NS; i++) {
            watch_response *r;
            while ((r = watch_stream_pop(sts[i]))) {
                got++;
                bad += !(r->n_events == 1 && r->events[0].ev->kv.mod_revision == rv);
                watch_response_free(r);
            }
        }
        CHECK_EQ_INT(got, NS * PER);
        CHECK_EQ_INT(bad, 0);
        /* CPU per delivered event: 50 commits x 2,000 watchers, queued by
         * the committer and popped here (prev_kv off) */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long delivered = 0;
        for (int k = 0; k < 50; k++) {
            put(&e, "hot/key/with/a/realistic/length", "v");
            for (int i = 0; i < NS; i++) {
                watch_response *r;
                while ((r = watch_stream_pop(sts[i]))) {
                    delivered += (long)r->n_events;
                    watch_response_free(r);
                }
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)delivered;
        printf("per delivered event (commit, match, queue, pop, free): %.0f ns\n", ns);
        CHECK_EQ_INT(delivered, 50L * NS * PER);
        /* cancel half of them one by one, the others still get events */
        for (int i = 0; i < NS; i++)
            for (int j = 0; j < PER; j += 2)
                CHECK_EQ_INT(watch_cancel(sts[i], j), WATCH_OK);
        put(&e, "hot/key/with/a/realistic/length", "w");
        got = 0;
        for (int i = 0; i < NS; i++) {
            watch_response *r;
            while ((r = watch_stream_pop(sts[i]))) {
                got += (int)r->n_events;
                watch_response_free(r);
            }
        }
        CHECK_EQ_INT(got, NS * PER / 2);
        for (int i = 0; i < NS; i++)
            watch_stream_close(sts[i]);
        watchable_stats s;
        watchable_get_stats(e.ws, &s);
        CHECK(s.watchers == 0 && s.synced == 0 && s.streams == 0);
        env_close(&e);
    }

    TEST("closing a stream with queued responses and watchers in every state frees all") {
        watchable_opts o2 = o;
        o2.stream_queue_events = 2;
        o2.victim_max_park_ms = 100000;
        env e;
        env_open(&e, &o2);
        put(&e, "z", "0");
        watch_stream *st = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("z", NULL, 0);
        watch_create(st, &q, NULL);
        watch_create_req q2 = wreq("z", NULL, 1); /* history */
        watch_create(st, &q2, NULL);
        for (int i = 0; i < 5; i++)
            put(&e, "z", "x");
        usleep(20000);
        watchable_stats s;
        watchable_get_stats(e.ws, &s);
        CHECK(s.victims + s.unsynced >= 1);
        watch_stream_close(st);
        watchable_get_stats(e.ws, &s);
        CHECK(s.watchers == 0 && s.victims == 0 && s.unsynced == 0 && s.synced == 0);
        env_close(&e); /* ASan reports any leak */
    }

    TEST("event cache: shared per event, separate with/without prev_kv") {
        env e;
        env_open(&e, &o);
        watch_stream *a = watch_stream_new(e.ws, NULL, NULL);
        watch_stream *b = watch_stream_new(e.ws, NULL, NULL);
        watch_create_req q = wreq("e", NULL, 0);
        watch_create(a, &q, NULL);
        watch_create(b, &q, NULL);
        q.prev_kv = true;
        watch_create(b, &q, NULL);
        watch_response_free(watch_stream_pop(a));
        watch_response_free(watch_stream_pop(b));
        watch_response_free(watch_stream_pop(b));
        put(&e, "e", "1");
        watch_response *ra = watch_stream_pop(a), *rb = watch_stream_pop(b),
                       *rc = watch_stream_pop(b);
        CHECK(ra && rb && rc);
        if (rb && rb->watch_id == 1) { /* rb: without prev_kv, rc: with */
            watch_response *t = rb;
            rb = rc;
            rc = t;
        }
        if (ra && rb && rc) {
            CHECK(ra->events[0].ev == rb->events[0].ev); /* shared, not copied */
            CHECK(watch_event_cache_get(&ra->events[0]) == NULL);
            static int tag1, tag2;
            CHECK(watch_event_cache_set(&ra->events[0], &tag1) == &tag1);
            CHECK(watch_event_cache_get(&rb->events[0]) == &tag1);
            CHECK(watch_event_cache_get(&rc->events[0]) == NULL);
            CHECK(watch_event_cache_set(&rc->events[0], &tag2) == &tag2);
            CHECK(watch_event_cache_get(&ra->events[0]) == &tag1);
        }
        watch_response_free(ra);
        watch_response_free(rb);
        watch_response_free(rc);
        watch_stream_close(a);
        watch_stream_close(b);
        env_close(&e);
    }

    return TEST_REPORT();
}
