/*
 * gojson.h — a JSON syntax scanner that fails exactly where and how Go's
 * encoding/json Decoder fails.
 *
 * etcd's gateway decodes a request body with json.Decoder.Decode: it reads
 * the first JSON value, ignores whatever follows it, and on bad syntax
 * answers HTTP 400 {"error": <Go's message>, "code": 3}.  jansson reports
 * errors its own way, so kvgate first runs this scanner over the body to get
 * Go's verdict and message, then parses the value with jansson.
 *
 * Messages reproduced (Go's scanner):
 *   invalid character 'x' looking for beginning of value
 *   invalid character 'x' looking for beginning of object key string
 *   invalid character 'x' after object key
 *   invalid character 'x' after object key:value pair
 *   invalid character 'x' after array element
 *   invalid character 'x' in string literal / in string escape code /
 *     in \u hexadecimal character escape / in numeric literal /
 *     after decimal point in numeric literal / in exponent of numeric literal /
 *     in literal true (expecting 'r') ...
 *   unexpected EOF          (the body ends inside the value)
 *   exceeded max depth      (nesting deeper than 10000)
 *
 * (jansson, which parses the value afterwards, stops at 2048 levels: see
 * gojson_depth and --max-json-depth.)
 *
 * It also remembers the text of number literals that are not int64
 * integers (fractions, exponents, overflow), because Go's type errors quote
 * the literal ("cannot unmarshal number 5.0 into Go value of type int64")
 * and jansson keeps only the double.
 * Pure: no allocation, no globals.
 */
#ifndef KVGATE_GOJSON_H
#define KVGATE_GOJSON_H

#include <stddef.h>

enum { GOJSON_OK = 0, GOJSON_EMPTY = 1, GOJSON_ERR = -1 };

#define GOJSON_MAX_ODD_NUMS 16

typedef struct gojson_scan {
    size_t end;                   /* GOJSON_OK: offset just past the value */
    char msg[96];                 /* GOJSON_ERR: Go's message */
    size_t n_odd;                 /* number literals that are not int64 */
    struct { size_t off, len; } odd[GOJSON_MAX_ODD_NUMS];
} gojson_scan;

/* Scans the first value of buf[0..len).  GOJSON_EMPTY: only whitespace
 * (Go's io.EOF, which etcd's gateway treats as an empty message). */
int gojson_scan_value(const char *buf, size_t len, gojson_scan *out);

/* The deepest nesting of arrays and objects in buf[0..len) (all of it,
 * every value; brackets inside strings do not count), or the first depth
 * above limit, where it stops looking.  Linear, no recursion: the
 * gateway's --max-json-depth check, before any parser sees the body. */
size_t gojson_depth(const char *buf, size_t len, size_t limit);

/* Go's strconv.IsPrint (Unicode 13, as the Go 1.19 etcd 3.4.23 is built
 * with): letters, marks, numbers, punctuation, symbols, ASCII space. */
int gojson_is_print(unsigned long r);

/* Go's utf8.DecodeRune: the rune at p (n > 0 bytes) in *r and its width,
 * or width 0 for an invalid sequence (overlong, surrogate, > U+10FFFF,
 * truncated; Go: RuneError, width 1). */
size_t gojson_decode_rune(const unsigned char *p, size_t n, unsigned long *r);

/* Go's strconv.Quote of the bytes s[0..n) (what %q prints for a string or
 * []byte), with its double quotes, into out, which must hold 4 * n + 3
 * bytes; NUL-terminated.  Returns the length written. */
size_t gojson_quote(const char *s, size_t n, char *out);

/* Go's quoteChar: writes 'c' quoted as Go's scanner does (e.g. 'x', '\n',
 * '\x00', '\u00a0') into out (at least 16 bytes).  Returns out. */
char *gojson_quote_char(unsigned char c, char *out);

#endif
