// Commands, replies and errors: what a caller of publish/history/presence sees.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError, LOCAL_ERRORS } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

async function connectedClient(options = {}) {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, ...options });
  client.connect();
  await settle();
  FakeSocket.last.connected();
  return client;
}

test("opens herald.v1 on the url with the token as a query parameter", async () => {
  const client = new Herald("ws://hub/ws?x=1", { WebSocket: FakeSocket, timers: clock, token: async () => "a b" });
  client.connect();
  await settle();
  assert.equal(FakeSocket.last.url, "ws://hub/ws?x=1&token=a%20b");
  assert.equal(FakeSocket.last.protocol, "herald.v1");
});

test("publish resolves to the reply's offset and epoch", async () => {
  const client = await connectedClient();
  const done = client.publish("chat:1", { text: "hi" });
  const cmd = FakeSocket.last.lastCommand("publish");
  assert.deepEqual(cmd.params, { channel: "chat:1", data: { text: "hi" } });
  FakeSocket.last.reply(cmd, { offset: 42, epoch: "e1" });
  assert.deepEqual(await done, { offset: 42, epoch: "e1" });
});

test("an error reply rejects with a HeraldError carrying the numeric code", async () => {
  const client = await connectedClient();
  const done = client.publish("secret", 1);
  const cmd = FakeSocket.last.lastCommand("publish");
  FakeSocket.last.receive({ id: cmd.id, error: { code: 103, message: "permission denied", temporary: false } });
  await assert.rejects(done, (e) => e instanceof HeraldError && e.code === 103 && e.temporary === false);
  const limited = client.publish("chat:1", 2);
  FakeSocket.last.receive({ id: FakeSocket.last.lastCommand("publish").id, error: { code: 108, message: "rate limited", temporary: true } });
  await assert.rejects(limited, (e) => e.code === 108 && e.temporary === true && e.message === "rate limited");
});

test("replies are matched by id, whatever order they come in", async () => {
  const client = await connectedClient();
  const a = client.history("a", { limit: 2 });
  const b = client.presence("b");
  const [ca, cb] = FakeSocket.last.sent.slice(-2);
  assert.deepEqual(ca.params, { channel: "a", limit: 2 });
  FakeSocket.last.reply(cb, { clients: [{ client: "x", user: "ann" }] });
  FakeSocket.last.reply(ca, { offset: 2, epoch: "e", publications: [] });
  assert.deepEqual(await b, [{ client: "x", user: "ann" }]);
  assert.equal((await a).offset, 2);
});

test("commands made while connecting wait for the connected push", async () => {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock });
  client.connect();
  const done = client.publish("c", 1);
  await settle();
  assert.equal(FakeSocket.last.sent.length, 0);
  FakeSocket.last.connected();
  FakeSocket.last.reply(FakeSocket.last.lastCommand("publish"), { offset: 1, epoch: "e" });
  assert.equal((await done).offset, 1);
});

test("no reply within the timeout rejects with the local timeout code", async () => {
  const client = await connectedClient({ timeout: 1000 });
  const done = assert.rejects(client.publish("c", 1), (e) => e.code === LOCAL_ERRORS.timeout.code && e.temporary);
  await clock.advance(1000);
  await done;
});

test("a command in flight when the connection drops rejects as disconnected", async () => {
  const client = await connectedClient();
  const done = assert.rejects(client.publish("c", 1), (e) => e.code === LOCAL_ERRORS.disconnected.code);
  FakeSocket.last.drop(1006);
  await done;
});

test("close() fails what waits, sends 1000 and refuses new commands", async () => {
  const client = await connectedClient();
  const socket = FakeSocket.last;
  const done = assert.rejects(client.publish("c", 1), (e) => e.code === LOCAL_ERRORS.closed.code);
  client.close();
  await done;
  assert.deepEqual(socket.closedWith, { code: 1000, reason: undefined });
  await assert.rejects(client.publish("c", 2), (e) => e.code === LOCAL_ERRORS.closed.code);
  await clock.advance(60000);
  assert.equal(FakeSocket.all.length, 1);
});

test("state events go connecting, connected, disconnected", async () => {
  const client = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0 });
  const seen = [];
  client.on("state", (e) => seen.push(e));
  client.connect();
  await settle();
  FakeSocket.last.connected();
  FakeSocket.last.drop(4502, "idle timeout");
  assert.deepEqual(seen, [
    { state: "connecting" },
    { state: "connected", client: "c1", user: "" },
    { state: "disconnected", code: 4502, reason: "idle timeout", willReconnect: false },
  ]);
});
