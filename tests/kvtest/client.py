"""A tiny HTTP/JSON client for etcd's JSON gateway and kvgate.

post(path, obj_or_bytes, headers) -> Resp(status, headers, body) where body
is the parsed JSON when the answer parses as JSON, else the raw bytes.
Every call has a timeout; a new connection per request keeps tests simple
and independent (the server may be restarted between calls).
"""
import base64
import http.client
import json


def b64(s):
    """str/bytes -> base64 text, as etcd's JSON expects for bytes fields."""
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    """base64 text -> str (utf-8, replacement for non-text)."""
    return base64.b64decode(s).decode("utf-8", "replace")


class Resp:
    """status (int), headers (dict, lower-case names), raw (bytes),
    body (parsed JSON, or raw bytes when the answer is not JSON),
    is_json (bool)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.body = json.loads(raw.decode("utf-8"))
            self.is_json = True
        except (ValueError, UnicodeDecodeError):
            self.body = raw
            self.is_json = False

    def __repr__(self):
        return "Resp(%d, %r)" % (self.status, self.body)

    def json(self):
        assert isinstance(self.body, (dict, list)) and self.is_json, \
            "expected a JSON answer, got %d %r" % (self.status, self.raw[:300])
        return self.body


class Client:
    def __init__(self, host, port, timeout=10.0):
        self.host = host
        self.port = port
        self.timeout = timeout

    def request(self, method, path, body=None, headers=None, timeout=None, chunk=0):
        """body: None, dict/list (JSON-encoded), str or bytes (sent as is).
        chunk > 0: send the body with Transfer-Encoding: chunked, in pieces
        of that many bytes."""
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        hdrs = {}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout or self.timeout)
        try:
            if chunk and data is not None:
                pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
                conn.request(method, path, body=iter(pieces), headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
        finally:
            conn.close()

    def post(self, path, body=None, headers=None, timeout=None):
        return self.request("POST", path, {} if body is None else body, headers, timeout)

    def get(self, path, headers=None, timeout=None):
        return self.request("GET", path, None, headers, timeout)

    # -- conveniences for the common KV calls (raise on a non-200) --
    def _ok(self, path, body):
        r = self.post(path, body)
        assert r.status == 200, "%s %r -> %d %r" % (path, body, r.status, r.raw[:500])
        return r.json()

    def put(self, key, value, **kw):
        body = {"key": b64(key), "value": b64(value)}
        body.update(kw)
        return self._ok("/v3/kv/put", body)

    def range(self, key, range_end=None, **kw):
        body = {"key": b64(key)}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        body.update(kw)
        return self._ok("/v3/kv/range", body)

    def delete(self, key, range_end=None, **kw):
        body = {"key": b64(key)}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        body.update(kw)
        return self._ok("/v3/kv/deleterange", body)

    def txn(self, body):
        return self._ok("/v3/kv/txn", body)

    def compact(self, rev, physical=False):
        body = {"revision": str(rev)}
        if physical:
            body["physical"] = True
        return self._ok("/v3/kv/compaction", body)

    def revision(self):
        """Current store revision (from a range's header)."""
        return int(self.range("\0", "\0", count_only=True)["header"]["revision"])
