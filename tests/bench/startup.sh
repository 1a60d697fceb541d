#!/usr/bin/env bash
# tests/bench/startup.sh [STARTS] — how fast kvgate is ready to serve, for
# test fixtures that start a server per test (README "Test-fixture mode").
#
# Measures, STARTS times each (default 30), from the fork of the server to
# its first successful POST /v3/kv/range (200):
#   kvgate --ephemeral            in memory (RocksDB in-memory env)
#   kvgate --data-dir NEW         a fresh data dir each time (creates the store)
#   kvgate --data-dir SAME        restart on one data dir holding 1,000 keys
#   etcd 3.4 --data-dir NEW       for context (skipped if etcd is missing)
#   etcd 3.4 --data-dir SAME
# kvgate is started with --listen 127.0.0.1:0 and is ready when it prints
# its "kvgate listening on" line (then one range); etcd (which prints no such
# line) is polled with a range every millisecond on its port.  Each start is
# stopped with SIGTERM before the next.  Prints min / median / p90 / max per
# mode and the kvgate "ready line" median; writes
# tests/artifacts/bench/startup.json.  Goal: kvgate median < 100 ms.
#
# Environment: KVGATE_BIN (default bin/kvgate), ETCD_BIN (default etcd on
# PATH), KVGATE_ARGS (extra flags).  Everything on loopback, every start
# bounded (10 s for kvgate, 30 s for etcd).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STARTS=${1:-30}
KVGATE_BIN=${KVGATE_BIN:-$ROOT/bin/kvgate}
ETCD_BIN=${ETCD_BIN:-$(command -v etcd || true)}
OUT=$ROOT/tests/artifacts/bench
mkdir -p "$OUT"
[ -x "$KVGATE_BIN" ] || { echo "startup.sh: $KVGATE_BIN not built (make)" >&2; exit 1; }

exec timeout -k 10 900 python3 - "$KVGATE_BIN" "$ETCD_BIN" "$STARTS" "$OUT/startup.json" "${KVGATE_ARGS:-}" <<'EOF'
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

kvgate, etcd, starts, out_json, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5].split()
BODY = b'{"key":"Zm9v"}'
REQ = (b"POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY)) + BODY

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def range_ok(port, timeout=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(REQ)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False

def stop(p, limit=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(limit)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()

def kvgate_start(args):
    t0 = time.perf_counter()
    p = subprocess.Popen([kvgate, "--listen", "127.0.0.1:0"] + args + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 10
        line = p.stdout.readline()
        t_line = time.perf_counter()
        if not line.startswith(b"kvgate listening on http://"):
            raise RuntimeError("kvgate did not start: %r" % line)
        port = int(line.rsplit(b":", 1)[1])
        while not range_ok(port):
            if time.perf_counter() > deadline:
                raise RuntimeError("kvgate: no answer to a range")
            time.sleep(0.0005)
        t_ready = time.perf_counter()
        return (t_ready - t0) * 1e3, (t_line - t0) * 1e3
    finally:
        stop(p)

def etcd_start(d):
    cp, pp = free_port(), free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([etcd, "--name", "bench", "--data-dir", d,
                          "--listen-client-urls", "http://127.0.0.1:%d" % cp,
                          "--advertise-client-urls", "http://127.0.0.1:%d" % cp,
                          "--listen-peer-urls", "http://127.0.0.1:%d" % pp,
                          "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pp,
                          "--initial-cluster", "bench=http://127.0.0.1:%d" % pp,
                          "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 30
        while not range_ok(cp, 0.5):
            if p.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError("etcd did not start")
            time.sleep(0.001)
        return (time.perf_counter() - t0) * 1e3, None
    finally:
        stop(p, 20)

def summary(xs):
    xs = sorted(xs)
    return {"n": len(xs), "min": round(xs[0], 1), "median": round(statistics.median(xs), 1),
            "p90": round(xs[min(len(xs) - 1, int(len(xs) * 0.9))], 1), "max": round(xs[-1], 1)}

tmp = tempfile.mkdtemp(prefix="kvgate-startup.")
results = {}
try:
    # a data dir with 1,000 keys for the "same dir" runs
    same = os.path.join(tmp, "same")
    p = subprocess.Popen([kvgate, "--listen", "127.0.0.1:0", "--data-dir", same] + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(p.stdout.readline().rsplit(b":", 1)[1])
    for i in range(1000):
        b = b'{"key":"%s","value":"dmFsdWU="}' % __import__("base64").b64encode(b"key%04d" % i)
        r = (b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(b)) + b
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(r); s.recv(4096)
    stop(p)

    modes = [("kvgate --ephemeral", lambda i: kvgate_start(["--ephemeral"])),
             ("kvgate --data-dir NEW", lambda i: kvgate_start(["--data-dir", os.path.join(tmp, "new%d" % i)])),
             ("kvgate --data-dir SAME (1000 keys)", lambda i: kvgate_start(["--data-dir", same]))]
    if etcd and os.access(etcd, os.X_OK):
        esame = os.path.join(tmp, "etcd-same")
        etcd_start(esame)
        modes += [("etcd --data-dir NEW", lambda i: etcd_start(os.path.join(tmp, "etcd-new%d" % i))),
                  ("etcd --data-dir SAME", lambda i: etcd_start(esame))]
    print("startup: fork -> first successful range, %d starts each (ms)" % starts)
    print("%-36s %7s %7s %7s %7s   %s" % ("mode", "min", "median", "p90", "max", "ready line median"))
    for name, fn in modes:
        ready, line = [], []
        fn(-1)  # warm-up (page cache), not counted
        for i in range(starts):
            r, l = fn(i)
            ready.append(r)
            if l is not None:
                line.append(l)
        s = summary(ready)
        results[name] = {"ready_ms": s}
        extra_col = ""
        if line:
            results[name]["line_ms"] = summary(line)
            extra_col = "%.1f" % results[name]["line_ms"]["median"]
        print("%-36s %7.1f %7.1f %7.1f %7.1f   %s" % (name, s["min"], s["median"], s["p90"], s["max"], extra_col))
        for i in range(starts):
            shutil.rmtree(os.path.join(tmp, "new%d" % i), ignore_errors=True)
            shutil.rmtree(os.path.join(tmp, "etcd-new%d" % i), ignore_errors=True)
    results["_meta"] = {"starts": starts, "kvgate": kvgate, "etcd": etcd, "nproc": os.cpu_count(),
                        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with open(out_json, "w") as f:
        json.dump(results, f, indent=1)
    print("written: %s" % out_json)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
EOF
