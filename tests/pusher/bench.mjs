// Fan-out to pusher-js clients: N clients (one Node process) on one channel, M events
// triggered through the pusher SDK in batches of 10; prints connect and delivery times.
//
//   N=200 M=200 HERALD_BIN=target/release/herald node tests/pusher/bench.mjs
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startHerald, killAll } from "../../web/e2e/procs.mjs";
import { writeConfig, startAuth, client, server, subscribed } from "./harness.mjs";
const dir = mkdtempSync(path.join(tmpdir(), "herald-pusher-bench-"));
const auth = await startAuth();
writeConfig(path.join(dir, "herald.toml"), auth.url);
const bin = process.env.HERALD_BIN ?? "target/release/herald";
const args = ["--config", path.join(dir, "herald.toml")];
const h = await startHerald(bin, { args, logFile: path.join(dir, "herald.log") });
const N = Number(process.env.N ?? 200), M = Number(process.env.M ?? 200);
const clients = [];
for (let i = 0; i < N; i++) clients.push(client(h.port, auth));
const t0 = Date.now();
const chans = await Promise.all(clients.map((c) => subscribed(c, "bench")));
console.log(`${N} clients connected+subscribed in ${Date.now() - t0} ms`);
let got = 0;
const done = new Promise((r) => chans.forEach((ch) => ch.bind("tick", () => { if (++got === N * M) r(); })));
const sdk = server(h.port);
const t1 = Date.now();
for (let i = 0; i < M; i += 10) await sdk.triggerBatch(Array.from({ length: 10 }, (_, j) => ({ channel: "bench", name: "tick", data: { n: i + j } })));
await done;
const ms = Date.now() - t1;
console.log(`${M} events x ${N} clients = ${N * M} deliveries in ${ms} ms (${Math.round((N * M) / ms * 1000)}/s, receiver-bound: one Node process)`);
clients.forEach((c) => c.disconnect()); auth.close(); await h.stop(); killAll(); process.exit(0);
