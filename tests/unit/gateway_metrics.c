/*
 * gateway_metrics.c — unit tests of gateway/metrics.c (counters, histogram
 * buckets, the Prometheus text rendering) and store/log.c's line format
 * and rate limit.  Exact expected text: the exposition format is a wire
 * format scraped by other programs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "testhelp.h"

static char *cstr(gwbuf *b)
{
    buf_putc(b, 0);
    return b->p;
}

int main(void)
{
    TEST("histogram buckets: le is inclusive, above the last bound is +Inf") {
        static const uint64_t bounds[] = {1, 2, 4};
        metrics_hist h;
        metrics_hist_init(&h, bounds, 3);
        metrics_hist_observe(&h, 0);
        metrics_hist_observe(&h, 1);
        metrics_hist_observe(&h, 2);
        metrics_hist_observe(&h, 3);
        metrics_hist_observe(&h, 100);
        CHECK_EQ_INT(atomic_load(&h.counts[0]), 2);
        CHECK_EQ_INT(atomic_load(&h.counts[1]), 1);
        CHECK_EQ_INT(atomic_load(&h.counts[2]), 1);
        CHECK_EQ_INT(atomic_load(&h.counts[3]), 1);
        CHECK_EQ_INT(atomic_load(&h.sum), 106);
        gwbuf b = GWBUF_INIT;
        metrics_put_hist(&b, "x_size", "a=\"b\"", &h, 1);
        CHECK_EQ_STR(cstr(&b), "x_size_bucket{a=\"b\",le=\"1\"} 2\n"
                               "x_size_bucket{a=\"b\",le=\"2\"} 3\n"
                               "x_size_bucket{a=\"b\",le=\"4\"} 4\n"
                               "x_size_bucket{a=\"b\",le=\"+Inf\"} 5\n"
                               "x_size_sum{a=\"b\"} 106\n"
                               "x_size_count{a=\"b\"} 5\n");
        buf_free(&b);
    }

    TEST("histogram without labels, scaled to seconds") {
        static const uint64_t bounds[] = {250, 1000, 10000000};
        metrics_hist h;
        metrics_hist_init(&h, bounds, 3);
        metrics_hist_observe(&h, 300);
        gwbuf b = GWBUF_INIT;
        metrics_put_hist(&b, "lat_seconds", NULL, &h, 1e6);
        CHECK_EQ_STR(cstr(&b), "lat_seconds_bucket{le=\"0.00025\"} 0\n"
                               "lat_seconds_bucket{le=\"0.001\"} 1\n"
                               "lat_seconds_bucket{le=\"10\"} 1\n"
                               "lat_seconds_bucket{le=\"+Inf\"} 1\n"
                               "lat_seconds_sum 0.0003\n"
                               "lat_seconds_count 1\n");
        buf_free(&b);
    }

    TEST("family header and samples; HELP and label escaping") {
        gwbuf b = GWBUF_INIT;
        metrics_put_family(&b, "k_total", "counter", "a \\ b\nc");
        metrics_put_u64(&b, "k_total", NULL, 18446744073709551615ULL);
        metrics_put_i64(&b, "k_total", "x=\"1\"", -3);
        buf_puts(&b, "v=\"");
        metrics_put_label_value(&b, "q\"\\\n");
        buf_puts(&b, "\"\n");
        CHECK_EQ_STR(cstr(&b), "# HELP k_total a \\\\ b\\nc\n# TYPE k_total counter\n"
                               "k_total 18446744073709551615\n"
                               "k_total{x=\"1\"} -3\n"
                               "v=\"q\\\"\\\\\\n\"\n");
        buf_free(&b);
    }

    TEST("requests: endpoints deduplicated, other first, statuses by code") {
        metrics_requests *m = metrics_requests_new();
        CHECK(m != NULL);
        size_t a = metrics_requests_endpoint(m, "/v3/watch");
        size_t a2 = metrics_requests_endpoint(m, "/v3/watch");
        size_t c = metrics_requests_endpoint(m, "/v3/kv/put");
        CHECK_EQ_INT(a, 1);
        CHECK_EQ_INT(a2, 1);
        CHECK_EQ_INT(c, 2);
        metrics_request_observe(m, c, 200, 50);
        metrics_request_observe(m, c, 200, 2000);
        metrics_request_observe(m, c, 413, 10);
        metrics_request_observe(m, a, 200, UINT64_MAX); /* a stream: no latency */
        metrics_request_observe(m, METRICS_EP_OTHER, 404, 5);
        metrics_request_observe(m, c, 0, 5);    /* client gone: not counted */
        metrics_request_observe(m, c, 600, 5);  /* out of range: not counted */
        metrics_request_observe(m, 99, 200, 5); /* unknown endpoint: ignored */
        gwbuf b = GWBUF_INIT;
        metrics_put_requests(&b, m);
        char *t = cstr(&b);
        CHECK(strstr(t, "# TYPE kvgate_http_requests_total counter\n") != NULL);
        CHECK(strstr(t, "kvgate_http_requests_total{endpoint=\"other\",code=\"404\"} 1\n") != NULL);
        CHECK(strstr(t, "kvgate_http_requests_total{endpoint=\"/v3/kv/put\",code=\"200\"} 2\n") != NULL);
        CHECK(strstr(t, "kvgate_http_requests_total{endpoint=\"/v3/kv/put\",code=\"413\"} 1\n") != NULL);
        CHECK(strstr(t, "kvgate_http_requests_total{endpoint=\"/v3/watch\",code=\"200\"} 1\n") != NULL);
        CHECK(strstr(t, "code=\"0\"") == NULL);
        CHECK(strstr(t, "# TYPE kvgate_http_request_duration_seconds histogram\n") != NULL);
        CHECK(strstr(t, "kvgate_http_request_duration_seconds_count{endpoint=\"/v3/kv/put\"} 3\n") != NULL);
        CHECK(strstr(t, "kvgate_http_request_duration_seconds_bucket{endpoint=\"/v3/kv/put\",le=\"0.0001\"} 2\n") != NULL);
        CHECK(strstr(t, "kvgate_http_request_duration_seconds_sum{endpoint=\"/v3/kv/put\"} 0.00206\n") != NULL);
        /* a stream-only endpoint has no latency series */
        CHECK(strstr(t, "duration_seconds_count{endpoint=\"/v3/watch\"}") == NULL);
        buf_free(&b);
        metrics_requests_free(m);
    }

    TEST("log line format") {
        char line[256];
        /* 2026-11-21T01:02:03.456Z */
        size_t n = log_format(line, sizeof line, 1795222923456LL, LOG_WARN, "store",
                              "compaction failed rev=5");
        CHECK_EQ_STR(line, "2026-11-21T01:02:03.456Z warn store: compaction failed rev=5\n");
        CHECK_EQ_INT(n, strlen(line));
        char small[40];
        n = log_format(small, sizeof small, 0, LOG_INFO, "x", "a very long message that is cut here");
        CHECK_EQ_INT(n, sizeof small - 1);
        CHECK_EQ_INT(small[n - 1], '\n');
        CHECK(memcmp(small + n - 4, "...\n", 4) == 0);
    }

    TEST("log levels: parse, threshold") {
        log_level l;
        CHECK_EQ_INT(log_level_parse("debug", &l), 0);
        CHECK_EQ_INT(l, LOG_DEBUG);
        CHECK_EQ_INT(log_level_parse("error", &l), 0);
        CHECK_EQ_INT(l, LOG_ERROR);
        CHECK_EQ_INT(log_level_parse("verbose", &l), -1);
        log_set_level(LOG_WARN);
        CHECK(!log_enabled(LOG_INFO));
        CHECK(log_enabled(LOG_WARN));
        CHECK(log_enabled(LOG_ERROR));
        log_set_level(LOG_INFO);
        CHECK(log_enabled(LOG_INFO));
        CHECK(!log_enabled(LOG_DEBUG));
    }

    TEST("rate limit: one pass per interval, the rest counted") {
        log_ratelimit rl = LOG_RATELIMIT_INIT;
        uint64_t skipped = 99;
        CHECK(log_ratelimit_allow(&rl, 60000, &skipped));
        CHECK_EQ_INT(skipped, 0);
        CHECK(!log_ratelimit_allow(&rl, 60000, &skipped));
        CHECK(!log_ratelimit_allow(&rl, 60000, &skipped));
        atomic_store(&rl.next_ms, 0); /* the interval is over */
        CHECK(log_ratelimit_allow(&rl, 60000, &skipped));
        CHECK_EQ_INT(skipped, 2);
    }

    return TEST_REPORT();
}
