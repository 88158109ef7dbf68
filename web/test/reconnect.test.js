// Reconnecting: when, how soon (exponential backoff with full jitter), and when never.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald, backoffDelay } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

function client(options = {}) {
  const c = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, ...options });
  const states = [];
  c.on("state", (e) => states.push(e));
  c.connect();
  return { c, states };
}

test("backoff delays stay within [0, min(max, min * 2^attempt))", () => {
  const backoff = { min: 500, max: 20000 };
  for (let attempt = 0; attempt < 40; attempt++) {
    const cap = Math.min(20000, 500 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, backoff, () => 0), 0);
    assert.equal(backoffDelay(attempt, backoff, () => 0.999999), Math.floor(0.999999 * cap));
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(attempt, backoff);
      assert.ok(d >= 0 && d < cap, `attempt ${attempt}: ${d}`);
    }
  }
});

test("failed attempts retry after growing jittered delays, capped at max", async () => {
  const { c } = client({ backoff: { min: 100, max: 1000 }, random: () => 0.999 });
  await settle();
  const expected = [99, 199, 399, 799, 999, 999];
  for (const delay of expected) {
    const count = FakeSocket.all.length;
    FakeSocket.last.drop(1006);
    await clock.advance(delay - 1);
    assert.equal(FakeSocket.all.length, count, `not before ${delay} ms`);
    await clock.advance(1);
    assert.equal(FakeSocket.all.length, count + 1, `after ${delay} ms`);
  }
  c.close();
});

test("the backoff starts over after a successful connection", async () => {
  const { c } = client({ backoff: { min: 100, max: 10000 }, random: () => 0.5 });
  await settle();
  for (let i = 0; i < 4; i++) {
    FakeSocket.last.drop(1006);
    await clock.advance(10000);
  }
  FakeSocket.last.connected();
  FakeSocket.last.drop(1001);
  const count = FakeSocket.all.length;
  await clock.advance(50);
  assert.equal(FakeSocket.all.length, count + 1, "first delay again: 0.5 * 100 ms");
  c.close();
});

for (const code of [1001, 1006, 1011, 1012, 1013, 4001, 4002, 4003, 4123]) {
  test(`reconnects after close code ${code}`, async () => {
    const { c, states } = client({ random: () => 0 });
    await settle();
    FakeSocket.last.connected();
    FakeSocket.last.drop(code);
    assert.equal(states.at(-1).willReconnect, true);
    await clock.advance(0);
    assert.equal(FakeSocket.all.length, 2);
    c.close();
  });
}

for (const code of [1000, 1008, 1009, 4500, 4501, 4502, 4999]) {
  test(`does not reconnect after close code ${code}`, async () => {
    const { c, states } = client({ random: () => 0 });
    await settle();
    FakeSocket.last.connected();
    FakeSocket.last.drop(code, "bye");
    assert.deepEqual(states.at(-1), { state: "disconnected", code, reason: "bye", willReconnect: false });
    await clock.advance(120000);
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(c.state, "disconnected");
  });
}

test("connect() after a terminal close opens a new connection", async () => {
  const { c } = client({ random: () => 0 });
  await settle();
  FakeSocket.last.connected();
  FakeSocket.last.drop(4502);
  c.connect();
  await settle();
  assert.equal(FakeSocket.all.length, 2);
  c.close();
});

test("connect() while waiting to retry opens once, now", async () => {
  const { c } = client({ random: () => 0.9 });
  await settle();
  FakeSocket.last.drop(1006);
  c.connect();
  await settle();
  assert.equal(FakeSocket.all.length, 2);
  await clock.advance(5000); // past the 450 ms retry, before the 10 s handshake timeout
  assert.equal(FakeSocket.all.length, 2, "the cancelled retry does not open a third");
  c.close();
});

test("close() and connect() while the token is being fetched open one socket", async () => {
  let release;
  const token = () => new Promise((resolve) => (release = resolve));
  const c = new Herald("ws://hub/ws", { WebSocket: FakeSocket, timers: clock, token });
  c.connect();
  const first = release;
  c.close();
  c.connect();
  first("t1");
  release("t2");
  await settle();
  assert.equal(FakeSocket.all.length, 1);
  assert.match(FakeSocket.last.url, /token=t2$/);
  c.close();
});
