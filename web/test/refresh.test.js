// Tokens that expire: getToken for every connection, a `refresh` push answered with a fresh
// token, and a 4501 close that reconnects only when a fresh token can be had.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

/** A client whose getToken hands out t1, t2, ... */
function client(options = {}) {
  let issued = 0;
  const getToken = async () => `t${++issued}`;
  const c = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0, getToken, ...options });
  const refreshes = [];
  c.on("refresh", (e) => refreshes.push(e));
  c.connect();
  return { c, refreshes, issued: () => issued };
}

test("getToken gives the token of every connection, as the token query parameter", async () => {
  const { c } = client();
  await settle();
  assert.equal(FakeSocket.last.url, "ws://hub/ws?token=t1");
  FakeSocket.last.connected();
  FakeSocket.last.drop(1006);
  await clock.advance(0);
  assert.equal(FakeSocket.last.url, "ws://hub/ws?token=t2");
  c.close();
});

test("a refresh push is answered with a refresh command carrying a fresh token", async () => {
  const { c, refreshes } = client();
  await settle();
  const ws = FakeSocket.last;
  ws.connected();
  ws.receive({ push: "refresh", expires: 1000 });
  await settle();
  const command = ws.lastCommand("refresh");
  assert.deepEqual(command.params, { token: "t2" });
  ws.reply(command, { expires: 2000 });
  await settle();
  assert.deepEqual(refreshes, [{ ok: true, expires: 2000 }]);
  assert.equal(FakeSocket.all.length, 1, "the connection stays");
  assert.equal(c.state, "connected");
  c.close();
});

test("a refused refresh is reported and the 4501 that follows reconnects with a fresh token", async () => {
  const { c, refreshes } = client();
  await settle();
  const ws = FakeSocket.last;
  ws.connected();
  ws.receive({ push: "refresh", expires: 1000 });
  await settle();
  const command = ws.lastCommand("refresh");
  ws.receive({ id: command.id, error: { code: 101, message: "token expired" } });
  await settle();
  assert.equal(refreshes.length, 1);
  assert.equal(refreshes[0].ok, false);
  assert.equal(refreshes[0].error.code, 101);
  ws.drop(4501, "unauthorized");
  await clock.advance(0);
  assert.equal(FakeSocket.all.length, 2, "reconnected");
  assert.equal(FakeSocket.last.url, "ws://hub/ws?token=t3");
  c.close();
});

test("a getToken that fails during a refresh is reported, and the connection stays until 4501", async () => {
  let calls = 0;
  const getToken = async () => {
    if (++calls > 1) throw new Error("IdP down");
    return "t1";
  };
  const { c, refreshes } = client({ getToken });
  await settle();
  FakeSocket.last.connected();
  FakeSocket.last.receive({ push: "refresh", expires: 1000 });
  await settle();
  assert.equal(FakeSocket.last.lastCommand("refresh"), undefined);
  assert.equal(refreshes[0].ok, false);
  assert.equal(refreshes[0].error.message, "IdP down");
  assert.equal(c.state, "connected");
  c.close();
});

test("with a fixed token a 4501 close is final and a refresh push is ignored", async () => {
  const c = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, random: () => 0, token: "static" });
  const states = [];
  c.on("state", (e) => states.push(e));
  c.connect();
  await settle();
  assert.equal(FakeSocket.last.url, "ws://hub/ws?token=static");
  FakeSocket.last.connected();
  FakeSocket.last.receive({ push: "refresh", expires: 1000 });
  await settle();
  assert.equal(FakeSocket.last.lastCommand("refresh"), undefined);
  FakeSocket.last.drop(4501, "unauthorized");
  assert.equal(states.at(-1).willReconnect, false);
  await clock.advance(60000);
  assert.equal(FakeSocket.all.length, 1);
});

test("an unsubscribed push ends the subscription and is not resubscribed after a reconnect", async () => {
  const { c } = client();
  await settle();
  FakeSocket.last.connected();
  const ended = [];
  const sub = c.subscribe("b:1", { onUnsubscribed: (e) => ended.push(e) });
  const command = FakeSocket.last.lastCommand("subscribe");
  FakeSocket.last.reply(command, { offset: 0, epoch: "e" });
  await settle();
  FakeSocket.last.receive({ push: "unsubscribed", channel: "b:1", reason: "not allowed by the refreshed token" });
  assert.deepEqual(ended, [{ reason: "not allowed by the refreshed token" }]);
  assert.equal(sub.active, false);
  FakeSocket.last.drop(1006);
  await clock.advance(0);
  FakeSocket.last.connected();
  await settle();
  assert.equal(FakeSocket.last.lastCommand("subscribe"), undefined);
  c.close();
});
