/*
 * buf.h — a growable byte buffer for building response bodies.
 *
 * Responses are written once, front to back, then handed to libmicrohttpd,
 * which frees the memory (MHD_RESPMEM_MUST_FREE); so a buffer is a plain
 * malloc'd block and buf_steal() gives it away.  Allocation failure is
 * sticky: appends become no-ops and buf_failed() says so, letting encoders
 * write straight-line code and check once.
 */
#ifndef KVGATE_BUF_H
#define KVGATE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct gwbuf {
    char *p;     /* owned, malloc'd; NULL until the first append */
    size_t len, cap;
    bool failed; /* an allocation failed; contents are incomplete */
} gwbuf;

#define GWBUF_INIT {NULL, 0, 0, false}

bool buf_grow(gwbuf *b, size_t extra); /* ensure room for `extra` more bytes */
void buf_free(gwbuf *b);
/* Gives the block away (caller frees with free()); the buffer is reset. */
char *buf_steal(gwbuf *b, size_t *len);

static inline void buf_put(gwbuf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n && !buf_grow(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static inline void buf_puts(gwbuf *b, const char *s) { buf_put(b, s, strlen(s)); }
static inline void buf_putc(gwbuf *b, char c)
{
    if (b->cap == b->len && !buf_grow(b, 1))
        return;
    b->p[b->len++] = c;
}
/* Decimal int64 / uint64, no quotes. */
void buf_put_i64(gwbuf *b, int64_t v);
void buf_put_u64(gwbuf *b, uint64_t v);
/* A JSON string with Go's escaping (<, >, & as \u003c etc., as
 * encoding/json does), quotes included. */
void buf_put_json_str(gwbuf *b, const char *s, size_t n);

#endif
