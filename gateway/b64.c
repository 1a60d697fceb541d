/*
 * b64.c — base64 for etcd's JSON `bytes` fields.  The decoder is a
 * transcription of the semantics of Go's encoding/base64 decodeQuantum (not
 * its code), so that error offsets match etcd's messages byte for byte.
 * See b64.h for the accepted forms.
 */
#include "b64.h"

static const char enc_tab[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 0xff otherwise. */
static const uint8_t dec_tab[256] = {
#define X 0xff
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
#undef X
};

void b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = enc_tab[v >> 18];
        *out++ = enc_tab[(v >> 12) & 63];
        *out++ = enc_tab[(v >> 6) & 63];
        *out++ = enc_tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = enc_tab[v >> 18];
        *out++ = enc_tab[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = enc_tab[v >> 18];
        *out++ = enc_tab[(v >> 12) & 63];
        *out++ = enc_tab[(v >> 6) & 63];
        *out++ = '=';
    }
}

static int is_nl(char c) { return c == '\n' || c == '\r'; }

int b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len, size_t *bad_pos)
{
    const uint8_t *src = (const uint8_t *)in;
    size_t si = 0, o = 0;

    /* Fast path: whole quanta of alphabet characters. */
    while (n - si > 4) {
        uint8_t a = dec_tab[src[si]], b = dec_tab[src[si + 1]];
        uint8_t c = dec_tab[src[si + 2]], d = dec_tab[src[si + 3]];
        if ((a | b | c | d) == 0xff)
            break;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
        si += 4;
    }

    /* General path, one quantum at a time (Go's decodeQuantum). */
    for (;;) {
        uint8_t dbuf[4] = {0, 0, 0, 0};
        size_t dlen = 4;
        int end = 0, err = 0;
        size_t errpos = 0;
        for (size_t j = 0; j < 4; j++) {
            if (si == n) {
                if (j == 0) {
                    *out_len = o;
                    return 0;
                }
                *bad_pos = si - j; /* padding is required */
                return -1;
            }
            uint8_t ch = src[si++];
            uint8_t v = dec_tab[ch];
            if (v != 0xff) {
                dbuf[j] = v;
                continue;
            }
            if (is_nl((char)ch)) {
                j--;
                continue;
            }
            if (ch != '=') {
                *bad_pos = si - 1;
                return -1;
            }
            /* Padding: only at quantum positions 2 and 3. */
            if (j < 2) {
                *bad_pos = si - 1;
                return -1;
            }
            if (j == 2) {
                while (si < n && is_nl(in[si]))
                    si++;
                if (si == n) {
                    *bad_pos = n;
                    return -1;
                }
                if (src[si] != '=') {
                    *bad_pos = si - 1;
                    return -1;
                }
                si++;
            }
            while (si < n && is_nl(in[si]))
                si++;
            if (si < n) {
                err = 1; /* trailing garbage after the padding */
                errpos = si;
            }
            dlen = j;
            end = 1;
            break;
        }
        uint32_t v = (uint32_t)dbuf[0] << 18 | (uint32_t)dbuf[1] << 12 |
                     (uint32_t)dbuf[2] << 6 | dbuf[3];
        if (dlen >= 2)
            out[o++] = (uint8_t)(v >> 16);
        if (dlen >= 3)
            out[o++] = (uint8_t)(v >> 8);
        if (dlen == 4)
            out[o++] = (uint8_t)v;
        if (err) {
            *bad_pos = errpos;
            return -1;
        }
        if (end) {
            *out_len = o;
            return 0;
        }
    }
}
