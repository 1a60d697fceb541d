"""Consistency under concurrency (needs the real binary, etcd defines the
semantics but no single request shows it):
  - read-your-writes: a range right after an acknowledged put sees it;
  - compaction while writers run keeps every version visible at or after
    the compaction revision (the newest version <= C of each key, unless a
    tombstone), and reads below C fail with "compacted".
"""
import random
import threading

import pytest

from kvtest import b64, normalise


@pytest.mark.timeout(60)
def test_read_your_writes(kvgate):
    errors = []

    def worker(t):
        c = kvgate.client()
        try:
            for i in range(40):
                key = "ryw/%02d" % t
                rev = int(c.put(key, str(i))["header"]["revision"])
                for serializable in (False, True):
                    r = c.range(key, serializable=serializable)
                    kv = r["kvs"][0]
                    if int(r["header"]["revision"]) < rev or kv["value"] != b64(str(i)) \
                            or int(kv["mod_revision"]) != rev:
                        errors.append((key, i, rev, serializable, r))
                        return
        except Exception as e:  # noqa
            errors.append(repr(e))
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(50)
    assert not errors, errors[:3]


def snapshot(c, rev):
    r = c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": rev})
    assert r.status == 200, r
    out = normalise(r.json())
    out.pop("header")  # the current revision moves on; the content at rev must not
    return out


@pytest.mark.timeout(90)
def test_compaction_while_writing_keeps_visible_versions(kvgate):
    c = kvgate.client()
    rnd = random.Random(7)
    # history: 30 keys, puts and deletes
    for i in range(3000):
        k = "k%02d" % rnd.randrange(30)
        if rnd.random() < 0.15:
            c.delete(k)
        else:
            c.put(k, "v%d" % i)
    cur = c.revision()
    points = sorted(rnd.sample(range(cur // 2, cur + 1), 6))
    compact_at = points[0]
    before = {r: snapshot(c, r) for r in points}
    stop = threading.Event()
    errors = []

    def writer(t):
        cc = kvgate.client()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 7 == 0:
                    cc.delete("k%02d" % ((t * 7 + i) % 30))
                else:
                    cc.put("k%02d" % ((t * 11 + i) % 30), "w%d-%d" % (t, i))
            except Exception as e:  # noqa
                errors.append(repr(e))
                return
    ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    try:
        r = c.post("/v3/kv/compaction", {"revision": compact_at, "physical": True}, timeout=60)
        assert r.status == 200, r
        for rev in points:   # while the writers keep going
            assert snapshot(c, rev) == before[rev], "range at %d changed by compaction at %d" % (rev, compact_at)
    finally:
        stop.set()
        for t in ts:
            t.join(20)
    assert not errors, errors[:3]
    for rev in points:
        assert snapshot(c, rev) == before[rev], "range at %d changed by compaction at %d" % (rev, compact_at)
    r = c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": compact_at - 1})
    assert r.status == 400 and "compacted" in r.json()["error"], r
    # single-key reads at the compaction point agree with the snapshot too
    for kv in before[compact_at].get("kvs", []):
        got = c.post("/v3/kv/range", {"key": kv["key"], "revision": compact_at}).json()
        assert normalise(got)["kvs"] == [kv]
    # and a restart does not bring compacted versions back or lose kept ones
    assert kvgate.stop() == 0
    kvgate.start()
    c = kvgate.client()
    for rev in points:
        assert snapshot(c, rev) == before[rev]
    r = c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": compact_at - 1})
    assert r.status == 400 and "compacted" in r.json()["error"], r
