"""Shared code for the watch benchmarks (tests/bench/watch_*.py).

Python 3 standard library only.  Starts kvgate and etcd 3.4 on free
loopback ports with fresh data dirs (see bench_tmpdir), each child killed
if this process dies (PR_SET_PDEATHSIG) and stopped at exit; reads their
RSS and CPU ticks from /proc; and runs many watch streams on one asyncio
loop.

Delivery times are the kernel's receive timestamps (SO_TIMESTAMPNS, the
moment the segment reached the client socket), so a busy client loop that
reads a socket late does not inflate the server's latency; the user-space
read time is kept too.
"""
import asyncio
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "bench")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ANC_SPACE = socket.CMSG_SPACE(16)
CLK_TCK = os.sysconf("SC_CLK_TCK")
_libc = ctypes.CDLL(None, use_errno=True)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def kvgate_bin():
    return os.path.abspath(os.environ.get("KVGATE_BIN") or os.path.join(ROOT, "bin", "kvgate"))


def etcd_bin():
    return os.environ.get("ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def exit_on_sigterm():
    """SIGTERM/SIGHUP (timeout(1), make interrupted) run the finally blocks."""
    def h(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, h)
    signal.signal(signal.SIGHUP, h)


def _child_setup():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def bench_tmpdir():
    """Data dirs: $BENCH_TMPDIR, else /dev/shm (tmpfs: fsync is free, so the
    watch figures measure the watch path, not the disk), else /tmp."""
    d = os.environ.get("BENCH_TMPDIR")
    if d:
        return d
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp"


_etcd_port_next = None


def etcd_ports():
    """(client, peer) ports for an etcd: BENCH_ETCD_PORT_BASE=N gives N, N+1,
    then N+2, N+3 for the next one... (a shared machine may reserve a port
    range per user); else two free ports."""
    global _etcd_port_next
    base = os.environ.get("BENCH_ETCD_PORT_BASE")
    if not base:
        return free_port(), free_port()
    if _etcd_port_next is None:
        _etcd_port_next = int(base)
    cp = _etcd_port_next
    _etcd_port_next += 2
    return cp, cp + 1


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def client_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Server:
    """kind: "kvgate" or "etcd"."""

    def __init__(self, kind, extra_args=()):
        self.kind = kind
        self.extra_args = list(extra_args)
        self.tmp = tempfile.mkdtemp(prefix="kvgate-bench-%s-" % kind,
                                    dir=bench_tmpdir())
        self.proc = None
        self.port = None

    def start(self, timeout=30.0):
        out = open(os.path.join(self.tmp, "stdout"), "wb")
        err = open(os.path.join(self.tmp, "stderr"), "wb")
        if self.kind == "kvgate":
            argv = [kvgate_bin(), "--listen", "127.0.0.1:0",
                    "--data-dir", os.path.join(self.tmp, "data")] + self.extra_args
        else:
            cp, pp = etcd_ports()
            self.port = cp
            argv = [etcd_bin(), "--name", "bench", "--data-dir", os.path.join(self.tmp, "data"),
                    "--listen-client-urls", "http://127.0.0.1:%d" % cp,
                    "--advertise-client-urls", "http://127.0.0.1:%d" % cp,
                    "--listen-peer-urls", "http://127.0.0.1:%d" % pp,
                    "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pp,
                    "--initial-cluster", "bench=http://127.0.0.1:%d" % pp] + self.extra_args
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     preexec_fn=_child_setup)
        out.close()
        err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.kind, self.log_tail()))
            if self.kind == "kvgate" and self.port is None:
                with open(os.path.join(self.tmp, "stdout"), "rb") as f:
                    m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
                if m:
                    self.port = int(m.group(1))
            if self.port is not None and self._healthy():
                return self
            time.sleep(0.05)
        raise RuntimeError("%s not ready: %s" % (self.kind, self.log_tail()))

    def _healthy(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return b'"true"' in s.recv(4096)
        except OSError:
            return False

    def log_tail(self):
        try:
            with open(os.path.join(self.tmp, "stderr"), "rb") as f:
                return f.read()[-1500:].decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_ticks_split(self):
        """(utime, stime) in clock ticks, all threads (stat fields 14, 15)."""
        with open("/proc/%d/stat" % self.pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return int(fields[11]), int(fields[12])

    def cpu_ticks(self):
        return sum(self.cpu_ticks_split())

    def nofile_limit(self):
        with open("/proc/%d/limits" % self.pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def b64(s):
    import base64
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


# ---------------------------------------------------------------- HTTP client

class Http:
    """One keep-alive HTTP/1.1 connection for unary calls (asyncio streams)."""

    def __init__(self, port):
        self.port = port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    def send_post(self, path, body):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.w.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))

    async def read_response(self):
        head = await self.r.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            h[k.strip().lower()] = v.strip()
        if "content-length" in h:
            body = await self.r.readexactly(int(h["content-length"]))
        elif "chunked" in h.get("transfer-encoding", ""):
            body = b""
            while True:
                n = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                if n == 0:
                    await self.r.readuntil(b"\r\n")
                    break
                body += await self.r.readexactly(n)
                await self.r.readexactly(2)
        else:
            body = await self.r.read()
        return status, body

    async def post(self, path, body):
        self.send_post(path, body)
        await self.w.drain()
        return await self.read_response()

    async def put(self, key, value):
        """Returns (send time (time.time()), revision)."""
        t = time.time()
        st, body = await self.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        if st != 200:
            raise RuntimeError("put: %d %r" % (st, body[:200]))
        return t, int(json.loads(body)["header"]["revision"])

    def close(self):
        if self.w is not None:
            self.w.close()


async def concurrent_puts(port, n, conns=64, key_fmt="k/%06d", value=b"x" * 100):
    """n puts on distinct keys over `conns` keep-alive connections, each
    with several requests in flight (pipelined) so the client is not the
    bottleneck.  Returns the highest revision seen."""
    top = [0]
    nxt = [0]

    async def worker():
        c = await Http(port).open()
        try:
            while nxt[0] < n:
                batch = []
                while nxt[0] < n and len(batch) < 8:
                    batch.append(nxt[0])
                    nxt[0] += 1
                for i in batch:
                    c.send_post("/v3/kv/put", {"key": b64(key_fmt % i), "value": b64(value)})
                await c.w.drain()
                for _ in batch:
                    st, body = await c.read_response()
                    if st != 200:
                        raise RuntimeError("put: %d %r" % (st, body[:200]))
                    top[0] = max(top[0], int(json.loads(body)["header"]["revision"]))
        finally:
            c.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return top[0]


# ---------------------------------------------------------------- watch streams

class Dechunker:
    """Incremental HTTP/1.1 response parser: head, then a chunked body."""

    def __init__(self):
        self.head_done = False
        self.status = None
        self.chunked = False
        self.raw = b""
        self.left = 0      # data bytes left in the current chunk
        self.skip = 0      # CRLF bytes to skip after a chunk
        self.eof = False

    def feed(self, data):
        self.raw += data
        out = []
        if not self.head_done:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return b""
            head = self.raw[:i].decode("latin-1")
            self.raw = self.raw[i + 4:]
            self.status = int(head.split("\r\n")[0].split()[1])
            self.chunked = "chunked" in head.lower()
            self.head_done = True
        if not self.chunked:
            out, self.raw = self.raw, b""
            return out
        raw = self.raw
        pos = 0
        n = len(raw)
        while pos < n and not self.eof:
            if self.left:
                take = min(self.left, n - pos)
                out.append(raw[pos:pos + take])
                pos += take
                self.left -= take
            elif self.skip:
                take = min(self.skip, n - pos)
                pos += take
                self.skip -= take
            else:
                j = raw.find(b"\r\n", pos)
                if j < 0:
                    break
                size = int(raw[pos:j].split(b";")[0], 16)
                pos = j + 2
                if size == 0:
                    self.eof = True
                else:
                    self.left, self.skip = size, 2
        self.raw = raw[pos:]
        return b"".join(out)


REV_RE = re.compile(rb'"mod_revision":"(\d+)"')


class Watcher:
    """One watch stream on its own connection, read with recvmsg (kernel
    receive timestamps) from an asyncio reader callback.  Records the
    mod_revision of every event and when it arrived."""

    def __init__(self, stats):
        self.stats = stats       # shared dict: "events" counter
        self.sock = None
        self.dec = Dechunker()
        self.tail = b""
        self.created = asyncio.get_event_loop().create_future()
        self.revs = []
        self.kts = []            # kernel receive time (time.time() clock)
        self.uts = []            # user-space read time
        self.closed = False
        self.error = None
        self.body_bytes = 0

    async def open(self, port, request, timeout=60.0):
        loop = asyncio.get_event_loop()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock = s
        try:
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), timeout)
            await loop.sock_sendall(s, request)
            loop.add_reader(s.fileno(), self._on_read)
            await asyncio.wait_for(asyncio.shield(self.created), timeout)
        except Exception as e:  # noqa: BLE001 (reported, counted as not established)
            self.error = self.error or "%s: %s" % (type(e).__name__, e)
            return False
        return True

    def _on_read(self):
        try:
            data, anc, _, _ = self.sock.recvmsg(262144, ANC_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            data, anc = b"", []
            self.error = self.error or str(e)
        now = time.time()
        if not data:
            self._close_reader("eof")
            return
        kt = now
        for lvl, typ, d in anc:
            if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                sec, ns = struct.unpack("qq", d[:16])
                kt = sec + ns * 1e-9
        body = self.dec.feed(data)
        if self.dec.head_done and self.dec.status != 200 and not self.created.done():
            self.error = "HTTP %s" % self.dec.status
            self.created.set_result(False)
        if not body:
            return
        self.body_bytes += len(body)
        s = self.tail + body
        end = 0
        if not self.created.done() and b'"created":true' in s:
            self.created.set_result(True)
        n0 = len(self.revs)
        for m in REV_RE.finditer(s):
            self.revs.append(int(m.group(1)))
            end = m.end()
        k = len(self.revs) - n0
        if k:
            self.kts.extend([kt] * k)
            self.uts.extend([now] * k)
            self.stats["events"] += k
        if b'"canceled":true' in s and self.error is None:
            self.error = "canceled"
        self.tail = s[end:][-64:]

    def _close_reader(self, why):
        if not self.closed:
            self.closed = True
            try:
                asyncio.get_event_loop().remove_reader(self.sock.fileno())
            except Exception:  # noqa: BLE001
                pass
            if not self.created.done():
                self.error = self.error or why
                self.created.set_result(False)

    def close(self):
        self._close_reader("closed")
        if self.sock is not None:
            self.sock.close()


def post_watch_request(key, start_revision=None, range_end=None):
    cr = {"key": b64(key)}
    if start_revision is not None:
        cr["start_revision"] = start_revision
    if range_end is not None:
        cr["range_end"] = b64(range_end)
    body = json.dumps({"create_request": cr}).encode()
    return (b"POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def sse_watch_request(key, **params):
    q = "key=" + urllib.parse.quote(key, safe="")
    for k, v in params.items():
        q += "&%s=%s" % (k, urllib.parse.quote(str(v), safe=""))
    return ("GET /v3/watch?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
            % q).encode()


async def open_watchers(port, n, request, concurrency=100, timeout=60.0, stats=None):
    stats = stats if stats is not None else {"events": 0}
    sem = asyncio.Semaphore(concurrency)
    ws = [Watcher(stats) for _ in range(n)]

    async def one(w):
        async with sem:
            return await w.open(port, request, timeout)

    ok = await asyncio.gather(*(one(w) for w in ws))
    return ws, sum(1 for x in ok if x), stats


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def write_json(name, obj):
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def _git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def host_info():
    b = kvgate_bin()
    return {"git_head": _git("rev-parse", "HEAD"),
            "git_dirty_store_gateway": _git("status", "--short", "--", "store", "gateway"),
            "kvgate_bin_mtime": (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(b)))
                                 if os.path.exists(b) else None),
            "nproc": os.cpu_count(), "kernel": os.uname().release,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "kvgate_bin": b, "etcd_bin": etcd_bin(),
            "clk_tck": CLK_TCK, "data_dir_base": bench_tmpdir(), "loadavg_at_end": loadavg()}


def loadavg():
    """/proc/loadavg's 1-minute figure: other work on the machine skews the
    figures (2 cores shared by the servers, the client and anything else)."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])
