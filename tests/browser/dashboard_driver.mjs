#!/usr/bin/env node
// tests/browser/dashboard_driver.mjs — headless Chromium for the dashboard
// test (test_dashboard.py).
//
//   node tests/browser/dashboard_driver.mjs
//
// Launches Debian's /usr/bin/chromium headless through playwright-core
// (never a downloaded browser) and answers one JSON line on stdout per JSON
// command line read from stdin:
//   {"op":"goto","url":U}                   navigate (waits for "load")
//   {"op":"eval","js":EXPR}                 -> {"value": the expression's value}
//   {"op":"wait","js":EXPR,"timeout":MS}    wait until EXPR is truthy -> {"value"}
//   {"op":"click","sel":S} / {"op":"fill","sel":S,"value":V}
//   {"op":"press","key":K[,"sel":S]}        keyboard (focused element or S)
//   {"op":"focused"}                        -> {"value": tag#id of document.activeElement}
//   {"op":"shot","path":P[,"scheme":"light"|"dark"]}   full-page PNG
//   {"op":"errors"}                         -> {"value": [page errors + console errors]}
// Every page gets window.__es = {made, open, urls}: its EventSources.
//   {"op":"quit"}
// A failing command answers {"error": "..."}.  The first line is {"ready":true}.
// Every wait is bounded; the driver exits when stdin closes.
import { createInterface } from "node:readline";
import { exit, stdin, stdout } from "node:process";
import { chromium } from "playwright-core";

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
  timeout: 30000,
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: "light" });
// Count the page's EventSources (the dashboard's watch is one per view):
// window.__es = {made, open, urls}.
await context.addInitScript(() => {
  const ES = window.EventSource;
  if (!ES) return;
  const st = { made: 0, open: 0, urls: [] };
  window.__es = st;
  window.EventSource = class extends ES {
    constructor(url, init) {
      super(url, init);
      st.made++; st.open++; st.urls.push(String(url));
      if (st.urls.length > 50) st.urls.shift();
      this.__counted = true;
    }
    close() {
      if (this.__counted) { this.__counted = false; st.open--; }
      super.close();
    }
  };
});
const page = await context.newPage();
page.setDefaultTimeout(10000);

// Script errors of the whole run: uncaught exceptions and console.error
// messages.  Failed network loads while kvgate is down (the EventSource's
// reconnects) are expected and are not script errors: Chromium reports them
// as console errors "Failed to load resource" / net::ERR_..., which we keep
// apart.
const errors = [];
const netErrors = [];
page.on("pageerror", (e) => errors.push("pageerror: " + (e.stack || e.message || String(e))));
page.on("console", (m) => {
  if (m.type() !== "error") return;
  const t = m.text();
  if (/Failed to load resource|net::ERR_/.test(t)) netErrors.push(t);
  else errors.push("console.error: " + t);
});

const say = (obj) => stdout.write(JSON.stringify(obj) + "\n");
const quit = async (code) => {
  await browser.close().catch(() => {});
  exit(code);
};
say({ ready: true });

const rl = createInterface({ input: stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    say({ error: "bad command: " + line });
    continue;
  }
  try {
    switch (c.op) {
      case "goto":
        await page.goto(c.url, { waitUntil: "load" });
        say({ ok: true });
        break;
      case "eval":
        say({ value: await page.evaluate(c.js) });
        break;
      case "wait": {
        const h = await page.waitForFunction(c.js, null, { timeout: c.timeout || 10000, polling: 50 });
        say({ value: await h.jsonValue() });
        break;
      }
      case "click":
        await page.click(c.sel);
        say({ ok: true });
        break;
      case "fill":
        await page.fill(c.sel, c.value);
        say({ ok: true });
        break;
      case "press":
        if (c.sel) await page.press(c.sel, c.key);
        else await page.keyboard.press(c.key);
        say({ ok: true });
        break;
      case "focused":
        say({ value: await page.evaluate(() => {
          const a = document.activeElement;
          return a ? a.tagName.toLowerCase() + (a.id ? "#" + a.id : "") : null;
        }) });
        break;
      case "shot":
        if (c.scheme) await page.emulateMedia({ colorScheme: c.scheme });
        await page.screenshot({ path: c.path, fullPage: false });
        if (c.scheme) await page.emulateMedia({ colorScheme: "light" });
        say({ ok: true });
        break;
      case "errors":
        say({ value: errors, net: netErrors });
        break;
      case "quit":
        say({ ok: true });
        await quit(0);
        break;
      default:
        say({ error: "unknown op " + c.op });
    }
  } catch (e) {
    say({ error: String(e && e.message ? e.message : e).slice(0, 2000) });
  }
}
await quit(0);
