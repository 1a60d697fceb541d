"""A damaged RocksDB write-ahead log: kvgate starts with exactly what was
acknowledged, or refuses to start (non-zero exit, one clear line on
stderr), never comes up with acknowledged writes missing, never crashes.

The policy (README "Durability and recovery"; store/backend.c):
  - RocksDB runs with kTolerateCorruptedTailRecords: an incomplete record at
    the very end of the log (a write in flight when the process died, never
    acknowledged) is dropped; a record that fails its checksum anywhere is
    a corruption and the open fails (point-in-time recovery, RocksDB's
    default, would silently drop everything after it);
  - kvgate records in KVGATE-DURABLE-SEQ a lower bound of the sequence
    number acknowledged writes reached (rewritten after each fsynced batch);
    a store that recovers to less lost acknowledged writes and is refused.
    This catches what no checksum can: a log truncated at a record
    boundary, emptied, zeroed from a block boundary on, or deleted.

The store: N acknowledged puts, then kill -9, so every write is only in the
WAL (no table file yet, checked).  Each variant damages a fresh copy and
starts kvgate on it twice (the first attempt must not turn it into
something that starts).  Then:
  - an unacknowledged write torn by the crash (the WAL cut inside a record
    written after the last acknowledged one): a clean start with every
    acknowledged write and exactly a prefix of the rest (revisions 2..R
    without a hole, each key with its value, nothing else);
  - a store without the watermark file (made before it existed): a log
    cut in the middle of a record starts with a prefix, a flipped byte is
    still refused (RocksDB's checksums);
  - the watermark file garbled: refused; removed: starts with everything.
"""
import glob
import os
import shutil
import subprocess

import pytest

from kvtest import Client, b64, free_port, mktemp

N = 200               # acknowledged puts (4 RocksDB entries each: > 32 KiB of WAL)
M = 40                # more puts whose tail the "crash" tears
WATERMARK = "KVGATE-DURABLE-SEQ"
BLOCK = 32768         # RocksDB's log block size


def key(i):
    return "w%04d" % i


def value(i):
    return "value-%d-" % i * 8


def run(binary, data_dir, timeout=20):
    """Starts kvgate; returns ("refused", rc, stderr) or ("started", port, proc)."""
    port = free_port()
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port, "--data-dir", data_dir],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=mktemp("kvtest-wal-"))
    try:
        # the readiness line, or EOF when it exits
        line = p.stdout.readline().decode("utf-8", "replace")
    except Exception:
        p.kill()
        raise
    if "listening" in line:
        return ("started", port, p)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("kvgate neither served nor exited within %ds" % timeout)
    return ("refused", p.returncode, err.decode("utf-8", "replace"))


def stop(p):
    p.terminate()
    try:
        _, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("kvgate did not stop within 20 s")
    assert p.returncode == 0, "exit %r: %s" % (p.returncode, err.decode("utf-8", "replace")[-2000:])


def assert_refused(res, *want):
    assert res[0] == "refused", "kvgate started on a WAL that lost acknowledged writes"
    _, rc, err = res
    assert rc > 0, "exit status %r (a signal means a crash): %s" % (rc, err[-2000:])
    lines = [l for l in err.splitlines() if l.strip() and not l[:4].isdigit()
             and not l.startswith("kvgate: warning")]
    assert len(lines) == 1, "want one line on stderr, got %r" % err
    assert any(w in lines[0] for w in want), lines[0]
    return lines[0]


def read_all(port):
    r = Client("127.0.0.1", port, 30).post("/v3/kv/range", {"key": b64("\0"), "range_end": b64("\0")})
    assert r.status == 200, r
    body = r.json()
    return int(body["header"]["revision"]), body.get("kvs", [])


def assert_prefix(port, at_least, at_most):
    """Exactly the first R-1 puts at revisions 2..R, at_least <= R-1 <= at_most."""
    rev, kvs = read_all(port)
    n = rev - 1
    assert at_least <= n <= at_most, "revision %d: %d puts, want %d..%d" % (rev, n, at_least, at_most)
    assert [kv["key"] for kv in kvs] == [b64(key(i)) for i in range(n)]
    for i, kv in enumerate(kvs):
        assert kv["value"] == b64(value(i)), "key %s: foreign value" % key(i)
        assert int(kv["mod_revision"]) == i + 2 and int(kv["create_revision"]) == i + 2
    return n


def wal(d):
    logs = [f for f in glob.glob(os.path.join(d, "*.log")) if os.path.getsize(f) > 0]
    assert len(logs) == 1, "want one non-empty WAL in %r" % sorted(os.listdir(d))
    return logs[0]


@pytest.fixture(scope="module")
def binary():
    from kvtest import kvgate_bin
    b = kvgate_bin()
    if not os.access(b, os.X_OK):
        pytest.skip("no kvgate binary at %s" % b)
    return b


@pytest.fixture(scope="module")
def stores(binary):
    """Two killed stores: "acked" (N acknowledged puts, all only in the WAL)
    and "torn" (the same N, then M more, with the watermark as it was after
    the Nth, the WAL length then, and the final length)."""
    from kvtest import Kvgate
    k = Kvgate(binary=binary)
    try:
        k.start()
        c = k.client(timeout=30)
        for i in range(N):
            c.put(key(i), value(i))
        with open(os.path.join(k.data_dir, WATERMARK)) as f:
            mark = f.read()
        wal_n = os.path.getsize(wal(k.data_dir))
        acked = os.path.join(mktemp("kvtest-wal-"), "acked")
        # a copy of the files as they are now (the server is idle: what a
        # kill -9 right now would leave, the page cache being shared)
        shutil.copytree(k.data_dir, acked, ignore=shutil.ignore_patterns("LOCK"))
        for i in range(N, N + M):
            c.put(key(i), value(i))
        k.kill()
        assert not glob.glob(os.path.join(acked, "*.sst")), "data already flushed to tables"
        assert os.path.getsize(wal(acked)) == wal_n
        torn = os.path.join(mktemp("kvtest-wal-"), "torn")
        shutil.copytree(k.data_dir, torn)
        with open(os.path.join(torn, WATERMARK), "w") as f:
            f.write(mark)
        yield {"acked": acked, "torn": torn, "wal_n": wal_n, "wal_end": os.path.getsize(wal(torn))}
    finally:
        k.cleanup()


def fresh(src):
    d = os.path.join(mktemp("kvtest-wal-"), "data")
    shutil.copytree(src, d)
    return d


def truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def flip(path, offset, n=16):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(n)
        f.seek(offset)
        f.write(bytes(x ^ 0xA5 for x in b))


def zero_from(path, offset):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\0" * (size - offset))


LOST = ("lost acknowledged writes",)
CORRUPT = ("Corruption", "corrupt")

# name -> (damage(wal_path), accepted refusal texts)
DAMAGE = {
    # a cut inside the record of an acknowledged write: no checksum fails,
    # RocksDB would take it for a torn last write
    "truncated-mid-record": (lambda w: truncate(w, os.path.getsize(w) // 2 + 3), LOST),
    "truncated-last-record": (lambda w: truncate(w, os.path.getsize(w) - 3), LOST),
    "truncated-at-block-boundary": (lambda w: truncate(w, BLOCK), LOST),
    "emptied": (lambda w: truncate(w, 0), LOST),
    "removed": (lambda w: os.remove(w), LOST),
    # damage RocksDB's checksums see
    "bytes-flipped-in-the-middle": (lambda w: flip(w, os.path.getsize(w) // 2), CORRUPT),
    "bytes-flipped-in-the-last-record": (lambda w: flip(w, os.path.getsize(w) - 12, 8), CORRUPT),
    # zeros from mid-record: a checksum fails; from a block boundary on:
    # RocksDB reads zeros as preallocated space, only the watermark sees it
    "tail-zeroed-mid-record": (lambda w: zero_from(w, os.path.getsize(w) // 2 + 5), CORRUPT + LOST),
    "tail-zeroed-from-block-boundary": (lambda w: zero_from(w, BLOCK), CORRUPT + LOST),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damaged_wal_is_refused(binary, stores, how):
    d = fresh(stores["acked"])
    damage, want = DAMAGE[how]
    damage(wal(d))
    line = assert_refused(run(binary, d), *want)
    assert d in line, line
    assert_refused(run(binary, d), *want)


@pytest.mark.timeout(90)
def test_undamaged_copy_has_every_write(binary, stores):
    """The control: the same copy, untouched, starts with all N puts."""
    res = run(binary, fresh(stores["acked"]))
    assert res[0] == "started", res
    try:
        assert assert_prefix(res[1], N, N) == N
    finally:
        stop(res[2])


@pytest.mark.timeout(90)
@pytest.mark.parametrize("where", [0.25, 0.5, 0.9])
def test_torn_unacknowledged_tail_starts_with_a_prefix(binary, stores, where):
    """A crash in the middle of writing an unacknowledged record: every
    acknowledged write is there, then a prefix of the others; twice."""
    d = fresh(stores["torn"])
    cut = stores["wal_n"] + int((stores["wal_end"] - stores["wal_n"]) * where)
    truncate(wal(d), cut)
    got = []
    for _ in range(2):
        res = run(binary, d)
        assert res[0] == "started", "refused a crash-torn tail: %r" % (res,)
        try:
            got.append(assert_prefix(res[1], N, N + M - 1))
        finally:
            stop(res[2])
    assert got[0] == got[1], "the second start saw %d puts, the first %d" % (got[1], got[0])


@pytest.mark.timeout(90)
def test_without_watermark_a_mid_record_cut_gives_a_prefix(binary, stores):
    """A store from before the watermark file: RocksDB alone drops the
    records from the cut on (it cannot know they were acknowledged) and
    the store starts with an exact prefix."""
    d = fresh(stores["acked"])
    os.remove(os.path.join(d, WATERMARK))
    w = wal(d)
    truncate(w, os.path.getsize(w) // 2 + 3)
    res = run(binary, d)
    assert res[0] == "started", res
    try:
        n = assert_prefix(res[1], 1, N - 1)
    finally:
        stop(res[2])
    # and from now on it is tracked: the start wrote a new watermark
    assert os.path.getsize(os.path.join(d, WATERMARK)) > 0
    res = run(binary, d)
    assert res[0] == "started", res
    try:
        assert assert_prefix(res[1], n, n) == n
    finally:
        stop(res[2])


@pytest.mark.timeout(90)
def test_without_watermark_a_checksum_failure_is_still_refused(binary, stores):
    d = fresh(stores["acked"])
    os.remove(os.path.join(d, WATERMARK))
    w = wal(d)
    flip(w, os.path.getsize(w) // 2)
    assert_refused(run(binary, d), *CORRUPT)


@pytest.mark.timeout(90)
def test_watermark_garbled_is_refused(binary, stores):
    d = fresh(stores["acked"])
    with open(os.path.join(d, WATERMARK), "w") as f:
        f.write("garbage\n")
    line = assert_refused(run(binary, d), WATERMARK)
    assert d in line, line


@pytest.mark.timeout(90)
def test_watermark_removed_starts_with_everything(binary, stores):
    d = fresh(stores["acked"])
    os.remove(os.path.join(d, WATERMARK))
    res = run(binary, d)
    assert res[0] == "started", res
    try:
        assert assert_prefix(res[1], N, N) == N
    finally:
        stop(res[2])
