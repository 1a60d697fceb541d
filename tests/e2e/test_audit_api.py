"""Audit: etcd 3.4 gateway calls kvgate answers differently, found by
sending the same requests to both (etcd as the judge).

- /v3/lock/* and /v3/election/*: etcd 3.4's gateway serves the v3lock and
  v3election services on the client port (embed/serve.go registers
  v3lockgw and v3electiongw next to the KV gateway); kvgate answers 404
  and README's "Differences" does not list them.
- Watch create_request.fragment: parsed (gateway/watch_json.c) but never
  acted on.
"""
import json
import os
import sys
import time

import pytest

from kvtest import b64
from kvtest.cases import answer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_watch_stream import Stream  # noqa: E402


def run_seq(srv, seq):
    c = srv.client()
    return [answer(c.post(p, body)) for p, body in seq]


# The lease has a fixed ID, so every answer (lock keys are name/<lease hex>,
# revisions) is deterministic.
LOCK_SEQ = [
    ("/v3/lease/grant", {"TTL": 30, "ID": 4660}),
    ("/v3/lock/lock", {"name": b64("my"), "lease": "4660"}),
    ("/v3/kv/range", {"key": b64("my/"), "range_end": b64("my0"), "keys_only": True}),
    ("/v3/lock/unlock", {"key": b64("my/1234")}),
    ("/v3/lock/lock", {"name": b64("my"), "lease": "999"}),     # no such lease: 500 code 2
    ("/v3/lock/unlock", {}),                                    # 500 code 2 key is not provided
    ("/v3beta/lock/lock", {"name": b64("b"), "lease": "4660"}),
    ("/v3/election/campaign", {"name": b64("e"), "lease": "4660", "value": b64("v")}),
    ("/v3/election/leader", {"name": b64("e")}),
    ("/v3/election/proclaim", {"leader": {"name": b64("e"), "key": b64("e/1234"), "rev": "5",
                                          "lease": "4660"}, "value": b64("w")}),
    ("/v3/election/leader", {"name": b64("e")}),
    ("/v3/election/resign", {"leader": {"name": b64("e"), "key": b64("e/1234"), "rev": "5",
                                        "lease": "4660"}}),
    ("/v3/election/leader", {"name": b64("e")}),               # 500 election: no leader
    ("/v3/election/proclaim", {}),                              # "leader" field must be provided
]


@pytest.mark.timeout(60)
def test_lock_and_election_as_etcd(kvgate, etcd):
    want = run_seq(etcd, LOCK_SEQ)
    # sanity: what etcd answers (so a changed etcd shows up here, not as a kvgate bug)
    assert want[1]["status"] == 200 and want[1]["json"]["key"] == b64("my/1234"), want[1]
    assert want[4]["status"] == 500 and want[4]["json"]["code"] == 2, want[4]
    got = run_seq(kvgate, LOCK_SEQ)
    for (path, body), g, w in zip(LOCK_SEQ, got, want):
        assert g == w, (path, body, g, w)


def big_txn(tag):
    # 12 values of 100 KB: a 1.2 MB request, under --max-request-bytes (1.5 MiB)
    return {"success": [{"request_put": {"key": b64("f%02d" % i), "value": b64(tag * 100000)}}
                        for i in range(12)]}


def fragment_lines(srv):
    """Watch f..g with prev_kv and fragment, then two big txns: the second
    one's response (12 events with prev_kv, about 2.4 MB of protobuf) is over
    etcd's fragment size (max-request-bytes + 512 KiB)."""
    c = srv.client(timeout=30)
    s = Stream(srv.port, "/v3/watch", {"create_request": {"key": b64("f"), "range_end": b64("g"),
                                                          "prev_kv": True, "fragment": True}},
               timeout=30)
    try:
        s.wait_lines(1, 10)
        assert c.post("/v3/kv/txn", big_txn("a")).status == 200
        assert c.post("/v3/kv/txn", big_txn("b")).status == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            evs = [e for l in s.lines() for e in l["result"].get("events", [])]
            if len(evs) >= 24:
                break
            s.quiet(0.3, 2)
        s.quiet(0.5, 5)
        return [l["result"] for l in s.lines()]
    finally:
        s.close()


def shape(results):
    return [(r["header"]["revision"], bool(r.get("fragment")),
             [(e["kv"]["key"], "prev_kv" in e) for e in r.get("events", [])])
            for r in results if not r.get("created")]


@pytest.mark.timeout(120)
def test_watch_fragment_splits_big_responses_as_etcd(kvgate, etcd):
    want = shape(fragment_lines(etcd))
    assert any(f for _, f, _ in want), "etcd did not fragment: %r" % want   # sanity
    got = shape(fragment_lines(kvgate))
    assert got == want


# ---- SSE over POST with several watches: ids overstate the stream -------------
def sse_events(msgs):
    out = []
    for m in msgs:
        if m["event"] != "message":
            continue
        for e in json.loads(m["data"]).get("events", []):
            out.append((e["kv"]["key"], int(e["kv"]["mod_revision"])))
    return out


SSE_TWO_WATCHES = (b'{"create_request":{"key":"YQ==","start_revision":2}}'
                   b'{"create_request":{"key":"Yg==","start_revision":7}}')


@pytest.mark.timeout(60)
def test_sse_post_several_watches_ids_cover_all_watches(kvgate):
    c = kvgate.client()
    for i in range(5):
        c.put("a", str(i))          # revisions 2..6
    for i in range(5):
        c.put("b", str(i))          # revisions 7..11
    with Stream(kvgate.port, "/v3/watch", SSE_TWO_WATCHES,
                headers={"Accept": "text/event-stream"}) as s:
        msgs = s.wait_sse(lambda m: len(sse_events(m)) >= 10, 10)
    # what an EventSource dropped after each message would miss on resume
    seen = []
    for m in msgs:
        seen += sse_events([m])
        if m["id"] is None:
            continue
        rid = int(m["id"])
        missing = [(k, rev) for k, rev in sse_events(msgs) if rev <= rid and (k, rev) not in seen]
        assert not missing, "message %r has id %d but events %r were not sent yet" % (
            m["event"], rid, missing)


# ---- --max-request-bytes on read-only txns -----------------------------------
BIG = b64("k" * 5000)
READONLY_TXNS = [
    {"success": [{"request_range": {"key": BIG}}]},
    {"compare": [{"key": BIG, "target": "VERSION", "version": "0"}]},
    # not read-only (a put in the branch not taken): too large on etcd too
    {"compare": [{"key": b64("a"), "target": "VERSION", "version": "5"}],
     "success": [{"request_put": {"key": b64("a"), "value": b64("1")}}],
     "failure": [{"request_range": {"key": BIG}}, {"request_range": {"key": BIG, "range_end": "AA=="}}]},
]


def test_readonly_txn_is_not_limited_by_max_request_bytes(kvgate_factory, etcd_factory):
    from kvtest import Etcd
    e = Etcd(extra_args=["--max-request-bytes", "4096"])
    try:
        e.start()
        k = kvgate_factory(extra_args=["--max-request-bytes", "4096"])
        want = [answer(e.client().post("/v3/kv/txn", body)) for body in READONLY_TXNS]
        # etcd: read-only (even with a big compare) 200; a put in either branch: raft, 400
        assert [w["status"] for w in want] == [200, 200, 400], want
        for body, w in zip(READONLY_TXNS, want):
            assert answer(k.client().post("/v3/kv/txn", body)) == w, body
    finally:
        e.cleanup()
