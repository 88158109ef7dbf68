// Subscriptions across reconnects: resubscribe from the last position, every publication
// exactly once and in order, and a clear signal when the gap cannot be filled.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

const pub = (offset, epoch = "e1", data = `m${offset}`) => ({ push: "pub", channel: "chat:1", offset, epoch, data });

async function subscribed(handlers = {}) {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0 });
  const got = [];
  const failures = [];
  const sub = client.subscribe("chat:1", {
    onPublication: (p) => got.push(`${p.epoch}:${p.offset}:${p.data}`),
    onRecoveryFailed: (e) => failures.push(e),
    ...handlers,
  });
  client.connect();
  await settle();
  FakeSocket.last.connected();
  const cmd = FakeSocket.last.lastCommand("subscribe");
  FakeSocket.last.reply(cmd, { offset: 5, epoch: "e1" });
  await settle();
  return { client, sub, got, failures, first: cmd };
}

async function reconnect() {
  FakeSocket.last.drop(1006);
  await clock.advance(0);
  FakeSocket.last.connected();
  return FakeSocket.last.lastCommand("subscribe");
}

test("the first subscribe has no recover; live publications follow the reply", async () => {
  const { got, first, sub } = await subscribed();
  assert.deepEqual(first.params, { channel: "chat:1" });
  FakeSocket.last.receive(pub(6));
  FakeSocket.last.receive(pub(7));
  assert.deepEqual(got, ["e1:6:m6", "e1:7:m7"]);
  assert.deepEqual(sub.position, { offset: 7, epoch: "e1" });
});

test("after a reconnect it resubscribes with the last applied offset and epoch", async () => {
  const { client } = await subscribed({ joinLeave: true });
  FakeSocket.last.receive(pub(6));
  const cmd = await reconnect();
  assert.deepEqual(cmd.params, { channel: "chat:1", join_leave: true, recover: { offset: 6, epoch: "e1" } });
  client.close();
});

test("missed publications come first, once each, then live ones; duplicates at the seam drop", async () => {
  const { got } = await subscribed();
  FakeSocket.last.receive(pub(6));
  const cmd = await reconnect();
  // Live pushes that race the reply are held until the reply is applied.
  FakeSocket.last.receive(pub(9));
  FakeSocket.last.receive(pub(10));
  FakeSocket.last.reply(cmd, {
    offset: 9,
    epoch: "e1",
    recovered: true,
    publications: [7, 8, 9].map((offset) => ({ offset, data: `m${offset}` })),
  });
  await settle();
  FakeSocket.last.receive(pub(9));
  FakeSocket.last.receive(pub(11));
  assert.deepEqual(got, ["e1:6:m6", "e1:7:m7", "e1:8:m8", "e1:9:m9", "e1:10:m10", "e1:11:m11"]);
});

test("publications of a new epoch are applied from their own offsets", async () => {
  const { got, sub } = await subscribed();
  FakeSocket.last.receive(pub(1, "e2"));
  FakeSocket.last.receive(pub(1, "e2"));
  assert.deepEqual(got, ["e2:1:m1"]);
  assert.deepEqual(sub.position, { offset: 1, epoch: "e2" });
});

test("recovered: false raises onRecoveryFailed and moves to the server's position", async () => {
  const { got, failures, sub } = await subscribed();
  FakeSocket.last.receive(pub(6));
  const cmd = await reconnect();
  FakeSocket.last.reply(cmd, { offset: 3, epoch: "e2", recovered: false });
  await settle();
  assert.deepEqual(failures, [{ previous: { offset: 6, epoch: "e1" }, offset: 3, epoch: "e2" }]);
  assert.deepEqual(sub.position, { offset: 3, epoch: "e2" });
  FakeSocket.last.receive(pub(4, "e2"));
  assert.deepEqual(got, ["e1:6:m6", "e2:4:m4"]);
});

test("a subscription can start from a position taken from history", async () => {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock });
  client.subscribe("chat:1", { since: { offset: 12, epoch: "e9" } });
  client.connect();
  await settle();
  FakeSocket.last.connected();
  assert.deepEqual(FakeSocket.last.lastCommand("subscribe").params.recover, { offset: 12, epoch: "e9" });
  client.close();
});

test("join and leave reach the handlers; publications stop after unsubscribe", async () => {
  const members = [];
  const { client, sub, got } = await subscribed({
    joinLeave: true,
    onJoin: (m) => members.push(`+${m.user}`),
    onLeave: (m) => members.push(`-${m.user}`),
  });
  FakeSocket.last.receive({ push: "join", channel: "chat:1", client: "x", user: "bob" });
  FakeSocket.last.receive({ push: "leave", channel: "chat:1", client: "x", user: "bob" });
  assert.deepEqual(members, ["+bob", "-bob"]);
  sub.unsubscribe();
  assert.deepEqual(FakeSocket.last.lastCommand("unsubscribe").params, { channel: "chat:1" });
  FakeSocket.last.receive(pub(6));
  assert.deepEqual(got, []);
  await reconnect();
  assert.equal(FakeSocket.last.lastCommand("subscribe"), undefined, "not resubscribed");
  client.close();
});

test("a permanent refusal rejects ready and calls onError; a temporary one retries", async () => {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0 });
  const errors = [];
  const denied = client.subscribe("secret", { onError: (e) => errors.push(e.code) });
  const busy = client.subscribe("busy");
  client.connect();
  await settle();
  FakeSocket.last.connected();
  const [a, b] = FakeSocket.last.sent;
  FakeSocket.last.receive({ id: a.id, error: { code: 103, message: "permission denied" } });
  FakeSocket.last.receive({ id: b.id, error: { code: 109, message: "unavailable", temporary: true } });
  await assert.rejects(denied.ready, (e) => e.code === 103);
  assert.deepEqual(errors, [103]);
  await clock.advance(0);
  const retry = FakeSocket.last.lastCommand("subscribe");
  assert.equal(retry.params.channel, "busy");
  assert.notEqual(retry.id, b.id);
  FakeSocket.last.reply(retry, { offset: 0, epoch: "e" });
  assert.deepEqual(await busy.ready, { offset: 0, epoch: "e", recovered: undefined });
  client.close();
});

test("an exception in a handler surfaces on its own and delivery goes on", async (t) => {
  const thrown = [];
  const had = globalThis.reportError;
  globalThis.reportError = (e) => thrown.push(e.message); // what browsers have
  t.after(() => (globalThis.reportError = had));
  const got = [];
  await subscribed({
    onPublication: (p) => {
      got.push(p.offset);
      if (p.offset === 6) throw new Error("app bug");
    },
  });
  FakeSocket.last.receive(pub(6));
  FakeSocket.last.receive(pub(7));
  await settle();
  assert.deepEqual(got, [6, 7]);
  assert.deepEqual(thrown, ["app bug"]);
});

test("latest publications in the first reply come first, oldest first; live repeats drop", async () => {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0 });
  const got = [];
  const sub = client.subscribe("chat:1", { latest: 2, onPublication: (p) => got.push(`${p.epoch}:${p.offset}:${p.data}`) });
  client.connect();
  await settle();
  FakeSocket.last.connected();
  const first = FakeSocket.last.lastCommand("subscribe");
  assert.deepEqual(first.params, { channel: "chat:1", latest: 2 });
  // A live publication the reply also holds arrives before the reply: it waits, then drops.
  FakeSocket.last.receive(pub(5));
  const publications = [4, 5].map((offset) => ({ offset, data: `m${offset}` }));
  FakeSocket.last.reply(first, { offset: 5, epoch: "e1", publications });
  await settle();
  FakeSocket.last.receive(pub(6));
  assert.deepEqual(got, ["e1:4:m4", "e1:5:m5", "e1:6:m6"]);
  // A resubscribe recovers from the position instead of asking for the latest again.
  const again = await reconnect();
  assert.deepEqual(again.params, { channel: "chat:1", recover: { offset: 6, epoch: "e1" } });
  assert.deepEqual(sub.position, { offset: 6, epoch: "e1" });
  client.close();
});
