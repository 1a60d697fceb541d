// kvgate.js watch() against a real kvgate: live events, initial snapshot,
// history, filters, cancel, the callback form, compaction, and resume after
// the server is restarted underneath (same data dir, same port) with no
// gaps and no duplicates.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKvgate } from "./fixture.mjs";
import { CompactedError } from "../../web/kvgate.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** collects events from a watch in the background */
function collect(w) {
  const evs = [];
  const done = (async () => { for await (const ev of w) evs.push(ev); })();
  done.catch(() => {});
  return { evs, done };
}
async function until(cond, ms = 5000, what = "condition") {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe("watch (ephemeral kvgate)", () => {
  let kvgate, kv;
  before(async () => { kvgate = await startKvgate(); kv = kvgate.client; });
  after(async () => { await kvgate?.stop(); });

  test("live puts and deletes with prevKv; revision tracks delivery", async () => {
    const w = kv.watch("live/", { prefix: true, prevKv: true });
    const c = collect(w);
    const created = await w.synced;
    const p1 = await kv.put("live/a", "1");
    const p2 = await kv.put("live/a", "2");
    await kv.put("other", "x");
    const d = await kv.delete("live/a");
    await until(() => c.evs.length === 3, 5000, "3 events");
    assert.ok(created < p1.revision);
    assert.deepEqual(c.evs.map((e) => [e.type, e.key, e.value, e.revision, e.prevKv?.value ?? null]), [
      ["put", "live/a", "1", p1.revision, null],
      ["put", "live/a", "2", p2.revision, "1"],
      ["delete", "live/a", "", d.revision, "2"],
    ]);
    assert.equal(w.revision, d.revision);
    assert.equal(w.state, "live");
    w.cancel();
    await c.done;
    await w.done;
    assert.equal(w.state, "closed");
  });

  test("initial: current values first (initial: true), synced revision, then changes", async () => {
    await kv.put("ini/a", "A");
    const pb = await kv.put("ini/b", "B");
    await kv.put("inix", "not in the prefix");
    const w = kv.watch("ini/", { prefix: true, initial: true });
    const c = collect(w);
    const syncedAt = await w.synced;
    assert.ok(syncedAt >= pb.revision);
    const pc = await kv.put("ini/c", "C");
    await until(() => c.evs.length === 3);
    assert.deepEqual(c.evs.map((e) => [e.key, e.value, e.initial]), [["ini/a", "A", true], ["ini/b", "B", true], ["ini/c", "C", false]]);
    assert.equal(c.evs[2].revision, pc.revision);
    w.cancel();
    await c.done;
  });

  test("markers: one synced item in order, after the snapshot (GET and POST forms) or at creation", async () => {
    await kv.put("mk/a", "A");
    await kv.put(new Uint8Array([0x6d, 0x6b, 0x00, 1]), "nul");
    for (const key of ["mk/", new Uint8Array([0x6d, 0x6b, 0x00])]) {
      const w = kv.watch(key, { prefix: true, initial: true, markers: true });
      const c = collect(w);
      const at = await w.synced;
      const p = await kv.put(typeof key === "string" ? "mk/b" : new Uint8Array([0x6d, 0x6b, 0x00, 2]), "B");
      await until(() => c.evs.length === 3);
      assert.deepEqual(c.evs.map((e) => [e.type, e.initial]), [["put", true], ["synced", true], ["put", false]]);
      assert.equal(c.evs[1].revision, at);
      assert.equal(c.evs[2].revision, p.revision);
      w.cancel();
    }
    const w = kv.watch("mk/", { prefix: true, markers: true });
    const c = collect(w);
    await until(() => c.evs.length === 1);
    assert.equal(c.evs[0].type, "synced");
    assert.equal(c.evs[0].revision, await w.synced);
    w.cancel();
  });

  test("initial over many keys (several snapshot pages)", async () => {
    const n = 1234;
    for (let i = 0; i < n; i += 100) {
      await kv.txn({ success: Array.from({ length: Math.min(100, n - i) }, (_, j) => ({ put: { key: `many/${String(i + j).padStart(5, "0")}`, value: String(i + j) } })) });
    }
    const w = kv.watch("many/", { prefix: true, initial: true });
    const c = collect(w);
    await w.synced;
    await until(() => c.evs.length === n, 10000, `${n} snapshot events`);
    assert.deepEqual(c.evs.map((e) => e.value), Array.from({ length: n }, (_, i) => String(i)));
    w.cancel();
  });

  test("startRevision replays history; filters; binary keys; rangeEnd", async () => {
    const key = new Uint8Array([0, 0xff, 0x10]);
    const p1 = await kv.put(key, "v1");
    await kv.put(key, new Uint8Array([0xde, 0xad]));
    await kv.delete(key);
    const w = kv.watch(key, { startRevision: p1.revision });
    const c = collect(w);
    await until(() => c.evs.length === 3);
    assert.deepEqual(c.evs.map((e) => e.type), ["put", "put", "delete"]);
    assert.deepEqual(c.evs[0].kv.keyBytes, key);
    assert.deepEqual(c.evs[1].kv.valueBytes, new Uint8Array([0xde, 0xad]));
    w.cancel();

    const np = kv.watch(key, { startRevision: p1.revision, filters: ["noput"] });
    const cn = collect(np);
    await until(() => cn.evs.length === 1);
    assert.equal(cn.evs[0].type, "delete");
    np.cancel();

    await kv.put("re/a", "1"); await kv.put("re/b", "2"); await kv.put("re/c", "3");
    const wr = kv.watch("re/a", { rangeEnd: "re/c", startRevision: p1.revision });
    const cr = collect(wr);
    await until(() => cr.evs.length === 2);
    await sleep(50);
    assert.deepEqual(cr.evs.map((e) => e.key), ["re/a", "re/b"]);
    wr.cancel();

    // a key with 0xff but no NUL goes by GET; the NUL one above by POST
    const k2 = new Uint8Array([0xff, 0xfe, 0x41]);
    const w2 = kv.watch(k2, { prevKv: true });
    const c2 = collect(w2);
    await w2.synced;
    await kv.put(k2, "a"); await kv.put(k2, "b");
    await until(() => c2.evs.length === 2);
    assert.deepEqual(c2.evs.map((e) => [e.kv.keyBytes, e.value, e.prevKv?.value ?? null]), [[k2, "a", null], [k2, "b", "a"]]);
    w2.cancel();
  });

  test("NUL bytes in keys: initial snapshot and changes, resume (POST form)", async () => {
    const pre = new Uint8Array([0x6e, 0x00]);
    await kv.put(new Uint8Array([0x6e, 0x00, 1]), "one");
    await kv.put(new Uint8Array([0x6e, 0x00, 2]), "two");
    await kv.put(new Uint8Array([0x6e, 0x01]), "outside");
    const w = kv.watch(pre, { prefix: true, initial: true, filters: ["nodelete"] });
    const c = collect(w);
    const at = await w.synced;
    const p3 = await kv.put(new Uint8Array([0x6e, 0x00, 3]), "three");
    await kv.delete(new Uint8Array([0x6e, 0x00, 1]));
    await kv.put(new Uint8Array([0x6e, 0x00, 4]), "four");
    await until(() => c.evs.length === 4);
    assert.deepEqual(c.evs.map((e) => [e.value, e.initial]), [["one", true], ["two", true], ["three", false], ["four", false]]);
    assert.ok(at < p3.revision);
    w.cancel();
  });

  test("AbortSignal ends the iteration; an aborted signal ends it at once", async () => {
    const ac = new AbortController();
    const w = kv.watch("sig/", { prefix: true, signal: ac.signal });
    const c = collect(w);
    await w.synced;
    await kv.put("sig/1", "x");
    await until(() => c.evs.length === 1);
    ac.abort();
    await c.done;
    await kv.put("sig/2", "y");
    await sleep(50);
    assert.equal(c.evs.length, 1);
    const pre = AbortSignal.abort();
    const w2 = kv.watch("sig/", { prefix: true, signal: pre });
    const got = [];
    for await (const ev of w2) got.push(ev);
    assert.deepEqual(got, []);
    // break out of for await: the watch is cancelled
    const w3 = kv.watch("sig/", { prefix: true, startRevision: 1 });
    for await (const ev of w3) { assert.ok(ev); break; }
    await w3.done;
    assert.equal(w3.state, "closed");
  });

  test("callback form: onEvent, onSynced, onError", async () => {
    const seen = [];
    let synced = null;
    const w = kv.watch("cb/", { prefix: true, onEvent: (ev) => seen.push(ev.key), onSynced: (r) => { synced = r; } });
    await w.synced;
    await kv.put("cb/1", "x");
    await kv.put("cb/2", "y");
    await until(() => seen.length === 2);
    assert.deepEqual(seen, ["cb/1", "cb/2"]);
    assert.equal(typeof synced, "number");
    w.cancel();
    await w.done;

    let err = null;
    const w2 = kv.watch("cb/", { startRevision: 1, onEvent: () => {}, onError: (e) => { err = e; } });
    await kv.compact((await kv.status()).revision);
    const w3 = kv.watch("cb/", { prefix: true, startRevision: 2, onEvent: () => {}, onError: (e) => { err = e; } });
    await assert.rejects(w3.done, CompactedError);
    await until(() => err !== null);
    assert.ok(err instanceof CompactedError);
    assert.ok(err.compactRevision > 1);
    w2.cancel();
  });

  test("every key (\\0 from key): the GET form with initial, keys starting with NUL included", async () => {
    const seen = [];
    let url = null;
    const c = new (kv.constructor)(kvgate.url, { fetch: (u, i) => { if (String(u).includes("/v3/watch")) url = String(u); return fetch(u, i); } });
    await kv.put(new Uint8Array([0, 1]), "nul-first");
    const w = c.watch(new Uint8Array([0]), { fromKey: true, initial: true, markers: true });
    const it = w[Symbol.asyncIterator]();
    for (;;) {
      const { value } = await it.next();
      if (value.type === "synced") break;
      seen.push(Array.from(value.keyBytes));
    }
    assert.match(url, /\/v3\/watch\?key=&from_key=true&initial=true$/);
    assert.deepEqual(seen[0], [0, 1]);
    const all = await kv.range(new Uint8Array([0]), { fromKey: true, countOnly: true });
    assert.equal(seen.length, all.count);
    await kv.put("zz-after", "1");
    const { value } = await it.next();
    assert.equal(value.key, "zz-after");
    w.cancel();
  });

  test("events carry keyBytes/valueBytes; an onEvent that throws ends the watch with its error", async () => {
    const bad = new Error("handler bug");
    let got = null;
    const calls = [];
    const w = kv.watch("throw/", { prefix: true, onEvent: (ev) => { calls.push([ev.key, Array.from(ev.valueBytes), Array.from(ev.keyBytes)]); throw bad; },
      onError: (e) => { got = e; } });
    await w.synced;
    await kv.put("throw/a", new Uint8Array([0, 255]));
    await assert.rejects(w.done, (e) => e === bad);
    assert.equal(got, bad);
    assert.equal(w.state, "failed");
    await kv.put("throw/b", "ignored");
    await sleep(50);
    assert.deepEqual(calls, [["throw/a", [0, 255], Array.from(new TextEncoder().encode("throw/a"))]]);
  });

  test("compacted start: CompactedError (410) with compactRevision", async () => {
    const p = await kv.put("gone/a", "1");
    await kv.put("gone/a", "2");
    const c = await kv.compact(p.revision + 1);
    const w = kv.watch("gone/a", { startRevision: p.revision });
    await assert.rejects(async () => { for await (const _ of w) { /* nothing */ } }, (e) => {
      assert.ok(e instanceof CompactedError);
      assert.equal(e.httpStatus, 410);
      assert.equal(e.code, 11);
      assert.equal(e.compactRevision, c.revision);
      return true;
    });
    assert.equal(w.compactRevision, c.revision);
    assert.equal(w.state, "gone");
  });
});

describe("watch across server restarts (data dir, same port)", () => {
  let dir, kvgate, kv;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "kvgate-js-"));
    kvgate = await startKvgate({ dataDir: join(dir, "data") });
    kv = kvgate.client;
  });
  after(async () => {
    await kvgate?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** put, retrying while the server is away; returns the revision */
  async function putRetry(key, value) {
    for (;;) {
      try { return (await kv.put(key, value)).revision; } catch (e) {
        if (e.code !== 14 && e.httpStatus !== 503) throw e;
        await sleep(5);
      }
    }
  }

  test("no gaps, no duplicates over SIGTERM and kill -9 restarts while writing", async () => {
    const start = (await kv.put("rs/start", "0")).revision;
    const w = kv.watch("rs/", { prefix: true, startRevision: start + 1, retryMs: 20, maxRetryMs: 200 });
    const c = collect(w);
    await w.synced;
    const written = [];
    let stopWriting = false;
    const writer = (async () => {
      for (let i = 0; !stopWriting; i++) {
        written.push(await putRetry(`rs/${i % 17}`, `v${i}`));
        if (i % 7 === 0) await sleep(2);
      }
    })();
    for (const how of ["term", "kill", "term", "kill"]) {
      await sleep(150);
      const before = c.evs.length;
      await kvgate.restart({ kill: how === "kill" });
      await until(() => c.evs.length > before + 5, 10000, `events after a ${how} restart`);
    }
    await sleep(100);
    stopWriting = true;
    await writer;
    const last = written[written.length - 1];
    await until(() => w.revision >= last, 10000, "the last write");
    assert.ok(w.connections >= 5, `reconnected: ${w.connections} connections`);

    // every revision after start is one of our puts (kill -9 may lose an
    // answer, so a retried put can add a revision we were not told about):
    // the watch must have seen each revision exactly once, in order
    const revs = c.evs.map((e) => Number(e.revision));
    const expect = Array.from({ length: last - start }, (_, i) => start + 1 + i);
    assert.deepEqual(revs, expect);
    for (const r of written) assert.ok(revs.includes(r));
    // and the same events as a fresh replay of the history
    const replay = kv.watch("rs/", { prefix: true, startRevision: start + 1 });
    const cr = collect(replay);
    await until(() => cr.evs.length >= expect.length, 10000, "the replay");
    replay.cancel();
    assert.deepEqual(c.evs.map((e) => [e.key, e.value, e.revision]), cr.evs.slice(0, expect.length).map((e) => [e.key, e.value, e.revision]));
    w.cancel();
    await c.done;
  });

  test("compaction while the watcher is away: CompactedError on resume", async () => {
    const p = await kv.put("cw/a", "1");
    // the watch retries 4 s after the drop: room for a restart, two writes
    // and a compaction even on a loaded machine
    const w = kv.watch("cw/", { prefix: true, retryMs: 4000, maxRetryMs: 4000 });
    const c = collect(w);
    await w.synced;
    await kv.put("cw/a", "2");
    await until(() => c.evs.length === 1);
    const t0 = Date.now();
    await kvgate.restart();
    await kv.put("cw/a", "3");
    const r = (await kv.put("cw/b", "4")).revision;
    await kv.compact(r);
    assert.ok(Date.now() - t0 < 3800, "restart + writes + compaction before the watch retried");
    await assert.rejects(c.done, (e) => e instanceof CompactedError && e.compactRevision === r);
    assert.equal(w.state, "gone");
    assert.ok(p.revision < r);
  });
});
