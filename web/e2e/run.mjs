// Browser tests of the demo pages: Debian's Chromium, driven by playwright-core, against a
// real `herald serve`. Run through scripts/e2e, which builds the binary and installs this
// folder's dependencies. Prints one line per case and ends with `e2e: N passed, M failed`.
import { chromium } from "playwright-core";
import { appendFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { killAll, startHerald } from "./procs.mjs";
import { cases } from "./cases.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const bin = process.env.HERALD_BIN ?? path.join(root, "target/release/herald");
const out = process.env.E2E_OUT ?? path.join(root, "target/e2e-screenshots");
const only = process.env.E2E_ONLY; // a substring of case names, to run a few while working
const CASE_TIMEOUT = 45000;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
console.log(`e2e: screenshots and server logs in ${path.relative(process.cwd(), out) || out}/`);

// Whatever breaks before the cases run still ends with the summary line.
process.on("uncaughtException", (e) => {
  killAll();
  console.log(`e2e: could not run: ${e.stack ?? e}`);
  console.log("e2e: 0 passed, 1 failed");
  process.exit(1);
});
process.on("unhandledRejection", (e) => {
  throw e;
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    killAll();
    process.exit(1);
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Playwright launches with a fresh temporary profile (--user-data-dir) of its own.
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
  ],
});
console.log(`e2e: chromium ${browser.version()}`);

// The shared server runs the chat's own configuration, namespaces on (web/chat.toml).
const args = ["--config", "web/chat.toml"];
let server = await startHerald(bin, { args, logFile: path.join(out, "herald.log") });
const env = {
  bin,
  out,
  get server() {
    return server;
  },
  /** Stops the shared server and starts a new one on the same port. */
  async restart(between = async () => {}) {
    const port = server.port;
    await server.stop();
    await between();
    server = await startHerald(bin, { port, args, logFile: path.join(out, "herald.log") });
  },
  browser,
};

let passed = 0;
let failed = 0;
let pages = 0;
for (const [name, run] of Object.entries(cases)) {
  if (only && !name.includes(only)) continue;
  const started = Date.now();
  const contexts = [];
  const t = {
    ...env,
    /** A page in a fresh browser profile; `viewport` defaults to a laptop screen. */
    async page(url, options = {}) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, ...options });
      contexts.push(context);
      const page = await context.newPage();
      page.on("pageerror", (e) => console.log(`   page error: ${e.message}`));
      // Each page's console (and with E2E_TRACE=1 every request it made, with both bodies)
      // lands in pages.log beside the server logs.
      const n = ++pages;
      const note = (line) => appendFileSync(path.join(out, "pages.log"), `${new Date().toISOString()} page ${n} ${line}\n`);
      page.on("console", (m) => note(`${m.type()}: ${m.text()}`));
      if (process.env.E2E_TRACE) {
        page.on("requestfinished", async (r) => {
          const body = await r
            .response()
            .then((res) => res?.text() ?? "")
            .catch(() => "");
          note(`${r.method()} ${r.url()} >> ${r.postData() ?? ""} << ${body.slice(0, 2000)}`);
        });
      }
      if (url) await page.goto(url);
      return page;
    },
    shot: (page, file) => page.screenshot({ path: path.join(out, `${file}.png`) }),
    skip(reason) {
      throw Object.assign(new Error(reason), { skip: true });
    },
  };
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${CASE_TIMEOUT / 1000} s`)), CASE_TIMEOUT);
    });
    await Promise.race([run(t), timeout]);
    passed++;
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    if (e.skip) {
      console.log(`skip ${name}: ${e.message}`);
    } else {
      failed++;
      console.log(`FAIL ${name}: ${e.stack ?? e}`);
    }
  } finally {
    clearTimeout(timer);
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  }
}

await browser.close();
await server.stop();
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
