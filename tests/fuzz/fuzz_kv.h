/*
 * fuzz_kv.h — the shared body of the KV decoder fuzz targets: the same
 * sequence of calls kv_http.c makes on a request body (scan, parse, decode,
 * etcd's checks, the raft size), on arbitrary bytes.  Each fuzz_<op>.c sets
 * FUZZ_KV_OP and includes this.  What must hold: no crash, no leak, no
 * hang, and a decoder that fails leaves a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_json.h"
#include "kv.h"

enum { FUZZ_RANGE, FUZZ_PUT, FUZZ_DELETE, FUZZ_TXN, FUZZ_COMPACT };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ej_decoder d;
    kv_request *req = calloc(1, sizeof *req);
    if (!req)
        return 0;
    int rc = ej_decoder_init(&d, (const char *)data, size);
    if (rc == 0) {
        req->kind = KV_REQ_OP;
        switch (FUZZ_KV_OP) {
        case FUZZ_RANGE:
            req->op.type = KV_OP_RANGE;
            rc = ej_decode_range(&d, &req->op.u.range);
            break;
        case FUZZ_PUT:
            req->op.type = KV_OP_PUT;
            rc = ej_decode_put(&d, &req->op.u.put);
            break;
        case FUZZ_DELETE:
            req->op.type = KV_OP_DELETE;
            rc = ej_decode_delete(&d, &req->op.u.del);
            break;
        case FUZZ_TXN:
            req->op.type = KV_OP_TXN;
            req->op.u.txn = calloc(1, sizeof *req->op.u.txn);
            rc = req->op.u.txn ? ej_decode_txn(&d, req->op.u.txn) : -1;
            if (rc == 0)
                (void)ej_check_txn(&d, req->op.u.txn, 128);
            break;
        default:
            req->kind = KV_REQ_COMPACT;
            rc = ej_decode_compact(&d, &req->compact);
            break;
        }
    }
    if (rc == 0) {
        (void)ej_validate(&d, req, 128);
        if (FUZZ_KV_OP != FUZZ_RANGE)
            (void)ej_raft_request_size(req);
    } else if (d.msg[0] == 0 && FUZZ_KV_OP != FUZZ_TXN) {
        /* every refusal is answered with a message (a txn's calloc aside) */
        abort();
    }
    ej_decoder_done(&d);
    kv_request_free(req);
    return 0;
}
