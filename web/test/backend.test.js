// The application's backend through the hub: rpc, and the data a subscribe hook attaches.
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

test("a subscribe's backend data reaches ready and onSubscribed", async () => {
  const client = await connectedClient();
  const events = [];
  const sub = client.subscribe("chat:1", { onSubscribed: (e) => events.push(e) });
  await settle();
  const cmd = FakeSocket.last.lastCommand("subscribe");
  FakeSocket.last.reply(cmd, { offset: 0, epoch: "e", data: { welcome: "hi" } });
  assert.deepEqual((await sub.ready).data, { welcome: "hi" });
  assert.deepEqual(events[0].data, { welcome: "hi" });
});
