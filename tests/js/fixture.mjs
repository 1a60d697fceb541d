// tests/js/fixture.mjs — start a throwaway kvgate from a Node (or
// Playwright) test.  The README's "Test-fixture mode" recipe; the project's
// own tests use it (tests/js/*.test.mjs), so it cannot rot.
//
//   import { startKvgate } from "./fixture.mjs";
//   const kvgate = await startKvgate();          // --ephemeral, a free port
//   const kv = kvgate.client;                    // a kvgate.js Client for it
//   ...
//   await kvgate.stop();
//
// startKvgate(options):
//   bin        the binary (default $KVGATE_BIN, else bin/kvgate of this repo)
//   dataDir    keep the data there (default: --ephemeral, all in memory)
//   port       0 (default: any free port) or a fixed one
//   args       extra flags, e.g. ["--cors-origins", "*"]
//   timeoutMs  how long to wait for "kvgate listening on ..." (default 10000)
// The result: {url, port, client, process, stderr(), stop(), kill(), restart()}.
//   stop()     SIGTERM, waits for the exit (SIGKILL after 10 s)
//   kill()     SIGKILL (a crash), waits for the exit
//   restart()  stop (or kill with {kill: true}) and start again on the same
//              port with the same flags (with a dataDir the data survives)
// kvgate prints exactly one line on stdout once it serves; the fixture waits
// for it (no polling, no sleeps: kvgate is ready in ~20 ms).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../../web/kvgate.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The kvgate binary the tests use: $KVGATE_BIN or bin/kvgate. */
export function kvgateBin() {
  const b = process.env.KVGATE_BIN || "bin/kvgate";
  return resolve(ROOT, b);
}

/**
 * @param {{bin?: string, dataDir?: string, port?: number, args?: string[], timeoutMs?: number}} [opts]
 */
export async function startKvgate(opts = {}) {
  const bin = opts.bin || kvgateBin();
  if (!existsSync(bin)) throw new Error(`kvgate binary ${bin} not found (make, or set KVGATE_BIN)`);
  const store = opts.dataDir ? ["--data-dir", opts.dataDir] : ["--ephemeral"];
  const extra = opts.args || [];
  const timeoutMs = opts.timeoutMs ?? 10000;
  let port = opts.port ?? 0;
  let child = null;
  let errText = "";
  let outLines = [];

  const launch = () => new Promise((ok, fail) => {
    const p = spawn(bin, ["--listen", `127.0.0.1:${port}`, ...store, ...extra], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = p;
    let out = "";
    let done = false;
    const timer = setTimeout(() => finish(new Error(`kvgate did not start within ${timeoutMs} ms: ${errText}`)), timeoutMs);
    const finish = (err, line) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) { p.kill("SIGKILL"); fail(err); } else ok(line);
    };
    p.stderr.setEncoding("utf8");
    p.stderr.on("data", (d) => { errText += d; if (errText.length > 65536) errText = errText.slice(-32768); });
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (d) => {
      out += d;
      let i;
      while ((i = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        outLines.push(line);
        const m = /^kvgate listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
        if (m) finish(null, m);
      }
    });
    p.on("exit", (code, sig) => finish(new Error(`kvgate exited (${code ?? sig}) before serving: ${errText}`)));
    p.on("error", (e) => finish(e));
  });

  const waitExit = (p, ms) => new Promise((ok) => {
    if (p.exitCode !== null || p.signalCode !== null) return ok();
    const t = setTimeout(() => { p.kill("SIGKILL"); }, ms);
    p.once("exit", () => { clearTimeout(t); ok(); });
  });

  const m = await launch();
  port = Number(m[2]);
  const url = m[1];
  const fx = {
    url,
    port,
    /** a kvgate.js Client for this server */
    client: new Client(url),
    get process() { return child; },
    /** every stdout line so far (the tests check there is only one per start) */
    stdoutLines: () => outLines.slice(),
    stderr: () => errText,
    async stop() {
      if (!child) return;
      const p = child;
      p.kill("SIGTERM");
      await waitExit(p, 10000);
    },
    async kill() {
      if (!child) return;
      const p = child;
      p.kill("SIGKILL");
      await waitExit(p, 10000);
    },
    async restart(o = {}) {
      if (o.kill) await fx.kill(); else await fx.stop();
      outLines = [];
      // the port was just released: a few tries in case the kernel is slow to free it
      for (let i = 0; ; i++) {
        try { await launch(); return fx; } catch (e) {
          if (i >= 20 || !/address already in use/.test(String(e.message))) throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
  };
  return fx;
}
