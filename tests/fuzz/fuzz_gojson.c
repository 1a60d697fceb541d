/*
 * fuzz_gojson.c — the Go-compatible scanner alone: any input gives OK with
 * an end inside the input, EMPTY, or ERR with a message; never a crash or
 * a deep recursion (its stack of containers is explicit).
 */
#include <stdint.h>
#include <stdlib.h>

#include "gojson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gojson_scan sc;
    int rc = gojson_scan_value((const char *)data, size, &sc);
    if (rc == GOJSON_OK && (sc.end == 0 || sc.end > size))
        abort();
    if (rc == GOJSON_ERR && sc.msg[0] == 0)
        abort();
    if (sc.n_odd > GOJSON_MAX_ODD_NUMS)
        abort();
    return 0;
}
