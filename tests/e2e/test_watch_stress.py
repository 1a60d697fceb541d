"""Watch stress: thousands of streams, a writer and stalled readers.

One scenario (a module fixture, run once, every wait bounded), several
tests asserting behaviour only, never timing:

  - 2,000 healthy watchers on one key, half POST /v3/watch (JSON lines),
    half SSE (GET /v3/watch?key=...), each on its own connection, read
    all the time; two healthy watchers (one POST, one SSE) on the prefix
    "st/" that also get the large values;
  - two stalled readers (one POST, one SSE) on the prefix "st/": their
    socket (receive buffer shrunk to 32 KiB) is not read at all after the
    created message, while the writer puts 50 MiB of values (200 x 256 KiB)
    under "st/big/" interleaved with 200 small puts on the hot key, then
    10 txns of 100 puts under "st/m/" (1,000 events in 10 revisions: the
    stalled readers' queues, 1,024 events or 1 MiB, overflow);
  - then the stalled readers read again.

Asserted: every healthy watcher gets every event of what it watches, in
order, no gap, no duplicate (values checked for the large ones); every put
succeeds and the writer finishes while both stalled readers are still
stalled; each stalled reader, once it reads, gets every event in order
with its value; the server's RSS while the readers are stalled grows by
less than 24 MiB more than a control kvgate that gets the same writes
without any watcher (the control absorbs RocksDB's memtable, which holds
what was written whoever watches; the margin is half of what was written,
so buffering the stalled streams' backlog in memory fails it: each
stream's queue is bounded in bytes, see test_memory_bounded_while_readers_stall).

Under ASan (KVGATE_SANITIZED=1) the scenario is scaled down (200 healthy
watchers, 16 MiB of values) and the memory test is skipped.
"""
import base64
import fcntl
import json
import os
import re
import resource
import selectors
import socket
import struct
import termios
import threading
import time
import urllib.parse

import pytest

SANITIZED = os.environ.get("KVGATE_SANITIZED") == "1"
N_HEALTHY = 200 if SANITIZED else 2000   # half POST, half SSE, on HOT
N_SMALL = 200                            # puts on HOT
N_BIG = 64 if SANITIZED else 200         # puts of BIG bytes under st/big/ (50 MiB)
BIG = 256 * 1024
N_WARM = 3                               # small puts before the memory baseline
N_TXN, TXN_OPS = 10, 100                 # then txns of 100 puts under st/m/
HOT = "st/k"
PREFIX, PREFIX_END = "st/", "st0"
EXTRA_GROWTH_LIMIT_KIB = 24 * 1024       # about half of the 50 MiB written
STALL_RCVBUF = 32 * 1024

TOKEN = b'"mod_revision":"'
REV_RE = re.compile(rb'"mod_revision":"(\d+)"')


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def big_value(i):
    return (b"%06d|" % i) + bytes([65 + i % 26]) * (BIG - 7)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dechunk(b):
    """The body of a chunked HTTP/1.1 stream (b: the bytes after the head);
    a partial last chunk is kept."""
    out, pos, n = [], 0, len(b)
    while pos < n:
        j = b.find(b"\r\n", pos)
        if j < 0:
            break
        size = int(bytes(b[pos:j]).split(b";")[0], 16)
        if size == 0:
            break
        start = j + 2
        out.append(bytes(b[start:start + size]))
        pos = start + size + 2
    return b"".join(out)


class RawWatch:
    """A watch stream on its own connection, read raw (non-blocking)."""

    def __init__(self, port, kind, key, range_end=None, rcvbuf=None):
        self.kind = kind
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        if kind == "post":
            cr = {"key": b64(key)}
            if range_end is not None:
                cr["range_end"] = b64(range_end)
            body = json.dumps({"create_request": cr}).encode()
            req = (b"POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body)) + body
        else:
            q = "key=" + urllib.parse.quote(key, safe="")
            if range_end is not None:
                q += "&range_end=" + urllib.parse.quote(range_end, safe="")
            req = ("GET /v3/watch?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Accept: text/event-stream\r\n\r\n" % q).encode()
        s.sendall(req)
        s.setblocking(False)
        self.sock = s
        self.buf = bytearray()
        self.eof = False
        self.count = 0      # mod_revision tokens seen so far (progress only)
        self._scanned = 0

    def fill(self, limit=None):
        """Reads what is there (at most `limit` bytes); False at EOF."""
        got = 0
        while limit is None or got < limit:
            try:
                c = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                c = b""
            if not c:
                self.eof = True
                break
            self.buf += c
            got += len(c)
        start = max(0, self._scanned - len(TOKEN) + 1)
        self.count += self.buf.count(TOKEN, start)
        self._scanned = len(self.buf)
        return not self.eof

    def head_and_body(self):
        i = self.buf.find(b"\r\n\r\n")
        if i < 0:
            return None, b""
        head = bytes(self.buf[:i]).decode("latin-1")
        status = int(head.split("\r\n")[0].split()[1])
        rest = self.buf[i + 4:]
        body = dechunk(rest) if "chunked" in head.lower() else bytes(rest)
        return status, body

    def created(self):
        st, body = self.head_and_body()
        return st == 200 and b'"created":true' in body

    def complete_body(self):
        """The body up to the end of its last complete message: a message
        still arriving (a big value spans many chunks) is not counted yet,
        though its mod_revision may already be here."""
        body = self.head_and_body()[1]
        end = body.rfind(b"\n" if self.kind == "post" else b"\n\n")
        return body[:end + 1] if end >= 0 else b""

    def revisions(self):
        return [int(x) for x in REV_RE.findall(self.complete_body())]

    def responses(self):
        """The complete WatchResponses of the stream, parsed."""
        body = self.complete_body()
        out = []
        if self.kind == "post":
            for line in body.split(b"\n"):
                if line.strip():
                    out.append(json.loads(line)["result"])
        else:
            for msg in body.split(b"\n\n"):
                data = [l[5:].lstrip() for l in msg.split(b"\n") if l.startswith(b"data:")]
                if data:
                    out.append(json.loads(b"\n".join(data)))
        return out

    def events(self):
        """(key, mod_revision, value) of every event, in stream order."""
        return [(base64.b64decode(e["kv"]["key"]), int(e["kv"]["mod_revision"]),
                 base64.b64decode(e["kv"].get("value", "")))
                for r in self.responses() for e in r.get("events", [])]

    def queued_bytes(self):
        """Bytes the kernel holds for us, unread (FIONREAD)."""
        return struct.unpack("i", fcntl.ioctl(self.sock, termios.FIONREAD, b"\0\0\0\0"))[0]

    def close(self):
        self.sock.close()


def has_all(s, want, every=0.5):
    """s has delivered `want` events.  s.count is a hint only (a token split
    by a chunk header is not counted): when it is short, the parsed complete
    messages decide, at most every `every` seconds per stream."""
    if s.count >= want:
        return True
    now = time.monotonic()
    if now - getattr(s, "_parsed_at", 0.0) < every:
        return False
    s._parsed_at = now
    return len(s.revisions()) >= want


def wait_for(pred, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Reader(threading.Thread):
    """Reads every registered stream as data arrives (epoll)."""

    def __init__(self, streams):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        for s in streams:
            self.sel.register(s.sock, selectors.EVENT_READ, s)
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                for key, _ in self.sel.select(0.1):
                    if not key.data.fill():
                        self.sel.unregister(key.fileobj)
        except Exception as e:  # noqa: BLE001 (reported by the tests)
            self.error = e


def write_big(client, i):
    r = client.put("st/big/%03d" % i, big_value(i))
    return int(r["header"]["revision"])


def control_growth(kvgate_factory):
    """Peak RSS growth of a kvgate without watchers for the same large writes."""
    ctl = kvgate_factory()
    try:
        c = ctl.client()
        c.put("warm", "x")
        time.sleep(0.3)
        base = peak = rss_kib(ctl.proc.pid)
        for i in range(N_BIG):
            write_big(c, i)
            if i % 8 == 0:
                peak = max(peak, rss_kib(ctl.proc.pid))
        for _ in range(10):
            time.sleep(0.1)
            peak = max(peak, rss_kib(ctl.proc.pid))
        return peak - base
    finally:
        ctl.stop()


@pytest.fixture(scope="module")
def scenario(kvgate_binary):
    """Runs the whole scenario once; the tests check its record."""
    from kvtest import Kvgate

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N_HEALTHY + 500
    if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    made = []

    def factory(extra_args=()):
        k = Kvgate(extra_args=extra_args, binary=kvgate_binary)
        made.append(k)
        return k.start()

    rec = {"errors": [], "phases": []}
    t0 = time.monotonic()

    def phase(name):  # phase durations, printed (diagnostics, never asserted)
        rec["phases"].append("%s %.1fs" % (name, time.monotonic() - t0))

    streams = []
    reader = None
    try:
        rec["control_growth_kib"] = control_growth(factory)
        phase("control")
        k = factory(["--max-connections", str(N_HEALTHY + 300),
                     "--max-streams", str(N_HEALTHY + 100)])
        pid = k.proc.pid
        c = k.client()
        c.put("warm", "x")

        stalled = [RawWatch(k.port, kind, PREFIX, PREFIX_END, rcvbuf=STALL_RCVBUF)
                   for kind in ("post", "sse")]
        for s in stalled:
            assert wait_for(lambda: (s.fill(), s.created())[1], 10), \
                "stalled reader (%s) not created: %r" % (s.kind, bytes(s.buf[:300]))
        healthy = []
        for i in range(N_HEALTHY):
            healthy.append(RawWatch(k.port, "post" if i % 2 == 0 else "sse", HOT))
        wide = [RawWatch(k.port, kind, PREFIX, PREFIX_END) for kind in ("post", "sse")]
        streams = stalled + healthy + wide
        reader = Reader(healthy + wide)
        reader.start()
        assert wait_for(lambda: all(s.created() for s in healthy + wide), 60, 0.2), \
            "not every healthy watcher was created: %d of %d" % (
                sum(1 for s in healthy + wide if s.created()), len(healthy + wide))

        small_revs, big_revs, txn_revs, expect_all = [], [], [], []

        def small(i):
            r = int(c.put(HOT, "s%04d" % i)["header"]["revision"])
            small_revs.append(r)
            expect_all.append((HOT.encode(), r, b"s%04d" % i))

        for i in range(N_WARM):
            small(i)
        assert wait_for(lambda: all(s.count >= N_WARM for s in healthy), 30, 0.05)
        time.sleep(0.5)
        rec["rss_base_kib"] = rss_kib(pid)
        phase("watchers")

        writer_done = threading.Event()

        def writer():
            try:
                j = 0
                for i in range(N_WARM, N_SMALL):
                    small(i)
                    # spread the large puts over the small ones
                    while j < N_BIG and j * (N_SMALL - N_WARM) <= (i - N_WARM + 1) * N_BIG:
                        r = write_big(c, j)
                        big_revs.append(r)
                        expect_all.append((b"st/big/%03d" % j, r, big_value(j)))
                        j += 1
                while j < N_BIG:
                    r = write_big(c, j)
                    big_revs.append(r)
                    expect_all.append((b"st/big/%03d" % j, r, big_value(j)))
                    j += 1
                # last, many events in few revisions: the stalled readers'
                # queues (1,024 events) overflow, so they also catch up
                # through the victim / history path
                for t in range(N_TXN):
                    ops = [(b"st/m/%02d-%03d" % (t, o), b"m%02d-%03d" % (t, o))
                           for o in range(TXN_OPS)]
                    r = c.txn({"success": [{"request_put": {"key": b64(k_), "value": b64(v_)}}
                                           for k_, v_ in ops]})
                    assert r["succeeded"]
                    rev = int(r["header"]["revision"])
                    txn_revs.append(rev)
                    expect_all.extend((k_, rev, v_) for k_, v_ in ops)
            except Exception as e:  # noqa: BLE001
                rec["errors"].append("writer: %r" % e)
            finally:
                writer_done.set()

        wt = threading.Thread(target=writer, daemon=True)
        peak = rec["rss_base_kib"]
        wt.start()
        deadline = time.monotonic() + 90
        while not writer_done.is_set() and time.monotonic() < deadline:
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)
        rec["writer_finished"] = writer_done.is_set()
        phase("writer")
        rec["small_revs"], rec["big_revs"] = list(small_revs), list(big_revs)
        rec["txn_revs"] = list(txn_revs)
        rec["expect_all"] = sorted(expect_all, key=lambda e: e[1])
        # Still stalled: nothing read from them since their created message.
        rec["stalled_buf_len_at_writer_end"] = [len(s.buf) for s in stalled]
        rec["stalled_kernel_queued"] = [s.queued_bytes() for s in stalled]
        rec["server_alive_while_stalled"] = k.running()
        rec["health_while_stalled"] = k.client().get("/health").status
        # healthy watchers drain while the stalled ones stay stalled
        want_small = len(small_revs)
        want_wide = len(expect_all)
        rec["healthy_drained"] = wait_for(
            lambda: (all(has_all(s, want_small) for s in healthy)
                     and all(has_all(s, want_wide) for s in wide)), 60, 0.1)
        for _ in range(10):
            peak = max(peak, rss_kib(pid))
            time.sleep(0.1)
        rec["rss_peak_kib"] = peak
        phase("healthy drained")
        reader.stop.set()
        reader.join(10)
        rec["reader_error"] = reader.error
        rec["healthy_revs"] = [s.revisions() for s in healthy]
        rec["healthy_kinds"] = [s.kind for s in healthy]
        rec["wide_events"] = [(s.kind, s.events()) for s in wide]

        # The stalled readers read again: everything, in order.
        def drain(s):
            s.fill()
            return s.eof or has_all(s, want_wide)

        for s in stalled:
            s.sock.setblocking(False)
            wait_for(lambda: drain(s), 60, 0.01)
        phase("stalled caught up")
        rec["stalled_events"] = [(s.kind, s.events()) for s in stalled]
        rec["stalled_eof"] = [s.eof for s in stalled]
        rec["rss_after_catchup_kib"] = rss_kib(pid)
        rec["server_alive_end"] = k.running()
        rec["growth_kib"] = rec["rss_peak_kib"] - rec["rss_base_kib"]
        rec["extra_growth_kib"] = rec["growth_kib"] - rec["control_growth_kib"]
        print("stress: %d healthy + 2 wide + 2 stalled; %d small + %d x %d KiB puts + %d txns; "
              "RSS growth %d KiB (control %d KiB, extra %d KiB, limit %d KiB); %s"
              % (N_HEALTHY, len(small_revs), len(big_revs), BIG // 1024, len(txn_revs),
                 rec["growth_kib"],
                 rec["control_growth_kib"], rec["extra_growth_kib"], EXTRA_GROWTH_LIMIT_KIB,
                 ", ".join(rec["phases"])))
        yield rec
    finally:
        if reader is not None:
            reader.stop.set()
            reader.join(5)
        for s in streams:
            s.close()
        for k in made:
            k.cleanup()


def _first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "at %d: %r != %r" % (i, x, y)
    return "lengths %d != %d" % (len(a), len(b))


def _short(events):
    return [(k, r, len(v), v[:8]) for k, r, v in events]


def test_writer_not_blocked_by_stalled_readers(scenario):
    assert not scenario["errors"], scenario["errors"]
    assert scenario["writer_finished"], "the writer did not finish within 90 s"
    assert len(scenario["small_revs"]) == N_SMALL and len(scenario["big_revs"]) == N_BIG
    assert len(scenario["txn_revs"]) == N_TXN
    revs = sorted(set(r for _, r, _ in scenario["expect_all"]))
    assert revs == list(range(revs[0], revs[0] + len(revs))), "revisions not consecutive"
    # the writer was done before anything more was read from the stalled readers
    assert scenario["server_alive_while_stalled"]
    assert scenario["health_while_stalled"] == 200
    assert all(q > 0 for q in scenario["stalled_kernel_queued"]), \
        "the stalled sockets had nothing queued: %r" % scenario["stalled_kernel_queued"]


def test_every_healthy_watcher_gets_every_event_in_order(scenario):
    assert scenario["healthy_drained"], "healthy watchers did not get every event within 60 s"
    assert scenario["reader_error"] is None, scenario["reader_error"]
    want = scenario["small_revs"]
    bad = [(i, kind, _first_diff(got, want))
           for i, (kind, got) in enumerate(zip(scenario["healthy_kinds"], scenario["healthy_revs"]))
           if got != want]
    assert not bad, "%d of %d healthy watchers differ, e.g. %r" % (len(bad), N_HEALTHY, bad[:5])
    for kind, events in scenario["wide_events"]:
        assert events == scenario["expect_all"], "wide %s watcher: %s" % (
            kind, _first_diff(_short(events), _short(scenario["expect_all"])))


def test_stalled_readers_catch_up_in_order(scenario):
    for (kind, events), eof in zip(scenario["stalled_events"], scenario["stalled_eof"]):
        assert not eof, "stalled %s reader: the server closed the stream" % kind
        assert events == scenario["expect_all"], "stalled %s reader: %s" % (
            kind, _first_diff(_short(events), _short(scenario["expect_all"])))
    assert scenario["server_alive_end"]


@pytest.mark.skipif(SANITIZED, reason="RSS means nothing under ASan")
def test_memory_bounded_while_readers_stall(scenario):
    """The stalled streams' backlog (50 MiB of values each) must not be held
    in memory: RSS growth beyond the control's stays under 24 MiB.  Each
    stream's queue is bounded in bytes (watchable stream_queue_bytes, 1 MiB,
    the gateway's encoded output included); past it the stalled readers'
    watchers are parked, then re-read history when they read again.  Before
    that bound (events only, 1,024 per stream) the excess was 113-118 MB."""
    extra = scenario["extra_growth_kib"]
    assert extra < EXTRA_GROWTH_LIMIT_KIB, (
        "RSS grew %d KiB more than the control (limit %d KiB): the stalled streams' "
        "backlog is held in memory" % (extra, EXTRA_GROWTH_LIMIT_KIB))


def _stalled_stream(k, n_values, stall_s):
    """A POST watch whose reader (4 KiB receive buffer) reads nothing while
    n_values values of 100,000 bytes are written, then stall_s more seconds;
    then reads until EOF or 3 s of silence.  Returns (bytes, closed)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", k.port))
    body = json.dumps({"create_request": {"key": b64("stall/big")}})
    s.sendall(("POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body)).encode())
    c = k.client()
    time.sleep(0.3)
    for _ in range(n_values):
        c.put("stall/big", "x" * 100000)
    time.sleep(stall_s)
    s.settimeout(3)
    got, closed = 0, False
    try:
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            got += len(b)
    finally:
        s.close()
    return got, closed


def test_stalled_stream_closed_after_stall_timeout(kvgate_factory):
    """--stream-stall-timeout: a stream whose socket took nothing for that
    long, while a write waited, is closed (kvgate writes idle streams itself
    and keeps what the socket did not take: its flusher thread enforces the
    timeout); the server goes on serving."""
    k = kvgate_factory(extra_args=["--stream-stall-timeout", "2"])
    got, closed = _stalled_stream(k, 40, 4.5)
    assert closed, "the stalled stream is still open after %d bytes" % got
    assert got < 40 * 133000, "every value arrived (%d bytes): nothing stalled" % got
    assert k.client().put("after", "x")["header"]["revision"]


def test_stalled_stream_without_timeout_gets_everything(kvgate_factory):
    """The same stall with --stream-stall-timeout 0: nothing is closed and
    every value arrives once the reader reads again."""
    k = kvgate_factory(extra_args=["--stream-stall-timeout", "0"])
    got, closed = _stalled_stream(k, 40, 4.5)
    assert not closed
    assert got >= 40 * 133336, got  # 40 x base64 of 100,000 bytes, plus framing
