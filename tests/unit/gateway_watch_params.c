/*
 * gateway_watch_params.c — unit tests of gateway/watch_params.c: SSE query
 * parameters -> a watch-create request, etcd's prefix range end, and the
 * resume precedence (Last-Event-ID header > last_event_id > start_revision).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "testhelp.h"
#include "watch_params.h"

/* Adds "name=value" pairs; value NULL = bare name.  Returns the first
 * failure's message or NULL. */
static const char *add(watch_params *p, const char *name, const char *value)
{
    const char *err = NULL;
    if (watch_params_add(p, name, value, value ? strlen(value) : 0, &err) < 0)
        return err ? err : "?";
    return NULL;
}

static const char *fin(watch_params *p)
{
    const char *err = NULL;
    if (watch_params_finish(p, &err) < 0)
        return err ? err : "?";
    return NULL;
}

static int bytes_eq(const kv_bytes *b, const void *want, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, want, n) == 0);
}

int main(void)
{
    watch_params p;
    kv_bytes e = {0};

    TEST("defaults") {
        watch_params_init(&p);
        CHECK(add(&p, "key", "foo") == NULL);
        CHECK(fin(&p) == NULL);
        CHECK(bytes_eq(&p.key, "foo", 3));
        CHECK_EQ_INT(p.range_end.len, 0);
        CHECK_EQ_INT(p.start_revision, 0);
        CHECK_EQ_INT(p.last_event_id, -1);
        CHECK(!p.prev_kv && !p.prefix && !p.from_key && !p.initial && !p.text);
        CHECK(!p.filter_noput && !p.filter_nodelete && !p.has_watch_id);
        watch_params_free(&p);
    }

    TEST("binary key with NUL and 0xff bytes, lengths kept") {
        watch_params_init(&p);
        const char k[] = {'a', 0, (char)0xff, 'b'};
        const char *err = NULL;
        CHECK_EQ_INT(watch_params_add(&p, "key", k, 4, &err), 0);
        CHECK(fin(&p) == NULL);
        CHECK(bytes_eq(&p.key, k, 4));
        watch_params_free(&p);
    }

    TEST("key of one NUL byte is a real key") {
        watch_params_init(&p);
        const char *err = NULL;
        CHECK_EQ_INT(watch_params_add(&p, "key", "\0", 1, &err), 0);
        CHECK(fin(&p) == NULL);
        CHECK(bytes_eq(&p.key, "\0", 1));
        CHECK_EQ_INT(p.range_end.len, 0);
        watch_params_free(&p);
    }

    TEST("prefix range end as etcd's GetPrefixRangeEnd") {
        struct {
            const char *k;
            size_t kl;
            const char *want;
            size_t wl;
        } cases[] = {
            {"a", 1, "b", 1},
            {"abc", 3, "abd", 3},
            {"a\xff", 2, "b", 1},
            {"a\xff\xff", 3, "b", 1},
            {"\xff", 1, "\0", 1},
            {"\xff\xff\xff", 3, "\0", 1},
            {"\x00", 1, "\x01", 1},
            {"a\xfe", 2, "a\xff", 2},
            {"\xfe\xff", 2, "\xff", 1},
            {"", 0, "\0", 1},
            {"/x/\x00", 4, "/x/\x01", 4},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            CHECK_EQ_INT(watch_prefix_range_end((const uint8_t *)cases[i].k, cases[i].kl, &e), 0);
            if (!bytes_eq(&e, cases[i].want, cases[i].wl))
                fprintf(stderr, "  prefix case %zu\n", i);
            CHECK(bytes_eq(&e, cases[i].want, cases[i].wl));
            kv_bytes_free(&e);
        }
    }

    TEST("prefix=true") {
        const char *vals[] = {"true", "1", "TRUE", "", NULL};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "key", "/app/") == NULL);
            CHECK(add(&p, "prefix", vals[i]) == NULL);
            CHECK(fin(&p) == NULL);
            CHECK(bytes_eq(&p.range_end, "/app0", 5));
            watch_params_free(&p);
        }
    }

    TEST("prefix=false is a single key") {
        watch_params_init(&p);
        CHECK(add(&p, "key", "a") == NULL);
        CHECK(add(&p, "prefix", "false") == NULL);
        CHECK(fin(&p) == NULL);
        CHECK_EQ_INT(p.range_end.len, 0);
        watch_params_free(&p);
    }

    TEST("prefix over all-0xff key: to the end of the keyspace") {
        watch_params_init(&p);
        const char *err = NULL;
        CHECK_EQ_INT(watch_params_add(&p, "key", "\xff\xff", 2, &err), 0);
        CHECK(add(&p, "prefix", "true") == NULL);
        CHECK(fin(&p) == NULL);
        CHECK(bytes_eq(&p.range_end, "\0", 1));
        watch_params_free(&p);
    }

    TEST("empty key with prefix or from_key: all keys") {
        const char *which[] = {"prefix", "from_key"};
        for (int i = 0; i < 2; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "key", "") == NULL);
            CHECK(add(&p, which[i], "true") == NULL);
            CHECK(fin(&p) == NULL);
            CHECK(bytes_eq(&p.key, "\0", 1));
            CHECK(bytes_eq(&p.range_end, "\0", 1));
            watch_params_free(&p);
            /* no key parameter at all */
            watch_params_init(&p);
            CHECK(add(&p, which[i], NULL) == NULL);
            CHECK(fin(&p) == NULL);
            CHECK(bytes_eq(&p.key, "\0", 1));
            CHECK(bytes_eq(&p.range_end, "\0", 1));
            watch_params_free(&p);
        }
    }

    TEST("from_key") {
        watch_params_init(&p);
        CHECK(add(&p, "key", "m") == NULL);
        CHECK(add(&p, "from_key", "1") == NULL);
        CHECK(fin(&p) == NULL);
        CHECK(bytes_eq(&p.key, "m", 1));
        CHECK(bytes_eq(&p.range_end, "\0", 1));
        watch_params_free(&p);
    }

    TEST("explicit range_end, raw bytes; \\0 means from key") {
        watch_params_init(&p);
        CHECK(add(&p, "key", "a") == NULL);
        CHECK(add(&p, "range_end", "c") == NULL);
        CHECK(fin(&p) == NULL);
        CHECK(bytes_eq(&p.range_end, "c", 1));
        watch_params_free(&p);
        watch_params_init(&p);
        const char *err = NULL;
        CHECK(add(&p, "key", "a") == NULL);
        CHECK_EQ_INT(watch_params_add(&p, "range_end", "\0", 1, &err), 0);
        CHECK(fin(&p) == NULL);
        CHECK(bytes_eq(&p.range_end, "\0", 1));
        watch_params_free(&p);
    }

    TEST("empty ranges are refused as etcd does") {
        const char *ends[] = {"a", "A", "0"};
        for (int i = 0; i < 3; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "key", "a") == NULL);
            CHECK(add(&p, "range_end", ends[i]) == NULL);
            const char *err = fin(&p);
            CHECK(err && strstr(err, "watcher range is empty"));
            watch_params_free(&p);
        }
        /* "ab" > "a": a valid range */
        watch_params_init(&p);
        CHECK(add(&p, "key", "a") == NULL);
        CHECK(add(&p, "range_end", "ab") == NULL);
        CHECK(fin(&p) == NULL);
        watch_params_free(&p);
    }

    TEST("missing key") {
        watch_params_init(&p);
        CHECK(fin(&p) != NULL);
        watch_params_free(&p);
        watch_params_init(&p);
        CHECK(add(&p, "key", "") == NULL);
        CHECK(fin(&p) != NULL);
        watch_params_free(&p);
        watch_params_init(&p);
        CHECK(add(&p, "range_end", "z") == NULL);
        CHECK(fin(&p) != NULL);
        watch_params_free(&p);
    }

    TEST("exclusive combinations") {
        const char *combos[][4] = {
            {"prefix", "true", "from_key", "true"},
            {"prefix", "true", "range_end", "z"},
            {"from_key", "true", "range_end", "z"},
            {"initial", "true", "start_revision", "5"},
            {"last_event_id", "4", "start_revision", "5"},
        };
        for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "key", "a") == NULL);
            CHECK(add(&p, combos[i][0], combos[i][1]) == NULL);
            CHECK(add(&p, combos[i][2], combos[i][3]) == NULL);
            CHECK(fin(&p) != NULL);
            watch_params_free(&p);
        }
        /* false flags do not conflict; start_revision=0 is "now" */
        watch_params_init(&p);
        CHECK(add(&p, "key", "a") == NULL);
        CHECK(add(&p, "prefix", "false") == NULL);
        CHECK(add(&p, "from_key", "true") == NULL);
        CHECK(add(&p, "initial", "true") == NULL);
        CHECK(add(&p, "start_revision", "0") == NULL);
        CHECK(fin(&p) == NULL);
        watch_params_free(&p);
    }

    TEST("booleans") {
        watch_params_init(&p);
        CHECK(add(&p, "key", "a") == NULL);
        CHECK(add(&p, "prev_kv", "true") == NULL);
        CHECK(add(&p, "progress_notify", "1") == NULL);
        CHECK(add(&p, "initial", NULL) == NULL);
        CHECK(fin(&p) == NULL);
        CHECK(p.prev_kv && p.progress_notify && p.initial);
        watch_params_free(&p);
        const char *bad[] = {"yes", "no", "2", "tru", "true ", " true", "-1"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "prev_kv", bad[i]) != NULL);
            watch_params_free(&p);
        }
        watch_params_init(&p);
        const char *err = NULL;
        CHECK_EQ_INT(watch_params_add(&p, "prefix", "1\0", 2, &err), -1);
        watch_params_free(&p);
    }

    TEST("filters: lists, repeats, case, garbage") {
        watch_params_init(&p);
        CHECK(add(&p, "filters", "noput") == NULL);
        CHECK(p.filter_noput && !p.filter_nodelete);
        CHECK(add(&p, "filters", "NODELETE") == NULL);
        CHECK(p.filter_noput && p.filter_nodelete);
        watch_params_free(&p);
        watch_params_init(&p);
        CHECK(add(&p, "filters", "noput, nodelete,") == NULL);
        CHECK(p.filter_noput && p.filter_nodelete);
        watch_params_free(&p);
        watch_params_init(&p);
        CHECK(add(&p, "filters", "") == NULL);
        CHECK(add(&p, "filters", NULL) == NULL);
        CHECK(!p.filter_noput && !p.filter_nodelete);
        watch_params_free(&p);
        const char *bad[] = {"put", "noput;nodelete", "0", "nodeletex", "no put"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "filters", bad[i]) != NULL);
            watch_params_free(&p);
        }
    }

    TEST("numbers: start_revision, watch_id, last_event_id") {
        watch_params_init(&p);
        CHECK(add(&p, "start_revision", "9223372036854775807") == NULL);
        CHECK_EQ_INT(p.start_revision, INT64_MAX);
        CHECK(add(&p, "watch_id", "-9223372036854775808") == NULL);
        CHECK_EQ_INT(p.watch_id, INT64_MIN);
        CHECK(p.has_watch_id);
        CHECK(add(&p, "last_event_id", "17") == NULL);
        CHECK_EQ_INT(p.last_event_id, 17);
        watch_params_free(&p);
        const char *bad_rev[] = {"-1", "", "x", "1x", "9223372036854775808", "+3", " 3", "1.0"};
        for (size_t i = 0; i < sizeof bad_rev / sizeof bad_rev[0]; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "start_revision", bad_rev[i]) != NULL);
            watch_params_free(&p);
            watch_params_init(&p);
            CHECK(add(&p, "last_event_id", bad_rev[i]) != NULL || bad_rev[i][0] == ' ');
            watch_params_free(&p);
        }
        const char *bad_id[] = {"-", "", "9223372036854775808", "-9223372036854775809", "1-"};
        for (size_t i = 0; i < sizeof bad_id / sizeof bad_id[0]; i++) {
            watch_params_init(&p);
            CHECK(add(&p, "watch_id", bad_id[i]) != NULL);
            watch_params_free(&p);
        }
        watch_params_init(&p);
        CHECK(add(&p, "start_revision", NULL) != NULL);
        watch_params_free(&p);
    }

    TEST("encoding") {
        watch_params_init(&p);
        CHECK(add(&p, "encoding", "text") == NULL);
        CHECK(p.text);
        watch_params_free(&p);
        watch_params_init(&p);
        CHECK(add(&p, "encoding", "base64") == NULL);
        CHECK(!p.text);
        watch_params_free(&p);
        watch_params_init(&p);
        CHECK(add(&p, "encoding", "utf8") != NULL);
        watch_params_free(&p);
    }

    TEST("duplicates refused, unknown ignored") {
        watch_params_init(&p);
        CHECK(add(&p, "key", "a") == NULL);
        CHECK(add(&p, "key", "b") != NULL);
        CHECK(add(&p, "_", "12345") == NULL);
        CHECK(add(&p, "Key", "x") == NULL); /* case matters: unknown */
        CHECK(bytes_eq(&p.key, "a", 1));
        watch_params_free(&p);
        watch_params_init(&p);
        CHECK(add(&p, "prefix", "false") == NULL);
        CHECK(add(&p, "prefix", "true") != NULL);
        watch_params_free(&p);
    }

    /* ---- resume precedence ---- */
    int64_t start;
    bool resumed;
    const char *err;
    TEST("start: nothing given -> from now") {
        watch_params_init(&p);
        CHECK_EQ_INT(watch_params_start(&p, NULL, 0, &start, &resumed, &err), 0);
        CHECK_EQ_INT(start, 0);
        CHECK(!resumed);
        watch_params_free(&p);
    }
    TEST("start: start_revision") {
        watch_params_init(&p);
        add(&p, "start_revision", "12");
        CHECK_EQ_INT(watch_params_start(&p, NULL, 0, &start, &resumed, &err), 0);
        CHECK_EQ_INT(start, 12);
        CHECK(!resumed);
        watch_params_free(&p);
    }
    TEST("start: last_event_id in the query resumes after it") {
        watch_params_init(&p);
        add(&p, "last_event_id", "12");
        CHECK_EQ_INT(watch_params_start(&p, NULL, 0, &start, &resumed, &err), 0);
        CHECK_EQ_INT(start, 13);
        CHECK(resumed);
        watch_params_free(&p);
    }
    TEST("start: the header wins over the query (browser reconnect)") {
        watch_params_init(&p);
        add(&p, "last_event_id", "12");
        CHECK_EQ_INT(watch_params_start(&p, "40", 2, &start, &resumed, &err), 0);
        CHECK_EQ_INT(start, 41);
        CHECK(resumed);
        watch_params_free(&p);
        watch_params_init(&p);
        add(&p, "start_revision", "5");
        CHECK_EQ_INT(watch_params_start(&p, " 7 ", 3, &start, &resumed, &err), 0);
        CHECK_EQ_INT(start, 8);
        watch_params_free(&p);
    }
    TEST("start: an empty header is no header") {
        watch_params_init(&p);
        add(&p, "start_revision", "5");
        CHECK_EQ_INT(watch_params_start(&p, "", 0, &start, &resumed, &err), 0);
        CHECK_EQ_INT(start, 5);
        CHECK(!resumed);
        watch_params_free(&p);
    }
    TEST("start: malformed or overflowing header") {
        const char *bad[] = {"-1", "abc", "9223372036854775807", "9223372036854775808", "1.5"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            watch_params_init(&p);
            err = NULL;
            CHECK_EQ_INT(watch_params_start(&p, bad[i], strlen(bad[i]), &start, &resumed, &err), -1);
            CHECK(err != NULL);
            watch_params_free(&p);
        }
    }
    TEST("start: header 0 resumes from revision 1") {
        watch_params_init(&p);
        CHECK_EQ_INT(watch_params_start(&p, "0", 1, &start, &resumed, &err), 0);
        CHECK_EQ_INT(start, 1);
        watch_params_free(&p);
    }

    return TEST_REPORT();
}
