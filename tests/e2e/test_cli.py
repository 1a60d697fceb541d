"""Command line: --help, --version, the readiness line with --listen :0,
and start-up errors (one line on stderr, non-zero exit, no hang)."""
import os
import re
import socket
import subprocess
import time

import pytest

from kvtest import Kvgate, free_port, mktemp, LISTEN_LINE


def run(binary, args, timeout=10):
    try:
        p = subprocess.run([binary] + args, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, cwd=mktemp("kvtest-cli-"))
    except subprocess.TimeoutExpired as e:
        pytest.fail("kvgate %s did not exit within %ds (stderr: %r)" % (" ".join(args), timeout, e.stderr))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def one_line_error(rc, out, err):
    """A start-up failure: non-zero exit, exactly one (non-warning) line on stderr."""
    assert rc not in (0, None) and rc > 0, "exit status %r (stderr %r)" % (rc, err)
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("kvgate: warning")]
    assert len(lines) == 1, "want one line on stderr, got %r" % err
    assert "listening" not in out, out
    return lines[0]


def test_help(kvgate_binary):
    rc, out, err = run(kvgate_binary, ["--help"])
    assert rc == 0, err
    for flag in ("--listen", "--data-dir", "--cors-origins"):
        assert flag in out, "--help does not mention %s: %r" % (flag, out)


def test_version(kvgate_binary):
    rc, out, err = run(kvgate_binary, ["--version"])
    assert rc == 0, err
    assert len(out.strip().splitlines()) == 1, out
    assert re.search(r"\d+\.\d+", out), out


@pytest.mark.parametrize("args", [
    ["--no-such-flag"],
    ["--listen"],                       # missing value
    ["--version=yes"],                  # a switch with a value
    ["stray-argument"],
    ["--listen", "not-an-address", "--data-dir", "DATA"],
    ["--listen", "127.0.0.1:99999", "--data-dir", "DATA"],
    ["--max-request-bytes", "-5", "--listen", "127.0.0.1:0", "--data-dir", "DATA"],
], ids=["unknown-flag", "missing-value", "switch-with-value", "stray-arg", "bad-listen", "bad-port",
        "negative-number"])
def test_bad_command_line(kvgate_binary, args):
    tmp = mktemp("kvtest-cli-")
    args = [a.replace("DATA", os.path.join(tmp, "d")) for a in args]
    rc, out, err = run(kvgate_binary, args)
    one_line_error(rc, out, err)


def test_listen_port_zero_prints_one_ready_line(kvgate_binary):
    """The line appears once the server accepts: the first request right
    after it (no retry) must succeed."""
    k = Kvgate(port=0, binary=kvgate_binary)
    try:
        k.spawn()
        deadline = time.monotonic() + 15
        m = None
        while time.monotonic() < deadline and k.running():
            lines = k.stdout().splitlines()
            if lines:
                m = LISTEN_LINE.match(lines[0])
                break
            time.sleep(0.005)
        assert m, "no readiness line: stdout %r stderr %r" % (k.stdout(), k.stderr()[-500:])
        k.port = int(m.group(1))
        assert k.port != 0
        c = k.client()
        r = c.get("/version")
        assert r.status == 200 and r.json()["etcdserver"].startswith("3.4"), r
        assert c.put("a", "1")["header"]["revision"] == "2"
        time.sleep(0.2)
        lines = k.stdout().splitlines()
        assert len(lines) == 1 and LISTEN_LINE.match(lines[0]), lines
    finally:
        k.cleanup()


def test_explicit_port_prints_the_same_line(kvgate):
    deadline = time.monotonic() + 5  # the line may follow the first answer by a moment
    while not kvgate.stdout().endswith("\n") and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = kvgate.stdout().splitlines()
    assert lines == ["kvgate listening on http://127.0.0.1:%d" % kvgate.port], lines


def test_busy_port(kvgate_binary):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        d = os.path.join(mktemp("kvtest-cli-"), "d")
        rc, out, err = run(kvgate_binary, ["--listen", "127.0.0.1:%d" % port, "--data-dir", d])
        line = one_line_error(rc, out, err)
        assert str(port) in line or "in use" in line.lower() or "bind" in line.lower(), line
    finally:
        s.close()


def test_data_dir_is_a_file(kvgate_binary):
    f = os.path.join(mktemp("kvtest-cli-"), "plainfile")
    with open(f, "w") as fh:
        fh.write("not a directory\n")
    rc, out, err = run(kvgate_binary, ["--listen", "127.0.0.1:%d" % free_port(), "--data-dir", f])
    one_line_error(rc, out, err)
    with open(f) as fh:
        assert fh.read() == "not a directory\n", "kvgate changed the file"


def test_data_dir_below_a_file(kvgate_binary):
    f = os.path.join(mktemp("kvtest-cli-"), "plainfile")
    open(f, "w").close()
    rc, out, err = run(kvgate_binary, ["--listen", "127.0.0.1:%d" % free_port(), "--data-dir", f + "/sub"])
    one_line_error(rc, out, err)


def test_data_dir_in_use(kvgate, kvgate_binary):
    kvgate.client().put("a", "1")
    rc, out, err = run(kvgate_binary, ["--listen", "127.0.0.1:%d" % free_port(),
                                       "--data-dir", kvgate.data_dir])
    one_line_error(rc, out, err)
    # the first one is unharmed
    c = kvgate.client()
    assert c.range("a")["kvs"][0]["mod_revision"] == "2"
    assert c.put("b", "2")["header"]["revision"] == "3"
    assert kvgate.running()


def test_corrupt_data_dir(kvgate_factory, kvgate_binary):
    k = kvgate_factory()
    k.client().put("a", "1")
    assert k.stop() == 0
    names = os.listdir(k.data_dir)
    current = [os.path.join(root, f) for root, _, files in os.walk(k.data_dir) for f in files if f == "CURRENT"]
    assert current, "no RocksDB CURRENT file in %s: %r" % (k.data_dir, names)
    for p in current:
        with open(p, "w") as fh:
            fh.write("garbage-manifest-name\n")
    rc, out, err = run(kvgate_binary, ["--listen", "127.0.0.1:%d" % free_port(), "--data-dir", k.data_dir])
    one_line_error(rc, out, err)


def test_max_txn_ops_flag(kvgate_factory):
    from kvtest import b64
    k = kvgate_factory(extra_args=["--max-txn-ops", "4"])
    c = k.client()
    ops = [{"request_put": {"key": b64("k%d" % i), "value": b64("v")}} for i in range(5)]
    r = c.post("/v3/kv/txn", {"success": ops})
    assert r.status == 400 and r.json()["error"] == "etcdserver: too many operations in txn request", r
    r = c.post("/v3/kv/txn", {"success": ops[:4]})
    assert r.status == 200, r
    assert c.revision() == 2


def test_ephemeral(kvgate_binary):
    """README test-fixture mode: --ephemeral keeps everything in memory (no
    data dir anywhere), and a restart starts empty."""
    cwd = mktemp("kvtest-eph-")
    for attempt in range(2):
        p = subprocess.Popen([kvgate_binary, "--listen", "127.0.0.1:0", "--ephemeral"], cwd=cwd,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode()
            m = LISTEN_LINE.match(line.rstrip("\n"))
            assert m, (line, p.poll())
            from kvtest.client import Client
            c = Client("127.0.0.1", int(m.group(1)))
            assert c.revision() == 1, "attempt %d: an ephemeral store must start empty" % attempt
            assert c.put("a", "1")["header"]["revision"] == "2"
        finally:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        assert p.returncode == 0, p.stderr.read()
    assert os.listdir(cwd) == [], "--ephemeral wrote %r" % os.listdir(cwd)
