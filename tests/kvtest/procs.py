"""Start, stop, restart and kill kvgate and a real etcd 3.4 on loopback.

Every process started here is recorded in _LIVE and killed by kill_all()
(conftest calls it at session end, and atexit does as a last resort).
Every wait is bounded.  Data dirs live under /dev/shm when it exists
(fast fsync; a kill -9 does not lose the page cache, so crash tests stay
meaningful for process crashes).
"""
import atexit
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_LIVE = set()
_TMP_BASE = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


LISTEN_LINE = re.compile(r"^kvgate listening on http://127\.0\.0\.1:(\d+)$")


class ServerError(Exception):
    pass


def kvgate_bin():
    return os.path.abspath(os.environ.get("KVGATE_BIN") or os.path.join(REPO, "bin", "kvgate"))


def etcd_bin():
    return os.path.abspath(os.environ.get("ETCD_BIN") or "/usr/bin/etcd")


_HANDED_OUT = set()


def free_port():
    """A port that was free a moment ago (bind to 0 on 127.0.0.1), never
    one this process handed out before (two servers started together must
    not race for the same port)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no fresh free port")


_TMPS = []


def mktemp(prefix, disk=False):
    """A new temp dir, removed by kill_all_servers() at session end.
    disk=True: on the real file system (/tmp), where fsync takes time."""
    d = tempfile.mkdtemp(prefix=prefix, dir=None if disk else _TMP_BASE)
    _TMPS.append(d)
    return d


def kill_all_servers():
    for p in list(_LIVE):
        try:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        except Exception:
            pass
        _LIVE.discard(p)
    while _TMPS:
        shutil.rmtree(_TMPS.pop(), ignore_errors=True)


atexit.register(kill_all_servers)


def _http_get(port, path, timeout=1.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Server:
    """Base: a child process with a data dir, a port and log files."""
    name = "server"
    start_timeout = 20.0

    def __init__(self, port=None, data_dir=None, extra_args=()):
        self.tmp = mktemp("kvtest-%s-" % self.name)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0

    # -- to override --
    def argv(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    # -- common --
    @property
    def host(self):
        return "127.0.0.1"

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def client(self, timeout=10.0):
        from .client import Client
        return Client("127.0.0.1", self.port, timeout)

    def log_paths(self):
        return (os.path.join(self.tmp, "stdout.%d" % self.starts),
                os.path.join(self.tmp, "stderr.%d" % self.starts))

    def spawn(self):
        """Start the process without waiting for readiness."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        out, err = self.log_paths()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=fo, stderr=fe, cwd=self.tmp)
        _LIVE.add(self.proc)
        return self.proc

    def start(self, timeout=None):
        self.spawn()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError("%s exited with %s before ready: %s"
                                  % (self.name, self.proc.returncode, self.stderr()[-2000:]))
            try:
                if self.ready():
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)
        self.kill()
        raise ServerError("%s not ready within %ss: %s"
                          % (self.name, timeout or self.start_timeout, self.stderr()[-2000:]))

    def stdout(self):
        try:
            with open(self.log_paths()[0], "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr(self):
        try:
            with open(self.log_paths()[1], "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to timeout, then SIGKILL.  Returns the exit code
        (negative signal number if it had to be killed or died by a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        _LIVE.discard(self.proc)
        return self.proc.returncode

    def kill(self):
        """kill -9; returns once the process is gone."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        _LIVE.discard(self.proc)
        return self.proc.returncode

    def restart(self, timeout=None):
        self.stop()
        return self.start(timeout)

    def cleanup(self):
        """Stop (SIGTERM, so a sanitizer build can report leaks at exit; kill
        -9 after 5 s) and remove the temp dir (a data dir given by the
        caller lives elsewhere and is removed with its own temp dir)."""
        self.stop(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Kvgate(Server):
    name = "kvgate"
    start_timeout = 20.0

    def __init__(self, port=None, data_dir=None, extra_args=(), binary=None):
        self.binary = binary or kvgate_bin()
        super().__init__(port, data_dir, extra_args)

    def argv(self):
        return [self.binary, "--listen", "127.0.0.1:%d" % self.port,
                "--data-dir", self.data_dir] + self.extra_args

    def ready(self):
        if self.port == 0:
            # --listen 127.0.0.1:0: the port is on the readiness line.
            m = [LISTEN_LINE.match(l) for l in self.stdout().splitlines()]
            m = [x for x in m if x]
            if not m:
                return False
            self.port = int(m[0].group(1))
        # Any HTTP answer means the listener is up and serving.
        _http_get(self.port, "/version", 1.0)
        return True

    def wait_listen_line(self, timeout=10.0):
        """With port 0: wait for the readiness line, return the port."""
        self.wait_ready(timeout)
        return self.port




class Etcd(Server):
    name = "etcd"
    start_timeout = 30.0

    def __init__(self, port=None, data_dir=None, extra_args=()):
        super().__init__(port, data_dir, extra_args)
        self.peer_port = free_port()
        while self.peer_port == self.port:
            self.peer_port = free_port()

    def argv(self):
        c = "http://127.0.0.1:%d" % self.port
        p = "http://127.0.0.1:%d" % self.peer_port
        return [etcd_bin(), "--name", "default", "--data-dir", self.data_dir,
                "--listen-client-urls", c, "--advertise-client-urls", c,
                "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                "--initial-cluster", "default=" + p,
                "--listen-metrics-urls", "", "--log-level", "error"] + self.extra_args

    def ready(self):
        st, body = _http_get(self.port, "/health", 1.0)
        return st == 200 and b'"true"' in body
