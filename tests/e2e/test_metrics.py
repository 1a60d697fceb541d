"""GET /metrics: the Prometheus text exposition format (0.0.4), parsed
strictly here, and counters that move with the requests, watches, writes,
compactions and leases made against the server; the log lines on stderr
(format, --log-level) and a stdout that holds only the readiness line."""
import json
import math
import re
import socket
import threading
import time

import pytest

from kvtest import b64

# ---- a strict parser of the text format ---------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) "
                      r"[a-z_]+: \S.*$")


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    assert re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s), "bad value %r" % s
    return float(s)


def parse_labels(s, line):
    """`k="v",k2="v2"` with \\\\, \\" and \\n escapes; returns a dict."""
    out, i = {}, 0
    while i < len(s):
        m = re.compile(LABEL + "=\"").match(s, i)
        assert m, "bad label at %d in %r" % (i, line)
        key = s[i:m.end() - 2]
        i = m.end()
        val = []
        while True:
            assert i < len(s), "unterminated label value in %r" % line
            c = s[i]
            if c == "\\":
                nxt = s[i + 1]
                assert nxt in "\\\"n", "bad escape in %r" % line
                val.append({"\\": "\\", "\"": "\"", "n": "\n"}[nxt])
                i += 2
            elif c == "\"":
                i += 1
                break
            else:
                assert c != "\n"
                val.append(c)
                i += 1
        assert key not in out, "label %s twice in %r" % (key, line)
        out[key] = "".join(val)
        if i < len(s):
            assert s[i] == ",", "want , in %r" % line
            i += 1
    return out


def parse_exposition(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}.
    Strict: every sample belongs to the family declared just before it (HELP
    and TYPE once each, before any sample), no duplicate series, histogram
    buckets cumulative and ending in +Inf == _count, counters >= 0."""
    assert text.endswith("\n"), "the text must end in a newline"
    fams, cur, seen = {}, None, set()
    for line in text[:-1].split("\n"):
        assert line == line.strip() and line, "blank or padded line %r" % line
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (" + NAME + r") (.*)", line)
            if not m:
                continue  # a plain comment
            kind, name, rest = m.groups()
            f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            assert not f["samples"], "%s after samples of %s" % (kind, name)
            if kind == "TYPE":
                assert f["type"] is None and rest in TYPES, line
                f["type"] = rest
            else:
                assert f["help"] is None, line
                f["help"] = rest
            cur = name
            continue
        m = re.fullmatch(r"(" + NAME + r")(\{(.*)\})? (\S+)( -?\d+)?", line)
        assert m, "bad sample line %r" % line
        name, _, lab, val, _ts = m.groups()
        labels = parse_labels(lab or "", line)
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, "duplicate series %r" % line
        seen.add(key)
        assert cur is not None, "sample before any TYPE: %r" % line
        f = fams[cur]
        ok = name == cur or (f["type"] == "histogram" and name in (cur + "_bucket", cur + "_sum", cur + "_count"))
        assert ok, "sample %s outside its family %s" % (name, cur)
        v = parse_value(val)
        if f["type"] == "counter" or name.endswith(("_bucket", "_count")):
            assert v >= 0, line
        f["samples"].append((name, labels, v))
    for name, f in fams.items():
        assert f["type"], "%s has no TYPE" % name
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return fams


def check_histogram(name, samples):
    series = {}
    for n, labels, v in samples:
        base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if n == name + "_bucket":
            s["buckets"].append((parse_value(labels["le"]), v))
        elif n == name + "_sum":
            s["sum"] = v
        elif n == name + "_count":
            s["count"] = v
    for base, s in series.items():
        b = s["buckets"]
        assert b and b[-1][0] == math.inf, "%s%r: no +Inf bucket" % (name, base)
        assert [le for le, _ in b] == sorted(le for le, _ in b), "%s: le out of order" % name
        assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), "%s: not cumulative" % name
        assert s["count"] == b[-1][1], "%s%r: _count != +Inf bucket" % (name, base)
        assert s["sum"] is not None, "%s%r: no _sum" % (name, base)


def test_parser_rejects_bad_text():
    for bad in ("x 1",                                    # no newline at the end
                "# TYPE x counter\nx{a=\"1\",a=\"2\"} 1\n",  # label twice
                "# TYPE x counter\nx 1\nx 2\n",             # series twice
                "# TYPE x counter\ny 1\n",                  # outside its family
                "# TYPE x histogram\nx_bucket{le=\"1\"} 2\nx_bucket{le=\"+Inf\"} 1\nx_sum 0\nx_count 1\n",
                "# TYPE x gauge\nx{a=\"\\q\"} 1\n",          # bad escape
                "# TYPE x gauge\nx one\n"):
        with pytest.raises(AssertionError):
            parse_exposition(bad)


# ---- helpers ---------------------------------------------------------------------

def scrape(c):
    r = c.get("/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse_exposition(r.raw.decode("utf-8"))


def value(fams, name, **labels):
    fam = fams.get(name) or fams.get(re.sub(r"_(bucket|sum|count)$", "", name))
    assert fam, "no family for %s" % name
    for n, lab, v in fam["samples"]:
        if n == name and all(lab.get(k) == x for k, x in labels.items()):
            return v
    return 0.0


def hist_count(fams, name, **labels):
    return value(fams, name + "_count", **labels)


class WatchStream:
    """A POST /v3/watch stream read on a thread (JSON lines)."""

    def __init__(self, port, key):
        body = json.dumps({"create_request": {"key": b64(key)}}).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.data = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return
                with self.lock:
                    self.data += d
        except OSError:
            return

    def wait_for(self, needle, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if needle in self.data:
                    return
            time.sleep(0.02)
        raise AssertionError("not seen on the stream: %r (got %r)" % (needle, self.data[-300:]))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_until(fn, timeout=10):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.05)


# ---- tests -----------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_metrics_parse_and_move(kvgate):
    c = kvgate.client()
    m0 = scrape(c)
    for name in ("kvgate_http_requests_total", "kvgate_http_request_duration_seconds",
                 "kvgate_http_connections", "kvgate_http_requests_in_flight",
                 "kvgate_watch_streams", "kvgate_watch_events_sent_total", "kvgate_watchers",
                 "kvgate_watch_streams_refused_total", "kvgate_store_revision",
                 "kvgate_store_compact_revision", "kvgate_store_db_size_bytes",
                 "kvgate_store_commits_total", "kvgate_store_fsyncs_total",
                 "kvgate_store_commit_batch_size", "kvgate_leases", "kvgate_leases_expired_total",
                 "kvgate_store_compactions_total"):
        assert name in m0, "missing family %s" % name
    assert m0["kvgate_http_request_duration_seconds"]["type"] == "histogram"
    assert m0["kvgate_store_commit_batch_size"]["type"] == "histogram"
    assert m0["kvgate_http_requests_total"]["type"] == "counter"
    assert m0["kvgate_watchers"]["type"] == "gauge"

    # a watch with events, puts, a 404, a lease, a compaction
    w = WatchStream(kvgate.port, "mk")
    w.wait_for(b'"created":true')
    for i in range(5):
        c.put("mk", "v%d" % i)
    w.wait_for(b'"value":"' + b64("v4").encode() + b'"')
    assert c.get("/no/such/path").status == 404
    lease = c.post("/v3/lease/grant", {"TTL": 60}).json()
    assert lease["ID"]
    rev = int(c.range("mk")["header"]["revision"])
    assert c.post("/v3/kv/compaction", {"revision": rev - 1, "physical": True}).status == 200

    m1 = scrape(c)
    assert value(m1, "kvgate_http_requests_total", endpoint="/v3/kv/put", code="200") - \
        value(m0, "kvgate_http_requests_total", endpoint="/v3/kv/put", code="200") == 5
    assert value(m1, "kvgate_http_requests_total", endpoint="other", code="404") >= 1
    assert value(m1, "kvgate_http_requests_total", endpoint="/metrics", code="200") >= 1
    assert hist_count(m1, "kvgate_http_request_duration_seconds", endpoint="/v3/kv/put") == \
        hist_count(m0, "kvgate_http_request_duration_seconds", endpoint="/v3/kv/put") + 5
    assert value(m1, "kvgate_watch_streams") >= 1
    assert value(m1, "kvgate_watchers", group="synced") >= 1
    for g in ("synced", "unsynced", "victim"):
        assert value(m1, "kvgate_watchers", group=g) >= 0
    assert value(m1, "kvgate_watch_events_sent_total") - value(m0, "kvgate_watch_events_sent_total") >= 5
    assert value(m1, "kvgate_http_connections") >= 2  # this client and the watch
    assert value(m1, "kvgate_store_revision") == rev
    assert value(m1, "kvgate_store_compact_revision") == rev - 1
    assert value(m1, "kvgate_store_commits_total") - value(m0, "kvgate_store_commits_total") >= 7
    assert value(m1, "kvgate_store_fsyncs_total") >= 6  # sync writes on a real data dir
    assert value(m1, "kvgate_store_db_size_bytes") > 0
    assert value(m1, "kvgate_leases") == value(m0, "kvgate_leases") + 1
    assert hist_count(m1, "kvgate_store_commit_batch_size") == value(m1, "kvgate_store_commits_total")
    assert value(m1, "kvgate_store_commit_batch_size_sum") >= value(m1, "kvgate_store_commits_total")
    assert wait_until(lambda: value(scrape(c), "kvgate_store_compactions_total") >= 1)
    # (a suspended stream notices its client leaving only at the next
    # write or idle poll, so the gauge going down is not waited for here)
    w.close()


@pytest.mark.timeout(60)
def test_lease_expiry_counted_and_logged(kvgate_factory):
    k = kvgate_factory()
    c = k.client()
    c.post("/v3/lease/grant", {"TTL": 2, "ID": 77})
    assert wait_until(lambda: value(scrape(c), "kvgate_leases_expired_total") >= 1, timeout=15)
    assert value(scrape(c), "kvgate_leases") == 0
    assert wait_until(lambda: "info lease: leases expired count=1" in k.stderr())


@pytest.mark.timeout(60)
def test_log_lines(kvgate_factory):
    k = kvgate_factory()
    c = k.client()
    c.put("a", "1")
    c.post("/v3/kv/compaction", {"revision": 2, "physical": True})
    assert wait_until(lambda: "compaction finished rev=2" in k.stderr())
    rc = k.stop()
    assert rc == 0
    err = k.stderr()
    lines = [l for l in err.splitlines() if l.strip()]
    for l in lines:
        assert LOG_LINE.match(l), "not a log line: %r" % l
    assert re.search(r" info kvgate: listening url=http://127\.0\.0\.1:%d data_dir=\S+" % k.port, err), err
    assert " info store: compaction scheduled rev=2" in err, err
    assert " info kvgate: stopping signal=SIGTERM" in err, err
    assert lines[-1].endswith(" info kvgate: stopped"), err
    # stdout: the readiness line and nothing else
    assert k.stdout().splitlines() == ["kvgate listening on http://127.0.0.1:%d" % k.port], k.stdout()


@pytest.mark.timeout(60)
def test_log_level_warn_drops_info(kvgate_factory):
    k = kvgate_factory(extra_args=("--log-level", "warn"))
    k.client().put("a", "1")
    assert k.stop() == 0
    assert k.stderr().strip() == "", k.stderr()


@pytest.mark.timeout(30)
def test_log_level_rejects_unknown(kvgate_binary):
    import subprocess
    p = subprocess.run([kvgate_binary, "--log-level", "loud", "--ephemeral"], capture_output=True,
                       timeout=10)
    assert p.returncode == 2
    assert b"--log-level" in p.stderr and p.stdout == b""


@pytest.mark.timeout(60)
def test_refused_stream_counted_and_logged(kvgate_factory):
    k = kvgate_factory(extra_args=("--max-streams", "1"))
    c = k.client()
    w = WatchStream(k.port, "x")
    w.wait_for(b'"created":true')
    r = c.post("/v3/watch", {"create_request": {"key": b64("y")}})
    assert r.status == 429, r
    m = scrape(c)
    assert value(m, "kvgate_watch_streams_refused_total") == 1
    assert value(m, "kvgate_http_requests_total", endpoint="/v3/watch", code="429") == 1
    assert wait_until(lambda: "warn watch: stream refused at limit max_streams=1" in k.stderr())
    w.close()


@pytest.mark.timeout(60)
def test_commit_failure_counted_and_logged(kvgate_factory, monkeypatch):
    """A failing batch write (store/backend.c's test hook): the put gets 500,
    the failure and the 5xx are counted and each logged once."""
    monkeypatch.setenv("KVGATE_TEST_FAIL_WRITES", "1,1,io")  # write 2 (after the init) fails
    k = kvgate_factory()
    c = k.client()
    r = c.post("/v3/kv/put", {"key": b64("a"), "value": b64("1")})
    assert r.status == 500, r
    assert c.post("/v3/kv/put", {"key": b64("a"), "value": b64("1")}).status == 200
    m = scrape(c)
    assert value(m, "kvgate_store_commit_failures_total") == 1
    assert value(m, "kvgate_http_requests_total", endpoint="/v3/kv/put", code="500") == 1
    err = k.stderr()
    assert re.search(r" error store: commit failed err=KV_ERR_IO requests=1 rev=1\n", err), err
    assert re.search(r" warn http: server error status=500 method=POST path=/v3/kv/put latency_us=\d+\n", err), err


@pytest.mark.timeout(90)
def test_slow_consumer_counted_and_logged(kvgate):
    """A watch stream whose client stops reading while big values are put:
    its watcher is parked (victim), which the counters show and the log
    tells once (rate-limited)."""
    c = kvgate.client()
    body = json.dumps({"create_request": {"key": b64("big")}}).encode()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.connect(("127.0.0.1", kvgate.port))
    try:
        s.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(0.3)  # created; from here on nothing is read
        val = b64("v" * 200000)
        for i in range(60):
            assert c.post("/v3/kv/put", {"key": b64("big"), "value": val}).status == 200
            if value(scrape(c), "kvgate_watch_victimized_total") >= 1:
                break
        m = scrape(c)
        assert value(m, "kvgate_watch_victimized_total") >= 1
        assert wait_until(lambda: "warn watch: slow consumer: watcher parked as victim" in kvgate.stderr())
        assert kvgate.stderr().count("slow consumer") == 1
    finally:
        s.close()
