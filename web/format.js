// format.js — how the dashboard shows bytes, numbers and times.
//
// Keys and values are bytes.  Inside the dashboard a key is identified by
// its "binary string" (one UTF-16 unit per byte, 0..255): lossless, and
// JavaScript's string order on it is etcd's byte order, so the key list
// sorts exactly as a range does.  A value is shown as text when it is valid
// UTF-8 without control characters (tab, newline and carriage return
// allowed); otherwise as hex (or base64, on request).

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8enc = new TextEncoder();

/** Uint8Array | string (text) -> Uint8Array. */
export function toBytes(x) {
  if (x == null) return new Uint8Array(0);
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  return utf8enc.encode(String(x));
}

/** Uint8Array -> binary string (one char per byte). */
export function bstr(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  }
  return s;
}

/** binary string -> Uint8Array. */
export function unbstr(s) {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 255;
  return b;
}

// C0 controls but \t \n \r, DEL, and C1 controls.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/** The bytes as text, or null when they are not printable UTF-8. */
export function asText(bytes) {
  let s;
  try {
    s = utf8.decode(bytes);
  } catch {
    return null;
  }
  return CONTROL.test(s) ? null : s;
}

export function hex(bytes, max = Infinity) {
  const n = Math.min(bytes.length, max);
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = bytes[i].toString(16).padStart(2, "0");
  return out.join(" ") + (bytes.length > n ? " …" : "");
}

/** Hex dump with 16 bytes per line, offsets and an ASCII column. */
export function hexdump(bytes, maxBytes = 64 * 1024) {
  const n = Math.min(bytes.length, maxBytes);
  const lines = [];
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    let h = "", a = "";
    for (let i = 0; i < 16; i++) {
      if (i < row.length) {
        h += row[i].toString(16).padStart(2, "0") + (i === 7 ? "  " : " ");
        a += row[i] >= 32 && row[i] < 127 ? String.fromCharCode(row[i]) : ".";
      } else {
        h += i === 7 ? "    " : "   ";
      }
    }
    lines.push(off.toString(16).padStart(8, "0") + "  " + h + " " + a);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`);
  return lines.join("\n");
}

export function base64(bytes) {
  return btoa(bstr(bytes));
}

/** A key for display: text, or hex in angle brackets when binary. */
export function keyLabel(k) {
  const t = asText(unbstr(k));
  return t !== null ? t : "0x" + hex(unbstr(k)).replace(/ /g, "");
}

/** A short one-line preview of a value: text (its asText, or null when
 *  binary) shown on one line, else the first bytes in hex. */
export function preview(bytes, text, max = 120) {
  if (text !== null) {
    const one = (text.length > max * 2 ? text.slice(0, max * 2) : text).replace(/\s+/g, " ");
    return one.length > max ? one.slice(0, max) + "…" : one;
  }
  return hex(bytes, 24);
}

export function fmtBytes(n) {
  n = Number(n);
  if (!Number.isFinite(n)) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + " " + u[i];
}

/** int64 strings grouped for reading: "1234567" -> "1 234 567" (thin spaces). */
export function fmtInt(s) {
  if (s === undefined || s === null || s === "") return "0";
  return String(s).replace(/\B(?=(\d{3})+(?!\d))/g, "\u2009");
}

export function fmtTime(d) {
  return d.toTimeString().slice(0, 8);
}

/** etcd's prefix range end: the prefix with its last byte below 0xff
 *  incremented (trailing 0xff bytes dropped); "\0" (every key after) when
 *  there is none.  Binary strings in and out. */
export function prefixEnd(p) {
  for (let i = p.length - 1; i >= 0; i--) {
    const c = p.charCodeAt(i);
    if (c < 255) return p.slice(0, i) + String.fromCharCode(c + 1);
  }
  return "\0";
}
