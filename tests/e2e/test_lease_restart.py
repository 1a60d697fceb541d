"""Leases across restarts of kvgate: a grant is durable once answered
(kill -9 right after it loses nothing), keys stay attached, the TTL is
refreshed to TTL + 1 s at start (as etcd's leader promotion), and a lease
that is not kept alive after the restart still expires and takes its keys.
"""
import time

import pytest

from kvtest import b64


def ttl_of(c, lid, keys=False):
    body = c.post("/v3/lease/timetolive", {"ID": lid, "keys": keys}).json()
    return int(body["TTL"]), body.get("keys", [])


@pytest.mark.timeout(60)
def test_kill9_keeps_leases_and_attachments(kvgate):
    c = kvgate.client()
    assert c.post("/v3/lease/grant", {"TTL": 30, "ID": 77}).status == 200
    assert c.post("/v3/lease/grant", {"TTL": 3, "ID": 78}).status == 200
    for k in ("a", "b"):
        assert c.post("/v3/kv/put", {"key": b64(k), "value": b64("1"), "lease": 77}).status == 200
    assert c.post("/v3/kv/put", {"key": b64("s"), "value": b64("1"), "lease": 78}).status == 200
    assert c.post("/v3/kv/put", {"key": b64("b"), "value": b64("2")}).status == 200  # detached
    rev = int(c.post("/v3/kv/range", {"key": b64("a")}).json()["header"]["revision"])
    time.sleep(1.2)
    kvgate.kill()
    kvgate.start()
    c = kvgate.client()
    ttl, keys = ttl_of(c, 77, keys=True)
    assert ttl == 30                       # 30 s + 1 s from the start, truncated
    assert keys == [b64("a")]
    ids = sorted(l["ID"] for l in c.post("/v3/lease/leases", {}).json()["leases"])
    assert ids == ["77", "78"]
    # 78 expires about 4 s after the start (3 s + 1 s), deleting "s" in one revision
    t0 = time.monotonic()
    while "kvs" in c.post("/v3/kv/range", {"key": b64("s")}).json():
        assert time.monotonic() - t0 < 8
        time.sleep(0.05)
    assert 3.0 <= time.monotonic() - t0 <= 5.0
    r = c.post("/v3/kv/range", {"key": b64("\0"), "range_end": b64("\0")}).json()
    assert [b64(x) for x in ("a", "b")] == [kv["key"] for kv in r["kvs"]]
    assert int(r["header"]["revision"]) == rev + 1
    assert ttl_of(c, 78) == (-1, [])
    # and a revoke after the restart still finds the attached keys
    assert c.post("/v3/lease/revoke", {"ID": 77}).status == 200
    r = c.post("/v3/kv/range", {"key": b64("\0"), "range_end": b64("\0")}).json()
    assert [kv["key"] for kv in r["kvs"]] == [b64("b")]


@pytest.mark.timeout(60)
def test_status_counts_survive_restart(kvgate):
    c = kvgate.client()
    for i in range(5):
        c.post("/v3/kv/put", {"key": b64("k%d" % i), "value": b64("v")})
    before = int(c.post("/v3/maintenance/status", {}).json()["raftIndex"])
    kvgate.restart()
    after = int(kvgate.client().post("/v3/maintenance/status", {}).json()["raftIndex"])
    assert after == before >= 6
