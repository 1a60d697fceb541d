/*
 * fuzz_sse.c — SSE input: the Last-Event-ID header value and the resume
 * arithmetic, and the framing of arbitrary event names, ids and data
 * (what must hold: a framed message never carries a line break inside a
 * field, so it has exactly as many "data:" lines as the data has lines).
 * Input layout: first byte splits the rest into (header, data).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cut = data[0] % size;
    const char *hdr = (const char *)data + 1;
    size_t hlen = cut > 0 ? cut - 1 : 0;
    const char *rest = (const char *)data + 1 + hlen;
    size_t rlen = size - 1 - hlen;

    int64_t rev = -1;
    sse_leid k = sse_parse_last_event_id(hdr, hlen, &rev);
    if (k == SSE_LEID_OK) {
        if (rev < 0)
            abort();
        (void)sse_resume_start(rev);
        (void)sse_created_id(rev);
    }

    sse_buf b;
    sse_buf_init(&b);
    /* the header bytes as an id and an event name (NUL-terminated copies) */
    char *name = malloc(hlen + 1);
    if (name) {
        memcpy(name, hdr, hlen);
        name[hlen] = 0;
        if (sse_frame_message(&b, hlen ? name : NULL, name, rest, rlen) == 0) {
            /* no field may hold a CR: every line ends in LF */
            if (memchr(b.data, '\r', b.len) != NULL)
                abort();
            if (b.len < 2 || b.data[b.len - 1] != '\n' || b.data[b.len - 2] != '\n')
                abort();
        }
        sse_buf_reset(&b);
        (void)sse_frame_comment(&b, name);
        if (b.len && memchr(b.data, '\r', b.len) != NULL)
            abort();
        free(name);
    }
    (void)sse_frame_message_rev(&b, "put", rev, rest, rlen);
    sse_buf_free(&b);
    return 0;
}
