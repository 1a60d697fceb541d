"""A node script driving headless Chromium (playwright-core), spoken to
one line at a time: the browser suites' shared plumbing.

NodeDriver starts `node SCRIPT ARGS...`, waits for its {"ready": ...}
line, and then sends one command line and reads one JSON answer line per
command.  require_browser() skips (or fails, with
KVTEST_REQUIRE_BINARIES=1) when node, playwright-core or Debian's
/usr/bin/chromium is missing.
"""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"


def need(ok, what):
    if ok:
        return
    if os.environ.get("KVTEST_REQUIRE_BINARIES") == "1":
        pytest.fail(what + " missing (KVTEST_REQUIRE_BINARIES=1)")
    pytest.skip(what + " missing")


def require_browser():
    need(shutil.which("node"), "node")
    need(os.path.isdir(os.path.join(REPO, "node_modules", "playwright-core")),
         "playwright-core (npm; tests/deps.sh)")
    need(os.access(CHROMIUM, os.X_OK), CHROMIUM)


class NodeDriver:
    def __init__(self, script, *args, ready_s=60):
        self.p = subprocess.Popen(["node", script] + [str(a) for a in args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=REPO, text=True)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        first = self._next(ready_s)
        assert first.get("ready"), first

    def _read(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line)
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def _next(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not self.lines:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("driver silent for %ss" % timeout)
                self.cv.wait(left)
            line = self.lines.pop(0)
        if line is None:
            raise AssertionError("driver exited: %s" % self.p.stderr.read()[-3000:])
        return json.loads(line)

    def send(self, line, timeout):
        """Writes one command line; returns the answer (a dict)."""
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self._next(timeout)

    def stop(self, quit_line):
        try:
            if self.p.poll() is None:
                self.p.stdin.write(quit_line + "\n")
                self.p.stdin.flush()
                self.p.wait(10)
        except Exception:  # noqa: BLE001 - the driver may be gone already
            pass
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
