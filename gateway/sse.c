/*
 * sse.c — Server-Sent Events framing and Last-Event-ID arithmetic.
 *
 * The format (WHATWG HTML, "Server-sent events"): a stream of UTF-8 lines
 * ended by CR LF, LF or CR; a blank line dispatches the message built so far;
 * "field: value" lines set event, id, data (appended, joined with LF) and
 * retry; lines starting with ':' are comments.  The parser strips exactly one
 * space after the colon, so we always write "field: value" and a value that
 * itself starts with a space survives.
 *
 * Invariant kept here: no field value we write contains CR or LF, so one call
 * is one message, whatever the caller passes.  Data is split into lines;
 * event names and ids with line breaks are refused rather than "fixed".
 */
#include "sse.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Growth step floor: most messages are a few hundred bytes. */
static const size_t sse_buf_min_cap = 256;

void sse_buf_init(sse_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sse_buf_free(sse_buf *b)
{
    free(b->data);
    sse_buf_init(b);
}

void sse_buf_reset(sse_buf *b)
{
    b->len = 0;
}

void sse_buf_consume(sse_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static int sse_buf_reserve(sse_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return -1;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : sse_buf_min_cap;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sse_buf_append(sse_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (sse_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int sse_put_field(sse_buf *b, const char *name, const char *v, size_t vlen)
{
    if (sse_buf_append(b, name, strlen(name)) < 0 || sse_buf_append(b, ": ", 2) < 0 ||
        sse_buf_append(b, v, vlen) < 0 || sse_buf_append(b, "\n", 1) < 0)
        return -1;
    return 0;
}

/* True when s has none of the bytes in `bad` (a NUL-terminated set; NUL
 * itself is implicitly excluded by strlen). */
static int sse_clean(const char *s, const char *bad)
{
    return s[strcspn(s, bad)] == '\0';
}

/* Appends the data lines of one payload: "data: <line>\n" for each line. */
static int sse_put_data(sse_buf *b, const char *data, size_t len)
{
    /* the usual payload (compact JSON) is one line: found with memchr,
     * which is much faster than the byte loop below on a big value */
    if (!data || (!memchr(data, '\n', len) && !memchr(data, '\r', len)))
        return sse_put_field(b, "data", data ? data : "", len);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\r' && data[i] != '\n')
            continue;
        if (sse_put_field(b, "data", data + start, i - start) < 0)
            return -1;
        if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    return sse_put_field(b, "data", data ? data + start : "", len - start);
}

int sse_frame_message(sse_buf *b, const char *event, const char *id,
                      const char *data, size_t data_len)
{
    if (event && (!*event || !sse_clean(event, "\r\n:")))
        return -1;
    if (id && !sse_clean(id, "\r\n"))
        return -1;
    if (!data)
        data_len = 0;
    size_t saved = b->len;
    if (event && strcmp(event, "message") != 0 &&
        sse_put_field(b, "event", event, strlen(event)) < 0)
        goto err;
    if (id && sse_put_field(b, "id", id, strlen(id)) < 0)
        goto err;
    if (sse_put_data(b, data, data_len) < 0 || sse_buf_append(b, "\n", 1) < 0)
        goto err;
    return 0;
err:
    b->len = saved;
    return -1;
}

int sse_frame_message_rev(sse_buf *b, const char *event, int64_t id,
                          const char *data, size_t data_len)
{
    char idbuf[24], tmp[24];
    if (id < 0)
        return sse_frame_message(b, event, NULL, data, data_len);
    /* "%lld" without printf: once per message and stream */
    uint64_t v = (uint64_t)id;
    size_t n = 0, o = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        idbuf[o++] = tmp[--n];
    idbuf[o] = 0;
    return sse_frame_message(b, event, idbuf, data, data_len);
}

int sse_frame_retry(sse_buf *b, unsigned ms)
{
    char line[32];
    int n = snprintf(line, sizeof line, "retry: %u\n\n", ms);
    return sse_buf_append(b, line, (size_t)n);
}

int sse_frame_comment(sse_buf *b, const char *text)
{
    size_t saved = b->len;
    if (!text || !*text) {
        if (sse_buf_append(b, ":\n\n", 3) < 0)
            return -1;
        return 0;
    }
    size_t len = strlen(text), start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\r' && text[i] != '\n')
            continue;
        if (sse_buf_append(b, ": ", 2) < 0 || sse_buf_append(b, text + start, i - start) < 0 ||
            sse_buf_append(b, "\n", 1) < 0)
            goto err;
        if (i < len && text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    if (sse_buf_append(b, "\n", 1) < 0)
        goto err;
    return 0;
err:
    b->len = saved;
    return -1;
}

sse_leid sse_parse_last_event_id(const char *s, size_t len, int64_t *rev)
{
    if (!s)
        return SSE_LEID_NONE;
    size_t i = 0, end = len;
    while (i < end && (s[i] == ' ' || s[i] == '\t'))
        i++;
    while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    if (i == end)
        return SSE_LEID_NONE;
    int64_t v = 0;
    for (; i < end; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SSE_LEID_INVALID;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return SSE_LEID_INVALID;
        v = v * 10 + d;
    }
    *rev = v;
    return SSE_LEID_OK;
}

int64_t sse_resume_start(int64_t last_id)
{
    if (last_id < 0 || last_id == INT64_MAX)
        return -1;
    return last_id + 1;
}

int64_t sse_created_id(int64_t start_rev)
{
    return start_rev > 0 ? start_rev - 1 : 0;
}
