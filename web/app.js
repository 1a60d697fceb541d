// app.js — kvgate's dashboard: a live key-value browser.
//
// Everything it says to kvgate goes through kvgate.js (one client).  One
// view = one prefix = one watch:
//   - up to SNAPSHOT_MAX keys: the watch starts with initial=true, so the
//     list and the live changes start from one consistent revision;
//   - more keys: the first page is a range with `limit`, the watch starts
//     right after that range's revision, and "Load more" reads the next page
//     at the revision the view has reached (model.js explains why nothing is
//     lost or doubled).
// The watch resumes by itself after a drop (last_event_id = the last
// revision it delivered, so every event arrives once); when the events it
// needs have been compacted it ends with CompactedError ("gone") and the
// view is listed again.
//
// Rendering: events only mark things dirty; one requestAnimationFrame
// callback redraws what changed, reusing the row elements of keys that
// stay (focus and scroll position survive), and at most `shown` rows are
// ever in the DOM.  The events feed keeps the last FEED_MAX entries.

import { Client, CompactedError, KvgateError } from "./kvgate.js";
import {
  asText, base64, bstr, fmtBytes, fmtInt, fmtTime, hex, hexdump, keyLabel,
  preview, prefixEnd, toBytes, unbstr,
} from "./format.js";
import { KeyView } from "./model.js";

// Tunables (variables so a test can shrink them: window.kvdash.tune).
const tune = {
  page: 200,            // rows per page ("Load more")
  snapshotMax: 2000,    // up to this many keys: initial=true snapshot
  feedMax: 300,         // events kept in the feed
  statusMs: 3000,       // store status poll
  historyMax: 50,       // versions per history read
  relistMs: 1500,       // after "gone": re-list automatically after this
  sliceMs: 12,          // longest stretch of event handling without a break
  retryMs: 100,         // watch reconnect: first delay, doubled up to maxRetryMs
  maxRetryMs: 2000,
  dirScanMax: 64,       // paged tree: most folders listed beyond the loaded keys
};

const kv = new Client();
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

// ---------------------------------------------------------------------------
// state

const S = {
  gen: 0,             // view generation: async work for an old view is dropped
  view: null,         // KeyView
  watch: null,        // kvgate.js Watch
  conn: "connecting",
  shown: tune.page,   // rows to show
  mode: "list",       // "list" | "tree"
  expanded: new Set(),// tree: expanded directory prefixes (binary strings)
  selected: null,     // selected key (binary string)
  selEntry: null,     // its last known entry (kept after a delete)
  selGone: false,
  fmt: null,          // chosen value format, null: automatic
  active: null,       // row id with tabindex=0 (roving focus)
  changed: new Set(), // keys changed since the last frame (flash)
  feedQ: [],          // feed entries waiting for the next frame
  dirty: { list: false, detail: false, status: false },
  status: { member: "", revision: null, compact: null, dbSize: null, dbInUse: null, version: "",
            watchers: null /* {synced, unsynced, victim} from /metrics; null: not served */ },
  rates: [],          // timestamps of recent events (rate display)
  relistTimer: 0,
  paging: false,
  prefixText: "",
  putRawKey: null,    // {label, key}: the binary key being edited
  ttl: null,          // {lease, ttl, at}: the selected key's lease, as last read
  capped: false,      // the last render had more rows than `shown`
  focusFirst: false,  // focus the first row once the new view has rows
  dirs: null,         // paged tree: {view, map: dir -> count, done, more} folders beyond the loaded keys
};

// ---------------------------------------------------------------------------
// frames

let frame = 0;
function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (S.dirty.list) { S.dirty.list = false; renderKeys(); }
  if (S.dirty.detail) { S.dirty.detail = false; renderDetail(); }
  if (S.feedQ.length) renderFeed();
  if (S.dirty.status) { S.dirty.status = false; renderStatus(); }
  S.changed.clear();
}

// ---------------------------------------------------------------------------
// the view: list, watch, load more

/** [key, options] for kvgate.js covering every key under prefix (bytes). */
function scope(p) {
  return p.length ? [p, { prefix: true }] : [new Uint8Array([0]), { fromKey: true }];
}

function entryOf(kvx) {
  return KeyView.entry(bstr(kvx.keyBytes), {
    create_revision: kvx.createRevision, mod_revision: kvx.modRevision,
    version: kvx.version, lease: kvx.lease,
  }, kvx.valueBytes);
}

async function openView(prefixText) {
  const my = ++S.gen;
  if (S.watch) S.watch.cancel();
  S.watch = null;
  clearTimeout(S.relistTimer);
  S.prefixText = prefixText;
  if ($("prefix").value !== prefixText) $("prefix").value = prefixText;
  const pb = toBytes(prefixText);
  const view = new KeyView(bstr(pb));
  S.view = view;
  S.shown = tune.page;
  S.active = null;
  S.paging = false;
  setConn("connecting");
  S.dirty.list = S.dirty.detail = true;
  schedule();
  const [key, opts] = scope(pb);
  let startRev = null;
  try {
    const c = await kv.range(key, { ...opts, countOnly: true });
    if (my !== S.gen) return;
    if (Number(c.count) <= tune.snapshotMax) {
      view.complete = true;
    } else {
      const r = await kv.range(key, { ...opts, limit: tune.page });
      if (my !== S.gen) return;
      view.total = Number(r.count);
      view.rev = Number(r.revision);
      view.addPage(r.kvs.map(entryOf), r.more);
      view.loaded = true;
      startRev = Number(r.revision) + 1;
      S.dirty.list = true;
      schedule();
    }
  } catch (e) {
    if (my !== S.gen) return;
    setConn("reconnecting");
    S.relistTimer = setTimeout(() => { if (my === S.gen) openView(prefixText); }, 2000);
    return;
  }
  const wopts = {
    ...opts,
    retryMs: tune.retryMs,
    maxRetryMs: Math.max(tune.retryMs, tune.maxRetryMs),
    onState: (s) => { if (my === S.gen) setConn(s); },
  };
  if (startRev === null) wopts.initial = true; else wopts.startRevision = startRev;
  // markers: one {type: "synced"} item, in order, right after the snapshot
  if (wopts.initial) wopts.markers = true;
  const w = kv.watch(key, wopts);
  S.watch = w;
  consume(w, view, my, prefixText);
}

async function consume(w, view, my, prefixText) {
  let slice = performance.now();
  try {
    for await (const ev of w) {
      if (my !== S.gen) return;
      // a burst must not hold the main thread: give frames a turn every
      // few milliseconds (the watch holds the rest, and pauses its reading
      // when too much is waiting)
      if (performance.now() - slice > tune.sliceMs) {
        await new Promise((ok) => setTimeout(ok, 0));
        if (my !== S.gen) return;
        slice = performance.now();
      }
      if (ev.type === "synced") {
        // the snapshot is all in: the view is complete at this revision
        view.loaded = true;
        if (Number(ev.revision) > view.rev) view.rev = Number(ev.revision);
        note(`Listed ${fmtInt(view.keys.length)} key${view.keys.length === 1 ? "" : "s"} at revision ${ev.revision}; live from here.`);
        S.dirty.list = S.dirty.status = true;
        schedule();
        continue;
      }
      const k = bstr(ev.kv.keyBytes);
      const rev = Number(ev.revision);
      if (ev.initial) {
        view.set(entryOf(ev.kv));
        view.total++;
        if (rev > view.rev) view.rev = rev;
      } else {
        const e = ev.type === "put" ? entryOf(ev.kv) : null;
        dirEvent(view, k, ev.type, e);
        const what = view.apply(ev.type === "put" ? "PUT" : "DELETE", k, e, rev);
        if (what) S.changed.add(k);
        feed(ev.type, k, rev, e);
        if (k === S.selected) {
          if (e) { S.selEntry = e; S.selGone = false; } else S.selGone = true;
          S.dirty.detail = true;
        }
      }
      const r = Number(w.revision);
      if (r > view.rev) view.rev = r;
      S.dirty.list = S.dirty.status = true;
      schedule();
    }
  } catch (e) {
    if (my !== S.gen) return;
    if (e instanceof CompactedError) {
      setConn("gone");
      if (e.compactRevision != null) { S.status.compact = e.compactRevision; S.dirty.status = true; }
      note(`History needed to resume was compacted${e.compactRevision ? " (at revision " + e.compactRevision + ")" : ""}; listing again.`);
      refreshCompaction();
      S.relistTimer = setTimeout(() => { if (my === S.gen) openView(prefixText); }, tune.relistMs);
    } else {
      setConn("failed");
      note(`Watch failed: ${e.message}; retrying.`);
      S.relistTimer = setTimeout(() => { if (my === S.gen) openView(prefixText); }, 3000);
    }
  }
}

async function loadMore() {
  const view = S.view;
  if (!view || S.paging) return;
  S.shown += tune.page;
  // list: rows are keys; tree: fetch only once every loaded key can show
  const enough = S.mode === "list" ? view.keys.length >= S.shown : S.capped;
  if (view.complete || enough) {
    S.dirty.list = true;
    schedule();
    return;
  }
  const my = S.gen;
  S.paging = true;
  const rev = view.beginPage();
  const p = unbstr(view.prefix);
  const from = view.boundary === null ? (p.length ? p : new Uint8Array([0])) : unbstr(view.boundary + "\0");
  const end = p.length ? unbstr(prefixEnd(view.prefix)) : new Uint8Array([0]);
  try {
    const r = await kv.range(from, { rangeEnd: end, limit: tune.page, revision: rev });
    if (my !== S.gen) return;
    view.endPage(r.kvs.map(entryOf), r.more);
  } catch (e) {
    if (my !== S.gen) return;
    view.abortPage();
    S.shown -= tune.page;
    if (e instanceof CompactedError) { openView(S.prefixText); return; }
    toast("Could not load more: " + e.message, true);
  } finally {
    if (my === S.gen) S.paging = false;
  }
  S.dirty.list = true;
  schedule();
}

// ---------------------------------------------------------------------------
// connection state

const CONN_TEXT = {
  connecting: "connecting", live: "live", reconnecting: "reconnecting",
  gone: "gone — history compacted", failed: "error", closed: "closed",
};

function setConn(s) {
  if (S.conn === s) return;
  const was = S.conn;
  S.conn = s;
  const c = $("conn");
  c.dataset.state = s;
  document.body.dataset.conn = s;
  $("conn-text").textContent = CONN_TEXT[s] || s;
  $("conn-relist").hidden = !(s === "gone" || s === "failed");
  document.title = s === "live" ? "kvgate" : `kvgate (${CONN_TEXT[s] || s})`;
  $("status").title = s === "live" || s === "connecting" ? "" : "Last known values: not live";
  if (s === "reconnecting" && was === "live") note("Connection lost; reconnecting…");
  if (s === "live" && (was === "reconnecting")) note("Reconnected; resumed after revision " + (S.watch ? S.watch.revision : "?"));
  if (s === "live") pollStatus();
}

// ---------------------------------------------------------------------------
// keys: list and tree

/** Rows to show: [{id, kind, key, depth, label, entry, count, dir}]. */
function rowsFor(view) {
  const rows = [];
  const keys = view.keys;
  const max = S.shown;
  if (S.mode === "list") {
    for (let i = 0; i < keys.length && rows.length < max; i++) {
      const k = keys[i];
      rows.push({ id: "k" + k, kind: "key", key: k, entry: view.map.get(k) });
    }
    return rows;
  }
  // Tree: keys split on "/" after the view's prefix.  A directory's keys are
  // one contiguous run of the sorted keys (they share its prefix), so a
  // collapsed directory is skipped with one binary search.
  const base = view.prefix.length;
  const walk = (lo, hi, dirPrefix, depth) => {
    let i = lo;
    while (i < hi && rows.length < max) {
      const k = keys[i];
      const slash = k.indexOf("/", dirPrefix.length);
      if (slash < 0 || k.length === dirPrefix.length) {
        rows.push({ id: "k" + k, kind: "key", key: k, depth, entry: view.map.get(k),
          label: k.length === dirPrefix.length ? "(this key)" : k.slice(dirPrefix.length) });
        i++;
        continue;
      }
      const d = k.slice(0, slash + 1);
      const end = Math.min(hi, view.lowerBound(prefixEnd(d)));
      const open = S.expanded.has(d);
      // paged view: a directory that reaches past the loaded keys has more
      const partial = !view.complete && end === keys.length;
      rows.push({ id: "d" + d, kind: "dir", key: d, depth, label: d.slice(dirPrefix.length), count: end - i, open, partial });
      if (open) walk(i, end, d, depth + 1);
      i = end;
    }
  };
  walk(0, keys.length, view.prefix.slice(0, base), 1);
  // paged view: the top-level folders beyond the loaded keys (found by
  // scanDirs), so the tree shows the whole first level; browsing one opens
  // it as the view's prefix
  const ds = S.dirs;
  if (!view.complete && ds && ds.view === view && view.boundary !== null) {
    for (const d of [...ds.map.keys()].sort()) {
      if (rows.length >= max) break;
      if (d <= view.boundary) continue;  // some of its keys are loaded: the walk showed it
      rows.push({ id: "d" + d, kind: "dir", key: d, depth: 1, label: d.slice(base), count: ds.map.get(d),
        open: false, partial: false, remote: true });
    }
  }
  return rows;
}

/** The top-level folder of key k in view (binary strings), or null for a key without one. */
function topDir(view, k) {
  const i = k.indexOf("/", view.prefix.length);
  return i < 0 ? null : k.slice(0, i + 1);
}

/** Paged tree view: find the top-level folders after the loaded keys, one
 *  `limit: 1, keys_only` range per folder (skipping over each one with its
 *  prefix end) and one count each, at most tune.dirScanMax. */
async function scanDirs(view) {
  if (S.dirs && S.dirs.view === view) return;
  const ds = { view, map: new Map(), done: false, more: false };
  S.dirs = ds;
  const pend = view.prefix.length ? prefixEnd(view.prefix) : "\0";
  const last = view.boundary;
  const bd = topDir(view, last);
  let from = bd !== null ? prefixEnd(bd) : last + "\0";
  try {
    for (let n = 0; n < tune.dirScanMax * 2; n++) {
      if (S.dirs !== ds) return;
      if (pend !== "\0" && from >= pend) break;
      const r = await kv.range(unbstr(from), { rangeEnd: unbstr(pend), limit: 1, keysOnly: true });
      if (!r.kvs.length) break;
      const k = bstr(r.kvs[0].keyBytes);
      const d = topDir(view, k);
      if (d === null) { from = k + "\0"; continue; }   // a key of this level: "Load more" brings it
      if (ds.map.size >= tune.dirScanMax) { ds.more = true; break; }
      const c = await kv.range(unbstr(d), { prefix: true, countOnly: true });
      if (S.dirs !== ds) return;
      if (Number(c.count) > 0 && !ds.map.has(d)) ds.map.set(d, Number(c.count));
      from = prefixEnd(d);
      S.dirty.list = true;
      schedule();
    }
  } catch { /* the connection state tells; the next view scans again */ }
  ds.done = true;
  S.dirty.list = true;
  schedule();
}

/** An event for a key beyond the loaded ones: keep the scanned folders' counts. */
function dirEvent(view, k, type, e) {
  const ds = S.dirs;
  if (!ds || ds.view !== view || !ds.done || view.covers(k)) return;
  const d = topDir(view, k);
  if (d === null || d <= view.boundary) return;
  const n = ds.map.get(d) || 0;
  if (type === "delete") { if (n <= 1) ds.map.delete(d); else ds.map.set(d, n - 1); }
  else if (e && e.version === "1" && (ds.map.has(d) || ds.map.size < tune.dirScanMax)) ds.map.set(d, n + 1);
}

function renderKeys() {
  const view = S.view;
  if (!view) return;
  const list = S.mode === "list";
  $("key-table").hidden = !list;
  $("key-tree").hidden = list;
  if (!list && !view.complete && view.loaded && view.boundary !== null) scanDirs(view);
  const rows = rowsFor(view);
  (list ? $("key-tree") : $("key-rows")).textContent = "";  // one set of rows in the DOM
  if (list) reconcile($("key-rows"), rows, makeTr, updateTr);
  else reconcile($("key-tree"), rows, makeTi, updateTi);
  // roving tabindex: exactly one row is in the tab order
  const box = list ? $("key-rows") : $("key-tree");
  let act = S.active && box.querySelector(`[data-id="${CSS.escape(S.active)}"]`);
  if (!act && S.selected !== null) act = box.querySelector(`[data-id="${CSS.escape("k" + S.selected)}"]`);
  if (!act) act = box.firstElementChild;
  for (const r of box.querySelectorAll('[tabindex="0"]')) if (r !== act) r.tabIndex = -1;
  if (act) act.tabIndex = 0;
  if (S.focusFirst && box.firstElementChild) { S.focusFirst = false; activate(box.firstElementChild, false); }

  const loaded = view.keys.length;
  const total = view.complete ? loaded : Math.max(view.total, loaded);
  const empty = total === 0 && view.loaded;
  $("keys-empty").hidden = !empty;
  if (empty) {
    $("keys-empty").textContent = view.prefix
      ? `No keys start with “${keyLabel(view.prefix)}”.`
      : "The store is empty. Create a key with New key.";
  }
  $("key-count").textContent = !view.loaded && !loaded ? "loading…"
    : `${fmtInt(total)} key${total === 1 ? "" : "s"}${view.prefix ? " under “" + keyLabel(view.prefix) + "”" : ""}`;
  S.capped = rows.length >= S.shown;  // more rows than shown are there
  const more = list ? (loaded > S.shown || !view.complete) && total > Math.min(S.shown, loaded)
                    : S.capped || !view.complete;
  $("load-more").hidden = !more;
  $("load-more").disabled = S.paging;
  $("page-info").textContent = !total ? ""
    : list ? `showing ${fmtInt(Math.min(S.shown, loaded))} of ${fmtInt(total)}`
    : view.complete ? "" : `${fmtInt(loaded)} of ${fmtInt(total)} keys loaded`
      + (S.dirs && S.dirs.view === view && S.dirs.more ? ` · first ${tune.dirScanMax} folders after them` : "");
}

/** Puts `rows` in `box` in order, reusing the element of each row id. */
function reconcile(box, rows, make, update) {
  const have = new Map();
  for (const c of box.children) have.set(c.dataset.id, c);
  const want = new Set(rows.map((r) => r.id));
  for (const [id, c] of have) if (!want.has(id)) { c.remove(); have.delete(id); }
  let at = box.firstElementChild;
  for (const r of rows) {
    let e = have.get(r.id);
    if (!e) e = make(r);
    update(e, r);
    if (e !== at) box.insertBefore(e, at);
    else at = at.nextElementSibling;
  }
}

function makeTr(r) {
  const tr = el("tr");
  tr.dataset.id = r.id;
  tr.tabIndex = -1;
  tr.append(el("td", "k"), el("td", "v"), el("td", "num"), el("td", "num"), el("td", "num lease"));
  return tr;
}

function updateTr(tr, r) {
  const e = r.entry;
  if (r.key === S.selected) tr.setAttribute("aria-current", "true"); else tr.removeAttribute("aria-current");
  if (tr._e === e) return;
  tr._e = e;
  const [tk, tv, tm, tver, tl] = tr.children;
  tk.textContent = keyLabel(r.key);
  tk.title = keyLabel(r.key);
  tv.textContent = "";
  if (e.text === null) tv.append(el("span", "bin", "BIN"));
  if (e.value.length === 0) tv.append(el("i", "nil", "(empty)"));
  else tv.append(preview(e.value, e.text));
  tm.textContent = e.mod;
  tver.textContent = e.version;
  tl.textContent = e.lease === "0" ? "" : e.lease;
  tl.title = e.lease === "0" ? "" : "lease " + e.lease;
  if (S.changed.has(r.key)) flash(tr);
}

function makeTi(r) {
  const li = el("li");
  li.dataset.id = r.id;
  li.tabIndex = -1;
  li.setAttribute("role", "treeitem");
  const row = el("div", "row");
  row.append(el("span", "twisty"), el("span", "name"), el("span", "cnt"), el("span", "tv"));
  if (r.kind === "dir") {
    const b = el("span", "browse", "browse ›");
    b.title = "Browse this prefix (Shift+Enter)";
    row.append(b);
  }
  row.setAttribute("aria-hidden", "false");
  li.append(row);
  return li;
}

function updateTi(li, r) {
  li.setAttribute("aria-level", String(r.depth));
  li.className = r.kind === "dir" ? "dir" : "leaf";
  li.setAttribute("aria-selected", String(r.kind === "key" && r.key === S.selected));
  const row = li.firstElementChild;
  row.style.paddingLeft = 10 + (r.depth - 1) * 18 + "px";
  const [tw, nm, cnt, tv] = row.children;
  if (r.kind === "dir") {
    li.setAttribute("aria-expanded", String(r.open));
    if (r.remote) li.dataset.remote = "1"; else delete li.dataset.remote;
    tw.textContent = r.open ? "▾" : "▸";
    nm.textContent = keyLabel(r.label);
    cnt.textContent = fmtInt(r.count) + (r.partial ? "+" : "");
    cnt.title = r.partial ? "more keys beyond the loaded pages"
      : r.remote ? "not loaded yet: Enter or a click browses it" : "";
    tv.textContent = "";
    li._e = null;
    return;
  }
  li.removeAttribute("aria-expanded");
  tw.textContent = "";
  cnt.textContent = "";
  if (li._e === r.entry) return;
  li._e = r.entry;
  nm.textContent = keyLabel(r.label);
  nm.title = keyLabel(r.key);
  tv.textContent = preview(r.entry.value, r.entry.text, 80);
  if (S.changed.has(r.key)) flash(row);
}

function flash(e) {
  e.classList.remove("flash");
  void e.offsetWidth; // restart the animation
  e.classList.add("flash");
}

function rowFromEvent(ev) {
  return ev.target.closest("[data-id]");
}

function activate(row, select) {
  if (!row) return;
  const id = row.dataset.id;
  S.active = id;
  for (const r of row.parentElement.querySelectorAll('[tabindex="0"]')) r.tabIndex = -1;
  row.tabIndex = 0;
  row.focus();
  if (!select) return;
  if (id[0] === "d" && row.dataset.remote) browseInto(id.slice(1));
  else if (id[0] === "d") toggleDir(id.slice(1));
  else selectKey(id.slice(1));
}

/** A directory of the tree becomes the view's prefix. */
function browseInto(d) {
  const text = keyLabel(d);
  S.expanded.clear();
  const u = new URL(location.href);
  u.searchParams.set("prefix", text);
  history.replaceState(null, "", u);
  openView(text);
  S.focusFirst = true;
}

function toggleDir(d, open) {
  const o = open === undefined ? !S.expanded.has(d) : open;
  if (o) S.expanded.add(d); else S.expanded.delete(d);
  S.dirty.list = true;
  schedule();
}

function onKeysKey(ev) {
  const row = rowFromEvent(ev);
  if (!row) return;
  const id = row.dataset.id;
  let next = null;
  switch (ev.key) {
    case "ArrowDown": next = row.nextElementSibling; break;
    case "ArrowUp": next = row.previousElementSibling; break;
    case "Home": next = row.parentElement.firstElementChild; break;
    case "End": next = row.parentElement.lastElementChild; break;
    case "PageDown": { next = row; for (let i = 0; i < 10 && next.nextElementSibling; i++) next = next.nextElementSibling; break; }
    case "PageUp": { next = row; for (let i = 0; i < 10 && next.previousElementSibling; i++) next = next.previousElementSibling; break; }
    case "Enter": case " ":
      ev.preventDefault();
      if (ev.shiftKey && id[0] === "d") { browseInto(id.slice(1)); return; }
      activate(row, true);
      return;
    case "ArrowRight":
      if (id[0] === "d" && row.dataset.remote) { ev.preventDefault(); browseInto(id.slice(1)); return; }
      if (id[0] === "d") { ev.preventDefault(); if (!S.expanded.has(id.slice(1))) toggleDir(id.slice(1), true); else next = row.nextElementSibling; }
      break;
    case "ArrowLeft":
      if (id[0] === "d" && S.expanded.has(id.slice(1))) { ev.preventDefault(); toggleDir(id.slice(1), false); return; }
      if (S.mode === "tree") {
        const lvl = Number(row.getAttribute("aria-level"));
        let p = row.previousElementSibling;
        while (p && Number(p.getAttribute("aria-level")) >= lvl) p = p.previousElementSibling;
        next = p;
      }
      break;
    case "Delete":
      if (id[0] === "k") { ev.preventDefault(); selectKey(id.slice(1)); openDelete(); }
      return;
    default:
      return;
  }
  if (next) { ev.preventDefault(); activate(next, false); }
}

// ---------------------------------------------------------------------------
// the selected key

function selectKey(k) {
  S.selected = k;
  S.selGone = false;
  S.fmt = null;
  S.selEntry = S.view && S.view.map.get(k) || null;
  $("history").hidden = true;
  $("put-form").hidden = true;
  S.dirty.detail = S.dirty.list = true;
  schedule();
  if (!S.selEntry) {
    // not in the loaded list (another prefix, or beyond the loaded pages)
    const my = S.gen;
    kv.get(unbstr(k)).then((x) => {
      if (S.selected !== k || my !== S.gen) return;
      S.selEntry = x ? entryOf(x) : null;
      S.selGone = !x;
      S.dirty.detail = true;
      schedule();
    }, (e) => toast("Could not read the key: " + e.message, true));
  }
}

const SHOW_MAX = 256 * 1024; // characters of a value shown at once

function cut(s, n) {
  return s.length <= n ? s : s.slice(0, n) + `\n… (${fmtInt(s.length - n)} more characters)`;
}

function currentFmt(e) {
  if (S.fmt) return e.text === null && S.fmt === "text" ? "hex" : S.fmt;
  return e.text === null ? "hex" : "text";
}

function renderDetail() {
  const e = S.selEntry;
  const editing = !$("put-form").hidden;
  const show = S.selected !== null && e !== null && !editing;
  $("detail").hidden = !show;
  $("detail-empty").hidden = show || !$("put-form").hidden;
  if (!show) {
    if (S.selected !== null && S.selGone && !editing) {
      $("detail-empty").hidden = false;
      $("detail-empty").textContent = `“${keyLabel(S.selected)}” does not exist.`;
    }
    return;
  }
  $("d-key").textContent = keyLabel(S.selected);
  $("d-kind").textContent = e.text === null ? "binary" : "text";
  $("d-create").textContent = e.create;
  $("d-mod").textContent = e.mod;
  $("d-ver").textContent = e.version;
  $("d-lease").textContent = e.lease === "0" ? "none" : e.lease;
  $("d-ttl-box").hidden = e.lease === "0";
  if (e.lease !== "0") showTtl(e.lease);
  $("d-size").textContent = fmtBytes(e.value.length);
  const f = currentFmt(e);
  $("fmt-text").disabled = e.text === null;
  $("fmt-" + (f === "base64" ? "b64" : f)).checked = true;
  const pre = $("d-value");
  pre.classList.toggle("empty-value", e.value.length === 0);
  pre.classList.toggle("hexdump", f === "hex" && e.value.length > 0);
  pre.textContent = e.value.length === 0 ? "(empty)"
    : f === "text" ? cut(e.text, SHOW_MAX) : f === "hex" ? hexdump(e.value) : cut(base64(e.value), SHOW_MAX);
  $("d-gone").hidden = !S.selGone;
  $("d-gone").textContent = S.selGone ? "This key was deleted; its last value is shown." : "";
  $("d-edit").disabled = false;
  $("d-delete").disabled = S.selGone;
  $("d-history").disabled = S.selGone;
}

/** The remaining TTL of the selected key's lease, read once per selection
 *  and lease (timeToLive), then counted down locally. */
function showTtl(lease) {
  const t = S.ttl;
  const dd = $("d-ttl");
  if (t && t.lease === lease && t.key === S.selected) {
    if (t.ttl === null) return;
    const left = Math.max(0, Math.round(t.ttl - (performance.now() - t.at) / 1000));
    dd.textContent = t.ttl < 0 ? "expired" : `${fmtInt(left)} s`;
    return;
  }
  dd.textContent = "…";
  const key = S.selected;
  S.ttl = { lease, key, ttl: null, at: 0 };
  kv.lease.timeToLive(lease).then((r) => {
    if (!S.ttl || S.ttl.lease !== lease || S.ttl.key !== key) return;
    S.ttl.ttl = Number(r.ttl);
    S.ttl.at = performance.now();
    S.dirty.detail = true;
    schedule();
  }, () => {});
}

async function showHistory() {
  const k = S.selected;
  const e = S.selEntry;
  if (k === null || !e) return;
  const list = $("history-list");
  const noteEl = $("history-note");
  $("history").hidden = false;
  list.textContent = "";
  noteEl.textContent = "Reading…";
  const item = (ver, rev, bytes, text) => {
    const li = el("li");
    li.append(el("span", "hn", "v" + ver), el("span", "hr", "rev " + rev),
      el("span", "hv", bytes.length === 0 ? "(empty)" : preview(bytes, text, 200)));
    li.lastChild.title = text !== null ? text.slice(0, 2000) : hex(bytes, 256);
    return li;
  };
  list.append(item(e.version, e.mod, e.value, e.text));
  // Walk back: the value just before each modification is the previous
  // version, until the key's creation or the compaction point.
  let rev = Number(e.mod) - 1;
  const create = Number(e.create);
  let n = 1;
  try {
    while (rev >= create && n < tune.historyMax) {
      const x = await kv.get(unbstr(k), { revision: rev });
      if (S.selected !== k) return;
      if (!x) break;
      list.append(item(String(x.version), String(x.modRevision), x.valueBytes, asText(x.valueBytes)));
      n++;
      rev = Number(x.modRevision) - 1;
    }
    noteEl.textContent = rev < create || n === Number(e.version)
      ? `All ${n} version${n === 1 ? "" : "s"} since creation at revision ${e.create}.`
      : `Showing the latest ${n} versions.`;
  } catch (err) {
    if (S.selected !== k) return;
    if (err instanceof CompactedError) {
      noteEl.textContent = `Older versions were compacted${S.status.compact ? " (compaction at revision " + S.status.compact + ")" : ""}.`;
    } else {
      noteEl.textContent = "Could not read the history: " + err.message;
    }
  }
}

// ---------------------------------------------------------------------------
// put and delete

function openPut(fromSelected) {
  const f = $("put-form");
  f.hidden = false;
  $("detail-empty").hidden = true;
  $("detail").hidden = true;
  $("put-error").hidden = true;
  const e = fromSelected ? S.selEntry : null;
  $("put-title").textContent = e ? "Edit" : "New key";
  $("put-key").value = e ? keyLabel(S.selected) : (S.view ? keyLabel(S.view.prefix) : "");
  // a binary key is shown as 0x…: the form keeps its bytes while the field is unchanged
  S.putRawKey = e && asText(unbstr(S.selected)) === null ? { label: keyLabel(S.selected), key: S.selected } : null;
  $("put-key").readOnly = false;
  $("put-b64").checked = !!e && e.text === null;
  $("put-value").value = e ? (e.text !== null ? e.text : base64(e.value)) : "";
  $("put-lease").value = e && e.lease !== "0" ? e.lease : "";
  (e ? $("put-value") : $("put-key")).focus();
}

function closePut() {
  $("put-form").hidden = true;
  S.dirty.detail = true;
  schedule();
}

async function submitPut(ev) {
  ev.preventDefault();
  const keyText = $("put-key").value;
  const errEl = $("put-error");
  errEl.hidden = true;
  if (!keyText) { errEl.textContent = "A key is required."; errEl.hidden = false; return; }
  let value;
  if ($("put-b64").checked) {
    try { value = unbstr(atob($("put-value").value.replace(/\s+/g, ""))); } catch {
      errEl.textContent = "The value is not valid base64."; errEl.hidden = false; return;
    }
  } else value = $("put-value").value;
  const leaseText = $("put-lease").value.trim();
  if (leaseText && !/^[0-9]+$/.test(leaseText)) { errEl.textContent = "A lease ID is a decimal number."; errEl.hidden = false; return; }
  const btn = $("put-submit");
  btn.disabled = true;
  try {
    const raw = S.putRawKey && S.putRawKey.label === keyText ? S.putRawKey.key : null;
    const keyBytes = raw !== null ? unbstr(raw) : toBytes(keyText);
    const r = await kv.put(keyBytes, value, leaseText && leaseText !== "0" ? { lease: leaseText } : {});
    toast(`Put “${keyText}” at revision ${r.revision}`);
    closePut();
    selectKey(bstr(keyBytes));
  } catch (e) {
    errEl.textContent = e.code === 5 ? `Lease ${leaseText} does not exist.` : e.message;
    errEl.hidden = false;
  } finally {
    btn.disabled = false;
  }
}

function openDelete() {
  if (S.selected === null || S.selGone) return;
  $("del-key").textContent = keyLabel(S.selected);
  const d = $("delete-dialog");
  d.returnValue = "";
  d.showModal();
  $("del-cancel").focus();
}

async function onDeleteClose() {
  const d = $("delete-dialog");
  if (d.returnValue !== "delete" || S.selected === null) { focusSelected(); return; }
  const k = S.selected;
  // afterwards the keyboard focus goes to the next row (or the previous)
  const box = S.mode === "list" ? $("key-rows") : $("key-tree");
  const row = box.querySelector(`[data-id="${CSS.escape("k" + k)}"]`);
  const near = row && (row.nextElementSibling || row.previousElementSibling);
  if (near) activate(near, false);
  try {
    const r = await kv.delete(unbstr(k));
    toast(Number(r.deleted) ? `Deleted “${keyLabel(k)}” at revision ${r.revision}` : `“${keyLabel(k)}” was already gone`);
  } catch (e) {
    toast("Delete failed: " + e.message, true);
    focusSelected();
  }
}

function focusSelected() {
  const box = S.mode === "list" ? $("key-rows") : $("key-tree");
  const r = S.selected !== null && box.querySelector(`[data-id="${CSS.escape("k" + S.selected)}"]`);
  if (r) r.focus(); else $("d-delete").focus();
}

// ---------------------------------------------------------------------------
// events feed

function feed(type, k, rev, e) {
  S.feedQ.push({ t: new Date(), type, k, rev, e });
  if (S.feedQ.length > 2 * tune.feedMax) S.feedQ.splice(0, S.feedQ.length - tune.feedMax);
  const now = performance.now();
  S.rates.push(now);
}

function note(text) {
  S.feedQ.push({ t: new Date(), type: "note", text });
  schedule();
}

function renderFeed() {
  const ol = $("events");
  const frag = document.createDocumentFragment();
  const from = Math.max(0, S.feedQ.length - tune.feedMax);
  for (let i = S.feedQ.length - 1; i >= from; i--) {
    const x = S.feedQ[i];
    const li = el("li", x.type === "note" ? "note" : "");
    li.append(el("span", "t", fmtTime(x.t)));
    if (x.type === "note") {
      li.append(el("span", "ty note", "info"), el("span", "ek", x.text), el("span", "r", ""));
    } else {
      li.append(el("span", "ty " + x.type, x.type));
      const ek = el("span", "ek", keyLabel(x.k));
      if (x.e) ek.append(el("span", "ev", x.e.value.length ? preview(x.e.value, x.e.text, 60) : "(empty)"));
      li.append(ek, el("span", "r", "rev " + x.rev));
      li.dataset.key = x.k;
    }
    frag.append(li);
  }
  S.feedQ.length = 0;
  ol.prepend(frag);
  while (ol.childElementCount > tune.feedMax) ol.lastElementChild.remove();
  const now = performance.now();
  while (S.rates.length && S.rates[0] < now - 5000) S.rates.shift();
  $("event-rate").textContent = S.rates.length ? `${(S.rates.length / 5).toFixed(S.rates.length < 50 ? 1 : 0)}/s` : "";
}

// ---------------------------------------------------------------------------
// store status

async function pollStatus() {
  try {
    // the raw answer: dbSizeInUse is not in Client.status()'s summary
    const view = S.view;
    const seen = view ? view.rev : 0;   // delivered before asking: the store had it then
    const st = await kv.request("/v3/maintenance/status", {});
    // another store behind the same address (an --ephemeral kvgate
    // restarted, a data dir swapped): the view's revisions mean nothing there
    const member = String(st.header?.member_id ?? "");
    const rev = Number(st.header?.revision ?? 0);
    const was = S.status.member;
    S.status.member = member;
    if (view && view === S.view && view.loaded && ((was && member && was !== member) || rev < seen)) {
      note(`The store changed underneath (${was !== member ? "a new member ID" : "its revision went back to " + rev}); listing again.`);
      S.status.compact = null;
      openView(S.prefixText);
    }
    S.status.revision = rev;
    S.status.dbSize = Number(st.dbSize ?? 0);
    S.status.dbInUse = st.dbSizeInUse === undefined ? null : Number(st.dbSizeInUse);
    S.status.version = st.version || "";
    S.dirty.status = true;
    schedule();
    await Promise.all([refreshCompaction(), refreshWatchers()]);
  } catch { /* the connection indicator tells */ }
}

/** Watcher counts by group from kvgate's GET /metrics (Prometheus text;
 *  etcd's maintenance status has no such field and must stay etcd's).  Only
 *  the kvgate_watchers lines are read; a server without them (etcd) leaves
 *  the field at "–". */
async function refreshWatchers() {
  try {
    const res = await globalThis.fetch(kv.endpoint + "/metrics", { cache: "no-store" });
    S.status.watchers = res.ok ? parseWatchers(await res.text()) : null;
  } catch { S.status.watchers = null; }
  S.dirty.status = true;
  schedule();
}

/** {synced, unsynced, victim} from the exposition text, or null. */
function parseWatchers(text) {
  const out = {};
  for (const m of text.matchAll(/^kvgate_watchers\{group="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return "synced" in out ? { synced: out.synced, unsynced: out.unsynced || 0, victim: out.victim || 0 } : null;
}

/** The compaction revision, as status does not tell it: a read just after
 *  the known compaction point fails once a newer compaction happened; then
 *  a watch from revision 1 is refused at once (410) with the compaction
 *  revision.  One small read per status poll. */
async function refreshCompaction() {
  const known = Number(S.status.compact || 0);
  try {
    await kv.range(new Uint8Array([0]), { revision: known + 1, countOnly: true });
    if (S.status.compact === null) S.status.compact = 0;
  } catch (e) {
    if (!(e instanceof CompactedError)) {
      if (S.status.compact === null && e.httpStatus === 400) S.status.compact = known; // a future revision
      return;
    }
    if (e.compactRevision !== undefined) { S.status.compact = e.compactRevision; }
    else {
      // (any key: the answer comes before a watcher exists)
      const w = kv.watch(new Uint8Array([1]), { startRevision: 1, maxRetries: 0 });
      try { await w.synced; } catch (x) { if (x instanceof CompactedError && x.compactRevision != null) S.status.compact = x.compactRevision; }
      w.cancel();
    }
  }
  S.dirty.status = true;
  schedule();
}

function renderStatus() {
  const st = S.status;
  const rev = Math.max(Number(st.revision ?? 0), S.view ? S.view.rev : 0);
  $("st-rev").textContent = rev ? fmtInt(rev) : "–";
  $("st-compact").textContent = st.compact === null ? "–" : Number(st.compact) ? fmtInt(st.compact) : "never";
  $("st-db").textContent = st.dbSize === null ? "–" : fmtBytes(st.dbSize);
  $("st-db").title = st.dbInUse === null ? "" : `${fmtBytes(st.dbInUse)} in use`;
  $("st-version").textContent = st.version || "–";
  const w = st.watchers;
  $("st-watchers").textContent = w ? fmtInt(w.synced + w.unsynced + w.victim) + (w.victim ? ` (${fmtInt(w.victim)} slow)` : "") : "–";
  $("st-watchers").title = w ? `${w.synced} synced, ${w.unsynced} catching up, ${w.victim} parked (slow consumers)` : "";
}

function openCompact() {
  const rev = Math.max(Number(S.status.revision ?? 0), S.view ? S.view.rev : 0);
  const input = $("cmp-rev");
  input.max = String(rev || "");
  input.min = String(Number(S.status.compact || 0) + 1);
  input.value = String(rev || 1);
  const d = $("compact-dialog");
  d.returnValue = "";
  d.showModal();
  input.focus();
  input.select();
}

async function onCompactClose() {
  const d = $("compact-dialog");
  $("compact-open").focus();
  if (d.returnValue !== "compact") return;
  const rev = $("cmp-rev").value.trim();
  try {
    await kv.compact(rev);
    toast(`Compacted up to revision ${rev}`);
  } catch (e) {
    toast("Compaction failed: " + e.message, true);
  }
  pollStatus();
}

// ---------------------------------------------------------------------------
// toasts

let toastTimer = 0;
function toast(text, err) {
  const t = $("toast");
  t.textContent = text;
  t.classList.toggle("err", !!err);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, err ? 6000 : 3000);
}

// ---------------------------------------------------------------------------
// wiring

function init() {
  const q = new URLSearchParams(location.search);
  if (q.get("prefix")) $("prefix").value = q.get("prefix");
  if (q.get("view") === "tree") { S.mode = "tree"; $("view-tree").checked = true; }

  $("prefix-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = $("prefix").value;
    const u = new URL(location.href);
    if (p) u.searchParams.set("prefix", p); else u.searchParams.delete("prefix");
    history.replaceState(null, "", u);
    S.expanded.clear();
    openView(p);
  });
  for (const r of document.querySelectorAll('input[name="view"]')) {
    r.addEventListener("change", () => {
      S.mode = r.value;
      S.active = null;
      S.dirty.list = true;
      schedule();
    });
  }
  for (const box of [$("key-rows"), $("key-tree")]) {
    box.addEventListener("click", (ev) => {
      const row = rowFromEvent(ev);
      if (row && ev.target.closest(".browse")) browseInto(row.dataset.id.slice(1));
      else activate(row, true);
    });
    box.addEventListener("keydown", onKeysKey);
  }
  $("load-more").addEventListener("click", loadMore);
  $("new-key").addEventListener("click", () => openPut(false));
  $("d-edit").addEventListener("click", () => openPut(true));
  $("d-delete").addEventListener("click", openDelete);
  $("d-history").addEventListener("click", showHistory);
  $("put-form").addEventListener("submit", submitPut);
  $("put-cancel").addEventListener("click", () => { closePut(); focusSelected(); });
  $("put-form").addEventListener("keydown", (ev) => { if (ev.key === "Escape") { closePut(); focusSelected(); } });
  $("delete-dialog").addEventListener("close", onDeleteClose);
  $("compact-open").addEventListener("click", openCompact);
  $("compact-dialog").addEventListener("close", onCompactClose);
  $("conn-relist").addEventListener("click", () => openView(S.prefixText));
  $("events-clear").addEventListener("click", () => { $("events").textContent = ""; S.feedQ.length = 0; });
  $("events").addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-key]");
    if (li) selectKey(li.dataset.key);
  });
  for (const r of document.querySelectorAll('input[name="fmt"]')) {
    r.addEventListener("change", () => { S.fmt = r.value; S.dirty.detail = true; schedule(); });
  }

  // "/" jumps to the prefix box (when not typing somewhere else)
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t.closest && t.closest("input, textarea, select, dialog")) return;
    ev.preventDefault();
    $("prefix").focus();
    $("prefix").select();
  });

  openView($("prefix").value);
  pollStatus();
  const poll = () => { pollStatus(); setTimeout(poll, tune.statusMs); };
  setTimeout(poll, tune.statusMs);
  setInterval(() => { if (S.selEntry && S.selEntry.lease !== "0" && !$("detail").hidden) showTtl(S.selEntry.lease); }, 1000);
}

// For tests and the curious: the state and the tunables.
window.kvdash = { S, tune, kv, openView };

init();
