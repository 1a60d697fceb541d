"""A raw-socket HTTP stream reader for the watch suites, and its own tests.

Watch answers are long-lived chunked streams: http.client buffers and
hides chunk boundaries, so the suites read the socket directly.  Stream
decodes the chunked transfer coding incrementally and offers two views of
the body: JSON lines (POST /v3/watch, etcd's framing) and Server-Sent
Events (parsed as the WHATWG algorithm does: what a browser would see).

Used by tests/e2e/test_watch_*.py and tests/diff/test_watch_diff.py
(which adds this directory to sys.path).  Every wait is bounded.
"""
import json
import socket
import time


class Stream:
    def __init__(self, port, path="/v3/watch", body=None, method="POST", headers=None,
                 timeout=10.0, host="127.0.0.1"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.sock = socket.create_connection((host, port), timeout=timeout)
        h = {"Host": "%s:%d" % (host, port)}
        if body is not None:
            h["Content-Type"] = "application/json"
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        req = "%s %s HTTP/1.1\r\n" % (method, path)
        req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.sock.sendall(req.encode("latin-1") + (body or b""))
        self.raw = b""          # bytes received, not yet decoded
        self.data = b""         # decoded body
        self.eof = False        # the body ended (last chunk, length reached or socket closed)
        self.closed_by_peer = False
        self.status = None
        self.headers = {}
        self._chunked = False
        self._length = None
        self._chunk_left = 0
        self._crlf_left = 0
        self._read_head(time.monotonic() + timeout)
        self._sse_pos = 0
        self._line_pos = 0

    # ---- transport ----
    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        self.sock.settimeout(min(left, 0.5))
        try:
            c = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            c = b""
        if not c:
            self.eof = True
            self.closed_by_peer = True
            return False
        self.raw += c
        self._decode()
        return True

    def _read_head(self, deadline):
        while b"\r\n\r\n" not in self.raw:
            if not self._recv_raw(deadline):
                raise AssertionError("no response head within the timeout: %r" % self.raw[:200])
        head, _, rest = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for l in lines[1:]:
            k, _, v = l.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if "content-length" in self.headers:
            self._length = int(self.headers["content-length"])
        self.raw = rest
        self._decode()

    def _recv_raw(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(min(left, 0.5))
        try:
            c = self.sock.recv(65536)
        except socket.timeout:
            return True
        if not c:
            return False
        self.raw += c
        return True

    def _decode(self):
        if not self._chunked:
            self.data += self.raw
            self.raw = b""
            if self._length is not None and len(self.data) >= self._length:
                self.eof = True
            return
        if self.eof:  # the trailer after the last chunk
            self.raw = b""
            return
        # states: _chunk_left > 0: data bytes to copy; then _crlf_left bytes
        # of the CRLF after the data to skip; then a size line.
        while self.raw:
            if self._chunk_left > 0:
                take = min(self._chunk_left, len(self.raw))
                self.data += self.raw[:take]
                self.raw = self.raw[take:]
                self._chunk_left -= take
                continue
            if self._crlf_left > 0:
                take = min(self._crlf_left, len(self.raw))
                self.raw = self.raw[take:]
                self._crlf_left -= take
                continue
            if b"\r\n" not in self.raw:
                return
            line, _, rest = self.raw.partition(b"\r\n")
            n = int(line.split(b";")[0], 16)
            self.raw = rest
            if n == 0:
                self.eof = True
                self.raw = b""
                return
            self._chunk_left, self._crlf_left = n, 2

    def wait(self, pred, timeout=5.0):
        """Reads until pred() is true, the body ends or timeout; returns pred()."""
        deadline = time.monotonic() + timeout
        while not pred():
            if not self._recv(deadline):
                break
        return pred()

    def quiet(self, quiet=0.5, timeout=10.0):
        """Reads until nothing arrives for `quiet` seconds (or EOF / timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.eof:
            n = len(self.data)
            end = min(deadline, time.monotonic() + quiet)
            while time.monotonic() < end and not self.eof:
                self._recv(end)
            if len(self.data) == n:
                break

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # ---- JSON lines ----
    def lines(self):
        """Every complete line of the body, parsed as JSON."""
        out = []
        for l in self.data.split(b"\n")[:-1] if b"\n" in self.data else []:
            if l.strip():
                out.append(json.loads(l))
        return out

    def wait_lines(self, n, timeout=5.0):
        self.wait(lambda: len(self.lines()) >= n, timeout)
        return self.lines()

    def body_json(self, timeout=5.0):
        self.wait(lambda: self.eof, timeout)
        return json.loads(self.data)

    # ---- Server-Sent Events ----
    def sse(self):
        """(messages, comments, retry): messages as dicts {event, id, data,
        last_id} in dispatch order, as a browser's EventSource sees them."""
        return parse_sse(self.data)

    def wait_sse(self, pred, timeout=5.0):
        self.wait(lambda: pred(self.sse()[0]), timeout)
        return self.sse()[0]


def parse_sse(data):
    text = data.decode("utf-8", "replace")
    msgs, comments, retry = [], 0, None
    last_id = ""
    ev, dat, has_data, idv = "", [], False, None
    # a line only counts once its terminator arrived
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1]
    for line in lines:
        if line == "":
            if idv is not None:
                last_id = idv
            if has_data:
                msgs.append({"event": ev or "message", "data": "\n".join(dat), "last_id": last_id,
                             "id": idv})
            ev, dat, has_data, idv = "", [], False, None
            continue
        if line.startswith(":"):
            comments += 1
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            ev = value
        elif name == "data":
            dat.append(value)
            has_data = True
        elif name == "id":
            if "\0" not in value:
                idv = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    return msgs, comments, retry


# ---- the helper's own tests (no server needed) ----

def test_parse_sse_dispatch_and_ids():
    raw = (b"retry: 2000\n\n: hb\n\nevent: created\nid: 4\ndata: {\"a\":1}\n\n"
           b"data: x\ndata: y\n\nid: 9\ndata: z\n\nevent: progress\ndata: p\n\n"
           b"data: partial")
    msgs, comments, retry = parse_sse(raw)
    assert retry == 2000 and comments == 1
    assert [m["event"] for m in msgs] == ["created", "message", "message", "progress"]
    assert msgs[0]["last_id"] == "4" and msgs[1]["last_id"] == "4" and msgs[1]["id"] is None
    assert msgs[1]["data"] == "x\ny"
    assert msgs[2]["last_id"] == "9" and msgs[3]["last_id"] == "9"


def test_chunked_decoding_across_splits():
    s = Stream.__new__(Stream)
    s.raw, s.data, s.eof, s._chunked, s._length = b"", b"", False, True, None
    s._chunk_left = s._crlf_left = 0
    wire = b"5\r\nhello\r\n7\r\n world\n\r\n0\r\n\r\n"
    for i in range(len(wire)):
        s.raw += wire[i:i + 1]
        s._decode()
    assert s.data == b"hello world\n" and s.eof
