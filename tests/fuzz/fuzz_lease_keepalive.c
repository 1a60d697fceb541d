/*
 * fuzz_lease_keepalive.c — the keepalive body: a stream of LeaseKeepAlive
 * values in one body, read with the loop of lease_http.c's h_keepalive
 * (scan one value, decode its ID, advance by the scanner's end).  What
 * must also hold here: the loop always advances (no hang on any input).
 */
#include <stdint.h>
#include <stdlib.h>

#include "etcd_json.h"
#include "gojson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    size_t off = 0;
    for (;;) {
        gojson_scan sc;
        if (off >= size || gojson_scan_value(body + off, size - off, &sc) == GOJSON_EMPTY)
            break;
        ej_decoder d;
        int64_t id = 0;
        int rc = ej_decoder_init(&d, body + off, size - off);
        if (rc == 0)
            rc = ej_get_int64(&d, "ID", NULL, &id);
        if (rc != 0) {
            ej_decoder_done(&d);
            break;
        }
        if (d.scan.end == 0 || d.scan.end > size - off)
            abort(); /* no progress, or past the body: h_keepalive would hang or overrun */
        off += d.scan.end;
        ej_decoder_done(&d);
    }
    return 0;
}
