/*
 * gateway_sse.c — unit tests of gateway/sse.c: SSE framing (one call, one
 * message, whatever bytes the caller passes), Last-Event-ID parsing and the
 * resume arithmetic.
 *
 * A tiny reference parser (after the WHATWG algorithm) reads the framed
 * bytes back, so the tests check what a browser would see, not only bytes.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"
#include "testhelp.h"

/* ---- a minimal EventSource parser: the messages a browser dispatches ---- */
typedef struct {
    char event[64];
    char id[64];
    char data[4096];
    size_t data_len;
} msg_t;

typedef struct {
    msg_t msgs[16];
    int n;
    int comments;
    long retry;
    char last_id[64];
} parsed_t;

static void parse_line(parsed_t *ps, msg_t *cur, int *has_data, const char *line, size_t len)
{
    if (len == 0) { /* dispatch */
        if (*has_data) {
            if (cur->data_len && cur->data[cur->data_len - 1] == '\n')
                cur->data_len--;
            cur->data[cur->data_len] = 0;
            strcpy(cur->id, ps->last_id);
            ps->msgs[ps->n++] = *cur;
        }
        memset(cur, 0, sizeof *cur);
        *has_data = 0;
        return;
    }
    if (line[0] == ':') {
        ps->comments++;
        return;
    }
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - v);
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (nlen == 5 && !memcmp(line, "event", 5)) {
        memcpy(cur->event, v, vlen);
        cur->event[vlen] = 0;
    } else if (nlen == 4 && !memcmp(line, "data", 4)) {
        memcpy(cur->data + cur->data_len, v, vlen);
        cur->data_len += vlen;
        cur->data[cur->data_len++] = '\n';
        *has_data = 1;
    } else if (nlen == 2 && !memcmp(line, "id", 2)) {
        memcpy(ps->last_id, v, vlen);
        ps->last_id[vlen] = 0;
    } else if (nlen == 5 && !memcmp(line, "retry", 5)) {
        ps->retry = strtol(v, NULL, 10);
    }
}

static void parse(parsed_t *ps, const char *s, size_t len)
{
    msg_t cur;
    int has_data = 0;
    memset(ps, 0, sizeof *ps);
    memset(&cur, 0, sizeof cur);
    ps->retry = -1;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            continue;
        parse_line(ps, &cur, &has_data, s + start, i - start);
        if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
            i++;
        start = i + 1;
    }
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

static int count_lines(const sse_buf *b)
{
    int n = 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] == '\n')
            n++;
    return n;
}

static int has_cr(const sse_buf *b)
{
    return memchr(b->data, '\r', b->len) != NULL;
}

int main(void)
{
    sse_buf b;
    parsed_t ps;

    TEST("plain data message") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, NULL, "{\"a\":1}", 7), 0);
        CHECK_MEM(b.data, b.len, "data: {\"a\":1}\n\n", 15);
        sse_buf_free(&b);
    }

    TEST("event and id lines, in order") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, "created", "41", "{}", 2), 0);
        CHECK_MEM(b.data, b.len, "event: created\nid: 41\ndata: {}\n\n", 32);
        sse_buf_free(&b);
    }

    TEST("event 'message' is the default: no event line") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, "message", NULL, "x", 1), 0);
        CHECK_MEM(b.data, b.len, "data: x\n\n", 9);
        sse_buf_free(&b);
    }

    TEST("numeric ids") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message_rev(&b, NULL, 0, "a", 1), 0);
        CHECK_EQ_INT(sse_frame_message_rev(&b, NULL, INT64_MAX, "b", 1), 0);
        CHECK_EQ_INT(sse_frame_message_rev(&b, "progress", -1, "c", 1), 0);
        const char *want = "id: 0\ndata: a\n\nid: 9223372036854775807\ndata: b\n\n"
                           "event: progress\ndata: c\n\n";
        CHECK_MEM(b.data, b.len, want, strlen(want));
        sse_buf_free(&b);
    }

    TEST("multi-line data: LF, CRLF, CR all split; browser joins with LF") {
        const char *in = "l1\nl2\r\nl3\rl4";
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, "7", in, strlen(in)), 0);
        const char *want = "id: 7\ndata: l1\ndata: l2\ndata: l3\ndata: l4\n\n";
        CHECK_MEM(b.data, b.len, want, strlen(want));
        CHECK(!has_cr(&b));
        parse(&ps, b.data, b.len);
        CHECK_EQ_INT(ps.n, 1);
        CHECK_EQ_STR(ps.msgs[0].data, "l1\nl2\nl3\nl4");
        CHECK_EQ_STR(ps.msgs[0].id, "7");
        sse_buf_free(&b);
    }

    TEST("injection attempt in data stays data") {
        const char *in = "x\n\nid: 999\nevent: evil\nretry: 1\n\ndata: y";
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, "5", in, strlen(in)), 0);
        parse(&ps, b.data, b.len);
        CHECK_EQ_INT(ps.n, 1);
        CHECK_EQ_STR(ps.msgs[0].id, "5");
        CHECK_EQ_STR(ps.msgs[0].event, "");
        CHECK_EQ_INT(ps.retry, -1);
        CHECK_EQ_STR(ps.msgs[0].data, "x\n\nid: 999\nevent: evil\nretry: 1\n\ndata: y");
        sse_buf_free(&b);
    }

    TEST("trailing and leading line breaks, lone CR at the end, empty lines") {
        const char *cases[] = {"\n", "a\n", "\na", "\r", "a\r", "\r\n\r\n", "\n\n\n", " lead"};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            sse_buf_init(&b);
            CHECK_EQ_INT(sse_frame_message(&b, "x", NULL, cases[i], strlen(cases[i])), 0);
            CHECK(!has_cr(&b));
            parse(&ps, b.data, b.len);
            CHECK_EQ_INT(ps.n, 1);
            /* what the browser sees: CR and CRLF normalised to LF */
            char norm[32];
            size_t k = 0;
            for (const char *s = cases[i]; *s; s++) {
                if (*s == '\r' && s[1] == '\n')
                    continue;
                norm[k++] = *s == '\r' ? '\n' : *s;
            }
            norm[k] = 0;
            CHECK_EQ_STR(ps.msgs[0].data, norm);
            sse_buf_free(&b);
        }
    }

    TEST("empty and NULL data give one empty data line (still dispatched)") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, "synced", "3", NULL, 0), 0);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, NULL, "", 0), 0);
        const char *want = "event: synced\nid: 3\ndata: \n\ndata: \n\n";
        CHECK_MEM(b.data, b.len, want, strlen(want));
        parse(&ps, b.data, b.len);
        CHECK_EQ_INT(ps.n, 2);
        CHECK_EQ_STR(ps.msgs[0].event, "synced");
        sse_buf_free(&b);
    }

    TEST("data with an embedded NUL byte is passed through") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, NULL, "a\0b", 3), 0);
        CHECK_MEM(b.data, b.len, "data: a\0b\n\n", 11);
        sse_buf_free(&b);
    }

    TEST("bad event names and ids are refused, buffer unchanged") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, NULL, "keep", 4), 0);
        size_t len = b.len;
        CHECK_EQ_INT(sse_frame_message(&b, "a\nb", NULL, "x", 1), -1);
        CHECK_EQ_INT(sse_frame_message(&b, "a\rb", NULL, "x", 1), -1);
        CHECK_EQ_INT(sse_frame_message(&b, "a:b", NULL, "x", 1), -1);
        CHECK_EQ_INT(sse_frame_message(&b, "", NULL, "x", 1), -1);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, "1\n2", "x", 1), -1);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, "1\r", "x", 1), -1);
        CHECK_EQ_INT(b.len, len);
        CHECK_MEM(b.data, b.len, "data: keep\n\n", 12);
        sse_buf_free(&b);
    }

    TEST("retry and comments") {
        sse_buf_init(&b);
        CHECK_EQ_INT(sse_frame_retry(&b, 3000), 0);
        CHECK_EQ_INT(sse_frame_comment(&b, NULL), 0);
        CHECK_EQ_INT(sse_frame_comment(&b, "heartbeat"), 0);
        CHECK_EQ_INT(sse_frame_comment(&b, "two\nlines\r\nthree\rend"), 0);
        const char *want = "retry: 3000\n\n:\n\n: heartbeat\n\n: two\n: lines\n: three\n: end\n\n";
        CHECK_MEM(b.data, b.len, want, strlen(want));
        parse(&ps, b.data, b.len);
        CHECK_EQ_INT(ps.n, 0);
        CHECK_EQ_INT(ps.retry, 3000);
        CHECK_EQ_INT(ps.comments, 6);
        sse_buf_free(&b);
    }

    TEST("a stream of mixed frames parses back message by message") {
        sse_buf_init(&b);
        sse_frame_retry(&b, 2000);
        sse_frame_message_rev(&b, "created", 10, "{\"result\":{\"created\":true}}", 27);
        sse_frame_message_rev(&b, NULL, 12, "{\"e\":1}", 7);
        sse_frame_comment(&b, "hb");
        sse_frame_message_rev(&b, "progress", 15, "{\"p\":1}", 7);
        sse_frame_message_rev(&b, NULL, 16, "{\"e\":2}", 7);
        CHECK_EQ_INT(count_lines(&b), 2 + 4 + 3 + 2 + 4 + 3);
        parse(&ps, b.data, b.len);
        CHECK_EQ_INT(ps.n, 4);
        CHECK_EQ_STR(ps.msgs[0].event, "created");
        CHECK_EQ_STR(ps.msgs[0].id, "10");
        CHECK_EQ_STR(ps.msgs[1].event, "");
        CHECK_EQ_STR(ps.msgs[1].id, "12");
        CHECK_EQ_STR(ps.msgs[2].event, "progress");
        CHECK_EQ_STR(ps.msgs[2].id, "15");
        CHECK_EQ_STR(ps.msgs[3].data, "{\"e\":2}");
        CHECK_EQ_STR(ps.last_id, "16");
        sse_buf_free(&b);
    }

    TEST("buffer growth, consume, reset") {
        sse_buf_init(&b);
        char big[10000];
        memset(big, 'z', sizeof big);
        CHECK_EQ_INT(sse_frame_message(&b, NULL, NULL, big, sizeof big), 0);
        CHECK_EQ_INT(b.len, sizeof big + 8);
        CHECK(b.cap >= b.len);
        sse_buf_consume(&b, 6);
        CHECK_EQ_INT(b.len, sizeof big + 2);
        CHECK_EQ_INT(b.data[0], 'z');
        sse_buf_consume(&b, b.len + 5);
        CHECK_EQ_INT(b.len, 0);
        CHECK_EQ_INT(sse_buf_append(&b, "ab", 2), 0);
        sse_buf_reset(&b);
        CHECK_EQ_INT(b.len, 0);
        CHECK(b.cap > 0);
        sse_buf_free(&b);
        CHECK(b.data == NULL && b.cap == 0);
    }

    /* ---- Last-Event-ID ---- */
    int64_t r;
#define LEID(s, want) (r = -77, sse_parse_last_event_id((s), slen(s), &r) == (want))
    TEST("Last-Event-ID: valid") {
        CHECK(LEID("0", SSE_LEID_OK) && r == 0);
        CHECK(LEID("42", SSE_LEID_OK) && r == 42);
        CHECK(LEID("  42\t", SSE_LEID_OK) && r == 42);
        CHECK(LEID("0042", SSE_LEID_OK) && r == 42);
        CHECK(LEID("9223372036854775807", SSE_LEID_OK) && r == INT64_MAX);
    }
    TEST("Last-Event-ID: absent or blank") {
        CHECK(LEID(NULL, SSE_LEID_NONE) && r == -77);
        CHECK(LEID("", SSE_LEID_NONE));
        CHECK(LEID("   ", SSE_LEID_NONE));
        CHECK(LEID("\t", SSE_LEID_NONE));
    }
    TEST("Last-Event-ID: garbage, sign, overflow, NUL, decimals") {
        const char *bad[] = {"-1", "+1", "-0", "abc", "12a", "a12", "1 2", "1.5", "1e3", "0x10",
                             "9223372036854775808", "99999999999999999999999", "١٢",
                             "\xef\xbc\x91", "1\n", "\n1"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (!LEID(bad[i], SSE_LEID_INVALID))
                fprintf(stderr, "  case %zu: %s\n", i, bad[i]);
            CHECK(r == -77);
        }
        CHECK_EQ_INT(sse_parse_last_event_id("12\0" "3", 4, &r), SSE_LEID_INVALID);
        CHECK_EQ_INT(sse_parse_last_event_id("123", 2, &r), SSE_LEID_OK);
        CHECK_EQ_INT(r, 12);
    }

    TEST("resume arithmetic") {
        CHECK_EQ_INT(sse_resume_start(0), 1);
        CHECK_EQ_INT(sse_resume_start(41), 42);
        CHECK_EQ_INT(sse_resume_start(INT64_MAX - 1), INT64_MAX);
        CHECK_EQ_INT(sse_resume_start(INT64_MAX), -1);
        CHECK_EQ_INT(sse_resume_start(-1), -1);
        CHECK_EQ_INT(sse_resume_start(INT64_MIN), -1);
        CHECK_EQ_INT(sse_created_id(1), 0);
        CHECK_EQ_INT(sse_created_id(42), 41);
        CHECK_EQ_INT(sse_created_id(0), 0);
        /* round trip: the created id resumes exactly at the start */
        for (int64_t s = 1; s < 1000; s += 37)
            CHECK_EQ_INT(sse_resume_start(sse_created_id(s)), s);
    }

    return TEST_REPORT();
}
