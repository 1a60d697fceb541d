/*
 * fuzz_int64.c — int64 fields written as strings ("5", " 5"), as jsonpb
 * parses them (ej_parse_int64_text), and as bare JSON numbers through the
 * whole decoder ({"revision": <input>}): a refusal always has a message,
 * an accepted plain decimal has its strtoll value.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t v = 0;
    char msg[256];
    msg[0] = 0;
    if (ej_parse_int64_text((const char *)data, size, &v, msg, sizeof msg) != 0) {
        if (msg[0] == 0)
            abort();
    } else if (size > 0 && size < 32 && memchr(data, 0, size) == NULL) {
        char tmp[32];
        memcpy(tmp, data, size);
        tmp[size] = 0;
        char *end;
        errno = 0;
        long long want = strtoll(tmp, &end, 10);
        /* only a plain decimal is comparable (jsonpb also takes blanks) */
        if (*end == 0 && errno == 0 && tmp[0] != ' ' && want != v)
            abort();
    }
    /* the same text as a JSON value of an int64 field */
    size_t blen = size + 16;
    char *body = malloc(blen);
    if (!body)
        return 0;
    memcpy(body, "{\"revision\":", 12);
    memcpy(body + 12, data, size);
    memcpy(body + 12 + size, "}", 1);
    ej_decoder d;
    kv_compact_req c = {0};
    if (ej_decoder_init(&d, body, size + 13) == 0)
        (void)ej_decode_compact(&d, &c);
    ej_decoder_done(&d);
    free(body);
    return 0;
}
