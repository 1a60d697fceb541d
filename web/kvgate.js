// kvgate.js — a dependency-free JavaScript client for kvgate (and for etcd
// 3.4's JSON gateway, except watch(), which uses kvgate's SSE endpoint).
//
// An ES module for browsers and Node 20+ (global fetch, TextEncoder,
// TextDecoder, AbortController).  kvgate serves it at /kvgate.js:
//
//   import { Client } from "/kvgate.js";
//   const kv = new Client();                 // in a page served by kvgate
//   const kv = new Client("http://127.0.0.1:2379");   // anywhere else
//   await kv.put("greeting", "hello");
//   const kv1 = await kv.get("greeting");    // {key, value, modRevision, ...}
//   for await (const ev of kv.watch("greet", { prefix: true })) {
//     console.log(ev.type, ev.key, ev.value, ev.revision);
//   }
//
// Conventions
//   - Keys and values: JS strings (UTF-8) or Uint8Array (also ArrayBuffer,
//     and so Node Buffers).  Answers carry both: `key`/`value` as strings
//     (UTF-8, lossy for binary data) and `keyBytes`/`valueBytes`.
//   - int64 fields (revisions, versions, lease IDs, counts) come back as
//     numbers while they are safe integers, as BigInt beyond; on input
//     number | bigint | decimal string is accepted.
//   - Errors: KvgateError (.code = etcd's gRPC code, .httpStatus,
//     .message = etcd's message); CompactedError (a KvgateError, code 11)
//     when a revision you asked for has been compacted (.compactRevision
//     when known): re-list, then watch from the new revision.
//
// watch() uses `GET /v3/watch` (Server-Sent Events) through fetch, in Node
// and in browsers alike: each SSE id is a revision up to which every event
// has been sent, so after a dropped connection the watch reconnects with
// `last_event_id` = the last id it processed and gets each event exactly
// once (events at or below that revision are also dropped defensively).
// With `initial: true` the current values are collected until `synced` and
// delivered together (a drop mid-snapshot restarts the snapshot, nothing is
// delivered twice).

/** @typedef {string | Uint8Array | ArrayBuffer} Bytesish */
/** @typedef {number | bigint | string} Int64ish */
/** @typedef {number | bigint} Int64 a safe integer as number, else BigInt */

/**
 * @typedef {object} Header
 * @property {Int64} clusterId
 * @property {Int64} memberId
 * @property {Int64} revision
 * @property {Int64} raftTerm
 */

/**
 * @typedef {object} KeyValue
 * @property {string} key         UTF-8 decoded key
 * @property {Uint8Array} keyBytes
 * @property {string} value       UTF-8 decoded value ("" if keysOnly)
 * @property {Uint8Array} valueBytes
 * @property {Int64} createRevision
 * @property {Int64} modRevision
 * @property {Int64} version
 * @property {Int64} lease        0 when none
 */

/**
 * @typedef {object} WatchEvent
 * @property {"put" | "delete" | "synced"} type  "synced" only with the markers option
 * @property {string} key
 * @property {string} value       "" for a delete
 * @property {Uint8Array} keyBytes    the key's bytes (kv.keyBytes)
 * @property {Uint8Array} valueBytes  the value's bytes (kv.valueBytes; empty for a delete)
 * @property {Int64} revision     the event's revision (kv.modRevision)
 * @property {KeyValue} kv
 * @property {KeyValue | null} prevKv   with the prevKv option
 * @property {boolean} initial    part of the initial snapshot (initial: true)
 */

/**
 * @typedef {object} RangeOptions
 * @property {boolean} [prefix]     every key starting with `key`
 * @property {Bytesish} [rangeEnd]  [key, rangeEnd); "\0" = every key >= key
 * @property {boolean} [fromKey]    every key >= key
 * @property {Int64ish} [limit]
 * @property {Int64ish} [revision]  read at this revision (0: current)
 * @property {"KEY"|"VERSION"|"CREATE"|"MOD"|"VALUE"} [sortTarget]
 * @property {"NONE"|"ASCEND"|"DESCEND"} [sortOrder]
 * @property {{target?: string, order?: string}} [sort] same, as one object
 * @property {boolean} [serializable]
 * @property {boolean} [keysOnly]
 * @property {boolean} [countOnly]
 * @property {Int64ish} [minModRevision]
 * @property {Int64ish} [maxModRevision]
 * @property {Int64ish} [minCreateRevision]
 * @property {Int64ish} [maxCreateRevision]
 */

/**
 * @typedef {object} RangeResult
 * @property {KeyValue[]} kvs
 * @property {Int64} count
 * @property {boolean} more
 * @property {Int64} revision   the store's revision when read (header.revision)
 * @property {Header} header
 */

/**
 * @typedef {object} PutOptions
 * @property {Int64ish} [lease]
 * @property {boolean} [prevKv]
 * @property {boolean} [ignoreValue]
 * @property {boolean} [ignoreLease]
 */

/**
 * @typedef {object} DeleteOptions
 * @property {boolean} [prefix]
 * @property {Bytesish} [rangeEnd]
 * @property {boolean} [fromKey]
 * @property {boolean} [prevKv]
 */

/**
 * A txn comparison.  target: "value" | "version" | "create" | "mod" | "lease"
 * (any case; etcd's VALUE/VERSION/CREATE/MOD/LEASE); result: "=" "!=" "<" ">"
 * or EQUAL / NOT_EQUAL / LESS / GREATER (default "=").  The operand is
 * `value` for "value", else `version` / `createRevision` / `modRevision` /
 * `lease`, or simply `value` for any target.
 * @typedef {object} Compare
 * @property {Bytesish} key
 * @property {string} [target]
 * @property {string} [result]
 * @property {Bytesish | Int64ish} [value]
 * @property {Int64ish} [version]
 * @property {Int64ish} [createRevision]
 * @property {Int64ish} [modRevision]
 * @property {Int64ish} [lease]
 * @property {boolean} [prefix]
 * @property {Bytesish} [rangeEnd]
 */

/**
 * A txn operation: exactly one of
 *   {put: {key, value, ...PutOptions}}
 *   {range: {key, ...RangeOptions}}   (alias: get)
 *   {delete: {key, ...DeleteOptions}}
 *   {txn: {compare, success, failure}}
 * @typedef {object} TxnOp
 * @property {{key: Bytesish, value: Bytesish} & PutOptions} [put]
 * @property {{key: Bytesish} & RangeOptions} [range]
 * @property {{key: Bytesish} & RangeOptions} [get]
 * @property {{key: Bytesish} & DeleteOptions} [delete]
 * @property {TxnRequest} [txn]
 */

/**
 * @typedef {object} TxnRequest
 * @property {Compare[]} [compare]
 * @property {TxnOp[]} [success]
 * @property {TxnOp[]} [failure]
 */

/**
 * One answer per executed operation, the same shape as the methods':
 * {put: PutResult} | {range: RangeResult} | {delete: DeleteResult} | {txn: TxnResult}
 * @typedef {object} TxnOpResult
 * @property {PutResult} [put]
 * @property {RangeResult} [range]
 * @property {DeleteResult} [delete]
 * @property {TxnResult} [txn]
 */

/**
 * @typedef {object} TxnResult
 * @property {boolean} succeeded
 * @property {TxnOpResult[]} responses
 * @property {Int64} revision
 * @property {Header} header
 */

/**
 * @typedef {object} PutResult
 * @property {Int64} revision
 * @property {KeyValue | null} prevKv
 * @property {Header} header
 */

/**
 * @typedef {object} DeleteResult
 * @property {Int64} deleted
 * @property {KeyValue[]} prevKvs
 * @property {Int64} revision
 * @property {Header} header
 */

/**
 * @typedef {object} LeaseGrant
 * @property {Int64} id
 * @property {Int64} ttl
 * @property {Int64} revision
 * @property {Header} header
 */

/**
 * @typedef {object} LeaseTimeToLive
 * @property {Int64} id
 * @property {Int64} ttl          remaining seconds; -1 if the lease does not exist (etcd's answer)
 * @property {Int64} grantedTtl
 * @property {KeyValue["keyBytes"][]} keysBytes
 * @property {string[]} keys
 * @property {Header} header
 */

/**
 * @typedef {object} WatchOptions
 * @property {boolean} [prefix]
 * @property {Bytesish} [rangeEnd]
 * @property {boolean} [fromKey]
 * @property {Int64ish} [startRevision]  first revision wanted (history replay)
 * @property {boolean} [prevKv]
 * @property {boolean} [initial]   current values first (as "put" events with initial: true), then changes
 * @property {("noput"|"nodelete")[]} [filters]
 * @property {boolean} [progressNotify]
 * @property {boolean} [markers]   also yield one {type: "synced", revision, kv: null} item once the
 *   watch is created (with initial: right after the last snapshot event), in order with the events
 * @property {AbortSignal} [signal]      cancels the watch
 * @property {(ev: WatchEvent) => void | Promise<void>} [onEvent]  callback form (then do not iterate);
 *   awaited before the next event; if it throws, the watch ends with that error (onError, done)
 * @property {(err: Error) => void} [onError]   callback form: the error that ended the watch
 * @property {(revision: Int64) => void} [onSynced]  created (or initial snapshot delivered) at revision
 * @property {(state: WatchState, watch: Watch) => void} [onState]  called when watch.state changes
 * @property {number} [retryMs]      first reconnect delay (default 100), doubled up to maxRetryMs
 * @property {number} [maxRetryMs]   default 2000
 * @property {number} [maxRetries]   consecutive failed reconnects before giving up (default Infinity)
 * @property {number} [idleTimeoutMs] reconnect when nothing (not even a heartbeat) came for this long
 *   (default 45000: three of kvgate's default --sse-heartbeat; 0: never).  fetch transport only: an
 *   EventSource does not show the heartbeat comments
 * @property {"auto" | "eventsource" | "fetch"} [transport]  "auto" (default): the browser's EventSource
 *   where there is one (and no custom fetch or headers, and the key has no NUL byte), else fetch
 *   with a streaming reader (Node)
 */

/**
 * A watch's connection state (watch.state, and the onState option):
 * "connecting" (first connection), "live" (the server created the watch on
 * this connection), "reconnecting" (the connection dropped or failed; retrying
 * with last_event_id), "gone" (ended with CompactedError: re-list and watch
 * again), "failed" (ended with another error), "closed" (cancelled).
 * @typedef {"connecting" | "live" | "reconnecting" | "gone" | "failed" | "closed"} WatchState
 */

// ---------------------------------------------------------------------------
// errors

/** An error answered by kvgate (or etcd): etcd's gRPC code and message. */
export class KvgateError extends Error {
  /**
   * @param {string} message
   * @param {{code?: number, httpStatus?: number, body?: any, cause?: any}} [opts]
   */
  constructor(message, opts = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = "KvgateError";
    /** etcd's gRPC status code (3 invalid argument, 5 not found, 11 out of range, 14 unavailable...) */
    this.code = opts.code ?? 2;
    /** HTTP status of the answer; 0 when no answer came (network error) */
    this.httpStatus = opts.httpStatus ?? 0;
    /** the parsed error body, if any */
    this.body = opts.body;
  }
}

/** The revision asked for has been compacted: re-list, then watch again. */
export class CompactedError extends KvgateError {
  /**
   * @param {string} message
   * @param {{code?: number, httpStatus?: number, body?: any, compactRevision?: Int64 | undefined}} [opts]
   */
  constructor(message, opts = {}) {
    super(message, { code: 11, ...opts });
    this.name = "CompactedError";
    /** @type {Int64 | undefined} the store's compaction revision, when known */
    this.compactRevision = opts.compactRevision;
  }
}

// ---------------------------------------------------------------------------
// conversions (exported for tests and for callers who need them)

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/**
 * An int64 from the wire ("123", 123, undefined) -> number if safe, else BigInt.
 * @param {string | number | bigint | undefined | null} v
 * @returns {Int64}
 */
export function toInt64(v) {
  if (v === undefined || v === null || v === "") return 0;
  if (typeof v === "number") return v;
  const b = typeof v === "bigint" ? v : BigInt(v);
  return b >= MIN_SAFE && b <= MAX_SAFE ? Number(b) : b;
}

/**
 * A caller's int64 (number | bigint | string) -> the decimal string sent on the wire.
 * @param {Int64ish} v
 * @param {string} [what]  for the error message
 * @returns {string}
 */
export function int64ToWire(v, what = "value") {
  let b;
  if (typeof v === "bigint") b = v;
  else if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new RangeError(`${what}: ${v} is not a safe integer (pass a BigInt or a string)`);
    b = BigInt(v);
  } else if (typeof v === "string" && /^-?[0-9]+$/.test(v.trim())) b = BigInt(v.trim());
  else throw new TypeError(`${what}: want a number, bigint or decimal string, got ${typeof v}`);
  if (b < INT64_MIN || b > INT64_MAX) throw new RangeError(`${what}: ${b} is outside int64`);
  return b.toString();
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * @param {Bytesish} v
 * @param {string} [what]
 * @returns {Uint8Array}
 */
export function toBytes(v, what = "key") {
  if (typeof v === "string") return enc.encode(v);
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`${what}: want a string or Uint8Array, got ${v === null ? "null" : typeof v}`);
}

/** @param {Uint8Array} b @returns {string} standard base64 */
export function b64encode(b) {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, /** @type {any} */ (b.subarray(i, i + 0x8000)));
  return btoa(s);
}

/** @param {string | undefined} s @returns {Uint8Array} */
export function b64decode(s) {
  if (!s) return new Uint8Array(0);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The range end that makes [key, end) every key starting with `key`
 * (etcd's clientv3 GetPrefixRangeEnd); "\0" when key is empty or all 0xff.
 * @param {Bytesish} key
 * @returns {Uint8Array}
 */
export function prefixEnd(key) {
  const k = toBytes(key);
  for (let i = k.length - 1; i >= 0; i--) {
    if (k[i] < 0xff) {
      const end = k.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return new Uint8Array([0]);
}

/** @param {any} h @returns {Header} */
function decodeHeader(h) {
  h = h || {};
  return {
    clusterId: toInt64(h.cluster_id),
    memberId: toInt64(h.member_id),
    revision: toInt64(h.revision),
    raftTerm: toInt64(h.raft_term),
  };
}

/**
 * A wire KeyValue (base64, int64 strings) -> KeyValue.
 * @param {any} kv
 * @returns {KeyValue}
 */
export function decodeKv(kv) {
  const keyBytes = b64decode(kv.key);
  const valueBytes = b64decode(kv.value);
  return {
    key: dec.decode(keyBytes),
    keyBytes,
    value: dec.decode(valueBytes),
    valueBytes,
    createRevision: toInt64(kv.create_revision),
    modRevision: toInt64(kv.mod_revision),
    version: toInt64(kv.version),
    lease: toInt64(kv.lease),
  };
}

const SORT_TARGETS = ["KEY", "VERSION", "CREATE", "MOD", "VALUE"];
const SORT_ORDERS = ["NONE", "ASCEND", "DESCEND"];

function upEnum(v, allowed, what) {
  const s = String(v).toUpperCase();
  if (!allowed.includes(s)) throw new TypeError(`${what}: want one of ${allowed.join(", ")}, got ${v}`);
  return s;
}

/** sets range_end from prefix / fromKey / rangeEnd */
function putRangeEnd(body, key, o) {
  const n = (o.prefix ? 1 : 0) + (o.fromKey ? 1 : 0) + (o.rangeEnd !== undefined && o.rangeEnd !== null ? 1 : 0);
  if (n > 1) throw new TypeError("prefix, fromKey and rangeEnd are exclusive");
  if (o.prefix) body.range_end = b64encode(prefixEnd(key));
  else if (o.fromKey) body.range_end = "AA==";
  else if (o.rangeEnd !== undefined && o.rangeEnd !== null) body.range_end = b64encode(toBytes(o.rangeEnd, "rangeEnd"));
}

/** @param {Bytesish} key @param {RangeOptions} o */
function rangeBody(key, o = {}) {
  const k = toBytes(key);
  const body = { key: b64encode(k) };
  putRangeEnd(body, k, o);
  if (o.limit !== undefined) body.limit = int64ToWire(o.limit, "limit");
  if (o.revision !== undefined) body.revision = int64ToWire(o.revision, "revision");
  const st = o.sortTarget ?? o.sort?.target;
  const so = o.sortOrder ?? o.sort?.order;
  if (st !== undefined) body.sort_target = upEnum(st, SORT_TARGETS, "sortTarget");
  if (so !== undefined) body.sort_order = upEnum(so, SORT_ORDERS, "sortOrder");
  else if (st !== undefined) body.sort_order = "ASCEND";
  if (o.serializable) body.serializable = true;
  if (o.keysOnly) body.keys_only = true;
  if (o.countOnly) body.count_only = true;
  for (const [js, wire] of [["minModRevision", "min_mod_revision"], ["maxModRevision", "max_mod_revision"],
    ["minCreateRevision", "min_create_revision"], ["maxCreateRevision", "max_create_revision"]]) {
    if (o[js] !== undefined) body[wire] = int64ToWire(o[js], js);
  }
  return body;
}

/** @returns {RangeResult} */
function decodeRange(r) {
  const header = decodeHeader(r.header);
  return {
    kvs: (r.kvs || []).map(decodeKv),
    count: toInt64(r.count),
    more: !!r.more,
    revision: header.revision,
    header,
  };
}

function putBody(key, value, o = {}) {
  const body = { key: b64encode(toBytes(key)) };
  if (value !== undefined && value !== null) body.value = b64encode(toBytes(value, "value"));
  if (o.lease !== undefined && o.lease !== null) body.lease = int64ToWire(o.lease, "lease");
  if (o.prevKv) body.prev_kv = true;
  if (o.ignoreValue) body.ignore_value = true;
  if (o.ignoreLease) body.ignore_lease = true;
  return body;
}

/** @returns {PutResult} */
function decodePut(r) {
  const header = decodeHeader(r.header);
  return { revision: header.revision, prevKv: r.prev_kv ? decodeKv(r.prev_kv) : null, header };
}

function deleteBody(key, o = {}) {
  const k = toBytes(key);
  const body = { key: b64encode(k) };
  putRangeEnd(body, k, o);
  if (o.prevKv) body.prev_kv = true;
  return body;
}

/** @returns {DeleteResult} */
function decodeDelete(r) {
  const header = decodeHeader(r.header);
  return { deleted: toInt64(r.deleted), prevKvs: (r.prev_kvs || []).map(decodeKv), revision: header.revision, header };
}

const CMP_RESULTS = { "=": "EQUAL", "==": "EQUAL", "===": "EQUAL", "!=": "NOT_EQUAL", "!==": "NOT_EQUAL", "<": "LESS", ">": "GREATER",
  EQUAL: "EQUAL", NOT_EQUAL: "NOT_EQUAL", LESS: "LESS", GREATER: "GREATER" };
const CMP_TARGETS = { VALUE: "value", VERSION: "version", CREATE: "create_revision", MOD: "mod_revision", LEASE: "lease" };
const CMP_JS = { VALUE: "value", VERSION: "version", CREATE: "createRevision", MOD: "modRevision", LEASE: "lease" };

/** @param {Compare} c */
function compareBody(c) {
  if (!c || c.key === undefined) throw new TypeError("compare: key is required");
  const k = toBytes(c.key);
  const target = String(c.target ?? "VALUE").toUpperCase().replace(/_REVISION$/, "");
  const t = target === "CREATEREVISION" ? "CREATE" : target === "MODREVISION" ? "MOD" : target;
  if (!(t in CMP_TARGETS)) throw new TypeError(`compare: unknown target ${c.target}`);
  const res = CMP_RESULTS[String(c.result ?? "=").toUpperCase()];
  if (!res) throw new TypeError(`compare: unknown result ${c.result}`);
  const body = { key: b64encode(k), target: t, result: res };
  putRangeEnd(body, k, c);
  let operand = c[CMP_JS[t]];
  if (operand === undefined) operand = c.value;
  if (t === "VALUE") body.value = b64encode(toBytes(operand ?? "", "compare value"));
  else body[CMP_TARGETS[t]] = int64ToWire(operand ?? 0, `compare ${t.toLowerCase()}`);
  return body;
}

/** @param {TxnOp} op */
function opBody(op) {
  if (!op || typeof op !== "object") throw new TypeError("txn: an operation must be an object");
  if (op.put) return { request_put: putBody(op.put.key, op.put.value, op.put) };
  if (op.range || op.get) { const r = op.range || op.get; return { request_range: rangeBody(r.key, r) }; }
  if (op.delete) return { request_delete_range: deleteBody(op.delete.key, op.delete) };
  if (op.txn) return { request_txn: txnBody(op.txn) };
  throw new TypeError("txn: an operation is {put}, {range}, {get}, {delete} or {txn}");
}

/** @param {TxnRequest} t */
function txnBody(t = {}) {
  const body = {};
  if (t.compare && t.compare.length) body.compare = t.compare.map(compareBody);
  if (t.success && t.success.length) body.success = t.success.map(opBody);
  if (t.failure && t.failure.length) body.failure = t.failure.map(opBody);
  return body;
}

/** @returns {TxnResult} */
function decodeTxn(r) {
  const header = decodeHeader(r.header);
  const responses = (r.responses || []).map((x) => {
    if (x.response_put) return { put: decodePut(x.response_put) };
    if (x.response_range) return { range: decodeRange(x.response_range) };
    if (x.response_delete_range) return { delete: decodeDelete(x.response_delete_range) };
    if (x.response_txn) return { txn: decodeTxn(x.response_txn) };
    return {};
  });
  return { succeeded: !!r.succeeded, responses, revision: header.revision, header };
}

const COMPACTED_RE = /required revision has been compacted/;

/** an error body + status -> KvgateError / CompactedError */
function errorFrom(status, body, text) {
  const msg = (body && (body.message || body.error)) || text || `HTTP ${status}`;
  const code = body && typeof body.code === "number" ? body.code : status === 404 ? 5 : 2;
  if (status === 410 || COMPACTED_RE.test(msg)) {
    return new CompactedError(msg, { httpStatus: status, body,
      compactRevision: body && body.compact_revision !== undefined ? toInt64(body.compact_revision) : undefined });
  }
  return new KvgateError(msg, { code, httpStatus: status, body });
}

function defaultEndpoint() {
  // In a page served by kvgate (import from "/kvgate.js"): that origin.
  try {
    const u = new URL(import.meta.url);
    if (u.protocol === "http:" || u.protocol === "https:") return u.origin;
  } catch { /* fall through */ }
  if (typeof location !== "undefined" && location.origin && location.origin !== "null") return location.origin;
  return "http://127.0.0.1:2379";
}

// ---------------------------------------------------------------------------
// the client

export class Client {
  /**
   * @param {string} [endpoint]  kvgate's base URL, e.g. "http://127.0.0.1:2379"
   *   (default: the origin this module was loaded from, when over http(s))
   * @param {{headers?: Record<string,string>, fetch?: typeof fetch, timeoutMs?: number}} [options]
   *   headers: added to every request; fetch: a fetch implementation (tests);
   *   timeoutMs: per-request timeout for unary calls (default 30000, 0: none)
   */
  constructor(endpoint, options = {}) {
    /** @type {string} */
    this.endpoint = String(endpoint || defaultEndpoint()).replace(/\/+$/, "");
    this.headers = options.headers || {};
    this._fetch = options.fetch || ((...a) => globalThis.fetch(...a));
    this._customFetch = !!options.fetch;
    this.timeoutMs = options.timeoutMs ?? 30000;
    /** lease calls: grant, keepAlive, revoke, timeToLive, list */
    this.lease = new Leases(this);
  }

  /**
   * POST a JSON body to `path`; the parsed answer, or a KvgateError.
   * @param {string} path  e.g. "/v3/kv/range"
   * @param {any} body
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<any>}
   */
  async request(path, body, opts = {}) {
    const ctl = new AbortController();
    const unlink = link(opts.signal, ctl);
    const timer = this.timeoutMs > 0 ? setTimeout(() => ctl.abort(new KvgateError(`kvgate: ${path} timed out after ${this.timeoutMs} ms`, { code: 4 })), this.timeoutMs) : null;
    let res, text;
    try {
      res = await this._fetch(this.endpoint + path, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...this.headers },
        body: JSON.stringify(body ?? {}),
        signal: ctl.signal,
      });
      text = await res.text();
    } catch (e) {
      if (ctl.signal.aborted && ctl.signal.reason instanceof KvgateError) throw ctl.signal.reason;
      if (opts.signal?.aborted) throw opts.signal.reason ?? e;
      throw new KvgateError(`kvgate: ${path}: ${e && e.message ? e.message : e}`, { code: 14, httpStatus: 0, cause: e });
    } finally {
      if (timer) clearTimeout(timer);
      unlink();
    }
    let parsed;
    try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = undefined; }
    if (!res.ok) throw errorFrom(res.status, parsed, text.trim());
    if (parsed === undefined) throw new KvgateError(`kvgate: ${path}: answer is not JSON`, { code: 13, httpStatus: res.status });
    // keep-alive style answers: {"result": {...}} lines
    return parsed;
  }

  /**
   * One key, or null.
   * @param {Bytesish} key
   * @param {{revision?: Int64ish, serializable?: boolean, keysOnly?: boolean}} [opts]
   * @returns {Promise<KeyValue | null>}
   */
  async get(key, opts = {}) {
    const r = await this.range(key, { revision: opts.revision, serializable: opts.serializable, keysOnly: opts.keysOnly });
    return r.kvs.length ? r.kvs[0] : null;
  }

  /**
   * A key or a range of keys.
   * @param {Bytesish} key
   * @param {RangeOptions} [opts]
   * @returns {Promise<RangeResult>}
   */
  async range(key, opts = {}) {
    return decodeRange(await this.request("/v3/kv/range", rangeBody(key, opts)));
  }

  /**
   * @param {Bytesish} key
   * @param {Bytesish} value
   * @param {PutOptions} [opts]
   * @returns {Promise<PutResult>}
   */
  async put(key, value, opts = {}) {
    return decodePut(await this.request("/v3/kv/put", putBody(key, value, opts)));
  }

  /**
   * Deletes a key or a range.
   * @param {Bytesish} key
   * @param {DeleteOptions} [opts]
   * @returns {Promise<DeleteResult>}
   */
  async delete(key, opts = {}) {
    return decodeDelete(await this.request("/v3/kv/deleterange", deleteBody(key, opts)));
  }

  /**
   * A transaction: if every compare holds, success, else failure.
   * @example
   *   await kv.txn({
   *     compare: [{ key: "foo", target: "value", result: "=", value: "bar" }],
   *     success: [{ put: { key: "foo", value: "baz" } }],
   *     failure: [{ range: { key: "foo" } }],
   *   });
   * @param {TxnRequest} t
   * @returns {Promise<TxnResult>}
   */
  async txn(t) {
    return decodeTxn(await this.request("/v3/kv/txn", txnBody(t)));
  }

  /**
   * Compacts the history up to `revision`.
   * @param {Int64ish} revision
   * @param {{physical?: boolean}} [opts]
   * @returns {Promise<{revision: Int64, header: Header}>}
   */
  async compact(revision, opts = {}) {
    const body = { revision: int64ToWire(revision, "revision") };
    if (opts.physical) body.physical = true;
    const header = decodeHeader((await this.request("/v3/kv/compaction", body)).header);
    return { revision: header.revision, header };
  }

  /**
   * The member's status (etcd's StatusResponse, decoded: version, dbSize,
   * leader, raftIndex, raftTerm, revision).
   * @returns {Promise<{version: string, dbSize: Int64, leader: Int64, raftIndex: Int64, raftTerm: Int64, revision: Int64, header: Header}>}
   */
  async status() {
    const r = await this.request("/v3/maintenance/status", {});
    const header = decodeHeader(r.header);
    return { version: r.version || "", dbSize: toInt64(r.dbSize), leader: toInt64(r.leader),
      raftIndex: toInt64(r.raftIndex), raftTerm: toInt64(r.raftTerm), revision: header.revision, header };
  }

  /**
   * Watches a key or range.  Iterate it (for await ... of) or pass onEvent.
   * @param {Bytesish} key
   * @param {WatchOptions} [opts]
   * @returns {Watch}
   */
  watch(key, opts = {}) {
    return new Watch(this, key, opts);
  }
}

class Leases {
  /** @param {Client} c */
  constructor(c) { this._c = c; }

  /**
   * @param {Int64ish} ttl  seconds
   * @param {{id?: Int64ish}} [opts]  a wanted ID (0: any)
   * @returns {Promise<LeaseGrant>}
   */
  async grant(ttl, opts = {}) {
    const body = { TTL: int64ToWire(ttl, "ttl") };
    if (opts.id !== undefined) body.ID = int64ToWire(opts.id, "id");
    const r = await this._c.request("/v3/lease/grant", body);
    if (r.error) throw new KvgateError(r.error, { code: 2, httpStatus: 200, body: r });
    const header = decodeHeader(r.header);
    return { id: toInt64(r.ID), ttl: toInt64(r.TTL), revision: header.revision, header };
  }

  /**
   * One keep-alive; the lease's new TTL (0 if it does not exist).
   * @param {Int64ish} id
   * @returns {Promise<{id: Int64, ttl: Int64, header: Header}>}
   */
  async keepAlive(id) {
    const r = await this._c.request("/v3/lease/keepalive", { ID: int64ToWire(id, "id") });
    if (r.error) throw errorFrom(r.error.http_code || 500, r.error, "");
    const x = r.result || r;
    return { id: toInt64(x.ID), ttl: toInt64(x.TTL), header: decodeHeader(x.header) };
  }

  /**
   * Keeps a lease alive every `everyMs` (default ttl/3 after the first call) until
   * the signal aborts or the lease is gone.  Resolves when it stops.
   * @param {Int64ish} id
   * @param {{signal?: AbortSignal, everyMs?: number, onError?: (e: Error) => void}} [opts]
   * @returns {Promise<void>}
   */
  async keepAliveLoop(id, opts = {}) {
    for (;;) {
      if (opts.signal?.aborted) return;
      let every = opts.everyMs ?? 1000;
      try {
        const k = await this.keepAlive(id);
        if (!k.ttl) return;
        if (opts.everyMs === undefined) every = Math.max(200, (Number(k.ttl) * 1000) / 3);
      } catch (e) {
        if (opts.onError) opts.onError(/** @type {Error} */ (e));
      }
      if (!(await sleep(every, opts.signal))) return;
    }
  }

  /**
   * Revokes a lease (its keys are deleted).
   * @param {Int64ish} id
   * @returns {Promise<{revision: Int64, header: Header}>}
   */
  async revoke(id) {
    const r = await this._c.request("/v3/lease/revoke", { ID: int64ToWire(id, "id") });
    const header = decodeHeader(r.header);
    return { revision: header.revision, header };
  }

  /**
   * @param {Int64ish} id
   * @param {{keys?: boolean}} [opts]
   * @returns {Promise<LeaseTimeToLive>}
   */
  async timeToLive(id, opts = {}) {
    const body = { ID: int64ToWire(id, "id") };
    if (opts.keys) body.keys = true;
    const r = await this._c.request("/v3/lease/timetolive", body);
    const keysBytes = (r.keys || []).map(b64decode);
    return { id: toInt64(r.ID), ttl: toInt64(r.TTL), grantedTtl: toInt64(r.grantedTTL), keysBytes,
      keys: keysBytes.map((b) => dec.decode(b)), header: decodeHeader(r.header) };
  }

  /**
   * Every lease's ID.
   * @returns {Promise<Int64[]>}
   */
  async list() {
    const r = await this._c.request("/v3/lease/leases", {});
    return (r.leases || []).map((l) => toInt64(l.ID));
  }
}

// ---------------------------------------------------------------------------
// watch

/** links an outer signal to an AbortController; returns the unlink function */
function link(outer, ctl) {
  if (!outer) return () => {};
  if (outer.aborted) { ctl.abort(outer.reason); return () => {}; }
  const f = () => ctl.abort(outer.reason);
  outer.addEventListener("abort", f, { once: true });
  return () => outer.removeEventListener("abort", f);
}

/** resolves true after ms, false at once if the signal aborts */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const t = setTimeout(() => { signal?.removeEventListener("abort", f); resolve(true); }, ms);
    const f = () => { clearTimeout(t); resolve(false); };
    signal?.addEventListener("abort", f, { once: true });
  });
}

/**
 * Server-Sent Events parser (WHATWG): feed text chunks, get messages.
 * Exported for tests.
 */
export class SseParser {
  constructor() {
    this.buf = "";
    this.data = [];
    this.event = "";
    this.id = null;
    this.hasData = false;
    this.lastCR = false;
  }
  /**
   * @param {string} chunk
   * @returns {{event: string, data: string, id: string | null, retry?: number}[]} the complete messages
   */
  push(chunk) {
    const out = [];
    let s = this.buf + chunk;
    if (this.lastCR && s.startsWith("\n")) s = s.slice(1);
    this.lastCR = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const ch = s.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      this._line(s.slice(start, i), out);
      if (ch === 13) {
        if (i + 1 < s.length) { if (s.charCodeAt(i + 1) === 10) i++; }
        else this.lastCR = true;
      }
      start = i + 1;
    }
    this.buf = s.slice(start);
    return out;
  }
  _line(line, out) {
    if (line === "") {
      if (this.hasData || this.event) out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      else if (this.id !== null) out.push({ event: "", data: "", id: this.id });
      this.data = []; this.event = ""; this.id = null; this.hasData = false;
      return;
    }
    if (line.charCodeAt(0) === 58) return; // comment
    const c = line.indexOf(":");
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? "" : line.slice(c + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") { this.data.push(value); this.hasData = true; }
    else if (field === "event") this.event = value;
    else if (field === "id") { if (!value.includes("\0")) this.id = value; }
    else if (field === "retry") { if (/^[0-9]+$/.test(value)) out.push({ event: "", data: "", id: null, retry: Number(value) }); }
  }
}

/** @param {any} ev @param {boolean} initial @returns {WatchEvent} */
function decodeEvent(ev, initial) {
  const kv = decodeKv(ev.kv || {});
  return {
    type: ev.type === "DELETE" || ev.type === 1 ? "delete" : "put",
    key: kv.key,
    value: kv.value,
    keyBytes: kv.keyBytes,
    valueBytes: kv.valueBytes,
    revision: kv.modRevision,
    kv,
    prevKv: ev.prev_kv ? decodeKv(ev.prev_kv) : null,
    initial,
  };
}

function big(v) { return typeof v === "bigint" ? v : BigInt(v); }

/**
 * A watch: an async iterable of WatchEvent that reconnects by itself.
 * Ends (iteration returns) when cancelled; throws CompactedError when the
 * events it needs are gone, KvgateError for other server answers.
 * @implements {AsyncIterable<WatchEvent>}
 */
export class Watch {
  /**
   * @param {Client} client
   * @param {Bytesish} key
   * @param {WatchOptions} opts
   */
  constructor(client, key, opts = {}) {
    this._c = client;
    this._o = opts;
    this._ctl = new AbortController();
    this._unlink = link(opts.signal, this._ctl);
    this._queue = [];          // {ev, doneRev} | {doneRev}
    this._waiter = null;       // resolves when the queue grows or the watch ends
    this._drain = null;        // resolves when the consumer takes items
    this._ended = false;
    /** @type {Error | null} */
    this._error = null;
    /** the last SSE id processed: every event <= it has been queued (bigint; -1n: none yet) */
    this._lastId = -1n;
    /** the highest revision whose events have all been handed to the consumer */
    this._delivered = -1n;
    /** @type {Int64 | null} */
    this.compactRevision = null;
    /** number of (re)connections made so far */
    this.connections = 0;
    /** @type {WatchState} */
    this.state = "connecting";
    let syncedOk, syncedErr;
    /** resolves with the revision once the watch is created (with initial: once the snapshot is
     * queued for you, maybe not yet taken; the markers option gives an in-order "synced" item) */
    this.synced = new Promise((a, b) => { syncedOk = a; syncedErr = b; });
    this.synced.catch(() => {});
    this._syncedOk = syncedOk; this._syncedErr = syncedErr;
    let doneOk, doneErr;
    /** resolves when the watch ends normally (cancelled), rejects with the error that ended it */
    this.done = new Promise((a, b) => { doneOk = a; doneErr = b; });
    this.done.catch(() => {});
    this._doneOk = doneOk; this._doneErr = doneErr;
    this._params = this._baseParams(key, opts);
    this._pumpPromise = this._pump();
    if (opts.onEvent) this._callbackLoop();
  }

  /** @returns {Int64} highest revision fully delivered to you (-1 before anything) */
  get revision() { return toInt64(this._delivered); }

  /** Stops the watch; iteration ends normally. */
  cancel() { this._ctl.abort(); }

  /** @param {WatchState} s */
  _setState(s) {
    if (this.state === s || this.state === "gone" || this.state === "failed" || this.state === "closed") return;
    this.state = s;
    const f = this._o.onState;
    if (f) { try { f(s, this); } catch (e) { setTimeout(() => { throw e; }); } }
  }

  _baseParams(key, o) {
    const k = toBytes(key);
    const n = (o.prefix ? 1 : 0) + (o.fromKey ? 1 : 0) + (o.rangeEnd != null ? 1 : 0);
    if (n > 1) throw new TypeError("prefix, fromKey and rangeEnd are exclusive");
    if (o.initial && o.startRevision != null) throw new TypeError("initial and startRevision are exclusive");
    if (o.startRevision != null) int64ToWire(o.startRevision, "startRevision");
    for (const f of o.filters || []) {
      if (f !== "noput" && f !== "nodelete") throw new TypeError(`filters: want "noput" or "nodelete", got ${f}`);
    }
    let end = null;
    if (o.prefix) end = prefixEnd(k);
    else if (o.fromKey) end = new Uint8Array([0]);
    else if (o.rangeEnd != null) end = toBytes(o.rangeEnd, "rangeEnd");
    this._key = k;
    this._end = end;
    const isZero = (b) => b && b.length === 1 && b[0] === 0;
    // GET query values are C strings on the server: a NUL byte in the key or
    // range end needs the POST form (JSON, base64), which has no `initial`
    // (emulated with a range, then a watch from the next revision).
    // every key (key "\0" from there on) is an empty key with from_key on the GET form
    const all = isZero(k) && isZero(end);
    this._post = !all && (k.includes(0) || (end !== null && !isZero(end) && end.includes(0)));
    const p = [];
    p.push(["key", all ? "" : pctBytes(k)]);
    if (o.prefix) p.push(["prefix", "true"]);
    else if (end !== null && isZero(end)) p.push(["from_key", "true"]);
    else if (end !== null) p.push(["range_end", pctBytes(end)]);
    if (o.prevKv) p.push(["prev_kv", "true"]);
    if (o.progressNotify) p.push(["progress_notify", "true"]);
    if (o.filters && o.filters.length) p.push(["filters", o.filters.join(",")]);
    return p;
  }

  /** the next connection's fetch arguments; sets this._reqStart */
  async _request() {
    const o = this._o;
    const headers = { Accept: "text/event-stream", ...this._c.headers };
    let start = null;
    if (this._lastId >= 0n) start = this._lastId + 1n;
    else if (o.startRevision != null) start = BigInt(int64ToWire(o.startRevision, "startRevision"));
    this._reqStart = start;
    if (!this._post) {
      const parts = this._params.map(([k, v]) => `${k}=${v}`);
      if (this._lastId >= 0n) parts.push(`last_event_id=${this._lastId}`);
      else if (o.initial) parts.push("initial=true");
      else if (start !== null) parts.push(`start_revision=${start}`);
      return { url: `${this._c.endpoint}/v3/watch?${parts.join("&")}`, init: { method: "GET", headers } };
    }
    if (this._lastId < 0n && o.initial) {
      // emulated initial snapshot: every key in pages at one revision
      const evs = [];
      let from = this._key, rev;
      for (;;) {
        const r = await this._c.range(from, { rangeEnd: this._end ?? undefined, limit: 1000, revision: rev });
        if (rev === undefined) rev = r.revision;
        for (const kv of r.kvs) {
          evs.push({ type: "put", key: kv.key, value: kv.value, keyBytes: kv.keyBytes, valueBytes: kv.valueBytes,
            revision: kv.modRevision, kv, prevKv: null, initial: true });
        }
        if (!r.more || !r.kvs.length || this._end === null) break;
        const last = r.kvs[r.kvs.length - 1].keyBytes;
        from = new Uint8Array(last.length + 1);
        from.set(last);
      }
      this._lastId = big(rev);
      await this._push(evs, this._lastId);
      this._synced(this._lastId);
      start = this._lastId + 1n;
      this._reqStart = start;
    }
    const cr = { key: b64encode(this._key) };
    if (this._end !== null) cr.range_end = b64encode(this._end);
    if (start !== null) cr.start_revision = start.toString();
    if (o.prevKv) cr.prev_kv = true;
    if (o.progressNotify) cr.progress_notify = true;
    if (o.filters && o.filters.length) cr.filters = o.filters.map((f) => f.toUpperCase());
    return { url: `${this._c.endpoint}/v3/watch`, init: { method: "POST",
      headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify({ create_request: cr }) } };
  }

  async _pump() {
    const o = this._o;
    const sig = this._ctl.signal;
    let delay = o.retryMs ?? 100;
    const maxDelay = o.maxRetryMs ?? 2000;
    let failures = 0;
    try {
      while (!sig.aborted) {
        let progressed = false;
        try {
          progressed = await this._connectOnce();
        } catch (e) {
          if (sig.aborted) break;
          if (!(e instanceof KvgateError)) throw e; // a bug, not the network: do not loop on it
          if (e instanceof KvgateError && e.httpStatus >= 400 && e.httpStatus < 500 && e.httpStatus !== 429 && e.httpStatus !== 408) throw e;
          if (e instanceof KvgateError && e.code !== 14 && e.httpStatus === 0 && !(e.cause)) throw e;
          if (e instanceof KvgateError && e.httpStatus === 429) {
            const ra = Number(e.body?.retryAfter);
            if (ra > 0) delay = Math.max(delay, ra * 1000);
          }
        }
        if (sig.aborted) break;
        this._setState("reconnecting");
        if (progressed) { failures = 0; delay = o.retryMs ?? 100; } else failures++;
        if (failures > (o.maxRetries ?? Infinity)) throw new KvgateError("kvgate: watch: cannot reconnect", { code: 14 });
        if (!(await sleep(delay, sig))) break;
        if (!progressed) delay = Math.min(delay * 2, maxDelay);
      }
      this._finish(null);
    } catch (e) {
      this._finish(/** @type {Error} */ (e));
    }
  }

  /** one connection; returns whether it got as far as `created` */
  async _connectOnce() {
    const sig = this._ctl.signal;
    const ctl = new AbortController();
    const unlink = link(sig, ctl);
    try {
      this.connections++;
      const rq = await this._request();
      if (this._useEventSource(rq)) {
        // a start revision (or a resume point) may have been compacted: a
        // refused EventSource tells neither its status nor its body (and
        // Chromium logs a console error), so ask with fetch first
        if (this._reqStart !== null) await this._probe(rq, ctl.signal);
        return await this._connectEventSource(rq.url, ctl.signal);
      }
      return await this._connectFetch(rq, ctl);
    } finally {
      unlink();
      ctl.abort();
    }
  }

  /** EventSource for this connection?  Browsers, the GET form, no custom headers or fetch. */
  _useEventSource(rq) {
    const t = this._o.transport;
    if (t === "fetch" || rq.init.method !== "GET") return false;
    if (typeof EventSource !== "function") {
      if (t === "eventsource") throw new TypeError("transport: no EventSource here (use fetch)");
      return false;
    }
    return t === "eventsource" || (!this._c._customFetch && Object.keys(this._c.headers).length === 0);
  }

  /** the status of a GET watch, by fetch; a non-200 answer is thrown as etcd's error */
  async _probe(rq, signal) {
    let res;
    try {
      res = await this._c._fetch(rq.url, { ...rq.init, cache: "no-store", signal });
    } catch (e) {
      throw new KvgateError(`kvgate: watch: ${e && e.message ? e.message : e}`, { code: 14, cause: e });
    }
    if (!res.ok) await this._throwAnswer(res);
    if (res.body) res.body.cancel().catch(() => {});
  }

  async _throwAnswer(res) {
    const text = await res.text().catch(() => "");
    let body;
    try { body = JSON.parse(text); } catch { body = undefined; }
    const err = errorFrom(res.status, body, text.trim());
    if (res.status === 429) err.body = { ...(body || {}), retryAfter: res.headers.get("Retry-After") };
    if (err instanceof CompactedError) this.compactRevision = err.compactRevision ?? null;
    throw err;
  }

  /** per-connection state for _handle */
  _newConn() {
    return { created: false, snapshot: this._lastId < 0n && this._o.initial ? [] : null };
  }

  /** one connection through the browser's EventSource (it never reconnects
   *  by itself here: the pump does, with last_event_id, like for fetch) */
  _connectEventSource(url, signal) {
    return new Promise((resolve, reject) => {
      const conn = this._newConn();
      const es = new EventSource(url);
      let settled = false;
      const end = (err) => {
        if (settled) return;
        settled = true;
        es.close();
        signal.removeEventListener("abort", onAbort);
        if (err) reject(err); else resolve(conn.created);
      };
      const onAbort = () => end(null);
      signal.addEventListener("abort", onAbort, { once: true });
      const onMsg = (e) => {
        if (settled) return;
        // an EventSource keeps the last id for messages without one; kvgate
        // sends an id on every message once there is one, none before
        try { this._handle({ event: e.type, data: e.data, id: e.lastEventId || null }, conn); } catch (err) { end(err); }
      };
      for (const t of ["message", "created", "synced", "canceled", "progress"]) es.addEventListener(t, onMsg);
      es.onerror = () => {
        if (settled) return;
        if (es.readyState !== 2 /* CLOSED */) { end(null); return; } // dropped: the pump reconnects
        // refused with an HTTP status (or not an event stream): read the answer with fetch
        es.close();
        this._probe({ url, init: { method: "GET", headers: { Accept: "text/event-stream" } } }, signal)
          .then(() => end(null), (err) => end(signal.aborted ? null : err));
      };
    });
  }

  /** one connection through fetch and a streaming reader (Node; POST form; custom headers) */
  async _connectFetch(rq, ctl) {
    let res;
    try {
      res = await this._c._fetch(rq.url, { ...rq.init, cache: "no-store", signal: ctl.signal });
    } catch (e) {
      throw new KvgateError(`kvgate: watch: ${e && e.message ? e.message : e}`, { code: 14, cause: e });
    }
    if (!res.ok) await this._throwAnswer(res);
    if (!res.body) throw new KvgateError("kvgate: watch: no response body", { code: 13 });
    const conn = this._newConn();
    const reader = res.body.getReader();
    const td = new TextDecoder();
    const parser = new SseParser();
    // A peer that vanished without closing (no FIN: cable, sleep, NAT)
    // sends nothing, not even the heartbeat comments: reconnect then.
    const idleMs = this._o.idleTimeoutMs ?? 45000;
    let lastData = Date.now();
    const idle = idleMs > 0 ? setInterval(() => { if (Date.now() - lastData > idleMs) ctl.abort(); },
      Math.max(10, Math.min(idleMs / 3, 5000))) : null;
    if (idle && typeof idle === "object" && typeof idle.unref === "function") idle.unref(); // Node: not by itself
    // cancel(), the idle check: end a pending read even if the body ignores the abort
    const onAbort = () => { reader.cancel().catch(() => {}); };
    ctl.signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (e) {
          return conn.created; // dropped (or cancelled, or idle): the pump decides
        }
        if (r.done) return conn.created;
        lastData = Date.now();
        for (const m of parser.push(td.decode(r.value, { stream: true }))) this._handle(m, conn);
        // too much waiting for the consumer: stop reading until it catches up
        await this._drained();
      }
    } finally {
      if (idle) clearInterval(idle);
      ctl.signal.removeEventListener("abort", onAbort);
      reader.cancel().catch(() => {});
    }
  }

  /** one SSE message {event, data, id} of a connection; throws what ends the watch */
  _handle(m, conn) {
    if (m.retry !== undefined || (!m.data && m.event === "")) return;
    let resp;
    try { resp = JSON.parse(m.data); } catch { return; }
    const id = m.id !== null && /^[0-9]+$/.test(m.id) ? BigInt(m.id) : null;
    if (m.event === "created") {
      conn.created = true;
      this._setState("live");
      // the watch continues after start - 1 when a start was asked for
      const cid = this._reqStart !== null ? this._reqStart - 1n : id;
      if (cid !== null && cid > this._lastId && conn.snapshot === null) {
        this._lastId = cid;
        this._pushNow([], cid);
      }
      if (conn.snapshot === null) this._synced(this._lastId);
      return;
    }
    if (m.event === "canceled") {
      const cr = resp.compact_revision;
      if (cr && cr !== "0") {
        this.compactRevision = toInt64(cr);
        throw new CompactedError("mvcc: required revision has been compacted", { compactRevision: this.compactRevision, body: resp });
      }
      throw new KvgateError(resp.cancel_reason || "kvgate: watch canceled by the server", { code: 2, body: resp });
    }
    if (m.event === "synced") {
      if (id === null) return;
      if (conn.snapshot) {
        const evs = conn.snapshot.map((e) => decodeEvent(e, true));
        conn.snapshot = null;
        if (id > this._lastId) this._lastId = id;
        this._pushNow(evs, id);
      }
      this._synced(id);
      return;
    }
    if (m.event === "progress") {
      if (id !== null && id > this._lastId && conn.snapshot === null) { this._lastId = id; this._pushNow([], id); }
      return;
    }
    // data: a WatchResponse
    const events = resp.events || [];
    if (conn.snapshot) { for (const e of events) conn.snapshot.push(e); return; }
    const fresh = [];
    for (const e of events) {
      const ev = decodeEvent(e, false);
      if (big(ev.revision) > this._lastId) fresh.push(ev);
    }
    let done = id !== null ? id : this._lastId;
    if (fresh.length) {
      // events of the last revision are complete only when id says so
      const lastRev = big(fresh[fresh.length - 1].revision);
      if (id === null) done = lastRev - 1n;
    }
    if (done > this._lastId) this._lastId = done;
    if (fresh.length || done > this._delivered) this._pushNow(fresh, this._lastId);
  }

  /** the watch is created (with initial: the snapshot is queued): once per watch */
  _synced(rev) {
    if (this._syncedSeen) return;
    this._syncedSeen = true;
    const r = toInt64(rev);
    if (this._o.markers) {
      this._queue.push({ ev: { type: "synced", key: "", value: "", keyBytes: new Uint8Array(0), valueBytes: new Uint8Array(0), revision: r, kv: null, prevKv: null, initial: !!this._o.initial }, doneRev: big(rev) });
      this._wake();
    }
    this._syncedOk(r);
  }

  /** queues events; the last one carries doneRev */
  _pushNow(evs, doneRev) {
    if (evs.length === 0) {
      this._queue.push({ ev: null, doneRev });
    } else {
      for (let i = 0; i < evs.length; i++) {
        const r = big(evs[i].revision);
        const next = i + 1 < evs.length ? big(evs[i + 1].revision) : null;
        const d = next === null ? doneRev : next > r ? r : r - 1n;
        this._queue.push({ ev: evs[i], doneRev: d });
      }
    }
    this._wake();
  }

  /** resolves once the consumer has taken enough of the queue (or the watch ended) */
  async _drained() {
    while (this._queue.length > 1000 && !this._ctl.signal.aborted && !this._ended) {
      await new Promise((a) => { this._drain = a; });
    }
  }

  /** queues events, then waits if the consumer lags */
  async _push(evs, doneRev) {
    this._pushNow(evs, doneRev);
    await this._drained();
  }

  _wake() {
    const w = this._waiter;
    this._waiter = null;
    if (w) w();
  }

  _finish(err) {
    if (this._ended) return;
    this._ended = true;
    this._error = err;
    this._unlink();
    this._setState(err ? (err instanceof CompactedError ? "gone" : "failed") : "closed");
    if (err) { this._syncedErr(err); this._doneErr(err); } else { this._syncedErr(new KvgateError("kvgate: watch cancelled", { code: 1 })); this._doneOk(); }
    this._wake();
    if (this._drain) { const d = this._drain; this._drain = null; d(); }
  }

  /** @returns {Promise<IteratorResult<WatchEvent>>} */
  async next() {
    for (;;) {
      if (this._ctl.signal.aborted && !this._error) {
        this._queue.length = 0;
        return { done: true, value: undefined };
      }
      while (this._queue.length) {
        const it = this._queue.shift();
        if (it.doneRev > this._delivered) this._delivered = it.doneRev;
        if (this._drain && this._queue.length <= 500) { const d = this._drain; this._drain = null; d(); }
        if (it.ev) return { done: false, value: it.ev };
      }
      if (this._ended) {
        if (this._error) { const e = this._error; this._error = null; this._errorThrown = true; throw e; }
        return { done: true, value: undefined };
      }
      await new Promise((a) => { this._waiter = a; });
    }
  }

  /** ends the watch (for await ... break) */
  async return() {
    this.cancel();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator]() { return this; }

  async _callbackLoop() {
    const o = this._o;
    let syncedSent = false;
    this.synced.then((r) => { syncedSent = true; if (o.onSynced) o.onSynced(r); }, () => {});
    try {
      for (;;) {
        const r = await this.next();
        if (r.done) break;
        await o.onEvent(r.value);
      }
    } catch (e) {
      // the watch ended with an error, or onEvent threw: then it ends with that error
      if (!this._ended) { this._finish(/** @type {Error} */ (e)); this._ctl.abort(); }
      if (o.onError) o.onError(/** @type {Error} */ (e));
      else setTimeout(() => { throw e; });
    }
    void syncedSent;
  }
}

/** bytes -> %XX for every byte but unreserved ASCII (query-safe, raw bytes kept) */
function pctBytes(b) {
  let s = "";
  for (const x of b) {
    if ((x >= 0x30 && x <= 0x39) || (x >= 0x41 && x <= 0x5a) || (x >= 0x61 && x <= 0x7a) || x === 0x2d || x === 0x2e || x === 0x5f || x === 0x7e) s += String.fromCharCode(x);
    else s += "%" + (x < 16 ? "0" : "") + x.toString(16).toUpperCase();
  }
  return s;
}

/**
 * Shorthand: new Client(endpoint, options).
 * @param {string} [endpoint]
 * @param {ConstructorParameters<typeof Client>[1]} [options]
 */
export function connect(endpoint, options) {
  return new Client(endpoint, options);
}

export default Client;
