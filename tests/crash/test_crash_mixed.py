"""kill -9 under mixed load, 3 rounds: puts, txns, deletes, short leases
(and their expiries), compactions, and watchers (JSON and SSE) that
resume after every restart.

Load per round (about 2 s, then kill -9, then restart on the same data dir):
  - 4 writer threads (keep-alive): puts of fresh keys, txns putting two
    fresh keys, deletes of keys they put, lease grants (TTL 2 s) each with
    a fresh key attached (its expiry deletes it: a DELETE at a revision of
    the store's choosing, maybe after a restart);
  - a compactor: every 0.2 s, a compaction at a revision never above the
    history captured so far (below);
  - watchers on the prefix m/: 2 SSE (resume with Last-Event-ID = last id
    seen) and 2 JSON (resume with start_revision = last event + 1) that
    reconnect right after every restart, plus one SSE and one JSON
    "laggard" that leaves 0.3 s into a round and reconnects only two
    rounds later, so that a compaction passes its resume point: then it must get 410 (SSE) or a canceled
    response naming compact_revision (JSON) with compact_revision >= its
    resume point, and starts a new segment at compact_revision + 1.

After every restart, before new load:
  - the history is captured: a JSON watch from the last captured revision
    + 1 up to the current revision must give at least one event for every
    revision (no hole; every revision counts a change);
  - every acknowledged write is in the history exactly at its revision,
    with its events (a txn's two puts in one revision); a pending write is
    there once, whole, or not at all; a pending write absent now stays
    absent; every revision belongs to exactly one write or lease expiry;
    a lease expiry deletes only keys attached to a lease;
  - the current state (a range over m/) is the history replayed.
At the end every watcher's received events, segment by segment, equal the
history over the segment's revisions: each event exactly once, in order.
"""
import base64
import http.client
import json
import os
import random
import sys
import threading
import time

import pytest

from kvtest import b64

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
from test_watch_stream import Stream  # noqa: E402

ROUNDS = 3
WRITERS = 4
PREFIX, PREFIX_END = "m/", "m0"


def unb(s):
    return base64.b64decode(s).decode("utf-8", "replace") if s else ""


def value_for(key):
    return "v:" + key


def ev_tuple(e):
    kv = e["kv"]
    t = e.get("type", "PUT")
    return (t, unb(kv["key"]), unb(kv.get("value")) if t == "PUT" else None, int(kv["mod_revision"]))


class Op:
    __slots__ = ("kind", "keys", "status", "rev", "lease")

    def __init__(self, kind, keys, lease=None):
        self.kind, self.keys, self.status, self.rev, self.lease = kind, keys, "pending", None, lease


def writer(port, tid, rnd, ops, lock, stop, errors):
    rng = random.Random(rnd * 100 + tid)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    mine = []
    i = 0

    def call(path, body):
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    try:
        while not stop.is_set():
            i += 1
            base = "m/r%d/t%d/%05d" % (rnd, tid, i)
            roll = rng.random()
            lease = None
            if roll < 0.08:
                try:
                    st, data = call("/v3/lease/grant", {"TTL": 2})
                except (OSError, http.client.HTTPException):
                    return
                if st != 200:
                    errors.append("lease grant -> %d %r" % (st, data[:200]))
                    return
                lease = json.loads(data)["ID"]
                key = base + "/lease"
                op = Op("put", [key], lease)
                path, body = "/v3/kv/put", {"key": b64(key), "value": b64(value_for(key)), "lease": lease}
            elif roll < 0.22 and len(mine) > 3:
                key = mine.pop(rng.randrange(len(mine)))
                op = Op("delete", [key])
                path, body = "/v3/kv/deleterange", {"key": b64(key)}
            elif roll < 0.35:
                keys = [base + "/a", base + "/b"]
                op = Op("txn", keys)
                path, body = "/v3/kv/txn", {"success": [
                    {"request_put": {"key": b64(k), "value": b64(value_for(k))}} for k in keys]}
            else:
                op = Op("put", [base])
                path, body = "/v3/kv/put", {"key": b64(base), "value": b64(value_for(base))}
            with lock:
                ops.append(op)
            try:
                st, data = call(path, body)
            except (OSError, http.client.HTTPException):
                return  # killed: pending
            if st != 200:
                errors.append("%s -> %d %r" % (path, st, data[:200]))
                return
            ans = json.loads(data)
            if op.kind == "delete" and ans.get("deleted") != "1":
                errors.append("delete of live key %s answered %r" % (op.keys[0], ans))
                return
            op.rev, op.status = int(ans["header"]["revision"]), "acked"
            if op.kind != "delete" and op.lease is None:
                mine.extend(op.keys)
    finally:
        conn.close()


class Watcher(threading.Thread):
    """Reconnects whenever `up` is set and its round is due; records
    segments [(start_rev, [events])] and compactions seen."""

    def __init__(self, name, port_fn, sse, every, up, done, problems, leave_after=None):
        super().__init__(daemon=True, name=name)
        self.sse, self.every, self.port_fn = sse, every, port_fn
        self.leave_after = leave_after  # seconds: then disconnect until a later round
        self.up, self.done, self.problems = up, done, problems
        self.segments = [[2, []]]
        self.next_rev = 2          # the first revision not yet seen
        self.last_id = "1"
        self.compacted = []        # (resume point, compact_revision)
        self.connected_epoch = -1
        self.epoch = 0             # set by the test: connect when epoch % every == 0

    def run(self):
        while not self.done.is_set():
            if not self.up.wait(0.2):
                continue
            ep = self.epoch
            if ep == self.connected_epoch or ep % self.every:
                time.sleep(0.05)
                continue
            self.connected_epoch = ep
            port = self.port_fn()
            try:
                if self.sse:
                    s = Stream(port, "/v3/watch?key=%s&range_end=%s" % (PREFIX, PREFIX_END), None,
                               method="GET", headers={"Last-Event-ID": self.last_id}, timeout=10)
                else:
                    s = Stream(port, "/v3/watch", {"create_request": {
                        "key": b64(PREFIX), "range_end": b64(PREFIX_END),
                        "start_revision": str(self.next_rev)}}, timeout=10)
            except (OSError, AssertionError):
                self.connected_epoch = -1  # the server went away meanwhile
                time.sleep(0.1)
                continue
            with s:
                if self.sse and s.status == 410:
                    body = s.body_json()
                    self.on_compacted(int(body["compact_revision"]))
                    continue
                if s.status != 200:
                    self.problems.append("%s: status %d %r" % (self.name, s.status, s.data[:300]))
                    return
                pos = 0
                t0 = time.monotonic()
                while not s.eof and not self.done.is_set():
                    if self.leave_after and time.monotonic() - t0 > self.leave_after:
                        break
                    s.wait(lambda: s.eof, 0.3)
                    pos = self.consume(s, pos)
                    if pos < 0:
                        break
                if pos >= 0:
                    self.consume(s, pos)

    def on_compacted(self, crev):
        if crev < self.next_rev:
            self.problems.append("%s: compacted at %d answered for resume point %d" % (self.name, crev, self.next_rev))
        self.compacted.append((self.next_rev, crev))
        self.segments.append([crev + 1, []])
        self.next_rev = crev + 1
        self.last_id = str(crev)
        self.connected_epoch = -1  # reconnect now

    def consume(self, s, pos):
        """Handles the messages after index pos; returns the new index (-1: canceled)."""
        msgs = [m for m in s.sse()[0]] if self.sse else s.lines()
        for m in msgs[pos:]:
            pos += 1
            if self.sse:
                if m["event"] != "message":
                    if m["id"] is not None:
                        self.last_id = m["id"]
                    continue
                res = json.loads(m["data"])
            else:
                res = m.get("result", m)
                if "error" in m:
                    self.problems.append("%s: %r" % (self.name, m))
                    return -1
                if res.get("canceled"):
                    crev = int(res.get("compact_revision", "0"))
                    if not crev:
                        self.problems.append("%s: canceled without compaction: %r" % (self.name, res))
                        return -1
                    self.on_compacted(crev)
                    return -1
            for e in res.get("events", []):
                t = ev_tuple(e)
                if t[3] < self.next_rev - 1 or (self.segments[-1][1] and t[3] < self.segments[-1][1][-1][3]):
                    self.problems.append("%s: event %r after revision %d" % (self.name, t, self.next_rev - 1))
                self.segments[-1][1].append(t)
                self.next_rev = max(self.next_rev, t[3] + 1)
            if self.sse and m["id"] is not None:
                self.last_id = m["id"]
        return pos


def capture(port, start, cur, timeout=20.0):
    """Events of revisions start..cur, by revision."""
    hist = {}
    if start > cur:
        return hist
    with Stream(port, "/v3/watch", {"create_request": {"key": b64(PREFIX), "range_end": b64(PREFIX_END),
                                                       "start_revision": str(start)}}, timeout=10) as s:
        def got():
            n = 0
            for l in s.lines():
                for e in l.get("result", {}).get("events", []):
                    n = max(n, int(e["kv"]["mod_revision"]))
            return n >= cur
        assert s.wait(got, timeout), "history capture %d..%d incomplete" % (start, cur)
        for l in s.lines():
            res = l["result"]
            assert not res.get("canceled"), res
            for e in res.get("events", []):
                t = ev_tuple(e)
                if t[3] <= cur:
                    hist.setdefault(t[3], []).append(t[:3])
    return hist


def check_history(c, ops, hist, upto, problems):
    """Attributes every revision 2..upto to one write or lease expiry."""
    holes = [r for r in range(2, upto + 1) if r not in hist]
    if holes:
        problems.append("revisions without events (holes): %r" % holes[:20])
    owner = {}
    by_key = {}  # key -> [(rev, type)]
    for r in sorted(hist):
        for (t, k, v) in hist[r]:
            by_key.setdefault(k, []).append((r, t, v))
    lease_keys = set()
    for op in ops:
        if op.lease is not None:
            lease_keys.update(op.keys)
        if op.kind == "delete":
            k = op.keys[0]
            dels = [r for (r, t, _) in by_key.get(k, []) if t == "DELETE"]
            if op.status == "acked":
                if dels != [op.rev]:
                    problems.append("acked delete of %s at %d; history deletes it at %r" % (k, op.rev, dels))
            elif op.status == "pending":
                op.status, op.rev = ("applied", dels[0]) if dels else ("lost", None)
            elif op.status == "lost" and dels:
                problems.append("delete of %s, absent before, applied later at %r" % (k, dels))
            if op.status in ("acked", "applied"):
                if hist.get(op.rev) != [("DELETE", k, None)]:
                    problems.append("revision %d of delete %s holds %r" % (op.rev, k, hist.get(op.rev)))
                owner.setdefault(op.rev, []).append("delete " + k)
            continue
        puts = [[(r, v) for (r, t, v) in by_key.get(k, []) if t == "PUT"] for k in op.keys]
        revs = set(p[0][0] for p in puts if p)
        if any(len(p) > 1 for p in puts):
            problems.append("fresh key written twice: %r" % list(zip(op.keys, puts)))
        if op.status == "acked":
            want = [("PUT", k, value_for(k)) for k in op.keys]
            if hist.get(op.rev) != want:
                problems.append("acked %s %r at %d: history there is %r" % (op.kind, op.keys, op.rev, hist.get(op.rev)))
        elif op.status == "pending":
            if not revs:
                op.status = "lost"
            elif len(revs) != 1 or not all(puts):
                problems.append("pending %s %r half applied: %r" % (op.kind, op.keys, puts))
            else:
                op.status, op.rev = "applied", revs.pop()
                want = [("PUT", k, value_for(k)) for k in op.keys]
                if hist.get(op.rev) != want:
                    problems.append("applied %s %r at %d: history there is %r" % (op.kind, op.keys, op.rev, hist.get(op.rev)))
        elif op.status == "lost" and revs:
            problems.append("%s %r, absent before, appeared later at %r" % (op.kind, op.keys, revs))
        if op.status in ("acked", "applied"):
            owner.setdefault(op.rev, []).append("%s %r" % (op.kind, op.keys))
    deleted_by_op = set(op.keys[0] for op in ops if op.kind == "delete" and op.status in ("acked", "applied"))
    for r in sorted(hist):
        if r in owner:
            continue
        evs = hist[r]
        if all(t == "DELETE" and k in lease_keys and k not in deleted_by_op for (t, k, _) in evs):
            owner[r] = ["lease expiry"]
        else:
            problems.append("revision %d (%r) belongs to no write" % (r, evs))
    for r, who in owner.items():
        if len(who) > 1:
            problems.append("revision %d used by %r" % (r, who))
    # the current state is the history replayed
    state = {}
    for r in sorted(hist):
        for (t, k, v) in hist[r]:
            if t == "PUT":
                state[k] = (v, r)
            else:
                state.pop(k, None)
    expiries = sum(1 for who in owner.values() if who == ["lease expiry"])
    r = c.post("/v3/kv/range", {"key": b64(PREFIX), "range_end": b64(PREFIX_END)})
    assert r.status == 200, r
    got = {unb(kv["key"]): (unb(kv.get("value")), int(kv["mod_revision"])) for kv in r.json().get("kvs", [])}
    if got != state:
        diff = sorted(set(got.items()) ^ set(state.items()))[:10]
        problems.append("current state differs from the history replayed: %r" % diff)
    return expiries


# Not marked slow: it also runs under ASan+UBSan (tests/run_all.sh step 3),
# where it took 12.6 s on 2 busy cores.
@pytest.mark.timeout(180)
def test_kill9_mixed_load_with_resuming_watchers(kvgate):
    rnd = random.Random(2026)
    c = kvgate.client(timeout=30)
    ops, lock, errors, problems = [], threading.Lock(), [], []
    up, done = threading.Event(), threading.Event()
    watchers = [Watcher("sse%d" % i, lambda: kvgate.port, True, 1, up, done, problems) for i in range(2)] + \
               [Watcher("json%d" % i, lambda: kvgate.port, False, 1, up, done, problems) for i in range(2)] + \
               [Watcher("sse-laggard", lambda: kvgate.port, True, 2, up, done, problems, 0.3),
                Watcher("json-laggard", lambda: kvgate.port, False, 2, up, done, problems, 0.3)]
    for w in watchers:
        w.start()
    hist = {}
    captured = 1
    compacted = [0]
    try:
        for rnd_i in range(ROUNDS + 1):
            # (re)started: capture the history, check it, let the watchers in
            cur = c.revision()
            hist.update(capture(kvgate.port, captured + 1, cur))
            captured = cur
            expiries = check_history(c, ops, hist, cur, problems)
            assert not problems, "round %d (revision %d): %d problems:\n%s" % (
                rnd_i, cur, len(problems), "\n".join(problems[:30]))
            assert not errors, errors[:5]
            for w in watchers:
                w.epoch = rnd_i
            up.set()
            deadline = time.monotonic() + 20
            live = [w for w in watchers if rnd_i % w.every == 0 and not w.leave_after]
            while time.monotonic() < deadline and not all(w.next_rev > captured for w in live):
                time.sleep(0.05)
            assert all(w.next_rev > captured for w in live), \
                [(w.name, w.next_rev, captured) for w in live]
            if rnd_i == ROUNDS:
                break

            stop = threading.Event()
            ws = [threading.Thread(target=writer, args=(kvgate.port, t, rnd_i, ops, lock, stop, errors), daemon=True)
                  for t in range(WRITERS)]

            def compactor():
                cc = kvgate.client(timeout=5)
                while not stop.is_set():
                    time.sleep(0.2)
                    try:
                        target = min(cc.revision() - 10, captured)
                        if target > compacted[0]:
                            r = cc.post("/v3/kv/compaction", {"revision": str(target)})
                            if r.status == 200:
                                compacted[0] = target
                    except (OSError, http.client.HTTPException):
                        return
            ts = ws + [threading.Thread(target=compactor, daemon=True)]
            for t in ts:
                t.start()
            time.sleep(rnd.uniform(1.5, 2.5))
            up.clear()
            kvgate.kill()
            stop.set()
            for t in ts:
                t.join(15)
            assert not any(t.is_alive() for t in ts), "writers hung"
            assert not errors, errors[:5]
            kvgate.start()
            c = kvgate.client(timeout=30)
        # a clean stop and start changes nothing; the watchers finish
        up.clear()
        assert kvgate.stop() == 0
        done.set()
        for w in watchers:
            w.join(15)
        kvgate.start()
        c = kvgate.client(timeout=30)
        assert c.revision() == captured
        # the leases still alive expire TTL + 1 s after the store opened
        # (kills came faster than that): their keys' deletes are history too
        time.sleep(3.5)
        end = c.revision()
        hist.update(capture(kvgate.port, captured + 1, end))
        expiries = check_history(c, ops, hist, end, problems)
    finally:
        done.set()
        up.clear()
    assert not problems, problems[:30]

    # every watcher, segment by segment, saw exactly the history
    n_events = 0
    for w in watchers:
        assert not w.is_alive(), w.name
        for i, (start, evs) in enumerate(w.segments):
            end = evs[-1][3] if evs else start - 1
            if i + 1 < len(w.segments):
                assert w.segments[i + 1][0] > end
            want = [(t, k, v, r) for r in range(start, end + 1) for (t, k, v) in hist.get(r, [])]
            assert evs == want, "%s segment %d (%d..%d): got %d events, want %d; first difference at %r" % (
                w.name, i, start, end, len(evs), len(want),
                next(((a, b) for a, b in zip(evs, want) if a != b), None))
            n_events += len(evs)
        # the live watchers saw everything up to the last capture
        if w.every == 1:
            assert w.segments[-1][1] and w.segments[-1][1][-1][3] == captured or w.compacted, \
                (w.name, w.next_rev, captured)
    assert expiries > 0, "no lease expired during the test"
    acked = sum(op.status == "acked" for op in ops)
    assert acked > 100, "too few acknowledged writes: %d" % acked
    laggard_compactions = sum(len(w.compacted) for w in watchers if w.every > 1)
    assert laggard_compactions >= 1, "no laggard met a compaction: the 410 / cancel path went untested"
    print("mixed crash: %d ops (%d acked), revision %d (before expiries), compacted at %d, %d events checked, "
          "%d compactions met by laggards, %d lease expiries" % (
              len(ops), acked, captured, compacted[0], n_events, laggard_compactions, expiries))
