// The README's test-fixture recipe, run as written (the code block under
// "## Test-fixture mode"), so the documented recipe cannot rot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const README = new URL("../../README.md", import.meta.url);
const FIXTURE = new URL("./fixture.mjs", import.meta.url).href;

test("README: the test-fixture recipe runs and passes", () => {
  const md = readFileSync(README, "utf8");
  const sec = md.slice(md.indexOf("## Test-fixture mode"));
  const m = /```js\n([\s\S]*?)```/.exec(sec);
  assert.ok(m, "no js block under ## Test-fixture mode");
  const code = m[1].replace("./tests/js/fixture.mjs", FIXTURE);
  assert.notEqual(code, m[1], "the recipe no longer imports ./tests/js/fixture.mjs");
  const dir = mkdtempSync(join(tmpdir(), "kvgate-readme-"));
  try {
    const f = join(dir, "recipe.test.mjs");
    writeFileSync(f, code);
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // a test run of its own, not a child of ours
    const r = spawnSync(process.execPath, ["--test", "--test-reporter=tap", f],
      { encoding: "utf8", timeout: 60000, env });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^# pass 1$/m);
    assert.match(r.stdout, /^# fail 0$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("README: the JavaScript client examples run in Node (put, get, range, watch, lease, txn)", async () => {
  const { clientExample } = await import("./readme_blocks.mjs");
  const { startKvgate } = await import("./fixture.mjs");
  const kvgate = await startKvgate();
  const dir = mkdtempSync(join(tmpdir(), "kvgate-readme-client-"));
  try {
    const mod = new URL("../../web/kvgate.js", import.meta.url).href;
    let code = clientExample();
    assert.match(code, /from "\/kvgate\.js"/);
    // in Node: import the file, and name the server (the README's own comments say so)
    code = code.replace('from "/kvgate.js"', `from ${JSON.stringify(mod)}`)
      .replace("new Client();", `new Client(${JSON.stringify(kvgate.url)});`);
    const f = join(dir, "example.mjs");
    writeFileSync(f, code + '\nconsole.log("README-EXAMPLE-DONE");\n');
    const r = spawnSync(process.execPath, [f], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^put app\/greeting hello \d+ true$/m);
    assert.match(r.stdout, /README-EXAMPLE-DONE/);
    // the txn took the lock with the lease
    const lock = await kvgate.client.get("app/lock");
    assert.equal(lock.value, "me");
    assert.equal(typeof lock.lease, "bigint");
  } finally {
    await kvgate.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
