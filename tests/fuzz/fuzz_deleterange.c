/* fuzz_deleterange.c — the deleterange request body decoder (see fuzz_kv.h). */
#define FUZZ_KV_OP FUZZ_DELETE
#include "fuzz_kv.h"
