/*
 * fuzz_watch_params.c — the SSE watch's query string and Last-Event-ID, as
 * watch_http.c feeds them to watch_params: input "q1=v1&q2&...\nHEADER",
 * arguments split at '&' and the first '=', values percent-decoded (as
 * libmicrohttpd does, so values may hold NUL), the part after the first
 * LF (if any) as the Last-Event-ID header.  A refusal always has a message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "watch_params.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* In-place percent-decoding; returns the new length. */
static size_t pct_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = 0;
    char *nl = memchr(in, '\n', size);
    size_t qlen = nl ? (size_t)(nl - in) : size;
    const char *hdr = nl ? nl + 1 : NULL;
    size_t hlen = nl ? size - qlen - 1 : 0;

    watch_params p;
    watch_params_init(&p);
    const char *err = NULL;
    int rc = 0;
    size_t i = 0;
    while (rc == 0 && i < qlen) {
        size_t j = i;
        while (j < qlen && in[j] != '&')
            j++;
        in[j] = 0; /* the name is a C string, as MHD gives it */
        char *eq = memchr(in + i, '=', j - i);
        char *val = NULL;
        size_t vlen = 0;
        if (eq) {
            *eq = 0;
            val = eq + 1;
            vlen = pct_decode(val, (size_t)(in + j - val));
        }
        if (in[i] != 0 || eq) {
            err = NULL;
            rc = watch_params_add(&p, in + i, val, vlen, &err);
            if (rc != 0 && !err)
                abort();
        }
        i = j + 1;
    }
    if (rc == 0) {
        err = NULL;
        rc = watch_params_finish(&p, &err);
        if (rc != 0 && !err)
            abort();
    }
    if (rc == 0) {
        int64_t start = -1;
        bool resumed = false;
        err = NULL;
        if (watch_params_start(&p, hdr, hlen, &start, &resumed, &err) != 0) {
            if (!err)
                abort();
        } else if (start < 0) {
            abort();
        }
        if (p.key.len == 0)
            abort(); /* watch_params.h: after finish, never empty */
    }
    watch_params_free(&p);
    free(in);
    return 0;
}
