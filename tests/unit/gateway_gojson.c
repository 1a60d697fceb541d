/*
 * gateway_gojson.c — the Go-compatible JSON scanner.  Expected messages are
 * what etcd 3.4.23's gateway answered (or Go's scanner text for the same
 * state).
 */
#include "gojson.h"
#include "testhelp.h"

static int scan(const char *s, gojson_scan *o) { return gojson_scan_value(s, strlen(s), o); }

int main(void)
{
    gojson_scan o;
    TEST("valid values and their end") {
        CHECK_EQ_INT(scan("{\"key\":\"Zm9v\"} x", &o), GOJSON_OK); /* etcd ignores the rest */
        CHECK_EQ_INT(o.end, 14);
        CHECK_EQ_INT(scan("{\"key\":\"Zm9v\"}{}", &o), GOJSON_OK);
        CHECK_EQ_INT(o.end, 14);
        CHECK_EQ_INT(scan("  [1, -2.5e+3, true, false, null, \"a\\u00e9\\n\", {}]", &o), GOJSON_OK);
        CHECK_EQ_INT(scan("5", &o), GOJSON_OK);
        CHECK_EQ_INT(o.end, 1);
        CHECK_EQ_INT(scan("5 ", &o), GOJSON_OK);
        CHECK_EQ_INT(o.end, 1);
    }
    TEST("empty body is EMPTY (etcd: an empty request)") {
        CHECK_EQ_INT(scan("", &o), GOJSON_EMPTY);
        CHECK_EQ_INT(scan(" \n\t", &o), GOJSON_EMPTY);
    }
    TEST("etcd's syntax error texts") {
        struct { const char *in, *msg; } c[] = {
            {"{\"key\":\"Zm9v\"", "unexpected EOF"},
            {"{", "unexpected EOF"},
            {"x", "invalid character 'x' looking for beginning of value"},
            {"{x", "invalid character 'x' looking for beginning of object key string"},
            {"{\"a\" 1}", "invalid character '1' after object key"},
            {"{\"a\":1 2}", "invalid character '2' after object key:value pair"},
            {"[1 2]", "invalid character '2' after array element"},
            {"\"a\nb\"", "invalid character '\\n' in string literal"},
            {"\"\\x\"", "invalid character 'x' in string escape code"},
            {"\"\\u12g4\"", "invalid character 'g' in \\u hexadecimal character escape"},
            {"-a", "invalid character 'a' in numeric literal"},
            {"1.x", "invalid character 'x' after decimal point in numeric literal"},
            {"1ex", "invalid character 'x' in exponent of numeric literal"},
            {"tru", "unexpected EOF"},
            {"trux", "invalid character 'x' in literal true (expecting 'e')"},
            {"nul1", "invalid character '1' in literal null (expecting 'l')"},
            {"fx", "invalid character 'x' in literal false (expecting 'a')"},
            {"{'a':1}", "invalid character '\\'' looking for beginning of object key string"},
            {"{\"a\":\x01}", "invalid character '\\x01' looking for beginning of value"},
            {"{,}", "invalid character ',' looking for beginning of object key string"},
            {"[,]", "invalid character ',' looking for beginning of value"},
            {"{\"a\":1,}", "invalid character '}' looking for beginning of object key string"},
            {"+5", "invalid character '+' looking for beginning of value"},
        };
        for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
            CHECK_EQ_INT(scan(c[i].in, &o), GOJSON_ERR);
            CHECK_EQ_STR(o.msg, c[i].msg);
        }
    }
    TEST("Go's quoteChar") {
        char q[16];
        CHECK_EQ_STR(gojson_quote_char('a', q), "'a'");
        CHECK_EQ_STR(gojson_quote_char('"', q), "'\"'");
        CHECK_EQ_STR(gojson_quote_char('\'', q), "'\\''");
        CHECK_EQ_STR(gojson_quote_char(0, q), "'\\x00'");
        CHECK_EQ_STR(gojson_quote_char(0x7f, q), "'\\x7f'");
        CHECK_EQ_STR(gojson_quote_char(0x80, q), "'\\u0080'");
        CHECK_EQ_STR(gojson_quote_char(0xe9, q), "'\xc3\xa9'");
    }
    TEST("odd number literals are remembered") {
        CHECK_EQ_INT(scan("{\"a\":5.5,\"b\":7,\"c\":1e2,\"d\":99999999999999999999}", &o), GOJSON_OK);
        CHECK_EQ_INT(o.n_odd, 3);
        CHECK_EQ_INT(o.odd[0].len, 3);
        CHECK_EQ_INT(o.odd[2].len, 20);
    }
    TEST("Go's strconv.Quote (%q of enum names)") {
        static const struct { const char *in; const char *out; } c[] = {
            {"abc", "\"abc\""},
            {"a\"b\\c", "\"a\\\"b\\\\c\""},
            {"\a\b\f\n\r\t\v\x01\x7f", "\"\\a\\b\\f\\n\\r\\t\\v\\x01\\x7f\""},
            {"\xc3\xa9\xc2\xa0\xc2\xad\xc2\x85", "\"\xc3\xa9\\u00a0\\u00ad\\u0085\""},
            {"\xe2\x80\x8b\xe2\x80\xa8\xef\xbb\xbf\xee\x80\x80", "\"\\u200b\\u2028\\ufeff\\ue000\""},
            {"\xf0\x9f\x98\x80\xf3\xa0\x80\x81\xf4\x8f\xbf\xbf", "\"\xf0\x9f\x98\x80\\U000e0001\\U0010ffff\""},
            {"\xff\xc3\xe0\x80\x80\xed\xa0\x80", "\"\\xff\\xc3\\xe0\\x80\\x80\\xed\\xa0\\x80\""},
            {"\xe0\xa1\xb0", "\"\\u0870\""}, /* assigned in Unicode 14: not printable in Go 1.19 */
            {"\xe4\xb8\xad \xef\xbf\xbd", "\"\xe4\xb8\xad \xef\xbf\xbd\""},
        };
        for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
            char out[256];
            size_t n = gojson_quote(c[i].in, strlen(c[i].in), out);
            CHECK_EQ_STR(out, c[i].out);
            CHECK_EQ_INT(n, strlen(c[i].out));
        }
        char out[4 * 4 + 3];
        CHECK_EQ_INT(gojson_quote("\x7f\x7f\x7f\x7f", 4, out), 18); /* the worst case fits 4n+3 */
        CHECK(gojson_is_print(' ') && !gojson_is_print('\t') && !gojson_is_print(0x110000));
    }
    TEST("depth limit") {
        static char deep[10010 * 2];
        for (int i = 0; i < 10005; i++)
            deep[i] = '[';
        deep[10005] = 0;
        CHECK_EQ_INT(scan(deep, &o), GOJSON_ERR);
        CHECK_EQ_STR(o.msg, "exceeded max depth");
    }
    TEST("gojson_depth: brackets in strings do not count, stops past the limit") {
        CHECK_EQ_INT(gojson_depth("", 0, 64), 0);
        CHECK_EQ_INT(gojson_depth("{\"a\":[1,{}]}", 12, 64), 3);
        CHECK_EQ_INT(gojson_depth("{\"[[[\\\"[[\":1}", 14, 64), 1);
        CHECK_EQ_INT(gojson_depth("[]]]]][[", 8, 64), 2); /* extra closes do not go below 0 */
        CHECK_EQ_INT(gojson_depth("{}{}[[]]", 8, 64), 2);
        static char deep[1 << 20];
        memset(deep, '[', sizeof deep);
        CHECK_EQ_INT(gojson_depth(deep, sizeof deep, 64), 65);
        CHECK_EQ_INT(gojson_depth(deep, sizeof deep, (size_t)-1), sizeof deep);
        CHECK_EQ_INT(gojson_depth("\"[[[", 4, 1), 0); /* unterminated string */
    }
    return TEST_REPORT();
}
