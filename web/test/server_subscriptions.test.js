// Server-side subscriptions: `subscribed` and `unsubscribed` pushes reach the application,
// publications on them are delivered once each and in order, and after a reconnect the gap
// between the last applied position and the new `subscribed` offset is read with `history`.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

const pub = (offset, epoch = "e1") => ({ push: "pub", channel: "#ann", offset, epoch, data: `m${offset}` });
const subscribedPush = (offset, epoch = "e1") => ({ push: "subscribed", channel: "#ann", offset, epoch });

async function connected() {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0 });
  const events = [];
  const got = [];
  client.on("subscribed", (e) => events.push(e));
  client.on("unsubscribed", (e) => events.push(e));
  client.on("publication", (p) => got.push(`${p.channel}:${p.epoch}:${p.offset}:${p.data}`));
  client.connect();
  await settle();
  FakeSocket.last.connected();
  return { client, events, got };
}

async function reconnect() {
  FakeSocket.last.drop(1006);
  await clock.advance(0);
  FakeSocket.last.connected();
}

test("a subscribed push reaches the application and its publications follow", async () => {
  const { client, events, got } = await connected();
  FakeSocket.last.receive(subscribedPush(3));
  FakeSocket.last.receive(pub(4));
  assert.deepEqual(events, [{ channel: "#ann", offset: 3, epoch: "e1", recovered: undefined }]);
  assert.deepEqual(got, ["#ann:e1:4:m4"]);
  assert.deepEqual(client.serverSubscriptions, [{ channel: "#ann", position: { offset: 4, epoch: "e1" } }]);
  assert.equal(FakeSocket.last.lastCommand("history"), undefined, "nothing to recover the first time");
  client.close();
});

test("after a reconnect history since the last position fills the gap before live publications", async () => {
  const { client, events, got } = await connected();
  FakeSocket.last.receive(subscribedPush(3));
  FakeSocket.last.receive(pub(4));
  await reconnect();
  FakeSocket.last.receive(subscribedPush(6));
  FakeSocket.last.receive(pub(7)); // live, while history is on its way: waits
  await settle();
  const history = FakeSocket.last.lastCommand("history");
  assert.deepEqual(history.params, { channel: "#ann", since: { offset: 4, epoch: "e1" } });
  assert.deepEqual(got, ["#ann:e1:4:m4"]);
  const publications = [5, 6, 7].map((offset) => ({ offset, data: `m${offset}` }));
  FakeSocket.last.reply(history, { offset: 7, epoch: "e1", publications });
  await settle();
  assert.deepEqual(got, ["#ann:e1:4:m4", "#ann:e1:5:m5", "#ann:e1:6:m6", "#ann:e1:7:m7"], "7 once");
  assert.equal(events.at(-1).recovered, true);
  client.close();
});

test("a gap history no longer holds is reported as not recovered", async () => {
  const { client, events } = await connected();
  FakeSocket.last.receive(subscribedPush(3));
  await reconnect();
  FakeSocket.last.receive(subscribedPush(9));
  await settle();
  const history = FakeSocket.last.lastCommand("history");
  FakeSocket.last.receive({ id: history.id, error: { code: 110, message: "position unavailable" } });
  await settle();
  assert.deepEqual(events.at(-1), { channel: "#ann", offset: 9, epoch: "e1", recovered: false });
  assert.deepEqual(client.serverSubscriptions[0].position, { offset: 9, epoch: "e1" });
  client.close();
});

test("a new epoch after a reconnect is not recovered and asks nothing", async () => {
  const { client, events } = await connected();
  FakeSocket.last.receive(subscribedPush(3));
  await reconnect();
  FakeSocket.last.receive(subscribedPush(1, "e2"));
  await settle();
  assert.equal(FakeSocket.last.lastCommand("history"), undefined);
  assert.equal(events.at(-1).recovered, false);
  client.close();
});

test("an unsubscribed push reaches the application and ends delivery", async () => {
  const { client, events, got } = await connected();
  FakeSocket.last.receive(subscribedPush(0));
  FakeSocket.last.receive({ push: "unsubscribed", channel: "#ann", reason: "server" });
  FakeSocket.last.receive(pub(1));
  assert.deepEqual(events.at(-1), { channel: "#ann", reason: "server" });
  assert.deepEqual(got, []);
  assert.deepEqual(client.serverSubscriptions, []);
  client.close();
});

test("a server unsubscribe ends an application's own subscription: no resubscribe after reconnect", async () => {
  const { client } = await connected();
  client.subscribe("room", {});
  await settle();
  const cmd = FakeSocket.last.lastCommand("subscribe");
  FakeSocket.last.reply(cmd, { offset: 0, epoch: "e1" });
  FakeSocket.last.receive({ push: "unsubscribed", channel: "room", reason: "server" });
  await reconnect();
  await settle();
  assert.equal(FakeSocket.last.lastCommand("subscribe"), undefined);
  client.close();
});
