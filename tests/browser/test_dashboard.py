"""The dashboard (web/, served by kvgate at /) in a real browser: headless
Debian Chromium driven by playwright-core through dashboard_driver.mjs.

Each test loads the page from the kvgate under test (KVGATE_BIN: the web
files are embedded in the binary) and checks it against the store over
HTTP:
  - a key put over HTTP shows up live, without a reload; events feed;
  - edit, create with a lease, and delete (through the <dialog>, by mouse
    and by keyboard) from the page change the store (checked by range);
  - a key's history walks back over its versions;
  - kvgate restarted on the same port and data dir: the page shows
    "reconnecting", then resumes (last_event_id) and shows exactly the
    writes made while it was down, each once in the events feed;
  - history compacted while the page was away: "gone", then listed again;
  - paged views ("load more", range with limit) stay exact under writes;
  - a burst of writes: the page keeps up, the feed stays bounded;
  - no script errors (pageerror, console.error) during the whole run.
Screenshots land in tests/artifacts/screenshots/.
Skipped when node, playwright-core or /usr/bin/chromium is missing (unless
KVTEST_REQUIRE_BINARIES=1).
"""
import base64
import json
import os
import threading
import time

import pytest

from kvtest import b64
from kvtest.nodedriver import NodeDriver, require_browser

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHOTS = os.path.join(REPO, "tests", "artifacts", "screenshots")


class Browser(NodeDriver):
    """dashboard_driver.mjs: one JSON command per line, one JSON answer."""

    def __init__(self):
        super().__init__(os.path.join(HERE, "dashboard_driver.mjs"))

    def cmd(self, c, answer_s=30):
        r = self.send(json.dumps(c), answer_s)
        if "error" in r:
            raise AssertionError("%s: %s\npage: %s" % (c, r["error"], self.debug()))
        return r

    def debug(self):
        try:
            self.p.stdin.write(json.dumps({"op": "eval", "js": DEBUG_JS}) + "\n")
            self.p.stdin.flush()
            return self._next(10).get("value")
        except Exception as e:  # noqa: BLE001 - best effort for a failure message
            return "(no debug info: %s)" % e

    def js(self, expr):
        return self.cmd({"op": "eval", "js": expr}).get("value")

    def wait(self, expr, timeout=15):
        return self.cmd({"op": "wait", "js": expr, "timeout": int(timeout * 1000)}, timeout + 10)["value"]

    def click(self, sel):
        self.cmd({"op": "click", "sel": sel})

    def fill(self, sel, value):
        self.cmd({"op": "fill", "sel": sel, "value": value})

    def press(self, key, sel=None):
        c = {"op": "press", "key": key}
        if sel:
            c["sel"] = sel
        self.cmd(c)

    def focused(self):
        return self.cmd({"op": "focused"})["value"]

    def shot(self, name, scheme=None):
        os.makedirs(SHOTS, exist_ok=True)
        c = {"op": "shot", "path": os.path.join(SHOTS, name + ".png")}
        if scheme:
            c["scheme"] = scheme
        self.cmd(c)

    def errors(self):
        return self.cmd({"op": "errors"})["value"]

    def close(self):
        self.stop(json.dumps({"op": "quit"}))


DEBUG_JS = """(() => ({
  conn: document.getElementById('conn').dataset.state,
  keys: [...document.querySelectorAll('#key-rows tr, #key-tree li')].map(r => r.dataset.id).slice(0, 40),
  count: document.getElementById('key-count').textContent,
  events: [...document.querySelectorAll('#events li')].slice(0, 12).map(l => l.textContent),
  toast: document.getElementById('toast').textContent,
}))()"""


@pytest.fixture
def browser():
    require_browser()
    b = Browser()
    try:
        yield b
        errs = b.errors()
        assert errs == [], "script errors in the page: %s" % errs
    finally:
        b.close()


# -- page helpers ------------------------------------------------------------

def row_sel(key):
    return '[data-id="k%s"]' % key


def has_row(key):
    return "!!document.querySelector(%s)" % json.dumps(row_sel(key))


def row_text(key):
    return "(document.querySelector(%s) || {}).textContent || ''" % json.dumps(row_sel(key))


def conn(state):
    return "document.getElementById('conn').dataset.state === %s" % json.dumps(state)


def feed_lines(b):
    """Events feed, oldest first: [(type, key, rev)]."""
    rows = b.js("""[...document.querySelectorAll('#events li:not(.note)')].map(l =>
        [l.querySelector('.ty').textContent, l.dataset.key, l.querySelector('.r').textContent])""")
    return [(t, k, r) for t, k, r in reversed(rows)]


def get(c, key, **kw):
    body = {"key": b64(key)}
    body.update(kw)
    r = c.post("/v3/kv/range", body).json()
    kvs = r.get("kvs", [])
    return kvs[0] if kvs else None


def value(c, key):
    kv = get(c, key)
    return None if kv is None else base64.b64decode(kv.get("value", "")).decode("utf-8", "replace")


def put(c, key, val, **kw):
    body = {"key": b64(key), "value": b64(val)}
    body.update(kw)
    r = c.post("/v3/kv/put", body)
    assert r.status == 200, r
    return int(r.json()["header"]["revision"])


def delete(c, key):
    r = c.post("/v3/kv/deleterange", {"key": b64(key)})
    assert r.status == 200, r
    return int(r.json()["header"]["revision"])


def open_page(b, k, query=""):
    b.cmd({"op": "goto", "url": "http://127.0.0.1:%d/%s" % (k.port, query)})
    b.wait(conn("live"))


def one_event_source(b):
    """The view's watch is one EventSource (the driver counts them: window.__es)."""
    b.wait("window.__es && window.__es.open === 1", 10)
    urls = b.js("window.__es.urls")
    assert all("/v3/watch?" in u for u in urls), urls
    return b.js("window.__es.made")


# -- tests -------------------------------------------------------------------

@pytest.mark.timeout(150)
def test_live_edit_delete_history_restart(kvgate_factory, browser):
    b = browser
    k = kvgate_factory()
    c = k.client()
    put(c, "app/config/db.host", "10.0.0.12")
    put(c, "app/config/db.port", "5432")
    put(c, "app/users/1001", '{"name":"Ada Lovelace","role":"admin"}')
    put(c, "app/users/1002", '{"name":"Alan Turing","role":"dev"}')
    r = c.post("/v3/kv/put", {"key": b64("app/blob"), "value": base64.b64encode(b"\x00\x01\x02\xff\xfe").decode()})
    assert r.status == 200
    put(c, "greeting", "hello, world")

    open_page(b, k)
    assert b.js("document.title") == "kvgate"
    b.wait(has_row("app/config/db.host"))
    # one EventSource, started with initial=true (the consistent start)
    assert one_event_source(b) == 1
    assert "initial=true" in b.js("window.__es.urls[0]")
    assert "6 keys" in b.js("document.getElementById('key-count').textContent")
    # binary values are shown as binary (hex), text as text
    assert "BIN" in b.js(row_text("app/blob"))
    assert "00 01 02 ff fe" in b.js(row_text("app/blob"))
    assert "hello, world" in b.js(row_text("greeting"))
    assert b.js("document.querySelector('a[href=\"/openapi.yaml\"]') !== null")
    st = c.request("GET", "/openapi.yaml")
    assert st.status == 200

    # a key put over HTTP shows up without a reload, in the list and the feed
    rev = put(c, "app/live", "first value")
    b.wait(has_row("app/live"))
    assert "first value" in b.js(row_text("app/live"))
    b.wait("[...document.querySelectorAll('#events li')].some(l => l.dataset.key === 'app/live')")
    assert ("put", "app/live", "rev %d" % rev) in feed_lines(b)
    b.wait("document.getElementById('st-rev').textContent.replace(/\\D/g, '') === '%d'" % rev)
    # watcher counts (from /metrics): the page's own watch at least, by group in the title
    b.wait("Number(document.getElementById('st-watchers').textContent.replace(/\\D/g, '')) >= 1", 10)
    assert "synced" in b.js("document.getElementById('st-watchers').title")

    # select it: metadata and value
    b.click(row_sel("app/live"))
    b.wait("!document.getElementById('detail').hidden")
    assert b.js("document.getElementById('d-key').textContent") == "app/live"
    assert b.js("document.getElementById('d-value').textContent") == "first value"
    assert b.js("document.getElementById('d-mod').textContent") == str(rev)
    assert b.js("document.getElementById('d-ver').textContent") == "1"
    b.shot("dashboard-list-light")

    # edit from the page: the store changes
    b.click("#d-edit")
    b.wait("!document.getElementById('put-form').hidden")
    assert b.js("document.getElementById('put-key').value") == "app/live"
    b.fill("#put-value", "edited in the browser")
    b.click("#put-submit")
    deadline = time.monotonic() + 10
    while value(c, "app/live") != "edited in the browser":
        assert time.monotonic() < deadline, value(c, "app/live")
        time.sleep(0.05)
    b.wait("document.getElementById('d-value').textContent === 'edited in the browser'")
    assert b.js("document.getElementById('d-ver').textContent") == "2"

    # a new key with a lease, from the page
    lease = c.post("/v3/lease/grant", {"TTL": 600}).json()["ID"]
    b.click("#new-key")
    assert b.focused() == "input#put-key"
    b.fill("#put-key", "app/leased")
    b.fill("#put-value", "lives as long as its lease")
    b.fill("#put-lease", lease)
    b.press("Enter", "#put-lease")
    deadline = time.monotonic() + 10
    while get(c, "app/leased") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert get(c, "app/leased").get("lease") == lease
    b.wait("document.getElementById('d-lease').textContent === %s" % json.dumps(lease))
    b.wait("/^\\d+ s$/.test(document.getElementById('d-ttl').textContent)")
    ttl = int(b.js("document.getElementById('d-ttl').textContent").split()[0])
    assert 570 <= ttl <= 600, ttl

    # history: three versions, newest first, each with its revision
    r1 = put(c, "app/h", "v-one")
    r2 = put(c, "app/h", "v-two")
    r3 = put(c, "app/h", "v-three")
    b.wait(has_row("app/h") + " && document.querySelector('%s').textContent.includes('v-three')" % row_sel("app/h"))
    b.click(row_sel("app/h"))
    b.click("#d-history")
    b.wait("document.getElementById('history-list').children.length === 3 && "
           "document.getElementById('history-note').textContent.startsWith('All 3')")
    hist = b.js("[...document.querySelectorAll('#history-list li')].map(l => l.textContent)")
    assert hist == ["v3rev %dv-three" % r3, "v2rev %dv-two" % r2, "v1rev %dv-one" % r1], hist
    b.shot("dashboard-history-light")

    # delete with the mouse: Cancel keeps the key, Delete removes it
    b.click(row_sel("app/users/1001"))
    b.click("#d-delete")
    b.wait("document.getElementById('delete-dialog').open")
    assert b.focused() == "button#del-cancel"
    b.shot("dashboard-delete-dialog")
    b.press("Escape")
    b.wait("!document.getElementById('delete-dialog').open")
    assert get(c, "app/users/1001") is not None
    b.click("#d-delete")
    b.wait("document.getElementById('delete-dialog').open")
    b.click("#del-confirm")
    deadline = time.monotonic() + 10
    while get(c, "app/users/1001") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    b.wait("!(%s)" % has_row("app/users/1001"))

    # delete with the keyboard only: focus a row, arrows, Delete key, Tab, Enter
    b.js("document.querySelector(%s).focus()" % json.dumps(row_sel("app/config/db.host")))
    b.press("ArrowDown")
    assert b.focused() == "tr", b.focused()
    assert b.js("document.activeElement.dataset.id") == "kapp/config/db.port"
    # the focus is visible: an outline on the focused row
    assert b.js("getComputedStyle(document.activeElement).outlineStyle") != "none"
    b.shot("dashboard-keyboard-focus")
    b.press("Delete")
    b.wait("document.getElementById('delete-dialog').open")
    b.press("Tab")
    assert b.focused() == "button#del-confirm"
    b.press("Enter")
    deadline = time.monotonic() + 10
    while get(c, "app/config/db.port") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    b.wait("!(%s)" % has_row("app/config/db.port"))
    # focus goes back to the keys, not lost to <body>
    assert b.focused() not in ("body", None), b.focused()

    # tree view, dark
    b.click("label[for=view-tree]")
    b.wait("!document.getElementById('key-tree').hidden && !!document.querySelector('[data-id=\"dapp/\"]')")
    b.click('[data-id="dapp/"]')
    b.wait(has_row("app/live"))
    b.click('[data-id="dapp/config/"]')
    b.wait(has_row("app/config/db.host"))
    b.click(row_sel("app/config/db.host"))
    b.shot("dashboard-tree-dark", scheme="dark")
    b.click("label[for=view-list]")
    b.wait("!document.getElementById('key-table').hidden")

    # restart kvgate (same port, same data dir): reconnecting, then resumed
    feed_before = feed_lines(b)
    last = int(c.post("/v3/maintenance/status", {}).json()["header"]["revision"])
    k.stop()
    b.wait(conn("reconnecting"))
    b.shot("dashboard-reconnecting")
    k.start()
    c = k.client()
    ra = put(c, "app/after-restart", "written while the page was away")
    rd = delete(c, "app/blob")
    rb = put(c, "app/live", "changed while away")
    b.wait(conn("live"), 30)
    b.wait(has_row("app/after-restart"), 20)
    b.wait("!(%s)" % has_row("app/blob"))
    b.wait("document.querySelector(%s).textContent.includes('changed while away')" % json.dumps(row_sel("app/live")))
    feed_after = feed_lines(b)
    new = feed_after[len(feed_before):]
    assert new == [("put", "app/after-restart", "rev %d" % ra), ("delete", "app/blob", "rev %d" % rd),
                   ("put", "app/live", "rev %d" % rb)], new
    assert ra == last + 1
    # no second snapshot: the page resumed, it did not list again
    notes = b.js("[...document.querySelectorAll('#events li.note')].map(l => l.textContent)")
    assert any("Reconnected" in n for n in notes), notes
    assert not any("compacted" in n for n in notes), notes
    assert sum("Listed" in n for n in notes) == 1, notes
    # still one EventSource: the old one closed, the new one resumed after the last revision seen
    made = one_event_source(b)
    assert made >= 2, made
    assert "last_event_id=%d" % last in " ".join(b.js("window.__es.urls")), b.js("window.__es.urls")
    b.shot("dashboard-after-restart")


@pytest.mark.timeout(90)
def test_compacted_while_away_lists_again(kvgate_factory, browser):
    b = browser
    k = kvgate_factory()
    c = k.client()
    put(c, "svc/a", "1")
    put(c, "svc/b", "2")
    open_page(b, k, "?prefix=svc/")
    b.wait(has_row("svc/b"))
    b.wait("document.getElementById('st-compact').textContent === 'never'")
    # a slow retry for this watch, so the writes and the compaction below are
    # surely done before the page comes back
    b.js("kvdash.tune.retryMs = 4000, kvdash.openView('svc/'), true")
    b.wait(conn("live"))
    k.stop()
    b.wait(conn("reconnecting"))
    k.start()
    c = k.client()
    put(c, "svc/c", "3")
    delete(c, "svc/a")
    rev = put(c, "other", "x")
    assert c.post("/v3/kv/compaction", {"revision": rev}).status == 200
    b.wait(conn("gone"), 15)
    assert not b.js("document.getElementById('conn-relist').hidden")
    b.shot("dashboard-gone")
    b.wait(conn("live"), 15)
    b.wait(has_row("svc/c") + " && !(" + has_row("svc/a") + ")")
    assert b.js("[...document.querySelectorAll('#key-rows tr')].map(r => r.dataset.id)") == ["ksvc/b", "ksvc/c"]
    b.wait("[...document.querySelectorAll('#events li.note')].filter(l => l.textContent.includes('Listed 2 keys at revision %d')).length === 1" % rev)
    b.wait("document.getElementById('st-compact').textContent.replace(/\\D/g, '') === '%d'" % rev)
    # history stops at the compaction point gracefully: the value current at
    # the compaction revision is still readable, the one before it is not
    put(c, "svc/b", "2b")
    rc = put(c, "svc/b", "2c")
    assert c.post("/v3/kv/compaction", {"revision": rc}).status == 200
    rd = put(c, "svc/b", "2d")
    b.wait("document.querySelector(%s).textContent.includes('2d')" % json.dumps(row_sel("svc/b")))
    b.click(row_sel("svc/b"))
    b.click("#d-history")
    b.wait("document.getElementById('history-note').textContent.includes('compacted')")
    hist = b.js("[...document.querySelectorAll('#history-list li')].map(l => l.textContent)")
    assert hist == ["v4rev %d2d" % rd, "v3rev %d2c" % rc], hist
    b.shot("dashboard-history-compacted")

    # compaction from the page, confirmed in a dialog
    top = put(c, "svc/d", "4")
    b.click("#compact-open")
    b.wait("document.getElementById('compact-dialog').open")
    assert b.focused() == "input#cmp-rev"
    assert b.js("document.getElementById('cmp-rev').value") == str(top)
    b.click("#cmp-confirm")
    b.wait("document.getElementById('st-compact').textContent.replace(/\\D/g, '') === '%d'" % top)
    r = c.post("/v3/kv/range", {"key": b64("svc/d"), "revision": top - 1})
    assert r.status == 400 and "compacted" in r.json()["message"]


@pytest.mark.timeout(90)
def test_paged_view_and_burst(kvgate_factory, browser):
    b = browser
    k = kvgate_factory()
    c = k.client()
    for i in range(60):
        put(c, "many/%03d" % i, "value %d" % i)
    open_page(b, k)
    # small pages so that 60 keys are "many": range with limit, watch after it
    b.js("kvdash.tune.snapshotMax = 25, kvdash.tune.page = 20, kvdash.openView('many/'), true")
    b.wait(conn("live") + " && document.querySelectorAll('#key-rows tr').length === 20")
    # a new view closed the old view's EventSource; the paged one starts after its range
    one_event_source(b)
    assert "start_revision=" in b.js("window.__es.urls[window.__es.urls.length - 1]")
    assert b.js("document.getElementById('key-count').textContent").startswith("60 keys")
    assert not b.js("document.getElementById('load-more').hidden")
    # writes on both sides of the loaded page while paging
    put(c, "many/005", "changed in page one")
    put(c, "many/045", "changed beyond the page")
    put(c, "many/0455", "new beyond the page")
    b.wait("document.getElementById('key-count').textContent.startsWith('61 keys')")
    b.wait("document.querySelector(%s).textContent.includes('changed in page one')" % json.dumps(row_sel("many/005")))
    for n in (40, 60, 61):
        b.click("#load-more")
        b.wait("document.querySelectorAll('#key-rows tr').length === %d" % n)
    assert b.js("document.getElementById('load-more').hidden")
    assert "changed beyond the page" in b.js(row_text("many/045"))
    assert b.js(has_row("many/0455"))
    ids = b.js("[...document.querySelectorAll('#key-rows tr')].map(r => r.dataset.id.slice(1))")
    assert ids == sorted(["many/%03d" % i for i in range(60)] + ["many/0455"])

    # a burst of writes: every one arrives, the feed stays bounded, frames keep coming
    b.js("""(() => { window.__gaps = []; let t = performance.now();
        const f = (now) => { window.__gaps.push(now - t); t = now; if (window.__gaps.length < 100000) requestAnimationFrame(f); };
        requestAnimationFrame(f); return true; })()""")
    feed_max = b.js("kvdash.tune.feedMax")
    n = 600
    done = []

    def writer():
        cc = k.client()
        for i in range(n):
            put(cc, "many/%03d" % (i % 60), "burst %d" % i)
        done.append(True)

    t = threading.Thread(target=writer)
    t.start()
    t.join(60)
    assert done
    b.wait("document.querySelector(%s).textContent.includes('burst %d')" % (json.dumps(row_sel("many/059")), n - 1), 20)
    assert b.js("document.querySelectorAll('#events li').length") <= feed_max
    worst = b.js("Math.max(...window.__gaps.slice(1))")
    assert worst < 1000, "a frame took %s ms" % worst
    b.shot("dashboard-paged-burst", scheme="dark")

    # a binary key (not UTF-8) is shown as 0x…, and editing it from the page
    # writes the same bytes, not the label
    bkey = b"many/\xff\xfebin"
    r = c.post("/v3/kv/put", {"key": base64.b64encode(bkey).decode(), "value": b64("raw")})
    assert r.status == 200
    sel = '[data-id="k%s"]' % bkey.decode("latin-1")
    b.wait("!!document.querySelector(%s)" % json.dumps(sel))
    assert b.js("document.querySelector(%s).firstElementChild.textContent" % json.dumps(sel)) == "0x" + bkey.hex()
    b.click(sel)
    b.click("#d-edit")
    b.fill("#put-value", "edited binary-keyed")
    b.click("#put-submit")
    b.wait("document.getElementById('d-value').textContent === 'edited binary-keyed'")
    r = c.post("/v3/kv/range", {"key": base64.b64encode(bkey).decode()}).json()
    assert base64.b64decode(r["kvs"][0]["value"]) == b"edited binary-keyed"
    r = c.post("/v3/kv/range", {"key": b64("0x"), "range_end": b64("0y"), "count_only": True}).json()
    assert r.get("count", "0") == "0"


@pytest.mark.timeout(150)
def test_ten_thousand_keys_paged_list_and_tree(kvgate_factory, browser):
    """10,000 keys: the list is paged (range with limit), the tree shows every
    top-level folder (the ones beyond the loaded page found by a scan), a
    folder opens as its own view, and writes keep arriving.  Timings are
    printed (pytest -s), not asserted."""
    b = browser
    k = kvgate_factory()
    c = k.client()
    n = 10000
    for lo in range(0, n, 100):
        ops = [{"request_put": {"key": b64("big/%02d/k%05d" % (i % 50, i)), "value": b64("value %d" % i)}}
               for i in range(lo, lo + 100)]
        r = c.post("/v3/kv/txn", {"success": ops})
        assert r.status == 200, r.json()
    put(c, "big/zz-leaf", "a key of the first level, after the folders")
    t0 = time.monotonic()
    open_page(b, k, "?prefix=big/")
    b.wait("document.querySelectorAll('#key-rows tr').length === 200")
    t_list = time.monotonic() - t0
    b.wait("document.getElementById('key-count').textContent.startsWith('10\u2009001 keys')")
    assert b.js("document.getElementById('page-info').textContent") == "showing 200 of 10\u2009001"
    assert not b.js("document.getElementById('load-more').hidden")
    # the view is a range with limit and a watch after it, not a 10,000-key snapshot
    assert "start_revision=" in b.js("window.__es.urls[window.__es.urls.length - 1]")
    one_event_source(b)
    # at most the rows shown are in the DOM
    assert b.js("document.querySelectorAll('#key-rows tr').length") == 200

    # live: a change in the loaded page, a key beyond it (only the total moves)
    put(c, "big/00/k00000", "changed live")
    b.wait("document.querySelector(%s).textContent.includes('changed live')" % json.dumps(row_sel("big/00/k00000")))
    put(c, "big/49/new", "beyond the page")
    b.wait("document.getElementById('key-count').textContent.startsWith('10\u2009002 keys')")
    t1 = time.monotonic()
    b.click("#load-more")
    b.wait("document.querySelectorAll('#key-rows tr').length === 400")
    t_more = time.monotonic() - t1
    b.shot("dashboard-10k-list")

    # the tree: every top-level folder, loaded or not, with its count
    b.click("label[for=view-tree]")
    b.wait("document.querySelectorAll('#key-tree li.dir').length === 50", 30)
    dirs = b.js("[...document.querySelectorAll('#key-tree li.dir')].map(l => [l.dataset.id, l.querySelector('.cnt').textContent])")
    assert [d for d, _ in dirs] == ["dbig/%02d/" % i for i in range(50)], dirs
    counts = dict(dirs)
    assert counts["dbig/10/"] == "200" and counts["dbig/49/"] == "201", counts
    # live counts of a folder beyond the loaded keys
    put(c, "big/48/new", "x")
    b.wait("document.querySelector('[data-id=\"dbig/48/\"] .cnt').textContent === '201'")
    b.shot("dashboard-10k-tree")
    # Enter on a folder that is not loaded opens it as the view
    b.js("document.querySelector('[data-id=\"dbig/49/\"]').focus()")
    b.press("Enter")
    b.wait("document.getElementById('prefix').value === 'big/49/' && " + conn("live"))
    # 201 keys, a snapshot (<= 2000), shown 200 at a time
    b.wait("document.querySelectorAll('#key-tree li.leaf').length === 200")
    assert b.js("document.getElementById('key-count').textContent").startswith("201 keys")
    assert "initial=true" in b.js("window.__es.urls[window.__es.urls.length - 1]")
    b.click("#load-more")
    b.wait("document.querySelectorAll('#key-tree li.leaf').length === 201")
    b.wait(has_row("big/49/new"))
    one_event_source(b)
    print("10k keys: first page %.2f s, load more %.2f s" % (t_list, t_more))


@pytest.mark.timeout(90)
def test_ephemeral_store_replaced_underneath(kvgate_factory, browser):
    """An --ephemeral kvgate restarted on the same port is a new, empty store
    whose revisions start over: the page must not keep showing the old keys
    as live (its resume point is in the new store's future); the status poll
    sees the revision go back and the view is listed again."""
    b = browser
    k = kvgate_factory(extra_args=["--ephemeral"])
    c = k.client()
    for i in range(5):
        put(c, "eph/old-%d" % i, "before")
    open_page(b, k)
    b.wait(has_row("eph/old-4"))
    b.js("kvdash.tune.statusMs = 500, true")
    k.stop()
    b.wait(conn("reconnecting"))
    k.start()
    c = k.client()
    rev = put(c, "eph/new", "after")
    assert rev == 2
    b.wait(has_row("eph/new") + " && !(" + has_row("eph/old-0") + ")", 20)
    b.wait(conn("live"))
    assert b.js("[...document.querySelectorAll('#key-rows tr')].map(r => r.dataset.id)") == ["keph/new"]
    notes = b.js("[...document.querySelectorAll('#events li.note')].map(l => l.textContent)")
    assert any("changed underneath" in n for n in notes), notes
    # and it is live again: a later write shows up
    put(c, "eph/later", "x")
    b.wait(has_row("eph/later"))
