// kvgate.js without a server: int64 conversion (the BigInt path: no test
// can make 2^53 revisions, so the conversion is tested directly and the
// wire path with a fake fetch), base64, prefix ends, the SSE parser, and a
// watch over a scripted SSE stream with revisions beyond 2^53.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Client, CompactedError, KvgateError, SseParser, b64decode, b64encode, int64ToWire, prefixEnd,
  toBytes, toInt64 } from "../../web/kvgate.js";

describe("int64", () => {
  test("toInt64: safe integers as numbers, beyond as BigInt", () => {
    assert.equal(toInt64("0"), 0);
    assert.equal(toInt64(undefined), 0);
    assert.equal(toInt64(""), 0);
    assert.equal(toInt64("42"), 42);
    assert.equal(toInt64("-7"), -7);
    assert.equal(toInt64("9007199254740991"), 9007199254740991);
    assert.equal(toInt64("-9007199254740991"), -9007199254740991);
    assert.equal(toInt64("9007199254740992"), 9007199254740992n);
    assert.equal(toInt64("9007199254740993"), 9007199254740993n);
    assert.equal(toInt64("-9007199254740992"), -9007199254740992n);
    assert.equal(toInt64("9223372036854775807"), 9223372036854775807n);
    assert.equal(toInt64("-9223372036854775808"), -9223372036854775808n);
    assert.equal(toInt64(12), 12);
    assert.equal(toInt64(5n), 5);
  });

  test("int64ToWire: number | bigint | string in, decimal string out", () => {
    assert.equal(int64ToWire(0), "0");
    assert.equal(int64ToWire(-5), "-5");
    assert.equal(int64ToWire(9007199254740991), "9007199254740991");
    assert.equal(int64ToWire(9007199254740993n), "9007199254740993");
    assert.equal(int64ToWire("9223372036854775807"), "9223372036854775807");
    assert.equal(int64ToWire(" 12 "), "12");
    assert.equal(int64ToWire(-(2n ** 63n)), "-9223372036854775808");
    assert.throws(() => int64ToWire(2 ** 53), RangeError);     // not safe: ambiguous
    assert.throws(() => int64ToWire(1.5), RangeError);
    assert.throws(() => int64ToWire(NaN), RangeError);
    assert.throws(() => int64ToWire(2n ** 63n), RangeError);
    assert.throws(() => int64ToWire("9223372036854775808"), RangeError);
    assert.throws(() => int64ToWire("1e3"), TypeError);
    assert.throws(() => int64ToWire(null), TypeError);
    // round trip at the edges
    for (const s of ["9007199254740991", "9007199254740992", "9223372036854775807", "-9223372036854775808", "1"]) {
      assert.equal(int64ToWire(toInt64(s)), s);
    }
  });
});

describe("bytes", () => {
  test("base64 round trips, large inputs, every byte", () => {
    const all = new Uint8Array(256).map((_, i) => i);
    assert.deepEqual(b64decode(b64encode(all)), all);
    assert.equal(b64encode(toBytes("foo")), "Zm9v");
    assert.deepEqual(b64decode(""), new Uint8Array(0));
    assert.deepEqual(b64decode(undefined), new Uint8Array(0));
    const big = new Uint8Array(300000).map((_, i) => (i * 31) & 0xff);
    assert.deepEqual(b64decode(b64encode(big)), big);
    assert.equal(b64encode(toBytes("é")), Buffer.from("é").toString("base64"));
  });

  test("toBytes accepts strings, Uint8Array, ArrayBuffer, DataView; refuses others", () => {
    assert.deepEqual(toBytes("ab"), new Uint8Array([97, 98]));
    const u = new Uint8Array([1, 2, 3]);
    assert.equal(toBytes(u), u);
    assert.deepEqual(toBytes(u.buffer), u);
    assert.deepEqual(toBytes(new DataView(u.buffer, 1, 2)), new Uint8Array([2, 3]));
    assert.throws(() => toBytes(5), TypeError);
    assert.throws(() => toBytes(null), TypeError);
  });

  test("prefixEnd as etcd's clientv3", () => {
    assert.deepEqual(prefixEnd("foo"), toBytes("fop"));
    assert.deepEqual(prefixEnd(new Uint8Array([1, 0xff])), new Uint8Array([2]));
    assert.deepEqual(prefixEnd(new Uint8Array([0xff])), new Uint8Array([0]));
    assert.deepEqual(prefixEnd(""), new Uint8Array([0]));
  });
});

describe("SSE parser", () => {
  test("fields, comments, multi-line data, CR / LF / CRLF split anywhere", () => {
    const text = "retry: 2000\r\n\r\n: heartbeat\n\nevent: created\nid: 4\ndata: {\"a\":1}\n\n" +
      "data: line1\rdata: line2\r\n\r\nid: 9\ndata:  sp\n\n";
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const msgs = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      assert.deepEqual(msgs, [
        { event: "", data: "", id: null, retry: 2000 },
        { event: "created", data: "{\"a\":1}", id: "4" },
        { event: "message", data: "line1\nline2", id: null },
        { event: "message", data: " sp", id: "9" },
      ], `cut at ${cut}`);
    }
  });

  test("a message without its blank line is not dispatched", () => {
    const p = new SseParser();
    assert.deepEqual(p.push("id: 5\ndata: {}\n"), []);
  });
});

// ---- a scripted SSE server behind a fake fetch -----------------------------

const enc = new TextEncoder();
const R = 9007199254740990n; // near 2^53

function kvJson(key, rev, value) {
  return { key: b64encode(toBytes(key)), create_revision: String(rev), mod_revision: String(rev), version: "1",
    value: b64encode(toBytes(value)) };
}
function sseResponse(chunks, { keepOpen = false } = {}) {
  const body = new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      if (!keepOpen) c.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}
const hdr = (rev) => ({ cluster_id: "1", member_id: "2", revision: String(rev), raft_term: "2" });
const data = (obj, id) => (id !== undefined ? `id: ${id}\n` : "") + `data: ${JSON.stringify(obj)}\n\n`;

describe("watch wire path (fake fetch)", () => {
  test("revisions beyond 2^53: BigInt events, resume with the exact last id, no duplicates", async () => {
    const urls = [];
    const fetch = async (url) => {
      urls.push(url);
      if (urls.length === 1) {
        // created at R, events R+1..R+3 (R+3 only half: the stream drops mid-message)
        return sseResponse([
          "retry: 2000\n\n",
          "event: created\nid: " + R + "\n" + `data: ${JSON.stringify({ header: hdr(R), created: true })}\n\n`,
          data({ header: hdr(R + 2n), events: [{ kv: kvJson("k", R + 1n, "a") }, { kv: kvJson("k", R + 2n, "b") }] }, R + 2n),
          "id: " + (R + 3n) + "\ndata: {\"header\":",
        ]);
      }
      if (urls.length === 2) {
        // resumed after R+2: the server repeats R+2 (a duplicate the client must drop) and sends R+3
        return sseResponse([
          "event: created\nid: " + (R + 2n) + "\n" + `data: ${JSON.stringify({ header: hdr(R + 2n), created: true })}\n\n`,
          data({ header: hdr(R + 3n), events: [{ kv: kvJson("k", R + 2n, "b") }, { type: "DELETE", kv: { key: b64encode(toBytes("k")), mod_revision: String(R + 3n) } }] }, R + 3n),
        ], { keepOpen: true });
      }
      throw new TypeError("no more");
    };
    const c = new Client("http://fake.invalid", { fetch });
    const w = c.watch("k", { retryMs: 1 });
    const got = [];
    for await (const ev of w) {
      got.push([ev.type, ev.revision, ev.value]);
      if (got.length === 3) break;
    }
    // R + 1 = 2^53 - 1 is still a safe number; R + 2 = 2^53 is not
    assert.deepEqual(got, [["put", 9007199254740991, "a"], ["put", R + 2n, "b"], ["delete", R + 3n, ""]]);
    assert.equal(typeof got[0][1], "number");
    assert.equal(typeof got[1][1], "bigint");
    assert.equal(w.revision, R + 3n);
    assert.equal(urls.length, 2);
    assert.match(urls[0], /\/v3\/watch\?key=k$/);
    assert.match(urls[1], new RegExp(`last_event_id=${R + 2n}$`));
    assert.doesNotMatch(urls[1], /start_revision|initial/);
  });

  test("initial snapshot is delivered once, after synced, even when the first try drops mid-snapshot", async () => {
    let n = 0;
    const fetch = async (url) => {
      n++;
      const created = "event: created\n" + `data: ${JSON.stringify({ header: hdr(7), created: true })}\n\n`;
      if (n === 1) return sseResponse([created, data({ header: hdr(7), events: [{ kv: kvJson("a", 3, "A") }] })]);
      assert.match(url, /initial=true/);
      assert.doesNotMatch(url, /last_event_id/);
      return sseResponse([created, data({ header: hdr(7), events: [{ kv: kvJson("a", 3, "A") }, { kv: kvJson("b", 5, "B") }] }),
        "event: synced\nid: 7\n" + `data: ${JSON.stringify({ header: hdr(7) })}\n\n`,
        data({ header: hdr(8), events: [{ kv: kvJson("c", 8, "C") }] }, 8)], { keepOpen: true });
    };
    const c = new Client("http://fake.invalid", { fetch });
    const w = c.watch("", { prefix: true, initial: true, retryMs: 1 });
    const got = [];
    for await (const ev of w) {
      got.push([ev.key, ev.initial]);
      if (got.length === 3) break;
    }
    assert.deepEqual(got, [["a", true], ["b", true], ["c", false]]);
    assert.equal(await w.synced, 7);
  });

  test("410 on resume is a CompactedError with compactRevision; 400 is fatal; 429 and 503 are retried", async () => {
    let n = 0;
    const fetch = async () => {
      n++;
      if (n === 1) return new Response(JSON.stringify({ error: "too many", message: "too many", code: 8 }), { status: 429, headers: { "Retry-After": "0" } });
      if (n === 2) return new Response("{}", { status: 503 });
      return new Response(JSON.stringify({ error: "mvcc: required revision has been compacted", message: "mvcc: required revision has been compacted", code: 11, compact_revision: "9007199254740999" }), { status: 410 });
    };
    const c = new Client("http://fake.invalid", { fetch });
    const w = c.watch("k", { startRevision: 3, retryMs: 1 });
    await assert.rejects(async () => { for await (const _ of w) { /* nothing */ } }, (e) => {
      assert.ok(e instanceof CompactedError);
      assert.equal(e.httpStatus, 410);
      assert.equal(e.compactRevision, 9007199254740999n);
      return true;
    });
    assert.equal(n, 3);
    assert.equal(w.state, "gone");

    const c2 = new Client("http://fake.invalid", { fetch: async () => new Response(JSON.stringify({ error: "key is not provided", message: "key is not provided", code: 3 }), { status: 400 }) });
    await assert.rejects(c2.watch("k").done, (e) => e instanceof KvgateError && !(e instanceof CompactedError) && e.code === 3);
  });

  test("a silent connection (no data, no heartbeat) is dropped after idleTimeoutMs and resumed", async () => {
    const urls = [];
    const fetch = async (url, init) => {
      urls.push(url);
      const created = "event: created\nid: 10\n" + `data: ${JSON.stringify({ header: hdr(10), created: true })}\n\n`;
      if (urls.length === 1) {
        // then silence, never closed (only the abort ends it)
        const body = new ReadableStream({ start(c) { c.enqueue(enc.encode(created)); init.signal.addEventListener("abort", () => c.error(new Error("aborted"))); } });
        return new Response(body, { status: 200 });
      }
      return sseResponse([created.replace("id: 10", "id: 10"), data({ header: hdr(11), events: [{ kv: kvJson("k", 11, "x") }] }, 11)], { keepOpen: true });
    };
    const c = new Client("http://fake.invalid", { fetch });
    // a fake stream holds no socket: keep the event loop alive (the idle timer does not)
    const keep = setInterval(() => {}, 1000);
    const w = c.watch("k", { retryMs: 1, idleTimeoutMs: 60 });
    try {
      for await (const ev of w) { assert.equal(ev.revision, 11); break; }
    } finally { clearInterval(keep); }
    assert.equal(urls.length, 2);
    assert.match(urls[1], /last_event_id=10$/);
  });

  test("maxRetries gives up with code 14", async () => {
    const c = new Client("http://fake.invalid", { fetch: async () => { throw new TypeError("fetch failed"); } });
    await assert.rejects(c.watch("k", { retryMs: 1, maxRetries: 3 }).done, (e) => e.code === 14);
  });
});
