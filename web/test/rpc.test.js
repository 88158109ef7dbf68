// rpc: a call of the application's backend through the hub.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

async function connectedClient() {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock });
  client.connect();
  await settle();
  FakeSocket.last.connected();
  return client;
}

test("rpc sends the method and data and resolves to the result's data", async () => {
  const client = await connectedClient();
  const done = client.rpc("upper", { text: "hi" });
  const cmd = FakeSocket.last.lastCommand("rpc");
  assert.deepEqual(cmd.params, { method: "upper", data: { text: "hi" } });
  FakeSocket.last.reply(cmd, { data: { text: "HI" } });
  assert.deepEqual(await done, { text: "HI" });
});

test("rpc without data sends null", async () => {
  const client = await connectedClient();
  const done = client.rpc("now");
  const cmd = FakeSocket.last.lastCommand("rpc");
  assert.deepEqual(cmd.params, { method: "now", data: null });
  FakeSocket.last.reply(cmd, { data: 17 });
  assert.equal(await done, 17);
});

test("the backend's error rejects with its code", async () => {
  const client = await connectedClient();
  const done = client.rpc("nope", {});
  const cmd = FakeSocket.last.lastCommand("rpc");
  FakeSocket.last.receive({ id: cmd.id, error: { code: 1404, message: "no such method", temporary: false } });
  await assert.rejects(done, (e) => e instanceof HeraldError && e.code === 1404 && e.message === "no such method");
});
