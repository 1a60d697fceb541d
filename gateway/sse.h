/*
 * sse.h — Server-Sent Events framing (pure: buffers in, bytes out).
 *
 * Why a module of its own: the SSE wire format is line-based, and a single
 * stray CR or LF inside an event name, an id or a data payload would split
 * one message into two or inject fields a browser then trusts (an `id:` that
 * moves its Last-Event-ID, a `retry:`).  Every byte kvgate sends on an SSE
 * stream is produced here, and nothing here can emit a field that contains a
 * line break: data payloads are split into one `data:` line per line of
 * input (the browser joins them back with "\n"), names and ids with CR, LF or
 * NUL are refused.
 *
 * It also owns the resume arithmetic: a message's id is the highest store
 * revision it covers, so a client that reconnects with `Last-Event-ID: N`
 * has seen everything up to and including N and continues from N + 1.
 *
 * Ownership: sse_buf owns its storage; sse_buf_free() releases it.  The
 * frame functions append to the buffer and return 0, or -1 with the buffer
 * unchanged (bad input or out of memory).
 */
#ifndef KVGATE_SSE_H
#define KVGATE_SSE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sse_buf {
    char *data;  /* owned; not NUL-terminated */
    size_t len;
    size_t cap;
} sse_buf;

void sse_buf_init(sse_buf *b);
void sse_buf_free(sse_buf *b);
void sse_buf_reset(sse_buf *b); /* len = 0, keeps the storage */
/* Drops the first n bytes (n <= len): what a partial write has consumed. */
void sse_buf_consume(sse_buf *b, size_t n);
int sse_buf_append(sse_buf *b, const void *p, size_t n);

/* One message:
 *   [event: <event>\n]   only when event is non-NULL and not "message"
 *   [id: <id>\n]         only when id is non-NULL
 *   data: <line>\n       one per line of data (split on \r\n, \r and \n);
 *                        a NULL or empty data gives one empty data line
 *   \n
 * event must be non-empty and free of CR, LF, NUL and ':' ; id free of CR,
 * LF and NUL (the EventSource spec ignores ids with NUL).  Else -1. */
int sse_frame_message(sse_buf *b, const char *event, const char *id,
                      const char *data, size_t data_len);

/* The same with a numeric id (>= 0), the common case: id = a revision.
 * id < 0 means no id line. */
int sse_frame_message_rev(sse_buf *b, const char *event, int64_t id,
                          const char *data, size_t data_len);

/* "retry: <ms>\n\n": how long the browser waits before reconnecting. */
int sse_frame_retry(sse_buf *b, unsigned ms);

/* ": <text>\n" per line of text, then "\n" (a comment block: browsers
 * ignore it; proxies and dead peers see traffic).  NULL text gives ":\n\n". */
int sse_frame_comment(sse_buf *b, const char *text);

/* ---- Last-Event-ID and resume ---- */

typedef enum sse_leid {
    SSE_LEID_NONE = 0,  /* absent, or empty / only blanks (the spec's "reset") */
    SSE_LEID_OK,        /* *rev set, >= 0 */
    SSE_LEID_INVALID,   /* not a decimal revision: sign, garbage, overflow */
} sse_leid;

/* Parses a Last-Event-ID header value or a last_event_id query value:
 * optional blanks (space, tab) around a run of ASCII digits, <= INT64_MAX.
 * s may be NULL (absent).  len is the value's byte length (it may hold a
 * NUL, which makes it invalid). */
sse_leid sse_parse_last_event_id(const char *s, size_t len, int64_t *rev);

/* Where a stream resumes after the client has seen up to last_id: the
 * start revision last_id + 1.  -1 if that overflows or last_id < 0. */
int64_t sse_resume_start(int64_t last_id);

/* The id to put on a stream's first control message (`event: created`)
 * for a watch starting at start_rev (> 0): start_rev - 1, so that a client
 * dropped before any event resumes exactly where the watch began.  For
 * start_rev <= 0 ("from now") the caller passes current_rev + 1. */
int64_t sse_created_id(int64_t start_rev);

#endif
