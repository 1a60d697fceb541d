// tests/js/readme_blocks.mjs — the README's JavaScript client examples (the
// ```js blocks under "## JavaScript client"), made runnable for a test: the
// watch loop is aborted shortly after it starts, and the code ends by
// setting a flag.  readme.test.mjs runs them in Node, browser.test.mjs in a
// page served by kvgate, so the documented examples cannot rot.
import { readFileSync } from "node:fs";

const README = new URL("../../README.md", import.meta.url);

/** The client section's js blocks, joined (one program: the txn block uses `kv`). */
export function clientExample() {
  const md = readFileSync(README, "utf8");
  const start = md.indexOf("## JavaScript client");
  if (start < 0) throw new Error("README: no ## JavaScript client section");
  const end = md.indexOf("\n## ", start + 5);
  const sec = md.slice(start, end < 0 ? undefined : end);
  const blocks = [...sec.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  if (blocks.length < 2) throw new Error(`README: want the example and the txn blocks, found ${blocks.length}`);
  let code = blocks.join("\n");
  const abortAt = "const ac = new AbortController();";
  if (!code.includes(abortAt)) throw new Error("README: the watch example no longer makes `ac`");
  // let the watch run a little (the initial snapshot), then stop it as a caller would
  code = code.replace(abortAt, `${abortAt} setTimeout(() => ac.abort(), 500);`);
  return code;
}
