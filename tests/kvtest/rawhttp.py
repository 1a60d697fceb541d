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


def read_response(sock, timeout=15):
    """One HTTP/1.1 response from a raw socket: (status, headers, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response headers: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    if "content-length" in hdrs:
        n = int(hdrs["content-length"])
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, hdrs, rest[:n]
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunked body")
                rest += chunk
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunk")
                rest += chunk
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                return status, hdrs, body
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return status, hdrs, rest
        rest += chunk


def post_big(port, path, body, timeout=30):
    """POST body (bytes) on a fresh connection, tolerating an early answer
    and close; returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        send_tolerant(s, request_head("POST", path, len(body)) + body)
        return read_response(s, timeout)
    finally:
        s.close()
