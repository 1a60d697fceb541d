/* fuzz_put.c — the put request body decoder (see fuzz_kv.h). */
#define FUZZ_KV_OP FUZZ_PUT
#include "fuzz_kv.h"
