/*
 * gojson.c — Go encoding/json's scanner states, re-expressed as one loop over
 * the bytes with an explicit stack of open containers, so that kvgate's
 * syntax errors carry the same words and the same offending character as
 * etcd's.  See gojson.h.
 */
#include "gojson.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 10000

enum state {
    S_BEGIN_VALUE,          /* expecting a value */
    S_BEGIN_VALUE_OR_EMPTY, /* after '[' */
    S_BEGIN_KEY_OR_EMPTY,   /* after '{' */
    S_BEGIN_KEY,            /* after ',' in an object */
    S_END_VALUE,            /* a value ended; look at the container */
    S_IN_STRING, S_IN_STRING_ESC, S_IN_STRING_ESC_U,
    S_NEG, S_0, S_1, S_DOT, S_DOT0, S_E, S_E_SIGN, S_E0,
    S_LITERAL,              /* true/false/null, expecting lit[li] */
};

/* What the string / value being scanned is inside. */
enum frame { F_OBJ_KEY, F_OBJ_VALUE, F_ARRAY };

char *gojson_quote_char(unsigned char c, char *out)
{
    if (c == '\'') {
        strcpy(out, "'\\''");
        return out;
    }
    if (c == '"') {
        strcpy(out, "'\"'");
        return out;
    }
    /* strconv.Quote(string(rune(c))) without its double quotes. */
    switch (c) {
    case '\a': strcpy(out, "'\\a'"); return out;
    case '\b': strcpy(out, "'\\b'"); return out;
    case '\f': strcpy(out, "'\\f'"); return out;
    case '\n': strcpy(out, "'\\n'"); return out;
    case '\r': strcpy(out, "'\\r'"); return out;
    case '\t': strcpy(out, "'\\t'"); return out;
    case '\v': strcpy(out, "'\\v'"); return out;
    case '\\': strcpy(out, "'\\\\'"); return out;
    default: break;
    }
    if (c < 0x20 || c == 0x7f) {
        snprintf(out, 16, "'\\x%02x'", c);
    } else if (c < 0x80) {
        out[0] = '\'';
        out[1] = (char)c;
        out[2] = '\'';
        out[3] = 0;
    } else if (c < 0xa1 || c == 0xad) {
        /* U+0080..U+00A0 and the soft hyphen are not printable in Go. */
        snprintf(out, 16, "'\\u%04x'", c);
    } else {
        /* Latin-1 rune, printed as its UTF-8 encoding. */
        out[0] = '\'';
        out[1] = (char)(0xc0 | (c >> 6));
        out[2] = (char)(0x80 | (c & 0x3f));
        out[3] = '\'';
        out[4] = 0;
    }
    return out;
}

static int fail(gojson_scan *o, unsigned char c, const char *ctx)
{
    char q[16];
    snprintf(o->msg, sizeof o->msg, "invalid character %s %s", gojson_quote_char(c, q), ctx);
    return GOJSON_ERR;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Remembers a number literal that jansson cannot give back as an int64. */
static void note_number(gojson_scan *o, const char *buf, size_t start, size_t end, int is_int)
{
    if (is_int) {
        char tmp[32];
        size_t n = end - start;
        if (n < sizeof tmp) {
            memcpy(tmp, buf + start, n);
            tmp[n] = 0;
            errno = 0;
            (void)strtoll(tmp, NULL, 10);
            if (errno == 0)
                return;
        }
    }
    if (o->n_odd < GOJSON_MAX_ODD_NUMS) {
        o->odd[o->n_odd].off = start;
        o->odd[o->n_odd].len = end - start;
        o->n_odd++;
    }
}

int gojson_scan_value(const char *buf, size_t len, gojson_scan *o)
{
    static const char *const lit_ctx[] = {"true", "false", "null"};
    uint8_t stack[MAX_DEPTH + 1];
    size_t depth = 0, i = 0, num_start = 0, li = 0;
    int num_is_int = 1, hex_left = 0;
    const char *lit = NULL;
    enum state st = S_BEGIN_VALUE;

    o->n_odd = 0;
    o->msg[0] = 0;
    while (i < len && is_space((unsigned char)buf[i]))
        i++;
    if (i == len)
        return GOJSON_EMPTY;

    for (; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
    again:
        switch (st) {
        case S_BEGIN_VALUE_OR_EMPTY:
            if (is_space(c))
                continue;
            if (c == ']') {
                depth--;
                st = S_END_VALUE;
                goto end_value_check;
            }
            st = S_BEGIN_VALUE;
            /* fall through */
        case S_BEGIN_VALUE:
            if (is_space(c))
                continue;
            switch (c) {
            case '{':
                if (depth >= MAX_DEPTH) {
                    strcpy(o->msg, "exceeded max depth");
                    return GOJSON_ERR;
                }
                stack[depth++] = F_OBJ_KEY;
                st = S_BEGIN_KEY_OR_EMPTY;
                continue;
            case '[':
                if (depth >= MAX_DEPTH) {
                    strcpy(o->msg, "exceeded max depth");
                    return GOJSON_ERR;
                }
                stack[depth++] = F_ARRAY;
                st = S_BEGIN_VALUE_OR_EMPTY;
                continue;
            case '"':
                st = S_IN_STRING;
                continue;
            case '-':
                num_start = i;
                num_is_int = 1;
                st = S_NEG;
                continue;
            case '0':
                num_start = i;
                num_is_int = 1;
                st = S_0;
                continue;
            case 't': lit = lit_ctx[0]; li = 1; st = S_LITERAL; continue;
            case 'f': lit = lit_ctx[1]; li = 1; st = S_LITERAL; continue;
            case 'n': lit = lit_ctx[2]; li = 1; st = S_LITERAL; continue;
            default:
                if (c >= '1' && c <= '9') {
                    num_start = i;
                    num_is_int = 1;
                    st = S_1;
                    continue;
                }
                return fail(o, c, "looking for beginning of value");
            }
        case S_BEGIN_KEY_OR_EMPTY:
            if (is_space(c))
                continue;
            if (c == '}') {
                depth--;
                st = S_END_VALUE;
                goto end_value_check;
            }
            st = S_BEGIN_KEY;
            /* fall through */
        case S_BEGIN_KEY:
            if (is_space(c))
                continue;
            if (c == '"') {
                stack[depth - 1] = F_OBJ_KEY;
                st = S_IN_STRING;
                continue;
            }
            return fail(o, c, "looking for beginning of object key string");
        case S_END_VALUE:
            if (depth == 0) {
                /* Top-level value done (a number ended by this byte). */
                o->end = i;
                return GOJSON_OK;
            }
            if (is_space(c))
                continue;
            switch (stack[depth - 1]) {
            case F_OBJ_KEY:
                if (c == ':') {
                    stack[depth - 1] = F_OBJ_VALUE;
                    st = S_BEGIN_VALUE;
                    continue;
                }
                return fail(o, c, "after object key");
            case F_OBJ_VALUE:
                if (c == ',') {
                    st = S_BEGIN_KEY;
                    continue;
                }
                if (c == '}') {
                    depth--;
                    goto end_value_check;
                }
                return fail(o, c, "after object key:value pair");
            default:
                if (c == ',') {
                    st = S_BEGIN_VALUE;
                    continue;
                }
                if (c == ']') {
                    depth--;
                    goto end_value_check;
                }
                return fail(o, c, "after array element");
            }
        case S_IN_STRING:
            if (c == '"') {
                st = S_END_VALUE;
                goto end_value_check;
            }
            if (c == '\\') {
                st = S_IN_STRING_ESC;
                continue;
            }
            if (c < 0x20)
                return fail(o, c, "in string literal");
            continue;
        case S_IN_STRING_ESC:
            switch (c) {
            case 'b': case 'f': case 'n': case 'r': case 't':
            case '\\': case '/': case '"':
                st = S_IN_STRING;
                continue;
            case 'u':
                hex_left = 4;
                st = S_IN_STRING_ESC_U;
                continue;
            default:
                return fail(o, c, "in string escape code");
            }
        case S_IN_STRING_ESC_U:
            if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
                if (--hex_left == 0)
                    st = S_IN_STRING;
                continue;
            }
            return fail(o, c, "in \\u hexadecimal character escape");
        case S_NEG:
            if (c == '0') {
                st = S_0;
                continue;
            }
            if (c >= '1' && c <= '9') {
                st = S_1;
                continue;
            }
            return fail(o, c, "in numeric literal");
        case S_1:
            if (c >= '0' && c <= '9')
                continue;
            /* fall through */
        case S_0:
            if (c == '.') {
                num_is_int = 0;
                st = S_DOT;
                continue;
            }
            if (c == 'e' || c == 'E') {
                num_is_int = 0;
                st = S_E;
                continue;
            }
            goto number_end;
        case S_DOT:
            if (c >= '0' && c <= '9') {
                st = S_DOT0;
                continue;
            }
            return fail(o, c, "after decimal point in numeric literal");
        case S_DOT0:
            if (c >= '0' && c <= '9')
                continue;
            if (c == 'e' || c == 'E') {
                st = S_E;
                continue;
            }
            goto number_end;
        case S_E:
            if (c == '+' || c == '-') {
                st = S_E_SIGN;
                continue;
            }
            /* fall through */
        case S_E_SIGN:
            if (c >= '0' && c <= '9') {
                st = S_E0;
                continue;
            }
            return fail(o, c, "in exponent of numeric literal");
        case S_E0:
            if (c >= '0' && c <= '9')
                continue;
            goto number_end;
        case S_LITERAL:
            if (c == (unsigned char)lit[li]) {
                if (lit[++li] == 0) {
                    st = S_END_VALUE;
                    goto end_value_check;
                }
                continue;
            } else {
                char ctx[64];
                snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", lit, lit[li]);
                return fail(o, c, ctx);
            }
        }
        continue;

    number_end:
        note_number(o, buf, num_start, i, num_is_int);
        st = S_END_VALUE;
        goto again;

    end_value_check:
        if (depth == 0) {
            o->end = i + 1;
            return GOJSON_OK;
        }
    }

    /* End of input. */
    switch (st) {
    case S_0: case S_1: case S_DOT0: case S_E0:
        if (depth == 0) {
            note_number(o, buf, num_start, len, num_is_int);
            o->end = len;
            return GOJSON_OK;
        }
        break;
    default:
        break;
    }
    strcpy(o->msg, "unexpected EOF");
    return GOJSON_ERR;
}

size_t gojson_depth(const char *buf, size_t len, size_t limit)
{
    /* One pass, no stack: only the count of open brackets matters, and
     * brackets inside strings do not count.  Unbalanced input is fine (the
     * scanner reports it); this only bounds the work a parser would do. */
    size_t depth = 0, deepest = 0;
    for (size_t i = 0; i < len; i++) {
        switch (buf[i]) {
        case '"':
            for (i++; i < len && buf[i] != '"'; i++)
                if (buf[i] == '\\')
                    i++;
            break;
        case '[':
        case '{':
            if (++depth > deepest) {
                deepest = depth;
                if (deepest > limit)
                    return deepest;
            }
            break;
        case ']':
        case '}':
            if (depth)
                depth--;
            break;
        default:
            break;
        }
    }
    return deepest;
}
