"""A real browser's EventSource against kvgate (headless Debian Chromium,
driven by playwright-core through tests/browser/driver.mjs).

The page is watch.html, the README's EventSource example, served from a
different origin than kvgate (so CORS per --cors-origins is exercised).
It must:
  - get the snapshot (initial=true), `synced`, then live events;
  - when kvgate restarts, reconnect on its own with Last-Event-ID (the
    `created` after the reconnect continues after the last id it saw) and
    receive exactly the events written while it was away, once each.
Skipped when node, playwright-core or /usr/bin/chromium is missing (unless
KVTEST_REQUIRE_BINARIES=1).
"""
import os
import time

import pytest

from kvtest import free_port
from kvtest.nodedriver import NodeDriver, require_browser

HERE = os.path.dirname(os.path.abspath(__file__))


class Driver(NodeDriver):
    def __init__(self, page_port):
        super().__init__(os.path.join(HERE, "driver.mjs"), page_port)

    def cmd(self, c, timeout=20):
        r = self.send(c, timeout)
        assert "error" not in r, r
        return r

    def log(self):
        return self.cmd("log")

    def wait_log(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            r = self.log()
            if pred(r["log"]):
                return r["log"]
            if time.monotonic() > deadline:
                raise AssertionError("page log never matched; log:\n%s\nconsole: %s"
                                     % (r["log"], r["console"]))
            time.sleep(0.1)

    def close(self):
        self.stop("quit")


def changes(log):
    """[(type, key, value)] of the data lines after the first `synced`."""
    lines = log.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("synced"))
    out = []
    for l in lines[start + 1:]:
        parts = l.split(" ")
        if len(parts) >= 3 and parts[1] in ("PUT", "DELETE"):
            out.append((parts[1], parts[2], " ".join(parts[3:])))
    return out


@pytest.mark.timeout(120)
def test_eventsource_live_and_reconnect_after_restart(kvgate_factory):
    require_browser()
    page_port = free_port()
    origin = "http://127.0.0.1:%d" % page_port
    k = kvgate_factory(extra_args=["--cors-origins", origin])
    c = k.client()
    c.put("app/a", "1")
    d = Driver(page_port)
    try:
        d.cmd("open %s/watch.html?kv=http://127.0.0.1:%d&key=app/" % (origin, k.port))
        log = d.wait_log(lambda l: "synced at" in l)
        lines = log.splitlines()
        assert lines[0] == "created after -"          # no id before the snapshot
        assert lines[1] == "- PUT app/a 1"            # the snapshot, at revision 2
        assert lines[2] == "synced at 2"
        c.put("app/b", "2")
        c.put("other", "x")
        c.put("app/c", "3")
        d.wait_log(lambda l: "PUT app/c 3" in l)
        assert changes(d.log()["log"]) == [("PUT", "app/b", "2"), ("PUT", "app/c", "3")]
        last_id = d.log()["log"].splitlines()[-1].split(" ")[0]
        assert last_id == "5"

        # restart: the stream ends, the page retries on its own
        k.stop()
        d.wait_log(lambda l: "reconnecting" in l)
        k.start()
        c = k.client()
        c.put("app/d", "4")
        c.delete("app/a")
        c.put("app/e", "5")
        log = d.wait_log(lambda l: "PUT app/e 5" in l, 30)
        c.put("app/f", "6")
        log = d.wait_log(lambda l: "PUT app/f 6" in l)
        assert "created after %s" % last_id in log.splitlines(), log  # resumed by Last-Event-ID
        assert log.count("synced at") == 1, log                        # no second snapshot
        assert changes(log) == [("PUT", "app/b", "2"), ("PUT", "app/c", "3"),
                                ("PUT", "app/d", "4"), ("DELETE", "app/a", ""),
                                ("PUT", "app/e", "5"), ("PUT", "app/f", "6")], log
        assert d.log()["state"] == 1  # OPEN
    finally:
        d.close()
