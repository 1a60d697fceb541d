"""Fixtures shared by tests/diff, tests/e2e and tests/crash.

Binaries:
  KVGATE_BIN  kvgate under test (default <repo>/bin/kvgate)
  ETCD_BIN    etcd 3.4 for the differential suite (default /usr/bin/etcd)
  KVTEST_REQUIRE_BINARIES=1   a missing binary fails the tests instead of
                              skipping them (use it in CI).

Fixtures:
  kvgate           a fresh kvgate on a free loopback port with a temp data dir
  kvgate_factory   make more kvgates: kvgate_factory(port=..., data_dir=..., extra_args=[...], start=True)
  etcd             a fresh single-member etcd on free loopback ports
  etcd_factory     the same, several
Everything started is killed at teardown (and at session end).

Every test has a wall-clock limit: @pytest.mark.timeout(seconds), default 60.
"""
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kvtest  # noqa: E402
from kvtest import Kvgate, Etcd, kvgate_bin, etcd_bin, kill_all_servers  # noqa: E402

DEFAULT_TIMEOUT = 60


def _require(path, what):
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    msg = "%s binary not found at %s" % (what, path)
    if os.environ.get("KVTEST_REQUIRE_BINARIES") == "1":
        pytest.fail(msg + " (KVTEST_REQUIRE_BINARIES=1)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def kvgate_binary():
    return _require(kvgate_bin(), "kvgate")


@pytest.fixture(scope="session")
def etcd_binary():
    return _require(etcd_bin(), "etcd")


@pytest.fixture
def kvgate_factory(kvgate_binary):
    made = []

    def make(port=None, data_dir=None, extra_args=(), start=True):
        k = Kvgate(port=port, data_dir=data_dir, extra_args=extra_args, binary=kvgate_binary)
        made.append(k)
        if start:
            k.start()
        return k

    yield make
    for k in made:
        k.cleanup()


@pytest.fixture
def kvgate(kvgate_factory):
    return kvgate_factory()


@pytest.fixture
def etcd_factory(etcd_binary):
    made = []

    def make(start=True):
        e = Etcd()
        made.append(e)
        if start:
            e.start()
        return e

    yield make
    for e in made:
        e.cleanup()


@pytest.fixture
def etcd(etcd_factory):
    return etcd_factory()


class TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    m = item.get_closest_marker("timeout")
    limit = int(m.args[0]) if m else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded its %d s limit" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def pytest_sessionfinish(session, exitstatus):
    kill_all_servers()
