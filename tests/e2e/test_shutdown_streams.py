"""SIGTERM with 2,000 open watch streams (1,000 SSE, 1,000 JSON): every
stream ends cleanly, the process exits 0 within a few seconds.

Each client reads its socket until EOF and must see the chunked body end
with the last chunk ("0" CRLF CRLF) — an orderly end of the HTTP message,
not just a closed socket, and never a reset.  Under the sanitizer build
(tests/run_all.sh step 3 runs tests/e2e with KVGATE_SANITIZED=1) the exit
also runs LeakSanitizer: a leaked stream is a report, which fails the run.

All sockets are non-blocking and served by one selector, so the client
side stays cheap on a 2-CPU machine.
"""
import json
import os
import selectors
import signal
import socket
import subprocess
import time

import pytest

from kvtest import b64

N_SSE = 1000
N_JSON = 1000
SANITIZED = os.environ.get("KVGATE_SANITIZED") == "1"


class Conn:
    def __init__(self, port, kind, i):
        self.kind = kind
        self.buf = b""
        self.eof = False
        self.reset = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))
        key = b64("sd/%s/%d" % (kind, i))
        if kind == "sse":
            req = ("GET /v3/watch?key=sd/&prefix=true HTTP/1.1\r\nHost: x\r\n\r\n").encode()
        else:
            body = json.dumps({"create_request": {"key": key}}).encode()
            req = ("POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
        self.req = req

    def started(self):
        """Head received and the first message (created) in."""
        if b"\r\n\r\n" not in self.buf:
            return False
        body = self.buf.split(b"\r\n\r\n", 1)[1]
        return (b"created" in body) if self.kind == "sse" else (b'"created":true' in body)

    def ended_with_last_chunk(self):
        head, _, body = self.buf.partition(b"\r\n\r\n")
        if b"chunked" not in head.lower():
            return False
        # walk the chunks
        pos = 0
        while True:
            nl = body.find(b"\r\n", pos)
            if nl < 0:
                return False
            n = int(body[pos:nl].split(b";")[0], 16)
            if n == 0:
                return body[nl + 2:nl + 4] == b"\r\n"
            pos = nl + 2 + n + 2
            if pos > len(body):
                return False


def pump(sel, until, deadline):
    while time.monotonic() < deadline and not until():
        for key, ev in sel.select(timeout=0.2):
            c = key.data
            if ev & selectors.EVENT_WRITE and c.req:
                try:
                    n = c.sock.send(c.req)
                    c.req = c.req[n:]
                except BlockingIOError:
                    pass
                except OSError:
                    c.req = b""
                if not c.req:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                d = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                c.reset, c.eof, d = True, True, b""
            if not d:
                c.eof = True
                sel.unregister(c.sock)
                continue
            c.buf += d
    return until()


@pytest.mark.timeout(180)
def test_sigterm_with_2000_open_streams(kvgate_factory):
    k = kvgate_factory(extra_args=["--max-streams", "5000", "--sse-heartbeat", "0"])
    sel = selectors.DefaultSelector()
    conns = []
    try:
        # connect in batches so the listen backlog never overflows
        kinds = ["sse"] * N_SSE + ["json"] * N_JSON
        for start in range(0, len(kinds), 250):
            batch = [Conn(k.port, kind, start + i) for i, kind in enumerate(kinds[start:start + 250])]
            for c in batch:
                sel.register(c.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, c)
            conns += batch
            ok = pump(sel, lambda: all(c.started() or c.eof for c in batch), time.monotonic() + 60)
            assert ok and not any(c.eof for c in batch), \
                "streams %d..: %d not started, %d closed" % (
                    start, sum(not c.started() for c in batch), sum(c.eof for c in batch))
        # some traffic on the streams
        cl = k.client()
        for i in range(5):
            cl.put("sd/json/%d" % i, "x")
        pump(sel, lambda: False, time.monotonic() + 0.5)

        t0 = time.monotonic()
        k.proc.send_signal(signal.SIGTERM)
        limit = 30 if SANITIZED else 5
        try:
            rc = k.proc.wait(limit)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        pump(sel, lambda: all(c.eof for c in conns), time.monotonic() + 10)
        assert rc == 0, "exit status %r after SIGTERM (%.1f s): %s" % (rc, took, k.stderr()[-2000:])
        resets = sum(c.reset for c in conns)
        open_ = sum(not c.eof for c in conns)
        clean = sum(c.ended_with_last_chunk() for c in conns)
        assert resets == 0 and open_ == 0, "%d reset, %d never closed" % (resets, open_)
        assert clean == len(conns), "%d of %d streams ended without the last chunk (e.g. %r)" % (
            len(conns) - clean, len(conns),
            next(c.buf[-200:] for c in conns if not c.ended_with_last_chunk()))
        print("SIGTERM with %d streams: exit 0 in %.2f s, %d ended with the last chunk"
              % (len(conns), took, clean))
    finally:
        for c in conns:
            try:
                c.sock.close()
            except OSError:
                pass
        sel.close()
