/* fuzz_txn.c — the txn request body decoder (see fuzz_kv.h). */
#define FUZZ_KV_OP FUZZ_TXN
#include "fuzz_kv.h"
