"""Deliberate exceptions to "answer exactly as etcd 3.4": the one list.

The differential suite (tests/diff) leaves these requests out; here each
one is checked against kvgate's documented answer.  Each entry: the
request, what etcd 3.4.23 does, what kvgate answers, and why.

1. Body over the HTTP body cap, (--max-request-bytes + 512 KiB) * 4/3 +
   64 KiB (about 2.7 MiB by default: etcd's gRPC receive limit inflated by
   base64 and JSON).  etcd 3.4: reads it all, then 429 {"error": "grpc:
   received message larger than max (N vs. 2097152)", "code": 8}.
   kvgate: 413 with the same kind of error (code 8, "grpc: received message
   larger than max ..."), as soon as the Content-Length is seen (a chunked
   body: at its end, discarded as it arrives); nothing is written.
                                                     (README "Limits")
   Why: 413 is the status HTTP clients and proxies understand; no
   buffering of a body that will be refused.  (A decoded request over
   --max-request-bytes but under the cap gets etcd's own 400 "request is
   too large": that is in the diff suite, case put_too_large.)
2. CORS preflight: see test_cors.py.  etcd 3.4 answers every OPTIONS with
   Access-Control-Allow-Origin: *; kvgate has --cors-origins, answers 403
   without ACAO for other origins and 204 without an Origin.
   Why: a browser dashboard must be restrictable to its origins.
3. Range with a sort_target outside the enum (e.g. 7), alone, with a
   sort_order, or inside a txn.  etcd 3.4: panics ("unexpected sort
   target") and the whole etcd process exits (status 2).  kvgate: 400
   {"error": "etcdserver: invalid sort option", "code": 3}, as etcd 3.5.
   Why: a request must never kill the server.
4. Txn with a null element in compare/success/failure ({"success":[null]}).
   etcd 3.4: the gateway handler panics and the connection is dropped
   without an answer.  kvgate: null is the empty message (openapi.yaml:
   "null stands for an absent field"), so the answer is etcd's own answer
   to the same txn with {} in place of null (checked against a live etcd,
   or the golden answer recorded from it).
   Why: an answer beats a dropped connection; {} is what null means
   everywhere else in etcd's JSON.
5. Wrong method on a known path (GET /v3/kv/range, POST /version, ...).
   etcd 3.4: 405, text/plain "Method Not Allowed\n", no Allow header.
   kvgate: 405 (the status is still compared in tests/diff,
   misc_wrong_methods) with an Allow header and an etcd-style JSON error,
   code 12 (UNIMPLEMENTED).                                      (README)
   Why: HTTP requires Allow on a 405; clients parse one error format.
6. /v3alpha prefix.  etcd 3.4: 404 "404 page not found".  kvgate: served,
   the same answers as /v3 (README: "etcd 3.3's prefix").
   Why (the team's): old 3.3 clients keep working.  NOTE: this is a
   superset of etcd 3.4 rather than an improvement of one of its answers;
   a client that probes /v3alpha to detect the server version would see a
   3.3-style server.  Kept because README documents it.
7. Txn whose ops delete a key through a from-key or all-keys range (range_end
   "\0", which etcd's duplicate-key check does not catch) and then
   put the same key with ignore_value or ignore_lease.  etcd 3.4: the put
   finds no key while applying, "unexpected error during txn" panics, and
   the process exits.  kvgate: the txn fails as a whole with what etcd
   answers when the key is missing before the txn, 400 {"error":
   "etcdserver: key not found", "code": 3}; nothing is written; kvgate
   keeps serving.  (Not documented by the gateway yet: this is the test
   suite's proposal.)  Found by tests/diff/test_random_diff.py.
   Why: a request must never kill the server, and an I/O error would be a
   lie.
8. GET / and the files of web/ (/kvgate.js, /app.js, ...).  etcd 3.4: 404
   "404 page not found" (POST /: 404 too).  kvgate: the dashboard, 200
   text/html at /, the JavaScript client at /kvgate.js; POST / is a wrong
   method (405 JSON, as 5); other unknown paths stay etcd's 404; no path
   reaches a file outside web/.        (README: "pages served by kvgate (/,
   or any file of web/)"; not yet in its "Differences" list.)
   Why: a browser pointed at kvgate gets a live key browser without a
   separate web server.
9. Alarm with a numeric action outside the enum ({"action": 5}).  etcd
   3.4: the apply returns no response, the server dereferences it and the
   whole etcd process exits (nil pointer panic).  kvgate: 200 {} like every
   other alarm request (alarms are not kept, README "One member").  A
   quoted unknown name ("5", "BOGUS") is refused 400 by both, as etcd.
   Why: a request must never kill the server.
"""
import json
import socket
import time

import pytest

from kvtest import b64, Etcd
from kvtest.cases import answer
from kvtest.client import Client, Resp
from kvtest.rawhttp import post_big

MIB = 1024 * 1024


def assert_error(r, status, code):
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error", "message", "code"}, body
    assert body["code"] == code and body["error"] == body["message"] and body["error"], body
    return body


# ---- 1. body over the HTTP cap -----------------------------------------------
def cap(max_request_bytes=3 * MIB // 2):
    return (max_request_bytes + 512 * 1024) * 4 // 3 + 64 * 1024


def big_post(k, path, obj):
    st, hdrs, raw = post_big(k.port, path, json.dumps(obj).encode())
    return Resp(st, hdrs, raw)


def assert_413(r):
    b = assert_error(r, 413, 8)
    assert b["error"].startswith("grpc: received message larger than max"), b


@pytest.mark.timeout(60)
def test_body_over_default_cap_413_and_nothing_written(kvgate):
    c = kvgate.client(timeout=30)
    c.put("a", "1")
    r = big_post(kvgate, "/v3/kv/put", {"key": b64("big"), "value": b64("x" * (cap() * 3 // 4 + 1024))})
    assert_413(r)
    assert c.revision() == 2
    assert "kvs" not in c.range("big")
    # under the cap and under --max-request-bytes: fine
    r = c.post("/v3/kv/put", {"key": b64("ok"), "value": b64("y" * MIB)})
    assert r.status == 200, r
    assert c.range("ok", count_only=True)["count"] == "1"


@pytest.mark.timeout(60)
def test_body_over_configured_cap(kvgate_factory):
    k = kvgate_factory(extra_args=["--max-request-bytes", "4096"])
    c = k.client()
    c.put("a", "1")
    limit = cap(4096)
    # decoded over --max-request-bytes, body under the cap: etcd's 400
    r = c.post("/v3/kv/put", {"key": b64("mid"), "value": b64("x" * 8000)})
    b = assert_error(r, 400, 3)
    assert b["error"] == "etcdserver: request is too large", b
    # body over the cap: 413, for a put and for a txn
    for path, body in [("/v3/kv/put", {"key": b64("big"), "value": b64("x" * limit)}),
                       ("/v3/kv/txn", {"success": [{"request_put": {"key": b64("t%d" % i), "value": b64("v" * 1000)}}
                                                   for i in range(limit // 1000)]})]:
        assert len(json.dumps(body)) > limit
        assert_413(big_post(k, path, body))
    assert c.revision() == 2
    assert c.put("small", "x" * 100)["header"]["revision"] == "3"


@pytest.mark.timeout(60)
def test_413_is_sent_before_the_body(kvgate):
    """Content-Length of 100 MiB, a few bytes sent: the 413 comes at once."""
    s = socket.create_connection(("127.0.0.1", kvgate.port), timeout=10)
    try:
        s.sendall(b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n{\"key\":\"YQ==\",\"value\":\"" % (100 * MIB))
        t = time.monotonic()
        s.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pytest.fail("no answer within 10 s: kvgate waits for the body")
        assert data.startswith(b"HTTP/1.1 413"), data[:200]
        assert time.monotonic() - t < 5
    finally:
        s.close()
    assert kvgate.client().revision() == 1


@pytest.mark.timeout(60)
def test_chunked_body_over_the_cap(kvgate_factory):
    k = kvgate_factory(extra_args=["--max-request-bytes", "4096"])
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", k.port, timeout=20)
    body = json.dumps({"key": b64("big"), "value": b64("x" * cap(4096))}).encode()

    def chunks():
        for i in range(0, len(body), 16384):
            yield body[i:i + 16384]
    try:
        conn.request("POST", "/v3/kv/put", chunks(), {"Content-Type": "application/json"},
                     encode_chunked=True)
        r = conn.getresponse()
        raw = r.read()
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("connection dropped instead of a 413")
    finally:
        conn.close()
    assert r.status == 413, (r.status, raw)
    assert json.loads(raw)["code"] == 8
    assert k.client().revision() == 1


# ---- 3. sort_target outside the enum -----------------------------------------
INVALID_SORT = [
    ("/v3/kv/range", {"key": b64("a"), "sort_target": 7}),
    ("/v3/kv/range", {"key": b64("a"), "sort_target": 7, "sort_order": "ASCEND"}),
    ("/v3/kv/range", {"key": b64("a"), "range_end": "AA==", "sort_target": -1, "sort_order": 2}),
    ("/v3/kv/txn", {"success": [{"request_put": {"key": b64("t"), "value": b64("1")}},
                                {"request_range": {"key": b64("a"), "sort_target": 9}}]}),
]


@pytest.mark.parametrize("path,body", INVALID_SORT, ids=["target7", "target7-asc", "target-1", "in-txn"])
def test_invalid_sort_target(kvgate, path, body):
    c = kvgate.client()
    c.put("a", "1")
    r = c.post(path, body)
    b = assert_error(r, 400, 3)
    assert b["error"] == "etcdserver: invalid sort option", b
    assert kvgate.running()
    assert c.revision() == 2, "the failed txn wrote something"


# ---- 4. null elements in txn arrays ------------------------------------------
NULL_TXNS = [
    ('{"success":[null]}', '{"success":[{}]}'),
    ('{"failure":[null],"compare":[{"key":"YQ==","target":"VERSION","result":"EQUAL","version":"9"}]}',
     '{"failure":[{}],"compare":[{"key":"YQ==","target":"VERSION","result":"EQUAL","version":"9"}]}'),
    ('{"compare":[null]}', '{"compare":[{}]}'),
    ('{"success":[{"request_put":{"key":"Yg==","value":"MQ=="}},null]}',
     '{"success":[{"request_put":{"key":"Yg==","value":"MQ=="}},{}]}'),
]
# etcd 3.4.23's answers to the {} forms (recorded; used when no etcd is installed)
NULL_TXN_ETCD = [
    {"status": 400, "content_type": "application/json", "json": {"error": "etcdserver: key not found", "message": "etcdserver: key not found", "code": 3}},
    {"status": 400, "content_type": "application/json", "json": {"error": "etcdserver: key not found", "message": "etcdserver: key not found", "code": 3}},
    {"status": 400, "content_type": "application/json", "json": {"error": "etcdserver: key is not provided", "message": "etcdserver: key is not provided", "code": 3}},
    {"status": 400, "content_type": "application/json", "json": {"error": "etcdserver: key not found", "message": "etcdserver: key not found", "code": 3}},
]


@pytest.fixture(scope="module")
def etcd_answers_for_empty_forms():
    import os
    if not os.path.exists(os.environ.get("ETCD_BIN", "/usr/bin/etcd")):
        return NULL_TXN_ETCD
    e = Etcd()
    try:
        e.start()
        c = e.client()
        c.put("a", "1")
        out = [answer(c.post("/v3/kv/txn", empty)) for _, empty in NULL_TXNS]
    finally:
        e.cleanup()
    assert out == NULL_TXN_ETCD, "etcd's answers changed: update NULL_TXN_ETCD"
    return out


@pytest.mark.parametrize("i", range(len(NULL_TXNS)), ids=["success", "failure", "compare", "after-put"])
def test_txn_null_element_is_empty_message(kvgate, etcd_answers_for_empty_forms, i):
    c = kvgate.client()
    c.put("a", "1")
    r = c.post("/v3/kv/txn", NULL_TXNS[i][0])
    assert answer(r) == etcd_answers_for_empty_forms[i]
    assert kvgate.running()
    assert c.revision() == 2


def test_etcd_really_crashes_on_invalid_sort_target(etcd):
    """Keeps exception 3 honest: if a future etcd stops crashing, this
    request belongs in the differential suite instead."""
    c = etcd.client()
    c.put("a", "1")
    try:
        c.post("/v3/kv/range", {"key": b64("a"), "sort_target": 7})
    except Exception:
        pass
    etcd.proc.wait(10)
    assert etcd.proc.returncode not in (None, 0)


def test_etcd_really_drops_txn_with_null_element(etcd):
    c = Client("127.0.0.1", etcd.port, 10)
    with pytest.raises(Exception):
        c.post("/v3/kv/txn", '{"success":[null]}')


# ---- 5. wrong method ---------------------------------------------------------
WRONG_METHODS = [
    ("GET", "/v3/kv/range", "POST"), ("GET", "/v3/kv/put", "POST"), ("PUT", "/v3/kv/txn", "POST"),
    ("DELETE", "/v3/kv/deleterange", "POST"), ("PATCH", "/v3/kv/compaction", "POST"),
    ("GET", "/v3beta/kv/range", "POST"), ("POST", "/version", "GET"), ("POST", "/health", "GET"),
    ("PUT", "/version", "GET"),
]


@pytest.mark.parametrize("method,path,allowed", WRONG_METHODS,
                         ids=["%s %s" % (m, p) for m, p, _ in WRONG_METHODS])
def test_wrong_method_405_json_with_allow(kvgate, method, path, allowed):
    c = kvgate.client()
    c.put("a", "1")
    r = c.request(method, path, {"key": b64("a"), "value": b64("2")} if method != "GET" else None)
    assert_error(r, 405, 12)
    assert allowed in r.headers.get("allow", "").upper().replace(" ", "").split(","), r.headers
    assert c.revision() == 2 and c.range("a")["kvs"][0]["value"] == b64("1")


def test_wrong_method_head(kvgate):
    r = kvgate.client().request("HEAD", "/v3/kv/range")
    assert r.status == 405 and r.raw == b"", r
    assert "POST" in r.headers.get("allow", "").upper(), r.headers


# ---- 6. /v3alpha -------------------------------------------------------------
V3ALPHA_SEQ = [
    ("kv/put", {"key": b64("a"), "value": b64("1")}),
    ("kv/put", {"key": b64("a"), "value": b64("2"), "prev_kv": True}),
    ("kv/range", {"key": b64("a")}),
    ("kv/txn", {"compare": [{"key": b64("a"), "target": "VERSION", "result": "EQUAL", "version": 2}],
                "success": [{"request_put": {"key": b64("b"), "value": b64("2")}}]}),
    ("kv/deleterange", {"key": b64("a"), "prev_kv": True}),
    ("kv/compaction", {"revision": 3}),
    ("kv/range", {"key": b64("a"), "revision": 2}),
    ("kv/range", {"key": "AA==", "range_end": "AA=="}),
    ("kv/put", {"key": ""}),
    ("kv/nope", {}),
]


def test_v3alpha_answers_as_v3(kvgate_factory):
    a, b = kvgate_factory(), kvgate_factory()
    ca, cb = a.client(), b.client()
    for path, body in V3ALPHA_SEQ:
        ra, rb = answer(ca.post("/v3alpha/" + path, body)), answer(cb.post("/v3/" + path, body))
        assert ra == rb, (path, body, ra, rb)
    assert ca.revision() == 5


# ---- 7. ignore_value after a from-key delete in the same txn -----------------
IGNORE_AFTER_DELETE = [
    {"success": [{"request_delete_range": {"key": "AA==", "range_end": "AA=="}},
                 {"request_put": {"key": b64("b"), "ignore_value": True}}]},
    {"success": [{"request_delete_range": {"key": b64("a"), "range_end": "AA=="}},
                 {"request_put": {"key": b64("b"), "value": b64("x"), "ignore_lease": True}}]},
    {"compare": [{"key": b64("b"), "target": "VERSION", "result": "EQUAL", "version": "9"}],
     "failure": [{"request_delete_range": {"key": b64("b"), "range_end": "AA==", "prev_kv": True}},
                 {"request_put": {"key": b64("b"), "ignore_value": True, "prev_kv": True}}]},
]


@pytest.mark.parametrize("body", IGNORE_AFTER_DELETE, ids=["all-keys", "from-key-ignore-lease", "failure-branch"])
def test_ignore_value_after_from_key_delete_in_txn(kvgate, body):
    c = kvgate.client()
    c.put("a", "1")
    c.put("b", "2")
    r = c.post("/v3/kv/txn", body)
    b = assert_error(r, 400, 3)
    assert b["error"] == "etcdserver: key not found", b
    assert kvgate.running()
    assert c.revision() == 3, "the failed txn wrote something"
    assert len(c.range("\0", "\0")["kvs"]) == 2
    assert c.put("c", "3")["header"]["revision"] == "4"


def test_etcd_really_crashes_on_ignore_value_after_from_key_delete(etcd):
    c = etcd.client()
    c.put("a", "1")
    c.put("b", "2")
    try:
        c.post("/v3/kv/txn", IGNORE_AFTER_DELETE[0])
    except Exception:
        pass
    etcd.proc.wait(10)
    assert etcd.proc.returncode not in (None, 0)


# ---- 8. the dashboard at / ---------------------------------------------------
def test_dashboard_and_client_served(kvgate):
    c = kvgate.client()
    r = c.get("/")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html"), r
    assert b"<html" in r.raw.lower()
    r = c.get("/kvgate.js")
    assert r.status == 200 and "javascript" in r.headers["content-type"], r
    assert_error(c.post("/", {}), 405, 12)
    r = c.get("/no-such-file.html")
    assert (r.status, r.raw) == (404, b"404 page not found\n"), r


@pytest.mark.parametrize("path", ["/../Makefile", "/%2e%2e/Makefile", "/..%2fMakefile", "/%2e%2e%2fMakefile",
                                  "/web/../Makefile", "//etc/passwd", "/..%5cMakefile", "/%2e%2e/%2e%2e/etc/passwd",
                                  "/kvgate.js/../../Makefile", "/.%2e/Makefile"])
def test_no_file_outside_web(kvgate, path):
    from kvtest import REPO
    import os
    with open(os.path.join(REPO, "Makefile"), "rb") as f:
        makefile = f.read()
    c = kvgate.client()
    for _ in range(3):  # follow etcd-style 301s to the cleaned path
        r = c.get(path)
        if r.status != 301:
            break
        path = r.headers["location"]
    assert r.status in (301, 400, 404), (path, r)
    assert makefile[:40] not in r.raw and b"root:" not in r.raw, (path, r.raw[:200])


# ---- 9. alarm action outside the enum ----------------------------------------
@pytest.mark.parametrize("action", [5, -1, 3])
def test_alarm_action_outside_enum(kvgate, action):
    c = kvgate.client()
    r = c.post("/v3/maintenance/alarm", {"action": action, "alarm": 1})
    assert r.status == 200 and r.json() == {}, r
    b = assert_error(c.post("/v3/maintenance/alarm", {"action": str(action)}), 400, 3)
    assert b["error"] == 'unknown value "%d" for enum etcdserverpb.AlarmRequest_AlarmAction' % action, b
    assert kvgate.running() and c.revision() == 1
