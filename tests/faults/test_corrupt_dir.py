"""A corrupted or unreadable data dir: a clear refusal to start (non-zero
exit, one line on stderr), never a silent empty store.

tests/e2e/test_cli.py already covers a garbage CURRENT, a data dir that is
a file, one below a file and one locked by another kvgate; this adds the
other RocksDB files.  A store with 300 keys is made once (defragmented, so
the data is in .sst files, not only in the WAL), then each variant damages
a fresh copy and starts kvgate on it:

  - refused: CURRENT empty or missing, MANIFEST truncated (twice in a row:
    RocksDB's read-write open would delete the .sst files a truncated
    MANIFEST no longer names and start empty the second time), emptied,
    garbled or missing, an .sst truncated, missing or with a garbled
    footer;
  - an .sst garbled in the middle of a data block: RocksDB only sees it
    when the block is read, so kvgate may start, but a read of it must fail
    (500 "storage I/O error"), never answer with other data;
  - OPTIONS files garbled or missing: RocksDB does not need them, every
    key is there;
  - a data dir kvgate may not read (chmod 000, kvgate run as nobody:
    root ignores permissions, so that variant needs setpriv; skipped
    without it);
  - a MANIFEST and CURRENT that still name the column families but whose
    files are gone or empty: every .sst emptied, every .sst and the WAL
    removed (refused: the MANIFEST names tables that are not there); the
    WAL alone removed after a clean stop (everything was flushed to tables:
    every key is there);
  - a data dir that is a file; one of another program (random files:
    refused, untouched); a RocksDB database of another program (made with
    RocksDB's ldb tool, skipped without it): one with data in its default
    column family and one with its own column family are refused and left
    as they were, an empty one (what an interrupted first start leaves)
    becomes a store.

A WAL damaged before its writes reached a table file: test_wal_corrupt.py.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from kvtest import b64, free_port, mktemp

N = 300


def run(binary, data_dir, timeout=15, prefix=()):
    try:
        p = subprocess.run(list(prefix) + [binary, "--listen", "127.0.0.1:%d" % free_port(),
                                           "--data-dir", data_dir],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           cwd=mktemp("kvtest-corrupt-"))
    except subprocess.TimeoutExpired:
        return None
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def refused(res):
    assert res is not None, "kvgate started (it served until the timeout) on a damaged data dir"
    rc, out, err = res
    assert rc > 0, "exit status %r (stderr %r)" % (rc, err)
    # one error line (log lines from the logger, if any, are timestamped)
    lines = [l for l in err.splitlines() if l.strip() and not l[:4].isdigit()
             and not l.startswith("kvgate: warning")]
    assert len(lines) == 1, "want one line on stderr, got %r" % err
    assert "listening" not in out, out
    return lines[0]


@pytest.fixture(scope="module")
def kvgate_binary_module():
    from kvtest import kvgate_bin
    b = kvgate_bin()
    if not os.access(b, os.X_OK):
        pytest.skip("no kvgate binary at %s" % b)
    return b


@pytest.fixture(scope="module")
def pristine(kvgate_binary_module):
    """A stopped store with N keys at revisions 2..N+1, in .sst files."""
    from kvtest import Kvgate
    k = Kvgate(binary=kvgate_binary_module)
    try:
        k.start()
        c = k.client(timeout=30)
        for i in range(N):
            c.put("k%04d" % i, "value-%d-" % i * 20)
        r = c.post("/v3/maintenance/defragment", {})
        assert r.status == 200, r
        assert k.stop() == 0
        yield k.data_dir
    finally:
        k.cleanup()


@pytest.fixture
def damaged(pristine):
    d = os.path.join(mktemp("kvtest-corrupt-"), "data")
    shutil.copytree(pristine, d)
    return d


def one(d, pattern):
    fs = sorted(glob.glob(os.path.join(d, pattern)))
    assert fs, "no %s in %r" % (pattern, os.listdir(d))
    return fs


def biggest_sst(d):
    return max(one(d, "*.sst"), key=os.path.getsize)


def garble(path, offset, n):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes((i * 151 + 77) & 0xFF for i in range(n)))


def truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


DAMAGE = {
    "current-empty": lambda d: truncate(one(d, "CURRENT")[0], 0),
    "current-missing": lambda d: os.remove(one(d, "CURRENT")[0]),
    "manifest-truncated": lambda d: truncate(one(d, "MANIFEST-*")[-1], 100),
    "manifest-empty": lambda d: truncate(one(d, "MANIFEST-*")[-1], 0),
    "manifest-garbled": lambda d: garble(one(d, "MANIFEST-*")[-1], 40, 64),
    "manifest-missing": lambda d: [os.remove(f) for f in one(d, "MANIFEST-*")],
    "sst-truncated": lambda d: truncate(biggest_sst(d), 1000),
    "sst-missing": lambda d: os.remove(biggest_sst(d)),
    "sst-footer-garbled": lambda d: garble(biggest_sst(d), os.path.getsize(biggest_sst(d)) - 40, 40),
    "sst-all-emptied": lambda d: [truncate(f, 0) for f in one(d, "*.sst")],
    "sst-and-wal-removed": lambda d: [os.remove(f) for f in one(d, "*.sst") + one(d, "*.log")],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damaged_store_is_refused(kvgate_binary, damaged, how):
    DAMAGE[how](damaged)
    before = sorted(os.listdir(damaged))
    line = refused(run(kvgate_binary, damaged))
    assert damaged in line, line
    # again: the first attempt must not have turned it into something that starts
    refused(run(kvgate_binary, damaged))
    if how.startswith("manifest-truncated"):
        assert [f for f in before if f.endswith(".sst")] == \
            sorted(f for f in os.listdir(damaged) if f.endswith(".sst")), "table files deleted"


def full_range(port):
    from kvtest import Client
    return Client("127.0.0.1", port, 20).post("/v3/kv/range", {"key": b64("\0"), "range_end": b64("\0")})


def check_all_or_error(kvgate_factory, d, must_work):
    k = kvgate_factory(data_dir=d, start=False)
    k.spawn()
    try:
        k.wait_ready(15)
    except Exception:
        assert not must_work, "kvgate did not start: " + k.stderr()[-1000:]
        refused((k.proc.returncode, k.stdout(), k.stderr()))
        return
    r = full_range(k.port)
    if r.status == 200:
        kvs = r.json().get("kvs", [])
        assert int(r.json()["header"]["revision"]) == N + 1
        assert [kv["key"] for kv in kvs] == [b64("k%04d" % i) for i in range(N)]
        assert [kv["value"] for kv in kvs] == [b64("value-%d-" % i * 20) for i in range(N)]
    else:
        assert not must_work, r
        assert r.status == 500 and r.json()["error"] == "etcdserver: storage I/O error", r
    assert k.stop() == 0


@pytest.mark.timeout(60)
def test_sst_garbled_data_block_never_answers_wrong_data(kvgate_factory, damaged):
    sst = biggest_sst(damaged)
    garble(sst, os.path.getsize(sst) // 4, 2000)
    check_all_or_error(kvgate_factory, damaged, must_work=False)


@pytest.mark.timeout(60)
def test_wal_removed_after_a_clean_stop(kvgate_factory, damaged):
    """pristine was defragmented (flushed) before its clean stop: the WAL
    holds nothing acknowledged, so without it every key is still there."""
    for f in one(damaged, "*.log"):
        os.remove(f)
    check_all_or_error(kvgate_factory, damaged, must_work=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["garbled", "missing"])
def test_options_files_are_not_needed(kvgate_factory, damaged, how):
    for f in one(damaged, "OPTIONS-*"):
        if how == "missing":
            os.remove(f)
        else:
            with open(f, "w") as fh:
                fh.write("garbage\n")
    check_all_or_error(kvgate_factory, damaged, must_work=True)


def _sanitizer_logs_closed_to_nobody():
    """Under run_all's sanitizer wrapper, kvgate (and the wrapper's tee)
    write into the directory of ASAN_OPTIONS' log_path: run as nobody, they
    can only if it is world-writable (run_all makes it 1777)."""
    if os.environ.get("KVGATE_SANITIZED") != "1":
        return False
    m = re.search(r"(?:^|:)log_path=([^:]+)", os.environ.get("ASAN_OPTIONS", ""))
    if not m:
        return False
    return not os.stat(os.path.dirname(m.group(1))).st_mode & 0o002


@pytest.mark.timeout(60)
def test_unreadable_data_dir(kvgate_binary, damaged):
    if _sanitizer_logs_closed_to_nobody():
        pytest.skip("the sanitizer log dir is not writable by nobody (run_all makes it 1777)")
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores chmod 000 and setpriv (to run kvgate as nobody) is missing")
    os.chmod(os.path.dirname(damaged), 0o755)
    os.chmod(damaged, 0o000)
    try:
        res = run(kvgate_binary, damaged,
                  prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        if res is not None and res[0] != 0 and "setpriv" in res[2]:
            pytest.skip("setpriv cannot switch to nobody here: %s" % res[2].strip())
        line = refused(res)
        assert damaged in line and ("ermission" in line or "usable" in line), line
    finally:
        os.chmod(damaged, 0o700)


def tree(d):
    """{relative path: bytes} of every file under d."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = fh.read()
    return out


@pytest.mark.timeout(60)
def test_data_dir_is_a_file(kvgate_binary):
    f = os.path.join(mktemp("kvtest-corrupt-"), "data")
    with open(f, "w") as fh:
        fh.write("not a directory\n")
    line = refused(run(kvgate_binary, f))
    assert f in line and "not a directory" in line, line
    with open(f) as fh:
        assert fh.read() == "not a directory\n"


@pytest.mark.timeout(60)
def test_data_dir_of_another_program(kvgate_binary):
    d = os.path.join(mktemp("kvtest-corrupt-"), "data")
    os.makedirs(os.path.join(d, "sub"))
    rnd = bytes((i * 7919 + 13) & 0xFF for i in range(5000))
    for name, data in [("000001.log", rnd), ("MANIFEST-000001", rnd[:300]), ("notes.txt", b"hello\n"),
                       ("sub/x.sst", rnd[100:900]), ("OPTIONS-000003", b"[Version]\n")]:
        with open(os.path.join(d, name), "wb") as fh:
            fh.write(data)
    before = tree(d)
    for _ in range(2):
        line = refused(run(kvgate_binary, d))
        assert d in line, line
    assert tree(d) == before, "kvgate changed a data dir it refused"


LDB = shutil.which("ldb") or shutil.which("rocksdb_ldb")


def ldb(*args):
    r = subprocess.run([LDB] + list(args), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "OK" in r.stdout, (args, r.stdout, r.stderr)


FOREIGN = {
    # data in the default column family (kvgate never writes there)
    "default-data": [["put", "user:1", "alice"]],
    # a column family kvgate does not have
    "own-family": [["put", "a", "b"], ["create_column_family", "users"]],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", sorted(FOREIGN))
def test_rocksdb_of_another_program_is_refused_and_untouched(kvgate_binary, how):
    if LDB is None:
        pytest.skip("RocksDB's ldb tool is missing (Debian rocksdb-tools; tests/deps.sh installs it)")
    d = os.path.join(mktemp("kvtest-corrupt-"), "data")
    for cmd in FOREIGN[how]:
        ldb("--db=" + d, "--create_if_missing", *cmd) if cmd[0] == "put" else ldb("--db=" + d, *cmd)
    before = tree(d)
    for _ in range(2):
        line = refused(run(kvgate_binary, d))
        assert d in line and "another program" in line, line
    assert tree(d) == before, "kvgate changed another program's database"


@pytest.mark.timeout(60)
def test_empty_rocksdb_becomes_a_store(kvgate_factory):
    """Only the default column family and nothing in it: what a first
    start killed before it added its column families leaves."""
    if LDB is None:
        pytest.skip("RocksDB's ldb tool is missing (Debian rocksdb-tools; tests/deps.sh installs it)")
    d = os.path.join(mktemp("kvtest-corrupt-"), "data")
    # ldb cannot create a database without writing to it: empty its WAL
    # (nothing reached a table file yet)
    ldb("--db=" + d, "--create_if_missing", "put", "a", "b")
    assert not glob.glob(os.path.join(d, "*.sst"))
    for f in one(d, "*.log"):
        truncate(f, 0)
    k = kvgate_factory(data_dir=d)
    c = k.client()
    assert c.revision() == 1
    assert c.put("k", "v")["header"]["revision"] == "2"
    assert k.stop() == 0
