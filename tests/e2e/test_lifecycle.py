"""Process life: SIGTERM exits 0 after finishing requests in flight; a
restart (after SIGTERM or kill -9) keeps data, revision and compaction
point; many concurrent writers get consecutive revisions with no holes."""
import base64
import os
import http.client
import json
import signal
import subprocess
import socket
import threading
import time

import pytest

from kvtest import b64, normalise, mktemp
from kvtest.rawhttp import request_head, read_response


@pytest.mark.timeout(60)
def test_sigterm_exits_zero(kvgate):
    c = kvgate.client()
    c.put("a", "1")
    t = time.monotonic()
    rc = kvgate.stop(timeout=15)
    assert rc == 0, "exit status %r after SIGTERM; stderr: %s" % (rc, kvgate.stderr()[-1000:])
    assert time.monotonic() - t < 12
    kvgate.start()
    assert kvgate.client().range("a")["kvs"][0]["value"] == b64("1")


@pytest.mark.timeout(60)
def test_sigterm_finishes_a_request_in_flight(kvgate):
    """The request's headers and part of its body are read before SIGTERM;
    the rest arrives after it.  The put must be answered 200, be durable,
    and the exit status must be 0."""
    c = kvgate.client()
    c.put("before", "x")
    body = json.dumps({"key": b64("inflight"), "value": b64("v" * 1000)}).encode()
    s = socket.create_connection(("127.0.0.1", kvgate.port), timeout=10)
    try:
        s.sendall(request_head("POST", "/v3/kv/put", len(body)) + body[:20])
        time.sleep(0.5)   # the server has read the headers and waits for the body
        kvgate.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert kvgate.running(), "kvgate exited with a request in flight"
        s.sendall(body[20:])
        status, _, rbody = read_response(s)
    finally:
        s.close()
    assert status == 200, (status, rbody)
    rev = json.loads(rbody)["header"]["revision"]
    assert rev == "3"
    kvgate.proc.wait(15)
    assert kvgate.proc.returncode == 0, kvgate.stderr()[-1000:]
    kvgate.stop()
    kvgate.start()
    kv = kvgate.client().range("inflight")["kvs"][0]
    assert kv["mod_revision"] == rev and kv["value"] == b64("v" * 1000)


def _put_loop(port, prefix, out_path, stop):
    """Writer process: puts distinct keys on one keep-alive connection until
    stop is set or the server goes away; one line "key rev" per 200, one
    line "! status body" for any other answer.  A process, not a thread:
    several of them load kvgate far more than threads under one GIL."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    with open(out_path, "w") as out:
        while not stop.is_set():
            key = "%s-%05d" % (prefix, i)
            i += 1
            try:
                conn.request("POST", "/v3/kv/put", json.dumps({"key": b64(key), "value": b64(key)}),
                             {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                return
            if r.status == 200:
                out.write("%s %s\n" % (key, json.loads(data)["header"]["revision"]))
                out.flush()
            else:
                if r.status != 503:  # 503 UNAVAILABLE: shutting down
                    out.write("! %d %r\n" % (r.status, data[:200]))
                return


@pytest.mark.timeout(120)
@pytest.mark.parametrize("disk", [False, True], ids=["tmpfs", "disk"])
def test_sigterm_under_load_keeps_every_acknowledged_write(kvgate_factory, disk):
    """12 writer processes put distinct keys as fast as they can; SIGTERM in
    the middle; 3 rounds on the same data dir, while a second kvgate is
    kept busy on the same cores.  Exit 0 every time (seen:
    MHD_stop_daemon() aborting with suspended connections, exit -6); after
    each restart every acknowledged put is there with its revision, and the
    revisions 2..current are exactly the keys present (no holes, no
    half-applied requests).  On disk, fsync is slow, so requests wait for
    their commit (suspended connections) when SIGTERM comes."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    kvgate = kvgate_factory(data_dir=os.path.join(mktemp("kvtest-disk-", disk=True), "data") if disk else None)
    outdir = mktemp("kvtest-acks-")
    # a second, busy kvgate on the same 2 cores: the shutdown race needs
    # kvgate's threads to be preempted at the wrong moment
    noise = kvgate_factory()
    noise_stop = ctx.Event()
    noisers = [ctx.Process(target=_put_loop, args=(noise.port, "n%d" % w, os.devnull, noise_stop)) for w in range(4)]
    for p in noisers:
        p.start()
    try:
        sigterm_rounds(ctx, kvgate, outdir)
    finally:
        noise_stop.set()
        for p in noisers:
            p.join(20)
            if p.is_alive():
                p.kill()
                p.join(5)


def sigterm_rounds(ctx, kvgate, outdir):
    acked = {}
    for rnd in range(3):
        stop = ctx.Event()
        procs = [ctx.Process(target=_put_loop, args=(kvgate.port, "r%d/w%d" % (rnd, w),
                                                      os.path.join(outdir, "r%d-w%d" % (rnd, w)), stop))
                 for w in range(12)]
        for p in procs:
            p.start()
        try:
            time.sleep(0.8)
            kvgate.proc.send_signal(signal.SIGTERM)
            try:
                kvgate.proc.wait(20)
            except subprocess.TimeoutExpired:
                pytest.fail("round %d: no exit within 20 s of SIGTERM" % rnd)
        finally:
            stop.set()
            for p in procs:
                p.join(20)
                if p.is_alive():
                    p.kill()
                    p.join(5)
        n = 0
        for w in range(12):
            with open(os.path.join(outdir, "r%d-w%d" % (rnd, w))) as f:
                for line in f:
                    assert not line.startswith("!"), "answer other than 200/503 during shutdown: %s" % line
                    key, rev = line.split()
                    acked[key] = int(rev)
                    n += 1
        assert n > 20, "too few writes before SIGTERM (%d) to test anything" % n
        assert kvgate.proc.returncode == 0, "round %d: exit %s after SIGTERM under load: %s" % (
            rnd, kvgate.proc.returncode, kvgate.stderr()[-1000:])
        kvgate.stop()
        kvgate.start()
        c = kvgate.client()
        kvs = c.range("\0", "\0")
        present = {base64.b64decode(kv["key"]).decode(): kv for kv in kvs.get("kvs", [])}
        for key, rev in acked.items():
            assert key in present, "acknowledged put %s (rev %d) lost" % (key, rev)
            assert int(present[key]["mod_revision"]) == rev, (key, rev, present[key])
        cur = int(kvs["header"]["revision"])
        revs = sorted(int(kv["mod_revision"]) for kv in present.values())
        assert revs == list(range(2, cur + 1)), "revisions are not 2..%d without holes" % cur
        for key, kv in present.items():
            assert kv["value"] == b64(key), "half-written put %s" % key


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_restart_keeps_data_revision_and_compaction(kvgate, how):
    c = kvgate.client()
    for i in range(10):
        c.put("k%d" % (i % 4), "v%d" % i)                     # revs 2..11
    c.delete("k1")                                            # 12
    c.txn({"success": [{"request_put": {"key": b64("t1"), "value": b64("x")}},
                       {"request_delete_range": {"key": b64("k2")}}]})  # 13
    c.put("k0", "last", lease="0")                            # 14
    c.compact(8, physical=True)
    cur = c.revision()
    assert cur == 14
    before = {r: normalise(c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": r}).body)
              for r in range(0, cur + 1)}
    assert "compacted" in before[7]["error"]
    ids = c.range("a")["header"]
    port = kvgate.port
    if how == "sigterm":
        assert kvgate.stop() == 0
    else:
        kvgate.kill()
    kvgate.start()
    assert kvgate.port == port
    c = kvgate.client()
    after = {r: normalise(c.post("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "revision": r}).body)
             for r in range(0, cur + 1)}
    for r in range(0, cur + 1):
        assert after[r] == before[r], "range at revision %d changed across the restart" % r
    r = c.post("/v3/kv/compaction", {"revision": 8})
    assert r.status == 400 and "compacted" in r.json()["error"], "compaction point lost: %r" % r
    # README: cluster_id and member_id are fixed per data dir, raft_term is 2
    ids2 = c.range("a")["header"]
    for f in ("cluster_id", "member_id", "raft_term"):
        assert ids2.get(f) == ids.get(f), (f, ids, ids2)
    assert ids2.get("raft_term") == "2", ids2
    assert c.put("new", "1")["header"]["revision"] == str(cur + 1)


@pytest.mark.timeout(90)
def test_concurrent_writers_get_consecutive_revisions(kvgate):
    """16 threads x 30 requests (puts, and every 5th a txn putting 2 keys):
    every acknowledged revision is distinct, together they are exactly
    2..1+N, and each key carries its acknowledged revision."""
    acked = []   # (rev, [keys])
    lock = threading.Lock()
    errors = []

    def worker(t):
        c = kvgate.client()
        try:
            for i in range(30):
                k = "c%02d-%03d" % (t, i)
                if i % 5 == 4:
                    r = c.txn({"success": [{"request_put": {"key": b64(k + "a"), "value": b64(k)}},
                                           {"request_put": {"key": b64(k + "b"), "value": b64(k)}}]})
                    keys = [k + "a", k + "b"]
                else:
                    r = c.put(k, k)
                    keys = [k]
                with lock:
                    acked.append((int(r["header"]["revision"]), keys))
        except Exception as e:  # noqa
            errors.append(repr(e))
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:3]
    revs = sorted(r for r, _ in acked)
    n = len(acked)
    assert n == 16 * 30
    assert revs == list(range(2, 2 + n)), "holes or duplicates in the acknowledged revisions"
    c = kvgate.client()
    assert c.revision() == 1 + n
    got = {kv["key"]: kv for kv in c.range("\0", "\0")["kvs"]}
    for rev, keys in acked:
        for k in keys:
            kv = got[b64(k)]
            assert int(kv["mod_revision"]) == rev and int(kv["create_revision"]) == rev, (k, rev, kv)


@pytest.mark.timeout(60)
def test_many_idle_connections(kvgate):
    """1500 idle keep-alive connections (more than select() can watch) do
    not stop kvgate from serving new ones, nor the last of them."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1700
    if soft < want:
        if hard < want:
            pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks = []
    try:
        for _ in range(1500):
            socks.append(socket.create_connection(("127.0.0.1", kvgate.port), timeout=5))
        c = kvgate.client()
        assert c.put("a", "1")["header"]["revision"] == "2"
        body = b'{"key":"YQ=="}'
        socks[-1].sendall(request_head("POST", "/v3/kv/range", len(body)) + body)
        status, _, raw = read_response(socks[-1], 10)
        assert status == 200 and json.loads(raw)["kvs"][0]["value"] == b64("1"), (status, raw)
    finally:
        for s in socks:
            s.close()
    assert kvgate.running()
    assert kvgate.client().put("b", "2")["header"]["revision"] == "3"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_restart_keeps_leases(kvgate, how):
    c = kvgate.client()
    r = c.post("/v3/lease/grant", {"ID": 77, "TTL": 600})
    assert r.status == 200 and r.json()["ID"] == "77", r
    c.put("a", "1", lease="77")
    c.put("b", "2", lease=77)
    c.put("c", "3")
    if how == "sigterm":
        assert kvgate.stop() == 0
    else:
        kvgate.kill()
    kvgate.start()
    c = kvgate.client()
    kvs = c.range("\0", "\0")["kvs"]
    assert [(kv["key"], kv.get("lease")) for kv in kvs] == [(b64("a"), "77"), (b64("b"), "77"), (b64("c"), None)]
    r = c.post("/v3/lease/timetolive", {"ID": 77, "keys": True})
    assert r.status == 200, r
    body = r.json()
    assert sorted(body.get("keys", [])) == [b64("a"), b64("b")], body
    assert 0 < int(body["TTL"]) <= 600 and body["grantedTTL"] == "600", body
    rev = c.revision()
    r = c.post("/v3/lease/revoke", {"ID": 77})
    assert r.status == 200, r
    assert c.revision() == rev + 1
    assert [kv["key"] for kv in c.range("\0", "\0")["kvs"]] == [b64("c")]
    r = c.post("/v3/lease/grant", {"ID": 77, "TTL": 600})
    assert r.status == 200, "a revoked lease id is free again: %r" % r
