/* fuzz_range.c — the range request body decoder (see fuzz_kv.h). */
#define FUZZ_KV_OP FUZZ_RANGE
#include "fuzz_kv.h"
