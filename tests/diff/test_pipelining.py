"""HTTP/1.1 pipelining: 30 requests (puts, ranges, errors, malformed JSON,
a txn, an unknown path) written back to back on one connection before any
answer is read.  The answers must come in order and be the same as etcd's
(status, Content-Type, normalised JSON)."""
import json
import socket

import pytest

from kvtest import Etcd, Kvgate, b64
from kvtest.client import Resp
from kvtest.cases import answer
from kvtest.rawhttp import request_head, Reader


def batch():
    out = []
    for i in range(30):
        m = i % 6
        if m == 0:
            out.append(("/v3/kv/put", json.dumps({"key": b64("k%d" % i), "value": b64("v%d" % i), "prev_kv": True})))
        elif m == 1:
            out.append(("/v3/kv/range", json.dumps({"key": "AA==", "range_end": "AA==", "count_only": True})))
        elif m == 2:
            out.append(("/v3/kv/put", json.dumps({"key": b64("k0"), "value": b64("x"), "prev_kv": True})))
        elif m == 3:
            out.append(("/v3/kv/range", '{"key":"YQ==",'))          # malformed
        elif m == 4:
            out.append(("/v3/kv/txn", json.dumps({"success": [
                {"request_put": {"key": b64("t%d" % i), "value": b64("1")}},
                {"request_range": {"key": b64("k0")}}]})))
        else:
            out.append(("/v3/kv/nope" if i % 12 == 5 else "/v3/kv/deleterange",
                        json.dumps({"key": b64("k%d" % (i - 5)), "prev_kv": True})))
    return out


def run(port, reqs):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        data = b"".join(request_head("POST", p, len(b.encode())) + b.encode() for p, b in reqs)
        s.sendall(data)
        rd = Reader(s, 15)
        return [answer(Resp(*rd.response())) for _ in reqs]
    finally:
        s.close()


@pytest.mark.timeout(60)
def test_pipelined_requests_answered_in_order_as_etcd(kvgate_binary, etcd_binary):
    k, e = Kvgate(binary=kvgate_binary), Etcd()
    try:
        k.start()
        e.start()
        reqs = batch()
        theirs, ours = run(e.port, reqs), run(k.port, reqs)
        diffs = ["request %d: POST %s %s\n  etcd:   %s\n  kvgate: %s" % (i, p, b, a, o)
                 for i, ((p, b), a, o) in enumerate(zip(reqs, theirs, ours)) if a != o]
        assert not diffs, "\n".join(diffs)
        assert {a["status"] for a in theirs} == {200, 400, 404}, theirs
    finally:
        k.cleanup()
        e.cleanup()
