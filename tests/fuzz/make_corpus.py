#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py — (re)writes the seed corpus in
tests/fuzz/corpus/<target>/: every request body of the golden cases
(tests/diff/cases, etcd's own answers), sorted by endpoint, plus hand-made
seeds for the targets those cases do not reach (watch streams, SSE query
strings and Last-Event-ID, base64, int64 text, deep nesting).  Files are
named by content hash, so rerunning it is idempotent.
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from kvtest.cases import load_cases, step_request  # noqa: E402

MAX_SEED = 2048

BY_PATH = {
    "range": "fuzz_range", "put": "fuzz_put", "deleterange": "fuzz_deleterange",
    "txn": "fuzz_txn", "compaction": "fuzz_compaction", "grant": "fuzz_lease",
    "revoke": "fuzz_lease", "timetolive": "fuzz_lease", "keepalive": "fuzz_lease_keepalive",
}

EXTRA = {
    "fuzz_watch": [
        b'{"create_request":{"key":"Zm9v"}}',
        b'{"create_request":{"key":"Zm9v","range_end":"AA==","start_revision":"3",'
        b'"prev_kv":true,"progress_notify":true,"filters":["NOPUT",1],"watch_id":7,"fragment":true}}',
        b'{"cancel_request":{"watch_id":"7"}}',
        b'{"progress_request":{}}',
        b'{"create_request":{"key":"YQ=="}}{"cancel_request":{"watch_id":0}}\n{"progress_request":{}}',
        b'{"create_request":{"key":"YQ=="}} {"create_request":{"key":1}}',
        b'null{}', b'', b'{"createRequest":{"key":"YQ==","rangeEnd":"Yg==","startRevision":1}}',
        b'{"create_request":{"key":"YQ==","filters":"NOPUT"}}',
    ],
    "fuzz_watch_params": [
        b"key=foo", b"key=foo&prefix=true&initial=1&encoding=text",
        b"key=a&range_end=b&start_revision=5&prev_kv=true&filters=noput,nodelete",
        b"key=&from_key&watch_id=-3&progress_notify=0\n 42 ",
        b"key=%00%ff&prefix\n", b"key=x&last_event_id=7\n9", b"key=x&key=y",
        b"key=x&start_revision=99999999999999999999\nabc",
    ],
    "fuzz_sse": [b"\x05 42 \nhello\nworld", b"\x00", b"\x03\r\n\x00data", b"\x0a9223372036854775807x"],
    "fuzz_b64": [b"Zm9v", b"Zm9vYg==", b"Zm9vYmE=", b"Zm9", b"Zm\r\n9v", b"Zm-_", b"===="],
    "fuzz_int64": [b"5", b" 5", b"-9223372036854775808", b"9223372036854775808", b"5.5",
                   b"1e2", b"+5", b"0x5", b"", b'"7"', b'" 7"', b"null", b"true", b"00"],
    "fuzz_gojson": [b'{"a":[1,2.5e3,"x\\u00e9",true,false,null]}', b"[" * 200 + b"]" * 200,
                    b"[" * 11000, b'{"a":1} trailing', b'"\\ud800"', b"\xff"],
}


def put(target, body):
    if len(body) > MAX_SEED:
        return  # the size-limit cases (megabytes) would only slow the fuzzer
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(body).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(body)


def main():
    for _group, case in load_cases():
        for st in case["steps"]:
            method, path, body, _ = step_request(st)
            if body is None:
                continue
            last = path.split("?")[0].rstrip("/").split("/")[-1]
            t = BY_PATH.get(last)
            if t:
                put(t, body)
                put("fuzz_gojson", body)
    for t, bodies in EXTRA.items():
        for b in bodies:
            put(t, b)


if __name__ == "__main__":
    main()
