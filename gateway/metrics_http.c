/*
 * metrics_http.c — see metrics_http.h.  Names follow Prometheus's
 * conventions: kvgate_ prefix, base units (seconds, bytes), _total on
 * counters.
 */
#include "metrics_http.h"

#include <stdlib.h>

#include "errors.h"
#include "metrics.h"

/* Group-commit batch sizes: requests per batch, power-of-two buckets as
 * counted by the store (kv.h KVSTORE_BATCH_BUCKETS: le 1, 2, 4 .. 1024). */
static const uint64_t mh_batch_bounds[KVSTORE_BATCH_BUCKETS - 1] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024,
};

static void gauge(gwbuf *b, const char *name, const char *help, int64_t v)
{
    metrics_put_family(b, name, "gauge", help);
    metrics_put_i64(b, name, NULL, v);
}

static void counter(gwbuf *b, const char *name, const char *help, uint64_t v)
{
    metrics_put_family(b, name, "counter", help);
    metrics_put_u64(b, name, NULL, v);
}

void metrics_http_render(metrics_http *mh, gwbuf *b)
{
    /* HTTP */
    const metrics_requests *rq = mh->srv ? gw_server_metrics(mh->srv) : NULL;
    if (rq)
        metrics_put_requests(b, rq);
    if (mh->srv) {
        gauge(b, "kvgate_http_connections", "Open client connections.",
              (int64_t)gw_server_connections(mh->srv));
        gauge(b, "kvgate_http_requests_in_flight",
              "Requests not yet answered, open watch streams included.",
              (int64_t)gw_server_in_flight(mh->srv));
    }

    /* watches */
    if (mh->wh) {
        gauge(b, "kvgate_watch_streams", "Open watch streams (JSON and SSE).",
              (int64_t)watch_http_streams(mh->wh));
        counter(b, "kvgate_watch_events_sent_total",
                "Events sent in watch responses (an event counts once per stream it went to).",
                watch_http_events_sent(mh->wh));
        counter(b, "kvgate_watch_streams_refused_total",
                "Watch streams refused at --max-streams (429).", watch_http_refused(mh->wh));
    }
    if (mh->ws) {
        watchable_stats st;
        watchable_get_stats(mh->ws, &st);
        metrics_put_family(b, "kvgate_watchers", "gauge",
                           "Watchers by group: synced (at the head), unsynced (catching up from "
                           "history), victim (parked: their stream's queue was full).");
        metrics_put_u64(b, "kvgate_watchers", "group=\"synced\"", st.synced);
        metrics_put_u64(b, "kvgate_watchers", "group=\"unsynced\"", st.unsynced);
        metrics_put_u64(b, "kvgate_watchers", "group=\"victim\"", st.victims);
        counter(b, "kvgate_watch_victimized_total",
                "Responses parked because a stream's queue was full (slow consumers).",
                st.victimized);
        counter(b, "kvgate_watch_compacted_total",
                "Watchers canceled because their start revision was compacted.", st.compacted);
    }

    /* store */
    if (mh->store) {
        kvstore_stats ks;
        kvstore_get_stats(mh->store, &ks);
        gauge(b, "kvgate_store_revision", "Current store revision.", kvstore_rev(mh->store));
        gauge(b, "kvgate_store_compact_revision", "Last compaction revision (0: never).",
              kvstore_compact_rev(mh->store));
        gauge(b, "kvgate_store_db_size_bytes", "Database size on disk, approximate.",
              (int64_t)kvstore_db_size(mh->store));
        gauge(b, "kvgate_store_db_size_in_use_bytes", "Live data estimate.",
              (int64_t)kvstore_db_size_in_use(mh->store));
        counter(b, "kvgate_store_commits_total", "Group commits (batches of requests) applied.",
                ks.commits);
        counter(b, "kvgate_store_fsyncs_total", "Batches written with fsync.", ks.fsyncs);
        counter(b, "kvgate_store_commit_failures_total",
                "Batches failed by an I/O or memory error.", ks.commit_failures);
        metrics_put_family(b, "kvgate_store_commit_batch_size", "histogram",
                           "Requests per group commit.");
        metrics_hist h;
        metrics_hist_init(&h, mh_batch_bounds, KVSTORE_BATCH_BUCKETS - 1);
        for (size_t i = 0; i < KVSTORE_BATCH_BUCKETS; i++)
            atomic_store_explicit(&h.counts[i], ks.batch_sizes[i], memory_order_relaxed);
        atomic_store_explicit(&h.sum, ks.requests, memory_order_relaxed);
        metrics_put_hist(b, "kvgate_store_commit_batch_size", NULL, &h, 1);
        counter(b, "kvgate_store_compactions_total", "Physical compactions finished.",
                ks.compactions);
        gauge(b, "kvgate_leases", "Leases now.", (int64_t)ks.leases);
        counter(b, "kvgate_leases_expired_total", "Leases revoked because they expired.",
                ks.leases_expired);
    }
}

static void h_metrics(gw_req *r, void *ctx)
{
    gwbuf b = GWBUF_INIT;
    metrics_http_render(ctx, &b);
    if (b.failed) {
        buf_free(&b);
        gw_reply_error(r, 500, GRPC_INTERNAL, "kvgate: out of memory");
        return;
    }
    size_t len;
    char *p = buf_steal(&b, &len);
    gw_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", p, len);
}

int metrics_http_register(gw_server *s, metrics_http *mh)
{
    return gw_server_route(s, "GET", "/metrics", h_metrics, mh);
}
