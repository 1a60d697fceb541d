"""openapi.yaml against the real thing.

Every answer of kvgate (KVGATE_BIN, default bin/kvgate) and of a real etcd
3.4 (ETCD_BIN, default /usr/bin/etcd; the reference the spec was written
from) is checked against openapi.yaml: the status must be documented for
that path and method, the Content-Type must be one the spec lists, and the
body must validate against the schema there (JSON Schema 2020-12, $refs
resolved in the spec).  The requests cover every endpoint, every prefix
and every documented status; test_zz_coverage checks that they did.  For kvgate also:
every route in the spec is served (not 404) and every route kvgate serves
among etcd's known gateway paths is in the spec.

The servers are started here (free loopback port, temporary data dir,
killed at teardown); this file needs nothing but python3-jsonschema and
python3-yaml (and node + npm packages for test_spec_is_valid_openapi).
"""
import base64
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import jsonschema
import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SPEC_PATH = os.path.join(REPO, "openapi.yaml")
with open(SPEC_PATH) as f:
    SPEC = yaml.safe_load(f)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Documented statuses no request here can provoke on a healthy server.
UNTESTABLE = {("/health", "get", "503"),
              # 404 only from a build without web/index.html (the dashboard)
              ("/", "get", "404"), ("/", "head", "404")}
# Files kvgate serves itself (gateway/static_http.c); etcd has none of them.
KVGATE_FILES = ("/", "/kvgate.js", "/openapi.yaml")


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


# ---- the spec ---------------------------------------------------------------

def deref(node):
    while isinstance(node, dict) and "$ref" in node:
        assert node["$ref"].startswith("#/"), node["$ref"]
        target = SPEC
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def schema_validator(schema):
    # The whole spec is the resolution scope, so "#/components/..." works.
    resolver = jsonschema.RefResolver(base_uri="", referrer=SPEC)
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


def spec_routes():
    return sorted((p, m) for p, item in SPEC["paths"].items() for m in item if m in METHODS)


def documented(path, method, status):
    """The spec's response object for this answer, and the key it was found
    under (the status, or "default")."""
    op = SPEC["paths"].get(path, {}).get(method.lower())
    assert op is not None, "%s %s is not in openapi.yaml" % (method, path)
    responses = op["responses"]
    if str(status) in responses:
        return deref(responses[str(status)]), str(status)
    if "default" in responses and status >= 400:
        return deref(responses["default"]), "default"
    raise AssertionError("%s %s answered %d, which openapi.yaml does not document (it has %s)"
                         % (method, path, status, sorted(responses)))


def check_against_spec(path, method, status, ctype, raw, headers=None, stream=False):
    """Asserts the answer matches the spec (status, required headers when
    headers (lower-case names) are given, Content-Type, body); returns the
    parsed JSON body or None.  stream: a 200 body is JSON lines (a list is
    returned); text/event-stream bodies are always parsed as SSE (a list of
    events is returned)."""
    resp, key = documented(path, method, status)
    for name, h in (resp.get("headers") or {}).items():
        h = deref(h)
        if headers is None or name.lower() not in headers:
            assert headers is None or not h.get("required"), \
                "%s %s %d: header %s missing" % (method, path, status, name)
            continue
        errs = list(schema_validator(h["schema"]).iter_errors(headers[name.lower()]))
        assert not errs, "%s %s %d: header %s: %s" % (method, path, status, name, errs[0].message)
    content = resp.get("content")
    if not content:
        assert raw == b"", "%s %s %d: the spec says no body, got %r" % (method, path, status, raw[:200])
        return None
    media = (ctype or "").split(";")[0].strip().lower()
    assert media in content, "%s %s %d: Content-Type %r, the spec lists %s" % (
        method, path, status, ctype, sorted(content))
    mt = content[media]
    if media == "text/event-stream":
        events = parse_sse(raw)
        for ev in events:
            if "data" in ev:
                validate(path, method, status, key, mt["x-sse-data"], json.loads(ev["data"]))
        return events
    if stream:
        # One JSON value per line (etcd's gateway stream framing); a stream
        # cut while reading may end in part of a line, which is dropped.
        segs = raw.split(b"\n")
        tail = segs.pop()
        lines = [json.loads(line) for line in segs if line.strip()]
        if tail.strip():
            try:
                lines.append(json.loads(tail))
            except ValueError:
                pass
        for body in lines:
            validate(path, method, status, key, mt["schema"], body)
        return lines
    if (mt.get("schema") or {}).get("type") == "string":  # files: text as is
        validate(path, method, status, key, mt["schema"], raw.decode("utf-8"))
        return None
    body = json.loads(raw.decode("utf-8"))
    validate(path, method, status, key, mt["schema"], body)
    return body


def validate(path, method, status, key, schema, body):
    errors = sorted(schema_validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    # For oneOf/anyOf failures, name the deepest reason, not just "not valid
    # under any of the given schemas".
    errors = [jsonschema.exceptions.best_match([e]) for e in errors]
    assert not errors, "%s %s %d (%s): body does not match openapi.yaml:\n%s\nbody: %s" % (
        method, path, status, key,
        "\n".join("  at /%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:300])
                  for e in errors[:10]),
        json.dumps(body)[:1000])


def parse_sse(raw):
    """Server-Sent Events -> [{"event", "id", "data", "retry", "comment"}]
    (only the fields present); a trailing incomplete event is dropped."""
    events = []
    text = raw.decode("utf-8").replace("\r\n", "\n")
    for block in text.split("\n\n")[:-1]:
        ev = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comment"] = line[1:]
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                ev["data"] = ev["data"] + "\n" + value if "data" in ev else value
            else:
                ev[name] = value
        if ev:
            events.append(ev)
    return events


# ---- servers ------------------------------------------------------------------

def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def raw_request(port, method, path, body=None, headers=None, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class Stream:
    """A request whose answer is a stream that stays open: read_until()
    reads what has come so far, until a predicate on the bytes holds."""

    def __init__(self, port, method, path, body=None, headers=None, timeout=10.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
        self.conn.request(method, path, body=body, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.raw = b""
        if self.status != 200:
            self.raw = self.resp.read()

    def read_until(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        self.conn.sock.settimeout(0.2)
        while not pred(self.raw):
            if time.monotonic() > deadline:
                raise AssertionError("stream: timed out waiting; got %r" % self.raw[-2000:])
            try:
                chunk = self.resp.read1(65536)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                break
            self.raw += chunk
        return self.raw

    def close(self):
        self.conn.close()


def probe_status(port, method, path, body=None, headers=None, timeout=5.0):
    """The status of an answer, without reading its body (it may be an
    endless stream)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        raw = r.read(2000) if r.status != 200 or r.getheader("Content-Length") else b""
        return r.status, raw
    finally:
        conn.close()


def post_oversized(port, path, nbytes, timeout=20.0):
    """POSTs a valid-JSON body of about nbytes, and stops sending as soon as
    the server answers (it may answer before reading the body).  Returns
    (status, headers, body)."""
    value = b64(b"x" * (nbytes * 3 // 4))
    body = json.dumps({"key": b64("big"), "value": value}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n\r\n" % (path, len(body))).encode())
        sent, deadline = 0, time.monotonic() + timeout
        while sent < len(body) and time.monotonic() < deadline:
            r, w, _ = select.select([s], [s], [], 1.0)
            if r:
                break
            if w:
                try:
                    sent += s.send(body[sent:sent + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    break
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        s.close()


class Server:
    """A kvgate or etcd child process on a loopback port.  kvgate gets port
    0 and says which port it took ("kvgate listening on http://HOST:PORT"
    on stdout), so it never races other tests for a free port."""

    def __init__(self, kind, argv_fn, ready_path):
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix="openapi-%s-" % kind,
                                    dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        self.port = 0 if kind == "kvgate" else free_port()
        self.errlog = os.path.join(self.tmp, "stderr")
        self.outlog = os.path.join(self.tmp, "stdout")
        argv = argv_fn(self.port, os.path.join(self.tmp, "data"))
        with open(self.errlog, "wb") as fe, open(self.outlog, "wb") as fo:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                         cwd=self.tmp)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s at start:\n%s"
                                   % (kind, self.proc.returncode, self.log()))
            if not self.port:
                with open(self.outlog, "rb") as f:
                    m = re.search(rb"listening on http://127\.0\.0\.1:([0-9]+)\n", f.read())
                if m:
                    self.port = int(m.group(1))
            try:
                if self.port:
                    st, _, _ = raw_request(self.port, "GET", ready_path, timeout=1.0)
                    if st == 200:
                        break
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s not ready in 30s:\n%s" % (kind, self.log()))
            time.sleep(0.05)
        self.seen = set()  # (path, method, status) answered

    def log(self):
        try:
            with open(self.errlog, "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                rc = "killed after SIGTERM timeout"
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- requests --
    def expect(self, status):
        return status.get(self.kind) if isinstance(status, dict) else status

    def call(self, method, path, body=None, status=200, code=None, headers=None, spec_path=None):
        """Sends a request, checks the answer against the spec and the
        expected status (an int, or {"kvgate": int, "etcd": int}) and, for
        errors, the gRPC code.  Returns the parsed body."""
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else \
            (body.encode() if isinstance(body, str) else body)
        st, hdrs, raw = raw_request(self.port, method, path, data, headers)
        return self.check(method, path, st, hdrs, raw, status, code, spec_path)

    def check(self, method, path, st, hdrs, raw, status=200, code=None, spec_path=None,
              stream=False):
        want = self.expect(status)
        assert st == want, "%s %s: want %s, got %d %r\n%s" % (
            method, path, want, st, raw[:500], self.log()[-1000:] if self.proc.poll() is not None else "")
        spec_path = spec_path or path.split("?")[0]
        self.seen.add((spec_path, method.lower(), str(st)))
        body = check_against_spec(spec_path, method, st, hdrs.get("content-type"), raw, hdrs,
                                  stream and st == 200)
        if st >= 400 and isinstance(body, dict) and "error" in body:
            assert body["error"] == body["message"], body
            if code is not None:
                assert body["code"] == code, body
        return body


ALLOWED_ORIGIN = "http://allowed.example:8080"


def kvgate_argv(port, data):
    return [kvgate_bin(), "--listen", "127.0.0.1:%d" % port, "--data-dir", data,
            "--cors-origins", ALLOWED_ORIGIN]


def kvgate_bin():
    return os.environ.get("KVGATE_BIN") or os.path.join(REPO, "bin", "kvgate")


def etcd_bin():
    return os.environ.get("ETCD_BIN") or "/usr/bin/etcd"


def etcd_argv(port, data):
    peer = free_port()
    c, p = "http://127.0.0.1:%d" % port, "http://127.0.0.1:%d" % peer
    return [etcd_bin(), "--name", "default", "--data-dir", data,
            "--listen-client-urls", c, "--advertise-client-urls", c,
            "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
            "--initial-cluster", "default=" + p, "--log-level", "error"]


@pytest.fixture(scope="module", params=["kvgate", "etcd"])
def srv(request):
    kind = request.param
    if kind == "kvgate":
        if not os.access(kvgate_bin(), os.X_OK):
            if os.environ.get("KVGATE_BIN"):
                pytest.fail("KVGATE_BIN=%s is not an executable" % kvgate_bin())
            pytest.skip("no %s yet (make)" % kvgate_bin())
        s = Server("kvgate", kvgate_argv, "/version")
    else:
        if not os.access(etcd_bin(), os.X_OK):
            if os.environ.get("KVTEST_REQUIRE_BINARIES") == "1":
                pytest.fail("no etcd at %s (make deps)" % etcd_bin())
            pytest.skip("no etcd at %s (make deps)" % etcd_bin())
        s = Server("etcd", etcd_argv, "/health")
    yield s
    try:
        rc = s.stop()
        if kind == "kvgate":
            assert rc in (0, -signal.SIGTERM), \
                "kvgate exited with %s on SIGTERM:\n%s" % (rc, s.log())
    finally:
        s.cleanup()


# ---- the spec itself ----------------------------------------------------------

def test_spec_is_valid_openapi():
    """The document is OpenAPI 3.1 (npm @seriousme/openapi-schema-validator)
    and every schema compiles under Ajv's strict mode."""
    if not os.path.isdir(os.path.join(REPO, "node_modules", "@seriousme")):
        pytest.fail("node_modules missing: run make deps")
    r = subprocess.run(["node", os.path.join(HERE, "validate.mjs"), SPEC_PATH],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_spec_schemas_are_valid_json_schema():
    for name, schema in SPEC["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)


# The v3lock and v3election services: etcd 3.4.23 serves them under /v3 and
# /v3beta only (its /v3alpha gateway predates them); so does kvgate.
NOT_ALPHA = ("/lock/", "/election/")


def test_spec_lists_every_prefix():
    kv = sorted(p[len("/v3"):] for p in SPEC["paths"] if p.startswith("/v3/"))
    for prefix in ("/v3beta", "/v3alpha"):
        want = [p for p in kv if prefix == "/v3beta" or not p.startswith(NOT_ALPHA)]
        other = sorted(p[len(prefix):] for p in SPEC["paths"] if p.startswith(prefix + "/"))
        assert kv and want == other, prefix


# ---- every endpoint, every documented status -------------------------------------

KV = ["/v3", "/v3beta", "/v3alpha"]
ETCD_LACKS = "/v3alpha/"  # etcd 3.4.23 no longer serves it; kvgate does


@pytest.fixture(params=KV)
def prefix(request, srv):
    if srv.kind == "etcd" and request.param + "/" == ETCD_LACKS:
        pytest.skip("etcd 3.4.23 does not serve %s" % request.param)
    return request.param


def put(srv, key, value="", prefix="/v3", **kw):
    return srv.call("POST", prefix + "/kv/put", dict(key=b64(key), value=b64(value), **kw))


def test_version(srv):
    v = srv.call("GET", "/version")
    assert v["etcdserver"].startswith("3.4.")


def test_health(srv):
    assert srv.call("GET", "/health")["health"] == "true"


def test_range(srv, prefix):
    p = "%s-range/" % prefix
    for k in ("a", "b", "c"):
        put(srv, p + k, "v-" + k)
    put(srv, p + "empty", "")
    r = srv.call("POST", prefix + "/kv/range", {"key": b64(p + "a")})
    assert r["count"] == "1" and r["kvs"][0]["value"] == b64("v-a")
    r = srv.call("POST", prefix + "/kv/range", {"key": b64(p + "empty")})
    assert "value" not in r["kvs"][0]
    r = srv.call("POST", prefix + "/kv/range", {"key": b64(p + "missing")})
    assert "kvs" not in r and "count" not in r
    # prefix, limit, sort (names), int64 as string
    end = p[:-1] + chr(ord(p[-1]) + 1)
    r = srv.call("POST", prefix + "/kv/range", {"key": b64(p), "range_end": b64(end), "limit": "2",
                                                "sort_order": "DESCEND", "sort_target": "KEY"})
    assert r["more"] is True and r["count"] == "4" and len(r["kvs"]) == 2
    # enums and int64 as numbers, keys_only, filters
    r = srv.call("POST", prefix + "/kv/range", {"key": b64(p), "range_end": b64(end), "limit": 10,
                                                "sort_order": 1, "sort_target": 4, "keys_only": True,
                                                "min_mod_revision": 1, "max_create_revision": "0",
                                                "serializable": True})
    assert all("value" not in kv for kv in r["kvs"])
    r = srv.call("POST", prefix + "/kv/range", {"key": b64(p), "range_end": b64(end), "count_only": True})
    assert r["count"] == "4" and "kvs" not in r
    # every key; an old revision
    r = srv.call("POST", prefix + "/kv/range", {"key": "AA==", "range_end": "AA==", "keys_only": True})
    rev = int(r["header"]["revision"])
    put(srv, p + "a", "newer")
    r = srv.call("POST", prefix + "/kv/range", {"key": b64(p + "a"), "revision": str(rev)})
    assert r["kvs"][0]["value"] == b64("v-a")


def test_range_errors(srv, prefix):
    path = prefix + "/kv/range"
    srv.call("POST", path, {}, 400, 3)                                # key not provided
    srv.call("POST", path, "not json", 400, 3)
    srv.call("POST", path, {"key": "!!!"}, 400, 3)                    # bad base64
    srv.call("POST", path, {"key": b64("k"), "sort_order": "UP"}, 400, 3)
    srv.call("POST", path, {"key": b64("k"), "limit": 1.5}, 400, 3)
    srv.call("POST", path, {"key": b64("k"), "count_only": "yes"}, 400, 3)
    srv.call("POST", path, {"key": b64("k"), "revision": "1000000000"}, 400, 11)  # future


def test_put(srv, prefix):
    path = prefix + "/kv/put"
    k = b64(prefix + "-put/k")
    r = srv.call("POST", path, {"key": k, "value": b64("1")})
    assert "prev_kv" not in r
    r = srv.call("POST", path, {"key": k, "value": b64("2"), "prev_kv": True})
    assert r["prev_kv"]["value"] == b64("1") and r["prev_kv"]["version"] == "1"
    r = srv.call("POST", path, {"key": k, "ignore_value": True, "prev_kv": True})
    assert r["prev_kv"]["value"] == b64("2")
    r = srv.call("POST", path, {"key": b64(prefix + "-put/new"), "prev_kv": True, "lease": 0})
    assert "prev_kv" not in r
    srv.call("POST", path, {"value": b64("v")}, 400, 3)                             # no key
    srv.call("POST", path, {"key": k, "value": b64("v"), "ignore_value": True}, 400, 3)
    srv.call("POST", path, {"key": b64(prefix + "-put/none"), "ignore_value": True}, 400, 3)
    srv.call("POST", path, {"key": k, "ignore_lease": True, "lease": "1"}, 400, 3)
    srv.call("POST", path, {"key": k, "value": b64("v"), "lease": "4660"}, 404, 5)  # no such lease


def test_deleterange(srv, prefix):
    path = prefix + "/kv/deleterange"
    p = prefix + "-del/"
    for k in ("a", "b", "c"):
        put(srv, p + k, "x")
    r = srv.call("POST", path, {"key": b64(p + "a"), "prev_kv": True})
    assert r["deleted"] == "1" and r["prev_kvs"][0]["key"] == b64(p + "a")
    r = srv.call("POST", path, {"key": b64(p + "a")})
    assert "deleted" not in r and "prev_kvs" not in r
    end = p[:-1] + chr(ord(p[-1]) + 1)
    r = srv.call("POST", path, {"key": b64(p), "range_end": b64(end)})
    assert r["deleted"] == "2" and "prev_kvs" not in r
    srv.call("POST", path, {}, 400, 3)


def test_txn(srv, prefix):
    path = prefix + "/kv/txn"
    a, b = b64(prefix + "-txn/a"), b64(prefix + "-txn/b")
    srv.call("POST", prefix + "/kv/put", {"key": a, "value": b64("1")})
    srv.call("POST", prefix + "/kv/put", {"key": b, "value": b64("2")})
    r = srv.call("POST", path, {
        "compare": [{"key": a, "result": "EQUAL", "target": "VALUE", "value": b64("1")},
                    {"key": a, "result": 1, "target": 0, "version": 0},
                    {"key": a, "result": "LESS", "target": "MOD", "mod_revision": "1000000000"},
                    {"key": a, "range_end": b64(prefix + "-txn/c"), "result": "NOT_EQUAL",
                     "target": "CREATE", "create_revision": 1},
                    {"key": a, "result": "EQUAL", "target": "LEASE", "lease": 0}],
        "success": [{"request_put": {"key": a, "value": b64("3"), "prev_kv": True}},
                    {"request_range": {"key": a}},
                    {"request_delete_range": {"key": b, "prev_kv": True}},
                    {"request_txn": {"success": [{"request_range": {"key": a, "count_only": True}}]}}],
        "failure": []})
    assert r["succeeded"] is True and len(r["responses"]) == 4
    assert r["responses"][3]["response_txn"]["header"] == {}
    r = srv.call("POST", path, {"compare": [{"key": a, "target": "VALUE", "value": b64("1")}],
                                "success": [{"request_put": {"key": a, "value": b64("4")}}],
                                "failure": [{"request_range": {"key": a}}]})
    assert "succeeded" not in r and "response_range" in r["responses"][0]
    r = srv.call("POST", path, {})
    assert r["succeeded"] is True and "responses" not in r
    put_a = {"request_put": {"key": a, "value": b64("5")}}
    srv.call("POST", path, {"success": [put_a, put_a]}, 400, 3)                       # duplicate key
    srv.call("POST", path, {"success": [{"request_put": {"key": b64("t%d" % i)}} for i in range(129)]},
             400, 3)                                                                  # too many ops
    srv.call("POST", path, {"success": [{"request_put": {"value": b64("v")}}]}, 400, 3)
    srv.call("POST", path, {"compare": [{"key": a, "result": "SAME"}]}, 400, 3)
    srv.call("POST", path, {"success": [{"request_put": {"key": a, "lease": "4660"}}]}, 404, 5)


def post_paths(prefix):
    return [p for p in SPEC["paths"] if p.startswith(prefix + "/") and "post" in SPEC["paths"][p]]


def test_oversized_body(srv, prefix):
    """kvgate: 413 before reading the body, on every POST endpoint; etcd
    3.4: 429 from gRPC, for a put (other endpoints drop the unknown "value"
    field before gRPC sees a large message)."""
    for path in post_paths(prefix):
        if srv.kind == "etcd" and not path.endswith("/kv/put"):
            continue
        st, hdrs, raw = post_oversized(srv.port, path, 3 << 20)
        srv.check("POST", path, st, hdrs, raw, {"kvgate": 413, "etcd": 429}, 8)


def test_preflight(srv, prefix):
    """kvgate: 200 + CORS headers for an allowed origin, 403 for another,
    204 without Origin.  etcd 3.4: 200 and "*" for everything."""
    ask = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    for path in post_paths(prefix):
        srv.call("OPTIONS", path, None, 200, headers=dict(ask, Origin=ALLOWED_ORIGIN))
        st, hdrs, _ = raw_request(srv.port, "OPTIONS", path, None, dict(ask, Origin=ALLOWED_ORIGIN))
        if srv.kind == "etcd":
            assert hdrs["access-control-allow-origin"] == "*"
            continue
        assert hdrs["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "origin" in hdrs.get("vary", "").lower()
        assert "post" in hdrs["access-control-allow-methods"].lower()
        assert "content-type" in hdrs["access-control-allow-headers"].lower()
        srv.call("OPTIONS", path, None, 403, 7, headers=dict(ask, Origin="http://evil.example"))
        srv.call("OPTIONS", path, None, 204)


# ---- lease, maintenance, cluster --------------------------------------------------

LEASE_BASE = {"/v3": 7000, "/v3beta": 8000, "/v3alpha": 9000}


def stream_call(srv, method, path, body, status=200, code=None, until=None, headers=None,
                timeout=10.0):
    """A request whose 200 answer is a stream: reads until `until(raw)` (or
    the end), checks every line or event against the spec, returns them."""
    st = Stream(srv.port, method, path, body, headers, timeout)
    try:
        if st.status == 200:
            st.read_until(until or (lambda raw: False), timeout)
        return srv.check(method, path, st.status, st.headers, st.raw, status, code, stream=True)
    finally:
        st.close()


def lines(n):
    return lambda raw: raw.count(b"\n") >= n


def test_lease(srv, prefix):
    lid = LEASE_BASE[prefix]
    r = srv.call("POST", prefix + "/lease/grant", {"TTL": 60})
    assert int(r["TTL"]) == 60 and r["ID"] != "0"
    srv.call("POST", prefix + "/lease/revoke", {"ID": r["ID"]})
    r = srv.call("POST", prefix + "/lease/grant", {"TTL": 60, "ID": lid + 2})
    srv.call("POST", prefix + "/kv/lease/revoke", {"ID": r["ID"]})
    r = srv.call("POST", prefix + "/lease/grant", {"TTL": "60", "ID": str(lid)})
    assert r["ID"] == str(lid)
    srv.call("POST", prefix + "/lease/grant", {"TTL": 60, "ID": lid}, 412, 9)        # exists
    srv.call("POST", prefix + "/lease/grant", {"TTL": 9999999999}, 400, 11)          # TTL too large
    srv.call("POST", prefix + "/lease/grant", "nope", 400, 3)
    key = b64(prefix + "-lease/k")
    srv.call("POST", prefix + "/kv/put", {"key": key, "value": b64("v"), "lease": str(lid)})
    r = srv.call("POST", prefix + "/kv/range", {"key": key})
    assert r["kvs"][0]["lease"] == str(lid)
    for path in (prefix + "/lease/timetolive", prefix + "/kv/lease/timetolive"):
        r = srv.call("POST", path, {"ID": str(lid), "keys": True})
        assert r["keys"] == [key] and r["grantedTTL"] == "60"
        r = srv.call("POST", path, {"ID": lid + 1})
        assert r["TTL"] == "-1"
        srv.call("POST", path, "nope", 400, 3)
    for path in (prefix + "/lease/leases", prefix + "/kv/lease/leases"):
        r = srv.call("POST", path, {})
        assert {"ID": str(lid)} in r["leases"]
        srv.call("POST", path, "nope", 400, 3)
    ka = stream_call(srv, "POST", prefix + "/lease/keepalive", {"ID": str(lid)}, until=lines(1))
    assert ka[0]["result"]["ID"] == str(lid) and ka[0]["result"]["TTL"] == "60"
    ka = stream_call(srv, "POST", prefix + "/lease/keepalive", {"ID": str(lid + 1)}, until=lines(1))
    assert "TTL" not in ka[0]["result"]
    stream_call(srv, "POST", prefix + "/lease/keepalive", "nope", 500, 2)
    srv.call("POST", prefix + "/lease/revoke", {"ID": str(lid)})
    r = srv.call("POST", prefix + "/kv/range", {"key": key})
    assert "kvs" not in r                                                            # deleted with it
    srv.call("POST", prefix + "/kv/lease/revoke", {"ID": str(lid)}, 404, 5)
    srv.call("POST", prefix + "/lease/revoke", {"ID": str(lid)}, 404, 5)
    srv.call("POST", prefix + "/kv/lease/revoke", {}, 404, 5)
    for path in (prefix + "/lease/revoke", prefix + "/kv/lease/revoke"):
        srv.call("POST", path, "nope", 400, 3)


def test_maintenance(srv, prefix):
    r = srv.call("POST", prefix + "/maintenance/status", {})
    assert r["version"].startswith("3.4.") and r["leader"] == r["header"]["member_id"]
    srv.call("POST", prefix + "/maintenance/hash", {})
    assert srv.call("POST", prefix + "/maintenance/defragment", {}) == {}
    assert srv.call("POST", prefix + "/maintenance/alarm", {}) == {}
    assert srv.call("POST", prefix + "/maintenance/alarm", {"action": "GET"}) == {}
    r = srv.call("POST", prefix + "/cluster/member/list", {})
    assert len(r["members"]) == 1 and r["members"][0]["ID"] == r["header"]["member_id"]
    for ep in ("status", "hash", "defragment", "alarm"):
        srv.call("POST", "%s/maintenance/%s" % (prefix, ep), "nope", 400, 3)
    srv.call("POST", prefix + "/cluster/member/list", "nope", 400, 3)


LOCK_BASE = {"/v3": 7100, "/v3beta": 8100, "/v3alpha": 9100}


def test_lock_election(srv, prefix):
    """v3lock and v3election: each call's success, refusal and bad body."""
    if prefix == "/v3alpha":
        st, _, raw = raw_request(srv.port, "POST", prefix + "/lock/lock", b'{"name":"eA=="}')
        assert st == 404, raw
        return
    lid = LOCK_BASE[prefix]
    srv.call("POST", prefix + "/lease/grant", {"TTL": 60, "ID": lid})
    name = b64(prefix + "-lock")
    r = srv.call("POST", prefix + "/lock/lock", {"name": name, "lease": str(lid)})
    key = r["key"]
    assert base64.b64decode(key) == (prefix + "-lock/%x" % lid).encode()
    srv.call("POST", prefix + "/lock/unlock", {"key": key})
    srv.call("POST", prefix + "/lock/lock", {"name": name, "lease": str(lid + 1)}, 500, 2)   # no such lease
    srv.call("POST", prefix + "/lock/unlock", {}, 500, 2)                                   # no key
    for ep in ("lock/lock", "lock/unlock", "election/campaign", "election/proclaim",
               "election/leader", "election/resign"):
        srv.call("POST", "%s/%s" % (prefix, ep), "nope", 400, 3)
    stream_call(srv, "POST", prefix + "/election/observe", "nope", 400, 3)
    ename = b64(prefix + "-election")
    srv.call("POST", prefix + "/election/leader", {"name": ename}, 500, 2)                 # no leader
    srv.call("POST", prefix + "/election/campaign",
             {"name": ename, "lease": str(lid + 1), "value": b64("x")}, 500, 2)           # no such lease
    r = srv.call("POST", prefix + "/election/campaign",
                 {"name": ename, "lease": str(lid), "value": b64("one")})
    leader = r["leader"]
    assert leader["name"] == ename and leader["lease"] == str(lid)
    obs = stream_call(srv, "POST", prefix + "/election/observe", {"name": ename}, until=lines(1))
    assert obs[0]["result"]["kv"]["value"] == b64("one")
    srv.call("POST", prefix + "/election/proclaim", {"leader": leader, "value": b64("two")})
    r = srv.call("POST", prefix + "/election/leader", {"name": ename})
    assert r["kv"]["value"] == b64("two")
    wrong = dict(leader, rev=str(int(leader["rev"]) + 1000))
    srv.call("POST", prefix + "/election/proclaim", {"leader": wrong, "value": b64("x")}, 500, 2)
    srv.call("POST", prefix + "/election/proclaim", {"value": b64("x")}, 500, 2)        # no leader
    srv.call("POST", prefix + "/election/resign", {"leader": leader})
    srv.call("POST", prefix + "/election/resign", {}, 500, 2)
    srv.call("POST", prefix + "/election/leader", {"name": ename}, 500, 2)
    srv.call("POST", prefix + "/lease/revoke", {"ID": str(lid)})


# ---- watch --------------------------------------------------------------------------

def test_watch_json(srv, prefix):
    """POST /watch: two watches in one body (history with prev_kv; a range
    with NOPUT and a watch_id), a progress request; then live events."""
    k = prefix + "-watch/k"
    r0 = int(put(srv, k, "0")["header"]["revision"])
    end = prefix + "-watch0"
    body = (json.dumps({"create_request": {"key": b64(k), "start_revision": str(r0), "prev_kv": True}})
            + "\n" + json.dumps({"create_request": {"key": b64(prefix + "-watch/"), "range_end": b64(end),
                                                    "filters": ["NOPUT"], "watch_id": "7"}})
            + "\n" + json.dumps({"progress_request": {}}))
    st = Stream(srv.port, "POST", prefix + "/watch", body)
    try:
        assert st.status == 200, st.raw
        st.read_until(lambda raw: raw.count(b'"created":true') >= 2 and b'"events"' in raw)
        put(srv, k, "1")
        srv.call("POST", prefix + "/kv/deleterange", {"key": b64(k)})
        st.read_until(lambda raw: raw.count(b'"DELETE"') >= 2)
        got = srv.check("POST", prefix + "/watch", st.status, st.headers, st.raw, stream=True)
    finally:
        st.close()
    events = [(ln["result"].get("watch_id", "0"), ev) for ln in got for ev in ln["result"].get("events", [])]
    w0 = [ev for wid, ev in events if wid == "0"]
    w7 = [ev for wid, ev in events if wid == "7"]
    assert [ev.get("type", "PUT") for ev in w0] == ["PUT", "PUT", "DELETE"], got
    assert w0[1]["prev_kv"]["value"] == b64("0") and w0[2]["prev_kv"]["value"] == b64("1")
    assert [ev.get("type", "PUT") for ev in w7] == ["DELETE"], got
    assert any(ln["result"].get("watch_id") == "-1" for ln in got)                  # progress
    stream_call(srv, "POST", prefix + "/watch", "nope", 500, 2)


def test_watch_sse(srv, prefix):
    """kvgate: GET /watch (EventSource) and POST with Accept: text/event-stream."""
    if srv.kind == "etcd":
        pytest.skip("etcd has no Server-Sent Events")
    k = prefix + "-sse/k"
    put(srv, k, "0")
    path = prefix + "/watch"
    q = "%s?key=%s&prefix=true&prev_kv=true&initial=true" % (path, urllib.parse.quote(k))
    st = Stream(srv.port, "GET", q, headers={"Accept": "text/event-stream"})
    try:
        assert st.status == 200, st.raw
        st.read_until(lambda raw: b"event: synced" in raw)
        put(srv, k, "1")
        st.read_until(lambda raw: len([e for e in parse_sse(raw) if "data" in e]) >= 4)
        events = srv.check("GET", path, st.status, st.headers, st.raw)
    finally:
        st.close()
    kinds = [e.get("event", "message") for e in events if "data" in e or "event" in e]
    assert kinds[0] == "created" and "synced" in kinds and kinds[-1] == "message", events
    live = json.loads([e for e in events if "data" in e][-1]["data"])
    assert live["events"][0]["prev_kv"]["value"] == b64("0")
    # the same as a POST body, with Accept
    st = Stream(srv.port, "POST", path, {"create_request": {"key": b64(k)}},
                {"Accept": "text/event-stream"})
    try:
        st.read_until(lambda raw: b"event: created" in raw and raw.endswith(b"\n\n"))
        srv.check("POST", path, st.status, st.headers, st.raw)
    finally:
        st.close()
    srv.call("GET", path + "?key=a&start_revision=abc", None, 400, 3)
    srv.call("POST", path, {"create_request": {"key": b64(k)}}, 400, 3,
             headers={"Accept": "text/event-stream", "Last-Event-ID": "not-a-revision"})


def test_watch_too_many_streams(srv, prefix):
    """kvgate --max-streams 1: the second stream gets 429 and Retry-After."""
    if srv.kind == "etcd":
        pytest.skip("etcd has no stream limit")
    small = Server("kvgate", lambda port, data: kvgate_argv(port, data) + ["--max-streams", "1"],
                   "/version")
    try:
        first = Stream(small.port, "GET", prefix + "/watch?key=a", headers={"Accept": "text/event-stream"})
        try:
            first.read_until(lambda raw: b"event: created" in raw)
            small.call("GET", prefix + "/watch?key=b", None, 429, 8)
            small.call("POST", prefix + "/watch", {"create_request": {"key": b64("b")}}, 429, 8)
        finally:
            first.close()
    finally:
        small.stop()
        small.cleanup()
    srv.seen |= small.seen


def test_compaction(srv, prefix):
    """Last among the tests that write: it compacts the whole store."""
    path = prefix + "/kv/compaction"
    k = prefix + "-compact/k"
    r1 = int(put(srv, k, "1")["header"]["revision"])
    put(srv, k, "2")
    srv.call("POST", path, {"revision": r1})                                  # int64 as a number
    srv.call("POST", path, {"revision": str(r1)}, 400, 11)                    # already compacted
    srv.call("POST", path, {"revision": "1000000000"}, 400, 11)               # future
    r = srv.call("POST", path, {"revision": str(r1 + 1), "physical": True})
    assert set(r) == {"header"}
    # A watch from before the compaction is canceled, with compact_revision.
    got = stream_call(srv, "POST", prefix + "/watch",
                      {"create_request": {"key": b64(k), "start_revision": "1"}},
                      until=lambda raw: b'"canceled":true' in raw)
    assert got[-1]["result"]["compact_revision"] == str(r1 + 1)
    if srv.kind == "kvgate":                                                  # SSE: 410 Gone
        srv.call("GET", prefix + "/watch?key=k&start_revision=1", None, 410, 11)
        srv.call("POST", prefix + "/watch", {"create_request": {"key": b64(k), "start_revision": "1"}},
                 410, 11, headers={"Accept": "text/event-stream"})
    srv.call("POST", prefix + "/kv/range", {"key": b64(k), "revision": r1 - 1}, 400, 11)


# ---- routes -----------------------------------------------------------------------

KVGATE_ONLY = [("get", "/watch", None), ("post", "/watch", "400"), ("post", "/watch", "410"),
               ("post", "/watch", "429")]


def test_metrics(srv):
    """GET /metrics: the Prometheus text format (etcd serves its own there too)."""
    st, hdrs, raw = raw_request(srv.port, "GET", "/metrics")
    srv.check("GET", "/metrics", st, hdrs, raw, status=200)
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs["content-type"]
    assert b"# TYPE " in raw, raw[:200]


def test_web_files(srv):
    """/, /kvgate.js, /openapi.yaml: GET and HEAD, then 304 for their ETag."""
    if srv.kind != "kvgate":
        pytest.skip("kvgate's own files")
    for path in KVGATE_FILES:
        for method in ("GET", "HEAD"):
            st, hdrs, raw = raw_request(srv.port, method, path)
            if path == "/" and st == 404:  # a build without web/index.html
                srv.check(method, path, st, hdrs, raw, status=404)
                continue
            srv.check(method, path, st, hdrs, raw, status=200)
            st, hdrs, raw = raw_request(srv.port, method, path,
                                        headers={"If-None-Match": hdrs["etag"]})
            srv.check(method, path, st, hdrs, raw, status=304)


BLOCKING = ("/lock/lock", "/election/campaign", "/election/observe")


def test_every_spec_route_is_served(srv):
    for path, method in spec_routes():
        if srv.kind == "etcd" and (path.startswith(ETCD_LACKS) or path in KVGATE_FILES or
                                   any(method == m and path.endswith(sfx) for m, sfx, _ in KVGATE_ONLY)):
            continue
        if method == "post" and path.endswith(BLOCKING):
            continue   # {} may wait for a lock or a leader (test_lock_election covers them)
        hdrs = {}
        if method == "options":
            hdrs = {"Origin": "http://127.0.0.1", "Access-Control-Request-Method": "POST"}
        st, raw = probe_status(srv.port, method.upper(), path, b"{}" if method == "post" else None, hdrs)
        assert st != 404 or b'"code"' in raw, "%s %s is in openapi.yaml but answers 404 %r" % (
            method.upper(), path, raw[:200])
        assert st != 405, "%s %s is in openapi.yaml but answers 405" % (method.upper(), path)


# etcd 3.4's gateway routes (and a few other well-known ones): whatever
# kvgate serves among them must be in the spec.
PROBE = ["/", "/index.html", "/dashboard", "/ui", "/web/", "/static/", "/favicon.ico",
         "/metrics", "/debug/vars", "/readyz", "/livez", "/v2/keys", "/v2/members",
         "/v3/watch", "/v3/lease/grant", "/v3/lease/revoke", "/v3/kv/lease/revoke",
         "/v3/lease/keepalive", "/v3/lease/timetolive", "/v3/kv/lease/timetolive",
         "/v3/lease/leases", "/v3/kv/lease/leases", "/v3/cluster/member/list",
         "/v3/cluster/member/add", "/v3/cluster/member/remove", "/v3/cluster/member/update",
         "/v3/cluster/member/promote", "/v3/maintenance/status", "/v3/maintenance/alarm",
         "/v3/maintenance/defragment", "/v3/maintenance/hash", "/v3/maintenance/snapshot",
         "/v3/maintenance/transfer-leadership", "/v3/auth/enable", "/v3/auth/disable",
         "/v3/auth/authenticate", "/v3/auth/user/add", "/v3/auth/user/list",
         "/v3/auth/role/list", "/v3/kv/lease/keepalive", "/v3/events", "/v3/sse"]
PROBE += [p.replace("/v3/", "/v3beta/") for p in PROBE if p.startswith("/v3/")]
PROBE += [p.replace("/v3/", "/v3alpha/") for p in PROBE if p.startswith("/v3/")]


def test_spec_lists_every_served_path(srv):
    if srv.kind != "kvgate":
        pytest.skip("etcd serves much more than the KV API")
    unlisted = []
    for path in PROBE:
        for method in ("GET", "POST"):
            if method.lower() in SPEC["paths"].get(path, {}):
                continue
            st, _ = probe_status(srv.port, method, path, b"{}" if method == "POST" else None)
            if st not in (404, 405):
                unlisted.append("%s %s -> %d" % (method, path, st))
    assert not unlisted, "kvgate serves routes openapi.yaml does not list:\n  " + "\n  ".join(unlisted)


def test_zz_coverage(srv):
    """Every documented (path, method, status) was exercised above."""
    missing = []
    for path, method in spec_routes():
        for status in SPEC["paths"][path][method]["responses"]:
            if status == "default" or (path, method, status) in UNTESTABLE:
                continue
            if (path, method, status) in srv.seen:
                continue
            if srv.kind == "etcd" and (
                    path.startswith(ETCD_LACKS) or path in KVGATE_FILES or status == "413"
                    or (method == "options" and status in ("204", "403"))
                    or any(method == m and path.endswith(sfx) and st in (None, status)
                           for m, sfx, st in KVGATE_ONLY)):
                continue   # kvgate-only answers (etcd: 429 for 413, 200 for every OPTIONS)
            missing.append("%s %s %s" % (method.upper(), path, status))
    assert not missing, "documented but never exercised:\n  " + "\n  ".join(missing)
