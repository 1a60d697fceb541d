"""The Python etcd3gw client (Debian python3-etcd3gw) against kvgate,
unchanged: KV, transactions it builds (create, replace, locks), leases with
keys, watches, status and members.

etcd3gw's default api_path is /v3alpha/, which etcd 3.4 no longer serves
(404) but kvgate does (as for every endpoint, see README); the same calls
also run with api_path='/v3/' against kvgate and, as the reference for
what the calls return, against a real etcd 3.4.
"""
import threading
import time

import pytest

etcd3gw = pytest.importorskip("etcd3gw")
from etcd3gw.client import Etcd3Client  # noqa: E402
from etcd3gw import exceptions as gwexc  # noqa: E402


@pytest.fixture(params=["kvgate-v3alpha", "kvgate-v3", "etcd-v3"])
def target(request, kvgate_factory):
    if request.param.startswith("etcd"):
        srv = request.getfixturevalue("etcd")
    else:
        srv = kvgate_factory()
    path = "/v3alpha/" if request.param.endswith("v3alpha") else "/v3/"
    c = Etcd3Client(host="127.0.0.1", port=srv.port, api_path=path, timeout=10)
    return request.param, srv, c


@pytest.mark.timeout(60)
def test_kv_calls(target):
    _, _, c = target
    assert c.put("foo", "bar") is True
    assert c.get("foo") == [b"bar"]
    assert c.get("missing") == []
    val, meta = c.get("foo", metadata=True)[0]
    assert val == b"bar" and meta["key"] == b"foo" and meta["version"] == "1"
    for i in range(3):
        c.put("pfx/%d" % i, "v%d" % i)
    c.put("pfy", "other")
    got = c.get_prefix("pfx/")
    assert [v for v, _ in got] == [b"v0", b"v1", b"v2"]
    assert [m["key"] for _, m in got] == [b"pfx/0", b"pfx/1", b"pfx/2"]
    assert [v for v, _ in c.get_prefix("pfx/", sort_order="descend")] == [b"v2", b"v1", b"v0"]
    assert c.delete("foo") is True
    assert c.delete("foo") is False
    assert c.get("foo") == []
    assert c.delete_prefix("pfx/") is True
    assert c.get_prefix("pfx/") == []
    assert c.get("pfy") == [b"other"]
    assert c.create("new", "1") is True
    assert c.create("new", "2") is False
    assert c.get("new") == [b"1"]
    assert c.replace("new", "1", "3") is True
    assert c.replace("new", "1", "4") is False
    assert c.get("new") == [b"3"]
    assert c.transaction({"compare": [], "success": [], "failure": []})["succeeded"] is True


@pytest.mark.timeout(60)
def test_lease_calls(target):
    _, _, c = target
    lease = c.lease(ttl=10)
    assert lease.id > 0
    assert c.put("lk1", "a", lease=lease) is True
    assert c.create("lk2", "b", lease=lease) is True
    assert 8 <= lease.ttl() <= 10
    assert lease.refresh() == 10
    assert sorted(lease.keys()) == [b"lk1", b"lk2"]
    val, meta = c.get("lk1", metadata=True)[0]
    assert int(meta["lease"]) == lease.id
    assert lease.revoke() is True
    assert c.get("lk1") == [] and c.get("lk2") == []
    assert lease.ttl() == -1
    assert lease.keys() == []
    assert lease.refresh() == -1   # gone: keepalive answers without TTL
    with pytest.raises(gwexc.Etcd3Exception):
        lease.revoke()             # 404: requested lease not found


@pytest.mark.timeout(60)
def test_lease_expires_without_refresh(target):
    _, _, c = target
    short = c.lease(ttl=2)
    kept = c.lease(ttl=2)
    c.put("exp/short", "1", lease=short)
    c.put("exp/kept", "1", lease=kept)
    t0 = time.monotonic()
    while c.get("exp/short") and time.monotonic() - t0 < 8:
        kept.refresh()
        time.sleep(0.2)
    assert c.get("exp/short") == []
    assert 1.9 <= time.monotonic() - t0 <= 4.5
    assert c.get("exp/kept") == [b"1"]
    assert short.ttl() == -1
    kept.revoke()


@pytest.mark.timeout(60)
def test_locks(target):
    _, _, c = target
    a = c.lock("res", ttl=10)
    b = c.lock("res", ttl=10)
    assert a.acquire() is True
    assert a.is_acquired()
    assert b.acquire() is False
    assert not b.is_acquired()
    assert a.refresh() == 10
    assert a.release() is True
    assert b.acquire() is True
    assert b.release() is True
    with c.lock("ctx", ttl=10) as lk:
        assert lk.is_acquired()
    assert not lk.is_acquired()
    # a lock whose holder dies goes with its lease
    dead = c.lock("dead", ttl=2)
    assert dead.acquire() is True
    waiter = c.lock("dead", ttl=10)
    t0 = time.monotonic()
    while not waiter.acquire() and time.monotonic() - t0 < 8:
        time.sleep(0.2)
    assert waiter.is_acquired()
    waiter.release()


def _later(fn, delay=0.3):
    t = threading.Timer(delay, fn)
    t.start()
    return t


@pytest.mark.timeout(60)
def test_watch_calls(target):
    _, _, c = target
    events, cancel = c.watch("wk")
    _later(lambda: (c.put("wk", "1"), c.put("wk", "2"), c.delete("wk")))
    got = [next(events) for _ in range(3)]
    cancel()
    assert [e["kv"].get("value") for e in got[:2]] == [b"1", b"2"]
    assert got[2].get("type") == "DELETE" and got[2]["kv"]["key"] == b"wk"

    events, cancel = c.watch_prefix("wp/")
    _later(lambda: (c.put("wp/a", "x"), c.put("wq", "no"), c.put("wp/b", "y")))
    got = [next(events) for _ in range(2)]
    cancel()
    assert [e["kv"]["key"] for e in got] == [b"wp/a", b"wp/b"]

    _later(lambda: c.put("once", "v"))
    ev = c.watch_once("once", timeout=5)
    assert ev["kv"]["value"] == b"v"
    _later(lambda: c.put("po/x", "v"))
    ev = c.watch_prefix_once("po/", timeout=5)
    assert ev["kv"]["key"] == b"po/x"
    with pytest.raises(gwexc.WatchTimedOut):
        c.watch_once("never", timeout=0.5)


@pytest.mark.timeout(60)
def test_status_and_members(target):
    name, srv, c = target
    st = c.status()
    assert st["version"] == "3.4.23"
    assert st["leader"] == st["header"]["member_id"]
    assert int(st["dbSize"]) > 0 and int(st["raftIndex"]) > 0
    members = c.members()
    assert len(members) == 1
    m = members[0]
    assert m["name"] == "default" and m["ID"] == st["header"]["member_id"]
    assert m["clientURLs"] == [srv.url]


@pytest.mark.timeout(60)
def test_member_flags(kvgate_factory):
    k = kvgate_factory(extra_args=["--name", "node-a", "--advertise-peer-urls",
                                   "http://10.0.0.1:2380,http://10.0.0.2:2380",
                                   "--advertise-client-urls", "http://kv.example:2379"])
    c = Etcd3Client(host="127.0.0.1", port=k.port, timeout=10)
    m = c.members()[0]
    assert m["name"] == "node-a"
    assert m["peerURLs"] == ["http://10.0.0.1:2380", "http://10.0.0.2:2380"]
    assert m["clientURLs"] == ["http://kv.example:2379"]
