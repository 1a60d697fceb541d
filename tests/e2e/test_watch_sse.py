"""Server-Sent Events watches (GET /v3/watch?..., POST + Accept:
text/event-stream) end to end against the real binary.

What a browser's EventSource relies on, checked here with a parser that
follows the WHATWG algorithm (test_watch_stream.parse_sse):
  - text/event-stream, no-cache, a retry: hint first;
  - event: created (id = the revision the watch continues after);
  - default-event data messages, one WatchResponse each, id = the highest
    revision covered;
  - resume with Last-Event-ID (header) or last_event_id (query): every
    event exactly once across any gap, also across a server restart;
  - 410 Gone (JSON naming compact_revision) for a compacted resume point;
  - initial=true: snapshot at R, event: synced id R, then R+1...;
  - heartbeats (comment lines) on idle streams, which also free the streams
    of clients that left; --max-streams refuses with 429.
"""
import json
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest

from kvtest import b64, unb64
from test_watch_stream import Stream, parse_sse


def sse_get(port, query, headers=None):
    return Stream(port, "/v3/watch?" + query, None, method="GET", headers=headers)


def data_msgs(msgs):
    return [m for m in msgs if m["event"] == "message"]


def events_of(msgs):
    """[(type, key, value, mod_revision)] of every data message, in order."""
    out = []
    for m in data_msgs(msgs):
        for e in json.loads(m["data"]).get("events", []):
            kv = e["kv"]
            out.append((e.get("type", "PUT"), kv["key"], kv.get("value"), int(kv["mod_revision"])))
    return out


def q(**kw):
    return urllib.parse.urlencode(kw)


@pytest.mark.timeout(30)
def test_sse_live_events_framing(kvgate):
    c = kvgate.client()
    c.put("foo", "0")
    with sse_get(kvgate.port, "key=foo&prev_kv=true") as s:
        assert s.status == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        assert s.headers.get("cache-control") == "no-cache"
        created = s.wait_sse(lambda m: len(m) >= 1)
        assert created[0]["event"] == "created"
        assert created[0]["id"] == "2"  # the watch continues after revision 2
        assert s.sse()[2] and s.sse()[2] > 0, "no retry: hint"
        assert s.data.startswith(b"retry: ")
        c.put("foo", "1")
        c.put("bar", "x")
        c.delete("foo")
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 2)
        d = data_msgs(msgs)
        assert [m["id"] for m in d] == ["3", "5"]
        assert events_of(msgs) == [("PUT", b64("foo"), b64("1"), 3), ("DELETE", b64("foo"), None, 5)]
        first = json.loads(d[0]["data"])
        assert first["header"]["revision"] == "3"
        assert first["events"][0]["prev_kv"]["value"] == b64("0")
        assert "\n" not in d[0]["data"]


@pytest.mark.timeout(30)
def test_sse_prefix_text_encoding(kvgate):
    c = kvgate.client()
    with sse_get(kvgate.port, q(key="p/", prefix="true", encoding="text")) as s:
        s.wait_sse(lambda m: len(m) >= 1)
        c.put("p/é", "naïve")
        c.put("q", "no")
        c.post("/v3/kv/put", {"key": b64("p/bin"), "value": "/wA="})  # bytes ff 00
        c.put("p/nl", "a\nb")
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 3)
        evs = [json.loads(m["data"])["events"][0]["kv"] for m in data_msgs(msgs)]
        assert evs[0]["key"] == "p/é" and evs[0]["value"] == "naïve"
        assert evs[1]["key"] == "p/bin" and "value" not in evs[1] and evs[1]["value_base64"] == "/wA="
        assert evs[2]["value"] == "a\nb"
        for m in data_msgs(msgs):
            assert "\n" not in m["data"]


@pytest.mark.timeout(30)
def test_sse_ranges_and_filters(kvgate):
    c = kvgate.client()
    with sse_get(kvgate.port, q(key="b", range_end="d", filters="nodelete")) as r1, \
            sse_get(kvgate.port, q(key="m", from_key="true", filters="noput")) as r2:
        r1.wait_sse(lambda m: len(m) >= 1)
        r2.wait_sse(lambda m: len(m) >= 1)
        for k in ("a", "b", "c", "d", "m", "z"):
            c.put(k, "v")
        c.delete("a", "\0")
        m1 = r1.wait_sse(lambda m: len(data_msgs(m)) >= 2)
        assert [e[1] for e in events_of(m1)] == [b64("b"), b64("c")]
        m2 = r2.wait_sse(lambda m: len(events_of(m)) >= 2)
        assert [(e[0], e[1]) for e in events_of(m2)] == [("DELETE", b64("m")), ("DELETE", b64("z"))]


@pytest.mark.timeout(40)
def test_sse_resume_with_last_event_id_exactly_once(kvgate):
    c = kvgate.client()
    seen = []
    with sse_get(kvgate.port, "key=k&prefix=true") as s:
        s.wait_sse(lambda m: len(m) >= 1)
        for i in range(5):
            c.put("k%d" % i, str(i))
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 5)
        seen += events_of(msgs)
        last = msgs[-1]["last_id"]
    assert last == str(seen[-1][3])
    # the gap: writes nobody watches, several per revision too
    for i in range(5, 9):
        c.put("k%d" % i, str(i))
    c.txn({"success": [{"request_put": {"key": b64("k9"), "value": b64("9")}},
                       {"request_put": {"key": b64("k10"), "value": b64("10")}}]})
    c.put("other", "x")
    with sse_get(kvgate.port, "key=k&prefix=true", {"Last-Event-ID": last}) as s:
        c.put("k11", "11")  # live, right after reconnecting
        msgs = s.wait_sse(lambda m: len(events_of(m)) >= 7)
        assert msgs[0]["event"] == "created" and msgs[0]["id"] == last
        seen += events_of(msgs)
        s.quiet(0.3)
        seen_all = seen[:5] + events_of(s.sse()[0])
    revs = [e[3] for e in seen_all]
    keys = [unb64(e[1]) for e in seen_all]
    assert keys == ["k%d" % i for i in range(12)], keys
    assert revs == sorted(revs) and len(set((e[1], e[3]) for e in seen_all)) == 12


@pytest.mark.timeout(30)
def test_sse_resume_from_created_id_when_no_event_arrived(kvgate):
    c = kvgate.client()
    with sse_get(kvgate.port, "key=x") as s:
        created = s.wait_sse(lambda m: len(m) >= 1)[0]
    c.put("x", "missed")
    with sse_get(kvgate.port, "key=x", {"Last-Event-ID": created["id"]}) as s:
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 1)
        assert [e[2] for e in events_of(msgs)] == [b64("missed")]


@pytest.mark.timeout(30)
def test_sse_last_event_id_query_for_first_connect(kvgate):
    c = kvgate.client()
    for i in range(4):
        c.put("y", str(i))  # revisions 2..5
    with sse_get(kvgate.port, "key=y&last_event_id=3") as s:
        msgs = s.wait_sse(lambda m: len(events_of(m)) >= 2)
        assert [e[3] for e in events_of(msgs)] == [4, 5]
        assert msgs[0]["id"] == "3"
    # the header wins over the query (a browser reconnect repeats the URL)
    with sse_get(kvgate.port, "key=y&last_event_id=3", {"Last-Event-ID": "4"}) as s:
        msgs = s.wait_sse(lambda m: len(events_of(m)) >= 1)
        s.quiet(0.3)
        assert [e[3] for e in events_of(s.sse()[0])] == [5]


@pytest.mark.timeout(30)
def test_sse_start_revision(kvgate):
    c = kvgate.client()
    for i in range(3):
        c.put("s", str(i))  # 2, 3, 4
    with sse_get(kvgate.port, "key=s&start_revision=3") as s:
        msgs = s.wait_sse(lambda m: len(events_of(m)) >= 2)
        assert msgs[0]["id"] == "2"
        assert [e[3] for e in events_of(msgs)] == [3, 4]
        assert msgs[-1]["last_id"] == "4"


@pytest.mark.timeout(30)
def test_sse_410_gone_on_compacted_resume_point(kvgate):
    c = kvgate.client()
    for i in range(6):
        c.put("z", str(i))  # 2..7
    c.compact(5)
    for hdr, query in (({"Last-Event-ID": "3"}, "key=z"), ({}, "key=z&start_revision=4"),
                       ({}, "key=z&last_event_id=2"), ({"Last-Event-ID": "4"}, "key=z")):
        with sse_get(kvgate.port, query, hdr) as s:
            assert s.status == 410, (hdr, query, s.status)
            body = s.body_json()
            assert body["compact_revision"] == "5" and body["code"] == 11, body
            assert "compacted" in body["error"]
    # just after the compaction point is fine
    with sse_get(kvgate.port, "key=z", {"Last-Event-ID": "5"}) as s:
        assert s.status == 200
        msgs = s.wait_sse(lambda m: len(events_of(m)) >= 2)
        assert [e[3] for e in events_of(msgs)] == [6, 7]


@pytest.mark.timeout(60)
def test_sse_initial_consistent_view_under_writes(kvgate):
    """A snapshot at R then every change after R: applying them to the
    snapshot gives exactly the store's final contents, with writes racing
    the connect."""
    c = kvgate.client()
    for i in range(50):
        c.put("i/%02d" % i, "v0")
    stop = threading.Event()

    def writer():
        n = 0
        wc = kvgate.client()
        while not stop.is_set() and n < 300:
            wc.put("i/%02d" % (n % 60), "w%d" % n)
            if n % 7 == 0:
                wc.delete("i/%02d" % ((n * 3) % 60))
            n += 1

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.05)
    s = sse_get(kvgate.port, "key=i/&prefix=true&initial=true")
    try:
        msgs = s.wait_sse(lambda m: any(x["event"] == "synced" for x in m), 10)
        t.join(30)
        stop.set()
        final = {kv["key"]: kv["value"] for kv in c.range("i/", "i0").get("kvs", [])}
        final_rev = c.revision()
        s.wait(lambda: any(int(m["last_id"] or 0) >= final_rev for m in s.sse()[0]), 10)
        msgs = s.sse()[0]
    finally:
        s.close()
    assert msgs[0]["event"] == "created" and msgs[0]["id"] is None  # no id before synced
    i_sync = [i for i, m in enumerate(msgs) if m["event"] == "synced"][0]
    R = int(msgs[i_sync]["id"])
    state = {}
    for m in msgs[1:i_sync]:
        assert m["event"] == "message" and m["id"] is None
        body = json.loads(m["data"])
        assert body["header"]["revision"] == str(R)
        for e in body["events"]:
            assert "type" not in e and int(e["kv"]["mod_revision"]) <= R
            state[e["kv"]["key"]] = e["kv"]["value"]
    after = msgs[i_sync + 1:]
    evs = events_of(after)
    assert all(r > R for _, _, _, r in evs)
    for typ, key, val, _ in evs:
        if typ == "DELETE":
            state.pop(key, None)
        else:
            state[key] = val
    assert state == final


@pytest.mark.timeout(60)
def test_sse_initial_pages_large_range(kvgate):
    c = kvgate.client()
    n = 1234
    for base in range(0, n, 100):
        c.txn({"success": [{"request_put": {"key": b64("L/%05d" % i), "value": b64(str(i))}}
                           for i in range(base, min(n, base + 100))]})
    with sse_get(kvgate.port, "key=L/&prefix=true&initial=true&encoding=text") as s:
        msgs = s.wait_sse(lambda m: any(x["event"] == "synced" for x in m), 20)
        snap = [json.loads(m["data"]) for m in msgs if m["event"] == "message"]
        assert len(snap) >= 3  # paged
        keys = [e["kv"]["key"] for b in snap for e in b["events"]]
        assert keys == ["L/%05d" % i for i in range(n)]
        R = [m for m in msgs if m["event"] == "synced"][0]["id"]
        assert R == str(c.revision())
        c.put("L/new", "x")
        msgs = s.wait_sse(lambda m: m[-1]["event"] == "message" and "L/new" in m[-1]["data"])
        assert msgs[-1]["id"] == str(int(R) + 1)


@pytest.mark.timeout(30)
def test_sse_initial_skipped_on_resume(kvgate):
    c = kvgate.client()
    c.put("r/a", "1")
    with sse_get(kvgate.port, "key=r/&prefix=true&initial=true") as s:
        msgs = s.wait_sse(lambda m: any(x["event"] == "synced" for x in m))
        R = [m for m in msgs if m["event"] == "synced"][0]["id"]
    c.put("r/b", "2")
    with sse_get(kvgate.port, "key=r/&prefix=true&initial=true", {"Last-Event-ID": R}) as s:
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 1)
        s.quiet(0.3)
        msgs = s.sse()[0]
        assert [m["event"] for m in msgs] == ["created", "message"]
        assert events_of(msgs) == [("PUT", b64("r/b"), b64("2"), int(R) + 1)]


@pytest.mark.timeout(30)
def test_sse_initial_empty_range(kvgate):
    with sse_get(kvgate.port, "key=nothing/&prefix=true&initial=true") as s:
        msgs = s.wait_sse(lambda m: len(m) >= 2)
        assert [m["event"] for m in msgs] == ["created", "synced"]
        assert msgs[1]["id"] == "1"


@pytest.mark.timeout(30)
def test_sse_heartbeat(kvgate_factory):
    k = kvgate_factory(extra_args=["--sse-heartbeat", "1"])
    with sse_get(k.port, "key=hb") as s:
        t = time.monotonic()
        s.wait(lambda: s.sse()[1] >= 2, 5)
        assert s.sse()[1] >= 2, s.data
        assert time.monotonic() - t < 4.5
        assert b": heartbeat\n\n" in s.data
        assert len(s.sse()[0]) == 1  # comments dispatch nothing


@pytest.mark.timeout(30)
def test_sse_no_heartbeat_when_disabled(kvgate_factory):
    k = kvgate_factory(extra_args=["--sse-heartbeat", "0"])
    with sse_get(k.port, "key=hb") as s:
        s.quiet(2.5)
        assert s.sse()[1] == 0


@pytest.mark.timeout(40)
def test_max_streams_and_closing_frees(kvgate_factory):
    k = kvgate_factory(extra_args=["--sse-heartbeat", "1", "--max-streams", "2"])
    a = sse_get(k.port, "key=a")
    b = Stream(k.port, "/v3/watch", {"create_request": {"key": b64("b")}})
    assert a.status == 200 and b.status == 200
    for over in (lambda: sse_get(k.port, "key=c"),
                 lambda: Stream(k.port, "/v3/watch", {"create_request": {"key": b64("c")}})):
        s = over()
        assert s.status == 429, s.status
        body = s.body_json()
        assert body["code"] == 8 and "max-streams" in body["error"]
        s.close()
    # KV requests still work at the limit
    assert k.client().put("free", "yes")
    a.close()
    t = time.monotonic()
    while time.monotonic() - t < 10:
        s = sse_get(k.port, "key=c")
        if s.status == 200:
            s.close()
            break
        s.close()
        time.sleep(0.2)
    else:
        pytest.fail("a closed SSE stream did not free its slot within 10 s")
    assert time.monotonic() - t < 5
    b.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("query,msg", [
    ("", "key is not provided"),
    ("key=a&prefix=maybe", "prefix"),
    ("key=a&filters=noput,put", "filters"),
    ("key=a&start_revision=-1", "start_revision"),
    ("key=a&start_revision=abc", "start_revision"),
    ("key=a&last_event_id=x", "last_event_id"),
    ("key=a&encoding=hex", "encoding"),
    ("key=b&range_end=a", "watcher range is empty"),
    ("key=a&prefix=true&from_key=true", "exclusive"),
    ("key=a&initial=true&start_revision=3", "exclusive"),
])
def test_sse_bad_parameters(kvgate, query, msg):
    with sse_get(kvgate.port, query) as s:
        assert s.status == 400, s.status
        body = s.body_json()
        assert body["code"] == 3 and msg in body["error"], body


# Keys are URL-encoded raw bytes: %00 must survive (values are read with
# their lengths, gw_req_query_each).
@pytest.mark.timeout(30)
def test_sse_binary_key_with_nul(kvgate):
    c = kvgate.client()
    with sse_get(kvgate.port, "key=a%00b%FF&prefix=true") as s:
        s.wait_sse(lambda m: len(m) >= 1)
        c.post("/v3/kv/put", {"key": b64("a"), "value": b64("no")})
        c.post("/v3/kv/put", {"key": "YQBi/w==", "value": b64("yes")})      # a\0b\xff
        c.post("/v3/kv/put", {"key": "YQBi/wE=", "value": b64("yes2")})     # a\0b\xff\x01
        c.post("/v3/kv/put", {"key": "YQBj", "value": b64("no")})           # a\0c (>= end a\0c)
        s.quiet(0.5)
        assert [e[1] for e in events_of(s.sse()[0])] == ["YQBi/w==", "YQBi/wE="]


@pytest.mark.timeout(30)
def test_sse_duplicate_parameter(kvgate):
    with sse_get(kvgate.port, "key=a&key=b") as s:
        assert s.status == 400
        assert "twice" in s.body_json()["error"]


@pytest.mark.timeout(30)
def test_sse_bad_last_event_id_header(kvgate):
    for bad in ("-1", "abc", "9223372036854775807"):
        with sse_get(kvgate.port, "key=a", {"Last-Event-ID": bad}) as s:
            assert s.status == 400, (bad, s.status)


@pytest.mark.timeout(30)
def test_sse_unknown_parameters_ignored(kvgate):
    with sse_get(kvgate.port, "key=a&_=12345&foo=bar") as s:
        assert s.status == 200


@pytest.mark.timeout(30)
def test_sse_post_with_accept(kvgate):
    c = kvgate.client()
    body = {"create_request": {"key": b64("pa"), "prev_kv": True}}
    with Stream(kvgate.port, "/v3/watch", body, headers={"Accept": "text/event-stream"}) as s:
        assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
        s.wait_sse(lambda m: len(m) >= 1)
        c.put("pa", "1")
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 1)
        assert msgs[0]["event"] == "created"
        assert data_msgs(msgs)[0]["id"] == "2"
    # resume on POST: Last-Event-ID applies to the body's watches
    c.put("pa", "2")
    with Stream(kvgate.port, "/v3/watch", body,
                headers={"Accept": "text/event-stream", "Last-Event-ID": "2"}) as s:
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 1)
        assert [e[3] for e in events_of(msgs)] == [3]


@pytest.mark.timeout(30)
def test_sse_v3beta_and_v3alpha(kvgate):
    for p in ("/v3beta/watch", "/v3alpha/watch"):
        with Stream(kvgate.port, p + "?key=a", None, method="GET") as s:
            assert s.status == 200
            assert s.wait_sse(lambda m: len(m) >= 1)[0]["event"] == "created"


@pytest.mark.timeout(30)
def test_sse_cors(kvgate_factory):
    k = kvgate_factory(extra_args=["--cors-origins", "http://app.example"])
    with sse_get(k.port, "key=a", {"Origin": "http://app.example"}) as s:
        assert s.status == 200
        assert s.headers.get("access-control-allow-origin") == "http://app.example"
    with sse_get(k.port, "key=a", {"Origin": "http://evil.example"}) as s:
        assert "access-control-allow-origin" not in s.headers
    pre = k.client().request("OPTIONS", "/v3/watch", None, {
        "Origin": "http://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "last-event-id"})
    assert pre.status == 200
    assert "GET" in pre.headers.get("access-control-allow-methods", "")
    assert "last-event-id" in pre.headers.get("access-control-allow-headers", "").lower()


@pytest.mark.timeout(60)
def test_sse_resume_across_restart(kvgate):
    c = kvgate.client()
    with sse_get(kvgate.port, "key=rs") as s:
        c.put("rs", "1")
        msgs = s.wait_sse(lambda m: len(data_msgs(m)) >= 1)
        last = msgs[-1]["last_id"]
        kvgate.stop()
        s.wait(lambda: s.eof, 10)
        assert s.eof, "SIGTERM did not end the stream"
    kvgate.start()
    c = kvgate.client()
    c.put("rs", "2")
    c.put("rs", "3")
    with sse_get(kvgate.port, "key=rs", {"Last-Event-ID": last}) as s:
        msgs = s.wait_sse(lambda m: len(events_of(m)) >= 2)
        s.quiet(0.3)
        assert [e[2] for e in events_of(s.sse()[0])] == [b64("2"), b64("3")]


@pytest.mark.timeout(30)
def test_sigterm_ends_streams_promptly(kvgate):
    streams = [sse_get(kvgate.port, "key=a")] + \
        [Stream(kvgate.port, "/v3/watch", {"create_request": {"key": b64("a")}}) for _ in range(3)]
    for s in streams[1:]:
        s.wait_lines(1)
    t = time.monotonic()
    assert kvgate.stop(timeout=10) == 0
    assert time.monotonic() - t < 5
    for s in streams:
        s.wait(lambda: s.eof, 3)
        assert s.eof
        s.close()


@pytest.mark.timeout(30)
def test_curl_n_sse(kvgate):
    p = subprocess.Popen(["curl", "-s", "-N", "--max-time", "4",
                          "http://127.0.0.1:%d/v3/watch?key=cu&encoding=text" % kvgate.port],
                         stdout=subprocess.PIPE)
    try:
        time.sleep(0.7)
        kvgate.client().put("cu", "hello")
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    msgs, _, retry = parse_sse(out)
    assert retry and msgs[0]["event"] == "created"
    assert json.loads(msgs[1]["data"])["events"][0]["kv"]["value"] == "hello"


@pytest.mark.timeout(30)
def test_curl_n_json(kvgate):
    p = subprocess.Popen(["curl", "-s", "-N", "--max-time", "4", "-X", "POST",
                          "http://127.0.0.1:%d/v3/watch" % kvgate.port,
                          "-d", '{"create_request":{"key":"%s"}}' % b64("cj")],
                         stdout=subprocess.PIPE)
    try:
        time.sleep(0.7)
        kvgate.client().put("cj", "hello")
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    lines = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
    assert lines[0]["result"]["created"] is True
    assert lines[1]["result"]["events"][0]["kv"]["value"] == b64("hello")


@pytest.mark.timeout(30)
def test_sse_signal_is_not_sigpipe(kvgate):
    """A client vanishing mid-stream must not kill the server."""
    s = sse_get(kvgate.port, "key=sp")
    s.wait_sse(lambda m: len(m) >= 1)
    s.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_LINGER,
                      b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST
    c = kvgate.client()
    for i in range(20):
        c.put("sp", "x" * 1000)
    assert kvgate.running()
    assert signal.SIGPIPE  # (documentation: main ignores SIGPIPE)


@pytest.mark.timeout(60)
def test_sse_slow_reader_compacted_then_410(kvgate):
    """A reader that stalls while history is compacted away: it gets every
    event up to some revision, then `event: canceled` with compact_revision
    and the end of the stream; reconnecting with its Last-Event-ID is 410,
    never a silent gap."""
    import socket as _socket
    c = kvgate.client()
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", kvgate.port))
    sock.sendall(b"GET /v3/watch?key=slow/&prefix=true HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    val = b64("v" * 1000)
    for t in range(40):  # 40 revisions x 100 events of ~1.4 KB: far beyond the queue bound
        c.txn({"success": [{"request_put": {"key": b64("slow/%03d" % i), "value": val}}
                           for i in range(100)]})
    time.sleep(2.5)  # the stalled watcher is parked, then demoted to catching up
    rev = c.revision()
    c.compact(rev)
    time.sleep(0.5)
    # now read everything
    sock.settimeout(1.0)
    raw = b""
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            d = sock.recv(1 << 20)
        except _socket.timeout:
            if b"event: canceled" in raw:
                break
            continue
        if not d:
            break
        raw += d
    sock.close()
    body = raw.partition(b"\r\n\r\n")[2]
    # de-chunk
    data, rest = b"", body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        try:
            k = int(size, 16)
        except ValueError:
            break
        if k == 0:
            break
        data += rest[:k]
        rest = rest[k + 2:]
    msgs, _, _ = parse_sse(data)
    assert msgs[-1]["event"] == "canceled", [m["event"] for m in msgs][-5:]
    assert json.loads(msgs[-1]["data"])["compact_revision"] == str(rev)
    last = msgs[-1]["last_id"]
    revs = [e[3] for e in events_of(msgs)]
    assert revs and revs == sorted(revs)
    per_rev = {}
    for r in revs:
        per_rev[r] = per_rev.get(r, 0) + 1
    assert set(per_rev.values()) == {100}, "a revision was split or repeated"
    assert list(per_rev) == list(range(revs[0], revs[-1] + 1)), "a revision is missing"
    assert int(last) == revs[-1] < rev  # it had not seen everything
    with sse_get(kvgate.port, "key=slow/&prefix=true", {"Last-Event-ID": last}) as s:
        assert s.status == 410
        assert s.body_json()["compact_revision"] == str(rev)


@pytest.mark.timeout(30)
def test_sse_resume_point_ahead_of_the_store(kvgate):
    """A Last-Event-ID this store never sent (its data dir was wiped or
    restored from an older backup): waiting for that revision would skip
    everything before it, so the answer is etcd's future-revision error and
    the client starts over."""
    c = kvgate.client()
    c.put("f", "1")  # revision 2
    for hdr, query in (({"Last-Event-ID": "50"}, "key=f"), ({}, "key=f&last_event_id=50")):
        with sse_get(kvgate.port, query, hdr) as s:
            assert s.status == 400, s.status
            body = s.body_json()
            assert body["code"] == 11 and "future revision" in body["error"], body
    with Stream(kvgate.port, "/v3/watch", {"create_request": {"key": b64("f")}},
                headers={"Accept": "text/event-stream", "Last-Event-ID": "50"}) as s:
        assert s.status == 400
    # the current revision itself is a fine resume point; start_revision may be ahead
    with sse_get(kvgate.port, "key=f", {"Last-Event-ID": "2"}) as s:
        assert s.status == 200
    with sse_get(kvgate.port, "key=f&start_revision=50") as s:
        assert s.status == 200


@pytest.mark.timeout(60)
def test_sse_post_several_watches_resume_respects_each_start(kvgate):
    """Last-Event-ID on a POST stream of several watches: each watch goes on
    at max(its start_revision, id + 1), so a watch that starts later than the
    id does not get events from before its start."""
    c = kvgate.client()
    for i in range(5):
        c.put("a", str(i))          # revisions 2..6
    for i in range(5):
        c.put("b", str(i))          # revisions 7..11
    body = (b'{"create_request":{"key":"YQ==","start_revision":2}}'
            b'{"create_request":{"key":"Yg==","start_revision":9}}')
    with Stream(kvgate.port, "/v3/watch", body,
                headers={"Accept": "text/event-stream", "Last-Event-ID": "3"}) as s:
        msgs = s.wait_sse(lambda m: len(events_of(m)) >= 6, 10)
        s.quiet(0.5, 3)
        msgs = s.sse()[0]
    got = sorted((unb64(e[1]) if isinstance(e[1], str) else e[1], e[3]) for e in events_of(msgs))
    assert [rev for _, rev in got] == [4, 5, 6, 9, 10, 11], got
    ids = [int(m["id"]) for m in msgs if m["id"] is not None]
    assert ids == sorted(ids) and ids[0] == 3 and ids[-1] == 11, ids


@pytest.mark.timeout(90)
def test_sse_post_fragment_parts_carry_no_id(kvgate):
    """fragment on an SSE stream: one message per part, "fragment": true on
    all but the last, and an id only on the last (the resume point is the
    whole revision)."""
    c = kvgate.client(timeout=30)
    big = lambda tag: {"success": [{"request_put": {"key": b64("f%02d" % i), "value": b64(tag * 100000)}}
                                   for i in range(12)]}
    body = {"create_request": {"key": b64("f"), "range_end": b64("g"), "prev_kv": True, "fragment": True}}
    with Stream(kvgate.port, "/v3/watch", body, headers={"Accept": "text/event-stream"}, timeout=30) as s:
        s.wait_sse(lambda m: len(m) >= 1, 10)
        c.txn(big("a"))
        c.txn(big("b"))
        s.wait_sse(lambda m: len(events_of(m)) >= 24, 30)
        msgs = [m for m in s.sse()[0] if m["event"] == "message"]
    parts = [(json.loads(m["data"]).get("fragment", False), m["id"]) for m in msgs]
    # first txn: one message; second: 10 events with fragment, then 2
    assert [len(json.loads(m["data"])["events"]) for m in msgs] == [12, 10, 2], parts
    assert parts[1][0] is True and parts[2][0] is False, parts
    # the raw id lines: none on the fragment, the revision on the last part
    raw = s.data.decode()
    assert raw.count("\nid: 3\n") == 1 and "id: 2\n" in raw, raw[:200]
