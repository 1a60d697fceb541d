/*
 * watch_cover.h — what a POST watch stream knows about its own watches:
 * the create_request options the gateway applies when it frames responses
 * (fragment), and, for SSE, how far each watch has been delivered, from
 * which the stream's `id:` lines are derived.  Pure: no locks, no I/O; one
 * table per stream, used by the handler (before the stream starts) and then
 * by the stream's reader only.
 *
 * The SSE id rule for a stream of several watches.  A client that reconnects
 * with `Last-Event-ID: N` has every watch of the stream restarted after N,
 * so an id N may be sent only when every watch of the stream has delivered
 * every event <= N.  Each watch w has done(w): every event of w <= done(w)
 * has been framed (in stream order, before anything framed later):
 *   - at create: min(start_revision - 1, current revision), or the current
 *     revision for a watch "from now" (read before the watch is created, so
 *     at most the revision it really continues after);
 *   - created:           raised to the response's progress_rev;
 *   - events:            raised to max(progress_rev, last event's revision);
 *   - progress_notify:   raised to its progress_rev (or header revision);
 *   - progress_request answer (watch_id -1): progress_rev covers every
 *     watch of the stream (watch.h), so every done(w) is raised to it;
 *   - canceled (cancel_request, compaction): the watch leaves the table
 *     (it will deliver nothing more; a resume re-creates it from the body);
 *   - refusals (duplicate id, empty range) never enter it.
 * The stream's revision S = min over the table of done(w).  A message gets
 * `id: S` when S is above the last id sent on the stream, and no id line
 * otherwise (an EventSource keeps its last event id across a message
 * without one), so ids never go back and never claim more than the slowest
 * watch has delivered.  An empty table (every watch canceled) sends none.
 *
 * Resume (Last-Event-ID N on a POST stream): each create_request of the
 * body starts at max(its start_revision, N + 1) (start_revision 0: N + 1).
 * Nothing <= N is sent again and nothing after it is lost; a watch that was
 * ahead of the slowest one when the connection dropped sends again what it
 * sent after N.  A client that tracks each watch's last mod_revision and
 * puts last + 1 into that create_request's start_revision on reconnect
 * gets every event exactly once (N + 1 never exceeds it).
 */
#ifndef KVGATE_WATCH_COVER_H
#define KVGATE_WATCH_COVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "watch.h"

typedef struct wcover_watch {
    int64_t id;      /* watch id */
    int64_t done;    /* every event of it <= done has been framed */
    bool fragment;   /* create_request.fragment */
} wcover_watch;

typedef struct wcover {
    wcover_watch *v; /* in creation order; an id may repeat (created again
                        after a cancel): the oldest entry is the live one
                        for the responses queued before its canceled */
    size_t n, cap;
    int64_t last_id; /* last id sent (-1: none) */
} wcover;

void wcover_init(wcover *t);
void wcover_free(wcover *t);

/* A watch the stream created.  0, or -1 on ENOMEM. */
int wcover_add(wcover *t, int64_t id, int64_t done, bool fragment);

/* The live entry for a watch id, or NULL. */
wcover_watch *wcover_find(wcover *t, int64_t id);

/* Whether the watch asked for fragment (false for unknown ids). */
bool wcover_fragment(const wcover *t, int64_t id);

/* done for a create: start_revision (0 = from now) at current revision cur. */
int64_t wcover_create_done(int64_t start_revision, int64_t cur);

/* A create_request's start revision on a stream resumed with Last-Event-ID
 * (resume_start = Last-Event-ID + 1 > 0). */
int64_t wcover_resume_start(int64_t start_revision, int64_t resume_start);

/* Applies one response (about to be framed in full) to the table. */
void wcover_apply(wcover *t, const watch_response *r);

/* The id to put on the message just framed: S if above the last id sent
 * (and then remembered), else -1 (no id line). */
int64_t wcover_take_id(wcover *t);

/* S itself (-1 when the table is empty); does not change anything. */
int64_t wcover_rev(const wcover *t);

#endif
