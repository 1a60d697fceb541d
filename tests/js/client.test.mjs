// web/kvgate.js against a real kvgate in fixture mode (--ephemeral, port 0):
// every call, binary keys, errors, BigInt lease IDs, and the files kvgate
// serves itself (/kvgate.js, /openapi.yaml, /).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvgateBin, startKvgate } from "./fixture.mjs";
import { Client, KvgateError, CompactedError, prefixEnd } from "../../web/kvgate.js";

let kvgate, kv;
before(async () => {
  kvgate = await startKvgate();
  kv = kvgate.client;
});
after(async () => { await kvgate?.stop(); });

const bytes = (...xs) => new Uint8Array(xs);

describe("fixture mode", () => {
  test("prints exactly one stdout line, with the bound port", async () => {
    assert.deepEqual(kvgate.stdoutLines(), [`kvgate listening on http://127.0.0.1:${kvgate.port}`]);
    assert.ok(kvgate.port > 0);
  });

  test("--ephemeral keeps no files: a restart starts empty", async () => {
    const k2 = await startKvgate();
    try {
      await k2.client.put("x", "1");
      assert.equal((await k2.client.get("x")).value, "1");
      await k2.restart();
      assert.equal(await k2.client.get("x"), null);
      assert.equal((await k2.client.status()).revision, 1);
    } finally { await k2.stop(); }
  });
});

describe("kv", () => {
  test("put / get / range with prefix, limit, sort, revision", async () => {
    const p1 = await kv.put("app/a", "1");
    assert.equal(typeof p1.revision, "number");
    await kv.put("app/b", "2");
    await kv.put("app/c", "3");
    const p4 = await kv.put("app/a", "1b", { prevKv: true });
    assert.equal(p4.prevKv.value, "1");
    assert.equal(p4.revision, p1.revision + 3);

    const a = await kv.get("app/a");
    assert.equal(a.key, "app/a");
    assert.equal(a.value, "1b");
    assert.equal(a.version, 2);
    assert.equal(a.createRevision, p1.revision);
    assert.equal(a.modRevision, p4.revision);
    assert.deepEqual(a.valueBytes, new TextEncoder().encode("1b"));

    const old = await kv.get("app/a", { revision: p1.revision });
    assert.equal(old.value, "1");
    assert.equal(await kv.get("app/nope"), null);

    const all = await kv.range("app/", { prefix: true });
    assert.deepEqual(all.kvs.map((x) => x.key), ["app/a", "app/b", "app/c"]);
    assert.equal(all.count, 3);
    assert.equal(all.more, false);
    assert.equal(all.revision, p4.revision);

    const lim = await kv.range("app/", { prefix: true, limit: 2 });
    assert.equal(lim.kvs.length, 2);
    assert.equal(lim.more, true);
    assert.equal(lim.count, 3);

    const desc = await kv.range("app/", { prefix: true, sort: { target: "mod", order: "descend" } });
    assert.deepEqual(desc.kvs.map((x) => x.key), ["app/a", "app/c", "app/b"]);
    const byVal = await kv.range("app/", { prefix: true, sortTarget: "VALUE", sortOrder: "DESCEND" });
    assert.deepEqual(byVal.kvs.map((x) => x.value), ["3", "2", "1b"]);

    const ko = await kv.range("app/", { prefix: true, keysOnly: true });
    assert.deepEqual(ko.kvs.map((x) => x.value), ["", "", ""]);
    const co = await kv.range("app/", { prefix: true, countOnly: true });
    assert.equal(co.kvs.length, 0);
    assert.equal(co.count, 3);

    const re = await kv.range("app/a", { rangeEnd: "app/c" });
    assert.deepEqual(re.kvs.map((x) => x.key), ["app/a", "app/b"]);
    const fk = await kv.range("app/b", { fromKey: true });
    assert.deepEqual(fk.kvs.map((x) => x.key), ["app/b", "app/c"]);
    const mm = await kv.range("app/", { prefix: true, minModRevision: p4.revision });
    assert.deepEqual(mm.kvs.map((x) => x.key), ["app/a"]);
    const ser = await kv.range("app/", { prefix: true, serializable: true, revision: BigInt(p1.revision) });
    assert.deepEqual(ser.kvs.map((x) => x.key), ["app/a"]);
    const strRev = await kv.range("app/", { prefix: true, revision: String(p1.revision) });
    assert.equal(strRev.count, 1);
  });

  test("binary keys and values (Uint8Array, NUL, 0xff, invalid UTF-8)", async () => {
    const key = bytes(0x00, 0xff, 0x80, 0x62, 0x69, 0x6e);
    const val = bytes(0xc3, 0x28, 0x00, 0xfe);
    await kv.put(key, val);
    const got = await kv.get(key);
    assert.deepEqual(got.keyBytes, key);
    assert.deepEqual(got.valueBytes, val);
    // a prefix of 0xff bytes: range end drops the trailing 0xff
    await kv.put(bytes(0xfe, 0xff, 1), "p1");
    await kv.put(bytes(0xfe, 0xff, 0xff), "p2");
    await kv.put(bytes(0xff), "after");
    const r = await kv.range(bytes(0xfe, 0xff), { prefix: true });
    assert.deepEqual(r.kvs.map((x) => x.value), ["p1", "p2"]);
    assert.deepEqual(prefixEnd(bytes(0xfe, 0xff)), bytes(0xff));
    assert.deepEqual(prefixEnd(bytes(0xff, 0xff)), bytes(0));
    // UTF-8 strings round-trip
    await kv.put("ключ/✓", "значение 🎉");
    const u = await kv.get("ключ/✓");
    assert.equal(u.value, "значение 🎉");
    // a 1 MiB binary value
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    await kv.put("big", big);
    assert.deepEqual((await kv.get("big")).valueBytes, big);
    // ArrayBuffer and Buffer are accepted too
    await kv.put(Buffer.from("buf-key"), new Uint8Array([1, 2]).buffer);
    assert.deepEqual((await kv.get("buf-key")).valueBytes, bytes(1, 2));
  });

  test("delete: one key, prefix, prevKv", async () => {
    await kv.put("del/a", "1");
    await kv.put("del/b", "2");
    await kv.put("del/c", "3");
    const d1 = await kv.delete("del/a");
    assert.equal(d1.deleted, 1);
    const d0 = await kv.delete("del/none");
    assert.equal(d0.deleted, 0);
    const d2 = await kv.delete("del/", { prefix: true, prevKv: true });
    assert.equal(d2.deleted, 2);
    assert.deepEqual(d2.prevKvs.map((x) => [x.key, x.value]), [["del/b", "2"], ["del/c", "3"]]);
    assert.equal((await kv.range("del/", { prefix: true })).count, 0);
  });

  test("txn: compare value/version/mod/create, success and failure, nested", async () => {
    const p = await kv.put("txn/k", "v1");
    const ok = await kv.txn({
      compare: [{ key: "txn/k", target: "value", result: "=", value: "v1" },
                { key: "txn/k", target: "version", result: ">", version: 0 },
                { key: "txn/k", target: "MOD", result: "EQUAL", modRevision: p.revision },
                { key: "txn/k", target: "create", result: "<", value: p.revision + 1 }],
      success: [{ put: { key: "txn/k", value: "v2", prevKv: true } }, { range: { key: "txn/k" } },
                { delete: { key: "txn/other" } }],
      failure: [{ get: { key: "txn/k" } }],
    });
    assert.equal(ok.succeeded, true);
    assert.equal(ok.responses.length, 3);
    assert.equal(ok.responses[0].put.prevKv.value, "v1");
    assert.equal(ok.responses[1].range.kvs[0].value, "v2");
    assert.equal(ok.responses[2].delete.deleted, 0);
    assert.equal(ok.revision, p.revision + 1);

    const no = await kv.txn({
      compare: [{ key: "txn/k", value: "v1" }],
      success: [{ put: { key: "txn/k", value: "never" } }],
      failure: [{ range: { key: "txn/k" } }, { txn: { compare: [{ key: "txn/k", target: "version", result: "!=", value: 5 }],
        success: [{ put: { key: "txn/n", value: "nested" } }] } }],
    });
    assert.equal(no.succeeded, false);
    assert.equal(no.responses[0].range.kvs[0].value, "v2");
    assert.equal(no.responses[1].txn.succeeded, true);
    assert.equal((await kv.get("txn/n")).value, "nested");

    const empty = await kv.txn({});
    assert.equal(empty.succeeded, true);
    assert.deepEqual(empty.responses, []);
    // a create-if-absent
    const cas = await kv.txn({ compare: [{ key: "txn/new", target: "create", result: "=", createRevision: 0 }],
      success: [{ put: { key: "txn/new", value: "x" } }] });
    assert.equal(cas.succeeded, true);
  });

  test("compact: older revisions are gone (CompactedError)", async () => {
    const p1 = await kv.put("cmp/a", "1");
    const p2 = await kv.put("cmp/a", "2");
    const c = await kv.compact(p2.revision);
    assert.equal(c.revision, p2.revision);
    await assert.rejects(kv.get("cmp/a", { revision: p1.revision }), (e) => {
      assert.ok(e instanceof CompactedError);
      assert.ok(e instanceof KvgateError);
      assert.equal(e.code, 11);
      assert.equal(e.httpStatus, 400);
      assert.match(e.message, /required revision has been compacted/);
      return true;
    });
    await assert.rejects(kv.compact(p1.revision), CompactedError);
    await assert.rejects(kv.compact(p2.revision + 1000), (e) => e.code === 11 && /future revision/.test(e.message));
    await kv.compact(BigInt(p2.revision), { physical: true }).catch((e) => assert.ok(e instanceof CompactedError));
  });

  test("errors keep etcd's code, message and HTTP status", async () => {
    await assert.rejects(kv.range(""), (e) => {
      assert.ok(e instanceof KvgateError);
      assert.equal(e.name, "KvgateError");
      assert.equal(e.code, 3);
      assert.equal(e.httpStatus, 400);
      assert.equal(e.message, "etcdserver: key is not provided");
      assert.equal(e.body.code, 3);
      return true;
    });
    await assert.rejects(kv.lease.revoke(123456789), (e) => e.code === 5 && e.httpStatus === 404 &&
      e.message === "etcdserver: requested lease not found");
    await assert.rejects(kv.txn({ success: [{ put: { key: "dup", value: "1" } }, { put: { key: "dup", value: "2" } }] }),
      (e) => e.code === 3 && /duplicate key/.test(e.message));
    // bad input is refused before anything is sent
    await assert.rejects(kv.range("a", { prefix: true, fromKey: true }), TypeError);
    await assert.rejects(kv.range("a", { limit: 2 ** 53 }), RangeError);
    await assert.rejects(kv.range("a", { limit: "12x" }), TypeError);
    await assert.rejects(kv.range("a", { sortTarget: "SIZE" }), TypeError);
    // nothing listening: code 14 (unavailable), httpStatus 0
    const dead = new Client("http://127.0.0.1:1");
    await assert.rejects(dead.get("a"), (e) => e instanceof KvgateError && e.code === 14 && e.httpStatus === 0);
  });

  test("status", async () => {
    const s = await kv.status();
    assert.equal(s.version, "3.4.23");
    assert.ok(s.revision > 1);
    assert.equal(typeof s.dbSize === "number" || typeof s.dbSize === "bigint", true);
  });
});

describe("lease", () => {
  test("grant / keepAlive / timeToLive / list / revoke, IDs beyond 2^53 as BigInt", async () => {
    const g = await kv.lease.grant(60);
    assert.equal(g.ttl, 60);
    assert.ok(typeof g.id === "bigint" || typeof g.id === "number");
    await kv.put("lease/a", "1", { lease: g.id });
    await kv.put("lease/b", "2", { lease: g.id });
    assert.equal((await kv.get("lease/a")).lease, g.id);
    const ka = await kv.lease.keepAlive(g.id);
    assert.equal(ka.id, g.id);
    assert.equal(ka.ttl, 60);
    const ttl = await kv.lease.timeToLive(g.id, { keys: true });
    assert.equal(ttl.grantedTtl, 60);
    assert.ok(ttl.ttl > 0 && ttl.ttl <= 60);
    assert.deepEqual(ttl.keys, ["lease/a", "lease/b"]);

    // a chosen ID above Number.MAX_SAFE_INTEGER: BigInt on the way out and in
    const bigId = 2n ** 62n + 12345n;
    const gb = await kv.lease.grant(30, { id: bigId });
    assert.equal(gb.id, bigId);
    assert.equal(typeof gb.id, "bigint");
    await kv.put("lease/big", "x", { lease: gb.id });
    const kb = await kv.get("lease/big");
    assert.equal(kb.lease, bigId);
    assert.equal((await kv.lease.timeToLive(String(bigId))).id, bigId);
    // a small chosen ID stays a number
    const gs = await kv.lease.grant(30, { id: 77 });
    assert.equal(gs.id, 77);

    const ids = await kv.lease.list();
    assert.ok(ids.includes(g.id) && ids.includes(bigId) && ids.includes(77));

    await assert.rejects(kv.lease.grant(30, { id: bigId }), (e) => e.code === 9 && e.httpStatus === 412);

    const rv = await kv.lease.revoke(g.id);
    assert.ok(rv.revision > 0);
    assert.equal(await kv.get("lease/a"), null);
    assert.equal((await kv.lease.timeToLive(g.id)).ttl, -1);
    const gone = await kv.lease.keepAlive(g.id);
    assert.equal(gone.ttl, 0);
    await kv.lease.revoke(bigId);
    await kv.lease.revoke(77);
  });

  test("keepAliveLoop keeps a short lease alive until aborted", async () => {
    const g = await kv.lease.grant(2);
    await kv.put("lease/short", "x", { lease: g.id });
    const ac = new AbortController();
    const loop = kv.lease.keepAliveLoop(g.id, { signal: ac.signal, everyMs: 300 });
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await kv.get("lease/short")).value, "x");
    ac.abort();
    await loop;
    await kv.lease.revoke(g.id);
  });
});

describe("files served by kvgate", () => {
  test("/kvgate.js is this module, text/javascript, ETag, no-cache, 304, HEAD", async () => {
    const r = await fetch(`${kvgate.url}/kvgate.js`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/javascript/);
    assert.equal(r.headers.get("cache-control"), "no-cache");
    const etag = r.headers.get("etag");
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    const body = await r.text();
    // the binary embeds the file as it was at build time
    assert.equal(body.length > 1000, true);
    assert.match(body, /export class Client/);
    const r304 = await fetch(`${kvgate.url}/kvgate.js`, { headers: { "If-None-Match": etag } });
    assert.equal(r304.status, 304);
    assert.equal(await r304.text(), "");
    const h = await fetch(`${kvgate.url}/kvgate.js`, { method: "HEAD" });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get("content-length"), String(Buffer.byteLength(body)));
    const p = await fetch(`${kvgate.url}/kvgate.js`, { method: "POST", body: "{}" });
    assert.equal(p.status, 405);
    assert.equal(p.headers.get("allow"), "GET, HEAD");
    assert.equal((await p.json()).code, 12);
  });

  test("If-None-Match lists, weak tags and * match; other tags do not", async () => {
    const etag = (await fetch(`${kvgate.url}/kvgate.js`, { method: "HEAD" })).headers.get("etag");
    for (const inm of [`"nope", ${etag}`, `W/${etag}`, "*", ` ${etag} ,"x"`]) {
      assert.equal((await fetch(`${kvgate.url}/kvgate.js`, { headers: { "If-None-Match": inm } })).status, 304, inm);
    }
    for (const inm of ['"nope"', etag.slice(0, -2) + '"', ""]) {
      assert.equal((await fetch(`${kvgate.url}/kvgate.js`, { headers: { "If-None-Match": inm } })).status, 200, inm);
    }
  });

  test("--web-dir serves the files on disk as they are now, embedded ones otherwise", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kvgate-webdir-"));
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>one</title>");
    mkdirSync(join(dir, "css"));
    writeFileSync(join(dir, "css", "app.css"), "body{}");
    writeFileSync(join(dir, "notes.txt"), "not served");
    const k = await startKvgate({ args: ["--web-dir", dir] });
    try {
      const r1 = await fetch(`${k.url}/`);
      assert.equal(r1.status, 200);
      assert.match(r1.headers.get("content-type"), /^text\/html/);
      assert.equal(await r1.text(), "<!doctype html><title>one</title>");
      const e1 = r1.headers.get("etag");
      assert.match(e1, /^W\//);
      assert.equal((await fetch(`${k.url}/`, { headers: { "If-None-Match": e1 } })).status, 304);
      writeFileSync(join(dir, "index.html"), "<!doctype html><title>two!</title>");
      const r2 = await fetch(`${k.url}/`);
      assert.equal(await r2.text(), "<!doctype html><title>two!</title>");
      assert.notEqual(r2.headers.get("etag"), e1);
      const css = await fetch(`${k.url}/css/app.css`);
      assert.equal(css.status, 200);
      assert.match(css.headers.get("content-type"), /^text\/css/);
      assert.equal((await fetch(`${k.url}/notes.txt`)).status, 404);
      // not in the dir: the embedded copy
      const js = await fetch(`${k.url}/kvgate.js`);
      assert.equal(js.status, 200);
      assert.match(await js.text(), /export class Client/);
      assert.equal((await fetch(`${k.url}/openapi.yaml`)).status, 200);
    } finally {
      await k.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    // a web dir that does not exist: exit 1 with one line on stderr
    await assert.rejects(startKvgate({ args: ["--web-dir", join(dir, "missing")] }), /--web-dir .*missing/);
  });

  test("/openapi.yaml is the repository's, application/yaml", async () => {
    const r = await fetch(`${kvgate.url}/openapi.yaml`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/yaml");
    const want = readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8");
    const got = await r.text();
    assert.match(got, /^openapi: 3\.1/m);
    // the binary embeds openapi.yaml as it was when it was built
    const built = statSync(kvgateBin()).mtimeMs;
    if (statSync(new URL("../../openapi.yaml", import.meta.url)).mtimeMs <= built) assert.equal(got, want);
  });

  test("/ is web/index.html when there is one, else 404; unknown files 404", async () => {
    const r = await fetch(`${kvgate.url}/`);
    assert.ok(r.status === 200 || r.status === 404);
    if (r.status === 200) assert.match(r.headers.get("content-type"), /^text\/html/);
    else assert.equal(await r.text(), "404 page not found\n");
    const n = await fetch(`${kvgate.url}/nope.js`);
    assert.equal(n.status, 404);
    const t = await fetch(`${kvgate.url}/../openapi.yaml`);
    assert.ok(t.status === 200 || t.status === 301 || t.status === 404);
  });
});
