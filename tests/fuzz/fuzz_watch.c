/*
 * fuzz_watch.c — the POST /v3/watch body: a stream of WatchRequest values
 * (create / cancel / progress, several objects in one body) through
 * wj_decode_requests, and each create turned into the store's request as
 * watch_http.c does.  A failure must leave a message; a success owns its
 * array.
 */
#include <stdint.h>
#include <stdlib.h>

#include "watch_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wj_request *reqs = NULL;
    size_t n = 0;
    char msg[256];
    msg[0] = 0;
    if (wj_decode_requests((const char *)data, size, &reqs, &n, msg, sizeof msg) < 0) {
        if (msg[0] == 0 || reqs != NULL)
            abort();
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].kind == WJ_CREATE) {
            watch_create_req c;
            wj_to_create(&reqs[i], &c);
        }
    }
    wj_requests_free(reqs, n);
    return 0;
}
