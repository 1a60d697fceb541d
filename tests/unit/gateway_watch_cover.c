/*
 * gateway_watch_cover.c — unit tests of gateway/watch_cover.c: the SSE id
 * rule of a watch stream with several watches (an id only up to what every
 * watch of the stream has delivered), the resume start, fragment flags.
 */
#include <stdlib.h>
#include <string.h>

#include "testhelp.h"
#include "watch_cover.h"

static kv_event evs[8];
static watch_event wevs[8];

/* A response of watch `id`; with events at revisions revs[0..n). */
static watch_response resp(int64_t id, int64_t header, int64_t progress, const int64_t *revs,
                           size_t n)
{
    watch_response r;
    memset(&r, 0, sizeof r);
    r.watch_id = id;
    r.header_rev = header;
    r.progress_rev = progress;
    for (size_t i = 0; i < n; i++) {
        memset(&evs[i], 0, sizeof evs[i]);
        evs[i].kv.mod_revision = revs[i];
        memset(&wevs[i], 0, sizeof wevs[i]);
        wevs[i].ev = &evs[i];
    }
    r.n_events = n;
    r.events = n ? wevs : NULL;
    return r;
}

static watch_response created(int64_t id, int64_t header, int64_t progress)
{
    watch_response r = resp(id, header, progress, NULL, 0);
    r.created = true;
    return r;
}

/* applies r, returns the id to send (-1: none) */
static int64_t step(wcover *t, watch_response r)
{
    wcover_apply(t, &r);
    return wcover_take_id(t);
}

int main(void)
{
    TEST("done at create, resume start") {
        CHECK_EQ_INT(wcover_create_done(0, 11), 11);
        CHECK_EQ_INT(wcover_create_done(2, 11), 1);
        CHECK_EQ_INT(wcover_create_done(7, 11), 6);
        CHECK_EQ_INT(wcover_create_done(50, 11), 11); /* future: the current one */
        CHECK_EQ_INT(wcover_resume_start(0, 5), 5);
        CHECK_EQ_INT(wcover_resume_start(2, 5), 5);
        CHECK_EQ_INT(wcover_resume_start(7, 5), 7);   /* never before its own start */
    }

    TEST("the audit's stream: a from 2, b from 7, at revision 11") {
        wcover t;
        wcover_init(&t);
        CHECK_EQ_INT(wcover_add(&t, 0, wcover_create_done(2, 11), false), 0);
        CHECK_EQ_INT(wcover_add(&t, 1, wcover_create_done(7, 11), false), 0);
        CHECK_EQ_INT(step(&t, created(0, 11, 1)), 1);
        CHECK_EQ_INT(step(&t, created(1, 11, 6)), -1); /* b's 6 would overstate a */
        static const int64_t a[] = {2, 3, 4, 5, 6}, b[] = {7, 8, 9, 10, 11};
        CHECK_EQ_INT(step(&t, resp(0, 11, 11, a, 5)), 6);
        CHECK_EQ_INT(step(&t, resp(1, 11, 11, b, 5)), 11);
        wcover_free(&t);
    }

    TEST("b's history first: no id until a has caught up") {
        wcover t;
        wcover_init(&t);
        wcover_add(&t, 0, 1, false);
        wcover_add(&t, 1, 6, false);
        CHECK_EQ_INT(step(&t, created(0, 11, 1)), 1);
        CHECK_EQ_INT(step(&t, created(1, 11, 6)), -1);
        static const int64_t a[] = {2, 6}, b[] = {7, 11};
        CHECK_EQ_INT(step(&t, resp(1, 11, 11, b, 2)), -1);
        CHECK_EQ_INT(step(&t, resp(0, 11, 11, a, 2)), 11);
        wcover_free(&t);
    }

    TEST("live: each watch's own events; a progress answer covers all") {
        wcover t;
        wcover_init(&t);
        wcover_add(&t, 0, 11, false);
        wcover_add(&t, 1, 11, false);
        CHECK_EQ_INT(step(&t, created(0, 11, 11)), 11);
        CHECK_EQ_INT(step(&t, created(1, 11, 11)), -1); /* same id: not repeated */
        static const int64_t r12[] = {12}, r13[] = {13};
        CHECK_EQ_INT(step(&t, resp(0, 12, 12, r12, 1)), -1); /* watch 1 may have 12 queued */
        CHECK_EQ_INT(step(&t, resp(0, 13, 13, r13, 1)), -1);
        CHECK_EQ_INT(wcover_rev(&t), 11);
        watch_response p = resp(-1, 13, 13, NULL, 0);
        p.progress = true;
        CHECK_EQ_INT(step(&t, p), 13);
        wcover_free(&t);
    }

    TEST("progress_notify of one watch, with and without progress_rev") {
        wcover t;
        wcover_init(&t);
        wcover_add(&t, 3, 5, false);
        watch_response p = resp(3, 9, 0, NULL, 0);
        p.progress = true;
        CHECK_EQ_INT(step(&t, p), 9);
        p = resp(3, 12, 10, NULL, 0);
        p.progress = true;
        CHECK_EQ_INT(step(&t, p), 10);
        wcover_free(&t);
    }

    TEST("a canceled watch leaves the table; the rest moves the id") {
        wcover t;
        wcover_init(&t);
        wcover_add(&t, 0, 1, false);
        wcover_add(&t, 1, 20, false);
        CHECK_EQ_INT(step(&t, created(0, 20, 1)), 1);
        watch_response c = resp(0, 0, 1, NULL, 0);
        c.canceled = true;
        c.compact_rev = 5;
        CHECK_EQ_INT(step(&t, c), 20);
        CHECK_EQ_INT(t.n, 1);
        c.watch_id = 1;
        CHECK_EQ_INT(step(&t, c), -1); /* empty: no id */
        CHECK_EQ_INT(wcover_rev(&t), -1);
        wcover_free(&t);
    }

    TEST("a refusal changes nothing; ids never go back") {
        wcover t;
        wcover_init(&t);
        wcover_add(&t, 0, 8, false);
        CHECK_EQ_INT(step(&t, created(0, 8, 8)), 8);
        watch_response r = created(-1, 8, 0);
        r.canceled = true;
        r.cancel_reason = "mvcc: duplicate watch ID provided on the WatchStream";
        CHECK_EQ_INT(step(&t, r), -1);
        CHECK_EQ_INT(t.n, 1);
        static const int64_t old[] = {7};
        CHECK_EQ_INT(step(&t, resp(0, 8, 7, old, 1)), -1);
        CHECK_EQ_INT(wcover_rev(&t), 8);
        wcover_free(&t);
    }

    TEST("an id created again after a cancel: the oldest entry is live") {
        wcover t;
        wcover_init(&t);
        wcover_add(&t, 5, 2, true);
        wcover_add(&t, 5, 9, false); /* cancel 5, create 5 again, in one body */
        CHECK(wcover_fragment(&t, 5));
        static const int64_t e[] = {3};
        CHECK_EQ_INT(step(&t, resp(5, 9, 3, e, 1)), 3);
        watch_response c = resp(5, 9, 3, NULL, 0);
        c.canceled = true;
        CHECK_EQ_INT(step(&t, c), 9);
        CHECK(!wcover_fragment(&t, 5));
        CHECK(!wcover_fragment(&t, 6));
        wcover_free(&t);
    }

    return TEST_REPORT();
}
