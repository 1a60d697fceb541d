"""kill -9 while a compaction is being carried out, and during start-up.

History: 600 keys, each rewritten many times by txns of 120 puts (and some
deletes), so a compaction has tens of thousands of versions to remove.
A compaction at C is acknowledged, then kvgate is killed a few
milliseconds later, in the middle of removing versions.  After the
restart:
  - the compaction is durable: reads below C fail with "compacted", and
    compacting at C again says so too;
  - every read at a revision >= C gives exactly what it gave before;
  - the current revision is unchanged and the store keeps working (a later
    physical compaction completes, reads at and above it unchanged).
Three rounds on the same data dir, each with more history and a later C.
"""
import random
import time

import pytest

from kvtest import b64, normalise


def snapshot(c, rev):
    r = c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": rev})
    assert r.status == 200, (rev, r)
    body = normalise(r.json())
    body.pop("header")
    return body


def is_compacted(r):
    return r.status == 400 and r.is_json and r.body.get("error") == \
        "etcdserver: mvcc: required revision has been compacted"


@pytest.mark.timeout(180)
def test_kill9_during_compaction(kvgate):
    rnd = random.Random(11)
    c = kvgate.client(timeout=60)
    compacted = 0
    for round_ in range(3):
        for b in range(60):
            ops = [{"request_put": {"key": b64("k%03d" % ((b * 120 + i) % 600)),
                                    "value": b64("r%d-b%d-i%d" % (round_, b, i))}} for i in range(120)]
            c.txn({"success": ops})
            if b % 10 == 9:
                c.delete("k5", "k6")  # tombstones too
        cur = c.revision()
        C = rnd.randrange(cur - 20, cur - 5)
        points = sorted(set([C, C + 1, cur] + rnd.sample(range(C, cur + 1), 4)))
        before = {r: snapshot(c, r) for r in points}
        r = c.post("/v3/kv/compaction", {"revision": C})
        assert r.status == 200, r
        time.sleep(rnd.uniform(0.0, 0.01))
        kvgate.kill()
        kvgate.start()
        c = kvgate.client(timeout=60)
        assert c.revision() == cur, "revision changed across the crash"
        r = c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": C - 1})
        assert is_compacted(r), "round %d: acknowledged compaction at %d lost: %r" % (round_, C, r)
        assert is_compacted(c.post("/v3/kv/compaction", {"revision": C}))
        for rev in points:
            assert snapshot(c, rev) == before[rev], \
                "round %d: range at %d changed by a compaction at %d interrupted by kill -9" % (round_, rev, C)
        if compacted:
            assert is_compacted(c.post("/v3/kv/range", {"key": b64("k001"), "revision": compacted}))
        compacted = C
    # the store still compacts and serves
    C2 = c.revision() - 2
    keep = {r: snapshot(c, r) for r in (C2, C2 + 1, C2 + 2)}
    r = c.post("/v3/kv/compaction", {"revision": C2, "physical": True})
    assert r.status == 200, r
    for rev, snap in keep.items():
        assert snapshot(c, rev) == snap
    assert c.put("after", "1")["header"]["revision"] == str(C2 + 3)


@pytest.mark.timeout(120)
def test_kill9_during_startup(kvgate):
    """kill -9 at random moments while kvgate opens and recovers its store
    (8 times), then a normal start: same revision, same data at every
    revision kept, same compaction point."""
    rnd = random.Random(5)
    c = kvgate.client(timeout=60)
    for b in range(40):
        c.txn({"success": [{"request_put": {"key": b64("s%03d" % ((b * 50 + i) % 300)), "value": b64("b%d-%d" % (b, i))}}
                           for i in range(50)]})
        if b % 8 == 7:
            c.delete("s1", "s2")
    cur = c.revision()
    C = cur - 10
    assert c.post("/v3/kv/compaction", {"revision": C, "physical": True}).status == 200
    points = [C, C + 3, cur]
    before = {r: snapshot(c, r) for r in points}
    assert kvgate.stop() == 0
    for _ in range(8):
        kvgate.spawn()
        time.sleep(rnd.uniform(0.0, 0.15))
        kvgate.kill()
    kvgate.start()
    c = kvgate.client(timeout=60)
    assert c.revision() == cur
    for rev in points:
        assert snapshot(c, rev) == before[rev], "range at %d changed" % rev
    assert is_compacted(c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": C - 1}))
    assert c.put("x", "1")["header"]["revision"] == str(cur + 1)
