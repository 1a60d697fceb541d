"""Raw-socket HTTP for what http.client cannot do: send a request in
pieces (a request in flight across SIGTERM), keep reading after the server
answered early and closed (413 before the body), parse one response."""
import socket


def request_head(method, path, length, extra_headers=()):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1",
             "Content-Type: application/json", "Content-Length: %d" % length]
    lines += list(extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send_tolerant(sock, data):
    """sendall, but a server that already answered and closed is fine.
    Returns True if everything was sent."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


class Reader:
    """Buffered reader of HTTP/1.1 responses on one socket: bytes past one
    response are kept for the next (pipelining)."""

    def __init__(self, sock, timeout=15):
        self.sock = sock
        self.buf = b""
        sock.settimeout(timeout)

    def _more(self, what):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed %s (have %r)" % (what, self.buf[:200]))
        self.buf += chunk

    def _take(self, n):
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """(status, headers, body) of the next response."""
        while b"\r\n\r\n" not in self.buf:
            self._more("before the response headers")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        if status in (100, 101, 102, 103):
            return self.response()
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self._more("inside the body")
            return status, hdrs, self._take(n)
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._more("inside a chunked body")
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._more("inside a chunk")
                body += self._take(size)
                self._take(2)
                if size == 0:
                    return status, hdrs, body
        if status == 204 or status == 304:
            return status, hdrs, b""
        while True:  # until close
            try:
                self._more("")
            except ConnectionError:
                return status, hdrs, self._take(len(self.buf))


def read_response(sock, timeout=15):
    """One HTTP/1.1 response from a raw socket: (status, headers, body)."""
    return Reader(sock, timeout).response()


def post_big(port, path, body, timeout=30):
    """POST body (bytes) on a fresh connection, tolerating an early answer
    and close; returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        send_tolerant(s, request_head("POST", path, len(body)) + body)
        return read_response(s, timeout)
    finally:
        s.close()
