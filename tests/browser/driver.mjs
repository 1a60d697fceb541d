#!/usr/bin/env node
// tests/browser/driver.mjs — headless Chromium for the EventSource test.
//
//   node tests/browser/driver.mjs PAGE_PORT
//
// Serves this directory's watch.html (the README's EventSource page) on
// http://127.0.0.1:PAGE_PORT/, launches Debian's /usr/bin/chromium headless
// through playwright-core (never a downloaded browser), and answers one JSON
// line per command read from stdin:
//   open URL   -> {"ok":true}            navigate the page
//   log        -> {"log":"...","state":N} the page's #log text, EventSource readyState
//   quit       -> {"ok":true}, exits
// The Python side (test_watch_browser.py) owns kvgate: it writes, restarts
// it and checks what the page saw.  Every step is bounded; the driver exits
// when stdin closes.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { argv, exit, stdin, stdout } from "node:process";
import { chromium } from "playwright-core";

const port = Number(argv[2]);
const page_html = readFileSync(new URL("./watch.html", import.meta.url));
const server = createServer((req, res) => {
  if (req.url.startsWith("/watch.html")) {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(page_html);
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((ok) => server.listen(port, "127.0.0.1", ok));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
  timeout: 30000,
});
const page = await browser.newPage();
page.setDefaultTimeout(10000);
const consoleLines = [];
page.on("console", (m) => consoleLines.push(m.text()));

const say = (obj) => stdout.write(JSON.stringify(obj) + "\n");
const quit = async (code) => {
  await browser.close().catch(() => {});
  server.close();
  exit(code);
};
say({ ready: true });

const rl = createInterface({ input: stdin });
for await (const line of rl) {
  const [cmd, ...rest] = line.trim().split(" ");
  try {
    if (cmd === "open") {
      await page.goto(rest.join(" "));
      say({ ok: true });
    } else if (cmd === "log") {
      const log = await page.evaluate(() => document.getElementById("log").textContent);
      const state = await page.evaluate(() => (typeof es === "undefined" ? -1 : es.readyState));
      say({ log, state, console: consoleLines.slice(-20) });
    } else if (cmd === "quit") {
      say({ ok: true });
      await quit(0);
    } else {
      say({ error: `unknown command ${cmd}` });
    }
  } catch (e) {
    say({ error: String(e) });
  }
}
await quit(0);
