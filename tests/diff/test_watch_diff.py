"""Differential suite for POST /v3/watch: each scenario runs against a fresh
etcd 3.4 and a fresh kvgate, and the streams must be line-for-line equal
after normalisation (cluster_id, member_id, raft_term dropped).

A scenario is a function of a Ctx (client, port, open-stream) that returns
a list of records: the JSON lines a stream produced, statuses, bodies.
Writes are issued only once the stream has answered what came before
(`created` first), so the revision in every header is deterministic.

Known, deliberate differences are not here but in
tests/e2e/test_watch_json.py (with the reason):
  - a POST body with no request at all: etcd sends no response head until
    the first message (forever); kvgate answers 200 and an empty stream;
  - /v3alpha/watch: 404 on etcd 3.4, served by kvgate.
"""
import os
import sys
import threading

import pytest

from kvtest import Client, b64, normalise

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from test_watch_stream import Stream  # noqa: E402

# How long a stream must stay silent to be complete: etcd's unsynced
# watchers catch up every 100 ms; sanitizer builds are several times slower.
QUIET = 1.2 if "san" in os.path.basename(os.environ.get("KVGATE_BIN", "")) else 0.6


class Ctx:
    def __init__(self, port):
        self.port = port
        self.c = Client("127.0.0.1", port, 10.0)
        self.streams = []

    def open(self, body, headers=None, path="/v3/watch"):
        s = Stream(self.port, path, body, headers=headers)
        self.streams.append(s)
        return s

    def close(self):
        for s in self.streams:
            s.close()


def norm_lines(s):
    return [normalise(x) for x in s.lines()]


def create(key, **kw):
    cr = {"key": b64(key)}
    for k, v in kw.items():
        cr[k] = b64(v) if k == "range_end" else v
    return {"create_request": cr}


def body_of(*reqs):
    import json
    return "".join(json.dumps(r) for r in reqs)


def live(ctx, req, actions, n_created=1):
    """Open a watch, wait for its created line(s), run actions, collect."""
    s = ctx.open(req if isinstance(req, str) else body_of(req))
    s.wait_lines(n_created, 5)
    actions(ctx.c)
    s.quiet(QUIET)
    return [s.status] + norm_lines(s)


# ---------------------------------------------------------------- scenarios

def sc_live_key(ctx):
    def act(c):
        c.put("foo", "bar")
        c.put("foo", "baz")
        c.put("other", "x")
        c.delete("foo")
    return live(ctx, create("foo"), act)


def sc_history(ctx):
    ctx.c.put("foo", "1")
    ctx.c.put("foo", "2")
    ctx.c.delete("foo")
    ctx.c.put("foo", "3")
    s = ctx.open(body_of(create("foo", start_revision="2")))
    s.wait_lines(2, 5)
    s.quiet(QUIET)
    ctx.c.put("foo", "4")
    s.quiet(QUIET)
    return norm_lines(s)


def sc_history_from_middle_with_prev_kv(ctx):
    for i in range(5):
        ctx.c.put("k", str(i))
    s = ctx.open(body_of(create("k", start_revision=4, prev_kv=True)))
    s.wait_lines(2, 5)
    s.quiet(QUIET)
    return norm_lines(s)


def sc_prefix(ctx):
    def act(c):
        c.put("p/a", "1")
        c.put("p/b", "2")
        c.put("q", "x")
        c.put("p", "y")
        c.put("p/a", "3")
    return live(ctx, create("p/", range_end="p0", prev_kv=True), act)


def sc_range(ctx):
    def act(c):
        for k in ("a", "b", "bb", "c", "d", "e"):
            c.put(k, k)
    return live(ctx, create("b", range_end="d"), act)


def sc_from_key(ctx):
    def act(c):
        for k in ("a", "m", "n", "zz", "\xff"):
            c.put(k, "v")
    return live(ctx, {"create_request": {"key": b64("m"), "range_end": "AA=="}}, act)


def sc_all_keys(ctx):
    def act(c):
        c.put("a", "1")
        c.put("\x00", "nul")
        c.delete("a")
    return live(ctx, {"create_request": {"key": "AA==", "range_end": "AA=="}}, act)


def sc_filters(ctx):
    def act(c):
        c.put("f", "1")
        c.put("f", "2")
        c.delete("f")
    out = []
    for filt in (["NOPUT"], ["NODELETE"], [0], [1], ["NOPUT", "NODELETE"], [7]):
        out += live(ctx, create("f", filters=filt, prev_kv=True), act)
        ctx.close()
    return out


def sc_prev_kv(ctx):
    def act(c):
        c.put("g", "1")
        c.put("g", "2")
        c.delete("g")
        c.put("g", "3")
    return live(ctx, create("g", prev_kv=True), act)


def sc_txn_several_events(ctx):
    def act(c):
        c.put("t3", "old")
        c.txn({"success": [{"request_put": {"key": b64("t1"), "value": b64("v")}},
                           {"request_put": {"key": b64("t2"), "value": b64("v")}},
                           {"request_delete_range": {"key": b64("t3")}}]})
        c.txn({"success": [{"request_put": {"key": b64("t1"), "value": b64("w")}},
                           {"request_delete_range": {"key": b64("t2")}}]})
    return live(ctx, create("t", range_end="u", prev_kv=True), act)


def sc_multi_key_delete(ctx):
    def act(c):
        c.put("m1", "a")
        c.put("m2", "b")
        c.put("m3", "c")
        c.delete("m", "n", prev_kv=True)
    return live(ctx, create("m", range_end="n", prev_kv=True), act)


def sc_compaction_cancel(ctx):
    for i in range(6):
        ctx.c.put("a", str(i))
    ctx.c.compact(5)
    s = ctx.open(body_of(create("a", start_revision=3, watch_id=4)))
    s.wait_lines(2, 5)
    s.quiet(QUIET)
    ctx.c.put("a", "live")
    s.quiet(QUIET)
    return norm_lines(s)


def sc_compaction_cancel_then_more_creates(ctx):
    """etcd cancels a compacted watcher from its sync loop, so every created
    of the body comes first."""
    for i in range(6):
        ctx.c.put("a", str(i))
    ctx.c.compact(5)
    s = ctx.open(body_of(create("a", start_revision=3), create("a")))
    s.wait_lines(3, 5)
    ctx.c.put("a", "live")
    s.quiet(QUIET)
    return norm_lines(s)


def sc_compaction_start_at_compact_revision(ctx):
    """etcd serves a watch from the compaction revision itself (only a start
    below it is compacted): the put at it is kept, history follows."""
    for i in range(6):
        ctx.c.put("a", str(i))                      # 2..7
    ctx.c.compact(5, physical=True)
    s = ctx.open(body_of(create("a", start_revision=5, prev_kv=True)))
    s.wait_lines(2, 5)
    ctx.c.put("a", "live")
    s.quiet(QUIET)
    return norm_lines(s)


def sc_compaction_start_at_compacted_delete(ctx):
    """A delete at the compaction revision is gone with its key's history
    (etcd keeps the newest revision <= C of a key unless it is a tombstone):
    a watch from C starts with what comes after it."""
    ctx.c.put("k/a", "1")                           # 2
    ctx.c.put("k/b", "1")                           # 3
    ctx.c.delete("k/a")                             # 4
    ctx.c.put("k/b", "2")                           # 5
    ctx.c.compact(4, physical=True)
    s = ctx.open(body_of(create("k/", range_end="k0", start_revision=4)))
    s.wait_lines(2, 5)
    ctx.c.delete("k/b")
    s.quiet(QUIET)
    return norm_lines(s)


def sc_compaction_after_is_fine(ctx):
    for i in range(6):
        ctx.c.put("a", str(i))
    ctx.c.compact(5)
    s = ctx.open(body_of(create("a", start_revision=6)))
    s.wait_lines(2, 5)
    s.quiet(QUIET)
    return norm_lines(s)


def sc_several_creates(ctx):
    def act(c):
        c.put("a", "1")
        c.put("b", "2")
        c.put("c", "3")
    body = body_of(create("a"), create("b")) + "\n" + body_of(create("c")) + "\n"
    return live(ctx, body, act, n_created=3)


def sc_duplicate_watch_id(ctx):
    def act(c):
        c.put("a", "1")
        c.put("b", "2")
        c.put("c", "3")
    body = body_of(create("a", watch_id="7"), create("b", watch_id=7), create("c"))
    return live(ctx, body, act, n_created=3)


def sc_client_ids_and_auto(ctx):
    def act(c):
        c.put("a", "1")
        c.put("b", "2")
        c.put("c", "3")
        c.put("d", "4")
    body = body_of(create("a", watch_id="1"), create("b"), create("c"), create("d", watch_id=-3))
    return live(ctx, body, act, n_created=4)


def sc_empty_range(ctx):
    out = []
    for key, end in (("b", "a"), ("b", "b")):
        s = ctx.open(body_of(create(key, range_end=end)))
        s.wait_lines(1, 5)
        ctx.c.put("b", "x")
        s.quiet(QUIET)
        out.append(norm_lines(s))
    return out


def sc_progress_request(ctx):
    ctx.c.put("x", "1")
    s = ctx.open(body_of(create("a"), {"progress_request": {}}))
    s.wait_lines(2, 5)
    s.quiet(QUIET)
    s2 = ctx.open(body_of({"progress_request": {}}))
    s2.wait_lines(1, 5)
    return [norm_lines(s), norm_lines(s2)]


def sc_cancel(ctx):
    def act(c):
        c.put("a", "1")
        c.put("b", "1")
    body = body_of(create("a"), create("b"), {"cancel_request": {"watch_id": "0"}},
                   {"cancel_request": {"watch_id": "5"}})
    return live(ctx, body, act, n_created=3)


def sc_v3beta(ctx):
    s = ctx.open(body_of(create("v")), path="/v3beta/watch")
    s.wait_lines(1, 5)
    ctx.c.put("v", "1")
    s.quiet(QUIET)
    return norm_lines(s)


def sc_camel_case_and_strings(ctx):
    def act(c):
        for i in range(3):
            c.put("a", str(i))
    body = ('{"createRequest":{"key":"%s","rangeEnd":"%s","prevKv":true,"watchId":"5",'
            '"startRevision":"0","progressNotify":true}}' % (b64("a"), b64("b")))
    return live(ctx, body, act)


def sc_good_then_bad(ctx):
    def act(c):
        c.put("a", "1")
        c.put("b", "1")
    body = body_of(create("a")) + "xx" + body_of(create("b"))
    return live(ctx, body, act)


def sc_lease_revoke_deletes(ctx):
    g = ctx.c.post("/v3/lease/grant", {"TTL": "60", "ID": "77"}).json()
    assert g.get("ID") == "77", g
    s = ctx.open(body_of(create("l/", range_end="l0", prev_kv=True)))
    s.wait_lines(1, 5)
    ctx.c.put("l/a", "1", lease="77")
    ctx.c.put("l/b", "2", lease="77")
    ctx.c.post("/v3/kv/lease/revoke", {"ID": "77"})
    s.quiet(QUIET)
    return norm_lines(s)


def sc_future_start_revision(ctx):
    def act(c):
        for i in range(4):
            c.put("fu", str(i))
    return live(ctx, create("fu", start_revision=4), act)


def sc_empty_create_request(ctx):
    def act(c):
        c.put("a", "1")
        c.post("/v3/kv/put", {"key": "AA==", "value": b64("nul")})
    return live(ctx, '{"create_request":{}}', act)


def sc_long_history_single_event_revisions(ctx):
    """1500 revisions: etcd sends history in batches of 1000 revisions."""
    for base in range(0, 1500, 1):
        ctx.c.put("h", str(base))
    s = ctx.open(body_of(create("h", start_revision=2)))
    s.wait_lines(3, 10)
    s.quiet(QUIET)
    return [(len(x["result"].get("events", [])), x["result"]["header"]) for x in norm_lines(s)]


def sc_history_many_events_per_revision(ctx):
    """20 revisions of 100 events each: one response in etcd (its batches
    count revisions, not events)."""
    for t in range(20):
        ctx.c.txn({"success": [{"request_put": {"key": b64("m/%03d" % i), "value": b64(str(t))}}
                               for i in range(100)]})
    s = ctx.open(body_of(create("m/", range_end="m0", start_revision=2)))
    s.wait_lines(2, 10)
    s.quiet(QUIET)
    return [(len(x["result"].get("events", [])), x["result"]["header"]) for x in norm_lines(s)]


def sc_negative_start_revision(ctx):
    def act(c):
        c.put("a", "1")
    return live(ctx, create("a", start_revision=-5), act)


def sc_progress_while_catching_up(ctx):
    for i in range(5):
        ctx.c.put("a", str(i))
    s = ctx.open(body_of(create("a", start_revision=2), {"progress_request": {}}))
    s.wait_lines(3, 5)
    s.quiet(QUIET)
    return norm_lines(s)


def any_order_within_revision(out):
    """etcd hands one revision's events to the watchers of a key in Go map
    order (watcherGroup.watcherSetByKey, newWatcherBatch), i.e. at random:
    two watchers of one stream on the same key get their responses for a
    revision in either order (seen: about 1 run in 4).  So consecutive
    event responses of one revision are compared sorted by watch_id."""
    res, i = list(out), 0
    while i < len(res):
        r = res[i]
        if not (isinstance(r, dict) and "events" in r.get("result", {})):
            i += 1
            continue
        j = i
        rev = r["result"].get("header", {}).get("revision")
        while (j < len(res) and isinstance(res[j], dict) and "events" in res[j].get("result", {})
               and res[j]["result"].get("header", {}).get("revision") == rev):
            j += 1
        res[i:j] = sorted(res[i:j], key=lambda x: str(x["result"].get("watch_id", "0")))
        i = j
    return res


def sc_largest_watch_id(ctx):
    def act(c):
        c.put("a", "1")
    return any_order_within_revision(
        live(ctx, body_of(create("a", watch_id="9223372036854775807"), create("a")), act,
             n_created=2))


def sc_cancel_twice_then_reuse(ctx):
    def act(c):
        c.put("a", "1")
    body = body_of(create("a"), {"cancel_request": {"watch_id": 0}},
                   {"cancel_request": {"watch_id": 0}}, create("a"))
    return live(ctx, body, act, n_created=3)


BAD_BODIES = [
    '{"create_request":',
    'hello',
    '{"create_request":{"key":5}}',
    '{"create_request":{"key":"!!!"}}',
    '{"create_request":{"key":"YQ"}}',
    '[{"create_request":{"key":"YQ=="}}]',
    '{"create_request":{"filters":["BOGUS"]}}',
    '{"create_request":{"filters":"NOPUT"}}',
    '{"create_request":{"filters":[1.5]}}',
    '{"create_request":{"prev_kv":"true"}}',
    '{"create_request":{"watch_id":1.5}}',
    '{"create_request":{"start_revision":"x"}}',
    '{"create_request":"x"}',
    '{"cancel_request":5}',
    '{"cancel_request":{"watch_id":"x"}}',
    '{"progress_request":5}',
    '"str"',
    '5',
]


def sc_bad_bodies(ctx):
    out = []
    for b in BAD_BODIES:
        s = ctx.open(b)
        out.append((b, s.status, s.headers.get("content-type"), s.body_json(5)))
        s.close()
    return out


# ---- create_request.fragment: etcd 3.4's split points, to the byte ----------
# etcd (v3rpc/watch.go sendFragments) splits a response of a watch created
# with fragment when its protobuf Size() >= --max-request-bytes + 512 KiB
# (both servers run with the default 1.5 MiB), each part taking events while
# its Size() (with fragment=true) stays below.  Each round below tunes one
# value's length, from the server's own header ids, so that a size lands
# exactly on or one byte below the limit.
FRAG_LIMIT = 1572864 + 512 * 1024


def _sov(x):
    n = 1
    while x >= 0x80:
        x >>= 7
        n += 1
    return n


def _pb_int(v):
    return 1 + _sov(v & (2 ** 64 - 1)) if v else 0


def _pb_bytes(n):
    return 1 + _sov(n) + n if n else 0


def _pb_msg(n):
    return 1 + _sov(n) + n


def _pb_kv(klen, vlen, crev, mrev, ver):
    return _pb_bytes(klen) + _pb_int(crev) + _pb_int(mrev) + _pb_int(ver) + _pb_bytes(vlen)


def _frag_round(ctx, prefix, n, p, qs, tune, target, first_part):
    """One watch (prev_kv, fragment) on prefix; a txn of n puts (values of p
    bytes), then a txn overwriting them with values of qs[i] bytes, where
    qs[tune] is adjusted so that the Size() of the whole response
    (first_part=None) or of a first part of first_part events (with the
    fragment field) is `target`.  Returns the response shapes."""
    import json
    hdr = ctx.c.post("/v3/kv/range", {"key": b64("x")}).json()["header"]
    r1 = int(hdr["revision"]) + 1
    r2 = r1 + 1
    keys = ["%s%02d" % (prefix, i) for i in range(n)]
    hs = (_pb_int(int(hdr["cluster_id"])) + _pb_int(int(hdr["member_id"])) +
          _pb_int(r2) + _pb_int(int(hdr.get("raft_term", 0))))

    def size(qs):
        base = _pb_msg(hs) + (2 if first_part is not None else 0)
        evs = [_pb_msg(_pb_kv(len(k), q, r1, r2, 2)) + _pb_msg(_pb_kv(len(k), p, r1, r1, 1))
               for k, q in zip(keys, qs)]  # Event: kv, prev_kv
        return base + sum(_pb_msg(e) for e in (evs if first_part is None else evs[:first_part]))

    qs = list(qs)
    for _ in range(10):
        d = target - size(qs)
        if d == 0:
            break
        qs[tune] += d
    assert size(qs) == target
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    s = ctx.open(body_of(create(prefix, range_end=end, prev_kv=True, fragment=True)))
    s.wait_lines(1, 10)
    for vals in ([p] * n, qs):
        ctx.c.txn({"success": [{"request_put": {"key": b64(k), "value": b64("v" * v)}}
                               for k, v in zip(keys, vals)]})
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sum(len(l["result"].get("events", [])) for l in s.lines()) >= 2 * n:
            break
        s.quiet(0.2, 1)
    s.quiet(QUIET, 5)
    s.close()
    return [(l["result"]["header"]["revision"], bool(l["result"].get("fragment")),
             [e["kv"]["key"] for e in l["result"].get("events", [])])
            for l in s.lines() if not l["result"].get("created")]


def sc_fragment_split_points(ctx):
    n, p = 12, 100000
    return [
        # whole response one byte below the limit: one response
        _frag_round(ctx, "fa/", n, p, [80000] * n, n - 1, FRAG_LIMIT - 1, None),
        # exactly at the limit: fragmented
        _frag_round(ctx, "fb/", n, p, [80000] * n, n - 1, FRAG_LIMIT, None),
        # a first part of 10 events one byte below the limit: 10 fit
        _frag_round(ctx, "fc/", n, p, [100000] * 10 + [1000] * 2, 9, FRAG_LIMIT - 1, 10),
        # ... exactly at it: 9 fit, the 10th starts the next part
        _frag_round(ctx, "fd/", n, p, [100000] * 10 + [1000] * 2, 9, FRAG_LIMIT, 10),
    ]


SCENARIOS = [f for n, f in sorted(globals().items()) if n.startswith("sc_")]


def _run(server, fn, out, i):
    ctx = Ctx(server.port)
    try:
        out[i] = fn(ctx)
    except Exception as e:  # reported by the comparison
        out[i] = ("EXCEPTION", repr(e))
    finally:
        ctx.close()


# Known differences owed to another layer, with the change that fixes them.
XFAIL = {}


def _param(f):
    name = f.__name__[3:]
    marks = [pytest.mark.xfail(reason=XFAIL[name], strict=False)] if name in XFAIL else []
    return pytest.param(f, id=name, marks=marks)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("fn", [_param(f) for f in SCENARIOS])
def test_watch_same_as_etcd(fn, kvgate_factory, etcd_factory):
    e = etcd_factory(start=False)
    k = kvgate_factory(start=False)
    e.spawn()
    k.spawn()
    e.wait_ready()
    k.wait_ready()
    out = [None, None]
    ts = [threading.Thread(target=_run, args=(srv, fn, out, i)) for i, srv in enumerate((e, k))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(80)
    etcd_out, kvgate_out = out
    assert etcd_out is not None and not (isinstance(etcd_out, tuple) and etcd_out[0] == "EXCEPTION"), \
        "etcd side failed: %r" % (etcd_out,)
    assert kvgate_out == etcd_out, "\netcd:   %r\nkvgate: %r" % (etcd_out, kvgate_out)
