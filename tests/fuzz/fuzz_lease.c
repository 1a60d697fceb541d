/*
 * fuzz_lease.c — the lease request bodies as lease_http.c decodes them:
 * grant and revoke ({"TTL","ID"}: both read for either) and timetolive
 * ({"ID","keys"}), each decoder on the same input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "etcd_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ej_decoder d;
    int64_t id = 0, ttl = 0;
    bool keys = false;
    if (ej_decoder_init(&d, (const char *)data, size) == 0 &&
        ej_get_int64(&d, "TTL", NULL, &ttl) == 0)
        (void)ej_get_int64(&d, "ID", NULL, &id);
    ej_decoder_done(&d);
    if (ej_decoder_init(&d, (const char *)data, size) == 0 &&
        ej_get_int64(&d, "ID", NULL, &id) == 0)
        (void)ej_get_bool(&d, "keys", NULL, &keys);
    ej_decoder_done(&d);
    return 0;
}
