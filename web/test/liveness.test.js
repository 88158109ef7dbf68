// Dead connections: browsers hide pings, so the client times silence itself.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

async function connected(options = {}) {
  const client = new Herald("ws://hub/ws", {
    WebSocket: FakeSocket,
    timers: clock,
    random: () => 0,
    pingMargin: 5000,
    pingTimeout: 10000,
    ...options,
  });
  const states = [];
  client.on("state", (e) => states.push(e));
  client.connect();
  await settle();
  FakeSocket.last.connected(25);
  return { client, states };
}

test("silence past ping_interval plus the margin sends a ping command", async () => {
  const { client } = await connected();
  await clock.advance(29999);
  assert.equal(FakeSocket.last.lastCommand("ping"), undefined);
  await clock.advance(1);
  assert.deepEqual(FakeSocket.last.lastCommand("ping").params, {});
  client.close();
});

test("an unanswered ping closes the socket and reconnects", async () => {
  const { client, states } = await connected();
  const dead = FakeSocket.last;
  await clock.advance(30000 + 9999);
  assert.equal(dead.closedWith, null);
  await clock.advance(1);
  assert.equal(dead.closedWith.code, 4000);
  assert.deepEqual(states.findLast((e) => e.state === "disconnected"), { state: "disconnected", code: 1006, reason: "no answer to ping", willReconnect: true });
  await clock.advance(0);
  assert.equal(FakeSocket.all.length, 2);
  dead.drop(1006); // the old socket's late close event changes nothing
  assert.equal(client.state, "connecting");
  client.close();
});

test("an answered ping keeps the connection", async () => {
  const { client } = await connected();
  await clock.advance(30000);
  FakeSocket.last.reply(FakeSocket.last.lastCommand("ping"), {});
  await clock.advance(20000);
  assert.equal(FakeSocket.last.closedWith, null);
  assert.equal(client.state, "connected");
  client.close();
});

test("any message postpones the ping", async () => {
  const { client } = await connected();
  for (let i = 0; i < 5; i++) {
    await clock.advance(20000);
    FakeSocket.last.receive({ push: "pub", channel: "none", offset: i + 1, epoch: "e", data: 1 });
  }
  assert.equal(FakeSocket.last.lastCommand("ping"), undefined);
  client.close();
});

test("the ping interval comes from the connected push", async () => {
  const { client } = await connected();
  FakeSocket.last.drop(1001);
  await clock.advance(0);
  FakeSocket.last.connected(5);
  await clock.advance(10000);
  assert.ok(FakeSocket.last.lastCommand("ping"));
  client.close();
});

test("a socket that never says connected is abandoned after the timeout", async () => {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0, timeout: 3000 });
  client.connect();
  await settle();
  await clock.advance(3000);
  assert.equal(FakeSocket.all[0].closedWith.code, 4000);
  await clock.advance(0);
  assert.equal(FakeSocket.all.length, 2);
  client.close();
});
