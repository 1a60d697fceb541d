// kvgate.js in a real browser: headless Debian Chromium (/usr/bin/chromium,
// never a downloaded browser) through playwright-core.  The page is served
// by kvgate itself and imports /kvgate.js from it (new Client() with no
// endpoint: the module's own origin); the watch must survive kvgate being
// restarted underneath (SIGTERM and kill -9, same data dir, same port) with
// no gaps and no duplicates, and report compaction as CompactedError.
// Skipped when chromium or playwright-core is missing, unless
// KVTEST_REQUIRE_BINARIES=1.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKvgate } from "./fixture.mjs";

const CHROMIUM = "/usr/bin/chromium";
let chromium = null;
try { ({ chromium } = await import("playwright-core")); } catch { chromium = null; }
const missing = !existsSync(CHROMIUM) ? CHROMIUM : !chromium ? "playwright-core" : null;
const skip = missing && process.env.KVTEST_REQUIRE_BINARIES !== "1" ? `${missing} missing` : false;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("kvgate.js in headless Chromium", { skip, timeout: 180000 }, () => {
  let dir, kvgate, kv, browser, page;
  const consoleLines = [];
  /** every request the page made: {type ("eventsource", "fetch", ...), method, url} */
  const requests = [];
  const watchRequests = (frag) => requests.filter((r) => r.url.includes("/v3/watch") && r.url.includes(frag));
  before(async () => {
    if (missing) throw new Error(`${missing} missing (KVTEST_REQUIRE_BINARIES=1)`);
    dir = mkdtempSync(join(tmpdir(), "kvgate-js-browser-"));
    kvgate = await startKvgate({ dataDir: join(dir, "data") });
    kv = kvgate.client;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"],
      timeout: 60000,
    });
    page = await browser.newPage();
    page.setDefaultTimeout(15000);
    page.on("console", (m) => consoleLines.push(m.text()));
    page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e}`));
    page.on("request", (r) => requests.push({ type: r.resourceType(), method: r.method(), url: r.url() }));
    // any same-origin document will do: the module is imported from kvgate
    await page.goto(`${kvgate.url}/version`);
  });
  after(async () => {
    await browser?.close().catch(() => {});
    await kvgate?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function putRetry(key, value) {
    for (;;) {
      try { return (await kv.put(key, value)).revision; } catch (e) {
        if (e.code !== 14 && e.httpStatus !== 503) throw e;
        await sleep(5);
      }
    }
  }

  test("every call works from the page (same origin, default endpoint)", async () => {
    const r = await page.evaluate(async () => {
      const { Client, CompactedError } = await import("/kvgate.js");
      const c = new Client();
      const p = await c.put(new Uint8Array([0, 0xff, 7]), "bin");
      const g = await c.get(new Uint8Array([0, 0xff, 7]));
      const l = await c.lease.grant(30, { id: 2n ** 60n });
      await c.put("br/leased", "x", { lease: l.id });
      const t = await c.txn({ compare: [{ key: "br/leased", target: "lease", result: "=", lease: l.id }],
        success: [{ range: { key: "br/", prefix: true } }] });
      await c.lease.revoke(l.id);
      let err = null;
      try { await c.range(""); } catch (e) { err = [e.name, e.code, e.httpStatus, e.message]; }
      return { endpoint: c.endpoint, rev: p.revision, value: g.value, key: Array.from(g.keyBytes),
        leaseId: String(l.id), leaseType: typeof l.id, txn: t.succeeded, txnKeys: t.responses[0].range.kvs.map((k) => k.key),
        err, compactedIsClass: typeof CompactedError === "function" };
    });
    assert.equal(r.endpoint, kvgate.url);
    assert.equal(r.value, "bin");
    assert.deepEqual(r.key, [0, 0xff, 7]);
    assert.equal(r.leaseId, String(2n ** 60n));
    assert.equal(r.leaseType, "bigint");
    assert.equal(r.txn, true);
    assert.deepEqual(r.txnKeys, ["br/leased"]);
    assert.deepEqual(r.err, ["KvgateError", 3, 400, "etcdserver: key is not provided"]);
  });

  test("watch resumes over SIGTERM and kill -9 restarts: no gaps, no duplicates", async () => {
    const start = (await kv.put("bw/start", "0")).revision;
    await page.evaluate(async (start) => {
      const { Client } = await import("/kvgate.js");
      const c = new Client();
      window.__evs = [];
      window.__err = null;
      window.__w = c.watch("bw/", { prefix: true, startRevision: start + 1, retryMs: 50, maxRetryMs: 300 });
      (async () => {
        try { for await (const e of window.__w) window.__evs.push([e.key, e.value, String(e.revision)]); } catch (e) { window.__err = `${e.name}: ${e.message}`; }
      })();
      await window.__w.synced;
    }, start);
    const written = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        written.push(await putRetry(`bw/${i % 13}`, `v${i}`));
        if (i % 5 === 0) await sleep(3);
      }
    })();
    const count = () => page.evaluate(() => window.__evs.length);
    for (const how of ["term", "kill", "term"]) {
      await sleep(200);
      const n = await count();
      await kvgate.restart({ kill: how === "kill" });
      await until(async () => (await count()) > n + 5, 20000, `events in the page after a ${how} restart`);
    }
    stop = true;
    await writer;
    const last = written[written.length - 1];
    await until(async () => (await page.evaluate(() => Number(window.__w.revision))) >= last, 20000, "the last write in the page");
    const got = await page.evaluate(() => ({ evs: window.__evs, err: window.__err, conns: window.__w.connections, state: window.__w.state }));
    assert.equal(got.err, null, consoleLines.join("\n"));
    assert.ok(got.conns >= 4, `connections: ${got.conns}`);
    // in a browser the stream is an EventSource, one per connection, each
    // resuming after the last revision seen (a fetch first only reads a
    // possible 410: its body is dropped)
    const es = watchRequests("key=bw%2F").filter((r) => r.type === "eventsource");
    assert.ok(es.length >= 4, JSON.stringify(watchRequests("key=bw%2F")));
    assert.match(es[0].url, new RegExp(`start_revision=${start + 1}`));
    for (const r of es.slice(1)) assert.match(r.url, /last_event_id=\d+/);
    assert.equal(got.state, "live");
    const revs = got.evs.map((e) => Number(e[2]));
    assert.deepEqual(revs, Array.from({ length: last - start }, (_, i) => start + 1 + i));
    const hist = await kv.range("bw/", { prefix: true });
    for (const kvx of hist.kvs.filter((k) => k.key !== "bw/start")) {
      const lastEv = got.evs.filter((e) => e[0] === kvx.key).pop();
      assert.deepEqual(lastEv, [kvx.key, kvx.value, String(kvx.modRevision)]);
    }
    await page.evaluate(() => window.__w.cancel());
  });

  test("a compacted resume point surfaces as CompactedError in the page", async () => {
    const p = await kv.put("bc/a", "1");
    await kv.put("bc/a", "2");
    const c = await kv.compact((await kv.status()).revision);
    const r = await page.evaluate(async (startRev) => {
      const { Client, CompactedError } = await import("/kvgate.js");
      const w = new Client().watch("bc/", { prefix: true, startRevision: startRev });
      try { for await (const _ of w) { /* nothing */ } return null; } catch (e) {
        return { isCompacted: e instanceof CompactedError, name: e.name, code: e.code, status: e.httpStatus,
          compactRevision: String(e.compactRevision), state: w.state };
      }
    }, p.revision);
    assert.deepEqual(r, { isCompacted: true, name: "CompactedError", code: 11, status: 410,
      compactRevision: String(c.revision), state: "gone" });
  });
  test("initial snapshot, callback form, AbortSignal, both transports (EventSource and fetch)", async () => {
    await kv.put("bt/a", "1");
    await kv.put(new Uint8Array([0x62, 0x74, 0x2f, 0xff]), new Uint8Array([0, 1, 2]));
    const before = requests.length;
    const r = await page.evaluate(async () => {
      const { Client } = await import("/kvgate.js");
      const c = new Client();
      const out = {};
      for (const transport of ["auto", "fetch"]) {
        const seen = [];
        const ac = new AbortController();
        let synced = null;
        const w = c.watch("bt/", { prefix: true, initial: true, transport, signal: ac.signal,
          onEvent: (ev) => { seen.push([ev.type, ev.key, Array.from(ev.valueBytes), ev.initial]); },
          onSynced: (rev) => { synced = rev; } });
        await w.synced;
        await c.put("bt/b", transport);
        await c.delete("bt/a");
        const t0 = Date.now();
        while (seen.length < 4 && Date.now() - t0 < 5000) await new Promise((ok) => setTimeout(ok, 10));
        ac.abort();
        await w.done;
        await c.delete("bt/b");   // back as it was for the other transport
        await c.put("bt/a", "1");
        out[transport] = { seen, synced: typeof synced, state: w.state };
      }
      return out;
    });
    for (const t of ["auto", "fetch"]) {
      const got = r[t];
      assert.equal(got.state, "closed");
      assert.equal(got.synced, "number");
      assert.deepEqual(got.seen.slice(0, 2).map((e) => e[3]), [true, true]);
      assert.deepEqual(got.seen.slice(0, 2).map((e) => e[1]), ["bt/a", "bt/\ufffd"]);
      assert.deepEqual(got.seen[1][2], [0, 1, 2]);
      assert.deepEqual(got.seen.slice(2), [["put", "bt/b", Array.from(new TextEncoder().encode(t)), false], ["delete", "bt/a", [], false]]);
    }
    const mine = requests.slice(before).filter((x) => x.url.includes("/v3/watch"));
    assert.deepEqual(mine.map((x) => x.type), ["eventsource", "fetch"], JSON.stringify(mine));
  });

  test("README: the JavaScript client examples run in a page served by kvgate", async () => {
    const { clientExample } = await import("./readme_blocks.mjs");
    const code = clientExample();
    const errs = consoleLines.length;
    await page.evaluate(() => { window.__readmeLog = []; const l = console.log; console.log = (...a) => { window.__readmeLog.push(a.map(String).join(" ")); l(...a); }; });
    await page.addScriptTag({ type: "module", content: code + "\nwindow.__readmeDone = true;\n" });
    await page.waitForFunction(() => window.__readmeDone === true, null, { timeout: 15000 });
    const log = await page.evaluate(() => window.__readmeLog);
    assert.ok(log.some((l) => /^put app\/greeting hello \d+ true$/.test(l)), JSON.stringify(log));
    assert.deepEqual(consoleLines.slice(errs).filter((l) => /error/i.test(l)), []);
    const lock = await kv.get("app/lock");
    assert.equal(lock.value, "me");
  });
});

// A web app on its own origin (a dev server) using a kvgate started in
// fixture mode with --cors-origins: the module, the calls and the
// EventSource all cross origins.
describe("kvgate.js from a page on another origin (--cors-origins)", { skip, timeout: 120000 }, () => {
  let kvgate, browser, page, server, appUrl;
  before(async () => {
    if (missing) throw new Error(`${missing} missing (KVTEST_REQUIRE_BINARIES=1)`);
    const { createServer } = await import("node:http");
    server = createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end("<!doctype html><title>app</title><p>an app on its own origin</p>");
    });
    await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
    appUrl = `http://127.0.0.1:${server.address().port}`;
    kvgate = await startKvgate({ args: ["--cors-origins", appUrl] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"],
      timeout: 60000,
    });
    page = await browser.newPage();
    page.setDefaultTimeout(15000);
    await page.goto(appUrl + "/");
  });
  after(async () => {
    await browser?.close().catch(() => {});
    await kvgate?.stop();
    server?.close();
  });

  test("import from kvgate's URL, calls, an EventSource watch, CompactedError", async () => {
    const types = [];
    page.on("request", (r) => { if (r.url().includes("/v3/watch")) types.push(r.resourceType()); });
    const r = await page.evaluate(async (url) => {
      const { Client } = await import(`${url}/kvgate.js`);
      const c = new Client();   // the module's origin: kvgate's, not the page's
      const out = { endpoint: c.endpoint, origin: location.origin };
      await c.put("x/1", "one");
      const w = c.watch("x/", { prefix: true, initial: true });
      const got = [];
      const loop = (async () => { for await (const e of w) got.push([e.type, e.key, e.value, e.initial]); })();
      await w.synced;
      await c.put("x/2", "two");
      const t0 = Date.now();
      while (got.length < 2 && Date.now() - t0 < 5000) await new Promise((ok) => setTimeout(ok, 20));
      w.cancel();
      await loop;
      out.got = got;
      await c.put("x/1", "1b");
      const p = await c.put("x/1", "1c");
      await c.compact(p.revision);
      try { for await (const _ of c.watch("x/", { prefix: true, startRevision: 2 })) { /* nothing */ } } catch (e) {
        out.err = [e.name, e.httpStatus, String(e.compactRevision)];
      }
      return out;
    }, kvgate.url);
    assert.equal(r.endpoint, kvgate.url);
    assert.notEqual(r.origin, kvgate.url);
    assert.deepEqual(r.got, [["put", "x/1", "one", true], ["put", "x/2", "two", false]]);
    assert.deepEqual(r.err, ["CompactedError", 410, "5"]);
    assert.deepEqual(types, ["eventsource", "fetch"]);
  });
});
