// Herald against the real Pusher clients and server SDK, in Node: pusher-js, laravel-echo
// and pusher, against `herald serve` processes this script starts (and restarts).
//
//   HERALD_BIN=target/release/herald node tests/pusher/run.mjs
//   PUSHER_ONLY=presence ...   # the cases whose name contains "presence"
//
// The last line is "pusher: N passed, M failed"; the exit status is non-zero on a failure.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { exists, freePort, killAll, startHerald, startRedis } from "../../web/e2e/procs.mjs";
import { startAuth, startWebhooks, writeConfig } from "./harness.mjs";
import { cases, cluster } from "./cases.mjs";
import { browserCase } from "./browser.mjs";

const bin = process.env.HERALD_BIN ?? "target/release/herald";
const only = process.env.PUSHER_ONLY ?? "";
const dir = mkdtempSync(path.join(tmpdir(), "herald-pusher-"));
const config = path.join(dir, "herald.toml");
const logFile = path.join(dir, "herald.log");

let passed = 0;
let failed = 0;

async function run(name, body) {
  if (!name.includes(only)) return;
  const clients = [];
  const closers = [];
  const open = (c) => (clients.push(c), c);
  const onClose = (f) => closers.push(f);
  const start = Date.now();
  try {
    await Promise.race([
      body(open, onClose),
      new Promise((_, reject) => setTimeout(() => reject(new Error("case timed out after 30 s")), 30000)),
    ]);
    passed++;
    console.log(`ok   ${name} (${Date.now() - start} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  } finally {
    for (const c of clients) c.disconnect();
    for (const f of closers) f();
  }
}

const auth = await startAuth();
const webhooks = await startWebhooks();
writeConfig(config, auth.url, webhooks.url);
const port = await freePort();
const args = ["--config", config];
let herald = await startHerald(bin, { port, args, logFile });
const ctx = {
  auth,
  webhooks,
  get herald() {
    return herald;
  },
  async restart() {
    await herald.stop();
    herald = await startHerald(bin, { port, args, logFile });
  },
};
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const all = { ...cases };
if (exists(chromium)) all[browserCase.name] = (t) => browserCase.run({ ...t, chromium });
else console.log(`skip ${browserCase.name}: no ${chromium}`);
for (const [name, body] of Object.entries(all)) {
  await run(name, (open, onClose) => body({ ...ctx, herald, open, onClose }));
}
await herald.stop();

if (!exists("redis-server")) {
  console.log("skip two nodes with Redis: no redis-server");
} else if (Object.keys(cluster).some((name) => name.includes(only))) {
  const redis = await startRedis(path.join(dir, "redis.log"));
  const broker = [...args, "--broker", redis.url];
  const nodes = [
    await startHerald(bin, { args: broker, logFile }),
    await startHerald(bin, { args: broker, logFile }),
  ];
  for (const [name, body] of Object.entries(cluster)) {
    await run(name, (open) => body({ nodes, auth, open }));
  }
  await Promise.all(nodes.map((n) => n.stop()));
  redis.stop();
}
auth.close();
killAll();
if (failed) console.log(`server log: ${logFile}`);
console.log(`pusher: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
