/*
 * watch_cover.c — a POST watch stream's table of its watches (watch_cover.h):
 * fragment flags, and the SSE id rule for several watches on one stream.
 */
#include "watch_cover.h"

#include <stdlib.h>

void wcover_init(wcover *t)
{
    t->v = NULL;
    t->n = t->cap = 0;
    t->last_id = -1;
}

void wcover_free(wcover *t)
{
    free(t->v);
    wcover_init(t);
}

int wcover_add(wcover *t, int64_t id, int64_t done, bool fragment)
{
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 4;
        wcover_watch *p = realloc(t->v, ncap * sizeof *p);
        if (!p)
            return -1;
        t->v = p;
        t->cap = ncap;
    }
    t->v[t->n++] = (wcover_watch){.id = id, .done = done, .fragment = fragment};
    return 0;
}

wcover_watch *wcover_find(wcover *t, int64_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].id == id)
            return &t->v[i];
    return NULL;
}

bool wcover_fragment(const wcover *t, int64_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].id == id)
            return t->v[i].fragment;
    return false;
}

int64_t wcover_create_done(int64_t start_revision, int64_t cur)
{
    if (start_revision <= 0)
        return cur;
    return start_revision - 1 < cur ? start_revision - 1 : cur;
}

int64_t wcover_resume_start(int64_t start_revision, int64_t resume_start)
{
    return start_revision > resume_start ? start_revision : resume_start;
}

static void wc_raise(wcover_watch *w, int64_t rev)
{
    if (w && rev > w->done)
        w->done = rev;
}

void wcover_apply(wcover *t, const watch_response *r)
{
    if (r->canceled) {
        /* a refusal (-1) matches nothing; a cancel removes the oldest
         * entry of its id, the watch whose responses came before it */
        for (size_t i = 0; i < t->n; i++) {
            if (t->v[i].id == r->watch_id) {
                for (size_t k = i + 1; k < t->n; k++)
                    t->v[k - 1] = t->v[k];
                t->n--;
                break;
            }
        }
        return;
    }
    wcover_watch *w = wcover_find(t, r->watch_id);
    if (r->watch_id == -1 && !r->created && r->n_events == 0 && !w) {
        /* a progress_request answer: progress_rev covers every watch of
         * the stream (every event <= it was queued ahead of it) */
        for (size_t i = 0; i < t->n; i++)
            wc_raise(&t->v[i], r->progress_rev);
        return;
    }
    if (!w)
        return;
    int64_t rev = r->progress_rev;
    if (r->n_events) {
        int64_t last = r->events[r->n_events - 1].ev->kv.mod_revision;
        if (last > rev)
            rev = last;
    } else if (!r->created && rev <= 0) {
        rev = r->header_rev; /* a progress_notify without progress_rev */
    }
    wc_raise(w, rev);
}

int64_t wcover_rev(const wcover *t)
{
    if (!t->n)
        return -1;
    int64_t m = t->v[0].done;
    for (size_t i = 1; i < t->n; i++)
        if (t->v[i].done < m)
            m = t->v[i].done;
    return m;
}

int64_t wcover_take_id(wcover *t)
{
    int64_t s = wcover_rev(t);
    if (s < 0 || s <= t->last_id)
        return -1;
    t->last_id = s;
    return s;
}
