/*
 * gateway_watch_json.c — unit tests of gateway/watch_json.c against the
 * shapes and messages etcd 3.4.23 produces on POST /v3/watch (recorded by
 * hand from a real etcd; the differential tests re-check them live).
 */
#include <stdlib.h>
#include <string.h>

#include "testhelp.h"
#include "watch_json.h"

static char msg[256];

static int dec(const char *body, wj_request **r, size_t *n)
{
    msg[0] = 0;
    return wj_decode_requests(body, strlen(body), r, n, msg, sizeof msg);
}

static int bytes_is(const kv_bytes *b, const char *s)
{
    return b->len == strlen(s) && (b->len == 0 || memcmp(b->data, s, b->len) == 0);
}

/* Encodes one response; returns a malloc'd NUL-terminated string. */
static char *enc(const watch_response *r, bool text)
{
    static const ej_header h = {15334618157617514572ull, 10048432109735492938ull, 2};
    gwbuf b = GWBUF_INIT;
    wj_put_response(&b, &h, r, text);
    buf_putc(&b, 0);
    size_t len;
    return buf_steal(&b, &len);
}

#define H "\"header\":{\"cluster_id\":\"15334618157617514572\",\"member_id\":\"10048432109735492938\","

static kv_bytes mk(const char *s)
{
    kv_bytes b = {(uint8_t *)s, strlen(s)};
    return b;
}

int main(void)
{
    wj_request *r;
    size_t n;

    TEST("one create_request, every field, proto names") {
        CHECK_EQ_INT(dec("{\"create_request\":{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\","
                         "\"start_revision\":\"5\",\"progress_notify\":true,"
                         "\"filters\":[\"NOPUT\",1],\"prev_kv\":true,\"watch_id\":7,"
                         "\"fragment\":true}}", &r, &n), 0);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(r[0].kind, WJ_CREATE);
        CHECK(bytes_is(&r[0].key, "foo"));
        CHECK(bytes_is(&r[0].range_end, "fop"));
        CHECK_EQ_INT(r[0].start_revision, 5);
        CHECK(r[0].progress_notify && r[0].prev_kv && r[0].fragment);
        CHECK(r[0].filter_noput && r[0].filter_nodelete);
        CHECK_EQ_INT(r[0].watch_id, 7);
        watch_create_req c;
        wj_to_create(&r[0], &c);
        CHECK_EQ_INT(c.key_len, 3);
        CHECK_EQ_INT(c.range_end_len, 3);
        CHECK_EQ_INT(c.start_revision, 5);
        CHECK_EQ_INT(c.watch_id, 7);
        CHECK(c.prev_kv && c.progress_notify && c.filter_noput && c.filter_nodelete);
        wj_requests_free(r, n);
    }

    TEST("camelCase names") {
        CHECK_EQ_INT(dec("{\"createRequest\":{\"key\":\"YQ==\",\"rangeEnd\":\"Yg==\","
                         "\"startRevision\":\"2\",\"prevKv\":true,\"watchId\":\"5\","
                         "\"progressNotify\":true}}", &r, &n), 0);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(r[0].kind, WJ_CREATE);
        CHECK(bytes_is(&r[0].range_end, "b"));
        CHECK_EQ_INT(r[0].start_revision, 2);
        CHECK_EQ_INT(r[0].watch_id, 5);
        CHECK(r[0].prev_kv && r[0].progress_notify);
        wj_requests_free(r, n);
    }

    TEST("several values, with and without whitespace") {
        CHECK_EQ_INT(dec("{\"create_request\":{\"key\":\"YQ==\"}}{\"create_request\":{\"key\":\"Yg==\"}}\n"
                         " {\"cancel_request\":{\"watch_id\":\"1\"}}\t{\"progress_request\":{}}\n",
                         &r, &n), 0);
        CHECK_EQ_INT(n, 4);
        CHECK_EQ_INT(r[0].kind, WJ_CREATE);
        CHECK(bytes_is(&r[1].key, "b"));
        CHECK_EQ_INT(r[2].kind, WJ_CANCEL);
        CHECK_EQ_INT(r[2].cancel_id, 1);
        CHECK_EQ_INT(r[3].kind, WJ_PROGRESS);
        wj_requests_free(r, n);
    }

    TEST("empty bodies and empty requests") {
        CHECK_EQ_INT(dec("", &r, &n), 0);
        CHECK_EQ_INT(n, 0);
        CHECK(r == NULL);
        CHECK_EQ_INT(dec("  \n ", &r, &n), 0);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(dec("{}", &r, &n), 0);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(r[0].kind, WJ_EMPTY);
        wj_requests_free(r, n);
        CHECK_EQ_INT(dec("null", &r, &n), 0);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(r[0].kind, WJ_EMPTY);
        wj_requests_free(r, n);
        CHECK_EQ_INT(dec("{\"create_request\":null,\"zzz\":1}", &r, &n), 0);
        CHECK_EQ_INT(r[0].kind, WJ_EMPTY);
        wj_requests_free(r, n);
    }

    TEST("create_request {} and unknown fields") {
        CHECK_EQ_INT(dec("{\"create_request\":{\"bogus\":1},\"zzz\":2}", &r, &n), 0);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(r[0].kind, WJ_CREATE);
        CHECK_EQ_INT(r[0].key.len, 0);
        wj_requests_free(r, n);
    }

    TEST("oneof: the first member in document order wins") {
        CHECK_EQ_INT(dec("{\"create_request\":{\"key\":\"YQ==\"},\"progress_request\":{}}", &r, &n), 0);
        CHECK_EQ_INT(r[0].kind, WJ_CREATE);
        wj_requests_free(r, n);
        CHECK_EQ_INT(dec("{\"progress_request\":{},\"create_request\":{\"key\":\"YQ==\"}}", &r, &n), 0);
        CHECK_EQ_INT(r[0].kind, WJ_PROGRESS);
        wj_requests_free(r, n);
    }

    TEST("a bad value after a good one ends the list quietly") {
        const char *bodies[] = {
            "{\"create_request\":{\"key\":\"YQ==\"}}xx",
            "{\"create_request\":{\"key\":\"YQ==\"}} [1] {\"create_request\":{\"key\":\"Yg==\"}}",
            "{\"create_request\":{\"key\":\"YQ==\"}}{\"create_request\":{\"key\":\"Yg==\",\"filters\":[\"BAD\"]}}"
            "{\"create_request\":{\"key\":\"Yw==\"}}",
            "{\"create_request\":{\"key\":\"YQ==\"}}{\"create_request\":",
        };
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
            CHECK_EQ_INT(dec(bodies[i], &r, &n), 0);
            CHECK_EQ_INT(n, 1);
            wj_requests_free(r, n);
        }
    }

    TEST("null between values is an empty request") {
        CHECK_EQ_INT(dec("{\"create_request\":{\"key\":\"YQ==\"}} null {\"create_request\":{\"key\":\"Yg==\"}}",
                         &r, &n), 0);
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(r[1].kind, WJ_EMPTY);
        CHECK_EQ_INT(r[2].kind, WJ_CREATE);
        wj_requests_free(r, n);
    }

    TEST("bad first value: etcd's messages") {
        struct {
            const char *body, *msg;
        } cases[] = {
            {"{\"create_request\":", "unexpected EOF"},
            {"hello", "invalid character 'h' looking for beginning of value"},
            {"{\"create_request\":{\"key\":5}}", "json: cannot unmarshal number into Go value of type []uint8"},
            {"{\"create_request\":{\"key\":\"!!!\"}}", "illegal base64 data at input byte 0"},
            {"{\"create_request\":{\"key\":\"YQ\"}}", "illegal base64 data at input byte 0"},
            {"[{\"create_request\":{\"key\":\"YQ==\"}}]",
             "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
            {"{\"create_request\":{\"filters\":[\"BOGUS\"]}}",
             "unknown value \"BOGUS\" for enum etcdserverpb.WatchCreateRequest_FilterType"},
            {"{\"create_request\":{\"filters\":\"NOPUT\"}}",
             "invalid target \"slice\" for enum etcdserverpb.WatchCreateRequest_FilterType"},
            {"{\"create_request\":{\"filters\":[1.5]}}",
             "json: cannot unmarshal number 1.5 into Go value of type etcdserverpb.WatchCreateRequest_FilterType"},
            {"{\"create_request\":{\"prev_kv\":\"true\"}}", "json: cannot unmarshal string into Go value of type bool"},
            {"{\"create_request\":{\"watch_id\":1.5}}", "json: cannot unmarshal number 1.5 into Go value of type int64"},
            {"{\"create_request\":{\"start_revision\":\"x\"}}", "invalid character 'x' looking for beginning of value"},
            {"{\"cancel_request\":{\"watch_id\":\"x\"}}", "invalid character 'x' looking for beginning of value"},
            {"{\"create_request\":\"x\"}",
             "json: cannot unmarshal string into Go value of type map[string]json.RawMessage"},
            {"{\"cancel_request\":5}", "json: cannot unmarshal number into Go value of type map[string]json.RawMessage"},
            {"{\"progress_request\":5}", "json: cannot unmarshal number into Go value of type map[string]json.RawMessage"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            r = (wj_request *)1;
            CHECK_EQ_INT(dec(cases[i].body, &r, &n), -1);
            CHECK_EQ_STR(msg, cases[i].msg);
            CHECK(r == NULL);
        }
    }

    TEST("filters: null elements and unknown numbers are accepted") {
        CHECK_EQ_INT(dec("{\"create_request\":{\"key\":\"YQ==\",\"filters\":[null,5]}}", &r, &n), 0);
        CHECK(!r[0].filter_noput && !r[0].filter_nodelete);
        wj_requests_free(r, n);
    }

    TEST("start_revision: leading space, negative") {
        CHECK_EQ_INT(dec("{\"create_request\":{\"start_revision\":\" 5\"}}", &r, &n), 0);
        CHECK_EQ_INT(r[0].start_revision, 5);
        wj_requests_free(r, n);
        CHECK_EQ_INT(dec("{\"create_request\":{\"watch_id\":\"-3\"}}", &r, &n), 0);
        CHECK_EQ_INT(r[0].watch_id, -3);
        wj_requests_free(r, n);
    }

    /* ---- encoding ---- */
    TEST("created, auto id 0 and client id") {
        watch_response w = {0};
        w.header_rev = 2;
        w.created = true;
        char *s = enc(&w, false);
        CHECK_EQ_STR(s, "{" H "\"revision\":\"2\",\"raft_term\":\"2\"},\"created\":true}");
        free(s);
        w.watch_id = 1;
        s = enc(&w, false);
        CHECK_EQ_STR(s, "{" H "\"revision\":\"2\",\"raft_term\":\"2\"},\"watch_id\":\"1\",\"created\":true}");
        free(s);
    }

    TEST("refusal, cancel, compacted, progress") {
        watch_response w = {0};
        w.header_rev = 31;
        w.watch_id = -1;
        w.created = w.canceled = true;
        w.cancel_reason = "mvcc: duplicate watch ID provided on the WatchStream";
        char *s = enc(&w, false);
        CHECK_EQ_STR(s, "{" H "\"revision\":\"31\",\"raft_term\":\"2\"},\"watch_id\":\"-1\",\"created\":true,"
                        "\"canceled\":true,\"cancel_reason\":\"mvcc: duplicate watch ID provided on the WatchStream\"}");
        free(s);
        memset(&w, 0, sizeof w);
        w.header_rev = 41;
        w.canceled = true;
        s = enc(&w, false);
        CHECK_EQ_STR(s, "{" H "\"revision\":\"41\",\"raft_term\":\"2\"},\"canceled\":true}");
        free(s);
        memset(&w, 0, sizeof w);
        w.canceled = true;
        w.compact_rev = 50;
        w.watch_id = 5;
        s = enc(&w, false);
        CHECK_EQ_STR(s, "{" H "\"raft_term\":\"2\"},\"watch_id\":\"5\",\"canceled\":true,\"compact_revision\":\"50\"}");
        free(s);
        memset(&w, 0, sizeof w);
        w.header_rev = 41;
        w.watch_id = -1;
        w.progress = true;
        s = enc(&w, false);
        CHECK_EQ_STR(s, "{" H "\"revision\":\"41\",\"raft_term\":\"2\"},\"watch_id\":\"-1\"}");
        free(s);
    }

    TEST("events: put with prev_kv, delete with prev_kv") {
        kv_event put = {KV_EVENT_PUT, {mk("foo"), mk("baz"), 2, 3, 2, 0}};
        kv_keyvalue prev = {mk("foo"), mk("bar"), 2, 2, 1, 0};
        kv_event del = {KV_EVENT_DELETE, {mk("foo"), {NULL, 0}, 0, 4, 0, 0}};
        watch_event evs[2] = {{&put, &prev, NULL, false}, {&del, NULL, NULL, false}};
        watch_response w = {0};
        w.header_rev = 4;
        w.watch_id = 7;
        w.n_events = 2;
        w.events = evs;
        char *s = enc(&w, false);
        CHECK_EQ_STR(s, "{" H "\"revision\":\"4\",\"raft_term\":\"2\"},\"watch_id\":\"7\",\"events\":["
                        "{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"2\",\"value\":\"YmF6\"},"
                        "\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}},"
                        "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"4\"}}]}");
        free(s);
        s = enc(&w, true);
        CHECK_EQ_STR(s, "{" H "\"revision\":\"4\",\"raft_term\":\"2\"},\"watch_id\":\"7\",\"events\":["
                        "{\"kv\":{\"key\":\"foo\",\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"2\",\"value\":\"baz\"},"
                        "\"prev_kv\":{\"key\":\"foo\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"bar\"}},"
                        "{\"type\":\"DELETE\",\"kv\":{\"key\":\"foo\",\"mod_revision\":\"4\"}}]}");
        free(s);
    }

    TEST("text encoding: escapes, UTF-8 kept, non-UTF-8 as *_base64") {
        kv_bytes k = {(uint8_t *)"a\"\n\xc3\xa9<", 6};
        kv_bytes v = {(uint8_t *)"\xff\x00", 2};
        kv_keyvalue kv = {k, v, 5, 5, 1, 0};
        gwbuf b = GWBUF_INIT;
        wj_put_kv(&b, &kv, true);
        buf_putc(&b, 0);
        CHECK_EQ_STR(b.p, "{\"key\":\"a\\\"\\n\xc3\xa9\\u003c\",\"create_revision\":\"5\",\"mod_revision\":\"5\","
                          "\"version\":\"1\",\"value_base64\":\"/wA=\"}");
        buf_free(&b);
    }

    TEST("utf8 validation") {
        CHECK(wj_utf8_valid((const uint8_t *)"", 0));
        CHECK(wj_utf8_valid((const uint8_t *)"abc\0d", 5));
        CHECK(wj_utf8_valid((const uint8_t *)"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
        CHECK(!wj_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
        CHECK(!wj_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
        CHECK(!wj_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        CHECK(!wj_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* truncated */
        CHECK(!wj_utf8_valid((const uint8_t *)"\x80", 1));
        CHECK(!wj_utf8_valid((const uint8_t *)"\xff", 1));
    }

    TEST("snapshot response") {
        static const ej_header h = {1, 2, 3};
        kv_keyvalue kvs[2] = {{mk("a"), mk("1"), 2, 2, 1, 0}, {mk("b"), mk(""), 3, 4, 2, 7}};
        gwbuf b = GWBUF_INIT;
        wj_put_snapshot(&b, &h, 9, 0, kvs, 2, true);
        buf_putc(&b, 0);
        CHECK_EQ_STR(b.p, "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"9\",\"raft_term\":\"3\"},"
                          "\"events\":[{\"kv\":{\"key\":\"a\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"1\"}},"
                          "{\"kv\":{\"key\":\"b\",\"create_revision\":\"3\",\"mod_revision\":\"4\",\"version\":\"2\",\"lease\":\"7\"}}]}");
        buf_free(&b);
    }

    TEST("long literals in watch requests are quoted whole (no sentinel), message allocated") {
        static char body[4096], want[4096], rep[1024];
        struct { const char *fb, *fw; } c[] = {
            {"{\"create_request\":{\"key\":\"YQ==\",\"start_revision\":%s}}",
             "json: cannot unmarshal number %s into Go value of type int64"},
            {"{\"create_request\":{\"key\":\"YQ==\",\"start_revision\":\"%s\"}}",
             "json: cannot unmarshal number %s into Go value of type int64"},
            {"{\"create_request\":{\"key\":\"YQ==\",\"watch_id\":%se5}}",
             "json: cannot unmarshal number %se5 into Go value of type int64"},
            {"{\"cancel_request\":{\"watch_id\":%s}}", "json: cannot unmarshal number %s into Go value of type int64"},
            {"{\"create_request\":{\"key\":\"YQ==\",\"filters\":[%s]}}",
             "json: cannot unmarshal number %s into Go value of type etcdserverpb.WatchCreateRequest_FilterType"},
            {"{\"create_request\":{\"key\":[%s]}}", "json: cannot unmarshal number %s into Go value of type uint8"},
        };
        memset(rep, '1', 600);
        rep[600] = 0;
        for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
            char *m = NULL;
            snprintf(body, sizeof body, c[i].fb, rep);
            snprintf(want, sizeof want, c[i].fw, rep);
            r = (wj_request *)1;
            CHECK_EQ_INT(wj_decode_all(body, strlen(body), &r, &n, &m), -1);
            CHECK(m && strcmp(m, want) == 0);
            if (m && strcmp(m, want) != 0)
                fprintf(stderr, "  case %zu: %.120s\n", i, m);
            CHECK(r == NULL);
            free(m);
        }
        static const struct { const char *body, *msg; } e[] = {
            {"{\"create_request\":{\"key\":\"YQ==\",\"filters\":[\"\\u004eOPUT\"]}}",
             "unknown value \"\\\\u004eOPUT\" for enum etcdserverpb.WatchCreateRequest_FilterType"},
            {"{\"create_request\":{\"key\":\"YQ==\",\"filters\":\"x\"}}",
             "unknown value \"x\" for enum etcdserverpb.WatchCreateRequest_FilterType"},
            {"{\"create_request\":{\"key\":\"YQ==\",\"filters\":{}}}",
             "json: cannot unmarshal object into Go value of type []json.RawMessage"},
            {"{\"create_request\":{\"start_revision\":\"\\u0031\"}}", "invalid character '\\\\' looking for beginning of value"},
        };
        for (size_t i = 0; i < sizeof e / sizeof *e; i++) {
            char *m = NULL;
            CHECK_EQ_INT(wj_decode_all(e[i].body, strlen(e[i].body), &r, &n, &m), -1);
            CHECK_EQ_STR(m ? m : "(null)", e[i].msg);
            free(m);
        }
        /* accepted: byte arrays, -0, escapes in bytes */
        char *m = NULL;
        const char *ok = "{\"create_request\":{\"key\":[97,98],\"range_end\":\"Yw\\u003d\\u003d\",\"start_revision\":-0,"
                         "\"filters\":[-0]}}";
        CHECK_EQ_INT(wj_decode_all(ok, strlen(ok), &r, &n, &m), 0);
        CHECK(m == NULL && n == 1 && bytes_is(&r[0].key, "ab") && bytes_is(&r[0].range_end, "c"));
        CHECK(r[0].filter_noput && r[0].start_revision == 0);
        wj_requests_free(r, n);
    }

    TEST("fragment: protobuf sizes and etcd's split points") {
        static const ej_header h = {15334618157617514572ull, 10048432109735492938ull, 2};
        kv_event put = {KV_EVENT_PUT, {mk("foo"), mk("baz"), 2, 3, 2, 0}};
        kv_keyvalue prev = {mk("foo"), mk("bar"), 2, 2, 1, 0};
        kv_event del = {KV_EVENT_DELETE, {mk("foo"), {NULL, 0}, 0, 4, 0, 0}};
        watch_event evs[2] = {{&put, &prev, NULL, false}, {&del, NULL, NULL, false}};
        watch_response w = {0};
        w.header_rev = 4;
        w.watch_id = 7;
        w.n_events = 2;
        w.events = evs;
        /* header: 2 ids of 10-byte varints, revision, raft_term: 1+1+26 */
        CHECK_EQ_INT(wj_pb_response_base(&h, &w, false), 28 + 2);
        CHECK_EQ_INT(wj_pb_response_base(&h, &w, true), 28 + 2 + 2);
        CHECK_EQ_INT(wj_pb_event_size(&evs[0]), 2 + 2 + 16 + 2 + 16);
        CHECK_EQ_INT(wj_pb_event_size(&evs[1]), 2 + 2 + 2 + 7);
        /* Size() = 81: fragmented at a limit of 81 (not < limit), not at 82 */
        CHECK(wj_fragment_needed(&h, &w, 81));
        CHECK(!wj_fragment_needed(&h, &w, 82));
        /* with the fragment field: 32 + 38 = 70, + 13 = 83 */
        CHECK_EQ_INT(wj_fragment_end(&h, &w, 83, 0), 1);
        CHECK_EQ_INT(wj_fragment_end(&h, &w, 84, 0), 2);
        CHECK_EQ_INT(wj_fragment_end(&h, &w, 10, 0), 1); /* at least one */
        CHECK_EQ_INT(wj_fragment_end(&h, &w, 10, 1), 2);
        w.n_events = 1;
        CHECK(!wj_fragment_needed(&h, &w, 1)); /* one event: never split */
        w.n_events = 2;
        gwbuf b = GWBUF_INIT;
        wj_put_response_part(&b, &h, &w, false, NULL, NULL, 1, 2, true);
        buf_putc(&b, 0);
        CHECK_EQ_STR(b.p, "{" H "\"revision\":\"4\",\"raft_term\":\"2\"},\"watch_id\":\"7\","
                          "\"fragment\":true,\"events\":["
                          "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"4\"}}]}");
        buf_free(&b);
    }

    return TEST_REPORT();
}
