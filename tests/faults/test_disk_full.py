"""A full disk: writes fail cleanly, nothing is half-applied, the server
stays up and recovers when space returns.

The data dir lives on a small tmpfs the test mounts itself (8 MiB; needs
root and a kernel that lets us mount, both true in CI and in the dev
sandbox; otherwise the test skips, saying so, and
test_injected_write_failures below covers the same ground).  The file system is always unmounted at teardown.

  1. big values (256 KiB) until a write fails: 507, gRPC code 8, etcd's
     "database space exceeded" text; the server is still up;
  2. the revision is unchanged, every acknowledged key reads back, a txn,
     a delete and a lease grant also fail cleanly (no revision used);
  3. the file system grows (remount): within a few seconds writes work
     again and the next one gets exactly the next revision (RocksDB's
     SstFileManager clears its "hard error" only once the free space is
     at least the write buffer size, 64 MiB: hence the size after the
     remount);
  4. after a restart everything acknowledged is there, nothing else.

test_injected_write_failures is the same without mounting (any machine):
KVGATE_TEST_FAIL_WRITES="AFTER,COUNT,nospace|io" makes store/backend.c fail
batch writes AFTER+1..AFTER+COUNT (507 and 500 respectively).

Before the fix in store/backend.c this crashed kvgate: RocksDB 7.8 (Debian,
built with assertions) aborts on the info-LOG line written after a failed
LOG append.
"""
import os
import subprocess
import time

import pytest

from kvtest import b64, mktemp

BIG = 256 * 1024
SMALL_FS = "8m"
BIG_FS = "256m"


def _mount(path, size):
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path],
                          capture_output=True, text=True, timeout=20)


@pytest.fixture
def small_fs():
    d = mktemp("kvtest-diskfull-", disk=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (test_injected_write_failures "
                    "covers the same without a mount)")
    r = _mount(d, SMALL_FS)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (%s); test_injected_write_failures covers "
                    "the same without a mount" % r.stderr.strip())
    try:
        yield d
    finally:
        for _ in range(20):
            if subprocess.run(["umount", d], capture_output=True, timeout=20).returncode == 0:
                break
            time.sleep(0.25)  # a server still closing files
        else:
            subprocess.run(["umount", "-l", d], capture_output=True, timeout=20)


def is_nospace(r):
    if r.status != 507 or not r.is_json:
        return False
    b = r.body
    return b.get("code") == 8 and b.get("error") == "etcdserver: mvcc: database space exceeded"


def check_state(c, acked, rev):
    """Exactly the acknowledged keys, each at its revision, at revision rev."""
    r = c.post("/v3/kv/range", {"key": b64("\0"), "range_end": b64("\0"), "keys_only": True})
    assert r.status == 200, r
    body = r.json()
    assert int(body["header"]["revision"]) == rev
    got = {kv["key"]: int(kv["mod_revision"]) for kv in body.get("kvs", [])}
    assert got == {b64(k): v for k, v in acked.items()}
    # values of a few
    for k in list(acked)[:3] + list(acked)[-3:]:
        kv = c.range(k)["kvs"][0]
        assert kv["value"] == b64(value_of(k)) and int(kv["mod_revision"]) == acked[k]


def value_of(key):
    return (key + "-") * (BIG // (len(key) + 1)) if key.startswith("big") else "v:" + key


@pytest.mark.timeout(120)
def test_disk_full_fails_cleanly_and_recovers(small_fs, kvgate_factory):
    # small_fs first: set up before, torn down (unmounted) after the server
    k = kvgate_factory(data_dir=os.path.join(small_fs, "data"))
    c = k.client(timeout=30)
    acked = {}
    rev = c.revision()
    failed = None
    for i in range(200):
        key = "big%03d" % i
        r = c.post("/v3/kv/put", {"key": b64(key), "value": b64(value_of(key))})
        if r.status != 200:
            failed = r
            break
        rev += 1
        assert int(r.json()["header"]["revision"]) == rev
        acked[key] = rev
    assert failed is not None, "8 MiB file system never filled"
    assert is_nospace(failed), failed
    assert len(acked) >= 5, "the disk filled after %d puts" % len(acked)
    assert k.running(), "kvgate died on a full disk: " + k.stderr()[-2000:]

    # nothing half-applied, no revision used, reads work, other writes fail cleanly
    check_state(c, acked, rev)
    attempts = [
        ("/v3/kv/put", {"key": b64("small"), "value": b64("small")}),
        ("/v3/kv/txn", {"success": [{"request_put": {"key": b64("t1"), "value": b64("t1")}},
                                    {"request_put": {"key": b64("t2"), "value": b64("t2")}}]}),
        ("/v3/kv/deleterange", {"key": b64("big000")}),
    ]
    for path, body in attempts:
        r = c.post(path, body)
        assert r.status >= 500 and is_nospace(r), (path, r)
    assert k.running()
    check_state(c, acked, rev)
    # an empty-range delete and a failing compare write nothing: still fine
    r = c.post("/v3/kv/deleterange", {"key": b64("nothing-here")})
    assert r.status == 200 and r.json().get("deleted", "0") == "0", r
    assert c.revision() == rev

    # space returns
    r = subprocess.run(["mount", "-o", "remount,size=" + BIG_FS, small_fs],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 30
    while True:
        r = c.post("/v3/kv/put", {"key": b64("after"), "value": b64(value_of("after"))})
        if r.status == 200:
            break
        assert is_nospace(r) or r.status == 500, r
        assert time.monotonic() < deadline, "writes did not recover after the disk grew: %r" % r
        time.sleep(0.5)
    rev += 1
    assert int(r.json()["header"]["revision"]) == rev, "a failed write used a revision"
    acked["after"] = rev
    for i in range(5):
        key = "big-after%d" % i
        rev += 1
        assert int(c.put(key, value_of(key))["header"]["revision"]) == rev
        acked[key] = rev
    check_state(c, acked, rev)

    assert k.stop() == 0, k.stderr()[-2000:]
    k.start()
    c = k.client(timeout=30)
    check_state(c, acked, rev)
    assert int(c.put("final", "x")["header"]["revision"]) == rev + 1
    assert k.stop() == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind,status,message", [
    ("nospace", 507, "etcdserver: mvcc: database space exceeded"),
    ("io", 500, "etcdserver: storage I/O error")])
def test_injected_write_failures(kvgate_factory, monkeypatch, kind, status, message):
    """The same without a small file system (any machine): the storage
    boundary fails batch writes 21..23 (KVGATE_TEST_FAIL_WRITES, read by
    store/backend.c).  Each failing request answers a clear 5xx, uses no
    revision and applies nothing; the server stays up; the next write gets
    the next revision; a restart shows exactly the acknowledged writes."""
    monkeypatch.setenv("KVGATE_TEST_FAIL_WRITES", "20,3," + kind)
    k = kvgate_factory()
    monkeypatch.delenv("KVGATE_TEST_FAIL_WRITES")
    c = k.client(timeout=30)
    acked = {}
    rev = c.revision()
    for i in range(40):
        key = "k%02d" % i
        r = c.post("/v3/kv/put", {"key": b64(key), "value": b64(value_of(key))})
        if r.status != 200:
            break
        rev += 1
        acked[key] = rev
    assert r.status == status and r.json()["error"] == message, r
    assert r.json()["code"] == (8 if kind == "nospace" else 13), r
    assert 10 <= len(acked) < 40
    check_state(c, acked, rev)
    for path, body in [
            ("/v3/kv/txn", {"success": [{"request_put": {"key": b64("t1"), "value": b64("t1")}},
                                        {"request_put": {"key": b64("t2"), "value": b64("t2")}}]}),
            ("/v3/kv/deleterange", {"key": b64("k00")})]:
        r = c.post(path, body)
        assert r.status == status and r.json()["error"] == message, (path, r)
        check_state(c, acked, rev)
    assert k.running()
    rev += 1
    assert int(c.put("after", value_of("after"))["header"]["revision"]) == rev
    acked["after"] = rev
    rev += 1
    assert c.delete("k00")["header"]["revision"] == str(rev)
    del acked["k00"]
    check_state(c, acked, rev)
    assert k.stop() == 0
    k.start()
    check_state(k.client(timeout=30), acked, rev)
