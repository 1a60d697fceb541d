"""Crash test: kill -9 under concurrent writes, restart, check the history.

Writers (one keep-alive connection per thread) do puts of fresh keys, txns
putting two fresh keys, deletes of keys they know exist, and writes that
change nothing (a delete of an empty range, a txn whose compare fails):
those must answer without a new revision.  Per connection, answered
revisions never go back.  Every
operation is either acknowledged (200 with its revision) or pending (the
connection died: it may or may not have been applied).  After each kill -9
and restart on the same data dir and port:

  - every acknowledged put is there with exactly its revision (current
    state: create = mod = acked revision, version 1, right value; a key
    deleted since is read at its put revision), every acknowledged delete
    removed the key exactly at its revision;
  - pending writes are all-or-nothing: a pending txn's two keys are both
    present at one revision or both absent; a pending put is present with
    its value or absent; once absent, it stays absent in later rounds;
  - no key exists that nobody wrote, and no value is foreign;
  - the revisions 2..current are exactly the revisions of the applied
    writes: no hole, no revision used twice (no compaction is done, so all
    history is readable);
  - the current revision is >= every acknowledged revision.

Note: the data dir lives on tmpfs when available; kill -9 is a process
crash, so the page cache survives and this checks kvgate's own commit
protocol, not the disk's.
"""
import base64
import http.client
import json
import os
import random
import threading
import time

import pytest

from kvtest import mktemp

ROUNDS = 3
THREADS = 12


def b64(s):
    return base64.b64encode(s.encode()).decode()


def value_for(key, big):
    """The value written for key: short, or ~40 KiB (big batches, torn writes)."""
    v = "v:" + key
    return v * (40000 // len(v)) if big else v


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []        # dicts: kind, keys, value(s), status: acked|pending|applied|lost, rev
        self.live = {}       # thread -> list of keys known present and not being deleted

    def add(self, op):
        with self.lock:
            self.ops.append(op)


def writer(port, tid, rnd, hist, stop, errors, big=False):
    rng = random.Random(rnd * 1000 + tid)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    last_rev = 0
    mine = hist.live.setdefault(tid, [])
    try:
        while not stop.is_set():
            i += 1
            base = "r%d/t%02d/%05d" % (rnd, tid, i)
            roll = rng.random()
            if roll < 0.05:
                # a write that changes nothing: no revision
                nx = "nx/" + base
                op = {"kind": "noop", "keys": [nx], "status": "pending"}
                if rng.random() < 0.5:
                    path, body = "/v3/kv/deleterange", {"key": b64(nx), "range_end": b64(nx + "/z")}
                else:
                    path, body = "/v3/kv/txn", {
                        "compare": [{"key": b64(nx), "target": "VERSION", "result": "GREATER", "version": "0"}],
                        "success": [{"request_put": {"key": b64(nx), "value": b64("never")}}]}
            elif roll < 0.18 and len(mine) > 3:
                key = mine.pop(rng.randrange(len(mine)))
                op = {"kind": "delete", "keys": [key], "status": "pending"}
                path, body = "/v3/kv/deleterange", {"key": b64(key), "prev_kv": True}
            elif roll < 0.30:
                keys = [base + "/a", base + "/b"]
                op = {"kind": "txn", "keys": keys, "status": "pending"}
                path, body = "/v3/kv/txn", {"success": [
                    {"request_put": {"key": b64(k), "value": b64(value_for(k, big))}} for k in keys]}
            else:
                op = {"kind": "put", "keys": [base], "status": "pending"}
                path, body = "/v3/kv/put", {"key": b64(base), "value": b64(value_for(base, big))}
            hist.add(op)
            try:
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                return  # killed: op stays pending
            if r.status != 200:
                errors.append("%s %s -> %d %r" % (path, body, r.status, data[:200]))
                return
            ans = json.loads(data)
            op["rev"] = int(ans["header"]["revision"])
            op["status"] = "acked"
            # per connection, revisions never go back; a write gets a new one
            if op["rev"] < last_rev or (op["kind"] != "noop" and op["rev"] == last_rev):
                errors.append("thread %d: %s got revision %d after %d" % (tid, op["kind"], op["rev"], last_rev))
                return
            last_rev = op["rev"]
            if op["kind"] == "noop":
                if ans.get("deleted", "0") != "0" or ans.get("succeeded") or ans.get("responses"):
                    errors.append("no-op %s answered %r" % (op["keys"][0], ans))
                    return
            elif op["kind"] == "delete":
                if ans.get("deleted") != "1":
                    errors.append("delete of live key %s answered %r" % (op["keys"][0], ans))
                    return
            else:
                mine.extend(op["keys"])
    finally:
        conn.close()


def post(c, path, body):
    r = c.post(path, body)
    assert r.status == 200, (path, body, r)
    return r.json()


def range_key(c, key, rev=0):
    body = {"key": b64(key)}
    if rev:
        body["revision"] = rev
    kvs = post(c, "/v3/kv/range", body).get("kvs", [])
    return kvs[0] if kvs else None


def verify(k, hist, big=False):
    c = k.client(timeout=30)
    everything = post(c, "/v3/kv/range", {"key": "AA==", "range_end": "AA=="})
    cur = int(everything["header"]["revision"])
    present = {base64.b64decode(kv["key"]).decode(): kv for kv in everything.get("kvs", [])}
    problems = []
    owner = {}            # revision -> description of the op that used it
    written = set()       # every key some op tried to write

    def claim(rev, what):
        if rev in owner:
            problems.append("revision %d used twice: %s and %s" % (rev, owner[rev], what))
        owner[rev] = what

    max_acked = max([op["rev"] for op in hist.ops if op["status"] == "acked"] or [1])
    if cur < max_acked:
        problems.append("current revision %d < acknowledged revision %d" % (cur, max_acked))

    deleted_at = {}  # key -> delete revision (acked or found)
    for op in hist.ops:
        if op["kind"] == "noop" and op["status"] == "acked" and op["rev"] > cur:
            problems.append("no-op answered with revision %d > current %d" % (op["rev"], cur))
        if op["kind"] != "delete":
            continue
        key = op["keys"][0]
        if op["status"] == "acked":
            deleted_at[key] = op["rev"]
        elif op["status"] == "pending":
            if key in present:
                op["status"] = "lost"
            else:
                # applied: find the revision where it disappeared (binary search)
                put_rev = None
                for o in hist.ops:
                    if o["kind"] in ("put", "txn") and key in o["keys"] and o["status"] in ("acked", "applied"):
                        put_rev = o["rev"]
                lo, hi = put_rev, cur  # present at lo, absent at hi
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if range_key(c, key, mid):
                        lo = mid
                    else:
                        hi = mid
                op["status"], op["rev"] = "applied", hi
                deleted_at[key] = hi
        elif op["status"] == "applied":
            deleted_at[key] = op["rev"]
        if op["status"] in ("acked", "applied"):
            claim(op["rev"], "delete %s" % key)
            if range_key(c, key, op["rev"]) is not None:
                problems.append("deleted key %s still there at its delete revision %d" % (key, op["rev"]))
            if range_key(c, key, op["rev"] - 1) is None:
                problems.append("deleted key %s absent just before its delete revision %d" % (key, op["rev"]))
        elif op["status"] == "lost" and key not in present:
            problems.append("delete of %s was not applied but the key is gone" % key)

    sample = []
    for op in hist.ops:
        if op["kind"] in ("delete", "noop"):
            continue
        written.update(op["keys"])
        found = [present.get(key) for key in op["keys"]]
        gone = [key for key in op["keys"] if key in deleted_at]
        if op["status"] == "pending":
            if all(f is None for f in found) and not gone:
                op["status"] = "lost"
                continue
            if any(f is None for f in found) and not gone:
                problems.append("pending %s half applied: %r" % (op["kind"], list(zip(op["keys"], found))))
                continue
            op["status"], op["rev"] = "applied", int(found[0]["mod_revision"])
        if op["status"] == "lost":
            for key, f in zip(op["keys"], found):
                if f is not None:
                    problems.append("%s %s came back after being absent" % (op["kind"], key))
            continue
        rev = op["rev"]
        claim(rev, "%s %s" % (op["kind"], op["keys"]))
        for key, f in zip(op["keys"], found):
            if key in deleted_at:
                if f is not None:
                    problems.append("%s present although deleted at %d" % (key, deleted_at[key]))
                f = range_key(c, key, rev)
                if f is None:
                    problems.append("%s (put at %d, deleted at %d) not readable at %d" % (key, rev, deleted_at[key], rev))
                    continue
            elif f is None:
                problems.append("acknowledged %s %s (revision %d) lost" % (op["kind"], key, rev))
                continue
            want = (str(rev), str(rev), "1", b64(value_for(key, big)))
            got = (f["create_revision"], f["mod_revision"], f["version"], f.get("value"))
            if got != want:
                problems.append("%s: want create/mod/version/value %r, got %r" % (key, want, got))
        if op["status"] == "acked" and not gone:
            sample.append(op)

    for key in present:
        if key not in written:
            problems.append("key %r appeared that nobody wrote" % key)
    holes = [r for r in range(2, cur + 1) if r not in owner]
    if holes:
        problems.append("%d revisions in 2..%d account for no write: %r" % (len(holes), cur, holes[:20]))
    beyond = [r for r in owner if r > cur]
    if beyond:
        problems.append("writes at revisions beyond the current %d: %r" % (cur, beyond[:10]))
    # spot-check reads at the acknowledged revision itself
    for op in random.Random(cur).sample(sample, min(100, len(sample))):
        for key in op["keys"]:
            f = range_key(c, key, op["rev"])
            if f is None or int(f["mod_revision"]) != op["rev"]:
                problems.append("range %s at its revision %d -> %r" % (key, op["rev"], f))
    return cur, problems


@pytest.mark.timeout(240)
@pytest.mark.parametrize("disk,big", [(False, False), (True, False), (True, True)],
                         ids=["tmpfs", "disk", "disk-40KiB-values"])
def test_kill9_under_concurrent_writes(kvgate_factory, disk, big):
    """tmpfs: fast commits, many small batches; disk: slow fsync, so the
    committer groups many requests per batch when the kill comes; big
    values make those batches megabytes long."""
    kvgate = kvgate_factory(data_dir=os.path.join(mktemp("kvtest-disk-", disk=True), "data") if disk else None)
    hist = History()
    errors = []
    total_acked = 0
    for rnd in range(ROUNDS):
        stop = threading.Event()
        ts = [threading.Thread(target=writer, args=(kvgate.port, t, rnd, hist, stop, errors, big), daemon=True)
              for t in range(THREADS)]
        for t in ts:
            t.start()
        time.sleep(random.uniform(0.6, 1.4))
        kvgate.kill()
        stop.set()
        for t in ts:
            t.join(15)
        assert not any(t.is_alive() for t in ts), "writers hung"
        assert not errors, errors[:5]
        acked_now = sum(1 for op in hist.ops if op["status"] == "acked")
        assert acked_now > total_acked + 20, "round %d: too few acknowledged writes (%d)" % (rnd, acked_now - total_acked)
        total_acked = acked_now
        kvgate.start()
        cur, problems = verify(kvgate, hist, big)
        assert not problems, "round %d (revision %d): %d problems:\n%s" % (
            rnd, cur, len(problems), "\n".join(problems[:40]))
    # a clean restart at the end changes nothing
    assert kvgate.stop() == 0
    kvgate.start()
    cur2, problems = verify(kvgate, hist, big)
    assert not problems and cur2 == cur, problems[:40]
