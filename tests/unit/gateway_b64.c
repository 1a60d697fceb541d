/*
 * gateway_b64.c — base64 as etcd's gateway reads and writes it.  The error
 * offsets are those etcd 3.4.23 answered ("illegal base64 data at input
 * byte N") for the same inputs.
 */
#include <stdlib.h>

#include "b64.h"
#include "testhelp.h"

static int dec(const char *in, char *out, size_t *outlen, size_t *bad)
{
    return b64_decode(in, strlen(in), (uint8_t *)out, outlen, bad);
}

int main(void)
{
    TEST("encode RFC 4648 vectors") {
        const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
        const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        for (int i = 0; i < 7; i++) {
            char out[16] = {0};
            b64_encode((const uint8_t *)in[i], strlen(in[i]), out);
            CHECK_EQ_INT(b64_encoded_len(strlen(in[i])), strlen(want[i]));
            CHECK_EQ_STR(out, want[i]);
        }
    }
    TEST("decode round trip of all byte values and lengths") {
        uint8_t src[300], back[300];
        char enc[420];
        for (int i = 0; i < 300; i++)
            src[i] = (uint8_t)(i * 7 + 3);
        for (size_t n = 0; n <= 300; n++) {
            size_t el = b64_encoded_len(n), ol = 0, bad = 0;
            b64_encode(src, n, enc);
            CHECK_EQ_INT(b64_decode(enc, el, back, &ol, &bad), 0);
            CHECK_MEM(back, ol, src, n);
        }
    }
    TEST("decode accepts padded standard base64") {
        char out[16];
        size_t ol, bad;
        CHECK_EQ_INT(dec("Zm9v", out, &ol, &bad), 0);
        CHECK_MEM(out, ol, "foo", 3);
        CHECK_EQ_INT(dec("Zm8=", out, &ol, &bad), 0);
        CHECK_MEM(out, ol, "fo", 2);
        CHECK_EQ_INT(dec("/+8=", out, &ol, &bad), 0);
        CHECK_EQ_INT(ol, 2);
        CHECK_EQ_INT(dec("", out, &ol, &bad), 0);
        CHECK_EQ_INT(ol, 0);
    }
    TEST("decode skips CR and LF anywhere (etcd: \"Zm9v\\n\" and \"Zm9v\\r\\n\" work)") {
        char out[16];
        size_t ol, bad;
        CHECK_EQ_INT(dec("Zm9v\n", out, &ol, &bad), 0);
        CHECK_MEM(out, ol, "foo", 3);
        CHECK_EQ_INT(dec("Zm9v\r\n", out, &ol, &bad), 0);
        CHECK_EQ_INT(dec("Z\nm9\r\nv", out, &ol, &bad), 0);
        CHECK_MEM(out, ol, "foo", 3);
    }
    TEST("decode error offsets match etcd") {
        char out[64];
        size_t ol, bad;
        struct { const char *in; size_t pos; } cases[] = {
            {"Zm9", 0},      /* etcd: byte 0 (missing padding) */
            {"Zm8", 0},      /* etcd: byte 0 */
            {"Zm9v=", 4},    /* etcd: byte 4 */
            {"_-8=", 0},     /* URL-safe: byte 0 */
            {"_-8", 0},
            {"Zm 9v", 2},    /* space: byte 2 */
            {"Zm9vZm9vZm9v!", 12},
            {"Zg=", 3},      /* one '=' where two are needed */
            {"Zg=x", 2},
            {"Z===", 1},
            {"Zm8=Zm8=", 4}, /* data after padding */
            {"Zm9vYmFyYmF6YmF6YmF6Y", 20},
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            bad = 999;
            CHECK_EQ_INT(dec(cases[i].in, out, &ol, &bad), -1);
            CHECK_EQ_INT(bad, cases[i].pos);
        }
    }
    TEST("decode accepts non-zero trailing bits like Go's non-strict decoder") {
        char out[8];
        size_t ol, bad;
        CHECK_EQ_INT(dec("Zh==", out, &ol, &bad), 0);
        CHECK_EQ_INT(ol, 1);
    }
    return TEST_REPORT();
}
