// model.js — the keys of one view (a prefix), kept in step with the store.
//
// A view holds the keys it has loaded, sorted in etcd's byte order (binary
// strings, see format.js), and applies the watch's events to them in
// revision order.  Two ways to fill it, both consistent:
//   - snapshot: the watch starts with initial=true; its snapshot (the
//     prefix's keys at revision R, then `synced`) fills the view and every
//     later event applies.  `complete` is true: every key is here.
//   - paged: a range with `limit` at revision R gives the first page, the
//     watch starts at R + 1; "load more" reads the next page at the
//     revision the view has applied so far (`rev`).  Keys after the last
//     loaded one (`boundary`) are not kept: their events only change the
//     total, until a page brings them in.  Events that arrive while a page
//     is being read are held and replayed after it, so none is lost.
// `total` is the number of keys under the prefix in both modes (a put with
// version 1 creates a key, a delete removes one).

import { asText } from "./format.js";

export class KeyView {
  /** prefix: binary string. */
  constructor(prefix) {
    this.prefix = prefix;
    this.keys = [];          // sorted binary strings
    this.map = new Map();    // key -> entry
    this.complete = false;   // every key under the prefix is loaded
    this.boundary = null;    // paged: last loaded key (null: none yet)
    this.total = 0;
    this.rev = 0;            // revision applied so far
    this.paging = null;      // {fromRev, held: []} while a page is read
    this.loaded = false;     // the first page or the snapshot is in
  }

  static entry(key, kv, value) {
    return {
      key,
      value,
      text: asText(value),
      create: String(kv.create_revision ?? "0"),
      mod: String(kv.mod_revision ?? "0"),
      version: String(kv.version ?? "0"),
      lease: String(kv.lease ?? "0"),
    };
  }

  /** Index of the first key >= k. */
  lowerBound(k) {
    let lo = 0, hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid] < k) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  covers(k) {
    return this.complete || (this.boundary !== null && k <= this.boundary);
  }

  set(e) {
    if (!this.map.has(e.key)) this.keys.splice(this.lowerBound(e.key), 0, e.key);
    this.map.set(e.key, e);
  }

  remove(k) {
    if (!this.map.delete(k)) return false;
    const i = this.lowerBound(k);
    if (this.keys[i] === k) this.keys.splice(i, 1);
    return true;
  }

  /** A page of a paged view: entries at revision `rev`; more: keys follow. */
  addPage(entries, more, count) {
    for (const e of entries) this.set(e);
    if (entries.length) this.boundary = entries[entries.length - 1].key;
    if (!more) this.complete = true;
    if (count !== undefined && this.paging === null && this.rev === 0) this.total = count;
  }

  /** One event (type "PUT" | "DELETE", key, entry for a put, its revision).
   *  Returns what changed in the list: "add", "update", "remove" or null. */
  apply(type, key, e, rev) {
    if (rev > this.rev) this.rev = rev;
    if (this.paging && !this.covers(key)) {
      this.paging.held.push([type, key, e, rev]);
      // total is still kept exact now
    }
    if (type === "DELETE") {
      this.total = Math.max(0, this.total - 1);
      return this.remove(key) ? "remove" : null;
    }
    if (e.version === "1") this.total++;
    if (!this.covers(key)) return null;
    const had = this.map.has(key);
    this.set(e);
    return had ? "update" : "add";
  }

  /** Start reading a page: events from now on, beyond the boundary, are held. */
  beginPage() {
    this.paging = { fromRev: this.rev, held: [] };
    return this.rev;
  }

  /** The page read at `fromRev` is in: add it, then replay the held events
   *  newer than the page for the keys it now covers. */
  endPage(entries, more) {
    const p = this.paging;
    this.paging = null;
    this.addPage(entries, more);
    if (!p) return;
    for (const [type, key, e, rev] of p.held) {
      if (rev <= p.fromRev || !this.covers(key)) continue;
      if (type === "DELETE") this.remove(key);
      else this.set(e);
    }
  }

  abortPage() {
    this.paging = null;
  }
}
