"""kvgate's limits on bad input (README "Limits", the flags table): each
one answered with a clear status and an etcd-style error body, and the
defaults changing no answer etcd gives.

  --max-json-depth          deeper bodies 400 (code 3) before any parser;
                            default 2048 (what jansson parses anyway), past
                            Go's 10000 etcd's own "exceeded max depth"
  --max-key-bytes           keys / range ends, txns included (default: off)
  --max-value-bytes         put values, txns included (default: off)
  --max-watches-per-stream  creates in one POST /v3/watch body, 400 beyond
  --max-connections         a connection past it gets 503 code 14
  --connection-timeout      also the time to receive a whole request: slow
                            clients (headers or body byte by byte) are cut,
                            requests being served and watch streams are not
"""
import json
import socket
import threading
import time

import pytest

from kvtest import b64


def err_body(r):
    j = r.json()
    assert set(j) == {"error", "message", "code"}, j
    assert j["error"] == j["message"], j
    return j


def deep(levels, inner="1"):
    """A range body whose unknown field nests `levels` levels in all."""
    n = levels - 1
    return '{"key":"YQ==","x":' + "[" * n + inner + "]" * n + "}"


# ---- JSON depth ---------------------------------------------------------------

def test_depth_default_keeps_answers(kvgate):
    c = kvgate.client()
    # (jansson counts a scalar as a level: 2047 containers around one)
    assert c.post("/v3/kv/range", deep(2047)).status == 200
    assert c.post("/v3/kv/range", deep(2048, inner="")).status == 200
    r = c.post("/v3/kv/range", deep(2049))
    assert r.status == 400, r
    j = err_body(r)
    assert j["code"] == 3 and "--max-json-depth" in j["error"], j
    # beyond Go's limit: etcd's own answer, and a megabyte of '[' is cheap
    r = c.post("/v3/kv/range", "[" * (1 << 20))
    assert r.status == 400 and err_body(r)["error"] == "exceeded max depth", r
    # brackets in strings do not count
    body = {"key": b64("a"), "value": b64("[" * 5000)}
    assert c.post("/v3/kv/put", body).status == 200


@pytest.mark.parametrize("path", ["/v3/kv/range", "/v3/kv/txn", "/v3/lease/grant",
                                  "/v3/watch", "/v3/maintenance/status"])
def test_depth_flag(kvgate_factory, path):
    k = kvgate_factory(extra_args=["--max-json-depth", "8"])
    c = k.client()
    if path != "/v3/watch":  # (an accepted watch body opens a stream)
        r = c.post(path, '{"a":' * 7 + "1" + "}" * 7)
        assert r.status != 400 or "nested" not in r.raw.decode(), r
    r = c.post(path, '{"a":' * 9 + "1" + "}" * 9)
    assert r.status == 400, r
    j = err_body(r)
    assert j["code"] == 3 and "more than 8 levels" in j["error"], j
    assert c.get("/health").status == 200


# ---- key and value sizes ------------------------------------------------------

def test_key_value_limits_default_off(kvgate):
    c = kvgate.client()
    c.put("k" * 100000, "v" * 1000000)  # etcd takes these: so does kvgate
    assert c.range("k" * 100000)["kvs"][0]["key"] == b64("k" * 100000)


def test_key_value_limits(kvgate_factory):
    k = kvgate_factory(extra_args=["--max-key-bytes", "8", "--max-value-bytes", "16"])
    c = k.client()
    c.put("12345678", "x" * 16)

    def refused(path, body, what):
        r = c.post(path, body)
        assert r.status == 400, (path, body, r)
        j = err_body(r)
        assert j["code"] == 3 and what in j["error"], j

    refused("/v3/kv/put", {"key": b64("123456789"), "value": b64("x")}, "--max-key-bytes")
    refused("/v3/kv/put", {"key": b64("a"), "value": b64("x" * 17)}, "--max-value-bytes")
    refused("/v3/kv/range", {"key": b64("123456789")}, "--max-key-bytes")
    refused("/v3/kv/range", {"key": b64("a"), "range_end": b64("z" * 9)}, "--max-key-bytes")
    refused("/v3/kv/deleterange", {"key": b64("123456789")}, "--max-key-bytes")
    refused("/v3/kv/txn", {"compare": [{"key": b64("123456789"), "target": "VERSION"}]},
            "--max-key-bytes")
    refused("/v3/kv/txn", {"success": [{"request_txn": {"failure": [
        {"request_put": {"key": b64("a"), "value": b64("y" * 17)}}]}}]}, "--max-value-bytes")
    rev = c.revision()
    assert c.range("12345678")["kvs"][0]["value"] == b64("x" * 16)
    assert c.revision() == rev  # nothing refused was written


# ---- watches per stream -------------------------------------------------------

def test_watches_per_stream(kvgate_factory):
    k = kvgate_factory(extra_args=["--max-watches-per-stream", "3"])
    c = k.client()
    three = "".join('{"create_request":{"key":"%s"}}' % b64("k%d" % i) for i in range(3))
    four = three + '{"create_request":{"key":"eA=="}}'
    for hdrs in ({}, {"Accept": "text/event-stream"}):
        r = c.request("POST", "/v3/watch", four, hdrs)
        assert r.status == 400, r
        j = err_body(r)
        assert j["code"] == 3 and "--max-watches-per-stream" in j["error"], j
    # three are fine: the stream starts (read its first line, then leave)
    s = socket.create_connection(("127.0.0.1", k.port), timeout=10)
    try:
        body = three.encode()
        s.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        got = b""
        while b'"created":true' not in got:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
    finally:
        s.close()


# ---- connections ----------------------------------------------------------------

def test_connection_past_limit_is_refused(kvgate_factory):
    k = kvgate_factory(extra_args=["--max-connections", "4"])
    held = []
    try:
        for _ in range(4):
            held.append(socket.create_connection(("127.0.0.1", k.port), timeout=10))
        time.sleep(0.3)
        s = socket.create_connection(("127.0.0.1", k.port), timeout=10)
        s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        s.close()
        head, body = got.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 503"), got
        assert b"Retry-After: 1" in head and b"Connection: close" in head, head
        j = json.loads(body)
        assert j["code"] == 14 and "--max-connections 4" in j["error"], j
    finally:
        for h in held:
            h.close()
    time.sleep(0.3)
    assert k.client().get("/version").status == 200


# ---- slow clients -----------------------------------------------------------------

def trickle(port, data, gap, budget):
    """Sends data one byte per `gap` seconds for at most `budget` seconds.
    Returns the seconds until the server closed the connection, or None if
    it was still open at the end."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t0 = time.monotonic()
    try:
        for b in data:
            if time.monotonic() - t0 > budget:
                return None
            s.sendall(bytes([b]))
            time.sleep(gap)
        s.settimeout(budget)
        while s.recv(4096):
            pass
        return time.monotonic() - t0
    except (BrokenPipeError, ConnectionResetError):
        return time.monotonic() - t0
    finally:
        s.close()


@pytest.mark.timeout(60)
def test_slow_loris_is_cut(kvgate_factory):
    k = kvgate_factory(extra_args=["--connection-timeout", "2"])
    head = b"POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200\r\n\r\n"
    res = {}

    def run(name, data):
        res[name] = trickle(k.port, data, 0.2, 12)

    ts = [threading.Thread(target=run, args=("headers", head * 3)),
          threading.Thread(target=run, args=("body", head + b" " * 200))]
    for t in ts:
        t.start()
    # meanwhile, a watch stream lives on past the timeout
    w = socket.create_connection(("127.0.0.1", k.port), timeout=10)
    body = b'{"create_request":{"key":"YQ=="}}'
    w.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    for t in ts:
        t.join()
    for name in ("headers", "body"):
        assert res[name] is not None and res[name] < 6, (name, res)
    k.client().put("a", "1")
    got = b""
    w.settimeout(10)
    while b'"events"' not in got:
        chunk = w.recv(4096)
        assert chunk, got
        got += chunk
    w.close()
    # a keep-alive client that is merely slow between requests is fine
    s = socket.create_connection(("127.0.0.1", k.port), timeout=10)
    for _ in range(2):
        s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(1)
    s.close()


# ---- query strings ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/version", "/metrics", "/kvgate.js", "/v3/watch"])
def test_many_query_args_answered(kvgate, path):
    """Regression (found by test_barrage): 200 query arguments overflowed
    libmicrohttpd's connection pool and the request hung without an answer
    until the idle timeout.  Now: 414 with a JSON error, at once."""
    s = socket.create_connection(("127.0.0.1", kvgate.port), timeout=10)
    try:
        q = "&".join(["a=b"] * 200)
        s.sendall(("GET %s?key=YQ&%s HTTP/1.1\r\nHost: x\r\n\r\n" % (path, q)).encode())
        got = b""
        t0 = time.monotonic()
        while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        assert time.monotonic() - t0 < 5
    finally:
        s.close()
    head, body = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 414"), got[:300]
    j = json.loads(body)
    assert j["code"] == 3 and "too many query parameters" in j["error"], j
    # a dozen parameters (an SSE watch's worth, plus a cache buster) are fine
    c = kvgate.client()
    assert c.get("/version?" + "&".join("p%d=1" % i for i in range(16))).status == 200
