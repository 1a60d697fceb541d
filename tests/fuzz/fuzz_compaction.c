/* fuzz_compaction.c — the compaction request body decoder (see fuzz_kv.h). */
#define FUZZ_KV_OP FUZZ_COMPACT
#include "fuzz_kv.h"
